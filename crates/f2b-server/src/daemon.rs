//! `fail2ban-server`: start-up, the control socket, signals, shutdown.
//!
//! Start-up order: options → configuration source (the `-c` directory, or f2b's embedded
//! tree when that directory does not exist) → log → (fork with `-b`) → socket and pidfile
//! → configuration stream executed through the transmitter (unless `--async`, where the
//! client sends it) → `READY=1` to systemd → serve until `stop`/SIGTERM.
//! SIGHUP reloads the configuration (`reload --all`), SIGUSR1 reopens the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use f2b_config::{ConfigSource, FsSource, LoadOptions, MemSource};
use f2b_core::value::Value;
use tokio::sync::watch;

use crate::log::{Level, Logger};
use crate::runtime::RuntimeEnv;
use crate::server::Server;
use crate::transmitter::Transmitter;

/// Options of `fail2ban-server` (and of `fail2ban-client start`).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `-c`: configuration directory.
    pub conf: String,
    /// Use the embedded configuration even if `conf` exists (`--embedded`).
    pub embedded: bool,
    /// `-s`.
    pub socket: Option<String>,
    /// `-p`.
    pub pidfile: Option<String>,
    /// `--loglevel`.
    pub loglevel: Option<String>,
    /// `--logtarget`.
    pub logtarget: Option<String>,
    /// `--syslogsocket`.
    pub syslogsocket: Option<String>,
    /// `-x`: remove a stale socket.
    pub force: bool,
    /// `-b` (default) vs `-f`.
    pub background: bool,
    /// `--async`: do not read the configuration (the client sends it).
    pub async_: bool,
    /// Prefix for every action command (tests: `ip netns exec NS`).
    pub exec_prefix: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            conf: "/etc/fail2ban".into(),
            embedded: false,
            socket: None,
            pidfile: None,
            loglevel: None,
            logtarget: None,
            syslogsocket: None,
            force: false,
            background: true,
            async_: false,
            exec_prefix: Vec::new(),
        }
    }
}

/// The directory fail2ban reads by default; f2b falls back to its embedded tree when
/// this one does not exist (an explicit `-c DIR` that does not exist is an error, as in
/// fail2ban).
pub const DEFAULT_CONF: &str = "/etc/fail2ban";

/// The configuration source for `conf`: the directory, or the embedded tree when asked
/// for (`--embedded`) or when the default directory does not exist.
pub fn config_source(conf: &str, embedded: bool) -> (Arc<dyn ConfigSource>, bool) {
    let missing_default = conf.trim_end_matches('/') == DEFAULT_CONF && !Path::new(conf).is_dir();
    if embedded || missing_default {
        let src = MemSource::new(conf, f2b_embedded::files().iter().copied());
        (Arc::new(src), true)
    } else {
        (Arc::new(FsSource::new(conf)), false)
    }
}

/// Sends a state line to systemd (`READY=1`, `STOPPING=1`, ...) when run under it.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name) {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(state.as_bytes(), PathBuf::from(path));
    }
}

fn early(src: &dyn ConfigSource, o: &ServerOptions) -> (String, String, String, String, String) {
    let (typed, _) = f2b_config::early_options(src).unwrap_or_default();
    let get = |k: &str, d: &str| {
        typed
            .get(k)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| d.to_owned())
    };
    (
        o.socket
            .clone()
            .unwrap_or_else(|| get("socket", "/var/run/fail2ban/fail2ban.sock")),
        o.pidfile
            .clone()
            .unwrap_or_else(|| get("pidfile", "/var/run/fail2ban/fail2ban.pid")),
        o.loglevel
            .clone()
            .unwrap_or_else(|| get("loglevel", "INFO")),
        o.logtarget
            .clone()
            .unwrap_or_else(|| get("logtarget", "/var/log/fail2ban.log")),
        o.syslogsocket
            .clone()
            .unwrap_or_else(|| get("syslogsocket", "auto")),
    )
}

/// Reads the configuration into the command stream (for start and reload).
pub fn read_stream(src: &dyn ConfigSource, o: &ServerOptions) -> Result<Vec<Value>, String> {
    let mut main_overrides = Vec::new();
    for (k, v) in [
        ("loglevel", &o.loglevel),
        ("logtarget", &o.logtarget),
        ("syslogsocket", &o.syslogsocket),
    ] {
        if let Some(v) = v {
            main_overrides.push((k.to_owned(), v.clone()));
        }
    }
    // Jails whose log files are missing still come through: the server decides
    // (fail2ban 1.1's `systemd_if_nologs`: read the journal instead, else skip the jail).
    let lo = LoadOptions {
        allow_no_files: true,
        ignore_wrong: true,
        force_enable: false,
        jail: None,
        main_overrides,
    };
    match f2b_config::load(src, &lo) {
        Ok(c) if c.ok => Ok(c.stream),
        Ok(c) => Err(c
            .diagnostics
            .iter()
            .filter(|d| d.level >= f2b_config::Level::Error)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; ")),
        Err(e) => Err(e.to_string()),
    }
}

/// glibc malloc: one arena for the whole process. Every thread that allocates would
/// otherwise get its own arena (up to 8 per core), each keeping its freed pages and
/// its own fragmentation; the daemon's threads mostly wait, so they share one heap.
/// Measured on the bench configuration: idle anonymous memory 4.4 -> 3.6 MiB, burst
/// time unchanged. Must run before any thread exists.
pub fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before other threads.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Returns the allocator's free pages to the system (after start-up, after a burst).
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Builds the date detector's default templates on a short-lived thread while the
/// configuration is read. Called after the fork to the background (no thread may exist
/// before it). (The system time zone needs no warming: `f2b_filter::zone::system` reads
/// `/etc/localtime` without indexing jiff's time zone database.)
fn prewarm_date_templates() {
    let _ = std::thread::Builder::new()
        .name("f2b-dates".into())
        .spawn(|| {
            // ~0.6 ms, built once per process at the first filter that uses them
            f2b_filter::date::prewarm_default_templates();
        });
}

/// Runs the server; returns the process exit code.
pub fn run(o: ServerOptions) -> i32 {
    tune_malloc();
    let (src, embedded) = config_source(&o.conf, o.embedded);
    let (socket, pidfile, loglevel, logtarget, syslogsocket) = early(src.as_ref(), &o);
    // One descriptor per followed log file: use the whole hard limit, as daemons do.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    // Before any thread exists: fork to the background if asked.
    if o.background {
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    use std::os::fd::AsRawFd;
                    for fd in 0..3 {
                        let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                    }
                }
            }
            Err(e) => {
                eprintln!("ERROR: cannot fork: {e}");
                return 255;
            }
        }
    }
    prewarm_date_templates();
    let target =
        if o.background && matches!(logtarget.to_ascii_uppercase().as_str(), "STDOUT" | "STDERR") {
            // A daemon has no terminal: fail2ban falls back to its default file.
            "/var/log/fail2ban.log".to_owned()
        } else {
            logtarget.clone()
        };
    let log = match Logger::new(&target, &loglevel, &syslogsocket)
        .or_else(|_| Logger::new("STDERR", &loglevel, "auto"))
    {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("ERROR: {e}");
            return 255;
        }
    };
    // One thread runs every task (control connections, action workers, timers): they
    // wait on sockets, pipes and child processes. Log reading has its own thread and
    // commands run on the blocking pool, so nothing CPU-bound runs here.
    // Blocking-pool threads (commands, the start-up stream) end one second after their
    // last task instead of ten: a quiet daemon holds no idle threads, and their exit (code
    // mapped again) comes before the start's last memory trim, not after it.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("f2b")
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ERROR: cannot start the runtime: {e}");
            return 255;
        }
    };
    rt.block_on(serve(o, src, embedded, log, socket, pidfile))
}

async fn serve(
    o: ServerOptions,
    src: Arc<dyn ConfigSource>,
    embedded: bool,
    log: Arc<Logger>,
    socket: String,
    pidfile: String,
) -> i32 {
    let srvlog = |lvl: Level, m: &str| log.log("fail2ban.server", lvl, m);
    srvlog(
        Level::INFO,
        "--------------------------------------------------",
    );
    srvlog(
        Level::INFO,
        &format!(
            "Starting Fail2ban v{} (f2b {})",
            crate::VERSION,
            env!("CARGO_PKG_VERSION")
        ),
    );
    if embedded {
        srvlog(
            Level::NOTICE,
            &format!(
                "Configuration directory {} not found: using f2b's embedded configuration",
                o.conf
            ),
        );
    }
    let sock_path = PathBuf::from(&socket);
    let listener = match crate::control::bind(&sock_path, o.force) {
        Ok(l) => l,
        Err(e) => {
            srvlog(Level::ERROR, &e.to_string());
            eprintln!("ERROR: {e}");
            return 255;
        }
    };
    if let Some(dir) = Path::new(&pidfile).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&pidfile, format!("{}\n", std::process::id()));
    srvlog(Level::INFO, "Daemon started");
    let env = RuntimeEnv::new(tokio::runtime::Handle::current(), o.exec_prefix.clone());
    let server = Arc::new(Mutex::new(Server::new(log.clone(), env.clone())));
    let (shutdown_tx, _) = watch::channel(false);

    if !o.async_ {
        match read_stream(src.as_ref(), &o) {
            Ok(stream) => {
                let srv = server.clone();
                let env_s = env.clone();
                // The database opens on its own thread while the stream goes on.
                env.set_deferred_db_open(true);
                // Command by command: a jail that fails to start is reported and
                // skipped, the others still start.
                let _ = tokio::task::spawn_blocking(move || {
                    // A jail whose filter does not compile is not started.
                    let mut broken: Vec<String> = Vec::new();
                    for cmd in stream {
                        let Value::List(cmd) = cmd else { continue };
                        let word = |i: usize| cmd.get(i).and_then(Value::as_str).unwrap_or("");
                        let mut g = srv.lock().unwrap_or_else(|e| e.into_inner());
                        if word(0) == "start" && broken.iter().any(|b| b == word(1)) {
                            let name = word(1).to_owned();
                            let mut t = Transmitter::new(&mut g);
                            let _ = t.proceed(&[Value::str("stop"), Value::Str(name.clone())]);
                            g.logger().log(
                                "fail2ban.jail",
                                Level::ERROR,
                                &format!("Jail '{name}' skipped: its filter has invalid regular expressions"),
                            );
                            continue;
                        }
                        let mut t = Transmitter::new(&mut g);
                        t.set_quiet();
                        if t.proceed(&cmd).is_err()
                            && matches!(word(0), "set" | "multi-set")
                            && matches!(word(2), "addfailregex" | "addignoreregex" | "prefregex")
                        {
                            broken.push(word(1).to_owned());
                        }
                    }
                    env_s.set_deferred_db_open(false);
                    // A database being created holds nothing the jails need to start:
                    // it is installed right after READY (below), and any earlier user
                    // (a first ban, a command) waits for it.
                    if !env_s.creating_store() {
                        env_s.finish_store_open();
                    }
                })
                .await;
            }
            Err(e) => {
                log.log(
                    "fail2ban",
                    Level::ERROR,
                    &format!("Failed during configuration: {e}"),
                );
                let _ = std::fs::remove_file(&sock_path);
                let _ = std::fs::remove_file(&pidfile);
                return 255;
            }
        }
        report_protection(&server, embedded);
    }
    sd_notify("READY=1");
    {
        let env = env.clone();
        drop(tokio::task::spawn_blocking(move || env.finish_store_open()));
    }
    // Reading the configuration and compiling the filters leave freed memory and code
    // run once behind; returned once the start has settled, on the schedule the reader
    // uses after a burst. Not at once: the first commands after a start (a client's
    // `status`) would pay for mapping their code again, and the trim would compete with
    // them. Run on the runtime thread (~1 ms each while the process is small): a
    // blocking-pool thread would end a second later and map its exit code again.
    tokio::spawn(async {
        for wait in crate::memtrim::QUIET_SCHEDULE {
            tokio::time::sleep(wait).await;
            crate::memtrim::trim_memory();
        }
    });

    // Signals.
    let srv_sig = server.clone();
    let sd = shutdown_tx.clone();
    let opts = o.clone();
    let conf_src = src.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr1)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => { let _ = sd.send(true); }
                _ = int.recv() => { let _ = sd.send(true); }
                _ = usr1.recv() => {
                    let g = srv_sig.lock().unwrap_or_else(|e| e.into_inner());
                    g.logger().flush();
                }
                _ = hup.recv() => {
                    sd_notify("RELOADING=1");
                    let srv = srv_sig.clone();
                    let src = conf_src.clone();
                    let opts = opts.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let stream = read_stream(src.as_ref(), &opts);
                        let mut g = srv.lock().unwrap_or_else(|e| e.into_inner());
                        match stream {
                            Ok(stream) => {
                                let mut t = Transmitter::new(&mut g);
                                let _ = t.proceed(&[
                                    Value::str("reload"),
                                    Value::str("--all"),
                                    Value::List(Vec::new()),
                                    Value::List(stream),
                                ]);
                            }
                            Err(e) => g.logger().log("fail2ban", Level::ERROR, &format!("Reload failed: {e}")),
                        }
                    }).await;
                    sd_notify("READY=1");
                }
            }
        }
    });

    crate::control::serve(listener, server.clone(), shutdown_tx).await;

    sd_notify("STOPPING=1");
    srvlog(Level::INFO, "Shutdown in progress...");
    let srv = server.clone();
    let env2 = env.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let mut g = srv.lock().unwrap_or_else(|e| e.into_inner());
        g.stop_all_jails();
        env2.stop_reader();
        env2.close_store();
    })
    .await;
    if g_has_db(&server) {
        srvlog(Level::INFO, "Connection to database closed.");
    }
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(&pidfile);
    srvlog(Level::INFO, "Exiting Fail2ban");
    0
}

fn g_has_db(server: &Arc<Mutex<Server>>) -> bool {
    server.lock().map(|g| g.has_db()).unwrap_or(false)
}

/// Logs what the server protects and what it could not (standalone start-up report).
fn report_protection(server: &Arc<Mutex<Server>>, embedded: bool) {
    let g = server.lock().unwrap_or_else(|e| e.into_inner());
    let mut running = Vec::new();
    for (name, j) in &g.jails {
        if j.runtime.is_some() {
            running.push(name.clone());
        }
    }
    let level = if running.is_empty() {
        Level::WARNING
    } else {
        Level::NOTICE
    };
    g.logger().log(
        "fail2ban.server",
        level,
        &if running.is_empty() {
            format!(
                "No jail is running{}: nothing is protected",
                if embedded {
                    " (embedded configuration: enable jails in jail.local after `f2b config export`)"
                } else {
                    ""
                }
            )
        } else {
            format!("Protecting with {} jail(s): {}", running.len(), running.join(", "))
        },
    );
    if !nix::unistd::geteuid().is_root() {
        g.logger().log(
            "fail2ban.server",
            Level::WARNING,
            "Not running as root: firewall actions will fail (no permission)",
        );
    }
}
