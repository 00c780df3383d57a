#!/usr/bin/env python3
"""Writes a linker symbol-ordering file for f2b: the functions the server runs, start-up first.

Why: on Linux 6.x a mapped executable's page-cache folios are mapped whole on a fault, plus
64 KiB of fault-around, so any function touched pulls its neighbourhood into the resident
set. Functions are laid out by crate and codegen unit, so start-up touches pages all over
`.text` and the whole of it (~6.5 MiB) ends up resident. Laying out the functions the server
actually runs next to each other (lld `--symbol-ordering-file`; Rust and the `cc` crate
already put every function in its own section) makes the idle resident text the size of
the code start-up runs, not the size of the binary.

How: the release binary runs under valgrind's callgrind four times, on the bench config of
harness.py and on a copy of the stock /etc/fail2ban tree:
  1. start-up to ready plus 1.5 s idle (both configs), dumped before the stop path runs;
  2. a whole life: latency bans, a 5k-line burst, status, stop (both configs).
Functions of (1) come first, then what only (2) added. Names are the mangled symbols of the
given binary, so the file fits builds of the same sources and profile; names LTO renamed
(`.llvm.<hash>`) or new functions are simply left unordered by lld (no error with
`--no-warn-symbol-ordering`), so a stale file degrades gracefully.

Usage: bench/server/symbol_order.py --f2b target/release/f2b --out f2b.order
       bench/server/symbol_order.py --f2b RELINKED_BINARY --remap f2b.order --out f2b.order2
Then link with it: bench/server/release-ordered.sh does the whole sequence (build, order,
relink, remap the names ThinLTO changed in the relink, relink again).
Needs: valgrind, and lld as the linker (Rust's default on x86_64 Linux since 1.90).
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# callgrind's compressed name lines: `fn=(12) name`, later `fn=(12)`; `ob=` the object file.
NAME_LINE = re.compile(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$")


def functions(out_file, binary):
    """Functions of `binary` in one callgrind output, in the order they first appear."""
    order, seen = [], set()
    obs, fns = {}, {}
    cur_ob = cur_cob = None
    with open(out_file, errors="replace") as f:
        for line in f:
            m = NAME_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            kind, ident, name = m.groups()
            if kind in ("ob", "cob"):
                if name is not None:
                    obs[ident] = name
                if kind == "ob":
                    cur_ob, cur_cob = obs.get(ident), None
                else:
                    cur_cob = obs.get(ident)
                continue
            if name is not None:
                fns[ident] = name
            ob = cur_ob if kind == "fn" else (cur_cob or cur_ob)
            if kind == "cfn":
                cur_cob = None
            nm = fns.get(ident)
            if not nm or not ob or os.path.realpath(ob) != binary:
                continue
            nm = re.sub(r"'\d+$", "", nm)  # callgrind's recursion-cycle marker
            if nm not in seen:
                seen.add(nm)
                order.append(nm)
    return order


def run(binary, out_file, stock, whole_life):
    """One server life under callgrind; returns the callgrind output file written."""
    d = tempfile.mkdtemp(prefix="f2b-order-")
    try:
        if stock:
            conf, jail = h.stock_tree(d), "sshd"
        else:
            h.write_conf(d, "auto")
            conf, jail = d, "lat"
        cmd = ["valgrind", "--tool=callgrind", "--demangle=no", "--callgrind-out-file=" + out_file]
        proc = subprocess.Popen(cmd + h.server_cmd("f2b", binary, conf),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            h.wait_ready("f2b", binary, d, proc, timeout=300, jail=jail)
            if not whole_life:
                time.sleep(1.5)
                # Dump now: the stop path is not part of the idle set.
                subprocess.run(["callgrind_control", "-d", str(proc.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                time.sleep(1.0)
                proc.kill()
                proc.wait()
                return out_file + ".1"
            if not stock:
                for i in range(10):
                    with open(os.path.join(d, "lat.log"), "a") as f:
                        f.write("%.6f host auth failure from 10.9.0.%d\n" % (time.time(), i + 1))
                    time.sleep(0.3)
                rnd = random.Random(7)
                now = time.time()
                lines = []
                for i in range(5000):
                    if i % 10 == 0:
                        lines.append("%.6f host auth failure from 172.16.0.%d\n" % (now, i // 50 + 1))
                    else:
                        lines.append("%.6f host accepted session for user%d\n" % (now, rnd.randrange(10**6)))
                with open(os.path.join(d, "burst.log"), "a") as f:
                    f.write("".join(lines))
                t0 = time.time()
                while h.ban_count(d) < 110 and time.time() - t0 < 300:
                    time.sleep(0.2)
            h.ask(d, "status")
            h.ask(d, "status", jail)
            time.sleep(4)
            h.ask(d, "stop")
            proc.wait(timeout=300)
            return out_file
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def defined_symbols(binary):
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                         check=True).stdout
    return {p[2] for p in (line.split() for line in out.splitlines()) if len(p) == 3}


def strip_lto_suffix(name):
    """`foo.llvm.123456` -> `foo`: the suffix ThinLTO gives promoted local symbols."""
    return re.sub(r"\.llvm\.\d+$", "", name)


def remap(order, binary):
    """The names of `order` as `binary` spells them: a relink that recompiles f2b-cli (as
    `cargo rustc -- -C link-arg=...` does) renames some LTO-promoted locals; their
    suffix-less names still identify them."""
    known = defined_symbols(binary)
    by_base = {}
    for name in known:
        by_base.setdefault(strip_lto_suffix(name), []).append(name)
    out, seen = [], set()
    for name in order:
        for cand in [name] if name in known else sorted(by_base.get(strip_lto_suffix(name), [])):
            if cand not in seen:
                seen.add(cand)
                out.append(cand)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--f2b", default=os.path.join(h.ROOT, "target", "release", "f2b"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--remap", metavar="ORDER_FILE",
                    help="no callgrind run: rewrite ORDER_FILE's names as --f2b spells them")
    a = ap.parse_args()
    binary = os.path.realpath(a.f2b)
    if a.remap:
        with open(a.remap) as f:
            order = remap([line.strip() for line in f if line.strip()], binary)
        with open(a.out, "w") as f:
            f.write("\n".join(order) + "\n")
        print("%d functions -> %s" % (len(order), a.out), file=sys.stderr)
        return
    work = tempfile.mkdtemp(prefix="f2b-callgrind-")
    try:
        start, life = [], []
        for stock in (False, True):
            tag = "stock" if stock else "bench"
            print("callgrind: start-up, %s config ..." % tag, file=sys.stderr)
            start += functions(run(binary, os.path.join(work, "start-" + tag), stock, False), binary)
            print("callgrind: whole life, %s config ..." % tag, file=sys.stderr)
            life += functions(run(binary, os.path.join(work, "life-" + tag), stock, True), binary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    known = defined_symbols(binary)
    order, seen = [], set()
    for name in start + life:
        if name in known and name not in seen:
            seen.add(name)
            order.append(name)
    with open(a.out, "w") as f:
        f.write("\n".join(order) + "\n")
    n_start = len({n for n in start if n in known})
    print("%d functions (%d run by start-up) -> %s" % (len(order), n_start, a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
