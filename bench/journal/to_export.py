#!/usr/bin/env python3
"""Syslog lines (`Mon DD HH:MM:SS host ident[pid]: message`) on stdin -> journal export format
on stdout (for systemd-journal-remote). Entry i gets realtime T0 + i*10 us; unit and command
come from the identifier (sshd -> sshd.service, CRON -> cron.service)."""
import sys

T0 = 1_700_000_000_000_000
out = sys.stdout.buffer
for i, line in enumerate(sys.stdin.buffer):
    line = line.rstrip(b"\n")
    try:
        host, rest = line[16:].split(b" ", 1)
        ident, msg = rest.split(b": ", 1)
    except ValueError:
        continue
    name, _, pid = ident.partition(b"[")
    pid = pid.rstrip(b"]")
    unit = name.lower() + b".service"
    rec = [
        b"__REALTIME_TIMESTAMP=%d" % (T0 + i * 10),
        b"__MONOTONIC_TIMESTAMP=%d" % (1_000_000 + i * 10),
        b"_BOOT_ID=0123456789abcdef0123456789abcdef",
        b"_HOSTNAME=" + host,
        b"_SYSTEMD_UNIT=" + unit,
        b"_COMM=" + name,
        b"SYSLOG_IDENTIFIER=" + name,
        b"_TRANSPORT=syslog",
        b"PRIORITY=6",
    ]
    if pid:
        rec += [b"_PID=" + pid, b"SYSLOG_PID=" + pid]
    rec.append(b"MESSAGE=" + msg)
    out.write(b"\n".join(rec) + b"\n\n")
