#!/usr/bin/env bash
# Quality table of docs/quality.md: quantizes a model with every scheme x outlier
# method and measures PPL and KL divergence against the fp32 model with
# `edgeq perplexity --kl-base`. Prints one JSON object per line.
# Usage: scripts/quality.sh MODEL EVAL_TEXT CALIB_TEXT CTX [schemes...] 
#   e.g. scripts/quality.sh ../shared/models/ref6m/ref6m-f32.gguf /tmp/val300k.txt /tmp/calib300k.txt 256
# (val300k = first 300,000 bytes of ref6m/val.txt; calib300k = bytes 300,001-600,000.)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="$1"; EVAL="$2"; CALIB="$3"; CTX="$4"; shift 4
SCHEMES=("$@")
[ "${#SCHEMES[@]}" -eq 0 ] && SCHEMES=(w8a8 w4a8-g32 w4a8-g128 w4a8-g128a mixed-4.5)
OUTLIERS=(${OUTLIERS:-none smooth rotate})
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(-z "$TOKENIZER")
work=$(mktemp -d)
base=$(build/edgeq perplexity -m "$MODEL" "${TOK[@]}" -f "$EVAL" -c "$CTX" --json --no-progress)
echo "{\"scheme\":\"fp32\",\"outliers\":\"none\",\"file_bytes\":$(stat -c %s "$MODEL"),\"result\":$base}"
for s in "${SCHEMES[@]}"; do
  for o in "${OUTLIERS[@]}"; do
    out="$work/q.gguf"
    summary=$(build/edgeq quantize "$MODEL" "$out" "${TOK[@]}" --scheme "$s" --outliers "$o" --calib "$CALIB" -q | tail -1)
    bpw=$(echo "$summary" | sed -E 's/.*: ([0-9.]+) bits per weight.*/\1/')
    res=$(build/edgeq perplexity -m "$out" "${TOK[@]}" -f "$EVAL" -c "$CTX" --kl-base "$MODEL" --json --no-progress)
    echo "{\"scheme\":\"$s\",\"outliers\":\"$o\",\"bpw\":$bpw,\"file_bytes\":$(stat -c %s "$out"),\"result\":$res}"
  done
done
rm -rf "$work"
