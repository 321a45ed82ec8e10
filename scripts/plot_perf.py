#!/usr/bin/env python3
"""Plots scripts/bench_vs_llamacpp.py results as one SVG (no plotting library needed).

Panels: tokens/s against threads for one model, and tokens/s against model size at the
largest thread count, each for prompt processing (pp) and generation (tg), edgeq and
llama.cpp. Values are the medians over rounds that the JSON holds.

  scripts/plot_perf.py results.json docs/figures/speed.svg --threads-model tinyllama-1.1b
"""
import argparse
import json
import math

W, H = 460, 320          # one panel
ML, MR, MT, MB = 62, 16, 34, 46
COLORS = {"edgeq": "#1f77b4", "llama.cpp": "#d62728"}
DASH = {"pp": "", "tg": "6,4"}


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;")


def nice_log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def panel(x0, y0, title, xlabel, series, xlog, xticks, xfmt, legend_right=False):
    """series: list of (label, engine, kind, [(x, y)]) ; y on a log scale."""
    out = [f'<g transform="translate({x0},{y0})">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{esc(title)}</text>']
    xs = [p[0] for s in series for p in s[3]]
    ys = [p[1] for s in series for p in s[3]]
    if not xs:
        return out + ["</g>"]
    ylo, yhi = min(ys) / 1.5, max(ys) * 1.5
    xlo, xhi = min(xs), max(xs)
    if xlog:
        xlo, xhi = xlo / 1.3, xhi * 1.3
    else:
        pad = (xhi - xlo) * 0.1 or 0.5
        xlo, xhi = xlo - pad, xhi + pad
    fx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    px = lambda v: ML + (fx(v) - fx(xlo)) / (fx(xhi) - fx(xlo)) * (W - ML - MR)
    py = lambda v: H - MB - (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * (H - MT - MB)
    out.append(f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" fill="none" stroke="#888"/>')
    for t in nice_log_ticks(ylo, yhi):
        y = py(t)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{t:g}</text>')
    for t in xticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - MB}" y2="{H - MB + 4}" stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{H - MB + 16}" text-anchor="middle" font-size="11">{esc(xfmt(t))}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" font-size="12">{esc(xlabel)}</text>')
    out.append(f'<text x="14" y="{(MT + H - MB) / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {(MT + H - MB) / 2})">tokens/s (log)</text>')
    for i, (label, engine, kind, pts) in enumerate(series):
        pts = sorted(pts)
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash = f' stroke-dasharray="{DASH[kind]}"' if DASH[kind] else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[engine]}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{COLORS[engine]}"/>')
        ly = MT + 14 + 15 * i
        lx = W - MR - 150 if legend_right else ML + 8
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{COLORS[engine]}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 26}" y="{ly}" font-size="11">{esc(label)}</text>')
    out.append("</g>")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="bench_vs_llamacpp.py --json outputs")
    ap.add_argument("out")
    ap.add_argument("--threads-model", required=True, help="model name for the threads panel")
    a = ap.parse_args()
    rows = []
    for f in a.json:
        with open(f) as fh:
            rows += json.load(fh)
    kinds = sorted({r["test"][:2] for r in rows})
    tests = {k: sorted({r["test"] for r in rows if r["test"].startswith(k)}) for k in kinds}

    def series_by(key_x, pick):
        out = []
        for k in kinds:
            for eng, field in (("edgeq", "edgeq_ts_median"), ("llama.cpp", "llama_cpp_ts_median")):
                pts = [(key_x(r), r[field]) for r in rows if r["test"].startswith(k) and pick(r)]
                if pts:
                    out.append((f"{eng} {'/'.join(tests[k])}", eng, k, pts))
        return out

    threads_series = series_by(lambda r: r["threads"], lambda r: r["model"] == a.threads_model)
    tmax = max(r["threads"] for r in rows)
    size_series = series_by(lambda r: r["llama_cpp_file_bytes"] / 2**20, lambda r: r["threads"] == tmax)
    tvals = sorted({r["threads"] for r in rows if r["model"] == a.threads_model})
    svals = sorted({r["llama_cpp_file_bytes"] / 2**20 for r in rows if r["threads"] == tmax})
    names = {r["llama_cpp_file_bytes"] / 2**20: r["model"] for r in rows}
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 20}" font-family="sans-serif">',
           f'<rect width="{2 * W}" height="{H + 20}" fill="white"/>']
    svg += panel(0, 0, f"{a.threads_model}: tokens/s vs threads", "threads", threads_series, False, tvals,
                 lambda v: f"{v:g}")
    svg += panel(W, 0, f"tokens/s vs model size ({tmax} threads)", "llama.cpp Q4_0 file size (MiB)", size_series,
                 True, svals, lambda v: f"{v:.0f}", legend_right=True)
    svg.append(f'<text x="{W}" y="{H + 14}" text-anchor="middle" font-size="10" fill="#555">'
               f'models: {esc(", ".join(names[v] for v in svals))}; medians of interleaved rounds</text>')
    svg.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
