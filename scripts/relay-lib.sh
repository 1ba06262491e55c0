# Sourced by the bench scripts: the one way they configure and start a throwaway relay.

# start_bench_relay BIN DIR [EXTRA]: writes DIR/config.toml with channel "bench"
# (scheme $BENCH_SCHEME, default github; secret $BENCH_SECRET, default bench-secret;
# agent token bench-token; admin token bench-admin; EXTRA lines go into the channel's
# table; $BENCH_STORAGE, if set, is written before the channel, e.g. a [storage] table),
# starts `BIN serve` in the background with
# its pid in DIR/pid, and prints the base URL once it listens. The caller reads DIR/pid
# to stop it: this usually runs in a command substitution, so `$!` does not reach it.
start_bench_relay() {
  local bin=$1 dir=$2 extra=${3:-} url
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$dir/data"
admin_token = "bench-admin"
${BENCH_STORAGE:-}
[[channel]]
name = "bench"
scheme = "${BENCH_SCHEME:-github}"
secrets = ["${BENCH_SECRET:-bench-secret}"]
tokens = ["bench-token"]
$extra
TOML
  "$bin" serve --config "$dir/config.toml" > "$dir/out" 2> "$dir/err" &
  echo $! > "$dir/pid"
  for _ in $(seq 1 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^hookrelay listening on //p' "$dir/out")
  [ -n "$url" ] || { echo "relay did not start:" >&2; cat "$dir/err" >&2; return 1; }
  echo "$url"
}

# rss_mb PID: the process's resident memory (VmRSS) in MB, one decimal.
rss_mb() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

# stop_bench_relays DIR...: kills the relays whose pid files are under the DIRs.
stop_bench_relays() {
  local f
  for f in "$@"; do
    # A relay already gone is fine (under `set -e` a failed kill would end a trap).
    [ -f "$f/pid" ] && { kill "$(cat "$f/pid")" 2>/dev/null || true; }
  done
  return 0
}

# stop_bench_relay_and_wait DIR: stops the relay (or bare server) whose pid is in
# DIR/pid and waits, bounded, until it is gone, so that the next run starts on a quiet
# machine. It is usually not the caller's child (it was started in a command
# substitution), so `wait` cannot be used: poll.
stop_bench_relay_and_wait() {
  local pid
  pid=$(cat "$1/pid")
  stop_bench_relays "$1"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}

# start_bare_ingest BIN DIR: starts examples/bare_ingest (BIN) on DIR/data with its pid
# in DIR/pid, and prints its base URL once it listens (stop it like a relay).
start_bare_ingest() {
  local bin=$1 dir=$2 url
  mkdir -p "$dir"
  "$bin" "$dir/data" > "$dir/out" 2> "$dir/err" &
  echo $! > "$dir/pid"
  for _ in $(seq 1 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$dir/out")
  [ -n "$url" ] || { echo "bare_ingest did not start:" >&2; cat "$dir/err" >&2; return 1; }
  echo "$url"
}

# write_post_lua DIR: writes DIR/post.lua, a wrk script that POSTs one 1 KiB JSON body
# signed like GitHub with the bench secret (the bench channel's default scheme).
write_post_lua() {
  python3 - "$1" <<'PY'
import hmac, hashlib, json, sys
body = json.dumps({"action": "opened", "pad": "x" * 980})[:1024].ljust(1024)
sig = hmac.new(b"bench-secret", body.encode(), hashlib.sha256).hexdigest()
with open(f"{sys.argv[1]}/post.lua", "w") as f:
    f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n')
    f.write(f'wrk.headers["X-Hub-Signature-256"] = "sha256={sig}"\n')
PY
}
