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
