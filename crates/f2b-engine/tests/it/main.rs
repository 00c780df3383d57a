//! f2b-engine integration tests (one binary): property tests and the
//! cross-checks against the installed Python fail2ban.

mod properties;
mod python_oracle;
