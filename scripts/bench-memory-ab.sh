#!/usr/bin/env bash
# Relay memory with 10,000 idle agents, several builds in turns: each round starts a
# fresh bench relay per build (scripts/relay-lib.sh), reads its RSS idle, connects
# `hookrelay bench --phases idle --connections 10000` (the build's own bench client),
# and reads the relay's RSS from /proc/PID/status once the client prints "holding",
# then again 1 s and 3 s later (it should not move).
#
# usage: [ROUNDS=2] [CONNECTIONS=10000] scripts/bench-memory-ab.sh BIN...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: bench-memory-ab.sh BIN..." >&2; exit 2; }
source "$here/relay-lib.sh"
rounds=${ROUNDS:-2}; conns=${CONNECTIONS:-10000}
# Each agent is a socket in the client and one in the relay.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((conns + 100)) ] || { echo "ulimit -n $(ulimit -n) is too low for $conns connections" >&2; exit 2; }
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r* || true; rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%FT%TZ); $conns idle agents, $rounds rounds"
for round in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    dir=$(mktemp -d "$work/rXXXX")
    url=$(start_bench_relay "$bin" "$dir")
    pid=$(cat "$dir/pid")
    idle=$(rss_mb "$pid")
    "$bin" bench --relay "$url" --phases idle --connections "$conns" --hold 6 > "$dir/idle.out" 2>&1 &
    client=$!
    for _ in $(seq 1 600); do grep -q "holding" "$dir/idle.out" 2>/dev/null && break; sleep 0.1; done
    grep -q "holding" "$dir/idle.out" || { echo "the bench client never held its connections:" >&2; cat "$dir/idle.out" >&2; exit 1; }
    held=$(sed -n 's/bench idle: holding \([0-9]*\).*/\1/p' "$dir/idle.out")
    at=$(rss_mb "$pid"); sleep 1; one=$(rss_mb "$pid"); sleep 2; three=$(rss_mb "$pid")
    echo "round $round $bin: idle $idle MB; with $held agents $at MB (+1 s $one, +3 s $three)"
    wait "$client" || true
    stop_bench_relay_and_wait "$dir"
  done
done
