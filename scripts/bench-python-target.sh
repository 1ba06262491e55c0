#!/usr/bin/env bash
# The agent against a Python http.server-style local service (head and body in two
# segments, no TCP_NODELAY: scripts/python_target.py): how long a backlog of COUNT
# events takes to drain in strict order (and at --max-in-flight WINDOW).
# Before TCP_QUICKACK each delivery waited ~40 ms for the agent's delayed ACK.
#
# usage: scripts/bench-python-target.sh [BIN=target/release/hookrelay] [count=1000] [max-in-flight=1]
set -euo pipefail
bin=${1:-target/release/hookrelay}
count=${2:-1000}
window=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work/relay"; [ -n "${tpid:-}" ] && kill "$tpid" 2>/dev/null; [ -n "${apid:-}" ] && kill "$apid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
url=$(start_bench_relay "$bin" "$work/relay")

python3 "$here/python_target.py" > "$work/target.out" &
tpid=$!
for _ in $(seq 1 100); do grep -q '^listening' "$work/target.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^listening //p' "$work/target.out")

# The backlog first, so that the drain is measured from the first delivery to the last.
python3 - "$url" "$count" <<'PY'
import hashlib, hmac, sys, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    body = b'{"n":%d}' % i
    sig = "sha256=" + hmac.new(b"bench-secret", body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{url}/hooks/bench", data=body, method="POST",
                                 headers={"X-Hub-Signature-256": sig})
    urllib.request.urlopen(req).read()
PY

"$bin" agent --relay "$url" --channel bench --token bench-token --forward "http://127.0.0.1:$port" \
  --max-in-flight "$window" > "$work/agent.out" 2> "$work/agent.err" &
apid=$!
for _ in $(seq 1 1200); do
  [ "$(grep -c '^[0-9]' "$work/target.out" || true)" -ge "$count" ] && break
  sleep 0.05
done
python3 - "$work/target.out" "$count" "$window" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1]) if l[:1].isdigit()]
count, window = int(sys.argv[2]), sys.argv[3]
if len(lines) < count:
    sys.exit(f"only {len(lines)} of {count} events arrived")
times = [float(t) for _, t in lines[:count]]
span = max(times) - min(times)
print(f"{count} events, --max-in-flight {window}: drained in {span:.3f} s "
      f"({count / span:.0f} events/s, {span / count * 1000:.2f} ms per event)")
PY
