#!/usr/bin/python3
"""Runs one action of a config tree with the reference Python fail2ban
CommandAction (written for f2b, MIT OR Apache-2.0; fail2ban's modules are
only imported at run time).

Usage: run_action.py CONFIG ACTION [key=value ...] -- OP [OP ...]
OP is start, stop, flush, check, ban:IP, unban:IP, run:SHELL (prints the
output between '=== run:' and '=== end' lines).  The ticket of a ban
carries failures=3, the matches given by $F2B_TEST_MATCHES (lines split on
'\n') and user $F2B_TEST_USER.  Exit status: 0 if every operation succeeded.
"""
import os
import sys

sys.path.insert(0, '/usr/lib/python3/dist-packages')
try:
    from fail2ban.client.actionreader import ActionReader
    from fail2ban.server.action import CommandAction
    from fail2ban.server.ipdns import IPAddr
except ImportError as exc:
    sys.stderr.write("run_action.py: Python fail2ban is not importable: %s\n" % exc)
    sys.exit(3)


def main():
    args = sys.argv[1:]
    if '--' not in args or len(args) < 3:
        sys.stderr.write(__doc__)
        return 2
    sep = args.index('--')
    cfg, name, params, ops = args[0], args[1], args[2:sep], args[sep + 1:]
    init = dict(p.split('=', 1) for p in params)
    jail = init.pop('jail', 'f2btest')
    init.setdefault('name', jail)
    reader = ActionReader(name, name, init, basedir=cfg)
    if not reader.read():
        sys.stderr.write("cannot read action %s\n" % name)
        return 2
    reader.getOptions({})
    act = CommandAction(None, name)
    for tok in reader.convert():
        if tok[0] == 'multi-set':
            for k, v in tok[4]:
                setattr(act, k, v)
        elif tok[0] == 'set' and len(tok) > 5:
            setattr(act, tok[4], tok[5])
    matches = os.environ.get('F2B_TEST_MATCHES', '').split('\n')
    user = os.environ.get('F2B_TEST_USER', 'tester')
    ok = True
    for op in ops:
        kind, _, ip = op.partition(':')
        if kind in ('ban', 'unban'):
            addr = IPAddr(ip)
            info = {'ip': addr, 'family': 'inet6' if addr.isIPv6 else 'inet4',
                    'failures': 3, 'time': 1124013600.0, 'bantime': 600,
                    'matches': '\n'.join(matches), 'ipmatches': '\n'.join(matches),
                    'ipjailmatches': '\n'.join(matches), 'F-*': {'user': user}}
            res = act.ban(info) if kind == 'ban' else act.unban(info)
        elif kind == 'start':
            res = act.start()
        elif kind == 'stop':
            res = act.stop()
        elif kind == 'flush':
            res = act.flush()
        elif kind == 'run':
            import subprocess
            out = subprocess.run(ip, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            sys.stdout.write("=== run: %s\n%s=== end\n" % (ip, out.stdout.decode('utf-8', 'replace')))
            sys.stdout.flush()
            continue
        elif kind == 'check':
            res = act.executeCmd(act.replaceTag('<actioncheck>', act._properties, conditional='family=inet4', cache=act._substCache), act.timeout)
        else:
            sys.stderr.write("unknown op %s\n" % op)
            return 2
        if res is False:
            sys.stderr.write("operation %s failed\n" % op)
            ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
