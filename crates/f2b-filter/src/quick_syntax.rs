//! A quick, conservative syntax check of a translated pattern.
//!
//! [`certainly_valid`] answers "the `regex` crate's syntax parser accepts
//! this pattern" for the vocabulary the translator emits (literals, escapes,
//! groups, named groups, scoped flags, repetitions, simple classes), and
//! answers `false` ("unsure") for anything else. `Linear::new` runs
//! `regex_syntax`'s parser only when the answer is `false`, so a pattern
//! with an error is still refused at construction with the parser's message.
//!
//! Why: that parser costs ~600 instructions per character; the 24 patterns
//! of the stock sshd filter (8 KB) took 4.6 M instructions, a fifth of a
//! stock start. This scan costs a few dozen per character.
//!
//! Soundness is the one invariant: `certainly_valid(p)` implies that
//! `regex_syntax::ast::parse::Parser::new().parse(p)` succeeds. The property
//! tests below check it against that parser.

/// Group nesting accepted here; deeper patterns go to the real parser (whose
/// nest limit, 250, counts groups, alternations, concatenations and
/// repetitions: at most 4 per group level plus the class).
const MAX_DEPTH: usize = 40;
/// Digits of a repetition count accepted here (u32 overflow is an error).
const MAX_COUNT_DIGITS: usize = 6;

/// True when `p` is certainly accepted by `regex_syntax`'s AST parser;
/// false when it may not be (the caller then runs the parser).
pub(crate) fn certainly_valid(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut names: Vec<&str> = Vec::new();
    // Whether a repetition operator may follow (an atom precedes it).
    let mut atom = false;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let Some(&c) = b.get(i + 1) else {
                    return false;
                };
                match c {
                    b'd' | b'D' | b'w' | b'W' | b's' | b'S' | b't' | b'n' | b'r' | b'f' | b'v' => {
                        i += 2
                    }
                    b'x' => match hex_escape(b, i + 2) {
                        Some((_, n)) => i = n,
                        None => return false,
                    },
                    // assertions: nothing to repeat after them (kept simple);
                    // `\b{start}` and the like have their own syntax
                    b'A' | b'z' | b'b' | b'B' if b.get(i + 2) != Some(&b'{') => {
                        i += 2;
                        atom = false;
                        continue;
                    }
                    // `\<` and `\>` are assertions too; kept out to stay simple
                    b'<' | b'>' => return false,
                    c if c.is_ascii_punctuation() => i += 2,
                    // `\p{..}`, octal, `\u`, `\Z`, ... : the parser decides
                    _ => return false,
                }
                atom = true;
            }
            b'.' => {
                i += 1;
                atom = true;
            }
            b'^' | b'$' | b'|' => {
                i += 1;
                atom = false;
            }
            b'*' | b'+' | b'?' => {
                if !atom {
                    return false;
                }
                i += 1;
                if b.get(i) == Some(&b'?') {
                    i += 1;
                }
                atom = false;
            }
            b'{' => {
                if !atom {
                    return false;
                }
                let Some(n) = counted(b, i + 1) else {
                    return false;
                };
                i = n;
                if b.get(i) == Some(&b'?') {
                    i += 1;
                }
                atom = false;
            }
            b'(' => {
                if b.get(i + 1) == Some(&b'?') {
                    let j = i + 2;
                    match b.get(j) {
                        Some(b':') => i = j + 1,
                        Some(b'P') if b.get(j + 1) == Some(&b'<') => {
                            let Some(end) = name_end(b, j + 2) else {
                                return false;
                            };
                            let name = &p[j + 2..end];
                            if names.contains(&name) {
                                return false;
                            }
                            names.push(name);
                            i = end + 1;
                        }
                        _ => match flags(b, j) {
                            // `(?flags)`: no group, nothing to repeat
                            Some((n, false)) => {
                                i = n;
                                atom = false;
                                continue;
                            }
                            Some((n, true)) => i = n,
                            None => return false,
                        },
                    }
                } else {
                    i += 1;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                atom = false;
            }
            b')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                i += 1;
                atom = true;
            }
            b'[' => match class(p, i + 1) {
                Some(n) => {
                    i = n;
                    atom = true;
                }
                None => return false,
            },
            // literals for the parser, but never emitted unescaped
            b']' | b'}' => return false,
            _ => {
                let Some(c) = p[i..].chars().next() else {
                    return false;
                };
                i += c.len_utf8();
                atom = true;
            }
        }
    }
    depth == 0
}

/// `\x` escapes from `j` (after the `x`): `HH` or `{H..}` naming a scalar
/// value. Returns the character and the index after the escape.
fn hex_escape(b: &[u8], j: usize) -> Option<(char, usize)> {
    let (digits, end, next) = if b.get(j) == Some(&b'{') {
        let close = j + 1 + b.get(j + 1..)?.iter().position(|&c| c == b'}')?;
        (b.get(j + 1..close)?, close, close + 1)
    } else {
        (b.get(j..j + 2)?, j + 2, j + 2)
    };
    let _ = end;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let v = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    char::from_u32(v).map(|c| (c, next))
}

/// A repetition count from `j` (after `{`): `n}`, `n,}` or `n,m}` with
/// `n <= m`. Returns the index after `}`.
fn counted(b: &[u8], j: usize) -> Option<usize> {
    let num = |k: usize| -> Option<(u32, usize)> {
        let len = b
            .get(k..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if len == 0 || len > MAX_COUNT_DIGITS {
            return None;
        }
        let v = std::str::from_utf8(&b[k..k + len]).ok()?.parse().ok()?;
        Some((v, k + len))
    };
    let (min, k) = num(j)?;
    match b.get(k)? {
        b'}' => Some(k + 1),
        b',' => {
            if b.get(k + 1) == Some(&b'}') {
                return Some(k + 2);
            }
            let (max, k) = num(k + 1)?;
            (b.get(k) == Some(&b'}') && min <= max).then_some(k + 1)
        }
        _ => None,
    }
}

/// The end (index of `>`) of a group name starting at `j`: an ASCII letter
/// or `_`, then letters, digits or `_`.
fn name_end(b: &[u8], j: usize) -> Option<usize> {
    let first = *b.get(j)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let len = b[j..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (b.get(j + len) == Some(&b'>')).then_some(j + len)
}

/// Flags from `j` (after `(?`): `[ims]*` then optionally `-[ims]+`, no
/// letter twice, not empty; ends with `)` (returns false: flags only) or
/// `:` (returns true: a group). Returns the index after the terminator.
fn flags(b: &[u8], mut j: usize) -> Option<(usize, bool)> {
    let mut seen = [false; 3];
    let mut any = false;
    let mut negated = false;
    let mut after_dash = 0;
    loop {
        let c = *b.get(j)?;
        j += 1;
        match c {
            b'i' | b'm' | b's' => {
                let k = match c {
                    b'i' => 0,
                    b'm' => 1,
                    _ => 2,
                };
                if seen[k] {
                    return None;
                }
                seen[k] = true;
                any = true;
                if negated {
                    after_dash += 1;
                }
            }
            b'-' if !negated => negated = true,
            b')' | b':' => {
                if !any || (negated && after_dash == 0) {
                    return None;
                }
                return Some((j, c == b':'));
            }
            _ => return None,
        }
    }
}

/// A bracketed class from `j` (after `[`) made of literals, ranges of
/// literals and the escapes `\d \D \w \W \s \S`. Returns the index after
/// the closing `]`; `None` for anything else (nested classes, set
/// operations, a leading `]`, ...).
fn class(p: &str, mut j: usize) -> Option<usize> {
    let b = p.as_bytes();
    if b.get(j) == Some(&b'^') {
        j += 1;
    }
    let mut first = true;
    // The previous item when it was a single literal (a range may start).
    let mut prev: Option<char> = None;
    loop {
        let c = *b.get(j)?;
        match c {
            b']' if !first => return Some(j + 1),
            b']' | b'[' => return None,
            b'&' | b'~' | b'-' if b.get(j + 1) == Some(&c) => return None,
            b'-' if first || b.get(j + 1) == Some(&b']') => {
                prev = Some('-');
                j += 1;
            }
            b'-' => {
                let lo = prev?;
                let (hi, n) = class_literal(p, j + 1)?;
                if lo > hi {
                    return None;
                }
                // `[a-c-e]`: left to the parser
                prev = None;
                j = n;
                if b.get(j) == Some(&b'-') && b.get(j + 1) != Some(&b']') {
                    return None;
                }
            }
            b'\\' if matches!(b.get(j + 1), Some(b'd' | b'D' | b'w' | b'W' | b's' | b'S')) => {
                // a class escape cannot end a range
                if b.get(j + 2) == Some(&b'-') && b.get(j + 3) != Some(&b']') {
                    return None;
                }
                prev = None;
                j += 2;
            }
            _ => {
                let (ch, n) = class_literal(p, j)?;
                prev = Some(ch);
                j = n;
            }
        }
        first = false;
    }
}

/// One literal character of a class at `j`: a plain character, an escaped
/// ASCII punctuation character, `\t \n \r \f \v` or a `\x` escape.
fn class_literal(p: &str, j: usize) -> Option<(char, usize)> {
    let b = p.as_bytes();
    match *b.get(j)? {
        b'\\' => {
            let c = *b.get(j + 1)?;
            match c {
                b'x' => hex_escape(b, j + 2),
                b't' => Some(('\t', j + 2)),
                b'n' => Some(('\n', j + 2)),
                b'r' => Some(('\r', j + 2)),
                b'f' => Some(('\x0c', j + 2)),
                b'v' => Some(('\x0b', j + 2)),
                b'<' | b'>' => None,
                c if c.is_ascii_punctuation() => Some((char::from(c), j + 2)),
                _ => None,
            }
        }
        b'[' | b']' => None,
        _ => {
            let c = p.get(j..)?.chars().next()?;
            Some((c, j + c.len_utf8()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::certainly_valid;
    use proptest::prelude::*;

    fn parses(p: &str) -> bool {
        regex_syntax::ast::parse::Parser::new().parse(p).is_ok()
    }

    /// Pieces of patterns, valid and not, in the translator's vocabulary and
    /// around it.
    const PIECES: &[&str] = &[
        "a",
        "b",
        "é",
        "ſ",
        " ",
        "#",
        "(",
        ")",
        "(?:",
        "(?P<n>",
        "(?P<m>",
        "(?P<1>",
        "(?P<>",
        "(?<n>",
        "(?i)",
        "(?i:",
        "(?-i:",
        "(?im-s:",
        "(?ii)",
        "(?i-)",
        "(?-)",
        "(?)",
        "(?x)",
        "(?U)",
        "(?=",
        "(?!",
        "(?<=",
        "|",
        "*",
        "+",
        "?",
        "*?",
        "??",
        "{",
        "}",
        "{2}",
        "{1,3}",
        "{3,1}",
        "{,2}",
        "{2,}",
        "{99999999}",
        "{1,2}?",
        "[",
        "]",
        "[^",
        "[a-z]",
        "[z-a]",
        "[\\s\\x1C-\\x1F]",
        "[^\\]]",
        "[]a]",
        "[-a]",
        "[a-]",
        "[a-c-e]",
        "[\\d-z]",
        "[a&&b]",
        "[a~~b]",
        "[a--b]",
        "[[:alpha:]]",
        "[\\x{110000}]",
        "[é-ſ]",
        "\\",
        "\\d",
        "\\w",
        "\\s",
        "\\S",
        "\\b",
        "\\B",
        "\\A",
        "\\z",
        "\\Z",
        "\\<",
        "\\x4",
        "\\x41",
        "\\x{41}",
        "\\x{}",
        "\\x{D800}",
        "\\x{10FFFF}",
        "\\u0041",
        "\\p{L}",
        "\\1",
        "\\07",
        "\\.",
        "\\-",
        "\\]",
        "\\}",
        "\\ ",
        "\\t",
        "\\e",
        "\\k",
        "^",
        "$",
        ".",
        "(?m:$)",
    ];

    fn soup() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PIECES), 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The invariant: what the scan accepts, the parser accepts.
        #[test]
        fn certainly_valid_implies_the_parser_accepts(p in soup()) {
            if certainly_valid(&p) {
                prop_assert!(parses(&p), "{p:?} passed the scan, the parser refuses it");
            }
        }

        /// The same on the translator's output for soups in Python syntax.
        #[test]
        fn on_translations_too(p in soup()) {
            if let Ok(t) = crate::dialect::translate(&p) {
                for q in [t.exact.clone(), format!("(?m){}", t.exact), t.relaxed.clone()] {
                    if certainly_valid(&q) {
                        prop_assert!(parses(&q), "{q:?} (from {p:?})");
                    }
                }
            }
        }

        /// Arbitrary text, too.
        #[test]
        fn on_any_text(p in "\\PC{0,24}") {
            if certainly_valid(&p) {
                prop_assert!(parses(&p), "{p:?}");
            }
        }
    }

    #[test]
    fn the_translators_vocabulary_is_recognised() {
        for p in [
            "",
            "^(?P<mlfid>(?:\\[\\])?[\\s\\x1C-\\x1F]*(?:<[^.]+\\.[^.]+>[\\s\\x1C-\\x1F]*)?)(?P<content>.+)(?m:$)",
            "(?m)^User (?P<user>[^\\s\\x1C-\\x1F]+|.*?) from (?:\\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\\d{1,3}\\.){3}\\d{1,3})))(?: (?:port \\d+|on \\S+)){0,2}\\s*$",
            "(?i:a)(?-s:.)+?\\x{7}[^\\]\\-x]{2,}",
            "a|b||(c)*",
            "\\bcgi\\-bin/\\b\\A\\z\\B",
        ] {
            assert!(certainly_valid(p), "{p:?}");
            assert!(parses(p), "{p:?}");
        }
    }

    #[test]
    fn errors_and_the_unusual_go_to_the_parser() {
        for p in [
            "*a",
            "a|*",
            "(*)",
            "a**",
            "a{2,1}",
            "a{,2}",
            "(",
            ")",
            "(?P<n>a)(?P<n>b)",
            "[z-a]",
            "[a",
            "\\",
            "\\x{D800}",
            "\\Z",
            "(?ii)",
            "(?i-)",
            "(?x)a b",
            "(?=a)",
            "[[:alpha:]]",
            "(?i)*",
            "\\b{start}",
            "\\b*",
            "\\B{2}",
        ] {
            assert!(!certainly_valid(p), "{p:?}");
        }
    }

    /// The stock filters' translated patterns take the quick path (the point
    /// of the scan): every one of sshd's, and nearly all of the rest.
    #[test]
    fn stock_filters_take_the_quick_path() {
        let root = std::path::Path::new("/etc/fail2ban");
        let dir = root.join("filter.d");
        assert!(
            dir.is_dir(),
            "stock config missing: install the Debian `fail2ban` package"
        );
        let (mut quick, mut all, mut sshd_slow) = (0, 0, Vec::new());
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".conf"))
            else {
                continue;
            };
            let Ok(r) = f2b_config::read_filter_dir(root, name, &[]) else {
                continue;
            };
            for src in r.failregex.iter().chain(r.prefregex.iter()) {
                let expanded = crate::tags::resolve_host_tag(src, crate::UseDns::Warn);
                let Ok(t) = crate::dialect::translate(&expanded) else {
                    continue;
                };
                if t.fancy {
                    continue;
                }
                let p = format!("(?m){}", t.exact);
                all += 1;
                if certainly_valid(&p) {
                    quick += 1;
                } else {
                    eprintln!("{name}: {p}");
                    if name == "sshd" {
                        sshd_slow.push(p);
                    }
                }
            }
        }
        eprintln!("{quick} of {all} stock linear patterns take the quick path");
        assert!(
            sshd_slow.is_empty(),
            "sshd patterns left to the parser: {sshd_slow:#?}"
        );
        assert!(all > 150 && quick * 100 >= all * 95, "{quick} of {all}");
    }
}
