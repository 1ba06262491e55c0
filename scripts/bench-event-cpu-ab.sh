#!/usr/bin/env bash
# The relay's CPU per event at a webhook trickle, old build against new: each round
# starts a fresh relay of each build in turn (its own process, fresh data dir), drives
# it with `bench --phases e2e` (an open-loop rate of 1 KiB GitHub-signed posts, one
# agent delivering to a local service, both inside the bench process) and reads the
# relay's utime+stime and context switches from /proc before and after. CPU per event
# = CPU delta / events posted (the measured ones plus the warm-up), so it includes
# everything the relay process does meanwhile (its timers too). Medians of the rounds.
#
# OTHER_CHANNELS=N adds N more channels (scheme none) and posts one event to each before
# measuring: the log then holds N+1 channels with a head, as on a relay with many users.
#
# usage: [OTHER_CHANNELS=N] scripts/bench-event-cpu-ab.sh OLD_BIN NEW_BIN [rounds=3] [rate=400] [duration=10]
# The bench client is NEW_BIN's for both sides, so that only the relay differs.
set -euo pipefail
old=${1:?usage: bench-event-cpu-ab.sh OLD_BIN NEW_BIN [rounds] [rate] [duration]}
new=${2:?usage: bench-event-cpu-ab.sh OLD_BIN NEW_BIN [rounds] [rate] [duration]}
rounds=${3:-3}; rate=${4:-400}; duration=${5:-10}
other=${OTHER_CHANNELS:-0}
# Events the e2e phase posts before it measures (src/cli/bench/e2e.rs WARMUP_EVENTS).
warmup_events=20
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d)
trap 'stop_bench_relays "$work"/r*; wait 2>/dev/null || true; rm -rf "$work"' EXIT
ticks_per_sec=$(getconf CLK_TCK)

# utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; the name in
# field 2 is "(hookrelay)", without spaces).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches (voluntary + involuntary) summed over PID's threads.
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null \
    | awk '/ctxt_switches/{s += $2} END{print s + 0}'
}

# One measurement of BIN: prints "cpu_us_per_event p50_ms p99_ms switches_per_event".
measure() {
  local bin=$1 dir url pid c0 c1 s0 s1 json events
  dir=$(mktemp -d "$work/rXXXX")
  url=$(start_bench_relay "$bin" "$dir" "$(other_channels)")
  [ "$other" -eq 0 ] || fill_other_channels "$url"
  pid=$(cat "$dir/pid")
  c0=$(cpu_ticks "$pid"); s0=$(switches "$pid")
  json=$("$new" bench --relay "$url" --phases e2e --rate "$rate" --duration "$duration" --json)
  c1=$(cpu_ticks "$pid"); s1=$(switches "$pid")
  stop_bench_relays "$dir"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  events=$(( rate * duration + warmup_events ))
  python3 - "$json" "$c0" "$c1" "$s0" "$s1" "$events" "$ticks_per_sec" <<'PY'
import json, sys
r = json.loads(sys.argv[1])[0]
c0, c1, s0, s1, events, hz = map(int, sys.argv[2:])
if r["errors"]:
    sys.exit(f"e2e reported {r['errors']} errors")
cpu_us = (c1 - c0) * 1e6 / hz / events
print(f"{cpu_us:.0f} {r['latency_ms']['p50']:.3f} {r['latency_ms']['p99']:.3f} {(s1 - s0) / events:.1f}")
PY
}
# The [[channel]] tables of the other channels.
other_channels() {
  local i
  for i in $(seq 1 "$other"); do printf '\n[[channel]]\nname = "other%d"\nscheme = "none"\n' "$i"; done
}

# Posts one event to each other channel of the relay at URL.
fill_other_channels() {
  python3 - "$1" "$other" <<'PY'
import sys, urllib.error, urllib.request, concurrent.futures as cf
url, n = sys.argv[1], int(sys.argv[2])
def post(i):
    req = urllib.request.Request(f"{url}/hooks/other{i}", data=b"{}", method="POST",
                                 headers={"content-type": "application/json"})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code
with cf.ThreadPoolExecutor(16) as pool:
    codes = set(pool.map(post, range(1, n + 1)))
if codes - {200}:
    sys.exit(f"filling the other channels answered {codes}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(uname -r); e2e at $rate/s for ${duration}s, 1 KiB bodies, $rounds rounds, $other other channels"
echo "columns: relay CPU µs/event, e2e p50 ms, e2e p99 ms, relay context switches/event"
: > "$work/old"; : > "$work/new"
for i in $(seq 1 "$rounds"); do
  o=$(measure "$old"); n=$(measure "$new")
  echo "round $i  old: $o  new: $n"
  echo "$o" >> "$work/old"; echo "$n" >> "$work/new"
done
for side in old new; do
  printf '%s medians  cpu %s µs/event  p50 %s ms  p99 %s ms  switches %s/event  (%s)\n' "$side" \
    "$(cut -d' ' -f1 "$work/$side" | median)" "$(cut -d' ' -f2 "$work/$side" | median)" \
    "$(cut -d' ' -f3 "$work/$side" | median)" "$(cut -d' ' -f4 "$work/$side" | median)" "${!side}"
done
