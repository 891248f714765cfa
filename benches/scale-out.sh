#!/usr/bin/env bash
# Ingest and webhook delivery on the embedded store, on Redis with one instance, and on Redis
# with two instances, in one run, so the figures can be compared as ratios
# (docs/performance.md, "Scale-out").
#
#   cargo build --release --locked
#   benches/scale-out.sh [REDIS_URL] [SECONDS] [RATE]
#
# REDIS_URL defaults to redis://127.0.0.1:6379; every Redis case uses its own key prefix and
# removes its keys afterwards. For each case, xietong-load (the repository's harness) runs:
#   ingest:   64 connections posting 1 KiB messages as fast as they are answered;
#   delivery: RATE messages/s (default 1000) while four agencies' feeds are subscribed four
#             times each to a webhook receiver in the harness: about three deliveries per message.
# With two instances the harness spreads its connections over both, and the webhook workers of
# both deliver from the shared queues.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
redis_url=${1:-redis://127.0.0.1:6379}
seconds=${2:-10}
rate=${3:-1000}

rss_all() { # the gateways' resident memory, MiB
  for pid in "${pids[@]}"; do rss "$pid"; done | paste -sd' '
}

measure() { # URLS TAG
  echo "-- ingest"
  "$load" --url "$1" --connections 64 --duration "${seconds}s" --sizes 1k --json "$work/$2-ingest.json"
  echo "-- delivery"
  "$load" --url "$1" --connections 32 --rate "$rate" --duration "${seconds}s" --sizes 1k \
    --webhook procuratorate:330100=demo-procuratorate-330100 \
    --webhook procuratorate:440300=demo-procuratorate-440300 \
    --webhook ip_office:330100=demo-ip_office-330100 \
    --webhook ip_office:440300=demo-ip_office-440300 \
    --webhook-copies 4 --json "$work/$2-delivery.json"
  echo "resident memory (MiB): $(rss_all)"
}

forget() { # PREFIX: the gateway's keys and its delivery queues'
  for pattern in "{$1}:*" "{$1:q:*}:*"; do
    redis-cli -u "$redis_url" --scan --pattern "$pattern" | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null
  done
}

run=$(date +%s)

echo "== embedded store, one instance"
config "$work/embedded"
serve 18080 "$work/embedded" "$work/data-embedded"
measure http://127.0.0.1:18080 embedded
stop_all

prefix="bench-$run-1"
echo "== Redis store ($redis_url), one instance"
config "$work/redis1" "store: { backend: redis, redis: { url: '$redis_url', prefix: $prefix } }"
serve 18080 "$work/redis1" "$work/data-redis1"
measure http://127.0.0.1:18080 redis1
stop_all
forget "$prefix"

prefix="bench-$run-2"
echo "== Redis store ($redis_url), two instances"
config "$work/redis2" "store: { backend: redis, redis: { url: '$redis_url', prefix: $prefix } }"
serve 18081 "$work/redis2" "$work/data-redis2a"
serve 18082 "$work/redis2" "$work/data-redis2b"
measure http://127.0.0.1:18081,http://127.0.0.1:18082 redis2
stop_all
forget "$prefix"

echo "== summary: messages/s and deliveries/s, with the ratio to the embedded store"
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
def read(tag, phase):
    return json.load(open(f"{work}/{tag}-{phase}.json"))
base = {}
for tag in ["embedded", "redis1", "redis2"]:
    ingest = read(tag, "ingest")["reports"][-1]
    hooks = read(tag, "delivery")["deliveries"][0]
    row = {"ingest": ingest["per_second"], "under_load": hooks["per_second_under_load"],
           "end_to_end": hooks["per_second_end_to_end"]}
    base = base or row
    ratio = lambda k: f"{row[k]:8.0f} ({row[k] / base[k]:.2f}x)" if base[k] else f"{row[k]:8.0f}"
    print(f"{tag:9} ingest {ratio('ingest')}  p99 {ingest['latency_ms']['p99']:6.1f} ms | "
          f"deliveries/s {ratio('under_load')} under load, {ratio('end_to_end')} end to end, "
          f"POST->webhook p50 {hooks['latency_ms']['p50']:.1f} ms p99 {hooks['latency_ms']['p99']:.1f} ms, "
          f"{hooks['missing']} missing")
EOF
