#!/usr/bin/env python3
"""Markdown table from scripts/kv_quality.sh output (JSON lines on stdin or a file)."""
import json
import sys

F16 = None
rows = []
for line in (open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin):
    line = line.strip()
    if not line:
        continue
    j = json.loads(line)
    rows.append(j)
    if j["kv"] == "f16":
        F16 = j["result"]["kv_bytes_per_token"]
print("| KV cache | bytes/token (all layers, K+V) | % of f16 | PPL | PPL vs fp32 KV | mean KLD | 99% KLD | same top-1 | tokens x layers 2/4/8-bit |")
print("|---|---|---|---|---|---|---|---|---|")
for j in rows:
    r = j["result"]
    b = r["kv_bytes_per_token"]
    pct = f"{100 * b / F16:.1f}%" if F16 else "-"
    mix = "-"
    if "kv_tokens_2bit" in r:
        mix = f'{r["kv_tokens_2bit"]} / {r["kv_tokens_4bit"]} / {r["kv_tokens_8bit"]}'
    dppl = 100 * (r["ppl"] / r["base_ppl"] - 1)
    print(f'| {r["kv_type"]} | {b:.1f} | {pct} | {r["ppl"]:.4f} | {dppl:+.3f}% | {r["kld_mean"]:.6f} | '
          f'{r["kld_p99"]:.5f} | {100 * r["top1_agree"]:.2f}% | {mix} |')
if rows:
    print(f'\nfp32 KV: PPL {rows[0]["result"]["base_ppl"]:.4f}.')
