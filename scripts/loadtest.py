#!/usr/bin/env python3
"""Bounded load test for `edgeq serve` (or any OpenAI-compatible server), loopback only.

Runs a fixed number of streaming /v1/completions requests from N concurrent clients,
checks every accepted request ends with finish_reason and [DONE], and prints one JSON
object: requests, accepted, refused (503/429), failed (accepted but broken), aggregate
generated tokens per second, time-to-first-token and inter-token latency percentiles,
and, with --pid, the server's RSS before and after (memory must come back to its
baseline). Python standard library only.

  scripts/loadtest.py --port 8080 --clients 4 --requests 32 --max-tokens 64 [--duration S] [--pid PID]
"""
import argparse
import http.client
import json
import statistics
import threading
import time

from sse import sse_events


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def one_request(host, port, model, prompt, max_tokens, key, timeout):
    """Returns dict(status, tokens, ttft, itls, ok, error)."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True,
            "stream_options": {"include_usage": True}}
    if model:
        body["model"] = model
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), headers)
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            return {"status": resp.status, "ok": False, "tokens": 0, "itls": []}
        tokens, ttft, itls, last, finish, done = 0, None, [], None, None, False
        for j in sse_events(resp):
            if j is None:
                done = True
                continue
            if "error" in j:
                return {"status": 200, "ok": False, "tokens": tokens, "itls": itls, "error": j["error"]}
            now = time.monotonic()
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            if j["choices"] and j["choices"][0].get("text"):
                if ttft is None:
                    ttft = now - t0
                elif last is not None:
                    itls.append(now - last)
                last = now
            if j["choices"] and j["choices"][0].get("finish_reason"):
                finish = j["choices"][0]["finish_reason"]
        return {"status": 200, "ok": done and finish is not None, "tokens": tokens, "ttft": ttft, "itls": itls,
                "end": time.monotonic()}
    except Exception as e:  # a dead connection of an accepted request is a failure
        return {"status": -1, "ok": False, "tokens": 0, "itls": [], "error": str(e)}
    finally:
        conn.close()


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", default="")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=32, help="total requests (fixed count)")
    ap.add_argument("--duration", type=float, default=0,
                    help="seconds: clients start new requests until then (bounded by --requests too)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--pid", type=int, default=0, help="server PID: report RSS before/after")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadtest: loopback only")

    prompts = ["Once upon a time", "The dog", "Lily and Tom", "One day, a big", "The sun was", "A little bird",
               "Mom said", "Sam had a red"]
    rss_before = rss_kib(args.pid) if args.pid else None
    results, lock, next_i = [], threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                i = next_i[0]
                if i >= args.requests or (args.duration and time.monotonic() - t0 >= args.duration):
                    return
                next_i[0] += 1
            r = one_request(args.host, args.port, args.model, prompts[i % len(prompts)], args.max_tokens,
                            args.api_key, args.timeout)
            with lock:
                results.append(r)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    time.sleep(0.5)
    rss_after = rss_kib(args.pid) if args.pid else None

    accepted = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] in (429, 503)]
    failed = [r for r in accepted if not r["ok"]] + [r for r in results if r["status"] not in (200, 429, 503)]
    sent = len(results)
    tokens = sum(r["tokens"] for r in accepted)
    ttfts = [r["ttft"] for r in accepted if r.get("ttft") is not None]
    itls = [x for r in accepted for x in r["itls"]]
    out = {
        "clients": args.clients, "requests": sent, "max_tokens": args.max_tokens,
        "accepted": len(accepted), "refused": len(refused), "failed": len(failed),
        "wall_s": round(wall, 3), "generated_tokens": tokens,
        "aggregate_tokens_per_s": round(tokens / wall, 1) if wall > 0 else None,
        "ttft_ms_p50": round(1000 * pct(ttfts, 50), 2) if ttfts else None,
        "ttft_ms_p99": round(1000 * pct(ttfts, 99), 2) if ttfts else None,
        "itl_ms_p50": round(1000 * pct(itls, 50), 3) if itls else None,
        "itl_ms_p99": round(1000 * pct(itls, 99), 3) if itls else None,
        "itl_ms_mean": round(1000 * statistics.mean(itls), 3) if itls else None,
    }
    if args.pid:
        out["rss_kib_before"] = rss_before
        out["rss_kib_after"] = rss_after
    print(json.dumps(out))
    if failed:
        raise SystemExit(f"loadtest: {len(failed)} accepted request(s) failed: {failed[:3]}")


if __name__ == "__main__":
    main()
