//! Addresses and ban ids as fail2ban understands them.
//!
//! fail2ban keys everything (failures, bans, ignore entries) by one
//! "IPAddr"-shaped value that is either a single IPv4/IPv6 address, a subnet
//! (`1.2.3.0/24`, possible as a ban id when a failregex captures `<cidr>`, and
//! as an `ignoreip` entry), or a non-IP text: a raw id (`usedns = raw`, an
//! `<F-ID>` capture) or a DNS name (an `ignoreip` host name).
//!
//! [`Addr`] models exactly those three cases; [`IpNet`] is the subnet part.
//! Parsing follows fail2ban's rules: surrounding `[...]` is stripped, a
//! `/plen` or `/mask` suffix is applied (host bits cleared), IPv4-mapped IPv6
//! (`::ffff:1.2.3.4`) becomes the IPv4 address when no prefix is given, and a
//! text that is no IP stays a raw id.  [`Addr`]'s `Display` is fail2ban's
//! `ntoa` (the text written to logs, actions and the database).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Error parsing an address, subnet or mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// More than one `/` (fail2ban: "too many plen representation").
    TooManyPlen {
        /// The text given.
        input: String,
    },
    /// The text after `/` is neither a prefix length nor a contiguous mask.
    BadMask {
        /// The text given.
        input: String,
        /// The offending mask / prefix text.
        mask: String,
    },
    /// The text is not an IP address (where one is required).
    NotAnIp {
        /// The text given.
        input: String,
    },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::TooManyPlen { input } => {
                write!(f, "invalid ipstr {input:?}, too many plen representation")
            }
            AddrError::BadMask { input, mask } => {
                write!(
                    f,
                    "invalid mask {mask:?} in {input:?}, no plen representation"
                )
            }
            AddrError::NotAnIp { input } => write!(f, "{input:?} is not an IP address"),
        }
    }
}

impl std::error::Error for AddrError {}

/// An IPv4 or IPv6 subnet: a network address with its host bits cleared and
/// a prefix length (`plen`) no larger than the family's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    plen: u8,
}

impl IpNet {
    /// Builds a subnet; host bits of `addr` are cleared and `plen` is capped
    /// to the family width (fail2ban accepts `1.2.3.4/40`, which behaves as
    /// `/32`).
    pub fn new(addr: IpAddr, plen: u8) -> IpNet {
        let max = max_plen(&addr);
        let plen = plen.min(max);
        IpNet {
            addr: mask_addr(addr, plen),
            plen,
        }
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn plen(&self) -> u8 {
        self.plen
    }

    /// True if the prefix covers exactly one address (`/32`, `/128`).
    pub fn is_single(&self) -> bool {
        self.plen == max_plen(&self.addr)
    }

    /// True if `ip` (same family) lies inside this subnet.
    pub fn contains_ip(&self, ip: &IpAddr) -> bool {
        match (ip, &self.addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask_addr(*ip, self.plen) == self.addr
            }
            _ => false,
        }
    }

    /// True if the subnet `other` lies inside this one (fail2ban's
    /// `other.isInNet(self)`: `other`'s network address masked by our prefix).
    pub fn contains_net(&self, other: &IpNet) -> bool {
        self.contains_ip(&other.addr)
    }
}

impl fmt::Display for IpNet {
    /// fail2ban's `ntoa`: the `/plen` suffix is shown only when
    /// `0 < plen < width` (so `/0` prints as the bare address, like fail2ban).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ip(&self.addr, f)?;
        if self.plen != 0 && self.plen < max_plen(&self.addr) {
            write!(f, "/{}", self.plen)?;
        }
        Ok(())
    }
}

/// A fail2ban id: a single IP address, a subnet, or a raw (non-IP) text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addr {
    /// A single IPv4 or IPv6 address (IPv4-mapped IPv6 normalised to IPv4).
    Ip(IpAddr),
    /// A subnet with a prefix shorter than the family width.
    Net(IpNet),
    /// Any other text: a raw failure id (`<F-ID>`, `usedns = raw`) or a DNS
    /// host name (in `ignoreip`).
    Raw(String),
}

impl Addr {
    /// Parses like fail2ban's `IPAddr(text)`: never fails for plain text
    /// (non-IP text becomes [`Addr::Raw`]), but a malformed `/suffix` on an
    /// IP-looking text is an error, as in fail2ban.
    pub fn parse(text: &str) -> Result<Addr, AddrError> {
        let s = if text.len() > 2 && text.starts_with('[') && text.ends_with(']') {
            &text[1..text.len() - 1]
        } else {
            text
        };
        let Some((host, suffix)) = s.split_once('/') else {
            return Ok(match parse_ip(s) {
                Some(ip) => Addr::Ip(ip),
                None => Addr::Raw(s.to_owned()),
            });
        };
        if suffix.contains('/') {
            return Err(AddrError::TooManyPlen {
                input: text.to_owned(),
            });
        }
        let bad_mask = || AddrError::BadMask {
            input: text.to_owned(),
            mask: suffix.to_owned(),
        };
        let plen: u32 = if suffix.contains('.') || suffix.contains(':') {
            mask_to_plen(suffix).ok_or_else(bad_mask)? as u32
        } else {
            suffix.trim().parse::<u32>().map_err(|_| bad_mask())?
        };
        // fail2ban: with an explicit prefix, IPv4-mapped IPv6 stays IPv6.
        let ip = match IpAddr::from_str(host) {
            Ok(ip) => ip,
            // not an IP: fail2ban keeps the host text (the prefix is lost)
            Err(_) => return Ok(Addr::Raw(host.to_owned())),
        };
        let net = IpNet::new(ip, plen.min(255) as u8);
        Ok(if net.is_single() {
            Addr::Ip(net.addr)
        } else {
            Addr::Net(net)
        })
    }

    /// An id that is never interpreted as an IP (`usedns = raw` host names).
    pub fn raw(text: impl Into<String>) -> Addr {
        Addr::Raw(text.into())
    }

    /// The single IP address, if this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Addr::Ip(ip) => Some(*ip),
            _ => None,
        }
    }

    /// True for [`Addr::Ip`] (fail2ban's `isSingle`).
    pub fn is_single(&self) -> bool {
        matches!(self, Addr::Ip(_))
    }

    /// True for an IP address or subnet (not raw text).
    pub fn is_ip(&self) -> bool {
        !matches!(self, Addr::Raw(_))
    }

    /// The `<family>` tag value: `"inet4"`, `"inet6"`, or `None` for raw ids.
    pub fn family(&self) -> Option<&'static str> {
        let ip = match self {
            Addr::Ip(ip) => ip,
            Addr::Net(n) => &n.addr,
            Addr::Raw(_) => return None,
        };
        Some(match ip {
            IpAddr::V4(_) => "inet4",
            IpAddr::V6(_) => "inet6",
        })
    }

    /// The reversed form fail2ban builds for `<ip-rev>` (`getPTR('')`):
    /// `"4.3.2.1."` for `1.2.3.4`, 32 reversed nibbles plus `.` for IPv6,
    /// empty for raw ids.  [`Addr::ptr`] with a suffix gives `getPTR(suffix)`.
    pub fn ip_rev(&self) -> String {
        self.ptr("")
    }

    /// fail2ban's `getPTR(suffix)`: reversed labels, a dot, then `suffix`.
    pub fn ptr(&self, suffix: &str) -> String {
        let ip = match self {
            Addr::Ip(ip) => *ip,
            Addr::Net(n) => n.addr,
            Addr::Raw(_) => return String::new(),
        };
        let mut out = String::new();
        match ip {
            IpAddr::V4(_) => {
                // fail2ban reverses the dotted text, so a subnet's "/plen"
                // stays glued to the last octet ("0/24.3.2.1.")
                let text = self.to_string();
                for (i, part) in text.split('.').rev().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(part);
                }
            }
            IpAddr::V6(v6) => {
                let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
                for (i, c) in hex.chars().rev().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push(c);
                }
            }
        }
        out.push('.');
        out.push_str(suffix);
        out
    }

    /// fail2ban's `ip.isInNet(net)` for IP-valued networks: same family and
    /// the address masked by the net's prefix equals the net address.
    /// Raw ids are never inside a network.
    pub fn is_in_net(&self, net: &IpNet) -> bool {
        match self {
            Addr::Ip(ip) => net.contains_ip(ip),
            Addr::Net(n) => net.contains_net(n),
            Addr::Raw(_) => false,
        }
    }

    /// fail2ban's `self.contains(other)` for IP-valued `self`: equal, or
    /// `other` inside `self`'s network.  (DNS-name containment needs a
    /// resolver and is handled by the engine.)
    pub fn contains(&self, other: &Addr) -> bool {
        if self == other {
            return true;
        }
        match self {
            Addr::Net(n) => other.is_in_net(n),
            Addr::Ip(ip) => other.is_in_net(&IpNet::new(*ip, max_plen(ip))),
            Addr::Raw(_) => false,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(ip) => fmt_ip(ip, f),
            Addr::Net(n) => n.fmt(f),
            Addr::Raw(s) => f.write_str(s),
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        Addr::Ip(normalize(ip))
    }
}

impl FromStr for Addr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Addr, AddrError> {
        Addr::parse(s)
    }
}

/// Parses a single IP like fail2ban (`inet_pton`, IPv4-mapped IPv6 → IPv4).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    IpAddr::from_str(s).ok().map(normalize)
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) → IPv4; everything else unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn max_plen(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask_addr(ip: IpAddr, plen: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(plen.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if plen == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(plen.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

/// `255.255.255.0` → 24, `ffff:ffff::` → 32; `None` if not contiguous.
fn mask_to_plen(mask: &str) -> Option<u8> {
    match IpAddr::from_str(mask).ok().map(normalize)? {
        IpAddr::V4(v4) => {
            let m = u32::from(v4);
            let ones = m.leading_ones();
            (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
        }
        IpAddr::V6(v6) => {
            let m = u128::from(v6);
            let ones = m.leading_ones();
            (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
        }
    }
}

/// Formats like glibc `inet_ntop` (which fail2ban uses): RFC 5952 for IPv6,
/// but also the deprecated IPv4-compatible form `::a.b.c.d`.
fn fmt_ip(ip: &IpAddr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match ip {
        IpAddr::V4(v4) => f.write_str(dotted_quad(v4.octets(), &mut [0; 15])),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[..6] == [0; 6] && s[6] != 0 {
                let o = v6.octets();
                write!(f, "::{}.{}.{}.{}", o[12], o[13], o[14], o[15])
            } else {
                write!(f, "{v6}")
            }
        }
    }
}

/// `a.b.c.d` written into `buf` (what `Ipv4Addr`'s `Display` prints, without
/// the formatting machinery: ~1.3k instructions an address there, on every
/// `Found` and `Ban` line).
fn dotted_quad(octets: [u8; 4], buf: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    // ASCII digits and dots only
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quad_is_std_display() {
        let mut x = 0x9E37_79B9u32;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // every octet value in every position, and random addresses
            let v = if i < 1024 {
                (i % 256) << (8 * (i / 256))
            } else {
                x
            };
            let ip = std::net::Ipv4Addr::from(v);
            assert_eq!(dotted_quad(ip.octets(), &mut [0; 15]), ip.to_string());
            assert_eq!(Addr::from(IpAddr::V4(ip)).to_string(), ip.to_string());
        }
    }

    fn p(s: &str) -> Addr {
        Addr::parse(s).unwrap()
    }

    #[test]
    fn parses_single_and_nets() {
        assert_eq!(p("1.2.3.4").to_string(), "1.2.3.4");
        assert_eq!(p("1.2.3.4/24").to_string(), "1.2.3.0/24");
        assert_eq!(p("1.2.3.4/255.255.255.0").to_string(), "1.2.3.0/24");
        assert_eq!(p("1.2.3.4/32"), p("1.2.3.4"));
        assert!(p("1.2.3.4/32").is_single());
        assert_eq!(p("2001:db8::1/64").to_string(), "2001:db8::/64");
        assert_eq!(p("[2001:db8::1]").to_string(), "2001:db8::1");
        assert_eq!(p("::ffff:1.2.3.4"), p("1.2.3.4"));
        assert_eq!(p("::ffff:1.2.3.4/128").to_string(), "::ffff:1.2.3.4");
        assert_eq!(p("127.0.0.1/8").to_string(), "127.0.0.0/8");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0");
        assert_eq!(p("example.com"), Addr::Raw("example.com".into()));
        assert_eq!(p("1.2.3.4/40"), p("1.2.3.4"));
        assert_eq!(p("::1.2.3.4").to_string(), "::1.2.3.4");
        assert_eq!(p("::1").to_string(), "::1");
        assert!(Addr::parse("1.2.3.4/24/1").is_err());
        assert!(Addr::parse("1.2.3.4/abc").is_err());
        assert!(Addr::parse("1.2.3.4/255.0.255.0").is_err());
        assert!(Addr::parse("01.2.3.4").unwrap().family().is_none());
    }

    #[test]
    fn contains_and_family() {
        let net = p("10.0.0.0/8");
        assert!(net.contains(&p("10.1.2.3")));
        assert!(!net.contains(&p("11.1.2.3")));
        assert!(net.contains(&p("10.1.0.0/16")));
        assert!(!net.contains(&p("::ffff:0a00:0001/128")));
        assert!(p("::/0").contains(&p("2001:db8::5")));
        assert!(!p("::/0").contains(&p("1.2.3.4")));
        assert!(!net.contains(&Addr::raw("10.1.2.3")));
        assert_eq!(p("1.2.3.4").family(), Some("inet4"));
        assert_eq!(p("::1").family(), Some("inet6"));
        assert_eq!(Addr::raw("x").family(), None);
    }

    #[test]
    fn reverse_forms() {
        assert_eq!(p("1.2.3.4").ip_rev(), "4.3.2.1.");
        assert_eq!(p("1.2.3.4").ptr("in-addr.arpa."), "4.3.2.1.in-addr.arpa.");
        let r = p("2001:db8::1").ip_rev();
        assert!(r.starts_with("1.0.0.0.0.0.0.0."));
        assert!(r.ends_with("8.b.d.0.1.0.0.2."));
        assert_eq!(r.len(), 64);
        assert_eq!(Addr::raw("x").ip_rev(), "");
        assert_eq!(p("1.2.3.4/24").ip_rev(), "0/24.3.2.1.");
    }
}
