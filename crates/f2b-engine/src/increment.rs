//! The `bantime.*` family: `increment`, `factor`, `formula`, `multipliers`,
//! `maxtime`, `rndtime`, `overalljails`.
//!
//! Mirrors fail2ban's `Jail.setBanTimeExtra`: options are set one at a time
//! (as the `set <jail> bantime.<opt> <value>` commands do), an empty value
//! unsets, and the combined calculation is rebuilt after each change, so a
//! bad formula is rejected when it is set.  The calculation
//! (`evformula`) is, for a previous ban count `c` and base ban time `t`:
//!
//! * with `multipliers` `m0 m1 ...`: `t * factor * m[min(c, len-1)]`
//! * otherwise: `max(t, formula)` (default formula
//!   `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`)
//! * then `min(result, maxtime)` if `maxtime` is set
//! * then `result + random() * rndtime` if `rndtime` is set.

use crate::expr::{EvalError, Expr, ExprError, Scope, Vars};
use crate::num::Num;

/// fail2ban's default `bantime.formula`.
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

/// Error setting a `bantime.*` option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncrementError {
    /// `formula` or `factor` does not parse in the safe subset.
    #[error("bantime.{option}: {source}")]
    Expr {
        /// Option name (`formula` / `factor`).
        option: String,
        /// Parse error.
        source: ExprError,
    },
    /// `factor` fails to evaluate.
    #[error("bantime.factor: {source}")]
    Factor {
        /// Evaluation error.
        source: EvalError,
    },
    /// A `multipliers` item is not an integer.
    #[error("bantime.multipliers: invalid literal for int(): {item:?}")]
    Multiplier {
        /// The offending item.
        item: String,
    },
    /// `maxtime` / `rndtime` is not a duration.
    #[error("bantime.{option}: invalid time {value:?}")]
    Time {
        /// Option name.
        option: String,
        /// The value given.
        value: String,
    },
    /// Unknown option name.
    #[error("unknown option bantime.{option}")]
    Unknown {
        /// The option.
        option: String,
    },
}

/// A source of uniform random numbers in `[0, 1)` (for `rndtime`).
pub trait RandomSource: Send {
    /// Next value in `[0, 1)`.
    fn next_f64(&mut self) -> f64;
}

/// A small xorshift64* generator: deterministic given the seed.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Creates a generator (a zero seed is replaced by a fixed constant).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
}

impl RandomSource for XorShift {
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `bantime.*` settings of one jail.
#[derive(Debug, Clone)]
pub struct BanTimeExtra {
    raw: Vec<(String, String)>,
    increment: bool,
    overalljails: bool,
    factor: Num,
    formula: Expr,
    multipliers: Vec<i64>,
    maxtime: Option<Num>,
    rndtime: Option<Num>,
}

impl Default for BanTimeExtra {
    fn default() -> Self {
        BanTimeExtra {
            raw: Vec::new(),
            increment: false,
            overalljails: false,
            factor: Num::Int(1),
            formula: Expr::compile(DEFAULT_FORMULA, Scope::Formula)
                .unwrap_or_else(|e| unreachable!("default formula: {e}")),
            multipliers: Vec::new(),
            maxtime: None,
            rndtime: None,
        }
    }
}

/// fail2ban's `_as_bool`.
pub fn as_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

impl BanTimeExtra {
    /// `set <jail> bantime.<opt> <value>`; `""` unsets.  `to_seconds`
    /// converts `maxtime`/`rndtime` text like `5w` (fail2ban's
    /// `str2seconds`).  On error nothing changes.
    pub fn set(
        &mut self,
        opt: &str,
        value: &str,
        to_seconds: &dyn Fn(&str) -> Option<Num>,
    ) -> Result<(), IncrementError> {
        let mut next = self.clone();
        next.raw.retain(|(k, _)| k != opt);
        let val = (!value.is_empty()).then_some(value);
        match opt {
            "increment" => next.increment = val.is_some_and(as_bool),
            "overalljails" => next.overalljails = val.is_some_and(as_bool),
            "factor" => {
                next.factor = match val {
                    None => Num::Int(1),
                    Some(v) => {
                        let e = Expr::compile(v, Scope::Constant).map_err(|source| {
                            IncrementError::Expr {
                                option: opt.into(),
                                source,
                            }
                        })?;
                        e.eval(&Vars {
                            time: Num::Int(0),
                            count: 0,
                            factor: Num::Int(1),
                        })
                        .map_err(|source| IncrementError::Factor { source })?
                    }
                }
            }
            "formula" => {
                next.formula = Expr::compile(val.unwrap_or(DEFAULT_FORMULA), Scope::Formula)
                    .map_err(|source| IncrementError::Expr {
                        option: opt.into(),
                        source,
                    })?
            }
            "multipliers" => {
                next.multipliers = match val {
                    None => Vec::new(),
                    Some(v) => v
                        .split_whitespace()
                        .map(|i| {
                            i.parse::<i64>()
                                .map_err(|_| IncrementError::Multiplier { item: i.into() })
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
            "maxtime" | "rndtime" => {
                let secs = match val {
                    None => None,
                    Some(v) => Some(to_seconds(v).ok_or_else(|| IncrementError::Time {
                        option: opt.into(),
                        value: v.into(),
                    })?),
                };
                if opt == "maxtime" {
                    next.maxtime = secs;
                } else {
                    next.rndtime = secs;
                }
            }
            _ => return Err(IncrementError::Unknown { option: opt.into() }),
        }
        if let Some(v) = val {
            next.raw.push((opt.to_owned(), v.to_owned()));
        }
        *self = next;
        Ok(())
    }

    /// `get <jail> bantime.<opt>`: the value as set (None if unset).
    pub fn get(&self, opt: &str) -> Option<&str> {
        self.raw
            .iter()
            .find(|(k, _)| k == opt)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `bantime.increment` is on.
    pub fn increment(&self) -> bool {
        self.increment
    }

    /// Whether `bantime.overalljails` is on.
    pub fn overalljails(&self) -> bool {
        self.overalljails
    }

    /// `bantime.maxtime` in seconds, if set.
    pub fn maxtime(&self) -> Option<Num> {
        self.maxtime
    }

    /// The evaluated `bantime.factor`.
    pub fn factor(&self) -> Num {
        self.factor
    }

    /// fail2ban's `evformula(BanTimeIncr(time, count))`.
    pub fn calc(
        &self,
        time: Num,
        count: i64,
        rng: &mut dyn RandomSource,
    ) -> Result<Num, EvalError> {
        let mut r = if self.multipliers.is_empty() {
            let vars = Vars {
                time,
                count,
                factor: self.factor,
            };
            let f = self.formula.eval(&vars)?;
            py_max(time, f)
        } else {
            let len = self.multipliers.len() as i64;
            let idx = if count < len { count } else { len - 1 };
            let m = self.multipliers[usize::try_from(idx)
                .unwrap_or(0)
                .min(self.multipliers.len() - 1)];
            mul(mul(time, self.factor), Num::Int(m))
        };
        if let Some(mt) = self.maxtime {
            // Python min(a, b): b only if strictly smaller
            if mt.py_cmp(r) == Some(std::cmp::Ordering::Less) {
                r = mt;
            }
        }
        if let Some(rt) = self.rndtime {
            r = Num::Float(r.as_f64() + rng.next_f64() * rt.as_f64());
        }
        Ok(r)
    }
}

fn py_max(a: Num, b: Num) -> Num {
    if b.py_cmp(a) == Some(std::cmp::Ordering::Greater) {
        b
    } else {
        a
    }
}

fn mul(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x
            .checked_mul(y)
            .map_or(Num::Float(x as f64 * y as f64), Num::Int),
        _ => Num::Float(a.as_f64() * b.as_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &str) -> Option<Num> {
        v.parse::<i64>().ok().map(Num::Int)
    }

    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn next_f64(&mut self) -> f64 {
            self.0
        }
    }

    #[test]
    fn defaults_double_each_time() {
        let b = BanTimeExtra::default();
        let mut r = Fixed(0.0);
        assert_eq!(b.calc(Num::Int(600), 1, &mut r).unwrap(), Num::Int(1200));
        assert_eq!(b.calc(Num::Int(600), 2, &mut r).unwrap(), Num::Int(2400));
    }

    #[test]
    fn multipliers_maxtime_rndtime() {
        let mut b = BanTimeExtra::default();
        b.set("multipliers", "1 5 30 60", &secs).unwrap();
        b.set("maxtime", "7200", &secs).unwrap();
        let mut r = Fixed(0.5);
        assert_eq!(b.calc(Num::Int(60), 1, &mut r).unwrap(), Num::Int(300));
        assert_eq!(b.calc(Num::Int(60), 3, &mut r).unwrap(), Num::Int(3600));
        assert_eq!(b.calc(Num::Int(60), 9, &mut r).unwrap(), Num::Int(3600));
        assert_eq!(b.calc(Num::Int(600), 9, &mut r).unwrap(), Num::Int(7200));
        b.set("rndtime", "10", &secs).unwrap();
        assert_eq!(b.calc(Num::Int(60), 1, &mut r).unwrap(), Num::Float(305.0));
        assert!(b.set("multipliers", "1 x", &secs).is_err());
        assert_eq!(b.get("multipliers"), Some("1 5 30 60"));
        b.set("multipliers", "", &secs).unwrap();
        assert_eq!(b.get("multipliers"), None);
    }

    #[test]
    fn bad_formula_rejected_when_set() {
        let mut b = BanTimeExtra::default();
        assert!(b
            .set("formula", "__import__('os').system('id')", &secs)
            .is_err());
        assert!(b.set("factor", "ban.Time", &secs).is_err());
        b.set("factor", "2", &secs).unwrap();
        assert_eq!(b.factor(), Num::Int(2));
    }

    #[test]
    fn xorshift_in_unit_interval() {
        let mut x = XorShift::new(42);
        for _ in 0..1000 {
            let v = x.next_f64();
            assert!((0.0..1.0).contains(&v));
        }
    }
}
