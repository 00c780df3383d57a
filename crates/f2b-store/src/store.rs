//! [`Store`]: one connection to a fail2ban-compatible database.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde_json::Value;

use crate::checkpoint::Checkpointer;
use crate::error::{Result, StoreError};
use crate::json;
use crate::model::{
    value_as_i64, BanData, BanHistory, BanRecord, CurrentBansQuery, HistoryScope, JailBan,
    JournalPosition, LogPosition, MergedBan, PurgeStats,
};
use crate::schema::{self, Found, SCHEMA_VERSION};

/// `logs.path` under which fail2ban keeps the journal position of a jail
/// (`lastfilepos` = time of the last entry, `firstlinemd5` = its ISO form).
pub const JOURNAL_PATH: &str = "systemd-journal";

/// `logs.path` of f2b's companion row holding the exact journal cursor
/// (`firstlinemd5` = cursor, `lastfilepos` = the time written to the
/// [`JOURNAL_PATH`] row at the same moment). fail2ban never asks for this
/// path, so it ignores the row; if fail2ban moves its time row, the times no
/// longer agree and f2b ignores the stale cursor.
pub const JOURNAL_CURSOR_PATH: &str = "f2b-journal-cursor:systemd-journal";

/// fail2ban's `outDatedFactor`: a `bips` row is purged once
/// `timeofban + 3 * bantime` is older than the purge age.
const OUTDATED_FACTOR: i64 = 3;

/// How durable a returned write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `PRAGMA synchronous=NORMAL` with WAL: a returned write survives any
    /// crash of the process (SIGKILL, panic, OOM kill); an OS crash or power
    /// loss may drop the writes since the last WAL checkpoint (the database
    /// stays consistent).
    #[default]
    Normal,
    /// `PRAGMA synchronous=FULL`: the WAL is fsynced at every commit, so a
    /// returned write also survives power loss (one fsync per transaction).
    Full,
}

/// Options for [`Store::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// `dbmaxmatches`: matches kept per ban (0 = none). fail2ban's default is 10.
    pub max_matches: usize,
    /// `dbpurgeage` in seconds. fail2ban's default is one day.
    pub purge_age: i64,
    /// The current Unix time; names the backup copy made before a schema
    /// upgrade (`<db>.YYYYMMDD-HHMMSS`, UTC, like fail2ban).
    pub now: i64,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// How long to wait for a lock held by another process.
    pub busy_timeout: Duration,
}

impl OpenOptions {
    /// fail2ban's defaults (`dbmaxmatches = 10`, `dbpurgeage = 1d`) at time `now`.
    pub fn new(now: i64) -> Self {
        OpenOptions {
            max_matches: 10,
            purge_age: 86_400,
            now,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The `dbfile` setting: fail2ban accepts a path, `:memory:` or `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFile {
    /// `None` (any case): no persistence.
    Disabled,
    /// `:memory:`: an SQLite database that lives as long as the store.
    Memory,
    /// A database file.
    Path(PathBuf),
}

impl DbFile {
    /// Interprets a `dbfile` value as fail2ban does.
    pub fn parse(value: &str) -> DbFile {
        if value.eq_ignore_ascii_case("none") {
            DbFile::Disabled
        } else if value == ":memory:" {
            DbFile::Memory
        } else {
            DbFile::Path(PathBuf::from(value))
        }
    }
}

/// A set of writes committed together in one transaction by [`Store::apply`]:
/// either all of them are in the database afterwards or none is. Used to
/// commit a ban together with the log position that produced it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    AddJail(String),
    AddBan(String, BanRecord),
    RemoveBan(String, String),
    LogPosition(String, String, LogPosition),
    Journal(String, JournalPosition),
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Adds (or re-enables) a jail.
    pub fn add_jail(&mut self, jail: &str) -> &mut Self {
        self.ops.push(Op::AddJail(jail.to_owned()));
        self
    }

    /// Adds a ban (see [`Store::add_ban`]).
    pub fn add_ban(&mut self, jail: &str, ban: BanRecord) -> &mut Self {
        self.ops.push(Op::AddBan(jail.to_owned(), ban));
        self
    }

    /// Removes an ip's bans from a jail (see [`Store::remove_ban`]).
    pub fn remove_ban(&mut self, jail: &str, ip: &str) -> &mut Self {
        self.ops.push(Op::RemoveBan(jail.to_owned(), ip.to_owned()));
        self
    }

    /// Records a log file position (see [`Store::set_log_position`]).
    pub fn set_log_position(&mut self, jail: &str, path: &str, pos: LogPosition) -> &mut Self {
        self.ops
            .push(Op::LogPosition(jail.to_owned(), path.to_owned(), pos));
        self
    }

    /// Records a journal position (see [`Store::set_journal_position`]).
    pub fn set_journal_position(&mut self, jail: &str, pos: JournalPosition) -> &mut Self {
        self.ops.push(Op::Journal(jail.to_owned(), pos));
        self
    }

    /// Number of queued writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// `true` if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

struct Inner {
    conn: Connection,
    max_matches: usize,
    purge_age: i64,
}

/// A fail2ban-compatible database (schema v4). Thread-safe: all methods take
/// `&self` and serialise on an internal mutex. Time is always a parameter;
/// the store never reads the clock.
pub struct Store {
    inner: Mutex<Inner>,
    /// Background WAL checkpoints (file databases in WAL mode); declared after
    /// `inner` only for readability: [`Store::close`] stops it first.
    ckpt: Option<Checkpointer>,
    db: String,
    path: Option<PathBuf>,
    journal_mode: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db)
            .field("journal_mode", &self.journal_mode)
            .finish()
    }
}

fn lenient_i64(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f.round() as i64),
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).ok()?.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f.round() as i64))
        }
        _ => None,
    }
}

fn lenient_f64(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// Applies `dbmaxmatches` to a data dict the way fail2ban's `addBan` does.
fn cap_matches(data: &BanData, max: usize) -> Cow<'_, BanData> {
    match data.get("matches") {
        Some(Value::Array(list)) if max > 0 && list.len() > max => {
            let mut d = data.clone();
            d.insert("matches", Value::Array(list[list.len() - max..].to_vec()));
            Cow::Owned(d)
        }
        Some(_) if max == 0 => {
            let mut d = data.clone();
            d.remove("matches");
            Cow::Owned(d)
        }
        _ => Cow::Borrowed(data),
    }
}

fn cap_matches_owned(data: &mut BanData, max: usize) {
    if max == 0 {
        data.remove("matches");
    } else if let Some(Value::Array(list)) = data.get_mut("matches") {
        if list.len() > max {
            list.drain(..list.len() - max);
        }
    }
}

fn ensure_jail(conn: &Connection, jail: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO jails(name, enabled) VALUES(?1, 1)")?
        .execute([jail])?;
    Ok(())
}

fn insert_ban(conn: &Connection, jail: &str, ban: &BanRecord, max: usize) -> rusqlite::Result<()> {
    ensure_jail(conn, jail)?;
    insert_ban_rows(conn, jail, ban, max)
}

/// [`insert_ban`] for a jail whose row exists (ensured earlier in the transaction).
fn insert_ban_rows(
    conn: &Connection,
    jail: &str,
    ban: &BanRecord,
    max: usize,
) -> rusqlite::Result<()> {
    let data = json::encode(&cap_matches(&ban.data, max));
    conn.prepare_cached(
        "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![jail, ban.ip, ban.timeofban, ban.bantime, ban.bancount, data])?;
    // fail2ban's `INSERT OR REPLACE`, as a delete and a plain insert: a REPLACE
    // may write several rows and, with the foreign key, may abort, so SQLite
    // copies every page it touches to a statement journal first (a third of a
    // ban's database work); these two statements need none. Same rows result.
    conn.prepare_cached("DELETE FROM bips WHERE ip = ?1 AND jail = ?2")?
        .execute(params![ban.ip, jail])?;
    conn.prepare_cached(
        "INSERT INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ban.ip, jail, ban.timeofban, ban.bantime, ban.bancount, data])?;
    Ok(())
}

fn delete_ban(conn: &Connection, jail: &str, ip: Option<&str>) -> rusqlite::Result<usize> {
    let n = match ip {
        Some(ip) => {
            conn.prepare_cached("DELETE FROM bips WHERE jail = ?1 AND ip = ?2")?
                .execute([jail, ip])?;
            conn.prepare_cached("DELETE FROM bans WHERE jail = ?1 AND ip = ?2")?
                .execute([jail, ip])?
        }
        None => {
            conn.prepare_cached("DELETE FROM bips WHERE jail = ?1")?
                .execute([jail])?;
            conn.prepare_cached("DELETE FROM bans WHERE jail = ?1")?
                .execute([jail])?
        }
    };
    Ok(n)
}

/// fail2ban's `_updateLog`: update, or insert if the row is missing.
fn update_log(
    conn: &Connection,
    jail: &str,
    path: &str,
    md5: Option<&str>,
    pos: SqlValue,
) -> rusqlite::Result<()> {
    ensure_jail(conn, jail)?;
    let n = conn
        .prepare_cached(
            "UPDATE logs SET firstlinemd5 = ?1, lastfilepos = ?2 WHERE jail = ?3 AND path = ?4",
        )?
        .execute(params![md5, pos, jail, path])?;
    if n == 0 {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?1, ?2, ?3, ?4)",
        )?
        .execute(params![jail, path, md5, pos])?;
    }
    Ok(())
}

fn read_log(
    conn: &Connection,
    jail: &str,
    path: &str,
) -> rusqlite::Result<Option<(Option<String>, ValueOwned)>> {
    conn.prepare_cached("SELECT firstlinemd5, lastfilepos FROM logs WHERE jail = ?1 AND path = ?2")?
        .query_row([jail, path], |r| {
            Ok((text(r.get_ref(0)?), ValueOwned::from(r.get_ref(1)?)))
        })
        .optional()
}

/// An owned numeric column value (lastfilepos may hold a float time).
#[derive(Debug, Clone, Copy)]
struct ValueOwned(Option<f64>, Option<i64>);

impl From<ValueRef<'_>> for ValueOwned {
    fn from(v: ValueRef<'_>) -> Self {
        ValueOwned(lenient_f64(v), lenient_i64(v))
    }
}

fn apply_op(conn: &Connection, op: &Op, max: usize) -> rusqlite::Result<()> {
    match op {
        Op::AddJail(jail) => add_jail_sql(conn, jail),
        Op::AddBan(jail, ban) => insert_ban(conn, jail, ban, max),
        Op::RemoveBan(jail, ip) => delete_ban(conn, jail, Some(ip)).map(|_| ()),
        Op::LogPosition(jail, path, pos) => update_log(
            conn,
            jail,
            path,
            pos.firstlinemd5.as_deref(),
            SqlValue::Integer(i64::try_from(pos.lastfilepos).unwrap_or(i64::MAX)),
        ),
        Op::Journal(jail, pos) => write_journal(conn, jail, pos),
    }
}

fn add_jail_sql(conn: &Connection, jail: &str) -> rusqlite::Result<()> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO jails(name, enabled) VALUES(?1, 1)")?
        .execute([jail])?;
    if n == 0 {
        conn.prepare_cached("UPDATE jails SET enabled = 1 WHERE name = ?1 AND enabled != 1")?
            .execute([jail])?;
    }
    Ok(())
}

fn write_journal(conn: &Connection, jail: &str, pos: &JournalPosition) -> rusqlite::Result<()> {
    let time = SqlValue::Real(pos.time);
    update_log(conn, jail, JOURNAL_PATH, pos.iso.as_deref(), time.clone())?;
    match &pos.cursor {
        Some(cursor) => update_log(conn, jail, JOURNAL_CURSOR_PATH, Some(cursor), time),
        None => conn
            .prepare_cached("DELETE FROM logs WHERE jail = ?1 AND path = ?2")?
            .execute([jail, JOURNAL_CURSOR_PATH])
            .map(|_| ()),
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`; `":memory:"` opens a
    /// private in-memory database. Creates the parent directory like
    /// fail2ban. Upgrades schema 1..3 to 4 after copying the file aside;
    /// refuses newer versions and files that are not SQLite databases.
    pub fn open(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Store> {
        let path = path.as_ref();
        if path == Path::new(":memory:") {
            return Self::open_in_memory(opts);
        }
        let db = path.display().to_string();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                    db: db.clone(),
                    op: "create parent directory",
                    source,
                })?;
            }
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            db: db.clone(),
            source,
        })?;
        Self::init(conn, db, Some(path.to_path_buf()), opts)
    }

    /// Opens a private in-memory database (`dbfile = :memory:`).
    pub fn open_in_memory(opts: &OpenOptions) -> Result<Store> {
        let db = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            db: db.clone(),
            source,
        })?;
        Self::init(conn, db, None, opts)
    }

    /// Opens what a `dbfile` setting names; `Ok(None)` for `None`.
    pub fn open_db_file(file: &DbFile, opts: &OpenOptions) -> Result<Option<Store>> {
        match file {
            DbFile::Disabled => Ok(None),
            DbFile::Memory => Self::open_in_memory(opts).map(Some),
            DbFile::Path(p) => Self::open(p, opts).map(Some),
        }
    }

    fn init(
        conn: Connection,
        db: String,
        path: Option<PathBuf>,
        opts: &OpenOptions,
    ) -> Result<Store> {
        let sql = |op: &'static str| {
            let db = db.clone();
            move |source| StoreError::Sql { db, op, source }
        };
        conn.busy_timeout(opts.busy_timeout)
            .map_err(sql("set busy timeout"))?;
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|source| match source.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => StoreError::NotFail2banDb {
                    db: db.clone(),
                    reason: "not an SQLite database".into(),
                },
                _ => StoreError::Open {
                    db: db.clone(),
                    source,
                },
            })?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
            .map_err(sql("set pragmas"))?;
        let found = schema::read_version(&conn, "main").map_err(sql("read schema version"))?;
        match &found {
            Found::Version(v) if *v > SCHEMA_VERSION => {
                return Err(StoreError::FutureVersion {
                    db,
                    found: *v,
                    supported: SCHEMA_VERSION,
                })
            }
            Found::Version(v) if *v < 1 => {
                return Err(StoreError::UnknownVersion {
                    db,
                    found: v.to_string(),
                })
            }
            Found::Garbage(g) => {
                return Err(StoreError::UnknownVersion {
                    db,
                    found: g.clone(),
                })
            }
            Found::Version(v) if *v < SCHEMA_VERSION => {
                if let Some(p) = &path {
                    let mut name = p.as_os_str().to_owned();
                    name.push(format!(".{}", schema::utc_stamp(opts.now)));
                    let backup = PathBuf::from(name);
                    if !backup.exists() {
                        conn.backup(rusqlite::MAIN_DB, &backup, None)
                            .map_err(|source| StoreError::Backup {
                                db: db.clone(),
                                backup,
                                source,
                            })?;
                    }
                }
            }
            _ => {}
        }
        if objects == 0 {
            // Only possible before the first table exists; harmless to fail2ban.
            // (Not with `synchronous` lowered first to save two of the new database's
            // syncs: the server's writes then spilled their cache into the WAL in every
            // burst, 10x the WAL I/O; docs/arch/server-perf.md.)
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
                .map_err(sql("set auto_vacuum"))?;
        }
        // WAL needs a lock no other process holds; if it cannot be had, keep
        // the current journal mode (reported by `journal_mode()`).
        let journal_mode =
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(m) => m,
                Err(_) => conn
                    .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                    .map_err(sql("read journal mode"))?,
            };
        let sync = match opts.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA journal_size_limit = 67108864;"
        ))
        .map_err(sql("set pragmas"))?;
        let mut conn = conn;
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin schema transaction"))?;
            match found {
                Found::Version(v) if v < SCHEMA_VERSION => {
                    schema::upgrade(&tx, v).map_err(sql("upgrade schema"))?
                }
                _ => schema::create(&tx).map_err(sql("create schema"))?,
            }
            tx.commit().map_err(sql("commit schema"))?;
        }
        // Checkpoints move to a thread of their own, off the ban path; if it
        // cannot start, SQLite's automatic checkpoint stays on.
        let ckpt = match &path {
            Some(p) if journal_mode.eq_ignore_ascii_case("wal") => {
                Checkpointer::start(p, opts.busy_timeout)
            }
            _ => None,
        };
        if ckpt.is_some() {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(sql("set pragmas"))?;
        }
        Ok(Store {
            inner: Mutex::new(Inner {
                conn,
                max_matches: opts.max_matches,
                purge_age: opts.purge_age,
            }),
            ckpt,
            db,
            path,
            journal_mode: journal_mode.to_ascii_lowercase(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (an unfinished transaction is rolled back on drop).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql {
            db: self.db.clone(),
            op,
            source,
        }
    }

    /// Runs `f` in an IMMEDIATE transaction and commits it.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection, usize) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock();
        let max = g.max_matches;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err(op))?;
        let out = f(&tx, max).map_err(self.err(op))?;
        tx.commit().map_err(self.err(op))?;
        drop(g);
        if let Some(c) = &self.ckpt {
            c.committed();
        }
        Ok(out)
    }

    /// The database path (`None` for `:memory:`).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The journal mode in effect (`wal` unless another process prevented
    /// the switch; `memory` for `:memory:`).
    pub fn journal_mode(&self) -> &str {
        &self.journal_mode
    }

    /// `dbmaxmatches`.
    pub fn max_matches(&self) -> usize {
        self.lock().max_matches
    }

    /// Sets `dbmaxmatches` (applies to later writes and reads).
    pub fn set_max_matches(&self, n: usize) {
        self.lock().max_matches = n;
    }

    /// `dbpurgeage` in seconds.
    pub fn purge_age(&self) -> i64 {
        self.lock().purge_age
    }

    /// Sets `dbpurgeage` in seconds.
    pub fn set_purge_age(&self, secs: i64) {
        self.lock().purge_age = secs;
    }

    /// Frees the connection's page cache (`sqlite3_db_release_memory`): after a
    /// burst of bans it holds every page the writes touched, up to SQLite's
    /// default `cache_size` (2 MiB). The next statement reads the pages it needs
    /// again (from the OS page cache). For idle moments, not for the ban path.
    pub fn release_memory(&self) {
        let _ = self.lock().conn.release_memory();
    }

    /// The schema version recorded in `fail2banDb` (4 after open).
    pub fn schema_version(&self) -> Result<i64> {
        let g = self.lock();
        match schema::read_version(&g.conn, "main").map_err(self.err("read schema version"))? {
            Found::Version(v) => Ok(v),
            other => Err(StoreError::UnknownVersion {
                db: self.db.clone(),
                found: format!("{other:?}"),
            }),
        }
    }

    /// Registers a jail as enabled (fail2ban's `addJail`).
    pub fn add_jail(&self, jail: &str) -> Result<()> {
        self.write("add jail", |c, _| add_jail_sql(c, jail))
    }

    /// Marks a jail disabled; its rows stay until [`Store::purge`] (`delJail`).
    pub fn del_jail(&self, jail: &str) -> Result<()> {
        self.write("disable jail", |c, _| {
            c.execute("UPDATE jails SET enabled = 0 WHERE name = ?1", [jail])
                .map(|_| ())
        })
    }

    /// Marks every jail disabled (done by fail2ban when the db is opened).
    pub fn del_all_jails(&self) -> Result<()> {
        self.write("disable all jails", |c, _| {
            c.execute("UPDATE jails SET enabled = 0", []).map(|_| ())
        })
    }

    /// Jail names, all or only enabled / disabled ones, sorted.
    pub fn jail_names(&self, enabled: Option<bool>) -> Result<Vec<String>> {
        let g = self.lock();
        let mut stmt = g
            .conn
            .prepare("SELECT name FROM jails WHERE ?1 IS NULL OR enabled = ?1 ORDER BY name")
            .map_err(self.err("list jails"))?;
        let rows = stmt
            .query_map([enabled.map(i64::from)], |r| r.get::<_, String>(0))
            .map_err(self.err("list jails"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list jails"))
    }

    /// Records a ban in `bans` (history) and `bips` (latest per ip and jail),
    /// with `data.matches` capped to `dbmaxmatches`. The jail row is created
    /// if missing. The transaction is committed before this returns: the
    /// caller may run the ban action afterwards (durability: see [`Synchronous`]).
    pub fn add_ban(&self, jail: &str, ban: &BanRecord) -> Result<()> {
        self.write("add ban", |c, max| insert_ban(c, jail, ban, max))
    }

    /// Records many bans of one jail in one transaction (restores, ban storms).
    pub fn add_bans(&self, jail: &str, bans: &[BanRecord]) -> Result<()> {
        self.write("add bans", |c, max| {
            ensure_jail(c, jail)?;
            bans.iter()
                .try_for_each(|b| insert_ban_rows(c, jail, b, max))
        })
    }

    /// Commits a [`WriteBatch`] atomically.
    pub fn apply(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write("apply batch", |c, max| {
            // A batch's bans are mostly one jail's: its row is ensured once.
            let mut ensured: Option<&str> = None;
            batch.ops.iter().try_for_each(|op| match op {
                Op::AddBan(jail, ban) if ensured == Some(jail.as_str()) => {
                    insert_ban_rows(c, jail, ban, max)
                }
                Op::AddBan(jail, ban) => {
                    ensured = Some(jail);
                    insert_ban(c, jail, ban, max)
                }
                _ => apply_op(c, op, max),
            })
        })
    }

    /// Forgets an ip in a jail: deletes its `bips` row and its history
    /// (fail2ban's `delBan`, run on every unban). Returns the number of
    /// history rows deleted.
    pub fn remove_ban(&self, jail: &str, ip: &str) -> Result<usize> {
        self.write("remove ban", |c, _| delete_ban(c, jail, Some(ip)))
    }

    /// Forgets several ips of a jail in one transaction.
    pub fn remove_bans(&self, jail: &str, ips: &[&str]) -> Result<usize> {
        self.write("remove bans", |c, _| {
            ips.iter()
                .try_fold(0, |n, ip| Ok(n + delete_ban(c, jail, Some(ip))?))
        })
    }

    /// Forgets every ban of a jail (`delBan(jail)` without ips, on `unban --all`).
    pub fn remove_all_bans(&self, jail: &str) -> Result<usize> {
        self.write("remove all bans", |c, _| delete_ban(c, jail, None))
    }

    /// Bans that are still active at `query.now`, with fail2ban's
    /// `getCurrentBans` semantics (see [`CurrentBansQuery`]); this is what a
    /// restart restores. Without a jail, one row per ip (its newest ban);
    /// ordered by ip then. Rows without an ip are skipped.
    pub fn current_bans(&self, query: &CurrentBansQuery<'_>) -> Result<Vec<JailBan>> {
        let mut out = Vec::new();
        self.for_each_current_ban(query, |b| out.push(b))?;
        Ok(out)
    }

    /// Streaming form of [`Store::current_bans`]. `f` must not call the store
    /// (the store is locked while it runs).
    pub fn for_each_current_ban(
        &self,
        q: &CurrentBansQuery<'_>,
        mut f: impl FnMut(JailBan),
    ) -> Result<usize> {
        let g = self.lock();
        let mut sql = String::from(if q.jail.is_some() {
            "SELECT ip, timeofban, bantime, bancount, data, jail FROM bips WHERE jail = ?"
        } else {
            "SELECT ip, max(timeofban), bantime, bancount, data, jail FROM bips WHERE 1"
        });
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(j) = q.jail {
            args.push(SqlValue::Text(j.to_owned()));
        }
        if let Some(ip) = q.ip {
            sql.push_str(" AND ip = ?");
            args.push(SqlValue::Text(ip.to_owned()));
        }
        sql.push_str(" AND (timeofban + bantime > ? OR bantime <= -1)");
        args.push(SqlValue::Integer(q.now));
        if let Some(f) = q.forbantime.filter(|f| *f != -1) {
            sql.push_str(" AND timeofban > ?");
            args.push(SqlValue::Integer(q.now - f));
        }
        if q.ip.is_some() {
            sql.push_str(" ORDER BY timeofban DESC LIMIT 1");
        } else if q.jail.is_none() {
            sql.push_str(" GROUP BY ip ORDER BY ip");
        }
        // (With a jail and no ip, the primary key (ip, jail) already makes
        // ips unique; a plain scan is the fastest restore.)
        let max_matches = q.max_matches.unwrap_or(g.max_matches);
        let correct = q.max_bantime.filter(|m| *m != -1);
        let unknown = q.unknown_bantime.unwrap_or(match correct {
            Some(c) if c != 0 => c,
            _ => 600,
        });
        let mut stmt = g
            .conn
            .prepare(&sql)
            .map_err(self.err("read current bans"))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(self.err("read current bans"))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(self.err("read current bans"))? {
            let get = |i| row.get_ref(i).map_err(self.err("read current bans"));
            let ip = match text(get(0)?) {
                Some(ip) if !ip.is_empty() => ip,
                _ => continue,
            };
            let (Some(timeofban), Some(mut bantime)) = (lenient_i64(get(1)?), lenient_i64(get(2)?))
            else {
                continue;
            };
            let bancount = lenient_i64(get(3)?).unwrap_or(1);
            if bantime == -2 {
                bantime = unknown;
            } else if let Some(c) = correct.filter(|c| *c > 0) {
                if bantime == -1 || bantime > c {
                    bantime = c;
                }
            }
            if bantime != -1 && timeofban + bantime <= q.now {
                continue;
            }
            let mut data = json::decode(get(4)?);
            cap_matches_owned(&mut data, max_matches);
            // One jail asked for: its name, not the column's copy of it.
            let jail = match q.jail {
                Some(j) => j.to_owned(),
                None => text(get(5)?).unwrap_or_default(),
            };
            f(JailBan {
                jail,
                ban: BanRecord {
                    ip,
                    timeofban,
                    bantime,
                    bancount,
                    data,
                },
            });
            n += 1;
        }
        Ok(n)
    }

    /// The history the `bantime.increment` feature needs (fail2ban's `getBan`):
    /// how often `ip` was banned, when last, for how long. `since`: only bans
    /// with `timeofban > since` (fail2ban's `forbantime`/`fromtime`).
    /// `None` if the ip has no ban in scope.
    pub fn ban_history(
        &self,
        ip: &str,
        scope: HistoryScope<'_>,
        since: Option<i64>,
    ) -> Result<Option<BanHistory>> {
        let g = self.lock();
        let mut args: Vec<SqlValue> = vec![SqlValue::Text(ip.to_owned())];
        let mut sql = String::from(match scope {
            HistoryScope::Overall => {
                "SELECT sum(bancount), max(timeofban), bantime FROM bips WHERE ip = ?"
            }
            _ => "SELECT bancount, timeofban, bantime FROM bips WHERE ip = ?",
        });
        if let HistoryScope::Jail(j) = scope {
            sql.push_str(" AND jail = ?");
            args.push(SqlValue::Text(j.to_owned()));
        }
        if let Some(s) = since {
            sql.push_str(" AND timeofban > ?");
            args.push(SqlValue::Integer(s));
        }
        sql.push_str(" ORDER BY timeofban DESC LIMIT 1");
        let row = g
            .conn
            .query_row(&sql, rusqlite::params_from_iter(args), |r| {
                Ok((
                    lenient_i64(r.get_ref(0)?),
                    lenient_i64(r.get_ref(1)?),
                    lenient_i64(r.get_ref(2)?),
                ))
            })
            .optional()
            .map_err(self.err("read ban history"))?;
        Ok(match row {
            Some((Some(bancount), Some(last_timeofban), bantime)) => Some(BanHistory {
                bancount,
                last_timeofban,
                last_bantime: bantime.unwrap_or(-2),
            }),
            _ => None,
        })
    }

    /// Ban history rows (`bans` table, fail2ban's `getBans`), ordered by ip
    /// then newest first. `since`: only `timeofban > since`.
    pub fn bans(
        &self,
        jail: Option<&str>,
        ip: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<JailBan>> {
        let mut out = Vec::new();
        self.scan_bans(jail, ip, since, |jb| out.push(jb))?;
        Ok(out)
    }

    fn scan_bans(
        &self,
        jail: Option<&str>,
        ip: Option<&str>,
        since: Option<i64>,
        mut f: impl FnMut(JailBan),
    ) -> Result<()> {
        let g = self.lock();
        let mut sql =
            String::from("SELECT jail, ip, timeofban, bantime, bancount, data FROM bans WHERE 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(j) = jail {
            sql.push_str(" AND jail = ?");
            args.push(SqlValue::Text(j.to_owned()));
        }
        if let Some(s) = since {
            sql.push_str(" AND timeofban > ?");
            args.push(SqlValue::Integer(s));
        }
        if let Some(ip) = ip {
            sql.push_str(" AND ip = ?");
            args.push(SqlValue::Text(ip.to_owned()));
        }
        sql.push_str(" ORDER BY ip, timeofban DESC");
        let mut stmt = g.conn.prepare(&sql).map_err(self.err("read bans"))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(self.err("read bans"))?;
        while let Some(row) = rows.next().map_err(self.err("read bans"))? {
            let get = |i| row.get_ref(i).map_err(self.err("read bans"));
            let Some(timeofban) = lenient_i64(get(2)?) else {
                continue;
            };
            f(JailBan {
                jail: text(get(0)?).unwrap_or_default(),
                ban: BanRecord {
                    ip: text(get(1)?).unwrap_or_default(),
                    timeofban,
                    bantime: lenient_i64(get(3)?).unwrap_or(-2),
                    bancount: lenient_i64(get(4)?).unwrap_or(1),
                    data: json::decode(get(5)?),
                },
            });
        }
        Ok(())
    }

    /// All history bans of each ip merged into one ticket (fail2ban's
    /// `getBansMerged`); with `ip` given at most one element.
    pub fn bans_merged(
        &self,
        ip: Option<&str>,
        jail: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<MergedBan>> {
        let max = self.max_matches();
        let mut out: Vec<MergedBan> = Vec::new();
        let mut cur: Option<MergedBan> = None;
        self.scan_bans(jail, ip, since, |jb| {
            let JailBan { ban, .. } = jb;
            if cur.as_ref().is_some_and(|c| c.ip != ban.ip) {
                out.extend(cur.take());
            }
            let m = cur.get_or_insert_with(|| MergedBan {
                ip: ban.ip.clone(),
                timeofban: ban.timeofban,
                failures: 0,
                matches: Vec::new(),
                data: BanData::new(),
            });
            // Rows come newest first: older matches are put in front.
            let older: &[Value] = match ban.data.get("matches") {
                Some(Value::Array(a)) => a,
                _ => &[],
            };
            let room = max.saturating_sub(m.matches.len());
            if room > 0 {
                let take = &older[older.len().saturating_sub(room)..];
                let mut merged = take.to_vec();
                merged.append(&mut m.matches);
                m.matches = merged;
            }
            m.failures += ban.data.get("failures").and_then(value_as_i64).unwrap_or(1);
            for (k, v) in ban.data {
                m.data.insert(k, v);
            }
            m.data.insert("failures", Value::from(m.failures));
            m.data.insert("matches", Value::Array(m.matches.clone()));
            m.timeofban = ban.timeofban;
        })?;
        out.extend(cur);
        Ok(out)
    }

    /// Deletes history older than `dbpurgeage`, outdated `bips` rows
    /// (`timeofban + 3*bantime` older than the purge age; permanent bans are
    /// kept) and disabled jails left without bans; then returns freed pages
    /// to the file system (incremental vacuum). fail2ban runs this hourly.
    pub fn purge(&self, now: i64) -> Result<PurgeStats> {
        let age = self.purge_age();
        let limit = now - age;
        let stats = self.write("purge", |c, _| {
            let bans = c.execute("DELETE FROM bans WHERE timeofban < ?1", [limit])?;
            let bips = c.execute(
                "DELETE FROM bips WHERE timeofban < ?1 AND bantime != -1 AND (timeofban + (bantime * ?2)) < ?1",
                [limit, OUTDATED_FACTOR],
            )?;
            let jails = c.execute(
                "DELETE FROM jails WHERE enabled = 0 \
                 AND NOT EXISTS(SELECT * FROM bans WHERE jail = jails.name) \
                 AND NOT EXISTS(SELECT * FROM bips WHERE jail = jails.name)",
                [],
            )?;
            Ok(PurgeStats { bans, bips, jails })
        })?;
        let g = self.lock();
        // Each step of this pragma frees one page: step it to the end
        // (`execute_batch` would step only once).
        let mut stmt = g
            .conn
            .prepare("PRAGMA incremental_vacuum")
            .map_err(self.err("incremental vacuum"))?;
        let mut rows = stmt.query([]).map_err(self.err("incremental vacuum"))?;
        while rows
            .next()
            .map_err(self.err("incremental vacuum"))?
            .is_some()
        {}
        Ok(stats)
    }

    /// fail2ban's `addLog`: registers a log file of a jail and tells where to
    /// resume. Returns the stored position, or `None` if the file is new or
    /// its first line changed (`md5` differs: rotated). A new entry is
    /// written if none had a hash yet and `pos` or `md5` is given.
    pub fn add_log(
        &self,
        jail: &str,
        path: &str,
        pos: u64,
        md5: Option<&str>,
    ) -> Result<Option<u64>> {
        self.write("add log", |c, _| {
            ensure_jail(c, jail)?;
            let (found_md5, last) = match read_log(c, jail, path)? {
                Some((md5, v)) => (md5, v.1.map(|p| p.max(0) as u64)),
                None => (None, None),
            };
            if found_md5.is_none() && (pos != 0 || md5.is_some()) {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?1, ?2, ?3, ?4)",
                )?
                .execute(params![jail, path, md5, i64::try_from(pos).unwrap_or(i64::MAX)])?;
            }
            Ok(match md5 {
                Some(m) if found_md5.as_deref() != Some(m) => None,
                _ => last,
            })
        })
    }

    /// The stored position of a log file, if any.
    pub fn log_position(&self, jail: &str, path: &str) -> Result<Option<LogPosition>> {
        let g = self.lock();
        let row = read_log(&g.conn, jail, path).map_err(self.err("read log position"))?;
        Ok(row.map(|(firstlinemd5, v)| LogPosition {
            firstlinemd5,
            lastfilepos: v.1.map(|p| p.max(0) as u64).unwrap_or(0),
        }))
    }

    /// Stores the position of a log file (fail2ban's `updateLog`).
    pub fn set_log_position(&self, jail: &str, path: &str, pos: &LogPosition) -> Result<()> {
        let op = Op::LogPosition(jail.to_owned(), path.to_owned(), pos.clone());
        self.write("store log position", |c, max| apply_op(c, &op, max))
    }

    /// Log paths recorded (for one jail or all), sorted; the journal rows are included.
    pub fn log_paths(&self, jail: Option<&str>) -> Result<Vec<String>> {
        let g = self.lock();
        let mut stmt = g
            .conn
            .prepare("SELECT DISTINCT path FROM logs WHERE (?1 IS NULL OR jail = ?1) AND path IS NOT NULL ORDER BY path")
            .map_err(self.err("list logs"))?;
        let rows = stmt
            .query_map([jail], |r| r.get::<_, String>(0))
            .map_err(self.err("list logs"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list logs"))
    }

    /// The journal position of a jail: fail2ban's time position, plus f2b's
    /// exact cursor when it is still current (see [`JOURNAL_CURSOR_PATH`]).
    pub fn journal_position(&self, jail: &str) -> Result<Option<JournalPosition>> {
        let g = self.lock();
        let main =
            read_log(&g.conn, jail, JOURNAL_PATH).map_err(self.err("read journal position"))?;
        let Some((iso, time)) = main else {
            return Ok(None);
        };
        let Some(time) = time.0 else {
            return Ok(None);
        };
        let companion = read_log(&g.conn, jail, JOURNAL_CURSOR_PATH)
            .map_err(self.err("read journal position"))?;
        let cursor = match companion {
            Some((Some(cursor), t)) if t.0 == Some(time) => Some(cursor),
            _ => None,
        };
        Ok(Some(JournalPosition { time, iso, cursor }))
    }

    /// Stores the journal position of a jail: the time row fail2ban reads and,
    /// if given, the exact cursor in f2b's companion row (one transaction).
    pub fn set_journal_position(&self, jail: &str, pos: &JournalPosition) -> Result<()> {
        self.write("store journal position", |c, _| write_journal(c, jail, pos))
    }

    /// Runs `PRAGMA integrity_check`; `["ok"]` when the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let g = self.lock();
        let mut stmt = g
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(self.err("integrity check"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err("integrity check"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("integrity check"))
    }

    /// Rewrites the whole file (`VACUUM`) and switches it to incremental
    /// auto-vacuum, so later purges give space back. Takes time and twice the
    /// space on large databases: an explicit maintenance operation.
    pub fn vacuum(&self) -> Result<()> {
        let g = self.lock();
        g.conn
            .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            .map_err(self.err("vacuum"))
    }

    /// `PRAGMA auto_vacuum`: 0 none, 1 full, 2 incremental.
    pub fn auto_vacuum(&self) -> Result<i64> {
        let g = self.lock();
        g.conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .map_err(self.err("read auto_vacuum"))
    }

    /// Number of rows in `bips` (distinct ip/jail pairs ever banned and not purged).
    pub fn bips_count(&self) -> Result<u64> {
        let g = self.lock();
        g.conn
            .query_row("SELECT count(*) FROM bips", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(self.err("count bips"))
    }

    /// Checkpoints the WAL into the main file (so the `.sqlite3` file alone
    /// is complete for tools that copy it) and closes the connection.
    pub fn close(self) -> Result<()> {
        let db = self.db.clone();
        drop(self.ckpt);
        let inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        let sql = |op| {
            let db = db.clone();
            move |source| StoreError::Sql { db, op, source }
        };
        inner
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(sql("checkpoint"))?;
        inner
            .conn
            .close()
            .map_err(|(_, source)| sql("close")(source))
    }

    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> Result<T>,
    ) -> Result<T> {
        let mut g = self.lock();
        let out = f(&mut g.conn, &self.db);
        drop(g);
        if let Some(c) = &self.ckpt {
            c.committed();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `sqlite3_db_status` counter of the store's connection.
    fn db_status(s: &Store, what: i32) -> i32 {
        let g = s.lock();
        let (mut cur, mut high) = (0, 0);
        // SAFETY: the handle is the live connection's, used under the store's lock.
        unsafe {
            rusqlite::ffi::sqlite3_db_status(g.conn.handle(), what, &mut cur, &mut high, 1);
        }
        cur
    }

    /// A new database file in a temporary directory (kept alive with the store).
    fn new_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(
            dir.path().join("f2b.sqlite3"),
            &OpenOptions::new(1_700_000_000),
        )
        .expect("open");
        (dir, s)
    }

    /// Bytes of page cache the connection holds (`SQLITE_DBSTATUS_CACHE_USED`).
    fn cache_used(s: &Store) -> i32 {
        db_status(s, rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED)
    }

    /// A burst's batches of bans commit from a warm page cache: no page is read
    /// again and none is spilled into the WAL mid-transaction, also after the
    /// checkpointer's connection ran. (What the bench measures from outside:
    /// `strace -c` of the reader during the 100k-line burst, ~1,200 WAL writes and no
    /// WAL reads; the server-only case of df4b4c1, 7,500 reads and 4,900 writes, is
    /// not reproduced here.)
    #[test]
    fn a_new_database_takes_bursts_without_cache_spill() {
        let (_dir, s) = new_store();
        // Enough single commits for the checkpointer to run once (its connection is the
        // other party of the WAL), then the burst.
        for i in 0..300 {
            let ip = format!("10.9.{}.{}", i / 250, i % 250);
            s.add_ban("lat", &BanRecord::new(ip, 1_700_000_000, 600, 1))
                .expect("add");
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        db_status(&s, rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS);
        for b in 0..20 {
            let mut batch = WriteBatch::new();
            for i in 0..80 {
                let n = b * 80 + i;
                let rec = BanRecord::new(
                    format!("172.16.{}.{}", n / 250, n % 250),
                    1_700_000_000,
                    600,
                    1,
                )
                .with_matches(["a failure line of some length from 172.16.x.y"; 5]);
                batch.add_ban("burst", rec);
            }
            s.apply(&batch).expect("apply");
        }
        let miss = db_status(&s, rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS);
        let spill = db_status(&s, rusqlite::ffi::SQLITE_DBSTATUS_CACHE_SPILL);
        assert_eq!((miss, spill), (0, 0));
    }

    #[test]
    fn release_memory_empties_the_page_cache_and_the_store_goes_on() {
        let (_dir, s) = new_store();
        for i in 0..2000 {
            let ip = format!("10.0.{}.{}", i / 256, i % 256);
            let rec = BanRecord::new(ip, 1_700_000_000, 600, 1)
                .with_matches(["a failure line of some length"; 5]);
            s.add_ban("sshd", &rec).expect("add");
        }
        let before = cache_used(&s);
        assert!(before > 500_000, "{before}");
        s.release_memory();
        let after = cache_used(&s);
        assert!(after < before / 10, "{before} -> {after}");
        let n = s
            .current_bans(&CurrentBansQuery::jail("sshd", 1_700_000_001))
            .expect("read after release");
        assert_eq!(n.len(), 2000);
    }
}
