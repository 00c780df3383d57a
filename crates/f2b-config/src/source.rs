//! Where configuration files come from: the filesystem or an in-memory tree.
//!
//! Readers address files by paths relative to the configuration base directory
//! (`jail.conf`, `filter.d/sshd.conf`); an absolute path (an include such as
//! `before = /etc/other.conf`) is passed through unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Outcome of reading one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The file's text (decoded as UTF-8).
    Text(String),
    /// The file is missing or not a regular readable file (fail2ban skips it silently).
    Missing,
    /// The file exists but is not valid UTF-8 (fail2ban logs an error and skips it).
    NotUtf8(String),
}

/// A tree of configuration files, addressed relative to a base directory.
pub trait ConfigSource: Send + Sync {
    /// The base directory as fail2ban would print it (`fail2ban_confpath`).
    fn base(&self) -> &str;
    /// Reads one file; `rel` is relative to [`ConfigSource::base`] or absolute.
    fn read(&self, rel: &Path) -> ReadOutcome;
    /// Names of the entries of a directory (not sorted; hidden names included).
    fn list(&self, rel_dir: &Path) -> Vec<String>;
    /// Whether a file exists (fail2ban's `os.path.exists`).
    fn exists(&self, rel: &Path) -> bool;
    /// Whether the base directory exists at all.
    fn base_exists(&self) -> bool;
}

/// Reads configuration from a directory on disk.
#[derive(Debug, Clone)]
pub struct FsSource {
    base: String,
    base_path: PathBuf,
}

impl FsSource {
    /// A source rooted at `base` (trailing slashes are dropped, as fail2ban does).
    pub fn new(base: impl AsRef<Path>) -> FsSource {
        let s = base.as_ref().to_string_lossy().into_owned();
        let trimmed = s.trim_end_matches('/').to_owned();
        FsSource {
            base_path: PathBuf::from(&trimmed),
            base: trimmed,
        }
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.base_path.join(rel)
    }
}

impl ConfigSource for FsSource {
    fn base(&self) -> &str {
        &self.base
    }

    fn read(&self, rel: &Path) -> ReadOutcome {
        let p = self.full(rel);
        if !p.is_file() {
            return ReadOutcome::Missing;
        }
        match std::fs::read(&p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => ReadOutcome::Text(s),
                Err(e) => ReadOutcome::NotUtf8(e.utf8_error().to_string()),
            },
            Err(_) => ReadOutcome::Missing,
        }
    }

    fn list(&self, rel_dir: &Path) -> Vec<String> {
        match std::fs::read_dir(self.full(rel_dir)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn exists(&self, rel: &Path) -> bool {
        self.full(rel).exists()
    }

    fn base_exists(&self) -> bool {
        self.base_path.exists()
    }
}

/// An in-memory configuration tree built from `(relative path, contents)` pairs.
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    base: String,
    files: BTreeMap<String, String>,
}

impl MemSource {
    /// Builds a tree; `base` is the directory name shown in messages and
    /// `fail2ban_confpath` (e.g. `/etc/fail2ban`).
    pub fn new<I, P, C>(base: &str, files: I) -> MemSource
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: Into<String>,
    {
        let mut m = MemSource {
            base: base.trim_end_matches('/').to_owned(),
            files: BTreeMap::new(),
        };
        for (p, c) in files {
            m.insert(p.as_ref(), c);
        }
        m
    }

    /// Adds or replaces one file.
    pub fn insert(&mut self, rel: &str, contents: impl Into<String>) {
        let key = normalize(rel);
        self.files.insert(key, contents.into());
    }

    fn key(&self, rel: &Path) -> String {
        let s = rel.to_string_lossy();
        let s = if let Some(stripped) = s.strip_prefix(&self.base) {
            stripped.trim_start_matches('/').to_owned()
        } else {
            s.into_owned()
        };
        normalize(&s)
    }
}

fn normalize(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl ConfigSource for MemSource {
    fn base(&self) -> &str {
        &self.base
    }

    fn read(&self, rel: &Path) -> ReadOutcome {
        match self.files.get(&self.key(rel)) {
            Some(s) => ReadOutcome::Text(s.clone()),
            None => ReadOutcome::Missing,
        }
    }

    fn list(&self, rel_dir: &Path) -> Vec<String> {
        let dir = self.key(rel_dir);
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = Vec::new();
        for k in self.files.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let name = rest.split('/').next().unwrap_or(rest).to_owned();
                if !name.is_empty() && out.last() != Some(&name) {
                    out.push(name);
                }
            }
        }
        out.dedup();
        out
    }

    fn exists(&self, rel: &Path) -> bool {
        let k = self.key(rel);
        self.files.contains_key(&k) || self.files.keys().any(|f| f.starts_with(&format!("{k}/")))
    }

    fn base_exists(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_source_reads_and_lists() {
        let m = MemSource::new(
            "/etc/fail2ban",
            [
                ("jail.conf", "[DEFAULT]\n"),
                ("jail.d/a.conf", "x"),
                ("jail.d/b.local", "y"),
            ],
        );
        assert_eq!(
            m.read(Path::new("jail.conf")),
            ReadOutcome::Text("[DEFAULT]\n".into())
        );
        assert_eq!(
            m.read(Path::new("/etc/fail2ban/jail.d/a.conf")),
            ReadOutcome::Text("x".into())
        );
        assert_eq!(m.read(Path::new("nope.conf")), ReadOutcome::Missing);
        let mut l = m.list(Path::new("jail.d"));
        l.sort();
        assert_eq!(l, vec!["a.conf", "b.local"]);
        assert!(m.exists(Path::new("jail.d")));
    }
}
