//! Unit tests of the jail engine's rules (cross-checks against Python are
//! in `tests/python_oracle.rs`).

use std::collections::HashMap;
use std::net::IpAddr;

use f2b_core::addr::Addr;

use super::*;
use crate::ignore::{FileStamp, IgnoreCacheConfig};
use crate::ticket::MAX_TIME;

#[derive(Default)]
struct Env {
    dns: HashMap<String, Vec<IpAddr>>,
    selfs: Vec<IpAddr>,
    files: HashMap<String, (FileStamp, String)>,
    cmd: Option<bool>,
    cmd_calls: usize,
    resolve_calls: usize,
    self_calls: usize,
    reads: usize,
}

impl IgnoreEnv for Env {
    fn resolve(&mut self, name: &str) -> Vec<IpAddr> {
        self.resolve_calls += 1;
        self.dns.get(name).cloned().unwrap_or_default()
    }
    fn self_ips(&mut self) -> Vec<IpAddr> {
        self.self_calls += 1;
        self.selfs.clone()
    }
    fn file_stamp(&mut self, path: &str) -> Option<FileStamp> {
        self.files.get(path).map(|f| f.0)
    }
    fn read_file(&mut self, path: &str) -> Result<String, String> {
        self.reads += 1;
        self.files
            .get(path)
            .map(|f| f.1.clone())
            .ok_or_else(|| "missing".into())
    }
    fn ignore_command(&mut self, _: &str, _: &Addr, _: Option<&Ticket>) -> Result<bool, String> {
        self.cmd_calls += 1;
        self.cmd.ok_or_else(|| "failed".into())
    }
}

#[derive(Default)]
struct Hist {
    rec: HashMap<String, BanRecord>,
    asked: Vec<(String, String, bool)>,
}

impl BanHistory for Hist {
    fn get_ban(&mut self, id: &Addr, jail: &str, overall: bool) -> Option<BanRecord> {
        self.asked.push((id.to_string(), jail.to_owned(), overall));
        self.rec.get(&id.to_string()).copied()
    }
}

fn a(s: &str) -> Addr {
    Addr::parse(s).unwrap()
}

fn fail(id: &str, t: f64) -> Failure {
    Failure {
        id: a(id),
        ip: None,
        time: t,
        matches: vec![format!("{id} failed at {t}")],
        data: vec![],
    }
}

fn jail() -> JailEngine {
    let mut j = JailEngine::new("sshd");
    j.set_maxretry(3);
    j.set_findtime(600.0);
    j.set_bantime(600);
    j.ignore_mut().set_ignore_self(false);
    j
}

fn bans(ev: &[Event]) -> Vec<&Ticket> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Ban { ticket, .. } => Some(&**ticket),
            _ => None,
        })
        .collect()
}

const T0: f64 = 1_700_000_000.0;

#[test]
fn ban_after_maxretry_inside_findtime() {
    let mut j = jail();
    let mut env = Env::default();
    let mut ev = Vec::new();
    for k in 0..3 {
        let t = T0 + 100.0 * f64::from(k);
        j.on_failure(fail("1.2.3.4", t), t, &mut env, None, &mut ev);
    }
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].failures, 3);
    assert_eq!(b[0].matches.len(), 3);
    assert_eq!(b[0].bancount, 1);
    assert_eq!(b[0].end_of_ban(j.bantime()), T0 + 200.0 + 600.0);
    assert!(matches!(ev[0], Event::Found { .. }));
    let s = j.status();
    assert_eq!(
        (
            s.currently_failed,
            s.total_failed,
            s.currently_banned,
            s.total_banned
        ),
        (0, 3, 1, 1)
    );
}

#[test]
fn no_ban_when_failures_spread_beyond_findtime() {
    let mut j = jail();
    let mut env = Env::default();
    let mut ev = Vec::new();
    for k in 0..10 {
        let t = T0 + 700.0 * f64::from(k);
        j.on_failure(fail("1.2.3.4", t), t, &mut env, None, &mut ev);
        j.lines_processed(100, t);
    }
    assert!(bans(&ev).is_empty());
    assert_eq!(j.status().total_failed, 10);
}

#[test]
fn future_failures_are_clamped_to_now() {
    let mut j = jail();
    let mut ev = Vec::new();
    j.on_failure(
        fail("1.2.3.4", T0 + 50.0),
        T0,
        &mut Env::default(),
        None,
        &mut ev,
    );
    assert_eq!(
        ev[0],
        Event::Found {
            id: a("1.2.3.4"),
            time: T0
        }
    );
}

#[test]
fn unban_after_bantime_and_permanent() {
    let mut j = jail();
    let mut ev = Vec::new();
    j.ban_ip(&["1.2.3.4"], T0, None, &mut ev).unwrap();
    assert_eq!(j.next_unban_time(), Some(T0 + 600.0));
    assert_eq!(j.unban_expired(T0 + 600.0, &mut ev), 0);
    assert_eq!(j.unban_expired(T0 + 600.001, &mut ev), 1);
    assert!(matches!(
        ev.last(),
        Some(Event::Unban {
            reason: UnbanReason::Expired,
            ..
        })
    ));
    assert_eq!(j.next_unban_time(), None);

    j.set_bantime(-1);
    j.ban_ip(&["5.6.7.8"], T0, None, &mut ev).unwrap();
    assert_eq!(j.next_unban_time(), Some(MAX_TIME));
    assert_eq!(j.unban_expired(T0 + 1e9, &mut ev), 0);
    assert_eq!(j.status().currently_banned, 1);
}

#[test]
fn manual_ban_unban_and_already_banned() {
    let mut j = jail();
    let mut env = Env::default();
    let mut ev = Vec::new();
    assert_eq!(
        j.ban_ip(
            &["1.2.3.4", "10.1.2.3", "10.9.9.9", "2001:db8::7"],
            T0,
            None,
            &mut ev
        )
        .unwrap(),
        4
    );
    assert_eq!(j.ban_ip(&["1.2.3.4"], T0 + 10.0, None, &mut ev).unwrap(), 0);
    assert!(matches!(ev.last(), Some(Event::AlreadyBanned { since, .. }) if *since == 10.0));
    assert!(j.ban_ip(&["1.2.3.4/24/1"], T0, None, &mut ev).is_err());

    ev.clear();
    assert_eq!(
        j.unban_ip(Some(&["10.0.0.0/8"]), false, T0, &mut env, &mut ev),
        Ok(2)
    );
    assert_eq!(ev.len(), 2);
    assert_eq!(
        j.unban_ip(Some(&["9.9.9.9"]), false, T0, &mut env, &mut ev),
        Ok(0)
    );
    assert!(matches!(ev.last(), Some(Event::NotBanned { id }) if id == "9.9.9.9"));
    let err = j
        .unban_ip(Some(&["9.9.9.9", "1.2.3.4"]), true, T0, &mut env, &mut ev)
        .unwrap_err();
    assert_eq!(err.to_string(), "not banned: ['9.9.9.9']");
    assert!(
        !j.bans().contains(&a("1.2.3.4")),
        "the banned one is unbanned despite the error"
    );

    env.dns
        .insert("host.example".into(), vec!["2001:db8::7".parse().unwrap()]);
    assert_eq!(
        j.unban_ip(Some(&["host.example"]), true, T0, &mut env, &mut ev),
        Ok(1)
    );
    j.ban_ip(&["1.1.1.1", "2.2.2.2"], T0, None, &mut ev)
        .unwrap();
    ev.clear();
    assert_eq!(j.unban_ip(None, false, T0, &mut env, &mut ev), Ok(2));
    assert!(ev.iter().all(|e| matches!(
        e,
        Event::Unban {
            reason: UnbanReason::Flush,
            ..
        }
    )));
    assert_eq!(j.status().total_banned, 6);
}

#[test]
fn attempt_counts_matches_and_bans() {
    let mut j = jail();
    let mut ev = Vec::new();
    j.on_attempt(
        a("1.2.3.4"),
        vec!["a".into(), "b".into(), "c".into()],
        T0,
        None,
        &mut ev,
    );
    assert!(matches!(ev[0], Event::Attempt { .. }));
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].retry(), b[0].failures, b[0].matches.len()), (3, 1, 3));
}

#[test]
fn increment_uses_history_formula_and_maxtime() {
    let secs = |v: &str| v.parse::<i64>().ok().map(Num::Int);
    let mut j = jail();
    j.set_maxretry(1);
    j.set_bantime_extra("increment", "true", &secs).unwrap();
    let mut h = Hist::default();
    h.rec.insert(
        "1.2.3.4".into(),
        BanRecord {
            ban_count: 3,
            time_of_ban: T0 - 5000.0,
            bantime: 2400.0,
        },
    );
    let mut ev = Vec::new();
    j.on_failure(
        fail("1.2.3.4", T0),
        T0,
        &mut Env::default(),
        Some(&mut h),
        &mut ev,
    );
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].bantime, Some(Num::Int(600 * 8)));
    assert_eq!(b[0].bancount, 4);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            Event::Found { .. } => "found",
            Event::Ban { .. } => "ban",
            Event::BadIp { .. } => "bad",
            Event::IncreaseBan { .. } => "increase",
            Event::StoreBan { .. } => "store",
            Event::FoundBad { .. } => "foundbad",
            _ => "other",
        })
        .collect();
    // maxretry 1 caps the weight to 1: no "Found .., bad" line (as in fail2ban)
    assert_eq!(kinds, ["found", "ban", "bad", "increase", "store"]);
    assert!(ev.contains(&Event::IncreaseBan {
        id: a("1.2.3.4"),
        bancount: 4,
        bantime: Num::Int(4800),
        end: Some(T0 + 4800.0)
    }));
    assert_eq!(j.next_unban_time(), Some(T0 + 4800.0));
    assert_eq!(h.asked[0], ("1.2.3.4".into(), "sshd".into(), false));

    // maxtime caps, overalljails asks across jails
    j.set_bantime_extra("maxtime", "3000", &secs).unwrap();
    j.set_bantime_extra("overalljails", "true", &secs).unwrap();
    h.rec.insert(
        "5.6.7.8".into(),
        BanRecord {
            ban_count: 5,
            time_of_ban: T0 - 1.0,
            bantime: 600.0,
        },
    );
    ev.clear();
    j.ban_ip(&["5.6.7.8"], T0, Some(&mut h), &mut ev).unwrap();
    assert_eq!(bans(&ev)[0].bantime, Some(Num::Int(3000)));
    assert!(h.asked.iter().any(|q| q.0 == "5.6.7.8" && q.2));

    // no database: no increment, nothing to store
    let mut j2 = jail();
    j2.set_bantime_extra("increment", "true", &secs).unwrap();
    ev.clear();
    j2.ban_ip(&["1.2.3.4"], T0, None, &mut ev).unwrap();
    assert_eq!(bans(&ev)[0].bantime, None);
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::StoreBan { .. } | Event::IncreaseBan { .. })));
}

#[test]
fn known_bad_ip_weighs_more() {
    let secs = |v: &str| v.parse::<i64>().ok().map(Num::Int);
    let mut j = jail();
    j.set_maxretry(5);
    j.set_bantime_extra("increment", "true", &secs).unwrap();
    let mut h = Hist::default();
    h.rec.insert(
        "1.2.3.4".into(),
        BanRecord {
            ban_count: 2,
            time_of_ban: T0 - 5000.0,
            bantime: 1200.0,
        },
    );
    let mut ev = Vec::new();
    j.on_failure(
        fail("1.2.3.4", T0),
        T0,
        &mut Env::default(),
        Some(&mut h),
        &mut ev,
    );
    assert!(ev.iter().any(
        |e| matches!(e, Event::FoundBad { retry: Num::Float(r), ban: false, .. } if *r == 3.0)
    ));
    let t = j.failures().get(&a("1.2.3.4")).unwrap();
    assert_eq!((t.retry(), t.failures, t.bancount), (3, 2, 2));
    j.on_failure(
        fail("1.2.3.4", T0 + 1.0),
        T0 + 1.0,
        &mut Env::default(),
        Some(&mut h),
        &mut ev,
    );
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].retry(), b[0].failures), (6, 4));
    // failures before the last ban are not re-weighted
    let mut ev = Vec::new();
    j.on_failure(
        fail("9.9.9.9", T0 - 6000.0),
        T0,
        &mut Env::default(),
        Some(&mut h),
        &mut ev,
    );
    h.rec.insert(
        "9.9.9.9".into(),
        BanRecord {
            ban_count: 4,
            time_of_ban: T0 - 10.0,
            bantime: 600.0,
        },
    );
    j.on_failure(
        fail("9.9.9.9", T0 - 20.0),
        T0,
        &mut Env::default(),
        Some(&mut h),
        &mut ev,
    );
    assert!(ev.iter().any(|e| matches!(e, Event::BeforeLastBan { .. })));
}

#[test]
fn formula_runtime_error_keeps_bantime() {
    let secs = |v: &str| v.parse::<i64>().ok().map(Num::Int);
    let mut j = jail();
    j.set_bantime_extra("increment", "true", &secs).unwrap();
    j.set_bantime_extra("formula", "ban.Time / (ban.Count - 1)", &secs)
        .unwrap();
    let mut h = Hist::default();
    h.rec.insert(
        "1.2.3.4".into(),
        BanRecord {
            ban_count: 1,
            time_of_ban: T0 - 5000.0,
            bantime: 600.0,
        },
    );
    let mut ev = Vec::new();
    j.ban_ip(&["1.2.3.4"], T0, Some(&mut h), &mut ev).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Error { message } if message.contains("ZeroDivisionError"))));
    assert_eq!(j.next_unban_time(), Some(T0 + 600.0));
}

#[test]
fn ignoreip_ip_cidr_ipv6_dns_and_self() {
    let mut j = jail();
    let mut env = Env::default();
    env.dns.insert(
        "trusted.example".into(),
        vec!["203.0.113.5".parse().unwrap()],
    );
    env.selfs = vec!["192.0.2.1".parse().unwrap()];
    for e in [
        "127.0.0.1/8",
        "::1",
        "2001:db8::/32",
        "trusted.example",
        "198.51.100.7",
    ] {
        assert!(j.ignore_mut().add(e).unwrap());
    }
    assert!(!j.ignore_mut().add("127.0.0.1/8").unwrap(), "duplicate");
    let mut ev = Vec::new();
    for (id, src) in [
        ("127.0.0.5", Some(IgnoreSource::Ip)),
        ("2001:db8:5::1", Some(IgnoreSource::Ip)),
        ("::1", Some(IgnoreSource::Ip)),
        ("203.0.113.5", Some(IgnoreSource::Dns)),
        ("198.51.100.7", Some(IgnoreSource::Ip)),
        ("192.0.2.1", None),
        ("8.8.8.8", None),
    ] {
        ev.clear();
        j.on_failure(fail(id, T0), T0, &mut env, None, &mut ev);
        match src {
            Some(s) => assert_eq!(
                ev,
                vec![Event::Ignored {
                    id: a(id),
                    source: s
                }],
                "{id}"
            ),
            None => assert!(matches!(ev[0], Event::Found { .. }), "{id}"),
        }
    }
    j.ignore_mut().set_ignore_self(true);
    ev.clear();
    j.on_failure(fail("192.0.2.1", T0), T0, &mut env, None, &mut ev);
    assert_eq!(
        ev,
        vec![Event::Ignored {
            id: a("192.0.2.1"),
            source: IgnoreSource::SelfRule
        }]
    );
    // DNS answers are cached for 5 minutes
    let calls = env.resolve_calls;
    j.check_ignore(&a("203.0.113.9"), T0 + 10.0, &mut env);
    assert_eq!(env.resolve_calls, calls);
    j.check_ignore(&a("203.0.113.9"), T0 + 400.0, &mut env);
    assert_eq!(env.resolve_calls, calls + 1);
    // raw ids are never matched by ignoreip
    assert_eq!(
        j.check_ignore(&Addr::raw("trusted.example"), T0, &mut env),
        IgnoreResult::NotIgnored
    );
    j.ignore_mut().remove("2001:db8::/32").unwrap();
    assert!(j.ignore_mut().remove("2001:db8::/32").is_err());
    assert_eq!(
        j.check_ignore(&a("2001:db8:5::1"), T0, &mut env),
        IgnoreResult::NotIgnored
    );
}

#[test]
fn ignoreip_file_reloads_when_changed() {
    let mut j = jail();
    let mut env = Env::default();
    let st = |n| FileStamp {
        mtime_ns: n,
        ino: 1,
        size: 10,
    };
    env.files.insert(
        "/etc/f2b/ignore.txt".into(),
        (st(1), "# trusted\n10.0.0.0/8, 192.0.2.9 # admin\n".into()),
    );
    j.ignore_mut().add("file:///etc/f2b/ignore.txt").unwrap();
    assert_eq!(
        j.ignore().entries(),
        vec!["file:/etc/f2b/ignore.txt".to_string()]
    );
    assert!(j.check_ignore(&a("10.2.3.4"), T0, &mut env).is_ignored());
    assert!(j.check_ignore(&a("192.0.2.9"), T0, &mut env).is_ignored());
    assert!(!j.check_ignore(&a("192.0.2.10"), T0, &mut env).is_ignored());
    assert_eq!(env.reads, 1);
    env.files.insert(
        "/etc/f2b/ignore.txt".into(),
        (st(2), "192.0.2.10\nbad/x\n".into()),
    );
    // within a second: not re-checked
    assert!(j
        .check_ignore(&a("10.2.3.4"), T0 + 0.5, &mut env)
        .is_ignored());
    assert!(!j
        .check_ignore(&a("10.2.3.4"), T0 + 2.0, &mut env)
        .is_ignored());
    assert!(j
        .check_ignore(&a("192.0.2.10"), T0 + 2.0, &mut env)
        .is_ignored());
    assert_eq!(env.reads, 2);
    let mut ev = Vec::new();
    j.on_failure(fail("8.8.8.8", T0 + 3.0), T0 + 3.0, &mut env, None, &mut ev);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Warning { .. })),
        "bad entry reported: {ev:?}"
    );
    env.files.clear();
    assert!(!j
        .check_ignore(&a("192.0.2.10"), T0 + 5.0, &mut env)
        .is_ignored());
}

#[test]
fn ignorecommand_with_ignorecache() {
    let mut j = jail();
    let mut env = Env {
        cmd: Some(true),
        ..Env::default()
    };
    j.ignore_mut().set_command(Some("/bin/check <ip>"));
    j.ignore_mut().set_cache(Some(IgnoreCacheConfig {
        key: "<ip>".into(),
        max_count: 2,
        max_time: 300.0,
    }));
    let mut ev = Vec::new();
    j.on_failure(fail("1.1.1.1", T0), T0, &mut env, None, &mut ev);
    assert_eq!(
        ev,
        vec![Event::Ignored {
            id: a("1.1.1.1"),
            source: IgnoreSource::Command
        }]
    );
    ev.clear();
    j.on_failure(fail("1.1.1.1", T0 + 1.0), T0 + 1.0, &mut env, None, &mut ev);
    assert!(ev.is_empty(), "cache hit logs nothing");
    assert_eq!(env.cmd_calls, 1);
    env.cmd = Some(false);
    j.on_failure(fail("2.2.2.2", T0), T0, &mut env, None, &mut ev);
    j.on_failure(fail("2.2.2.2", T0), T0, &mut env, None, &mut ev);
    assert_eq!(env.cmd_calls, 2, "negative answers are cached too");
    // expiry
    j.on_failure(
        fail("1.1.1.1", T0 + 301.0),
        T0 + 301.0,
        &mut env,
        None,
        &mut ev,
    );
    assert_eq!(env.cmd_calls, 3);
    // a failing command means "not ignored"
    env.cmd = None;
    ev.clear();
    j.on_failure(
        fail("3.3.3.3", T0 + 302.0),
        T0 + 302.0,
        &mut env,
        None,
        &mut ev,
    );
    assert!(matches!(ev[0], Event::Found { .. }));
}

#[test]
fn cache_key_can_use_failure_data() {
    let mut t = Ticket::new(a("1.2.3.4"), 0.0, vec![]);
    t.data.push(("F-USER".into(), "root".into()));
    assert_eq!(
        crate::ignore::render_key("<ip>-<F-USER>-<x>", &t.id.clone(), Some(&t)),
        "1.2.3.4-root-<x>"
    );
    assert_eq!(
        crate::ignore::render_key("<ip>-<F-USER>", &t.id.clone(), None),
        "1.2.3.4-<F-USER>"
    );
}

#[test]
fn restore_skips_ignored_and_obsolete() {
    let mut j = jail();
    let mut env = Env::default();
    j.ignore_mut().add("10.0.0.0/8").unwrap();
    let mut ev = Vec::new();
    let mut t = Ticket::new(a("1.2.3.4"), T0 - 100.0, vec!["x".into()]);
    t.bantime = Some(Num::Int(600));
    t.bancount = 2;
    j.restore_ban(t.clone(), T0, &mut env, &mut ev);
    assert!(matches!(&ev[0], Event::Ban { restored: true, ticket } if ticket.bancount == 3));
    assert_eq!(ev.len(), 1, "no increment or store for restored bans");
    // The actions' copy is the ban as stored: restored, banned, counted once more.
    let Event::Ban { ticket, .. } = &ev[0] else {
        unreachable!()
    };
    let stored = j.bans().get(&a("1.2.3.4")).unwrap();
    assert!(stored.restored && stored.banned);
    assert_eq!(**ticket, *stored);
    // A hostile ban count from the database saturates instead of overflowing.
    let mut big = Ticket::new(a("1.2.3.5"), T0 - 100.0, vec![]);
    big.bancount = u32::MAX;
    j.restore_ban(big, T0, &mut env, &mut ev);
    assert_eq!(j.bans().get(&a("1.2.3.5")).unwrap().bancount, u32::MAX);
    ev.clear();
    t.id = a("10.1.1.1");
    j.restore_ban(t.clone(), T0, &mut env, &mut ev);
    assert!(matches!(ev[0], Event::Ignored { .. }));
    ev.clear();
    t.id = a("5.5.5.5");
    t.time = T0 - 700.0;
    j.restore_ban(t, T0, &mut env, &mut ev);
    assert!(ev.is_empty());
}

#[test]
fn line_time_policy() {
    assert_eq!(
        line_time(T0 - 30.0, T0, true, 600.0),
        LineTime::Use(T0 - 30.0)
    );
    assert_eq!(
        line_time(T0 - 3600.0, T0, true, 600.0),
        LineTime::Simulated {
            now: T0,
            delta: -3600
        }
    );
    assert_eq!(line_time(T0 - 3600.0, T0, false, 600.0), LineTime::Obsolete);
    assert_eq!(
        line_time(T0 - 300.0, T0, false, 600.0),
        LineTime::Use(T0 - 300.0)
    );
}
