#!/usr/bin/env bash
# Two `paligemma serve` (the embedded model) behind nginx, configured by docs/examples/nginx-paligemma.conf
# itself with its ports and log path replaced: both backends serve requests, once one is killed every
# request still gets a right answer, from the other, and a POST a full backend refuses (503) is resent.
# Also: docs/scale-out.md shows that file verbatim.
# usage: nginx_test.sh PALIGEMMA_BINARY SOURCE_DIR     (exit 77, skipped, without nginx or curl)
set -uo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/harness.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] || ! command -v curl >/dev/null; then
  echo "skipped: needs nginx and curl (scripts/install-deps.sh installs both)"
  exit 77
fi
CONF=$SRC/docs/examples/nginx-paligemma.conf
IMAGE=$SRC/tests/fixtures/images/png/rgb_150x90.png

pids=()
cleanup() {
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL: up to 60 s for a 200.
wait_for() {
  for _ in $(seq 600); do
    curl -sf --max-time 1 -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

B1=$(free_port)
B2=$(free_port)
FRONT=$(free_port)
for port in "$B1" "$B2"; do
  "$BIN" serve --port "$port" --quiet 2>"$TMP/serve-$port.log" &
  pids+=($!)
done
PID_B1=${pids[0]}
for port in "$B1" "$B2"; do
  wait_for "http://127.0.0.1:$port/health" || { echo "FAIL: backend $port did not start"; cat "$TMP/serve-$port.log"; exit 1; }
done

# The committed file with this run's ports and log path; the main context around it keeps every path nginx
# writes inside $TMP. As root the workers would otherwise run as nobody, who cannot enter $TMP.
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$B1/; s/127\.0\.0\.1:8082/127.0.0.1:$B2/; s/127\.0\.0\.1:8080/127.0.0.1:$FRONT/" \
    -e "s#/var/log/nginx/paligemma-access.log#$TMP/access.log#" "$CONF" >"$TMP/paligemma.conf"
check "the test's config differs from the committed one only in ports and the log path" \
  test "$(diff "$CONF" "$TMP/paligemma.conf" | grep -c '^<')" -eq 4
{
  [ "$(id -u)" -eq 0 ] && echo "user root;"
  cat <<EOF
worker_processes 1;
events { worker_connections 256; }
http {
    client_body_temp_path $TMP/client_body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    include $TMP/paligemma.conf;
}
EOF
} >"$TMP/nginx.conf"
"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -t >"$TMP/nginx-t.log" 2>&1
check "nginx -t accepts the config ($(tail -n 3 "$TMP/nginx-t.log"))" grep -q "test is successful" "$TMP/nginx-t.log"
"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -g "daemon off; pid $TMP/nginx.pid;" &
pids+=($!)
wait_for "http://127.0.0.1:$FRONT/health" || { echo "FAIL: nginx did not start"; cat "$TMP/error.log"; exit 1; }

# The expected answer: the CLI's, on the same (embedded) model.
"$BIN" generate --image "$IMAGE" --prompt "caption en" --max-tokens 4 --json >"$TMP/cli.json"
printf '{"images": ["%s"], "prompt": "caption en", "max_tokens": 4}' "$(base64 -w0 "$IMAGE")" >"$TMP/body.json"

# send_requests N TAG: N generations through nginx; each answer's status and body in $TMP/TAG-I.*.
send_requests() {
  for i in $(seq "$1"); do
    curl -s --max-time 60 -o "$TMP/$2-$i.json" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary @"$TMP/body.json" "http://127.0.0.1:$FRONT/v1/generate" >"$TMP/$2-$i.status"
  done
}

# every_answer_right N TAG: all N got 200 and the CLI's tokens and text.
every_answer_right() {
  python3 - "$TMP" "$1" "$2" <<'EOF'
import json, sys
tmp, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cli = json.load(open(f"{tmp}/cli.json"))
bad = []
for i in range(1, n + 1):
    status = open(f"{tmp}/{tag}-{i}.status").read()
    try:
        body = json.load(open(f"{tmp}/{tag}-{i}.json"))
    except ValueError:
        body = None
    if status != "200" or not body or body.get("tokens") != cli["tokens"] or body.get("text") != cli["text"]:
        bad.append((i, status, body))
if bad:
    print("wrong answers:", bad[:3])
sys.exit(1 if bad else 0)
EOF
}

# generations_served PORT: the backend's /v1/generate 200s, from its /metrics.
generations_served() {
  curl -sf --max-time 10 "http://127.0.0.1:$1/metrics" |
    sed -n 's/^paligemma_requests_total{endpoint="\/v1\/generate",status="200"} \([0-9]*\)$/\1/p' | grep . || echo 0
}

# Access log lines of generations: the upstream that answered (the last address of each line).
answered_by() {
  grep '"POST /v1/generate ' "$TMP/access.log" | sed -n 's/.* upstream=\(.*\) upstream_status=.*/\1/p' |
    awk -F', ' '{print $NF}'
}

send_requests 20 both
check "20 answers through nginx, each the CLI's" every_answer_right 20 both
n1=$(generations_served "$B1")
n2=$(generations_served "$B2")
check "both backends served generations ($n1 + $n2, from their /metrics)" \
  test "$n1" -gt 0 -a "$n2" -gt 0 -a $((n1 + n2)) -eq 20
check "the access log names each backend ($B1: $n1, $B2: $n2)" \
  test "$(answered_by | grep -c ":$B1$")" -eq "$n1" -a "$(answered_by | grep -c ":$B2$")" -eq "$n2"

kill "$PID_B1"
wait "$PID_B1" 2>/dev/null
send_requests 20 one
check "20 answers with one backend killed, each the CLI's" every_answer_right 20 one
check "nginx logged 40 generations" test "$(answered_by | wc -l)" -eq 40
after=$(answered_by | tail -n 20)
check "after the kill every answer came from the live backend" \
  test "$(grep -c ":$B2$" <<<"$after")" -eq 20
check "the live backend's /metrics counts them: $((n2 + 20))" test "$(generations_served "$B2")" -eq $((n2 + 20))

# A full backend answers 503 (--max-queue 0 refuses every generation); nginx resends the POST to the other
# (non_idempotent in proxy_next_upstream), so the client still gets the answer. It comes up on the killed
# backend's port, once that backend's fail_timeout (5 s) is over and nginx tries the address again.
"$BIN" serve --port "$B1" --quiet --max-queue 0 2>"$TMP/serve-full.log" &
pids+=($!)
wait_for "http://127.0.0.1:$B1/health" || { echo "FAIL: the full backend did not start"; exit 1; }
sleep 6
send_requests 10 full
check "10 answers with one backend full, each the CLI's" every_answer_right 10 full
retried=$(grep '"POST /v1/generate ' "$TMP/access.log" | tail -n 10 |
  grep -c "upstream=127.0.0.1:$B1, 127.0.0.1:$B2 upstream_status=503, 200")
check "nginx resent a refused POST to the other backend ($retried of 10 logged 503, 200)" test "$retried" -ge 1

# The docs show the committed file verbatim (the block after "```nginx").
sed -n '/^```nginx$/,/^```$/p' "$SRC/docs/scale-out.md" | sed '1d;$d' >"$TMP/doc.conf"
check "docs/scale-out.md shows docs/examples/nginx-paligemma.conf as it is" cmp -s "$TMP/doc.conf" "$CONF"

finish
