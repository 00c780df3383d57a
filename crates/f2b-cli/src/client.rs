//! The `client` tool: `fail2ban-client`'s command line.
//!
//! The offline options (`-c DIR`, `-d`, `--dp`, `-t`, `--str2sec`, `-h`, `-V`)
//! are handled here exactly as fail2ban 1.0.2's `Fail2banCmdLine` handles
//! them; anything else is a command for a running server and goes to
//! [`run_online`].

use std::io::Write;

use f2b_config::{Config, ConfigError, Diagnostic, Level, LoadOptions};
use f2b_core::value::Value;

/// Options gathered from the command line (fail2ban's `_conf`).
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// `-c`: configuration directory.
    pub conf: String,
    /// `-s`: socket path (from the command line or `fail2ban.conf`).
    pub socket: Option<String>,
    /// `-p`: pid file path.
    pub pidfile: Option<String>,
    /// `--loglevel`.
    pub loglevel: Option<String>,
    /// `--logtarget`.
    pub logtarget: Option<String>,
    /// `--syslogsocket`.
    pub syslogsocket: Option<String>,
    /// `--pname`.
    pub pname: Option<String>,
    /// `-d` (1) or `--dp` (2).
    pub dump: u8,
    /// `-t`.
    pub test: bool,
    /// `-v`/`-q` verbosity (default 1).
    pub verbose: i32,
    /// `-x`.
    pub force: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-b` (true, default) / `-f` (false).
    pub background: bool,
    /// `--async`.
    pub async_: bool,
    /// `--timeout` in seconds.
    pub timeout: f64,
    /// `--json` (f2b's addition): replies as JSON.
    pub json: bool,
    /// `--embedded` (f2b's addition): use the embedded configuration.
    pub embedded: bool,
}

impl Default for ClientOpts {
    fn default() -> Self {
        ClientOpts {
            conf: "/etc/fail2ban".into(),
            socket: None,
            pidfile: None,
            loglevel: None,
            logtarget: None,
            syslogsocket: None,
            pname: None,
            dump: 0,
            test: false,
            verbose: 1,
            force: false,
            interactive: false,
            background: true,
            async_: false,
            timeout: 30.0,
            json: false,
            embedded: false,
        }
    }
}

const SHORT: &str = "hc:s:p:xfbdtviqV";
const LONG: [&str; 17] = [
    "json",
    "embedded",
    "loglevel=",
    "logtarget=",
    "syslogsocket=",
    "test",
    "async",
    "conf=",
    "pidfile=",
    "pname=",
    "socket=",
    "timeout=",
    "str2sec=",
    "help",
    "version",
    "dp",
    "dump-pretty",
];

/// Python's `getopt.getopt(argv, SHORT, LONG)`: options stop at the first
/// non-option; long options may be abbreviated to a unique prefix.
/// Parsed options (name, value) and the remaining arguments.
type Parsed = (Vec<(String, String)>, Vec<String>);

fn getopt(args: &[String]) -> Result<Parsed, String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let exact = LONG.iter().find(|l| l.trim_end_matches('=') == name);
            let cands: Vec<&&str> = match exact {
                Some(e) => vec![e],
                None => LONG.iter().filter(|l| l.starts_with(name)).collect(),
            };
            if cands.is_empty() {
                return Err(format!("option --{name} not recognized"));
            }
            if cands.len() > 1 {
                return Err(format!("option --{name} not a unique prefix"));
            }
            let full = cands[0];
            let opt = format!("--{}", full.trim_end_matches('='));
            if full.ends_with('=') {
                let v = match val {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or(format!("option --{name} requires argument"))?
                    }
                };
                opts.push((opt, v));
            } else {
                if val.is_some() {
                    return Err(format!("option --{name} must not have an argument"));
                }
                opts.push((opt, String::new()));
            }
            i += 1;
            continue;
        }
        if a.starts_with('-') && a != "-" {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let pos = SHORT.find(c).filter(|_| c != ':');
                let Some(pos) = pos else {
                    return Err(format!("option -{c} not recognized"));
                };
                let takes = SHORT[pos + c.len_utf8()..].starts_with(':');
                if takes {
                    let rest: String = chars[j + 1..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest
                    } else {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or(format!("option -{c} requires argument"))?
                    };
                    opts.push((format!("-{c}"), v));
                    break;
                }
                opts.push((format!("-{c}"), String::new()));
                j += 1;
            }
            i += 1;
            continue;
        }
        break;
    }
    Ok((opts, args[i.min(args.len())..].to_vec()))
}

fn caller() -> String {
    std::env::args()
        .next()
        .map(|a| {
            let n = std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(a);
            if n == "f2b" {
                "fail2ban-client".to_owned()
            } else {
                n
            }
        })
        .unwrap_or_else(|| "fail2ban-client".into())
}

/// The usage text (`-h`).
pub fn usage() -> String {
    let caller = caller();
    let mut s = String::new();
    s.push_str(&format!("Usage: {caller} [OPTIONS] <COMMAND>\n\n"));
    s.push_str(&format!(
        "Fail2Ban v{} reads log file that contains password failure report\n",
        f2b_config::FAIL2BAN_VERSION
    ));
    s.push_str("and bans the corresponding IP addresses using firewall rules.\n\n");
    s.push_str("Options:\n");
    for (o, d) in [
        ("-c, --conf <DIR>", "configuration directory"),
        ("-s, --socket <FILE>", "socket path"),
        ("-p, --pidfile <FILE>", "pidfile path"),
        (
            "--pname <NAME>",
            "name of the process (main thread) to identify instance (default fail2ban-server)",
        ),
        ("--loglevel <LEVEL>", "logging level"),
        (
            "--logtarget <TARGET>",
            "logging target, use file-name or stdout, stderr, syslog or sysout.",
        ),
        ("--syslogsocket auto|<FILE>", ""),
        ("-d", "dump configuration. For debugging"),
        (
            "--dp, --dump-pretty",
            "dump the configuration using more human readable representation",
        ),
        (
            "-t, --test",
            "test configuration (can be also specified with start parameters)",
        ),
        ("-i", "interactive mode"),
        ("-v", "increase verbosity"),
        ("-q", "decrease verbosity"),
        ("-x", "force execution of the server (remove socket file)"),
        ("-b", "start server in background (default)"),
        ("-f", "start server in foreground"),
        (
            "--async",
            "start server in async mode (for internal usage only, don't read configuration)",
        ),
        (
            "--timeout",
            "timeout to wait for the server (for internal usage only, don't read configuration)",
        ),
        (
            "--str2sec <STRING>",
            "convert time abbreviation format to seconds",
        ),
        ("-h, --help", "display this help message"),
        (
            "-V, --version",
            "print the version (-V returns machine-readable short format)",
        ),
    ] {
        if d.is_empty() {
            s.push_str(&format!("    {o}\n"));
        } else {
            s.push_str(&format!("    {o:<24}{d}\n"));
        }
    }
    s.push_str("\nCommand:\n");
    s.push_str(&command_help());
    s.push_str("\nReport bugs to https://github.com/fail2ban/fail2ban/issues\n");
    s
}

/// The list of server commands shown by `-h` (the lead's socket client may
/// replace this with the full protocol table).
pub fn command_help() -> String {
    let mut s = String::new();
    for (c, d) in [
        ("start", "starts the server and the jails"),
        ("reload [<JAIL>]", "reloads the configuration (or one jail)"),
        ("stop", "stops all jails and the server"),
        (
            "status [<JAIL>]",
            "shows the status of the server or of <JAIL>",
        ),
        ("ping", "checks that the server answers"),
        (
            "set <JAIL> ... / get <JAIL> ...",
            "changes or reads a jail's settings",
        ),
        ("version", "shows the server version"),
    ] {
        s.push_str(&format!("    {c:<41}{d}\n"));
    }
    s
}

fn out(s: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    // a closed pipe is not an error (fail2ban ignores EPIPE too)
    let _ = writeln!(lock, "{s}");
}

/// Stderr logger in fail2ban's format (`%(asctime)s %(name)-24s[%(process)d]: %(levelname)-7s %(message)s`).
struct Log {
    threshold: u8,
    verbose: i32,
}

fn level_no(l: Level) -> u8 {
    match l {
        Level::Info => 20,
        Level::Notice => 25,
        Level::Warning => 30,
        Level::Error => 40,
    }
}

fn now_stamp() -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{},{:03}",
        now.strftime("%Y-%m-%d %H:%M:%S"),
        now.subsec_nanosecond() / 1_000_000
    )
}

impl Log {
    fn new(verbose: i32) -> Log {
        let threshold = match verbose {
            v if v <= 0 => 40,
            1 => 30,
            2 => 20,
            3 => 10,
            _ => 5,
        };
        Log { threshold, verbose }
    }

    fn emit(&self, level: Level, logger: &str, msg: &str) {
        if level_no(level) < self.threshold {
            return;
        }
        let line = if self.verbose > 2 {
            format!(" {} {:<5.5} {msg}", std::process::id(), level.name())
        } else {
            format!(
                "{} {:<24}[{}]: {:<7} {msg}",
                now_stamp(),
                logger,
                std::process::id(),
                level.name()
            )
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    fn diag(&self, d: &Diagnostic) {
        self.emit(d.level, d.logger, &d.message);
    }
}

enum Flow {
    Exit(i32),
    Continue,
}

/// Runs the tool with its arguments (program name excluded); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (optlist, rest) = match getopt(args) {
        Ok(v) => v,
        Err(_) => {
            print!("{}", usage());
            eprintln!("Init of command line failed");
            return 255;
        }
    };
    let mut o = ClientOpts::default();
    for (k, v) in &optlist {
        match k.as_str() {
            "-c" | "--conf" => o.conf = v.clone(),
            "-s" | "--socket" => o.socket = Some(v.clone()),
            "-p" | "--pidfile" => o.pidfile = Some(v.clone()),
            "-d" => o.dump = 1,
            "--dp" | "--dump-pretty" => o.dump = 2,
            "-t" | "--test" => o.test = true,
            "-v" => o.verbose += 1,
            "-q" => o.verbose -= 1,
            "-x" => o.force = true,
            "-i" => o.interactive = true,
            "-b" => o.background = true,
            "-f" => o.background = false,
            "--async" => o.async_ = true,
            "--timeout" => match f2b_core::duration::str2sec(v) {
                Ok(t) => o.timeout = t,
                Err(e) => {
                    out(&format!("ERROR: {e}"));
                    eprintln!("Init of command line failed");
                    return 255;
                }
            },
            "--str2sec" => {
                return match f2b_core::duration::str2sec_num(v) {
                    Ok(n) => {
                        out(&n.to_string());
                        0
                    }
                    Err(e) => {
                        out(&format!("ERROR: {e}"));
                        eprintln!("Init of command line failed");
                        255
                    }
                };
            }
            "-h" | "--help" => {
                print!("{}", usage());
                return 0;
            }
            "-V" => {
                out(f2b_config::FAIL2BAN_VERSION);
                return 0;
            }
            "--version" => {
                out(&format!("Fail2Ban v{}", f2b_config::FAIL2BAN_VERSION));
                return 0;
            }
            "--loglevel" => o.loglevel = Some(v.clone()),
            "--logtarget" => o.logtarget = Some(v.clone()),
            "--syslogsocket" => o.syslogsocket = Some(v.clone()),
            "--pname" => o.pname = Some(v.clone()),
            "--json" => o.json = true,
            "--embedded" => o.embedded = true,
            _ => {}
        }
    }
    let log = Log::new(o.verbose);
    match offline(&mut o, &rest, &log) {
        Flow::Exit(c) => c,
        Flow::Continue => {
            // `-i` alone starts an interactive session.
            if rest.is_empty() && !o.interactive {
                print!("{}", usage());
                log.emit(Level::Error, "fail2ban", "Init of command line failed");
                return 255;
            }
            run_online(&o, &rest)
        }
    }
}

fn fail_init(log: &Log) -> Flow {
    log.emit(Level::Error, "fail2ban", "Init of command line failed");
    Flow::Exit(255)
}

/// fail2ban's `readConfig`: load, log diagnostics, return (ok, stream).
fn read_config(o: &ClientOpts, log: &Log) -> (bool, Option<Config>) {
    let (src, _) = f2b_server::daemon::config_source(&o.conf, o.embedded);
    let src = src.as_ref();
    let mut main_overrides = Vec::new();
    for (k, v) in [
        ("loglevel", &o.loglevel),
        ("logtarget", &o.logtarget),
        ("syslogsocket", &o.syslogsocket),
    ] {
        if let Some(v) = v {
            main_overrides.push((k.to_owned(), v.clone()));
        }
    }
    let lo = LoadOptions {
        allow_no_files: o.dump > 0,
        ignore_wrong: !o.test,
        force_enable: false,
        jail: None,
        main_overrides,
    };
    match f2b_config::load(src, &lo) {
        Ok(c) => {
            for d in &c.diagnostics {
                log.diag(d);
                if o.test && d.level >= Level::Warning && d.file.is_some() {
                    let _ = writeln!(std::io::stderr(), "  at {}", d.location());
                }
            }
            (c.ok, Some(c))
        }
        Err(e) => {
            log.emit(
                Level::Error,
                "fail2ban",
                &format!("Failed during configuration: {e}"),
            );
            (false, None)
        }
    }
}

fn offline(o: &mut ClientOpts, rest: &[String], log: &Log) -> Flow {
    // early options from fail2ban.conf for what the command line did not give
    if o.socket.is_none()
        || o.pidfile.is_none()
        || o.loglevel.is_none()
        || o.logtarget.is_none()
        || o.syslogsocket.is_none()
    {
        let (src, _) = f2b_server::daemon::config_source(&o.conf, o.embedded);
        let src = src.as_ref();
        match f2b_config::early_options(src) {
            Ok((early, diags)) => {
                for d in &diags {
                    log.diag(d);
                }
                let get = |k: &str| early.get(k).and_then(|v| v.as_str().map(str::to_owned));
                o.socket = o.socket.take().or_else(|| get("socket"));
                o.pidfile = o.pidfile.take().or_else(|| get("pidfile"));
                o.loglevel = o.loglevel.take().or_else(|| get("loglevel"));
                o.logtarget = o.logtarget.take().or_else(|| get("logtarget"));
                o.syslogsocket = o.syslogsocket.take().or_else(|| get("syslogsocket"));
            }
            Err(e @ ConfigError::NoBaseDir { .. }) => {
                out(&format!("ERROR: {e}"));
                return fail_init(log);
            }
            Err(e) => {
                out(&format!("ERROR: {e}"));
                return fail_init(log);
            }
        }
    }
    if let Some(ll) = &o.loglevel {
        let ok = (!ll.is_empty() && ll.chars().all(|c| c.is_ascii_digit()))
            || matches!(
                ll.to_uppercase().as_str(),
                "CRITICAL"
                    | "FATAL"
                    | "ERROR"
                    | "WARN"
                    | "WARNING"
                    | "NOTICE"
                    | "INFO"
                    | "DEBUG"
                    | "NOTSET"
                    | "MSG"
                    | "TRACEDEBUG"
                    | "HEAVYDEBUG"
            );
        if !ok {
            out(&format!(
                "ERROR: Invalid log level {}",
                Value::str(ll.clone()).repr()
            ));
            return fail_init(log);
        }
    }
    let mut readcfg = true;
    let mut ret = true;
    if o.dump > 0 {
        let (ok, cfg) = read_config(o, log);
        readcfg = false;
        ret = ok;
        match cfg {
            Some(c) => {
                for cmd in &c.stream {
                    if o.dump == 2 {
                        out(&cmd.pformat(2, 1000));
                    } else {
                        out(&cmd.repr());
                    }
                }
            }
            None => out("ERROR: The configuration stream failed because of the invalid syntax."),
        }
        if !o.test {
            return if ret { Flow::Exit(0) } else { fail_init(log) };
        }
    }
    if o.test {
        if readcfg {
            let (ok, _) = read_config(o, log);
            ret = ok;
        }
        if !ret {
            log.emit(Level::Error, "fail2ban", "ERROR: test configuration failed");
            return Flow::Exit(255);
        }
        if rest.is_empty() {
            out("OK: configuration test is successful");
            return Flow::Exit(0);
        }
    }
    Flow::Continue
}

/// Sends a command to a running server (or starts one): see [`crate::client_online`].
pub fn run_online(opts: &ClientOpts, cmd: &[String]) -> i32 {
    let online = crate::client_online::Online {
        conf: opts.conf.clone(),
        embedded: opts.embedded,
        socket: opts
            .socket
            .clone()
            .unwrap_or_else(|| "/var/run/fail2ban/fail2ban.sock".into()),
        pidfile: opts
            .pidfile
            .clone()
            .unwrap_or_else(|| "/var/run/fail2ban/fail2ban.pid".into()),
        loglevel: opts.loglevel.clone(),
        logtarget: opts.logtarget.clone(),
        syslogsocket: opts.syslogsocket.clone(),
        background: opts.background,
        force: opts.force,
        timeout: opts.timeout,
        json: opts.json,
        interactive: opts.interactive,
    };
    online.run(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn getopt_like_python() {
        let (o, r) = getopt(&s(&["-c", "/x", "-dt", "--dump", "status"])).unwrap();
        let names: Vec<&str> = o.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["-c", "-d", "-t", "--dump-pretty"]);
        assert_eq!(r, s(&["status"]));
        assert!(getopt(&s(&["--d"])).is_err(), "--d is not a unique prefix");
        let (o, r) = getopt(&s(&["-c/x", "--dp", "--str=1h", "status", "-d"])).unwrap();
        assert_eq!(
            o,
            vec![
                ("-c".to_string(), "/x".to_string()),
                ("--dp".to_string(), String::new()),
                ("--str2sec".to_string(), "1h".to_string())
            ]
        );
        assert_eq!(r, s(&["status", "-d"]));
        assert!(getopt(&s(&["--bogus"])).is_err());
        assert!(getopt(&s(&["-c"])).is_err());
    }

    #[test]
    fn usage_lists_options() {
        let u = usage();
        assert!(u.contains("    -c, --conf <DIR>        configuration directory\n"));
        assert!(u.contains("    --syslogsocket auto|<FILE>\n"));
    }
}
