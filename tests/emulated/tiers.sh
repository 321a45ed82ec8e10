#!/usr/bin/env bash
# One emulated CPU model: the edgeq binary built for it runs the stories260K golden greedy
# text and two quantized models (w4a8-g32, w8a8: the integer kernels, decode and prefill;
# perplexity within 1% of generic's) with each kernel tier forced by EDGEQ_ISA, and the automatic choice must be the best
# tier that CPU has. aarch64 also runs quant_test (every tier this CPU has against
# generic, odd sizes) and model_test (the engine against the scalar reference).
# Registered by tests/CMakeLists.txt (docs/architecture.md, "Emulated tiers").
# Usage: tiers.sh aarch64|x86_64 BUILD_DIR SRC_DIR CPU BEST_TIER TIER...
set -uo pipefail
arch=$1 build=$2 src=$3 cpu=$4 best=$5
shift 5
tiers=("$@")
# Threads: 2 on aarch64 (the threaded split of the ARM kernels); 1 under qemu-x86_64,
# whose emulation of the pool's spin-waits costs several times the work itself.
case $arch in
  aarch64) emu=(qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu"); threads=2 ;;
  x86_64) emu=(qemu-x86_64 -cpu "$cpu"); threads=1 ;;
  *) echo "tiers.sh: unknown arch $arch"; exit 2 ;;
esac
edgeq="$build/edgeq"
m="$src/models/stories260K"
tmp="$(mktemp -d /tmp/edgeq_emu_XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
fail=0
pass() { echo "PASS  $arch -cpu $cpu: $*"; }
bad() { echo "FAIL  $arch -cpu $cpu: $*"; fail=1; }

if [ "$arch" = aarch64 ]; then
  echo "== quant_test under ${emu[*]}"
  if "${emu[@]}" "$build/tests/quant_test" --gtest_brief=1 >"$tmp/qt" 2>&1; then
    pass "quant_test (kernel parity of every tier this CPU has against generic)"
  else
    cat "$tmp/qt"; bad "quant_test"
  fi
  echo "== model_test under ${emu[*]}"
  if "${emu[@]}" "$build/tests/model_test" --gtest_brief=1 >"$tmp/mt" 2>&1; then
    pass "model_test (engine vs scalar reference, best tier)"
  else
    cat "$tmp/mt"; bad "model_test"
  fi
fi

# Runs edgeq under the emulator with EDGEQ_ISA=$1 (empty: automatic); output in $tmp/out,
# the -v log in $tmp/err. Fails unless the log names tier $2.
run() {
  local force=$1 want=$2
  shift 2
  if [ -n "$force" ]; then
    EDGEQ_ISA=$force "${emu[@]}" "$edgeq" run "$@" --temp 0 -t $threads -v >"$tmp/out" 2>"$tmp/err"
  else
    env -u EDGEQ_ISA "${emu[@]}" "$edgeq" run "$@" --temp 0 -t $threads -v >"$tmp/out" 2>"$tmp/err"
  fi
  local rc=$?
  if [ $rc -ne 0 ]; then cat "$tmp/err"; bad "edgeq run exited $rc (EDGEQ_ISA=$force)"; return 1; fi
  if ! grep -q "^edgeq: kernels: $want tier" "$tmp/err"; then
    grep "^edgeq: kernels" "$tmp/err"; bad "expected kernel tier $want (EDGEQ_ISA=$force)"; return 1
  fi
  return 0
}

golden=(-m "$m/stories260K.bin" -z "$m/tok512.bin" -n 200)
if run "" "$best" "${golden[@]}"; then
  pass "automatic tier is $best ($(grep '^edgeq: cpu: ' "$tmp/err" | sed 's/.*cpu: //'))"
  cmp -s "$tmp/out" "$src/tests/stories260K-greedy200.txt" && pass "golden text, tier $best" || bad "golden text differs, tier $best"
fi
for t in "${tiers[@]}"; do
  [ "$t" = "$best" ] && continue  # the automatic run above
  if run "$t" "$t" "${golden[@]}"; then
    cmp -s "$tmp/out" "$src/tests/stories260K-greedy200.txt" && pass "golden text, EDGEQ_ISA=$t" || bad "golden text differs, EDGEQ_ISA=$t"
  fi
done

# Quantized models: every tier runs them (-v names the tier) and scores the golden text
# with the same perplexity as generic within 1% (tiers differ in float details such as
# the exp approximation, so greedy text may part at a near tie; the integer kernels are
# compared exactly by quant_test). The quantizer runs natively where it can (x86_64: the
# same binary), else emulated.
qemu_q=("${emu[@]}")
[ "$arch" = x86_64 ] && qemu_q=()
ppl_of() {  # tier model -> prints the perplexity of the golden text, or nothing
  EDGEQ_ISA=$1 "${emu[@]}" "$edgeq" perplexity -m "$2" -f "$src/tests/stories260K-greedy200.txt" -c 128 \
    -t $threads --json 2>"$tmp/perr" | grep -o '"ppl":[0-9.eE+-]*' | head -1 | cut -d: -f2
}
for s in w4a8-g32 w8a8; do
  if ! "${qemu_q[@]}" "$edgeq" quantize "$m/stories260K.bin" "$tmp/$s.gguf" -z "$m/tok512.bin" --scheme "$s" -q \
      >/dev/null 2>"$tmp/qerr"; then
    cat "$tmp/qerr"; bad "quantize $s"; continue
  fi
  q=(-m "$tmp/$s.gguf" -p "Once upon a time" -n 60)
  run generic generic "${q[@]}" || continue
  [ -s "$tmp/out" ] && pass "$s runs on generic ($(wc -c <"$tmp/out") bytes of text)" || bad "$s: no text on generic"
  ref=$(ppl_of generic "$tmp/$s.gguf")
  [ -n "$ref" ] || { cat "$tmp/perr"; bad "$s: no perplexity on generic"; continue; }
  for t in "${tiers[@]}"; do
    [ "$t" = generic ] && continue
    run "$t" "$t" "${q[@]}" || continue
    [ -s "$tmp/out" ] || { bad "$s: no text, EDGEQ_ISA=$t"; continue; }
    p=$(ppl_of "$t" "$tmp/$s.gguf")
    if [ -n "$p" ] && awk -v a="$p" -v b="$ref" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01 * b) }'; then
      pass "$s perplexity $p within 1% of generic's $ref, EDGEQ_ISA=$t"
    else
      cat "$tmp/perr"; bad "$s perplexity '$p' not within 1% of generic's $ref, EDGEQ_ISA=$t"
    fi
  done
done
exit $fail
