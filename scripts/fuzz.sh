#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a bounded time.
# Usage: scripts/fuzz.sh [seconds-per-target] [target ...]   (default 60 s, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"; shift || true
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v clang++ >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEDGEQ_FUZZ=ON -DEDGEQ_BUILD_TESTS=OFF >/dev/null
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in fuzz/fuzz_*.cc; do targets+=("$(basename "$f" .cc)"); done
fi
ninja -C build-fuzz "${targets[@]}"
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/${t#fuzz_}"
  work="build-fuzz/corpus-${t#fuzz_}"
  mkdir -p "$work"
  echo "== $t for ${SECS}s (seeds: $corpus)"
  ./build-fuzz/fuzz/"$t" -max_total_time="$SECS" -max_len=1048576 -rss_limit_mb=4096 -timeout=10 \
    -print_final_stats=1 "$work" $( [ -d "$corpus" ] && echo "$corpus" ) 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|crash-|Done" || true
  if compgen -G "crash-*" >/dev/null || compgen -G "leak-*" >/dev/null || compgen -G "timeout-*" >/dev/null; then
    echo "fuzz: $t found a problem (input saved in $(ls crash-* leak-* timeout-* 2>/dev/null | head -1))" >&2
    exit 1
  fi
done
