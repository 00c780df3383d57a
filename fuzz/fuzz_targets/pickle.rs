//! Fuzz the restricted unpickler and the frame splitter: any input must
//! yield a value or an error — never a panic, a hang or a huge allocation —
//! and whatever decodes must re-encode and decode to the same value.
#![no_main]

use f2b_proto::frame::FrameDecoder;
use f2b_proto::pickle::{decode, decode_reply, decode_with, encode, DecodeOptions, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        // Shared memo references expand on re-encoding, so lift the input
        // cap (the node and byte budgets still hold).
        let opts = DecodeOptions {
            limits: Limits {
                max_input: usize::MAX,
                ..Limits::default()
            },
            allow_exceptions: false,
        };
        let again = decode_with(&encode(&v), &opts)
            .expect("re-encoding decodes")
            .value;
        // NaN != NaN; compare through the encoding instead.
        assert_eq!(encode(&again), encode(&v));
    }
    let _ = decode_reply(data);
    let mut d = FrameDecoder::new(4096);
    for chunk in data.chunks(7) {
        if d.feed(chunk).is_err() {
            break;
        }
        while let Some(_f) = d.next_frame() {}
    }
});
