#!/usr/bin/env bash
# A CPU profile of the gateway under ingest load (docs/performance.md, "Profiles"): the release
# binary on a fresh embedded store, xietong-load at 64 connections for SECONDS (default 8), and
# `perf record` on the gateway's process meanwhile. Prints the split of samples by thread and the
# hottest symbols; the recording stays in $PERF_DATA (default /tmp/xietong.perf.data) for
# `perf report -i`.
#
#   cargo build --release --locked
#   benches/profile.sh [SECONDS]
#
# XIETONG_BIN=PATH profiles another build (as benches/ingest.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }

seconds=${1:-8}
data=${PERF_DATA:-/tmp/xietong.perf.data}
config "$work/config"
serve 18096 "$work/config" "$work/data"
"$load" --url http://127.0.0.1:18096 --connections 64 --duration "$((seconds + 2))s" --warmup 1s --sizes 1k \
  >"$work/load.txt" &
load_pid=$!
sleep 1.5
perf record -F 999 -g -o "$data" -p "$served" -- sleep "$seconds" 2>/dev/null
wait "$load_pid"
grep -E '^gateway' "$work/load.txt"
echo "--- samples by thread"
perf report -i "$data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "--- hottest symbols"
perf report -i "$data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25
