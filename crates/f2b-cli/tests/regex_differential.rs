//! Differential test: `f2b regex` against Python's `fail2ban-regex` (the
//! oracle from the Debian `fail2ban` package) on every sample log that has a
//! stock filter of the same name.
//!
//! * `-o '<time> <ip> <F-USER>'` output must be identical after sorting;
//! * the `Lines: N lines, X ignored, Y matched, Z missed` summary must be
//!   identical.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
const CONF: &str = "/etc/fail2ban";
const PY: &str = "/usr/bin/fail2ban-regex";

fn f2b() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_f2b"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Failures without a date get "now" as time in both tools; those values
/// can never be equal between two runs, so they are normalised.
fn normalise_now(l: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match l.split_once(' ') {
        Some((t, rest))
            if t.parse::<f64>()
                .is_ok_and(|t| (t - now).abs() < 3600.0 && t.fract() != 0.0) =>
        {
            format!("NOW {rest}")
        }
        _ => l.to_string(),
    }
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(normalise_now).collect();
    v.sort();
    v
}

fn lines_summary(s: &str) -> Option<String> {
    s.lines()
        .find(|l| l.starts_with("Lines: "))
        .map(str::to_string)
}

fn samples() -> Vec<String> {
    assert!(
        Path::new(PY).is_file() && Path::new(LOGS).is_dir(),
        "the Python fail2ban oracle is missing: install the Debian `fail2ban` package"
    );
    let mut v: Vec<String> = std::fs::read_dir(LOGS)
        .expect("read logs dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            Path::new(CONF)
                .join("filter.d")
                .join(format!("{n}.conf"))
                .is_file()
        })
        .collect();
    v.sort();
    v
}

/// Runs both tools on one sample; returns a description of differences.
fn compare(name: &str) -> Vec<String> {
    let log = format!("{LOGS}/{name}");
    let mut diffs = Vec::new();
    let fmt = "<time> <ip> <F-USER>";
    let ours = run(Command::new(f2b()).args(["regex", "-o", fmt, &log, name]));
    let theirs = run(Command::new("/usr/bin/python3").args([PY, "-o", fmt, &log, name]));
    let (a, b) = (sorted_lines(&ours), sorted_lines(&theirs));
    if a != b {
        let only_ours: Vec<_> = a.iter().filter(|l| !b.contains(l)).take(3).collect();
        let only_theirs: Vec<_> = b.iter().filter(|l| !a.contains(l)).take(3).collect();
        diffs.push(format!(
            "{name}: -o output differs ({} vs {} lines); only f2b: {only_ours:?}; only python: {only_theirs:?}",
            a.len(),
            b.len()
        ));
    }
    let ours = run(Command::new(f2b()).args(["regex", &log, name]));
    let theirs = run(Command::new("/usr/bin/python3").args([PY, &log, name]));
    let (a, b) = (lines_summary(&ours), lines_summary(&theirs));
    if a != b || a.is_none() {
        diffs.push(format!("{name}: summary differs: f2b {a:?} python {b:?}"));
    }
    diffs
}

#[test]
fn f2b_regex_matches_python_fail2ban_regex() {
    let names = samples();
    assert!(names.len() >= 80, "too few samples: {}", names.len());
    let queue = Mutex::new(names.clone());
    let diffs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(n) = next else { break };
                let d = compare(&n);
                if let Ok(mut all) = diffs.lock() {
                    all.extend(d);
                }
            });
        }
    });
    let diffs = diffs.into_inner().unwrap_or_default();
    for d in &diffs {
        eprintln!("{d}");
    }
    assert!(
        diffs.is_empty(),
        "{} differences over {} samples",
        diffs.len(),
        names.len()
    );
}

/// The report without what differs between any two runs: the time it took,
/// failure times that are "now", and the order inside Python sets (hash
/// order, randomised per process).
fn normalise_report(s: &str) -> Vec<String> {
    // ctime's date part of today: "Sun Nov 22 "
    let today = run(Command::new("date").args(["+%a %b %d "]));
    let today = today.trim_end_matches('\n');
    s.lines()
        .filter(|l| !l.starts_with("[processed in "))
        .map(|l| sort_sets(&normalise_ctime(l, today)))
        .collect()
}

/// `-v`'s "address  Www Mmm DD HH:MM:SS YYYY" of a failure without a date
/// is "now" (different in each run): a time of today is replaced by NOW.
fn normalise_ctime(l: &str, today: &str) -> String {
    match l.find(today) {
        Some(p) => format!("{}NOW", &l[..p]),
        None => l.to_string(),
    }
}

/// `{'b', 'a'}` -> `{'a', 'b'}` (a Python set of strings: items without
/// `: ` after them, unlike a dict's keys).
fn sort_sets(l: &str) -> String {
    fn set_at(s: &str) -> Option<(Vec<&str>, usize)> {
        // `s` starts with `{'`: items up to the closing `}`, and its length
        let mut items = Vec::new();
        let mut i = 1;
        loop {
            let rest = s.get(i..)?;
            if !rest.starts_with('\'') {
                return None;
            }
            let end = rest[1..].find('\'')? + 2;
            items.push(&rest[..end]);
            i += end;
            match s.get(i..)? {
                r if r.starts_with(", '") => i += 2,
                r if r.starts_with('}') => return Some((items, i + 1)),
                _ => return None,
            }
        }
    }
    let mut out = String::new();
    let mut rest = l;
    while let Some(a) = rest.find("{'") {
        out.push_str(&rest[..a]);
        match set_at(&rest[a..]) {
            Some((mut items, len)) => {
                items.sort();
                out.push('{');
                out.push_str(&items.join(", "));
                out.push('}');
                rest = &rest[a + len..];
            }
            None => {
                out.push_str("{'");
                rest = &rest[a + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `-v` reports (the prefregex's groups, each failure's address and time,
/// "multiple regex matched") and `-o row` (fields in fail2ban's dict order)
/// of a few samples equal Python's.
#[test]
fn verbose_reports_and_rows_match_python() {
    assert!(
        Path::new(PY).is_file(),
        "{PY} missing: apt-get install fail2ban"
    );
    let mut diffs = Vec::new();
    for (name, opts) in [
        ("sshd", &["-v"][..]),
        ("sshd", &["-o", "row"][..]),
        ("apache-auth", &["-v"][..]),
        ("apache-badbots", &["-v"][..]),
        ("asterisk", &["-v"][..]),
        ("murmur", &["-v"][..]),
        ("sshd", &["--VD", "-v"][..]),
    ] {
        let log = format!("{LOGS}/{name}");
        let ours = run(Command::new(f2b())
            .arg("regex")
            .args(opts)
            .args([&log, name]));
        let theirs = run(Command::new(PY).args(opts).args([&log, name]));
        let (a, b) = (normalise_report(&ours), normalise_report(&theirs));
        if opts.contains(&"--VD") {
            // the template regexes differ by design (localised month names),
            // the names, hits and weights do not
            let keep = |v: &[String]| -> Vec<String> {
                v.iter()
                    .filter(|l| !l.contains("# regex:"))
                    .cloned()
                    .collect()
            };
            if keep(&a) != keep(&b) {
                diffs.push(format!("{name} {opts:?}"));
            }
        } else if a != b {
            diffs.push(format!("{name} {opts:?}"));
        }
        if a.len() < 10 {
            diffs.push(format!("{name} {opts:?}: report too short: {a:?}"));
        }
    }
    assert!(diffs.is_empty(), "reports differ: {diffs:?}");
}
