#!/usr/bin/env bash
# `f2b regex` end to end on the same 1M sshd log lines, from a file and from the journal:
# the journal path (libsystemd reader + fail2ban's line formatting + sshd filter) against the
# file path (bench/regex figure). The lines come from bench/regex/gen_authlog.py; the journal
# is written by systemd-journal-remote (bench/journal/to_export.py converts the lines).
# Usage: bench/journal/regex.sh [LINES]     Env: F2B=path (default: release build), WORK=dir
set -euo pipefail
LINES=${1:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-$(mktemp -d)}
LOG="$WORK/auth-$LINES.log"
JDIR="$WORK/journal-$LINES"
if [ -z "${F2B:-}" ]; then
  (cd "$ROOT" && cargo build --release -p f2b-cli >&2)
  F2B="${CARGO_TARGET_DIR:-$ROOT/target}/release/f2b"
fi
[ -f "$LOG" ] || python3 "$ROOT/bench/regex/gen_authlog.py" "$LINES" > "$LOG"
if [ ! -d "$JDIR" ]; then
  mkdir -p "$JDIR"
  python3 "$HERE/to_export.py" < "$LOG" |
    /lib/systemd/systemd-journal-remote --output="$JDIR/bench.journal" --split-mode=none --compress=no - 2>/dev/null
fi
echo "input: $LINES lines; file $(du -h "$LOG" | cut -f1), journal $(du -sh "$JDIR" | cut -f1) in $(ls "$JDIR" | wc -l) files"
measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %U %M" "$@" > "$WORK/$name.out" 2> "$WORK/$name.time" || true
  read -r wall user rss < <(tail -1 "$WORK/$name.time")
  printf "%-26s %7.2f s wall %7.2f s user %7.1f MiB peak RSS  %7.0f lines/s  %s\n" "$name" "$wall" "$user" \
    "$(echo "$rss/1024" | bc -l)" "$(echo "$LINES/$wall" | bc -l)" "$(grep -m1 '^Lines:' "$WORK/$name.out")"
}
measure "file" "$F2B" regex "$LOG" sshd
measure "journal (sshd match)" "$F2B" regex "systemd-journal[journalpath=$JDIR]" sshd
measure "journal (no match)" "$F2B" regex -m '' "systemd-journal[journalpath=$JDIR]" sshd
