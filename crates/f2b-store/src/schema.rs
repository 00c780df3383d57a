//! fail2ban's schema (version 4), its creation and the upgrades from older
//! versions. The DDL text is the same as fail2ban's so that `sqlite3 db
//! .schema` of an f2b database is identical to that of a fail2ban one (SQLite
//! stores the statement text verbatim, minus `IF NOT EXISTS`).

use rusqlite::{Connection, OptionalExtension};

/// The schema version f2b reads and writes (fail2ban 0.11 .. 1.1).
pub const SCHEMA_VERSION: i64 = 4;

pub(crate) const CREATE_FAIL2BANDB: &str =
    "CREATE TABLE IF NOT EXISTS fail2banDb(version INTEGER);";

pub(crate) const CREATE_JAILS: &str = "CREATE TABLE IF NOT EXISTS jails(\
name TEXT NOT NULL UNIQUE, \
enabled INTEGER NOT NULL DEFAULT 1\
);\
CREATE INDEX IF NOT EXISTS jails_name ON jails(name);";

pub(crate) const CREATE_LOGS: &str = "CREATE TABLE IF NOT EXISTS logs(\
jail TEXT NOT NULL, \
path TEXT, \
firstlinemd5 TEXT, \
lastfilepos INTEGER DEFAULT 0, \
FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, \
UNIQUE(jail, path),\
UNIQUE(jail, path, firstlinemd5)\
);\
CREATE INDEX IF NOT EXISTS logs_path ON logs(path);\
CREATE INDEX IF NOT EXISTS logs_jail_path ON logs(jail, path);";

pub(crate) const CREATE_BANS: &str = "CREATE TABLE IF NOT EXISTS bans(\
jail TEXT NOT NULL, \
ip TEXT, \
timeofban INTEGER NOT NULL, \
bantime INTEGER NOT NULL, \
bancount INTEGER NOT NULL default 1, \
data JSON, \
FOREIGN KEY(jail) REFERENCES jails(name) \
);\
CREATE INDEX IF NOT EXISTS bans_jail_timeofban_ip ON bans(jail, timeofban);\
CREATE INDEX IF NOT EXISTS bans_jail_ip ON bans(jail, ip);\
CREATE INDEX IF NOT EXISTS bans_ip ON bans(ip);";

pub(crate) const CREATE_BIPS: &str = "CREATE TABLE IF NOT EXISTS bips(\
ip TEXT NOT NULL, \
jail TEXT NOT NULL, \
timeofban INTEGER NOT NULL, \
bantime INTEGER NOT NULL, \
bancount INTEGER NOT NULL default 1, \
data JSON, \
PRIMARY KEY(ip, jail), \
FOREIGN KEY(jail) REFERENCES jails(name) \
);\
CREATE INDEX IF NOT EXISTS bips_timeofban ON bips(timeofban);\
CREATE INDEX IF NOT EXISTS bips_ip ON bips(ip);";

/// All creation scripts in fail2ban's order (the order shows in `.schema`).
pub(crate) const CREATE_ALL: [&str; 5] = [
    CREATE_FAIL2BANDB,
    CREATE_JAILS,
    CREATE_LOGS,
    CREATE_BANS,
    CREATE_BIPS,
];

/// What `fail2banDb` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// No `fail2banDb` table, or no row in it: a new database.
    Missing,
    /// An integer version.
    Version(i64),
    /// A value that is not an integer.
    Garbage(String),
}

pub(crate) fn table_exists(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<bool> {
    let sql = format!("SELECT 1 FROM {schema}.sqlite_master WHERE type='table' AND name=?1");
    Ok(conn
        .query_row(&sql, [table], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Reads the schema version of `schema` (`main` or an attached name).
pub(crate) fn read_version(conn: &Connection, schema: &str) -> rusqlite::Result<Found> {
    if !table_exists(conn, schema, "fail2banDb")? {
        return Ok(Found::Missing);
    }
    let sql = format!("SELECT version FROM {schema}.fail2banDb LIMIT 1");
    let v: Option<rusqlite::types::Value> = conn.query_row(&sql, [], |r| r.get(0)).optional()?;
    Ok(match v {
        None => Found::Missing,
        Some(rusqlite::types::Value::Integer(i)) => Found::Version(i),
        Some(rusqlite::types::Value::Real(f)) if f.fract() == 0.0 => Found::Version(f as i64),
        Some(other) => Found::Garbage(format!("{other:?}")),
    })
}

/// Creates every missing table and index and records version 4 if no version
/// is recorded (fail2ban's `_createDb`). Runs inside the caller's transaction.
pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    for script in CREATE_ALL {
        conn.execute_batch(script)?;
    }
    conn.execute(
        "INSERT INTO fail2banDb(version) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM fail2banDb LIMIT 1)",
        [SCHEMA_VERSION],
    )?;
    Ok(())
}

/// Upgrades a database of version 1..=3 to 4, step by step as fail2ban's
/// `updateDb` does. Runs inside the caller's transaction.
pub(crate) fn upgrade(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    if from < 2 && table_exists(conn, "main", "logs")? {
        // v2 added UNIQUE(jail, path, firstlinemd5): rebuild the table.
        conn.execute_batch(&format!(
            "CREATE TEMPORARY TABLE logs_temp AS SELECT * FROM logs;\
             DROP TABLE logs;\
             {CREATE_LOGS}\
             INSERT INTO logs SELECT * FROM logs_temp;\
             DROP TABLE logs_temp;\
             UPDATE fail2banDb SET version = 2;"
        ))?;
    }
    if from < 3 && table_exists(conn, "main", "bans")? {
        // v3 added bantime and bancount; old bans get the "unknown" bantime -2.
        conn.execute_batch(&format!(
            "CREATE TEMPORARY TABLE bans_temp AS SELECT jail, ip, timeofban, -2 AS bantime, 1 AS bancount, data FROM bans;\
             DROP TABLE bans;\
             {CREATE_BANS}\
             INSERT INTO bans SELECT * FROM bans_temp;\
             DROP TABLE bans_temp;"
        ))?;
    }
    if !table_exists(conn, "main", "bips")? {
        conn.execute_batch(CREATE_BIPS)?;
        if table_exists(conn, "main", "bans")? {
            conn.execute(
                "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) \
                 SELECT ip, jail, timeofban, bantime, bancount, data FROM bans ORDER BY timeofban",
                [],
            )?;
        }
    }
    // Tables that never existed (e.g. a v1 file without logs) are created too.
    create(conn)?;
    conn.execute("UPDATE fail2banDb SET version = ?1", [SCHEMA_VERSION])?;
    Ok(())
}

/// `YYYYMMDD-HHMMSS` of a Unix time in UTC (fail2ban's backup suffix).
pub(crate) fn utc_stamp(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(-1), "19691231-235959");
    }
}
