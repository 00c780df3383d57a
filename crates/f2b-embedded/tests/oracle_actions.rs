//! Our actions rendered and executed by the reference Python CommandAction
//! (tests/py/run_action.py): firewall actions in a network namespace the
//! test creates (never the host ruleset), mail/report actions against fake
//! `sendmail`/`mail`/`whois`/`curl` programs on PATH, file actions on
//! temporary files.  Hostile log content must never be executed.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Every action and the test that covers it (checked by `every_action_is_tested`).
const COVERED: &[(&str, &str)] = &[
    ("nftables", "netns"),
    ("nftables-multiport", "netns"),
    ("nftables-allports", "netns"),
    ("iptables", "netns"),
    ("iptables-multiport", "netns"),
    ("iptables-allports", "netns"),
    ("iptables-new", "netns"),
    ("iptables-ipset", "netns"),
    ("iptables-ipset-proto4", "netns"),
    ("iptables-ipset-proto6", "netns"),
    ("iptables-ipset-proto6-allports", "netns"),
    ("ipset", "netns"),
    ("route", "netns"),
    ("ufw", "fake_tools"),
    ("firewallcmd-multiport", "fake_tools"),
    ("firewallcmd-allports", "fake_tools"),
    ("firewallcmd-ipset", "fake_tools"),
    ("firewallcmd-rich-rules", "fake_tools"),
    ("abuseipdb", "fake_tools"),
    ("hostsdeny", "files"),
    ("dummy", "files"),
    ("sendmail", "mail"),
    ("sendmail-whois", "mail"),
    ("sendmail-whois-lines", "mail"),
    ("mail", "mail"),
    ("mail-whois", "mail"),
    ("mail-whois-lines", "mail"),
];

/// Shared include files, not actions of their own.
const INCLUDES: &[&str] = &[
    "firewallcmd-common",
    "mail-common",
    "mail-common-cmd",
    "sendmail-common",
];

const HOSTILE: &str =
    "Failed password for $(touch {D}/pwn1) `touch {D}/pwn2`; touch {D}/pwn3 | x & \"q\" 'q' \\n";

fn run_action(
    cfg: &Path,
    netns: Option<&str>,
    path: Option<&Path>,
    action: &str,
    params: &[&str],
    ops: &[&str],
) -> String {
    run_action_with(cfg, netns, path, "", action, params, ops)
}

/// Like `run_action`, with `matches` as the ticket's log lines.
fn run_action_with(
    cfg: &Path,
    netns: Option<&str>,
    path: Option<&Path>,
    matches: &str,
    action: &str,
    params: &[&str],
    ops: &[&str],
) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, PYTHON]);
            c
        }
        None => Command::new(PYTHON),
    };
    cmd.arg(script("run_action.py"))
        .arg(cfg)
        .arg(action)
        .args(params)
        .arg("--")
        .args(ops);
    cmd.env("F2B_TEST_MATCHES", matches)
        .env("F2B_TEST_USER", "$(touch /tmp/f2b-emb-pwn-user)");
    if let Some(p) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", p.display()));
    }
    let out = run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{action} {params:?} {ops:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Output of the n-th `run:` op.
fn section(out: &str, n: usize) -> String {
    out.split("=== run: ")
        .nth(n + 1)
        .and_then(|s| s.split("=== end").next())
        .unwrap_or("")
        .to_string()
}

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("f2bt-emb-{}-{tag}", std::process::id());
        let out = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(
            out.status.success(),
            "cannot create network namespace (needs root and iproute2): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn tool_present(t: &str) -> bool {
    ["/usr/sbin/", "/sbin/", "/usr/bin/"]
        .iter()
        .any(|d| Path::new(&format!("{d}{t}")).exists())
}

#[test]
fn every_action_is_tested() {
    let names = conf_names("action.d");
    let untested: Vec<&String> = names
        .iter()
        .filter(|n| !INCLUDES.contains(&n.as_str()) && !COVERED.iter().any(|(a, _)| a == n))
        .collect();
    assert!(untested.is_empty(), "actions without a test: {untested:?}");
    for (a, _) in COVERED {
        assert!(
            names.iter().any(|n| n == a),
            "covered action {a} missing from action.d"
        );
    }
}

#[test]
fn netns_firewall_actions_ban_and_unban() {
    require_oracle();
    for t in ["nft", "iptables", "ip6tables", "ipset", "ip"] {
        assert!(
            tool_present(t),
            "{t} missing: apt-get install -y nftables iptables ipset iproute2"
        );
    }
    let cfg = exported();
    let v4 = "192.0.2.77";
    let v6 = "2001:db8::77";
    let both = "run:nft list ruleset; iptables-save; ip6tables-save; ipset list; ip route show type unreachable; ip -6 route show type unreachable".to_string();
    for (action, params) in [
        ("nftables", vec!["port=ssh,http", "protocol=tcp,udp"]),
        ("nftables-multiport", vec!["port=0:1024"]),
        ("nftables-allports", vec![]),
        ("iptables", vec!["port=ssh"]),
        ("iptables-multiport", vec!["port=ssh,http"]),
        ("iptables-allports", vec!["protocol=tcp,udp"]),
        ("iptables-new", vec!["port=22"]),
        ("iptables-ipset", vec!["port=ssh"]),
        ("iptables-ipset-proto4", vec!["port=ssh"]),
        ("iptables-ipset-proto6", vec!["port=ssh"]),
        ("iptables-ipset-proto6-allports", vec![]),
        ("ipset", vec![]),
        ("route", vec![]),
    ] {
        let ns = Netns::new("fw");
        let mut ops = vec!["start".to_string()];
        ops.push(format!("ban:{v4}"));
        ops.push(format!("ban:{v6}"));
        ops.push(both.clone());
        ops.push(format!("unban:{v4}"));
        ops.push(format!("unban:{v6}"));
        ops.push(both.clone());
        ops.push("stop".to_string());
        ops.push(both.clone());
        let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
        let out = run_action(cfg.path(), Some(&ns.0), None, action, &params, &ops);
        let banned = section(&out, 0);
        let unbanned = section(&out, 1);
        let stopped = section(&out, 2);
        for ip in [v4, v6] {
            assert!(
                banned.contains(ip),
                "{action}: {ip} not in ruleset after ban:\n{banned}"
            );
            assert!(
                !unbanned.contains(ip),
                "{action}: {ip} still in ruleset after unban:\n{unbanned}"
            );
        }
        if action != "route" && action != "ipset" {
            assert!(
                banned.contains("f2btest"),
                "{action}: no per-jail chain/set:\n{banned}"
            );
        }
        assert!(
            !stopped.contains("f2btest"),
            "{action}: leftovers after stop:\n{stopped}"
        );
    }
}

fn fake_bin(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write fake tool");
    let _ = Command::new("chmod").arg("+x").arg(&p).status();
}

#[test]
fn mail_actions_send_whois_and_lines_without_executing_log_content() {
    require_oracle();
    let cfg = exported();
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let bin = d.join("bin");
    fs::create_dir_all(&bin).expect("mkdir");
    let log = d.join("sent.log");
    fake_bin(
        &bin,
        "sendmail",
        &format!(
            "printf 'ARGS:%s\\n' \"$*\" >> '{0}'; cat >> '{0}'; echo '--END--' >> '{0}'",
            log.display()
        ),
    );
    fake_bin(
        &bin,
        "mail",
        &format!(
            "printf 'ARGS:%s\\n' \"$*\" >> '{0}'; cat >> '{0}'; echo '--END--' >> '{0}'",
            log.display()
        ),
    );
    fake_bin(&bin, "whois", "echo \"WHOIS-RECORD-OF $1\"");
    let hostile = HOSTILE.replace("{D}", &d.display().to_string());
    for action in [
        "sendmail",
        "sendmail-whois",
        "sendmail-whois-lines",
        "mail",
        "mail-whois",
        "mail-whois-lines",
    ] {
        let _ = fs::remove_file(&log);
        run_action_with(
            cfg.path(),
            None,
            Some(&bin),
            &hostile,
            action,
            &["dest=admin@example.org", "sender=f2b@example.org"],
            &["start", "ban:192.0.2.55", "stop"],
        );
        let sent = fs::read_to_string(&log).expect("mail was sent");
        assert_eq!(
            sent.matches("--END--").count(),
            3,
            "{action}: expected start, ban and stop mails:\n{sent}"
        );
        assert!(
            sent.contains("admin@example.org"),
            "{action}: recipient missing:\n{sent}"
        );
        assert!(
            sent.contains("banned 192.0.2.55"),
            "{action}: subject missing:\n{sent}"
        );
        if action.starts_with("sendmail") {
            assert!(
                sent.contains("ARGS:-f f2b@example.org admin@example.org"),
                "{action}: sendmail args:\n{sent}"
            );
            assert!(
                sent.contains("Subject: [f2b] f2btest: banned 192.0.2.55"),
                "{action}: header:\n{sent}"
            );
        }
        assert_eq!(
            action.contains("whois"),
            sent.contains("WHOIS-RECORD-OF 192.0.2.55"),
            "{action}: whois body:\n{sent}"
        );
        assert_eq!(
            action.ends_with("lines"),
            sent.contains(&hostile),
            "{action}: log lines body:\n{sent}"
        );
        for f in ["pwn1", "pwn2", "pwn3"] {
            assert!(
                !d.join(f).exists(),
                "{action}: log content was executed ({f})"
            );
        }
        assert!(
            sent.contains("User name given (if any): $(touch /tmp/f2b-emb-pwn-user)\n"),
            "{action}: hostile user name must appear verbatim:\n{sent}"
        );
        assert!(
            !Path::new("/tmp/f2b-emb-pwn-user").exists(),
            "{action}: user name was executed"
        );
    }
}

#[test]
fn file_actions_hostsdeny_and_dummy() {
    require_oracle();
    let cfg = exported();
    let tmp = tempfile::tempdir().expect("tempdir");
    let hd = tmp.path().join("hosts.deny");
    fs::write(&hd, "sshd: 10.1.1.1\n").expect("write");
    let file = format!("file={}", hd.display());
    let out = run_action(
        cfg.path(),
        None,
        None,
        "hostsdeny",
        &[&file],
        &[
            "start",
            "ban:192.0.2.1",
            "ban:2001:db8::1",
            &format!("run:cat {}", hd.display()),
            "unban:192.0.2.1",
            "unban:2001:db8::1",
            "stop",
        ],
    );
    let banned = section(&out, 0);
    assert!(
        banned.contains("ALL: 192.0.2.1\n") && banned.contains("ALL: [2001:db8::1]\n"),
        "{banned}"
    );
    assert_eq!(fs::read_to_string(&hd).expect("read"), "sshd: 10.1.1.1\n");

    let target = tmp.path().join("dummy");
    let t = format!("target={}", target.display());
    run_action(
        cfg.path(),
        None,
        None,
        "dummy",
        &[&t],
        &["start", "ban:192.0.2.9", "unban:192.0.2.9", "stop"],
    );
    assert_eq!(
        fs::read_to_string(&target).expect("read"),
        "start f2btest\n+192.0.2.9\n-192.0.2.9\nstop f2btest\n"
    );
}

#[test]
fn fake_tools_ufw_firewalld_abuseipdb_commands() {
    require_oracle();
    let cfg = exported();
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let bin = d.join("bin");
    fs::create_dir_all(&bin).expect("mkdir");
    let log = d.join("calls.log");
    for tool in ["ufw", "firewall-cmd", "ipset", "curl"] {
        fake_bin(
            &bin,
            tool,
            &format!(
                "for a in \"$@\"; do printf '[%s]' \"$a\" >> '{0}'; done; printf '\\n' >> '{0}'",
                log.display()
            ),
        );
    }
    let hostile = HOSTILE.replace("{D}", &d.display().to_string());
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("ufw", &[], &["[insert][1][deny][from][192.0.2.3][to][any][comment][f2b f2btest]", "[delete][deny][from][192.0.2.3][to][any]"]),
        ("ufw", &["application=OpenSSH"], &["[insert][1][deny][from][192.0.2.3][to][any][app][OpenSSH]"]),
        ("firewallcmd-multiport", &["port=ssh,http"], &["[--direct][--add-chain][ipv4][filter][f2b-f2btest]", "[-m][multiport][--dports][ssh,http][-j][f2b-f2btest]", "[--direct][--add-rule][ipv4][filter][f2b-f2btest][0][-s][192.0.2.3][-j][REJECT][--reject-with][icmp-port-unreachable]", "[--direct][--remove-rule][ipv4][filter][f2b-f2btest][0][-s][192.0.2.3]", "[--direct][--remove-chain][ipv4][filter][f2b-f2btest]"]),
        ("firewallcmd-allports", &[], &["[--direct][--add-rule][ipv4][filter][INPUT_direct][0][-m][conntrack][--ctstate][NEW][-p][tcp][-j][f2b-f2btest]"]),
        ("firewallcmd-ipset", &["port=ssh"], &["[-exist][create][f2b-f2btest][hash:ip]", "[-m][set][--match-set][f2b-f2btest][src]", "[-exist][add][f2b-f2btest][192.0.2.3]", "[-exist][del][f2b-f2btest][192.0.2.3]", "[destroy][f2b-f2btest]"]),
        ("firewallcmd-rich-rules", &["port=ssh,http"], &["[--add-rich-rule=rule family='ipv4' source address='192.0.2.3' port port='ssh' protocol='tcp' reject type='icmp-port-unreachable']", "[--remove-rich-rule=rule family='ipv4' source address='192.0.2.3' port port='http' protocol='tcp' reject type='icmp-port-unreachable']"]),
        ("abuseipdb", &["abuseipdb_apikey=SECRETKEY", "abuseipdb_category=18,22"], &["[Key: SECRETKEY]", "[ip=192.0.2.3]", "[categories=18,22]"]),
    ];
    for (action, params, expect) in cases {
        let _ = fs::remove_file(&log);
        run_action_with(
            cfg.path(),
            None,
            Some(&bin),
            &hostile,
            action,
            params,
            &["start", "ban:192.0.2.3", "unban:192.0.2.3", "stop"],
        );
        let calls = fs::read_to_string(&log).unwrap_or_default();
        for e in *expect {
            assert!(
                calls.contains(e),
                "{action}: expected call {e} in:\n{calls}"
            );
        }
        if *action == "abuseipdb" {
            assert!(
                calls.contains(&format!("[comment={hostile}]")),
                "abuseipdb: comment must carry the raw lines:\n{calls}"
            );
        }
        for f in ["pwn1", "pwn2", "pwn3"] {
            assert!(
                !d.join(f).exists(),
                "{action}: log content was executed ({f})"
            );
        }
    }
}
