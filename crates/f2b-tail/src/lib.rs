//! Log sources for f2b: follow fail2ban `logpath`s exactly, across rotations.
//!
//! The crate knows nothing about jails, regexes or time stamps. It turns a
//! set of paths into a stream of lines and positions:
//!
//! * [`FileTail`] follows one path (sync core): start at head, tail or a
//!   stored [`Checkpoint`]; `read_lines` hands out every complete line once,
//!   in order, across rename+create, copytruncate and delete+recreate
//!   rotations; overlong lines are cut at [`TailOptions::max_line_bytes`];
//!   text is decoded with the jail's [`LogEncoding`] and never fails.
//! * [`Watcher`] says which files may have changed (inotify on the files'
//!   directories, with a stat loop as fallback and safety net).
//! * [`Tailer`] is the server's registry: globs re-evaluated, one reader per
//!   file however many jails follow it, lines fanned out per
//!   [`SubscriberId`], checkpoints per (jail, path) in fail2ban's
//!   `lastfilepos`/`firstlinemd5` format.
//!
//! ```
//! use f2b_tail::{FileTail, Start, TailOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("auth.log");
//! std::fs::write(&path, "one\ntwo\nthr")?;
//! let mut tail = FileTail::open(&path, Start::Head, TailOptions::default())?;
//! let mut lines = Vec::new();
//! tail.read_lines(&mut |l| lines.push(l.text.to_owned()))?;
//! assert_eq!(lines, ["one", "two"]); // "thr" waits for its newline
//! let cp = tail.checkpoint().expect("open");
//! assert_eq!(cp.pos, 8);
//! // sha1(b"one\n"): what fail2ban (on Python 3) stores as `firstlinemd5`.
//! assert_eq!(cp.firstlinemd5, "c7059bb19433cc3cabaa6236c83d56668a843dd2");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod checkpoint;
mod encoding;
mod error;
mod file;
mod tailer;
mod watcher;

pub use checkpoint::{Checkpoint, FIRST_LINE_SCAN_LIMIT};
pub use encoding::LogEncoding;
pub use error::TailError;
pub use file::{
    FileTail, Line, ReadReport, Rotation, Start, TailEvent, TailOptions, TailStats,
    DEFAULT_MAX_LINE_BYTES,
};
pub use tailer::{
    default_max_open_files, FileCheckpoint, LogPathOptions, StartMode, SubscriberId, Tailer,
    TailerOptions, TailerReport,
};
pub use watcher::{ActiveBackend, Backend, Changes, Watcher, DEFAULT_POLL_INTERVAL};
