//! `f2b -i` with commands piped in (standard input is not a terminal, so no line
//! editor): the commands run in order, each prints what the same command prints on
//! its own, after fail2ban-client's prompt; `help`, unterminated quotes, `exit`, end of
//! input, and a command given with `-i` (run first, like fail2ban-client).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{f2b, Srv};

fn client(s: &Srv, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(f2b())
        .arg("-c")
        .arg(s.path())
        .args(args)
        .env_remove("HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run f2b client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn server() -> Srv {
    Srv::new(
        "[a]\nenabled = true\nbackend = polling\nfilter = app\nlogpath = {dir}/a.log\n\
         bantime = 1h\n",
        &[(
            "filter.d/app.conf",
            "[Definition]\nfailregex = ^fail <HOST>$\n",
        )],
    )
    .start(&[])
}

#[test]
fn piped_session_runs_commands_in_order() {
    let s = server();
    let single = |args: &[&str]| {
        let (code, out) = client(&s, args, "");
        assert_eq!(code, 0, "{args:?}: {out}");
        out
    };
    let ping = single(&["ping"]);
    assert_eq!(ping, "Server replied: pong\n");
    let (code, out) = client(
        &s,
        &["-i"],
        "ping\n\nset a banip 192.0.2.7\n  get a banip  \necho 'open\nhelp\nexit\nset a unbanip 192.0.2.7\n",
    );
    assert_eq!(code, 0, "{out}");
    // The ban made in the session is seen by the next command of the session, and the
    // command after `exit` never ran.
    let banned = single(&["get", "a", "banip"]);
    assert!(banned.contains("192.0.2.7"), "{banned}");
    let (_, usage) = client(&s, &["-h"], "");
    let expected = format!(
        "fail2ban> {ping}fail2ban> fail2ban> 1\nfail2ban> {banned}fail2ban> Syntax error\n\
         fail2ban> {usage}fail2ban> "
    );
    assert_eq!(out, expected);

    // End of input ends the session with a new line.
    let (code, out) = client(&s, &["-i"], "ping");
    assert_eq!((code, out), (0, format!("fail2ban> {ping}fail2ban> \n")));

    // A command given with -i runs first; a failing one ends before the session.
    let (code, out) = client(&s, &["-i", "ping"], "quit\n");
    assert_eq!((code, out), (0, format!("{ping}fail2ban> ")));
    let (code, out) = client(&s, &["-i", "status", "nosuchjail"], "ping\n");
    assert_eq!(code, 255, "{out}");
    assert!(!out.contains("fail2ban> "), "{out}");
}

/// On a terminal (a pseudo-terminal from util-linux `script`): the up arrow recalls the
/// previous command, and the session's commands go to `$HOME/.f2b_history`, which the
/// next session starts with.
#[test]
fn terminal_session_recalls_and_keeps_history() {
    let script = "/usr/bin/script";
    assert!(
        std::path::Path::new(script).exists(),
        "this test needs util-linux `script` for a pseudo-terminal (apt-get install bsdutils)"
    );
    let s = server();
    let home = tempfile::tempdir().unwrap();
    let session = |keys: &[&str]| -> String {
        let cmd = format!("{} -c {} -i", f2b(), s.path().display());
        let mut child = Command::new(script)
            .args(["-qfec", &cmd, "/dev/null"])
            .env("HOME", home.path())
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script");
        let mut input = child.stdin.take().unwrap();
        for k in keys {
            std::thread::sleep(std::time::Duration::from_millis(300));
            input.write_all(k.as_bytes()).unwrap();
            input.flush().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(input);
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `echo one`, then the up arrow and Enter runs it again.
    let out = session(&["echo one\r", "\x1b[A\r", "exit\r"]);
    assert_eq!(out.matches("\none\r").count(), 2, "{out:?}");
    let hist = home.path().join(".f2b_history");
    assert_eq!(
        std::fs::read_to_string(&hist).unwrap(),
        "echo one\nexit\n",
        "{out:?}"
    );
    // The next session: two up arrows reach the first session's command.
    let out = session(&["echo two\r", "\x1b[A\x1b[A\x1b[A\r", "quit\r"]);
    assert_eq!(out.matches("\ntwo\r").count(), 1, "{out:?}");
    assert_eq!(out.matches("\none\r").count(), 1, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&hist).unwrap(),
        "echo one\nexit\necho two\necho one\nquit\n"
    );
}
