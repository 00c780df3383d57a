//! Measures `FileTail::read_lines` throughput on a generated sshd-like log.
//!
//! `cargo run --release -p f2b-tail --example throughput [lines]`

use std::io::Write;
use std::time::Instant;

use f2b_tail::{FileTail, Start, TailOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("auth.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for i in 0..n {
        writeln!(
            f,
            "Nov 22 00:00:{:02} host sshd[{}]: Failed password for invalid user admin from 192.0.2.{} port {} ssh2",
            i % 60,
            1000 + i % 5000,
            i % 250,
            1024 + i % 60000
        )?;
    }
    f.flush()?;
    drop(f);
    let bytes = std::fs::metadata(&path)?.len();
    let start = Instant::now();
    let mut tail = FileTail::open(&path, Start::Head, TailOptions::default())?;
    let mut count = 0u64;
    let mut total = 0usize;
    tail.read_lines(&mut |l| {
        count += 1;
        total += l.text.len();
    })?;
    let dt = start.elapsed();
    println!(
        "{count} lines, {} MiB in {:.1} ms: {:.1} M lines/s, {:.0} MiB/s (text bytes {total})",
        bytes / (1 << 20),
        dt.as_secs_f64() * 1e3,
        count as f64 / dt.as_secs_f64() / 1e6,
        bytes as f64 / dt.as_secs_f64() / (1 << 20) as f64
    );
    Ok(())
}
