#!/usr/bin/env bash
# Cross builds edgeq for aarch64 (EDGEQ_MINIMAL: engine, CLI without serve, kernel and
# model tests) with Debian's g++-aarch64-linux-gnu; run the results with qemu-aarch64.
# Usage: scripts/cross_aarch64.sh [build-dir] [ninja targets...]
#   default: build-aarch64, targets edgeq quant_test
# e.g. qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max build-aarch64/edgeq run --temp 0 -v
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$src/build-aarch64}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(edgeq quant_test)
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGEQ_MINIMAL=ON \
    -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" >/dev/null
fi
ninja -C "$dir" "${targets[@]}"
