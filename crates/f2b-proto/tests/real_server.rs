//! Against the real Python `fail2ban-server` (Debian's 1.0.2): our client
//! drives it, and every reply it sends is printed by our beautifier and by
//! fail2ban's own Beautifier on the same input; the outputs must match.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hex, python, unhex};
use f2b_core::value::Value;
use f2b_proto::frame::{frame, Frame, FrameDecoder};
use f2b_proto::pickle::{self, decode_reply};
use f2b_proto::{beautify, beautify_error, Client, Reply};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path) -> Server {
    let bin = "/usr/bin/fail2ban-server";
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: install Debian's fail2ban package (the test oracle)"
    );
    let sock = dir.join("f2b.sock");
    // The foreground server reads a configuration too: give it an empty
    // private one (no jails, in-memory database) instead of /etc/fail2ban.
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(
        conf.join("fail2ban.conf"),
        "[Definition]\nloglevel = INFO\ndbfile = :memory:\n",
    )
    .expect("fail2ban.conf");
    std::fs::write(conf.join("jail.conf"), "[DEFAULT]\n").expect("jail.conf");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        // `--async`: the server must not send itself the configuration stream in a
        // background thread while the test drives it (that races with our commands).
        .args(["-f", "-x", "--async", "--loglevel", "INFO", "--logtarget"])
        .arg(dir.join("server.log"))
        .arg("-s")
        .arg(&sock)
        .arg("-p")
        .arg(dir.join("server.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fail2ban-server");
    let server = Server(child);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Ok(mut c) = Client::connect(&sock, Some(Duration::from_secs(5))) {
            if c.send(&[Value::from("ping")]).is_ok() {
                return server;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fail2ban-server did not come up on {}", sock.display());
}

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

#[test]
fn drive_python_server_and_match_its_beautifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("log file");
    let log = log.to_string_lossy().into_owned();
    let _server = start_server(dir.path());
    let sock = dir.path().join("f2b.sock");
    let mut c = Client::connect(&sock, Some(Duration::from_secs(10))).expect("connect");

    let script: Vec<Vec<String>> = vec![
        words(&["ping"]),
        words(&["version"]),
        words(&["echo", "x", "y z"]),
        words(&["status"]),
        words(&["add", "test", "polling"]),
        words(&["add", "test", "polling"]),
        words(&["set", "test", "addlogpath", &log]),
        words(&["set", "test", "addfailregex", "^fail from <HOST>$"]),
        words(&["set", "test", "addfailregex", "^bad user \\S+ from <HOST>$"]),
        words(&["set", "test", "addignoreregex", "^ignore"]),
        words(&["set", "test", "maxretry", "2"]),
        words(&["set", "test", "findtime", "600"]),
        words(&["set", "test", "bantime", "3600"]),
        words(&["set", "test", "addignoreip", "10.0.0.0/8"]),
        words(&["set", "test", "addignoreip", "127.0.0.1"]),
        words(&["set", "test", "delignoreip", "127.0.0.1"]),
        words(&["set", "test", "datepattern", "{^LN-BEG}"]),
        words(&["set", "test", "addaction", "dummyact"]),
        words(&["start", "test"]),
        words(&["status"]),
        words(&["status", "test"]),
        words(&["status", "test", "short"]),
        words(&["status", "test", "cymru"]),
        words(&["get", "test", "logpath"]),
        words(&["get", "test", "logencoding"]),
        words(&["get", "test", "failregex"]),
        words(&["get", "test", "ignoreregex"]),
        words(&["get", "test", "ignoreip"]),
        words(&["get", "test", "datepattern"]),
        words(&["get", "test", "journalmatch"]),
        words(&["get", "test", "maxretry"]),
        words(&["get", "test", "findtime"]),
        words(&["get", "test", "bantime"]),
        words(&["get", "test", "usedns"]),
        words(&["get", "test", "ignoreself"]),
        words(&["get", "test", "actions"]),
        words(&["get", "test", "actionproperties", "dummyact"]),
        words(&["get", "test", "actionmethods", "dummyact"]),
        words(&["get", "test", "action", "dummyact", "actionban"]),
        words(&["get", "loglevel"]),
        words(&["set", "loglevel", "DEBUG"]),
        words(&["get", "logtarget"]),
        words(&["get", "syslogsocket"]),
        words(&["get", "dbfile"]),
        words(&["get", "dbpurgeage"]),
        words(&["set", "test", "banip", "192.0.2.1", "192.0.2.2"]),
        words(&["get", "test", "banip"]),
        words(&["get", "test", "banip", ","]),
        words(&["get", "test", "banip", "--with-time"]),
        words(&["banned"]),
        words(&["banned", "192.0.2.1", "198.51.100.9"]),
        words(&["get", "test", "banned"]),
        words(&["status", "test"]),
        words(&["set", "test", "unbanip", "192.0.2.1"]),
        words(&["unban", "--all"]),
        words(&["get", "nosuchjail", "maxretry"]),
        words(&["status", "nosuchjail"]),
        words(&["nonsense"]),
        words(&["get", "test"]),
        words(&["set", "test", "delfailregex", "7"]),
        words(&["flushlogs"]),
        words(&["stop", "test"]),
        words(&["status"]),
    ];
    let mut cases = Vec::new();
    for cmd in &script {
        let args: Vec<Value> = cmd.iter().map(|s| Value::Str(s.clone())).collect();
        let raw = c.send(&args).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{cmd:?}: {e}\nafter {} commands; server log:\n{log}",
                cases.len()
            )
        });
        cases.push((cmd.clone(), raw));
    }
    // A garbage request: the Python server answers with a bare "ERROR: ..."
    // string (not a tuple), and keeps serving.
    let mut s = UnixStream::connect(&sock).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        panic!("raw connect: {e}; server log:\n{log}")
    });
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&frame(b"\x80\x05not a pickle")).expect("write");
    let mut dec = FrameDecoder::default();
    let mut buf = [0u8; 4096];
    let garbage_reply = loop {
        if let Some(Frame::Message(m)) = dec.next_frame() {
            break decode_reply(&m).expect("error reply decodes");
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "server closed");
        dec.feed(&buf[..n]).expect("frame");
    };
    match Reply::from_value(garbage_reply) {
        Reply::Other(Value::Str(e)) => assert!(e.starts_with("ERROR: "), "{e}"),
        other => panic!("unexpected {other:?}"),
    }

    // Finally stop the server the way `fail2ban-client stop` does.
    let stop = c.send(&[Value::from("stop")]).expect("stop");
    cases.push((words(&["stop"]), stop));
    let _ = c.close();

    // Shape checks that do not depend on the oracle.
    let reply_of = |w: &[&str]| {
        cases
            .iter()
            .find(|(c, _)| c == &words(w))
            .map(|(_, r)| Reply::from_value(r.clone()))
            .expect("case")
    };
    assert_eq!(reply_of(&["ping"]), Reply::Ok(Value::from("pong")));
    assert_eq!(
        reply_of(&["echo", "x", "y z"]),
        Reply::Ok(Value::List(vec!["x".into(), "y z".into()]))
    );
    assert_eq!(reply_of(&["stop"]), Reply::Ok(Value::None));
    assert!(matches!(
        reply_of(&["get", "nosuchjail", "maxretry"]),
        Reply::Err(Value::Exception { ref class, .. }) if class == "UnknownJailException"
    ));

    // Oracle: fail2ban's Beautifier on the very same replies, fed through
    // Python's own pickle of what the server sent (our re-encoding).
    let input: String = cases
        .iter()
        .map(|(c, r)| {
            let v = Value::Tuple(vec![
                Value::List(c.iter().map(|s| Value::Str(s.clone())).collect()),
                r.clone(),
            ]);
            hex(&pickle::encode(&v)) + "\n"
        })
        .collect();
    let out = python(
        r#"
import pickle, sys, logging
logging.disable(logging.CRITICAL)
from fail2ban.client.beautifier import Beautifier
for line in sys.stdin:
    cmd, ret = pickle.loads(bytes.fromhex(line.strip()))
    b = Beautifier(cmd)
    out = b.beautify(ret[1]) if ret[0] == 0 else b.beautifyError(ret[1])
    print(str(out).encode().hex())
"#,
        &input,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    let mut transcript = String::new();
    for ((cmd, raw), line) in cases.iter().zip(lines) {
        let want = String::from_utf8(unhex(line)).expect("utf-8");
        let got = match Reply::from_value(raw.clone()) {
            Reply::Ok(v) => beautify(cmd, &v),
            Reply::Err(e) => beautify_error(cmd, &e),
            Reply::Other(v) => panic!("{cmd:?}: odd reply {v:?}"),
        };
        assert_eq!(got, want, "{cmd:?} -> {raw:?}");
        transcript.push_str(&format!("$ {}\n{}\n", cmd.join(" "), got));
    }
    assert!(transcript.contains("Status for the jail: test\n|- Filter\n|  |- Currently failed:\t0"));
    assert!(transcript.contains("Shutdown successful"));
    eprintln!("{transcript}");
}
