//! fail2ban's option-string helpers: `name[k=v, ...]` parsing, splitting a
//! multi-line `action =` value, `splitwords`, recursive `<tag>` substitution
//! and `shlex.split`.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;

use crate::py::strip;

static OPTION_CRE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\A([^\[]+)(?:\[(.*)\])?\s*\z").expect("static regex"));
static OPTION_EXTRACT_CRE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?s)\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|\z|(?P<wrngA>.+))|,?\s*\z|(?P<wrngB>.+)"#,
    )
    .expect("static regex")
});
// The lookahead `(?=\n\s*|\s+|$)` of fail2ban's OPTION_SPLIT_CRE is the same as
// "followed by whitespace or the end"; it is consumed here and stripped after.
static OPTION_SPLIT_CRE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?:\s|\z)"#,
    )
    .expect("static regex")
});
static TAG_CRE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<([^ <>]+)>").expect("static regex"));

/// Ordered string map (Python dict of str).
pub type StrMap = IndexMap<String, String>;

/// Ordered map of optional strings (Python dict of `str` or `None`).
pub type PyStrMap = IndexMap<String, Option<String>>;

/// Why `name[k=v,...]` could not be parsed (fail2ban's `extractOptions` ValueError).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionSyntaxError {
    /// The whole string does not look like `name[...]`.
    #[error("unexpected option syntax")]
    Unexpected,
    /// Garbage after an option value.
    #[error("unexpected syntax at {pos} after option {}: {text}", crate::cfg::py_repr(.option))]
    AfterOption {
        /// Character offset in the option list.
        pos: usize,
        /// The option before the garbage.
        option: String,
        /// Up to 25 characters of the garbage.
        text: String,
    },
    /// Something that is not `k=v`.
    #[error("expected option, wrong syntax at {pos}: {text}")]
    Expected {
        /// Character offset in the option list.
        pos: usize,
        /// Up to 25 characters of the garbage.
        text: String,
    },
}

fn first_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn char_pos(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

/// fail2ban's `extractOptions("name[k=v, k2=\"v, 2\"]")` → `("name", {k: v, k2: "v, 2"})`.
pub fn extract_options(option: &str) -> Result<(String, StrMap), OptionSyntaxError> {
    let m = OPTION_CRE
        .captures(option)
        .ok_or(OptionSyntaxError::Unexpected)?;
    let name = m.get(1).map_or("", |x| x.as_str()).to_owned();
    let mut opts = StrMap::new();
    if let Some(optstr) = m.get(2).map(|x| x.as_str()).filter(|s| !s.is_empty()) {
        for c in OPTION_EXTRACT_CRE.captures_iter(optstr) {
            if let Some(w) = c.name("wrngA") {
                return Err(OptionSyntaxError::AfterOption {
                    pos: char_pos(optstr, w.start()),
                    option: c.get(1).map_or("", |x| x.as_str()).to_owned(),
                    text: first_chars(w.as_str(), 25),
                });
            }
            if let Some(w) = c.name("wrngB") {
                return Err(OptionSyntaxError::Expected {
                    pos: char_pos(optstr, w.start()),
                    text: first_chars(w.as_str(), 25),
                });
            }
            let Some(opt) = c.get(1) else { continue };
            let value = c
                .get(2)
                .or_else(|| c.get(3))
                .or_else(|| c.get(4))
                .map_or("", |x| x.as_str());
            opts.insert(strip(opt.as_str()).to_owned(), strip(value).to_owned());
        }
    }
    Ok((name, opts))
}

/// fail2ban's `splitWithOptions`: splits an `action =` value into single
/// action specs, keeping `[...]` option lists (even multi-line) together.
/// Items are returned as matched (callers strip them).
pub fn split_with_options(option: &str) -> Vec<String> {
    OPTION_SPLIT_CRE
        .find_iter(option)
        .map(|m| {
            let s = m.as_str();
            match s.chars().last() {
                Some(c) if crate::py::isspace(c) => s[..s.len() - c.len_utf8()].to_owned(),
                _ => s.to_owned(),
            }
        })
        .collect()
}

/// fail2ban's `splitwords`: split on commas, spaces and newlines, dropping empties.
pub fn splitwords(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(strip)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// fail2ban's `MAX_TAG_REPLACE_COUNT`.
pub const MAX_TAG_REPLACE_COUNT: u32 = 25;

/// Error of recursive tag substitution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("properties contain self referencing definitions and cannot be resolved, fail tag: {tag}, found: {found} in {counts}, value: {value}")]
pub struct TagRecursionError {
    /// The tag being substituted.
    pub tag: String,
    /// The tag found inside it.
    pub found: String,
    /// Python repr of the replacement counts.
    pub counts: String,
    /// The value at the time of failure.
    pub value: String,
}

/// fail2ban's `substituteRecursiveTags(tags, ignore=ignore, addrepl=addrepl)`:
/// replaces `<tag>` in every value by the value of that tag, repeatedly.
/// `addrepl` resolves tags missing from the map.
pub fn substitute_recursive_tags(
    inptags: &PyStrMap,
    ignore: &std::collections::HashSet<String>,
    addrepl: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<PyStrMap, TagRecursionError> {
    let mut tags = inptags.clone();
    let mut done: std::collections::HashSet<String> = Default::default();
    let mut rep_counts: std::collections::HashMap<String, IndexMap<String, u32>> =
        Default::default();
    loop {
        let mut rep_flag = false;
        let keys: Vec<String> = tags.keys().cloned().collect();
        for tag in keys {
            if ignore.contains(&tag) || done.contains(&tag) {
                continue;
            }
            let Some(Some(orgval)) = tags.get(&tag).cloned() else {
                // Python `None` stays `None` (its str() holds no tag)
                continue;
            };
            let mut value = orgval.clone();
            let mut rplc = rep_counts.get(&tag).cloned().unwrap_or_default();
            let mut pos = 0usize;
            while let Some(c) = TAG_CRE.captures_at(&value, pos) {
                let (Some(whole), Some(rt)) = (c.get(0), c.get(1)) else {
                    break;
                };
                let rtag = rt.as_str().to_owned();
                let (mstart, mend) = (whole.start(), whole.end());
                if ignore.contains(&rtag) {
                    pos = mend;
                    continue;
                }
                if rtag == tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    let counts = format!(
                        "{{{}}}",
                        rplc.iter()
                            .map(|(k, v)| format!("{}: {v}", crate::cfg::py_repr(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return Err(TagRecursionError {
                        tag,
                        found: rtag,
                        counts,
                        value,
                    });
                }
                let repl = match tags.get(&rtag) {
                    Some(Some(v)) => Some(v.clone()),
                    _ => addrepl(&rtag),
                };
                let Some(repl) = repl else {
                    pos = mend;
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *rplc.entry(rtag).or_insert(0) += 1;
                pos = mstart;
            }
            let existed = rep_counts.contains_key(&tag);
            if orgval != value {
                if TAG_CRE.is_match(&value) {
                    rep_counts.insert(tag.clone(), rplc);
                    rep_flag = true;
                } else if existed {
                    rep_counts.insert(tag.clone(), rplc);
                }
                tags.insert(tag.clone(), Some(value.clone()));
            } else if existed {
                rep_counts.insert(tag.clone(), rplc);
            }
            if !value.contains('<') {
                done.insert(tag);
            }
        }
        if !rep_flag {
            break;
        }
    }
    Ok(tags)
}

/// Error of [`shlex_split`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    /// Unclosed quote.
    #[error("No closing quotation")]
    NoClosingQuotation,
    /// Backslash at the very end.
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// Python's `shlex.split(s)` (POSIX mode, no comments).
pub fn shlex_split(s: &str) -> Result<Vec<String>, ShlexError> {
    let mut out = Vec::new();
    let mut tok = String::new();
    let mut in_tok = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c == ' ' || c == '\t' || c == '\r' || c == '\n' => {
                if in_tok {
                    out.push(std::mem::take(&mut tok));
                    in_tok = false;
                }
            }
            '\\' => {
                in_tok = true;
                match it.next() {
                    Some(n) => tok.push(n),
                    None => return Err(ShlexError::NoEscapedCharacter),
                }
            }
            '\'' => {
                in_tok = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(n) => tok.push(n),
                        None => return Err(ShlexError::NoClosingQuotation),
                    }
                }
            }
            '"' => {
                in_tok = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(n) if n == '"' || n == '\\' => tok.push(n),
                            Some(n) => {
                                tok.push('\\');
                                tok.push(n);
                            }
                            None => return Err(ShlexError::NoClosingQuotation),
                        },
                        Some(n) => tok.push(n),
                        None => return Err(ShlexError::NoClosingQuotation),
                    }
                }
            }
            c => {
                in_tok = true;
                tok.push(c);
            }
        }
    }
    if in_tok {
        out.push(tok);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_options_seed_examples() {
        let (n, o) = extract_options("iptables[name=SSH, port=ssh, protocol=tcp]").unwrap();
        assert_eq!(n, "iptables");
        assert_eq!(o["name"], "SSH");
        assert_eq!(o["protocol"], "tcp");
        let (_, o) = extract_options(r#"x[k="quoted, value", j='a]b']"#).unwrap();
        assert_eq!(o["k"], "quoted, value");
        assert_eq!(o["j"], "a]b");
        let (_, o) = extract_options("x[a=1][b=2]").unwrap();
        assert_eq!(o.len(), 2);
        assert!(extract_options("x[a=1 b c, =]").is_err());
        assert!(extract_options("[a=1]").is_err());
    }

    #[test]
    fn split_actions() {
        let v = split_with_options(
            "iptables[name=SSH, port=ssh]\n  sendmail-whois[name=ssh,\n dest=root]\nfoo",
        );
        let v: Vec<&str> = v.iter().map(|s| s.trim()).collect();
        assert_eq!(
            v,
            vec![
                "iptables[name=SSH, port=ssh]",
                "sendmail-whois[name=ssh,\n dest=root]",
                "foo"
            ]
        );
    }

    #[test]
    fn tags_substitute_recursively() {
        let mut m = PyStrMap::new();
        m.insert("a".into(), Some("3".into()));
        m.insert("b".into(), Some("<a>_<c>".into()));
        m.insert("c".into(), Some("<a><x>".into()));
        m.insert("n".into(), None);
        let r = substitute_recursive_tags(&m, &Default::default(), &mut |t| {
            (t == "x").then(|| "X".into())
        })
        .unwrap();
        assert_eq!(r["b"].as_deref(), Some("3_3X"));
        assert_eq!(r["n"], None);
        m.insert("d".into(), Some("<d>".into()));
        assert!(substitute_recursive_tags(&m, &Default::default(), &mut |_| None).is_err());
    }

    #[test]
    fn shlex_like_python() {
        assert_eq!(
            shlex_split(r#"_SYSTEMD_UNIT=sshd.service + _COMM="a b" 'c\d'"#).unwrap(),
            vec!["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=a b", "c\\d"]
        );
        assert!(shlex_split("'x").is_err());
    }
}
