//! The filter: fail2ban's `Filter.processLine` / `findFailure` semantics.

use crate::date::{DateDetector, DateError, TimeCtx};
use crate::dialect::{DialectError, Probe, PyRegex, Spans};
use crate::tags::resolve_host_tag;
use crate::txt::{lines_buf, TLine, Txt};
use f2b_core::addr::{Addr, IpNet};
use f2b_core::value::Value;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// `usedns` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UseDns {
    /// Resolve host names found by `<HOST>`.
    Yes,
    /// Resolve, and warn about it (the default).
    #[default]
    Warn,
    /// Never resolve; `<HOST>` matches addresses only.
    No,
    /// Keep host names as raw failure ids.
    Raw,
}

impl UseDns {
    /// Parses like fail2ban (`yes|warn|no|raw`, booleans; anything else is `no`).
    pub fn parse(s: &str) -> UseDns {
        match s.trim().to_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => UseDns::Yes,
            "warn" => UseDns::Warn,
            "raw" => UseDns::Raw,
            _ => UseDns::No,
        }
    }
    /// The fail2ban spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UseDns::Yes => "yes",
            UseDns::Warn => "warn",
            UseDns::No => "no",
            UseDns::Raw => "raw",
        }
    }
}

/// Errors configuring a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A regex failed to compile.
    #[error("{option}: {source}")]
    Regex {
        /// Which option (`failregex`, `ignoreregex`, `prefregex`).
        option: &'static str,
        /// The compile error.
        #[source]
        source: DialectError,
    },
    /// Empty regex.
    #[error("{option}: Cannot add empty regex")]
    Empty {
        /// Which option.
        option: &'static str,
    },
    /// A failregex without any failure-id group.
    #[error("No failure-id group in '{regex}'")]
    NoFailureId {
        /// The expanded regex.
        regex: String,
    },
    /// Bad date pattern / time zone.
    #[error(transparent)]
    Date(#[from] DateError),
    /// Bad maxlines.
    #[error("maxlines must be integer greater than zero, got {value:?}")]
    MaxLines {
        /// The value.
        value: String,
    },
    /// Regex index out of range in a delete.
    #[error("Cannot remove regular expression. Index {index} is not valid")]
    BadIndex {
        /// The index.
        index: usize,
    },
}

/// Everything that configures a filter (the `[Definition]` of a filter file
/// plus the jail-level knobs that affect matching).
#[derive(Debug, Clone, Default)]
pub struct FilterSpec {
    /// `prefregex` (optional).
    pub prefregex: Option<String>,
    /// `failregex` lines.
    pub failregex: Vec<String>,
    /// `ignoreregex` lines.
    pub ignoreregex: Vec<String>,
    /// `maxlines` (1 if 0).
    pub maxlines: usize,
    /// `datepattern` (None = default templates).
    pub datepattern: Option<String>,
    /// `logtimezone` (e.g. `UTC+0200`, `CET`).
    pub logtimezone: Option<String>,
    /// `usedns`.
    pub usedns: UseDns,
}

/// A log line split as fail2ban does: (text before date, date text, rest).
pub type TupleLine = (String, String, String);

/// Internal value of a failure field (Python dict values). Texts are
/// ranges of the line's shared buffers ([`Txt`]), so copying a failure
/// (the mlfid cache keeps one of every failure it merges, as Python shares
/// the dict) costs reference counts, not string copies.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    S(Txt),
    Tuple(Vec<Option<Txt>>),
    // shared, copied on write
    /// A set kept as a sorted vector without duplicates (a few names: one
    /// small allocation, not a tree node).
    Users(Arc<Vec<Txt>>),
    /// The set of one user (most sets: one allocation less to make and
    /// free); a set of two or more is always [`V::Users`].
    User(Txt),
    Lines(Arc<Vec<TLine>>),
    Int(i64),
    Addr(Addr),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::S(s) => !s.is_empty(),
            V::Tuple(t) => !t.is_empty(),
            V::Users(u) => !u.is_empty(),
            V::User(_) => true,
            V::Lines(l) => !l.is_empty(),
            V::Int(i) => *i != 0,
            V::Addr(_) => true,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            V::S(s) => Some(s),
            _ => None,
        }
    }
    fn as_txt(&self) -> Option<&Txt> {
        match self {
            V::S(s) => Some(s),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        let s = |t: &Txt| Value::Str(t.to_string());
        match self {
            V::Null => Value::None,
            V::S(t) => s(t),
            V::Tuple(t) => Value::Tuple(
                t.iter()
                    .map(|o| o.as_ref().map(s).unwrap_or(Value::None))
                    .collect(),
            ),
            V::Users(u) => Value::Set(u.iter().map(s).collect()),
            V::User(u) => Value::Set(std::iter::once(u).map(s).collect()),
            V::Lines(l) => Value::List(l.iter().map(|t| Value::Str(t.whole().into())).collect()),
            V::Int(i) => Value::Int(*i),
            V::Addr(a) => Value::Str(a.to_string()),
        }
    }
}

/// A failure's fields (Python's dict), keyed by interned names: group names
/// and fail2ban's own keys, so building and merging one costs no key
/// allocation. A handful of entries: a vector searched linearly beats a tree
/// (no node allocations). The order is a Python dict's: insertion order, a
/// key set again keeps its place, a key popped leaves (`fail2ban-regex -o
/// row` prints it).
#[derive(Debug, Clone, Default, PartialEq)]
struct Fail(Vec<(&'static str, V)>);

impl Fail {
    fn new() -> Fail {
        Fail(Vec::new())
    }
    fn pos(&self, k: &str) -> Option<usize> {
        // keys are interned: the same pointer is the usual hit; other keys
        // are told apart by their length and first byte before any `memcmp`
        let kb = k.as_bytes();
        self.0.iter().position(|(n, _)| {
            let nb = n.as_bytes();
            nb.len() == kb.len()
                && (std::ptr::eq(nb.as_ptr(), kb.as_ptr()) || nb.first() == kb.first() && nb == kb)
        })
    }
    fn get(&self, k: &str) -> Option<&V> {
        self.pos(k).map(|i| &self.0[i].1)
    }
    /// `fr`'s named groups from its spans over `b`, replacing an entry of
    /// the first `np` (the prefregex's) of the same name, else appended
    /// (a failregex's own names are distinct).
    #[inline]
    fn overlay(&mut self, np: usize, fr: &FRegex, b: &Txt, spans: &Spans) {
        for &(i, n) in &fr.names {
            // (`unwrap_or(V::Null)` made and dropped a `V` per group)
            let v = match spans.get(i) {
                Some((x, y)) => V::S(b.slice(x, y)),
                None => V::Null,
            };
            // names are interned: the same name is the same pointer
            match self.0[..np].iter().position(|(k, _)| std::ptr::eq(*k, n)) {
                Some(i) => self.0[i].1 = v,
                None => self.0.push((n, v)),
            }
        }
    }
    fn insert(&mut self, k: &'static str, v: V) {
        match self.pos(k) {
            Some(i) => self.0[i].1 = v,
            None => self.0.push((k, v)),
        }
    }
    fn remove(&mut self, k: &str) -> Option<V> {
        self.pos(k).map(|i| self.0.remove(i).1)
    }
    fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        self.pos(k).map(|i| &mut self.0[i].1)
    }
    /// The fields as public values, in order (`matches` is kept apart).
    fn values(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        self.0
            .iter()
            .filter(|(k, _)| *k != "matches")
            .map(|(k, v)| (*k, v.to_value()))
    }
}

impl IntoIterator for Fail {
    type Item = (&'static str, V);
    type IntoIter = std::vec::IntoIter<(&'static str, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The one `&'static str` of a field name. Names come from the filters'
/// regexes (group names) and are few and bounded by the configuration, so
/// they are kept for the life of the process.
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&k) = set.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(k);
    k
}

fn get<'a>(f: &'a Fail, k: &str) -> Option<&'a V> {
    f.get(k).filter(|v| !matches!(v, V::Null))
}
fn get_str<'a>(f: &'a Fail, k: &str) -> Option<&'a str> {
    get(f, k).and_then(V::as_str)
}
fn get_txt(f: &Fail, k: &str) -> Option<Txt> {
    get(f, k).and_then(V::as_txt).cloned()
}
fn truthy(f: &Fail, k: &str) -> bool {
    f.get(k).is_some_and(V::truthy)
}
/// [`Failure::is_nofail`] of a dict.
fn nofail_of(f: &Fail) -> bool {
    match f.get("nofail") {
        None | Some(V::Null) => false,
        Some(V::S(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// One failure found in a line (what fail2ban puts in its `FailTicket`).
///
/// Its fields stay in the filter's shared form until a consumer asks for
/// them: most matches (`NOFAIL` helpers, `fail2ban-regex` counting) never
/// need them as owned strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Index of the failregex that matched.
    pub regex_index: usize,
    /// The failure id (IP, subnet or raw id); `None` for a pending
    /// multi-line failure (mlfid known, id not yet).
    pub id: Option<Addr>,
    /// Unix time of the failure (may be `None` if no date was found and
    /// find-time checks are off).
    pub time: Option<f64>,
    /// True if fail2ban would hold the time as a Python `int` (dates with an
    /// explicit zone, TAI64N); only matters for textual output.
    pub time_is_int: bool,
    /// Shared with the mlfid cache's entry (Python shares the dict); in a
    /// [`Filter::lean`] run, an empty dict unless the cache holds it.
    data: Arc<Fail>,
    /// The dict's `nofail` is true (Python's truth of its value).
    nofail: bool,
}

impl Failure {
    /// All fields fail2ban keeps in the ticket data: `user`, `fid`, `ip4`,
    /// `mlfid`, `nofail`, `users`, `F-ALT_*`/`F-TUPLE_*` results, custom
    /// `F-*` groups... (`matches` is kept apart: [`Failure::matches`]).
    pub fn fields(&self) -> BTreeMap<&'static str, Value> {
        self.data.values().collect()
    }
    /// The fields of [`Failure::fields`] in fail2ban's order (its dict's
    /// insertion order: the prefregex's groups, the failregex's, then the
    /// keys the merge adds).
    pub fn fields_ordered(&self) -> Vec<(&'static str, Value)> {
        self.data.values().collect()
    }
    /// The matched log lines.
    pub fn matches(&self) -> Vec<String> {
        self.match_lines().map(str::to_string).collect()
    }
    /// The matched log lines, borrowed.
    pub fn match_lines(&self) -> impl Iterator<Item = &str> {
        self.matched().iter().map(TLine::whole)
    }
    /// How many lines matched.
    pub fn match_count(&self) -> usize {
        self.matched().len()
    }
    fn matched(&self) -> &[TLine] {
        match self.data.get("matches") {
            Some(V::Lines(l)) => l,
            _ => &[],
        }
    }
    /// A string field (`user`, `fid`, ...).
    pub fn field_str(&self, k: &str) -> Option<&str> {
        get_str(&self.data, k)
    }
    /// True if this is a "nofail" match (helper match, not a failure).
    pub fn is_nofail(&self) -> bool {
        self.nofail
    }
}

/// A compiled filter regex (fail2ban `Regex` / `FailRegex`).
#[derive(Debug)]
struct FRegex {
    source: String,
    re: PyRegex,
    alt: Vec<(&'static str, &'static str)>,
    tuple: Vec<(&'static str, &'static str)>,
    skiplines: Vec<usize>,
    /// The named groups (index, interned name), in index order: most
    /// groups of an expanded `<HOST>` have no name, and a match's dict is
    /// made of the named ones only.
    names: Vec<(usize, &'static str)>,
    /// How many groups have a name (a dict's size).
    named: usize,
    /// Index of the `content` group (a prefregex's `<F-CONTENT>`).
    content: Option<usize>,
    /// The groups of the keys a counting run's verdict reads
    /// ([`VerdictKey`]), by key.
    verdict_keys: [Option<usize>; VerdictKey::COUNT],
}

/// The keys of a failure's dict that decide a counting run's verdict on a
/// match that leaves the mlfid cache as it is (see [`quick_verdict`]).
#[derive(Debug, Clone, Copy)]
enum VerdictKey {
    Mlfid,
    Nofail,
    Mlfgained,
    Mlfforget,
    Mlfpending,
    Ip4,
    Ip6,
    Dns,
    Fid,
}

impl VerdictKey {
    const COUNT: usize = 9;
    const NAMES: [&'static str; VerdictKey::COUNT] = [
        "mlfid",
        "nofail",
        "mlfgained",
        "mlfforget",
        "mlfpending",
        "ip4",
        "ip6",
        "dns",
        "fid",
    ];
}

struct Found {
    matched: Vec<TLine>,
    unmatched: Vec<TLine>,
}

impl FRegex {
    fn new(
        source: &str,
        multiline: bool,
        use_dns: UseDns,
        option: &'static str,
    ) -> Result<FRegex, FilterError> {
        let expanded = resolve_host_tag(source, use_dns);
        if expanded.trim_start().is_empty() {
            return Err(FilterError::Empty { option });
        }
        let expanded = glob_to_local_flags(&expanded);
        let re = PyRegex::new(&expanded, multiline)
            .map_err(|source| FilterError::Regex { option, source })?;
        let mut alt = Vec::new();
        let mut tuple = Vec::new();
        let mut skiplines = Vec::new();
        for (i, n) in re.names().iter().enumerate() {
            let Some(k) = n else { continue };
            if let Some(num) = k.strip_prefix("skiplines") {
                if let Ok(n) = num.parse::<usize>() {
                    if skiplines.len() == n {
                        skiplines.push(i);
                    }
                }
            }
            if k.len() <= 4 {
                continue;
            }
            for (pre, list) in [("alt_", &mut alt), ("tuple_", &mut tuple)] {
                if let Some(rest) = k.strip_prefix(pre) {
                    // COMPLNAME_CRE: ^(alt_|tuple_)(.*?)(?:_\d+)?$
                    let base = match rest.rfind('_') {
                        Some(p)
                            if p + 1 < rest.len()
                                && rest[p + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            &rest[..p]
                        }
                        _ => rest,
                    };
                    list.push((intern(k), intern(&crate::tags::map_tag_to_opt(base))));
                }
            }
        }
        alt.sort();
        tuple.sort();
        let names: Vec<(usize, &'static str)> = re
            .names()
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, intern(n.as_deref()?))))
            .collect();
        Ok(FRegex {
            named: names.len(),
            content: re.group_index("content"),
            verdict_keys: VerdictKey::NAMES.map(|k| re.group_index(k)),
            names,
            source: source.to_string(),
            re,
            alt,
            tuple,
            skiplines,
        })
    }

    fn has_group(&self, n: &str) -> bool {
        self.re.group_index(n).is_some()
    }

    /// A match's lines: those it covers and the others (`org` is the
    /// buffer of lines `buf` was made of).
    fn found(&self, spans: &Spans, buf: &str, org: &[TLine]) -> Found {
        let (ms, me) = spans.whole();
        let (matched, unmatched) = if org.len() <= 1 {
            (org.to_vec(), Vec::new())
        } else {
            let line_start = buf[..(ms + 1).min(buf.len())]
                .rfind('\n')
                .map(|p| p + 1)
                .unwrap_or(0);
            let from = me.saturating_sub(1);
            let line_end = buf[from..]
                .find('\n')
                .map(|p| from + p + 1)
                .unwrap_or(buf.len());
            let c1 = buf[..line_start].matches('\n').count();
            let c2 = buf[..line_end].matches('\n').count();
            let c1 = c1.min(org.len());
            let c2 = c2.min(org.len()).max(c1);
            let mut matched: Vec<TLine> = org[c1..c2].to_vec();
            let mut unmatched: Vec<TLine> = org[..c1].to_vec();
            // skipped lines
            let mut skipped = String::new();
            for &g in &self.skiplines {
                if let Some((a, b)) = spans.get(g) {
                    skipped.push_str(&buf[a..b]);
                }
            }
            let mut n = 0;
            for sl in py_splitlines(&skipped) {
                let mut hit = None;
                for (m, t) in matched.iter().enumerate().skip(n) {
                    if t.undated_eq(&sl) {
                        hit = Some(m);
                        break;
                    }
                }
                if let Some(m) = hit {
                    unmatched.push(matched.remove(m));
                    n = m;
                }
            }
            unmatched.extend(org[c2..].iter().cloned());
            (matched, unmatched)
        };
        Found { matched, unmatched }
    }

    fn groups(&self, buf: &Txt, spans: &Spans) -> Fail {
        // room for the groups, the alt/tuple results and the few keys the
        // merge adds (users, matches, ...)
        let mut fail = Fail(Vec::with_capacity(self.named + 8));
        for &(i, n) in &self.names {
            let v = match spans.get(i) {
                Some((a, b)) => V::S(buf.slice(a, b)),
                None => V::Null,
            };
            // a Python regex names each group once: no key to replace
            fail.0.push((n, v));
        }
        for &(k, n) in &self.alt {
            let v = fail.get(k).cloned().unwrap_or(V::Null);
            if v.truthy() && !truthy(&fail, n) {
                fail.insert(n, v);
            }
        }
        for &(k, n) in &self.tuple {
            let v = fail.get(k).and_then(V::as_txt).cloned();
            let t = fail.get(n).cloned().unwrap_or(V::Null);
            let nt = match t {
                V::Tuple(mut t) => {
                    t.push(v);
                    t
                }
                V::S(s) => vec![Some(s), v],
                _ => vec![None, v],
            };
            fail.insert(n, V::Tuple(nt));
        }
        fail
    }
}

fn py_splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => out.push(std::mem::take(&mut cur)),
            '\r' => {
                if it.peek() == Some(&'\n') {
                    it.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// fail2ban's `R_GLOB2LOCFLAGS`: `((?i)` or `(?:(?i)` become `(?i:`.
fn glob_to_local_flags(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') {
            let mut j = i + 1;
            if re[j..].starts_with("?:") {
                j += 2;
            }
            if re[j..].starts_with("(?") {
                let k0 = j + 2;
                let mut k = k0;
                while k < b.len() && b[k].is_ascii_lowercase() {
                    k += 1;
                }
                if k > k0 && k < b.len() && b[k] == b')' {
                    out.push_str(&re[j..k]);
                    out.push(':');
                    i = k + 1;
                    continue;
                }
            }
        }
        let c = re[i..].chars().next().unwrap_or('\0');
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// fail2ban's `Utils.Cache(maxCount=100, maxTime=300)`: insertion-ordered,
/// FIFO eviction when full (expired entries are skipped while evicting).
#[derive(Debug, Default, Clone)]
struct MlfidCache {
    seq: u64,
    // FxHash: at most 100 keys, so no flooding to defend against; hashed
    // once per matched line
    // the value is shared with the failure made last of it (`None`: an
    // empty dict)
    map: HashMap<Txt, (u64, f64, Option<Arc<Fail>>), rustc_hash::FxBuildHasher>,
    /// Insertion order: (sequence number, key); an entry whose key is gone
    /// from `map` or has another number there is stale (left by `unset`,
    /// skipped, dropped when they pile up).
    order: std::collections::VecDeque<(u64, Txt)>,
}

impl MlfidCache {
    const MAX_COUNT: usize = 100;
    const MAX_TIME: f64 = 300.0;
    fn get(&mut self, k: &str, now: f64) -> Option<&mut Option<Arc<Fail>>> {
        let expired = self.map.get(k).is_some_and(|(_, t, _)| *t <= now);
        if expired {
            self.unset(k);
            return None;
        }
        self.map.get_mut(k).map(|(_, _, f)| f)
    }
    /// Sets `k` (a new key goes last); returns the value of the last
    /// entry evicted to make room, if any (for its allocations to serve
    /// again).
    fn set(&mut self, k: Txt, v: Option<Arc<Fail>>, now: f64) -> Option<Arc<Fail>> {
        let mut evicted = None;
        if self.map.len() >= Self::MAX_COUNT {
            while let Some((s, key)) = self.order.pop_front() {
                if self.map.get(&*key).is_none_or(|e| e.0 != s) {
                    continue;
                }
                let Some((_, exp, old)) = self.map.remove(&*key) else {
                    continue;
                };
                evicted = old;
                if exp > now && self.map.len() < Self::MAX_COUNT {
                    break;
                }
            }
        }
        // one hash of the key
        match self.map.entry(k) {
            // OrderedDict keeps the original position of an existing key
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                e.1 = now + Self::MAX_TIME;
                e.2 = v;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                self.seq += 1;
                self.order.push_back((self.seq, e.key().clone()));
                e.insert((self.seq, now + Self::MAX_TIME, v));
            }
        }
        evicted
    }
    /// `get` taking the value out (one look-up when the entry is live).
    fn take(&mut self, k: &str, now: f64) -> Option<Option<Arc<Fail>>> {
        let expired = match self.map.get_mut(k) {
            Some(e) if e.1 > now => return Some(e.2.take()),
            Some(_) => true,
            None => false,
        };
        if expired {
            self.unset(k);
        }
        None
    }
    /// True if `k` has a live entry (left as it is); an expired one is
    /// dropped, as [`MlfidCache::get`] and [`MlfidCache::take`] drop it.
    fn live(&mut self, k: &str, now: f64) -> bool {
        match self.map.get(k) {
            Some(e) if e.1 > now => true,
            Some(_) => {
                self.unset(k);
                false
            }
            None => false,
        }
    }
    /// `get` and an assignment of the value (one look-up when the entry
    /// is live).
    fn store(&mut self, k: &str, v: Option<Arc<Fail>>, now: f64) {
        let expired = match self.map.get_mut(k) {
            Some(e) if e.1 > now => {
                e.2 = v;
                return;
            }
            Some(_) => true,
            None => false,
        };
        if expired {
            self.unset(k);
        }
    }
    fn unset(&mut self, k: &str) {
        if self.map.remove(k).is_some() && self.order.len() > 4 * Self::MAX_COUNT {
            let map = &self.map;
            self.order
                .retain(|(s, k)| map.get(&**k).is_some_and(|e| e.0 == *s));
        }
    }
    /// The keys in insertion order.
    fn keys(&self) -> impl Iterator<Item = &Txt> {
        self.order
            .iter()
            .filter(|(s, k)| self.map.get(&**k).is_some_and(|e| e.0 == *s))
            .map(|(_, k)| k)
    }
    /// The same entries (keys in the same order, same expiry, same values):
    /// every later operation gives the same answers on both.
    fn same(&self, o: &MlfidCache) -> bool {
        self.map.len() == o.map.len()
            && self.keys().eq(o.keys())
            && self.map.iter().all(|(k, (_, exp, v))| {
                o.map
                    .get(k)
                    .is_some_and(|(_, exp2, v2)| exp == exp2 && v == v2)
            })
    }
}

/// Resolves host names for `usedns = yes|warn` (the system resolver).
pub trait Resolver: Send + Sync {
    /// All addresses of `host` (empty if none).
    fn resolve(&self, host: &str) -> Vec<std::net::IpAddr>;
}

/// The system resolver (`getaddrinfo`).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Vec<std::net::IpAddr> {
        use std::net::ToSocketAddrs;
        match (host, 0u16).to_socket_addrs() {
            Ok(it) => {
                let mut v: Vec<_> = it.map(|a| f2b_core::addr::normalize(a.ip())).collect();
                v.sort();
                v.dedup();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Matching state and statistics callback info for `fail2ban-regex`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Index of the ignoreregex that matched (if any).
    pub ignored_by: Option<usize>,
}

/// A fail2ban filter: regexes, date detector, multi-line buffer, mlfid cache.
pub struct Filter {
    use_dns: UseDns,
    pref: Option<FRegex>,
    fail: Vec<FRegex>,
    ignore: Vec<FRegex>,
    max_lines: usize,
    line_buffer: Vec<TLine>,
    /// An empty vector kept for the next line's buffer (no allocation per
    /// line).
    spare_lines: Vec<TLine>,
    last_time_text: String,
    last_date: Option<f64>,
    last_date_int: bool,
    date_int: bool,
    logtimezone: Option<String>,
    date_detector: DateDetector,
    datepattern: Option<String>,
    mlfid: MlfidCache,
    /// The date conversion's context (the local zone; `now` and the
    /// `logtimezone` offset are set per line): kept, not rebuilt per line
    /// (the zone's reference count stays put).
    ctx: TimeCtx,
    resolver: Arc<dyn Resolver>,
    /// Keep host names raw (fail2ban `returnRawHost`).
    pub return_raw_host: bool,
    /// Try every failregex, not just the first match (`checkAllRegex`).
    pub check_all_regex: bool,
    /// Drop pending mlfid failures (`ignorePending`).
    pub ignore_pending: bool,
    /// Apply find-time checks (`checkFindTime`).
    pub check_find_time: bool,
    /// Operation mode: treat far-off timestamps as "now" (`inOperation`).
    pub in_operation: bool,
    /// Jail `findtime` in seconds (for the "too old" check).
    pub find_time: f64,
    /// Index of the ignoreregex that matched the last processed line.
    pub last_ignored_by: Option<usize>,
    /// Warnings produced while processing (drained by the caller).
    pub warnings: Vec<String>,
    last_pref_matched: bool,
    /// Counting only: the caller reads of a failure its `regex_index` and
    /// [`Failure::is_nofail`], nothing else. The matched lines are not kept
    /// and the id of an address a regex found is not built (`id` is `None`;
    /// a host name still resolves, to as many failures as addresses).
    /// Which failures a line gives, and their `nofail`, are the same.
    pub lean: bool,
    /// Keep the prefregex's groups of each line (`fail2ban-regex -v`).
    pub keep_pref_groups: bool,
    last_pref_groups: Option<Fail>,
    /// Set while speculating (see [`Filter::speculate`]).
    spec: Option<Speculation>,
    /// Reused group spans of the prefregex and of the failregexes.
    pref_spans: Spans,
    fail_spans: Spans,
    /// A counting run's spare dict allocations: a dict's vector and its
    /// `Arc`, taken back from a failure the mlfid cache does not hold (in a
    /// [`Filter::lean`] run nobody reads a failure's dict).
    spare_fail: Vec<(&'static str, V)>,
    spare_arc: Option<Arc<Fail>>,
    /// A line buffer nobody else holds, taken back from a dict the mlfid
    /// cache evicted (its texts kept the line's buffer alive): it serves
    /// the next line whose last line's buffer is still held.
    spare_buf: Option<TLine>,
    /// The dict of a counting run's failures (empty).
    empty: Arc<Fail>,
    /// Which failregexes a buffer starting with a given byte can match
    /// (bit `i`: failregex `i`), built on the first line after the
    /// failregexes change; `None` with more than 64 of them.
    candidates: Option<Box<[u64; 256]>>,
}

/// A speculative filter's state where its lines begin, and what it read
/// of the state before them.
#[derive(Debug, Default)]
struct Speculation {
    /// The mlfid cache where the lines begin.
    mlfid: MlfidCache,
    /// `last_date`, `last_date_int`, `last_time_text` there.
    last: (Option<f64>, bool, String),
    /// The filter has set `last_date` since.
    dated: bool,
    /// It read `last_date` before setting it.
    undated_read: bool,
    /// Each regex's abandoned searches where the lines begin.
    budget_hits: Vec<u64>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("prefregex", &self.pref.as_ref().map(|r| &r.source))
            .field(
                "failregex",
                &self.fail.iter().map(|r| &r.source).collect::<Vec<_>>(),
            )
            .field("maxlines", &self.max_lines)
            .finish()
    }
}

impl Filter {
    /// Builds a filter from a spec.
    pub fn new(spec: FilterSpec) -> Result<Filter, FilterError> {
        let mut f = Filter {
            use_dns: spec.usedns,
            pref: None,
            fail: Vec::new(),
            ignore: Vec::new(),
            max_lines: 1,
            line_buffer: Vec::new(),
            spare_lines: Vec::new(),
            last_time_text: String::new(),
            last_date: None,
            last_date_int: false,
            date_int: false,
            logtimezone: None,
            date_detector: DateDetector::new(),
            datepattern: None,
            mlfid: MlfidCache::default(),
            ctx: TimeCtx {
                now: 0.0,
                local: Arc::new(crate::zone::system()),
                default_tz: None,
            },
            resolver: Arc::new(SystemResolver),
            return_raw_host: false,
            check_all_regex: false,
            ignore_pending: true,
            check_find_time: true,
            in_operation: true,
            find_time: 600.0,
            last_ignored_by: None,
            warnings: Vec::new(),
            last_pref_matched: false,
            keep_pref_groups: false,
            lean: false,
            last_pref_groups: None,
            spec: None,
            pref_spans: Spans(Vec::new()),
            fail_spans: Spans(Vec::new()),
            candidates: None,
            spare_fail: Vec::new(),
            spare_arc: None,
            spare_buf: None,
            empty: Arc::new(Fail::new()),
        };
        if spec.maxlines > 1 {
            f.max_lines = spec.maxlines;
        }
        f.set_logtimezone(spec.logtimezone.as_deref())?;
        f.set_datepattern(spec.datepattern.as_deref())?;
        f.set_prefregex(spec.prefregex.as_deref())?;
        let (multiline, use_dns) = (f.max_lines > 1, f.use_dns);
        let built = build_each(&spec.failregex, |r| {
            FRegex::new(r, multiline, use_dns, "failregex")
        });
        // in order: the first error is the one a sequential build meets
        for r in built {
            f.push_failregex(r?)?;
        }
        for r in &spec.ignoreregex {
            f.add_ignoreregex(r)?;
        }
        Ok(f)
    }

    /// `set <jail> prefregex` (empty/None removes it).
    pub fn set_prefregex(&mut self, v: Option<&str>) -> Result<(), FilterError> {
        self.pref = match v {
            Some(s) if !s.is_empty() => Some(FRegex::new(s, false, self.use_dns, "prefregex")?),
            _ => None,
        };
        Ok(())
    }

    /// `set <jail> addfailregex`.
    pub fn add_failregex(&mut self, v: &str) -> Result<(), FilterError> {
        let r = FRegex::new(v, self.max_lines > 1, self.use_dns, "failregex")?;
        self.push_failregex(r)
    }

    fn push_failregex(&mut self, r: FRegex) -> Result<(), FilterError> {
        const IDS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];
        let has = IDS.iter().any(|g| r.has_group(g))
            || self
                .pref
                .as_ref()
                .is_some_and(|p| IDS.iter().any(|g| p.has_group(g)));
        if !has {
            return Err(FilterError::NoFailureId {
                regex: r.re.as_str().to_string(),
            });
        }
        self.fail.push(r);
        self.candidates = None;
        Ok(())
    }

    /// `set <jail> delfailregex <index>`.
    pub fn del_failregex(&mut self, index: usize) -> Result<(), FilterError> {
        if index >= self.fail.len() {
            return Err(FilterError::BadIndex { index });
        }
        self.fail.remove(index);
        self.candidates = None;
        Ok(())
    }

    /// `set <jail> addignoreregex`.
    pub fn add_ignoreregex(&mut self, v: &str) -> Result<(), FilterError> {
        let r = FRegex::new(v, false, self.use_dns, "ignoreregex")?;
        self.ignore.push(r);
        Ok(())
    }

    /// `set <jail> delignoreregex <index>`.
    pub fn del_ignoreregex(&mut self, index: usize) -> Result<(), FilterError> {
        if index >= self.ignore.len() {
            return Err(FilterError::BadIndex { index });
        }
        self.ignore.remove(index);
        Ok(())
    }

    /// Removes all fail and ignore regexes (reload).
    pub fn clear_regexes(&mut self) {
        self.fail.clear();
        self.candidates = None;
        self.ignore.clear();
    }

    /// `get <jail> failregex` (the regexes as given, before tag expansion).
    pub fn failregex(&self) -> Vec<String> {
        self.fail.iter().map(|r| r.source.clone()).collect()
    }
    /// The expanded (Python-syntax) failregexes, as fail2ban reports them
    /// (its text of the tags, see [`crate::tags::as_fail2ban_prints`]).
    pub fn failregex_expanded(&self) -> Vec<String> {
        self.fail
            .iter()
            .map(|r| crate::tags::as_fail2ban_prints(r.re.as_str()))
            .collect()
    }
    /// `get <jail> ignoreregex`.
    pub fn ignoreregex(&self) -> Vec<String> {
        self.ignore.iter().map(|r| r.source.clone()).collect()
    }
    /// The expanded prefregex (as fail2ban-regex prints it).
    pub fn prefregex_expanded(&self) -> Option<String> {
        self.pref
            .as_ref()
            .map(|r| crate::tags::as_fail2ban_prints(r.re.as_str()))
    }

    /// True if the prefregex matched the last processed line.
    pub fn prefregex_matched(&self) -> bool {
        self.last_pref_matched
    }

    /// The prefregex's groups in the last processed line, in their order
    /// (kept only with [`Filter::keep_pref_groups`]).
    pub fn prefregex_groups(&self) -> Option<Vec<(&'static str, Value)>> {
        Some(self.last_pref_groups.as_ref()?.values().collect())
    }

    /// The current multi-line buffer.
    pub fn line_buffer(&self) -> Vec<TupleLine> {
        self.line_buffer.iter().map(TLine::to_tuple).collect()
    }

    /// `get <jail> prefregex`.
    pub fn prefregex(&self) -> Option<String> {
        self.pref.as_ref().map(|r| r.source.clone())
    }

    /// `set <jail> maxlines`.
    pub fn set_maxlines(&mut self, v: i64) -> Result<(), FilterError> {
        if v <= 0 {
            return Err(FilterError::MaxLines {
                value: v.to_string(),
            });
        }
        self.max_lines = v as usize;
        Ok(())
    }
    /// `get <jail> maxlines`.
    pub fn maxlines(&self) -> usize {
        self.max_lines
    }

    /// `set <jail> usedns` (affects regexes added afterwards, as in fail2ban).
    pub fn set_usedns(&mut self, v: UseDns) {
        self.use_dns = v;
    }
    /// `get <jail> usedns`.
    pub fn usedns(&self) -> UseDns {
        self.use_dns
    }

    /// `set <jail> datepattern` (None = default detectors).
    pub fn set_datepattern(&mut self, v: Option<&str>) -> Result<(), FilterError> {
        let mut dd = match v {
            Some(p) => DateDetector::from_datepattern(p)?,
            None => DateDetector::new(),
        };
        dd.default_tz = self.date_detector.default_tz;
        self.date_detector = dd;
        self.datepattern = v.map(str::to_string);
        Ok(())
    }
    /// `get <jail> datepattern`: (pattern, template name) like fail2ban.
    pub fn datepattern(&self) -> (Option<String>, String) {
        let dd = &self.date_detector;
        if dd.is_empty() || dd.len() > 2 {
            return (None, "Default Detectors".into());
        }
        let t = dd.template(0);
        (
            t.and_then(|t| t.pattern.clone()),
            t.map(|t| t.name.clone()).unwrap_or_default(),
        )
    }

    /// `set <jail> logtimezone`.
    pub fn set_logtimezone(&mut self, tz: Option<&str>) -> Result<(), FilterError> {
        let off = match tz {
            Some(t) => Some(crate::date::zone_offset(t)?),
            None => None,
        };
        self.logtimezone = tz.map(str::to_string);
        self.date_detector.default_tz = off;
        Ok(())
    }
    /// `get <jail> logtimezone`.
    pub fn logtimezone(&self) -> Option<&str> {
        self.logtimezone.as_deref()
    }

    /// Sets the local zone used for zone-less timestamps (default: system).
    pub fn set_local_zone(&mut self, tz: TimeZone) {
        self.ctx.local = Arc::new(tz);
    }

    /// Replaces the DNS resolver (tests).
    pub fn set_resolver(&mut self, r: Arc<dyn Resolver>) {
        self.resolver = r;
    }

    /// The date detector (template hits for reports).
    pub fn date_detector(&self) -> &DateDetector {
        &self.date_detector
    }

    /// Number of searches abandoned for exceeding the backtracking budget.
    pub fn budget_hits(&self) -> u64 {
        self.regexes().map(|r| r.re.budget_hits()).sum()
    }

    /// Every regex: failregexes, ignoreregexes, the prefregex.
    fn regexes(&self) -> impl Iterator<Item = &FRegex> {
        self.fail
            .iter()
            .chain(self.ignore.iter())
            .chain(self.pref.iter())
    }

    /// fail2ban's test for a dateless line: the last date is less than a
    /// minute old.
    fn recent_date(&mut self, now: f64) -> bool {
        if let Some(sp) = &mut self.spec {
            sp.undated_read |= !sp.dated;
        }
        self.last_date.is_some_and(|d| d > now - 60.0)
    }

    fn dated(&mut self) {
        if let Some(sp) = &mut self.spec {
            sp.dated = true;
        }
    }

    /// Starts a speculative run: this filter (configured as another one)
    /// is given lines that follow the lines the other filter is given (a
    /// later chunk of the same log) before the other has processed its own.
    /// From here on it records what its answers depend on; lines it was
    /// given before (a warm-up: the lines just before the chunk) make it
    /// likely that its state here is the other's state after its lines.
    /// [`Filter::absorb`] then tells whether its answers are exactly the
    /// ones the other filter would have given.
    ///
    /// Single-line filters only (`maxlines` 1: no line buffer crosses
    /// lines); absorbing a multi-line one always fails.
    pub fn speculate(&mut self) {
        self.spec = Some(Speculation {
            mlfid: self.mlfid.clone(),
            last: (
                self.last_date,
                self.last_date_int,
                self.last_time_text.clone(),
            ),
            dated: false,
            undated_read: false,
            budget_hits: self.regexes().map(|r| r.re.budget_hits()).collect(),
        });
        // the warm-up's are the other filter's
        self.warnings.clear();
        self.date_detector.speculate();
    }

    /// After this filter processed its lines and `b` (see
    /// [`Filter::speculate`]) the lines that follow them: if every answer of
    /// `b` is provably the one this filter would have given on those lines,
    /// takes over the state `b` leaves (this filter is then as if it had
    /// processed them) and returns true; otherwise changes nothing and
    /// returns false (the caller processes `b`'s lines here again).
    ///
    /// What crosses lines in a single-line filter and how it is checked:
    /// the date detector ([`DateDetector::can_absorb`]); the mlfid cache,
    /// which must be the same as `b`'s where `b`'s lines begin (same
    /// entries, order and values: then every later operation gives the same
    /// answer); the last date, which a dateless line reads before `b`'s
    /// first date: then it must be the same as `b`'s there. Everything else
    /// is per line; the regexes are stateless.
    pub fn absorb(&mut self, mut b: Filter) -> bool {
        let Some(sp) = b.spec.take() else {
            return false;
        };
        if self.max_lines > 1 || b.max_lines > 1 || self.spec.is_some() {
            return false;
        }
        let same_last = || {
            sp.last.0 == self.last_date
                && sp.last.1 == self.last_date_int
                && sp.last.2 == self.last_time_text
        };
        if sp.undated_read && !same_last() {
            return false;
        }
        if !self.date_detector.can_absorb(&b.date_detector) || !self.mlfid.same(&sp.mlfid) {
            return false;
        }
        self.date_detector.absorb(&b.date_detector);
        self.mlfid = std::mem::take(&mut b.mlfid);
        if sp.dated {
            self.last_date = b.last_date;
            self.last_date_int = b.last_date_int;
            self.last_time_text = std::mem::take(&mut b.last_time_text);
        }
        self.date_int = b.date_int;
        self.line_buffer = std::mem::take(&mut b.line_buffer);
        self.last_ignored_by = b.last_ignored_by;
        self.last_pref_matched = b.last_pref_matched;
        self.last_pref_groups = b.last_pref_groups.take();
        self.warnings.append(&mut b.warnings);
        for ((x, y), before) in self.regexes().zip(b.regexes()).zip(sp.budget_hits) {
            x.re.add_budget_hits(y.re.budget_hits() - before);
        }
        true
    }

    /// `processLine(line)`: finds the date, then the failures, in one line.
    /// `now` is the current Unix time (fail2ban's `MyTime.time()`).
    pub fn process_line(&mut self, line: &str, now: f64) -> Vec<Failure> {
        let mut out = Vec::new();
        self.process_line_into(line, now, &mut out);
        out
    }

    /// [`Filter::process_line`] appending the failures to `out` (a caller
    /// that runs many lines keeps one vector).
    pub fn process_line_into(&mut self, line: &str, now: f64, out: &mut Vec<Failure>) {
        self.process_line_known(line, Facts::default(), now, out)
    }

    /// [`Filter::process_line_into`] for a line as read from a log: `line`
    /// holds no newline (the caller split the log at them), and `ascii` is
    /// true if the caller knows it is all ASCII (it scanned the block the
    /// line came from). The regexes then need not learn either again.
    pub fn process_read_line_into(
        &mut self,
        line: &str,
        ascii: bool,
        now: f64,
        out: &mut Vec<Failure>,
    ) {
        debug_assert!(!line.contains('\n'), "a newline in {line:?}");
        let facts = Facts {
            ascii,
            no_newline: true,
        };
        self.process_line_known(line, facts, now, out)
    }

    fn process_line_known(&mut self, line: &str, facts: Facts, now: f64, out: &mut Vec<Failure>) {
        self.ctx.now = now;
        self.ctx.default_tz = self.date_detector.default_tz;
        // A single-line filter's buffer holds the last line until
        // `find_failure` clears it, which it does for this line unless the
        // find-time check returns first: the last line's text can then
        // serve this line (when nothing else holds it).
        let old = if self.max_lines <= 1
            && (!self.check_find_time || self.in_operation)
            && self.line_buffer.len() == 1
        {
            self.line_buffer.pop()
        } else {
            None
        };
        // (a buffer the mlfid cache holds cannot serve: the spare one then)
        let old = old
            .and_then(TLine::unique)
            .or_else(|| self.spare_buf.take());
        let d = detect(&mut self.date_detector, &self.ctx, line, old);
        self.process_detected(d, line, facts, now, out)
    }

    /// The rest of `processLine` once the date detector has seen the line.
    fn process_detected(
        &mut self,
        d: Detected,
        line: &str,
        facts: Facts,
        now: f64,
        out: &mut Vec<Failure>,
    ) {
        let mut no_date = false;
        let mut date: Option<f64> = None;
        self.date_int = false;
        let mut tuple = match d.span {
            Some((s, e)) if s < e => {
                let m = &line[s..e];
                date = d.time;
                match date {
                    Some(t) => {
                        self.date_int = d.is_int;
                        self.last_time_text.clear();
                        self.last_time_text.push_str(m);
                        self.last_date = Some(t);
                        self.last_date_int = self.date_int;
                        self.dated();
                    }
                    None => self
                        .warnings
                        .push(format!("findFailure failed to parse timeText: {m}")),
                }
                d.tline
            }
            Some(_) if self.recent_date(now) => {
                date = self.last_date;
                self.date_int = self.last_date_int;
                TLine::from_parts("", &self.last_time_text, line)
            }
            Some(_) => {
                date = Some(now);
                d.tline
            }
            None => d.tline,
        };
        if date.is_none() {
            no_date = true;
            if self.recent_date(now) {
                tuple = TLine::from_parts("", &self.last_time_text, line);
                date = self.last_date;
                self.date_int = self.last_date_int;
            } else if self.check_find_time && self.in_operation {
                date = Some(now);
            }
        }
        self.finish_line(tuple, date, no_date, facts, now, out)
    }

    /// `processLine((prefix, timetext, rest), date)`: a line whose time is
    /// already known (journal entries).
    pub fn process_line_with_time(&mut self, line: TupleLine, date: f64, now: f64) -> Vec<Failure> {
        let mut out = Vec::new();
        self.process_line_with_time_into(line, date, now, &mut out);
        out
    }

    /// [`Filter::process_line_with_time`] appending to `out`.
    pub fn process_line_with_time_into(
        &mut self,
        line: TupleLine,
        date: f64,
        now: f64,
        out: &mut Vec<Failure>,
    ) {
        self.last_time_text = line.1.clone();
        self.last_date = Some(date);
        self.dated();
        self.date_int = false;
        self.last_date_int = false;
        let tuple = TLine::from_parts(&line.0, &line.1, &line.2);
        self.finish_line(tuple, Some(date), false, Facts::default(), now, out)
    }

    fn finish_line(
        &mut self,
        tuple: TLine,
        mut date: Option<f64>,
        no_date: bool,
        facts: Facts,
        now: f64,
        out: &mut Vec<Failure>,
    ) {
        if self.check_find_time {
            if let Some(d) = date {
                if self.in_operation {
                    let delta = (d - now) as i64;
                    if delta.abs() > 60 {
                        date = Some(now);
                        self.last_date = date;
                        self.dated();
                        self.date_int = false;
                        self.last_date_int = false;
                    }
                } else if d < now - self.find_time {
                    return;
                }
            }
        }
        self.find_failure(tuple, date, no_date, facts, now, out)
    }

    fn ignore_line(&mut self, buf: &str, fail: Option<&Found>) -> Option<usize> {
        let buf2;
        let buf = match fail {
            Some(f) if self.max_lines > 1 => {
                buf2 = lines_buf(&f.matched);
                &*buf2
            }
            _ => buf,
        };
        let mut fnd = None;
        for (i, r) in self.ignore.iter().enumerate() {
            // only the hit matters here (no line split needed)
            if r.re.search(buf).is_some() {
                fnd = Some(i);
                if !self.check_all_regex || self.max_lines > 1 {
                    if let Some(f) = fail {
                        self.line_buffer = f.unmatched.clone();
                    }
                }
                if !self.check_all_regex {
                    break;
                }
            }
        }
        fnd
    }

    /// Adds `user` to the failure's `users` set; the set's size after.
    fn update_users(fail: &mut Fail, user: Option<Txt>) -> usize {
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            // the set is changed where it is (the key keeps its place)
            match fail.get_mut("users") {
                Some(V::Users(s)) if !s.is_empty() => {
                    if let Err(i) = s.binary_search(&u) {
                        Arc::make_mut(s).insert(i, u);
                    }
                    return s.len();
                }
                Some(V::User(x)) if *x == u => return 1,
                Some(v @ V::User(_)) => {
                    let V::User(x) = std::mem::replace(v, V::Null) else {
                        unreachable!("matched above")
                    };
                    let set = if u < x { vec![u, x] } else { vec![x, u] };
                    *v = V::Users(Arc::new(set));
                    return 2;
                }
                _ => {}
            }
            fail.insert("users", V::User(u));
            return 1;
        }
        match fail.get("users") {
            Some(V::Users(s)) => s.len(),
            Some(V::User(_)) => 1,
            _ => 0,
        }
    }

    fn merge_failure(
        &mut self,
        mlfid: &Txt,
        mut fail: Fail,
        found: &mut Found,
        now: f64,
    ) -> Arc<Fail> {
        // the size of the merged `users` set
        let mut users = 0;
        let mut nf: u8 = 0;
        if truthy(&fail, "mlfgained") {
            nf |= 8 | 1;
            if !truthy(&fail, "nofail") {
                let g = fail.get("mlfgained").cloned().unwrap_or(V::Null);
                fail.insert("nofail", g);
            }
        } else if truthy(&fail, "nofail") {
            nf |= 1;
        }
        if fail.remove("mlfforget").is_some_and(|v| v.truthy()) {
            nf |= 2;
        }
        // The entry is taken out (not cloned): every path below either
        // unsets it or overwrites it with the merged failure (final sync).
        // a new entry: made at the end, with its value (nothing reads the
        // cache in between)
        let mut new_entry = false;
        let cached = self
            .mlfid
            .take(mlfid, now)
            .map(|c| c.map(Arc::unwrap_or_clone).unwrap_or_default());
        if let Some(mut grp) = cached {
            users = Self::update_users(&mut grp, get_txt(&fail, "user"));
            if grp.remove("nofail").is_some_and(|v| v.truthy()) {
                nf |= 4;
            }
            if grp.remove("mlfgained").is_some_and(|v| v.truthy()) {
                nf |= 4;
            }
            if nf & 8 != 0 {
                grp.remove("mlfpending");
            }
            if nf & 4 == 0 && !truthy(&grp, "mlfpending") {
                grp.remove("matches");
            }
            for (k, v) in fail.0.drain(..) {
                if !matches!(v, V::Null) {
                    grp.insert(k, v);
                }
            }
            // the emptied vector serves the next dict
            self.keep_spare(std::mem::replace(&mut fail, grp).0);
            if nf & 2 != 0 {
                self.mlfid.unset(mlfid);
            }
            // else: written by the final sync below
        } else if nf & 2 == 0 {
            let u = get_txt(&fail, "user");
            users = Self::update_users(&mut fail, u);
            new_entry = true;
        }
        let pending = fail.remove("mlfpending").is_some_and(|v| v.truthy());
        if pending || users > 1 {
            fail.remove("nofail");
            fail.remove("mlfgained");
            nf &= !(8 | 1);
        }
        if self.lean {
            // no matched lines kept
        } else if nf & 1 == 0 {
            let mut m = match fail.remove("nofail-matches") {
                Some(V::Lines(l)) => Arc::unwrap_or_clone(l),
                _ => Vec::new(),
            };
            if let Some(V::Lines(l)) = fail.get("matches") {
                m.extend(l.iter().cloned());
            }
            if nf & 8 == 0 {
                // the last use of the matched lines: moved, not cloned
                m.append(&mut found.matched);
            }
            fail.insert("matches", V::Lines(Arc::new(m)));
        } else if nf & 3 == 1 {
            let mut m = match fail.get("nofail-matches") {
                Some(V::Lines(l)) => Vec::clone(l),
                _ => Vec::new(),
            };
            m.append(&mut found.matched);
            fail.insert("nofail-matches", V::Lines(Arc::new(m)));
        }
        // keep the cache entry in sync (Python shares the dict object;
        // here the two share it until one is changed)
        let fail = self.share(fail);
        if new_entry {
            // the entry it pushed out: its dict's allocations serve the
            // next dicts when nothing else holds it (a counting run)
            if let Some(old) = self.mlfid.set(mlfid.clone(), Some(fail.clone()), now) {
                self.reclaim(old);
            }
        } else if nf & 2 == 0 {
            self.mlfid.store(mlfid, Some(fail.clone()), now);
        }
        fail
    }

    fn find_failure(
        &mut self,
        tuple: TLine,
        date: Option<f64>,
        no_date: bool,
        facts: Facts,
        now: f64,
        out: &mut Vec<Failure>,
    ) {
        self.last_ignored_by = None;
        // what the line's facts say of the regexes' buffers: made of this
        // line alone (and a newline) in a single-line filter, else unknown
        let (ascii, one_line) = if self.max_lines <= 1 {
            (facts.ascii, facts.no_newline)
        } else {
            (false, false)
        };
        self.last_pref_matched = false;
        let raw_mode = self.use_dns == UseDns::Raw || self.return_raw_host;
        if self.max_lines <= 1 {
            self.line_buffer.clear();
        }
        self.line_buffer.push(tuple);
        let n = self.line_buffer.len();
        if n > self.max_lines.max(1) {
            self.line_buffer.drain(..n - self.max_lines.max(1));
        }
        // the current line is the last one of the buffer
        let time_text =
            |org: &[TLine]| org.last().map(|t| t.date().to_string()).unwrap_or_default();
        let mut buf: Option<Txt> = Some(lines_buf(&self.line_buffer));
        // the buffer as it was before a content replacement (moved out then,
        // cloned below otherwise)
        let mut org_moved: Option<Vec<TLine>> = None;
        if !self.ignore.is_empty() && self.ignore.len() + 2 < self.fail.len() {
            if let Some(i) = self.ignore_line(buf.as_deref().unwrap_or(""), None) {
                self.last_ignored_by = Some(i);
                return;
            }
        }
        // the prefregex's groups (without `content`), or its match to make
        // them from when a failregex matches (most lines match none)
        let mut pre_groups: Option<Fail> = Some(Fail::new());
        let mut pre_match: Option<(Txt, Spans)> = None;
        if let Some(p) = &self.pref {
            let Some(b) = buf.as_ref() else {
                return;
            };
            // the prefregex only yields groups: no matched/unmatched split
            let mut spans = std::mem::take(&mut self.pref_spans);
            if !p
                .re
                .search_probed(b, &Probe::known(b, ascii, one_line), &mut spans)
            {
                self.pref_spans = spans;
                return;
            }
            self.last_pref_matched = true;
            // the spans to make the groups from (with the buffer, below)
            let mut keep_spans = None;
            let repl = if self.keep_pref_groups || !p.alt.is_empty() || !p.tuple.is_empty() {
                let mut g = p.groups(b, &spans);
                if self.keep_pref_groups {
                    self.last_pref_groups = Some(g.clone());
                }
                let r = g.remove("content");
                pre_groups = Some(g);
                self.pref_spans = spans;
                r
            } else {
                let r = p
                    .content
                    .and_then(|i| spans.get(i))
                    .map(|(x, y)| V::S(b.slice(x, y)));
                pre_groups = None;
                keep_spans = Some(spans);
                r
            };
            let content = match repl {
                Some(V::S(r)) if !r.is_empty() => Some(r),
                _ => None,
            };
            if let Some(sp) = keep_spans {
                // the buffer is replaced by the content: moved, not shared
                let pb = if content.is_some() {
                    buf.take()
                } else {
                    buf.clone()
                };
                match pb {
                    Some(pb) => pre_match = Some((pb, sp)),
                    None => self.pref_spans = sp,
                }
            }
            if let Some(r) = content {
                let mut lines = std::mem::take(&mut self.spare_lines);
                // the new buffer, `lines_buf` of the one content line
                buf = Some(r.clone().into_with_newline());
                lines.push(TLine::content(r));
                org_moved = Some(std::mem::replace(&mut self.line_buffer, lines));
            }
        }
        let org: Vec<TLine> = match org_moved {
            Some(o) => o,
            None => self.line_buffer.clone(),
        };
        // the failregexes the buffer's first byte lets through (one table
        // lookup per buffer instead of a gate check per failregex)
        if self.candidates.is_none() {
            self.candidates = candidate_table(&self.fail);
        }
        let mut cand: Option<u64> = None;
        // what the searches of this buffer learn of it once (ASCII)
        let mut probe: Option<Probe> = None;
        let mut spans = std::mem::take(&mut self.fail_spans);
        // the next failregex to consider
        let mut next = 0;
        while next < self.fail.len() {
            let mut idx = next;
            let b = match &mut buf {
                Some(b) => b,
                None => {
                    cand = None;
                    probe = None;
                    buf.insert(lines_buf(&self.line_buffer))
                }
            };
            let pr = probe.get_or_insert_with(|| Probe::known(b, ascii, one_line));
            if let Some(t) = &self.candidates {
                let m = *cand.get_or_insert_with(|| candidate_mask(t, b, pr));
                // straight to the next candidate for this buffer (it
                // changes only after a match, then the mask is made
                // again); none left: done
                let rest = m >> idx;
                if rest == 0 {
                    break;
                }
                idx += rest.trailing_zeros() as usize;
            }
            // (without the table, more than 64 failregexes, each search's
            // own start-literal gate turns the buffer away)
            next = idx + 1;
            let hit = self.fail[idx].re.search_probed(b, pr, &mut spans);
            if !hit {
                continue;
            }
            let mut found = if self.lean && self.max_lines <= 1 {
                // one line: nothing unmatched; the matched one is not kept
                Found {
                    matched: Vec::new(),
                    unmatched: Vec::new(),
                }
            } else {
                self.fail[idx].found(&spans, b, &org)
            };
            if !self.ignore.is_empty() {
                if let Some(i) = self.ignore_line(b, Some(&found)) {
                    self.last_ignored_by = Some(i);
                    buf = None;
                    if !self.check_all_regex {
                        break;
                    }
                    continue;
                }
            }
            if no_date {
                self.warnings.push(format!(
                    "Found a match but no valid date/time found for {:?}.",
                    time_text(&org)
                ));
                if date.is_none() && self.check_find_time {
                    continue;
                }
            }
            // a counting run's verdict without the dict, when the match
            // leaves the mlfid cache as it is (see `quick_verdict`)
            if self.lean && self.max_lines <= 1 {
                let pre = match (&pre_groups, &pre_match, &self.pref) {
                    (None, Some((pb, psp)), Some(p)) => Some(Some((&**pb, psp, p))),
                    (Some(g), _, _) if g.0.is_empty() => Some(None),
                    _ => None,
                };
                let q =
                    pre.and_then(|pre| quick_verdict(&self.fail[idx], b, &spans, pre, raw_mode));
                // a live entry of its mlfid would be merged: the full path
                if let Some(q) = q.filter(|q| q.mlfid.is_none_or(|m| !self.mlfid.live(m, now))) {
                    let (mlfid, nofail, has_id) = (q.mlfid.is_some(), q.nofail, q.has_id);
                    if !self.check_all_regex {
                        self.line_buffer = std::mem::take(&mut found.unmatched);
                        buf = None;
                        if mlfid && nofail || !has_id && self.ignore_pending {
                            break;
                        }
                    }
                    out.push(Failure {
                        regex_index: idx,
                        id: None,
                        time: date,
                        time_is_int: self.date_int && date.is_some(),
                        data: self.empty.clone(),
                        nofail,
                    });
                    if !self.check_all_regex {
                        break;
                    }
                    continue;
                }
            }
            // Python: `fail = pre.copy(); fail.update(groups)`
            let fr = &self.fail[idx];
            let mut fail = if let (None, Some((pb, psp)), Some(p), true) = (
                &pre_groups,
                &pre_match,
                &self.pref,
                fr.alt.is_empty() && fr.tuple.is_empty(),
            ) {
                // the prefregex's groups (but `content`) and the
                // failregex's straight from their spans (no copy of a
                // dict of the prefregex's groups)
                let room = p.named + fr.named + 4;
                let mut merged = Fail(if self.spare_fail.capacity() >= room {
                    std::mem::take(&mut self.spare_fail)
                } else {
                    Vec::with_capacity(room)
                });
                for &(i, n) in &p.names {
                    if p.content == Some(i) {
                        continue;
                    }
                    let v = match psp.get(i) {
                        Some((x, y)) => V::S(pb.slice(x, y)),
                        None => V::Null,
                    };
                    merged.0.push((n, v));
                }
                let np = merged.0.len();
                merged.overlay(np, fr, b, &spans);
                merged
            } else {
                let pre_groups = pre_groups.get_or_insert_with(|| match (&pre_match, &self.pref) {
                    (Some((b, spans)), Some(p)) => {
                        let mut g = p.groups(b, spans);
                        g.remove("content");
                        g
                    }
                    _ => Fail::new(),
                });
                Self::merge_pre(pre_groups, fr, b, &spans)
            };
            if !self.check_all_regex || self.max_lines > 1 {
                self.line_buffer = std::mem::take(&mut found.unmatched);
                buf = None;
            }
            let mlfid = get_txt(&fail, "mlfid");
            let mut fail = if let Some(m) = &mlfid {
                let fail = self.merge_failure(m, fail, &mut found, now);
                if truthy(&fail, "nofail") && !self.check_all_regex {
                    break;
                }
                fail
            } else {
                if !self.lean {
                    // `fail["matches"] = fail.get("matches", []) + matched`
                    let mut m = match fail
                        .get_mut("matches")
                        .map(|v| std::mem::replace(v, V::Null))
                    {
                        Some(V::Lines(l)) => Arc::unwrap_or_clone(l),
                        _ => Vec::new(),
                    };
                    m.append(&mut found.matched);
                    fail.insert("matches", V::Lines(Arc::new(m)));
                }
                self.share(fail)
            };
            let mut fid = get_txt(&fail, "fid");
            let mut raw = raw_mode;
            // cidr: None = unspec; Some(-4/-10) = family restricted; Some(n) = prefix
            let mut cidr: Option<i64> = if raw_mode { Some(-2) } else { None };
            let mut ip = get_txt(&fail, "ip4");
            let cidr_of = |fail: &Fail, fam: i64| -> i64 {
                get_str(fail, "cidr")
                    .filter(|s| !s.is_empty())
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(fam)
            };
            if ip.is_some() {
                cidr = Some(cidr_of(&fail, -4));
                raw = true;
            } else {
                ip = get_txt(&fail, "ip6");
                if ip.is_some() {
                    cidr = Some(cidr_of(&fail, -10));
                    raw = true;
                } else {
                    ip = get_txt(&fail, "dns");
                    if ip.is_none() {
                        if fid.is_none() && mlfid.is_none() {
                            fid = ["fid", "ip4", "ip6", "dns"]
                                .iter()
                                .find_map(|g| get_txt(&fail, g));
                        }
                        ip = fid.clone();
                        raw = true;
                    }
                }
            }
            let defcidr_raw = raw_mode;
            // one id (`Ok`), or a host name's addresses
            let ids: Result<Option<Addr>, Vec<Addr>> = match ip {
                None => {
                    Arc::make_mut(&mut fail).insert("mlfpending", V::Int(1));
                    if let Some(m) = &mlfid {
                        if let Some(c) = self.mlfid.get(m, now) {
                            Arc::make_mut(c.get_or_insert_with(Default::default))
                                .insert("mlfpending", V::Int(1));
                        }
                    }
                    if !self.check_all_regex && self.ignore_pending {
                        break;
                    }
                    Ok(None)
                }
                // one id, not built
                Some(_) if raw && self.lean => Ok(None),
                Some(ip) if raw => {
                    let ipaddr = make_addr(&ip, cidr);
                    match &fid {
                        Some(f) if *f != ip => {
                            Arc::make_mut(&mut fail).insert("ip", V::Addr(ipaddr));
                            Ok(Some(if defcidr_raw {
                                Addr::raw(f.to_string())
                            } else {
                                make_addr(f, None)
                            }))
                        }
                        _ => Ok(Some(ipaddr)),
                    }
                }
                Some(ip) => Err(self.text_to_ip(&ip)),
            };
            // one failure per id; they share the fields (reference counts)
            let time_is_int = self.date_int && date.is_some();
            let nofail = nofail_of(&fail);
            let data = if self.lean {
                // nobody reads it: its allocations serve the next dict
                self.reclaim(fail);
                self.empty.clone()
            } else {
                fail
            };
            let failure = |id, data| Failure {
                regex_index: idx,
                id,
                time: date,
                time_is_int,
                data,
                nofail,
            };
            match ids {
                Ok(id) => out.push(failure(id, data)),
                Err(addrs) => {
                    for a in addrs {
                        out.push(failure(Some(a), data.clone()));
                    }
                }
            }
            if !self.check_all_regex {
                break;
            }
        }
        self.fail_spans = spans;
        let mut org = org;
        org.clear();
        self.spare_lines = org;
        if let Some((_, sp)) = pre_match {
            self.pref_spans = sp;
        }
    }

    /// `Arc::new(fail)`, in the spare `Arc` when there is one.
    fn share(&mut self, fail: Fail) -> Arc<Fail> {
        if let Some(mut a) = self.spare_arc.take() {
            if let Some(f) = Arc::get_mut(&mut a) {
                *f = fail;
                return a;
            }
        }
        Arc::new(fail)
    }

    /// An emptied dict vector, kept for the next dict if it is the larger.
    fn keep_spare(&mut self, mut v: Vec<(&'static str, V)>) {
        v.clear();
        if v.capacity() > self.spare_fail.capacity() {
            self.spare_fail = v;
        }
    }

    /// A dict nobody holds any more: its vector and `Arc` kept for the
    /// next dicts (a counting run's failures carry none).
    fn reclaim(&mut self, mut data: Arc<Fail>) {
        if let Some(f) = Arc::get_mut(&mut data) {
            let mut v = std::mem::take(&mut f.0);
            // the dict's texts are ranges of its line's buffer (and of
            // copies): the last one dropped may leave that buffer unheld
            if self.spare_buf.is_none() {
                let mut last = None;
                for (_, x) in v.drain(..) {
                    if let V::S(t) | V::User(t) = x {
                        last = Some(t);
                    }
                }
                self.spare_buf = last.and_then(Txt::into_line);
            }
            self.keep_spare(v);
            self.spare_arc = Some(data);
        }
    }

    /// Python's `fail = pre.copy(); fail.update(groups)` for failregex
    /// `fr` matched with `spans` on `b`.
    fn merge_pre(pre_groups: &Fail, fr: &FRegex, b: &Txt, spans: &Spans) -> Fail {
        if pre_groups.0.is_empty() {
            fr.groups(b, spans)
        } else if fr.alt.is_empty() && fr.tuple.is_empty() {
            // the failregex's groups straight into the copy (its
            // keys are distinct: only the prefregex's can be met again)
            let np = pre_groups.0.len();
            let mut merged = Fail(Vec::with_capacity(np + fr.named + 4));
            merged.0.extend(pre_groups.0.iter().cloned());
            merged.overlay(np, fr, b, spans);
            merged
        } else {
            let fail = fr.groups(b, spans);
            let np = pre_groups.0.len();
            let mut merged = Fail(Vec::with_capacity(np + fail.0.len() + 4));
            merged.0.extend(pre_groups.0.iter().cloned());
            for (k, v) in fail {
                match merged.0[..np].iter().position(|(n, _)| *n == k) {
                    Some(i) => merged.0[i].1 = v,
                    None => merged.0.push((k, v)),
                }
            }
            merged
        }
    }

    fn text_to_ip(&self, text: &str) -> Vec<Addr> {
        // IP_4_6_CRE full match (brackets allowed around IPv6)
        let t = text
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(text);
        if let Some(ip) = f2b_core::addr::parse_ip(t) {
            return vec![Addr::Ip(ip)];
        }
        if let Ok(a @ Addr::Ip(_)) = Addr::parse(text) {
            return vec![a];
        }
        if matches!(self.use_dns, UseDns::Yes | UseDns::Warn) {
            let ips = self.resolver.resolve(text);
            return ips.into_iter().map(Addr::Ip).collect();
        }
        Vec::new()
    }
}

/// What a caller knows of a line ([`Filter::process_read_line_into`]).
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    /// The line is all ASCII.
    ascii: bool,
    /// The line holds no newline.
    no_newline: bool,
}

/// A counting run's verdict on a failregex match, read from the spans (no
/// dict): see [`quick_verdict`].
struct Quick<'a> {
    /// The match's `mlfid` (not null).
    mlfid: Option<&'a str>,
    /// The failure's [`Failure::is_nofail`].
    nofail: bool,
    /// An `ip4`, `ip6`, `dns` or `fid` is set (else the failure is pending).
    has_id: bool,
}

/// What [`Filter::find_failure`] makes of failregex `fr`'s match (`spans`
/// on `b`, merged over the prefregex's: `pre`, its buffer, spans and
/// regex) in a counting run ([`Filter::lean`], single-line) when the match
/// would not change the mlfid cache: it has no `mlfid`, or it forgets its
/// `mlfid` (`mlfforget`) and the cache has no live entry for it (the
/// caller checks that). Only the keys of [`VerdictKey`] are read: the
/// merged dict's `nofail` (an `mlfgained` sets it when merged), whether
/// any id is set. `None` when the full path must run: `alt_`/`tuple_`
/// groups, a match that would store or merge (no `mlfforget`, or an
/// `mlfpending` group set), a host name to resolve.
fn quick_verdict<'a>(
    fr: &FRegex,
    b: &'a str,
    spans: &Spans,
    pre: Option<(&'a str, &Spans, &FRegex)>,
    raw_mode: bool,
) -> Option<Quick<'a>> {
    if !fr.alt.is_empty() || !fr.tuple.is_empty() {
        return None;
    }
    // a key's value in the merged dict: the failregex's group (null if it
    // did not take part) over the prefregex's; `None`: no such key
    let val = |k: VerdictKey| -> Option<Option<&'a str>> {
        if let Some(i) = fr.verdict_keys[k as usize] {
            return Some(spans.get(i).map(|(x, y)| &b[x..y]));
        }
        let (pb, psp, p) = pre?;
        let i = p.verdict_keys[k as usize]?;
        Some(psp.get(i).map(|(x, y)| &pb[x..y]))
    };
    let set = |k| matches!(val(k), Some(Some(_)));
    let truthy = |k| matches!(val(k), Some(Some(s)) if !s.is_empty());
    let mlfid = val(VerdictKey::Mlfid).flatten();
    let mut nofail = truthy(VerdictKey::Nofail);
    if mlfid.is_some() {
        if !truthy(VerdictKey::Mlfforget) || truthy(VerdictKey::Mlfpending) {
            return None;
        }
        nofail |= truthy(VerdictKey::Mlfgained);
    }
    let ip = set(VerdictKey::Ip4) || set(VerdictKey::Ip6);
    if !ip && set(VerdictKey::Dns) && !raw_mode {
        return None;
    }
    Some(Quick {
        mlfid,
        nofail,
        has_id: ip || set(VerdictKey::Dns) || set(VerdictKey::Fid),
    })
}

/// For each first byte of an all-ASCII buffer, the failregexes whose
/// first-byte gate ([`PyRegex::first_byte_gate`]) lets it through (bit `i`:
/// failregex `i`; a failregex without a gate is in every entry). `None`
/// with more than 64 failregexes.
fn candidate_table(fail: &[FRegex]) -> Option<Box<[u64; 256]>> {
    if fail.len() > 64 {
        return None;
    }
    let mut t = Box::new([0u64; 256]);
    for (i, r) in fail.iter().enumerate() {
        let gate = r.re.first_byte_gate();
        for (c, m) in t.iter_mut().enumerate() {
            if gate.is_none_or(|(first, _)| first[c]) {
                *m |= 1 << i;
            }
        }
    }
    Some(t)
}

/// The failregexes worth searching on `buf` (never empty: it ends with a
/// newline): the table's entry for its first byte if `buf` is all ASCII
/// (then every first-byte gate holds; `probe` is `buf`'s), else all.
fn candidate_mask(t: &[u64; 256], buf: &str, probe: &Probe) -> u64 {
    match buf.as_bytes().first() {
        Some(&c) if probe.ascii_of(buf) == Some(true) => t[usize::from(c)],
        _ => !0,
    }
}

/// `build` of every item, in order. A filter's failregexes (the stock sshd
/// filter has 22, each several KB once `<HOST>` is expanded) are checked and
/// translated on two threads when there are enough of them and two cores:
/// about half of a jail's start-up.
fn build_each<T: Send>(
    items: &[String],
    build: impl Fn(&str) -> Result<T, FilterError> + Sync,
) -> Vec<Result<T, FilterError>> {
    const MIN_PARALLEL: usize = 8;
    let two_cores = || std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    if items.len() < MIN_PARALLEL || !two_cores() {
        return items.iter().map(|r| build(r)).collect();
    }
    // Each thread takes the next regex not yet taken: their costs differ tenfold (a
    // stock sshd's halves took 7.1 M and 3.6 M instructions), so fixed halves leave
    // one thread waiting for the other.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(r) = items.get(i) else { break done };
            done.push((i, build(r)));
        }
    };
    let mut all = std::thread::scope(|sc| {
        let other = std::thread::Builder::new()
            .name("f2b-regex".into())
            .spawn_scoped(sc, work);
        let mut mine = work();
        // (no thread: this one took every item; a panic there is re-raised)
        if let Ok(h) = other {
            match h.join() {
                Ok(theirs) => mine.extend(theirs),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        mine
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// What the date detector found in a line: the half of `processLine` that
/// depends on the sequence of lines alone (not on what the regexes found).
#[derive(Debug, Clone)]
struct Detected {
    /// The date's span, if a template matched (it may be empty).
    span: Option<(usize, usize)>,
    /// The time of a non-empty span (`None` if it does not convert).
    time: Option<f64>,
    /// fail2ban would hold `time` as an `int`.
    is_int: bool,
    /// The line split at the span (or not split).
    tline: TLine,
}

/// Runs the date detector on `line`.
fn detect(dd: &mut DateDetector, ctx: &TimeCtx, line: &str, old: Option<TLine>) -> Detected {
    // the last used template is the anchored syslog one and takes the line
    if let Some((e, time, is_int)) = dd.detect_syslog(line, ctx) {
        return Detected {
            span: Some((0, e)),
            time,
            is_int,
            tline: TLine::split_reusing(line, 0, e, old),
        };
    }
    let Some(tm) = dd.match_time(line, ctx.now) else {
        return Detected {
            span: None,
            time: None,
            is_int: false,
            tline: TLine::split_reusing(line, 0, 0, old),
        };
    };
    let (s, e) = tm.span.unwrap_or((0, 0));
    let (time, is_int) = if s < e {
        (dd.get_time_memo(line, &tm, ctx), dd.time_is_int(&tm, ctx))
    } else {
        (None, false)
    };
    Detected {
        span: Some((s, e)),
        time,
        is_int,
        tline: TLine::split_reusing(line, s, e, old),
    }
}

/// `IPAddr(ip, cidr)`: cidr None = unspecified, -2 = raw, -4/-10 = family
/// restricted (IPv4/IPv6), n >= 0 = prefix length.
fn make_addr(ip: &str, cidr: Option<i64>) -> Addr {
    match cidr {
        Some(-2) => Addr::raw(ip),
        Some(n) if n >= 0 => {
            let t = ip
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(ip);
            match t.parse::<std::net::IpAddr>() {
                Ok(a) => {
                    let net = IpNet::new(a, n.min(255) as u8);
                    if net.is_single() {
                        Addr::Ip(net.addr())
                    } else {
                        Addr::Net(net)
                    }
                }
                Err(_) => Addr::raw(ip),
            }
        }
        Some(fam) => {
            use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
            // only the family asked for is tried
            let parsed = match fam {
                -4 => ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                -10 => ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
                _ => ip.parse::<IpAddr>().ok(),
            };
            match parsed {
                Some(a) => Addr::Ip(f2b_core::addr::normalize(a)),
                None => Addr::raw(ip),
            }
        }
        None => Addr::parse(ip).unwrap_or_else(|_| Addr::raw(ip)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_each_keeps_order_and_errors() {
        // Uneven costs (some items sleep), results and errors in the items' order.
        let items: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let out = build_each(&items, |s| {
            let n: usize = s.parse().unwrap();
            if n % 7 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if n % 5 == 3 {
                Err(FilterError::Empty {
                    option: "failregex",
                })
            } else {
                Ok(n)
            }
        });
        assert_eq!(out.len(), 40);
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(n) => assert_eq!(*n, i),
                Err(_) => assert_eq!(i % 5, 3),
            }
        }
    }

    fn flt(fr: &[&str]) -> Filter {
        let mut f = Filter::new(FilterSpec {
            failregex: fr.iter().map(|s| s.to_string()).collect(),
            usedns: UseDns::No,
            ..Default::default()
        })
        .unwrap();
        f.check_find_time = false;
        f
    }

    #[test]
    fn simple_host_match() {
        let mut f = flt(&[r"sshd: Failed password for <F-USER>\S+</F-USER> from <HOST>"]);
        let r = f.process_line(
            "Aug 14 11:59:59 sshd: Failed password for root from 192.0.2.1 port 22",
            1124013600.0,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].id.as_ref().map(|a| a.to_string()).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(r[0].field_str("user"), Some("root"));
        assert_eq!(r[0].match_count(), 1);
    }

    #[test]
    fn ipv6_normalised_and_cidr() {
        let mut f = flt(&[r"from <ADDR>$", r"net <SUBNET>$"]);
        let r = f.process_line("from 2001:DB8:0:0:0:0:0:1", 0.0);
        assert_eq!(r[0].id.as_ref().unwrap().to_string(), "2001:db8::1");
        let r = f.process_line("net 192.0.2.7/24", 0.0);
        assert_eq!(r[0].id.as_ref().unwrap().to_string(), "192.0.2.0/24");
    }

    #[test]
    fn no_failure_id_is_an_error() {
        let e = Filter::new(FilterSpec {
            failregex: vec!["^foo$".into()],
            ..Default::default()
        });
        assert!(matches!(e, Err(FilterError::NoFailureId { .. })));
    }

    #[test]
    fn many_failregexes_keep_their_order_and_first_error() {
        let mut fr: Vec<String> = (0..12).map(|i| format!(r"^r{i} <HOST>$")).collect();
        let f = Filter::new(FilterSpec {
            failregex: fr.clone(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.failregex(), fr);
        // a syntax error late, a missing failure id early: the early one
        fr[9] = "(unclosed <HOST>".into();
        fr[3] = "^no id here$".into();
        let e = Filter::new(FilterSpec {
            failregex: fr.clone(),
            ..Default::default()
        });
        assert!(matches!(e, Err(FilterError::NoFailureId { .. })), "{e:?}");
        fr[3] = "^r3 <HOST>$".into();
        let e = Filter::new(FilterSpec {
            failregex: fr,
            ..Default::default()
        });
        assert!(matches!(e, Err(FilterError::Regex { .. })), "{e:?}");
    }

    /// A filter of `fail` after prefregex `pref` with fail2ban-regex's
    /// settings (no find-time check, every failregex tried, pending
    /// failures kept), in UTC.
    fn test_filter<'a>(
        pref: &str,
        fail: impl IntoIterator<Item = &'a str>,
        usedns: UseDns,
    ) -> Filter {
        let mut f = Filter::new(FilterSpec {
            prefregex: Some(pref.into()),
            failregex: fail.into_iter().map(str::to_string).collect(),
            usedns,
            ..Default::default()
        })
        .unwrap();
        f.check_find_time = false;
        f.check_all_regex = true;
        f.ignore_pending = false;
        f.set_local_zone(TimeZone::UTC);
        f
    }

    /// The failregexes of [`mlf_filter`].
    const MLF_FAILREGEX: [&str; 5] = [
        r"^Failed \S+ for <F-USER>\S+</F-USER> from <HOST>",
        r"^<F-NOFAIL>Connect from</F-NOFAIL> <HOST>",
        r"^<F-MLFFORGET>Closed</F-MLFFORGET> by <HOST>",
        r"^<F-NOFAIL><F-MLFFORGET>Bye</F-MLFFORGET></F-NOFAIL> from <HOST>",
        r"^Pending user <F-USER>\S+</F-USER>$",
    ];

    /// A small sshd-shaped filter: mlfid from the prefix, NOFAIL and
    /// MLFFORGET helpers, a failure without a host (pending).
    fn mlf_filter(mlfid: bool) -> Filter {
        let pref = if mlfid {
            r"^<F-MLFID>\S+\s+d\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$"
        } else {
            r"^\S+\s+d\[\d+\]: <F-CONTENT>.+</F-CONTENT>$"
        };
        let fail = MLF_FAILREGEX
            .into_iter()
            .filter(|r| mlfid || !r.starts_with("^Pending"));
        test_filter(pref, fail, UseDns::No)
    }

    /// A deterministic pseudo-random sequence (an LCG's high bits).
    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        }
    }

    /// Log lines with `pids` distinct process ids (the mlfid), dates in
    /// the styles `style` picks from (0 syslog, 1 ISO, 2 none, 3 ISO after
    /// the host name: not at the line start, at a fixed offset; 4 the same
    /// one byte further).
    fn mlf_log(n: usize, pids: u64, seed: u64, style: impl Fn(usize) -> usize) -> Vec<String> {
        let mut next = lcg(seed);
        (0..n)
            .map(|i| {
                let pid = 1000 + next() % pids;
                let ip = format!("192.0.2.{}", next() % 200);
                let msg = match next() % 6 {
                    0 => format!("Failed password for u{} from {ip} port 22", next() % 5),
                    1 => format!("Connect from {ip}"),
                    2 => format!("Closed by {ip}"),
                    3 => format!("Bye from {ip}"),
                    4 => format!("Pending user u{}", next() % 5),
                    _ => "noise".to_string(),
                };
                let (m, s) = (i / 60 % 60, i % 60);
                match style(i) {
                    0 => format!("Jan  2 10:{m:02}:{s:02} h d[{pid}]: {msg}"),
                    1 => format!("2026-01-02 10:{m:02}:{s:02} h d[{pid}]: {msg}"),
                    3 => format!("h 2026-01-02 10:{m:02}:{s:02} d[{pid}]: {msg}"),
                    4 => format!("hh 2026-01-02 10:{m:02}:{s:02} d[{pid}]: {msg}"),
                    _ => format!("h d[{pid}]: {msg}"),
                }
            })
            .collect()
    }

    /// A filter that ran lines[..k] and absorbed a speculative filter that
    /// ran lines[k..] is the filter that ran all lines: same answers on
    /// every line, same date template hits, same answers afterwards (the
    /// state it took over: mlfid cache, detector, last date).
    #[test]
    fn absorbed_speculation_is_the_sequential_run() {
        // 2026-01-02 10:07:00 UTC: the dateless lines 400..420 follow dates
        // less than a minute old
        let now = 1_767_348_420.0;
        let cases: Vec<(&str, Vec<String>, bool)> = vec![
            ("syslog, many pids", mlf_log(900, 400, 1, |_| 0), true),
            ("syslog, few pids", mlf_log(900, 60, 2, |_| 0), true),
            ("syslog, cache churn", mlf_log(900, 150, 3, |_| 0), true),
            (
                "two date styles",
                mlf_log(900, 150, 4, |i| usize::from(i % 97 == 5)),
                true,
            ),
            (
                "dateless lines",
                mlf_log(900, 150, 5, |i| if i % 50 < 3 { 2 } else { 0 }),
                true,
            ),
            (
                "dateless start",
                mlf_log(900, 150, 6, |i| {
                    if i < 40 || (400..420).contains(&i) {
                        2
                    } else {
                        0
                    }
                }),
                true,
            ),
            // without mlfid: the last date decides (a chunk and its warm-up
            // in 400..700 have none, the line before has a recent one)
            (
                "dateless, no mlfid",
                mlf_log(900, 150, 7, |i| if (400..700).contains(&i) { 2 } else { 0 }),
                false,
            ),
            // a template not anchored at the line (its fast path reads the
            // last positions), then now and then a syslog line
            ("date after the host", mlf_log(900, 60, 8, |_| 3), true),
            // ... at another offset now and then (the fast path fails)
            (
                "date after the host, shifted",
                mlf_log(900, 60, 10, |i| if i % 50 == 7 { 4 } else { 3 }),
                true,
            ),
            (
                "date after the host, moved",
                mlf_log(900, 400, 9, |i| if i % 170 == 9 { 0 } else { 3 }),
                true,
            ),
        ];
        let mut absorbed = 0;
        let mut refused = 0;
        let mut per_case: Vec<(&str, usize)> = Vec::new();
        for (name, lines, mlfid) in &cases {
            let mlf_filter = || mlf_filter(*mlfid);
            let (body, tail) = lines.split_at(800);
            let mut seq = mlf_filter();
            let want: Vec<Vec<Failure>> = body.iter().map(|l| seq.process_line(l, now)).collect();
            for k in (10..800).step_by(37).chain([1, 399, 400, 401, 660, 799]) {
                let mut a = mlf_filter();
                let mut got: Vec<Vec<Failure>> =
                    body[..k].iter().map(|l| a.process_line(l, now)).collect();
                let mut b = mlf_filter();
                // a warm-up on the lines before the chunk (none for some)
                let warm = if k % 2 == 0 { k.min(150) } else { 0 };
                for l in &body[k - warm..k] {
                    b.process_line(l, now);
                }
                b.speculate();
                let rest: Vec<Vec<Failure>> =
                    body[k..].iter().map(|l| b.process_line(l, now)).collect();
                if !a.absorb(b) {
                    refused += 1;
                    continue;
                }
                absorbed += 1;
                match per_case.iter_mut().find(|(n, _)| n == name) {
                    Some(c) => c.1 += 1,
                    None => per_case.push((name, 1)),
                }
                got.extend(rest);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g, w, "{name}: split {k}, line {i}: {}", body[i]);
                }
                assert_eq!(
                    a.date_detector().template_hits(),
                    seq.date_detector().template_hits(),
                    "{name}: split {k}"
                );
                let mut seq2 = mlf_filter();
                for l in body {
                    seq2.process_line(l, now);
                }
                for l in tail {
                    assert_eq!(
                        a.process_line(l, now),
                        seq2.process_line(l, now),
                        "{name}: split {k}, after: {l}"
                    );
                }
                let keys = |f: &Filter| f.mlfid.keys().map(|k| k.to_string()).collect::<Vec<_>>();
                assert_eq!(keys(&a), keys(&seq2), "{name}: split {k}");
            }
        }
        eprintln!("absorbed {absorbed}, refused {refused}, by case {per_case:?}");
        // both outcomes are exercised
        assert!(
            absorbed > 40 && refused > 5,
            "absorbed {absorbed}, refused {refused}"
        );
    }

    /// The mlfid cache against a plain ordered list (fail2ban's `Cache`:
    /// insertion order kept on update, oldest out first when full, even for
    /// a key already there; expired entries dropped when read).
    #[test]
    fn mlfid_cache_is_a_fifo_with_expiry() {
        let mut c = MlfidCache::default();
        // (key, expiry) in insertion order
        let mut r: Vec<(String, f64)> = Vec::new();
        let mut x: u64 = 3;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = format!("k{}", (x >> 33) % 180);
            let now = (step / 50) as f64;
            match (x >> 20) % 4 {
                0 => {
                    c.unset(&k);
                    r.retain(|(n, _)| *n != k);
                }
                1 => {
                    let hit = c.get(&k, now).is_some();
                    let want = match r.iter().position(|(n, _)| *n == k) {
                        Some(i) if r[i].1 <= now => {
                            r.remove(i);
                            false
                        }
                        Some(_) => true,
                        None => false,
                    };
                    assert_eq!(hit, want, "step {step}");
                }
                _ => {
                    c.set(Txt::new(&k), None, now);
                    // full: the oldest go first, even when `k` is there
                    if r.len() >= 100 {
                        while !r.is_empty() {
                            let (_, exp) = r.remove(0);
                            if exp > now && r.len() < 100 {
                                break;
                            }
                        }
                    }
                    if let Some(i) = r.iter().position(|(n, _)| *n == k) {
                        r[i].1 = now + 300.0;
                    } else {
                        r.push((k.clone(), now + 300.0));
                    }
                }
            }
            let keys: Vec<&str> = c.keys().map(|t| &**t).collect();
            let want: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(keys, want, "step {step}");
            assert!(c.order.len() <= 4 * MlfidCache::MAX_COUNT + 1);
        }
    }

    /// A lean filter gives the same failures (regex, nofail) line by line.
    #[test]
    fn lean_counts_like_the_full_run() {
        let now = 1_767_348_420.0;
        for (seed, pids) in [(11, 40), (12, 400)] {
            let lines = mlf_log(2000, pids, seed, |i| if i % 300 < 4 { 2 } else { 0 });
            let (mut full, mut lean) = (mlf_filter(true), mlf_filter(true));
            lean.lean = true;
            for l in &lines {
                let sum = |v: Vec<Failure>| -> Vec<(usize, bool)> {
                    v.iter().map(|f| (f.regex_index, f.is_nofail())).collect()
                };
                let (a, b) = (full.process_line(l, now), lean.process_line(l, now));
                assert!(b.iter().all(|f| f.id.is_none() && f.match_count() == 0));
                assert_eq!(sum(a), sum(b), "{l}");
            }
        }
    }

    /// The counting run's verdict without a dict (`quick_verdict`) gives
    /// what the full run gives, line by line, over every way a match
    /// meets the mlfid cache: forget with and without a live entry,
    /// `mlfgained`, pending (no id), raw host names, no mlfid at all; with
    /// and without `checkAllRegex` and `ignorePending`.
    #[test]
    fn lean_quick_verdict_like_the_full_run() {
        let now = 1_767_348_420.0;
        let filter = |mlfid: bool, dns: UseDns, check_all: bool, ignore_pending: bool| {
            // (the text after the date starts with a space)
            let pref = if mlfid {
                r"^<F-MLFID>\s*\S+\s+d\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$"
            } else {
                r"^\s*\S+\s+d\[\d+\]: <F-CONTENT>.+</F-CONTENT>$"
            };
            // mlf_filter's, and forget with a gain, without a host, with a
            // host name, with a pending group
            let fail = MLF_FAILREGEX.into_iter().chain([
                r"^<F-MLFFORGET><F-MLFGAINED>Accepted \S+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>",
                r"^<F-MLFFORGET>Gone</F-MLFFORGET> <F-USER>\S+</F-USER>$",
                r"^<F-MLFFORGET>Lookup</F-MLFFORGET>(?: <F-NOFAIL>quiet</F-NOFAIL>)? from <HOST>",
                r"^(?:Connect|<F-NOFAIL><F-MLFFORGET>Bye</F-MLFFORGET></F-NOFAIL>) from (?P<mlfpending>\S+)$",
            ]);
            // without an mlfid, a failregex needs an id group
            let fail = fail.into_iter().filter(|r| mlfid || r.contains("<HOST>"));
            let mut f = test_filter(pref, fail, dns);
            f.check_all_regex = check_all;
            f.ignore_pending = ignore_pending;
            f.set_resolver(Arc::new(Hosts));
            f
        };
        // `hostN.example` has N addresses
        struct Hosts;
        impl Resolver for Hosts {
            fn resolve(&self, host: &str) -> Vec<std::net::IpAddr> {
                let n = host
                    .strip_prefix("host")
                    .and_then(|h| h.strip_suffix(".example"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0u8);
                (0..n)
                    .map(|i| std::net::IpAddr::from([198, 51, 100, i]))
                    .collect()
            }
        }
        for (seed, pids) in [(21u64, 15u64), (22, 400)] {
            let mut next = lcg(seed);
            let lines: Vec<String> = (0..3000)
                .map(|i| {
                    let pid = 1000 + next() % pids;
                    let ip = format!("192.0.2.{}", next() % 200);
                    let u = next() % 5;
                    let msg = match next() % 11 {
                        0 => format!("Failed password for u{u} from {ip} port 22"),
                        1 => format!("Connect from {ip}"),
                        2 => format!("Closed by {ip}"),
                        3 => format!("Bye from {ip}"),
                        4 => format!("Pending user u{u}"),
                        5 => format!("Accepted key for u{u} from {ip}"),
                        6 => format!("Gone u{u}"),
                        7 => format!("Lookup from host{u}.example"),
                        8 => format!("Lookup quiet from {ip}"),
                        9 => format!("Bye from x{u}"),
                        _ => "noise".to_string(),
                    };
                    let (m, s) = (i / 60 % 60, i % 60);
                    format!("Jan  2 10:{m:02}:{s:02} h d[{pid}]: {msg}")
                })
                .collect();
            for mlfid in [true, false] {
                for dns in [UseDns::No, UseDns::Raw, UseDns::Warn] {
                    for (check_all, ignore_pending) in
                        [(true, false), (false, false), (false, true), (true, true)]
                    {
                        let mut full = filter(mlfid, dns, check_all, ignore_pending);
                        let mut lean = filter(mlfid, dns, check_all, ignore_pending);
                        lean.lean = true;
                        let sum = |v: Vec<Failure>| -> Vec<(usize, bool)> {
                            v.iter().map(|f| (f.regex_index, f.is_nofail())).collect()
                        };
                        let mut hits = [0usize; 2];
                        for l in &lines {
                            let (a, b) = (full.process_line(l, now), lean.process_line(l, now));
                            for f in &b {
                                hits[usize::from(f.is_nofail())] += 1;
                            }
                            assert_eq!(
                                sum(a),
                                sum(b),
                                "{l} (mlfid {mlfid}, {dns:?}, all {check_all}, pending {ignore_pending})"
                            );
                            assert_eq!(full.line_buffer(), lean.line_buffer(), "{l}");
                        }
                        let keys = |f: &Filter| f.mlfid.keys().cloned().collect::<Vec<_>>();
                        assert_eq!(keys(&full), keys(&lean));
                        // failures and NOFAIL helpers both met, in numbers
                        // (without checkAllRegex a NOFAIL match with an
                        // mlfid ends the line with no failure)
                        assert!(hits[0] > 300, "{hits:?}");
                        assert!(hits[1] > 300 || mlfid && !check_all, "{hits:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn glob_flags() {
        assert_eq!(glob_to_local_flags("((?i)abc)"), "(?i:abc)");
        assert_eq!(glob_to_local_flags("(?:(?i)abc)"), "(?i:abc)");
    }
}
