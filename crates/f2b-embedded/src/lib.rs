//! f2b's own configuration tree, embedded in the binary.
//!
//! The tree lives in the workspace's `config/` directory (fail2ban's INI
//! dialect: `fail2ban.conf`, `jail.conf`, `paths-*.conf`, `filter.d/`,
//! `action.d/`), written from scratch for f2b.  `build.rs` embeds every file
//! with `include_str!`, so a fresh machine without `/etc/fail2ban` still has
//! a complete, working configuration.
//!
//! * [`files`] lists `(relative path, contents)` pairs, sorted by path; the
//!   config loader reads them as an in-memory source.
//! * [`get`] looks one file up by its relative path.
//! * [`export`] writes the tree to a directory (`f2b config export DIR`) so
//!   an administrator can add `.local` overrides.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/files.rs"));
}

/// Every embedded file as `(relative path with '/' separators, contents)`,
/// sorted by path (e.g. `("filter.d/sshd.conf", "...")`).
pub fn files() -> &'static [(&'static str, &'static str)] {
    generated::FILES
}

/// Contents of the embedded file at `path` (relative, '/'-separated), if any.
pub fn get(path: &str) -> Option<&'static str> {
    files()
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| files()[i].1)
}

/// Writes the embedded tree below `dir` (created if missing) and returns the
/// paths written.
///
/// Existing files are left alone unless `overwrite` is true; with
/// `overwrite == false` and an existing file the call fails with
/// [`io::ErrorKind::AlreadyExists`] before anything is written, so an export
/// never half-replaces an administrator's tree.
pub fn export(dir: &Path, overwrite: bool) -> io::Result<Vec<PathBuf>> {
    let mut targets = Vec::with_capacity(files().len());
    for (rel, contents) in files() {
        let target = join_relative(dir, rel)?;
        if !overwrite && target.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists (use overwrite to replace it)", target.display()),
            ));
        }
        targets.push((target, *contents));
    }
    let mut written = Vec::with_capacity(targets.len());
    for (target, contents) in targets {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, contents)?;
        written.push(target);
    }
    Ok(written)
}

/// Joins a '/'-separated relative path below `dir`, refusing anything that
/// could escape it.
fn join_relative(dir: &Path, rel: &str) -> io::Result<PathBuf> {
    let mut out = dir.to_path_buf();
    for part in rel.split('/') {
        match Path::new(part).components().next() {
            Some(Component::Normal(_)) if Path::new(part).components().count() == 1 => {
                out.push(part)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("embedded path {rel:?} is not a plain relative path"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_sorted_and_unique() {
        let f = files();
        assert!(
            f.windows(2).all(|w| w[0].0 < w[1].0),
            "paths must be strictly sorted"
        );
    }

    #[test]
    fn core_files_present() {
        for p in [
            "fail2ban.conf",
            "jail.conf",
            "paths-common.conf",
            "filter.d/common.conf",
            "filter.d/sshd.conf",
        ] {
            let c = get(p).unwrap_or_else(|| panic!("{p} missing from the embedded tree"));
            assert!(!c.trim().is_empty(), "{p} is empty");
        }
        assert!(get("nope.conf").is_none());
    }

    #[test]
    fn export_writes_every_file_and_refuses_to_clobber() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let written = export(tmp.path(), false).expect("first export");
        assert_eq!(written.len(), files().len());
        for (rel, contents) in files() {
            let on_disk = fs::read_to_string(tmp.path().join(rel)).expect("exported file");
            assert_eq!(&on_disk, contents, "{rel}");
        }
        fs::write(tmp.path().join("jail.conf"), "changed").expect("write");
        let err = export(tmp.path(), false).expect_err("must refuse to overwrite");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            fs::read_to_string(tmp.path().join("jail.conf")).expect("read"),
            "changed"
        );
        export(tmp.path(), true).expect("overwrite export");
        assert_eq!(
            fs::read_to_string(tmp.path().join("jail.conf")).expect("read"),
            get("jail.conf").expect("jail.conf")
        );
    }

    #[test]
    fn join_relative_rejects_escapes() {
        let d = Path::new("/tmp/x");
        assert!(join_relative(d, "../etc/passwd").is_err());
        assert!(join_relative(d, "/etc/passwd").is_err());
        assert!(join_relative(d, "a//b").is_err());
        assert_eq!(
            join_relative(d, "filter.d/a.conf").expect("ok"),
            d.join("filter.d").join("a.conf")
        );
    }
}
