#!/usr/bin/env bash
# A/B comparison of the agent's backlog drain: two hookrelay binaries take turns
# draining 100,000 events from one relay (run by the second binary), so both see the
# same machine noise. Build the baseline from another checkout first, e.g.
#   git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release)
#
# usage: scripts/bench-drain-ab.sh OLD_BIN NEW_BIN [runs=8] [max-in-flight=32]
set -euo pipefail
old=${1:?usage: bench-drain-ab.sh OLD_BIN NEW_BIN [runs] [max-in-flight]}
new=${2:?usage: bench-drain-ab.sh OLD_BIN NEW_BIN [runs] [max-in-flight]}
runs=${3:-8}
window=${4:-32}
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work/relay"; wait 2>/dev/null || true; rm -rf "$work"' EXIT
url=$(start_bench_relay "$new" "$work/relay")

rate() {
  "$1" bench --relay "$url" --phases drain --count 100000 --max-in-flight "$window" --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["events_per_sec"]))'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

a=(); b=()
for _ in $(seq 1 "$runs"); do
  a+=("$(rate "$old")")
  b+=("$(rate "$new")")
done
echo "--max-in-flight $window, $runs runs each, events/s"
echo "old $old: ${a[*]}  median $(printf '%s\n' "${a[@]}" | median)"
echo "new $new: ${b[*]}  median $(printf '%s\n' "${b[@]}" | median)"
