#!/usr/bin/env bash
# A long fuzzing run of one target (not run in CI; see scripts/fuzz-smoke.sh for CI's short run).
#
#   scripts/fuzz-campaign.sh TARGET SECONDS
#
# Starts from the hand-written seeds (fuzz/seeds/TARGET), the committed minimized corpus
# (fuzz/corpora/TARGET) and whatever earlier campaigns left in the scratch corpus
# (fuzz/corpus/TARGET, not committed), runs libFuzzer for SECONDS under `nice -n 19` (the machine
# is shared), then minimizes the scratch corpus back into fuzz/corpora/TARGET with `cargo fuzz
# cmin` (keeping the smallest inputs up to a size budget), so that committing that folder lets
# CI's smoke run start where the campaign ended.
# Prints one summary line: target, wall seconds of the libFuzzer run, executions, crashes, corpus
# size.
#
# A crash stops libFuzzer; the reproducer lands in fuzz/artifacts/TARGET and the script exits
# non-zero after minimizing it (`cargo fuzz tmin`) so it can become a regression test.
# Environment: FUZZ_JOBS (default 1) parallel libFuzzer workers (their stats are then in
# fuzz-N.log, not summed here); FUZZ_NO_CMIN=1 skips the cmin; FUZZ_RUNS=N also stops libFuzzer
# after N executions (-runs=N), whichever of SECONDS and N comes first, so a fast target can stop
# at 10 M executions instead of running out its time; FUZZ_TIMEOUT (default 10) seconds one
# input may take before libFuzzer reports it as a timeout (under `nice -n 19` on a machine busy
# with builds a 1-second pair input was starved past 50 s: raise it for the session targets).
# FUZZ_ARGS: more libFuzzer flags, e.g. `-len_control=0` (inputs up to -max_len at once rather
# than growing slowly: a slow structured target such as pair otherwise spends its hour on
# inputs of a few dozen bytes).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 TARGET SECONDS" >&2
  exit 2
fi
target=$1
seconds=$2
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1 # cargo-fuzz needs -Z flags; the stable toolchain allows them this way
if ! cargo fuzz list | grep -qx "$target"; then
  echo "unknown target $target; targets: $(cargo fuzz list | tr '\n' ' ')" >&2
  exit 2
fi
nice -n 19 cargo fuzz build -O "$target"

scratch="corpus/$target"
kept="corpora/$target"
mkdir -p "$scratch" "$kept" "artifacts/$target"
cp -rn "seeds/$target/." "$scratch/" 2>/dev/null || true
cp -rn "$kept/." "$scratch/" 2>/dev/null || true

log="artifacts/$target/campaign-$(date -u +%Y%m%dT%H%M%SZ).log"
crashes_before=$(find "artifacts/$target" -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' | wc -l)
parallel=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
  # libFuzzer then writes each worker's output to fuzz-N.log in the current directory.
  parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi
limits=(-max_total_time="$seconds")
if [ -n "${FUZZ_RUNS:-}" ]; then
  limits+=(-runs="$FUZZ_RUNS")
fi
status=0
started=$(date +%s)
# -rss_limit_mb: a session target growing past it is a bounded-memory failure, not a host OOM.
nice -n 19 cargo fuzz run -O "$target" "$scratch" -- \
  "${limits[@]}" -print_final_stats=1 -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-10}" \
  "${parallel[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
wall=$(($(date +%s) - started))
crashes_after=$(find "artifacts/$target" -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' | wc -l)
runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | paste -sd+ | bc || echo '?')
crashes=$((crashes_after - crashes_before))

if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
  tail -n 60 "$log"
  for a in $(find "artifacts/$target" -newer "$log" -name 'crash-*'); do
    nice -n 19 cargo fuzz tmin -O "$target" "$a" -- -runs=20000 >/dev/null 2>&1 || true
  done
  printf '%-18s %8ss %14s executions %3s crashes  (log %s)\n' "$target" "$wall" "$runs" "$crashes" "$log"
  exit 1
fi

if [ "${FUZZ_NO_CMIN:-0}" != 1 ]; then
  # Minimize into a fresh folder, then replace the committed one with it.
  rm -rf "$kept.new" && mkdir -p "$kept.new"
  nice -n 19 cargo fuzz cmin -O "$target" "$scratch" -- -rss_limit_mb=2048 >>"$log" 2>&1
  # The committed corpus stays small (CI's smoke run only needs a head start): the smallest
  # minimized inputs, up to FUZZ_CORPUS_KIB (default 50) KiB; the scratch corpus keeps all.
  budget=$(( ${FUZZ_CORPUS_KIB:-50} * 1024 ))
  used=0
  while IFS= read -r f; do
    n=$(stat -c %s "$scratch/$f")
    if [ $((used + n)) -gt "$budget" ]; then break; fi
    cp "$scratch/$f" "$kept.new/"
    used=$((used + n))
  done < <(cd "$scratch" && ls -Sr)
  rm -rf "$kept" && mv "$kept.new" "$kept"
fi
# The bytes git stores: the files' sizes (`du` would add the directory's own blocks).
size=$(find "$kept" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", (s + 1023) / 1024 }')
files=$(find "$kept" -type f | wc -l)
printf '%-18s %8ss %14s executions %3s crashes  corpus %s files %s KiB  (log %s)\n' \
  "$target" "$wall" "$runs" "$crashes" "$files" "$size" "$log"
