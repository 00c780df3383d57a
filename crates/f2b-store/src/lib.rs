//! f2b-store: fail2ban's SQLite database (schema v4), the only part of f2b
//! that touches SQLite.
//!
//! A database written by Python fail2ban opens here unchanged (older schemas
//! are upgraded as fail2ban does), and fail2ban and its tools can read what
//! f2b writes. Differences are only in how it is opened: WAL journal,
//! `synchronous=NORMAL` (or `FULL`), foreign keys on, incremental
//! auto-vacuum for new files. A ban is committed before [`Store::add_ban`]
//! returns. Time is always passed in; the store never reads the clock.
//!
//! ```
//! use f2b_store::{BanRecord, CurrentBansQuery, OpenOptions, Store};
//! let store = Store::open_in_memory(&OpenOptions::new(1_700_000_000))?;
//! store.add_jail("sshd")?;
//! let ban = BanRecord::new("192.0.2.1", 1_700_000_000, 600, 1)
//!     .with_matches(["Failed password for root from 192.0.2.1"])
//!     .with_failures(5);
//! store.add_ban("sshd", &ban)?;
//! let active = store.current_bans(&CurrentBansQuery::jail("sshd", 1_700_000_100))?;
//! assert_eq!(active[0].ban, ban);
//! # Ok::<(), f2b_store::StoreError>(())
//! ```

mod checkpoint;
mod error;
mod import;
mod json;
mod model;
mod schema;
mod store;

pub use error::{Result, StoreError};
pub use model::{
    BanData, BanHistory, BanRecord, CurrentBansQuery, HistoryScope, ImportStats, JailBan,
    JournalPosition, LogPosition, MergedBan, PurgeStats, TicketData,
};
pub use schema::SCHEMA_VERSION;
pub use serde_json;
pub use store::{
    DbFile, OpenOptions, Store, Synchronous, WriteBatch, JOURNAL_CURSOR_PATH, JOURNAL_PATH,
};
