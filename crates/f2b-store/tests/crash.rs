//! Crash safety: a child process writes bans (single, batched with a log
//! position, removals, purges) and acknowledges each write on stdout only
//! after the store call returned; it is SIGKILLed at random moments. After
//! every kill the database must reopen, pass `PRAGMA integrity_check`, hold
//! every acknowledged ban, miss every acknowledged removal, and hold a log
//! position whose batch is complete (atomicity).
//!
//! The seed is printed; rerun with `F2B_STORE_CRASH_SEED=<n>`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use f2b_store::{BanRecord, CurrentBansQuery, LogPosition, OpenOptions, Store, WriteBatch};

const NOW: i64 = 1_700_000_000;
const ENV_DB: &str = "F2B_STORE_CRASH_DB";
const ENV_START: &str = "F2B_STORE_CRASH_START";
const CYCLES: usize = 80;

fn ip_of(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn jail_of(i: u64) -> String {
    format!("j{}", i % 3)
}

/// The child side. Ignored in normal runs; `crash_safety` runs it with the
/// environment set.
#[test]
#[ignore = "child process of crash_safety"]
fn crash_child() {
    let (Ok(db), Ok(start)) = (std::env::var(ENV_DB), std::env::var(ENV_START)) else {
        panic!("crash_child is only meant to be run by crash_safety ({ENV_DB} unset)");
    };
    let start: u64 = start.parse().expect("start index");
    let store = Store::open(Path::new(&db), &OpenOptions::new(NOW)).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut i = start;
    loop {
        let jail = jail_of(i);
        if i % 7 == 0 {
            // A batch: five bans and the log position that "produced" them.
            let mut b = WriteBatch::new();
            for k in 0..5 {
                b.add_ban(
                    &jail,
                    BanRecord::new(ip_of(i + k), NOW, 600, 1)
                        .with_matches([format!("line {}", i + k)])
                        .with_failures(3),
                );
            }
            b.set_log_position(
                &jail,
                "/var/log/auth.log",
                LogPosition {
                    firstlinemd5: Some("md5".into()),
                    lastfilepos: i,
                },
            );
            store.apply(&b).expect("apply");
            writeln!(out, "W {jail} {i}").expect("stdout");
            i += 5;
        } else if i % 11 == 0 && i > start {
            let victim = i - 1;
            store
                .remove_ban(&jail_of(victim), &ip_of(victim))
                .expect("remove");
            writeln!(out, "R {} {victim}", jail_of(victim)).expect("stdout");
            i += 1;
        } else {
            let ban = BanRecord::new(ip_of(i), NOW, if i % 5 == 0 { -1 } else { 600 }, 1)
                .with_matches(["a", "b"])
                .with_failures(2);
            store.add_ban(&jail, &ban).expect("add");
            writeln!(out, "B {jail} {i}").expect("stdout");
            i += 1;
        }
        if i % 97 == 0 {
            store.purge(NOW).expect("purge");
        }
        out.flush().expect("flush");
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default)]
struct Expected {
    present: BTreeSet<(String, String)>,
    removed: BTreeSet<(String, String)>,
    /// jail -> highest acknowledged batch position.
    pos: BTreeMap<String, u64>,
}

#[test]
fn crash_safety() {
    let seed = std::env::var("F2B_STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("crash_safety seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.sqlite3");
    let exe = std::env::current_exe().expect("current exe");
    let mut exp = Expected::default();
    let mut next_start: u64 = 1;
    let mut acked_total = 0usize;
    let began = Instant::now();
    let mut verify_time = Duration::ZERO;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DB, &db)
            .env(ENV_START, next_start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(5 + rng.next() % 60));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        let mut text = String::new();
        if let Some(mut so) = child.stdout.take() {
            so.read_to_string(&mut text).expect("child stdout");
        }
        // Only complete lines are acknowledgements.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        let mut last_single: Option<u64> = None;
        for line in complete.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (kind, jail, i) = match f.as_slice() {
                [k @ ("B" | "R" | "W"), jail, i] => match i.parse::<u64>() {
                    Ok(i) => (*k, jail.to_string(), i),
                    Err(_) => continue,
                },
                _ => continue,
            };
            last_single = None;
            match kind {
                "B" => {
                    exp.present.insert((jail, ip_of(i)));
                    last_single = Some(i);
                }
                "R" => {
                    let k = (jail, ip_of(i));
                    exp.present.remove(&k);
                    exp.removed.insert(k);
                }
                _ => {
                    for k in 0..5 {
                        exp.present.insert((jail.clone(), ip_of(i + k)));
                    }
                    let e = exp.pos.entry(jail).or_default();
                    *e = (*e).max(i);
                }
            }
            acked_total += 1;
        }
        // The one operation after the last acknowledgement may have committed
        // unacknowledged; if it is the removal of the last single ban, that
        // ban may legitimately be gone.
        if let Some(i) = last_single.filter(|i| (i + 1) % 11 == 0) {
            exp.present.remove(&(jail_of(i), ip_of(i)));
        }
        let v0 = Instant::now();
        verify(&db, &exp, cycle, seed);
        verify_time += v0.elapsed();
        // Leave a gap so writes committed but not acknowledged never collide.
        next_start += 100_000;
    }
    let elapsed = began.elapsed();
    println!(
        "crash_safety: {CYCLES} kills, {acked_total} acknowledged writes, {:?} ({:?} verifying)",
        elapsed, verify_time
    );
    assert!(
        acked_total > CYCLES,
        "children acknowledged too few writes ({acked_total}) to test anything"
    );
}

fn verify(db: &Path, exp: &Expected, cycle: usize, seed: u64) {
    let ctx = format!("cycle {cycle}, seed {seed}");
    if !db.exists() {
        assert!(exp.present.is_empty(), "{ctx}: db missing");
        return;
    }
    let s =
        Store::open(db, &OpenOptions::new(NOW)).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    assert_eq!(s.integrity_check().expect("integrity"), vec!["ok"], "{ctx}");
    // Every row the store restores, read cheaply (the full restore path is
    // exercised on the last cycle).
    let by_jail: BTreeSet<(String, String)> = if cycle + 1 == CYCLES {
        let mut set = BTreeSet::new();
        for j in ["j0", "j1", "j2"] {
            for b in s
                .current_bans(&CurrentBansQuery::jail(j, NOW))
                .expect("current jail")
            {
                set.insert((b.jail, b.ban.ip));
            }
        }
        set
    } else {
        let c = rusqlite::Connection::open(db).expect("raw open");
        let mut st = c.prepare("SELECT jail, ip FROM bips").expect("prepare");
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    for k in &exp.present {
        assert!(
            by_jail.contains(k),
            "{ctx}: acknowledged ban {k:?} lost; history rows: {:?}; all: {:?}",
            s.bans(None, Some(&k.1), None).expect("bans"),
            s.current_bans(&CurrentBansQuery {
                ip: Some(&k.1),
                ..CurrentBansQuery::at(NOW)
            })
        );
    }
    for k in &exp.removed {
        assert!(
            !by_jail.contains(k),
            "{ctx}: acknowledged removal {k:?} undone"
        );
    }
    for (jail, acked) in &exp.pos {
        let p = s
            .log_position(jail, "/var/log/auth.log")
            .expect("pos")
            .unwrap_or_else(|| panic!("{ctx}: position of {jail} lost"));
        assert!(p.lastfilepos >= *acked, "{ctx}: position went back");
        // Atomicity: the batch that wrote this position is complete.
        for k in 0..5 {
            let key = (jail.clone(), ip_of(p.lastfilepos + k));
            assert!(
                by_jail.contains(&key) || exp.removed.contains(&key),
                "{ctx}: batch {} half-applied",
                p.lastfilepos
            );
        }
    }
    s.close().expect("close");
}
