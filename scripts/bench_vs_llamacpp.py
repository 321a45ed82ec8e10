#!/usr/bin/env python3
"""Side-by-side speed of edgeq and llama.cpp on the same weights, interleaved.

Each round runs llama.cpp's llama-bench on its GGUF, then `edgeq bench` on edgeq's
quantization of the same F16 weights, with the same -p/-n/-t; rounds alternate the two
engines so that slow drifts of the machine (other load, heat) hit both alike. Reports,
per test, the median tokens/s of each engine over the rounds and the median of the
per-round ratios. llama.cpp is not built by this script: pass the path of a llama-bench
you built yourself (docs/performance.md says how it was built for the figures there).

  scripts/bench_vs_llamacpp.py --llama-bench ~/llama.cpp/build/bin/llama-bench \\
      --pair tinyllama:tl-q4_0.gguf:tl-w4g128.gguf -p 128 -n 64 -t 2 --rounds 5 --json out.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    start = out.find("[")
    return json.loads(out[start:])


def test_name(o):
    return f"pp{o['n_prompt']}" if o["n_gen"] == 0 else f"tg{o['n_gen']}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bench", required=True, help="path of llama.cpp's llama-bench")
    ap.add_argument("--edgeq", default=os.path.join(here, "..", "build", "edgeq"))
    ap.add_argument("--pair", action="append", required=True,
                    help="NAME:LLAMA_GGUF:EDGEQ_GGUF (repeatable)")
    ap.add_argument("-p", default="128")
    ap.add_argument("-n", default="64")
    ap.add_argument("-t", default="2", help="threads, or a list like 1,2")
    ap.add_argument("-r", default="2", help="repetitions inside each engine's run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write all samples and summaries here")
    a = ap.parse_args()

    results = []
    for pair in a.pair:
        name, lgguf, egguf = pair.split(":")
        samples = {}  # test -> {"llama.cpp": [...], "edgeq": [...], "ratio": [...]}
        for rnd in range(a.rounds):
            lj = run_json([a.llama_bench, "-m", lgguf, "-p", a.p, "-n", a.n, "-t", a.t, "-r", a.r, "-o", "json"])
            ej = run_json([a.edgeq, "bench", "-m", egguf, "-p", a.p, "-n", a.n, "-t", a.t, "-r", a.r, "--json"])
            lts = {(test_name(o), o["n_threads"]): o["avg_ts"] for o in lj}
            ets = {(o["test"], o["n_threads"]): o["avg_ts"] for o in ej}
            for t in lts:
                if t not in ets:
                    continue
                s = samples.setdefault(t, {"llama.cpp": [], "edgeq": [], "ratio": []})
                s["llama.cpp"].append(lts[t])
                s["edgeq"].append(ets[t])
                s["ratio"].append(ets[t] / lts[t])
            print(f"{name} round {rnd + 1}/{a.rounds}: " +
                  ", ".join(f"{t[0]}/t{t[1]} {samples[t]['edgeq'][-1]:.1f} vs {samples[t]['llama.cpp'][-1]:.1f}"
                            for t in samples), file=sys.stderr)
        lsize = os.path.getsize(lgguf)
        esize = os.path.getsize(egguf)
        for (t, threads), s in samples.items():
            results.append({
                "model": name, "test": t, "threads": threads, "rounds": a.rounds,
                "llama_cpp_gguf": os.path.basename(lgguf), "edgeq_gguf": os.path.basename(egguf),
                "llama_cpp_file_bytes": lsize, "edgeq_file_bytes": esize,
                "llama_cpp_ts_median": statistics.median(s["llama.cpp"]),
                "edgeq_ts_median": statistics.median(s["edgeq"]),
                "ratio_median": statistics.median(s["ratio"]),
                "ratio_min": min(s["ratio"]), "ratio_max": max(s["ratio"]),
                "samples": s,
            })
    print("| model | test | threads | llama.cpp t/s | edgeq t/s | edgeq / llama.cpp (median of rounds, min-max) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['test']} | {r['threads']} | {r['llama_cpp_ts_median']:.2f} | {r['edgeq_ts_median']:.2f} | "
              f"{r['ratio_median']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
