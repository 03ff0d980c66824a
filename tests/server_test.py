#!/usr/bin/env python3
"""`paligemma serve` against its contract: every endpoint and error status, streaming, the OpenAI-style
endpoint, cancellation on disconnect, batching giving the CLI's answers, and a bounded mixed load after
which the process is alive and its memory flat.

usage: server_test.py PALIGEMMA_BINARY FIXTURES_DIR
Uses only the Python standard library; talks to 127.0.0.1 only; stops by itself.
"""
import base64
import http.client
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

BIN, FIX = sys.argv[1], sys.argv[2]
MODEL = os.path.join(FIX, "models", "pg2_f32")
IMAGES = [os.path.join(FIX, "images", "png", n) for n in ("rgb_150x90.png", "rgb_300x201.png", "l_150x90.png")]
KEY = "test-key"
passes, failures = 0, 0


def check(name, condition, detail=""):
    global passes, failures
    if condition:
        passes += 1
    else:
        failures += 1
        print(f"FAIL: {name} {detail}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def png_header_only(width, height):
    """A PNG whose header declares width x height pixels (a decompression bomb's signature)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    return data + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))


class Server:
    def __init__(self, *extra):
        self.port = free_port()
        # stderr goes to a file: a pipe nobody reads would block the server once its log lines fill it.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--port", str(self.port), *extra],
                                     stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start: " + self.stderr())

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None, key=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if key:
            h["Authorization"] = "Bearer " + key
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        try:
            parsed = json.loads(data) if data.strip() and not r.getheader("Content-Type", "").startswith("text/") else data
        except json.JSONDecodeError:
            parsed = data
        return r.status, parsed, r

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        return code


def sse_events(srv, path, body, key=KEY, close_after=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
    r = conn.getresponse()
    events, buffer = [], b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            lines = block.decode().split("\n")
            event = next((l[7:] for l in lines if l.startswith("event: ")), None)
            data = next((l[6:] for l in lines if l.startswith("data: ")), None)
            if data is not None:
                events.append((event, data))
        if close_after is not None and len(events) >= close_after:
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
            return r.status, events
    conn.close()
    return r.status, events


# Prometheus' text exposition format 0.0.4, read strictly: a family's "# HELP" and "# TYPE" come once, before
# its samples, which are contiguous; sample names are the family's (histograms: _bucket, _sum, _count);
# label sets parse whole, with escapes; values are floats; no sample twice.
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_LINE = re.compile(rf"^({METRIC_NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text):
    labels, at = {}, 0
    while at < len(text):
        m = LABEL_PAIR.match(text, at)
        if not m:
            raise ValueError(f"bad label set {{{text}}} at {at}")
        if m.group(1) in labels:
            raise ValueError(f"label {m.group(1)} twice")
        labels[m.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))
        at = m.end()
        if m.group(3) == "," and at == len(text):
            raise ValueError("trailing comma in a label set")
    return labels


def parse_metrics(text):
    """{family: {"type", "help", "samples": {(name, frozenset(labels)): value}}}; raises ValueError."""
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a line feed")
    families, current, closed = {}, None, set()
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({METRIC_NAME}) (.*)$", line)
            if not m:
                raise ValueError(f"not a HELP or TYPE line: {line!r}")
            kind, name, rest = m.groups()
            if name in closed or (name != current and name in families):
                raise ValueError(f"{name} declared again: {line!r}")
            if current is not None and name != current:
                closed.add(current)
            current = name
            family = families.setdefault(name, {"type": None, "help": None, "samples": {}})
            if family["samples"]:
                raise ValueError(f"{kind} after samples of {name}")
            key = kind.lower()
            if family[key] is not None:
                raise ValueError(f"two {kind} lines for {name}")
            if kind == "TYPE" and rest not in TYPES:
                raise ValueError(f"unknown type {rest}")
            family[key] = rest
            continue
        m = SAMPLE_LINE.match(line)
        if not m:
            raise ValueError(f"not a sample line: {line!r}")
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), m.group(3)
        family = families.get(current)
        if family is None or family["type"] is None or family["help"] is None:
            raise ValueError(f"sample before its HELP and TYPE: {line!r}")
        allowed = {current} if family["type"] != "histogram" else {current + s for s in ("_bucket", "_sum", "_count")}
        if name not in allowed:
            raise ValueError(f"sample {name} in family {current}")
        if value not in ("+Inf", "-Inf", "NaN") and not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value):
            raise ValueError(f"bad value {value!r}")
        key = (name, frozenset(labels.items()))
        if key in family["samples"]:
            raise ValueError(f"sample twice: {line!r}")
        family["samples"][key] = float(value)
    for name, family in families.items():
        if family["type"] is None or family["help"] is None:
            raise ValueError(f"{name} lacks HELP or TYPE")
        if family["type"] == "counter" and any(v < 0 or v != v for v in family["samples"].values()):
            raise ValueError(f"negative counter {name}")
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return families


def check_histogram(name, samples):
    """Per label set: buckets by ascending le, cumulative (non-decreasing), the last +Inf == _count, a _sum."""
    series = {}
    for (sample, labels), value in samples.items():
        labels = dict(labels)
        le = labels.pop("le", None)
        entry = series.setdefault(frozenset(labels.items()), {"buckets": [], "sum": None, "count": None})
        if sample == name + "_bucket":
            if le is None:
                raise ValueError(f"{name}_bucket without le")
            entry["buckets"].append((float(le), value))
        elif le is not None:
            raise ValueError(f"{sample} with le")
        else:
            entry["sum" if sample.endswith("_sum") else "count"] = value
    for labels, entry in series.items():
        buckets = sorted(entry["buckets"])
        if not buckets or buckets[-1][0] != float("inf"):
            raise ValueError(f"{name}{dict(labels)}: no +Inf bucket")
        pairs = list(zip(buckets, buckets[1:]))
        if any(later[0] == earlier[0] or later[1] < earlier[1] for earlier, later in pairs):
            raise ValueError(f"{name}{dict(labels)}: buckets not cumulative by distinct bounds {buckets}")
        if entry["count"] is None or entry["sum"] is None or buckets[-1][1] != entry["count"]:
            raise ValueError(f"{name}{dict(labels)}: +Inf {buckets[-1][1]} != _count {entry['count']}, or no _sum")


def metric(families, family, sample=None, **labels):
    """One sample's value; 0 for a labelled sample not there yet (a counter that never moved)."""
    samples = families[family]["samples"]
    key = (sample or family, frozenset((k, str(v)) for k, v in labels.items()))
    if key not in samples and not labels:
        raise KeyError(key)
    return samples.get(key, 0.0)


def cli_generate(images, prompt, max_tokens, extra=()):
    args = [BIN, "generate", "--model", MODEL, "--prompt", prompt, "--max-tokens", str(max_tokens), "--json", *extra]
    for i in images:
        args += ["--image", i]
    return json.loads(subprocess.run(args, check=True, capture_output=True).stdout)


def cli_tokens(images, prompt, max_tokens, extra=()):
    return cli_generate(images, prompt, max_tokens, extra)["tokens"]


def token_pieces(images, prompt, count):
    """The text each of the first `count` greedy tokens adds, as a stream shows it: before the last token a
    trailing incomplete character (U+FFFD) is held back. From the CLI's text of each prefix."""
    shown = [cli_generate(images, prompt, k)["text"] if k else "" for k in range(count + 1)]
    shown = [t if k == count else t.rstrip("\ufffd") for k, t in enumerate(shown)]
    pieces, sent = [], ""
    for text in shown[1:]:
        piece = text[len(sent):] if text.startswith(sent) else ""
        pieces.append(piece)
        sent += piece
    return pieces


def test_metrics():
    """GET /metrics: Prometheus' text format read strictly, the types, and counters and histograms that move by
    exactly the requests made."""
    srv = Server()
    try:
        img = b64(IMAGES[0])
        ok_body = {"images": [img], "prompt": "caption en", "max_tokens": 6}

        def scrape(name):
            st, text, r = srv.request("GET", "/metrics")
            check(name + ": 200, the format's content type", st == 200 and r.getheader("Content-Type") ==
                  "text/plain; version=0.0.4; charset=utf-8", (st, r.getheader("Content-Type")))
            try:
                return parse_metrics(text.decode())
            except ValueError as e:
                check(name + ": parses", False, e)
                raise

        before = scrape("metrics")
        types = {"paligemma_requests_total": "counter", "paligemma_request_duration_seconds": "histogram",
                 "paligemma_time_to_first_token_seconds": "histogram", "paligemma_queue_depth": "gauge",
                 "paligemma_running_sequences": "gauge", "paligemma_generations_total": "counter",
                 "paligemma_generations_cancelled_total": "counter", "paligemma_prompt_tokens_total": "counter",
                 "paligemma_generated_tokens_total": "counter", "paligemma_decode_tokens_total": "counter",
                 "paligemma_decode_seconds_total": "counter", "paligemma_prefill_seconds_total": "counter",
                 "paligemma_decode_tokens_per_second": "gauge", "paligemma_image_cache_hits_total": "counter",
                 "paligemma_image_cache_misses_total": "counter", "paligemma_model_info": "gauge"}
        check("metrics: every family with its type", {n: f["type"] for n, f in before.items()} == types,
              {n: f["type"] for n, f in before.items()})
        st, models, _ = srv.request("GET", "/v1/models")
        info = [dict(labels) for (_, labels), value in before["paligemma_model_info"]["samples"].items() if value == 1]
        model = models["data"][0]
        check("metrics: model_info", len(info) == 1 and info[0] == {
            "model": model["id"], "architecture": model["architecture"], "dtype": model["dtype"],
            "resolution": str(model["resolution"])}, (info, model))

        # N generations (one streamed) and a chat completion, a 400, a 404 and a 405.
        generated, n = 0, 3
        for _ in range(n - 1):
            st, body, _ = srv.request("POST", "/v1/generate", ok_body)
            check("metrics: generation", st == 200, (st, body))
            generated += len(body["tokens"])
        st, events = sse_events(srv, "/v1/generate", dict(ok_body, stream=True))
        final = [json.loads(d) for e, d in events if e == "done"]
        check("metrics: streamed generation", st == 200 and len(final) == 1, events)
        generated += len(final[0]["tokens"])
        chat = {"max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "caption en"}, {"type": "image_url", "image_url": {"url": img}}]}]}
        st, chat_body, _ = srv.request("POST", "/v1/chat/completions", chat)
        check("metrics: chat", st == 200, (st, chat_body))
        generated += chat_body["usage"]["completion_tokens"]
        st, _, _ = srv.request("POST", "/v1/generate", {"prompt": "caption en"})
        check("metrics: a 400", st == 400)
        st, _, _ = srv.request("GET", "/nope")
        check("metrics: a 404", st == 404)
        st, _, r = srv.request("POST", "/metrics")
        check("metrics: POST /metrics is a 405", st == 405 and r.getheader("Allow") == "GET", st)

        # The batch's worker updates its running count after the step that ended the last answer.
        while srv.request("GET", "/health")[1]["running"] > 0:
            time.sleep(0.05)
        after = scrape("metrics again")
        health = srv.request("GET", "/health")[1]

        def rose(family, sample=None, **labels):
            return metric(after, family, sample, **labels) - metric(before, family, sample, **labels)

        requests = "paligemma_requests_total"
        moves = {
            "generate 200": (rose(requests, endpoint="/v1/generate", status=200), n),
            "generate 400": (rose(requests, endpoint="/v1/generate", status=400), 1),
            "chat 200": (rose(requests, endpoint="/v1/chat/completions", status=200), 1),
            "unknown path 404, endpoint other": (rose(requests, endpoint="other", status=404), 1),
            "metrics 405": (rose(requests, endpoint="/metrics", status=405), 1),
            "metrics 200 (the first scrape; a scrape counts after it is rendered)":
                (rose(requests, endpoint="/metrics", status=200), 1),
            "models 200": (rose(requests, endpoint="/v1/models", status=200), 1),
            "generate durations": (rose("paligemma_request_duration_seconds", "paligemma_request_duration_seconds_count",
                                        endpoint="/v1/generate"), n),
            "generate +Inf bucket": (rose("paligemma_request_duration_seconds", "paligemma_request_duration_seconds_bucket",
                                          endpoint="/v1/generate", le="+Inf"), n),
            "chat durations": (rose("paligemma_request_duration_seconds", "paligemma_request_duration_seconds_count",
                                    endpoint="/v1/chat/completions"), 1),
            "first tokens": (rose("paligemma_time_to_first_token_seconds", "paligemma_time_to_first_token_seconds_count"),
                             n + 1),
            "generations": (rose("paligemma_generations_total"), n + 1),
            "generated tokens": (rose("paligemma_generated_tokens_total"), generated),
            "prompt tokens": (rose("paligemma_prompt_tokens_total"),
                              n * len(cli_generate([IMAGES[0]], "caption en", 1)["prompt_tokens"]) +
                              chat_body["usage"]["prompt_tokens"]),
            "image lookups": (rose("paligemma_image_cache_hits_total") + rose("paligemma_image_cache_misses_total"), n + 1),
        }
        for name, (moved, expected) in moves.items():
            check("metrics: " + name + " rose by " + str(expected), moved == expected, moved)
        check("metrics: the image cache as /health counts it",
              (metric(after, "paligemma_image_cache_hits_total"), metric(after, "paligemma_image_cache_misses_total")) ==
              (health["image_cache"]["hits"], health["image_cache"]["misses"]), (health, after))
        check("metrics: nothing queued or running when idle",
              metric(after, "paligemma_queue_depth") == 0 and metric(after, "paligemma_running_sequences") == 0)
        tokens, seconds = metric(after, "paligemma_decode_tokens_total"), metric(after, "paligemma_decode_seconds_total")
        check("metrics: throughput is decode tokens over decode seconds", seconds > 0 and
              abs(metric(after, "paligemma_decode_tokens_per_second") - tokens / seconds) <= 1e-9 * tokens / seconds,
              (tokens, seconds, metric(after, "paligemma_decode_tokens_per_second")))
    finally:
        srv.stop()


def main():
    srv = Server("--api-key", KEY, "--max-body-mb", "2", "--max-image-pixels", "1000000", "--max-images", "3",
                 "--max-tokens-limit", "8000")
    try:
        img = b64(IMAGES[0])
        ok_body = {"images": ["data:image/png;base64," + img], "prompt": "caption en", "max_tokens": 6}

        # The kernel's queue of connections waiting for accept() is SOMAXCONN long, not cpp-httplib 0.11's 5
        # (for a listening socket, ss shows that length as Send-Q).
        if shutil.which("ss"):
            listing = subprocess.run(["ss", "-Hltn", f"sport = :{srv.port}"], capture_output=True, text=True).stdout.split()
            check("listen backlog", len(listing) >= 3 and int(listing[2]) >= 128, listing)
        else:
            print("note: no ss (iproute2), the listen backlog is not checked", flush=True)

        # Health, models, page; no key needed for them.
        st, body, _ = srv.request("GET", "/health")
        check("health", st == 200 and body["status"] == "ok", body)
        st, body, _ = srv.request("GET", "/v1/models", key=KEY)
        check("models", st == 200 and body["data"][0]["id"] == "pg2_f32" and body["data"][0]["resolution"] == 112, body)
        st, body, r = srv.request("GET", "/")
        check("page", st == 200 and b"<canvas" in body and r.getheader("Content-Type").startswith("text/html"))

        # Authentication.
        st, body, _ = srv.request("POST", "/v1/generate", ok_body)
        check("401 without key", st == 401 and body["error"]["code"] == "unauthorized", (st, body))
        st, body, _ = srv.request("POST", "/v1/generate", ok_body, key="wrong")
        check("401 wrong key", st == 401, (st, body))

        # A good request answers what the CLI answers.
        st, body, _ = srv.request("POST", "/v1/generate", ok_body, key=KEY)
        expected = cli_tokens([IMAGES[0]], "caption en", 6)
        check("generate == CLI", st == 200 and body["tokens"] == expected, (st, body, expected))
        check("generate fields", set(body) >= {"text", "tokens", "timings", "finish_reason"}, body)
        cli_objects = json.loads(subprocess.run([BIN, "parse", "--text", body["text"], "--width", "150", "--height", "90",
                                                 "--json"], check=True, capture_output=True).stdout)["objects"]
        check("objects when the text has loc tokens", ("<loc" in body["text"]) == ("objects" in body) and
              body.get("objects", []) == cli_objects, body)

        # Multipart upload.
        boundary = "pgboundary"
        with open(IMAGES[0], "rb") as f:
            raw = f.read()
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\ncaption en\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"max_tokens\"\r\n\r\n6\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + raw + f"\r\n--{boundary}--\r\n".encode()
        cache_before = srv.request("GET", "/health")[1]["image_cache"]
        st, body, _ = srv.request("POST", "/v1/generate", form,
                                  {"Content-Type": f"multipart/form-data; boundary={boundary}"}, key=KEY)
        check("multipart == CLI", st == 200 and body["tokens"] == expected, (st, body))
        # The same image as the request before: its features came from the cache, the tokens are the same.
        cache_after = srv.request("GET", "/health")[1]["image_cache"]
        check("repeated image: features from the cache",
              cache_after == {"hits": cache_before["hits"] + 1, "misses": cache_before["misses"]},
              (cache_before, cache_after))

        # Two images (NLVR2 style) and sampling with a seed give the CLI's tokens too.
        two = {"images": [img, b64(IMAGES[2])], "prompt": "answer en same?", "max_tokens": 5}
        st, body, _ = srv.request("POST", "/v1/generate", two, key=KEY)
        check("two images == CLI", st == 200 and body["tokens"] == cli_tokens([IMAGES[0], IMAGES[2]], "answer en same?", 5),
              (st, body))

        # "task" (with "objects", "question", "lang") instead of "prompt", as `paligemma generate --task` takes it.
        def cli_task(args, max_tokens=8):
            return json.loads(subprocess.run([BIN, "generate", "--model", MODEL, "--image", IMAGES[0], "--max-tokens",
                                              str(max_tokens), "--json", *args], check=True,
                                             capture_output=True).stdout)["tokens"]
        for fields, args in [({"task": "detect", "objects": "cat;dog"}, ["--task", "detect", "--objects", "cat;dog"]),
                             ({"task": "answer", "question": "what is it?", "lang": "de"},
                              ["--task", "answer", "--question", "what is it?", "--lang", "de"]),
                             ({"task": "caption"}, ["--task", "caption"])]:
            st, body, _ = srv.request("POST", "/v1/generate", {"images": [img], "max_tokens": 8, **fields}, key=KEY)
            check("task " + json.dumps(fields), st == 200 and body["tokens"] == cli_task(args), (st, body))
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"task\"\r\n\r\ncaption\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nes\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"max_tokens\"\r\n\r\n8\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + raw + f"\r\n--{boundary}--\r\n".encode()
        st, body, _ = srv.request("POST", "/v1/generate", form,
                                  {"Content-Type": f"multipart/form-data; boundary={boundary}"}, key=KEY)
        check("multipart task", st == 200 and body["tokens"] == cli_task(["--task", "caption", "--lang", "es"]), (st, body))
        for fields, says in [({"task": "caption", "prompt": "caption en"}, "exactly one"),
                             ({"prompt": "caption en", "objects": "cat"}, "applies to"),
                             ({"task": "paint"}, "paint"), ({"task": "detect"}, "objects"),
                             ({"task": "caption", "lang": 3}, "string")]:
            st, body, _ = srv.request("POST", "/v1/generate", {"images": [img], **fields}, key=KEY)
            check("task error " + json.dumps(fields), st == 400 and says in body["error"]["message"], (st, body))

        # The base64 of every JPEG starts with "/9j/": base64 all the same, not a path.
        jpeg = os.path.join(FIX, "cases", "pg1_jpeg_nonascii", "photo.jpg")
        jpeg_b64 = b64(jpeg)
        jpeg_cli = cli_generate([jpeg], "caption en", 6)
        st, body, _ = srv.request("POST", "/v1/generate", dict(ok_body, images=[jpeg_b64]), key=KEY)
        check("base64 JPEG", jpeg_b64.startswith("/9j/") and st == 200 and body["tokens"] == jpeg_cli["tokens"],
              (st, body))

        # Streaming: one event per token with the text that token added, then the final object.
        st, events = sse_events(srv, "/v1/generate", dict(ok_body, stream=True))
        tokens = [json.loads(d) for e, d in events if e == "token"]
        final = [json.loads(d) for e, d in events if e == "done"]
        check("stream status", st == 200)
        check("stream tokens", [t["token"] for t in tokens] == expected, tokens)
        check("stream final", len(final) == 1 and final[0]["tokens"] == expected and
              "".join(t["text"] for t in tokens) == final[0]["text"], final)
        pieces = token_pieces([IMAGES[0]], "caption en", len(expected))
        check("stream text per token", [t["text"] for t in tokens] == pieces and sum(map(bool, pieces)) > 1,
              (tokens, pieces))
        # Beam search hands its tokens over all at once: each event still carries its own token's text. Its
        # result shares its first tokens with the greedy one here, whose pieces are known.
        st, events = sse_events(srv, "/v1/generate", dict(ok_body, stream=True, beams=2))
        beam = [json.loads(d) for e, d in events if e == "token"]
        shared = next((i for i, (a, b) in enumerate(zip([t["token"] for t in beam], expected)) if a != b),
                      len(expected))
        beam_final = [json.loads(d) for e, d in events if e == "done"]
        check("beam stream", st == 200 and len(beam_final) == 1 and
              [t["token"] for t in beam] == cli_tokens([IMAGES[0]], "caption en", 6, ["--beams", "2"]) and
              "".join(t["text"] for t in beam) == beam_final[0]["text"], events)
        check("beam stream text per token", 2 <= shared < len(expected) and
              [t["text"] for t in beam[:shared]] == pieces[:shared], (beam, pieces))

        # One reading of the decoding options (tools/common/decoding_options.h): top_k alone samples here as it
        # does in `paligemma generate`, and the beam limit (8) is the CLI's too.
        st, body, _ = srv.request("POST", "/v1/generate", dict(ok_body, top_k=40, seed=3), key=KEY)
        check("top_k alone samples, as the CLI", st == 200 and
              body["tokens"] == cli_tokens([IMAGES[0]], "caption en", 6, ["--top-k", "40", "--seed", "3"]) and
              body["tokens"] != expected, (st, body))
        st, body, _ = srv.request("POST", "/v1/generate", dict(ok_body, beams=9), key=KEY)
        cli_beams = subprocess.run([BIN, "generate", "--model", MODEL, "--image", IMAGES[0], "--prompt", "caption en",
                                    "--beams", "9"], capture_output=True, text=True)
        check("beams 9 refused here and by the CLI", st == 400 and cli_beams.returncode == 2 and
              "from 1 to 8" in body["error"]["message"] and "from 1 to 8" in cli_beams.stderr, (st, body, cli_beams.stderr))

        # OpenAI-compatible chat: non-streaming and streaming.
        chat = {"model": "pg2_f32", "max_tokens": 6, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "caption en"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + img}}]}]}
        st, body, _ = srv.request("POST", "/v1/chat/completions", chat, key=KEY)
        check("chat", st == 200 and body["object"] == "chat.completion" and
              body["choices"][0]["message"]["role"] == "assistant" and body["usage"]["completion_tokens"] == 6, body)
        chat_text = body["choices"][0]["message"]["content"] if st == 200 else None
        st, events = sse_events(srv, "/v1/chat/completions", dict(chat, stream=True))
        chunks = [json.loads(d) for _, d in events if d != "[DONE]"]
        check("chat stream ends with [DONE]", events and events[-1][1] == "[DONE]", events[-2:])
        check("chat stream text", "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == chat_text,
              chunks)
        jpeg_chat = dict(chat, messages=[{"role": "user", "content": [
            {"type": "text", "text": "caption en"}, {"type": "image_url", "image_url": {"url": jpeg_b64}}]}])
        st, body, _ = srv.request("POST", "/v1/chat/completions", jpeg_chat, key=KEY)
        check("chat base64 JPEG", st == 200 and body["choices"][0]["message"]["content"] == jpeg_cli["text"], (st, body))
        chat_cli = cli_generate([IMAGES[0]], "caption en", 6)
        st, body, _ = srv.request("POST", "/v1/chat/completions", chat, key=KEY)
        check("chat usage", st == 200 and body["usage"] == {
            "prompt_tokens": len(chat_cli["prompt_tokens"]), "completion_tokens": len(chat_cli["tokens"]),
            "total_tokens": len(chat_cli["prompt_tokens"]) + len(chat_cli["tokens"])}, body)

        # A system message (front ends always send one) is left out, and the answer says so in "notes".
        system = dict(chat, messages=[{"role": "system", "content": "You are a helpful assistant."}] + chat["messages"])
        st, body, _ = srv.request("POST", "/v1/chat/completions", system, key=KEY)
        check("chat system message ignored", st == 200 and body["choices"][0]["message"]["content"] == chat_text and
              any("system" in n for n in body.get("notes", [])), (st, body))
        st, events = sse_events(srv, "/v1/chat/completions", dict(system, stream=True))
        first = json.loads(events[0][1]) if events else {}
        check("chat stream system note", any("system" in n for n in first.get("notes", [])), events[:1])
        st, body, _ = srv.request("POST", "/v1/chat/completions", chat, key=KEY)
        check("no note without a system message", st == 200 and "notes" not in body, body)

        # stream_options.include_usage: every chunk has "usage": null, then a chunk without choices has it.
        st, events = sse_events(srv, "/v1/chat/completions", dict(chat, stream=True, stream_options={"include_usage": True}))
        chunks = [json.loads(d) for _, d in events if d != "[DONE]"]
        check("chat stream usage chunk", st == 200 and events[-1][1] == "[DONE]" and chunks[-1]["choices"] == [] and
              chunks[-1]["usage"] == body["usage"] and all("usage" in c and c["usage"] is None for c in chunks[:-1]) and
              chunks[-2]["choices"][0]["finish_reason"] == "length", chunks[-2:])
        st, events = sse_events(srv, "/v1/chat/completions", dict(chat, stream=True))
        check("chat stream without usage", all("usage" not in json.loads(d) for _, d in events if d != "[DONE]"), events)

        # OpenAI fields the server cannot honour are a 400 naming the field; at their neutral values they pass.
        for key, value in [("logprobs", True), ("top_logprobs", 2), ("n", 2), ("response_format", {"type": "json_object"}),
                           ("tools", [{"type": "function", "function": {"name": "f"}}]), ("tool_choice", "auto"),
                           ("frequency_penalty", 0.5), ("presence_penalty", -1), ("functions", [])]:
            st, body, _ = srv.request("POST", "/v1/chat/completions", dict(chat, **{key: value}), key=KEY)
            check("chat unsupported " + key, st == 400 and body["error"]["code"] == "unsupported_field" and
                  f'"{key}"' in body["error"]["message"], (st, body))
        st, body, _ = srv.request("POST", "/v1/chat/completions", dict(chat, stream=True, stream_options={"x": 1}), key=KEY)
        check("chat unsupported stream_options.x", st == 400 and "stream_options.x" in body["error"]["message"], (st, body))
        neutral = dict(chat, n=1, frequency_penalty=0, presence_penalty=0.0, logprobs=False, user="someone", tools=[],
                       tool_choice="none", response_format={"type": "text"}, logit_bias={}, top_logprobs=None)
        st, body, _ = srv.request("POST", "/v1/chat/completions", neutral, key=KEY)
        check("chat neutral fields accepted", st == 200 and body["choices"][0]["message"]["content"] == chat_text,
              (st, body))
        multi = dict(chat, messages=chat["messages"] + [{"role": "assistant", "content": "x"},
                                                         {"role": "user", "content": "more"}])
        st, body, _ = srv.request("POST", "/v1/chat/completions", multi, key=KEY)
        check("chat multi-turn 400", st == 400 and "single-turn" in body["error"]["message"], (st, body))

        # Errors, one by one.
        cases = [
            ("malformed JSON", "/v1/generate", '{"images": [', {"Content-Type": "application/json"}, 400),
            ("missing images", "/v1/generate", {"prompt": "caption en"}, None, 400),
            ("missing prompt", "/v1/generate", {"images": [img]}, None, 400),
            ("unknown field", "/v1/generate", dict(ok_body, colour=1), None, 400),
            ("bad max_tokens", "/v1/generate", dict(ok_body, max_tokens=0), None, 400),
            ("max_tokens over limit", "/v1/generate", dict(ok_body, max_tokens=9000), None, 400),
            ("wrong type", "/v1/generate", dict(ok_body, temperature="hot"), None, 400),
            ("not base64", "/v1/generate", dict(ok_body, images=["!!!"]), None, 400),
            ("URL refused", "/v1/generate", dict(ok_body, images=["https://example.com/a.png"]), None, 400),
            ("path refused", "/v1/generate", dict(ok_body, images=["/etc/passwd"]), None, 400),
            ("path refused, base64 length", "/v1/generate", dict(ok_body, images=["/usr/share/pics/dog"]), None, 400),
            ("data URL not base64", "/v1/generate", dict(ok_body, images=["data:image/png;base64,%%"]), None, 400),
            ("undecodable", "/v1/generate", dict(ok_body, images=[base64.b64encode(b"not an image").decode()]), None, 415),
            ("pixel bomb", "/v1/generate", dict(ok_body, images=[base64.b64encode(png_header_only(40000, 40000)).decode()]),
             None, 413),
            ("too many images", "/v1/generate", dict(ok_body, images=[img] * 4), None, 413),
            ("body too large", "/v1/generate", json.dumps(dict(ok_body, prompt="x" * (3 << 20))),
             {"Content-Type": "application/json"}, 413),
        ]
        for name, path, body_, headers, status in cases:
            st, body, _ = srv.request("POST", path, body_, headers, key=KEY)
            check(name, st == status and isinstance(body, dict) and set(body.get("error", {})) == {"code", "message"},
                  (st, body))
        for name in ("https://example.com/a.png", "/etc/passwd", "/usr/share/pics/dog"):
            st, body, _ = srv.request("POST", "/v1/generate", dict(ok_body, images=[name]), key=KEY)
            check("refusal names the rule: " + name, st == 400 and "does not fetch URLs or read files" in
                  body["error"]["message"], (st, body))
        st, body, _ = srv.request("GET", "/nope", key=KEY)
        check("404", st == 404 and body["error"]["code"] == "not_found", (st, body))
        st, body, r = srv.request("GET", "/v1/generate", key=KEY)
        check("405", st == 405 and r.getheader("Allow") == "POST", (st, body))
        st, body, r = srv.request("DELETE", "/health")
        check("405 on GET endpoint", st == 405, (st, body))

        # A client that goes away cancels its generation.
        before = srv.request("GET", "/health")[1]
        st, events = sse_events(srv, "/v1/generate", dict(ok_body, max_tokens=7000, stream=True), close_after=3)
        while srv.request("GET", "/health")[1]["running"] > 0:
            time.sleep(0.05)
        after = srv.request("GET", "/health")[1]
        check("disconnect cancels", after["cancelled"] == before["cancelled"] + 1, (before, after))

        # Bounded mixed load: valid requests get the CLI's tokens, invalid ones their statuses, from many clients.
        prompts = ["caption en", "answer en what is it?", "detect cat ; dog", "ocr"]
        expect = {p: cli_tokens([IMAGES[1]], p, 8) for p in prompts}
        big = b64(IMAGES[1])
        invalid = [('{"images": [', 400), (json.dumps(dict(ok_body, images=["%%%"])), 400),
                   (json.dumps(dict(ok_body, images=[base64.b64encode(b"GIF89a broken").decode()])), 415)]
        results, lock = [], threading.Lock()

        def client(seed):
            rnd = random.Random(seed)
            for _ in range(12):
                try:
                    if rnd.random() < 0.3:
                        body_, status = rnd.choice(invalid)
                        st, body, _ = srv.request("POST", "/v1/generate", body_, {"Content-Type": "application/json"},
                                                  key=KEY)
                        ok = st == status
                    else:
                        p = rnd.choice(prompts)
                        st, body, _ = srv.request("POST", "/v1/generate", {"images": [big], "prompt": p, "max_tokens": 8},
                                                  key=KEY)
                        ok = st == 200 and body["tokens"] == expect[p]
                except OSError as e:  # a reset connection, say
                    ok, st = False, repr(e)
                with lock:
                    results.append((ok, st))

        def load_round(offset):
            threads = [threading.Thread(target=client, args=(offset + i,)) for i in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        # Beside processes that keep every core busy (each ends by itself after 120 s, and is killed after the
        # load): the server must still accept every connection, not reset some.
        burners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 120\nwhile time.time() < end: pass"])
                   for _ in range(os.cpu_count() or 1)]
        try:
            load_round(0)
            rss_first = srv.rss_kib()
            load_round(100)
            rss_second = srv.rss_kib()
        finally:
            for b in burners:
                b.kill()
                b.wait()
        bad = [r for r in results if not r[0]]
        check("load: every answer right", len(results) == 384 and not bad, (len(results), bad[:5]))
        check("load: process alive", srv.proc.poll() is None)
        # Under AddressSanitizer freed memory waits in its quarantine (up to 256 MB), so the resident size says
        # nothing about leaks there (LeakSanitizer checks those); the normal build checks it.
        asan = "libasan" in subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
        check("load: memory flat", asan or rss_second <= rss_first * 1.10 + 8192, (rss_first, rss_second))
        check("health after load", srv.request("GET", "/health")[0] == 200)
    finally:
        code = srv.stop()
        check("clean shutdown", code == 0, code)

    # A full queue answers 503 with Retry-After.
    srv = Server("--max-queue", "1", "--max-batch", "1", "--max-tokens-limit", "8000")
    try:
        statuses, retry = [], []

        def long_request():
            st, body, r = srv.request("POST", "/v1/generate", {"images": [img], "prompt": "caption en", "max_tokens": 3000})
            with lock:
                statuses.append(st)
                if st == 503:
                    retry.append(r.getheader("Retry-After"))

        threads = [threading.Thread(target=long_request) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("503 when the queue is full", 503 in statuses and 200 in statuses and set(statuses) <= {200, 503}, statuses)
        check("Retry-After", retry and all(r == "1" for r in retry), retry)
    finally:
        srv.stop()

    # More new tokens than the context holds: generation stops where the context ends ("length"); a prompt
    # that fills the context alone is refused. The context is the config's max_position_embeddings.
    with open(os.path.join(MODEL, "config.json")) as f:
        text_config = json.load(f)["text_config"]
    context = text_config["max_position_embeddings"]
    srv = Server("--max-tokens-limit", str(context), "--max-images", "200")
    try:
        prompt_len = len(cli_generate([IMAGES[0]], "caption en", 1)["prompt_tokens"])
        room = context - prompt_len
        long_body = {"images": [img], "prompt": "caption en", "max_tokens": context, "ignore_eos": True}
        st, body, _ = srv.request("POST", "/v1/generate", long_body)
        check("context end: length", st == 200 and body["finish_reason"] == "length" and
              body["tokens"] == cli_tokens([IMAGES[0]], "caption en", room, ["--ignore-eos"]),
              (st, body.get("finish_reason") if isinstance(body, dict) else body, len(body.get("tokens", []))))
        st, body, _ = srv.request("POST", "/v1/generate", dict(long_body, max_tokens=room))
        check("exactly the room: max_tokens", st == 200 and body["finish_reason"] == "max_tokens" and
              len(body["tokens"]) == room, (st, body.get("finish_reason")))
        chat_long = {"max_tokens": context, "ignore_eos": True, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "caption en"}, {"type": "image_url", "image_url": {"url": img}}]}]}
        st, body, _ = srv.request("POST", "/v1/chat/completions", chat_long)
        check("chat context end: length", st == 200 and body["choices"][0]["finish_reason"] == "length" and
              body["usage"]["completion_tokens"] == room, (st, body.get("usage")))
        full = context // text_config["num_image_tokens"] + 1
        st, body, _ = srv.request("POST", "/v1/generate", {"images": [img] * full, "prompt": "caption en", "max_tokens": 1})
        check("prompt filling the context: 400", st == 400 and body["error"]["code"] == "too_long", (st, body))
    finally:
        srv.stop()

    # One log line per request on stderr (method, path, status, generated tokens, milliseconds), none with
    # --quiet; a line at shutdown with the number of requests either way.
    for quiet in (False, True):
        srv = Server(*(["--quiet"] if quiet else []))
        st, body, _ = srv.request("POST", "/v1/generate", {"images": [img], "prompt": "caption en", "max_tokens": 5,
                                                           "ignore_eos": True})
        st2, _, _ = srv.request("POST", "/v1/generate", {"prompt": "caption en"})
        code = srv.stop()
        log = srv.stderr()
        health_polls = log.count("GET /health 200 - tokens ")
        if quiet:
            check("--quiet: no request lines", st == 200 and "POST /v1/generate" not in log and
                  re.search(r"stopped after [1-9]\d* requests?\n", log), log)
        else:
            check("request log lines", st == 200 and st2 == 400 and
                  re.search(r"^paligemma: POST /v1/generate 200 5 tokens \d+ ms$", log, re.M) and
                  re.search(r"^paligemma: POST /v1/generate 400 - tokens \d+ ms$", log, re.M) and health_polls >= 1 and
                  f"paligemma: stopped after {health_polls + 2} requests\n" in log and code == 0, log)

    # A port another server listens on is refused, not shared (SO_REUSEPORT would let both accept).
    srv = Server()
    try:
        r = subprocess.run([BIN, "serve", "--model", MODEL, "--port", str(srv.port)], capture_output=True, timeout=15)
        check("busy port refused", r.returncode != 0 and f"port {srv.port} is in use".encode() in r.stderr,
              (r.returncode, r.stderr))
    except subprocess.TimeoutExpired as e:
        check("busy port refused", False, ("still running", e.stderr))
    finally:
        srv.stop()

    # Refuses to start on an address it cannot bind, with one clear line.
    r = subprocess.run([BIN, "serve", "--model", MODEL, "--host", "192.0.2.1", "--port", "1"], capture_output=True)
    check("bind failure", r.returncode != 0 and b"cannot listen" in r.stderr, r.stderr)

    test_metrics()

    print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
