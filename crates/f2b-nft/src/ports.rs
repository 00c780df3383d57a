//! fail2ban `port` values (`ssh`, `http,https`, `1000:2000`, `22 80`) to
//! numeric port ranges, resolving service names through /etc/services.

use std::collections::HashMap;
use std::path::Path;

/// An inclusive port range (`lo == hi` for a single port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A port value that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {item:?} in {spec:?}: {reason}")]
pub struct PortError {
    /// The whole `port` value.
    pub spec: String,
    /// The offending list item.
    pub item: String,
    /// Why.
    pub reason: String,
}

/// Service name table: `(name, protocol) -> port`, aliases included.
#[derive(Debug, Default, Clone)]
pub struct Services {
    map: HashMap<(String, String), u16>,
}

impl Services {
    /// Parses the text of an /etc/services file.
    pub fn parse(text: &str) -> Services {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            let (Some(name), Some(pp)) = (it.next(), it.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(it) {
                map.entry((n.to_ascii_lowercase(), proto.to_ascii_lowercase()))
                    .or_insert(port);
            }
        }
        Services { map }
    }

    /// Loads a services file; a missing file gives an empty table (numeric
    /// ports still work, names then fail with a clear error).
    pub fn load(path: &Path) -> Services {
        std::fs::read_to_string(path)
            .map(|t| Services::parse(&t))
            .unwrap_or_default()
    }

    /// Looks a name up for `proto`, falling back to tcp then any protocol.
    pub fn lookup(&self, name: &str, proto: &str) -> Option<u16> {
        let n = name.to_ascii_lowercase();
        for p in [proto, "tcp", "udp", "sctp"] {
            if let Some(v) = self.map.get(&(n.clone(), p.to_string())) {
                return Some(*v);
            }
        }
        None
    }
}

fn one_port(s: &str, proto: &str, services: &Services) -> Result<u16, String> {
    if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        return s
            .parse::<u16>()
            .map_err(|_| "port out of range".to_string());
    }
    services
        .lookup(s, proto)
        .ok_or_else(|| "unknown service name (not in /etc/services)".to_string())
}

/// Parses a fail2ban `port` value into sorted, merged ranges. Items are
/// separated by commas and/or blanks; `a:b` and `a-b` are ranges.
pub fn parse_ports(
    spec: &str,
    proto: &str,
    services: &Services,
) -> Result<Vec<PortRange>, PortError> {
    let mut out = Vec::new();
    let err = |item: &str, reason: String| PortError {
        spec: spec.to_string(),
        item: item.to_string(),
        reason,
    };
    for item in spec
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (lo, hi) = match item.split_once([':', '-']) {
            Some((a, b)) => (
                one_port(a, proto, services).map_err(|r| err(item, r))?,
                one_port(b, proto, services).map_err(|r| err(item, r))?,
            ),
            None => {
                let p = one_port(item, proto, services).map_err(|r| err(item, r))?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(err(item, "range start above end".into()));
        }
        out.push(PortRange { lo, hi });
    }
    if out.is_empty() {
        return Err(err(spec, "no ports".into()));
    }
    out.sort();
    let mut merged: Vec<PortRange> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if u32::from(r.lo) <= u32::from(last.hi) + 1 => {
                last.hi = last.hi.max(r.hi);
            }
            _ => merged.push(r),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn svc() -> Services {
        Services::parse(
            "ssh 22/tcp\nhttp 80/tcp www # web\nhttps 443/tcp\nhttps 443/udp\ndomain 53/udp\n",
        )
    }

    #[test]
    fn names_lists_and_ranges() {
        let r = parse_ports("ssh, http,https 1000:2000", "tcp", &svc()).unwrap();
        let s: Vec<String> = r.iter().map(|r| r.to_string()).collect();
        assert_eq!(s, vec!["22", "80", "443", "1000-2000"]);
        let r = parse_ports("www", "tcp", &svc()).unwrap();
        assert_eq!(r, vec![PortRange { lo: 80, hi: 80 }]);
        let r = parse_ports("domain", "udp", &svc()).unwrap();
        assert_eq!(r[0].lo, 53);
    }

    #[test]
    fn merges_overlaps() {
        let r = parse_ports("10:20,15:30,31", "tcp", &svc()).unwrap();
        assert_eq!(r, vec![PortRange { lo: 10, hi: 31 }]);
    }

    #[test]
    fn errors_name_the_item() {
        let e = parse_ports("ssh,nosuch", "tcp", &svc()).unwrap_err();
        assert_eq!(e.item, "nosuch");
        assert!(parse_ports("70000", "tcp", &svc()).is_err());
        assert!(parse_ports("30:20", "tcp", &svc()).is_err());
        assert!(parse_ports(" , ", "tcp", &svc()).is_err());
    }

    #[test]
    fn real_services_file_resolves_ssh() {
        let s = Services::load(Path::new("/etc/services"));
        assert_eq!(s.lookup("ssh", "tcp"), Some(22));
    }

    proptest! {
        #[test]
        fn numeric_ranges_roundtrip(a in 0u16..=65535, b in 0u16..=65535) {
            let (lo, hi) = (a.min(b), a.max(b));
            let r = parse_ports(&format!("{lo}:{hi}"), "tcp", &Services::default()).unwrap();
            prop_assert_eq!(r, vec![PortRange { lo, hi }]);
        }
    }
}
