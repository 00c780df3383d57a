//! Shared text for the filter's per-line bookkeeping.
//!
//! fail2ban keeps a failure as a dict of strings cut from the line: group
//! values, the line split around its date, the matched lines. Owned strings
//! cost an allocation and a copy each, and the mlfid cache copies whole
//! failures on every merge. Here every such string is a [`Txt`]: a range of
//! one shared buffer (the line, or the buffer the regexes ran on), so cutting
//! and copying cost a reference count and a line costs two allocations in
//! all (its text and the regexes' buffer).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A range of a shared string. Compares, orders and hashes as its text.
#[derive(Clone)]
pub(crate) struct Txt {
    src: Arc<str>,
    s: usize,
    e: usize,
}

impl Txt {
    /// The whole of `s` (one allocation).
    pub(crate) fn new(s: &str) -> Txt {
        Txt {
            src: Arc::from(s),
            s: 0,
            e: s.len(),
        }
    }
    /// `self[a..b]` sharing the buffer; `a..b` must lie on character
    /// boundaries of `self` (spans from a regex run on it do).
    pub(crate) fn slice(&self, a: usize, b: usize) -> Txt {
        debug_assert!(a <= b && self.s + b <= self.e);
        Txt {
            src: self.src.clone(),
            s: self.s + a,
            e: self.s + b,
        }
    }
    /// The byte after this range in the shared buffer, if any.
    fn next_byte(&self) -> Option<u8> {
        self.src.as_bytes().get(self.e).copied()
    }
    /// The buffer of this text as an (empty) line to write the next line
    /// into ([`TLine::split_reusing`]), if nothing else holds it.
    pub(crate) fn into_line(mut self) -> Option<TLine> {
        Arc::get_mut(&mut self.src).is_some().then_some(TLine {
            src: Txt {
                src: self.src,
                s: 0,
                e: 0,
            },
            d0: 0,
            d1: 0,
        })
    }
    /// This text followed by a newline: a slice when the buffer already
    /// has one right after it (a prefregex's `<F-CONTENT>` ending at `$`),
    /// else a new buffer.
    pub(crate) fn into_with_newline(mut self) -> Txt {
        if self.next_byte() == Some(b'\n') {
            self.e += 1;
            self
        } else {
            let mut b = String::with_capacity(self.len() + 1);
            b.push_str(&self);
            b.push('\n');
            Txt::new(&b)
        }
    }
}

impl Deref for Txt {
    type Target = str;
    fn deref(&self) -> &str {
        &self.src[self.s..self.e]
    }
}

impl Borrow<str> for Txt {
    fn borrow(&self) -> &str {
        self
    }
}

impl PartialEq for Txt {
    fn eq(&self, o: &Txt) -> bool {
        **self == **o
    }
}
impl Eq for Txt {}
impl PartialOrd for Txt {
    fn partial_cmp(&self, o: &Txt) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Txt {
    fn cmp(&self, o: &Txt) -> std::cmp::Ordering {
        (**self).cmp(&**o)
    }
}
impl Hash for Txt {
    // as `str` hashes, so that a map keyed by `Txt` is searched with `&str`
    fn hash<H: Hasher>(&self, h: &mut H) {
        (**self).hash(h)
    }
}
impl fmt::Debug for Txt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// `s` and a newline in a new shared buffer: one allocation and one copy
/// (`Arc::from` of a `String` built first would copy the line twice). The
/// buffer is rounded up (filled with newlines after the line's) so that it
/// can serve the next lines ([`TLine::split_reusing`]); a range never
/// reaches past its line's newline.
fn with_newline(s: &str) -> Arc<str> {
    let size = (s.len() + 1).next_multiple_of(64);
    let mut a: Arc<[std::mem::MaybeUninit<u8>]> = Arc::new_uninit_slice(size);
    let Some(d) = Arc::get_mut(&mut a) else {
        unreachable!("a new Arc is unique")
    };
    // SAFETY: `d` has room for `s` and `size - s.len()` (>= 1) bytes more;
    // the regions are distinct allocations. The rest: newlines.
    unsafe {
        let p = d.as_mut_ptr().cast::<u8>();
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        std::ptr::write_bytes(p.add(s.len()), b'\n', size - s.len());
    }
    // SAFETY: every byte was written just above.
    let a: Arc<[u8]> = unsafe { a.assume_init() };
    // SAFETY: the bytes are `s`'s (UTF-8) followed by a newline: valid
    // UTF-8; `str` and `[u8]` have the same layout.
    unsafe { Arc::from_raw(Arc::into_raw(a) as *const str) }
}

/// A log line split as fail2ban does: (text before the date, the date
/// text, the rest), three adjacent ranges of one shared string.
#[derive(Clone, PartialEq)]
pub(crate) struct TLine {
    src: Txt,
    d0: usize,
    d1: usize,
}

impl TLine {
    /// `line` split around `line[d0..d1]` (one allocation). The buffer
    /// holds a newline after the line, so that the regexes' buffer of a line
    /// whose date starts it is a slice of it (see [`lines_buf`]).
    pub(crate) fn split(line: &str, d0: usize, d1: usize) -> TLine {
        TLine {
            src: Txt {
                src: with_newline(line),
                s: 0,
                e: line.len(),
            },
            d0,
            d1,
        }
    }
    /// This line if nothing else holds its buffer (then it can serve
    /// [`TLine::split_reusing`]).
    pub(crate) fn unique(mut self) -> Option<TLine> {
        Arc::get_mut(&mut self.src.src).is_some().then_some(self)
    }
    /// [`TLine::split`] into the buffer of `old` (a line, or a part of
    /// one) when nothing else holds that buffer and the line fits in it: no
    /// allocation.
    pub(crate) fn split_reusing(line: &str, d0: usize, d1: usize, old: Option<TLine>) -> TLine {
        if let Some(TLine {
            src: Txt { src: mut a, .. },
            ..
        }) = old
        {
            let n = line.len();
            if let Some(m) = Arc::get_mut(&mut a).filter(|m| m.len() > n) {
                // SAFETY: the bytes written are valid UTF-8 (the line, a
                // newline) and so is what follows them once the rest of
                // a character they cut into is overwritten (continuation
                // bytes right after them), before the borrow ends.
                let b = unsafe { m.as_bytes_mut() };
                b[..n].copy_from_slice(line.as_bytes());
                b[n] = b'\n';
                for x in &mut b[n + 1..] {
                    if *x & 0xC0 != 0x80 {
                        break;
                    }
                    *x = b'\n';
                }
                return TLine {
                    src: Txt { src: a, s: 0, e: n },
                    d0,
                    d1,
                };
            }
        }
        Self::split(line, d0, d1)
    }
    /// `(prefix, date, rest)` given as three strings (one allocation).
    pub(crate) fn from_parts(prefix: &str, date: &str, rest: &str) -> TLine {
        let mut b = String::with_capacity(prefix.len() + date.len() + rest.len());
        b.push_str(prefix);
        b.push_str(date);
        b.push_str(rest);
        TLine {
            src: Txt::new(&b),
            d0: prefix.len(),
            d1: prefix.len() + date.len(),
        }
    }
    /// `("", "", text)`: a line replaced by a prefregex's `<F-CONTENT>`.
    pub(crate) fn content(text: Txt) -> TLine {
        TLine {
            src: text,
            d0: 0,
            d1: 0,
        }
    }
    pub(crate) fn prefix(&self) -> &str {
        &self.src[..self.d0]
    }
    pub(crate) fn date(&self) -> &str {
        &self.src[self.d0..self.d1]
    }
    pub(crate) fn rest(&self) -> &str {
        &self.src[self.d1..]
    }
    /// The whole line (prefix, date and rest joined).
    pub(crate) fn whole(&self) -> &str {
        &self.src
    }
    /// The public tuple form.
    pub(crate) fn to_tuple(&self) -> (String, String, String) {
        (
            self.prefix().to_string(),
            self.date().to_string(),
            self.rest().to_string(),
        )
    }
    /// True if prefix + rest (the line without its date) equals `s`.
    pub(crate) fn undated_eq(&self, s: &str) -> bool {
        let (p, r) = (self.prefix(), self.rest());
        s.len() == p.len() + r.len() && s.starts_with(p) && s.ends_with(r)
    }
}

impl fmt::Debug for TLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&(self.prefix(), self.date(), self.rest()), f)
    }
}

/// fail2ban's buffer for the regexes: the lines without their dates,
/// joined and ended by newlines. One line without a date that is already
/// followed by a newline in its buffer costs no allocation.
pub(crate) fn lines_buf(lines: &[TLine]) -> Txt {
    if let [l] = lines {
        if l.d0 == 0 {
            // no prefix: the rest, and a newline
            return l.src.slice(l.d1, l.src.len()).into_with_newline();
        }
    }
    let n: usize = lines
        .iter()
        .map(|l| l.prefix().len() + l.rest().len() + 1)
        .sum();
    let mut s = String::with_capacity(n);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(l.prefix());
        s.push_str(l.rest());
    }
    s.push('\n');
    Txt::new(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A buffer serves again only when nothing else holds it.
    #[test]
    fn a_buffer_is_handed_back_only_unheld() {
        let a = TLine::split("first line", 0, 0);
        let t = a.src.slice(0, 5);
        assert!(a.unique().is_none(), "`t` holds its buffer");
        let held = t.clone();
        assert!(t.into_line().is_none(), "held by `held`");
        let line = held.into_line().expect("the last holder");
        let b = TLine::split_reusing("second", 0, 0, Some(line));
        assert_eq!(b.whole(), "second");
        assert!(b.unique().is_some());
    }

    #[test]
    fn slices_share_and_compare_as_text() {
        let t = Txt::new("abc def");
        let d = t.slice(4, 7);
        assert_eq!(&*d, "def");
        assert_eq!(d, Txt::new("def"));
        let mut m = HashMap::new();
        m.insert(d.clone(), 1);
        assert_eq!(m.get("def"), Some(&1));
        assert!(Txt::new("abc") < d);
    }

    #[test]
    fn newline_is_reused_or_added() {
        let t = Txt::new("x content\n");
        let c = t.slice(2, 9);
        let b = c.into_with_newline();
        assert_eq!(&*b, "content\n");
        assert!(Arc::ptr_eq(&b.src, &t.src));
        let b = Txt::new("alone").into_with_newline();
        assert_eq!(&*b, "alone\n");
    }

    #[test]
    fn a_line_buffer_serves_the_next_line_when_free() {
        let a = TLine::split("Jan 1 first line é", 0, 5);
        let p = Arc::as_ptr(&a.src.src);
        // shorter: same buffer, the cut character's rest overwritten
        let b = TLine::split_reusing("second ä", 0, 0, Some(a));
        assert_eq!(Arc::as_ptr(&b.src.src), p);
        assert_eq!(b.whole(), "second ä");
        assert_eq!(&*lines_buf(std::slice::from_ref(&b)), "second ä\n");
        assert!(std::str::from_utf8(b.src.src.as_bytes()).is_ok());
        // the buffer's cut point falls inside the old "ä": fixed
        let c = TLine::split_reusing("second ", 0, 0, Some(b));
        assert_eq!(Arc::as_ptr(&c.src.src), p);
        assert_eq!(&*lines_buf(std::slice::from_ref(&c)), "second \n");
        assert!(std::str::from_utf8(c.src.src.as_bytes()).is_ok());
        assert_eq!(c.src.src.as_bytes()[8], b'\n');
        // held elsewhere: a new buffer, the held text unchanged
        let held = c.src.slice(0, 6);
        let d = TLine::split_reusing("third", 0, 0, Some(c));
        assert_ne!(Arc::as_ptr(&d.src.src), p);
        assert_eq!(&*held, "second");
        assert_eq!(d.whole(), "third");
        // too long: a new buffer
        let long = "x".repeat(200);
        let e = TLine::split_reusing(&long, 0, 0, Some(d));
        assert_eq!(e.whole(), long);
        assert_eq!(&*lines_buf(&[e]), format!("{long}\n"));
    }

    #[test]
    fn lines_split_and_join() {
        let l = TLine::split("pre 12:00 rest", 4, 9);
        assert_eq!((l.prefix(), l.date(), l.rest()), ("pre ", "12:00", " rest"));
        assert_eq!(l.whole(), "pre 12:00 rest");
        assert!(l.undated_eq("pre  rest"));
        assert!(!l.undated_eq("pre rest"));
        let p = TLine::from_parts("a", "b", "c");
        assert_eq!(p.to_tuple(), ("a".into(), "b".into(), "c".into()));
        assert_eq!(&*lines_buf(&[l.clone(), p]), "pre  rest\nac\n");
        assert_eq!(&*lines_buf(&[l]), "pre  rest\n");
        // a line starting with its date: its buffer is a slice of the line's
        let l = TLine::split("12:00 rest", 0, 5);
        let b = lines_buf(std::slice::from_ref(&l));
        assert_eq!(&*b, " rest\n");
        assert!(Arc::ptr_eq(&b.src, &l.src.src));
        let c = TLine::content(Txt::new("x y\n").slice(0, 3));
        assert_eq!(&*lines_buf(&[c]), "x y\n");
    }
}
