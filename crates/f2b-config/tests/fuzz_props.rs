//! Property tests: arbitrary text fed to the INI parser, the interpolation,
//! the option-string helpers and the whole loader never panics. Run with
//! more cases via `PROPTEST_CASES=100000 cargo test -p f2b-config --test fuzz_props`.

use f2b_config::cfg::Cfg;
use f2b_config::helpers::{
    extract_options, shlex_split, split_with_options, substitute_recursive_tags, PyStrMap,
};
use f2b_config::{ini, load, read_filter, LoadOptions, MemSource};
use proptest::prelude::*;
use std::sync::Arc;

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[DEFAULT]",
    "[Definition]",
    "[Init]",
    "[INCLUDES]",
    "[sshd]",
    "[Init?family=inet6]",
    "[lt_file]",
    "before",
    "after",
    "=",
    ":",
    " = ",
    "%(",
    ")s",
    "%%",
    "%",
    "<",
    ">",
    "known/",
    "default/",
    "lt_file/",
    "\n",
    "\n  ",
    "\r\n",
    "\t",
    " ",
    ";",
    " ;",
    "#",
    "a",
    "b",
    "x",
    "failregex",
    "action",
    "filter",
    "enabled",
    "true",
    "logpath",
    "port",
    "name",
    "__name__",
    "mode",
    "?family=inet6",
    "[",
    "k=v",
    ",",
    "\"",
    "'",
    "common.conf",
    "../",
    "/",
    "é",
    "\u{feff}",
    "0",
    "-1",
    "1d",
    "%(a)s",
    "%(b)s",
    "<a>",
    "<b>",
    "<known/a>",
];

fn tokens() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|v| v.concat())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        tokens(),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ".{0,120}",
    ]
}

fn cfg_of(files: &[String]) -> Cfg {
    let mut c = Cfg::default();
    for (i, t) in files.iter().enumerate() {
        let name = format!("f{i}.conf");
        let pf = ini::parse(t, &Arc::from(name.as_str()));
        c.merge_file(&name, &pf);
    }
    c
}

proptest! {
    #[test]
    fn ini_and_interpolation_never_panic(files in prop::collection::vec(text(), 1..4)) {
        let c = cfg_of(&files);
        let sections: Vec<String> = c.sections.keys().cloned().chain(["DEFAULT".to_string()]).collect();
        for s in &sections {
            let opts = c.options(s, true).unwrap_or_default();
            for o in opts {
                let _ = c.get(s, &o, None);
                let _ = c.get_ex(s, &o, None);
                let _ = c.get_ex(s, &format!("known/{o}"), None);
            }
        }
    }

    #[test]
    fn option_helpers_never_panic(s in text()) {
        let _ = extract_options(&s);
        let _ = split_with_options(&s);
        let _ = shlex_split(&s);
        let _ = f2b_core::duration::str2sec(&s);
        let mut m = PyStrMap::default();
        for (i, part) in s.split('\n').enumerate() {
            m.insert(["a", "b", "c", "known/a"][i % 4].to_string(), Some(part.to_owned()));
        }
        let _ = substitute_recursive_tags(m, &std::collections::HashSet::<String>::new(), &mut |t| (t.len() < 3).then(|| format!("<{t}>")));
    }

    #[test]
    fn loader_never_panics(jail in text(), filter in text(), action in text(), local in text()) {
        let src = MemSource::new("/mem", [
            ("fail2ban.conf", "[Definition]\nloglevel = INFO\n".to_string()),
            ("jail.conf", format!("[DEFAULT]\nfilter = f\naction = a[x=1]\nlogpath = /nonexistent\n{jail}")),
            ("jail.local", local),
            ("filter.d/f.conf", filter.clone()),
            ("filter.d/common.conf", filter),
            ("action.d/a.conf", action),
        ]);
        let opts = LoadOptions { allow_no_files: true, ignore_wrong: true, force_enable: true, ..Default::default() };
        if let Ok(c) = load(&src, &opts) {
            for cmd in &c.stream {
                let _ = cmd.repr();
                let _ = cmd.pformat(2, 80);
            }
        }
        let _ = read_filter(&src, "f[mode=x]", &[]);
    }
}
