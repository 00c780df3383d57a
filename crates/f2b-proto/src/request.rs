//! Server side: turning a frame into a request and errors into replies.

use f2b_core::value::Value;

use crate::client::Reply;
use crate::pickle::{self, DecodeOptions, Limits, PickleError, Protocol};

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What the client pickled; the stock client always sends a list of
    /// `str`/`bool`/`int`/`float`/`list`/`dict`/`set`.
    pub value: Value,
    /// The protocol to answer in ([`Protocol::for_request`]).
    pub protocol: Protocol,
}

impl Request {
    /// The arguments, when the request is a list (or tuple) as it should be.
    pub fn args(&self) -> Option<&[Value]> {
        match &self.value {
            Value::List(a) | Value::Tuple(a) => Some(a),
            _ => None,
        }
    }
}

/// Decodes one request frame under `limits` (no class references, ever).
pub fn decode_request(frame: &[u8], limits: &Limits) -> Result<Request, PickleError> {
    let opts = DecodeOptions {
        limits: limits.clone(),
        allow_exceptions: false,
    };
    let d = pickle::decode_with(frame, &opts)?;
    Ok(Request {
        value: d.value,
        protocol: Protocol::for_request(d.protocol),
    })
}

/// What fail2ban's server answers when it cannot unpickle a request: the
/// bare string `"ERROR: <reason>"` (not a `(1, exc)` tuple).
pub fn load_error_reply(e: &PickleError) -> Reply {
    Reply::Other(Value::Str(format!("ERROR: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::frame;

    #[test]
    fn request_and_error_reply() {
        let p = pickle::encode_with(&Value::List(vec!["ping".into()]), Protocol::V4);
        let r = decode_request(&p, &Limits::default()).expect("decode");
        assert_eq!(r.args(), Some(&[Value::from("ping")][..]));
        assert_eq!(r.protocol, Protocol::V4);
        let e = decode_request(b"\x80\x05cos\nsystem\n.", &Limits::default()).unwrap_err();
        let reply = load_error_reply(&e);
        let wire = reply.to_frame(r.protocol);
        let Reply::Other(Value::Str(s)) = Reply::from_value(
            pickle::decode_reply(&wire[..wire.len() - crate::frame::END.len()]).expect("reply"),
        ) else {
            panic!("shape")
        };
        assert!(
            s.starts_with("ERROR: forbidden pickle opcode GLOBAL"),
            "{s}"
        );
        assert_eq!(frame(b"x").len(), 1 + crate::frame::END.len());
    }
}
