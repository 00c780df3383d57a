//! Which journal to open: fail2ban's `backend = systemd[...]` options.

use std::path::{Path, PathBuf};

use crate::ffi::RawJournal;
use crate::JournalError;

/// `SD_JOURNAL_LOCAL_ONLY`.
pub const LOCAL_ONLY: i32 = 1;
/// `SD_JOURNAL_RUNTIME_ONLY`.
pub const RUNTIME_ONLY: i32 = 2;
/// `SD_JOURNAL_SYSTEM` (fail2ban's default flags, `journal.SYSTEM_ONLY`).
pub const SYSTEM_ONLY: i32 = 4;
/// `SD_JOURNAL_CURRENT_USER`.
pub const CURRENT_USER: i32 = 8;

/// The journal a reader follows, from `backend = systemd[...]`.
///
/// Readers are shared per distinct source: the server keeps one
/// [`crate::Journal`] per `JournalSource` value (most servers have one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JournalSource {
    /// The local journal (`sd_journal_open`) with open flags.
    Local {
        /// `journalflags` (default [`SYSTEM_ONLY`], like fail2ban).
        flags: i32,
    },
    /// All journal files in a directory (`journalpath=`).
    Directory {
        /// The directory.
        path: PathBuf,
        /// `journalflags` (default 0).
        flags: i32,
    },
    /// Explicit files (`journalfiles=`, globs expanded when parsed).
    Files {
        /// The files, sorted, without duplicates.
        files: Vec<PathBuf>,
        /// The option value as given (for messages).
        pattern: String,
    },
    /// A journal namespace (`namespace=`).
    Namespace {
        /// The namespace name.
        namespace: String,
        /// `journalflags` (default [`SYSTEM_ONLY`]).
        flags: i32,
    },
}

fn bad(option: &str, value: &str, reason: &'static str) -> JournalError {
    JournalError::Option {
        option: option.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// fail2ban's `splitwords`: split on spaces, commas and newlines.
fn split_words(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
}

impl Default for JournalSource {
    fn default() -> Self {
        JournalSource::Local { flags: SYSTEM_ONLY }
    }
}

impl JournalSource {
    /// Builds the source from the options of `backend = systemd[...]`
    /// (names as fail2ban's `extractOptions` returns them). Accepted:
    /// `journalpath`, `journalfiles` (globs, split on spaces/commas),
    /// `journalflags` (integer; default `$F2B_SYSTEMD_DEFAULT_FLAGS`, else
    /// [`SYSTEM_ONLY`]), `namespace`, and `rotated` (fail2ban
    /// 1.1; accepted, see docs/compat/journal.md). `path` wins over
    /// `files`, `files` over `namespace`, as in python-systemd.
    pub fn from_options<'a, I>(options: I) -> Result<JournalSource, JournalError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (mut path, mut files, mut flags, mut namespace) = (None, None, None, None);
        for (k, v) in options {
            match k {
                "journalpath" => path = Some(v),
                "journalfiles" => files = Some(v),
                "journalflags" => {
                    let f: i32 = v
                        .trim()
                        .parse()
                        .map_err(|_| bad(k, v, "expected an integer"))?;
                    flags = Some(f);
                }
                "namespace" => namespace = Some(v),
                "rotated" => {
                    let l = v.to_ascii_lowercase();
                    if !["0", "1", "on", "off", "true", "false", "yes", "no", ""]
                        .contains(&l.as_str())
                    {
                        return Err(bad(k, v, "expected a boolean"));
                    }
                }
                _ => return Err(bad(k, v, "unknown option of backend systemd")),
            }
        }
        if let Some(p) = path {
            return Ok(JournalSource::Directory {
                path: PathBuf::from(p),
                flags: flags.unwrap_or(0),
            });
        }
        if let Some(pat) = files {
            let mut found = Vec::new();
            for w in split_words(pat) {
                let g = glob::glob(w).map_err(|_| bad("journalfiles", w, "invalid glob"))?;
                found.extend(g.flatten());
            }
            found.sort();
            found.dedup();
            return Ok(JournalSource::Files {
                files: found,
                pattern: pat.to_owned(),
            });
        }
        // fail2ban: default flags from $F2B_SYSTEMD_DEFAULT_FLAGS, else 4
        let default_flags = std::env::var("F2B_SYSTEMD_DEFAULT_FLAGS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(SYSTEM_ONLY);
        if let Some(ns) = namespace {
            return Ok(JournalSource::Namespace {
                namespace: ns.to_owned(),
                flags: flags.unwrap_or(default_flags),
            });
        }
        Ok(JournalSource::Local {
            flags: flags.unwrap_or(default_flags),
        })
    }

    /// One journal file or several (tests, `f2b regex`).
    pub fn files(files: &[&Path]) -> JournalSource {
        JournalSource::Files {
            files: files.iter().map(|p| p.to_path_buf()).collect(),
            pattern: files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Human-readable description.
    pub fn describe(&self) -> String {
        match self {
            JournalSource::Local { flags } => format!("local, flags {flags}"),
            JournalSource::Directory { path, .. } => format!("directory {}", path.display()),
            JournalSource::Files { pattern, .. } => format!("files {pattern}"),
            JournalSource::Namespace { namespace, .. } => format!("namespace {namespace}"),
        }
    }

    pub(crate) fn open(&self) -> Result<RawJournal, JournalError> {
        if let JournalSource::Files { files, pattern } = self {
            if files.is_empty() {
                return Err(JournalError::NoFiles {
                    pattern: pattern.clone(),
                });
            }
        }
        let api = crate::ffi::api().map_err(|e| JournalError::Library {
            library: e.library,
            reason: e.reason,
        })?;
        let r = match self {
            JournalSource::Local { flags } => RawJournal::open(api, *flags),
            JournalSource::Directory { path, flags } => {
                RawJournal::open_directory(api, path, *flags)
            }
            JournalSource::Files { files, .. } => RawJournal::open_files(api, files, 0),
            JournalSource::Namespace { namespace, flags } => {
                RawJournal::open_namespace(api, namespace, *flags)
            }
        };
        r.map_err(|source| JournalError::Open {
            what: self.describe(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(
            JournalSource::from_options([]).unwrap(),
            JournalSource::Local { flags: 4 }
        );
        assert_eq!(
            JournalSource::from_options([("journalflags", "1")]).unwrap(),
            JournalSource::Local { flags: 1 }
        );
        assert_eq!(
            JournalSource::from_options([("journalpath", "/x"), ("namespace", "n")]).unwrap(),
            JournalSource::Directory {
                path: "/x".into(),
                flags: 0
            }
        );
        assert_eq!(
            JournalSource::from_options([("namespace", "n")]).unwrap(),
            JournalSource::Namespace {
                namespace: "n".into(),
                flags: 4
            }
        );
        assert!(JournalSource::from_options([("journalflags", "x")]).is_err());
        assert!(JournalSource::from_options([("bogus", "1")]).is_err());
        assert!(JournalSource::from_options([("rotated", "maybe")]).is_err());
        assert!(JournalSource::from_options([("rotated", "true")]).is_ok());
    }

    #[test]
    fn files_glob() {
        let d = tempfile::tempdir().unwrap();
        for n in ["a.journal", "b.journal", "c.txt"] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let pat = format!("{0}/*.journal, {0}/a.journal", d.path().display());
        match JournalSource::from_options([("journalfiles", pat.as_str())]).unwrap() {
            JournalSource::Files { files, .. } => assert_eq!(files.len(), 2),
            other => panic!("{other:?}"),
        }
        let e = JournalSource::from_options([("journalfiles", "/nonexistent/*.journal")])
            .unwrap()
            .open()
            .unwrap_err();
        assert!(matches!(e, JournalError::NoFiles { .. }));
    }
}
