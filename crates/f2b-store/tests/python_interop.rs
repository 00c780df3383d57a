//! Interoperability with the real Python fail2ban (Debian's package) as the
//! oracle: both write, both read, same schema, same bytes.
//!
//! These tests FAIL (never skip) when /usr/bin/python3 cannot import
//! fail2ban: `scripts/install-deps` installs it.

use std::path::Path;
use std::process::Command;

use f2b_store::serde_json::{self, json, Value};
use f2b_store::{
    BanRecord, CurrentBansQuery, HistoryScope, JournalPosition, LogPosition, OpenOptions, Store,
};

const NOW: i64 = 1_700_000_000;

/// Dummy jail objects and a small command interpreter around fail2ban's
/// `Fail2BanDb`, run by /usr/bin/python3.
const HARNESS: &str = r#"
import sys, json
from fail2ban.server.database import Fail2BanDb
from fail2ban.server.ticket import BanTicket
from fail2ban.server.mytime import MyTime

class Actions:
    def __init__(self, bt): self.bt = bt
    def getBanTime(self): return self.bt

class Jail:
    def __init__(self, name, bt=600, maxbt=-1):
        self.name = name; self.actions = Actions(bt); self._maxbt = maxbt
    def getMaxBanTime(self): return self._maxbt

class Log:
    def __init__(self, name, pos, md5): self.n, self.p, self.h = name, pos, md5
    def getFileName(self): return self.n
    def getPos(self): return self.p
    def getHash(self): return self.h

mode, path, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
MyTime.setTime(now)
db = Fail2BanDb(path)
sshd, nginx = Jail('sshd'), Jail('nginx', 300)

def ticket(ip, t, bantime, count, matches, failures, **extra):
    tk = BanTicket(ip, t, matches)
    tk.setAttempt(failures)
    for k, v in extra.items(): tk.setData(k.replace('_', '-'), v)
    tk.setBanTime(bantime); tk.setBanCount(count)
    return tk

def tk_json(t):
    return {'ip': str(t.getID()), 'time': t.getTime(), 'bantime': t.getBanTime(),
            'bancount': t.getBanCount(), 'data': t.getData()}

if mode == 'create':
    pass
elif mode == 'write':
    db.addJail(sshd); db.addJail(nginx)
    db.maxMatches = 3
    db.addBan(sshd, ticket('192.0.2.1', now - 100, 600, 2, ['m1', 'm2', 'm3', 'm4', 'm5'], 5, F_USER='root'))
    db.addBan(sshd, ticket('192.0.2.2', now - 50, -1, 1, ['p1'], 3))
    db.addBan(sshd, ticket('2001:db8::1', now - 10, 3600, 4, ['v6 ü'], 2))
    db.addBan(sshd, ticket('192.0.2.9', now - 10000, 600, 1, ['old'], 1))
    db.addBan(nginx, ticket('192.0.2.1', now - 20, 300, 1, ['n1'], 1))
    db.addLog(sshd, Log('/var/log/auth.log', 0, 'abc'))
    db.updateLog(sshd, Log('/var/log/auth.log', 12345, 'abc'))
    db.updateJournal(nginx, 'systemd-journal', 1700000123.25, '2023-11-14T22:15:23.250000')
elif mode == 'write-data':
    # one ban whose data dict matches the Rust side's, to compare bytes
    db.addJail(sshd)
    db.addBan(sshd, ticket('198.51.100.7', now, 600, 1, ['line "one"', 'zwei ü\t'], 2, F_USER='bob'))
elif mode == 'read':
    out = {
        'cur_sshd': [tk_json(t) for t in db.getCurrentBans(jail=sshd, fromtime=now)],
        'cur_all': [tk_json(t) for t in db.getCurrentBans(fromtime=now)],
        'bans_sshd': [[str(t.getID()), t.getTime(), t.getData()] for t in db.getBans(jail=sshd)],
        'getban': [list(r) for r in db.getBan('192.0.2.1', sshd)],
        'getban_all': [list(r) for r in db.getBan('192.0.2.1', overalljails=True)],
        'merged': tk_json(db.getBansMerged(ip='192.0.2.1')),
        'addlog_same': db.addLog(sshd, Log('/var/log/auth.log', 0, 'abc')),
        'addlog_rotated': db.addLog(sshd, Log('/var/log/auth.log', 0, 'xyz')),
        'journal': db.getJournalPos(nginx, 'systemd-journal'),
    }
    print(json.dumps(out, default=str))
db.close()
"#;

fn python(mode: &str, db: &Path) -> String {
    let py = Path::new("/usr/bin/python3");
    assert!(
        py.exists(),
        "/usr/bin/python3 missing: the Python fail2ban oracle is required (scripts/install-deps)"
    );
    let out = Command::new(py)
        .arg("-c")
        .arg(HARNESS)
        .arg(mode)
        .arg(db)
        .arg(NOW.to_string())
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "Python fail2ban harness ({mode}) failed — is Debian's fail2ban installed? \
         (scripts/install-deps)\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sqlite(path: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("sqlite3 CLI missing: scripts/install-deps installs it");
    assert!(out.status.success(), "sqlite3 {sql}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn opts() -> OpenOptions {
    OpenOptions::new(NOW)
}

#[test]
fn schema_is_identical_to_fail2ban() {
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("py.sqlite3");
    let ours = dir.path().join("ours.sqlite3");
    python("create", &py);
    Store::open(&ours, &opts())
        .expect("open")
        .close()
        .expect("close");
    let a = sqlite(&py, ".schema");
    let b = sqlite(&ours, ".schema");
    assert!(a.contains("CREATE TABLE bips"), "{a}");
    assert_eq!(a, b);
    let q = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid";
    assert_eq!(sqlite(&py, q), sqlite(&ours, q));
    assert_eq!(sqlite(&ours, "SELECT version FROM fail2banDb").trim(), "4");
}

#[test]
fn data_column_bytes_match_fail2ban() {
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("py.sqlite3");
    let ours = dir.path().join("ours.sqlite3");
    python("write-data", &py);
    let s = Store::open(&ours, &opts()).expect("open");
    s.add_ban(
        "sshd",
        &BanRecord::new("198.51.100.7", NOW, 600, 1)
            .with_matches(["line \"one\"", "zwei ü\t"])
            .with_failures(2)
            .with_field("F-USER", "bob"),
    )
    .expect("add");
    s.close().expect("close");
    let q = "SELECT jail, ip, timeofban, bantime, bancount, typeof(data), hex(data) FROM bans; \
             SELECT ip, jail, timeofban, bantime, bancount, typeof(data), hex(data) FROM bips;";
    let a = sqlite(&py, q);
    assert!(a.contains("|blob|"), "{a}");
    assert_eq!(a, sqlite(&ours, q));
}

#[test]
fn f2b_reads_what_fail2ban_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fail2ban.sqlite3");
    python("write", &db);
    let s = Store::open(&db, &opts()).expect("open python db");
    assert_eq!(s.jail_names(None).expect("jails"), vec!["nginx", "sshd"]);
    let mut cur = s
        .current_bans(&CurrentBansQuery::jail("sshd", NOW))
        .expect("current");
    cur.sort_by(|a, b| a.ban.ip.cmp(&b.ban.ip));
    let got: Vec<(&str, i64, i64, i64)> = cur
        .iter()
        .map(|b| {
            (
                b.ban.ip.as_str(),
                b.ban.timeofban,
                b.ban.bantime,
                b.ban.bancount,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("192.0.2.1", NOW - 100, 600, 2),
            ("192.0.2.2", NOW - 50, -1, 1),
            ("2001:db8::1", NOW - 10, 3600, 4),
        ]
    );
    let first = &cur[0].ban;
    // dbmaxmatches = 3 was applied by fail2ban when writing.
    assert_eq!(first.matches(), vec!["m3", "m4", "m5"]);
    assert_eq!(first.failures(), Some(5));
    assert_eq!(first.data.get("F-USER"), Some(&json!("root")));
    assert_eq!(cur[2].ban.matches(), vec!["v6 ü"]);
    // All jails: newest per ip.
    let all = s.current_bans(&CurrentBansQuery::at(NOW)).expect("all");
    let one = all
        .iter()
        .find(|b| b.ban.ip == "192.0.2.1")
        .expect("192.0.2.1");
    assert_eq!((one.jail.as_str(), one.ban.timeofban), ("nginx", NOW - 20));
    // History for bantime.increment.
    let h = s
        .ban_history("192.0.2.1", HistoryScope::Overall, None)
        .expect("history")
        .expect("some");
    assert_eq!((h.bancount, h.last_timeofban), (3, NOW - 20));
    // Log and journal positions.
    assert_eq!(
        s.log_position("sshd", "/var/log/auth.log").expect("pos"),
        Some(LogPosition {
            firstlinemd5: Some("abc".into()),
            lastfilepos: 12345
        })
    );
    assert_eq!(
        s.add_log("sshd", "/var/log/auth.log", 0, Some("abc"))
            .expect("add_log"),
        Some(12345)
    );
    let j = s.journal_position("nginx").expect("journal").expect("some");
    assert_eq!(j.time, 1_700_000_123.25);
    assert_eq!(j.iso.as_deref(), Some("2023-11-14T22:15:23.250000"));
    assert_eq!(j.cursor, None);
    assert_eq!(s.integrity_check().expect("check"), vec!["ok"]);
}

/// Writes the scenario through f2b; returns the store (still open).
fn write_ours(db: &Path) -> Store {
    let s = Store::open(db, &opts()).expect("open");
    s.add_jail("sshd").expect("jail");
    s.add_jail("nginx").expect("jail");
    s.set_max_matches(3);
    s.add_ban(
        "sshd",
        &BanRecord::new("192.0.2.1", NOW - 100, 600, 2)
            .with_matches(["m1", "m2", "m3", "m4"])
            .with_failures(5)
            .with_field("F-USER", "root"),
    )
    .expect("add");
    s.add_ban(
        "sshd",
        &BanRecord::new("192.0.2.2", NOW - 50, -1, 1)
            .with_matches(["p1"])
            .with_failures(3),
    )
    .expect("add");
    s.add_ban(
        "sshd",
        &BanRecord::new("192.0.2.9", NOW - 10_000, 600, 1).with_failures(1),
    )
    .expect("add");
    s.add_ban(
        "nginx",
        &BanRecord::new("192.0.2.1", NOW - 20, 300, 1)
            .with_matches(["n1"])
            .with_failures(1),
    )
    .expect("add");
    s.set_log_position(
        "sshd",
        "/var/log/auth.log",
        &LogPosition {
            firstlinemd5: Some("abc".into()),
            lastfilepos: 777,
        },
    )
    .expect("log");
    s.set_journal_position(
        "nginx",
        &JournalPosition {
            time: 1_700_000_123.5,
            iso: Some("2023-11-14T22:15:23.500000".into()),
            cursor: Some("s=1;i=2".into()),
        },
    )
    .expect("journal");
    s
}

fn check_python_view(out: &str) {
    let v: Value = serde_json::from_str(out.trim()).expect("python JSON");
    let cur = v["cur_sshd"].as_array().expect("cur_sshd");
    let mut got: Vec<(String, i64, i64, i64)> = cur
        .iter()
        .map(|t| {
            (
                t["ip"].as_str().unwrap_or("").to_owned(),
                t["time"].as_i64().unwrap_or(0),
                t["bantime"].as_i64().unwrap_or(0),
                t["bancount"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("192.0.2.1".into(), NOW - 100, 600, 2),
            ("192.0.2.2".into(), NOW - 50, -1, 1),
        ],
        "{out}"
    );
    let t1 = cur
        .iter()
        .find(|t| t["ip"] == "192.0.2.1")
        .expect("192.0.2.1");
    assert_eq!(t1["data"]["matches"], json!(["m2", "m3", "m4"]));
    assert_eq!(t1["data"]["failures"], json!(5));
    assert_eq!(t1["data"]["F-USER"], json!("root"));
    // All jails: newest per ip (nginx's ban of 192.0.2.1 is newer).
    let all = v["cur_all"].as_array().expect("cur_all");
    let t = all
        .iter()
        .find(|t| t["ip"] == "192.0.2.1")
        .expect("192.0.2.1 in all");
    assert_eq!(t["time"], json!(NOW - 20));
    assert_eq!(v["bans_sshd"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["getban"], json!([[2, NOW - 100, 600]]));
    assert_eq!(v["getban_all"][0][0], json!(3));
    assert_eq!(v["getban_all"][0][1], json!(NOW - 20));
    assert_eq!(v["merged"]["data"]["failures"], json!(6));
    assert_eq!(v["addlog_same"], json!(777));
    assert_eq!(v["addlog_rotated"], Value::Null);
    assert_eq!(v["journal"], json!(1_700_000_123.5));
}

#[test]
fn fail2ban_reads_what_f2b_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f2b.sqlite3");
    write_ours(&db).close().expect("close");
    check_python_view(&python("read", &db));
    // fail2ban switched the file to its own journal mode; f2b reopens it,
    // back to WAL, with everything intact. fail2ban moved no journal time,
    // so f2b's cursor is still valid.
    let s = Store::open(&db, &opts()).expect("reopen");
    assert_eq!(s.journal_mode(), "wal");
    assert_eq!(s.integrity_check().expect("check"), vec!["ok"]);
    let j = s.journal_position("nginx").expect("journal").expect("some");
    assert_eq!(j.cursor.as_deref(), Some("s=1;i=2"));
    // fail2ban's addLog(rotated) above reset nothing it should not:
    assert!(s
        .log_position("sshd", "/var/log/auth.log")
        .expect("pos")
        .is_some());
}

#[test]
fn fail2ban_reads_while_f2b_has_the_db_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f2b.sqlite3");
    let s = write_ours(&db);
    check_python_view(&python("read", &db));
    // f2b keeps working on the same file afterwards.
    s.add_ban("sshd", &BanRecord::new("203.0.113.5", NOW, 600, 1))
        .expect("add after python");
    assert_eq!(s.integrity_check().expect("check"), vec!["ok"]);
    assert_eq!(
        s.current_bans(&CurrentBansQuery::jail("sshd", NOW))
            .expect("cur")
            .len(),
        3
    );
}

#[test]
fn vacuum_converts_a_fail2ban_file_and_fail2ban_still_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fail2ban.sqlite3");
    python("write", &db);
    let s = Store::open(&db, &opts()).expect("open");
    // A file made by fail2ban has no auto-vacuum; f2b leaves it so until asked.
    assert_eq!(s.auto_vacuum().expect("auto_vacuum"), 0);
    s.vacuum().expect("vacuum");
    assert_eq!(s.auto_vacuum().expect("auto_vacuum"), 2);
    assert_eq!(s.integrity_check().expect("check"), vec!["ok"]);
    s.close().expect("close");
    let out = python("read", &db);
    let v: Value = serde_json::from_str(out.trim()).expect("python JSON");
    assert_eq!(v["cur_sshd"].as_array().map(Vec::len), Some(3), "{out}");
    assert_eq!(v["addlog_same"], json!(12345));
}
