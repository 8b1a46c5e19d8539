//! The typed AST of a packetdrill script.
//!
//! Comments are not kept. Every event records the 1-based line it starts on;
//! [`Script::eq_ignoring_lines`] compares two scripts without those lines
//! (the printer does not reproduce the original layout).

/// A whole script: its `--option` lines and its events, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// The `--name[=value]` lines (normally at the top).
    pub options: Vec<ScriptOption>,
    /// The events, in file order.
    pub events: Vec<Event>,
}

impl Script {
    /// Structural equality that ignores the [`Event::line`] of every event.
    pub fn eq_ignoring_lines(&self, other: &Script) -> bool {
        self.options == other.options
            && self.events.len() == other.events.len()
            && self
                .events
                .iter()
                .zip(&other.events)
                .all(|(a, b)| a.time == b.time && a.kind == b.kind)
    }
}

/// A command-line option given in the script: `--tolerance_usecs=10000`,
/// `--strict_segments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOption {
    /// The name without the leading `--`.
    pub name: String,
    /// The text after `=` up to the end of the line (trimmed), if any.
    pub value: Option<String>,
}

/// One event: an optional time and what happens then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The 1-based line the event starts on.
    pub line: u32,
    /// When it happens; `None` for untimed shell commands / Python blocks.
    pub time: Option<Time>,
    /// What happens.
    pub kind: EventKind,
}

/// A point in time, in microseconds, absolute (`1.5`) or relative to the
/// previous event (`+.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePoint {
    /// `true` for `+N` (relative to the previous event's time).
    pub relative: bool,
    /// The value in microseconds (scripts use at most 6 decimal places).
    pub micros: u64,
}

/// The time column of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// `*`: any time.
    Any,
    /// `0`, `1.5`, `+.1`.
    At(TimePoint),
    /// `+.1~+.105`: any time within the range.
    Range(TimePoint, TimePoint),
    /// `+0...0.010`: a blocking syscall that starts at `start` and returns
    /// at `end` (as written; packetdrill takes it relative to `start` when
    /// `start` is relative).
    Blocking {
        /// When the call starts.
        start: TimePoint,
        /// When the call returns.
        end: TimePoint,
    },
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A system call and its expected result.
    Syscall(Syscall),
    /// A packet injected (`<`) or expected (`>`).
    Packet(Packet),
    /// A backtick shell command; the raw text between the backticks.
    Shell(String),
    /// A `%{ ... }%` Python block.
    Python(PythonBlock),
}

/// `name(args...) = result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// The call's name: `socket`, `setsockopt`, ...
    pub name: String,
    /// The arguments.
    pub args: Vec<Expr>,
    /// The expected result.
    pub result: SyscallResult,
}

/// The expected result: `= 0`, `= -1 EAGAIN (Resource ...)`,
/// `= 0x802 (flags O_RDWR)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallResult {
    /// The returned value (normally [`Expr::Int`]).
    pub value: Expr,
    /// The expected errno name, e.g. `EINPROGRESS`.
    pub errno: Option<String>,
    /// The parenthesised note after it (errno text or a comment), raw.
    pub note: Option<String>,
}

/// A syscall argument expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// An integer literal (decimal, hex, possibly negative).
    Int(i64),
    /// `...`: "the obvious value".
    Ellipsis,
    /// A string literal; the raw text between the quotes, escapes untouched.
    Str(String),
    /// A symbol: `SOL_SOCKET`, `NULL`, `O_RDWR`.
    Ident(String),
    /// Flags or-ed together: `O_RDWR|O_NONBLOCK` (two or more operands).
    Or(Vec<Expr>),
    /// `{a=1, b(...)=..., 0}`.
    Struct(Vec<Field>),
    /// `[1000]`, `[{...}, {...}]`, `[]`.
    Array(Vec<Expr>),
    /// `htons(8080)`, `inet_addr("192.0.2.1")`, `msg_iov(1)`.
    Call(String, Vec<Expr>),
    /// `&expr`.
    AddrOf(Box<Expr>),
}

/// One member of a struct literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `sa_family` in `sa_family=AF_INET`, `msg_iov(1)` in `msg_iov(1)=[..]`;
    /// `None` for a positional member.
    pub key: Option<Expr>,
    /// The member's value.
    pub value: Expr,
}

/// Packet direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: injected into the stack under test.
    Inbound,
    /// `>`: expected from the stack under test.
    Outbound,
}

/// The ECN codepoint of the IP header, `[ect0]` etc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecn {
    /// `[noecn]`
    NoEcn,
    /// `[ect0]`
    Ect0,
    /// `[ect1]`
    Ect1,
    /// `[ect01]`: either ECT codepoint.
    Ect01,
    /// `[ce]`
    Ce,
}

impl Ecn {
    /// The keyword as written in scripts.
    pub fn name(self) -> &'static str {
        match self {
            Ecn::NoEcn => "noecn",
            Ecn::Ect0 => "ect0",
            Ecn::Ect1 => "ect1",
            Ecn::Ect01 => "ect01",
            Ecn::Ce => "ce",
        }
    }

    /// The codepoint for a keyword.
    pub fn from_name(s: &str) -> Option<Ecn> {
        Some(match s {
            "noecn" => Ecn::NoEcn,
            "ect0" => Ecn::Ect0,
            "ect1" => Ecn::Ect1,
            "ect01" => Ecn::Ect01,
            "ce" => Ecn::Ce,
            _ => return None,
        })
    }
}

/// A packet line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Inject or expect.
    pub direction: Direction,
    /// `[ect0]`-style IP ECN field, if given.
    pub ecn: Option<Ecn>,
    /// The transport part.
    pub body: PacketBody,
}

/// The transport part of a packet line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketBody {
    /// A TCP segment.
    Tcp(TcpSegment),
    /// An ICMP message about a TCP segment.
    Icmp(IcmpMessage),
}

/// `start:end(len)`: relative sequence numbers and payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// First sequence number.
    pub start: u32,
    /// Sequence number after the payload.
    pub end: u32,
    /// Payload length.
    pub len: u32,
}

/// TCP header flags as a bit set (see the associated constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN (`F`).
    pub const FIN: u8 = 0x01;
    /// SYN (`S`).
    pub const SYN: u8 = 0x02;
    /// RST (`R`).
    pub const RST: u8 = 0x04;
    /// PSH (`P`).
    pub const PSH: u8 = 0x08;
    /// ACK (`.`).
    pub const ACK: u8 = 0x10;
    /// URG (`U`).
    pub const URG: u8 = 0x20;
    /// ECE (`E`).
    pub const ECE: u8 = 0x40;
    /// CWR (`W`).
    pub const CWR: u8 = 0x80;

    /// Printing order: the letters, then `.` (ACK) last.
    pub(crate) const LETTERS: [(char, u8); 8] = [
        ('S', Self::SYN),
        ('F', Self::FIN),
        ('R', Self::RST),
        ('P', Self::PSH),
        ('U', Self::URG),
        ('E', Self::ECE),
        ('W', Self::CWR),
        ('.', Self::ACK),
    ];

    /// Whether every bit of `bits` is set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The bit for a flag character, if it is one.
    pub fn bit(c: char) -> Option<u8> {
        Self::LETTERS.iter().find(|(l, _)| *l == c).map(|(_, b)| *b)
    }
}

/// A TCP segment line: `S. 0:0(0) ack 1 win 65535 <mss 1460,...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    /// The flags (`-` in scripts means none).
    pub flags: TcpFlags,
    /// `start:end(len)`.
    pub seq: SeqRange,
    /// `ack N`.
    pub ack: Option<u32>,
    /// `win N`.
    pub win: Option<u32>,
    /// `urg N`: the urgent pointer.
    pub urg: Option<u32>,
    /// The `<...>` option list; `None` when absent.
    pub options: Option<TcpOptions>,
}

/// A TCP option list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOptions {
    /// `<...>`: do not check the options.
    Any,
    /// An explicit list (possibly empty: `<>`).
    List(Vec<TcpOption>),
}

/// One TCP option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOption {
    /// `nop`
    Nop,
    /// `eol`
    Eol,
    /// `mss N`
    Mss(u16),
    /// `wscale N`
    WindowScale(u8),
    /// `sackOK`
    SackPermitted,
    /// `sack a:b c:d ...`
    Sack(Vec<(u32, u32)>),
    /// `TS val N ecr N`
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `md5 <hex>` (the digest as written; may be absent).
    Md5(Option<String>),
    /// `FO [cookie]`: the RFC 7413 Fast Open option (cookie as written).
    FastOpen(Option<String>),
    /// `FOEXP [cookie]`: the experimental Fast Open option.
    FastOpenExp(Option<String>),
}

/// `icmp unreachable frag_needed mtu 1200 [0:10(10)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpMessage {
    /// `unreachable`, `packet_too_big`, ...
    pub icmp_type: String,
    /// `frag_needed`, `host_unreachable`, ... (absent for some types).
    pub code: Option<String>,
    /// `mtu N`.
    pub mtu: Option<u32>,
    /// The quoted TCP segment's `[start:end(len)]`.
    pub quoted: Option<SeqRange>,
}

/// A `%{ ... }%` Python block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonBlock {
    /// The raw text between `%{` and `}%`.
    pub raw: String,
    /// The statements, one per non-blank line, parsed best-effort.
    pub stmts: Vec<PyStmt>,
}

/// One Python statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyStmt {
    /// `assert cond[, message]`.
    Assert {
        /// The asserted condition.
        cond: PyExpr,
        /// The message expression after the comma.
        msg: Option<PyExpr>,
    },
    /// `target = value` or, with `op`, `target op= value`.
    Assign {
        /// The assigned name.
        target: String,
        /// The operator of an augmented assignment (`+=`).
        op: Option<PyBinOp>,
        /// The assigned value.
        value: PyExpr,
    },
    /// An expression statement such as `print(tcpi_snd_cwnd)`.
    Expr(PyExpr),
    /// Anything not understood (the trimmed line, comment removed).
    Other(String),
}

/// A small Python expression AST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyExpr {
    /// A name: `tcpi_snd_cwnd`, `TCP_CA_Open`.
    Name(String),
    /// An integer literal.
    Int(i64),
    /// A float literal, as written.
    Float(String),
    /// A string literal, as written (with its quotes).
    Str(String),
    /// `not x` / `-x`.
    Unary(PyUnOp, Box<PyExpr>),
    /// `a op b` (comparisons are treated as binary, not chained).
    Binary(PyBinOp, Box<PyExpr>, Box<PyExpr>),
    /// `f(a, b)`.
    Call(String, Vec<PyExpr>),
}

/// Python unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyUnOp {
    /// `not`
    Not,
    /// `-`
    Neg,
}

/// Python binary operators, loosest binding first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyBinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `|`
    BitOr,
    /// `&`
    BitAnd,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
}

impl PyBinOp {
    /// The operator's spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            PyBinOp::Or => "or",
            PyBinOp::And => "and",
            PyBinOp::Eq => "==",
            PyBinOp::Ne => "!=",
            PyBinOp::Lt => "<",
            PyBinOp::Le => "<=",
            PyBinOp::Gt => ">",
            PyBinOp::Ge => ">=",
            PyBinOp::BitOr => "|",
            PyBinOp::BitAnd => "&",
            PyBinOp::Add => "+",
            PyBinOp::Sub => "-",
            PyBinOp::Mul => "*",
            PyBinOp::Div => "/",
            PyBinOp::FloorDiv => "//",
            PyBinOp::Mod => "%",
        }
    }
}
