//! The control socket: fail2ban's wire protocol (pickled argument lists framed by
//! `<F2B_END_COMMAND>`), decoded by `f2b-proto`'s data-only pickle decoder.
//!
//! Every connection is checked with `SO_PEERCRED` (root or the socket owner only); a
//! message that is not a valid data-only pickle gets an error reply and the connection
//! carries on; an oversized frame closes the connection. Nothing a client sends can make
//! the server run code.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use f2b_core::value::Value;
use f2b_proto::frame::{frame, Frame, FrameDecoder, DEFAULT_MAX_FRAME};
use f2b_proto::pickle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::log::Level;
use crate::server::Server;
use crate::transmitter::{After, Transmitter};

/// Errors binding the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket exists and a server answers on it.
    #[error("Server already running")]
    AlreadyRunning,
    /// The socket file exists (stale) and `-x` was not given.
    #[error("Fail2ban seems to be in unexpected state (not running but the socket exists)")]
    StaleSocket,
    /// Binding failed.
    #[error("cannot bind the control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds the socket at `path` (creating its directory), mode 0600. With `force` a stale
/// socket file is removed first, as `fail2ban-server -x` does.
pub fn bind(path: &Path, force: bool) -> Result<UnixListener, ControlError> {
    if path.exists() {
        // `-x` removes the socket without asking it: right after a crash the kernel may
        // still accept on the dead server's socket for a moment (as fail2ban's `-x`).
        if !force {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::AlreadyRunning);
            }
            return Err(ControlError::StaleSocket);
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Bind with a restrictive umask so the socket is never world-writable, even briefly.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let res = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    res.map_err(|source| ControlError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// Serves connections until `shutdown` turns true (a `stop` command sets it too).
pub async fn serve(
    listener: UnixListener,
    server: Arc<Mutex<Server>>,
    shutdown: watch::Sender<bool>,
) {
    let mut rx = shutdown.subscribe();
    // One descriptor held back for the EMFILE case.
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut warned = false;
    loop {
        tokio::select! {
            acc = listener.accept() => {
                match acc {
                    Ok((stream, _)) => {
                        let srv = server.clone();
                        let sd = shutdown.clone();
                        tokio::spawn(async move { connection(stream, srv, sd).await });
                    }
                    Err(e) if e.raw_os_error() == Some(nix::libc::EMFILE) || e.raw_os_error() == Some(nix::libc::ENFILE) => {
                        // Out of descriptors (log files can take them all): give the
                        // reserve back so one client can be told, then take it again.
                        reserve.take();
                        if let Ok((mut stream, _)) = listener.accept().await {
                            let reply = pickle::encode(&Value::Tuple(vec![
                                Value::Int(1),
                                Value::Exception {
                                    class: "OSError".into(),
                                    message: "f2b server is out of file descriptors (raise LimitNOFILE)".into(),
                                },
                            ]));
                            let _ = stream.write_all(&frame(&reply)).await;
                        }
                        reserve = std::fs::File::open("/dev/null").ok();
                        if !warned {
                            warned = true;
                            log(&server, Level::ERROR, &format!("control socket: {e}; raise the open files limit"));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => {
                        log(&server, Level::ERROR, &format!("control socket accept failed: {e}"));
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
            _ = rx.changed() => {
                if *rx.borrow() { break; }
            }
        }
    }
}

fn log(server: &Arc<Mutex<Server>>, level: Level, msg: &str) {
    let g = server.lock().unwrap_or_else(|e| e.into_inner());
    g.logger().log("fail2ban.server", level, msg);
}

async fn connection(
    mut stream: UnixStream,
    server: Arc<Mutex<Server>>,
    shutdown: watch::Sender<bool>,
) {
    match f2b_proto::peer::peer_allowed(&stream) {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            log(
                &server,
                Level::WARNING,
                "Refused a control connection from a peer that is neither root nor the server's user",
            );
            let reply = pickle::encode(&Value::Tuple(vec![
                Value::Int(1),
                Value::Exception {
                    class: "PermissionError".into(),
                    message: "permission denied".into(),
                },
            ]));
            let _ = stream.write_all(&frame(&reply)).await;
            return;
        }
    }
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if dec.feed(&buf[..n]).is_err() {
            log(
                &server,
                Level::ERROR,
                "control message too large: connection closed",
            );
            return;
        }
        while let Some(fr) = dec.next_frame() {
            let payload = match fr {
                Frame::Close => return,
                Frame::Message(p) => p,
            };
            let (reply, after) = match pickle::decode(&payload) {
                Ok(Value::List(cmd)) | Ok(Value::Tuple(cmd)) => {
                    let srv = server.clone();
                    let res = tokio::task::spawn_blocking(move || {
                        let mut g = srv.lock().unwrap_or_else(|e| e.into_inner());
                        let mut t = Transmitter::new(&mut g);
                        let r = t.proceed(&cmd);
                        (r, t.after)
                    })
                    .await;
                    match res {
                        Ok((Ok(v), after)) => (Value::Tuple(vec![Value::Int(0), v]), after),
                        Ok((Err(e), after)) => {
                            (Value::Tuple(vec![Value::Int(1), e.to_value()]), after)
                        }
                        Err(_) => (
                            Value::Tuple(vec![
                                Value::Int(1),
                                Value::Exception {
                                    class: "Exception".into(),
                                    message: "internal error".into(),
                                },
                            ]),
                            After::Continue,
                        ),
                    }
                }
                Ok(other) => (
                    Value::Tuple(vec![
                        Value::Int(1),
                        Value::Exception {
                            class: "TypeError".into(),
                            message: format!(
                                "command must be a list, not {}",
                                crate::args::type_name(&other)
                            ),
                        },
                    ]),
                    After::Continue,
                ),
                Err(e) => {
                    log(&server, Level::ERROR, &format!("PROTO-error: {e}"));
                    (Value::str(format!("ERROR: {e}")), After::Continue)
                }
            };
            if stream
                .write_all(&frame(&pickle::encode(&reply)))
                .await
                .is_err()
            {
                return;
            }
            if after == After::Shutdown {
                let _ = stream.flush().await;
                let _ = shutdown.send(true);
                return;
            }
        }
    }
}
