//! A small, safe evaluator for the Python expressions fail2ban accepts in
//! `bantime.formula` and `bantime.factor`.
//!
//! fail2ban `eval()`s these strings with full Python; f2b parses a subset
//! once at configuration time and evaluates the tree per ban.  Supported:
//! int/float literals (`10`, `0x1f`, `1.5`, `2e3`), `True`/`False`,
//! `ban.Time`, `ban.Count`, `banFactor` (formula only), arithmetic
//! `+ - * / // % **`, bit operators `<< >> & | ^ ~`, comparisons (chained
//! like Python), `and`/`or`/`not`, the conditional `a if c else b`,
//! parentheses, `min`, `max`, `abs`, `int`, `float`, `round`, `pow`, and
//! `math.{exp,log,log10,log2,sqrt,pow,floor,ceil,fabs,trunc,pi,e,inf}`.
//! Anything else (strings, other names, attribute access, lambdas, ...) is a
//! configuration error reported when the option is set, never executed.
//!
//! Numbers follow Python: `int` stays `int` (64-bit here; an overflow is
//! promoted to `float` instead of becoming a big integer), `/` gives a
//! `float`, `//` and `%` floor, `round()` rounds half to even.

use crate::num::{py_round, Num};

/// A parse (configuration) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expression {expr:?} at offset {offset}: {message}")]
pub struct ExprError {
    /// The expression text.
    pub expr: String,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A runtime error (what Python would raise while evaluating).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct EvalError {
    /// Python exception class name (`ZeroDivisionError`, `ValueError`, ...).
    pub class: &'static str,
    /// Message.
    pub message: String,
}

fn eval_err(class: &'static str, message: impl Into<String>) -> EvalError {
    EvalError {
        class,
        message: message.into(),
    }
}

/// Which names an expression may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `bantime.formula`: `ban.Time`, `ban.Count`, `banFactor` available.
    Formula,
    /// `bantime.factor`: constants and functions only.
    Constant,
}

/// Variables available when evaluating a formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vars {
    /// `ban.Time`
    pub time: Num,
    /// `ban.Count`
    pub count: i64,
    /// `banFactor`
    pub factor: Num,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Val {
    fn truthy(self) -> bool {
        match self {
            Val::Int(i) => i != 0,
            Val::Float(f) => f != 0.0,
            Val::Bool(b) => b,
        }
    }
    fn f(self) -> f64 {
        match self {
            Val::Int(i) => i as f64,
            Val::Float(f) => f,
            Val::Bool(b) => f64::from(u8::from(b)),
        }
    }
    /// Int view (bools are ints); None for floats.
    fn i(self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(i),
            Val::Bool(b) => Some(i64::from(b)),
            Val::Float(_) => None,
        }
    }
    fn from_num(n: Num) -> Val {
        match n {
            Num::Int(i) => Val::Int(i),
            Num::Float(f) => Val::Float(f),
        }
    }
    fn to_num(self) -> Num {
        match self {
            Val::Float(f) => Num::Float(f),
            other => Num::Int(other.i().unwrap_or(0)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Time,
    Count,
    Factor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Min,
    Max,
    Abs,
    Int,
    Float,
    Round,
    Pow,
    Exp,
    Log,
    Log10,
    Log2,
    Sqrt,
    MPow,
    Floor,
    Ceil,
    Fabs,
    Trunc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnOp {
    Neg,
    Pos,
    Invert,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Const(Val),
    Var(Var),
    Unary(UnOp, Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Cmp(Box<Node>, Vec<(CmpOp, Node)>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    IfElse(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    src: String,
    root: Node,
}

impl Expr {
    /// Parses `src` for the given scope.
    pub fn compile(src: &str, scope: Scope) -> Result<Expr, ExprError> {
        let toks = lex(src)?;
        let mut p = Parser {
            src,
            toks,
            pos: 0,
            scope,
        };
        let root = p.expr()?;
        if p.pos < p.toks.len() {
            return Err(p.err("unexpected text after expression"));
        }
        Ok(Expr {
            src: src.to_owned(),
            root,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Evaluates with the given variables (ignored for constant scope).
    pub fn eval(&self, vars: &Vars) -> Result<Num, EvalError> {
        eval(&self.root, vars).map(Val::to_num)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Val),
    Name(String),
    Op(&'static str),
}

const OPS: [&str; 25] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "&", "|", "^", "~",
    "<", ">", "(", ")", ",", ".", "[", "]",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, m: &str| ExprError {
        expr: src.to_owned(),
        offset,
        message: m.to_owned(),
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
                i += 2;
                while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
                    i += 1;
                }
                let t: String = src[start + 2..i].chars().filter(|c| *c != '_').collect();
                let v = i64::from_str_radix(&t, 16).map_err(|_| err(start, "bad hex literal"))?;
                out.push((Tok::Num(Val::Int(v)), start));
                continue;
            }
            let mut is_float = false;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' {
                is_float = true;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let save = i;
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                if i < b.len() && b[i].is_ascii_digit() {
                    is_float = true;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(err(i, "invalid number literal"));
            }
            let t: String = src[start..i].chars().filter(|c| *c != '_').collect();
            let v = if is_float {
                Val::Float(t.parse().map_err(|_| err(start, "bad float literal"))?)
            } else if t.len() > 1 && t.starts_with('0') && t.bytes().any(|d| d != b'0') {
                return Err(err(
                    start,
                    "leading zeros in decimal integer literals are not permitted",
                ));
            } else {
                match t.parse::<i64>() {
                    Ok(v) => Val::Int(v),
                    Err(_) => Val::Float(t.parse().map_err(|_| err(start, "bad literal"))?),
                }
            };
            out.push((Tok::Num(v), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_owned()), start));
            continue;
        }
        if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            i += op.len();
            out.push((Tok::Op(op), start));
            continue;
        }
        return Err(err(
            i,
            "unsupported character (only arithmetic expressions are allowed)",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    scope: Scope,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> ExprError {
        ExprError {
            expr: self.src.to_owned(),
            offset: self.toks.get(self.pos).map_or(self.src.len(), |t| t.1),
            message: m.to_owned(),
        }
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == kw)
    }
    fn expect_op(&mut self, op: &str) -> Result<(), ExprError> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {op:?}")))
        }
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        let body = self.or_test()?;
        if self.is_kw("if") {
            self.pos += 1;
            let cond = self.or_test()?;
            if !self.is_kw("else") {
                return Err(self.err("expected 'else'"));
            }
            self.pos += 1;
            let other = self.expr()?;
            return Ok(Node::IfElse(
                Box::new(cond),
                Box::new(body),
                Box::new(other),
            ));
        }
        Ok(body)
    }
    fn or_test(&mut self) -> Result<Node, ExprError> {
        let mut n = self.and_test()?;
        while self.is_kw("or") {
            self.pos += 1;
            n = Node::Or(Box::new(n), Box::new(self.and_test()?));
        }
        Ok(n)
    }
    fn and_test(&mut self) -> Result<Node, ExprError> {
        let mut n = self.not_test()?;
        while self.is_kw("and") {
            self.pos += 1;
            n = Node::And(Box::new(n), Box::new(self.not_test()?));
        }
        Ok(n)
    }
    fn not_test(&mut self) -> Result<Node, ExprError> {
        if self.is_kw("not") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not_test()?)));
        }
        self.comparison()
    }
    fn comparison(&mut self) -> Result<Node, ExprError> {
        let first = self.bitor()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                Some(Tok::Op("==")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Name(n)) if n == "in" || n == "is" => {
                    return Err(self.err("'in'/'is' are not supported"))
                }
                _ => break,
            };
            self.pos += 1;
            rest.push((op, self.bitor()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Cmp(Box::new(first), rest)
        })
    }
    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut n = next(self)?;
        'outer: loop {
            for (s, op) in ops {
                if self.is_op(s) {
                    self.pos += 1;
                    let r = next(self)?;
                    n = Node::Bin(*op, Box::new(n), Box::new(r));
                    continue 'outer;
                }
            }
            return Ok(n);
        }
    }
    fn bitor(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("|", BinOp::BitOr)], Self::bitxor)
    }
    fn bitxor(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("^", BinOp::BitXor)], Self::bitand)
    }
    fn bitand(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("&", BinOp::BitAnd)], Self::shift)
    }
    fn shift(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("<<", BinOp::Shl), (">>", BinOp::Shr)], Self::arith)
    }
    fn arith(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }
    fn term(&mut self) -> Result<Node, ExprError> {
        self.binary_level(
            &[
                ("*", BinOp::Mul),
                ("//", BinOp::FloorDiv),
                ("/", BinOp::Div),
                ("%", BinOp::Mod),
            ],
            Self::factor,
        )
    }
    fn factor(&mut self) -> Result<Node, ExprError> {
        let op = match self.peek() {
            Some(Tok::Op("-")) => Some(UnOp::Neg),
            Some(Tok::Op("+")) => Some(UnOp::Pos),
            Some(Tok::Op("~")) => Some(UnOp::Invert),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            return Ok(Node::Unary(op, Box::new(self.factor()?)));
        }
        self.power()
    }
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.primary()?;
        if self.is_op("**") {
            self.pos += 1;
            let exp = self.factor()?;
            return Ok(Node::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn primary(&mut self) -> Result<Node, ExprError> {
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(self.err("unexpected end of expression"));
        };
        match tok {
            Tok::Num(v) => {
                self.pos += 1;
                Ok(Node::Const(v))
            }
            Tok::Op("(") => {
                self.pos += 1;
                let n = self.expr()?;
                self.expect_op(")")?;
                Ok(n)
            }
            Tok::Name(name) => {
                self.pos += 1;
                self.name(&name)
            }
            _ => Err(self.err("unexpected token")),
        }
    }
    fn attr(&mut self) -> Result<String, ExprError> {
        self.expect_op(".")?;
        match self.peek().cloned() {
            Some(Tok::Name(n)) => {
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.err("expected attribute name")),
        }
    }
    fn name(&mut self, name: &str) -> Result<Node, ExprError> {
        let formula = self.scope == Scope::Formula;
        let func = match name {
            "True" => return Ok(Node::Const(Val::Bool(true))),
            "False" => return Ok(Node::Const(Val::Bool(false))),
            "ban" if formula => {
                let a = self.attr()?;
                return match a.as_str() {
                    "Time" => Ok(Node::Var(Var::Time)),
                    "Count" => Ok(Node::Var(Var::Count)),
                    _ => Err(self.err(&format!(
                        "ban has no attribute {a:?} (use ban.Time, ban.Count)"
                    ))),
                };
            }
            "banFactor" if formula => return Ok(Node::Var(Var::Factor)),
            "math" => {
                let a = self.attr()?;
                match a.as_str() {
                    "pi" => return Ok(Node::Const(Val::Float(std::f64::consts::PI))),
                    "e" => return Ok(Node::Const(Val::Float(std::f64::consts::E))),
                    "inf" => return Ok(Node::Const(Val::Float(f64::INFINITY))),
                    "exp" => Func::Exp,
                    "log" => Func::Log,
                    "log10" => Func::Log10,
                    "log2" => Func::Log2,
                    "sqrt" => Func::Sqrt,
                    "pow" => Func::MPow,
                    "floor" => Func::Floor,
                    "ceil" => Func::Ceil,
                    "fabs" => Func::Fabs,
                    "trunc" => Func::Trunc,
                    _ => return Err(self.err(&format!("math.{a} is not supported"))),
                }
            }
            "min" => Func::Min,
            "max" => Func::Max,
            "abs" => Func::Abs,
            "int" => Func::Int,
            "float" => Func::Float,
            "round" => Func::Round,
            "pow" => Func::Pow,
            _ => return Err(self.err(&format!("name {name:?} is not allowed here"))),
        };
        self.expect_op("(")?;
        let mut args = Vec::new();
        if !self.is_op(")") {
            loop {
                args.push(self.expr()?);
                if self.is_op(",") {
                    self.pos += 1;
                    if self.is_op(")") {
                        break;
                    }
                    continue;
                }
                break;
            }
        }
        self.expect_op(")")?;
        let (lo, hi) = match func {
            Func::Min | Func::Max => (2, usize::MAX),
            Func::Log | Func::Round => (1, 2),
            Func::Pow | Func::MPow => (2, 2),
            _ => (1, 1),
        };
        if args.len() < lo || args.len() > hi {
            return Err(self.err(&format!("wrong number of arguments ({})", args.len())));
        }
        Ok(Node::Call(func, args))
    }
}

// ---------------------------------------------------------------- evaluation

fn eval(n: &Node, v: &Vars) -> Result<Val, EvalError> {
    Ok(match n {
        Node::Const(c) => *c,
        Node::Var(Var::Time) => Val::from_num(v.time),
        Node::Var(Var::Count) => Val::Int(v.count),
        Node::Var(Var::Factor) => Val::from_num(v.factor),
        Node::Unary(op, a) => {
            let a = eval(a, v)?;
            match (op, a.i()) {
                (UnOp::Neg, Some(i)) => i.checked_neg().map_or(Val::Float(-(i as f64)), Val::Int),
                (UnOp::Neg, None) => Val::Float(-a.f()),
                (UnOp::Pos, Some(i)) => Val::Int(i),
                (UnOp::Pos, None) => a,
                (UnOp::Invert, Some(i)) => Val::Int(!i),
                (UnOp::Invert, None) => {
                    return Err(eval_err(
                        "TypeError",
                        "bad operand type for unary ~: 'float'",
                    ))
                }
            }
        }
        Node::Bin(op, a, b) => binop(*op, eval(a, v)?, eval(b, v)?)?,
        Node::Cmp(first, rest) => {
            let mut left = eval(first, v)?;
            for (op, rn) in rest {
                let right = eval(rn, v)?;
                let ord = match (left.i(), right.i()) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => left.f().partial_cmp(&right.f()),
                };
                use std::cmp::Ordering::*;
                let ok = match (op, ord) {
                    (CmpOp::Lt, Some(o)) => o == Less,
                    (CmpOp::Le, Some(o)) => o != Greater,
                    (CmpOp::Gt, Some(o)) => o == Greater,
                    (CmpOp::Ge, Some(o)) => o != Less,
                    (CmpOp::Eq, Some(o)) => o == Equal,
                    (CmpOp::Ne, Some(o)) => o != Equal,
                    (CmpOp::Ne, None) => true,
                    (_, None) => false,
                };
                if !ok {
                    return Ok(Val::Bool(false));
                }
                left = right;
            }
            Val::Bool(true)
        }
        Node::And(a, b) => {
            let x = eval(a, v)?;
            if x.truthy() {
                eval(b, v)?
            } else {
                x
            }
        }
        Node::Or(a, b) => {
            let x = eval(a, v)?;
            if x.truthy() {
                x
            } else {
                eval(b, v)?
            }
        }
        Node::Not(a) => Val::Bool(!eval(a, v)?.truthy()),
        Node::IfElse(c, t, e) => {
            if eval(c, v)?.truthy() {
                eval(t, v)?
            } else {
                eval(e, v)?
            }
        }
        Node::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, v))
                .collect::<Result<Vec<_>, _>>()?;
            call(*f, &vals)?
        }
    })
}

fn float_result(x: f64) -> Result<Val, EvalError> {
    if x.is_infinite() {
        Err(eval_err("OverflowError", "math range error"))
    } else if x.is_nan() {
        Err(eval_err("ValueError", "math domain error"))
    } else {
        Ok(Val::Float(x))
    }
}

fn py_fmod(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

/// Python's float floor division (CPython `float_floor_div` via divmod).
fn py_floordiv(vx: f64, wx: f64) -> f64 {
    let m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 && ((wx < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0f64.copysign(vx / wx)
    }
}

fn binop(op: BinOp, a: Val, b: Val) -> Result<Val, EvalError> {
    let ints = a.i().zip(b.i());
    let zero = || eval_err("ZeroDivisionError", "division by zero");
    Ok(match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul => {
            if let Some((x, y)) = ints {
                let r = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    _ => x.checked_mul(y),
                };
                match r {
                    Some(r) => Val::Int(r),
                    None => Val::Float(arith_f(op, x as f64, y as f64)),
                }
            } else {
                Val::Float(arith_f(op, a.f(), b.f()))
            }
        }
        BinOp::Div => {
            if b.f() == 0.0 {
                return Err(zero());
            }
            Val::Float(a.f() / b.f())
        }
        BinOp::FloorDiv => {
            if b.f() == 0.0 {
                return Err(zero());
            }
            match ints {
                Some((x, y)) => x.checked_div_euclid(y).map_or(
                    Val::Float((x as f64 / y as f64).floor()),
                    |_| {
                        let q = x / y;
                        Val::Int(if (x % y != 0) && ((x < 0) != (y < 0)) {
                            q - 1
                        } else {
                            q
                        })
                    },
                ),
                None => Val::Float(py_floordiv(a.f(), b.f())),
            }
        }
        BinOp::Mod => {
            if b.f() == 0.0 {
                return Err(eval_err(
                    "ZeroDivisionError",
                    "integer division or modulo by zero",
                ));
            }
            match ints {
                Some((x, y)) => {
                    let r = x.wrapping_rem(y);
                    Val::Int(if r != 0 && ((r < 0) != (y < 0)) {
                        r + y
                    } else {
                        r
                    })
                }
                None => Val::Float(py_fmod(a.f(), b.f())),
            }
        }
        BinOp::Pow => match ints {
            Some((x, y)) if y >= 0 => match u32::try_from(y).ok().and_then(|e| x.checked_pow(e)) {
                Some(r) => Val::Int(r),
                None => float_result((x as f64).powf(y as f64))?,
            },
            _ => {
                if a.f() == 0.0 && b.f() < 0.0 {
                    return Err(eval_err(
                        "ZeroDivisionError",
                        "0.0 cannot be raised to a negative power",
                    ));
                }
                float_result(a.f().powf(b.f()))?
            }
        },
        BinOp::Shl | BinOp::Shr | BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
            let Some((x, y)) = ints else {
                return Err(eval_err(
                    "TypeError",
                    "unsupported operand type(s) for bit operation: 'float'",
                ));
            };
            match op {
                BinOp::Shl | BinOp::Shr if y < 0 => {
                    return Err(eval_err("ValueError", "negative shift count"))
                }
                BinOp::Shl => {
                    let shifted = if y < 63 {
                        x.checked_mul(1i64 << y)
                    } else if x == 0 {
                        Some(0)
                    } else {
                        None
                    };
                    match shifted {
                        Some(r) => Val::Int(r),
                        None => float_result(x as f64 * 2f64.powf(y as f64))?,
                    }
                }
                BinOp::Shr => Val::Int(if y >= 64 {
                    if x < 0 {
                        -1
                    } else {
                        0
                    }
                } else {
                    x >> y
                }),
                BinOp::BitAnd => Val::Int(x & y),
                BinOp::BitOr => Val::Int(x | y),
                _ => Val::Int(x ^ y),
            }
        }
    })
}

fn arith_f(op: BinOp, x: f64, y: f64) -> f64 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        _ => x * y,
    }
}

fn call(f: Func, a: &[Val]) -> Result<Val, EvalError> {
    let x = a.first().copied().unwrap_or(Val::Int(0));
    let domain = || eval_err("ValueError", "math domain error");
    Ok(match f {
        Func::Min | Func::Max => {
            let mut best = x;
            for v in &a[1..] {
                let better = match (v.i(), best.i()) {
                    (Some(p), Some(q)) => {
                        if f == Func::Min {
                            p < q
                        } else {
                            p > q
                        }
                    }
                    _ => {
                        if f == Func::Min {
                            v.f() < best.f()
                        } else {
                            v.f() > best.f()
                        }
                    }
                };
                if better {
                    best = *v;
                }
            }
            best
        }
        Func::Abs => match x.i() {
            Some(i) => i
                .checked_abs()
                .map_or(Val::Float((i as f64).abs()), Val::Int),
            None => Val::Float(x.f().abs()),
        },
        Func::Int | Func::Trunc => match x {
            Val::Float(v) => {
                if !v.is_finite() {
                    return Err(eval_err(
                        "OverflowError",
                        "cannot convert float infinity to integer",
                    ));
                }
                to_int(v.trunc())
            }
            other => Val::Int(other.i().unwrap_or(0)),
        },
        Func::Float => Val::Float(x.f()),
        Func::Round => {
            if a.len() == 2 {
                let nd = a[1]
                    .i()
                    .ok_or_else(|| eval_err("TypeError", "ndigits must be an integer"))?;
                let m = 10f64.powi(nd.clamp(-300, 300) as i32);
                match x.i() {
                    Some(i) if nd >= 0 => Val::Int(i),
                    // int with negative ndigits stays int (half to even)
                    Some(i) => {
                        let unit = 10f64.powi((-nd).min(300) as i32);
                        to_int(py_round(i as f64 / unit) as f64 * unit)
                    }
                    None => Val::Float(py_round(x.f() * m) as f64 / m),
                }
            } else {
                match x {
                    Val::Float(v) => {
                        if !v.is_finite() {
                            return Err(eval_err(
                                "OverflowError",
                                "cannot convert float infinity to integer",
                            ));
                        }
                        to_int(py_round(v) as f64)
                    }
                    other => Val::Int(other.i().unwrap_or(0)),
                }
            }
        }
        Func::Pow => binop(BinOp::Pow, x, a[1])?,
        Func::MPow => float_result(x.f().powf(a[1].f()))?,
        Func::Exp => float_result(x.f().exp())?,
        Func::Log => {
            if x.f() <= 0.0 {
                return Err(domain());
            }
            if a.len() == 2 {
                let base = a[1].f();
                if base <= 0.0 {
                    return Err(domain());
                }
                if base == 1.0 {
                    return Err(eval_err("ZeroDivisionError", "float division by zero"));
                }
                Val::Float(x.f().ln() / base.ln())
            } else {
                Val::Float(x.f().ln())
            }
        }
        Func::Log10 | Func::Log2 => {
            if x.f() <= 0.0 {
                return Err(domain());
            }
            Val::Float(if f == Func::Log10 {
                x.f().log10()
            } else {
                x.f().log2()
            })
        }
        Func::Sqrt => {
            if x.f() < 0.0 {
                return Err(domain());
            }
            Val::Float(x.f().sqrt())
        }
        Func::Floor | Func::Ceil => match x {
            Val::Float(v) => {
                if !v.is_finite() {
                    return Err(eval_err(
                        "OverflowError",
                        "cannot convert float infinity to integer",
                    ));
                }
                to_int(if f == Func::Floor {
                    v.floor()
                } else {
                    v.ceil()
                })
            }
            other => Val::Int(other.i().unwrap_or(0)),
        },
        Func::Fabs => Val::Float(x.f().abs()),
    })
}

fn to_int(v: f64) -> Val {
    if (-9.2e18..=9.2e18).contains(&v) {
        Val::Int(v as i64)
    } else {
        Val::Float(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str, time: i64, count: i64) -> Num {
        Expr::compile(src, Scope::Formula)
            .unwrap()
            .eval(&Vars {
                time: Num::Int(time),
                count,
                factor: Num::Int(1),
            })
            .unwrap()
    }

    #[test]
    fn default_formula() {
        let f = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";
        assert_eq!(ev(f, 600, 1), Num::Int(1200));
        assert_eq!(ev(f, 600, 3), Num::Int(4800));
        assert_eq!(ev(f, 600, 25), Num::Int(600 << 20));
    }

    #[test]
    fn python_arithmetic() {
        assert_eq!(ev("7 // 2", 0, 0), Num::Int(3));
        assert_eq!(ev("-7 // 2", 0, 0), Num::Int(-4));
        assert_eq!(ev("-7 % 3", 0, 0), Num::Int(2));
        assert_eq!(ev("7 / 2", 0, 0), Num::Float(3.5));
        assert_eq!(ev("2 ** 10", 0, 0), Num::Int(1024));
        assert_eq!(ev("2 ** -1", 0, 0), Num::Float(0.5));
        assert_eq!(ev("-2 ** 2", 0, 0), Num::Int(-4));
        assert_eq!(ev("1 < 2 < 3", 0, 0), Num::Int(1));
        assert_eq!(ev("3 > 2 > 2", 0, 0), Num::Int(0));
        assert_eq!(ev("0 or 5", 0, 0), Num::Int(5));
        assert_eq!(ev("round(2.5)", 0, 0), Num::Int(2));
        assert_eq!(ev("int(-2.7)", 0, 0), Num::Int(-2));
        assert_eq!(ev("max(1, 2.0, 2)", 0, 0), Num::Float(2.0));
        assert_eq!(ev("math.floor(2.5) + math.ceil(2.1)", 0, 0), Num::Int(5));
        assert_eq!(ev("True + True", 0, 0), Num::Int(2));
        assert_eq!(ev("round(1250, -2)", 0, 0), Num::Int(1200));
        assert_eq!(ev("round(1351, -2)", 0, 0), Num::Int(1400));
    }

    #[test]
    fn rejects_unsafe_or_unknown() {
        for bad in [
            "__import__('os')",
            "open('/etc/passwd')",
            "ban.__class__",
            "'abc'",
            "lambda: 1",
            "x + 1",
            "[1, 2][0]",
            "ban.Time +",
            "1 if 2",
            "banFactor",
        ] {
            let scope = if bad == "banFactor" {
                Scope::Constant
            } else {
                Scope::Formula
            };
            assert!(Expr::compile(bad, scope).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn runtime_errors() {
        let e = Expr::compile("1 / (ban.Count - 1)", Scope::Formula).unwrap();
        let r = e.eval(&Vars {
            time: Num::Int(1),
            count: 1,
            factor: Num::Int(1),
        });
        assert_eq!(r.unwrap_err().class, "ZeroDivisionError");
        let e = Expr::compile("math.log(0)", Scope::Constant).unwrap();
        assert!(e
            .eval(&Vars {
                time: Num::Int(1),
                count: 1,
                factor: Num::Int(1)
            })
            .is_err());
    }

    #[test]
    fn int_overflow_promotes_to_float() {
        assert_eq!(
            ev("ban.Time * (1 << 62) * 4", 1, 0),
            Num::Float(2f64.powi(64))
        );
    }
}
