//! The stock Python `fail2ban-client` talking to a minimal server built
//! from this crate's pieces (FrameDecoder + decode + Reply::to_frame): it
//! must accept our replies, including exceptions, and print exactly what
//! our beautifier prints.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;

use f2b_core::value::Value;
use f2b_proto::frame::{Frame, FrameDecoder};
use f2b_proto::pickle::{Limits, Protocol};
use f2b_proto::{beautify, beautify_error, decode_request, peer_allowed, Reply};

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn pair(k: &str, v: Value) -> Value {
    Value::Tuple(vec![s(k), v])
}

/// The canned server: reply for a command.
fn answer(cmd: &[String]) -> Reply {
    let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let exc = |class: &str, m: &str| {
        Reply::Err(Value::Exception {
            class: class.into(),
            message: m.into(),
        })
    };
    match c.as_slice() {
        ["ping", ..] => Reply::Ok(s("pong")),
        ["version"] => Reply::Ok(s("1.0.2")),
        ["echo", rest @ ..] => Reply::Ok(Value::List(rest.iter().map(|x| s(x)).collect())),
        ["status"] => Reply::Ok(Value::List(vec![
            pair("Number of jail", Value::Int(2)),
            pair("Jail list", s("sshd, nginx-http-auth")),
        ])),
        ["status", "sshd", ..] => Reply::Ok(Value::List(vec![
            pair(
                "Filter",
                Value::List(vec![
                    pair("Currently failed", Value::Int(3)),
                    pair("Total failed", Value::Int(41)),
                    pair("File list", Value::List(vec![s("/var/log/auth.log")])),
                ]),
            ),
            pair(
                "Actions",
                Value::List(vec![
                    pair("Currently banned", Value::Int(2)),
                    pair("Total banned", Value::Int(9)),
                    pair(
                        "Banned IP list",
                        Value::List(vec![s("192.0.2.1"), s("2001:db8::1")]),
                    ),
                ]),
            ),
        ])),
        ["get", "loglevel"] => Reply::Ok(s("INFO")),
        ["get", "dbpurgeage"] => Reply::Ok(Value::Int(86400)),
        ["get", "dbfile"] => Reply::Ok(Value::None),
        ["get", "sshd", "failregex"] => Reply::Ok(Value::List(vec![s("^a <HOST>$"), s("^b$")])),
        ["get", "sshd", "datepattern"] => {
            Reply::Ok(Value::Tuple(vec![s("%Y-%m-%d"), s("Year-Month-Day")]))
        }
        ["get", "sshd", "bantime"] => Reply::Ok(Value::Float(600.5)),
        ["banned"] => Reply::Ok(Value::List(vec![Value::Dict(vec![(
            s("sshd"),
            Value::List(vec![s("192.0.2.1")]),
        )])])),
        ["get", "nosuch", ..] => exc("UnknownJailException", "nosuch"),
        ["add", "sshd", ..] => exc("DuplicateJailException", "sshd"),
        ["get", "sshd"] => exc("IndexError", "list index out of range"),
        ["set", "sshd", "maxretry", ..] => {
            exc("ValueError", "invalid literal for int() with base 10: 'x'")
        }
        ["get", "sshd", "x"] => exc("KeyError", "x"),
        ["get", "sshd", "y"] => exc(
            "re.error",
            "missing ), unterminated subpattern at position 0",
        ),
        ["stop"] => Reply::Ok(Value::None),
        _ => exc("Exception", "Invalid command"),
    }
}

#[test]
fn stock_client_reads_our_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("f2b.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let server = std::thread::spawn(move || {
        let mut served = 0;
        let mut protocols = Vec::new();
        for conn in listener.incoming() {
            let mut conn = conn.expect("accept");
            assert!(peer_allowed(&conn).expect("peer"));
            let mut dec = FrameDecoder::default();
            let mut buf = [0u8; 4096];
            let mut stop = false;
            'conn: loop {
                let n = match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                dec.feed(&buf[..n]).expect("frame");
                while let Some(f) = dec.next_frame() {
                    match f {
                        Frame::Close => break 'conn,
                        Frame::Message(m) => {
                            let req = decode_request(&m, &Limits::default()).expect("request");
                            protocols.push(req.protocol);
                            let args = req.args().expect("request is a list");
                            let cmd: Vec<String> =
                                args.iter().map(f2b_proto::pyfmt::py_str).collect();
                            stop = cmd == ["stop"];
                            let reply = answer(&cmd);
                            conn.write_all(&reply.to_frame(req.protocol))
                                .expect("write");
                            served += 1;
                        }
                    }
                }
            }
            if stop {
                break;
            }
        }
        (served, protocols)
    });

    let cmds: Vec<Vec<&str>> = vec![
        vec!["ping"],
        vec!["version"],
        vec!["echo", "hello", "world"],
        vec!["status"],
        vec!["status", "sshd"],
        vec!["get", "loglevel"],
        vec!["get", "dbpurgeage"],
        vec!["get", "dbfile"],
        vec!["get", "sshd", "failregex"],
        vec!["get", "sshd", "datepattern"],
        vec!["get", "sshd", "bantime"],
        vec!["banned"],
        vec!["get", "nosuch", "maxretry"],
        vec!["add", "sshd", "auto"],
        vec!["get", "sshd"],
        vec!["set", "sshd", "maxretry", "x"],
        vec!["get", "sshd", "x"],
        vec!["get", "sshd", "y"],
        vec!["nonsense"],
        vec!["stop"],
    ];
    let client = "/usr/bin/fail2ban-client";
    assert!(
        std::path::Path::new(client).exists(),
        "{client} is missing: install Debian's fail2ban package (the test oracle)"
    );
    for c in &cmds {
        let out = Command::new(client)
            .arg("-s")
            .arg(&sock)
            .args(c)
            .output()
            .expect("run fail2ban-client");
        let cmd: Vec<String> = c.iter().map(|x| x.to_string()).collect();
        let want = match answer(&cmd) {
            Reply::Ok(v) => beautify(&cmd, &v),
            Reply::Err(e) => beautify_error(&cmd, &e),
            Reply::Other(_) => unreachable!(),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout,
            format!("{want}\n"),
            "{c:?}: stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = matches!(answer(&cmd), Reply::Ok(_));
        assert_eq!(
            out.status.success(),
            ok,
            "{c:?} exit status {:?}",
            out.status
        );
    }
    let (served, protocols) = server.join().expect("server thread");
    assert_eq!(served, cmds.len());
    assert!(
        protocols.iter().all(|&p| p == Protocol::V5),
        "{protocols:?}"
    );
}
