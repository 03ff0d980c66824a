#!/usr/bin/env python3
"""Aggregate decode throughput of `paligemma serve` for 1, 2, 4, 8 and 16 concurrent clients.

usage: server_throughput.py PALIGEMMA_BINARY MODEL_DIR IMAGE [--tokens 32] [--rounds 3] [--clients 1,2,4,8,16]
Each client sends one request (same image, "caption en", exactly --tokens tokens via ignore_eos) per round;
the figure per round is (clients x (tokens - 1)) / (wall time of the round - the sum of all requests' vision and
prefill times), so that prefill, which batching does not share and the server runs one request at a time, is
left out. Prints medians over rounds and the ratio to one client.
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
post(request)  # warm-up
base = None
try:
    print(f"{'clients':>8} {'tok/s (median)':>15} {'x one client':>13}")
    for n in [int(c) for c in args.clients.split(",")]:
        rates = []
        for _ in range(args.rounds):
            results = []
            threads = [threading.Thread(target=lambda: results.append(post(request))) for _ in range(n)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.time() - t0
            prefill = sum(r["timings"]["vision_s"] + r["timings"]["prefill_s"] for r in results)
            rates.append(n * (args.tokens - 1) / max(wall - prefill, 1e-9))
        rate = statistics.median(rates)
        base = base or rate
        print(f"{n:>8} {rate:>15.2f} {rate / base:>13.2f}", flush=True)
finally:
    proc.terminate()
    proc.wait()
