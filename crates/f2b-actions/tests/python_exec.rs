//! Check / repair / restart / flush behaviour with real processes, compared
//! with fail2ban's own `CommandAction` executing the same action files and
//! scenario under /usr/bin/python3: same per-step success, same commands
//! run in the same order (each command appends a line to a file).

mod common;

use f2b_actions::{BanTicket, CommandAction, Executor};
use serde_json::{json, Value};

const BODY: &str = "[Definition]
actionstart = echo start <fw> <family> >> <out>; touch <flag>
actionstop = echo stop <fw> <family> >> <out>; rm -f <flag>
actioncheck = echo check <fw> <family> >> <out>; test -e <flag>
actionban = echo ban <fw> <ip> >> <out>; test -e <flag>
actionunban = echo unban <fw> <ip> >> <out>; test -e <flag>
";

fn ticket(v: &Value) -> BanTicket {
    BanTicket::new(
        v["id"].as_str().unwrap_or_default(),
        v["time"].as_f64().unwrap_or(0.0),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn check_repair_restart_flush_like_python() {
    common::require_python_fail2ban();
    let dir = common::TempDir::new("pyexec");
    let d = dir.path().display().to_string();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let actions = [
        "f2bt-plain[name=plain, out=DIR/plain.out, flag=DIR/plain.flag]",
        "f2bt-repair[name=repair, out=DIR/repair.out, flag=DIR/repair.flag]",
        "f2bt-fam[name=fam, out=DIR/fam.out, flag=DIR/fam.flag]",
        "f2bt-flush[name=flush, out=DIR/flush.out, flag=DIR/flush.flag]",
        "f2bt-repunban[name=repunban, out=DIR/repunban.out, flag=DIR/repunban.flag]",
    ]
    .map(|a| a.replace("DIR", &d));
    let jail_local = format!(
        "[sshd]\nenabled = true\nbackend = polling\nlogpath = {}\naction = {}\n",
        log.display(),
        actions.join("\n         ")
    );
    let conf = common::config_copy(dir.path(), &jail_local);
    let ad = conf.join("action.d");
    let init = "[Init]\nfw = iptables\nout =\nflag =\n";
    std::fs::write(ad.join("f2bt-plain.conf"), format!("{BODY}{init}")).unwrap();
    std::fs::write(
        ad.join("f2bt-repair.conf"),
        format!("{BODY}actionrepair = echo repair <fw> >> <out>; touch <flag>\n{init}"),
    )
    .unwrap();
    std::fs::write(
        ad.join("f2bt-fam.conf"),
        format!("{BODY}{init}fw?family=inet6 = ip6tables\n"),
    )
    .unwrap();
    std::fs::write(
        ad.join("f2bt-flush.conf"),
        format!("{BODY}actionflush = echo flush <fw> <family> >> <out>; test -e <flag>\n{init}fw?family=inet6 = ip6tables\n"),
    )
    .unwrap();
    std::fs::write(
        ad.join("f2bt-repunban.conf"),
        format!("{BODY}actionrepair = echo repair <fw> >> <out>; touch <flag>\nactionrepair_on_unban = true\n{init}"),
    )
    .unwrap();

    let t1 = json!({"id": "192.0.2.1", "time": 10.0});
    let t2 = json!({"id": "192.0.2.2", "time": 11.0});
    let t6 = json!({"id": "2001:db8::1", "time": 12.0});
    let tid = json!({"id": "user-42", "time": 13.0});
    let rmflags = format!("rm -f {d}/*.flag");
    let scenario = json!({
        "now": 1_700_000_000.0,
        "execute": true,
        "setup": [format!("rm -f {d}/*.out {d}/*.flag")],
        "steps": [
            {"op": "start"},
            {"op": "ban", "ticket": t1},
            {"op": "sh", "cmd": rmflags},
            {"op": "ban", "ticket": t2},
            {"op": "ban", "ticket": t6},
            {"op": "check"},
            {"op": "sh", "cmd": rmflags},
            {"op": "check"},
            {"op": "unban", "ticket": t1},
            {"op": "sh", "cmd": rmflags},
            {"op": "unban", "ticket": t2},
            {"op": "ban", "ticket": tid},
            {"op": "sh", "cmd": rmflags},
            {"op": "ban", "ticket": tid},
            {"op": "check"},
            {"op": "unban", "ticket": tid},
            {"op": "flush"},
            {"op": "stop"}
        ]
    });
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.py"))
        .arg(&conf)
        .arg(scenario.to_string())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ipv6 = oracle["ipv6"].as_bool().unwrap_or(false);
    let mut total_lines = 0;
    for act in oracle["actions"].as_array().unwrap() {
        let name = act["name"].as_str().unwrap();
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
        let mut env = (*common::env_with(Executor::new(), 1_700_000_000.0)).clone();
        env.ipv6_allowed = ipv6;
        let mut a = CommandAction::new("sshd", name, props, std::sync::Arc::new(env)).unwrap();
        for c in scenario["setup"].as_array().unwrap() {
            sh(c.as_str().unwrap());
        }
        let steps = scenario["steps"].as_array().unwrap();
        for (i, (input, theirs)) in steps
            .iter()
            .zip(act["steps"].as_array().unwrap())
            .enumerate()
        {
            let op = input["op"].as_str().unwrap();
            let ok = match op {
                "sh" => {
                    sh(input["cmd"].as_str().unwrap());
                    true
                }
                "start" => a.start().await.is_ok(),
                "stop" => a.stop().await.is_ok(),
                "flush" => a.flush().await.is_ok(),
                "check" => a.consistency_check(None).await.unwrap_or(false),
                "ban" => a.ban(&ticket(&input["ticket"])).await.is_ok(),
                "unban" => a.unban(&ticket(&input["ticket"])).await.is_ok(),
                other => panic!("unknown op {other}"),
            };
            assert_eq!(
                ok,
                theirs["ok"].as_bool().unwrap(),
                "action {name} step {i} ({op})"
            );
        }
        let outf = props_out(act);
        let ours = std::fs::read_to_string(outf).unwrap_or_default();
        assert_eq!(
            ours,
            act["out"].as_str().unwrap(),
            "action {name}: executed commands differ"
        );
        total_lines += ours.lines().count();
    }
    assert!(
        total_lines > 40,
        "scenario ran too little ({total_lines} lines)"
    );
}

fn props_out(act: &Value) -> String {
    act["props"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == "out")
        .and_then(|kv| kv[1].as_str())
        .expect("out property")
        .to_owned()
}

fn sh(c: &str) {
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(c)
        .status()
        .unwrap();
    assert!(st.success(), "{c}");
}
