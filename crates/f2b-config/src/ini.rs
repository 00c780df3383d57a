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
pub type Dict = IndexMap<String, Opt>;

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
    pub sections: IndexMap<String, Dict>,
    /// Errors (Python raises on the first fatal one; f2b keeps parsing and reports all).
    pub errors: Vec<IniError>,
}

enum Cur {
    None,
    Default,
    Section(usize),
}

/// Splits text into lines the way Python's universal-newline text mode does,
/// keeping the `\n` terminators.
fn py_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\r' => {
                if it.peek() == Some(&'\n') {
                    it.next();
                }
                cur.push('\n');
                out.push(std::mem::take(&mut cur));
            }
            '\n' => {
                cur.push('\n');
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
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

/// Parses one file's text. `file` names it in origins.
pub fn parse(text: &str, file: &Arc<str>) -> ParsedFile {
    let mut pf = ParsedFile::default();
    // pending multi-line values: (section index or usize::MAX for DEFAULT, option) -> lines
    let mut pending: IndexMap<(usize, String), Vec<String>> = IndexMap::new();
    let mut added_sections: Vec<String> = Vec::new();
    let mut added_opts: std::collections::HashSet<(String, String)> = Default::default();
    let mut cur = Cur::None;
    let mut sectname = String::new();
    let mut optname: Option<String> = None;
    let mut indent_level: usize = 0;
    const DEF: usize = usize::MAX;

    for (idx, line) in py_lines(text).into_iter().enumerate() {
        let lineno = (idx + 1) as u32;
        let mut comment_start = inline_comment_start(&line);
        let st = strip(&line);
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
            if comment_start.is_none() {
                if let (Some(sk), Some(on)) = (sect_key, &optname) {
                    if let Some(v) = pending.get_mut(&(sk, on.clone())) {
                        v.push(String::new());
                    }
                }
            }
            continue;
        }
        let cur_indent = line.chars().position(|c| !isspace(c)).unwrap_or(0);
        if let (Some(sk), Some(on)) = (sect_key, &optname) {
            if cur_indent > indent_level {
                if let Some(v) = pending.get_mut(&(sk, on.clone())) {
                    v.push(value.to_owned());
                }
                continue;
            }
        }
        indent_level = cur_indent;
        // section header?
        if value.starts_with('[') {
            if let Some(close) = value.rfind(']') {
                if close > 1 {
                    let header = value[1..close].to_owned();
                    if header == "DEFAULT" {
                        cur = Cur::Default;
                    } else if let Some(i) = pf.sections.get_index_of(&header) {
                        if added_sections.contains(&header) {
                            pf.errors.push(IniError {
                                kind: IniErrorKind::DuplicateSection(header.clone()),
                                line: lineno,
                                text: line.clone(),
                            });
                        }
                        cur = Cur::Section(i);
                    } else {
                        let (i, _) = pf.sections.insert_full(header.clone(), Dict::new());
                        added_sections.push(header.clone());
                        cur = Cur::Section(i);
                    }
                    sectname = header;
                    optname = None;
                    continue;
                }
            }
        }
        let Some(sk) = sect_key else {
            pf.errors.push(IniError {
                kind: IniErrorKind::MissingSectionHeader,
                line: lineno,
                text: line.clone(),
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
                        text: line.clone(),
                    });
                }
                let name = lower(name);
                let sec_name = if sk == DEF {
                    "DEFAULT".to_owned()
                } else {
                    sectname.clone()
                };
                if !added_opts.insert((sec_name.clone(), name.clone())) {
                    pf.errors.push(IniError {
                        kind: IniErrorKind::DuplicateOption {
                            section: sec_name,
                            option: name.clone(),
                        },
                        line: lineno,
                        text: line.clone(),
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
                pending.insert((sk, name.clone()), vec![val.to_owned()]);
                optname = Some(name);
            }
            None => {
                pf.errors.push(IniError {
                    kind: IniErrorKind::Garbage,
                    line: lineno,
                    text: line.clone(),
                });
            }
        }
    }
    for ((sk, name), lines) in pending {
        let joined = rstrip(&lines.join("\n")).to_owned();
        let dict = if sk == DEF {
            Some(&mut pf.defaults)
        } else {
            pf.sections.get_index_mut(sk).map(|(_, d)| d)
        };
        if let Some(o) = dict.and_then(|d| d.get_mut(&name)) {
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
