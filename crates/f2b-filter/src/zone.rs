//! The system time zone, without indexing the time zone database.
//!
//! jiff's `TimeZone::system()` names the zone `/etc/localtime` links to and
//! then looks that name up in its database, whose first use walks all of
//! `/usr/share/zoneinfo` (~1,800 files, ~50 directory reads: about as much
//! CPU as the rest of a stock start's second core). The zone is the same
//! file under either path, so when `TZ` is unset and `/etc/localtime` is a
//! symbolic link into a `zoneinfo` directory, [`system`] reads it directly
//! and names it after the link; in every other case it asks jiff.

use jiff::tz::TimeZone;

const LOCALTIME: &str = "/etc/localtime";

/// The system time zone (as `jiff::tz::TimeZone::system()`).
pub fn system() -> TimeZone {
    if std::env::var_os("TZ").is_none() {
        if let Some(tz) = linked(LOCALTIME) {
            return tz;
        }
    }
    TimeZone::system()
}

/// The zone of `path` if it is a symbolic link into a `zoneinfo` tree,
/// named by the link's target below `zoneinfo/` (jiff's own heuristic).
fn linked(path: &str) -> Option<TimeZone> {
    let target = std::fs::read_link(path).ok()?;
    let target = target.to_str()?;
    let (_, name) = target.rsplit_once("zoneinfo/")?;
    if name.is_empty() {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    TimeZone::tzif(name, &data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_into_zoneinfo_is_that_zone_with_that_name() {
        let dir = std::env::temp_dir().join(format!("f2b-zone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("localtime");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/usr/share/zoneinfo/Europe/Berlin", &link).unwrap();
        let tz = linked(link.to_str().unwrap()).expect("zone");
        assert_eq!(tz.iana_name(), Some("Europe/Berlin"));
        let jiff = TimeZone::get("Europe/Berlin").unwrap();
        for secs in [0i64, 1_700_000_000, 1_711_846_800, 1_729_990_800] {
            let ts = jiff::Timestamp::from_second(secs).unwrap();
            assert_eq!(tz.to_offset(ts), jiff.to_offset(ts), "{secs}");
        }
        // not a link, or not into a zoneinfo tree: left to jiff
        let file = dir.join("plain");
        std::fs::write(&file, std::fs::read("/usr/share/zoneinfo/UTC").unwrap()).unwrap();
        assert!(linked(file.to_str().unwrap()).is_none());
        let other = dir.join("other");
        let _ = std::fs::remove_file(&other);
        std::os::unix::fs::symlink(&file, &other).unwrap();
        assert!(linked(other.to_str().unwrap()).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_system_zone_is_jiffs() {
        let ts = jiff::Timestamp::now();
        let (ours, jiffs) = (system(), TimeZone::system());
        assert_eq!(ours.iana_name(), jiffs.iana_name());
        assert_eq!(ours.to_offset(ts), jiffs.to_offset(ts));
    }
}
