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
work=$(mktemp -d)
relay_pid=
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/config.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$work/data"
admin_token = "bench-admin"
[[channel]]
name = "bench"
scheme = "github"
secrets = ["bench-secret"]
tokens = ["bench-token"]
TOML
"$new" serve --config "$work/config.toml" > "$work/out" 2> "$work/err" &
relay_pid=$!
for _ in $(seq 1 200); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^hookrelay listening on //p' "$work/out")
[ -n "$url" ] || { echo "relay did not start:" >&2; cat "$work/err" >&2; exit 1; }

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
