#!/usr/bin/env python3
"""Decode tokens/s against KV depth, one line per KV cache format, from the JSON of
`edgeq bench -d D1,D2,... --kv-type f16,q8,... --json` (one or more files), as an SVG.
Usage: scripts/plot_kv.py OUT.svg bench1.json [bench2.json ...]"""
import json
import sys

W, H, L, R, T, B = 700, 400, 60, 250, 30, 50
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    series = {}
    for i, p in enumerate(paths):
        seen = set(series)
        for r in json.load(open(p)):
            name = r["kv_type"]
            if name in seen:  # the same format from another file (run): its own line
                name += f" (file {i + 1})"
            series.setdefault(name, []).append((r["n_depth"], r.get("median_ts", r["avg_ts"])))
    xs = sorted({d for s in series.values() for d, _ in s})
    ymax = max(v for s in series.values() for _, v in s) * 1.1
    px = lambda d: L + (W - L - R) * xs.index(d) / max(1, len(xs) - 1)
    py = lambda v: H - B - (H - T - B) * v / ymax
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
         f'<text x="{(L+W-R)/2}" y="{H-10}" text-anchor="middle">KV depth (tokens already in the cache)</text>',
         f'<text x="15" y="{(T+H-B)/2}" transform="rotate(-90 15 {(T+H-B)/2})" text-anchor="middle">decode tokens/s (median)</text>']
    for d in xs:
        o.append(f'<text x="{px(d)}" y="{H-B+16}" text-anchor="middle">{d}</text>')
    for i in range(6):
        v = ymax * i / 5
        o.append(f'<text x="{L-6}" y="{py(v)+4}" text-anchor="end">{v:.0f}</text>')
        o.append(f'<line x1="{L}" y1="{py(v)}" x2="{W-R}" y2="{py(v)}" stroke="#ddd"/>')
    for k, (name, pts) in enumerate(series.items()):
        c = COLORS[k % len(COLORS)]
        pts = sorted(pts)
        o.append(f'<polyline points="{" ".join(f"{px(d):.1f},{py(v):.1f}" for d, v in pts)}" fill="none" stroke="{c}" stroke-width="2"/>')
        for d, v in pts:
            o.append(f'<circle cx="{px(d):.1f}" cy="{py(v):.1f}" r="3" fill="{c}"/>')
        o.append(f'<line x1="{W-R+10}" y1="{T+10+18*k}" x2="{W-R+30}" y2="{T+10+18*k}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{W-R+35}" y="{T+14+18*k}">{name}</text>')
    o.append("</svg>")
    open(out, "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
