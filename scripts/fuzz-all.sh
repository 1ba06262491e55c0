#!/usr/bin/env bash
# Runs every cargo-fuzz target for MINUTES (default 10) each, PARALLEL (default 3) at a
# time, on its committed corpus, and prints each target's final libFuzzer stats line
# (executions, coverage, corpus size) and whether it found a crash.
#
#   scripts/fuzz-all.sh [MINUTES] [PARALLEL]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Crashes land
# in fuzz/artifacts/<target>/; new corpus entries in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
parallel=${2:-3}
targets=(protocol record signature config_file agent_file ingest)
logs=target/fuzz-logs
mkdir -p "$logs"

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
cargo +nightly fuzz build

run() {
  local t=$1
  # -timeout: an input slower than 20 s is a hang, reported as a finding.
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- \
    -max_total_time=$((minutes * 60)) -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$logs/$t.log" 2>&1 && echo "$t: ok" || echo "$t: FAILED (see $logs/$t.log)"
}

for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  for t in "${targets[@]:i:parallel}"; do run "$t" & done
  wait
done

for t in "${targets[@]}"; do
  # The last status line: #N (executions), cov, ft, corp.
  last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1 || true)
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
  echo "$t | $last | crash files: $crashes"
done
