//! Minimal netlink plumbing: a raw `AF_NETLINK` socket, a message builder
//! with nested attributes, and an attribute parser. Only what the nf_tables,
//! ctnetlink and sock_diag code of this crate needs.

use std::io;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_CAP_ACK: libc::c_int = 10;

/// Rounds `n` up to netlink's 4-byte alignment.
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink message under construction (header + payload + attributes).
pub struct Msg {
    pub buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    /// Starts a message of `ty` with `flags`; `seq` is filled in by the socket.
    pub fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// Appends a fixed family header (e.g. `nfgenmsg`), padded.
    pub fn push_raw(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends an attribute.
    pub fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v);
    }

    /// Opens a nested attribute; close it with [`Msg::end_nest`].
    pub fn begin_nest(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub fn end_nest(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Length of the innermost open nest so far (to split before u16 overflow).
    pub fn nest_len(&self) -> usize {
        self.nests.last().map(|s| self.buf.len() - s).unwrap_or(0)
    }

    /// Finalises the length and sequence number and returns the bytes.
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One received netlink message (header fields + payload after the header).
pub struct RxMsg<'a> {
    pub ty: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram into netlink messages.
pub fn parse_msgs(mut data: &[u8]) -> Vec<RxMsg<'_>> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            break;
        }
        out.push(RxMsg {
            ty: u16::from_ne_bytes([data[4], data[5]]),
            seq: u32::from_ne_bytes([data[8], data[9], data[10], data[11]]),
            payload: &data[NLMSG_HDRLEN..len],
        });
        let adv = align(len).min(data.len());
        data = &data[adv..];
    }
    out
}

/// Iterates the attributes of a buffer: yields `(type without flags, data)`.
pub fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        let adv = align(len).min(data.len());
        data = &data[adv..];
        Some((ty, payload))
    })
}

/// Finds the first attribute of type `ty`.
pub fn find_attr(data: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(data).find(|(t, _)| *t == ty).map(|(_, d)| d)
}

/// Reads a big-endian u64 attribute payload.
pub fn be64(d: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(..8)?.try_into().ok()?))
}

/// Reads a big-endian u32 attribute payload.
pub fn be32(d: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(..4)?.try_into().ok()?))
}

/// A raw netlink socket of one protocol, bound to the network namespace of
/// the thread that created it.
pub struct NlSocket {
    fd: libc::c_int,
    seq: u32,
    buf: Vec<u8>,
}

impl Drop for NlSocket {
    fn drop(&mut self) {
        // SAFETY: fd is owned by this struct and closed exactly once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// An error reported by the kernel for one request.
#[derive(Debug)]
pub struct KernelError {
    /// Positive errno.
    pub errno: i32,
    /// Extended ack message, if the kernel sent one.
    pub msg: Option<String>,
}

impl NlSocket {
    /// Opens a netlink socket of `protocol` (e.g. `NETLINK_NETFILTER`).
    pub fn open(protocol: libc::c_int) -> io::Result<NlSocket> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = NlSocket {
            fd,
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(1),
            buf: vec![0u8; 1 << 20],
        };
        let one: libc::c_int = 1;
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            // SAFETY: setsockopt with a valid int pointer; failure is harmless.
            unsafe {
                libc::setsockopt(
                    fd,
                    SOL_NETLINK,
                    opt,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as u32,
                );
            }
        }
        s.set_buf(libc::SO_RCVBUFFORCE, 8 << 20);
        // SAFETY: zeroed sockaddr_nl is a valid "any" address for bind.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: addr is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }

    fn set_buf(&self, opt: libc::c_int, size: usize) {
        let v = size.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: setsockopt with a valid int pointer; best effort.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                opt,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
    }

    /// Next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one datagram (possibly many concatenated messages).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() + 4096 > 200_000 {
            self.set_buf(libc::SO_SNDBUFFORCE, data.len() * 2 + 65536);
        }
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: data is a valid slice; addr a valid sockaddr_nl.
            let r = unsafe {
                libc::sendto(
                    self.fd,
                    data.as_ptr() as *const libc::c_void,
                    data.len(),
                    0,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(());
        }
    }

    /// Receives one datagram into the internal buffer and returns its length.
    fn recv_raw(&mut self) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a valid writable buffer of its length.
            let r = unsafe {
                libc::recv(
                    self.fd,
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(r as usize);
        }
    }

    /// Sends `data` (one or many concatenated messages, e.g. an nfnetlink
    /// batch without per-message `NLM_F_ACK`) followed by `fence`, a request
    /// the kernel always answers, and returns the errors the kernel reported
    /// for the messages before the fence. Netlink requests to the kernel are
    /// processed synchronously in `sendmsg`, so every error of `data` is
    /// queued before the fence's ack.
    pub fn send_fenced(&mut self, data: &[u8], fence: Msg) -> io::Result<Vec<KernelError>> {
        self.send(data)?;
        let fseq = self.next_seq();
        let fbytes = fence.finish(fseq);
        self.send(&fbytes)?;
        let mut errors = Vec::new();
        loop {
            let n = self.recv_raw()?;
            let data = self.buf[..n].to_vec();
            for m in parse_msgs(&data) {
                if m.ty != NLMSG_ERROR || m.payload.len() < 4 {
                    continue;
                }
                let code =
                    i32::from_ne_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                if m.seq == fseq {
                    if code != 0 {
                        errors.push(KernelError {
                            errno: -code,
                            msg: ext_ack_msg(m.payload),
                        });
                    }
                    return Ok(errors);
                }
                if code != 0 {
                    errors.push(KernelError {
                        errno: -code,
                        msg: ext_ack_msg(m.payload),
                    });
                }
            }
        }
    }

    /// Runs a dump request and calls `f` with each message payload until
    /// `NLMSG_DONE`.
    pub fn dump(&mut self, msg: Msg, mut f: impl FnMut(u16, &[u8])) -> Result<(), KernelErrorOrIo> {
        let seq = self.next_seq();
        let bytes = msg.finish(seq);
        self.send(&bytes).map_err(KernelErrorOrIo::Io)?;
        loop {
            let n = self.recv_raw().map_err(KernelErrorOrIo::Io)?;
            let data = self.buf[..n].to_vec();
            for m in parse_msgs(&data) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = m
                            .payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(KernelErrorOrIo::Kernel(KernelError {
                            errno: -code,
                            msg: ext_ack_msg(m.payload),
                        }));
                    }
                    ty => f(ty, m.payload),
                }
            }
        }
    }

    /// Sends one request with `NLM_F_ACK` and waits for its ack.
    pub fn request(&mut self, msg: Msg) -> Result<(), KernelErrorOrIo> {
        let seq = self.next_seq();
        let bytes = msg.finish(seq);
        self.send(&bytes).map_err(KernelErrorOrIo::Io)?;
        loop {
            let n = self.recv_raw().map_err(KernelErrorOrIo::Io)?;
            let data = self.buf[..n].to_vec();
            for m in parse_msgs(&data) {
                if m.ty != NLMSG_ERROR || m.seq != seq || m.payload.len() < 4 {
                    continue;
                }
                let code =
                    i32::from_ne_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                if code == 0 {
                    return Ok(());
                }
                return Err(KernelErrorOrIo::Kernel(KernelError {
                    errno: -code,
                    msg: ext_ack_msg(m.payload),
                }));
            }
        }
    }
}

/// Either an I/O error on the socket or an error code from the kernel.
#[derive(Debug)]
pub enum KernelErrorOrIo {
    /// Socket-level failure.
    Io(io::Error),
    /// The kernel rejected the request.
    Kernel(KernelError),
}

impl KernelErrorOrIo {
    /// The errno of either variant.
    pub fn errno(&self) -> i32 {
        match self {
            KernelErrorOrIo::Io(e) => e.raw_os_error().unwrap_or(0),
            KernelErrorOrIo::Kernel(k) => k.errno,
        }
    }
}

impl std::fmt::Display for KernelErrorOrIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelErrorOrIo::Io(e) => write!(f, "{e}"),
            KernelErrorOrIo::Kernel(k) => {
                write!(f, "{}", io::Error::from_raw_os_error(k.errno))?;
                if let Some(m) = &k.msg {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
        }
    }
}

/// Extracts NLMSGERR_ATTR_MSG from an error payload (with NETLINK_CAP_ACK
/// the echoed request is just its 16-byte header).
fn ext_ack_msg(payload: &[u8]) -> Option<String> {
    if payload.len() < 4 + NLMSG_HDRLEN {
        return None;
    }
    let inner_len = u32::from_ne_bytes(payload[4..8].try_into().ok()?) as usize;
    let code = i32::from_ne_bytes(payload[0..4].try_into().ok()?);
    // With CAP_ACK only the header is echoed back on errors.
    let echoed = if code != 0 { NLMSG_HDRLEN } else { inner_len };
    let rest = payload.get(4 + align(echoed)..)?;
    let m = find_attr(rest, 1)?;
    let s = String::from_utf8_lossy(m);
    Some(s.trim_end_matches('\0').to_string())
}

/// Builds the 4-byte `nfgenmsg` header.
pub fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let r = res_id.to_be_bytes();
    [family, 0, r[0], r[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_roundtrip_with_nested_attrs() {
        let mut m = Msg::new(0x0a0c, NLM_F_REQUEST);
        m.push_raw(&nfgenmsg(1, 0));
        m.attr_str(1, "tbl");
        m.begin_nest(3);
        m.attr(1, &[1, 2, 3, 4, 5]);
        m.end_nest();
        let bytes = m.finish(7);
        let msgs = parse_msgs(&bytes);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ty, 0x0a0c);
        assert_eq!(msgs[0].seq, 7);
        let a: Vec<_> = attrs(&msgs[0].payload[4..]).collect();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (1, &b"tbl\0"[..]));
        assert_eq!(a[1].0, 3);
        let inner: Vec<_> = attrs(a[1].1).collect();
        assert_eq!(inner, vec![(1, &[1u8, 2, 3, 4, 5][..])]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let mut m = Msg::new(1, 0);
        m.attr(1, &[9; 10]);
        let bytes = m.finish(1);
        for cut in 0..bytes.len() {
            let _ = parse_msgs(&bytes[..cut]);
            let _ = attrs(&bytes[..cut]).count();
        }
    }
}
