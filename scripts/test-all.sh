#!/usr/bin/env bash
# The one test command (README "Run the tests"): installs what it needs on a fresh Debian
# machine with the Rust toolchain, then checks formatting, lints, runs every test and a short
# fuzz smoke run of each fuzz target. CI (.ci/run) calls exactly this script.
#
#   FUZZ_SECONDS=20   seconds per fuzz target (0 skips the fuzz smoke run, for local iteration)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
step() { printf '\n==> %s\n' "$*"; }

step "install: rustfmt, clippy, cargo-fuzz, real FTPS peers (vsftpd, curl, pyftpdlib), C toolchain and valgrind, python3-venv"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
scripts/install-peers.sh

step "format"
cargo fmt --all -- --check
(cd fuzz && cargo fmt --all -- --check)

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The core must stay no_std + alloc without its `std` feature, and build with either provider.
cargo clippy -p ftps-proto --no-default-features --features ring --locked -- -D warnings
cargo clippy -p ftps-proto --no-default-features --features std,aws-lc-rs --locked -- -D warnings

step "tests"
# The C binding's tests link the static library (target/debug/libftps.a), which `cargo test`
# does not build (its test binaries link the rlib). The tests also run this build themselves
# (bindings/c/tests/common), so they never link a stale library; doing it here keeps --locked.
cargo build -p ftps-capi --locked
test_log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$test_log"
# The server interop suites and the fault matrix again, against the async server
# (tests/src/own_server.rs picks the driver from FTPS_TEST_DRIVER): curl, lftp, ftplib and our
# own client on both servers, and every fault cell that uses our own server.
FTPS_TEST_DRIVER=tokio cargo test -p ftps-tests --locked --test std_server --test std_server_log \
  --test client_interop --test proftpd_interop --test reuse_matrix \
  --test lftp_interop --test prot_switch --test fault_matrix 2>&1 | tee -a "$test_log"
# One closing line for the whole run (cargo prints one "test result" line per test binary).
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { printf "%d passed, %d failed", p, f }' "$test_log")
rm -f "$test_log"

step "python binding (bindings/python: fresh venv, pip install, mypy --strict, pytest)"
py_log=$(mktemp)
bindings/python/run-tests.sh 2>&1 | tee "$py_log"
# pytest's closing line ("N passed, M failed in Xs"): add its counts to the run's totals.
totals=$(awk -v base="$totals" 'BEGIN { split(base, b, " "); p = b[1]; f = b[3] }
  /(passed|failed).* in [0-9.]+s/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "%d passed, %d failed", p, f }' "$py_log")
rm -f "$py_log"

if [ "$FUZZ_SECONDS" != "0" ]; then
  step "fuzz smoke run (${FUZZ_SECONDS}s per target)"
  scripts/fuzz-smoke.sh "$FUZZ_SECONDS"
fi

step "all checks passed"
echo "tests: $totals"
