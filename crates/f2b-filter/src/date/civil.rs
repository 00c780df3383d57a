//! Integer civil-time arithmetic and a cache of constant-offset windows of
//! the local zone, so converting a date costs a few integer operations
//! instead of a time-zone look-up per line.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::cell::RefCell;
use std::sync::Arc;

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// True for Gregorian leap years.
pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in `month` (1..=12) of `year`.
pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Civil seconds (seconds since 1970-01-01T00:00:00 of the civil calendar,
/// no zone) of a valid date and time.
pub(crate) const fn civil_secs(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + s
}

/// The smallest civil second `jiff::civil::DateTime` holds.
pub(crate) const CIVIL_MIN: i64 = civil_secs(-9999, 1, 1, 0, 0, 0);
/// The largest civil second `jiff::civil::DateTime` holds.
pub(crate) const CIVIL_MAX: i64 = civil_secs(9999, 12, 31, 23, 59, 59);
/// `jiff::Timestamp::MIN.as_second()` (a test checks it).
pub(crate) const TS_MIN: i64 = -377_705_023_201;
/// `jiff::Timestamp::MAX.as_second()` (a test checks it).
pub(crate) const TS_MAX: i64 = 253_402_207_200;

/// A span of instants `[lo, hi)` (Unix seconds) over which the zone's
/// offset is `off` seconds.
#[derive(Clone)]
struct Window {
    tz: Arc<TimeZone>,
    lo: i64,
    hi: i64,
    off: i64,
}

/// Offsets never exceed ±26 h, so two offsets differ by less than 3 days.
const MARGIN: i64 = 3 * DAY;

fn window(tz: &Arc<TimeZone>, t: i64) -> Option<Window> {
    let ts = Timestamp::from_second(t).ok()?;
    let off = i64::from(tz.to_offset(ts).seconds());
    let lo = match ts.checked_add(jiff::SignedDuration::from_secs(1)) {
        Ok(after) => tz
            .preceding(after)
            .next()
            .map(|tr| tr.timestamp().as_second())
            .unwrap_or(Timestamp::MIN.as_second()),
        Err(_) => Timestamp::MIN.as_second(),
    };
    let hi = tz
        .following(ts)
        .next()
        .map(|tr| tr.timestamp().as_second())
        .unwrap_or(Timestamp::MAX.as_second() + 1);
    (lo <= t && t < hi).then(|| Window {
        tz: tz.clone(),
        lo,
        hi,
        off,
    })
}

thread_local! {
    /// Slot 0: "now" look-ups; slot 1: date conversions. The windows keep
    /// their zone alive, so a pointer match is the same zone.
    static CACHE: RefCell<[Option<Window>; 2]> = const { RefCell::new([None, None]) };
}

fn with_window<T>(
    slot: usize,
    tz: &Arc<TimeZone>,
    hit: impl Fn(&Window) -> Option<T>,
    probe: i64,
) -> Option<T> {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(w) = &c[slot] {
            if Arc::ptr_eq(&w.tz, tz) {
                if let Some(r) = hit(w) {
                    return Some(r);
                }
            }
        }
        let w = window(tz, probe)?;
        let r = hit(&w);
        c[slot] = Some(w);
        r
    })
}

/// Local civil seconds of the Unix time `t` (`tz.to_datetime`).
pub(crate) fn local_civil(tz: &Arc<TimeZone>, t: i64) -> Option<i64> {
    let hit = |w: &Window| (w.lo <= t && t < w.hi).then_some(t + w.off);
    with_window(0, tz, hit, t)
}

/// The Unix time of local civil seconds `c` if the zone's offset is the
/// same for at least three days on either side of it (so the local time
/// is unambiguous); `None` means: ask the zone (`tz.to_timestamp`).
pub(crate) fn local_to_unix(tz: &Arc<TimeZone>, c: i64) -> Option<i64> {
    let hit = |w: &Window| {
        let t = c - w.off;
        (w.lo.saturating_add(MARGIN) <= t && t < w.hi.saturating_sub(MARGIN)).then_some(t)
    };
    // probe the instant the civil time would be at under UTC: its window's
    // offset is then tried
    with_window(
        1,
        tz,
        hit,
        c.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second()),
    )
}

/// The two cached windows of one zone, copied out in one thread-local
/// access: (lo, hi, off) for "now" and for dates.
#[derive(Clone, Copy, Default)]
pub(crate) struct Snap {
    now: Option<(i64, i64, i64)>,
    date: Option<(i64, i64, i64)>,
}

/// The cached windows of `tz` (misses are filled by the look-ups below).
pub(crate) fn snapshot(tz: &Arc<TimeZone>) -> Snap {
    CACHE.with(|c| {
        let c = c.borrow();
        let get = |w: &Option<Window>| {
            w.as_ref()
                .filter(|w| Arc::ptr_eq(&w.tz, tz))
                .map(|w| (w.lo, w.hi, w.off))
        };
        Snap {
            now: get(&c[0]),
            date: get(&c[1]),
        }
    })
}

impl Snap {
    /// [`local_civil`], trying the snapshot first.
    pub(crate) fn local_civil(&self, tz: &Arc<TimeZone>, t: i64) -> Option<i64> {
        if let Some((lo, hi, off)) = self.now {
            if lo <= t && t < hi {
                return Some(t + off);
            }
        }
        local_civil(tz, t)
    }

    /// [`local_to_unix`], trying the snapshot first.
    pub(crate) fn local_to_unix(&self, tz: &Arc<TimeZone>, c: i64) -> Option<i64> {
        if let Some((lo, hi, off)) = self.date {
            let t = c - off;
            if lo.saturating_add(MARGIN) <= t && t < hi.saturating_sub(MARGIN) {
                return Some(t);
            }
        }
        local_to_unix(tz, c)
    }
}
