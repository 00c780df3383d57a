//! One INI file parsed the way fail2ban's `SafeConfigParserWithIncludes` (a
//! Python `ConfigParser` with `inline_comment_prefixes=";"`, strict mode,
//! `=`/`:` delimiters, lower-cased option names) reads it.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::py::{isspace, lower, rstrip, strip};

/// Where a value (or an error) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as fail2ban names it (base directory joined with the relative path).
    pub file: Arc<str>,
    /// 1-based line of the option's first line.
    pub line: u32,
}

/// One option value with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Opt {
    /// The raw value (continuation lines joined with `\n`).
    pub value: String,
    /// Where it was defined, if it came from a file.
    pub origin: Option<Origin>,
}

impl Opt {
    /// A value that did not come from a file (defaults merged by readers).
    pub fn synthetic(value: impl Into<String>) -> Opt {
        Opt {
            value: value.into(),
            origin: None,
        }
    }
}

/// An insertion-ordered option map (Python dict semantics).
pub type Dict = IndexMap<String, Opt, rustc_hash::FxBuildHasher>;

/// What is wrong with a line of an INI file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IniErrorKind {
    /// An option line before any `[section]` header (`MissingSectionHeaderError`).
    MissingSectionHeader,
    /// A section appears twice in one file (`DuplicateSectionError`).
    DuplicateSection(String),
    /// An option appears twice in one section of one file (`DuplicateOptionError`).
    DuplicateOption {
        /// The section.
        section: String,
        /// The (lower-cased) option name.
        option: String,
    },
    /// A line that is neither a header, an option nor a continuation (`ParsingError`).
    Garbage,
}

/// A parse error at a given line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    /// What went wrong.
    pub kind: IniErrorKind,
    /// 1-based line number.
    pub line: u32,
    /// The offending line as read (with its newline, like Python's `repr(line)`).
    pub text: String,
}

/// One parsed file.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// `[DEFAULT]` options.
    pub defaults: Dict,
    /// Other sections in file order.
    pub sections: IndexMap<String, Dict, rustc_hash::FxBuildHasher>,
    /// Errors (Python raises on the first fatal one; f2b keeps parsing and reports all).
    pub errors: Vec<IniError>,
}

enum Cur {
    None,
    Default,
    Section(usize),
}

/// Normalizes line ends the way Python's universal-newline text mode does
/// (`\r\n` and `\r` become `\n`).
fn normalize_newlines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\r') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Finds the start of an inline `;` comment: a `;` at column 0 or after whitespace.
fn inline_comment_start(line: &str) -> Option<usize> {
    let mut prev: Option<char> = None;
    for (i, c) in line.char_indices() {
        if c == ';' && (i == 0 || prev.is_some_and(isspace)) {
            return Some(i);
        }
        prev = Some(c);
    }
    None
}

struct Pending<'t> {
    sect: usize,
    name: String,
    lines: Vec<&'t str>,
}

/// Parses one file's text. `file` names it in origins.
pub fn parse(text: &str, file: &Arc<str>) -> ParsedFile {
    const DEF: usize = usize::MAX;
    let text = normalize_newlines(text);
    let mut pf = ParsedFile::default();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    let mut cur_pending: Option<usize> = None;
    let mut added_sections: Vec<usize> = Vec::new();
    let mut added_opts: std::collections::HashSet<(usize, String)> = Default::default();
    let mut cur = Cur::None;
    let mut indent_level: usize = 0;

    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let lineno = (idx + 1) as u32;
        let mut comment_start = if line.contains(';') {
            inline_comment_start(line)
        } else {
            None
        };
        let st = strip(line);
        if st.starts_with('#') || st.starts_with(';') {
            comment_start = Some(0);
        }
        let value = strip(&line[..comment_start.unwrap_or(line.len())]);
        let sect_key = match cur {
            Cur::None => None,
            Cur::Default => Some(DEF),
            Cur::Section(i) => Some(i),
        };
        if value.is_empty() {
            if comment_start.is_none() && sect_key.is_some() {
                if let Some(p) = cur_pending {
                    pending[p].lines.push("");
                }
            }
            continue;
        }
        let cur_indent = line.chars().position(|c| !isspace(c)).unwrap_or(0);
        if sect_key.is_some() && cur_indent > indent_level {
            if let Some(p) = cur_pending {
                pending[p].lines.push(value);
                continue;
            }
        }
        indent_level = cur_indent;
        // section header?
        if value.starts_with('[') {
            if let Some(close) = value.rfind(']') {
                if close > 1 {
                    let header = &value[1..close];
                    if header == "DEFAULT" {
                        cur = Cur::Default;
                    } else if let Some(i) = pf.sections.get_index_of(header) {
                        if added_sections.contains(&i) {
                            pf.errors.push(IniError {
                                kind: IniErrorKind::DuplicateSection(header.to_owned()),
                                line: lineno,
                                text: line.to_owned(),
                            });
                        }
                        cur = Cur::Section(i);
                    } else {
                        let (i, _) = pf.sections.insert_full(header.to_owned(), Dict::default());
                        added_sections.push(i);
                        cur = Cur::Section(i);
                    }
                    cur_pending = None;
                    continue;
                }
            }
        }
        let Some(sk) = sect_key else {
            pf.errors.push(IniError {
                kind: IniErrorKind::MissingSectionHeader,
                line: lineno,
                text: line.to_owned(),
            });
            // Python stops reading the file here.
            break;
        };
        match value.find(['=', ':']) {
            Some(p) => {
                let name = rstrip(&value[..p]);
                let val = value[p + 1..].trim_start_matches(isspace);
                if name.is_empty() {
                    pf.errors.push(IniError {
                        kind: IniErrorKind::Garbage,
                        line: lineno,
                        text: line.to_owned(),
                    });
                }
                let name = lower(name);
                if !added_opts.insert((sk, name.clone())) {
                    let section = if sk == DEF {
                        "DEFAULT".to_owned()
                    } else {
                        pf.sections
                            .get_index(sk)
                            .map(|(n, _)| n.clone())
                            .unwrap_or_default()
                    };
                    pf.errors.push(IniError {
                        kind: IniErrorKind::DuplicateOption {
                            section,
                            option: name.clone(),
                        },
                        line: lineno,
                        text: line.to_owned(),
                    });
                }
                let dict = if sk == DEF {
                    &mut pf.defaults
                } else {
                    match pf.sections.get_index_mut(sk) {
                        Some((_, d)) => d,
                        None => continue,
                    }
                };
                dict.insert(
                    name.clone(),
                    Opt {
                        value: String::new(),
                        origin: Some(Origin {
                            file: file.clone(),
                            line: lineno,
                        }),
                    },
                );
                pending.push(Pending {
                    sect: sk,
                    name,
                    lines: vec![val],
                });
                cur_pending = Some(pending.len() - 1);
            }
            None => {
                pf.errors.push(IniError {
                    kind: IniErrorKind::Garbage,
                    line: lineno,
                    text: line.to_owned(),
                });
            }
        }
    }
    // later assignments of the same option win, as in Python
    for p in pending {
        let joined = if p.lines.len() == 1 {
            p.lines[0].to_owned()
        } else {
            rstrip(&p.lines.join("\n")).to_owned()
        };
        let dict = if p.sect == DEF {
            Some(&mut pf.defaults)
        } else {
            pf.sections.get_index_mut(p.sect).map(|(_, d)| d)
        };
        if let Some(o) = dict.and_then(|d| d.get_mut(&p.name)) {
            o.value = joined;
        }
    }
    pf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> ParsedFile {
        parse(text, &Arc::from("t.conf"))
    }

    #[test]
    fn continuation_comments_and_case() {
        let f = p("[Definition]\nFailRegex = a ; inline\n  b\n# comment\n\n   c\nx:y = z\n[DEFAULT]\nk=v;not comment\n");
        let d = &f.sections["Definition"];
        assert_eq!(d["failregex"].value, "a\nb\n\nc");
        assert_eq!(d["x"].value, "y = z");
        assert_eq!(d["failregex"].origin.as_ref().map(|o| o.line), Some(2));
        assert_eq!(f.defaults["k"].value, "v;not comment");
        assert!(f.errors.is_empty());
    }

    #[test]
    fn errors_are_reported_with_lines() {
        let f = p("a = 1\n");
        assert_eq!(f.errors[0].kind, IniErrorKind::MissingSectionHeader);
        let f = p("[s]\na = 1\ngarbage here\n[s]\na = 2\n");
        let kinds: Vec<_> = f.errors.iter().map(|e| (e.line, e.kind.clone())).collect();
        assert_eq!(kinds[0], (3, IniErrorKind::Garbage));
        assert_eq!(kinds[1], (4, IniErrorKind::DuplicateSection("s".into())));
        assert!(matches!(
            kinds[2],
            (5, IniErrorKind::DuplicateOption { .. })
        ));
    }

    #[test]
    fn header_is_greedy_to_last_bracket() {
        let f = p("[a]b] trailing\nk = v\n");
        assert!(f.sections.contains_key("a]b"));
    }
}
