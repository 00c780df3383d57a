//! Errors of the store, with the database and the operation that failed.

use std::path::PathBuf;

/// Everything that can go wrong while opening or using a fail2ban database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite could not open (or create) the file.
    #[error("cannot open database {db}: {source}")]
    Open {
        /// The database path (or `:memory:`).
        db: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not an SQLite database, or is an SQLite
    /// database that is not shaped like fail2ban's.
    #[error("{db} is not a fail2ban database: {reason}")]
    NotFail2banDb {
        /// The database path.
        db: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The schema version is newer than this build understands.
    #[error("database {db} has schema version {found}; this f2b supports up to version {supported} (refusing to touch it)")]
    FutureVersion {
        /// The database path.
        db: String,
        /// Version found in `fail2banDb`.
        found: i64,
        /// Version this crate writes.
        supported: i64,
    },
    /// The schema version is not one fail2ban ever wrote (0, negative, not a number).
    #[error("database {db} has an unknown schema version {found:?}")]
    UnknownVersion {
        /// The database path.
        db: String,
        /// What `SELECT version FROM fail2banDb` returned.
        found: String,
    },
    /// Before an upgrade the database is copied aside (as fail2ban does); that copy failed.
    #[error("cannot back up database {db} to {backup} before upgrading it: {source}")]
    Backup {
        /// The database path.
        db: String,
        /// The backup file that could not be written.
        backup: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database {db}: {op} failed: {source}")]
    Sql {
        /// The database path (or `:memory:`).
        db: String,
        /// What the store was doing.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system operation failed.
    #[error("database {db}: {op} failed: {source}")]
    Io {
        /// The database path.
        db: String,
        /// What the store was doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `import_db` was asked to import a database into itself.
    #[error("cannot import {src} into itself")]
    ImportIntoSelf {
        /// The source path.
        src: PathBuf,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
