#!/usr/bin/env bash
# Durable, verified ingest throughput: wrk posts 1 KiB GitHub-signed bodies to a
# release relay on 127.0.0.1 with a fresh data dir; every 200 is on disk (group commit
# + fsync). Prints each run and the median events/s.
#
# usage: scripts/bench-ingest.sh [runs=3] [seconds=10] [connections=64]
set -euo pipefail
runs=${1:-3}; secs=${2:-10}; conns=${3:-64}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
cargo build --release --quiet
bin=target/release/hookrelay
source scripts/relay-lib.sh
work=$(mktemp -d)
trap 'stop_bench_relays "$work/relay"; wait 2>/dev/null || true; rm -rf "$work"' EXIT

secret=bench-secret
python3 - "$work" "$secret" <<'PY'
import hmac, hashlib, json, sys
work, secret = sys.argv[1], sys.argv[2]
body = json.dumps({"action": "opened", "pad": "x" * 980})[:1024].ljust(1024)
sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
with open(f"{work}/post.lua", "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write(f'wrk.body = {json.dumps(body)}\n')
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write(f'wrk.headers["X-Hub-Signature-256"] = "sha256={sig}"\n')
PY

url=$(start_bench_relay "$bin" "$work/relay")

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "relay: $url  wrk: -t2 -c$conns -d${secs}s  body: 1024 B, scheme github"
# One warm-up second so the first run does not pay for page-cache misses.
wrk -t1 -c8 -d1s -s "$work/post.lua" "$url/hooks/bench" >/dev/null
rates=()
for i in $(seq 1 "$runs"); do
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "$url/hooks/bench")
  rate=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/{print $5}' <<<"$out"); bad=${bad:-0}
  echo "run $i: $rate events/s  p50 $p50  p99 $p99  non-2xx $bad"
  rates+=("$rate")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
head=$(curl -s -H 'Authorization: Bearer bench-admin' "$url/v1/channels" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channels"][0]["head"])')
echo "median: $median events/s (durable head after all runs: $head)"
