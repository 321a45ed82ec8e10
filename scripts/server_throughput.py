#!/usr/bin/env python3
"""Aggregate decode throughput of `edgeq serve` with 1 stream vs N parallel streams.

Starts `edgeq serve` on a free loopback port (--parallel N), warms it up, then runs
interleaved rounds (1 stream, N streams, 1 stream, ...) so that a noisy shared machine
hurts both sides alike. Every stream is a greedy /v1/completions request with
ignore_eos and a fixed max_tokens, streamed over SSE.

Decode throughput of a round = decode tokens of all streams / decode window, where a
stream's decode tokens are its completion tokens after the first one and the window
runs from the earliest first token to the latest last token (prefill is excluded). The
end-to-end rate (all tokens / request wall time) is reported too. Prints one JSON line
per round and a summary: medians and the ratio of medians. Python standard library only.

  scripts/server_throughput.py --edgeq build/edgeq --rounds 3 --streams 4 --max-tokens 128 \
      [-- -m model.gguf -t 2]   # arguments after -- go to `edgeq serve`
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

from sse import sse_events

PROMPTS = ["Once upon a time", "The dog", "Lily and Tom", "One day, a big", "The sun was", "A little bird",
           "Mom said", "Sam had a red"]


def stream_one(port, prompt, max_tokens):
    """One streaming greedy completion. Returns dict(t0, first, last, end, tokens)."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True,
            "stream_options": {"include_usage": True}}
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
        first = last = None
        tokens, done = 0, False
        for j in sse_events(resp):
            if j is None:
                done = True
                continue
            if "error" in j:
                raise RuntimeError(f"stream error: {j['error']}")
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            if j["choices"] and j["choices"][0].get("text"):
                now = time.monotonic()
                if first is None:
                    first = now
                last = now
        if not done or tokens != max_tokens:
            raise RuntimeError(f"incomplete stream: done={done} tokens={tokens}")
        return {"t0": t0, "first": first, "last": last, "end": time.monotonic(), "tokens": tokens}
    finally:
        conn.close()


def cpu_seconds(pid):
    """CPU time of a process, all its threads, in seconds: the sum of the threads'
    /proc/PID/task/TID/schedstat run times (nanoseconds; /proc/PID/stat counts 10 ms ticks)."""
    if not pid:
        return None
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:  # the thread ended meanwhile
            pass
    return total / 1e9


def run_round(port, n_streams, max_tokens, round_index, pid=0):
    results, errors = [None] * n_streams, []

    def worker(i):
        try:
            results[i] = stream_one(port, PROMPTS[(round_index + i) % len(PROMPTS)], max_tokens)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(str(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_streams)]
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0 if pid else None
    if errors:
        raise SystemExit(f"server_throughput: {errors[0]}")
    first = min(r["first"] for r in results)
    last = max(r["last"] for r in results)
    decode_tokens = sum(r["tokens"] - 1 for r in results)
    return {
        "streams": n_streams, "max_tokens": max_tokens,
        "decode_tok_s": round(decode_tokens / (last - first), 2),
        "e2e_tok_s": round(sum(r["tokens"] for r in results) / wall, 2),
        "per_stream_decode_tok_s": [round((r["tokens"] - 1) / (r["last"] - r["first"]), 2) for r in results],
        "ttft_ms_max": round(1000 * max(r["first"] - r["t0"] for r in results), 1),
        "wall_s": round(wall, 3),
        # Server CPU time per generated token (prefill included): less sensitive than
        # wall time to other processes on a shared machine.
        "server_cpu_ms_per_token": round(1000 * cpu / sum(r["tokens"] for r in results), 3) if pid else None,
    }


def start_server(edgeq, parallel, serve_args):
    cmd = [edgeq, "serve", "--port", "0", "--parallel", str(parallel), "--no-log"] + serve_args
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        sys.stderr.write(line)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
        if " ready" in line and port:
            break
        if time.monotonic() > deadline:
            break
    if port is None or proc.poll() is not None:
        proc.kill()
        raise SystemExit("server_throughput: edgeq serve did not start: " + " ".join(cmd))
    # Keep draining stderr so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgeq", default="build/edgeq")
    ap.add_argument("--streams", type=int, default=4, help="parallel streams to compare with one")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each (interleaved)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--port", type=int, default=0, help="use a running server instead of starting one")
    ap.add_argument("--pid", type=int, default=0, help="with --port: the server's PID (for its CPU time)")
    ap.add_argument("serve_args", nargs="*", help="extra `edgeq serve` arguments (after --)")
    args = ap.parse_args()

    proc = None
    port, pid = args.port, args.pid
    if not port:
        proc, port = start_server(args.edgeq, args.streams, args.serve_args)
        pid = proc.pid
    try:
        run_round(port, args.streams, min(16, args.max_tokens), 0, pid)  # warm-up: pages, caches, allocator
        rows = {1: [], args.streams: []}
        for r in range(args.rounds):
            for n in (1, args.streams) if r % 2 == 0 else (args.streams, 1):
                row = run_round(port, n, args.max_tokens, r, pid)
                row["round"] = r
                rows[n].append(row)
                print(json.dumps(row), flush=True)
        med1 = statistics.median(x["decode_tok_s"] for x in rows[1])
        medn = statistics.median(x["decode_tok_s"] for x in rows[args.streams])
        e2e1 = statistics.median(x["e2e_tok_s"] for x in rows[1])
        e2en = statistics.median(x["e2e_tok_s"] for x in rows[args.streams])
        summary = {
            "summary": True, "rounds": args.rounds, "max_tokens": args.max_tokens, "serve_args": args.serve_args,
            "decode_tok_s_median_1": med1, f"decode_tok_s_median_{args.streams}": medn,
            "decode_ratio": round(medn / med1, 2),
            "e2e_tok_s_median_1": e2e1, f"e2e_tok_s_median_{args.streams}": e2en,
            "e2e_ratio": round(e2en / e2e1, 2),
        }
        if pid:
            c1 = statistics.median(x["server_cpu_ms_per_token"] for x in rows[1])
            cn = statistics.median(x["server_cpu_ms_per_token"] for x in rows[args.streams])
            summary.update({"server_cpu_ms_per_token_median_1": c1,
                            f"server_cpu_ms_per_token_median_{args.streams}": cn,
                            "cpu_per_token_ratio_1_over_n": round(c1 / cn, 2)})
        print(json.dumps(summary), flush=True)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
