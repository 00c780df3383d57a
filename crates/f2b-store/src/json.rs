//! The `data` column: JSON as Python's `json.dumps(..., ensure_ascii=False)`
//! writes it (`", "` and `": "` separators, UTF-8), stored as a BLOB like
//! fail2ban's sqlite adapter does; read back leniently (TEXT or BLOB, invalid
//! UTF-8 replaced, anything that is not an object becomes an empty object —
//! fail2ban's converter also yields `{}` on bad input).

use std::io;

use rusqlite::types::ValueRef;
use serde_json::ser::Formatter;

use crate::model::BanData;

/// serde_json formatter that reproduces Python's default separators.
struct PyFormatter;

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Serialises ban data the way fail2ban does (bytes of UTF-8 JSON).
pub(crate) fn encode(data: &BanData) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    // Serialising a Map of serde_json Values into a Vec cannot fail (no I/O
    // errors, keys are strings); fall back to `{}` like fail2ban if it ever does.
    if serde::Serialize::serialize(data, &mut ser).is_err() {
        return b"{}".to_vec();
    }
    out
}

/// Parses a `data` column value; never fails.
pub(crate) fn decode(value: ValueRef<'_>) -> BanData {
    let bytes = match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        _ => return BanData::new(),
    };
    match serde_json::from_slice::<BanData>(bytes) {
        Ok(d) => d,
        Err(_) => serde_json::from_str(&String::from_utf8_lossy(bytes)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_separators_and_raw_utf8() {
        let mut map = BanData::new();
        map.insert("matches", json!(["a b", "ü\n"]));
        map.insert("failures", json!(3));
        map.insert("F-USER", json!("root"));
        let s = String::from_utf8(encode(&map)).unwrap_or_default();
        assert_eq!(
            s,
            r#"{"matches": ["a b", "ü\n"], "failures": 3, "F-USER": "root"}"#
        );
    }

    #[test]
    fn lenient_decode() {
        assert!(decode(ValueRef::Null).is_empty());
        assert!(decode(ValueRef::Text(b"not json")).is_empty());
        assert!(decode(ValueRef::Text(b"[1,2]")).is_empty());
        let m = decode(ValueRef::Blob(b"{\"failures\": 2, \"x\": \"\xff\"}"));
        assert_eq!(m.get("failures"), Some(&json!(2)));
        assert_eq!(m.get("x"), Some(&json!("\u{fffd}")));
    }

    proptest::proptest! {
        #[test]
        fn roundtrip(keys in proptest::collection::vec("[a-zA-Z-]{1,8}", 0..5),
                     strs in proptest::collection::vec("\\PC{0,20}", 0..5),
                     n in proptest::num::i64::ANY) {
            let mut map = BanData::new();
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), json!(strs.get(i).cloned().unwrap_or_default()));
            }
            map.insert("failures", json!(n));
            map.insert("matches", json!(strs));
            let back = decode(ValueRef::Blob(&encode(&map)));
            proptest::prop_assert_eq!(back, map);
        }
    }
}
