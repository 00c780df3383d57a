//! `f2b` client offline options against the real `fail2ban-client` 1.0.2
//! (the oracle, installed from Debian). The configuration trees are built at
//! test time from the installed `/etc/fail2ban`; nothing of fail2ban's is in
//! the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ORACLE: &str = "/usr/bin/fail2ban-client";
const STOCK: &str = "/etc/fail2ban";

fn f2b() -> &'static str {
    env!("CARGO_BIN_EXE_f2b")
}

fn require_oracle() {
    assert!(
        Path::new(ORACLE).exists() && Path::new(STOCK).join("jail.conf").exists(),
        "the fail2ban oracle is missing: install Debian's `fail2ban` package (apt-get install fail2ban)"
    );
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        let dst = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).expect("copy");
        }
    }
}

/// The stock tree with every jail of jail.conf enabled.
fn stock_all_enabled() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fail2ban");
    copy_tree(Path::new(STOCK), &dir);
    let jail_conf = std::fs::read_to_string(dir.join("jail.conf")).expect("jail.conf");
    let mut local = String::new();
    let mut n = 0;
    for line in jail_conf.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if name != "INCLUDES" && name != "DEFAULT" {
                local.push_str(&format!("[{name}]\nenabled = true\n\n"));
                n += 1;
            }
        }
    }
    assert_eq!(n, 91, "the stock jail.conf of fail2ban 1.0.2 has 91 jails");
    std::fs::write(dir.join("jail.local"), local).expect("jail.local");
    (tmp, dir)
}

/// The second tree: log files that exist, custom jails with the seed
/// examples, filter and action .local overrides.
fn custom_tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fail2ban");
    copy_tree(Path::new(STOCK), &dir);
    let d = dir.to_string_lossy().into_owned();
    std::fs::create_dir_all(dir.join("logs")).expect("logs");
    std::fs::create_dir_all(dir.join("filter.d/sshd.d")).expect("sshd.d");
    for f in [
        "auth.log",
        "access-1.log",
        "access-2.log",
        "apache-error.log",
        "fail2ban.log",
        "mail.log",
    ] {
        std::fs::write(dir.join("logs").join(f), "").expect("log");
    }
    std::fs::write(
        dir.join("paths-overrides.local"),
        format!(
            "[DEFAULT]\nsshd_log = {d}/logs/auth.log\napache_access_log = {d}/logs/access-*.log\n\
             apache_error_log = {d}/logs/apache-error.log\npostfix_log = {d}/logs/mail.log\n"
        ),
    )
    .expect("paths-overrides.local");
    std::fs::write(
        dir.join("jail.d/custom.conf"),
        format!(
            "[DEFAULT]\nbanaction = iptables-allports\nignoreip = 127.0.0.1/8 192.168.0.1/24\n\
             bantime = -1\nusedns = no\n\n\
             [sshd]\nenabled = true\nport = 2201\nfilter = sshd[mode=aggressive]\nbackend = polling\n\
             action = iptables[name=SSH, port=ssh, protocol=tcp]\n\
             \x20        sendmail-whois[name=ssh-sasl, dest=root, sender=fail2ban@sample.org]\n\n\
             [recidive]\nenabled = true\nlogpath = {d}/logs/fail2ban.log\n\
             action = iptables-allports[name=recidive,protocol=all]\n\n\
             [apache-auth]\nenabled = true\nlogpath = %(apache_access_log)s tail\naction = %(action_mwl)s\n\n\
             [postfix]\nenabled = true\naction = %(action_mw)s\n\
             \x20        iptables[name=pf, port=\"smtp,ssmtp\", protocol=tcp, blocktype=\"REJECT --reject-with tcp-reset\"]\n\
             \x20        smtp.py[host=\"localhost:25\", actname=mailer]\n\n\
             [custom-one]\nenabled = true\nfilter = apache-auth\nlogpath = {d}/logs/apache-error.log\n\
             \x20         {d}/logs/missing-*.log\nmaxretry = 3\nfindtime = 1d12h\n\
             action = iptables-multiport[name=one, port=\"http,https\"]\n"
        ),
    )
    .expect("custom.conf");
    std::fs::write(
        dir.join("filter.d/sshd.local"),
        "[Definition]\nignoreregex = ^ignored from <HOST>$\n",
    )
    .expect("sshd.local");
    std::fs::write(
        dir.join("filter.d/sshd.d/extra.local"),
        "[Init]\nmaxlines = 3\n",
    )
    .expect("extra");
    std::fs::write(
        dir.join("action.d/iptables.local"),
        "[Init]\nblocktype = DROP\n",
    )
    .expect("ipt");
    std::fs::write(
        dir.join("action.d/iptables-allports.local"),
        "[Definition]\nactionban = <iptables> -I f2b-<name> 1 -s <ip> -j <blocktype> # local\n",
    )
    .expect("allports");
    (tmp, dir)
}

/// Stderr log records without time and pid: (logger, level, message).
fn log_records(stderr: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        // "YYYY-MM-DD HH:MM:SS,mmm name[pid]: LEVEL   message"
        let rec = line
            .get(24..)
            .filter(|_| {
                line.len() > 24 && line.as_bytes()[4] == b'-' && line.as_bytes()[19] == b','
            })
            .and_then(|rest| {
                let (name, after) = rest.split_once('[')?;
                let (_, msg) = after.split_once("]: ")?;
                Some(format!(
                    "{} {}",
                    name.trim(),
                    msg.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
            });
        match rec {
            Some(r) => out.push(r),
            None => {
                if let Some(last) = out.last_mut() {
                    last.push('\n');
                    last.push_str(line);
                }
            }
        }
    }
    out
}

fn assert_same(dir: &Path, flag: &str) {
    let d = dir.to_string_lossy();
    let want = run(ORACLE, &["-c", &d, flag]);
    let got = run(f2b(), &["-c", &d, flag]);
    let (w, g) = (
        String::from_utf8_lossy(&want.stdout),
        String::from_utf8_lossy(&got.stdout),
    );
    if w != g {
        let first = w
            .lines()
            .zip(g.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(w.lines().count().min(g.lines().count()));
        panic!(
            "{flag}: stdout differs at line {} (fail2ban {} lines, f2b {} lines)\n--- fail2ban\n{}\n--- f2b\n{}",
            first + 1,
            w.lines().count(),
            g.lines().count(),
            w.lines().nth(first).unwrap_or(""),
            g.lines().nth(first).unwrap_or("")
        );
    }
    assert_eq!(want.status.code(), got.status.code(), "{flag}: exit status");
    assert_eq!(
        log_records(&want.stderr),
        log_records(&got.stderr),
        "{flag}: stderr log records"
    );
    assert!(w.lines().count() > 50, "suspiciously short dump");
}

#[test]
fn stock_tree_all_91_jails_dump_identical() {
    require_oracle();
    let (_tmp, dir) = stock_all_enabled();
    assert_same(&dir, "-d");
    assert_same(&dir, "--dp");
}

#[test]
fn custom_tree_dump_identical() {
    require_oracle();
    let (_tmp, dir) = custom_tree();
    assert_same(&dir, "-d");
    assert_same(&dir, "--dp");
    // the seed examples really are in the dump
    let out = run(f2b(), &["-c", &dir.to_string_lossy(), "-d"]);
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "['set', 'sshd', 'addaction', 'iptables-SSH']",
        "['set', 'sshd', 'addaction', 'sendmail-whois-ssh-sasl']",
        "['set', 'recidive', 'addaction', 'iptables-allports']",
        "['set', 'sshd', 'addignoreip', '127.0.0.1/8', '192.168.0.1/24']",
        "['add', 'sshd', 'polling']",
        "'tail']",
        "['set', 'postfix', 'addaction', 'mailer'",
    ] {
        assert!(s.contains(needle), "missing {needle}");
    }
}

/// Expressions for `--str2sec` (at least 50).
const STR2SEC: &[&str] = &[
    "10m",
    "1d12h30m",
    "1w",
    "-1",
    "1mo",
    "1y 6mo",
    " 2 hours",
    "1h",
    "1d",
    "600",
    "0",
    "1s",
    "1sec",
    "1 second",
    "2 seconds",
    "1min",
    "5 minutes",
    "1mm",
    "1hh",
    "3 hours",
    "1day",
    "2 days",
    "1dd",
    "1da",
    "1ww",
    "1wee",
    "1week",
    "2 weeks",
    "1mon",
    "1month",
    "6 months",
    "1yy",
    "1yea",
    "1year",
    "2 years",
    "1h 2m 3s",
    "1h30m",
    "0d 1h 30m",
    "1hour+30min",
    "1year-6mo",
    "1.5h",
    ".5d",
    "1e3",
    "3600*24",
    "(1+2)*60",
    "2**10",
    "7//2",
    "7%3",
    "10/4",
    "-1d",
    "+5m",
    "1H",
    "1D",
    "1M",
    "1Y",
    "1W",
    "abc",
    "1x",
    "1 2 3",
    "1 2",
    "1m 2s 3",
    "1d 12",
    "12h 30",
    "1  h",
    "h",
    "1h2",
    "1mo2d",
    "5m 30s",
    "1_000",
    "0x10",
    "010",
    "1/0",
    "5%0",
    "()",
    "(1",
    "1)",
    "1h)",
    "-",
    "1+",
    " ",
    "1week2days",
    "1.5",
    "1.",
    "3e2s",
    "10 m",
    "10M",
    "1 MON",
    "1 minutes 5 secs",
    "1yy1mo",
];

#[test]
fn str2sec_corpus_matches_fail2ban() {
    require_oracle();
    assert!(STR2SEC.len() >= 50);
    // One Python process evaluates the corpus exactly as fail2ban-client's
    // --str2sec does (print(MyTime.str2seconds(x)) or "ERROR: <e>") ...
    let script = "import sys\nfrom fail2ban.server.mytime import MyTime\n\
                  for l in sys.stdin.read().split('\\x00'):\n\
                  \x20   try: print(MyTime.str2seconds(l))\n\
                  \x20   except Exception as e: print('ERROR: %s' % (e,))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(STR2SEC.join("\x00").as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("python");
    let want: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(want.len(), STR2SEC.len(), "python harness output");
    let mut bad = Vec::new();
    for (expr, w) in STR2SEC.iter().zip(&want) {
        let got = run(f2b(), &["--str2sec", expr]);
        let g = String::from_utf8_lossy(&got.stdout)
            .trim_end_matches('\n')
            .to_owned();
        if &g != w {
            bad.push(format!("{expr:?}: fail2ban {w:?}, f2b {g:?}"));
        }
        let code = if w.starts_with("ERROR") { 255 } else { 0 };
        assert_eq!(got.status.code(), Some(code), "{expr:?} exit status");
    }
    assert!(bad.is_empty(), "str2sec mismatches:\n{}", bad.join("\n"));
    // ... and the real fail2ban-client agrees with the harness on a sample.
    for (i, expr) in STR2SEC.iter().enumerate().step_by(17) {
        let real = run(ORACLE, &["--str2sec", expr]);
        assert_eq!(
            String::from_utf8_lossy(&real.stdout).trim_end(),
            want[i],
            "{expr:?}"
        );
    }
}

#[test]
fn version_and_help() {
    require_oracle();
    for flag in ["-V", "--version"] {
        let w = run(ORACLE, &[flag]);
        let g = run(f2b(), &[flag]);
        assert_eq!(w.stdout, g.stdout, "{flag}");
        assert_eq!(w.status.code(), g.status.code(), "{flag}");
    }
    let w = run(ORACLE, &["-h"]);
    let g = run(f2b(), &["-h"]);
    assert_eq!(w.status.code(), g.status.code());
    // the options part of the usage is the same; the command table is ours
    let opts = |o: &[u8]| -> String {
        let s = String::from_utf8_lossy(o).into_owned();
        let s = s
            .replace("fail2ban-client", "CALLER")
            .replace(" f2b ", " CALLER ");
        s.split("\nCommand:")
            .next()
            .unwrap_or("")
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(opts(&w.stdout), opts(&g.stdout));
    let bad_w = run(ORACLE, &["--bogus"]);
    let bad_g = run(f2b(), &["--bogus"]);
    assert_eq!(bad_w.status.code(), bad_g.status.code());
}

#[test]
fn missing_config_dir() {
    require_oracle();
    let w = run(ORACLE, &["-c", "/nonexistent-f2b-dir", "-d"]);
    let g = run(f2b(), &["-c", "/nonexistent-f2b-dir", "-d"]);
    assert_eq!(w.stdout, g.stdout);
    assert_eq!(w.status.code(), g.status.code());
}
