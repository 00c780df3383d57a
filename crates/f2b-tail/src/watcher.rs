//! [`Watcher`]: tells which followed files may have changed.
//!
//! With inotify the watcher watches the *directories* of the followed files
//! for their names (create, delete, rename, attributes: events keep coming
//! across rename/delete rotations because the name is what matters), and
//! each followed file itself for writes. A write to a followed file wakes
//! [`Watcher::wait`] within microseconds; a write to another file of the same
//! directory (syslog's other logs, f2b's own log in `/var/log`) does not wake
//! it at all. The file watch follows the inode: after a rotation, the watch
//! of the old file is kept (until the file is gone, or a few rotations
//! later), so that writes still going to the renamed old file are noticed.
//! If a file cannot be watched (watch limit), its directory is watched for
//! writes too.
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
    /// Followed files of this directory that could not get a file watch:
    /// while there are any, the directory is watched for writes too.
    unwatched: usize,
}

/// The write watches of one followed path.
#[derive(Debug, Default)]
struct FileWatch {
    /// The watch of the file now at the path (none: absent, or no watch).
    wd: Option<WatchDescriptor>,
    /// Watches of earlier files at the path (rotated away, maybe still
    /// being written to and read to their end), oldest first.
    old: Vec<WatchDescriptor>,
    /// The file exists but could not be watched (counted in its
    /// directory's `unwatched`).
    failed: bool,
}

/// Watches of rotated-away files kept per path.
const MAX_OLD_WATCHES: usize = 4;

/// Watches followed files for changes. See the module docs.
#[derive(Debug)]
pub struct Watcher {
    inotify: Option<Inotify>,
    dirs: HashMap<PathBuf, DirWatch>,
    /// The directory names each watch serves. inotify returns the same
    /// descriptor for every name of one directory (a symlinked directory and
    /// its target), so one watch can serve several names.
    wd_dir: HashMap<WatchDescriptor, Vec<PathBuf>>,
    /// Write watches of followed files, and the paths each one serves (a
    /// file has one watch whatever its names: hard links share it).
    file_watches: HashMap<PathBuf, FileWatch>,
    wd_file: HashMap<WatchDescriptor, Vec<PathBuf>>,
    files: HashMap<PathBuf, Option<StatSig>>,
    poll_interval: Duration,
    next_poll: Instant,
    buffer: Vec<u8>,
}

/// A directory's events: its entries' names and attributes (writes are
/// watched on the followed files themselves, see [`FILE_MASK`]).
const DIR_MASK: WatchMask = WatchMask::ATTRIB
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);

/// A followed file's events: writes (and truncation).
const FILE_MASK: WatchMask = WatchMask::MODIFY;

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
            file_watches: HashMap::new(),
            wd_file: HashMap::new(),
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
        self.refresh_file_watch(path);
    }

    /// Stops watching a followed file.
    pub fn unwatch_file(&mut self, path: &Path) {
        if self.files.remove(path).is_some() {
            if let Some(fw) = self.file_watches.remove(path) {
                if fw.failed {
                    self.set_unwatched(path, false);
                }
                for wd in fw.wd.into_iter().chain(fw.old) {
                    self.drop_file_wd(&wd, path);
                }
            }
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
        let wd = self.try_add_watch(dir, DIR_MASK);
        self.dirs.insert(
            dir.to_path_buf(),
            DirWatch {
                wd,
                users: 1,
                unwatched: 0,
            },
        );
    }

    fn try_add_watch(&mut self, dir: &Path, mask: WatchMask) -> Option<WatchDescriptor> {
        let inotify = self.inotify.as_mut()?;
        // ENOSPC (watch limit), ENOENT, EACCES: poll this directory instead.
        let wd = inotify.watches().add(dir, mask).ok()?;
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

    /// The directory mask: writes too while a followed file of it has no
    /// write watch of its own.
    fn dir_mask(&self, dir: &Path) -> WatchMask {
        match self.dirs.get(dir) {
            Some(d) if d.unwatched > 0 => DIR_MASK | WatchMask::MODIFY,
            _ => DIR_MASK,
        }
    }

    /// Counts `path` in (or out of) its directory's unwatched files, and
    /// sets the directory's mask accordingly.
    fn set_unwatched(&mut self, path: &Path, unwatched: bool) {
        let Some(dir) = parent(path).map(Path::to_path_buf) else {
            return;
        };
        let Some(d) = self.dirs.get_mut(&dir) else {
            return;
        };
        let before = d.unwatched;
        d.unwatched = if unwatched {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        if (before == 0) != (d.unwatched == 0) && d.wd.is_some() {
            let mask = self.dir_mask(&dir);
            // the same watch descriptor, with the new mask
            let wd = self.try_add_watch(&dir, mask);
            if let Some(d) = self.dirs.get_mut(&dir) {
                d.wd = wd;
            }
        }
    }

    /// (Re)attaches the write watch of `path` to the file now at the path,
    /// keeping the watch of a file rotated away. Called when the path is
    /// followed and whenever its directory reports an event for its name.
    fn refresh_file_watch(&mut self, path: &Path) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let added = inotify.watches().add(path, FILE_MASK);
        let fw = self.file_watches.entry(path.to_path_buf()).or_default();
        let was_failed = fw.failed;
        match added {
            Ok(wd) => {
                fw.failed = false;
                if fw.wd.as_ref() != Some(&wd) {
                    fw.old.retain(|w| *w != wd);
                    if let Some(prev) = fw.wd.replace(wd.clone()) {
                        fw.old.push(prev);
                    }
                    let paths = self.wd_file.entry(wd).or_default();
                    if !paths.iter().any(|p| p == path) {
                        paths.push(path.to_path_buf());
                    }
                }
            }
            Err(e) => {
                // absent (it is watched again when created): no write to
                // miss; any other error: its directory watches writes
                fw.failed = e.kind() != io::ErrorKind::NotFound;
                if let Some(prev) = fw.wd.take() {
                    fw.old.push(prev);
                }
            }
        }
        let excess = fw.old.len().saturating_sub(MAX_OLD_WATCHES);
        let drop_wds: Vec<WatchDescriptor> = fw.old.drain(..excess).collect();
        let failed = fw.failed;
        for wd in drop_wds {
            self.drop_file_wd(&wd, path);
        }
        if failed != was_failed {
            self.set_unwatched(path, failed);
        }
    }

    /// Stops `wd` serving `path`; removes the watch when it serves no path.
    fn drop_file_wd(&mut self, wd: &WatchDescriptor, path: &Path) {
        let last = match self.wd_file.get_mut(wd) {
            Some(paths) => {
                paths.retain(|p| p != path);
                paths.is_empty()
            }
            None => false,
        };
        if last {
            self.wd_file.remove(wd);
            if let Some(i) = self.inotify.as_mut() {
                // The watch may already be gone (file removed).
                let _ = i.watches().remove(wd.clone());
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
        // followed paths whose name had an event (their write watch is
        // attached again after the read), and file watches the kernel ended
        let mut renamed: Vec<PathBuf> = Vec::new();
        let mut ended: Vec<WatchDescriptor> = Vec::new();
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
                    renamed.extend(self.file_watches.keys().cloned());
                    continue;
                }
                if let Some(paths) = self.wd_file.get(&ev.wd) {
                    // a write to a followed file (or to one rotated away)
                    changes.files.extend(paths.iter().cloned());
                    if ev.mask.contains(EventMask::IGNORED) {
                        ended.push(ev.wd.clone());
                    }
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
                    if let Some(path) = classify(dir, name, ev.mask, &self.files, changes) {
                        renamed.push(path);
                    }
                }
            }
            if !any {
                break;
            }
        }
        for wd in ended {
            if let Some(paths) = self.wd_file.remove(&wd) {
                for p in paths {
                    if let Some(fw) = self.file_watches.get_mut(&p) {
                        fw.old.retain(|w| *w != wd);
                        if fw.wd.as_ref() == Some(&wd) {
                            fw.wd = None;
                            renamed.push(p);
                        }
                    }
                }
            }
        }
        dedup(&mut renamed);
        for p in renamed {
            if self.files.contains_key(&p) {
                self.refresh_file_watch(&p);
            }
        }
        let Some(inotify) = self.inotify.as_mut() else {
            return Ok(());
        };
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
                let mask = self.dir_mask(&dir);
                let wd = self.try_add_watch(&dir, mask);
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
        // Files present without a write watch (created while their directory
        // was unwatched, or the watch failed): try again.
        if self.inotify.is_some() {
            let retry: Vec<PathBuf> = self
                .files
                .iter()
                .filter(|(p, sig)| {
                    sig.is_some() && self.file_watches.get(*p).is_none_or(|fw| fw.wd.is_none())
                })
                .map(|(p, _)| p.clone())
                .collect();
            for p in retry {
                self.refresh_file_watch(&p);
            }
        }
    }
}

/// Sorts a directory event into `changes`; returns the followed path it
/// names, if any (its write watch may need attaching to a new file).
fn classify(
    dir: &Path,
    name: &OsStr,
    mask: EventMask,
    files: &HashMap<PathBuf, Option<StatSig>>,
    changes: &mut Changes,
) -> Option<PathBuf> {
    let path = dir.join(name);
    if files.contains_key(&path) {
        changes.files.push(path.clone());
        return Some(path);
    }
    if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
        changes.created_in.push(dir.to_path_buf());
    } else {
        changes.touched_in.push(dir.to_path_buf());
    }
    None
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
    fn writes_to_other_files_of_the_directory_do_not_wake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let other = dir.path().join("other.log");
        std::fs::write(&a, "").expect("write");
        std::fs::write(&other, "").expect("write");
        let mut w = Watcher::new(Backend::Inotify, Duration::from_secs(60));
        w.watch_file(&a);
        std::fs::write(&other, "noise\n").expect("write");
        let changes = w.wait(Duration::from_millis(50)).expect("wait");
        assert!(changes.is_empty(), "{changes:?}");
        std::fs::write(&a, "x\n").expect("write");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&a));
    }

    #[test]
    fn writes_to_a_rotated_file_and_its_successor_are_seen() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let old = dir.path().join("a.log.1");
        std::fs::write(&a, "1\n").expect("write");
        let mut w = Watcher::new(Backend::Inotify, Duration::from_secs(60));
        w.watch_file(&a);
        // rename + create: the name events, then a write to each file
        std::fs::rename(&a, &old).expect("rename");
        std::fs::write(&a, "").expect("create");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert!(changes.files.contains(&a), "{changes:?}");
        let _ = w.wait(Duration::from_millis(20)).expect("drain");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&old)
            .expect("open old");
        f.write_all(b"late\n").expect("write old");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&a), "old file's write");
        std::fs::write(&a, "new\n").expect("write new");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&a), "new file's write");
        // delete + create, and copytruncate (truncation is a write)
        std::fs::remove_file(&a).expect("delete");
        std::fs::write(&a, "").expect("recreate");
        let _ = w.wait(Duration::from_secs(5)).expect("wait");
        let _ = w.wait(Duration::from_millis(20)).expect("drain");
        std::fs::write(&a, "again\n").expect("write");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(
            changes.files,
            std::slice::from_ref(&a),
            "recreated file's write"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&a)
            .expect("open")
            .set_len(0)
            .expect("truncate");
        let changes = w.wait(Duration::from_secs(5)).expect("wait");
        assert_eq!(changes.files, std::slice::from_ref(&a), "truncation");
        // unfollowed: no watch left behind
        w.unwatch_file(&a);
        assert!(w.wd_file.is_empty() && w.file_watches.is_empty());
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
