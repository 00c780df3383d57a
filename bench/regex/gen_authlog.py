#!/usr/bin/env python3
"""Deterministic synthetic sshd auth.log generator (f2b benchmark input).

Usage: gen_authlog.py LINES > auth.log
About 30% of the lines are failures fail2ban's sshd filter counts (normal
mode); the rest is the usual noise (accepted logins, sessions, disconnects,
cron). Addresses mix IPv4 and IPv6. Same LINES -> byte-identical output.
"""
import random
import sys

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    rnd = random.Random(20051214)
    users = ["root", "admin", "test", "oracle", "ubuntu", "git", "postgres", "alice", "bob", "deploy"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    def ip():
        if rnd.random() < 0.2:
            return "2001:db8:%x::%x" % (rnd.randrange(1, 0xffff), rnd.randrange(1, 0xffff))
        return "%d.%d.%d.%d" % (rnd.choice([198, 203, 192, 45, 185]), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
    fail = [
        lambda u, a, p: "Failed password for %s from %s port %d ssh2" % (u, a, p),
        lambda u, a, p: "Failed password for invalid user %s from %s port %d ssh2" % (u, a, p),
        lambda u, a, p: "Invalid user %s from %s port %d" % (u, a, p),
        lambda u, a, p: "error: maximum authentication attempts exceeded for %s from %s port %d ssh2 [preauth]" % (u, a, p),
        lambda u, a, p: "User %s from %s not allowed because not listed in AllowUsers" % (u, a),
        lambda u, a, p: "Failed none for invalid user %s from %s port %d ssh2" % (u, a, p),
    ]
    noise = [
        lambda u, a, p: "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4" % (u, a, p),
        lambda u, a, p: "pam_unix(sshd:session): session opened for user %s(uid=1000) by (uid=0)" % u,
        lambda u, a, p: "pam_unix(sshd:session): session closed for user %s" % u,
        lambda u, a, p: "Received disconnect from %s port %d:11: disconnected by user" % (a, p),
        lambda u, a, p: "Disconnected from user %s %s port %d" % (u, a, p),
        lambda u, a, p: "Connection closed by authenticating user %s %s port %d [preauth]" % (u, a, p),
        lambda u, a, p: "Connection closed by %s port %d [preauth]" % (a, p),
        lambda u, a, p: "Server listening on 0.0.0.0 port 22.",
    ]
    t = 0
    out = sys.stdout
    buf = []
    for i in range(n):
        t += rnd.randrange(0, 3)
        day, rem = divmod(t, 86400)
        hh, rem = divmod(rem, 3600)
        mm, ss = divmod(rem, 60)
        stamp = "%s %2d %02d:%02d:%02d" % (months[(day // 28) % 12], day % 28 + 1, hh, mm, ss)
        r = rnd.random()
        u, a, p = rnd.choice(users), ip(), rnd.randrange(1024, 65535)
        if r < 0.05:
            buf.append("%s srv CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n" % (stamp, rnd.randrange(1000, 99999)))
            continue
        msg = rnd.choice(fail)(u, a, p) if r < 0.35 else rnd.choice(noise)(u, a, p)
        buf.append("%s srv sshd[%d]: %s\n" % (stamp, rnd.randrange(1000, 99999), msg))
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))

main()
