//! The commonest date of all, the syslog stamp `Mmm dd HH:MM:SS`, read
//! without the matcher: the default template
//! `(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?` (plain and `{^LN-BEG}`)
//! on its canonical form.
//!
//! [`recognize`] accepts only text on which the template's regex has one
//! match and it is obvious: at position 0 an English month abbreviation, a
//! space, a two-character day (`dd` with `01`-`31` as `%d` takes them, or
//! ` d`), a space, `HH:MM:SS` with `HH` in `00`-`29`, `MM` and `SS` in
//! `00`-`59`, then the end of the text or an ASCII non-word byte that is
//! neither `.` (a fraction would follow) nor a space before a digit (a year
//! would). Everything else is left to the matcher ([`None`]). Why the
//! result is the regex's: no day name is an English month followed by a
//! month-shaped token (`Mar` is a Spanish Tuesday, but `%b` then needs
//! letters or `N月` where the day digits are), the optional `\W{0,2}`
//! prefix, weekday, fraction and year cannot take part, and at each choice
//! (`%d`'s alternatives, ` ?`, `[0-2]?`) the first alternative tried
//! succeeds. The property tests compare it with the regex engine.

/// Group indexes of the syslog template: a, b, d, H, M, S, f, Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) d: usize,
    pub(crate) h: usize,
    pub(crate) m: usize,
    pub(crate) s: usize,
    pub(crate) f: usize,
    pub(crate) y: usize,
}

/// The default template's `datepattern`.
pub(crate) const PATTERN: &str = r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?";

impl Shape {
    /// The shape of a template with this pattern and these group names, if
    /// it is the syslog default template.
    pub(crate) fn of(pattern: Option<&str>, names: &[Option<String>]) -> Option<Shape> {
        let p = pattern?;
        if p != PATTERN && p.strip_prefix("{^LN-BEG}") != Some(PATTERN) {
            return None;
        }
        let want = ["a", "b", "d", "H", "M", "S", "f", "Y"];
        let got: Vec<Option<&str>> = names.iter().map(|n| n.as_deref()).collect();
        if got.len() != 2 + want.len()
            || got[0].is_some()
            || got[1].is_some()
            || got[2..].iter().zip(want).any(|(g, w)| *g != Some(w))
        {
            return None;
        }
        Some(Shape {
            a: 2,
            b: 3,
            d: 4,
            h: 5,
            m: 6,
            s: 7,
            f: 8,
            y: 9,
        })
    }
}

/// Month number (1-12) of an English abbreviation, any case.
pub(crate) fn english_month(b: &[u8]) -> Option<i32> {
    let [x, y, z] = b else { return None };
    let k = [
        x.to_ascii_lowercase(),
        y.to_ascii_lowercase(),
        z.to_ascii_lowercase(),
    ];
    Some(match &k {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// A canonical stamp: its end and its fields as `int()` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) end: u8,
    pub(crate) month: u8,
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
}

/// The canonical stamp at the start of `h`, or `None` (undecided: ask the
/// matcher).
pub(crate) fn recognize(h: &[u8]) -> Option<Stamp> {
    let s = h.get(..15)?;
    let month = english_month(&s[..3])?;
    let digit = |c: u8| c.is_ascii_digit();
    let day_ok = match (s[4], s[5]) {
        (b'1' | b'2', d) => digit(d),
        (b'0' | b' ', d) => (b'1'..=b'9').contains(&d),
        (b'3', d) => d == b'0' || d == b'1',
        _ => false,
    };
    let ok = s[3] == b' '
        && day_ok
        && s[6] == b' '
        && (b'0'..=b'2').contains(&s[7])
        && digit(s[8])
        && s[9] == b':'
        && (b'0'..=b'5').contains(&s[10])
        && digit(s[11])
        && s[12] == b':'
        && (b'0'..=b'5').contains(&s[13])
        && digit(s[14]);
    if !ok {
        return None;
    }
    match h.get(15) {
        None => {}
        Some(&c) if c >= 0x80 || c == b'.' || c == b'_' || c.is_ascii_alphanumeric() => {
            return None
        }
        Some(b' ') if h.get(16).is_some_and(|c| c.is_ascii_digit()) => return None,
        Some(_) => {}
    }
    let two = |a: u8, b: u8| (if a == b' ' { 0 } else { a - b'0' }) * 10 + (b - b'0');
    Some(Stamp {
        end: 15,
        month: month as u8,
        day: two(s[4], s[5]),
        hour: two(s[7], s[8]),
        minute: two(s[10], s[11]),
        second: two(s[13], s[14]),
    })
}

/// A one- or two-character number as `int(val.strip())` reads a canonical
/// field (`"05"`, `" 5"`, `"5"`); `None` for anything else.
pub(crate) fn small_int(b: &[u8]) -> Option<i32> {
    match b {
        [d] if d.is_ascii_digit() => Some(i32::from(d - b'0')),
        [b' ', d] if d.is_ascii_digit() => Some(i32::from(d - b'0')),
        [x, y] if x.is_ascii_digit() && y.is_ascii_digit() => {
            Some(i32::from(x - b'0') * 10 + i32::from(y - b'0'))
        }
        _ => None,
    }
}
