//! Glue to the configuration command stream (`f2b_core::value::Value`).

use f2b_core::value::Value;

use crate::info::py_float;

/// Python's `str()` of a property value as it arrives in
/// `['multi-set', jail, 'action', name, [[k, v], ...]]` or
/// `['set', jail, 'action', name, k, v]` (`True`, `60`, `1.5`, text).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::None => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => py_float(*f),
        Value::Str(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            match v {
                Value::List(_) => format!("[{}]", inner.join(", ")),
                Value::Tuple(_) if inner.len() == 1 => format!("({},)", inner[0]),
                Value::Tuple(_) => format!("({})", inner.join(", ")),
                _ => format!("{{{}}}", inner.join(", ")),
            }
        }
        Value::Dict(kv) => {
            let inner: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Exception { class, message } => {
            format!("{class}({})", crate::info::py_str_repr(message))
        }
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::Str(s) => crate::info::py_str_repr(s),
        other => py_str(other),
    }
}

/// The `[[k, v], ...]` list of a `multi-set ... action` command as
/// `(key, str(value))` pairs; `None` if the shape is wrong.
pub fn action_props(list: &Value) -> Option<Vec<(String, String)>> {
    let (Value::List(items) | Value::Tuple(items)) = list else {
        return None;
    };
    items
        .iter()
        .map(|kv| match kv {
            Value::List(p) | Value::Tuple(p) if p.len() == 2 => {
                Some((p[0].as_str()?.to_owned(), py_str(&p[1])))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_of_values() {
        assert_eq!(py_str(&Value::Bool(true)), "True");
        assert_eq!(py_str(&Value::Int(60)), "60");
        assert_eq!(py_str(&Value::Float(1.0)), "1.0");
        assert_eq!(py_str(&Value::str("a b")), "a b");
        assert_eq!(
            py_str(&Value::List(vec![Value::str("a"), Value::Int(1)])),
            "['a', 1]"
        );
    }

    #[test]
    fn multi_set_list() {
        let l = Value::List(vec![
            Value::List(vec![Value::str("norestored"), Value::Bool(true)]),
            Value::List(vec![
                Value::str("blocktype?family=inet6"),
                Value::str("DROP"),
            ]),
        ]);
        assert_eq!(
            action_props(&l),
            Some(vec![
                ("norestored".to_owned(), "True".to_owned()),
                ("blocktype?family=inet6".to_owned(), "DROP".to_owned())
            ])
        );
        assert_eq!(action_props(&Value::List(vec![Value::str("x")])), None);
    }
}
