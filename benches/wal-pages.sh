#!/usr/bin/env bash
# Which tables and indexes the embedded store writes per accepted message (docs/performance.md,
# "The writer's pages"): the release gateway on a fresh store under xietong-load (64
# connections, 1 KiB) while a reader holds a snapshot open, so that no checkpoint empties the
# WAL; then every WAL frame of the run is counted against the table or index its page belongs
# to (SQLite's dbstat, through Python's sqlite3).
#
#   cargo build --release --locked
#   benches/wal-pages.sh [SECONDS]      default 6
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds=${1:-6}
config "$work/config"
serve 18097 "$work/config" "$work/data"
db="$work/data/xietong.sqlite3"
python3 - "$db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
c.execute("SELECT count(*) FROM sqlite_schema").fetchall()  # the snapshot is held from here
time.sleep(3600)
PY
reader=$!
pids+=("$reader")
sleep 0.5
"$load" --url http://127.0.0.1:18097 --connections 64 --duration "${seconds}s" --warmup 1s --sizes 1k | grep -E '^gateway'
accepted=$(curl -sf http://127.0.0.1:18097/metrics | awk '/^xietong_messages_total\{outcome="accepted"/ {n += $2} END {print n}')
kill -9 "$served"
kill "$reader"
wait 2>/dev/null || true
mkdir "$work/copy"
cp "$work/data/"xietong.sqlite3* "$work/copy/"
python3 - "$work/copy/xietong.sqlite3" "$accepted" <<'PY'
import collections, sqlite3, struct, sys
path, accepted = sys.argv[1], float(sys.argv[2])
wal = open(path + "-wal", "rb").read()
page_size = struct.unpack(">I", wal[8:12])[0]
salts = wal[16:24]
frames, commits, off = [], 0, 32
while off + 24 + page_size <= len(wal):
    page, size = struct.unpack(">II", wal[off:off + 8])
    if wal[off + 8:off + 16] != salts:
        break  # frames of an earlier cycle of the WAL
    frames.append(page)
    commits += size != 0
    off += 24 + page_size
# Opening the copy replays its WAL; dbstat says which table or index owns each page.
owner = {page: name for name, page in sqlite3.connect(path).execute("SELECT name, pageno FROM dbstat")}
by = collections.Counter(owner.get(p, "(new or free page)") for p in frames)
print(f"{int(accepted)} messages accepted, {commits} commits ({accepted / max(commits, 1):.1f} messages each), "
      f"{len(frames)} WAL frames of {page_size} B: {len(frames) / accepted:.2f} per message, "
      f"{len(frames) * page_size / 1024 / accepted:.1f} KiB per message")
print(f"{'table or index':36} {'frames':>8} {'per message':>12}")
for name, n in by.most_common(20):
    print(f"{name:36} {n:8} {n / accepted:12.2f}")
PY
