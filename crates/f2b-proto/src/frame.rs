//! Message framing: fail2ban has no length prefix; each message is a pickle
//! followed by the literal terminator `<F2B_END_COMMAND>`, and a client says
//! goodbye with `<F2B_CLOSE_COMMAND><F2B_END_COMMAND>`.
//!
//! [`FrameDecoder`] is a pure push parser (no I/O): feed it whatever a read
//! returned, then pull complete frames. It works the same under tokio and
//! in a blocking loop, scans every byte once, and refuses to buffer more
//! than its limit, so a peer that never sends the terminator cannot make it
//! allocate more than `max_frame` bytes.

use std::collections::VecDeque;

use thiserror::Error;

/// Terminator after every request and reply.
pub const END: &[u8] = b"<F2B_END_COMMAND>";
/// Payload of the close message.
pub const CLOSE: &[u8] = b"<F2B_CLOSE_COMMAND>";

/// Default largest frame (pickle without terminator): 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A pickle (terminator stripped).
    Message(Vec<u8>),
    /// The client's `<F2B_CLOSE_COMMAND>`.
    Close,
}

/// Framing failure. After it the stream cannot be resynchronized: close the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// More than `limit` bytes arrived without a terminator.
    #[error("frame exceeds {limit} bytes without a terminator")]
    TooLarge {
        /// The configured maximum.
        limit: usize,
    },
}

/// Incremental splitter of a byte stream into [`Frame`]s.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// Unterminated tail of the stream.
    partial: Vec<u8>,
    /// Complete frames not yet taken.
    ready: VecDeque<Frame>,
    max_frame: usize,
    failed: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            partial: Vec::new(),
            ready: VecDeque::new(),
            max_frame,
            failed: false,
        }
    }

    /// The configured maximum frame size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes of an incomplete frame currently buffered.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Appends input, splitting off every complete frame. Fails (and stays
    /// failed) as soon as a frame, complete or not, exceeds the limit; the
    /// excess is never stored.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), FrameError> {
        let err = FrameError::TooLarge {
            limit: self.max_frame,
        };
        if self.failed {
            return Err(err);
        }
        while !data.is_empty() {
            // A terminator may straddle the held tail and the new bytes.
            let overlap = self.partial.len().min(END.len() - 1);
            let tail_at = self.partial.len() - overlap;
            let mut small = self.partial[tail_at..].to_vec();
            small.extend_from_slice(&data[..data.len().min(END.len() - 1)]);
            let hit = match find(&small, END) {
                Some(at) if at < overlap => Some((tail_at + at, at + END.len() - overlap)),
                _ => {
                    let look = data.len().min(self.max_frame + END.len());
                    find(&data[..look], END).map(|at| (self.partial.len() + at, at + END.len()))
                }
            };
            match hit {
                Some((body_len, consumed)) => {
                    if body_len > self.max_frame {
                        self.failed = true;
                        self.partial = Vec::new();
                        return Err(err);
                    }
                    let mut body = std::mem::take(&mut self.partial);
                    if body_len <= body.len() {
                        body.truncate(body_len);
                    } else {
                        let from_data = body_len - body.len();
                        body.extend_from_slice(&data[..from_data]);
                    }
                    self.ready.push_back(if body == CLOSE {
                        Frame::Close
                    } else {
                        Frame::Message(body)
                    });
                    data = &data[consumed..];
                }
                None => {
                    if self.partial.len() + data.len() > self.max_frame + END.len() - 1 {
                        self.failed = true;
                        self.partial = Vec::new();
                        return Err(err);
                    }
                    self.partial.extend_from_slice(data);
                    data = &[];
                }
            }
        }
        Ok(())
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    // First byte scan, then compare: END starts with '<' which is rare in
    // pickles.
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// `pickle + END`: one request or reply on the wire.
pub fn frame(pickle: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(pickle.len() + END.len());
    v.extend_from_slice(pickle);
    v.extend_from_slice(END);
    v
}

/// The close message `<F2B_CLOSE_COMMAND><F2B_END_COMMAND>`.
pub fn close_message() -> Vec<u8> {
    frame(CLOSE)
}
