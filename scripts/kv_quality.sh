#!/usr/bin/env bash
# KV-cache quality table of docs/quality.md: PPL and KL divergence of each --kv-type
# against the same weights with an fp32 KV cache (`edgeq perplexity --kl-fp32-kv`).
# Prints one JSON object per line.
# Usage: scripts/kv_quality.sh MODEL EVAL_TEXT CTX [kv-config ...]
#   kv-config: f16, q8, q4, q2, or adaptive:POLICY:WINDOW:SINKS (e.g. adaptive:squat:32:4)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="$1"; EVAL="$2"; CTX="$3"; shift 3
CONFIGS=("$@")
[ "${#CONFIGS[@]}" -eq 0 ] && CONFIGS=(f16 q8 q4 q2 adaptive:sink-window:32:4 adaptive:squat:32:4)
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(-z "$TOKENIZER")
for cfg in "${CONFIGS[@]}"; do
  IFS=: read -r type policy window sinks <<< "$cfg"
  args=(--kv-type "$type")
  [ -n "${policy:-}" ] && args+=(--kv-policy "$policy" --kv-window "$window" --kv-sinks "$sinks")
  res=$(build/edgeq perplexity -m "$MODEL" "${TOK[@]}" -f "$EVAL" -c "$CTX" --kl-fp32-kv --json --no-progress "${args[@]}")
  echo "{\"kv\":\"$cfg\",\"result\":$res}"
done
