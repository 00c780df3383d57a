//! Date detection: fail2ban's `DateDetector`, `DateTemplate`s and its
//! `strptime` variant (field regexes, `reGroupDictStrptime`), re-implemented.
//!
//! Beyond fail2ban, `%a %A %b %B` also accept German, French, Spanish and
//! Japanese names (e.g. `2月`, `Mär`, `févr.`), so logs written under those
//! locales are dated correctly.

mod civil;
mod epoch;
mod fast;
#[cfg(test)]
mod fast_tests;
mod set_regex_table;
mod syslog;

use crate::dialect::{DialectError, PyRegex, Spans};
use fast::{Found, Prog, Scratch};
use jiff::civil::DateTime;
/// Time zone type used for local-time conversion (re-exported from `jiff`).
pub use jiff::tz::TimeZone;
use std::sync::{Arc, OnceLock};

/// Errors building a date template or parsing a time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// `datepattern` could not be turned into a regex.
    #[error("failed to set datepattern {pattern:?} (may be an invalid format or unescaped percent char): {reason}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What went wrong.
        reason: String,
    },
    /// Unknown/unsupported `logtimezone`.
    #[error("unknown or unsupported time zone: {zone:?}")]
    TimeZone {
        /// The zone text.
        zone: String,
    },
    /// Regex compilation failed.
    #[error(transparent)]
    Regex(#[from] DialectError),
}

const MONTHS_ABBR: [&[&str]; 12] = [
    &["jan", "janv", "ene", "1月"],
    &["feb", "févr", "fev", "fév", "2月"],
    &["mar", "mär", "mrz", "mars", "3月"],
    &["apr", "avr", "abr", "4月"],
    &["may", "mai", "5月"],
    &["jun", "juin", "6月"],
    &["jul", "juil", "7月"],
    &["aug", "août", "aou", "ago", "8月"],
    &["sep", "sept", "9月"],
    &["oct", "okt", "10月"],
    &["nov", "11月"],
    &["dec", "dez", "déc", "dic", "12月"],
];
const MONTHS_FULL: [&[&str]; 12] = [
    &["january", "januar", "janvier", "enero", "一月"],
    &["february", "februar", "février", "febrero", "二月"],
    &["march", "märz", "mars", "marzo", "三月"],
    &["april", "avril", "abril", "四月"],
    &["may", "mai", "mayo", "五月"],
    &["june", "juni", "juin", "junio", "六月"],
    &["july", "juli", "juillet", "julio", "七月"],
    &["august", "août", "agosto", "八月"],
    &["september", "septembre", "septiembre", "setiembre", "九月"],
    &["october", "oktober", "octobre", "octubre", "十月"],
    &["november", "novembre", "noviembre", "十一月"],
    &["december", "dezember", "décembre", "diciembre", "十二月"],
];
// Monday first (Python's weekday numbering).
const DAYS_ABBR: [&[&str]; 7] = [
    &["mon", "mo", "lun", "月"],
    &["tue", "di", "mar", "火"],
    &["wed", "mi", "mer", "mié", "mie", "水"],
    &["thu", "do", "jeu", "jue", "木"],
    &["fri", "fr", "ven", "vie", "金"],
    &["sat", "sa", "sam", "sáb", "sab", "土"],
    &["sun", "so", "dim", "dom", "日"],
];
const DAYS_FULL: [&[&str]; 7] = [
    &["monday", "montag", "lundi", "lunes", "月曜日"],
    &["tuesday", "dienstag", "mardi", "martes", "火曜日"],
    &[
        "wednesday",
        "mittwoch",
        "mercredi",
        "miércoles",
        "miercoles",
        "水曜日",
    ],
    &["thursday", "donnerstag", "jeudi", "jueves", "木曜日"],
    &["friday", "freitag", "vendredi", "viernes", "金曜日"],
    &[
        "saturday",
        "samstag",
        "samedi",
        "sábado",
        "sabado",
        "土曜日",
    ],
    &["sunday", "sonntag", "dimanche", "domingo", "日曜日"],
];

/// Python's order first (exactly as `_strptime` builds it), then the extra
/// locales, longest first.
fn names_alt(english_order: &[&str], table: &[&[&str]]) -> String {
    let mut out: Vec<String> = english_order.iter().map(|s| s.to_string()).collect();
    let mut extra: Vec<&str> = table
        .iter()
        .flat_map(|v| v.iter().skip(1).copied())
        .filter(|s| !english_order.contains(s))
        .collect();
    extra.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
    extra.dedup();
    out.extend(extra.into_iter().map(|s| s.to_string()));
    out.join("|")
}

fn lookup_name(table: &[&[&str]], val: &str) -> Option<usize> {
    let v = val.to_lowercase();
    let v = v.trim_end_matches('.');
    table.iter().position(|names| names.contains(&v))
}

/// Year regex for `%ExY`, computed like fail2ban: 3-digit prefixes of
/// now-1, now+3 and every third year since 2000.
fn exy_regex(now_year: i32) -> String {
    let mut cents: Vec<String> = Vec::new();
    let mut add = |y: i32| {
        let s = format!("{:04}", y);
        let c = s[..3].to_string();
        if !cents.contains(&c) {
            cents.push(c);
        }
    };
    add(now_year - 1);
    add(now_year + 3);
    let mut y = 2000;
    while y <= now_year {
        add(y);
        y += 3;
    }
    cents.sort();
    format!("(?P<Y>(?:{})\\d)", cents.join("|"))
}

/// The table of `%` directives: (key, regex, name).
fn directive(key: &str, exy: &str) -> Option<(String, String)> {
    let alt_b = || {
        names_alt(
            &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            &MONTHS_ABBR,
        )
    };
    let r: String = match key {
        "%" => "%".into(),
        "A" => format!(
            "(?P<A>{})",
            names_alt(
                &[
                    "wednesday",
                    "thursday",
                    "saturday",
                    "tuesday",
                    "monday",
                    "friday",
                    "sunday"
                ],
                &DAYS_FULL
            )
        ),
        "B" => format!(
            "(?P<B>{})",
            names_alt(
                &[
                    "september",
                    "february",
                    "november",
                    "december",
                    "january",
                    "october",
                    "august",
                    "march",
                    "april",
                    "june",
                    "july",
                    "may"
                ],
                &MONTHS_FULL
            )
        ),
        "a" => format!(
            "(?P<a>{})",
            names_alt(
                &["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                &DAYS_ABBR
            )
        ),
        "b" => format!("(?P<b>{})", alt_b()),
        "ExH" => r"(?P<H>[0-1]\d|2[0-3])".into(),
        "ExM" => r"(?P<M>[0-5]\d)".into(),
        "ExS" => r"(?P<S>[0-5]\d|6[0-1])".into(),
        "ExY" => exy.into(),
        "ExZ" => r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)".into(),
        "Exd" => r"(?P<d>[1-2]\d|0[1-9]|3[0-1])".into(),
        "Exk" => r" ?(?P<H>[0-1]?\d|2[0-3])".into(),
        "Exl" => r" ?(?P<I>1[0-2]|\d)".into(),
        "Exm" => r"(?P<m>0[1-9]|1[0-2])".into(),
        "Exy" => r"(?P<y>\d{2})".into(),
        "Exz" => {
            r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)".into()
        }
        "G" => r"(?P<G>\d\d\d\d)".into(),
        "H" => r"(?P<H>[0-1]?\d|2[0-3])".into(),
        "I" => r"(?P<I>1[0-2]|0[1-9]|[1-9])".into(),
        "M" => r"(?P<M>[0-5]?\d)".into(),
        "S" => r"(?P<S>[0-5]?\d|6[0-1])".into(),
        "U" => r"(?P<U>5[0-3]|[0-4]\d|\d)".into(),
        "V" => r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)".into(),
        "W" => r"(?P<W>5[0-3]|[0-4]\d|\d)".into(),
        "X" => r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)".into(),
        "Y" => r"(?P<Y>\d{4})".into(),
        "Z" => r"(?P<Z>Z|[A-Z]{3,5})".into(),
        "c" => format!(
            r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>{})\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)",
            alt_b()
        ),
        "d" => r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])".into(),
        "f" => r"(?P<f>[0-9]{1,6})".into(),
        "j" => r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])".into(),
        "k" => r" ?(?P<H>[0-2]?\d)".into(),
        "l" => r" ?(?P<I>1?\d)".into(),
        "m" => r"(?P<m>0?[1-9]|1[0-2])".into(),
        "p" => r"(?P<p>am|pm|午前|午後)".into(),
        "u" => r"(?P<u>[1-7])".into(),
        "w" => r"(?P<w>[0-6])".into(),
        "x" => r"(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)"
            .into(),
        "y" => r"(?P<y>\d\d)".into(),
        "z" => r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)".into(),
        _ => return None,
    };
    let name = match key {
        "a" => "DAY",
        "A" => "DAYNAME",
        "b" => "MON",
        "B" => "MONTH",
        "d" => "Day",
        "H" => "24hour",
        "I" => "12hour",
        "j" => "Yearday",
        "m" => "Month",
        "M" => "Minute",
        "p" => "AMPM",
        "S" => "Second",
        "U" | "W" => "Yearweek",
        "w" => "Weekday",
        "y" => "Year2",
        "Y" => "Year",
        "%" => "%",
        "z" => "Zone offset",
        "f" => "Microseconds",
        "Z" => "Zone name",
        "Exz" => "ExZone offset",
        "ExZ" => "ExZone name",
        "ExS" => "ExSecond",
        "Exd" => "ExDay",
        "ExM" => "ExMinute",
        "Exm" => "ExMonth",
        "ExH" => "Ex24hour",
        "Exy" => "ExYear2",
        "ExY" => "ExYear",
        _ => "",
    };
    let name = if name.is_empty() {
        format!("%{key}")
    } else {
        name.to_string()
    };
    Some((r, name))
}

const LONG_KEYS: [&str; 12] = [
    "ExZ", "Exz", "Exd", "Exm", "ExH", "Exk", "Exl", "ExM", "ExS", "ExY", "Exy", "%",
];
const SHORT_KEYS: &str = "dfHIGjmMSUwuVyYzAaBbpZWcxXkl";

/// Expands `%` directives; returns (regex, name, has_alpha).
fn expand_pattern(pattern: &str, exy: &str) -> Result<(String, String, bool), String> {
    let mut regex = String::new();
    let mut name = String::new();
    let mut alpha = false;
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        regex.push_str(&rest[..i]);
        name.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let key = LONG_KEYS
            .iter()
            .find(|k| after.starts_with(*k))
            .map(|k| k.to_string())
            .or_else(|| {
                after
                    .chars()
                    .next()
                    .filter(|c| SHORT_KEYS.contains(*c))
                    .map(|c| c.to_string())
            });
        let Some(key) = key else {
            return Err("unsupported format character after '%'".into());
        };
        // RE_ALPHA_PATTERN: (?<!%)%[aAbBpc]
        let prev_pct = i > 0 && rest[..i].ends_with('%');
        if !prev_pct && matches!(key.as_str(), "a" | "A" | "b" | "B" | "p" | "c") {
            alpha = true;
        }
        let (r, n) = directive(&key, exy).ok_or("unknown directive")?;
        regex.push_str(&r);
        name.push_str(&n);
        rest = &after[key.len()..];
    }
    regex.push_str(rest);
    name.push_str(rest);
    Ok((regex, name, alpha))
}

/// One of `DateTemplate`'s own regexes (applied to patterns): the fast
/// matcher, the regex engine (built on first need) where it gives up.
struct MetaRe {
    src: &'static str,
    prog: Option<Prog>,
    re: OnceLock<PyRegex>,
}

impl MetaRe {
    fn new(src: &'static str) -> MetaRe {
        MetaRe {
            src,
            prog: Prog::new(src).ok(),
            re: OnceLock::new(),
        }
    }

    fn regex(&self) -> &PyRegex {
        self.re.get_or_init(|| match PyRegex::new(self.src, false) {
            Ok(r) => r,
            // These are fixed, tested patterns; a failure is a programming error.
            Err(e) => unreachable!("internal date meta regex {:?}: {e}", self.src),
        })
    }

    fn search_at(&self, s: &str, pos: usize, endpos: usize) -> Option<Spans> {
        if let Some(p) = &self.prog {
            let mut sc = Scratch::default();
            match p.search(s, pos, endpos, &mut sc) {
                Found::Yes => return Some(Groups::from_slots(&sc.caps, usize::MAX).to_spans()),
                Found::No => return None,
                Found::Bail => {}
            }
        }
        self.regex().search_at(s, pos, endpos)
    }

    fn search(&self, s: &str) -> Option<Spans> {
        self.search_at(s, 0, s.len())
    }
}

struct Meta {
    grouped: MetaRe,
    group: MetaRe,
    globalflags: MetaRe,
    no_wrd_beg: MetaRe,
    no_wrd_end: MetaRe,
    del_wrd: MetaRe,
    line_beg: MetaRe,
    line_end: MetaRe,
    epoch: MetaRe,
    exsanc: MetaRe,
    exeanc: MetaRe,
}

const META_SOURCES: [&str; 11] = [
    r"(?<!(?:\(\?))(?<!\\)\((?!\?)",
    r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$",
    r"((?:^|(?!<\\))\(\?[a-z]+\))",
    r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)",
    r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$",
    r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$",
    r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))",
    r"(?<![\\\|])(?:\$\)?)$",
    r"(?i)(?<!\\)\{L?EPOCH\}",
    r"^\((?:\?:)?\^\|\\b\|\\W\)",
    r"\(\?=\\b\|\\W\|\$\)$",
];

fn meta() -> &'static Meta {
    static M: OnceLock<Meta> = OnceLock::new();
    M.get_or_init(|| {
        let [grouped, group, globalflags, no_wrd_beg, no_wrd_end, del_wrd, line_beg, line_end, epoch, exsanc, exeanc] =
            META_SOURCES.map(MetaRe::new);
        Meta {
            grouped,
            group,
            globalflags,
            no_wrd_beg,
            no_wrd_end,
            del_wrd,
            line_beg,
            line_end,
            epoch,
            exsanc,
            exeanc,
        }
    })
}

/// `re.sub(pattern, repl, s, count)` with a closure replacement.
fn py_sub(re: &MetaRe, s: &str, count: usize, f: impl Fn(&str, &Spans) -> String) -> String {
    let mut out = String::new();
    let mut pos = 0;
    let mut last = 0;
    let mut n = 0;
    while pos <= s.len() {
        if count > 0 && n >= count {
            break;
        }
        let Some(sp) = re.search_at(s, pos, s.len()) else {
            break;
        };
        let (a, b) = sp.whole();
        out.push_str(&s[last..a]);
        out.push_str(&f(s, &sp));
        last = b;
        n += 1;
        pos = if b == a {
            // advance one char on empty match
            match s[b..].chars().next() {
                Some(c) => {
                    if b < s.len() {
                        out.push(c);
                    }
                    last = b + c.len_utf8();
                    b + c.len_utf8()
                }
                None => s.len() + 1,
            }
        } else {
            b
        };
    }
    if last <= s.len() {
        out.push_str(&s[last..]);
    }
    out
}

/// Template flag: anchored at line begin.
pub const LINE_BEGIN: u8 = 8;
/// Template flag: anchored at line end.
pub const LINE_END: u8 = 4;
/// Template flag: word-begin boundary.
pub const WORD_BEGIN: u8 = 2;
/// Template flag: word-end boundary.
pub const WORD_END: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pattern,
    Epoch { long: bool, grp: usize },
    Tai64n,
}

/// Rewrites the `(?P<a>..)`, `(?P<A>..)`, `(?P<b>..)`, `(?P<B>..)` name
/// alternations (plain words joined by `|`) as a trie: `mar|mars|may` becomes
/// `ma(?:r(?:|s)|y)`. Leftmost-first priority is kept: only alternatives
/// that cannot both match at one position (different first letters,
/// case-insensitively) change places, and an empty alternative keeps its
/// place. The capture-engine work per line drops (one branch per letter
/// instead of one per name); anything unexpected is left as is.
fn factor_name_groups(regex: &str) -> String {
    let mut out = String::with_capacity(regex.len());
    let mut rest = regex;
    while let Some(p) = rest.find("(?P<") {
        let head = &rest[p..];
        let open_len = "(?P<b>".len();
        let is_name =
            head.len() > open_len && matches!(head.get(4..6), Some("a>" | "A>" | "b>" | "B>"));
        let body_end = if is_name {
            head[open_len..].find(')')
        } else {
            None
        };
        let factored = body_end.and_then(|e| {
            let body = &head[open_len..open_len + e];
            let words: Vec<&str> = body.split('|').collect();
            let plain = words.iter().all(|w| w.chars().all(char::is_alphanumeric));
            plain
                .then(|| factor_words(&words))
                .flatten()
                .map(|f| (f, e))
        });
        match factored {
            Some((f, e)) => {
                out.push_str(&rest[..p + open_len]);
                out.push_str(&f);
                rest = &rest[p + open_len + e..];
            }
            None => {
                out.push_str(&rest[..p + 4]);
                rest = &rest[p + 4..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The trie of an ordered word list (see [`factor_name_groups`]); `None`
/// if two different letters with the same lowercase would start siblings.
fn factor_words(words: &[&str]) -> Option<String> {
    let mut alts: Vec<String> = Vec::new();
    // segments between empty words keep their order around the empty one
    let mut segment: Vec<&str> = Vec::new();
    let flush = |segment: &mut Vec<&str>, alts: &mut Vec<String>| -> Option<()> {
        let mut groups: Vec<(char, Vec<&str>)> = Vec::new();
        for w in segment.drain(..) {
            let c = w.chars().next()?;
            match groups
                .iter_mut()
                .find(|(g, _)| g.to_lowercase().eq(c.to_lowercase()))
            {
                Some((g, v)) if *g == c => v.push(&w[c.len_utf8()..]),
                Some(_) => return None,
                None => groups.push((c, vec![&w[c.len_utf8()..]])),
            }
        }
        for (c, rest) in groups {
            let mut a = c.to_string();
            if let [one] = rest[..] {
                a.push_str(one);
            } else {
                a.push_str("(?:");
                a.push_str(&factor_words(&rest)?);
                a.push(')');
            }
            alts.push(a);
        }
        Some(())
    };
    let mut seen_empty = false;
    for &w in words {
        if w.is_empty() {
            if seen_empty {
                continue;
            }
            seen_empty = true;
            flush(&mut segment, &mut alts)?;
            alts.push(String::new());
        } else if !segment.contains(&w) {
            segment.push(w);
        }
    }
    flush(&mut segment, &mut alts)?;
    Some(alts.join("|"))
}

/// One date template (fail2ban's `DateTemplate` subclasses).
#[derive(Debug)]
pub struct Template {
    /// Display name (e.g. `{^LN-BEG}ExYear(?P<_sep>[-/.])Month...`).
    pub name: String,
    /// The original pattern (for pattern templates).
    pub pattern: Option<String>,
    /// Final regex.
    pub regex: String,
    /// LINE_BEGIN | LINE_END | WORD_BEGIN | WORD_END.
    pub flags: u8,
    /// Weight (100 for the anchored copies of default templates).
    pub weight: f64,
    kind: Kind,
    /// The regex engine's form, built on first need (default templates) or
    /// at construction (user patterns, so errors surface there).
    re: OnceLock<Option<PyRegex>>,
    /// The fast matcher, built on first use; `None` if the pattern is
    /// outside its subset.
    fast: OnceLock<Option<Prog>>,
    /// Named groups the date conversion reads: (group index, key).
    fields: OnceLock<Vec<(usize, String)>>,
    /// The group indexes of `fields` keyed `z` or `Z` (a zone).
    zone_fields: OnceLock<Vec<usize>>,
    /// Group layout if this is the syslog default template.
    syslog: OnceLock<Option<syslog::Shape>>,
    /// The line-begin epoch template (`epoch::recognize` reads its stamps).
    epoch_ln_beg: bool,
}

/// `DateTemplate.setRegex`: returns (regex, flags, name-prefix-needed).
/// `DateTemplate.setRegex`: the template regex with fail2ban's word and
/// line boundaries, its flags, and whether the name gets `{^LN-BEG}`.
///
/// The default templates' answers are in a generated table
/// (`date/set_regex_table.rs`, checked by a test): they are the same in
/// every process, and computing them with the meta regexes costs ~4.7 M
/// instructions of a filter's first build (a server's start-up path).
fn set_regex(regex: &str, word_begin: WordBegin, word_end: bool) -> (String, u8, bool) {
    #[cfg(test)]
    if let Some(r) = set_regex_table::record(regex, word_begin, word_end) {
        return r;
    }
    set_regex_table::lookup(regex, word_begin as u8, word_end, exy())
        .unwrap_or_else(|| set_regex_computed(regex, word_begin, word_end))
}

fn set_regex_computed(regex: &str, word_begin: WordBegin, word_end: bool) -> (String, u8, bool) {
    let m = meta();
    let mut regex = regex.trim().to_string();
    let gf = m.globalflags.search(&regex).map(|sp| {
        let (a, b) = sp.get(1).unwrap_or((0, 0));
        regex[a..b].to_string()
    });
    if gf.is_some() {
        regex = py_sub(&m.globalflags, &regex, 1, |_, _| String::new());
    }
    let bound_begin = word_begin != WordBegin::No && m.no_wrd_beg.search(&regex).is_none();
    let bound_end = word_end && m.no_wrd_end.search(&regex).is_none();
    if m.grouped.search(&regex).is_none() {
        regex = py_sub(&m.group, &regex, 0, |s, sp| {
            let g = |i| sp.get(i).map(|(a, b)| &s[a..b]).unwrap_or("");
            format!("{}({}){}", g(1), g(2), g(3))
        });
    }
    let mut flags = 0u8;
    let mut prefix_name = false;
    if bound_begin {
        if word_begin != WordBegin::Start {
            flags |= WORD_BEGIN;
            regex = format!(r"(?=^|\b|\W){regex}");
        } else {
            flags |= LINE_BEGIN;
            regex = format!(r"^(?:\W{{0,2}})?{regex}");
            prefix_name = true;
        }
    }
    if bound_end {
        flags |= WORD_END;
        regex.push_str(r"(?=\b|\W|$)");
    }
    if flags & LINE_BEGIN == 0 && m.line_beg.search(&regex).is_some() {
        flags |= LINE_BEGIN;
    }
    if flags & LINE_END == 0 && m.line_end.search(&regex).is_some() {
        flags |= LINE_END;
    }
    regex = py_sub(&m.del_wrd, &regex, 0, |s, sp| {
        let (a, b) = sp.whole();
        s[a..b].replace("**", "")
    });
    if let Some(gf) = gf {
        regex = format!("{gf}{regex}");
    }
    (regex, flags, prefix_name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordBegin {
    No = 0,
    Yes = 1,
    Start = 2,
}

fn now_year() -> i32 {
    let now = jiff::Timestamp::now();
    now.to_zoned(TimeZone::UTC).year() as i32
}

fn exy() -> &'static str {
    static E: OnceLock<String> = OnceLock::new();
    E.get_or_init(|| exy_regex(now_year()))
}

impl Template {
    fn compile(
        name: String,
        pattern: Option<String>,
        regex: String,
        flags: u8,
        kind: Kind,
        eager: bool,
    ) -> Result<Template, DateError> {
        let t = Template::lazy(name, pattern, regex, flags, kind);
        if !eager {
            return Ok(t);
        }
        let re = t.build_re().map_err(|e| DateError::Pattern {
            pattern: t.pattern.clone().unwrap_or_else(|| t.name.clone()),
            reason: e.to_string(),
        })?;
        let _ = t.re.set(Some(re));
        Ok(t)
    }

    /// A template whose regex is compiled on first use (the default
    /// templates: their patterns are fixed and tested to compile).
    fn lazy(name: String, pattern: Option<String>, regex: String, flags: u8, kind: Kind) -> Self {
        let epoch_ln_beg = matches!(
            kind,
            Kind::Epoch {
                long: false,
                grp: 1
            }
        ) && regex == epoch::LN_BEG_REGEX;
        Template {
            epoch_ln_beg,
            name,
            pattern,
            regex,
            flags,
            weight: 1.0,
            kind,
            re: OnceLock::new(),
            fast: OnceLock::new(),
            fields: OnceLock::new(),
            zone_fields: OnceLock::new(),
            syslog: OnceLock::new(),
        }
    }

    fn build_re(&self) -> Result<PyRegex, DialectError> {
        // the name alternations are compiled factored (a trie), shown as is
        PyRegex::new(&factor_name_groups(&self.regex), false)
    }

    /// The regex engine's form (`None`: it does not compile, never matches).
    fn re(&self) -> Option<&PyRegex> {
        self.re.get_or_init(|| self.build_re().ok()).as_ref()
    }

    /// The fast matcher, if the pattern is within its subset.
    fn prog(&self) -> Option<&Prog> {
        self.fast
            .get_or_init(|| Prog::new(&factor_name_groups(&self.regex)).ok())
            .as_ref()
    }

    /// Group names by index (index 0 = whole match).
    fn names(&self) -> &[Option<String>] {
        if let Some(p) = self.prog() {
            return p.names();
        }
        self.re().map(|r| r.names()).unwrap_or(&[])
    }

    fn syslog(&self) -> Option<syslog::Shape> {
        *self.syslog.get_or_init(|| match self.kind {
            Kind::Pattern => syslog::Shape::of(self.pattern.as_deref(), self.names()),
            _ => None,
        })
    }

    /// The canonical syslog stamp at the line start, read directly.
    fn find_syslog(&self, line: &str, endpos: usize) -> Option<Groups> {
        let sh = self.syslog()?;
        let endpos = endpos.min(line.len());
        if !line.is_char_boundary(endpos) {
            return None;
        }
        let st = syslog::recognize(&line.as_bytes()[..endpos])?;
        Some(Groups::Syslog(sh, st))
    }

    /// A line-begin epoch stamp, read directly: groups 0 and 1 span it,
    /// `square` is unset.
    fn find_epoch(&self, line: &str, endpos: usize) -> Option<Groups> {
        if !self.epoch_ln_beg {
            return None;
        }
        let endpos = endpos.min(line.len());
        if !line.is_char_boundary(endpos) || endpos >= usize::from(NO_POS) {
            return None;
        }
        let end = epoch::recognize(&line.as_bytes()[..endpos])? as u16;
        let mut v = [(NO_POS, NO_POS); INLINE_SLOTS];
        v[0] = (0, end);
        v[1] = (0, end);
        Some(Groups::Inline { n: 3, v })
    }

    /// `getDate` of the syslog template without a year, weekday or
    /// fraction: the fields read from their spans.
    fn syslog_date(&self, line: &str, g: &Groups, ctx: &TimeCtx) -> Option<Option<f64>> {
        let sh = self.syslog()?;
        if let Groups::Syslog(_, st) = g {
            let p = Parsed {
                year: None,
                month: Some(i32::from(st.month)),
                day: Some(i32::from(st.day)),
                hour: i32::from(st.hour),
                minute: i32::from(st.minute),
                second: i32::from(st.second),
                tzoffset: None,
                weekday: None,
                julian: None,
                week_of_year: None,
            };
            return Some(convert_fields(p, ctx));
        }
        if g.get(sh.a.into()).is_some()
            || g.get(sh.f.into()).is_some()
            || g.get(sh.y.into()).is_some()
        {
            return None;
        }
        let field = |i: u8| g.get(i.into()).and_then(|(a, b)| line.as_bytes().get(a..b));
        let month = syslog::english_month(field(sh.b)?)?;
        let num = |i: u8| field(i).and_then(syslog::small_int);
        let p = Parsed {
            year: None,
            month: Some(month),
            day: Some(num(sh.d)?),
            hour: num(sh.h)?,
            minute: num(sh.m)?,
            second: num(sh.s)?,
            tzoffset: None,
            weekday: None,
            julian: None,
            week_of_year: None,
        };
        Some(convert_fields(p, ctx))
    }

    fn fields(&self) -> &[(usize, String)] {
        self.fields.get_or_init(|| {
            self.names()
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.clone().map(|n| (i, n)))
                .collect()
        })
    }

    /// `matchDate` through the fast matcher, the regex engine settling what
    /// the fast one cannot.
    fn find(&self, line: &str, pos: usize, endpos: usize, sc: &mut Scratch) -> Option<Groups> {
        self.find_with(line, pos, endpos, sc, true)
    }

    fn find_with(
        &self,
        line: &str,
        pos: usize,
        endpos: usize,
        sc: &mut Scratch,
        fast: bool,
    ) -> Option<Groups> {
        if fast && pos == 0 {
            if let Some(g) = self.find_syslog(line, endpos) {
                return Some(g);
            }
            if let Some(g) = self.find_epoch(line, endpos) {
                return Some(g);
            }
        }
        if let Some(p) = self.prog().filter(|_| fast) {
            match p.search(line, pos, endpos, sc) {
                Found::Yes => return Some(Groups::from_slots(&sc.caps, line.len())),
                Found::No => return None,
                Found::Bail => {}
            }
        }
        self.match_date(line, pos, endpos).map(Groups::Spans)
    }

    /// `DatePatternRegex(pattern)`.
    pub fn from_pattern(pattern: &str) -> Result<Template, DateError> {
        Template::from_pattern_with(pattern, true)
    }

    fn from_pattern_with(pattern: &str, eager: bool) -> Result<Template, DateError> {
        let mut p = pattern.to_string();
        let mut wb = WordBegin::Yes;
        let mut we = true;
        if let Some(r) = p.strip_prefix("{UNB}") {
            p = r.to_string();
            wb = WordBegin::No;
            we = false;
        }
        if wb != WordBegin::No {
            if let Some(r) = p.strip_prefix("{^LN-BEG}") {
                p = r.to_string();
                wb = WordBegin::Start;
            }
        }
        let (mut regex, mut name, alpha) =
            expand_pattern(&p, exy()).map_err(|reason| DateError::Pattern {
                pattern: pattern.to_string(),
                reason,
            })?;
        if alpha {
            regex = format!("(?iu){regex}");
        }
        let (regex, flags, prefix) = set_regex(&regex, wb, we);
        if prefix && !name.starts_with("{^LN-BEG}") {
            name = format!("{{^LN-BEG}}{name}");
        }
        Template::compile(
            name,
            Some(pattern.to_string()),
            regex,
            flags,
            Kind::Pattern,
            eager,
        )
    }

    /// `DateEpoch`.
    pub fn epoch(
        line_begin_only: bool,
        pattern: Option<&str>,
        long: bool,
    ) -> Result<Template, DateError> {
        Template::epoch_with(line_begin_only, pattern, long, true)
    }

    fn epoch_with(
        line_begin_only: bool,
        pattern: Option<&str>,
        long: bool,
        eager: bool,
    ) -> Result<Template, DateError> {
        let mut name = match (pattern, long) {
            (Some(p), _) => p.to_string(),
            (None, true) => "LongEpoch".to_string(),
            (None, false) => "Epoch".to_string(),
        };
        let epoch_re = if long {
            r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
        } else {
            r"\d{10,11}\b(?:\.\d{3,6})?"
        };
        let (regex, flags, grp, prefix) = if let Some(p) = pattern {
            let sub = py_sub(&meta().epoch, p, 0, |_, _| format!("({epoch_re})"));
            let (r, f, pf) = set_regex(&format!("({sub})"), WordBegin::Yes, true);
            (r, f, 2, pf)
        } else if !line_begin_only {
            let r = r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))%s)(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))".replace("%s", epoch_re);
            let (r, f, pf) = set_regex(&r, WordBegin::No, true);
            (r, f, 1, pf)
        } else {
            let r = format!(r"((?P<square>(?<=^\[))?{epoch_re})(?(square)(?=\]))");
            let (r, f, pf) = set_regex(&r, WordBegin::Start, true);
            (r, f, 1, pf)
        };
        if prefix && !name.starts_with("{^LN-BEG}") {
            name = format!("{{^LN-BEG}}{name}");
        }
        Template::compile(
            name,
            pattern.map(str::to_string),
            regex,
            flags,
            Kind::Epoch { long, grp },
            eager,
        )
    }

    /// `DateTai64n`.
    pub fn tai64n(start: bool) -> Result<Template, DateError> {
        Template::tai64n_with(start, true)
    }

    fn tai64n_with(start: bool, eager: bool) -> Result<Template, DateError> {
        let (regex, flags, prefix) = set_regex(
            "@[0-9a-f]{24}",
            if start {
                WordBegin::Start
            } else {
                WordBegin::No
            },
            true,
        );
        let name = if prefix { "{^LN-BEG}TAI64N" } else { "TAI64N" };
        Template::compile(name.to_string(), None, regex, flags, Kind::Tai64n, eager)
    }

    /// `_getPatternTemplate(pattern)`.
    pub fn from_spec(pattern: &str) -> Result<Template, DateError> {
        Template::from_spec_with(pattern, true)
    }

    /// `eager = false`: the regex is compiled on first use (fixed patterns
    /// known to compile: the default templates).
    fn from_spec_with(pattern: &str, eager: bool) -> Result<Template, DateError> {
        let key = if pattern.contains('%') {
            pattern.to_string()
        } else {
            pattern.to_uppercase()
        };
        if key.contains("EPOCH") {
            if meta().epoch.search(pattern).is_some() {
                return Template::epoch_with(false, Some(pattern), key.contains("LEPOCH"), eager);
            }
            match key.as_str() {
                "EPOCH" | "{^LN-BEG}EPOCH" | "^EPOCH" => {
                    return Template::epoch_with(key != "EPOCH", None, false, eager)
                }
                "LEPOCH" | "{^LN-BEG}LEPOCH" | "^LEPOCH" => {
                    return Template::epoch_with(key != "LEPOCH", None, true, eager)
                }
                _ => {}
            }
        }
        match key.as_str() {
            "TAI64N" | "{^LN-BEG}TAI64N" | "^TAI64N" => {
                Template::tai64n_with(key != "TAI64N", eager)
            }
            _ => Template::from_pattern_with(pattern, eager),
        }
    }

    /// `matchDate(line, pos, endpos)`.
    pub fn match_date(&self, line: &str, pos: usize, endpos: usize) -> Option<Spans> {
        self.re()?.search_at(line, pos, endpos)
    }

    /// `matchDate` through the fast matcher when it can decide (same spans
    /// as [`Template::match_date`]).
    pub fn match_date_fast(&self, line: &str, pos: usize, endpos: usize) -> Option<Spans> {
        let mut sc = Scratch::default();
        self.find(line, pos, endpos, &mut sc).map(|g| g.to_spans())
    }

    /// Group 1 span (the date text) of a match.
    pub fn date_span(&self, sp: &Spans) -> Option<(usize, usize)> {
        sp.get(1)
    }

    /// True if fail2ban would produce a Python `int` (not `float`) for this
    /// match: TAI64N, or a pattern date with an explicit/default zone
    /// (`calendar.timegm`). Only affects textual output (`-o <time>`).
    pub fn date_is_int(&self, sp: &Spans, ctx: &TimeCtx) -> bool {
        self.groups_is_int(&Groups::Spans(sp.clone()), ctx)
    }

    fn groups_is_int(&self, g: &Groups, ctx: &TimeCtx) -> bool {
        if let Groups::Syslog(..) = g {
            // the syslog template (a pattern) has no zone group
            return ctx.default_tz.is_some();
        }
        match self.kind {
            Kind::Tai64n => true,
            Kind::Epoch { .. } => false,
            Kind::Pattern => {
                ctx.default_tz.is_some()
                    || self
                        .zone_fields
                        .get_or_init(|| {
                            self.fields()
                                .iter()
                                .filter(|(_, n)| matches!(n.as_str(), "z" | "Z"))
                                .map(|(i, _)| *i)
                                .collect()
                        })
                        .iter()
                        .any(|i| g.get(*i).is_some())
            }
        }
    }

    /// `getDate`: the Unix time of a match.
    pub fn get_date(&self, line: &str, sp: &Spans, ctx: &TimeCtx) -> Option<f64> {
        self.groups_date(line, &Groups::Spans(sp.clone()), ctx)
    }

    fn groups_date(&self, line: &str, sp: &Groups, ctx: &TimeCtx) -> Option<f64> {
        match self.kind {
            Kind::Tai64n => {
                let (a, b) = sp.get(1)?;
                let v = line.get(a..b)?;
                let secs = v.get(2..17)?;
                i64::from_str_radix(secs, 16).ok().map(|x| x as f64)
            }
            Kind::Epoch { long, grp } => {
                let (a, b) = sp.get(grp)?;
                let v = line.get(a..b)?;
                let f: f64 = epoch::parse_decimal(v.as_bytes()).or_else(|| v.parse().ok())?;
                if long && v.len() >= 13 {
                    if v.len() >= 16 && !v.contains('.') {
                        Some(f / 1_000_000.0)
                    } else {
                        Some(f / 1000.0)
                    }
                } else {
                    Some(f)
                }
            }
            Kind::Pattern => {
                if let Some(r) = self.syslog_date(line, sp, ctx) {
                    return r;
                }
                let mut buf: [(&str, &str); 24] = [("", ""); 24];
                let mut n = 0;
                let mut more: Vec<(&str, &str)> = Vec::new();
                for (i, key) in self.fields() {
                    if let Some((a, b)) = sp.get(*i) {
                        let f = (key.as_str(), line.get(a..b)?);
                        if n < buf.len() {
                            buf[n] = f;
                            n += 1;
                        } else {
                            if more.is_empty() {
                                more.extend_from_slice(&buf);
                            }
                            more.push(f);
                        }
                    }
                }
                if more.is_empty() {
                    strptime_fields(&buf[..n], ctx)
                } else {
                    strptime_fields(&more, ctx)
                }
            }
        }
    }
}

/// Time context for date conversion: "now" and the zones.
#[derive(Debug, Clone)]
pub struct TimeCtx {
    /// Current Unix time (fail2ban's `MyTime.time()`).
    pub now: f64,
    /// Local zone used for `time.mktime` (default: the system zone).
    pub local: Arc<TimeZone>,
    /// `logtimezone` as a fixed offset in minutes.
    pub default_tz: Option<i32>,
}

fn tz_abbr_offset(abbr: &str) -> Option<i32> {
    const TZ: &[(f64, &str)] = &[
        (-12.0, "Y"),
        (-11.0, "X NUT SST"),
        (-10.0, "W CKT HAST HST TAHT TKT"),
        (-9.0, "V AKST GAMT GIT HADT HNY"),
        (-8.0, "U AKDT CIST HAY HNP PST PT"),
        (-7.0, "T HAP HNR MST PDT"),
        (-6.0, "S CST EAST GALT HAR HNC MDT"),
        (-5.0, "R CDT COT EASST ECT EST ET HAC HNE PET"),
        (-4.0, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
        (
            -3.0,
            "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT",
        ),
        (-2.0, "O BRST FNT PMDT UYST WGST"),
        (-1.0, "N AZOT CVT EGT"),
        (0.0, "Z EGST GMT UTC WET WT"),
        (1.0, "A CET DFT WAT WEDT WEST"),
        (2.0, "B CAT CEDT CEST EET SAST WAST"),
        (3.0, "C EAT EEDT EEST IDT MSK"),
        (4.0, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
        (
            5.0,
            "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT",
        ),
        (6.0, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
        (7.0, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
        (
            8.0,
            "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST",
        ),
        (9.0, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
        (10.0, "K AEST ChST PGT VLAT YAKST YAPT"),
        (11.0, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
        (
            12.0,
            "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT",
        ),
        (13.0, "FJST NZDT"),
        (11.5, "NFT"),
        (10.5, "ACDT LHST"),
        (9.5, "ACST"),
        (6.5, "CCT MMT"),
        (5.75, "NPT"),
        (5.5, "SLT"),
        (4.5, "AFT IRDT"),
        (3.5, "IRST"),
        (-2.5, "HAT NDT"),
        (-3.5, "HNT NST NT"),
        (-4.5, "HLV VET"),
        (-9.5, "MART MIT"),
    ];
    if abbr.is_empty() {
        return Some(0);
    }
    // later lines win in Python's dict (none overlap in practice)
    let mut found = None;
    for (off, names) in TZ {
        if names.split(' ').any(|n| n == abbr) {
            found = Some((off * 60.0) as i32);
        }
    }
    found
}

/// `validateTimeZone` / `zone2offset`: parses `CET`, `UTC+0200`, `-04:00`...
/// into minutes east of UTC.
pub fn zone_offset(tz: &str) -> Result<i32, DateError> {
    let err = || DateError::TimeZone {
        zone: tz.to_string(),
    };
    // FIXED_OFFSET_TZ_RE: ([A-Z](?:[A-Z]{2,4})?)?([+-][01]\d(?::?\d{2})?)?$  (match at start)
    let b = tz.as_bytes();
    let mut i = 0;
    let mut abbr_end = 0;
    if b.first().is_some_and(|c| c.is_ascii_uppercase()) {
        let mut j = 1;
        while j < b.len() && j < 5 && b[j].is_ascii_uppercase() {
            j += 1;
        }
        // abbreviation is 1 or 3..=5 letters
        if j == 2 {
            j = 1;
        }
        abbr_end = j;
        i = j;
    }
    let abbr = &tz[..abbr_end];
    let rest = &tz[i..];
    let rest = rest.strip_suffix('\n').unwrap_or(rest);
    let off = if rest.is_empty() {
        0
    } else {
        let rb = rest.as_bytes();
        let sign = match rb[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(err()),
        };
        if rb.len() < 3 || !(rb[1] == b'0' || rb[1] == b'1') || !rb[2].is_ascii_digit() {
            return Err(err());
        }
        let hh: i32 = rest[1..3].parse().map_err(|_| err())?;
        let mm_part = &rest[3..];
        let mm_part = mm_part.strip_prefix(':').unwrap_or(mm_part);
        let mm: i32 = match mm_part.len() {
            0 if rest.len() == 3 => 0,
            2 if mm_part.bytes().all(|c| c.is_ascii_digit()) => {
                mm_part.parse().map_err(|_| err())?
            }
            _ => return Err(err()),
        };
        if rest.len() <= 3 {
            sign * hh * 60
        } else {
            sign * (hh * 60 + mm)
        }
    };
    let base = tz_abbr_offset(abbr).ok_or_else(err)?;
    Ok(base + off)
}

fn local_to_unix(dt: DateTime, tz: &TimeZone) -> Option<f64> {
    tz.to_timestamp(dt).ok().map(|t| t.as_second() as f64)
}

/// `lookup_name` without allocating for ASCII text.
fn lookup_name_fast(table: &[&[&str]], val: &str) -> Option<usize> {
    let v = val.trim_end_matches('.');
    if !v.is_ascii() || v.len() > 16 {
        return lookup_name(table, val);
    }
    let mut buf = [0u8; 16];
    for (d, c) in buf.iter_mut().zip(v.bytes()) {
        *d = c.to_ascii_lowercase();
    }
    let lv = &buf[..v.len()];
    table.iter().position(|names| {
        names.iter().any(|n| {
            let n = n.as_bytes();
            n.len() == lv.len() && n.iter().zip(lv).all(|(a, b)| a == b)
        })
    })
}

/// `reGroupDictStrptime`: converts the named strptime fields into Unix time.
///
/// Integer civil arithmetic with cached zone windows: no allocation and no
/// zone look-up per call in the common case (results are those of the jiff
/// based conversion, which a property test checks).
pub fn strptime_fields(fields: &[(&str, &str)], ctx: &TimeCtx) -> Option<f64> {
    let mut year: Option<i32> = None;
    let mut month: Option<i32> = None;
    let mut day: Option<i32> = None;
    let (mut hour, mut minute, mut second) = (0i32, 0i32, 0i32);
    let mut tzoffset: Option<i32> = None;
    let mut weekday: Option<i32> = None;
    let mut julian: Option<i32> = None;
    let mut week_of_year: Option<(i32, bool)> = None;
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let int = |v: &str| v.trim().parse::<i32>().ok();
    for (key, val) in fields {
        match *key {
            "y" => {
                let mut y = int(val)?;
                if y <= 2000 {
                    y += 2000;
                }
                year = Some(y);
            }
            "Y" => year = Some(int(val)?),
            "m" => month = Some(int(val)?),
            "B" => month = Some(lookup_name_fast(&MONTHS_FULL, val)? as i32 + 1),
            "b" => month = Some(lookup_name_fast(&MONTHS_ABBR, val)? as i32 + 1),
            "d" => day = Some(int(val)?),
            "H" => hour = int(val)?,
            "I" => {
                hour = int(val)?;
                let ampm = get("p").unwrap_or("");
                let is = |s: &str| ampm.to_lowercase() == s;
                if ampm.is_empty() || is("am") || ampm == "午前" {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if (is("pm") || ampm == "午後") && hour != 12 {
                    hour += 12;
                }
            }
            "M" => minute = int(val)?,
            "S" => second = int(val)?,
            "A" => weekday = Some(lookup_name_fast(&DAYS_FULL, val)? as i32),
            "a" => weekday = Some(lookup_name_fast(&DAYS_ABBR, val)? as i32),
            "w" => {
                let mut w = int(val)? - 1;
                if w < 0 {
                    w = 6;
                }
                weekday = Some(w);
            }
            "j" => julian = Some(int(val)?),
            "U" => week_of_year = Some((int(val)?, false)),
            "W" => week_of_year = Some((int(val)?, true)),
            "z" | "Z" => {
                let z = *val;
                tzoffset = Some(if z == "Z" || z == "UTC" || z == "GMT" {
                    0
                } else {
                    zone_offset(z).ok()?
                });
            }
            _ => {}
        }
    }
    convert_fields(
        Parsed {
            year,
            month,
            day,
            hour,
            minute,
            second,
            tzoffset,
            weekday,
            julian,
            week_of_year,
        },
        ctx,
    )
}

/// The fields of a date as `reGroupDictStrptime` has them after parsing.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    year: Option<i32>,
    month: Option<i32>,
    day: Option<i32>,
    hour: i32,
    minute: i32,
    second: i32,
    tzoffset: Option<i32>,
    weekday: Option<i32>,
    julian: Option<i32>,
    week_of_year: Option<(i32, bool)>,
}

/// The second half of `reGroupDictStrptime`: year/day inference, zones.
fn convert_fields(p: Parsed, ctx: &TimeCtx) -> Option<f64> {
    let Parsed {
        year,
        mut month,
        mut day,
        hour,
        minute,
        second,
        mut tzoffset,
        weekday,
        mut julian,
        week_of_year,
    } = p;
    // `MyTime.time()` as local civil seconds (looked up once)
    let now_cell: std::cell::Cell<Option<Option<i64>>> = std::cell::Cell::new(None);
    let snap_cell: std::cell::Cell<Option<civil::Snap>> = std::cell::Cell::new(None);
    let snap = || match snap_cell.get() {
        Some(s) => s,
        None => {
            let s = civil::snapshot(&ctx.local);
            snap_cell.set(Some(s));
            s
        }
    };
    let now_local = || match now_cell.get() {
        Some(n) => n,
        None => {
            let n = snap().local_civil(&ctx.local, ctx.now.floor() as i64);
            now_cell.set(Some(n));
            n
        }
    };
    let mut assume_year = false;
    let mut year = match year {
        Some(y) => y,
        None => {
            assume_year = true;
            civil::civil_from_days(now_local()?.div_euclid(civil::DAY)).0 as i32
        }
    };
    if month.is_none() || day.is_none() {
        if julian.is_none() {
            if let (Some((w, monday_first)), Some(wd)) = (week_of_year, weekday) {
                // _calc_julian_from_U_or_W
                let first = jiff::civil::Date::new(year as i16, 1, 1).ok()?;
                let mut first_wd = first.weekday().to_monday_zero_offset() as i32;
                if !monday_first {
                    first_wd = (first_wd + 1) % 7;
                }
                let wd2 = if !monday_first { (wd + 1) % 7 } else { wd };
                let week_0_length = (7 - first_wd) % 7;
                julian = Some(if w == 0 {
                    1 + wd2 - first_wd
                } else {
                    week_0_length + (7 * (w - 1)) + wd2 + 1
                });
            }
        }
        if let Some(j) = julian {
            let d = jiff::civil::Date::new(year as i16, 1, 1)
                .ok()?
                .checked_add(jiff::Span::new().days((j - 1) as i64))
                .ok()?;
            year = d.year() as i32;
            month = Some(d.month() as i32);
            day = Some(d.day() as i32);
        }
    }
    let mut assume_today = false;
    let (month, day) = match (month, day) {
        (None, None) => {
            assume_today = true;
            let n = now_local()?;
            let (_, m, d) = civil::civil_from_days(n.div_euclid(civil::DAY));
            (m as i32, d as i32)
        }
        (m, d) => (m?, d?),
    };
    // `datetime(...)`: the field widths of jiff's civil DateTime
    let valid = |y: i64, mo: i64, d: i64| {
        (-9999..=9999).contains(&y)
            && (1..=12).contains(&mo)
            && d >= 1
            && d <= civil::days_in_month(y, mo)
    };
    let (y, mo, d) = (
        i64::from(year as i16),
        i64::from(month as i8),
        i64::from(day as i8),
    );
    let (h, mi, s) = (
        i64::from(hour as i8),
        i64::from(minute as i8),
        i64::from(second as i8),
    );
    if !valid(y, mo, d)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=59).contains(&s)
    {
        return None;
    }
    let in_range = |c: i64| (civil::CIVIL_MIN..=civil::CIVIL_MAX).contains(&c);
    let mut dt = civil::civil_secs(y, mo, d, h, mi, s);
    if tzoffset.is_none() {
        tzoffset = ctx.default_tz;
    }
    if let Some(off) = tzoffset {
        dt -= i64::from(off) * 60;
        if !in_range(dt) {
            return None;
        }
    }
    if assume_today {
        let n = now_local()?;
        if dt > n {
            dt -= civil::DAY;
            if !in_range(dt) {
                return None;
            }
        }
    }
    if assume_year {
        let n = now_local()? + civil::DAY;
        if !in_range(n) {
            return None;
        }
        if dt > n {
            // date_result.replace(year=year-1, month=month, day=day)
            let tod = dt.rem_euclid(civil::DAY);
            let y1 = i64::from((year - 1) as i16);
            if !valid(y1, mo, d) {
                return None;
            }
            dt = civil::days_from_civil(y1, mo, d) * civil::DAY + tod;
        }
    }
    if tzoffset.is_some() {
        return (civil::TS_MIN..=civil::TS_MAX)
            .contains(&dt)
            .then_some(dt as f64);
    }
    if let Some(t) = snap().local_to_unix(&ctx.local, dt) {
        return Some(t as f64);
    }
    let (yy, mm, dd) = civil::civil_from_days(dt.div_euclid(civil::DAY));
    let tod = dt.rem_euclid(civil::DAY);
    let dtj = DateTime::new(
        yy as i16,
        mm as i8,
        dd as i8,
        (tod / 3600) as i8,
        (tod / 60 % 60) as i8,
        (tod % 60) as i8,
        0,
    )
    .ok()?;
    local_to_unix(dtj, &ctx.local)
}

#[cfg(test)]
fn unix_to_local(t: f64, tz: &TimeZone) -> Option<DateTime> {
    let ts = jiff::Timestamp::from_second(t.floor() as i64).ok()?;
    Some(tz.to_datetime(ts))
}

/// The jiff-based conversion the fast one is checked against (tests).
#[cfg(test)]
fn strptime_fields_reference(fields: &[(&str, &str)], ctx: &TimeCtx) -> Option<f64> {
    let mut year: Option<i32> = None;
    let mut month: Option<i32> = None;
    let mut day: Option<i32> = None;
    let (mut hour, mut minute, mut second) = (0i32, 0i32, 0i32);
    let mut tzoffset: Option<i32> = None;
    let mut weekday: Option<i32> = None;
    let mut julian: Option<i32> = None;
    let mut week_of_year: Option<(i32, bool)> = None;
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let int = |v: &str| v.trim().parse::<i32>().ok();
    for (key, val) in fields {
        match *key {
            "y" => {
                let mut y = int(val)?;
                if y <= 2000 {
                    y += 2000;
                }
                year = Some(y);
            }
            "Y" => year = Some(int(val)?),
            "m" => month = Some(int(val)?),
            "B" => month = Some(lookup_name(&MONTHS_FULL, val)? as i32 + 1),
            "b" => month = Some(lookup_name(&MONTHS_ABBR, val)? as i32 + 1),
            "d" => day = Some(int(val)?),
            "H" => hour = int(val)?,
            "I" => {
                hour = int(val)?;
                let ampm = get("p").unwrap_or("").to_lowercase();
                if ampm.is_empty() || ampm == "am" || ampm == "午前" {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if (ampm == "pm" || ampm == "午後") && hour != 12 {
                    hour += 12;
                }
            }
            "M" => minute = int(val)?,
            "S" => second = int(val)?,
            "A" => weekday = Some(lookup_name(&DAYS_FULL, val)? as i32),
            "a" => weekday = Some(lookup_name(&DAYS_ABBR, val)? as i32),
            "w" => {
                let mut w = int(val)? - 1;
                if w < 0 {
                    w = 6;
                }
                weekday = Some(w);
            }
            "j" => julian = Some(int(val)?),
            "U" => week_of_year = Some((int(val)?, false)),
            "W" => week_of_year = Some((int(val)?, true)),
            "z" | "Z" => {
                let z = *val;
                tzoffset = Some(if z == "Z" || z == "UTC" || z == "GMT" {
                    0
                } else {
                    zone_offset(z).ok()?
                });
            }
            _ => {}
        }
    }
    let now_local = || unix_to_local(ctx.now, &ctx.local);
    let mut assume_year = false;
    let mut year = match year {
        Some(y) => y,
        None => {
            assume_year = true;
            now_local()?.year() as i32
        }
    };
    if month.is_none() || day.is_none() {
        if julian.is_none() {
            if let (Some((w, monday_first)), Some(wd)) = (week_of_year, weekday) {
                // _calc_julian_from_U_or_W
                let first = jiff::civil::Date::new(year as i16, 1, 1).ok()?;
                let mut first_wd = first.weekday().to_monday_zero_offset() as i32;
                if !monday_first {
                    first_wd = (first_wd + 1) % 7;
                }
                let wd2 = if !monday_first { (wd + 1) % 7 } else { wd };
                let week_0_length = (7 - first_wd) % 7;
                julian = Some(if w == 0 {
                    1 + wd2 - first_wd
                } else {
                    week_0_length + (7 * (w - 1)) + wd2 + 1
                });
            }
        }
        if let Some(j) = julian {
            let d = jiff::civil::Date::new(year as i16, 1, 1)
                .ok()?
                .checked_add(jiff::Span::new().days((j - 1) as i64))
                .ok()?;
            year = d.year() as i32;
            month = Some(d.month() as i32);
            day = Some(d.day() as i32);
        }
    }
    let mut assume_today = false;
    let (month, day) = match (month, day) {
        (None, None) => {
            assume_today = true;
            let n = now_local()?;
            (n.month() as i32, n.day() as i32)
        }
        (m, d) => (m?, d?),
    };
    let mut dt = DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        minute as i8,
        second as i8,
        0,
    )
    .ok()?;
    if tzoffset.is_none() {
        tzoffset = ctx.default_tz;
    }
    if let Some(off) = tzoffset {
        dt = dt.checked_sub(jiff::Span::new().minutes(off as i64)).ok()?;
    }
    if assume_today {
        let n = now_local()?;
        if dt > n {
            dt = dt.checked_sub(jiff::Span::new().days(1)).ok()?;
        }
    }
    if assume_year {
        let n = now_local()?;
        if dt > n.checked_add(jiff::Span::new().days(1)).ok()? {
            // date_result.replace(year=year-1, month=month, day=day)
            dt = DateTime::new(
                (year - 1) as i16,
                month as i8,
                day as i8,
                dt.hour(),
                dt.minute(),
                dt.second(),
                0,
            )
            .ok()?;
        }
    }
    if tzoffset.is_some() {
        Some(dt.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second() as f64)
    } else {
        local_to_unix(dt, &ctx.local)
    }
}

/// Default template patterns (fail2ban `DateDetectorCache.DEFAULT_TEMPLATES`).
pub const DEFAULT_TEMPLATES: [&str; 17] = [
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

/// The shared, compiled default template list: anchored copies first
/// (weight 100), then the originals — fail2ban's `DateDetectorCache`.
/// (all default templates incl. anchored copies, the plain ones).
type TemplateLists = (Vec<Arc<Template>>, Vec<Arc<Template>>);

fn default_templates() -> &'static TemplateLists {
    static D: OnceLock<TemplateLists> = OnceLock::new();
    D.get_or_init(build_default_templates)
}

/// Builds the shared default templates now instead of at their first use (a filter
/// without a `datepattern`, or with `{^LN-BEG}`/`{DEFAULT}`): the server calls this on a
/// side thread while it reads its configuration, so the first filter's build does not
/// wait for them.
pub fn prewarm_default_templates() {
    let _ = default_templates();
}

fn build_default_templates() -> TemplateLists {
    {
        let mut anchored = Vec::new();
        let mut plain = Vec::new();
        for p in DEFAULT_TEMPLATES {
            let Ok(t) = Template::from_spec_with(p, false) else {
                continue;
            };
            if !t.name.starts_with("{^LN-BEG}") && !t.name.starts_with('^') {
                let anchored_t = match &t.pattern {
                    Some(pat) if t.kind == Kind::Pattern => {
                        Template::from_spec_with(&format!("{{^LN-BEG}}{pat}"), false)
                    }
                    _ => Template::from_spec_with(&format!("{{^LN-BEG}}{}", t.name), false),
                };
                if let Ok(mut a) = anchored_t {
                    if a.name != t.name {
                        a.weight = 100.0;
                        anchored.push(Arc::new(a));
                    }
                }
            }
            plain.push(Arc::new(t));
        }
        let all: Vec<Arc<Template>> = anchored.into_iter().chain(plain.iter().cloned()).collect();
        (all, plain)
    }
}

struct DdTemplate {
    t: Arc<Template>,
    hits: u64,
    last_used: f64,
    distance: usize,
}

impl DdTemplate {
    fn weight(&self) -> f64 {
        self.hits as f64 * self.t.weight / (self.distance.max(1) as f64)
    }
}

const INLINE_SLOTS: usize = 16;
const NO_POS: u16 = u16::MAX;

/// The group spans of one template match, kept inline (no allocation) for
/// up to 16 groups on lines shorter than 64 KiB.
#[derive(Debug, Clone)]
enum Groups {
    Inline {
        n: u8,
        v: [(u16, u16); INLINE_SLOTS],
    },
    Spans(Spans),
    /// A canonical syslog stamp read by `syslog::recognize`.
    Syslog(syslog::Shape, syslog::Stamp),
}

impl Groups {
    fn from_slots(caps: &[usize], len: usize) -> Groups {
        let n = caps.len() / 2;
        if n <= INLINE_SLOTS && len < NO_POS as usize {
            let mut v = [(NO_POS, NO_POS); INLINE_SLOTS];
            for (g, slot) in v.iter_mut().enumerate().take(n) {
                let (a, b) = (caps[2 * g], caps[2 * g + 1]);
                if a != usize::MAX && b != usize::MAX {
                    *slot = (a as u16, b as u16);
                }
            }
            return Groups::Inline { n: n as u8, v };
        }
        Groups::Spans(Spans(
            (0..n)
                .map(|g| {
                    let (a, b) = (caps[2 * g], caps[2 * g + 1]);
                    (a != usize::MAX && b != usize::MAX).then_some((a, b))
                })
                .collect(),
        ))
    }

    fn get(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            Groups::Inline { n, v } => {
                if i >= usize::from(*n) || v[i].0 == NO_POS {
                    None
                } else {
                    Some((v[i].0 as usize, v[i].1 as usize))
                }
            }
            Groups::Spans(s) => s.get(i),
            Groups::Syslog(sh, st) => {
                let span = match i {
                    0 | 1 => (0, usize::from(st.end)),
                    _ if i == usize::from(sh.b) => (0, 3),
                    _ if i == usize::from(sh.d) => (4, 6),
                    _ if i == usize::from(sh.h) => (7, 9),
                    _ if i == usize::from(sh.m) => (10, 12),
                    _ if i == usize::from(sh.s) => (13, 15),
                    _ => return None,
                };
                Some(span)
            }
        }
    }

    fn whole(&self) -> (usize, usize) {
        self.get(0).unwrap_or((0, 0))
    }

    fn to_spans(&self) -> Spans {
        match self {
            Groups::Inline { n, .. } => Spans((0..usize::from(*n)).map(|i| self.get(i)).collect()),
            Groups::Syslog(..) => Spans((0..10).map(|i| self.get(i)).collect()),
            Groups::Spans(s) => s.clone(),
        }
    }
}

/// Result of [`DateDetector::match_time`].
#[derive(Debug, Clone)]
pub struct TimeMatch {
    /// Index of the template in the detector (after reordering).
    pub template: usize,
    /// Span of the date text (group 1).
    pub span: Option<(usize, usize)>,
    groups: Groups,
}

impl TimeMatch {
    /// All groups of the template match (index 0 = whole match).
    pub fn groups(&self) -> Spans {
        self.groups.to_spans()
    }
}

/// fail2ban's `DateDetector`: an ordered template list with hit-based
/// reordering and last-position caching.
pub struct DateDetector {
    templates: Vec<DdTemplate>,
    known: std::collections::HashSet<String>,
    unused_time: f64,
    last_pos: (usize, Option<char>, Option<char>),
    last_end_pos: (usize, Option<char>, Option<char>),
    last_idx: usize,
    first_unused: usize,
    /// `logtimezone` offset in minutes.
    pub default_tz: Option<i32>,
    scratch: Scratch,
    /// False: the regex engine only (tests compare the two paths).
    fast: bool,
    /// What a speculative run (see [`DateDetector::speculate`]) matched.
    trace: Option<DateTrace>,
    /// The minute of the last syslog stamp converted: its fields (second 0),
    /// the context (the zone held, so that its address stays its own) and
    /// its times.
    memo: Option<(SyslogKey, Arc<TimeZone>, MinuteMemo, syslog::Head)>,
}

/// The times of a minute's syslog stamps.
#[derive(Debug, Clone, Copy)]
enum MinuteMemo {
    /// Second `s` is at `t0 + s` (or no second has a time).
    Linear(Option<f64>),
    /// Not linear (a zone change or the year boundary inside): the one
    /// second converted last.
    Second(u8, Option<f64>),
}

impl MinuteMemo {
    /// The time of `second` if this memo holds it (`Some(None)`: no time).
    fn time(self, second: u8) -> Option<Option<f64>> {
        match self {
            MinuteMemo::Linear(t0) => Some(t0.map(|t| t + f64::from(second))),
            MinuteMemo::Second(s, t) => (s == second).then_some(t),
        }
    }
}

/// What the time of a canonical syslog stamp depends on (with the zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SyslogKey {
    fields: [u8; 5],
    now: u64,
    default_tz: Option<i32>,
}

impl SyslogKey {
    /// The stamp of the minute's second 0.
    #[inline]
    fn stamp(&self) -> syslog::Stamp {
        let [month, day, hour, minute, second] = self.fields;
        syslog::Stamp {
            end: 15,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// The key of a stamp's minute.
    #[inline]
    fn new(st: &syslog::Stamp, ctx: &TimeCtx) -> Self {
        SyslogKey {
            fields: [st.month, st.day, st.hour, st.minute, 0],
            now: ctx.now.to_bits(),
            default_tz: ctx.default_tz,
        }
    }
}

/// The templates a speculative detector chose: enough to prove that a
/// detector in another state would have chosen the same ones.
#[derive(Debug, Default)]
struct DateTrace {
    /// The template of the first matched line.
    first: Option<Arc<Template>>,
    /// Every matched line was matched by `first`.
    single: bool,
    /// Every matched line was matched by the template tried first (the
    /// last used one), taken without trying the others.
    fast_only: bool,
    /// Where the run began: the last used template's name and the last
    /// positions.
    start: Option<(String, Pos, Pos)>,
    /// Matched lines.
    count: u64,
}

/// A last position: offset, the characters before and at it.
type Pos = (usize, Option<char>, Option<char>);

impl Default for DateDetector {
    fn default() -> Self {
        Self::new()
    }
}

fn char_before(s: &str, i: usize) -> Option<char> {
    s.get(..i).and_then(|p| p.chars().next_back())
}
fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|p| p.chars().next())
}

impl DateDetector {
    /// An empty detector (uses the default templates on first use).
    pub fn new() -> Self {
        DateDetector {
            templates: Vec::new(),
            known: Default::default(),
            unused_time: 300.0,
            last_pos: (1, None, None),
            last_end_pos: (usize::MAX, None, None),
            last_idx: usize::MAX,
            first_unused: 0,
            default_tz: None,
            scratch: Scratch::default(),
            fast: true,
            trace: None,
            memo: None,
        }
    }

    /// Starts a speculative run on a fresh detector: the lines it sees
    /// follow lines another detector sees (a later chunk of the same log),
    /// and [`DateDetector::absorb`] decides afterwards whether its answers
    /// are the ones that detector would have given.
    pub(crate) fn speculate(&mut self) {
        let start = self
            .templates
            .get(self.last_idx)
            .map(|d| (d.t.name.clone(), self.last_pos, self.last_end_pos));
        self.trace = Some(DateTrace {
            single: true,
            fast_only: true,
            start,
            ..Default::default()
        });
    }

    /// True if `b`, a speculative detector that saw the lines following
    /// this detector's, gave on each of them the answer this detector
    /// would have given.
    ///
    /// The argument: `b` matched every dated line with one template `T`,
    /// and found no template at all on the other lines (every template was
    /// searched on the whole line: no order matters, and nothing changes).
    /// `T` must be the template this detector tries first (its last used
    /// one); `match_time` then takes `T`'s match without trying the others
    /// and `T` stays the last used one (no reordering), provided that:
    /// * `T` is anchored at the line (`{^LN-BEG}`, `^`...): it is searched
    ///   on the whole line and its match taken whatever the state; or
    /// * `b` took every match the same way (the template it tried first,
    ///   matching at the last positions), starting from `T` and this
    ///   detector's last positions: that decision reads nothing else, and
    ///   each line leaves the positions of its own match.
    ///
    /// So this detector would have matched the same lines with the same
    /// template and spans.
    pub(crate) fn can_absorb(&self, b: &DateDetector) -> bool {
        let Some(tr) = &b.trace else {
            return false;
        };
        if !tr.single || self.templates.is_empty() || b.templates.is_empty() {
            return false;
        }
        let Some(t) = &tr.first else {
            // no line matched: nothing was chosen
            return true;
        };
        let Some(d) = self.templates.get(self.last_idx) else {
            return false;
        };
        if d.t.name != t.name
            || b.templates
                .get(b.last_idx)
                .is_none_or(|e| e.t.name != t.name)
        {
            return false;
        }
        if d.t.flags & (LINE_BEGIN | LINE_END) != 0 {
            return true;
        }
        tr.fast_only
            && tr.start.as_ref().is_some_and(|(n, p, e)| {
                *n == t.name && *p == self.last_pos && *e == self.last_end_pos
            })
    }

    /// This detector's state after the lines `b` saw (see
    /// [`DateDetector::can_absorb`], which must hold): the template's hits,
    /// last use and distance, the last positions, as `match_time` would
    /// have left them line by line.
    pub(crate) fn absorb(&mut self, b: &DateDetector) {
        let Some(tr) = &b.trace else { return };
        if tr.count == 0 {
            return;
        }
        let (i, e) = (self.last_idx, &b.templates[b.last_idx]);
        let d = &mut self.templates[i];
        d.hits += tr.count;
        d.last_used = e.last_used;
        d.distance = e.distance;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = b.last_pos;
        self.last_end_pos = b.last_end_pos;
    }

    /// Builds a detector from a `datepattern` value (newline separated
    /// patterns; `{^LN-BEG}`, `{DEFAULT}`, `{NONE}`, `{DATE}`, `EPOCH`, ...).
    pub fn from_datepattern(value: &str) -> Result<Self, DateError> {
        let mut dd = DateDetector::new();
        for p in value.split('\n').map(str::trim).filter(|s| !s.is_empty()) {
            dd.append_template(p)?;
        }
        Ok(dd)
    }

    fn push(&mut self, t: Arc<Template>, ignore_dup: bool) -> Result<(), DateError> {
        if self.known.contains(&t.name) {
            if ignore_dup {
                return Ok(());
            }
            return Err(DateError::Pattern {
                pattern: t.name.clone(),
                reason: format!("There is already a template with name {}", t.name),
            });
        }
        self.known.insert(t.name.clone());
        self.templates.push(DdTemplate {
            t,
            hits: 0,
            last_used: 0.0,
            distance: 0x7fff_ffff,
        });
        Ok(())
    }

    /// `appendTemplate(str)`.
    pub fn append_template(&mut self, pattern: &str) -> Result<(), DateError> {
        let key = if pattern.contains('%') {
            pattern.to_string()
        } else {
            pattern.to_uppercase()
        };
        match key.as_str() {
            "{^LN-BEG}" => return self.add_default(Some(true), None),
            "{DEFAULT}" => return self.add_default(None, None),
            _ => {}
        }
        if key.contains("{DATE}") {
            return self.add_default(None, Some(pattern));
        }
        let t = if key == "{NONE}" {
            let mut t = Template::from_pattern("{UNB}^")?;
            t.name = "{NONE}".into();
            t
        } else {
            Template::from_spec(pattern)?
        };
        self.push(Arc::new(t), false)
    }

    fn add_default(
        &mut self,
        line_begin_only: Option<bool>,
        pre_match: Option<&str>,
    ) -> Result<(), DateError> {
        let ignore_dup = !self.templates.is_empty();
        let (all, plain) = default_templates();
        let list = if pre_match.is_some() { plain } else { all };
        for t in list {
            if line_begin_only.is_some() && t.flags & LINE_BEGIN == 0 {
                continue;
            }
            let t = if let Some(pm) = pre_match {
                // fail2ban's `_getAnchoredTemplate`: a pattern template's
                // pattern is wrapped; a template without one (Epoch, TAI64N)
                // gets a pattern made of its wrapped *name* (which then
                // matches that word literally, as in fail2ban)
                let base = t.pattern.as_deref().unwrap_or(&t.name);
                let unb = unbound_pattern(base);
                let p = pm.replacen("{DATE}", &unb, usize::MAX);
                Arc::new(Template::from_spec(&p)?)
            } else {
                t.clone()
            };
            self.push(t, ignore_dup)?;
        }
        Ok(())
    }

    /// Template names in current order (for fail2ban-regex's report).
    pub fn template_names(&self) -> Vec<String> {
        self.templates.iter().map(|t| t.t.name.clone()).collect()
    }

    /// Hits per template in current order.
    pub fn template_hits(&self) -> Vec<(String, u64)> {
        self.templates
            .iter()
            .map(|t| (t.t.name.clone(), t.hits))
            .collect()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// True if no templates (defaults will be added on first use).
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Template by index.
    pub fn template(&self, i: usize) -> Option<&Template> {
        self.templates.get(i).map(|t| &*t.t)
    }

    /// The detector's weight of template `i`: hits times the template's
    /// weight over its distance from the line start (fail2ban's
    /// `DateDetectorTemplate.weight`, by which templates are reordered).
    pub fn template_weight(&self, i: usize) -> Option<f64> {
        self.templates.get(i).map(DdTemplate::weight)
    }

    /// `matchTime(line)`.
    pub fn match_time(&mut self, line: &str, now: f64) -> Option<TimeMatch> {
        if let Some(tm) = self.match_last_syslog(line, now) {
            return Some(tm);
        }
        if self.templates.is_empty() {
            let _ = self.add_default(None, None);
        }
        let n = self.templates.len();
        let anchored = |t: &Template| t.flags & (LINE_BEGIN | LINE_END) != 0;
        let mut found: Option<(Groups, usize, usize, usize)> = None;
        let mut ignore_by_search = usize::MAX;
        let mut result: Option<(Groups, usize)> = None;
        let i = self.last_idx;
        let sc = &mut self.scratch;
        let use_fast = self.fast;
        if i < n {
            let t = &*self.templates[i].t;
            let m;
            if anchored(t) {
                m = t.find_with(line, 0, line.len(), sc, use_fast);
                ignore_by_search = i;
            } else {
                let (distance, endpos) = (self.last_pos.0, self.last_end_pos.0);
                let c1 = char_before(line, distance) == self.last_pos.1
                    || (char_at(line, distance).is_some()
                        && char_at(line, distance) == self.last_pos.2
                        && !self.last_pos.2.is_some_and(|c| c.is_alphanumeric()));
                let c2 = char_at(line, endpos) == self.last_end_pos.2
                    || (char_before(line, endpos).is_some()
                        && char_before(line, endpos) == self.last_end_pos.1
                        && !self.last_end_pos.1.is_some_and(|c| c.is_alphanumeric()));
                if c1 && c2 && distance <= line.len() && line.is_char_boundary(distance) {
                    m = t.find_with(line, distance, endpos.min(line.len()), sc, use_fast);
                } else {
                    m = t.find_with(line, 0, line.len(), sc, use_fast);
                    ignore_by_search = i;
                }
            }
            if let Some(m) = m {
                let (distance, endpos) = m.whole();
                if n == 1
                    || anchored(t)
                    || (distance == self.last_pos.0 && endpos == self.last_end_pos.0)
                {
                    result = Some((m, i));
                } else {
                    found = Some((m, distance, endpos, i));
                }
            }
        }
        // taken from the template tried first, no other tried
        let fast = result.is_some();
        if result.is_none() {
            let mut i = 0;
            while i < n {
                if i == ignore_by_search {
                    i += 1;
                    continue;
                }
                let t = &*self.templates[i].t;
                if let Some(m) = t.find_with(line, 0, line.len(), sc, use_fast) {
                    let (distance, endpos) = m.whole();
                    if i + 1 >= n || anchored(t) {
                        result = Some((m, i));
                        break;
                    }
                    if distance == 0
                        && self.templates[i].hits > 0
                        && self.templates[i + 1].hits == 0
                    {
                        result = Some((m, i));
                        break;
                    }
                    if distance > self.templates[i].distance || distance > self.last_pos.0 {
                        if found.as_ref().is_none_or(|f| distance < f.1) {
                            found = Some((m, distance, endpos, i));
                        }
                        i += 1;
                        continue;
                    }
                    result = Some((m, i));
                    break;
                }
                i += 1;
            }
            if result.is_none() {
                if let Some((m, _, _, i)) = found {
                    result = Some((m, i));
                }
            }
        }
        let (m, mut i) = result?;
        let (distance, endpos) = m.whole();
        {
            let d = &mut self.templates[i];
            d.hits += 1;
            d.last_used = now;
            d.distance = distance;
        }
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (
            distance,
            char_before(line, distance),
            char_at(line, distance),
        );
        self.last_end_pos = (endpos, char_before(line, endpos), char_at(line, endpos));
        self.trace_hit(i, fast);
        if i != 0 && i != self.last_idx {
            i = self.reorder(i);
        }
        self.last_idx = i;
        let span = m.get(1);
        Some(TimeMatch {
            template: i,
            span,
            groups: m,
        })
    }

    /// `match_time` when the template tried first (the last used one) is
    /// the anchored syslog template and the line starts with a canonical
    /// stamp: what the general path does in that case, without its
    /// bookkeeping. An anchored template is searched on the whole line and
    /// its match taken without trying the others (no reordering: it is the
    /// last used one); the stamp is ASCII and so is the byte after it
    /// (`syslog::recognize`), so the last positions' characters are bytes.
    /// `None`: not that case, the general path decides.
    #[inline]
    fn match_last_syslog(&mut self, line: &str, now: f64) -> Option<TimeMatch> {
        let (sh, st) = self.take_last_syslog(line, now)?;
        Some(TimeMatch {
            template: self.last_idx,
            span: Some((0, usize::from(st.end))),
            groups: Groups::Syslog(sh, st),
        })
    }

    /// [`DateDetector::match_last_syslog`]'s decision and bookkeeping: the
    /// stamp, the template's hits, last use and distance, the last
    /// positions, the trace.
    #[inline(always)]
    fn take_last_syslog(&mut self, line: &str, now: f64) -> Option<(syslog::Shape, syslog::Stamp)> {
        if !self.fast {
            return None;
        }
        let i = self.last_idx;
        let d = self.templates.get_mut(i)?;
        if d.t.flags & (LINE_BEGIN | LINE_END) == 0 {
            return None;
        }
        let sh = d.t.syslog()?;
        let b = line.as_bytes();
        // the line shares the memo's minute text: only the second is new
        let st = match &self.memo {
            Some((k, _, _, head)) if head.starts(b) => syslog::same_minute(b, k.stamp())?,
            _ => syslog::recognize(b)?,
        };
        let end = usize::from(st.end);
        d.hits += 1;
        d.last_used = now;
        d.distance = 0;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (0, None, Some(char::from(b[0])));
        self.last_end_pos = (
            end,
            Some(char::from(b[end - 1])),
            b.get(end).map(|&c| char::from(c)),
        );
        // (the syslog shortcut is the fast matcher's answer)
        self.trace_hit(i, true);
        Some((sh, st))
    }

    /// Notes template `i`'s hit in the trace, if one is kept (`fast`: the
    /// fast matcher found it).
    fn trace_hit(&mut self, i: usize, fast: bool) {
        if let Some(tr) = &mut self.trace {
            let t = &self.templates[i].t;
            tr.count += 1;
            match &tr.first {
                None => tr.first = Some(t.clone()),
                Some(f) if f.name == t.name => {}
                Some(_) => tr.single = false,
            }
            tr.fast_only &= fast;
        }
    }

    /// `matchTime(line)` with `ctx.now`, then `getTime` and the `int`
    /// question, in the case [`DateDetector::match_last_syslog`] takes: the
    /// date's end, its time and whether fail2ban holds it as an `int` (what
    /// [`DateDetector::match_time`], [`DateDetector::get_time_memo`] and
    /// [`DateDetector::time_is_int`] give, without a [`TimeMatch`]).
    /// `None`: not that case (nothing was changed).
    #[inline]
    pub(crate) fn detect_syslog(
        &mut self,
        line: &str,
        ctx: &TimeCtx,
    ) -> Option<(usize, Option<f64>, bool)> {
        let (sh, st) = self.take_last_syslog(line, ctx.now)?;
        let end = usize::from(st.end);
        let is_int = ctx.default_tz.is_some();
        let key = SyslogKey::new(&st, ctx);
        if let Some((k, tz, m, _)) = &self.memo {
            if *k == key && Arc::ptr_eq(tz, &ctx.local) {
                if let Some(t) = m.time(st.second) {
                    return Some((end, t, is_int));
                }
            }
        }
        let tm = TimeMatch {
            template: self.last_idx,
            span: Some((0, end)),
            groups: Groups::Syslog(sh, st),
        };
        Some((
            end,
            self.convert_minute(line, &tm, ctx, key, (sh, st)),
            is_int,
        ))
    }

    fn reorder(&mut self, num: usize) -> usize {
        if num == 0 {
            return num;
        }
        let untime = self.templates[num].last_used - self.unused_time;
        let weight = self.templates[num].weight();
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        let moveable = |tpls: &Vec<DdTemplate>, pos: usize| {
            weight > tpls[pos].weight() || untime > tpls[pos].last_used
        };
        if !moveable(&self.templates, pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !moveable(&self.templates, pos) {
                return num;
            }
        }
        let t = self.templates.remove(num);
        self.templates.insert(pos, t);
        while self.first_unused < self.templates.len() && self.templates[self.first_unused].hits > 0
        {
            self.first_unused += 1;
        }
        pos
    }

    /// See [`Template::date_is_int`].
    pub fn time_is_int(&self, tm: &TimeMatch, ctx: &TimeCtx) -> bool {
        self.templates
            .get(tm.template)
            .is_some_and(|t| t.t.groups_is_int(&tm.groups, ctx))
    }

    /// [`DateDetector::get_time`], remembering the last canonical syslog
    /// stamp's minute: in the same context (now, zone, `logtimezone`) a
    /// minute's stamps are converted once (see [`MinuteMemo`]), and
    /// consecutive log lines mostly share their minute.
    pub(crate) fn get_time_memo(
        &mut self,
        line: &str,
        tm: &TimeMatch,
        ctx: &TimeCtx,
    ) -> Option<f64> {
        let Groups::Syslog(sh, st) = &tm.groups else {
            return self.get_time(line, tm, ctx);
        };
        let key = SyslogKey::new(st, ctx);
        if let Some((k, tz, m, _)) = &self.memo {
            if *k == key && Arc::ptr_eq(tz, &ctx.local) {
                if let Some(t) = m.time(st.second) {
                    return t;
                }
            }
        }
        self.convert_minute(line, tm, ctx, key, (*sh, *st))
    }

    /// The memo's miss: converts the stamp's minute (see [`MinuteMemo`]).
    #[cold]
    #[inline(never)]
    fn convert_minute(
        &mut self,
        line: &str,
        tm: &TimeMatch,
        ctx: &TimeCtx,
        key: SyslogKey,
        (sh, st): (syslog::Shape, syslog::Stamp),
    ) -> Option<f64> {
        let at = |second: u8| {
            let groups = Groups::Syslog(sh, syslog::Stamp { second, ..st });
            let tm = TimeMatch {
                groups,
                ..tm.clone()
            };
            self.get_time(line, &tm, ctx)
        };
        // A new minute (or another second of a minute that is not linear): its
        // seconds are one second apart unless a zone change or the year
        // inference's threshold falls inside it, which the ends show (both are
        // monotonic in the second).
        let m = match (at(0), at(59)) {
            (None, None) => MinuteMemo::Linear(None),
            (Some(a), Some(b)) if b - a == 59.0 => MinuteMemo::Linear(Some(a)),
            _ => MinuteMemo::Second(st.second, at(st.second)),
        };
        // the stamp is at the line start (its head: `Mmm dd HH:MM:`)
        self.memo = Some((key, ctx.local.clone(), m, syslog::Head::of(line.as_bytes())));
        // `m` holds this second by construction
        m.time(st.second).flatten()
    }

    /// `getTime(line, timeMatch)`.
    pub fn get_time(&self, line: &str, tm: &TimeMatch, ctx: &TimeCtx) -> Option<f64> {
        let t = &self.templates.get(tm.template)?.t;
        t.groups_date(line, &tm.groups, ctx)
    }
}

/// `DateTemplate.unboundPattern`.
fn unbound_pattern(p: &str) -> String {
    let m = meta();
    let p = p.strip_prefix("{UNB}").unwrap_or(p);
    let p = p.strip_prefix("{^LN-BEG}").unwrap_or(p);
    let p = py_sub(&m.exsanc, p, 0, |_, _| String::new());
    py_sub(&m.exeanc, &p, 0, |_, _| String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TimeCtx {
        TimeCtx {
            now: 1124013600.0,
            local: Arc::new(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap()),
            default_tz: None,
        }
    }

    /// The minute memo gives every second the time `get_time` gives it, in
    /// any order, across DST changes and the year inference's threshold.
    #[test]
    fn syslog_minute_memo_is_get_time() {
        let months = ["Jan", "Jun", "Mar", "Oct", "Dec"];
        // now: 2005-03-27 00:30 UTC (hours before the spring change),
        // 2005-12-30 23:00:30 UTC, 2005-10-30 00:30 UTC (the autumn change) and
        // 2005-06-10 10:00:30 UTC (the year inference's threshold, now + 1 day,
        // is Jun 11 12:00:30 local: inside a minute)
        for now in [1111883400.0, 1135983630.0, 1130632200.0, 1118397630.0] {
            let ctx = TimeCtx {
                now,
                local: Arc::new(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap()),
                default_tz: None,
            };
            let mut memo = DateDetector::new();
            let mut rnd = 0x2545F4914F6CDD1Du64;
            let mut nonlinear = 0;
            for i in 0..20_000u32 {
                rnd ^= rnd << 13;
                rnd ^= rnd >> 7;
                rnd ^= rnd << 17;
                let mon = months[(rnd % 5) as usize];
                let (day, hour, minute) = match (rnd >> 8) % 4 {
                    0 => (27, 2, 0),
                    1 => (30, 2, 59),
                    2 => (31, 0, 0),
                    3 if (rnd >> 10) % 2 == 0 => (11, 12, 0),
                    _ => (1 + (rnd >> 12) % 31, (rnd >> 20) % 24, (rnd >> 28) % 60),
                };
                // runs of seconds in one minute, and jumps between minutes
                let second = if i % 7 == 0 {
                    (rnd >> 40) % 60
                } else {
                    u64::from(i % 60)
                };
                let line = format!("{mon} {day:2} {hour:02}:{minute:02}:{second:02} host x");
                let tm = memo.match_time(&line, now).unwrap();
                let tp = memo.templates[tm.template].t.clone();
                let want = tp.groups_date(&line, &tm.groups, &ctx);
                assert_eq!(
                    memo.get_time_memo(&line, &tm, &ctx),
                    want,
                    "{line} now={now}"
                );
                nonlinear +=
                    usize::from(matches!(memo.memo, Some((_, _, MinuteMemo::Second(..), _))));
            }
            if now == 1118397630.0 {
                assert!(nonlinear > 100, "the threshold minute was not exercised");
            }
        }
    }

    #[test]
    fn syslog_date_with_year_inference() {
        let mut dd = DateDetector::new();
        let line = "Aug 14 11:59:59 host sshd[1]: x";
        let tm = dd.match_time(line, 0.0).unwrap();
        assert_eq!(tm.span, Some((0, 15)));
        let t = dd.get_time(line, &tm, &ctx()).unwrap();
        // 2005-08-14 11:59:59 CEST
        assert_eq!(t, 1124013599.0);
        assert!(dd.template(tm.template).unwrap().name.contains("MON Day"));
    }

    #[test]
    fn iso_and_epoch_and_tai() {
        let mut dd = DateDetector::new();
        let line = "2005-08-14T12:00:00+0000 msg";
        let tm = dd.match_time(line, 0.0).unwrap();
        assert_eq!(dd.get_time(line, &tm, &ctx()), Some(1124020800.0));
        let mut dd = DateDetector::from_datepattern("EPOCH").unwrap();
        let line = "1124013600.123 msg";
        let tm = dd.match_time(line, 0.0).unwrap();
        assert_eq!(dd.get_time(line, &tm, &ctx()), Some(1124013600.123));
        let mut dd = DateDetector::from_datepattern("TAI64N").unwrap();
        let line = "@4000000042ff2a8000000000 x";
        let tm = dd.match_time(line, 0.0).unwrap();
        assert_eq!(dd.get_time(line, &tm, &ctx()), Some(0x42ff2a80 as f64));
    }

    #[test]
    fn localized_month_names() {
        let mut dd = DateDetector::from_datepattern("%d %b %Y %H:%M:%S").unwrap();
        for (line, _) in [
            ("14 Aug 2005 12:00:00", 0),
            ("14 8月 2005 12:00:00", 0),
            ("14 août 2005 12:00:00", 0),
            ("14 ago 2005 12:00:00", 0),
        ] {
            let tm = dd.match_time(line, 0.0).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(dd.get_time(line, &tm, &ctx()), Some(1124013600.0), "{line}");
        }
        let mut dd = DateDetector::from_datepattern("%d. %B %Y %H:%M:%S").unwrap();
        let line = "14. März 2005 12:00:00";
        let tm = dd.match_time(line, 0.0).unwrap();
        assert!(dd.get_time(line, &tm, &ctx()).is_some());
    }

    #[test]
    fn zones() {
        assert_eq!(zone_offset("UTC").unwrap(), 0);
        assert_eq!(zone_offset("CET").unwrap(), 60);
        assert_eq!(zone_offset("UTC+0200").unwrap(), 120);
        assert_eq!(zone_offset("-04:30").unwrap(), -270);
        assert_eq!(zone_offset("+05").unwrap(), 300);
        assert!(zone_offset("Europe/Paris").is_err());
    }

    #[test]
    fn name_alternations_are_factored_keeping_priority() {
        assert_eq!(
            factor_words(&["mar", "mars", "may"]).unwrap(),
            "m(?:a(?:r(?:|s)|y))"
        );
        assert_eq!(factor_words(&["mars", "mar"]).unwrap(), "m(?:a(?:r(?:s|)))");
        assert_eq!(factor_words(&["ab", "c", "ad"]).unwrap(), "a(?:b|d)|c");
        assert!(factor_words(&["ab", "Ac"]).is_none());
        assert_eq!(
            factor_name_groups("x(?P<b>jan|juil|juin)(?P<d>\\d)(?P<a>lun|月)"),
            "x(?P<b>j(?:an|u(?:i(?:l|n))))(?P<d>\\d)(?P<a>lun|月)"
        );
        // same matches and groups as the plain alternation
        let plain = r"(?i)^(?P<b>mar|mars|mai|may|m)(?P<r>\S*)";
        let f = PyRegex::new(&factor_name_groups(plain), false).unwrap();
        let p = PyRegex::new(plain, false).unwrap();
        for h in ["mars x", "MAR", "mai", "mayo", "m", "marsupial", "q"] {
            assert_eq!(f.search(h), p.search(h), "{h}");
        }
    }

    #[test]
    fn default_template_names() {
        let (all, _) = default_templates();
        assert!(all.len() > 20, "{}", all.len());
        assert_eq!(all[0].name, "{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?");
    }
}
