#!/usr/bin/env python3
"""Aggregate decode throughput of `paligemma serve` for 1, 2, 4, 8 and 16 concurrent clients.

usage: server_throughput.py PALIGEMMA_BINARY MODEL_DIR IMAGE [--tokens 32] [--rounds 3] [--clients 1,2,4,8,16]
Each client sends one request (same image, "caption en", exactly --tokens tokens via ignore_eos) per round.
Two figures per round, medians over rounds, each with its ratio to one client:
- decode tok/s: the tokens the server's batched decoding steps produced divided by the time the worker spent in
  those steps (GET /health "work" before and after the round); what batching the decode steps buys.
- end-to-end tok/s: all generated tokens divided by the round's wall time, prefills (vision + prompt, which the
  server runs in one pass for the requests admitted together) included.
"same tokens" counts the requests whose tokens equal those of a request served alone (greedy, same input).
"""
import argparse
import base64
import http.client
import json
import socket
import statistics
import subprocess
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("model")
ap.add_argument("image")
ap.add_argument("--tokens", type=int, default=32)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--clients", default="1,2,4,8,16")
args = ap.parse_args()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
proc = subprocess.Popen([args.binary, "serve", "--model", args.model, "--port", str(port), "--max-batch", "16",
                         "--max-tokens-limit", str(max(args.tokens, 64))], stderr=subprocess.DEVNULL)
img = base64.b64encode(open(args.image, "rb").read()).decode()


def post(body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.request("POST", "/v1/generate", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    return json.loads(r.read())


def work():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())["work"]


deadline = time.time() + 600
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/health")
        if conn.getresponse().status == 200:
            break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.5)

request = {"images": [img], "prompt": "caption en", "max_tokens": args.tokens, "ignore_eos": True}
alone = post(request)["tokens"]  # warm-up, and the tokens every batched request should get too
base = None
try:
    print(f"{'clients':>8} {'decode tok/s':>13} {'x one':>6} {'end-to-end tok/s':>17} {'x one':>6} "
          f"{'same tokens':>11}")
    for n in [int(c) for c in args.clients.split(",")]:
        decode_rates, e2e_rates, same = [], [], 0
        for _ in range(args.rounds):
            results = []
            threads = [threading.Thread(target=lambda: results.append(post(request))) for _ in range(n)]
            before = work()
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.time() - t0
            after = work()
            assert all(len(r["tokens"]) == args.tokens for r in results), "a request did not get --tokens tokens"
            decode_rates.append((after["decode_tokens"] - before["decode_tokens"]) /
                                max(after["decode_s"] - before["decode_s"], 1e-9))
            e2e_rates.append(n * args.tokens / wall)
            same += sum(r["tokens"] == alone for r in results)
        decode, e2e = statistics.median(decode_rates), statistics.median(e2e_rates)
        base = base or (decode, e2e)
        print(f"{n:>8} {decode:>13.2f} {decode / base[0]:>6.2f} {e2e:>17.2f} {e2e / base[1]:>6.2f} "
              f"{same:>5}/{n * args.rounds}", flush=True)
finally:
    proc.terminate()
    proc.wait()
