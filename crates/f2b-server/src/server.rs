//! The server state: jails, the log, the database settings; what the transmitter acts on.

use f2b_core::value::Value;
use indexmap::IndexMap;

use crate::args::{py_str, py_str_repr, CmdError, CmdResult};
use crate::jail::{JailSettings, ServerOp};
use crate::log::{Level, LogError, Logger};
use crate::runtime::{JailRuntime, RuntimeEnv};

/// A jail: its settings and, once started, its running parts.
pub struct Jail {
    /// Settings, as `get`/`set` see them.
    pub settings: JailSettings,
    /// The running parts (None until `start <jail>`).
    pub runtime: Option<JailRuntime>,
}

/// The server.
pub struct Server {
    log: std::sync::Arc<Logger>,
    /// Jails in the order they were added.
    pub jails: IndexMap<String, Jail>,
    /// `allowipv6`
    pub allow_ipv6: String,
    /// `thread` options (kept for `get thread`).
    pub thread_options: Value,
    /// `dbfile`; None = no database.
    pub dbfile: Option<String>,
    /// `dbmaxmatches`
    pub dbmaxmatches: i64,
    /// `dbpurgeage` in seconds.
    pub dbpurgeage: i64,
    /// Shared services of the running parts (store, action executor, clock).
    pub env: RuntimeEnv,
    reloading: Option<(String, Vec<String>, Vec<String>)>,
}

impl Server {
    /// A server logging to `log`.
    pub fn new(log: std::sync::Arc<Logger>, env: RuntimeEnv) -> Server {
        Server {
            log,
            jails: IndexMap::new(),
            allow_ipv6: "auto".into(),
            thread_options: Value::Dict(vec![(Value::str("stacksize"), Value::Int(0))]),
            dbfile: None,
            dbmaxmatches: 10,
            dbpurgeage: 86400,
            env,
            reloading: None,
        }
    }

    /// The server log.
    pub fn logger(&self) -> &Logger {
        &self.log
    }

    /// Logs at ERROR from `fail2ban.transmitter`.
    pub fn log_error(&self, msg: &str) {
        self.log.log("fail2ban.transmitter", Level::ERROR, msg);
    }

    /// Logs at MSG from `fail2ban.transmitter`.
    pub fn log_msg(&self, msg: &str) {
        self.log.log("fail2ban.transmitter", Level::MSG, msg);
    }

    /// `set logtarget`, logging the change as fail2ban does.
    pub fn set_log_target(&self, target: &str) -> Result<(), LogError> {
        let old = self.log.target_text();
        if old == target {
            return Ok(());
        }
        match self.log.set_target(target) {
            Ok(()) => {
                self.log.log(
                    "fail2ban.server",
                    Level::INFO,
                    &format!("Start Fail2ban v{}", crate::VERSION),
                );
                self.log.log(
                    "fail2ban.server",
                    Level::INFO,
                    &format!(
                        "Changed logging target to {target} for Fail2ban v{}",
                        crate::VERSION
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.log.log(
                    "fail2ban.server",
                    Level::ERROR,
                    &format!("Unable to log to {}", py_str_repr(target)),
                );
                self.log.log(
                    "fail2ban.server",
                    Level::INFO,
                    &format!("Logging to previous target {}", py_str_repr(&old)),
                );
                Err(e)
            }
        }
    }

    /// Whether a database is configured.
    pub fn has_db(&self) -> bool {
        self.dbfile.is_some()
    }

    /// `get dbfile`.
    pub fn dbfile_value(&self) -> Value {
        self.dbfile.clone().map(Value::Str).unwrap_or(Value::None)
    }

    /// `set dbfile <path|None>`: only before any jail exists, as fail2ban requires.
    pub fn set_dbfile(&mut self, path: &str) -> Result<(), CmdError> {
        if !self.jails.is_empty() {
            if self.dbfile.as_deref() == Some(path) {
                return Ok(());
            }
            return Err(CmdError::exception(
                "Cannot change database when there are jails present",
            ));
        }
        if path.eq_ignore_ascii_case("none") {
            self.dbfile = None;
            self.env.close_store();
            return Ok(());
        }
        self.env
            .open_store(path, &self.log)
            .map_err(|e| CmdError::exception(e.to_string()))?;
        self.dbfile = Some(path.to_owned());
        Ok(())
    }

    /// `set dbpurgeage <time>`.
    pub fn set_dbpurgeage(&mut self, v: &Value) -> Result<(), CmdError> {
        self.dbpurgeage = crate::jail::str2seconds(v)?;
        self.env.set_db_limits(self.dbmaxmatches, self.dbpurgeage);
        Ok(())
    }

    /// The jail's settings, or fail2ban's `UnknownJailException`.
    pub fn jail_mut(&mut self, name: &str) -> Result<&mut JailSettings, CmdError> {
        self.jails
            .get_mut(name)
            .map(|j| &mut j.settings)
            .ok_or_else(|| no_jail(name))
    }

    fn jail(&mut self, name: &str) -> Result<&mut Jail, CmdError> {
        self.jails.get_mut(name).ok_or_else(|| no_jail(name))
    }

    /// `add <jail> <backend>`.
    pub fn add_jail(&mut self, name: &str, backend: &str) -> Result<(), CmdError> {
        if let Some((target, _, seen)) = &mut self.reloading {
            if self.jails.contains_key(name) && (target == "--all" || target == name) {
                seen.push(name.to_owned());
                let j = &self.jails[name];
                if j.settings.backend == backend {
                    self.log.log(
                        "fail2ban.server",
                        Level::INFO,
                        &format!("Reload jail {}", py_str_repr(name)),
                    );
                    // Settings are re-applied by the stream; start fresh lists that the
                    // stream fills again.
                    let s = &mut self.jails[name].settings;
                    let keep = JailSettings::new(name, backend);
                    s.failregex.clear();
                    s.ignoreregex.clear();
                    s.ignoreip.clear();
                    s.logpaths.clear();
                    s.journalmatch.clear();
                    s.actions.clear();
                    s.banextra.clear();
                    s.prefregex = keep.prefregex;
                    s.datepattern = keep.datepattern;
                    return Ok(());
                }
                self.log.log(
                    "fail2ban.server",
                    Level::INFO,
                    &format!(
                        "Restart jail {} (reason: {} != {})",
                        py_str_repr(name),
                        py_str_repr(&j.settings.backend),
                        py_str_repr(backend)
                    ),
                );
                self.del_jail(name);
            }
        }
        if self.jails.contains_key(name) {
            return Err(CmdError {
                class: "DuplicateJailException",
                message: name.to_owned(),
            });
        }
        self.log.log(
            "fail2ban.jail",
            Level::INFO,
            &format!("Creating new jail {}", py_str_repr(name)),
        );
        let settings = JailSettings::new(name, backend);
        self.jails.insert(
            name.to_owned(),
            Jail {
                settings,
                runtime: None,
            },
        );
        self.env.jail_added(name);
        Ok(())
    }

    /// Whether a reload in progress covers this jail: its running runtime then keeps
    /// its settings until the reload ends (the stream rebuilds them step by step).
    fn reloading_jail(&self, name: &str) -> bool {
        self.reloading
            .as_ref()
            .is_some_and(|(target, _, _)| target == "--all" || target == name)
    }

    /// `start <jail>`.
    pub fn start_jail(&mut self, name: &str) -> Result<(), CmdError> {
        let log = self.log.clone();
        let env = self.env.clone();
        let dbmaxmatches = self.dbmaxmatches;
        let deferred = self.reloading_jail(name);
        let jail = self.jail(name)?;
        jail.settings.idle = false;
        if let Some(rt) = &mut jail.runtime {
            if !deferred {
                rt.apply_settings(&jail.settings, &log, false);
            }
            return Ok(());
        }
        let rt = match JailRuntime::start(&jail.settings, &env, &log, dbmaxmatches) {
            Ok(rt) => rt,
            Err(e) => {
                // A jail that cannot run is not listed as if it did.
                self.jails.shift_remove(name);
                log.log(
                    "fail2ban.jail",
                    Level::ERROR,
                    &format!("Jail {} skipped: {e}", py_str_repr(name)),
                );
                return Err(CmdError::exception(e.to_string()));
            }
        };
        let jail = self.jail(name)?;
        jail.runtime = Some(rt);
        log.log(
            "fail2ban.jail",
            Level::INFO,
            &format!("Jail {} started", py_str_repr(name)),
        );
        Ok(())
    }

    fn del_jail(&mut self, name: &str) {
        if let Some(mut j) = self.jails.shift_remove(name) {
            if let Some(rt) = j.runtime.take() {
                rt.stop(&self.log);
                self.log.log(
                    "fail2ban.jail",
                    Level::INFO,
                    &format!("Jail {} stopped", py_str_repr(name)),
                );
            }
        }
    }

    /// `stop <jail>`.
    pub fn stop_jail(&mut self, name: &str) -> Result<(), CmdError> {
        self.jail(name)?;
        self.del_jail(name);
        Ok(())
    }

    /// `stop --all` and server shutdown.
    pub fn stop_all_jails(&mut self) {
        self.log
            .log("fail2ban.server", Level::INFO, "Stopping all jails");
        let names: Vec<String> = self.jails.keys().cloned().collect();
        for n in names {
            self.del_jail(&n);
        }
    }

    /// Begins `reload [--all|<jail>]`.
    pub fn reload_begin(&mut self, target: &str, opts: &[String]) -> Result<(), CmdError> {
        if self.reloading.is_some() {
            return Err(CmdError::value("Reload already in progress"));
        }
        self.log.log(
            "fail2ban.server",
            Level::INFO,
            &if target == "--all" {
                "Reload all jails".to_owned()
            } else {
                format!("Reload jail {target}")
            },
        );
        if target != "--all"
            && !opts.iter().any(|o| o == "--if-exists")
            && !self.jails.contains_key(target)
        {
            return Err(no_jail(target));
        }
        // As fail2ban: first unban (the bans are not restored after a restart), then
        // stop the jails to restart.
        let exists = target == "--all" || self.jails.contains_key(target);
        if exists && opts.iter().any(|o| o == "--unban") {
            let _ = self.unban_all((target != "--all").then_some(target));
        }
        if exists && opts.iter().any(|o| o == "--restart") {
            let names: Vec<String> = if target == "--all" {
                self.jails.keys().cloned().collect()
            } else {
                vec![target.to_owned()]
            };
            for n in names {
                self.del_jail(&n);
            }
        }
        self.reloading = Some((target.to_owned(), opts.to_vec(), Vec::new()));
        Ok(())
    }

    /// Ends a reload: with `--all`, running jails that the new stream no longer has are
    /// stopped; reloaded jails pick up their new settings.
    pub fn reload_end(&mut self, target: &str, opts: &[String]) {
        let restarted = opts.iter().any(|o| o == "--restart");
        let Some((_, _, seen)) = self.reloading.take() else {
            return;
        };
        let names: Vec<String> = self.jails.keys().cloned().collect();
        for n in names {
            if target != "--all" && target != n {
                continue;
            }
            if !seen.contains(&n) {
                if target == "--all" && self.jails[&n].runtime.is_some() {
                    self.del_jail(&n);
                }
                continue;
            }
            let log = self.log.clone();
            if let Some(j) = self.jails.get_mut(&n) {
                if let Some(rt) = &mut j.runtime {
                    rt.apply_settings(&j.settings, &log, true);
                    if !restarted {
                        rt.reload_actions();
                    }
                    log.log(
                        "fail2ban.server",
                        Level::INFO,
                        &format!("Jail {} reloaded", py_str_repr(&n)),
                    );
                }
            }
        }
        // The reload read the configuration and compiled filters again: the memory that
        // took goes back as after the start.
        crate::memtrim::trim_memory();
    }

    /// `unban --all` (all jails) or `set <jail> unbanip` for every address.
    pub fn unban_all(&mut self, jail: Option<&str>) -> Result<i64, CmdError> {
        let names: Vec<String> = match jail {
            Some(j) => vec![j.to_owned()],
            None => self.jails.keys().cloned().collect(),
        };
        let mut n = 0;
        for name in names {
            let j = self.jail(&name)?;
            if let Some(rt) = &mut j.runtime {
                n += rt.unban_all();
            }
        }
        if jail.is_none() {
            self.env.clear_bans();
        }
        Ok(n)
    }

    /// `unban <ip>...` in all jails, or `set <jail> unbanip`.
    pub fn unban(
        &mut self,
        jail: Option<&str>,
        ids: &[String],
        if_exists: bool,
    ) -> Result<i64, CmdError> {
        let names: Vec<String> = match jail {
            Some(j) => vec![j.to_owned()],
            None => self.jails.keys().cloned().collect(),
        };
        let if_exists = if_exists || jail.is_none();
        let mut n = 0;
        let mut missed: Vec<String> = Vec::new();
        for name in &names {
            let env = self.env.clone();
            let j = self.jail(name)?;
            for id in ids {
                let removed = match &mut j.runtime {
                    Some(rt) => rt.unban(id),
                    None => false,
                };
                env.del_ban(name, id);
                if removed {
                    n += 1;
                } else if !if_exists {
                    missed.push(id.clone());
                }
            }
        }
        if !missed.is_empty() {
            return Err(CmdError::value(format!(
                "not banned: {}",
                Value::List(missed.into_iter().map(Value::Str).collect()).repr()
            )));
        }
        Ok(n)
    }

    /// `banned [<ip>...]` (all jails) or `get <jail> banned [<ip>...]`.
    pub fn banned(&mut self, jail: Option<&str>, ids: &[String]) -> CmdResult {
        if let Some(name) = jail {
            let j = self.jail(name)?;
            let list = j.runtime.as_ref().map(|r| r.ban_list()).unwrap_or_default();
            return Ok(banned_reply(&list, ids));
        }
        if !ids.is_empty() {
            let mut res = Vec::new();
            for id in ids {
                let mut jails = Vec::new();
                for (name, j) in &self.jails {
                    if j.runtime.as_ref().is_some_and(|r| r.is_banned(id)) {
                        jails.push(Value::Str(name.clone()));
                    }
                }
                res.push(Value::List(jails));
            }
            return Ok(Value::List(res));
        }
        Ok(Value::List(
            self.jails
                .iter()
                .map(|(name, j)| {
                    let list = j.runtime.as_ref().map(|r| r.ban_list()).unwrap_or_default();
                    Value::Dict(vec![(
                        Value::Str(name.clone()),
                        Value::List(list.into_iter().map(Value::Str).collect()),
                    )])
                })
                .collect(),
        ))
    }

    /// `get <jail> banip [--with-time]`: ordered by end of ban.
    pub fn ban_list(&mut self, name: &str, with_time: bool) -> CmdResult {
        let j = self.jail(name)?;
        let list = j
            .runtime
            .as_ref()
            .map(|r| r.ban_list_ordered(with_time))
            .unwrap_or_default();
        Ok(Value::List(list.into_iter().map(Value::Str).collect()))
    }

    /// `get <jail> failregex|prefregex`: the regexes with their tags expanded, as
    /// fail2ban reports them.
    pub fn expanded_regex(&mut self, name: &str, opt: &str) -> CmdResult {
        let j = self.jail(name)?;
        let f = f2b_filter::Filter::new(crate::runtime::filter_spec(&j.settings))
            .map_err(|e| CmdError::exception(e.to_string()))?;
        // fail2ban's text (f2b matches IPv6 with an equivalent linear-time form)
        Ok(if opt == "prefregex" {
            Value::Str(f.prefregex_expanded().unwrap_or_default())
        } else {
            Value::List(f.failregex_expanded().into_iter().map(Value::Str).collect())
        })
    }

    /// `status`.
    pub fn status(&self) -> Value {
        let mut names: Vec<&String> = self.jails.keys().collect();
        names.sort();
        let list = names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Value::List(vec![
            Value::Tuple(vec![
                Value::str("Number of jail"),
                Value::Int(self.jails.len() as i64),
            ]),
            Value::Tuple(vec![Value::str("Jail list"), Value::Str(list)]),
        ])
    }

    /// `status <jail> [flavor]`.
    pub fn status_jail(&mut self, name: &str, flavor: &str) -> CmdResult {
        let j = self.jail(name)?;
        let pair = |k: &str, v: Value| Value::Tuple(vec![Value::str(k), v]);
        let (cur_failed, tot_failed, cur_banned, tot_banned, banned) = match &j.runtime {
            Some(rt) => rt.counters(flavor != "short"),
            None => (0, 0, 0, 0, Vec::new()),
        };
        let mut filter = vec![
            pair("Currently failed", Value::Int(cur_failed)),
            pair("Total failed", Value::Int(tot_failed)),
        ];
        if j.settings.is_journal() || j.runtime.as_ref().is_some_and(|r| r.is_journal()) {
            let m: Vec<String> = j
                .settings
                .journalmatch
                .iter()
                .map(|g| g.join(" "))
                .collect();
            filter.push(pair(
                "Journal matches",
                Value::List(m.into_iter().map(Value::Str).collect()),
            ));
        } else {
            filter.push(pair(
                "File list",
                j.runtime
                    .as_ref()
                    .map(|r| Value::List(r.file_list().into_iter().map(Value::Str).collect()))
                    .unwrap_or(Value::List(Vec::new())),
            ));
        }
        let mut actions = vec![
            pair("Currently banned", Value::Int(cur_banned)),
            pair("Total banned", Value::Int(tot_banned)),
        ];
        if flavor != "short" {
            actions.push(pair(
                "Banned IP list",
                Value::List(banned.into_iter().map(Value::Str).collect()),
            ));
        }
        if flavor == "cymru" {
            for k in ["Banned ASN list", "Banned Country list", "Banned RIR list"] {
                actions.push(pair(k, Value::List(Vec::new())));
            }
        }
        Ok(Value::List(vec![
            pair("Filter", Value::List(filter)),
            pair("Actions", Value::List(actions)),
        ]))
    }

    /// Finishes a jail `set` that needs the running parts or the database.
    pub fn jail_server_op(&mut self, name: &str, op: ServerOp) -> CmdResult {
        match op {
            ServerOp::BanIp(ids) => {
                let j = self.jail(name)?;
                match &mut j.runtime {
                    Some(rt) => Ok(Value::Int(rt.ban_manual(&ids))),
                    None => Err(CmdError::exception(format!(
                        "Jail {} is not started",
                        py_str_repr(name)
                    ))),
                }
            }
            ServerOp::UnbanIp { ids, if_exists } => {
                Ok(Value::Int(self.unban(Some(name), &ids, if_exists)?))
            }
            ServerOp::Attempt(ip, failures) => {
                let j = self.jail(name)?;
                match &mut j.runtime {
                    Some(rt) => Ok(Value::Int(rt.attempt(&ip, &failures))),
                    None => Err(CmdError::exception(format!(
                        "Jail {} is not started",
                        py_str_repr(name)
                    ))),
                }
            }
            ServerOp::Changed(what) => {
                let log = self.log.clone();
                let deferred = self.reloading_jail(name);
                let j = self.jail(name)?;
                if let Some(rt) = j.runtime.as_mut().filter(|_| !deferred) {
                    rt.apply_settings(&j.settings, &log, false);
                }
                let opt = match &what {
                    Value::List(v) => v.first().map(py_str).unwrap_or_default(),
                    v => py_str(v),
                };
                Ok(match opt.as_str() {
                    "addaction" => match &what {
                        Value::List(v) => v.get(1).cloned().unwrap_or(Value::None),
                        _ => Value::None,
                    },
                    "delaction" => Value::None,
                    "action" => match &what {
                        Value::List(v) => v.get(3).cloned().unwrap_or(Value::None),
                        _ => Value::None,
                    },
                    o => j.settings.reply_after_set(o),
                })
            }
        }
    }
}

fn banned_reply(list: &[String], ids: &[String]) -> Value {
    if ids.is_empty() {
        return Value::List(list.iter().cloned().map(Value::Str).collect());
    }
    let hit = |id: &String| Value::Int(list.contains(id) as i64);
    if ids.len() == 1 {
        return hit(&ids[0]);
    }
    Value::List(ids.iter().map(hit).collect())
}

fn no_jail(name: &str) -> CmdError {
    CmdError {
        class: "UnknownJailException",
        message: name.to_owned(),
    }
}
