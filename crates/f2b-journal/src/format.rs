//! How fail2ban turns a journal entry into the line its filters see.
//!
//! fail2ban (filtersystemd.py, `formatJournalEntry`) builds
//! `[_HOSTNAME] IDENT[PID]: MESSAGE` where IDENT is `SYSLOG_IDENTIFIER`
//! or else `_COMM`, PID is `SYSLOG_PID` or else `_PID`, a `kernel:` ident
//! is followed by the monotonic time as `[%12.6f]`, several `MESSAGE`
//! values are joined by spaces, and newlines in the result become the two
//! characters `\n`. Field values reach it through python-systemd's
//! converters: PID fields through `int()` (base 10, with Python's
//! whitespace/sign/underscore rules; 0 counts as absent), text fields as
//! UTF-8 when valid and otherwise decoded with the jail's encoding with
//! replacement characters. This module reproduces that byte for byte.

use f2b_tail::LogEncoding;
use std::borrow::Cow;

/// The fields of one entry that the line is made of.
#[derive(Debug, Default, Clone)]
pub struct EntryFields<'a> {
    /// `_HOSTNAME`.
    pub hostname: Option<&'a [u8]>,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: Option<&'a [u8]>,
    /// `_COMM`.
    pub comm: Option<&'a [u8]>,
    /// `SYSLOG_PID`.
    pub syslog_pid: Option<&'a [u8]>,
    /// `_PID`.
    pub pid: Option<&'a [u8]>,
    /// Every `MESSAGE` value, in entry order.
    pub messages: Vec<&'a [u8]>,
    /// `_SOURCE_REALTIME_TIMESTAMP`.
    pub source_realtime: Option<&'a [u8]>,
    /// `_SOURCE_MONOTONIC_TIMESTAMP`.
    pub source_monotonic: Option<&'a [u8]>,
    /// The entry's realtime (µs), from the journal.
    pub realtime_usec: u64,
    /// The entry's monotonic time (µs), from the journal.
    pub monotonic_usec: u64,
}

/// Python's `bytes.decode()` then `uni_decode(v, enc)`: valid UTF-8 as is,
/// anything else with the jail's encoding (replacement characters for
/// invalid input; the flag says so).
pub(crate) fn py_text<'a>(v: &'a [u8], enc: &LogEncoding) -> (Cow<'a, str>, bool) {
    match std::str::from_utf8(v) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => enc.decode(v),
    }
}

fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Digits with Python's underscore rule (single `_` between digits).
fn py_digits(s: &[u8], radix: u32) -> Option<Vec<u8>> {
    if s.is_empty() || s[0] == b'_' || s[s.len() - 1] == b'_' {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut prev_us = false;
    for &b in s {
        if b == b'_' {
            if prev_us {
                return None;
            }
            prev_us = true;
            continue;
        }
        prev_us = false;
        if !(b as char).is_digit(radix) {
            return None;
        }
        out.push(b);
    }
    Some(out)
}

fn trim_py(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| !is_py_space(b)).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| !is_py_space(b))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn split_sign(v: &[u8]) -> (bool, &[u8]) {
    match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    }
}

fn signed_decimal(neg: bool, digits: &[u8]) -> String {
    let first = digits.iter().position(|&b| b != b'0');
    match first {
        None => "0".to_owned(),
        Some(i) => {
            let d = String::from_utf8_lossy(&digits[i..]);
            if neg {
                format!("-{d}")
            } else {
                d.into_owned()
            }
        }
    }
}

/// Python's `int(bytes)`: the value in decimal, or `None` on ValueError.
pub(crate) fn py_int10(v: &[u8]) -> Option<String> {
    let (neg, rest) = split_sign(trim_py(v));
    let digits = py_digits(rest, 10)?;
    Some(signed_decimal(neg, &digits))
}

/// Python's `int(bytes, 0)` (prefixes 0x/0o/0b; no leading zeros in
/// decimal). Values beyond 128 bits are treated as unparsable.
fn py_int0(v: &[u8]) -> Option<String> {
    let (neg, rest) = split_sign(trim_py(v));
    let lower: Vec<u8> = rest.iter().map(u8::to_ascii_lowercase).collect();
    let (radix, body) = if lower.len() > 2 && lower[0] == b'0' && b"xob".contains(&lower[1]) {
        let radix = match lower[1] {
            b'x' => 16,
            b'o' => 8,
            _ => 2,
        };
        let body = &rest[2..];
        // one optional underscore right after the prefix
        let body = body.strip_prefix(b"_").unwrap_or(body);
        (radix, body)
    } else {
        let digits = py_digits(rest, 10)?;
        if digits.len() > 1 && digits[0] == b'0' && digits.iter().any(|&b| b != b'0') {
            return None;
        }
        return Some(signed_decimal(neg, &digits));
    };
    let digits = py_digits(body, radix)?;
    let s = std::str::from_utf8(&digits).ok()?;
    let n = u128::from_str_radix(s, radix).ok()?;
    Some(if neg && n != 0 {
        format!("-{n}")
    } else {
        n.to_string()
    })
}

/// Python's `repr(bytes)`.
fn py_bytes_repr(v: &[u8]) -> String {
    let quote = if v.contains(&b'\'') && !v.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(v.len() + 3);
    s.push('b');
    s.push(quote);
    for &b in v {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if b as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote);
    s
}

/// The `[pid]` suffix for a PID field value, or `None` when Python treats
/// the value as absent (empty, or an integer 0).
fn pid_suffix(v: &[u8]) -> Option<String> {
    if let Some(n) = py_int10(v) {
        return (n != "0").then(|| format!("[{n}]"));
    }
    if v.is_empty() {
        return None;
    }
    Some(match py_int0(v) {
        Some(n) => format!("[{n}]"),
        None => format!("[{}]", py_bytes_repr(v)),
    })
}

/// `"%12.6f" % (usec / 1e6)`.
fn seconds_12_6(usec: i128) -> String {
    let neg = usec < 0;
    let a = usec.unsigned_abs();
    let s = format!(
        "{}{}.{:06}",
        if neg { "-" } else { "" },
        a / 1_000_000,
        a % 1_000_000
    );
    format!("{s:>12}")
}

/// What formatting an entry produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Formatted {
    /// The line as fail2ban's filters see it.
    pub text: String,
    /// Replacement characters were inserted (bytes invalid in the encoding).
    pub lossy: bool,
}

/// Builds fail2ban's line for an entry. `None` when the entry has no
/// `MESSAGE` (fail2ban would process a line without message text; f2b
/// skips such entries and counts them).
pub fn format_line(f: &EntryFields<'_>, enc: &LogEncoding) -> Option<Formatted> {
    if f.messages.is_empty() {
        return None;
    }
    let mut lossy = false;
    let mut out = String::with_capacity(128);
    let mut text = |v: &[u8], out: &mut String| {
        let (s, l) = py_text(v, enc);
        lossy |= l;
        out.push_str(&s);
    };
    if let Some(h) = f.hostname.filter(|v| !v.is_empty()) {
        text(h, &mut out);
        out.push(' ');
    }
    let ident = f
        .identifier
        .filter(|v| !v.is_empty())
        .or(f.comm.filter(|v| !v.is_empty()));
    if let Some(id) = ident {
        let start = out.len();
        text(id, &mut out);
        let pid = f
            .syslog_pid
            .and_then(pid_suffix)
            .or_else(|| f.pid.and_then(pid_suffix));
        if let Some(p) = pid {
            out.push_str(&p);
        }
        out.push(':');
        if &out[start..] == "kernel:" {
            let mono = f
                .source_monotonic
                .and_then(py_int10)
                .and_then(|s| s.parse::<i128>().ok())
                .unwrap_or(i128::from(f.monotonic_usec));
            out.push(' ');
            out.push('[');
            out.push_str(&seconds_12_6(mono));
            out.push(']');
        }
        out.push(' ');
    }
    for (i, m) in f.messages.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        text(m, &mut out);
    }
    let text = if out.contains('\n') {
        out.replace('\n', "\\n")
    } else {
        out
    };
    Some(Formatted { text, lossy })
}

/// The failure time of an entry in µs: `_SOURCE_REALTIME_TIMESTAMP` when it
/// is a usable integer, else the journal's realtime.
pub fn entry_usec(f: &EntryFields<'_>) -> u64 {
    f.source_realtime
        .and_then(py_int10)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&t| t > 0 && t < 253_402_300_800_000_000)
        .unwrap_or(f.realtime_usec)
}

/// fail2ban's float time for µs: `mktime(...) + microsecond / 1e6`.
pub fn usec_to_time(usec: u64) -> f64 {
    (usec / 1_000_000) as f64 + (usec % 1_000_000) as f64 / 1.0e6
}

/// `datetime.isoformat()` of the local time (with UTC offset) for µs,
/// as fail2ban stores it with the journal position.
pub fn iso_local(usec: u64) -> String {
    let secs = (usec / 1_000_000) as libc::time_t;
    let micro = usec % 1_000_000;
    // SAFETY: zeroed tm is a valid out value; localtime_r only writes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a local time_t and tm.
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if !ok {
        return String::new();
    }
    let off = tm.tm_gmtoff;
    let (sign, off) = if off < 0 { ('-', -off) } else { ('+', off) };
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    if micro != 0 {
        s.push_str(&format!(".{micro:06}"));
    }
    s.push_str(&format!("{sign}{:02}:{:02}", off / 3600, (off % 3600) / 60));
    if off % 60 != 0 {
        s.push_str(&format!(":{:02}", off % 60));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>() -> EntryFields<'a> {
        EntryFields {
            hostname: Some(b"host"),
            identifier: Some(b"sshd"),
            syslog_pid: Some(b"123"),
            pid: Some(b"99"),
            messages: vec![b"Failed password"],
            ..EntryFields::default()
        }
    }

    fn line(f: &EntryFields<'_>) -> String {
        format_line(f, &LogEncoding::Utf8).unwrap().text
    }

    #[test]
    fn syslog_style() {
        assert_eq!(line(&fields()), "host sshd[123]: Failed password");
        let mut f = fields();
        f.syslog_pid = Some(b"0");
        assert_eq!(line(&f), "host sshd[99]: Failed password");
        f.pid = None;
        assert_eq!(line(&f), "host sshd: Failed password");
        f.identifier = Some(b"");
        f.comm = Some(b"sshd-session");
        assert_eq!(line(&f), "host sshd-session: Failed password");
        f.comm = None;
        f.hostname = None;
        assert_eq!(line(&f), "Failed password");
    }

    #[test]
    fn pid_python_int_rules() {
        for (v, want) in [
            (&b" 0012 "[..], Some("[12]")),
            (b"-5", Some("[-5]")),
            (b"1_000", Some("[1000]")),
            (b"0x10", Some("[16]")),
            (b"0X_1f", Some("[31]")),
            (b"abc", Some("[b'abc']")),
            (b"it's", Some("[b\"it's\"]")),
            (b"\x01\\", Some("[b'\\x01\\\\']")),
            (b"", None),
            (b"0", None),
            (b"-0", None),
            (b"1__0", Some("[b'1__0']")),
        ] {
            assert_eq!(pid_suffix(v).as_deref(), want, "{v:?}");
        }
    }

    #[test]
    fn kernel_and_messages() {
        let f = EntryFields {
            identifier: Some(b"kernel"),
            messages: vec![b"a\nb", b"c"],
            monotonic_usec: 5_000_001,
            ..EntryFields::default()
        };
        assert_eq!(line(&f), "kernel: [    5.000001] a\\nb c");
        let f = EntryFields {
            source_monotonic: Some(b"123456789012"),
            ..f
        };
        assert_eq!(line(&f), "kernel: [123456.789012] a\\nb c");
        assert!(format_line(&EntryFields::default(), &LogEncoding::Utf8).is_none());
    }

    #[test]
    fn binary_is_decoded_lossily() {
        let f = EntryFields {
            messages: vec![b"bad \xff byte"],
            ..EntryFields::default()
        };
        let r = format_line(&f, &LogEncoding::Utf8).unwrap();
        assert_eq!(r.text, "bad \u{fffd} byte");
        assert!(r.lossy);
        let r = format_line(&f, &LogEncoding::Latin1).unwrap();
        assert_eq!(r.text, "bad \u{ff} byte");
    }

    #[test]
    fn times() {
        assert_eq!(usec_to_time(1_700_000_000_250_000), 1_700_000_000.25);
        let f = EntryFields {
            source_realtime: Some(b"1700000000000001"),
            realtime_usec: 5,
            ..EntryFields::default()
        };
        assert_eq!(entry_usec(&f), 1_700_000_000_000_001);
        let f = EntryFields {
            source_realtime: Some(b"x"),
            ..f
        };
        assert_eq!(entry_usec(&f), 5);
    }
}

/// `pid_suffix` against Python itself: python-systemd's `int` converter
/// followed by fail2ban's `[%i]` / `int(v, 0)` / `[%s]` fallbacks.
#[cfg(test)]
mod python_oracle {
    use super::pid_suffix;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};
    use std::io::Write;
    use std::process::{Command, Stdio};

    const SCRIPT: &str = r#"
import sys
for line in sys.stdin:
    v = bytes.fromhex(line.strip())
    try:
        v = int(v)
    except ValueError:
        pass
    if not v:
        print("-")
        continue
    try:
        s = "[%i]" % v
    except TypeError:
        try:
            s = "[%i]" % int(v, 0)
        except (TypeError, ValueError):
            s = "[%s]" % v
    print(s.encode("utf-8").hex())
"#;

    #[test]
    fn pid_suffix_equals_python() {
        let alphabet: Vec<u8> = b"0123456789_ -+xXoObBafAF'\"\\\t\n\x00\xff".to_vec();
        let mut runner = TestRunner::new(Config::with_cases(1));
        let strat = proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(alphabet), 0..8),
            3000,
        );
        let mut inputs = strat.new_tree(&mut runner).expect("inputs").current();
        for fixed in [
            &b"0x1f"[..],
            b"007",
            b"0_7",
            b"0b101",
            b"0o17",
            b" 12 ",
            b"-0",
            b"",
        ] {
            inputs.push(fixed.to_vec());
        }
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 is needed as the oracle of this test");
        let mut input = String::new();
        for v in &inputs {
            for b in v {
                input.push_str(&format!("{b:02x}"));
            }
            input.push('\n');
        }
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("feed python");
        let out = child.wait_with_output().expect("python");
        assert!(out.status.success(), "python oracle failed");
        let text = String::from_utf8(out.stdout).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), inputs.len());
        for (v, l) in inputs.iter().zip(lines) {
            let want = if l == "-" {
                None
            } else {
                let bytes: Vec<u8> = (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                    .collect();
                Some(String::from_utf8(bytes).expect("utf8"))
            };
            assert_eq!(pid_suffix(v), want, "input {v:?}");
        }
    }
}
