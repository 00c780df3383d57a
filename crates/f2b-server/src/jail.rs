//! A jail's settings as the control protocol sees them: every `set <jail> <opt>` and
//! `get <jail> <opt>` with fail2ban's value conversions and replies.
//!
//! Settings live here; the running parts (log sources, compiled filter, ban engine,
//! actions) live in [`crate::runtime`] and are (re)built from these settings when the jail
//! starts or an option changes.

use std::collections::BTreeMap;

use f2b_core::value::Value;
use indexmap::IndexMap;

use crate::args::{arg, arg_str, as_bool, py_str, py_str_repr, to_int, CmdError, CmdResult};

/// Seconds from a time value as fail2ban's `str2seconds` reads it (`10m`, `1d`, `600`, `-1`).
pub fn str2seconds(v: &Value) -> Result<i64, CmdError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.is_finite() => Ok(*f as i64),
        other => {
            let s = py_str(other);
            f2b_core::duration::str2sec(&s)
                .map(|f| f as i64)
                .map_err(|e| CmdError::value(e.to_string()))
        }
    }
}

/// One action as configured: its name and properties in the order they were set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionDef {
    /// Properties (`actionban`, `name`, `blocktype?family=inet6`, ...).
    pub props: IndexMap<String, String>,
}

/// A log file the jail follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPath {
    /// The path as configured.
    pub path: String,
    /// Start at the end of the file when there is no stored position.
    pub tail: bool,
}

/// A request the jail cannot answer alone (it needs the ban state or the database).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerOp {
    /// `set <jail> banip <ip>...`
    BanIp(Vec<String>),
    /// `set <jail> unbanip [--report-absent] <ip>...`
    UnbanIp {
        /// The ids.
        ids: Vec<String>,
        /// Ignore ids that are not banned (default).
        if_exists: bool,
    },
    /// `set <jail> attempt <ip> [failure ...]`
    Attempt(String, Vec<String>),
    /// A setting changed that the running parts must pick up.
    Changed(Value),
}

/// What a `set` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum SetReply {
    /// The reply, whatever the quiet mode.
    Always(Value),
    /// The reply, or None in quiet mode (config streams).
    Quiet(Value),
    /// The server must finish the command.
    Server(ServerOp),
}

/// A jail's settings.
#[derive(Debug, Clone)]
pub struct JailSettings {
    /// The jail name.
    pub name: String,
    /// `add <jail> <backend>`.
    pub backend: String,
    /// `idle on|off`.
    pub idle: bool,
    /// `usedns`.
    pub usedns: String,
    /// `findtime` in seconds.
    pub findtime: i64,
    /// `maxretry`.
    pub maxretry: i64,
    /// `maxmatches`.
    pub maxmatches: i64,
    /// `maxlines`.
    pub maxlines: i64,
    /// `ignoreself`.
    pub ignoreself: bool,
    /// `ignoreip` entries, as given.
    pub ignoreip: Vec<String>,
    /// `ignorecommand`.
    pub ignorecommand: String,
    /// `ignorecache` options, None when unset.
    pub ignorecache: Option<Vec<(String, String)>>,
    /// Followed files.
    pub logpaths: Vec<LogPath>,
    /// `logencoding` as resolved (`auto` becomes the locale's, `UTF-8`).
    pub logencoding: String,
    /// `addjournalmatch` groups.
    pub journalmatch: Vec<Vec<String>>,
    /// `prefregex`.
    pub prefregex: Option<String>,
    /// `failregex` list.
    pub failregex: Vec<String>,
    /// `ignoreregex` list.
    pub ignoreregex: Vec<String>,
    /// `datepattern`, None for the default detectors.
    pub datepattern: Option<String>,
    /// `logtimezone`.
    pub logtimezone: Option<String>,
    /// `bantime` in seconds (-1 permanent).
    pub bantime: i64,
    /// `bantime.<opt>` values as set.
    pub banextra: BTreeMap<String, Value>,
    /// Actions in order.
    pub actions: IndexMap<String, ActionDef>,
}

impl JailSettings {
    /// A new jail with fail2ban's server-side defaults.
    pub fn new(name: &str, backend: &str) -> JailSettings {
        JailSettings {
            name: name.to_owned(),
            backend: backend.to_owned(),
            idle: false,
            usedns: "warn".into(),
            findtime: 600,
            maxretry: 3,
            maxmatches: 3,
            maxlines: 1,
            ignoreself: true,
            ignoreip: Vec::new(),
            ignorecommand: String::new(),
            ignorecache: None,
            logpaths: Vec::new(),
            logencoding: "UTF-8".into(),
            journalmatch: Vec::new(),
            prefregex: None,
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            datepattern: None,
            logtimezone: None,
            bantime: 600,
            banextra: BTreeMap::new(),
            actions: IndexMap::new(),
        }
    }

    /// Whether the backend reads the systemd journal.
    pub fn is_journal(&self) -> bool {
        self.backend.starts_with("systemd")
    }

    fn action_mut(&mut self, act: &str) -> Result<&mut ActionDef, CmdError> {
        self.actions.get_mut(act).ok_or_else(|| CmdError::key(act))
    }

    /// `set <jail> <opt> <args...>`.
    pub fn set(&mut self, opt: &str, a: &[Value], multiple: bool) -> Result<SetReply, CmdError> {
        self.set_checked(opt, a, multiple, true)
    }

    /// [`JailSettings::set`]; `check_regexes = false` skips compiling regexes here (a
    /// configuration stream: the jail compiles its filter once when it starts, and a jail
    /// whose filter does not compile is not started).
    pub fn set_checked(
        &mut self,
        opt: &str,
        a: &[Value],
        multiple: bool,
        check_regexes: bool,
    ) -> Result<SetReply, CmdError> {
        let check = |kind: RegexKind, r: &str, pref: Option<&str>| {
            if check_regexes {
                check_regex(kind, r, pref)
            } else {
                Ok(())
            }
        };
        use SetReply::{Always, Server};
        let changed = |v: &str| Server(ServerOp::Changed(Value::str(v)));
        Ok(match opt {
            "idle" => {
                match arg_str(a, 0)?.as_str() {
                    "on" => self.idle = true,
                    "off" => self.idle = false,
                    _ => {
                        return Err(CmdError::exception(
                            "Invalid idle option, must be 'on' or 'off'",
                        ))
                    }
                }
                // The running jail picks it up (the reply is the new state).
                changed("idle")
            }
            "ignoreself" => {
                self.ignoreself = as_bool(arg(a, 0)?);
                changed("ignoreself")
            }
            "addignoreip" => {
                for v in a {
                    let s = py_str(v);
                    if !s.is_empty() && !self.ignoreip.contains(&s) {
                        validate_ignoreip(&s)?;
                        self.ignoreip.push(s);
                    }
                }
                changed("ignoreip")
            }
            "delignoreip" => {
                let s = arg_str(a, 0)?;
                self.ignoreip.retain(|x| *x != s);
                changed("ignoreip")
            }
            "ignorecommand" => {
                self.ignorecommand = arg_str(a, 0)?;
                changed("ignorecommand")
            }
            "ignorecache" => {
                self.ignorecache = Some(parse_options(&arg_str(a, 0)?));
                changed("ignorecache")
            }
            "addlogpath" => {
                let path = arg_str(a, 0)?;
                let tail = match a.len() {
                    1 => false,
                    2 => match arg_str(a, 1)?.to_ascii_lowercase().as_str() {
                        "tail" => true,
                        "head" => false,
                        _ => return Err(CmdError::value("File option must be 'head' or 'tail'")),
                    },
                    _ => return Err(CmdError::value("Only one file can be added at a time")),
                };
                if !self.is_journal() && !self.logpaths.iter().any(|l| l.path == path) {
                    self.logpaths.push(LogPath { path, tail });
                }
                changed("logpath")
            }
            "dellogpath" => {
                let path = arg_str(a, 0)?;
                self.logpaths.retain(|l| l.path != path);
                changed("logpath")
            }
            "logencoding" => {
                let enc = arg_str(a, 0)?;
                self.logencoding = normalize_encoding(&enc)?;
                changed("logencoding")
            }
            "addjournalmatch" => {
                // Kept for every backend: `auto` switches to the journal when the jail
                // has no log file (fail2ban 1.1); `get journalmatch` shows them only for
                // journal jails, as fail2ban does.
                let m: Vec<String> = a.iter().map(py_str).collect();
                for group in split_journalmatch(&m) {
                    self.journalmatch.push(group);
                }
                changed("journalmatch")
            }
            "deljournalmatch" => {
                let m: Vec<String> = a.iter().map(py_str).collect();
                let groups = split_journalmatch(&m);
                self.journalmatch.retain(|g| !groups.contains(g));
                changed("journalmatch")
            }
            "prefregex" => {
                let v = arg_str(a, 0)?;
                if !v.is_empty() {
                    check(RegexKind::Pref, &v, None)?;
                }
                self.prefregex = if v.is_empty() { None } else { Some(v) };
                changed("prefregex")
            }
            "addfailregex" => {
                let new: Vec<String> = match arg(a, 0)? {
                    Value::List(v) | Value::Tuple(v) if multiple => v.iter().map(py_str).collect(),
                    v => vec![py_str(v)],
                };
                for r in &new {
                    check(RegexKind::Fail, r, self.prefregex.as_deref())?;
                }
                self.failregex.extend(new);
                if multiple {
                    return Ok(Always(Value::Bool(true)));
                }
                changed("failregex")
            }
            "delfailregex" => {
                let i = to_int(arg(a, 0)?)?;
                remove_index(&mut self.failregex, i)?;
                changed("failregex")
            }
            "addignoreregex" => {
                let new: Vec<String> = match arg(a, 0)? {
                    Value::List(v) | Value::Tuple(v) if multiple => v.iter().map(py_str).collect(),
                    v => vec![py_str(v)],
                };
                for r in &new {
                    check(RegexKind::Ignore, r, None)?;
                }
                self.ignoreregex.extend(new);
                if multiple {
                    return Ok(Always(Value::Bool(true)));
                }
                changed("ignoreregex")
            }
            "delignoreregex" => {
                let i = to_int(arg(a, 0)?)?;
                remove_index(&mut self.ignoreregex, i)?;
                changed("ignoreregex")
            }
            "usedns" => {
                let v = match arg(a, 0)? {
                    Value::Bool(true) => "yes".to_owned(),
                    Value::Bool(false) => "no".to_owned(),
                    v => py_str(v).to_ascii_lowercase(),
                };
                self.usedns = if ["yes", "warn", "no", "raw"].contains(&v.as_str()) {
                    v
                } else {
                    "no".into()
                };
                changed("usedns")
            }
            "findtime" => {
                self.findtime = str2seconds(arg(a, 0)?)?;
                changed("findtime")
            }
            "datepattern" => {
                let v = arg(a, 0)?;
                self.datepattern = match v {
                    Value::None => None,
                    v => Some(py_str(v)),
                };
                changed("datepattern")
            }
            "logtimezone" => {
                let v = arg_str(a, 0)?;
                self.logtimezone = if v.is_empty() { None } else { Some(v) };
                changed("logtimezone")
            }
            "maxmatches" => {
                self.maxmatches = to_int(arg(a, 0)?)?;
                changed("maxmatches")
            }
            "maxretry" => {
                self.maxretry = to_int(arg(a, 0)?)?;
                changed("maxretry")
            }
            "maxlines" => {
                self.maxlines = to_int(arg(a, 0)?)?.max(1);
                changed("maxlines")
            }
            "bantime" => {
                self.bantime = str2seconds(arg(a, 0)?)?;
                changed("bantime")
            }
            "attempt" => {
                let ip = arg_str(a, 0)?;
                let fails = a[1..].iter().map(py_str).collect();
                Server(ServerOp::Attempt(ip, fails))
            }
            o if o.starts_with("bantime.") => {
                let key = &o["bantime.".len()..];
                let v = arg(a, 0)?.clone();
                let empty = matches!(&v, Value::Str(s) if s.is_empty()) || v == Value::None;
                if empty {
                    self.banextra.remove(key);
                } else if key == "increment" || key == "overalljails" {
                    self.banextra
                        .insert(key.to_owned(), Value::Bool(as_bool(&v)));
                } else if key == "maxtime" || key == "rndtime" {
                    self.banextra
                        .insert(key.to_owned(), Value::Int(str2seconds(&v)?));
                } else {
                    self.banextra.insert(key.to_owned(), v);
                }
                Server(ServerOp::Changed(Value::str(o)))
            }
            "banip" => Server(ServerOp::BanIp(a.iter().map(py_str).collect())),
            "unbanip" => {
                let first = arg_str(a, 0)?;
                if first == "--report-absent" {
                    Server(ServerOp::UnbanIp {
                        ids: a[1..].iter().map(py_str).collect(),
                        if_exists: false,
                    })
                } else {
                    Server(ServerOp::UnbanIp {
                        ids: a.iter().map(py_str).collect(),
                        if_exists: true,
                    })
                }
            }
            "addaction" => {
                let name = arg_str(a, 0)?;
                if a.len() > 1 {
                    return Err(CmdError::exception(format!(
                        "Python actions are not supported by f2b: {}",
                        py_str_repr(&arg_str(a, 1)?)
                    )));
                }
                self.actions.entry(name.clone()).or_default();
                Server(ServerOp::Changed(Value::List(vec![
                    Value::str("addaction"),
                    Value::Str(name),
                ])))
            }
            "delaction" => {
                let name = arg_str(a, 0)?;
                if self.actions.shift_remove(&name).is_none() {
                    return Err(CmdError::key(&name));
                }
                Server(ServerOp::Changed(Value::List(vec![
                    Value::str("delaction"),
                    Value::Str(name),
                ])))
            }
            "action" => {
                let act = arg_str(a, 0)?;
                if multiple {
                    let pairs = match arg(a, 1)? {
                        Value::List(v) | Value::Tuple(v) => v.clone(),
                        _ => return Err(CmdError::exception("Invalid command")),
                    };
                    let def = self.action_mut(&act)?;
                    for p in pairs {
                        if let Value::List(kv) | Value::Tuple(kv) = p {
                            let k = arg_str(&kv, 0)?;
                            let v = kv.get(1).map(py_str).unwrap_or_default();
                            def.props.insert(k, v);
                        }
                    }
                    return Ok(Always(Value::Bool(true)));
                }
                let key = arg_str(a, 1)?;
                let val = arg_str(a, 2)?;
                let def = self.action_mut(&act)?;
                def.props.insert(key.clone(), val.clone());
                let _ = self.actions.get(&act);
                Server(ServerOp::Changed(Value::List(vec![
                    Value::str("action"),
                    Value::Str(act),
                    Value::Str(key),
                    Value::Str(val),
                ])))
            }
            _ => {
                return Err(CmdError::exception(format!(
                    "Invalid command {} (no set action or not yet implemented)",
                    py_str_repr(opt)
                )))
            }
        })
    }

    /// The reply `set` gives after the running parts took the change (`get <opt>`'s value).
    pub fn reply_after_set(&self, opt: &str) -> Value {
        match opt {
            "addignoreip" | "delignoreip" => self.get("ignoreip", &[]).unwrap_or(Value::None),
            "addlogpath" | "dellogpath" => self.get("logpath", &[]).unwrap_or(Value::None),
            "addjournalmatch" | "deljournalmatch" => {
                self.get("journalmatch", &[]).unwrap_or(Value::None)
            }
            "idle" => Value::Bool(self.idle),
            "addfailregex" | "delfailregex" => self.get("failregex", &[]).unwrap_or(Value::None),
            "addignoreregex" | "delignoreregex" => {
                self.get("ignoreregex", &[]).unwrap_or(Value::None)
            }
            o => self.get(o, &[]).unwrap_or(Value::None),
        }
    }

    /// `get <jail> <opt> <args...>` for the options the settings answer alone.
    pub fn get(&self, opt: &str, a: &[Value]) -> CmdResult {
        let strs = |v: &[String]| Value::List(v.iter().cloned().map(Value::Str).collect());
        Ok(match opt {
            "logpath" => Value::List(
                self.logpaths
                    .iter()
                    .map(|l| Value::Str(l.path.clone()))
                    .collect(),
            ),
            "logencoding" => Value::Str(self.logencoding.clone()),
            "journalmatch" if !self.is_journal() => Value::List(Vec::new()),
            "journalmatch" => Value::List(self.journalmatch.iter().map(|g| strs(g)).collect()),
            "ignoreself" => Value::Bool(self.ignoreself),
            "ignoreip" => strs(&self.ignoreip),
            "ignorecommand" => Value::Str(self.ignorecommand.clone()),
            "ignorecache" => match &self.ignorecache {
                None => Value::None,
                Some(o) => Value::Dict(
                    o.iter()
                        .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                        .collect(),
                ),
            },
            "prefregex" => Value::Str(self.prefregex.clone().unwrap_or_default()),
            "failregex" => strs(&self.failregex),
            "ignoreregex" => strs(&self.ignoreregex),
            "usedns" => Value::Str(self.usedns.clone()),
            "findtime" => Value::Int(self.findtime),
            "datepattern" => match &self.datepattern {
                None => Value::Tuple(vec![Value::None, Value::str("Default Detectors")]),
                Some(p) => Value::Tuple(vec![Value::Str(p.clone()), Value::Str(p.clone())]),
            },
            "logtimezone" => self
                .logtimezone
                .clone()
                .map(Value::Str)
                .unwrap_or(Value::None),
            "maxmatches" => Value::Int(self.maxmatches),
            "maxretry" => Value::Int(self.maxretry),
            "maxlines" => Value::Int(self.maxlines),
            "bantime" => Value::Int(self.bantime),
            "idle" => Value::Bool(self.idle),
            o if o.starts_with("bantime.") => self
                .banextra
                .get(&o["bantime.".len()..])
                .cloned()
                .unwrap_or(Value::None),
            "actions" => Value::List(self.actions.keys().cloned().map(Value::Str).collect()),
            "action" => {
                let act = arg_str(a, 0)?;
                let key = arg_str(a, 1)?;
                let def = self.actions.get(&act).ok_or_else(|| CmdError::key(&act))?;
                match def.props.get(&key) {
                    Some(v) => Value::Str(v.clone()),
                    None if key == "timeout" => Value::Int(60),
                    None if key.starts_with("action") || key == "norestored" => Value::None,
                    None => {
                        return Err(CmdError {
                            class: "AttributeError",
                            message: format!(
                                "'CommandAction' object has no attribute {}",
                                py_str_repr(&key)
                            ),
                        })
                    }
                }
            }
            "actionproperties" => {
                let act = arg_str(a, 0)?;
                let def = self.actions.get(&act).ok_or_else(|| CmdError::key(&act))?;
                let mut keys: Vec<String> = def
                    .props
                    .keys()
                    .filter(|k| !k.contains('?'))
                    .cloned()
                    .collect();
                for std_key in ACTION_STD_PROPS {
                    if !keys.iter().any(|k| k == std_key) {
                        keys.push((*std_key).to_owned());
                    }
                }
                keys.sort();
                strs(&keys)
            }
            "actionmethods" => {
                let act = arg_str(a, 0)?;
                self.actions.get(&act).ok_or_else(|| CmdError::key(&act))?;
                strs(
                    &ACTION_METHODS
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect::<Vec<_>>(),
                )
            }
            _ => {
                return Err(CmdError::exception(
                    "Invalid command (no get action or not yet implemented)",
                ))
            }
        })
    }
}

/// Properties every command action has.
const ACTION_STD_PROPS: &[&str] = &[
    "actionban",
    "actioncheck",
    "actionflush",
    "actionreload",
    "actionrepair",
    "actionstart",
    "actionstop",
    "actionunban",
    "timeout",
];

/// Methods every command action has.
const ACTION_METHODS: &[&str] = &[
    "ban",
    "consistencyCheck",
    "escapeTag",
    "executeCmd",
    "flush",
    "prolong",
    "reban",
    "reload",
    "replaceDynamicTags",
    "replaceTag",
    "start",
    "stop",
    "substituteRecursiveTags",
    "unban",
];

/// Which list a regex goes to (they are compiled differently).
enum RegexKind {
    Pref,
    Fail,
    Ignore,
}

/// Compiles a regex as the filter will, so a broken one is refused when it is set
/// (fail2ban raises `RegexException` there), not when the jail starts. Failregexes are
/// checked together with the jail's prefregex (a multi-line `<F-MLFID>` prefregex lets
/// them do without a host group).
fn check_regex(kind: RegexKind, r: &str, prefregex: Option<&str>) -> Result<(), CmdError> {
    let mut spec = f2b_filter::FilterSpec {
        maxlines: 1,
        prefregex: prefregex.map(str::to_owned),
        ..Default::default()
    };
    match kind {
        RegexKind::Pref => spec.prefregex = Some(r.to_owned()),
        RegexKind::Fail => spec.failregex = vec![r.to_owned()],
        RegexKind::Ignore => spec.ignoreregex = vec![r.to_owned()],
    }
    f2b_filter::Filter::new(spec)
        .map(|_| ())
        .map_err(|e| CmdError {
            class: "fail2ban.server.failregex.RegexException",
            message: e.to_string(),
        })
}

fn remove_index(v: &mut Vec<String>, i: i64) -> Result<(), CmdError> {
    let len = v.len() as i64;
    let idx = if i < 0 { len + i } else { i };
    if idx < 0 || idx >= len {
        return Err(CmdError {
            class: "IndexError",
            message: "list index out of range".into(),
        });
    }
    v.remove(idx as usize);
    Ok(())
}

/// `logencoding` as fail2ban stores it: `auto` becomes the locale's (UTF-8 here), others are
/// checked against the encodings the tailer can decode.
pub fn normalize_encoding(enc: &str) -> Result<String, CmdError> {
    let lower = enc.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "auto" => "UTF-8".into(),
        "utf-8" | "utf8" | "ascii" | "us-ascii" | "latin-1" | "latin1" | "iso-8859-1"
        | "iso8859-1" | "iso-8859-15" | "cp1252" | "windows-1252" => enc.trim().to_owned(),
        _ => {
            return Err(CmdError {
                class: "LookupError",
                message: format!("unknown encoding: {enc}"),
            })
        }
    })
}

/// Splits `a b + c d` into match groups as fail2ban's journal filter does.
pub fn split_journalmatch(m: &[String]) -> Vec<Vec<String>> {
    let mut groups = vec![Vec::new()];
    for t in m {
        if t == "+" {
            groups.push(Vec::new());
        } else if let Some(g) = groups.last_mut() {
            g.push(t.clone());
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// Parses `key="v", max-count=100` option lists (as in `ignorecache`).
pub fn parse_options(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (k, after) = match rest.find('=') {
            Some(i) => (rest[..i].trim(), &rest[i + 1..]),
            None => break,
        };
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') {
            match after[1..].find(q) {
                Some(end) => (&after[1..1 + end], &after[end + 2..]),
                None => (&after[1..], ""),
            }
        } else {
            match after.find(',') {
                Some(i) => (after[..i].trim_end(), &after[i..]),
                None => (after.trim_end(), ""),
            }
        };
        out.push((k.to_owned(), v.to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn validate_ignoreip(s: &str) -> Result<(), CmdError> {
    // Addresses, networks, DNS names, `file:` paths and raw ids are all accepted by
    // fail2ban; only embedded whitespace is clearly an error.
    if s.chars().any(char::is_whitespace) {
        return Err(CmdError::value(format!(
            "invalid ignoreip entry {}",
            py_str_repr(s)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    #[test]
    fn set_and_get_mirror_fail2ban() {
        let mut j = JailSettings::new("sshd", "polling");
        j.set("findtime", &[s("10m")], false).unwrap();
        assert_eq!(j.get("findtime", &[]).unwrap(), Value::Int(600));
        j.set("maxretry", &[Value::Int(5)], false).unwrap();
        assert_eq!(j.get("maxretry", &[]).unwrap(), Value::Int(5));
        j.set("usedns", &[s("bogus")], false).unwrap();
        assert_eq!(j.get("usedns", &[]).unwrap(), s("no"));
        j.set("addlogpath", &[s("/var/log/auth.log"), s("tail")], false)
            .unwrap();
        assert!(j.logpaths[0].tail);
        let e = j
            .set("addlogpath", &[s("/x"), s("middle")], false)
            .unwrap_err();
        assert_eq!(e.message, "File option must be 'head' or 'tail'");
        j.set(
            "addfailregex",
            &[Value::List(vec![s("a <HOST>"), s("b <HOST>")])],
            true,
        )
        .unwrap();
        j.set("delfailregex", &[Value::Int(0)], false).unwrap();
        assert_eq!(
            j.get("failregex", &[]).unwrap(),
            Value::List(vec![s("b <HOST>")])
        );
        // A regex that does not compile (or has no host group) is refused.
        for bad in ["(", "no host group"] {
            let e = j.set("addfailregex", &[s(bad)], false).unwrap_err();
            assert!(e.class.ends_with("RegexException"), "{e}");
        }
        assert_eq!(
            j.set("delfailregex", &[Value::Int(3)], false)
                .unwrap_err()
                .class,
            "IndexError"
        );
    }

    #[test]
    fn actions_keep_their_properties() {
        let mut j = JailSettings::new("sshd", "auto");
        j.set("addaction", &[s("iptables")], false).unwrap();
        let props = Value::List(vec![
            Value::List(vec![s("actionban"), s("ban <ip>")]),
            Value::List(vec![s("port"), s("ssh")]),
        ]);
        j.set("action", &[s("iptables"), props], true).unwrap();
        assert_eq!(
            j.get("action", &[s("iptables"), s("port")]).unwrap(),
            s("ssh")
        );
        assert_eq!(
            j.get("action", &[s("nope"), s("port")]).unwrap_err().class,
            "KeyError"
        );
    }

    #[test]
    fn options_and_journal_groups() {
        assert_eq!(
            parse_options("key=\"<ip>\", max-count=100, max-time=5m"),
            vec![
                ("key".into(), "<ip>".into()),
                ("max-count".into(), "100".into()),
                ("max-time".into(), "5m".into())
            ]
        );
        let m: Vec<String> = ["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(split_journalmatch(&m).len(), 2);
    }
}
