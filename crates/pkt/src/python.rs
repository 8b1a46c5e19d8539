//! Best-effort parsing of `%{ ... }%` Python blocks into [`PyStmt`]s.
//!
//! Only single-line `assert cond[, msg]` statements over names, numbers,
//! strings, calls, arithmetic, comparisons and `and`/`or`/`not` are parsed;
//! anything else becomes [`PyStmt::Other`]. This never fails: the raw text is
//! the source of truth.

use crate::ast::{PyBinOp, PyExpr, PyStmt, PyUnOp};

const MAX_DEPTH: usize = 64;

/// The statements of a block, one per non-blank, non-comment line.
pub fn parse_block(raw: &str) -> Vec<PyStmt> {
    let mut out = Vec::new();
    let joined = raw.replace("\\\n", " ");
    for line in joined.split(['\n', ';']) {
        let toks = match lex(line) {
            Some(t) => t,
            None => {
                let t = line.trim();
                if !t.is_empty() {
                    out.push(PyStmt::Other(t.to_string()));
                }
                continue;
            }
        };
        if toks.is_empty() {
            continue;
        }
        out.push(stmt(&toks).unwrap_or_else(|| PyStmt::Other(strip_comment(line))));
    }
    out
}

/// The line with a trailing `#` comment removed (when outside quotes), trimmed.
fn strip_comment(line: &str) -> String {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return line[..i].trim().to_string(),
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line.trim().to_string()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Int(i64),
    Float(String),
    Str(String),
    Op(&'static str),
}

const OPS: [&str; 21] = [
    "==", "!=", "+=", "-=", "*=", "<=", ">=", "//", "<", ">", "|", "&", "+", "-", "*", "/", "%",
    "(", ")", ",", "=",
];

/// Tokens of one line, or `None` if it has something we do not lex.
fn lex(line: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            break;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let s: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.')
                .collect();
            i += s.chars().count();
            out.push(Tok::Name(s));
        } else if c.is_ascii_digit() {
            let s: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '.')
                .collect();
            i += s.chars().count();
            if let Some(h) = s.strip_prefix("0x") {
                out.push(Tok::Int(i64::from_str_radix(h, 16).ok()?));
            } else if let Ok(v) = s.parse::<i64>() {
                out.push(Tok::Int(v));
            } else if s.parse::<f64>().is_ok() {
                out.push(Tok::Float(s));
            } else {
                return None;
            }
        } else if c == '\'' || c == '"' {
            let mut s = String::from(c);
            i += 1;
            loop {
                let d = *chars.get(i)?;
                s.push(d);
                i += 1;
                if d == '\\' {
                    s.push(*chars.get(i)?);
                    i += 1;
                } else if d == c {
                    break;
                }
            }
            out.push(Tok::Str(s));
        } else {
            let rest: String = chars[i..].iter().take(2).collect();
            let op = OPS.iter().find(|op| rest.starts_with(**op))?;
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    Some(out)
}

fn stmt(toks: &[Tok]) -> Option<PyStmt> {
    if toks.first()? != &Tok::Name("assert".into()) {
        return simple_stmt(toks);
    }
    let mut p = P { toks, i: 1 };
    let cond = p.expr(0)?;
    let msg = if p.eat_op(",") {
        // Python evaluates the message only when the assertion fails; one
        // this evaluator cannot read (a tuple after `%`, say) must not stop
        // the condition from being checked.
        let at = p.i;
        match p.expr(0) {
            Some(m) if p.i == toks.len() => Some(m),
            _ => {
                p.i = toks.len();
                Some(PyExpr::Str(format!(
                    "(message not evaluated: {} tokens)",
                    toks.len() - at
                )))
            }
        }
    } else {
        None
    };
    if p.i != toks.len() {
        return None;
    }
    Some(PyStmt::Assert { cond, msg })
}

/// `x = e`, `x += e`, or an expression statement.
fn simple_stmt(toks: &[Tok]) -> Option<PyStmt> {
    if let (Some(Tok::Name(target)), Some(Tok::Op(op))) = (toks.first(), toks.get(1)) {
        let op = match *op {
            "=" => Some(None),
            "+=" => Some(Some(PyBinOp::Add)),
            "-=" => Some(Some(PyBinOp::Sub)),
            "*=" => Some(Some(PyBinOp::Mul)),
            _ => None,
        };
        if let Some(op) = op {
            let mut p = P { toks, i: 2 };
            let value = p.expr(0)?;
            return (p.i == toks.len()).then(|| PyStmt::Assign {
                target: target.clone(),
                op,
                value,
            });
        }
    }
    let mut p = P { toks, i: 0 };
    let e = p.expr(0)?;
    (p.i == toks.len()).then_some(PyStmt::Expr(e))
}

struct P<'a> {
    toks: &'a [Tok],
    i: usize,
}

/// Binary operator levels, loosest first.
const LEVELS: [&[(&str, PyBinOp)]; 6] = [
    &[("or", PyBinOp::Or)],
    &[("and", PyBinOp::And)],
    &[
        ("==", PyBinOp::Eq),
        ("!=", PyBinOp::Ne),
        ("<=", PyBinOp::Le),
        (">=", PyBinOp::Ge),
        ("<", PyBinOp::Lt),
        (">", PyBinOp::Gt),
    ],
    &[("|", PyBinOp::BitOr), ("&", PyBinOp::BitAnd)],
    &[("+", PyBinOp::Add), ("-", PyBinOp::Sub)],
    &[
        ("*", PyBinOp::Mul),
        ("//", PyBinOp::FloorDiv),
        ("/", PyBinOp::Div),
        ("%", PyBinOp::Mod),
    ],
];

impl P<'_> {
    fn eat_op(&mut self, op: &str) -> bool {
        let hit = match self.toks.get(self.i) {
            Some(Tok::Op(o)) => *o == op,
            Some(Tok::Name(n)) => n == op,
            _ => false,
        };
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expr(&mut self, depth: usize) -> Option<PyExpr> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.level(0, depth + 1)
    }

    fn level(&mut self, n: usize, depth: usize) -> Option<PyExpr> {
        let Some(ops) = LEVELS.get(n) else {
            return self.unary(depth);
        };
        // `not` binds between `and` and the comparisons.
        let mut lhs = if n == 2 && self.eat_op("not") {
            PyExpr::Unary(PyUnOp::Not, Box::new(self.level(n, depth)?))
        } else {
            self.level(n + 1, depth)?
        };
        'outer: loop {
            for (sym, op) in ops.iter() {
                if self.eat_op(sym) {
                    let rhs = self.level(n + 1, depth)?;
                    lhs = PyExpr::Binary(*op, Box::new(lhs), Box::new(rhs));
                    continue 'outer;
                }
            }
            return Some(lhs);
        }
    }

    fn unary(&mut self, depth: usize) -> Option<PyExpr> {
        if self.eat_op("-") {
            return Some(PyExpr::Unary(PyUnOp::Neg, Box::new(self.unary(depth)?)));
        }
        let t = self.toks.get(self.i)?.clone();
        self.i += 1;
        Some(match t {
            Tok::Int(v) => PyExpr::Int(v),
            Tok::Float(s) => PyExpr::Float(s),
            Tok::Str(s) => PyExpr::Str(s),
            Tok::Op("(") => {
                let e = self.expr(depth)?;
                if !self.eat_op(")") {
                    return None;
                }
                e
            }
            Tok::Name(n) if !matches!(n.as_str(), "and" | "or" | "not" | "assert") => {
                if self.eat_op("(") {
                    let mut args = Vec::new();
                    if !self.eat_op(")") {
                        loop {
                            args.push(self.expr(depth)?);
                            if self.eat_op(")") {
                                break;
                            }
                            if !self.eat_op(",") {
                                return None;
                            }
                        }
                    }
                    PyExpr::Call(n, args)
                } else {
                    PyExpr::Name(n)
                }
            }
            _ => return None,
        })
    }
}
