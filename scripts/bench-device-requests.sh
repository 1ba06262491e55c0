#!/usr/bin/env bash
# What the disk does per event at a webhook trickle, for one or more builds in turns: each
# round starts a fresh bench relay (sled, fresh data dir) of each build, warms it with 2 s
# of e2e at 400/s, then
# - counts the block device's write requests and sectors over 5 s of e2e (2,020 events
#   with the bench's warm-up) from /sys/block/DEV/stat;
# - traces the requests issued during 1.5 s of a further e2e run (perf's
#   block:block_rq_issue) and counts them by kind: WS a data write, WSM a metadata write
#   (the inode-table block), FF a cache flush.
# The device is the one holding the data dir (DEV=vda by default). Needs perf and root.
#
# usage: [DEV=vda] [ROUNDS=2] scripts/bench-device-requests.sh BIN...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: [DEV=vda] [ROUNDS=2] $0 BIN..." >&2; exit 2; }
command -v perf >/dev/null || { echo "perf is needed: apt-get install -y linux-perf" >&2; exit 2; }
dev=${DEV:-vda}
stat=/sys/block/$dev/stat
[ -r "$stat" ] || { echo "no $stat: set DEV to the disk holding the data dir" >&2; exit 2; }
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r*; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# Events one 5 s e2e phase posts: 400/s, plus the bench's 20 warm-up events.
events=2020

measure() {
  local bin=$1 dir url s0 s1 kinds
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bench_relay "$bin" "$dir")
  "$bin" bench --relay "$url" --phases e2e --rate 400 --duration 2 > /dev/null 2>&1
  s0=$(cat "$stat")
  "$bin" bench --relay "$url" --phases e2e --rate 400 --duration 5 > /dev/null 2>&1
  s1=$(cat "$stat")
  "$bin" bench --relay "$url" --phases e2e --rate 400 --duration 3 > /dev/null 2>&1 &
  local bench=$!
  # Trace the middle of the run, not its start.
  perf record -q -e block:block_rq_issue -a -o "$dir/rq.data" -- sleep 1.5 > /dev/null 2>&1
  wait "$bench"
  kinds=$(perf script -i "$dir/rq.data" 2>/dev/null | awk '
    {for (i = 1; i <= NF; i++) if ($i ~ /block_rq_issue:$/) { k[$(i + 2)]++; n++ }}
    END {for (x in k) printf "%s %d  ", x, k[x]; printf "(of %d requests)", n}')
  stop_bench_relays "$dir"
  python3 - "$s0" "$s1" "$events" "$(basename "$bin")" "$kinds" <<'PY'
import sys
a, b = (list(map(int, s.split())) for s in sys.argv[1:3])
n = int(sys.argv[3])
writes, sectors = b[4] - a[4], b[6] - a[6]
flushes = b[15] - a[15] if len(a) > 15 else 0
print(f"{sys.argv[4]}: write requests/event {writes / n:.2f}, KiB written/event "
      f"{sectors * 512 / 1024 / n:.1f}, flushes/event {flushes / n:.2f}; traced: {sys.argv[5]}")
PY
}

echo "machine: $(nproc) cores, $(uname -r); device $dev; e2e at 400/s, 1 KiB bodies"
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "round $round"
  for bin in "$@"; do measure "$bin"; done
done
