//! Plain data types exchanged with the store.

use serde_json::Value;

/// A ticket's `data` dict as fail2ban stores it: `matches` (list of log
/// lines), `failures` (int) and any `F-*` fields captured by the filter.
///
/// Keys keep their insertion order like a Python dict (so f2b writes the same
/// bytes as fail2ban); a handful of keys, so lookups are linear scans, which
/// is also what makes restoring a million bans cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BanData {
    entries: Vec<(String, Value)>,
}

impl BanData {
    /// An empty dict.
    pub fn new() -> Self {
        BanData::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|e| e.0 == key).map(|e| &e.1)
    }

    /// The value of `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.0 == key)
            .map(|e| &mut e.1)
    }

    /// `true` if `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (an existing key keeps its position, like Python); returns
    /// the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|e| e.0 == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` without keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and values in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// As a JSON object value.
    pub fn to_json(&self) -> Value {
        Value::Object(self.entries.iter().cloned().collect())
    }
}

impl FromIterator<(String, Value)> for BanData {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut d = BanData::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl IntoIterator for BanData {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl serde::Serialize for BanData {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for BanData {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = BanData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<BanData, A::Error> {
                let mut d = BanData {
                    entries: Vec::with_capacity(a.size_hint().unwrap_or(4)),
                };
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    d.insert(k, v);
                }
                Ok(d)
            }
        }
        de.deserialize_map(Visit)
    }
}

/// One ban as stored in the `bans` (history) and `bips` (latest per ip and
/// jail) tables.
#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord {
    /// The banned id, normally an IP address as text.
    pub ip: String,
    /// Unix time of the ban (whole seconds; fail2ban rounds the ticket time).
    pub timeofban: i64,
    /// Ban duration in seconds; `-1` = permanent; `-2` = unknown (rows
    /// upgraded from a schema older than v3).
    pub bantime: i64,
    /// How many times this ip was banned in this jail (bantime.increment).
    pub bancount: i64,
    /// The ticket's data dict.
    pub data: BanData,
}

impl BanRecord {
    /// A record with empty data.
    pub fn new(ip: impl Into<String>, timeofban: i64, bantime: i64, bancount: i64) -> Self {
        BanRecord {
            ip: ip.into(),
            timeofban,
            bantime,
            bancount,
            data: BanData::new(),
        }
    }

    /// Sets `data["matches"]`.
    pub fn with_matches<S: Into<String>>(mut self, matches: impl IntoIterator<Item = S>) -> Self {
        let list = matches
            .into_iter()
            .map(|m| Value::String(m.into()))
            .collect();
        self.data.insert("matches", Value::Array(list));
        self
    }

    /// Sets `data["failures"]`.
    pub fn with_failures(mut self, failures: i64) -> Self {
        self.data.insert("failures", Value::from(failures));
        self
    }

    /// Sets any other data field (e.g. `F-USER`).
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    /// The matched log lines, as fail2ban's `Ticket.getMatches` returns them
    /// (list entries that are themselves lists are joined).
    pub fn matches(&self) -> Vec<String> {
        matches_of(&self.data)
    }

    /// `data["failures"]` if it is a number.
    pub fn failures(&self) -> Option<i64> {
        self.data.get("failures").and_then(value_as_i64)
    }

    /// `true` for a permanent ban (`bantime == -1`).
    pub fn is_permanent(&self) -> bool {
        self.bantime == -1
    }

    /// The data dict taken apart as a ticket holds it (restoring bans): the matched
    /// lines (moved, as [`BanRecord::matches`] gives them), `failures`, and every other
    /// field in order with its value as Python's `str()` shows it (the `<F-*>` tags).
    pub fn take_ticket_data(&mut self) -> TicketData {
        let mut out = TicketData::default();
        for (k, v) in std::mem::take(&mut self.data) {
            match k.as_str() {
                "matches" => {
                    if let Value::Array(items) = v {
                        out.matches = items.into_iter().map(match_line).collect();
                    }
                }
                "failures" => out.failures = value_as_i64(&v),
                _ => {
                    let text = match v {
                        Value::String(s) => s,
                        other => py_str(&other),
                    };
                    out.fields.push((k, text));
                }
            }
        }
        out
    }
}

/// [`BanRecord::take_ticket_data`]'s result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketData {
    /// `data["matches"]`, entries that are lists joined.
    pub matches: Vec<String>,
    /// `data["failures"]` if it is a number.
    pub failures: Option<i64>,
    /// The other keys with Python's `str()` of their values.
    pub fields: Vec<(String, String)>,
}

/// One entry of a `matches` list as text (a list of parts is joined).
fn match_line(item: Value) -> String {
    match item {
        Value::String(s) => s,
        Value::Array(parts) => parts
            .into_iter()
            .map(|p| match p {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        other => other.to_string(),
    }
}

/// Python's `str()` of a JSON-decoded value (`repr()` inside containers).
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            py_repr(other, &mut out);
            out
        }
    }
}

fn py_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                out.push_str(&format!("{f:.1}"))
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => py_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(it, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, it)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str_repr(k, out);
                out.push_str(": ");
                py_repr(it, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` of a `str` (quote choice and escapes of the common cases).
fn py_str_repr(s: &str, out: &mut String) {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
}

/// A ban together with the jail it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct JailBan {
    /// Jail name.
    pub jail: String,
    /// The ban.
    pub ban: BanRecord,
}

/// What [`crate::Store::ban_history`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryScope<'a> {
    /// The `bips` row of this ip in this jail (fail2ban's `getBan(ip, jail)`).
    Jail(&'a str),
    /// The newest `bips` row of this ip in any jail (`getBan(ip)` without a jail).
    NewestAnyJail,
    /// All jails summed (`bantime.overalljails = true`): total bancount, newest
    /// timeofban and the bantime of that newest row.
    Overall,
}

/// Result of [`crate::Store::ban_history`], the input of `bantime.increment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanHistory {
    /// Number of previous bans (summed over jails for [`HistoryScope::Overall`]).
    pub bancount: i64,
    /// Time of the most recent ban.
    pub last_timeofban: i64,
    /// Ban time of the most recent ban.
    pub last_bantime: i64,
}

/// Parameters of [`crate::Store::current_bans`] (fail2ban's `getCurrentBans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentBansQuery<'a> {
    /// Only this jail (`None`: all jails, newest row per ip).
    pub jail: Option<&'a str>,
    /// Only this ip.
    pub ip: Option<&'a str>,
    /// "Now": bans that ended at or before this are not returned.
    pub now: i64,
    /// If set (and not `-1`), only bans with `timeofban > now - forbantime`
    /// (fail2ban passes the jail's bantime when bantime.increment is off).
    pub forbantime: Option<i64>,
    /// The jail's maximal ban time (`bantime.maxtime` or bantime): longer and
    /// permanent bans are shortened to it, and bans that thereby ended are
    /// dropped. `None` or `Some(-1)`: no correction.
    pub max_bantime: Option<i64>,
    /// Ban time given to rows with the unknown bantime `-2` (upgraded from
    /// schema < 3): normally the jail's bantime. `None`: `max_bantime` if set
    /// and non-zero, else 600 (fail2ban's fallback).
    pub unknown_bantime: Option<i64>,
    /// Keep at most this many (newest) matches; `Some(0)` drops `matches`;
    /// `None`: the store's `dbmaxmatches`.
    pub max_matches: Option<usize>,
}

impl<'a> CurrentBansQuery<'a> {
    /// All active bans at `now`, no filters, no corrections.
    pub fn at(now: i64) -> Self {
        CurrentBansQuery {
            jail: None,
            ip: None,
            now,
            forbantime: None,
            max_bantime: None,
            unknown_bantime: None,
            max_matches: None,
        }
    }

    /// Active bans of one jail at `now`.
    pub fn jail(jail: &'a str, now: i64) -> Self {
        CurrentBansQuery {
            jail: Some(jail),
            ..Self::at(now)
        }
    }
}

/// All bans of one ip merged into one ticket (fail2ban's `getBansMerged`),
/// used for the `<ipmatches>`, `<ipjailmatches>`, `<ipfailures>` and
/// `<ipjailfailures>` action tags.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedBan {
    /// The ip.
    pub ip: String,
    /// Time of the oldest ban considered.
    pub timeofban: i64,
    /// Sum of `failures` over the bans (a ban without it counts 1).
    pub failures: i64,
    /// Matches of all bans, oldest first, at most `dbmaxmatches` (the newest).
    pub matches: Vec<Value>,
    /// The merged data dict (`failures` and `matches` as above; other keys:
    /// the value of the oldest ban that has it).
    pub data: BanData,
}

/// Read position of a log file (`logs` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// MD5 (hex) of the file's first line, to detect rotation.
    pub firstlinemd5: Option<String>,
    /// Byte offset where reading stopped.
    pub lastfilepos: u64,
}

/// Read position of the systemd journal of a jail.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalPosition {
    /// Realtime timestamp (seconds) of the last processed entry: what
    /// fail2ban stores and seeks to.
    pub time: f64,
    /// ISO form of that time (fail2ban stores it in `firstlinemd5`).
    pub iso: Option<String>,
    /// The exact journal cursor (f2b only). `None` when unknown or when
    /// fail2ban moved the time position since f2b stored the cursor.
    pub cursor: Option<String>,
}

/// Counts of rows removed by [`crate::Store::purge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Rows deleted from `bans` (history).
    pub bans: usize,
    /// Rows deleted from `bips`.
    pub bips: usize,
    /// Disabled jails without bans that were removed.
    pub jails: usize,
}

/// Counts of rows taken over by [`crate::Store::import_db`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Schema version of the source database.
    pub source_version: i64,
    /// Jails added.
    pub jails: usize,
    /// History rows added (rows already present are skipped).
    pub bans: usize,
    /// Latest-ban rows added or replaced by newer ones.
    pub bips: usize,
    /// Log and journal positions taken over.
    pub logs: usize,
}

/// Extracts `matches` like fail2ban's `Ticket.getMatches`.
pub(crate) fn matches_of(data: &BanData) -> Vec<String> {
    match data.get("matches") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A JSON number as i64 (floats truncated), like Python's int().
pub(crate) fn value_as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_data_moves_matches_and_shows_fields_like_python() {
        let mut r = BanRecord::new("1.2.3.4", 10, 600, 1)
            .with_matches(["line one", "line two"])
            .with_failures(3)
            .with_field("user", "root")
            .with_field("port", 22)
            .with_field("flag", true)
            .with_field("ratio", 2.0)
            .with_field("none", Value::Null)
            .with_field("list", serde_json::json!(["a'b", 1, [2]]));
        r.data.insert(
            "matches",
            serde_json::json!(["plain", ["joined ", "parts"], 5]),
        );
        let d = r.take_ticket_data();
        assert!(r.data.is_empty());
        assert_eq!(d.matches, ["plain", "joined parts", "5"]);
        assert_eq!(d.failures, Some(3));
        let f: Vec<(&str, &str)> = d
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("user", "root"),
                ("port", "22"),
                ("flag", "True"),
                ("ratio", "2.0"),
                ("none", "None"),
                ("list", "[\"a'b\", 1, [2]]"),
            ]
        );
        // Not a number: no failures; not a list: no matches.
        let mut r = BanRecord::new("x", 0, 1, 1)
            .with_field("failures", "many")
            .with_field("matches", "one line");
        let d = r.take_ticket_data();
        assert_eq!((d.failures, d.matches.len()), (None, 0));
    }
}
