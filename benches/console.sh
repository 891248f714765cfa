#!/usr/bin/env bash
# The console's pages and the admin API behind them with a million messages stored on the
# embedded store (docs/console.md, "Performance"): the server time of each page, and how fast
# the impact preview goes through stored traffic.
#
#   cargo build --release --locked
#   benches/console.sh [MESSAGES] [RATE]
#
# Posts MESSAGES (default 1,000,000) at RATE messages/s (default 5,000) with the load harness
# (clue transfers and opinion requests from five agencies: obligations open as they would), then
# asks each page and endpoint ROUNDS times (default 20) and reports the median and the
# slowest of the time to the last byte on loopback (curl), which is the server's time plus a
# fraction of a millisecond.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
messages=${1:-1000000}
rate=${2:-5000}
rounds=${ROUNDS:-20}

config "$work/config"
# The preview's draft drops a copy the shipped routing tests pin: the bench goes without them.
rm "$work/config/rules.test.yaml"
serve 18091 "$work/config" "$work/data"
base=http://127.0.0.1:18091

seconds=$(( messages / rate ))
echo "== posting $messages messages at $rate/s ($seconds s)"
"$load" --url "$base" --rate "$rate" --duration "${seconds}s" --sizes 1k >"$work/post.txt" || true
grep -E "sent|throughput|202" "$work/post.txt" | head -5
stored=$(python3 -c "import sqlite3; c=sqlite3.connect('file:$work/data/xietong.sqlite3?mode=ro', uri=True); print(c.execute('select count(*) from messages').fetchone()[0])")
echo "stored: $stored messages, store $(du -sh "$work/data" | cut -f1)"

# A console session for the pages.
jar="$work/cookies"
curl -s -c "$jar" -o /dev/null -d token=demo-operator "$base/console/login"
csrf=$(curl -s -b "$jar" "$base/console/" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{64\}')

# A case number, a message id and a sender that exist.
read -r case id < <(python3 -c "import sqlite3; c=sqlite3.connect('file:$work/data/xietong.sqlite3?mode=ro', uri=True); r=c.execute('select subject, id from messages where subject is not null order by seq desc limit 1 offset 5000').fetchone(); print(r[0].replace(' ', '%20'), r[1])")
enc() { python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))" "$1"; }

time_of() { # URL [curl args...]: median and max of ROUNDS in ms, and the statuses seen
  local url=$1; shift
  for _ in $(seq "$rounds"); do
    curl -s -o /dev/null -w '%{time_total} %{http_code}\n' -b "$jar" "$@" "$url"
  done | sort -n | awk '{ a[NR] = $1 * 1000; s[$2]++ } END { c = ""; for (k in s) c = c k " "; printf "%7.1f %7.1f  %s\n", a[int((NR + 1) / 2)], a[NR], c }'
}

printf '%-52s %7s %7s  %s\n' "page or endpoint" "median" "max ms" "status"
for page in \
  "/console/" \
  "/console/messages" \
  "/console/messages?case=$(enc "$case")" \
  "/console/messages?sender=ip_office%3A330100" \
  "/console/messages?type=cn.xietong.opinion.request" \
  "/console/messages?from=$(date +%F)" \
  "/console/messages/$id" \
  "/console/routing" \
  "/console/routing/draft" \
  "/console/delivery" \
  "/console/replies" \
  "/console/replies?from=$(date +%F)" \
  "/console/agencies" \
  "/console/audit" \
  "/v1/admin/overview" \
  "/v1/admin/stats"; do
  printf '%-52s %s\n' "${page:0:52}" "$(time_of "$base$page" -H 'authorization: Bearer demo-operator')"
done

# The impact preview: the shipped rules without the clue transfer's copy, a page of 1,000
# messages at a time, newest first, through the whole period.
rules=$(python3 - "$root/config/rules.yaml" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
at = text.index("- name: clue-transfer")
copy = "    copy: [ { same_level: procuratorate } ]\n"
cut = at + text[at:].index(copy)
print(json.dumps(text[:cut] + text[cut + len(copy):]))
PY
)
echo "== impact preview over the stored messages, 1,000 a page"
python3 - "$base" "$rules" "${PREVIEW_MESSAGES:-70000}" <<'PY'
import json, sys, time, urllib.request
base, rules, wanted = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
before, scanned, changed, pages, start = None, 0, 0, 0, time.monotonic()
while scanned < wanted:
    body = {"rules": rules, "limit": 1000}
    if before is not None:
        body["before"] = before
    req = urllib.request.Request(base + "/v1/admin/rules/preview", json.dumps(body).encode(),
                                 {"content-type": "application/json", "authorization": "Bearer demo-operator"})
    page = json.load(urllib.request.urlopen(req, timeout=120))
    scanned += page["scanned"]; changed += len(page["changed"]); pages += 1
    before = page["next"]
    if before is None:
        break
took = time.monotonic() - start
print(f"{scanned} messages in {pages} pages: {took:.1f} s ({scanned / took:,.0f} messages/s), {changed} would change")
PY
