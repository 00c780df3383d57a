//! Hostile input on the control socket (issue 5): a running `f2b server` gets malicious
//! pickles (GLOBAL/REDUCE/INST/OBJ/BUILD/..., made at test time by the real Python
//! `pickle` module), broken framing, a 100 MiB frame, random bytes, deep nesting, unknown
//! commands, wrong arity and types, and a non-root peer. Each must get an error reply or
//! a closed connection, nothing may run (a marker file the payloads would create stays
//! absent, no ban appears) and the server must still answer `ping` afterwards.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{rec_action, Srv};
use f2b_core::value::Value;
use f2b_proto::frame::{frame, CLOSE, END};
use f2b_proto::pickle;

const PY: &str = "/usr/bin/python3";

fn srv() -> Srv {
    let rec = rec_action("actions.txt");
    Srv::new(
        "[a]\nenabled = true\nfilter = app\nlogpath = {dir}/a.log\naction = rec[name=a]\n\
         maxretry = 1\nbantime = 1h\nignoreself = false\n",
        &[
            (
                "filter.d/app.conf",
                "[Definition]\nfailregex = ^fail <HOST>$\ndatepattern = {^LN-BEG}EPOCH\n",
            ),
            ("action.d/rec.conf", &rec),
        ],
    )
    .start(&[])
}

/// What came back for one message.
#[derive(Debug)]
enum Outcome {
    /// A decoded reply.
    Reply(Value),
    /// The server closed the connection (or reset it).
    Closed,
    /// A reply that is not a valid pickle (must not happen).
    Garbage,
}

impl Outcome {
    /// An error reply (`(1, exc)` or fail2ban's `ERROR: ...` string) or a closed connection.
    fn is_refusal(&self) -> bool {
        match self {
            Outcome::Closed => true,
            Outcome::Reply(Value::Tuple(v)) | Outcome::Reply(Value::List(v)) => {
                v.first() == Some(&Value::Int(1))
            }
            Outcome::Reply(Value::Str(s)) => s.starts_with("ERROR"),
            _ => false,
        }
    }
}

fn connect(s: &Srv) -> UnixStream {
    let c = UnixStream::connect(s.file("f2b.sock")).expect("connect to the control socket");
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    c
}

/// Reads one reply frame (up to the terminator) or notices the close.
fn read_reply(c: &mut UnixStream) -> Outcome {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(i) = buf.windows(END.len()).position(|w| w == END) {
            return match pickle::decode_reply(&buf[..i]) {
                Ok(v) => Outcome::Reply(v),
                Err(_) => Outcome::Garbage,
            };
        }
        match c.read(&mut chunk) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!(
                    "no reply and no close within 15 s (got {} bytes)",
                    buf.len()
                )
            }
            Err(_) => return Outcome::Closed,
        }
    }
}

/// Sends raw bytes on a fresh connection and returns the outcome (a failed write is a
/// closed connection).
fn send_raw(s: &Srv, bytes: &[u8]) -> Outcome {
    let mut c = connect(s);
    if c.write_all(bytes).is_err() {
        return Outcome::Closed;
    }
    let out = read_reply(&mut c);
    let _ = c.write_all(CLOSE);
    out
}

/// Sends one framed pickle.
fn send_pickle(s: &Srv, p: &[u8]) -> Outcome {
    send_raw(s, &frame(p))
}

fn cmd(args: &[Value]) -> Vec<u8> {
    pickle::encode(&Value::List(args.to_vec()))
}

fn strs(args: &[&str]) -> Vec<u8> {
    cmd(&args.iter().map(|a| Value::str(*a)).collect::<Vec<_>>())
}

/// After each hostile message: nothing ran, and the server is alive and sane.
fn still_fine(s: &Srv, marker: &Path, what: &str) {
    assert!(
        !marker.exists(),
        "{what}: the payload ran (marker file created)"
    );
    match send_pickle(s, &strs(&["ping"])) {
        Outcome::Reply(v) => assert_eq!(
            v,
            Value::Tuple(vec![Value::Int(0), Value::str("pong")]),
            "{what}: ping afterwards"
        ),
        other => panic!(
            "{what}: no ping reply afterwards: {other:?}\nlog:\n{}",
            s.log()
        ),
    }
    assert!(
        s.banned("a").is_empty(),
        "{what}: a ban appeared: {:?}",
        s.banned("a")
    );
}

/// Malicious pickles made by Python's own `pickle` module at test time.
fn python_payloads(marker: &Path) -> Vec<(String, Vec<u8>)> {
    let script = r#"
import pickle, os, sys, subprocess, binascii
m = sys.argv[1]
class Sys:
    def __reduce__(self): return (os.system, ('touch ' + m,))
class Popen:
    def __reduce__(self): return (subprocess.Popen, (['touch', m],))
class Ev:
    def __reduce__(self): return (eval, ("__import__('os').system('touch " + m + "')",))
class Inst: pass
out = []
for p in range(0, 6):
    out.append(('reduce-os.system-proto%d' % p, pickle.dumps(Sys(), protocol=p)))
    out.append(('list-with-reduce-proto%d' % p, pickle.dumps(['set', 'a', 'banip', Sys()], protocol=p)))
out.append(('popen-proto2', pickle.dumps(Popen(), protocol=2)))
out.append(('eval-proto4', pickle.dumps(Ev(), protocol=4)))
out.append(('ping-then-reduce', pickle.dumps(['ping', Ev()], protocol=3)))
o = Inst(); o.x = 1
out.append(('class-instance-build-proto2', pickle.dumps(o, protocol=2)))
out.append(('class-instance-proto0', pickle.dumps(o, protocol=0)))
t = ('touch ' + m).encode()
out.append(('hand-GLOBAL-REDUCE', b"cos\nsystem\n(S'" + t + b"'\ntR."))
out.append(('hand-INST', b"(S'" + t + b"'\nios\nsystem\n."))
out.append(('hand-OBJ', b"(cos\nsystem\nS'" + t + b"'\no."))
out.append(('hand-STACK_GLOBAL', b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(t)]) + t + b"\x85R."))
out.append(('hand-PERSID', b"Pfoo\n."))
out.append(('hand-BINPERSID', b"\x80\x02X\x03\x00\x00\x00foo."[:-1] + b"Q."))
out.append(('hand-EXT1', b"\x80\x02\x82\x01."))
out.append(('hand-BUILD-on-list', b"\x80\x02]}b."))
out.append(('hand-NEWOBJ', b"\x80\x02cbuiltins\nobject\n)\x81."))
for name, data in out:
    print(name, binascii.hexlify(data).decode())
"#;
    let out = Command::new(PY)
        .arg("-c")
        .arg(script)
        .arg(marker)
        .output()
        .unwrap_or_else(|e| panic!("{PY} is needed for this test (Python pickle oracle): {e}"));
    assert!(
        out.status.success(),
        "{PY} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<(String, Vec<u8>)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, h)| {
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            (n.to_owned(), bytes)
        })
        .collect();
    assert!(v.len() >= 20, "python made too few payloads: {text}");
    v
}

#[test]
fn malicious_pickles_run_nothing() {
    let s = srv();
    let marker = s.file("PWNED");
    // Sanity: the payloads really are dangerous when given to Python's pickle.loads.
    let sanity = python_payloads(&marker);
    let (_, first) = &sanity[0];
    let hex: String = first.iter().map(|b| format!("{b:02x}")).collect();
    let st = Command::new(PY)
        .arg("-c")
        .arg(format!(
            "import pickle,binascii; pickle.loads(binascii.unhexlify('{hex}'))"
        ))
        .status()
        .unwrap();
    assert!(
        st.success() && marker.exists(),
        "payload sanity check failed"
    );
    std::fs::remove_file(&marker).unwrap();
    for (name, p) in python_payloads(&marker) {
        let out = send_pickle(&s, &p);
        assert!(out.is_refusal(), "{name}: not refused: {out:?}");
        still_fine(&s, &marker, &name);
    }
    // A few more right after each other on one connection: the connection carries on.
    let mut c = connect(&s);
    for (name, p) in python_payloads(&marker).iter().take(6) {
        c.write_all(&frame(p)).unwrap();
        let out = read_reply(&mut c);
        assert!(out.is_refusal(), "{name} (same connection): {out:?}");
    }
    c.write_all(&frame(&strs(&["ping"]))).unwrap();
    match read_reply(&mut c) {
        Outcome::Reply(v) => assert_eq!(v, Value::Tuple(vec![Value::Int(0), Value::str("pong")])),
        other => panic!("same connection after hostile pickles: {other:?}"),
    }
    still_fine(&s, &marker, "end");
}

#[test]
fn broken_framing_and_garbage() {
    let s = srv();
    let marker = s.file("PWNED");
    let ping = strs(&["ping"]);
    // Truncated pickles, each properly terminated.
    for cut in [1, 2, ping.len() / 2, ping.len() - 1] {
        let out = send_pickle(&s, &ping[..cut]);
        assert!(out.is_refusal(), "truncated at {cut}: {out:?}");
        still_fine(&s, &marker, &format!("truncated at {cut}"));
    }
    // Empty frame, bare terminators, half a terminator then EOF.
    assert!(send_raw(&s, END).is_refusal(), "empty frame");
    still_fine(&s, &marker, "empty frame");
    {
        let mut c = connect(&s);
        c.write_all(&ping).unwrap();
        c.write_all(&END[..8]).unwrap();
        drop(c); // EOF in the middle of a frame
    }
    still_fine(&s, &marker, "eof mid-frame");
    // A pickle that claims a 100 MiB string but sends a few bytes.
    let mut lie = vec![0x80, 0x04, b'X'];
    lie.extend_from_slice(&(100u32 << 20).to_le_bytes());
    lie.extend_from_slice(b"abc.");
    assert!(send_pickle(&s, &lie).is_refusal(), "length lie");
    still_fine(&s, &marker, "length lie");
    // A 100 MiB frame: refused (closed) without buffering it all.
    {
        let t0 = Instant::now();
        let mut c = connect(&s);
        let chunk = vec![b'A'; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..100 {
            if c.write_all(&chunk).is_err() {
                break;
            }
            sent += 1;
        }
        let _ = c.write_all(END);
        let out = read_reply(&mut c);
        assert!(
            matches!(out, Outcome::Closed) || out.is_refusal(),
            "100 MiB frame: {out:?} after {sent} MiB"
        );
        assert!(t0.elapsed() < Duration::from_secs(30));
    }
    still_fine(&s, &marker, "100 MiB frame");
    // A big but valid-looking frame: a 100 MiB BINUNICODE actually sent.
    {
        let mut c = connect(&s);
        let mut head = vec![0x80, 0x04, b'X'];
        head.extend_from_slice(&(100u32 << 20).to_le_bytes());
        let _ = c.write_all(&head);
        let chunk = vec![b'B'; 1 << 20];
        for _ in 0..100 {
            if c.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = c.write_all(b".");
        let _ = c.write_all(END);
        let out = read_reply(&mut c);
        assert!(out.is_refusal(), "100 MiB string: {out:?}");
    }
    still_fine(&s, &marker, "100 MiB string");
    // Random bytes (deterministic xorshift), framed and unframed.
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for i in 0..300 {
        let len = 1 + (i * 37) % 700;
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push((x >> 24) as u8);
        }
        let out = if i % 2 == 0 {
            send_pickle(&s, &b)
        } else {
            let mut with_proto = vec![0x80, 0x02];
            with_proto.extend_from_slice(&b);
            send_pickle(&s, &with_proto)
        };
        assert!(out.is_refusal(), "random #{i}: {out:?}");
        if i % 50 == 0 {
            still_fine(&s, &marker, &format!("random #{i}"));
        }
    }
    still_fine(&s, &marker, "random bytes");
}

#[test]
fn deep_nesting_is_refused_without_crashing() {
    let s = srv();
    let marker = s.file("PWNED");
    // Nested lists: EMPTY_LIST x n, APPEND x (n-1), STOP.
    for n in [1_000usize, 100_000, 400_000] {
        let mut p = vec![0x80, 0x02];
        p.extend(std::iter::repeat_n(b']', n));
        p.extend(std::iter::repeat_n(b'a', n - 1));
        p.push(b'.');
        let out = send_pickle(&s, &p);
        assert!(out.is_refusal(), "nesting {n}: {out:?}");
        still_fine(&s, &marker, &format!("nesting {n}"));
    }
    // Nested tuples through MARK ... TUPLE, and a million MARKs.
    let n = 200_000;
    let mut p = vec![0x80, 0x02];
    p.extend(std::iter::repeat_n(b'(', n));
    p.extend(std::iter::repeat_n(b't', n));
    p.push(b'.');
    let out = send_pickle(&s, &p);
    assert!(out.is_refusal(), "tuple nesting: {out:?}");
    still_fine(&s, &marker, "tuple nesting");
    let mut p = vec![0x80, 0x02];
    p.extend(std::iter::repeat_n(b'(', 1_000_000));
    let out = send_pickle(&s, &p);
    assert!(out.is_refusal(), "marks: {out:?}");
    still_fine(&s, &marker, "marks");
    // A command whose argument is a deeply nested list: MARK, three strings, the
    // nested list, LIST, STOP (built by hand: encoding it recursively here would
    // overflow the test's own stack).
    let mut p = vec![0x80, 0x02, b'('];
    for a in ["set", "a", "banip"] {
        p.push(b'X');
        p.extend_from_slice(&(a.len() as u32).to_le_bytes());
        p.extend_from_slice(a.as_bytes());
    }
    p.extend(std::iter::repeat_n(b']', 10_000));
    p.extend(std::iter::repeat_n(b'a', 9_999));
    p.extend_from_slice(b"l.");
    let out = send_pickle(&s, &p);
    assert!(out.is_refusal(), "nested argument: {out:?}");
    still_fine(&s, &marker, "nested argument");
}

#[test]
fn bad_commands_get_errors() {
    let s = srv();
    let marker = s.file("PWNED");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown", strs(&["frobnicate"])),
        ("unknown-long", strs(&["x"; 1000])),
        ("empty", strs(&[])),
        ("set", strs(&["set"])),
        ("get x", strs(&["get", "x"])),
        ("status a b c", strs(&["status", "a", "b", "c"])),
        ("set x maxretry", strs(&["set", "x", "maxretry"])),
        ("get nojail maxretry", strs(&["get", "nojail", "maxretry"])),
        (
            "set jail maxretry [1]",
            cmd(&[
                Value::str("set"),
                Value::str("jail"),
                Value::str("maxretry"),
                Value::List(vec![Value::Int(1)]),
            ]),
        ),
        (
            "set a maxretry [1]",
            cmd(&[
                Value::str("set"),
                Value::str("a"),
                Value::str("maxretry"),
                Value::List(vec![Value::Int(1)]),
            ]),
        ),
        ("set a maxretry abc", strs(&["set", "a", "maxretry", "abc"])),
        ("set a bantime xyz", strs(&["set", "a", "bantime", "xyz"])),
        ("set a loglevel", strs(&["set", "loglevel", "NOPE"])),
        ("int command", cmd(&[Value::Int(1), Value::Int(2)])),
        ("none command", cmd(&[Value::None])),
        ("not a list", pickle::encode(&Value::str("ping"))),
        ("int", pickle::encode(&Value::Int(7))),
        ("bytes command", cmd(&[Value::Bytes(b"ping".to_vec())])),
    ];
    for (name, p) in cases {
        let out = send_pickle(&s, &p);
        assert!(out.is_refusal(), "{name}: {out:?}");
        still_fine(&s, &marker, name);
    }
    // The jail's settings are untouched.
    assert_eq!(s.ok(&["get", "a", "maxretry"]), Value::Int(1));
}

#[test]
fn invalid_failregex_is_refused() {
    // fail2ban compiles the regex in `addfailregex` and replies with the error
    // ("Unable to compile regular expression", "No failure-id group"); the jail keeps
    // its old regexes and `get failregex` still works.
    let s = srv();
    let before = s.ok(&["get", "a", "failregex"]);
    assert!(
        matches!(&before, Value::List(v) if v.len() == 1),
        "{before:?}"
    );
    for re in ["(", "[a-", "fail (?P<host>x", "no host group here"] {
        let out = send_pickle(&s, &strs(&["set", "a", "addfailregex", re]));
        assert!(out.is_refusal(), "addfailregex {re:?} accepted: {out:?}");
    }
    assert_eq!(s.ok(&["get", "a", "failregex"]), before);
}

#[test]
fn shell_metacharacters_in_a_manual_ban_do_not_run() {
    // fail2ban accepts any id for `banip` (not only addresses); the action must get it
    // escaped.
    let s = srv();
    let marker = s.file("PWNED");
    let m = marker.display().to_string();
    for id in [
        format!("x;touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x|touch {m}"),
        format!("x&&touch {m}"),
        format!("x'\"; touch {m}; '\""),
    ] {
        let _ = s.cmd(&["set", "a", "banip", &id]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists(), "banip {id:?} ran the payload");
        let _ = s.cmd(&["set", "a", "unbanip", &id]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists(), "unbanip {id:?} ran the payload");
    }
    still_fine(&s, &marker, "shell metacharacters");
}

/// A client running as `nobody` (uid 65534): Python, started with setuid by the test.
fn as_nobody(sock: &Path, command: &str) -> String {
    as_uid(65534, sock, command)
}

/// The same client as any uid (gid = uid).
fn as_uid(uid: u32, sock: &Path, command: &str) -> String {
    use std::os::unix::process::CommandExt;
    let script = r#"
import socket, pickle, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print('CONNECT-FAILED', e.errno); sys.exit(0)
try:
    s.sendall(pickle.dumps(eval(sys.argv[2]), 2) + b'<F2B_END_COMMAND>')
except OSError:
    pass
data = b''
while True:
    try:
        b = s.recv(65536)
    except OSError as e:
        print('RESET', e.errno); sys.exit(0)
    if not b: break
    data += b
    if data.endswith(b'<F2B_END_COMMAND>'): break
if not data: print('CLOSED'); sys.exit(0)
class U(pickle.Unpickler):
    def find_class(self, m, n):
        return lambda *a: (m + '.' + n, a)
print('REPLY', repr(U(__import__('io').BytesIO(data[:-17])).load()))
"#;
    let out = Command::new(PY)
        .arg("-c")
        .arg(script)
        .arg(sock)
        .arg(command)
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap_or_else(|e| panic!("{PY} as uid {uid}: {e}"));
    assert!(
        out.status.success(),
        "nobody client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn non_root_peer_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if !nix_is_root() {
        panic!("this test needs root (to run a client as uid 65534)");
    }
    let s = srv();
    let marker = s.file("PWNED");
    let sock = s.file("f2b.sock");
    // With the socket's own permissions nobody cannot even connect.
    let r = as_nobody(&sock, "['ping']");
    assert!(r.starts_with("CONNECT-FAILED"), "default permissions: {r}");
    // Open the directory and socket to everyone: SO_PEERCRED must still refuse.
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    for c in [
        "['set', 'a', 'banip', '192.0.2.99']",
        "['ping']",
        "['get', 'a', 'banip']",
        "['stop']",
    ] {
        let r = as_nobody(&sock, c);
        let refused = r == "CLOSED"
            || r.starts_with("RESET")
            || (r.starts_with("REPLY (1,") && !r.contains("pong"));
        assert!(refused, "{c} from uid 65534 not refused: {r}");
        still_fine(&s, &marker, c);
    }
    assert!(
        s.log().contains("Refused a control connection"),
        "refusal not logged"
    );
}

/// A server running as an unprivileged user (uid 65534) accepts commands from that
/// user and from root, and refuses every other uid.
#[test]
fn server_owner_may_command_other_users_may_not() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix_is_root() {
        panic!("this test needs root (to run the server and clients as other users)");
    }
    let s = Srv::new(
        "[a]\nenabled = true\nfilter = app\nlogpath = {dir}/a.log\naction = rec[name=a]\n\
         maxretry = 1\nbantime = 1h\nignoreself = false\n",
        &[
            (
                "filter.d/app.conf",
                "[Definition]\nfailregex = ^fail <HOST>$\ndatepattern = {^LN-BEG}EPOCH\n",
            ),
            ("action.d/rec.conf", &rec_action("actions.txt")),
        ],
    );
    // Hand the whole directory to uid 65534 (world-traversable so other uids reach the
    // socket once it is opened up below).
    fn chown_all(p: &Path) {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                chown_all(&e.unwrap().path());
            }
        }
    }
    chown_all(s.path());
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(common::f2b())
        .args(["server", "-f", "-x", "-c"])
        .arg(s.path())
        .arg("start")
        .current_dir(s.path())
        .uid(65534)
        .gid(65534)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start f2b server as uid 65534");
    let sock = s.file("f2b.sock");
    let up = common::wait_until(20.0, || as_uid(65534, &sock, "['ping']").contains("pong"));
    let result = std::panic::catch_unwind(|| {
        assert!(
            up,
            "server as uid 65534 did not answer its owner; log:\n{}",
            s.log()
        );
        // Root may command it.
        assert!(
            matches!(send_pickle(&s, &strs(&["ping"])), Outcome::Reply(Value::Tuple(ref v)) if v.first() == Some(&Value::Int(0))),
            "root refused"
        );
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        for c in ["['ping']", "['set', 'a', 'banip', '192.0.2.98']"] {
            let r = as_uid(65533, &sock, c);
            let refused = r == "CLOSED"
                || r.starts_with("RESET")
                || (r.starts_with("REPLY (1,") && !r.contains("pong"));
            assert!(refused, "{c} from uid 65533 not refused: {r}");
        }
        let r = as_uid(65534, &sock, "['get', 'a', 'banip']");
        assert!(r.starts_with("REPLY (0, [])"), "owner: {r}");
    });
    let _ = as_uid(65534, &sock, "['stop']");
    if !common::wait_until(10.0, || child.try_wait().ok().flatten().is_some()) {
        let _ = child.kill();
    }
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn nix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
