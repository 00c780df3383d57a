//! f2b-engine: fail2ban's ban logic as a pure state machine.
//!
//! No I/O, no threads, no clock reads: the caller passes `now` (Unix
//! seconds, fractional) into every call, answers outside questions through
//! small traits ([`IgnoreEnv`] for DNS / own addresses / files /
//! `ignorecommand`, [`BanHistory`] for the database's ban history,
//! [`RandomSource`] for `bantime.rndtime`), and receives typed [`Event`]s
//! to log and act upon (run ban/unban actions, write the database).
//!
//! One [`JailEngine`] per jail holds the failure list ([`FailManager`]),
//! the active bans ([`BanManager`]), the ignore rules ([`IgnoreList`]) and
//! the `bantime.*` settings ([`BanTimeExtra`]).

pub mod banmanager;
pub mod expr;
pub mod failmanager;
pub mod ignore;
pub mod increment;
pub mod jail;
pub mod logline;
pub mod num;
pub mod ticket;

pub use banmanager::{AddBan, BanManager};
pub use failmanager::FailManager;
pub use ignore::{FileStamp, IgnoreCacheConfig, IgnoreEnv, IgnoreList, IgnoreResult, IgnoreSource};
pub use increment::{BanTimeExtra, RandomSource, XorShift};
pub use jail::{
    BanHistory, BanRecord, Event, Failure, JailEngine, JailStatus, LineTime, UnbanError,
    UnbanReason,
};
pub use logline::{LogLevel, LogLine, Logger};
pub use num::{seconds2str, Num};
pub use ticket::{Ticket, MAX_TIME};
