//! `f2b -t` on broken configurations: each error is reported with its file
//! and line, the exit status class is fail2ban's, and a broken jail does not
//! keep the others from loading. Trees are built at test time from the
//! installed `/etc/fail2ban`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ORACLE: &str = "/usr/bin/fail2ban-client";
const STOCK: &str = "/etc/fail2ban";

fn require_oracle() {
    assert!(
        Path::new(ORACLE).exists() && Path::new(STOCK).join("jail.conf").exists(),
        "the fail2ban oracle is missing: install Debian's `fail2ban` package (apt-get install fail2ban)"
    );
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
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

/// A stock tree with two good jails and `bad` appended to jail.local
/// (`LOG` in it is replaced by an existing log file).
fn tree(bad: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fail2ban");
    copy_tree(Path::new(STOCK), &dir);
    let log = dir.join("a.log");
    std::fs::write(&log, "").expect("log");
    let log = log.to_string_lossy().into_owned();
    std::fs::write(
        dir.join("jail.local"),
        format!(
            "[sshd]\nenabled = true\nlogpath = {log}\n\n[good2]\nenabled = true\nfilter = sshd\nlogpath = {log}\n\n{}",
            bad.replace("LOG", &log)
        ),
    )
    .expect("jail.local");
    (tmp, dir)
}

struct Outcome {
    f2b: Output,
    oracle: Output,
}

fn test_both(dir: &Path) -> Outcome {
    let d = dir.to_string_lossy();
    Outcome {
        f2b: run(env!("CARGO_BIN_EXE_f2b"), &["-c", &d, "-t"]),
        oracle: run(ORACLE, &["-c", &d, "-t"]),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Same exit status as fail2ban, and our stderr names `file:line`.
fn check(bad: &str, want_fail: bool, file: &str, line: u32, message: &str) {
    require_oracle();
    let (_tmp, dir) = tree(bad);
    let o = test_both(&dir);
    let code = if want_fail { Some(255) } else { Some(0) };
    assert_eq!(
        o.oracle.status.code(),
        code,
        "oracle: {}",
        stderr(&o.oracle)
    );
    assert_eq!(o.f2b.status.code(), code, "f2b: {}", stderr(&o.f2b));
    let err = stderr(&o.f2b);
    let loc = format!("{}:{line}", dir.join(file).to_string_lossy());
    assert!(err.contains(&loc), "expected location {loc} in:\n{err}");
    assert!(err.contains(message), "expected {message:?} in:\n{err}");
    if want_fail {
        assert!(err.contains("ERROR: test configuration failed"), "{err}");
    } else {
        assert_eq!(
            String::from_utf8_lossy(&o.f2b.stdout),
            "OK: configuration test is successful\n"
        );
    }
    // the good jails still load
    let d = run(
        env!("CARGO_BIN_EXE_f2b"),
        &["-c", &dir.to_string_lossy(), "-d"],
    );
    let dump = String::from_utf8_lossy(&d.stdout);
    assert!(
        dump.contains("['start', 'sshd']") && dump.contains("['start', 'good2']"),
        "{dump}"
    );
}

#[test]
fn unknown_filter() {
    check(
        "[bad]\nenabled = true\nfilter = nonexistent\nlogpath = LOG\n",
        true,
        "jail.local",
        12,
        "Unable to read the filter 'nonexistent'",
    );
}

#[test]
fn unknown_action() {
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\naction = nonexistent[x=1]\n",
        true,
        "jail.local",
        14,
        "Unable to read action 'nonexistent'",
    );
}

#[test]
fn missing_section() {
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\nport = %(nosuchsection/port)s\n",
        true,
        "jail.local",
        14,
        "interpolation key 'nosuchsection/port'",
    );
}

#[test]
fn bad_interpolation() {
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\nport = %(nonexistent)s\n",
        true,
        "jail.local",
        14,
        "Bad value substitution",
    );
}

#[test]
fn interpolation_recursion() {
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\nport = %(a)s\na = %(port)s\n",
        true,
        "jail.conf",
        263,
        "Recursion limit exceeded in value substitution",
    );
}

#[test]
fn unparsable_number() {
    // fail2ban only warns (and uses None); so does f2b, with the location
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\nmaxretry = five\n",
        false,
        "jail.local",
        14,
        "Wrong value for 'maxretry' in 'bad'",
    );
}

#[test]
fn garbage_line() {
    check(
        "[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\nthis line is garbage\n",
        true,
        "jail.local",
        14,
        "Source contains parsing errors",
    );
}

#[test]
fn tag_recursion_in_action() {
    require_oracle();
    let (_tmp, dir) = tree("[bad]\nenabled = true\nfilter = sshd\nlogpath = LOG\naction = loop\n");
    std::fs::write(
        dir.join("action.d/loop.conf"),
        "[Definition]\nactionban = <a>\n[Init]\na = <b>\nb = <a>\n",
    )
    .expect("loop.conf");
    let o = test_both(&dir);
    assert_eq!(o.oracle.status.code(), Some(255));
    assert_eq!(o.f2b.status.code(), Some(255));
    assert!(
        stderr(&o.f2b).contains("self referencing definitions"),
        "{}",
        stderr(&o.f2b)
    );
}
