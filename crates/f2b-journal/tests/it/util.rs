//! Test helpers: journal export format, real journal files written by
//! `systemd-journal-remote`, and fail2ban's own formatting as oracle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
pub const BOOT: &str = "0123456789abcdef0123456789abcdef";

/// One journal entry in export form.
#[derive(Debug, Clone, Default)]
pub struct Ent {
    pub realtime: u64,
    pub monotonic: u64,
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Ent {
    pub fn new(realtime: u64) -> Ent {
        Ent {
            realtime,
            monotonic: realtime % 1_000_000_000_000,
            fields: Vec::new(),
        }
    }

    pub fn f(mut self, k: &str, v: impl AsRef<[u8]>) -> Ent {
        self.fields.push((k.to_owned(), v.as_ref().to_vec()));
        self
    }

    /// An sshd-style entry from a `host ident[pid]: message` line.
    pub fn syslog(realtime: u64, unit: &str, line: &str) -> Ent {
        let (host, rest) = line.split_once(' ').expect("host");
        let (ident, msg) = rest.split_once(": ").expect("ident");
        let (name, pid) = match ident.split_once('[') {
            Some((n, p)) => (n, Some(p.trim_end_matches(']'))),
            None => (ident, None),
        };
        let mut e = Ent::new(realtime)
            .f("_HOSTNAME", host)
            .f("SYSLOG_IDENTIFIER", name)
            .f("_SYSTEMD_UNIT", unit)
            .f("_COMM", name);
        if let Some(p) = pid {
            e = e.f("SYSLOG_PID", p).f("_PID", p);
        }
        e.f("MESSAGE", msg)
    }

    pub fn export(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("__REALTIME_TIMESTAMP={}\n", self.realtime).as_bytes());
        out.extend_from_slice(format!("__MONOTONIC_TIMESTAMP={}\n", self.monotonic).as_bytes());
        out.extend_from_slice(format!("_BOOT_ID={BOOT}\n").as_bytes());
        for (k, v) in &self.fields {
            if v.contains(&b'\n') || std::str::from_utf8(v).is_err() {
                out.extend_from_slice(k.as_bytes());
                out.push(b'\n');
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                out.extend_from_slice(v);
                out.push(b'\n');
            } else {
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                out.extend_from_slice(v);
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
}

fn remote_cmd(out: &Path) -> Command {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing: install the Debian package systemd-journal-remote"
    );
    let mut c = Command::new(JOURNAL_REMOTE);
    c.arg(format!("--output={}", out.display()))
        .arg("--split-mode=none")
        .arg("--compress=no")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Appends entries to a journal file (created if missing) with
/// systemd-journal-remote.
pub fn write_journal(path: &Path, entries: &[Ent]) {
    let mut buf = Vec::new();
    for e in entries {
        e.export(&mut buf);
    }
    let mut child = remote_cmd(path).spawn().expect("spawn journal-remote");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&buf)
        .expect("feed journal-remote");
    let st = child.wait().expect("journal-remote");
    assert!(st.success(), "journal-remote failed: {st}");
}

/// A running systemd-journal-remote appending what it is fed.
pub struct LiveWriter {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl LiveWriter {
    pub fn start(path: &Path) -> LiveWriter {
        let mut child = remote_cmd(path).spawn().expect("spawn journal-remote");
        let stdin = child.stdin.take();
        LiveWriter { child, stdin }
    }

    pub fn send(&mut self, e: &Ent) {
        let mut buf = Vec::new();
        e.export(&mut buf);
        let s = self.stdin.as_mut().expect("stdin");
        s.write_all(&buf).expect("write");
        s.flush().expect("flush");
    }
}

impl Drop for LiveWriter {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

/// fail2ban's formatting of every entry of a journal file, through
/// /usr/bin/python3 with fail2ban and python3-systemd: (line, time, ISO
/// time) triples.
pub fn oracle(files: &[PathBuf]) -> Vec<(String, f64, String)> {
    let script = r#"
import sys, json
from fail2ban.server.filtersystemd import FilterSystemd
f = FilterSystemd(None, journalfiles=" ".join(sys.argv[1:]))
j = f.getJournalReader()
while True:
    e = j.get_next()
    if not e:
        break
    line, t = f.formatJournalEntry(e)
    print(json.dumps([line[2], t, line[1].strip()]))
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(files)
        .output()
        .expect("run /usr/bin/python3 (needed as oracle)");
    assert!(
        out.status.success(),
        "the fail2ban oracle failed (needs Debian fail2ban and python3-systemd): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(parse_triple)
        .collect()
}

/// Parses `["text", number, "iso"]` as printed by json.dumps.
fn parse_triple(l: &str) -> (String, f64, String) {
    let (iso_start, iso) = {
        let end = l.rfind('"').expect("iso end");
        let start = l[..end].rfind('"').expect("iso start");
        (start, l[start + 1..end].to_owned())
    };
    let (text, t) = parse_pair(&format!(
        "{}]",
        l[..iso_start].trim_end().trim_end_matches(',')
    ));
    (text, t, iso)
}

/// Parses `["text", number]` as printed by json.dumps (ASCII escapes).
fn parse_pair(l: &str) -> (String, f64) {
    let b = l.as_bytes();
    assert!(l.starts_with("[\""), "{l}");
    let mut i = 2;
    let mut s = String::new();
    while b[i] != b'"' {
        if b[i] == b'\\' {
            i += 1;
            match b[i] {
                b'n' => s.push('\n'),
                b't' => s.push('\t'),
                b'r' => s.push('\r'),
                b'b' => s.push('\u{8}'),
                b'f' => s.push('\u{c}'),
                b'u' => {
                    let mut cp = u32::from_str_radix(&l[i + 1..i + 5], 16).expect("hex");
                    i += 4;
                    if (0xD800..0xDC00).contains(&cp) {
                        let lo = u32::from_str_radix(&l[i + 3..i + 7], 16).expect("hex");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                    s.push(char::from_u32(cp).expect("char"));
                }
                c => s.push(c as char),
            }
        } else {
            s.push(b[i] as char);
        }
        i += 1;
    }
    let rest = l[i + 1..].trim_start_matches(',').trim();
    let num = rest.trim_end_matches(']').trim();
    (s, num.parse().expect("time"))
}

/// fail2ban's sshd-journal sample lines (read at test time, not copied).
pub fn sshd_sample_lines() -> Vec<String> {
    let p = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd-journal";
    let text = std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{p}: {e} (install Debian fail2ban: it is the test data)"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Descriptors of this process open on files under `dir` (other tests run
/// in parallel threads, so the process-wide count is not usable).
pub fn open_fds_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    rd.flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir)))
        .count()
}
