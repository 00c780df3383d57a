//! `f2b regex` in parallel chunks gives the sequential run's report, byte
//! for byte: chunks whose speculative run is proven exact are taken, the
//! others are processed again in order (`Filter::speculate`/`absorb`).
//!
//! `F2B_REGEX_THREADS=N` forces N chunks (1: sequential);
//! `F2B_REGEX_TRACE` prints on stderr whether each chunk was taken
//! ("absorbed") or processed again ("again").

use std::path::{Path, PathBuf};
use std::process::Command;

const CONF: &str = "/etc/fail2ban";

fn f2b() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_f2b"))
}

/// An sshd auth.log: few process ids (the sshd filter's mlfid), so that
/// the mlfid cache carries entries across chunk boundaries; `iso` puts an
/// ISO date on every line for which it is true (a second date template).
fn write_log(path: &Path, n: usize, iso: impl Fn(usize) -> bool) {
    let mut x: u64 = 7;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut s = String::new();
    for i in 0..n {
        let t = i as u64 / 3;
        let (h, m, sec) = (t / 3600 % 24, t / 60 % 60, t % 60);
        let pid = 2000 + next() % 300;
        let ip = format!("198.51.100.{}", next() % 250);
        let user = ["root", "admin", "git"][(next() % 3) as usize];
        let msg = match next() % 9 {
            0 => format!("Failed password for {user} from {ip} port 22 ssh2"),
            1 => format!("Failed password for invalid user {user} from {ip} port 22 ssh2"),
            2 => format!("Invalid user {user} from {ip} port 4242"),
            3 => format!("Accepted publickey for {user} from {ip} port 22 ssh2"),
            4 => format!("Connection closed by authenticating user {user} {ip} port 1 [preauth]"),
            5 => format!("Received disconnect from {ip} port 22:11: Bye [preauth]"),
            6 => format!("Disconnected from user {user} {ip} port 22"),
            7 => format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"),
            _ => "Server listening on 0.0.0.0 port 22.".to_string(),
        };
        let line = if iso(i) {
            format!("2026-01-01 {h:02}:{m:02}:{sec:02} srv sshd[{pid}]: {msg}\n")
        } else {
            format!("Jan  1 {h:02}:{m:02}:{sec:02} srv sshd[{pid}]: {msg}\n")
        };
        s.push_str(&line);
        if i % 5000 == 17 {
            s.push_str("# a comment line\n\n");
        }
    }
    std::fs::write(path, s).unwrap();
}

fn run(log: &Path, threads: usize, args: &[&str]) -> (String, String) {
    let out = Command::new(f2b())
        .arg("regex")
        .args(["-c", CONF])
        .args(args)
        .arg(log)
        .arg("sshd")
        .env("F2B_REGEX_THREADS", threads.to_string())
        .env("F2B_REGEX_TRACE", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("[processed in"))
        .map(|l| {
            // --json's elapsed seconds
            match l.find(",\"seconds\":") {
                Some(p) => l[..p].to_string(),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn skip() -> bool {
    !Path::new(CONF).join("filter.d/sshd.conf").is_file()
}

#[test]
fn regex_chunks_give_the_sequential_report() {
    if skip() {
        eprintln!("skipped: no {CONF}/filter.d/sshd.conf");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("auth.log");
    write_log(&plain, 40_000, |_| false);
    let mixed = dir.path().join("mixed.log");
    // a second date style now and then: the chunks after it cannot be
    // proven and are processed again
    write_log(&mixed, 40_000, |i| i % 7001 == 3000);
    let arg_sets: [&[&str]; 4] = [
        &[],
        &["--print-all-missed", "--print-all-ignored"],
        &["--print-all-matched", "--print-no-missed"],
        &["--json"],
    ];
    let mut absorbed = 0;
    let mut again = 0;
    for log in [&plain, &mixed] {
        for args in arg_sets {
            let (want, _) = run(log, 1, args);
            assert!(want.contains("40000") || args == ["--json"], "{want}");
            for threads in [2, 3, 5] {
                let (got, trace) = run(log, threads, args);
                assert_eq!(got, want, "{log:?} {args:?} with {threads} chunks");
                absorbed += trace.matches("absorbed").count();
                again += trace.matches("again").count();
            }
        }
    }
    assert!(
        absorbed > 0 && again > 0,
        "absorbed {absorbed}, again {again}"
    );
}
