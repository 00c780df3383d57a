//! `logencoding`: turning raw line bytes into text.
//!
//! Lines are split on the byte `\n` before decoding, so only encodings in
//! which `\n` is always the single byte 0x0A are accepted (UTF-8, Latin-1 and
//! the other single-byte and ASCII-compatible encodings known to
//! `encoding_rs`). Decoding never fails: invalid sequences become U+FFFD, as
//! fail2ban's `decode(enc, 'replace')` fallback does.

use std::borrow::Cow;

use crate::TailError;

/// A resolved `logencoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogEncoding {
    /// UTF-8 (the default) (invalid sequences are replaced by U+FFFD).
    #[default]
    Utf8,
    /// ISO-8859-1 as Python defines it: byte `b` is code point `U+00bb`.
    /// (`encoding_rs` maps the "latin1" label to windows-1252, which differs
    /// in 0x80..=0x9F, so this one is decoded by hand.)
    Latin1,
    /// Any other ASCII-compatible encoding known to `encoding_rs`.
    Other(&'static encoding_rs::Encoding),
}

impl LogEncoding {
    /// Resolves a fail2ban `logencoding` value. `auto` means the locale's
    /// encoding (from `LC_ALL`, `LC_CTYPE`, `LANG`), UTF-8 when unset.
    pub fn from_name(name: &str) -> Result<Self, TailError> {
        let trimmed = name.trim();
        if trimmed.eq_ignore_ascii_case("auto") {
            return Ok(Self::from_locale());
        }
        let norm: String = trimmed
            .chars()
            .filter(|c| *c != '-' && *c != '_' && *c != ' ')
            .flat_map(char::to_lowercase)
            .collect();
        match norm.as_str() {
            "utf8" | "u8" | "utf" | "cp65001" => return Ok(LogEncoding::Utf8),
            "latin1" | "latin" | "l1" | "iso88591" | "iso885911987" | "8859" | "cp819"
            | "ibm819" => return Ok(LogEncoding::Latin1),
            _ => {}
        }
        let enc = encoding_rs::Encoding::for_label(trimmed.as_bytes())
            .or_else(|| encoding_rs::Encoding::for_label(trimmed.replace('_', "-").as_bytes()))
            .ok_or_else(|| TailError::Encoding {
                name: name.to_owned(),
            })?;
        if !enc.is_ascii_compatible() {
            return Err(TailError::Encoding {
                name: name.to_owned(),
            });
        }
        if enc == encoding_rs::UTF_8 {
            Ok(LogEncoding::Utf8)
        } else {
            Ok(LogEncoding::Other(enc))
        }
    }

    /// The encoding of the current locale, as fail2ban's `auto` does.
    pub fn from_locale() -> Self {
        let value = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        // "de_DE.ISO-8859-1@euro" -> "ISO-8859-1"
        let charset = value
            .split_once('.')
            .map(|(_, rest)| rest.split('@').next().unwrap_or(rest))
            .unwrap_or("");
        if charset.is_empty() {
            return LogEncoding::Utf8;
        }
        Self::from_name(charset).unwrap_or(LogEncoding::Utf8)
    }

    /// The canonical name (as `get <jail> logencoding` would show it).
    pub fn name(&self) -> &'static str {
        match self {
            LogEncoding::Utf8 => "UTF-8",
            LogEncoding::Latin1 => "ISO-8859-1",
            LogEncoding::Other(e) => e.name(),
        }
    }

    /// Decodes one line. Returns the text and whether replacement characters
    /// had to be inserted for invalid input.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> (Cow<'a, str>, bool) {
        match self {
            LogEncoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => (Cow::Borrowed(s), false),
                Err(_) => (String::from_utf8_lossy(bytes), true),
            },
            LogEncoding::Latin1 => {
                if bytes.is_ascii() {
                    // ASCII is valid UTF-8; the check above makes this infallible.
                    match std::str::from_utf8(bytes) {
                        Ok(s) => (Cow::Borrowed(s), false),
                        Err(_) => (Cow::Owned(latin1(bytes)), false),
                    }
                } else {
                    (Cow::Owned(latin1(bytes)), false)
                }
            }
            LogEncoding::Other(enc) => {
                let (text, had_errors) = enc.decode_without_bom_handling(bytes);
                (text, had_errors)
            }
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        let check = |name: &str, want: &str| {
            assert_eq!(
                LogEncoding::from_name(name).map(|e| e.name()).ok(),
                Some(want),
                "{name}"
            );
        };
        check("utf-8", "UTF-8");
        check("UTF8", "UTF-8");
        check("latin-1", "ISO-8859-1");
        check("ISO-8859-1", "ISO-8859-1");
        check("latin1", "ISO-8859-1");
        check("iso-8859-15", "ISO-8859-15");
        check("cp1252", "windows-1252");
        assert!(LogEncoding::from_name("utf-16").is_err());
        assert!(LogEncoding::from_name("klingon").is_err());
    }

    #[test]
    fn decoding_never_fails() {
        let (t, bad) = LogEncoding::Utf8.decode(b"ok \xff\xfe end");
        assert!(bad);
        assert_eq!(t, "ok \u{fffd}\u{fffd} end");
        let (t, bad) = LogEncoding::Latin1.decode(b"caf\xe9 \x80");
        assert!(!bad);
        assert_eq!(t, "caf\u{e9} \u{80}");
        let (t, _) = LogEncoding::Utf8.decode("caf\u{e9}".as_bytes());
        assert!(matches!(t, Cow::Borrowed(_)));
    }
}
