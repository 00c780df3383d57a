//! What `fail2ban-client` prints for a reply.
//!
//! This reproduces fail2ban 1.0.2's `Beautifier` including its failure
//! mode: when a reply does not have the shape a command's formatter expects,
//! Python catches the exception and prints `repr(msg) + repr(response)`
//! where `msg` is whatever it had built so far. The Python operations used
//! by the formatters (`len`, indexing, iteration, `str.join`, `%`) are
//! modelled on [`Value`] with Python's semantics, so the output is the same
//! for any reply, well-formed or not (verified differentially against the
//! installed Python beautifier in `tests/oracle.rs`).
//!
//! Two formats are additions for commands 1.0.2 does not have, used only for
//! the reply shapes f2b's server sends for them: `status --all` (a dict of
//! jail → status) and `stats` (a dict of jail → `[backend, [cur, tot],
//! [cur, tot]]`).

use f2b_core::value::Value;

use crate::pyfmt::{exception_str, py_repr, py_str, repr_str};

/// Text printed for a successful reply `(0, response)` to `cmd`.
pub fn beautify(cmd: &[String], response: &Value) -> String {
    if let Some(s) = extension(cmd, response) {
        return s;
    }
    match beautify_102(cmd, response) {
        Ok(Msg::Response) => py_str(response),
        Ok(Msg::Text(s)) => s,
        Ok(Msg::Lines(l)) => l.join("\n"),
        Err(state) => {
            let mut s = match state {
                Msg::Response => py_repr(response),
                Msg::Text(t) => repr_str(&t),
                Msg::Lines(l) => py_repr(&Value::List(l.into_iter().map(Value::Str).collect())),
            };
            s.push_str(&py_repr(response));
            s
        }
    }
}

/// Text printed for an error reply `(1, exception)` to `cmd`.
pub fn beautify_error(_cmd: &[String], response: &Value) -> String {
    match response {
        Value::Exception { class, message } => {
            let short = class.rsplit('.').next().unwrap_or(class);
            match short {
                "UnknownJailException" => {
                    format!("Sorry but the jail '{message}' does not exist")
                }
                "IndexError" => "Sorry but the command is invalid".to_owned(),
                "DuplicateJailException" => format!("The jail '{message}' already exists"),
                _ => exception_str(class, message),
            }
        }
        other => py_str(other),
    }
}

/// The message state: still the raw response, or text built so far.
enum Msg {
    Response,
    Text(String),
    Lines(Vec<String>),
}

/// A Python exception inside the formatter; carries `msg` at that point.
type Fail = Msg;

/// Python `TypeError`/`IndexError`/...: the caller attaches the state.
struct PyErr;

fn len(v: &Value) -> Result<usize, PyErr> {
    Ok(match v {
        Value::Str(s) => s.chars().count(),
        Value::Bytes(b) => b.len(),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => x.len(),
        Value::Dict(d) => d.len(),
        _ => return Err(PyErr),
    })
}

fn iter(v: &Value) -> Result<Vec<Value>, PyErr> {
    Ok(match v {
        Value::Str(s) => s.chars().map(|c| Value::Str(c.to_string())).collect(),
        Value::Bytes(b) => b.iter().map(|&c| Value::Int(c.into())).collect(),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => x.clone(),
        Value::Dict(d) => d.iter().map(|(k, _)| k.clone()).collect(),
        _ => return Err(PyErr),
    })
}

fn num_eq(k: &Value, i: i64) -> bool {
    match k {
        Value::Int(x) => *x == i,
        Value::Bool(b) => i64::from(*b) == i,
        Value::Float(f) => *f == i as f64,
        _ => false,
    }
}

fn getitem(v: &Value, i: i64) -> Result<Value, PyErr> {
    let pick = |n: usize| -> Result<usize, PyErr> {
        let j = if i < 0 { n as i64 + i } else { i };
        if j < 0 || j >= n as i64 {
            Err(PyErr)
        } else {
            Ok(j as usize)
        }
    };
    Ok(match v {
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            Value::Str(chars[pick(chars.len())?].to_string())
        }
        Value::Bytes(b) => Value::Int(b[pick(b.len())?].into()),
        Value::List(x) | Value::Tuple(x) => x[pick(x.len())?].clone(),
        Value::Dict(d) => d
            .iter()
            .find(|(k, _)| num_eq(k, i))
            .map(|(_, v)| v.clone())
            .ok_or(PyErr)?,
        _ => return Err(PyErr),
    })
}

/// `v[:-1]` iterated.
fn all_but_last(v: &Value) -> Result<Vec<Value>, PyErr> {
    match v {
        Value::Str(_) | Value::Bytes(_) | Value::List(_) | Value::Tuple(_) => {
            let mut items = iter(v)?;
            items.pop();
            Ok(items)
        }
        _ => Err(PyErr),
    }
}

fn as_str(v: &Value) -> Result<&str, PyErr> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(PyErr),
    }
}

/// `sep.join(v)`.
fn join(sep: &str, v: &Value) -> Result<String, PyErr> {
    let items = iter(v)?;
    let mut parts = Vec::with_capacity(items.len());
    for it in &items {
        parts.push(as_str(it)?);
    }
    Ok(parts.join(sep))
}

/// The argument list `fmt % v` sees: a tuple is unpacked, anything else is
/// one argument.
fn percent_args(v: &Value) -> Vec<Value> {
    match v {
        Value::Tuple(t) => t.clone(),
        other => vec![other.clone()],
    }
}

/// `"%s" % v`.
fn percent_s(v: &Value) -> Result<String, PyErr> {
    let a = percent_args(v);
    if a.len() != 1 {
        return Err(PyErr);
    }
    Ok(py_str(&a[0]))
}

/// `"%i" % v`.
fn percent_i(v: &Value) -> Result<String, PyErr> {
    let a = percent_args(v);
    if a.len() != 1 {
        return Err(PyErr);
    }
    match &a[0] {
        Value::Int(i) => Ok(i.to_string()),
        Value::Bool(b) => Ok(i64::from(*b).to_string()),
        Value::Float(f) if f.is_finite() => Ok(format!("{}", f.trunc() as i128)),
        _ => Err(PyErr),
    }
}

fn level_name(v: &Value) -> Value {
    let level = match v {
        Value::Int(i) => *i,
        Value::Bool(false) => 0,
        Value::Bool(true) => 1,
        other => return other.clone(),
    };
    let name = match level {
        50 => "CRITICAL",
        40 => "ERROR",
        30 => "WARNING",
        25 => "NOTICE",
        20 => "INFO",
        18 => "MSG",
        10 => "DEBUG",
        7 => "TRACE",
        5 => "HEAVY",
        0 => "NOTSET",
        // fail2ban names every other level below 50 "#NN-Lev."
        n @ 0..=49 => return Value::Str(format!("#{n:02}-Lev.")),
        other => return Value::Str(format!("Level {other}")),
    };
    Value::Str(name.into())
}

/// Runs `body`; a Python exception becomes `Err(state)`.
fn text<F>(init: &str, body: F) -> Result<Msg, Fail>
where
    F: FnOnce(&mut String) -> Result<(), PyErr>,
{
    let mut msg = init.to_owned();
    match body(&mut msg) {
        Ok(()) => Ok(Msg::Text(msg)),
        Err(PyErr) => Err(Msg::Text(msg)),
    }
}

/// `r` with the message still being the response on failure.
fn raw(r: Result<String, PyErr>) -> Result<Msg, Fail> {
    r.map(Msg::Text).map_err(|_| Msg::Response)
}

fn tree_list(prefix: &str, response: &Value, label: &str) -> Result<Msg, Fail> {
    // "<label>:\n|- a\n|- b\n`- c"
    let n = len(response).map_err(|_| Msg::Response)?;
    if n == 0 {
        return Ok(Msg::Text(prefix.to_owned()));
    }
    text(label, |msg| {
        for p in all_but_last(response)? {
            let s = as_str(&p)?;
            msg.push_str("|- ");
            msg.push_str(s);
            msg.push('\n');
        }
        let last = getitem(response, -1)?;
        let last = as_str(&last)?;
        msg.push_str("`- ");
        msg.push_str(last);
        Ok(())
    })
}

fn status_lines(jail: Option<&str>, response: &Value) -> Result<String, Vec<String>> {
    let mut msg = Vec::new();
    let r = (|| -> Result<(), PyErr> {
        match jail {
            Some(j) => {
                msg.push(format!("Status for the jail: {j}"));
                let top = iter(response)?;
                let n1 = len(response)?;
                for (n, res1) in top.iter().enumerate() {
                    let last1 = n + 1 == n1;
                    msg.push(format!(
                        "{} {}",
                        if last1 { "`-" } else { "|-" },
                        py_str(&getitem(res1, 0)?)
                    ));
                    let prefix1 = if last1 { "   " } else { "|  " };
                    let sub = getitem(res1, 1)?;
                    let items = iter(&sub)?;
                    for (m, res2) in items.iter().enumerate() {
                        let last2 = m + 1 == len(&sub)?;
                        let val = value_text(&getitem(res2, 1)?);
                        msg.push(format!(
                            "{prefix1}{} {}:\t{}",
                            if last2 { "`-" } else { "|-" },
                            py_str(&getitem(res2, 0)?),
                            val
                        ));
                    }
                }
            }
            None => {
                msg.push("Status".to_owned());
                let top = iter(response)?;
                let n1 = len(response)?;
                for (n, res1) in top.iter().enumerate() {
                    let last1 = n + 1 == n1;
                    let val = value_text(&getitem(res1, 1)?);
                    msg.push(format!(
                        "{} {}:\t{}",
                        if last1 { "`-" } else { "|-" },
                        py_str(&getitem(res1, 0)?),
                        val
                    ));
                }
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(msg.join("\n")),
        Err(PyErr) => Err(msg),
    }
}

/// `" ".join(map(str, v)) if isinstance(v, list) else v`, then `%s`.
fn value_text(v: &Value) -> String {
    match v {
        Value::List(items) => items.iter().map(py_str).collect::<Vec<_>>().join(" "),
        other => py_str(other),
    }
}

fn beautify_102(cmd: &[String], response: &Value) -> Result<Msg, Fail> {
    let Some(c0) = cmd.first() else {
        return Err(Msg::Response);
    };
    let c1 = cmd.get(1).map(String::as_str);
    let c2 = cmd.get(2).map(String::as_str);
    match c0.as_str() {
        "ping" => return raw(as_str(response).map(|s| format!("Server replied: {s}"))),
        "version" => return Ok(Msg::Response),
        "start" => return Ok(Msg::Text("Jail started".into())),
        "stop" => {
            return Ok(match (cmd.len(), response) {
                (1, Value::None) => Msg::Text("Shutdown successful".into()),
                (_, Value::None) if cmd.len() > 1 => Msg::Text("Jail stopped".into()),
                _ => Msg::Response,
            })
        }
        "add" => return raw(as_str(response).map(|s| format!("Added jail {s}"))),
        "flushlogs" => return raw(as_str(response).map(|s| format!("logs: {s}"))),
        "echo" => return raw(join(" ", response)),
        "status" => {
            return match status_lines(c1, response) {
                Ok(s) => Ok(Msg::Text(s)),
                Err(lines) => Err(Msg::Lines(lines)),
            }
        }
        _ => {}
    }
    let Some(c1) = c1 else {
        return Ok(Msg::Response);
    };
    match c1 {
        "syslogsocket" => {
            return text("Current syslog socket is:\n", |m| {
                let r = as_str(response)?;
                m.push_str("`- ");
                m.push_str(r);
                Ok(())
            })
        }
        "logtarget" => {
            return text("Current logging target is:\n", |m| {
                let r = as_str(response)?;
                m.push_str("`- ");
                m.push_str(r);
                Ok(())
            })
        }
        "loglevel" => {
            let v = match response {
                Value::Int(_) | Value::Bool(_) => level_name(response),
                other => other.clone(),
            };
            return Ok(Msg::Text(format!(
                "Current logging level is {}",
                py_repr(&v)
            )));
        }
        "dbfile" => {
            if *response == Value::None {
                return Ok(Msg::Text("Database currently disabled".into()));
            }
            return text("Current database file is:\n", |m| {
                let r = as_str(response)?;
                m.push_str("`- ");
                m.push_str(r);
                Ok(())
            });
        }
        "dbpurgeage" => {
            if *response == Value::None {
                return Ok(Msg::Text("Database currently disabled".into()));
            }
            return text("Current database purge age is:\n", |m| {
                let n = percent_i(response)?;
                m.push_str(&format!("`- {n}seconds"));
                Ok(())
            });
        }
        _ => {}
    }
    let Some(c2) = c2 else {
        return Ok(Msg::Response);
    };
    match c2 {
        "logpath" | "addlogpath" | "dellogpath" => tree_list(
            "No file is currently monitored",
            response,
            "Current monitored log file(s):\n",
        ),
        "logencoding" => text("Current log encoding is set to:\n", |m| {
            m.push_str(as_str(response)?);
            Ok(())
        }),
        "journalmatch" | "addjournalmatch" | "deljournalmatch" => {
            let n = len(response).map_err(|_| Msg::Response)?;
            if n == 0 {
                return Ok(Msg::Text("No journal match filter set".into()));
            }
            text("Current match filter:\n", |m| {
                let mut parts = Vec::new();
                for res in iter(response)? {
                    parts.push(join(" ", &res)?);
                }
                m.push_str(&parts.join(" + "));
                Ok(())
            })
        }
        "datepattern" => text("Current date pattern set to: ", |m| {
            if *response == Value::None {
                m.push_str("Not set/required");
            } else if getitem(response, 0)? == Value::None {
                m.push_str(&percent_s(&getitem(response, 1)?)?);
            } else {
                match response {
                    Value::Tuple(t) if t.len() == 2 => {
                        m.push_str(&format!("{} ({})", py_str(&t[0]), py_str(&t[1])));
                    }
                    _ => return Err(PyErr),
                }
            }
            Ok(())
        }),
        "ignoreip" | "addignoreip" | "delignoreip" => tree_list(
            "No IP address/network is ignored",
            response,
            "These IP addresses/networks are ignored:\n",
        ),
        "failregex" | "addfailregex" | "delfailregex" | "ignoreregex" | "addignoreregex"
        | "delignoreregex" => {
            let n = len(response).map_err(|_| Msg::Response)?;
            if n == 0 {
                return Ok(Msg::Text("No regular expression is defined".into()));
            }
            text("The following regular expression are defined:\n", |m| {
                let mut c = 0;
                for l in all_but_last(response)? {
                    m.push_str(&format!("|- [{c}]: {}\n", as_str(&l)?));
                    c += 1;
                }
                let last = getitem(response, -1)?;
                m.push_str(&format!("`- [{c}]: {}", as_str(&last)?));
                Ok(())
            })
        }
        "actions" => {
            let n = len(response).map_err(|_| Msg::Response)?;
            if n == 0 {
                return Ok(Msg::Text(format!("No actions for jail {c1}")));
            }
            let init = format!("The jail {c1} has the following actions:\n");
            text(&init, |m| {
                m.push_str(&join(", ", response)?);
                Ok(())
            })
        }
        "actionproperties" | "actionmethods" => {
            let n = len(response).map_err(|_| Msg::Response)?;
            let what = if c2 == "actionproperties" {
                "properties"
            } else {
                "methods"
            };
            let Some(c3) = cmd.get(3) else {
                return Err(Msg::Response);
            };
            if n == 0 {
                return Ok(Msg::Text(format!("No {what} for jail {c1} action {c3}")));
            }
            let init = format!("The jail {c1} action {c3} has the following {what}:\n");
            text(&init, |m| {
                m.push_str(&join(", ", response)?);
                Ok(())
            })
        }
        "banip" if c0 == "get" => match response {
            Value::List(_) => {
                let sep = match cmd.get(3).map(String::as_str) {
                    None => " ",
                    Some("--with-time") => "\n",
                    Some(s) => s,
                };
                raw(join(sep, response))
            }
            _ => Ok(Msg::Response),
        },
        _ => Ok(Msg::Response),
    }
}

/// Formats for f2b's additions (fail2ban 1.1 commands): only for the reply
/// shapes f2b's server produces, so 1.0.2 behaviour is unchanged otherwise.
fn extension(cmd: &[String], response: &Value) -> Option<String> {
    let Value::Dict(jails) = response else {
        return None;
    };
    match cmd.first().map(String::as_str)? {
        "status" if cmd.get(1).map(String::as_str) == Some("--all") => {
            let mut blocks = Vec::new();
            for (name, st) in jails {
                let name = py_str(name);
                blocks.push(status_lines(Some(&name), st).ok()?);
            }
            Some(blocks.join("\n"))
        }
        "stats" | "statistic" | "statistics" if cmd.len() == 1 => stats_table(jails),
        _ => None,
    }
}

fn stats_table(jails: &[(Value, Value)]) -> Option<String> {
    let mut rows = Vec::new();
    for (name, row) in jails {
        let (Value::List(r) | Value::Tuple(r)) = row else {
            return None;
        };
        let pair = |v: &Value| -> Option<(String, String)> {
            match v {
                Value::List(p) | Value::Tuple(p) if p.len() == 2 => {
                    Some((py_str(&p[0]), py_str(&p[1])))
                }
                _ => None,
            }
        };
        if r.len() != 3 {
            return None;
        }
        let (fc, ft) = pair(&r[1])?;
        let (ac, at) = pair(&r[2])?;
        rows.push([py_str(name), py_str(&r[0]), fc, ft, ac, at]);
    }
    let head = ["Jail", "Backend", "cur", "tot", "cur", "tot"];
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    // Group headers must fit over their two columns.
    for (g, name) in [(2usize, "Filter"), (4, "Actions")] {
        let span = w[g] + 3 + w[g + 1];
        if span < name.len() {
            w[g + 1] += name.len() - span;
        }
    }
    let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
    let rpad =
        |s: &str, n: usize| format!("{}{s}", " ".repeat(n.saturating_sub(s.chars().count())));
    let mut out = Vec::new();
    out.push(format!(
        "{} | {} | {} | {}",
        pad("", w[0]),
        pad("", w[1]),
        pad("Filter", w[2] + 3 + w[3]),
        "Actions"
    ));
    out.push(format!(
        "{} | {} | {} | {} | {} | {}",
        pad(head[0], w[0]),
        pad(head[1], w[1]),
        rpad(head[2], w[2]),
        rpad(head[3], w[3]),
        rpad(head[4], w[4]),
        rpad(head[5], w[5])
    ));
    out.push(
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    for r in &rows {
        out.push(format!(
            "{} | {} | {} | {} | {} | {}",
            pad(&r[0], w[0]),
            pad(&r[1], w[1]),
            rpad(&r[2], w[2]),
            rpad(&r[3], w[3]),
            rpad(&r[4], w[4]),
            rpad(&r[5], w[5])
        ));
    }
    Some(
        out.into_iter()
            .map(|l| l.trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
