#!/bin/sh
# Restore bench (issue 5): a fail2ban database with N (default 1,000,000) active bans in
# one jail, then the time from `f2b server -f -x -c DIR start` to "ready": the server
# answers ping AND `status JAIL` reports N currently banned. The jail's action is a
# dummy (`actionban =` empty), so no process runs per ban. Target: <= 2 s for 1M.
#
# Usage: bench/server/restore.sh [N]   (F2B=path/to/f2b, default target/release/f2b)
# Needs /usr/bin/python3 (sqlite3 module) to build the database.
set -eu
N=${1:-1000000}
F2B=${F2B:-target/release/f2b}
[ -x "$F2B" ] || { echo "no f2b binary at $F2B (cargo build --release -p f2b-cli, or set F2B=)" >&2; exit 2; }
D=$(mktemp -d /tmp/f2b-restore-bench.XXXXXX)
# KEEP=1 keeps the directory (database, f2b.log) for inspection.
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $D" || rm -rf "$D"' EXIT INT TERM
PID=
mkdir -p "$D/filter.d" "$D/action.d"
cat >"$D/fail2ban.conf" <<EOF
[Definition]
loglevel = INFO
logtarget = $D/f2b.log
socket = $D/f2b.sock
pidfile = $D/f2b.pid
dbfile = $D/f2b.sqlite3
dbpurgeage = 1d
EOF
cat >"$D/jail.conf" <<EOF
[bench]
enabled = true
backend = polling
filter = bench
logpath = $D/bench.log
action = dummy
bantime = 1d
maxretry = 1
EOF
printf '[Definition]\nfailregex = ^fail <HOST>$\n' >"$D/filter.d/bench.conf"
printf '[Definition]\nactionstart =\nactionstop =\nactionban =\nactionunban =\n' >"$D/action.d/dummy.conf"
: >"$D/bench.log"

t0=$(date +%s.%N)
/usr/bin/python3 - "$D/f2b.sqlite3" "$N" <<'EOF'
import sqlite3, sys, time
path, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path)
# fail2ban's schema version 4 (column names and types as fail2ban creates them).
c.executescript("""
PRAGMA journal_mode = WAL;
CREATE TABLE fail2banDb(version INTEGER);
INSERT INTO fail2banDb(version) VALUES(4);
CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
CREATE INDEX jails_name ON jails(name);
CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0,
  FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path), UNIQUE(jail, path, firstlinemd5));
CREATE INDEX logs_path ON logs(path);
CREATE INDEX logs_jail_path ON logs(jail, path);
CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
  bancount INTEGER NOT NULL default 1, data JSON, FOREIGN KEY(jail) REFERENCES jails(name));
CREATE INDEX bans_jail_timeofban_ip ON bans(jail, timeofban);
CREATE INDEX bans_jail_ip ON bans(jail, ip);
CREATE INDEX bans_ip ON bans(ip);
CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
  bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail),
  FOREIGN KEY(jail) REFERENCES jails(name));
CREATE INDEX bips_timeofban ON bips(timeofban);
CREATE INDEX bips_ip ON bips(ip);
""")
now = int(time.time())
def rows():
    for i in range(1, n + 1):
        ip = "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255) if i < (1 << 24) else "fd00::%x" % i
        yield (ip, "bench", now - (i % 3600), 86400, 1, '{"failures": 1}')
with c:
    c.execute("INSERT INTO jails(name, enabled) VALUES('bench', 1)")
    c.executemany("INSERT INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES(?,?,?,?,?,?)", rows())
    c.execute("INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) SELECT jail, ip, timeofban, bantime, bancount, data FROM bips")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
EOF
t1=$(date +%s.%N)
echo "db: $N active bans written in $(echo "$t1 - $t0" | bc) s ($(du -h "$D/f2b.sqlite3" | cut -f1))"

# The ready probe: one process that polls the socket (spawning a client per poll would
# dominate the measurement).
start=$(date +%s.%N)
"$F2B" server -f -x -c "$D" start >"$D/stdout" 2>&1 &
PID=$!
/usr/bin/python3 - "$D/f2b.sock" "$N" "$start" "$PID" <<'EOF'
import os, pickle, socket, sys, time
sock, n, start, pid = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
END = b"<F2B_END_COMMAND>"
def req(cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(pickle.dumps(cmd, 2) + END)
    data = b""
    while not data.endswith(END):
        b = s.recv(1 << 16)
        if not b:
            break
        data += b
    s.close()
    class Safe(pickle.Unpickler):
        def find_class(self, m, name):
            return lambda *a: (m + "." + name, a)
    import io
    return Safe(io.BytesIO(data[:-len(END)])).load()
t_ping = None
while time.time() - start < 120:
    try:
        if t_ping is None:
            if req(["ping"]) == (0, "pong"):
                t_ping = time.time() - start
        if t_ping is not None:
            code, st = req(["status", "bench", "short"])
            cur = dict(st[1][1])["Currently banned"] if code == 0 else -1
            if cur == n:
                t = time.time() - start
                print("ping OK after %.3f s; `status bench short` shows %d banned after %.3f s" % (t_ping, cur, t))
                print("RESTORE_READY_SECONDS %.3f" % t)
                # The server's CPU time until then (all threads): what an idle host needs.
                f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
                tck = os.sysconf("SC_CLK_TCK")
                print("server CPU until ready: %.2f s" % ((int(f[11]) + int(f[12])) / tck))
                t2 = time.time()
                code, st = req(["status", "bench"])
                lst = dict(st[1][1])["Banned IP list"]
                print("full `status bench` (%d addresses in the reply): %.3f s" % (len(lst), time.time() - t2))
                sys.exit(0)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    time.sleep(0.005)
print("not ready within 120 s", file=sys.stderr)
sys.exit(1)
EOF
rss=$(awk '/VmRSS/ {print $2 " " $3}' /proc/$PID/status 2>/dev/null || echo "?")
echo "server RSS after restore: $rss"
grep -c "Restore Ban" "$D/f2b.log" | sed 's/^/Restore Ban log lines: /'
# Phases from the server's own log timestamps (HH:MM:SS,mmm -> seconds).
/usr/bin/python3 - "$D/f2b.log" <<'LOGEOF'
import sys
def ts(line):
    h, m, s = line[11:23].replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
marks = {}
for line in open(sys.argv[1], errors="replace"):
    for key, pat in (("start", "Starting Fail2ban"), ("jail", "Creating new jail"),
                     ("first", "Restore Ban"), ("started", "Jail 'bench' started")):
        if pat in line and key not in marks:
            marks[key] = ts(line)
    if "Restore Ban" in line:
        marks["last"] = ts(line)
if len(marks) == 5:
    print("phases: start->jail %.3f s, jail->first Restore Ban %.3f s (db read + ban list), "
          "Restore Ban lines %.3f s, last Restore Ban->jail started %.3f s" % (
          marks["jail"] - marks["start"], marks["first"] - marks["jail"],
          marks["last"] - marks["first"], marks["started"] - marks["last"]))
LOGEOF
