//! `read_filter` against fail2ban's own `FilterReader` (the oracle, run from
//! the installed Debian package) for every stock filter, with and without
//! parameters and for the systemd backend.

use std::path::Path;
use std::process::{Command, Stdio};

use f2b_config::{read_filter, FsSource, ResolvedFilter};
use f2b_core::value::Value;

const STOCK: &str = "/etc/fail2ban";

const SCRIPT: &str = r#"
import sys
from fail2ban.client.filterreader import FilterReader
from fail2ban.helpers import extractOptions
share = {}
for line in sys.stdin.read().split('\x00'):
    spec, backend = line.split('\x01')
    name, opts = extractOptions(spec)
    r = FilterReader(name, 'fail2ban-regex-jail', opts, share_config=share, basedir='/etc/fail2ban')
    if not r.read():
        print(repr(['ERROR', spec])); continue
    try:
        r.applyAutoOptions(backend)
        r.getOptions(None)
        st = r.convert()
    except Exception as e:
        print(repr(['EXC', spec, str(e)])); continue
    f = {'prefregex': None, 'failregex': [], 'ignoreregex': [], 'maxlines': None,
         'datepattern': None, 'journalmatch': [], 'usedns': None}
    for c in st:
        if c[0] == 'multi-set':
            f[c[2][3:]] = list(c[3])
        elif c[2] in ('addfailregex', 'addignoreregex'):
            f[c[2][3:]] = [c[3]]
        elif c[2] == 'addjournalmatch':
            f['journalmatch'].append(list(c[3:]))
        else:
            f[c[2]] = c[3]
    print(repr([spec, f['prefregex'], f['failregex'], f['ignoreregex'], f['maxlines'],
                f['datepattern'], f['journalmatch'], f['usedns']]))
"#;

fn opt(s: &Option<String>) -> Value {
    s.clone().map(Value::Str).unwrap_or(Value::None)
}

fn strs(v: &[String]) -> Value {
    Value::List(v.iter().cloned().map(Value::Str).collect())
}

fn as_value(spec: &str, f: &ResolvedFilter) -> Value {
    Value::List(vec![
        Value::str(spec),
        opt(&f.prefregex),
        strs(&f.failregex),
        strs(&f.ignoreregex),
        f.maxlines
            .map(|m| Value::Int(m.into()))
            .unwrap_or(Value::None),
        opt(&f.datepattern),
        Value::List(f.journalmatch_words().iter().map(|w| strs(w)).collect()),
        opt(&f.usedns),
    ])
}

#[test]
fn every_stock_filter_resolves_like_fail2ban() {
    assert!(
        Path::new(STOCK).join("filter.d").is_dir(),
        "the fail2ban oracle is missing: install Debian's `fail2ban` package"
    );
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(Path::new(STOCK).join("filter.d"))
        .expect("filter.d")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .map(|n| n.trim_end_matches(".conf").to_owned())
        .collect();
    names.sort();
    assert!(names.len() > 80, "stock filters found: {}", names.len());
    for n in &names {
        cases.push((n.clone(), String::new()));
        cases.push((n.clone(), "systemd".into()));
    }
    for extra in [
        "sshd[mode=aggressive]",
        "sshd[mode=ddos]",
        "sshd[mode=extra, publickey=invalid]",
        "postfix[mode=auth]",
        "apache-auth[logtype=short]",
        "recidive[_jailname=x]",
    ] {
        cases.push((extra.into(), String::new()));
    }
    let input: Vec<String> = cases.iter().map(|(s, b)| format!("{s}\x01{b}")).collect();
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with fail2ban is required");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.join("\x00").as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(want.len(), cases.len());
    let src = FsSource::new(STOCK);
    let mut bad = Vec::new();
    for ((spec, backend), w) in cases.iter().zip(&want) {
        let overrides = if backend.is_empty() {
            vec![]
        } else {
            vec![("backend".to_string(), backend.clone())]
        };
        let got = match read_filter(&src, spec, &overrides) {
            Ok(f) => as_value(spec, &f).repr(),
            Err(f2b_config::ConfigError::NoFilter { .. }) => {
                Value::List(vec![Value::str("ERROR"), Value::str(spec.clone())]).repr()
            }
            Err(e) => Value::List(vec![
                Value::str("EXC"),
                Value::str(spec.clone()),
                Value::Str(e.to_string()),
            ])
            .repr(),
        };
        if &got != w {
            bad.push(format!(
                "{spec} [{backend}]\n  fail2ban: {w}\n  f2b:      {got}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

#[test]
fn filter_given_as_file_name_or_path() {
    let src = FsSource::new(STOCK);
    let by_name = read_filter(&src, "sshd[mode=aggressive]", &[]).expect("sshd");
    let by_file = read_filter(&src, "sshd.conf[mode=aggressive]", &[]).expect("sshd.conf");
    assert_eq!(by_name.failregex, by_file.failregex);
    let by_path = read_filter(
        &src,
        "/etc/fail2ban/filter.d/sshd.conf[mode=aggressive]",
        &[],
    )
    .expect("full path");
    assert_eq!(by_name.failregex, by_path.failregex);
    // a foreign file is read explicitly (with its includes)
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("mine.conf");
    std::fs::write(
        &f,
        "[Definition]\nfailregex = ^bad <HOST>$\n            ^worse <HOST>$\n",
    )
    .expect("write");
    let mine = read_filter(&src, &f.to_string_lossy(), &[]).expect("foreign");
    assert_eq!(mine.failregex, vec!["^bad <HOST>$", "^worse <HOST>$"]);
    assert!(read_filter(&src, "no-such-filter", &[]).is_err());
}
