//! Arbitrary bytes as an INI file: parsing and merging never panic.
#![no_main]
use std::sync::Arc;

use f2b_config::cfg::Cfg;
use f2b_config::ini;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pf = ini::parse(&text, &Arc::from("fuzz.conf"));
    let mut c = Cfg::default();
    c.merge_file("fuzz.conf", &pf);
    c.merge_file("fuzz.local", &pf);
    let _ = c.section_names().count();
});
