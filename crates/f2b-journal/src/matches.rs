//! `journalmatch`: journalctl-style matches with `+` disjunctions, kept as
//! data so one shared reader can evaluate each jail's set itself.

use std::fmt;

use crate::JournalError;

/// One group of terms: terms with the same field are ORed, different fields
/// ANDed (sd_journal's semantics for matches added between disjunctions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MatchGroup {
    /// `FIELD=value` terms in the order given.
    terms: Vec<Vec<u8>>,
}

impl MatchGroup {
    /// The terms as given (`FIELD=value`).
    pub fn terms(&self) -> impl Iterator<Item = &[u8]> {
        self.terms.iter().map(Vec::as_slice)
    }

    fn field(term: &[u8]) -> &[u8] {
        let eq = term.iter().position(|&b| b == b'=').unwrap_or(term.len());
        &term[..eq]
    }

    /// Whether an entry with these data objects (`FIELD=value` each)
    /// satisfies the group.
    pub fn matches(&self, data: &[&[u8]]) -> bool {
        // For each distinct field: at least one of its terms present.
        let mut i = 0;
        let mut seen: Vec<&[u8]> = Vec::new();
        while i < self.terms.len() {
            let field = Self::field(&self.terms[i]);
            i += 1;
            if seen.contains(&field) {
                continue;
            }
            seen.push(field);
            let ok = self
                .terms
                .iter()
                .filter(|t| Self::field(t) == field)
                .any(|t| data.contains(&t.as_slice()));
            if !ok {
                return false;
            }
        }
        true
    }
}

/// A jail's match set: an OR of [`MatchGroup`]s. Empty means every entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JournalMatch {
    groups: Vec<MatchGroup>,
}

/// Validates a term as `sd_journal_add_match` does: `FIELD=value`, field of
/// 1..=64 characters from `A-Z0-9_`, not starting with a digit.
fn check_term(term: &str) -> Result<(), JournalError> {
    let bad = |reason| JournalError::Match {
        term: term.to_owned(),
        reason,
    };
    let Some(eq) = term.find('=') else {
        return Err(bad("expected FIELD=value"));
    };
    let field = &term[..eq];
    if field.is_empty() || field.len() > 64 {
        return Err(bad("field name must be 1 to 64 characters"));
    }
    if field.as_bytes()[0].is_ascii_digit() {
        return Err(bad("field name must not start with a digit"));
    }
    if !field
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad("field name may only contain A-Z, 0-9 and _"));
    }
    Ok(())
}

impl JournalMatch {
    /// Everything (no match).
    pub fn all() -> JournalMatch {
        JournalMatch::default()
    }

    /// Parses one `addjournalmatch` argument list (already split into
    /// words, as fail2ban's shlex split does): terms separated by `+` into
    /// OR-ed groups. Empty groups are dropped (as libsystemd drops empty
    /// disjunctions).
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<JournalMatch, JournalError> {
        let mut m = JournalMatch::default();
        m.add(words)?;
        Ok(m)
    }

    /// fail2ban's `addJournalMatch`: adds the groups of `words` as further
    /// alternatives. On error nothing is added.
    pub fn add<S: AsRef<str>>(&mut self, words: &[S]) -> Result<(), JournalError> {
        let mut groups = vec![MatchGroup::default()];
        for w in words {
            let w = w.as_ref();
            if w == "+" {
                groups.push(MatchGroup::default());
            } else {
                check_term(w)?;
                if let Some(g) = groups.last_mut() {
                    g.terms.push(w.as_bytes().to_vec());
                }
            }
        }
        self.groups
            .extend(groups.into_iter().filter(|g| !g.terms.is_empty()));
        Ok(())
    }

    /// Adds all groups of `other`.
    pub fn or(&mut self, other: &JournalMatch) {
        for g in &other.groups {
            if !self.groups.contains(g) {
                self.groups.push(g.clone());
            }
        }
    }

    /// No group: every entry matches.
    pub fn is_all(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups.
    pub fn groups(&self) -> &[MatchGroup] {
        &self.groups
    }

    /// Whether an entry with these data objects matches.
    pub fn matches(&self, data: &[&[u8]]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g.matches(data))
    }

    /// fail2ban's `getJournalMatch`: one word list per group.
    pub fn to_words(&self) -> Vec<Vec<String>> {
        self.groups
            .iter()
            .map(|g| {
                g.terms
                    .iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect()
            })
            .collect()
    }
}

/// fail2ban's status form: groups' terms joined by spaces, groups by ` + `.
impl fmt::Display for JournalMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = self.to_words();
        let parts: Vec<String> = words.iter().map(|g| g.join(" ")).collect();
        f.write_str(&parts.join(" + "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_groups_and_display() {
        let m = JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd", "+", "+"])
            .unwrap();
        assert_eq!(m.groups().len(), 2);
        assert_eq!(m.to_string(), "_SYSTEMD_UNIT=sshd.service + _COMM=sshd");
    }

    #[test]
    fn same_field_or_other_field_and() {
        let m = JournalMatch::parse(&["_COMM=a", "_COMM=b", "PRIORITY=3"]).unwrap();
        assert!(m.matches(&[b"_COMM=b", b"PRIORITY=3"]));
        assert!(!m.matches(&[b"_COMM=b", b"PRIORITY=4"]));
        assert!(!m.matches(&[b"_COMM=c", b"PRIORITY=3"]));
        assert!(JournalMatch::all().matches(&[]));
    }

    #[test]
    fn invalid_terms() {
        for t in ["sshd", "=x", "lower=x", "1A=x", "A-B=x"] {
            assert!(JournalMatch::parse(&[t]).is_err(), "{t}");
        }
        assert!(JournalMatch::parse(&["A=", "_X_1=a=b"]).is_ok());
    }

    proptest! {
        /// Matching agrees with a direct reading of the semantics: some group
        /// where every field named in it has one of its values present.
        #[test]
        fn matches_model(
            groups in proptest::collection::vec(
                proptest::collection::vec((0u8..3, 0u8..3), 1..4), 0..4),
            entry in proptest::collection::vec((0u8..3, 0u8..3), 0..5),
        ) {
            let mut words = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                if i > 0 { words.push("+".to_owned()); }
                for (f, v) in g { words.push(format!("F{f}=v{v}")); }
            }
            let m = JournalMatch::parse(&words).unwrap();
            let data: Vec<Vec<u8>> = entry.iter().map(|(f, v)| format!("F{f}=v{v}").into_bytes()).collect();
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let model = groups.is_empty() || groups.iter().any(|g| {
                g.iter().all(|(f, _)| g.iter().filter(|(f2, _)| f2 == f)
                    .any(|(_, v)| entry.contains(&(*f, *v))))
            });
            prop_assert_eq!(m.matches(&refs), model);
        }
    }
}
