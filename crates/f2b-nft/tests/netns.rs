//! Kernel tests of the nftables backend. Every test runs inside network
//! namespaces it creates (and deletes on drop, also on failure); the host's
//! ruleset is never touched. Needs root, `ip`, `nft` and libnftables1; if the
//! kernel refuses netns or nf_tables the tests fail (never skip).

use f2b_core::addr::IpNet;
use f2b_nft::netns::Netns;
use f2b_nft::{Blocktype, JailSpec, NftBackend, NftOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn net(s: &str) -> IpNet {
    match s.split_once('/') {
        Some((a, p)) => IpNet::new(a.parse().unwrap(), p.parse().unwrap()),
        None => {
            let a: std::net::IpAddr = s.parse().unwrap();
            IpNet::new(a, if a.is_ipv4() { 32 } else { 128 })
        }
    }
}

fn ns(tag: &str) -> Netns {
    Netns::create(tag).unwrap_or_else(|e| panic!("network namespaces unavailable: {e}"))
}

fn backend() -> NftBackend {
    NftBackend::new(NftOptions::default())
        .unwrap_or_else(|e| panic!("nftables backend unavailable: {e}"))
}

/// One set per family (no sharding): simpler names for assertions.
fn backend1() -> NftBackend {
    NftBackend::new(NftOptions {
        shards: 1,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("nftables backend unavailable: {e}"))
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    let mut argv = vec!["nft"];
    argv.extend_from_slice(args);
    let (ok, out, err) = ns.exec(&argv);
    assert!(ok, "nft {args:?} failed: {err}");
    out
}

fn secs(d: Option<Duration>) -> u64 {
    d.map(|d| d.as_secs()).unwrap_or(u64::MAX)
}

#[test]
fn ban_unban_cidr_and_ipv6() {
    let ns = ns("nft");
    let list = ns
        .run(|| {
            let mut b = backend();
            b.ensure_jail(&JailSpec::new("sshd", "ssh")).unwrap();
            let t = Some(Duration::from_secs(600));
            let rep = b
                .ban(
                    "sshd",
                    &[
                        (net("192.0.2.1"), t),
                        (net("2001:db8::1"), None),
                        (net("198.51.100.0/24"), t),
                        (net("2001:db8:1::/48"), None),
                    ],
                )
                .unwrap();
            assert_eq!(rep.applied, 4, "{rep:?}");
            assert!(rep.refused.is_empty());
            b.list("sshd").unwrap()
        })
        .unwrap();
    let mut got: Vec<(String, u64)> = list
        .iter()
        .map(|k| (k.net.to_string(), secs(k.expires)))
        .collect();
    got.sort();
    assert_eq!(got.len(), 4, "{got:?}");
    for (n, e) in &got {
        if n.starts_with("192") || n.starts_with("198") {
            assert!((590..=600).contains(e), "{n} expires in {e}");
        } else {
            assert_eq!(*e, u64::MAX, "{n} should be permanent");
        }
    }
    assert!(got.iter().any(|(n, _)| n == "198.51.100.0/24"));
    assert!(got.iter().any(|(n, _)| n == "2001:db8:1::/48"));
    // Seen by the nft tool too, with timeouts.
    // Sharded by the low 6 bits of the last byte: .1 lives in shard 01.
    let v4 = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-sshd-v4-01"]);
    assert!(v4.contains("192.0.2.1 timeout 10m expires"), "{v4}");
    let n4 = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-sshd-n4"]);
    assert!(n4.contains("198.51.100.0/24 timeout 10m expires"), "{n4}");
    let v6 = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-sshd-v6-01"]);
    assert!(v6.contains("2001:db8::1"), "{v6}");
    let n6 = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-sshd-n6"]);
    assert!(n6.contains("2001:db8:1::/48"), "{n6}");

    let left = ns
        .run(|| {
            let mut b = backend();
            b.ensure_jail(&JailSpec::new("sshd", "ssh")).unwrap();
            // Unbanning something never banned is not an error.
            let n = b
                .unban(
                    "sshd",
                    &[
                        net("192.0.2.1"),
                        net("2001:db8::1"),
                        net("198.51.100.0/24"),
                        net("2001:db8:1::/48"),
                        net("203.0.113.9"),
                    ],
                )
                .unwrap();
            assert_eq!(n, 5);
            b.list("sshd").unwrap()
        })
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let all = nft(&ns, &["list", "table", "inet", "f2b-table"]);
    assert!(!all.contains("elements"), "{all}");
}

#[test]
fn rules_multiport_allports_reject_drop() {
    let ns = ns("nft");
    ns.run(|| {
        let mut b = backend1();
        b.ensure_jail(&JailSpec::new("sshd", "ssh, 1000:2000"))
            .unwrap();
        let mut s = JailSpec::new("dns", "");
        s.allports = true;
        s.protocol = "udp".into();
        s.blocktype = Blocktype::Drop;
        b.ensure_jail(&s).unwrap();
        let mut s = JailSpec::new("every thing", "");
        s.allports = true;
        s.protocol = "all".into();
        b.ensure_jail(&s).unwrap();
        let mut f = JailSpec::new("fwd", "80");
        f.chain_hook = "forward".into();
        f.chain_priority = Some(-10);
        b.ensure_jail(&f).unwrap();
        let mut f = JailSpec::new("badhook", "80");
        f.chain_hook = "output".into();
        assert!(b.ensure_jail(&f).is_err());
        // Bad specs are refused with structured errors.
        let e = b
            .ensure_jail(&JailSpec::new("bad", "ssh,nosuchservice"))
            .unwrap_err();
        assert!(e.to_string().contains("nosuchservice"), "{e}");
    })
    .unwrap();
    let sshd = nft(&ns, &["list", "chain", "inet", "f2b-table", "f2b-sshd"]);
    assert!(
        sshd.contains("type filter hook input priority filter - 1; policy accept;"),
        "{sshd}"
    );
    // nft prints `meta l4proto tcp th dport` as `tcp dport`, and the inet
    // `reject` per family as fail2ban's icmp(v6) port-unreachable.
    assert!(
        sshd.contains(
            "tcp dport { 22, 1000-2000 } ip saddr @f2b-sshd-v4 reject with icmp port-unreachable"
        ),
        "{sshd}"
    );
    assert!(
        sshd.contains("ip6 saddr @f2b-sshd-n6 reject with icmpv6 port-unreachable"),
        "{sshd}"
    );
    let fwd = nft(&ns, &["list", "chain", "inet", "f2b-table", "f2b-fwd"]);
    assert!(
        fwd.contains("type filter hook forward priority filter - 10;"),
        "{fwd}"
    );
    let sharded = ns
        .run(|| {
            let mut b = backend();
            b.ensure_jail(&JailSpec::new("web", "80")).unwrap();
            b.ban(
                "web",
                &[(net("192.0.2.66"), None), (net("2001:db8::41"), None)],
            )
            .unwrap();
            b.list("web").unwrap().len()
        })
        .unwrap();
    assert_eq!(sharded, 2);
    let web = nft(&ns, &["list", "chain", "inet", "f2b-table", "f2b-web"]);
    assert!(
        web.contains("tcp dport 80 ip saddr & 0.0.0.63 vmap { 0.0.0.0 : jump f2b-web-v4-00,"),
        "{web}"
    );
    assert!(web.contains("ip6 saddr & ::3f vmap {"), "{web}");
    let shard = nft(
        &ns,
        &["list", "chain", "inet", "f2b-table", "f2b-web-v4-02"],
    );
    assert!(
        shard.contains("ip saddr @f2b-web-v4-02 reject with icmp port-unreachable"),
        "{shard}"
    );
    let set = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-web-v4-02"]);
    assert!(set.contains("192.0.2.66"), "{set}");
    let set = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-web-v6-01"]);
    assert!(set.contains("2001:db8::41"), "{set}");
    let dns = nft(&ns, &["list", "chain", "inet", "f2b-table", "f2b-dns"]);
    assert!(
        dns.contains("l4proto udp ip saddr @f2b-dns-v4 drop"),
        "{dns}"
    );
    assert!(!dns.contains("dport"), "{dns}");
    let all = nft(&ns, &["list", "table", "inet", "f2b-table"]);
    assert!(all.contains("chain f2b-every_thing-"), "{all}");
    assert!(all.contains("\t\tip saddr @f2b-every_thing-"), "{all}");
    assert!(!all.contains("f2b-bad"), "{all}");
}

#[test]
fn kernel_expires_short_ban_and_reban_updates_timeout() {
    let ns = ns("nft");
    ns.run(|| {
        let mut b = backend();
        b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
        b.ban("sshd", &[(net("192.0.2.7"), Some(Duration::from_secs(2)))])
            .unwrap();
        b.ban("sshd", &[(net("192.0.2.8"), Some(Duration::from_secs(10)))])
            .unwrap();
        assert_eq!(b.list("sshd").unwrap().len(), 2);
        // Re-ban with a longer time: the kernel element gets the new one.
        b.ban(
            "sshd",
            &[(net("192.0.2.8"), Some(Duration::from_secs(300)))],
        )
        .unwrap();
        let l = b.list("sshd").unwrap();
        let e8 = l.iter().find(|k| k.net == net("192.0.2.8")).unwrap();
        assert!(secs(e8.expires) > 200, "{e8:?}");
        std::thread::sleep(Duration::from_millis(3000));
        let l = b.list("sshd").unwrap();
        assert_eq!(l.len(), 1, "2 s ban must have expired in the kernel: {l:?}");
        assert_eq!(l[0].net, net("192.0.2.8"));
    })
    .unwrap();
    let v4 = nft(&ns, &["list", "set", "inet", "f2b-table", "f2b-sshd-v4-07"]);
    assert!(!v4.contains("192.0.2.7"), "{v4}");
}

#[test]
fn reconcile_applies_only_the_difference() {
    let ns = ns("nft");
    ns.run(|| {
        let mut b = backend();
        b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
        let m = |s| Some(Duration::from_secs(s));
        b.ban(
            "sshd",
            &[
                (net("192.0.2.1"), m(600)),
                (net("192.0.2.2"), m(600)),
                (net("192.0.2.3"), m(600)),
                (net("10.0.0.0/8"), m(600)),
                (net("192.0.2.5"), None),
                (net("192.0.2.6"), m(600)),
            ],
        )
        .unwrap();
        let desired = vec![
            (net("192.0.2.2"), m(600)),    // unchanged
            (net("192.0.2.3"), m(3000)),   // updated timeout
            (net("192.0.2.4"), None),      // added, permanent
            (net("10.0.0.0/8"), m(598)),   // within tolerance: unchanged
            (net("2001:db8::/32"), m(60)), // added
            (net("192.0.2.5"), m(900)),    // permanent -> timeout
            (net("192.0.2.6"), None),      // timeout -> permanent
        ];
        let st = b.reconcile("sshd", &desired).unwrap();
        assert_eq!(st.found, 6, "{st:?}");
        assert_eq!(st.removed, 1, "{st:?}");
        assert_eq!(st.unchanged, 2, "{st:?}");
        assert_eq!(st.updated, 3, "{st:?}");
        assert_eq!(st.added, 2, "{st:?}");
        assert!(st.refused.is_empty());
        let mut l: Vec<(String, u64)> = b
            .list("sshd")
            .unwrap()
            .into_iter()
            .map(|k| (k.net.to_string(), secs(k.expires)))
            .collect();
        l.sort();
        assert_eq!(l.len(), 7, "{l:?}");
        let get = |n: &str| l.iter().find(|(x, _)| x == n).map(|(_, e)| *e);
        assert_eq!(get("192.0.2.1"), None);
        assert!(get("192.0.2.3").unwrap() > 2900);
        assert_eq!(get("192.0.2.4"), Some(u64::MAX));
        assert!((800..=900).contains(&get("192.0.2.5").unwrap()), "{l:?}");
        assert_eq!(get("192.0.2.6"), Some(u64::MAX));
        // A second pass finds nothing to do.
        let st = b.reconcile("sshd", &desired).unwrap();
        assert_eq!(
            (st.found, st.unchanged, st.added, st.removed, st.updated),
            (7, 7, 0, 0, 0),
            "{st:?}"
        );
    })
    .unwrap();
}

#[test]
fn reconcile_removes_hand_added_elements() {
    let ns = ns("nft");
    ns.run(|| {
        let mut b = backend();
        b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
        // Added by hand with the nft tool's syntax: a range that is not a
        // prefix, and an address.
        b.nft_command(
            "add element inet f2b-table f2b-sshd-n4 { 10.0.0.1-10.0.0.5 }\n\
             add element inet f2b-table f2b-sshd-v4-23 { 192.0.2.99 }",
        )
        .unwrap();
        let st = b.reconcile("sshd", &[(net("192.0.2.1"), None)]).unwrap();
        assert_eq!((st.found, st.removed, st.added), (2, 2, 1), "{st:?}");
        let l = b.list("sshd").unwrap();
        assert_eq!(l.len(), 1, "{l:?}");
    })
    .unwrap();
}

#[test]
fn teardown_and_keep_on_stop() {
    let ns = ns("nft");
    ns.run(|| {
        let mut opts = NftOptions {
            keep_on_stop: true,
            ..Default::default()
        };
        let mut b = NftBackend::new(opts.clone()).unwrap();
        b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
        b.ban("sshd", &[(net("192.0.2.1"), None)]).unwrap();
        b.stop().unwrap();
        drop(b);
        // Restart: the ban survived, ensure_jail keeps it.
        opts.keep_on_stop = false;
        let mut b = NftBackend::new(opts).unwrap();
        b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
        assert_eq!(b.list("sshd").unwrap().len(), 1);
        b.ensure_jail(&JailSpec::new("other", "80")).unwrap();
        b.remove_jail("other").unwrap();
        b.stop().unwrap();
        assert!(b.list("sshd").is_err(), "jail must be gone after stop");
        // teardown twice is fine.
        b.teardown().unwrap();
    })
    .unwrap();
    let t = nft(&ns, &["list", "tables"]);
    assert!(!t.contains("f2b-table"), "{t}");
}

#[test]
fn capabilities_probe_reports_teardown_support() {
    let ns = ns("nft");
    let caps = ns.run(|| backend().capabilities().clone()).unwrap();
    // This kernel has CONFIG_INET_DIAG_DESTROY and ctnetlink; the
    // probe must say so (on a kernel without, warnings() names it).
    let have_destroy = std::fs::read("/proc/config.gz").is_err()
        || std::process::Command::new("sh")
            .args([
                "-c",
                "zcat /proc/config.gz | grep -q '^CONFIG_INET_DIAG_DESTROY=y'",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    assert_eq!(caps.sock_destroy.is_none(), have_destroy, "{caps:?}");
    assert!(caps.conntrack.is_none(), "{caps:?}");
}

/// Two namespaces joined by a veth pair; a TCP server in `srv`, clients in
/// `cli` (10.99.0.2 = attacker, 10.99.0.3 = bystander). A stock-style filter
/// table accepts `ct state established` at priority 0 and drops the rest.
struct E2e {
    rep: f2b_nft::BanReport,
    srv_side: String,
    open: String,
    newc: String,
    by: String,
}

fn e2e(teardown: bool, wait: u64, v6: bool) -> E2e {
    // server, attacker, bystander
    let (a_srv, a_att, a_by, plen) = if v6 {
        ("fd99::1", "fd99::2", "fd99::3", 64)
    } else {
        ("10.99.0.1", "10.99.0.2", "10.99.0.3", 24)
    };
    let srv = ns("nfts");
    let cli = ns("nftc");
    let sh = |n: &Netns, cmd: &str| {
        let (ok, _, err) = n.exec(&["sh", "-c", cmd]);
        assert!(ok, "{cmd}: {err}");
    };
    sh(
        &srv,
        &format!(
            "ip link add vs type veth peer name vc netns {} && ip addr add {a_srv}/{plen} dev vs nodad && ip link set vs up",
            cli.name()
        ),
    );
    sh(
        &cli,
        &format!(
            "ip addr add {a_att}/{plen} dev vc nodad && ip addr add {a_by}/{plen} dev vc nodad && ip link set vc up"
        ),
    );
    sh(
        &srv,
        "printf 'table inet filter {\n chain input {\n type filter hook input priority 0; policy drop;\n \
         ct state established,related accept\n iif lo accept\n meta l4proto ipv6-icmp accept\n tcp dport 2222 accept\n }\n}\n' | nft -f -",
    );
    let cli_name = cli.name().to_string();
    srv.run(move || {
        let sa = SocketAddr::new(a_srv.parse().unwrap(), 2222);
        let listener = TcpListener::bind(sa).unwrap();
        let (tx_srv, rx_srv) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut first = true;
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                if !first {
                    let _ = s.write_all(b"hi");
                    continue;
                }
                first = false;
                let tx = tx_srv.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4];
                    if s.read_exact(&mut buf).is_ok() {
                        let _ = s.write_all(b"pong");
                    }
                    s.set_read_timeout(Some(Duration::from_secs(wait))).unwrap();
                    let t0 = Instant::now();
                    let r = s.read(&mut buf);
                    let _ = tx.send(format!("{r:?} after {:?}", t0.elapsed()));
                    // Keep our end open (no FIN) while the client checks
                    // its side.
                    std::thread::sleep(Duration::from_secs(2 * wait));
                    drop(s);
                });
            }
        });
        // The attacker opens a connection and proves it works.
        let (tx_go, rx_go) = mpsc::channel::<()>();
        let (tx_cli, rx_cli) = mpsc::channel::<String>();
        let ns_cli = cli_name.clone();
        let attacker = std::thread::spawn(move || {
            f2b_nft::netns::enter(&ns_cli).unwrap();
            let mut s = connect_from(a_att, sa).expect("attacker's first connect");
            s.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"pong");
            tx_cli.send("open".into()).unwrap();
            rx_go.recv().unwrap();
            // After the ban: the open connection must be dead.
            s.set_read_timeout(Some(Duration::from_secs(wait))).unwrap();
            let _ = s.write_all(b"more");
            let r = s.read(&mut buf);
            tx_cli.send(format!("open-conn: {r:?}")).unwrap();
            // New connects fail; the bystander still gets in.
            let r = connect_from(a_att, sa);
            tx_cli
                .send(format!("new-conn: {:?}", r.map(|_| ())))
                .unwrap();
            let r = connect_from(a_by, sa).and_then(|mut s| {
                let mut b2 = [0u8; 2];
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.read_exact(&mut b2)?;
                Ok(b2)
            });
            tx_cli.send(format!("bystander: {r:?}")).unwrap();
        });
        assert_eq!(
            rx_cli.recv_timeout(Duration::from_secs(20)).unwrap(),
            "open"
        );
        let mut b = backend();
        let mut spec = JailSpec::new("svc", "2222");
        spec.teardown = teardown;
        b.ensure_jail(&spec).unwrap();
        let t0 = Instant::now();
        let rep = b
            .ban("svc", &[(net(a_att), Some(Duration::from_secs(600)))])
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(rep.applied, 1);
        tx_go.send(()).unwrap();
        let srv_side = rx_srv.recv_timeout(Duration::from_secs(20)).unwrap();
        let open = rx_cli.recv_timeout(Duration::from_secs(20)).unwrap();
        let newc = rx_cli.recv_timeout(Duration::from_secs(20)).unwrap();
        let by = rx_cli.recv_timeout(Duration::from_secs(20)).unwrap();
        attacker.join().unwrap();
        eprintln!("ban+teardown took {took:?}; server: {srv_side}; {open}; {newc}; {by}");
        E2e {
            rep,
            srv_side,
            open,
            newc,
            by,
        }
    })
    .unwrap()
}

#[test]
fn end_to_end_ban_cuts_open_connection() {
    let E2e {
        rep,
        srv_side,
        open,
        newc,
        by,
    } = e2e(true, 15, false);
    assert!(rep.teardown_error.is_none(), "{rep:?}");
    assert!(rep.teardown.conntrack_deleted >= 1, "{rep:?}");
    assert!(rep.teardown.sockets_destroyed >= 1, "{rep:?}");
    {
        // Server side: the accepted socket was destroyed at once.
        assert!(
            srv_side.starts_with("Err") || srv_side.starts_with("Ok(0)"),
            "server socket still alive: {srv_side}"
        );
        assert!(
            !srv_side.contains("WouldBlock") && !srv_side.contains("TimedOut"),
            "{srv_side}"
        );
        // Client side: reset (or EOF), not data and not a timeout.
        assert!(
            open.contains("Err") || open.contains("Ok(0)"),
            "attacker's open connection survived: {open}"
        );
        assert!(
            !open.contains("WouldBlock") && !open.contains("TimedOut"),
            "{open}"
        );
        assert!(newc.contains("Err"), "attacker reconnected: {newc}");
        assert!(by.contains("Ok([104, 105])"), "bystander blocked: {by}");
    }
}

/// Control: with teardown off the rule alone blocks new connections, but
/// the open one is only starved (both ends wait until their timeout). This
/// is what makes the assertions above meaningful.
#[test]
fn end_to_end_without_teardown_only_blocks_new_connections() {
    let r = e2e(false, 3, false);
    assert_eq!(r.rep.teardown, f2b_nft::TeardownStats::default());
    assert!(
        r.srv_side.contains("WouldBlock") || r.srv_side.contains("TimedOut"),
        "{}",
        r.srv_side
    );
    assert!(
        r.open.contains("WouldBlock") || r.open.contains("TimedOut"),
        "{}",
        r.open
    );
    assert!(r.newc.contains("Err"), "{}", r.newc);
    assert!(r.by.contains("Ok([104, 105])"), "{}", r.by);
}

/// The same over IPv6: conntrack and socket teardown for an IPv6 peer.
#[test]
fn end_to_end_ipv6_ban_cuts_open_connection() {
    let r = e2e(true, 15, true);
    assert!(r.rep.teardown_error.is_none(), "{:?}", r.rep);
    assert!(r.rep.teardown.conntrack_deleted >= 1, "{:?}", r.rep);
    assert!(r.rep.teardown.sockets_destroyed >= 1, "{:?}", r.rep);
    assert!(
        !r.srv_side.contains("WouldBlock") && !r.srv_side.contains("TimedOut"),
        "{}",
        r.srv_side
    );
    assert!(
        (r.open.contains("Err") || r.open.contains("Ok(0)"))
            && !r.open.contains("WouldBlock")
            && !r.open.contains("TimedOut"),
        "{}",
        r.open
    );
    assert!(r.newc.contains("Err"), "{}", r.newc);
    assert!(r.by.contains("Ok([104, 105])"), "{}", r.by);
}

/// Builds a `sockaddr_storage` for `a` and returns it with its length.
fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: zeroed sockaddr_storage is valid; we write the family's
    // struct into its prefix, which it is sized and aligned for.
    unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        match a {
            SocketAddr::V4(v) => {
                let p = &mut ss as *mut _ as *mut libc::sockaddr_in;
                (*p).sin_family = libc::AF_INET as u16;
                (*p).sin_port = v.port().to_be();
                (*p).sin_addr.s_addr = u32::from(*v.ip()).to_be();
                (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
            }
            SocketAddr::V6(v) => {
                let p = &mut ss as *mut _ as *mut libc::sockaddr_in6;
                (*p).sin6_family = libc::AF_INET6 as u16;
                (*p).sin6_port = v.port().to_be();
                (*p).sin6_addr.s6_addr = v.ip().octets();
                (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
            }
        }
    }
}

fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    // std has no bind-before-connect; use the socket API via libc.
    use std::os::fd::FromRawFd;
    let src = SocketAddr::new(src.parse().unwrap(), 0);
    let fam = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let (sa, sl) = sockaddr(src);
    let (da, dl) = sockaddr(dst);
    // SAFETY: plain socket calls with valid sockaddr values; the fd is
    // owned by the TcpStream (closed on every return path).
    unsafe {
        let fd = libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, sl) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        if libc::connect(fd, &da as *const _ as *const libc::sockaddr, dl) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

#[test]
fn overlapping_prefixes_are_reported_not_fatal() {
    let ns = ns("nft");
    let rep = ns
        .run(|| {
            let mut b = backend();
            b.ensure_jail(&JailSpec::new("sshd", "22")).unwrap();
            let rep = b
                .ban(
                    "sshd",
                    &[
                        (net("10.0.0.0/8"), None),
                        (net("10.1.0.0/16"), None),
                        (net("192.0.2.1"), None),
                    ],
                )
                .unwrap();
            (rep, b.list("sshd").unwrap())
        })
        .unwrap();
    let (rep, list) = rep;
    // The kernel's interval set refuses a prefix inside a banned one; the
    // other bans of the batch still land and the refusal is reported.
    assert_eq!(rep.applied, 2, "{rep:?}");
    assert_eq!(rep.refused.len(), 1, "{rep:?}");
    assert_eq!(rep.refused[0].0, net("10.1.0.0/16"));
    assert!(rep.refused[0].1.contains("overlaps"), "{rep:?}");
    let mut nets: Vec<String> = list.iter().map(|k| k.net.to_string()).collect();
    nets.sort();
    assert_eq!(nets, vec!["10.0.0.0/8", "192.0.2.1"]);
}
