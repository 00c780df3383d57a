//! A safe subset of Python's pickle format (protocols 0–5).
//!
//! fail2ban's client and server exchange `pickle.dumps(obj, HIGHEST_PROTOCOL)`
//! blobs. Python's `pickle.loads` can import modules and call arbitrary
//! callables (`GLOBAL` + `REDUCE`), which is why the stock server is a root
//! code-execution hole for anyone who can write to its socket. This module
//! decodes only the *data* opcodes (ints, floats, strings, bytes, lists,
//! tuples, dicts, sets, memo references) and rejects everything that names or
//! calls a Python object with [`PickleError::Forbidden`].
//!
//! The one exception is [`decode_reply`], used by the *client* to read a
//! server's `(1, SomeError('message'))` error reply: there a class reference
//! may be applied to an argument tuple, and the result is recorded as
//! [`Value::Exception`](f2b_core::value::Value::Exception) — purely as data, nothing is imported or called.
//!
//! [`encode`] writes what CPython's C pickler writes for the same value at
//! protocol 4/5 (framing, memoization, batching), so a stock Python client
//! reads it with plain `pickle.loads`, and exceptions unpickle as real
//! builtin (or `fail2ban.exceptions`) exception objects.

mod decode;
mod encode;
mod error;
pub(crate) mod op;

pub use decode::{decode, decode_reply, decode_with, DecodeOptions, Decoded, Limits};
pub use encode::{encode, encode_with, exception_origin, Protocol};
pub use error::PickleError;
