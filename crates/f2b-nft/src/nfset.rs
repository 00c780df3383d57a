//! nf_tables set elements over raw netlink: batched add/delete in one
//! transaction per chunk, and a dump of a set's elements. This is the hot
//! path (every ban), so it bypasses libnftables' parser entirely.

use crate::nl::{self, KernelError, Msg, NlSocket};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use f2b_core::addr::IpNet;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_GETGEN: u16 = 16;
const NFPROTO_INET: u8 = 1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// Largest nested element list per message (nla_len is 16 bits).
const MAX_NEST: usize = 60_000;
/// Largest transaction (one sendmsg) we build.
const MAX_TXN: usize = 2 << 20;

/// One element to write: a key and, for interval sets, the exclusive end
/// (`None` = up to the end of the address space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireElem {
    pub key: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub timeout_ms: Option<u64>,
}

/// One element read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedElem {
    pub key: Vec<u8>,
    pub interval_end: bool,
    pub timeout_ms: Option<u64>,
    pub expires_ms: Option<u64>,
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

/// Converts a subnet to `(start key, exclusive end key)`.
pub fn net_keys(net: &IpNet) -> (Vec<u8>, Option<Vec<u8>>) {
    match net.addr() {
        IpAddr::V4(a) => {
            let start = u32::from(a) as u64;
            let end = start + (1u64 << (32 - u32::from(net.plen().min(32))));
            let end = (end <= u32::MAX as u64).then(|| (end as u32).to_be_bytes().to_vec());
            (a.octets().to_vec(), end)
        }
        IpAddr::V6(a) => {
            let start = u128::from(a);
            let host = 128 - u32::from(net.plen().min(128));
            let end = if host == 128 {
                None
            } else {
                start.checked_add(1u128 << host)
            };
            (a.octets().to_vec(), end.map(|e| e.to_be_bytes().to_vec()))
        }
    }
}

/// Converts a key back to an address (4 or 16 bytes).
pub fn key_addr(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(key).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(key).ok()?))),
        _ => None,
    }
}

/// Converts an interval `[start, end)` back into a prefix, if it is one.
pub fn interval_to_net(start: &[u8], end: Option<&[u8]>) -> Option<IpNet> {
    let addr = key_addr(start)?;
    let (s, e, width): (u128, u128, u32) = match (start.len(), end) {
        (4, Some(e)) => (
            u32::from_be_bytes(start.try_into().ok()?) as u128,
            u32::from_be_bytes(e.try_into().ok()?) as u128,
            32,
        ),
        (4, None) => (
            u32::from_be_bytes(start.try_into().ok()?) as u128,
            1u128 << 32,
            32,
        ),
        (16, Some(e)) => (
            u128::from_be_bytes(start.try_into().ok()?),
            u128::from_be_bytes(e.try_into().ok()?),
            128,
        ),
        (16, None) => {
            let s = u128::from_be_bytes(start.try_into().ok()?);
            // [s, 2^128): size is 2^128 - s; a prefix iff s has that alignment.
            let size = s.wrapping_neg();
            if s == 0 {
                return Some(IpNet::new(addr, 0));
            }
            if !size.is_power_of_two() || s % size != 0 {
                return None;
            }
            return Some(IpNet::new(addr, (128 - size.trailing_zeros()) as u8));
        }
        _ => return None,
    };
    if e <= s {
        return None;
    }
    let size = e - s;
    if !size.is_power_of_two() || s % size != 0 {
        return None;
    }
    let plen = width - size.trailing_zeros();
    Some(IpNet::new(addr, plen as u8))
}

fn hdr(ty: u16, flags: u16, family: u8, res_id: u16) -> Msg {
    let mut m = Msg::new(ty, nl::NLM_F_REQUEST | flags);
    m.push_raw(&nl::nfgenmsg(family, res_id));
    m
}

fn elem_msg(op: Op, table: &str, set: &str) -> Msg {
    let (ty, flags) = match op {
        Op::Add => (NFT_MSG_NEWSETELEM, nl::NLM_F_CREATE),
        Op::Del => (NFT_MSG_DELSETELEM, 0),
    };
    let mut m = hdr((NFNL_SUBSYS_NFTABLES << 8) | ty, flags, NFPROTO_INET, 0);
    m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
    m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
    m.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    m
}

fn push_one(m: &mut Msg, key: &[u8], flags: u32, timeout_ms: Option<u64>) {
    m.begin_nest(NFTA_LIST_ELEM);
    m.begin_nest(NFTA_SET_ELEM_KEY);
    m.attr(NFTA_DATA_VALUE, key);
    m.end_nest();
    if flags != 0 {
        m.attr(NFTA_SET_ELEM_FLAGS, &flags.to_be_bytes());
    }
    if let Some(t) = timeout_ms {
        m.attr(NFTA_SET_ELEM_TIMEOUT, &t.max(1).to_be_bytes());
    }
    m.end_nest();
}

/// Result of one transaction attempt.
#[derive(Debug, Default)]
pub struct TxnOutcome {
    /// Elements applied.
    pub applied: usize,
    /// Elements the kernel refused, with errno.
    pub refused: Vec<(usize, i32, Option<String>)>,
}

/// Encodes `elems[range]` as one nfnetlink batch (one transaction).
fn encode_txn(
    sock: &mut NlSocket,
    op: Op,
    table: &str,
    set: &str,
    interval: bool,
    elems: &[WireElem],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(elems.len() * 64 + 128);
    let begin = hdr(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES);
    out.extend_from_slice(&begin.finish(sock.next_seq()));
    let mut m = elem_msg(op, table, set);
    let mut in_msg = 0usize;
    for e in elems {
        if m.nest_len() > MAX_NEST {
            m.end_nest();
            out.extend_from_slice(&m.finish(sock.next_seq()));
            m = elem_msg(op, table, set);
            in_msg = 0;
        }
        // Deleting an interval: the kernel wants both boundary elements.
        let t = if op == Op::Add { e.timeout_ms } else { None };
        push_one(&mut m, &e.key, 0, t);
        if interval {
            if let Some(end) = &e.end {
                push_one(&mut m, end, NFT_SET_ELEM_INTERVAL_END, None);
            }
        }
        in_msg += 1;
    }
    if in_msg > 0 {
        m.end_nest();
        out.extend_from_slice(&m.finish(sock.next_seq()));
    }
    let end = hdr(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES);
    out.extend_from_slice(&end.finish(sock.next_seq()));
    out
}

fn fence() -> Msg {
    hdr(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
        nl::NLM_F_ACK,
        0,
        0,
    )
}

fn run_txn(
    sock: &mut NlSocket,
    op: Op,
    table: &str,
    set: &str,
    interval: bool,
    elems: &[WireElem],
) -> io::Result<Vec<KernelError>> {
    let bytes = encode_txn(sock, op, table, set, interval, elems);
    sock.send_fenced(&bytes, fence())
}

/// Applies `op` to all `elems`, in transactions of bounded size. A refused
/// transaction (the kernel aborts it whole) is split in halves and retried
/// so that only the offending elements are reported back in `refused`
/// (indices into `elems`). With `tolerate` set, an errno in it counts as
/// success (e.g. `ENOENT` on delete: already gone).
pub fn apply(
    sock: &mut NlSocket,
    op: Op,
    table: &str,
    set: &str,
    interval: bool,
    elems: &[WireElem],
    tolerate: &[i32],
) -> io::Result<TxnOutcome> {
    let mut out = TxnOutcome::default();
    let per_txn = (MAX_TXN / if interval { 96 } else { 48 }).max(1);
    let mut start = 0;
    while start < elems.len() {
        let end = (start + per_txn).min(elems.len());
        apply_range(
            sock, op, table, set, interval, elems, start, end, tolerate, &mut out,
        )?;
        start = end;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn apply_range(
    sock: &mut NlSocket,
    op: Op,
    table: &str,
    set: &str,
    interval: bool,
    elems: &[WireElem],
    start: usize,
    end: usize,
    tolerate: &[i32],
    out: &mut TxnOutcome,
) -> io::Result<()> {
    if start >= end {
        return Ok(());
    }
    let errs = run_txn(sock, op, table, set, interval, &elems[start..end])?;
    if errs.is_empty() {
        out.applied += end - start;
        return Ok(());
    }
    if end - start == 1 {
        let e = &errs[0];
        if tolerate.contains(&e.errno) {
            out.applied += 1;
        } else {
            out.refused.push((start, e.errno, e.msg.clone()));
        }
        return Ok(());
    }
    // A set- or table-level error (e.g. the set does not exist) would
    // repeat for every element: stop splitting.
    if errs
        .iter()
        .any(|e| e.errno == libc::ENOENT && op == Op::Add || e.errno == libc::EINVAL)
    {
        let e = &errs[0];
        for i in start..end {
            out.refused.push((i, e.errno, e.msg.clone()));
        }
        return Ok(());
    }
    let mid = start + (end - start) / 2;
    apply_range(
        sock, op, table, set, interval, elems, start, mid, tolerate, out,
    )?;
    apply_range(
        sock, op, table, set, interval, elems, mid, end, tolerate, out,
    )
}

/// Dumps all elements of `set`, calling `f(key, interval_end, timeout_ms,
/// expires_ms)` for each without allocating per element.
pub fn dump_each(
    sock: &mut NlSocket,
    table: &str,
    set: &str,
    mut f: impl FnMut(&[u8], bool, Option<u64>, Option<u64>),
) -> Result<(), nl::KernelErrorOrIo> {
    let mut m = hdr(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
        nl::NLM_F_DUMP,
        NFPROTO_INET,
        0,
    );
    m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
    m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
    sock.dump(m, |ty, payload| {
        if ty != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM) || payload.len() < 4 {
            return;
        }
        let Some(list) = nl::find_attr(&payload[4..], NFTA_SET_ELEM_LIST_ELEMENTS) else {
            return;
        };
        for (ty, el) in nl::attrs(list) {
            if ty != NFTA_LIST_ELEM {
                continue;
            }
            let mut key: &[u8] = &[];
            let mut end = false;
            let mut timeout = None;
            let mut expires = None;
            for (aty, data) in nl::attrs(el) {
                match aty {
                    NFTA_SET_ELEM_KEY => {
                        if let Some(v) = nl::find_attr(data, NFTA_DATA_VALUE) {
                            key = v;
                        }
                    }
                    NFTA_SET_ELEM_FLAGS => {
                        end = nl::be32(data).unwrap_or(0) & NFT_SET_ELEM_INTERVAL_END != 0
                    }
                    NFTA_SET_ELEM_TIMEOUT => timeout = nl::be64(data).filter(|t| *t > 0),
                    NFTA_SET_ELEM_EXPIRATION => expires = nl::be64(data),
                    _ => {}
                }
            }
            if !key.is_empty() {
                f(key, end, timeout, expires);
            }
        }
    })
}

/// Dumps all elements of `set` into a vector.
pub fn dump(
    sock: &mut NlSocket,
    table: &str,
    set: &str,
) -> Result<Vec<DumpedElem>, nl::KernelErrorOrIo> {
    let mut out = Vec::new();
    dump_each(
        sock,
        table,
        set,
        |key, interval_end, timeout_ms, expires_ms| {
            out.push(DumpedElem {
                key: key.to_vec(),
                interval_end,
                timeout_ms,
                expires_ms,
            })
        },
    )?;
    Ok(out)
}

/// Pairs dumped interval boundaries into `(start, exclusive end)` ranges.
/// Works whatever order the kernel dumps them in.
pub fn pair_intervals(mut elems: Vec<DumpedElem>) -> Vec<(DumpedElem, Option<Vec<u8>>)> {
    elems.sort_by(|a, b| a.key.cmp(&b.key).then(b.interval_end.cmp(&a.interval_end)));
    let mut out: Vec<(DumpedElem, Option<Vec<u8>>)> = Vec::new();
    let mut open: Option<DumpedElem> = None;
    for e in elems {
        if e.interval_end {
            if let Some(s) = open.take() {
                out.push((s, Some(e.key)));
            }
        } else {
            if let Some(s) = open.take() {
                // A start without an end before the next start: the kernel
                // represents adjacent intervals that way only when the next
                // start closes it; treat the next start as the end.
                let k = e.key.clone();
                out.push((s, Some(k)));
            }
            open = Some(e);
        }
    }
    if let Some(s) = open {
        out.push((s, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        let (a, p) = s.split_once('/').unwrap();
        IpNet::new(a.parse().unwrap(), p.parse().unwrap())
    }

    #[test]
    fn v4_prefix_keys() {
        let (s, e) = net_keys(&net("10.1.0.0/16"));
        assert_eq!(s, vec![10, 1, 0, 0]);
        assert_eq!(e, Some(vec![10, 2, 0, 0]));
        let (_, e) = net_keys(&net("255.255.255.255/32"));
        assert_eq!(e, None);
        let (_, e) = net_keys(&net("0.0.0.0/0"));
        assert_eq!(e, None);
    }

    #[test]
    fn non_prefix_range_is_not_a_net() {
        assert_eq!(interval_to_net(&[10, 0, 0, 1], Some(&[10, 0, 0, 4])), None);
        assert_eq!(
            interval_to_net(&[10, 0, 0, 0], Some(&[10, 0, 0, 4])),
            Some(net("10.0.0.0/30"))
        );
        assert_eq!(interval_to_net(&[0, 0, 0, 0], None), Some(net("0.0.0.0/0")));
    }

    #[test]
    fn pairs_out_of_order_boundaries() {
        let d = |k: &[u8], end: bool| DumpedElem {
            key: k.to_vec(),
            interval_end: end,
            timeout_ms: None,
            expires_ms: None,
        };
        let got = pair_intervals(vec![
            d(&[10, 0, 1, 0], true),
            d(&[10, 0, 0, 0], false),
            d(&[192, 168, 0, 0], false),
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, Some(vec![10, 0, 1, 0]));
        assert_eq!(got[1].1, None);
    }

    proptest! {
        #[test]
        fn v4_prefix_roundtrip(a in any::<u32>(), p in 0u8..=32) {
            let n = IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), p);
            let (s, e) = net_keys(&n);
            prop_assert_eq!(interval_to_net(&s, e.as_deref()), Some(n));
        }

        #[test]
        fn v6_prefix_roundtrip(a in any::<u128>(), p in 0u8..=128) {
            let n = IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), p);
            let (s, e) = net_keys(&n);
            prop_assert_eq!(interval_to_net(&s, e.as_deref()), Some(n));
        }
    }
}
