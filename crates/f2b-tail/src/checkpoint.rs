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

/// Up to this length a first line is re-verified whole (one read and a digest);
/// a longer one by its edges (see [`FirstLine::edges`]).
const VERIFY_WHOLE_LIMIT: u64 = 64 * 1024;
/// Bytes kept of each end of a long first line.
const EDGE: usize = 32 * 1024;

/// The first line's identity: its digest and its length in bytes (including
/// the line end), so that it can be re-verified with one small read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FirstLine {
    pub(crate) digest: String,
    pub(crate) len: u64,
    /// For a first line longer than [`VERIFY_WHOLE_LIMIT`]: its first and last
    /// [`EDGE`] bytes. The check for copytruncate runs at every read of the file;
    /// hashing a 10 MiB first line there each time made every read of such a file
    /// cost the whole line again (seconds per read in a debug build). A rewrite that
    /// keeps the length and both edges of such a line but changes its middle is not
    /// seen by that check (a shrink still is).
    pub(crate) edges: Vec<u8>,
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
    // The line's first EDGE bytes, then a ring of its last EDGE bytes.
    let mut head: Vec<u8> = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    while off < FIRST_LINE_SCAN_LIMIT {
        let n = read_at_retry(file, &mut buf, off)?;
        if n == 0 {
            return Ok(FirstLine::default());
        }
        let chunk = &buf[..n];
        let end = memchr::memchr(b'\n', chunk);
        let part = &chunk[..end.map_or(n, |i| i + 1)];
        hasher.update(part);
        let take = (EDGE - head.len()).min(part.len());
        head.extend_from_slice(&part[..take]);
        tail.extend(&part[take..]);
        if tail.len() > EDGE {
            tail.drain(..tail.len() - EDGE);
        }
        if let Some(i) = end {
            let len = off + i as u64 + 1;
            let edges = if len > VERIFY_WHOLE_LIMIT {
                head.extend(tail);
                head
            } else {
                Vec::new()
            };
            return Ok(FirstLine {
                digest: hex(&hasher.finalize()),
                len,
                edges,
            });
        }
        off += n as u64;
    }
    Ok(FirstLine::default())
}

/// Reads exactly `buf.len()` bytes at `off`; `false` at an early end of file.
fn read_exact_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<bool> {
    let mut got = 0usize;
    while got < buf.len() {
        let n = read_at_retry(file, &mut buf[got..], off + got as u64)?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    Ok(true)
}

/// Re-checks a known first line with a single positioned read. Returns `true`
/// when the file still starts with the same line.
pub(crate) fn first_line_matches(file: &File, known: &FirstLine) -> io::Result<bool> {
    if !known.is_known() {
        return Ok(true);
    }
    if known.len > VERIFY_WHOLE_LIMIT {
        // Its two edges, and the line end where it was.
        let mut buf = vec![0u8; 2 * EDGE];
        let (head, tail) = buf.split_at_mut(EDGE);
        return Ok(read_exact_at(file, head, 0)?
            && read_exact_at(file, tail, known.len - EDGE as u64)?
            && buf == known.edges);
    }
    let mut buf = vec![0u8; known.len as usize];
    if !read_exact_at(file, &mut buf, 0)? {
        return Ok(false);
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
    fn long_first_line_is_verified_by_its_edges() {
        let mut line: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        line.push(b'\n');
        let mut content = line.clone();
        content.extend_from_slice(b"second\n");
        let f = file_with(&content);
        let first = first_line(&f).unwrap();
        // The digest is still the whole line's, as fail2ban stores it.
        assert_eq!(first.digest, hex(&Sha1::digest(&line)));
        assert_eq!(first.len, line.len() as u64);
        assert_eq!(first.edges.len(), 2 * EDGE);
        assert!(first_line_matches(&f, &first).unwrap());
        // A changed byte in either edge, or the line end moved: not the same line.
        for at in [0, 100, line.len() - 2, line.len() - EDGE] {
            let mut c = content.clone();
            c[at] = b'#';
            assert!(
                !first_line_matches(&file_with(&c), &first).unwrap(),
                "byte {at}"
            );
        }
        let mut c = content.clone();
        c.insert(100_000, b'x');
        assert!(!first_line_matches(&file_with(&c), &first).unwrap());
        // Shorter than the line: not the same.
        assert!(!first_line_matches(&file_with(&content[..150_000]), &first).unwrap());
        // A short first line keeps no edges.
        assert!(first_line(&file_with(b"short\n")).unwrap().edges.is_empty());
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
