//! `Display` for the AST: prints script text that parses back to the same AST
//! (up to [`Event::line`](crate::ast::Event::line)).

use crate::ast::*;
use std::fmt::{self, Display, Formatter, Write as _};

/// Writes `items` separated by `sep`.
fn join<T: Display>(f: &mut Formatter<'_>, items: &[T], sep: &str) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

impl Display for Script {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for o in &self.options {
            writeln!(f, "{o}")?;
        }
        for e in &self.events {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Display for ScriptOption {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "--{}={}", self.name, v),
            None => write!(f, "--{}", self.name),
        }
    }
}

impl Display for Event {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.time {
            write!(f, "{t} ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl Display for TimePoint {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.relative {
            f.write_char('+')?;
        }
        let whole = self.micros / 1_000_000;
        let frac = self.micros % 1_000_000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{frac:06}");
            write!(f, "{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

impl Display for Time {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Time::Any => f.write_char('*'),
            Time::At(t) => write!(f, "{t}"),
            Time::Range(a, b) => write!(f, "{a}~{b}"),
            Time::Blocking { start, end } => write!(f, "{start}...{end}"),
        }
    }
}

impl Display for EventKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Syscall(s) => write!(f, "{s}"),
            EventKind::Packet(p) => write!(f, "{p}"),
            EventKind::Shell(s) => write!(f, "`{s}`"),
            EventKind::Python(p) => write!(f, "%{{{}}}%", p.raw),
        }
    }
}

impl Display for Syscall {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        join(f, &self.args, ", ")?;
        write!(f, ") = {}", self.result)
    }
}

impl Display for SyscallResult {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        if let Some(e) = &self.errno {
            write!(f, " {e}")?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Ellipsis => f.write_str("..."),
            Expr::Str(s) => write!(f, "\"{s}\""),
            Expr::Ident(s) => f.write_str(s),
            Expr::Or(v) => join(f, v, "|"),
            Expr::Struct(fields) => {
                f.write_char('{')?;
                join(f, fields, ", ")?;
                f.write_char('}')
            }
            Expr::Array(v) => {
                f.write_char('[')?;
                join(f, v, ", ")?;
                f.write_char(']')
            }
            Expr::Call(name, args) => {
                write!(f, "{name}(")?;
                join(f, args, ", ")?;
                f.write_char(')')
            }
            Expr::AddrOf(e) => write!(f, "&{e}"),
        }
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{k}={}", self.value),
            None => write!(f, "{}", self.value),
        }
    }
}

impl Display for Packet {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char(match self.direction {
            Direction::Inbound => '<',
            Direction::Outbound => '>',
        })?;
        if let Some(e) = self.ecn {
            write!(f, " [{}]", e.name())?;
        }
        match &self.body {
            PacketBody::Tcp(t) => write!(f, " {t}"),
            PacketBody::Icmp(i) => write!(f, " {i}"),
        }
    }
}

impl Display for SeqRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}({})", self.start, self.end, self.len)
    }
}

impl Display for TcpFlags {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_char('-');
        }
        for (c, b) in TcpFlags::LETTERS {
            if self.has(b) {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl Display for TcpSegment {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.flags, self.seq)?;
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg {
            write!(f, " urg {u}")?;
        }
        if let Some(o) = &self.options {
            write!(f, " {o}")?;
        }
        Ok(())
    }
}

impl Display for TcpOptions {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TcpOptions::Any => f.write_str("<...>"),
            TcpOptions::List(v) => {
                f.write_char('<')?;
                join(f, v, ",")?;
                f.write_char('>')
            }
        }
    }
}

/// `name` or `name word`.
fn with_word(f: &mut Formatter<'_>, name: &str, w: &Option<String>) -> fmt::Result {
    match w {
        Some(w) => write!(f, "{name} {w}"),
        None => f.write_str(name),
    }
}

impl Display for TcpOption {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Mss(v) => write!(f, "mss {v}"),
            TcpOption::WindowScale(v) => write!(f, "wscale {v}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                f.write_str("sack")?;
                for (a, b) in blocks {
                    write!(f, " {a}:{b}")?;
                }
                Ok(())
            }
            TcpOption::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOption::Md5(w) => with_word(f, "md5", w),
            TcpOption::FastOpen(w) => with_word(f, "FO", w),
            TcpOption::FastOpenExp(w) => with_word(f, "FOEXP", w),
        }
    }
}

impl Display for IcmpMessage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "icmp {}", self.icmp_type)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some(q) = &self.quoted {
            write!(f, " [{q}]")?;
        }
        Ok(())
    }
}

impl Display for PyExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PyExpr::Name(n) => f.write_str(n),
            PyExpr::Int(v) => write!(f, "{v}"),
            PyExpr::Float(s) | PyExpr::Str(s) => f.write_str(s),
            PyExpr::Unary(PyUnOp::Not, e) => write!(f, "(not {e})"),
            PyExpr::Unary(PyUnOp::Neg, e) => write!(f, "(-{e})"),
            PyExpr::Binary(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            PyExpr::Call(n, args) => {
                write!(f, "{n}(")?;
                join(f, args, ", ")?;
                f.write_char(')')
            }
        }
    }
}

impl Display for PyStmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PyStmt::Assert { cond, msg: Some(m) } => write!(f, "assert {cond}, {m}"),
            PyStmt::Assert { cond, msg: None } => write!(f, "assert {cond}"),
            PyStmt::Assign { target, op, value } => match op {
                Some(op) => write!(f, "{target} {}= {value}", op.symbol()),
                None => write!(f, "{target} = {value}"),
            },
            PyStmt::Expr(e) => write!(f, "{e}"),
            PyStmt::Other(s) => f.write_str(s),
        }
    }
}
