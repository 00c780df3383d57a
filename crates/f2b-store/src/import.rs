//! `f2b import-db FILE`: take over the bans, jails and log positions of
//! another fail2ban database (any schema version 1..=4).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::model::ImportStats;
use crate::schema::{self, Found, SCHEMA_VERSION};
use crate::store::Store;

/// Maps an SQLite error of an operation to a [`StoreError`].
type SqlErr = Box<dyn FnOnce(rusqlite::Error) -> StoreError>;

const SRC: &str = "f2b_import_src";

/// `file:` URI (read-only) for a path, percent-encoding everything but
/// unreserved characters and `/`.
fn ro_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' | b'~' => {
                uri.push(char::from(*b))
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

impl Store {
    /// Copies another fail2ban database into this one, in one transaction:
    /// jails (missing ones; those only referenced by bans are added
    /// disabled), ban history rows not already present (same jail, ip and
    /// time), `bips` rows unless this store has a newer one for the ip and
    /// jail, and every log/journal position (replacing this store's: the
    /// imported server is the one that read the logs last). The source is
    /// opened read-only and never modified; schema 1..3 sources are
    /// converted on the fly like fail2ban's upgrade does (bantime `-2`).
    pub fn import_db(&self, src: &Path) -> Result<ImportStats> {
        let src_abs = src.canonicalize().map_err(|source| StoreError::Io {
            db: src.display().to_string(),
            op: "open import source",
            source,
        })?;
        if let Some(own) = self.path().and_then(|p| p.canonicalize().ok()) {
            if own == src_abs {
                return Err(StoreError::ImportIntoSelf { src: src_abs });
            }
        }
        let src_name = src.display().to_string();
        self.with_conn(|conn, db| {
            let sql = |op: &'static str| -> SqlErr {
                let db = db.to_owned();
                Box::new(move |source| StoreError::Sql { db, op, source })
            };
            conn.execute("ATTACH DATABASE ?1 AS f2b_import_src", [ro_uri(&src_abs)])
                .map_err(|source| StoreError::Open {
                    db: src_name.clone(),
                    source,
                })?;
            let result = import_attached(conn, &src_name, &sql);
            let detach = conn
                .execute_batch("DETACH DATABASE f2b_import_src")
                .map_err(sql("detach import source"));
            let stats = result?;
            detach?;
            Ok(stats)
        })
    }
}

fn import_attached(
    conn: &mut Connection,
    src_name: &str,
    sql: &dyn Fn(&'static str) -> SqlErr,
) -> Result<ImportStats> {
    let not_db = |reason: String| StoreError::NotFail2banDb {
        db: src_name.to_owned(),
        reason,
    };
    let found =
        schema::read_version(conn, SRC).map_err(|source| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => not_db("not an SQLite database".into()),
            _ => StoreError::Open {
                db: src_name.to_owned(),
                source,
            },
        })?;
    let version = match found {
        Found::Version(v) if (1..=SCHEMA_VERSION).contains(&v) => v,
        Found::Version(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::FutureVersion {
                db: src_name.to_owned(),
                found: v,
                supported: SCHEMA_VERSION,
            })
        }
        Found::Version(v) => {
            return Err(StoreError::UnknownVersion {
                db: src_name.to_owned(),
                found: v.to_string(),
            })
        }
        Found::Garbage(g) => {
            return Err(StoreError::UnknownVersion {
                db: src_name.to_owned(),
                found: g,
            })
        }
        Found::Missing => return Err(not_db("no fail2banDb table or version".into())),
    };
    let has = |t: &str| schema::table_exists(conn, SRC, t).map_err(sql("inspect import source"));
    let (has_jails, has_bans, has_bips, has_logs) =
        (has("jails")?, has("bans")?, has("bips")?, has("logs")?);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("begin import"))?;
    let mut stats = ImportStats {
        source_version: version,
        ..ImportStats::default()
    };
    let run = |q: &str| tx.execute(q, []);
    if has_jails {
        stats.jails += run(
            "INSERT OR IGNORE INTO main.jails(name, enabled) SELECT name, enabled FROM f2b_import_src.jails WHERE name IS NOT NULL",
        )
        .map_err(sql("import jails"))?;
    }
    for t in [(has_bans, "bans"), (has_bips, "bips"), (has_logs, "logs")]
        .iter()
        .filter(|t| t.0)
        .map(|t| t.1)
    {
        stats.jails += run(&format!(
            "INSERT OR IGNORE INTO main.jails(name, enabled) SELECT DISTINCT jail, 0 FROM f2b_import_src.{t} WHERE jail IS NOT NULL"
        ))
        .map_err(sql("import jails"))?;
    }
    // v1/v2 bans have no bantime/bancount: fail2ban's upgrade uses -2 / 1.
    let ban_cols = if version >= 3 {
        "s.jail, s.ip, s.timeofban, s.bantime, s.bancount, s.data"
    } else {
        "s.jail, s.ip, s.timeofban, -2, 1, s.data"
    };
    if has_bans {
        stats.bans = run(&format!(
            "INSERT INTO main.bans(jail, ip, timeofban, bantime, bancount, data) \
             SELECT {ban_cols} FROM f2b_import_src.bans s WHERE s.jail IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM main.bans b WHERE b.jail = s.jail AND b.ip IS s.ip AND b.timeofban = s.timeofban)"
        ))
        .map_err(sql("import bans"))?;
    }
    let bips_src = if has_bips && version >= SCHEMA_VERSION {
        Some(
            "SELECT s.ip, s.jail, s.timeofban, s.bantime, s.bancount, s.data FROM f2b_import_src.bips s"
                .to_owned(),
        )
    } else if has_bans {
        Some(format!(
            "SELECT s.ip, s.jail, s.timeofban, {} FROM f2b_import_src.bans s",
            if version >= 3 {
                "s.bantime, s.bancount, s.data"
            } else {
                "-2, 1, s.data"
            }
        ))
    } else {
        None
    };
    if let Some(from) = bips_src {
        stats.bips = run(&format!(
            "INSERT OR REPLACE INTO main.bips(ip, jail, timeofban, bantime, bancount, data) \
             SELECT * FROM ({from} WHERE s.ip IS NOT NULL AND s.jail IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM main.bips m WHERE m.ip = s.ip AND m.jail = s.jail AND m.timeofban >= s.timeofban) \
             ORDER BY s.timeofban)"
        ))
        .map_err(sql("import bips"))?;
    }
    if has_logs {
        stats.logs = run(
            "INSERT OR REPLACE INTO main.logs(jail, path, firstlinemd5, lastfilepos) \
             SELECT jail, path, firstlinemd5, lastfilepos FROM f2b_import_src.logs WHERE jail IS NOT NULL",
        )
        .map_err(sql("import log positions"))?;
    }
    tx.commit().map_err(sql("commit import"))?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes() {
        assert_eq!(
            ro_uri(Path::new("/var/lib/fail 2ban/a?b#c%.db")),
            "file:/var/lib/fail%202ban/a%3Fb%23c%25.db?mode=ro"
        );
    }
}
