//! Ticket information as action tags (fail2ban's `Actions.ActionInfo`).

use std::net::IpAddr;

/// Address family of a ticket, as fail2ban names it in `<family>` and in
/// conditional keys (`blocktype?family=inet6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`inet4`).
    Inet4,
    /// IPv6 (`inet6`).
    Inet6,
}

impl Family {
    /// `inet4` / `inet6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet4 => "inet4",
            Family::Inet6 => "inet6",
        }
    }

    /// Family of a ticket id (`1.2.3.4`, `2001:db8::1`, `10.0.0.0/8`);
    /// `None` for ids that are not addresses.
    pub fn of_id(id: &str) -> Option<Family> {
        let addr = id.split_once('/').map_or(id, |(a, _)| a);
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => Some(Family::Inet4),
            IpAddr::V6(_) => Some(Family::Inet6),
        }
    }
}

/// What an action needs to know about a ban (fail2ban's `BanTicket` as seen
/// through `ActionInfo`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BanTicket {
    /// The ticket id: an address as fail2ban prints it (`1.2.3.4`,
    /// `2001:db8::1`, `10.0.0.0/24`) or, for `<F-ID>` filters, any text.
    /// Both `<ip>` and `<fid>`.
    pub id: String,
    /// Time of the ticket (`<time>`), seconds since the epoch.
    pub time: f64,
    /// Ban time of this ticket in seconds (`<bantime>`); `None` means the
    /// jail's bantime ([`JailInfo::bantime`]).
    pub bantime: Option<i64>,
    /// `<bancount>`.
    pub bancount: u64,
    /// `<failures>`.
    pub failures: u64,
    /// Matched log lines (`<matches>` joins them with newlines).
    pub matches: Vec<String>,
    /// Whether the ban was restored from the database at start (`<restored>`);
    /// actions with `norestored` skip such tickets.
    pub restored: bool,
    /// Filter captures for `<F-NAME>` tags, keyed like fail2ban's ticket data
    /// (lower-case names; `fid` for `<F-ID>`, `fport` for `<F-PORT>`).
    pub data: TicketData,
    /// Merged tickets of this address over all jails from the database, for
    /// `<ipmatches>` / `<ipfailures>`; `None` falls back to this ticket.
    pub ip_merged: Option<MergedInfo>,
    /// Merged tickets of this address in this jail, for `<ipjailmatches>` /
    /// `<ipjailfailures>`; `None` falls back to this ticket.
    pub ipjail_merged: Option<MergedInfo>,
    /// Ban epoch the ticket was banned in (see `JailActions::ban_epoch`).
    pub ban_epoch: u64,
}

/// A ticket's filter captures (`<F-NAME>` tags): a few key/value pairs, keys
/// unique. A vector, not a map: a B-tree map's first node alone takes ~540 bytes,
/// and a burst queues a ticket per ban until its actions ran (measured: 0.9 MiB
/// of the heap after 1,400 bans, `docs/arch/server-perf.md`).
#[derive(Debug, Clone, Default)]
pub struct TicketData(Vec<(String, String)>);

impl TicketData {
    /// No captures.
    pub fn new() -> TicketData {
        TicketData(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing its value if present).
    pub fn insert(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Equal when they hold the same pairs, in any order (as maps compare).
impl PartialEq for TicketData {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// Later pairs replace earlier ones with the same key (as a map collects).
impl FromIterator<(String, String)> for TicketData {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut d = TicketData::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl<const N: usize> From<[(String, String); N]> for TicketData {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// Merged ban information of one address from the database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergedInfo {
    /// All matches.
    pub matches: Vec<String>,
    /// Sum of failures.
    pub failures: u64,
}

impl BanTicket {
    /// A ticket for `id` at `time` with otherwise default values.
    pub fn new(id: impl Into<String>, time: f64) -> Self {
        BanTicket {
            id: id.into(),
            time,
            ..Default::default()
        }
    }

    /// The ticket's family (`None` if the id is not an address).
    pub fn family(&self) -> Option<Family> {
        Family::of_id(&self.id)
    }
}

/// Jail-wide values for `<jail.banned>`, `<jail.banned_total>`,
/// `<jail.found>`, `<jail.found_total>` and the default `<bantime>`.
/// Implemented by the server; called at render time.
pub trait JailInfo: Send + Sync {
    /// Currently banned count.
    fn banned(&self) -> u64 {
        0
    }
    /// Total bans since start.
    fn banned_total(&self) -> u64 {
        0
    }
    /// Currently failing addresses.
    fn found(&self) -> u64 {
        0
    }
    /// Total failures since start.
    fn found_total(&self) -> u64 {
        0
    }
    /// The jail's bantime in seconds.
    fn bantime(&self) -> i64 {
        600
    }
}

/// A [`JailInfo`] with fixed numbers (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct StaticJailInfo {
    /// `<jail.banned>`.
    pub banned: u64,
    /// `<jail.banned_total>`.
    pub banned_total: u64,
    /// `<jail.found>`.
    pub found: u64,
    /// `<jail.found_total>`.
    pub found_total: u64,
    /// Default `<bantime>`.
    pub bantime: i64,
}

impl JailInfo for StaticJailInfo {
    fn banned(&self) -> u64 {
        self.banned
    }
    fn banned_total(&self) -> u64 {
        self.banned_total
    }
    fn found(&self) -> u64 {
        self.found
    }
    fn found_total(&self) -> u64 {
        self.found_total
    }
    fn bantime(&self) -> i64 {
        self.bantime
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` for integral
/// values, exponent form from 1e16 on.
pub fn py_float(v: f64) -> String {
    f2b_core::value::repr_float(v)
}

/// Python's `repr(str)` (used by `<raw-ticket>`).
pub fn py_str_repr(s: &str) -> String {
    f2b_core::value::repr_str(s)
}

/// `<ip-rev>`: fail2ban's `IPAddr.getPTR('')` (`4.3.2.1.`, nibbles for IPv6).
pub fn ip_rev(id: &str) -> String {
    let (addr, plen) = match id.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (id, None),
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            // fail2ban splits the printed form, prefix included.
            let ntoa = match plen {
                Some(p) => format!("{v4}/{p}"),
                None => v4.to_string(),
            };
            let mut parts: Vec<&str> = ntoa.split('.').collect();
            parts.reverse();
            format!("{}.", parts.join("."))
        }
        Ok(IpAddr::V6(v6)) => {
            let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            let mut nibbles: Vec<String> = hex.chars().map(|c| c.to_string()).collect();
            nibbles.reverse();
            format!("{}.", nibbles.join("."))
        }
        Err(_) => String::new(),
    }
}

/// Everything needed to resolve ticket tags for one command.
pub(crate) struct TagContext<'a> {
    pub ticket: &'a BanTicket,
    pub jail: &'a dyn JailInfo,
    /// Overrides `<family>` (operations set it per started family).
    pub family: Option<&'a str>,
    /// Overrides `<time>` (operations use "now").
    pub time: Option<f64>,
    /// `<ip-host>` if it was resolved.
    pub ip_host: Option<&'a str>,
}

impl TagContext<'_> {
    /// The value of a dynamic tag, as Python's `str()` would print it.
    pub fn get(&self, tag: &str) -> Option<String> {
        let t = self.ticket;
        Some(match tag {
            "ip" | "fid" => t.id.clone(),
            "family" => match self.family {
                Some(f) => f.to_owned(),
                None => t.family().map_or("None", Family::as_str).to_owned(),
            },
            "ip-rev" => ip_rev(&t.id),
            "ip-host" => self.ip_host.unwrap_or("None").to_owned(),
            "failures" => t.failures.to_string(),
            "time" => py_float(self.time.unwrap_or(t.time)),
            "bantime" => t.bantime.unwrap_or_else(|| self.jail.bantime()).to_string(),
            "bancount" => t.bancount.to_string(),
            "matches" => t.matches.join("\n"),
            "restored" => (if t.restored { "1" } else { "0" }).to_owned(),
            "ipmatches" => t
                .ip_merged
                .as_ref()
                .map_or_else(|| t.matches.join("\n"), |m| m.matches.join("\n")),
            "ipjailmatches" => t
                .ipjail_merged
                .as_ref()
                .map_or_else(|| t.matches.join("\n"), |m| m.matches.join("\n")),
            "ipfailures" => t
                .ip_merged
                .as_ref()
                .map_or(t.failures, |m| m.failures)
                .to_string(),
            "ipjailfailures" => t
                .ipjail_merged
                .as_ref()
                .map_or(t.failures, |m| m.failures)
                .to_string(),
            "raw-ticket" => raw_ticket(t),
            "jail.banned" => self.jail.banned().to_string(),
            "jail.banned_total" => self.jail.banned_total().to_string(),
            "jail.found" => self.jail.found().to_string(),
            "jail.found_total" => self.jail.found_total().to_string(),
            _ => return None,
        })
    }
}

fn raw_ticket(t: &BanTicket) -> String {
    let matches: Vec<String> = t.matches.iter().map(|m| py_str_repr(m)).collect();
    format!(
        "BanTicket: ip={} time={} bantime={} bancount={} #attempts={} matches=[{}]",
        t.id,
        py_float(t.time),
        t.bantime.map_or("None".to_owned(), |b| b.to_string()),
        t.bancount,
        t.failures,
        matches.join(", ")
    )
}

/// This host's names for `<fq-hostname>` / `<sh-hostname>`, computed like
/// Python's `socket.getfqdn()` / `socket.gethostname()`.
pub fn host_names() -> crate::tags::BuiltinTags {
    let short = gethostname();
    let fq = fqdn_of(&short).unwrap_or_else(|| short.clone());
    crate::tags::BuiltinTags {
        fq_hostname: fq,
        sh_hostname: short,
    }
}

fn gethostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates
    // on success (we also cap at the buffer length).
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// fail2ban's `ipdns.getfqdn`: the canonical names `getaddrinfo` reports
/// for `name` (`AI_CANONNAME`), preferring one that starts with `name.`;
/// when the lookup fails, Python's `socket.getfqdn` (reverse lookup of the
/// first address; aliases are not available here).
fn fqdn_of(name: &str) -> Option<String> {
    match canon_names(name) {
        Some(names) => {
            let pref = format!("{name}.");
            if let Some(n) = names.iter().find(|n| n.starts_with(&pref)) {
                return Some(n.clone());
            }
            // fail2ban returns `None` (printed as such) when no entry has one.
            Some(
                names
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "None".to_owned()),
            )
        }
        None => {
            use std::net::ToSocketAddrs;
            let addr = (name, 0u16).to_socket_addrs().ok()?.next()?.ip();
            reverse_lookup(addr)
        }
    }
}

/// `getaddrinfo(name, None, 0, SOCK_DGRAM, 0, AI_CANONNAME)`: the non-empty
/// canonical names of the results; `None` if the lookup failed.
fn canon_names(name: &str) -> Option<Vec<String>> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: all-zero addrinfo is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: c is NUL-terminated, hints is initialised, res receives a list
    // that we free below.
    let rc = unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return None;
    }
    let mut names = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p points into the list returned by getaddrinfo.
        let ai = unsafe { &*p };
        if !ai.ai_canonname.is_null() {
            // SAFETY: ai_canonname is a NUL-terminated string owned by the list.
            let n = unsafe { std::ffi::CStr::from_ptr(ai.ai_canonname) };
            let n = n.to_string_lossy().into_owned();
            if !n.is_empty() {
                names.push(n);
            }
        }
        p = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Some(names)
}

/// Reverse DNS of an address (`<ip-host>`); `None` when it has no name.
/// Blocking: call from a blocking context.
pub fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let mut host = [0u8; 1025];
    let rc = match addr {
        IpAddr::V4(v4) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sa is a valid sockaddr_in of the given length; host is
            // a writable buffer of the given length.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr().cast(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(v6) => {
            // SAFETY: all-zero is a valid sockaddr_in6.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr = libc::in6_addr {
                s6_addr: v6.octets(),
            };
            // SAFETY: as above for sockaddr_in6.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr().cast(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
    Some(String::from_utf8_lossy(&host[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_data_behaves_like_a_map() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a: TicketData = pairs(&[("ip", "1.2.3.4"), ("user", "x"), ("user", "root")])
            .into_iter()
            .collect();
        assert_eq!(a.len(), 2);
        assert_eq!(a.get("user"), Some("root"));
        assert_eq!(a.get("ip4"), None);
        let b: TicketData = pairs(&[("user", "root"), ("ip", "1.2.3.4")])
            .into_iter()
            .collect();
        assert_eq!(a, b);
        let mut c = b.clone();
        c.insert("ip".into(), "5.6.7.8".into());
        assert_ne!(a, c);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [("user", "root"), ("ip", "5.6.7.8")]
        );
        assert!(TicketData::new().is_empty());
    }

    #[test]
    fn float_repr_like_python() {
        assert_eq!(py_float(1700000000.0), "1700000000.0");
        assert_eq!(py_float(1700000000.5), "1700000000.5");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
    }

    #[test]
    fn ptr_like_fail2ban() {
        assert_eq!(ip_rev("1.2.3.4"), "4.3.2.1.");
        assert_eq!(ip_rev("1.2.3.0/24"), "0/24.3.2.1.");
        assert_eq!(
            ip_rev("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
        );
        assert_eq!(ip_rev("not-an-ip"), "");
    }

    #[test]
    fn families() {
        assert_eq!(Family::of_id("1.2.3.4"), Some(Family::Inet4));
        assert_eq!(Family::of_id("::1"), Some(Family::Inet6));
        assert_eq!(Family::of_id("10.0.0.0/8"), Some(Family::Inet4));
        assert_eq!(Family::of_id("user@x"), None);
    }

    #[test]
    fn str_repr() {
        assert_eq!(py_str_repr("a'b"), "\"a'b\"");
        assert_eq!(py_str_repr("a\nb"), "'a\\nb'");
    }
}
