//! Workspace-level integration and interop tests for ftps; the tests live in `tests/`.
