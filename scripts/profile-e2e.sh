#!/usr/bin/env bash
# Where the relay's CPU goes at a webhook trickle (issue 17): starts a bench relay (sled,
# fresh data dir), warms it with 3 s of e2e at 400/s, then records `perf` on the relay
# process for 9 s while `hookrelay bench --phases e2e --rate 400 --duration 8` runs, and
# prints the share by thread, by binary and the top symbols.
#
# MODE=syscalls instead runs `perf trace -s` on the relay for 8 s while the bench posts
# 2,400 events (6 s at 400/s), and prints the system calls per thread (divide a count
# by 2,400 for calls per event).
#
# usage: [MODE=cpu|syscalls] scripts/profile-e2e.sh [HOOKRELAY_BIN] [OUT=perf-e2e.data]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/hookrelay}
out=${2:-perf-e2e.data}
command -v perf >/dev/null || { echo "perf is needed: apt-get install -y linux-perf" >&2; exit 2; }
[ -x "$bin" ] || { echo "no hookrelay binary at $bin: cargo build --release" >&2; exit 2; }
source "$root/scripts/relay-lib.sh"
dir=$(mktemp -d)
trap 'stop_bench_relays "$dir"; rm -rf "$dir"' EXIT
url=$(start_bench_relay "$bin" "$dir")
"$bin" bench --relay "$url" --phases e2e --rate 400 --duration 3 > /dev/null 2>&1
if [ "${MODE:-cpu}" = syscalls ]; then
  perf trace -s -p "$(cat "$dir/pid")" -o "$out" -- sleep 8 &
  trace_pid=$!
  "$bin" bench --relay "$url" --phases e2e --rate 400 --duration 6
  wait "$trace_pid" || true
  grep -E '^ [^ ].*\(|^ +[a-z_0-9]+ +[0-9]+ ' "$out"
  exit 0
fi
perf record -e cpu-clock -F 4999 -g -p "$(cat "$dir/pid")" -o "$out" -- sleep 9 > /dev/null 2>&1 &
perf_pid=$!
"$bin" bench --relay "$url" --phases e2e --rate 400 --duration 8
wait "$perf_pid" || true
for key in comm dso sym; do
  echo "== by $key"
  perf report -i "$out" --no-children --sort "$key" --stdio -g none 2>/dev/null | grep '%' | head -20
done
