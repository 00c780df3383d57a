//! Reading a named configuration (`jail`, `fail2ban`, `filter.d/sshd`) with
//! its layers (`X.conf`, `X.d/*.conf`, `X.local`, `X.d/*.local`) and
//! `[INCLUDES] before/after`, with fail2ban's sharing of parsed files.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cfg::Cfg;
use crate::diag::{Diagnostic, Level};
use crate::ini::{self, IniErrorKind, ParsedFile};
use crate::py;
use crate::source::{ConfigSource, ReadOutcome};

/// Reads configs from one source, caching parsed files and include lists for
/// the duration of one load (fail2ban's `share_config`).
pub struct Loader<'a> {
    src: &'a dyn ConfigSource,
    files: rustc_hash::FxHashMap<String, Option<Arc<ParsedFile>>>,
    inc_paths: rustc_hash::FxHashMap<String, Vec<String>>,
    readers: rustc_hash::FxHashMap<String, (Arc<Cfg>, bool)>,
    /// Diagnostics collected so far.
    pub diags: Vec<Diagnostic>,
}

impl<'a> Loader<'a> {
    /// A loader over `src`.
    pub fn new(src: &'a dyn ConfigSource) -> Loader<'a> {
        Loader {
            src,
            files: HashMap::default(),
            inc_paths: HashMap::default(),
            readers: HashMap::default(),
            diags: Vec::new(),
        }
    }

    /// The source.
    pub fn source(&self) -> &'a dyn ConfigSource {
        self.src
    }

    /// The base directory.
    pub fn base(&self) -> &'a str {
        self.src.base()
    }

    fn parse_file(&mut self, name: &str) -> Option<Arc<ParsedFile>> {
        if let Some(c) = self.files.get(name) {
            return c.clone();
        }
        let r = match self.src.read(Path::new(name)) {
            ReadOutcome::Text(t) => {
                let file: Arc<str> = Arc::from(name);
                let pf = ini::parse(&t, &file);
                for e in &pf.errors {
                    let msg = match &e.kind {
                        IniErrorKind::MissingSectionHeader => format!(
                            "File contains no section headers.\nfile: {}, line: {}\n{}",
                            crate::cfg::py_repr(name),
                            e.line,
                            crate::cfg::py_repr(&e.text)
                        ),
                        IniErrorKind::DuplicateSection(s) => format!(
                            "While reading from {} [line {:2}]: section {} already exists",
                            crate::cfg::py_repr(name),
                            e.line,
                            crate::cfg::py_repr(s)
                        ),
                        IniErrorKind::DuplicateOption { section, option } => format!(
                            "While reading from {} [line {:2}]: option {} in section {} already exists",
                            crate::cfg::py_repr(name),
                            e.line,
                            crate::cfg::py_repr(option),
                            crate::cfg::py_repr(section)
                        ),
                        IniErrorKind::Garbage => format!(
                            "Source contains parsing errors: {}\n\t[line {:2}]: {}",
                            crate::cfg::py_repr(name),
                            e.line,
                            crate::cfg::py_repr(&e.text)
                        ),
                    };
                    let mut d = Diagnostic::new(Level::Error, "fail2ban.configparserinc", msg);
                    d.file = Some(name.to_owned());
                    d.line = Some(e.line);
                    self.diags.push(d);
                }
                Some(Arc::new(pf))
            }
            ReadOutcome::Missing => None,
            ReadOutcome::NotUtf8(e) => {
                let mut d = Diagnostic::new(
                    Level::Error,
                    "fail2ban.configparserinc",
                    format!("Error decoding config file '{name}': {e}"),
                );
                d.file = Some(name.to_owned());
                self.diags.push(d);
                None
            }
        };
        self.files.insert(name.to_owned(), r.clone());
        r
    }

    fn expand_with_local(&self, filenames: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for f in filenames {
            out.push(f.clone());
            let local = format!("{}.local", py::splitext_root(f));
            if !filenames.contains(&local) && self.src.exists(Path::new(&local)) {
                out.push(local);
            }
        }
        out
    }

    fn get_includes(&mut self, filenames: &[String], seen: &[String]) -> Vec<String> {
        let filenames = self.expand_with_local(filenames);
        let key = filenames.join("\x01");
        if let Some(v) = self.inc_paths.get(&key) {
            return v.clone();
        }
        let mut full = Vec::new();
        for f in &filenames {
            full.extend(self.get_includes_uncached(f, seen));
        }
        self.inc_paths.insert(key, full.clone());
        full
    }

    fn get_includes_uncached(&mut self, resource: &str, seen: &[String]) -> Vec<String> {
        let Some(pf) = self.parse_file(resource) else {
            return Vec::new();
        };
        let dir = py::dirname(resource).to_owned();
        let mut before = Vec::new();
        let mut after = Vec::new();
        if let Some(inc) = pf.sections.get("INCLUDES") {
            for (which, list) in [("before", &mut before), ("after", &mut after)] {
                let present = inc.contains_key(which) || pf.defaults.contains_key(which);
                if !present {
                    continue;
                }
                // interpolate within the single file (only when needed)
                let raw = inc
                    .get(which)
                    .or_else(|| pf.defaults.get(which))
                    .map(|o| o.value.clone())
                    .unwrap_or_default();
                let val = if raw.contains('%') {
                    let mut single = Cfg::default();
                    single.merge_file(resource, &pf);
                    match single.get("INCLUDES", which, None) {
                        Ok(v) => v,
                        Err(e) => {
                            let o = inc.get(which).and_then(|o| o.origin.clone());
                            self.diags.push(
                                Diagnostic::new(
                                    Level::Error,
                                    "fail2ban.configparserinc",
                                    e.to_string(),
                                )
                                .at(o.as_ref()),
                            );
                            continue;
                        }
                    }
                } else {
                    raw
                };
                for nr in val.split('\n') {
                    let r = if nr.starts_with('/') {
                        nr.to_owned()
                    } else {
                        py::join(&dir, nr)
                    };
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut s = seen.to_vec();
                    s.push(resource.to_owned());
                    list.extend(self.get_includes(&[r], &s));
                }
            }
        }
        let mut out = before;
        out.push(resource.to_owned());
        out.extend(after);
        out
    }

    /// Reads a named config (`jail`, `filter.d/sshd`, or an absolute path
    /// without extension), shared by name. Returns the merged config and
    /// whether any file was read (fail2ban's `ConfigReaderUnshared.read`).
    pub fn read(&mut self, name: &str) -> (Arc<Cfg>, bool) {
        if let Some((c, ok)) = self.readers.get(name) {
            return (c.clone(), *ok);
        }
        let r = self.read_uncached(name);
        self.readers.insert(name.to_owned(), (r.0.clone(), r.1));
        r
    }

    fn read_uncached(&mut self, name: &str) -> (Arc<Cfg>, bool) {
        let base = self.src.base().to_owned();
        let basename = py::join(&base, name);
        let mut files = vec![format!("{basename}.conf")];
        let d = format!("{basename}.d");
        // One listing of `X.d` serves both extensions.
        let listing = self.src.list(Path::new(&d));
        files.extend(glob_d(&listing, &d, ".conf"));
        files.push(format!("{basename}.local"));
        files.extend(glob_d(&listing, &d, ".local"));
        let files: Vec<String> = files
            .into_iter()
            .filter(|f| self.src.exists(Path::new(f)))
            .collect();
        let mut cfg = Cfg::default();
        if files.is_empty() {
            self.diags.push(Diagnostic::new(
                Level::Error,
                "fail2ban.configreader",
                format!(
                    "Found no accessible config files for {} under {}",
                    crate::cfg::py_repr(name),
                    base
                ),
            ));
            return (Arc::new(cfg), false);
        }
        let full = self.get_includes(&files, &[]);
        for f in &full {
            if let Some(pf) = self.parse_file(f) {
                cfg.merge_file(f, &pf);
            }
        }
        let missed: Vec<&String> = files.iter().filter(|f| !cfg.files.contains(f)).collect();
        if !missed.is_empty() {
            self.diags.push(Diagnostic::new(
                Level::Error,
                "fail2ban.configreader",
                format!(
                    "Could not read config files: {}",
                    missed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let ok = !cfg.files.is_empty();
        if !ok {
            self.diags.push(Diagnostic::new(
                Level::Error,
                "fail2ban.configreader",
                format!(
                    "Found no accessible config files for {} under {}",
                    crate::cfg::py_repr(name),
                    base
                ),
            ));
        }
        (Arc::new(cfg), ok)
    }

    /// Reads one explicit file with its includes (fail2ban's `readexplicit`,
    /// used for `fail2ban-regex /path/filter.conf`).
    pub fn read_explicit(&mut self, file: &str) -> (Arc<Cfg>, bool) {
        let full = self.get_includes(&[file.to_owned()], &[]);
        let mut cfg = Cfg::default();
        for f in &full {
            if let Some(pf) = self.parse_file(f) {
                cfg.merge_file(f, &pf);
            }
        }
        let ok = !cfg.files.is_empty();
        (Arc::new(cfg), ok)
    }
}

/// The `*EXT` files of a `X.d` listing, sorted, as paths under `dir`.
fn glob_d(listing: &[String], dir: &str, ext: &str) -> Vec<String> {
    let pat = format!("*{ext}");
    let mut names: Vec<String> = listing
        .iter()
        .filter(|n| !n.starts_with('.') && n.ends_with(ext) && crate::glob::fnmatch(n, &pat))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    names.sort();
    names
}
