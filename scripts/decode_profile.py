#!/usr/bin/env python3
"""Where a decode token's time goes, step by step, as medians over several bench runs.

Runs `edgeq bench -m MODEL -p 0 -n N -t T -r R --profile --json` ROUNDS times per model
(models alternating, so that drifts of a shared machine hit them alike) and prints, per
model, a table of the median over rounds of each step's ms per token, its share of the
forward pass, and the GB/s of weights the matrix steps read; --jsonl keeps every run's
profile.

  scripts/decode_profile.py --edgeq build/edgeq tl-w4a8-g128.gguf tl-w8a8.gguf --rounds 5
"""
import statistics

from bench_rounds import collect_samples, parse_args


def main():
    a = parse_args(__doc__)
    runs = collect_samples(
        a, ["--profile"], "profile",
        lambda rnd, m, r: {"round": rnd, "model": m, "avg_ts": r["avg_ts"], "profile": r["profile"]},
        lambda s: f"{s['avg_ts']:.2f} t/s, forward {s['profile']['forward_ms_per_token']:.3f} ms/token")
    for m, rs in runs.items():
        med = lambda f: statistics.median(f(x["profile"]) for x in rs)
        fwd = med(lambda p: p["forward_ms_per_token"])
        print(f"\n{m}: tg{a.n}, {a.t} threads, medians of {len(rs)} runs; {statistics.median(x['avg_ts'] for x in rs):.2f} "
              f"t/s, forward pass {fwd:.3f} ms/token\n")
        print("| step | ms/token | of forward | weight GB/s |")
        print("|---|---|---|---|")
        # The forward pass's order (the JSON's keys are sorted by name).
        order = ["embed", "attn_norm", "qkv", "rope_kv", "attention", "wo", "ffn_norm", "gate_up", "swiglu", "down",
                 "residual", "head"]
        names = rs[0]["profile"]["ms_per_token"].keys()
        steps = [s for s in order if s in names] + sorted(s for s in names if s not in order)
        for st in steps + ["(outside the steps)"]:
            if st.startswith("("):
                ms = med(lambda p: p["unprofiled_ms_per_token"])
            else:
                ms = med(lambda p: p["ms_per_token"][st])
            gb = ""
            if st in rs[0]["profile"].get("weight_gbps", {}):
                gb = f"{med(lambda p: p['weight_gbps'][st]):.1f}"
            print(f"| {st} | {ms:.3f} | {100 * ms / fwd:.1f}% | {gb} |")


if __name__ == "__main__":
    main()
