//! `f2b regex systemd-journal[...]` against Python's `fail2ban-regex` (the
//! Debian `fail2ban` package with `python3-systemd` is the oracle) on a real
//! journal file written by `systemd-journal-remote` from fail2ban's
//! `sshd-journal` sample (read at test time), interleaved with entries of
//! other units.
//!
//! Checked: the whole report (header, per-regex hits, `Lines:` summary,
//! every matched/missed/ignored line with its ISO time) is identical except
//! the elapsed time; `-o` output is identical; `-m` replaces the filter's
//! `journalmatch` and selects exactly the entries of that unit.

use std::path::{Path, PathBuf};
use std::process::Command;

// The journal-file builder of f2b-journal's tests (export format fed to
// systemd-journal-remote), shared rather than copied.
#[allow(dead_code)]
#[path = "../../f2b-journal/tests/it/util.rs"]
mod util;

use util::{sshd_sample_lines, write_journal, Ent};

const PY: &str = "/usr/bin/fail2ban-regex";
/// 2023-11-14T22:13:20Z: whole seconds, so the ISO times have no fraction
/// for even entries and one for odd ones (both forms are checked).
const T0: u64 = 1_700_000_000_000_000;

fn f2b() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_f2b"))
}

fn oracle_present() {
    assert!(
        Path::new(PY).is_file(),
        "the Python fail2ban oracle is missing: install the Debian `fail2ban` package"
    );
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import systemd.journal"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3-systemd is missing (fail2ban-regex needs it for systemd-journal): apt-get install python3-systemd"
    );
}

/// The sample's sshd entries (`sshd.service`); after every 4th an entry of
/// `nginx.service` whose text the sshd filter matches, after every 5th a
/// cron entry carrying the sshd message: the journal match must keep them
/// out. Returns the file and the numbers of sshd and nginx entries.
fn build(dir: &Path) -> (PathBuf, usize, usize) {
    let lines = sshd_sample_lines();
    assert!(lines.len() > 100, "sshd-journal sample too small");
    let mut ents = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        // odd entries get a microsecond fraction
        let t = T0 + (i as u64) * 1_000_000 + (i as u64 % 2) * 250_000;
        ents.push(Ent::syslog(t, "sshd.service", l));
        if i % 4 == 0 {
            // text as sshd's (identifier sshd), but another unit and command
            ents.push(
                Ent::new(t + 1)
                    .f("_HOSTNAME", "web")
                    .f("SYSLOG_IDENTIFIER", "sshd")
                    .f("SYSLOG_PID", "7")
                    .f("_SYSTEMD_UNIT", "nginx.service")
                    .f("_COMM", "nginx")
                    .f(
                        "MESSAGE",
                        format!(
                            "Failed password for root from 10.0.{}.1 port 22 ssh2",
                            i % 250
                        ),
                    ),
            );
        }
        if i % 5 == 0 {
            ents.push(Ent::syslog(
                t + 2,
                "cron.service",
                &format!("srv cron[8]: {}", l.split_once(": ").map_or("", |x| x.1)),
            ));
        }
    }
    let path = dir.join("sshd.journal");
    write_journal(&path, &ents);
    let nginx = lines.len().div_ceil(4);
    (path, lines.len(), nginx)
}

fn run(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both tools' output on the same arguments, the elapsed time masked.
/// `Use   filter options : …` is dropped: f2b prints the options as given
/// (`[logtype=journal]`), fail2ban-regex as a Python dict — a difference of
/// `f2b regex` itself, not of the journal source.
fn both(args: &[&str]) -> (String, String) {
    let norm = |s: String| -> String {
        s.lines()
            .filter(|l| !l.starts_with("Use   filter options : "))
            .map(|l| {
                if l.starts_with("[processed in ") {
                    "[processed in X sec]"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut full = vec!["regex", "--usedns=no"];
    full.extend_from_slice(args);
    (
        norm(run(&f2b(), &full)),
        norm(run(Path::new(PY), &full[1..])),
    )
}

fn lines_summary(s: &str) -> &str {
    s.lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no Lines: summary in\n{s}"))
}

fn assert_same(ours: &str, theirs: &str) {
    if ours != theirs {
        let diff: Vec<String> = ours
            .lines()
            .zip(theirs.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("f2b:    {a}\npython: {b}"))
            .collect();
        panic!(
            "f2b regex differs from fail2ban-regex ({} vs {} lines):\n{}",
            ours.lines().count(),
            theirs.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn sshd_filter_report_identical_to_fail2ban_regex() {
    oracle_present();
    let dir = tempfile::tempdir().unwrap();
    let (path, n_sshd, _) = build(dir.path());
    let log = format!("systemd-journal[journalfiles={}]", path.display());
    let (ours, theirs) = both(&[
        "--print-all-matched",
        "--print-all-missed",
        "--print-all-ignored",
        &log,
        "sshd[logtype=journal]",
    ]);
    assert_same(&ours, &theirs);
    // the filter's journalmatch kept exactly the sshd entries
    assert!(
        lines_summary(&ours).starts_with(&format!("Lines: {n_sshd} lines,")),
        "{}",
        lines_summary(&ours)
    );
    assert!(ours.contains("Use    journal match : _SYSTEMD_UNIT=sshd.service + _COMM=sshd"));
    assert!(!ours.contains("web sshd[7]") && !ours.contains("cron[8]"));
    // lines are shown with the entry's ISO time, fractions included
    assert!(
        ours.contains("|  2023-11-14T22:13:20+00:00 srv sshd["),
        "{ours}"
    );
    assert!(ours.contains("|  2023-11-14T22:13:21.250000+00:00 srv sshd["));
}

#[test]
fn backend_sets_logtype_journal_and_out_identical() {
    oracle_present();
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = build(dir.path());
    let log = format!("systemd-journal[journalfiles={}]", path.display());
    // no [logtype=journal]: the systemd backend selects it
    let (ours, theirs) = both(&[&log, "sshd"]);
    assert_same(&ours, &theirs);
    // failure time is the entry's time
    let (ours, theirs) = both(&["-o", "<time> <ip> <F-USER>", &log, "sshd[mode=aggressive]"]);
    assert!(ours.lines().count() > 50, "{ours}");
    assert!(ours.starts_with("1700000000"), "{ours}");
    assert_same(&ours, &theirs);
}

#[test]
fn journalmatch_option_replaces_the_filter_match() {
    oracle_present();
    let dir = tempfile::tempdir().unwrap();
    let (path, _, n_nginx) = build(dir.path());
    let log = format!("systemd-journal[journalfiles={}]", path.display());
    // -m selects the other unit: only nginx entries, all matched by the literal regex
    let (ours, theirs) = both(&[
        "-m",
        "_SYSTEMD_UNIT=nginx.service",
        "--print-all-matched",
        &log,
        "Failed password for \\S+ from <HOST>",
    ]);
    assert_same(&ours, &theirs);
    assert_eq!(
        lines_summary(&ours),
        format!("Lines: {n_nginx} lines, 0 ignored, {n_nginx} matched, 0 missed")
    );
    assert!(!ours.contains("srv sshd[") && !ours.contains("cron["));
    // a literal regex has no datepattern: no date detector, no section
    assert!(!ours.contains("Date template hits"));
    // -m over a filter that has its own journalmatch: -m wins
    let (ours, theirs) = both(&[
        "-m",
        "_SYSTEMD_UNIT=nginx.service",
        "-o",
        "<ip>",
        &log,
        "sshd",
    ]);
    assert_same(&ours, &theirs);
    assert_eq!(ours.lines().count(), n_nginx, "{ours}");
    assert!(ours.lines().all(|l| l.starts_with("10.0.")));
    // -m matching no entry
    let (ours, theirs) = both(&["-m", "_SYSTEMD_UNIT=none.service", &log, "sshd"]);
    assert_same(&ours, &theirs);
    assert!(lines_summary(&ours).starts_with("Lines: 0 lines"));
    // disjunction with shell quoting
    let (ours, theirs) = both(&[
        "-m",
        "_COMM=nginx + '_SYSTEMD_UNIT=cron.service'",
        &log,
        "from <HOST>",
    ]);
    assert_same(&ours, &theirs);
}

#[test]
fn no_match_reads_every_entry_and_errors_are_reported() {
    oracle_present();
    let dir = tempfile::tempdir().unwrap();
    let (path, n_sshd, n_nginx) = build(dir.path());
    let log = format!("systemd-journal[journalfiles={}]", path.display());
    // literal regex, no -m: every entry of every unit
    let (ours, theirs) = both(&[&log, "sshd\\[\\d+\\]: .* from <HOST>"]);
    assert_same(&ours, &theirs);
    let n_cron = n_sshd.div_ceil(5);
    assert!(
        lines_summary(&ours).starts_with(&format!("Lines: {} lines,", n_sshd + n_nginx + n_cron)),
        "{}",
        lines_summary(&ours)
    );
    // journalpath: the directory holding the file
    let dlog = format!("systemd-journal[journalpath={}]", dir.path().display());
    let (ours_dir, _) = both(&[&dlog, "sshd"]);
    let (ours_file, _) = both(&[&log, "sshd"]);
    assert_eq!(lines_summary(&ours_dir), lines_summary(&ours_file));
    // unknown backend option and bad match: errors, exit code 255
    for args in [
        vec!["regex", "systemd-journal[bogus=1]", "sshd"],
        vec!["regex", "-m", "lower=x", log.as_str(), "sshd"],
    ] {
        let out = Command::new(f2b()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("ERROR: "));
    }
}

#[test]
fn encoding_option_decodes_non_utf8_entries_like_fail2ban_regex() {
    oracle_present();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.journal");
    let msg = |user: &[u8], ip: &str| {
        let mut m = b"Failed password for ".to_vec();
        m.extend_from_slice(user);
        m.extend_from_slice(format!(" from {ip} port 22 ssh2").as_bytes());
        m
    };
    let ents: Vec<Ent> = [
        (&b"jos\xe9"[..], "192.0.2.7"),
        ("josé".as_bytes(), "192.0.2.8"),
        (&b"plain"[..], "192.0.2.9"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (u, ip))| {
        Ent::new(T0 + i as u64 * 1_000_000)
            .f("_HOSTNAME", "srv")
            .f("SYSLOG_IDENTIFIER", "sshd")
            .f("_PID", "7")
            .f("MESSAGE", msg(u, ip))
    })
    .collect();
    write_journal(&path, &ents);
    let log = format!("systemd-journal[journalfiles={}]", path.display());
    // (not "ascii": f2b-tail's LogEncoding takes encoding_rs's WHATWG label,
    // which is windows-1252, where Python's ascii codec gives U+FFFD)
    for enc in [None, Some("latin-1"), Some("utf-8")] {
        let mut args = vec!["--print-all-matched"];
        if let Some(e) = enc {
            args.extend(["-e", e]);
        }
        args.extend([
            log.as_str(),
            "Failed password for (?P<user>\\S+) from <HOST>",
        ]);
        let (ours, theirs) = both(&args);
        assert_same(&ours, &theirs);
        assert!(
            ours.contains("Lines: 3 lines, 0 ignored, 3 matched, 0 missed"),
            "{ours}"
        );
        if enc == Some("latin-1") {
            assert!(ours.contains("for josé from 192.0.2.7"), "{ours}");
        }
    }
}
