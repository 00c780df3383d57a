//! Who is on the other end of a Unix socket (`SO_PEERCRED`), and may they
//! command the server?
//!
//! fail2ban relies on the socket file's mode alone. f2b additionally asks
//! the kernel for the connecting process's credentials and admits only root
//! and the uid the server runs as (optionally also one group).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Credentials of a connected peer, as the kernel recorded them at
/// `connect()` time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// Who may command the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerPolicy {
    /// The socket owner's uid (normally the server's effective uid).
    pub owner_uid: u32,
    /// A group whose members are also admitted (the `socket` group option),
    /// matched against the peer's effective gid.
    pub allowed_gid: Option<u32>,
}

impl PeerPolicy {
    /// Root and the current process's effective uid.
    pub fn current() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        PeerPolicy {
            owner_uid: uid,
            allowed_gid: None,
        }
    }

    /// Whether `cred` is admitted.
    pub fn allows(&self, cred: &PeerCred) -> bool {
        cred.uid == 0 || cred.uid == self.owner_uid || self.allowed_gid == Some(cred.gid)
    }
}

/// Reads `SO_PEERCRED` of a connected Unix stream socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_credentials(sock: &impl AsFd) -> io::Result<PeerCred> {
    let fd = sock.as_fd().as_raw_fd();
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: fd is a valid open descriptor borrowed for the call; cred and
    // len point to properly sized, writable locals.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short ucred",
        ));
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `true` when the peer is root or has the server's effective uid.
pub fn peer_allowed(sock: &impl AsFd) -> io::Result<bool> {
    peer_allowed_by(sock, &PeerPolicy::current())
}

/// `true` when `policy` admits the peer.
pub fn peer_allowed_by(sock: &impl AsFd, policy: &PeerPolicy) -> io::Result<bool> {
    Ok(policy.allows(&peer_credentials(sock)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn own_uid_is_allowed_and_others_are_not() {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let cred = peer_credentials(&a).expect("SO_PEERCRED");
        // SAFETY: trivial libc getters.
        let (uid, gid, pid) = unsafe { (libc::geteuid(), libc::getegid(), libc::getpid()) };
        assert_eq!((cred.uid, cred.gid, cred.pid), (uid, gid, pid));
        assert!(peer_allowed(&a).expect("check"));
        let stranger = PeerCred {
            pid: 1,
            uid: 4242,
            gid: 4242,
        };
        let p = PeerPolicy {
            owner_uid: 1000,
            allowed_gid: None,
        };
        assert!(!p.allows(&stranger));
        assert!(p.allows(&PeerCred { uid: 0, ..stranger }));
        assert!(p.allows(&PeerCred {
            uid: 1000,
            ..stranger
        }));
        let g = PeerPolicy {
            allowed_gid: Some(4242),
            ..p
        };
        assert!(g.allows(&stranger));
    }

    #[test]
    fn not_a_socket_is_an_error() {
        let f = std::fs::File::open("/dev/null").expect("open");
        assert!(peer_credentials(&f).is_err());
    }
}
