#!/usr/bin/env python3
"""Journal entry -> ban action latency through a real systemd-journald, f2b against Python
fail2ban-server (backend = systemd) in the same run.

Run it through bench/journal/latency.sh, which starts it inside a private mount namespace with
tmpfs over /run/systemd, /run/log and /var/log/journal (the host is untouched). This script then
starts /lib/systemd/systemd-journald there, and for each server:

  * a private configuration (socket, pidfile, db, log in a temp dir), one jail
    `backend = systemd` (the local journal, fail2ban's default flags) whose filter has
    `journalmatch = SYSLOG_IDENTIFIER=<per-server tag>`, maxretry = 1, and an action appending
    `<ip> <date +%s.%N>` to a file;
  * N trials: send one entry `auth failure from <ip>` to journald's native socket
    (/run/systemd/journal/socket, what sd_journal_send does), then wait for the action's stamp;
    latency = stamp - time just before the send; trials 20-28 ms apart;
  * M "cold" trials, each after 2.3 s without entries (f2b polls faster for 2 s after lines);
  * entries not banned within 3 s are counted (and looked up with journalctl);
  * the server's CPU seconds while idle for 10 s (polling cost).

Prints p50/p90/p99 per server and the ratio. Needs: root (for the namespace), Debian's
systemd (journald), fail2ban and python3-systemd (the peer), and a release build of f2b.
Usage: bench/journal/latency.sh [--f2b PATH] [--trials 200] [--cold 30] [--only f2b|python] [--idle 10]
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "server"))
from harness import ask, cpu_s, pct, print_table, server_cmd, wait_ready, write_common  # noqa: E402

JOURNALD = "/lib/systemd/systemd-journald"
SOCKET = "/run/systemd/journal/socket"


def write_conf(d, tag):
    write_common(d, "journalmatch = SYSLOG_IDENTIFIER=%s" % tag)
    with open(os.path.join(d, "jail.conf"), "w") as f:
        f.write(
            "[lat]\nenabled = true\nbackend = systemd\nfilter = bench\n"
            "maxretry = 1\nfindtime = 1h\nbantime = 1h\naction = stamp\n"
        )
    open(os.path.join(d, "bans.txt"), "w").close()


def send(sock, tag, msg):
    """One entry over journald's native protocol (what sd_journal_send does)."""
    sock.sendto(
        ("SYSLOG_IDENTIFIER=%s\nPRIORITY=4\nMESSAGE=%s\n" % (tag, msg)).encode(), SOCKET
    )


def find_stamp(path, ip):
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 2 and p[0] == ip:
                return float(p[1])
    return None


def trial(kind, sock, tag, bans, ip, timeout, lats, misses):
    t_write = time.time()
    send(sock, tag, "auth failure from %s" % ip)
    deadline = t_write + timeout
    stamp = None
    while time.time() < deadline:
        stamp = find_stamp(bans, ip)
        if stamp is not None:
            break
        time.sleep(0.0002)
    if stamp is None:
        misses.append(ip)
        in_journal = subprocess.run(
            ["journalctl", "--no-pager", "-q", "-o", "short-precise",
             "SYSLOG_IDENTIFIER=%s" % tag, "MESSAGE=auth failure from %s" % ip],
            capture_output=True, text=True).stdout.strip()
        print("%s: no ban for %s within %.0f s; in the journal: %r" % (kind, ip, timeout, in_journal),
              file=sys.stderr)
        return
    lats.append((stamp - t_write) * 1000)


def run(kind, f2b, trials, cold, idle_s):
    tag = "f2bbench-%s-%d" % (kind, os.getpid())
    d = tempfile.mkdtemp(prefix="f2b-jlat-%s-" % kind)
    write_conf(d, tag)
    res = {}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    proc = subprocess.Popen(server_cmd(kind, f2b, d), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        res["start_to_ready_ms"] = wait_ready(kind, f2b, d, proc) * 1000
        time.sleep(1.0)
        bans = os.path.join(d, "bans.txt")
        lats = []
        misses = []
        timeout = 3.0
        for i in range(trials):
            ip = "10.%d.%d.%d" % (1 + i // 64516, 1 + (i // 254) % 254, 1 + i % 254)
            trial(kind, sock, tag, bans, ip, timeout, lats, misses)
            # spread the trials over the poll phase of the server
            time.sleep(0.02 + (i % 7) * 0.0013)
        # first entry after a quiet period (f2b: longer than its 2 s active window)
        cold_lats = []
        for i in range(cold):
            time.sleep(2.3 + (i % 7) * 0.0013)
            trial(kind, sock, tag, bans, "172.20.%d.%d" % (1 + i // 254, 1 + i % 254), timeout,
                  cold_lats, misses)
        if cold_lats:
            res["cold_p50_ms"] = pct(cold_lats, 50)
            res["cold_p90_ms"] = pct(cold_lats, 90)
            res["cold_max_ms"] = max(cold_lats)
        res["lat_p50_ms"] = pct(lats, 50)
        res["lat_p90_ms"] = pct(lats, 90)
        res["lat_p99_ms"] = pct(lats, 99)
        res["lat_max_ms"] = max(lats)
        # a missed entry that was banned later (stall) or never (loss)
        time.sleep(timeout)
        res["missed"] = len(misses)
        res["missed_never_banned"] = sum(1 for ip in misses if find_stamp(bans, ip) is None)
        cpu0 = cpu_s(proc.pid)
        time.sleep(idle_s)
        res["idle_cpu_pct"] = (cpu_s(proc.pid) - cpu0) / idle_s * 100
        ask(d, "stop")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if os.environ.get("F2B_BENCH_KEEP"):
            print("kept %s" % d, file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)
    return res


def start_journald():
    if not os.environ.get("F2B_JOURNAL_NS"):
        sys.exit("run this through bench/journal/latency.sh (private mount namespace)")
    os.makedirs("/run/systemd/journal", exist_ok=True)
    jd = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not os.path.exists(SOCKET):
        if jd.poll() is not None or time.time() - t0 > 10:
            sys.exit("systemd-journald did not start")
        time.sleep(0.01)
    return jd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--f2b", default=os.path.join(ROOT, "target", "release", "f2b"))
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    ap.add_argument("--cold", type=int, default=30, help="trials after 2.3 s of quiet each")
    ap.add_argument("--only", choices=["f2b", "python"])
    a = ap.parse_args()
    kinds = [a.only] if a.only else ["f2b", "python"]
    jd = start_journald()
    out = {}
    try:
        for k in kinds:
            print("running %s ..." % k, file=sys.stderr)
            out[k] = run(k, a.f2b, a.trials, a.cold, a.idle)
    finally:
        jd.terminate()
        jd.wait()
    keys = ["start_to_ready_ms", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "lat_max_ms", "cold_p50_ms",
            "cold_p90_ms", "cold_max_ms", "missed", "missed_never_banned", "idle_cpu_pct"]
    print("journald -> ban action: %d trials 20-28 ms apart (lat_*), %d after 2.3 s of quiet (cold_*)"
          % (a.trials, a.cold))
    print_table(out, kinds, keys)


if __name__ == "__main__":
    main()
