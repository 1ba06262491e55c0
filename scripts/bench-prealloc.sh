#!/usr/bin/env bash
# What a growing log file costs each commit (docs/benchmarks.md, "a preallocated log").
#
# 1. The file system alone: a 1,700-byte pwrite and an fdatasync every 2.5 ms, 600
#    times: appending to a new file, overwriting one already written with zeros, and
#    writing into one preallocated with fallocate (unwritten extents).
#    Prints device write requests (/sys/block/$DEV/stat) and CPU per iteration.
# 2. The relay: e2e at 400/s for 5 s (after 2 s of warm-up) on a fresh data dir, and on
#    one whose sled file holds 64 MiB of zeros before the first start (sled takes those
#    segments for free ones and fills them, so its commits overwrite instead of
#    append). Rounds in turns; prints relay CPU and device writes per event.
#
# The data dirs go under $WORK (default: a temp dir in the current directory, so that
# they sit on the disk being measured, not on a tmpfs /tmp).
#
# usage: [DEV=vda] [WORK=dir] scripts/bench-prealloc.sh HOOKRELAY_BIN [ROUNDS=5]
set -euo pipefail
bin=$(realpath "${1:?usage: bench-prealloc.sh HOOKRELAY_BIN [ROUNDS]}")
rounds=${2:-5}
dev=${DEV:-vda}
[ -r "/sys/block/$dev/stat" ] || { echo "no /sys/block/$dev/stat: set DEV to the data disk" >&2; exit 2; }
source "$(dirname "$0")/relay-lib.sh"
work=$(mktemp -d "${WORK:-$PWD}/prealloc.XXXX")
trap 'stop_bench_relays "$work"/r*; rm -rf "$work"' EXIT

echo "== the file system alone (600 iterations, one every 2.5 ms)"
python3 - "$work" "$dev" <<'PY'
import os, sys, time
work, dev = sys.argv[1], sys.argv[2]
def writes():
    return int(open(f"/sys/block/{dev}/stat").read().split()[4])
def run(mode, n=600, chunk=1700):
    path = os.path.join(work, "f." + mode)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if mode == "overwrite":
        os.write(fd, b"\0" * (n * chunk + 8192))
        os.fsync(fd)
    if mode == "fallocate":
        os.posix_fallocate(fd, 0, n * chunk + 8192)
        os.fsync(fd)
    w0, t0 = writes(), time.process_time()
    for i in range(n):
        os.pwrite(fd, b"x" * chunk, i * chunk)
        os.fdatasync(fd)
        time.sleep(0.0025)
    w1, t1 = writes(), time.process_time()
    os.close(fd)
    os.unlink(path)
    print(f"{mode:9s}: {(w1 - w0) / n:.2f} write requests, {1e6 * (t1 - t0) / n:.0f} us CPU per iteration")
run("append")
run("overwrite")
run("fallocate")
PY

echo "== the relay (e2e at 400/s, 5 s; relay CPU and device writes per event)"
one() {
  local mode=$1 dir url pid c0 c1 w0 w1 out
  dir=$(mktemp -d "$work/rXXXX")
  if [ "$mode" = zeros ]; then
    mkdir -p "$dir/data"
    head -c $((64 << 20)) /dev/zero > "$dir/data/db"
    sync "$dir/data/db"
  fi
  url=$(start_bench_relay "$bin" "$dir")
  pid=$(cat "$dir/pid")
  "$bin" bench --relay "$url" --phases e2e --rate 400 --duration 2 > /dev/null
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); w0=$(awk '{print $5}' "/sys/block/$dev/stat")
  out=$("$bin" bench --relay "$url" --phases e2e --rate 400 --duration 5 | awk '/^e2e/{print "p50 " $7 " ms, p99 " $9 " ms"}')
  c1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); w1=$(awk '{print $5}' "/sys/block/$dev/stat")
  stop_bench_relay_and_wait "$dir"
  python3 -c "print(f'$mode: {($c1 - $c0) * 10000 / 2000:.0f} us CPU, {($w1 - $w0) / 2000:.2f} writes per event, $out')"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  one fresh
  one zeros
done
