//! Benchmarks: 1M bans in the ban manager, failure-counting throughput.
//!
//! `cargo bench -p f2b-engine` (criterion).  The 1M-ban memory figure is
//! printed once (resident set delta, Linux) before the timed runs.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use f2b_core::addr::Addr;
use f2b_engine::{BanManager, FailManager, Ticket};

fn ip(i: u32) -> Addr {
    Addr::Ip(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i)))
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fill(n: u32) -> BanManager {
    let mut bm = BanManager::default();
    for i in 0..n {
        bm.add(Ticket::new(ip(i), f64::from(i) * 0.001, Vec::new()), 0.0);
    }
    bm
}

fn bans(c: &mut Criterion) {
    const N: u32 = 1_000_000;
    let before = rss_kib();
    let t0 = std::time::Instant::now();
    let mut bm = fill(N);
    let fill_time = t0.elapsed();
    let after = rss_kib();
    if let (Some(b), Some(a)) = (before, after) {
        eprintln!(
            "1M bans: add {:.3} s, RSS +{} MiB ({} bytes/ban)",
            fill_time.as_secs_f64(),
            (a.saturating_sub(b)) / 1024,
            (a.saturating_sub(b)) * 1024 / u64::from(N)
        );
    }
    let t0 = std::time::Instant::now();
    let mut now = 600.0;
    let mut unbanned = 0;
    while bm.size() > 0 {
        now += 1.0;
        unbanned += bm.unban_expired(now, usize::MAX).len();
    }
    eprintln!(
        "1M bans: expire all in {:.3} s ({unbanned} unbans)",
        t0.elapsed().as_secs_f64()
    );

    let mut g = c.benchmark_group("banmanager");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("add_1M", |b| b.iter(|| black_box(fill(N))));
    g.bench_function("add_then_expire_1M", |b| {
        b.iter_batched(
            || fill(N),
            |mut bm| {
                let n = bm.unban_expired(1e9, usize::MAX).len();
                black_box(n)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let mut bm = fill(100_000);
    c.bench_function("banmanager/next_unban_time_100k", |b| {
        b.iter(|| black_box(bm.next_unban_time()))
    });
}

fn failures(c: &mut Criterion) {
    let mut g = c.benchmark_group("failmanager");
    const N: u32 = 100_000;
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("add_failure_100k_ids_x1", |b| {
        b.iter(|| {
            let mut fm = FailManager::default();
            fm.set_maxretry(u32::MAX);
            for i in 0..N {
                fm.add_failure(Ticket::new(ip(i), f64::from(i), vec!["line".into()]), 1);
            }
            black_box(fm.size())
        })
    });
    g.bench_function("add_failure_1k_ids_x100", |b| {
        b.iter(|| {
            let mut fm = FailManager::default();
            fm.set_maxretry(u32::MAX);
            for i in 0..N {
                fm.add_failure(
                    Ticket::new(ip(i % 1000), f64::from(i) * 0.01, vec!["line".into()]),
                    1,
                );
            }
            black_box(fm.size())
        })
    });
    g.finish();
}

criterion_group!(benches, bans, failures);
criterion_main!(benches);
