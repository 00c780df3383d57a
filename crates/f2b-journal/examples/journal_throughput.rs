//! Throughput of the journal reader on a real journal file.
//!
//! Writes N entries (default 1,000,000; half sshd, half another unit) with
//! `systemd-journal-remote` into a temporary directory (or reuses
//! `$F2B_JOURNAL_BENCH_DIR` if it holds a journal; journal-remote rotates
//! the file as it grows, so the directory is read), then reads them:
//!
//! 1. every entry, formatted as fail2ban does (no journalmatch);
//! 2. the sshd entries only (`_SYSTEMD_UNIT=sshd.service + _COMM=sshd`).
//!
//! Run: `bench/journal/run.sh` (or `cargo run --release -p f2b-journal
//! --example throughput -- [N]`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use f2b_journal::{Journal, JournalMatch, JournalOptions, JournalSource, Start};
use f2b_tail::{LogEncoding, SubscriberId};

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

fn generate(path: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new(REMOTE)
        .arg(format!("--output={}", path.display()))
        .args(["--split-mode=none", "--compress=no", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{REMOTE}: {e} (Debian package systemd-journal-remote)"))?;
    let mut stdin = std::io::BufWriter::with_capacity(
        1 << 20,
        child.stdin.take().ok_or("journal-remote stdin")?,
    );
    let t0: u64 = 1_700_000_000_000_000;
    for i in 0..n {
        let (unit, comm) = if i % 2 == 0 {
            ("sshd.service", "sshd")
        } else {
            ("nginx.service", "nginx")
        };
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        write!(
            stdin,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME=srv\n_SYSTEMD_UNIT={unit}\n_COMM={comm}\nSYSLOG_IDENTIFIER={comm}\n\
             _PID={}\nSYSLOG_PID={}\n_UID=0\n_GID=0\nPRIORITY=6\nSYSLOG_FACILITY=4\n\
             _TRANSPORT=syslog\n_MACHINE_ID=fedcba9876543210fedcba9876543210\n\
             MESSAGE=Failed password for invalid user admin{i} from {ip} port 4{i:04} ssh2\n\n",
            t0 + i as u64 * 10,
            1_000_000 + i as u64 * 10,
            1000 + i % 30000,
            1000 + i % 30000,
        )?;
    }
    stdin.flush()?;
    drop(stdin);
    let st = child.wait()?;
    if !st.success() {
        return Err(format!("journal-remote failed: {st}").into());
    }
    Ok(())
}

fn run(dir: &Path, m: JournalMatch, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let src = JournalSource::Directory {
        path: dir.to_path_buf(),
        flags: 0,
    };
    let mut j = Journal::open(&src, JournalOptions::default())?;
    j.subscribe(SubscriberId(1), m, LogEncoding::Utf8, Start::Head)?;
    let t = Instant::now();
    let mut lines = 0u64;
    let mut bytes = 0u64;
    loop {
        let r = j.read(10_000, &mut |_, l| {
            lines += 1;
            bytes += l.text.len() as u64;
        })?;
        if !r.more {
            break;
        }
    }
    let s = t.elapsed().as_secs_f64();
    // cost of a read at the end of the journal (what a poll tick costs)
    let idle = Instant::now();
    for _ in 0..10_000 {
        j.read(10_000, &mut |_, _| {})?;
    }
    let idle_us = idle.elapsed().as_secs_f64() * 1e6 / 10_000.0;
    let st = j.stats();
    println!(
        "{label}: {} entries read, {lines} lines ({bytes} bytes) in {s:.2} s: {:.0} entries/s, {:.0} lines/s; read at end of journal: {idle_us:.2} µs",
        st.entries,
        st.entries as f64 / s,
        lines as f64 / s
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp;
    let dir: PathBuf = match std::env::var_os("F2B_JOURNAL_BENCH_DIR") {
        Some(p) => PathBuf::from(p),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.journal");
    if !path.exists() {
        let t = Instant::now();
        generate(&path, n)?;
        let mut size = 0;
        for e in std::fs::read_dir(&dir)? {
            size += e?.metadata()?.len();
        }
        println!(
            "generated {n} entries with journal-remote in {:.1} s ({} MiB)",
            t.elapsed().as_secs_f64(),
            size >> 20
        );
    }
    run(&dir, JournalMatch::all(), "all entries, no journalmatch")?;
    let sshd = JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"])?;
    run(&dir, sshd, "sshd journalmatch (half the entries)")?;
    Ok(())
}
