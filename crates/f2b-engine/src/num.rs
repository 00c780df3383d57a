//! Python-shaped numbers (int vs float) and fail2ban's number formatting.
//!
//! fail2ban's ban times are Python `int`s unless a formula, `rndtime` or a
//! float setting makes them `float`s, and the difference shows in log text
//! (`seconds2str(300)` is `5m`, `seconds2str(300.0)` is `5.0m`).  [`Num`]
//! keeps that distinction.

use std::cmp::Ordering;
use std::fmt;

/// A Python number: `int` or `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// Python `int` (f2b: 64-bit; overflow in expressions promotes to float).
    Int(i64),
    /// Python `float`.
    Float(f64),
}

impl Num {
    /// The value as `f64`.
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Python `int(x)` (truncation toward zero; saturating for huge floats).
    pub fn trunc(self) -> i64 {
        match self {
            Num::Int(i) => i,
            Num::Float(f) => {
                if f.is_nan() {
                    0
                } else {
                    f.trunc() as i64
                }
            }
        }
    }

    /// True for fail2ban's "permanent" ban time (`== -1`).
    pub fn is_permanent(self) -> bool {
        self.as_f64() == -1.0
    }

    /// Python comparison of two numbers.
    pub fn py_cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

impl From<i64> for Num {
    fn from(i: i64) -> Num {
        Num::Int(i)
    }
}

impl From<f64> for Num {
    fn from(f: f64) -> Num {
        Num::Float(f)
    }
}

impl fmt::Display for Num {
    /// Python `str()`: `600`, `600.0`, `1e+16`, `inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => f.write_str(&py_float_repr(*x)),
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` on integral
/// values, exponent form below 1e-4 and from 1e16 on.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let a = x.abs();
    if !(1e-4..1e16).contains(&a) {
        // Rust: "1.5e16" / "1e-5"; Python: "1.5e+16" / "1e-05"
        let s = format!("{x:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let digits = if digits.len() < 2 {
            format!("0{digits}")
        } else {
            digits.to_owned()
        };
        return format!("{mant}e{sign}{digits}");
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// fail2ban's `MyTime.seconds2str` (used in "Increase Ban" and
/// "IP is bad" log lines): `1y 3w 4d`, `2d 7h 15m`, `1h`, `59m 50s`, `0`.
pub fn seconds2str(sec: Num) -> String {
    let v = sec.as_f64();
    if v >= 3595.0 {
        let (unit, groups): (f64, [(i64, &str); 3]) = if v >= 31_536_000.0 {
            (86400.0, [(365, "y"), (7, "w"), (1, "d")])
        } else if v >= 604_800.0 {
            (3600.0, [(168, "w"), (24, "d"), (1, "h")])
        } else if v >= 86400.0 {
            (60.0, [(1440, "d"), (60, "h"), (1, "m")])
        } else {
            (10.0, [(360, "h"), (6, "m"), (0, "")])
        };
        let mut s = py_round(v / unit);
        let mut r = String::new();
        r.push_str(&format!("{}{} ", s.div_euclid(groups[0].0), groups[0].1));
        s = s.rem_euclid(groups[0].0);
        if s >= groups[1].0 {
            r.push_str(&format!("{}{} ", s.div_euclid(groups[1].0), groups[1].1));
            s = s.rem_euclid(groups[1].0);
        }
        if groups[2].0 == 1 && s != 0 {
            r.push_str(&format!("{}{} ", s, groups[2].1));
        }
        r.pop();
        return r;
    }
    let mut r = String::new();
    match sec {
        Num::Int(mut s) => {
            if s >= 60 {
                r.push_str(&format!("{}m ", s.div_euclid(60)));
                s = s.rem_euclid(60);
            }
            if s != 0 {
                r.push_str(&format!("{s}s "));
            } else if sec.as_f64() == 0.0 {
                r = "0 ".into();
            }
        }
        Num::Float(mut s) => {
            if s >= 60.0 {
                r.push_str(&format!("{}m ", py_float_repr((s / 60.0).floor())));
                s = s.rem_euclid(60.0);
            }
            if s != 0.0 {
                r.push_str(&format!("{}s ", py_float_repr(s)));
            } else if sec.as_f64() == 0.0 {
                r = "0 ".into();
            }
        }
    }
    r.pop();
    r
}

/// Python 3 `round(x)` (banker's rounding) as an integer.
pub fn py_round(x: f64) -> i64 {
    let r = x.round();
    let r = if (x - x.trunc()).abs() == 0.5 {
        // tie: round half to even
        let t = x.trunc();
        if (t as i64) % 2 == 0 {
            t
        } else {
            r
        }
    } else {
        r
    };
    r as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_like_python() {
        assert_eq!(py_float_repr(600.0), "600.0");
        assert_eq!(py_float_repr(0.1), "0.1");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(py_float_repr(1234.567 % 60.0), "34.56700000000001");
    }

    #[test]
    fn seconds2str_examples() {
        assert_eq!(seconds2str(Num::Int(86400 * 390)), "1y 3w 4d");
        assert_eq!(seconds2str(Num::Int(86400 * 368)), "1y 3d");
        assert_eq!(
            seconds2str(Num::Int(86400 * 2 + 3600 * 7 + 60 * 15)),
            "2d 7h 15m"
        );
        assert_eq!(seconds2str(Num::Int(86400 * 2 + 3599)), "2d 1h");
        assert_eq!(seconds2str(Num::Int(3600 - 5)), "1h");
        assert_eq!(seconds2str(Num::Int(3600 - 10)), "59m 50s");
        assert_eq!(seconds2str(Num::Int(59)), "59s");
        assert_eq!(seconds2str(Num::Int(0)), "0");
        assert_eq!(seconds2str(Num::Int(600)), "10m");
        assert_eq!(seconds2str(Num::Float(300.5)), "5.0m 0.5s");
    }

    #[test]
    fn rounding_half_even() {
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
        assert_eq!(py_round(2.4), 2);
        assert_eq!(py_round(-2.5), -2);
    }
}
