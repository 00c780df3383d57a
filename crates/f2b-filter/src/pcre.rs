//! PCRE2 (JIT) as the capture engine of linear patterns on ASCII haystacks.
//!
//! The `regex` crate finds a match with its lazy DFA at memory speed, but
//! group spans need a second engine (the bounded backtracker), which costs
//! ~0.5 µs for a fail2ban failregex on a syslog line. PCRE2's JIT gives the
//! same spans in ~60 ns (measured on the sshd filter, see "Session 3" in
//! docs/arch/filter.md).
//!
//! The PCRE2 pattern is printed from the `regex-syntax` HIR of the pattern,
//! the HIR the `regex` crate itself compiles: case folding, classes and
//! anchors are already resolved there, so the printed pattern is plain
//! classes, literals, groups, repetitions and a few anchors. It is printed
//! *for ASCII haystacks only*: every class is cut down to its ASCII part, a
//! literal with a non-ASCII character (which cannot occur in such a haystack)
//! becomes `(*FAIL)`, and Unicode word boundaries become ASCII ones (the same
//! positions in ASCII text). PCRE2 then runs without UTF or UCP.
//! Leftmost-first matching is the backtracking order, so the two engines
//! agree on every span (a property test checks it). A pattern the printer
//! cannot express (CRLF anchors, non-ASCII group names) gets no PCRE2 form.
//!
//! PCRE2 backtracks: a linear pattern can still take exponential time in it.
//! Every search carries a match limit (`(*LIMIT_MATCH=...)`); a search that
//! hits it, or any other PCRE2 error (JIT stack), returns `Err` and the
//! caller answers with the `regex` crate, whose time is linear.
use crate::dialect::Slots;
use pcre2_sys::{
    pcre2_code_8, pcre2_code_free_8, pcre2_compile_8, pcre2_get_ovector_count_8,
    pcre2_get_ovector_pointer_8, pcre2_jit_compile_8, pcre2_jit_match_8, pcre2_match_8,
    pcre2_match_data_8, pcre2_match_data_create_from_pattern_8, pcre2_match_data_free_8,
    PCRE2_ERROR_JIT_BADOPTION, PCRE2_ERROR_NOMATCH, PCRE2_JIT_COMPLETE, PCRE2_UNSET,
};
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::fmt::Write as _;
use std::ptr::NonNull;

/// `pcre2_jit_match_8` and `pcre2_match_8` (same signature).
type MatchFn = unsafe extern "C" fn(
    *const pcre2_code_8,
    *const u8,
    usize,
    usize,
    u32,
    *mut pcre2_match_data_8,
    *mut pcre2_sys::pcre2_match_context_8,
) -> std::os::raw::c_int;

/// Backtracking steps one PCRE2 search may use before the caller falls back
/// to the linear engine.
const MATCH_LIMIT: u32 = 20_000;

/// The PCRE2 form of a `regex` crate pattern for ASCII haystacks, or `None`
/// if it has none.
#[cfg(test)]
pub(crate) fn pattern_for(linear: &str) -> Option<String> {
    let hir = regex_syntax::Parser::new().parse(linear).ok()?;
    // `(*NO_START_OPT)`: the JIT of the bundled PCRE2 (pcre2-sys 0.2.10) misses matches
    // when its start-of-match optimisation meets an optional prefix before a literal and
    // a bounded repeat: `x?a[ab]{0,2}` on "a" finds nothing with the JIT, (0, 1) without
    // it (found by `spans_agree`). f2b's own gates (start literals, required literals)
    // already skip the positions that optimisation would.
    print_pattern(&hir, &[])
}

/// The PCRE2 form of `hir` with the alternatives numbered in `kill` (in
/// [`print`]'s order) made to fail at once.
fn print_pattern(hir: &Hir, kill: &[usize]) -> Option<String> {
    let mut out = format!("(*NO_START_OPT)(*LIMIT_MATCH={MATCH_LIMIT})");
    let mut cx = Cx { next: 0, kill };
    print(hir, &mut out, &mut cx)?;
    Some(out)
}

/// The printer's count of alternatives (every branch of every alternation,
/// in the order printed) and those to print as failing.
struct Cx<'a> {
    next: usize,
    kill: &'a [usize],
}

/// Alternatives of a pattern that cannot match a haystack without some
/// literal, and the pattern printed without them.
///
/// fail2ban's conditionals, expanded (`crate::expand`), are alternations of
/// long variants that each carry a copy of the rest of the pattern: sshd's
/// `Failed ...` failregex has one variant for a user name followed by `": "`
/// and one for anything up to `" from "`. On an ordinary line the first fails
/// only at its end, after backtracking through every `<HOST>` alternative;
/// that was most of the search. A variant whose mandatory literal the
/// haystack lacks has no successful path, so printing it as `(*FAIL)` (its
/// groups kept: same numbering) leaves the successful paths and their order,
/// hence the first one and its spans, unchanged.
struct Pruning {
    hir: Hir,
    /// The prunable alternatives' numbers (in [`print`]'s order), by bit.
    branches: Vec<usize>,
    /// Each literal and the bits of the alternatives that need it.
    lits: Vec<(memchr::memmem::Finder<'static>, u32)>,
    /// The pattern compiled without the alternatives of each bit set (index:
    /// the set; built on first use).
    variants: Box<[std::sync::OnceLock<Option<Compiled>>]>,
}

/// A compiled pattern and its reused match data.
type Compiled = Slots<Code, MatchData>;

/// At most this many alternatives are pruned (variants: 2^n at most).
const MAX_PRUNED: usize = 6;
/// At most this many literals are looked for per search.
const MAX_PRUNE_LITS: usize = 3;
/// Smaller alternatives fail fast enough by themselves (HIR nodes).
const MIN_PRUNED_SIZE: usize = 24;

/// HIR nodes of `h`, counted up to `cap`.
fn size(h: &Hir, cap: usize) -> usize {
    let sub = |hs: &[Hir]| {
        let mut n = 1;
        for s in hs {
            if n >= cap {
                break;
            }
            n += size(s, cap - n);
        }
        n
    };
    match h.kind() {
        HirKind::Repetition(r) => 1 + size(&r.sub, cap.saturating_sub(1)),
        HirKind::Capture(c) => 1 + size(&c.sub, cap.saturating_sub(1)),
        HirKind::Concat(v) | HirKind::Alternation(v) => sub(v),
        _ => 1,
    }
}

/// The literal `h` starts with (through groups), if any.
fn leading_literal(h: &Hir) -> &[u8] {
    match h.kind() {
        HirKind::Literal(l) => &l.0,
        HirKind::Capture(c) => leading_literal(&c.sub),
        HirKind::Concat(v) => v.first().map_or(&[], leading_literal),
        _ => &[],
    }
}

/// True if every match of `h` contains `lit` (as far as a walk through
/// concatenations, groups and all the branches of alternations tells).
fn needs(h: &Hir, lit: &[u8]) -> bool {
    match h.kind() {
        HirKind::Literal(l) => l.0.windows(lit.len()).any(|w| w == lit),
        HirKind::Capture(c) => needs(&c.sub, lit),
        HirKind::Repetition(r) => r.min >= 1 && needs(&r.sub, lit),
        HirKind::Alternation(v) => v.iter().all(|b| needs(b, lit)),
        HirKind::Concat(v) => {
            v.iter().any(|s| needs(s, lit)) || {
                let mut l = Vec::new();
                crate::dialect::required_literals(h, &mut l);
                l.iter().any(|x| x.windows(lit.len()).any(|w| w == lit))
            }
        }
        _ => false,
    }
}

/// The prunable alternatives of `h`: (number in [`print`]'s order, the
/// literals it needs that tell it from its siblings). `next` counts the
/// alternatives as [`print`] does.
fn prunable(h: &Hir, next: &mut usize, out: &mut Vec<(usize, Vec<Vec<u8>>)>) {
    match h.kind() {
        HirKind::Repetition(r) => prunable(&r.sub, next, out),
        HirKind::Capture(c) => prunable(&c.sub, next, out),
        HirKind::Concat(v) => {
            for s in v {
                prunable(s, next, out);
            }
        }
        HirKind::Alternation(v) => {
            let lits: Vec<Vec<Vec<u8>>> = v
                .iter()
                .map(|b| {
                    let mut l = Vec::new();
                    crate::dialect::required_literals(b, &mut l);
                    l.retain(|x| x.len() >= 2);
                    l
                })
                .collect();
            for (i, b) in v.iter().enumerate() {
                let id = *next;
                *next += 1;
                if size(b, MIN_PRUNED_SIZE) >= MIN_PRUNED_SIZE {
                    let lead = leading_literal(b);
                    let own: Vec<Vec<u8>> = lits[i]
                        .iter()
                        // a literal every sibling needs too tells nothing;
                        // one the alternative starts with fails it at once
                        .filter(|l| {
                            !v.iter().enumerate().all(|(j, o)| j == i || needs(o, l))
                                && !lead.windows(l.len()).any(|w| w == &l[..])
                        })
                        .cloned()
                        .collect();
                    if !own.is_empty() {
                        out.push((id, own));
                    }
                }
                prunable(b, next, out);
            }
        }
        _ => {}
    }
}

impl Pruning {
    fn of(hir: Hir) -> Option<Pruning> {
        let mut found = Vec::new();
        prunable(&hir, &mut 0, &mut found);
        let mut branches = Vec::new();
        let mut lits: Vec<(Vec<u8>, u32)> = Vec::new();
        for (id, ls) in found {
            if branches.len() == MAX_PRUNED {
                break;
            }
            let bit = 1u32 << branches.len();
            let mut used = false;
            for l in ls {
                match lits.iter().position(|(x, _)| *x == l) {
                    Some(k) => lits[k].1 |= bit,
                    None if lits.len() < MAX_PRUNE_LITS => lits.push((l, bit)),
                    None => continue,
                }
                used = true;
            }
            if used {
                branches.push(id);
            }
        }
        if branches.is_empty() {
            return None;
        }
        Some(Pruning {
            hir,
            variants: (0..1usize << branches.len())
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            branches,
            lits: lits
                .into_iter()
                .map(|(l, m)| (memchr::memmem::Finder::new(&l).into_owned(), m))
                .collect(),
        })
    }

    /// The pattern for `hay` (searched from `pos`) without the alternatives
    /// whose literals it lacks; `None`: the whole pattern.
    fn variant(&self, hay: &[u8]) -> Option<&Slots<Code, MatchData>> {
        let mut kill = 0u32;
        for (f, m) in &self.lits {
            if kill & m != *m && f.find(hay).is_none() {
                kill |= m;
            }
        }
        if kill == 0 {
            return None;
        }
        self.variants[kill as usize]
            .get_or_init(|| {
                let ids: Vec<usize> = (0..self.branches.len())
                    .filter(|b| kill >> b & 1 != 0)
                    .map(|b| self.branches[b])
                    .collect();
                let p = print_pattern(&self.hir, &ids)?;
                Code::new(&p).map(|c| Slots::new(c, Code::match_data))
            })
            .as_ref()
    }
}

fn byte(b: u8, out: &mut String) {
    if b.is_ascii_alphanumeric() {
        out.push(char::from(b));
    } else {
        let _ = write!(out, "\\x{b:02x}");
    }
}

fn print(h: &Hir, out: &mut String, cx: &mut Cx<'_>) -> Option<()> {
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => {
            if !l.0.is_ascii() {
                // cannot occur in an ASCII haystack
                out.push_str("(*FAIL)");
                return Some(());
            }
            if let [b] = l.0[..] {
                byte(b, out);
            } else {
                out.push_str("(?:");
                for &b in l.0.iter() {
                    byte(b, out);
                }
                out.push(')');
            }
        }
        HirKind::Class(c) => {
            // the ASCII part of the class
            let ranges: Vec<(u32, u32)> = match c {
                Class::Bytes(c) => c
                    .ranges()
                    .iter()
                    .map(|r| (u32::from(r.start()), u32::from(r.end())))
                    .collect(),
                Class::Unicode(c) => c
                    .ranges()
                    .iter()
                    .map(|r| (u32::from(r.start()), u32::from(r.end())))
                    .collect(),
            };
            let ascii: Vec<(u8, u8)> = ranges
                .into_iter()
                .filter(|&(a, _)| a < 0x80)
                .map(|(a, b)| (a as u8, b.min(0x7f) as u8))
                .collect();
            if ascii.is_empty() {
                out.push_str("(*FAIL)");
                return Some(());
            }
            out.push('[');
            for (a, b) in ascii {
                byte(a, out);
                if b != a {
                    out.push('-');
                    byte(b, out);
                }
            }
            out.push(']');
        }
        // on ASCII text the Unicode word boundaries are the ASCII ones
        HirKind::Look(l) => out.push_str(match l {
            Look::Start => r"\A",
            Look::End => r"\z",
            Look::StartLF => r"(?:\A|(?<=\n))",
            Look::EndLF => r"(?=\n|\z)",
            Look::WordAscii | Look::WordUnicode => r"\b",
            Look::WordAsciiNegate | Look::WordUnicodeNegate => r"\B",
            Look::WordStartAscii | Look::WordStartUnicode => r"\b(?=[0-9A-Za-z_])",
            Look::WordEndAscii | Look::WordEndUnicode => r"\b(?<=[0-9A-Za-z_])",
            Look::WordStartHalfAscii | Look::WordStartHalfUnicode => r"(?<![0-9A-Za-z_])",
            Look::WordEndHalfAscii | Look::WordEndHalfUnicode => r"(?![0-9A-Za-z_])",
            _ => return None,
        }),
        HirKind::Repetition(r) => {
            // A group that captures and can match empty, repeated more than once: PCRE2
            // and the `regex` crate disagree on what an empty last iteration leaves in the
            // group (`(?:(a*?))*` on "a." gives (1,1) in PCRE2, (0,1) in the `regex`
            // crate, found by `spans_agree`). Such a pattern stays with the `regex` crate.
            if r.max != Some(1)
                && r.sub.properties().explicit_captures_len() > 0
                && r.sub.properties().minimum_len() == Some(0)
            {
                return None;
            }
            // a repeated class or byte is printed bare: PCRE2 makes a
            // single-character repeat possessive when what follows cannot
            // match its character (`[0-9]+ ` never gives digits back), which
            // it does not do for a repeated group
            let single = match r.sub.kind() {
                HirKind::Class(Class::Bytes(c)) => {
                    c.ranges().first().is_some_and(|r| r.start() < 0x80)
                }
                HirKind::Class(Class::Unicode(c)) => c
                    .ranges()
                    .first()
                    .is_some_and(|r| u32::from(r.start()) < 0x80),
                HirKind::Literal(l) => l.0.len() == 1 && l.0.is_ascii(),
                _ => false,
            };
            if single {
                print(&r.sub, out, cx)?;
            } else {
                out.push_str("(?:");
                print(&r.sub, out, cx)?;
                out.push(')');
            }
            match (r.min, r.max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (m, None) => {
                    let _ = write!(out, "{{{m},}}");
                }
                (m, Some(n)) if m == n => {
                    let _ = write!(out, "{{{m}}}");
                }
                (m, Some(n)) => {
                    let _ = write!(out, "{{{m},{n}}}");
                }
            }
            if !r.greedy {
                out.push('?');
            }
        }
        HirKind::Capture(c) => {
            match &c.name {
                Some(n) => {
                    let ok = n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && n.bytes().next().is_some_and(|b| !b.is_ascii_digit())
                        && n.len() <= 32;
                    if !ok {
                        return None;
                    }
                    let _ = write!(out, "(?<{n}>");
                }
                None => out.push('('),
            }
            print(&c.sub, out, cx)?;
            out.push(')');
        }
        HirKind::Concat(v) => {
            out.push_str("(?:");
            for s in v {
                print(s, out, cx)?;
            }
            out.push(')');
        }
        HirKind::Alternation(v) => {
            out.push_str("(?:");
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                if cx.kill.contains(&cx.next) {
                    out.push_str("(*FAIL)");
                }
                cx.next += 1;
                print(s, out, cx)?;
            }
            out.push(')');
        }
    }
    Some(())
}

/// A compiled PCRE2 pattern (JIT-compiled when the JIT is available).
pub(crate) struct Code {
    code: NonNull<pcre2_code_8>,
}

// SAFETY: a compiled PCRE2 pattern is read-only once compiled (JIT code
// included); PCRE2 documents matching one pattern from several threads at
// once, each with its own match data.
unsafe impl Send for Code {}
// SAFETY: as above.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: `code` came from `pcre2_compile_8` and is freed once.
        unsafe { pcre2_code_free_8(self.code.as_ptr()) }
    }
}

/// Match data for one [`Code`]: its ovector holds every group's span.
pub(crate) struct MatchData {
    md: NonNull<pcre2_match_data_8>,
    /// The ovector (`pairs` pairs), owned by `md`.
    ov: *const usize,
    pairs: usize,
}

// SAFETY: match data is plain memory owned by this value; it is used by one
// search at a time (`Slots` hands it out under a lock).
unsafe impl Send for MatchData {}

impl Drop for MatchData {
    fn drop(&mut self) {
        // SAFETY: `md` came from `pcre2_match_data_create_from_pattern_8`.
        unsafe { pcre2_match_data_free_8(self.md.as_ptr()) }
    }
}

impl Code {
    /// Compiles `pattern` (no options: bytes, no UTF), then JIT-compiles it
    /// when the JIT is available (otherwise the interpreter answers).
    fn new(pattern: &str) -> Option<Code> {
        let (mut err, mut off) = (0i32, 0usize);
        // SAFETY: the pattern pointer and length describe a live string;
        // the error outputs are valid pointers; a null context is allowed.
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                0,
                &mut err,
                &mut off,
                std::ptr::null_mut(),
            )
        };
        let code = Code {
            code: NonNull::new(code)?,
        };
        // a failed JIT compile leaves the pattern usable by the interpreter
        // SAFETY: `code` is a live compiled pattern.
        let _ = unsafe { pcre2_jit_compile_8(code.code.as_ptr(), PCRE2_JIT_COMPLETE) };
        Some(code)
    }

    /// Match data sized for every group of the pattern.
    fn match_data(&self) -> MatchData {
        // SAFETY: `code` is a live compiled pattern; a null general context
        // is allowed. The ovector lives as long as the match data.
        unsafe {
            let md =
                pcre2_match_data_create_from_pattern_8(self.code.as_ptr(), std::ptr::null_mut());
            let md = NonNull::new(md).expect("PCRE2 match data allocation failed");
            let pairs = pcre2_get_ovector_count_8(md.as_ptr()) as usize;
            let ov = pcre2_get_ovector_pointer_8(md.as_ptr());
            MatchData { md, ov, pairs }
        }
    }
}

/// A compiled PCRE2 form and its reused match data, and its forms without
/// the alternatives a haystack's missing literals rule out.
pub(crate) struct Pcre {
    whole: Slots<Code, MatchData>,
    pruning: Option<Box<Pruning>>,
}

/// Every group's span (index 0: the whole match).
pub(crate) type GroupSpans = Vec<Option<(usize, usize)>>;

/// A PCRE2 search gave up (match limit, JIT stack): use the linear engine.
#[derive(Debug)]
pub(crate) struct GaveUp;

impl Pcre {
    /// Compiles the PCRE2 form of `linear` (JIT when available).
    pub(crate) fn new(linear: &str) -> Option<Pcre> {
        let hir = regex_syntax::Parser::new().parse(linear).ok()?;
        let p = print_pattern(&hir, &[])?;
        let code = Code::new(&p)?;
        Some(Pcre {
            whole: Slots::new(code, Code::match_data),
            pruning: Pruning::of(hir).map(Box::new),
        })
    }

    /// Leftmost-first match of `hay` from `pos` with every group span.
    #[cfg(test)]
    pub(crate) fn captures(&self, hay: &[u8], pos: usize) -> Result<Option<GroupSpans>, GaveUp> {
        let mut v = Vec::new();
        Ok(self.captures_into(hay, pos, &mut v)?.then_some(v))
    }

    /// [`Pcre::captures`] into `out` (its allocation reused): true if found.
    pub(crate) fn captures_into(
        &self,
        hay: &[u8],
        pos: usize,
        out: &mut GroupSpans,
    ) -> Result<bool, GaveUp> {
        let found = self.search_with(hay, pos, |ov, pairs| {
            out.clear();
            // one spare slot: `Tail` appends its tail group
            out.reserve(pairs + 1);
            out.extend(ov.chunks_exact(2).map(|p| pair_span(p[0], p[1])));
            out.resize(pairs, None);
        })?;
        Ok(found.is_some())
    }

    /// Leftmost-first match of `hay` from `pos`: `f(ovector, groups)` on a
    /// match, with the ovector's set pairs (start, end; `PCRE2_UNSET` for a
    /// group that did not take part) and the pattern's number of groups
    /// (plus one, the whole match).
    ///
    /// Calls the JIT's own entry point (`pcre2_jit_match`, what
    /// `pcre2_match` calls after its argument checks, which hold here:
    /// no options, `pos` within `hay`); a pattern without JIT code answers
    /// `PCRE2_ERROR_JIT_BADOPTION` there and is run by `pcre2_match`.
    #[inline]
    pub(crate) fn search_with<T>(
        &self,
        hay: &[u8],
        pos: usize,
        f: impl FnOnce(&[usize], usize) -> T,
    ) -> Result<Option<T>, GaveUp> {
        if pos > hay.len() {
            return Ok(None);
        }
        // a non-dangling pointer for an empty haystack (never read)
        static ONE: [u8; 1] = [0];
        let subject = if hay.is_empty() {
            ONE.as_ptr()
        } else {
            hay.as_ptr()
        };
        let slots = self
            .pruning
            .as_ref()
            .and_then(|p| p.variant(&hay[pos..]))
            .unwrap_or(&self.whole);
        slots.with(|code, md| {
            // SAFETY: `subject`/`hay.len()` describe live memory, `pos` is
            // within it, `md` was made for `code`; a null match context is
            // allowed (default limits; the JIT uses its 32 KiB stack).
            let run = |m: MatchFn| unsafe {
                m(
                    code.code.as_ptr(),
                    subject,
                    hay.len(),
                    pos,
                    0,
                    md.md.as_ptr(),
                    std::ptr::null_mut(),
                )
            };
            let mut rc = run(pcre2_jit_match_8);
            if rc == PCRE2_ERROR_JIT_BADOPTION {
                rc = run(pcre2_match_8);
            }
            if rc == PCRE2_ERROR_NOMATCH {
                return Ok(None);
            }
            // 0: ovector too small (never: the match data is sized for the
            // pattern); < 0: match limit, JIT stack or another error
            if rc <= 0 {
                return Err(GaveUp);
            }
            // `rc` pairs are set at most (the highest group that took part,
            // plus one); the ovector holds `pairs` pairs and lives with `md`
            let set = (rc as usize).min(md.pairs);
            // SAFETY: `set <= pairs`.
            let ov = unsafe { std::slice::from_raw_parts(md.ov, 2 * set) };
            Ok(Some(f(ov, md.pairs)))
        })
    }
}

/// Group `i`'s span in an ovector's set pairs (see [`Pcre::search_with`]).
#[inline]
pub(crate) fn ovector_span(ov: &[usize], i: usize) -> Option<(usize, usize)> {
    match ov.get(2 * i..2 * i + 2) {
        Some(&[a, b]) => pair_span(a, b),
        _ => None,
    }
}

/// An ovector pair as a span: `None` for a group that did not take part
/// (unset).
#[inline]
fn pair_span(a: usize, b: usize) -> Option<(usize, usize)> {
    (a != PCRE2_UNSET && b != PCRE2_UNSET).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `regex` crate's answer, the reference (ASCII haystacks only).
    fn reference(p: &str, hay: &[u8], pos: usize) -> Option<GroupSpans> {
        let hay = std::str::from_utf8(hay).ok()?;
        let re = regex::Regex::new(p).ok()?;
        let mut l = re.capture_locations();
        re.captures_read_at(&mut l, hay, pos)?;
        Some((0..l.len()).map(|i| l.get(i)).collect())
    }

    fn agree(p: &str, hay: &str, pos: usize) {
        let Some(pc) = Pcre::new(p) else {
            panic!("no PCRE2 form for {p:?}: {:?}", pattern_for(p));
        };
        let got = pc.captures(hay.as_bytes(), pos).expect("no limit hit");
        assert_eq!(
            got,
            reference(p, hay.as_bytes(), pos),
            "pattern {p:?} on {hay:?}"
        );
    }

    #[test]
    fn fail2ban_shapes_agree() {
        let host = r"(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|\[?(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:))\]?|(?P<dns>[\w\-.^_]*\w))";
        let p = format!(
            r"^(?P<nofail>Connection (?:closed|reset)|Disconnected) (?:by|from)(?: (?:invalid|authenticating) user (?P<user>\S+|.*?))? {host}(?:(?: (?:port \d+|on \S+|\[preauth\])){{0,3}}\s*|\s*)(?m:$)"
        );
        for hay in [
            "Connection closed by authenticating user root 203.244.55.148 port 30131 [preauth]\n",
            "Disconnected from 2001:db8::1 port 22\n",
            "Connection reset by host.example.org\n",
            "Connection closed by authenticating user a b c 1.2.3.4 port 1\n",
            "nothing\n",
        ] {
            agree(&p, hay, 0);
        }
        agree(r"(?i)fail(?:ed|ure)\b", "x FAILED y", 0);
        agree(r"(?m:^)b+?(?m:$)", "a\nbb\nc", 1);
        agree(r"\Bx\b", "axe ax", 0);
        agree(r"[^\x00-\x1f]{2,4}?z", "abcdz", 0);
    }

    #[test]
    fn unicode_constructs_on_ascii_text() {
        agree(r"(?i)(?:Mär|mar)\w+\b", "x MARCH y", 0);
        agree(r"(?i)\w*k", "Kelvin k", 0);
        agree(r"[^ä]+ß?$", "abc", 0);
        agree(r"\b{end-half}x|y", "ay", 0);
        // the JIT's start-of-match optimisation on these missed the match
        agree(r"x?a[ab]{0,2}", "a", 0);
        agree(r"(?:x|)(?:ä|a)(?:a|b){0,2}", "Ka", 0);
        agree(r"(?:xy|)a[ab]{0,2}c?", "KKab", 0);
        // an empty-matching capture repeated: left to the `regex` crate
        assert!(pattern_for(r"(?:(?P<g1>a*?))*\b{end-half}").is_none());
        assert!(pattern_for(r"(?:(a+))*").is_some());
        assert!(pattern_for(r"(?P<nöm>x)").is_none());
        assert!(pattern_for(r"x(?mR:$)").is_none());
    }

    /// A shape of an expanded conditional: variants with a copy of the
    /// rest each, told apart by `": "` and `"invalid user "`.
    fn expanded_shape() -> String {
        let host = r"(?:(?:::f{4,6}:)?((?:\d{1,3}\.){3}\d{1,3})|((?:[0-9a-f]{1,4}::?|::){1,7}(?:[0-9a-f]{1,4}|:))|([\w\-.]*\w))";
        let rest = r"(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?";
        format!(
            r"^Failed (?:(publickey)|\S+) for (?:(invalid user )(?:(\S+) from {host}{rest}: |(.*?) from {host}{rest}(.*)(?m:$))|(?:)(?:(\S+) from {host}{rest}: |([^:]+) from {host}{rest}(.*)(?m:$)))"
        )
    }

    #[test]
    fn alternatives_are_pruned_by_missing_literals() {
        let p = expanded_shape();
        let pc = Pcre::new(&p).unwrap();
        let pr = pc.pruning.as_deref().expect("prunable");
        let lits: Vec<&[u8]> = pr.lits.iter().map(|(f, _)| f.needle()).collect();
        assert_eq!(lits, [&b": "[..]]);
        assert_eq!(pr.branches.len(), 2);
        for hay in [
            "Failed password for root from 198.51.100.7 port 33492 ssh2\n",
            "Failed password for invalid user x y from 198.51.100.7 port 1 ssh2\n",
            "Failed password for root from 198.51.100.7 port 33492 ssh2: RSA x\n",
            "Failed publickey for a: b from ::1 port 2\n",
            "Failed publickey for ab from ::1 port 2: x\n",
            "Failed password for root from host.example.org\n",
        ] {
            let got = pc.captures(hay.as_bytes(), 0).expect("no limit hit");
            assert_eq!(got, reference(&p, hay.as_bytes(), 0), "on {hay:?}");
        }
        // the pruned form was used (and kept) for the lines without ": "
        assert!(pr.variants.iter().skip(1).any(|v| v.get().is_some()));
    }

    #[test]
    fn runaway_backtracking_gives_up() {
        let pc = Pcre::new(r"^(?:a|a|aa)*b").unwrap();
        let hay = format!("{}cb", "a".repeat(40));
        assert!(pc.captures(hay.as_bytes(), 0).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// The pruned forms give the spans of the whole pattern.
        #[test]
        fn pruned_forms_agree(
            toks in proptest::collection::vec(proptest::sample::select(vec![
                "Failed ", "password", "publickey", " for ", "invalid user ", "root", " from ",
                "198.51.100.7", "::1", "host.org", " port ", "22", " ssh2", ": ", ":", " ", "x",
            ]), 0..14),
        ) {
            let hay = format!("Failed {}\n", toks.concat());
            let p = expanded_shape();
            let pc = Pcre::new(&p).unwrap();
            if let Ok(got) = pc.captures(hay.as_bytes(), 0) {
                proptest::prop_assert_eq!(got, reference(&p, hay.as_bytes(), 0), "on {:?}", hay);
            }
        }

        /// PCRE2 and the `regex` crate give the same spans.
        #[test]
        fn spans_agree(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                r"a", r"b+", r"(?P<g1>a*?)", r"(b|ab)", r"\d{1,3}", r"(?:\.\d+)?", r"\s*",
                r"[^ ]+", r"(?i:Ab)", r"\b", r"(?m:$)", r"(?m:^)", r".*?", r"(?:x|)", r"(\w+)?",
                r" ", r"(?:a|b){0,2}", r"\B", r"(?P<g2>.+)", r"(?i:ſ|k)", r"[^ä\s]",
                r"\b{end-half}", r"(?:ä|a)",
            ]), 1..6),
            anchored in proptest::bool::ANY,
            // wrap part `w` in a repetition (empty iterations included)
            wrap in proptest::option::of((0usize..6, proptest::sample::select(vec!["*", "+", "{0,2}", "*?", "{1,3}?"]))),
            hay in "[ab1. x\nAsSkK]{0,16}",
            pos in 0usize..4,
        ) {
            let mut p = String::new();
            if anchored { p.push('^'); }
            let mut names = 0;
            for (i, s) in parts.iter().enumerate() {
                // each named group once
                let s = if s.contains("?P<") {
                    names += 1;
                    s.replace("?P<g", &format!("?P<n{names}g"))
                } else {
                    s.to_string()
                };
                match wrap {
                    Some((w, q)) if w == i => p.push_str(&format!("(?:{s}){q}")),
                    _ => p.push_str(&s),
                }
            }
            let pos = pos.min(hay.len());
            if let Some(pc) = Pcre::new(&p) {
                if let Ok(got) = pc.captures(hay.as_bytes(), pos) {
                    proptest::prop_assert_eq!(got, reference(&p, hay.as_bytes(), pos), "pattern {:?}", p);
                }
            }
        }
    }
}
