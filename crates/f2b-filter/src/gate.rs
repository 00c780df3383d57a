//! The failregex gate: one pass over a buffer that tells which failregexes
//! can match it.
//!
//! A filter tries its failregexes one after the other (sshd has 22, all of
//! them with `checkAllRegex`). Most log lines match none of them, yet each
//! try is a call into a regex engine. The gate compiles the linear-time form
//! of every failregex (the exact pattern, or a superset of a backtracking
//! one) into one [`regex::RegexSet`], so a single DFA pass over the buffer
//! says which regexes are worth trying. A regex without a linear form is
//! always tried.
//!
//! Invariant: if the gate says regex `i` cannot match buffer `b`, then
//! `PyRegex::search(b)` of regex `i` finds nothing. This holds because each
//! set member is the regex's exact linear pattern or a superset of it (see
//! [`PyRegex::linear_pattern`]); the ASCII (byte) set is used only on ASCII
//! buffers, where it agrees with the Unicode set (the reasoning of
//! `dialect::Linear`).
use crate::dialect::PyRegex;
use std::sync::OnceLock;

/// Size limits: as the single regexes' (the set is their union).
const SIZE_LIMIT: usize = 64 << 20;
/// Lazy DFA cache for the whole set (it is one automaton for all regexes).
const DFA_LIMIT: usize = 8 << 20;

/// Which failregexes can match a buffer.
pub(crate) struct Gate {
    /// `member[i]`: index of regex `i` in the set, `None` = always try.
    member: Vec<Option<usize>>,
    patterns: Vec<String>,
    /// `ſ` / Kelvin sign fold to ASCII letters: no byte-level set then.
    ascii_ok: bool,
    ascii: OnceLock<Option<regex::bytes::RegexSet>>,
    unicode: OnceLock<Option<regex::RegexSet>>,
}

/// The gate's answer for one buffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    /// `None`: every regex may match (no usable set).
    maybe: Option<Vec<bool>>,
}

impl Candidates {
    /// True if regex `i` may match the buffer.
    pub(crate) fn may(&self, i: usize) -> bool {
        self.maybe
            .as_ref()
            .is_none_or(|m| m.get(i).copied().unwrap_or(true))
    }

    /// True if no regex can match the buffer.
    pub(crate) fn none(&self) -> bool {
        self.maybe.as_ref().is_some_and(|m| !m.contains(&true))
    }
}

impl Gate {
    /// A gate over `regexes` (in failregex order); nothing is compiled yet.
    pub(crate) fn new<'a>(regexes: impl IntoIterator<Item = &'a PyRegex>) -> Gate {
        let mut member = Vec::new();
        let mut patterns = Vec::new();
        for r in regexes {
            match r.linear_pattern() {
                Some(p) => {
                    member.push(Some(patterns.len()));
                    patterns.push(p.to_string());
                }
                None => member.push(None),
            }
        }
        Gate {
            ascii_ok: !patterns.iter().any(|p| p.contains(['\u{17f}', '\u{212a}'])),
            member,
            patterns,
            ascii: OnceLock::new(),
            unicode: OnceLock::new(),
        }
    }

    fn ascii(&self) -> Option<&regex::bytes::RegexSet> {
        if !self.ascii_ok {
            return None;
        }
        self.ascii
            .get_or_init(|| {
                regex::bytes::RegexSetBuilder::new(&self.patterns)
                    .unicode(false)
                    .size_limit(SIZE_LIMIT)
                    .dfa_size_limit(DFA_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    fn unicode(&self) -> Option<&regex::RegexSet> {
        self.unicode
            .get_or_init(|| {
                regex::RegexSetBuilder::new(&self.patterns)
                    .size_limit(SIZE_LIMIT)
                    .dfa_size_limit(DFA_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// Which regexes may match `hay`.
    pub(crate) fn candidates(&self, hay: &str) -> Candidates {
        if self.patterns.is_empty() {
            return Candidates::default();
        }
        let hits: Option<Vec<bool>> = match self.ascii().filter(|_| hay.is_ascii()) {
            Some(set) => {
                let m = set.matches(hay.as_bytes());
                Some((0..self.patterns.len()).map(|i| m.matched(i)).collect())
            }
            None => self.unicode().map(|set| {
                let m = set.matches(hay);
                (0..self.patterns.len()).map(|i| m.matched(i)).collect()
            }),
        };
        let Some(hits) = hits else {
            return Candidates::default();
        };
        Candidates {
            maybe: Some(
                self.member
                    .iter()
                    .map(|m| m.is_none_or(|k| hits[k]))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(pats: &[&str]) -> (Vec<PyRegex>, Gate) {
        let rs: Vec<PyRegex> = pats.iter().map(|p| PyRegex::new(p, false).unwrap()).collect();
        let g = Gate::new(rs.iter());
        (rs, g)
    }

    #[test]
    fn gate_answers_per_regex() {
        let (_, g) = gate(&[r"^Failed \S+ for", r"^Invalid user", r"from (?P<h>\S+)$"]);
        let c = g.candidates("Failed password for root from 1.2.3.4\n");
        assert!(c.may(0) && !c.may(1) && c.may(2) && !c.none());
        assert!(g.candidates("Accepted key\n").none());
        // non-ASCII buffer: the Unicode set
        let c = g.candidates("Invalid user jörg\n");
        assert!(!c.may(0) && c.may(1) && !c.may(2));
    }

    #[test]
    fn backtracking_regex_gated_by_its_superset() {
        // a backreference: the linear form is a superset
        let (rs, g) = gate(&[r"^(?P<a>\w+) again (?P=a)$"]);
        assert!(rs[0].is_backtracking());
        assert!(g.candidates("no match here\n").none());
        assert!(g.candidates("x again x").may(0));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// The gate never hides a match the regex itself finds.
        #[test]
        fn gate_never_hides_a_match(s in "[a-zA-Z0-9 .:\\[\\]äé\n]{0,40}") {
            let (rs, g) = gate(&[
                r"^[aA]uth fail(?:ure)? for (?P<u>\S+)",
                r"(?P<a>\d+)\.(?P=a)",
                r"(?i)ä\s+\w+$",
                r"^(?:x|y)?\[\d*\]",
                r"(?<=\s)foo(?!bar)",
            ]);
            let c = g.candidates(&s);
            for (i, r) in rs.iter().enumerate() {
                if r.search(&s).is_some() {
                    proptest::prop_assert!(c.may(i), "regex {} matched {:?} but was gated", i, s);
                }
            }
        }
    }
}
