//! A small evaluator for `%{ }%` blocks (already parsed into [`PyStmt`]s by
//! the parser): integers and floats, `+ - * / // %`, `| &`, comparisons,
//! `and`/`or`/`not`, parentheses, `int()`/`abs()`/`min()`/`max()`, string
//! `%` formatting for assertion messages, chained comparisons
//! (`a <= x <= b`), assignments and `assert`. Names
//! are block variables, then whatever the caller's lookup gives (the
//! `tcpi_*` fields and constants).

use crate::ast::{PyBinOp, PyExpr, PyStmt, PyUnOp};
use std::collections::HashMap;

/// Why a block did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum PyError {
    /// An `assert` was false: the statement and its message.
    Failed(String),
    /// Something the evaluator does not do.
    Unsupported(String),
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (quotes removed).
    Str(String),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Int(v) => *v != 0,
            Val::Float(v) => *v != 0.0,
            Val::Str(s) => !s.is_empty(),
        }
    }

    fn num(&self) -> Result<f64, PyError> {
        match self {
            Val::Int(v) => Ok(*v as f64),
            Val::Float(v) => Ok(*v),
            Val::Str(s) => Err(PyError::Unsupported(format!("arithmetic on string {s:?}"))),
        }
    }

    fn render(&self) -> String {
        match self {
            Val::Int(v) => v.to_string(),
            Val::Float(v) => v.to_string(),
            Val::Str(s) => s.clone(),
        }
    }
}

/// Evaluates a block's statements; `lookup` resolves names that are not
/// block variables (`None`: unknown name → unsupported).
pub fn run_block(
    stmts: &[PyStmt],
    vars: &mut HashMap<String, Val>,
    lookup: &mut dyn FnMut(&str) -> Option<i64>,
) -> Result<(), PyError> {
    for s in stmts {
        match s {
            PyStmt::Assert { cond, msg } => {
                if !eval(cond, vars, lookup, 0)?.truthy() {
                    let m = match msg {
                        Some(m) => eval(m, vars, lookup, 0)
                            .map(|v| v.render())
                            .unwrap_or_else(|_| m.to_string()),
                        None => String::new(),
                    };
                    let detail = explain(cond, vars, lookup);
                    return Err(PyError::Failed(format!(
                        "assert {cond} failed{detail}{}",
                        if m.is_empty() {
                            String::new()
                        } else {
                            format!(": {m}")
                        }
                    )));
                }
            }
            PyStmt::Assign { target, op, value } => {
                let v = eval(value, vars, lookup, 0)?;
                let v = match op {
                    None => v,
                    Some(op) => {
                        let cur = vars.get(target).cloned().ok_or_else(|| {
                            PyError::Unsupported(format!("unknown name {target}"))
                        })?;
                        binary(*op, cur, v)?
                    }
                };
                vars.insert(target.clone(), v);
            }
            PyStmt::Expr(PyExpr::Call(f, _)) if f == "print" => {}
            PyStmt::Expr(e) => {
                eval(e, vars, lookup, 0)?;
            }
            PyStmt::Other(t) => return Err(PyError::Unsupported(format!("python `{t}`"))),
        }
    }
    Ok(())
}

/// ` (tcpi_x = 5)` for the names in a failed condition.
fn explain(
    e: &PyExpr,
    vars: &HashMap<String, Val>,
    lookup: &mut dyn FnMut(&str) -> Option<i64>,
) -> String {
    let mut names = Vec::new();
    collect_names(e, &mut names);
    names.sort();
    names.dedup();
    let parts: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let v = vars
                .get(*n)
                .map(Val::render)
                .or_else(|| lookup(n).map(|v| v.to_string()))?;
            n.starts_with("tcpi_").then(|| format!("{n} = {v}"))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn collect_names<'a>(e: &'a PyExpr, out: &mut Vec<&'a str>) {
    match e {
        PyExpr::Name(n) => out.push(n),
        PyExpr::Unary(_, a) => collect_names(a, out),
        PyExpr::Binary(_, a, b) => {
            collect_names(a, out);
            collect_names(b, out);
        }
        PyExpr::Call(_, args) => args.iter().for_each(|a| collect_names(a, out)),
        _ => {}
    }
}

const MAX_DEPTH: usize = 128;

/// Evaluates one expression.
pub fn eval(
    e: &PyExpr,
    vars: &HashMap<String, Val>,
    lookup: &mut dyn FnMut(&str) -> Option<i64>,
    depth: usize,
) -> Result<Val, PyError> {
    if depth > MAX_DEPTH {
        return Err(PyError::Unsupported("expression too deep".into()));
    }
    let d = depth + 1;
    Ok(match e {
        PyExpr::Int(v) => Val::Int(*v),
        PyExpr::Float(s) => Val::Float(
            s.parse()
                .map_err(|_| PyError::Unsupported(format!("float {s}")))?,
        ),
        PyExpr::Str(s) => {
            let inner = s.get(1..s.len().saturating_sub(1)).unwrap_or("");
            Val::Str(inner.to_string())
        }
        PyExpr::Name(n) => match vars.get(n) {
            Some(v) => v.clone(),
            None => Val::Int(
                lookup(n).ok_or_else(|| PyError::Unsupported(format!("unknown name {n}")))?,
            ),
        },
        PyExpr::Unary(PyUnOp::Not, a) => Val::Int(i64::from(!eval(a, vars, lookup, d)?.truthy())),
        PyExpr::Unary(PyUnOp::Neg, a) => match eval(a, vars, lookup, d)? {
            Val::Int(v) => Val::Int(v.wrapping_neg()),
            v => Val::Float(-v.num()?),
        },
        PyExpr::Binary(PyBinOp::And, a, b) => {
            let l = eval(a, vars, lookup, d)?;
            if l.truthy() {
                eval(b, vars, lookup, d)?
            } else {
                l
            }
        }
        PyExpr::Binary(PyBinOp::Or, a, b) => {
            let l = eval(a, vars, lookup, d)?;
            if l.truthy() {
                l
            } else {
                eval(b, vars, lookup, d)?
            }
        }
        // `a < b <= c` is chained in Python; the parser keeps comparisons
        // binary, so a comparison whose left side is a comparison is taken
        // as a chain (an explicitly parenthesised `(a < b) < c` would be
        // too, but scripts do not write that).
        PyExpr::Binary(op, a, b)
            if is_cmp(*op) && matches!(&**a, PyExpr::Binary(o, _, _) if is_cmp(*o)) =>
        {
            let PyExpr::Binary(_, _, mid) = &**a else {
                return Err(PyError::Unsupported("comparison chain".into()));
            };
            if !eval(a, vars, lookup, d)?.truthy() {
                return Ok(Val::Int(0));
            }
            let m = eval(mid, vars, lookup, d)?;
            let r = eval(b, vars, lookup, d)?;
            binary(*op, m, r)?
        }
        PyExpr::Binary(op, a, b) => {
            let l = eval(a, vars, lookup, d)?;
            let r = eval(b, vars, lookup, d)?;
            binary(*op, l, r)?
        }
        PyExpr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, vars, lookup, d))
                .collect::<Result<Vec<_>, _>>()?;
            call(f, vals)?
        }
    })
}

fn is_cmp(op: PyBinOp) -> bool {
    use PyBinOp::*;
    matches!(op, Eq | Ne | Lt | Le | Gt | Ge)
}

fn call(f: &str, vals: Vec<Val>) -> Result<Val, PyError> {
    let unsupported = || PyError::Unsupported(format!("python call {f}()"));
    match (f, vals.as_slice()) {
        ("int", [v]) => Ok(Val::Int(v.num()?.trunc() as i64)),
        ("abs", [Val::Int(v)]) => Ok(Val::Int(v.wrapping_abs())),
        ("abs", [v]) => Ok(Val::Float(v.num()?.abs())),
        ("min" | "max", [_, ..]) => {
            let mut best = vals[0].clone();
            for v in &vals[1..] {
                let better = if f == "min" {
                    v.num()? < best.num()?
                } else {
                    v.num()? > best.num()?
                };
                if better {
                    best = v.clone();
                }
            }
            Ok(best)
        }
        _ => Err(unsupported()),
    }
}

fn binary(op: PyBinOp, l: Val, r: Val) -> Result<Val, PyError> {
    use PyBinOp::*;
    if let (Mod, Val::Str(fmt)) = (op, &l) {
        return Ok(Val::Str(format_str(fmt, &r)));
    }
    let cmp = |o: std::cmp::Ordering| -> Val {
        use std::cmp::Ordering::*;
        Val::Int(i64::from(match op {
            Eq => o == Equal,
            Ne => o != Equal,
            Lt => o == Less,
            Le => o != Greater,
            Gt => o == Greater,
            _ => o != Less,
        }))
    };
    if matches!(op, Eq | Ne | Lt | Le | Gt | Ge) {
        return Ok(match (&l, &r) {
            (Val::Int(a), Val::Int(b)) => cmp(a.cmp(b)),
            (Val::Str(a), Val::Str(b)) => cmp(a.cmp(b)),
            (Val::Str(_), _) | (_, Val::Str(_)) => Val::Int(i64::from(op == Ne)),
            _ => match l.num()?.partial_cmp(&r.num()?) {
                Some(o) => cmp(o),
                None => Val::Int(0),
            },
        });
    }
    let div0 = || PyError::Failed("division by zero".into());
    if let (Val::Int(a), Val::Int(b)) = (&l, &r) {
        let (a, b) = (*a, *b);
        return Ok(match op {
            Add => Val::Int(a.wrapping_add(b)),
            Sub => Val::Int(a.wrapping_sub(b)),
            Mul => Val::Int(a.wrapping_mul(b)),
            BitOr => Val::Int(a | b),
            BitAnd => Val::Int(a & b),
            FloorDiv | Mod if b == 0 => return Err(div0()),
            FloorDiv => Val::Int(
                a.wrapping_div_euclid(b)
                    .wrapping_sub(i64::from(b < 0 && a.wrapping_rem_euclid(b) != 0)),
            ),
            Mod => {
                let m = a.wrapping_rem_euclid(b);
                Val::Int(if b < 0 && m != 0 { m + b } else { m })
            }
            Div if b == 0 => return Err(div0()),
            Div => Val::Float(a as f64 / b as f64),
            _ => return Err(PyError::Unsupported(format!("operator {}", op.symbol()))),
        });
    }
    let (a, b) = (l.num()?, r.num()?);
    Ok(Val::Float(match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div | FloorDiv | Mod if b == 0.0 => return Err(div0()),
        Div => a / b,
        FloorDiv => (a / b).floor(),
        Mod => a - b * (a / b).floor(),
        _ => {
            return Err(PyError::Unsupported(format!(
                "operator {} on floats",
                op.symbol()
            )))
        }
    }))
}

/// `'cwnd=%d' % v`: each `%d`/`%s`/`%u`/`%i` gets the value.
fn format_str(fmt: &str, v: &Val) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('d' | 's' | 'u' | 'i') => {
                    chars.next();
                    out.push_str(&v.render());
                    continue;
                }
                Some('%') => {
                    chars.next();
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}
