#!/usr/bin/env python3
"""Helper of bench/e2e/latency.sh: measures write -> address in the kernel set.

Runs inside the server's network namespace. A netlink socket subscribed to
nf_tables notifications (NFNLGRP_NFTABLES) stamps every NEWSETELEM message as it
arrives; a trial writes one sshd failure line (maxretry = 1) for a fresh
address and waits for the notification that adds that address (its 4 bytes in
the element key) to a set. No process is forked on the measuring side.
"""
import argparse
import re
import socket
import struct
import subprocess
import sys
import threading
import time

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
NEWSETELEM = (10 << 8) | 12  # NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWSETELEM
SETNAME = re.compile(rb"((?:f2b|addr-set)-[\w-]+)\x00")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--impl", required=True)
    ap.add_argument("--trials", type=int, default=200)
    a = ap.parse_args()

    client = ["/usr/bin/fail2ban-client", "-c", a.dir]
    t_end = time.monotonic() + 30
    while subprocess.run(client + ["status", "sshd"], capture_output=True).returncode != 0:
        if time.monotonic() > t_end:
            sys.exit(f"{a.impl}: server did not come up with jail sshd")
        time.sleep(0.1)

    seen = {}
    sets = {}
    pending = {}
    cond = threading.Condition()
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    nl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    nl.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))

    def reader():
        while True:
            data = nl.recv(1 << 20)
            t = time.perf_counter()
            off = 0
            with cond:
                while off + 16 <= len(data):
                    ln, ty = struct.unpack_from("=IH", data, off)
                    if ln < 16:
                        break
                    if ty == NEWSETELEM:
                        msg = data[off:off + ln]
                        for ip, key in list(pending.items()):
                            if key in msg:
                                seen.setdefault(ip, t)
                                names = [n.decode() for n in SETNAME.findall(msg)
                                         if n != b"f2b-table"]
                                sets[ip] = names[0] if names else "?"
                                del pending[ip]
                    off += (ln + 3) & ~3
                cond.notify_all()

    threading.Thread(target=reader, daemon=True).start()

    log = open(f"{a.dir}/auth.log", "a")

    def trial(ip):
        stamp = time.strftime("%b %e %H:%M:%S")
        data = f"{stamp} bench sshd[1234]: Failed password for root from {ip} port 4242 ssh2\n"
        with cond:
            pending[ip] = socket.inet_aton(ip)
        t0 = time.perf_counter()
        log.write(data)
        log.flush()
        with cond:
            ok = cond.wait_for(lambda: ip in seen, timeout=10)
            return (seen[ip] - t0) if ok else None

    # Warm-up: the stock action creates its table/set on the first ban.
    for i in range(3):
        if trial(f"10.99.0.{i + 1}") is None:
            sys.exit(f"{a.impl}: warm-up ban never reached the kernel set")
    lat = []
    for i in range(a.trials):
        ip = f"10.77.{i // 250}.{i % 250 + 1}"
        d = trial(ip)
        if d is None:
            sys.exit(f"{a.impl}: {ip} never reached the kernel set")
        lat.append(d * 1000.0)
        time.sleep(0.02)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100.0 * (len(lat) - 1))))]

    setname = sets.get("10.77.0.1", "?")
    print(f"{a.impl} set {setname}")
    print(f"{a.impl} trials {len(lat)} n")
    for name, v in (("p50", pct(50)), ("p90", pct(90)), ("p99", pct(99)),
                    ("max", lat[-1]), ("mean", sum(lat) / len(lat))):
        print(f"{a.impl} write_to_kernel_{name} {v:.3f} ms")


if __name__ == "__main__":
    main()
