//! `ignoreip`, `ignoreself`, `ignorecommand` and `ignorecache`.
//!
//! Order of checks (fail2ban's `_inIgnoreIPList`): the ignore cache (a hit
//! answers silently), own addresses (`ignoreself`), single IPs of
//! `ignoreip`, then its subnets / DNS names / `file:` lists in the order
//! given, then `ignorecommand`.  Every outside fact (DNS answers, own
//! addresses, files, the command's verdict) comes through [`IgnoreEnv`];
//! DNS answers and own addresses are cached for 5 minutes like fail2ban.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;

use f2b_core::addr::{Addr, AddrError, IpNet};

use crate::ticket::Ticket;

/// Why an id was ignored: the `<by>` of fail2ban's
/// `[jail] Ignore <id> by <by>` line ([`IgnoreSource::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreSource {
    /// Own address (`ignoreself`): "ignoreself rule".
    SelfRule,
    /// An `ignoreip` IP, subnet or `file:` entry: "ip".
    Ip,
    /// An `ignoreip` DNS name: "dns".
    Dns,
    /// `ignorecommand` exited 0: "command".
    Command,
}

impl IgnoreSource {
    /// The text fail2ban logs after "by".
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreSource::SelfRule => "ignoreself rule",
            IgnoreSource::Ip => "ip",
            IgnoreSource::Dns => "dns",
            IgnoreSource::Command => "command",
        }
    }
}

/// Result of an ignore check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreResult {
    /// Not ignored: count the failure.
    NotIgnored,
    /// Ignored; log `[jail] Ignore <id> by <source>`.
    Ignored(IgnoreSource),
    /// Ignored by an `ignorecache` hit (fail2ban logs nothing).
    IgnoredCached,
}

impl IgnoreResult {
    /// True unless [`IgnoreResult::NotIgnored`].
    pub fn is_ignored(self) -> bool {
        self != IgnoreResult::NotIgnored
    }
}

/// Identity of a file's version (reload when it changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Modification time (nanoseconds since the epoch).
    pub mtime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The outside world the ignore rules need; the server implements it.
pub trait IgnoreEnv {
    /// Resolves a host name to its IPv4/IPv6 addresses (empty if none).
    fn resolve(&mut self, name: &str) -> Vec<IpAddr>;
    /// This host's own addresses (fail2ban: addresses of `localhost`, the
    /// hostname and the FQDN).
    fn self_ips(&mut self) -> Vec<IpAddr>;
    /// Version stamp of `path`, `None` if it cannot be stat'ed.
    fn file_stamp(&mut self, path: &str) -> Option<FileStamp>;
    /// Contents of `path`.
    fn read_file(&mut self, path: &str) -> Result<String, String>;
    /// Runs `ignorecommand` (the template; the server substitutes `<ip>`
    /// and other tags from `id` / `ticket`): `Ok(true)` = exit 0 (ignore),
    /// `Ok(false)` = exit 1, `Err` = failed to run (treated as not ignored).
    fn ignore_command(
        &mut self,
        command: &str,
        id: &Addr,
        ticket: Option<&Ticket>,
    ) -> Result<bool, String>;
    /// Renders the `ignorecache` key template.  Default: `<ip>`, `<fid>`,
    /// `<family>`, `<ip-rev>` and `<F-*>` from the ticket; other tags stay.
    fn render_key(&mut self, template: &str, id: &Addr, ticket: Option<&Ticket>) -> String {
        render_key(template, id, ticket)
    }
}

/// The default cache-key renderer (see [`IgnoreEnv::render_key`]).  Without
/// a ticket only `<ip>` is replaced (as fail2ban does).
pub fn render_key(template: &str, id: &Addr, ticket: Option<&Ticket>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let tag = &after[..close];
        let ip = ticket.map_or(id, |t| t.ip());
        let val: Option<String> = match (tag, ticket) {
            ("ip", _) => Some(ip.to_string()),
            ("fid", Some(t)) => Some(t.id.to_string()),
            ("family", Some(_)) => ip.family().map(str::to_owned),
            ("ip-rev", Some(_)) => Some(ip.ip_rev()),
            (t, Some(tk)) if t.starts_with("F-") => tk.data(t).map(str::to_owned),
            _ => None,
        };
        match val {
            Some(v) => out.push_str(&v),
            None => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// fail2ban's `Utils.Cache`: FIFO eviction when full, per-entry expiry.
#[derive(Debug, Clone)]
pub struct TtlCache<K, V> {
    map: HashMap<K, (V, f64, u64)>,
    order: BTreeMap<u64, K>,
    seq: u64,
    max_count: usize,
    max_time: f64,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache holding at most `max_count` entries for `max_time` seconds.
    pub fn new(max_count: usize, max_time: f64) -> Self {
        TtlCache {
            map: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            max_count,
            max_time,
        }
    }
    /// `(max_count, max_time)`.
    pub fn limits(&self) -> (usize, f64) {
        (self.max_count, self.max_time)
    }
    /// Number of entries (including expired ones not yet evicted).
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// The value if present and not expired (an expired entry is dropped).
    pub fn get(&mut self, k: &K, now: f64) -> Option<V> {
        let (v, exp, seq) = self.map.get(k)?.clone();
        if exp > now {
            return Some(v);
        }
        self.map.remove(k);
        self.order.remove(&seq);
        None
    }
    /// Stores `v` for `k`.
    pub fn set(&mut self, k: K, v: V, now: f64) {
        if self.map.len() >= self.max_count {
            while let Some((&seq, _)) = self.order.iter().next() {
                let Some(key) = self.order.remove(&seq) else {
                    break;
                };
                let Some((_, exp, _)) = self.map.remove(&key) else {
                    continue;
                };
                if exp > now && self.map.len() < self.max_count {
                    break;
                }
            }
        }
        let exp = now + self.max_time;
        if let Some(e) = self.map.get_mut(&k) {
            e.0 = v;
            e.1 = exp;
        } else {
            self.seq += 1;
            self.order.insert(self.seq, k.clone());
            self.map.insert(k, (v, exp, self.seq));
        }
    }
    /// Empties the cache.
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

/// Configuration of `ignorecache` (`key="<ip>", max-count=100, max-time=5m`).
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreCacheConfig {
    /// Key template (tags replaced per failure).
    pub key: String,
    /// Maximum entries (fail2ban default 100).
    pub max_count: usize,
    /// Entry lifetime in seconds (fail2ban default 300).
    pub max_time: f64,
}

#[derive(Debug, Clone)]
struct FileList {
    path: String,
    stamp: Option<FileStamp>,
    next_check: f64,
    loaded: bool,
    ips: HashSet<IpAddr>,
    nets: Vec<IpNet>,
    names: Vec<String>,
}

#[derive(Debug, Clone)]
enum Entry {
    Net(IpNet),
    Dns(String),
    File(Box<FileList>),
}

impl Entry {
    fn text(&self) -> String {
        match self {
            Entry::Net(n) => n.to_string(),
            Entry::Dns(d) => d.clone(),
            Entry::File(f) => format!("file:{}", f.path),
        }
    }
}

/// Error changing the ignore list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// The entry does not parse.
    #[error("{0}")]
    Addr(#[from] AddrError),
    /// `delignoreip` of an entry that is not in the list.
    #[error("{entry:?} is not in the ignore list")]
    NotListed {
        /// The entry given.
        entry: String,
    },
}

/// Minimum seconds between checks of a `file:` list for changes.
pub const FILE_CHECK_INTERVAL: f64 = 1.0;
/// Lifetime of cached DNS answers and own addresses (fail2ban: 5 minutes).
pub const DNS_CACHE_TIME: f64 = 300.0;

/// The ignore rules of one jail.
#[derive(Debug, Clone)]
pub struct IgnoreList {
    singles: Vec<IpAddr>,
    single_set: HashSet<IpAddr>,
    list: Vec<Entry>,
    ignore_self: bool,
    command: Option<String>,
    cache: Option<(IgnoreCacheConfig, TtlCache<String, bool>)>,
    dns: TtlCache<String, Vec<IpAddr>>,
    self_ips: Option<(HashSet<IpAddr>, f64)>,
    warnings: Vec<String>,
}

impl Default for IgnoreList {
    fn default() -> Self {
        IgnoreList {
            singles: Vec::new(),
            single_set: HashSet::new(),
            list: Vec::new(),
            ignore_self: true,
            command: None,
            cache: None,
            dns: TtlCache::new(1000, DNS_CACHE_TIME),
            self_ips: None,
            warnings: Vec::new(),
        }
    }
}

fn file_path(entry: &str) -> Option<String> {
    let p = entry.strip_prefix("file:")?;
    let trimmed = p.trim_start_matches('/');
    Some(if trimmed.len() < p.len() {
        format!("/{trimmed}")
    } else {
        p.to_owned()
    })
}

impl IgnoreList {
    /// `addignoreip`: adds an IP, subnet, DNS name or `file:PATH`.
    /// Returns `Ok(false)` for an exact duplicate (fail2ban logs
    /// "Ignore duplicate ..." and skips it); empty text is a no-op.
    pub fn add(&mut self, text: &str) -> Result<bool, IgnoreError> {
        if text.is_empty() {
            return Ok(false);
        }
        if let Some(path) = file_path(text) {
            if self
                .list
                .iter()
                .any(|e| matches!(e, Entry::File(f) if f.path == path))
            {
                return Ok(false);
            }
            self.list.push(Entry::File(Box::new(FileList {
                path,
                stamp: None,
                next_check: f64::NEG_INFINITY,
                loaded: false,
                ips: HashSet::new(),
                nets: Vec::new(),
                names: Vec::new(),
            })));
            return Ok(true);
        }
        match Addr::parse(text)? {
            Addr::Ip(ip) => {
                if !self.single_set.insert(ip) {
                    return Ok(false);
                }
                self.singles.push(ip);
            }
            Addr::Net(n) => {
                if self
                    .list
                    .iter()
                    .any(|e| matches!(e, Entry::Net(m) if *m == n))
                {
                    return Ok(false);
                }
                self.list.push(Entry::Net(n));
            }
            Addr::Raw(name) => {
                if self
                    .list
                    .iter()
                    .any(|e| matches!(e, Entry::Dns(m) if *m == name))
                {
                    return Ok(false);
                }
                self.list.push(Entry::Dns(name));
            }
        }
        Ok(true)
    }

    /// `delignoreip`: removes one entry.
    pub fn remove(&mut self, text: &str) -> Result<(), IgnoreError> {
        let idx = if let Some(path) = file_path(text) {
            self.list
                .iter()
                .position(|e| matches!(e, Entry::File(f) if f.path == path))
        } else {
            match Addr::parse(text)? {
                Addr::Ip(ip) => {
                    if self.single_set.remove(&ip) {
                        self.singles.retain(|x| *x != ip);
                        return Ok(());
                    }
                    None
                }
                Addr::Net(n) => self
                    .list
                    .iter()
                    .position(|e| matches!(e, Entry::Net(m) if *m == n)),
                Addr::Raw(name) => self
                    .list
                    .iter()
                    .position(|e| matches!(e, Entry::Dns(m) if *m == name)),
            }
        };
        match idx {
            Some(i) => {
                self.list.remove(i);
                Ok(())
            }
            None => Err(IgnoreError::NotListed {
                entry: text.to_owned(),
            }),
        }
    }

    /// Removes all entries.
    pub fn clear(&mut self) {
        self.singles.clear();
        self.single_set.clear();
        self.list.clear();
    }

    /// `get <jail> ignoreip`: subnets/names/files first, then single IPs.
    pub fn entries(&self) -> Vec<String> {
        self.list
            .iter()
            .map(Entry::text)
            .chain(self.singles.iter().map(|ip| Addr::Ip(*ip).to_string()))
            .collect()
    }

    /// `ignoreself`.
    pub fn ignore_self(&self) -> bool {
        self.ignore_self
    }
    /// Sets `ignoreself`.
    pub fn set_ignore_self(&mut self, v: bool) {
        self.ignore_self = v;
    }
    /// `ignorecommand` (None if unset).
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }
    /// Sets `ignorecommand` (empty = none).
    pub fn set_command(&mut self, cmd: Option<&str>) {
        self.command = cmd.filter(|c| !c.is_empty()).map(str::to_owned);
    }
    /// `ignorecache` settings.
    pub fn cache_config(&self) -> Option<&IgnoreCacheConfig> {
        self.cache.as_ref().map(|(c, _)| c)
    }
    /// Sets (or with `None` removes) `ignorecache`; the cache starts empty.
    pub fn set_cache(&mut self, cfg: Option<IgnoreCacheConfig>) {
        self.cache = cfg.map(|c| {
            let cache = TtlCache::new(c.max_count, c.max_time);
            (c, cache)
        });
    }

    /// Problems met while loading `file:` lists since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn resolve(&mut self, name: &str, now: f64, env: &mut dyn IgnoreEnv) -> Vec<IpAddr> {
        if let Some(v) = self.dns.get(&name.to_owned(), now) {
            return v;
        }
        let v: Vec<IpAddr> = env
            .resolve(name)
            .into_iter()
            .map(f2b_core::addr::normalize)
            .collect();
        self.dns.set(name.to_owned(), v.clone(), now);
        v
    }

    fn is_self(&mut self, ip: &IpAddr, now: f64, env: &mut dyn IgnoreEnv) -> bool {
        match &self.self_ips {
            Some((set, exp)) if *exp > now => set.contains(ip),
            _ => {
                let set: HashSet<IpAddr> = env
                    .self_ips()
                    .into_iter()
                    .map(f2b_core::addr::normalize)
                    .collect();
                let hit = set.contains(ip);
                self.self_ips = Some((set, now + DNS_CACHE_TIME));
                hit
            }
        }
    }

    fn refresh_file(
        f: &mut FileList,
        now: f64,
        env: &mut dyn IgnoreEnv,
        warnings: &mut Vec<String>,
    ) {
        if now < f.next_check && f.loaded {
            return;
        }
        f.next_check = now + FILE_CHECK_INTERVAL;
        let stamp = env.file_stamp(&f.path);
        if f.loaded && stamp == f.stamp {
            return;
        }
        f.loaded = true;
        f.stamp = stamp;
        f.ips.clear();
        f.nets.clear();
        f.names.clear();
        if stamp.is_none() {
            warnings.push(format!("ignoreip file {:?} is not accessible", f.path));
            return;
        }
        let text = match env.read_file(&f.path) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!("ignoreip file {:?}: {e}", f.path));
                return;
            }
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for tok in line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
            {
                match Addr::parse(tok) {
                    Ok(Addr::Ip(ip)) => {
                        f.ips.insert(ip);
                    }
                    Ok(Addr::Net(n)) => f.nets.push(n),
                    Ok(Addr::Raw(n)) => f.names.push(n),
                    Err(e) => warnings.push(format!("ignoreip file {:?}: {e}", f.path)),
                }
            }
        }
    }

    /// fail2ban's `inIgnoreIPList(id)`; `ticket` is the failure being
    /// checked (`None` for restored bans and direct queries).
    pub fn check(
        &mut self,
        id: &Addr,
        ticket: Option<&Ticket>,
        now: f64,
        env: &mut dyn IgnoreEnv,
    ) -> IgnoreResult {
        let key = match &self.cache {
            Some((cfg, _)) => {
                let tpl = cfg.key.clone();
                Some(env.render_key(&tpl, id, ticket))
            }
            None => None,
        };
        if let (Some(k), Some((_, c))) = (&key, &mut self.cache) {
            if let Some(v) = c.get(k, now) {
                return if v {
                    IgnoreResult::IgnoredCached
                } else {
                    IgnoreResult::NotIgnored
                };
            }
        }
        let set_cache = |s: &mut Self, v: bool| {
            if let (Some(k), Some((_, c))) = (&key, &mut s.cache) {
                c.set(k.clone(), v, now);
            }
        };
        if let Addr::Ip(ip) = id {
            if self.ignore_self && self.is_self(ip, now, env) {
                set_cache(self, true);
                return IgnoreResult::Ignored(IgnoreSource::SelfRule);
            }
            if self.single_set.contains(ip) {
                return IgnoreResult::Ignored(IgnoreSource::Ip);
            }
        }
        if id.is_ip() {
            for i in 0..self.list.len() {
                let hit = match &mut self.list[i] {
                    Entry::Net(n) => id.is_in_net(n).then_some(IgnoreSource::Ip),
                    Entry::Dns(name) => {
                        let name = name.clone();
                        match id {
                            Addr::Ip(ip) => self.resolve(&name, now, env).contains(ip),
                            _ => false,
                        }
                        .then_some(IgnoreSource::Dns)
                    }
                    Entry::File(f) => {
                        Self::refresh_file(f, now, env, &mut self.warnings);
                        let mut hit = match id {
                            Addr::Ip(ip) => f.ips.contains(ip),
                            _ => false,
                        } || f.nets.iter().any(|n| id.is_in_net(n));
                        if !hit {
                            if let Addr::Ip(ip) = id {
                                for name in f.names.clone() {
                                    if self.resolve(&name, now, env).contains(ip) {
                                        hit = true;
                                        break;
                                    }
                                }
                            }
                        }
                        hit.then_some(IgnoreSource::Ip)
                    }
                };
                if let Some(src) = hit {
                    set_cache(self, true);
                    return IgnoreResult::Ignored(src);
                }
            }
        }
        if let Some(cmd) = self.command.clone() {
            let ignore = env.ignore_command(&cmd, id, ticket).unwrap_or(false);
            set_cache(self, ignore);
            return if ignore {
                IgnoreResult::Ignored(IgnoreSource::Command)
            } else {
                IgnoreResult::NotIgnored
            };
        }
        set_cache(self, false);
        IgnoreResult::NotIgnored
    }

    /// Resolves a DNS name through the cache (used for `unbanip <name>`).
    pub fn resolve_cached(&mut self, name: &str, now: f64, env: &mut dyn IgnoreEnv) -> Vec<IpAddr> {
        self.resolve(name, now, env)
    }
}
