"""Shared by the scripts that repeat `edgeq bench` on a shared, noisy machine
(decode_vs_membw.py, decode_profile.py): the common flags, and the rounds themselves.

Each round runs `edgeq bench -m MODEL -p 0 -n N -t T -r R --json` plus the caller's flags
for every model in turn (so that drifts of the machine hit the models alike); the caller
turns the JSON object of each decode test into the sample it keeps (collect_samples).
"""
import argparse
import json
import subprocess
import sys


def parse_args(doc):
    """The common flags, with the calling script's docstring as its help."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    return ap.parse_args()


def add_common_args(ap):
    ap.add_argument("models", nargs="+")
    ap.add_argument("--edgeq", default="build/edgeq")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jsonl", help="write every sample here")


def decode_rounds(a, extra_flags, need_key):
    """Yields (round, model, decode_row) for a.rounds rounds over a.models; exits with a
    message when a bench run fails or its JSON has no decode row holding need_key."""
    for rnd in range(a.rounds):
        for m in a.models:
            cmd = [a.edgeq, "bench", *extra_flags, "-m", m, "-p", "0", "-n", str(a.n), "-t", str(a.t), "-r", str(a.r),
                   "--json"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
            rows = [r for r in json.loads(p.stdout) if r.get("n_gen", 0) > 0 and need_key in r]
            if not rows:
                sys.exit(f"{' '.join(cmd)}: no decode row with {need_key} in its JSON")
            yield rnd, m, rows[0]


def collect_samples(a, extra_flags, need_key, make_sample, describe):
    """Runs the rounds; each decode row becomes make_sample(round, model, row) (a dict,
    written as a JSON line to --jsonl when given), and a progress line "round i/n MODEL:
    describe(sample)" goes to stderr. Returns {model: [samples in round order]}."""
    samples = {m: [] for m in a.models}
    out = open(a.jsonl, "w") if a.jsonl else None
    try:
        for rnd, m, r in decode_rounds(a, extra_flags, need_key):
            s = make_sample(rnd + 1, m, r)
            samples[m].append(s)
            if out:
                out.write(json.dumps(s) + "\n")
                out.flush()
            print(f"round {rnd + 1}/{a.rounds} {m}: {describe(s)}", file=sys.stderr)
    finally:
        if out:
            out.close()
    return samples
