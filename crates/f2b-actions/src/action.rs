//! `CommandAction`: one action.d action of one jail, with fail2ban's state
//! machine (started families, start on demand, check + repair, flush).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ActionError;
use crate::exec::Executor;
use crate::info::{reverse_lookup, BanTicket, JailInfo, StaticJailInfo, TagContext};
use crate::tags::{
    replace_dynamic_tags, replace_tag, substitute_properties, BuiltinTags, RenderedCommand,
    ESCAPED_TAGS,
};

/// Severity of a message an action wants logged (fail2ban's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// NOTICE
    Notice,
    /// WARNING
    Warning,
    /// ERROR
    Error,
    /// CRITICAL
    Critical,
}

/// Receives log messages (`logger` is the fail2ban logger name, e.g.
/// `fail2ban.utils`, `fail2ban.CommandAction`, `fail2ban.actions`).
pub type LogSink = Arc<dyn Fn(LogLevel, &'static str, &str) + Send + Sync>;

/// Wall clock in seconds since the epoch (injectable for tests).
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// What all actions of a jail share: how to run commands, jail numbers for
/// `<jail.*>`, host names, the clock, the logger and the jail's ban epoch.
#[derive(Clone)]
pub struct ActionEnv {
    /// Runs the commands.
    pub executor: Executor,
    /// `<jail.*>` values and default `<bantime>`.
    pub jail_info: Arc<dyn JailInfo>,
    /// `<br>`, `<sp>`, `<fq-hostname>`, `<sh-hostname>`.
    pub builtins: BuiltinTags,
    /// Whether family-conditional actions start for `inet6` too
    /// (fail2ban's `allowipv6`).
    pub ipv6_allowed: bool,
    /// Clock for `<time>` in start/stop/flush operations.
    pub clock: Clock,
    /// Log sink.
    pub log: LogSink,
    /// The jail's ban epoch (shared by its actions).
    pub jail_epoch: Arc<AtomicU64>,
    /// Resolve `<ip-host>` by reverse DNS (else it renders `None`).
    pub resolve_ip_host: bool,
}

impl std::fmt::Debug for ActionEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionEnv")
            .field("executor", &self.executor)
            .field("builtins", &self.builtins)
            .field("ipv6_allowed", &self.ipv6_allowed)
            .finish_non_exhaustive()
    }
}

impl Default for ActionEnv {
    fn default() -> Self {
        ActionEnv {
            executor: Executor::new(),
            jail_info: Arc::new(StaticJailInfo {
                bantime: 600,
                ..Default::default()
            }),
            builtins: crate::info::host_names(),
            ipv6_allowed: std::path::Path::new("/proc/net/if_inet6").exists(),
            clock: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            }),
            log: Arc::new(|_, _, _| {}),
            jail_epoch: Arc::new(AtomicU64::new(0)),
            resolve_ip_host: true,
        }
    }
}

/// The command properties fail2ban's `CommandAction` always has.
const DEFAULT_PROPS: [&str; 9] = [
    "actionban",
    "actioncheck",
    "actionflush",
    "actionreban",
    "actionreload",
    "actionrepair",
    "actionstart",
    "actionstop",
    "actionunban",
];

/// A family as fail2ban keys its state: `Some("inet4")`, `Some("inet6")`,
/// `Some("")` (family-less actions) or `None` (tickets that are not
/// addresses; also "every family" as an argument of start/stop).
type Fam = Option<String>;

fn ticket_fam(t: &BanTicket) -> Fam {
    t.family().map(|f| f.as_str().to_owned())
}

/// Started-state bits per family (fail2ban's `__started`).
const STARTED: u8 = 1;
const HAS_ITEMS: u8 = 2;

/// Python truthiness of a boolean option as the config delivers it
/// (`True`/`False` from the reader, or text from `set`).
pub fn parse_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// fail2ban's `MyTime.str2seconds` as used for `timeout` (`60`, `1m`,
/// `1h 30m`, `2*60`): seconds, and the text Python's `str()` gives the
/// resulting number (`60`, `1.5`). `None` if it is not a finite,
/// non-negative number.
pub fn parse_seconds(v: &str) -> Option<(f64, String)> {
    use f2b_core::duration::{str2sec_num, Num};
    let n = str2sec_num(v).ok()?;
    let secs = match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
        Num::EmptyTuple => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| (secs, n.to_string()))
}

/// One shell action of one jail (fail2ban's `CommandAction`).
///
/// All methods that run commands are `async` and take `&mut self`: the
/// commands of one action run one after another, while other actions and
/// other jails proceed independently.
pub struct CommandAction {
    jail: String,
    name: String,
    props: BTreeMap<String, String>,
    timeout: Duration,
    started: Vec<(Fam, u8)>,
    executed: BTreeMap<String, Vec<(Fam, String)>>,
    subst_cache: HashMap<String, Arc<BTreeMap<String, String>>>,
    op_cache: HashMap<(String, String), String>,
    ban_epoch: u64,
    env: Arc<ActionEnv>,
    cmd_seq: u64,
}

impl std::fmt::Debug for CommandAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandAction")
            .field("jail", &self.jail)
            .field("name", &self.name)
            .field("props", &self.props)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl CommandAction {
    /// Creates the action `name` of `jail` from `(key, value)` properties as
    /// in `['multi-set', jail, 'action', name, [[k, v], ...]]`. Booleans are
    /// passed as text (`True`/`False`, as Python's `str()` prints them).
    pub fn new<K, V>(
        jail: impl Into<String>,
        name: impl Into<String>,
        props: impl IntoIterator<Item = (K, V)>,
        env: Arc<ActionEnv>,
    ) -> Result<Self, ActionError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut a = CommandAction {
            jail: jail.into(),
            name: name.into(),
            props: DEFAULT_PROPS
                .iter()
                .map(|k| (k.to_string(), String::new()))
                .chain(std::iter::once(("timeout".to_owned(), "60".to_owned())))
                .collect(),
            timeout: Duration::from_secs(60),
            started: Vec::new(),
            executed: BTreeMap::new(),
            subst_cache: HashMap::new(),
            op_cache: HashMap::new(),
            ban_epoch: 0,
            env,
            cmd_seq: 0,
        };
        for (k, v) in props {
            a.set_property(k.into(), v.into())?;
        }
        Ok(a)
    }

    /// Action name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Jail name.
    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// Sets a property (`set <jail> action <act> <prop> <value>`).
    /// `timeout` is parsed as a time expression; `bantime` is ignored, as in
    /// fail2ban.
    pub fn set_property(&mut self, key: String, value: String) -> Result<(), ActionError> {
        let value = match key.as_str() {
            "bantime" => return Ok(()),
            "timeout" => {
                let (secs, text) =
                    parse_seconds(&value).ok_or_else(|| ActionError::InvalidProperty {
                        property: key.clone(),
                        value: value.clone(),
                    })?;
                self.timeout = Duration::from_secs_f64(secs);
                text
            }
            _ => value,
        };
        self.props.insert(key, value);
        self.subst_cache.clear();
        self.op_cache.clear();
        Ok(())
    }

    /// Removes a property.
    pub fn unset_property(&mut self, key: &str) -> Option<String> {
        self.subst_cache.clear();
        self.op_cache.clear();
        self.props.remove(key)
    }

    /// A property's value as stored (`get <jail> action <act> <prop>`).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Property names in `dir()` order (`get <jail> actionproperties <act>`).
    pub fn property_names(&self) -> Vec<String> {
        self.props.keys().cloned().collect()
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `norestored`: skip tickets restored from the database.
    pub fn norestored(&self) -> bool {
        self.props.get("norestored").is_some_and(|v| parse_bool(v))
    }

    /// Has a non-blank `actionprolong`.
    pub fn prolongable(&self) -> bool {
        self.props
            .get("actionprolong")
            .is_some_and(|v| !v.trim().is_empty())
    }

    /// Has a non-empty `actionflush`.
    pub fn has_flush(&self) -> bool {
        self.truthy("actionflush")
    }

    /// This action's ban epoch (raised by a failed invariant check).
    pub fn ban_epoch(&self) -> u64 {
        self.ban_epoch
    }

    /// Families started so far and their state bits (1 started, 2 holds bans).
    /// `None` is the family of tickets whose id is not an address.
    pub fn started_families(&self) -> Vec<(Option<String>, u8)> {
        self.started.clone()
    }

    fn truthy(&self, key: &str) -> bool {
        self.props.get(key).is_some_and(|v| !v.is_empty())
    }

    fn has_cond_section(&self) -> bool {
        self.props.keys().any(|k| match k.split_once('?') {
            Some((name, rest)) => {
                !name.is_empty()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && rest.starts_with("family=")
            }
            None => false,
        })
    }

    fn families(&self) -> Vec<Fam> {
        if let Some(f) = self.props.get("families").filter(|v| !v.is_empty()) {
            return f
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(|s| Some(s.to_owned()))
                .collect();
        }
        if self.has_cond_section() {
            if self.env.ipv6_allowed {
                vec![Some("inet4".into()), Some("inet6".into())]
            } else {
                vec![Some("inet4".into())]
            }
        } else {
            vec![Some(String::new())]
        }
    }

    /// Whether `actionstart` waits for the first ban of a family: the
    /// `actionstart_on_demand` option, else true for family-conditional
    /// actions.
    pub fn start_on_demand(&self) -> bool {
        match self.props.get("actionstart_on_demand") {
            Some(v) => parse_bool(v),
            None => self.has_cond_section(),
        }
    }

    fn started_get(&self, fam: &Fam) -> Option<u8> {
        self.started.iter().find(|(f, _)| f == fam).map(|(_, v)| *v)
    }

    fn started_set(&mut self, fam: &Fam, v: u8) {
        match self.started.iter_mut().find(|(f, _)| f == fam) {
            Some(slot) => slot.1 = v,
            None => self.started.push((fam.clone(), v)),
        }
    }

    fn cond(family: &str) -> String {
        if family.is_empty() {
            String::new()
        } else {
            format!("family={family}")
        }
    }

    fn subst(&mut self, cond: &str) -> Result<Arc<BTreeMap<String, String>>, ActionError> {
        if let Some(s) = self.subst_cache.get(cond) {
            return Ok(s.clone());
        }
        let s = Arc::new(substitute_properties(&self.props, cond, &ESCAPED_TAGS)?);
        self.subst_cache.insert(cond.to_owned(), s.clone());
        Ok(s)
    }

    /// The property-substituted command of `tag` (e.g. `<actionban>`) for
    /// `family` (`inet4`, `inet6` or empty), before ticket tags.
    pub fn render_static(&mut self, tag: &str, family: &str) -> Result<String, ActionError> {
        let cond = Self::cond(family);
        let key = (tag.to_owned(), cond.clone());
        if let Some(c) = self.op_cache.get(&key) {
            return Ok(c.clone());
        }
        let subst = self.subst(&cond)?;
        let cmd = replace_tag(tag, &subst, &cond, &self.env.builtins)?;
        self.op_cache.insert(key, cmd.clone());
        Ok(cmd)
    }

    /// fail2ban's `_getOperation`: static substitution, then `<family>`.
    fn get_operation(&mut self, tag: &str, family: &Fam) -> Result<String, ActionError> {
        let Some(family) = family.as_deref().filter(|f| !f.is_empty()) else {
            return self.render_static(tag, "");
        };
        let cmd = self.render_static(tag, family)?;
        if !cmd.contains('<') {
            return Ok(cmd);
        }
        let r = replace_dynamic_tags(
            &cmd,
            |t| (t == "family").then(|| family.to_owned()),
            None,
            &self.env.builtins,
        );
        Ok(r.script)
    }

    /// Renders a ticket command exactly as it would run: `tag` is
    /// `<actionban>`, `<actionunban>`, ...; `ip_host` is the `<ip-host>` value.
    pub fn render_ticket_command(
        &mut self,
        tag: &str,
        ticket: &BanTicket,
        ip_host: Option<&str>,
    ) -> Result<RenderedCommand, ActionError> {
        let family = ticket.family().map_or("", |f| f.as_str());
        let cmd = self.render_static(tag, family)?;
        let ctx = TagContext {
            ticket,
            jail: self.env.jail_info.as_ref(),
            family: None,
            time: None,
            ip_host,
        };
        Ok(replace_dynamic_tags(
            &cmd,
            |t| ctx.get(t),
            Some(&ticket.data),
            &self.env.builtins,
        ))
    }

    /// Renders an operation (`<actionstart>`, `<actionstop>`, `<actionflush>`,
    /// `<actionreload>`) for `family` as it would run at `now`: ticket tags
    /// come from an empty ticket, as in fail2ban.
    pub fn render_operation(
        &mut self,
        tag: &str,
        family: &str,
        now: f64,
    ) -> Result<RenderedCommand, ActionError> {
        let fam = Some(family.to_owned());
        let cmd = self.get_operation(tag, &fam)?;
        Ok(self.dynamic_for_operation(&cmd, &fam, now))
    }

    fn dynamic_for_operation(&self, cmd: &str, family: &Fam, now: f64) -> RenderedCommand {
        let empty = BanTicket::new("", now);
        let ctx = TagContext {
            ticket: &empty,
            jail: self.env.jail_info.as_ref(),
            family: Some(family.as_deref().unwrap_or("None")),
            time: Some(now),
            ip_host: None,
        };
        replace_dynamic_tags(cmd, |t| ctx.get(t), None, &self.env.builtins)
    }

    fn log(&self, level: LogLevel, logger: &'static str, msg: &str) {
        (self.env.log)(level, logger, msg);
    }

    async fn run(&mut self, cmd: &RenderedCommand) -> bool {
        if cmd.is_empty() {
            // A dry-run executor records it, as fail2ban's executeCmd sees it.
            let _ = self
                .env
                .executor
                .run(cmd, self.timeout, &self.jail, &self.name)
                .await;
            self.log(LogLevel::Debug, "fail2ban.CommandAction", "Nothing to do");
            return true;
        }
        let res = self
            .env
            .executor
            .run(cmd, self.timeout, &self.jail, &self.name)
            .await;
        self.log_outcome(cmd, res)
    }

    /// Logs like fail2ban's `Utils.executeCmd` and tells success.
    fn log_outcome(
        &mut self,
        cmd: &RenderedCommand,
        res: Result<crate::exec::ExecOutcome, ActionError>,
    ) -> bool {
        self.cmd_seq += 1;
        let id = ((self as *const Self as usize as u64) << 16) ^ self.cmd_seq;
        let shown = if cmd.args.is_empty() {
            cmd.script.clone()
        } else {
            // Python logs the argv list with its repr.
            let items: Vec<String> = std::iter::once(&cmd.script)
                .chain(&cmd.args)
                .map(|a| crate::info::py_str_repr(a))
                .collect();
            format!("[{}]", items.join(", "))
        };
        match res {
            Err(e) => {
                self.log(
                    LogLevel::Error,
                    "fail2ban.utils",
                    &format!("{id:x} -- exec: {shown}"),
                );
                self.log(
                    LogLevel::Error,
                    "fail2ban.utils",
                    &format!("{shown} -- failed with {e}"),
                );
                false
            }
            Ok(o) if o.success() => {
                self.log(
                    LogLevel::Debug,
                    "fail2ban.utils",
                    &format!("{id:x} -- exec: {shown}"),
                );
                self.log(
                    LogLevel::Debug,
                    "fail2ban.utils",
                    &format!("{id:x} -- returned successfully 0"),
                );
                true
            }
            Ok(o) => {
                self.log(
                    LogLevel::Error,
                    "fail2ban.utils",
                    &format!("{id:x} -- exec: {shown}"),
                );
                if o.timed_out {
                    self.log(
                        LogLevel::Error,
                        "fail2ban.utils",
                        &format!(
                            "{id:x} -- timed out after {} seconds.",
                            self.props.get("timeout").map_or("60", String::as_str)
                        ),
                    );
                }
                for (name, data) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                    for l in String::from_utf8_lossy(data).lines() {
                        self.log(
                            LogLevel::Error,
                            "fail2ban.utils",
                            &format!("{id:x} -- {name}: {}", crate::info::py_str_repr(l)),
                        );
                    }
                }
                match (o.code, o.signal) {
                    (_, Some(sig)) => self.log(
                        LogLevel::Error,
                        "fail2ban.utils",
                        &format!(
                            "{id:x} -- killed with {} (return code: {})",
                            signame(sig),
                            -sig
                        ),
                    ),
                    (Some(c), None) if c > 128 => self.log(
                        LogLevel::Error,
                        "fail2ban.utils",
                        &format!(
                            "{id:x} -- killed with {} (return code: {c})",
                            signame(c - 128)
                        ),
                    ),
                    (Some(c), None) => {
                        self.log(
                            LogLevel::Error,
                            "fail2ban.utils",
                            &format!("{id:x} -- returned {c}"),
                        );
                        if c == 127 {
                            self.log(
                                LogLevel::Info,
                                "fail2ban.utils",
                                &format!(
                                    "HINT on 127: \"Command not found\".  Make sure that all commands in {} are in the PATH of fail2ban-server process",
                                    crate::info::py_str_repr(&cmd.script)
                                ),
                            );
                        }
                    }
                    (None, None) => {}
                }
                false
            }
        }
    }

    fn executed_by_others(&self, tag: &str, fam: &Fam) -> Vec<String> {
        self.executed
            .get(tag)
            .map(|v| {
                v.iter()
                    .filter(|(f, _)| f != fam)
                    .map(|(_, c)| c.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn executed_set(&mut self, tag: &str, fam: &Fam, cmd: Option<String>) {
        match cmd.filter(|c| !c.is_empty()) {
            Some(cmd) => {
                let v = self.executed.entry(tag.to_owned()).or_default();
                match v.iter_mut().find(|(f, _)| f == fam) {
                    Some(slot) => slot.1 = cmd,
                    None => v.push((fam.clone(), cmd)),
                }
            }
            None => {
                if let Some(v) = self.executed.get_mut(tag) {
                    if let Some(i) = v.iter().position(|(f, _)| f == fam) {
                        let (_, cmd) = v.remove(i);
                        v.retain(|(_, c)| *c != cmd);
                    }
                }
            }
        }
    }

    async fn execute_operation(
        &mut self,
        tag: &str,
        operation: &'static str,
        families: Option<Vec<Fam>>,
        after: After,
    ) -> Result<bool, ActionError> {
        let mut res = true;
        let mut err = "Script error".to_owned();
        let families = families.unwrap_or_else(|| {
            self.started
                .iter()
                .filter(|(_, v)| *v != 0)
                .map(|(f, _)| f.clone())
                .collect()
        });
        for fam in families {
            let cmd = match self.get_operation(tag, &fam) {
                Ok(c) => c,
                Err(e) => {
                    res = false;
                    err = e.to_string();
                    continue;
                }
            };
            let mut ret = true;
            if !cmd.is_empty() && !self.executed_by_others(tag, &fam).contains(&cmd) {
                let now = (self.env.clock)();
                let real = self.dynamic_for_operation(&cmd, &fam, now);
                ret = self.run(&real).await;
                res &= ret;
            }
            match after {
                After::Nothing => {}
                After::Start => {
                    if ret {
                        self.executed_set("<actionstop>", &fam, None);
                        self.started_set(&fam, STARTED);
                    }
                }
                After::Stop => {
                    if ret {
                        self.executed_set("<actionstart>", &fam, None);
                    }
                }
                After::Flush => {
                    if ret {
                        if let Some(v) = self.started_get(&fam).filter(|v| *v != 0) {
                            self.started_set(&fam, v & !HAS_ITEMS);
                        }
                    }
                }
            }
            self.executed_set(tag, &fam, ret.then_some(cmd));
        }
        if !res {
            return Err(ActionError::Operation {
                operation,
                jail: self.jail.clone(),
                action: self.name.clone(),
                reason: err,
            });
        }
        Ok(true)
    }

    /// Runs `actionstart` for every family, unless the action starts on
    /// demand (then the first ban of a family starts it).
    pub async fn start(&mut self) -> Result<bool, ActionError> {
        self.start_family(None, false).await
    }

    /// fail2ban's `_start(family, forceStart)`; `None` means every family.
    async fn start_family(&mut self, family: Fam, force: bool) -> Result<bool, ActionError> {
        if self.start_on_demand() {
            if !force {
                return Ok(true);
            }
        } else if !force && self.started_get(&family).is_some_and(|v| v != 0) {
            return Ok(true);
        }
        let fams = match family {
            Some(f) => vec![Some(f)],
            None => self.families(),
        };
        self.execute_operation("<actionstart>", "starting", Some(fams), After::Start)
            .await
    }

    /// Bans a ticket (`actionban`), starting the family first if on demand.
    pub async fn ban(&mut self, ticket: &BanTicket) -> Result<(), ActionError> {
        self.ban_with(ticket, "<actionban>").await
    }

    /// Re-bans a ticket: `actionreban` if set, else `actionban`.
    pub async fn reban(&mut self, ticket: &BanTicket) -> Result<(), ActionError> {
        let tag = if self.truthy("actionreban") {
            "<actionreban>"
        } else {
            "<actionban>"
        };
        self.ban_with(ticket, tag).await
    }

    async fn ban_with(&mut self, ticket: &BanTicket, tag: &str) -> Result<(), ActionError> {
        let family = ticket_fam(ticket);
        if self.start_on_demand() && self.started_get(&family).unwrap_or(0) == 0 {
            self.start_family(family.clone(), true).await?;
        }
        if !self.process_cmd(tag, ticket).await? {
            return Err(ActionError::Ticket {
                what: "banning",
                ip: ticket.id.clone(),
            });
        }
        let v = self.started_get(&family).unwrap_or(0);
        self.started_set(&family, v | STARTED | HAS_ITEMS);
        Ok(())
    }

    /// Bans many tickets at once: families are started (on demand) first,
    /// then the `actionban` commands run concurrently, at most `parallel` at
    /// a time. A ticket whose command fails continues on fail2ban's serial
    /// path (invariant check, repair, one more attempt). Results are in the
    /// order of `tickets`.
    pub async fn ban_many(
        &mut self,
        tickets: &[BanTicket],
        parallel: usize,
    ) -> Vec<Result<(), ActionError>> {
        let mut results: Vec<Option<Result<(), ActionError>>> =
            (0..tickets.len()).map(|_| None).collect();
        // 1. Start families on demand, serially.
        if self.start_on_demand() {
            let mut fams: Vec<Fam> = Vec::new();
            for t in tickets {
                let f = ticket_fam(t);
                if !fams.contains(&f) {
                    fams.push(f);
                }
            }
            for f in fams {
                if self.started_get(&f).unwrap_or(0) == 0 {
                    if let Err(e) = self.start_family(f.clone(), true).await {
                        // Like fail2ban: every ticket of the family fails.
                        let msg = e.to_string();
                        for (i, t) in tickets.iter().enumerate() {
                            if ticket_fam(t) == f {
                                results[i] = Some(Err(ActionError::Operation {
                                    operation: "starting",
                                    jail: self.jail.clone(),
                                    action: self.name.clone(),
                                    reason: msg.clone(),
                                }));
                            }
                        }
                    }
                }
            }
        }
        // 2. Render.
        let mut jobs: Vec<(usize, RenderedCommand)> = Vec::new();
        for (i, t) in tickets.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let family = t.family().map_or("", |f| f.as_str());
            let rendered = match self.render_static("<actionban>", family) {
                // Nothing to run stays nothing once the ticket's tags are in.
                Ok(cmd) if cmd.is_empty() => Ok(RenderedCommand::plain(cmd)),
                Ok(cmd) => {
                    let host = if cmd.contains("<ip-host>") {
                        self.resolve_ip_host(t).await
                    } else {
                        None
                    };
                    self.render_ticket_command("<actionban>", t, host.as_deref())
                }
                Err(e) => Err(e),
            };
            match rendered {
                Ok(r) => jobs.push((i, r)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // 3. Run concurrently: a window of at most `parallel` tasks (a storm of 1,400
        // bans holds 8 tasks, not 1,400 waiting ones).
        let parallel = parallel.max(1);
        let mut set = tokio::task::JoinSet::new();
        let mut done = Vec::new();
        for (i, cmd) in jobs {
            if cmd.is_empty() {
                // Nothing to run: no task, no process (a dry-run executor records it).
                let res = self
                    .env
                    .executor
                    .run(&cmd, self.timeout, &self.jail, &self.name)
                    .await;
                done.push((i, cmd, res));
                continue;
            }
            while set.len() >= parallel {
                if let Some(Ok(x)) = set.join_next().await {
                    done.push(x);
                }
            }
            let ex = self.env.executor.clone();
            let (timeout, jail, name) = (self.timeout, self.jail.clone(), self.name.clone());
            set.spawn(async move {
                let res = ex.run(&cmd, timeout, &jail, &name).await;
                (i, cmd, res)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(x) = r {
                done.push(x);
            }
        }
        done.sort_by_key(|(i, _, _)| *i);
        // 4. Book-keep; failures take the serial repair path.
        for (i, cmd, res) in done {
            let t = &tickets[i];
            let ok = if cmd.is_empty() {
                // As the serial path (`run`): fail2ban's "Nothing to do".
                self.log(LogLevel::Debug, "fail2ban.CommandAction", "Nothing to do");
                true
            } else {
                self.log_outcome(&cmd, res)
            } || self
                .process_cmd_from("<actionban>", t, 1)
                .await
                .unwrap_or(false);
            results[i] = Some(if ok {
                let f = ticket_fam(t);
                let v = self.started_get(&f).unwrap_or(0);
                self.started_set(&f, v | STARTED | HAS_ITEMS);
                Ok(())
            } else {
                Err(ActionError::Ticket {
                    what: "banning",
                    ip: t.id.clone(),
                })
            });
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    Err(ActionError::Ticket {
                        what: "banning",
                        ip: tickets[i].id.clone(),
                    })
                })
            })
            .collect()
    }

    /// Prolongs a ban (`actionprolong`); callers check [`Self::prolongable`].
    pub async fn prolong(&mut self, ticket: &BanTicket) -> Result<(), ActionError> {
        if !self.process_cmd("<actionprolong>", ticket).await? {
            return Err(ActionError::Ticket {
                what: "prolonging",
                ip: ticket.id.clone(),
            });
        }
        Ok(())
    }

    /// Unbans a ticket (`actionunban`), only if its family holds bans.
    pub async fn unban(&mut self, ticket: &BanTicket) -> Result<(), ActionError> {
        let family = ticket_fam(ticket);
        if self.started_get(&family).unwrap_or(0) & HAS_ITEMS != 0
            && !self.process_cmd("<actionunban>", ticket).await?
        {
            return Err(ActionError::Ticket {
                what: "unbanning",
                ip: ticket.id.clone(),
            });
        }
        Ok(())
    }

    /// Runs `actionflush` for every family holding bans.
    pub async fn flush(&mut self) -> Result<bool, ActionError> {
        let fams: Vec<Fam> = self
            .started
            .iter()
            .filter(|(_, v)| v & (STARTED | HAS_ITEMS) == STARTED | HAS_ITEMS)
            .map(|(f, _)| f.clone())
            .collect();
        if fams.is_empty() {
            return Ok(true);
        }
        self.execute_operation("<actionflush>", "flushing", Some(fams), After::Flush)
            .await
    }

    /// Runs `actionstop` for every started family.
    pub async fn stop(&mut self) -> Result<bool, ActionError> {
        self.stop_family(None).await
    }

    /// fail2ban's `_stop(family)`; `None` means every started family.
    async fn stop_family(&mut self, family: Fam) -> Result<bool, ActionError> {
        let fams = match family {
            None => {
                let f: Vec<Fam> = self
                    .started
                    .iter()
                    .filter(|(_, v)| *v != 0)
                    .map(|(f, _)| f.clone())
                    .collect();
                if f.is_empty() {
                    return Ok(true);
                }
                self.started.clear();
                f
            }
            Some(f) => {
                let f = Some(f);
                if self.started_get(&f).is_none() {
                    return Ok(true);
                }
                self.started_set(&f, 0);
                vec![f]
            }
        };
        self.execute_operation("<actionstop>", "stopping", Some(fams), After::Stop)
            .await
    }

    /// Runs `actionreload` for every started family.
    pub async fn reload(&mut self) -> Result<bool, ActionError> {
        self.execute_operation("<actionreload>", "reloading", None, After::Nothing)
            .await
    }

    /// fail2ban's `consistencyCheck`: runs the invariant check (with repair)
    /// for every started family. `before_repair` returning false skips the
    /// repair. Returns false if some family could not be restored.
    pub async fn consistency_check(
        &mut self,
        before_repair: Option<&(dyn Fn() -> bool + Send + Sync)>,
    ) -> Result<bool, ActionError> {
        let mut ret = true;
        if self.truthy("actioncheck") {
            for (fam, st) in self.started.clone() {
                if st != 0 && self.invariant_check(&fam, before_repair, true).await? == 0 {
                    self.started_set(&fam, 0);
                    self.executed_set("<actionstart>", &fam, None);
                    ret = false;
                }
            }
        }
        Ok(ret)
    }

    fn invalidate_ban_epoch(&mut self) {
        self.ban_epoch = self.env.jail_epoch.fetch_add(1, Ordering::SeqCst) + 1;
    }

    /// fail2ban's `_invariantCheck`: 1 sane (or restored), 0 broken, -1 not
    /// repaired because `before_repair` said no.
    async fn invariant_check(
        &mut self,
        family: &Fam,
        before_repair: Option<&(dyn Fn() -> bool + Send + Sync)>,
        force_start: bool,
    ) -> Result<i8, ActionError> {
        if !force_start && family.is_some() && self.started_get(family).is_none() {
            return Ok(1);
        }
        let check = self.get_operation("<actioncheck>", family)?;
        if check.is_empty() || self.run(&RenderedCommand::plain(check.clone())).await {
            return Ok(1);
        }
        if let Some(br) = before_repair {
            if !br() {
                return Ok(-1);
            }
        }
        self.log(
            LogLevel::Error,
            "fail2ban.CommandAction",
            "Invariant check failed. Trying to restore a sane environment",
        );
        self.invalidate_ban_epoch();
        let repair = self.get_operation("<actionrepair>", family)?;
        if !repair.is_empty() {
            if !self.run(&RenderedCommand::plain(repair)).await {
                self.started_set(family, 0);
                self.log(
                    LogLevel::Critical,
                    "fail2ban.CommandAction",
                    "Unable to restore environment",
                );
                return Ok(0);
            }
            self.started_set(family, STARTED);
        } else {
            let _ = self.stop_family(family.clone()).await;
            let force = force_start || !self.start_on_demand();
            self.start_family(family.clone(), force).await?;
        }
        if self.started_get(family).unwrap_or(0) != 0
            && !self.run(&RenderedCommand::plain(check)).await
        {
            self.log(
                LogLevel::Critical,
                "fail2ban.CommandAction",
                "Unable to restore environment",
            );
            return Ok(0);
        }
        Ok(1)
    }

    /// fail2ban's `_processCmd`: run; on failure run the invariant check
    /// (and repair) if `actioncheck` is set, then try once more.
    async fn process_cmd(&mut self, tag: &str, ticket: &BanTicket) -> Result<bool, ActionError> {
        self.process_cmd_from(tag, ticket, 0).await
    }

    /// `process_cmd` entered after `repcnt` failed attempts.
    async fn process_cmd_from(
        &mut self,
        tag: &str,
        ticket: &BanTicket,
        mut repcnt: u32,
    ) -> Result<bool, ActionError> {
        let family = ticket_fam(ticket);
        loop {
            if repcnt > 0 && self.truthy("actioncheck") {
                let is_unban = tag == "<actionunban>";
                let repair_on_unban = self
                    .props
                    .get("actionrepair_on_unban")
                    .is_some_and(|v| parse_bool(v));
                let log = self.env.log.clone();
                let br = move || {
                    if is_unban && !repair_on_unban {
                        log(
                            LogLevel::Error,
                            "fail2ban.CommandAction",
                            "Invariant check failed. Unban is impossible.",
                        );
                        false
                    } else {
                        true
                    }
                };
                if self.invariant_check(&family, Some(&br), !is_unban).await? != 1 {
                    return Ok(false);
                }
            }
            let cmd = self.render_static(tag, family.as_deref().unwrap_or(""))?;
            let ip_host = if cmd.contains("<ip-host>") {
                self.resolve_ip_host(ticket).await
            } else {
                None
            };
            let rendered = self.render_ticket_command(tag, ticket, ip_host.as_deref())?;
            let ret = self.run(&rendered).await;
            repcnt += 1;
            if ret || repcnt > 1 {
                return Ok(ret);
            }
        }
    }

    async fn resolve_ip_host(&self, ticket: &BanTicket) -> Option<String> {
        if !self.env.resolve_ip_host {
            return None;
        }
        let addr: std::net::IpAddr = ticket.id.parse().ok()?;
        tokio::task::spawn_blocking(move || reverse_lookup(addr))
            .await
            .ok()
            .flatten()
    }
}

#[derive(Clone, Copy)]
enum After {
    Nothing,
    Start,
    Stop,
    Flush,
}

fn signame(sig: i32) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        s => format!("signal {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("60"), Some((60.0, "60".into())));
        assert_eq!(parse_seconds("1m"), Some((60.0, "60".into())));
        assert_eq!(parse_seconds("1h 30m"), Some((5400.0, "5400".into())));
        assert_eq!(parse_seconds("1.5"), Some((1.5, "1.5".into())));
        assert_eq!(parse_seconds("x"), None);
        assert_eq!(parse_seconds("-5"), None);
    }

    #[test]
    fn changed_properties_change_the_rendering() {
        let env = Arc::new(ActionEnv::default());
        let mut a = CommandAction::new(
            "j",
            "a",
            [("actionban", "<fw> -I <ip>"), ("fw", "iptables")],
            env,
        )
        .unwrap();
        let t = BanTicket::new("192.0.2.1", 0.0);
        assert_eq!(
            a.render_ticket_command("<actionban>", &t, None)
                .unwrap()
                .script,
            "iptables -I 192.0.2.1"
        );
        a.set_property("fw".into(), "nft".into()).unwrap();
        assert_eq!(
            a.render_ticket_command("<actionban>", &t, None)
                .unwrap()
                .script,
            "nft -I 192.0.2.1"
        );
        a.unset_property("fw");
        assert_eq!(
            a.render_ticket_command("<actionban>", &t, None)
                .unwrap()
                .script,
            "<fw> -I 192.0.2.1"
        );
    }

    #[test]
    fn timeout_and_bantime_properties() {
        let env = Arc::new(ActionEnv::default());
        let mut a =
            CommandAction::new("j", "a", [("timeout", "2m"), ("bantime", "5")], env).unwrap();
        assert_eq!(a.timeout(), Duration::from_secs(120));
        assert_eq!(a.property("timeout"), Some("120"));
        assert_eq!(a.property("bantime"), None);
        assert!(a.set_property("timeout".into(), "soon".into()).is_err());
        assert!(a.property_names().contains(&"actionflush".to_string()));
    }
}
