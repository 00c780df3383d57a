#!/usr/bin/env python3
"""Latency / throughput / memory harness: f2b against Python fail2ban-server, same run.

Each server is started in the foreground on the same private configuration (its own socket,
pidfile, database and log in a temp dir; a dummy action that appends `<ip> <date +%s.%N>` to a
file), then measured:

  (a) latency: append one failure line (maxretry = 1) and wait for the ban action's timestamp;
      p50/p90/p99 over N trials
  (b) burst: 100k lines that cause ~1,400 bans; wall time until every ban action ran, and the
      server's own CPU seconds (utime+stime of the server process, children excluded);
      for f2b also split into the log reader thread and the rest
  (c) RSS idle and after the burst (VmRSS, with its anonymous and file-backed parts), and
      again after 5 s of quiet (settled)
  (d) start to ready: spawn until the socket answers `ping`

  (e) with --stock: start to ready on a copy of the installed /etc/fail2ban tree (Debian's
      sshd jail enabled, its auth.log pointed at an empty file by paths-overrides.local, a
      private socket/pidfile/db/log by fail2ban.local, banaction = dummy writing into the temp
      dir); median/min/max over --stock-runs starts

Usage: bench/server/harness.py [--f2b PATH] [--trials 100] [--burst 100000] [--only f2b|python]
                               [--stock] [--stock-runs 10]
Needs: Debian's fail2ban package (the peer) and a release build of f2b.
"""
import argparse
import os
import pickle
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write_common(d, filter_extra):
    """The private server config every bench shares: fail2ban.conf (socket, pidfile,
    db and log under `d`), the `bench` filter (`filter_extra`: its source-specific
    line) and the `stamp` action (`<ip> <time>` appended to `d`/bans.txt)."""
    os.makedirs(os.path.join(d, "filter.d"), exist_ok=True)
    os.makedirs(os.path.join(d, "action.d"), exist_ok=True)
    with open(os.path.join(d, "fail2ban.conf"), "w") as f:
        f.write(
            "[Definition]\nloglevel = INFO\nlogtarget = %s/server.log\n"
            "syslogsocket = auto\nsocket = %s/f2b.sock\npidfile = %s/f2b.pid\n"
            "dbfile = %s/f2b.sqlite3\ndbpurgeage = 1d\nallowipv6 = auto\n" % (d, d, d, d)
        )
    with open(os.path.join(d, "filter.d", "bench.conf"), "w") as f:
        f.write("[Definition]\nfailregex = auth failure from <HOST>$\n%s\n" % filter_extra)
    with open(os.path.join(d, "action.d", "stamp.conf"), "w") as f:
        f.write(
            "[Definition]\nactionstart =\nactionstop =\n"
            "actionban = echo <ip> $(date +%%%%s.%%%%N) >> %s/bans.txt\nactionunban =\n" % d
        )


def write_conf(d, backend):
    write_common(d, "datepattern = {^LN-BEG}EPOCH")
    with open(os.path.join(d, "jail.conf"), "w") as f:
        f.write(
            "[DEFAULT]\nbackend = %s\n\n[lat]\nenabled = true\nfilter = bench\n"
            "logpath = %s/lat.log\nmaxretry = 1\nfindtime = 1h\nbantime = 1h\naction = stamp\n\n"
            "[burst]\nenabled = true\nfilter = bench\nlogpath = %s/burst.log\n"
            "maxretry = 5\nfindtime = 1h\nbantime = 1h\naction = stamp\n" % (backend, d, d)
        )
    for n in ("lat.log", "burst.log", "bans.txt"):
        open(os.path.join(d, n), "w").close()


def server_cmd(kind, f2b, d):
    if kind == "f2b":
        return [f2b, "server", "-f", "-x", "-c", d, "start"]
    return ["/usr/bin/fail2ban-server", "-f", "-x", "-c", d, "start"]


def rss_kib(pid, field="VmRSS:"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tck


def thread_cpu_s(pid):
    """CPU seconds per live thread of `pid`, keyed by thread id: (name, seconds)."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1 : st.rindex(")")]
        parts = st.rsplit(")", 1)[1].split()
        out[tid] = (name, (int(parts[11]) + int(parts[12])) / tck)
    return out


def ban_count(d):
    with open(os.path.join(d, "bans.txt")) as f:
        return sum(1 for _ in f)


class _Unpickler(pickle.Unpickler):
    """Python's server pickles fail2ban's own exception classes (e.g. UnknownJailException);
    without fail2ban's modules on this interpreter they become a plain Exception."""

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (Exception,), {})


def ask(d, *cmd):
    """One command over the control socket, the way fail2ban-client sends it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(os.path.join(d, "f2b.sock"))
    s.sendall(pickle.dumps(list(cmd), 4) + b"<F2B_END_COMMAND>")
    buf = b""
    while not buf.endswith(b"<F2B_END_COMMAND>"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    try:
        s.sendall(b"<F2B_CLOSE_COMMAND><F2B_END_COMMAND>")
    except OSError:
        pass  # the server closes first after `stop`
    s.close()
    import io

    return _Unpickler(io.BytesIO(buf[: -len(b"<F2B_END_COMMAND>")])).load()


def wait_ready(kind, f2b, d, proc, timeout=30.0, jail="lat"):
    """Ready = the socket answers and the jail (`lat`) is running."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("%s server exited with %s" % (kind, proc.returncode))
        try:
            if ask(d, "ping") == (0, "pong") and ask(d, "status", jail)[0] == 0:
                return time.time() - t0
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
        time.sleep(0.001)
    raise RuntimeError("%s server not ready in %ss" % (kind, timeout))


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def run(kind, f2b, trials, burst_lines, backend):
    d = tempfile.mkdtemp(prefix="f2b-bench-%s-" % kind)
    write_conf(d, backend)
    res = {}
    t0 = time.time()
    proc = subprocess.Popen(server_cmd(kind, f2b, d), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(kind, f2b, d, proc)
        res["start_to_ready_ms"] = ready * 1000
        time.sleep(1.0)
        res["rss_idle_mib"] = rss_kib(proc.pid) / 1024
        res["rss_anon_idle_mib"] = rss_kib(proc.pid, "RssAnon:") / 1024
        res["rss_file_idle_mib"] = rss_kib(proc.pid, "RssFile:") / 1024
        # (a) latency
        lats = []
        lat_log = os.path.join(d, "lat.log")
        bans = os.path.join(d, "bans.txt")
        for i in range(trials):
            ip = "10.%d.%d.%d" % (1 + i // 64516, 1 + (i // 254) % 254, 1 + i % 254)
            before = ban_count(d)
            t_write = time.time()
            with open(lat_log, "a") as f:
                f.write("%.6f host auth failure from %s\n" % (t_write, ip))
            deadline = t_write + 10
            stamp = None
            while time.time() < deadline:
                if ban_count(d) > before:
                    with open(bans) as f:
                        for line in f:
                            p = line.split()
                            if len(p) == 2 and p[0] == ip:
                                stamp = float(p[1])
                    if stamp is not None:
                        break
                time.sleep(0.0002)
            if stamp is None:
                raise RuntimeError("%s: no ban for %s within 10 s" % (kind, ip))
            lats.append((stamp - t_write) * 1000)
        res["lat_p50_ms"] = pct(lats, 50)
        res["lat_p90_ms"] = pct(lats, 90)
        res["lat_p99_ms"] = pct(lats, 99)
        # (b) burst
        # ~1.4k offenders with maxretry (5) failures each, spread over benign lines.
        rnd = random.Random(42)
        n_bad = max(1, burst_lines * 14 // 1000)
        fails = [j for j in range(n_bad) for _ in range(5)]
        rnd.shuffle(fails)
        slots = set(rnd.sample(range(burst_lines), min(len(fails), burst_lines)))
        lines = []
        now = time.time()
        it = iter(fails)
        for i in range(burst_lines):
            if i in slots:
                j = next(it)
                lines.append("%.6f host auth failure from 172.16.%d.%d\n" % (now, 1 + j // 254, 1 + j % 254))
            else:
                lines.append("%.6f host accepted session for user%d\n" % (now, i))
        expected = trials + n_bad
        cpu0 = cpu_s(proc.pid)
        threads0 = thread_cpu_s(proc.pid)
        t_b = time.time()
        with open(os.path.join(d, "burst.log"), "a") as f:
            f.write("".join(lines))
        deadline = t_b + 600
        while ban_count(d) < expected and time.time() < deadline:
            time.sleep(0.005)
        res["burst_wall_s"] = time.time() - t_b
        res["burst_bans"] = ban_count(d) - trials
        res["burst_cpu_s"] = cpu_s(proc.pid) - cpu0
        if kind == "f2b":
            # Split: the log reader thread (reading, matching, the engine) and the rest
            # (the runtime thread running the ban actions' processes, the database,
            # threads that ended during the burst).
            reader = sum(v - threads0.get(t, (n, 0.0))[1]
                         for t, (n, v) in thread_cpu_s(proc.pid).items() if n == "f2b-reader")
            res["burst_cpu_reader_s"] = reader
            res["burst_cpu_rest_s"] = res["burst_cpu_s"] - reader
        res["rss_after_mib"] = rss_kib(proc.pid) / 1024
        res["rss_anon_after_mib"] = rss_kib(proc.pid, "RssAnon:") / 1024
        # And once the server has been idle for a few seconds (f2b returns freed heap
        # 0.5 s after the reader goes quiet, then twice more 2 s apart).
        time.sleep(5.0)
        res["rss_settled_mib"] = rss_kib(proc.pid) / 1024
        res["rss_anon_settled_mib"] = rss_kib(proc.pid, "RssAnon:") / 1024
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
    res["total_s"] = time.time() - t0
    return res


def stock_tree(d):
    """A copy of /etc/fail2ban with private runtime paths; returns the config dir."""
    conf = os.path.join(d, "etc")
    shutil.copytree("/etc/fail2ban", conf)
    open(os.path.join(d, "auth.log"), "w").close()
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write(
            "[Definition]\nlogtarget = %s/server.log\nsocket = %s/f2b.sock\n"
            "pidfile = %s/f2b.pid\ndbfile = %s/f2b.sqlite3\n" % (d, d, d, d)
        )
    with open(os.path.join(conf, "paths-overrides.local"), "w") as f:
        f.write("[DEFAULT]\nsyslog_authpriv = %s/auth.log\n" % d)
    with open(os.path.join(conf, "jail.local"), "w") as f:
        f.write("[DEFAULT]\nbanaction = dummy\nbanaction_allports = dummy\n")
    with open(os.path.join(conf, "action.d", "dummy.local"), "w") as f:
        f.write("[Init]\ntarget = %s/dummy.txt\n" % d)
    return conf


def run_stock(kind, f2b, runs):
    """Start-to-ready on the stock tree, `runs` times (fresh temp dir each)."""
    times = []
    for _ in range(runs):
        d = tempfile.mkdtemp(prefix="f2b-stock-%s-" % kind)
        conf = stock_tree(d)
        t0 = time.time()
        proc = subprocess.Popen(server_cmd(kind, f2b, conf), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_ready(kind, f2b, d, proc, jail="sshd")
            times.append((time.time() - t0) * 1000)
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
    return {
        "stock_ready_ms_median": statistics.median(times),
        "stock_ready_ms_min": min(times),
        "stock_ready_ms_max": max(times),
    }


def print_table(out, kinds, keys):
    """One markdown row per metric, one column per implementation, plus python/f2b
    when both ran."""
    print("| metric | " + " | ".join(kinds) + (" | python/f2b |" if len(kinds) == 2 else " |"))
    print("|---" * (len(kinds) + 1 + (1 if len(kinds) == 2 else 0)) + "|")
    for key in keys:
        row = [out[k].get(key) for k in kinds]
        cells = ["%.3f" % v if isinstance(v, float) else str(v) for v in row]
        ratio = ""
        # a metric only one side reports (f2b's per-thread CPU split) has no ratio
        if len(kinds) == 2 and all(isinstance(v, (int, float)) for v in row) and row[0]:
            ratio = " | %.1fx" % (row[1] / row[0])
        print("| %s | %s%s |" % (key, " | ".join(cells), ratio))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--f2b", default=os.path.join(ROOT, "target", "release", "f2b"))
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--burst", type=int, default=100000)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--only", choices=["f2b", "python"])
    ap.add_argument("--stock", action="store_true", help="only the stock-tree start-to-ready")
    ap.add_argument("--stock-runs", type=int, default=10)
    a = ap.parse_args()
    kinds = [a.only] if a.only else ["f2b", "python"]
    out = {}
    for k in kinds:
        print("running %s ..." % k, file=sys.stderr)
        if a.stock:
            out[k] = run_stock(k, a.f2b, a.stock_runs)
        else:
            out[k] = run(k, a.f2b, a.trials, a.burst, a.backend)
    keys = ["start_to_ready_ms", "rss_idle_mib", "rss_anon_idle_mib", "rss_file_idle_mib", "lat_p50_ms",
            "lat_p90_ms", "lat_p99_ms", "burst_wall_s", "burst_bans", "burst_cpu_s",
            "burst_cpu_reader_s", "burst_cpu_rest_s", "rss_after_mib", "rss_anon_after_mib",
            "rss_settled_mib", "rss_anon_settled_mib"]
    if a.stock:
        keys = ["stock_ready_ms_median", "stock_ready_ms_min", "stock_ready_ms_max"]
    print_table(out, kinds, keys)


if __name__ == "__main__":
    main()
