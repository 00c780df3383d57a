//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Errors of the journal source. Every variant names what it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A `backend = systemd[...]` option is unknown or has a bad value.
    #[error("invalid systemd backend option {option}={value:?}: {reason}")]
    Option {
        /// The option name.
        option: String,
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `journalmatch` term is not `FIELD=value` with a valid field name.
    #[error("invalid journal match {term:?}: {reason}")]
    Match {
        /// The term as given.
        term: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Opening the journal failed.
    #[error("cannot open systemd journal ({what}): {source}")]
    Open {
        /// Which source (`local`, `directory /x`, `files ...`, `namespace n`).
        what: String,
        /// The error from libsystemd.
        #[source]
        source: io::Error,
    },
    /// libsystemd could not be loaded (it is opened with `dlopen` only when
    /// a journal is used).
    #[error(
        "systemd journal support needs libsystemd, which could not be loaded \
         (tried {library}): {reason}; install libsystemd0 (Debian/Ubuntu) or \
         systemd-libs, or use a file-based backend"
    )]
    Library {
        /// The library names tried.
        library: String,
        /// Why loading failed (`dlerror`, or the missing symbol).
        reason: String,
    },
    /// `journalfiles` matched no file.
    #[error("journalfiles {pattern:?} matches no file")]
    NoFiles {
        /// The pattern list as given.
        pattern: String,
    },
    /// A journal operation (seek, read, wait) failed.
    #[error("systemd journal {op} failed: {source}")]
    Journal {
        /// The operation (`seek_cursor`, `next`, `wait`, ...).
        op: &'static str,
        /// The error from libsystemd.
        #[source]
        source: io::Error,
    },
    /// A journal file path given to the reader.
    #[error("journal file {path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

pub(crate) fn op(op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    move |source| JournalError::Journal { op, source }
}
