//! `f2b regex systemd-journal[...]`: the systemd journal as fail2ban-regex's
//! LOG argument.
//!
//! As fail2ban-regex 1.0.2 (`client/fail2banregex.py`):
//!
//! * a LOG that is not a file and starts with `systemd-journal` is the
//!   journal; its `[...]` options are the `backend = systemd[...]` options
//!   (`journalpath`, `journalfiles`, `journalflags`, `namespace`);
//! * such a LOG makes the filter be read for the `systemd` backend (so
//!   `logtype` defaults to `journal`), even before the journal is opened;
//! * the journal match is `-m/--journalmatch` (shell-split) when given, even
//!   when empty; otherwise the filter's `journalmatch` — its *last* line, as
//!   fail2ban-regex keeps only the last `addjournalmatch` command;
//! * the journal is read from its head; each entry is the line fail2ban
//!   forms (`host ident[pid]: message`, [`f2b_journal::format_line`]) with
//!   the entry's own time, so no date detection runs; the line shown in the
//!   report is `ISO-time␠line`;
//! * without a `datepattern` from the filter there is no date detector, so
//!   the report has no "Date template hits" section.

use std::collections::VecDeque;

use f2b_filter::TupleLine;
use f2b_journal::{
    iso_local, Journal, JournalMatch, JournalOptions, JournalSource, LogEncoding, Start,
    SubscriberId,
};

/// Prefix of a LOG argument naming the journal.
const PREFIX: &str = "systemd-journal";

/// One input item of `f2b regex`: a text line (file, string argument) or a
/// journal entry whose time is known.
pub(crate) enum Input {
    /// A line as read (comments and empty lines are skipped by the caller).
    Text(String),
    /// A journal entry.
    Timed {
        /// The line as the report shows it: `ISO-time line`.
        line: String,
        /// `("", "ISO-time ", line)`, fail2ban's tuple line.
        tuple: TupleLine,
        /// The entry's time (seconds).
        time: f64,
    },
}

/// Whether the LOG argument selects the systemd backend (fail2ban-regex:
/// `cmd_log.startswith("systemd-journal")`).
pub(crate) fn is_journal(log: &str) -> bool {
    log.starts_with(PREFIX)
}

/// The jail overrides a filter is read with for this LOG: the `systemd`
/// backend for a journal (so `logtype` becomes `journal`), none otherwise.
pub(crate) fn filter_overrides(log: &str) -> Vec<(String, String)> {
    if is_journal(log) {
        vec![("backend".to_owned(), "systemd".to_owned())]
    } else {
        Vec::new()
    }
}

/// The journal match words: `-m` (shell-split) when given, else the last
/// `journalmatch` line of the filter.
pub(crate) fn match_words(
    option: Option<&str>,
    from_filter: &[Vec<String>],
) -> Result<Vec<String>, String> {
    match option {
        Some(m) => f2b_config::helpers::shlex_split(m)
            .map_err(|e| format!("invalid --journalmatch {m:?}: {e}")),
        None => Ok(from_filter.last().cloned().unwrap_or_default()),
    }
}

/// Opens the journal named by `log` (`systemd-journal[options]`) with the
/// match `words`; text that is not UTF-8 is decoded with `encoding` (as
/// fail2ban's `setLogEncoding`); pushes fail2ban-regex's header lines.
pub(crate) fn open(
    log: &str,
    words: &[String],
    encoding: &str,
    header: &mut Vec<String>,
) -> Result<JournalLines, String> {
    header.push("Use         systemd journal".to_owned());
    header.push(format!("Use         encoding : {encoding}"));
    let enc = LogEncoding::from_name(encoding).map_err(|e| e.to_string())?;
    let opts = if log.contains('[') {
        f2b_config::helpers::extract_options(log)
            .map_err(|e| format!("Wrong journal options {log:?}: {e}"))?
            .1
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let source = JournalSource::from_options(opts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    let matches = JournalMatch::parse(words).map_err(|e| e.to_string())?;
    let mut journal =
        Journal::open(&source, JournalOptions::default()).map_err(|e| e.to_string())?;
    journal
        .subscribe(SubscriberId(0), matches, enc, Start::Head)
        .map_err(|e| e.to_string())?;
    if !words.is_empty() {
        header.push(format!("Use    journal match : {}", words.join(" ")));
    }
    Ok(JournalLines {
        journal,
        buf: VecDeque::new(),
        done: false,
    })
}

/// The entries of a journal from its head, as [`Input::Timed`] items.
pub(crate) struct JournalLines {
    journal: Journal,
    buf: VecDeque<(String, f64, u64)>,
    done: bool,
}

/// Entries read from libsystemd per batch.
const BATCH: usize = 4096;

impl Iterator for JournalLines {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        loop {
            if let Some((text, time, usec)) = self.buf.pop_front() {
                let mut stamp = iso_local(usec);
                stamp.push(' ');
                let mut line = String::with_capacity(stamp.len() + text.len());
                line.push_str(&stamp);
                line.push_str(&text);
                return Some(Input::Timed {
                    line,
                    tuple: (String::new(), stamp, text),
                    time,
                });
            }
            if self.done {
                return None;
            }
            let buf = &mut self.buf;
            match self.journal.read(BATCH, &mut |_, l| {
                buf.push_back((l.text.to_owned(), l.time, l.usec))
            }) {
                Ok(r) => self.done = !r.more,
                Err(e) => {
                    // fail2ban-regex skips entries it cannot read; a reader
                    // error here ends the input
                    eprintln!("ERROR: {e}");
                    self.done = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn journal_log_detection_and_filter_backend() {
        assert!(is_journal("systemd-journal"));
        assert!(is_journal("systemd-journal[journalflags=1]"));
        assert!(!is_journal("/var/log/auth.log"));
        assert_eq!(filter_overrides("systemd-journal")[0].1, "systemd");
        assert!(filter_overrides("auth.log").is_empty());
    }

    #[test]
    fn journalmatch_option_wins_even_empty_filter_keeps_last_line() {
        let f = vec![words(&["_COMM=a"]), words(&["_COMM=b", "+", "_COMM=c"])];
        assert_eq!(
            match_words(None, &f).unwrap(),
            words(&["_COMM=b", "+", "_COMM=c"])
        );
        assert_eq!(
            match_words(Some("_SYSTEMD_UNIT='x y.service' + _COMM=z"), &f).unwrap(),
            words(&["_SYSTEMD_UNIT=x y.service", "+", "_COMM=z"])
        );
        assert!(match_words(Some(""), &f).unwrap().is_empty());
        assert!(match_words(None, &[]).unwrap().is_empty());
        assert!(match_words(Some("'unclosed"), &f).is_err());
    }

    #[test]
    fn bad_options_and_matches_are_errors() {
        let mut h = Vec::new();
        assert!(open("systemd-journal[bogus=1]", &[], "UTF-8", &mut h).is_err());
        assert!(open(
            "systemd-journal[journalfiles=/nonexistent/x.journal]",
            &[],
            "UTF-8",
            &mut h
        )
        .is_err());
        assert!(open("systemd-journal[journalflags=x]", &[], "UTF-8", &mut h).is_err());
        let e = open(
            "systemd-journal[journalpath=/nonexistent]",
            &words(&["lower=x"]),
            "UTF-8",
            &mut h,
        );
        assert!(e.is_err());
        assert!(open("systemd-journal", &[], "no-such-codec", &mut h).is_err());
    }
}
