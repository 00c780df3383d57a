//! SO_PEERCRED with a real unprivileged peer: a Python process that drops
//! to uid/gid 65534 (nobody) before connecting must be refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use f2b_proto::{peer_allowed, peer_credentials};

#[test]
fn nobody_is_refused_and_root_is_allowed() {
    // SAFETY: trivial getter.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root to switch the peer to uid 65534"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let path = dir.path().join("s.sock");
    let l = UnixListener::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let p = path.to_string_lossy().into_owned();
    let child = std::thread::spawn(move || {
        common::python(
            &format!(
                "import os, socket\nos.setgid(65534)\nos.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\ns.connect({p:?})\ns.recv(1)\n"
            ),
            "",
        )
    });
    let (conn, _) = l.accept().expect("accept");
    let cred = peer_credentials(&conn).expect("cred");
    assert_eq!((cred.uid, cred.gid), (65534, 65534));
    assert!(!peer_allowed(&conn).expect("check"));
    drop(conn);
    child.join().expect("python peer");

    let child = std::thread::spawn({
        let p = path.to_string_lossy().into_owned();
        move || {
            common::python(
                &format!("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({p:?})\ns.recv(1)\n"),
                "",
            )
        }
    });
    let (conn, _) = l.accept().expect("accept");
    assert!(peer_allowed(&conn).expect("check"));
    drop(conn);
    child.join().expect("python peer");
}
