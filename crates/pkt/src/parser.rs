//! The recursive-descent parser from script text to [`Script`].

use crate::ast::*;
use crate::lexer::{Cursor, ParseError};
use crate::python;

/// How deeply `{`/`[`/`(` may nest in a syscall argument before the parser
/// gives up (keeps the recursion bounded on hostile input).
const MAX_DEPTH: usize = 64;

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut p = Parser {
        cur: Cursor::new(text),
    };
    p.script()
}

struct Parser {
    cur: Cursor,
}

impl Parser {
    fn script(&mut self) -> Result<Script, ParseError> {
        let mut script = Script::default();
        loop {
            self.cur.skip_trivia()?;
            if self.cur.at_end() {
                return Ok(script);
            }
            if self.cur.looking_at("--") {
                script.options.push(self.option()?);
            } else {
                script.events.push(self.event()?);
            }
        }
    }

    /// `--name[=value]` to the end of the line (or a `//` comment).
    fn option(&mut self) -> Result<ScriptOption, ParseError> {
        let start = self.cur.pos();
        self.cur.eat("--");
        let full = self.cur.skip_line();
        // A trailing `// comment` is not part of the value.
        let line = full.split("//").next().unwrap_or("");
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (line.trim(), None),
        };
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(self.cur.err_at(start, format!("bad option name `{name}`")));
        }
        Ok(ScriptOption {
            name: name.to_string(),
            value,
        })
    }

    fn event(&mut self) -> Result<Event, ParseError> {
        let line = self.cur.pos().line;
        let time = self.time()?;
        self.cur.skip_trivia()?;
        let kind = match self.cur.peek() {
            Some('<') | Some('>') => EventKind::Packet(self.packet()?),
            Some('`') => {
                self.cur.bump();
                let s = self.cur.take_until("`", "backtick command")?;
                self.cur.bump();
                EventKind::Shell(s)
            }
            Some('%') if self.cur.looking_at("%{") => {
                self.cur.eat("%{");
                let raw = self.cur.take_until("}%", "`%{` block")?;
                self.cur.eat("}%");
                let stmts = python::parse_block(&raw);
                EventKind::Python(PythonBlock { raw, stmts })
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                if time.is_none() {
                    return self.cur.err("a syscall needs a time");
                }
                EventKind::Syscall(self.syscall()?)
            }
            _ => {
                return self.cur.err(format!(
                    "expected a packet, syscall, command or `%{{`, found {}",
                    self.cur.describe()
                ))
            }
        };
        Ok(Event { line, time, kind })
    }

    /// The optional time column.
    fn time(&mut self) -> Result<Option<Time>, ParseError> {
        match self.cur.peek() {
            Some('*') => {
                self.cur.bump();
                Ok(Some(Time::Any))
            }
            Some(c) if c == '+' || c == '.' || c.is_ascii_digit() => {
                let start = self.time_point()?;
                if self.cur.eat_tok("~")? {
                    self.cur.skip_trivia()?;
                    let end = self.time_point()?;
                    Ok(Some(Time::Range(start, end)))
                } else if self.cur.eat_tok("...")? {
                    self.cur.skip_trivia()?;
                    let end = self.time_point()?;
                    Ok(Some(Time::Blocking { start, end }))
                } else {
                    Ok(Some(Time::At(start)))
                }
            }
            _ => Ok(None),
        }
    }

    fn time_point(&mut self) -> Result<TimePoint, ParseError> {
        let relative = self.cur.eat("+");
        let micros = self.cur.time_value()?;
        Ok(TimePoint { relative, micros })
    }

    fn packet(&mut self) -> Result<Packet, ParseError> {
        let direction = match self.cur.bump() {
            Some('<') => Direction::Inbound,
            _ => Direction::Outbound,
        };
        let ecn = if self.cur.eat_tok("[")? {
            let at = self.cur.pos();
            let w = self.cur.word()?;
            let e = Ecn::from_name(&w)
                .ok_or_else(|| self.cur.err_at(at, format!("unknown IP field `[{w}`")))?;
            self.cur.expect("]")?;
            Some(e)
        } else {
            None
        };
        self.cur.skip_trivia()?;
        let body = if self.cur.peek_word() == "icmp" {
            PacketBody::Icmp(self.icmp()?)
        } else {
            PacketBody::Tcp(self.tcp()?)
        };
        Ok(Packet {
            direction,
            ecn,
            body,
        })
    }

    fn seq_range(&mut self) -> Result<SeqRange, ParseError> {
        let start = self.cur.u32()?;
        self.cur.expect(":")?;
        let end = self.cur.u32()?;
        self.cur.expect("(")?;
        let len = self.cur.u32()?;
        self.cur.expect(")")?;
        Ok(SeqRange { start, end, len })
    }

    fn tcp(&mut self) -> Result<TcpSegment, ParseError> {
        let at = self.cur.pos();
        let mut text = String::new();
        while let Some(c) = self.cur.peek().filter(|c| !c.is_whitespace()) {
            text.push(c);
            self.cur.bump();
        }
        let mut flags = TcpFlags::default();
        if text != "-" {
            if text.is_empty() {
                return self.cur.err("expected TCP flags");
            }
            for c in text.chars() {
                match TcpFlags::bit(c) {
                    Some(b) => flags.0 |= b,
                    None => {
                        return Err(self
                            .cur
                            .err_at(at, format!("bad TCP flags `{text}` (`{c}`)")))
                    }
                }
            }
        }
        let seq = self.seq_range()?;
        let mut seg = TcpSegment {
            flags,
            seq,
            ack: None,
            win: None,
            urg: None,
            options: None,
        };
        loop {
            self.cur.skip_trivia()?;
            let at = self.cur.pos();
            let slot = match self.cur.peek_word().as_str() {
                "ack" => &mut seg.ack,
                "win" => &mut seg.win,
                "urg" => &mut seg.urg,
                _ => break,
            };
            if slot.is_some() {
                return Err(self.cur.err_at(at, "field given twice"));
            }
            self.cur.word()?;
            *slot = Some(self.cur.u32()?);
        }
        if self.cur.peek() == Some('<') {
            seg.options = Some(self.tcp_options()?);
        }
        Ok(seg)
    }

    fn tcp_options(&mut self) -> Result<TcpOptions, ParseError> {
        self.cur.expect("<")?;
        if self.cur.eat_tok("...")? {
            self.cur.expect(">")?;
            return Ok(TcpOptions::Any);
        }
        let mut list = Vec::new();
        if self.cur.eat_tok(">")? {
            return Ok(TcpOptions::List(list));
        }
        loop {
            list.push(self.tcp_option()?);
            if self.cur.eat_tok(">")? {
                return Ok(TcpOptions::List(list));
            }
            self.cur.expect(",")?;
        }
    }

    /// An optional cookie/digest word after `FO`, `FOEXP`, `md5`.
    fn opt_word(&mut self) -> Result<Option<String>, ParseError> {
        self.cur.skip_trivia()?;
        let w = self.cur.word()?;
        Ok(if w.is_empty() { None } else { Some(w) })
    }

    fn tcp_option(&mut self) -> Result<TcpOption, ParseError> {
        self.cur.skip_trivia()?;
        let at = self.cur.pos();
        let w = self.cur.word()?;
        Ok(match w.as_str() {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "sackOK" => TcpOption::SackPermitted,
            "mss" => {
                let v = self.cur.u32()?;
                TcpOption::Mss(u16::try_from(v).map_err(|_| self.cur.err_at(at, "mss too big"))?)
            }
            "wscale" => {
                let v = self.cur.u32()?;
                TcpOption::WindowScale(
                    u8::try_from(v).map_err(|_| self.cur.err_at(at, "wscale too big"))?,
                )
            }
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    self.cur.skip_trivia()?;
                    if !self.cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                        break;
                    }
                    let a = self.cur.u32()?;
                    self.cur.expect(":")?;
                    let b = self.cur.u32()?;
                    blocks.push((a, b));
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                if self.cur.word()? != "val" {
                    return self.cur.err("expected `val`");
                }
                let val = self.cur.u32()?;
                if self.cur.word()? != "ecr" {
                    return self.cur.err("expected `ecr`");
                }
                let ecr = self.cur.u32()?;
                TcpOption::Timestamp { val, ecr }
            }
            "md5" => TcpOption::Md5(self.opt_word()?),
            "FO" => TcpOption::FastOpen(self.opt_word()?),
            "FOEXP" => TcpOption::FastOpenExp(self.opt_word()?),
            _ => return Err(self.cur.err_at(at, format!("unknown TCP option `{w}`"))),
        })
    }

    fn icmp(&mut self) -> Result<IcmpMessage, ParseError> {
        self.cur.word()?; // "icmp"
        let at = self.cur.pos();
        let icmp_type = self.cur.word()?;
        if icmp_type.is_empty() {
            return Err(self.cur.err_at(at, "expected an ICMP type"));
        }
        self.cur.skip_trivia()?;
        let w = self.cur.peek_word();
        let code = if w != "mtu" && w.starts_with(|c: char| c.is_ascii_alphabetic()) {
            self.cur.word()?;
            Some(w)
        } else {
            None
        };
        self.cur.skip_trivia()?;
        let mtu = if self.cur.peek_word() == "mtu" {
            self.cur.word()?;
            Some(self.cur.u32()?)
        } else {
            None
        };
        let quoted = if self.cur.eat_tok("[")? {
            let r = self.seq_range()?;
            self.cur.expect("]")?;
            Some(r)
        } else {
            None
        };
        Ok(IcmpMessage {
            icmp_type,
            code,
            mtu,
            quoted,
        })
    }

    fn syscall(&mut self) -> Result<Syscall, ParseError> {
        let name = self.cur.word()?;
        self.cur.expect("(")?;
        let args = self.expr_list(")", 0)?;
        self.cur.expect("=")?;
        let value = self.expr(0)?;
        self.cur.skip_trivia()?;
        let errno = if self.cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            Some(self.cur.word()?)
        } else {
            None
        };
        self.cur.skip_trivia()?;
        let note = if self.cur.peek() == Some('(') {
            Some(self.note()?)
        } else {
            None
        };
        Ok(Syscall {
            name,
            args,
            result: SyscallResult { value, errno, note },
        })
    }

    /// A parenthesised note on one line, nesting allowed; returns the inner
    /// text.
    fn note(&mut self) -> Result<String, ParseError> {
        let start = self.cur.pos();
        self.cur.bump();
        let mut depth = 1usize;
        let mut s = String::new();
        loop {
            let c = match self.cur.bump() {
                None | Some('\n') => return Err(self.cur.err_at(start, "unterminated `(`")),
                Some(c) => c,
            };
            if c == '(' {
                depth += 1;
            } else if c == ')' {
                depth -= 1;
                if depth == 0 {
                    return Ok(s);
                }
            }
            s.push(c);
        }
    }

    /// Comma-separated expressions up to `close` (consumed).
    fn expr_list(&mut self, close: &str, depth: usize) -> Result<Vec<Expr>, ParseError> {
        let mut v = Vec::new();
        if self.cur.eat_tok(close)? {
            return Ok(v);
        }
        loop {
            v.push(self.expr(depth)?);
            if self.cur.eat_tok(close)? {
                return Ok(v);
            }
            self.cur.expect(",")?;
        }
    }

    /// `primary ('|' primary)*`.
    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let first = self.primary(depth)?;
        let mut ors = vec![first];
        while self.cur.eat_tok("|")? {
            ors.push(self.primary(depth)?);
        }
        Ok(if ors.len() == 1 {
            ors.pop().unwrap_or(Expr::Ellipsis)
        } else {
            Expr::Or(ors)
        })
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return self.cur.err("expression nested too deeply");
        }
        let depth = depth + 1;
        self.cur.skip_trivia()?;
        let at = self.cur.pos();
        match self.cur.peek() {
            Some('.') if self.cur.eat("...") => Ok(Expr::Ellipsis),
            Some('"') => {
                self.cur.bump();
                let mut s = String::new();
                loop {
                    match self.cur.bump() {
                        None => return Err(self.cur.err_at(at, "unterminated string")),
                        Some('"') => return Ok(Expr::Str(s)),
                        Some('\\') => {
                            s.push('\\');
                            match self.cur.bump() {
                                Some(c) => s.push(c),
                                None => return Err(self.cur.err_at(at, "unterminated string")),
                            }
                        }
                        Some(c) => s.push(c),
                    }
                }
            }
            Some('{') => {
                self.cur.bump();
                let mut fields = Vec::new();
                if self.cur.eat_tok("}")? {
                    return Ok(Expr::Struct(fields));
                }
                loop {
                    let e = self.expr(depth)?;
                    let field = if self.cur.eat_tok("=")? {
                        Field {
                            key: Some(e),
                            value: self.expr(depth)?,
                        }
                    } else {
                        Field {
                            key: None,
                            value: e,
                        }
                    };
                    fields.push(field);
                    if self.cur.eat_tok("}")? {
                        return Ok(Expr::Struct(fields));
                    }
                    self.cur.expect(",")?;
                }
            }
            Some('[') => {
                self.cur.bump();
                Ok(Expr::Array(self.expr_list("]", depth)?))
            }
            Some('&') => {
                self.cur.bump();
                Ok(Expr::AddrOf(Box::new(self.primary(depth)?)))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let neg = self.cur.eat("-");
                let v = self.cur.unsigned()?;
                let v =
                    i64::try_from(v).map_err(|_| self.cur.err_at(at, "integer out of range"))?;
                Ok(Expr::Int(if neg { -v } else { v }))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.cur.word()?;
                if self.cur.eat_tok("(")? {
                    let args = self.expr_list(")", depth)?;
                    Ok(Expr::Call(name, args))
                } else {
                    Ok(Expr::Ident(name))
                }
            }
            _ => self.cur.err(format!(
                "expected an expression, found {}",
                self.cur.describe()
            )),
        }
    }
}
