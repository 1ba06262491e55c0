#!/usr/bin/env bash
# System calls per thread of the relay at a webhook trickle (issue 17): starts a bench
# relay (sled, fresh data dir), warms it with 3 s of e2e at 400/s, then runs
# `perf trace -s` on the relay for 8 s while `hookrelay bench --phases e2e --rate 400
# --duration 6` (2,400 events) runs against it, and prints the summary per thread.
# Divide a count by 2,400 for calls per event.
#
# usage: scripts/syscalls-e2e.sh [HOOKRELAY_BIN] [OUT=syscalls-e2e.txt]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/hookrelay}
out=${2:-syscalls-e2e.txt}
command -v perf >/dev/null || { echo "perf is needed: apt-get install -y linux-perf" >&2; exit 2; }
[ -x "$bin" ] || { echo "no hookrelay binary at $bin: cargo build --release" >&2; exit 2; }
source "$root/scripts/relay-lib.sh"
dir=$(mktemp -d)
trap 'stop_bench_relays "$dir"; rm -rf "$dir"' EXIT
url=$(start_bench_relay "$bin" "$dir")
"$bin" bench --relay "$url" --phases e2e --rate 400 --duration 3 > /dev/null 2>&1
perf trace -s -p "$(cat "$dir/pid")" -o "$out" -- sleep 8 &
trace_pid=$!
"$bin" bench --relay "$url" --phases e2e --rate 400 --duration 6
wait "$trace_pid" || true
grep -E '^ [^ ].*\(|^ +[a-z_0-9]+ +[0-9]+ ' "$out"
