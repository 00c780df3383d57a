//! Active bans (fail2ban's `BanManager`), built for a million entries.
//!
//! Storage: tickets in a slab (stable slots), an id → slot index (a hash
//! table of slot numbers with 32 bits of the id's hash; the id lives once,
//! in the ticket, and growing the table never reads the slab), and a
//! min-heap of end-of-ban times with lazy invalidation, so the next unban is
//! found in O(log n) instead of fail2ban's full scan.  Every change of a
//! ticket's end time pushes a fresh heap entry; stale entries are skipped
//! when they surface and the heap is rebuilt when they pile up. New entries
//! wait in a plain list until the heap is next read, so restoring a million
//! bans builds the heap once (O(n)) instead of sifting each one in.
//! Insertion order (fail2ban's dict order: `status` "Banned IP list") is a
//! sequence number per ticket.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use hashbrown::HashTable;

use f2b_core::addr::Addr;

use crate::num::Num;
use crate::ticket::Ticket;

/// Result of [`BanManager::add`].
#[derive(Debug, Clone, PartialEq)]
pub enum AddBan {
    /// Newly banned (its `bancount` was incremented).
    Added,
    /// The ban would already have ended (`end < now`): ignored.
    Expired,
    /// The id is already banned; `prolonged` if the new ticket ended later
    /// and the existing ban time was extended.
    AlreadyBanned {
        /// The existing ban's ticket (after any prolongation).
        existing: Box<Ticket>,
        /// Whether the existing ban was prolonged.
        prolonged: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct HeapItem {
    eob: f64,
    seq: u64,
    slot: u32,
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, o: &Self) -> Ordering {
        self.eob.total_cmp(&o.eob).then(self.seq.cmp(&o.seq))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    ticket: Ticket,
}

/// The active bans of one jail.
#[derive(Debug, Clone)]
pub struct BanManager {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// (slot, 32-bit hash of the ticket's id).
    index: HashTable<(u32, u32)>,
    hasher: RandomState,
    heap: BinaryHeap<Reverse<HeapItem>>,
    /// Entries not yet in `heap` (moved in by `settle` before any read).
    pending: Vec<Reverse<HeapItem>>,
    seq: u64,
    bantime: Num,
    total: u64,
}

impl Default for BanManager {
    fn default() -> Self {
        BanManager {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::default(),
            heap: BinaryHeap::new(),
            pending: Vec::new(),
            seq: 0,
            bantime: Num::Int(600),
            total: 0,
        }
    }
}

/// The table hash of a stored 32-bit id hash (both halves, so the table's
/// position bits and tag bits are spread).
fn wide(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

impl BanManager {
    fn hash32(&self, id: &Addr) -> u32 {
        let h = self.hasher.hash_one(id);
        (h ^ (h >> 32)) as u32
    }

    fn slot_of(&self, id: &Addr) -> Option<u32> {
        let h = self.hash32(id);
        let slots = &self.slots;
        self.index
            .find(wide(h), |&(s, sh)| {
                sh == h
                    && slots[s as usize]
                        .as_ref()
                        .is_some_and(|e| e.ticket.id == *id)
            })
            .map(|&(s, _)| s)
    }

    fn index_insert(&mut self, slot: u32, h: u32) {
        self.index
            .insert_unique(wide(h), (slot, h), |&(_, sh)| wide(sh));
    }

    /// The jail's default ban time (seconds, `-1` permanent).
    pub fn bantime(&self) -> Num {
        self.bantime
    }

    /// Sets the default ban time; affects bans without their own ban time.
    pub fn set_bantime(&mut self, v: Num) {
        self.bantime = v;
        self.rebuild_heap();
    }

    /// "Total banned".
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Sets "Total banned".
    pub fn set_total(&mut self, v: u64) {
        self.total = v;
    }

    /// "Currently banned".
    pub fn size(&self) -> usize {
        self.index.len()
    }

    /// Whether `id` is banned.
    pub fn contains(&self, id: &Addr) -> bool {
        self.slot_of(id).is_some()
    }

    /// The ban ticket of `id`.
    pub fn get(&self, id: &Addr) -> Option<&Ticket> {
        let slot = self.slot_of(id)?;
        self.slots[slot as usize].as_ref().map(|e| &e.ticket)
    }

    fn eob(&self, t: &Ticket) -> f64 {
        t.end_of_ban(self.bantime)
    }

    /// fail2ban's `addBanTicket`.
    pub fn add(&mut self, mut ticket: Ticket, now: f64) -> AddBan {
        let eob = self.eob(&ticket);
        if eob < now {
            return AddBan::Expired;
        }
        let h = self.hash32(&ticket.id);
        let slots = &self.slots;
        let found = self
            .index
            .find(wide(h), |&(s, sh)| {
                sh == h
                    && slots[s as usize]
                        .as_ref()
                        .is_some_and(|e| e.ticket.id == ticket.id)
            })
            .map(|&(s, _)| s);
        if let Some(slot) = found {
            let default = self.bantime;
            let Some(entry) = self.slots[slot as usize].as_mut() else {
                return AddBan::Expired;
            };
            let old = &mut entry.ticket;
            let mut prolonged = false;
            if eob > old.end_of_ban(default) {
                prolonged = true;
                let mut btm = ticket.bantime_or(default);
                if !btm.is_permanent() {
                    let dif = ticket.time - old.time;
                    if dif > 0.0 {
                        // times are Python floats, so the sum is a float
                        btm = Num::Float(btm.as_f64() + dif);
                    }
                }
                old.bantime = Some(btm);
                let seq = entry.seq;
                let new_eob = entry.ticket.end_of_ban(default);
                self.pending.push(Reverse(HeapItem {
                    eob: new_eob,
                    seq,
                    slot,
                }));
            }
            let existing = Box::new(
                self.slots[slot as usize]
                    .as_ref()
                    .map(|e| e.ticket.clone())
                    .unwrap_or(ticket),
            );
            return AddBan::AlreadyBanned {
                existing,
                prolonged,
            };
        }
        ticket.bancount = ticket.bancount.saturating_add(1);
        self.seq += 1;
        let seq = self.seq;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize] = Some(Entry { seq, ticket });
        self.index_insert(slot, h);
        self.pending.push(Reverse(HeapItem { eob, seq, slot }));
        self.total += 1;
        AddBan::Added
    }

    /// Mutable access to a ban ticket; the end-of-ban index is refreshed
    /// after `f` runs (use it to set an incremented ban time or flags).
    pub fn update<R>(&mut self, id: &Addr, f: impl FnOnce(&mut Ticket) -> R) -> Option<R> {
        let slot = self.slot_of(id)?;
        let default = self.bantime;
        let entry = self.slots[slot as usize].as_mut()?;
        let before = entry.ticket.end_of_ban(default);
        let r = f(&mut entry.ticket);
        let after = entry.ticket.end_of_ban(default);
        if after != before {
            let seq = entry.seq;
            self.pending.push(Reverse(HeapItem {
                eob: after,
                seq,
                slot,
            }));
        }
        Some(r)
    }

    fn valid(&self, it: &HeapItem) -> bool {
        match self.slots.get(it.slot as usize) {
            Some(Some(e)) => e.seq == it.seq && e.ticket.end_of_ban(self.bantime) == it.eob,
            _ => false,
        }
    }

    /// Moves the pending entries into the heap (one heapify when they are many).
    /// Gives back spare capacity of the slab, the index and the heap (a burst
    /// of bans doubles them past what is kept). For idle moments: the slab is
    /// copied once.
    pub fn shrink(&mut self) {
        self.settle();
        self.slots.shrink_to_fit();
        self.free.shrink_to_fit();
        self.pending.shrink_to_fit();
        self.heap.shrink_to_fit();
        self.index.shrink_to_fit(|&(_, sh)| wide(sh));
    }

    fn settle(&mut self) {
        if self.heap.is_empty() {
            self.heap = BinaryHeap::from(std::mem::take(&mut self.pending));
        } else if !self.pending.is_empty() {
            self.heap.extend(self.pending.drain(..));
            if self.pending.capacity() > 4096 {
                self.pending = Vec::new();
            }
        }
    }

    fn clean_top(&mut self) {
        self.settle();
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.valid(top) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 2 * self.index.len() + 1024 {
            self.rebuild_heap();
        }
    }

    fn rebuild_heap(&mut self) {
        let default = self.bantime;
        let items: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref().map(|e| {
                    Reverse(HeapItem {
                        eob: e.ticket.end_of_ban(default),
                        seq: e.seq,
                        slot: i as u32,
                    })
                })
            })
            .collect();
        self.heap = BinaryHeap::from(items);
        self.pending = Vec::new();
    }

    /// The earliest end of ban (permanent bans end at `MAX_TIME`); `None`
    /// when nothing is banned.  A ban is lifted once `now > end`.
    pub fn next_unban_time(&mut self) -> Option<f64> {
        self.clean_top();
        self.heap.peek().map(|Reverse(it)| it.eob)
    }

    fn remove_slot(&mut self, slot: u32) -> Option<(u64, Ticket)> {
        let h = self.hash32(&self.slots.get(slot as usize)?.as_ref()?.ticket.id);
        if let Ok(entry) = self.index.find_entry(wide(h), |&(s, _)| s == slot) {
            entry.remove();
        }
        let e = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((e.seq, e.ticket))
    }

    /// fail2ban's `unBanList(now, maxCount)`: removes and returns bans with
    /// `now > end`, at most `max` of them (earliest ends first), returned in
    /// ban (insertion) order like fail2ban.
    pub fn unban_expired(&mut self, now: f64, max: usize) -> Vec<Ticket> {
        let mut out = Vec::new();
        while out.len() < max {
            self.clean_top();
            let Some(Reverse(top)) = self.heap.peek().copied() else {
                break;
            };
            if now <= top.eob || now.is_nan() {
                break;
            }
            self.heap.pop();
            if let Some(x) = self.remove_slot(top.slot) {
                out.push(x);
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, t)| t).collect()
    }

    /// fail2ban's `getTicketByID`: removes and returns `id`'s ban.
    pub fn take(&mut self, id: &Addr) -> Option<Ticket> {
        let slot = self.slot_of(id)?;
        self.remove_slot(slot).map(|(_, t)| t)
    }

    /// fail2ban's `flushBanList`: removes and returns all bans, in ban order.
    pub fn flush(&mut self) -> Vec<Ticket> {
        let mut all: Vec<(u64, Ticket)> = self
            .slots
            .drain(..)
            .flatten()
            .map(|e| (e.seq, e.ticket))
            .collect();
        self.free.clear();
        self.index.clear();
        self.heap.clear();
        self.pending.clear();
        all.sort_by_key(|(s, _)| *s);
        all.into_iter().map(|(_, t)| t).collect()
    }

    /// All banned tickets in ban (insertion) order.
    pub fn tickets(&self) -> Vec<&Ticket> {
        let mut v: Vec<(u64, &Ticket)> = self
            .slots
            .iter()
            .flatten()
            .map(|e| (e.seq, &e.ticket))
            .collect();
        v.sort_by_key(|(s, _)| *s);
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Banned ids in ban order (`status` "Banned IP list", `banned`).
    pub fn ids(&self) -> Vec<Addr> {
        self.tickets().into_iter().map(|t| t.id.clone()).collect()
    }

    /// `get <jail> banip [--with-time]` order: by end of ban, ties in ban
    /// order; each with its end time.
    pub fn ordered(&self) -> Vec<(&Ticket, f64)> {
        let mut v: Vec<(u64, &Ticket, f64)> = self
            .slots
            .iter()
            .flatten()
            .map(|e| (e.seq, &e.ticket, e.ticket.end_of_ban(self.bantime)))
            .collect();
        v.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(_, t, e)| (t, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::MAX_TIME;

    fn t(id: &str, time: f64) -> Ticket {
        Ticket::new(Addr::parse(id).unwrap(), time, vec![])
    }

    #[test]
    fn add_expire_and_next() {
        let mut bm = BanManager::default();
        assert_eq!(bm.add(t("1.1.1.1", 100.0), 100.0), AddBan::Added);
        assert_eq!(bm.add(t("2.2.2.2", 50.0), 100.0), AddBan::Added);
        assert_eq!(bm.next_unban_time(), Some(650.0));
        assert!(bm.unban_expired(650.0, usize::MAX).is_empty());
        let u = bm.unban_expired(650.5, usize::MAX);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].id.to_string(), "2.2.2.2");
        assert_eq!(u[0].bancount, 1);
        assert_eq!(bm.total(), 2);
        assert_eq!(bm.size(), 1);
        assert_eq!(bm.add(t("3.3.3.3", 0.0), 700.0), AddBan::Expired);
    }

    #[test]
    fn permanent_never_expires() {
        let mut bm = BanManager::default();
        bm.set_bantime(Num::Int(-1));
        bm.add(t("1.1.1.1", 0.0), 0.0);
        assert_eq!(bm.next_unban_time(), Some(MAX_TIME));
        assert!(bm.unban_expired(1e12, usize::MAX).is_empty());
    }

    #[test]
    fn already_banned_prolongs() {
        let mut bm = BanManager::default();
        bm.add(t("1.1.1.1", 100.0), 100.0);
        match bm.add(t("1.1.1.1", 200.0), 200.0) {
            AddBan::AlreadyBanned {
                existing,
                prolonged,
            } => {
                assert!(prolonged);
                assert_eq!(existing.bantime, Some(Num::Float(700.0)));
                assert_eq!(existing.end_of_ban(Num::Int(600)), 800.0);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(bm.next_unban_time(), Some(800.0));
        assert_eq!(bm.total(), 1);
    }

    #[test]
    fn ordered_by_end_then_insertion() {
        let mut bm = BanManager::default();
        bm.add(t("1.1.1.1", 300.0), 300.0);
        bm.add(t("2.2.2.2", 100.0), 300.0);
        bm.add(t("3.3.3.3", 100.0), 300.0);
        let o: Vec<String> = bm.ordered().iter().map(|(t, _)| t.id.to_string()).collect();
        assert_eq!(o, ["2.2.2.2", "3.3.3.3", "1.1.1.1"]);
        let ids: Vec<String> = bm.ids().iter().map(|a| a.to_string()).collect();
        assert_eq!(ids, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    }

    #[test]
    fn many_bans_added_at_once_expire_in_end_order() {
        // Ends in an order unrelated to insertion; the pending list is heapified at the
        // first read, then later adds and prolongations join it.
        let mut bm = BanManager::default();
        let n = 5000u32;
        for i in 0..n {
            let ip = format!("10.0.{}.{}", i / 256, i % 256);
            let time = f64::from((i * 7919) % n);
            assert_eq!(bm.add(t(&ip, time), 0.0), AddBan::Added);
        }
        assert_eq!(bm.next_unban_time(), Some(600.0));
        bm.add(t("192.0.2.1", 0.0), 0.0);
        bm.update(&Addr::parse("10.0.0.0").unwrap(), |t| {
            t.bantime = Some(Num::Int(10_000))
        });
        let mut last = f64::MIN;
        let mut seen = 0;
        for now in (0..=(n + 700)).step_by(50) {
            for tk in bm.unban_expired(f64::from(now) + 0.5, usize::MAX) {
                let end = tk.end_of_ban(Num::Int(600));
                assert!(
                    end < f64::from(now) + 0.5 && end >= last - 50.0,
                    "{end} {now}"
                );
                last = last.max(end);
                seen += 1;
            }
        }
        assert_eq!(seen, n as usize);
        assert_eq!(bm.size(), 1);
        assert_eq!(bm.next_unban_time(), Some(10_000.0));
    }

    #[test]
    fn shrink_keeps_bans_order_and_lookups() {
        let mut bm = BanManager::default();
        for i in 0..3000u32 {
            let ip = format!("10.1.{}.{}", i / 256, i % 256);
            bm.add(t(&ip, f64::from(i)), 0.0);
        }
        // The first 2,000 end; the slab and the index keep their size until shrunk.
        assert_eq!(
            bm.unban_expired(2000.0 + 600.0 - 0.5, usize::MAX).len(),
            2000
        );
        let cap = bm.slots.capacity();
        bm.shrink();
        assert!(bm.slots.capacity() <= cap);
        assert!(bm.index.capacity() < 2 * 1000 + 1024);
        assert_eq!(bm.size(), 1000);
        assert!(bm.get(&Addr::parse("10.1.11.183").unwrap()).is_some()); // 2,999
        assert!(bm.get(&Addr::parse("10.1.0.1").unwrap()).is_none());
        assert_eq!(bm.next_unban_time(), Some(2000.0 + 600.0));
        assert_eq!(bm.add(t("192.0.2.9", 5000.0), 5000.0), AddBan::Added);
        assert_eq!(bm.size(), 1001);
    }

    #[test]
    fn shorter_default_bantime_rebuilds_heap() {
        let mut bm = BanManager::default();
        bm.add(t("1.1.1.1", 0.0), 0.0);
        bm.set_bantime(Num::Int(10));
        assert_eq!(bm.next_unban_time(), Some(10.0));
        assert_eq!(bm.unban_expired(11.0, usize::MAX).len(), 1);
    }
}
