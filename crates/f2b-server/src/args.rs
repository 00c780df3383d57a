//! Helpers to read command arguments the way fail2ban's transmitter does.
//!
//! Commands arrive as lists of Python values; fail2ban converts each argument with
//! `int(...)`, `str2seconds(...)` or uses it as a string. These helpers do the same and
//! turn a mismatch into the exception fail2ban would raise.

use f2b_core::value::Value;

/// An error reply: a Python exception class and message, sent back as `(1, exc)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdError {
    /// The builtin exception class (`Exception`, `ValueError`, `KeyError`, `IndexError`).
    pub class: &'static str,
    /// Its message.
    pub message: String,
}

impl CmdError {
    /// `Exception(msg)`
    pub fn exception(msg: impl Into<String>) -> CmdError {
        CmdError {
            class: "Exception",
            message: msg.into(),
        }
    }

    /// `ValueError(msg)`
    pub fn value(msg: impl Into<String>) -> CmdError {
        CmdError {
            class: "ValueError",
            message: msg.into(),
        }
    }

    /// `KeyError(repr(key))`, as a missing jail or action raises it.
    pub fn key(key: &str) -> CmdError {
        CmdError {
            class: "KeyError",
            message: py_str_repr(key),
        }
    }

    /// `IndexError(...)`: a command with too few arguments.
    pub fn index() -> CmdError {
        CmdError {
            class: "IndexError",
            message: "list index out of range".into(),
        }
    }

    /// The exception as the value a reply carries.
    pub fn to_value(&self) -> Value {
        Value::Exception {
            class: self.class.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.class, py_str_repr(&self.message))
    }
}

/// The result of one command.
pub type CmdResult = Result<Value, CmdError>;

/// Python's `repr()` of a str.
pub use f2b_core::value::repr_str as py_str_repr;

/// Python's `str()` of an argument (what `"%s" % arg` prints).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Exception { message, .. } => message.clone(),
        other => other.repr(),
    }
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    v.repr()
}

/// The argument at `i`, or the IndexError Python raises.
pub fn arg(cmd: &[Value], i: usize) -> Result<&Value, CmdError> {
    cmd.get(i).ok_or_else(CmdError::index)
}

/// The argument at `i` as text (`str(arg)`).
pub fn arg_str(cmd: &[Value], i: usize) -> Result<String, CmdError> {
    arg(cmd, i).map(py_str)
}

/// Python's `int(v)` for the values a command may carry.
pub fn to_int(v: &Value) -> Result<i64, CmdError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(*b as i64),
        Value::Float(f) if f.is_finite() => Ok(f.trunc() as i64),
        Value::Str(s) => s.trim().parse::<i64>().map_err(|_| {
            CmdError::value(format!(
                "invalid literal for int() with base 10: {}",
                py_str_repr(s)
            ))
        }),
        other => Err(CmdError {
            class: "TypeError",
            message: format!(
                "int() argument must be a string, a bytes-like object or a real number, not {}",
                type_name(other)
            ),
        }),
    }
}

/// The Python type name of a value, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::None => "'NoneType'",
        Value::Bool(_) => "'bool'",
        Value::Int(_) => "'int'",
        Value::Float(_) => "'float'",
        Value::Str(_) => "'str'",
        Value::Bytes(_) => "'bytes'",
        Value::List(_) => "'list'",
        Value::Tuple(_) => "'tuple'",
        Value::Dict(_) => "'dict'",
        Value::Set(_) => "'set'",
        Value::Exception { .. } => "'Exception'",
    }
}

/// fail2ban's `_as_bool`: true for `1`, `on`, `true`, `yes` (any case), and for `True`/non-zero.
pub fn as_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Str(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "on" | "true" | "yes"
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_and_str_like_python() {
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(
            py_str(&Value::List(vec![Value::str("a"), Value::Int(1)])),
            "['a', 1]"
        );
        assert_eq!(py_str(&Value::Float(3.0)), "3.0");
        assert_eq!(py_str(&Value::Tuple(vec![Value::Int(1)])), "(1,)");
    }

    #[test]
    fn ints_and_bools_like_python() {
        assert_eq!(to_int(&Value::str(" 12 ")).unwrap(), 12);
        let e = to_int(&Value::str("x")).unwrap_err();
        assert_eq!(e.class, "ValueError");
        assert_eq!(
            e.message,
            "invalid literal for int() with base 10: 'x'".to_string()
        );
        assert!(as_bool(&Value::str("Yes")));
        assert!(!as_bool(&Value::str("off")));
    }
}
