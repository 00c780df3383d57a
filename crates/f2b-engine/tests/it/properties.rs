//! Property tests of the engine's invariants.

use std::collections::HashMap;
use std::net::IpAddr;

use f2b_core::addr::Addr;
use f2b_engine::ignore::{FileStamp, IgnoreEnv};
use f2b_engine::{Event, Failure, JailEngine, Ticket, MAX_TIME};
use proptest::prelude::*;

struct NoEnv;
impl IgnoreEnv for NoEnv {
    fn resolve(&mut self, _: &str) -> Vec<IpAddr> {
        Vec::new()
    }
    fn self_ips(&mut self) -> Vec<IpAddr> {
        Vec::new()
    }
    fn file_stamp(&mut self, _: &str) -> Option<FileStamp> {
        None
    }
    fn read_file(&mut self, _: &str) -> Result<String, String> {
        Err("none".into())
    }
    fn ignore_command(&mut self, _: &str, _: &Addr, _: Option<&Ticket>) -> Result<bool, String> {
        Ok(false)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Fail { id: u8, dt: u32, skew: i32 },
    Lines(u8),
    Unban { dt: u32 },
    BanIp { id: u8 },
    UnbanIp { id: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 0u32..200, -100i32..20).prop_map(|(id, dt, skew)| Op::Fail { id, dt, skew }),
        1 => (1u8..200).prop_map(Op::Lines),
        2 => (0u32..900).prop_map(|dt| Op::Unban { dt }),
        1 => (0u8..6).prop_map(|id| Op::BanIp { id }),
        1 => (0u8..6).prop_map(|id| Op::UnbanIp { id }),
    ]
}

fn id(i: u8) -> Addr {
    match i {
        0..=3 => Addr::parse(&format!("192.0.2.{i}")).unwrap(),
        4 => Addr::parse("2001:db8::4").unwrap(),
        _ => Addr::raw("user-five"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Counters, ban/unban bookkeeping and the next-unban index stay
    /// consistent; no id is banned with fewer than maxretry failures since
    /// its previous ban; every ban ends unless permanent.
    #[test]
    fn engine_invariants(
        ops in prop::collection::vec(op(), 1..200),
        maxretry in 1u32..6,
        findtime in 1u32..1200,
        bantime in prop_oneof![Just(-1i64), 1i64..2000],
    ) {
        let mut j = JailEngine::new("p");
        j.set_maxretry(maxretry);
        j.set_findtime(f64::from(findtime));
        j.set_bantime(bantime);
        j.ignore_mut().set_ignore_self(false);
        let mut now = 1_000_000.0f64;
        let mut since_ban: HashMap<Addr, u32> = HashMap::new();
        let (mut found, mut banned, mut unbanned) = (0u64, 0u64, 0u64);
        for o in ops {
            let mut ev = Vec::new();
            match o {
                Op::Fail { id: i, dt, skew } => {
                    now += f64::from(dt);
                    let f = Failure { id: id(i), ip: None, time: now + f64::from(skew), matches: vec!["l".into()], data: vec![] };
                    *since_ban.entry(id(i)).or_default() += 1;
                    j.on_failure(f, now, &mut NoEnv, None, &mut ev);
                }
                Op::Lines(n) => j.lines_processed(u64::from(n), now),
                Op::Unban { dt } => {
                    now += f64::from(dt);
                    j.unban_expired(now, &mut ev);
                }
                Op::BanIp { id: i } => {
                    j.ban_ip(&[&id(i).to_string()], now, None, &mut ev).unwrap();
                }
                Op::UnbanIp { id: i } => {
                    let _ = j.unban_ip(Some(&[&id(i).to_string()]), false, now, &mut NoEnv, &mut ev);
                }
            }
            for e in &ev {
                match e {
                    Event::Found { time, .. } => {
                        found += 1;
                        prop_assert!(*time <= now, "failure time clamped to now");
                    }
                    Event::Ban { ticket, restored } => {
                        banned += 1;
                        prop_assert!(!restored);
                        if ticket.failures > 0 {
                            // a failure-driven ban
                            let n = since_ban.get(&ticket.id).copied().unwrap_or(0);
                            prop_assert!(ticket.retry() >= maxretry);
                            prop_assert!(n >= maxretry, "banned {} after {} failures (maxretry {})", ticket.id, n, maxretry);
                            prop_assert!(ticket.failures <= n);
                            // the failure entry left the list with this ban
                            since_ban.insert(ticket.id.clone(), 0);
                        }
                        prop_assert!(ticket.matches.len() <= j.maxmatches().max(ticket.failures as usize));
                    }
                    Event::Unban { ticket, reason } => {
                        unbanned += 1;
                        if *reason == f2b_engine::UnbanReason::Expired {
                            prop_assert!(bantime != -1);
                            prop_assert!(now > ticket.end_of_ban(j.bantime()));
                        }
                    }
                    _ => {}
                }
            }
            let s = j.status();
            prop_assert_eq!(s.total_failed, found);
            prop_assert_eq!(s.total_banned, banned);
            prop_assert_eq!(s.currently_banned as u64, banned - unbanned);
            prop_assert_eq!(s.banned.len(), s.currently_banned);
            // at most one active ban per id
            let uniq: std::collections::HashSet<_> = s.banned.iter().collect();
            prop_assert_eq!(uniq.len(), s.banned.len());
            let min_end = j.bans().tickets().iter().map(|t| t.end_of_ban(j.bantime())).fold(f64::INFINITY, f64::min);
            let next = j.next_unban_time();
            if s.currently_banned == 0 {
                prop_assert_eq!(next, None);
            } else {
                prop_assert_eq!(next, Some(min_end));
            }
        }
        // every ban ends unless permanent
        let mut ev = Vec::new();
        j.unban_expired(now + 1e7, &mut ev);
        if bantime == -1 {
            prop_assert!(j.bans().tickets().iter().all(|t| t.end_of_ban(j.bantime()) == MAX_TIME));
        } else {
            prop_assert_eq!(j.status().currently_banned, 0);
        }
    }

    /// Inside one findtime window (no cleanup, no rate re-estimation) an id
    /// is banned exactly at its maxretry-th failure, in any time order.
    #[test]
    fn ban_exactly_at_maxretry_within_window(
        times in prop::collection::vec(0u32..599, 1..20),
        maxretry in 1u32..8,
    ) {
        let mut j = JailEngine::new("w");
        j.set_maxretry(maxretry);
        j.set_findtime(600.0);
        j.ignore_mut().set_ignore_self(false);
        // now within the window so the ban is not already over
        let now = 4599.0;
        for (k, t) in times.iter().enumerate() {
            let mut ev = Vec::new();
            let f = Failure { id: id(1), ip: None, time: 4000.0 + f64::from(*t), matches: vec![], data: vec![] };
            j.on_failure(f, now, &mut NoEnv, None, &mut ev);
            let ban = ev.iter().any(|e| matches!(e, Event::Ban { .. }));
            prop_assert_eq!(ban, k + 1 == maxretry as usize, "failure #{} (maxretry {})", k + 1, maxretry);
        }
    }

    /// The formula parser and evaluator never panic, whatever the text.
    #[test]
    fn expressions_never_panic(src in "[0-9a-zA-Z_ .()<>=!+*/%&|^~,-]{0,40}", t in -5i64..5000, c in -3i64..70) {
        use f2b_engine::expr::{Expr, Scope, Vars};
        for scope in [Scope::Formula, Scope::Constant] {
            if let Ok(e) = Expr::compile(&src, scope) {
                let _ = e.eval(&Vars { time: f2b_engine::Num::Int(t), count: c, factor: f2b_engine::Num::Float(1.5) });
            }
        }
        // and the stock formula keeps working for any count
        let e = Expr::compile(f2b_engine::increment::DEFAULT_FORMULA, Scope::Formula).unwrap();
        // (ban counts are never negative; Python also fails on `1 << -1`)
        let vars = Vars { time: f2b_engine::Num::Int(t), count: c.max(0), factor: f2b_engine::Num::Int(1) };
        let ok = e.eval(&vars).is_ok();
        prop_assert!(ok, "default formula failed for time {} count {}", t, c);
    }

    /// Address parsing never panics and is stable under re-parsing.
    #[test]
    fn addr_parse_never_panics(s in "[0-9a-fA-F:./\\[\\]x -]{0,45}") {
        if let Ok(a) = Addr::parse(&s) {
            let _ = (a.family(), a.ip_rev(), a.is_single());
            if let Ok(b) = Addr::parse(&a.to_string()) {
                if a.is_ip() && !(matches!(a, Addr::Net(n) if n.plen() == 0)) {
                    prop_assert_eq!(b, a);
                }
            }
        }
    }

    /// Address text round-trips and subnet containment agrees with integer masks.
    #[test]
    fn addr_roundtrip_and_contains(a in any::<u32>(), b in any::<u32>(), plen in 0u8..=32, v6 in any::<u128>(), plen6 in 0u8..=128) {
        let ip = Addr::from(IpAddr::from(std::net::Ipv4Addr::from(a)));
        prop_assert_eq!(Addr::parse(&ip.to_string()).unwrap(), ip.clone());
        let net = Addr::parse(&format!("{}/{}", std::net::Ipv4Addr::from(b), plen)).unwrap();
        let mask = if plen == 0 { 0 } else { u32::MAX << (32 - u32::from(plen)) };
        prop_assert_eq!(net.contains(&ip), (a & mask) == (b & mask));
        if plen > 0 {
            prop_assert_eq!(Addr::parse(&net.to_string()).unwrap(), net.clone());
        }
        let ip6 = Addr::from(IpAddr::from(std::net::Ipv6Addr::from(v6)));
        prop_assert_eq!(Addr::parse(&ip6.to_string()).unwrap(), ip6.clone());
        let net6 = Addr::parse(&format!("{}/{}", std::net::Ipv6Addr::from(v6 ^ 0xff), plen6)).unwrap();
        let m6 = if plen6 == 0 { 0 } else { u128::MAX << (128 - u32::from(plen6)) };
        if let Addr::Ip(IpAddr::V6(_)) = ip6 {
            prop_assert_eq!(net6.contains(&ip6), (v6 & m6) == ((v6 ^ 0xff) & m6));
        }
    }
}
