//! `f2b regex ... | head`: the tool ends quietly when its reader goes away.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn closed_stdout_ends_regex_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut text = String::new();
    for i in 0..50_000 {
        text.push_str(&format!(
            "Jan  1 00:00:{:02} host sshd[1]: Failed password for root from 192.0.2.{} port 22 ssh2\n",
            i % 60,
            i % 250 + 1
        ));
    }
    std::fs::write(&log, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["regex", "-o", "row"])
        .arg(&log)
        .arg(r"Failed \S+ for \S+ from <HOST>")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("192.0.2.1"), "{first}");
    // the reader is gone: the rest of the output meets a closed pipe
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{status:?}: {err}"
    );
}
