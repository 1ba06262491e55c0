#!/usr/bin/env bash
# Durable, verified ingest throughput: wrk posts 1 KiB signed bodies to a release relay
# on 127.0.0.1 with a fresh data dir; every 200 is on disk (group commit + fsync).
# Prints each run and the median events/s.
#
# usage: scripts/bench-ingest.sh [runs=3] [seconds=10] [connections=64] [scheme=github]
#   scheme: one preset of each kind of check
#     github   HMAC-SHA256 of the body (hex)
#     square   URL-bound: HMAC-SHA256 of public_url + body (base64)
#     twilio   URL-bound: HMAC-SHA1 of public_url + sorted form parameters (base64)
#     discord  Ed25519 of timestamp + body (needs python3's `cryptography`). Discord
#              sends no delivery id and signs a timestamp, so the relay would take
#              every repeat of the one signed request as a replay: the channel sets
#              `id_header` and wrk sends a fresh X-Request-Id with each request.
set -euo pipefail
runs=${1:-3}; secs=${2:-10}; conns=${3:-64}; scheme=${4:-github}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
case $scheme in github|square|twilio|discord) ;; *) echo "scheme: github|square|twilio|discord" >&2; exit 2;; esac
cargo build --release --quiet
bin=target/release/hookrelay
source scripts/relay-lib.sh
work=$(mktemp -d)
trap 'stop_bench_relays "$work/relay"; wait 2>/dev/null || true; rm -rf "$work"' EXIT

public_url=https://relay.example.com/hooks/bench
# The Ed25519 key is the tests' (seed 01..20); the channel configures its public half.
ed_seed=0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
ed_public=79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664
export BENCH_SCHEME=$scheme BENCH_SECRET=bench-secret
extra=
case $scheme in
  square|twilio) extra="public_url = \"$public_url\"" ;;
  discord) BENCH_SECRET=$ed_public; extra='id_header = "X-Request-Id"' ;;
esac

python3 - "$work" "$scheme" "$public_url" "$ed_seed" <<'PY'
import base64, hashlib, hmac, json, sys, time, urllib.parse
work, scheme, url, seed = sys.argv[1:5]
secret = b"bench-secret"
json_body = json.dumps({"action": "opened", "pad": "x" * 980})[:1024].ljust(1024)
ctype, body = "application/json", json_body
headers = {}
if scheme == "github":
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
elif scheme == "square":
    mac = hmac.new(secret, (url + body).encode(), hashlib.sha256).digest()
    headers["X-Square-HmacSha256-Signature"] = base64.b64encode(mac).decode()
elif scheme == "twilio":
    ctype = "application/x-www-form-urlencoded"
    params = {"AccountSid": "AC0123456789", "From": "+15551234567", "To": "+15557654321"}
    params["Body"] = ""
    body = urllib.parse.urlencode(params)
    params["Body"] = "x" * (1024 - len(body))
    body = urllib.parse.urlencode(params)
    signed = url + "".join(k + params[k] for k in sorted(params))
    mac = hmac.new(secret, signed.encode(), hashlib.sha1).digest()
    headers["X-Twilio-Signature"] = base64.b64encode(mac).decode()
elif scheme == "discord":
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    ts = str(int(time.time()))
    headers["X-Signature-Ed25519"] = key.sign((ts + body).encode()).hex()
    headers["X-Signature-Timestamp"] = ts
assert len(body) == 1024, len(body)
with open(f"{work}/post.lua", "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write(f'wrk.body = {json.dumps(body)}\n')
    f.write(f'wrk.headers["Content-Type"] = "{ctype}"\n')
    for k, v in headers.items():
        f.write(f'wrk.headers["{k}"] = "{v}"\n')
    if scheme == "discord":
        # A fresh delivery id per request: thread number and a counter.
        f.write('local counter, thread_id = 0, 0\n')
        f.write('local n = 0\nfunction setup(t) n = n + 1; t:set("tid", n) end\n')
        f.write('function init(args) thread_id = tid or 0 end\n')
        f.write('function request() counter = counter + 1\n')
        f.write('  wrk.headers["X-Request-Id"] = string.format("%d-%d-%d", os.time(), thread_id, counter)\n')
        f.write('  return wrk.format() end\n')
PY

url=$(start_bench_relay "$bin" "$work/relay" "$extra")

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "relay: $url  wrk: -t2 -c$conns -d${secs}s  body: 1024 B, scheme $scheme"
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
