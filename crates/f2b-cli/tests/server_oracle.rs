//! The stock Python `fail2ban-client` against f2b's server and against Python's
//! `fail2ban-server`: the same scenario must print the same text on both.
//!
//! Needs Debian's `fail2ban` package (the oracle); fails loudly without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PY_CLIENT: &str = "/usr/bin/fail2ban-client";
const PY_SERVER: &str = "/usr/bin/fail2ban-server";

fn f2b() -> &'static str {
    env!("CARGO_BIN_EXE_f2b")
}

fn need_oracle() {
    assert!(
        Path::new(PY_CLIENT).exists() && Path::new(PY_SERVER).exists(),
        "Debian's fail2ban package is required (apt-get install fail2ban): scripts/install-deps"
    );
}

/// A private configuration: its own socket, pidfile, database and log under `dir`.
fn write_conf(dir: &Path) {
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    std::fs::create_dir_all(dir.join("action.d")).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("fail2ban.conf"),
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = {d}/server.log\nsyslogsocket = auto\n\
             socket = {d}/f2b.sock\npidfile = {d}/f2b.pid\ndbfile = {d}/f2b.sqlite3\n\
             dbpurgeage = 1d\nallowipv6 = auto\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("filter.d/app.conf"),
        "[Definition]\nfailregex = ^\\s*auth failure from <HOST>$\nignoreregex = ^\\s*auth failure from 10\\.9\\.\n\
         datepattern = {^LN-BEG}EPOCH\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("action.d/rec.conf"),
        format!(
            "[Definition]\nactionstart = echo start <name> >> {d}/actions.txt\n\
             actionstop = echo stop <name> >> {d}/actions.txt\n\
             actionban = echo ban <name> <ip> >> {d}/actions.txt\n\
             actionunban = echo unban <name> <ip> >> {d}/actions.txt\n\n[Init]\nname = default\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[DEFAULT]\nbackend = polling\nbantime = 1h\nfindtime = 10m\nmaxretry = 3\n\
             ignoreself = false\n\n\
             [app]\nenabled = true\nfilter = app\nlogpath = {d}/app.log\naction = rec[name=app]\n\
             ignoreip = 192.0.2.0/24\n\n\
             [web]\nenabled = true\nfilter = app\nlogpath = {d}/web.log\nmaxretry = 2\n\
             action = rec[name=web]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("app.log"), "").unwrap();
    std::fs::write(dir.join("web.log"), "").unwrap();
}

thread_local! {
    /// The client program the scenario drives: `[program, args...]`.
    static CLIENT: std::cell::RefCell<Vec<String>> = std::cell::RefCell::new(vec![PY_CLIENT.to_owned()]);
}

fn client(dir: &Path, args: &[&str]) -> String {
    let prog = CLIENT.with(|c| c.borrow().clone());
    let out = Command::new(&prog[0])
        .args(&prog[1..])
        .arg("-c")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run fail2ban-client");
    format!(
        "$ fail2ban-client {}\n{}[exit {}]\n",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

fn wait_for(mut pred: impl FnMut() -> bool, what: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if pred() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Runs the scenario against a server started by `start` in `dir`; returns the transcript.
fn scenario(dir: &Path, server: &[String]) -> (String, String) {
    let _ = std::fs::remove_dir_all(dir);
    write_conf(dir);
    let mut child = Command::new(&server[0])
        .args(&server[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut t = String::new();
    wait_for(
        || client(dir, &["ping"]).contains("pong"),
        "the server to answer",
    );
    wait_for(
        || client(dir, &["status", "web"]).contains("File list"),
        "jails to start",
    );
    for args in [
        vec!["ping"],
        vec!["status"],
        vec!["status", "app"],
        vec!["status", "app", "short"],
        vec!["get", "app", "maxretry"],
        vec!["get", "app", "findtime"],
        vec!["get", "app", "bantime"],
        vec!["get", "app", "usedns"],
        vec!["get", "app", "ignoreip"],
        vec!["get", "app", "ignoreself"],
        vec!["get", "app", "failregex"],
        vec!["get", "app", "ignoreregex"],
        vec!["get", "app", "logpath"],
        vec!["get", "app", "actions"],
        vec!["get", "app", "maxlines"],
        vec!["get", "loglevel"],
        vec!["get", "dbpurgeage"],
        vec!["set", "app", "findtime", "20m"],
        vec!["get", "app", "findtime"],
        vec!["set", "app", "maxretry", "4"],
        vec!["set", "app", "addignoreip", "198.51.100.7"],
        vec!["set", "app", "delignoreip", "198.51.100.7"],
        vec!["get", "nosuchjail", "maxretry"],
        vec!["status", "nosuchjail"],
        vec!["echo", "hello", "world"],
        vec!["version"],
        vec!["set", "app", "banip", "203.0.113.5", "203.0.113.6"],
        vec!["get", "app", "banip"],
        vec!["banned", "203.0.113.5"],
        vec!["get", "app", "banned", "203.0.113.5"],
        vec!["set", "app", "unbanip", "203.0.113.5"],
        vec!["get", "app", "banip"],
        vec!["set", "app", "unbanip", "--report-absent", "203.0.113.99"],
    ] {
        t.push_str(&client(dir, &args));
    }
    // Failures from the log: web bans after 2, the ignored range and ignoreregex never.
    let tnow = now();
    for ip in ["198.18.0.1", "198.18.0.1", "10.9.0.1", "10.9.0.1"] {
        append(
            &dir.join("web.log"),
            &format!("{tnow:.3} auth failure from {ip}"),
        );
    }
    for _ in 0..3 {
        append(
            &dir.join("app.log"),
            &format!("{tnow:.3} auth failure from 192.0.2.44"),
        );
    }
    wait_for(
        || client(dir, &["status", "web"]).contains("198.18.0.1"),
        "the ban from the log",
    );
    std::thread::sleep(Duration::from_millis(1500));
    for args in [
        vec!["status", "web"],
        vec!["status", "app"],
        vec!["unban", "--all"],
        vec!["status", "web"],
        vec!["stop"],
    ] {
        t.push_str(&client(dir, &args));
    }
    wait_for(|| child.try_wait().ok().flatten().is_some(), "server exit");
    let _ = child.wait();
    let actions = std::fs::read_to_string(dir.join("actions.txt")).unwrap_or_default();
    (t, actions)
}

fn run_dir(tag: &str) -> PathBuf {
    // The same path for both servers, so paths in replies compare equal.
    std::env::temp_dir().join(format!("f2b-oracle-{tag}-{}", std::process::id()))
}

fn compare(py: &(String, String), ours: &(String, String)) {
    let (pt, ot) = (py.0.lines(), ours.0.lines());
    let mut diffs = Vec::new();
    for (i, (a, b)) in pt.zip(ot).enumerate() {
        if a != b {
            diffs.push(format!("line {}:\n  python: {a}\n  f2b:    {b}", i + 1));
        }
    }
    assert!(
        diffs.is_empty() && py.0.lines().count() == ours.0.lines().count(),
        "transcripts differ:\n{}\n--- python ---\n{}\n--- f2b ---\n{}",
        diffs.join("\n"),
        py.0,
        ours.0
    );
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&py.1), sorted(&ours.1), "action effects differ");
}

fn py_server(d: &str) -> Vec<String> {
    vec![
        PY_SERVER.into(),
        "-f".into(),
        "-x".into(),
        "-c".into(),
        d.into(),
        "start".into(),
    ]
}

#[test]
fn f2b_client_prints_what_python_client_prints() {
    need_oracle();
    let dir = run_dir("f2bclient");
    let d = dir.to_string_lossy().into_owned();
    let py = scenario(&dir, &py_server(&d));
    CLIENT.with(|c| *c.borrow_mut() = vec![f2b().to_owned(), "client".to_owned()]);
    let ours = scenario(&dir, &py_server(&d));
    let _ = std::fs::remove_dir_all(&dir);
    compare(&py, &ours);
}

#[test]
fn python_client_sees_the_same_server() {
    need_oracle();
    let dir = run_dir("client");
    let d = dir.to_string_lossy().into_owned();
    let py = scenario(
        &dir,
        &[
            PY_SERVER.into(),
            "-f".into(),
            "-x".into(),
            "-c".into(),
            d.clone(),
            "start".into(),
        ],
    );
    let ours = scenario(
        &dir,
        &[
            f2b().into(),
            "server".into(),
            "-f".into(),
            "-x".into(),
            "-c".into(),
            d.clone(),
            "start".into(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    compare(&py, &ours);
}
