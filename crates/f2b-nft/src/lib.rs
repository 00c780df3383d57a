//! Native nftables ban backend for f2b.
//!
//! One `inet` table (default `f2b-table`) holds, per jail, four sets
//! (`f2b-<jail>-v4`/`-v6` hash sets of single addresses, `-n4`/`-n6`
//! interval sets of CIDR prefixes, all with `flags timeout`) and a base
//! chain `f2b-<jail>` hooked at `input` with a priority before the usual
//! filter chains (default -1), so banned packets are refused before any
//! `ct state established accept`. Element timeouts carry the remaining
//! bantime: the kernel expires bans even when f2b is not running.
//!
//! The control plane (table/sets/chains/rules) goes through libnftables
//! (loaded with dlopen) in nft syntax; the hot path (set elements) and the
//! connection teardown (ctnetlink, sock_diag) speak netlink directly. No
//! process is spawned per ban. See docs/arch/nft.md.

pub mod libnft;
pub mod netns;
mod nfset;
mod nl;
pub mod ports;
mod teardown;

use f2b_core::addr::IpNet;
use nfset::{Op, WireElem};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use ports::{PortError, PortRange, Services};
pub use teardown::TeardownStats;

/// Errors of the nftables backend.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// libnftables could not be loaded.
    #[error(transparent)]
    Library(#[from] libnft::LibError),
    /// A netlink socket could not be opened or used.
    #[error("netlink {what}: {source}")]
    Netlink {
        /// Which socket/operation.
        what: &'static str,
        /// OS error.
        source: std::io::Error,
    },
    /// The kernel refused a netlink request.
    #[error("kernel refused {what} on set {set} of table {table}: {message}")]
    Kernel {
        /// Operation.
        what: &'static str,
        /// Table name.
        table: String,
        /// Set name.
        set: String,
        /// errno.
        errno: i32,
        /// Rendered error (with extended ack text when present).
        message: String,
    },
    /// libnftables rejected a control-plane script.
    #[error("nft {op} for jail {jail:?} in table {table}: {error}")]
    Script {
        /// What was being done (ensure_jail, remove_jail, teardown).
        op: &'static str,
        /// Table name.
        table: String,
        /// Jail name (empty for table-wide operations).
        jail: String,
        /// libnftables' error text.
        error: String,
    },
    /// A jail was used before [`NftBackend::ensure_jail`].
    #[error("jail {jail:?} is not set up in the nftables backend")]
    UnknownJail {
        /// Jail name.
        jail: String,
    },
    /// The jail's `port` value is invalid.
    #[error("jail {jail:?}: {source}")]
    Ports {
        /// Jail name.
        jail: String,
        /// Parse error.
        source: PortError,
    },
    /// The jail's `protocol` value is invalid.
    #[error("jail {jail:?}: invalid protocol {protocol:?}: {reason}")]
    Protocol {
        /// Jail name.
        jail: String,
        /// The value.
        protocol: String,
        /// Why.
        reason: &'static str,
    },
    /// An option value is invalid.
    #[error("invalid nftables option {option}: {reason}")]
    Option {
        /// Option name.
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// Result alias.
pub type Result<T, E = NftError> = std::result::Result<T, E>;

/// Backend options (one table per backend).
#[derive(Debug, Clone)]
pub struct NftOptions {
    /// nftables table name (family `inet`). Default `f2b-table`.
    pub table: String,
    /// Priority of the jails' input base chains. Default -1 (before
    /// `filter` = 0, so before typical `ct state established accept`).
    pub hook_priority: i32,
    /// Keep the table and its bans when [`NftBackend::stop`] is called (the
    /// kernel still expires them by timeout). Default false.
    pub keep_on_stop: bool,
    /// libnftables to dlopen. Default `libnftables.so.1`.
    pub library: String,
    /// Services file for port names. Default `/etc/services`.
    pub services: PathBuf,
    /// Reconciliation leaves an element alone when its kernel expiry and
    /// the desired remaining bantime differ by at most this. Default 5 s.
    pub reconcile_tolerance: Duration,
    /// Single-address bans of a jail are spread over this many sets per
    /// family (a power of two, 1..=256), dispatched by one `vmap` lookup on
    /// the address's low bits. The kernel dumps a set in time quadratic in
    /// its size (each netlink dump chunk re-walks the set from the start),
    /// so shards keep start-up reconciliation of a million bans near a
    /// second; packet cost stays one small vmap lookup plus one hash
    /// lookup. Default 64.
    pub shards: usize,
}

impl Default for NftOptions {
    fn default() -> Self {
        NftOptions {
            table: "f2b-table".into(),
            hook_priority: -1,
            keep_on_stop: false,
            library: "libnftables.so.1".into(),
            services: PathBuf::from("/etc/services"),
            reconcile_tolerance: Duration::from_secs(5),
            shards: 64,
        }
    }
}

/// What happens to a banned packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocktype {
    /// `reject`: ICMP / ICMPv6 port-unreachable (fail2ban's default).
    Reject,
    /// `drop`: silently discard.
    Drop,
    /// A verbatim nft verdict statement, e.g. `reject with icmpx type
    /// admin-prohibited`.
    Raw(String),
}

impl Blocktype {
    /// Parses fail2ban's `blocktype` value (case-insensitive `reject` /
    /// `drop`, anything else verbatim).
    pub fn parse(s: &str) -> Blocktype {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "" | "reject" => Blocktype::Reject,
            "drop" => Blocktype::Drop,
            _ => Blocktype::Raw(t.to_string()),
        }
    }

    fn stmt(&self) -> &str {
        match self {
            Blocktype::Reject => "reject",
            Blocktype::Drop => "drop",
            Blocktype::Raw(s) => s,
        }
    }
}

/// A jail's firewall shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSpec {
    /// Jail name.
    pub name: String,
    /// fail2ban `port` value (`ssh`, `http,https`, `1000:2000`); ignored
    /// when `allports`.
    pub ports: String,
    /// fail2ban `protocol` value (`tcp`, `udp`, `tcp,udp`, `all`).
    pub protocol: String,
    /// Block every port (nftables-allports).
    pub allports: bool,
    /// What to do with banned packets.
    pub blocktype: Blocktype,
    /// Tear down open connections of banned addresses (conntrack delete +
    /// SOCK_DESTROY). Default on.
    pub teardown: bool,
    /// Netfilter hook of the jail's chain (fail2ban's `chain_hook`):
    /// `input` (default), `forward` (routed/container traffic) or
    /// `prerouting`.
    pub chain_hook: String,
    /// Priority of the jail's chain (fail2ban's `chain_priority`); `None`
    /// uses [`NftOptions::hook_priority`].
    pub chain_priority: Option<i32>,
}

impl JailSpec {
    /// A multiport tcp jail with reject and teardown on.
    pub fn new(name: &str, ports: &str) -> JailSpec {
        JailSpec {
            name: name.into(),
            ports: ports.into(),
            protocol: "tcp".into(),
            allports: false,
            blocktype: Blocktype::Reject,
            teardown: true,
            chain_hook: "input".into(),
            chain_priority: None,
        }
    }

    /// True if a jail's `banaction` name is served natively by this crate:
    /// `nftables`, `nftables-multiport`, `nftables-allports`, `f2b-nft`.
    pub fn is_native_action(name: &str) -> bool {
        matches!(
            name.trim(),
            "nftables" | "nftables-multiport" | "nftables-allports" | "f2b-nft"
        )
    }

    /// Builds a spec from a native action's name and its resolved options
    /// (`get("port")` etc., after the server's interpolation of the jail's
    /// values). Options read: `type` (multiport/allports; default from the
    /// action name, multiport for `nftables`/`f2b-nft`), `port` (default
    /// `ssh`), `protocol` (default `tcp`), `blocktype` (default `reject`),
    /// `chain_hook` (default `input`), `chain_priority`, and our own
    /// `teardown` (boolean, default on).
    pub fn from_action(
        jail: &str,
        action: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<JailSpec> {
        let bad = |option: &'static str, value: String, what: &str| NftError::Option {
            option,
            reason: format!("jail {jail:?}: {value:?} {what}"),
        };
        let ty = get("type").map(|t| t.trim().to_ascii_lowercase());
        let allports = match ty.as_deref() {
            Some("allports") => true,
            Some("multiport") => false,
            Some(other) => {
                return Err(bad(
                    "type",
                    other.to_string(),
                    "is not multiport or allports (custom rules need the shell action)",
                ))
            }
            None => action.trim() == "nftables-allports",
        };
        let teardown = match get("teardown") {
            None => true,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "1" | "yes" | "true" | "on" => true,
                "0" | "no" | "false" | "off" => false,
                _ => return Err(bad("teardown", v, "is not a boolean")),
            },
        };
        let chain_priority = match get("chain_priority") {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<i32>()
                    .map_err(|_| bad("chain_priority", v.clone(), "is not an integer"))?,
            ),
        };
        let nonempty = |k: &str, d: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| d.to_string())
        };
        Ok(JailSpec {
            name: jail.to_string(),
            ports: nonempty("port", "ssh"),
            protocol: nonempty("protocol", "tcp"),
            allports,
            blocktype: Blocktype::parse(&nonempty("blocktype", "reject")),
            teardown,
            chain_hook: nonempty("chain_hook", "input"),
            chain_priority,
        })
    }
}

/// What the kernel and libraries support, probed once in
/// [`NftBackend::new`]. `None` means supported; `Some(reason)` means the
/// feature is off (the backend carries on without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The libnftables that was loaded.
    pub library: String,
    /// Why conntrack deletion is unavailable, if it is.
    pub conntrack: Option<String>,
    /// Why SOCK_DESTROY is unavailable, if it is.
    pub sock_destroy: Option<String>,
}

impl Capabilities {
    /// One line per missing feature, to log once at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(r) = &self.conntrack {
            v.push(format!("connection teardown: conntrack deletion off: {r}"));
        }
        if let Some(r) = &self.sock_destroy {
            v.push(format!("connection teardown: socket destroy off: {r}"));
        }
        v
    }
}

/// One ban as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBan {
    /// Address or prefix.
    pub net: IpNet,
    /// Timeout the element was created with (`None`: permanent).
    pub timeout: Option<Duration>,
    /// Time left before the kernel removes it (`None`: permanent).
    pub expires: Option<Duration>,
}

/// Outcome of [`NftBackend::ban`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanReport {
    /// Elements now in the kernel.
    pub applied: usize,
    /// Elements the kernel refused, with the reason.
    pub refused: Vec<(IpNet, String)>,
    /// Connections torn down.
    pub teardown: TeardownStats,
    /// Why teardown failed (the bans themselves are in place).
    pub teardown_error: Option<String>,
}

/// Outcome of [`NftBackend::reconcile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileStats {
    /// Elements found in the kernel.
    pub found: usize,
    /// Elements already right (left untouched).
    pub unchanged: usize,
    /// Missing elements added.
    pub added: usize,
    /// Elements not desired, removed.
    pub removed: usize,
    /// Elements whose timeout was replaced.
    pub updated: usize,
    /// Elements the kernel refused, with the reason.
    pub refused: Vec<(IpNet, String)>,
}

/// Names of one jail's nft objects.
#[derive(Debug, Clone)]
struct JailObjs {
    chain: String,
    /// Sets: `shards` v4 single-address sets, `shards` v6 ones, then the
    /// v4 and v6 prefix (interval) sets.
    sets: Vec<String>,
    /// Per-shard chains (empty with one shard).
    shard_chains: Vec<String>,
    shards: usize,
    teardown: bool,
    /// Teardown filter: protocol numbers (empty = any) and local ports
    /// (empty = any).
    protos: Vec<u8>,
    ports: Vec<PortRange>,
}

/// Index of the set that holds `net` among a jail's `2 * shards + 2` sets.
/// Single addresses are spread over `shards` sets by the low bits of their
/// last byte (what the chain's `saddr & mask` vmap dispatches on).
fn set_index(net: &IpNet, shards: usize) -> usize {
    let low = |last: u8| usize::from(last) & (shards - 1);
    match net.addr() {
        std::net::IpAddr::V4(a) if net.is_single() => low(a.octets()[3]),
        std::net::IpAddr::V6(a) if net.is_single() => shards + low(a.octets()[15]),
        std::net::IpAddr::V4(_) => 2 * shards,
        std::net::IpAddr::V6(_) => 2 * shards + 1,
    }
}

fn is_interval(i: usize, shards: usize) -> bool {
    i >= 2 * shards
}

/// Turns a jail name into an nft identifier part: `[A-Za-z0-9_-]`, other
/// characters replaced, plus a hash suffix when anything was replaced so
/// distinct jails never collide.
fn ident(jail: &str) -> String {
    let clean: String = jail
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(180)
        .collect();
    if clean == jail {
        return clean;
    }
    // FNV-1a, stable across runs.
    let mut h: u32 = 0x811c9dc5;
    for b in jail.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!("{clean}-{h:08x}")
}

fn proto_num(p: &str) -> Option<u8> {
    Some(match p {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "dccp" => 33,
        "udplite" => 136,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        _ => return None,
    })
}

fn is_table_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic())
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn to_ms(d: Duration) -> u64 {
    (d.as_millis().min(u128::from(u64::MAX / 2)) as u64).max(1)
}

/// The native nftables backend. Owns its netlink sockets, bound to the
/// network namespace of the thread that called [`NftBackend::new`].
pub struct NftBackend {
    opts: NftOptions,
    nft: libnft::Nft,
    nfsock: nl::NlSocket,
    ctsock: Option<nl::NlSocket>,
    diagsock: Option<nl::NlSocket>,
    caps: Capabilities,
    services: Services,
    jails: HashMap<String, JailObjs>,
}

impl std::fmt::Debug for NftBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NftBackend")
            .field("opts", &self.opts)
            .field("caps", &self.caps)
            .field("jails", &self.jails.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NftBackend {
    /// Loads libnftables, opens the netlink sockets and probes what the
    /// kernel supports. Touches no ruleset.
    pub fn new(opts: NftOptions) -> Result<NftBackend> {
        if !is_table_name(&opts.table) {
            return Err(NftError::Option {
                option: "table",
                reason: format!(
                    "{:?}: must start with a letter and contain only letters, digits, '_' and '-'",
                    opts.table
                ),
            });
        }
        if !(1..=256).contains(&opts.shards) || !opts.shards.is_power_of_two() {
            return Err(NftError::Option {
                option: "shards",
                reason: format!("{} is not a power of two in 1..=256", opts.shards),
            });
        }
        let nft = libnft::Nft::open(&opts.library)?;
        let nfsock =
            nl::NlSocket::open(libc::NETLINK_NETFILTER).map_err(|source| NftError::Netlink {
                what: "nf_tables socket",
                source,
            })?;
        let mut conntrack = None;
        let ctsock = match nl::NlSocket::open(libc::NETLINK_NETFILTER) {
            Ok(mut s) => match teardown::probe_conntrack(&mut s) {
                Ok(()) => Some(s),
                Err(e) => {
                    conntrack = Some(e);
                    None
                }
            },
            Err(e) => {
                conntrack = Some(format!("netlink socket: {e}"));
                None
            }
        };
        let mut sock_destroy = None;
        let diagsock = match nl::NlSocket::open(libc::NETLINK_SOCK_DIAG) {
            Ok(mut s) => match teardown::probe_sock_destroy(&mut s) {
                Ok(()) => Some(s),
                Err(e) => {
                    sock_destroy = Some(e);
                    None
                }
            },
            Err(e) => {
                sock_destroy = Some(format!("sock_diag socket: {e}"));
                None
            }
        };
        let services = Services::load(&opts.services);
        Ok(NftBackend {
            caps: Capabilities {
                library: opts.library.clone(),
                conntrack,
                sock_destroy,
            },
            opts,
            nft,
            nfsock,
            ctsock,
            diagsock,
            services,
            jails: HashMap::new(),
        })
    }

    /// What the kernel supports (probed once at start-up).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The options in force.
    pub fn options(&self) -> &NftOptions {
        &self.opts
    }

    /// Creates (or updates in place) a jail's sets and chain. Idempotent;
    /// existing bans in its sets are kept; the chain's rules are replaced
    /// atomically (one transaction).
    pub fn ensure_jail(&mut self, spec: &JailSpec) -> Result<()> {
        let id = ident(&spec.name);
        let chain = format!("f2b-{id}");
        let hook = spec.chain_hook.trim().to_ascii_lowercase();
        if !matches!(hook.as_str(), "input" | "forward" | "prerouting") {
            return Err(NftError::Option {
                option: "chain_hook",
                reason: format!(
                    "jail {:?}: {:?} is not input, forward or prerouting",
                    spec.name, spec.chain_hook
                ),
            });
        }
        let k = self.opts.shards;
        let mut sets = Vec::with_capacity(2 * k + 2);
        let mut shard_chains = Vec::new();
        for fam in ["v4", "v6"] {
            for i in 0..k {
                if k == 1 {
                    sets.push(format!("f2b-{id}-{fam}"));
                } else {
                    sets.push(format!("f2b-{id}-{fam}-{i:02x}"));
                    shard_chains.push(format!("f2b-{id}-{fam}-{i:02x}"));
                }
            }
        }
        sets.push(format!("f2b-{id}-n4"));
        sets.push(format!("f2b-{id}-n6"));
        let mut protos: Vec<String> = spec
            .protocol
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
            .collect();
        protos.dedup();
        let all_protos = protos.is_empty() || protos.iter().any(|p| p == "all");
        let mut proto_nums = Vec::new();
        if !all_protos {
            for p in &protos {
                match proto_num(p) {
                    Some(n) => proto_nums.push(n),
                    None => return Err(NftError::Protocol {
                        jail: spec.name.clone(),
                        protocol: spec.protocol.clone(),
                        reason:
                            "unknown protocol (tcp, udp, sctp, dccp, udplite, icmp, icmpv6, all)",
                    }),
                }
            }
        }
        let mut port_ranges = Vec::new();
        let matcher = if spec.allports {
            if all_protos {
                String::new()
            } else {
                format!("meta l4proto {{ {} }} ", protos.join(", "))
            }
        } else {
            if all_protos {
                return Err(NftError::Protocol {
                    jail: spec.name.clone(),
                    protocol: spec.protocol.clone(),
                    reason: "a port list needs a port-carrying protocol (use allports for all)",
                });
            }
            if proto_nums.iter().any(|p| *p == 1 || *p == 58) {
                return Err(NftError::Protocol {
                    jail: spec.name.clone(),
                    protocol: spec.protocol.clone(),
                    reason: "icmp has no ports (use allports)",
                });
            }
            port_ranges =
                ports::parse_ports(&spec.ports, &protos[0], &self.services).map_err(|source| {
                    NftError::Ports {
                        jail: spec.name.clone(),
                        source,
                    }
                })?;
            let plist: Vec<String> = port_ranges.iter().map(|r| r.to_string()).collect();
            format!(
                "meta l4proto {{ {} }} th dport {{ {} }} ",
                protos.join(", "),
                plist.join(", ")
            )
        };
        let t = &self.opts.table;
        let verdict = spec.blocktype.stmt();
        let mut s = String::new();
        s.push_str(&format!("add table inet {t}\n"));
        let v4 = |i: usize| if is_interval(i, k) { i == 2 * k } else { i < k };
        for (i, name) in sets.iter().enumerate() {
            let ty = if v4(i) { "ipv4_addr" } else { "ipv6_addr" };
            let flags = if is_interval(i, k) {
                "interval, timeout"
            } else {
                "timeout"
            };
            s.push_str(&format!(
                "add set inet {t} {name} {{ type {ty}; flags {flags}; }}\n"
            ));
        }
        s.push_str(&format!(
            "add chain inet {t} {chain} {{ type filter hook {hook} priority {}; policy accept; }}\n",
            spec.chain_priority.unwrap_or(self.opts.hook_priority)
        ));
        s.push_str(&format!("flush chain inet {t} {chain}\n"));
        if k == 1 {
            for (i, name) in sets.iter().enumerate().take(2) {
                let fam = if v4(i) { "ip" } else { "ip6" };
                s.push_str(&format!(
                    "add rule inet {t} {chain} {matcher}{fam} saddr @{name} {verdict}\n"
                ));
            }
        } else {
            for (i, sc) in shard_chains.iter().enumerate() {
                let fam = if i < k { "ip" } else { "ip6" };
                s.push_str(&format!(
                    "add chain inet {t} {sc}\nflush chain inet {t} {sc}\n"
                ));
                s.push_str(&format!(
                    "add rule inet {t} {sc} {fam} saddr @{} {verdict}\n",
                    sets[i]
                ));
            }
            for (fam, mask, base) in [
                ("ip", format!("0.0.0.{}", k - 1), 0),
                ("ip6", format!("::{:x}", k - 1), k),
            ] {
                let arms: Vec<String> = (0..k)
                    .map(|j| {
                        let key = if fam == "ip" {
                            format!("0.0.0.{j}")
                        } else {
                            format!("::{j:x}")
                        };
                        format!("{key} : jump {}", shard_chains[base + j])
                    })
                    .collect();
                s.push_str(&format!(
                    "add rule inet {t} {chain} {matcher}{fam} saddr & {mask} vmap {{ {} }}\n",
                    arms.join(", ")
                ));
            }
        }
        for (i, name) in sets.iter().enumerate().skip(2 * k) {
            let fam = if v4(i) { "ip" } else { "ip6" };
            s.push_str(&format!(
                "add rule inet {t} {chain} {matcher}{fam} saddr @{name} {verdict}\n"
            ));
        }
        self.nft.run(&s).map_err(|error| NftError::Script {
            op: "ensure_jail",
            table: t.clone(),
            jail: spec.name.clone(),
            error,
        })?;
        self.jails.insert(
            spec.name.clone(),
            JailObjs {
                chain,
                sets,
                shard_chains,
                shards: k,
                teardown: spec.teardown,
                protos: proto_nums,
                ports: if spec.allports {
                    Vec::new()
                } else {
                    port_ranges
                },
            },
        );
        Ok(())
    }

    fn jail(&self, jail: &str) -> Result<JailObjs> {
        self.jails
            .get(jail)
            .cloned()
            .ok_or_else(|| NftError::UnknownJail {
                jail: jail.to_string(),
            })
    }

    /// Groups items by target set: `(set index, elements, their nets)`.
    fn group<'a>(
        shards: usize,
        items: impl Iterator<Item = (&'a IpNet, Option<Duration>)>,
    ) -> Vec<(Vec<WireElem>, Vec<IpNet>)> {
        let mut g: Vec<(Vec<WireElem>, Vec<IpNet>)> = vec![Default::default(); 2 * shards + 2];
        for (net, ttl) in items {
            let i = set_index(net, shards);
            let (key, end) = nfset::net_keys(net);
            g[i].0.push(WireElem {
                key,
                end,
                timeout_ms: ttl.map(to_ms),
            });
            g[i].1.push(*net);
        }
        g
    }

    fn apply(
        &mut self,
        op: Op,
        objs: &JailObjs,
        groups: Vec<(Vec<WireElem>, Vec<IpNet>)>,
        tolerate: &[i32],
    ) -> Result<(usize, Vec<(IpNet, String)>)> {
        let mut applied = 0;
        let mut refused = Vec::new();
        for (i, (elems, nets)) in groups.into_iter().enumerate() {
            if elems.is_empty() {
                continue;
            }
            let out = nfset::apply(
                &mut self.nfsock,
                op,
                &self.opts.table,
                &objs.sets[i],
                is_interval(i, objs.shards),
                &elems,
                tolerate,
            )
            .map_err(|source| NftError::Netlink {
                what: "set element batch",
                source,
            })?;
            applied += out.applied;
            for (idx, errno, msg) in out.refused {
                let mut m = std::io::Error::from_raw_os_error(errno).to_string();
                if errno == libc::EEXIST && is_interval(i, objs.shards) && op == Op::Add {
                    m = format!("overlaps a prefix already banned ({m})");
                }
                if let Some(x) = msg {
                    m.push_str(&format!(" ({x})"));
                }
                if let Some(n) = nets.get(idx) {
                    refused.push((*n, m));
                }
            }
        }
        Ok((applied, refused))
    }

    /// Adds bans: each `(net, ttl)` with `ttl` the remaining bantime
    /// (`None`: permanent). Re-banning an element already present replaces
    /// its timeout. All elements go to the kernel in as few transactions as
    /// possible (one per ~40k elements). If the jail has teardown on, open
    /// connections from the banned nets are then torn down.
    pub fn ban(&mut self, jail: &str, items: &[(IpNet, Option<Duration>)]) -> Result<BanReport> {
        let objs = self.jail(jail)?;
        let groups = Self::group(objs.shards, items.iter().map(|(n, t)| (n, *t)));
        let (applied, refused) = self.apply(Op::Add, &objs, groups, &[])?;
        let mut rep = BanReport {
            applied,
            refused,
            ..Default::default()
        };
        if objs.teardown && !items.is_empty() {
            let nets: Vec<IpNet> = items
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| !rep.refused.iter().any(|(r, _)| r == n))
                .collect();
            let (stats, err) = self.teardown_conns(&objs, &nets);
            rep.teardown = stats;
            rep.teardown_error = err;
        }
        Ok(rep)
    }

    /// Tears down connections from `nets` that the jail's rules cover
    /// (conntrack entries and local TCP sockets). Returns counts and the
    /// first error, if any.
    pub fn teardown_connections(
        &mut self,
        jail: &str,
        nets: &[IpNet],
    ) -> Result<(TeardownStats, Option<String>)> {
        let objs = self.jail(jail)?;
        Ok(self.teardown_conns(&objs, nets))
    }

    fn teardown_conns(
        &mut self,
        objs: &JailObjs,
        nets: &[IpNet],
    ) -> (TeardownStats, Option<String>) {
        let mut stats = TeardownStats::default();
        let mut err = None;
        let filter = teardown::Filter {
            protos: &objs.protos,
            ports: &objs.ports,
        };
        if let Some(s) = self.ctsock.as_mut() {
            match teardown::conntrack_delete(s, nets, &filter) {
                Ok(n) => stats.conntrack_deleted = n,
                Err(e) => err = Some(format!("conntrack delete: {e}")),
            }
        }
        if let Some(s) = self.diagsock.as_mut() {
            match teardown::destroy_sockets(s, nets, &filter) {
                Ok(n) => stats.sockets_destroyed = n,
                Err(e) => {
                    err.get_or_insert(format!("socket destroy: {e}"));
                }
            }
        }
        (stats, err)
    }

    /// Removes bans. Elements already gone (expired, never added) are not
    /// an error. Returns how many were processed.
    pub fn unban(&mut self, jail: &str, nets: &[IpNet]) -> Result<usize> {
        let objs = self.jail(jail)?;
        let groups = Self::group(objs.shards, nets.iter().map(|n| (n, None)));
        let (applied, refused) = self.apply(Op::Del, &objs, groups, &[libc::ENOENT])?;
        if let Some((net, msg)) = refused.into_iter().next() {
            return Err(NftError::Kernel {
                what: "unban",
                table: self.opts.table.clone(),
                set: format!("{} ({net})", objs.chain),
                errno: 0,
                message: msg,
            });
        }
        Ok(applied)
    }

    /// Reads all of a jail's sets: `(set index, foreign, raw element, ban)`;
    /// `foreign` marks an interval that is not a prefix (added by hand).
    #[allow(clippy::type_complexity)]
    fn dump_jail(
        &mut self,
        objs: &JailObjs,
    ) -> Result<Vec<(usize, bool, Option<WireElem>, KernelBan)>> {
        let mut out = Vec::new();
        let kerr = |set: &String, e: nl::KernelErrorOrIo| NftError::Kernel {
            what: "list set",
            table: self.opts.table.clone(),
            set: set.clone(),
            errno: e.errno(),
            message: e.to_string(),
        };
        for (i, set) in objs.sets.iter().enumerate() {
            if !is_interval(i, objs.shards) {
                nfset::dump_each(
                    &mut self.nfsock,
                    &self.opts.table,
                    set,
                    |key, _, timeout_ms, expires_ms| {
                        let Some(addr) = nfset::key_addr(key) else {
                            return;
                        };
                        let net = IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 });
                        let kb = KernelBan {
                            net,
                            timeout: timeout_ms.map(Duration::from_millis),
                            expires: timeout_ms.and(expires_ms).map(Duration::from_millis),
                        };
                        out.push((i, false, None, kb));
                    },
                )
                .map_err(|e| kerr(set, e))?;
            } else {
                let elems = nfset::dump(&mut self.nfsock, &self.opts.table, set)
                    .map_err(|e| kerr(set, e))?;
                for (start, end) in nfset::pair_intervals(elems) {
                    let net = nfset::interval_to_net(&start.key, end.as_deref());
                    let kb = KernelBan {
                        // A range that is not a prefix (added by hand) is
                        // reported as its start address; reconcile removes
                        // it through its raw keys.
                        net: net.unwrap_or_else(|| {
                            let a = nfset::key_addr(&start.key)
                                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                            IpNet::new(a, if a.is_ipv4() { 32 } else { 128 })
                        }),
                        timeout: start.timeout_ms.map(Duration::from_millis),
                        expires: start
                            .timeout_ms
                            .and(start.expires_ms)
                            .map(Duration::from_millis),
                    };
                    let foreign = net.is_none();
                    out.push((
                        i,
                        foreign,
                        Some(WireElem {
                            key: start.key,
                            end,
                            timeout_ms: None,
                        }),
                        kb,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Lists a jail's bans as the kernel holds them.
    pub fn list(&mut self, jail: &str) -> Result<Vec<KernelBan>> {
        let objs = self.jail(jail)?;
        Ok(self
            .dump_jail(&objs)?
            .into_iter()
            .map(|(_, _, _, kb)| kb)
            .collect())
    }

    /// Makes the kernel's sets equal `desired` (`(net, remaining bantime)`,
    /// `None` = permanent) by applying only the difference: missing elements
    /// are added, undesired ones removed, and elements whose expiry differs
    /// from the desired remaining time by more than
    /// [`NftOptions::reconcile_tolerance`] (or whose permanence differs) are
    /// replaced. Correct elements are not touched.
    pub fn reconcile(
        &mut self,
        jail: &str,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Result<ReconcileStats> {
        let objs = self.jail(jail)?;
        let current = self.dump_jail(&objs)?;
        // Sort-merge diff: both sides sorted by net (cache-friendly and
        // O(n log n) even at a million elements).
        let mut want: Vec<(IpNet, Option<Duration>)> = desired.to_vec();
        want.sort_unstable_by_key(|a| a.0);
        want.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            kept.1 = match (kept.1, later.1) {
                (None, _) | (_, None) => None,
                (Some(a), Some(b)) => Some(a.max(b)),
            };
            true
        });
        let mut current = current;
        // Sort a compact (net, index) list rather than the wide entries.
        let mut order: Vec<(IpNet, u32)> = current
            .iter()
            .enumerate()
            .map(|(i, c)| (c.3.net, i as u32))
            .collect();
        order.sort_unstable();
        let mut stats = ReconcileStats {
            found: current.len(),
            ..Default::default()
        };
        let tol = self.opts.reconcile_tolerance;
        let mut del: Vec<(Vec<WireElem>, Vec<IpNet>)> =
            vec![Default::default(); 2 * objs.shards + 2];
        // (net, desired remaining time, kernel element has a timeout)
        let mut upd: Vec<(IpNet, Option<Duration>, bool)> = Vec::new();
        let mut adds: Vec<(IpNet, Option<Duration>)> = Vec::new();
        let mut wi = 0usize;
        for (_, idx) in order {
            let entry = &mut current[idx as usize];
            let (set, foreign, wire, kb) = (entry.0, entry.1, entry.2.take(), entry.3.clone());
            while wi < want.len() && want[wi].0 < kb.net {
                adds.push(want[wi]);
                wi += 1;
            }
            let matched = !foreign && wi < want.len() && want[wi].0 == kb.net;
            if !matched {
                let wire = wire.unwrap_or_else(|| {
                    let (key, end) = nfset::net_keys(&kb.net);
                    WireElem {
                        key,
                        end,
                        timeout_ms: None,
                    }
                });
                del[set].0.push(wire);
                del[set].1.push(kb.net);
                continue;
            }
            let t = want[wi].1;
            wi += 1;
            let same = match (t, kb.expires) {
                (None, None) => true,
                (Some(w), Some(e)) => w.abs_diff(e) <= tol,
                _ => false,
            };
            if same {
                stats.unchanged += 1;
            } else {
                upd.push((kb.net, t, kb.expires.is_some()));
            }
        }
        adds.extend_from_slice(&want[wi..]);
        if del.iter().any(|g| !g.0.is_empty()) {
            let (n, refused) = self.apply(Op::Del, &objs, del, &[libc::ENOENT])?;
            stats.removed = n;
            stats.refused.extend(refused);
        }
        // Timeout to timeout: re-adding updates the element's timeout in
        // place (atomic). A change of permanence needs delete + add, done
        // as two transactions: those elements are absent for the
        // sub-millisecond between them.
        let (retime, replace): (Vec<_>, Vec<_>) =
            upd.into_iter().partition(|(_, t, had)| t.is_some() && *had);
        if !retime.is_empty() {
            let g = Self::group(objs.shards, retime.iter().map(|(n, t, _)| (n, *t)));
            let (n, refused) = self.apply(Op::Add, &objs, g, &[])?;
            stats.updated += n;
            stats.refused.extend(refused);
        }
        if !replace.is_empty() {
            let g = Self::group(objs.shards, replace.iter().map(|(n, t, _)| (n, *t)));
            let gd = Self::group(objs.shards, replace.iter().map(|(n, _, _)| (n, None)));
            self.apply(Op::Del, &objs, gd, &[libc::ENOENT])?;
            let (n, refused) = self.apply(Op::Add, &objs, g, &[])?;
            stats.updated += n;
            stats.refused.extend(refused);
        }
        if !adds.is_empty() {
            let g = Self::group(objs.shards, adds.iter().map(|(n, t)| (n, *t)));
            let (n, refused) = self.apply(Op::Add, &objs, g, &[])?;
            stats.added = n;
            stats.refused.extend(refused);
        }
        Ok(stats)
    }

    /// Deletes a jail's chain and sets (its bans go with them).
    pub fn remove_jail(&mut self, jail: &str) -> Result<()> {
        let objs = self.jail(jail)?;
        let t = &self.opts.table;
        let mut s = format!("delete chain inet {t} {}\n", objs.chain);
        for c in &objs.shard_chains {
            s.push_str(&format!("delete chain inet {t} {c}\n"));
        }
        for set in &objs.sets {
            s.push_str(&format!("delete set inet {t} {set}\n"));
        }
        self.nft.run(&s).map_err(|error| NftError::Script {
            op: "remove_jail",
            table: t.clone(),
            jail: jail.to_string(),
            error,
        })?;
        self.jails.remove(jail);
        Ok(())
    }

    /// Deletes the whole table (all jails, all bans). Succeeds if the table
    /// does not exist.
    pub fn teardown(&mut self) -> Result<()> {
        let t = &self.opts.table;
        // `add` first makes `delete` succeed when the table is absent.
        let s = format!("add table inet {t}\ndelete table inet {t}\n");
        self.nft.run(&s).map_err(|error| NftError::Script {
            op: "teardown",
            table: t.clone(),
            jail: String::new(),
            error,
        })?;
        self.jails.clear();
        Ok(())
    }

    /// Stop hook for the server: [`NftBackend::teardown`] unless
    /// `keep_on_stop`, in which case the kernel keeps the bans (and expires
    /// them by their timeouts) for the next start's [`NftBackend::reconcile`].
    pub fn stop(&mut self) -> Result<()> {
        if self.opts.keep_on_stop {
            self.jails.clear();
            Ok(())
        } else {
            self.teardown()
        }
    }

    /// Runs an nft command through the backend's libnftables context and
    /// returns its output (diagnostics, e.g. `list table inet f2b-table`).
    pub fn nft_command(&mut self, cmd: &str) -> Result<String> {
        self.nft.run(cmd).map_err(|error| NftError::Script {
            op: "nft_command",
            table: self.opts.table.clone(),
            jail: String::new(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_is_stable_and_safe() {
        assert_eq!(ident("sshd"), "sshd");
        assert_eq!(ident("nginx-http-auth"), "nginx-http-auth");
        let a = ident("my jail.1");
        assert!(a.starts_with("my_jail_1-"));
        assert_eq!(a, ident("my jail.1"));
        assert_ne!(ident("a.b"), ident("a b"));
    }

    #[test]
    fn spec_from_action_options() {
        use std::collections::HashMap;
        let o: HashMap<&str, &str> = [
            ("port", "http,https"),
            ("protocol", "tcp"),
            ("blocktype", "drop"),
            ("chain_priority", "-5"),
            ("teardown", "no"),
        ]
        .into_iter()
        .collect();
        let get = |k: &str| o.get(k).map(|v| v.to_string());
        let s = JailSpec::from_action("web", "nftables-multiport", get).unwrap();
        assert_eq!(s.ports, "http,https");
        assert!(!s.allports);
        assert_eq!(s.blocktype, Blocktype::Drop);
        assert_eq!(s.chain_priority, Some(-5));
        assert!(!s.teardown);
        let s = JailSpec::from_action("x", "nftables-allports", |_| None).unwrap();
        assert!(s.allports && s.teardown);
        assert_eq!((s.ports.as_str(), s.protocol.as_str()), ("ssh", "tcp"));
        let s = JailSpec::from_action("x", "nftables", |k| {
            (k == "type").then(|| "allports".to_string())
        })
        .unwrap();
        assert!(s.allports);
        assert!(JailSpec::from_action("x", "nftables", |k| {
            (k == "type").then(|| "custom".to_string())
        })
        .is_err());
        assert!(JailSpec::from_action("x", "f2b-nft", |k| {
            (k == "chain_priority").then(|| "soon".to_string())
        })
        .is_err());
        assert!(JailSpec::is_native_action("nftables-multiport"));
        assert!(!JailSpec::is_native_action("iptables-multiport"));
    }

    #[test]
    fn blocktype_parse() {
        assert_eq!(Blocktype::parse("REJECT"), Blocktype::Reject);
        assert_eq!(Blocktype::parse("drop"), Blocktype::Drop);
        assert_eq!(
            Blocktype::parse("reject with icmpx type admin-prohibited"),
            Blocktype::Raw("reject with icmpx type admin-prohibited".into())
        );
    }

    #[test]
    fn set_index_by_family_and_prefix() {
        let n = |s: &str, p| IpNet::new(s.parse().unwrap(), p);
        assert_eq!(set_index(&n("1.2.3.4", 32), 1), 0);
        assert_eq!(set_index(&n("1.2.3.0", 24), 1), 2);
        assert_eq!(set_index(&n("2001:db8::1", 128), 1), 1);
        assert_eq!(set_index(&n("2001:db8::", 64), 1), 3);
        assert_eq!(set_index(&n("1.2.3.77", 32), 64), 77 & 63);
        assert_eq!(set_index(&n("2001:db8::ff", 128), 64), 64 + 63);
        assert_eq!(set_index(&n("1.2.3.0", 24), 64), 128);
        assert_eq!(set_index(&n("2001:db8::", 64), 64), 129);
    }

    #[test]
    fn bad_options_and_missing_library_fail_with_clear_errors() {
        let e = NftBackend::new(NftOptions {
            library: "libnftables-does-not-exist.so.9".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, NftError::Library(_)), "{e}");
        assert!(e.to_string().contains("libnftables1"), "{e}");
        let e = NftBackend::new(NftOptions {
            shards: 48,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("shards"), "{e}");
        let e = NftBackend::new(NftOptions {
            table: "bad table".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("table"), "{e}");
    }

    #[test]
    fn table_names() {
        assert!(is_table_name("f2b-table"));
        assert!(!is_table_name("1x"));
        assert!(!is_table_name("a b"));
    }
}
