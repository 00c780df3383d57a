//! [`Tailer`]: the set of log files followed by the server.
//!
//! The tailer is a registry keyed by canonical path: a file that several
//! jails follow is opened and read once, and every line is handed to each
//! subscriber (jail). It owns the [`Watcher`], re-evaluates `logpath` globs
//! (on directory events and every `glob_interval`), and reads only the files
//! the watcher reported, plus every file on each poll tick.
//!
//! Threading: the tailer is synchronous. The intended use is one dedicated
//! thread looping `wait` + `read` and sending lines into the async world
//! (or the caller waits on [`Watcher::as_raw_fd`] itself).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::watcher::{ActiveBackend, Backend, Watcher, DEFAULT_POLL_INTERVAL};
use crate::{Checkpoint, FileTail, Line, LogEncoding, Start, TailError, TailEvent, TailOptions};

/// Identifies a consumer of lines; the server uses one per jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

/// Where a newly added log path starts (the `head`/`tail` suffix of a
/// `logpath` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// Read existing content (fail2ban's default).
    #[default]
    Head,
    /// Only lines written from now on.
    Tail,
}

/// Per-subscription options of a `logpath` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogPathOptions {
    /// `head` or `tail`.
    pub start: StartMode,
    /// The jail's `logencoding`.
    pub encoding: LogEncoding,
}

/// Options of a [`Tailer`].
#[derive(Debug, Clone)]
pub struct TailerOptions {
    /// File-change mechanism.
    pub backend: Backend,
    /// stat(2) interval (the whole mechanism with `polling`, a safety net
    /// with inotify).
    pub poll_interval: Duration,
    /// How often globs are re-evaluated even without directory events.
    pub glob_interval: Duration,
    /// Line cap and rotation grace for every file (`encoding` is ignored:
    /// it comes from each subscription).
    pub tail: TailOptions,
    /// Most log descriptors held open at once. Beyond it the least recently
    /// read files are parked ([`crate::FileTail::park`]: closed, reopened by
    /// their next read), so a jail with thousands of log files cannot
    /// exhaust the process's descriptors. Rotated-away files being drained
    /// count too; at least one file is always open.
    pub max_open_files: usize,
    /// Bytes one [`Tailer::read`] reads at most (about: whole 64 KiB chunks),
    /// over all files; files with more content stay marked and the next
    /// `read` continues. Bounds what a caller collecting a burst's lines
    /// holds at once. Default: unlimited.
    pub max_read_bytes: usize,
}

impl Default for TailerOptions {
    fn default() -> Self {
        TailerOptions {
            backend: Backend::Auto,
            poll_interval: DEFAULT_POLL_INTERVAL,
            glob_interval: Duration::from_secs(10),
            tail: TailOptions::default(),
            max_open_files: default_max_open_files(),
            max_read_bytes: usize::MAX,
        }
    }
}

/// The default [`TailerOptions::max_open_files`]: half of what the soft
/// `RLIMIT_NOFILE` leaves after 128 descriptors for everything else (sockets,
/// database, action pipes), between 8 and 4096.
pub fn default_max_open_files() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed to it.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft.saturating_sub(128) / 2).clamp(8, 4096)
}

/// A position to persist, per subscriber and path (fail2ban's `logs` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheckpoint {
    /// The jail.
    pub subscriber: SubscriberId,
    /// The path as the jail names it (glob match, not canonicalised).
    pub path: PathBuf,
    /// Position and first-line digest.
    pub checkpoint: Checkpoint,
}

/// What one [`Tailer::read`] did.
#[derive(Debug, Default)]
pub struct TailerReport {
    /// Line deliveries (a line fanned out to two jails counts twice).
    pub deliveries: u64,
    /// Events to log, with the file they concern.
    pub events: Vec<(PathBuf, TailEvent)>,
    /// Read errors on open files (the file stays followed and is retried).
    pub errors: Vec<TailError>,
    /// Files that started being followed after `add_logpath` returned (new
    /// glob matches, files created later), with subscriber.
    pub added: Vec<(SubscriberId, PathBuf)>,
    /// Files no longer followed (glob matches that disappeared).
    pub removed: Vec<(SubscriberId, PathBuf)>,
}

#[derive(Debug)]
struct Sub {
    id: SubscriberId,
    /// The path as matched by the subscriber's pattern.
    name: PathBuf,
    /// The pattern that brought this file in.
    via: String,
    encoding: LogEncoding,
}

#[derive(Debug)]
struct Entry {
    tail: FileTail,
    subs: Vec<Sub>,
    /// Names registered with the watcher and `by_path` for this entry.
    watched: Vec<PathBuf>,
    /// When it was last opened or read (the tailer's tick), for parking the
    /// least recently used file first.
    used: u64,
}

#[derive(Debug)]
struct Pattern {
    id: SubscriberId,
    text: String,
    is_glob: bool,
    opts: LogPathOptions,
    /// Directory watched for new matches, if the pattern has a static one.
    dir: Option<PathBuf>,
}

/// The followed files of the whole server. See the module docs.
#[derive(Debug)]
pub struct Tailer {
    opts: TailerOptions,
    watcher: Watcher,
    /// Canonical path -> entry.
    entries: HashMap<PathBuf, Entry>,
    /// Followed (watched) path -> canonical key.
    by_path: HashMap<PathBuf, PathBuf>,
    patterns: Vec<Pattern>,
    dirty: HashSet<PathBuf>,
    /// Paths that could not be opened, with the error last reported.
    failed: HashMap<PathBuf, std::io::ErrorKind>,
    rescan_due: bool,
    next_glob: Instant,
    pending: TailerReport,
    /// Log descriptors held by all entries (sum of `FileTail::descriptors`).
    open_fds: usize,
    /// Use counter for [`Entry::used`].
    tick: u64,
}

impl Tailer {
    /// Creates an empty tailer.
    pub fn new(opts: TailerOptions) -> Tailer {
        let watcher = Watcher::new(opts.backend, opts.poll_interval);
        Tailer {
            next_glob: Instant::now() + opts.glob_interval,
            opts,
            watcher,
            entries: HashMap::new(),
            by_path: HashMap::new(),
            patterns: Vec::new(),
            dirty: HashSet::new(),
            failed: HashMap::new(),
            rescan_due: false,
            pending: TailerReport::default(),
            open_fds: 0,
            tick: 0,
        }
    }

    /// Log descriptors held now (at most [`TailerOptions::max_open_files`],
    /// unless a single file needs more while rotated-away files drain).
    pub fn open_descriptors(&self) -> usize {
        self.open_fds
    }

    /// Parks least recently used files until the descriptors held are within
    /// the cap. Never parked: `keep` (the file just opened or read) and files
    /// with a read pending (`dirty`, `pending`), unless nothing else is left.
    fn enforce_cap(&mut self, keep: Option<&PathBuf>, pending: &HashSet<PathBuf>) {
        let cap = self.opts.max_open_files.max(1);
        let mut refused: HashSet<PathBuf> = HashSet::new();
        while self.open_fds > cap {
            let candidates = || {
                self.entries.iter().filter(|(k, e)| {
                    e.tail.descriptors() > 0
                        && !e.tail.has_retired()
                        && Some(*k) != keep
                        && !refused.contains(*k)
                })
            };
            let idle = candidates()
                .filter(|(k, _)| !self.dirty.contains(*k) && !pending.contains(*k))
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let victim = idle.or_else(|| {
                candidates()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone())
            });
            let Some(key) = victim else { break };
            if let Some(e) = self.entries.get_mut(&key) {
                let before = e.tail.descriptors();
                if !e.tail.park() {
                    refused.insert(key);
                }
                self.open_fds = self.open_fds + e.tail.descriptors() - before;
            }
        }
    }

    /// The change-notification mechanism in use (inotify may have fallen
    /// back to polling).
    pub fn active_backend(&self) -> ActiveBackend {
        self.watcher.active_backend()
    }

    /// The watcher, e.g. for [`Watcher::as_raw_fd`].
    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }

    /// Adds a `logpath` entry (a path or a glob) for `sub` and opens what it
    /// matches now. `checkpoint` is asked for each matched file's stored
    /// position (the server looks it up in the database for this jail);
    /// with [`StartMode::Tail`] it is not consulted, as in fail2ban.
    ///
    /// A file already followed for another subscriber is shared: the new
    /// subscriber receives lines from the file's current position on.
    /// Paths that match nothing yet are kept and picked up (from the head)
    /// when they appear. Files that exist but cannot be opened are reported
    /// in the next [`Tailer::read`] report and retried on glob re-evaluation.
    ///
    /// Returns the files now followed for this entry.
    pub fn add_logpath(
        &mut self,
        sub: SubscriberId,
        logpath: &str,
        opts: LogPathOptions,
        checkpoint: &mut dyn FnMut(&Path) -> Option<Checkpoint>,
    ) -> Result<Vec<PathBuf>, TailError> {
        let is_glob = logpath.contains(['*', '?', '[']);
        if is_glob {
            glob::Pattern::new(logpath).map_err(|e| TailError::Pattern {
                pattern: logpath.to_owned(),
                message: e.to_string(),
            })?;
        }
        if self
            .patterns
            .iter()
            .any(|p| p.id == sub && p.text == logpath)
        {
            return Ok(self.files_via(sub, logpath));
        }
        let dir = static_dir(logpath);
        if let Some(d) = &dir {
            self.watcher.watch_dir(d);
        }
        self.patterns.push(Pattern {
            id: sub,
            text: logpath.to_owned(),
            is_glob,
            opts,
            dir,
        });
        let idx = self.patterns.len() - 1;
        let mut out = Vec::new();
        for path in expand(logpath, is_glob) {
            let start = match opts.start {
                StartMode::Tail => Start::Tail,
                StartMode::Head => checkpoint(&path).map(Start::At).unwrap_or(Start::Head),
            };
            if self.attach(idx, &path, start, false) {
                out.push(path);
            }
        }
        Ok(out)
    }

    /// Removes one `logpath` entry of `sub` (as given to `add_logpath`, or
    /// one file it matched), closing files nobody follows any more.
    pub fn remove_logpath(&mut self, sub: SubscriberId, logpath: &str) {
        if let Some(i) = self
            .patterns
            .iter()
            .position(|p| p.id == sub && p.text == logpath)
        {
            let p = self.patterns.remove(i);
            if let Some(d) = &p.dir {
                self.watcher.unwatch_dir(d);
            }
        }
        let target = Path::new(logpath);
        self.detach_where(|s| s.id == sub && (s.via == logpath || s.name == target));
    }

    /// Removes every subscription of `sub` (jail stopped).
    pub fn remove_subscriber(&mut self, sub: SubscriberId) {
        let (gone, keep): (Vec<Pattern>, Vec<Pattern>) = std::mem::take(&mut self.patterns)
            .into_iter()
            .partition(|p| p.id == sub);
        self.patterns = keep;
        for p in gone {
            if let Some(d) = &p.dir {
                self.watcher.unwatch_dir(d);
            }
        }
        self.detach_where(|s| s.id == sub);
    }

    /// How many distinct files are open (a file shared by jails counts once).
    pub fn followed_files(&self) -> usize {
        self.entries.len()
    }

    /// The files followed for `sub` (fail2ban's "File list").
    pub fn files(&self, sub: SubscriberId) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .entries
            .values()
            .flat_map(|e| e.subs.iter())
            .filter(|s| s.id == sub)
            .map(|s| s.name.clone())
            .collect();
        v.sort();
        v
    }

    /// Changes the `logencoding` of every file `sub` follows.
    pub fn set_encoding(&mut self, sub: SubscriberId, encoding: LogEncoding) {
        for p in self.patterns.iter_mut().filter(|p| p.id == sub) {
            p.opts.encoding = encoding;
        }
        for e in self.entries.values_mut() {
            for s in e.subs.iter_mut().filter(|s| s.id == sub) {
                s.encoding = encoding;
            }
            if let Some(first) = e.subs.first() {
                e.tail.set_encoding(first.encoding);
            }
        }
    }

    /// Positions to persist, one per (subscriber, file). Each is the offset
    /// after the last line already handed to [`Tailer::read`]'s callback.
    pub fn checkpoints(&self) -> Vec<FileCheckpoint> {
        let mut v = Vec::new();
        for e in self.entries.values() {
            if let Some(cp) = e.tail.checkpoint() {
                for s in &e.subs {
                    v.push(FileCheckpoint {
                        subscriber: s.id,
                        path: s.name.clone(),
                        checkpoint: cp.clone(),
                    });
                }
            }
        }
        v
    }

    /// The current position of one followed file (by the name a jail uses),
    /// e.g. for fail2ban's `Added logfile: ... (pos = .., hash = ..)` line.
    pub fn checkpoint_of(&self, path: &Path) -> Option<Checkpoint> {
        let key = self.by_path.get(path)?;
        self.entries.get(key)?.tail.checkpoint()
    }

    /// fail2ban's initial seek for `head` files: moves a just-added file to
    /// its first line stamped at or after `target` (usually now − findtime),
    /// see [`FileTail::seek_to_time`]. Only a file from which nothing has
    /// been read yet is moved (a file shared with a running jail is not);
    /// returns the new position if it moved.
    pub fn seek_to_time(
        &mut self,
        path: &Path,
        target: f64,
        time_of: &mut dyn FnMut(&str) -> Option<f64>,
    ) -> Result<Option<u64>, TailError> {
        let Some(e) = self.by_path.get(path).and_then(|k| self.entries.get_mut(k)) else {
            return Ok(None);
        };
        if e.tail.stats().bytes > 0 {
            return Ok(None);
        }
        e.tail.seek_to_time(target, time_of).map(Some)
    }

    /// Blocks until some followed file may have changed, a rescan is due,
    /// or `timeout` passed. Returns whether [`Tailer::read`] has work.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, TailError> {
        if self.has_work() {
            return Ok(true);
        }
        let until_glob = self.next_glob.saturating_duration_since(Instant::now());
        let changes = self.watcher.wait(timeout.min(until_glob))?;
        if changes.everything {
            self.dirty.extend(self.entries.keys().cloned());
        }
        for f in changes.files {
            if let Some(key) = self.by_path.get(&f) {
                self.dirty.insert(key.clone());
            }
        }
        for d in changes.touched_in.iter().chain(changes.created_in.iter()) {
            for (key, e) in &self.entries {
                if e.tail.has_retired() && e.tail.path().parent() == Some(d.as_path()) {
                    self.dirty.insert(key.clone());
                }
            }
        }
        if !changes.created_in.is_empty() {
            let dirs: HashSet<&PathBuf> = changes.created_in.iter().collect();
            if self
                .patterns
                .iter()
                .any(|p| p.dir.as_ref().is_some_and(|d| dirs.contains(d)))
            {
                self.rescan_due = true;
            }
        }
        // Rotated-away files need reading until their grace time ends.
        for (key, e) in &self.entries {
            if e.tail.has_retired() || !e.tail.is_open() {
                self.dirty.insert(key.clone());
            }
        }
        Ok(self.has_work())
    }

    fn has_work(&self) -> bool {
        !self.dirty.is_empty() || self.rescan_due || Instant::now() >= self.next_glob
    }

    /// Marks every followed file for reading by the next [`Tailer::read`]
    /// (e.g. right after start, or after resuming from a pause).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.entries.keys().cloned());
    }

    /// Re-evaluates globs if due, then reads the files marked by
    /// [`Tailer::wait`] and hands every line to `out` once per subscriber,
    /// decoded with that subscriber's `logencoding`. Lines of one file are
    /// delivered in file order.
    pub fn read(&mut self, out: &mut dyn FnMut(SubscriberId, &Line<'_>)) -> TailerReport {
        let now = Instant::now();
        if self.rescan_due || now >= self.next_glob {
            self.rescan();
            self.rescan_due = false;
            self.next_glob = now + self.opts.glob_interval;
        }
        let mut report = std::mem::take(&mut self.pending);
        let mut dirty: HashSet<PathBuf> = std::mem::take(&mut self.dirty);
        let order: Vec<PathBuf> = dirty.iter().cloned().collect();
        let mut budget = u64::try_from(self.opts.max_read_bytes).unwrap_or(u64::MAX);
        for key in order {
            dirty.remove(&key);
            if budget == 0 {
                self.dirty.insert(key);
                continue;
            }
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            let bytes_before = entry.tail.stats().bytes;
            self.tick += 1;
            entry.used = self.tick;
            let fds_before = entry.tail.descriptors();
            let subs = &entry.subs;
            let mut deliveries = 0u64;
            let res = entry.tail.read_lines_budget(
                &mut |line: &Line<'_>| {
                    for s in subs {
                        deliveries += 1;
                        if s.encoding == entry_encoding(subs) {
                            out(
                                s.id,
                                &Line {
                                    file: &s.name,
                                    ..*line
                                },
                            );
                        } else {
                            let (text, _) = s.encoding.decode(line.bytes);
                            out(
                                s.id,
                                &Line {
                                    text: text.as_ref(),
                                    file: &s.name,
                                    ..*line
                                },
                            );
                        }
                    }
                },
                budget,
            );
            report.deliveries += deliveries;
            self.open_fds = self.open_fds + entry.tail.descriptors() - fds_before;
            budget = budget.saturating_sub(entry.tail.stats().bytes - bytes_before);
            match res {
                Ok(r) => {
                    if r.more {
                        self.dirty.insert(key.clone());
                    }
                    report
                        .events
                        .extend(r.events.into_iter().map(|ev| (key.clone(), ev)))
                }
                Err(e) => report.errors.push(e),
            }
            self.enforce_cap(Some(&key), &dirty);
        }
        report
    }

    /// Reads everything that is pending now without waiting (convenience
    /// for `wait(0)` + `read`).
    pub fn read_now(
        &mut self,
        out: &mut dyn FnMut(SubscriberId, &Line<'_>),
    ) -> Result<TailerReport, TailError> {
        self.wait(Duration::ZERO)?;
        Ok(self.read(out))
    }

    /// Attaches the file `path` for pattern `idx`. Returns whether the
    /// subscriber now follows it.
    fn attach(&mut self, idx: usize, path: &Path, start: Start, report: bool) -> bool {
        let Some(p) = self.patterns.get(idx) else {
            return false;
        };
        let sub = Sub {
            id: p.id,
            name: path.to_path_buf(),
            via: p.text.clone(),
            encoding: p.opts.encoding,
        };
        let id = p.id;
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(e) = self.entries.get_mut(&key) {
            if e.subs.iter().any(|s| s.id == sub.id) {
                return false;
            }
            e.subs.push(sub);
        } else {
            let opts = TailOptions {
                encoding: sub.encoding,
                ..self.opts.tail.clone()
            };
            match FileTail::open(path, start, opts) {
                Ok(tail) => {
                    self.failed.remove(path);
                    self.dirty.insert(key.clone());
                    self.open_fds += tail.descriptors();
                    self.tick += 1;
                    self.entries.insert(
                        key.clone(),
                        Entry {
                            tail,
                            subs: vec![sub],
                            watched: Vec::new(),
                            used: self.tick,
                        },
                    );
                    self.enforce_cap(Some(&key), &HashSet::new());
                }
                Err(TailError::Open { source, .. }) => {
                    // Report each distinct failure once; rescans retry.
                    if self.failed.get(path) != Some(&source.kind()) {
                        self.failed.insert(path.to_path_buf(), source.kind());
                        self.pending.events.push((
                            path.to_path_buf(),
                            TailEvent::Unavailable {
                                kind: source.kind(),
                                message: source.to_string(),
                            },
                        ));
                    }
                    return false;
                }
                Err(e) => {
                    self.pending.errors.push(e);
                    return false;
                }
            }
        }
        // Watch the name the jail uses and, for symlinks, the target: writes
        // show up as events in the target's directory.
        for name in [path.to_path_buf(), key.clone()] {
            if !self.by_path.contains_key(&name) {
                self.watcher.watch_file(&name);
                self.by_path.insert(name.clone(), key.clone());
                if let Some(e) = self.entries.get_mut(&key) {
                    e.watched.push(name);
                }
            }
        }
        if report {
            self.pending.added.push((id, path.to_path_buf()));
        }
        true
    }

    /// Re-evaluates every glob: attaches new matches (from the head: they
    /// are new files) and detaches glob matches that are gone.
    fn rescan(&mut self) {
        for idx in 0..self.patterns.len() {
            let (text, is_glob, id) = {
                let p = &self.patterns[idx];
                (p.text.clone(), p.is_glob, p.id)
            };
            let found = expand(&text, is_glob);
            for path in &found {
                let already = self
                    .by_path
                    .get(path)
                    .and_then(|k| self.entries.get(k))
                    .is_some_and(|e| e.subs.iter().any(|s| s.id == id));
                if !already {
                    self.attach(idx, path, Start::Head, true);
                }
            }
            if is_glob {
                let found: HashSet<&PathBuf> = found.iter().collect();
                let gone: Vec<PathBuf> = self
                    .entries
                    .values()
                    .flat_map(|e| e.subs.iter().map(move |s| (e, s)))
                    .filter(|(e, s)| {
                        s.id == id
                            && s.via == text
                            && !found.contains(&s.name)
                            && !e.tail.has_retired()
                            && !s.name.exists()
                    })
                    .map(|(_, s)| s.name.clone())
                    .collect();
                for name in gone {
                    self.detach_where(|s| s.id == id && s.via == text && s.name == name);
                }
            }
        }
    }

    fn detach_where(&mut self, pred: impl Fn(&Sub) -> bool) {
        let mut emptied = Vec::new();
        for (key, e) in self.entries.iter_mut() {
            let mut removed = Vec::new();
            e.subs.retain(|s| {
                let drop = pred(s);
                if drop {
                    removed.push((s.id, s.name.clone()));
                }
                !drop
            });
            self.pending.removed.extend(removed);
            if e.subs.is_empty() {
                emptied.push(key.clone());
            } else if let Some(first) = e.subs.first() {
                e.tail.set_encoding(first.encoding);
            }
        }
        for key in emptied {
            if let Some(e) = self.entries.remove(&key) {
                self.open_fds -= e.tail.descriptors();
                for name in &e.watched {
                    self.watcher.unwatch_file(name);
                    self.by_path.remove(name);
                }
                self.dirty.remove(&key);
            }
        }
    }

    fn files_via(&self, sub: SubscriberId, via: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .entries
            .values()
            .flat_map(|e| e.subs.iter())
            .filter(|s| s.id == sub && s.via == via)
            .map(|s| s.name.clone())
            .collect();
        v.sort();
        v
    }
}

/// The encoding the file is decoded with: the first subscriber's.
fn entry_encoding(subs: &[Sub]) -> LogEncoding {
    subs.first().map(|s| s.encoding).unwrap_or_default()
}

/// Regular files matched by a `logpath` entry, sorted (as Python's glob
/// order is not guaranteed, sorting makes the order deterministic).
fn expand(pattern: &str, is_glob: bool) -> Vec<PathBuf> {
    if !is_glob {
        let p = PathBuf::from(pattern);
        return if p.is_file() { vec![p] } else { Vec::new() };
    }
    // Python's glob (used by fail2ban's client): `*` and `?` do not match a
    // leading dot or a `/`, matching is case-sensitive.
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let Ok(paths) = glob::glob_with(pattern, options) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// The deepest directory of `pattern` without glob characters, if the
/// pattern's wildcards are all in its last component (then new matches
/// appear as entries of that directory).
fn static_dir(pattern: &str) -> Option<PathBuf> {
    let p = Path::new(pattern);
    let dir = p.parent()?;
    if dir.as_os_str().is_empty() || dir.to_string_lossy().contains(['*', '?', '[']) {
        return None;
    }
    Some(dir.to_path_buf())
}
