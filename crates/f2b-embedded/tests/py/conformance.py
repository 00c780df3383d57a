#!/usr/bin/python3
"""Conformance driver: runs the sample-log annotations shipped with the
installed Python fail2ban against the filters of a config tree (ours).

Written for f2b (MIT OR Apache-2.0).  It imports fail2ban's modules at run
time only, to use the reference regex engine and date detector; nothing of
fail2ban is copied here.

Usage: conformance.py --config DIR [--logs DIR] [--json OUT] [NAME...]

For every sample log NAME (a plain file in the logs directory, test-only
``zzz-*`` logs excluded) the filter ``DIR/filter.d/NAME.conf`` is loaded with
every option combination the log asks for (``# filterOptions:`` /
``# fileOptions:``; ``# addFILE:`` appends more logs) and each annotated line
(``# failJSON:``) is checked: match or no match, every captured field the
annotation names (host, user, ...), and the timestamp.  Lines without an
annotation must not match.  One check is one (line, option combination).
"""
import argparse
import datetime
import json
import os
import re
import sys
import time

os.environ['TZ'] = 'CET-01CEST-02,M3.5.0,M10.5.0'
time.tzset()

sys.path.insert(0, '/usr/lib/python3/dist-packages')
try:
    from fail2ban.server.mytime import MyTime
    from fail2ban.server.filter import Filter, FileContainer
    from fail2ban.client.filterreader import FilterReader
    from fail2ban.helpers import getLogger
except ImportError as exc:  # pragma: no cover
    sys.stderr.write("conformance.py: the Python fail2ban modules are not importable "
                     "(apt-get install fail2ban): %s\n" % exc)
    sys.exit(3)

NOW = 1124013600  # Sun Aug 14 12:00:00 CEST 2005: the sample logs' reference "now"
NOW_ISO = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')
DIRECTIVE = re.compile(r'^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$')
# keys of an annotation that are not captured values
NOT_CAPTURES = ("time", "match", "desc", "constraint")


def json_time(text):
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"):
        try:
            t = datetime.datetime.strptime(text, fmt)
            return time.mktime(t.timetuple()) + t.microsecond / 1e6
        except ValueError:
            pass
    raise ValueError("bad time %r" % text)


class Runner:
    def __init__(self, config, logs):
        self.config = config
        self.logs = logs
        self.cache = {}
        self.share = {}

    def load(self, name, opts):
        key = name + json.dumps(opts, sort_keys=True)
        if key in self.cache:
            return self.cache[key]
        flt = Filter(None)
        flt.returnRawHost = True
        flt.checkAllRegex = True
        flt.checkFindTime = False
        flt.active = True
        reader = FilterReader(name, "jail", dict(opts), basedir=self.config, share_config=self.share)
        if not reader.read():
            raise RuntimeError("cannot read filter %s" % name)
        reader.getOptions({})
        for tok in reader.convert():
            values = tok[3] if tok[0] == 'multi-set' else [tok[3]]
            for v in values:
                if tok[2] == 'prefregex':
                    flt.prefRegex = v
                elif tok[2] == 'addfailregex':
                    flt.addFailRegex(v)
                elif tok[2] == 'addignoreregex':
                    flt.addIgnoreRegex(v)
                elif tok[2] == 'maxlines':
                    flt.setMaxLines(v)
                elif tok[2] == 'datepattern':
                    flt.setDatePattern(v)
        entry = {"flt": flt, "used": set()}
        self.cache[key] = entry
        return entry

    def check_line(self, entry, opts, line, fail):
        """Returns None when right, else a reason string."""
        flt = entry["flt"]
        if opts.get('logtype') == 'journal':
            if opts.get('test.prefix-line'):
                line = opts['test.prefix-line'] + line
            ret = flt.processLine(('', NOW_ISO, line), NOW)
        else:
            ret = flt.processLine(line)
        found = []
        for r in ret or []:
            idx, fid, _t, info = r
            if fid is None or info.get('nofail'):
                entry["used"].add(idx)
                continue
            found.append(r)
        want = fail.get('match', False)
        if not found:
            return "no match (expected match)" if want else None
        if not want:
            return "matched (expected no match)"
        if len(found) > 1:
            return "matched %d regexes" % len(found)
        idx, fid, t, info = found[0]
        entry["used"].add(idx)
        for k, v in fail.items():
            if k in NOT_CAPTURES:
                continue
            got = info.get(k)
            if got is None:
                if k == 'host':
                    got = fid
                if k == 'attempts':
                    got = len(info.get('matches', {}))
            if isinstance(got, (set, list, dict)):
                if sorted(got) != sorted(v):
                    return "%s=%r (expected %r)" % (k, got, v)
            elif got != v:
                return "%s=%r (expected %r)" % (k, got, v)
        if fail.get('time') is not None:
            exp = json_time(fail['time'])
            if t != exp:
                return "time %s (expected %s)" % (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else t, fail['time'])
        return None

    def run(self, name):
        res = {"name": name, "checks": 0, "right": 0, "annotations": 0, "annotations_right": 0,
               "misses": [], "unused_regex": [], "error": None}
        if not os.path.isfile(os.path.join(self.config, "filter.d", name + ".conf")):
            res["error"] = "no filter %s.conf" % name
            return res
        try:
            self._run(name, res)
        except Exception as exc:  # report, do not crash the whole run
            res["error"] = "%s: %s" % (type(exc).__name__, exc)
        return res

    def _run(self, name, res):
        files = [name]
        common = {}
        tests = None
        i = 0
        while i < len(files):
            fname = files[i]
            i += 1
            path = os.path.join(self.logs, fname)
            lines = open(path, encoding='utf-8', errors='surrogateescape').read().splitlines()
            ignore = False
            fail = None
            for lnnum, line in enumerate(lines, 1):
                m = DIRECTIVE.match(line)
                if m:
                    kind, data = m.group(1), json.loads(m.group(2))
                    if kind == 'fileOptions':
                        common = data
                    elif kind == 'filterOptions':
                        tests = []
                        ignore = False
                        for o in (data if isinstance(data, list) else [data]):
                            opts = dict(common)
                            opts.update(o)
                            if opts.get('test.condition'):
                                ignore = not eval(opts['test.condition'], {}, {"name": name})
                            if not ignore:
                                fopts = {k: v for k, v in opts.items() if not k.startswith('test.')}
                                tests.append((self.load(name, fopts), opts))
                    elif kind == 'addFILE':
                        files.append(data)
                    else:
                        fail = data
                    continue
                if line.startswith('#') or not line.strip():
                    continue
                if ignore:
                    fail = None
                    continue
                if tests is None:
                    tests = [(self.load(name, {}), {})]
                annotated = fail is not None
                f = fail or {}
                fail = None
                line_ok = True
                for entry, opts in tests:
                    if f.get('constraint') and not eval(f['constraint'], {}, {"name": name, "opts": opts}):
                        continue
                    res["checks"] += 1
                    why = self.check_line(entry, opts, line, f)
                    if why is None:
                        res["right"] += 1
                    else:
                        line_ok = False
                        res["misses"].append({"file": fname, "line": lnnum, "opts": opts,
                                              "annotated": annotated, "why": why, "text": line})
                if annotated:
                    res["annotations"] += 1
                    res["annotations_right"] += 1 if line_ok else 0
        used, allrx = set(), []
        for key, entry in self.cache.items():
            if not key.startswith(name + "{"):
                continue
            for idx, rx in enumerate(entry["flt"].getFailRegex()):
                if rx not in allrx:
                    allrx.append(rx)
                if idx in entry["used"]:
                    used.add(rx)
        res["unused_regex"] = [rx for rx in allrx if rx not in used]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True)
    ap.add_argument('--logs', default='/usr/lib/python3/dist-packages/fail2ban/tests/files/logs')
    ap.add_argument('--json')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('names', nargs='*')
    a = ap.parse_args()
    getLogger("fail2ban").setLevel(100)
    MyTime.setTime(NOW)
    MyTime.setAlternateNow(NOW)
    names = a.names or sorted(
        n for n in os.listdir(a.logs)
        if os.path.isfile(os.path.join(a.logs, n)) and not n.startswith('zzz-') and n != 'sshd-journal')
    results = []
    tot_a = tot_ar = tot_c = tot_cr = 0
    for n in names:
        r = Runner(a.config, a.logs).run(n)
        results.append(r)
        tot_a += r["annotations"]; tot_ar += r["annotations_right"]
        tot_c += r["checks"]; tot_cr += r["right"]
        pct = 100.0 * r["annotations_right"] / r["annotations"] if r["annotations"] else 0.0
        status = r["error"] or ""
        print("%-24s %4d/%-4d annotations %6.2f%%  checks %4d/%-4d %s" % (
            n, r["annotations_right"], r["annotations"], pct, r["right"], r["checks"], status))
        if a.verbose:
            for miss in r["misses"]:
                print("    %s:%d %s %s\n        %s" % (miss["file"], miss["line"], json.dumps(miss["opts"]),
                                                   miss["why"], miss["text"]))
            for u in r["unused_regex"]:
                print("    unused regex: %s" % u[:160])
    pct = 100.0 * tot_ar / tot_a if tot_a else 0.0
    print("TOTAL annotations %d/%d %.2f%%  checks %d/%d" % (tot_ar, tot_a, pct, tot_cr, tot_c))
    if a.json:
        with open(a.json, 'w') as fh:
            json.dump({"results": results, "annotations": tot_a, "annotations_right": tot_ar,
                       "checks": tot_c, "checks_right": tot_cr}, fh, indent=1, default=str)


if __name__ == '__main__':
    main()
