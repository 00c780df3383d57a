//! The actions of one jail, driven the way fail2ban's `Actions` thread
//! drives them (start all, ban/reban/prolong/unban per ticket, flush or
//! per-ticket unban on stop, stop in reverse order).
//!
//! Bookkeeping of *which* tickets are banned (the ban list, bantime
//! expiry, "already banned") belongs to the engine/server; this type only
//! runs the actions for the tickets it is given.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::action::{ActionEnv, CommandAction, LogLevel};
use crate::error::ActionError;
use crate::info::BanTicket;

/// Failure of one action for one operation.
#[derive(Debug)]
pub struct ActionFailure {
    /// Name of the action.
    pub action: String,
    /// What went wrong.
    pub error: ActionError,
}

/// The ordered actions of a jail.
#[derive(Debug)]
pub struct JailActions {
    jail: String,
    env: Arc<ActionEnv>,
    actions: Vec<CommandAction>,
}

impl JailActions {
    /// No actions yet.
    pub fn new(jail: impl Into<String>, env: Arc<ActionEnv>) -> Self {
        JailActions {
            jail: jail.into(),
            env,
            actions: Vec::new(),
        }
    }

    /// Jail name.
    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// The shared environment.
    pub fn env(&self) -> &Arc<ActionEnv> {
        &self.env
    }

    /// `addaction <name>` followed by its `multi-set` properties.
    pub fn add<K, V>(
        &mut self,
        name: &str,
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ActionError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        if self.get(name).is_some() {
            return Err(ActionError::Duplicate {
                action: name.to_owned(),
            });
        }
        let a = CommandAction::new(self.jail.clone(), name, props, self.env.clone())?;
        self.actions.push(a);
        Ok(())
    }

    /// Removes an action (`delaction`) without running anything.
    pub fn remove(&mut self, name: &str) -> Option<CommandAction> {
        let i = self.actions.iter().position(|a| a.name() == name)?;
        Some(self.actions.remove(i))
    }

    /// Retires an action that a reload dropped (fail2ban's `Actions.reload(begin=False)`):
    /// the current bans are flushed (or unbanned one by one) with that action alone,
    /// then it is stopped and removed. `false` if there is no such action.
    pub async fn retire(&mut self, name: &str, remaining: &[BanTicket]) -> bool {
        let Some(a) = self.remove(name) else {
            return false;
        };
        let mut alone = JailActions {
            jail: self.jail.clone(),
            env: self.env.clone(),
            actions: vec![a],
        };
        alone.stop(remaining).await;
        true
    }

    /// Runs `actionreload` of the named actions (those a reload kept), in order.
    pub async fn reload_some(&mut self, names: &[String]) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if !names.iter().any(|n| n == self.actions[i].name()) {
                continue;
            }
            if let Err(e) = self.actions[i].reload().await {
                fails.push(self.failed(i, "reload", None, e));
            }
        }
        fails
    }

    /// An action by name.
    pub fn get(&self, name: &str) -> Option<&CommandAction> {
        self.actions.iter().find(|a| a.name() == name)
    }

    /// An action by name, mutable (`set <jail> action <act> <prop> <v>`).
    pub fn get_mut(&mut self, name: &str) -> Result<&mut CommandAction, ActionError> {
        let jail = self.jail.clone();
        self.actions
            .iter_mut()
            .find(|a| a.name() == name)
            .ok_or_else(|| ActionError::NoAction {
                jail,
                action: name.to_owned(),
            })
    }

    /// Action names in order (`get <jail> actions`).
    pub fn names(&self) -> Vec<String> {
        self.actions.iter().map(|a| a.name().to_owned()).collect()
    }

    /// The jail's ban epoch: tickets banned in an older epoch need a reban
    /// by the actions whose epoch is newer (after a repair).
    pub fn ban_epoch(&self) -> u64 {
        self.env.jail_epoch.load(Ordering::SeqCst)
    }

    fn log(&self, level: LogLevel, msg: &str) {
        (self.env.log)(level, "fail2ban.actions", msg);
    }

    /// Logs an action's failure as fail2ban words it (`Failed to execute ban jail 'j'
    /// action 'a' info '1.2.3.4': ...`, `Failed to start jail 'j' action 'a': ...`).
    fn failed(&self, i: usize, op: &str, info: Option<&str>, error: ActionError) -> ActionFailure {
        let action = self.actions[i].name().to_owned();
        let info = info.map(|id| format!(" info '{id}'")).unwrap_or_default();
        self.log(
            LogLevel::Error,
            &format!(
                "Failed to {op} jail '{}' action '{action}'{info}: {error}",
                self.jail
            ),
        );
        ActionFailure { action, error }
    }

    /// Starts every action (`actionstart` unless on demand). Failures are
    /// logged and returned; the jail runs on.
    pub async fn start(&mut self) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if let Err(e) = self.actions[i].start().await {
                fails.push(self.failed(i, "start", None, e));
            }
        }
        fails
    }

    /// Runs `actionban` of every action for a new ban, skipping actions with
    /// `norestored` for restored tickets.
    pub async fn ban(&mut self, ticket: &BanTicket) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if ticket.restored && self.actions[i].norestored() {
                continue;
            }
            if let Err(e) = self.actions[i].ban(ticket).await {
                fails.push(self.failed(i, "execute ban", Some(&ticket.id), e));
            }
        }
        fails
    }

    /// Bans many new tickets at once (a ban storm): per action, the
    /// commands of the tickets run concurrently, at most `parallel` at a
    /// time (see [`CommandAction::ban_many`]); actions are taken one after
    /// another. Returns the failures as (ticket index, failure).
    pub async fn ban_many(
        &mut self,
        tickets: &[BanTicket],
        parallel: usize,
    ) -> Vec<(usize, ActionFailure)> {
        let mut fails = Vec::new();
        for a in 0..self.actions.len() {
            let skip = self.actions[a].norestored() && tickets.iter().any(|t| t.restored);
            // Copies only when `norestored` leaves tickets out.
            let (idx, subset): (Vec<usize>, Vec<BanTicket>) = if skip {
                (0..tickets.len())
                    .filter(|&i| !tickets[i].restored)
                    .map(|i| (i, tickets[i].clone()))
                    .unzip()
            } else {
                (Vec::new(), Vec::new())
            };
            let list: &[BanTicket] = if skip { &subset } else { tickets };
            let res = self.actions[a].ban_many(list, parallel).await;
            for (k, r) in res.into_iter().enumerate() {
                if let Err(e) = r {
                    let i = if skip { idx[k] } else { k };
                    fails.push((i, self.failed(a, "execute ban", Some(&list[k].id), e)));
                }
            }
        }
        fails
    }

    /// Re-bans a ticket: with `only_newer`, only actions whose ban epoch is
    /// newer than the ticket's (fail2ban after a repair). Stops at the first
    /// failure, as fail2ban does; returns whether all succeeded.
    pub async fn reban(&mut self, ticket: &BanTicket, only_newer: bool) -> bool {
        for i in 0..self.actions.len() {
            if only_newer && self.actions[i].ban_epoch() <= ticket.ban_epoch {
                continue;
            }
            if let Err(e) = self.actions[i].reban(ticket).await {
                self.failed(i, "execute reban", Some(&ticket.id), e);
                return false;
            }
        }
        true
    }

    /// Runs `actionprolong` of the actions that have one (bantime increased
    /// for a ticket that is still banned).
    pub async fn prolong(&mut self, ticket: &BanTicket) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if ticket.restored && self.actions[i].norestored() {
                continue;
            }
            if !self.actions[i].prolongable() {
                continue;
            }
            if let Err(e) = self.actions[i].prolong(ticket).await {
                fails.push(self.failed(i, "execute ban", Some(&ticket.id), e));
            }
        }
        fails
    }

    /// Runs `actionunban` of every action (only in families holding bans).
    pub async fn unban(&mut self, ticket: &BanTicket) -> Vec<ActionFailure> {
        self.unban_with(ticket, None).await
    }

    async fn unban_with(
        &mut self,
        ticket: &BanTicket,
        only: Option<&[usize]>,
    ) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if only.is_some_and(|o| !o.contains(&i)) {
                continue;
            }
            if let Err(e) = self.actions[i].unban(ticket).await {
                fails.push(self.failed(i, "execute unban", Some(&ticket.id), e));
            }
        }
        fails
    }

    /// fail2ban's `__flushBan`: actions with `actionflush` flush at once;
    /// the others unban each of `tickets` (the whole ban list, already
    /// removed from the ban manager by the caller). If a flush fails, a
    /// consistency check runs instead (without repair when `stop` and no
    /// `actionrepair_on_unban`). Returns the number of tickets processed.
    pub async fn flush(&mut self, tickets: &[BanTicket], stop: bool) -> usize {
        let mut per_ticket = Vec::new();
        for i in 0..self.actions.len() {
            if self.actions[i].has_flush() {
                let name = self.actions[i].name().to_owned();
                self.log(
                    LogLevel::Notice,
                    &format!("[{}] Flush ticket(s) with {}", self.jail, name),
                );
                match self.actions[i].flush().await {
                    Ok(_) => continue,
                    Err(e) => {
                        self.log(
                            LogLevel::Error,
                            &format!(
                                "Failed to flush bans in jail '{}' action '{}': {}",
                                self.jail, name, e
                            ),
                        );
                        self.log(LogLevel::Info, "No flush occurred, do consistency check");
                        let repair_on_unban = self.actions[i]
                            .property("actionrepair_on_unban")
                            .is_some_and(crate::action::parse_bool);
                        let log = self.env.log.clone();
                        let br = move || {
                            if stop && !repair_on_unban {
                                log(
                                    LogLevel::Error,
                                    "fail2ban.actions",
                                    "Invariant check failed. Flush is impossible.",
                                );
                                false
                            } else {
                                true
                            }
                        };
                        let _ = self.actions[i].consistency_check(Some(&br)).await;
                        continue;
                    }
                }
            }
            per_ticket.push(i);
        }
        if !per_ticket.is_empty() {
            for t in tickets {
                self.unban_with(t, Some(&per_ticket)).await;
            }
        }
        tickets.len()
    }

    /// Stops the jail's actions: [`Self::flush`] of the remaining bans, then
    /// `actionstop` of every action in reverse order. Actions stay
    /// registered (a later [`Self::start`] starts them again).
    pub async fn stop(&mut self, remaining: &[BanTicket]) -> Vec<ActionFailure> {
        self.flush(remaining, true).await;
        let mut fails = Vec::new();
        for i in (0..self.actions.len()).rev() {
            if let Err(e) = self.actions[i].stop().await {
                fails.push(self.failed(i, "stop", None, e));
            }
        }
        fails
    }

    /// Runs the invariant check (with repair) of every action that has an
    /// `actioncheck` (fail2ban does this when an address shows up "already
    /// banned" long after its ban).
    pub async fn consistency_check(&mut self) {
        for i in 0..self.actions.len() {
            if let Err(e) = self.actions[i].consistency_check(None).await {
                let name = self.actions[i].name().to_owned();
                self.log(
                    LogLevel::Error,
                    &format!(
                        "Consistency check of jail '{}' action '{}' failed: {}",
                        self.jail, name, e
                    ),
                );
            }
        }
    }

    /// Runs `actionreload` of every action.
    pub async fn reload(&mut self) -> Vec<ActionFailure> {
        let mut fails = Vec::new();
        for i in 0..self.actions.len() {
            if let Err(e) = self.actions[i].reload().await {
                fails.push(ActionFailure {
                    action: self.actions[i].name().to_owned(),
                    error: e,
                });
            }
        }
        fails
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The server spawns these futures on a multi-threaded runtime.
    #[test]
    fn futures_are_send() {
        let mut ja = JailActions::new("j", Arc::new(ActionEnv::default()));
        let t = BanTicket::new("192.0.2.1", 0.0);
        let ts = [t.clone()];
        assert_send(&ja);
        assert_send(&ja.start());
        assert_send(&ja.ban(&t));
        assert_send(&ja.ban_many(&ts, 4));
        assert_send(&ja.reban(&t, true));
        assert_send(&ja.prolong(&t));
        assert_send(&ja.unban(&t));
        assert_send(&ja.flush(&ts, true));
        assert_send(&ja.stop(&ts));
        assert_send(&ja.consistency_check());
        assert_send(&ja.reload());
    }
}
