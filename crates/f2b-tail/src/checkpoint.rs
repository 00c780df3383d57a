//! Checkpoints in fail2ban's format: `lastfilepos` + `firstlinemd5`.
//!
//! fail2ban stores, per (jail, path), the byte offset after the last line it
//! processed and a hex digest of the file's first line in the column
//! `firstlinemd5`. Despite the name, under Python 3 that digest is **SHA-1**:
//! fail2ban probes `hashlib.md5(' ')` with a `str`, which raises `TypeError`
//! on Python 3, and its fallback is `hashlib.sha1` (verified against the
//! installed fail2ban 1.0.2 by the `oracle` integration test). The digest is
//! taken over the raw bytes of the first line *including* its line end
//! (`b"first line\n"`), and only when that line is complete; a file without a
//! complete first line has the digest `""`. On start a stored position is
//! used only when the digest still matches (otherwise the file was rotated)
//! and the file is at least that long.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use sha1::{Digest, Sha1};

/// How far the first line is scanned for its end before giving up (the file
/// is then treated as having no complete first line, digest `""`). fail2ban
/// has no limit; this only matters for files whose first line is longer than
/// this, and keeps a binary file without newlines from being rescanned in full.
pub const FIRST_LINE_SCAN_LIMIT: u64 = 16 * 1024 * 1024;

/// A resumable position in a log file, as fail2ban persists it in the `logs`
/// table (`lastfilepos`, `firstlinemd5`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Checkpoint {
    /// Offset just after the last complete line handed out (`lastfilepos`).
    pub pos: u64,
    /// Hex digest (SHA-1, as fail2ban computes it on Python 3; see the module
    /// docs) of the first line including its `\n`, or `""` when the file had
    /// no complete first line (`firstlinemd5`).
    pub firstlinemd5: String,
}

/// The first line's identity: its digest and its length in bytes (including
/// the line end), so that it can be re-verified with one small read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FirstLine {
    pub(crate) digest: String,
    pub(crate) len: u64,
}

impl FirstLine {
    pub(crate) fn is_known(&self) -> bool {
        !self.digest.is_empty()
    }
}

/// Computes the first-line digest of an open file without moving its cursor
/// and without buffering the line (it may be megabytes long).
pub(crate) fn first_line(file: &File) -> io::Result<FirstLine> {
    let mut hasher = Sha1::new();
    let mut buf = [0u8; 8192];
    let mut off = 0u64;
    while off < FIRST_LINE_SCAN_LIMIT {
        let n = read_at_retry(file, &mut buf, off)?;
        if n == 0 {
            return Ok(FirstLine::default());
        }
        let chunk = &buf[..n];
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            hasher.update(&chunk[..=i]);
            return Ok(FirstLine {
                digest: hex(&hasher.finalize()),
                len: off + i as u64 + 1,
            });
        }
        hasher.update(chunk);
        off += n as u64;
    }
    Ok(FirstLine::default())
}

/// Re-checks a known first line with a single positioned read. Returns `true`
/// when the file still starts with the same line.
pub(crate) fn first_line_matches(file: &File, known: &FirstLine) -> io::Result<bool> {
    if !known.is_known() {
        return Ok(true);
    }
    if known.len > 64 * 1024 {
        // Long first lines are rare; hash them in a streaming fashion.
        return Ok(first_line(file)? == *known);
    }
    let mut buf = vec![0u8; known.len as usize];
    let mut got = 0usize;
    while got < buf.len() {
        let n = read_at_retry(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    if buf.last() != Some(&b'\n') || memchr::memchr(b'\n', &buf[..buf.len() - 1]).is_some() {
        return Ok(false);
    }
    Ok(hex(&Sha1::digest(&buf)) == known.digest)
}

fn read_at_retry(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> File {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(content).expect("write");
        f
    }

    #[test]
    fn digest_covers_line_end() {
        // sha1(b"hello\n"), what fail2ban stores as `firstlinemd5`.
        let f = file_with(b"hello\nworld\n");
        let fl = first_line(&f).expect("hash");
        assert_eq!(fl.digest, "f572d396fae9206628714fb2ce00f72e94f2258f");
        assert_eq!(fl.len, 6);
        assert!(first_line_matches(&f, &fl).expect("verify"));
    }

    #[test]
    fn incomplete_first_line_has_empty_digest() {
        assert_eq!(
            first_line(&file_with(b"no newline")).expect("hash").digest,
            ""
        );
        assert_eq!(first_line(&file_with(b"")).expect("hash").digest, "");
    }

    #[test]
    fn changed_first_line_is_noticed() {
        let fl = first_line(&file_with(b"one\ntwo\n")).expect("hash");
        assert!(!first_line_matches(&file_with(b"uno\ntwo\n"), &fl).expect("verify"));
        assert!(!first_line_matches(&file_with(b"on"), &fl).expect("verify"));
        assert!(!first_line_matches(&file_with(b"o\nnetwo\n"), &fl).expect("verify"));
    }
}
