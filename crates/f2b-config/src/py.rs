//! Small Python-compatible string helpers (`str.strip`, `int()`, `os.path`).

/// Python's `str.isspace` for one character.
pub(crate) fn isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(isspace)
}

/// Python's `str.rstrip()`.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(isspace)
}

/// Python's `str.lower()` (close enough: Rust's full Unicode lowercase).
pub(crate) fn lower(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

/// [`lower`] without allocating when `s` is already lower case ASCII.
pub(crate) fn lower_cow(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}

/// Python's `int(str)` for base 10: surrounding whitespace, a sign, digits with
/// single underscores between them.
pub(crate) fn int(s: &str) -> Option<i64> {
    let t = strip(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(10)? as i64;
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    Some(if neg { -v } else { v })
}

/// Python's `os.path.join(a, b)` for two components.
pub(crate) fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') || a.is_empty() {
        b.to_owned()
    } else if a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// Python's `os.path.dirname`.
pub(crate) fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head
            } else {
                trimmed
            }
        }
        None => "",
    }
}

/// Python's `os.path.splitext(p)[0]`.
pub(crate) fn splitext_root(p: &str) -> &str {
    let sep = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &p[sep..];
    match base.rfind('.') {
        Some(dot) => {
            // leading dots of the base name do not start an extension
            if base[..dot].chars().all(|c| c == '.') {
                p
            } else {
                &p[..sep + dot]
            }
        }
        None => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_like_python() {
        assert_eq!(int(" 5 "), Some(5));
        assert_eq!(int("+7"), Some(7));
        assert_eq!(int("-1"), Some(-1));
        assert_eq!(int("1_000"), Some(1000));
        assert_eq!(int("1__0"), None);
        assert_eq!(int("5m"), None);
        assert_eq!(int(""), None);
    }

    #[test]
    fn paths_like_python() {
        assert_eq!(
            join("/etc/fail2ban", "jail.conf"),
            "/etc/fail2ban/jail.conf"
        );
        assert_eq!(join("/etc/fail2ban", "/abs"), "/abs");
        assert_eq!(dirname("/etc/fail2ban/jail.conf"), "/etc/fail2ban");
        assert_eq!(dirname("jail.conf"), "");
        assert_eq!(splitext_root("a/b.conf"), "a/b");
        assert_eq!(splitext_root("a/.hidden"), "a/.hidden");
        assert_eq!(splitext_root("a.b/c"), "a.b/c");
    }
}
