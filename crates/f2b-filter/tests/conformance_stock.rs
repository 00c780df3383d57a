//! Runs fail2ban's annotated sample logs against the stock filters in
//! /etc/fail2ban through f2b's config reader and filter engine.
//! Needs the Debian `fail2ban` package (the compatibility oracle).

use f2b_filter::conformance::{python_filter_loader as load_py, run_conformance, Report};
use f2b_filter::FilterSpec;
use std::path::Path;

const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
const CONF: &str = "/etc/fail2ban";

/// Reads a filter with f2b's own config reader. The sample's filter options
/// are *filter* options (`name[k=v, ...]`, fail2ban's `FilterReader` init
/// options, as samplestestcase.py passes them), not jail options: only
/// those select `logtype`.
fn load(root: &Path, name: &str, opts: &[(String, String)]) -> Result<FilterSpec, String> {
    let spec = filter_spec(name, opts);
    let r = f2b_config::read_filter_dir(root, &spec, &[]).map_err(|e| e.to_string())?;
    Ok(FilterSpec {
        prefregex: r.prefregex,
        failregex: r.failregex,
        ignoreregex: r.ignoreregex,
        maxlines: r.maxlines.unwrap_or(1) as usize,
        datepattern: r.datepattern,
        ..Default::default()
    })
}

/// `name[k="v", ...]` (values quoted the way fail2ban's `extractOptions` reads them).
fn filter_spec(name: &str, opts: &[(String, String)]) -> String {
    if opts.is_empty() {
        return name.to_string();
    }
    let kv: Vec<String> = opts
        .iter()
        .map(|(k, v)| {
            if v.contains('"') {
                format!("{k}='{v}'")
            } else {
                format!("{k}=\"{v}\"")
            }
        })
        .collect();
    format!("{name}[{}]", kv.join(", "))
}

fn run() -> Report {
    assert!(
        Path::new(LOGS).is_dir() && Path::new(CONF).join("filter.d").is_dir(),
        "fail2ban sample logs / stock config missing: install the Debian `fail2ban` package"
    );
    run_conformance(Path::new(CONF), Path::new(LOGS), &load)
}

fn check(rep: &Report) {
    eprintln!("{}", rep.summary());
    let unexpected: Vec<_> = rep.failures.iter().collect();
    for f in &unexpected {
        eprintln!("{}:{} [{}] {}", f.file, f.line, f.filter, f.message);
    }
    assert!(
        rep.annotations >= 1040,
        "too few annotations: {}",
        rep.summary()
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures; {}",
        unexpected.len(),
        rep.summary()
    );
}

/// Same run, filters read by Python fail2ban's own FilterReader: separates
/// engine differences from config-reader differences.
#[test]
fn stock_filters_pass_sample_logs_python_reader() {
    let rep = run_conformance(Path::new(CONF), Path::new(LOGS), &load_py);
    check(&rep);
}

#[test]
fn stock_filters_pass_sample_logs() {
    check(&run());
}

#[test]
fn filter_options_become_a_spec() {
    assert_eq!(filter_spec("sshd", &[]), "sshd");
    let o = [
        ("logtype".to_string(), "journal".to_string()),
        ("mode".to_string(), "a\"b".to_string()),
    ];
    assert_eq!(
        filter_spec("sshd", &o),
        "sshd[logtype=\"journal\", mode='a\"b']"
    );
}
