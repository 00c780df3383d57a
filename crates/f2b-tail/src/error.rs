//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Errors reported by log sources.
///
/// Every variant names the file (or pattern) it concerns. Failures that are
/// part of normal operation for a tailing daemon (a file vanishing, a file that
/// becomes unreadable after rotation) are not errors of `read_lines`: they are
/// reported as [`crate::TailEvent`]s and retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// Opening a log file failed.
    #[error("cannot open log file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or stat-ing an open log file failed.
    #[error("cannot read log file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A `logpath` glob pattern is malformed.
    #[error("invalid logpath pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// `logencoding` names an encoding that is unknown or not supported for
    /// line-oriented reading (UTF-16/32 are not: their newlines are not bytes).
    #[error("unsupported logencoding {name:?}")]
    Encoding {
        /// The name as given.
        name: String,
    },
    /// `backend` names a backend this crate does not provide.
    #[error("unsupported backend {name:?}: {reason}")]
    Backend {
        /// The name as given.
        name: String,
        /// Why it is not available.
        reason: &'static str,
    },
    /// The file-change watcher failed (inotify read or poll(2) error).
    #[error("file watcher failed: {source}")]
    Watcher {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
