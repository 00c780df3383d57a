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
//!
//! ```
//! use std::net::IpAddr;
//! use f2b_core::addr::Addr;
//! use f2b_engine::ignore::{FileStamp, IgnoreEnv};
//! use f2b_engine::{Event, Failure, JailEngine, Ticket};
//!
//! struct Env; // no DNS, no own addresses, no files, no ignorecommand
//! impl IgnoreEnv for Env {
//!     fn resolve(&mut self, _: &str) -> Vec<IpAddr> { vec![] }
//!     fn self_ips(&mut self) -> Vec<IpAddr> { vec![] }
//!     fn file_stamp(&mut self, _: &str) -> Option<FileStamp> { None }
//!     fn read_file(&mut self, _: &str) -> Result<String, String> { Err("none".into()) }
//!     fn ignore_command(&mut self, _: &str, _: &Addr, _: Option<&Ticket>) -> Result<bool, String> { Ok(false) }
//! }
//!
//! let mut jail = JailEngine::new("sshd");
//! jail.set_maxretry(3);
//! jail.set_findtime(600.0);
//! jail.set_bantime(600);
//! let mut events = Vec::new();
//! for t in [100.0, 110.0, 120.0] {
//!     let f = Failure { id: Addr::parse("192.0.2.7").unwrap(), ip: None, time: t,
//!                       matches: vec!["sshd: Failed password".into()], data: vec![] };
//!     jail.on_failure(f, t, &mut Env, None, &mut events);
//! }
//! assert!(matches!(&events[3], Event::Ban { ticket, .. } if ticket.failures == 3));
//! assert_eq!(events[3].log_line("sshd", &|t| t.to_string()).unwrap().text, "[sshd] Ban 192.0.2.7");
//! assert_eq!(jail.next_unban_time(), Some(720.0));
//! events.clear();
//! jail.unban_expired(720.5, &mut events);
//! assert!(matches!(&events[0], Event::Unban { .. }));
//! ```

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
