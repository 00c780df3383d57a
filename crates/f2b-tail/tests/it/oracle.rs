//! Checkpoints compared with the real fail2ban (`FileContainer` from the
//! installed Python package): same `lastfilepos` and `firstlinemd5` after
//! reading a file to its end, for awkward contents.

use std::fs;
use std::path::Path;
use std::process::Command;

use f2b_tail::Start;

use crate::util::{open, read};

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = r#"
import sys
from fail2ban.server.filter import FileContainer
c = FileContainer(sys.argv[1], sys.argv[2], tail=False)
if c.open():
    while c.readline() is not None:
        pass
    c.close()
print(c.getPos(), c.getHash())
"#;

fn fail2ban_checkpoint(path: &Path, encoding: &str) -> (u64, String) {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .arg(encoding)
        .output()
        .unwrap_or_else(|e| {
            panic!("the fail2ban oracle {PYTHON} is required (apt-get install fail2ban): {e}")
        });
    assert!(
        out.status.success(),
        "the fail2ban oracle failed (is Debian's fail2ban installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let pos = parts.next().and_then(|p| p.parse().ok()).expect("position");
    let hash = parts.next().unwrap_or("").to_owned();
    (pos, hash)
}

#[test]
fn checkpoints_match_fail2ban_file_container() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[&[u8]] = &[
        b"",
        b"no newline at all",
        b"one\n",
        b"one\ntwo\nthree",
        b"crlf\r\nline\r\n",
        b"\n\nempty lines\n",
        b"caf\xc3\xa9 utf8\nsecond\n",
        b"bad \xff\xfe bytes\nmore\npart",
        b"first\n\x00\x01binary\x02\n",
    ];
    for (i, content) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{i}.log"));
        fs::write(&path, content).expect("write");
        let (pos, hash) = fail2ban_checkpoint(&path, "utf-8");
        let mut t = open(&path, Start::Head);
        read(&mut t);
        let cp = t.checkpoint().expect("open");
        assert_eq!(
            (cp.pos, cp.firstlinemd5.as_str()),
            (pos, hash.as_str()),
            "case {i}: {content:?}"
        );
    }
}
