//! [`FileTail`]: follow one log path across rotations, line by line.
//!
//! A `FileTail` keeps the current file open between reads (unlike fail2ban,
//! which reopens it on every change). Holding the descriptor is what makes
//! rotation lossless: after `mv log log.1` or `rm log` the descriptor still
//! reaches the old file, so its remainder is read before the tail switches
//! to the new file at the same path. The old file is kept as *retired* and
//! drained on every read until it has been quiet for
//! [`TailOptions::rotate_grace`], because a daemon may still write a few
//! lines into it before it reopens its log.
//!
//! A tail can be *parked* ([`FileTail::park`]): its descriptor is closed and
//! only its position, first-line digest and incomplete last line are kept.
//! The next read reopens the path; if it still names the same inode, reading
//! continues exactly where it stopped (like fail2ban, which reopens its files
//! for every read). [`crate::Tailer`] parks its least recently read files to
//! stay under an open-file cap.
//!
//! Invariants (per open file): `line_start + partial_len == read_off`;
//! `line_start` (the checkpoint position) is always just after a `\n` that
//! ended a delivered line, or the start position; no byte range is delivered
//! twice; memory per file is bounded by `max_line_bytes` plus one read buffer.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::checkpoint::{self, Checkpoint, FirstLine};
use crate::{LogEncoding, TailError};

/// Default cap on the length of one line ([`TailOptions::max_line_bytes`]).
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Size of the read buffer (one per [`FileTail`]).
const READ_BUF: usize = 64 * 1024;

/// At most this many rotated-away files are drained at once per path; older
/// ones are closed early (their partial line is delivered first).
const MAX_RETIRED: usize = 4;

/// Where to start reading a file when it is first opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From the beginning (fail2ban's `head`, the default).
    Head,
    /// From the end (fail2ban's `tail`): only lines written from now on. If
    /// the file ends in an incomplete line, that line is delivered once it is
    /// completed (the tail starts at the beginning of that line).
    Tail,
    /// Resume from a stored checkpoint. If the file's first line no longer
    /// has the stored digest, or the file is shorter than the stored
    /// position, the file was rotated meanwhile and reading starts at 0,
    /// exactly as fail2ban does.
    At(Checkpoint),
}

/// Tunables of a [`FileTail`].
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Longest line delivered in full; longer lines are delivered once,
    /// truncated to this many bytes, with [`Line::truncated`] set. The rest
    /// of such a line is skipped without buffering it.
    pub max_line_bytes: usize,
    /// The `logencoding` used to produce [`Line::text`].
    pub encoding: LogEncoding,
    /// How long a rotated-away (renamed or deleted) file is still drained
    /// after its last write before it is closed and its incomplete last
    /// line, if any, is delivered.
    pub rotate_grace: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            encoding: LogEncoding::Utf8,
            rotate_grace: Duration::from_secs(5),
        }
    }
}

/// One line handed to the consumer.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The decoded text without its line end (`\n` and any `\r` before it).
    pub text: &'a str,
    /// The raw bytes `text` was decoded from (without line end, truncated
    /// like `text`).
    pub bytes: &'a [u8],
    /// The followed path (not the rotated name of an old file).
    pub file: &'a Path,
    /// Byte offset just after this line in the file it came from. For lines
    /// of the current file this is what [`FileTail::checkpoint`] reports once
    /// the line is processed.
    pub offset_after: u64,
    /// The line was longer than [`TailOptions::max_line_bytes`] and was cut.
    pub truncated: bool,
    /// The line comes from a file that has been rotated away (renamed,
    /// deleted or truncated) and is being drained.
    pub rotated: bool,
}

/// Why a path was found to name different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The path now names another inode (rename+create, or delete+recreate).
    NewFile,
    /// The path was removed; the old file is drained until it is quiet.
    Removed,
    /// The file shrank below the read position (copytruncate).
    Truncated,
    /// Same inode, but the first line changed: truncated and rewritten past
    /// the old position between two reads.
    FirstLineChanged,
}

/// Something noteworthy that happened while reading; the caller logs these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailEvent {
    /// A rotation was detected; reading continues with the new content.
    Rotated {
        /// What kind of rotation.
        rotation: Rotation,
    },
    /// A (re)appeared file was opened at `pos`.
    Opened {
        /// Start offset.
        pos: u64,
    },
    /// The path cannot be opened (missing, permission denied, ...). Reported
    /// once per distinct error; opening is retried on every read.
    Unavailable {
        /// The kind of the OS error.
        kind: io::ErrorKind,
        /// The OS error text.
        message: String,
    },
    /// A line longer than the cap was delivered truncated.
    OverlongLine {
        /// Offset just after the line.
        offset_after: u64,
        /// Its full length in bytes (without line end).
        len: u64,
    },
    /// A line contained bytes invalid in the log encoding (replaced by
    /// U+FFFD). Reported once per opened file, counted every time.
    DecodeError {
        /// Offset just after the line.
        offset_after: u64,
    },
    /// An incomplete last line of a rotated-away file was delivered as is.
    PartialLineFlushed {
        /// Its length in bytes.
        len: u64,
    },
    /// An incomplete last line was dropped because the file was truncated
    /// (copytruncate: its end, if ever written, is in the copy).
    PartialLineDropped {
        /// Its length in bytes.
        len: u64,
    },
}

/// The result of one [`FileTail::read_lines`] call.
#[derive(Debug, Default, Clone)]
pub struct ReadReport {
    /// Lines delivered by this call.
    pub lines: u64,
    /// Events to log, in order.
    pub events: Vec<TailEvent>,
    /// The read stopped at its byte budget ([`FileTail::read_lines_budget`])
    /// before the end of the file: call again for the rest.
    pub more: bool,
}

/// Running counters of a [`FileTail`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TailStats {
    /// Lines delivered.
    pub lines: u64,
    /// Bytes consumed (including line ends and skipped overlong tails).
    pub bytes: u64,
    /// Lines delivered truncated.
    pub overlong: u64,
    /// Lines with undecodable bytes.
    pub decode_errors: u64,
    /// Rotations detected (all kinds).
    pub rotations: u64,
}

/// Follows one log path. See the module docs for the guarantees.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    opts: TailOptions,
    cur: Option<Reader>,
    retired: Vec<Reader>,
    buf: Vec<u8>,
    stats: TailStats,
    /// Last open error reported, to report each distinct error once.
    open_error: Option<io::ErrorKind>,
    /// The current file's state while its descriptor is closed (`cur` is
    /// `None` then).
    parked: Option<Parked>,
}

/// A [`Reader`] without its descriptor (see [`FileTail::park`]).
#[derive(Debug)]
struct Parked {
    dev: u64,
    ino: u64,
    read_off: u64,
    line_start: u64,
    partial: Vec<u8>,
    partial_len: u64,
    discard: bool,
    first: FirstLine,
    last_data: Instant,
    decode_warned: bool,
}

#[derive(Debug)]
struct Reader {
    file: File,
    dev: u64,
    ino: u64,
    /// Offset up to which bytes have been consumed.
    read_off: u64,
    /// Offset where the line being accumulated starts (= checkpoint pos).
    line_start: u64,
    /// Kept prefix of the incomplete line (at most `max_line_bytes`).
    partial: Vec<u8>,
    /// Full length of the incomplete line so far.
    partial_len: u64,
    /// The incomplete line is a fragment (tail start mid-line) to drop.
    discard: bool,
    first: FirstLine,
    last_data: Instant,
    decode_warned: bool,
}

/// Receives lines and collects events and counters while draining.
struct Sink<'o, 'p> {
    out: &'o mut dyn FnMut(&Line<'_>),
    path: &'p Path,
    opts: &'p TailOptions,
    report: ReadReport,
    stats: TailStats,
    /// Bytes the current file may still be read this call.
    budget: u64,
}

impl FileTail {
    /// Opens `path` and positions it according to `start`.
    ///
    /// Fails if the file cannot be opened or inspected; later failures (the
    /// file vanishing, becoming unreadable) are reported by
    /// [`FileTail::read_lines`] instead.
    pub fn open(
        path: impl Into<PathBuf>,
        start: Start,
        opts: TailOptions,
    ) -> Result<FileTail, TailError> {
        let path = path.into();
        let reader = Reader::open(&path, &start, opts.max_line_bytes)?;
        Ok(FileTail {
            path,
            opts,
            cur: Some(reader),
            retired: Vec::new(),
            buf: vec![0; READ_BUF],
            stats: TailStats::default(),
            open_error: None,
            parked: None,
        })
    }

    /// Closes the current file's descriptor, keeping its position, digest
    /// and incomplete last line; the next read reopens the path and resumes
    /// there if it still names the same file. Refused (returns false) while
    /// rotated-away files are being drained, and when the path no longer
    /// names the open file (a rotation the next read must drain first).
    /// Returns whether the tail is parked now.
    pub fn park(&mut self) -> bool {
        if self.parked.is_some() {
            return true;
        }
        if !self.retired.is_empty() {
            return false;
        }
        let same = match (&self.cur, fs::metadata(&self.path)) {
            (Some(r), Ok(m)) => m.dev() == r.dev && m.ino() == r.ino,
            _ => false,
        };
        if !same {
            return false;
        }
        let Some(r) = self.cur.take() else {
            return false;
        };
        self.parked = Some(Parked {
            dev: r.dev,
            ino: r.ino,
            read_off: r.read_off,
            line_start: r.line_start,
            partial: r.partial,
            partial_len: r.partial_len,
            discard: r.discard,
            first: r.first,
            last_data: r.last_data,
            decode_warned: r.decode_warned,
        });
        true
    }

    /// Whether the tail is parked (no descriptor held; see [`FileTail::park`]).
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Descriptors held: the current file (unless parked or missing) and the
    /// rotated-away files still being drained.
    pub fn descriptors(&self) -> usize {
        usize::from(self.cur.is_some()) + self.retired.len()
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options in force.
    pub fn options(&self) -> &TailOptions {
        &self.opts
    }

    /// Changes the encoding used for subsequent lines (`set <jail> logencoding`).
    pub fn set_encoding(&mut self, encoding: LogEncoding) {
        self.opts.encoding = encoding;
    }

    /// Counters since open.
    pub fn stats(&self) -> TailStats {
        self.stats
    }

    /// Whether the path is currently followed as an existing file (false
    /// while it is missing or unreadable; reading retries). A parked tail
    /// counts as open.
    pub fn is_open(&self) -> bool {
        self.cur.is_some() || self.parked.is_some()
    }

    /// Whether rotated-away files are still being drained (the caller should
    /// keep calling [`FileTail::read_lines`] periodically until this is false
    /// so that their incomplete last lines are flushed after the grace time).
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// The position to persist: offset after the last delivered line of the
    /// current file and its first-line digest, in fail2ban's format. `None`
    /// while the path is missing.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        if let Some(p) = &self.parked {
            return Some(Checkpoint {
                pos: p.line_start,
                firstlinemd5: p.first.digest.clone(),
            });
        }
        self.cur.as_ref().map(|r| Checkpoint {
            pos: r.line_start,
            firstlinemd5: r.first.digest.clone(),
        })
    }

    /// Skips ahead to the first line whose time stamp is at or after
    /// `target`, like fail2ban's initial "seek to find time" for `head`
    /// files (it avoids re-reading a large log on start; lines older than
    /// `findtime` would be ignored anyway).
    ///
    /// `time_of` extracts a line's time (seconds since the epoch) or `None`
    /// when the line has none; it is the filter's date detector. The search
    /// is a bisection over line starts that assumes time stamps grow through
    /// the file; when a probe finds no time stamp within five lines, the
    /// search keeps the earlier position (reading more rather than less).
    /// It never moves backwards and only works between reads (not while an
    /// incomplete line is held). Returns the new position.
    pub fn seek_to_time(
        &mut self,
        target: f64,
        time_of: &mut dyn FnMut(&str) -> Option<f64>,
    ) -> Result<u64, TailError> {
        if let Some(p) = &self.parked {
            // Reopened by the next read; the seek only applies to a file
            // from which nothing has been read, which is never parked.
            return Ok(p.line_start);
        }
        let Some(r) = self.cur.as_mut() else {
            return Ok(0);
        };
        let read_err = |source| TailError::Read {
            path: self.path.clone(),
            source,
        };
        if r.partial_len > 0 || r.discard {
            return Ok(r.line_start);
        }
        let size = r.file.metadata().map_err(read_err)?.len();
        let mut lo = r.read_off;
        let mut hi = size;
        let cap = self.opts.max_line_bytes;
        let enc = self.opts.encoding;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut s = next_line_start(&r.file, mid, hi, cap).map_err(read_err)?;
            if s >= hi {
                s = lo;
            }
            // Probe up to five lines from `s` for a time stamp.
            let mut at = s;
            let mut found = None;
            for _ in 0..5 {
                if at >= hi {
                    break;
                }
                let Some((line, end)) = line_at(&r.file, at, cap).map_err(read_err)? else {
                    break;
                };
                let (text, _) = enc.decode(&line);
                if let Some(t) = time_of(text.trim_end_matches('\r')) {
                    found = Some((t, end));
                    break;
                }
                at = end;
            }
            match found {
                Some((t, end)) if t < target => lo = end.min(hi),
                _ => hi = s,
            }
        }
        r.file.seek(SeekFrom::Start(lo)).map_err(read_err)?;
        r.read_off = lo;
        r.line_start = lo;
        Ok(lo)
    }

    /// The size of the current file, if open.
    pub fn file_size(&self) -> Option<u64> {
        if self.parked.is_some() {
            return fs::metadata(&self.path).ok().map(|m| m.len());
        }
        self.cur
            .as_ref()
            .and_then(|r| r.file.metadata().ok())
            .map(|m| m.len())
    }

    /// Reads every complete line available now and hands each to `out`, in
    /// file order: first what remains in rotated-away files, then the current
    /// file. Detects truncation (size below position, or a changed first
    /// line), replacement of the path by another inode, and removal; then
    /// continues with the new content from offset 0.
    ///
    /// Incomplete last lines are held back until their `\n` arrives (or,
    /// for rotated-away files, until [`TailOptions::rotate_grace`] passed).
    ///
    /// Errors are returned only for read failures on an already open file;
    /// missing or unreadable paths are reported as events and retried.
    pub fn read_lines(&mut self, out: &mut dyn FnMut(&Line<'_>)) -> Result<ReadReport, TailError> {
        self.read_lines_budget(out, u64::MAX)
    }

    /// [`FileTail::read_lines`], reading at most about `budget` bytes of the
    /// current file (whole read-buffer chunks, so up to 64 KiB more): bounds
    /// the memory a caller collecting lines needs for a burst. When the
    /// budget ends first, [`ReadReport::more`] is set and the next call
    /// continues (the path's rotation check waits until the file is drained).
    pub fn read_lines_budget(
        &mut self,
        out: &mut dyn FnMut(&Line<'_>),
        budget: u64,
    ) -> Result<ReadReport, TailError> {
        let mut sink = Sink {
            out,
            path: &self.path,
            opts: &self.opts,
            report: ReadReport::default(),
            stats: TailStats::default(),
            budget: budget.max(1),
        };
        let result = match resume(
            &mut self.cur,
            &mut self.parked,
            &mut self.open_error,
            &mut sink,
        ) {
            Ok(true) => read_all(
                &mut self.cur,
                &mut self.retired,
                &mut self.buf,
                &mut self.open_error,
                &mut sink,
            ),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        let Sink { report, stats, .. } = sink;
        self.stats.lines += stats.lines;
        self.stats.bytes += stats.bytes;
        self.stats.overlong += stats.overlong;
        self.stats.decode_errors += stats.decode_errors;
        self.stats.rotations += stats.rotations;
        result.map(|()| report)
    }

    /// Closes every retired file now, delivering their incomplete last lines
    /// (used when the path is no longer followed).
    pub fn flush_retired(&mut self, out: &mut dyn FnMut(&Line<'_>)) -> ReadReport {
        let mut sink = Sink {
            out,
            path: &self.path,
            opts: &self.opts,
            report: ReadReport::default(),
            stats: TailStats::default(),
            budget: u64::MAX,
        };
        for mut r in self.retired.drain(..) {
            let _ = drain(&mut r, &mut self.buf, true, &mut sink);
            flush_partial(&mut r, &mut sink);
        }
        self.stats.lines += sink.stats.lines;
        sink.report
    }
}

/// Reopens a parked file. Returns whether reading can go on (false: the
/// path cannot be opened right now for a reason other than being gone, e.g.
/// out of descriptors; the tail stays parked and the error is reported once).
fn resume(
    cur: &mut Option<Reader>,
    parked: &mut Option<Parked>,
    open_error: &mut Option<io::ErrorKind>,
    sink: &mut Sink<'_, '_>,
) -> Result<bool, TailError> {
    let Some(p) = parked.take() else {
        return Ok(true);
    };
    match open_regular(sink.path) {
        Ok((mut file, meta)) if meta.dev() == p.dev && meta.ino() == p.ino => {
            if let Err(source) = file.seek(SeekFrom::Start(p.read_off)) {
                *parked = Some(p);
                return Err(TailError::Read {
                    path: sink.path.to_path_buf(),
                    source,
                });
            }
            *open_error = None;
            *cur = Some(Reader {
                file,
                dev: p.dev,
                ino: p.ino,
                read_off: p.read_off,
                line_start: p.line_start,
                partial: p.partial,
                partial_len: p.partial_len,
                discard: p.discard,
                first: p.first,
                last_data: p.last_data,
                decode_warned: p.decode_warned,
            });
            Ok(true)
        }
        Err(e)
            if !matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
            ) && e.raw_os_error() != Some(libc::ENOTDIR)
                && e.raw_os_error() != Some(libc::ELOOP) =>
        {
            // Out of descriptors, permission denied, ...: stay parked.
            if *open_error != Some(e.kind()) {
                *open_error = Some(e.kind());
                sink.report.events.push(TailEvent::Unavailable {
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
            *parked = Some(p);
            Ok(false)
        }
        other => {
            // Rotated while parked: the old file's unread rest is out of
            // reach (as for fail2ban, which holds no descriptor either), and
            // so is the end of its incomplete last line, which is dropped
            // rather than delivered as a fragment. The path is read from the
            // start on (step 2 of `read_all`).
            let rotation = if other.is_ok() {
                Rotation::NewFile
            } else {
                Rotation::Removed
            };
            sink.stats.rotations += 1;
            sink.report.events.push(TailEvent::Rotated { rotation });
            if p.partial_len > 0 && !p.discard {
                sink.report
                    .events
                    .push(TailEvent::PartialLineDropped { len: p.partial_len });
            }
            *cur = None;
            Ok(true)
        }
    }
}

/// Opens `path` for reading (`O_NONBLOCK`, `O_CLOEXEC`) if it is a regular
/// file.
fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    // std opens with O_CLOEXEC, so actions never inherit log descriptors.
    // O_NONBLOCK keeps a FIFO put in place of the log from blocking the
    // open; it has no effect on reading regular files.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

fn read_all(
    cur: &mut Option<Reader>,
    retired: &mut Vec<Reader>,
    buf: &mut [u8],
    open_error: &mut Option<io::ErrorKind>,
    sink: &mut Sink<'_, '_>,
) -> Result<(), TailError> {
    let now = Instant::now();
    // 1. Older content first: what rotated-away files still hold.
    let mut i = 0;
    while i < retired.len() {
        let r = &mut retired[i];
        let ok = drain(r, buf, true, sink).is_ok();
        let quiet = now.saturating_duration_since(r.last_data) >= sink.opts.rotate_grace;
        if !ok || quiet || retired.len() > MAX_RETIRED {
            let mut r = retired.remove(i);
            flush_partial(&mut r, sink);
        } else {
            i += 1;
        }
    }

    // 2. The current file: reopen if it was missing.
    if cur.is_none() {
        match Reader::open(sink.path, &Start::Head, sink.opts.max_line_bytes) {
            Ok(r) => {
                *open_error = None;
                sink.report
                    .events
                    .push(TailEvent::Opened { pos: r.line_start });
                *cur = Some(r);
            }
            Err(TailError::Open { source, .. }) => {
                if *open_error != Some(source.kind()) {
                    *open_error = Some(source.kind());
                    sink.report.events.push(TailEvent::Unavailable {
                        kind: source.kind(),
                        message: source.to_string(),
                    });
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    let Some(r) = cur.as_mut() else {
        return Ok(());
    };

    // 3. Same inode, but truncated or rewritten (copytruncate)?
    let read_err = |source| TailError::Read {
        path: sink.path.to_path_buf(),
        source,
    };
    if let Some(rotation) = r.check_truncation().map_err(read_err)? {
        sink.stats.rotations += 1;
        sink.report.events.push(TailEvent::Rotated { rotation });
        if r.partial_len > 0 && !r.discard {
            sink.report
                .events
                .push(TailEvent::PartialLineDropped { len: r.partial_len });
        }
        r.restart_at_zero().map_err(|source| TailError::Read {
            path: sink.path.to_path_buf(),
            source,
        })?;
    }
    let drained = drain(r, buf, false, sink).map_err(|source| TailError::Read {
        path: sink.path.to_path_buf(),
        source,
    })?;
    if !r.first.is_known() {
        r.first = checkpoint::first_line(&r.file).unwrap_or_default();
    }
    if !drained {
        sink.report.more = true;
        return Ok(());
    }

    // 4. Does the path still name this file?
    let rotation = match fs::metadata(sink.path) {
        Ok(m) if m.dev() == r.dev && m.ino() == r.ino => None,
        Ok(_) => Some(Rotation::NewFile),
        // A directory became unsearchable: the path may still name this
        // file, keep reading what we have.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => None,
        // Missing, or no longer resolvable (ELOOP, ENOTDIR): gone.
        Err(_) => Some(Rotation::Removed),
    };
    if let Some(rotation) = rotation {
        sink.stats.rotations += 1;
        sink.report.events.push(TailEvent::Rotated { rotation });
        if let Some(mut old) = cur.take() {
            // Lines the writer appended between the drain above and the
            // rename belong before the new file's lines.
            let _ = drain(&mut old, buf, true, sink);
            if sink.opts.rotate_grace.is_zero() {
                flush_partial(&mut old, sink);
            } else {
                retired.push(old);
            }
        }
        if rotation == Rotation::NewFile {
            match Reader::open(sink.path, &Start::Head, sink.opts.max_line_bytes) {
                Ok(r) => {
                    sink.report.events.push(TailEvent::Opened { pos: 0 });
                    // Keep the reader even if draining fails, so that what it
                    // delivered is not delivered again by a reopen.
                    let r = cur.insert(r);
                    if !drain(r, buf, false, sink).map_err(|source| TailError::Read {
                        path: sink.path.to_path_buf(),
                        source,
                    })? {
                        sink.report.more = true;
                    }
                    if !r.first.is_known() {
                        r.first = checkpoint::first_line(&r.file).unwrap_or_default();
                    }
                }
                Err(TailError::Open { source, .. }) => {
                    *open_error = Some(source.kind());
                    sink.report.events.push(TailEvent::Unavailable {
                        kind: source.kind(),
                        message: source.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

impl Reader {
    fn open(path: &Path, start: &Start, max_line: usize) -> Result<Reader, TailError> {
        let open_err = |source| TailError::Open {
            path: path.to_path_buf(),
            source,
        };
        let (mut file, meta) = open_regular(path).map_err(open_err)?;
        let size = meta.len();
        let first = checkpoint::first_line(&file).map_err(open_err)?;
        let mut discard = false;
        let pos = match start {
            Start::Head => 0,
            Start::At(cp) => {
                if cp.firstlinemd5 == first.digest && cp.pos <= size {
                    cp.pos
                } else {
                    0
                }
            }
            Start::Tail => {
                let (pos, mid_line) = tail_position(&file, size, max_line).map_err(open_err)?;
                discard = mid_line;
                pos
            }
        };
        file.seek(SeekFrom::Start(pos)).map_err(open_err)?;
        Ok(Reader {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            read_off: pos,
            line_start: pos,
            partial: Vec::new(),
            partial_len: 0,
            discard,
            first,
            last_data: Instant::now(),
            decode_warned: false,
        })
    }

    /// Detects copytruncate: the file shrank below what was read, or its
    /// first line is no longer the one seen before.
    fn check_truncation(&mut self) -> io::Result<Option<Rotation>> {
        let size = self.file.metadata()?.len();
        if size < self.read_off {
            return Ok(Some(Rotation::Truncated));
        }
        if self.first.is_known() {
            if self.read_off >= self.first.len
                && !checkpoint::first_line_matches(&self.file, &self.first)?
            {
                return Ok(Some(Rotation::FirstLineChanged));
            }
        } else if self.line_start == 0 && !self.partial.is_empty() && !self.discard {
            // No complete first line yet: what we hold of it must still be
            // the file's beginning, or the file was truncated and rewritten.
            let mut head = vec![0u8; self.partial.len()];
            let mut got = 0;
            while got < head.len() {
                let n = self.file.read_at(&mut head[got..], got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if head[..got] != self.partial[..] {
                return Ok(Some(Rotation::FirstLineChanged));
            }
        }
        Ok(None)
    }

    fn restart_at_zero(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.read_off = 0;
        self.line_start = 0;
        self.partial.clear();
        self.partial_len = 0;
        self.discard = false;
        self.decode_warned = false;
        self.first = checkpoint::first_line(&self.file)?;
        Ok(())
    }
}

/// Where `tail` starts: the end of the file, or the start of its incomplete
/// last line (so that line is delivered whole once completed). Returns the
/// position and whether it is mid-line (no line start found within the cap:
/// the fragment up to the next `\n` is skipped).
fn tail_position(file: &File, size: u64, max_line: usize) -> io::Result<(u64, bool)> {
    if size == 0 {
        return Ok((0, false));
    }
    let window = (max_line as u64 + 1).min(size);
    let mut buf = vec![0u8; window as usize];
    let from = size - window;
    let mut got = 0;
    while got < buf.len() {
        let n = file.read_at(&mut buf[got..], from + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    if buf.last() == Some(&b'\n') {
        return Ok((from + got as u64, false));
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => Ok((from + i as u64 + 1, false)),
        None if from == 0 => Ok((0, false)),
        None => Ok((size, true)),
    }
}

/// The first line start at or after `from` (searching up to `limit`), or
/// `limit` when there is none. Offset 0 is always a line start.
fn next_line_start(file: &File, from: u64, limit: u64, cap: usize) -> io::Result<u64> {
    if from == 0 {
        return Ok(0);
    }
    // A line starts at `from` if the byte before it is a newline.
    let mut at = from - 1;
    let mut buf = vec![0u8; 8192];
    let mut scanned = 0usize;
    while at < limit && scanned <= cap + 1 {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(limit);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok((at + i as u64 + 1).min(limit));
        }
        at += n as u64;
        scanned += n;
    }
    Ok(limit)
}

/// The line starting at `at` (without its `\n`, at most `cap` bytes) and
/// the offset after it; `None` at end of file or for an unterminated line.
fn line_at(file: &File, at: u64, cap: usize) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut buf = vec![0u8; 8192];
    let mut line = Vec::new();
    let mut off = at;
    loop {
        let n = file.read_at(&mut buf, off)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            let room = cap.saturating_sub(line.len());
            line.extend_from_slice(&buf[..i.min(room)]);
            return Ok(Some((line, off + i as u64 + 1)));
        }
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&buf[..n.min(room)]);
        off += n as u64;
    }
}

/// Reads `r` to its current end, delivering complete lines. The current file
/// (`rotated` false) stops early when the sink's budget is spent; returns
/// whether the end was reached.
fn drain(
    r: &mut Reader,
    buf: &mut [u8],
    rotated: bool,
    sink: &mut Sink<'_, '_>,
) -> io::Result<bool> {
    let max = sink.opts.max_line_bytes;
    loop {
        if !rotated && sink.budget == 0 {
            return Ok(false);
        }
        let n = match r.file.read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        r.last_data = Instant::now();
        sink.stats.bytes += n as u64;
        if !rotated {
            sink.budget = sink.budget.saturating_sub(n as u64);
        }
        let chunk = &buf[..n];
        // one ASCII check per read instead of a UTF-8 check per line
        let ascii = chunk.is_ascii();
        let base = r.read_off;
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let content = &chunk[start..nl];
            let offset_after = base + nl as u64 + 1;
            if r.discard {
                r.discard = false;
            } else if r.partial_len == 0 && content.len() <= max {
                sink.emit(
                    r,
                    content,
                    offset_after,
                    content.len() as u64,
                    rotated,
                    ascii,
                );
            } else {
                append_capped(r, content, max);
                let full = r.partial_len;
                let line = std::mem::take(&mut r.partial);
                sink.emit(r, &line, offset_after, full, rotated, false);
                r.partial = line;
                r.partial.clear();
            }
            r.partial_len = 0;
            r.line_start = offset_after;
            start = nl + 1;
        }
        let rest = &chunk[start..];
        if r.discard {
            r.partial_len += rest.len() as u64;
        } else {
            append_capped(r, rest, max);
        }
        r.read_off = base + n as u64;
    }
}

fn append_capped(r: &mut Reader, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(r.partial.len());
    r.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    r.partial_len += bytes.len() as u64;
}

/// Delivers the incomplete last line of a file that is going away.
fn flush_partial(r: &mut Reader, sink: &mut Sink<'_, '_>) {
    if r.partial_len > 0 && !r.discard {
        let line = std::mem::take(&mut r.partial);
        let full = r.partial_len;
        sink.report
            .events
            .push(TailEvent::PartialLineFlushed { len: full });
        sink.emit(r, &line, r.read_off, full, true, false);
    }
    r.partial.clear();
    r.partial_len = 0;
    r.discard = false;
    r.line_start = r.read_off;
}

impl Sink<'_, '_> {
    /// Delivers one line; `ascii`: it lies in a read checked to be all ASCII
    /// (valid UTF-8 and Latin-1 as it is: no per-line decoding needed).
    fn emit(
        &mut self,
        r: &mut Reader,
        content: &[u8],
        offset_after: u64,
        full_len: u64,
        rotated: bool,
        ascii: bool,
    ) {
        // fail2ban strips any trailing "\r\n" characters.
        let mut end = content.len();
        while end > 0 && content[end - 1] == b'\r' {
            end -= 1;
        }
        let bytes = &content[..end];
        let truncated = full_len > self.opts.max_line_bytes as u64;
        if truncated {
            self.stats.overlong += 1;
            self.report.events.push(TailEvent::OverlongLine {
                offset_after,
                len: full_len,
            });
        }
        let (text, bad) = match self.opts.encoding {
            LogEncoding::Utf8 | LogEncoding::Latin1 if ascii => {
                // SAFETY: `bytes` lies in a read checked to be all ASCII, and
                // ASCII is valid UTF-8.
                (
                    Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) }),
                    false,
                )
            }
            enc => enc.decode(bytes),
        };
        if bad {
            self.stats.decode_errors += 1;
            if !r.decode_warned {
                r.decode_warned = true;
                self.report
                    .events
                    .push(TailEvent::DecodeError { offset_after });
            }
        }
        self.stats.lines += 1;
        self.report.lines += 1;
        (self.out)(&Line {
            text: &text,
            bytes,
            file: self.path,
            offset_after,
            truncated,
            rotated,
        });
    }
}
