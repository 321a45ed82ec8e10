#!/usr/bin/env python3
"""Turns the JSON lines of scripts/quality.sh into the markdown table of docs/quality.md.
Usage: scripts/quality_table.py results.jsonl [more.jsonl ...]"""
import json
import sys

print("| scheme | outliers | GPTQ | bits/weight (matrices, with scales) | file bytes | PPL | mean KLD | 99% KLD | same top-1 |")
print("|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    for line in open(path):
        d = json.loads(line)
        r = d["result"]
        kld = f"{r['kld_mean']:.6f}" if "kld_mean" in r else "0 (base)"
        p99 = f"{r['kld_p99']:.5f}" if "kld_p99" in r else "-"
        top1 = f"{100 * r['top1_agree']:.2f}%" if "top1_agree" in r else "100%"
        bpw = d.get("bpw", 32)
        gptq = "yes" if d.get("gptq") else ("-" if d["scheme"] == "fp32" else "no")
        extra = f" ({100 * r['low_bit_fraction']:.0f}% 4-bit)" if "low_bit_fraction" in r else ""
        print(f"| {d['scheme']} | {d['outliers']}{extra} | {gptq} | {bpw} | {d['file_bytes']:,} | {r['ppl']:.4f} | {kld} | {p99} | {top1} |")
