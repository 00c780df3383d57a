//! Shared helpers: a log writer that reopens its file like a logger after
//! rotation, and line collectors.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use f2b_tail::{FileTail, Start, TailOptions};

/// Appends to a path, reopening it on demand (O_APPEND, create).
pub struct Writer {
    pub path: PathBuf,
    file: Option<File>,
}

impl Writer {
    pub fn new(path: &Path) -> Writer {
        Writer {
            path: path.to_path_buf(),
            file: None,
        }
    }

    /// Writes raw bytes through the currently held descriptor (opening the
    /// path if none is held).
    pub fn raw(&mut self, bytes: &[u8]) {
        if self.file.is_none() {
            self.reopen();
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(bytes).expect("write log");
            f.flush().expect("flush log");
        }
    }

    /// Writes `line N\n` for each N in `range`.
    pub fn lines(&mut self, range: std::ops::RangeInclusive<u32>) {
        let mut s = String::new();
        for i in range {
            s.push_str(&format!("line {i}\n"));
        }
        self.raw(s.as_bytes());
    }

    /// Drops the held descriptor and opens the path again (a logger's
    /// reaction to SIGHUP after rotation).
    pub fn reopen(&mut self) {
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .expect("open log for append"),
        );
    }

    /// Forgets the descriptor; the next write reopens.
    pub fn close(&mut self) {
        self.file = None;
    }
}

pub fn opts() -> TailOptions {
    TailOptions {
        rotate_grace: Duration::ZERO,
        ..TailOptions::default()
    }
}

pub fn open(path: &Path, start: Start) -> FileTail {
    FileTail::open(path, start, opts()).expect("open tail")
}

/// Reads what is available and returns the texts.
pub fn read(tail: &mut FileTail) -> Vec<String> {
    let mut v = Vec::new();
    tail.read_lines(&mut |l| v.push(l.text.to_owned()))
        .expect("read_lines");
    v
}

/// `line a` ..= `line b` as strings.
pub fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

/// Parses the numbers back out of `line N` texts.
pub fn numbers(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            l.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect()
}
