#!/usr/bin/env python3
"""Server fault mix for `edgeq serve` (loopback only), for a fixed duration.

Starts the server itself (the shipped stories260K model unless --model), then runs, all at
once, until --seconds have passed:
  - good clients: streaming and non-streaming completions with temperature 0; every
    answer is checked against the server's own greedy answer for that prompt (taken once
    at start), so a request that was accepted and then lost or corrupted is counted;
  - disconnectors: start a stream and hang up after a few chunks;
  - slow senders: send half a request and stall past the read timeout;
  - oversized and endless bodies: Content-Length far above the limit, or a body that
    keeps coming;
  - garbage: invalid JSON, invalid UTF-8, wrong types;
  - idle connections: open sockets that send nothing.
The mix first runs for a warm-up (--warmup-seconds, default min(60, seconds/10)), whose
RSS after the server goes idle is the baseline: the first minute of the mix raises RSS
once (24 HTTP threads' stacks and per-thread malloc arenas, all touched for the first
time), and a 60 s and a 600 s run ended at the same RSS (docs/reliability.md). Then the
mix runs for --seconds. At the end: every slot is free, /health answers, and the
server's RSS is back within --rss-slack-mib of the baseline. The RSS before any fault
(after 20 plain requests) is printed too (rss_kib_start). Every request of both phases
is counted. Prints one JSON line; exit 1 on any failure.

  scripts/server_faults.py --edgeq build/edgeq --seconds 600
"""
import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

PROMPTS = ["Once upon a time", "The dog", "Lily and Tom", "One day, a big", "The sun was", "A little bird"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def post(port, path, body, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def stream_text(port, prompt, max_tokens, timeout=60):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return r.status, None
        raw = r.read().decode("utf-8", "replace")
        if "data: [DONE]" not in raw:
            return 200, None
        text = ""
        for ev in raw.split("\n\n"):
            if ev.startswith("data: ") and ev != "data: [DONE]":
                j = json.loads(ev[6:])
                if "error" in j:
                    return 200, None
                if j["choices"]:
                    text += j["choices"][0]["text"]
        return 200, text
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgeq", default="build/edgeq")
    ap.add_argument("--model", default="")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--rss-slack-mib", type=float, default=16)
    ap.add_argument("--warmup-seconds", type=float, default=-1)
    args = ap.parse_args()

    cmd = [args.edgeq, "serve", "--port", "0", "-t", "2", "--parallel", str(args.parallel), "--read-timeout", "2",
           "--max-body", "65536", "--no-log", "--alias", "m"]
    if args.model:
        cmd += ["-m", args.model]
    srv = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
        if "ready" in line:
            break
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    if port is None:
        sys.exit("server_faults: edgeq serve did not start")

    stats = {k: 0 for k in ["good_ok", "good_refused", "good_lost", "good_wrong", "disconnects", "slow", "oversized",
                            "endless", "garbage_ok", "garbage_bad_status", "idle"]}
    lock = threading.Lock()

    def bump(k, n=1):
        with lock:
            stats[k] += n

    # Reference answers (greedy, so every later answer must match exactly).
    ref = {}
    for p in PROMPTS:
        st, body = post(port, "/v1/completions", json.dumps({"prompt": p, "max_tokens": 48, "temperature": 0}))
        assert st == 200, body
        ref[p] = json.loads(body)["choices"][0]["text"]
    for _ in range(20):  # warm-up, then the memory baseline
        post(port, "/v1/completions", json.dumps({"prompt": PROMPTS[0], "max_tokens": 48, "temperature": 0}))
    time.sleep(0.5)
    rss_start = rss_kib(srv.pid)
    dl = [0.0]  # the current phase's deadline

    def good(stream):
        rnd = random.Random()
        while time.monotonic() < dl[0]:
            p = rnd.choice(PROMPTS)
            try:
                if stream:
                    st, text = stream_text(port, p, 48)
                else:
                    st, body = post(port, "/v1/completions", json.dumps({"prompt": p, "max_tokens": 48, "temperature": 0}))
                    text = json.loads(body)["choices"][0]["text"] if st == 200 else None
            except Exception:
                bump("good_lost")
                continue
            if st in (429, 503):
                bump("good_refused")
            elif st != 200 or text is None:
                bump("good_lost")
            elif text != ref[p]:
                bump("good_wrong")
            else:
                bump("good_ok")

    def disconnector():
        while time.monotonic() < dl[0]:
            s = socket.create_connection(("127.0.0.1", port))
            body = json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "stream": True})
            s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            s.recv(300)
            s.close()
            bump("disconnects")
            time.sleep(0.05)

    def slow():
        while time.monotonic() < dl[0]:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
            time.sleep(3)  # past the 2 s read timeout
            s.close()
            bump("slow")

    def oversized():
        while time.monotonic() < dl[0]:
            try:
                st, _ = post(port, "/v1/completions", json.dumps({"prompt": "a" * 200000}))
                bump("oversized" if st == 413 else "garbage_bad_status")
            except Exception:
                bump("oversized")  # the server may close while the body is still being sent
            s = socket.create_connection(("127.0.0.1", port))
            try:
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(200):  # an endless chunked body
                    s.sendall(b"1000\r\n" + b"a" * 4096 + b"\r\n")
            except OSError:
                pass
            s.close()
            bump("endless")
            time.sleep(0.2)

    def garbage():
        bodies = ["{", "[]", '{"prompt": 5}', b'{"prompt":"\xff\xfe"}', '{"prompt":"x","max_tokens":1e99}',
                  '{"messages":[{"role":"user"}]}', "", "null"]
        while time.monotonic() < dl[0]:
            for b in bodies:
                path = "/v1/chat/completions" if "messages" in str(b) else "/v1/completions"
                try:
                    st, body = post(port, path, b)
                    ok = 400 <= st < 500 and "error" in json.loads(body)
                    bump("garbage_ok" if ok else "garbage_bad_status")
                except Exception:
                    bump("garbage_bad_status")
            time.sleep(0.1)

    def idle():
        socks = []
        while time.monotonic() < dl[0]:
            if len(socks) < 8:
                socks.append(socket.create_connection(("127.0.0.1", port)))
                bump("idle")
            time.sleep(0.5)
        for s in socks:
            s.close()

    def run_mix(seconds):
        dl[0] = time.monotonic() + seconds
        threads = [threading.Thread(target=good, args=(i % 2 == 0,)) for i in range(4)]
        mix = os.environ.get("FAULTS", "disconnector,slow,oversized,garbage,idle").split(",")
        fns = {"disconnector": disconnector, "slow": slow, "oversized": oversized, "garbage": garbage, "idle": idle}
        threads += [threading.Thread(target=fns[f]) for f in mix if f]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0)  # the executor goes idle and trims

    warmup = args.warmup_seconds if args.warmup_seconds >= 0 else min(60.0, args.seconds / 10)
    if warmup > 0:
        run_mix(warmup)
    rss0 = rss_kib(srv.pid)
    run_mix(args.seconds)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health")
    health = json.loads(conn.getresponse().read())
    rss1 = rss_kib(srv.pid)
    srv.terminate()
    srv.wait(timeout=30)
    out = dict(stats, seconds=args.seconds, warmup_seconds=warmup, slots_processing_after=health["slots_processing"],
               rss_kib_start=rss_start, rss_kib_baseline=rss0, rss_kib_after=rss1)
    print(json.dumps(out))
    failed = (stats["good_lost"] or stats["good_wrong"] or stats["garbage_bad_status"] or health["slots_processing"] != 0
              or rss1 - rss0 > args.rss_slack_mib * 1024 or stats["good_ok"] == 0)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
