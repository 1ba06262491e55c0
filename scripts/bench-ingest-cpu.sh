#!/usr/bin/env bash
# Full-speed ingest with the server's CPU per request: the bare baseline
# (examples/bare_ingest: hyper + sled group commit + fdatasync) and each hookrelay build,
# in turns, wrk -t2 -c64 for $SECS s (default 8) with a 1 KiB GitHub-signed body. The
# CPU is the server process's user + system time over the run (/proc/PID/stat), divided
# by the requests it answered. Where the two cores are shared with wrk, the rate follows
# that CPU (docs/benchmarks.md, "Full-speed ingest against the bare baseline").
#
# usage: [SECS=8] [BARE_INGEST=path] scripts/bench-ingest-cpu.sh ROUNDS BIN...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:?usage: bench-ingest-cpu.sh ROUNDS BIN...}; shift
[ $# -gt 0 ] || { echo "usage: bench-ingest-cpu.sh ROUNDS BIN..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
secs=${SECS:-8}
bare=${BARE_INGEST:-$here/../target/release/examples/bare_ingest}
[ -x "$bare" ] || (cd "$here/.." && cargo build --release --example bare_ingest -q)
source "$here/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r* || true; rm -rf "$work"' EXIT
write_post_lua "$work"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure PID URL: prints "RATE/s CPU_US us/request".
measure() {
  local pid=$1 url=$2 c0 c1 rate
  c0=$(cpu_ticks "$pid")
  rate=$(wrk -t2 -c64 -d"${secs}s" -s "$work/post.lua" "$url" | awk '/Requests\/sec/{printf "%.0f", $2}')
  c1=$(cpu_ticks "$pid")
  python3 -c "print(f'{$rate}/s {($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / ($rate * $secs):.1f} us/request')"
}

for r in $(seq 1 "$rounds"); do
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bare_ingest "$bare" "$dir")
  line="round $r  bare: $(measure "$(cat "$dir/pid")" "$url/")"
  stop_bench_relay_and_wait "$dir"
  for bin in "$@"; do
    dir=$(mktemp -d "$work/rXXXX")
    url=$(BENCH_SCHEME=github start_bench_relay "$bin" "$dir")
    line+="  $(basename "$bin"): $(measure "$(cat "$dir/pid")" "$url/hooks/bench")"
    stop_bench_relay_and_wait "$dir"
  done
  echo "$line"
done
