//! The command dispatcher: every command the stock `fail2ban-client` sends, with the
//! replies fail2ban's server gives (`transmitter.py` semantics; written anew).
//!
//! The same entry point serves the control socket and the server's own start-up: the
//! configuration is turned into a command stream (`f2b-config`) and executed here, so a
//! Python client's `server-stream` and f2b's own start take one path.

use f2b_core::value::Value;

use crate::args::{arg, arg_str, as_bool, py_str, to_int, CmdError, CmdResult};
use crate::server::Server;

/// What the caller must do after a command (the socket loop acts on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum After {
    /// Nothing.
    #[default]
    Continue,
    /// `stop`: reply, then shut the server down.
    Shutdown,
}

/// Executes commands against a [`Server`].
pub struct Transmitter<'a> {
    server: &'a mut Server,
    quiet: u32,
    /// Set when a command asks for shutdown.
    pub after: After,
}

impl<'a> Transmitter<'a> {
    /// A transmitter over `server`.
    pub fn new(server: &'a mut Server) -> Self {
        Transmitter {
            server,
            quiet: 0,
            after: After::Continue,
        }
    }

    /// Answers `set` commands with None, as inside a configuration stream.
    pub fn set_quiet(&mut self) {
        self.quiet = 1;
    }

    /// Runs one command; errors become `(1, exception)` replies and are logged as fail2ban does.
    pub fn proceed(&mut self, cmd: &[Value]) -> CmdResult {
        let r = self.handle(cmd);
        if let Err(e) = &r {
            self.server.log_error(&format!(
                "Command {} has failed. Received {}",
                crate::args::py_repr(&Value::List(cmd.to_vec())),
                e
            ));
        }
        r
    }

    fn quiet_or(&self, v: impl FnOnce() -> CmdResult) -> CmdResult {
        if self.quiet > 0 {
            Ok(Value::None)
        } else {
            v()
        }
    }

    fn handle(&mut self, cmd: &[Value]) -> CmdResult {
        let name = arg_str(cmd, 0)?;
        match name.as_str() {
            "ping" => Ok(Value::str("pong")),
            "add" => {
                let jail = arg_str(cmd, 1)?;
                if jail == "--all" {
                    return Err(CmdError::exception(format!(
                        "Reserved name {}",
                        crate::args::py_str_repr(&jail)
                    )));
                }
                let backend = cmd.get(2).map(py_str).unwrap_or_else(|| "auto".into());
                self.server.add_jail(&jail, &backend)?;
                Ok(Value::Str(jail))
            }
            "multi-set" => self.set(&cmd[1..], true),
            "set" => self.set(&cmd[1..], false),
            "start" => {
                let jail = arg_str(cmd, 1)?;
                self.server.start_jail(&jail)?;
                Ok(Value::None)
            }
            "stop" => {
                match cmd.get(1).map(py_str).as_deref() {
                    None => {
                        self.after = After::Shutdown;
                    }
                    Some("--all") => self.server.stop_all_jails(),
                    Some(jail) => self.server.stop_jail(jail)?,
                }
                Ok(Value::None)
            }
            "reload" => {
                let target = arg_str(cmd, 1)?;
                let opts: Vec<String> = match arg(cmd, 2)? {
                    Value::List(v) | Value::Tuple(v) => v.iter().map(py_str).collect(),
                    other => vec![py_str(other)],
                };
                let stream = match cmd.get(3) {
                    Some(Value::List(v)) | Some(Value::Tuple(v)) => v.clone(),
                    _ => Vec::new(),
                };
                self.server.reload_begin(&target, &opts)?;
                self.quiet += 1;
                let mut res = Ok(());
                for c in &stream {
                    if let Value::List(c) | Value::Tuple(c) = c {
                        if let Err(e) = self.handle(c) {
                            res = Err(e);
                            break;
                        }
                    }
                }
                self.quiet -= 1;
                self.server.reload_end(&target, &opts);
                res?;
                Ok(Value::str("OK"))
            }
            "unban" if cmd.len() >= 2 => {
                let ids: Vec<String> = cmd[1..].iter().map(py_str).collect();
                if ids.len() == 1 && ids[0] == "--all" {
                    return Ok(Value::Int(self.server.unban_all(None)?));
                }
                Ok(Value::Int(self.server.unban(None, &ids, true)?))
            }
            "banned" => {
                let ids: Vec<String> = cmd[1..].iter().map(py_str).collect();
                self.server.banned(None, &ids)
            }
            "echo" => Ok(Value::List(cmd[1..].to_vec())),
            "server-status" => Ok(Value::str("Server ready")),
            "server-stream" => {
                let stream = match arg(cmd, 1)? {
                    Value::List(v) | Value::Tuple(v) => v.clone(),
                    _ => return Err(CmdError::exception("Invalid command")),
                };
                self.quiet += 1;
                let mut res = Ok(Value::None);
                for c in &stream {
                    if let Value::List(c) | Value::Tuple(c) = c {
                        if let Err(e) = self.handle(c) {
                            res = Err(e);
                            break;
                        }
                    }
                }
                self.quiet -= 1;
                res
            }
            "sleep" => {
                let secs = match arg(cmd, 1)? {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    other => py_str(other)
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| CmdError::value("could not convert string to float"))?,
                };
                if secs.is_finite() && secs > 0.0 {
                    std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(60.0)));
                }
                Ok(Value::None)
            }
            "flushlogs" => Ok(Value::str(self.server.logger().flush())),
            "get" => self.get(&cmd[1..]),
            "status" => self.status(&cmd[1..]),
            "version" => Ok(Value::str(crate::VERSION)),
            "config-error" => {
                let msg = arg_str(cmd, 1)?;
                self.server.log_error(&msg);
                Ok(Value::None)
            }
            _ => Err(CmdError::exception("Invalid command")),
        }
    }

    fn status(&mut self, cmd: &[Value]) -> CmdResult {
        match cmd.len() {
            0 => Ok(self.server.status()),
            1 => self.server.status_jail(&arg_str(cmd, 0)?, "basic"),
            2 => self
                .server
                .status_jail(&arg_str(cmd, 0)?, &arg_str(cmd, 1)?),
            _ => Err(CmdError::exception("Invalid command (no status)")),
        }
    }

    fn set(&mut self, cmd: &[Value], multiple: bool) -> CmdResult {
        let name = arg_str(cmd, 0)?;
        let srv = &mut *self.server;
        match name.as_str() {
            "loglevel" => {
                let v = arg_str(cmd, 1)?;
                srv.logger()
                    .set_level(&v)
                    .map_err(|e| CmdError::value(e.to_string()))?;
                let lvl = srv.logger().level_text();
                return self.quiet_or(|| Ok(Value::Str(lvl)));
            }
            "logtarget" => {
                let v = arg_str(cmd, 1)?;
                srv.set_log_target(&v)
                    .map_err(|_| CmdError::exception("Failed to change log target"))?;
                let t = srv.logger().target_text();
                return self.quiet_or(|| Ok(Value::Str(t)));
            }
            "syslogsocket" => {
                let v = arg_str(cmd, 1)?;
                srv.logger()
                    .set_syslog_socket(&v)
                    .map_err(|_| CmdError::exception("Failed to change syslog socket"))?;
                let s = srv.logger().syslog_socket();
                return self.quiet_or(|| Ok(Value::Str(s)));
            }
            "allowipv6" => {
                let v = arg(cmd, 1)?.clone();
                srv.allow_ipv6 = py_str(&v);
                return self.quiet_or(|| Ok(v));
            }
            "thread" => {
                // Threads are not Python threads here; the stack size is accepted and kept.
                srv.thread_options = arg(cmd, 1)?.clone();
                return Ok(Value::None);
            }
            "dbfile" => {
                let v = arg_str(cmd, 1)?;
                srv.set_dbfile(&v)?;
                let r = srv.dbfile_value();
                return if r == Value::None {
                    Ok(Value::None)
                } else {
                    self.quiet_or(|| Ok(r))
                };
            }
            "dbmaxmatches" => {
                if !srv.has_db() {
                    srv.log_msg("dbmaxmatches setting was not in effect since no db yet");
                    return Ok(Value::None);
                }
                let v = to_int(arg(cmd, 1)?)?;
                srv.dbmaxmatches = v;
                srv.env.set_db_limits(srv.dbmaxmatches, srv.dbpurgeage);
                return self.quiet_or(|| Ok(Value::Int(v)));
            }
            "dbpurgeage" => {
                if !srv.has_db() {
                    srv.log_msg("dbpurgeage setting was not in effect since no db yet");
                    return Ok(Value::None);
                }
                let v = arg(cmd, 1)?.clone();
                srv.set_dbpurgeage(&v)?;
                let r = Value::Int(srv.dbpurgeage);
                return self.quiet_or(|| Ok(r));
            }
            _ => {}
        }
        // Jail commands: set <jail> <option> ...
        let opt = arg_str(cmd, 1)?;
        let quiet = self.quiet > 0;
        let jail = srv.jail_mut(&name)?;
        let reply = jail.set_checked(&opt, &cmd[2..], multiple, !quiet)?;
        match reply {
            crate::jail::SetReply::Always(v) => Ok(v),
            crate::jail::SetReply::Quiet(v) => Ok(if quiet { Value::None } else { v }),
            crate::jail::SetReply::Server(op) => {
                let v = srv.jail_server_op(&name, op)?;
                Ok(v)
            }
        }
    }

    fn get(&mut self, cmd: &[Value]) -> CmdResult {
        let name = arg_str(cmd, 0)?;
        let srv = &mut *self.server;
        match name.as_str() {
            "loglevel" => return Ok(Value::Str(srv.logger().level_text())),
            "logtarget" => return Ok(Value::Str(srv.logger().target_text())),
            "syslogsocket" => return Ok(Value::Str(srv.logger().syslog_socket())),
            "thread" => return Ok(srv.thread_options.clone()),
            "dbfile" => return Ok(srv.dbfile_value()),
            "dbmaxmatches" => {
                return Ok(if srv.has_db() {
                    Value::Int(srv.dbmaxmatches)
                } else {
                    Value::None
                })
            }
            "dbpurgeage" => {
                return Ok(if srv.has_db() {
                    Value::Int(srv.dbpurgeage)
                } else {
                    Value::None
                })
            }
            _ => {}
        }
        let opt = arg_str(cmd, 1)?;
        if opt == "banned" {
            let ids: Vec<String> = cmd[2..].iter().map(py_str).collect();
            return srv.banned(Some(&name), &ids);
        }
        if opt == "failregex" || opt == "prefregex" {
            return srv.expanded_regex(&name, &opt);
        }
        if opt == "banip" {
            let with_time = cmd.get(2).map(py_str).as_deref() == Some("--with-time");
            return srv.ban_list(&name, with_time);
        }
        let jail = srv.jail_mut(&name)?;
        jail.get(&opt, &cmd[2..])
    }
}

/// `as_bool` re-exported for jail options.
pub fn bool_arg(v: &Value) -> bool {
    as_bool(v)
}
