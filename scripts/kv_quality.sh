#!/usr/bin/env bash
# KV-cache quality table of docs/quality.md: PPL and KL divergence of each --kv-type
# against the same weights with an fp32 KV cache (`edgeq perplexity --kl-fp32-kv`).
# Prints one JSON object per line.
# Usage: scripts/kv_quality.sh MODEL EVAL_TEXT CTX [kv-config ...]
#   kv-config: f16, q8, q4, q2, or adaptive:POLICY:WINDOW:SINKS (e.g. adaptive:squat:32:4);
#   a "+rot" suffix adds --kv-rotate (q4+rot, adaptive:squat:32:4+rot), a "+kc" suffix (before
#   +rot) --kv-key-layout channel (q4+kc, adaptive:squat:32:4+kc+rot).
#   CHUNKS=N in the environment scores only the first N chunks.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="$1"; EVAL="$2"; CTX="$3"; shift 3
CONFIGS=("$@")
[ "${#CONFIGS[@]}" -eq 0 ] && CONFIGS=(f16 q8 q4 q2 adaptive:sink-window:32:4 adaptive:squat:32:4)
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(-z "$TOKENIZER")
EXTRA=()
[ -n "${CHUNKS:-}" ] && EXTRA=(--chunks "$CHUNKS")
for cfg in "${CONFIGS[@]}"; do
  c="${cfg%+rot}"
  rot=0; [ "$c" != "$cfg" ] && rot=1
  c2="${c%+kc}"
  kc=0; [ "$c2" != "$c" ] && kc=1
  IFS=: read -r type policy window sinks <<< "$c2"
  args=(--kv-type "$type" "${EXTRA[@]}")
  [ "$rot" = 1 ] && args+=(--kv-rotate)
  [ "$kc" = 1 ] && args+=(--kv-key-layout channel)
  [ -n "${policy:-}" ] && args+=(--kv-policy "$policy" --kv-window "$window" --kv-sinks "$sinks")
  res=$(${EDGEQ:-build/edgeq} perplexity -m "$MODEL" "${TOK[@]}" -f "$EVAL" -c "$CTX" --kl-fp32-kv --json --no-progress "${args[@]}")
  echo "{\"kv\":\"$cfg\",\"result\":$res}"
done
