#!/usr/bin/env python3
"""Where a decode token's time goes, step by step, as medians over several bench runs.

Runs `edgeq bench -m MODEL -p 0 -n N -t T -r R --profile --json` ROUNDS times per model
(models alternating, so that drifts of a shared machine hit them alike) and prints, per
model, a table of the median over rounds of each step's ms per token, its share of the
forward pass, and the GB/s of weights the matrix steps read; --jsonl keeps every run's
profile.

  scripts/decode_profile.py --edgeq build/edgeq tl-w4a8-g128.gguf tl-w8a8.gguf --rounds 5
"""
import argparse
import json
import statistics
import sys

from bench_rounds import add_common_args, decode_rounds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    a = ap.parse_args()
    runs = {m: [] for m in a.models}
    out = open(a.jsonl, "w") if a.jsonl else None
    for rnd, m, r in decode_rounds(a, ["--profile"], "profile"):
        s = {"round": rnd + 1, "model": m, "avg_ts": r["avg_ts"], "profile": r["profile"]}
        runs[m].append(s)
        if out:
            out.write(json.dumps(s) + "\n")
            out.flush()
        print(f"round {rnd + 1}/{a.rounds} {m}: {r['avg_ts']:.2f} t/s, forward "
              f"{r['profile']['forward_ms_per_token']:.3f} ms/token", file=sys.stderr)
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
