//! The pickler: `Value` → bytes, mirroring CPython's pickler at protocol
//! 4/5 (same opcodes, batching of 1000, memoization and 64 KiB framing), so
//! a value without shared sub-objects encodes byte-for-byte like
//! `pickle.dumps(value, protocol)`.

use f2b_core::value::Value;

use super::op;

/// Output protocol. Both use exactly the same opcodes for fail2ban's types;
/// only the `PROTO` byte differs. Python ≥ 3.8 (fail2ban 1.x on any current
/// distribution) sends and reads 5; Python 3.4–3.7 read at most 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Protocol 4 (Python 3.4+).
    V4,
    /// Protocol 5, `pickle.HIGHEST_PROTOCOL` of Python 3.8–3.13 and what the
    /// stock client sends.
    #[default]
    V5,
}

impl Protocol {
    /// The protocol to answer a request pickled at `request` with: the
    /// same one, so a Python 3.4–3.7 client (protocol 4) can read the reply.
    pub fn for_request(request: u8) -> Protocol {
        if request >= 5 {
            Protocol::V5
        } else {
            Protocol::V4
        }
    }
}

const FRAME_SIZE_MIN: usize = 4;
const FRAME_SIZE_TARGET: usize = 64 * 1024;
const BATCH: usize = 1000;

/// Encodes at [`Protocol::V5`].
pub fn encode(value: &Value) -> Vec<u8> {
    encode_with(value, Protocol::V5)
}

/// Encodes at the given protocol.
pub fn encode_with(value: &Value, protocol: Protocol) -> Vec<u8> {
    let mut p = Pickler {
        out: Vec::new(),
        frame: Vec::new(),
    };
    p.out.push(op::PROTO);
    p.out.push(match protocol {
        Protocol::V4 => 4,
        Protocol::V5 => 5,
    });
    p.save(value);
    p.frame.push(op::STOP);
    p.commit(true);
    p.out
}

/// The Python module and class an exception class name is pickled as.
///
/// Dotted names (`re.error`) are split at the last dot; fail2ban's own
/// `UnknownJailException`/`DuplicateJailException` live in
/// `fail2ban.exceptions`; builtin exception names map to `builtins`. Any
/// other bare name becomes `builtins.Exception`, so the stock client can
/// always unpickle the reply (the message is kept).
pub fn exception_origin(class: &str) -> (&str, &str) {
    if let Some((m, n)) = class.rsplit_once('.') {
        if !m.is_empty() && !n.is_empty() {
            return (m, n);
        }
    }
    if matches!(class, "UnknownJailException" | "DuplicateJailException") {
        return ("fail2ban.exceptions", class);
    }
    if BUILTIN_EXCEPTIONS.contains(&class) {
        return ("builtins", class);
    }
    ("builtins", "Exception")
}

/// Exception classes of Python 3.11's `builtins`.
pub(crate) const BUILTIN_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
];

struct Pickler {
    out: Vec<u8>,
    frame: Vec<u8>,
}

impl Pickler {
    fn commit(&mut self, force: bool) {
        if self.frame.len() >= FRAME_SIZE_TARGET || (force && !self.frame.is_empty()) {
            if self.frame.len() >= FRAME_SIZE_MIN {
                self.out.push(op::FRAME);
                self.out
                    .extend_from_slice(&(self.frame.len() as u64).to_le_bytes());
            }
            self.out.append(&mut self.frame);
        }
    }

    fn w(&mut self, b: &[u8]) {
        self.frame.extend_from_slice(b);
    }

    fn memoize(&mut self) {
        self.frame.push(op::MEMOIZE);
    }

    /// A length-prefixed payload; large ones go outside any frame, as
    /// CPython's `write_large_bytes` does.
    fn payload(&mut self, short: u8, long: u8, huge: u8, data: &[u8]) {
        let n = data.len();
        if n <= 0xff {
            self.frame.push(short);
            self.frame.push(n as u8);
            self.w(data);
        } else if n as u64 > 0xffff_ffff {
            self.commit(true);
            self.out.push(huge);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
            self.out.extend_from_slice(data);
        } else if n >= FRAME_SIZE_TARGET {
            self.commit(true);
            self.out.push(long);
            self.out.extend_from_slice(&(n as u32).to_le_bytes());
            self.out.extend_from_slice(data);
        } else {
            self.frame.push(long);
            self.frame.extend_from_slice(&(n as u32).to_le_bytes());
            self.w(data);
        }
        self.memoize();
    }

    fn str(&mut self, s: &str) {
        self.payload(
            op::SHORT_BINUNICODE,
            op::BINUNICODE,
            op::BINUNICODE8,
            s.as_bytes(),
        );
    }

    fn int(&mut self, i: i64) {
        if (0..=0xff).contains(&i) {
            self.w(&[op::BININT1, i as u8]);
        } else if (0..=0xffff).contains(&i) {
            self.frame.push(op::BININT2);
            self.w(&(i as u16).to_le_bytes());
        } else if (-0x8000_0000..=0x7fff_ffff).contains(&i) {
            self.frame.push(op::BININT);
            self.w(&(i as i32).to_le_bytes());
        } else {
            // Minimal two's-complement little-endian, like encode_long().
            let b = i.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let top = b[n - 1];
                let next_sign = b[n - 2] & 0x80 != 0;
                if (top == 0x00 && !next_sign) || (top == 0xff && next_sign) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.frame.push(op::LONG1);
            self.frame.push(n as u8);
            self.w(&b[..n]);
        }
    }

    fn batched(&mut self, items: &[Value], single: u8, many: u8, mark_always: bool) {
        for chunk in items.chunks(BATCH) {
            if chunk.len() == 1 && !mark_always {
                self.save(&chunk[0]);
                self.frame.push(single);
            } else {
                self.frame.push(op::MARK);
                for it in chunk {
                    self.save(it);
                }
                self.frame.push(many);
            }
        }
    }

    fn save(&mut self, v: &Value) {
        self.commit(false);
        match v {
            Value::None => self.frame.push(op::NONE),
            Value::Bool(true) => self.frame.push(op::NEWTRUE),
            Value::Bool(false) => self.frame.push(op::NEWFALSE),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.frame.push(op::BINFLOAT);
                self.w(&f.to_be_bytes());
            }
            Value::Str(s) => self.str(s),
            Value::Bytes(b) => self.payload(op::SHORT_BINBYTES, op::BINBYTES, op::BINBYTES8, b),
            Value::List(items) => {
                self.frame.push(op::EMPTY_LIST);
                self.memoize();
                self.batched(items, op::APPEND, op::APPENDS, false);
            }
            Value::Tuple(items) => match items.len() {
                0 => self.frame.push(op::EMPTY_TUPLE),
                n @ 1..=3 => {
                    for it in items {
                        self.save(it);
                    }
                    self.frame.push(op::TUPLE1 + (n as u8 - 1));
                    self.memoize();
                }
                _ => {
                    self.frame.push(op::MARK);
                    for it in items {
                        self.save(it);
                    }
                    self.frame.push(op::TUPLE);
                    self.memoize();
                }
            },
            Value::Dict(items) => {
                self.frame.push(op::EMPTY_DICT);
                self.memoize();
                for chunk in items.chunks(BATCH) {
                    if chunk.len() == 1 {
                        self.save(&chunk[0].0);
                        self.save(&chunk[0].1);
                        self.frame.push(op::SETITEM);
                    } else {
                        self.frame.push(op::MARK);
                        for (k, v) in chunk {
                            self.save(k);
                            self.save(v);
                        }
                        self.frame.push(op::SETITEMS);
                    }
                }
            }
            Value::Set(items) => {
                self.frame.push(op::EMPTY_SET);
                self.memoize();
                self.batched(items, op::ADDITEMS, op::ADDITEMS, true);
            }
            Value::Exception { class, message } => {
                let (module, name) = exception_origin(class);
                self.str(module);
                self.str(name);
                self.frame.push(op::STACK_GLOBAL);
                self.memoize();
                self.str(message);
                self.frame.push(op::TUPLE1);
                self.memoize();
                self.frame.push(op::REDUCE);
                self.memoize();
            }
        }
    }
}
