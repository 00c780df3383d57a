#!/usr/bin/env bash
# Server CPU while another file in a followed file's directory is written as
# fast as possible (syslog's other logs in /var/log): stock tree copy with
# private paths (bench/server/harness.py's stock_tree), a Python loop appends
# to noise.log beside auth.log for SECONDS (default 3).
#
#   bench/tail/storm.sh /path/to/f2b [SECONDS]
set -euo pipefail
B=${1:?usage: $0 /path/to/f2b [seconds]}; S=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/f2b-storm.XXXXXX)
trap 'rm -rf "$D"' EXIT
python3 -c "import sys; sys.path.insert(0, '$HERE/../server'); import harness; harness.stock_tree('$D')"
"$B" server -f -x -c "$D/etc" start > /dev/null 2>&1 &
for _ in $(seq 1 100); do sleep 0.05; "$B" client -s "$D/f2b.sock" status sshd > /dev/null 2>&1 && break; done
P=$(pgrep -f "server -f -x -c $D/etc" | head -1)
ticks() { awk '{print $14 + $15}' "/proc/$P/stat"; }
t0=$(ticks)
timeout "$S" python3 -c "
f = open('$D/noise.log', 'a', buffering=1)
while True:
    f.write('noise line\n')
" || true
t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "server CPU during ${S} s of writes to noise.log: $(( (t1 - t0) * 1000 / hz )) ms; lines written: $(wc -l < "$D/noise.log")"
"$B" client -s "$D/f2b.sock" stop > /dev/null
wait
