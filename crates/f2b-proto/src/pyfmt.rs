//! Python's `repr()` and `str()` of a [`Value`], as `fail2ban-client`
//! prints replies it does not beautify (`print(obj)` is `str(obj)`).
//!
//! Known approximation: Python escapes non-printable characters using the
//! full Unicode database (`str.isprintable`); here control characters,
//! separators other than the ASCII space, common format characters and
//! private-use characters are escaped, while unassigned code points are
//! printed as is.

use f2b_core::value::Value;

/// `repr(value)`.
pub fn py_repr(v: &Value) -> String {
    let mut s = String::new();
    repr_into(v, &mut s);
    s
}

/// `str(value)`: strings are themselves, exceptions are their message
/// (`KeyError` quotes it), everything else is `repr`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Exception { class, message } => exception_str(class, message),
        other => py_repr(other),
    }
}

/// `str(exc)` for an exception decoded as class + message.
pub(crate) fn exception_str(class: &str, message: &str) -> String {
    let short = class.rsplit('.').next().unwrap_or(class);
    if matches!(short, "KeyError" | "UnknownJailException") {
        repr_str(message)
    } else {
        message.to_owned()
    }
}

/// `repr(str)`.
pub fn repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    repr_str_into(s, &mut out);
    out
}

fn repr_into(v: &Value, out: &mut String) {
    match v {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&repr_float(*f)),
        Value::Str(s) => repr_str_into(s, out),
        Value::Bytes(b) => repr_bytes_into(b, out),
        Value::List(items) => {
            out.push('[');
            seq_into(items, out);
            out.push(']');
        }
        Value::Tuple(items) => {
            out.push('(');
            seq_into(items, out);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::Set(items) => {
            if items.is_empty() {
                out.push_str("set()");
            } else {
                out.push('{');
                seq_into(items, out);
                out.push('}');
            }
        }
        Value::Dict(items) => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(k, out);
                out.push_str(": ");
                repr_into(v, out);
            }
            out.push('}');
        }
        Value::Exception { class, message } => {
            out.push_str(class.rsplit('.').next().unwrap_or(class));
            out.push('(');
            repr_str_into(message, out);
            out.push(')');
        }
    }
}

fn seq_into(items: &[Value], out: &mut String) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        repr_into(it, out);
    }
}

/// `repr(float)`: shortest round-trip digits, fixed notation for decimal
/// exponents in [-4, 16), scientific otherwise, `.0` on integral values.
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
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde[-]x".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let decpt = exp + 1; // position of the decimal point after digit 0
    let body = if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(decpt as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{a}.{b}")
        }
    } else {
        let (a, b) = digits.split_at(1);
        let m = if b.is_empty() {
            a.to_owned()
        } else {
            format!("{a}.{b}")
        };
        let e = decpt - 1;
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

fn printable(c: char) -> bool {
    let u = c as u32;
    if c.is_control() {
        return false;
    }
    !matches!(u,
        0xa0 | 0xad | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0xf0000..=0x10ffff | 0xe0001 | 0xe0020..=0xe007f)
}

fn repr_str_into(s: &str, out: &mut String) {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c => {
                let u = c as u32;
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u <= 0xffff {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
        }
    }
    out.push(q);
}

fn repr_bytes_into(b: &[u8], out: &mut String) {
    let q = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    out.push('b');
    out.push(q as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(q as char);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (123456789.125, "123456789.125"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(repr_float(f), s, "{f}");
        }
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(repr_str("a'b"), "\"a'b\"");
        assert_eq!(repr_str("a'b\""), "'a\\'b\"'");
        assert_eq!(repr_str("x\ny\u{7f}\u{e9}"), "'x\\ny\\x7f\u{e9}'");
        assert_eq!(
            py_repr(&Value::Tuple(vec![Value::Int(1)])),
            "(1,)".to_owned()
        );
        assert_eq!(py_repr(&Value::Set(vec![])), "set()");
        assert_eq!(py_repr(&Value::Bytes(b"a'\x00".to_vec())), "b\"a'\\x00\"");
    }
}
