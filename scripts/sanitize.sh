#!/usr/bin/env bash
# Builds the test suite with ASan+UBSan (gcc) and runs it. Any sanitizer report fails.
# Usage: scripts/sanitize.sh [build-dir]   (default: build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build-asan}"
scripts/setup.sh build >/dev/null  # dependencies (and the release build the README uses)
# The qemu tier tests run in the release suite (scripts/test.sh), not under ASan.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEQ_SANITIZE=ON -DEDGEQ_EMULATED_TESTS=OFF >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 1800
