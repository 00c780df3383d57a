//! The restricted unpickler.
//!
//! Decoding runs in two phases. Phase one executes the opcodes over an arena
//! of objects (`Obj`) with a value stack, a mark stack and a memo, exactly
//! like CPython's `_Unpickler` does with real objects — so memo references
//! share mutable lists/dicts/sets the way Python does (`l = []; memo[0] = l;
//! l.append(1)` later shows through `GET 0`). Phase two materializes the
//! arena into a [`Value`] tree, refusing cycles and charging every produced
//! node and byte against a budget, so a few hundred bytes of nested memo
//! references cannot expand into gigabytes.

use std::collections::HashMap;

use f2b_core::value::Value;

use super::error::PickleError;
use super::op;

/// Resource limits for decoding. All are enforced before memory is
/// allocated in proportion to an attacker-chosen number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted pickle, in bytes (default 1 MiB).
    pub max_input: usize,
    /// Deepest container nesting (default 64; fail2ban's config stream
    /// needs about 5).
    pub max_depth: usize,
    /// Most distinct memo slots (default 65 536).
    pub max_memo: usize,
    /// Most elements in one list/tuple/dict/set (default 1 048 576).
    pub max_container_len: usize,
    /// Most nodes in the decoded value, counting every expansion of a shared
    /// memo reference (default 1 048 576).
    pub max_nodes: usize,
    /// Most string/bytes payload in the decoded value, counting every
    /// expansion of a shared reference (default 16 MiB).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: 1 << 20,
            max_depth: 64,
            max_memo: 1 << 16,
            max_container_len: 1 << 20,
            max_nodes: 1 << 20,
            max_output_bytes: 16 << 20,
        }
    }
}

/// What the decoder accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Resource limits.
    pub limits: Limits,
    /// Accept `GLOBAL`/`STACK_GLOBAL` + `REDUCE` (+ `BUILD`) *only* in the
    /// shape of an exception instance, decoded as [`Value::Exception`]
    /// without importing anything. Off for requests (server side), on for
    /// replies (client side).
    pub allow_exceptions: bool,
}

/// A successfully decoded pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The value.
    pub value: Value,
    /// The protocol announced by `PROTO` (0 when absent).
    pub protocol: u8,
    /// Bytes consumed up to and including `STOP`; Python ignores the rest.
    pub consumed: usize,
}

/// Decodes a request pickle with default [`Limits`] and no exceptions
/// allowed: the server-side entry point.
pub fn decode(data: &[u8]) -> Result<Value, PickleError> {
    decode_with(data, &DecodeOptions::default()).map(|d| d.value)
}

/// Decodes a reply pickle (default limits, exception instances allowed):
/// the client-side entry point.
pub fn decode_reply(data: &[u8]) -> Result<Value, PickleError> {
    let opts = DecodeOptions {
        allow_exceptions: true,
        ..DecodeOptions::default()
    };
    decode_with(data, &opts).map(|d| d.value)
}

/// Decodes with explicit options.
pub fn decode_with(data: &[u8], opts: &DecodeOptions) -> Result<Decoded, PickleError> {
    if data.len() > opts.limits.max_input {
        return Err(PickleError::TooLarge {
            size: data.len(),
            limit: opts.limits.max_input,
        });
    }
    let mut m = Machine {
        data,
        pos: 0,
        op_at: 0,
        opts,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        protocol: 0,
        work: 0,
    };
    let root = m.run()?;
    let consumed = m.pos;
    let protocol = m.protocol;
    let mut mat = Materializer {
        arena: &m.arena,
        limits: &opts.limits,
        nodes: m.work,
        bytes: 0,
        path: Vec::new(),
    };
    let value = mat.value(root, 0)?;
    Ok(Decoded {
        value,
        protocol,
        consumed,
    })
}

/// One object in the arena. Containers refer to other objects by index.
#[derive(Debug)]
enum Obj {
    Scalar(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict {
        items: Vec<(usize, usize)>,
        index: HashMap<Vec<u8>, usize>,
    },
    Set {
        items: Vec<usize>,
        index: HashMap<Vec<u8>, ()>,
        frozen: bool,
    },
    /// A class reference (`GLOBAL`), only in exception mode.
    Class {
        name: String,
    },
    /// `builtins.str`, only in reply mode: fail2ban's `IPAddr` pickles
    /// itself as `str('1.2.3.4')`.
    StrType,
    /// `Class(*args)` (`REDUCE`), only in exception mode.
    Exception {
        class: String,
        message: String,
    },
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    opts: &'a DecodeOptions,
    arena: Vec<Obj>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
    protocol: u8,
    /// Nodes visited while hashing dict keys / set elements.
    work: usize,
}

impl<'a> Machine<'a> {
    fn malformed(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.op_at,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let rest = self.data.len() - self.pos;
        if n > rest {
            return Err(PickleError::Truncated {
                offset: self.pos,
                needed: n - rest,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length that must fit in the remaining input (so a huge announced
    /// length never turns into a huge allocation).
    fn sized(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let rest = (self.data.len() - self.pos) as u64;
        if n > rest {
            return Err(PickleError::Truncated {
                offset: self.pos,
                needed: usize::try_from(n - rest).unwrap_or(usize::MAX),
            });
        }
        self.take(n as usize)
    }

    /// A text-protocol argument: bytes up to (excluding) the next `\n`.
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(PickleError::Truncated {
                offset: self.data.len(),
                needed: 1,
            }),
        }
    }

    fn alloc(&mut self, obj: Obj) -> usize {
        self.arena.push(obj);
        self.arena.len() - 1
    }

    fn push(&mut self, obj: Obj) {
        let id = self.alloc(obj);
        self.stack.push(id);
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<usize, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("MARK not found"))?;
        Ok(self.stack.split_off(m))
    }

    fn check_len(&self, len: usize) -> Result<(), PickleError> {
        if len > self.opts.limits.max_container_len {
            return Err(PickleError::ContainerTooLarge {
                limit: self.opts.limits.max_container_len,
                offset: self.op_at,
            });
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        if !self.memo.contains_key(&index) && self.memo.len() >= self.opts.limits.max_memo {
            return Err(PickleError::MemoTooLarge {
                limit: self.opts.limits.max_memo,
                offset: self.op_at,
            });
        }
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        match self.memo.get(&index) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => Err(PickleError::MemoMissing {
                index,
                offset: self.op_at,
            }),
        }
    }

    fn forbidden(&self, opcode: u8) -> PickleError {
        PickleError::Forbidden {
            opcode,
            name: op::name(opcode),
            offset: self.op_at,
        }
    }

    fn utf8(&self, b: &[u8]) -> Result<String, PickleError> {
        String::from_utf8(b.to_vec()).map_err(|_| self.malformed("string is not valid UTF-8"))
    }

    /// Protocol 0–2 `str` opcodes carry bytes that Python 3's default
    /// `encoding="ASCII"` turns into `str`.
    fn ascii(&self, b: &[u8]) -> Result<String, PickleError> {
        if b.is_ascii() {
            Ok(b.iter().map(|&c| c as char).collect())
        } else {
            Err(self.malformed("8-bit string is not ASCII"))
        }
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            self.op_at = self.pos;
            let code = self.byte()?;
            match code {
                op::PROTO => {
                    let v = self.byte()?;
                    if v > 5 {
                        return Err(PickleError::UnsupportedProtocol {
                            version: v,
                            offset: self.op_at,
                        });
                    }
                    self.protocol = v;
                }
                op::FRAME => {
                    let n = self.u64()?;
                    if n > (self.data.len() - self.pos) as u64 {
                        return Err(PickleError::Truncated {
                            offset: self.pos,
                            needed: usize::try_from(n - (self.data.len() - self.pos) as u64)
                                .unwrap_or(usize::MAX),
                        });
                    }
                }
                op::STOP => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                op::NONE => self.push(Obj::Scalar(Value::None)),
                op::NEWTRUE => self.push(Obj::Scalar(Value::Bool(true))),
                op::NEWFALSE => self.push(Obj::Scalar(Value::Bool(false))),
                op::INT => {
                    let l = self.line()?;
                    let v = match l {
                        b"00" => Value::Bool(false),
                        b"01" => Value::Bool(true),
                        _ => Value::Int(self.text_int(l)?),
                    };
                    self.push(Obj::Scalar(v));
                }
                op::LONG => {
                    let mut l = self.line()?;
                    if let Some(rest) = l.strip_suffix(b"L") {
                        l = rest;
                    }
                    let v = self.text_int(l)?;
                    self.push(Obj::Scalar(Value::Int(v)));
                }
                op::BININT => {
                    let v = self.u32()? as i32;
                    self.push(Obj::Scalar(Value::Int(v.into())));
                }
                op::BININT1 => {
                    let v = self.byte()?;
                    self.push(Obj::Scalar(Value::Int(v.into())));
                }
                op::BININT2 => {
                    let v = self.u16()?;
                    self.push(Obj::Scalar(Value::Int(v.into())));
                }
                op::LONG1 => {
                    let n = self.byte()?;
                    let b = self.take(n.into())?;
                    let v = self.long_bytes(b)?;
                    self.push(Obj::Scalar(Value::Int(v)));
                }
                op::LONG4 => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return Err(self.malformed("LONG4 with negative byte count"));
                    }
                    let b = self.sized(n as u64)?;
                    let v = self.long_bytes(b)?;
                    self.push(Obj::Scalar(Value::Int(v)));
                }
                op::FLOAT => {
                    let l = self.line()?;
                    let v = self.text_float(l)?;
                    self.push(Obj::Scalar(Value::Float(v)));
                }
                op::BINFLOAT => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Obj::Scalar(Value::Float(f64::from_be_bytes(a))));
                }
                op::STRING => {
                    let l = self.line()?;
                    let raw = self.quoted(l)?;
                    let s = self.ascii(&raw)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::BINSTRING => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return Err(self.malformed("BINSTRING with negative length"));
                    }
                    let b = self.sized(n as u64)?;
                    let s = self.ascii(b)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::SHORT_BINSTRING => {
                    let n = self.byte()?;
                    let b = self.take(n.into())?;
                    let s = self.ascii(b)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::UNICODE => {
                    let l = self.line()?;
                    let s = self.raw_unicode_escape(l)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::SHORT_BINUNICODE => {
                    let n = self.byte()?;
                    let b = self.take(n.into())?;
                    let s = self.utf8(b)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::BINUNICODE => {
                    let n = self.u32()?;
                    let b = self.sized(n.into())?;
                    let s = self.utf8(b)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::BINUNICODE8 => {
                    let n = self.u64()?;
                    let b = self.sized(n)?;
                    let s = self.utf8(b)?;
                    self.push(Obj::Scalar(Value::Str(s)));
                }
                op::SHORT_BINBYTES => {
                    let n = self.byte()?;
                    let b = self.take(n.into())?;
                    self.push(Obj::Scalar(Value::Bytes(b.to_vec())));
                }
                op::BINBYTES => {
                    let n = self.u32()?;
                    let b = self.sized(n.into())?;
                    self.push(Obj::Scalar(Value::Bytes(b.to_vec())));
                }
                op::BINBYTES8 | op::BYTEARRAY8 => {
                    let n = self.u64()?;
                    let b = self.sized(n)?;
                    self.push(Obj::Scalar(Value::Bytes(b.to_vec())));
                }
                op::EMPTY_LIST => self.push(Obj::List(Vec::new())),
                op::EMPTY_TUPLE => self.push(Obj::Tuple(Vec::new())),
                op::EMPTY_DICT => self.push(Obj::Dict {
                    items: Vec::new(),
                    index: HashMap::new(),
                }),
                op::EMPTY_SET => self.push(Obj::Set {
                    items: Vec::new(),
                    index: HashMap::new(),
                    frozen: false,
                }),
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.check_len(items.len())?;
                    self.push(Obj::List(items));
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.check_len(items.len())?;
                    self.push(Obj::Tuple(items));
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    if self.stack.len() < self.floor() + n {
                        return Err(self.malformed("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Obj::Tuple(items));
                }
                op::DICT => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("odd number of items for DICT"));
                    }
                    let id = self.alloc(Obj::Dict {
                        items: Vec::new(),
                        index: HashMap::new(),
                    });
                    for pair in items.chunks(2) {
                        self.dict_set(id, pair[0], pair[1])?;
                    }
                    self.stack.push(id);
                }
                op::FROZENSET => {
                    let items = self.pop_mark()?;
                    let id = self.alloc(Obj::Set {
                        items: Vec::new(),
                        index: HashMap::new(),
                        frozen: true,
                    });
                    for it in items {
                        self.set_add(id, it)?;
                    }
                    self.stack.push(id);
                }
                op::APPEND => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.list_extend(l, &[v])?;
                }
                op::APPENDS => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    self.list_extend(l, &items)?;
                }
                op::SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.dict_set(d, k, v)?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("odd number of items for SETITEMS"));
                    }
                    let d = self.top()?;
                    for pair in items.chunks(2) {
                        self.dict_set(d, pair[0], pair[1])?;
                    }
                }
                op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    let s = self.top()?;
                    if !matches!(self.arena[s], Obj::Set { frozen: false, .. }) {
                        return Err(self.malformed("ADDITEMS target is not a set"));
                    }
                    for it in items {
                        self.set_add(s, it)?;
                    }
                }
                op::PUT => {
                    let l = self.line()?;
                    let i = self.text_index(l)?;
                    self.memo_put(i)?;
                }
                op::BINPUT => {
                    let i = self.byte()?;
                    self.memo_put(i.into())?;
                }
                op::LONG_BINPUT => {
                    let i = self.u32()?;
                    self.memo_put(i.into())?;
                }
                op::MEMOIZE => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                op::GET => {
                    let l = self.line()?;
                    let i = self.text_index(l)?;
                    self.memo_get(i)?;
                }
                op::BINGET => {
                    let i = self.byte()?;
                    self.memo_get(i.into())?;
                }
                op::LONG_BINGET => {
                    let i = self.u32()?;
                    self.memo_get(i.into())?;
                }
                op::GLOBAL if self.opts.allow_exceptions => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let module = self.ascii(module)?;
                    let name = self.ascii(name)?;
                    self.push_class(&module, &name)?;
                }
                op::STACK_GLOBAL if self.opts.allow_exceptions => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Obj::Scalar(Value::Str(module)), Obj::Scalar(Value::Str(name))) =
                        (&self.arena[module], &self.arena[name])
                    else {
                        return Err(self.malformed("STACK_GLOBAL operands are not strings"));
                    };
                    let (module, name) = (module.clone(), name.clone());
                    self.push_class(&module, &name)?;
                }
                op::REDUCE if self.opts.allow_exceptions => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    if matches!(self.arena[callable], Obj::StrType) {
                        let s = match &self.arena[args] {
                            Obj::Tuple(a) if a.len() == 1 => match &self.arena[a[0]] {
                                Obj::Scalar(Value::Str(s)) => Some(s.clone()),
                                _ => None,
                            },
                            _ => None,
                        };
                        let s = s.ok_or_else(|| self.malformed("str() of a non-string"))?;
                        self.push(Obj::Scalar(Value::Str(s)));
                        continue;
                    }
                    let Obj::Class { name } = &self.arena[callable] else {
                        return Err(self.forbidden(code));
                    };
                    let class = name.clone();
                    let message = self.exception_message(args)?;
                    self.push(Obj::Exception { class, message });
                }
                op::BUILD if self.opts.allow_exceptions => {
                    // An exception with a non-empty __dict__ is pickled as
                    // REDUCE + BUILD(state). The state is dropped.
                    let _state = self.pop()?;
                    let target = self.top()?;
                    if !matches!(self.arena[target], Obj::Exception { .. }) {
                        return Err(self.forbidden(code));
                    }
                }
                op::GLOBAL
                | op::STACK_GLOBAL
                | op::REDUCE
                | op::BUILD
                | op::INST
                | op::OBJ
                | op::NEWOBJ
                | op::NEWOBJ_EX
                | op::EXT1
                | op::EXT2
                | op::EXT4
                | op::PERSID
                | op::BINPERSID
                | op::NEXT_BUFFER
                | op::READONLY_BUFFER => return Err(self.forbidden(code)),
                other => {
                    return Err(PickleError::UnknownOpcode {
                        opcode: other,
                        offset: self.op_at,
                    })
                }
            }
        }
    }

    fn push_class(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let ident = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| {
                    let mut c = p.chars();
                    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
                        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
                })
        };
        if !ident(module) || !ident(name) || name.contains('.') {
            return Err(self.malformed("class reference is not a dotted identifier"));
        }
        // Only exception classes: a builtin one, or a class whose name says
        // it is one (fail2ban's, `re.error`, ...). `set`, `bytearray`,
        // `os.system`, ... are refused even here.
        let builtin = matches!(module, "builtins" | "exceptions");
        if builtin && name == "str" {
            self.push(Obj::StrType);
            return Ok(());
        }
        let looks_like_exception = ["Error", "Exception", "Warning"]
            .iter()
            .any(|s| name.ends_with(s))
            || name == "error";
        if (builtin && !super::encode::BUILTIN_EXCEPTIONS.contains(&name))
            || (!builtin && !looks_like_exception)
        {
            return Err(self.forbidden(self.data[self.op_at]));
        }
        let name = match module {
            "builtins" | "exceptions" | "fail2ban.exceptions" => name.to_owned(),
            _ => format!("{module}.{name}"),
        };
        self.push(Obj::Class { name });
        Ok(())
    }

    /// `str(exc)`-like message from the exception's args tuple: the single
    /// string argument itself, `""` for no arguments, otherwise the Python
    /// `str()` of the argument (or of the whole tuple).
    fn exception_message(&mut self, args: usize) -> Result<String, PickleError> {
        if !matches!(self.arena[args], Obj::Tuple(_)) {
            return Err(self.malformed("REDUCE arguments are not a tuple"));
        }
        let mut mat = Materializer {
            arena: &self.arena,
            limits: &self.opts.limits,
            nodes: self.work,
            bytes: 0,
            path: Vec::new(),
        };
        let tuple = mat.value(args, 0);
        // Exception arguments count against the same node budget.
        self.work = mat.nodes;
        Ok(match tuple? {
            Value::Tuple(mut v) => match v.len() {
                0 => String::new(),
                1 => match v.remove(0) {
                    Value::Str(s) => s,
                    other => crate::pyfmt::py_str(&other),
                },
                _ => crate::pyfmt::py_str(&Value::Tuple(v)),
            },
            other => crate::pyfmt::py_str(&other),
        })
    }

    fn list_extend(&mut self, list: usize, items: &[usize]) -> Result<(), PickleError> {
        let max = self.opts.limits.max_container_len;
        let at = self.op_at;
        match &mut self.arena[list] {
            Obj::List(v) => {
                if v.len() + items.len() > max {
                    return Err(PickleError::ContainerTooLarge {
                        limit: max,
                        offset: at,
                    });
                }
                v.extend_from_slice(items);
                Ok(())
            }
            _ => Err(self.malformed("APPEND target is not a list")),
        }
    }

    fn dict_set(&mut self, dict: usize, key: usize, value: usize) -> Result<(), PickleError> {
        if !matches!(self.arena[dict], Obj::Dict { .. }) {
            return Err(self.malformed("SETITEM target is not a dict"));
        }
        let fp = self.fingerprint(key)?;
        let max = self.opts.limits.max_container_len;
        let at = self.op_at;
        let Obj::Dict { items, index } = &mut self.arena[dict] else {
            return Err(self.malformed("SETITEM target is not a dict"));
        };
        match index.get(&fp) {
            // Python keeps the first key object and replaces the value.
            Some(&slot) => items[slot].1 = value,
            None => {
                if items.len() >= max {
                    return Err(PickleError::ContainerTooLarge {
                        limit: max,
                        offset: at,
                    });
                }
                index.insert(fp, items.len());
                items.push((key, value));
            }
        }
        Ok(())
    }

    fn set_add(&mut self, set: usize, item: usize) -> Result<(), PickleError> {
        let fp = self.fingerprint(item)?;
        let max = self.opts.limits.max_container_len;
        let at = self.op_at;
        let Obj::Set { items, index, .. } = &mut self.arena[set] else {
            return Err(self.malformed("ADDITEMS target is not a set"));
        };
        if index.contains_key(&fp) {
            return Ok(());
        }
        if items.len() >= max {
            return Err(PickleError::ContainerTooLarge {
                limit: max,
                offset: at,
            });
        }
        index.insert(fp, ());
        items.push(item);
        Ok(())
    }

    /// A byte string equal for exactly the keys Python considers equal
    /// (`1 == 1.0 == True`), or an error for unhashable objects.
    fn fingerprint(&mut self, id: usize) -> Result<Vec<u8>, PickleError> {
        let mut out = Vec::new();
        self.fp_into(id, 0, &mut out)?;
        Ok(out)
    }

    fn fp_into(&mut self, id: usize, depth: usize, out: &mut Vec<u8>) -> Result<(), PickleError> {
        let limits = &self.opts.limits;
        if depth > limits.max_depth {
            return Err(PickleError::TooDeep {
                limit: limits.max_depth,
            });
        }
        self.work += 1;
        if self.work > limits.max_nodes || out.len() > limits.max_output_bytes {
            return Err(PickleError::Expansion {
                what: "nodes",
                limit: limits.max_nodes,
            });
        }
        let unhashable = |kind| PickleError::Unhashable {
            kind,
            offset: self.op_at,
        };
        match &self.arena[id] {
            Obj::Scalar(v) => match v {
                Value::None => out.push(b'N'),
                Value::Bool(b) => int_fp(i64::from(*b), out),
                Value::Int(i) => int_fp(*i, out),
                Value::Float(f) => {
                    if f.fract() == 0.0 && f.abs() < 9.2e18 {
                        int_fp(*f as i64, out)
                    } else {
                        out.push(b'f');
                        out.extend_from_slice(&f.to_bits().to_le_bytes());
                    }
                }
                Value::Str(s) => {
                    out.push(b's');
                    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                Value::Bytes(b) => {
                    out.push(b'b');
                    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    out.extend_from_slice(b);
                }
                Value::List(_) => return Err(unhashable("list")),
                Value::Dict(_) => return Err(unhashable("dict")),
                Value::Set(_) => return Err(unhashable("set")),
                Value::Tuple(_) | Value::Exception { .. } => {
                    return Err(unhashable("object"));
                }
            },
            Obj::Tuple(items) => {
                let items = items.clone();
                out.push(b't');
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for it in items {
                    self.fp_into(it, depth + 1, out)?;
                }
            }
            Obj::Set { frozen: true, .. } => {
                // frozensets are hashable but order-insensitive; they never
                // occur as keys in fail2ban's protocol.
                return Err(unhashable("frozenset"));
            }
            Obj::List(_) => return Err(unhashable("list")),
            Obj::Dict { .. } => return Err(unhashable("dict")),
            Obj::Set { .. } => return Err(unhashable("set")),
            Obj::Class { .. } | Obj::StrType | Obj::Exception { .. } => {
                return Err(unhashable("object"))
            }
        }
        Ok(())
    }

    fn text_int(&self, l: &[u8]) -> Result<i64, PickleError> {
        let s = std::str::from_utf8(l).map_err(|_| self.malformed("integer literal"))?;
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.malformed("integer literal"));
        }
        let mag: u64 = digits
            .parse()
            .map_err(|_| PickleError::IntegerOverflow { offset: self.op_at })?;
        let v = if neg {
            0i64.checked_sub_unsigned(mag)
        } else {
            i64::try_from(mag).ok()
        };
        v.ok_or(PickleError::IntegerOverflow { offset: self.op_at })
    }

    fn text_index(&self, l: &[u8]) -> Result<u64, PickleError> {
        let s = std::str::from_utf8(l).map_err(|_| self.malformed("memo index"))?;
        s.trim()
            .parse::<u64>()
            .map_err(|_| self.malformed("memo index"))
    }

    fn text_float(&self, l: &[u8]) -> Result<f64, PickleError> {
        let s = std::str::from_utf8(l).map_err(|_| self.malformed("float literal"))?;
        let t = s.trim();
        let ok = !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eEinfatyINFATY".contains(&b));
        if !ok {
            return Err(self.malformed("float literal"));
        }
        t.parse::<f64>()
            .map_err(|_| self.malformed("float literal"))
    }

    /// Little-endian two's-complement bytes (LONG1/LONG4) to i64.
    fn long_bytes(&self, b: &[u8]) -> Result<i64, PickleError> {
        if b.is_empty() {
            return Ok(0);
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let fill = if neg { 0xff } else { 0x00 };
        if b.len() > 8 {
            // Longer encodings are fine only if the extra bytes are pure
            // sign extension.
            if b[8..].iter().any(|&x| x != fill) || ((b[7] & 0x80 != 0) != neg) {
                return Err(PickleError::IntegerOverflow { offset: self.op_at });
            }
        }
        let mut a = [fill; 8];
        let n = b.len().min(8);
        a[..n].copy_from_slice(&b[..n]);
        Ok(i64::from_le_bytes(a))
    }

    /// The `repr()`-quoted argument of protocol-0 `STRING`.
    fn quoted(&self, l: &[u8]) -> Result<Vec<u8>, PickleError> {
        let bad = || self.malformed("STRING literal is not quoted");
        if l.len() < 2 {
            return Err(bad());
        }
        let q = l[0];
        if (q != b'\'' && q != b'"') || l[l.len() - 1] != q {
            return Err(bad());
        }
        let body = &l[1..l.len() - 1];
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let c = body[i];
            i += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let Some(&e) = body.get(i) else {
                return Err(self.malformed("trailing backslash in STRING"));
            };
            i += 1;
            match e {
                b'\n' => {}
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(11),
                b'x' => {
                    let h = body
                        .get(i..i + 2)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| self.malformed("bad \\x escape in STRING"))?;
                    i += 2;
                    out.push(h);
                }
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    let mut k = 0;
                    while k < 2 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                        v = v * 8 + u32::from(body[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    out.push((v & 0xff) as u8);
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
        }
        Ok(out)
    }

    /// Python's `raw-unicode-escape` codec (protocol-0 `UNICODE`): bytes are
    /// Latin-1 except `\uXXXX` and `\UXXXXXXXX`.
    fn raw_unicode_escape(&self, l: &[u8]) -> Result<String, PickleError> {
        let mut out = String::with_capacity(l.len());
        let mut i = 0;
        while i < l.len() {
            let c = l[i];
            if c == b'\\' && i + 1 < l.len() && (l[i + 1] == b'u' || l[i + 1] == b'U') {
                // An odd run of backslashes escapes; Python counts them.
                let n = if l[i + 1] == b'u' { 4 } else { 8 };
                let hex = l
                    .get(i + 2..i + 2 + n)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.malformed("truncated \\u escape"))?;
                let ch = char::from_u32(hex)
                    .ok_or_else(|| self.malformed("\\U escape out of range or surrogate"))?;
                out.push(ch);
                i += 2 + n;
            } else if c == b'\\' && i + 1 < l.len() && l[i + 1] == b'\\' {
                out.push('\\');
                out.push('\\');
                i += 2;
            } else {
                out.push(char::from(c));
                i += 1;
            }
        }
        Ok(out)
    }
}

fn int_fp(i: i64, out: &mut Vec<u8>) {
    out.push(b'i');
    out.extend_from_slice(&i.to_le_bytes());
}

struct Materializer<'a> {
    arena: &'a [Obj],
    limits: &'a Limits,
    nodes: usize,
    bytes: usize,
    /// Containers being expanded (root to current): a cycle check.
    path: Vec<usize>,
}

impl Materializer<'_> {
    fn value(&mut self, id: usize, depth: usize) -> Result<Value, PickleError> {
        if depth > self.limits.max_depth {
            return Err(PickleError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(PickleError::Expansion {
                what: "nodes",
                limit: self.limits.max_nodes,
            });
        }
        let v = match &self.arena[id] {
            Obj::Scalar(v) => {
                let n = match v {
                    Value::Str(s) => s.len(),
                    Value::Bytes(b) => b.len(),
                    _ => 0,
                };
                self.bytes += n;
                if self.bytes > self.limits.max_output_bytes {
                    return Err(PickleError::Expansion {
                        what: "bytes",
                        limit: self.limits.max_output_bytes,
                    });
                }
                return Ok(v.clone());
            }
            Obj::Exception { class, message } => {
                return Ok(Value::Exception {
                    class: class.clone(),
                    message: message.clone(),
                })
            }
            Obj::Class { .. } | Obj::StrType => {
                return Err(PickleError::Malformed {
                    offset: 0,
                    reason: "class reference used as a value".into(),
                })
            }
            _ => {
                if self.path.contains(&id) {
                    return Err(PickleError::Cycle);
                }
                self.path.push(id);
                let r = self.container(id, depth);
                self.path.pop();
                r?
            }
        };
        Ok(v)
    }

    fn container(&mut self, id: usize, depth: usize) -> Result<Value, PickleError> {
        let seq = |m: &mut Self, items: &[usize]| -> Result<Vec<Value>, PickleError> {
            let mut out = Vec::with_capacity(items.len());
            for &it in items {
                out.push(m.value(it, depth + 1)?);
            }
            Ok(out)
        };
        Ok(match &self.arena[id] {
            Obj::List(items) => Value::List(seq(self, items)?),
            Obj::Tuple(items) => Value::Tuple(seq(self, items)?),
            Obj::Set { items, .. } => Value::Set(seq(self, items)?),
            Obj::Dict { items, .. } => {
                let mut out = Vec::with_capacity(items.len());
                for &(k, v) in items {
                    out.push((self.value(k, depth + 1)?, self.value(v, depth + 1)?));
                }
                Value::Dict(out)
            }
            Obj::Scalar(_) | Obj::Class { .. } | Obj::StrType | Obj::Exception { .. } => {
                return Err(PickleError::Malformed {
                    offset: 0,
                    reason: "internal: scalar as container".into(),
                })
            }
        })
    }
}
