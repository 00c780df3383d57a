//! Fuzz `datepattern` parsing and date detection/conversion: arbitrary
//! patterns and lines must never panic.
#![no_main]
use f2b_filter::date::{DateDetector, TimeCtx};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (pat, line) = s.split_once('\n').unwrap_or(("", &s));
    let ctx = TimeCtx {
        now: 1124013600.0,
        local: Arc::new(f2b_filter::date::TimeZone::UTC),
        default_tz: None,
    };
    let mut dds = vec![DateDetector::new()];
    if let Ok(dd) = DateDetector::from_datepattern(pat) {
        dds.push(dd);
    }
    for dd in &mut dds {
        if let Some(tm) = dd.match_time(line, 0.0) {
            let _ = dd.get_time(line, &tm, &ctx);
        }
    }
    let _ = f2b_filter::date::zone_offset(pat);
});
