//! f2b-config: reads an unchanged fail2ban configuration tree exactly as
//! fail2ban 1.0.2's client does, and produces
//!
//! * the command stream `fail2ban-client -d` prints ([`Config::stream`]),
//! * a typed model of the jails, their filters and actions ([`Config::jails`]),
//! * diagnostics with file, line and jail ([`Config::diagnostics`]).
//!
//! The pipeline mirrors fail2ban's readers: [`ini`] parses one file,
//! [`loader`] layers `X.conf → X.d/*.conf → X.local → X.d/*.local` and
//! `[INCLUDES]`, [`cfg`] merges and interpolates (`%(var)s`, `%(sec/var)s`,
//! `%(known/var)s`), [`readers`] applies the filter/action/jail readers and
//! `<tag>` substitution. Files come from a [`ConfigSource`] (disk or memory).
#![deny(missing_docs)]

pub mod cfg;
pub mod diag;
pub mod glob;
pub mod helpers;
pub mod ini;
pub mod loader;
mod py;
pub mod readers;
pub mod source;

use std::collections::BTreeMap;
use std::path::Path;

use f2b_core::value::Value;

pub use diag::{Diagnostic, Level};
pub use readers::{Typed, FAIL2BAN_VERSION};
pub use source::{ConfigSource, FsSource, MemSource, ReadOutcome};

use loader::Loader;
use readers::{get_options, DefKind, DefReader, JailAction, OptSpec, OptType};

/// Errors that stop reading altogether.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration directory does not exist.
    #[error("Base configuration directory {base} does not exist ")]
    NoBaseDir {
        /// The directory.
        base: String,
    },
    /// A filter could not be read (unknown name or unreadable file).
    #[error("Unable to read the filter {}", cfg::py_repr(.name))]
    NoFilter {
        /// The filter name or path.
        name: String,
    },
    /// `name[k=v,...]` syntax error.
    #[error("Invalid filter definition {}: {message}", cfg::py_repr(.spec))]
    BadSpec {
        /// The spec.
        spec: String,
        /// The parser's message.
        message: String,
    },
    /// An error while resolving a filter (interpolation, recursive tags).
    #[error("{message}")]
    Resolve {
        /// Message.
        message: String,
        /// File of the failing option, if known.
        file: Option<String>,
        /// Line of the failing option, if known.
        line: Option<u32>,
    },
    /// The jail does not exist.
    #[error("Jail {} was not found among available", cfg::py_repr(.name))]
    NoJail {
        /// Jail name.
        name: String,
    },
    /// The jail exists but is broken.
    #[error("Jail '{name}' skipped, because of wrong configuration: {message}")]
    BrokenJail {
        /// Jail name.
        name: String,
        /// The error.
        message: String,
    },
}

/// A filter with every option resolved as fail2ban's `FilterReader` yields it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedFilter {
    /// Filter name (file name without extension, or the path given).
    pub name: String,
    /// `prefregex`.
    pub prefregex: Option<String>,
    /// `failregex`, one entry per non-empty line.
    pub failregex: Vec<String>,
    /// `ignoreregex`, one entry per non-empty line.
    pub ignoreregex: Vec<String>,
    /// `maxlines`.
    pub maxlines: Option<u32>,
    /// `datepattern`.
    pub datepattern: Option<String>,
    /// `journalmatch`, one entry per non-empty line (see [`ResolvedFilter::journalmatch_words`]).
    pub journalmatch: Vec<String>,
    /// `usedns`.
    pub usedns: Option<String>,
    /// `logtype` (`file`, `journal`, ...).
    pub logtype: Option<String>,
    /// Every option after interpolation and tag substitution (Python `str()` of typed values).
    pub all: BTreeMap<String, String>,
}

impl ResolvedFilter {
    fn from_typed(name: &str, opts: &Typed, overrides: &Typed) -> ResolvedFilter {
        let pick = |k: &str| -> Option<Value> {
            match overrides.get(k) {
                Some(v) if !matches!(v, Value::None) => Some(v.clone()),
                _ => opts.get(k).filter(|v| !matches!(v, Value::None)).cloned(),
            }
        };
        let s = |k: &str| pick(k).and_then(|v| readers::py_str(&v));
        let lines = |k: &str| -> Vec<String> {
            s(k).map(|v| {
                v.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        let maxlines = match pick("maxlines") {
            Some(Value::Int(i)) => u32::try_from(i).ok(),
            Some(Value::Str(v)) => py::int(&v).and_then(|i| u32::try_from(i).ok()),
            _ => None,
        };
        let mut all = BTreeMap::new();
        for (k, v) in opts {
            if let Some(sv) = readers::py_str(v) {
                all.insert(k.clone(), sv);
            }
        }
        ResolvedFilter {
            name: name.to_owned(),
            prefregex: s("prefregex"),
            failregex: lines("failregex"),
            ignoreregex: lines("ignoreregex"),
            maxlines,
            datepattern: s("datepattern"),
            journalmatch: lines("journalmatch"),
            usedns: s("usedns"),
            logtype: s("logtype"),
            all,
        }
    }

    /// `journalmatch` lines split into words the way fail2ban does (`shlex.split`).
    pub fn journalmatch_words(&self) -> Vec<Vec<String>> {
        self.journalmatch
            .iter()
            .filter_map(|l| helpers::shlex_split(l).ok())
            .collect()
    }
}

/// One action of a jail, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAction {
    /// The action's name in the jail (`actname`).
    pub name: String,
    /// The `action.d` file name (without extension), or the `.py` file.
    pub file: String,
    /// For command actions: `actionstart` .. `norestored` after substitution.
    pub commands: Typed,
    /// For command actions: the parameters sent with them (`name`, `port`, `[Init]` values ...).
    pub params: crate::helpers::StrMap,
    /// For Python actions: (path, JSON options).
    pub python: Option<(String, String)>,
}

/// One jail, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Jail {
    /// Jail name.
    pub name: String,
    /// `enabled`.
    pub enabled: bool,
    /// `backend`.
    pub backend: String,
    /// Jail options as fail2ban's `JailReader` types them.
    pub options: Typed,
    /// The filter, if any.
    pub filter: Option<ResolvedFilter>,
    /// Actions in order.
    pub actions: Vec<ResolvedAction>,
    /// Log files found: (path, `head`/`tail`).
    pub logpaths: Vec<(String, String)>,
    /// Set when the jail is broken and skipped.
    pub error: Option<String>,
}

/// How to load (the knobs of `fail2ban-client`'s `readConfig`).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Missing log files only warn (fail2ban sets this for `-d`).
    pub allow_no_files: bool,
    /// Fail only when no jail at all could be read (false for `-t`).
    pub ignore_wrong: bool,
    /// Treat every jail as enabled.
    pub force_enable: bool,
    /// Read only this jail.
    pub jail: Option<String>,
    /// Values from the command line that override `fail2ban.conf`
    /// (`loglevel`, `logtarget`, `syslogsocket`, `socket`, `pidfile`).
    pub main_overrides: Vec<(String, String)>,
}

/// The whole configuration, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The command stream `fail2ban-client -d` prints.
    pub stream: Vec<Value>,
    /// fail2ban's verdict (`False` makes `-t` fail and `-d` exit 255).
    pub ok: bool,
    /// What fail2ban would log, with locations.
    pub diagnostics: Vec<Diagnostic>,
    /// `fail2ban.conf` options as sent (`loglevel`, `dbfile`, ...).
    pub general: Typed,
    /// Jails read (enabled or broken), in configuration order.
    pub jails: Vec<Jail>,
}

/// `fail2ban.conf`'s early options (`socket`, `pidfile`, `loglevel`, `logtarget`, `syslogsocket`).
pub fn early_options(src: &dyn ConfigSource) -> Result<(Typed, Vec<Diagnostic>), ConfigError> {
    let mut loader = Loader::new(src);
    if !src.base_exists() {
        return Err(ConfigError::NoBaseDir {
            base: src.base().to_owned(),
        });
    }
    let opts = read_early(&mut loader);
    Ok((opts, loader.diags))
}

fn read_early(loader: &mut Loader<'_>) -> Typed {
    let (cfg, _) = loader.read("fail2ban");
    let specs = [
        str_spec("socket", "/var/run/fail2ban/fail2ban.sock"),
        str_spec("pidfile", "/var/run/fail2ban/fail2ban.pid"),
        str_spec("loglevel", "INFO"),
        str_spec("logtarget", "/var/log/fail2ban.log"),
        str_spec("syslogsocket", "auto"),
    ];
    let mut diags = Vec::new();
    let r = get_options(
        &cfg,
        "Definition",
        &specs,
        None,
        false,
        true,
        &mut diags,
        None,
    );
    loader.diags.append(&mut diags);
    r.unwrap_or_default()
}

fn str_spec(name: &'static str, d: &str) -> OptSpec {
    OptSpec {
        ty: OptType::Str,
        name,
        default: Some(Value::str(d)),
    }
}

/// Python's `str2LogLevel` check.
fn valid_log_level(v: &str) -> bool {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    matches!(
        v.to_uppercase().as_str(),
        "CRITICAL"
            | "FATAL"
            | "ERROR"
            | "WARN"
            | "WARNING"
            | "NOTICE"
            | "INFO"
            | "DEBUG"
            | "NOTSET"
            | "MSG"
            | "TRACEDEBUG"
            | "HEAVYDEBUG"
    )
}

fn read_general(
    loader: &mut Loader<'_>,
    overrides: &[(String, String)],
) -> Result<(Typed, Vec<Value>), String> {
    let (cfg, _) = loader.read("fail2ban");
    let specs = [
        str_spec("loglevel", "INFO"),
        str_spec("logtarget", "STDERR"),
        str_spec("syslogsocket", "auto"),
        str_spec("allowipv6", "auto"),
        str_spec("dbfile", "/var/lib/fail2ban/fail2ban.sqlite3"),
        OptSpec {
            ty: OptType::Int,
            name: "dbmaxmatches",
            default: None,
        },
        str_spec("dbpurgeage", "1d"),
    ];
    let mut diags = Vec::new();
    let mut opts = get_options(
        &cfg,
        "Definition",
        &specs,
        None,
        false,
        true,
        &mut diags,
        None,
    )
    .map_err(|e| e.to_string())?;
    for (k, v) in overrides {
        opts.insert(k.clone(), Value::str(v.clone()));
    }
    let ll = opts
        .get("loglevel")
        .and_then(readers::py_str)
        .unwrap_or_default();
    if !valid_log_level(&ll) {
        loader.diags.append(&mut diags);
        return Err(format!("Invalid log level {}", cfg::py_repr(&ll)));
    }
    if cfg.has_section("Thread") {
        let th = get_options(
            &cfg,
            "Thread",
            &[OptSpec {
                ty: OptType::Int,
                name: "stacksize",
                default: None,
            }],
            None,
            false,
            true,
            &mut diags,
            None,
        )
        .map_err(|e| e.to_string())?;
        if !th.is_empty() {
            opts.insert(
                "thread".into(),
                Value::Dict(th.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()),
            );
        }
    }
    loader.diags.append(&mut diags);
    let order = [
        "thread",
        "syslogsocket",
        "loglevel",
        "logtarget",
        "allowipv6",
        "dbfile",
        "dbmaxmatches",
        "dbpurgeage",
    ];
    let mut stream = Vec::new();
    for k in order {
        if let Some(v) = opts.get(k) {
            stream.push(Value::List(vec![
                Value::str("set"),
                Value::str(k),
                v.clone(),
            ]));
        }
    }
    Ok((opts, stream))
}

/// Reads the whole configuration under `src` the way `fail2ban-client -d`
/// (or `-t`, or the start command) does.
pub fn load(src: &dyn ConfigSource, opts: &LoadOptions) -> Result<Config, ConfigError> {
    if !src.base_exists() {
        return Err(ConfigError::NoBaseDir {
            base: src.base().to_owned(),
        });
    }
    let mut loader = Loader::new(src);
    let mut ok = true;
    let (general, mut stream) = match read_general(&mut loader, &opts.main_overrides) {
        Ok(g) => g,
        Err(msg) => {
            loader.diags.push(Diagnostic::new(
                Level::Error,
                "fail2ban",
                format!("Failed during configuration: {msg}"),
            ));
            ok = false;
            (Typed::default(), Vec::new())
        }
    };
    let (jail_cfg, _) = loader.read("jail");
    let mut jail_cfg = (*jail_cfg).clone();
    let sections: Vec<String> = match &opts.jail {
        Some(j) => vec![j.clone()],
        None => jail_cfg
            .section_names()
            .filter(|n| *n != "INCLUDES")
            .map(str::to_owned)
            .collect(),
    };
    let (mut any_good, mut any_bad) = (false, false);
    // Reading a jail needs the shared loader; converting it (tags, commands, log
    // globs, model) needs nothing from the others. So jails are converted on a second
    // thread while the next ones are read, and merged back in order. The states go
    // back to this thread to be freed (glibc frees across threads under a lock).
    let parallel =
        sections.len() >= 8 && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let allow_no_files = opts.allow_no_files;
    let finished: Vec<(Finished, readers::JailState)> = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<readers::JailState>();
        // Without a second core the states wait in the channel and are converted after.
        let (worker, rx) = if parallel {
            let w = scope.spawn(move || finish_all(rx, allow_no_files));
            (Some(w), None)
        } else {
            (None, Some(rx))
        };
        for sec in &sections {
            let st = readers::read_jail(&mut loader, &mut jail_cfg, sec, opts.force_enable);
            if st.error.is_none() {
                if !st.enabled() {
                    continue;
                }
                any_good = true;
            } else {
                loader.diags.push(
                    Diagnostic::new(
                        Level::Error,
                        "fail2ban.jailsreader",
                        format!(
                            "Errors in jail {}.{}",
                            cfg::py_repr(sec),
                            if opts.ignore_wrong {
                                " Skipping..."
                            } else {
                                ""
                            }
                        ),
                    )
                    .jail(sec),
                );
                any_bad = true;
            }
            // The receiver lives until the channel is drained.
            let _ = tx.send(st);
        }
        drop(tx);
        match (worker, rx) {
            (Some(w), _) => match w.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            },
            (None, Some(rx)) => finish_all(rx, allow_no_files),
            (None, None) => Vec::new(),
        }
    });
    if !((opts.ignore_wrong && any_good) || !any_bad) {
        ok = false;
    }
    let mut diags = std::mem::take(&mut loader.diags);
    let mut jails = Vec::with_capacity(finished.len());
    let mut states = Vec::with_capacity(finished.len());
    for ((cmds, jail, mut d, good), st) in finished {
        ok &= good;
        diags.append(&mut d);
        stream.extend(cmds);
        jails.push(jail);
        states.push(st);
    }
    drop(states);
    for j in &jails {
        if j.error.is_none() {
            stream.push(Value::List(vec![
                Value::str("start"),
                Value::str(j.name.clone()),
            ]));
        }
    }
    if diags
        .iter()
        .any(|d| d.logger == "fail2ban.configparserinc" && d.level == Level::Error)
    {
        ok = false;
    }
    Ok(Config {
        stream,
        ok,
        diagnostics: diags,
        general,
        jails,
    })
}

/// What converting one jail yields: its commands, its model, its diagnostics and
/// whether it converted without error.
type Finished = (Vec<Value>, Jail, Vec<Diagnostic>, bool);

/// Converts every state the channel delivers, in order; each state is returned with its
/// result so that the reading thread frees it.
fn finish_all(
    rx: std::sync::mpsc::Receiver<readers::JailState>,
    allow_no_files: bool,
) -> Vec<(Finished, readers::JailState)> {
    rx.into_iter()
        .map(|mut st| (finish_jail(&mut st, allow_no_files), st))
        .collect()
}

fn finish_jail(st: &mut readers::JailState, allow_no_files: bool) -> Finished {
    let mut diags = Vec::new();
    let mut logpaths = Vec::new();
    let mut good = true;
    let cmds = match readers::convert_jail(st, allow_no_files, &mut diags, &mut logpaths) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            diags.push(
                Diagnostic::new(
                    Level::Error,
                    "fail2ban",
                    format!("Failed during configuration: {msg}"),
                )
                .jail(&st.name),
            );
            good = false;
            st.error = Some(msg.clone());
            vec![Value::List(vec![
                Value::str("config-error"),
                Value::Str(format!(
                    "Jail '{}' skipped, because of wrong configuration: {msg}",
                    st.name
                )),
            ])]
        }
    };
    let jail = model_jail(st, logpaths);
    (cmds, jail, diags, good)
}

fn model_jail(st: &mut readers::JailState, logpaths: Vec<(String, String)>) -> Jail {
    let filter_overrides = || -> Typed {
        st.opts
            .iter()
            .filter(|(k, _)| readers::FILTER_OPTS.iter().any(|s| s.name == k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let filter = match (&mut st.filter, &st.error) {
        (Some(f), None) => {
            let combined = match &st.filter_opts {
                Some(c) => c.clone(),
                None => {
                    let mut scratch = Vec::new();
                    f.get_combined(&[], &mut scratch).unwrap_or_default()
                }
            };
            Some(ResolvedFilter::from_typed(
                &f.file,
                &combined,
                &filter_overrides(),
            ))
        }
        _ => None,
    };
    let mut actions = Vec::new();
    if st.error.is_none() {
        let mut cmd_idx = 0usize;
        for a in st.actions.iter() {
            match a {
                JailAction::Command(r) => {
                    let combined = st
                        .action_opts
                        .get(cmd_idx)
                        .cloned()
                        .flatten()
                        .unwrap_or_default();
                    cmd_idx += 1;
                    let commands: Typed = combined
                        .iter()
                        .filter(|(k, _)| readers::ACTION_OPTS.iter().any(|s| s.name == k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let params = r
                        .init_opts
                        .iter()
                        .filter(|(k, _)| {
                            !k.starts_with("known/")
                                && !readers::ACTION_OPTS.iter().any(|s| s.name == k.as_str())
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    actions.push(ResolvedAction {
                        name: r.name.clone(),
                        file: r.file.clone(),
                        commands,
                        params,
                        python: None,
                    });
                }
                JailAction::Python { name, path, json } => actions.push(ResolvedAction {
                    name: name.clone(),
                    file: path.clone(),
                    commands: Typed::default(),
                    params: Default::default(),
                    python: Some((path.clone(), json.clone())),
                }),
            }
        }
    }
    Jail {
        name: st.name.clone(),
        enabled: st.enabled(),
        backend: st
            .opts
            .get("backend")
            .and_then(readers::py_str)
            .unwrap_or_else(|| "auto".into()),
        options: st.opts.clone(),
        filter,
        actions,
        logpaths,
        error: st.error.clone(),
    }
}

/// Convenience: [`load`] over a directory on disk.
pub fn load_dir(conf_dir: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    load(&FsSource::new(conf_dir), opts)
}

fn resolve_err(e: readers::ReadError) -> ConfigError {
    let (file, line) = match &e {
        readers::ReadError::Get { origin, .. } | readers::ReadError::Jail { origin, .. } => (
            origin.as_ref().map(|o| o.file.to_string()),
            origin.as_ref().map(|o| o.line),
        ),
    };
    ConfigError::Resolve {
        message: e.to_string(),
        file,
        line,
    }
}

/// Reads one filter as `fail2ban-regex` does: `spec` is a filter name
/// (`sshd`), a name with parameters (`sshd[mode=aggressive]`) or a path to a
/// `.conf`/`.local` file. `jail_overrides` are jail options passed as
/// fail2ban passes them (they take part in `%(...)s` interpolation, and the
/// filter options among them replace the filter's; `backend` selects `logtype`).
pub fn read_filter(
    src: &dyn ConfigSource,
    spec: &str,
    jail_overrides: &[(String, String)],
) -> Result<ResolvedFilter, ConfigError> {
    let (name, fopts) = helpers::extract_options(spec).map_err(|e| ConfigError::BadSpec {
        spec: spec.to_owned(),
        message: e.to_string(),
    })?;
    let mut loader = Loader::new(src);
    let tail: String = name
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let explicit_path = name.contains('/') || tail.contains('.');
    let (file, explicit, display) = if explicit_path {
        // fail2ban-regex: a bare `NAME.conf` lives in <base>/filter.d, a path
        // with a slash is taken as given (relative to the working directory)
        let p = if !name.contains('/') {
            py::join(&py::join(src.base(), "filter.d"), &name)
        } else if name.starts_with('/') {
            name.clone()
        } else {
            std::env::current_dir()
                .map(|d| py::join(&d.to_string_lossy(), &name))
                .unwrap_or_else(|_| name.clone())
        };
        let base_name = p.rsplit('/').next().unwrap_or(&p).to_owned();
        let stem = py::splitext_root(&base_name).to_owned();
        // a file inside <base>/filter.d is loaded with its layers, like fail2ban-regex does
        let fdir = py::join(src.base(), "filter.d");
        if py::dirname(&p) == fdir {
            (stem.clone(), false, stem)
        } else {
            (p.clone(), true, p)
        }
    } else {
        (name.clone(), false, name.clone())
    };
    let jail = "fail2ban-regex-jail";
    let mut r = DefReader::new(&mut loader, DefKind::Filter, &file, jail, fopts, explicit).ok_or(
        ConfigError::NoFilter {
            name: display.clone(),
        },
    )?;
    let overrides: Typed = jail_overrides
        .iter()
        .map(|(k, v)| (k.clone(), Value::str(v.clone())))
        .collect();
    let backend = jail_overrides
        .iter()
        .find(|(k, _)| k == "backend")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    r.apply_auto_options(&backend);
    let mut diags = Vec::new();
    r.get_options(&overrides, false, &mut diags)
        .map_err(resolve_err)?;
    let (_, combined) = r.convert(&mut diags).map_err(resolve_err)?;
    let filter_overrides: Typed = overrides
        .into_iter()
        .filter(|(k, _)| readers::FILTER_OPTS.iter().any(|s| s.name == k.as_str()))
        .collect();
    Ok(ResolvedFilter::from_typed(
        &display,
        &combined,
        &filter_overrides,
    ))
}

/// [`read_filter`] over a configuration directory on disk.
pub fn read_filter_dir(
    conf_dir: &Path,
    spec: &str,
    jail_overrides: &[(String, String)],
) -> Result<ResolvedFilter, ConfigError> {
    read_filter(&FsSource::new(conf_dir), spec, jail_overrides)
}

/// A jail's filter as the jail resolves it (for `fail2ban-regex JAIL`):
/// the jail's `filter = name[...]` spec, its options, and the resolved filter
/// (the jail is read as if enabled; missing log files are fine).
#[derive(Debug, Clone, PartialEq)]
pub struct JailFilter {
    /// The `filter =` value of the jail.
    pub spec: String,
    /// The jail's options.
    pub options: Typed,
    /// The filter as resolved for this jail.
    pub filter: ResolvedFilter,
}

/// Reads one jail and returns its resolved filter.
pub fn read_jail_filter(src: &dyn ConfigSource, jail: &str) -> Result<JailFilter, ConfigError> {
    if !src.base_exists() {
        return Err(ConfigError::NoBaseDir {
            base: src.base().to_owned(),
        });
    }
    let mut loader = Loader::new(src);
    let (jail_cfg, _) = loader.read("jail");
    if !jail_cfg.section_names().any(|n| n == jail) {
        return Err(ConfigError::NoJail {
            name: jail.to_owned(),
        });
    }
    let mut jail_cfg = (*jail_cfg).clone();
    let mut st = readers::read_jail(&mut loader, &mut jail_cfg, jail, true);
    if let Some(e) = &st.error {
        return Err(ConfigError::BrokenJail {
            name: jail.to_owned(),
            message: e.clone(),
        });
    }
    let spec = st
        .opts
        .get("filter")
        .and_then(readers::py_str)
        .unwrap_or_default();
    let jail_model = model_jail(&mut st, Vec::new());
    let filter = jail_model
        .filter
        .ok_or(ConfigError::NoFilter { name: spec.clone() })?;
    Ok(JailFilter {
        spec,
        options: jail_model.options,
        filter,
    })
}
