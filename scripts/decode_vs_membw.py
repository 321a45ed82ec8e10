#!/usr/bin/env python3
"""Decode speed against the memory limit, measured in pairs on a shared machine.

Each round runs, for every model, `edgeq bench --membw -m MODEL -p 0 -n N -t T -r R --json`:
the bench first measures the machine's read bandwidth (a streaming-read kernel, the same
threads) and then decodes, so each decode figure has a bandwidth figure taken seconds
before it. Rounds alternate the models, so that drifts of the machine (other tenants,
heat) hit them alike. Prints, per model, the medians over rounds of the bandwidth, the
decode tokens/s, the weight GB/s read in decode and their ratio (the median of the
per-round ratios), and writes every sample as JSON lines with --jsonl.

  scripts/decode_vs_membw.py --edgeq build/edgeq tl-w4a8-g128.gguf tl-w8a8.gguf --rounds 5
"""
import statistics

from bench_rounds import collect_samples, parse_args


def main():
    a = parse_args(__doc__)
    samples = collect_samples(
        a, ["--membw"], "membw_gbps",
        lambda rnd, m, r: {"round": rnd, "model": m, "membw_gbps": r["membw_gbps"], "avg_ts": r["avg_ts"],
                           "decode_weight_gbps": r["decode_weight_gbps"], "membw_fraction": r["membw_fraction"],
                           "weight_bytes_per_token": r["weight_bytes_per_token"],
                           "peak_rss_bytes": r.get("peak_rss_bytes")},
        lambda s: f"{s['membw_gbps']:.1f} GB/s measured, {s['avg_ts']:.2f} t/s, "
                  f"{s['decode_weight_gbps']:.1f} GB/s in decode = {100 * s['membw_fraction']:.0f}%")
    print("| model | measured GB/s | tg t/s | weight MB/token | decode GB/s | of measured (median, min-max) |")
    print("|---|---|---|---|---|---|")
    for m, ss in samples.items():
        med = lambda k: statistics.median(x[k] for x in ss)
        fr = [x["membw_fraction"] for x in ss]
        print(f"| {m} | {med('membw_gbps'):.1f} | {med('avg_ts'):.2f} | {ss[0]['weight_bytes_per_token'] / 1e6:.0f} | "
              f"{med('decode_weight_gbps'):.1f} | {100 * statistics.median(fr):.0f}% ({100 * min(fr):.0f}-{100 * max(fr):.0f}%) |")


if __name__ == "__main__":
    main()
