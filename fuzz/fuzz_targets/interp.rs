//! Arbitrary bytes as a filter/jail tree: interpolation (`%(x)s`,
//! `%(sec/x)s`, `%(known/x)s`), `<tag>` substitution and the readers never panic.
#![no_main]
use std::sync::Arc;

use f2b_config::cfg::Cfg;
use f2b_config::{ini, load, read_filter, LoadOptions, MemSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pf = ini::parse(&text, &Arc::from("fuzz.conf"));
    let mut c = Cfg::default();
    c.merge_file("fuzz.conf", &pf);
    let names: Vec<String> = c.sections.keys().cloned().chain(["DEFAULT".to_string()]).collect();
    for s in &names {
        for o in c.options(s, true).unwrap_or_default() {
            let _ = c.get(s, &o, None);
            let _ = c.get_ex(s, &format!("known/{o}"), None);
        }
    }
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    let src = MemSource::new(
        "/fuzz",
        [
            ("jail.conf", format!("[DEFAULT]\nfilter = f\naction = a[x=1]\n[j]\nenabled = true\n{a}")),
            ("filter.d/f.conf", b.to_string()),
            ("action.d/a.conf", text.to_string()),
        ],
    );
    let opts = LoadOptions { allow_no_files: true, ignore_wrong: true, ..Default::default() };
    if let Ok(cfg) = load(&src, &opts) {
        for cmd in &cfg.stream {
            let _ = cmd.pformat(2, 80);
        }
    }
    let _ = read_filter(&src, "f[mode=x]", &[]);
});
