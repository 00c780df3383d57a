//! fail2ban's readers: `ConfigReader.getOptions`, the filter and action
//! readers (`[Definition]`/`[Init]` with jail-supplied parameters and
//! recursive `<tag>` substitution), the jail reader and the `fail2ban.conf`
//! reader, producing the command stream `fail2ban-client -d` prints.

use std::collections::HashSet;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use f2b_core::value::Value;
use indexmap::IndexMap;

use crate::cfg::{py_repr, split_conditional, Cfg, GetError, Vars};
use crate::diag::{Diagnostic, Level};
use crate::helpers::{
    extract_options, shlex_split, split_with_options, splitwords, substitute_recursive_tags,
    PyStrMap,
};
use crate::ini::Opt;
use crate::loader::Loader;
use crate::py;

/// The fail2ban version f2b reports itself as (`fail2ban_version`).
pub const FAIL2BAN_VERSION: &str = "1.0.2";

/// A Python dict of typed option values (`str`, `int`, `bool` or `None`).
pub type Typed = IndexMap<String, Value, rustc_hash::FxBuildHasher>;

/// Conversion applied to an option (fail2ban's `CONVERTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    /// `_as_bool`
    Bool,
    /// `int`
    Int,
    /// no conversion
    Str,
}

impl OptType {
    fn name(self) -> &'static str {
        match self {
            OptType::Bool => "bool",
            OptType::Int => "int",
            OptType::Str => "string",
        }
    }
}

/// One option a reader asks for: type, name, default.
#[derive(Debug, Clone)]
pub struct OptSpec {
    /// Conversion.
    pub ty: OptType,
    /// Option name.
    pub name: &'static str,
    /// Default when missing (`None`: no default, nothing is set).
    pub default: Option<Value>,
}

const fn spec(ty: OptType, name: &'static str) -> OptSpec {
    OptSpec {
        ty,
        name,
        default: None,
    }
}

fn spec_d(ty: OptType, name: &'static str, d: Value) -> OptSpec {
    OptSpec {
        ty,
        name,
        default: Some(d),
    }
}

/// `FilterReader._configOpts` in order.
pub static FILTER_OPTS: [OptSpec; 7] = [
    spec(OptType::Str, "usedns"),
    spec(OptType::Str, "prefregex"),
    spec(OptType::Str, "ignoreregex"),
    spec(OptType::Str, "failregex"),
    spec(OptType::Int, "maxlines"),
    spec(OptType::Str, "datepattern"),
    spec(OptType::Str, "journalmatch"),
];

/// `ActionReader._configOpts` in order.
pub static ACTION_OPTS: [OptSpec; 13] = [
    spec(OptType::Str, "actionstart"),
    spec(OptType::Bool, "actionstart_on_demand"),
    spec(OptType::Str, "actionstop"),
    spec(OptType::Str, "actionflush"),
    spec(OptType::Str, "actionreload"),
    spec(OptType::Str, "actioncheck"),
    spec(OptType::Str, "actionrepair"),
    spec(OptType::Bool, "actionrepair_on_unban"),
    spec(OptType::Str, "actionban"),
    spec(OptType::Str, "actionprolong"),
    spec(OptType::Str, "actionreban"),
    spec(OptType::Str, "actionunban"),
    spec(OptType::Bool, "norestored"),
];

/// `JailReader._configOpts1st`.
fn jail_opts_1st() -> Vec<OptSpec> {
    vec![
        spec_d(OptType::Bool, "enabled", Value::Bool(false)),
        spec_d(OptType::Str, "backend", Value::str("auto")),
        spec_d(OptType::Str, "filter", Value::str("")),
    ]
}

/// Every jail option fail2ban 1.0.2's `JailReader` reads, in its order.
pub fn jail_opts() -> Vec<OptSpec> {
    let mut v = vec![
        spec_d(OptType::Bool, "enabled", Value::Bool(false)),
        spec_d(OptType::Str, "backend", Value::str("auto")),
        spec(OptType::Int, "maxretry"),
        spec(OptType::Int, "maxmatches"),
        spec(OptType::Str, "findtime"),
        spec(OptType::Str, "bantime"),
        spec(OptType::Bool, "bantime.increment"),
        spec(OptType::Str, "bantime.factor"),
        spec(OptType::Str, "bantime.formula"),
        spec(OptType::Str, "bantime.multipliers"),
        spec(OptType::Str, "bantime.maxtime"),
        spec(OptType::Str, "bantime.rndtime"),
        spec(OptType::Bool, "bantime.overalljails"),
        spec(OptType::Str, "ignorecommand"),
        spec(OptType::Bool, "ignoreself"),
        spec(OptType::Str, "ignoreip"),
        spec(OptType::Str, "ignorecache"),
        spec_d(OptType::Str, "filter", Value::str("")),
        spec(OptType::Str, "logtimezone"),
        spec(OptType::Str, "logencoding"),
        spec(OptType::Str, "logpath"),
        spec_d(OptType::Str, "action", Value::str("")),
        // fail2ban 1.1: a jail with `backend = auto` and no log file reads the journal
        // instead. Only applied when set (1.0.2 trees never set it, so they read as 1.0.2).
        spec(OptType::Bool, "systemd_if_nologs"),
    ];
    v.extend(FILTER_OPTS.iter().cloned());
    v
}

/// Python `str(value)` for the values readers handle.
pub fn py_str(v: &Value) -> Option<String> {
    match v {
        Value::None => None,
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        other => Some(other.repr()),
    }
}

/// fail2ban's `_as_bool`.
pub fn as_bool(s: &str) -> bool {
    matches!(py::lower(s).as_str(), "1" | "on" | "true" | "yes")
}

fn to_vars<'a>(items: impl IntoIterator<Item = (&'a String, Option<String>)>) -> Vars {
    let mut v = Vars::default();
    for (k, val) in items {
        v.insert(py::lower(k), val);
    }
    v
}

/// A reading error that fail2ban would raise (and f2b turns into a jail error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// An interpolation or lookup error, with the option's definition.
    #[error("{err}")]
    Get {
        /// The error.
        err: GetError,
        /// Where the failing option is defined.
        origin: Option<crate::ini::Origin>,
    },
    /// A jail definition error (`JailDefError`) or another per-jail failure.
    #[error("{message}")]
    Jail {
        /// fail2ban's message.
        message: String,
        /// Where the offending option is defined.
        origin: Option<crate::ini::Origin>,
    },
}

impl ReadError {
    fn origin(&self) -> Option<&crate::ini::Origin> {
        match self {
            ReadError::Get { origin, .. } | ReadError::Jail { origin, .. } => origin.as_ref(),
        }
    }
}

fn get_err(cfg: &Cfg, sec: &str, opt: &str, err: GetError) -> ReadError {
    let mut origin = cfg.raw(sec, opt).and_then(|o| o.origin.clone());
    // point at the option that holds the bad reference rather than at the
    // option whose interpolation failed, when it can be found
    if let GetError::Missing { key, .. } = &err {
        let needle = format!("%({key})s");
        let holder = cfg
            .sections
            .get(sec)
            .into_iter()
            .flat_map(|s| s.values())
            .chain(cfg.defaults.values())
            .find(|o| py::lower(&o.value).contains(&needle) && o.origin.is_some());
        if let Some(h) = holder {
            origin = h.origin.clone();
        }
    }
    ReadError::Get { err, origin }
}

/// fail2ban's `ConfigReaderUnshared.getOptions`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn get_options(
    cfg: &Cfg,
    sec: &str,
    specs: &[OptSpec],
    p_opts: Option<&PyStrMap>,
    should_exist: bool,
    convert: bool,
    diags: &mut Vec<Diagnostic>,
    jail: Option<&str>,
) -> Result<Typed, ReadError> {
    let vars: Option<Vars> = p_opts.map(|p| to_vars(p.iter().map(|(k, v)| (k, v.clone()))));
    get_options_vars(
        cfg,
        sec,
        specs,
        p_opts,
        vars.as_ref(),
        should_exist,
        convert,
        diags,
        jail,
    )
}

/// [`get_options`] with the interpolation variables already built.
#[allow(clippy::too_many_arguments)]
fn get_options_vars(
    cfg: &Cfg,
    sec: &str,
    specs: &[OptSpec],
    p_opts: Option<&PyStrMap>,
    vars: Option<&Vars>,
    should_exist: bool,
    convert: bool,
    diags: &mut Vec<Diagnostic>,
    jail: Option<&str>,
) -> Result<Typed, ReadError> {
    let mut values = Typed::default();
    let push = |diags: &mut Vec<Diagnostic>, d: Diagnostic| {
        diags.push(match jail {
            Some(j) => d.jail(j),
            None => d,
        })
    };
    for s in specs {
        if p_opts.is_some_and(|p| p.contains_key(s.name)) {
            continue;
        }
        match cfg.get(sec, s.name, vars) {
            Ok(v) => {
                let conv = if convert { s.ty } else { OptType::Str };
                let val = match conv {
                    OptType::Str => Value::Str(v),
                    OptType::Bool => Value::Bool(as_bool(&v)),
                    OptType::Int => match py::int(&v) {
                        Some(i) => Value::Int(i),
                        None => {
                            let d = s.default.clone().unwrap_or(Value::None);
                            let origin = cfg.raw(sec, s.name).and_then(|o| o.origin.clone());
                            push(
                                diags,
                                Diagnostic::new(
                                    Level::Warning,
                                    "fail2ban.configreader",
                                    format!(
                                        "Wrong value for '{}' in '{}'. Using default one: '{}'",
                                        s.name,
                                        sec,
                                        d.repr()
                                    ),
                                )
                                .at(origin.as_ref()),
                            );
                            d
                        }
                    },
                };
                values.insert(s.name.to_owned(), val);
            }
            Err(GetError::NoSection { section }) => {
                if should_exist {
                    return Err(ReadError::Get {
                        err: GetError::NoSection { section },
                        origin: None,
                    });
                }
                push(
                    diags,
                    Diagnostic::new(
                        Level::Error,
                        "fail2ban.configreader",
                        format!("No section: {}", py_repr(&section)),
                    ),
                );
                values.insert(s.name.to_owned(), s.default.clone().unwrap_or(Value::None));
            }
            Err(GetError::NoOption { .. }) => {
                if let Some(d) = &s.default {
                    push(
                        diags,
                        Diagnostic::new(
                            Level::Warning,
                            "fail2ban.configreader",
                            format!(
                                "'{}' not defined in '{}'. Using default one: {}",
                                s.name,
                                sec,
                                d.repr()
                            ),
                        ),
                    );
                    values.insert(s.name.to_owned(), d.clone());
                }
            }
            Err(e) => return Err(get_err(cfg, sec, s.name, e)),
        }
    }
    Ok(values)
}

/// Which kind of `[Definition]`/`[Init]` file a [`DefReader`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefKind {
    /// `filter.d/NAME`
    Filter,
    /// `action.d/NAME`
    Action,
}

/// fail2ban's `DefinitionInitConfigReader` (base of `FilterReader` and `ActionReader`).
#[derive(Debug, Clone)]
pub struct DefReader {
    /// Filter or action.
    pub kind: DefKind,
    /// The name as given (`sshd`, `iptables-multiport`).
    pub file: String,
    /// The jail it is read for.
    pub jail: String,
    /// Action name (`actname`) for actions; the file name for filters.
    pub name: String,
    cfg: Arc<Cfg>,
    /// `_initOpts`: parameters given in the jail plus `[Init]` values.
    pub init_opts: crate::helpers::StrMap,
    opts: PyStrMap,
    p_vars: Vars,
    def_cache: rustc_hash::FxHashMap<String, Option<String>>,
}

fn config_opts(kind: DefKind) -> &'static [OptSpec] {
    match kind {
        DefKind::Filter => &FILTER_OPTS,
        DefKind::Action => &ACTION_OPTS,
    }
}

impl DefReader {
    /// Creates and reads a filter reader (`filter.d/<name>`, or an explicit
    /// file when `explicit` is set). Returns `None` when no file could be read.
    pub(crate) fn new(
        loader: &mut Loader<'_>,
        kind: DefKind,
        file: &str,
        jail: &str,
        init: crate::helpers::StrMap,
        explicit: bool,
    ) -> Option<DefReader> {
        let mut init = init;
        let mut name = file.to_owned();
        if kind == DefKind::Action {
            let n = match init.get("name") {
                Some(n) => n.clone(),
                None => {
                    init.insert("name".into(), jail.to_owned());
                    jail.to_owned()
                }
            };
            match init.get("actname") {
                Some(a) => name = a.clone(),
                None => {
                    let mut actname = file.to_owned();
                    if n != jail {
                        match n.strip_prefix(jail) {
                            Some(rest) => actname.push_str(rest),
                            None => {
                                actname.push('-');
                                actname.push_str(&n);
                            }
                        }
                    }
                    init.insert("actname".into(), actname.clone());
                    name = actname;
                }
            }
        }
        let (cfg, ok) = if explicit {
            loader.read_explicit(file)
        } else {
            let dir = match kind {
                DefKind::Filter => "filter.d",
                DefKind::Action => "action.d",
            };
            loader.read(&py::join(dir, file))
        };
        if !ok {
            return None;
        }
        Some(DefReader {
            kind,
            file: file.to_owned(),
            jail: jail.to_owned(),
            name,
            cfg,
            init_opts: init,
            opts: PyStrMap::default(),
            p_vars: Vars::default(),
            def_cache: HashMap::default(),
        })
    }

    /// The merged configuration of this filter/action.
    pub fn cfg(&self) -> &Cfg {
        &self.cfg
    }

    /// `FilterReader.applyAutoOptions(backend)`: sets `logtype` from the backend.
    pub fn apply_auto_options(&mut self, backend: &str) {
        let has = self.init_opts.get("logtype").is_some_and(|v| !v.is_empty());
        if !has && !self.cfg.has_option("Definition", "logtype", false) {
            let lt = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            self.init_opts.insert("logtype".into(), lt.into());
        }
    }

    /// `DefinitionInitConfigReader.getOptions(pOpts, all)`.
    pub(crate) fn get_options(
        &mut self,
        p_opts: &Typed,
        all: bool,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<(), ReadError> {
        let mut merged: PyStrMap = p_opts.iter().map(|(k, v)| (k.clone(), py_str(v))).collect();
        for (k, v) in &self.init_opts {
            merged.insert(k.clone(), Some(v.clone()));
        }
        let jail = self.jail.clone();
        self.p_vars = to_vars(merged.iter().map(|(k, v)| (k, v.clone())));
        let opts = get_options_vars(
            &self.cfg,
            "Definition",
            config_opts(self.kind),
            Some(&merged),
            Some(&self.p_vars),
            false,
            false,
            diags,
            Some(&jail),
        )?;
        self.opts = opts.into_iter().map(|(k, v)| (k, py_str(&v))).collect();
        if self.cfg.has_section("Init") {
            let own = self.cfg.options("Init", false).unwrap_or_default();
            for opt in own {
                if opt == "__name__" {
                    continue;
                }
                let mut v: Option<String> = None;
                if !opt.starts_with("known/") {
                    let got = self
                        .cfg
                        .get("Init", &opt, None)
                        .map_err(|e| get_err(&self.cfg, "Init", &opt, e))?;
                    self.init_opts.insert(format!("known/{opt}"), got.clone());
                    v = Some(got);
                }
                if !self.init_opts.contains_key(&opt) {
                    let got = match v {
                        Some(v) => v,
                        None => self
                            .cfg
                            .get("Init", &opt, None)
                            .map_err(|e| get_err(&self.cfg, "Init", &opt, e))?,
                    };
                    self.init_opts.insert(opt.clone(), got);
                }
            }
        }
        if all && self.cfg.has_section("Definition") {
            for opt in self.cfg.options("Definition", true).unwrap_or_default() {
                if opt == "__name__" || self.opts.contains_key(&opt) {
                    continue;
                }
                let v = self
                    .cfg
                    .get("Definition", &opt, None)
                    .map_err(|e| get_err(&self.cfg, "Definition", &opt, e))?;
                self.opts.insert(opt, Some(v));
            }
        }
        Ok(())
    }

    /// `getCombined(ignore)`: definition options merged with init options,
    /// `<tags>` substituted, typed options converted.
    pub(crate) fn get_combined(
        &mut self,
        ignore: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) -> Result<Typed, ReadError> {
        let mut combined = self.opts.clone();
        for (k, v) in &self.init_opts {
            combined.insert(k.clone(), Some(v.clone()));
        }
        if combined.is_empty() {
            return Ok(Typed::default());
        }
        let mut ign: HashSet<String, rustc_hash::FxBuildHasher> =
            ignore.iter().map(|s| (*s).to_owned()).collect();
        for n in combined.keys() {
            if let Some((base, _)) = split_conditional(n) {
                ign.insert(base.to_owned());
            }
        }
        let cfg = self.cfg.clone();
        let p_vars = &self.p_vars;
        let cache = &mut self.def_cache;
        let mut first_err: Option<ReadError> = None;
        let mut addrepl = |tag: &str| -> Option<String> {
            if let Some(v) = cache.get(tag) {
                return v.clone();
            }
            let v = match cfg.get_ex("Definition", tag, Some(p_vars)) {
                Ok(v) => Some(v),
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(get_err(&cfg, "Definition", tag, e));
                    }
                    None
                }
            };
            cache.insert(tag.to_owned(), v.clone());
            v
        };
        let res = substitute_recursive_tags(combined, &ign, &mut addrepl);
        if let Some(e) = first_err {
            return Err(e);
        }
        let subst = res.map_err(|e| ReadError::Jail {
            message: e.to_string(),
            origin: None,
        })?;
        let mut out: Typed = subst
            .into_iter()
            .map(|(k, v)| (k, v.map(Value::Str).unwrap_or(Value::None)))
            .collect();
        // convertOptions
        for s in config_opts(self.kind) {
            if s.ty == OptType::Str {
                continue;
            }
            let Some(Value::Str(v)) = out.get(s.name).cloned() else {
                continue;
            };
            let conv = match s.ty {
                OptType::Bool => Some(Value::Bool(as_bool(&v))),
                OptType::Int => py::int(&v).map(Value::Int),
                OptType::Str => None,
            };
            match conv {
                Some(c) => {
                    out.insert(s.name.to_owned(), c);
                }
                None => {
                    diags.push(
                        Diagnostic::new(
                            Level::Warning,
                            "fail2ban.configreader",
                            format!(
                                "Wrong {} value {} for {}. Using default one: None",
                                s.ty.name(),
                                py_repr(&v),
                                py_repr(s.name)
                            ),
                        )
                        .jail(&self.jail),
                    );
                    out.insert(s.name.to_owned(), Value::None);
                }
            }
        }
        Ok(out)
    }

    /// `FilterReader.convert()` / `ActionReader.convert()`: this reader's commands.
    pub(crate) fn convert(
        &mut self,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<(Vec<Value>, Typed), ReadError> {
        match self.kind {
            DefKind::Filter => {
                let opts = self.get_combined(&[], diags)?;
                let mut stream = Vec::new();
                if opts.is_empty() {
                    return Ok((stream, opts));
                }
                fill_stream(&mut stream, &opts, &self.jail)?;
                Ok((stream, opts))
            }
            DefKind::Action => {
                let opts = self.get_combined(
                    &[
                        "matches",
                        "ipmatches",
                        "ipjailmatches",
                        "timeout",
                        "bantime",
                    ],
                    diags,
                )?;
                let jail = Value::str(self.jail.clone());
                let mut stream = vec![Value::List(vec![
                    Value::str("set"),
                    jail.clone(),
                    Value::str("addaction"),
                    Value::str(self.name.clone()),
                ])];
                let is_cfg = |k: &str| ACTION_OPTS.iter().any(|s| s.name == k);
                let mut multi: Vec<Value> = Vec::new();
                for (k, v) in &opts {
                    if is_cfg(k) && !k.starts_with("known/") {
                        multi.push(Value::List(vec![Value::str(k.clone()), v.clone()]));
                    }
                }
                for (k, v) in &self.init_opts {
                    if !is_cfg(k) && !k.starts_with("known/") {
                        multi.push(Value::List(vec![
                            Value::str(k.clone()),
                            Value::str(v.clone()),
                        ]));
                    }
                }
                if multi.len() > 1 {
                    stream.push(Value::List(vec![
                        Value::str("multi-set"),
                        jail,
                        Value::str("action"),
                        Value::str(self.name.clone()),
                        Value::List(multi),
                    ]));
                } else if let Some(Value::List(kv)) = multi.pop() {
                    let mut cmd = vec![
                        Value::str("set"),
                        jail,
                        Value::str("action"),
                        Value::str(self.name.clone()),
                    ];
                    cmd.extend(kv);
                    stream.push(Value::List(cmd));
                }
                Ok((stream, opts))
            }
        }
    }
}

fn set_cmd(jail: &str, opt: &str, v: Value) -> Value {
    Value::List(vec![
        Value::str("set"),
        Value::str(jail),
        Value::str(opt),
        v,
    ])
}

/// `FilterReader._fillStream(stream, opts, jailName)`.
pub(crate) fn fill_stream(
    stream: &mut Vec<Value>,
    opts: &Typed,
    jail: &str,
) -> Result<(), ReadError> {
    let mut prio0idx = 0usize;
    for (opt, value) in opts {
        if matches!(value, Value::None) {
            continue;
        }
        match opt.as_str() {
            "failregex" | "ignoreregex" => {
                let s = py_str(value).unwrap_or_default();
                let multi: Vec<Value> = s
                    .split('\n')
                    .filter(|r| !r.is_empty())
                    .map(Value::str)
                    .collect();
                let cmd = format!("add{opt}");
                if multi.len() > 1 {
                    stream.push(Value::List(vec![
                        Value::str("multi-set"),
                        Value::str(jail),
                        Value::str(cmd),
                        Value::List(multi),
                    ]));
                } else if let Some(one) = multi.into_iter().next() {
                    stream.push(set_cmd(jail, &cmd, one));
                }
            }
            "usedns" | "maxlines" | "prefregex" => {
                let idx = if opt == "usedns" {
                    0
                } else {
                    prio0idx.min(stream.len())
                };
                stream.insert(idx, set_cmd(jail, opt, value.clone()));
                prio0idx += 1;
            }
            "journalmatch" => {
                let s = py_str(value).unwrap_or_default();
                for m in s.split('\n') {
                    if m.is_empty() {
                        continue;
                    }
                    let words = shlex_split(m).map_err(|e| ReadError::Jail {
                        message: e.to_string(),
                        origin: None,
                    })?;
                    let mut cmd = vec![
                        Value::str("set"),
                        Value::str(jail),
                        Value::str("addjournalmatch"),
                    ];
                    cmd.extend(words.into_iter().map(Value::Str));
                    stream.push(Value::List(cmd));
                }
            }
            // Python tests `opt in ('datepattern')`, a substring test on a string.
            o if "datepattern".contains(o) => {
                stream.push(set_cmd(jail, opt, value.clone()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One action of a jail, resolved.
#[derive(Debug, Clone)]
pub enum JailAction {
    /// A command action read from `action.d/<file>.conf`.
    Command(Box<DefReader>),
    /// A Python action (`action.d/<name>.py`): the `addaction` command as fail2ban sends it.
    Python {
        /// Action name.
        name: String,
        /// Full path of the `.py` file.
        path: String,
        /// Its options as JSON (fail2ban's `json.dumps`).
        json: String,
    },
}

/// fail2ban's `json.dumps` of a dict of strings.
fn json_dumps(m: &crate::helpers::StrMap) -> String {
    fn js(s: &str) -> String {
        let mut o = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                '\x08' => o.push_str("\\b"),
                '\x0c' => o.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        o.push_str(&format!("\\u{:04x}", u));
                    }
                }
                c => o.push(c),
            }
        }
        o.push('"');
        o
    }
    let items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}: {}", js(k), js(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A jail after reading (fail2ban's `JailReader`).
#[derive(Debug, Clone)]
pub struct JailState {
    /// Jail name.
    pub name: String,
    /// Jail options (typed).
    pub opts: Typed,
    /// The filter reader, if any.
    pub filter: Option<DefReader>,
    /// Actions in order.
    pub actions: Vec<JailAction>,
    /// Set when the jail is broken (fail2ban's `config-error`).
    pub error: Option<String>,
    /// The filter's options as converted (after `convert`).
    pub filter_opts: Option<Typed>,
    /// Each command action's options as converted (after `convert`), by action index.
    pub action_opts: Vec<Option<Typed>>,
}

impl JailState {
    /// Whether the jail is enabled.
    pub fn enabled(&self) -> bool {
        matches!(self.opts.get("enabled"), Some(Value::Bool(true)))
    }
}

fn jail_origin(cfg: &Cfg, jail: &str, opt: &str) -> Option<crate::ini::Origin> {
    cfg.raw(jail, opt).and_then(|o| o.origin.clone())
}

/// `JailReader.getOptions()` for one jail. Errors are returned in `error`.
pub(crate) fn read_jail(
    loader: &mut Loader<'_>,
    jail_cfg: &mut Cfg,
    name: &str,
    force_enable: bool,
) -> JailState {
    let mut st = JailState {
        name: name.to_owned(),
        opts: Typed::default(),
        filter: None,
        actions: Vec::new(),
        error: None,
        filter_opts: None,
        action_opts: Vec::new(),
    };
    let base = loader.base().to_owned();
    jail_cfg
        .defaults
        .insert("fail2ban_version".into(), Opt::synthetic(FAIL2BAN_VERSION));
    jail_cfg
        .defaults
        .insert("fail2ban_confpath".into(), Opt::synthetic(base));
    let mut diags = std::mem::take(&mut loader.diags);
    let r = read_jail_inner(loader, jail_cfg, &mut st, force_enable, &mut diags);
    if let Err(e) = r {
        let msg = e.to_string();
        diags.push(
            Diagnostic::new(Level::Error, "fail2ban.jailreader", msg.clone())
                .at(e.origin())
                .jail(name),
        );
        st.error = Some(msg);
    }
    diags.append(&mut loader.diags);
    loader.diags = diags;
    st
}

fn read_jail_inner(
    loader: &mut Loader<'_>,
    jail_cfg: &mut Cfg,
    st: &mut JailState,
    force_enable: bool,
    diags: &mut Vec<Diagnostic>,
) -> Result<(), ReadError> {
    let name = st.name.clone();
    st.opts = get_options(
        jail_cfg,
        &name,
        &jail_opts_1st(),
        None,
        true,
        true,
        diags,
        Some(&name),
    )?;
    if force_enable {
        st.opts.insert("enabled".into(), Value::Bool(true));
    }
    if !st.enabled() {
        return Ok(());
    }
    let flt = st.opts.get("filter").and_then(py_str).unwrap_or_default();
    if !flt.is_empty() {
        let (fname, fopts) = extract_options(&flt).map_err(|e| ReadError::Jail {
            message: format!("Invalid filter definition {}: {}", py_repr(&flt), e),
            origin: jail_origin(jail_cfg, &name, "filter"),
        })?;
        let f = DefReader::new(loader, DefKind::Filter, &fname, &name, fopts, false);
        diags.append(&mut loader.diags);
        let mut f = f.ok_or_else(|| ReadError::Jail {
            message: format!("Unable to read the filter {}", py_repr(&fname)),
            origin: jail_origin(jail_cfg, &name, "filter"),
        })?;
        let backend = st.opts.get("backend").and_then(py_str).unwrap_or_default();
        f.apply_auto_options(&backend);
        f.get_options(&st.opts, true, diags)?;
        let combined = f.get_combined(&[], diags)?;
        let sec = jail_cfg.sections.entry(name.clone()).or_default();
        for (k, v) in combined {
            if k.starts_with("known/") || k == "__name__" {
                continue;
            }
            sec.insert(
                format!("known/{k}"),
                Opt::synthetic(py_str(&v).unwrap_or_else(|| "None".into())),
            );
        }
        st.filter = Some(f);
    } else {
        diags.push(
            Diagnostic::new(
                Level::Warning,
                "fail2ban.jailreader",
                format!("No filter set for jail {name}"),
            )
            .jail(&name),
        );
    }
    st.opts = get_options(
        jail_cfg,
        &name,
        &jail_opts(),
        None,
        false,
        true,
        diags,
        Some(&name),
    )?;
    if force_enable {
        st.opts.insert("enabled".into(), Value::Bool(true));
    }
    if let Some(f) = st.filter.as_mut() {
        f.get_options(&st.opts, false, diags)?;
    }
    let action = st.opts.get("action").and_then(py_str).unwrap_or_default();
    let act_origin = jail_origin(jail_cfg, &name, "action");
    for act in split_with_options(&action) {
        let act = py::strip(&act).to_owned();
        if act.is_empty() {
            continue;
        }
        let (aname, mut aopts) = extract_options(&act).map_err(|e| ReadError::Jail {
            message: format!("Invalid action definition {}: {}", py_repr(&act), e),
            origin: act_origin.clone(),
        })?;
        if aname.ends_with(".py") {
            let actname = aopts
                .shift_remove("actname")
                .unwrap_or_else(|| py::splitext_root(&aname).to_owned());
            let path = py::join(&py::join(loader.base(), "action.d"), &aname);
            st.actions.push(JailAction::Python {
                name: actname,
                path,
                json: json_dumps(&aopts),
            });
            continue;
        }
        let a = DefReader::new(loader, DefKind::Action, &aname, &name, aopts, false);
        diags.append(&mut loader.diags);
        let mut a = a.ok_or_else(|| ReadError::Jail {
            message: format!("Unable to read action {}", py_repr(&aname)),
            origin: act_origin.clone(),
        })?;
        a.get_options(&st.opts, false, diags).map_err(|e| match e {
            ReadError::Get { err, origin } => ReadError::Jail {
                message: format!(
                    "Error in action definition {}: {}",
                    py_repr(&act),
                    py_exc_repr(&err)
                ),
                origin,
            },
            other => other,
        })?;
        st.actions.push(JailAction::Command(Box::new(a)));
    }
    if st.actions.is_empty() {
        diags.push(
            Diagnostic::new(
                Level::Warning,
                "fail2ban.jailreader",
                format!("No actions were defined for {name}"),
            )
            .jail(&name),
        );
    }
    Ok(())
}

fn py_exc_repr(e: &GetError) -> String {
    let class = match e {
        GetError::NoSection { .. } => "NoSectionError",
        GetError::NoOption { .. } => "NoOptionError",
        GetError::Depth { .. } => "InterpolationDepthError",
        GetError::Missing { .. } => "InterpolationMissingOptionError",
        GetError::Syntax { .. } => "InterpolationSyntaxError",
    };
    format!("{class}({})", py_repr(&e.to_string()))
}

/// Log paths of a jail found on disk: `(path, "head"|"tail"|...)`.
pub(crate) fn resolve_logpaths(
    value: &str,
    jail: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in value.split('\n') {
        let (path, tail) = match line.rsplit_once(' ') {
            Some((p, t)) => (p, t),
            None => (line, "head"),
        };
        let mut found = Vec::new();
        for p in crate::glob::glob(path) {
            if std::path::Path::new(&p).exists() {
                found.push(p);
            } else {
                diags.push(
                    Diagnostic::new(
                        Level::Warning,
                        "fail2ban.jailreader",
                        format!("File {p} is a dangling link, thus cannot be monitored"),
                    )
                    .jail(jail),
                );
            }
        }
        if found.is_empty() {
            diags.push(
                Diagnostic::new(
                    Level::Notice,
                    "fail2ban.jailreader",
                    format!("No file(s) found for glob {path}"),
                )
                .jail(jail),
            );
        }
        for p in found {
            out.push((p, tail.to_owned()));
        }
    }
    out
}

/// `JailReader.convert(allow_no_files)` for one jail.
pub(crate) fn convert_jail(
    st: &mut JailState,
    allow_no_files: bool,
    diags: &mut Vec<Diagnostic>,
    logpaths_out: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, ReadError> {
    let name = st.name.clone();
    if let Some(e) = &st.error {
        return Ok(vec![Value::List(vec![
            Value::str("config-error"),
            Value::Str(format!(
                "Jail '{name}' skipped, because of wrong configuration: {e}"
            )),
        ])]);
    }
    let mut stream = Vec::new();
    let mut stream2 = Vec::new();
    if let Some(f) = st.filter.as_mut() {
        let (s, opts) = f.convert(diags)?;
        stream.extend(s);
        st.filter_opts = Some(opts);
    }
    fill_stream(&mut stream, &st.opts, &name)?;
    let mut backend = Value::str("auto");
    let is_systemd = st
        .opts
        .get("backend")
        .and_then(py_str)
        .is_some_and(|b| b.starts_with("systemd"));
    let ignore = |o: &str| {
        matches!(o, "action" | "filter" | "enabled" | "systemd_if_nologs")
            || FILTER_OPTS.iter().any(|s| s.name == o)
    };
    let systemd_if_nologs = st
        .opts
        .get("systemd_if_nologs")
        .is_some_and(|v| matches!(v, Value::Bool(true)));
    let has_journalmatch = stream.iter().any(|c| {
        matches!(c, Value::List(v) if v.get(2).and_then(Value::as_str) == Some("addjournalmatch"))
    });
    let mut switch_to_journal = false;
    for (opt, value) in &st.opts {
        match opt.as_str() {
            "logpath" => {
                if is_systemd {
                    continue;
                }
                let v = py_str(value).unwrap_or_default();
                let found = resolve_logpaths(&v, &name, diags);
                let auto = st
                    .opts
                    .get("backend")
                    .and_then(py_str)
                    .is_none_or(|b| b == "auto");
                if found.is_empty() && systemd_if_nologs && auto && has_journalmatch {
                    switch_to_journal = true;
                    continue;
                }
                if found.is_empty() {
                    let msg = format!("Have not found any log file for {name} jail");
                    if !allow_no_files {
                        return Err(ReadError::Jail {
                            message: msg,
                            origin: None,
                        });
                    }
                    diags.push(
                        Diagnostic::new(Level::Warning, "fail2ban.jailreader", msg).jail(&name),
                    );
                }
                for (p, t) in found {
                    stream2.push(Value::List(vec![
                        Value::str("set"),
                        Value::str(name.clone()),
                        Value::str("addlogpath"),
                        Value::str(p.clone()),
                        Value::str(t.clone()),
                    ]));
                    logpaths_out.push((p, t));
                }
            }
            "backend" => backend = value.clone(),
            "ignoreip" => {
                let mut cmd = vec![
                    Value::str("set"),
                    Value::str(name.clone()),
                    Value::str("addignoreip"),
                ];
                cmd.extend(
                    splitwords(&py_str(value).unwrap_or_default())
                        .into_iter()
                        .map(Value::Str),
                );
                stream.push(Value::List(cmd));
            }
            o if !ignore(o) => stream.push(set_cmd(&name, o, value.clone())),
            _ => {}
        }
    }
    stream.extend(stream2);
    if switch_to_journal {
        backend = Value::str("systemd");
    }
    for a in st.actions.iter_mut() {
        match a {
            JailAction::Command(r) => {
                let (s, opts) = r.convert(diags)?;
                stream.extend(s);
                st.action_opts.push(Some(opts));
            }
            JailAction::Python {
                name: an,
                path,
                json,
            } => stream.push(Value::List(vec![
                Value::str("set"),
                Value::str(name.clone()),
                Value::str("addaction"),
                Value::str(an.clone()),
                Value::str(path.clone()),
                Value::str(json.clone()),
            ])),
        }
    }
    stream.insert(
        0,
        Value::List(vec![Value::str("add"), Value::str(name), backend]),
    );
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_python() {
        let mut m = crate::helpers::StrMap::default();
        m.insert("a".to_string(), "x\"é".to_string());
        assert_eq!(json_dumps(&m), "{\"a\": \"x\\\"\\u00e9\"}");
    }

    #[test]
    fn fill_stream_orders_priority_options() {
        let mut o = Typed::default();
        o.insert("failregex".into(), Value::str("a\n\nb"));
        o.insert("maxlines".into(), Value::Int(2));
        o.insert("usedns".into(), Value::str("no"));
        o.insert("date".into(), Value::str("x"));
        let mut s = Vec::new();
        fill_stream(&mut s, &o, "j").unwrap();
        let r: Vec<String> = s.iter().map(|v| v.repr()).collect();
        assert_eq!(
            r,
            vec![
                "['set', 'j', 'usedns', 'no']",
                "['set', 'j', 'maxlines', 2]",
                "['multi-set', 'j', 'addfailregex', ['a', 'b']]",
                "['set', 'j', 'date', 'x']",
            ]
        );
    }
}
