#!/usr/bin/env bash
# The long fuzz run recorded in docs/reliability.md: N executions per target (default
# 1,000,000), one target after another, with the same sanitizers as scripts/fuzz.sh.
# Usage: scripts/fuzz_long.sh [runs] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1000000}"; shift || true
scripts/fuzz.sh 1 "$@" >/dev/null  # builds the targets (and runs each for a second)
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then for f in fuzz/fuzz_*.cc; do targets+=("$(basename "$f" .cc)"); done; fi
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/${t#fuzz_}"; work="build-fuzz/corpus-${t#fuzz_}"; mkdir -p "$work"
  start=$(date +%s)
  out=$(./build-fuzz/fuzz/"$t" -runs="$RUNS" -max_len=1048576 -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
        "$work" "$corpus" 2>&1 || true)
  execs=$(echo "$out" | grep -o 'stat::number_of_executed_units: [0-9]*' | awk '{print $2}')
  crashes=$(echo "$out" | grep -c -E 'ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|SUMMARY: ' || true)
  echo "$t runs=$execs crashes=$crashes seconds=$(( $(date +%s) - start ))"
done
