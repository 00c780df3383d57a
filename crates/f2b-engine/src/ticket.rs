//! Tickets: what the engine knows about one id's failures or ban.
//!
//! fail2ban has `FailTicket` (failures being counted) and `BanTicket` (an
//! active ban); both carry the id, the time of the last failure, the
//! matched log lines, the attempt count ("failures"), captured `F-*` data,
//! and for bans the ban time and ban count.  f2b uses one [`Ticket`] struct.

use f2b_core::addr::Addr;

use crate::num::Num;

/// fail2ban's `Ticket.MAX_TIME` (end of a permanent ban).
pub const MAX_TIME: f64 = 0x7FFF_FFFF_FFFF_u64 as f64;

/// One id's failure or ban record.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// The failure id (IP, subnet, or raw id) — the key in every table.
    pub id: Addr,
    /// The IP when it differs from the id (`<F-ID>` with `<HOST>`): the
    /// `<ip>` tag; `None` means "same as id" (boxed: rare, and a million
    /// stored bans are 24 bytes smaller each).
    pub ip: Option<Box<Addr>>,
    /// Time of the (last) failure, or of the ban for manual bans.
    pub time: f64,
    /// Explicit ban time (seconds, `-1` permanent); `None` = the jail's.
    pub bantime: Option<Num>,
    /// How many times this id was banned (the `<bancount>` tag).
    pub bancount: u32,
    /// Matched log lines, oldest first (capped to `maxmatches`).
    pub matches: Vec<String>,
    /// Attempt count (the `<failures>` tag, fail2ban's `data['failures']`).
    pub failures: u32,
    /// Other captured data (`F-*` groups, `user`, ...), in capture order.
    pub data: Vec<(String, String)>,
    /// Restored from the database at start (`<restored>` = 1).
    pub restored: bool,
    /// Actions ran for this ban (fail2ban's `banned` flag).
    pub banned: bool,
    // failure-counting state (FailTicket):
    pub(crate) first_time: f64,
    pub(crate) retry: u32,
}

impl Ticket {
    /// A fresh ticket for `id` at `time` with the given matched lines.
    pub fn new(id: Addr, time: f64, matches: Vec<String>) -> Ticket {
        Ticket {
            id,
            ip: None,
            time,
            bantime: None,
            bancount: 0,
            matches,
            failures: 0,
            data: Vec::new(),
            restored: false,
            banned: false,
            first_time: time,
            retry: 0,
        }
    }

    /// The address for the `<ip>` tag (`ip` if set, else the id).
    pub fn ip(&self) -> &Addr {
        self.ip.as_deref().unwrap_or(&self.id)
    }

    /// The effective ban time given the jail default (`getBanTime(default)`).
    pub fn bantime_or(&self, default: Num) -> Num {
        self.bantime.unwrap_or(default)
    }

    /// End of ban (`getEndOfBanTime`): `MAX_TIME` for permanent bans.
    pub fn end_of_ban(&self, default: Num) -> f64 {
        let bt = self.bantime_or(default);
        if bt.is_permanent() {
            MAX_TIME
        } else {
            self.time + bt.as_f64()
        }
    }

    /// Retry count used for the `maxretry` decision (may exceed `failures`
    /// when ban-time increment weights known bad ids).
    pub fn retry(&self) -> u32 {
        self.retry
    }

    /// Looks up captured data (`<F-USER>` → `data("F-USER")`).
    pub fn data(&self, key: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
