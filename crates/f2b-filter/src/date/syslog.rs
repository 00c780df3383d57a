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
    pub(crate) a: u8,
    pub(crate) b: u8,
    pub(crate) d: u8,
    pub(crate) h: u8,
    pub(crate) m: u8,
    pub(crate) s: u8,
    pub(crate) f: u8,
    pub(crate) y: u8,
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
    month_of(*x, *y, *z).map(i32::from)
}

/// The lowercase abbreviations as little-endian words, placed by
/// [`month_slot`] (a perfect hash of the twelve; empty slots hold 0, which
/// no key equals: a key's bytes have bit 5 set).
const MONTHS: [(u32, u8); 16] = {
    let names = *b"janfebmaraprmayjunjulaugsepoctnovdec";
    let mut t = [(0u32, 0u8); 16];
    let mut i = 0;
    while i < 12 {
        let k = u32::from_le_bytes([names[3 * i], names[3 * i + 1], names[3 * i + 2], 0]);
        let slot = month_slot(k);
        assert!(t[slot].0 == 0, "month hash collision");
        t[slot] = (k, i as u8 + 1);
        i += 1;
    }
    t
};

const fn month_slot(k: u32) -> usize {
    (k.wrapping_mul(0x3b6f_e507) >> 28) as usize
}

/// Month number of three bytes, any ASCII case. `c | 0x20` is
/// `to_ascii_lowercase` on letters and maps every other byte to a
/// non-letter, so only the twelve names (in any case) find their slot's key.
#[inline]
fn month_of(x: u8, y: u8, z: u8) -> Option<u8> {
    let k = u32::from_le_bytes([x | 0x20, y | 0x20, z | 0x20, 0]);
    let (key, m) = MONTHS[month_slot(k)];
    (key == k).then_some(m)
}

/// How a byte right after `HH:MM:SS` decides: 0 the stamp ends there, 1
/// undecided (`.` before a fraction, a word character, non-ASCII), 2 a
/// space (undecided if a digit follows: a year).
const AFTER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b >= 0x80 || b == b'.' || b == b'_' || b.is_ascii_alphanumeric() {
            1
        } else if b == b' ' {
            2
        } else {
            0
        };
        c += 1;
    }
    t
};

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
#[inline]
pub(crate) fn recognize(h: &[u8]) -> Option<Stamp> {
    let s: &[u8; 15] = h.get(..15)?.try_into().ok()?;
    let month = month_of(s[0], s[1], s[2])?;
    // `HH:MM:SS` a word at a time: XOR with "00:00:00" leaves digits as
    // 0-9 and the colons as 0 (the XOR is a bijection: nothing else does)
    let w = u64::from_le_bytes([s[7], s[8], s[9], s[10], s[11], s[12], s[13], s[14]])
        ^ u64::from_le_bytes(*b"00:00:00");
    const HI: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // every byte <= 9 (below 16 first, so adding 6 carries into no
    // neighbour), the colons 0
    if w & HI != 0
        || w.wrapping_add(0x0606_0606_0606_0606) & HI != 0
        || w & 0x0000_ff00_00ff_0000 != 0
    {
        return None;
    }
    let [h1, h0, _, m1, m0, _, s1, s0] = w.to_le_bytes();
    // `%d`: `0[1-9]`, `[12]\d`, `3[01]`, ` [1-9]`: a day 1-31 with a digit
    // or a space (as 0) for tens
    let d1 = if s[4] == b' ' {
        0
    } else {
        s[4].wrapping_sub(b'0')
    };
    let d0 = s[5].wrapping_sub(b'0');
    let day = d1.wrapping_mul(10).wrapping_add(d0);
    if s[3] != b' ' || s[6] != b' ' || d1 > 3 || d0 > 9 || !(1..=31).contains(&day) {
        return None;
    }
    if h1 > 2 || m1 > 5 || s1 > 5 {
        return None;
    }
    if !after_stamp_ok(h) {
        return None;
    }
    Some(Stamp {
        end: 15,
        month,
        day,
        hour: h1 * 10 + h0,
        minute: m1 * 10 + m0,
        second: s1 * 10 + s0,
    })
}

/// The first 13 bytes of a canonical stamp (`Mmm dd HH:MM:`, what its
/// minute is read from), as two overlapping words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head(u64, u64);

impl Head {
    /// The head of `h`, which holds a canonical stamp (at least 15 bytes;
    /// anything shorter gives a head no text starts with).
    pub(crate) fn of(h: &[u8]) -> Head {
        match h.get(..13) {
            Some(s) => Head(word(&s[..8]), word(&s[5..13])),
            None => Head(u64::MAX, u64::MAX),
        }
    }

    /// `h` has at least 15 bytes and starts with this head.
    #[inline]
    pub(crate) fn starts(&self, h: &[u8]) -> bool {
        h.len() >= 15 && word(&h[..8]) == self.0 && word(&h[5..13]) == self.1
    }
}

#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// The stamp ends at 15 as far as the bytes after it tell ([`AFTER`]): the
/// line's end, a byte that ends it, or a space not followed by a digit (a
/// year).
#[inline]
fn after_stamp_ok(h: &[u8]) -> bool {
    match h.get(15).map(|&c| AFTER[usize::from(c)]) {
        None | Some(0) => true,
        Some(2) => !h.get(16).is_some_and(|c| c.is_ascii_digit()),
        Some(_) => false,
    }
}

/// [`recognize`] on a text that starts with the head of a stamp it took
/// (`minute`'s fields, see [`Head::starts`]): the same month, day, hour and
/// minute, so only the second and the byte after the stamp are left to
/// check.
#[inline]
pub(crate) fn same_minute(h: &[u8], minute: Stamp) -> Option<Stamp> {
    let (s1, s0) = (h.get(13)?.wrapping_sub(b'0'), h.get(14)?.wrapping_sub(b'0'));
    if s1 > 5 || s0 > 9 {
        return None;
    }
    if !after_stamp_ok(h) {
        return None;
    }
    Some(Stamp {
        second: s1 * 10 + s0,
        ..minute
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
