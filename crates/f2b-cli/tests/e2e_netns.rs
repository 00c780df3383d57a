//! End-to-end acceptance tests of issue 6: real services (OpenSSH, nginx) in a
//! server network namespace, an attacker and a second client in their own
//! namespaces, `f2b server` running inside the server namespace on an unchanged
//! copy of `/etc/fail2ban` (plus `jail.local`/`fail2ban.local`), the firewall
//! and its actions living in that namespace only.
//!
//! Topology (created per test, removed by [`Lab`]'s `Drop` even on failure):
//!
//! ```text
//!   ATK  e0 10.200.1.2/24  <-veth->  a0 10.200.1.1/24  SRV  (sshd, nginx, f2b)
//!   CLI  e0 10.200.2.2/24  <-veth->  c0 10.200.2.1/24  SRV
//! ```
//!
//! Every address exists only inside these namespaces; the host ruleset is never
//! touched. Needs root, iproute2, nftables, iptables, openssh-server, sshpass,
//! nginx, apache2-utils and the stock Python fail2ban (for `/etc/fail2ban` and
//! `fail2ban-client`); a missing tool or a kernel refusing netns/nf_tables makes
//! the tests fail loudly.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{append, wait_until, Srv};

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}
const CLONE_NEWNET: i32 = 0x4000_0000;

const SRV_IP: &str = "10.200.1.1";
const ATK_IP: &str = "10.200.1.2";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs a command, panicking with its output when it cannot run or fails.
fn run(prog: &str, args: &[&str]) -> Output {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} {args:?}: {e} (see scripts/install-deps)"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace of this test process; deleted (after killing every
/// process still inside it, all of which the test started) on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!(
            "f2bt-e2e-{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("cannot run ip (iproute2)");
        assert!(
            out.status.success(),
            "the kernel refused a network namespace (ip netns add {name}): {} — these tests need \
             root and netns support; they do not skip",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, args: &[&str]) -> Output {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NS ARGS...` (must succeed).
    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// A command running inside the namespace (`ip netns exec` execs it, so the
    /// child's pid is the command's).
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }

    /// Runs `f` on a fresh thread that has joined this namespace; sockets it
    /// creates belong to the namespace for their whole life.
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns on a valid namespace fd only changes this thread's
            // network namespace.
            let rc = unsafe { setns(fd.as_raw_fd(), CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// A TCP connection from inside this namespace.
    fn connect(&self, addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
        let addr: SocketAddr = addr.parse().expect("socket address");
        self.within(move || {
            let s = TcpStream::connect_timeout(&addr, timeout)?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.set_write_timeout(Some(Duration::from_secs(3)))?;
            Ok(s)
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for _ in 0..3 {
            let pids = Command::new("ip")
                .args(["netns", "pids", &self.name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = Command::new("kill").args(["-9", p]).status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Server, attacker and client namespaces plus the processes started in them.
/// Field order is drop order: the f2b server stops first (its actions clean up),
/// then services are killed, then the namespaces go.
struct Lab {
    srv_f2b: Option<Srv>,
    procs: Vec<Child>,
    srv: Netns,
    atk: Netns,
    cli: Netns,
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.srv_f2b.take());
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            srv_f2b: None,
            procs: Vec::new(),
            srv: Netns::new("srv"),
            atk: Netns::new("atk"),
            cli: Netns::new("cli"),
        };
        for (peer, local, net) in [(&lab.atk, "a0", "1"), (&lab.cli, "c0", "2")] {
            lab.srv.ip(&[
                "link", "add", local, "type", "veth", "peer", "name", "e0", "netns", &peer.name,
            ]);
            lab.srv
                .ip(&["addr", "add", &format!("10.200.{net}.1/24"), "dev", local]);
            lab.srv.ip(&["link", "set", local, "up"]);
            peer.ip(&["addr", "add", &format!("10.200.{net}.2/24"), "dev", "e0"]);
            peer.ip(&["link", "set", "e0", "up"]);
            peer.ip(&["route", "add", "default", "via", &format!("10.200.{net}.1")]);
        }
        // The firewall must be usable in the namespace: fail loudly otherwise.
        lab.srv.exec(&["nft", "list", "ruleset"]);
        lab
    }

    fn f2b(&self) -> &Srv {
        self.srv_f2b.as_ref().expect("f2b not started")
    }

    /// Starts `f2b server` inside the server namespace on a copy of
    /// `/etc/fail2ban` with private runtime paths and the given `jail.local`
    /// (`{dir}` = the configuration directory).
    fn start_f2b(&mut self, dir: Srv, jail_local: &str) {
        let d = dir.path().display().to_string();
        std::fs::write(dir.file("jail.local"), jail_local.replace("{dir}", &d)).unwrap();
        self.srv_f2b = Some(dir.start_via(&["ip", "netns", "exec", &self.srv.name], &[], &[]));
    }

    /// Starts a service inside the server namespace.
    fn spawn_srv(&mut self, prog: &str, args: &[&str], stderr: Stdio) -> &mut Child {
        let child = self
            .srv
            .command(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {prog}: {e} (see scripts/install-deps)"));
        self.procs.push(child);
        self.procs.last_mut().unwrap()
    }
}

/// A configuration directory holding an unchanged copy of `/etc/fail2ban` plus a
/// `fail2ban.local` with private socket, pid file, db and log (the paths the
/// common [`Srv`] helper talks to).
fn stock_conf() -> Srv {
    assert!(
        Path::new("/etc/fail2ban/jail.conf").exists()
            && Path::new("/usr/bin/fail2ban-client").exists(),
        "the stock Python fail2ban (Debian package fail2ban) is required: /etc/fail2ban and \
         /usr/bin/fail2ban-client"
    );
    let dir = Srv::new("", &[]);
    let d = dir.path().display().to_string();
    run("cp", &["-a", "/etc/fail2ban/.", &d]);
    std::fs::write(
        dir.file("fail2ban.local"),
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = {d}/f2b.log\nsocket = {d}/f2b.sock\n\
             pidfile = {d}/f2b.pid\ndbfile = {d}/f2b.sqlite3\n"
        ),
    )
    .unwrap();
    dir
}

/// `read` that retries `EINTR`.
fn rd(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Reads one `\n`-terminated line (the SSH identification string).
fn read_line(s: &mut TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match rd(s, &mut b)? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            _ => {
                out.push(b[0]);
                if b[0] == b'\n' {
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
            }
        }
    }
}

/// How an open connection behaves after the ban.
#[derive(Debug, PartialEq)]
enum After {
    /// The peer reset or closed it (teardown).
    Closed(String),
    /// Nothing came back within the read timeout (packets dropped/refused).
    Silent,
    /// Data came back: the connection still works.
    Works(usize),
}

/// Sends `msg` on `s` (if any) and classifies what happens within `secs`
/// (`EINTR` is retried until the deadline).
fn probe(s: &mut TcpStream, msg: &[u8], secs: u64) -> After {
    if !msg.is_empty() {
        if let Err(e) = s.write_all(msg) {
            return After::Closed(format!("write: {e}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return After::Silent;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return After::Closed("eof".into()),
            Ok(n) => return After::Works(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return After::Silent
            }
            Err(e) => return After::Closed(format!("read: {e}")),
        }
    }
}

/// Waits until `ip` is banned in `jail` (by `get <jail> banip`).
fn wait_banned(f2b: &Srv, jail: &str, ip: &str, secs: f64) -> bool {
    wait_until(secs, || f2b.banned(jail).iter().any(|b| b == ip))
}

/// Established TCP connections in the server namespace between the attacker
/// and the server's `port` (from `ss`).
fn srv_conns(lab: &Lab, port: u16) -> usize {
    let out = lab.srv.exec(&["ss", "-Htn", "state", "established"]);
    let local = format!("{SRV_IP}:{port}");
    let peer = format!("{ATK_IP}:");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter().any(|x| *x == local) && f.iter().any(|x| x.starts_with(&peer))
        })
        .count()
}

/// Records (and for the native backend asserts) the server side of the
/// attacker's open connections after the ban.
fn check_server_side(lab: &Lab, port: u16, what: &str, native: bool) {
    if native {
        let gone = wait_until(3.0, || srv_conns(lab, port) == 0);
        assert!(
            gone,
            "{what}: server still holds {} established connection(s) of the banned address",
            srv_conns(lab, port)
        );
    }
    eprintln!(
        "{what}: server-side established connections of the banned address: {}",
        srv_conns(lab, port)
    );
}

/// Whether new connections from `ns` to `addr` fail within 5 s (each attempt
/// gets 1 s: a ban rejects or drops the SYN).
fn refused_soon(ns: &Netns, addr: &str) -> bool {
    wait_until(5.0, || ns.connect(addr, Duration::from_secs(1)).is_err())
}

/// `fail2ban-client -c DIR ARGS...` (the stock Python client) must succeed.
fn py_client(f2b: &Srv, args: &[&str]) -> String {
    let d = f2b.path().display().to_string();
    let mut a = vec!["-c", &d];
    a.extend_from_slice(args);
    let out = run("/usr/bin/fail2ban-client", &a);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------- sshd ----

/// Starts OpenSSH in the server namespace. sshd logs to stderr (`-e`); a thread
/// writes each message to `sshd.log` with the syslog prefix rsyslog would add
/// (`Mon dd HH:MM:SS host sshd[pid]: msg`): `sshd -E FILE` writes bare messages
/// without time or ident, which the stock sshd filter (fail2ban's too) does not
/// match.
fn start_sshd(lab: &mut Lab, dir: &Path) {
    std::fs::create_dir_all("/run/sshd").unwrap(); // privilege separation dir (Debian)
    let key = dir.join("hostkey");
    let keys = key.display().to_string();
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", &keys],
    );
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "ListenAddress {SRV_IP}\nPort 22\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             UsePAM no\nPidFile {0}/sshd.pid\nLoginGraceTime 60\nMaxStartups 100\n\
             PermitRootLogin prohibit-password\nAuthorizedKeysFile {0}/authorized_keys\nStrictModes no\n",
            dir.display()
        ),
    )
    .unwrap();
    // The key of the attacker's logged-in session (see `logged_in_session`).
    let ukey = dir.join("userkey");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &ukey.display().to_string(),
        ],
    );
    std::fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
    let log = dir.join("sshd.log");
    let cfgs = cfg.display().to_string();
    let child = lab.spawn_srv(
        "/usr/sbin/sshd",
        &["-D", "-e", "-f", &cfgs, "-h", &keys],
        Stdio::piped(),
    );
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let ts = chrono::Local::now().format("%b %e %H:%M:%S");
            // The directory may already be gone while sshd is being killed.
            let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&log)
            else {
                break;
            };
            let _ = writeln!(f, "{ts} e2e sshd[{pid}]: {}", l.trim_end());
        }
    });
    let cli = &lab.cli;
    let ok = wait_until(10.0, || {
        cli.connect(&format!("{SRV_IP}:22"), Duration::from_millis(500))
            .and_then(|mut s| read_line(&mut s))
            .is_ok_and(|l| l.starts_with("SSH-2.0-"))
    });
    assert!(ok, "sshd did not come up in the server namespace");
}

/// A logged-in SSH session of the attacker (key authentication, a remote `sleep`),
/// returned once the remote shell has answered.
fn logged_in_session(lab: &Lab, dir: &Path) -> Child {
    let mut child = lab
        .atk
        .command("ssh")
        .args([
            "-i",
            &dir.join("userkey").display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            // Ends a session whose packets are dropped (stock actions) within ~4 s.
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=3",
            &format!("root@{SRV_IP}"),
            "echo logged-in; exec sleep 300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run ssh (see scripts/install-deps)");
    let mut out = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 64];
    while !got.ends_with(b"logged-in\n") {
        match std::io::Read::read(&mut out, &mut b) {
            Ok(0) | Err(_) => {
                let _ = child.kill();
                let o = child.wait_with_output().unwrap();
                panic!(
                    "attacker's key login failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    child
}

/// Waits up to `secs` for the session to end: its exit status and stderr.
fn session_end(mut child: Child, secs: f64) -> Option<(std::process::ExitStatus, String)> {
    let start = std::time::Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Some((st, err));
        }
        if start.elapsed().as_secs_f64() > secs {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One failed password login of `nosuchuser` from the attacker namespace.
fn ssh_fail(lab: &Lab) {
    // `timeout`: a login caught mid-way by the ban would otherwise hang.
    let out = lab
        .atk
        .command("timeout")
        .args([
            "-s",
            "KILL",
            "8",
            "sshpass",
            "-p",
            "wrong",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=3",
            "-o",
            "ServerAliveInterval=2",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "BatchMode=no",
            &format!("nosuchuser@{SRV_IP}"),
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run sshpass (see scripts/install-deps)");
    // sshpass exits 5 on a wrong password, 255 once the connection is refused.
    assert!(
        !out.status.success(),
        "login with a wrong password succeeded?"
    );
}

/// The sshd scenario with the given banaction; `native` = f2b's own nftables
/// backend with connection teardown.
fn sshd_scenario(banaction: &str, native: bool) {
    let mut lab = Lab::new();
    let conf = stock_conf();
    let dir = conf.path().to_path_buf();
    start_sshd(&mut lab, &dir);
    lab.start_f2b(
        conf,
        &format!(
            "[DEFAULT]\nbanaction = {banaction}\nbanaction_allports = {banaction}\n\n\
             [sshd]\nenabled = true\nbackend = auto\nlogpath = {{dir}}/sshd.log\nmaxretry = 3\n\
             findtime = 600\nbantime = 600\n"
        ),
    );
    let ssh = format!("{SRV_IP}:22");
    let t = Duration::from_secs(2);

    // A connection the attacker opens before the ban (banner read, kept open).
    let mut pre = lab.atk.connect(&ssh, t).expect("attacker pre-ban connect");
    assert!(read_line(&mut pre).unwrap().starts_with("SSH-2.0-"));
    // And a session the attacker is logged in with (a stolen key, say).
    let session = logged_in_session(&lab, &dir);

    for _ in 0..3 {
        if lab.f2b().banned("sshd").iter().any(|b| b == ATK_IP) {
            break;
        }
        ssh_fail(&lab);
    }
    assert!(
        wait_banned(lab.f2b(), "sshd", ATK_IP, 10.0),
        "attacker not banned after 3 failed logins; f2b log:\n{}\nsshd.log:\n{}",
        lab.f2b().log(),
        lab.f2b().read("sshd.log")
    );
    let status = py_client(lab.f2b(), &["status", "sshd"]);
    assert!(status.contains(ATK_IP), "status sshd: {status}");

    // New connections of the attacker fail (once the action reached the
    // kernel: the ban is recorded before actions run); the other client still
    // gets in.
    assert!(
        refused_soon(&lab.atk, &ssh),
        "attacker still connects after the ban"
    );
    let mut ok = lab.cli.connect(&ssh, t).expect("second client connect");
    assert!(read_line(&mut ok).unwrap().starts_with("SSH-2.0-"));
    // Control: an unbanned client's identification string gets a reply (KEXINIT).
    let ident = b"SSH-2.0-f2b_e2e\r\n";
    assert!(matches!(probe(&mut ok, ident, 3), After::Works(_)));

    // The connection opened before the ban.
    let after = if native {
        // Teardown: the server's socket is destroyed (RST) without any traffic of ours.
        probe(&mut pre, b"", 3)
    } else {
        probe(&mut pre, ident, 3)
    };
    eprintln!("sshd/{banaction}: pre-ban connection after the ban: {after:?}");
    if native {
        assert!(
            matches!(after, After::Closed(_)),
            "pre-ban connection not torn down by the native backend: {after:?}"
        );
    } else {
        assert!(
            !matches!(after, After::Works(_)),
            "pre-ban connection still gets replies after the ban"
        );
    }

    // The logged-in session ends at the ban: reset at once by the native teardown,
    // by the client's keep-alive timeout when the stock action drops its packets.
    let end = session_end(session, if native { 3.0 } else { 10.0 });
    eprintln!("sshd/{banaction}: logged-in session after the ban: {end:?}");
    let (st, err) = end.expect("the attacker's logged-in session survived the ban");
    assert!(!st.success(), "session ended normally? {err}");
    if native {
        assert!(
            err.contains("reset") || err.contains("Broken pipe"),
            "logged-in session not reset by the native teardown: {st:?} {err}"
        );
    }

    check_server_side(&lab, 22, &format!("sshd/{banaction}"), native);
    if native {
        // The kernel holds the ban with a timeout (expires even if f2b dies).
        let table = nft_table(&lab);
        let line = table.lines().find(|l| l.contains(ATK_IP));
        assert!(
            line.is_some_and(|l| l.contains("expires")),
            "no timed element for {ATK_IP} in f2b's table:\n{table}"
        );
    }

    // Unban through the stock Python client restores access.
    py_client(lab.f2b(), &["set", "sshd", "unbanip", ATK_IP]);
    assert!(!lab.f2b().banned("sshd").iter().any(|b| b == ATK_IP));
    let atk = &lab.atk;
    let back = wait_until(5.0, || {
        atk.connect(&ssh, t)
            .and_then(|mut s| read_line(&mut s))
            .is_ok_and(|l| l.starts_with("SSH-2.0-"))
    });
    assert!(back, "attacker cannot connect after unbanip");

    // Stopping the server removes its firewall state (no keep-on-stop configured).
    drop(lab.srv_f2b.take());
    if native {
        let t = nft_table(&lab);
        assert!(t.is_empty(), "f2b's table left after stop:\n{t}");
    } else {
        let save = String::from_utf8_lossy(&lab.srv.exec(&["iptables-save"]).stdout).into_owned();
        assert!(!save.contains("f2b-"), "chains left after stop:\n{save}");
    }
}

/// f2b's native table in the server namespace (`nft list table inet f2b-table`),
/// empty if there is none.
fn nft_table(lab: &Lab) -> String {
    let out = lab
        .srv
        .command("nft")
        .args(["list", "table", "inet", "f2b-table"])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Seconds until the kernel expires `ip`'s element in f2b's table (`expires 9m58s...`).
fn expires_secs(lab: &Lab, ip: &str) -> Option<f64> {
    let table = nft_table(lab);
    let at = table.find(&format!("{ip} "))?;
    let rest = &table[at..];
    let e = rest.find("expires ")? + "expires ".len();
    let word: String = rest[e..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    // `9m59s996ms`: numbers with units d, h, m, s, ms.
    let (mut secs, mut rest) = (0.0, word.as_str());
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: f64 = rest[..digits].parse().ok()?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| digits + i);
        secs += n * match &rest[digits..unit_end] {
            "d" => 86400.0,
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_end..];
    }
    Some(secs)
}

/// A ban prolonged while active (`banip` of a banned address: its end moves later) also
/// moves the kernel element's expiry, so the kernel never lets the address go first.
#[test]
fn prolonged_ban_refreshes_the_kernel_timeout() {
    let mut lab = Lab::new();
    let conf = stock_conf();
    std::fs::write(conf.file("auth.log"), "").unwrap();
    lab.start_f2b(
        conf,
        "[sshd]\nenabled = true\nbackend = auto\nlogpath = {dir}/auth.log\n\
         banaction = nftables-multiport\nbantime = 600\n",
    );
    py_client(lab.f2b(), &["set", "sshd", "banip", ATK_IP]);
    assert!(wait_until(5.0, || expires_secs(&lab, ATK_IP).is_some()));
    std::thread::sleep(Duration::from_secs(4));
    let before = expires_secs(&lab, ATK_IP)
        .unwrap_or_else(|| panic!("no element expiry for {ATK_IP}:\n{}", nft_table(&lab)));
    assert!(before <= 597.0, "expiry {before} s, 4 s after a 600 s ban");
    // Banned again: fail2ban moves the ban's end to now + bantime.
    py_client(lab.f2b(), &["set", "sshd", "banip", ATK_IP]);
    assert!(
        wait_until(5.0, || expires_secs(&lab, ATK_IP)
            .is_some_and(|e| e >= 598.0)),
        "kernel expiry not moved with the prolonged ban: {:?}\n{}",
        expires_secs(&lab, ATK_IP),
        nft_table(&lab)
    );
}

/// sshd + the stock `iptables-multiport` shell action.
#[test]
fn sshd_ban_iptables_multiport() {
    sshd_scenario("iptables-multiport", false);
}

/// sshd + `nftables-multiport` handled natively (teardown of open connections).
#[test]
fn sshd_ban_nftables_native() {
    sshd_scenario("nftables-multiport", true);
}

/// sshd + `nftables-allports` handled natively.
#[test]
fn sshd_ban_nftables_allports_native() {
    sshd_scenario("nftables-allports", true);
}

// --------------------------------------------------------------- nginx ----

/// Sends one HTTP/1.1 keep-alive request and reads the whole response; returns
/// the status code.
fn http_get(s: &mut TcpStream, auth: &str) -> std::io::Result<u16> {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {SRV_IP}\r\nAuthorization: Basic {auth}\r\nConnection: keep-alive\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let n = rd(s, &mut b)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&b[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = rd(s, &mut b)?;
                if n == 0 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&b[..n]);
            }
            let code = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            return Ok(code);
        }
    }
}

const BAD_AUTH: &str = "YWxpY2U6d3Jvbmc="; // alice:wrong
const GOOD_AUTH: &str = "YWxpY2U6c2VjcmV0"; // alice:secret

fn nginx_scenario(banaction: &str, native: bool) {
    let mut lab = Lab::new();
    let conf = stock_conf();
    let d = conf.path().display().to_string();
    std::fs::create_dir_all(conf.file("www")).unwrap();
    std::fs::write(conf.file("www/index.html"), "hello\n").unwrap();
    run(
        "htpasswd",
        &["-bc", &format!("{d}/htpasswd"), "alice", "secret"],
    );
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("  {t}_temp_path {d}/ngx-{t};\n"))
        .collect();
    std::fs::write(
        conf.file("nginx.conf"),
        format!(
            "user root;\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/nginx-error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n{temps}  keepalive_timeout 60;\n  \
             keepalive_requests 1000;\n  server {{\n    listen {SRV_IP}:80;\n    root {d}/www;\n    \
             location / {{ auth_basic \"e2e\"; auth_basic_user_file {d}/htpasswd; }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(conf.file("nginx-error.log"), "").unwrap();
    let ngconf = format!("{d}/nginx.conf");
    let early = format!("{d}/nginx-early.log");
    lab.spawn_srv(
        "/usr/sbin/nginx",
        &["-e", &early, "-c", &ngconf],
        Stdio::null(),
    );
    let http = format!("{SRV_IP}:80");
    let t = Duration::from_secs(2);
    let cli = &lab.cli;
    let up = wait_until(10.0, || {
        cli.connect(&http, t)
            .and_then(|mut s| http_get(&mut s, GOOD_AUTH))
            .is_ok_and(|c| c == 200)
    });
    assert!(
        up,
        "nginx did not serve with good credentials; early log:\n{}",
        conf.read("nginx-early.log")
    );

    lab.start_f2b(
        conf,
        &format!(
            "[DEFAULT]\nbanaction = {banaction}\nbanaction_allports = {banaction}\n\n\
             [sshd]\nenabled = false\n\n[nginx-http-auth]\nenabled = true\nbackend = auto\n\
             logpath = {{dir}}/nginx-error.log\nmaxretry = 3\nfindtime = 600\nbantime = 600\n"
        ),
    );

    // One keep-alive connection, wrong credentials maxretry times.
    let mut ka = lab.atk.connect(&http, t).expect("attacker connect");
    for i in 0..3 {
        let code = http_get(&mut ka, BAD_AUTH).unwrap_or_else(|e| {
            panic!("request {i} on the keep-alive connection failed early: {e}")
        });
        assert_eq!(code, 401);
    }
    assert!(
        wait_banned(lab.f2b(), "nginx-http-auth", ATK_IP, 10.0),
        "attacker not banned; f2b log:\n{}\nnginx error log:\n{}",
        lab.f2b().log(),
        lab.f2b().read("nginx-error.log")
    );
    assert!(
        refused_soon(&lab.atk, &http),
        "attacker still connects after the ban"
    );

    let after = match http_get(&mut ka, BAD_AUTH) {
        Ok(code) => After::Works(code as usize),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => After::Silent,
        Err(e) => After::Closed(e.to_string()),
    };
    eprintln!(
        "nginx/{banaction}: request on the open keep-alive connection after the ban: {after:?}"
    );
    if native {
        assert!(
            matches!(after, After::Closed(_)),
            "keep-alive connection not torn down by the native backend: {after:?}"
        );
    } else {
        assert!(
            !matches!(after, After::Works(_)),
            "keep-alive connection still served after the ban: {after:?}"
        );
    }
    check_server_side(&lab, 80, &format!("nginx/{banaction}"), native);
    let mut c = lab.cli.connect(&http, t).expect("second client connect");
    assert_eq!(http_get(&mut c, GOOD_AUTH).unwrap(), 200);

    py_client(lab.f2b(), &["set", "nginx-http-auth", "unbanip", ATK_IP]);
    let atk = &lab.atk;
    let back = wait_until(5.0, || {
        atk.connect(&http, t)
            .and_then(|mut s| http_get(&mut s, GOOD_AUTH))
            .is_ok_and(|c| c == 200)
    });
    assert!(back, "attacker not served after unbanip");
}

/// nginx basic auth + stock `iptables-multiport`: record what the keep-alive
/// connection does after the ban (it must at least stop being served).
#[test]
fn nginx_keepalive_iptables_multiport() {
    nginx_scenario("iptables-multiport", false);
}

/// nginx basic auth + native nftables: the keep-alive connection ends at the ban.
#[test]
fn nginx_keepalive_nftables_native() {
    nginx_scenario("nftables-multiport", true);
}

// ------------------------------------------------------------ iptables ----

/// Two jails on the stock sshd filter with the stock iptables-multiport and
/// iptables-allports shell actions.
const IPTABLES_JAILS: &str = "[sshd]\nenabled = true\nbackend = auto\nlogpath = {dir}/auth.log\n\
     maxretry = 3\nbanaction = iptables-multiport\n\n\
     [sshd-all]\nenabled = true\nfilter = sshd\nbackend = auto\nlogpath = {dir}/auth-all.log\n\
     maxretry = 3\nbanaction = iptables-allports\n";

/// A stock configuration copy with the two (empty) logs of [`IPTABLES_JAILS`].
fn iptables_conf() -> Srv {
    let conf = stock_conf();
    std::fs::write(conf.file("auth.log"), "").unwrap();
    std::fs::write(conf.file("auth-all.log"), "").unwrap();
    conf
}

/// Three sshd failures for 192.0.2.7 (jail sshd) and 198.51.100.9 (sshd-all).
fn feed_iptables_jails(dir: &Path) {
    let ts = chrono::Local::now().format("%b %e %H:%M:%S").to_string();
    let fails = |ip: &str| -> Vec<String> {
        (0..3)
            .map(|i| {
                format!(
                    "{ts} e2e sshd[{}]: Failed password for root from {ip} port {} ssh2",
                    100 + i,
                    40000 + i
                )
            })
            .collect()
    };
    append(&dir.join("auth.log"), &fails("192.0.2.7"));
    append(&dir.join("auth-all.log"), &fails("198.51.100.9"));
}

/// The `f2b-` lines of `iptables-save` in a namespace, sorted.
fn f2b_rules(ns: &Netns) -> Vec<String> {
    let save = String::from_utf8_lossy(&ns.exec(&["iptables-save"]).stdout).into_owned();
    let mut v: Vec<String> = save
        .lines()
        .filter(|l| l.contains("f2b-"))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Drop-in check: the same configuration and log lines give the same `f2b-`
/// iptables rules under f2b and under the stock Python fail2ban (each in its
/// own namespace).
#[test]
fn iptables_rules_match_python_fail2ban() {
    let mut lab = Lab::new();
    let py_ns = Netns::new("py");
    let py = iptables_conf();
    let pyd = py.path().display().to_string();
    std::fs::write(py.file("jail.local"), IPTABLES_JAILS.replace("{dir}", &pyd)).unwrap();
    let err = File::create(py.file("py-stderr.txt")).unwrap();
    let mut child = py_ns
        .command("/usr/bin/fail2ban-client")
        .args(["-c", &pyd, "-x", "-f", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start the Python fail2ban server (Debian package fail2ban)");
    let up = wait_until(30.0, || {
        Command::new("/usr/bin/fail2ban-client")
            .args(["-c", &pyd, "status", "sshd-all"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        up,
        "Python fail2ban did not start:\n{}",
        py.read("py-stderr.txt")
    );
    lab.start_f2b(iptables_conf(), IPTABLES_JAILS);
    feed_iptables_jails(py.path());
    feed_iptables_jails(lab.f2b().path());
    let want = 2 * 2 + 2 + 2; // 2 chain decls, 2 jumps, 2 bans, 2 returns
    let mut theirs = Vec::new();
    let py_done = wait_until(20.0, || {
        theirs = f2b_rules(&py_ns);
        theirs.len() >= want
    });
    let mut ours = Vec::new();
    let ours_done = wait_until(10.0, || {
        ours = f2b_rules(&lab.srv);
        ours.len() >= want
    });
    let _ = Command::new("/usr/bin/fail2ban-client")
        .args(["-c", &pyd, "stop"])
        .output();
    let _ = child.wait();
    assert!(
        py_done,
        "Python fail2ban rules incomplete: {theirs:#?}\n{}",
        py.read("f2b.log")
    );
    assert!(
        ours_done,
        "f2b rules incomplete: {ours:#?}\n{}",
        lab.f2b().log()
    );
    assert_eq!(ours, theirs, "f2b vs Python fail2ban iptables rules");
}

/// Stock iptables-multiport and iptables-allports shell actions: `iptables-save`
/// in the namespace shows fail2ban's typical `f2b-<jail>` chains and rules;
/// unban and stop remove them again.
#[test]
fn iptables_save_shows_f2b_chains() {
    let mut lab = Lab::new();
    let conf = iptables_conf();
    lab.start_f2b(conf, IPTABLES_JAILS);
    let f2b = lab.f2b();
    feed_iptables_jails(f2b.path());
    assert!(
        wait_banned(f2b, "sshd", "192.0.2.7", 10.0),
        "no ban; log:\n{}",
        f2b.log()
    );
    assert!(
        wait_banned(f2b, "sshd-all", "198.51.100.9", 10.0),
        "no ban; log:\n{}",
        f2b.log()
    );

    let want = [
        ":f2b-sshd - [0:0]",
        ":f2b-sshd-all - [0:0]",
        "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",
        "-A INPUT -p tcp -j f2b-sshd-all",
        "-A f2b-sshd -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-sshd -j RETURN",
        "-A f2b-sshd-all -s 198.51.100.9/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-sshd-all -j RETURN",
    ];
    let mut save = String::new();
    let all = wait_until(5.0, || {
        save = String::from_utf8_lossy(&lab.srv.exec(&["iptables-save"]).stdout).into_owned();
        want.iter().all(|w| save.lines().any(|l| l == *w))
    });
    assert!(all, "iptables-save lacks some of {want:#?}:\n{save}");
    // The ban rule comes before the RETURN of its chain.
    let pos = |l: &str| save.lines().position(|x| x == l).unwrap();
    assert!(
        pos(want[4]) < pos(want[5]) && pos(want[6]) < pos(want[7]),
        "{save}"
    );

    // Unban removes the rule; stop removes the chains and the INPUT jumps.
    py_client(f2b, &["set", "sshd", "unbanip", "192.0.2.7"]);
    let save = String::from_utf8_lossy(&lab.srv.exec(&["iptables-save"]).stdout).into_owned();
    assert!(!save.contains("192.0.2.7"), "{save}");
    assert!(save.contains("198.51.100.9"), "{save}");
    drop(lab.srv_f2b.take());
    let save = String::from_utf8_lossy(&lab.srv.exec(&["iptables-save"]).stdout).into_owned();
    assert!(!save.contains("f2b-"), "chains left after stop:\n{save}");
}
