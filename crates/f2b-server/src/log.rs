//! The server's own log, in fail2ban's exact format, so that the `recidive` jail and
//! admins' `awk '/Ban/'` scripts keep working on it:
//!
//! ```text
//! 2006-02-13 15:52:30,388 fail2ban.actions        [123]: NOTICE  [sshd] Ban 1.2.3.4
//! ```
//!
//! That is `%(asctime)s %(name)-24s[%(process)d]: %(levelname)-7s %(message)s`; the time is
//! left out for SYSLOG and SYSTEMD-JOURNAL targets (syslog adds its own), and syslog lines
//! are not padded (fail2ban's default for its syslog handler).
//!
//! Writing never fails the caller: a full disk or a vanished syslog socket loses the line
//! (counted in [`Logger::dropped`]), never the daemon.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// A log level, with fail2ban's extra levels (NOTICE, MSG, TRACEDEBUG, HEAVYDEBUG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(pub u8);

impl Level {
    /// CRITICAL (50)
    pub const CRITICAL: Level = Level(50);
    /// ERROR (40)
    pub const ERROR: Level = Level(40);
    /// WARNING (30)
    pub const WARNING: Level = Level(30);
    /// NOTICE (25), fail2ban's level for Ban/Unban lines.
    pub const NOTICE: Level = Level(25);
    /// INFO (20)
    pub const INFO: Level = Level(20);
    /// MSG (18)
    pub const MSG: Level = Level(18);
    /// DEBUG (10)
    pub const DEBUG: Level = Level(10);
    /// TRACEDEBUG (7), printed as `TRACE`.
    pub const TRACEDEBUG: Level = Level(7);
    /// HEAVYDEBUG (5), printed as `HEAVY`.
    pub const HEAVYDEBUG: Level = Level(5);

    /// Parses a level as `set loglevel` accepts it: a name (any case) or a number.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<u8>().ok().map(Level);
        }
        Some(match s.to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" => Level::CRITICAL,
            "ERROR" => Level::ERROR,
            "WARNING" | "WARN" => Level::WARNING,
            "NOTICE" => Level::NOTICE,
            "INFO" => Level::INFO,
            "MSG" => Level::MSG,
            "DEBUG" => Level::DEBUG,
            "TRACEDEBUG" => Level::TRACEDEBUG,
            "HEAVYDEBUG" => Level::HEAVYDEBUG,
            "NOTSET" => Level(0),
            _ => return None,
        })
    }

    /// The level name as Python's logging prints it.
    pub fn name(self) -> String {
        match self.0 {
            50 => "CRITICAL".into(),
            40 => "ERROR".into(),
            30 => "WARNING".into(),
            25 => "NOTICE".into(),
            20 => "INFO".into(),
            18 => "MSG".into(),
            10 => "DEBUG".into(),
            7 => "TRACE".into(),
            5 => "HEAVY".into(),
            0 => "NOTSET".into(),
            n => format!("Level {n}"),
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (also `SYSOUT`, which drops the time).
    Stdout {
        /// `SYSOUT`: no time stamp.
        no_time: bool,
    },
    /// Standard error.
    Stderr,
    /// The syslog socket (`syslogsocket`, `auto` = `/dev/log`).
    Syslog,
    /// The systemd journal's native socket.
    Journal,
    /// A file, appended to.
    File(PathBuf),
}

impl Target {
    /// Parses a `logtarget` value as fail2ban does (reserved names in any case, else a path;
    /// options in `[...]` after the name are ignored here).
    pub fn parse(s: &str) -> Target {
        let name = s.split('[').next().unwrap_or(s).trim();
        match name.to_ascii_uppercase().as_str() {
            "STDOUT" => Target::Stdout { no_time: false },
            "SYSOUT" => Target::Stdout { no_time: true },
            "STDERR" => Target::Stderr,
            "SYSLOG" => Target::Syslog,
            "SYSTEMD-JOURNAL" => Target::Journal,
            _ => Target::File(PathBuf::from(name)),
        }
    }
}

enum Sink {
    Stdout,
    Stderr,
    Syslog(UnixDatagram),
    Journal(UnixDatagram),
    File(File),
}

struct Inner {
    /// Lines held back during a bulk operation (restoring many bans), written at once.
    bulk: Option<Vec<u8>>,
    /// Nesting depth of `begin_bulk` (the reader's batches may run during a restore).
    bulk_depth: u32,
    /// `%Y-%m-%d %H:%M:%S` of the last second logged (formatting is the costly part).
    stamp: (i64, String),
    level: Level,
    level_text: String,
    target_text: String,
    target: Target,
    syslog_socket: String,
    sink: Sink,
}

/// The server log. Cheap to call from any thread.
pub struct Logger {
    inner: Mutex<Inner>,
    /// The level, also outside the lock: a line below it (a DEBUG line per ban of a
    /// million restored ones) costs no lock.
    min_level: AtomicU8,
    pid: u32,
    /// `pid` as text (every file and console line carries it).
    pid_text: String,
    dropped: AtomicU64,
}

/// An error setting up a log target.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be opened for appending.
    #[error("Unable to log to {path:?}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The syslog or journal socket is missing.
    #[error("Syslog socket file: {path} does not exists or is not a socket")]
    Socket {
        /// The socket path.
        path: String,
    },
    /// An unknown level name.
    #[error("Invalid log level {0:?}")]
    Level(String),
}

fn open_sink(target: &Target, syslog_socket: &str) -> Result<Sink, LogError> {
    Ok(match target {
        Target::Stdout { .. } => Sink::Stdout,
        Target::Stderr => Sink::Stderr,
        Target::Syslog => {
            let path = if syslog_socket == "auto" {
                "/dev/log"
            } else {
                syslog_socket
            };
            let sock =
                UnixDatagram::unbound().map_err(|_| LogError::Socket { path: path.into() })?;
            sock.connect(path)
                .map_err(|_| LogError::Socket { path: path.into() })?;
            Sink::Syslog(sock)
        }
        Target::Journal => {
            let path = "/run/systemd/journal/socket";
            let sock =
                UnixDatagram::unbound().map_err(|_| LogError::Socket { path: path.into() })?;
            sock.connect(path)
                .map_err(|_| LogError::Socket { path: path.into() })?;
            Sink::Journal(sock)
        }
        Target::File(p) => Sink::File(open_append(p)?),
    })
}

fn open_append(p: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|source| LogError::File {
            path: p.to_owned(),
            source,
        })
}

fn write_sink(sink: &mut Sink, data: &[u8]) -> bool {
    match sink {
        Sink::Stdout => std::io::stdout().write_all(data).is_ok(),
        Sink::Stderr => std::io::stderr().write_all(data).is_ok(),
        Sink::File(f) => f.write_all(data).is_ok(),
        _ => true,
    }
}

/// Formats one line the way fail2ban's formatter does (without the trailing newline).
pub fn format_line(
    time: Option<&chrono::DateTime<chrono::Local>>,
    name: &str,
    pid: u32,
    level: Level,
    msg: &str,
    padding: bool,
) -> String {
    let mut s = String::with_capacity(64 + msg.len());
    if let Some(t) = time {
        s.push_str(&t.format("%Y-%m-%d %H:%M:%S,%3f").to_string());
        s.push(' ');
    }
    if padding {
        let mut b = s.into_bytes();
        push_head(&mut b, name, &pid.to_string(), level);
        b.extend_from_slice(msg.as_bytes());
        // (made of `str`s and ASCII: valid UTF-8)
        s = String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into());
    } else {
        s.push_str(&format!("{name}[{pid}]: {} {msg}", level.name()));
    }
    s
}

/// `%Y-%m-%d %H:%M:%S` of Unix second `secs` in the local zone (fail2ban's
/// `time2str` and its log stamps); `None` if the zone has no such time.
pub(crate) fn local_second_text(secs: i64) -> Option<String> {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(secs, 0) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => {
            Some(d.format("%Y-%m-%d %H:%M:%S").to_string())
        }
        chrono::LocalResult::None => None,
    }
}

/// Appends a file or console line's prefix to `buf`: the local time with
/// milliseconds (unless the target has none), then `format_line`'s padded
/// logger name, pid and level. `stamp` caches the text of the last second.
fn line_prefix(
    stamp: &mut (i64, String),
    target: &Target,
    buf: &mut Vec<u8>,
    name: &str,
    pid: &str,
    level: Level,
) {
    if !matches!(target, Target::Stdout { no_time: true }) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if stamp.0 != secs {
            *stamp = (
                secs,
                local_second_text(secs).unwrap_or_else(|| secs.to_string()),
            );
        }
        buf.extend_from_slice(stamp.1.as_bytes());
        let ms = now.subsec_millis().min(999);
        buf.extend_from_slice(&[
            b',',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b' ',
        ]);
    }
    push_head(buf, name, pid, level);
}

/// A padded line's head, fail2ban's `%(name)-24s[%(process)d]: %(levelname)-7s `
/// (`format!("{name:<24}[{pid}]: {level:<7} ")` without the formatting
/// machinery): [`format_line`]'s and the file lines'.
fn push_head(buf: &mut Vec<u8>, name: &str, pid: &str, level: Level) {
    let pad = |buf: &mut Vec<u8>, text: &str, width: usize| {
        buf.extend_from_slice(text.as_bytes());
        let n = text.chars().count();
        buf.resize(buf.len() + width.saturating_sub(n), b' ');
    };
    pad(buf, name, 24);
    buf.push(b'[');
    buf.extend_from_slice(pid.as_bytes());
    buf.extend_from_slice(b"]: ");
    pad(buf, &level.name(), 7);
    buf.push(b' ');
}

impl Logger {
    /// A logger writing to `target` at `level`.
    pub fn new(target: &str, level: &str, syslog_socket: &str) -> Result<Logger, LogError> {
        let lvl = Level::parse(level).ok_or_else(|| LogError::Level(level.into()))?;
        let t = Target::parse(target);
        let sink = open_sink(&t, syslog_socket)?;
        Ok(Logger {
            inner: Mutex::new(Inner {
                bulk: None,
                bulk_depth: 0,
                stamp: (i64::MIN, String::new()),
                level: lvl,
                level_text: level.to_ascii_uppercase(),
                target_text: target.to_owned(),
                target: t,
                syslog_socket: syslog_socket.to_owned(),
                sink,
            }),
            min_level: AtomicU8::new(lvl.0),
            pid: std::process::id(),
            pid_text: std::process::id().to_string(),
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a line at `level` would be written.
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.lock().level
    }

    /// Writes one line from logger `name` (e.g. `fail2ban.actions`).
    pub fn log(&self, name: &str, level: Level, msg: &str) {
        if level.0 < self.min_level.load(Ordering::Relaxed) {
            return;
        }
        let mut g = self.lock();
        if level < g.level {
            return;
        }
        let ok = match &mut g.sink {
            Sink::Stdout | Sink::Stderr | Sink::File(_) => {
                let g = &mut *g;
                let mut own = Vec::new();
                let buf = g.bulk.as_mut().unwrap_or(&mut own);
                line_prefix(&mut g.stamp, &g.target, buf, name, &self.pid_text, level);
                buf.extend_from_slice(msg.as_bytes());
                buf.push(b'\n');
                let data = match &mut g.bulk {
                    Some(b) if b.len() >= 1 << 16 => std::mem::take(b),
                    Some(_) => return,
                    None => own,
                };
                write_sink(&mut g.sink, &data)
            }
            Sink::Syslog(sock) => {
                // <PRI> with facility DAEMON (3): 3*8 + severity.
                let sev = match level.0 {
                    50.. => 2,
                    40..=49 => 3,
                    30..=39 => 4,
                    25..=29 => 5,
                    11..=24 => 6,
                    _ => 7,
                };
                let line = format!(
                    "<{}>{}",
                    24 + sev,
                    format_line(None, name, self.pid, level, msg, false)
                );
                sock.send(line.as_bytes()).is_ok()
            }
            Sink::Journal(sock) => {
                let prio = match level.0 {
                    50.. => 2,
                    40..=49 => 3,
                    30..=39 => 4,
                    25..=29 => 5,
                    11..=24 => 6,
                    _ => 7,
                };
                let text = format_line(None, name, self.pid, level, msg, true);
                let mut d = Vec::with_capacity(text.len() + 64);
                d.extend_from_slice(
                    format!("PRIORITY={prio}\nSYSLOG_IDENTIFIER=fail2ban\n").as_bytes(),
                );
                // MESSAGE may contain newlines: use the binary-safe length form.
                d.extend_from_slice(b"MESSAGE\n");
                d.extend_from_slice(&(text.len() as u64).to_le_bytes());
                d.extend_from_slice(text.as_bytes());
                d.push(b'\n');
                sock.send(&d).is_ok()
            }
        };
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes many lines from logger `name` at one `level`, e.g. a chunk of `Restore Ban`
    /// lines: the same text as [`Logger::log`] per message, with one time stamp and the
    /// line prefix formatted once, straight into one buffer (one write, or the bulk buffer).
    pub fn log_many<'a>(&self, name: &str, level: Level, msgs: impl IntoIterator<Item = &'a str>) {
        let mut g = self.lock();
        if level < g.level {
            return;
        }
        if !matches!(g.sink, Sink::Stdout | Sink::Stderr | Sink::File(_)) {
            drop(g);
            for m in msgs {
                self.log(name, level, m);
            }
            return;
        }
        let g = &mut *g;
        let mut prefix = Vec::with_capacity(64);
        line_prefix(
            &mut g.stamp,
            &g.target,
            &mut prefix,
            name,
            &self.pid_text,
            level,
        );
        let mut own = Vec::new();
        let buf = g.bulk.as_mut().unwrap_or(&mut own);
        for m in msgs {
            buf.extend_from_slice(&prefix);
            buf.extend_from_slice(m.as_bytes());
            buf.push(b'\n');
        }
        let data = if g.bulk.is_some() {
            match &mut g.bulk {
                Some(b) if b.len() >= 1 << 16 => std::mem::replace(b, Vec::with_capacity(1 << 17)),
                _ => return,
            }
        } else {
            own
        };
        if !data.is_empty() && !write_sink(&mut g.sink, &data) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts holding file/console lines back (many lines at once, e.g. restoring bans,
    /// a batch of log lines). Calls nest.
    pub fn begin_bulk(&self) {
        let mut g = self.lock();
        g.bulk_depth += 1;
        if g.bulk.is_none() {
            g.bulk = Some(Vec::with_capacity(1 << 16));
        }
    }

    /// Writes the held-back lines; the outermost call returns to line-by-line writing.
    pub fn end_bulk(&self) {
        let mut g = self.lock();
        g.bulk_depth = g.bulk_depth.saturating_sub(1);
        let data = if g.bulk_depth == 0 {
            g.bulk.take()
        } else {
            g.bulk.as_mut().map(std::mem::take)
        };
        if let Some(data) = data {
            if !data.is_empty() && !write_sink(&mut g.sink, &data) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines lost to write errors (full disk, vanished socket).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `set loglevel`.
    pub fn set_level(&self, level: &str) -> Result<(), LogError> {
        let lvl = Level::parse(level).ok_or_else(|| LogError::Level(level.into()))?;
        let mut g = self.lock();
        g.level = lvl;
        self.min_level.store(lvl.0, Ordering::Relaxed);
        g.level_text = level.to_ascii_uppercase();
        Ok(())
    }

    /// `get loglevel`: the text last set, upper-cased, as fail2ban answers.
    pub fn level_text(&self) -> String {
        self.lock().level_text.clone()
    }

    /// `set logtarget`. On failure the previous target stays.
    pub fn set_target(&self, target: &str) -> Result<(), LogError> {
        let t = Target::parse(target);
        let mut g = self.lock();
        if g.target_text == target {
            return Ok(());
        }
        let sink = open_sink(&t, &g.syslog_socket)?;
        g.sink = sink;
        g.target = t;
        g.target_text = target.to_owned();
        Ok(())
    }

    /// `get logtarget`.
    pub fn target_text(&self) -> String {
        self.lock().target_text.clone()
    }

    /// `set syslogsocket`; reopens the sink when logging to syslog.
    pub fn set_syslog_socket(&self, path: &str) -> Result<(), LogError> {
        let mut g = self.lock();
        g.syslog_socket = path.to_owned();
        if g.target == Target::Syslog {
            g.sink = open_sink(&Target::Syslog, path)?;
        }
        Ok(())
    }

    /// `get syslogsocket`.
    pub fn syslog_socket(&self) -> String {
        self.lock().syslog_socket.clone()
    }

    /// `flushlogs` / SIGUSR1: reopens a file target (after logrotate moved it) and answers
    /// as fail2ban does: `rolled over` for files, `flushed` otherwise.
    pub fn flush(&self) -> &'static str {
        let mut g = self.lock();
        match g.target.clone() {
            Target::File(p) => {
                if let Ok(f) = open_append(&p) {
                    g.sink = Sink::File(f);
                }
                "rolled over"
            }
            _ => {
                let _ = std::io::stdout().flush();
                "flushed"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn line_format_matches_fail2ban() {
        let t = chrono::Local
            .with_ymd_and_hms(2006, 2, 13, 15, 52, 30)
            .unwrap()
            + chrono::Duration::milliseconds(388);
        assert_eq!(
            format_line(
                Some(&t),
                "fail2ban.actions",
                123,
                Level::NOTICE,
                "[sshd] Ban 1.2.3.4",
                true
            ),
            "2006-02-13 15:52:30,388 fail2ban.actions        [123]: NOTICE  [sshd] Ban 1.2.3.4"
        );
        assert_eq!(
            format_line(None, "fail2ban.server", 9, Level::INFO, "x", false),
            "fail2ban.server[9]: INFO x"
        );
    }

    #[test]
    fn log_many_writes_what_log_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f2b.log");
        let log = Logger::new(&path.display().to_string(), "INFO", "auto").unwrap();
        log.log("fail2ban.actions", Level::NOTICE, "[a] Restore Ban 1.2.3.4");
        log.log_many(
            "fail2ban.actions",
            Level::NOTICE,
            ["[a] Restore Ban 1.2.3.4", "[a] Restore Ban 2001:db8::1"],
        );
        // Below the level: nothing, in both forms.
        log.log_many("fail2ban.actions", Level::DEBUG, ["hidden"]);
        log.log("fail2ban.actions", Level::DEBUG, "hidden");
        // In bulk mode the lines wait for end_bulk, in order with single lines.
        log.begin_bulk();
        log.log_many(
            "fail2ban.actions",
            Level::NOTICE,
            ["[b] Restore Ban 5.6.7.8"],
        );
        log.log("fail2ban.jail", Level::INFO, "Jail 'b' started");
        log.end_bulk();
        let text = std::fs::read_to_string(&path).unwrap();
        // Without the time stamps (24 characters), the lines are fail2ban's.
        let pid = std::process::id();
        let lines: Vec<String> = text.lines().map(|l| l[24..].to_owned()).collect();
        let want = |name: &str, lvl: &str, msg: &str| format!("{name:<24}[{pid}]: {lvl:<7} {msg}");
        assert_eq!(
            lines,
            [
                want("fail2ban.actions", "NOTICE", "[a] Restore Ban 1.2.3.4"),
                want("fail2ban.actions", "NOTICE", "[a] Restore Ban 1.2.3.4"),
                want("fail2ban.actions", "NOTICE", "[a] Restore Ban 2001:db8::1"),
                want("fail2ban.actions", "NOTICE", "[b] Restore Ban 5.6.7.8"),
                want("fail2ban.jail", "INFO", "Jail 'b' started"),
            ]
        );
        assert!(text.lines().all(|l| l.as_bytes()[19] == b','), "{text}");
        // The stamp is the local time now, with milliseconds.
        let before = chrono::Local::now().naive_local() - chrono::Duration::seconds(60);
        for l in text.lines() {
            let t = chrono::NaiveDateTime::parse_from_str(&l[..23], "%Y-%m-%d %H:%M:%S,%3f")
                .unwrap_or_else(|e| panic!("{l}: {e}"));
            assert!(t > before && t <= chrono::Local::now().naive_local(), "{l}");
        }
    }

    #[test]
    fn levels_parse_like_fail2ban() {
        assert_eq!(Level::parse("notice"), Some(Level::NOTICE));
        assert_eq!(Level::parse("25"), Some(Level::NOTICE));
        assert_eq!(
            Level::parse("TRACEDEBUG").map(Level::name),
            Some("TRACE".into())
        );
        assert_eq!(Level::parse("bogus"), None);
    }

    #[test]
    fn file_target_filters_by_level_and_reopens() {
        let dir = std::env::temp_dir().join(format!("f2b-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f2b.log");
        let log = Logger::new(p.to_str().unwrap(), "NOTICE", "auto").unwrap();
        log.log("fail2ban.filter", Level::INFO, "hidden");
        log.log("fail2ban.actions", Level::NOTICE, "[sshd] Ban 1.2.3.4");
        std::fs::rename(&p, dir.join("f2b.log.1")).unwrap();
        assert_eq!(log.flush(), "rolled over");
        log.log("fail2ban.actions", Level::NOTICE, "[sshd] Unban 1.2.3.4");
        let old = std::fs::read_to_string(dir.join("f2b.log.1")).unwrap();
        let new = std::fs::read_to_string(&p).unwrap();
        assert!(!old.contains("hidden"));
        assert!(
            old.trim_end().ends_with("NOTICE  [sshd] Ban 1.2.3.4"),
            "{old}"
        );
        assert!(
            new.trim_end().ends_with("NOTICE  [sshd] Unban 1.2.3.4"),
            "{new}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
