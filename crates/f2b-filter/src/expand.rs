//! Linear-time form of patterns with conditionals and tempered tokens.
//!
//! fail2ban's sshd `^Failed ...` failregex uses Python conditionals
//! `(?(g)A|B)` and the tempered token `(?:(?! from ).)*?`; both force the
//! backtracking engine (~7 us per line). This module turns such a pattern
//! (the dialect layer's *exact* translation) into a linear one:
//!
//! * **Conditionals** are removed by splitting the element that decides the
//!   group: `P (?P<g>X)? M (?(g)A|B) R` becomes `P (?:(X) M' A | M'' B) R'`
//!   where the rest of the sequence is copied once per variant with the
//!   conditional resolved. Variants keep backtracking priority (greedy `?`:
//!   with-group first; alternation: branch order), so the first path of the
//!   new pattern is the first path of the old one. Copies of a capture group
//!   all map back to the original group number.
//! * **Tempered tokens** `(?:(?!LIT).)` repeated by `*`, `*?`, `+`, `+?` are
//!   replaced by a capture of `(?:.)` with the same quantifier. The result is
//!   a superset pattern; its first path is the exact first path if, in the
//!   captured span, `LIT` starts at no position (each iteration consumes one
//!   character and checks `LIT` there). [`Expanded::verify`] checks that; a
//!   failing check means "ask the backtracking engine".
//!
//! Anything else that needs backtracking (other look-arounds, back
//! references, atomic groups, conditionals on groups inside repetitions or
//! defined after the conditional) makes [`expand`] return `None`.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Plain(String),
    Capture(usize),
    Look,
    Opaque,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Atom(String),
    /// A back reference (never linear).
    Backref,
    Group {
        kind: Kind,
        open: String,
        alts: Vec<Vec<Node>>,
    },
    Cond {
        g: usize,
        yes: Vec<Node>,
        no: Vec<Node>,
    },
    Repeat {
        node: Box<Node>,
        q: String,
    },
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    ncap: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn alts(&mut self) -> Option<Vec<Vec<Node>>> {
        let mut alts = vec![Vec::new()];
        loop {
            match self.peek() {
                None => return Some(alts),
                Some(')') => return Some(alts),
                Some('|') => {
                    self.pos += 1;
                    alts.push(Vec::new());
                }
                Some(_) => {
                    let atom = self.atom()?;
                    let node = self.quantified(atom)?;
                    alts.last_mut()?.push(node);
                }
            }
        }
    }

    fn quantified(&mut self, mut node: Node) -> Option<Node> {
        loop {
            let start = self.pos;
            match self.peek() {
                Some('*' | '+' | '?') => {
                    self.pos += 1;
                }
                Some('{') => {
                    let end = self.s[self.pos..].find('}')?;
                    self.pos += end + 1;
                }
                _ => return Some(node),
            }
            if self.peek() == Some('?') {
                self.pos += 1;
            }
            node = Node::Repeat {
                node: Box::new(node),
                q: self.s[start..self.pos].to_string(),
            };
        }
    }

    fn atom(&mut self) -> Option<Node> {
        let start = self.pos;
        match self.bump()? {
            '\\' => {
                let c = self.bump()?;
                if c.is_ascii_digit() {
                    return Some(Node::Backref);
                }
                if matches!(c, 'x' | 'p' | 'P' | 'b' | 'B') && self.peek() == Some('{') {
                    let end = self.s[self.pos..].find('}')?;
                    self.pos += end + 1;
                }
                Some(Node::Atom(self.s[start..self.pos].to_string()))
            }
            '[' => {
                let mut depth = 1;
                while depth > 0 {
                    match self.bump()? {
                        '\\' => {
                            let c = self.bump()?;
                            if c == 'x' && self.peek() == Some('{') {
                                let end = self.s[self.pos..].find('}')?;
                                self.pos += end + 1;
                            }
                        }
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        _ => {}
                    }
                }
                Some(Node::Atom(self.s[start..self.pos].to_string()))
            }
            '(' => self.group(start),
            ')' | '|' => None,
            _ => Some(Node::Atom(self.s[start..self.pos].to_string())),
        }
    }

    fn group(&mut self, start: usize) -> Option<Node> {
        let kind;
        if self.eat("?P<") {
            let end = self.s[self.pos..].find('>')?;
            self.pos += end + 1;
            self.ncap += 1;
            kind = Kind::Capture(self.ncap);
        } else if self.eat("?(") {
            let end = self.s[self.pos..].find(')')?;
            let g: usize = self.s[self.pos..self.pos + end].parse().ok()?;
            self.pos += end + 1;
            let mut alts = self.alts()?;
            if !self.eat(")") || alts.len() > 2 || alts.is_empty() {
                return None;
            }
            let no = if alts.len() == 2 {
                alts.pop()?
            } else {
                Vec::new()
            };
            let yes = alts.pop()?;
            return Some(Node::Cond { g, yes, no });
        } else if self.eat("?=") || self.eat("?!") || self.eat("?<=") || self.eat("?<!") {
            kind = Kind::Look;
        } else if self.eat("?>") {
            kind = Kind::Opaque;
        } else if self.eat("?") {
            // flags: `(?flags:` group or standalone `(?flags)`
            let end = self.s[self.pos..].find([':', ')'])?;
            let close = self.s[self.pos + end..].starts_with(')');
            self.pos += end + 1;
            if close {
                return Some(Node::Atom(self.s[start..self.pos].to_string()));
            }
            kind = Kind::Plain(self.s[start..self.pos].to_string());
        } else {
            self.ncap += 1;
            kind = Kind::Capture(self.ncap);
        }
        let open = self.s[start..self.pos].to_string();
        let alts = self.alts()?;
        if !self.eat(")") {
            return None;
        }
        Some(Node::Group { kind, open, alts })
    }
}

fn parse(s: &str) -> Option<(Vec<Vec<Node>>, usize)> {
    let mut p = Parser { s, pos: 0, ncap: 0 };
    let alts = p.alts()?;
    if p.pos != s.len() {
        return None;
    }
    Some((alts, p.ncap))
}

/// Capture groups defined in a node.
fn defs(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Atom(_) | Node::Backref => {}
        Node::Group { kind, alts, .. } => {
            if let Kind::Capture(i) = kind {
                out.push(*i);
            }
            for a in alts {
                for n in a {
                    defs(n, out);
                }
            }
        }
        Node::Cond { yes, no, .. } => {
            for n in yes.iter().chain(no) {
                defs(n, out);
            }
        }
        Node::Repeat { node, .. } => defs(node, out),
    }
}

/// True if a conditional on one of `gs` occurs in `n`.
fn refers(n: &Node, gs: &[usize]) -> Option<usize> {
    match n {
        Node::Atom(_) | Node::Backref => None,
        Node::Group { alts, .. } => alts.iter().flatten().find_map(|n| refers(n, gs)),
        Node::Cond { g, yes, no } => {
            if gs.contains(g) {
                Some(*g)
            } else {
                yes.iter().chain(no).find_map(|n| refers(n, gs))
            }
        }
        Node::Repeat { node, .. } => refers(node, gs),
    }
}

fn contains(n: &Node, g: usize) -> bool {
    let mut d = Vec::new();
    defs(n, &mut d);
    d.contains(&g)
}

/// The variants of `n`, in backtracking priority order, each with whether
/// group `g` participated.
fn split(n: &Node, g: usize) -> Option<Vec<(Node, bool)>> {
    if !contains(n, g) {
        return Some(vec![(n.clone(), false)]);
    }
    match n {
        Node::Group {
            kind: Kind::Capture(i),
            ..
        } if *i == g => Some(vec![(n.clone(), true)]),
        Node::Group {
            kind: kind @ (Kind::Plain(_) | Kind::Capture(_)),
            open,
            alts,
        } => {
            let mut out = Vec::new();
            for a in alts {
                for (seq, b) in split_seq(a, g)? {
                    out.push((
                        Node::Group {
                            kind: kind.clone(),
                            open: open.clone(),
                            alts: vec![seq],
                        },
                        b,
                    ));
                }
            }
            Some(out)
        }
        Node::Repeat { node, q } if q == "?" || q == "??" => {
            let mut v = split(node, g)?;
            let empty = (
                Node::Group {
                    kind: Kind::Plain("(?:".into()),
                    open: "(?:".into(),
                    alts: vec![Vec::new()],
                },
                false,
            );
            if q == "?" {
                v.push(empty);
            } else {
                v.insert(0, empty);
            }
            Some(v)
        }
        _ => None,
    }
}

fn split_seq(seq: &[Node], g: usize) -> Option<Vec<(Vec<Node>, bool)>> {
    let Some(j) = seq.iter().position(|n| contains(n, g)) else {
        return Some(vec![(seq.to_vec(), false)]);
    };
    Some(
        split(&seq[j], g)?
            .into_iter()
            .map(|(v, b)| {
                let mut s = seq[..j].to_vec();
                s.push(v);
                s.extend_from_slice(&seq[j + 1..]);
                (s, b)
            })
            .collect(),
    )
}

/// Replaces conditionals on known groups by their chosen branch.
fn substitute(n: &Node, known: &HashMap<usize, bool>) -> Node {
    match n {
        Node::Cond { g, yes, no } => match known.get(g) {
            Some(&b) => Node::Group {
                kind: Kind::Plain("(?:".into()),
                open: "(?:".into(),
                alts: vec![if b { yes } else { no }
                    .iter()
                    .map(|n| substitute(n, known))
                    .collect()],
            },
            None => Node::Cond {
                g: *g,
                yes: yes.iter().map(|n| substitute(n, known)).collect(),
                no: no.iter().map(|n| substitute(n, known)).collect(),
            },
        },
        Node::Group { kind, open, alts } => Node::Group {
            kind: kind.clone(),
            open: open.clone(),
            alts: alts
                .iter()
                .map(|a| a.iter().map(|n| substitute(n, known)).collect())
                .collect(),
        },
        Node::Repeat { node, q } => Node::Repeat {
            node: Box::new(substitute(node, known)),
            q: q.clone(),
        },
        other => other.clone(),
    }
}

const MAX_NODES: usize = 20_000;

fn size(n: &Node) -> usize {
    match n {
        Node::Atom(_) | Node::Backref => 1,
        Node::Group { alts, .. } => 1 + alts.iter().flatten().map(size).sum::<usize>(),
        Node::Cond { yes, no, .. } => 1 + yes.iter().chain(no).map(size).sum::<usize>(),
        Node::Repeat { node, .. } => 1 + size(node),
    }
}

/// Removes the conditionals of a sequence whose group is decided by one of
/// its elements (recursing into groups first).
fn resolve_seq(seq: &[Node]) -> Option<Vec<Node>> {
    let seq: Vec<Node> = seq.iter().map(resolve_node).collect::<Option<_>>()?;
    for i in 0..seq.len() {
        let mut d = Vec::new();
        defs(&seq[i], &mut d);
        if d.is_empty() {
            continue;
        }
        let Some(g) = seq[i + 1..].iter().find_map(|n| refers(n, &d)) else {
            continue;
        };
        let mut alts = Vec::new();
        for (v, b) in split(&seq[i], g)? {
            let known = HashMap::from([(g, b)]);
            let mut branch = vec![v];
            branch.extend(seq[i + 1..].iter().map(|n| substitute(n, &known)));
            alts.push(resolve_seq(&branch)?);
        }
        let mut out = seq[..i].to_vec();
        out.push(Node::Group {
            kind: Kind::Plain("(?:".into()),
            open: "(?:".into(),
            alts,
        });
        if out.iter().map(size).sum::<usize>() > MAX_NODES {
            return None;
        }
        return Some(out);
    }
    Some(seq)
}

fn resolve_node(n: &Node) -> Option<Node> {
    Some(match n {
        Node::Group { kind, open, alts } => Node::Group {
            kind: kind.clone(),
            open: open.clone(),
            alts: alts.iter().map(|a| resolve_seq(a)).collect::<Option<_>>()?,
        },
        Node::Repeat { node, q } => Node::Repeat {
            node: Box::new(resolve_node(node)?),
            q: q.clone(),
        },
        Node::Cond { g, yes, no } => Node::Cond {
            g: *g,
            yes: resolve_seq(yes)?,
            no: resolve_seq(no)?,
        },
        other => other.clone(),
    })
}

/// What an emitted capture group stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A copy of an original group.
    Orig(usize),
    /// The span of the tempered token with this index in `tempered`.
    Temper(usize),
}

/// If `n` is `(?:(?!LIT).)` under `* *? + +?`, the literal.
fn tempered(n: &Node) -> Option<(String, &str)> {
    let Node::Repeat { node, q } = n else {
        return None;
    };
    if !matches!(q.as_str(), "*" | "*?" | "+" | "+?") {
        return None;
    }
    let Node::Group {
        kind: Kind::Plain(_),
        open,
        alts,
    } = &**node
    else {
        return None;
    };
    if open != "(?:" || alts.len() != 1 || alts[0].len() != 2 {
        return None;
    }
    let Node::Group {
        kind: Kind::Look,
        open: look,
        alts: la,
    } = &alts[0][0]
    else {
        return None;
    };
    if look != "(?!" || la.len() != 1 || alts[0][1] != Node::Atom(".".into()) {
        return None;
    }
    let mut lit = String::new();
    for a in &la[0] {
        let Node::Atom(t) = a else { return None };
        let mut cs = t.chars();
        match (cs.next(), cs.next(), cs.next()) {
            (Some('\\'), Some(c), None) if !c.is_ascii_alphanumeric() => lit.push(c),
            (Some(c), None, None) if !"^$.".contains(c) => lit.push(c),
            _ => return None,
        }
    }
    (!lit.is_empty()).then_some((lit, q.as_str()))
}

struct Emitter {
    out: String,
    slots: Vec<Slot>,
    tempered: Vec<String>,
}

impl Emitter {
    fn seq(&mut self, seq: &[Node]) -> Option<()> {
        for n in seq {
            self.node(n)?;
        }
        Some(())
    }
    fn node(&mut self, n: &Node) -> Option<()> {
        if let Some((lit, q)) = tempered(n) {
            self.slots.push(Slot::Temper(self.tempered.len()));
            self.tempered.push(lit);
            self.out.push_str("((?:.)");
            self.out.push_str(q);
            self.out.push(')');
            return Some(());
        }
        match n {
            Node::Atom(t) => self.out.push_str(t),
            Node::Backref | Node::Cond { .. } => return None,
            Node::Group { kind, open, alts } => {
                match kind {
                    Kind::Look | Kind::Opaque => return None,
                    Kind::Capture(i) => {
                        self.slots.push(Slot::Orig(*i));
                        self.out.push('(');
                    }
                    Kind::Plain(_) => self.out.push_str(open),
                }
                for (k, a) in alts.iter().enumerate() {
                    if k > 0 {
                        self.out.push('|');
                    }
                    self.seq(a)?;
                }
                self.out.push(')');
            }
            Node::Repeat { node, q } => {
                self.node(node)?;
                self.out.push_str(q);
            }
        }
        Some(())
    }
}

/// A linear pattern equivalent to (or, with tempered tokens, a verifiable
/// superset of) a backtracking pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The linear pattern (capture groups unnamed).
    pub pattern: String,
    /// For each capture group of `pattern` (1-based: `slots[i - 1]`), what it is.
    slots: Vec<Slot>,
    /// The literal of each tempered token.
    tempered: Vec<String>,
    /// A searcher for each of them (built once, not per verification).
    finders: Finders,
    /// Number of groups of the original pattern (without group 0).
    groups: usize,
}

/// The searchers of `Expanded::tempered`'s literals: made from them, so
/// they compare equal when the literals do.
#[derive(Debug, Clone)]
struct Finders(Vec<memchr::memmem::Finder<'static>>);

impl PartialEq for Finders {
    fn eq(&self, _: &Finders) -> bool {
        true
    }
}
impl Eq for Finders {}

impl Expanded {
    /// True if the pattern is exact (no tempered token to verify).
    pub fn is_exact(&self) -> bool {
        self.tempered.is_empty()
    }

    /// Maps the spans of a match of `pattern` to the original group
    /// numbering; `None` if a tempered token's check fails (the backtracking
    /// engine must decide).
    pub fn verify(
        &self,
        hay: &str,
        spans: &[Option<(usize, usize)>],
    ) -> Option<Vec<Option<(usize, usize)>>> {
        let mut out = Vec::new();
        self.verify_into(hay, spans, &mut out).then_some(out)
    }

    /// [`Expanded::verify`] into `out` (its allocation reused): false if a
    /// tempered token's check fails (`out` is then unspecified).
    pub fn verify_into(
        &self,
        hay: &str,
        spans: &[Option<(usize, usize)>],
        out: &mut Vec<Option<(usize, usize)>>,
    ) -> bool {
        self.verify_with(hay, |i| spans.get(i).copied().flatten(), out)
    }

    /// [`Expanded::verify_into`] with the expanded match's spans read by
    /// `span(i)` (group `i`, 0: the whole match): straight from the capture
    /// engine's own memory, not copied first.
    #[inline]
    pub fn verify_with(
        &self,
        hay: &str,
        span: impl Fn(usize) -> Option<(usize, usize)>,
        out: &mut Vec<Option<(usize, usize)>>,
    ) -> bool {
        out.clear();
        out.resize(self.groups + 1, None);
        out[0] = span(0);
        for (k, slot) in self.slots.iter().enumerate() {
            let Some((a, b)) = span(k + 1) else {
                continue;
            };
            match *slot {
                Slot::Orig(i) => {
                    if let Some(o) = out.get_mut(i) {
                        if o.is_none() {
                            *o = Some((a, b));
                        }
                    }
                }
                Slot::Temper(t) => {
                    let lit = &self.tempered[t];
                    // no iteration (a character start in [a, b)) may be
                    // followed by the literal
                    let end = (b + lit.len()).min(hay.len());
                    let Some(window) = hay.as_bytes().get(a..end) else {
                        return false;
                    };
                    if let Some(p) = self.finders.0[t].find(window) {
                        if a + p < b {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }
}

/// Expands the conditionals (and marks the tempered tokens) of an exact
/// translation with `groups` capture groups; `None` if it cannot be made
/// linear this way or if it has neither.
pub fn expand(exact: &str, groups: usize) -> Option<Expanded> {
    let (alts, ncap) = parse(exact)?;
    if ncap != groups {
        return None;
    }
    let alts: Vec<Vec<Node>> = alts.iter().map(|a| resolve_seq(a)).collect::<Option<_>>()?;
    let mut e = Emitter {
        out: String::with_capacity(exact.len() * 2),
        slots: Vec::new(),
        tempered: Vec::new(),
    };
    for (k, a) in alts.iter().enumerate() {
        if k > 0 {
            e.out.push('|');
        }
        e.seq(a)?;
    }
    let finders = e
        .tempered
        .iter()
        .map(|l| memchr::memmem::Finder::new(l.as_bytes()).into_owned())
        .collect();
    Some(Expanded {
        pattern: e.out,
        slots: e.slots,
        tempered: e.tempered,
        finders: Finders(finders),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_group_conditional_is_split() {
        let e = expand(r"^(?P<q>')?x(?(1)'|!)$", 1).unwrap();
        assert_eq!(e.pattern, r"^(?:(')x(?:')$|(?:)x(?:!)$)");
        assert!(e.is_exact());
        let e = expand(r"^(?P<q>')??x(?(1)'|!)$", 1).unwrap();
        assert_eq!(e.pattern, r"^(?:(?:)x(?:!)$|(')x(?:')$)");
    }

    #[test]
    fn alternation_conditional_keeps_branch_order() {
        let e = expand(r"(?P<u>(?P<a>\S+)|[^:]+) end(?(2): |x)", 2).unwrap();
        assert_eq!(e.pattern, r"(?:((\S+)) end(?:: )|([^:]+) end(?:x))");
        let sp = [Some((0, 9)), None, None, Some((0, 3))];
        assert_eq!(
            e.verify("abc endx", &sp),
            Some(vec![Some((0, 9)), Some((0, 3)), None])
        );
    }

    #[test]
    fn tempered_tokens_are_verified() {
        let e = expand(r"a(?:(?! from ).)*?b", 0).unwrap();
        assert_eq!(e.pattern, r"a((?:.)*?)b");
        assert!(!e.is_exact());
        let hay = "ax from yb";
        assert!(e.verify(hay, &[Some((0, 10)), Some((1, 9))]).is_none());
        assert!(e.verify("axyb", &[Some((0, 4)), Some((1, 3))]).is_some());
        // the look-ahead sees past the span
        assert!(e
            .verify("ax from y", &[Some((0, 3)), Some((1, 3))])
            .is_none());
        assert!(e
            .verify("ax from y", &[Some((0, 2)), Some((1, 2))])
            .is_some());
    }

    #[test]
    fn unsupported_shapes_are_refused() {
        for (p, g) in [
            (r"(a)\1", 1),
            (r"(?=a)a", 0),
            (r"(?:(?P<g>a)b)*(?(1)c|d)", 1),
            (r"(?(1)c|d)(?P<g>a)", 1),
            (r"(?>a)", 0),
            (r"(?:(?!a|b).)*", 0),
        ] {
            assert!(expand(p, g).is_none(), "{p}");
        }
    }
}

#[cfg(test)]
mod agree {
    use crate::dialect::{translate, PyRegex};
    use proptest::prelude::*;

    /// sshd's `^Failed` failregex shape (conditionals on an optional group
    /// and on a group in an alternation branch, tempered tokens) and smaller
    /// conditional patterns.
    const PATS: [&str; 4] = [
        r"^Failed (?:(?P<nofail>publickey)|\S+) for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\d+\.\d+\.\d+\.\d+|[0-9a-f:]+)(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
        r"(?P<a>x)?y(?(a)z|:)",
        r"^(?P<q>')?(?P<v>[^' ]+)(?(q)')(?: (?P<r>r)| s)?(?(r) end|$)",
        r"(?:(?P<a>a)|(?P<b>b)|c)+?(?:(?!ab).)*d",
    ];
    const TOKENS: [&str; 16] = [
        "Failed ",
        "password ",
        "publickey ",
        "for ",
        "invalid user ",
        "root",
        " from ",
        "1.2.3.4",
        "2001:db8::1",
        ": ",
        " port 22",
        " ssh2",
        "x",
        "y",
        "z",
        "'",
    ];

    fn fancy_spans(p: &str, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let t = translate(p).unwrap();
        let re = fancy_regex::Regex::new(&t.exact).unwrap();
        let c = re.captures(hay).unwrap()?;
        Some(
            (0..c.len())
                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                .collect(),
        )
    }

    #[test]
    fn sshd_shape_is_expanded() {
        for p in PATS {
            let t = translate(p).unwrap();
            assert!(t.fancy);
            let groups = t.names.len() - 1;
            assert!(super::expand(&t.exact, groups).is_some(), "{p}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn expanded_search_agrees_with_backtracking(
            toks in proptest::collection::vec(0..TOKENS.len(), 0..14),
            nl in any::<bool>(),
        ) {
            let mut hay: String = toks.iter().map(|&i| TOKENS[i]).collect();
            if nl {
                hay.push('\n');
            }
            for p in PATS {
                let r = PyRegex::new(p, false).unwrap();
                let got = r.search(&hay).map(|s| s.0);
                prop_assert_eq!(got, fancy_spans(p, &hay), "{} on {:?}", p, hay);
            }
        }
    }

    #[test]
    fn typical_lines_agree() {
        for hay in [
            "Failed password for root from 1.2.3.4 port 22 ssh2\n",
            "Failed password for invalid user bob from 2001:db8::1 port 22 ssh2\n",
            "Failed publickey for invalid user a from b from 1.2.3.4 port 22 ssh2: RSA x\n",
            "Failed password for root from 1.2.3.4 port 22 ssh2: from x\n",
            "Failed none for invalid user  from 1.2.3.4\n",
        ] {
            let r = PyRegex::new(PATS[0], false).unwrap();
            assert_eq!(
                r.search(hay).map(|s| s.0),
                fancy_spans(PATS[0], hay),
                "{hay:?}"
            );
        }
    }
}
