//! Hostile input: the dialect translator, the date detector and line
//! matching must never panic nor hang (invalid UTF-8, NUL bytes, 1 MiB lines,
//! catastrophic backtracking pairs).

use f2b_filter::date::DateDetector;
use f2b_filter::dialect::{translate, PyRegex};
use f2b_filter::{Filter, FilterSpec, UseDns};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn sshd_like() -> Filter {
    let mut f = Filter::new(FilterSpec {
        prefregex: Some(r"^\s*(?P<mlfid>(?:\S+\s+)?sshd\[\d+\]:\s+)(?P<content>.+)$".into()),
        failregex: vec![
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: port \d+)?(?(cond_user): |(?:(?:(?! from ).)*)$)".into(),
            r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>".into(),
            r"^(?:(?!x).)*(a+)+(?=b)$ <HOST>".into(),
        ],
        maxlines: 2,
        usedns: UseDns::Raw,
        ..Default::default()
    })
    .expect("filter");
    f.check_all_regex = true;
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn translator_never_panics(p in "\\PC{0,40}") {
        let _ = translate(&p);
        if let Ok(r) = PyRegex::with_limit(&p, false, 10_000) {
            let _ = r.search("aaaa bbbb\n");
        }
    }

    #[test]
    fn regex_meta_soup_never_panics(p in "[()\\[\\]{}?*+|^$\\\\PdsSwW=!<>:,0-9a-z-]{0,30}") {
        let _ = translate(&p);
        if let Ok(r) = PyRegex::with_limit(&p, true, 10_000) {
            let _ = r.search("aaaa\n(bbbb)\n");
        }
    }

    #[test]
    fn filter_lines_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut f = sshd_like();
        let text = String::from_utf8_lossy(&data);
        for line in text.split('\n') {
            let _ = f.process_line(line, 1124013600.0);
        }
    }

    #[test]
    fn dates_never_panic(pat in "[%a-zA-Z{}^$ :.-]{0,20}", line in "\\PC{0,60}") {
        if let Ok(mut dd) = DateDetector::from_datepattern(&pat) {
            let _ = dd.match_time(&line, 0.0);
        }
        let mut dd = DateDetector::new();
        let _ = dd.match_time(&line, 0.0);
    }
}

#[test]
fn nul_bytes_and_invalid_utf8() {
    let mut f = sshd_like();
    let raw =
        b"Jan  1 00:00:01 srv sshd[1]: Failed password for ro\0ot from 192.0.2.1: bad\xff\xfe";
    let line = String::from_utf8_lossy(raw);
    let r = f.process_line(&line, 1124013600.0);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].field_str("user"), Some("ro\0ot"));
}

#[test]
fn one_mib_line_is_bounded() {
    let mut f = sshd_like();
    let big = format!(
        "Jan  1 00:00:01 srv sshd[1]: Failed password for {} from 192.0.2.1",
        "a".repeat(1 << 20)
    );
    let t = Instant::now();
    let _ = f.process_line(&big, 1124013600.0);
    let big2 = "a".repeat(1 << 20);
    let _ = f.process_line(&big2, 1124013600.0);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn catastrophic_pairs_are_bounded() {
    let cases = [
        (r"^(a+)+$", "a".repeat(40) + "!"),
        (r"^(a+)+(?=b)", "a".repeat(40) + "!"),
        (r"(x+x+)+y(?<=y)", "x".repeat(60)),
        (r"^(\w+\s?)*$(?<!!)", "word ".repeat(20) + "!"),
        (r"(?P<a>a*)*(?P=a)b", "a".repeat(50)),
    ];
    for (p, s) in cases {
        let r = PyRegex::with_limit(p, false, 100_000).expect(p);
        let t = Instant::now();
        let _ = r.search(&s);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{p} took {:?}",
            t.elapsed()
        );
    }
}
