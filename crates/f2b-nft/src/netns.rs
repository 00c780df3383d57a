//! Network-namespace helpers for tests and benchmarks: create a named
//! namespace with `ip netns add`, delete it on drop, and run code inside it
//! on a dedicated thread (`setns(CLONE_NEWNET)` affects only that thread, so
//! the host's ruleset is never touched).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a namespace could not be created or entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip netns add` failed (not root, no netns support ...).
    #[error("cannot create network namespace {name}: {reason}")]
    Create {
        /// Namespace name.
        name: String,
        /// Command output or error.
        reason: String,
    },
    /// setns(2) failed.
    #[error("cannot enter network namespace {name}: {reason}")]
    Enter {
        /// Namespace name.
        name: String,
        /// OS error.
        reason: String,
    },
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace, deleted when dropped (also on panic).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `f2bt-<tag>-<pid>-<n>` with its loopback up.
    pub fn create(tag: &str) -> Result<Netns, NetnsError> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("f2bt-{tag}-{}-{n}", std::process::id());
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(NetnsError::Create {
                    name,
                    reason: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                })
            }
            Err(e) => {
                return Err(NetnsError::Create {
                    name,
                    reason: format!("running ip: {e}"),
                })
            }
        }
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Ok(ns)
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace (`ip netns exec`), returning
    /// (success, stdout, stderr).
    pub fn exec(&self, argv: &[&str]) -> (bool, String, String) {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        match c.output() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }

    /// Runs `f` on a new thread that has entered this namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        let name = self.name.clone();
        let h = std::thread::spawn(move || -> Result<T, NetnsError> {
            enter(&name)?;
            Ok(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Spawns a thread inside the namespace and returns its join handle.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T, NetnsError>> {
        let name = self.name.clone();
        std::thread::spawn(move || -> Result<T, NetnsError> {
            enter(&name)?;
            Ok(f())
        })
    }
}

/// Moves the calling thread into the named namespace.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = format!("/var/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|e| NetnsError::Enter {
        name: name.to_string(),
        reason: format!("{path}: {e}"),
    })?;
    use std::os::fd::AsRawFd;
    // SAFETY: f is an open namespace file; setns only changes this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(NetnsError::Enter {
            name: name.to_string(),
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
