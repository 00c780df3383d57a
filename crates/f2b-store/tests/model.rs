//! Model-based property test: random sequences of bans and unbans against a
//! plain in-memory model of fail2ban's `bips` semantics (latest write per ip
//! and jail wins; unban forgets), checked through `current_bans` (per jail and
//! all jails) and `ban_history` at random times.

use std::collections::BTreeMap;

use f2b_store::{BanRecord, CurrentBansQuery, HistoryScope, OpenOptions, Store};
use proptest::prelude::*;

const JAILS: [&str; 3] = ["sshd", "nginx", "recidive"];

#[derive(Debug, Clone)]
enum Op {
    Ban {
        jail: usize,
        ip: u8,
        t: i64,
        bantime: i64,
        count: i64,
    },
    Unban {
        jail: usize,
        ip: u8,
    },
    UnbanAll {
        jail: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..6u8, 0..1000i64, prop_oneof![Just(-1i64), 1..500i64], 1..5i64)
            .prop_map(|(jail, ip, t, bantime, count)| Op::Ban { jail, ip, t, bantime, count }),
        2 => (0..3usize, 0..6u8).prop_map(|(jail, ip)| Op::Unban { jail, ip }),
        1 => (0..3usize).prop_map(|jail| Op::UnbanAll { jail }),
    ]
}

fn ip(i: u8) -> String {
    format!("192.0.2.{i}")
}

/// (jail, ip) -> (timeofban, bantime, bancount)
type Model = BTreeMap<(usize, u8), (i64, i64, i64)>;

fn active(row: &(i64, i64, i64), now: i64) -> bool {
    row.1 <= -1 || row.0 + row.1 > now
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..40), now in 0..1500i64) {
        let s = Store::open_in_memory(&OpenOptions::new(0)).expect("open");
        let mut model = Model::new();
        for o in &ops {
            match *o {
                Op::Ban { jail, ip: i, t, bantime, count } => {
                    s.add_ban(JAILS[jail], &BanRecord::new(ip(i), t, bantime, count)).expect("add");
                    model.insert((jail, i), (t, bantime, count));
                }
                Op::Unban { jail, ip: i } => {
                    s.remove_ban(JAILS[jail], &ip(i)).expect("remove");
                    model.remove(&(jail, i));
                }
                Op::UnbanAll { jail } => {
                    s.remove_all_bans(JAILS[jail]).expect("remove all");
                    model.retain(|k, _| k.0 != jail);
                }
            }
        }
        // Per jail: exactly the active model rows.
        for (j, name) in JAILS.iter().enumerate() {
            let mut got: Vec<(String, i64, i64, i64)> = s
                .current_bans(&CurrentBansQuery::jail(name, now))
                .expect("current")
                .into_iter()
                .map(|b| (b.ban.ip, b.ban.timeofban, b.ban.bantime, b.ban.bancount))
                .collect();
            got.sort();
            let mut want: Vec<(String, i64, i64, i64)> = model
                .iter()
                .filter(|(k, v)| k.0 == j && active(v, now))
                .map(|(k, v)| (ip(k.1), v.0, v.1, v.2))
                .collect();
            want.sort();
            prop_assert_eq!(got, want);
        }
        // All jails: one entry per ip with an active ban, at its newest time.
        let got: Vec<(String, i64)> = s
            .current_bans(&CurrentBansQuery::at(now))
            .expect("all")
            .into_iter()
            .map(|b| (b.ban.ip, b.ban.timeofban))
            .collect();
        let mut want: BTreeMap<String, i64> = BTreeMap::new();
        for (k, v) in model.iter().filter(|(_, v)| active(v, now)) {
            let e = want.entry(ip(k.1)).or_insert(v.0);
            *e = (*e).max(v.0);
        }
        prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        // Overall history: summed counts, newest time.
        for i in 0..6u8 {
            let rows: Vec<_> = model.iter().filter(|(k, _)| k.1 == i).map(|(_, v)| *v).collect();
            let h = s.ban_history(&ip(i), HistoryScope::Overall, None).expect("history");
            if rows.is_empty() {
                prop_assert_eq!(h, None);
            } else {
                let h = h.expect("some");
                prop_assert_eq!(h.bancount, rows.iter().map(|r| r.2).sum::<i64>());
                prop_assert_eq!(h.last_timeofban, rows.iter().map(|r| r.0).max().unwrap_or(0));
            }
        }
    }
}
