//! Hostile input: every case must be an error (never a panic, never an
//! allocation proportional to an attacker's claim).

mod common;

use common::{python, unhex};
use f2b_core::value::Value;
use f2b_proto::frame::{Frame, FrameDecoder, FrameError, CLOSE, END};
use f2b_proto::pickle::{self, decode, decode_reply, DecodeOptions, Limits, PickleError};

/// Malicious pickles made by Python itself at test time: code-execution
/// payloads in every protocol, plus object-building opcodes.
#[test]
fn python_made_exploits_are_forbidden() {
    let script = r#"
import pickle, os, sys, collections, fractions
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/f2b-proto-pwned",))
class Obj:
    def __init__(self): self.x = 1
class Slots:
    def __reduce_ex__(self, proto):
        return (collections.OrderedDict, ())
payloads = []
for proto in range(0, 6):
    payloads.append(pickle.dumps(Evil(), proto))
    payloads.append(pickle.dumps(["ping", Evil()], proto))
    payloads.append(pickle.dumps(Obj(), proto))
    payloads.append(pickle.dumps(fractions.Fraction(1, 3), proto))
    payloads.append(pickle.dumps(collections.OrderedDict(a=1), proto))
    payloads.append(pickle.dumps(os.system, proto))
    payloads.append(pickle.dumps(bytearray(b"x"), proto))
# protocol 0 INST / protocol 1 OBJ, hand-assembled
payloads.append(b"(S'touch /tmp/f2b-proto-pwned'\nios\nsystem\n.")
payloads.append(b"(cos\nsystem\nS'id'\no.")
payloads.append(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
payloads.append(b"\x80\x02\x82\x01.")
payloads.append(b"\x80\x02\x83\x01\x00.")
payloads.append(b"\x80\x02\x84\x01\x00\x00\x00.")
payloads.append(b"P1\n.")
payloads.append(b"K\x01Q.")
payloads.append(b"\x80\x05\x97.")
payloads.append(b"]\x81.")
for p in payloads:
    print(p.hex())
"#;
    let out = python(script, "");
    let mut n = 0;
    for line in out.lines() {
        let p = unhex(line.trim());
        n += 1;
        let r = decode(&p);
        // bytearray is data (protocol 5 BYTEARRAY8) and decodes; at lower
        // protocols it is a REDUCE of builtins.bytearray and is refused.
        if let Ok(v) = &r {
            assert_eq!(
                v,
                &Value::Bytes(b"x".to_vec()),
                "unexpectedly accepted {line}"
            );
            continue;
        }
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                PickleError::Forbidden { .. }
                    | PickleError::Truncated { .. }
                    | PickleError::Malformed { .. }
            ),
            "{line}: {e}"
        );
        // The reply decoder allows exception shapes only: os.system(...) is
        // not an exception instance, but it is a class reference applied to
        // a tuple, which decode_reply records as data. It must never run.
        let _ = decode_reply(&p);
    }
    assert!(n >= 40, "only {n} payloads");
    assert!(!std::path::Path::new("/tmp/f2b-proto-pwned").exists());
}

#[test]
fn forbidden_error_names_the_opcode() {
    let e = decode(b"\x80\x04\x8c\x02os\x8c\x06system\x93.").unwrap_err();
    assert_eq!(
        e,
        PickleError::Forbidden {
            opcode: 0x93,
            name: "STACK_GLOBAL",
            offset: 14
        }
    );
    assert!(e.to_string().contains("STACK_GLOBAL"));
}

#[test]
fn truncations_of_a_valid_pickle_all_fail_cleanly() {
    let v = Value::List(vec![
        "set".into(),
        "sshd".into(),
        "addfailregex".into(),
        Value::Str("^Failed .* from <HOST>$".into()),
        Value::Int(-70000),
        Value::Float(1.5),
        Value::Dict(vec![("a".into(), Value::Set(vec!["b".into()]))]),
        Value::Int(1 << 40),
    ]);
    let p = pickle::encode(&v);
    for cut in 0..p.len() {
        assert!(decode(&p[..cut]).is_err(), "prefix {cut} decoded");
    }
    assert_eq!(decode(&p).unwrap(), v);
}

#[test]
fn oversize_pickle_is_refused_before_work() {
    let big = vec![b'N'; (1 << 20) + 1];
    assert!(matches!(decode(&big), Err(PickleError::TooLarge { .. })));
}

#[test]
fn hundred_mib_frame_is_refused_with_bounded_memory() {
    let mut d = FrameDecoder::new(1 << 20);
    let chunk = vec![b'A'; 64 * 1024];
    let mut fed = 0usize;
    let mut err = None;
    while fed < 100 << 20 {
        match d.feed(&chunk) {
            Ok(()) => fed += chunk.len(),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
        assert!(d.buffered() <= (1 << 20) + END.len());
    }
    assert_eq!(err, Some(FrameError::TooLarge { limit: 1 << 20 }));
    assert!(fed <= (1 << 20) + 64 * 1024, "accepted {fed} bytes");
    // stays failed
    assert!(d.feed(b"x").is_err());
    // One 100 MiB feed (a single huge read) is refused without copying it.
    let huge = vec![0u8; 100 << 20];
    let mut d = FrameDecoder::new(1 << 20);
    assert!(d.feed(&huge).is_err());
    assert_eq!(d.buffered(), 0);
}

#[test]
fn frames_split_anywhere_and_close() {
    let a = pickle::encode(&Value::List(vec!["ping".into()]));
    let b = pickle::encode(&Value::List(vec!["status".into()]));
    let mut wire = Vec::new();
    wire.extend_from_slice(&a);
    wire.extend_from_slice(END);
    wire.extend_from_slice(&b);
    wire.extend_from_slice(END);
    wire.extend_from_slice(CLOSE);
    wire.extend_from_slice(END);
    for step in 1..wire.len() {
        let mut d = FrameDecoder::new(1024);
        let mut got = Vec::new();
        for c in wire.chunks(step) {
            d.feed(c).unwrap();
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                Frame::Message(a.clone()),
                Frame::Message(b.clone()),
                Frame::Close
            ],
            "step {step}"
        );
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn frame_limit_is_exact() {
    let mut d = FrameDecoder::new(10);
    d.feed(b"0123456789<F2B_END_COMMAND>").unwrap();
    assert_eq!(d.next_frame(), Some(Frame::Message(b"0123456789".to_vec())));
    let mut d = FrameDecoder::new(10);
    assert!(d.feed(b"0123456789X<F2B_END_COMMAND>").is_err());
}

fn nested_lists(depth: usize) -> Vec<u8> {
    let mut p = vec![0x80, 4];
    p.extend(std::iter::repeat_n(b']', depth));
    p.extend(std::iter::repeat_n(b'a', depth - 1));
    p.push(b'.');
    p
}

#[test]
fn deep_nesting_is_refused() {
    assert!(decode(&nested_lists(60)).is_ok());
    assert_eq!(
        decode(&nested_lists(100_000)),
        Err(PickleError::TooDeep { limit: 64 })
    );
    // Nested tuples via MARK
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b'(', 200_000));
    p.extend(std::iter::repeat_n(b't', 200_000));
    p.push(b'.');
    assert!(matches!(decode(&p), Err(PickleError::TooDeep { .. })));
}

#[test]
fn memo_attacks_are_refused() {
    // GET of a slot never stored
    assert_eq!(
        decode(b"\x80\x04j\xff\xff\xff\xff."),
        Err(PickleError::MemoMissing {
            index: 0xffff_ffff,
            offset: 2
        })
    );
    // PUT at huge indices is fine in itself (sparse), GET works
    assert_eq!(
        decode(b"\x80\x04Nr\xff\xff\xff\xff0j\xff\xff\xff\xff.").unwrap(),
        Value::None
    );
    assert_eq!(
        decode(b"Np99999999999999999999\n."),
        Err(PickleError::Malformed {
            offset: 1,
            reason: "memo index".into()
        })
    );
    // Too many distinct memo slots
    let mut p = vec![0x80, 4, b'N'];
    for i in 0..70_000u32 {
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
    }
    p.push(b'.');
    assert!(matches!(decode(&p), Err(PickleError::MemoTooLarge { .. })));
}

#[test]
fn billion_laughs_is_refused() {
    // l0 = ["x"*1000]; l_{i+1} = [l_i, l_i]  — 2^40 nodes if expanded.
    let mut p = vec![0x80, 4, b']', 0x94, b'X'];
    p.extend_from_slice(&1000u32.to_le_bytes());
    p.extend(std::iter::repeat_n(b'x', 1000));
    p.push(b'a');
    for i in 0..40u32 {
        p.extend_from_slice(&[b']', 0x94, b'(']);
        p.push(b'j');
        p.extend_from_slice(&i.to_le_bytes());
        p.push(b'j');
        p.extend_from_slice(&i.to_le_bytes());
        p.push(b'e');
    }
    p.push(b'.');
    let e = decode(&p).unwrap_err();
    assert!(matches!(e, PickleError::Expansion { .. }), "{e}");
    // Same with dict keys made of shared tuples (hashing work is bounded too)
    let mut p = vec![0x80, 4, 0x8c, 1, b'x', 0x94];
    for i in 0..64u32 {
        p.push(b'j');
        p.extend_from_slice(&i.to_le_bytes());
        p.push(b'j');
        p.extend_from_slice(&i.to_le_bytes());
        p.push(0x86);
        p.push(0x94);
    }
    p.extend_from_slice(b"}j");
    p.extend_from_slice(&64u32.to_le_bytes());
    p.extend_from_slice(b"Ns.");
    let e = decode(&p).unwrap_err();
    assert!(
        matches!(
            e,
            PickleError::Expansion { .. } | PickleError::TooDeep { .. }
        ),
        "{e}"
    );
}

#[test]
fn cycles_are_refused() {
    // l = []; l.append(l)
    assert_eq!(decode(b"\x80\x04]\x94h\x00a."), Err(PickleError::Cycle));
}

#[test]
fn huge_length_claims_do_not_allocate() {
    for p in [
        &b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f"[..],
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x80\x04X\xff\xff\xff\xff",
        b"\x80\x04B\xff\xff\xff\xff",
        b"\x80\x02\x8b\xff\xff\xff\x7f",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x02T\xff\xff\xff\x7f",
    ] {
        assert!(
            matches!(decode(p), Err(PickleError::Truncated { .. })),
            "{p:?}"
        );
    }
}

#[test]
fn malformed_inputs() {
    for p in [
        &b""[..],
        b".",
        b"a.",
        b"(a.",
        b"\x80\x06N.",
        b"N}s.",
        b"N}s.",
        b"\x8f]\x94(h\x00\x90.",
        b"I12x\n.",
        b"L99999999999999999999999L\n.",
        b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.",
        b"\x8c\x02\xff\xfe.",
        b"U\x01\xe9.",
        b"\xff.",
        b"(1)1.",
        b"F1e5x\n.",
    ] {
        assert!(decode(p).is_err(), "{p:?} decoded to {:?}", decode(p));
    }
}

#[test]
fn small_limits_are_honoured() {
    let opts = DecodeOptions {
        limits: Limits {
            max_container_len: 3,
            ..Limits::default()
        },
        allow_exceptions: false,
    };
    let v = Value::List((0..4).map(Value::Int).collect());
    let e = pickle::decode_with(&pickle::encode(&v), &opts).unwrap_err();
    assert!(matches!(e, PickleError::ContainerTooLarge { limit: 3, .. }));
}

#[test]
fn reply_mode_work_is_bounded() {
    // One class and one big shared args tuple, applied 100k times: every
    // REDUCE expands the args, so the shared node budget must stop it fast.
    let mut p = vec![0x80, 4, 0x8c, 8];
    p.extend_from_slice(b"builtins");
    p.extend_from_slice(&[0x8c, 10]);
    p.extend_from_slice(b"ValueError");
    p.extend_from_slice(&[0x93, 0x94]); // class = memo 0
    p.extend_from_slice(&[b']', 0x94]); // list = memo 1
    p.push(b'(');
    p.extend(std::iter::repeat_n(b'N', 2000));
    p.push(b'e');
    p.push(0x85); // (list,)
    p.push(0x94); // memo 2
    p.push(b'0');
    for _ in 0..100_000 {
        p.extend_from_slice(b"h\x00h\x02R0");
    }
    p.extend_from_slice(b"N.");
    let t = std::time::Instant::now();
    let e = decode_reply(&p).unwrap_err();
    assert!(matches!(e, PickleError::Expansion { .. }), "{e}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    // Refused outright by the request decoder.
    assert!(matches!(decode(&p), Err(PickleError::Forbidden { .. })));
}

#[test]
fn reply_mode_refuses_non_exception_classes() {
    for (m, n) in [
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "set"),
        ("subprocess", "Popen"),
    ] {
        let mut p = vec![0x80, 4, 0x8c, m.len() as u8];
        p.extend_from_slice(m.as_bytes());
        p.extend_from_slice(&[0x8c, n.len() as u8]);
        p.extend_from_slice(n.as_bytes());
        p.extend_from_slice(b"\x93\x8c\x02id\x85R.");
        assert!(
            matches!(decode_reply(&p), Err(PickleError::Forbidden { .. })),
            "{m}.{n}"
        );
    }
    // builtins.str('1.2.3.4') is how fail2ban's IPAddr pickles: plain data.
    let p = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x071.2.3.4\x85R.";
    assert_eq!(decode_reply(p).unwrap(), Value::Str("1.2.3.4".into()));
    assert!(decode(p).is_err());
}
