#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a bounded time.
# Usage: scripts/fuzz.sh [seconds-per-target] [target ...]   (default 60 s, all targets)
#        scripts/fuzz.sh --ci   (what CI runs: a fixed seed and a fixed number of runs per
#                                target, so a CI result is reproducible on any machine)
set -euo pipefail
cd "$(dirname "$0")/.."
CI_MODE=""
if [ "${1:-}" = "--ci" ]; then CI_MODE=1; shift; set -- 0 "$@"; fi
SECS="${1:-60}"; shift || true
declare -A CI_RUNS=([fuzz_chat_template]=200000 [fuzz_gguf]=100000 [fuzz_hf_json]=20000
                    [fuzz_model_file]=20000 [fuzz_safetensors]=200000 [fuzz_tokenizer]=50000
                    [fuzz_server_api]=100000 [fuzz_eq_model]=3000)
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
  if [ -n "$CI_MODE" ]; then
    limit=(-runs="${CI_RUNS[$t]:-20000}" -seed=1)
    rm -rf "$work"; mkdir -p "$work"  # start from the committed seeds only
    echo "== $t: ${CI_RUNS[$t]:-20000} runs, seed 1 (seeds: $corpus)"
  else
    limit=(-max_total_time="$SECS")
    echo "== $t for ${SECS}s (seeds: $corpus)"
  fi
  ./build-fuzz/fuzz/"$t" "${limit[@]}" -max_len=1048576 -rss_limit_mb=4096 -timeout=10 \
    -print_final_stats=1 "$work" $( [ -d "$corpus" ] && echo "$corpus" ) 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|crash-|Done" || true
  if compgen -G "crash-*" >/dev/null || compgen -G "leak-*" >/dev/null || compgen -G "timeout-*" >/dev/null; then
    echo "fuzz: $t found a problem (input saved in $(ls crash-* leak-* timeout-* 2>/dev/null | head -1))" >&2
    exit 1
  fi
done
