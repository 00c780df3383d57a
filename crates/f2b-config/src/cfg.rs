//! A merged configuration: fail2ban's `SafeConfigParserWithIncludes` after it
//! has read a file with its includes and layers, plus Python `ConfigParser`'s
//! `get` with `BasicInterpolation` and fail2ban's `%(section/option)s` extension.

use indexmap::IndexMap;
use regex::Regex;

use std::sync::LazyLock;

use crate::ini::{Dict, Opt, ParsedFile};
use crate::py::lower;

/// Python `configparser.MAX_INTERPOLATION_DEPTH`.
pub const MAX_INTERPOLATION_DEPTH: u32 = 10;

/// fail2ban's `SECTION_OPTSUBST_CRE`, `%\(([\w\-]+/([^\)]+))\)s`, for non-ASCII text
/// (the Unicode `\w` class alone costs ~1 ms to compile, so only such text builds it).
static SECTION_OPTSUBST_CRE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"%\(([\w\-]+/([^\)]+))\)s").expect("static regex"));

/// The `%(section/option)s` references in `text`, as `SECTION_OPTSUBST_CRE.finditer`
/// finds them: (`section/option`, `option`) per match, in order. On ASCII text (nearly
/// all) a direct scan gives the regex's matches: after `%(`, the greedy `[\w\-]+` ends at
/// the first other character, which must be `/`, and `[^\)]+` at the first `)`, which
/// must be followed by `s`; neither can backtrack into another outcome. Interpolation
/// runs this for every value, where a regex engine's search cost 3.7 M instructions of
/// a stock start (a third of the configuration's load).
fn section_refs(text: &str) -> Vec<(&str, &str)> {
    if !text.is_ascii() {
        return SECTION_OPTSUBST_CRE
            .captures_iter(text)
            .filter_map(|c| Some((c.get(1)?.as_str(), c.get(2)?.as_str())))
            .collect();
    }
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("%(").map(|i| i + from) {
        let sec_start = i + 2;
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        let sec_end = sec_start + b[sec_start..].iter().take_while(|&&c| word(c)).count();
        let matched = (sec_end > sec_start && b.get(sec_end) == Some(&b'/'))
            .then(|| {
                let opt_start = sec_end + 1;
                let close = opt_start + b[opt_start..].iter().take_while(|&&c| c != b')').count();
                (close > opt_start && b.get(close + 1) == Some(&b's')).then_some((opt_start, close))
            })
            .flatten();
        match matched {
            Some((opt_start, close)) => {
                out.push((&text[sec_start..close], &text[opt_start..close]));
                from = close + 2;
            }
            None => from = i + 1,
        }
    }
    out
}

/// Splits a conditional name such as `Init?family=inet6` into (`Init`, `?family=inet6`)
/// (fail2ban's `^(\w+)(\?.+)$`).
pub(crate) fn split_conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let (base, cond) = name.split_at(q);
    if base.is_empty() || !base.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let cond_body = cond[1..].strip_suffix('\n').unwrap_or(&cond[1..]);
    if cond_body.is_empty() || cond_body.contains('\n') {
        return None;
    }
    Some((base, &cond[..1 + cond_body.len()]))
}

/// fail2ban's `SECTION_OPTNAME_CRE` (`^([\w\-]+)/([^\s>]+)$`) on `sec/opt`.
fn split_section_option(option: &str) -> Option<(&str, &str)> {
    let (sec, opt) = option.split_once('/')?;
    let opt = opt.strip_suffix('\n').unwrap_or(opt);
    let sec_ok = !sec.is_empty()
        && sec
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let opt_ok = !opt.is_empty() && !opt.chars().any(|c| crate::py::isspace(c) || c == '>');
    (sec_ok && opt_ok).then_some((sec, opt))
}

/// Errors of `ConfigParser.get`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// `NoSectionError`
    #[error("No section: {}", py_repr(.section))]
    NoSection {
        /// The section.
        section: String,
    },
    /// `NoOptionError`
    #[error("No option {} in section: {}", py_repr(.option), py_repr(.section))]
    NoOption {
        /// The option.
        option: String,
        /// The section.
        section: String,
    },
    /// `InterpolationDepthError`
    #[error("Recursion limit exceeded in value substitution: option {} in section {} contains an interpolation key which cannot be substituted in {} steps. Raw value: {}", py_repr(.option), py_repr(.section), MAX_INTERPOLATION_DEPTH, py_repr(.raw))]
    Depth {
        /// The option being read.
        option: String,
        /// The section.
        section: String,
        /// Its raw value.
        raw: String,
    },
    /// `InterpolationMissingOptionError`
    #[error("Bad value substitution: option {} in section {} contains an interpolation key {} which is not a valid option name. Raw value: {}", py_repr(.option), py_repr(.section), py_repr(.key), py_repr(.raw))]
    Missing {
        /// The option being read.
        option: String,
        /// The section.
        section: String,
        /// The missing key.
        key: String,
        /// Its raw value.
        raw: String,
    },
    /// `InterpolationSyntaxError`
    #[error("{message}")]
    Syntax {
        /// The option being read.
        option: String,
        /// The section.
        section: String,
        /// Python's message.
        message: String,
    },
}

impl GetError {
    /// Whether this is a "not found" error (`NoSectionError`/`NoOptionError`)
    /// as opposed to an interpolation error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, GetError::NoSection { .. } | GetError::NoOption { .. })
    }
}

pub(crate) fn py_repr(s: &str) -> String {
    f2b_core::value::Value::str(s).repr()
}

/// Variables passed to `get(..., vars=...)`: lower-cased keys, `None` allowed.
pub type Vars = IndexMap<String, Option<String>, rustc_hash::FxBuildHasher>;

/// A merged configuration (sections and defaults) of one reader.
#[derive(Debug, Clone, Default)]
pub struct Cfg {
    /// Merged `[DEFAULT]`.
    pub defaults: Dict,
    /// Merged sections, including fail2ban's `KNOWN/<section>` shadows.
    pub sections: IndexMap<String, Dict, rustc_hash::FxBuildHasher>,
    /// Files read, in order (full names).
    pub files: Vec<String>,
}

struct Chain<'a> {
    extra: Vec<(String, String)>,
    name: &'a str,
    vars: Option<&'a Vars>,
    sect: Option<&'a Dict>,
    defaults: &'a Dict,
}

impl Chain<'_> {
    /// `Some(None)`: present with Python `None` (treated as absent by callers).
    fn get(&self, key: &str) -> Option<&str> {
        if let Some((_, v)) = self.extra.iter().find(|(k, _)| k == key) {
            return Some(v);
        }
        if key == "__name__" {
            return Some(self.name);
        }
        if let Some(vars) = self.vars {
            if let Some(v) = vars.get(key) {
                return v.as_deref();
            }
        }
        if let Some(s) = self.sect {
            if let Some(o) = s.get(key) {
                return Some(&o.value);
            }
        }
        self.defaults.get(key).map(|o| o.value.as_str())
    }
}

impl Cfg {
    /// Merges one parsed file into this config (fail2ban's multi-file `read`):
    /// defaults are updated, conditional sections (`Init?family=inet6`) become
    /// suffixed options of their base section, and overridden values are kept
    /// in `KNOWN/<section>` for `%(known/opt)s`.
    pub fn merge_file(&mut self, name: &str, pf: &ParsedFile) {
        self.files.push(name.to_owned());
        for (k, v) in &pf.defaults {
            self.defaults.insert(k.clone(), v.clone());
        }
        for (n, s) in &pf.sections {
            let (n, s): (String, Dict) = match split_conditional(n) {
                Some((base, cond)) => (
                    base.to_owned(),
                    s.iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect(),
                ),
                None => (n.clone(), s.clone()),
            };
            if let Some(s2) = self.sections.get(&n) {
                let known: Dict = s2
                    .iter()
                    .filter(|(k, _)| s.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let kn = format!("KNOWN/{n}");
                let ks = self.sections.entry(kn).or_default();
                for (k, v) in known {
                    ks.insert(k, v);
                }
                if let Some(s2) = self.sections.get_mut(&n) {
                    for (k, v) in s {
                        s2.insert(k, v);
                    }
                }
            } else {
                self.sections.insert(n, s);
            }
        }
    }

    /// `has_section` (KNOWN/ shadows included, as in Python).
    pub fn has_section(&self, sec: &str) -> bool {
        self.sections.contains_key(sec)
    }

    /// Section names without `KNOWN/` shadows.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections
            .keys()
            .map(String::as_str)
            .filter(|n| !n.starts_with("KNOWN/"))
    }

    /// `has_option(sec, opt)` with defaults.
    pub fn has_option(&self, sec: &str, opt: &str, with_default: bool) -> bool {
        let opt = lower(opt);
        let in_sec = self.sections.get(sec).is_some_and(|s| s.contains_key(&opt));
        if !with_default {
            return in_sec;
        }
        if sec == "DEFAULT" || sec.is_empty() {
            return self.defaults.contains_key(&opt);
        }
        self.sections.contains_key(sec) && (in_sec || self.defaults.contains_key(&opt))
    }

    /// Option names of a section: its own, then (with `with_default`) those of `[DEFAULT]`.
    pub fn options(&self, sec: &str, with_default: bool) -> Result<Vec<String>, GetError> {
        let s = self.sections.get(sec).ok_or_else(|| GetError::NoSection {
            section: sec.to_owned(),
        })?;
        let mut v: Vec<String> = s.keys().cloned().collect();
        if with_default {
            for k in self.defaults.keys() {
                if !s.contains_key(k) {
                    v.push(k.clone());
                }
            }
        }
        Ok(v)
    }

    /// The raw (uninterpolated) value and its definition, section then defaults.
    pub fn raw(&self, sec: &str, opt: &str) -> Option<&Opt> {
        let opt = lower(opt);
        self.sections
            .get(sec)
            .and_then(|s| s.get(&opt))
            .or_else(|| self.defaults.get(&opt))
    }

    /// Python `ConfigParser.get(section, option, raw=False, vars=vars)`.
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<String, GetError> {
        let sect = match self.sections.get(section) {
            Some(s) => Some(s),
            None if section == "DEFAULT" => None,
            None => {
                return Err(GetError::NoSection {
                    section: section.to_owned(),
                })
            }
        };
        let option_l = crate::py::lower_cow(option);
        let chain = Chain {
            extra: Vec::new(),
            name: section,
            vars,
            sect,
            defaults: &self.defaults,
        };
        let value = match chain.get(&option_l) {
            // no interpolation needed: the common case
            Some(v) if !v.contains('%') => return Ok(v.to_owned()),
            Some(v) => v.to_owned(),
            None => {
                return Err(GetError::NoOption {
                    option: option_l.into_owned(),
                    section: section.to_owned(),
                })
            }
        };
        let mut out = String::with_capacity(value.len());
        self.interpolate_some(&option_l, &mut out, &value, section, chain, 1)?;
        Ok(out)
    }

    /// fail2ban's `get_ex`: understands `sec/opt`, `default/opt` and `known/opt`
    /// option names, then falls back to a plain `get`.
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<String, GetError> {
        if option.contains('/') {
            if let Some((sec, opt)) = split_section_option(option) {
                let seclwr = lower(sec);
                let candidates: Vec<String> = if seclwr == "known" {
                    vec![format!("KNOWN/{section}"), section.to_owned()]
                } else if seclwr == "default" {
                    vec!["DEFAULT".to_owned()]
                } else {
                    vec![sec.to_owned()]
                };
                for s in candidates {
                    match self.get(&s, opt, None) {
                        Ok(v) => return Ok(v),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.get(section, option, vars)
    }

    fn raw_for_error(&self, section: &str, option: &str, rest: &str) -> String {
        let sect = self.sections.get(section);
        if sect.is_none() && section != "DEFAULT" {
            return rest.to_owned();
        }
        sect.and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
            .map(|o| o.value.clone())
            .unwrap_or_else(|| rest.to_owned())
    }

    fn map_section_options(&self, section: &str, rest: &str, chain: &mut Chain<'_>) {
        if !rest.contains('/') || !rest.contains("%(") {
            return;
        }
        for (sopt, opt) in section_refs(rest) {
            if chain.get(sopt).is_some() || chain.extra.iter().any(|(k, _)| k == sopt) {
                continue;
            }
            let sec = &sopt[..sopt.len() - opt.len() - 1];
            let seclwr = lower(sec);
            let mut v: Option<String> = None;
            let mut usedef = seclwr == "default";
            if !usedef {
                if seclwr == "known" {
                    match self
                        .sections
                        .get(&format!("KNOWN/{section}"))
                        .and_then(|s| s.get(opt))
                    {
                        Some(o) => v = Some(o.value.clone()),
                        None => usedef = true,
                    }
                } else {
                    let Some(s) = self.sections.get(sec) else {
                        continue;
                    };
                    match s.get(opt) {
                        Some(o) => v = Some(o.value.clone()),
                        None => usedef = true,
                    }
                }
            }
            if usedef {
                match self.defaults.get(opt) {
                    Some(o) => v = Some(o.value.clone()),
                    None => continue,
                }
            }
            if let Some(v) = v {
                chain.extra.push((sopt.to_owned(), v));
            }
        }
    }

    fn interpolate_some(
        &self,
        option: &str,
        accum: &mut String,
        rest: &str,
        section: &str,
        chain: Chain<'_>,
        depth: u32,
    ) -> Result<(), GetError> {
        let mut chain = chain;
        self.map_section_options(section, rest, &mut chain);
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(GetError::Depth {
                option: option.to_owned(),
                section: section.to_owned(),
                raw: self.raw_for_error(section, option, rest),
            });
        }
        let mut rest = rest;
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                accum.push_str(rest);
                return Ok(());
            };
            accum.push_str(&rest[..p]);
            rest = &rest[p..];
            let c = rest[1..].chars().next();
            match c {
                Some('%') => {
                    accum.push('%');
                    rest = &rest[2..];
                }
                Some('(') => {
                    // _KEYCRE: %\(([^)]+)\)s
                    let body = &rest[2..];
                    let close = body.find(')');
                    let ok = close.is_some_and(|i| i > 0 && body[i + 1..].starts_with('s'));
                    let Some(i) = close.filter(|_| ok) else {
                        return Err(GetError::Syntax {
                            option: option.to_owned(),
                            section: section.to_owned(),
                            message: format!(
                                "bad interpolation variable reference {}",
                                py_repr(rest)
                            ),
                        });
                    };
                    let var = crate::py::lower_cow(&body[..i]);
                    rest = &body[i + 2..];
                    let Some(v) = chain.get(&var) else {
                        return Err(GetError::Missing {
                            option: option.to_owned(),
                            section: section.to_owned(),
                            key: var.into_owned(),
                            raw: self.raw_for_error(section, option, rest),
                        });
                    };
                    if v.contains('%') {
                        let v = v.to_owned();
                        let sub = Chain {
                            extra: chain.extra.clone(),
                            name: chain.name,
                            vars: chain.vars,
                            sect: chain.sect,
                            defaults: chain.defaults,
                        };
                        self.interpolate_some(option, accum, &v, section, sub, depth + 1)?;
                    } else {
                        accum.push_str(v);
                    }
                }
                _ => {
                    return Err(GetError::Syntax {
                        option: option.to_owned(),
                        section: section.to_owned(),
                        message: format!(
                            "'%' must be followed by '%' or '(', found: {}",
                            py_repr(rest)
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// On ASCII text the direct scan finds what `SECTION_OPTSUBST_CRE` finds.
        #[test]
        fn section_refs_scan_equals_regex(s in "([a-z_\\-/ %()s]|%\\([a-zA-Z0-9_\\-]{1,6}/[a-z)]{1,5}\\)s){0,12}") {
            let scan = section_refs(&s);
            let regex: Vec<(&str, &str)> = SECTION_OPTSUBST_CRE
                .captures_iter(&s)
                .map(|c| (c.get(1).unwrap().as_str(), c.get(2).unwrap().as_str()))
                .collect();
            proptest::prop_assert_eq!(scan, regex);
        }
    }

    use super::*;
    use crate::ini::parse;
    use std::sync::Arc;

    fn cfg(files: &[&str]) -> Cfg {
        let mut c = Cfg::default();
        for (i, t) in files.iter().enumerate() {
            let name = format!("f{i}");
            let pf = parse(t, &Arc::from(name.as_str()));
            c.merge_file(&name, &pf);
        }
        c
    }

    #[test]
    fn interpolation_forms() {
        let c = cfg(&[
            "[DEFAULT]\na = A\n[s]\nb = %(a)s-%(__name__)s\nc = %(t/x)s %(default/a)s %%\n[t]\nx = X\n",
            "[s]\nb = new %(known/b)s\n",
        ]);
        assert_eq!(c.get("s", "c", None).as_deref(), Ok("X A %"));
        assert_eq!(c.get("s", "b", None).as_deref(), Ok("new A-s"));
        // like Python, the shadow section is the interpolation context
        assert_eq!(c.get_ex("s", "known/b", None).as_deref(), Ok("A-KNOWN/s"));
    }

    #[test]
    fn interpolation_errors() {
        let c = cfg(&["[s]\nr = %(r)s\nm = %(nope)s\nbad = %x\nbad2 = %(oops\n"]);
        assert!(matches!(c.get("s", "r", None), Err(GetError::Depth { .. })));
        assert!(matches!(
            c.get("s", "m", None),
            Err(GetError::Missing { .. })
        ));
        assert!(matches!(
            c.get("s", "bad", None),
            Err(GetError::Syntax { .. })
        ));
        assert!(matches!(
            c.get("s", "bad2", None),
            Err(GetError::Syntax { .. })
        ));
        assert!(matches!(
            c.get("nos", "x", None),
            Err(GetError::NoSection { .. })
        ));
    }

    #[test]
    fn conditional_sections_become_suffixed_options() {
        let c = cfg(&["[Init]\nx = 1\n[Init?family=inet6]\nx = 2\n"]);
        assert_eq!(c.get("Init", "x?family=inet6", None).as_deref(), Ok("2"));
    }
}
