//! Date detection per line: `DateDetector::match_time` + `get_time` on the
//! cached-template path (the same template as the previous line), for a
//! syslog stamp (stock sshd: `datepattern = {^LN-BEG}`), an ISO 8601 stamp
//! and an `EPOCH` stamp; plus building a detector.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use f2b_filter::date::{DateDetector, TimeCtx, TimeZone};
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let ctx = TimeCtx {
        now: 1_763_790_000.0,
        local: Arc::new(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").expect("zone")),
        default_tz: None,
    };
    for (name, pattern, line) in [
        (
            "syslog",
            "{^LN-BEG}",
            "Nov 22 05:28:54 host sshd[1234]: Failed password for root from 198.51.100.7 port 2201 ssh2",
        ),
        (
            "iso8601",
            "{^LN-BEG}",
            "2025-11-22T05:28:54.123+01:00 host sshd[1234]: Invalid user admin from 198.51.100.7",
        ),
        ("epoch", "{^LN-BEG}EPOCH", "1763790534 auth failure from 198.51.100.7"),
        (
            "default-unanchored",
            "",
            "host 2025-11-22 05:28:54 sshd[1234]: Failed password for root from 198.51.100.7",
        ),
    ] {
        let mut dd = DateDetector::from_datepattern(pattern).expect("datepattern");
        let tm = dd.match_time(line, 0.0).expect("a date");
        assert!(dd.get_time(line, &tm, &ctx).is_some());
        c.bench_function(&format!("date/match+get/{name}"), |b| {
            b.iter(|| {
                let tm = dd.match_time(black_box(line), 0.0).expect("a date");
                black_box(dd.get_time(line, &tm, &ctx))
            })
        });
    }
    c.bench_function("date/new/{^LN-BEG}", |b| {
        b.iter(|| DateDetector::from_datepattern(black_box("{^LN-BEG}")).expect("defaults"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
