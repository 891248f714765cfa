# Shared by the benches/*.sh scripts (sourced, not run): the release binaries, a scratch
# directory removed on exit, and gateways started on a copy of the shipped configuration.
#
#   source "$(dirname "$0")/lib.sh"
#   config DIR [YAML]        the shipped config in DIR; xietong.yaml replaced by a rate limit out
#                            of the way, log level warn, $delivery (default: webhooks to
#                            127.0.0.1 allowed), and YAML
#   serve PORT CONFIG DATA   start a gateway and wait until /readyz answers; its pid is $served
#   rss PID                  resident memory of a process, MiB
#   stop_all                 stop everything started so far

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# XIETONG_PROFILE=debug runs the debug build (the CI's regression guard, .ci/perf-guard).
profile=${XIETONG_PROFILE:-release}
bin=${XIETONG_BIN:-"$root/target/$profile/xietong"}
load="$root/target/$profile/xietong-load"
build="cargo build --locked"
[ "$profile" = debug ] || build="cargo build --profile $profile --locked"
[ -x "$bin" ] && [ -x "$load" ] || { echo "build first: $build" >&2; exit 2; }

work=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

config() {
  mkdir -p "$1"
  cp -r "$root/config/." "$1/"
  cat >"$1/xietong.yaml" <<YAML
rate_limit: { per_second: 1000000, burst: 1000000 }
log: { level: warn }
delivery: ${delivery:-"{ allow_internal: [127.0.0.0/8] }"}
${2:-}
YAML
}

serve() {
  "$bin" serve --config "$2" --listen "127.0.0.1:$1" --data-dir "$3" 2>>"$work/serve.log" &
  served=$!
  pids+=("$served")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the gateway on port $1 did not become ready:" >&2
  cat "$work/serve.log" >&2
  exit 1
}

rss() { echo "$(( $(ps -o rss= -p "$1") / 1024 ))"; }
