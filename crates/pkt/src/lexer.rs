//! A character cursor with the token scanners the parser needs.
//!
//! Packetdrill's syntax is context-sensitive (`.` is a flag in a packet line
//! but starts a time like `+.1`), so instead of a separate token stream the
//! parser asks the cursor for the kind of token it expects next.

use std::fmt;

/// A parse error, with the 1-based line and column where it was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A position in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Index into the character vector.
    pub idx: usize,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// The cursor: the input as characters and the current position.
pub struct Cursor {
    chars: Vec<char>,
    pos: Pos,
}

impl Cursor {
    /// A cursor at the start of `text`.
    pub fn new(text: &str) -> Cursor {
        Cursor {
            chars: text.chars().collect(),
            pos: Pos {
                idx: 0,
                line: 1,
                col: 1,
            },
        }
    }

    /// The current position.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// An error at the current position.
    pub fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(self.err_at(self.pos, message))
    }

    /// An error at `pos`.
    pub fn err_at(&self, pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError {
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }

    /// The character `n` ahead of the cursor.
    pub fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos.idx.saturating_add(n)).copied()
    }

    /// The character at the cursor.
    pub fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    /// Whether the input at the cursor starts with `s`.
    pub fn looking_at(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// Consumes one character.
    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.idx += 1;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    /// Consumes `s` if the input starts with it.
    pub fn eat(&mut self, s: &str) -> bool {
        if self.looking_at(s) {
            for _ in s.chars() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Skips whitespace and comments, then consumes `s` or fails.
    pub fn expect(&mut self, s: &str) -> Result<(), ParseError> {
        self.skip_trivia()?;
        if self.eat(s) {
            Ok(())
        } else {
            self.err(format!("expected `{s}`, found {}", self.describe()))
        }
    }

    /// Skips whitespace and comments, then consumes `s` if present.
    pub fn eat_tok(&mut self, s: &str) -> Result<bool, ParseError> {
        self.skip_trivia()?;
        Ok(self.eat(s))
    }

    /// A short description of what is at the cursor, for error messages.
    pub fn describe(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(_) => {
                let s: String = self.chars[self.pos.idx..]
                    .iter()
                    .take_while(|c| **c != '\n')
                    .take(16)
                    .collect();
                format!("`{s}`")
            }
        }
    }

    /// Whether the cursor is at the end of input.
    pub fn at_end(&self) -> bool {
        self.peek().is_none()
    }

    /// Skips whitespace, `//` comments and `/* */` comments.
    pub fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.peek_at(1) == Some('/') => {
                    self.skip_line();
                }
                Some('/') if self.peek_at(1) == Some('*') => {
                    let start = self.pos;
                    self.eat("/*");
                    loop {
                        if self.eat("*/") {
                            break;
                        }
                        if self.bump().is_none() {
                            return Err(self.err_at(start, "unterminated `/*` comment"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Consumes the rest of the line (not the newline) and returns it.
    pub fn skip_line(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    /// Consumes characters up to (not including) `end`, returning them, or
    /// fails if `end` never comes.
    pub fn take_until(&mut self, end: &str, what: &str) -> Result<String, ParseError> {
        let start = self.pos;
        let mut s = String::new();
        while !self.looking_at(end) {
            match self.bump() {
                Some(c) => s.push(c),
                None => return Err(self.err_at(start, format!("unterminated {what}"))),
            }
        }
        Ok(s)
    }

    /// An identifier-like word: letters, digits, `_` (after trivia). Empty if
    /// none.
    pub fn word(&mut self) -> Result<String, ParseError> {
        self.skip_trivia()?;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        Ok(s)
    }

    /// The next word without consuming it.
    pub fn peek_word(&self) -> String {
        let mut i = 0;
        let mut s = String::new();
        while let Some(c) = self.peek_at(i) {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                i += 1;
            } else {
                break;
            }
        }
        s
    }

    /// An unsigned integer (decimal or `0x` hex) that fits `u64`.
    pub fn unsigned(&mut self) -> Result<u64, ParseError> {
        self.skip_trivia()?;
        let start = self.pos;
        let (radix, mut digits) = if self.looking_at("0x") || self.looking_at("0X") {
            self.eat("0");
            self.bump();
            (16, String::new())
        } else {
            (10, String::new())
        };
        while let Some(c) = self.peek() {
            if c.is_digit(radix) {
                digits.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if digits.is_empty() {
            return Err(self.err_at(
                start,
                format!("expected a number, found {}", self.describe()),
            ));
        }
        u64::from_str_radix(&digits, radix)
            .map_err(|_| self.err_at(start, format!("number `{digits}` out of range")))
    }

    /// An unsigned integer that fits `u32`.
    pub fn u32(&mut self) -> Result<u32, ParseError> {
        self.skip_trivia()?;
        let start = self.pos;
        let v = self.unsigned()?;
        u32::try_from(v).map_err(|_| self.err_at(start, format!("{v} does not fit 32 bits")))
    }

    /// A non-negative decimal time such as `0`, `1.5`, `.25`, in microseconds.
    /// A `.` followed by another `.` is not consumed (it starts `...`).
    pub fn time_value(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        let mut int = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            int.push(c);
            self.bump();
        }
        let mut frac = String::new();
        if self.peek() == Some('.') && self.peek_at(1) != Some('.') {
            self.bump();
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                frac.push(c);
                self.bump();
            }
        }
        if int.is_empty() && frac.is_empty() {
            return Err(self.err_at(start, format!("expected a time, found {}", self.describe())));
        }
        if frac.len() > 6 {
            return Err(self.err_at(start, "time has more than 6 decimal places"));
        }
        let whole: u64 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| self.err_at(start, "time out of range"))?
        };
        let mut f: u64 = 0;
        for (i, c) in frac
            .chars()
            .chain(std::iter::repeat('0'))
            .take(6)
            .enumerate()
        {
            let _ = i;
            f = f * 10 + u64::from(c.to_digit(10).unwrap_or(0));
        }
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(f))
            .ok_or_else(|| self.err_at(start, "time out of range"))
    }
}
