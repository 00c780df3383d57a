//! Behaviour of the store against fail2ban's documented semantics.

use f2b_store::serde_json::{json, Value};
use f2b_store::{
    BanHistory, BanRecord, CurrentBansQuery, DbFile, HistoryScope, JournalPosition, LogPosition,
    OpenOptions, Store, StoreError, WriteBatch, SCHEMA_VERSION,
};

const T0: i64 = 1_700_000_000;

fn mem() -> Store {
    Store::open_in_memory(&OpenOptions::new(T0)).expect("open :memory:")
}

fn ips(bans: &[f2b_store::JailBan]) -> Vec<&str> {
    bans.iter().map(|b| b.ban.ip.as_str()).collect()
}

#[test]
fn dbfile_values() {
    assert_eq!(DbFile::parse("None"), DbFile::Disabled);
    assert_eq!(DbFile::parse("none"), DbFile::Disabled);
    assert_eq!(DbFile::parse(":memory:"), DbFile::Memory);
    assert_eq!(
        DbFile::parse("/var/lib/fail2ban/fail2ban.sqlite3"),
        DbFile::Path("/var/lib/fail2ban/fail2ban.sqlite3".into())
    );
    let opts = OpenOptions::new(T0);
    assert!(Store::open_db_file(&DbFile::Disabled, &opts)
        .expect("none")
        .is_none());
    let s = Store::open_db_file(&DbFile::Memory, &opts)
        .expect("memory")
        .expect("some");
    assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(s.path().is_none());
}

#[test]
fn file_db_uses_wal_and_incremental_vacuum_and_creates_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/f2b.sqlite3");
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("open");
    assert_eq!(s.journal_mode(), "wal");
    assert_eq!(s.auto_vacuum().expect("auto_vacuum"), 2);
    assert_eq!(s.integrity_check().expect("check"), vec!["ok".to_string()]);
    s.close().expect("close");
    // Reopen: same schema version, nothing recreated.
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("reopen");
    assert_eq!(s.schema_version().expect("version"), 4);
}

#[test]
fn add_ban_caps_matches_and_restores_exactly() {
    let s = mem();
    s.set_max_matches(2);
    let ban = BanRecord::new("192.0.2.1", T0, 600, 3)
        .with_matches(["l1", "l2", "l3"])
        .with_failures(5)
        .with_field("F-USER", "root");
    s.add_ban("sshd", &ban).expect("add");
    let got = s
        .current_bans(&CurrentBansQuery::jail("sshd", T0 + 1))
        .expect("current");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].jail, "sshd");
    let b = &got[0].ban;
    assert_eq!(
        (b.ip.as_str(), b.timeofban, b.bantime, b.bancount),
        ("192.0.2.1", T0, 600, 3)
    );
    assert_eq!(b.matches(), vec!["l2", "l3"]);
    assert_eq!(b.failures(), Some(5));
    assert_eq!(b.data.get("F-USER"), Some(&json!("root")));
    // dbmaxmatches = 0 stores no matches at all.
    s.set_max_matches(0);
    s.add_ban("sshd", &ban.clone().with_field("ip", "x"))
        .expect("add");
    let hist = s.bans(Some("sshd"), Some("192.0.2.1"), None).expect("bans");
    assert_eq!(hist.len(), 2);
    assert!(hist.iter().any(|h| !h.ban.data.contains_key("matches")));
}

#[test]
fn current_bans_expiry_permanent_and_newest_per_ip() {
    let s = mem();
    s.add_ban("a", &BanRecord::new("10.0.0.1", T0, 100, 1))
        .expect("add");
    s.add_ban("a", &BanRecord::new("10.0.0.2", T0, -1, 1))
        .expect("add");
    s.add_ban("b", &BanRecord::new("10.0.0.1", T0 + 50, 1000, 2))
        .expect("add");
    s.add_ban("b", &BanRecord::new("10.0.0.3", T0 - 10_000, 100, 1))
        .expect("add");
    // Jail a at T0+100: 10.0.0.1 ended exactly now (timeofban+bantime <= now).
    let a = s
        .current_bans(&CurrentBansQuery::jail("a", T0 + 100))
        .expect("a");
    assert_eq!(ips(&a), vec!["10.0.0.2"]);
    // All jails: newest row per ip, ordered by ip.
    let all = s.current_bans(&CurrentBansQuery::at(T0 + 60)).expect("all");
    assert_eq!(ips(&all), vec!["10.0.0.1", "10.0.0.2"]);
    assert_eq!(all[0].jail, "b");
    assert_eq!(all[0].ban.timeofban, T0 + 50);
    assert_eq!(all[0].ban.bancount, 2);
    // One ip.
    let one = s
        .current_bans(&CurrentBansQuery {
            ip: Some("10.0.0.1"),
            ..CurrentBansQuery::at(T0 + 60)
        })
        .expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].ban.timeofban, T0 + 50);
    // An ip without an active ban gives nothing (not a row of NULLs).
    let none = s
        .current_bans(&CurrentBansQuery {
            ip: Some("10.0.0.3"),
            ..CurrentBansQuery::at(T0)
        })
        .expect("none");
    assert!(none.is_empty());
}

#[test]
fn current_bans_corrections_like_fail2ban() {
    let s = mem();
    s.add_ban("j", &BanRecord::new("10.0.0.1", T0, -1, 1))
        .expect("add");
    s.add_ban("j", &BanRecord::new("10.0.0.2", T0, 5000, 1))
        .expect("add");
    s.add_ban("j", &BanRecord::new("10.0.0.3", T0 - 500, 300, 1))
        .expect("add");
    // max_bantime shortens permanent and longer bans; those that thereby ended drop out.
    let q = CurrentBansQuery {
        max_bantime: Some(1000),
        ..CurrentBansQuery::jail("j", T0 + 999)
    };
    let mut got = s.current_bans(&q).expect("q");
    got.sort_by(|a, b| a.ban.ip.cmp(&b.ban.ip));
    assert_eq!(ips(&got), vec!["10.0.0.1", "10.0.0.2"]);
    assert!(got.iter().all(|b| b.ban.bantime == 1000));
    let later = s
        .current_bans(&CurrentBansQuery {
            now: T0 + 1000,
            ..q
        })
        .expect("later");
    assert!(later.is_empty());
    // Some(-1) means no correction.
    let q = CurrentBansQuery {
        max_bantime: Some(-1),
        ..CurrentBansQuery::jail("j", T0 + 2000)
    };
    let mut got = s.current_bans(&q).expect("q");
    got.sort_by(|a, b| a.ban.ip.cmp(&b.ban.ip));
    assert_eq!(got[0].ban.bantime, -1);
    assert_eq!(got[1].ban.bantime, 5000);
    // forbantime: only bans newer than now - forbantime.
    let q = CurrentBansQuery {
        forbantime: Some(100),
        ..CurrentBansQuery::jail("j", T0 + 150)
    };
    assert!(s.current_bans(&q).expect("q").is_empty());
    let q = CurrentBansQuery {
        forbantime: Some(200),
        ..CurrentBansQuery::jail("j", T0 + 150)
    };
    assert_eq!(s.current_bans(&q).expect("q").len(), 2);
}

#[test]
fn ban_history_scopes() {
    let s = mem();
    s.add_ban("a", &BanRecord::new("10.0.0.1", T0, 600, 1))
        .expect("add");
    s.add_ban("a", &BanRecord::new("10.0.0.1", T0 + 1000, 1200, 2))
        .expect("add");
    s.add_ban("b", &BanRecord::new("10.0.0.1", T0 + 500, 300, 3))
        .expect("add");
    let a = s
        .ban_history("10.0.0.1", HistoryScope::Jail("a"), None)
        .expect("a");
    assert_eq!(
        a,
        Some(BanHistory {
            bancount: 2,
            last_timeofban: T0 + 1000,
            last_bantime: 1200
        })
    );
    let overall = s
        .ban_history("10.0.0.1", HistoryScope::Overall, None)
        .expect("overall");
    assert_eq!(
        overall,
        Some(BanHistory {
            bancount: 5,
            last_timeofban: T0 + 1000,
            last_bantime: 1200
        })
    );
    let newest = s
        .ban_history("10.0.0.1", HistoryScope::NewestAnyJail, Some(T0 + 600))
        .expect("newest");
    assert_eq!(newest.map(|h| h.bancount), Some(2));
    let none = s
        .ban_history("10.0.0.1", HistoryScope::Overall, Some(T0 + 1000))
        .expect("since");
    assert_eq!(none, None);
    assert_eq!(
        s.ban_history("10.9.9.9", HistoryScope::Jail("a"), None)
            .expect("unknown"),
        None
    );
    // Unban forgets the history (fail2ban's delBan).
    assert_eq!(s.remove_ban("a", "10.0.0.1").expect("remove"), 2);
    assert_eq!(
        s.ban_history("10.0.0.1", HistoryScope::Jail("a"), None)
            .expect("a"),
        None
    );
    assert!(s
        .ban_history("10.0.0.1", HistoryScope::Jail("b"), None)
        .expect("b")
        .is_some());
}

#[test]
fn bans_merged_accumulates_matches_and_failures() {
    let s = mem();
    s.set_max_matches(3);
    s.add_ban(
        "a",
        &BanRecord::new("10.0.0.1", T0, 600, 1)
            .with_matches(["o1", "o2"])
            .with_failures(2)
            .with_field("F-X", "old"),
    )
    .expect("add");
    s.add_ban(
        "b",
        &BanRecord::new("10.0.0.1", T0 + 10, 600, 1)
            .with_matches(["n1", "n2"])
            .with_failures(4)
            .with_field("F-X", "new"),
    )
    .expect("add");
    s.add_ban("a", &BanRecord::new("10.0.0.2", T0, 600, 1))
        .expect("add");
    let all = s.bans_merged(None, None, None).expect("merged");
    assert_eq!(all.len(), 2);
    let m = &all[0];
    assert_eq!(m.ip, "10.0.0.1");
    assert_eq!(m.timeofban, T0);
    assert_eq!(m.failures, 6);
    assert_eq!(m.matches, vec![json!("o2"), json!("n1"), json!("n2")]);
    assert_eq!(m.data.get("F-X"), Some(&json!("old")));
    assert_eq!(m.data.get("failures"), Some(&json!(6)));
    // A ban without `failures` counts as one.
    assert_eq!(all[1].failures, 1);
    let jail_b = s.bans_merged(Some("10.0.0.1"), Some("b"), None).expect("b");
    assert_eq!(jail_b.len(), 1);
    assert_eq!(jail_b[0].failures, 4);
}

#[test]
fn purge_follows_fail2ban() {
    let s = mem();
    s.set_purge_age(1000);
    s.add_ban("a", &BanRecord::new("old", T0 - 5000, 100, 1))
        .expect("add");
    s.add_ban("a", &BanRecord::new("longban", T0 - 5000, 2000, 1))
        .expect("add");
    s.add_ban("a", &BanRecord::new("perm", T0 - 5000, -1, 1))
        .expect("add");
    s.add_ban("a", &BanRecord::new("new", T0, 100, 1))
        .expect("add");
    s.add_jail("gone").expect("jail");
    s.del_jail("gone").expect("del");
    let st = s.purge(T0).expect("purge");
    assert_eq!(st.bans, 3);
    assert_eq!(st.bips, 1); // old: -5000+300 < -1000; longban: -5000+6000 > -1000 kept
    assert_eq!(st.jails, 1);
    let left: Vec<String> = s
        .current_bans(&CurrentBansQuery::jail("a", T0 - 4999))
        .expect("q")
        .into_iter()
        .map(|b| b.ban.ip)
        .collect();
    assert!(left.contains(&"perm".to_string()) && left.contains(&"longban".to_string()));
    assert_eq!(s.bans(None, None, None).expect("bans").len(), 1);
    assert_eq!(s.jail_names(None).expect("jails"), vec!["a"]);
}

#[test]
fn jails_enable_disable() {
    let s = mem();
    s.add_jail("a").expect("a");
    s.add_jail("b").expect("b");
    s.del_all_jails().expect("all");
    s.add_jail("b").expect("b again");
    assert_eq!(s.jail_names(Some(true)).expect("on"), vec!["b"]);
    assert_eq!(s.jail_names(Some(false)).expect("off"), vec!["a"]);
}

#[test]
fn add_log_semantics() {
    let s = mem();
    // New file, no hash yet, pos 0: nothing stored, nothing returned.
    assert_eq!(s.add_log("j", "/var/log/x", 0, None).expect("add"), None);
    assert_eq!(s.log_position("j", "/var/log/x").expect("pos"), None);
    assert_eq!(
        s.add_log("j", "/var/log/x", 0, Some("md5a")).expect("add"),
        None
    );
    s.set_log_position(
        "j",
        "/var/log/x",
        &LogPosition {
            firstlinemd5: Some("md5a".into()),
            lastfilepos: 4242,
        },
    )
    .expect("set");
    // Same first line: resume at the stored position.
    assert_eq!(
        s.add_log("j", "/var/log/x", 0, Some("md5a")).expect("add"),
        Some(4242)
    );
    // Rotated (other first line): start over.
    assert_eq!(
        s.add_log("j", "/var/log/x", 0, Some("md5b")).expect("add"),
        None
    );
    assert_eq!(s.log_paths(Some("j")).expect("paths"), vec!["/var/log/x"]);
}

#[test]
fn journal_cursor_and_stale_detection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.sqlite3");
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("open");
    assert_eq!(s.journal_position("sshd").expect("none"), None);
    let pos = JournalPosition {
        time: 1_700_000_123.456789,
        iso: Some("2023-11-14T22:15:23.456789".into()),
        cursor: Some("s=abc;i=1f;b=def;m=12;t=5f;x=99".into()),
    };
    s.set_journal_position("sshd", &pos).expect("set");
    assert_eq!(s.journal_position("sshd").expect("get"), Some(pos.clone()));
    drop(s);
    // fail2ban moves its time row (as its updateJournal does): the cursor is stale.
    let c = rusqlite_free_update(&path);
    assert!(c);
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("reopen");
    let got = s.journal_position("sshd").expect("get").expect("some");
    assert_eq!(got.time, 1_700_000_200.5);
    assert_eq!(got.cursor, None);
    // Storing without a cursor removes the companion row.
    s.set_journal_position(
        "sshd",
        &JournalPosition {
            time: 5.0,
            iso: None,
            cursor: None,
        },
    )
    .expect("set");
    assert_eq!(s.log_paths(None).expect("paths"), vec!["systemd-journal"]);
}

/// Updates the journal time row through the sqlite3 CLI (another program).
fn rusqlite_free_update(path: &std::path::Path) -> bool {
    std::process::Command::new("sqlite3")
        .arg(path)
        .arg("UPDATE logs SET lastfilepos = 1700000200.5, firstlinemd5 = 'iso' WHERE path = 'systemd-journal'")
        .status()
        .expect("sqlite3 CLI missing: scripts/install-deps installs it")
        .success()
}

#[test]
fn write_batch_is_atomic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("b.sqlite3");
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("open");
    let mut ok = WriteBatch::new();
    ok.add_ban("j", BanRecord::new("10.0.0.1", T0, 600, 1))
        .set_log_position(
            "j",
            "/log",
            LogPosition {
                firstlinemd5: Some("h".into()),
                lastfilepos: 77,
            },
        );
    assert_eq!(ok.len(), 2);
    s.apply(&ok).expect("apply");
    assert_eq!(
        s.log_position("j", "/log")
            .expect("pos")
            .map(|p| p.lastfilepos),
        Some(77)
    );
    // Another program makes every update of `logs` fail: the last op of the
    // next batch fails, so its earlier ops must not be visible either.
    sqlite(
        &path,
        "CREATE TRIGGER block BEFORE UPDATE ON logs BEGIN SELECT RAISE(ABORT, 'blocked'); END;",
    );
    let mut bad = WriteBatch::new();
    bad.add_ban("j", BanRecord::new("10.0.0.2", T0, 600, 1))
        .remove_ban("j", "10.0.0.1")
        .set_log_position(
            "j",
            "/log",
            LogPosition {
                firstlinemd5: Some("h".into()),
                lastfilepos: 99,
            },
        );
    assert!(matches!(s.apply(&bad), Err(StoreError::Sql { .. })));
    let act = s.current_bans(&CurrentBansQuery::jail("j", T0)).expect("q");
    assert_eq!(ips(&act), vec!["10.0.0.1"]);
    assert_eq!(
        s.log_position("j", "/log")
            .expect("pos")
            .map(|p| p.lastfilepos),
        Some(77)
    );
    assert!(s.apply(&WriteBatch::new()).is_ok());
}

#[test]
fn refuses_future_and_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notadb");
    std::fs::write(&text, vec![b'x'; 4096]).expect("write");
    assert!(matches!(
        Store::open(&text, &OpenOptions::new(T0)),
        Err(StoreError::NotFail2banDb { .. })
    ));
    let future = dir.path().join("future.db");
    let s = Store::open(&future, &OpenOptions::new(T0)).expect("open");
    s.close().expect("close");
    sqlite(&future, "UPDATE fail2banDb SET version = 7");
    match Store::open(&future, &OpenOptions::new(T0)) {
        Err(StoreError::FutureVersion {
            found: 7,
            supported: 4,
            ..
        }) => {}
        other => panic!("expected FutureVersion, got {other:?}"),
    }
    sqlite(&future, "UPDATE fail2banDb SET version = 'x'");
    assert!(matches!(
        Store::open(&future, &OpenOptions::new(T0)),
        Err(StoreError::UnknownVersion { .. })
    ));
}

fn sqlite(path: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("sqlite3 CLI missing: scripts/install-deps installs it");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fail2ban_test_db(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new("/usr/lib/python3/dist-packages/fail2ban/tests/files").join(name);
    assert!(
        p.exists(),
        "{} missing: install Debian's fail2ban package (scripts/install-deps)",
        p.display()
    );
    p
}

#[test]
fn upgrades_fail2ban_v1_and_v2_with_backup() {
    for (name, jail) in [
        ("database_v1.db", "DummyJail #29162448 with 0 tickets"),
        ("database_v2.db", "pam-generic"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.sqlite3");
        std::fs::copy(fail2ban_test_db(name), &path).expect("copy");
        let s = Store::open(&path, &OpenOptions::new(T0)).expect("open old");
        assert_eq!(s.schema_version().expect("v"), 4, "{name}");
        assert_eq!(s.integrity_check().expect("check"), vec!["ok"]);
        let backup = dir.path().join("f.sqlite3.20231114-221320");
        assert!(backup.exists(), "{name}: backup copy missing");
        // Old bans get the unknown bantime -2, which restore maps to the
        // jail's bantime.
        let hist = s.bans(Some(jail), None, None).expect("bans");
        assert!(!hist.is_empty(), "{name}");
        assert!(hist
            .iter()
            .all(|b| b.ban.bantime == -2 && b.ban.bancount == 1));
        let newest = hist.iter().map(|b| b.ban.timeofban).max().unwrap_or(0);
        let q = CurrentBansQuery {
            unknown_bantime: Some(600),
            ..CurrentBansQuery::jail(jail, newest + 1)
        };
        let cur = s.current_bans(&q).expect("current");
        assert!(!cur.is_empty(), "{name}");
        assert!(cur.iter().all(|b| b.ban.bantime == 600));
        assert!(!s.log_paths(Some(jail)).expect("logs").is_empty());
        // The backup itself is untouched (still the old version).
        let v = sqlite(&backup, "SELECT version FROM fail2banDb");
        assert_ne!(v.trim(), "4");
    }
    let v2 = fail2ban_test_db("database_v2.db");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.sqlite3");
    std::fs::copy(&v2, &path).expect("copy");
    let s = Store::open(&path, &OpenOptions::new(T0)).expect("open");
    let b = s.bans(None, Some("1.2.3.7"), None).expect("b");
    assert_eq!(b[0].ban.failures(), Some(3));
    assert_eq!(b[0].ban.matches().len(), 3);
    assert_eq!(
        s.log_position("pam-generic", "/var/log/auth.log")
            .expect("pos"),
        Some(LogPosition {
            firstlinemd5: Some("6c187bc8cb287130973fd01e9a2433e7".into()),
            lastfilepos: 46771
        })
    );
}

#[test]
fn import_db_takes_over_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.sqlite3");
    let a = Store::open(&src, &OpenOptions::new(T0)).expect("src");
    a.add_ban(
        "sshd",
        &BanRecord::new("10.0.0.1", T0, 600, 2).with_failures(3),
    )
    .expect("add");
    a.add_ban("sshd", &BanRecord::new("10.0.0.2", T0 - 10, -1, 1))
        .expect("add");
    a.set_log_position(
        "sshd",
        "/var/log/auth.log",
        &LogPosition {
            firstlinemd5: Some("h".into()),
            lastfilepos: 99,
        },
    )
    .expect("pos");
    a.close().expect("close");
    let before = std::fs::read(&src).expect("read");
    let dst = Store::open(dir.path().join("dst.sqlite3"), &OpenOptions::new(T0)).expect("dst");
    dst.add_ban("sshd", &BanRecord::new("10.0.0.1", T0 + 100, 1200, 3))
        .expect("newer");
    let st = dst.import_db(&src).expect("import");
    assert_eq!(st.source_version, 4);
    assert_eq!(st.bans, 2);
    assert_eq!(st.bips, 1); // 10.0.0.1 is newer here already
    assert_eq!(st.logs, 1);
    let cur = dst
        .current_bans(&CurrentBansQuery::jail("sshd", T0 + 1))
        .expect("q");
    let mut got: Vec<(String, i64)> = cur
        .iter()
        .map(|b| (b.ban.ip.clone(), b.ban.timeofban))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("10.0.0.1".into(), T0 + 100), ("10.0.0.2".into(), T0 - 10)]
    );
    assert_eq!(
        dst.log_position("sshd", "/var/log/auth.log")
            .expect("pos")
            .map(|p| p.lastfilepos),
        Some(99)
    );
    // Second import adds nothing; the source file was not modified.
    let again = dst.import_db(&src).expect("again");
    assert_eq!((again.bans, again.bips, again.jails), (0, 0, 0));
    assert_eq!(std::fs::read(&src).expect("read"), before);
    // Old schema source, and refusal of self-import / non-databases.
    let v1 = dst
        .import_db(&fail2ban_test_db("database_v1.db"))
        .expect("v1");
    assert_eq!((v1.source_version, v1.bans, v1.bips), (1, 1, 1));
    assert!(matches!(
        dst.import_db(&dir.path().join("dst.sqlite3")),
        Err(StoreError::ImportIntoSelf { .. })
    ));
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"hello").expect("write");
    assert!(dst.import_db(&junk).is_err());
    assert!(dst.import_db(&dir.path().join("missing")).is_err());
    assert_eq!(dst.integrity_check().expect("check"), vec!["ok"]);
    let _: Value = json!(null);
}

#[test]
fn purge_gives_space_back_and_full_sync_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.sqlite3");
    let opts = OpenOptions {
        synchronous: f2b_store::Synchronous::Full,
        ..OpenOptions::new(T0)
    };
    let s = Store::open(&path, &opts).expect("open");
    let bans: Vec<BanRecord> = (0..3000)
        .map(|i| {
            BanRecord::new(format!("10.1.{}.{}", i / 256, i % 256), T0 - 10_000, 60, 1)
                .with_matches([format!("{i} {}", "x".repeat(200))])
        })
        .collect();
    s.add_bans("j", &bans).expect("add");
    s.close().expect("close");
    let big = std::fs::metadata(&path).expect("meta").len();
    let s = Store::open(&path, &opts).expect("reopen");
    s.set_purge_age(100);
    let st = s.purge(T0).expect("purge");
    assert_eq!((st.bans, st.bips), (3000, 3000));
    s.close().expect("close");
    let small = std::fs::metadata(&path).expect("meta").len();
    assert!(
        small * 4 < big,
        "incremental vacuum did not shrink the file: {big} -> {small}"
    );
}
