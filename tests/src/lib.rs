//! Workspace-level integration and interop tests for ftps; the tests live in `tests/`.
//!
//! The library part holds the harness the tests share: [`peers`] starts real FTPS servers
//! (vsftpd, pyftpdlib) on 127.0.0.1 and drives them with `curl`; [`own_server`] runs this
//! project's own server (`ftps_std::server::Server`) on 127.0.0.1 for the same clients and
//! [`own_client`] sets this project's client up for any of them;
//! [`bench`](mod@bench) holds what the benchmark binaries share; [`data`] makes test payloads.

pub mod bench;
pub mod data;
pub mod fault;
pub mod own_client;
pub mod own_server;
pub mod peers;
