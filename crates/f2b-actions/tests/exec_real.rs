//! Actions running real shell processes: lifecycle order, timeouts, check +
//! repair, families, norestored, flush vs per-ticket unban, concurrency.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use f2b_actions::{
    ActionEnv, BanTicket, CommandAction, Executor, JailActions, LogLevel, RenderedCommand,
};

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

type Logs = Arc<Mutex<Vec<(LogLevel, String)>>>;

fn logging_env(now: f64) -> (Arc<ActionEnv>, Logs) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let l2 = logs.clone();
    let env = ActionEnv {
        log: Arc::new(move |lvl, _logger, msg| l2.lock().unwrap().push((lvl, msg.to_owned()))),
        ..(*common::env_with(Executor::new(), now)).clone()
    };
    (Arc::new(env), logs)
}

fn file_action(out: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let o = out.display().to_string();
    let mut v: Vec<(String, String)> = vec![
        ("actionstart".into(), format!("echo start <name> >> {o}")),
        ("actionstop".into(), format!("echo stop <name> >> {o}")),
        (
            "actionban".into(),
            format!("echo ban <name> <ip> <family> <failures> <bantime> >> {o}"),
        ),
        (
            "actionunban".into(),
            format!("echo unban <name> <ip> >> {o}"),
        ),
        ("name".into(), "J".into()),
    ];
    for (k, val) in extra {
        v.retain(|(kk, _)| kk != k);
        v.push((k.to_string(), val.to_string()));
    }
    v
}

fn ticket(id: &str) -> BanTicket {
    let mut t = BanTicket::new(id, 1_700_000_000.0);
    t.failures = 3;
    t
}

#[tokio::test(flavor = "current_thread")]
async fn lifecycle_order_with_per_ticket_unban() {
    let dir = common::TempDir::new("life");
    let out = dir.path().join("out");
    let env = common::env_with(Executor::new(), 1.0);
    let mut ja = JailActions::new("j", env);
    ja.add("a1", file_action(&out, &[("name", "A")])).unwrap();
    ja.add("a2", file_action(&out, &[("name", "B")])).unwrap();
    assert!(ja.start().await.is_empty());
    let t1 = ticket("192.0.2.1");
    let mut t2 = ticket("192.0.2.2");
    t2.bantime = Some(77);
    assert!(ja.ban(&t1).await.is_empty());
    assert!(ja.ban(&t2).await.is_empty());
    assert!(ja.unban(&t1).await.is_empty());
    // Stop: no actionflush, so each remaining ticket is unbanned, then the
    // actions stop in reverse order.
    assert!(ja.stop(&[t2.clone()]).await.is_empty());
    assert_eq!(
        read(&out),
        "start A\nstart B\n\
         ban A 192.0.2.1 inet4 3 600\nban B 192.0.2.1 inet4 3 600\n\
         ban A 192.0.2.2 inet4 3 77\nban B 192.0.2.2 inet4 3 77\n\
         unban A 192.0.2.1\nunban B 192.0.2.1\n\
         unban A 192.0.2.2\nunban B 192.0.2.2\n\
         stop B\nstop A\n"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn flush_replaces_per_ticket_unban_on_stop() {
    let dir = common::TempDir::new("flush");
    let out = dir.path().join("out");
    let o = out.display().to_string();
    let env = common::env_with(Executor::new(), 1.0);
    let mut ja = JailActions::new("j", env);
    let flush = format!("echo flush <name> >> {o}");
    ja.add(
        "f",
        file_action(&out, &[("name", "F"), ("actionflush", &flush)]),
    )
    .unwrap();
    ja.add("p", file_action(&out, &[("name", "P")])).unwrap();
    ja.start().await;
    let t = ticket("192.0.2.9");
    ja.ban(&t).await;
    ja.stop(std::slice::from_ref(&t)).await;
    assert_eq!(
        read(&out),
        "start F\nstart P\nban F 192.0.2.9 inet4 3 600\nban P 192.0.2.9 inet4 3 600\n\
         flush F\nunban P 192.0.2.9\nstop P\nstop F\n"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn start_on_demand_and_family_selection() {
    let dir = common::TempDir::new("fam");
    let out = dir.path().join("out");
    let o = out.display().to_string();
    let mut env = (*common::env_with(Executor::new(), 1.0)).clone();
    env.ipv6_allowed = true;
    let env = Arc::new(env);
    let props = vec![
        (
            "actionstart".to_string(),
            format!("echo start <fw> <family> >> {o}"),
        ),
        ("actionstop".to_string(), format!("echo stop <fw> >> {o}")),
        (
            "actionban".to_string(),
            format!("echo ban <fw> <ip> <blocktype> >> {o}"),
        ),
        (
            "actionunban".to_string(),
            format!("echo unban <fw> <ip> >> {o}"),
        ),
        ("fw".to_string(), "iptables".to_string()),
        ("fw?family=inet6".to_string(), "ip6tables".to_string()),
        ("blocktype".to_string(), "icmp-port-unreachable".to_string()),
        (
            "blocktype?family=inet6".to_string(),
            "icmp6-port-unreachable".to_string(),
        ),
    ];
    let mut a = CommandAction::new("j", "fam", props, env).unwrap();
    assert!(a.start_on_demand(), "conditional actions start on demand");
    a.start().await.unwrap();
    assert_eq!(read(&out), "", "nothing runs before the first ban");
    a.ban(&ticket("2001:db8::5")).await.unwrap();
    a.ban(&ticket("2001:db8::6")).await.unwrap();
    a.ban(&ticket("192.0.2.5")).await.unwrap();
    a.unban(&ticket("2001:db8::5")).await.unwrap();
    a.stop().await.unwrap();
    assert_eq!(
        read(&out),
        "start ip6tables inet6\nban ip6tables 2001:db8::5 icmp6-port-unreachable\n\
         ban ip6tables 2001:db8::6 icmp6-port-unreachable\n\
         start iptables inet4\nban iptables 192.0.2.5 icmp-port-unreachable\n\
         unban ip6tables 2001:db8::5\nstop ip6tables\nstop iptables\n"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn timeout_kills_the_whole_process_group() {
    let dir = common::TempDir::new("tmo");
    let pidf = dir.path().join("pid");
    let (env, logs) = logging_env(1.0);
    let ban = format!("sleep 100 & echo $! > {}; sleep 100", pidf.display());
    let mut a = CommandAction::new(
        "j",
        "slow",
        [("actionban", ban.as_str()), ("timeout", "1")],
        env,
    )
    .unwrap();
    let t0 = Instant::now();
    let r = a.ban(&ticket("192.0.2.1")).await;
    let el = t0.elapsed();
    assert!(r.is_err(), "a timed out ban is a failure");
    // Two attempts (fail2ban retries once), each killed after ~1 s.
    assert!(el < Duration::from_millis(2800), "took {el:?}");
    assert!(el >= Duration::from_millis(1900), "took {el:?}");
    let pid: i32 = read(&pidf).trim().parse().expect("grandchild pid");
    // The background grandchild was killed with its group.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "grandchild {pid} survived the timeout");
    let logs = logs.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(l, m)| *l == LogLevel::Error && m.contains("timed out after 1 seconds")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn executor_reports_exit_codes_and_output() {
    let ex = Executor::new();
    let o = ex
        .run(
            &RenderedCommand::plain("echo out; echo err >&2; exit 3"),
            Duration::from_secs(5),
            "j",
            "a",
        )
        .await
        .unwrap();
    assert_eq!(o.code, Some(3));
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
    assert!(!o.success());
    // Positional variables reach the script unchanged.
    let o = ex
        .run(
            &RenderedCommand {
                script: "f2bV_x=$0 \nprintf %s \"$f2bV_x\"".into(),
                args: vec!["$(id) `id` ;|&".into()],
            },
            Duration::from_secs(5),
            "j",
            "a",
        )
        .await
        .unwrap();
    assert_eq!(o.stdout, b"$(id) `id` ;|&");
    // A background child holding the pipes does not block the caller.
    let t0 = Instant::now();
    let o = ex
        .run(
            &RenderedCommand::plain("sleep 5 & echo x"),
            Duration::from_secs(5),
            "j",
            "a",
        )
        .await
        .unwrap();
    assert!(o.success());
    assert!(t0.elapsed() < Duration::from_secs(2));
}

/// Descriptors of this process that a child inherits (no `FD_CLOEXEC`),
/// beyond 0, 1 and 2: whatever the test runner itself leaks.
fn inheritable_fds() -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(0);
        if fd > 2 && flags & 0o2000000 == 0 {
            out.insert(fd);
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn commands_read_eof_on_stdin_and_inherit_no_descriptor_of_ours() {
    let ex = Executor::new();
    for _ in 0..3 {
        // Standard input is /dev/null (one descriptor opened once, duplicated
        // per spawn): reading gives EOF at once.
        let o = ex
            .run(
                &RenderedCommand::plain(
                    "if read x; then echo got; else echo eof; fi; \
                     readlink /proc/self/fd/0; ls -l /proc/self/fd/",
                ),
                Duration::from_secs(5),
                "j",
                "a",
            )
            .await
            .unwrap();
        assert!(o.success(), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("eof"), "{out}");
        assert_eq!(lines.next(), Some("/dev/null"), "{out}");
        // What `ls` sees open: 0, 1, 2, its own directory handle, and only
        // what the test runner leaks anyway; none of the executor's
        // descriptors (its /dev/null, the other commands' pipes).
        let allowed = inheritable_fds();
        for l in lines.filter(|l| l.contains(" -> ")) {
            let (left, target) = l.split_once(" -> ").unwrap();
            let fd: u32 = left.rsplit(' ').next().unwrap().parse().unwrap();
            if fd <= 2 || target.starts_with("/proc/") {
                continue;
            }
            assert!(allowed.contains(&fd), "fd {fd} -> {target} leaked: {out}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failing_check_runs_repair_then_retries() {
    let dir = common::TempDir::new("repair");
    let out = dir.path().join("out");
    let flag = dir.path().join("flag");
    let (o, f) = (out.display().to_string(), flag.display().to_string());
    let (env, logs) = logging_env(1.0);
    let mut a = CommandAction::new(
        "j",
        "r",
        [
            ("actionstart", format!("echo start >> {o}")),
            ("actionstop", format!("echo stop >> {o}")),
            ("actioncheck", format!("echo check >> {o}; test -e {f}")),
            ("actionrepair", format!("echo repair >> {o}; touch {f}")),
            ("actionban", format!("echo ban <ip> >> {o}; test -e {f}")),
            (
                "actionunban",
                format!("echo unban <ip> >> {o}; test -e {f}"),
            ),
        ],
        env.clone(),
    )
    .unwrap();
    a.start().await.unwrap();
    let epoch0 = env.jail_epoch.load(std::sync::atomic::Ordering::SeqCst);
    a.ban(&ticket("192.0.2.3")).await.unwrap();
    assert_eq!(
        read(&out),
        "start\nban 192.0.2.3\ncheck\nrepair\ncheck\nban 192.0.2.3\n"
    );
    assert!(a.ban_epoch() > epoch0, "a repair raises the ban epoch");
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| m == "Invariant check failed. Trying to restore a sane environment"));
    // Unban without actionrepair_on_unban: no repair, the unban fails.
    std::fs::remove_file(&flag).unwrap();
    std::fs::write(&out, "").unwrap();
    assert!(a.unban(&ticket("192.0.2.3")).await.is_err());
    assert_eq!(read(&out), "unban 192.0.2.3\ncheck\n");
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| m == "Invariant check failed. Unban is impossible."));
}

#[tokio::test(flavor = "current_thread")]
async fn failing_check_without_repair_restarts_the_action() {
    let dir = common::TempDir::new("restart");
    let out = dir.path().join("out");
    let flag = dir.path().join("flag");
    let (o, f) = (out.display().to_string(), flag.display().to_string());
    let env = common::env_with(Executor::new(), 1.0);
    let mut a = CommandAction::new(
        "j",
        "r",
        [
            (
                "actionstart",
                format!("echo start <family> >> {o}; touch {f}"),
            ),
            (
                "actionstop",
                format!("echo stop <family> >> {o}; rm -f {f}"),
            ),
            ("actioncheck", format!("echo check >> {o}; test -e {f}")),
            ("actionban", format!("echo ban <ip> >> {o}; test -e {f}")),
        ],
        env,
    )
    .unwrap();
    a.start().await.unwrap();
    std::fs::remove_file(&flag).unwrap();
    a.ban(&ticket("192.0.2.4")).await.unwrap();
    assert_eq!(
        read(&out),
        // As in fail2ban: the family `inet4` was never started (the action
        // started for the family-less ""), so there is nothing to stop and
        // the restart is a start for `inet4`.
        "start\nban 192.0.2.4\ncheck\nstart inet4\ncheck\nban 192.0.2.4\n"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn norestored_reban_prolong() {
    let dir = common::TempDir::new("norest");
    let out = dir.path().join("out");
    let o = out.display().to_string();
    let env = common::env_with(Executor::new(), 1.0);
    let mut ja = JailActions::new("j", env);
    let reban = format!("echo reban <name> <ip> >> {o}");
    let prolong = format!("echo prolong <name> <ip> <bantime> >> {o}");
    ja.add(
        "mail",
        file_action(
            &out,
            &[
                ("name", "M"),
                ("norestored", "True"),
                ("actionreban", &reban),
            ],
        ),
    )
    .unwrap();
    ja.add(
        "fw",
        file_action(&out, &[("name", "W"), ("actionprolong", &prolong)]),
    )
    .unwrap();
    std::fs::write(&out, "").unwrap();
    let mut t = ticket("192.0.2.8");
    t.restored = true;
    ja.ban(&t).await;
    t.restored = false;
    t.bantime = Some(1200);
    ja.prolong(&t).await;
    assert!(ja.reban(&t, false).await);
    let s = read(&out);
    assert_eq!(
        s,
        "ban W 192.0.2.8 inet4 3 600\nprolong W 192.0.2.8 1200\n\
               reban M 192.0.2.8\nban W 192.0.2.8 inet4 3 1200\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_jail_does_not_delay_another() {
    let dir = common::TempDir::new("conc");
    let out = dir.path().join("out");
    let env = common::env_with(Executor::new(), 1.0);
    let mut slow = JailActions::new("slow", env.clone());
    slow.add("s", [("actionban", "sleep 2")]).unwrap();
    let mut fast = JailActions::new("fast", env);
    fast.add("f", file_action(&out, &[])).unwrap();
    let h = tokio::spawn(async move {
        let t = ticket("192.0.2.1");
        slow.ban(&t).await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    for i in 0..20 {
        assert!(fast
            .ban(&ticket(&format!("192.0.2.{}", 10 + i)))
            .await
            .is_empty());
    }
    let el = t0.elapsed();
    assert!(
        el < Duration::from_millis(1500),
        "20 bans took {el:?} next to a slow jail"
    );
    assert_eq!(read(&out).lines().count(), 20);
    assert!(!h.is_finished(), "the slow jail is still running");
    assert!(h.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_many_runs_concurrently_and_keeps_fail2ban_semantics() {
    let dir = common::TempDir::new("many");
    let out = dir.path().join("out");
    let o = out.display().to_string();
    let mut env = (*common::env_with(Executor::new(), 1.0)).clone();
    env.ipv6_allowed = true;
    let mut ja = JailActions::new("j", Arc::new(env));
    ja.add(
        "m",
        [
            ("actionstart", format!("echo start <family> >> {o}")),
            ("actioncheck", format!("echo check <family> >> {o}")),
            (
                "actionban",
                format!("sleep 0.2; echo ban <ip> >> {o}; test <ip> != 192.0.2.13"),
            ),
            ("x?family=inet6", "v6".to_owned()),
        ],
    )
    .unwrap();
    let mut tickets: Vec<BanTicket> = (0..40).map(|i| ticket(&format!("192.0.2.{i}"))).collect();
    tickets.push(ticket("2001:db8::1"));
    let t0 = Instant::now();
    let fails = ja.ban_many(&tickets, 16).await;
    let el = t0.elapsed();
    // 41 commands of 0.2 s, 16 at a time: about 3 rounds, far below 8 s serial.
    assert!(el < Duration::from_secs(3), "took {el:?}");
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].0, 13);
    let s = read(&out);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("start")).count(), 2);
    assert!(
        lines[0].starts_with("start inet4") && lines[1].starts_with("start inet6"),
        "{s}"
    );
    for i in 0..40 {
        let n = lines
            .iter()
            .filter(|l| **l == format!("ban 192.0.2.{i}"))
            .count();
        // The failing one is retried once after the invariant check.
        assert_eq!(n, if i == 13 { 2 } else { 1 }, "ban 192.0.2.{i}");
    }
    assert_eq!(lines.iter().filter(|l| **l == "check inet4").count(), 1);
    assert!(lines.contains(&"ban 2001:db8::1"));
}

#[tokio::test(flavor = "current_thread")]
async fn ban_many_runs_at_most_parallel_commands_at_once() {
    let dir = common::TempDir::new("window");
    let out = dir.path().join("out");
    let run = dir.path().join("running");
    std::fs::create_dir(&run).unwrap();
    let (o, r) = (out.display().to_string(), run.display().to_string());
    let mut ja = JailActions::new("j", common::env_with(Executor::new(), 1.0));
    ja.add(
        "w",
        [(
            "actionban",
            // How many others run while this one starts (its own marker comes after).
            format!("echo $(ls -1 {r} | wc -l) >> {o}; touch {r}/<ip>; sleep 0.1; rm {r}/<ip>"),
        )],
    )
    .unwrap();
    let tickets: Vec<BanTicket> = (0..12).map(|i| ticket(&format!("192.0.2.{i}"))).collect();
    let fails = ja.ban_many(&tickets, 3).await;
    assert!(fails.is_empty(), "{fails:?}");
    let s = read(&out);
    let seen: Vec<usize> = s.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(seen.len(), 12, "{s}");
    assert!(
        seen.iter().all(|&n| n <= 2),
        "more than 3 at once: {seen:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_running_command_kills_its_group() {
    let dir = common::TempDir::new("drop");
    let pidf = dir.path().join("pid");
    let ex = Executor::new();
    let cmd = RenderedCommand::plain(format!("sleep 100 & echo $! > {}; wait", pidf.display()));
    let fut = ex.run(&cmd, Duration::from_secs(100), "j", "a");
    // Give the shell time to start the grandchild, then drop the future.
    let _ = tokio::time::timeout(Duration::from_millis(500), fut).await;
    let pid: i32 = read(&pidf).trim().parse().expect("grandchild pid");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "grandchild {pid} survived a dropped command");
}
