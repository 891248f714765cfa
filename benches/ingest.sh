#!/usr/bin/env bash
# Ingest over HTTP on the embedded store (docs/performance.md, "Ingest over HTTP"): a gateway on
# a fresh data directory and the shipped configuration (rate limit out of the way, log level
# warn), driven by xietong-load with its ceiling measured first in the same run; the gateway's
# resident memory at rest and after the load.
#
#   cargo build --release --locked
#   benches/ingest.sh [XIETONG_LOAD_ARGS...]     default: --connections 64 --duration 10s --sizes 1k
#
# XIETONG_BIN=PATH runs another build of the gateway (an older commit's, for an A/B comparison
# with the same harness); the harness is always this tree's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -gt 0 ] || set -- --connections 64 --duration 10s --sizes 1k
config "$work/config"
serve 18095 "$work/config" "$work/data"
echo "gateway $bin: resident memory at rest $(rss "$served") MiB"
"$load" --url http://127.0.0.1:18095 --ceiling "$@"
echo "gateway resident memory after the load: $(rss "$served") MiB"
