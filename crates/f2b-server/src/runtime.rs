//! A running jail: log lines in, bans out.
//!
//! ```text
//!   reader thread (one for the server)           per jail
//!   ─────────────────────────────────            ───────────────────────────────────────
//!   Tailer::wait → Tailer::read ──lines──▶ JailCore::process_line
//!                                            Filter::process_line → JailEngine::on_failure
//!                                            events: StoreBan → Store::add_ban (committed)
//!                                                    Ban/Unban → action worker (tokio task)
//!   unban timer (tokio task) ───────────▶ JailEngine::unban_expired → action worker
//! ```
//!
//! Invariants:
//! - a ban is written to the database before its ban action is queued (the events of one
//!   line are applied in two passes: database first, then logs and actions);
//! - the actions of one jail run in order on that jail's worker; other jails never wait
//!   for them, and log reading never waits for any action;
//! - a line is delivered to a jail once (the tailer guarantees it across rotations), and
//!   positions are saved only after the lines before them were processed.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use f2b_actions::{ActionEnv, BanTicket, Executor, JailActions, JailInfo, LogLevel};
use f2b_core::addr::Addr;
use f2b_engine::{
    BanRecord as EngineBanRecord, Event, FileStamp, IgnoreEnv, JailEngine, LineTime, Num, Ticket,
};
use f2b_filter::{Filter, FilterSpec, UseDns};
use f2b_journal::{Journal, JournalMatch, JournalOptions, JournalSource, Start as JournalStart};
use f2b_nft::{JailSpec, NftBackend, NftOptions};
use f2b_store::{
    BanRecord, CurrentBansQuery, HistoryScope, JournalPosition, LogPosition, OpenOptions, Store,
    WriteBatch,
};
use f2b_tail::{
    Checkpoint, FileCheckpoint, LogEncoding, LogPathOptions, StartMode, SubscriberId, Tailer,
};
use indexmap::IndexMap;
use tokio::sync::mpsc;

use crate::jail::JailSettings;
use crate::log::{Level, Logger};

/// An error starting a jail.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The filter does not compile.
    #[error("{0}")]
    Filter(String),
    /// The backend cannot be used.
    #[error("{0}")]
    Backend(String),
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `time2str`: local time as fail2ban prints it in `Found` lines. A burst's
/// failures mostly share their second: the last second's text is kept (per
/// thread).
fn time2str(t: f64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    let secs = t as i64;
    if let Some(s) = LAST.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(k, _)| *k == secs)
            .map(|(_, s)| s.clone())
    }) {
        return s;
    }
    let Some(text) = crate::log::local_second_text(secs) else {
        return format!("{t}");
    };
    LAST.with(|l| *l.borrow_mut() = Some((secs, text.clone())));
    text
}

/// What every jail shares: the store, the tailer and its reader thread, the runtime.
#[derive(Clone)]
pub struct RuntimeEnv {
    inner: Arc<EnvInner>,
}

struct EnvInner {
    store: Mutex<Option<Arc<Store>>>,
    /// A database being opened on its own thread (start-up), with what waits for it.
    pending_store: Mutex<Option<PendingStore>>,
    /// `set dbfile` opens the database in the background (while the start-up stream
    /// goes on); the first use waits for it.
    defer_db_open: AtomicBool,
    /// The pending database is a new file, not created and installed yet. Read without
    /// a lock: whoever creates it holds `pending_store` meanwhile.
    creating_db: AtomicBool,
    rt: tokio::runtime::Handle,
    tailer: Mutex<Tailer>,
    subs: Mutex<HashMap<SubscriberId, Weak<Mutex<JailCore>>>>,
    next_sub: AtomicU64,
    reader_started: AtomicBool,
    stopping: AtomicBool,
    log: Mutex<Option<Arc<Logger>>>,
    journals: Mutex<HashMap<JournalSource, Arc<JournalReader>>>,
    nft: Mutex<Option<Arc<Mutex<NftBackend>>>>,
    /// Prefix for action commands (tests run actions inside a network namespace).
    exec_prefix: Vec<String>,
}

impl RuntimeEnv {
    /// A new environment on the tokio runtime `rt`.
    pub fn new(rt: tokio::runtime::Handle, exec_prefix: Vec<String>) -> RuntimeEnv {
        RuntimeEnv {
            inner: Arc::new(EnvInner {
                store: Mutex::new(None),
                pending_store: Mutex::new(None),
                defer_db_open: AtomicBool::new(false),
                creating_db: AtomicBool::new(false),
                rt,
                tailer: Mutex::new(Tailer::new(f2b_tail::TailerOptions {
                    max_read_bytes: READ_BATCH_BYTES,
                    ..Default::default()
                })),
                subs: Mutex::new(HashMap::new()),
                next_sub: AtomicU64::new(1),
                reader_started: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                log: Mutex::new(None),
                journals: Mutex::new(HashMap::new()),
                nft: Mutex::new(None),
                exec_prefix,
            }),
        }
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.finish_store_open();
        lock(&self.inner.store).clone()
    }

    /// The database a jail's start reads (bans to restore, file and journal positions):
    /// none while a new database is still being created (it would answer nothing), so
    /// creating one (~10 fsyncs) is not on the path to the first jail's start.
    /// (A jail's data can only be in the new database after that jail started, so a
    /// start that sees it still being created has nothing to restore from it.)
    fn store_to_restore(&self) -> Option<Arc<Store>> {
        if self.creating_store() {
            return None;
        }
        self.store()
    }

    /// Whether a new database is still being created in the background (no lock: the
    /// reader may be waiting for it with the lock held).
    pub fn creating_store(&self) -> bool {
        self.inner.creating_db.load(Ordering::SeqCst)
    }

    /// During the start-up stream, `set dbfile` opens an existing database on a thread of
    /// its own while the stream goes on (filters compile), and leaves a new one (~10
    /// fsyncs to create) to the first user after the stream; `add <jail>` and the limits
    /// are applied when it is ready, and the first user waits (a jail's start, before it
    /// restores its bans; a first ban). Off after the stream.
    pub fn set_deferred_db_open(&self, on: bool) {
        self.inner.defer_db_open.store(on, Ordering::SeqCst);
    }

    /// Waits for a database opened in the background and installs it.
    pub fn finish_store_open(&self) {
        // Held while waiting: other users wait for the database instead of seeing none.
        let mut g = lock(&self.inner.pending_store);
        let Some(p) = g.take() else { return };
        let opened = match p.handle {
            Some(h) => h.join(),
            None => Ok(open_logged(&p.path, &p.log)),
        };
        match opened {
            Ok(Ok(store)) => {
                let store = self.install_store(store, &p.log);
                for name in &p.jails {
                    let _ = store.add_jail(name);
                }
                if let Some((max_matches, purge_age)) = p.limits {
                    store.set_max_matches(max_matches.max(0) as usize);
                    store.set_purge_age(purge_age);
                }
            }
            Ok(Err(e)) => p.log.log(
                "fail2ban.database",
                Level::ERROR,
                &format!("Cannot open the database {}: {e}", p.path),
            ),
            Err(_) => p.log.log(
                "fail2ban.database",
                Level::ERROR,
                &format!(
                    "Cannot open the database {}: the opening thread failed",
                    p.path
                ),
            ),
        }
        // Installed (or failed): a jail's start reads it from now on.
        self.inner.creating_db.store(false, Ordering::SeqCst);
    }

    /// Opens the database (`set dbfile`); in the background during start-up (see
    /// [`RuntimeEnv::set_deferred_db_open`]).
    pub fn open_store(&self, path: &str, log: &Arc<Logger>) -> Result<(), f2b_store::StoreError> {
        self.finish_store_open();
        let opts = OpenOptions::new(now() as i64);
        if path != ":memory:" && self.inner.defer_db_open.load(Ordering::SeqCst) {
            // A new database holds nothing the jails' start needs: it is created
            // after the stream (its ~10 fsyncs and schema off the start's two
            // cores), by whoever first waits for it. An existing one opens now,
            // beside the stream: the jails restore their bans from it.
            let fresh = !std::path::Path::new(path).exists();
            let handle = if fresh {
                None
            } else {
                let (p, l) = (path.to_owned(), log.clone());
                std::thread::Builder::new()
                    .name("f2b-db-open".into())
                    .spawn(move || open_logged(&p, &l))
                    .ok()
            };
            if fresh || handle.is_some() {
                *lock(&self.inner.pending_store) = Some(PendingStore {
                    path: path.to_owned(),
                    handle,
                    log: log.clone(),
                    jails: Vec::new(),
                    limits: None,
                });
                self.inner.creating_db.store(fresh, Ordering::SeqCst);
                return Ok(());
            }
        }
        let store = if path == ":memory:" {
            Store::open_in_memory(&opts)?
        } else {
            Store::open(path, &opts)?
        };
        log.log(
            "fail2ban.database",
            Level::INFO,
            &format!("Connected to fail2ban persistent database '{path}'"),
        );
        self.install_store(store, log);
        Ok(())
    }

    /// Makes `store` the database in use; starts the hourly purge.
    fn install_store(&self, store: Store, log: &Arc<Logger>) -> Arc<Store> {
        let store = Arc::new(store);
        *lock(&self.inner.store) = Some(store.clone());
        *lock(&self.inner.log) = Some(log.clone());
        // fail2ban purges old bans hourly (`dbpurgeage`), the first time an hour after
        // the start (not while the jails restore their bans from the same database).
        let weak = Arc::downgrade(&store);
        let log = log.clone();
        self.inner.rt.spawn(async move {
            let hour = Duration::from_secs(3600);
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
            loop {
                every.tick().await;
                let Some(store) = weak.upgrade() else { return };
                if let Err(e) = store.purge(now() as i64) {
                    log.log(
                        "fail2ban.database",
                        Level::ERROR,
                        &format!("Purge failed: {e}"),
                    );
                }
            }
        });
        store
    }

    /// `set dbmaxmatches` / `set dbpurgeage`: passed on to the open database.
    pub fn set_db_limits(&self, max_matches: i64, purge_age: i64) {
        if let Some(p) = lock(&self.inner.pending_store).as_mut() {
            p.limits = Some((max_matches, purge_age));
            return;
        }
        if let Some(s) = self.store() {
            s.set_max_matches(max_matches.max(0) as usize);
            s.set_purge_age(purge_age);
        }
    }

    /// Closes the database (`set dbfile None`, shutdown).
    pub fn close_store(&self) {
        self.finish_store_open();
        if let Some(s) = lock(&self.inner.store).take() {
            if let Ok(s) = Arc::try_unwrap(s) {
                let _ = s.close();
            }
        }
    }

    /// `add <jail>`: registers the jail in the database.
    pub fn jail_added(&self, name: &str) {
        if let Some(p) = lock(&self.inner.pending_store).as_mut() {
            p.jails.push(name.to_owned());
            return;
        }
        if let Some(s) = self.store() {
            let _ = s.add_jail(name);
        }
    }

    /// `unban --all`: forget every ban in the database.
    pub fn clear_bans(&self) {
        if let Some(s) = self.store() {
            if let Ok(jails) = s.jail_names(None) {
                for j in jails {
                    let _ = s.remove_all_bans(&j);
                }
            }
        }
    }

    /// Forgets one ban in the database (`unbanip`: always, banned or not).
    pub fn del_ban(&self, jail: &str, id: &str) {
        if let Some(s) = self.store() {
            let _ = s.remove_ban(jail, id);
        }
    }

    /// Saves every followed file's position to the database.
    pub fn save_positions(&self) {
        let Some(store) = self.store() else { return };
        let cps = lock(&self.inner.tailer).checkpoints();
        let subs = lock(&self.inner.subs);
        for cp in cps {
            let Some(core) = subs.get(&cp.subscriber).and_then(Weak::upgrade) else {
                continue;
            };
            let name = lock(&core).name.clone();
            let _ = store.set_log_position(
                &name,
                &cp.path.to_string_lossy(),
                &LogPosition {
                    firstlinemd5: Some(cp.checkpoint.firstlinemd5.clone()),
                    lastfilepos: cp.checkpoint.pos,
                },
            );
        }
    }

    /// Stops the reader threads and removes the native nftables table (unless it is
    /// configured to keep bans across restarts): shutdown, after the jails stopped.
    pub fn stop_reader(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        if let Some(b) = lock(&self.inner.nft).take() {
            if let Err(e) = lock(&b).stop() {
                if let Some(log) = lock(&self.inner.log).clone() {
                    log.log(
                        "fail2ban.actions",
                        Level::ERROR,
                        &format!("nftables stop: {e}"),
                    );
                }
            }
        }
    }

    /// The native nftables backend, created on first use (in this process's network
    /// namespace); its start-up warnings (e.g. no socket destruction) are logged once.
    fn nft(&self, log: &Logger) -> Result<Arc<Mutex<NftBackend>>, String> {
        let mut g = lock(&self.inner.nft);
        if let Some(b) = g.as_ref() {
            return Ok(b.clone());
        }
        let b = NftBackend::new(NftOptions::default()).map_err(|e| e.to_string())?;
        for w in b.capabilities().warnings() {
            log.log(
                "fail2ban.actions",
                Level::WARNING,
                &format!("nftables: {w}"),
            );
        }
        let b = Arc::new(Mutex::new(b));
        *g = Some(b.clone());
        Ok(b)
    }

    /// The shared reader of a journal source, opened (with its thread) on first use.
    fn journal(&self, src: &JournalSource) -> Result<Arc<JournalReader>, String> {
        let mut map = lock(&self.inner.journals);
        if let Some(r) = map.get(src) {
            return Ok(r.clone());
        }
        let j = Journal::open(src, JournalOptions::default()).map_err(|e| e.to_string())?;
        let r = Arc::new(JournalReader {
            journal: Mutex::new(j),
        });
        map.insert(src.clone(), r.clone());
        let env = self.clone();
        let reader = r.clone();
        let _ = std::thread::Builder::new()
            .name("f2b-journal".into())
            .spawn(move || env.journal_loop(&reader));
        Ok(r)
    }

    /// Follows one journal: waits on its descriptor (with a short timeout, since
    /// journald batches its change notifications), reads new entries, runs them through
    /// the subscribed jails and commits bans with the exact cursor.
    fn journal_loop(&self, reader: &JournalReader) {
        let mut lines: Vec<(SubscriberId, String, f64)> = Vec::new();
        let mut last_lines: Option<std::time::Instant> = None;
        while !self.inner.stopping.load(Ordering::SeqCst) {
            let fd = lock(&reader.journal).as_raw_fd();
            let poll_for = if last_lines.is_some_and(|t| t.elapsed() < JOURNAL_ACTIVE_FOR) {
                JOURNAL_POLL_ACTIVE
            } else {
                JOURNAL_POLL_IDLE
            };
            // SAFETY: the descriptor belongs to the journal, which outlives this loop.
            unsafe { wait_readable(fd, poll_for) };
            let mut positions: HashMap<SubscriberId, JournalPosition> = HashMap::new();
            {
                let mut j = lock(&reader.journal);
                let _ = j.process();
                loop {
                    let rep = j.read(1000, &mut |sub, l| {
                        lines.push((sub, l.text.to_owned(), l.time))
                    });
                    match rep {
                        Ok(rep) => {
                            if let Some(log) = lock(&self.inner.log).clone() {
                                for sk in &rep.skipped {
                                    log.log("fail2ban.filtersystemd", Level::WARNING, sk);
                                }
                            }
                            if !rep.more {
                                break;
                            }
                        }
                        Err(e) => {
                            if let Some(log) = lock(&self.inner.log).clone() {
                                log.log("fail2ban.filtersystemd", Level::ERROR, &e.to_string());
                            }
                            break;
                        }
                    }
                }
                let subs: Vec<SubscriberId> = lines.iter().map(|l| l.0).collect();
                for sub in subs {
                    if positions.contains_key(&sub) {
                        continue;
                    }
                    if let Some(p) = j.position(sub) {
                        positions.insert(
                            sub,
                            JournalPosition {
                                time: p.time,
                                iso: Some(p.iso),
                                cursor: p.cursor,
                            },
                        );
                    }
                }
            }
            if lines.is_empty() {
                continue;
            }
            last_lines = Some(std::time::Instant::now());
            let subs = lock(&self.inner.subs).clone();
            let t = now();
            let mut touched: Vec<SubscriberId> = Vec::new();
            for (sub, text, time) in lines.drain(..) {
                if let Some(core) = subs.get(&sub).and_then(Weak::upgrade) {
                    let mut c = lock(&core);
                    c.take_line(&text, Some(time), t);
                    if c.idle.is_none() {
                        c.engine.lines_processed(1, t);
                    }
                    if !touched.contains(&sub) {
                        touched.push(sub);
                    }
                }
            }
            for sub in touched {
                if let Some(core) = subs.get(&sub).and_then(Weak::upgrade) {
                    let mut c = lock(&core);
                    c.in_operation = true;
                    c.commit_with(Vec::new(), positions.remove(&sub));
                }
            }
        }
    }

    fn ensure_reader(&self) {
        if self.inner.reader_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let env = self.clone();
        let _ = std::thread::Builder::new()
            .name("f2b-reader".into())
            .spawn(move || env.reader_loop());
    }

    fn reader_loop(&self) {
        let mut last_svc = std::time::Instant::now();
        let mut batch = LineBatch::default();
        // The positions last handed to the database, per (jail, file): a read commits only
        // the positions that moved, not every followed file of every jail.
        let mut saved: HashMap<(SubscriberId, std::path::PathBuf), Checkpoint> = HashMap::new();
        // After a burst, once the reader is quiet, memory goes back to the system
        // (`memtrim`: the heap's free pages, the clean file pages of code run once) on
        // `memtrim::QUIET_SCHEDULE`, as after the start (`daemon`): the next trim's time
        // and the schedule's next step.
        let mut trim_after: Option<(std::time::Instant, usize)> = None;
        while !self.inner.stopping.load(Ordering::SeqCst) {
            // A read stopped at its budget leaves work: no sleep then.
            let mut ready = lock(&self.inner.tailer)
                .wait(Duration::ZERO)
                .unwrap_or(true);
            if !ready {
                // Sleep on the inotify descriptor without holding the tailer, so
                // commands (status, addlogpath) never wait for the reader.
                let fd = lock(&self.inner.tailer).watcher().as_raw_fd();
                match fd {
                    // SAFETY: the descriptor belongs to the tailer, which lives as long as
                    // the environment.
                    Some(fd) => unsafe { wait_readable(fd, Duration::from_millis(100)) },
                    None => std::thread::sleep(Duration::from_millis(50)),
                }
                ready = lock(&self.inner.tailer)
                    .wait(Duration::ZERO)
                    .unwrap_or(true);
            }
            if ready {
                let (report, mut positions) = {
                    let mut t = lock(&self.inner.tailer);
                    let r = t.read(&mut |sub, line| batch.push(sub, line.text));
                    (r, t.checkpoints())
                };
                if saved.len() > 2 * positions.len() + 64 {
                    // Jails stopped, files no longer followed.
                    let live: std::collections::HashSet<(SubscriberId, &std::path::Path)> =
                        positions
                            .iter()
                            .map(|cp| (cp.subscriber, cp.path.as_path()))
                            .collect();
                    saved.retain(|(sub, path), _| live.contains(&(*sub, path.as_path())));
                }
                positions.retain(|cp| {
                    let key = (cp.subscriber, cp.path.clone());
                    if saved.get(&key) == Some(&cp.checkpoint) {
                        return false;
                    }
                    saved.insert(key, cp.checkpoint.clone());
                    true
                });
                if let Some(log) = lock(&self.inner.log).clone() {
                    for (path, ev) in &report.events {
                        let (level, msg) = tail_event_line(path, ev);
                        log.log("fail2ban.filter", level, &msg);
                    }
                    for e in &report.errors {
                        log.log(
                            "fail2ban.filter",
                            Level::ERROR,
                            &format!("Error reading log file: {e}"),
                        );
                    }
                }
                if batch.lines.len() >= 1000 {
                    let first = crate::memtrim::QUIET_SCHEDULE[0];
                    trim_after = Some((std::time::Instant::now() + first, 1));
                }
                self.dispatch(&mut batch, positions);
            } else if let Some((at, next)) = trim_after {
                if std::time::Instant::now() >= at {
                    trim_after = crate::memtrim::QUIET_SCHEDULE
                        .get(next)
                        .map(|wait| (std::time::Instant::now() + *wait, next + 1));
                    batch.release();
                    self.release_memory();
                    crate::memtrim::trim_memory();
                }
            }
            if last_svc.elapsed() >= Duration::from_secs(5) {
                let subs: Vec<Arc<Mutex<JailCore>>> = lock(&self.inner.subs)
                    .values()
                    .filter_map(Weak::upgrade)
                    .collect();
                for c in subs {
                    lock(&c).engine.service(now(), false);
                }
                last_svc = std::time::Instant::now();
            }
        }
    }

    /// Gives back what a burst left allocated and no longer needs: the spare room of
    /// the jails' failure and ban tables and the database's page cache (SQLite keeps
    /// up to 2 MiB of pages per connection). Called when the reader went quiet after
    /// a burst, before the heap is trimmed.
    fn release_memory(&self) {
        let subs: Vec<Arc<Mutex<JailCore>>> = lock(&self.inner.subs)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for c in subs {
            lock(&c).engine.release_memory();
        }
        if let Some(store) = lock(&self.inner.store).clone() {
            store.release_memory();
        }
    }

    /// Runs a batch of lines through their jails. Per jail, the bans the lines caused
    /// and the file positions after them are committed in one transaction, and only
    /// then are the ban actions queued: a crash never loses a ban nor counts a line twice.
    /// The batch's log lines are written with one write, before the actions run.
    fn dispatch(&self, batch: &mut LineBatch, positions: Vec<FileCheckpoint>) {
        // A database still being created (start-up) is waited for here, before any jail's
        // lock is taken: the commit below needs it, and waiting with a jail locked would
        // stall everything that reads that jail meanwhile (`status`, its action worker,
        // the runtime thread with them) for as long as the database's fsyncs take.
        self.finish_store_open();
        let subs = lock(&self.inner.subs).clone();
        let mut by_sub: HashMap<SubscriberId, Vec<(String, LogPosition)>> = HashMap::new();
        for cp in positions {
            by_sub.entry(cp.subscriber).or_default().push((
                cp.path.to_string_lossy().into_owned(),
                LogPosition {
                    firstlinemd5: Some(cp.checkpoint.firstlinemd5),
                    lastfilepos: cp.checkpoint.pos,
                },
            ));
        }
        let log = lock(&self.inner.log).clone();
        let lines = &batch.lines;
        let mut start = 0;
        while start < lines.len() {
            let sub = lines[start].0;
            let mut end = start;
            while end < lines.len() && lines[end].0 == sub {
                end += 1;
            }
            if let Some(core) = subs.get(&sub).and_then(Weak::upgrade) {
                let mut c = lock(&core);
                let t = now();
                if let Some(l) = &log {
                    l.begin_bulk();
                }
                for &(_, a, b) in &lines[start..end] {
                    c.take_line(&batch.text[a as usize..b as usize], None, t);
                }
                if let Some(l) = &log {
                    l.end_bulk();
                }
                if c.idle.is_none() {
                    c.engine.lines_processed((end - start) as u64, t);
                }
                c.in_operation = true;
                c.commit(by_sub.remove(&sub).unwrap_or_default());
            }
            start = end;
        }
        // Jails whose files moved without delivering lines (non-matching content is
        // still "read") keep their positions too.
        for (sub, pos) in by_sub {
            if pos.is_empty() {
                continue;
            }
            if let Some(core) = subs.get(&sub).and_then(Weak::upgrade) {
                lock(&core).commit(pos);
            }
        }
        batch.clear();
    }
}

/// Sleeps until `fd` is readable or `timeout` passed (errors and signals just return).
///
/// # Safety
/// `fd` must stay open for the duration of the call.
unsafe fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) {
    // SAFETY: the caller keeps `fd` open while it is borrowed here.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [nix::poll::PollFd::new(bfd, nix::poll::PollFlags::POLLIN)];
    let ts = nix::sys::time::TimeSpec::from_duration(timeout);
    let _ = nix::poll::ppoll(&mut fds, Some(ts), None);
}

/// Bytes of log the reader takes per batch (the tailer's read budget): a burst is
/// processed and committed in batches of this size, so the reader's buffers stay small.
const READ_BATCH_BYTES: usize = 256 * 1024;

/// The lines of one read, in one text buffer (no allocation per line).
#[derive(Default)]
struct LineBatch {
    text: String,
    /// (jail, start, end) in `text`.
    lines: Vec<(SubscriberId, u32, u32)>,
}

impl LineBatch {
    fn push(&mut self, sub: SubscriberId, line: &str) {
        let a = self.text.len();
        self.text.push_str(line);
        // A batch is bounded by the read budget (plus one line per subscriber), far
        // below 4 GiB.
        let (Ok(a), Ok(b)) = (u32::try_from(a), u32::try_from(self.text.len())) else {
            return;
        };
        self.lines.push((sub, a, b));
    }

    fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
    }

    /// Gives the buffers back (after a burst).
    fn release(&mut self) {
        self.text = String::new();
        self.lines = Vec::new();
    }
}

/// fail2ban's wording and level for what the tailer reports about a file.
fn tail_event_line(path: &std::path::Path, ev: &f2b_tail::TailEvent) -> (Level, String) {
    use f2b_tail::TailEvent as E;
    let p = path.display();
    match ev {
        E::Rotated { rotation } => (
            Level::MSG,
            format!("Log rotation detected for {p}, reason: {rotation:?}"),
        ),
        E::Opened { pos } => (
            Level::MSG,
            format!("Log presence detected for {p} (pos = {pos})"),
        ),
        E::Unavailable { message, .. } => (Level::ERROR, format!("Unable to open {p}: {message}")),
        E::OverlongLine { offset_after, len } => (
            Level::WARNING,
            format!("Line of {len} bytes ending at {offset_after} in {p} was truncated"),
        ),
        E::DecodeError { offset_after } => (
            Level::WARNING,
            format!(
                "Error decoding line from '{p}' (ending at {offset_after}): invalid bytes replaced"
            ),
        ),
        E::PartialLineFlushed { len } => (
            Level::DEBUG,
            format!("Incomplete last line ({len} bytes) of rotated {p} processed"),
        ),
        other => (Level::DEBUG, format!("{p}: {other:?}")),
    }
}

/// journald announces appends only every 250 ms (its post-change timer), so a journal is
/// polled: every [`JOURNAL_POLL_ACTIVE`] while its jails got lines in the last
/// [`JOURNAL_ACTIVE_FOR`] (an attack in progress), else every [`JOURNAL_POLL_IDLE`]. Each
/// wake-up is one ppoll, one `sd_journal_process` and one `sd_journal_next` at the end of
/// the journal (measured: bench/journal/latency.sh, docs/arch/journal.md).
const JOURNAL_POLL_ACTIVE: Duration = Duration::from_millis(1);
/// See [`JOURNAL_POLL_ACTIVE`].
const JOURNAL_POLL_IDLE: Duration = Duration::from_millis(5);
/// See [`JOURNAL_POLL_ACTIVE`].
const JOURNAL_ACTIVE_FOR: Duration = Duration::from_secs(2);

/// Opens (or creates) the database at `path`, logging fail2ban's `Connected` line.
fn open_logged(path: &str, log: &Logger) -> Result<Store, f2b_store::StoreError> {
    let r = Store::open(path, &OpenOptions::new(now() as i64));
    if r.is_ok() {
        log.log(
            "fail2ban.database",
            Level::INFO,
            &format!("Connected to fail2ban persistent database '{path}'"),
        );
    }
    r
}

/// A database being opened in the background (or a new one still to be
/// created), and what waits for it.
struct PendingStore {
    path: String,
    /// The opening thread; none for a new database, created by whoever
    /// first waits for it (after READY at the latest).
    handle: Option<std::thread::JoinHandle<Result<Store, f2b_store::StoreError>>>,
    log: Arc<Logger>,
    /// `add <jail>` while it opened.
    jails: Vec<String>,
    /// `set dbmaxmatches` / `dbpurgeage` while it opened.
    limits: Option<(i64, i64)>,
}

/// A shared journal (one per distinct source) and its subscriptions.
struct JournalReader {
    journal: Mutex<Journal>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job for a jail's action worker.
enum Job {
    Start,
    Ban(BanTicket),
    /// A run of bans committed together (one send, one wake-up of the worker).
    Bans(Vec<BanTicket>),
    Unban(BanTicket),
    Flush(Vec<BanTicket>),
    Stop(Vec<BanTicket>, std::sync::mpsc::Sender<()>),
    Add(String, Vec<(String, String)>),
    Del(String),
    /// An action a reload dropped, with the bans to flush from it.
    Retire(String, Vec<BanTicket>),
    /// `actionreload` of the actions a reload kept.
    Reload(Vec<String>),
    /// A failure of an address that is already banned, `since` seconds after its ban:
    /// consistency check and reban as fail2ban's `__checkBan` does.
    AlreadyBanned(BanTicket, f64),
    Set(String, String, String),
}

/// Counters the action tags `<jail.banned>` etc. read.
#[derive(Default)]
struct Counters {
    banned: AtomicU64,
    banned_total: AtomicU64,
    found: AtomicU64,
    found_total: AtomicU64,
    bantime: std::sync::atomic::AtomicI64,
}

struct SharedInfo(Arc<Counters>);

impl JailInfo for SharedInfo {
    fn banned(&self) -> u64 {
        self.0.banned.load(Ordering::Relaxed)
    }
    fn banned_total(&self) -> u64 {
        self.0.banned_total.load(Ordering::Relaxed)
    }
    fn found(&self) -> u64 {
        self.0.found.load(Ordering::Relaxed)
    }
    fn found_total(&self) -> u64 {
        self.0.found_total.load(Ordering::Relaxed)
    }
    fn bantime(&self) -> i64 {
        self.0.bantime.load(Ordering::Relaxed)
    }
}

/// What an idle jail (`set <jail> idle on`) keeps for later. fail2ban's idle jail stops
/// reading its logs and resumes where it stopped; here the files are read for every jail at
/// once, so an idle jail's lines wait here (bounded) with the positions they lead to, and
/// are processed, then committed, when the jail leaves idle. Positions are not committed
/// while idle: after a restart the waiting lines are read again.
#[derive(Default)]
struct IdleBacklog {
    lines: Vec<(String, Option<f64>)>,
    bytes: usize,
    dropped: u64,
    positions: Vec<(String, LogPosition)>,
    journal: Option<JournalPosition>,
}

/// At most this much text waits for an idle jail; later lines are dropped (counted, with a
/// warning when the jail leaves idle).
const IDLE_BACKLOG_BYTES: usize = 16 << 20;

/// The filter, engine and action queue of one jail (behind a mutex; the reader thread,
/// the unban timer and commands all come through it).
struct JailCore {
    name: String,
    filter: Filter,
    engine: JailEngine,
    log: Arc<Logger>,
    env: RuntimeEnv,
    jobs: mpsc::UnboundedSender<Job>,
    wake_unban: Arc<tokio::sync::Notify>,
    counters: Arc<Counters>,
    in_operation: bool,
    dbmaxmatches: usize,
    ignore_env: ServerIgnoreEnv,
    warned_no_date: bool,
    /// `set <jail> idle on`: lines wait in [`IdleBacklog`] and no ban ends until `off`.
    idle: Option<IdleBacklog>,
    pending_bans: Vec<BanRecord>,
    pending_jobs: Vec<Job>,
    /// The native nftables bans, applied as the engine's events are (no hand-off to the
    /// action worker, no disk write between the log line and the kernel).
    native: Option<NativeBans>,
}

fn ticket_to_action(t: &Ticket, restored: bool) -> BanTicket {
    ticket_into_action(t.clone(), restored)
}

/// Sends a run of bans to the action worker as one job.
fn send_bans(jobs: &mpsc::UnboundedSender<Job>, run: &mut Vec<BanTicket>) {
    let job = match run.len() {
        0 => return,
        1 => match run.pop() {
            Some(t) => Job::Ban(t),
            None => return,
        },
        _ => Job::Bans(std::mem::take(run)),
    };
    let _ = jobs.send(job);
}

/// An id's text as `Display` writes it, without the formatting machinery for the common
/// IPv4 case (a million restored bans).
fn addr_text(a: &Addr) -> String {
    let Addr::Ip(IpAddr::V4(v4)) = a else {
        return a.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

/// [`ticket_to_action`] taking the ticket (matched lines and data move, no copy).
fn ticket_into_action(t: Ticket, restored: bool) -> BanTicket {
    BanTicket {
        id: addr_text(t.ip()),
        time: t.time,
        bantime: t.bantime.map(|b| b.trunc()),
        bancount: u64::from(t.bancount),
        failures: u64::from(t.failures),
        restored: restored || t.restored,
        matches: t.matches,
        data: t.data.into_iter().collect(),
        ip_merged: None,
        ipjail_merged: None,
        ban_epoch: 0,
    }
}

/// The `Restore Ban` lines of a chunk of restored bans: one text, line ends.
#[derive(Default)]
struct RestoreLines {
    text: String,
    ends: Vec<usize>,
}

struct StoreHistory<'a>(&'a Store);

impl f2b_engine::BanHistory for StoreHistory<'_> {
    fn get_ban(&mut self, id: &Addr, jail: &str, overalljails: bool) -> Option<EngineBanRecord> {
        let scope = if overalljails {
            HistoryScope::Overall
        } else {
            HistoryScope::Jail(jail)
        };
        let h = self.0.ban_history(&id.to_string(), scope, None).ok()??;
        Some(EngineBanRecord {
            ban_count: h.bancount.max(0) as u32,
            time_of_ban: h.last_timeofban as f64,
            bantime: h.last_bantime as f64,
        })
    }
}

impl JailCore {
    fn log(&self, logger: &str, level: Level, msg: &str) {
        self.log.log(logger, level, msg);
    }

    /// A delivered line: processed now, or kept for later while the jail is idle.
    fn take_line(&mut self, line: &str, date: Option<f64>, t: f64) {
        match &mut self.idle {
            Some(b) => {
                if b.bytes + line.len() > IDLE_BACKLOG_BYTES {
                    b.dropped += 1;
                } else {
                    b.bytes += line.len();
                    b.lines.push((line.to_owned(), date));
                }
            }
            None => self.process_line(line, date, t),
        }
    }

    /// `idle on|off`: entering keeps lines for later; leaving processes them and commits
    /// the positions they led to.
    fn set_idle(&mut self, on: bool) {
        match (on, self.idle.is_some()) {
            (true, false) => self.idle = Some(IdleBacklog::default()),
            (false, true) => {
                let Some(b) = self.idle.take() else { return };
                if b.dropped > 0 {
                    self.log(
                        "fail2ban.filter",
                        Level::WARNING,
                        &format!(
                            "[{}] {} line(s) arrived while idle beyond the {} MiB backlog and were not processed",
                            self.name,
                            b.dropped,
                            IDLE_BACKLOG_BYTES >> 20
                        ),
                    );
                }
                let t = now();
                let n = b.lines.len() as u64;
                for (line, date) in &b.lines {
                    self.process_line(line, *date, t);
                }
                self.engine.lines_processed(n, t);
                self.commit_with(b.positions, b.journal);
                // Bans that ended while idle end now.
                self.wake_unban.notify_one();
            }
            _ => {}
        }
    }

    /// One line: from a file (the filter finds the date) or from the journal (`date`
    /// is the entry's time).
    fn process_line(&mut self, line: &str, date: Option<f64>, t: f64) {
        let failures = match date {
            None => self.filter.process_line(line, t),
            Some(d) => self.filter.process_line_with_time(
                (String::new(), String::new(), line.to_owned()),
                d,
                t,
            ),
        };
        for w in std::mem::take(&mut self.filter.warnings) {
            self.log(
                "fail2ban.filter",
                Level::WARNING,
                &format!("[{}] {w}", self.name),
            );
        }
        for f in failures {
            let Some(id) = f.id.clone() else { continue };
            if f.is_nofail() {
                continue;
            }
            let Some(date) = f.time else {
                if !self.warned_no_date {
                    self.warned_no_date = true;
                    self.log(
                        "fail2ban.filter",
                        Level::WARNING,
                        &format!(
                            "[{}] Found a match but no valid date/time found for {}.",
                            self.name,
                            crate::args::py_str_repr("")
                        ),
                    );
                    self.log(
                        "fail2ban.filter",
                        Level::WARNING,
                        &format!("[{}] Match without a timestamp: {line}", self.name),
                    );
                    self.log(
                        "fail2ban.filter",
                        Level::WARNING,
                        &format!(
                            "[{}] Please try setting a custom date pattern (see man page jail.conf(5)).",
                            self.name
                        ),
                    );
                }
                continue;
            };
            let time = match f2b_engine::jail::line_time(
                date,
                t,
                self.in_operation,
                self.engine.findtime(),
            ) {
                LineTime::Use(d) => d,
                LineTime::Simulated { now, .. } => now,
                LineTime::Obsolete => continue,
            };
            let data = f
                .fields()
                .iter()
                .map(|(k, v)| (k.to_string(), crate::args::py_str(v)))
                .collect();
            let ef = f2b_engine::Failure {
                id,
                ip: None,
                time,
                matches: f.matches(),
                data,
            };
            let mut events = Vec::new();
            let store = self.env.store();
            let mut hist = store.as_deref().map(StoreHistory);
            self.engine.on_failure(
                ef,
                t,
                &mut self.ignore_env,
                hist.as_mut().map(|h| h as &mut dyn f2b_engine::BanHistory),
                &mut events,
            );
            self.apply(events);
        }
    }

    /// Applies engine events: logs them, stages database writes and action jobs.
    /// [`JailCore::commit`] writes the staged bans and then releases the jobs.
    fn apply(&mut self, events: Vec<Event>) {
        for ev in events {
            // The log line first: the tickets then move into their job or database
            // record instead of being copied (a burst bans thousands).
            let line = ev.log_line(&self.name, &time2str);
            let mut store = None;
            let job = match ev {
                Event::Ban { ticket, restored } => {
                    self.counters.banned_total.fetch_add(1, Ordering::Relaxed);
                    Some(Job::Ban(ticket_into_action(*ticket, restored)))
                }
                Event::Unban { ticket, .. } => Some(Job::Unban(ticket_into_action(*ticket, false))),
                Event::AlreadyBanned { id, since } => self
                    .engine
                    .bans()
                    .get(&id)
                    .map(|t| Job::AlreadyBanned(ticket_to_action(t, false), since)),
                Event::StoreBan { ticket } => {
                    store = Some(self.record(*ticket));
                    None
                }
                _ => None,
            };
            // The kernel first: a native nftables element goes in before the log line and
            // the database commit, so no disk write sits between a log line and its ban.
            // This is safe where an action's effect could not be: the element carries
            // its timeout, and at start the kernel set is reconciled with the database,
            // so a crash before the commit leaves no orphan (the uncommitted lines are
            // read again and ban again).
            if let (Some(n), Some(j)) = (&self.native, &job) {
                n.apply_job(j);
            }
            if let Some(line) = line {
                let level = Level(line.level as u8);
                self.log(line.logger.name(), level, &line.text);
            }
            if let Some(rec) = store {
                self.pending_bans.push(rec);
            }
            if let Some(j) = job {
                self.pending_jobs.push(j);
            }
        }
        self.update_counters();
    }

    /// Commits staged bans together with `positions` (one transaction), then queues
    /// the staged action jobs.
    fn commit(&mut self, positions: Vec<(String, LogPosition)>) {
        self.commit_with(positions, None);
    }

    /// [`JailCore::commit`] with the journal position of a journal jail.
    fn commit_with(
        &mut self,
        positions: Vec<(String, LogPosition)>,
        journal: Option<JournalPosition>,
    ) {
        // While idle, positions wait with the lines they lead to (latest per file); bans
        // of commands (`banip`) are committed as always.
        let (positions, journal) = match &mut self.idle {
            Some(b) => {
                for (path, pos) in positions {
                    match b.positions.iter_mut().find(|(p, _)| *p == path) {
                        Some(slot) => slot.1 = pos,
                        None => b.positions.push((path, pos)),
                    }
                }
                if journal.is_some() {
                    b.journal = journal;
                }
                (Vec::new(), None)
            }
            None => (positions, journal),
        };
        // Nothing to write asks nothing of the database: the unban timer commits after
        // every wake-up, and at start-up a new database may still be being created.
        let work = !self.pending_bans.is_empty() || !positions.is_empty() || journal.is_some();
        if let Some(store) = work.then(|| self.env.store()).flatten() {
            let mut b = WriteBatch::new();
            for rec in self.pending_bans.drain(..) {
                b.add_ban(&self.name, rec);
            }
            for (path, pos) in positions {
                b.set_log_position(&self.name, &path, pos);
            }
            if let Some(j) = journal {
                b.set_journal_position(&self.name, j);
            }
            if let Err(e) = store.apply(&b) {
                self.log(
                    "fail2ban.database",
                    Level::ERROR,
                    &format!("[{}] Failed to store bans and positions: {e}", self.name),
                );
            }
        }
        self.pending_bans.clear();
        if self.release_jobs() {
            self.wake_unban.notify_one();
        }
    }

    /// Hands the staged action jobs to the worker (a run of bans as one job). Whether
    /// there were any.
    fn release_jobs(&mut self) -> bool {
        let had_jobs = !self.pending_jobs.is_empty();
        let mut run: Vec<BanTicket> = Vec::new();
        for job in self.pending_jobs.drain(..) {
            match job {
                Job::Ban(t) => run.push(t),
                other => {
                    send_bans(&self.jobs, &mut run);
                    let _ = self.jobs.send(other);
                }
            }
        }
        send_bans(&self.jobs, &mut run);
        had_jobs
    }

    /// [`JailCore::apply_now`] for a chunk of restored bans: the `Restore Ban` lines go to
    /// the log in one call and each ticket moves into its action job; other events (an
    /// ignored address...) take the common path, in order.
    fn apply_restored(&mut self, events: &mut Vec<Event>, lines: &mut RestoreLines) {
        for ev in events.drain(..) {
            match ev {
                Event::Ban {
                    ticket,
                    restored: true,
                } => {
                    let t = &mut lines.text;
                    t.push('[');
                    t.push_str(&self.name);
                    t.push_str("] Restore Ban ");
                    // The line shows the id; the action's `<ip>` is the same text unless
                    // the ticket carries a separate ip.
                    let same = ticket.ip.is_none();
                    if !same {
                        use std::fmt::Write;
                        let _ = write!(t, "{}", ticket.id);
                    }
                    let bt = ticket_into_action(*ticket, true);
                    if same {
                        t.push_str(&bt.id);
                    }
                    lines.ends.push(t.len());
                    self.counters.banned_total.fetch_add(1, Ordering::Relaxed);
                    self.pending_jobs.push(Job::Ban(bt));
                }
                other => {
                    self.flush_restore_lines(lines);
                    self.apply(vec![other]);
                }
            }
        }
        self.flush_restore_lines(lines);
        self.update_counters();
        // Restored bans write nothing to the database; the unban timer is woken once at
        // the end of the restore (it would sort the new bans into its queue after every
        // chunk).
        if self.pending_bans.is_empty() {
            self.release_jobs();
        } else {
            self.commit(Vec::new());
        }
    }

    fn flush_restore_lines(&self, lines: &mut RestoreLines) {
        if lines.ends.is_empty() {
            return;
        }
        let text = lines.text.as_str();
        let mut start = 0;
        self.log.log_many(
            f2b_engine::logline::Logger::Actions.name(),
            Level::NOTICE,
            lines.ends.iter().map(|&end| {
                let line = &text[start..end];
                start = end;
                line
            }),
        );
        lines.text.clear();
        lines.ends.clear();
    }

    /// [`JailCore::apply`] then [`JailCore::commit`] (commands and timers).
    fn apply_now(&mut self, events: Vec<Event>) {
        self.apply(events);
        self.commit(Vec::new());
    }

    /// Refreshes the numbers the `<jail.*>` action tags read (O(1): no ban list).
    fn update_counters(&self) {
        let c = &self.counters;
        c.banned
            .store(self.engine.bans().size() as u64, Ordering::Relaxed);
        c.found
            .store(self.engine.failures().size() as u64, Ordering::Relaxed);
        c.found_total
            .store(self.engine.failures().total(), Ordering::Relaxed);
        c.bantime
            .store(self.engine.bantime().trunc(), Ordering::Relaxed);
    }

    fn record(&self, t: Ticket) -> BanRecord {
        let bantime = t.bantime_or(self.engine.bantime()).trunc();
        let mut matches = t.matches;
        if matches.len() > self.dbmaxmatches {
            matches.drain(..matches.len() - self.dbmaxmatches);
        }
        let mut rec = BanRecord::new(
            t.id.to_string(),
            t.time.round() as i64,
            bantime,
            i64::from(t.bancount),
        )
        .with_matches(matches)
        .with_failures(i64::from(t.failures));
        for (k, v) in t.data {
            rec = rec.with_field(k, v);
        }
        rec
    }
}

/// A started jail.
pub struct JailRuntime {
    core: Arc<Mutex<JailCore>>,
    sub: SubscriberId,
    /// The journal the jail reads, when it reads one.
    journal: Option<Arc<JournalReader>>,
    env: RuntimeEnv,
    stop_timer: Arc<tokio::sync::Notify>,
    stopped: Arc<AtomicBool>,
    applied: JailSettings,
}

/// The filter specification of a jail's settings.
pub fn filter_spec(s: &JailSettings) -> FilterSpec {
    FilterSpec {
        prefregex: s.prefregex.clone(),
        failregex: s.failregex.clone(),
        ignoreregex: s.ignoreregex.clone(),
        maxlines: s.maxlines.max(1) as usize,
        datepattern: s.datepattern.clone(),
        logtimezone: s.logtimezone.clone(),
        usedns: UseDns::parse(&s.usedns),
    }
}

fn configure_engine(engine: &mut JailEngine, s: &JailSettings, log: &Logger) {
    engine.set_maxretry(s.maxretry.max(0) as u32);
    engine.set_findtime(s.findtime as f64);
    engine.set_maxmatches(s.maxmatches.max(0) as usize);
    engine.set_bantime(s.bantime);
    for (k, v) in &s.banextra {
        let text = crate::args::py_str(v);
        let to_seconds = |v: &str| f2b_core::duration::str2sec(v).ok().map(Num::Float);
        if let Err(e) = engine.set_bantime_extra(k, &text, &to_seconds) {
            log.log(
                "fail2ban.jail",
                Level::ERROR,
                &format!("[{}] bantime.{k}: {e}", s.name),
            );
        }
    }
    let ig = engine.ignore_mut();
    ig.clear();
    for e in &s.ignoreip {
        if let Err(err) = ig.add(e) {
            log.log(
                "fail2ban.filter",
                Level::ERROR,
                &format!("[{}] ignoreip {e}: {err}", s.name),
            );
        }
    }
    ig.set_ignore_self(s.ignoreself);
    ig.set_command(if s.ignorecommand.is_empty() {
        None
    } else {
        Some(&s.ignorecommand)
    });
    ig.set_cache(s.ignorecache.as_ref().map(|o| ignore_cache_config(o)));
}

/// Whether an action runs on the native nftables backend: the nftables action names
/// (`banaction = nftables | nftables-multiport | nftables-allports | f2b-nft`), unless the
/// action sets `native = false` to keep the stock shell commands.
fn is_native(name: &str, props: &IndexMap<String, String>) -> bool {
    JailSpec::is_native_action(name)
        && !props.get("native").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "false" | "no" | "0" | "off"
            )
        })
}

/// A jail's bans on the native nftables backend.
#[derive(Clone)]
struct NativeBans {
    backend: Arc<Mutex<NftBackend>>,
    jail: String,
    log: Arc<Logger>,
    /// The jail's counters (its current bantime for tickets without their own).
    counters: Arc<Counters>,
}

fn native_jail(
    jail: &str,
    name: &str,
    def: &crate::jail::ActionDef,
    env: &RuntimeEnv,
    log: &Arc<Logger>,
    counters: &Arc<Counters>,
) -> Result<NativeBans, String> {
    let spec = JailSpec::from_action(jail, name, |opt| def.props.get(opt).cloned())
        .map_err(|e| e.to_string())?;
    let backend = env.nft(log)?;
    lock(&backend)
        .ensure_jail(&spec)
        .map_err(|e| e.to_string())?;
    Ok(NativeBans {
        backend,
        jail: jail.to_owned(),
        log: log.clone(),
        counters: counters.clone(),
    })
}

/// The kernel form of a ban id (raw ids cannot be banned by address).
fn ip_net(id: &str) -> Option<f2b_core::addr::IpNet> {
    match Addr::parse(id).ok()? {
        Addr::Ip(ip) => Some(f2b_core::addr::IpNet::new(
            ip,
            if ip.is_ipv4() { 32 } else { 128 },
        )),
        Addr::Net(n) => Some(n),
        Addr::Raw(_) => None,
    }
}

/// Remaining ban time for the kernel's element timeout (None = permanent).
fn remaining(time: f64, bantime: i64, now: f64) -> Option<Option<Duration>> {
    if bantime < 0 {
        return Some(None);
    }
    let left = time + bantime as f64 - now;
    (left > 0.0).then(|| Some(Duration::from_secs_f64(left.max(1.0))))
}

impl NativeBans {
    fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.log.log(
            "fail2ban.actions",
            Level::ERROR,
            &format!("[{}] nftables {what}: {e}", self.jail),
        );
    }

    fn ban(&self, tickets: &[&BanTicket]) {
        let t = now();
        let bantime_default = self.counters.bantime.load(Ordering::Relaxed);
        let items: Vec<_> = tickets
            .iter()
            .filter_map(|tk| {
                let net = ip_net(&tk.id)?;
                let left = remaining(tk.time, tk.bantime.unwrap_or(bantime_default), t)?;
                Some((net, left))
            })
            .collect();
        if items.is_empty() {
            return;
        }
        match lock(&self.backend).ban(&self.jail, &items) {
            Ok(rep) => {
                for (net, why) in rep.refused {
                    self.error(&format!("ban {net} refused"), why);
                }
                if let Some(e) = rep.teardown_error {
                    self.error("connection teardown", e);
                }
            }
            Err(e) => self.error("ban", e),
        }
    }

    /// The kernel side of a job. Restored bans were reconciled with the kernel at start.
    /// An address that shows up again while banned may have had its ban prolonged (a
    /// later ticket, `banip` again): its element is added again with the remaining time,
    /// which replaces its timeout, so the kernel never lets it go before the engine does.
    fn apply_job(&self, job: &Job) {
        match job {
            Job::Ban(t) if !t.restored => self.ban(&[t]),
            Job::AlreadyBanned(t, _) => self.ban(&[t]),
            Job::Unban(t) => self.unban(&[t]),
            _ => {}
        }
    }

    fn unban(&self, tickets: &[&BanTicket]) {
        let nets: Vec<_> = tickets.iter().filter_map(|t| ip_net(&t.id)).collect();
        if nets.is_empty() {
            return;
        }
        if let Err(e) = lock(&self.backend).unban(&self.jail, &nets) {
            self.error("unban", e);
        }
    }

    /// Makes the kernel set equal to the database's active bans (start-up).
    fn reconcile(&self, desired: &[(f2b_core::addr::IpNet, Option<Duration>)], log: &Logger) {
        match lock(&self.backend).reconcile(&self.jail, desired) {
            Ok(st) => log.log(
                "fail2ban.actions",
                Level::INFO,
                &format!("[{}] nftables: {st:?}", self.jail),
            ),
            Err(e) => self.error("reconcile", e),
        }
    }

    fn stop(&self) {
        if let Err(e) = lock(&self.backend).remove_jail(&self.jail) {
            self.error("stop", e);
        }
    }
}

/// Opens (or shares) the journal a jail's `backend = systemd[...]` names.
fn open_journal(s: &JailSettings, env: &RuntimeEnv) -> Result<Arc<JournalReader>, String> {
    let opts: Vec<(String, String)> = if s.backend.contains('[') {
        match f2b_config::helpers::extract_options(&s.backend) {
            Ok((_, o)) => o.into_iter().collect(),
            Err(e) => return Err(format!("invalid backend {}: {e}", s.backend)),
        }
    } else {
        Vec::new()
    };
    let src = JournalSource::from_options(opts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    env.journal(&src)
}

/// `ignorecache = key="<ip>", max-count=100, max-time=5m` with fail2ban's defaults.
fn ignore_cache_config(opts: &[(String, String)]) -> f2b_engine::IgnoreCacheConfig {
    let get = |k: &str| opts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    f2b_engine::IgnoreCacheConfig {
        key: get("key").unwrap_or("<ip>").to_owned(),
        max_count: get("max-count")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(100),
        max_time: get("max-time")
            .and_then(|v| f2b_core::duration::str2sec(v).ok())
            .unwrap_or(300.0),
    }
}

fn action_log(log: Arc<Logger>) -> f2b_actions::LogSink {
    Arc::new(move |level, name, msg| {
        let l = match level {
            LogLevel::Critical => Level::CRITICAL,
            LogLevel::Error => Level::ERROR,
            LogLevel::Warning => Level::WARNING,
            LogLevel::Notice => Level::NOTICE,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
        };
        log.log(name, l, msg);
    })
}

impl JailRuntime {
    /// Starts a jail from its settings: compiles the filter, restores bans from the
    /// database, starts the actions and follows the log files.
    pub fn start(
        s: &JailSettings,
        env: &RuntimeEnv,
        log: &Arc<Logger>,
        dbmaxmatches: i64,
    ) -> Result<JailRuntime, RuntimeError> {
        // fail2ban 1.1's `systemd_if_nologs`: `auto` with no log file at all reads the
        // journal when the filter says what to match there.
        let no_files = s.logpaths.is_empty();
        let use_journal =
            s.is_journal() || (no_files && s.backend == "auto" && !s.journalmatch.is_empty());
        if !use_journal && no_files {
            return Err(RuntimeError::Backend(format!(
                "Have not found any log file for {} jail",
                s.name
            )));
        }
        if use_journal && !s.is_journal() {
            log.log(
                "fail2ban.jail",
                Level::WARNING,
                &format!(
                    "Have not found any log file for {} jail, switching backend to systemd",
                    s.name
                ),
            );
        }
        let filter =
            Filter::new(filter_spec(s)).map_err(|e| RuntimeError::Filter(e.to_string()))?;
        let mut engine = JailEngine::new(s.name.clone());
        configure_engine(&mut engine, s, log);
        let counters = Arc::new(Counters::default());
        let action_env = Arc::new(ActionEnv {
            executor: Executor::new().with_prefix(env.inner.exec_prefix.clone()),
            jail_info: Arc::new(SharedInfo(counters.clone())),
            log: action_log(log.clone()),
            ..ActionEnv::default()
        });
        let mut actions = JailActions::new(s.name.clone(), action_env);
        let mut native: Option<NativeBans> = None;
        for (name, def) in &s.actions {
            if is_native(name, &def.props) {
                match native_jail(&s.name, name, def, env, log, &counters) {
                    Ok(n) => native = Some(n),
                    Err(e) => log.log(
                        "fail2ban.actions",
                        Level::ERROR,
                        &format!("[{}] native nftables action {name}: {e}", s.name),
                    ),
                }
                continue;
            }
            if let Err(e) = actions.add(name, def.props.clone()) {
                log.log(
                    "fail2ban.actions",
                    Level::ERROR,
                    &format!("[{}] action {name}: {e}", s.name),
                );
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let wake_unban = Arc::new(tokio::sync::Notify::new());
        let core = Arc::new(Mutex::new(JailCore {
            name: s.name.clone(),
            filter,
            engine,
            log: log.clone(),
            env: env.clone(),
            jobs: tx.clone(),
            wake_unban: wake_unban.clone(),
            counters,
            in_operation: false,
            dbmaxmatches: dbmaxmatches.max(0) as usize,
            ignore_env: ServerIgnoreEnv::default(),
            warned_no_date: false,
            idle: None,
            pending_bans: Vec::new(),
            pending_jobs: Vec::new(),
            native: native.clone(),
        }));
        lock(&core).update_counters();
        env.inner
            .rt
            .spawn(action_worker(actions, native.clone(), log.clone(), rx));
        let _ = tx.send(Job::Start);
        for (k, v) in [
            ("maxRetry", s.maxretry.to_string()),
            ("findtime", s.findtime.to_string()),
        ] {
            log.log("fail2ban.filter", Level::INFO, &format!("  {k}: {v}"));
        }
        log.log(
            "fail2ban.actions",
            Level::INFO,
            &format!("  banTime: {}", s.bantime),
        );
        // Restore active bans.
        if let Some(store) = env.store_to_restore() {
            let t = now();
            let mut q = CurrentBansQuery::jail(&s.name, t as i64);
            let maxbt = lock(&core).engine.max_ban_time().trunc();
            q.max_bantime = Some(maxbt);
            q.unknown_bantime = Some(s.bantime);
            // Streamed and applied in chunks, so a million restored bans never sit in
            // memory twice; the native backend gets one reconciliation at the end. This
            // thread reads and decodes the rows; once a first full chunk shows there are
            // many, a second thread bans them (engine, log lines, action jobs) meanwhile.
            let mut desired = Vec::new();
            log.begin_bulk();
            let res = std::thread::scope(|sc| {
                let mut chunk: Vec<Ticket> = Vec::with_capacity(RESTORE_CHUNK);
                type Feed<'a> = (
                    std::sync::mpsc::SyncSender<Vec<Ticket>>,
                    std::thread::ScopedJoinHandle<'a, ()>,
                );
                let mut feed: Option<Feed<'_>> = None;
                let res = store.for_each_current_ban(&q, |b| {
                    if native.is_some() {
                        let bt = if b.ban.bantime == -2 {
                            s.bantime
                        } else {
                            b.ban.bantime
                        };
                        if let (Some(net), Some(left)) =
                            (ip_net(&b.ban.ip), remaining(b.ban.timeofban as f64, bt, t))
                        {
                            desired.push((net, left));
                        }
                    }
                    let Ok(id) = Addr::parse(&b.ban.ip) else {
                        return;
                    };
                    let mut ban = b.ban;
                    let data = ban.take_ticket_data();
                    let mut tk = Ticket::new(id, ban.timeofban as f64, data.matches);
                    tk.bantime = Some(Num::Int(ban.bantime));
                    tk.bancount = ban.bancount.max(0) as u32;
                    tk.failures = data.failures.unwrap_or(0).max(0) as u32;
                    tk.data = data.fields;
                    chunk.push(tk);
                    if chunk.len() < RESTORE_CHUNK {
                        return;
                    }
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(RESTORE_CHUNK));
                    if feed.is_none() {
                        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Ticket>>(2);
                        let core = &core;
                        let spawned = std::thread::Builder::new()
                            .name("f2b-restore".into())
                            .spawn_scoped(sc, move || {
                                for tickets in rx {
                                    restore_chunk(&mut lock(core), tickets, t);
                                }
                            });
                        match spawned {
                            Ok(h) => feed = Some((tx, h)),
                            Err(_) => {
                                restore_chunk(&mut lock(core), full, t);
                                return;
                            }
                        }
                    }
                    if let Some((tx, _)) = &feed {
                        if let Err(e) = tx.send(full) {
                            restore_chunk(&mut lock(&core), e.0, t);
                        }
                    }
                });
                match feed {
                    Some((tx, h)) => {
                        if let Err(e) = tx.send(chunk) {
                            restore_chunk(&mut lock(&core), e.0, t);
                        }
                        drop(tx);
                        let _ = h.join();
                    }
                    None => restore_chunk(&mut lock(&core), chunk, t),
                }
                res
            });
            wake_unban.notify_one();
            log.end_bulk();
            if let Err(e) = res {
                log.log(
                    "fail2ban.database",
                    Level::ERROR,
                    &format!("[{}] Cannot read the bans to restore: {e}", s.name),
                );
            }
            if let Some(n) = &native {
                n.reconcile(&desired, log);
            }
        }
        let sub = SubscriberId(env.inner.next_sub.fetch_add(1, Ordering::SeqCst));
        lock(&env.inner.subs).insert(sub, Arc::downgrade(&core));
        let journal = if use_journal {
            let reader = match open_journal(s, env) {
                Ok(r) => r,
                Err(e) => {
                    lock(&env.inner.subs).remove(&sub);
                    let _ = tx.send(Job::Stop(Vec::new(), std::sync::mpsc::channel().0));
                    return Err(RuntimeError::Backend(e));
                }
            };
            let findtime = s.findtime as f64;
            let pos = env
                .store_to_restore()
                .and_then(|st| st.journal_position(&s.name).ok().flatten());
            let start = JournalStart::resume(
                pos.as_ref().and_then(|p| p.cursor.as_deref()),
                pos.as_ref().map(|p| p.time),
                now(),
                findtime,
            );
            let mut m = JournalMatch::all();
            if !s.journalmatch.is_empty() {
                m = JournalMatch::parse(&s.journalmatch[0])
                    .map_err(|e| RuntimeError::Backend(e.to_string()))?;
                for g in &s.journalmatch[1..] {
                    m.add(g).map_err(|e| RuntimeError::Backend(e.to_string()))?;
                }
            }
            let enc = LogEncoding::from_name(&s.logencoding).unwrap_or_default();
            lock(&reader.journal)
                .subscribe(sub, m, enc, start)
                .map_err(|e| RuntimeError::Backend(e.to_string()))?;
            log.log(
                "fail2ban.jail",
                Level::INFO,
                &format!(
                    "Jail {} uses systemd {{}}",
                    crate::args::py_str_repr(&s.name)
                ),
            );
            Some(reader)
        } else {
            None
        };
        // Follow the log files.
        let enc = LogEncoding::from_name(&s.logencoding).unwrap_or_default();
        {
            let store = env.store_to_restore();
            let mut tailer = lock(&env.inner.tailer);
            for lp in &s.logpaths {
                let opts = LogPathOptions {
                    start: if lp.tail {
                        StartMode::Tail
                    } else {
                        StartMode::Head
                    },
                    encoding: enc,
                };
                let jail = s.name.clone();
                let st = store.clone();
                let mut lookup = move |p: &std::path::Path| -> Option<Checkpoint> {
                    let pos = st
                        .as_ref()?
                        .log_position(&jail, &p.to_string_lossy())
                        .ok()??;
                    Some(Checkpoint {
                        pos: pos.lastfilepos,
                        firstlinemd5: pos.firstlinemd5.unwrap_or_default(),
                    })
                };
                match tailer.add_logpath(sub, &lp.path, opts, &mut lookup) {
                    Ok(files) => {
                        for f in files {
                            let cp = tailer.checkpoint_of(&f);
                            log.log(
                                "fail2ban.filter",
                                Level::INFO,
                                &format!(
                                    "Added logfile: '{}' (pos = {}, hash = {})",
                                    f.display(),
                                    cp.as_ref().map(|c| c.pos).unwrap_or(0),
                                    cp.map(|c| c.firstlinemd5).unwrap_or_default()
                                ),
                            );
                        }
                    }
                    Err(e) => log.log(
                        "fail2ban.filter",
                        Level::ERROR,
                        &format!("[{}] {}: {e}", s.name, lp.path),
                    ),
                }
            }
            tailer.mark_all_dirty();
        }
        env.ensure_reader();
        // Unban timer.
        let stop_timer = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::new(AtomicBool::new(false));
        env.inner.rt.spawn(unban_timer(
            Arc::downgrade(&core),
            wake_unban,
            stop_timer.clone(),
            stopped.clone(),
        ));
        Ok(JailRuntime {
            core,
            sub,
            journal,
            env: env.clone(),
            stop_timer,
            stopped,
            applied: s.clone(),
        })
    }

    /// Runs `actionreload` of the jail's actions (the end of a `reload` without
    /// `--restart`; actions not started yet have nothing to reload).
    pub fn reload_actions(&self) {
        let names = self.applied.actions.keys().cloned().collect();
        let _ = lock(&self.core).jobs.send(Job::Reload(names));
    }

    /// Picks up changed settings (`set <jail> ...` while running, reload). An action
    /// gone from the settings is just removed (`delaction`), or, when `reloading`,
    /// retired: its bans flushed from it and `actionstop` run, as fail2ban's reload does.
    pub fn apply_settings(&mut self, s: &JailSettings, log: &Arc<Logger>, reloading: bool) {
        let old = std::mem::replace(&mut self.applied, s.clone());
        let mut c = lock(&self.core);
        let c = &mut *c;
        configure_engine(&mut c.engine, s, log);
        let regex_changed = old.prefregex != s.prefregex
            || old.failregex != s.failregex
            || old.ignoreregex != s.ignoreregex
            || old.datepattern != s.datepattern
            || old.logtimezone != s.logtimezone
            || old.maxlines != s.maxlines
            || old.usedns != s.usedns;
        if regex_changed {
            match Filter::new(filter_spec(s)) {
                Ok(f) => c.filter = f,
                Err(e) => log.log(
                    "fail2ban.filter",
                    Level::ERROR,
                    &format!("[{}] filter not changed: {e}", s.name),
                ),
            }
        }
        // Idle on/off after the filter is current (lines kept while idle use it).
        c.set_idle(s.idle);
        // Actions: added, removed, changed properties. A removed action takes its
        // bans down with it (flush or unban each) and stops, as fail2ban's reload does.
        for name in old.actions.keys() {
            if s.actions.contains_key(name) {
                continue;
            }
            if !reloading {
                let _ = c.jobs.send(Job::Del(name.clone()));
            } else {
                let remaining = c
                    .engine
                    .bans()
                    .tickets()
                    .into_iter()
                    .map(|t| ticket_to_action(t, false))
                    .collect();
                if is_native(name, &old.actions[name].props) {
                    if let Some(n) = c.native.take() {
                        n.stop();
                    }
                }
                let _ = c.jobs.send(Job::Retire(name.clone(), remaining));
            }
        }
        for (name, def) in &s.actions {
            match old.actions.get(name) {
                None => {
                    let _ = c.jobs.send(Job::Add(
                        name.clone(),
                        def.props
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ));
                }
                Some(o) => {
                    for (k, v) in &def.props {
                        if o.props.get(k) != Some(v) {
                            let _ = c.jobs.send(Job::Set(name.clone(), k.clone(), v.clone()));
                        }
                    }
                }
            }
        }
        // Log paths.
        let mut tailer = lock(&self.env.inner.tailer);
        let new_paths: Vec<_> = s.logpaths.iter().map(|l| l.path.clone()).collect();
        let enc = LogEncoding::from_name(&s.logencoding).unwrap_or_default();
        for lp in &s.logpaths {
            let opts = LogPathOptions {
                start: if lp.tail {
                    StartMode::Tail
                } else {
                    StartMode::Head
                },
                encoding: enc,
            };
            let _ = tailer.add_logpath(self.sub, &lp.path, opts, &mut |_| None);
        }
        let followed: Vec<String> = tailer
            .files(self.sub)
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for f in followed {
            if !new_paths.contains(&f) && !new_paths.iter().any(|p| p.contains(['*', '?', '['])) {
                tailer.remove_logpath(self.sub, &f);
            }
        }
        tailer.set_encoding(self.sub, enc);
        c.update_counters();
    }

    /// Stops the jail: no more lines, bans flushed (actionflush or per-ip unban), actions
    /// stopped. Blocks until the actions finished; call from a blocking context.
    pub fn stop(self, _log: &Arc<Logger>) {
        lock(&self.env.inner.tailer).remove_subscriber(self.sub);
        if let Some(j) = &self.journal {
            let mut jr = lock(&j.journal);
            if let Some(p) = jr.position(self.sub) {
                if let Some(store) = self.env.store() {
                    let _ = store.set_journal_position(
                        &lock(&self.core).name,
                        &JournalPosition {
                            time: p.time,
                            iso: Some(p.iso),
                            cursor: p.cursor,
                        },
                    );
                }
            }
            let _ = jr.unsubscribe(self.sub);
        }
        self.env.save_positions();
        lock(&self.env.inner.subs).remove(&self.sub);
        self.stopped.store(true, Ordering::SeqCst);
        self.stop_timer.notify_one();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut c = lock(&self.core);
            let remaining: Vec<BanTicket> = c
                .engine
                .bans_mut()
                .flush()
                .iter()
                .map(|t| ticket_to_action(t, false))
                .collect();
            let _ = c.jobs.send(Job::Stop(remaining, tx));
        }
        let _ = rx.recv_timeout(Duration::from_secs(120));
    }

    /// `unban --all` for this jail: returns how many were unbanned.
    pub fn unban_all(&mut self) -> i64 {
        let mut c = lock(&self.core);
        let tickets: Vec<BanTicket> = c
            .engine
            .bans_mut()
            .flush()
            .iter()
            .map(|t| ticket_to_action(t, false))
            .collect();
        let n = tickets.len() as i64;
        if let Some(nb) = &c.native {
            nb.unban(&tickets.iter().collect::<Vec<_>>());
        }
        let _ = c.jobs.send(Job::Flush(tickets));
        c.update_counters();
        n
    }

    /// `unbanip <id>`: whether it was banned (and is now unbanned).
    pub fn unban(&mut self, id: &str) -> bool {
        let mut c = lock(&self.core);
        let c = &mut *c;
        let mut events = Vec::new();
        let ok = c
            .engine
            .unban_ip(Some(&[id]), true, now(), &mut c.ignore_env, &mut events)
            .map(|n| n > 0)
            .unwrap_or(false);
        c.apply_now(events);
        ok
    }

    /// The banned ids, in ban order.
    pub fn ban_list(&self) -> Vec<String> {
        lock(&self.core)
            .engine
            .status()
            .banned
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// The banned ids ordered by end of ban; with times as fail2ban prints them
    /// (`id \t<ban time> + <bantime> = <end>`).
    pub fn ban_list_ordered(&self, with_time: bool) -> Vec<String> {
        let c = lock(&self.core);
        let default = c.engine.bantime();
        c.engine
            .bans()
            .ordered()
            .into_iter()
            .map(|(t, eob)| {
                if with_time {
                    format!(
                        "{} \t{} + {} = {}",
                        t.id,
                        time2str(t.time),
                        t.bantime_or(default).trunc(),
                        time2str(eob)
                    )
                } else {
                    t.id.to_string()
                }
            })
            .collect()
    }

    /// Whether `id` is banned.
    pub fn is_banned(&self, id: &str) -> bool {
        match Addr::parse(id) {
            Ok(a) => lock(&self.core).engine.bans().contains(&a),
            Err(_) => false,
        }
    }

    /// (currently failed, total failed, currently banned, total banned, banned list); the
    /// list only `with_list` (`status <jail> short` needs none, and a million bans take a
    /// while to list).
    pub fn counters(&self, with_list: bool) -> (i64, i64, i64, i64, Vec<String>) {
        let c = lock(&self.core);
        if !with_list {
            let e = &c.engine;
            return (
                e.failures().size() as i64,
                e.failures().total() as i64,
                e.bans().size() as i64,
                e.bans().total() as i64,
                Vec::new(),
            );
        }
        let st = c.engine.status();
        drop(c);
        (
            st.currently_failed as i64,
            st.total_failed as i64,
            st.currently_banned as i64,
            st.total_banned as i64,
            st.banned.iter().map(|a| a.to_string()).collect(),
        )
    }

    /// Whether the jail reads the systemd journal.
    pub fn is_journal(&self) -> bool {
        self.journal.is_some()
    }

    /// The files followed.
    pub fn file_list(&self) -> Vec<String> {
        lock(&self.env.inner.tailer)
            .files(self.sub)
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// `banip <id>...`: how many were newly banned.
    pub fn ban_manual(&mut self, ids: &[String]) -> i64 {
        let store = self.env.store();
        let mut c = lock(&self.core);
        let c = &mut *c;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut events = Vec::new();
        let mut hist = store.as_deref().map(StoreHistory);
        let n = c
            .engine
            .ban_ip(
                &refs,
                now(),
                hist.as_mut().map(|h| h as &mut dyn f2b_engine::BanHistory),
                &mut events,
            )
            .unwrap_or(0);
        c.apply_now(events);
        i64::from(n)
    }

    /// `attempt <ip> [failure...]`: the id's failure count after the attempt.
    pub fn attempt(&mut self, ip: &str, failures: &[String]) -> i64 {
        let Ok(id) = Addr::parse(ip) else { return 0 };
        let store = self.env.store();
        let mut c = lock(&self.core);
        let c = &mut *c;
        let mut events = Vec::new();
        let mut hist = store.as_deref().map(StoreHistory);
        c.engine.on_attempt(
            id.clone(),
            failures.to_vec(),
            now(),
            hist.as_mut().map(|h| h as &mut dyn f2b_engine::BanHistory),
            &mut events,
        );
        c.apply_now(events);
        let banned = c.engine.bans().contains(&id);
        let n = c.engine.failures().get(&id).map(|t| t.retry()).unwrap_or(0);
        if banned {
            1
        } else {
            i64::from(n)
        }
    }
}

/// Restores one chunk of tickets read from the database: the engine's restore rules,
/// then the `Restore Ban` lines and the action jobs of the chunk.
fn restore_chunk(c: &mut JailCore, tickets: Vec<Ticket>, now: f64) {
    let mut events = Vec::with_capacity(tickets.len());
    for tk in tickets {
        c.engine
            .restore_ban(tk, now, &mut c.ignore_env, &mut events);
    }
    let mut lines = RestoreLines::default();
    c.apply_restored(&mut events, &mut lines);
}

/// How many bans of a storm run their actions at once (one jail; other jails have their
/// own workers).
const BAN_PARALLELISM: usize = 8;

/// At most this many queued bans go to the actions in one batch (bounds the memory of a
/// million restored bans in flight).
const MAX_BAN_BATCH: usize = 1024;

/// A worker that ran at least this many bans returns the heap's free pages when its
/// queue runs dry: the queued tickets of a storm were freed in between the bans' live
/// state, and the reader's own trims (after it went quiet) come before the actions end.
const TRIM_AFTER_BANS: usize = 256;

/// Restored bans are logged and handed to the actions in chunks of this many.
const RESTORE_CHUNK: usize = 4096;

async fn action_worker(
    mut actions: JailActions,
    native: Option<NativeBans>,
    log: Arc<Logger>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut next: Option<Job> = None;
    // The ban epoch of tickets banned after a repair (absent = epoch 0).
    let mut epochs: HashMap<String, u64> = HashMap::new();
    let mut last_check: Option<std::time::Instant> = None;
    // Bans run since the last trim of the heap.
    let mut banned: usize = 0;
    loop {
        if next.is_none() && banned >= TRIM_AFTER_BANS && rx.is_empty() {
            banned = 0;
            crate::daemon::trim_heap();
        }
        let job = match next.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        match job {
            Job::Start => {
                actions.start().await;
            }
            Job::Ban(_) | Job::Bans(_) => {
                // A storm: take the bans already queued (up to the next job of another
                // kind, which keeps its order) and run them concurrently.
                let mut batch = match job {
                    Job::Ban(t) => vec![t],
                    Job::Bans(v) => v,
                    _ => Vec::new(),
                };
                while batch.len() < MAX_BAN_BATCH {
                    let Ok(j) = rx.try_recv() else { break };
                    match j {
                        Job::Ban(t) => batch.push(t),
                        Job::Bans(v) => batch.extend(v),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                banned += batch.len();
                for chunk in batch.chunks_mut(MAX_BAN_BATCH) {
                    let epoch = actions.ban_epoch();
                    for t in chunk.iter_mut() {
                        t.ban_epoch = epoch;
                        if epoch > 0 {
                            // Only after a repair do epochs differ (and need a record).
                            epochs.insert(t.id.clone(), epoch);
                        }
                    }
                    if chunk.len() == 1 {
                        actions.ban(&chunk[0]).await;
                    } else {
                        actions.ban_many(chunk, BAN_PARALLELISM).await;
                    }
                }
            }
            Job::Unban(t) => {
                epochs.remove(&t.id);
                actions.unban(&t).await;
            }
            Job::Flush(ts) => {
                epochs.clear();
                actions.flush(&ts, false).await;
            }
            Job::Stop(remaining, done) => {
                if let Some(n) = &native {
                    n.stop();
                }
                actions.stop(&remaining).await;
                let _ = done.send(());
                return;
            }
            Job::Add(name, props) => {
                let _ = actions.add(&name, props);
            }
            Job::Del(name) => {
                actions.remove(&name);
            }
            Job::Retire(name, remaining) => {
                epochs.clear();
                actions.retire(&name, &remaining).await;
            }
            Job::Reload(names) => {
                actions.reload_some(&names).await;
            }
            Job::AlreadyBanned(mut t, since) => {
                // fail2ban: long after the ban (> 3 s) and in the current epoch, the
                // actions' invariants are checked (at most every 3 s); a repair moves the
                // epoch on, and a ticket of an older epoch is banned again ("Reban") by
                // the actions of the newer one.
                t.ban_epoch = epochs.get(&t.id).copied().unwrap_or(0);
                if t.ban_epoch == actions.ban_epoch()
                    && since > 3.0
                    && last_check.is_none_or(|c| c.elapsed() > Duration::from_secs(3))
                {
                    last_check = Some(std::time::Instant::now());
                    actions.consistency_check().await;
                }
                let epoch = actions.ban_epoch();
                if t.ban_epoch < epoch {
                    let newer: Vec<String> = actions
                        .names()
                        .into_iter()
                        .filter(|n| actions.get(n).is_some_and(|a| a.ban_epoch() > t.ban_epoch))
                        .collect();
                    let which = match newer.as_slice() {
                        [one] => format!(", action {}", crate::args::py_str_repr(one)),
                        _ => String::new(),
                    };
                    log.log(
                        "fail2ban.actions",
                        Level::NOTICE,
                        &format!("[{}] Reban {}{which}", actions.jail(), t.id),
                    );
                    if actions.reban(&t, true).await {
                        epochs.insert(t.id.clone(), epoch);
                    }
                }
            }
            Job::Set(name, k, v) => {
                if let Ok(a) = actions.get_mut(&name) {
                    let _ = a.set_property(k, v);
                }
            }
        }
    }
}

async fn unban_timer(
    core: Weak<Mutex<JailCore>>,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    stopped: Arc<AtomicBool>,
) {
    loop {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let next = {
            let Some(c) = core.upgrade() else { return };
            let mut c = lock(&c);
            if c.idle.is_some() {
                // An idle jail ends no ban (as fail2ban's idle actions thread); leaving
                // idle wakes this timer.
                None
            } else {
                let t = now();
                let mut events = Vec::new();
                c.engine.unban_expired(t, &mut events);
                c.apply_now(events);
                c.engine.next_unban_time()
            }
        };
        let wait = match next {
            Some(n) => Duration::from_secs_f64((n - now()).clamp(0.0, 3600.0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = stop.notified() => return,
        }
    }
}

/// The outside world of the ignore rules: DNS, own addresses, files, `ignorecommand`.
#[derive(Default)]
struct ServerIgnoreEnv {
    self_ips: Option<Vec<IpAddr>>,
}

impl IgnoreEnv for ServerIgnoreEnv {
    fn resolve(&mut self, name: &str) -> Vec<IpAddr> {
        (name, 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }

    fn self_ips(&mut self) -> Vec<IpAddr> {
        if let Some(v) = &self.self_ips {
            return v.clone();
        }
        let mut v: Vec<IpAddr> = Vec::new();
        if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
            for a in addrs {
                if let Some(sa) = a.address {
                    if let Some(s4) = sa.as_sockaddr_in() {
                        v.push(IpAddr::V4(s4.ip()));
                    } else if let Some(s6) = sa.as_sockaddr_in6() {
                        v.push(IpAddr::V6(s6.ip()));
                    }
                }
            }
        }
        v.extend(self.resolve("localhost"));
        if let Ok(h) = nix::unistd::gethostname() {
            let h = h.to_string_lossy().into_owned();
            v.extend(self.resolve(&h));
        }
        v.sort();
        v.dedup();
        self.self_ips = Some(v.clone());
        v
    }

    fn file_stamp(&mut self, path: &str) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ino: m.ino(),
            size: m.size(),
        })
    }

    fn read_file(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn ignore_command(
        &mut self,
        command: &str,
        id: &Addr,
        ticket: Option<&Ticket>,
    ) -> Result<bool, String> {
        // Validated values are substituted; anything captured from a log line reaches
        // the shell only as an environment variable, never as script text.
        let ip = id.to_string();
        let mut script = command
            .replace("<ip>", &ip)
            .replace("<fid>", &ip)
            .replace("<family>", id.family().unwrap_or(""))
            .replace("<ip-rev>", &id.ip_rev());
        let mut envs: Vec<(String, String)> = Vec::new();
        if let Some(t) = ticket {
            for (k, v) in &t.data {
                let tag = format!("<F-{}>", k.to_ascii_uppercase());
                if script.contains(&tag) {
                    let var = format!(
                        "f2bV_F_{}",
                        k.chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                            .collect::<String>()
                    );
                    script = script.replace(&tag, &format!("\"${var}\""));
                    envs.push((var, v.clone()));
                }
            }
        }
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .envs(envs)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    return match st.code() {
                        Some(0) => Ok(true),
                        Some(1) => Ok(false),
                        other => Err(format!("ignorecommand returned {other:?}")),
                    }
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("ignorecommand timed out".into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_text_is_display() {
        for s in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.100.255",
            "99.100.9.10",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "10.0.0.0/24",
            "some-id",
        ] {
            let a = Addr::parse(s).unwrap();
            assert_eq!(addr_text(&a), a.to_string(), "{s}");
        }
        for i in 0..=255u8 {
            let a = Addr::Ip(IpAddr::V4(std::net::Ipv4Addr::new(i, 255 - i, i / 3, 7)));
            assert_eq!(addr_text(&a), a.to_string());
        }
    }
}
