//! Failure counting per id (fail2ban's `FailManager`).
//!
//! Semantics kept from fail2ban:
//! * a new id starts a ticket with `retry = count` (1 for a log line, the
//!   number of matches for `attempt`) and `failures = 1`;
//! * a further failure adds `count` to `retry` and 1 to `failures`, appends
//!   its matches and keeps only the last `maxmatches`;
//! * `findtime` is not a sliding window: when a failure arrives later than
//!   `findtime` after the ticket's first failure, `retry` is re-estimated
//!   from the rate over the known interval
//!   (`round(retry / (t - first) * findtime)`, half to even) and `first`
//!   moves to `t - findtime`;
//! * a ticket leaves the list when it reaches `maxretry` (it becomes the
//!   ban ticket), or on [`FailManager::cleanup`] once its *last* failure is
//!   `findtime` old.

use std::collections::HashMap;

use f2b_core::addr::Addr;

use crate::num::py_round;
use crate::ticket::Ticket;

/// Outcome of [`FailManager::add_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOutcome {
    /// The id's retry count after this failure (compare with `maxretry`).
    pub attempts: u32,
    /// True if this failure created the id's entry.
    pub created: bool,
    /// False if nothing was added (observer update for an id no longer listed).
    pub added: bool,
}

/// Failures per id.
#[derive(Debug, Clone)]
pub struct FailManager {
    list: HashMap<Addr, (u64, Ticket)>,
    seq: u64,
    maxretry: u32,
    maxtime: f64,
    maxmatches: usize,
    total: u64,
}

impl Default for FailManager {
    fn default() -> Self {
        FailManager {
            list: HashMap::new(),
            seq: 0,
            maxretry: 3,
            maxtime: 600.0,
            maxmatches: 5,
            total: 0,
        }
    }
}

impl FailManager {
    /// `maxretry`.
    pub fn maxretry(&self) -> u32 {
        self.maxretry
    }
    /// Sets `maxretry`.
    pub fn set_maxretry(&mut self, v: u32) {
        self.maxretry = v;
    }
    /// `findtime` in seconds.
    pub fn findtime(&self) -> f64 {
        self.maxtime
    }
    /// Sets `findtime` in seconds.
    pub fn set_findtime(&mut self, v: f64) {
        self.maxtime = v;
    }
    /// `maxmatches` (0 = keep no matches on merge).
    pub fn maxmatches(&self) -> usize {
        self.maxmatches
    }
    /// Sets `maxmatches`.
    pub fn set_maxmatches(&mut self, v: usize) {
        self.maxmatches = v;
    }
    /// "Total failed".
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Sets "Total failed".
    pub fn set_total(&mut self, v: u64) {
        self.total = v;
    }
    /// "Currently failed": ids with pending failures.
    pub fn size(&self) -> usize {
        self.list.len()
    }
    /// The pending ticket of `id`.
    pub fn get(&self, id: &Addr) -> Option<&Ticket> {
        self.list.get(id).map(|(_, t)| t)
    }
    /// (ids, sum of retries) — fail2ban's `getFailCount`.
    pub fn fail_count(&self) -> (usize, u64) {
        (
            self.list.len(),
            self.list.values().map(|(_, t)| u64::from(t.retry)).sum(),
        )
    }

    /// fail2ban's `addFailure(ticket, count)` for a new failure ticket
    /// (fresh: `failures == 0`, as the filter and `attempt` create them).
    pub fn add_failure(&mut self, ticket: Ticket, count: u32) -> AddOutcome {
        let maxtime = self.maxtime;
        let maxmatches = self.maxmatches;
        let out = if let Some((_, f)) = self.list.get_mut(&ticket.id) {
            let matches = (maxmatches > 0).then_some(ticket.matches);
            let attempt = if ticket.failures == 0 {
                1
            } else {
                ticket.failures
            };
            adjust_time(f, ticket.time, maxtime);
            inc(f, matches, attempt, count);
            truncate(f, maxmatches);
            AddOutcome {
                attempts: f.retry,
                created: false,
                added: true,
            }
        } else {
            let mut t = ticket;
            if count > t.failures {
                t.retry = count;
                if t.failures == 0 {
                    t.failures = 1;
                }
            } else {
                t.retry = t.failures;
            }
            t.first_time = t.time;
            let attempts = t.retry;
            self.seq += 1;
            self.list.insert(t.id.clone(), (self.seq, t));
            AddOutcome {
                attempts,
                created: true,
                added: true,
            }
        };
        self.total += 1;
        out
    }

    /// The observer's re-add for a known bad id (`addFailure(ticket,
    /// count, observed=True)`).  `same` = the id's entry is the very ticket
    /// the failure created (so its matches are not appended twice);
    /// otherwise `matches` are appended again, as fail2ban does.
    /// Returns `added: false` if the id is no longer listed.
    pub fn add_observed(
        &mut self,
        id: &Addr,
        time: f64,
        matches: Vec<String>,
        same: bool,
        count: u32,
    ) -> AddOutcome {
        let maxtime = self.maxtime;
        let maxmatches = self.maxmatches;
        let Some((_, f)) = self.list.get_mut(id) else {
            return AddOutcome {
                attempts: 0,
                created: false,
                added: false,
            };
        };
        let matches = (!same && maxmatches > 0).then_some(matches);
        adjust_time(f, time, maxtime);
        inc(f, matches, 1, count);
        truncate(f, maxmatches);
        let attempts = f.retry;
        self.total += 1;
        AddOutcome {
            attempts,
            created: false,
            added: true,
        }
    }

    /// fail2ban's `toBan(fid)`: removes and returns a ticket that reached
    /// `maxretry` — `id`'s if listed, else the first (oldest entry) that did.
    pub fn to_ban(&mut self, id: Option<&Addr>) -> Option<Ticket> {
        let key = match id.filter(|i| self.list.contains_key(*i)) {
            Some(i) => {
                let (_, t) = &self.list[i];
                if t.retry < self.maxretry {
                    return None;
                }
                i.clone()
            }
            None => self
                .list
                .iter()
                .filter(|(_, (_, t))| t.retry >= self.maxretry)
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(k, _)| k.clone())?,
        };
        self.list.remove(&key).map(|(_, t)| t)
    }

    /// Removes entries whose last failure is at or before `now - findtime`.
    pub fn cleanup(&mut self, now: f64) {
        let limit = now - self.maxtime;
        self.list.retain(|_, (_, t)| t.time > limit);
    }

    /// Raises the ban count of `id`'s pending ticket to at least `v`
    /// (fail2ban's `setBanCount`).
    pub fn raise_bancount(&mut self, id: &Addr, v: u32) {
        if let Some((_, t)) = self.list.get_mut(id) {
            t.bancount = t.bancount.max(v);
        }
    }

    /// Forgets `id`'s failures.
    pub fn del_failure(&mut self, id: &Addr) {
        self.list.remove(id);
    }

    /// Gives back the table's spare room: a burst of distinct ids grows it, and
    /// once their tickets became bans (or expired) the empty buckets stay
    /// allocated (~180 bytes each). For idle moments.
    pub fn shrink(&mut self) {
        if self.list.capacity() > 2 * self.list.len() + 64 {
            self.list.shrink_to_fit();
        }
    }

    /// Forgets everything (counters stay).
    pub fn clear(&mut self) {
        self.list.clear();
    }
}

fn adjust_time(f: &mut Ticket, time: f64, maxtime: f64) {
    if time > f.time {
        if f.first_time < time - maxtime {
            let span = time - f.first_time;
            f.retry = py_round(f64::from(f.retry) / span * maxtime).max(0) as u32;
            f.first_time = time - maxtime;
        }
        f.time = time;
    }
}

fn inc(f: &mut Ticket, matches: Option<Vec<String>>, attempt: u32, count: u32) {
    f.retry = f.retry.saturating_add(count);
    f.failures = f.failures.saturating_add(attempt);
    if let Some(m) = matches {
        if !m.is_empty() {
            f.matches.extend(m);
        }
    }
}

fn truncate(f: &mut Ticket, maxmatches: usize) {
    if maxmatches > 0 {
        if f.matches.len() > maxmatches {
            let cut = f.matches.len() - maxmatches;
            f.matches.drain(..cut);
        }
    } else {
        f.matches.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, time: f64) -> Ticket {
        Ticket::new(Addr::parse(id).unwrap(), time, vec![format!("line@{time}")])
    }

    #[test]
    fn counts_and_bans_at_maxretry() {
        let mut fm = FailManager::default();
        fm.set_maxretry(3);
        assert_eq!(fm.add_failure(t("1.2.3.4", 100.0), 1).attempts, 1);
        assert_eq!(fm.add_failure(t("1.2.3.4", 101.0), 1).attempts, 2);
        assert!(fm.to_ban(Some(&Addr::parse("1.2.3.4").unwrap())).is_none());
        assert_eq!(fm.add_failure(t("1.2.3.4", 102.0), 1).attempts, 3);
        let b = fm.to_ban(Some(&Addr::parse("1.2.3.4").unwrap())).unwrap();
        assert_eq!(b.failures, 3);
        assert_eq!(b.matches.len(), 3);
        assert_eq!(b.time, 102.0);
        assert_eq!(fm.size(), 0);
        assert_eq!(fm.total(), 3);
    }

    #[test]
    fn shrink_gives_back_room_and_keeps_pending_failures() {
        let mut fm = FailManager::default();
        fm.set_maxretry(2);
        for i in 0..1000 {
            fm.add_failure(t(&format!("10.0.{}.{}", i / 256, i % 256), 100.0), 1);
        }
        fm.add_failure(t("10.0.0.1", 101.0), 1);
        let banned = std::iter::from_fn(|| fm.to_ban(None)).count();
        assert_eq!(banned, 1);
        fm.cleanup(100.0 + 600.0);
        assert_eq!(fm.size(), 0);
        fm.add_failure(t("192.0.2.1", 800.0), 1);
        let before = fm.list.capacity();
        fm.shrink();
        assert!(
            fm.list.capacity() < before / 4,
            "{} -> {}",
            before,
            fm.list.capacity()
        );
        assert_eq!(fm.size(), 1);
        assert_eq!(fm.add_failure(t("192.0.2.1", 801.0), 1).attempts, 2);
    }

    #[test]
    fn rate_estimation_beyond_findtime() {
        let mut fm = FailManager::default();
        fm.set_findtime(600.0);
        for _ in 0..4 {
            fm.add_failure(t("1.2.3.4", 0.0), 1);
        }
        // no cleanup: 4 / 1000 * 600 = 2.4 -> 2, + 1
        assert_eq!(fm.add_failure(t("1.2.3.4", 1000.0), 1).attempts, 3);
    }

    #[test]
    fn cleanup_uses_last_failure() {
        let mut fm = FailManager::default();
        fm.add_failure(t("1.2.3.4", 0.0), 1);
        fm.add_failure(t("5.6.7.8", 100.0), 1);
        fm.cleanup(600.0);
        assert_eq!(fm.size(), 1);
        fm.cleanup(700.0);
        assert_eq!(fm.size(), 0);
    }

    #[test]
    fn maxmatches_caps_merged_matches() {
        let mut fm = FailManager::default();
        fm.set_maxmatches(2);
        fm.set_maxretry(100);
        for i in 0..5 {
            fm.add_failure(t("1.2.3.4", f64::from(i)), 1);
        }
        let tk = fm.get(&Addr::parse("1.2.3.4").unwrap()).unwrap();
        assert_eq!(tk.matches, vec!["line@3".to_string(), "line@4".to_string()]);
    }

    #[test]
    fn attempt_with_count() {
        let mut fm = FailManager::default();
        let o = fm.add_failure(t("1.2.3.4", 0.0), 4);
        assert_eq!(o.attempts, 4);
        assert_eq!(
            fm.get(&Addr::parse("1.2.3.4").unwrap()).unwrap().failures,
            1
        );
    }
}
