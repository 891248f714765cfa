#!/usr/bin/env bash
# A backlog of about a million undelivered messages on the embedded store: what it costs in
# memory and in ingest throughput (docs/performance.md, "A backlog of a million messages").
#
#   cargo build --release --locked
#   benches/backlog.sh [MESSAGES] [RATE]
#
# The gateway gets webhook subscriptions on every feed the harness's messages reach, all to an
# endpoint that accepts connections and never answers: every message stays queued (at most the
# endpoint's concurrency is in flight, and each of those times out and waits for its retry).
# The script measures ingest on the empty store, then posts MESSAGES (default 1,000,000) at
# RATE messages/s (default 4,000), then measures again with the backlog in place, and reports
# the gateway's resident memory at each step and the size of the store.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
messages=${1:-1000000}
rate=${2:-4000}

# An endpoint that takes connections and never answers.
python3 - "$work/stall.port" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4096)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept()
    held.append(c)
EOF
pids+=($!)
for _ in $(seq 50); do [ -s "$work/stall.port" ] && break; sleep 0.1; done
stall="http://127.0.0.1:$(cat "$work/stall.port")/hook"

delivery="{ allow_internal: [127.0.0.0/8], request_timeout: 10s, lease: 40s }" config "$work/config"
{
  echo "subscriptions:"
  for owner in public_security:330100 public_security:320500 public_security:440300 \
               procuratorate:330100 procuratorate:320500 procuratorate:440300 \
               ip_office:330100 ip_office:440300; do
    id=${owner/:/-}
    printf '  - id: %s\n    owner: %s\n    webhook:\n      url: %s\n      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n      concurrency: 2\n' \
      "$id" "$owner" "$stall"
  done
} >"$work/config/subscriptions.yaml"

serve 18090 "$work/config" "$work/data"
gateway=$served

pending() {
  python3 -c "import sqlite3,sys; c=sqlite3.connect('file:$work/data/xietong.sqlite3?mode=ro', uri=True); print(c.execute(\"select count(*) from webhook_attempts where state='pending'\").fetchone()[0])"
}

echo "== resident memory at rest, empty store: $(rss "$gateway") MiB"
echo "== ingest, empty store (64 connections, 10 s)"
"$load" --url http://127.0.0.1:18090 --connections 64 --duration 10s
echo "resident memory after it: $(rss "$gateway") MiB"

seconds=$(( messages / rate ))
echo "== posting $messages messages at $rate/s ($seconds s)"
"$load" --url http://127.0.0.1:18090 --connections 64 --rate "$rate" --duration "${seconds}s" --warmup 0s
echo "resident memory right after: $(rss "$gateway") MiB"
for _ in $(seq 60); do sleep 5; n=$(pending); [ "$n" = "${last:-}" ] && break; last=$n; done
echo "== queued: $(pending) webhook attempts pending; store: $(du -sh "$work/data" | cut -f1)"
sleep 10
echo "resident memory at rest with the backlog: $(rss "$gateway") MiB"
echo "== ingest with the backlog in place (64 connections, 10 s)"
"$load" --url http://127.0.0.1:18090 --connections 64 --duration 10s
echo "resident memory after it: $(rss "$gateway") MiB"
