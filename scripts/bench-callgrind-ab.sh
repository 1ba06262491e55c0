#!/usr/bin/env bash
# CPU per ingested event, old build against new, in instructions (valgrind callgrind):
# a count that does not move with the machine's load, unlike events/s. Each relay runs
# under callgrind and takes N1, then (fresh relay) N2 GitHub-signed 1 KiB posts from
# the same client; (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal cost of one event —
# receive, verify, append with fsync, answer — without start-up and shutdown.
# With BENCH_PHASE=e2e the events are offered by `bench --phases e2e` instead, at
# BENCH_RATE per second (default 20; valgrind slows the relay ~50 times), and one agent
# takes each to a local service: the cost of an event at a trickle, its delivery, ack
# and cursor write included (N1 and N2 are then rounded down to whole seconds).
#
# usage: scripts/bench-callgrind-ab.sh OLD_BIN NEW_BIN [N1=500] [N2=2500]
set -euo pipefail
old=${1:?usage: bench-callgrind-ab.sh OLD_BIN NEW_BIN [N1] [N2]}
new=${2:?usage: bench-callgrind-ab.sh OLD_BIN NEW_BIN [N1] [N2]}
n1=${3:-500}; n2=${4:-2500}
phase=${BENCH_PHASE:-ingest}; rate=${BENCH_RATE:-20}
if [ "$phase" = e2e ]; then
  # e2e posts 20 warm-up events, then rate × duration: only the difference matters.
  n1=$(( n1 / rate * rate )); n2=$(( n2 / rate * rate ))
fi
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 2; }
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r*; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# Total instructions of one relay run that ingests N events (client: NEW_BIN's bench).
instructions() {
  local bin=$1 n=$2 dir url pid
  dir=$(mktemp -d "$work/rXXXX")
  mkdir -p "$dir"
  # start_bench_relay runs BIN directly; wrap it in callgrind through a tiny shim.
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg.out %s "$@"\n' \
    "$dir" "$bin" > "$dir/shim"; chmod +x "$dir/shim"
  url=$(start_bench_relay "$dir/shim" "$dir")
  if [ "$phase" = e2e ]; then
    "$new" bench --relay "$url" --phases e2e --rate "$rate" --duration $(( n / rate )) >/dev/null
  else
    "$new" bench --relay "$url" --phases ingest --count "$n" --concurrency 8 >/dev/null
  fi
  pid=$(cat "$dir/pid"); kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  callgrind_annotate "$dir/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n {gsub(",","",$1); print $1; n=1}'
}

echo "machine: $(nproc) cores; valgrind $(valgrind --version); phase $phase; events: $n1 and $n2"
for side in old new; do
  bin=${!side}
  a=$(instructions "$bin" "$n1"); b=$(instructions "$bin" "$n2")
  echo "$side $bin: Ir($n1)=$a Ir($n2)=$b  per event: $(( (b - a) / (n2 - n1) )) instructions"
done
