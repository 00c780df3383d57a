//! The line-begin Unix time stamp (`{^LN-BEG}EPOCH`, fail2ban's
//! `DateEpoch(lineBeginOnly=True)`), read without the matcher, and Python's
//! `float()` of a plain decimal without the general parser.
//!
//! The template's regex is [`LN_BEG_REGEX`]:
//! `^(?:\W{0,2})?` then group 1: an optional `(?P<square>(?<=^\[))`,
//! `\d{10,11}\b(?:\.\d{3,6})?`, then `(?(square)(?=\]))` and the word end
//! `(?=\b|\W|$)`.
//!
//! [`recognize`] decides only text that starts with an ASCII digit (so the
//! `\W{0,2}` prefix and the `[` form cannot take part) and where every byte
//! it looks at is ASCII (so `\d`, `\b` and `\W` need no Unicode tables).
//! On such text the backtracking search has these outcomes:
//!
//! * a run of 10 or 11 digits that ends the text or is followed by a
//!   non-word byte other than `.`: that run;
//! * the run followed by `.` and 3 to 6 digits that end the text or are
//!   followed by a non-word byte: run, dot and fraction (the greedy fraction
//!   is tried first and its word end holds);
//! * the run followed by `.` and anything else: the run alone (the fraction
//!   fails at every length, and `.` is a non-word byte).
//!
//! Everything else (a run of another length, a word byte after it) is left
//! to the matcher. The property tests compare both with the regex engine.

use super::fast::is_word;

/// The regex `set_regex` gives `DateEpoch(lineBeginOnly=True)`.
pub(crate) const LN_BEG_REGEX: &str =
    r"^(?:\W{0,2})?((?P<square>(?<=^\[))?\d{10,11}\b(?:\.\d{3,6})?)(?(square)(?=\]))(?=\b|\W|$)";

/// The end of the stamp at the start of `h` (groups 0 and 1 both span
/// `0..end`, `square` is unset), or `None`: undecided, ask the matcher.
pub(crate) fn recognize(h: &[u8]) -> Option<usize> {
    let run = h.iter().take(12).take_while(|b| b.is_ascii_digit()).count();
    if run != 10 && run != 11 {
        return None;
    }
    // whether the word end holds at `i` (`None`: a non-ASCII byte there)
    let ends_at = |i: usize| -> Option<bool> {
        match h.get(i) {
            None => Some(true),
            Some(&c) if c >= 0x80 => None,
            Some(&c) => Some(!is_word(c)),
        }
    };
    match h.get(run) {
        Some(b'.') => {
            let frac = h[run + 1..]
                .iter()
                .take(7)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if (3..=6).contains(&frac) {
                let end = run + 1 + frac;
                match ends_at(end)? {
                    true => Some(end),
                    // the fraction fails at every length: the run alone
                    false => Some(run),
                }
            } else {
                // more than 6 digits: none of the lengths 3-6 ends a word;
                // fewer than 3: no fraction, unless a non-ASCII byte follows
                // (Python's `\d` takes other scripts' digits)
                match h.get(run + 1 + frac) {
                    Some(&c) if c >= 0x80 && frac < 3 => None,
                    _ => Some(run),
                }
            }
        }
        _ => ends_at(run)?.then_some(run),
    }
}

/// Python's `float()` of `d+` or `d+.d+` (ASCII digits), when one IEEE
/// division gives it exactly: at most 19 digits, as an integer below 2^53,
/// over a power of ten (both operands exact, so the one rounding is the
/// correctly rounded decimal, as `float()` is). `None` otherwise.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<f64> {
    let mut m: u64 = 0;
    let mut dot = None;
    for (i, &b) in s.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            // wraps only past 19 digits, which are refused below
            m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        } else if b == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return None;
        }
    }
    let frac = match dot {
        Some(i) if i == 0 || i + 1 == s.len() => return None,
        Some(i) => s.len() - i - 1,
        None => 0,
    };
    let digits = s.len() - usize::from(dot.is_some());
    if digits == 0 || digits > 19 || m >= 1 << 53 {
        return None;
    }
    // at most 18 digits after the dot (one before it)
    const POW10: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    Some(m as f64 / POW10[frac])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Template;
    use proptest::prelude::*;

    /// The end of the regex engine's match, checking the groups.
    fn by_regex(h: &str) -> Option<usize> {
        let t = Template::epoch(true, None, false).unwrap();
        t.match_date(h, 0, h.len()).map(|sp| {
            assert_eq!(sp.get(0), sp.get(1));
            assert_eq!(sp.get(2), None);
            sp.get(0).unwrap().1
        })
    }

    /// The template's own fast path gives the engine's spans.
    fn by_template(h: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let t = Template::epoch(true, None, false).unwrap();
        let sp = t.match_date_fast(h, 0, h.len())?;
        Some((0..3).map(|i| sp.get(i)).collect())
    }

    #[test]
    fn template_regex_is_the_recognized_one() {
        let t = Template::epoch(true, None, false).unwrap();
        assert_eq!(t.regex, LN_BEG_REGEX);
        assert!(t.epoch_ln_beg);
        assert!(!Template::epoch(false, None, false).unwrap().epoch_ln_beg);
        assert!(!Template::epoch(true, None, true).unwrap().epoch_ln_beg);
    }

    #[test]
    fn common_stamps() {
        for (h, end) in [
            ("1732288161.123456 host x", Some(17)),
            ("1732288161 host", Some(10)),
            ("17322881612 host", Some(11)),
            ("1732288161", Some(10)),
            ("1732288161.12 x", Some(10)),
            ("1732288161.1234567 x", Some(10)),
            ("1732288161.123x", Some(10)),
            ("1732288161.123", Some(14)),
            ("1732288161x", None),
            ("173228816 x", None),
            ("173228816123 x", None),
            ("[1732288161] x", None),
        ] {
            assert_eq!(recognize(h.as_bytes()), end, "{h:?}");
            if let Some(e) = end {
                assert_eq!(by_regex(h), Some(e), "{h:?}");
            }
        }
    }

    #[test]
    fn decimals() {
        for s in [
            "1732288161.123456",
            "0.1",
            "1",
            "9007199254740991",
            "1.5",
            "00012.000",
        ] {
            assert_eq!(parse_decimal(s.as_bytes()), s.parse::<f64>().ok(), "{s}");
        }
        for s in ["", ".5", "5.", "1e5", "9007199254740992", "1.2.3", "-1"] {
            assert_eq!(parse_decimal(s.as_bytes()), None, "{s}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn agrees_with_the_regex(h in "[0-9]{8,13}(\\.[0-9]{0,8})?[ a_.:\\]é0-9\\n]{0,3}[a-z ]{0,3}") {
            if let Some(end) = recognize(h.as_bytes()) {
                prop_assert_eq!(by_regex(&h), Some(end));
            }
            let t = Template::epoch(true, None, false).unwrap();
            let engine = t.match_date(&h, 0, h.len()).map(|sp| (0..3).map(|i| sp.get(i)).collect::<Vec<_>>());
            prop_assert_eq!(by_template(&h), engine);
        }

        #[test]
        fn decimal_is_python_float(int in "[0-9]{1,17}", frac in proptest::option::of("[0-9]{1,8}")) {
            let s = match &frac { Some(f) => format!("{int}.{f}"), None => int.clone() };
            if let Some(v) = parse_decimal(s.as_bytes()) {
                prop_assert_eq!(Some(v), s.parse::<f64>().ok());
            }
        }
    }
}
