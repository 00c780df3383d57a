//! Database interoperability with the real Python fail2ban (issue 5): Python's
//! `fail2ban-server` and f2b take turns on one `fail2ban.sqlite3`; bans made by one are
//! restored by the other (`Restore Ban` in the log, `get <jail> banip`, `<restored>` = 1
//! for the actions), `bantime.increment` continues from Python's ban history, and
//! `f2b import-db` takes over a live Python database.
//!
//! Needs Debian's `fail2ban` package (the oracle); fails loudly without it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{f2b, fail, wait_until, Srv};
use f2b_core::value::Value;
use f2b_proto::client::{Client, Reply};

const PY_CLIENT: &str = "/usr/bin/fail2ban-client";
const PY_SERVER: &str = "/usr/bin/fail2ban-server";

const FILTER: &str = "[Definition]\nfailregex = ^\\s*auth failure from <HOST>$\n\
                      datepattern = {^LN-BEG}EPOCH\n";

/// Records `ban <ip> <restored> <bantime>` / `unban <ip>`.
const REC: &str = "[Definition]\nactionstart = echo start >> {dir}/actions.txt\n\
                   actionstop = echo stop >> {dir}/actions.txt\n\
                   actionban = echo ban <ip> <restored> <bantime> >> {dir}/actions.txt\n\
                   actionunban = echo unban <ip> >> {dir}/actions.txt\n";

fn need_oracle() {
    assert!(
        Path::new(PY_CLIENT).exists() && Path::new(PY_SERVER).exists(),
        "Debian's fail2ban package is required (apt-get install fail2ban)"
    );
}

fn conf(extra: &str) -> Srv {
    need_oracle();
    Srv::new(
        &format!(
            "[a]\nenabled = true\nbackend = polling\nfilter = app\nlogpath = {{dir}}/a.log\n\
             action = rec\nmaxretry = 1\nfindtime = 1h\nignoreself = false\n{extra}\n"
        ),
        &[("filter.d/app.conf", FILTER), ("action.d/rec.conf", REC)],
    )
}

fn ping(dir: &Path) -> bool {
    let Ok(mut c) = Client::connect(dir.join("f2b.sock"), Some(Duration::from_secs(10))) else {
        return false;
    };
    let r = c.request(&[Value::str("ping")]);
    let _ = c.close();
    matches!(r, Ok(Reply::Ok(Value::Str(s))) if s == "pong")
}

/// Python's server in the foreground on the directory's configuration.
struct Py(Child);

impl Py {
    fn start(s: &Srv) -> Py {
        let err = std::fs::File::create(s.file("py-stderr.txt")).unwrap();
        let child = Command::new(PY_SERVER)
            .arg("-f")
            .arg("-x")
            .arg("-c")
            .arg(s.path())
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start Python fail2ban-server");
        let p = Py(child);
        assert!(
            wait_until(30.0, || ping(s.path())),
            "Python fail2ban-server did not answer; stderr:\n{}\nlog:\n{}",
            s.read("py-stderr.txt"),
            s.log()
        );
        assert!(
            wait_until(15.0, || py_client(s, &["status", "a"])
                .contains("File list")),
            "Python jail did not start; log:\n{}",
            s.log()
        );
        p
    }

    fn stop(mut self, s: &Srv) {
        py_client(s, &["stop"]);
        let ok = wait_until(30.0, || self.0.try_wait().ok().flatten().is_some());
        if !ok {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
        assert!(ok, "Python server did not stop");
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn py_client(s: &Srv, args: &[&str]) -> String {
    let out = Command::new(PY_CLIENT)
        .arg("-c")
        .arg(s.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run fail2ban-client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn db_rows(db: &Path, sql: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c.prepare(sql).unwrap();
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

#[test]
fn bans_written_by_python_are_restored_by_f2b() {
    let s = conf("bantime = 1h");
    let py = Py::start(&s);
    let out = py_client(&s, &["set", "a", "banip", "203.0.113.1", "203.0.113.2"]);
    assert!(out.contains('2'), "python banip: {out}");
    fail(&s, "a.log", "198.51.100.7", 1);
    assert!(
        wait_until(10.0, || py_client(&s, &["get", "a", "banip"])
            .contains("198.51.100.7")),
        "python did not ban from the log; log:\n{}",
        s.log()
    );
    py.stop(&s);
    let want = ["198.51.100.7", "203.0.113.1", "203.0.113.2"];
    assert_eq!(
        sorted(db_rows(
            &s.file("f2b.sqlite3"),
            "SELECT ip FROM bips WHERE jail='a'"
        )),
        want,
        "python's db"
    );
    std::fs::write(s.file("actions.txt"), "").unwrap();
    let mut s = s.start(&[]);
    assert!(
        wait_until(10.0, || sorted(s.banned("a")) == want),
        "f2b restored {:?}; log:\n{}",
        s.banned("a"),
        s.log()
    );
    for ip in want {
        assert!(
            s.log().contains(&format!("[a] Restore Ban {ip}")),
            "no Restore Ban {ip}; log:\n{}",
            s.log()
        );
        assert!(
            wait_until(5.0, || s
                .read("actions.txt")
                .contains(&format!("ban {ip} 1 "))),
            "action for {ip} without restored=1:\n{}",
            s.read("actions.txt")
        );
    }
    // The log line Python already counted is not counted again.
    std::thread::sleep(Duration::from_millis(500));
    let f2b_part = s.log();
    let found = f2b_part.matches("[a] Found 198.51.100.7").count();
    assert_eq!(found, 1, "Found twice over both servers; log:\n{f2b_part}");
    s.stop();
}

#[test]
fn bans_written_by_f2b_are_restored_by_python() {
    let s = conf("bantime = 1h");
    let mut s = s.start(&[]);
    assert_eq!(
        s.ok(&["set", "a", "banip", "203.0.113.11", "203.0.113.12"]),
        Value::Int(2)
    );
    fail(&s, "a.log", "198.51.100.17", 1);
    assert!(wait_until(10.0, || s.banned("a").len() == 3));
    s.stop();
    std::fs::write(s.file("actions.txt"), "").unwrap();
    let log_before = s.log().len();
    let py = Py::start(&s);
    let want = ["198.51.100.17", "203.0.113.11", "203.0.113.12"];
    assert!(
        wait_until(10.0, || {
            let out = py_client(&s, &["get", "a", "banip"]);
            want.iter().all(|ip| out.contains(ip))
        }),
        "python restored: {}; log:\n{}",
        py_client(&s, &["get", "a", "banip"]),
        s.log()
    );
    let py_log = s.log()[log_before..].to_owned();
    for ip in want {
        assert!(
            py_log.contains(&format!("[a] Restore Ban {ip}")),
            "python: no Restore Ban {ip}; log:\n{py_log}"
        );
        assert!(
            wait_until(5.0, || s
                .read("actions.txt")
                .contains(&format!("ban {ip} 1 "))),
            "python action for {ip} without restored=1:\n{}",
            s.read("actions.txt")
        );
    }
    // Python resumes the log where f2b stopped: the line is not found again.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !s.log()[log_before..].contains("Found 198.51.100.17"),
        "python re-read a line f2b had read; log:\n{}",
        &s.log()[log_before..]
    );
    py.stop(&s);
}

#[test]
fn bantime_increment_continues_python_history() {
    let extra = "bantime = 2\nbantime.increment = true\nbantime.multipliers = 1 5 30\n";
    let s = conf(extra);
    let py = Py::start(&s);
    fail(&s, "a.log", "198.51.100.40", 1);
    assert!(
        wait_until(10.0, || s
            .read("actions.txt")
            .contains("ban 198.51.100.40 0 2")),
        "python's first ban:\n{}\nlog:\n{}",
        s.read("actions.txt"),
        s.log()
    );
    py.stop(&s);
    // Let the 2 s ban expire: f2b must not restore it but must know it happened.
    std::thread::sleep(Duration::from_millis(2500));
    let s = s.start(&[]);
    assert!(s.banned("a").is_empty(), "expired ban restored");
    fail(&s, "a.log", "198.51.100.40", 1);
    assert!(
        wait_until(10.0, || s
            .read("actions.txt")
            .contains("ban 198.51.100.40 0 10")),
        "second ban not 2 s x 5 from python's history:\n{}\nlog:\n{}",
        s.read("actions.txt"),
        s.log()
    );
}

fn import_db(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(f2b())
        .arg("import-db")
        .args(args)
        .output()
        .expect("run f2b import-db");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn import_db_takes_over_a_live_python_database() {
    // Python runs on its own directory and database ...
    let py_dir = conf("bantime = 1h");
    let py = Py::start(&py_dir);
    py_client(
        &py_dir,
        &["set", "a", "banip", "203.0.113.21", "203.0.113.22"],
    );
    fail(&py_dir, "a.log", "198.51.100.27", 1);
    assert!(wait_until(10.0, || py_client(
        &py_dir,
        &["get", "a", "banip"]
    )
    .contains("198.51.100.27")));
    // ... while f2b's directory imports it (default destination: its fail2ban.conf's dbfile).
    let f2b_dir = conf("bantime = 1h");
    let src = py_dir.file("f2b.sqlite3");
    let (code, out, err) = import_db(&[
        src.to_str().unwrap(),
        "-c",
        f2b_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "import-db failed: {err}");
    let dest = f2b_dir.file("f2b.sqlite3");
    assert!(out.contains(&format!("into {}", dest.display())), "{out}");
    assert!(out.contains("ban history rows:     3"), "{out}");
    assert!(out.contains("  a: 3"), "{out}");
    assert!(
        out.contains("schema version 4"),
        "python's db is schema 4: {out}"
    );
    // Importing again adds no duplicate history.
    let (code, out, _) = import_db(&[src.to_str().unwrap(), "--db", dest.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("ban history rows:     0"), "{out}");
    py.stop(&py_dir);
    // The imported log position points into Python's file, not f2b's: f2b's own
    // a.log is a different path, so nothing is skipped there.
    let s = f2b_dir.start(&[]);
    let want = ["198.51.100.27", "203.0.113.21", "203.0.113.22"];
    assert!(
        wait_until(10.0, || sorted(s.banned("a")) == want),
        "f2b after import: {:?}; log:\n{}",
        s.banned("a"),
        s.log()
    );
    assert!(s.log().contains("[a] Restore Ban 203.0.113.21"));
}

#[test]
fn import_db_refuses_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.sqlite3");
    std::fs::write(
        &junk,
        "this is not sqlite at all, not even close....................",
    )
    .unwrap();
    let dest = d.path().join("dest.sqlite3");
    let (code, _, err) = import_db(&[junk.to_str().unwrap(), "--db", dest.to_str().unwrap()]);
    assert_eq!(code, 255, "junk imported");
    assert!(err.contains("junk.sqlite3"), "{err}");
    let (code, _, err) = import_db(&[
        d.path().join("missing").to_str().unwrap(),
        "--db",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code, 255);
    assert!(err.contains("no such database file"), "{err}");
    // Into itself.
    let (code, _, _) = import_db(&[dest.to_str().unwrap(), "--db", dest.to_str().unwrap()]);
    assert_eq!(code, 255, "imported a database into itself");
    // dbfile = None in the configuration and no --db.
    std::fs::write(
        d.path().join("fail2ban.conf"),
        "[Definition]\ndbfile = None\n",
    )
    .unwrap();
    let (code, _, err) = import_db(&[dest.to_str().unwrap(), "-c", d.path().to_str().unwrap()]);
    assert_eq!(code, 255);
    assert!(err.contains("give one with --db"), "{err}");
    let (code, _, _) = import_db(&[]);
    assert_eq!(code, 255);
}
