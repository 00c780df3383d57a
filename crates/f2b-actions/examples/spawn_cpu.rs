//! The CPU one command costs the thread that runs it: N bans through a
//! `JailActions` whose `actionban` is COMMAND (default `true`), with
//! `ban_many` (8 at a time) on a current-thread runtime, as the server's
//! runtime thread runs its action worker. The children's CPU is not counted.
//!
//! `cargo run --release -p f2b-actions --example spawn_cpu -- 2000 true`

use std::sync::Arc;

use f2b_actions::{ActionEnv, BanTicket, JailActions};

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1400);
    let cmd = std::env::args().nth(2).unwrap_or_else(|| "true".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut ja = JailActions::new("b", Arc::new(ActionEnv::default()));
        ja.add("a", [("actionban", cmd.clone())]).expect("action");
        let tickets: Vec<BanTicket> = (0..n)
            .map(|i| BanTicket::new(format!("10.0.{}.{}", i >> 8 & 255, i & 255), 0.0))
            .collect();
        // the first spawns set things up (the /dev/null descriptor, the stack)
        let _ = ja.ban_many(&tickets[..n.min(8)], 8).await;
        let (c0, t0) = (thread_cpu_s(), std::time::Instant::now());
        let fails = ja.ban_many(&tickets, 8).await;
        let cpu = thread_cpu_s() - c0;
        println!(
            "{n} commands '{cmd}': wall {:.3} s, thread CPU {:.1} us a command, {} failed",
            t0.elapsed().as_secs_f64(),
            cpu * 1e6 / n as f64,
            fails.len()
        );
    });
}
