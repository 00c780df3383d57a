//! Starting an action's process: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`.
//!
//! What `posix_spawn` (Rust's `Command`) does, without the parts a storm of
//! bans pays for each time: glibc maps and unmaps a stack per spawn (the
//! unmap flushes the TLB of every CPU a thread of the daemon ran on), reads
//! `RLIMIT_STACK` and `sysconf`, and tokio then opens a pidfd for the child
//! it was not given. Here the stack is a buffer kept per thread, and the
//! kernel returns the pidfd with the child.
//!
//! The child runs in the parent's memory on that stack until `execve`; the
//! calling thread is suspended meanwhile (`CLONE_VFORK`), so nothing it owns
//! can change under the child. The child only makes system calls: process
//! group, the three standard descriptors, `SIGPIPE` back to its default
//! (Rust ignores it; an ignored signal stays ignored across `execve`), an
//! empty signal mask, `execve`; on failure it stores `errno` where the
//! parent reads it and exits with 127. All signals are blocked in the
//! calling thread around `clone`, so no handler of the daemon runs in the
//! child before it resets its mask right before `execve`.
//!
//! Kernels before 5.4 (no `CLONE_PIDFD`, `pidfd_open` or `waitid(P_PIDFD)`;
//! probed once) get [`SpawnError::Unsupported`], and the caller uses `Command`.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

extern "C" {
    static environ: *const *const libc::c_char;
}

/// Stack of the child between `clone` and `execve` (it calls a handful of
/// system call wrappers: well under a page of it is used). Left
/// uninitialised, so only the pages the child touches become resident.
const CHILD_STACK: usize = 16 * 1024;

thread_local! {
    static STACK: RefCell<Option<Box<[MaybeUninit<u8>]>>> = const { RefCell::new(None) };
}

/// A started child: its pid, its pidfd, and the read ends (non-blocking) of
/// its standard output and error.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The kernel lacks what this needs (see `supported`).
    Unsupported,
    /// Pipes, `clone` or `execve` failed.
    Io(io::Error),
}

impl From<io::Error> for SpawnError {
    fn from(e: io::Error) -> Self {
        SpawnError::Io(e)
    }
}

/// What the child reads (prepared by the parent: the child allocates
/// nothing) and the one thing it writes.
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Sources of descriptors 0, 1 and 2 (each >= 3).
    fds: [RawFd; 3],
    /// `errno` of the failed step, 0 if `execve` succeeded.
    err: libc::c_int,
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive and not touched by the
    // suspended parent until this child has exec'd or exited. Only system
    // call wrappers run here (no allocation, no lock).
    unsafe {
        let a = &mut *arg.cast::<ChildArgs>();
        let fail = |a: &mut ChildArgs| -> ! {
            a.err = *libc::__errno_location();
            if a.err == 0 {
                a.err = libc::EINVAL;
            }
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) != 0 {
            fail(a);
        }
        for (target, &src) in a.fds.iter().enumerate() {
            if libc::dup2(src, target as RawFd) < 0 {
                fail(a);
            }
        }
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
            fail(a);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            fail(a);
        }
        libc::execve(a.program, a.argv, a.envp);
        fail(a)
    }
}

/// `fd` as an owned descriptor numbered 3 or above (the child's `dup2`s to
/// 0, 1 and 2 must not overwrite a source before using it).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on a descriptor we own; the result is a new descriptor.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// A close-on-exec pipe: (read end, non-blocking; write end, blocking).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own (the read end's own description).
    if unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r, above_stdio(w)?))
}

/// Whether this kernel has what [`spawn`] needs: `CLONE_PIDFD` (5.2),
/// `pidfd_open` (5.3) and `waitid(P_PIDFD)` (5.4). Probed once on this
/// process's own pidfd: `waitid` on it fails with `ECHILD` where `P_PIDFD`
/// is known. (The legacy `clone` ignores flags it does not know, so
/// `CLONE_PIDFD` itself cannot be probed safely by trying it.)
fn supported() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        // SAFETY: pidfd_open on our own pid; the result is a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        if fd < 0 {
            return false;
        }
        // SAFETY: `fd` is a new descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        matches!(wait_pidfd(&fd, false), Err(e) if e.raw_os_error() == Some(libc::ECHILD))
    })
}

/// Starts `program` with `argv` (argv[0] included) and the daemon's
/// environment, stdin from `stdin`, in a new process group.
pub(crate) fn spawn(
    program: &CStr,
    argv: &[CString],
    stdin: BorrowedFd<'_>,
) -> Result<Spawned, SpawnError> {
    if !supported() {
        return Err(SpawnError::Unsupported);
    }
    // a copy only if it is one of 0, 1, 2
    let stdin_copy = if stdin.as_raw_fd() > 2 {
        None
    } else {
        Some(above_stdio(stdin.try_clone_to_owned()?)?)
    };
    let stdin = stdin_copy
        .as_ref()
        .map_or(stdin.as_raw_fd(), |f| f.as_raw_fd());
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let mut args = ChildArgs {
        program: program.as_ptr(),
        argv: ptrs.as_ptr(),
        // SAFETY: reading the pointer; f2b never modifies its environment
        // (no `set_var`), so the array it points to is stable.
        envp: unsafe { environ },
        fds: [stdin, out_w.as_raw_fd(), err_w.as_raw_fd()],
        err: 0,
    };
    let mut pidfd: libc::c_int = -1;
    let pid = STACK.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stack = slot.get_or_insert_with(|| Box::new_uninit_slice(CHILD_STACK));
        // SAFETY: the stack grows down from its 16-byte aligned top; the
        // child uses it only while this thread is suspended (CLONE_VFORK),
        // and `args`, `ptrs`, `argv` and `program` outlive that. All signals
        // are blocked around the call and the mask restored after.
        unsafe {
            let top = stack.as_mut_ptr().add(stack.len());
            let top = top.sub(top as usize % 16);
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child_main,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                std::ptr::addr_of_mut!(args).cast(),
                std::ptr::addr_of_mut!(pidfd),
            );
            let e = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                Err(e)
            } else {
                Ok(pid)
            }
        }
    });
    let pid = match pid {
        Ok(p) => p,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(SpawnError::Unsupported),
        Err(e) => return Err(SpawnError::Io(e)),
    };
    if pidfd < 0 {
        // Not expected after `supported()`: a kernel that ignored CLONE_PIDFD.
        // The child runs without a pidfd: end it, reap it, and use `Command`.
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(SpawnError::Unsupported);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((stdin_copy, out_w, err_w));
    if args.err != 0 {
        // The child exited before `execve` succeeded: reap it now.
        let _ = wait_pidfd(&pidfd, true);
        return Err(SpawnError::Io(io::Error::from_raw_os_error(args.err)));
    }
    Ok(Spawned {
        pid,
        pidfd,
        stdout: out_r,
        stderr: err_r,
    })
}

/// How a reaped child ended: `(exit code, signal)`.
pub(crate) type Ended = (Option<i32>, Option<i32>);

/// Reaps the child of `pidfd` if it has ended (`block`: waits for it).
/// `Ok(None)`: still running.
pub(crate) fn wait_pidfd(pidfd: &OwnedFd, block: bool) -> io::Result<Option<Ended>> {
    let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: a zeroed siginfo_t is valid; waitid fills it.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our pidfd with a valid siginfo pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut si,
                flags,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid succeeded, so si_pid/si_status are those of a child.
        let (pid, status) = unsafe { (si.si_pid(), si.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match si.si_code {
            libc::CLD_EXITED => (Some(status), None),
            _ => (None, Some(status)),
        }));
    }
}

#[cfg(test)]
mod tests {
    /// The machines f2b is tested on have pidfds (Linux >= 5.4), so the
    /// tests of `exec` run this module's path, not the fallback.
    #[test]
    fn this_kernel_has_what_spawn_needs() {
        assert!(super::supported());
    }
}
