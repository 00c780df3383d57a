//! Throughput of the codec on a fail2ban-shaped start stream.
//!
//! `cargo run --release -p f2b-proto --example codec_bench`

use std::time::Instant;

use f2b_core::value::Value;
use f2b_proto::frame::{frame, FrameDecoder};
use f2b_proto::pickle::{decode, encode};

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn main() {
    // ~100 jails × 20 commands, like `fail2ban-client -d` with all jails on.
    let mut stream = Vec::new();
    for j in 0..100 {
        let jail = format!("jail{j}");
        stream.push(Value::List(vec![s("add"), s(&jail), s("auto")]));
        for k in 0..15 {
            stream.push(Value::List(vec![
                s("set"),
                s(&jail),
                s("addfailregex"),
                s(&format!(
                    "^%(__prefix_line)s(?:error: PAM: )?Authentication failure {k} for .* from <HOST>( via \\S+)?\\s*$"
                )),
            ]));
        }
        stream.push(Value::List(vec![
            s("multi-set"),
            s(&jail),
            s("action"),
            s("iptables"),
            Value::List(vec![
                Value::List(vec![
                    s("actionban"),
                    s("<iptables> -I f2b-<name> 1 -s <ip> -j <blocktype>"),
                ]),
                Value::List(vec![s("timeout"), s("60")]),
            ]),
        ]));
        stream.push(Value::List(vec![s("start"), s(&jail)]));
    }
    let msg = Value::List(vec![s("server-stream"), Value::List(stream)]);
    let pickle = encode(&msg);
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(encode(std::hint::black_box(&msg)));
    }
    let enc = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(decode(std::hint::black_box(&pickle)).expect("decode"));
    }
    let dec = t.elapsed() / n;
    let wire = frame(&pickle);
    let t = Instant::now();
    for _ in 0..n {
        let mut d = FrameDecoder::default();
        for c in wire.chunks(64 * 1024) {
            d.feed(c).expect("feed");
        }
        std::hint::black_box(d.next_frame().expect("frame"));
    }
    let fr = t.elapsed() / n;
    let ping = encode(&Value::List(vec![s("ping")]));
    let m = 200_000;
    let t = Instant::now();
    for _ in 0..m {
        std::hint::black_box(decode(std::hint::black_box(&ping)).expect("decode"));
    }
    let small = t.elapsed() / m;
    let mb = pickle.len() as f64 / 1e6;
    println!("start stream: {} bytes", pickle.len());
    println!("encode  {enc:?}  ({:.0} MB/s)", mb / enc.as_secs_f64());
    println!("decode  {dec:?}  ({:.0} MB/s)", mb / dec.as_secs_f64());
    println!("frame   {fr:?}  ({:.0} MB/s)", mb / fr.as_secs_f64());
    println!("decode ['ping']: {small:?}");
}
