#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds, starting from its committed seed corpus, and prints
# the executions each reached. A crash fails the script (libFuzzer exits non-zero).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-20}"
export RUSTC_BOOTSTRAP=1   # cargo-fuzz needs -Z flags; the stable toolchain allows them this way
targets=$(cargo fuzz list)
RUSTC_BOOTSTRAP=1 cargo fuzz build -O
summary=""
for t in $targets; do
  # Work on a scratch copy so the committed seeds stay small and unchanged.
  rm -rf "corpus/$t" && mkdir -p "corpus/$t" && cp -r "seeds/$t/." "corpus/$t/"
  log=$(mktemp)
  if ! cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $t failed" >&2
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  summary+=$(printf '%-22s %12s executions in %ss\n' "$t" "$runs" "$seconds")$'\n'
  rm -f "$log"
done
printf '%s' "$summary"
