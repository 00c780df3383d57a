//! Benchmark of the native nftables backend, inside throw-away network
//! namespaces (never the host ruleset). Run as root, release build:
//!
//! ```text
//! cargo run --release -p f2b-nft --example nft_bench -- [--big N] [--trials N]
//! ```
//!
//! Prints one `name value unit` line per measurement (bench/nft/run.sh
//! wraps it).

use f2b_core::addr::IpNet;
use f2b_nft::netns::Netns;
use f2b_nft::{Blocktype, JailSpec, NftBackend, NftOptions};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

fn addr(i: u32) -> IpNet {
    // 11.0.0.0 upwards: never the veth addresses used below.
    IpNet::new(IpAddr::V4(Ipv4Addr::from((11u32 << 24) + i)), 32)
}

/// CPU time (user + system) of the calling thread, in seconds. Netlink
/// requests and dumps run in the caller's context, so this includes the
/// kernel's work for them; on a loaded machine it is steadier than wall time.
fn cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let big = arg("--big", 1_000_000) as u32;
    let trials = arg("--trials", 1000);
    let fork_trials = arg("--fork-trials", 200);
    let pkt_secs = arg("--flood-secs", 2) as u64;
    let shards = arg("--shards", NftOptions::default().shards);
    let opts = NftOptions {
        shards,
        ..Default::default()
    };
    println!("shards {shards} sets/family");

    let srv = Netns::create("bench-srv").expect("netns");
    let cli = Netns::create("bench-cli").expect("netns");
    let sh = |n: &Netns, c: &str| {
        let (ok, _, e) = n.exec(&["sh", "-c", c]);
        assert!(ok, "{c}: {e}");
    };
    sh(
        &srv,
        &format!(
            "ip link add vs type veth peer name vc netns {} && ip addr add 10.98.0.1/24 dev vs && ip link set vs up",
            cli.name()
        ),
    );
    sh(
        &cli,
        "ip addr add 10.98.0.2/24 dev vc && ip addr add 10.98.0.3/24 dev vc && ip link set vc up",
    );

    let cli_name = cli.name().to_string();
    srv.run(move || {
        let mut b = NftBackend::new(opts.clone()).expect("backend");
        let mut spec = JailSpec::new("bench", "9");
        spec.protocol = "udp".into();
        spec.blocktype = Blocktype::Drop;
        spec.teardown = false;
        b.ensure_jail(&spec).expect("jail");
        let ttl = Some(Duration::from_secs(3600));

        // 1. Single-ban latency (ban() returns after the kernel committed).
        let mut lat = Vec::with_capacity(trials);
        for i in 0..trials as u32 {
            let t = Instant::now();
            b.ban("bench", &[(addr(5_000_000 + i), ttl)]).expect("ban");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("single_ban_p50 {:.3} ms", pct(&mut lat, 0.5));
        println!("single_ban_p99 {:.3} ms", pct(&mut lat, 0.99));
        // Same with connection teardown on (conntrack + sock_diag scans).
        let mut spec_td = spec.clone();
        spec_td.name = "bench-td".into();
        spec_td.teardown = true;
        b.ensure_jail(&spec_td).expect("jail");
        let mut lat = Vec::with_capacity(trials);
        for i in 0..trials as u32 {
            let t = Instant::now();
            b.ban("bench-td", &[(addr(6_000_000 + i), ttl)])
                .expect("ban");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("single_ban_teardown_p50 {:.3} ms", pct(&mut lat, 0.5));
        println!("single_ban_teardown_p99 {:.3} ms", pct(&mut lat, 0.99));

        // 2. Stock-style: one `nft add element` process per ban, through
        // sh -c as fail2ban's command actions do.
        let mut lat = Vec::with_capacity(fork_trials);
        for i in 0..fork_trials as u32 {
            let a = addr(7_000_000 + i).addr();
            let shard = match a {
                IpAddr::V4(v) => usize::from(v.octets()[3]) & (shards - 1),
                IpAddr::V6(_) => unreachable!(),
            };
            let set = if shards == 1 {
                "f2b-bench-v4".to_string()
            } else {
                format!("f2b-bench-v4-{shard:02x}")
            };
            let cmd = format!("nft add element inet f2b-table {set} {{ {a} }}");
            let t = Instant::now();
            let st = Command::new("sh").args(["-c", &cmd]).status().expect("sh");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(st.success(), "{cmd}");
        }
        println!("fork_nft_ban_p50 {:.3} ms", pct(&mut lat, 0.5));
        println!("fork_nft_ban_p99 {:.3} ms", pct(&mut lat, 0.99));
        b.remove_jail("bench-td").expect("remove");

        // 3. Flood baseline: small set.
        let flood = |label: &str, src: &'static str| {
            let ns = cli_name.clone();
            let h = std::thread::spawn(move || {
                f2b_nft::netns::enter(&ns).expect("enter");
                let s = UdpSocket::bind(format!("{src}:0")).expect("bind");
                s.connect("10.98.0.1:9").expect("connect");
                let buf = [0u8; 64];
                let t = Instant::now();
                let mut n = 0u64;
                while t.elapsed() < Duration::from_secs(pkt_secs) {
                    for _ in 0..256 {
                        if s.send(&buf).is_ok() {
                            n += 1;
                        }
                    }
                }
                n as f64 / t.elapsed().as_secs_f64()
            });
            let pps = h.join().expect("flood");
            println!("{label} {pps:.0} pkt/s");
        };
        b.ban(
            "bench",
            &[(IpNet::new("10.98.0.2".parse().unwrap(), 32), None)],
        )
        .expect("ban");
        flood("flood_banned_small_set", "10.98.0.2");
        flood("flood_unbanned_small_set", "10.98.0.3");

        // 4. 100k bans in one call (fresh jail).
        let mut s2 = spec.clone();
        s2.name = "bulk".into();
        b.ensure_jail(&s2).expect("jail");
        let items: Vec<(IpNet, Option<Duration>)> = (0..100_000).map(|i| (addr(i), ttl)).collect();
        let (t, c) = (Instant::now(), cpu());
        let rep = b.ban("bulk", &items).expect("bulk ban");
        println!(
            "ban_100k {:.3} s (cpu {:.3} s)",
            t.elapsed().as_secs_f64(),
            cpu() - c
        );
        assert_eq!(rep.applied, 100_000);
        b.remove_jail("bulk").expect("remove");

        // 5. Fill the bench jail to `big` elements, then reconcile it from a
        // fresh backend (a restart with keep_on_stop).
        let items: Vec<(IpNet, Option<Duration>)> = (0..big).map(|i| (addr(i), ttl)).collect();
        let (t, c) = (Instant::now(), cpu());
        let banned_at = t;
        let rep = b.ban("bench", &items).expect("big ban");
        println!(
            "ban_{big} {:.3} s (cpu {:.3} s)",
            t.elapsed().as_secs_f64(),
            cpu() - c
        );
        assert_eq!(rep.applied as u32, big);
        flood("flood_banned_big_set", "10.98.0.2");
        flood("flood_unbanned_big_set", "10.98.0.3");
        drop(b);
        let mut b = NftBackend::new(opts.clone()).expect("backend");
        b.ensure_jail(&spec).expect("jail");
        // The db's view: each ban's remaining time.
        let remaining = |items: &[(IpNet, Option<Duration>)]| -> Vec<(IpNet, Option<Duration>)> {
            let e = banned_at.elapsed();
            items
                .iter()
                .map(|(n, t)| (*n, t.map(|t| t.saturating_sub(e))))
                .collect()
        };
        let (t, c) = (Instant::now(), cpu());
        let n = b.list("bench").expect("list").len();
        println!(
            "list_{n} {:.3} s (cpu {:.3} s)",
            t.elapsed().as_secs_f64(),
            cpu() - c
        );
        let desired = remaining(&items);
        let (t, c) = (Instant::now(), cpu());
        let st = b.reconcile("bench", &desired).expect("reconcile");
        let c = cpu() - c;
        println!(
            "reconcile_{big}_restart {:.3} s (cpu {c:.3} s; found {} unchanged {} added {} removed {} updated {})",
            t.elapsed().as_secs_f64(),
            st.found,
            st.unchanged,
            st.added,
            st.removed,
            st.updated
        );
        // Reconcile after 1% drift: 1% extra in the kernel, 1% missing.
        let drift = (big / 100).max(1);
        let extra: Vec<(IpNet, Option<Duration>)> =
            (0..drift).map(|i| (addr(big + 10 + i), ttl)).collect();
        b.ban("bench", &extra).expect("extra");
        b.unban(
            "bench",
            &items[..drift as usize]
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
        )
        .expect("unban");
        let desired = remaining(&items);
        let (t, c) = (Instant::now(), cpu());
        let st = b.reconcile("bench", &desired).expect("reconcile");
        let c = cpu() - c;
        println!(
            "reconcile_{big}_drift1pct {:.3} s (cpu {c:.3} s; found {} unchanged {} added {} removed {} updated {})",
            t.elapsed().as_secs_f64(),
            st.found,
            st.unchanged,
            st.added,
            st.removed,
            st.updated
        );
        b.teardown().expect("teardown");
    })
    .expect("netns");
}
