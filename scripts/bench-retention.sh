#!/usr/bin/env bash
# Disk use under steady load with retention: ingest N events (default 1,000,000, 1 KiB
# each, GitHub-signed) into a channel that keeps the newest 100,000, sampling the data
# directory size every few seconds. With retention working the size levels off instead
# of growing with the number of events ingested.
#
# usage: scripts/bench-retention.sh [events=1000000] [keep=100000] [sample_secs=5]
set -euo pipefail
events=${1:-1000000}; keep=${2:-100000}; every=${3:-5}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/hookrelay
source scripts/relay-lib.sh
work=$(mktemp -d)
trap 'stop_bench_relays "$work/relay"; wait 2>/dev/null || true; rm -rf "$work"' EXIT
url=$(start_bench_relay "$bin" "$work/relay" "retention = { max_events = $keep }")

"$bin" bench --relay "$url" --channel bench --secret bench-secret --scheme github \
  --phases ingest --count "$events" --concurrency 64 --body-size 1024 --json > "$work/bench.json" &
bench_pid=$!
echo "seconds  ingested  earliest  data_dir_MiB"
start=$(date +%s)
while kill -0 "$bench_pid" 2>/dev/null; do
  stats=$(curl -s -H 'Authorization: Bearer bench-admin' "$url/v1/channels" | python3 -c 'import json,sys; c=json.load(sys.stdin)["channels"][0]; print(c["head"], c["earliest"])')
  size=$(du -sm "$work/relay/data" | cut -f1)
  printf "%7d  %8s  %8s  %12s\n" $(( $(date +%s) - start )) ${stats% *} ${stats#* } "$size"
  sleep "$every"
done
wait "$bench_pid"
sleep 6   # one more retention pass (it runs every 5 s)
stats=$(curl -s -H 'Authorization: Bearer bench-admin' "$url/v1/channels" | python3 -c 'import json,sys; c=json.load(sys.stdin)["channels"][0]; print(c["head"], c["earliest"])')
printf "%7s  %8s  %8s  %12s\n" "end" ${stats% *} ${stats#* } "$(du -sm "$work/relay/data" | cut -f1)"
python3 - "$work/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]
print("ingest: %d events at %.0f/s, %d errors" % (r["events"], r["events_per_sec"], r["errors"]))
PY
