//! Measures action throughput: N bans through a `echo <ip> >> file` action,
//! in one jail serially, in one jail with `ban_many`, then spread over 4
//! jails running concurrently.
//!
//! `cargo run --release -p f2b-actions --example ban_storm -- 1400`

use std::sync::Arc;
use std::time::Instant;

use f2b_actions::{ActionEnv, BanTicket, JailActions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1400);
    let out = std::env::temp_dir().join(format!("f2b-ban-storm-{}", std::process::id()));
    let action = [("actionban", format!("echo <ip> >> {}", out.display()))];
    let env = Arc::new(ActionEnv::default());

    let tickets: Vec<BanTicket> = (0..n)
        .map(|i| {
            BanTicket::new(
                format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                0.0,
            )
        })
        .collect();
    let mut one = JailActions::new("one", env.clone());
    one.add("a", action.clone()).expect("action");
    let t0 = Instant::now();
    for t in &tickets {
        one.ban(t).await;
    }
    let serial = t0.elapsed();

    let mut batch = JailActions::new("batch", env.clone());
    batch.add("a", action.clone()).expect("action");
    let t0 = Instant::now();
    let fails = batch.ban_many(&tickets, 8).await;
    let batched = t0.elapsed();
    assert!(fails.is_empty());

    let t0 = Instant::now();
    let mut handles = Vec::new();
    for j in 0..4 {
        let mut ja = JailActions::new(format!("j{j}"), env.clone());
        ja.add("a", action.clone()).expect("action");
        let per = n / 4;
        handles.push(tokio::spawn(async move {
            for i in 0..per {
                let t = BanTicket::new(format!("10.{j}.{}.{}", i >> 8 & 255, i & 255), 0.0);
                ja.ban(&t).await;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let parallel = t0.elapsed();
    let lines = std::fs::read_to_string(&out).map_or(0, |s| s.lines().count());
    let _ = std::fs::remove_file(&out);
    println!(
        "{n} bans: one jail serial {:.3} s ({:.2} ms each); one jail ban_many(8) {:.3} s; \
         4 jails concurrently {:.3} s; lines written {lines}",
        serial.as_secs_f64(),
        serial.as_secs_f64() * 1000.0 / n as f64,
        batched.as_secs_f64(),
        parallel.as_secs_f64()
    );
}
