//! Fuzz line matching with the stock-like sshd filter shape: arbitrary
//! bytes (invalid UTF-8, NUL, huge lines) must never panic or hang.
#![no_main]
use f2b_filter::{Filter, FilterSpec, UseDns};
use libfuzzer_sys::fuzz_target;

fn make() -> Option<Filter> {
    let spec = FilterSpec {
        prefregex: Some(r"^\s*(?P<mlfid>(?:\S+\s+)?sshd\[\d+\]:\s+)(?P<content>.+)$".into()),
        failregex: vec![
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: port \d+)?(?(cond_user): |(?:(?:(?! from ).)*)$)".into(),
            r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>".into(),
            r"^Accepted \S+ for <F-USER>\S+</F-USER> from <SUBNET><SKIPLINES>x".into(),
        ],
        ignoreregex: vec![r"ignore me".into()],
        maxlines: 3,
        usedns: UseDns::Raw,
        ..Default::default()
    };
    let mut f = Filter::new(spec).ok()?;
    f.check_all_regex = true;
    Some(f)
}

// Compiling the filter per input would dominate; one filter is shared (its
// multi-line buffer and mlfid cache carry over between inputs, which only
// widens the explored state).
static FILTER: std::sync::OnceLock<Option<std::sync::Mutex<Filter>>> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(m) = FILTER.get_or_init(|| make().map(std::sync::Mutex::new)) else {
        return;
    };
    let Ok(mut f) = m.lock() else { return };
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let _ = f.process_line(line, 1124013600.0);
    }
});
