//! Test helpers: the Python oracle (`/usr/bin/python3` with fail2ban).
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

pub const PYTHON: &str = "/usr/bin/python3";

/// Runs a Python script with `input` on stdin; panics with a clear message
/// if the oracle is missing or the script fails.
pub fn python(script: &str, input: &str) -> String {
    assert!(
        std::path::Path::new(PYTHON).exists(),
        "the Python oracle {PYTHON} is missing (install Debian's python3 and fail2ban packages)"
    );
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn /usr/bin/python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("python output");
    writer.join().expect("writer");
    assert!(
        out.status.success(),
        "python oracle failed (is fail2ban installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 from python")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
