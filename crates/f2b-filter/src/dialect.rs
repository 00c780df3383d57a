//! Python `re` dialect layer.
//!
//! fail2ban filters are written for Python's `re` module. This module parses a
//! Python pattern and re-emits it for Rust engines:
//!
//! * patterns without look-around, back-references, conditionals or atomic
//!   groups run on the linear-time `regex` crate (lazy DFA / PikeVM);
//! * the others run on `fancy-regex` (backtracking, with a per-search
//!   backtrack budget), guarded by a *relaxed* linear-time prefilter: the same
//!   pattern with look-arounds removed, conditionals turned into alternations
//!   and back-references turned into `.*?`. The relaxed language is a superset
//!   of the exact one, so a prefilter miss proves the exact pattern misses.
//!
//! Python specifics handled: `(?P<n>..)`, `(?P=n)`, `(?(n)yes|no)`, `\Z`,
//! `$` matching before a trailing newline, `\s` including `\x1c-\x1f`,
//! Python's literal `{`/`}` rules, `{,n}`, `[`/`&`/`~` literal inside classes,
//! octal and `\x`/`\u`/`\U` escapes, `(?#comment)`, `(?aiLmsux)` flags.

use std::collections::HashMap;

/// Default number of backtracking steps one search may use before it is
/// abandoned (treated as "no match" and counted in [`PyRegex::budget_hits`]).
pub const DEFAULT_BACKTRACK_LIMIT: usize = 200_000;

/// An error compiling a Python-dialect pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    /// The pattern is not valid Python `re` syntax (as far as we parse it).
    #[error("invalid regular expression {pattern:?} at offset {offset}: {reason}")]
    Syntax {
        /// The pattern as given.
        pattern: String,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The translated pattern was refused by the underlying engine.
    #[error("unable to compile regular expression {pattern:?}: {reason}")]
    Engine {
        /// The pattern as given.
        pattern: String,
        /// Engine message.
        reason: String,
    },
}

/// Result of translating a Python pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The pattern for the exact engine.
    pub exact: String,
    /// True if `exact` needs the backtracking engine.
    pub fancy: bool,
    /// A linear-time superset pattern (only meaningful when `fancy`).
    pub relaxed: String,
    /// Capture group names by group index (index 0 is the whole match).
    pub names: Vec<Option<String>>,
    /// True if the pattern has a `|` outside any group.
    pub top_level_alternation: bool,
}

struct Tx<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    exact: String,
    relaxed: String,
    fancy: bool,
    names: Vec<Option<String>>,
    name_set: HashMap<String, usize>,
    /// stack of open groups: (kind, relaxed-suppressed-before, had_bar)
    stack: Vec<Open>,
    /// >0 while inside a look-around (relaxed output suppressed)
    suppress: usize,
    ascii: bool,
    verbose: bool,
    top_bar: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Plain,
    Look,
    Cond,
}

struct Open {
    kind: OpenKind,
    bars: usize,
}

impl<'a> Tx<'a> {
    fn err(&self, reason: impl Into<String>) -> DialectError {
        let offset = self
            .chars
            .get(self.pos)
            .map(|c| c.0)
            .unwrap_or(self.src.len());
        DialectError::Syntax {
            pattern: self.src.to_string(),
            offset,
            reason: reason.into(),
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|c| c.1)
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).map(|c| c.1)
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }
    fn both(&mut self, s: &str) {
        self.exact.push_str(s);
        if self.suppress == 0 {
            self.relaxed.push_str(s);
        }
    }
    fn rest_is(&self, s: &str) -> bool {
        let mut i = self.pos;
        for c in s.chars() {
            match self.chars.get(i) {
                Some(&(_, d)) if d == c => i += 1,
                _ => return false,
            }
        }
        true
    }

    fn read_name(&mut self, end: char) -> Result<String, DialectError> {
        let mut name = String::new();
        loop {
            match self.next() {
                Some(c) if c == end => break,
                Some(c) => name.push(c),
                None => return Err(self.err("missing group name terminator")),
            }
        }
        if name.is_empty() {
            return Err(self.err("missing group name"));
        }
        Ok(name)
    }

    fn run(&mut self) -> Result<(), DialectError> {
        while let Some(c) = self.next() {
            match c {
                '\\' => self.escape_outside()?,
                '[' => self.class()?,
                '(' => self.open_group()?,
                ')' => self.close_group()?,
                '|' => {
                    if self.stack.is_empty() {
                        self.top_bar = true;
                    }
                    if let Some(top) = self.stack.last_mut() {
                        top.bars += 1;
                        if top.kind == OpenKind::Cond && top.bars > 1 {
                            return Err(self.err("conditional backref with more than two branches"));
                        }
                    }
                    self.both("|");
                }
                '{' => self.brace()?,
                '}' => self.both(r"\}"),
                '$' => self.both("(?m:$)"),
                '*' | '+' | '?' => {
                    let mut q = c.to_string();
                    if self.peek() == Some('?') {
                        self.pos += 1;
                        q.push('?');
                    } else if self.peek() == Some('+') {
                        // possessive quantifier (Python 3.11+)
                        return Err(self.err("possessive quantifiers are not supported"));
                    }
                    self.both(&q);
                }
                '#' if self.verbose => {
                    // comment to end of line
                    while let Some(c) = self.next() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                c if self.verbose && c.is_whitespace() => {}
                '#' | '&' | '~' | '-' | ' ' => self.both(&regex::escape(&c.to_string())),
                c => {
                    let mut b = [0u8; 4];
                    self.both(c.encode_utf8(&mut b));
                }
            }
        }
        if !self.stack.is_empty() {
            return Err(self.err("missing ), unterminated subpattern"));
        }
        Ok(())
    }

    fn brace(&mut self) -> Result<(), DialectError> {
        // Python: `{` starts a repeat only if followed by digits[,digits]}
        let save = self.pos;
        let mut lo = String::new();
        while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
            lo.push(d);
            self.pos += 1;
        }
        let mut hi: Option<String> = None;
        if self.peek() == Some(',') {
            self.pos += 1;
            let mut h = String::new();
            while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
                h.push(d);
                self.pos += 1;
            }
            hi = Some(h);
        }
        if self.peek() == Some('}') && !(lo.is_empty() && hi.is_none()) {
            self.pos += 1;
            let lo_s = if lo.is_empty() { "0".to_string() } else { lo };
            let q = match hi {
                None => format!("{{{lo_s}}}"),
                Some(h) if h.is_empty() => format!("{{{lo_s},}}"),
                Some(h) => {
                    let (a, b) = (
                        lo_s.parse::<u64>().unwrap_or(0),
                        h.parse::<u64>().unwrap_or(0),
                    );
                    if b < a {
                        return Err(self.err("min repeat greater than max repeat"));
                    }
                    format!("{{{lo_s},{h}}}")
                }
            };
            let mut q = q;
            if self.peek() == Some('?') {
                self.pos += 1;
                q.push('?');
            }
            self.both(&q);
        } else {
            self.pos = save;
            self.both(r"\{");
        }
        Ok(())
    }

    /// Parses an escape common to classes and outside; returns a literal char
    /// or None if it is a class shorthand (emitted by the caller).
    fn literal_escape(&mut self, c: char) -> Result<Option<char>, DialectError> {
        let chars = &self.chars;
        let mut pos = self.pos;
        let r = py_literal_escape(c, |i| chars.get(i).map(|x| x.1), &mut pos);
        self.pos = pos;
        r.map_err(|e| {
            self.err(match e {
                EscapeError::IncompleteHex => "incomplete hex escape",
                EscapeError::BadCodePoint => "bad escape: invalid code point",
            })
        })
    }

    fn push_lit(&mut self, ch: char) {
        let s = regex::escape(&ch.to_string());
        let s = if ch.is_control() || ch == ' ' || ch == '#' {
            format!("\\x{{{:x}}}", ch as u32)
        } else {
            s
        };
        self.both(&s);
    }

    fn escape_outside(&mut self) -> Result<(), DialectError> {
        let c = self
            .next()
            .ok_or_else(|| self.err("bad escape (end of pattern)"))?;
        match c {
            'A' => self.both(r"\A"),
            'Z' => self.both(r"\z"),
            'b' => self.both(if self.ascii { r"(?-u:\b)" } else { r"\b" }),
            'B' => self.both(if self.ascii { r"(?-u:\B)" } else { r"\B" }),
            'd' => self.both(if self.ascii { "[0-9]" } else { r"\d" }),
            'D' => self.both(if self.ascii { "[^0-9]" } else { r"\D" }),
            'w' => self.both(if self.ascii { "[0-9A-Za-z_]" } else { r"\w" }),
            'W' => self.both(if self.ascii { "[^0-9A-Za-z_]" } else { r"\W" }),
            's' => self.both(if self.ascii {
                r"[\t\n\x0B\x0C\r ]"
            } else {
                r"[\s\x1C-\x1F]"
            }),
            'S' => self.both(if self.ascii {
                r"[^\t\n\x0B\x0C\r ]"
            } else {
                r"[^\s\x1C-\x1F]"
            }),
            '1'..='9' => {
                // group reference (up to 2 digits) or octal (3 octal digits)
                let d2 = self.peek().filter(|d| d.is_ascii_digit());
                let d3 = self.peek_at(1).filter(|d| d.is_ascii_digit());
                if c <= '7' && d2.is_some_and(|d| d <= '7') && d3.is_some_and(|d| d <= '7') {
                    let s: String = [c, d2.unwrap_or('0'), d3.unwrap_or('0')].iter().collect();
                    self.pos += 2;
                    let v = u32::from_str_radix(&s, 8).unwrap_or(0);
                    if v > 0o377 {
                        return Err(self.err("octal escape value outside of range 0-0o377"));
                    }
                    self.push_lit(char::from_u32(v).unwrap_or('\0'));
                    return Ok(());
                }
                let mut num = c.to_digit(10).unwrap_or(0) as usize;
                if let Some(d) = d2 {
                    num = num * 10 + d.to_digit(10).unwrap_or(0) as usize;
                    self.pos += 1;
                }
                if num >= self.names.len() {
                    return Err(self.err(format!("invalid group reference {num}")));
                }
                self.fancy = true;
                self.exact.push_str(&format!("\\{num}"));
                if self.suppress == 0 {
                    self.relaxed.push_str("(?s:.*?)");
                }
            }
            c => match self.literal_escape(c)? {
                Some(l) => self.push_lit(l),
                None => return Err(self.err(format!("bad escape \\{c}"))),
            },
        }
        Ok(())
    }

    fn class(&mut self) -> Result<(), DialectError> {
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut first = true;
        let mut last_dash = false;
        loop {
            let c = self
                .next()
                .ok_or_else(|| self.err("unterminated character set"))?;
            match c {
                ']' if !first => break,
                '\\' => {
                    let e = self
                        .next()
                        .ok_or_else(|| self.err("bad escape (end of pattern)"))?;
                    let piece: String = match e {
                        'd' => (if self.ascii { "0-9" } else { r"\d" }).into(),
                        'D' => (if self.ascii { "[^0-9]" } else { r"\D" }).into(),
                        'w' => (if self.ascii { "0-9A-Za-z_" } else { r"\w" }).into(),
                        'W' => (if self.ascii { "[^0-9A-Za-z_]" } else { r"\W" }).into(),
                        's' => (if self.ascii {
                            r"\t\n\x0B\x0C\r "
                        } else {
                            r"\s\x1C-\x1F"
                        })
                        .into(),
                        'S' => (if self.ascii {
                            r"[^\t\n\x0B\x0C\r ]"
                        } else {
                            r"[^\s\x1C-\x1F]"
                        })
                        .into(),
                        'b' => r"\x08".into(),
                        e => match self.literal_escape(e)? {
                            Some(l) => class_lit(l),
                            None => {
                                if e.is_ascii_digit() {
                                    // Python: octal in class
                                    let mut v =
                                        e.to_digit(8).ok_or_else(|| self.err("bad escape"))?;
                                    for _ in 0..2 {
                                        match self.peek().and_then(|d| d.to_digit(8)) {
                                            Some(d) => {
                                                v = v * 8 + d;
                                                self.pos += 1;
                                            }
                                            None => break,
                                        }
                                    }
                                    class_lit(char::from_u32(v).unwrap_or('\0'))
                                } else {
                                    return Err(self.err(format!("bad escape \\{e}")));
                                }
                            }
                        },
                    };
                    out.push_str(&piece);
                    last_dash = false;
                }
                '-' => {
                    let next_is_end = self.peek() == Some(']');
                    if first || last_dash || next_is_end {
                        out.push_str(r"\-");
                        last_dash = false;
                    } else {
                        out.push('-');
                        last_dash = true;
                    }
                }
                c => {
                    out.push_str(&class_lit(c));
                    last_dash = false;
                }
            }
            first = false;
        }
        out.push(']');
        if out == "[]" || out == "[^]" {
            return Err(self.err("empty character class"));
        }
        self.both(&out);
        Ok(())
    }

    fn open_group(&mut self) -> Result<(), DialectError> {
        if self.peek() != Some('?') {
            self.names.push(None);
            self.stack.push(Open {
                kind: OpenKind::Plain,
                bars: 0,
            });
            self.exact.push('(');
            if self.suppress == 0 {
                self.relaxed.push_str("(?:");
            }
            return Ok(());
        }
        self.pos += 1;
        let c = self
            .next()
            .ok_or_else(|| self.err("unexpected end of pattern"))?;
        match c {
            ':' => {
                self.stack.push(Open {
                    kind: OpenKind::Plain,
                    bars: 0,
                });
                self.both("(?:");
            }
            'P' => match self.next() {
                Some('<') => {
                    let name = self.read_name('>')?;
                    if !name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        || name.chars().next().is_some_and(|c| c.is_ascii_digit())
                    {
                        return Err(self.err(format!("bad character in group name {name:?}")));
                    }
                    if self.name_set.contains_key(&name) {
                        return Err(self.err(format!("redefinition of group name {name:?}")));
                    }
                    self.name_set.insert(name.clone(), self.names.len());
                    self.names.push(Some(name.clone()));
                    self.stack.push(Open {
                        kind: OpenKind::Plain,
                        bars: 0,
                    });
                    self.exact.push_str(&format!("(?P<{name}>"));
                    if self.suppress == 0 {
                        self.relaxed.push_str("(?:");
                    }
                }
                Some('=') => {
                    let name = self.read_name(')')?;
                    let idx = *self
                        .name_set
                        .get(&name)
                        .ok_or_else(|| self.err(format!("unknown group name {name:?}")))?;
                    self.fancy = true;
                    self.exact.push_str(&format!("\\{idx}"));
                    if self.suppress == 0 {
                        self.relaxed.push_str("(?s:.*?)");
                    }
                }
                _ => return Err(self.err("unknown extension ?P")),
            },
            '=' if !self.ascii && self.rest_is(r"\b|\W|$)") => {
                // `(?=\b|\W|$)` fails only between two word chars:
                // boundary, or next char non-word / end of text.
                self.pos += r"\b|\W|$)".chars().count();
                self.both(r"(?:\b|\b{end-half})");
            }
            '=' if !self.ascii && self.rest_is(r"^|\b|\W)") => {
                // `(?=^|\b|\W)`: same, plus start of text (the only extra
                // position, end of text after a non-word char, can't start
                // a non-empty match and is harmless for zero-width uses).
                self.pos += r"^|\b|\W)".chars().count();
                self.both(r"(?:^|\b|\b{end-half})");
            }
            '=' | '!' => {
                self.fancy = true;
                self.stack.push(Open {
                    kind: OpenKind::Look,
                    bars: 0,
                });
                self.exact.push_str(&format!("(?{c}"));
                self.suppress += 1;
            }
            '<' => match self.next() {
                Some(d @ ('=' | '!')) => {
                    self.fancy = true;
                    self.stack.push(Open {
                        kind: OpenKind::Look,
                        bars: 0,
                    });
                    self.exact.push_str(&format!("(?<{d}"));
                    self.suppress += 1;
                }
                _ => return Err(self.err("unknown extension ?<")),
            },
            '#' => {
                // comment
                loop {
                    match self.next() {
                        Some(')') => break,
                        Some(_) => {}
                        None => return Err(self.err("missing ), unterminated comment")),
                    }
                }
            }
            '(' => {
                let name = self.read_name(')')?;
                let idx = if let Ok(n) = name.parse::<usize>() {
                    n
                } else {
                    *self
                        .name_set
                        .get(&name)
                        .ok_or_else(|| self.err(format!("unknown group name {name:?}")))?
                };
                if idx == 0 || idx >= self.names.len() {
                    return Err(self.err(format!("invalid group reference {idx}")));
                }
                self.fancy = true;
                self.stack.push(Open {
                    kind: OpenKind::Cond,
                    bars: 0,
                });
                self.exact.push_str(&format!("(?({idx})"));
                if self.suppress == 0 {
                    self.relaxed.push_str("(?:");
                }
            }
            '>' => {
                self.fancy = true;
                self.stack.push(Open {
                    kind: OpenKind::Plain,
                    bars: 0,
                });
                self.exact.push_str("(?>");
                if self.suppress == 0 {
                    self.relaxed.push_str("(?:");
                }
            }
            c if "aiLmsux-".contains(c) => {
                let mut on = String::new();
                let mut off = String::new();
                let mut neg = false;
                let mut ch = c;
                loop {
                    match ch {
                        '-' => neg = true,
                        'a' => self.ascii = !neg,
                        'L' | 'u' => {}
                        'x' => {
                            self.verbose = !neg;
                            if neg {
                                off.push('x')
                            } else {
                                on.push('x')
                            }
                        }
                        'i' | 'm' | 's' => {
                            if neg {
                                off.push(ch)
                            } else {
                                on.push(ch)
                            }
                        }
                        ':' => {
                            let f = if off.is_empty() {
                                format!("(?{on}:")
                            } else {
                                format!("(?{on}-{off}:")
                            };
                            self.stack.push(Open {
                                kind: OpenKind::Plain,
                                bars: 0,
                            });
                            self.both(&f);
                            return Ok(());
                        }
                        ')' => {
                            if !on.is_empty() || !off.is_empty() {
                                let f = if off.is_empty() {
                                    format!("(?{on})")
                                } else {
                                    format!("(?{on}-{off})")
                                };
                                self.both(&f);
                            }
                            return Ok(());
                        }
                        _ => return Err(self.err(format!("unknown flag {ch:?}"))),
                    }
                    ch = self.next().ok_or_else(|| self.err("missing -, : or )"))?;
                }
            }
            _ => return Err(self.err(format!("unknown extension ?{c}"))),
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), DialectError> {
        let open = self
            .stack
            .pop()
            .ok_or_else(|| self.err("unbalanced parenthesis"))?;
        match open.kind {
            OpenKind::Look => {
                self.exact.push(')');
                self.suppress -= 1;
            }
            OpenKind::Cond => {
                self.exact.push(')');
                if self.suppress == 0 {
                    if open.bars == 0 {
                        self.relaxed.push('|');
                    }
                    self.relaxed.push(')');
                }
            }
            OpenKind::Plain => self.both(")"),
        }
        Ok(())
    }
}

fn class_lit(c: char) -> String {
    match c {
        '[' | ']' | '\\' | '^' | '&' | '~' | '-' => format!("\\{c}"),
        c if c.is_control() || c == ' ' || c == '#' => format!("\\x{{{:x}}}", c as u32),
        c => c.to_string(),
    }
}

/// A malformed character escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EscapeError {
    /// `\x`, `\u`, `\U` without enough hex digits.
    IncompleteHex,
    /// The hex digits name no character.
    BadCodePoint,
}

/// Python's escapes that stand for one character, for the translator and
/// the date templates' matcher (`date::fast`): `c` is the character after
/// the backslash, `*pos` indexes the one after `c` (`char_at(i)`: the
/// pattern's `i`th character) and is moved past what the escape consumes.
/// `Ok(None)`: an alphanumeric escape that is no literal (a class, an
/// anchor, a group reference: the caller's business).
pub(crate) fn py_literal_escape(
    c: char,
    char_at: impl Fn(usize) -> Option<char>,
    pos: &mut usize,
) -> Result<Option<char>, EscapeError> {
    let mut hex = |n: usize| {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = char_at(*pos);
            if d.is_some() {
                *pos += 1;
            }
            v = v * 16
                + d.and_then(|c| c.to_digit(16))
                    .ok_or(EscapeError::IncompleteHex)?;
        }
        char::from_u32(v).ok_or(EscapeError::BadCodePoint)
    };
    Ok(Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'f' => '\x0c',
        'v' => '\x0b',
        'a' => '\x07',
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0' => {
            // up to two more octal digits: at most 0o77, always a character
            let mut v = 0u32;
            for _ in 0..2 {
                match char_at(*pos).and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        *pos += 1;
                    }
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\0')
        }
        c if c.is_ascii_alphanumeric() => return Ok(None),
        c => c,
    }))
}

/// Translates a Python `re` pattern into Rust engine syntax.
pub fn translate(pattern: &str) -> Result<Translation, DialectError> {
    let mut tx = Tx {
        src: pattern,
        chars: pattern.char_indices().collect(),
        pos: 0,
        exact: String::with_capacity(pattern.len() + 16),
        relaxed: String::with_capacity(pattern.len() + 16),
        fancy: false,
        names: vec![None],
        name_set: HashMap::new(),
        stack: Vec::new(),
        suppress: 0,
        ascii: false,
        verbose: false,
        top_bar: false,
    };
    tx.run()?;
    Ok(Translation {
        exact: tx.exact,
        fancy: tx.fancy,
        relaxed: tx.relaxed,
        names: tx.names,
        top_level_alternation: tx.top_bar,
    })
}

/// Group spans of one match: index 0 is the whole match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spans(pub Vec<Option<(usize, usize)>>);

impl Spans {
    /// The whole match span.
    pub fn whole(&self) -> (usize, usize) {
        self.0.first().copied().flatten().unwrap_or((0, 0))
    }
    /// Span of group `i`, if it participated.
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        self.0.get(i).copied().flatten()
    }
}

/// A linear-time pattern compiled twice: a byte-level ASCII variant used on
/// ASCII haystacks (small NFA, cheap to build, fast captures) and the full
/// Unicode variant, built on first use by a non-ASCII haystack.
///
/// On an ASCII haystack both give the same matches and group spans: every
/// Unicode class (`\w \d \s \b .` and negations) agrees with its ASCII
/// form on ASCII characters, and a non-ASCII literal (e.g. a localized month
/// name in a date template) cannot match ASCII text, except the two
/// characters whose simple case folding is ASCII (`ſ` -> `s`, Kelvin sign ->
/// `k`): patterns containing them have no ASCII variant (nor do patterns the
/// byte-level parser refuses).
struct Linear {
    pattern: String,
    /// False if the pattern has `ſ` or the Kelvin sign (no ASCII variant).
    ascii_ok: bool,
    /// Both variants are compiled on first use (a filter's rarely used
    /// regexes and date templates cost only a syntax check).
    ascii: std::sync::OnceLock<Option<Slots<regex::bytes::Regex, regex::bytes::CaptureLocations>>>,
    unicode: std::sync::OnceLock<Option<Slots<regex::Regex, regex::CaptureLocations>>>,
    /// The capture engine on ASCII haystacks (PCRE2 JIT, `crate::pcre`):
    /// same spans as the byte-level variant, several times faster.
    pcre: std::sync::OnceLock<Option<crate::pcre::Pcre>>,
}

/// A compiled regex and its reused capture slots (one search at a time per
/// regex; a concurrent search falls back to fresh slots). Serves the
/// `regex` crate's engines here and PCRE2 in `crate::pcre`.
pub(crate) struct Slots<R, L> {
    re: R,
    /// Set while a search holds `locs`.
    busy: std::sync::atomic::AtomicBool,
    locs: std::cell::UnsafeCell<L>,
    /// New slots for `re`.
    fresh: fn(&R) -> L,
}

// SAFETY: `locs` is only reached through `with`, by the one search that
// set `busy` (an exclusive claim, released when that search ends); `R` is
// shared by reference, so it must be `Sync`; `L` moves between threads
// with the claim, so it must be `Send`.
unsafe impl<R: Sync, L: Send> Sync for Slots<R, L> {}

impl<R, L> Slots<R, L> {
    pub(crate) fn new(re: R, fresh: fn(&R) -> L) -> Self {
        Slots {
            busy: std::sync::atomic::AtomicBool::new(false),
            locs: std::cell::UnsafeCell::new(fresh(&re)),
            re,
            fresh,
        }
    }

    /// Runs one search with the reused slots, or with fresh ones when
    /// another search holds them. (A flag rather than a mutex: one atomic
    /// exchange per search, the release is a plain store.)
    #[inline]
    pub(crate) fn with<T>(&self, search: impl FnOnce(&R, &mut L) -> T) -> T {
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Releases the claim when the search ends (or unwinds).
        struct Claim<'a>(&'a AtomicBool);
        impl Drop for Claim<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let mut fresh = None;
        let mut _claim = None;
        let locs = if self.busy.swap(true, Ordering::Acquire) {
            fresh.insert((self.fresh)(&self.re))
        } else {
            _claim = Some(Claim(&self.busy));
            // SAFETY: `busy` was false and is now set by this search: no
            // other reference to `locs` exists until `_claim` clears it.
            unsafe { &mut *self.locs.get() }
        };
        // one call site: the search is inlined here
        search(&self.re, locs)
    }
}

const SIZE_LIMIT: usize = 64 << 20;

impl Linear {
    /// Checks the syntax now (errors surface at construction); compiles
    /// nothing yet. A pattern over the engines' size limit (64 MiB of NFA)
    /// is found out on first use and then never matches. The syntax parser
    /// runs only when the quick scan cannot vouch for the pattern
    /// (`crate::quick_syntax`).
    fn new(pattern: String) -> Result<Linear, String> {
        if !crate::quick_syntax::certainly_valid(&pattern) {
            regex_syntax::ast::parse::Parser::new()
                .parse(&pattern)
                .map_err(|e| e.to_string())?;
        }
        Ok(Linear {
            ascii_ok: !pattern.contains(['\u{17f}', '\u{212a}']),
            pattern,
            ascii: std::sync::OnceLock::new(),
            unicode: std::sync::OnceLock::new(),
            pcre: std::sync::OnceLock::new(),
        })
    }

    fn pcre(&self) -> Option<&crate::pcre::Pcre> {
        self.pcre
            .get_or_init(|| crate::pcre::Pcre::new(&self.pattern))
            .as_ref()
    }

    fn ascii(&self) -> Option<&Slots<regex::bytes::Regex, regex::bytes::CaptureLocations>> {
        if !self.ascii_ok {
            return None;
        }
        self.ascii
            .get_or_init(|| {
                regex::bytes::RegexBuilder::new(&self.pattern)
                    .unicode(false)
                    .size_limit(SIZE_LIMIT)
                    .build()
                    .ok()
                    .map(|re| Slots::new(re, regex::bytes::Regex::capture_locations))
            })
            .as_ref()
    }

    fn unicode(&self) -> Option<&Slots<regex::Regex, regex::CaptureLocations>> {
        self.unicode
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.pattern)
                    .size_limit(SIZE_LIMIT)
                    .build()
                    .ok()
                    .map(|re| Slots::new(re, regex::Regex::capture_locations))
            })
            .as_ref()
    }

    /// The ASCII variant if `hay` is ASCII and the variant exists.
    fn ascii_for(
        &self,
        hay: &str,
    ) -> Option<&Slots<regex::bytes::Regex, regex::bytes::CaptureLocations>> {
        if all_ascii(hay.as_bytes()) {
            self.ascii()
        } else {
            None
        }
    }

    /// Leftmost-first match from `pos` with all group spans.
    #[cfg(test)]
    fn captures(&self, hay: &str, pos: usize) -> Option<Spans> {
        let mut out = Spans(Vec::new());
        self.captures_into(hay, pos, None, &mut out).then_some(out)
    }

    /// [`Linear::captures`] into `out` (its allocation reused).
    /// `ascii`: whether `hay` is all ASCII, if known.
    fn captures_into(&self, hay: &str, pos: usize, ascii: Option<bool>, out: &mut Spans) -> bool {
        if ascii.unwrap_or_else(|| all_ascii(hay.as_bytes())) {
            if let Some(Ok(r)) = self
                .pcre()
                .map(|p| p.captures_into(hay.as_bytes(), pos, &mut out.0))
            {
                return r;
            }
        }
        self.captures_linear(hay, pos).map(|sp| *out = sp).is_some()
    }

    /// The match from `pos` of this expanded pattern (`e`'s), verified into
    /// `out` ([`crate::expand::Expanded::verify_with`]): `None` if there is
    /// no match, else whether the verification holds. PCRE2's spans are
    /// read from its own memory, not copied first.
    fn verified_into(
        &self,
        hay: &str,
        pos: usize,
        ascii: Option<bool>,
        e: &crate::expand::Expanded,
        out: &mut Spans,
    ) -> Option<bool> {
        if ascii.unwrap_or_else(|| all_ascii(hay.as_bytes())) {
            if let Some(Ok(r)) = self.pcre().map(|p| {
                p.search_with(hay.as_bytes(), pos, |ov, _| {
                    e.verify_with(hay, |i| crate::pcre::ovector_span(ov, i), &mut out.0)
                })
            }) {
                return r;
            }
        }
        let sp = self.captures_linear(hay, pos)?;
        Some(e.verify_into(hay, &sp.0, &mut out.0))
    }

    /// [`Linear::captures`] on the `regex` crate alone.
    fn captures_linear(&self, hay: &str, pos: usize) -> Option<Spans> {
        match self.ascii_for(hay) {
            Some(a) => a.with(|re, l| {
                re.captures_read_at(l, hay.as_bytes(), pos)?;
                Some(Spans((0..l.len()).map(|i| l.get(i)).collect()))
            }),
            None => self.unicode()?.with(|re, l| {
                re.captures_read_at(l, hay, pos)?;
                Some(Spans((0..l.len()).map(|i| l.get(i)).collect()))
            }),
        }
    }

    /// True if there is a match starting at or after `pos`.
    fn matches_at(&self, hay: &str, pos: usize) -> bool {
        match self.ascii_for(hay) {
            Some(a) => a.re.find_at(hay.as_bytes(), pos).is_some(),
            _ => self
                .unicode()
                .is_some_and(|u| u.re.find_at(hay, pos).is_some()),
        }
    }
}

/// A pattern of the form `HEAD(?P<g>.+)$` (or `.*`), the shape of every
/// fail2ban `prefregex` (`...<F-CONTENT>.+</F-CONTENT>$`).
///
/// Without the `s` flag the tail group, greedy, runs to the next newline (or
/// the end) and `$` holds there, so the whole pattern's first path (in
/// backtracking priority) is the first path of `HEAD` followed by that tail
/// whenever the tail is long enough; a match of the whole pattern implies a
/// match of `HEAD` at the same start. The captures are then taken from `HEAD`
/// alone (a much shorter span for the capture engine); a too-short tail falls
/// back to the whole pattern.
struct Tail {
    head: Linear,
    /// Index of the tail group (the last group).
    group: usize,
    /// `.+` (true) or `.*` (false).
    plus: bool,
}

impl Tail {
    fn of(t: &Translation, prefix: &str) -> Option<Tail> {
        if t.fancy || t.top_level_alternation {
            return None;
        }
        let group = t.names.len().checked_sub(1).filter(|&g| g > 0)?;
        let name = t.names.get(group)?.as_deref()?;
        let (body, plus) = [(".+", true), (".*", false)]
            .into_iter()
            .find_map(|(b, plus)| {
                let tail = format!("(?P<{name}>{b})(?m:$)");
                t.exact.strip_suffix(tail.as_str()).map(|h| (h, plus))
            })?;
        // any `s` flag (`(?s)`, `(?is:`, `(?-s)` ...) changes what `.` and the
        // tail can span: keep the general path
        let b = t.exact.as_bytes();
        let has_s_flag = b.windows(2).enumerate().any(|(i, w)| {
            w == b"(?"
                && b[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == b'-')
                    .any(|&c| c == b's')
        });
        if has_s_flag {
            return None;
        }
        let head = Linear::new(format!("{prefix}{body}")).ok()?;
        Some(Tail { head, group, plus })
    }

    /// The whole pattern's match from `pos` into `sp`: `Some(true)` found,
    /// `Some(false)` proven absent, `None` undecided (use the whole pattern).
    fn captures_into(
        &self,
        hay: &str,
        pos: usize,
        ascii: Option<bool>,
        one_line: bool,
        sp: &mut Spans,
    ) -> Option<bool> {
        if !self.head.captures_into(hay, pos, ascii, sp) {
            return Some(false);
        }
        let (s, e) = sp.whole();
        // the tail runs to the next newline: the last byte of a one-line
        // haystack, unless the head took it
        let end = if one_line && e < hay.len() {
            hay.len() - 1
        } else {
            memchr::memchr(b'\n', &hay.as_bytes()[e..]).map_or(hay.len(), |p| e + p)
        };
        if self.plus && end == e {
            return None;
        }
        sp.0[0] = Some((s, end));
        sp.0.truncate(self.group);
        sp.0.push(Some((e, end)));
        Some(true)
    }
}

/// A backtracking regex compiled on first use.
struct LazyFancy {
    pattern: String,
    limit: usize,
    re: std::sync::OnceLock<Option<fancy_regex::Regex>>,
}

impl LazyFancy {
    fn new(pattern: String) -> LazyFancy {
        LazyFancy {
            pattern,
            limit: DEFAULT_BACKTRACK_LIMIT,
            re: std::sync::OnceLock::new(),
        }
    }
    fn built(pattern: String, re: fancy_regex::Regex) -> LazyFancy {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(Some(re));
        LazyFancy {
            pattern,
            limit: DEFAULT_BACKTRACK_LIMIT,
            re: cell,
        }
    }
    fn with_limit(mut self, limit: usize) -> LazyFancy {
        self.limit = limit;
        self
    }
    fn get(&self) -> Option<&fancy_regex::Regex> {
        self.re
            .get_or_init(|| {
                fancy_regex::RegexBuilder::new(&self.pattern)
                    .backtrack_limit(self.limit)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

// one engine per compiled regex: the variants' size difference is irrelevant
#[allow(clippy::large_enum_variant)]
enum Engine {
    Linear(Linear),
    Backtrack {
        re: LazyFancy,
        /// Linear superset prefilter (the relaxed pattern, or the expanded
        /// one when `expanded` is set).
        pre: Option<Linear>,
        /// Conditionals expanded / tempered tokens marked (`pre` is its
        /// pattern): answers most searches without backtracking.
        expanded: Option<crate::expand::Expanded>,
    },
}

/// Literals one of which every match must start with, for patterns anchored
/// at the start of the haystack (`^` without `re.MULTILINE`, `\A`).
///
/// A search from position 0 whose haystack starts with none of them cannot
/// match, so it is answered without entering the regex engine. The literals
/// come from `regex-syntax`'s prefix extractor run on the linear pattern (the
/// exact one, or the relaxed superset for backtracking patterns), whose
/// contract is that every match begins with one of them.
#[derive(Debug, Clone)]
struct StartLiterals {
    /// The literals, without those that extend another one (a haystack
    /// starting with `ab` passes whether or not `abc` is also listed).
    lits: Vec<StartLit>,
    /// `first[b]`: some literal starts with byte `b`.
    first: [bool; 256],
    /// Length of the longest literal of the whole extracted set (the ASCII
    /// part of a haystack the gate's argument needs, see `check`).
    max_len: usize,
}

/// One start literal: its first 16 bytes as two little-endian words and
/// their masks (compared with the haystack's first 16 bytes without a call),
/// and the bytes after them.
#[derive(Debug, Clone)]
struct StartLit {
    words: [u64; 2],
    masks: [u64; 2],
    rest: Box<[u8]>,
}

/// More literals than this and the gate is not worth it (the DFA is as fast).
const MAX_START_LITERALS: usize = 32;

/// The cheap checks made before a search enters a regex engine.
#[derive(Debug, Default)]
struct Gate {
    start: Option<StartLiterals>,
    /// A literal every match contains (the longest such literal of the
    /// pattern's mandatory parts, at most its last [`MAX_REQUIRED_LEN`]
    /// bytes): a haystack without it cannot match.
    required: Option<memchr::memmem::Finder<'static>>,
    /// Every start literal contains `required`: a haystack the start
    /// literals let through by its first bytes has it.
    required_in_start: bool,
}

/// Shorter required literals are not worth a substring search.
const MIN_REQUIRED_LEN: usize = 4;
/// A longer required literal is searched by its last this many bytes (a
/// substring of a mandatory literal is mandatory too): `memchr`'s SIMD
/// searcher takes needles up to 32 bytes, a longer one costs a Two-Way
/// search about 2.5 times as long on a log line.
const MAX_REQUIRED_LEN: usize = 32;

impl Gate {
    fn of(linear: &str) -> Gate {
        // `ſ` and the Kelvin sign fold to ASCII letters: no byte-level gate
        if linear.contains(['\u{17f}', '\u{212a}']) {
            return Gate::default();
        }
        // byte-level parse (much cheaper than the Unicode one); its start
        // literals hold for ASCII haystacks only (Unicode case folding adds
        // non-ASCII variants such as the Kelvin sign), see `StartLiterals::check`
        let Ok(hir) = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(linear)
        else {
            return Gate::default();
        };
        let mut req = Vec::new();
        required_literals(&hir, &mut req);
        let required = req
            .into_iter()
            .max_by_key(Vec::len)
            .filter(|l| l.len() >= MIN_REQUIRED_LEN)
            .map(|l| l[l.len().saturating_sub(MAX_REQUIRED_LEN)..].to_vec());
        let start = StartLiterals::of(&hir);
        let required_in_start = match (&start, &required) {
            (Some(sl), Some(r)) => sl.all_contain(r),
            _ => false,
        };
        Gate {
            start,
            required: required.map(|l| memchr::memmem::Finder::new(&l).into_owned()),
            required_in_start,
        }
    }

    /// False if a search of `hay` from `pos` cannot match.
    /// `ascii`: whether `hay` is all ASCII, if known.
    fn may_match(&self, hay: &[u8], pos: usize, ascii: Option<bool>) -> bool {
        let mut starts = false;
        if let Some(sl) = &self.start {
            // `^` cannot match after position 0; before it, the haystack
            // must start with one of the required literals.
            if pos > 0 {
                return false;
            }
            match sl.check(hay, ascii == Some(true)) {
                Start::No => return false,
                Start::Yes => starts = true,
                Start::Unknown => {}
            }
        }
        match &self.required {
            Some(_) if starts && self.required_in_start => true,
            Some(f) => hay.get(pos..).is_some_and(|h| f.find(h).is_some()),
            None => true,
        }
    }
}

/// The literals every match of `h` contains: literals on its mandatory
/// path (concatenations, groups, repetitions of at least one), adjacent
/// ones joined. Alternatives and optional parts contribute nothing.
///
/// A literal of the byte-level syntax tree is a case-sensitive byte string,
/// and the same bytes in the Unicode tree (case-insensitive parts are
/// classes in both), so it must occur in any haystack a match is found in.
pub(crate) fn required_literals(h: &regex_syntax::hir::Hir, out: &mut Vec<Vec<u8>>) {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Literal(l) => out.push(l.0.to_vec()),
        HirKind::Capture(c) => required_literals(&c.sub, out),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub, out),
        HirKind::Concat(v) => {
            let mut run: Vec<u8> = Vec::new();
            for s in v {
                match s.kind() {
                    HirKind::Literal(l) => run.extend_from_slice(&l.0),
                    _ => {
                        if !run.is_empty() {
                            out.push(std::mem::take(&mut run));
                        }
                        required_literals(s, out);
                    }
                }
            }
            if !run.is_empty() {
                out.push(run);
            }
        }
        _ => {}
    }
}

/// What the start literals say of a haystack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// It starts with none of them: no match from 0.
    No,
    /// It starts with one of them.
    Yes,
    /// Not decided (non-ASCII bytes in its head): search.
    Unknown,
}

impl StartLiterals {
    fn of(hir: &regex_syntax::hir::Hir) -> Option<StartLiterals> {
        use regex_syntax::hir::literal::{ExtractKind, Extractor};
        use regex_syntax::hir::Look;
        if !hir.properties().look_set_prefix().contains(Look::Start) {
            return None;
        }
        let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
        let lits = seq.literals()?;
        if lits.is_empty() || lits.len() > MAX_START_LITERALS {
            return None;
        }
        if lits.iter().any(|l| l.as_bytes().is_empty()) {
            return None;
        }
        let mut lits: Vec<Vec<u8>> = lits.iter().map(|l| l.as_bytes().to_vec()).collect();
        let max_len = lits.iter().map(Vec::len).max().unwrap_or(0);
        // a literal that extends another adds nothing: sorted, a literal's
        // prefixes come before it
        lits.sort();
        lits.dedup();
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(lits.len());
        for l in lits {
            if !kept.iter().any(|k| l.starts_with(k)) {
                kept.push(l);
            }
        }
        let mut first = [false; 256];
        for l in &kept {
            first[usize::from(l[0])] = true;
        }
        let lits = kept
            .iter()
            .map(|l| {
                let (mut words, mut masks) = ([0u64; 2], [0u64; 2]);
                for (i, &b) in l.iter().take(16).enumerate() {
                    words[i / 8] |= u64::from(b) << (8 * (i % 8));
                    masks[i / 8] |= 0xff << (8 * (i % 8));
                }
                StartLit {
                    words,
                    masks,
                    rest: l.get(16..).unwrap_or_default().into(),
                }
            })
            .collect();
        Some(StartLiterals {
            lits,
            first,
            max_len,
        })
    }

    /// True if every literal contains `needle`.
    fn all_contain(&self, needle: &[u8]) -> bool {
        self.lits.iter().all(|l| {
            let mut b: Vec<u8> = (0..16)
                .take_while(|&i| l.masks[i / 8] >> (8 * (i % 8)) & 0xff != 0)
                .map(|i| (l.words[i / 8] >> (8 * (i % 8))) as u8)
                .collect();
            b.extend_from_slice(&l.rest);
            memchr::memmem::find(&b, needle).is_some()
        })
    }

    /// Whether a search of `hay` from 0 can match.
    ///
    /// The literals come from a byte-level parse, whose classes accept the
    /// ASCII characters the Unicode ones accept: when the first `max_len`
    /// bytes of `hay` are ASCII, a match (of either variant) starts with a
    /// path whose first characters the byte-level literals enumerate (the
    /// whole extracted set; each of them starts with a kept one). A
    /// haystack with a non-ASCII character there is never rejected (Unicode
    /// classes and case folding reach further, e.g. the Kelvin sign).
    /// `ascii`: `hay` is known to be all ASCII.
    fn check(&self, hay: &[u8], ascii: bool) -> Start {
        if !ascii && !all_ascii(&hay[..self.max_len.min(hay.len())]) {
            return Start::Unknown;
        }
        match hay.first() {
            Some(&b) if self.first[usize::from(b)] => {}
            _ => return Start::No,
        }
        // the first 16 bytes as two words (zero-padded: a shorter haystack
        // can only pass a literal that ends in NUL bytes, a harmless pass)
        let hw = head_words(hay);
        let hit = self.lits.iter().any(|l| {
            hw[0] & l.masks[0] == l.words[0]
                && hw[1] & l.masks[1] == l.words[1]
                && (l.rest.is_empty() || hay.get(16..).is_some_and(|t| t.starts_with(&l.rest)))
        });
        if hit {
            Start::Yes
        } else {
            Start::No
        }
    }
}

/// `b.is_ascii()` a word at a time: the standard library's test costs
/// about three instructions a byte here, and every search asks it of its
/// haystack (a log line: tens of bytes).
#[inline]
pub(crate) fn all_ascii(b: &[u8]) -> bool {
    let mut acc = 0u64;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        acc |= u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    }
    for &x in words.remainder() {
        acc |= u64::from(x);
    }
    acc & 0x8080_8080_8080_8080 == 0
}

/// The first (up to) 16 bytes of `b` as two little-endian words,
/// zero-padded.
#[inline]
fn head_words(b: &[u8]) -> [u64; 2] {
    let w = match b.first_chunk::<16>() {
        Some(h) => u128::from_le_bytes(*h),
        None => {
            let mut w = [0u8; 16];
            w[..b.len()].copy_from_slice(b);
            u128::from_le_bytes(w)
        }
    };
    [w as u64, (w >> 64) as u64]
}

/// What a caller that searches one haystack with several regexes learns of
/// it once: whether it is all ASCII (asked by the start-literal gate and by
/// the choice of capture engine of every search otherwise).
///
/// A probe names the haystack it was made for (address and length): a
/// search of another haystack ignores it. A caller whose buffer is
/// rewritten or replaced (a new one may get the same address and length)
/// makes a new probe.
///
/// A caller may also know facts that would cost a scan to learn here
/// ([`Probe::known`]): that the haystack is all ASCII, that its only newline
/// is its last byte (a log line read from a file, and the newline the
/// filter appends: a `<F-CONTENT>.+$` tail then ends there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    at: usize,
    len: usize,
    ascii: bool,
    one_line: bool,
}

impl Probe {
    /// The probe of `hay`.
    #[cfg(test)]
    pub(crate) fn of(hay: &str) -> Probe {
        Probe::known(hay, false, false)
    }

    /// The probe of `hay` with what the caller knows of it: `ascii` (true:
    /// it is all ASCII; false: not known, tested here) and `one_line` (its
    /// only newline is its last byte). A wrong fact gives wrong matches
    /// (never unsafety); both are checked in debug builds.
    pub(crate) fn known(hay: &str, ascii: bool, one_line: bool) -> Probe {
        debug_assert!(!ascii || hay.is_ascii(), "not ASCII: {hay:?}");
        debug_assert!(
            !one_line || memchr::memchr(b'\n', hay.as_bytes()) == hay.len().checked_sub(1),
            "not one line: {hay:?}"
        );
        Probe {
            at: hay.as_ptr() as usize,
            len: hay.len(),
            ascii: ascii || all_ascii(hay.as_bytes()),
            one_line,
        }
    }

    /// Whether `hay` is all ASCII, if this is its probe.
    pub(crate) fn ascii_of(&self, hay: &str) -> Option<bool> {
        self.is_of(hay).then_some(self.ascii)
    }

    fn is_of(&self, hay: &str) -> bool {
        hay.as_ptr() as usize == self.at && hay.len() == self.len
    }
}

/// A compiled Python-dialect regex.
pub struct PyRegex {
    source: String,
    linear: Option<String>,
    /// Computed on first search (a parse of the linear pattern).
    gate: std::sync::OnceLock<Gate>,
    tail: Option<Tail>,
    engine: Engine,
    names: Vec<Option<String>>,
    index: HashMap<String, usize>,
    budget_hits: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRegex")
            .field("source", &self.source)
            .field("backtracking", &self.is_backtracking())
            .finish()
    }
}

impl PyRegex {
    /// Compiles `pattern` (Python syntax); `multiline` is Python's `re.MULTILINE`.
    pub fn new(pattern: &str, multiline: bool) -> Result<Self, DialectError> {
        Self::with_limit(pattern, multiline, DEFAULT_BACKTRACK_LIMIT)
    }

    /// Like [`PyRegex::new`] with an explicit backtrack budget per search.
    pub fn with_limit(pattern: &str, multiline: bool, limit: usize) -> Result<Self, DialectError> {
        let t = translate(pattern)?;
        let prefix = if multiline { "(?m)" } else { "" };
        let eng_err = |e: String| DialectError::Engine {
            pattern: pattern.to_string(),
            reason: e,
        };
        let tail = Tail::of(&t, prefix);
        let engine = if !t.fancy {
            Engine::Linear(Linear::new(format!("{prefix}{}", t.exact)).map_err(eng_err)?)
        } else {
            let exact = format!("{prefix}{}", t.exact);
            let build = |p: &str| {
                fancy_regex::RegexBuilder::new(p)
                    .backtrack_limit(limit)
                    .build()
                    .map_err(|e| e.to_string())
            };
            let groups = t.names.len().saturating_sub(1);
            let expanded = crate::expand::expand(&exact, groups)
                .and_then(|e| Linear::new(e.pattern.clone()).ok().map(|l| (e, l)));
            match expanded {
                // the backtracking engine only settles the rare searches the
                // expanded pattern cannot (built on first need; conditionals
                // and look-aheads, the only constructs left, always compile)
                Some((e, l)) => Engine::Backtrack {
                    re: LazyFancy::new(exact).with_limit(limit),
                    pre: Some(l),
                    expanded: Some(e),
                },
                None => {
                    let re = build(&exact).map_err(eng_err)?;
                    Engine::Backtrack {
                        re: LazyFancy::built(exact, re).with_limit(limit),
                        pre: Linear::new(format!("{prefix}{}", t.relaxed)).ok(),
                        expanded: None,
                    }
                }
            }
        };
        let mut index = HashMap::new();
        for (i, n) in t.names.iter().enumerate() {
            if let Some(n) = n {
                index.insert(n.clone(), i);
            }
        }
        let linear = match &engine {
            Engine::Linear(l) => Some(l.pattern.clone()),
            Engine::Backtrack { pre: Some(p), .. } => Some(p.pattern.clone()),
            Engine::Backtrack { pre: None, .. } => None,
        };
        Ok(PyRegex {
            gate: std::sync::OnceLock::new(),
            tail,
            linear,
            source: pattern.to_string(),
            engine,
            names: t.names,
            index,
            budget_hits: Default::default(),
        })
    }

    /// The first-byte part of the start-literal gate: `(first, max_len)`
    /// where a search from 0 of a haystack whose first `max_len` bytes are
    /// ASCII cannot match unless `first[hay[0]]` (a cheaper, weaker form of
    /// the check [`PyRegex::search`] makes, for callers trying many regexes
    /// on one buffer).
    pub(crate) fn first_byte_gate(&self) -> Option<(&[bool; 256], usize)> {
        self.start_literals().map(|sl| (&sl.first, sl.max_len))
    }

    fn gate(&self) -> &Gate {
        self.gate
            .get_or_init(|| self.linear.as_deref().map(Gate::of).unwrap_or_default())
    }

    fn start_literals(&self) -> Option<&StartLiterals> {
        self.gate().start.as_ref()
    }

    /// A linear-time pattern whose matches are a superset of this regex's
    /// (the exact pattern when it needs no backtracking).
    pub fn linear_pattern(&self) -> Option<&str> {
        self.linear.as_deref()
    }

    /// The Python source pattern.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True if the pattern runs on the backtracking engine.
    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Backtrack { .. })
    }

    /// Group names by index (index 0 = whole match, always `None`).
    pub fn names(&self) -> &[Option<String>] {
        &self.names
    }

    /// Index of a named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// How many searches were abandoned because they exceeded the budget.
    pub fn budget_hits(&self) -> u64 {
        self.budget_hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds `n` abandoned searches (a speculative copy's, see
    /// `Filter::absorb`).
    pub(crate) fn add_budget_hits(&self, n: u64) {
        self.budget_hits
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// `re.search`: first (leftmost) match with all group spans.
    pub fn search(&self, hay: &str) -> Option<Spans> {
        self.search_at(hay, 0, hay.len())
    }

    /// `re.search(hay, pos, endpos)`.
    pub fn search_at(&self, hay: &str, pos: usize, endpos: usize) -> Option<Spans> {
        let mut out = Spans(Vec::new());
        self.search_at_into(hay, pos, endpos, &mut out)
            .then_some(out)
    }

    /// [`PyRegex::search`] into `out` (its allocation reused; true if
    /// found) with what `probe` knows of `hay` (the
    /// probe of another haystack is ignored).
    pub(crate) fn search_probed(&self, hay: &str, probe: &Probe, out: &mut Spans) -> bool {
        let one_line = probe.one_line && probe.is_of(hay);
        self.search_in(hay, 0, hay.len(), probe.ascii_of(hay), one_line, out)
    }

    /// [`PyRegex::search_at`] into `out` (its allocation reused): true if
    /// found.
    pub(crate) fn search_at_into(
        &self,
        hay: &str,
        pos: usize,
        endpos: usize,
        out: &mut Spans,
    ) -> bool {
        self.search_in(hay, pos, endpos, None, false, out)
    }

    /// The search: `ascii` is whether `hay` is all ASCII, if known;
    /// `one_line`: `hay`'s only newline is its last byte.
    fn search_in(
        &self,
        hay: &str,
        pos: usize,
        endpos: usize,
        ascii: Option<bool>,
        one_line: bool,
        out: &mut Spans,
    ) -> bool {
        let len = hay.len();
        let endpos = endpos.min(len);
        if pos > endpos || !hay.is_char_boundary(pos) || !hay.is_char_boundary(endpos) {
            return false;
        }
        let hay = &hay[..endpos];
        // (a part of an ASCII haystack is ASCII)
        let ascii = ascii.filter(|&a| a);
        if !self.gate().may_match(hay.as_bytes(), pos, ascii) {
            return false;
        }
        if let Some(t) = &self.tail {
            // (`one_line` holds of `hay[..endpos]` only if that is `hay`)
            let one_line = one_line && endpos == len;
            if let Some(r) = t.captures_into(hay, pos, ascii, one_line, out) {
                return r;
            }
        }
        match &self.engine {
            Engine::Linear(l) => l.captures_into(hay, pos, ascii, out),
            Engine::Backtrack { re, pre, expanded } => {
                match (pre, expanded) {
                    (Some(p), Some(e)) => {
                        // the expanded pattern's spans, verified into `out`
                        // (its allocation kept for the next search)
                        match p.verified_into(hay, pos, ascii, e, out) {
                            None => return false,
                            Some(true) => return true,
                            Some(false) => {}
                        }
                    }
                    (Some(p), None) if !p.matches_at(hay, pos) => return false,
                    _ => {}
                }
                self.backtrack_engine(re, hay, pos)
                    .map(|sp| *out = sp)
                    .is_some()
            }
        }
    }

    /// The backtracking engine's search (under its budget).
    fn backtrack_engine(&self, re: &LazyFancy, hay: &str, pos: usize) -> Option<Spans> {
        let Some(re) = re.get() else {
            self.budget_hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        };
        match re.captures_from_pos(hay, pos) {
            Ok(Some(caps)) => Some(Spans(
                (0..caps.len())
                    .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                    .collect(),
            )),
            Ok(None) => None,
            Err(_) => {
                self.budget_hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }

    /// True if the pattern matches anywhere.
    pub fn is_match(&self, hay: &str) -> bool {
        match &self.engine {
            Engine::Linear(l) => {
                self.gate().may_match(hay.as_bytes(), 0, None) && l.matches_at(hay, 0)
            }
            _ => self.search(hay).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> Option<String> {
        let r = PyRegex::new(p, false).unwrap();
        r.search(s).map(|sp| {
            let (a, b) = sp.whole();
            s[a..b].to_string()
        })
    }

    #[test]
    fn all_ascii_is_is_ascii() {
        for s in [
            "",
            "a",
            "abcdefgh",
            "abcdefghi\n",
            "ä",
            "abcdefgä",
            "abcdefghä",
            "0123456789abcdef\u{7f}",
        ] {
            assert_eq!(all_ascii(s.as_bytes()), s.is_ascii(), "{s:?}");
        }
        for n in 0..40 {
            let mut b = vec![b'x'; n];
            assert!(all_ascii(&b));
            for i in 0..n {
                b[i] = 0x80;
                assert!(!all_ascii(&b));
                b[i] = b'x';
            }
        }
    }

    #[test]
    fn dollar_before_trailing_newline() {
        assert_eq!(m("abc$", "abc\n").as_deref(), Some("abc"));
        assert_eq!(m(r"abc\Z", "abc\n"), None);
        assert_eq!(m(r"abc\Z", "abc").as_deref(), Some("abc"));
    }

    #[test]
    fn conditionals_and_backrefs() {
        let p = r"^(?P<q>')?x(?(q)'|!)$";
        assert!(m(p, "'x'").is_some());
        assert!(m(p, "x!").is_some());
        assert!(m(p, "x'").is_none());
        assert_eq!(m(r"(?P<a>\w)(?P=a)", "abccd").as_deref(), Some("cc"));
        assert_eq!(m(r"(a)\1", "xaa").as_deref(), Some("aa"));
        let r = PyRegex::new(p, false).unwrap();
        assert!(r.is_backtracking());
    }

    #[test]
    fn expanded_spans_agree_with_the_backtracking_engine() {
        // sshd's `Failed ...` shape: conditionals and tempered tokens; ASCII
        // haystacks verify from PCRE2's ovector, others from the `regex` crate
        let p = r"^Failed \S+ for (?P<inv>invalid user )?(?P<user>(?P<cu>\S+)|(?(inv)(?:(?! from ).)*?|[^:]+)) from (?P<h>\S+)(?: port \d+)?(?: ssh\d*)?(?(cu): |(?:(?:(?! from ).)*)$)";
        let r = PyRegex::new(p, false).unwrap();
        let Engine::Backtrack {
            re,
            expanded: Some(_),
            ..
        } = &r.engine
        else {
            panic!("not expanded");
        };
        let mut found = 0;
        for hay in [
            "Failed password for root from 1.2.3.4 port 22 ssh2",
            "Failed password for root from 1.2.3.4 port 22 ssh2: x",
            "Failed password for invalid user bob from 1.2.3.4 port 22 ssh2",
            "Failed password for invalid user a b from c from 1.2.3.4 port 2",
            "Failed password for x y from 1.2.3.4 port 3",
            "Failed password for x: y from 1.2.3.4 port 3",
            "Failed password for ünï from 1.2.3.4 port 2 ssh2: ",
            "Failed none for invalid user é à from 10.0.0.1",
            "Failed none for invalid user é from 10.0.0.1 from x",
            "Failed none for",
        ] {
            let want = r.backtrack_engine(re, hay, 0);
            found += usize::from(want.is_some());
            assert_eq!(r.search(hay), want, "{hay}");
        }
        assert!(found >= 5, "{found}");
    }

    #[test]
    fn python_literal_braces_and_classes() {
        assert_eq!(m(r"a{", "a{").as_deref(), Some("a{"));
        assert_eq!(m(r"a{,2}b", "aab").as_deref(), Some("aab"));
        assert_eq!(m(r"x{1,}", "xxx").as_deref(), Some("xxx"));
        assert_eq!(m(r"[[]", "[").as_deref(), Some("["));
        assert_eq!(m(r"[]a]+", "a]a").as_deref(), Some("a]a"));
        assert_eq!(m(r"[a&&b]+", "&&").as_deref(), Some("&&"));
        assert_eq!(m(r"\<x\>", "<x>").as_deref(), Some("<x>"));
        assert_eq!(m(r"\s", "\x1c").as_deref(), Some("\x1c"));
        assert_eq!(m(r"(?#comment)a", "a").as_deref(), Some("a"));
        assert_eq!(m(r"(?i)ABC", "abc").as_deref(), Some("abc"));
        assert_eq!(m(r"\x41\101", "AA").as_deref(), Some("AA"));
    }

    #[test]
    fn boundary_lookaheads_are_linear() {
        let r = PyRegex::new(r"(?=^|\b|\W)\d+(?=\b|\W|$)", false).unwrap();
        assert!(!r.is_backtracking());
        for (s, want) in [
            ("a 12 b", Some("12")),
            ("x12", None),
            ("12", Some("12")),
            ("-12-", Some("12")),
            ("12x", None),
        ] {
            let got = r.search(s).map(|sp| {
                let (a, b) = sp.whole();
                s[a..b].to_string()
            });
            assert_eq!(got.as_deref(), want, "{s}");
        }
    }

    #[test]
    fn lookaround() {
        assert_eq!(m(r"(?<=:):", "a::").as_deref(), Some(":"));
        assert_eq!(m(r"foo(?! bar)", "foo bar foo baz").as_deref(), Some("foo"));
        let r = PyRegex::new(r"foo(?! bar)", false).unwrap();
        assert_eq!(r.search("foo bar foo baz").unwrap().whole(), (8, 11));
    }

    #[test]
    fn errors_are_reported() {
        assert!(PyRegex::new(r"(abc", false).is_err());
        assert!(PyRegex::new(r"abc)", false).is_err());
        assert!(PyRegex::new(r"\q", false).is_err());
        assert!(PyRegex::new(r"(?P=nope)", false).is_err());
        assert!(PyRegex::new(r"a{3,1}", false).is_err());
    }

    #[test]
    fn start_literal_gate_agrees_with_the_engine() {
        let gated = PyRegex::new(r"^[iI](?:llegal|nvalid) user (?P<u>\S+)", false).unwrap();
        assert!(gated.start_literals().is_some());
        let fancy = PyRegex::new(r"^Failed (?P<a>x )?(?(a)y|z)$", false).unwrap();
        assert!(fancy.is_backtracking() && fancy.start_literals().is_some());
        for p in [r"(?:^|\s)x", r"^\S+", r"^(?:a|)", r"x^"] {
            assert!(
                PyRegex::new(p, false).unwrap().start_literals().is_none(),
                "{p}"
            );
        }
        assert!(PyRegex::new("^abc", true)
            .unwrap()
            .start_literals()
            .is_none());
        for hay in [
            "Invalid user bob",
            "illegal user x",
            "Failed x y",
            "Failed z",
            "xInvalid user a",
            "",
            "I",
        ] {
            for (re, pat) in [
                (&gated, r"^[iI](?:llegal|nvalid) user (\S+)"),
                (&fancy, r"^Failed (x )?z$"),
            ] {
                let want = regex::Regex::new(pat).unwrap().is_match(hay)
                    || (re.is_backtracking() && hay == "Failed x y");
                assert_eq!(re.search(hay).is_some(), want, "{pat} on {hay:?}");
                assert!(re.search_at(hay, 1, hay.len()).is_none());
            }
        }
    }

    #[test]
    fn a_probe_speaks_only_for_its_haystack() {
        let r = PyRegex::new(r"^Ab(?i:k) (?P<x>\S+)", false).unwrap();
        let (ascii, kelvin) = ("Abk x\n", "Ab\u{212a} x\n");
        let mut sp = Spans::default();
        for hay in [ascii, kelvin] {
            for probe in [Probe::of(ascii), Probe::of(kelvin)] {
                assert!(r.search_probed(hay, &probe, &mut sp), "{hay:?}");
                assert_eq!(sp.get(1).map(|(a, b)| &hay[a..b]), Some("x"));
            }
        }
        assert_eq!(Probe::of(ascii).ascii_of(ascii), Some(true));
        assert_eq!(Probe::of(kelvin).ascii_of(kelvin), Some(false));
        assert_eq!(Probe::of(ascii).ascii_of(kelvin), None);
        assert_eq!(Probe::of(ascii).ascii_of(&ascii[..3]), None);
    }

    /// A one-line probe ends a prefregex's `<F-CONTENT>.+$` tail at the
    /// haystack's last byte without a search: the same spans as without
    /// the probe, also when the head takes the newline itself.
    #[test]
    fn one_line_probe_gives_the_tail_the_same_end() {
        for (p, plus) in [
            (r"^(?P<pre>\s*\S*\s*)(?P<content>.+)$", true),
            (r"^(?P<pre>\s*\S*\s*)(?P<content>.*)$", false),
        ] {
            let r = PyRegex::new(p, false).unwrap();
            assert!(r.tail.as_ref().is_some_and(|t| t.plus == plus), "{p}");
            for hay in [
                "a b c\n",
                "a\n",
                "\n",
                " \n",
                "ab \n",
                "a \u{e9}t\u{e9}\n",
                "x\r\n",
            ] {
                let (mut a, mut b) = (Spans::default(), Spans::default());
                let found = r.search_at_into(hay, 0, hay.len(), &mut a);
                let probe = Probe::known(hay, hay.is_ascii(), true);
                assert_eq!(
                    r.search_probed(hay, &probe, &mut b),
                    found,
                    "{p} on {hay:?}"
                );
                if found {
                    assert_eq!(a, b, "{p} on {hay:?}");
                }
            }
        }
    }

    #[test]
    fn required_literal_is_the_longest_mandatory_one() {
        let req = |p: &str| {
            let r = PyRegex::new(p, false).unwrap();
            r.gate()
                .required
                .as_ref()
                .map(|f| String::from_utf8_lossy(f.needle()).into_owned())
        };
        assert_eq!(
            req(r"^User (?P<u>\S+|.*?) from \S+ not allowed because listed in DenyUsers\s*$")
                .as_deref(),
            // its last 32 bytes (memchr's SIMD searcher)
            Some("owed because listed in DenyUsers")
        );
        // a required literal every start literal contains is not searched
        // when the haystack starts with one of them
        let r = PyRegex::new(r"^(?:Accepted|Rejected) for (?P<u>\S+) from \S+", false).unwrap();
        assert!(!r.gate().required_in_start);
        let r = PyRegex::new(
            r"^(?:Accepted (?:key|password)|Accepted key for) from \S+$",
            false,
        )
        .unwrap();
        assert!(r.gate().required_in_start);
        assert_eq!(r.gate().start.as_ref().map(|s| s.lits.len()), Some(3));
        assert!(r.search("Accepted key for from x").is_some());
        assert!(r.search("Accepted key fro x").is_none());
        assert!(r.search("Accepted password from x").is_some());
        // a start literal that extends another one is dropped
        let r = PyRegex::new(r"^Connection (?:closed|closed by|reset) (?P<u>\S+)", false).unwrap();
        assert_eq!(r.gate().start.as_ref().map(|s| s.lits.len()), Some(2));
        assert!(r.search("Connection closed by x").is_some());
        assert!(r.search("Connection closed x").is_some());
        assert!(r.search("Connection close x").is_none());
        assert_eq!(req(r"(?:abcdef|ghijkl)x").as_deref(), None);
        assert_eq!(req(r"(?:abcdef)?x").as_deref(), None);
        assert_eq!(req(r"(?i)abcdef").as_deref(), None);
        assert_eq!(req(r"(?:(?P<a>wxyz)q)+").as_deref(), Some("wxyz"));
        assert_eq!(req(r"ab\d").as_deref(), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// The gates (start literals, required literal) never change an
        /// answer: gated searches equal the `regex` crate's on the linear
        /// pattern, from every position.
        #[test]
        fn gates_agree_with_the_engine(
            parts in proptest::collection::vec(0usize..13, 1..7),
            hay_parts in proptest::collection::vec(0usize..12, 0..8),
            anchored in proptest::bool::ANY,
            pos in 0usize..6,
        ) {
            const P: [&str; 13] = [
                "abcd", "(?:abcd)?", "(?:wxyz|abcd)", r"\S+", " from ", "(?i:From)",
                "(wxyz)", "(?:q(?:abcd))+", ".*?", "ünï", r"\d{1,3}", "(?:x|)",
                "(?:abcdefghijklmnopqrst|abcdefghijklmnopqrsu|abc|abcdefghijklmnopq)",
            ];
            const H: [&str; 12] = ["abcd", " from ", "wxyz", "FROM", "q", "ünï", "12", " ", "x", "\n",
                "abcdefghijklmnopqrst", "abcdefghijklmnopqrsu"];
            let pat = format!("{}{}", if anchored { "^" } else { "" },
                parts.iter().map(|&i| P[i]).collect::<String>());
            let hay: String = hay_parts.iter().map(|&i| H[i]).collect();
            let re = PyRegex::new(&pat, false).unwrap();
            let reference = regex::Regex::new(re.linear_pattern().unwrap()).unwrap();
            let pos = (0..=pos.min(hay.len())).rev().find(|&p| hay.is_char_boundary(p)).unwrap_or(0);
            let want = reference.captures_at(&hay, pos).map(|c| {
                let m = c.get(0).unwrap();
                (m.start(), m.end())
            });
            let got = re.search_at(&hay, pos, hay.len()).map(|s| s.whole());
            proptest::prop_assert_eq!(got, want, "{} on {:?} from {}", pat, hay, pos);
        }
    }

    /// The same search without the tail shortcut (whole pattern engine).
    fn full_search(r: &PyRegex, hay: &str) -> Option<Spans> {
        match &r.engine {
            Engine::Linear(l) => l.captures(hay, 0),
            Engine::Backtrack { .. } => unreachable!("linear patterns only"),
        }
    }

    #[test]
    fn content_tail_shortcut_agrees_with_the_whole_pattern() {
        let pats = [
            r"^(?P<mlfid>\S+\s+(?:sshd\[\d+\]:\s+)?)(?:error: )?(?P<content>.+)$",
            r"^(?P<a>x*)(?P<content>.+)$",
            r"(?P<a>a|ab)(?P<content>.*)$",
            r"^(?:(?P<p>\[\d+\])?\s*)(?P<content>.+)$",
            r"^(?P<a>[^é]*?)(?P<content>.+)$",
        ];
        let hays = [
            "srv sshd[12]: Failed password\n",
            "srv sshd[12]: \n",
            "srv sshd[12]:\n",
            "srv \n",
            "xxxx\n",
            "xxxx",
            "",
            "\n",
            "abab\nx\n",
            "[1] héllo wörld\n",
            "[1]\n[2] z\n",
            "ab\n",
        ];
        for p in pats {
            let r = PyRegex::new(p, false).unwrap();
            assert!(r.tail.is_some(), "{p}");
            for h in hays {
                assert_eq!(r.search(h), full_search(&r, h), "{p} on {h:?}");
            }
        }
        for p in [
            r"^a|(?P<content>.+)$",
            r"(?s)^(?P<a>x)(?P<content>.+)$",
            r"^(?P<a>x)(?P<content>.+)(?P<b>)$",
            r"^(?P<content>.+)$x",
        ] {
            assert!(PyRegex::new(p, false).unwrap().tail.is_none(), "{p}");
        }
    }

    #[test]
    fn ascii_variant_agrees_with_unicode_on_ascii_text() {
        let pats = [
            r"^\S+\s+(?P<u>\w+)\b.*?(?P<d>\d+)$",
            r"(?i)user (?P<u>[^\s]+) from (?P<h>\S+)",
            r"(?=^|\b|\W)\d+(?=\b|\W|$)",
            r"\W{0,2}(?P<x>.)",
            r"(?i)(?P<b>Jan|Mär|févr\.?|2月)\s+(?P<d>\d+)",
        ];
        let hays = [
            "srv User Bob_1 from 10.0.0.1 port 22\n",
            "a\x1cb 12 c\n",
            "  ~x",
            "KELVIN k s",
            "jan 12 MAR 3 FEVR. 4",
        ];
        for p in pats {
            let r = PyRegex::new(p, false).unwrap();
            let Engine::Linear(l) = &r.engine else {
                panic!("{p} should be linear")
            };
            assert!(l.ascii().is_some(), "{p}");
            for h in hays {
                let u = l.unicode().unwrap();
                let mut locs = u.re.capture_locations();
                let want =
                    u.re.captures_read_at(&mut locs, h, 0)
                        .map(|_| Spans((0..locs.len()).map(|i| locs.get(i)).collect()));
                assert_eq!(l.captures(h, 0), want, "{p} on {h:?}");
            }
        }
        // case folding reaches ASCII from these two; the byte-level parser
        // refuses non-ASCII class members: Unicode engine only
        for p in ["(?i)\u{17f}", "(?i)\u{212a}", r"[^é]+(?P<k>[^\sé]*)"] {
            let r = PyRegex::new(p, false).unwrap();
            let Engine::Linear(l) = &r.engine else {
                panic!("{p} should be linear")
            };
            assert!(r.search("xsk").is_some(), "{p}");
            assert!(l.ascii().is_none(), "{p}");
        }
    }

    #[test]
    fn start_literal_gate_lets_non_ascii_through() {
        // Unicode case folding: the Kelvin sign matches `(?i)k`
        let r = PyRegex::new(r"^(?i:k)elvin (?P<x>\d+)", false).unwrap();
        assert!(r.start_literals().is_some());
        assert!(r.search("\u{212a}elvin 5").is_some());
        assert!(r.search("Kelvin 5").is_some());
        assert!(r.search("xKelvin 5").is_none());
        // non-ASCII after the literal prefix: the gate passes, the Unicode
        // engine decides (`\d` takes any Unicode digit, as in Python)
        assert!(r.search("Kelvin \u{663}").is_some());
        assert!(r.search("Kelvin 5 \u{e9}").is_some());
        let f = PyRegex::new("^(?i:\u{17f})x", false).unwrap();
        assert!(f.search("sx").is_some() && f.search("Sx").is_some());
        let d = PyRegex::new(r"^a\d", false).unwrap();
        assert!(d.start_literals().is_some());
        // Unicode digit right after `a`: inside the literal length, not rejected
        assert!(d.search("a\u{663}").is_some());
        assert!(d.search("b\u{663}").is_none());
    }

    #[test]
    fn catastrophic_pattern_is_bounded() {
        let r = PyRegex::with_limit(r"^(a+)+(?=b)$", false, 10_000).unwrap();
        let s = "a".repeat(5000) + "c";
        assert!(r.search(&s).is_none());
    }
}
