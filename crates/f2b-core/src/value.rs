//! `Value`: the Python-shaped data that flows between f2b's parts.
//!
//! fail2ban's client configures its server with a stream of commands such as
//! `['set', 'sshd', 'maxretry', 5]`; the same lists travel pickled over the
//! control socket and are printed by `fail2ban-client -d`. f2b uses this one
//! type for all three: the config engine produces it, the pickle codec in
//! `f2b-proto` encodes/decodes it, and the server executes it.

/// A value of the small Python subset fail2ban's protocol uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// `int` (fail2ban never needs big integers; larger ones are rejected by decoders)
    Int(i64),
    /// `float`
    Float(f64),
    /// `str`
    Str(String),
    /// `bytes`
    Bytes(Vec<u8>),
    /// `list`
    List(Vec<Value>),
    /// `tuple`
    Tuple(Vec<Value>),
    /// `dict`, insertion-ordered like Python's
    Dict(Vec<(Value, Value)>),
    /// `set`
    Set(Vec<Value>),
    /// An exception object as a server error reply carries it, e.g.
    /// `ValueError('Invalid command')`: the builtin class name and its message.
    Exception {
        /// Builtin exception class name (`ValueError`, `KeyError`, `Exception`, ...).
        class: String,
        /// The message (first argument).
        message: String,
    },
}

impl Value {
    /// Convenience constructor for `Value::Str`.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Returns the string if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}

// ---------------------------------------------------------------------------
// Python `repr()` and `pprint.pformat()`
// ---------------------------------------------------------------------------

/// Python's `str.isprintable()` for one character.
pub fn py_isprintable(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::SpaceSeparator
    )
}

/// Python's `str.isspace()` for one character.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `repr(str)`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    let mut rest = s;
    loop {
        // copy the longest run that needs no escaping in one go
        let run = rest
            .bytes()
            .position(|b| !(0x20..0x7f).contains(&b) || b == b'\\' || b == quote as u8)
            .unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x7f && (c as u32) >= 0x20 => out.push(c),
            c if (c as u32) < 0x7f || !py_isprintable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(bytes)`.
pub fn repr_bytes(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// Python's `repr(float)` (shortest round-trip digits, Python's exponent rules).
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: d.ddddde[-]x
    let e = format!("{:e}", f);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let s = if exp >= 0 {
            if n <= exp + 1 {
                format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
            } else {
                let (a, b) = digits.split_at((exp + 1) as usize);
                format!("{a}.{b}")
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

impl Value {
    /// Python's `repr()` of this value (what `fail2ban-client -d` prints).
    pub fn repr(&self) -> String {
        let mut s = String::new();
        self.write_repr(&mut s, false);
        s
    }

    /// `sorted_dicts`: pprint's `_safe_repr` sorts dict items.
    fn write_repr(&self, out: &mut String, sorted_dicts: bool) {
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&repr_float(*f)),
            Value::Str(s) => out.push_str(&repr_str(s)),
            Value::Bytes(b) => out.push_str(&repr_bytes(b)),
            Value::List(v) => {
                out.push('[');
                write_seq(out, v, sorted_dicts);
                out.push(']');
            }
            Value::Tuple(v) => {
                out.push('(');
                write_seq(out, v, sorted_dicts);
                if v.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::Set(v) => {
                if v.is_empty() {
                    out.push_str("set()");
                } else {
                    out.push('{');
                    write_seq(out, v, sorted_dicts);
                    out.push('}');
                }
            }
            Value::Dict(items) => {
                out.push('{');
                let mut refs: Vec<&(Value, Value)> = items.iter().collect();
                if sorted_dicts {
                    refs.sort_by(|a, b| safe_key_cmp(&a.0, &b.0));
                }
                for (i, (k, v)) in refs.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out, sorted_dicts);
                    out.push_str(": ");
                    v.write_repr(out, sorted_dicts);
                }
                out.push('}');
            }
            Value::Exception { class, message } => {
                out.push_str(class);
                out.push('(');
                out.push_str(&repr_str(message));
                out.push(')');
            }
        }
    }

    /// Python's `pprint.pformat(self, indent=indent, width=width)`.
    pub fn pformat(&self, indent: usize, width: usize) -> String {
        let pp = PrettyPrinter {
            indent_per_level: indent,
            width: width as isize,
        };
        let mut out = String::new();
        pp.format(self, &mut out, 0, 0, 0);
        out
    }
}

fn write_seq(out: &mut String, v: &[Value], sorted_dicts: bool) {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        x.write_repr(out, sorted_dicts);
    }
}

/// Orders values like pprint's `_safe_key`: natural order within a type, else by type name.
fn safe_key_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => type_name(a).cmp(type_name(b)),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Dict(_) => "dict",
        Value::Set(_) => "set",
        Value::Exception { .. } => "Exception",
    }
}

struct PrettyPrinter {
    indent_per_level: usize,
    width: isize,
}

fn py_len(s: &str) -> isize {
    s.chars().count() as isize
}

/// Python's `str.splitlines(True)`.
fn splitlines_keepends(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = it.peek() {
                    end = j + 1;
                    it.next();
                }
            }
            out.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `re.findall(r'\S*\s*', line)` without the trailing empty match.
fn space_parts(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = line;
    while i < b.len() {
        let start = i;
        let rest = &b[i..];
        let ns = rest.find(py_isspace).unwrap_or(rest.len());
        i += ns;
        let rest = &b[i..];
        let sp = rest.find(|c: char| !py_isspace(c)).unwrap_or(rest.len());
        i += sp;
        out.push(&b[start..i]);
    }
    out
}

impl PrettyPrinter {
    fn format(&self, v: &Value, out: &mut String, indent: isize, allowance: isize, level: usize) {
        let mut rep = String::new();
        v.write_repr(&mut rep, true);
        let max_width = self.width - indent - allowance;
        if py_len(&rep) > max_width {
            match v {
                Value::List(items) => {
                    out.push('[');
                    self.format_items(items, out, indent, allowance + 1, level + 1);
                    out.push(']');
                    return;
                }
                Value::Tuple(items) => {
                    out.push('(');
                    let end = if items.len() == 1 { ",)" } else { ")" };
                    self.format_items(
                        items,
                        out,
                        indent,
                        allowance + end.len() as isize,
                        level + 1,
                    );
                    out.push_str(end);
                    return;
                }
                Value::Dict(items) => {
                    out.push('{');
                    if self.indent_per_level > 1 {
                        out.push_str(&" ".repeat(self.indent_per_level - 1));
                    }
                    let mut refs: Vec<&(Value, Value)> = items.iter().collect();
                    refs.sort_by(|a, b| safe_key_cmp(&a.0, &b.0));
                    let ind = indent + self.indent_per_level as isize;
                    let delimnl = format!(",\n{}", " ".repeat(ind.max(0) as usize));
                    let last_index = refs.len().saturating_sub(1);
                    for (i, (k, e)) in refs.into_iter().enumerate() {
                        let last = i == last_index;
                        let mut krep = String::new();
                        k.write_repr(&mut krep, true);
                        out.push_str(&krep);
                        out.push_str(": ");
                        self.format(
                            e,
                            out,
                            ind + py_len(&krep) + 2,
                            if last { allowance + 1 } else { 1 },
                            level + 1,
                        );
                        if !last {
                            out.push_str(&delimnl);
                        }
                    }
                    out.push('}');
                    return;
                }
                Value::Str(s) => {
                    self.pprint_str(s, out, indent, allowance, level + 1);
                    return;
                }
                _ => {}
            }
        }
        out.push_str(&rep);
    }

    fn format_items(
        &self,
        items: &[Value],
        out: &mut String,
        indent: isize,
        allowance: isize,
        level: usize,
    ) {
        let indent = indent + self.indent_per_level as isize;
        if self.indent_per_level > 1 {
            out.push_str(&" ".repeat(self.indent_per_level - 1));
        }
        let delimnl = format!(",\n{}", " ".repeat(indent.max(0) as usize));
        for (i, ent) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            if i > 0 {
                out.push_str(&delimnl);
            }
            self.format(ent, out, indent, if last { allowance } else { 1 }, level);
        }
    }

    fn pprint_str(&self, s: &str, out: &mut String, indent: isize, allowance: isize, level: usize) {
        if s.is_empty() {
            out.push_str(&repr_str(s));
            return;
        }
        let (mut indent, mut allowance) = (indent, allowance);
        if level == 1 {
            indent += 1;
            allowance += 1;
        }
        let mut chunks: Vec<String> = Vec::new();
        let lines = splitlines_keepends(s);
        let max_width = self.width - indent;
        let mut max_width1 = max_width;
        let mut rep = String::new();
        let nlines = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            rep = repr_str(line);
            if i == nlines - 1 {
                max_width1 -= allowance;
            }
            if py_len(&rep) <= max_width1 {
                chunks.push(rep.clone());
            } else {
                let parts = space_parts(line);
                let mut max_width2 = max_width;
                let mut current = String::new();
                let nparts = parts.len();
                for (j, part) in parts.into_iter().enumerate() {
                    let candidate = format!("{current}{part}");
                    if j == nparts - 1 && i == nlines - 1 {
                        max_width2 -= allowance;
                    }
                    if py_len(&repr_str(&candidate)) > max_width2 {
                        if !current.is_empty() {
                            chunks.push(repr_str(&current));
                        }
                        current = part.to_owned();
                    } else {
                        current = candidate;
                    }
                }
                if !current.is_empty() {
                    chunks.push(repr_str(&current));
                }
            }
        }
        if chunks.len() == 1 {
            out.push_str(&rep);
            return;
        }
        if level == 1 {
            out.push('(');
        }
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
                out.push_str(&" ".repeat(indent.max(0) as usize));
            }
            out.push_str(c);
        }
        if level == 1 {
            out.push(')');
        }
    }
}

#[cfg(test)]
mod repr_tests {
    use super::*;

    #[test]
    fn str_quoting_and_escapes() {
        assert_eq!(repr_str("a"), "'a'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("'\""), "'\\'\"'");
        assert_eq!(
            repr_str("a\\b\n\t\r\x01\x7f"),
            "'a\\\\b\\n\\t\\r\\x01\\x7f'"
        );
        assert_eq!(repr_str("é\u{a0}\u{200b}😀"), "'é\\xa0\\u200b😀'");
    }

    #[test]
    fn floats_like_python() {
        assert_eq!(repr_float(1.0), "1.0");
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(1e16), "1e+16");
        assert_eq!(repr_float(1e-5), "1e-05");
        assert_eq!(repr_float(0.0001), "0.0001");
        assert_eq!(repr_float(123456789012345.6), "123456789012345.6");
        assert_eq!(repr_float(-2.5e-7), "-2.5e-07");
        assert_eq!(repr_float(f64::INFINITY), "inf");
    }

    #[test]
    fn containers() {
        let v = Value::List(vec![
            Value::str("set"),
            Value::Int(5),
            Value::Bool(true),
            Value::None,
            Value::Tuple(vec![Value::Int(1)]),
            Value::Dict(vec![(Value::str("k"), Value::Float(1.5))]),
        ]);
        assert_eq!(v.repr(), "['set', 5, True, None, (1,), {'k': 1.5}]");
    }

    #[test]
    fn pformat_wraps_long_lists() {
        let v = Value::List(vec![
            Value::str("multi-set"),
            Value::List(vec![Value::str("a".repeat(30)), Value::str("b".repeat(30))]),
        ]);
        assert_eq!(v.pformat(2, 1000), v.repr());
        let got = v.pformat(2, 40);
        assert_eq!(
            got,
            "[ 'multi-set',\n  [ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',\n    'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb']]"
        );
    }

    #[test]
    fn pformat_splits_long_strings() {
        let v = Value::List(vec![Value::str("aaa bbb ccc ddd eee fff")]);
        assert_eq!(v.pformat(1, 12), "['aaa bbb '\n 'ccc ddd '\n 'eee fff']");
    }
}
