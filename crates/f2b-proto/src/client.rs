//! A blocking client for fail2ban's control socket, usable against f2b's
//! server and the stock Python `fail2ban-server` alike.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use f2b_core::value::Value;
use thiserror::Error;

use crate::frame::{close_message, frame, Frame, FrameDecoder, FrameError};
use crate::pickle::{self, DecodeOptions, Limits, PickleError, Protocol};

/// Default cap on a reply's size (a `status` or `banned` reply of a big
/// server can be large): 64 MiB.
pub const DEFAULT_MAX_REPLY: usize = 64 << 20;

/// What went wrong talking to a server.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Could not connect to the socket.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading or writing failed (including timeouts).
    #[error("socket I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before a complete reply.
    #[error("connection closed by the server before a complete reply ({received} bytes received)")]
    Closed {
        /// Bytes of the partial reply.
        received: usize,
    },
    /// The reply frame was too large.
    #[error("reply framing: {0}")]
    Frame(#[from] FrameError),
    /// The reply was not an acceptable pickle.
    #[error("reply pickle: {0}")]
    Pickle(#[from] PickleError),
}

/// A reply, interpreted the way `fail2ban-client` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `(0, result)`.
    Ok(Value),
    /// `(1, exception)`.
    Err(Value),
    /// Anything else, e.g. the bare string `"ERROR: ..."` the Python server
    /// sends when it cannot unpickle a request.
    Other(Value),
}

impl Reply {
    /// Classifies a raw decoded reply.
    pub fn from_value(v: Value) -> Reply {
        match v {
            Value::Tuple(mut t) | Value::List(mut t) if t.len() == 2 => match t[0] {
                Value::Int(0) | Value::Bool(false) => Reply::Ok(t.remove(1)),
                Value::Int(1) | Value::Bool(true) => Reply::Err(t.remove(1)),
                _ => Reply::Other(Value::Tuple(t)),
            },
            other => Reply::Other(other),
        }
    }
}

impl Reply {
    /// The wire value: `(0, v)`, `(1, e)` or the bare value.
    pub fn to_value(&self) -> Value {
        match self {
            Reply::Ok(v) => Value::Tuple(vec![Value::Int(0), v.clone()]),
            Reply::Err(e) => Value::Tuple(vec![Value::Int(1), e.clone()]),
            Reply::Other(v) => v.clone(),
        }
    }

    /// The complete server message: pickle at `protocol` + terminator.
    pub fn to_frame(&self, protocol: Protocol) -> Vec<u8> {
        frame(&pickle::encode_with(&self.to_value(), protocol))
    }
}

/// One connection to a control socket.
#[derive(Debug)]
pub struct Client {
    sock: Option<UnixStream>,
    decoder: FrameDecoder,
    limits: Limits,
    path: PathBuf,
}

impl Client {
    /// Connects; `timeout` bounds every read and write (None = block).
    pub fn connect(
        path: impl AsRef<Path>,
        timeout: Option<Duration>,
    ) -> Result<Client, ProtoError> {
        let path = path.as_ref().to_path_buf();
        let sock = UnixStream::connect(&path).map_err(|source| ProtoError::Connect {
            path: path.clone(),
            source,
        })?;
        sock.set_read_timeout(timeout)?;
        sock.set_write_timeout(timeout)?;
        // Replies come from the (root-owned) server and can be large, e.g.
        // `banned` on a host with a million bans: generous but finite.
        let limits = Limits {
            max_input: DEFAULT_MAX_REPLY,
            max_container_len: 1 << 25,
            max_nodes: 1 << 25,
            max_output_bytes: 1 << 30,
            ..Limits::default()
        };
        Ok(Client {
            sock: Some(sock),
            decoder: FrameDecoder::new(DEFAULT_MAX_REPLY),
            limits,
            path,
        })
    }

    /// The socket path this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the read/write timeout.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ProtoError> {
        let s = self.stream()?;
        s.set_read_timeout(timeout)?;
        s.set_write_timeout(timeout)?;
        Ok(())
    }

    /// Sets decode limits for replies (and the reply frame cap).
    pub fn set_limits(&mut self, limits: Limits) {
        self.decoder = FrameDecoder::new(limits.max_input);
        self.limits = limits;
    }

    fn stream(&self) -> Result<&UnixStream, ProtoError> {
        self.sock.as_ref().ok_or(ProtoError::Closed { received: 0 })
    }

    /// Sends one command (`['status', 'sshd']`) and returns the raw decoded
    /// reply, normally `(0, result)` or `(1, exception)`.
    pub fn send(&mut self, command: &[Value]) -> Result<Value, ProtoError> {
        let msg = frame(&pickle::encode(&Value::List(command.to_vec())));
        let mut s = self.stream()?;
        s.write_all(&msg)?;
        self.receive()
    }

    /// [`send`](Self::send), classified into a [`Reply`].
    pub fn request(&mut self, command: &[Value]) -> Result<Reply, ProtoError> {
        self.send(command).map(Reply::from_value)
    }

    fn receive(&mut self) -> Result<Value, ProtoError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(f) = self.decoder.next_frame() {
                let body = match f {
                    Frame::Message(b) => b,
                    Frame::Close => crate::frame::CLOSE.to_vec(),
                };
                let opts = DecodeOptions {
                    limits: self.limits.clone(),
                    allow_exceptions: true,
                };
                return Ok(pickle::decode_with(&body, &opts)?.value);
            }
            let mut s = self.stream()?;
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(ProtoError::Closed {
                    received: self.decoder.buffered(),
                });
            }
            self.decoder.feed(&buf[..n])?;
        }
    }

    /// Sends `<F2B_CLOSE_COMMAND>` and shuts the connection down, as the
    /// Python client does. Idempotent.
    pub fn close(&mut self) -> Result<(), ProtoError> {
        if let Some(mut s) = self.sock.take() {
            let r = s.write_all(&close_message());
            let _ = s.shutdown(std::net::Shutdown::Both);
            r?;
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
