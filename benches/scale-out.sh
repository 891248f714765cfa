#!/usr/bin/env bash
# Ingest on the embedded store, on Redis with one instance, and on Redis with two instances, in
# one run, so the figures can be compared as ratios (docs/performance.md).
#
#   cargo build --release --locked
#   benches/scale-out.sh [REDIS_URL] [SECONDS]
#
# REDIS_URL defaults to redis://127.0.0.1:6379; every run uses its own key prefix and removes its
# keys afterwards. Each case is wrk with 64 connections posting the 1.3 KiB clue transfer with a
# fresh id per request (benches/wrk/ingest.lua); with two instances, two wrk processes of 32
# connections each run side by side, one per instance, and their figures add up.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
redis_url=${1:-redis://127.0.0.1:6379}
seconds=${2:-10}
bin="$root/target/release/xietong"
[ -x "$bin" ] || { echo "build first: cargo build --release --locked" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# config DIR STORE_YAML: the shipped configuration with the rate limit out of the way.
config() {
  mkdir -p "$1"
  cp -r "$root/config/." "$1/"
  cat >"$1/xietong.yaml" <<EOF
rate_limit: { per_second: 1000000, burst: 1000000 }
log: { level: warn }
$2
EOF
}

serve() { # PORT CONFIG DATA
  "$bin" serve --config "$2" --listen "127.0.0.1:$1" --data-dir "$3" 2>>"$work/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the gateway on port $1 did not become ready:" >&2
  cat "$work/serve.log" >&2
  exit 1
}

stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

load() { # PORT CONNECTIONS TAG
  (cd "$root" && wrk -t2 -c"$2" -d"${seconds}s" -s benches/wrk/ingest.lua "http://127.0.0.1:$1" \
    -- tests/fixtures/shared/examples/ipo-clue-transfer.json demo-ip_office-330100 "$3")
}

forget() { # PREFIX: the gateway's keys and its delivery queues'
  for pattern in "{$1}:*" "{$1:q:*}:*"; do
    redis-cli -u "$redis_url" --scan --pattern "$pattern" | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null
  done
}

run=$(date +%s)

echo "== embedded store, one instance, 64 connections"
config "$work/embedded" ""
serve 18080 "$work/embedded" "$work/data-embedded"
load 18080 64 "emb-$run"
echo "resident memory: $(ps -o rss= -p "${pids[0]}") KiB"
stop_all

prefix="bench-$run-1"
echo "== Redis store ($redis_url), one instance, 64 connections"
config "$work/redis1" "store: { backend: redis, redis: { url: '$redis_url', prefix: $prefix } }"
used() { redis-cli -u "$redis_url" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
before=$(used)
serve 18080 "$work/redis1" "$work/data-redis1"
load 18080 64 "r1-$run"
echo "resident memory: $(ps -o rss= -p "${pids[0]}") KiB"
stored=$(redis-cli -u "$redis_url" hlen "{$prefix}:native")
echo "messages in Redis: $stored, Redis memory per message: $(( ($(used) - before) / stored )) bytes"
stop_all
forget "$prefix"

prefix="bench-$run-2"
echo "== Redis store ($redis_url), two instances, 2 x 32 connections"
config "$work/redis2" "store: { backend: redis, redis: { url: '$redis_url', prefix: $prefix } }"
serve 18081 "$work/redis2" "$work/data-redis2a"
serve 18082 "$work/redis2" "$work/data-redis2b"
load 18081 32 "r2a-$run" >"$work/a.txt" &
a=$!
load 18082 32 "r2b-$run" >"$work/b.txt" &
b=$!
wait "$a" "$b"
echo "-- instance 1"; cat "$work/a.txt"
echo "-- instance 2"; cat "$work/b.txt"
echo "messages in Redis: $(redis-cli -u "$redis_url" hlen "{$prefix}:native" 2>/dev/null || echo '?')"
stop_all
forget "$prefix"
