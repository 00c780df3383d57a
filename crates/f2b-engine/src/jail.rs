//! One jail's engine: the glue fail2ban spreads over its filter, actions
//! and observer threads, done synchronously and in the same order.

use f2b_core::addr::{Addr, AddrError};

use crate::banmanager::{AddBan, BanManager};
use crate::failmanager::FailManager;
use crate::ignore::{IgnoreEnv, IgnoreList, IgnoreResult, IgnoreSource};
use crate::increment::{BanTimeExtra, IncrementError, RandomSource, XorShift};
use crate::num::Num;
use crate::ticket::Ticket;

/// The database's record of an id's past bans (fail2ban `getBan` row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanRecord {
    /// How many times banned (summed over jails with `overalljails`).
    pub ban_count: u32,
    /// Time of the last ban.
    pub time_of_ban: f64,
    /// Ban time of the last ban (summed with `overalljails`).
    pub bantime: f64,
}

/// Ban history, implemented by the server over the store (fail2ban's
/// `Fail2BanDb.getBan(ip, jail, overalljails=...)`, first row).
pub trait BanHistory {
    /// The id's record in `jail`, or over all jails when `overalljails`.
    fn get_ban(&mut self, id: &Addr, jail: &str, overalljails: bool) -> Option<BanRecord>;
}

/// A failure found in a log line (one per id; a line can yield several).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The failure id (`<HOST>`, `<ADDR>`, `<F-ID>`, ...).
    pub id: Addr,
    /// The IP when different from the id (`<F-ID>` together with `<HOST>`).
    pub ip: Option<Addr>,
    /// Time of the log line.
    pub time: f64,
    /// Matched lines.
    pub matches: Vec<String>,
    /// Captured data (`F-*`, `user`, ...).
    pub data: Vec<(String, String)>,
}

/// Why a ban ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbanReason {
    /// Ban time elapsed.
    Expired,
    /// `unbanip` (or `unban`) for this id.
    Manual,
    /// Unban of everything (`unban --all`, jail stop): run `actionflush`
    /// where defined, `actionunban` for the other actions.
    Flush,
}

/// What happened; the server logs and acts on each, in order.  The log
/// line each corresponds to in fail2ban is given (`<jail>` prefix omitted).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// INFO `Ignore <id> by <source>`.
    Ignored {
        /// The id.
        id: Addr,
        /// Which rule.
        source: IgnoreSource,
    },
    /// INFO `Found <id> - <time2str(time)>`.
    Found {
        /// The id.
        id: Addr,
        /// Failure time (after clamping to now).
        time: f64,
    },
    /// INFO `Attempt <id> - <local time>` (the `attempt` command).
    Attempt {
        /// The id.
        id: Addr,
        /// Now.
        time: f64,
    },
    /// INFO `Found <id>, bad - <time2str(time)>, <bancount> # -> <retry><, Ban>`
    /// (ban-time increment weighting a known bad id).
    FoundBad {
        /// The id.
        id: Addr,
        /// Failure time.
        time: f64,
        /// Bans on record.
        bancount: u32,
        /// Retry weight (Python prints it as float unless capped by maxretry).
        retry: Num,
        /// Whether the weight reaches maxretry (`, Ban` suffix).
        ban: bool,
    },
    /// DEBUG `Ignore failure <id> before last ban <time> < <time_of_ban>, restored`.
    BeforeLastBan {
        /// The id.
        id: Addr,
        /// Failure time.
        time: f64,
        /// Last ban time on record.
        time_of_ban: f64,
    },
    /// NOTICE `Ban <id>` / `Restore Ban <id>`: run `actionban` of every
    /// action (skipping `norestored` ones when `restored`).  The ticket
    /// already carries the final (incremented) ban time.
    Ban {
        /// The ban ticket.
        ticket: Box<Ticket>,
        /// Restored from the database.
        restored: bool,
    },
    /// INFO `IP <id> is bad: <bancount> # last <time2str(last)> - incr <seconds2str(old)> to <seconds2str(new)>`.
    BadIp {
        /// The id.
        id: Addr,
        /// Bans on record.
        bancount: u32,
        /// Last ban time on record.
        last_ban: f64,
        /// Ban time before increment.
        old: Num,
        /// Ban time after increment.
        new: Num,
    },
    /// NOTICE `Increase Ban <id> (<bancount> # <seconds2str(bantime)> -> <time2str(end)>)`,
    /// `permanent -> infinite` when `end` is `None`.
    IncreaseBan {
        /// The id.
        id: Addr,
        /// The ticket's ban count.
        bancount: u32,
        /// New ban time.
        bantime: Num,
        /// New end of ban (None = permanent).
        end: Option<f64>,
    },
    /// Write the ban to the database (`addBan(jail, ticket)`).
    StoreBan {
        /// The ban ticket (final ban time and count).
        ticket: Box<Ticket>,
    },
    /// INFO `Ignore <id>, expired bantime`.
    ExpiredBan {
        /// The id.
        id: Addr,
    },
    /// `<id> already banned`: DEBUG if `since < 3`, NOTICE if `< 60`, else WARNING.
    AlreadyBanned {
        /// The id.
        id: Addr,
        /// Failure time minus ban time.
        since: f64,
    },
    /// NOTICE `Unban <id>`: run `actionunban` (see [`UnbanReason::Flush`]).
    Unban {
        /// The ticket of the ended ban.
        ticket: Box<Ticket>,
        /// Why.
        reason: UnbanReason,
    },
    /// MSG level `<id> is not banned` (unbanip).
    NotBanned {
        /// The id as given.
        id: String,
    },
    /// ERROR with a message (e.g. a formula failing at ban time).
    Error {
        /// Message.
        message: String,
    },
    /// WARNING with a message (e.g. an unreadable `file:` ignore list).
    Warning {
        /// Message.
        message: String,
    },
}

/// `unbanip` failure (fail2ban raises `ValueError("not banned: [...]")`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnbanError {
    /// Some given ids were not banned (others may have been unbanned).
    #[error("not banned: [{}]", .ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", "))]
    NotBanned {
        /// The ids not banned, as given.
        ids: Vec<String>,
    },
}

/// `status <jail>` numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct JailStatus {
    /// "Currently failed".
    pub currently_failed: usize,
    /// "Total failed".
    pub total_failed: u64,
    /// "Currently banned".
    pub currently_banned: usize,
    /// "Total banned".
    pub total_banned: u64,
    /// "Banned IP list" (ban order).
    pub banned: Vec<Addr>,
}

/// What to do with a log line's timestamp (fail2ban's `processLine` rules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineTime {
    /// Use this time.
    Use(f64),
    /// In operation and more than 60 s off: treat as now.  fail2ban warns
    /// (once a day) "Detected a log entry <seconds2str(|delta|)> before/after
    /// the current time in operation mode. This looks like a latency
    /// (-3300 <= delta < 0) / timezone problem. ...".
    Simulated {
        /// Now.
        now: f64,
        /// `int(date - now)`.
        delta: i64,
    },
    /// While reading old contents: older than findtime, skip the line.
    Obsolete,
}

/// fail2ban's timestamp policy for a parsed line time.
pub fn line_time(date: f64, now: f64, in_operation: bool, findtime: f64) -> LineTime {
    if in_operation {
        let delta = (date - now).trunc() as i64;
        if delta.abs() > 60 {
            return LineTime::Simulated { now, delta };
        }
        LineTime::Use(date)
    } else if date < now - findtime {
        LineTime::Obsolete
    } else {
        LineTime::Use(date)
    }
}

type Hist<'a> = Option<&'a mut dyn BanHistory>;

/// Seconds between failure-list cleanups (fail2ban's `performSvc`).
pub const SERVICE_INTERVAL: f64 = 5.0;

/// One jail's complete ban state.
pub struct JailEngine {
    name: String,
    fail: FailManager,
    bans: BanManager,
    ignore: IgnoreList,
    extra: BanTimeExtra,
    rng: Box<dyn RandomSource>,
    next_svc: f64,
    lines: u64,
}

impl std::fmt::Debug for JailEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JailEngine")
            .field("name", &self.name)
            .field("failed", &self.fail.size())
            .field("banned", &self.bans.size())
            .finish()
    }
}

impl JailEngine {
    /// A jail with fail2ban's built-in defaults (maxretry 3, findtime 600,
    /// bantime 600, maxmatches 5, ignoreself on); the config layer then sets
    /// the jail.conf values.  `rndtime` uses a fixed-seed generator unless
    /// [`JailEngine::set_random`] is called.
    pub fn new(name: impl Into<String>) -> JailEngine {
        JailEngine {
            name: name.into(),
            fail: FailManager::default(),
            bans: BanManager::default(),
            ignore: IgnoreList::default(),
            extra: BanTimeExtra::default(),
            rng: Box::new(XorShift::new(0x5EED)),
            next_svc: f64::NEG_INFINITY,
            lines: 0,
        }
    }

    /// The jail name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Replaces the random source (for `bantime.rndtime`).
    pub fn set_random(&mut self, rng: Box<dyn RandomSource>) {
        self.rng = rng;
    }
    /// `maxretry`.
    pub fn maxretry(&self) -> u32 {
        self.fail.maxretry()
    }
    /// Sets `maxretry`.
    pub fn set_maxretry(&mut self, v: u32) {
        self.fail.set_maxretry(v);
    }
    /// `findtime` (seconds).
    pub fn findtime(&self) -> f64 {
        self.fail.findtime()
    }
    /// Sets `findtime` (seconds).
    pub fn set_findtime(&mut self, v: f64) {
        self.fail.set_findtime(v);
    }
    /// `maxmatches`.
    pub fn maxmatches(&self) -> usize {
        self.fail.maxmatches()
    }
    /// Sets `maxmatches`.
    pub fn set_maxmatches(&mut self, v: usize) {
        self.fail.set_maxmatches(v);
    }
    /// `bantime` (seconds, -1 permanent).
    pub fn bantime(&self) -> Num {
        self.bans.bantime()
    }
    /// Sets `bantime` (fail2ban stores `int(value)`).
    pub fn set_bantime(&mut self, v: i64) {
        self.bans.set_bantime(Num::Int(v));
    }
    /// `set <jail> bantime.<opt> <value>` (see [`BanTimeExtra::set`]).
    pub fn set_bantime_extra(
        &mut self,
        opt: &str,
        value: &str,
        to_seconds: &dyn Fn(&str) -> Option<Num>,
    ) -> Result<(), IncrementError> {
        self.extra.set(opt, value, to_seconds)
    }
    /// The `bantime.*` settings.
    pub fn bantime_extra(&self) -> &BanTimeExtra {
        &self.extra
    }
    /// fail2ban's `getMaxBanTime`: `bantime.maxtime` (or -1) with
    /// increment, else `bantime` (used when restoring bans).
    pub fn max_ban_time(&self) -> Num {
        if self.extra.increment() {
            self.extra.maxtime().unwrap_or(Num::Int(-1))
        } else {
            self.bans.bantime()
        }
    }
    /// The ignore rules.
    pub fn ignore(&self) -> &IgnoreList {
        &self.ignore
    }
    /// The ignore rules, to change them.
    pub fn ignore_mut(&mut self) -> &mut IgnoreList {
        &mut self.ignore
    }
    /// The failure list.
    pub fn failures(&self) -> &FailManager {
        &self.fail
    }
    /// The failure list, to change counters.
    pub fn failures_mut(&mut self) -> &mut FailManager {
        &mut self.fail
    }
    /// The active bans.
    pub fn bans(&self) -> &BanManager {
        &self.bans
    }
    /// The active bans, to change counters.
    pub fn bans_mut(&mut self) -> &mut BanManager {
        &mut self.bans
    }

    fn warnings(&mut self, out: &mut Vec<Event>) {
        for message in self.ignore.take_warnings() {
            out.push(Event::Warning { message });
        }
    }

    /// Whether `id` is ignored now (no ticket: `ignorecache` keys see only `<ip>`).
    pub fn check_ignore(&mut self, id: &Addr, now: f64, env: &mut dyn IgnoreEnv) -> IgnoreResult {
        self.ignore.check(id, None, now, env)
    }

    /// A failure found in a log line (fail2ban's `processLineAndAdd` for one
    /// id, then the observer's `failureFound`).  `history` is `None` when
    /// the jail has no database (ban-time increment then does nothing).
    pub fn on_failure(
        &mut self,
        f: Failure,
        now: f64,
        env: &mut dyn IgnoreEnv,
        history: Option<&mut dyn BanHistory>,
        out: &mut Vec<Event>,
    ) {
        let mut history = history;
        let history = &mut history;
        let time = if f.time > now { now } else { f.time };
        let mut ticket = Ticket::new(f.id, time, f.matches);
        ticket.ip = f.ip.map(Box::new);
        ticket.data = f.data;
        let res = self.ignore.check(&ticket.id, Some(&ticket), now, env);
        self.warnings(out);
        match res {
            IgnoreResult::Ignored(source) => {
                out.push(Event::Ignored {
                    id: ticket.id,
                    source,
                });
                return;
            }
            IgnoreResult::IgnoredCached => return,
            IgnoreResult::NotIgnored => {}
        }
        let id = ticket.id.clone();
        out.push(Event::Found {
            id: id.clone(),
            time,
        });
        let observe = self.extra.increment() && history.is_some();
        let matches = if observe {
            ticket.matches.clone()
        } else {
            Vec::new()
        };
        let added = self.fail.add_failure(ticket, 1);
        if added.attempts >= self.fail.maxretry() {
            self.perform_ban(Some(&id), now, history, out);
        }
        if observe {
            self.failure_found(&id, time, matches, added.created, now, history, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn failure_found(
        &mut self,
        id: &Addr,
        time: f64,
        matches: Vec<String>,
        created: bool,
        now: f64,
        history: &mut Hist<'_>,
        out: &mut Vec<Event>,
    ) {
        let maxretry = self.fail.maxretry();
        let Some(rec) = history
            .as_mut()
            .and_then(|h| h.get_ban(id, &self.name, false))
        else {
            return;
        };
        let ban_count = rec.ban_count;
        // Python: (1 << min(count, 20)) / 2 + 1 (a float), then min(.., maxretry)
        let weight = (1u64 << ban_count.min(20)) as f64 / 2.0 + 1.0;
        let retry = if f64::from(maxretry) < weight {
            Num::Int(i64::from(maxretry))
        } else {
            Num::Float(weight)
        };
        if time <= rec.time_of_ban {
            out.push(Event::BeforeLastBan {
                id: id.clone(),
                time,
                time_of_ban: rec.time_of_ban,
            });
            return;
        }
        if retry.as_f64() <= 1.0 {
            return;
        }
        out.push(Event::FoundBad {
            id: id.clone(),
            time,
            bancount: ban_count,
            retry,
            ban: retry.as_f64() >= f64::from(maxretry),
        });
        let count = (retry.as_f64() - 1.0) as u32;
        let r = self.fail.add_observed(id, time, matches, created, count);
        let attempts = if r.added {
            r.attempts
        } else {
            u32::from(created)
        };
        if created {
            self.fail.raise_bancount(id, ban_count);
        }
        if attempts >= maxretry {
            self.perform_ban(Some(id), now, history, out);
        }
    }

    /// The `attempt <ip> [<match> ...]` command: counts `max(1, matches)`
    /// failures for `id` now, no ignore check (fail2ban's `addAttempt`).
    pub fn on_attempt(
        &mut self,
        id: Addr,
        matches: Vec<String>,
        now: f64,
        history: Option<&mut dyn BanHistory>,
        out: &mut Vec<Event>,
    ) {
        let count = (matches.len() as u32).max(1);
        out.push(Event::Attempt {
            id: id.clone(),
            time: now,
        });
        let t = Ticket::new(id.clone(), now, matches);
        let added = self.fail.add_failure(t, count);
        if added.attempts >= self.fail.maxretry() {
            let mut history = history;
            self.perform_ban(Some(&id), now, &mut history, out);
        }
    }

    /// Call after processing `n` log lines: every 100th line triggers the
    /// periodic failure-list cleanup (at most every 5 s), like fail2ban.
    pub fn lines_processed(&mut self, n: u64, now: f64) {
        let before = self.lines / 100;
        self.lines += n;
        if self.lines / 100 != before {
            self.service(now, false);
        }
    }

    /// fail2ban's `performSvc`: drop failures older than findtime (at most
    /// every [`SERVICE_INTERVAL`] unless `force`).
    pub fn service(&mut self, now: f64, force: bool) {
        if force || now >= self.next_svc {
            self.next_svc = now + SERVICE_INTERVAL;
            self.fail.cleanup(now);
        }
    }

    /// Gives back the spare room a burst left in the failure and ban tables
    /// (their contents are unchanged). For idle moments, e.g. after a burst.
    pub fn release_memory(&mut self) {
        self.fail.shrink();
        self.bans.shrink();
    }

    fn perform_ban(
        &mut self,
        id: Option<&Addr>,
        now: f64,
        history: &mut Hist<'_>,
        out: &mut Vec<Event>,
    ) {
        while let Some(t) = self.fail.to_ban(id) {
            self.check_ban(t, now, history, out);
            if id.is_some() {
                break;
            }
        }
        self.service(now, false);
    }

    fn check_ban(
        &mut self,
        mut ticket: Ticket,
        now: f64,
        history: &mut Hist<'_>,
        out: &mut Vec<Event>,
    ) {
        let btime = ticket.bantime_or(self.bans.bantime());
        let restored = ticket.restored;
        let id = ticket.id.clone();
        let time = ticket.time;
        // A restored ban gets no ban-time increment, so the actions' copy is taken now
        // from the ticket at hand, as `add` stores it (banned, counted once more): no
        // second look-up and no read back from the table (a million restored bans).
        let snap = restored.then(|| {
            ticket.banned = true;
            let mut s = ticket.clone();
            s.bancount = s.bancount.saturating_add(1);
            s
        });
        match self.bans.add(ticket, now) {
            AddBan::Added if snap.is_some() => {
                if let Some(t) = snap {
                    out.push(Event::Ban {
                        ticket: Box::new(t),
                        restored: true,
                    });
                }
            }
            AddBan::Added => {
                let mut after = Vec::new();
                if !restored {
                    self.ban_found(&id, btime, now, history, &mut after);
                }
                self.bans.update(&id, |t| t.banned = true);
                if let Some(t) = self.bans.get(&id) {
                    let mut snap = t.clone();
                    snap.restored = restored;
                    out.push(Event::Ban {
                        ticket: Box::new(snap),
                        restored,
                    });
                }
                out.extend(after);
            }
            AddBan::Expired => out.push(Event::ExpiredBan { id }),
            AddBan::AlreadyBanned { existing, .. } => {
                if existing.banned {
                    out.push(Event::AlreadyBanned {
                        id,
                        since: time - existing.time,
                    });
                } else {
                    self.bans.update(&id, |t| t.banned = true);
                    let restored = existing.restored;
                    out.push(Event::Ban {
                        ticket: existing,
                        restored,
                    });
                }
            }
        }
    }

    fn ban_found(
        &mut self,
        id: &Addr,
        btime: Num,
        now: f64,
        history: &mut Hist<'_>,
        out: &mut Vec<Event>,
    ) {
        let old = btime;
        let mut btime = btime;
        let explicit = self.bans.get(id).is_some_and(|t| t.bantime.is_some());
        if !btime.is_permanent() && !explicit {
            btime = self.incr_ban_time(id, btime, history, out);
            if btime.is_permanent() || btime.as_f64() > old.as_f64() {
                self.bans.update(id, |t| t.bantime = Some(btime));
            }
        }
        let Some(t) = self.bans.get(id) else { return };
        let end = (!btime.is_permanent()).then(|| t.time + btime.as_f64());
        if let Some(e) = end {
            if e < now {
                return;
            }
        }
        if btime.as_f64() != old.as_f64() {
            out.push(Event::IncreaseBan {
                id: id.clone(),
                bancount: t.bancount,
                bantime: btime,
                end,
            });
        }
        if history.is_some() && !t.restored {
            out.push(Event::StoreBan {
                ticket: Box::new(t.clone()),
            });
        }
    }

    fn incr_ban_time(
        &mut self,
        id: &Addr,
        bantime: Num,
        history: &mut Hist<'_>,
        out: &mut Vec<Event>,
    ) -> Num {
        let Some(h) = history.as_mut() else {
            return bantime;
        };
        if !(bantime.as_f64() > 0.0 && self.extra.increment()) {
            return bantime;
        }
        let Some(rec) = h.get_ban(id, &self.name, self.extra.overalljails()) else {
            return bantime;
        };
        self.bans.update(id, |t| {
            if rec.ban_count >= t.bancount {
                t.bancount = rec.ban_count + 1;
            }
        });
        let mut new = bantime;
        if rec.ban_count > 0 {
            match self
                .extra
                .calc(bantime, i64::from(rec.ban_count), self.rng.as_mut())
            {
                Ok(v) => new = v,
                Err(e) => {
                    out.push(Event::Error {
                        message: e.to_string(),
                    });
                    return bantime;
                }
            }
        }
        let newer = self.bans.update(id, |t| {
            t.bantime = Some(new);
            if t.time > rec.time_of_ban {
                true
            } else {
                t.restored = true;
                false
            }
        });
        if newer == Some(true) {
            out.push(Event::BadIp {
                id: id.clone(),
                bancount: rec.ban_count,
                last_ban: rec.time_of_ban,
                old: bantime,
                new,
            });
        }
        new
    }

    /// `banip <id> ...`: bans now, like a failure that reached maxretry
    /// (ban-time increment applies; no ignore check).  Returns the number of
    /// new bans.  A malformed id bans nothing.
    pub fn ban_ip(
        &mut self,
        ids: &[&str],
        now: f64,
        history: Option<&mut dyn BanHistory>,
        out: &mut Vec<Event>,
    ) -> Result<u32, AddrError> {
        let mut history = history;
        let parsed = ids
            .iter()
            .map(|s| Addr::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cnt = 0;
        for id in parsed {
            let before = self.bans.total();
            self.check_ban(Ticket::new(id, now, Vec::new()), now, &mut history, out);
            cnt += u32::from(self.bans.total() != before);
        }
        Ok(cnt)
    }

    /// `unbanip [--report-absent] <id> ...` (`ids = Some`) or unban all
    /// (`None`).  An id that is a subnet or a DNS name also unbans the
    /// banned ids inside it.  With `report_absent`, ids not banned make the
    /// call fail after the others were unbanned.  (The server also deletes
    /// each given id from the database, banned or not, as fail2ban does.)
    pub fn unban_ip(
        &mut self,
        ids: Option<&[&str]>,
        report_absent: bool,
        now: f64,
        env: &mut dyn IgnoreEnv,
        out: &mut Vec<Event>,
    ) -> Result<u32, UnbanError> {
        let Some(ids) = ids else {
            let all = self.bans.flush();
            let n = all.len() as u32;
            for t in all {
                out.push(Event::Unban {
                    ticket: Box::new(t),
                    reason: UnbanReason::Flush,
                });
            }
            return Ok(n);
        };
        let mut missed = Vec::new();
        let mut cnt = 0;
        for s in ids {
            match self.unban_one(s, now, env, out) {
                Some(n) => cnt += n,
                None => {
                    out.push(Event::NotBanned {
                        id: (*s).to_owned(),
                    });
                    if report_absent {
                        missed.push((*s).to_owned());
                    }
                }
            }
        }
        if missed.is_empty() {
            Ok(cnt)
        } else {
            Err(UnbanError::NotBanned { ids: missed })
        }
    }

    fn unban_one(
        &mut self,
        s: &str,
        now: f64,
        env: &mut dyn IgnoreEnv,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let a = Addr::parse(s).ok()?;
        if let Some(t) = self.bans.take(&a) {
            out.push(Event::Unban {
                ticket: Box::new(t),
                reason: UnbanReason::Manual,
            });
            return Some(1);
        }
        let inside: Vec<Addr> = match &a {
            Addr::Ip(_) => return None,
            Addr::Net(n) => self
                .bans
                .ids()
                .into_iter()
                .filter(|b| b.is_in_net(n))
                .collect(),
            Addr::Raw(name) => {
                let ips = self.ignore.resolve_cached(name, now, env);
                self.bans
                    .ids()
                    .into_iter()
                    .filter(|b| b.ip().is_some_and(|ip| ips.contains(&ip)))
                    .collect()
            }
        };
        if inside.is_empty() {
            return None;
        }
        let mut n = 0;
        for b in inside {
            if let Some(t) = self.bans.take(&b) {
                out.push(Event::Unban {
                    ticket: Box::new(t),
                    reason: UnbanReason::Manual,
                });
                n += 1;
            }
        }
        Some(n)
    }

    /// Lifts bans whose time is up (`now > end`); returns how many.
    pub fn unban_expired(&mut self, now: f64, out: &mut Vec<Event>) -> usize {
        let list = self.bans.unban_expired(now, usize::MAX);
        let n = list.len();
        for t in list {
            out.push(Event::Unban {
                ticket: Box::new(t),
                reason: UnbanReason::Expired,
            });
        }
        n
    }

    /// When the next ban ends (sleep until just after it, then call
    /// [`JailEngine::unban_expired`]); permanent bans report `MAX_TIME`;
    /// `None` if nothing is banned.
    pub fn next_unban_time(&mut self) -> Option<f64> {
        self.bans.next_unban_time()
    }

    /// Re-establishes a ban read from the database at start (fail2ban's
    /// `restoreCurrentBans` for one ticket): skipped if ignored or already
    /// over, else a `Ban` event with `restored = true` (no increment, no
    /// database write).
    pub fn restore_ban(
        &mut self,
        mut ticket: Ticket,
        now: f64,
        env: &mut dyn IgnoreEnv,
        out: &mut Vec<Event>,
    ) {
        let res = self.ignore.check(&ticket.id, None, now, env);
        self.warnings(out);
        match res {
            IgnoreResult::Ignored(source) => {
                out.push(Event::Ignored {
                    id: ticket.id,
                    source,
                });
                return;
            }
            IgnoreResult::IgnoredCached => return,
            IgnoreResult::NotIgnored => {}
        }
        ticket.restored = true;
        let btm = ticket.bantime_or(self.bans.bantime());
        if !btm.is_permanent() {
            let mut left = btm.as_f64();
            let dif = now - ticket.time;
            if dif > 0.0 {
                left -= dif;
            }
            if left <= 0.0 {
                return;
            }
        }
        self.check_ban(ticket, now, &mut None, out);
    }

    /// `get <jail> banip [--with-time]` ids, ordered by end of ban (ties in
    /// ban order).
    pub fn banned_ordered(&self) -> Vec<Addr> {
        self.bans
            .ordered()
            .into_iter()
            .map(|(t, _)| t.id.clone())
            .collect()
    }

    /// `get <jail> banip --with-time` lines: `"<id> \t<start> + <bantime> =
    /// <end>"`, `time2str` formatting local time (`%Y-%m-%d %H:%M:%S`);
    /// times past year 9999 print as `9999-12-31 23:59:59` like fail2ban.
    pub fn banned_with_time(&self, time2str: &dyn Fn(f64) -> String) -> Vec<String> {
        let fmt = |t: f64| {
            if t < 253_402_214_400.0 {
                time2str(t)
            } else {
                "9999-12-31 23:59:59".to_owned()
            }
        };
        self.bans
            .ordered()
            .into_iter()
            .map(|(t, end)| {
                format!(
                    "{} \t{} + {} = {}",
                    t.id,
                    fmt(t.time),
                    t.bantime_or(self.bans.bantime()).trunc(),
                    fmt(end)
                )
            })
            .collect()
    }

    /// `status <jail>` numbers.
    pub fn status(&self) -> JailStatus {
        JailStatus {
            currently_failed: self.fail.size(),
            total_failed: self.fail.total(),
            currently_banned: self.bans.size(),
            total_banned: self.bans.total(),
            banned: self.bans.ids(),
        }
    }
}

#[cfg(test)]
#[path = "jail_tests.rs"]
mod tests;
