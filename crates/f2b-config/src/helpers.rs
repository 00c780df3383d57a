//! fail2ban's option-string helpers: `name[k=v, ...]` parsing, splitting a
//! multi-line `action =` value, `splitwords`, recursive `<tag>` substitution
//! and `shlex.split`.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;

use crate::py::strip;

/// A regex and its ASCII twin. On ASCII text (nearly all configuration) the twin, a
/// `regex-lite` regex whose `\s`, `\w` and classes are ASCII, finds the same matches as
/// the Unicode one; it compiles in ~30 µs where the `regex` crate takes ~250 µs a pattern
/// (first use, on every server start's path). These run a few times per jail on short
/// strings, so its slower matching does not show. Non-ASCII text uses the Unicode regex.
pub(crate) struct Twin {
    ascii: LazyLock<regex_lite::Regex>,
    unicode: LazyLock<Regex>,
}

/// One of a [`Twin`]'s regexes.
#[derive(Clone, Copy)]
pub(crate) enum TwinRe {
    Ascii(&'static regex_lite::Regex),
    Unicode(&'static Regex),
}

/// A group's match: `text[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span<'t> {
    text: &'t str,
    start: usize,
    end: usize,
}

impl<'t> Span<'t> {
    pub(crate) fn as_str(&self) -> &'t str {
        &self.text[self.start..self.end]
    }
    pub(crate) fn start(&self) -> usize {
        self.start
    }
    #[cfg(test)]
    pub(crate) fn end(&self) -> usize {
        self.end
    }
}

/// The groups of one match.
pub(crate) struct Caps<'t> {
    re: TwinRe,
    text: &'t str,
    spans: Vec<Option<(usize, usize)>>,
}

impl<'t> Caps<'t> {
    pub(crate) fn get(&self, i: usize) -> Option<Span<'t>> {
        let (start, end) = (*self.spans.get(i)?)?;
        Some(Span {
            text: self.text,
            start,
            end,
        })
    }
    pub(crate) fn name(&self, name: &str) -> Option<Span<'t>> {
        let i = match self.re {
            TwinRe::Ascii(r) => r.capture_names().position(|n| n == Some(name)),
            TwinRe::Unicode(r) => r.capture_names().position(|n| n == Some(name)),
        }?;
        self.get(i)
    }
    /// Every group's span, for tests comparing the twins.
    #[cfg(test)]
    pub(crate) fn spans(&self) -> &[Option<(usize, usize)>] {
        &self.spans
    }
}

/// A match's group spans, from either engine's captures.
macro_rules! spans {
    ($c:expr) => {
        $c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect()
    };
}

impl TwinRe {
    pub(crate) fn captures<'t>(self, text: &'t str) -> Option<Caps<'t>> {
        let spans = match self {
            TwinRe::Ascii(r) => spans!(r.captures(text)?),
            TwinRe::Unicode(r) => spans!(r.captures(text)?),
        };
        Some(Caps {
            re: self,
            text,
            spans,
        })
    }
    pub(crate) fn captures_iter<'t>(self, text: &'t str) -> Vec<Caps<'t>> {
        let caps = |spans| Caps {
            re: self,
            text,
            spans,
        };
        match self {
            TwinRe::Ascii(r) => r.captures_iter(text).map(|c| caps(spans!(c))).collect(),
            TwinRe::Unicode(r) => r.captures_iter(text).map(|c| caps(spans!(c))).collect(),
        }
    }
    pub(crate) fn find_iter<'t>(self, text: &'t str) -> Vec<Span<'t>> {
        let span = |start, end| Span { text, start, end };
        match self {
            TwinRe::Ascii(r) => r
                .find_iter(text)
                .map(|m| span(m.start(), m.end()))
                .collect(),
            TwinRe::Unicode(r) => r
                .find_iter(text)
                .map(|m| span(m.start(), m.end()))
                .collect(),
        }
    }
}

impl Twin {
    pub(crate) const fn new(ascii: fn() -> regex_lite::Regex, unicode: fn() -> Regex) -> Twin {
        Twin {
            ascii: LazyLock::new(ascii),
            unicode: LazyLock::new(unicode),
        }
    }

    /// The regex for `text`.
    pub(crate) fn for_text(&'static self, text: &str) -> TwinRe {
        if text.is_ascii() {
            TwinRe::Ascii(&self.ascii)
        } else {
            TwinRe::Unicode(&self.unicode)
        }
    }
    /// (ASCII twin, Unicode regex), for tests comparing them.
    #[cfg(test)]
    pub(crate) fn both(&'static self) -> (TwinRe, TwinRe) {
        (TwinRe::Ascii(&self.ascii), TwinRe::Unicode(&self.unicode))
    }
}

fn lite(p: &str) -> regex_lite::Regex {
    regex_lite::Regex::new(p).expect("static regex")
}

static OPTION_CRE: Twin = Twin::new(
    || lite(r"(?s)\A([^\[]+)(?:\[(.*)\])?\s*\z"),
    || Regex::new(r"(?s)\A([^\[]+)(?:\[(.*)\])?\s*\z").expect("static regex"),
);
static OPTION_EXTRACT_CRE: Twin = Twin::new(
    || {
        lite(
            r#"(?s)\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|\z|(?P<wrngA>.+))|,?\s*\z|(?P<wrngB>.+)"#,
        )
    },
    || {
        Regex::new(
            r#"(?s)\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|\z|(?P<wrngA>.+))|,?\s*\z|(?P<wrngB>.+)"#,
        )
        .expect("static regex")
    },
);
// The lookahead `(?=\n\s*|\s+|$)` of fail2ban's OPTION_SPLIT_CRE is the same as
// "followed by whitespace or the end"; it is consumed here and stripped after.
static OPTION_SPLIT_CRE: Twin = Twin::new(
    || {
        lite(
            r#"(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?:\s|\z)"#,
        )
    },
    || {
        Regex::new(
            r#"(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?:\s|\z)"#,
        )
        .expect("static regex")
    },
);
/// Ordered string map (Python dict of str).
pub type StrMap = IndexMap<String, String, rustc_hash::FxBuildHasher>;

/// Ordered map of optional strings (Python dict of `str` or `None`).
pub type PyStrMap = IndexMap<String, Option<String>, rustc_hash::FxBuildHasher>;

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
    // ASCII input: the byte-oriented twins of the patterns give the same
    // matches and are much cheaper than the Unicode ones
    let (cre, extract) = (
        OPTION_CRE.for_text(option),
        OPTION_EXTRACT_CRE.for_text(option),
    );
    let m = cre.captures(option).ok_or(OptionSyntaxError::Unexpected)?;
    let name = m.get(1).map_or("", |x| x.as_str()).to_owned();
    let mut opts = StrMap::default();
    if let Some(optstr) = m.get(2).map(|x| x.as_str()).filter(|s| !s.is_empty()) {
        for c in extract.captures_iter(optstr) {
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
        .for_text(option)
        .find_iter(option)
        .into_iter()
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

/// Longest value tag substitution may build (fail2ban has no limit and can
/// grow a value exponentially; f2b stops with an error instead).
pub const MAX_TAG_VALUE_LEN: usize = 1 << 20;

/// Error of recursive tag substitution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagRecursionError {
    /// fail2ban's "self referencing definitions" error.
    #[error("properties contain self referencing definitions and cannot be resolved, fail tag: {tag}, found: {found} in {counts}, value: {value}")]
    SelfReference {
        /// The tag being substituted.
        tag: String,
        /// The tag found inside it.
        found: String,
        /// Python repr of the replacement counts.
        counts: String,
        /// The value at the time of failure.
        value: String,
    },
    /// The substituted value grew beyond [`MAX_TAG_VALUE_LEN`].
    #[error("tag substitution of {tag} grows beyond {MAX_TAG_VALUE_LEN} characters (replacing <{found}>)")]
    TooLarge {
        /// The tag being substituted.
        tag: String,
        /// The tag being replaced when the limit was hit.
        found: String,
    },
}

/// fail2ban's `substituteRecursiveTags(tags, ignore=ignore, addrepl=addrepl)`:
/// replaces `<tag>` in every value by the value of that tag, repeatedly.
/// `addrepl` resolves tags missing from the map.
pub fn substitute_recursive_tags<S: std::hash::BuildHasher>(
    inptags: PyStrMap,
    ignore: &std::collections::HashSet<String, S>,
    addrepl: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<PyStrMap, TagRecursionError> {
    let mut tags = inptags;
    let n = tags.len();
    let mut done = vec![false; n];
    let mut rep_counts: Vec<Option<Vec<(String, u32)>>> = vec![None; n];
    let ignored: Vec<bool> = tags.keys().map(|k| ignore.contains(k)).collect();
    loop {
        let mut rep_flag = false;
        for idx in 0..n {
            if ignored[idx] || done[idx] {
                continue;
            }
            let Some((tag, Some(orgval))) = tags.get_index(idx) else {
                // Python `None` stays `None` (its str() holds no tag)
                continue;
            };
            if find_tag(orgval, 0).is_none() {
                if !orgval.contains('<') {
                    done[idx] = true;
                }
                continue;
            }
            let mut value = orgval.clone();
            let existed = rep_counts[idx].is_some();
            let mut rplc = rep_counts[idx].take().unwrap_or_default();
            let mut pos = 0usize;
            while let Some((mstart, mend)) = find_tag(&value, pos) {
                let rtag = &value[mstart + 1..mend - 1];
                if ignore.contains(rtag) {
                    pos = mend;
                    continue;
                }
                let count = rplc.iter().find(|(k, _)| k == rtag).map(|(_, c)| *c);
                if rtag == tag || count.unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    let counts = format!(
                        "{{{}}}",
                        rplc.iter()
                            .map(|(k, v)| format!("{}: {v}", crate::cfg::py_repr(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return Err(TagRecursionError::SelfReference {
                        tag: tag.clone(),
                        found: rtag.to_owned(),
                        counts,
                        value,
                    });
                }
                let owned;
                let repl: &str = match tags.get(rtag) {
                    Some(Some(v)) => v,
                    _ => match addrepl(rtag) {
                        Some(v) => {
                            owned = v;
                            &owned
                        }
                        None => {
                            pos = mend;
                            continue;
                        }
                    },
                };
                let rtag = rtag.to_owned();
                // every earlier occurrence of <rtag> was already replaced or
                // skipped, so replacing from here on equals Python's replace-all
                replace_all_from(&mut value, mstart, mend, repl);
                if value.len() > MAX_TAG_VALUE_LEN {
                    return Err(TagRecursionError::TooLarge {
                        tag: tag.clone(),
                        found: rtag,
                    });
                }
                match rplc.iter_mut().find(|(k, _)| *k == rtag) {
                    Some((_, c)) => *c += 1,
                    None => rplc.push((rtag, 1)),
                }
                pos = mstart;
            }
            let differs = value != *orgval;
            if differs {
                if find_tag(&value, 0).is_some() {
                    rep_counts[idx] = Some(rplc);
                    rep_flag = true;
                } else if existed {
                    rep_counts[idx] = Some(rplc);
                }
                if !value.contains('<') {
                    done[idx] = true;
                }
                if let Some((_, v)) = tags.get_index_mut(idx) {
                    *v = Some(value);
                }
            } else {
                if existed {
                    rep_counts[idx] = Some(rplc);
                }
                if !value.contains('<') {
                    done[idx] = true;
                }
            }
        }
        if !rep_flag {
            break;
        }
    }
    Ok(tags)
}

/// Replaces `value[mstart..mend]` and every later occurrence of the same text by `repl`.
fn replace_all_from(value: &mut String, mstart: usize, mend: usize, repl: &str) {
    let pat = value[mstart..mend].to_owned();
    value.replace_range(mstart..mend, repl);
    let mut i = mstart + repl.len();
    while i < value.len() {
        let Some(p) = value.as_bytes()[i..].iter().position(|&c| c == b'<') else {
            break;
        };
        let at = i + p;
        if value[at..].starts_with(pat.as_str()) {
            value.replace_range(at..at + pat.len(), repl);
            i = at + repl.len();
        } else {
            i = at + 1;
        }
    }
}

/// Finds the next `<tag>` (fail2ban's `<([^ <>]+)>`) at or after byte `from`:
/// returns the byte range of the whole match.
pub(crate) fn find_tag(s: &str, from: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        let lt = i + b[i..].iter().position(|&c| c == b'<')?;
        let mut j = lt + 1;
        while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
            j += 1;
        }
        if j > lt + 1 && j < b.len() && b[j] == b'>' {
            return Some((lt, j + 1));
        }
        i = lt + 1;
    }
    None
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
    proptest::proptest! {
        /// On ASCII text the `regex-lite` twins find what the Unicode regexes find:
        /// every match, every group's span.
        #[test]
        fn ascii_twins_match_unicode(
            s in "([a-zA-Z0-9_ \\t\\n,=\\[\\]\"'.\\-]|name\\[a=1, b=\"x, y\"\\]|k='v'|\\] \\[){0,16}"
        ) {
            for twin in [&OPTION_CRE, &OPTION_EXTRACT_CRE, &OPTION_SPLIT_CRE] {
                let (ascii, unicode) = twin.both();
                let caps = |re: TwinRe| -> Vec<Vec<Option<(usize, usize)>>> {
                    re.captures_iter(&s).iter().map(|c| c.spans().to_vec()).collect()
                };
                proptest::prop_assert_eq!(caps(ascii), caps(unicode));
                let one = |re: TwinRe| re.captures(&s).map(|c| c.spans().to_vec());
                proptest::prop_assert_eq!(one(ascii), one(unicode));
                let finds = |re: TwinRe| -> Vec<(usize, usize)> {
                    re.find_iter(&s).iter().map(|m| (m.start(), m.end())).collect()
                };
                proptest::prop_assert_eq!(finds(ascii), finds(unicode));
            }
        }
    }

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
        let mut m = PyStrMap::default();
        m.insert("a".into(), Some("3".into()));
        m.insert("b".into(), Some("<a>_<c>".into()));
        m.insert("c".into(), Some("<a><x>".into()));
        m.insert("n".into(), None);
        let r = substitute_recursive_tags(
            m.clone(),
            &std::collections::HashSet::<String>::new(),
            &mut |t| (t == "x").then(|| "X".into()),
        )
        .unwrap();
        assert_eq!(r["b"].as_deref(), Some("3_3X"));
        assert_eq!(r["n"], None);
        m.insert("d".into(), Some("<d>".into()));
        assert!(substitute_recursive_tags(
            m,
            &std::collections::HashSet::<String>::new(),
            &mut |_| None
        )
        .is_err());
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
