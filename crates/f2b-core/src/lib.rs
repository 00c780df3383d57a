//! f2b-core: the shared vocabulary of f2b (values, durations, addresses, clocks).
pub mod addr;
pub mod clock;
pub mod duration;
pub mod value;
