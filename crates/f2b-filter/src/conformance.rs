//! Sample-log conformance runner: the logic of fail2ban's
//! `samplestestcase.py`, reusable for any filter tree.
//!
//! Every log under `logs_dir` whose name has a filter `<root>/filter.d/<name>.conf`
//! is run line by line through that filter (with each `# filterOptions:` set,
//! following `# addFILE:` includes) and every `# failJSON:` annotation is
//! checked: match or not, exactly one failure, each given field, the time.
//! Lines without annotation must not match. Each failregex must be used by at
//! least one sample.

use crate::filter::{Failure, Filter, FilterSpec, UseDns};
use f2b_core::addr::Addr;
use f2b_core::value::Value;
use jiff::tz::TimeZone;
use serde_json::Value as J;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// fail2ban's test "now": 2005-08-14 12:00:00 CEST.
pub const TEST_NOW: f64 = 1124013600.0;
/// fail2ban's test time zone.
pub const TEST_TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";

/// Loads a filter: (filter root dir, filter name, filter options) -> spec.
pub type FilterLoader<'a> =
    &'a dyn Fn(&Path, &str, &[(String, String)]) -> Result<FilterSpec, String>;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    /// Log file name.
    pub file: String,
    /// 1-based line number (0 for per-filter checks).
    pub line: usize,
    /// Filter variant (name + options).
    pub filter: String,
    /// What went wrong.
    pub message: String,
}

/// Result of a conformance run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Log files run.
    pub files: usize,
    /// `# failJSON:` annotations seen (each counted once).
    pub annotations: usize,
    /// Annotations whose checks all passed (for every option set).
    pub annotations_passed: usize,
    /// Individual line checks (annotation x option set, plus unannotated lines).
    pub checks: usize,
    /// Failed checks.
    pub failures: Vec<CaseFailure>,
}

impl Report {
    /// Human readable summary.
    pub fn summary(&self) -> String {
        format!(
            "{} files, {} annotations ({} passed), {} checks, {} failures",
            self.files,
            self.annotations,
            self.annotations_passed,
            self.checks,
            self.failures.len()
        )
    }
}

fn eval_cond(expr: &str, name: &str, opts: &BTreeMap<String, String>) -> Result<bool, String> {
    let (lhs, rhs, eq) = if let Some((a, b)) = expr.split_once("==") {
        (a.trim(), b.trim(), true)
    } else if let Some((a, b)) = expr.split_once("!=") {
        (a.trim(), b.trim(), false)
    } else {
        return Err(format!("unsupported condition {expr:?}"));
    };
    let lit = rhs.trim_matches(|c| c == '\'' || c == '"');
    let val: Option<String> = if lhs == "name" {
        Some(name.to_string())
    } else if let Some(k) = lhs
        .strip_prefix("opts.get(")
        .and_then(|s| s.strip_suffix(')'))
    {
        opts.get(k.trim_matches(|c| c == '\'' || c == '"')).cloned()
    } else {
        return Err(format!("unsupported condition {expr:?}"));
    };
    Ok((val.as_deref() == Some(lit)) == eq)
}

fn json_opts(j: &J) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let J::Object(o) = j {
        for (k, v) in o {
            let s = match v {
                J::String(s) => s.clone(),
                other => other.to_string(),
            };
            m.insert(k.clone(), s);
        }
    }
    m
}

struct Variant {
    name: String,
    filter: Option<Filter>,
    opts: BTreeMap<String, String>,
    used: BTreeSet<usize>,
    nregex: usize,
}

fn value_eq(fv: &Value, v: &J) -> bool {
    match (fv, v) {
        (Value::None, J::Null) => true,
        (Value::Str(a), J::String(b)) => a == b,
        (Value::Int(a), J::Number(b)) => b.as_i64() == Some(*a),
        (Value::Bool(a), J::Bool(b)) => a == b,
        (Value::Set(a) | Value::List(a) | Value::Tuple(a), J::Array(b)) => {
            let mut x: Vec<String> = a.iter().map(|v| format!("{v:?}")).collect();
            let mut y: Vec<String> = b
                .iter()
                .map(|j| {
                    let v = match j {
                        J::String(s) => Value::Str(s.clone()),
                        J::Null => Value::None,
                        J::Number(n) => Value::Int(n.as_i64().unwrap_or(0)),
                        J::Bool(b) => Value::Bool(*b),
                        other => Value::Str(other.to_string()),
                    };
                    format!("{v:?}")
                })
                .collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => false,
    }
}

fn check_failure(
    f: &Failure,
    faildata: &serde_json::Map<String, J>,
    local: &TimeZone,
) -> Result<(), String> {
    let fields = f.fields();
    for (k, v) in faildata {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let fv = fields.get(k.as_str()).filter(|v| !matches!(v, Value::None));
        let ok = match fv {
            Some(fv) => value_eq(fv, v),
            None if k == "host" => match (&f.id, v) {
                (Some(id), J::String(s)) => {
                    let other = Addr::parse(s).unwrap_or_else(|_| Addr::raw(s.clone()));
                    *id == other || id.to_string() == *s
                }
                (None, J::Null) => true,
                _ => false,
            },
            None if k == "attempts" => value_eq(&Value::Int(f.match_count() as i64), v),
            None => value_eq(&Value::None, v),
        };
        if !ok {
            return Err(format!(
                "field {k:?}: got {fv:?} (id {:?}), expected {v}",
                f.id.as_ref().map(|a| a.to_string())
            ));
        }
    }
    if let Some(J::String(t)) = faildata.get("time") {
        let (base, frac) = match t.split_once('.') {
            Some((b, fr)) => (b, format!("0.{fr}").parse::<f64>().unwrap_or(0.0)),
            None => (t.as_str(), 0.0),
        };
        let dt = parse_iso_lenient(base).ok_or_else(|| format!("bad time {t:?}"))?;
        let want = local
            .to_timestamp(dt)
            .map_err(|e| e.to_string())?
            .as_second() as f64
            + frac;
        match f.time {
            Some(got) if got == want => {}
            got => return Err(format!("time mismatch: got {got:?}, expected {want} ({t})")),
        }
    }
    Ok(())
}

/// `datetime.strptime(t, "%Y-%m-%dT%H:%M:%S")` (1-2 digit fields allowed).
fn parse_iso_lenient(s: &str) -> Option<jiff::civil::DateTime> {
    let (d, t) = s.split_once('T')?;
    let mut dp = d.split('-').map(|x| x.parse::<i64>().ok());
    let mut tp = t.split(':').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (dp.next()??, dp.next()??, dp.next()??);
    let (h, mi, se) = (tp.next()??, tp.next()??, tp.next()??);
    jiff::civil::DateTime::new(y as i16, mo as i8, da as i8, h as i8, mi as i8, se as i8, 0).ok()
}

/// Runs every sample log in `logs_dir` that has a filter of the same name
/// under `filter_dir_root/filter.d`, using `load` to read filters.
pub fn run_conformance(filter_dir_root: &Path, logs_dir: &Path, load: FilterLoader<'_>) -> Report {
    let mut report = Report::default();
    let mut names: Vec<String> = match std::fs::read_dir(logs_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| {
                filter_dir_root
                    .join("filter.d")
                    .join(format!("{n}.conf"))
                    .is_file()
            })
            .collect(),
        Err(e) => {
            report.failures.push(CaseFailure {
                file: logs_dir.display().to_string(),
                line: 0,
                filter: String::new(),
                message: format!("cannot read logs dir: {e}"),
            });
            return report;
        }
    };
    names.sort();
    for name in names {
        run_one(filter_dir_root, logs_dir, &name, load, &mut report);
    }
    report
}

fn make_variant(
    root: &Path,
    name: &str,
    opts: BTreeMap<String, String>,
    load: FilterLoader<'_>,
    local: &TimeZone,
) -> Result<Variant, String> {
    let fopts: Vec<(String, String)> = opts
        .iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let vname = format!(
        "{name}{}",
        if fopts.is_empty() {
            String::new()
        } else {
            format!("{fopts:?}")
        }
    );
    let mut spec = load(root, name, &fopts)?;
    spec.usedns = UseDns::Warn;
    let mut flt = Filter::new(spec).map_err(|e| e.to_string())?;
    flt.return_raw_host = true;
    flt.check_all_regex = true;
    flt.check_find_time = false;
    flt.set_local_zone(local.clone());
    let nregex = flt.failregex().len();
    Ok(Variant {
        name: vname,
        filter: Some(flt),
        opts,
        used: BTreeSet::new(),
        nregex,
    })
}

fn run_one(root: &Path, logs_dir: &Path, name: &str, load: FilterLoader<'_>, report: &mut Report) {
    let local = TimeZone::posix(TEST_TZ).unwrap_or(TimeZone::UTC);
    report.files += 1;
    let mut variants: Vec<Variant> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut cache: BTreeMap<String, usize> = BTreeMap::new();
    let mut filenames: Vec<PathBuf> = vec![logs_dir.join(name)];
    let mut common: Option<BTreeMap<String, String>> = None;
    let mut i = 0;
    let fail = |report: &mut Report, file: &str, line: usize, filter: &str, message: String| {
        report.failures.push(CaseFailure {
            file: file.to_string(),
            line,
            filter: filter.to_string(),
            message,
        });
    };
    while i < filenames.len() {
        let path = filenames[i].clone();
        i += 1;
        let fname = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                fail(report, &fname, 0, name, format!("cannot read: {e}"));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut ignore_block = false;
        let mut ln = 0usize;
        while ln < lines.len() {
            let mut line = lines[ln];
            ln += 1;
            let mut lnnum = ln;
            let stripped = line.trim_end_matches('\n');
            let mut faildata: serde_json::Map<String, J> = serde_json::Map::new();
            let mut annotated = false;
            // ^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$
            let hdr = stripped.trim_start_matches('#');
            let is_hdr = stripped.starts_with('#');
            let hdr = hdr.strip_prefix(' ').unwrap_or(hdr);
            let key = ["failJSON", "fileOptions", "filterOptions", "addFILE"]
                .iter()
                .find(|k| hdr.starts_with(&format!("{k}:")));
            if is_hdr && key.is_some() {
                let k = *key.unwrap_or(&"");
                let body = &hdr[k.len() + 1..];
                let j: J = match serde_json::from_str(body) {
                    Ok(j) => j,
                    Err(e) => {
                        fail(report, &fname, ln, name, format!("bad JSON: {e}"));
                        continue;
                    }
                };
                match k {
                    "fileOptions" => {
                        common = Some(json_opts(&j));
                        continue;
                    }
                    "filterOptions" => {
                        current.clear();
                        ignore_block = false;
                        let list = match j {
                            J::Array(a) => a,
                            o => vec![o],
                        };
                        for o in list {
                            let mut opts = common.clone().unwrap_or_default();
                            opts.extend(json_opts(&o));
                            if let Some(c) = opts.get("test.condition") {
                                match eval_cond(c, name, &opts) {
                                    Ok(v) => ignore_block = !v,
                                    Err(e) => fail(report, &fname, ln, name, e),
                                }
                            }
                            if !ignore_block {
                                let key = format!("{opts:?}");
                                let idx = match cache.get(&key) {
                                    Some(&i) => i,
                                    None => {
                                        let v =
                                            make_variant(root, name, opts.clone(), load, &local)
                                                .unwrap_or_else(|e| {
                                                    fail(
                                                        report,
                                                        &fname,
                                                        ln,
                                                        name,
                                                        format!("filter load failed: {e}"),
                                                    );
                                                    Variant {
                                                        name: format!("{name}{key}"),
                                                        filter: None,
                                                        opts: opts.clone(),
                                                        used: BTreeSet::new(),
                                                        nregex: 0,
                                                    }
                                                });
                                        variants.push(v);
                                        cache.insert(key, variants.len() - 1);
                                        variants.len() - 1
                                    }
                                };
                                current.push(idx);
                            }
                        }
                        continue;
                    }
                    "addFILE" => {
                        if let J::String(f) = j {
                            filenames.push(logs_dir.join(f));
                        }
                        continue;
                    }
                    _ => {
                        if let J::Object(o) = j {
                            faildata = o;
                        }
                        annotated = true;
                        if ln >= lines.len() {
                            break;
                        }
                        line = lines[ln];
                        ln += 1;
                        lnnum = ln;
                    }
                }
            } else if ignore_block || line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if ignore_block {
                continue;
            }
            if current.is_empty() {
                let key = "{}".to_string();
                let idx = match cache.get(&key) {
                    Some(&i) => i,
                    None => {
                        let v = make_variant(root, name, BTreeMap::new(), load, &local)
                            .unwrap_or_else(|e| {
                                fail(
                                    report,
                                    &fname,
                                    lnnum,
                                    name,
                                    format!("filter load failed: {e}"),
                                );
                                Variant {
                                    name: name.to_string(),
                                    filter: None,
                                    opts: BTreeMap::new(),
                                    used: BTreeSet::new(),
                                    nregex: 0,
                                }
                            });
                        variants.push(v);
                        cache.insert(key, variants.len() - 1);
                        variants.len() - 1
                    }
                };
                current = vec![idx];
            }
            if annotated {
                report.annotations += 1;
            }
            let mut all_ok = true;
            let text_line = line.trim_end_matches(['\r', '\n']);
            for &vi in &current {
                let v = &mut variants[vi];
                if let Some(J::String(c)) = faildata.get("constraint") {
                    match eval_cond(c, name, &v.opts) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            all_ok = false;
                            fail(report, &fname, lnnum, &v.name.clone(), e);
                            continue;
                        }
                    }
                }
                let Some(flt) = v.filter.as_mut() else {
                    all_ok = false;
                    continue;
                };
                report.checks += 1;
                let ret = if v.opts.get("logtype").map(String::as_str) != Some("journal") {
                    flt.process_line(text_line, TEST_NOW)
                } else {
                    let mut l = text_line.to_string();
                    if let Some(p) = v.opts.get("test.prefix-line") {
                        l = format!("{p}{l}");
                    }
                    flt.process_line_with_time(
                        (String::new(), "2005-08-14T10:00:00".into(), l),
                        TEST_NOW,
                        TEST_NOW,
                    )
                };
                let mut found = Vec::new();
                for f in ret {
                    if f.id.is_none() || f.is_nofail() {
                        v.used.insert(f.regex_index);
                        continue;
                    }
                    found.push(f);
                }
                let want = faildata
                    .get("match")
                    .is_some_and(|m| m.as_bool().unwrap_or(false));
                let res: Result<(), String> = if found.is_empty() {
                    if want {
                        Err("Line not matched when should have".into())
                    } else {
                        Ok(())
                    }
                } else if !want {
                    Err(format!(
                        "Line matched when shouldn't have (regex {})",
                        found[0].regex_index
                    ))
                } else if found.len() != 1 {
                    Err(format!(
                        "Multiple regexs matched {:?}",
                        found.iter().map(|f| f.regex_index).collect::<Vec<_>>()
                    ))
                } else {
                    v.used.insert(found[0].regex_index);
                    check_failure(&found[0], &faildata, &local)
                };
                if let Err(e) = res {
                    all_ok = false;
                    let vn = v.name.clone();
                    fail(
                        report,
                        &fname,
                        lnnum,
                        &vn,
                        format!("{e}; line: {text_line}"),
                    );
                }
            }
            if annotated && all_ok {
                report.annotations_passed += 1;
            }
        }
    }
    for v in &variants {
        if v.filter.is_none() {
            continue;
        }
        let srcs = v.filter.as_ref().map(|f| f.failregex()).unwrap_or_default();
        for idx in 0..v.nregex {
            let used_same_src = variants.iter().any(|w| {
                w.filter.as_ref().is_some_and(|f| {
                    let s = f.failregex();
                    w.used.iter().any(|&u| s.get(u) == srcs.get(idx))
                })
            });
            if !v.used.contains(&idx) && !used_same_src {
                report.failures.push(CaseFailure {
                    file: name.to_string(),
                    line: 0,
                    filter: v.name.clone(),
                    message: format!("Regex has no samples: {idx}: {:?}", srcs.get(idx)),
                });
            }
        }
    }
}

/// Python side of the oracle loader: reads `{"root","name","opts"}` JSON
/// requests, answers with the resolved filter options (fail2ban's own
/// FilterReader), one JSON object per line.
const PY_FILTER_LOADER: &str = r#"
import sys, json
sys.path.insert(0, '/usr/lib/python3/dist-packages')
from fail2ban.client.filterreader import FilterReader
for req in sys.stdin:
    req = json.loads(req)
    try:
        fr = FilterReader(req['name'], 'jail', dict(req['opts']), basedir=req['root'])
        fr.read(); fr.getOptions({})
        out = {}
        for opt in fr.convert():
            v = opt[3]
            out.setdefault(opt[2], []).extend(v if opt[0] == 'multi-set' else [v])
        print(json.dumps({'ok': out}), flush=True)
    except Exception as e:
        print(json.dumps({'err': repr(e)}), flush=True)
"#;

struct PyLoader {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

type SharedLoader = Result<std::sync::Mutex<PyLoader>, String>;

fn py_loader() -> &'static SharedLoader {
    static L: std::sync::OnceLock<SharedLoader> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", PY_FILTER_LOADER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("/usr/bin/python3 with fail2ban (the oracle) is required: {e}"))?;
        let out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(std::sync::Mutex::new(PyLoader { child, out }))
    })
}

/// Reads a filter with Python fail2ban's own `FilterReader` (the test oracle: needs
/// `/usr/bin/python3` with Debian's fail2ban). Usable as a [`FilterLoader`]; one Python
/// process serves every call.
pub fn python_filter_loader(
    root: &Path,
    name: &str,
    opts: &[(String, String)],
) -> Result<FilterSpec, String> {
    use std::io::{BufRead, Write};
    let req = serde_json::json!({"root": root, "name": name, "opts": opts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()});
    let mut l = py_loader().as_ref()?.lock().map_err(|e| e.to_string())?;
    let stdin = l.child.stdin.as_mut().ok_or("no stdin")?;
    writeln!(stdin, "{req}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    l.out.read_line(&mut line).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    let ok = v.get("ok").ok_or_else(|| format!("python: {}", v["err"]))?;
    let list = |k: &str| -> Vec<String> {
        ok.get(k)
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = |k: &str| list(k).into_iter().next();
    Ok(FilterSpec {
        prefregex: first("prefregex"),
        failregex: list("addfailregex"),
        ignoreregex: list("addignoreregex"),
        maxlines: first("maxlines").and_then(|s| s.parse().ok()).unwrap_or(1),
        datepattern: first("datepattern"),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let mut o = BTreeMap::new();
        assert!(eval_cond("name=='sshd'", "sshd", &o).unwrap());
        assert!(!eval_cond("name == 'sshd'", "x", &o).unwrap());
        o.insert("mode".into(), "aggressive".into());
        assert!(eval_cond("opts.get('mode') == 'aggressive'", "x", &o).unwrap());
        assert!(!eval_cond("opts.get('mode') != 'aggressive'", "x", &o).unwrap());
        assert!(eval_cond("foo()", "x", &o).is_err());
    }
}
