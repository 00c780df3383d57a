//! Connection teardown for banned addresses, in-process over netlink:
//! ctnetlink (dump, then delete matching conntrack entries by their
//! original tuple) and sock_diag `SOCK_DESTROY` on local TCP sockets whose
//! peer is banned (needs `CONFIG_INET_DIAG_DESTROY`).

use crate::nl::{self, KernelErrorOrIo, Msg, NlSocket};
use f2b_core::addr::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V6_SRC: u16 = 3;

const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;

/// Counts of what a teardown pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TeardownStats {
    /// Conntrack entries deleted.
    pub conntrack_deleted: usize,
    /// Local TCP sockets destroyed.
    pub sockets_destroyed: usize,
}

/// Which flows a jail's rules cover: protocol numbers (empty = any) and
/// local (destination) ports (empty = any).
#[derive(Debug, Clone, Copy)]
pub struct Filter<'a> {
    /// IP protocol numbers.
    pub protos: &'a [u8],
    /// Local port ranges.
    pub ports: &'a [crate::ports::PortRange],
}

impl Filter<'_> {
    fn port_ok(&self, port: Option<u16>) -> bool {
        if self.ports.is_empty() {
            return true;
        }
        port.is_some_and(|p| self.ports.iter().any(|r| r.lo <= p && p <= r.hi))
    }

    fn proto_ok(&self, proto: Option<u8>) -> bool {
        self.protos.is_empty() || proto.is_some_and(|p| self.protos.contains(&p))
    }

    /// Conntrack original tuple: proto and destination port covered?
    fn tuple_ok(&self, orig: &[u8]) -> bool {
        let proto = nl::find_attr(orig, CTA_TUPLE_PROTO);
        let num = proto
            .and_then(|p| nl::find_attr(p, CTA_PROTO_NUM))
            .and_then(|v| v.first().copied());
        let dport = proto
            .and_then(|p| nl::find_attr(p, CTA_PROTO_DST_PORT))
            .and_then(|v| Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)));
        self.proto_ok(num) && self.port_ok(dport)
    }
}

fn matches(nets: &[IpNet], ip: &IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(*v6)),
        v4 => *v4,
    };
    nets.iter().any(|n| n.contains_ip(&ip))
}

fn tuple_src(tuple: &[u8]) -> Option<IpAddr> {
    let ip = nl::find_attr(tuple, CTA_TUPLE_IP)?;
    if let Some(v) = nl::find_attr(ip, CTA_IP_V4_SRC) {
        return Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?)));
    }
    let v = nl::find_attr(ip, CTA_IP_V6_SRC)?;
    Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?)))
}

/// Deletes every conntrack entry whose original or reply source lies in
/// `nets` (the banned peer, whichever side opened the flow).
pub fn conntrack_delete(
    sock: &mut NlSocket,
    nets: &[IpNet],
    filter: &Filter<'_>,
) -> Result<usize, KernelErrorOrIo> {
    let mut victims: Vec<(u8, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        let want_v4 = family == libc::AF_INET as u8;
        if !nets.iter().any(|n| n.addr().is_ipv4() == want_v4) {
            continue;
        }
        let mut m = Msg::new(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
            nl::NLM_F_REQUEST | nl::NLM_F_DUMP,
        );
        m.push_raw(&nl::nfgenmsg(family, 0));
        sock.dump(m, |_ty, payload| {
            if payload.len() < 4 {
                return;
            }
            let a = &payload[4..];
            let Some(orig) = nl::find_attr(a, CTA_TUPLE_ORIG) else {
                return;
            };
            let hit = filter.tuple_ok(orig)
                && (tuple_src(orig).is_some_and(|ip| matches(nets, &ip))
                    || nl::find_attr(a, CTA_TUPLE_REPLY)
                        .and_then(tuple_src)
                        .is_some_and(|ip| matches(nets, &ip)));
            if hit {
                victims.push((
                    family,
                    orig.to_vec(),
                    nl::find_attr(a, CTA_ZONE).map(|z| z.to_vec()),
                ));
            }
        })?;
    }
    let mut deleted = 0;
    for (family, orig, zone) in victims {
        let mut m = Msg::new(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
            nl::NLM_F_REQUEST | nl::NLM_F_ACK,
        );
        m.push_raw(&nl::nfgenmsg(family, 0));
        m.begin_nest(CTA_TUPLE_ORIG);
        m.buf.extend_from_slice(&orig);
        m.end_nest();
        if let Some(z) = zone {
            m.attr(CTA_ZONE, &z);
        }
        match sock.request(m) {
            Ok(()) => deleted += 1,
            // Gone meanwhile (timed out, or already deleted): fine.
            Err(e) if e.errno() == libc::ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// `struct inet_diag_req_v2` with the given socket id (48 bytes).
fn diag_req(family: u8, id: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(56);
    v.push(family);
    v.push(libc::IPPROTO_TCP as u8);
    v.push(0); // idiag_ext
    v.push(0); // pad
    v.extend_from_slice(&u32::MAX.to_ne_bytes()); // all states
    let mut idb = [0u8; 48];
    let n = id.len().min(48);
    idb[..n].copy_from_slice(&id[..n]);
    v.extend_from_slice(&idb);
    v
}

fn diag_dst(family: u8, id: &[u8]) -> Option<IpAddr> {
    // inet_diag_sockid: sport(2) dport(2) src(16) dst(16) if(4) cookie(8)
    let dst = id.get(20..36)?;
    if family == libc::AF_INET as u8 {
        Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(&dst[..4]).ok()?,
        )))
    } else {
        Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(dst).ok()?)))
    }
}

/// Destroys local TCP sockets whose peer lies in `nets`. Listening sockets
/// have an all-zero peer and never match a ban.
pub fn destroy_sockets(
    sock: &mut NlSocket,
    nets: &[IpNet],
    filter: &Filter<'_>,
) -> Result<usize, KernelErrorOrIo> {
    if !filter.proto_ok(Some(libc::IPPROTO_TCP as u8)) {
        return Ok(0);
    }
    let mut victims: Vec<(u8, Vec<u8>)> = Vec::new();
    let any_v4 = nets.iter().any(|n| n.addr().is_ipv4());
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        // v4 peers also show up on dual-stack AF_INET6 sockets (mapped).
        if family == libc::AF_INET as u8 && !any_v4 {
            continue;
        }
        let mut m = Msg::new(SOCK_DIAG_BY_FAMILY, nl::NLM_F_REQUEST | nl::NLM_F_DUMP);
        m.push_raw(&diag_req(family, &[]));
        sock.dump(m, |ty, payload| {
            if ty != SOCK_DIAG_BY_FAMILY || payload.len() < 52 {
                return;
            }
            let fam = payload[0];
            let state = payload[1];
            const TCP_LISTEN: u8 = 10;
            if state == TCP_LISTEN {
                return;
            }
            let id = &payload[4..52];
            let sport = u16::from_be_bytes([id[0], id[1]]);
            if !filter.port_ok(Some(sport)) {
                return;
            }
            if diag_dst(fam, id).is_some_and(|ip| !ip.is_unspecified() && matches(nets, &ip)) {
                victims.push((fam, id.to_vec()));
            }
        })?;
    }
    let mut destroyed = 0;
    for (fam, id) in victims {
        let mut m = Msg::new(SOCK_DESTROY, nl::NLM_F_REQUEST | nl::NLM_F_ACK);
        m.push_raw(&diag_req(fam, &id));
        match sock.request(m) {
            Ok(()) => destroyed += 1,
            Err(e) if e.errno() == libc::ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(destroyed)
}

/// Probes SOCK_DESTROY: asking to destroy a socket that cannot exist gives
/// `ENOENT` when the kernel supports it and `EOPNOTSUPP` when it does not.
pub fn probe_sock_destroy(sock: &mut NlSocket) -> Result<(), String> {
    let mut id = [0u8; 48];
    id[0..2].copy_from_slice(&1u16.to_be_bytes());
    id[2..4].copy_from_slice(&1u16.to_be_bytes());
    let mut m = Msg::new(SOCK_DESTROY, nl::NLM_F_REQUEST | nl::NLM_F_ACK);
    m.push_raw(&diag_req(libc::AF_INET as u8, &id));
    match sock.request(m) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == libc::ENOENT => Ok(()),
        Err(e) if e.errno() == libc::EOPNOTSUPP => {
            Err("kernel lacks CONFIG_INET_DIAG_DESTROY (SOCK_DESTROY unsupported)".into())
        }
        Err(e) => Err(format!("SOCK_DESTROY probe failed: {e}")),
    }
}

/// Probes ctnetlink with a dump of the (usually small) IPv4 table.
pub fn probe_conntrack(sock: &mut NlSocket) -> Result<(), String> {
    let mut m = Msg::new(
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        nl::NLM_F_REQUEST | nl::NLM_F_DUMP,
    );
    m.push_raw(&nl::nfgenmsg(libc::AF_INET as u8, 0));
    sock.dump(m, |_, _| {})
        .map_err(|e| format!("ctnetlink unavailable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v4_peer_matches_v4_ban() {
        let nets = [IpNet::new("192.0.2.0".parse().unwrap(), 24)];
        assert!(matches(&nets, &"::ffff:192.0.2.7".parse().unwrap()));
        assert!(matches(&nets, &"192.0.2.7".parse().unwrap()));
        assert!(!matches(&nets, &"192.0.3.7".parse().unwrap()));
    }

    #[test]
    fn diag_request_layout() {
        let r = diag_req(2, &[]);
        assert_eq!(r.len(), 56);
        assert_eq!(r[1], libc::IPPROTO_TCP as u8);
        let mut id = [0u8; 48];
        id[20..24].copy_from_slice(&[198, 51, 100, 1]);
        assert_eq!(diag_dst(2, &id), Some("198.51.100.1".parse().unwrap()));
    }
}
