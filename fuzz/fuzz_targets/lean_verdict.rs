//! Differential fuzzing of a counting run (`Filter::lean`, lines given as
//! read from a file with their facts) against the full filter: on any text,
//! the same failures (regex, NOFAIL) line by line. Exercises the verdict
//! taken from the spans (`quick_verdict`), the mlfid cache's merges and
//! evictions, and the line facts (`process_read_line_into`).
#![no_main]
use f2b_filter::{Failure, Filter, FilterSpec, UseDns};
use libfuzzer_sys::fuzz_target;

fn make(lean: bool) -> Option<Filter> {
    let spec = FilterSpec {
        prefregex: Some(
            r"^<F-MLFID>\s*(?:\S+\s+)?d\[\d+\]:\s+</F-MLFID><F-CONTENT>.+</F-CONTENT>$".into(),
        ),
        failregex: [
            r"^Failed \S+ for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>",
            r"^<F-NOFAIL>Connect from</F-NOFAIL> <HOST>",
            r"^<F-MLFFORGET>Closed</F-MLFFORGET> by <HOST>",
            r"^<F-NOFAIL><F-MLFFORGET>Bye</F-MLFFORGET></F-NOFAIL> from <HOST>",
            r"^Pending user <F-USER>\S+</F-USER>$",
            r"^<F-MLFFORGET><F-MLFGAINED>Accepted \S+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>",
            r"^<F-MLFFORGET>Gone</F-MLFFORGET> <F-USER>\S+</F-USER>$",
            r"^(?:Connect|<F-NOFAIL><F-MLFFORGET>Bye</F-MLFFORGET></F-NOFAIL>) from (?P<mlfpending>\S+)$",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        usedns: UseDns::Raw,
        ..Default::default()
    };
    let mut f = Filter::new(spec).ok()?;
    f.check_find_time = false;
    f.check_all_regex = true;
    f.ignore_pending = false;
    f.lean = lean;
    Some(f)
}

type Pair = std::sync::Mutex<(Filter, Filter)>;
// one pair shared by all inputs (their caches carry over: a wider state)
static FILTERS: std::sync::OnceLock<Option<Pair>> = std::sync::OnceLock::new();

fn sum(v: &[Failure]) -> Vec<(usize, bool)> {
    v.iter().map(|f| (f.regex_index, f.is_nofail())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(m) = FILTERS.get_or_init(|| Some(std::sync::Mutex::new((make(false)?, make(true)?))))
    else {
        return;
    };
    let Ok(mut g) = m.lock() else { return };
    let (full, lean) = &mut *g;
    let text = String::from_utf8_lossy(data);
    let mut got = Vec::new();
    for line in text.split('\n') {
        let want = full.process_line(line, 1124013600.0);
        got.clear();
        lean.process_read_line_into(line, line.is_ascii(), 1124013600.0, &mut got);
        assert_eq!(sum(&want), sum(&got), "{line:?}");
    }
});
