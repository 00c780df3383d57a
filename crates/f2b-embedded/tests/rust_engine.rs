//! Our filters through f2b's own filter engine (`f2b_filter`), with the
//! option resolution of Python fail2ban's FilterReader (the config loader is
//! another crate): the sample-log conformance runner of f2b-filter, and a
//! check that every expanded regex runs on the linear-time engine (no
//! backtracking fallback).

mod common;

use common::*;
use f2b_filter::conformance::run_conformance;
use f2b_filter::dialect::PyRegex;
use f2b_filter::tags::resolve_host_tag;
use f2b_filter::UseDns;
use std::path::Path;

const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

use f2b_filter::conformance::python_filter_loader as load;

#[test]
fn f2b_engine_runs_our_filters_on_the_sample_logs() {
    require_oracle();
    let dir = exported();
    let rep = run_conformance(dir.path(), Path::new(LOGS), &load);
    eprintln!("f2b engine on our filters: {}", rep.summary());
    // "Regex has no samples" is reported per option variant; regexes whose
    // text differs only by the log-type header (syslog/journal variants of
    // apache-auth and asterisk) are covered by the file-type samples.
    let real: Vec<_> = rep
        .failures
        .iter()
        .filter(|f| !f.message.starts_with("Regex has no samples"))
        .collect();
    for f in &real {
        eprintln!("  {}:{} [{}] {}", f.file, f.line, f.filter, f.message);
    }
    assert!(
        rep.files >= 89,
        "expected every sample log to have a filter: {}",
        rep.summary()
    );
    assert!(
        real.is_empty(),
        "f2b engine disagrees with the annotations: {}",
        rep.summary()
    );
    assert_eq!(rep.annotations_passed, rep.annotations, "{}", rep.summary());
}

#[test]
fn every_regex_runs_on_the_linear_engine() {
    require_oracle();
    let dir = exported();
    let names = conf_names("filter.d");
    let (mut total, mut backtracking) = (0usize, Vec::new());
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if name.ends_with("-common") || name == "common" {
            continue;
        }
        // the modes the filter defines ("mdre-<mode> =" / "_denied_<mode> =")
        let text = f2b_embedded::get(&format!("filter.d/{name}.conf")).unwrap_or("");
        let mut modes = vec![String::new()];
        for line in text.lines() {
            for key in ["mdre-", "_denied_"] {
                if let Some(rest) = line.strip_prefix(key) {
                    if let Some((m, _)) = rest.split_once(" =") {
                        modes.push(m.trim().to_string());
                    }
                }
            }
        }
        for mode in &modes {
            let opts: Vec<(String, String)> = if mode.is_empty() {
                vec![]
            } else {
                vec![("mode".to_string(), mode.clone())]
            };
            let Ok(spec) = load(dir.path(), name, &opts) else {
                continue;
            };
            for rx in spec.failregex.iter().chain(spec.prefregex.iter()) {
                let expanded = resolve_host_tag(rx, UseDns::Warn);
                if !seen.insert(expanded.clone()) {
                    continue;
                }
                total += 1;
                let re = PyRegex::new(&expanded, false)
                    .unwrap_or_else(|e| panic!("{name}: {e}: {expanded}"));
                if re.is_backtracking() {
                    backtracking.push(format!("{name}[{mode}]"));
                }
            }
        }
    }
    backtracking.sort();
    backtracking.dedup();
    eprintln!(
        "{total} distinct expanded regexes, backtracking fallback needed by: {backtracking:?}"
    );
    assert!(total > 100, "too few regexes: {total}");
    assert!(
        backtracking.is_empty(),
        "filters needing the backtracking fallback: {backtracking:?}"
    );
}
