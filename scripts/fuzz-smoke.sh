#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (argument, or FUZZ_SECONDS, default 20), starting
# from its hand-written seeds (fuzz/seeds/TARGET) and the minimized corpus the last campaign
# committed (fuzz/corpora/TARGET, see scripts/fuzz-campaign.sh), and prints the executions each
# reached. A crash fails the script (libFuzzer exits non-zero).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-${FUZZ_SECONDS:-20}}"
export RUSTC_BOOTSTRAP=1   # cargo-fuzz needs -Z flags; the stable toolchain allows them this way
targets=$(cargo fuzz list)
RUSTC_BOOTSTRAP=1 cargo fuzz build -O
summary=""
for t in $targets; do
  # Work on a scratch copy so the committed seeds and corpora stay unchanged (and a campaign's
  # own scratch corpus in fuzz/corpus is not touched).
  scratch=$(mktemp -d)
  cp -r "seeds/$t/." "$scratch/"
  if [ -d "corpora/$t" ]; then cp -r "corpora/$t/." "$scratch/"; fi
  log=$(mktemp)
  if ! cargo fuzz run -O "$t" "$scratch" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    rm -rf "$scratch"
    echo "fuzz target $t failed" >&2
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  summary+=$(printf '%-22s %12s executions in %ss\n' "$t" "$runs" "$seconds")$'\n'
  rm -f "$log"
  rm -rf "$scratch"
done
printf '%s' "$summary"
