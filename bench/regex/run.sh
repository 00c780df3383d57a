#!/usr/bin/env bash
# Throughput benchmark: f2b regex vs Python fail2ban-regex vs ripgrep (floor)
# on a deterministic synthetic sshd auth.log, stock /etc/fail2ban sshd.conf.
#
# Usage: bench/regex/run.sh [LINES]        (default 1000000)
# Env:   F2B=/path/to/f2b (default: builds target/release/f2b)
#        SKIP_PYTHON=1 to skip the (slow) Python run
#        RUNS=N runs of f2b and ripgrep (default 5; the median is reported)
set -euo pipefail
LINES=${1:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-$(mktemp -d)}
LOG="$WORK/auth-$LINES.log"

if [ -z "${F2B:-}" ]; then
  (cd "$ROOT" && cargo build --release -p f2b-cli >&2)
  F2B="${CARGO_TARGET_DIR:-$ROOT/target}/release/f2b"
fi
command -v rg >/dev/null || { echo "ripgrep missing: apt-get install ripgrep" >&2; exit 1; }
[ -x /usr/bin/fail2ban-regex ] || [ -n "${SKIP_PYTHON:-}" ] || { echo "python fail2ban missing: apt-get install fail2ban" >&2; exit 1; }

python3 "$HERE/gen_authlog.py" "$LINES" > "$LOG"
# the input written out and read once, so that no run meets its writeback or
# a cold page cache
sync "$LOG" 2>/dev/null || sync
cat "$LOG" > /dev/null
# every tool but Python (~30-40 s) runs $RUNS times; the median run counts
RUNS=${RUNS:-5}
declare -A RUNS_OF=([python]=1)
echo "input: $LOG ($(wc -l < "$LOG") lines, $(du -h "$LOG" | cut -f1)), md5 $(md5sum "$LOG" | cut -c1-12)"

# ripgrep on a regex selecting the same failure kinds (the floor: no dates,
# no captures, no multi-line state)
RG_RE='sshd\[\d+\]: (?:error: )?(?:Failed \S+ for (?:invalid user )?\S+|[iI](?:llegal|nvalid) user \S+|User \S+|maximum authentication attempts exceeded for \S+) from \S+'

measure() { # name, command... : the median run of $RUNS (by wall time)
  local name=$1; shift
  local out="$WORK/$name.out" tm="$WORK/$name.time" runs=${RUNS_OF[$name]:-$RUNS}
  : > "$WORK/$name.all"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %M" "$@" > "$out" 2> "$tm" || true
    tail -1 "$tm" >> "$WORK/$name.all"
  done
  read -r wall user rss < <(sort -n "$WORK/$name.all" | sed -n "$(( (runs + 1) / 2 ))p")
  printf "%-16s %8.2f s wall %8.2f s user %8.1f MiB peak RSS   %s\n" "$name" "$wall" "$user" "$(echo "$rss/1024" | bc -l)" \
    "$(grep -m1 '^Lines:' "$out" || (echo -n 'count: '; head -1 "$out"))"
  [ "$runs" -gt 1 ] && echo "                 (median of $runs runs; walls: $(cut -d' ' -f1 "$WORK/$name.all" | sort -n | tr '\n' ' '))"
  echo "$wall" > "$WORK/$name.wall"
  echo "$user" > "$WORK/$name.user"
}
ratio() { echo "$(cat "$1") / $(cat "$2")" | bc -l | cut -c1-6; }

measure f2b "$F2B" regex "$LOG" sshd
# the same on one thread (f2b regex splits a large file in chunks, one per core)
measure f2b-1thread env F2B_REGEX_THREADS=1 "$F2B" regex "$LOG" sshd
measure ripgrep rg -c "$RG_RE" "$LOG"
if [ -z "${SKIP_PYTHON:-}" ]; then
  measure python /usr/bin/fail2ban-regex "$LOG" sshd
  if diff <(grep '^Lines:' "$WORK/f2b.out") <(grep '^Lines:' "$WORK/python.out") >/dev/null; then
    echo "Lines: summary identical to fail2ban-regex"
  else
    echo "WARNING: Lines: summary differs from fail2ban-regex"
  fi
  echo "speed-up vs Python: $(ratio "$WORK/python.wall" "$WORK/f2b.wall")x wall, $(ratio "$WORK/python.user" "$WORK/f2b.user")x user CPU"
fi
if command -v fail2ban-rs >/dev/null; then echo "fail2ban-rs installed: run it manually on $LOG"; fi
echo "f2b / ripgrep: $(ratio "$WORK/f2b.wall" "$WORK/ripgrep.wall")x wall, $(ratio "$WORK/f2b.user" "$WORK/ripgrep.user")x user CPU"
