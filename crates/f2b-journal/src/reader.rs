//! [`Journal`]: one sd_journal shared by every journal jail of a source.
//!
//! The reader installs the OR of all subscribers' match sets in libsystemd
//! (so its field indexes skip unrelated entries), copies each entry's data
//! objects once, and evaluates every subscriber's own [`JournalMatch`] on
//! them. Each subscriber has a start point ([`Start`]); while some
//! subscriber has not reached its point, the reader compares every entry's
//! cursor with it ([`crate::Cursor::order`]), so resuming is exact: the
//! entry at a stored cursor is never delivered again, the one after it is.
//!
//! Adding or removing a subscriber re-seeks: subscribers already live get
//! the reader's current position as their start point, the reader seeks to
//! the earliest start point of all, and each subscriber skips until its
//! own. Entries are therefore neither lost nor delivered twice across
//! subscription changes.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use f2b_tail::{LogEncoding, SubscriberId};

use crate::cursor::{After, Cursor};
use crate::error::op;
use crate::ffi::{RawJournal, SD_JOURNAL_APPEND, SD_JOURNAL_INVALIDATE, SD_JOURNAL_NOP};
use crate::format::{entry_usec, format_line, iso_local, usec_to_time, EntryFields};
use crate::{JournalError, JournalMatch, JournalSource};

/// Default cap on one `MESSAGE` (bytes), as f2b-tail's line cap.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How long reads may find nothing before [`Journal::read`] looks again
/// past the last entry with a fresh seek (see [`Journal::recheck`]).
pub const RECHECK_AFTER: Duration = Duration::from_millis(20);

/// Reader options.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// `MESSAGE` values longer than this are cut (at a UTF-8 boundary) and
    /// counted in [`JournalStats::truncated`].
    pub max_message_bytes: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Where a subscriber starts reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The oldest entry in the journal.
    Head,
    /// Only entries appended after subscribing.
    Tail,
    /// Entries whose realtime is at or after this time (seconds).
    Since(f64),
    /// Entries after the one at `cursor` (exact resume). If the cursor does
    /// not parse, entries after `time` (seconds) instead.
    After {
        /// The stored cursor.
        cursor: String,
        /// The stored time of the same entry (fallback).
        time: f64,
    },
}

impl Start {
    /// fail2ban's start rule, made exact: with a stored position, resume
    /// after it but never earlier than `now - findtime` (older entries
    /// cannot count towards a ban); without one, `now - findtime`.
    /// `cursor` is used only when it parses; otherwise the stored `time`
    /// is resumed after (fail2ban's time position).
    pub fn resume(cursor: Option<&str>, time: Option<f64>, now: f64, findtime: f64) -> Start {
        let floor = now - findtime;
        if let Some(c) = cursor.and_then(Cursor::parse) {
            if usec_to_time(c.realtime_usec()) >= floor {
                return Start::After {
                    cursor: c.as_str().to_owned(),
                    time: time.unwrap_or(floor),
                };
            }
            return Start::Since(floor);
        }
        match time {
            // strictly after the stored entry's time
            Some(t) if t >= floor => Start::Since(t + 1e-6),
            _ => Start::Since(floor),
        }
    }
}

fn secs_to_usec(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 {
        (t * 1e6).round() as u64
    } else {
        0
    }
}

/// Result of waiting for or processing journal changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing changed (timeout).
    Nop,
    /// Entries were appended.
    Append,
    /// Files were added, removed or rotated.
    Invalidate,
}

fn change(r: i32) -> Change {
    match r {
        SD_JOURNAL_APPEND => Change::Append,
        SD_JOURNAL_INVALIDATE => Change::Invalidate,
        SD_JOURNAL_NOP => Change::Nop,
        // unknown positive codes: treat as "something changed"
        _ => Change::Invalidate,
    }
}

/// One line delivered to a subscriber.
#[derive(Debug, Clone, Copy)]
pub struct JournalLine<'a> {
    /// The line as fail2ban forms it (`host ident[pid]: message`, newlines
    /// as `\n`).
    pub text: &'a str,
    /// Failure time: `_SOURCE_REALTIME_TIMESTAMP`, else the entry's
    /// realtime, in seconds (fail2ban's float).
    pub time: f64,
    /// The same time in µs.
    pub usec: u64,
}

/// A position to persist for a subscriber (store: `JournalPosition`).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPosition {
    /// Exact cursor of the last entry the subscriber has been given the
    /// chance to see.
    pub cursor: Option<String>,
    /// Time of that entry (seconds), what fail2ban stores.
    pub time: f64,
    /// ISO form of `time` (local time with offset), what fail2ban stores.
    pub iso: String,
}

/// Counters since the reader was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Entries read from the journal.
    pub entries: u64,
    /// Line deliveries (one entry given to two subscribers counts twice).
    pub delivered: u64,
    /// Entries skipped because they have no `MESSAGE` field.
    pub no_message: u64,
    /// Entries whose `MESSAGE` was cut at `max_message_bytes`.
    pub truncated: u64,
    /// Entries with bytes invalid in the subscriber's encoding (decoded
    /// with replacement characters, as fail2ban does).
    pub lossy: u64,
    /// Entries that could not be read (corrupt data) and were skipped.
    pub unreadable: u64,
}

/// What one [`Journal::read`] did.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Entries read.
    pub entries: u64,
    /// Line deliveries.
    pub delivered: u64,
    /// More entries may be available (the limit was reached).
    pub more: bool,
    /// Entries skipped or altered in this call, with the reason, for the
    /// server to log (`no MESSAGE`, `MESSAGE truncated`, `unreadable`).
    pub skipped: Vec<String>,
}

#[derive(Debug)]
enum SubState {
    Pending(After),
    Live,
}

#[derive(Debug)]
struct Sub {
    id: SubscriberId,
    matches: JournalMatch,
    encoding: LogEncoding,
    state: SubState,
}

#[derive(Debug, Clone)]
struct Last {
    usec: u64,
    cursor: Option<String>,
}

/// A shared reader of one [`JournalSource`]. See the module docs.
#[derive(Debug)]
pub struct Journal {
    raw: RawJournal,
    source: JournalSource,
    opts: JournalOptions,
    fd: RawFd,
    subs: Vec<Sub>,
    /// Position to seek to before the next read.
    seek: Option<After>,
    /// Last entry read (its cursor once fetched).
    last: Option<Last>,
    /// Copied data objects of the current entry.
    arena: Vec<u8>,
    spans: Vec<(usize, usize)>,
    stats: JournalStats,
    /// Matches are installed in libsystemd (see [`Journal::recheck`]).
    indexed: bool,
    /// Since when reads have found no entry.
    quiet_since: Option<Instant>,
}

fn field<'a>(data: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if data.len() > name.len() && data.starts_with(name) && data[name.len()] == b'=' {
        Some(&data[name.len() + 1..])
    } else {
        None
    }
}

impl Journal {
    /// Opens the source. Nothing is read until a subscriber is added.
    pub fn open(source: &JournalSource, opts: JournalOptions) -> Result<Journal, JournalError> {
        let mut raw = source.open()?;
        raw.set_data_threshold(opts.max_message_bytes.saturating_add(64))
            .map_err(op("set_data_threshold"))?;
        let fd = raw.fd().map_err(op("get_fd"))?;
        Ok(Journal {
            raw,
            source: source.clone(),
            opts,
            fd,
            subs: Vec::new(),
            seek: None,
            last: None,
            arena: Vec::with_capacity(4096),
            spans: Vec::with_capacity(64),
            stats: JournalStats::default(),
            indexed: false,
            quiet_since: None,
        })
    }

    /// The source this reader follows.
    pub fn source(&self) -> &JournalSource {
        &self.source
    }

    /// Counters.
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// The descriptor to poll for readability (libsystemd's inotify fd).
    /// When it is readable call [`Journal::process`], then
    /// [`Journal::read`]. It stays the same for the reader's life.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Consumes pending change notifications (`sd_journal_process`).
    pub fn process(&mut self) -> Result<Change, JournalError> {
        self.raw.process().map(change).map_err(op("process"))
    }

    /// Blocks until the journal changes or `timeout` passes
    /// (`sd_journal_wait`; no polling loop).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Change, JournalError> {
        let us = timeout.map_or(u64::MAX, |t| {
            u64::try_from(t.as_micros()).unwrap_or(u64::MAX - 1)
        });
        self.raw.wait(us).map(change).map_err(op("wait"))
    }

    /// The subscribers.
    pub fn subscribers(&self) -> impl Iterator<Item = SubscriberId> + '_ {
        self.subs.iter().map(|s| s.id)
    }

    /// A subscriber's match set.
    pub fn matches(&self, id: SubscriberId) -> Option<&JournalMatch> {
        self.subs.iter().find(|s| s.id == id).map(|s| &s.matches)
    }

    /// Adds (or replaces) a subscriber: `matches` select its entries,
    /// `encoding` decodes text that is not UTF-8, `start` says where it
    /// begins. Other subscribers neither lose nor repeat entries.
    pub fn subscribe(
        &mut self,
        id: SubscriberId,
        matches: JournalMatch,
        encoding: LogEncoding,
        start: Start,
    ) -> Result<(), JournalError> {
        self.freeze_live()?;
        self.subs.retain(|s| s.id != id);
        self.subs.push(Sub {
            id,
            matches,
            encoding,
            state: SubState::Pending(After::Since(0)),
        });
        self.install_matches()?;
        let after = match start {
            Start::Head => After::Since(0),
            Start::Since(t) => After::Since(secs_to_usec(t)),
            Start::After { cursor, time } => match Cursor::parse(&cursor) {
                Some(c) => After::Cursor(c),
                None => After::Since(secs_to_usec(time) + 1),
            },
            Start::Tail => self.tail_position()?,
        };
        if let Some(s) = self.subs.iter_mut().find(|s| s.id == id) {
            s.state = SubState::Pending(after);
        }
        self.plan_seek();
        Ok(())
    }

    /// Removes a subscriber; returns whether it existed.
    pub fn unsubscribe(&mut self, id: SubscriberId) -> Result<bool, JournalError> {
        let before = self.subs.len();
        self.freeze_live()?;
        self.subs.retain(|s| s.id != id);
        self.install_matches()?;
        self.plan_seek();
        Ok(self.subs.len() != before)
    }

    /// The position to persist for a subscriber: the last entry read while
    /// it was live, or its start point while it is still catching up.
    pub fn position(&mut self, id: SubscriberId) -> Option<SavedPosition> {
        let live = match &self.subs.iter().find(|s| s.id == id)?.state {
            SubState::Live => true,
            SubState::Pending(After::Cursor(c)) => {
                let usec = c.realtime_usec();
                return Some(SavedPosition {
                    cursor: Some(c.as_str().to_owned()),
                    time: usec_to_time(usec),
                    iso: iso_local(usec),
                });
            }
            SubState::Pending(After::Since(_)) => false,
        };
        if !live {
            return None;
        }
        let last = self.last.as_ref()?;
        Some(SavedPosition {
            cursor: last.cursor.clone(),
            time: usec_to_time(last.usec),
            iso: iso_local(last.usec),
        })
    }

    /// Live subscribers become pending "after the current position" so a
    /// re-seek neither repeats nor loses their entries.
    fn freeze_live(&mut self) -> Result<(), JournalError> {
        if !self.subs.iter().any(|s| matches!(s.state, SubState::Live)) {
            return Ok(());
        }
        let after = match &self.last {
            Some(Last {
                cursor: Some(c), ..
            }) => Cursor::parse(c).map(After::Cursor),
            Some(Last { usec, .. }) => Some(After::Since(usec + 1)),
            None => None,
        };
        let after = match after {
            Some(a) => a,
            // nothing read yet: live subscribers start where the pending seek is
            None => self.seek.clone().unwrap_or(After::Since(0)),
        };
        for s in &mut self.subs {
            if matches!(s.state, SubState::Live) {
                s.state = SubState::Pending(after.clone());
            }
        }
        Ok(())
    }

    fn install_matches(&mut self) -> Result<(), JournalError> {
        self.raw.flush_matches();
        self.indexed = false;
        if self.subs.iter().any(|s| s.matches.is_all()) || self.subs.is_empty() {
            return Ok(());
        }
        self.indexed = true;
        let mut union = JournalMatch::all();
        for s in &self.subs {
            union.or(&s.matches);
        }
        for g in union.groups() {
            for t in g.terms() {
                self.raw.add_match(t).map_err(|e| JournalError::Match {
                    term: String::from_utf8_lossy(t).into_owned(),
                    reason: if e.raw_os_error() == Some(libc::EINVAL) {
                        "rejected by libsystemd"
                    } else {
                        "cannot add match"
                    },
                })?;
            }
            self.raw.add_disjunction().map_err(op("add_disjunction"))?;
        }
        Ok(())
    }

    /// The current last entry (under the installed matches) as a start
    /// point; the reader is repositioned by the next read's seek.
    fn tail_position(&mut self) -> Result<After, JournalError> {
        self.raw.seek_tail().map_err(op("seek_tail"))?;
        if !self.raw.previous().map_err(op("previous"))? {
            return Ok(After::Since(0));
        }
        let c = self.raw.cursor().map_err(op("get_cursor"))?;
        match Cursor::parse(&c) {
            Some(c) => Ok(After::Cursor(c)),
            None => Ok(After::Since(
                self.raw.realtime_usec().map_err(op("get_realtime"))? + 1,
            )),
        }
    }

    fn plan_seek(&mut self) {
        let earliest = self
            .subs
            .iter()
            .filter_map(|s| match &s.state {
                SubState::Pending(a) => Some(a),
                SubState::Live => None,
            })
            .min_by(|a, b| {
                a.seek_usec().cmp(&b.seek_usec()).then_with(|| {
                    // prefer the cursor form at equal times (exact seek)
                    matches!(b, After::Cursor(_)).cmp(&matches!(a, After::Cursor(_)))
                })
            })
            .cloned();
        self.seek = earliest;
        self.last = None;
    }

    fn do_seek(&mut self, to: &After) -> Result<(), JournalError> {
        match to {
            After::Since(0) => self.raw.seek_head().map_err(op("seek_head")),
            After::Since(t) => self.raw.seek_realtime_usec(*t).map_err(op("seek_realtime")),
            After::Cursor(c) => self.raw.seek_cursor(c.as_str()).map_err(op("seek_cursor")),
        }
    }

    /// Copies the current entry's data objects into the arena.
    fn load_entry(&mut self) -> Result<bool, std::io::Error> {
        self.arena.clear();
        self.spans.clear();
        let cap = self.opts.max_message_bytes;
        let mut truncated = false;
        let arena = &mut self.arena;
        let spans = &mut self.spans;
        self.raw.for_each_data(&mut |d| {
            let start = arena.len();
            let is_msg = d.starts_with(b"MESSAGE=");
            let limit = if is_msg {
                cap.saturating_add(8)
            } else {
                cap.saturating_add(64)
            };
            let mut n = d.len().min(limit);
            if n < d.len() {
                if is_msg {
                    truncated = true;
                }
                // cut at a UTF-8 character boundary
                let mut back = 0;
                while back < 3 && n > 0 && (d[n] & 0xC0) == 0x80 {
                    n -= 1;
                    back += 1;
                }
            }
            arena.extend_from_slice(&d[..n]);
            spans.push((start, n));
        })?;
        Ok(truncated)
    }

    /// Looks again past the last entry read, with a fresh seek (live
    /// subscribers resume strictly after it: nothing is repeated or lost).
    ///
    /// Needed with matches installed: libsystemd (`next_beyond_location`)
    /// skips a file at its end until the file's global entry count changes,
    /// and journald counts a new entry before linking it into the field
    /// indexes that matches use. A read that falls between the two marks
    /// the file as seen without finding the entry, which then stays
    /// invisible until the next entry is appended (measured: about 1 in
    /// 1,000 live entries, delayed until the next one). A seek resets that
    /// state. [`Journal::read`] does this by itself after reads have found
    /// nothing for [`RECHECK_AFTER`]. The entry at the last position is read
    /// again (not delivered) and counts in [`JournalStats::entries`].
    pub fn recheck(&mut self) -> Result<(), JournalError> {
        if self.seek.is_none() && !self.subs.is_empty() {
            self.freeze_live()?;
            self.plan_seek();
            // plan_seek forgets the last entry; the seek reads it again
        }
        Ok(())
    }

    /// Reads up to `limit` entries and hands each subscriber the lines of
    /// its entries, in journal order. Returns when the journal has no more
    /// entries or the limit is reached (`more`).
    pub fn read(
        &mut self,
        limit: usize,
        sink: &mut dyn FnMut(SubscriberId, &JournalLine<'_>),
    ) -> Result<ReadReport, JournalError> {
        let mut report = ReadReport::default();
        if self.subs.is_empty() {
            return Ok(report);
        }
        if self.indexed
            && self
                .quiet_since
                .is_some_and(|t| t.elapsed() >= RECHECK_AFTER)
        {
            self.quiet_since = None;
            self.recheck()?;
        }
        if let Some(to) = self.seek.take() {
            if let Err(e) = self.do_seek(&to) {
                self.seek = Some(to);
                return Err(e);
            }
        }
        let mut texts: Vec<(LogEncoding, Option<crate::format::Formatted>)> = Vec::new();
        while (report.entries as usize) < limit {
            if !self.raw.next().map_err(op("next"))? {
                break;
            }
            report.entries += 1;
            self.stats.entries += 1;
            let realtime = self.raw.realtime_usec().unwrap_or(0);
            // pending subscribers: compare this entry with their start points
            let mut cursor = None;
            if self
                .subs
                .iter()
                .any(|s| matches!(s.state, SubState::Pending(_)))
            {
                let c = self.raw.cursor().map_err(op("get_cursor"))?;
                let parsed = Cursor::parse(&c);
                for s in &mut self.subs {
                    if let SubState::Pending(a) = &s.state {
                        let ok = match &parsed {
                            Some(p) => a.admits(p),
                            None => match a {
                                After::Since(t) => realtime >= *t,
                                After::Cursor(p) => realtime > p.realtime_usec(),
                            },
                        };
                        if ok {
                            s.state = SubState::Live;
                        }
                    }
                }
                cursor = Some(c);
            }
            let truncated = match self.load_entry() {
                Ok(t) => t,
                Err(e) => {
                    self.stats.unreadable += 1;
                    report
                        .skipped
                        .push(format!("unreadable journal entry skipped: {e}"));
                    self.last = Some(Last {
                        usec: realtime,
                        cursor,
                    });
                    continue;
                }
            };
            let data: Vec<&[u8]> = self
                .spans
                .iter()
                .map(|&(s, n)| &self.arena[s..s + n])
                .collect();
            let mut f = EntryFields {
                realtime_usec: realtime,
                ..EntryFields::default()
            };
            for d in &data {
                match d.first() {
                    Some(b'M') => {
                        if let Some(v) = field(d, b"MESSAGE") {
                            f.messages.push(v);
                        }
                    }
                    Some(b'S') => {
                        if let Some(v) = field(d, b"SYSLOG_IDENTIFIER") {
                            f.identifier.get_or_insert(v);
                        } else if let Some(v) = field(d, b"SYSLOG_PID") {
                            f.syslog_pid.get_or_insert(v);
                        }
                    }
                    Some(b'_') => {
                        if let Some(v) = field(d, b"_HOSTNAME") {
                            f.hostname.get_or_insert(v);
                        } else if let Some(v) = field(d, b"_COMM") {
                            f.comm.get_or_insert(v);
                        } else if let Some(v) = field(d, b"_PID") {
                            f.pid.get_or_insert(v);
                        } else if let Some(v) = field(d, b"_SOURCE_REALTIME_TIMESTAMP") {
                            f.source_realtime.get_or_insert(v);
                        } else if let Some(v) = field(d, b"_SOURCE_MONOTONIC_TIMESTAMP") {
                            f.source_monotonic.get_or_insert(v);
                        }
                    }
                    _ => {}
                }
            }
            let usec = entry_usec(&f);
            self.last = Some(Last { usec, cursor });
            texts.clear();
            let mut delivered_this = false;
            let mut counted_lossy = false;
            let mut counted_skip = false;
            for s in &self.subs {
                if !matches!(s.state, SubState::Live) || !s.matches.matches(&data) {
                    continue;
                }
                if f.messages.is_empty() {
                    if !counted_skip {
                        counted_skip = true;
                        self.stats.no_message += 1;
                        report.skipped.push(format!(
                            "journal entry without MESSAGE skipped (time {usec})"
                        ));
                    }
                    continue;
                }
                let idx = match texts.iter().position(|(e, _)| *e == s.encoding) {
                    Some(i) => i,
                    None => {
                        if f.monotonic_usec == 0 {
                            f.monotonic_usec = self.raw.monotonic_usec().unwrap_or(0);
                        }
                        texts.push((s.encoding, format_line(&f, &s.encoding)));
                        texts.len() - 1
                    }
                };
                if let Some(line) = &texts[idx].1 {
                    if line.lossy && !counted_lossy {
                        counted_lossy = true;
                        self.stats.lossy += 1;
                    }
                    sink(
                        s.id,
                        &JournalLine {
                            text: &line.text,
                            time: usec_to_time(usec),
                            usec,
                        },
                    );
                    report.delivered += 1;
                    self.stats.delivered += 1;
                    delivered_this = true;
                }
            }
            if truncated && delivered_this {
                self.stats.truncated += 1;
                report.skipped.push(format!(
                    "journal MESSAGE longer than {} bytes truncated (time {usec})",
                    self.opts.max_message_bytes
                ));
            }
        }
        report.more = report.entries as usize >= limit;
        if report.entries > 0 {
            self.quiet_since = None;
        } else if self.quiet_since.is_none() {
            self.quiet_since = Some(Instant::now());
        }
        // remember the exact cursor of the last entry read
        if let Some(last) = &mut self.last {
            if last.cursor.is_none() {
                last.cursor = self.raw.cursor().ok();
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_is_send() {
        fn send<T: Send>() {}
        send::<Journal>();
    }

    #[test]
    fn resume_rule() {
        let c = "s=0123456789abcdef0123456789abcdef;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=6553f100;x=1";
        // cursor realtime 0x6553f100 µs = 1700.000000 s
        assert!(matches!(
            Start::resume(Some(c), Some(1700.0), 1800.0, 600.0),
            Start::After { .. }
        ));
        // cursor older than now - findtime: findtime floor
        assert_eq!(
            Start::resume(Some(c), Some(1700.0), 2400.0, 600.0),
            Start::Since(1800.0)
        );
        assert_eq!(
            Start::resume(Some("bogus"), Some(1700.0), 1800.0, 600.0),
            Start::Since(1700.0 + 1e-6)
        );
        assert_eq!(
            Start::resume(None, None, 1800.0, 600.0),
            Start::Since(1200.0)
        );
    }
}
