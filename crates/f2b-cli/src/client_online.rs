//! The client's commands for a running server: send over the control socket, print
//! the reply as `fail2ban-client` prints it (or as JSON with `--json`), and `start` /
//! `restart` / `reload`, which read the configuration and send it as a command stream.
//! Works against f2b's server and against Python's `fail2ban-server` alike.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use f2b_core::value::Value;
use f2b_proto::client::{Client, Reply};
use f2b_server::daemon::{config_source, read_stream, ServerOptions};

/// What the online part needs from the command line.
#[derive(Debug, Clone)]
pub struct Online {
    /// Configuration directory (`-c`).
    pub conf: String,
    /// Use the embedded configuration.
    pub embedded: bool,
    /// Socket path.
    pub socket: String,
    /// Pid file.
    pub pidfile: String,
    /// `--loglevel`, `--logtarget`, `--syslogsocket` given on the command line.
    pub loglevel: Option<String>,
    /// See `loglevel`.
    pub logtarget: Option<String>,
    /// See `loglevel`.
    pub syslogsocket: Option<String>,
    /// `-b` (true) / `-f`.
    pub background: bool,
    /// `-x`.
    pub force: bool,
    /// `--timeout` seconds for the server to come up.
    pub timeout: f64,
    /// `--json`: print replies as JSON.
    pub json: bool,
    /// `-i`.
    pub interactive: bool,
}

fn log_error(msg: &str) {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
    eprintln!(
        "{now} {:<24}[{}]: ERROR   {msg}",
        "fail2ban",
        std::process::id()
    );
}

fn to_values(cmd: &[String]) -> Vec<Value> {
    cmd.iter().map(|a| Value::Str(a.clone())).collect()
}

impl Online {
    fn server_options(&self) -> ServerOptions {
        ServerOptions {
            conf: self.conf.clone(),
            embedded: self.embedded,
            socket: Some(self.socket.clone()),
            pidfile: Some(self.pidfile.clone()),
            loglevel: self.loglevel.clone(),
            logtarget: self.logtarget.clone(),
            syslogsocket: self.syslogsocket.clone(),
            force: self.force,
            background: self.background,
            async_: false,
            exec_prefix: Vec::new(),
        }
    }

    fn connect(&self, timeout: Option<Duration>) -> Option<Client> {
        Client::connect(&self.socket, timeout).ok()
    }

    fn ping(&self, timeout: Duration) -> bool {
        if !Path::new(&self.socket).exists() {
            return false;
        }
        match self.connect(Some(timeout)) {
            Some(mut c) => {
                let ok = matches!(c.request(&[Value::str("ping")]), Ok(Reply::Ok(_)));
                let _ = c.close();
                ok
            }
            None => false,
        }
    }

    fn wait_server(&self, alive: bool) -> bool {
        let t0 = Instant::now();
        let mut sl = 0.006_f64;
        loop {
            if self.ping(Duration::from_secs_f64(sl.max(0.05))) == alive {
                return true;
            }
            let waited = t0.elapsed().as_secs_f64();
            if waited >= self.timeout {
                return false;
            }
            sl = (sl * 2.0).min(if waited > 0.2 { 0.5 } else { 0.1 });
            std::thread::sleep(Duration::from_secs_f64(sl));
        }
    }

    /// Sends commands in one connection; prints replies (`show`), returns success.
    fn process(&self, cmds: &[Vec<Value>], show: bool) -> bool {
        let mut client = match self.connect(None) {
            Some(c) => c,
            None => {
                log_error(&format!(
                    "Failed to access socket path: {}. Is fail2ban running?",
                    self.socket
                ));
                return false;
            }
        };
        let mut ok = true;
        for c in cmds {
            let words: Vec<String> = c.iter().map(f2b_server::args::py_str).collect();
            match client.request(c) {
                Ok(Reply::Ok(v)) => {
                    let echo = matches!(
                        words.first().map(String::as_str),
                        Some("echo" | "server-status")
                    );
                    if show || echo {
                        if self.json {
                            println!("{}", f2b_proto::json::reply_to_json(&words, &v));
                        } else {
                            println!("{}", f2b_proto::beautify(&words, &v));
                        }
                    }
                }
                Ok(Reply::Err(e)) => {
                    let args = match &e {
                        Value::Exception { message, .. } => {
                            Value::Tuple(vec![Value::Str(message.clone())]).repr()
                        }
                        other => other.repr(),
                    };
                    log_error(&format!("NOK: {args}"));
                    if show {
                        if self.json {
                            println!(
                                "{}",
                                serde_json::json!({"error": f2b_proto::beautify::beautify_error(&words, &e)})
                            );
                        } else {
                            println!("{}", f2b_proto::beautify::beautify_error(&words, &e));
                        }
                    }
                    ok = false;
                }
                Ok(Reply::Other(v)) => {
                    if show {
                        println!("{}", f2b_server::args::py_str(&v));
                    }
                    ok = false;
                }
                Err(e) => {
                    log_error(&format!("Unexpected communication error: {e}"));
                    return false;
                }
            }
        }
        let _ = client.close();
        ok
    }

    fn stream(&self, jail: Option<&str>) -> Option<Vec<Value>> {
        let (src, _) = config_source(&self.conf, self.embedded);
        match read_stream(src.as_ref(), &self.server_options()) {
            Ok(mut s) => {
                if let Some(j) = jail {
                    s.retain(|c| match c {
                        Value::List(v) => v.get(1).and_then(Value::as_str) == Some(j),
                        _ => false,
                    });
                }
                Some(s)
            }
            Err(e) => {
                log_error(&format!("Failed during configuration: {e}"));
                None
            }
        }
    }

    fn start(&self) -> bool {
        if self.ping(Duration::from_millis(100)) {
            log_error("Server already running");
            return false;
        }
        if !self.background {
            // In the foreground the server reads the configuration itself.
            return f2b_server::daemon::run(self.server_options()) == 0;
        }
        let Some(stream) = self.stream(None) else {
            return false;
        };
        let exe = std::env::current_exe().unwrap_or_else(|_| "f2b".into());
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("server")
            .arg("-b")
            .arg("--async")
            .arg("-c")
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.socket)
            .arg("-p")
            .arg(&self.pidfile);
        if self.force {
            cmd.arg("-x");
        }
        if self.embedded {
            cmd.arg("--embedded");
        }
        for (k, v) in [
            ("--loglevel", &self.loglevel),
            ("--logtarget", &self.logtarget),
            ("--syslogsocket", &self.syslogsocket),
        ] {
            if let Some(v) = v {
                cmd.arg(format!("{k}={v}"));
            }
        }
        match cmd.status() {
            Ok(st) if st.success() => {}
            _ => {
                log_error("Could not start server");
                return false;
            }
        }
        if !self.wait_server(true) {
            log_error("Could not find server, waiting failed");
            return false;
        }
        self.process(
            &[
                vec![Value::str("server-stream"), Value::List(stream)],
                vec![Value::str("server-status")],
            ],
            false,
        )
    }

    fn command(&self, mut cmd: Vec<String>) -> bool {
        match cmd.first().map(String::as_str) {
            Some("start") if cmd.len() == 1 => self.start(),
            Some("restart") if cmd.len() > 1 => {
                cmd[0] = "reload".into();
                cmd.insert(1, "--restart".into());
                self.command(cmd)
            }
            Some("restart") => {
                self.process(&[vec![Value::str("stop")]], true);
                if !self.wait_server(false) {
                    log_error("Could not stop server");
                    return false;
                }
                self.start()
            }
            Some("reload") => {
                let mut opts = Vec::new();
                while cmd.len() >= 2
                    && ["--restart", "--unban", "--if-exists"].contains(&cmd[1].as_str())
                {
                    opts.push(Value::Str(cmd.remove(1)));
                }
                if cmd.len() > 2 {
                    log_error(&format!(
                        "Unexpected argument(s) for reload: {}",
                        Value::List(to_values(&cmd[1..])).repr()
                    ));
                    return false;
                }
                if !self.ping(Duration::from_secs(1)) {
                    log_error("Could not find server");
                    return false;
                }
                let jail = cmd.get(1).cloned().unwrap_or_else(|| "--all".into());
                let Some(stream) = self.stream((jail != "--all").then_some(jail.as_str())) else {
                    return false;
                };
                self.process(
                    &[vec![
                        Value::str("reload"),
                        Value::Str(jail),
                        Value::List(opts),
                        Value::List(stream),
                    ]],
                    true,
                )
            }
            _ => self.process(&[to_values(&cmd)], true),
        }
    }

    /// Runs the command line's command (or the interactive loop); returns the exit code.
    pub fn run(&self, cmd: &[String]) -> i32 {
        if self.interactive {
            // Like fail2ban-client: a command given with `-i` runs first; the session
            // starts only if it succeeded.
            if !cmd.is_empty() && !self.command(cmd.to_vec()) {
                return 255;
            }
            return self.interactive_loop();
        }
        if self.command(cmd.to_vec()) {
            0
        } else {
            255
        }
    }

    /// The `-i` session: on a terminal with line editing and a history (previous
    /// commands with the arrow keys, kept in `$HOME/.f2b_history`), else plain lines
    /// from standard input (scripts pipe commands in).
    fn interactive_loop(&self) -> i32 {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            if let Ok(ed) = rustyline::DefaultEditor::new() {
                return self.interactive_tty(ed, HistoryFile::new(HistoryFile::default_path()));
            }
        }
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            print!("{PROMPT}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    println!();
                    return 0;
                }
                Ok(_) => {}
            }
            if let Some(code) = self.interactive_line(&line) {
                return code;
            }
        }
    }

    fn interactive_tty(&self, mut ed: rustyline::DefaultEditor, mut hist: HistoryFile) -> i32 {
        for entry in hist.load() {
            let _ = ed.add_history_entry(entry);
        }
        let code = loop {
            match ed.readline(PROMPT) {
                Ok(line) => {
                    let entry = line.trim();
                    if !entry.is_empty() {
                        let _ = ed.add_history_entry(entry);
                        hist.add(entry);
                    }
                    if let Some(code) = self.interactive_line(&line) {
                        break code;
                    }
                }
                // Ctrl-D / Ctrl-C end the session, as in fail2ban-client.
                Err(_) => {
                    println!();
                    break 0;
                }
            }
        };
        // A history that cannot be written (read-only home) is no reason to fail.
        let _ = hist.save();
        code
    }

    /// One line of the session; `Some(exit code)` ends it.
    fn interactive_line(&self, line: &str) -> Option<i32> {
        let words = match shell_words(line.trim()) {
            Some(w) => w,
            None => {
                println!("Syntax error");
                return None;
            }
        };
        match words.first().map(String::as_str) {
            None => {}
            Some("exit" | "quit") => return Some(0),
            Some("help") if words.len() == 1 => print!("{}", crate::client::usage()),
            _ => {
                self.command(words);
            }
        }
        None
    }
}

/// fail2ban-client's interactive prompt.
const PROMPT: &str = "fail2ban> ";

/// The interactive client's command history file: one command per line, the newest
/// last, at most [`HistoryFile::CAP`] lines. Each session appends its commands to what
/// the file holds when it ends (two sessions at once both keep theirs).
#[derive(Debug)]
struct HistoryFile {
    path: Option<PathBuf>,
    cap: usize,
    added: Vec<String>,
}

impl HistoryFile {
    /// Lines kept.
    const CAP: usize = 1000;

    fn new(path: Option<PathBuf>) -> Self {
        HistoryFile {
            path,
            cap: Self::CAP,
            added: Vec::new(),
        }
    }

    /// `$HOME/.f2b_history`; none without a home directory.
    fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(PathBuf::from(home).join(".f2b_history"))
    }

    /// The stored commands, oldest first (nothing if there is no readable file).
    fn load(&self) -> Vec<String> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let Ok(bytes) = std::fs::read(path) else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let excess = lines.len().saturating_sub(self.cap);
        lines.drain(..excess);
        lines
    }

    /// Records a command of this session (a repeat of the previous one is kept once).
    fn add(&mut self, entry: &str) {
        let entry = entry.trim();
        if entry.is_empty() || entry.contains('\n') || self.added.last().is_some_and(|l| l == entry)
        {
            return;
        }
        self.added.push(entry.to_owned());
    }

    /// Appends this session's commands to the file (capped), written to a temporary
    /// file and renamed, readable by the owner only.
    fn save(&self) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.added.is_empty() {
            return Ok(());
        }
        let mut lines = self.load();
        for a in &self.added {
            if lines.last() != Some(a) {
                lines.push(a.clone());
            }
        }
        let excess = lines.len().saturating_sub(self.cap);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        // A new file (never through a link left at that name), readable by the owner.
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
        };
        let mut f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                create()?
            }
            other => other?,
        };
        let mut text = String::new();
        for l in &lines[excess..] {
            text.push_str(l);
            text.push('\n');
        }
        let res = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
        drop(f);
        match res.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// Splits a command line like a POSIX shell (quotes, backslashes); None on an
/// unterminated quote.
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                has = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_file_is_written_reloaded_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist");
        // No file yet: empty; a session's commands are written.
        let mut h = HistoryFile::new(Some(path.clone()));
        assert!(h.load().is_empty());
        h.add("status");
        h.add("status");
        h.add("  get sshd banip  ");
        h.add("");
        h.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "status\nget sshd banip\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second session starts with them and appends its own.
        let mut h2 = HistoryFile::new(Some(path.clone()));
        assert_eq!(h2.load(), ["status", "get sshd banip"]);
        h2.add("ping");
        // A session that ran meanwhile keeps its commands too.
        let mut other = HistoryFile::new(Some(path.clone()));
        other.add("version");
        other.save().unwrap();
        h2.save().unwrap();
        assert_eq!(
            HistoryFile::new(Some(path.clone())).load(),
            ["status", "get sshd banip", "version", "ping"]
        );
        // Capped: only the newest lines stay, in the file and when read.
        let mut h3 = HistoryFile::new(Some(path.clone()));
        h3.cap = 3;
        for i in 0..5 {
            h3.add(&format!("echo {i}"));
        }
        h3.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "echo 2\necho 3\necho 4\n"
        );
        let mut h4 = HistoryFile::new(Some(path.clone()));
        h4.cap = 2;
        assert_eq!(h4.load(), ["echo 3", "echo 4"]);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A link left at the temporary name is replaced, its target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let tmp = dir.path().join(format!("hist.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let mut h5 = HistoryFile::new(Some(path.clone()));
        h5.add("ping");
        h5.save().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!tmp.exists());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("echo 4\nping\n"));
        std::fs::remove_file(&victim).unwrap();
        // Unwritable place: an error, nothing else; no path: nothing at all.
        let mut bad = HistoryFile::new(Some(dir.path().join("missing/dir/hist")));
        bad.add("status");
        assert!(bad.save().is_err());
        assert!(bad.load().is_empty());
        let mut none = HistoryFile::new(None);
        none.add("status");
        assert!(none.save().is_ok());
        assert!(none.load().is_empty());
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            shell_words(r#"set sshd addignoreip "10.0.0.0/8" 'a b' c\ d"#).unwrap(),
            vec!["set", "sshd", "addignoreip", "10.0.0.0/8", "a b", "c d"]
        );
        assert!(shell_words("echo 'open").is_none());
    }
}
