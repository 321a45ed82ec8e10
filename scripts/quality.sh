#!/usr/bin/env bash
# Quality table of docs/quality.md: quantizes a model with every scheme x outlier
# method and measures PPL and KL divergence against the fp32 model with
# `edgeq perplexity --kl-base`. Prints one JSON object per line.
# Usage: scripts/quality.sh [--gptq] MODEL EVAL_TEXT CALIB_TEXT CTX [scheme[:outliers][+gptq][+adaptive] ...]
#   e.g. scripts/quality.sh ../shared/models/ref6m/ref6m-f32.gguf /tmp/val300k.txt /tmp/calib300k.txt 256
# (val300k = first 300,000 bytes of ref6m/val.txt; calib300k = bytes 300,001-600,000.)
# --gptq quantizes every configuration with GPTQ (edgeq quantize --gptq, Hessians from
# CALIB_TEXT); a "+gptq" suffix does it for one configuration, e.g. w4a8-g128:rotate+gptq.
# Environment: TOKENIZER (llama2.c models), THREADS, SKIP_BASE=1 (no fp32 row).
set -euo pipefail
cd "$(dirname "$0")/.."
ALL_GPTQ=""
if [ "${1:-}" = "--gptq" ]; then ALL_GPTQ=1; shift; fi
MODEL="$1"; EVAL="$2"; CALIB="$3"; CTX="$4"; shift 4
CONFIGS=("$@")
if [ "${#CONFIGS[@]}" -eq 0 ]; then
  for s in w8a8 w4a8-g32 w4a8-g128 w4a8-g128a mixed-4.5; do
    for o in none smooth rotate; do CONFIGS+=("$s:$o"); done
  done
fi
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(-z "$TOKENIZER")
# THREADS=N passes -t N (results do not depend on it; on a loaded machine -t 1 wastes no
# time in thread synchronisation).
[ -n "${THREADS:-}" ] && TOK+=(-t "$THREADS")
work=$(mktemp -d)
if [ -z "${SKIP_BASE:-}" ]; then
  base=$(build/edgeq perplexity -m "$MODEL" "${TOK[@]}" -f "$EVAL" -c "$CTX" --json --no-progress)
  echo "{\"scheme\":\"fp32\",\"outliers\":\"none\",\"file_bytes\":$(stat -c %s "$MODEL"),\"result\":$base}"
fi
for cfg in "${CONFIGS[@]}"; do
  s="${cfg%%:*}"; o="none"; [[ "$cfg" == *:* ]] && o="${cfg#*:}"
  [[ "$s" == *+* ]] && { o="none+${s#*+}"; s="${s%%+*}"; }   # scheme+gptq without :outliers
  extra=(); qextra=(); gptq=false; label=""
  [[ "$o" == *+adaptive* ]] && { extra=(--adaptive-act); o="${o/+adaptive/}"; label=" +adaptive-act"; }
  if [[ "$o" == *+gptq* || -n "$ALL_GPTQ" ]]; then qextra=(--gptq); o="${o/+gptq/}"; gptq=true; fi
  out="$work/q.gguf"
  summary=$(build/edgeq quantize "$MODEL" "$out" "${TOK[@]}" --scheme "$s" --outliers "$o" --calib "$CALIB" -q "${qextra[@]}" | tail -1)
  bpw=$(echo "$summary" | sed -E 's/.*: ([0-9.]+) bits per weight.*/\1/')
  res=$(build/edgeq perplexity -m "$out" "${TOK[@]}" -f "$EVAL" -c "$CTX" --kl-base "$MODEL" --json --no-progress "${extra[@]}")
  echo "{\"scheme\":\"$s\",\"outliers\":\"$o$label\",\"gptq\":$gptq,\"bpw\":$bpw,\"file_bytes\":$(stat -c %s "$out"),\"result\":$res}"
done
rm -rf "$work"
