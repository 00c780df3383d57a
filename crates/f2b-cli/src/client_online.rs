//! The client's commands for a running server: send over the control socket, print
//! the reply as `fail2ban-client` prints it (or as JSON with `--json`), and `start` /
//! `restart` / `reload`, which read the configuration and send it as a command stream.
//! Works against f2b's server and against Python's `fail2ban-server` alike.

use std::io::BufRead;
use std::path::Path;
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
            return self.interactive_loop();
        }
        if self.command(cmd.to_vec()) {
            0
        } else {
            255
        }
    }

    fn interactive_loop(&self) -> i32 {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            print!("fail2ban> ");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    println!();
                    return 0;
                }
                Ok(_) => {}
            }
            let words = match shell_words(line.trim()) {
                Some(w) => w,
                None => {
                    println!("Syntax error");
                    continue;
                }
            };
            match words.first().map(String::as_str) {
                None => continue,
                Some("exit" | "quit") => return 0,
                _ => {
                    self.command(words);
                }
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
    fn words_split_like_a_shell() {
        assert_eq!(
            shell_words(r#"set sshd addignoreip "10.0.0.0/8" 'a b' c\ d"#).unwrap(),
            vec!["set", "sshd", "addignoreip", "10.0.0.0/8", "a b", "c d"]
        );
        assert!(shell_words("echo 'open").is_none());
    }
}
