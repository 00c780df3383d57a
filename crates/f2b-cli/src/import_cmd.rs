//! `f2b import-db FILE [--db DEST] [-c DIR]`: takes over a (Python) fail2ban
//! database into f2b's database.
//!
//! The source is opened read-only and never modified, so this may run while the
//! Python server still uses it (SQLite gives a consistent snapshot). The destination
//! defaults to the `dbfile` of `fail2ban.conf` (+ `.local`, `fail2ban.d/`) in the
//! configuration directory (`-c`, default `/etc/fail2ban`), else fail2ban's default
//! `/var/lib/fail2ban/fail2ban.sqlite3`. Everything is copied in one transaction by
//! [`f2b_store::Store::import_db`]: either all rows arrive or none.
//!
//! A running f2b server does not see imported rows until it restarts (it reads its
//! bans from the database at start). See docs/arch/persist-tests.md for the
//! switch-over procedure.

use std::path::{Path, PathBuf};

use f2b_store::{CurrentBansQuery, DbFile, OpenOptions, Store};

/// fail2ban's default database path.
const DEFAULT_DB: &str = "/var/lib/fail2ban/fail2ban.sqlite3";
/// fail2ban's default configuration directory.
const DEFAULT_CONF: &str = "/etc/fail2ban";

const USAGE: &str = "Usage: f2b import-db FILE [--db DEST] [-c DIR]\n\n\
Copies the jails, ban history, current bans and log positions of the fail2ban\n\
database FILE (schema 1..4, opened read-only) into f2b's database.\n\n\
Options:\n\
  --db DEST   destination database (default: dbfile of DIR/fail2ban.conf)\n\
  -c DIR      configuration directory (default: /etc/fail2ban)\n\
  -h, --help  this help\n";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    src: PathBuf,
    dest: Option<PathBuf>,
    conf: PathBuf,
}

/// Parses the arguments after `import-db`. `Ok(None)` means: help was asked for.
fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut src = None;
    let mut dest = None;
    let mut conf = PathBuf::from(DEFAULT_CONF);
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut value = |name: &str| -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("option {name} requires an argument"))
        };
        match a {
            "-h" | "--help" => return Ok(None),
            "--db" => dest = Some(PathBuf::from(value("--db")?)),
            "-c" | "--conf" => conf = PathBuf::from(value(a)?),
            _ if a.starts_with("--db=") => dest = Some(PathBuf::from(&a[5..])),
            _ if a.starts_with("--conf=") => conf = PathBuf::from(&a[7..]),
            _ if a.starts_with("-c") && a.len() > 2 => conf = PathBuf::from(&a[2..]),
            _ if a.starts_with('-') && a != "-" => return Err(format!("unknown option {a}")),
            _ => {
                if src.is_some() {
                    return Err(format!("unexpected argument {a}"));
                }
                src = Some(PathBuf::from(a));
            }
        }
        i += 1;
    }
    let src = src.ok_or("missing the database FILE to import")?;
    Ok(Some(Args { src, dest, conf }))
}

/// The `dbfile` configured in `conf`'s `fail2ban.conf`, as fail2ban reads it.
fn configured_db(conf: &Path) -> Result<DbFile, String> {
    if !conf.join("fail2ban.conf").exists() && !conf.join("fail2ban.local").exists() {
        return Ok(DbFile::Path(PathBuf::from(DEFAULT_DB)));
    }
    let lo = f2b_config::LoadOptions {
        allow_no_files: true,
        ignore_wrong: true,
        ..Default::default()
    };
    let cfg = f2b_config::load_dir(conf, &lo)
        .map_err(|e| format!("cannot read the configuration in {}: {e}", conf.display()))?;
    let v = cfg
        .general
        .get("dbfile")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_DB.to_owned());
    Ok(DbFile::parse(&v))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn run(a: &Args) -> Result<String, String> {
    let dest = match &a.dest {
        Some(d) => d.clone(),
        None => match configured_db(&a.conf)? {
            DbFile::Path(p) => p,
            DbFile::Memory | DbFile::Disabled => {
                return Err(format!(
                    "the configuration in {} has no database file (dbfile is :memory: or None); \
                     give one with --db",
                    a.conf.display()
                ))
            }
        },
    };
    if !a.src.is_file() {
        return Err(format!("{}: no such database file", a.src.display()));
    }
    let t = now();
    let store = Store::open(&dest, &OpenOptions::new(t)).map_err(|e| e.to_string())?;
    let stats = store.import_db(&a.src).map_err(|e| e.to_string())?;
    let active = store
        .current_bans(&CurrentBansQuery::at(t))
        .map_err(|e| e.to_string())?;
    let mut per_jail: std::collections::BTreeMap<&str, usize> = Default::default();
    for b in &active {
        *per_jail.entry(b.jail.as_str()).or_default() += 1;
    }
    let mut out = format!(
        "Imported {} (schema version {}) into {}:\n\
         \x20 jails added:          {}\n\
         \x20 ban history rows:     {}\n\
         \x20 current-ban rows:     {}\n\
         \x20 log positions:        {}\n\
         Active bans now in {} (restored at the next f2b start): {}\n",
        a.src.display(),
        stats.source_version,
        dest.display(),
        stats.jails,
        stats.bans,
        stats.bips,
        stats.logs,
        dest.display(),
        active.len(),
    );
    for (jail, n) in per_jail {
        out.push_str(&format!("  {jail}: {n}\n"));
    }
    Ok(out)
}

/// Entry point: returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let a = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("f2b import-db: {e}\n\n{USAGE}");
            return 255;
        }
    };
    match run(&a) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("f2b import-db: {e}");
            255
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_forms() {
        let a = parse(&s(&["x.db", "--db", "d.db", "-c", "/c"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.src, PathBuf::from("x.db"));
        assert_eq!(a.dest, Some(PathBuf::from("d.db")));
        assert_eq!(a.conf, PathBuf::from("/c"));
        let a = parse(&s(&["--db=d", "-c/e", "y"])).unwrap().unwrap();
        assert_eq!(
            (a.src, a.dest, a.conf),
            ("y".into(), Some("d".into()), "/e".into())
        );
        let a = parse(&s(&["z"])).unwrap().unwrap();
        assert_eq!((a.dest, a.conf), (None, PathBuf::from(DEFAULT_CONF)));
        assert_eq!(parse(&s(&["-h"])).unwrap(), None);
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert!(parse(&s(&[])).is_err());
        assert!(parse(&s(&["a", "b"])).is_err());
        assert!(parse(&s(&["a", "--db"])).is_err());
        assert!(parse(&s(&["a", "--frob"])).is_err());
    }

    #[test]
    fn default_db_without_configuration() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            configured_db(d.path()).unwrap(),
            DbFile::Path(PathBuf::from(DEFAULT_DB))
        );
    }

    #[test]
    fn configured_db_from_fail2ban_conf_and_local() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("fail2ban.conf"),
            "[Definition]\ndbfile = /x/a.sqlite3\n",
        )
        .unwrap();
        assert_eq!(
            configured_db(d.path()).unwrap(),
            DbFile::Path(PathBuf::from("/x/a.sqlite3"))
        );
        std::fs::write(
            d.path().join("fail2ban.local"),
            "[Definition]\ndbfile = :memory:\n",
        )
        .unwrap();
        assert_eq!(configured_db(d.path()).unwrap(), DbFile::Memory);
    }
}
