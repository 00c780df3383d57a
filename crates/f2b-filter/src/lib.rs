//! f2b-filter: fail2ban-compatible filter engine.
//!
//! * [`dialect`]: Python `re` patterns on Rust engines (linear-time where
//!   possible, budgeted backtracking otherwise);
//! * [`tags`]: `<HOST>`, `<F-USER>`... expansion;
//! * [`date`]: fail2ban's date detector and strptime;
//! * [`filter`]: `Filter` (`processLine` / `findFailure` semantics);
//! * [`conformance`]: the sample-log conformance runner.
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod date;
pub mod dialect;
pub mod expand;
pub mod filter;
mod pcre;
mod quick_syntax;
pub mod tags;
mod txt;
pub mod zone;

pub use filter::{
    Failure, Filter, FilterError, FilterSpec, Resolver, SystemResolver, TupleLine, UseDns,
};
