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

    fn hex(&mut self, n: usize) -> Result<char, DialectError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.err("incomplete hex escape"))?;
            v = v * 16 + d;
        }
        char::from_u32(v).ok_or_else(|| self.err("bad escape: invalid code point"))
    }

    /// Parses an escape common to classes and outside; returns a literal char
    /// or None if it is a class shorthand (emitted by the caller).
    fn literal_escape(&mut self, c: char) -> Result<Option<char>, DialectError> {
        Ok(Some(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\x0c',
            'v' => '\x0b',
            'a' => '\x07',
            'x' => self.hex(2)?,
            'u' => self.hex(4)?,
            'U' => self.hex(8)?,
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
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
    };
    tx.run()?;
    Ok(Translation {
        exact: tx.exact,
        fancy: tx.fancy,
        relaxed: tx.relaxed,
        names: tx.names,
    })
}

/// Group spans of one match: index 0 is the whole match.
#[derive(Debug, Clone, PartialEq, Eq)]
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

enum Engine {
    Linear {
        re: regex::Regex,
        /// Reused capture slots (one search at a time per regex; a
        /// concurrent search falls back to fresh slots).
        locs: std::sync::Mutex<regex::CaptureLocations>,
    },
    Backtrack {
        re: fancy_regex::Regex,
        pre: Option<regex::Regex>,
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
    lits: Vec<Vec<u8>>,
    /// `first[b]`: some literal starts with byte `b`.
    first: [bool; 256],
}

/// More literals than this and the gate is not worth it (the DFA is as fast).
const MAX_START_LITERALS: usize = 32;

impl StartLiterals {
    fn of(linear: &str) -> Option<StartLiterals> {
        use regex_syntax::hir::literal::{ExtractKind, Extractor};
        use regex_syntax::hir::Look;
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(linear)
            .ok()?;
        if !hir.properties().look_set_prefix().contains(Look::Start) {
            return None;
        }
        let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
        let lits = seq.literals()?;
        if lits.is_empty() || lits.len() > MAX_START_LITERALS {
            return None;
        }
        if lits.iter().any(|l| l.as_bytes().is_empty()) {
            return None;
        }
        let lits: Vec<Vec<u8>> = lits.iter().map(|l| l.as_bytes().to_vec()).collect();
        let mut first = [false; 256];
        for l in &lits {
            first[usize::from(l[0])] = true;
        }
        Some(StartLiterals { lits, first })
    }

    /// False if a search of `hay` from 0 cannot match.
    fn may_match(&self, hay: &[u8]) -> bool {
        hay.first().is_some_and(|&b| self.first[usize::from(b)])
            && self.lits.iter().any(|l| hay.starts_with(l))
    }
}

/// A compiled Python-dialect regex.
pub struct PyRegex {
    source: String,
    linear: Option<String>,
    start_literals: Option<StartLiterals>,
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
        let engine = if !t.fancy {
            let re = regex::RegexBuilder::new(&format!("{prefix}{}", t.exact))
                .size_limit(64 << 20)
                .build()
                .map_err(|e| eng_err(e.to_string()))?;
            let locs = std::sync::Mutex::new(re.capture_locations());
            Engine::Linear { re, locs }
        } else {
            let re = fancy_regex::RegexBuilder::new(&format!("{prefix}{}", t.exact))
                .backtrack_limit(limit)
                .build()
                .map_err(|e| eng_err(e.to_string()))?;
            let pre = regex::RegexBuilder::new(&format!("{prefix}{}", t.relaxed))
                .size_limit(64 << 20)
                .build()
                .ok();
            Engine::Backtrack { re, pre }
        };
        let mut index = HashMap::new();
        for (i, n) in t.names.iter().enumerate() {
            if let Some(n) = n {
                index.insert(n.clone(), i);
            }
        }
        let linear = match &engine {
            Engine::Linear { .. } => Some(format!("{prefix}{}", t.exact)),
            Engine::Backtrack { pre: Some(_), .. } => Some(format!("{prefix}{}", t.relaxed)),
            Engine::Backtrack { pre: None, .. } => None,
        };
        let start_literals = linear.as_deref().and_then(StartLiterals::of);
        Ok(PyRegex {
            start_literals,
            linear,
            source: pattern.to_string(),
            engine,
            names: t.names,
            index,
            budget_hits: Default::default(),
        })
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

    /// `re.search`: first (leftmost) match with all group spans.
    pub fn search(&self, hay: &str) -> Option<Spans> {
        self.search_at(hay, 0, hay.len())
    }

    /// `re.search(hay, pos, endpos)`.
    pub fn search_at(&self, hay: &str, pos: usize, endpos: usize) -> Option<Spans> {
        let endpos = endpos.min(hay.len());
        if pos > endpos || !hay.is_char_boundary(pos) || !hay.is_char_boundary(endpos) {
            return None;
        }
        let hay = &hay[..endpos];
        if let Some(sl) = &self.start_literals {
            // `^` cannot match after position 0; before it, the haystack
            // must start with one of the required literals.
            if pos > 0 || !sl.may_match(hay.as_bytes()) {
                return None;
            }
        }
        match &self.engine {
            Engine::Linear { re, locs } => {
                // Reused slots: a miss (the lazy DFA's answer) allocates
                // nothing; only a match pays for the span vector.
                let spans =
                    |l: &regex::CaptureLocations| Spans((0..l.len()).map(|i| l.get(i)).collect());
                match locs.try_lock() {
                    Ok(mut l) => {
                        re.captures_read_at(&mut l, hay, pos)?;
                        Some(spans(&l))
                    }
                    Err(_) => {
                        let mut l = re.capture_locations();
                        re.captures_read_at(&mut l, hay, pos)?;
                        Some(spans(&l))
                    }
                }
            }
            Engine::Backtrack { re, pre } => {
                if let Some(p) = pre {
                    p.find_at(hay, pos)?;
                }
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
        }
    }

    /// True if the pattern matches anywhere.
    pub fn is_match(&self, hay: &str) -> bool {
        match &self.engine {
            Engine::Linear { re, .. } => {
                self.start_literals
                    .as_ref()
                    .is_none_or(|sl| sl.may_match(hay.as_bytes()))
                    && re.is_match(hay)
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
        assert!(gated.start_literals.is_some());
        let fancy = PyRegex::new(r"^Failed (?P<a>x )?(?(a)y|z)$", false).unwrap();
        assert!(fancy.is_backtracking() && fancy.start_literals.is_some());
        for p in [r"(?:^|\s)x", r"^\S+", r"^(?:a|)", r"x^"] {
            assert!(
                PyRegex::new(p, false).unwrap().start_literals.is_none(),
                "{p}"
            );
        }
        assert!(PyRegex::new("^abc", true).unwrap().start_literals.is_none());
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
    fn catastrophic_pattern_is_bounded() {
        let r = PyRegex::with_limit(r"^(a+)+(?=b)$", false, 10_000).unwrap();
        let s = "a".repeat(5000) + "c";
        assert!(r.search(&s).is_none());
    }
}
