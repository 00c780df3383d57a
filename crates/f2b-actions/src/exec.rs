//! Running rendered commands: `sh -c <script> <args...>` in its own process
//! group, with a timeout that kills the whole group.
//!
//! This is the only place in f2b that spawns processes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::error::ActionError;
use crate::tags::RenderedCommand;

/// Output kept per stream (the rest is read and discarded).
const MAX_CAPTURE: usize = 64 * 1024;
/// How long to wait for a SIGTERM'ed group before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(100);
/// How long to wait for pipes to reach EOF once the shell exited (a
/// background grandchild may keep them open).
const PIPE_DRAIN: Duration = Duration::from_millis(50);
/// How long a child of `crate::spawn` runs with its pipes unwatched (it can
/// write a pipe's capacity, 64 KiB, meanwhile); if it has not ended by then
/// its pipes are read as it writes.
const EARLY_END: Duration = Duration::from_millis(20);

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The shell's exit code, if it exited normally.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// True when it exceeded its timeout and was killed.
    pub timed_out: bool,
    /// Captured standard output (at most 64 KiB).
    pub stdout: Vec<u8>,
    /// Captured standard error (at most 64 KiB).
    pub stderr: Vec<u8>,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl ExecOutcome {
    /// Success means exit code 0, as in fail2ban (`success_codes=(0,)`).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Commands recorded by a dry-run [`Executor`].
pub type Recording = Arc<Mutex<Vec<RenderedCommand>>>;

/// Spawns action commands. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Executor {
    shell: String,
    prefix: Vec<String>,
    dry_run: Option<Recording>,
}

impl Default for Executor {
    fn default() -> Self {
        Executor {
            shell: "/bin/sh".to_owned(),
            prefix: Vec::new(),
            dry_run: None,
        }
    }
}

impl Executor {
    /// `/bin/sh`, no prefix (what fail2ban does: `Popen(shell=True)`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every command as `<prefix...> /bin/sh -c script args...`, e.g.
    /// `["ip", "netns", "exec", "ns1"]` to run actions inside a network
    /// namespace.
    pub fn with_prefix(mut self, prefix: Vec<String>) -> Self {
        self.prefix = prefix;
        self
    }

    /// Uses another shell binary instead of `/bin/sh`.
    pub fn with_shell(mut self, shell: impl Into<String>) -> Self {
        self.shell = shell.into();
        self
    }

    /// An executor that runs nothing: every command is appended to `rec`
    /// and reported successful (`fail2ban-client -t`-style checks, tests).
    pub fn dry_run(rec: Recording) -> Self {
        Executor {
            dry_run: Some(rec),
            ..Self::default()
        }
    }

    /// The command prefix.
    pub fn prefix(&self) -> &[String] {
        &self.prefix
    }

    /// Runs `cmd` with `timeout`. An empty script is a successful no-op
    /// (fail2ban: "Nothing to do"). On timeout the whole process group gets
    /// SIGTERM, then SIGKILL.
    pub async fn run(
        &self,
        cmd: &RenderedCommand,
        timeout: Duration,
        jail: &str,
        action: &str,
    ) -> Result<ExecOutcome, ActionError> {
        if let Some(rec) = &self.dry_run {
            if let Ok(mut v) = rec.lock() {
                v.push(cmd.clone());
            }
            return Ok(ExecOutcome {
                code: Some(0),
                signal: None,
                timed_out: false,
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: Duration::ZERO,
            });
        }
        if cmd.is_empty() {
            return Ok(ExecOutcome {
                code: Some(0),
                signal: None,
                timed_out: false,
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: Duration::ZERO,
            });
        }
        let (program, rest): (&str, Vec<&str>) = match self.prefix.split_first() {
            Some((p, r)) => {
                let mut v: Vec<&str> = r.iter().map(String::as_str).collect();
                v.push(&self.shell);
                (p.as_str(), v)
            }
            None => (self.shell.as_str(), Vec::new()),
        };
        let spawn_err = |source: std::io::Error| ActionError::Spawn {
            jail: jail.to_owned(),
            action: action.to_owned(),
            program: program.to_owned(),
            source,
        };
        if cmd.script.contains('\0') {
            return Err(spawn_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "command contains a NUL byte",
            )));
        }
        let started = Instant::now();
        // A child of `crate::spawn` starts with its pipes unwatched (`early`): most
        // commands end within `EARLY_END`, and their output, at most a pipe's
        // capacity, is then read at once, with no epoll registration of the pipes.
        let (mut proc, mut out_pipe, mut err_pipe, early) = match spawn_clone(program, &rest, cmd) {
            Some(Ok(s)) => {
                let crate::spawn::Spawned {
                    pid,
                    pidfd,
                    stdout,
                    stderr,
                } = s;
                // SAFETY: an `OwnedFd` keeps its one descriptor open until
                // dropped, which the `AsyncFd` owning it controls.
                let registered = unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        pidfd,
                        tokio::io::Interest::READABLE,
                    )
                };
                let fd = match registered {
                    Ok(fd) => fd,
                    Err(e) => {
                        let (pidfd, e) = e.into_parts();
                        abandon(pid, pidfd);
                        return Err(spawn_err(e));
                    }
                };
                (
                    Proc::Clone { pid, fd: Some(fd) },
                    None,
                    None,
                    Some((stdout, stderr)),
                )
            }
            Some(Err(e)) => return Err(spawn_err(e)),
            None => {
                let mut c = Command::new(program);
                c.args(&rest)
                    .arg("-c")
                    .arg(&cmd.script)
                    .args(&cmd.args)
                    .stdin(dev_null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                let mut child = c.spawn().map_err(spawn_err)?;
                let (o, e) = (child.stdout.take(), child.stderr.take());
                (
                    Proc::Tokio(child),
                    o.map(Pipe::TokioOut),
                    e.map(Pipe::TokioErr),
                    None,
                )
            }
        };
        let pid = proc.pid();
        // If this future is dropped before the command ends (shutdown,
        // cancelled task), the guard kills the whole group (and `Proc`'s drop
        // leaves the child to be reaped later).
        let mut guard = GroupGuard(pid);
        let (mut out, mut err) = (Capture::default(), Capture::default());
        let mut left = timeout;
        let mut ended = None;
        if let Some((o, e)) = early {
            let first = EARLY_END.min(timeout);
            let watch = |fd| pipe_receiver(fd).map(|r| Some(Pipe::Clone(r)));
            match tokio::time::timeout(first, proc.wait()).await {
                Ok(status) => {
                    // Ended: a pipe still open after what it holds is read has a
                    // background grandchild behind it, and is drained below.
                    if out.read_now(&o) {
                        out_pipe = watch(o).map_err(spawn_err)?;
                    }
                    if err.read_now(&e) {
                        err_pipe = watch(e).map_err(spawn_err)?;
                    }
                    ended = Some(status);
                }
                Err(_) => {
                    left = timeout.saturating_sub(first);
                    out_pipe = watch(o).map_err(spawn_err)?;
                    err_pipe = watch(e).map_err(spawn_err)?;
                }
            }
        }
        let (status, timed_out) = {
            // The pipes are read in this task, alongside the wait (no task per pipe: a
            // storm of bans spawns thousands of commands).
            let reads = async {
                tokio::join!(out.read(out_pipe), err.read(err_pipe));
            };
            tokio::pin!(reads);
            let mut reads_done = false;
            let ended = match ended {
                Some(status) => (status, false),
                None => {
                    let waited = wait_or_kill(&mut proc, pid, left);
                    tokio::pin!(waited);
                    loop {
                        tokio::select! {
                            s = &mut waited => break s,
                            () = &mut reads, if !reads_done => reads_done = true,
                        }
                    }
                }
            };
            if !reads_done {
                // The shell ended; a background grandchild may keep the pipes open.
                let _ = tokio::time::timeout(PIPE_DRAIN, &mut reads).await;
            }
            ended
        };
        let (code, signal) = status.map_err(spawn_err)?;
        guard.0 = None;
        let elapsed = started.elapsed();
        // A pipe still open after the drain gives nothing, as fail2ban's
        // communicate() would not have returned either.
        let stdout = out.take();
        let stderr = err.take();
        Ok(ExecOutcome {
            code,
            signal,
            timed_out,
            stdout,
            stderr,
            elapsed,
        })
    }
}

/// Waits up to `timeout` for `proc`; past it, SIGTERM to the group, then
/// after [`TERM_GRACE`] SIGKILL (fail2ban kills the tree in any case:
/// `tout_kill_tree`). The exit, and whether the timeout struck.
async fn wait_or_kill(
    proc: &mut Proc,
    pid: Option<libc::pid_t>,
    timeout: Duration,
) -> (std::io::Result<crate::spawn::Ended>, bool) {
    if let Ok(r) = tokio::time::timeout(timeout, proc.wait()).await {
        return (r, false);
    }
    let kill = |sig| {
        if let Some(pid) = pid {
            kill_group(pid, sig);
        }
    };
    kill(libc::SIGTERM);
    let r = match tokio::time::timeout(TERM_GRACE, proc.wait()).await {
        Ok(r) => {
            kill(libc::SIGKILL);
            r
        }
        Err(_) => {
            kill(libc::SIGKILL);
            proc.wait().await
        }
    };
    (r, true)
}

/// Set once [`crate::spawn`] is unsupported here (kernels before 5.4): every
/// later command goes through tokio's `Command`.
static CLONE_UNSUPPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every later command of this process go through tokio's `Command`,
/// as on a kernel without `CLONE_PIDFD` (for tests of that path).
#[doc(hidden)]
pub fn use_command_spawner() {
    CLONE_UNSUPPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Starts `program rest... -c script args...` with [`crate::spawn`];
/// `None` when that is unsupported here (use `Command`).
fn spawn_clone(
    program: &str,
    rest: &[&str],
    cmd: &RenderedCommand,
) -> Option<std::io::Result<crate::spawn::Spawned>> {
    use std::sync::atomic::Ordering;
    if CLONE_UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    reap_orphans();
    let cstr = |s: &str| {
        std::ffi::CString::new(s).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "argument contains a NUL byte",
            )
        })
    };
    let build = || -> std::io::Result<(std::ffi::CString, Vec<std::ffi::CString>)> {
        let mut argv = Vec::with_capacity(rest.len() + 3 + cmd.args.len());
        argv.push(cstr(program)?);
        for a in rest.iter().copied().chain(["-c", cmd.script.as_str()]) {
            argv.push(cstr(a)?);
        }
        for a in &cmd.args {
            argv.push(cstr(a)?);
        }
        Ok((cstr(&resolve_program(program)?)?, argv))
    };
    let (prog, argv) = match build() {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let stdin = NULL.get_or_init(open_dev_null).as_ref()?;
    match crate::spawn::spawn(&prog, &argv, std::os::fd::AsFd::as_fd(stdin)) {
        Ok(s) => Some(Ok(s)),
        Err(crate::spawn::SpawnError::Unsupported) => {
            CLONE_UNSUPPORTED.store(true, Ordering::Relaxed);
            None
        }
        Err(crate::spawn::SpawnError::Io(e)) => Some(Err(e)),
    }
}

/// `program` as a path to execute: itself if it contains a `/`, else the
/// first executable file of that name in `$PATH` (what `execvp` and
/// `Command` do; `$PATH` unset: glibc's default, `/bin:/usr/bin`).
fn resolve_program(program: &str) -> std::io::Result<std::borrow::Cow<'_, str>> {
    use std::os::unix::ffi::OsStrExt;
    if program.contains('/') {
        return Ok(program.into());
    }
    let path = std::env::var_os("PATH");
    let dirs = path
        .as_deref()
        .map_or(b"/bin:/usr/bin".as_slice(), |p| p.as_bytes());
    for dir in dirs.split(|&c| c == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let full = std::path::Path::new(std::ffi::OsStr::from_bytes(dir)).join(program);
        let Ok(c) = std::ffi::CString::new(full.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: access() reads a NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && full.is_file() {
            if let Some(s) = full.to_str() {
                return Ok(s.to_owned().into());
            }
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ENOENT))
}

/// A non-blocking pipe read end as a tokio reader.
fn pipe_receiver(fd: std::os::fd::OwnedFd) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    // The read end is a pipe and non-blocking (`crate::spawn::pipe`).
    tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(fd)
}

/// Children whose command was dropped before they were reaped (their group
/// got SIGKILL); reaped at the next spawn.
static ORPHANS: Mutex<Vec<std::os::fd::OwnedFd>> = Mutex::new(Vec::new());

/// A started child that cannot be watched: its group is killed, and it is
/// reaped at a later spawn.
fn abandon(pid: libc::pid_t, pidfd: std::os::fd::OwnedFd) {
    kill_group(pid, libc::SIGKILL);
    if let Ok(mut v) = ORPHANS.lock() {
        v.push(pidfd);
    }
}

fn reap_orphans() {
    if let Ok(mut v) = ORPHANS.try_lock() {
        if !v.is_empty() {
            v.retain(|fd| matches!(crate::spawn::wait_pidfd(fd, false), Ok(None)));
        }
    }
}

/// A running command's process.
enum Proc {
    /// Started by [`crate::spawn`]; `fd` is taken once reaped.
    Clone {
        pid: libc::pid_t,
        fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    },
    /// Started by tokio's `Command` (kernels without `CLONE_PIDFD`).
    Tokio(tokio::process::Child),
}

impl Proc {
    fn pid(&self) -> Option<libc::pid_t> {
        match self {
            Proc::Clone { pid, .. } => Some(*pid),
            Proc::Tokio(c) => c.id().map(|p| p as libc::pid_t),
        }
    }

    /// Waits for the process to end and reaps it: `(exit code, signal)`.
    async fn wait(&mut self) -> std::io::Result<crate::spawn::Ended> {
        match self {
            Proc::Clone { fd, .. } => {
                let Some(afd) = fd.as_ref() else {
                    return Err(std::io::Error::other("command already reaped"));
                };
                loop {
                    let mut ready = afd.readable().await?;
                    if let Some(ended) = crate::spawn::wait_pidfd(afd.get_ref(), false)? {
                        *fd = None;
                        return Ok(ended);
                    }
                    ready.clear_ready();
                }
            }
            Proc::Tokio(c) => {
                use std::os::unix::process::ExitStatusExt;
                let s = c.wait().await?;
                Ok((s.code(), s.signal()))
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Proc::Clone { fd, .. } = self {
            // Dropped before the end (its group is killed by `GroupGuard`):
            // reap it later rather than leave a zombie.
            if let Some(afd) = fd.take() {
                if let Ok(mut v) = ORPHANS.lock() {
                    v.push(afd.into_inner());
                }
            }
        }
    }
}

/// A command's output pipe, from either spawner.
enum Pipe {
    Clone(tokio::net::unix::pipe::Receiver),
    TokioOut(tokio::process::ChildStdout),
    TokioErr(tokio::process::ChildStderr),
}

impl tokio::io::AsyncRead for Pipe {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Pipe::Clone(r) => std::pin::Pin::new(r).poll_read(cx, buf),
            Pipe::TokioOut(r) => std::pin::Pin::new(r).poll_read(cx, buf),
            Pipe::TokioErr(r) => std::pin::Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// `/dev/null`, opened once per process.
static NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();

fn open_dev_null() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Standard input for a `Command`: a duplicate of the one `/dev/null`
/// descriptor (a `dup` per spawn instead of an `open` with its path
/// lookup); `Stdio::null()` if `/dev/null` cannot be opened.
fn dev_null() -> std::process::Stdio {
    NULL.get_or_init(open_dev_null)
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map_or_else(std::process::Stdio::null, std::process::Stdio::from)
}

struct GroupGuard(Option<libc::pid_t>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid, libc::SIGKILL);
        }
    }
}

fn kill_group(pgid: libc::pid_t, sig: libc::c_int) {
    if pgid > 1 {
        // SAFETY: killpg has no memory-safety preconditions; the group id is
        // the one of the child we spawned with process_group(0).
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

/// One pipe's output, at most [`MAX_CAPTURE`] bytes (the rest is read and
/// discarded); kept only if the pipe reached its end.
#[derive(Default)]
struct Capture {
    buf: Vec<u8>,
    done: bool,
}

impl Capture {
    async fn read<R: tokio::io::AsyncRead + Unpin>(&mut self, pipe: Option<R>) {
        let Some(mut r) = pipe else {
            self.done = true;
            return;
        };
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.keep(&chunk[..n]),
            }
        }
        self.done = true;
    }

    /// Keeps what fits of `bytes` (the rest is discarded).
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_CAPTURE.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Reads what `fd` (non-blocking) holds now, [`Capture::read`]'s way.
    /// Whether it is still open (no end of file yet).
    fn read_now(&mut self, fd: &std::os::fd::OwnedFd) -> bool {
        use std::os::fd::AsRawFd;
        let mut chunk = [0u8; 8192];
        loop {
            // SAFETY: read into a buffer of the length given.
            let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
            if n > 0 {
                self.keep(&chunk[..n as usize]);
                continue;
            }
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return true,
                    _ => {}
                }
            }
            self.done = true;
            return false;
        }
    }

    fn take(self) -> Vec<u8> {
        if self.done {
            self.buf
        } else {
            Vec::new()
        }
    }
}
