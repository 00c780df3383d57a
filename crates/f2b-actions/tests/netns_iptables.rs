//! The stock iptables-multiport and iptables-allports actions, as
//! `fail2ban-client -d` streams them, run for real inside a network
//! namespace this test creates (never the host ruleset). Requires root and
//! netns support; fails loudly otherwise.

mod common;

use std::process::Command;
use std::sync::Arc;

use f2b_actions::{ActionEnv, BanTicket, Executor, JailActions};
use serde_json::{json, Value};

struct Netns(String);

impl Netns {
    fn create() -> Netns {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "f2bt-act-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("cannot run `ip` (iproute2 is required)");
        assert!(
            out.status.success(),
            "creating network namespace {name} was refused (root and netns support are required): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn exec(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .expect("ip netns exec");
        assert!(
            out.status.success(),
            "{args:?} in {} failed: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn ensure_iptables() {
    let have = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(have("iptables") && have("ip6tables") && have("iptables-save")) {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "iptables", "ipset"])
            .status();
    }
    assert!(
        have("iptables") && have("iptables-save"),
        "iptables is required (apt-get install -y iptables ipset failed)"
    );
}

type Props = Vec<(String, Vec<(String, String)>)>;

fn stock_props(dir: &std::path::Path, actions: &[&str]) -> Props {
    let log = dir.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let jail_local = format!(
        "[sshd]\nenabled = true\nbackend = polling\nlogpath = {}\naction = {}\n",
        log.display(),
        actions.join("\n         ")
    );
    let conf = common::config_copy(dir, &jail_local);
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.py"))
        .arg(&conf)
        .arg(json!({"now": 1.0, "steps": []}).to_string())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["props"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|kv| {
                        (
                            kv[0].as_str().unwrap().to_owned(),
                            kv[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn host_rules() -> Option<String> {
    let o = Command::new("iptables-save").output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[tokio::test(flavor = "current_thread")]
async fn stock_iptables_actions_in_a_namespace() {
    common::require_python_fail2ban();
    ensure_iptables();
    let dir = common::TempDir::new("netns");
    let props = stock_props(
        dir.path(),
        &[
            "iptables-multiport[name=sshd, port=\"ssh,2222\"]",
            "iptables-allports[name=all]",
        ],
    );
    let host_before = host_rules();
    let ns = Netns::create();

    let mut env = (*common::env_with(
        Executor::new().with_prefix(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            ns.0.clone(),
        ]),
        1.0,
    ))
    .clone();
    env.ipv6_allowed = true;
    let mut ja = JailActions::new("sshd", Arc::new(env as ActionEnv));
    for (name, p) in props {
        ja.add(&name, p).unwrap();
    }
    assert!(ja.start().await.is_empty());
    assert!(
        !ns.exec(&["iptables-save"]).contains("f2b-"),
        "stock iptables actions start on demand"
    );

    let t4 = BanTicket::new("192.0.2.7", 1.0);
    let t4b = BanTicket::new("198.51.100.9", 1.0);
    let t6 = BanTicket::new("2001:db8::7", 1.0);
    for t in [&t4, &t4b, &t6] {
        let f = ja.ban(t).await;
        assert!(f.is_empty(), "ban {}: {f:?}", t.id);
    }
    let v4 = ns.exec(&["iptables-save"]);
    for needle in [
        ":f2b-sshd - [0:0]",
        ":f2b-all - [0:0]",
        "-A INPUT -p tcp -m multiport --dports 22,2222 -j f2b-sshd",
        "-A INPUT -p tcp -j f2b-all",
        "-A f2b-sshd -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-sshd -s 198.51.100.9/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-all -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-sshd -j RETURN",
    ] {
        assert!(v4.contains(needle), "iptables-save lacks {needle:?}:\n{v4}");
    }
    let v6 = ns.exec(&["ip6tables-save"]);
    assert!(
        v6.contains(
            "-A f2b-sshd -s 2001:db8::7/128 -j REJECT --reject-with icmp6-port-unreachable"
        ),
        "ip6tables-save:\n{v6}"
    );

    assert!(ja.unban(&t4).await.is_empty());
    let v4 = ns.exec(&["iptables-save"]);
    assert!(!v4.contains("192.0.2.7"), "unban left the rule:\n{v4}");
    assert!(
        v4.contains("198.51.100.9/32"),
        "unban removed too much:\n{v4}"
    );

    // Stop: actionflush empties the chains, actionstop removes them.
    assert!(ja.stop(&[t4b.clone(), t6.clone()]).await.is_empty());
    let v4 = ns.exec(&["iptables-save"]);
    let v6 = ns.exec(&["ip6tables-save"]);
    assert!(
        !v4.contains("f2b-") && !v6.contains("f2b-"),
        "stop left chains:\n{v4}\n{v6}"
    );

    drop(ns);
    assert_eq!(host_rules(), host_before, "the host ruleset changed");
}

#[tokio::test(flavor = "current_thread")]
async fn more_stock_actions_in_a_namespace() {
    common::require_python_fail2ban();
    ensure_iptables();
    let dir = common::TempDir::new("netns2");
    let deny = dir.path().join("hosts.deny");
    std::fs::write(&deny, "ALL: 10.9.9.9\n").unwrap();
    let hostsdeny = format!("hostsdeny[file={}]", deny.display());
    let props = stock_props(
        dir.path(),
        &[
            "iptables-new[name=new, port=ssh]",
            "iptables-ipset[name=ips, port=ssh]",
            "route",
            &hostsdeny,
        ],
    );
    let host_before = host_rules();
    let ns = Netns::create();
    let mut env = (*common::env_with(
        Executor::new().with_prefix(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            ns.0.clone(),
        ]),
        1.0,
    ))
    .clone();
    env.ipv6_allowed = true;
    let mut ja = JailActions::new("sshd", Arc::new(env));
    for (name, p) in props {
        ja.add(&name, p).unwrap();
    }
    assert!(ja.start().await.is_empty());
    let t4 = BanTicket::new("192.0.2.7", 1.0);
    let t6 = BanTicket::new("2001:db8::7", 1.0);
    for t in [&t4, &t6] {
        let f = ja.ban(t).await;
        assert!(f.is_empty(), "ban {}: {f:?}", t.id);
    }
    let v4 = ns.exec(&["iptables-save"]);
    for needle in [
        "-A f2b-new -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable",
        "--state NEW",
        "--match-set f2b-ips src -j REJECT --reject-with icmp-port-unreachable",
    ] {
        assert!(v4.contains(needle), "iptables-save lacks {needle:?}:\n{v4}");
    }
    assert!(ns.exec(&["ipset", "list", "f2b-ips"]).contains("192.0.2.7"));
    assert!(ns
        .exec(&["ipset", "list", "f2b-ips6"])
        .contains("2001:db8::7"));
    assert!(ns
        .exec(&["ip", "route", "show", "type", "unreachable"])
        .contains("192.0.2.7"));
    assert!(ns
        .exec(&["ip", "-6", "route", "show", "type", "unreachable"])
        .contains("2001:db8::7"));
    assert_eq!(
        std::fs::read_to_string(&deny).unwrap(),
        "ALL: 10.9.9.9\nALL: 192.0.2.7\nALL: [2001:db8::7]\n"
    );

    for t in [&t4, &t6] {
        let f = ja.unban(t).await;
        assert!(f.is_empty(), "unban {}: {f:?}", t.id);
    }
    assert_eq!(std::fs::read_to_string(&deny).unwrap(), "ALL: 10.9.9.9\n");
    assert!(!ns.exec(&["iptables-save"]).contains("192.0.2.7"));
    assert!(!ns.exec(&["ipset", "list", "f2b-ips"]).contains("192.0.2.7"));
    assert!(!ns
        .exec(&["ip", "route", "show", "type", "unreachable"])
        .contains("192.0.2.7"));
    assert!(ja.stop(&[]).await.is_empty());
    let v4 = ns.exec(&["iptables-save"]);
    assert!(!v4.contains("f2b-"), "stop left rules:\n{v4}");
    assert!(!ns.exec(&["ipset", "list", "-n"]).contains("f2b-"));
    drop(ns);
    assert_eq!(host_rules(), host_before, "the host ruleset changed");
}
