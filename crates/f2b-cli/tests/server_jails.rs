//! The daemon end to end (issue "The server"): real `f2b server` processes on private
//! configurations, log files written by the test, a shell action that records what it
//! was asked to do. No firewall is touched.

mod common;

use common::{append, fail, line, now, rec_action, wait_until, Srv, APP_FILTER};
use f2b_core::value::Value;

fn jail(name: &str, extra: &str) -> String {
    let mut s = format!(
        "[{name}]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {{dir}}/{name}.log\n{extra}\n"
    );
    if !extra.contains("action =") {
        s.push_str(&format!("action = rec[name={name}]\n"));
    }
    if !extra.contains("ignoreself") {
        s.push_str("ignoreself = false\n");
    }
    s
}

fn srv(jails: &str) -> Srv {
    let rec = rec_action("actions.txt");
    Srv::new(
        jails,
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/rec.conf", &rec),
        ],
    )
    .start(&[])
}

#[test]
fn bans_after_maxretry_within_findtime_only() {
    let s = srv(&jail("a", "maxretry = 3\nfindtime = 2\nbantime = 1h"));
    fail(&s, "a.log", "198.51.100.1", 2);
    assert!(wait_until(2.0, || s.log().contains("Found 198.51.100.1")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(s.banned("a").is_empty(), "banned after 2 of 3 failures");
    fail(&s, "a.log", "198.51.100.1", 1);
    assert!(
        wait_until(5.0, || s.banned("a") == ["198.51.100.1"]),
        "not banned after 3 failures; log:\n{}",
        s.log()
    );
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains("ban 198.51.100.1 3600 3")));
    // Outside findtime: two failures, wait well past findtime, one more: no ban.
    // (fail2ban's window is not strictly sliding: a late failure re-estimates the
    // count from the rate, so the gap must be large against findtime.)
    fail(&s, "a.log", "198.51.100.2", 2);
    std::thread::sleep(std::time::Duration::from_millis(6500));
    fail(&s, "a.log", "198.51.100.2", 1);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(s.banned("a"), ["198.51.100.1"], "log:\n{}", s.log());
    assert!(s.log().contains("NOTICE  [a] Ban 198.51.100.1"));
}

#[test]
fn unbans_after_bantime_and_on_request() {
    let s = srv(&jail("a", "maxretry = 1\nbantime = 2"));
    fail(&s, "a.log", "203.0.113.10", 1);
    assert!(wait_until(5.0, || s.banned("a") == ["203.0.113.10"]));
    assert!(
        wait_until(6.0, || s.read("actions.txt").contains("unban 203.0.113.10")),
        "no unban after bantime; log:\n{}",
        s.log()
    );
    assert!(s.banned("a").is_empty());
    assert!(s.log().contains("NOTICE  [a] Unban 203.0.113.10"));
    // Manual ban and unban.
    assert_eq!(s.ok(&["set", "a", "banip", "203.0.113.11"]), Value::Int(1));
    assert_eq!(
        s.ok(&["set", "a", "unbanip", "203.0.113.11"]),
        Value::Int(1)
    );
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains("unban 203.0.113.11")));
}

#[test]
fn permanent_bans_stay() {
    let s = srv(&jail("a", "maxretry = 1\nbantime = -1"));
    fail(&s, "a.log", "203.0.113.20", 1);
    assert!(wait_until(5.0, || s.banned("a") == ["203.0.113.20"]));
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains("ban 203.0.113.20 -1")));
}

#[test]
fn ignore_rules_keep_addresses_out() {
    let s = srv(&format!(
        "{}{}{}",
        jail("ip", "maxretry = 1\nignoreip = 192.0.2.0/24 2001:db8::/32"),
        jail("self", "maxretry = 1\nignoreself = true"),
        jail(
            "cmd",
            "maxretry = 1\nignorecommand = test \"<ip>\" = 198.51.100.9"
        ),
    ));
    fail(&s, "ip.log", "192.0.2.77", 1);
    fail(&s, "ip.log", "2001:db8::5", 1);
    fail(&s, "self.log", "127.0.0.1", 1);
    fail(&s, "cmd.log", "198.51.100.9", 1);
    fail(&s, "cmd.log", "198.51.100.10", 1);
    assert!(wait_until(5.0, || s.banned("cmd") == ["198.51.100.10"]));
    // Jails run independently: cmd's ban says nothing about whether the
    // reader has already handed ip's and self's lines to their jails.
    let want = [
        "[ip] Ignore 192.0.2.77 by ip",
        "[ip] Ignore 2001:db8::5 by ip",
        "[self] Ignore 127.0.0.1 by ignoreself rule",
        "[cmd] Ignore 198.51.100.9 by command",
    ];
    assert!(
        wait_until(5.0, || {
            let log = s.log();
            want.iter().all(|w| log.contains(w))
        }),
        "{}",
        s.log()
    );
    // Only now is "not banned" meaningful: their lines were processed.
    assert!(s.banned("ip").is_empty());
    assert!(s.banned("self").is_empty());
}

#[test]
fn ban_time_increments_with_history() {
    let s = srv(&jail(
        "a",
        "maxretry = 1\nbantime = 1\nbantime.increment = true\nbantime.multipliers = 1 5 30",
    ));
    fail(&s, "a.log", "198.51.100.30", 1);
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains("ban 198.51.100.30 1 ")));
    // Expiry keeps the history (a manual unbanip would forget it, as in fail2ban).
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains("unban 198.51.100.30")));
    fail(&s, "a.log", "198.51.100.30", 1);
    assert!(
        wait_until(5.0, || s
            .read("actions.txt")
            .contains("ban 198.51.100.30 5 ")),
        "second ban not 5x; actions:\n{}\nlog:\n{}",
        s.read("actions.txt"),
        s.log()
    );
}

#[test]
fn hostile_captures_never_reach_the_shell() {
    let hostile = [
        "$(touch {dir}/pwned1)",
        "`touch {dir}/pwned2`",
        "x;touch {dir}/pwned3",
        "'; touch {dir}/pwned4 #",
        "a\"b$(id)",
    ];
    let act = "[Definition]\nactionban = printf '%%s\\n' \"<F-USER>\" >> {dir}/users.txt\n\
               actionunban = true\n";
    let s = Srv::new(
        &jail("a", "maxretry = 1\naction = users"),
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/users.conf", act),
        ],
    )
    .start(&[]);
    let d = s.path().display().to_string();
    let t = now();
    let lines: Vec<String> = hostile
        .iter()
        .enumerate()
        .map(|(i, u)| {
            line(
                t,
                &format!(
                    "auth failure from 198.51.100.{} user {}",
                    40 + i,
                    u.replace("{dir}", &d)
                ),
            )
        })
        .collect();
    append(&s.file("a.log"), &lines);
    assert!(
        wait_until(8.0, || s.read("users.txt").lines().count() == hostile.len()),
        "users:\n{}\nlog:\n{}",
        s.read("users.txt"),
        s.log()
    );
    for i in 1..=4 {
        assert!(
            !s.file(&format!("pwned{i}")).exists(),
            "injection {i} executed"
        );
    }
    let got = s.read("users.txt");
    for u in hostile {
        assert!(
            got.contains(&u.replace("{dir}", &d)),
            "{u} not passed literally:\n{got}"
        );
    }
}

#[test]
fn rotation_loses_and_repeats_nothing() {
    let s = srv(&jail("a", "maxretry = 1000\nfindtime = 1h"));
    let log = s.file("a.log");
    let mut n = 0;
    let mut write = |k: usize| {
        let t = now();
        let lines: Vec<String> = (0..k)
            .map(|_| {
                n += 1;
                line(
                    t,
                    &format!("auth failure from 10.0.{}.{}", n / 250, 1 + n % 250),
                )
            })
            .collect();
        append(&log, &lines);
    };
    write(10);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // rename + create
    std::fs::rename(&log, s.file("a.log.1")).unwrap();
    write(7);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // copytruncate
    std::fs::copy(&log, s.file("a.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    write(5);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // delete + recreate
    std::fs::remove_file(&log).unwrap();
    write(8);
    let total = 30;
    assert!(
        wait_until(10.0, || s.log().matches("] Found ").count() >= total),
        "found {} of {total}; log:\n{}",
        s.log().matches("] Found ").count(),
        s.log()
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(s.log().matches("] Found ").count(), total, "{}", s.log());
}

#[test]
fn recidive_reads_our_own_log() {
    let recidive = "[Definition]\nfailregex = fail2ban\\.actions\\s+\\[\\d+\\]: NOTICE\\s+\\[(?:a|b)\\] Ban <HOST>$\n";
    let jails = format!(
        "{}[recidive]\nenabled = true\nbackend = auto\nfilter = recidive\nlogpath = {{dir}}/f2b.log\n\
         action = rec[name=recidive]\nmaxretry = 2\nfindtime = 1h\nbantime = 1w\nignoreself = false\n",
        jail("a", "maxretry = 1\nbantime = 1")
    );
    let rec = rec_action("actions.txt");
    let s = Srv::new(
        &jails,
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("filter.d/recidive.conf", recidive),
            ("action.d/rec.conf", &rec),
        ],
    )
    .start(&[]);
    fail(&s, "a.log", "198.51.100.60", 1);
    assert!(wait_until(5.0, || s
        .log()
        .contains("[a] Unban 198.51.100.60")));
    fail(&s, "a.log", "198.51.100.60", 1);
    assert!(
        wait_until(8.0, || s.banned("recidive") == ["198.51.100.60"]),
        "recidive did not ban; log:\n{}",
        s.log()
    );
}

#[test]
fn bans_survive_a_restart() {
    let mut s = srv(&jail("a", "maxretry = 1\nbantime = 1h"));
    fail(&s, "a.log", "198.51.100.70", 1);
    assert!(wait_until(5.0, || s.banned("a").len() == 1));
    s.kill();
    let s = s.start(&[]);
    assert!(
        wait_until(5.0, || s.banned("a") == ["198.51.100.70"]),
        "ban not restored; log:\n{}",
        s.log()
    );
    assert!(
        s.log().contains("[a] Restore Ban 198.51.100.70"),
        "{}",
        s.log()
    );
    // The failure line is not counted again after the restart.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        s.log().matches("[a] Found 198.51.100.70").count(),
        1,
        "{}",
        s.log()
    );
}
