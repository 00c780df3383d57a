//! fail2ban's control-socket protocol, spoken safely.
//!
//! The stock `fail2ban-client` sends `pickle.dumps([args...]) +
//! b"<F2B_END_COMMAND>"` over a Unix socket and gets back `pickle.dumps((0,
//! result))` or `pickle.dumps((1, exception))`. This crate provides every
//! piece f2b needs to serve and to speak that protocol:
//!
//! - [`pickle`]: a decoder for the data-only subset of pickle (rejects
//!   `GLOBAL`/`REDUCE`/... with [`PickleError::Forbidden`], with limits on
//!   size, depth, memo and expansion) and an encoder byte-compatible with
//!   CPython's.
//! - [`frame`]: [`FrameDecoder`], a pure push parser splitting a byte stream
//!   at the terminator, bounded in memory.
//! - [`peer`]: `SO_PEERCRED` checks ([`peer_allowed`]).
//! - [`request`]: server-side [`decode_request`] and [`load_error_reply`].
//! - [`client`]: a blocking [`Client`] that works against f2b and against
//!   Python's `fail2ban-server`.
//! - [`beautify()`](beautify::beautify): the exact text `fail2ban-client`
//!   prints for a reply, and [`to_json`] for `--json`.
//!
//! ```
//! use f2b_core::value::Value;
//! use f2b_proto::{pickle, frame::{FrameDecoder, Frame, frame}};
//!
//! let wire = frame(&pickle::encode(&Value::List(vec!["ping".into()])));
//! let mut dec = FrameDecoder::default();
//! dec.feed(&wire).unwrap();
//! let Some(Frame::Message(p)) = dec.next_frame() else { panic!() };
//! assert_eq!(pickle::decode(&p).unwrap(), Value::List(vec!["ping".into()]));
//! assert_eq!(f2b_proto::beautify(&["ping".into()], &"pong".into()), "Server replied: pong");
//! ```
#![deny(missing_docs)]

pub mod beautify;
pub mod client;
pub mod frame;
pub mod json;
pub mod peer;
pub mod pickle;
pub mod pyfmt;
pub mod request;

pub use beautify::{beautify, beautify_error};
pub use client::{Client, ProtoError, Reply};
pub use frame::{Frame, FrameDecoder, FrameError};
pub use json::{reply_to_json, to_json};
pub use peer::{peer_allowed, peer_allowed_by, peer_credentials, PeerCred, PeerPolicy};
pub use pickle::PickleError;
pub use request::{decode_request, load_error_reply, Request};
