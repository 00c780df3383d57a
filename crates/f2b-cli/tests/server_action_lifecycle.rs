//! Action life cycle beyond ban/unban (issue "The server", action.d semantics): what a
//! reload does to the actions (`actionreload`, dropped actions flushed and stopped,
//! `--unban` without `--restart`) and the consistency check with repair and reban when
//! an address shows up again long after its ban. Real `f2b server` processes, shell
//! actions that record what they were asked to do; no firewall.

mod common;

use std::process::{Command, Stdio};

use common::{append, f2b, fail, line, now, wait_until, Srv, APP_FILTER};
use f2b_core::value::Value;

/// A recording action with `actionreload`; `file` is where it writes.
fn rec(file: &str) -> String {
    format!(
        "[Definition]\nactionstart = echo start <name> >> {{dir}}/{file}\n\
         actionstop = echo stop <name> >> {{dir}}/{file}\n\
         actionreload = echo reload <name> >> {{dir}}/{file}\n\
         actionban = echo ban <ip> >> {{dir}}/{file}\n\
         actionunban = echo unban <ip> >> {{dir}}/{file}\n\n[Init]\nname = default\n"
    )
}

fn jail_conf(actions: &str) -> String {
    format!(
        "[a]\nenabled = true\nbackend = auto\nfilter = app\nlogpath = {{dir}}/a.log\n\
         maxretry = 1\nfindtime = 1h\nbantime = 1h\nignoreself = false\naction = {actions}\n"
    )
}

/// `f2b -c DIR <args>` (the client reads the configuration, as for `reload`).
fn client(s: &Srv, args: &[&str]) -> String {
    let out = Command::new(f2b())
        .arg("-c")
        .arg(s.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run f2b client");
    assert!(
        out.status.success(),
        "f2b {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_jails(s: &Srv, actions: &str) {
    let text = jail_conf(actions).replace("{dir}", &s.path().display().to_string());
    std::fs::write(s.file("jail.conf"), text).unwrap();
}

#[test]
fn reload_reloads_kept_actions_retires_dropped_ones_and_unbans_on_request() {
    let s = Srv::new(
        &jail_conf("rec[name=a]\n         rec2[name=a]"),
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/rec.conf", &rec("rec.txt")),
            ("action.d/rec2.conf", &rec("rec2.txt")),
        ],
    )
    .start(&[]);
    let ip = "198.51.100.21";
    fail(&s, "a.log", ip, 1);
    assert!(
        wait_until(5.0, || s.read("rec.txt").contains(&format!("ban {ip}"))
            && s.read("rec2.txt").contains(&format!("ban {ip}"))),
        "not banned by both actions; log:\n{}",
        s.log()
    );

    // Reload with rec2 gone: rec2 unbans what it banned and stops; rec is reloaded and
    // keeps the ban.
    write_jails(&s, "rec[name=a]");
    client(&s, &["reload"]);
    assert!(
        wait_until(5.0, || s.read("rec2.txt").contains("stop a")),
        "dropped action not stopped; rec2.txt:\n{}\nlog:\n{}",
        s.read("rec2.txt"),
        s.log()
    );
    let rec2 = s.read("rec2.txt");
    let unban = rec2.find(&format!("unban {ip}"));
    assert!(
        unban.is_some_and(|u| Some(u) < rec2.find("stop a")),
        "dropped action did not unban before stopping:\n{rec2}"
    );
    assert!(
        wait_until(5.0, || s.read("rec.txt").contains("reload a")),
        "actionreload of the kept action did not run; rec.txt:\n{}",
        s.read("rec.txt")
    );
    assert!(!s.read("rec.txt").contains("unban"), "kept action unbanned");
    assert_eq!(s.banned("a"), [ip]);

    // `reload --unban` without `--restart`: fail2ban unbans everything first.
    client(&s, &["reload", "--unban"]);
    assert!(
        wait_until(5.0, || s.read("rec.txt").contains(&format!("unban {ip}"))),
        "reload --unban did not unban; rec.txt:\n{}",
        s.read("rec.txt")
    );
    assert!(s.banned("a").is_empty());
    // The jail was not restarted: no second start of its action.
    assert_eq!(s.read("rec.txt").matches("start a").count(), 1);
}

#[test]
fn failure_long_after_ban_checks_repairs_and_rebans() {
    // `fw-up` stands for the firewall state the action keeps; losing it (someone flushed
    // the ruleset) fails `actioncheck`.
    let chk = "[Definition]\nactionstart = touch {dir}/fw-up && echo start >> {dir}/chk.txt\n\
               actionstop = echo stop >> {dir}/chk.txt\n\
               actioncheck = test -e {dir}/fw-up\n\
               actionrepair = touch {dir}/fw-up && echo repair >> {dir}/chk.txt\n\
               actionban = echo ban <ip> >> {dir}/chk.txt\n\
               actionreban = echo reban <ip> >> {dir}/chk.txt\n\
               actionunban = echo unban <ip> >> {dir}/chk.txt\n";
    let s = Srv::new(
        &jail_conf("chk"),
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/chk.conf", chk),
        ],
    )
    .start(&[]);
    let ip = "198.51.100.22";
    let t = now();
    append(
        &s.file("a.log"),
        &[line(t, &format!("auth failure from {ip}"))],
    );
    assert!(
        wait_until(5.0, || s.read("chk.txt").contains(&format!("ban {ip}"))),
        "not banned; log:\n{}",
        s.log()
    );

    // A second after the ban (< 3 s): "already banned" (DEBUG) without any check.
    append(
        &s.file("a.log"),
        &[line(t + 1.0, &format!("auth failure from {ip}"))],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::remove_file(s.file("fw-up")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !s.read("chk.txt").contains("repair"),
        "checked within 3 s of the ban"
    );

    // More than 3 s after the ban (failure times past now are taken as now, so the
    // test waits): the invariant check fails, the repair runs, and the ticket (banned
    // in the epoch before the repair) is banned again with actionreban.
    let wait = t + 3.5 - now();
    if wait > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(wait));
    }
    fail(&s, "a.log", ip, 1);
    assert!(
        wait_until(5.0, || s.read("chk.txt").contains(&format!("reban {ip}"))),
        "no reban after the repair; chk.txt:\n{}\nlog:\n{}",
        s.read("chk.txt"),
        s.log()
    );
    let chk_txt = s.read("chk.txt");
    assert!(chk_txt.find("repair") < chk_txt.find("reban"), "{chk_txt}");
    assert!(
        s.log().contains(&format!("[a] Reban {ip}, action 'chk'")),
        "no Reban line; log:\n{}",
        s.log()
    );
    // Once rebanned, a later failure is just "already banned" again.
    let before = s.read("chk.txt");
    fail(&s, "a.log", ip, 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.read("chk.txt"), before);
}

#[test]
fn idle_jail_keeps_its_lines_and_bans_for_later() {
    let s = Srv::new(
        &jail_conf("rec[name=a]").replace("bantime = 1h", "bantime = 4"),
        &[
            ("filter.d/app.conf", APP_FILTER),
            ("action.d/rec.conf", &rec("rec.txt")),
        ],
    )
    .start(&[]);
    // A ban that ends while the jail is idle.
    let early = "198.51.100.31";
    let t0 = now();
    append(
        &s.file("a.log"),
        &[line(t0, &format!("auth failure from {early}"))],
    );
    assert!(wait_until(5.0, || s.banned("a") == [early]));
    assert_eq!(s.ok(&["set", "a", "idle", "on"]), Value::Bool(true));

    // Idle: a failure waits, and the overdue ban does not end.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let late = "198.51.100.32";
    fail(&s, "a.log", late, 1);
    let wait = t0 + 5.0 - now();
    std::thread::sleep(std::time::Duration::from_secs_f64(wait.max(0.0)));
    assert_eq!(s.banned("a"), [early], "idle jail acted; log:\n{}", s.log());
    assert!(!s.read("rec.txt").contains(&format!("ban {late}")));
    assert!(!s.read("rec.txt").contains("unban"));

    // Leaving idle: the waiting line bans (its ban is still running), the overdue one ends.
    assert_eq!(s.ok(&["set", "a", "idle", "off"]), Value::Bool(false));
    assert!(
        wait_until(3.0, || s.read("rec.txt").contains(&format!("ban {late}"))
            && s.read("rec.txt").contains(&format!("unban {early}"))),
        "after idle off; rec.txt:\n{}\nlog:\n{}",
        s.read("rec.txt"),
        s.log()
    );
}
