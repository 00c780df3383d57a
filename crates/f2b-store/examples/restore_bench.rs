//! Restore benchmark: how long f2b needs to read N active bans back from a
//! fail2ban-format database at start (issue #3088 of fail2ban: hours for 20k).
//!
//! ```text
//! cargo run --release -p f2b-store --example restore_bench -- [N] [MATCHES] [DIR]
//! ```
//! N bans (default 1,000,000) with MATCHES log lines each (default 2) are
//! written in batches into `DIR/restore-bench.sqlite3` (default: a temporary
//! directory), the store is closed, and then the timed part runs: open the
//! database and read every active ban of the jail (`current_bans`, what a
//! restart restores), then the all-jails variant. Prints one line per step.

use std::path::PathBuf;
use std::time::Instant;

use f2b_store::{BanRecord, CurrentBansQuery, OpenOptions, Store};

const NOW: i64 = 1_700_000_000;

/// CPU time (user + system, all threads) of this process so far, from
/// /proc/self/stat (Linux, 100 ticks per second); 0 where unavailable.
/// Reported next to wall time because the benchmark machine may be shared.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = arg(1, 1_000_000);
    let matches: usize = arg(2, 2);
    let tmp;
    let dir = match std::env::args().nth(3) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let path = dir.join("restore-bench.sqlite3");
    let opts = OpenOptions::new(NOW);
    // F2B_BENCH_REUSE=1 keeps a database left in DIR by an earlier run with
    // the same N (generation takes much longer than the restore).
    let reuse = std::env::var_os("F2B_BENCH_REUSE").is_some()
        && path.exists()
        && Store::open(&path, &opts)?.bips_count()? == n;
    if reuse {
        println!("generate: reusing {}", path.display());
    } else {
        generate(&path, &opts, n, matches)?;
    }
    let t = Instant::now();
    let c0 = cpu_secs();
    let store = Store::open(&path, &opts)?;
    let open = t.elapsed();
    let t2 = Instant::now();
    let bans = store.current_bans(&CurrentBansQuery::jail("sshd", NOW))?;
    let read = t2.elapsed();
    println!(
        "restore (jail): open {:.3} s + read {} active bans {:.3} s = {:.3} s wall, {:.3} s CPU",
        open.as_secs_f64(),
        bans.len(),
        read.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        cpu_secs() - c0
    );
    if bans.len() as u64 != n {
        return Err(format!("expected {n} active bans, read {}", bans.len()).into());
    }
    drop(bans);

    let t = Instant::now();
    let c0 = cpu_secs();
    let mut count = 0u64;
    store.for_each_current_ban(&CurrentBansQuery::jail("sshd", NOW), |_| count += 1)?;
    println!(
        "restore (jail, streaming): {count} bans in {:.3} s wall, {:.3} s CPU",
        t.elapsed().as_secs_f64(),
        cpu_secs() - c0
    );

    let t = Instant::now();
    let c0 = cpu_secs();
    let all = store.current_bans(&CurrentBansQuery::at(NOW))?;
    println!(
        "restore (all jails, newest per ip): {} bans in {:.3} s wall, {:.3} s CPU",
        all.len(),
        t.elapsed().as_secs_f64(),
        cpu_secs() - c0
    );
    Ok(())
}

/// Writes `n` active bans with `matches` log lines each into a fresh database.
fn generate(
    path: &std::path::Path,
    opts: &OpenOptions,
    n: u64,
    matches: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }

    let t = Instant::now();
    let store = Store::open(path, opts)?;
    store.add_jail("sshd")?;
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..n {
        let ip = format!(
            "{}.{}.{}.{}",
            1 + (i >> 24) % 223,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        let lines = (0..matches).map(|k| {
            format!(
                "2023-11-14T22:13:{k:02} host sshd[{i}]: Failed password for invalid user admin from {ip} port 4{k}222 ssh2"
            )
        });
        // A mix of permanent and long bans, all active at NOW.
        let bantime = if i % 10 == 0 { -1 } else { 86_400 * 7 };
        batch.push(
            BanRecord::new(
                ip.clone(),
                NOW - (i % 3600) as i64,
                bantime,
                1 + (i % 4) as i64,
            )
            .with_matches(lines)
            .with_failures(5)
            .with_field("F-USER", "admin"),
        );
        if batch.len() == batch.capacity() {
            store.add_bans("sshd", &batch)?;
            batch.clear();
        }
    }
    store.add_bans("sshd", &batch)?;
    store.close()?;
    let size = std::fs::metadata(path)?.len();
    println!(
        "generate: {n} bans ({matches} matches each) in {:.2} s, db {:.0} MiB",
        t.elapsed().as_secs_f64(),
        size as f64 / 1_048_576.0
    );

    Ok(())
}
