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
        let started = Instant::now();
        let mut child = c.spawn().map_err(spawn_err)?;
        let pid = child.id().map(|p| p as libc::pid_t);
        // If this future is dropped before the command ends (shutdown,
        // cancelled task), the guard kills the whole group.
        let mut guard = GroupGuard(pid);
        // The pipes are read in this task, alongside the wait (no task per pipe: a
        // storm of bans spawns thousands of commands).
        let (mut out, mut err) = (Capture::default(), Capture::default());
        let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
        let mut timed_out = false;
        let status = {
            let reads = async {
                tokio::join!(out.read(out_pipe), err.read(err_pipe));
            };
            tokio::pin!(reads);
            let waited = async {
                match tokio::time::timeout(timeout, child.wait()).await {
                    Ok(r) => r,
                    Err(_) => {
                        timed_out = true;
                        if let Some(pid) = pid {
                            kill_group(pid, libc::SIGTERM);
                        }
                        match tokio::time::timeout(TERM_GRACE, child.wait()).await {
                            Ok(r) => {
                                // fail2ban kills the tree in any case (tout_kill_tree).
                                if let Some(pid) = pid {
                                    kill_group(pid, libc::SIGKILL);
                                }
                                r
                            }
                            Err(_) => {
                                if let Some(pid) = pid {
                                    kill_group(pid, libc::SIGKILL);
                                }
                                child.wait().await
                            }
                        }
                    }
                }
            };
            tokio::pin!(waited);
            let mut reads_done = false;
            let status = loop {
                tokio::select! {
                    s = &mut waited => break s,
                    () = &mut reads, if !reads_done => reads_done = true,
                }
            };
            if !reads_done {
                // The shell ended; a background grandchild may keep the pipes open.
                let _ = tokio::time::timeout(PIPE_DRAIN, &mut reads).await;
            }
            status
        };
        let status = status.map_err(spawn_err)?;
        guard.0 = None;
        let elapsed = started.elapsed();
        // A pipe still open after the drain gives nothing, as fail2ban's
        // communicate() would not have returned either.
        let stdout = out.take();
        let stderr = err.take();
        use std::os::unix::process::ExitStatusExt;
        Ok(ExecOutcome {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout,
            stderr,
            elapsed,
        })
    }
}

/// Standard input for a command: a duplicate of one `/dev/null` descriptor
/// opened once per process (a `dup` per spawn instead of an `open` with its
/// path lookup); `Stdio::null()` if `/dev/null` cannot be opened.
fn dev_null() -> std::process::Stdio {
    static NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| std::fs::File::open("/dev/null").ok())
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
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        self.done = true;
    }

    fn take(self) -> Vec<u8> {
        if self.done {
            self.buf
        } else {
            Vec::new()
        }
    }
}
