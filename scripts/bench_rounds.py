"""Shared by the scripts that repeat `edgeq bench` on a shared, noisy machine
(decode_vs_membw.py, decode_profile.py): the common flags, and the rounds themselves.

Each round runs `edgeq bench -m MODEL -p 0 -n N -t T -r R --json` plus the caller's flags
for every model in turn (so that drifts of the machine hit the models alike) and hands the
caller the JSON object of the decode test.
"""
import json
import subprocess
import sys


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
