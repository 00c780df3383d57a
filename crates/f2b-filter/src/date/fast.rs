//! A small backtracking matcher for the Python regexes of date templates
//! (and of `DateTemplate.setRegex`'s own checks): the date fast path.
//!
//! The program works on bytes. Everything whose meaning on a non-ASCII
//! character would need Unicode tables (`\w \W \d \D \s \S \b \B`,
//! case-insensitive comparison) gives up ([`Found::Bail`]) when it meets a
//! non-ASCII byte, and the caller then asks the regex engine. On the bytes it
//! does decide, it follows Python's `re` exactly as the project's regex
//! dialect does: leftmost start, then leftmost-first (backtracking) choice,
//! greedy or lazy repeats, `$` before a final newline, `\s` with
//! `\x1c-\x1f`. A pattern using anything outside the supported subset
//! (scoped flags, verbose mode, repeats of a sub-pattern that can match the
//! empty string, look-behinds of variable width, captures inside look-arounds,
//! group references in look-behinds) has no program and always takes the
//! regex path.
//!
//! Speed comes from first-byte sets: every instruction knows which bytes a
//! successful path from it can consume first (and whether it can succeed
//! consuming nothing), so most choice points are decided by one table
//! look-up without recursion, and a search skips start positions no match can
//! begin at. Captures are undone through a trail, not by recursion.

/// A set of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Set([u64; 4]);

impl Set {
    const ALL: Set = Set([!0; 4]);
    const NON_ASCII: Set = Set([0, 0, !0, !0]);
    fn has(&self, b: u8) -> bool {
        (self.0[usize::from(b >> 6)] >> (b & 63)) & 1 == 1
    }
    fn add(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.add(b);
        }
    }
    fn union(&mut self, o: &Set) -> bool {
        let before = self.0;
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a |= *b;
        }
        before != self.0
    }
    fn ascii_complement(&self) -> Set {
        Set([!self.0[0], !self.0[1], 0, 0])
    }
}

/// `\w` on an ASCII byte.
pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Python's `\s` on ASCII: `[\t\n\x0b\x0c\r \x1c-\x1f]`.
fn is_py_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x1c..=0x1f)
}

/// Character classes whose non-ASCII members need Unicode tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Uni {
    /// Matches no non-ASCII character (`\d`, `\s`, `\w` in ASCII-only
    /// positive classes... decided per byte).
    None,
    /// Matches every non-ASCII character (`.`, `[^a]`, `\S`): consumes the
    /// whole UTF-8 sequence.
    All,
    /// Depends on Unicode properties: give up on a non-ASCII byte.
    Bail,
}

#[derive(Clone, Debug)]
enum Node {
    Empty,
    /// The UTF-8 bytes of one character, compared exactly.
    Bytes(Vec<u8>),
    /// A case-insensitive non-ASCII character: never matches ASCII; gives up
    /// on non-ASCII text.
    CiNonAscii,
    /// One character: an ASCII byte in `set`, or a non-ASCII one per `uni`.
    Class(Set, Uni),
    Seq(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    Group(usize, Box<Node>),
    Backref(usize),
    Assert(Assert),
    Look {
        behind: bool,
        neg: bool,
        node: Box<Node>,
    },
    Cond {
        group: usize,
        yes: Box<Node>,
        no: Box<Node>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Assert {
    /// `^` and `\A` (not multi-line).
    Start,
    /// Python's `$`: the end, or before a newline that ends the text.
    EndPy,
    /// `\Z`.
    End,
    WordB,
    NotWordB,
}

/// Why a pattern has no fast program.
#[derive(Debug)]
pub(crate) struct Unsupported;

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
    ci: bool,
    dotall: bool,
    names: Vec<Option<String>>,
    /// Groups whose `)` was seen.
    closed: Vec<bool>,
    /// Depth inside look-arounds (no captures allowed there).
    in_look: usize,
}

type R<T> = Result<T, Unsupported>;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }
    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.pos + k).copied()
    }
    fn next(&mut self) -> R<char> {
        let c = self.peek().ok_or(Unsupported)?;
        self.pos += 1;
        Ok(c)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn global_flags(&mut self) -> R<()> {
        // only leading `(?flags)` groups; `a L u` change nothing on the bytes
        // this matcher decides
        while self.peek() == Some('(')
            && self.peek_at(1) == Some('?')
            && self.peek_at(2).is_some_and(|c| "aiLsu".contains(c))
        {
            let save = self.pos;
            self.pos += 2;
            let mut ci = self.ci;
            let mut dotall = self.dotall;
            loop {
                match self.next()? {
                    'i' => ci = true,
                    's' => dotall = true,
                    'a' | 'L' | 'u' => {}
                    ')' => break,
                    _ => {
                        self.pos = save;
                        return Ok(());
                    }
                }
            }
            self.ci = ci;
            self.dotall = dotall;
        }
        Ok(())
    }

    fn alt(&mut self) -> R<Node> {
        let mut alts = vec![self.seq()?];
        while self.eat('|') {
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn seq(&mut self) -> R<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let atom = self.quantified(atom)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Seq(items),
        })
    }

    /// `{m}`, `{m,}`, `{,n}`, `{m,n}` at the current `{`, if it is one.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let start = self.pos;
        let num = |p: &mut Self| -> Option<u32> {
            let b = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            if p.pos == b {
                return None;
            }
            p.s[b..p.pos].iter().collect::<String>().parse().ok()
        };
        self.pos += 1;
        let lo = num(self);
        let r = if self.eat(',') {
            let hi = num(self);
            if self.eat('}') {
                Some((lo.unwrap_or(0), hi))
            } else {
                None
            }
        } else if self.eat('}') {
            lo.map(|n| (n, Some(n)))
        } else {
            None
        };
        if r.is_none() {
            self.pos = start;
        }
        r
    }

    fn quantified(&mut self, atom: Node) -> R<Node> {
        let (min, max) = match self.peek() {
            Some('*') => {
                self.pos += 1;
                (0, None)
            }
            Some('+') => {
                self.pos += 1;
                (1, None)
            }
            Some('?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some('{') => match self.braces() {
                Some(q) => q,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if matches!(atom, Node::Assert(_) | Node::Look { .. } | Node::Empty) {
            return Err(Unsupported);
        }
        if max.is_some_and(|m| m < min) || min > 1000 || max.is_some_and(|m| m > 1000) {
            return Err(Unsupported);
        }
        let greedy = !self.eat('?');
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return Err(Unsupported);
        }
        // a repeated sub-pattern that can match empty: engines differ on
        // empty iterations; leave those to the regex engine
        if width(&atom).0 == 0 && max != Some(1) {
            return Err(Unsupported);
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    fn lit(&self, c: char) -> R<Node> {
        if c.is_ascii() {
            let b = c as u8;
            if self.ci && b.is_ascii_alphabetic() {
                let mut s = Set::default();
                s.add(b.to_ascii_lowercase());
                s.add(b.to_ascii_uppercase());
                return Ok(Node::Class(s, Uni::None));
            }
            return Ok(Node::Bytes(vec![b]));
        }
        if self.ci {
            // characters whose simple case folding reaches ASCII
            if folds_to_ascii(c) {
                return Err(Unsupported);
            }
            return Ok(Node::CiNonAscii);
        }
        let mut buf = [0u8; 4];
        Ok(Node::Bytes(c.encode_utf8(&mut buf).as_bytes().to_vec()))
    }

    fn group_name(&mut self, end: char) -> R<String> {
        let mut n = String::new();
        loop {
            let c = self.next()?;
            if c == end {
                break;
            }
            n.push(c);
        }
        if n.is_empty() {
            return Err(Unsupported);
        }
        Ok(n)
    }

    fn group_ref(&self, name: &str) -> R<usize> {
        let idx = if name.chars().all(|c| c.is_ascii_digit()) {
            name.parse::<usize>().map_err(|_| Unsupported)?
        } else {
            self.names
                .iter()
                .position(|n| n.as_deref() == Some(name))
                .ok_or(Unsupported)?
        };
        if idx == 0 || idx >= self.names.len() || !self.closed[idx] {
            return Err(Unsupported);
        }
        Ok(idx)
    }

    fn capture(&mut self, name: Option<String>) -> R<Node> {
        if self.in_look > 0 {
            return Err(Unsupported);
        }
        if let Some(n) = &name {
            if self.names.iter().any(|x| x.as_ref() == Some(n)) {
                return Err(Unsupported);
            }
        }
        let idx = self.names.len();
        self.names.push(name);
        self.closed.push(false);
        let inner = self.alt()?;
        if !self.eat(')') {
            return Err(Unsupported);
        }
        self.closed[idx] = true;
        Ok(Node::Group(idx, Box::new(inner)))
    }

    fn close(&mut self, n: Node) -> R<Node> {
        if self.eat(')') {
            Ok(n)
        } else {
            Err(Unsupported)
        }
    }

    fn atom(&mut self) -> R<Node> {
        let c = self.next()?;
        match c {
            '(' => {
                if !self.eat('?') {
                    return self.capture(None);
                }
                match self.next()? {
                    ':' => {
                        let n = self.alt()?;
                        self.close(n)
                    }
                    'P' => match self.next()? {
                        '<' => {
                            let name = self.group_name('>')?;
                            self.capture(Some(name))
                        }
                        '=' => {
                            let name = self.group_name(')')?;
                            let g = self.group_ref(&name)?;
                            if self.in_look > 0 {
                                return Err(Unsupported);
                            }
                            Ok(Node::Backref(g))
                        }
                        _ => Err(Unsupported),
                    },
                    '=' | '!' => {
                        let neg = self.s[self.pos - 1] == '!';
                        self.look(false, neg)
                    }
                    '<' => match self.next()? {
                        '=' => self.look(true, false),
                        '!' => self.look(true, true),
                        _ => Err(Unsupported),
                    },
                    '#' => {
                        while self.next()? != ')' {}
                        Ok(Node::Empty)
                    }
                    '(' => {
                        let name = self.group_name(')')?;
                        let group = self.group_ref(&name)?;
                        let yes = self.seq()?;
                        let no = if self.eat('|') {
                            self.seq()?
                        } else {
                            Node::Empty
                        };
                        let n = Node::Cond {
                            group,
                            yes: Box::new(yes),
                            no: Box::new(no),
                        };
                        self.close(n)
                    }
                    _ => Err(Unsupported),
                }
            }
            '[' => self.class(),
            '.' => {
                let mut s = Set::default().ascii_complement();
                if !self.dotall {
                    s = Set([s.0[0] & !(1 << b'\n'), s.0[1], 0, 0]);
                }
                Ok(Node::Class(s, Uni::All))
            }
            '^' => Ok(Node::Assert(Assert::Start)),
            '$' => Ok(Node::Assert(Assert::EndPy)),
            '\\' => self.escape(),
            '*' | '+' | '?' | ')' => Err(Unsupported),
            c => self.lit(c),
        }
    }

    fn look(&mut self, behind: bool, neg: bool) -> R<Node> {
        self.in_look += 1;
        let n = self.alt()?;
        self.in_look -= 1;
        if behind {
            let (lo, hi) = width(&n);
            if Some(lo) != hi {
                return Err(Unsupported);
            }
        }
        let n = Node::Look {
            behind,
            neg,
            node: Box::new(n),
        };
        self.close(n)
    }

    /// A class escape (`\d` ...) as (set, uni).
    fn class_escape(c: char) -> Option<(Set, Uni)> {
        let mut s = Set::default();
        let (pos, uni) = match c {
            'd' | 'D' => {
                s.add_range(b'0', b'9');
                (c == 'd', Uni::Bail)
            }
            'w' | 'W' => {
                for b in 0..128u8 {
                    if is_word(b) {
                        s.add(b);
                    }
                }
                (c == 'w', Uni::Bail)
            }
            's' | 'S' => {
                for b in 0..128u8 {
                    if is_py_space(b) {
                        s.add(b);
                    }
                }
                (c == 's', Uni::Bail)
            }
            _ => return None,
        };
        Some((if pos { s } else { s.ascii_complement() }, uni))
    }

    /// A literal escape's character, Python's rules.
    fn literal_escape(&mut self, c: char) -> R<char> {
        let chars = self.s;
        match crate::dialect::py_literal_escape(c, |i| chars.get(i).copied(), &mut self.pos) {
            Ok(Some(l)) => Ok(l),
            _ => Err(Unsupported),
        }
    }

    fn escape(&mut self) -> R<Node> {
        let c = self.next()?;
        if let Some((s, u)) = Self::class_escape(c) {
            return Ok(Node::Class(s, u));
        }
        match c {
            'A' => Ok(Node::Assert(Assert::Start)),
            'Z' => Ok(Node::Assert(Assert::End)),
            'b' => Ok(Node::Assert(Assert::WordB)),
            'B' => Ok(Node::Assert(Assert::NotWordB)),
            '1'..='9' => {
                if self.peek().is_some_and(|d| d.is_ascii_digit()) {
                    // two-digit references and octal escapes: rare
                    return Err(Unsupported);
                }
                if self.in_look > 0 {
                    return Err(Unsupported);
                }
                let g = self.group_ref(&c.to_string())?;
                Ok(Node::Backref(g))
            }
            c => {
                let l = self.literal_escape(c)?;
                self.lit(l)
            }
        }
    }

    fn class(&mut self) -> R<Node> {
        let neg = self.eat('^');
        let mut set = Set::default();
        // non-ASCII members: any present makes a negated class depend on
        // which character it is, a positive one too
        let mut non_ascii = false;
        let mut uni_bail = false;
        let mut first = true;
        loop {
            let c = self.next()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self.next()?;
                if let Some((s, _)) = Self::class_escape(e) {
                    set.union(&s);
                    uni_bail = true;
                    continue;
                }
                if e == 'b' {
                    '\x08'
                } else if e.is_ascii_digit() && e != '0' {
                    return Err(Unsupported);
                } else {
                    self.literal_escape(e)?
                }
            } else {
                c
            };
            // a range?
            let hi = if self.peek() == Some('-') && self.peek_at(1).is_some_and(|d| d != ']') {
                self.pos += 1;
                let d = self.next()?;
                if d == '\\' {
                    let e = self.next()?;
                    if Self::class_escape(e).is_some() || e == 'b' || e.is_ascii_digit() {
                        return Err(Unsupported);
                    }
                    self.literal_escape(e)?
                } else {
                    d
                }
            } else {
                lo
            };
            if hi < lo {
                return Err(Unsupported);
            }
            if self.ci && (lo..=hi).any(folds_to_ascii) {
                return Err(Unsupported);
            }
            if !hi.is_ascii() {
                non_ascii = true;
            }
            if lo.is_ascii() {
                let top = if hi.is_ascii() { hi as u8 } else { 127 };
                for b in lo as u8..=top {
                    set.add(b);
                    if self.ci && b.is_ascii_alphabetic() {
                        set.add(b.to_ascii_lowercase());
                        set.add(b.to_ascii_uppercase());
                    }
                }
            }
        }
        let uni = if uni_bail || non_ascii {
            Uni::Bail
        } else if neg {
            Uni::All
        } else {
            Uni::None
        };
        let set = if neg { set.ascii_complement() } else { set };
        Ok(Node::Class(set, uni))
    }
}

fn folds_to_ascii(c: char) -> bool {
    !c.is_ascii()
        && (c.to_lowercase().any(|l| l.is_ascii())
            || c.to_uppercase().any(|u| u.is_ascii())
            || matches!(c, '\u{17f}' | '\u{212a}' | '\u{130}' | '\u{131}'))
}

/// (min, max) width in characters.
fn width(n: &Node) -> (u32, Option<u32>) {
    match n {
        Node::Empty | Node::Assert(_) | Node::Look { .. } => (0, Some(0)),
        Node::Bytes(_) | Node::CiNonAscii | Node::Class(..) => (1, Some(1)),
        Node::Seq(v) => v.iter().fold((0, Some(0)), |(a, b), n| {
            let (c, d) = width(n);
            (
                a.saturating_add(c),
                b.zip(d).map(|(b, d)| b.saturating_add(d)),
            )
        }),
        Node::Alt(v) => {
            let ws: Vec<_> = v.iter().map(width).collect();
            let lo = ws.iter().map(|w| w.0).min().unwrap_or(0);
            let hi = ws.iter().try_fold(0u32, |m, w| w.1.map(|x| m.max(x)));
            (lo, hi)
        }
        Node::Repeat { node, min, max, .. } => {
            let (a, b) = width(node);
            (
                a.saturating_mul(*min),
                b.zip(*max).map(|(b, m)| b.saturating_mul(m)),
            )
        }
        Node::Group(_, n) => width(n),
        Node::Backref(_) => (0, None),
        Node::Cond { yes, no, .. } => {
            let (a, b) = width(yes);
            let (c, d) = width(no);
            (a.min(c), if b == d { b } else { None })
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Inst {
    Byte(u8),
    CiNonAscii,
    Class(Set, Uni),
    Split(u32, u32),
    Jmp(u32),
    Save(u16),
    Assert(Assert),
    Backref(u16),
    /// Look-around: body at `start`; `behind` is the width in characters.
    Look {
        start: u32,
        behind: Option<u32>,
        neg: bool,
    },
    /// If group matched: next, else `no`.
    Cond {
        group: u16,
        no: u32,
    },
    Match,
}

const MAX_INSTS: usize = 20_000;

struct Compiler {
    insts: Vec<Inst>,
    /// Look bodies compiled after the main program: (look inst, body).
    pending: Vec<(usize, Node)>,
    ci: bool,
}

impl Compiler {
    fn emit(&mut self, i: Inst) -> R<usize> {
        if self.insts.len() >= MAX_INSTS {
            return Err(Unsupported);
        }
        self.insts.push(i);
        Ok(self.insts.len() - 1)
    }
    fn pc(&self) -> u32 {
        self.insts.len() as u32
    }

    fn node(&mut self, n: &Node) -> R<()> {
        match n {
            Node::Empty => {}
            Node::Bytes(b) => {
                for &x in b {
                    self.emit(Inst::Byte(x))?;
                }
            }
            Node::CiNonAscii => {
                self.emit(Inst::CiNonAscii)?;
            }
            Node::Class(s, u) => {
                self.emit(Inst::Class(*s, *u))?;
            }
            Node::Seq(v) => {
                for x in v {
                    self.node(x)?;
                }
            }
            Node::Alt(v) => {
                let mut jumps = Vec::new();
                for (k, x) in v.iter().enumerate() {
                    if k + 1 < v.len() {
                        let sp = self.emit(Inst::Split(0, 0))?;
                        self.node(x)?;
                        jumps.push(self.emit(Inst::Jmp(0))?);
                        let next = self.pc();
                        self.insts[sp] = Inst::Split(sp as u32 + 1, next);
                    } else {
                        self.node(x)?;
                    }
                }
                let end = self.pc();
                for j in jumps {
                    self.insts[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => {
                for _ in 0..*min {
                    self.node(node)?;
                }
                match max {
                    Some(m) => {
                        let mut splits = Vec::new();
                        for _ in *min..*m {
                            splits.push(self.emit(Inst::Split(0, 0))?);
                            self.node(node)?;
                        }
                        let end = self.pc();
                        for sp in splits {
                            let body = sp as u32 + 1;
                            self.insts[sp] = if *greedy {
                                Inst::Split(body, end)
                            } else {
                                Inst::Split(end, body)
                            };
                        }
                    }
                    None => {
                        let sp = self.emit(Inst::Split(0, 0))?;
                        self.node(node)?;
                        self.emit(Inst::Jmp(sp as u32))?;
                        let end = self.pc();
                        let body = sp as u32 + 1;
                        self.insts[sp] = if *greedy {
                            Inst::Split(body, end)
                        } else {
                            Inst::Split(end, body)
                        };
                    }
                }
            }
            Node::Group(g, inner) => {
                let slot = u16::try_from(2 * g).map_err(|_| Unsupported)?;
                self.emit(Inst::Save(slot))?;
                self.node(inner)?;
                self.emit(Inst::Save(slot + 1))?;
            }
            Node::Backref(g) => {
                let g = u16::try_from(*g).map_err(|_| Unsupported)?;
                self.emit(Inst::Backref(g))?;
            }
            Node::Assert(a) => {
                self.emit(Inst::Assert(*a))?;
            }
            Node::Look { behind, neg, node } => {
                let behind = if *behind { width(node).1 } else { None };
                let at = self.emit(Inst::Look {
                    start: 0,
                    behind,
                    neg: *neg,
                })?;
                self.pending.push((at, (**node).clone()));
            }
            Node::Cond { group, yes, no } => {
                let group = u16::try_from(*group).map_err(|_| Unsupported)?;
                let c = self.emit(Inst::Cond { group, no: 0 })?;
                self.node(yes)?;
                let j = self.emit(Inst::Jmp(0))?;
                let no_pc = self.pc();
                self.node(no)?;
                let end = self.pc();
                self.insts[c] = Inst::Cond { group, no: no_pc };
                self.insts[j] = Inst::Jmp(end);
            }
        }
        Ok(())
    }
}

/// First-byte information of one instruction.
#[derive(Clone, Copy, Default)]
struct First {
    set: Set,
    nullable: bool,
}

/// A compiled fast program.
pub(crate) struct Prog {
    insts: Vec<Inst>,
    first: Vec<First>,
    /// For the head of a long chain of splits (an alternation), by next
    /// byte: the first split of the chain whose preferred branch can start
    /// with it (the splits before it would each pass to the next), the last
    /// branch, or [`NO_PC`] (none can).
    dispatch: Vec<Option<Box<[u32; 256]>>>,
    /// Every match starts at position 0.
    anchored: bool,
    /// Group names by index (0 = whole match), as the regex dialect numbers
    /// them.
    names: Vec<Option<String>>,
    ci: bool,
}

impl std::fmt::Debug for Prog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prog")
            .field("insts", &self.insts.len())
            .finish()
    }
}

/// Outcome of a fast search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A match; the group spans are in the scratch.
    Yes,
    /// Certainly no match.
    No,
    /// Undecided here: ask the regex engine.
    Bail,
}

/// Reusable per-search memory (no allocation per line once warm).
#[derive(Default, Debug)]
pub(crate) struct Scratch {
    /// Group slots (start, end) by `2 * group`; `usize::MAX` = unset.
    pub(crate) caps: Vec<usize>,
    trail: Vec<(u16, usize)>,
    /// Pending alternatives: (pc, position, trail height).
    stack: Vec<(u32, usize, usize)>,
    pub(crate) steps: u32,
}

const UNSET: usize = usize::MAX;
const MAX_STEPS: u32 = 200_000;
const MAX_DEPTH: u32 = 400;
/// Pending alternatives of one run (beyond: give up).
const MAX_PENDING: usize = 100_000;

enum Res {
    Yes(usize),
    No,
    Bail,
}

impl Prog {
    /// Compiles a Python-syntax pattern, or says it is not supported.
    pub(crate) fn new(pattern: &str) -> Result<Prog, Unsupported> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            s: &chars,
            pos: 0,
            ci: false,
            dotall: false,
            names: vec![None],
            closed: vec![true],
            in_look: 0,
        };
        p.global_flags()?;
        let ast = p.alt()?;
        if p.pos != chars.len() {
            return Err(Unsupported);
        }
        let mut c = Compiler {
            insts: Vec::new(),
            pending: Vec::new(),
            ci: p.ci,
        };
        c.node(&ast)?;
        c.emit(Inst::Match)?;
        while let Some((at, body)) = c.pending.pop() {
            let start = c.pc();
            c.node(&body)?;
            c.emit(Inst::Match)?;
            if let Inst::Look { behind, neg, .. } = c.insts[at] {
                c.insts[at] = Inst::Look { start, behind, neg };
            }
        }
        let first = first_sets(&c.insts);
        let anchored = starts_anchored(&c.insts, 0, 0);
        let dispatch = dispatch_tables(&c.insts, &first);
        Ok(Prog {
            insts: c.insts,
            first,
            dispatch,
            anchored,
            names: p.names,
            ci: c.ci,
        })
    }

    /// Group names by index (index 0, the whole match, is `None`).
    pub(crate) fn names(&self) -> &[Option<String>] {
        &self.names
    }

    /// True if the pattern is case-insensitive.
    #[cfg(test)]
    pub(crate) fn is_ci(&self) -> bool {
        self.ci
    }

    #[inline]
    fn may(&self, pc: u32, h: &[u8], i: usize) -> bool {
        let f = &self.first[pc as usize];
        f.nullable || (i < h.len() && f.set.has(h[i]))
    }

    /// `re.search(hay, pos, endpos)`: on [`Found::Yes`], `sc.caps` holds
    /// the spans (slots `2g`, `2g+1`; [`usize::MAX`] if unset).
    pub(crate) fn search(&self, hay: &str, pos: usize, endpos: usize, sc: &mut Scratch) -> Found {
        let endpos = endpos.min(hay.len());
        if pos > endpos || !hay.is_char_boundary(pos) || !hay.is_char_boundary(endpos) {
            return Found::No;
        }
        let h = &hay.as_bytes()[..endpos];
        let slots = 2 * self.names.len();
        sc.caps.clear();
        sc.caps.resize(slots, UNSET);
        sc.steps = 0;
        let mut start = pos;
        loop {
            if self.anchored && start > 0 {
                return Found::No;
            }
            if self.may(0, h, start) && (start == h.len() || (h[start] & 0xc0) != 0x80) {
                sc.trail.clear();
                match self.run(h, 0, start, sc, 0) {
                    Res::Yes(e) => {
                        sc.caps[0] = start;
                        sc.caps[1] = e;
                        return Found::Yes;
                    }
                    Res::Bail => return Found::Bail,
                    Res::No => {
                        for c in sc.caps.iter_mut() {
                            *c = UNSET;
                        }
                    }
                }
            }
            if start >= h.len() {
                return Found::No;
            }
            start += 1;
        }
    }

    fn undo(sc: &mut Scratch, mark: usize) {
        while sc.trail.len() > mark {
            if let Some((slot, old)) = sc.trail.pop() {
                sc.caps[usize::from(slot)] = old;
            }
        }
    }

    /// Runs from `pc` at `i`; pending alternatives live on `sc.stack`
    /// above the entry height and are dropped on return.
    fn run(&self, h: &[u8], pc: u32, i: usize, sc: &mut Scratch, depth: u32) -> Res {
        let base = sc.stack.len();
        let r = self.exec(h, pc, i, sc, depth, base);
        sc.stack.truncate(base);
        r
    }

    fn exec(
        &self,
        h: &[u8],
        mut pc: u32,
        mut i: usize,
        sc: &mut Scratch,
        depth: u32,
        base: usize,
    ) -> Res {
        // backtrack: resume the newest pending alternative, or fail
        macro_rules! fail {
            () => {{
                if sc.stack.len() > base {
                    if let Some((p, j, mark)) = sc.stack.pop() {
                        Self::undo(sc, mark);
                        pc = p;
                        i = j;
                        continue;
                    }
                }
                return Res::No;
            }};
        }
        loop {
            match self.insts[pc as usize] {
                Inst::Byte(b) => {
                    if i < h.len() && h[i] == b {
                        i += 1;
                        pc += 1;
                    } else {
                        fail!();
                    }
                }
                Inst::CiNonAscii => {
                    if i < h.len() && h[i] >= 0x80 {
                        return Res::Bail;
                    }
                    fail!();
                }
                Inst::Class(ref s, uni) => {
                    if i >= h.len() {
                        fail!();
                    }
                    let b = h[i];
                    if b < 0x80 {
                        if s.has(b) {
                            i += 1;
                            pc += 1;
                        } else {
                            fail!();
                        }
                    } else {
                        match uni {
                            Uni::None => fail!(),
                            Uni::Bail => return Res::Bail,
                            Uni::All => {
                                i += 1;
                                while i < h.len() && (h[i] & 0xc0) == 0x80 {
                                    i += 1;
                                }
                                pc += 1;
                            }
                        }
                    }
                }
                Inst::Jmp(x) => pc = x,
                Inst::Split(a, b) => {
                    // every loop passes a split: counting here bounds the work
                    sc.steps += 1;
                    if sc.steps > MAX_STEPS {
                        return Res::Bail;
                    }
                    if i < h.len() {
                        if let Some(t) = &self.dispatch[pc as usize] {
                            let to = t[usize::from(h[i])];
                            if to != pc {
                                if to == NO_PC {
                                    fail!();
                                }
                                pc = to;
                                continue;
                            }
                        }
                    }
                    let ma = self.may(a, h, i);
                    let mb = self.may(b, h, i);
                    match (ma, mb) {
                        (true, true) => {
                            if sc.stack.len() - base >= MAX_PENDING {
                                return Res::Bail;
                            }
                            sc.stack.push((b, i, sc.trail.len()));
                            pc = a;
                        }
                        (true, false) => pc = a,
                        (false, true) => pc = b,
                        (false, false) => fail!(),
                    }
                }
                Inst::Save(s) => {
                    let s = usize::from(s);
                    sc.trail.push((s as u16, sc.caps[s]));
                    sc.caps[s] = i;
                    pc += 1;
                }
                Inst::Assert(a) => {
                    let ok = match a {
                        Assert::Start => i == 0,
                        Assert::End => i == h.len(),
                        Assert::EndPy => i == h.len() || (i + 1 == h.len() && h[i] == b'\n'),
                        Assert::WordB | Assert::NotWordB => {
                            let before = if i > 0 { Some(h[i - 1]) } else { None };
                            let after = h.get(i).copied();
                            if before.is_some_and(|b| b >= 0x80) || after.is_some_and(|b| b >= 0x80)
                            {
                                return Res::Bail;
                            }
                            let w = before.is_some_and(is_word) != after.is_some_and(is_word);
                            w == (a == Assert::WordB)
                        }
                    };
                    if ok {
                        pc += 1;
                    } else {
                        fail!();
                    }
                }
                Inst::Backref(g) => {
                    let g = usize::from(g);
                    let (s, e) = (sc.caps[2 * g], sc.caps[2 * g + 1]);
                    if s == UNSET || e == UNSET {
                        fail!();
                    }
                    let sub = &h[s..e];
                    let Some(here) = h.get(i..i + sub.len()) else {
                        fail!();
                    };
                    let eq = if self.ci {
                        if !sub.is_ascii() || !here.is_ascii() {
                            return Res::Bail;
                        }
                        sub.eq_ignore_ascii_case(here)
                    } else {
                        sub == here
                    };
                    if !eq {
                        fail!();
                    }
                    i += sub.len();
                    pc += 1;
                }
                Inst::Look { start, behind, neg } => {
                    if depth >= MAX_DEPTH {
                        return Res::Bail;
                    }
                    let at = match behind {
                        None => Some(i),
                        Some(w) => {
                            let mut j = i;
                            let mut ok = true;
                            for _ in 0..w {
                                if j == 0 {
                                    ok = false;
                                    break;
                                }
                                j -= 1;
                                while j > 0 && (h[j] & 0xc0) == 0x80 {
                                    j -= 1;
                                }
                            }
                            ok.then_some(j)
                        }
                    };
                    let matched = match at {
                        None => false,
                        Some(j) => {
                            let mark = sc.trail.len();
                            let r = self.run(h, start, j, sc, depth + 1);
                            Self::undo(sc, mark);
                            match r {
                                Res::Yes(e) => behind.is_none() || e == i,
                                Res::No => false,
                                Res::Bail => return Res::Bail,
                            }
                        }
                    };
                    if matched != neg {
                        pc += 1;
                    } else {
                        fail!();
                    }
                }
                Inst::Cond { group, no } => {
                    let g = usize::from(group);
                    if sc.caps[2 * g] != UNSET && sc.caps[2 * g + 1] != UNSET {
                        pc += 1;
                    } else {
                        pc = no;
                    }
                }
                Inst::Match => return Res::Yes(i),
            }
        }
    }
}

const NO_PC: u32 = u32::MAX;

/// Chains of at least this many splits get a dispatch table.
const DISPATCH_MIN: usize = 4;

fn dispatch_tables(insts: &[Inst], first: &[First]) -> Vec<Option<Box<[u32; 256]>>> {
    let may = |pc: u32, b: u8| {
        let f = &first[pc as usize];
        f.nullable || f.set.has(b)
    };
    let chain_len = |mut pc: u32| {
        let mut n = 0;
        while let Some(Inst::Split(_, b)) = insts.get(pc as usize) {
            n += 1;
            pc = *b;
            if n > insts.len() {
                break;
            }
        }
        n
    };
    let mut out: Vec<Option<Box<[u32; 256]>>> = vec![None; insts.len()];
    for (pc, inst) in insts.iter().enumerate() {
        if !matches!(inst, Inst::Split(..)) || chain_len(pc as u32) < DISPATCH_MIN {
            continue;
        }
        let mut t = Box::new([NO_PC; 256]);
        for byte in 0..=255u8 {
            let mut cur = pc as u32;
            let mut hops = 0;
            t[usize::from(byte)] = loop {
                hops += 1;
                match insts[cur as usize] {
                    Inst::Split(a, b) if hops <= insts.len() => {
                        if may(a, byte) {
                            break cur;
                        }
                        cur = b;
                    }
                    Inst::Split(..) => break pc as u32,
                    _ => break if may(cur, byte) { cur } else { NO_PC },
                }
            };
        }
        out[pc] = Some(t);
    }
    out
}

/// Fixed point of the first-byte sets.
fn first_sets(insts: &[Inst]) -> Vec<First> {
    let mut f = vec![First::default(); insts.len() + 1];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..insts.len()).rev() {
            let mut cur = f[pc];
            let next = |k: usize| f[k];
            let (set, nullable) = match insts[pc] {
                Inst::Byte(b) => {
                    let mut s = Set::default();
                    s.add(b);
                    (s, false)
                }
                Inst::CiNonAscii => (Set::NON_ASCII, false),
                Inst::Class(s, u) => {
                    let mut s = s;
                    if u != Uni::None {
                        s.union(&Set::NON_ASCII);
                    }
                    (s, false)
                }
                Inst::Split(a, b) => {
                    let (x, y) = (next(a as usize), next(b as usize));
                    let mut s = x.set;
                    s.union(&y.set);
                    (s, x.nullable || y.nullable)
                }
                Inst::Jmp(x) => (next(x as usize).set, next(x as usize).nullable),
                Inst::Save(_) | Inst::Assert(_) | Inst::Look { .. } => {
                    (next(pc + 1).set, next(pc + 1).nullable)
                }
                Inst::Backref(_) => (Set::ALL, next(pc + 1).nullable),
                Inst::Cond { no, .. } => {
                    let (x, y) = (next(pc + 1), next(no as usize));
                    let mut s = x.set;
                    s.union(&y.set);
                    (s, x.nullable || y.nullable)
                }
                Inst::Match => (Set::default(), true),
            };
            let c1 = cur.set.union(&set);
            let c2 = nullable && !cur.nullable;
            if c2 {
                cur.nullable = true;
            }
            if c1 || c2 {
                f[pc] = cur;
                changed = true;
            }
        }
    }
    f.truncate(insts.len());
    f
}

/// True if every path from `pc` meets `^`/`\A` before consuming anything.
fn starts_anchored(insts: &[Inst], pc: usize, depth: u32) -> bool {
    if depth > 64 {
        return false;
    }
    match insts.get(pc) {
        Some(Inst::Assert(Assert::Start)) => true,
        Some(Inst::Save(_)) | Some(Inst::Look { .. }) => starts_anchored(insts, pc + 1, depth + 1),
        Some(Inst::Jmp(x)) => starts_anchored(insts, *x as usize, depth + 1),
        Some(Inst::Split(a, b)) => {
            starts_anchored(insts, *a as usize, depth + 1)
                && starts_anchored(insts, *b as usize, depth + 1)
        }
        _ => false,
    }
}
