//! `--json` rendering of replies (an f2b addition; fail2ban has none).
//!
//! [`to_json`] maps the Python value faithfully: `None` → `null`, lists,
//! tuples and sets → arrays, dicts → objects (keys rendered with Python's
//! `str()`), bytes → a string (lossy UTF-8), non-finite floats → the
//! strings `"nan"`, `"inf"`, `"-inf"`, exceptions →
//! `{"error": class, "message": text}`.
//!
//! [`reply_to_json`] additionally turns fail2ban's `status` replies, which
//! are lists of `[label, value]` pairs, into objects keyed by label.

use f2b_core::value::Value;
use serde_json::{Map, Number, Value as Json};

use crate::pyfmt::py_str;

/// The JSON form of any value.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => match Number::from_f64(*f) {
            Some(n) => Json::Number(n),
            None => Json::String(crate::pyfmt::repr_float(*f)),
        },
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            Json::Array(items.iter().map(to_json).collect())
        }
        Value::Dict(items) => {
            let mut m = Map::new();
            for (k, v) in items {
                m.insert(py_str(k), to_json(v));
            }
            Json::Object(m)
        }
        Value::Exception { class, message } => {
            let mut m = Map::new();
            m.insert("error".into(), Json::String(class.clone()));
            m.insert("message".into(), Json::String(message.clone()));
            Json::Object(m)
        }
    }
}

/// The JSON form of a reply to `cmd`: like [`to_json`], but `status`
/// replies (trees of `[label, value]` pairs) become nested objects, e.g.
/// `{"Filter": {"Currently failed": 0, ...}, "Actions": {...}}`.
pub fn reply_to_json(cmd: &[String], v: &Value) -> Json {
    if cmd.first().map(String::as_str) == Some("status") {
        if let Value::Dict(jails) = v {
            let mut m = Map::new();
            for (k, st) in jails {
                m.insert(py_str(k), pairs(st));
            }
            return Json::Object(m);
        }
        return pairs(v);
    }
    to_json(v)
}

/// `[[label, value], ...]` with unique string labels → object (recursively).
fn pairs(v: &Value) -> Json {
    let (Value::List(items) | Value::Tuple(items)) = v else {
        return to_json(v);
    };
    let mut m = Map::new();
    for it in items {
        match it {
            Value::List(p) | Value::Tuple(p) if p.len() == 2 => match &p[0] {
                Value::Str(k) if !m.contains_key(k) => {
                    m.insert(k.clone(), pairs(&p[1]));
                }
                _ => return to_json(v),
            },
            _ => return to_json(v),
        }
    }
    if items.is_empty() {
        return to_json(v);
    }
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn status_becomes_objects() {
        let st = Value::List(vec![
            Value::Tuple(vec![
                s("Filter"),
                Value::List(vec![
                    Value::Tuple(vec![s("Currently failed"), Value::Int(1)]),
                    Value::Tuple(vec![s("File list"), Value::List(vec![s("/var/log/a")])]),
                ]),
            ]),
            Value::Tuple(vec![
                s("Actions"),
                Value::List(vec![Value::Tuple(vec![
                    s("Banned IP list"),
                    Value::List(vec![]),
                ])]),
            ]),
        ]);
        let j = reply_to_json(&["status".into(), "sshd".into()], &st);
        assert_eq!(
            j,
            serde_json::json!({"Filter": {"Currently failed": 1, "File list": ["/var/log/a"]},
                               "Actions": {"Banned IP list": []}})
        );
        // Not a status command: stays an array of arrays.
        let j = reply_to_json(&["get".into(), "sshd".into(), "journalmatch".into()], &st);
        assert!(j.is_array());
    }

    #[test]
    fn scalars() {
        assert_eq!(to_json(&Value::None), Json::Null);
        assert_eq!(to_json(&Value::Float(f64::NAN)), Json::String("nan".into()));
        assert_eq!(
            to_json(&Value::Exception {
                class: "ValueError".into(),
                message: "bad".into()
            }),
            serde_json::json!({"error": "ValueError", "message": "bad"})
        );
        assert_eq!(
            to_json(&Value::Dict(vec![(Value::Int(1), Value::Bool(true))])),
            serde_json::json!({"1": true})
        );
    }
}
