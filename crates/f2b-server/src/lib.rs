//! f2b-server: the daemon. Jails wired to log sources (`f2b-tail`), filters
//! (`f2b-filter`), the ban engine (`f2b-engine`), actions (`f2b-actions`), the store
//! (`f2b-store`) and the control socket (`f2b-proto`).

pub mod args;
pub mod control;
pub mod daemon;
pub mod jail;
pub mod log;
pub mod memtrim;
pub mod runtime;
pub mod server;
pub mod transmitter;

/// The fail2ban version f2b answers to `version` (clients compare it).
pub const VERSION: &str = "1.0.2";
