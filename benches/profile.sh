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
# XIETONG_BIN=PATH profiles another build (as benches/ingest.sh). CALL_GRAPH=dwarf records whole
# stacks (DWARF unwinding, 499 Hz: the release build has no frame pointers, so the default `-g`
# gives a flat profile only) and adds the share of the HTTP workers' samples spent under each
# part of the ingest path.
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
if [ "${CALL_GRAPH:-}" = dwarf ]; then
  perf record -F 499 --call-graph dwarf,16384 -o "$data" -p "$served" -- sleep "$seconds" 2>/dev/null
else
  perf record -F 999 -g -o "$data" -p "$served" -- sleep "$seconds" 2>/dev/null
fi
wait "$load_pid"
grep -E '^gateway' "$work/load.txt"
echo "--- samples by thread"
perf report -i "$data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8 || true
echo "--- hottest symbols"
perf report -i "$data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
[ "${CALL_GRAPH:-}" = dwarf ] || exit 0
# The share of a thread's samples with each key in its stack: shares COMM NAME=KEY ... (keys are
# pieces of mangled symbol names).
shares() {
  local comm=$1; shift
  perf script -i "$data" --comm "$comm" --no-demangle 2>/dev/null | python3 -c '
import sys
parts = [a.split("=", 1) for a in sys.argv[1:]]
samples, stack = [], None
for line in sys.stdin:
    if line.strip() and not line.startswith("\t"):
        if stack is not None:
            samples.append(" ".join(stack))
        stack = []
    elif line.strip() and stack is not None:
        stack.append(line.split()[1])
if stack:
    samples.append(" ".join(stack))
for name, key in parts:
    n = sum(key in s for s in samples)
    print(f"{100 * n / max(len(samples), 1):6.1f}%  {name}")
' "$@"
}
echo "--- the HTTP workers' samples under each part of the ingest path (inclusive)"
shares 'actix-rt|system' "messages::handle=4http8messages6handle" "pipeline::run=8pipeline6accept3run" \
  "parse=8pipeline6intake5parse" "normalize_document=6intake18normalize_document" \
  "Mapping::map=6engine7Mapping3map" "secrecy scan=7secrecy4scan4walk" \
  "schema validation=6schema7Schemas8validate" "content hash=6intake12content_hash" \
  "route and views=10recipients7address" "the stored message: outbox and event text=8pipeline6accept4Unit7message" \
  "the store, request side=5store6sqlite8messages"
echo "--- the writer's samples (inclusive)"
shares 'xietong-store' "a message's SQL=6sqlite8messages6accept" "its audit record=6sqlite5audit6append" \
  "case threads and obligations=6sqlite7threads" "delivery bookkeeping=6sqlite8webhooks" \
  "commit: WAL frames written=sqlite3WalFrames" "commit: sync=fsync" "checkpoints=walCheckpoint" \
  "page cache truncated at commit=pcache1Truncate"
