//! The `server` tool: `fail2ban-server`'s command line.
//!
//! The offline options (`-d`, `--dp`, `-t`, `--str2sec`, `-h`, `-V`) behave exactly as
//! the client's (fail2ban shares one command-line class between both tools), so they are
//! handed to the client. Everything else starts the daemon (`f2b_server::daemon`).

use f2b_server::daemon::{run, ServerOptions};

/// Options that make `fail2ban-server` act offline, like the client.
fn is_offline(a: &str) -> bool {
    matches!(
        a,
        "-d" | "--dp" | "--dump-pretty" | "-t" | "--test" | "-h" | "--help" | "-V" | "--version"
    ) || a.starts_with("--str2sec")
}

fn takes_value(a: &str) -> bool {
    matches!(
        a,
        "-c" | "--conf"
            | "-s"
            | "--socket"
            | "-p"
            | "--pidfile"
            | "--pname"
            | "--loglevel"
            | "--logtarget"
            | "--syslogsocket"
            | "--timeout"
            | "--exec-prefix"
    )
}

/// Parses the server's options; `Err` carries a message for the usage error.
pub fn parse(args: &[String]) -> Result<(ServerOptions, Vec<String>), String> {
    let mut o = ServerOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        // `--opt=value` and `-cDIR` forms.
        let (name, inline): (String, Option<String>) = if let Some(rest) = a.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
                None => (a.to_owned(), None),
            }
        } else if a.len() > 2 && takes_value(&a[..2]) {
            (a[..2].to_owned(), Some(a[2..].to_owned()))
        } else if a.len() > 2 {
            // grouped short flags such as -xf
            for c in a[1..].chars() {
                apply_flag(&mut o, &format!("-{c}"))?;
            }
            i += 1;
            continue;
        } else {
            (a.to_owned(), None)
        };
        if takes_value(&name) {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("option {name} requires argument"))?
                }
            };
            match name.as_str() {
                "-c" | "--conf" => o.conf = v,
                "-s" | "--socket" => o.socket = Some(v),
                "-p" | "--pidfile" => o.pidfile = Some(v),
                "--loglevel" => o.loglevel = Some(v),
                "--logtarget" => o.logtarget = Some(v),
                "--syslogsocket" => o.syslogsocket = Some(v),
                "--exec-prefix" => {
                    o.exec_prefix = v.split_whitespace().map(str::to_owned).collect()
                }
                _ => {}
            }
        } else {
            apply_flag(&mut o, &name)?;
        }
        i += 1;
    }
    Ok((o, args[i.min(args.len())..].to_vec()))
}

fn apply_flag(o: &mut ServerOptions, f: &str) -> Result<(), String> {
    match f {
        "-x" => o.force = true,
        "-b" => o.background = true,
        "-f" => o.background = false,
        "--async" => o.async_ = true,
        "--embedded" => o.embedded = true,
        "-v" | "-q" | "-i" => {}
        _ => return Err(format!("option {f} not recognized")),
    }
    Ok(())
}

/// Runs the tool with its arguments (program name excluded); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    if args.iter().any(|a| is_offline(a)) {
        return crate::client::main(args);
    }
    match parse(args) {
        Ok((o, rest)) => {
            if rest.iter().any(|r| r != "start") {
                eprintln!("ERROR: unexpected arguments for the server: {rest:?}");
                return 255;
            }
            run(o)
        }
        Err(e) => {
            print!(
                "{}",
                crate::client::usage().replace("fail2ban-client", "fail2ban-server")
            );
            eprintln!("ERROR: {e}");
            255
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_systemd_style_arguments() {
        let (o, rest) = parse(&s(&["-xf", "-c", "/tmp/c", "--logtarget=STDOUT", "start"])).unwrap();
        assert!(o.force && !o.background);
        assert_eq!(o.conf, "/tmp/c");
        assert_eq!(o.logtarget.as_deref(), Some("STDOUT"));
        assert_eq!(rest, s(&["start"]));
    }

    #[test]
    fn rejects_unknown_flags() {
        assert!(parse(&s(&["-z"])).is_err());
        assert!(parse(&s(&["-s"])).is_err());
    }
}
