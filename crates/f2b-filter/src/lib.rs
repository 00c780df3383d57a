//! f2b-filter: fail2ban-compatible filter engine.
pub mod date;
pub mod dialect;
