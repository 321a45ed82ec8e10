#!/usr/bin/env bash
# Runs the official OpenAI Node client (npm package `openai`, pinned in package-lock.json)
# against `edgeq serve` on the shipped default model. Usage: run.sh EDGEQ_BINARY WORK_DIR
# Exit 77 (ctest: skipped, with the reason printed) when node/npm are missing, except
# under EDGEQ_REQUIRE_OPENAI_CLIENT=1 (set by .ci/run): there a missing client fails.
set -euo pipefail
EDGEQ="$1"
WORK="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "${EDGEQ_REQUIRE_OPENAI_CLIENT:-0}" = 1 ]; then
    echo "FAILED: node and npm are required for the OpenAI client test here (EDGEQ_REQUIRE_OPENAI_CLIENT=1)"
    exit 1
  fi
  echo "SKIPPED: node and npm are needed for the OpenAI client test (scripts/setup.sh installs them)"
  exit 77
fi
mkdir -p "$WORK"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/test.mjs" "$WORK/"
cd "$WORK"
npm ci --no-audit --no-fund --loglevel=error  # exactly the locked version
LOG="$WORK/serve.log"
"$EDGEQ" serve --port 0 -t 2 --api-key test-key --alias stories260K 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -1)
  if [ -n "$PORT" ] && grep -q "ready" "$LOG"; then break; fi
  sleep 0.1
done
if [ -z "$PORT" ]; then
  echo "edgeq serve did not start:"; cat "$LOG"; exit 1
fi
node test.mjs "http://127.0.0.1:$PORT/v1"
kill -INT $PID
wait $PID
echo "server log:"; cat "$LOG"
