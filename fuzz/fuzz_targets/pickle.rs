//! Fuzz the restricted unpickler and the frame splitter: any input must
//! yield a value or an error — never a panic, a hang or a huge allocation —
//! and whatever decodes must re-encode and decode to the same value.
#![no_main]

use f2b_proto::frame::FrameDecoder;
use f2b_proto::pickle::{decode, decode_reply, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        let again = decode(&encode(&v)).expect("re-encoding decodes");
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
