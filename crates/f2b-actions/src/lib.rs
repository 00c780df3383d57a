//! f2b-actions: fail2ban's action.d shell actions, and the only crate in
//! f2b that spawns processes.
//!
//! A jail's actions arrive from the configuration as
//! `['set', jail, 'addaction', name]` followed by
//! `['multi-set', jail, 'action', name, [[key, value], ...]]`. Each becomes a
//! [`CommandAction`] inside the jail's [`JailActions`]. Commands are rendered
//! with fail2ban's tag rules ([`tags`]) and run as `sh -c` by the
//! [`Executor`] with a per-action timeout that kills the whole process group.
//!
//! Everything that runs a command is `async` (tokio) and takes `&mut self`:
//! one jail's actions run in order, other jails are never blocked by them.
//!
//! Values that come from log lines (matches, `<F-USER>`, ticket ids from
//! `<F-ID>`, reverse DNS names) are never pasted into a script when they hold
//! any shell-significant character: they travel as positional arguments and
//! the script refers to them as `$f2bV_<tag>` (see
//! [`tags::replace_dynamic_tags`]).

pub mod action;
pub mod error;
pub mod exec;
pub mod info;
pub mod jail;
mod spawn;
pub mod stream;
pub mod tags;

pub use action::{parse_bool, parse_seconds, ActionEnv, Clock, CommandAction, LogLevel, LogSink};
pub use error::ActionError;
pub use exec::{ExecOutcome, Executor, Recording};
pub use info::{BanTicket, Family, JailInfo, MergedInfo, StaticJailInfo, TicketData};
pub use jail::{ActionFailure, JailActions};
pub use tags::{escape_tag, BuiltinTags, RenderedCommand};
