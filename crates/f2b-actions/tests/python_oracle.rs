//! The key compatibility test: stock action.d files, as `fail2ban-client -d`
//! streams them, must render to byte-identical commands in f2b and in
//! fail2ban's own `CommandAction` (run under /usr/bin/python3 as oracle),
//! across a start / ban / reban / unban / flush / stop scenario with
//! IPv4 and IPv6 tickets carrying hostile captured values.

mod common;

use std::sync::{Arc, Mutex};

use f2b_actions::{
    ActionEnv, BanTicket, BuiltinTags, CommandAction, Executor, RenderedCommand, StaticJailInfo,
};
use serde_json::{json, Value};

const NOW: f64 = 1_700_000_000.25;

/// Actions under test: the four the brief names plus others that exercise
/// `<matches>`, `<F-*>`, conditional families and flush/check/repair paths.
const ACTIONS: &[&str] = &[
    "iptables-multiport[name=sshd, port=\"ssh,2222\"]",
    "iptables-allports[name=all]",
    "sendmail-whois[name=sshd, dest=root@example.com]",
    "hostsdeny",
    "sendmail-whois-matches[name=sshm, dest=root@example.com]",
    "sendmail-whois-ipjailmatches[name=sshij, dest=root@example.com]",
    "nftables-multiport[name=nft, port=ssh]",
    "iptables-ipset[name=ips]",
    "iptables-new[name=new]",
    "ufw",
    "route",
    "dummy",
    "mail-whois-lines[name=mwl, dest=root@example.com]",
    "xarf-login-attack[service=sshd]",
    "abuseipdb[abuseipdb_apikey=k, abuseipdb_category=18]",
    "iptables[name=SSH, port=ssh, protocol=tcp]",
    "sendmail-whois[name=SASL, dest=you@example.com, sender=fail2ban@example.com]",
    "iptables-multiport-log[name=log]",
    "iptables-xt_recent-echo[name=recent]",
    "nftables-allports[name=nfta]",
    "nftables[type=multiport, name=nftm]",
    "firewallcmd-ipset[name=fwi]",
    "firewallcmd-rich-rules[name=fwr]",
    "iptables-ipset-proto6-allports[name=ip6a]",
    "shorewall",
    "nginx-block-map",
    "mail-whois[name=mw, dest=root@example.com]",
    "sendmail-geoip-lines[name=geo, dest=root@example.com]",
    "sendmail-buffered[name=buf, dest=root@example.com]",
    "pf[name=pf]",
    "bsd-ipfw",
    "npf",
    "apprise",
    "blocklist_de[email=a@b.c, apikey=k, service=ssh]",
    "cloudflare[cfuser=u, cftoken=t]",
    "nsupdate[domain=example.com, nsupdatecmd=true]",
    "symbiosis-blacklist-allports",
    "osx-ipfw",
];

fn tickets() -> (Value, Value) {
    let t4 = json!({
        "id": "192.0.2.7",
        "time": 1_699_999_990.5,
        "failures": 3,
        "bancount": 2,
        "matches": [
            "Nov  1 00:00:01 h sshd[1]: Invalid user $(reboot) from 192.0.2.7 port 22",
            "Nov  1 00:00:02 h sshd[1]: Invalid user `id` ; rm -rf / 'q' \"dq\" <ip> <F-USER> from 192.0.2.7",
            "x;touch /tmp/f2b-pwned #\nsecond line"
        ],
        "data": {"user": "$(reboot)", "fid": "192.0.2.7"}
    });
    let t6 = json!({
        "id": "2001:db8::7",
        "time": 1_699_999_991.0,
        "failures": 5,
        "bantime": 3600,
        "matches": ["plain line"],
        "data": {"user": "x;rm -rf /", "other": "a b"}
    });
    (t4, t6)
}

fn scenario() -> Value {
    let (t4, t6) = tickets();
    let tid = json!({
        "id": "bob's box; $(id)",
        "time": 1_699_999_992.75,
        "failures": 1,
        "matches": ["m"],
        "data": {"user": "bob"}
    });
    json!({
        "now": NOW,
        "steps": [
            {"op": "start"},
            {"op": "ban", "ticket": t4},
            {"op": "ban", "ticket": t6},
            {"op": "reban", "ticket": t4},
            {"op": "unban", "ticket": t4},
            {"op": "ban", "ticket": tid},
            {"op": "unban", "ticket": tid},
            {"op": "flush"},
            {"op": "stop"}
        ]
    })
}

fn ticket_from(v: &Value) -> BanTicket {
    let mut t = BanTicket::new(
        v["id"].as_str().unwrap_or_default(),
        v["time"].as_f64().unwrap_or(0.0),
    );
    t.failures = v["failures"].as_u64().unwrap_or(0);
    t.bancount = v["bancount"].as_u64().unwrap_or(0);
    t.bantime = v["bantime"].as_i64();
    t.matches = v["matches"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    t.data = v["data"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect::<f2b_actions::TicketData>()
        })
        .unwrap_or_default();
    t
}

fn as_json(c: &RenderedCommand) -> Value {
    if c.args.is_empty() {
        Value::String(c.script.clone())
    } else {
        let mut v = vec![Value::String(c.script.clone())];
        v.extend(c.args.iter().cloned().map(Value::String));
        Value::Array(v)
    }
}

fn run_oracle(conf: &std::path::Path) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(conf)
        .arg(scenario().to_string())
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

#[tokio::test(flavor = "current_thread")]
async fn stock_actions_render_like_python() {
    common::require_python_fail2ban();
    let dir = common::TempDir::new("oracle");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let jail_local = format!(
        "[sshd]\nenabled = true\nbackend = polling\nlogpath = {}\naction = {}\n",
        log.display(),
        ACTIONS.join("\n         ")
    );
    let conf = common::config_copy(dir.path(), &jail_local);
    let oracle = run_oracle(&conf);
    let actions = oracle["actions"].as_array().expect("actions");
    assert_eq!(
        actions.len(),
        ACTIONS.len(),
        "every configured action is in the stream"
    );

    let builtins = BuiltinTags {
        fq_hostname: oracle["fq"].as_str().unwrap_or_default().to_owned(),
        sh_hostname: oracle["sh"].as_str().unwrap_or_default().to_owned(),
    };
    let ipv6 = oracle["ipv6"].as_bool().unwrap_or(false);
    let mut compared = 0;
    let mut with_vars = 0;
    for act in actions {
        let name = act["name"].as_str().unwrap();
        let rec = Arc::new(Mutex::new(Vec::<RenderedCommand>::new()));
        let env = Arc::new(ActionEnv {
            executor: Executor::dry_run(rec.clone()),
            jail_info: Arc::new(StaticJailInfo {
                bantime: 600,
                ..Default::default()
            }),
            builtins: builtins.clone(),
            ipv6_allowed: ipv6,
            clock: Arc::new(|| NOW),
            ..ActionEnv::default()
        });
        let props: Vec<(String, String)> = act["props"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (
                    kv[0].as_str().unwrap().to_owned(),
                    kv[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut a = CommandAction::new("sshd", name, props, env).expect("action");
        let sc = scenario();
        let input_steps = sc["steps"].as_array().unwrap();
        for (input, step) in input_steps.iter().zip(act["steps"].as_array().unwrap()) {
            let op = step["op"].as_str().unwrap();
            let before = rec.lock().unwrap().len();
            let ok = match op {
                "start" => a.start().await.is_ok(),
                "stop" => a.stop().await.is_ok(),
                "flush" => a.flush().await.is_ok(),
                "ban" => a.ban(&ticket_from(&input["ticket"])).await.is_ok(),
                "reban" => a.reban(&ticket_from(&input["ticket"])).await.is_ok(),
                "unban" => a.unban(&ticket_from(&input["ticket"])).await.is_ok(),
                other => panic!("unknown op {other}"),
            };
            let ours: Vec<Value> = rec.lock().unwrap()[before..].iter().map(as_json).collect();
            let theirs = step["cmds"].as_array().unwrap();
            assert_eq!(
                ok,
                step["ok"].as_bool().unwrap(),
                "action {name} step {op}: success differs"
            );
            assert_eq!(
                &ours, theirs,
                "action {name} step {op}: rendered commands differ from fail2ban's"
            );
            compared += theirs.len();
            with_vars += theirs.iter().filter(|c| c.is_array()).count();
        }
    }
    assert!(compared > 40, "too few commands compared ({compared})");
    assert!(
        with_vars >= 5,
        "escaped-variable commands compared: {with_vars}"
    );
}

#[test]
fn host_names_match_python() {
    common::require_python_fail2ban();
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "from fail2ban.server.ipdns import DNSUtils as D; print(D.getHostname(fqdn=True)); print(D.getHostname(fqdn=False))",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let mut l = s.lines();
    let ours = f2b_actions::info::host_names();
    assert_eq!(Some(ours.fq_hostname.as_str()), l.next());
    assert_eq!(Some(ours.sh_hostname.as_str()), l.next());
}
