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
