//! The systemd journal as a log source for f2b: fail2ban's
//! `backend = systemd` with an exact cursor.
//!
//! * [`JournalSource`] is which journal to open, from the
//!   `backend = systemd[journalpath=…, journalfiles=…, journalflags=…,
//!   namespace=…]` options.
//! * [`JournalMatch`] is a jail's `journalmatch` (`FIELD=value` terms, `+`
//!   between alternatives).
//! * [`Journal`] reads one source through libsystemd's `sd_journal`
//!   (linked dynamically) for any number of subscribers (jails), each with
//!   its own match set, encoding and [`Start`]; lines are formed exactly as
//!   fail2ban forms them ([`format_line`]); the failure time is the entry's
//!   own timestamp; [`Journal::position`] gives the exact cursor to persist,
//!   and [`Start::resume`] resumes after it. Follow live by polling
//!   [`Journal::as_raw_fd`] (then [`Journal::process`]) or by
//!   [`Journal::wait`].
//!
//! ```no_run
//! use f2b_journal::{Journal, JournalMatch, JournalOptions, JournalSource, Start};
//! use f2b_tail::{LogEncoding, SubscriberId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = JournalSource::from_options([("journalflags", "4")])?;
//! let mut journal = Journal::open(&source, JournalOptions::default())?;
//! let sshd = JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"])?;
//! journal.subscribe(SubscriberId(1), sshd, LogEncoding::Utf8, Start::Tail)?;
//! loop {
//!     journal.read(1000, &mut |jail, line| println!("{jail:?} {} {}", line.time, line.text))?;
//!     journal.wait(None)?;
//! }
//! # }
//! ```
#![warn(missing_docs)]

mod cursor;
mod error;
mod ffi;
mod format;
mod matches;
mod reader;
mod source;

pub use cursor::Cursor;
pub use error::JournalError;
/// Re-exported from f2b-tail: the subscriber key and text encoding used by
/// [`Journal::subscribe`].
pub use f2b_tail::{LogEncoding, SubscriberId};
pub use format::{entry_usec, format_line, iso_local, usec_to_time, EntryFields, Formatted};
pub use matches::{JournalMatch, MatchGroup};
pub use reader::{
    Change, Journal, JournalLine, JournalOptions, JournalStats, ReadReport, SavedPosition, Start,
    DEFAULT_MAX_MESSAGE_BYTES, RECHECK_AFTER,
};
pub use source::{JournalSource, CURRENT_USER, LOCAL_ONLY, RUNTIME_ONLY, SYSTEM_ONLY};
