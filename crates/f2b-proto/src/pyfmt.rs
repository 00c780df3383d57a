//! Python's `repr()` and `str()` of a [`Value`], as `fail2ban-client`
//! prints replies it does not beautify (`print(obj)` is `str(obj)`).
//!
//! Scalars use `f2b_core::value`'s `repr_str`/`repr_bytes`/`repr_float`
//! (Unicode-database `isprintable`); unlike `Value::repr`, an exception
//! prints its bare class name (`error('x')` for `re.error`) as Python does.

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

pub use f2b_core::value::{repr_bytes, repr_float, repr_str};

fn repr_into(v: &Value, out: &mut String) {
    match v {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&repr_float(*f)),
        Value::Str(s) => out.push_str(&repr_str(s)),
        Value::Bytes(b) => out.push_str(&repr_bytes(b)),
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
            out.push_str(&repr_str(message));
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
