//! The daemon's life cycle (issue "The server"): SIGHUP reload, SIGTERM stop, SIGUSR1 log
//! reopen, sd_notify to `$NOTIFY_SOCKET`, and the seed-style jails (`[apache-whitelist]`,
//! `[thp-ssh]` with `filter = thpot`, `[recidive]` on f2b's own log with fail2ban's stock
//! recidive filter, read at test time from /etc/fail2ban).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{append, fail, pings, rec_action, wait_until, Srv, APP_FILTER};
use f2b_core::value::Value;

fn jail(name: &str, extra: &str) -> String {
    format!(
        "[{name}]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {{dir}}/{name}.log\n\
         action = rec[name={name}]\nignoreself = false\n{extra}\n"
    )
}

fn srv(jails: &str, env: &[(&str, &str)]) -> Srv {
    let rec = rec_action("actions.txt");
    Srv::new(
        jails,
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/rec.conf", &rec),
        ],
    )
    .start_via(&[], &[], env)
}

#[test]
fn sighup_reloads_and_keeps_bans() {
    let s = srv(&jail("a", "maxretry = 5\nbantime = 1h"), &[]);
    assert_eq!(s.ok(&["get", "a", "maxretry"]), Value::Int(5));
    assert_eq!(s.ok(&["set", "a", "banip", "203.0.113.50"]), Value::Int(1));
    fail(&s, "a.log", "203.0.113.51", 5);
    assert!(wait_until(5.0, || s.banned("a").len() == 2));
    std::fs::write(s.file("jail.local"), "[a]\nmaxretry = 2\n").unwrap();
    s.signal("HUP");
    assert!(
        wait_until(10.0, || s.ok(&["get", "a", "maxretry"]) == Value::Int(2)),
        "maxretry not reloaded; log:\n{}",
        s.log()
    );
    let mut b = s.banned("a");
    b.sort();
    assert_eq!(b, ["203.0.113.50", "203.0.113.51"], "bans lost on reload");
    // The reloaded value is in force.
    fail(&s, "a.log", "203.0.113.52", 2);
    assert!(
        wait_until(5.0, || s.banned("a").len() == 3),
        "no ban after 2 failures with maxretry 2; log:\n{}",
        s.log()
    );
    // A reload does not unban nor ban again. Actions run after the bans, in
    // order, on the jail's action worker: once the last ban's has run, every
    // earlier one has.
    assert!(
        wait_until(10.0, || s.read("actions.txt").contains("ban 203.0.113.52 ")),
        "the last ban's action did not run: {}",
        s.read("actions.txt")
    );
    let acts = s.read("actions.txt");
    assert_eq!(acts.matches("ban 203.0.113.51 ").count(), 1, "{acts}");
    assert!(!acts.contains("unban"), "{acts}");
    assert!(s.read("stderr.txt").is_empty(), "{}", s.read("stderr.txt"));
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = srv(&jail("a", "maxretry = 1"), &[]);
    fail(&s, "a.log", "203.0.113.60", 1);
    assert!(wait_until(5.0, || s.banned("a").len() == 1));
    assert!(s.file("f2b.sock").exists() && s.file("f2b.pid").exists());
    let pidfile = s.read("f2b.pid");
    assert_eq!(pidfile.trim(), s.pid().unwrap().to_string());
    s.signal("TERM");
    let st = s.wait_exit(15.0).expect("server did not exit on SIGTERM");
    assert!(st.success(), "exit status {st:?}");
    assert!(!s.file("f2b.sock").exists(), "socket left behind");
    assert!(!s.file("f2b.pid").exists(), "pidfile left behind");
    let log = s.log();
    assert!(log.contains("Exiting Fail2ban"), "{log}");
    assert!(log.contains("Jail 'a' stopped"), "{log}");
    // actionstop ran (it undoes the firewall), and the ban was flushed by it.
    assert!(
        s.read("actions.txt").contains("stop a"),
        "{}",
        s.read("actions.txt")
    );
}

#[test]
fn sigusr1_reopens_the_log_after_rename() {
    let s = srv(&jail("a", "maxretry = 1"), &[]);
    fail(&s, "a.log", "203.0.113.70", 1);
    assert!(wait_until(5.0, || s.log().contains("Ban 203.0.113.70")));
    std::fs::rename(s.file("f2b.log"), s.file("f2b.log.1")).unwrap();
    s.signal("USR1");
    assert!(
        wait_until(5.0, || s.file("f2b.log").exists()),
        "log not reopened"
    );
    fail(&s, "a.log", "203.0.113.71", 1);
    assert!(
        wait_until(5.0, || s.log().contains("Ban 203.0.113.71")),
        "new log:\n{}",
        s.log()
    );
    let old = s.read("f2b.log.1");
    assert!(old.contains("Ban 203.0.113.70"));
    assert!(
        !old.contains("203.0.113.71"),
        "still writing to the old file:\n{old}"
    );
    assert!(pings(&s));
}

/// Receives datagrams until one equals `want` (or the time is up).
fn expect_msg(sock: &UnixDatagram, want: &str, secs: u64) -> Vec<String> {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(secs) {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = m.lines().any(|l| l == want);
            got.push(m);
            if hit {
                return got;
            }
        }
    }
    panic!("no {want} from the server; got {got:?}")
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let mut s = srv(
        &jail("a", "maxretry = 1"),
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    expect_msg(&sock, "READY=1", 10);
    assert!(t0.elapsed() < Duration::from_secs(10));
    s.signal("HUP");
    let got = expect_msg(&sock, "RELOADING=1", 10);
    assert!(
        !got.iter().any(|m| m.contains("READY=1")),
        "READY before RELOADING: {got:?}"
    );
    expect_msg(&sock, "READY=1", 10);
    s.signal("TERM");
    expect_msg(&sock, "STOPPING=1", 10);
    assert!(s.wait_exit(15.0).is_some_and(|st| st.success()));
}

/// The seed-style jails, config text as an admin writes it.
#[test]
fn seed_style_jails_run() {
    let stock = std::path::Path::new("/etc/fail2ban/filter.d");
    let recidive = std::fs::read_to_string(stock.join("recidive.conf"))
        .expect("fail2ban's stock filter.d/recidive.conf is needed (apt-get install fail2ban)");
    let common_conf = std::fs::read_to_string(stock.join("common.conf"))
        .expect("fail2ban's stock filter.d/common.conf is needed (apt-get install fail2ban)");
    let jails = "[DEFAULT]\nbackend = auto\nignoreself = false\n\n\
        [apache-whitelist]\nenabled = true\nport = http,https\nfilter = apache-whitelist\n\
        logpath = {dir}/access.log\naction = rec[name=apache-whitelist]\n\
        maxretry = 1\nfindtime = 1\nbantime = 1\n\n\
        [thp-ssh]\nenabled = true\nfilter = thpot\nlogpath = {dir}/kern.log\n\
        action = rec[name=thp-ssh]\nmaxretry = 1\nbantime = 1h\n\n\
        [recidive]\nenabled = true\nfilter = recidive\nlogpath = {dir}/f2b.log\n\
        action = rec[name=recidive]\nbantime = 1w\nfindtime = 1d\nmaxretry = 2\n";
    let apache = "[Definition]\nfailregex = ^<HOST> -.*\"(GET|POST) /(?!whitelisted/)\\S* HTTP/[\\d.]+\" 403\n";
    let thpot = "[Definition]\nfailregex = SRC=<HOST>\n";
    let rec = rec_action("actions.txt");
    let s = Srv::new(
        jails,
        &[
            ("filter.d/apache-whitelist.conf", apache),
            ("filter.d/thpot.conf", thpot),
            ("filter.d/recidive.conf", &recidive),
            ("filter.d/common.conf", &common_conf),
            ("action.d/rec.conf", &rec),
        ],
    );
    std::fs::write(s.file("f2b.log"), "").unwrap();
    let s = s.start_via(&[], &[], &[]);
    let mut j = s.jails();
    j.sort();
    assert_eq!(
        j,
        ["apache-whitelist", "recidive", "thp-ssh"],
        "{}",
        s.log()
    );
    let access = |ip: &str| {
        let t = chrono::Local::now().format("%d/%b/%Y:%H:%M:%S %z");
        format!("{ip} - - [{t}] \"GET /admin/login.php HTTP/1.1\" 403 199 \"-\" \"curl/8\"")
    };
    // apache-whitelist: one 403 bans, for one second.
    append(&s.file("access.log"), &[access("198.51.100.200")]);
    assert!(
        wait_until(5.0, || s
            .read("actions.txt")
            .contains("ban 198.51.100.200 1 ")),
        "apache-whitelist did not ban; log:\n{}",
        s.log()
    );
    assert!(
        wait_until(5.0, || s
            .read("actions.txt")
            .contains("unban 198.51.100.200")),
        "no unban after 1 s; log:\n{}",
        s.log()
    );
    // thp-ssh: kernel iptables LOG lines.
    let kern = |ip: &str| {
        let t = chrono::Local::now().format("%b %e %H:%M:%S");
        format!(
            "{t} honeypot kernel: [123456.789012] THP-SSH: IN=eth0 OUT= \
             MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={ip} DST=192.0.2.1 LEN=60 \
             TOS=0x00 PREC=0x00 TTL=52 ID=4242 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 \
             RES=0x00 SYN URGP=0"
        )
    };
    append(&s.file("kern.log"), &[kern("203.0.113.80")]);
    assert!(
        wait_until(5.0, || s.banned("thp-ssh") == ["203.0.113.80"]),
        "thp-ssh did not ban; log:\n{}",
        s.log()
    );
    // recidive: the second Ban of 198.51.100.200 in f2b's own log bans it for a week.
    append(&s.file("access.log"), &[access("198.51.100.200")]);
    assert!(
        wait_until(8.0, || s.banned("recidive") == ["198.51.100.200"]),
        "recidive did not ban; log:\n{}",
        s.log()
    );
    // The ban action runs after the ban is listed (it is queued once the ban is stored).
    assert!(wait_until(5.0, || s
        .read("actions.txt")
        .contains(&format!("ban 198.51.100.200 {} 2", 7 * 24 * 3600))));
    // recidive's own Ban line does not count for itself.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.log().matches("[recidive] Found 198.51.100.200").count(),
        2,
        "{}",
        s.log()
    );
}

#[test]
fn sighup_with_an_unparsable_config_keeps_the_running_one() {
    let mut s = srv(&jail("a", "maxretry = 1\nbantime = 1h"), &[]);
    std::fs::write(s.file("jail.local"), "[a\nmaxretry = 2\n").unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.alive(), "server died on a bad reload");
    assert!(pings(&s));
    assert_eq!(s.jails(), ["a"], "log:\n{}", s.log());
    assert_eq!(s.ok(&["get", "a", "maxretry"]), Value::Int(1));
    fail(&s, "a.log", "203.0.113.90", 1);
    assert!(
        wait_until(5.0, || s.banned("a") == ["203.0.113.90"]),
        "jail a stopped banning after a failed reload; log:\n{}",
        s.log()
    );
    // Fixed config, next HUP applies it.
    std::fs::write(s.file("jail.local"), "[a]\nmaxretry = 2\n").unwrap();
    s.signal("HUP");
    assert!(wait_until(10.0, || s.ok(&["get", "a", "maxretry"]) == Value::Int(2)));
    assert_eq!(s.banned("a"), ["203.0.113.90"]);
}

#[test]
fn sighup_storm() {
    let mut s = srv(
        &format!(
            "{}{}",
            jail("a", "maxretry = 1\nbantime = 1h"),
            jail("b", "maxretry = 1\nbantime = 1h")
        ),
        &[],
    );
    fail(&s, "a.log", "203.0.113.100", 1);
    assert!(wait_until(5.0, || s.banned("a").len() == 1));
    for _ in 0..20 {
        s.signal("HUP");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert!(s.alive(), "died; stderr:\n{}", s.read("stderr.txt"));
    assert!(wait_until(10.0, || pings(&s)));
    let mut j = s.jails();
    j.sort();
    assert_eq!(j, ["a", "b"]);
    fail(&s, "b.log", "203.0.113.101", 1);
    assert!(
        wait_until(10.0, || s.banned("b") == ["203.0.113.101"]),
        "log:\n{}",
        s.log()
    );
    assert_eq!(s.banned("a"), ["203.0.113.100"]);
    let acts = s.read("actions.txt");
    assert_eq!(acts.matches("ban 203.0.113.100 ").count(), 1, "{acts}");
    assert!(!acts.contains("unban"), "{acts}");
    assert!(!s.read("stderr.txt").contains("panicked"));
}

#[test]
fn sigterm_during_a_hanging_action() {
    let hang = "[Definition]\nactionban = sleep 100\nactionunban = true\n\n[Init]\ntimeout = 1\n";
    let rec = rec_action("actions.txt");
    let mut s = Srv::new(
        &format!(
            "{}{}",
            jail("a", "maxretry = 1"),
            "[h]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {dir}/h.log\n\
             action = hang\nmaxretry = 1\nignoreself = false\n"
        ),
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/rec.conf", &rec),
            ("action.d/hang.conf", hang),
        ],
    )
    .start_via(&[], &[], &[]);
    for i in 0..5 {
        fail(&s, "h.log", &format!("203.0.113.{}", 110 + i), 1);
    }
    assert!(wait_until(5.0, || s.banned("h").len() == 5));
    let t0 = Instant::now();
    s.signal("TERM");
    let st = s.wait_exit(20.0).expect("no exit on SIGTERM");
    assert!(st.success(), "{st:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "stop took {:?}",
        t0.elapsed()
    );
    assert!(s.log().contains("Exiting Fail2ban"), "{}", s.log());
}

/// The installed stock tree (copied at test time), Debian's `[sshd]` enabled, its log an
/// empty file, private runtime paths, `banaction = dummy` writing into the temp dir.
#[test]
fn stock_tree_sshd_jail_bans() {
    assert!(
        std::path::Path::new("/etc/fail2ban/jail.conf").exists(),
        "fail2ban's stock /etc/fail2ban is needed (apt-get install fail2ban)"
    );
    let s = Srv::new("", &[]);
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg("/etc/fail2ban/.")
        .arg(s.path())
        .status()
        .expect("cp");
    assert!(st.success());
    let d = s.path().display().to_string();
    let w = |name: &str, text: String| std::fs::write(s.file(name), text).unwrap();
    w(
        "fail2ban.local",
        format!(
            "[Definition]\nlogtarget = {d}/f2b.log\nsocket = {d}/f2b.sock\n\
             pidfile = {d}/f2b.pid\ndbfile = {d}/f2b.sqlite3\n"
        ),
    );
    w(
        "paths-overrides.local",
        format!("[DEFAULT]\nsyslog_authpriv = {d}/auth.log\n"),
    );
    w(
        "jail.local",
        "[DEFAULT]\nbanaction = dummy\nbanaction_allports = dummy\nignoreself = false\n"
            .to_string(),
    );
    w(
        "action.d/dummy.local",
        format!("[Init]\ntarget = {d}/dummy.txt\n"),
    );
    w("auth.log", String::new());
    let s = s.start_via(&[], &[], &[]);
    assert!(
        wait_until(10.0, || s.jails() == ["sshd"]),
        "jails {:?}; log:\n{}",
        s.jails(),
        s.log()
    );
    let t = chrono::Local::now().format("%b %e %H:%M:%S");
    let lines: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "{t} host sshd[{}]: Failed password for invalid user admin from 203.0.113.200 \
                 port {} ssh2",
                4000 + i,
                50000 + i
            )
        })
        .collect();
    append(&s.file("auth.log"), &lines);
    assert!(
        wait_until(10.0, || s.banned("sshd") == ["203.0.113.200"]),
        "stock sshd jail did not ban; log:\n{}",
        s.log()
    );
    assert!(wait_until(5.0, || s
        .read("dummy.txt")
        .contains("203.0.113.200")));
}
