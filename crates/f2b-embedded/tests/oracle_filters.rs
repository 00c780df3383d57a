//! Our filters against the annotated sample logs of the installed Python
//! fail2ban (its own engine is the judge), and the whole tree loaded by the
//! real `fail2ban-client -d`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const SAMPLES: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// Filters that must be exact on every annotation (issue 8 seed services).
const SEED: &[&str] = &[
    "sshd",
    "nginx-http-auth",
    "nginx-botsearch",
    "nginx-limit-req",
    "nginx-bad-request",
    "apache-auth",
    "apache-badbots",
    "apache-noscript",
    "apache-overflows",
    "postfix",
    "dovecot",
    "sendmail-auth",
    "sendmail-reject",
    "courier-smtp",
    "courier-auth",
    "cyrus-imap",
    "solid-pop3d",
    "recidive",
];

/// Shared include files and compatibility aliases: not filters of their own.
const NOT_FILTERS: &[&str] = &[
    "common",
    "apache-common",
    "botsearch-common",
    "exim-common",
    "selinux-common",
    "sendmail-common",
    "sshd-ddos",
];

/// (right, total) annotations per filter, parsed from conformance.py's report.
fn conformance(dir: &Path, names: &[String]) -> BTreeMap<String, (u32, u32, String)> {
    let out = run(Command::new(PYTHON)
        .arg(script("conformance.py"))
        .arg("--config")
        .arg(dir)
        .args(names));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conformance.py failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut res = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[2] == "annotations" && f[0] != "TOTAL" {
            let (r, t) = f[1].split_once('/').expect("right/total");
            let err = if f.len() > 7 {
                f[7..].join(" ")
            } else {
                String::new()
            };
            res.insert(
                f[0].to_string(),
                (r.parse().expect("num"), t.parse().expect("num"), err),
            );
        }
    }
    res
}

#[test]
fn filters_meet_the_sample_log_targets() {
    require_oracle();
    let dir = exported();
    let names: Vec<String> = conf_names("filter.d")
        .into_iter()
        .filter(|n| !NOT_FILTERS.contains(&n.as_str()))
        .collect();
    let res = conformance(dir.path(), &names);
    let (mut right, mut total) = (0u32, 0u32);
    let mut failures = Vec::new();
    for name in &names {
        let Some((r, t, err)) = res.get(name) else {
            failures.push(format!("{name}: not reported"));
            continue;
        };
        if !err.is_empty() || *t == 0 {
            failures.push(format!("{name}: {err} ({r}/{t})"));
            continue;
        }
        right += r;
        total += t;
        let pct = f64::from(*r) * 100.0 / f64::from(*t);
        if SEED.contains(&name.as_str()) && r != t {
            failures.push(format!("{name}: seed filter at {r}/{t}"));
        } else if pct < 98.0 {
            failures.push(format!("{name}: {pct:.2}% < 98%"));
        }
    }
    for seed in SEED {
        assert!(
            names.iter().any(|n| n == seed),
            "seed filter {seed} missing"
        );
    }
    let overall = f64::from(right) * 100.0 / f64::from(total.max(1));
    assert!(
        failures.is_empty(),
        "filters below target:\n{}",
        failures.join("\n")
    );
    assert!(
        overall >= 99.0,
        "overall {overall:.2}% < 99% ({right}/{total})"
    );
}

#[test]
fn every_filter_has_sample_lines() {
    let missing: Vec<String> = conf_names("filter.d")
        .into_iter()
        .filter(|n| !NOT_FILTERS.contains(&n.as_str()))
        .filter(|n| !Path::new(SAMPLES).join(n).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "filters without a sample log (add samples or list as include): {missing:?}"
    );
}

#[test]
fn fail2ban_client_loads_tree_with_every_jail_enabled() {
    require_oracle();
    let dir = exported();
    let jail = f2b_embedded::get("jail.conf").expect("jail.conf");
    let jails: Vec<&str> = jail
        .lines()
        .filter_map(|l| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .filter(|n| *n != "INCLUDES" && *n != "DEFAULT")
        .collect();
    assert!(jails.len() >= 20, "too few jails: {jails:?}");
    let enable: String = jails
        .iter()
        .map(|j| format!("[{j}]\nenabled = true\n\n"))
        .collect();
    std::fs::create_dir_all(dir.path().join("jail.d")).expect("mkdir");
    std::fs::write(dir.path().join("jail.d/all.local"), enable).expect("write");
    let out = run(Command::new("/usr/bin/fail2ban-client")
        .arg("-c")
        .arg(dir.path())
        .arg("-d"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fail2ban-client -d failed:\n{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("CRITICAL"))
        .collect();
    assert!(
        errors.is_empty(),
        "fail2ban-client reported errors:\n{}",
        errors.join("\n")
    );
    for j in &jails {
        assert!(
            stdout.contains(&format!("['add', '{j}',")),
            "jail {j} not in the command stream"
        );
        assert!(
            stdout.contains(&format!("['set', '{j}', 'addaction',")),
            "jail {j} has no action"
        );
    }
}
