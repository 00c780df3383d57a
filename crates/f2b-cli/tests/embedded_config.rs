//! `f2b config list|show|export`: the embedded configuration tree.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn f2b(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(args)
        .output()
        .expect("run f2b")
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("f2b-emb-cli-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

#[test]
fn list_names_the_core_files() {
    let out = f2b(&["config", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for f in [
        "jail.conf",
        "fail2ban.conf",
        "filter.d/sshd.conf",
        "action.d/nftables.conf",
    ] {
        assert!(text.lines().any(|l| l == f), "{f} not listed:\n{text}");
    }
}

#[test]
fn show_prints_a_file_and_rejects_unknown_ones() {
    let out = f2b(&["config", "show", "filter.d/sshd.conf"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("[Definition]"));
    let out = f2b(&["config", "show", "filter.d/nope.conf"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn export_writes_the_tree_and_only_overwrites_with_force() {
    let dir = scratch("export");
    let d = dir.to_str().expect("utf-8 temp path");
    let out = f2b(&["config", "export", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jail = fs::read_to_string(dir.join("jail.conf")).expect("jail.conf exported");
    assert!(jail.contains("[sshd]"));
    assert!(dir.join("action.d/nftables.conf").is_file());
    fs::write(dir.join("jail.conf"), "mine").expect("write");
    let out = f2b(&["config", "export", d]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "second export must refuse to overwrite"
    );
    assert_eq!(
        fs::read_to_string(dir.join("jail.conf")).expect("read"),
        "mine"
    );
    let out = f2b(&["config", "export", "--force", d]);
    assert!(out.status.success());
    assert_eq!(
        fs::read_to_string(dir.join("jail.conf")).expect("read"),
        jail
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(f2b(&["config"]).status.code(), Some(2));
    assert_eq!(f2b(&["config", "export"]).status.code(), Some(2));
}

#[test]
fn embedded_tree_loads_without_diagnostics() {
    let out = f2b(&["--embedded", "-d"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "diagnostics:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = f2b(&["--embedded", "-t"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_embedded_jail_resolves_at_once() {
    let dir = scratch("all-jails");
    let d = dir.to_str().expect("utf-8 path");
    assert!(f2b(&["config", "export", d]).status.success());
    let jail = fs::read_to_string(dir.join("jail.conf")).expect("jail.conf");
    let names: Vec<String> = jail
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('[')?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .filter(|n| n != "DEFAULT" && n != "INCLUDES")
        .collect();
    assert!(names.len() > 80, "only {} jails", names.len());
    let local: String = names
        .iter()
        .map(|n| format!("[{n}]\nenabled = true\n"))
        .collect();
    fs::write(dir.join("jail.local"), local).expect("jail.local");
    let out = f2b(&["-c", d, "-d"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    for n in &names {
        assert!(
            stdout.contains(&format!("['add', '{n}', ")),
            "jail {n} missing from the stream"
        );
        assert!(
            stdout.contains(&format!("['start', '{n}']")),
            "jail {n} not started"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
