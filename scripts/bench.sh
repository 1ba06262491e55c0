#!/usr/bin/env bash
# The standard benchmark set, reproducible on any machine: builds in release mode,
# then measures durable verified ingest (wrk and `hookrelay bench`), end-to-end
# latency at a fixed rate, replay throughput, and memory (relay idle, relay with
# 10,000 idle agents, agent). Results feed docs/benchmarks.md.
#
# usage: scripts/bench.sh [runs=3]
set -euo pipefail
runs=${1:-3}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/hookrelay
work=$(mktemp -d)
source scripts/relay-lib.sh
pids=()
cleanup() {
  stop_bench_relays "$work"/*/
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

start_relay() { start_bench_relay "$bin" "$work/$1"; } # $1 = name; prints the base URL

echo "# hookrelay benchmarks — $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "build: $(rustc --version), release profile; load generator on the same machine"
echo

echo "## 1. Durable, verified ingest (wrk, 1 KiB GitHub-signed bodies)"
scripts/bench-ingest.sh "$runs" 10 64 | sed -n '3,$p'
echo

echo "## 2. hookrelay bench --embedded: ingest, e2e at 400/s, replay (median of $runs)"
for i in $(seq 1 "$runs"); do
  "$bin" bench --embedded --count 50000 --concurrency 64 --rate 400 --duration 10 --json > "$work/b$i.json"
done
python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
res = [json.load(open(f"{work}/b{i}.json")) for i in range(1, runs + 1)]
for idx, phase in enumerate(r["phase"] for r in res[0]):
    rows = [r[idx] for r in res]
    med = lambda f: statistics.median(f(r) for r in rows)
    line = f"{phase:7} events/s {med(lambda r: r['events_per_sec']):>10.0f}  MB/s {med(lambda r: r['mb_per_sec']):>7.1f}"
    if rows[0].get("latency_ms"):
        for p in ("p50", "p90", "p99", "p999", "max"):
            line += f"  {p} {med(lambda r: r['latency_ms'][p]):.3f} ms"
    print(line)
PY
echo

echo "## 3. Replay: hookrelay tail --from 1 > /dev/null (100,000 events of 1 KiB)"
url=$(start_relay replay)
"$bin" bench --relay "$url" --phases ingest --count 100000 --json > /dev/null
rates=()
for i in $(seq 1 "$runs"); do
  t0=$(date +%s.%N)
  "$bin" tail --relay "$url" --channel bench --token bench-token --from 1 --limit 100000 > /dev/null
  t1=$(date +%s.%N)
  rates+=("$(python3 -c "print(f'{100000/($t1-$t0):.0f}')")")
  echo "run $i: ${rates[-1]} events/s (whole process, connect included)"
done
echo "median: $(printf '%s\n' "${rates[@]}" | median) events/s"
echo

echo "## 4. Agent drain: backlog of 100,000 (fast target) and 10,000 (20 ms target)"
url=$(start_relay drain)
for w in 1 32 64 256; do
  rates=()
  for i in $(seq 1 "$runs"); do
    rates+=("$("$bin" bench --relay "$url" --phases drain --count 100000 --max-in-flight "$w" --json \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(round(r["events_per_sec"]), round(r["first_event_ms"], 1))')")
  done
  printf -- "--max-in-flight %s, fast target: events/s (first event ms): %s\n" "$w" "${rates[*]}"
  echo "  median: $(printf '%s\n' "${rates[@]}" | cut -d' ' -f1 | median) events/s"
done
echo "--max-in-flight 32, 20 ms target:"
"$bin" bench --relay "$url" --phases drain --count 10000 --max-in-flight 32 --service-delay-ms 20 | tail -2
echo

echo "## 5. Memory"
url=$(start_relay memory)
pid=$(cat "$work/memory/pid")
echo "relay idle: $(rss_mb "$pid") MB RSS"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$bin" bench --relay "$url" --phases idle --connections 10000 --hold 5 > "$work/idle.out" 2>&1 &
bench_pid=$!
for _ in $(seq 1 600); do grep -q "holding" "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
echo "relay with $(sed -n 's/bench idle: holding \([0-9]*\).*/\1/p' "$work/idle.out") idle agents: $(rss_mb "$pid") MB RSS"
wait "$bench_pid" || true
mkdir -p "$work/target"
python3 scripts/echo_target.py 0 >/dev/null 2>&1 &  # not used for RSS; the agent needs a target URL only
pids+=($!)
"$bin" agent --relay "$url" --channel bench --token bench-token --from latest --forward http://127.0.0.1:9/ > "$work/agent.out" 2>&1 &
agent_pid=$!; pids+=($agent_pid)
for _ in $(seq 1 200); do grep -q "subscribed" "$work/agent.out" 2>/dev/null && break; sleep 0.05; done
echo "agent (connected, idle): $(rss_mb "$agent_pid") MB RSS"
