//! Shared helpers for tests that run the real `f2b server` on a private configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use f2b_core::value::Value;
use f2b_proto::client::{Client, Reply};

/// The f2b binary under test.
pub fn f2b() -> &'static str {
    env!("CARGO_BIN_EXE_f2b")
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits up to `secs` for `pred`.
pub fn wait_until(secs: f64, mut pred: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pred()
}

/// Appends lines to a file.
pub fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
}

/// A running `f2b server` in a temp directory.
pub struct Srv {
    /// The configuration and data directory.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Srv {
    /// The directory path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the configuration: `jails` is jail.conf's text (use `{dir}` for the
    /// directory), `files` are extra files (path relative to the directory, contents).
    pub fn new(jails: &str, files: &[(&str, &str)]) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for sub in ["filter.d", "action.d"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("fail2ban.conf"),
            format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {d}/f2b.log\nsyslogsocket = auto\n\
                 socket = {d}/f2b.sock\npidfile = {d}/f2b.pid\ndbfile = {d}/f2b.sqlite3\n\
                 dbpurgeage = 1d\nallowipv6 = auto\n"
            ),
        )
        .unwrap();
        let jails = jails.replace("{dir}", &d);
        std::fs::write(dir.path().join("jail.conf"), &jails).unwrap();
        // fail2ban (1.0.2) refuses jails whose log files do not exist yet: create them.
        for l in jails.lines() {
            if let Some(v) = l.trim().strip_prefix("logpath") {
                let p = v.trim_start().trim_start_matches('=').trim();
                if !p.is_empty() && !Path::new(p).exists() {
                    std::fs::write(p, "").unwrap();
                }
            }
        }
        for (p, c) in files {
            let path = dir.path().join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, c.replace("{dir}", &d)).unwrap();
        }
        Srv { dir, child: None }
    }

    /// Starts the server in the foreground (extra args before `start`).
    pub fn start(mut self, extra: &[&str]) -> Srv {
        let child = Command::new(f2b())
            .arg("server")
            .arg("-f")
            .arg("-x")
            .arg("-c")
            .arg(self.dir.path())
            .args(extra)
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start f2b server");
        self.child = Some(child);
        let ok = wait_until(
            20.0,
            || matches!(self.try_cmd(&["ping"]), Some(Reply::Ok(Value::Str(s))) if s == "pong"),
        );
        assert!(ok, "f2b server did not answer; log:\n{}", self.log());
        self
    }

    fn try_cmd(&self, args: &[&str]) -> Option<Reply> {
        let mut c = Client::connect(self.file("f2b.sock"), Some(Duration::from_secs(30))).ok()?;
        let cmd: Vec<Value> = args.iter().map(|a| Value::str(*a)).collect();
        let r = c.request(&cmd).ok();
        let _ = c.close();
        r
    }

    /// Sends a command and returns the reply.
    pub fn cmd(&self, args: &[&str]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|| panic!("no reply to {args:?}; log:\n{}", self.log()))
    }

    /// Sends a command that must succeed; returns its result.
    pub fn ok(&self, args: &[&str]) -> Value {
        match self.cmd(args) {
            Reply::Ok(v) => v,
            other => panic!("{args:?} failed: {other:?}\nlog:\n{}", self.log()),
        }
    }

    /// The banned ids of a jail.
    pub fn banned(&self, jail: &str) -> Vec<String> {
        match self.ok(&["get", jail, "banip"]) {
            Value::List(v) => v
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            other => panic!("unexpected banip reply {other:?}"),
        }
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("f2b.log")).unwrap_or_default()
    }

    /// A text file of the directory (empty if missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Stops the server and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.try_cmd(&["stop"]);
            let ok = wait_until(30.0, || child.try_wait().ok().flatten().is_some());
            if !ok {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Kills the server without letting it clean up (crash simulation).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A recording action: appends `<op> <ip>` lines (plus any extra tags) to `{dir}/<file>`.
pub fn rec_action(file: &str) -> String {
    format!(
        "[Definition]\nactionstart = echo start <name> >> {{dir}}/{file}\n\
         actionstop = echo stop <name> >> {{dir}}/{file}\n\
         actionban = echo ban <ip> <bantime> <failures> >> {{dir}}/{file}\n\
         actionunban = echo unban <ip> >> {{dir}}/{file}\n\n[Init]\nname = default\n"
    )
}

/// The `app` filter of the server tests: `auth failure from <HOST>[ user <F-USER>...]`
/// after an `EPOCH` time stamp (see [`fail`]).
pub const APP_FILTER: &str =
    "[Definition]\nfailregex = ^\\s*auth failure from <HOST>(?: user <F-USER>.*</F-USER>)?$\n\
                      datepattern = {^LN-BEG}EPOCH\n";

/// Appends `n` failures of `ip`, stamped now, that [`APP_FILTER`] matches, to the log
/// file `log` of the server's directory.
pub fn fail(s: &Srv, log: &str, ip: &str, n: usize) {
    let t = now();
    let lines: Vec<String> = (0..n)
        .map(|_| line(t, &format!("auth failure from {ip}")))
        .collect();
    append(&s.file(log), &lines);
}

/// An `EPOCH`-stamped log line with the given text.
pub fn line(t: f64, text: &str) -> String {
    format!("{t:.3} {text}")
}

/// Whether the server answers `ping` with `pong` right now.
pub fn pings(s: &Srv) -> bool {
    matches!(s.try_cmd(&["ping"]), Some(Reply::Ok(Value::Str(p))) if p == "pong")
}

impl Srv {
    /// Starts the server in the foreground through a wrapper command (`prefix`, e.g.
    /// `setpriv ...` or `unshare -m sh -c ... --`; it must `exec` the server so that the
    /// child's pid is the server's), with extra environment variables; the server's stderr
    /// goes to `stderr.txt` in the directory. Waits until it answers `ping`.
    pub fn start_via(mut self, prefix: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Srv {
        let err = std::fs::File::create(self.file("stderr.txt")).unwrap();
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(f2b());
                c
            }
            None => Command::new(f2b()),
        };
        cmd.arg("server")
            .arg("-f")
            .arg("-x")
            .arg("-c")
            .arg(self.dir.path())
            .args(extra)
            .arg("start")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        self.child = Some(cmd.spawn().expect("start f2b server"));
        let ok = wait_until(20.0, || pings(&self));
        assert!(
            ok,
            "f2b server did not answer; log:\n{}\nstderr:\n{}",
            self.log(),
            self.read("stderr.txt")
        );
        self
    }

    /// The server's pid (None once stopped or killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal (`HUP`, `TERM`, `USR1`, ...) to the server with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.pid().expect("server not running");
        let st = Command::new("kill")
            .arg("-s")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s {sig} {pid} failed");
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Waits up to `secs` for the server to exit by itself; returns its exit status.
    pub fn wait_exit(&mut self, secs: f64) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if t0.elapsed().as_secs_f64() > secs {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Jail names listed by `status`.
    pub fn jails(&self) -> Vec<String> {
        let v = self.ok(&["status"]);
        let Value::List(rows) = v else {
            panic!("unexpected status reply {v:?}")
        };
        for r in rows {
            if let Value::List(kv) | Value::Tuple(kv) = r {
                if kv.first().and_then(Value::as_str) == Some("Jail list") {
                    let list = kv.get(1).and_then(Value::as_str).unwrap_or("");
                    return list
                        .split(',')
                        .map(|x| x.trim().to_owned())
                        .filter(|x| !x.is_empty())
                        .collect();
                }
            }
        }
        panic!("no jail list in status reply")
    }
}
