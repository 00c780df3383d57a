//! Journal cursors as ordered positions.
//!
//! A cursor (`s=…;i=…;b=…;m=…;t=…;x=…`) names one entry: sequence-number
//! id and number, boot id and monotonic time, realtime, and a hash. The
//! reader orders entries the way sd_journal interleaves files: by sequence
//! number within one sequence-number id, else by monotonic time within one
//! boot, else by realtime. That lets one shared reader tell, for every
//! entry, whether it lies after a jail's stored cursor even when the
//! cursor's own entry was vacuumed or does not match the jail.

use std::cmp::Ordering;

/// A parsed journal cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    text: String,
    seqnum_id: u128,
    seqnum: u64,
    boot_id: u128,
    monotonic: u64,
    realtime: u64,
    xor_hash: u64,
}

impl Cursor {
    /// Parses a cursor string; `None` if any of its six fields is missing
    /// or not hexadecimal.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (mut s, mut i, mut b, mut m, mut t, mut x) = (None, None, None, None, None, None);
        for part in text.split(';') {
            let (k, v) = part.split_once('=')?;
            if v.is_empty() || v.len() > 32 {
                return None;
            }
            match k {
                "s" => s = Some(u128::from_str_radix(v, 16).ok()?),
                "i" => i = Some(u64::from_str_radix(v, 16).ok()?),
                "b" => b = Some(u128::from_str_radix(v, 16).ok()?),
                "m" => m = Some(u64::from_str_radix(v, 16).ok()?),
                "t" => t = Some(u64::from_str_radix(v, 16).ok()?),
                "x" => x = Some(u64::from_str_radix(v, 16).ok()?),
                _ => {}
            }
        }
        Some(Cursor {
            text: text.to_owned(),
            seqnum_id: s?,
            seqnum: i?,
            boot_id: b?,
            monotonic: m?,
            realtime: t?,
            xor_hash: x?,
        })
    }

    /// The cursor string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Realtime of the entry (µs since the epoch).
    pub fn realtime_usec(&self) -> u64 {
        self.realtime
    }

    /// Order of two entries as sd_journal interleaves them.
    pub fn order(&self, other: &Cursor) -> Ordering {
        if self.seqnum_id == other.seqnum_id {
            return self.seqnum.cmp(&other.seqnum);
        }
        if self.boot_id == other.boot_id {
            let o = self.monotonic.cmp(&other.monotonic);
            if o != Ordering::Equal {
                return o;
            }
        }
        self.realtime
            .cmp(&other.realtime)
            .then(self.xor_hash.cmp(&other.xor_hash))
    }
}

/// Where a subscriber starts: entries strictly after `Cursor`, or entries
/// at or after a realtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum After {
    Cursor(Cursor),
    /// Entries with realtime >= this (µs).
    Since(u64),
}

impl After {
    /// Whether the entry at `c` is to be delivered.
    pub fn admits(&self, c: &Cursor) -> bool {
        match self {
            After::Cursor(p) => c.order(p) == Ordering::Greater,
            After::Since(t) => c.realtime >= *t,
        }
    }

    /// Realtime to seek to so that every admitted entry is read.
    pub fn seek_usec(&self) -> u64 {
        match self {
            After::Cursor(p) => p.realtime,
            After::Since(t) => *t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "s=0123456789abcdef0123456789abcdef;i=1a;b=fedcba9876543210fedcba9876543210;m=10;t=5f0000000000;x=abc";

    #[test]
    fn parse_and_order() {
        let a = Cursor::parse(C).unwrap();
        assert_eq!(a.realtime_usec(), 0x5f0000000000);
        let b = Cursor::parse(&C.replace("i=1a", "i=1b").replace("t=5f", "t=4f")).unwrap();
        // same seqnum id: seqnum decides even against realtime
        assert_eq!(a.order(&b), Ordering::Less);
        let c = Cursor::parse(&C.replace("s=0", "s=1").replace("m=10", "m=9")).unwrap();
        // same boot: monotonic decides
        assert_eq!(a.order(&c), Ordering::Greater);
        assert!(Cursor::parse("s=1;i=2").is_none());
        assert!(Cursor::parse("garbage").is_none());
        assert!(Cursor::parse(&C.replace("i=1a", "i=zz")).is_none());
    }

    #[test]
    fn after_admits() {
        let a = Cursor::parse(C).unwrap();
        assert!(!After::Cursor(a.clone()).admits(&a));
        assert!(After::Since(a.realtime_usec()).admits(&a));
        assert!(!After::Since(a.realtime_usec() + 1).admits(&a));
    }
}
