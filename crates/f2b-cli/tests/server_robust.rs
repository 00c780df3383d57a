//! Robustness of the daemon (issue "The server", acceptance): hostile log files, failing
//! and hanging actions, a full disk under the log target, broken jails. After each the
//! server must still answer `ping`, must not have panicked, and a healthy jail must still
//! ban within a few seconds.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{append, fail, line, now, pings, rec_action, wait_until, Srv, APP_FILTER};

fn jail(name: &str, extra: &str) -> String {
    let mut s = format!(
        "[{name}]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {{dir}}/{name}.log\n{extra}\n"
    );
    if !extra.contains("action =") {
        s.push_str(&format!("action = rec[name={name}]\n"));
    }
    s.push_str("ignoreself = false\n");
    s
}

/// The healthy reference jail every test carries.
fn good() -> String {
    jail("good", "maxretry = 1\nbantime = 1h")
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Asserts the server is alive, answers `ping`, did not panic, and jail `good` bans `ip`.
fn assert_healthy(s: &mut Srv, ip: &str) {
    assert!(s.alive(), "server died; stderr:\n{}", s.read("stderr.txt"));
    assert!(pings(s), "no pong; log:\n{}", s.log());
    fail(s, "good.log", ip, 1);
    assert!(
        wait_until(5.0, || s.banned("good").iter().any(|b| b == ip)),
        "jail good did not ban {ip}; log:\n{}\nstderr:\n{}",
        s.log(),
        s.read("stderr.txt")
    );
    let err = s.read("stderr.txt");
    assert!(!err.contains("panicked"), "server panicked:\n{err}");
    assert!(!s.log().contains("panicked"), "panic in log:\n{}", s.log());
}

fn base_files<'a>(rec: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("filter.d/app.conf", APP_FILTER),
        ("action.d/rec.conf", rec),
    ];
    v.extend_from_slice(more);
    v
}

/// The wrapper that takes away root's permission override, so that mode bits bind.
const NO_DAC: [&str; 3] = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--",
];

#[test]
fn unreadable_log_files_do_not_stop_the_server() {
    let rec = rec_action("actions.txt");
    let bad = "[locked]\nenabled = true\nbackend = auto\nfilter = app\n\
               logpath = {dir}/locked/x.log\nmaxretry = 1\naction = rec[name=locked]\nignoreself = false\n\n\
               [secret]\nenabled = true\nbackend = auto\nfilter = app\n\
               logpath = {dir}/secret.log\nmaxretry = 1\naction = rec[name=secret]\nignoreself = false\n";
    let s = Srv::new(
        &good(),
        &base_files(
            &rec,
            &[
                ("jail.d/bad.conf", bad),
                ("locked/x.log", ""),
                ("secret.log", ""),
            ],
        ),
    );
    // A file owned by another uid with mode 000, and a directory without x.
    let secret = s.file("secret.log");
    std::os::unix::fs::chown(&secret, Some(65534), Some(65534)).unwrap();
    chmod(&secret, 0o000);
    chmod(&s.file("locked"), 0o600);
    // The wrapper really takes the override away (else this test would prove nothing).
    let probe = std::process::Command::new(NO_DAC[0])
        .args(&NO_DAC[1..])
        .arg("cat")
        .arg(&secret)
        .output()
        .expect("setpriv (util-linux) is needed");
    assert!(
        !probe.status.success(),
        "setpriv did not drop CAP_DAC_OVERRIDE; cannot test unreadable files"
    );
    let mut s = s.start_via(&NO_DAC, &[], &[]);
    assert_healthy(&mut s, "198.51.100.1");
    // Lines written to the unreadable files meanwhile.
    fail(&s, "secret.log", "203.0.113.1", 1);
    fail(&s, "locked/x.log", "203.0.113.2", 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_healthy(&mut s, "198.51.100.2");
    // A file the server is reading becomes unreadable (and readable again).
    chmod(&s.file("good.log"), 0o000);
    std::os::unix::fs::chown(s.file("good.log"), Some(65534), Some(65534)).unwrap();
    fail(&s, "good.log", "198.51.100.3", 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(pings(&s));
    std::os::unix::fs::chown(s.file("good.log"), Some(0), Some(0)).unwrap();
    chmod(&s.file("good.log"), 0o644);
    assert_healthy(&mut s, "198.51.100.4");
    assert!(s.banned("good").contains(&"198.51.100.3".to_owned()));
    // The jail whose only file sat behind a directory without `x` did not start, and
    // says why (fail2ban 1.0.2 refuses its whole start in that case).
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains("ERROR")
                && l.contains("Have not found any log file for locked jail")),
        "{}",
        s.log()
    );
    // The mode-000 file becomes readable: its jail picks it up (f2b retries unreadable
    // files on a slower schedule, about every 10 s).
    std::os::unix::fs::chown(&secret, Some(0), Some(0)).unwrap();
    chmod(&secret, 0o644);
    fail(&s, "secret.log", "203.0.113.3", 1);
    assert!(
        wait_until(25.0, || s
            .banned("secret")
            .contains(&"203.0.113.3".to_owned())),
        "jail secret did not recover: {:?}; log:\n{}",
        s.banned("secret"),
        s.log()
    );
    assert_healthy(&mut s, "198.51.100.5");
}

#[test]
fn vanishing_files_are_picked_up_again() {
    let rec = rec_action("actions.txt");
    let jails = format!("{}{}", good(), jail("v", "maxretry = 1"));
    let mut s = Srv::new(&jails, &base_files(&rec, &[])).start_via(&[], &[], &[]);
    fail(&s, "v.log", "203.0.113.10", 1);
    assert!(wait_until(5.0, || s.banned("v") == ["203.0.113.10"]));
    for (round, ip) in ["203.0.113.11", "203.0.113.12"].iter().enumerate() {
        std::fs::remove_file(s.file("v.log")).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert_healthy(&mut s, &format!("198.51.100.{}", 10 + round));
        fail(&s, "v.log", ip, 1);
        assert!(
            wait_until(8.0, || s.banned("v").iter().any(|b| b == ip)),
            "round {round}: recreated file not read; log:\n{}",
            s.log()
        );
    }
}

#[test]
fn binary_garbage_and_nul_bytes() {
    let rec = rec_action("actions.txt");
    let jails = format!("{}{}", good(), jail("g", "maxretry = 1"));
    let mut s = Srv::new(&jails, &base_files(&rec, &[])).start_via(&[], &[], &[]);
    // 256 KiB of pseudo-random bytes (NULs, invalid UTF-8, lone CRs) then valid lines.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut junk: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    junk.extend_from_slice(b"\0\0\0\n\xff\xfe\xfd\r\n");
    let t = now();
    junk.extend_from_slice(line(t, "auth failure from 198.51.100.80").as_bytes());
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(line(t, "auth failure from 198.51.100.81 user ").as_bytes());
    junk.extend_from_slice(b"\xff\xfe\0nul\0name\n\0\0\0\0");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.file("g.log"))
            .unwrap();
        f.write_all(&junk).unwrap();
    }
    // The NULs after the last newline are an unterminated line; a valid line follows
    // once the writer finishes it.
    append(&s.file("g.log"), &[String::new()]);
    fail(&s, "g.log", "198.51.100.82", 1);
    assert!(
        wait_until(8.0, || s.banned("g").len() == 3),
        "banned {:?}; log:\n{}",
        s.banned("g"),
        s.log()
    );
    let mut b = s.banned("g");
    b.sort();
    assert_eq!(b, ["198.51.100.80", "198.51.100.81", "198.51.100.82"]);
    assert_healthy(&mut s, "198.51.100.83");
}

#[test]
fn ten_mib_lines() {
    let rec = rec_action("actions.txt");
    let jails = format!("{}{}", good(), jail("h", "maxretry = 1"));
    let mut s = Srv::new(&jails, &base_files(&rec, &[])).start_via(&[], &[], &[]);
    let big = 10 * 1024 * 1024;
    let t = now();
    // A plain 10 MiB line, a 10 MiB line that starts like a failure, then one written in
    // two halves (the first half without its newline), then a real failure.
    let plain = "x".repeat(big);
    let near = format!("{} auth failure from {}", t, "1".repeat(big));
    append(&s.file("h.log"), &[plain, near]);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.file("h.log"))
            .unwrap();
        f.write_all(format!("{t} ").as_bytes()).unwrap();
        f.write_all("y".repeat(big / 2).as_bytes()).unwrap();
        f.flush().unwrap();
        // The server stays responsive while it chews on that.
        let t0 = Instant::now();
        assert!(pings(&s));
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "ping took {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
        f.write_all("y".repeat(big / 2).as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    fail(&s, "h.log", "198.51.100.90", 1);
    let t0 = Instant::now();
    assert!(pings(&s));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "ping took {:?}",
        t0.elapsed()
    );
    assert!(
        wait_until(15.0, || s.banned("h") == ["198.51.100.90"]),
        "banned {:?}; log:\n{}",
        s.banned("h"),
        s.log()
    );
    assert_healthy(&mut s, "198.51.100.91");
}

/// Command lines of live `sleep` processes whose environment carries `F2B_ROBUST_MARK=<mark>`
/// (the server passes its environment on to its commands, so orphans are found too).
fn sleeps_marked(mark: &str) -> Vec<String> {
    let want = format!("F2B_ROBUST_MARK={mark}");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains("sleep") {
                out.push(c);
            }
        }
    }
    out
}

#[test]
fn failing_and_hanging_actions_block_nobody() {
    let rec = rec_action("actions.txt");
    let failing = "[Definition]\nactionban = echo fail <ip> >> {dir}/failing.txt; exit 1\nactionunban = exit 1\n";
    let hang = "[Definition]\nactionban = echo try <ip> >> {dir}/tries.txt; sleep 100; echo late <ip> >> {dir}/late.txt\n\
                actionunban = true\n\n[Init]\ntimeout = 1\n";
    let hangstart = "[Definition]\nactionstart = sleep 100; echo late >> {dir}/late.txt\n\
                     actionban = echo ban <ip> >> {dir}/hs.txt\nactionunban = true\n\n[Init]\ntimeout = 1\n";
    let jails = format!(
        "{}{}{}{}",
        good(),
        jail("failing", "maxretry = 1\naction = failing"),
        jail("hanging", "maxretry = 1\naction = hang"),
        jail("hangstart", "maxretry = 1\naction = hangstart"),
    );
    let s = Srv::new(
        &jails,
        &base_files(
            &rec,
            &[
                ("action.d/failing.conf", failing),
                ("action.d/hang.conf", hang),
                ("action.d/hangstart.conf", hangstart),
            ],
        ),
    );
    let mark = s.path().display().to_string();
    let t_start = Instant::now();
    let mut s = s.start_via(&[], &[], &[("F2B_ROBUST_MARK", &mark)]);
    assert!(
        t_start.elapsed() < Duration::from_secs(10),
        "start took {:?}",
        t_start.elapsed()
    );
    for i in 0..3 {
        fail(&s, "failing.log", &format!("203.0.113.{}", 20 + i), 1);
        fail(&s, "hanging.log", &format!("203.0.113.{}", 30 + i), 1);
    }
    fail(&s, "hangstart.log", "203.0.113.40", 1);
    // While three 1-second timeouts are pending in `hanging`, `good` bans at once.
    let t0 = Instant::now();
    assert_healthy(&mut s, "198.51.100.100");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "good waited {:?}",
        t0.elapsed()
    );
    // The failing action ran for every ban (the jail is not stuck after the first error),
    // twice each: fail2ban retries a failed command once (action.py `_processCmd`).
    assert!(
        wait_until(5.0, || s.read("failing.txt").lines().count() == 6),
        "failing.txt:\n{}\nlog:\n{}",
        s.read("failing.txt"),
        s.log()
    );
    // The hanging jail gets through all three (each killed after its timeout; fail2ban
    // retries a timed-out command once too, so up to 6 s).
    assert!(
        wait_until(15.0, || s.read("tries.txt").contains("try 203.0.113.32")),
        "hanging jail stuck; tries:\n{}\nlog:\n{}",
        s.read("tries.txt"),
        s.log()
    );
    assert_eq!(s.banned("hanging").len(), 3);
    assert!(
        wait_until(5.0, || sleeps_marked(&mark).is_empty()),
        "timed-out commands still running: {:?}",
        sleeps_marked(&mark)
    );
    assert!(!s.file("late.txt").exists(), "a timed-out command went on");
    assert!(wait_until(5.0, || s.banned("hangstart") == ["203.0.113.40"]));
    assert_healthy(&mut s, "198.51.100.101");
    let t0 = Instant::now();
    s.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn log_target_on_dev_full() {
    let rec = rec_action("actions.txt");
    let mut s = Srv::new(&good(), &base_files(&rec, &[])).start_via(
        &[],
        &["--logtarget", "/dev/full"],
        &[],
    );
    for i in 0..20 {
        assert_healthy(&mut s, &format!("198.51.100.{}", 120 + i));
    }
    assert_eq!(s.banned("good").len(), 20);
}

#[test]
fn log_target_on_a_full_tmpfs() {
    let probe = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .expect("unshare (util-linux) is needed");
    assert!(
        probe.success(),
        "unshare -m failed: need root to mount a private tmpfs"
    );
    let rec = rec_action("actions.txt");
    let s = Srv::new(&good(), &base_files(&rec, &[("tiny/.keep", "")]));
    let tiny = s.file("tiny").display().to_string();
    let target = format!("{tiny}/f2b.log");
    let mut s = s.start_via(
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o size=8k tmpfs \"$0\" && exec \"$@\"",
            &tiny,
        ],
        &["--logtarget", &target],
        &[],
    );
    // ~300 bans write far more than 8 KiB of Found/Ban lines.
    let t = now();
    let lines: Vec<String> = (0..300)
        .map(|i| {
            line(
                t,
                &format!("auth failure from 10.7.{}.{}", i / 200, 1 + i % 200),
            )
        })
        .collect();
    append(&s.file("good.log"), &lines);
    assert!(
        wait_until(15.0, || s.read("actions.txt").matches("ban 10.7.").count()
            == 300),
        "{} of 300 ban actions ran; stderr:\n{}",
        s.read("actions.txt").matches("ban 10.7.").count(),
        s.read("stderr.txt")
    );
    assert_healthy(&mut s, "198.51.100.150");
    assert_eq!(s.banned("good").len(), 301);
    // Space comes back (logrotate truncates the file): logging resumes.
    let pid = s.pid().unwrap().to_string();
    let ns = |args: &[&str]| {
        std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "--"])
            .args(args)
            .output()
            .expect("nsenter (util-linux)")
    };
    assert!(ns(&["truncate", "-s", "0", &target]).status.success());
    assert_healthy(&mut s, "198.51.100.151");
    assert!(
        wait_until(5.0, || String::from_utf8_lossy(
            &ns(&["cat", &target]).stdout
        )
        .contains("Ban 198.51.100.151")),
        "logging did not resume after the disk had room again:\n{}",
        String::from_utf8_lossy(&ns(&["cat", &target]).stdout)
    );
}

#[test]
fn broken_jails_leave_the_others_running() {
    let rec = rec_action("actions.txt");
    let broken = "[badre]\nenabled = true\nfilter = badre\nlogpath = {dir}/good.log\n\n\
                  [nofilter]\nenabled = true\nfilter = does-not-exist\nlogpath = {dir}/good.log\n\n\
                  [badint]\nenabled = true\nfilter = app\nmaxretry = many\nlogpath = {dir}/good.log\n\n\
                  [nolog]\nenabled = true\nfilter = app\nlogpath = {dir}/missing/*.log\n\n\
                  [noaction]\nenabled = true\nfilter = app\naction = does-not-exist\nlogpath = {dir}/good.log\n";
    let badre = "[Definition]\nfailregex = ^auth (unclosed <HOST>\n";
    let jails = format!("{}{}", good(), jail("other", "maxretry = 1"));
    let mut s = Srv::new(
        &jails,
        &base_files(
            &rec,
            &[
                ("jail.d/broken.conf", broken),
                ("filter.d/badre.conf", badre),
            ],
        ),
    )
    .start_via(&[], &[], &[]);
    // `badint` runs with the default maxretry (its bad value is reported); `badre` and
    // `nolog` fail to start and must not be listed as if they were running.
    let mut j = s.jails();
    j.sort();
    assert_eq!(j, ["badint", "good", "other"], "log:\n{}", s.log());
    let log = s.log();
    for name in ["badre", "nofilter", "badint", "nolog", "noaction"] {
        assert!(
            log.lines().any(|l| l.contains("ERROR") && l.contains(name)),
            "no ERROR naming {name}:\n{log}"
        );
    }
    assert_healthy(&mut s, "198.51.100.160");
    fail(&s, "other.log", "198.51.100.161", 1);
    assert!(wait_until(5.0, || s.banned("other") == ["198.51.100.161"]));
}

#[test]
fn fifo_and_directory_as_log_files() {
    let rec = rec_action("actions.txt");
    let special = "[fifo]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {dir}/fifo.log\n\
                   maxretry = 1\naction = rec[name=fifo]\nignoreself = false\n\n\
                   [dir]\nenabled = true\nbackend = polling\nfilter = app\nlogpath = {dir}/dir.log\n\
                   maxretry = 1\naction = rec[name=dir]\nignoreself = false\n";
    let s = Srv::new(
        &good(),
        &base_files(
            &rec,
            &[("jail.d/special.conf", special), ("dir.log/.keep", "")],
        ),
    );
    let st = std::process::Command::new("mkfifo")
        .arg(s.file("fifo.log"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let mut s = s.start_via(&[], &[], &[]);
    assert_healthy(&mut s, "198.51.100.170");
    // A writer appears on the FIFO and goes away again.
    {
        use std::io::Write;
        let (tx, rx) = std::sync::mpsc::channel();
        let p = s.file("fifo.log");
        std::thread::spawn(move || {
            let r = std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|mut f| {
                    f.write_all(line(now(), "auth failure from 203.0.113.170\n").as_bytes())
                });
            let _ = tx.send(r.is_ok());
        });
        // The open blocks until the server reads; either way the server must stay healthy.
        let _ = rx.recv_timeout(Duration::from_secs(2));
    }
    assert_healthy(&mut s, "198.51.100.171");
    let t0 = Instant::now();
    s.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn descriptor_exhaustion() {
    let rec = rec_action("actions.txt");
    let many = "[many]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {dir}/many/*.log\n\
                maxretry = 1\naction = rec[name=many]\nignoreself = false\n";
    let names: Vec<String> = (0..150).map(|i| format!("many/f{i:03}.log")).collect();
    let mut files: Vec<(&str, &str)> = vec![("jail.d/many.conf", many)];
    files.extend(names.iter().map(|n| (n.as_str(), "")));
    let s = Srv::new(&good(), &base_files(&rec, &files));
    // 64 descriptors: fewer than the log files the jail wants open.
    let mut s = s.start_via(&["prlimit", "--nofile=64:64", "--"], &[], &[]);
    assert_healthy(&mut s, "198.51.100.180");
    // Many clients at once on top of it.
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let sock = s.file("f2b.sock");
            std::thread::spawn(move || std::os::unix::net::UnixStream::connect(sock).ok())
        })
        .collect();
    let conns: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(conns);
    assert!(wait_until(5.0, || pings(&s)), "no pong after fd pressure");
    assert_healthy(&mut s, "198.51.100.181");
    // Every file is followed (f2b-tail parks the least recently read ones to stay under
    // its open-file cap), and a failure in any of them bans: the first, the last, one
    // in the middle.
    for (i, f) in [(180, 149), (181, 0), (182, 75)] {
        let ip = format!("203.0.113.{i}");
        fail(&s, &format!("many/f{f:03}.log"), &ip, 1);
        assert!(
            wait_until(5.0, || s.banned("many").contains(&ip)),
            "jail many did not ban {ip} from f{f:03}.log; log:\n{}\nstderr:\n{}",
            s.log(),
            s.read("stderr.txt")
        );
    }
    assert!(
        !s.log().contains("Too many open files"),
        "descriptors ran out:\n{}",
        s.log()
    );
    assert!(s.alive());
    let t0 = Instant::now();
    s.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn control_socket_abuse() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let rec = rec_action("actions.txt");
    let mut s = Srv::new(&good(), &base_files(&rec, &[])).start_via(&[], &[], &[]);
    let sock = s.file("f2b.sock");
    // A client that sends half a command and then stalls, holding its connection.
    let mut stall = UnixStream::connect(&sock).unwrap();
    stall.write_all(b"\x80\x04\x95").unwrap();
    // Garbage terminated like a command, a bare terminator, an immediate hang-up.
    let mut x: u32 = 12345;
    let mut junk: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    junk.extend_from_slice(b"<F2B_END_COMMAND>");
    for payload in [&junk[..], b"<F2B_END_COMMAND>", b""] {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(payload);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
    }
    // Many connections opened and dropped at once.
    for _ in 0..200 {
        drop(UnixStream::connect(&sock));
    }
    let t0 = Instant::now();
    assert!(pings(&s), "no pong while a client stalls");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "ping took {:?}",
        t0.elapsed()
    );
    assert_healthy(&mut s, "198.51.100.190");
    drop(stall);
    assert_healthy(&mut s, "198.51.100.191");
}
