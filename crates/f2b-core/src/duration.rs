//! Time abbreviations as fail2ban's `MyTime.str2seconds` reads them.
//!
//! fail2ban rewrites the text (`1d12h` → `1*86400 +12*3600`) and hands it to
//! Python's `eval`. f2b performs the same rewriting and then evaluates the
//! result with a small, safe arithmetic evaluator that follows Python's
//! number semantics (int vs float, true division, floor division, `**`).

use std::fmt;

/// A number as Python's `eval` would return it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// `int` (fail2ban values fit easily in `i128`).
    Int(i128),
    /// `float`
    Float(f64),
    /// `()`, which Python's `eval` accepts too (fail2ban would then fail to use it).
    EmptyTuple,
}

impl Num {
    /// The value as `f64`.
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
            Num::EmptyTuple => f64::NAN,
        }
    }
}

impl fmt::Display for Num {
    /// Python's `print(n)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => f.write_str(&crate::value::repr_float(*x)),
            Num::EmptyTuple => f.write_str("()"),
        }
    }
}

/// Why an expression could not be evaluated; `Display` gives the text
/// `fail2ban-client --str2sec` prints after `ERROR: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Str2SecError {
    /// Python `SyntaxError`.
    Syntax(String),
    /// Python `NameError` for an unknown word.
    Name(String),
    /// Python `ZeroDivisionError`.
    ZeroDivision(&'static str),
    /// Python `OverflowError` / result too large.
    Overflow,
}

impl fmt::Display for Str2SecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Str2SecError::Syntax(m) => write!(f, "{m}"),
            Str2SecError::Name(n) => write!(f, "name '{n}' is not defined"),
            Str2SecError::ZeroDivision(m) => f.write_str(m),
            Str2SecError::Overflow => f.write_str("numerical result out of range"),
        }
    }
}

impl std::error::Error for Str2SecError {}

const UNITS: [(&[&str], &str); 7] = [
    (&["days", "day", "da", "dd", "d"], "*86400"),
    (&["weeks", "week", "wee", "we", "ww", "w"], "*604800"),
    (&["months", "month", "mon", "mo"], "*2629800.0"),
    (&["years", "year", "yea", "ye", "yy", "y"], "*31557600.0"),
    (&["seconds", "second", "sec", "se", "ss", "s"], "*1"),
    (&["minutes", "minute", "min", "mi", "mm", "m"], "*60"),
    (&["hours", "hour", "hou", "ho", "hh", "h"], "*3600"),
];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || unicode_general_category::get_general_category(c)
            == unicode_general_category::GeneralCategory::DecimalNumber
}

fn is_space(c: char) -> bool {
    crate::value::py_isspace(c)
}

/// The text transformation fail2ban applies before `eval`.
pub fn str2sec_rewrite(val: &str) -> String {
    // 1. a digit right after a letter gets a space before it: 1d12h -> 1d 12h
    let mut s = String::with_capacity(val.len() + 8);
    let mut prev: Option<char> = None;
    for c in val.chars() {
        if c.is_ascii_digit() && prev.is_some_and(|p| p.is_ascii_alphabetic()) {
            s.push(' ');
        }
        s.push(c);
        prev = Some(c);
    }
    // 2. unit words after a digit or a space
    for (alts, repl) in UNITS {
        let chars: Vec<char> = s.chars().collect();
        let mut out = String::with_capacity(s.len() + 16);
        let mut i = 0;
        while i < chars.len() {
            let lb = i > 0 && (is_digit(chars[i - 1]) || is_space(chars[i - 1]));
            let mut matched = 0;
            if lb {
                for a in alts {
                    let n = a.len();
                    if i + n <= chars.len()
                        && chars[i..i + n]
                            .iter()
                            .zip(a.chars())
                            .all(|(x, y)| x.eq_ignore_ascii_case(&y))
                        && (i + n == chars.len() || !is_word(chars[i + n]))
                    {
                        matched = n;
                        break;
                    }
                }
            }
            if matched > 0 {
                out.push_str(repl);
                i += matched;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        s = out;
    }
    // 3. digits separated by spaces are added: "1 2" -> "1+2" (non-overlapping)
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if is_digit(chars[i]) {
            let mut j = i + 1;
            while j < chars.len() && is_space(chars[j]) {
                j += 1;
            }
            if j > i + 1 && j < chars.len() && is_digit(chars[j]) {
                out.push(chars[i]);
                out.push('+');
                out.push(chars[j]);
                i = j + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `MyTime.str2seconds(s)` as the number Python's `eval` returns.
pub fn str2sec_num(s: &str) -> Result<Num, Str2SecError> {
    let expr = str2sec_rewrite(s);
    eval(&expr)
}

/// `MyTime.str2seconds(s)` as `f64` (callers typically truncate to seconds).
pub fn str2sec(s: &str) -> Result<f64, Str2SecError> {
    match str2sec_num(s)? {
        Num::EmptyTuple => Err(Str2SecError::Syntax(
            "float() argument must be a string or a real number, not 'tuple'".into(),
        )),
        n => Ok(n.as_f64()),
    }
}

// --- a tiny Python-expression evaluator (numbers and arithmetic only) -------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Num),
    Name(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn syntax(msg: &str) -> Str2SecError {
    Str2SecError::Syntax(format!("{msg} (<string>, line 1)"))
}

fn lex(src: &str) -> Result<Vec<Tok>, Str2SecError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' || c == '\x0c' {
            i += 1;
            continue;
        }
        if c == '\n' || c == '\r' {
            // only trailing line breaks are harmless
            if chars[i..].iter().all(|c| c.is_whitespace()) {
                break;
            }
            return Err(syntax("invalid syntax"));
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let mut is_float = false;
            if c == '0'
                && chars
                    .get(i + 1)
                    .is_some_and(|x| matches!(x, 'x' | 'X' | 'o' | 'O' | 'b' | 'B'))
            {
                let radix = match chars[i + 1].to_ascii_lowercase() {
                    'x' => 16,
                    'o' => 8,
                    _ => 2,
                };
                i += 2;
                let ds = i;
                while i < chars.len() && (chars[i].is_digit(radix) || chars[i] == '_') {
                    i += 1;
                }
                let kind = match radix {
                    16 => "hexadecimal",
                    8 => "octal",
                    _ => "binary",
                };
                if let Some(&bad) = chars.get(i).filter(|c| c.is_ascii_digit()) {
                    return Err(syntax(&format!("invalid digit '{bad}' in {kind} literal")));
                }
                let digits: String = chars[ds..i].iter().filter(|c| **c != '_').collect();
                let v = i128::from_str_radix(&digits, radix)
                    .map_err(|_| syntax(&format!("invalid {kind} literal")))?;
                toks.push(Tok::Num(Num::Int(v)));
                continue;
            }
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' {
                is_float = true;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            let raw: String = chars[start..i].iter().collect();
            let text: String = raw.chars().filter(|c| *c != '_').collect();
            if (i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_'))
                || raw.contains("__")
                || raw.ends_with('_')
                || raw.contains("_.")
                || raw.contains("._")
            {
                return Err(syntax("invalid decimal literal"));
            }
            let n = if is_float {
                Num::Float(text.parse::<f64>().map_err(|_| syntax("invalid syntax"))?)
            } else {
                if text.len() > 1 && text.starts_with('0') && text.chars().any(|c| c != '0') {
                    return Err(syntax(
                        "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers",
                    ));
                }
                Num::Int(text.parse::<i128>().map_err(|_| Str2SecError::Overflow)?)
            };
            toks.push(Tok::Num(n));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Name(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            "**" => Some("**"),
            "//" => Some("//"),
            _ => None,
        };
        if let Some(op) = op {
            toks.push(Tok::Op(op));
            i += 2;
            continue;
        }
        let t = match c {
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '%' => Tok::Op("%"),
            '~' => Tok::Op("~"),
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            _ => return Err(syntax("invalid syntax")),
        };
        toks.push(t);
        i += 1;
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn floor_div_f(a: f64, b: f64) -> f64 {
    (a / b).floor()
}

fn py_mod_f(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

fn arith(op: &str, a: Num, b: Num) -> Result<Num, Str2SecError> {
    use Num::*;
    let ov = Str2SecError::Overflow;
    Ok(match (op, a, b) {
        ("+", Int(x), Int(y)) => Int(x.checked_add(y).ok_or(ov)?),
        ("-", Int(x), Int(y)) => Int(x.checked_sub(y).ok_or(ov)?),
        ("*", Int(x), Int(y)) => Int(x.checked_mul(y).ok_or(ov)?),
        ("/", _, _) => {
            if b.as_f64() == 0.0 {
                return Err(Str2SecError::ZeroDivision(match (a, b) {
                    (Int(_), Int(_)) => "division by zero",
                    _ => "float division by zero",
                }));
            }
            Float(a.as_f64() / b.as_f64())
        }
        ("//", Int(x), Int(y)) => {
            if y == 0 {
                return Err(Str2SecError::ZeroDivision(
                    "integer division or modulo by zero",
                ));
            }
            Int(x.div_euclid(y)
                - if (x.rem_euclid(y) != 0) && y < 0 {
                    1
                } else {
                    0
                })
        }
        ("%", Int(x), Int(y)) => {
            if y == 0 {
                return Err(Str2SecError::ZeroDivision("integer modulo by zero"));
            }
            let r = x % y;
            Int(if r != 0 && ((r < 0) != (y < 0)) {
                r + y
            } else {
                r
            })
        }
        ("**", Int(x), Int(y)) => {
            if y < 0 {
                Float((x as f64).powf(y as f64))
            } else {
                let e = u32::try_from(y).map_err(|_| Str2SecError::Overflow)?;
                Int(x.checked_pow(e).ok_or(ov)?)
            }
        }
        (op, a, b) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            match op {
                "+" => Float(x + y),
                "-" => Float(x - y),
                "*" => Float(x * y),
                "//" => {
                    if y == 0.0 {
                        return Err(Str2SecError::ZeroDivision("float floor division by zero"));
                    }
                    Float(floor_div_f(x, y))
                }
                "%" => {
                    if y == 0.0 {
                        return Err(Str2SecError::ZeroDivision("float modulo"));
                    }
                    Float(py_mod_f(x, y))
                }
                _ => Float(x.powf(y)),
            }
        }
    })
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn expr(&mut self) -> Result<Num, Str2SecError> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ("+" | "-"))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.term()?;
            v = arith(op, v, r)?;
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<Num, Str2SecError> {
        let mut v = self.unary()?;
        while let Some(Tok::Op(op @ ("*" | "/" | "//" | "%"))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.unary()?;
            v = arith(op, v, r)?;
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<Num, Str2SecError> {
        self.depth += 1;
        if self.depth > 200 {
            return Err(Str2SecError::Syntax("too many nested parentheses".into()));
        }
        let r = match self.peek().cloned() {
            Some(Tok::Op("-")) => {
                self.pos += 1;
                match self.unary()? {
                    Num::Int(i) => Ok(Num::Int(-i)),
                    Num::Float(f) => Ok(Num::Float(-f)),
                    Num::EmptyTuple => Ok(Num::EmptyTuple),
                }
            }
            Some(Tok::Op("+")) => {
                self.pos += 1;
                self.unary()
            }
            Some(Tok::Op("~")) => {
                self.pos += 1;
                match self.unary()? {
                    Num::Int(i) => Ok(Num::Int(!i)),
                    Num::Float(_) | Num::EmptyTuple => Err(Str2SecError::Syntax(
                        "bad operand type for unary ~: 'float'".into(),
                    )),
                }
            }
            _ => self.power(),
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> Result<Num, Str2SecError> {
        let base = self.primary()?;
        if let Some(Tok::Op("**")) = self.peek() {
            self.pos += 1;
            let e = self.unary()?;
            return arith("**", base, e);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Num, Str2SecError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Tok::Name(n)) => {
                // a name followed by more tokens is a syntax error first in Python
                if self
                    .toks
                    .get(self.pos + 1)
                    .is_some_and(|t| matches!(t, Tok::Num(_) | Tok::Name(_)))
                {
                    return Err(syntax("invalid syntax"));
                }
                self.pos += 1;
                match n.as_str() {
                    "True" => Ok(Num::Int(1)),
                    "False" => Ok(Num::Int(0)),
                    _ => Err(Str2SecError::Name(n)),
                }
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let v = self.expr()?;
                match self.peek() {
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        Ok(v)
                    }
                    None => Err(syntax("'(' was never closed")),
                    _ => Err(syntax("invalid syntax")),
                }
            }
            Some(Tok::RParen) => Err(syntax("unmatched ')'")),
            _ => Err(syntax("invalid syntax")),
        }
    }
}

fn eval(expr: &str) -> Result<Num, Str2SecError> {
    let toks = lex(expr)?;
    if !toks.is_empty()
        && toks.len() % 2 == 0
        && toks[..toks.len() / 2].iter().all(|t| *t == Tok::LParen)
        && toks[toks.len() / 2..].iter().all(|t| *t == Tok::RParen)
    {
        // `()`: the empty tuple
        return Ok(Num::EmptyTuple);
    }
    if toks.is_empty() {
        return Err(Str2SecError::Syntax(
            "invalid syntax (<string>, line 0)".into(),
        ));
    }
    // Python reports syntax errors before evaluating anything.
    check_syntax(&toks)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let v = p.expr()?;
    match p.peek() {
        None => Ok(v),
        Some(Tok::RParen) => Err(syntax("unmatched ')'")),
        Some(Tok::Num(_)) | Some(Tok::Name(_)) => {
            Err(syntax("invalid syntax. Perhaps you forgot a comma?"))
        }
        _ => Err(syntax("invalid syntax")),
    }
}

/// A syntax-only pass (no evaluation), so that `x 1` style errors win over
/// name or zero-division errors as in Python.
fn check_syntax(toks: &[Tok]) -> Result<(), Str2SecError> {
    // expect operand / operator alternation, parentheses balanced
    let mut depth = 0i32;
    let mut want_operand = true;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Num(_) | Tok::Name(_) => {
                if !want_operand {
                    return Err(syntax(if depth > 0 {
                        "invalid syntax. Perhaps you forgot a comma?"
                    } else {
                        "invalid syntax"
                    }));
                }
                want_operand = false;
            }
            Tok::LParen => {
                if !want_operand {
                    // call syntax like `1(2)`: Python compiles it (and fails at runtime)
                    return Err(Str2SecError::Syntax("'int' object is not callable".into()));
                }
                depth += 1;
            }
            Tok::RParen => {
                if depth == 0 {
                    return Err(syntax("unmatched ')'"));
                }
                if want_operand {
                    return Err(syntax("invalid syntax"));
                }
                depth -= 1;
            }
            Tok::Op(op) => {
                if want_operand {
                    if !matches!(*op, "+" | "-" | "~") {
                        return Err(syntax("invalid syntax"));
                    }
                } else {
                    want_operand = true;
                }
            }
        }
        if i + 1 == toks.len() && want_operand {
            return Err(syntax("invalid syntax"));
        }
    }
    if depth > 0 {
        return Err(syntax("'(' was never closed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        match str2sec_num(s) {
            Ok(n) => n.to_string(),
            Err(e) => format!("ERROR: {e}"),
        }
    }

    #[test]
    fn common_abbreviations() {
        assert_eq!(p("10m"), "600");
        assert_eq!(p("1d12h30m"), "131400");
        assert_eq!(p("1w"), "604800");
        assert_eq!(p("-1"), "-1");
        assert_eq!(p("1mo"), "2629800.0");
        assert_eq!(p("1y 6mo"), "47336400.0");
        assert_eq!(p(" 2 hours"), "7200");
        assert_eq!(p("1h 2m 3s"), "3723");
        assert_eq!(p("600"), "600");
        assert_eq!(p("1.5h"), "5400.0");
    }

    #[test]
    fn rewrite_matches_fail2ban() {
        assert_eq!(str2sec_rewrite("1d12h"), "1*86400+12*3600");
        assert_eq!(str2sec_rewrite("1 2 3"), "1+2 3");
    }

    #[test]
    fn errors() {
        assert!(p("abc").starts_with("ERROR: name 'abc'"));
        assert!(p("1/0").contains("division by zero"));
        assert!(p("").starts_with("ERROR: invalid syntax"));
    }

    #[test]
    fn f64_api() {
        assert_eq!(str2sec("10m"), Ok(600.0));
    }
}
