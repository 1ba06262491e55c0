#!/usr/bin/env bash
# Hardening: what floods cost the relay. For each of three floods, a fresh release
# relay on 127.0.0.1:0 in a temp dir (default limits, max_body_bytes = 25 MiB); its RSS
# and open descriptors (/proc/PID/status, /proc/PID/fd) are sampled every 0.2 s and
# reported before, at the peak during, and after the flood:
#
#   1. slow consumer: EVENTS events of 1 MiB stored, then a WebSocket client sends
#      Hello and Read{Earliest, follow, window 4096} and never reads, for HOLD seconds;
#   2. silent sockets: SOCKETS connections that send nothing, held until the relay
#      closes them (first_byte_timeout_secs, 10 s by default);
#   3. large bodies: BODIES concurrent 20 MB GitHub-signed POSTs (the in-flight budget,
#      256 MiB by default, refuses those that do not fit with 503 + Retry-After); then
#      the same with the budget out of the way (max_inflight_body_bytes = 4 GiB), for
#      comparison.
#
# usage: [BIN=path] scripts/bench-hardening.sh [events=200] [hold=10] [sockets=2000] [bodies=50]
#   BIN: a hookrelay binary to measure instead of this tree's release build.
set -euo pipefail
events=${1:-200}; hold=${2:-10}; sockets=${3:-2000}; bodies=${4:-50}
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-$PWD/target/release/hookrelay}
work=$(mktemp -d)
relay_pid=
sampler_pid=
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# The load generator needs a descriptor per silent socket.
ulimit -n "$(ulimit -Hn)"

# Starts a fresh relay in $work/$1 with extra [server] lines $2; sets relay_pid and port. Not scripts/relay-lib.sh's
# start_bench_relay: this needs a [server] key of its own.
start_relay() {
  local dir=$work/$1 url
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$dir/data"
admin_token = "bench-admin"
max_body_bytes = 26214400
${2:-}
[[channel]]
name = "bench"
scheme = "github"
secrets = ["bench-secret"]
tokens = ["bench-token"]
TOML
  "$bin" serve --config "$dir/config.toml" > "$dir/out" 2> "$dir/err" &
  relay_pid=$!
  for _ in $(seq 1 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^hookrelay listening on //p' "$dir/out")
  [ -n "$url" ] || { echo "relay did not start:" >&2; cat "$dir/err" >&2; exit 1; }
  port=${url##*:}
  idle=$(sample); base_fds=${idle#* }
}
stop_relay() { kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=; }

# One sample: "rss_kib fds".
sample() {
  echo "$(awk '/^VmRSS/{print $2}' "/proc/$relay_pid/status") $(ls "/proc/$relay_pid/fd" | wc -l)"
}
# Samples into $work/samples until stopped.
start_sampler() {
  : > "$work/samples"
  ( while kill -0 "$relay_pid" 2>/dev/null; do sample >> "$work/samples"; sleep 0.2; done ) &
  sampler_pid=$!
}
stop_sampler() { kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=; }
# "RSS MiB / fds" of one sample, and the peak of the samples file.
fmt() { awk '{printf "%.1f MiB / %d fds", $1/1024, $2}' <<<"$1"; }
peak() { awk '$1>r{r=$1} $2>f{f=$2} END{printf "%.1f MiB / %d fds", r/1024, f}' "$work/samples"; }
# Waits until the relay holds at most N descriptors (the flood's sockets are gone).
wait_fds_below() {
  for _ in $(seq 1 300); do [ "$(ls "/proc/$relay_pid/fd" | wc -l)" -le "$1" ] && return; sleep 0.1; done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "relays: release build, default limits, max_body_bytes 25 MiB, one fresh relay per flood"

# --- 1. slow consumer ------------------------------------------------------------
start_relay slow
echo "slow consumer: idle relay $(fmt "$idle")"
python3 - "$port" "$events" <<'PY'
import hashlib, hmac, http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
body = b"e" * (1024 * 1024)
sig = "sha256=" + hmac.new(b"bench-secret", body, hashlib.sha256).hexdigest()
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("POST", "/hooks/bench", body, {"X-Hub-Signature-256": sig})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
before=$(sample)
start_sampler
python3 - "$port" "$hold" <<'PY'
import base64, os, socket, struct, sys, time
port, hold = int(sys.argv[1]), float(sys.argv[2])
def frame(payload):  # one masked binary WebSocket frame
    mask = os.urandom(4)
    head = bytes([0x82]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                            else bytes([0x80 | 126]) + struct.pack(">H", len(payload)))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"Authorization: Bearer bench-token\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert b" 101 " in head.split(b"\r\n")[0], head
hello = bytes([0, 1, 2, 4]) + b"slow"                      # Hello{versions:[2], agent}
read = bytes([7, 1, 5]) + b"bench" + bytes([1, 0, 1, 251, 0x00, 0x10])  # Read{1, Earliest, to: None, follow, window 4096}
s.sendall(frame(hello) + frame(read))
time.sleep(hold)                                           # never reads
s.close()
PY
sleep 2
after=$(sample)
stop_sampler
echo "slow consumer ($events x 1 MiB stored, window 4096, ${hold}s unread): before $(fmt "$before"), peak $(peak), after $(fmt "$after")"
stop_relay

# --- 2. silent sockets ------------------------------------------------------------
start_relay silent
before=$(sample)
start_sampler
python3 - "$port" "$sockets" "$relay_pid" <<'PY'
import os, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.time()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(0.5)
print(f"  {n} connected in {time.time() - start:.1f} s; relay holds {len(os.listdir(f'/proc/{pid}/fd'))} fds")
open_ = set(range(n))
for s in socks: s.setblocking(False)
while open_ and time.time() - start < 120:
    for i in list(open_):
        try:
            if socks[i].recv(1) == b"": open_.discard(i)
        except BlockingIOError: pass
        except OSError: open_.discard(i)
    time.sleep(0.2)
print(f"  {n - len(open_)} of {n} closed by the relay within {time.time() - start:.1f} s")
PY
wait_fds_below "$base_fds"
after=$(sample)
stop_sampler
echo "silent sockets ($sockets): before $(fmt "$before"), peak $(peak), after $(fmt "$after")"
stop_relay

# --- 3. large bodies --------------------------------------------------------------
# large_bodies LABEL EXTRA: the flood on a fresh relay with [server] lines EXTRA.
large_bodies() {
  start_relay "bodies-$1" "$2"
  before=$(sample)
  start_sampler
  python3 - "$port" "$bodies" <<'PY'
import collections, hashlib, hmac, http.client, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
body = b"b" * 20_000_000
sig = "sha256=" + hmac.new(b"bench-secret", body, hashlib.sha256).hexdigest()
statuses = collections.Counter()
def post():
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", "/hooks/bench", body, {"X-Hub-Signature-256": sig})
        r = c.getresponse(); r.read()
        statuses[f"{r.status}" + (f" (Retry-After {r.getheader('Retry-After')})" if r.status == 503 else "")] += 1
    except Exception as e:
        statuses[type(e).__name__] += 1
start = time.time()
threads = [threading.Thread(target=post) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(f"  {n} x 20 MB in {time.time() - start:.1f} s: " + ", ".join(f"{v} x {k}" for k, v in sorted(statuses.items())))
PY
  wait_fds_below "$base_fds"
  sleep 1
  after=$(sample)
  stop_sampler
  echo "large bodies ($bodies x 20 MB, $1): before $(fmt "$before"), peak $(peak), after $(fmt "$after")"
  stop_relay
}
large_bodies "budget 256 MiB (default)" ""
large_bodies "budget 4 GiB" "max_inflight_body_bytes = 4294967296"
