#!/usr/bin/env bash
# Filter compile cost (issue #4): `f2b regex` on a 1-line log with a stock
# filter, whole process (config reading + filter construction + 1 line),
# averaged over N runs (perf stat's task-clock if perf is there).
#
# Usage: bench/regex/compile.sh [FILTER] [N]      (default sshd 20)
# Env:   F2B=/path/to/f2b (default: builds target/release/f2b)
set -euo pipefail
FILTER=${1:-sshd}
N=${2:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${F2B:-}" ]; then
  (cd "$ROOT" && cargo build --release -p f2b-cli >&2)
  F2B="${CARGO_TARGET_DIR:-$ROOT/target}/release/f2b"
fi
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
echo 'Jan  1 00:00:02 srv sshd[1]: Connection closed by 192.0.2.1 port 22 [preauth]' > "$LOG"
if command -v perf >/dev/null && perf stat -r 1 true >/dev/null 2>&1; then
  perf stat -r "$N" "$F2B" regex "$LOG" "$FILTER" 2>&1 >/dev/null | grep -E 'task-clock|elapsed'
else
  start=$(date +%s%N)
  for _ in $(seq "$N"); do "$F2B" regex "$LOG" "$FILTER" >/dev/null; done
  echo "$(( ($(date +%s%N) - start) / N / 1000 )) us wall per run"
fi
