#!/usr/bin/env bash
# A/B comparison of two hookrelay builds on the three numbers a refactor must not
# lose: durable ingest, the agent's backlog drain, and replay (tail). The builds take
# turns, run by run, so both see the same machine noise; each run starts a fresh relay
# of that build in a fresh data directory. Build the baseline from another checkout:
#   git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release)
#
# usage: scripts/bench-ab.sh OLD_BIN NEW_BIN [runs=5] [events=100000]
set -euo pipefail
old=${1:?usage: bench-ab.sh OLD_BIN NEW_BIN [runs] [events]}
new=${2:?usage: bench-ab.sh OLD_BIN NEW_BIN [runs] [events]}
runs=${3:-5}
events=${4:-100000}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r*; wait 2>/dev/null || true; rm -rf "$work"' EXIT

write_post_lua "$work"

# One measurement of BIN: prints "ingest drain replay" (events/s each).
measure() {
  local bin=$1 dir url ingest drain t0 t1 replay
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bench_relay "$bin" "$dir")
  ingest=$(wrk -t2 -c64 -d5s -s "$work/post.lua" "$url/hooks/bench" | awk '/Requests\/sec/{printf "%.0f", $2}')
  stop_bench_relays "$dir"; sleep 0.5
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bench_relay "$bin" "$dir")
  drain=$("$bin" bench --relay "$url" --phases drain --count "$events" --max-in-flight 32 --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["events_per_sec"]))')
  t0=$(date +%s.%N)
  "$bin" tail --relay "$url" --channel bench --token bench-token --from 1 --limit "$events" > /dev/null
  t1=$(date +%s.%N)
  replay=$(python3 -c "print(round($events / ($t1 - $t0)))")
  stop_bench_relays "$dir"; sleep 0.5
  echo "$ingest $drain $replay"
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "ingest: wrk -t2 -c64 -d5s, 1 KiB GitHub-signed; drain: bench --phases drain --count $events --max-in-flight 32; replay: tail --limit $events"
: > "$work/old"; : > "$work/new"
for i in $(seq 1 "$runs"); do
  o=$(measure "$old"); n=$(measure "$new")
  echo "run $i  old: $o  new: $n"
  echo "$o" >> "$work/old"; echo "$n" >> "$work/new"
done
for side in old new; do
  printf '%s medians  ingest %s  drain %s  replay %s events/s\n' "$side" \
    "$(cut -d' ' -f1 "$work/$side" | median)" "$(cut -d' ' -f2 "$work/$side" | median)" \
    "$(cut -d' ' -f3 "$work/$side" | median)"
done
