//! A server jail on the systemd journal end to end: `backend = systemd[journalpath=DIR]`
//! over journal files written by systemd-journal-remote (no journald needed), the jail's
//! `journalmatch`, catch-up from `now - findtime`, live entries, and the exact cursor
//! stored at stop: after a restart no entry is counted twice and the entries written
//! while the server was down are.

mod common;

use common::{rec_action, wait_until, Srv};

#[allow(dead_code)]
#[path = "../../f2b-journal/tests/it/util.rs"]
mod util;

use util::{now_usec, write_journal, Ent, LiveWriter};

const FILTER: &str = "[Definition]\nfailregex = : auth failure from <HOST>$\n\
                      journalmatch = _SYSTEMD_UNIT=app.service\n";

fn fails(t: u64, unit: &str, ip: &str, n: usize) -> Vec<Ent> {
    (0..n as u64)
        .map(|i| Ent::syslog(t + i, unit, &format!("srv app[42]: auth failure from {ip}")))
        .collect()
}

fn found(s: &Srv, ip: &str) -> usize {
    s.log().matches(&format!("Found {ip} ")).count()
}

#[test]
fn journal_jail_catch_up_live_and_exact_resume() {
    let jail = "[j]\nenabled = true\nbackend = systemd[journalpath={dir}/journal]\nfilter = app\n\
                maxretry = 3\nfindtime = 1h\nbantime = 1h\naction = rec[name=j]\nignoreself = false\n";
    let rec = rec_action("actions.txt");
    let s = Srv::new(
        jail,
        &[("filter.d/app.conf", FILTER), ("action.d/rec.conf", &rec)],
    );
    let jdir = s.file("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    let jfile = jdir.join("system.journal");
    let now = now_usec();
    let hour = 3_600_000_000u64;
    let mut ents = fails(now - 2 * hour, "app.service", "192.0.2.1", 3); // older than findtime
    ents.extend(fails(now - hour / 2, "app.service", "192.0.2.2", 3)); // within findtime
    ents.extend(fails(now - hour / 2 + 10, "other.service", "192.0.2.3", 3)); // not matched
    write_journal(&jfile, &ents);

    let mut s = s.start(&[]);
    assert!(
        wait_until(10.0, || s.banned("j") == ["192.0.2.2"]),
        "catch-up ban; log:\n{}",
        s.log()
    );
    // live entries
    {
        let mut w = LiveWriter::start(&jfile);
        for e in fails(now_usec(), "app.service", "192.0.2.4", 3) {
            w.send(&e);
        }
        assert!(
            wait_until(10.0, || s.banned("j").contains(&"192.0.2.4".to_string())),
            "live ban; log:\n{}",
            s.log()
        );
    }
    assert_eq!(
        found(&s, "192.0.2.1"),
        0,
        "entry older than findtime counted"
    );
    assert_eq!(found(&s, "192.0.2.3"), 0, "journalmatch ignored");
    s.stop();

    // written while the server is down: counted after the restart, nothing before twice
    write_journal(&jfile, &fails(now_usec(), "app.service", "192.0.2.5", 3));
    let s = s.start(&[]);
    assert!(
        wait_until(10.0, || s.banned("j").contains(&"192.0.2.5".to_string())),
        "ban from entries written during downtime; log:\n{}",
        s.log()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    for ip in ["192.0.2.2", "192.0.2.4", "192.0.2.5"] {
        assert_eq!(
            found(&s, ip),
            3,
            "{ip} counted once per entry; log:\n{}",
            s.log()
        );
    }
    assert!(s.read("actions.txt").contains("ban 192.0.2.5 3600 3"));
}
