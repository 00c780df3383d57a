//! [`Watcher`]: tells which followed files may have changed.
//!
//! With inotify the watcher watches the *directories* of the followed files
//! (one watch per directory, not per file: fewer watches, and events keep
//! coming across rename/delete rotations because the name is what matters).
//! A write to a followed file wakes [`Watcher::wait`] within microseconds.
//! Every `poll_interval` the watcher also stats all files and reports those
//! whose (device, inode, size, mtime) changed; that is the whole mechanism in
//! polling mode and a safety net against lost events in inotify mode.
//!
//! Fallbacks: if inotify cannot be initialised (`backend = auto` or
//! `inotify`), the watcher polls; if adding a directory watch fails (watch
//! limit `ENOSPC`, permissions), the files in that directory are polled and
//! the watch is retried on every poll tick.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use crate::TailError;

/// fail2ban's polling step (`Utils.DEFAULT_SLEEP_INTERVAL`).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The `backend` jail option, for file log sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// inotify if available, else polling.
    #[default]
    Auto,
    /// stat(2) loop only.
    Polling,
    /// inotify (`pyinotify` is accepted as a synonym), falling back to
    /// polling when inotify is unavailable.
    Inotify,
}

impl Backend {
    /// Parses a fail2ban `backend` value; options after `[` (e.g.
    /// `polling[...]`) are ignored. `systemd` is rejected: the journal is not
    /// a file source. `gamin` (removed from fail2ban) maps to `auto`.
    pub fn from_name(name: &str) -> Result<Backend, TailError> {
        let base = name.split('[').next().unwrap_or(name).trim();
        match base.to_ascii_lowercase().as_str() {
            "auto" | "gamin" => Ok(Backend::Auto),
            "polling" => Ok(Backend::Polling),
            "inotify" | "pyinotify" => Ok(Backend::Inotify),
            "systemd" => Err(TailError::Backend {
                name: name.to_owned(),
                reason: "the systemd journal backend is not implemented yet",
            }),
            _ => Err(TailError::Backend {
                name: name.to_owned(),
                reason: "unknown backend",
            }),
        }
    }
}

/// The mechanism actually in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveBackend {
    /// inotify (with polling for directories that could not be watched).
    Inotify,
    /// Polling only.
    Polling,
}

/// What [`Watcher::wait`] observed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Followed files that may have new content or have been rotated.
    pub files: Vec<PathBuf>,
    /// Watched directories in which an entry was created or renamed
    /// (a `logpath` glob may match something new).
    pub created_in: Vec<PathBuf>,
    /// Watched directories in which an unfollowed entry changed (e.g. the
    /// renamed old log still being written to).
    pub touched_in: Vec<PathBuf>,
    /// The inotify queue overflowed, or a directory watch was lost or
    /// (re)established: every file should be checked.
    pub everything: bool,
}

impl Changes {
    /// True when nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.created_in.is_empty()
            && self.touched_in.is_empty()
            && !self.everything
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatSig {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stat_sig(path: &Path) -> Option<StatSig> {
    std::fs::metadata(path).ok().map(|m| StatSig {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

#[derive(Debug)]
struct DirWatch {
    wd: Option<WatchDescriptor>,
    /// Followed files and explicitly watched directories referring to this
    /// directory.
    users: usize,
}

/// Watches followed files for changes. See the module docs.
#[derive(Debug)]
pub struct Watcher {
    inotify: Option<Inotify>,
    dirs: HashMap<PathBuf, DirWatch>,
    /// The directory names each watch serves. inotify returns the same
    /// descriptor for every name of one directory (a symlinked directory and
    /// its target), so one watch can serve several names.
    wd_dir: HashMap<WatchDescriptor, Vec<PathBuf>>,
    files: HashMap<PathBuf, Option<StatSig>>,
    poll_interval: Duration,
    next_poll: Instant,
    buffer: Vec<u8>,
}

const DIR_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);

impl Watcher {
    /// Creates a watcher. `Auto` and `Inotify` fall back to polling when
    /// inotify cannot be initialised (see [`Watcher::active_backend`]).
    pub fn new(backend: Backend, poll_interval: Duration) -> Watcher {
        let inotify = match backend {
            Backend::Polling => None,
            Backend::Auto | Backend::Inotify => Inotify::init().ok(),
        };
        Watcher {
            inotify,
            dirs: HashMap::new(),
            wd_dir: HashMap::new(),
            files: HashMap::new(),
            poll_interval,
            next_poll: Instant::now() + poll_interval,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// The mechanism in use.
    pub fn active_backend(&self) -> ActiveBackend {
        if self.inotify.is_some() {
            ActiveBackend::Inotify
        } else {
            ActiveBackend::Polling
        }
    }

    /// The inotify descriptor, for callers that want to wait on it with
    /// their own event loop (e.g. tokio's `AsyncFd`) and then call
    /// [`Watcher::wait`] with a zero timeout.
    pub fn as_raw_fd(&self) -> Option<RawFd> {
        self.inotify.as_ref().map(|i| i.as_raw_fd())
    }

    /// Whether `path`'s directory is covered by an inotify watch (false:
    /// the file is only polled).
    pub fn is_inotify_watched(&self, path: &Path) -> bool {
        parent(path)
            .and_then(|d| self.dirs.get(d))
            .is_some_and(|d| d.wd.is_some())
    }

    /// Starts watching a followed file (its directory, and its stat
    /// signature for polling). Watching the same path twice is a no-op.
    pub fn watch_file(&mut self, path: &Path) {
        if self.files.contains_key(path) {
            return;
        }
        self.files.insert(path.to_path_buf(), stat_sig(path));
        if let Some(dir) = parent(path) {
            let dir = dir.to_path_buf();
            self.add_dir_user(&dir);
        }
    }

    /// Stops watching a followed file.
    pub fn unwatch_file(&mut self, path: &Path) {
        if self.files.remove(path).is_some() {
            if let Some(dir) = parent(path) {
                let dir = dir.to_path_buf();
                self.remove_dir_user(&dir);
            }
        }
    }

    /// Watches a directory for new entries (for `logpath` globs).
    pub fn watch_dir(&mut self, dir: &Path) {
        self.add_dir_user(dir);
    }

    /// Undoes one [`Watcher::watch_dir`].
    pub fn unwatch_dir(&mut self, dir: &Path) {
        self.remove_dir_user(dir);
    }

    fn add_dir_user(&mut self, dir: &Path) {
        if let Some(d) = self.dirs.get_mut(dir) {
            d.users += 1;
            return;
        }
        let wd = self.try_add_watch(dir);
        self.dirs
            .insert(dir.to_path_buf(), DirWatch { wd, users: 1 });
    }

    fn try_add_watch(&mut self, dir: &Path) -> Option<WatchDescriptor> {
        let inotify = self.inotify.as_mut()?;
        // ENOSPC (watch limit), ENOENT, EACCES: poll this directory instead.
        let wd = inotify.watches().add(dir, DIR_MASK).ok()?;
        let names = self.wd_dir.entry(wd.clone()).or_default();
        if !names.iter().any(|n| n == dir) {
            names.push(dir.to_path_buf());
        }
        Some(wd)
    }

    fn remove_dir_user(&mut self, dir: &Path) {
        let Some(d) = self.dirs.get_mut(dir) else {
            return;
        };
        d.users = d.users.saturating_sub(1);
        if d.users > 0 {
            return;
        }
        if let Some(d) = self.dirs.remove(dir) {
            if let Some(wd) = d.wd {
                let names = self.wd_dir.get_mut(&wd);
                let last = match names {
                    Some(names) => {
                        names.retain(|n| n != dir);
                        names.is_empty()
                    }
                    None => true,
                };
                // Another name of the same directory still needs the watch.
                if last {
                    self.wd_dir.remove(&wd);
                    if let Some(i) = self.inotify.as_mut() {
                        // The watch may already be gone (directory removed).
                        let _ = i.watches().remove(wd);
                    }
                }
            }
        }
    }

    /// Blocks until something may have changed or `timeout` elapsed. A zero
    /// timeout only collects what is pending.
    pub fn wait(&mut self, timeout: Duration) -> Result<Changes, TailError> {
        let mut changes = Changes::default();
        let now = Instant::now();
        let deadline = now + timeout;
        loop {
            let now = Instant::now();
            let until = deadline.min(self.next_poll);
            let nap = until.saturating_duration_since(now);
            if self.inotify.is_some() {
                if self.wait_readable(nap)? {
                    self.read_events(&mut changes)?;
                }
            } else if !nap.is_zero() {
                std::thread::sleep(nap);
            }
            if Instant::now() >= self.next_poll {
                self.poll_tick(&mut changes);
            }
            if !changes.is_empty() || Instant::now() >= deadline {
                break;
            }
        }
        dedup(&mut changes.files);
        dedup(&mut changes.created_in);
        dedup(&mut changes.touched_in);
        Ok(changes)
    }

    fn wait_readable(&self, timeout: Duration) -> Result<bool, TailError> {
        let Some(inotify) = self.inotify.as_ref() else {
            return Ok(false);
        };
        let mut pfd = libc::pollfd {
            fd: inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Round up so that a 0.3 ms remainder does not become a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is a valid pollfd for the duration of the call and
        // nfds is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(TailError::Watcher { source: e });
        }
        Ok(rc > 0)
    }

    fn read_events(&mut self, changes: &mut Changes) -> Result<(), TailError> {
        let Some(inotify) = self.inotify.as_mut() else {
            return Ok(());
        };
        let mut lost: Vec<WatchDescriptor> = Vec::new();
        loop {
            let events = match inotify.read_events(&mut self.buffer) {
                Ok(ev) => ev,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TailError::Watcher { source: e }),
            };
            let mut any = false;
            for ev in events {
                any = true;
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    changes.everything = true;
                    continue;
                }
                let Some(dirs) = self.wd_dir.get(&ev.wd) else {
                    continue;
                };
                if ev
                    .mask
                    .intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF)
                {
                    lost.push(ev.wd.clone());
                    changes.everything = true;
                    continue;
                }
                let Some(name) = ev.name else {
                    continue;
                };
                for dir in dirs {
                    classify(dir, name, ev.mask, &self.files, changes);
                }
            }
            if !any {
                break;
            }
        }
        for wd in lost {
            if let Some(dirs) = self.wd_dir.remove(&wd) {
                for dir in dirs {
                    if let Some(d) = self.dirs.get_mut(&dir) {
                        d.wd = None;
                    }
                }
                let _ = inotify.watches().remove(wd);
            }
        }
        Ok(())
    }

    fn poll_tick(&mut self, changes: &mut Changes) {
        self.next_poll = Instant::now() + self.poll_interval;
        // Retry directory watches that failed or were lost.
        if self.inotify.is_some() {
            let missing: Vec<PathBuf> = self
                .dirs
                .iter()
                .filter(|(_, d)| d.wd.is_none())
                .map(|(p, _)| p.clone())
                .collect();
            for dir in missing {
                let wd = self.try_add_watch(&dir);
                if wd.is_some() {
                    // Whatever happened while unwatched must be looked at.
                    changes.created_in.push(dir.clone());
                    changes.everything = true;
                }
                if let Some(d) = self.dirs.get_mut(&dir) {
                    d.wd = wd;
                }
            }
        }
        for (path, sig) in self.files.iter_mut() {
            let now = stat_sig(path);
            if now != *sig {
                *sig = now;
                changes.files.push(path.clone());
            }
        }
    }
}

fn classify(
    dir: &Path,
    name: &OsStr,
    mask: EventMask,
    files: &HashMap<PathBuf, Option<StatSig>>,
    changes: &mut Changes,
) {
    let path = dir.join(name);
    if files.contains_key(&path) {
        changes.files.push(path);
    } else if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
        changes.created_in.push(dir.to_path_buf());
    } else {
        changes.touched_in.push(dir.to_path_buf());
    }
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

fn dedup(v: &mut Vec<PathBuf>) {
    let mut seen = HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names() {
        let check = |name: &str| Backend::from_name(name).ok();
        assert_eq!(check("auto"), Some(Backend::Auto));
        assert_eq!(check("polling"), Some(Backend::Polling));
        assert_eq!(check("pyinotify"), Some(Backend::Inotify));
        assert_eq!(check("inotify"), Some(Backend::Inotify));
        assert_eq!(check(" polling[x=1] "), Some(Backend::Polling));
        assert_eq!(check("gamin"), Some(Backend::Auto));
        assert!(matches!(
            Backend::from_name("systemd"),
            Err(TailError::Backend { .. })
        ));
        assert!(Backend::from_name("bogus").is_err());
    }

    #[test]
    fn polling_reports_changed_signatures_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        std::fs::write(&a, "1\n").expect("write");
        std::fs::write(&b, "1\n").expect("write");
        let mut w = Watcher::new(Backend::Polling, Duration::from_millis(5));
        assert_eq!(w.active_backend(), ActiveBackend::Polling);
        assert_eq!(w.as_raw_fd(), None);
        w.watch_file(&a);
        w.watch_file(&b);
        std::fs::write(&b, "1\n2\n").expect("write");
        let changes = w.wait(Duration::from_millis(500)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&b));
        w.unwatch_file(&b);
        std::fs::write(&b, "1\n2\n3\n").expect("write");
        let changes = w.wait(Duration::from_millis(30)).expect("wait");
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn inotify_names_the_written_file_and_new_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        std::fs::write(&a, "").expect("write");
        let mut w = Watcher::new(Backend::Inotify, Duration::from_secs(60));
        assert_eq!(w.active_backend(), ActiveBackend::Inotify);
        w.watch_file(&a);
        assert!(w.is_inotify_watched(&a));
        std::fs::write(&a, "x\n").expect("write");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&a));
        std::fs::write(dir.path().join("new.log"), "").expect("write");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.created_in, [dir.path().to_path_buf()]);
    }
}
