#!/usr/bin/env bash
# The Python binding's test step (scripts/test-all.sh runs it; it also runs on its own):
# makes a fresh venv, installs the test tools and the package with `pip install
# ./bindings/python` (maturin builds the abi3 extension in release mode), builds the `ftps`
# CLI the tests start as a server, type-checks the package, examples, tests and benchmark with
# `mypy --strict`, and runs the tests with pytest. Needs python3 with venv (Debian:
# python3-venv, from scripts/install-peers.sh) and vsftpd; root, as the vsftpd tests create a
# system user (as the Rust interop tests do).
#
#   FTPS_PY_VENV=DIR   reuse this venv instead of a new temporary one (local iteration)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

created_venv=""
venv="${FTPS_PY_VENV:-}"
if [ -z "$venv" ]; then
  created_venv="$(mktemp -d -t ftps-py-venv.XXXXXX)"
  venv="$created_venv/venv"
  trap 'rm -rf "$created_venv"' EXIT
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"

# Pinned, so a new release of a tool cannot break CI unannounced. pyftpdlib and pyOpenSSL as
# in scripts/install-peers.sh; cryptography makes the tests' certificates.
"$py" -m pip install --disable-pip-version-check --no-input -q \
  "maturin==1.16.0" "pytest==9.2.0" "hypothesis==6.170.27" "mypy==2.4.1" \
  "pyftpdlib==2.2.0" "pyOpenSSL==26.4.0" "cryptography==50.0.2"
# The package as a user installs it: from the source directory, through its pyproject.toml.
"$py" -m pip install --disable-pip-version-check --no-input -q --force-reinstall --no-deps \
  "$here"

# The CLI the tests start as this project's server (`ftps serve`).
(cd "$repo" && cargo build -p ftps-cli --locked -q)
export FTPS_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/ftps"

cd "$here"
echo "mypy --strict: package, examples, tests, benchmark"
"$venv/bin/mypy" --strict --no-incremental python/ftps examples tests bench
# Run from a directory without the sources, so `import ftps` is the installed wheel.
cd "$here/tests"
"$py" -m pytest -q -p no:cacheprovider "$here/tests"
