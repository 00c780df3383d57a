//! Clocks: the only place f2b reads the time.
//!
//! fail2ban works with `time.time()` floats (seconds since the epoch); so does
//! f2b.  The engine never reads a clock itself: the server reads a [`Clock`]
//! and passes `now` into every engine call.  Tests use [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" as Unix seconds (fractional, like Python's `time.time()`).
pub trait Clock: Send + Sync {
    /// Current Unix time in seconds.
    fn now(&self) -> f64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            // clock before 1970: report negative seconds rather than panic
            Err(e) => -e.duration().as_secs_f64(),
        }
    }
}

/// A clock that only moves when told to (tests, simulations).
/// Thread-safe; the value is stored as the bits of an `f64`.
#[derive(Debug)]
pub struct ManualClock {
    bits: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: f64) -> ManualClock {
        ManualClock {
            bits: AtomicU64::new(now.to_bits()),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: f64) {
        self.bits.store(now.to_bits(), Ordering::SeqCst);
    }

    /// Moves the time forward by `secs` (may be negative) and returns the new time.
    pub fn advance(&self, secs: f64) -> f64 {
        let mut cur = self.bits.load(Ordering::SeqCst);
        loop {
            let new = (f64::from_bits(cur) + secs).to_bits();
            match self
                .bits
                .compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return f64::from_bits(new),
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> f64 {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000.5);
        assert_eq!(c.now(), 1000.5);
        assert_eq!(c.advance(10.0), 1010.5);
        c.set(5.0);
        assert_eq!(c.now(), 5.0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800.0);
    }
}
