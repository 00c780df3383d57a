//! The WAL checkpointer: a background thread with its own connection.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the
//! threshold (1,000 pages), on the committing thread, and fsyncs the WAL and
//! the database file. In f2b that thread is the one that then bans, so every
//! few hundred bans one ban waited for two fsyncs (~5 ms on a VM disk, the p99
//! of the ban latency). With WAL and `synchronous=NORMAL` a commit itself
//! never fsyncs, so moving the checkpoint to this thread takes every disk
//! flush off the path from log line to ban. A PASSIVE checkpoint never blocks
//! writers; they keep appending to the WAL while it copies.
//!
//! Policy: checkpoint after [`BATCH`] commits, or at most [`IDLE`] after the
//! first pending one. The store's own `close` truncates the WAL.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Commits after which the checkpointer wakes at once.
const BATCH: u64 = 256;
/// How long pending commits may wait for a checkpoint when writes stop.
const IDLE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    pending: u64,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Owns the checkpointer thread; dropping it stops the thread (after a last
/// checkpoint of what is pending) and waits for it.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to `path` and starts the thread. `None` if
    /// the connection or the thread cannot be had; the caller then keeps
    /// SQLite's automatic checkpoint.
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> Option<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.busy_timeout(busy_timeout).ok()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("f2b-db-ckpt".into())
            .stack_size(256 * 1024)
            .spawn(move || run(conn, &s2))
            .ok()?;
        Some(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Records one commit (cheap: a mutex and, every [`BATCH`], a wake-up).
    pub(crate) fn committed(&self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pending += 1;
        if st.pending == 1 || st.pending >= BATCH {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: Connection, shared: &Shared) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.stop {
            return;
        }
        if st.pending == 0 {
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if st.pending < BATCH {
            // Some commits are pending: checkpoint when BATCH are, or IDLE from now.
            let (g, timeout) = shared
                .wake
                .wait_timeout(st, IDLE)
                .unwrap_or_else(|e| e.into_inner());
            st = g;
            if st.stop {
                return;
            }
            if !timeout.timed_out() && st.pending < BATCH {
                continue;
            }
        }
        st.pending = 0;
        drop(st);
        // Errors (busy, I/O) leave the WAL to the next round or to close.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_len(p: &Path) -> u64 {
        let mut w = p.as_os_str().to_owned();
        w.push("-wal");
        std::fs::metadata(w).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn commits_are_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.sqlite3");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x);")
            .unwrap();
        let ck = Checkpointer::start(&p, Duration::from_secs(5)).unwrap();
        for i in 0..BATCH {
            c.execute("INSERT INTO t VALUES(zeroblob(4000 + ?1))", [i as i64])
                .unwrap();
            ck.committed();
        }
        // The checkpointer copies the WAL into the database file: the main
        // file grows beyond its initial two pages without any commit of ours
        // running a checkpoint (wal_autocheckpoint=0).
        let main_len = || std::fs::metadata(&p).unwrap().len();
        let start = std::time::Instant::now();
        while main_len() <= 100_000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(main_len() > 100_000, "database file never checkpointed");
        assert!(wal_len(&p) > 0);
        drop(ck);
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, BATCH as i64);
    }

    #[test]
    fn idle_commits_are_checkpointed_after_the_quiet_period() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.sqlite3");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x);")
            .unwrap();
        let before = std::fs::metadata(&p).unwrap().len();
        let ck = Checkpointer::start(&p, Duration::from_secs(5)).unwrap();
        c.execute("INSERT INTO t VALUES(1)", []).unwrap();
        ck.committed();
        let start = std::time::Instant::now();
        while std::fs::metadata(&p).unwrap().len() == before && start.elapsed() < IDLE * 5 {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(std::fs::metadata(&p).unwrap().len() > before);
        drop(ck);
    }
}
