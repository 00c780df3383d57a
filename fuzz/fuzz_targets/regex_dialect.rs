//! Fuzz the Python `re` dialect translator and both engines: any pattern
//! text must compile or return an error (never panic), and searching any
//! haystack must terminate (budgeted backtracking).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (pat, hay) = match s.split_once('\u{0}') {
        Some((p, h)) => (p.to_string(), h.to_string()),
        None => (
            s.to_string(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\n".to_string(),
        ),
    };
    let _ = f2b_filter::dialect::translate(&pat);
    for ml in [false, true] {
        if let Ok(re) = f2b_filter::dialect::PyRegex::with_limit(&pat, ml, 10_000) {
            let _ = re.search(&hay);
            let _ = re.search_at(&hay, hay.len() / 2, hay.len());
        }
    }
});
