#!/usr/bin/env bash
# Benchmark (not a test): the C example client against the Rust CLI, same server, same run.
#
# Starts this project's server (`ftps serve`, release build) on 127.0.0.1 with a random
# 64 MiB file, then downloads it RUNS times with bindings/c/examples/ftps-get.c (compiled -O2
# against the release libftps, installed with the Makefile, linked statically) and RUNS times
# with `target/release/ftps get`, alternating, and prints the median MB/s of each and their
# ratio. Each run is one process: connect, TLS, login, the download, QUIT (wall-clock time,
# 1 MB = 10^6 bytes); every downloaded file is compared with the original.
#
#   bindings/c/bench.sh                 # RUNS=5 SIZE_MIB=64
#   RUNS=9 SIZE_MIB=256 bindings/c/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS="${RUNS:-5}"
SIZE_MIB="${SIZE_MIB:-64}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
RELEASE="$CARGO_TARGET_DIR/release"

echo "bench: building ftps-cli and libftps (release)" >&2
cargo build --release --quiet -p ftps-cli -p ftps-capi

work=$(mktemp -d "${TMPDIR:-/tmp}/ftps-capi-bench.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# libftps installed as a user would, and ftps-get built against it.
make --quiet -C bindings/c install PREFIX="$work/prefix" PROFILE=release \
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR" >/dev/null
flags=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs --static ftps)
# Link the static library (no LD_LIBRARY_PATH needed).
flags=${flags//-lftps/$work/prefix/lib/libftps.a}
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -O2 \
  bindings/c/examples/ftps-get.c $flags -o "$work/ftps-get"

# The server: a fresh self-signed certificate, a free port, one user.
mkdir -p "$work/root" "$work/out"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$work/root/file.bin"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$RELEASE/ftps" serve --user "bench:$password" --listen 127.0.0.1:0 \
  --cert-out "$work/ca.pem" "$work/root" >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) for explicit.*/\1/p' "$work/server.log")
  if [ -n "$port" ] && grep -q ready "$work/server.log"; then break; fi
  port=""
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "bench: the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
bytes=$(stat -c %s "$work/root/file.bin")

# One timed run: prints MB/s (wall clock of the whole process).
timed() {
  local out=$1
  shift
  rm -f "$out"
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null
  end=$(date +%s%N)
  cmp -s "$work/root/file.bin" "$out" || { echo "bench: $out differs from the original" >&2; exit 1; }
  awk -v b="$bytes" -v ns="$((end - start))" 'BEGIN { printf "%.1f\n", b / 1e6 / (ns / 1e9) }'
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

c_runs=""
rust_runs=""
echo "bench: $RUNS x $SIZE_MIB MiB from ftps serve on 127.0.0.1:$port, alternating" >&2
for i in $(seq 1 "$RUNS"); do
  c=$(timed "$work/out/c.bin" "$work/ftps-get" --cacert "$work/ca.pem" --user bench \
    --password "$password" 127.0.0.1 "$port" file.bin "$work/out/c.bin")
  r=$(timed "$work/out/rust.bin" "$RELEASE/ftps" get --quiet --cacert "$work/ca.pem" \
    --user "bench:$password" "ftp://127.0.0.1:$port/file.bin" "$work/out/rust.bin")
  echo "bench: run $i: ftps-get $c MB/s, ftps get $r MB/s" >&2
  c_runs="$c_runs $c"
  rust_runs="$rust_runs $r"
done

c_median=$(echo "$c_runs" | median)
rust_median=$(echo "$rust_runs" | median)
printf '\n%-28s %12s   %s\n' "client ($SIZE_MIB MiB, $RUNS runs)" "median MB/s" "runs (MB/s)"
printf '%-28s %12s  %s\n' "ftps-get (C, libftps -O2)" "$c_median" "$c_runs"
printf '%-28s %12s  %s\n' "ftps get (Rust CLI)" "$rust_median" "$rust_runs"
awk -v c="$c_median" -v r="$rust_median" 'BEGIN { printf "ratio ftps-get / ftps get: %.2f\n", c / r }'
