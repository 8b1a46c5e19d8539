//! Planning: a parsed [`Script`] becomes the runner's list of [`Step`]s —
//! script options read, syscall arguments decoded into typed [`Call`]s,
//! shell commands into sysctls. Constructs the runner cannot execute become
//! [`Action::Unsupported`] steps (the script is reported unsupported when
//! it reaches them); only malformed input is a [`PlanError`].

use super::consts;
use super::host::OptValue;
use super::shell::{self, ShellCmd};
use crate::ast::*;
use std::fmt;
use std::net::Ipv4Addr;

/// A script that cannot be planned: its line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The 1-based line (0 for the script as a whole).
    pub line: u32,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// Settings a script gives itself with `--name=value` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptSettings {
    /// `--tolerance_usecs`.
    pub tolerance_usecs: Option<u64>,
    /// `--local_ip` (the stack's address as the script writes it).
    pub local_ip: Option<Ipv4Addr>,
    /// `--remote_ip`.
    pub remote_ip: Option<Ipv4Addr>,
    /// `--strict_segments`: no multi-segment matching.
    pub strict_segments: bool,
    /// `--tcp_ts_tick_usecs`: check outbound TS val against this tick.
    pub ts_tick_usecs: Option<u64>,
    /// Options that make the script unsupported (`--ip_version=ipv6`...).
    pub unsupported: Vec<String>,
}

/// A planned script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// From the `--` lines.
    pub settings: ScriptSettings,
    /// The events, in order.
    pub steps: Vec<Step>,
}

/// One event, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The script line.
    pub line: u32,
    /// Its time column (`None`: at the previous event's time).
    pub time: Option<Time>,
    /// What to do.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A socket call and its expected result.
    Call(Call),
    /// `<`: a TCP segment to inject (script-relative numbers).
    Inject {
        /// ECN codepoint of the IP header.
        ecn: Option<Ecn>,
        /// The segment as written.
        seg: TcpSegment,
    },
    /// `<`: an ICMP error to inject.
    InjectIcmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Next-hop MTU.
        mtu: u16,
        /// The quoted segment of the stack's sequence space.
        quoted: SeqRange,
    },
    /// `>`: a segment the stack must send.
    Expect {
        /// ECN codepoint to check, if written.
        ecn: Option<Ecn>,
        /// The segment as written.
        seg: TcpSegment,
    },
    /// A shell command understood by the runner.
    Shell(Vec<ShellCmd>),
    /// A `%{ }%` block.
    Python(PythonBlock),
    /// Something the runner cannot do; reaching it makes the script
    /// unsupported.
    Unsupported(String),
}

/// A decoded socket call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The syscall's name as written.
    pub name: String,
    /// Decoded arguments.
    pub kind: CallKind,
    /// The expected return value.
    pub ret: i64,
    /// The expected errno name, when `ret` is -1.
    pub errno: Option<String>,
    /// A read or write given a NULL buffer (the `EFAULT` tests).
    pub null_buf: bool,
}

/// A socket address as the script gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    /// `...`: the obvious one (local for bind, remote for connect).
    Default,
    /// An explicit address (mapped from the script's addresses at run time).
    Explicit(Ipv4Addr, u16),
}

/// What a `getsockopt` expects back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetExpect {
    /// `...`: not checked.
    Any,
    /// An integer / struct / string value.
    Value(OptValue),
    /// `TCP_INFO`'s `{tcpi_x=N, ...}`: only the named fields are checked.
    TcpInfo(Vec<(String, i64)>),
}

/// The decoded arguments of each supported call (script descriptors).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CallKind {
    Socket {
        domain: i32,
        ty: i32,
        protocol: i32,
    },
    Bind {
        fd: i64,
        addr: Addr,
    },
    Listen {
        fd: i64,
        backlog: i32,
    },
    Accept {
        fd: i64,
    },
    Connect {
        fd: i64,
        addr: Addr,
    },
    Recv {
        fd: i64,
        len: usize,
        flags: i32,
        /// `recvmsg`: the `msg_flags` and control messages expected back
        /// (`None` for `read`/`recv`).
        msg: Option<RecvExpect>,
    },
    Send {
        fd: i64,
        len: usize,
        flags: i32,
        to: Option<Addr>,
        /// `sendmsg`'s iovec element lengths (`None` for the others).
        iov: Option<Vec<usize>>,
    },
    Shutdown {
        fd: i64,
        how: i32,
    },
    Close {
        fd: i64,
    },
    SetSockOpt {
        fd: i64,
        level: i32,
        opt: i32,
        value: OptValue,
    },
    GetSockOpt {
        fd: i64,
        level: i32,
        opt: i32,
        expect: GetExpect,
    },
    Fcntl {
        fd: i64,
        cmd: i32,
        arg: i64,
    },
    /// `(fd, events, expected revents)`, timeout in ms (-1: forever).
    Poll {
        fds: Vec<(i64, i16, Option<i16>)>,
        timeout_ms: i64,
    },
    Ioctl {
        fd: i64,
        request: u64,
        expect: Option<i64>,
    },
    EpollCreate {
        size: i32,
    },
    /// `open(path, flags)`.
    Open {
        path: String,
        flags: i32,
    },
    /// `sendfile(out_fd, in_fd, [offset] or NULL, count)`.
    Sendfile {
        out_fd: i64,
        in_fd: i64,
        offset: Option<i64>,
        count: usize,
    },
    /// `pipe([rfd, wfd])`: the descriptors the script names the two ends.
    Pipe {
        fds: [i64; 2],
    },
    /// `splice(fd_in, off_in, fd_out, off_out, len, flags)` (offsets
    /// `[N]` or NULL).
    Splice {
        fd_in: i64,
        off_in: Option<i64>,
        fd_out: i64,
        off_out: Option<i64>,
        len: usize,
        flags: u32,
    },
    /// `epoll_ctl(epfd, op, fd, {events, data})`; `data` is the script's
    /// value as written (an fd number, `u32`, `u64` or `ptr`), not mapped.
    EpollCtl {
        epfd: i64,
        op: i32,
        fd: i64,
        event: Option<EpollEv>,
    },
    /// `epoll_wait(epfd, expected events, maxevents, timeout_ms)`.
    EpollWait {
        epfd: i64,
        expect: Vec<EpollEv>,
        maxevents: i32,
        timeout_ms: i64,
    },
}

/// An `epoll_event` as a script writes it (`{events=EPOLLIN, fd=4}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollEv {
    /// Event bits.
    pub events: u32,
    /// `fd=`/`u32=`/`u64=`/`ptr=`: the data word.
    pub data: u64,
}

pub use super::host::{Cmsg, CmsgData, SockExtendedErr};

/// What a `recvmsg` line expects in its `msghdr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvExpect {
    /// `msg_flags` on return.
    pub flags: i32,
    /// `msg_control` (`None`: not written, not checked).
    pub control: Option<Vec<Cmsg>>,
}

impl CallKind {
    /// The script descriptor the call works on, if any.
    pub fn fd(&self) -> Option<i64> {
        use CallKind::*;
        match self {
            Socket { .. } | Poll { .. } | EpollCreate { .. } | Open { .. } | Pipe { .. } => None,
            Sendfile { out_fd, .. } => Some(*out_fd),
            Splice { fd_in, .. } => Some(*fd_in),
            EpollCtl { epfd, .. } | EpollWait { epfd, .. } => Some(*epfd),
            Bind { fd, .. }
            | Listen { fd, .. }
            | Accept { fd }
            | Connect { fd, .. }
            | Recv { fd, .. }
            | Send { fd, .. }
            | Shutdown { fd, .. }
            | Close { fd }
            | SetSockOpt { fd, .. }
            | GetSockOpt { fd, .. }
            | Fcntl { fd, .. }
            | Ioctl { fd, .. } => Some(*fd),
        }
    }
}

/// Plans a parsed script.
pub fn plan(script: &Script) -> Result<Plan, PlanError> {
    let settings = settings(&script.options)?;
    let mut steps = Vec::with_capacity(script.events.len());
    for ev in &script.events {
        let action = match &ev.kind {
            EventKind::Syscall(sc) => match call(sc) {
                Ok(c) => Action::Call(c),
                Err(why) => Action::Unsupported(why),
            },
            EventKind::Packet(p) => packet(p),
            EventKind::Shell(raw) => match shell::parse(raw) {
                Ok(cmds) => Action::Shell(cmds),
                Err(cmd) => Action::Unsupported(format!("shell command `{cmd}`")),
            },
            EventKind::Python(b) => Action::Python(b.clone()),
        };
        if let Some(Time::Blocking { .. }) = ev.time {
            if !matches!(action, Action::Call(_) | Action::Unsupported(_)) {
                return Err(PlanError {
                    line: ev.line,
                    msg: "a `start...end` time on something that is not a syscall".into(),
                });
            }
        }
        steps.push(Step {
            line: ev.line,
            time: ev.time,
            action,
        });
    }
    Ok(Plan { settings, steps })
}

fn settings(options: &[ScriptOption]) -> Result<ScriptSettings, PlanError> {
    let mut s = ScriptSettings::default();
    let bad = |o: &ScriptOption| PlanError {
        line: 0,
        msg: format!(
            "bad value `{}` for --{}",
            o.value.as_deref().unwrap_or(""),
            o.name
        ),
    };
    for o in options {
        let v = o.value.as_deref().unwrap_or("");
        match o.name.as_str() {
            "tolerance_usecs" => s.tolerance_usecs = Some(v.parse().map_err(|_| bad(o))?),
            "tcp_ts_tick_usecs" => s.ts_tick_usecs = Some(v.parse().map_err(|_| bad(o))?),
            "strict_segments" => s.strict_segments = true,
            // Inbound TS ecr values are mapped to the stack's clock by the
            // TS offset: what this option asks packetdrill to do for every
            // value (without it, packetdrill maps only values the stack
            // sent, which the offset maps the same way).
            "tcp_ts_ecr_scaled" => {}
            "ip_version" if v == "ipv4" => {}
            "local_ip" | "remote_ip" => match v.parse::<Ipv4Addr>() {
                Ok(a) if o.name == "local_ip" => s.local_ip = Some(a),
                Ok(a) => s.remote_ip = Some(a),
                Err(_) => s.unsupported.push(format!("--{}={v} (not IPv4)", o.name)),
            },
            _ => s.unsupported.push(match &o.value {
                Some(v) => format!("script option --{}={v}", o.name),
                None => format!("script option --{}", o.name),
            }),
        }
    }
    Ok(s)
}

fn packet(p: &Packet) -> Action {
    match (&p.body, p.direction) {
        (PacketBody::Tcp(seg), Direction::Inbound) => Action::Inject {
            ecn: p.ecn,
            seg: seg.clone(),
        },
        (PacketBody::Tcp(seg), Direction::Outbound) => Action::Expect {
            ecn: p.ecn,
            seg: seg.clone(),
        },
        (PacketBody::Icmp(m), Direction::Inbound) => {
            let (t, c) = match icmp_type_code(m) {
                Some(tc) => tc,
                None => return Action::Unsupported(format!("ICMP `{m}`")),
            };
            // Without `[seq]`, packetdrill quotes a TCP header whose
            // sequence number is 0 (script-relative) and no payload.
            let quoted = m.quoted.unwrap_or(crate::ast::SeqRange {
                start: 0,
                end: 0,
                len: 0,
            });
            Action::InjectIcmp {
                icmp_type: t,
                code: c,
                mtu: m.mtu.unwrap_or(0).min(65535) as u16,
                quoted,
            }
        }
        (PacketBody::Icmp(m), Direction::Outbound) => {
            Action::Unsupported(format!("expected outbound ICMP `{m}`"))
        }
    }
}

fn icmp_type_code(m: &IcmpMessage) -> Option<(u8, u8)> {
    let code = |c: &str| -> Option<u8> {
        Some(match c {
            "net_unreachable" => 0,
            "host_unreachable" => 1,
            "protocol_unreachable" => 2,
            "port_unreachable" => 3,
            "frag_needed" => 4,
            "source_route_failed" => 5,
            "net_unknown" => 6,
            "host_unknown" => 7,
            "net_prohibited" => 9,
            "host_prohibited" => 10,
            "admin_prohibited" => 13,
            _ => c.parse().ok()?,
        })
    };
    match m.icmp_type.as_str() {
        "unreachable" => Some((3, m.code.as_deref().map_or(Some(0), code)?)),
        "source_quench" => Some((4, 0)),
        "time_exceeded" => Some((11, 0)),
        _ => None,
    }
}

/// An integer argument: literal, constant, `A|B`, `[N]`, `htons(N)`.
pub fn int(e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(v) => Ok(*v),
        Expr::Ident(n) => consts::value(n).ok_or_else(|| format!("unknown constant {n}")),
        Expr::Or(xs) => xs.iter().try_fold(0, |acc, x| Ok(acc | int(x)?)),
        Expr::Array(xs) if xs.len() == 1 => int(&xs[0]),
        Expr::Call(f, a) if (f == "htons" || f == "htonl") && a.len() == 1 => int(&a[0]),
        _ => Err(format!("`{e}` is not an integer")),
    }
}

fn int_i32(e: &Expr) -> Result<i32, String> {
    let v = int(e)?;
    i32::try_from(v)
        .or_else(|_| u32::try_from(v).map(|u| u as i32))
        .map_err(|_| format!("{v} out of range"))
}

fn arg(sc: &Syscall, i: usize) -> Result<&Expr, String> {
    sc.args
        .get(i)
        .ok_or_else(|| format!("{}: missing argument {}", sc.name, i + 1))
}

fn len_arg(e: &Expr) -> Result<usize, String> {
    let v = int(e)?;
    usize::try_from(v).map_err(|_| format!("bad length {v}"))
}

/// `...` or `{sa_family=AF_INET, sin_port=htons(P), sin_addr=inet_addr("A")}`.
fn addr(e: &Expr) -> Result<Addr, String> {
    match e {
        Expr::Ellipsis => Ok(Addr::Default),
        Expr::AddrOf(inner) => addr(inner),
        Expr::Struct(fields) => {
            let mut ip = None;
            let mut port = None;
            for f in fields {
                let key = match &f.key {
                    Some(Expr::Ident(k)) => k.as_str(),
                    _ => continue,
                };
                match (key, &f.value) {
                    ("sin_port", v) => port = Some(int(v)?),
                    ("sin_addr", Expr::Call(fname, a)) if fname == "inet_addr" => {
                        if let Some(Expr::Str(s)) = a.first() {
                            ip = Some(
                                s.parse::<Ipv4Addr>()
                                    .map_err(|_| format!("bad address \"{s}\""))?,
                            );
                        }
                    }
                    ("sa_family" | "sin_family", v) if int(v)? != 2 => {
                        return Err("non-AF_INET address".into())
                    }
                    _ => {}
                }
            }
            let port = u16::try_from(port.ok_or("address without sin_port")?)
                .map_err(|_| "bad port".to_string())?;
            Ok(Addr::Explicit(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port))
        }
        _ => Err(format!("unsupported address `{e}`")),
    }
}

fn call(sc: &Syscall) -> Result<Call, String> {
    let ret = int(&sc.result.value).map_err(|e| format!("{}: result {e}", sc.name))?;
    let kind = call_kind(sc).map_err(|e| format!("{}: {e}", sc.name))?;
    let buffer_call = matches!(
        sc.name.as_str(),
        "read" | "recv" | "recvfrom" | "write" | "send" | "sendto"
    );
    let null_buf = buffer_call && matches!(arg(sc, 1), Ok(Expr::Ident(n)) if n == "NULL");
    Ok(Call {
        name: sc.name.clone(),
        kind,
        ret,
        null_buf,
        errno: sc.result.errno.clone(),
    })
}

fn call_kind(sc: &Syscall) -> Result<CallKind, String> {
    let a = |i| arg(sc, i);
    let fd = || int(a(0)?);
    Ok(match sc.name.as_str() {
        "socket" => CallKind::Socket {
            domain: match a(0)? {
                Expr::Ellipsis => 2,
                e => int_i32(e)?,
            },
            ty: int_i32(a(1)?)?,
            protocol: match a(2)? {
                Expr::Ellipsis => 6,
                e => int_i32(e)?,
            },
        },
        "bind" => CallKind::Bind {
            fd: fd()?,
            addr: addr(a(1)?)?,
        },
        "listen" => CallKind::Listen {
            fd: fd()?,
            backlog: int_i32(a(1)?)?,
        },
        "accept" | "accept4" => CallKind::Accept { fd: fd()? },
        "connect" => CallKind::Connect {
            fd: fd()?,
            addr: addr(a(1)?)?,
        },
        "read" => CallKind::Recv {
            fd: fd()?,
            len: len_arg(a(2)?)?,
            flags: 0,
            msg: None,
        },
        "recv" | "recvfrom" => CallKind::Recv {
            fd: fd()?,
            len: len_arg(a(2)?)?,
            flags: int_i32(a(3)?)?,
            msg: None,
        },
        "write" => CallKind::Send {
            fd: fd()?,
            len: len_arg(a(2)?)?,
            flags: 0,
            to: None,
            iov: None,
        },
        "send" => CallKind::Send {
            fd: fd()?,
            len: len_arg(a(2)?)?,
            flags: int_i32(a(3)?)?,
            to: None,
            iov: None,
        },
        "sendto" => CallKind::Send {
            fd: fd()?,
            len: len_arg(a(2)?)?,
            flags: int_i32(a(3)?)?,
            to: match a(4)? {
                Expr::Ellipsis => Some(Addr::Default),
                // AF_UNSPEC: the unspecified address, port 0.
                Expr::Ident(f) if f == "AF_UNSPEC" => {
                    Some(Addr::Explicit(Ipv4Addr::UNSPECIFIED, 0))
                }
                Expr::Int(0) | Expr::Ident(_) => None,
                e => Some(addr(e)?),
            },
            iov: None,
        },
        "sendmsg" | "recvmsg" => {
            let (len, to, msg, iov) = msghdr(a(1)?, sc.name == "sendmsg")?;
            let flags = int_i32(a(2)?)?;
            if sc.name == "sendmsg" {
                CallKind::Send {
                    fd: fd()?,
                    len,
                    flags,
                    to,
                    iov: Some(iov),
                }
            } else {
                CallKind::Recv {
                    fd: fd()?,
                    len,
                    flags,
                    msg: Some(msg),
                }
            }
        }
        "shutdown" => CallKind::Shutdown {
            fd: fd()?,
            how: int_i32(a(1)?)?,
        },
        "close" => CallKind::Close { fd: fd()? },
        "setsockopt" => {
            let opt = int_i32(a(2)?)?;
            CallKind::SetSockOpt {
                fd: fd()?,
                level: int_i32(a(1)?)?,
                opt,
                value: opt_value(a(3)?)?,
            }
        }
        "getsockopt" => {
            let opt = int_i32(a(2)?)?;
            let expect = match a(3)? {
                Expr::Ellipsis => GetExpect::Any,
                Expr::Struct(fields) if consts::value("TCP_INFO") == Some(opt.into()) => {
                    let mut out = Vec::new();
                    for f in fields {
                        match (&f.key, &f.value) {
                            (Some(Expr::Ident(k)), Expr::Ellipsis) if k.starts_with("tcpi_") => {}
                            (Some(Expr::Ident(k)), v) if k.starts_with("tcpi_") => {
                                out.push((k.clone(), int(v)?))
                            }
                            _ => return Err(format!("TCP_INFO field `{f}`")),
                        }
                    }
                    GetExpect::TcpInfo(out)
                }
                e => GetExpect::Value(opt_value(e)?),
            };
            CallKind::GetSockOpt {
                fd: fd()?,
                level: int_i32(a(1)?)?,
                opt,
                expect,
            }
        }
        "fcntl" => CallKind::Fcntl {
            fd: fd()?,
            cmd: int_i32(a(1)?)?,
            arg: match sc.args.get(2) {
                Some(e) => int(e)?,
                None => 0,
            },
        },
        "poll" => {
            let Expr::Array(items) = a(0)? else {
                return Err("poll: first argument is not an array".into());
            };
            let mut fds = Vec::new();
            for it in items {
                let Expr::Struct(fields) = it else {
                    return Err(format!("poll entry `{it}`"));
                };
                let (mut fd, mut ev, mut rev) = (None, 0i16, None);
                for f in fields {
                    let Some(Expr::Ident(k)) = &f.key else {
                        return Err(format!("poll field `{f}`"));
                    };
                    let v = int(&f.value)? as i16;
                    match k.as_str() {
                        "fd" => fd = Some(i64::from(v)),
                        "events" => ev = v,
                        "revents" => rev = Some(v),
                        _ => return Err(format!("poll field `{k}`")),
                    }
                }
                fds.push((fd.ok_or("poll entry without fd")?, ev, rev));
            }
            CallKind::Poll {
                fds,
                timeout_ms: int(a(2)?)?,
            }
        }
        "ioctl" => {
            let request = int(a(1)?)? as u64;
            let expect = match sc.args.get(2) {
                None | Some(Expr::Ellipsis) => None,
                Some(e) => Some(int(e)?),
            };
            CallKind::Ioctl {
                fd: fd()?,
                request,
                expect,
            }
        }
        "epoll_create" | "epoll_create1" => CallKind::EpollCreate {
            size: int_i32(a(0)?)?,
        },
        "epoll_ctl" => CallKind::EpollCtl {
            epfd: fd()?,
            op: int_i32(a(1)?)?,
            fd: int(a(2)?)?,
            event: match sc.args.get(3) {
                None | Some(Expr::Ellipsis) => None,
                Some(Expr::Ident(n)) if n == "NULL" => None,
                Some(e) => Some(epoll_event(e)?),
            },
        },
        "epoll_wait" | "epoll_pwait" => CallKind::EpollWait {
            epfd: fd()?,
            expect: match a(1)? {
                Expr::Ellipsis => Vec::new(),
                Expr::Array(items) => items.iter().map(epoll_event).collect::<Result<_, _>>()?,
                e => vec![epoll_event(e)?],
            },
            maxevents: int_i32(a(2)?)?,
            timeout_ms: int(a(3)?)?,
        },
        "open" => CallKind::Open {
            path: match a(0)? {
                Expr::Str(s) => s.clone(),
                e => return Err(format!("path `{e}`")),
            },
            flags: int_i32(a(1)?)?,
        },
        "sendfile" => CallKind::Sendfile {
            out_fd: fd()?,
            in_fd: int(a(1)?)?,
            offset: nullable(a(2)?)?,
            count: len_arg(a(3)?)?,
        },
        "pipe" => match a(0)? {
            Expr::Array(v) if v.len() == 2 => CallKind::Pipe {
                fds: [int(&v[0])?, int(&v[1])?],
            },
            e => return Err(format!("pipe descriptors `{e}`")),
        },
        "splice" => CallKind::Splice {
            fd_in: fd()?,
            off_in: nullable(a(1)?)?,
            fd_out: int(a(2)?)?,
            off_out: nullable(a(3)?)?,
            len: len_arg(a(4)?)?,
            flags: int(a(5)?)? as u32,
        },
        other => return Err(format!("syscall {other} is not supported by the runner")),
    })
}

/// A pointer to an integer (`[0]`), or `NULL`.
fn nullable(e: &Expr) -> Result<Option<i64>, String> {
    match e {
        Expr::Ident(n) if n == "NULL" => Ok(None),
        Expr::Array(v) if v.len() == 1 => Ok(Some(int(&v[0])?)),
        _ => Err(format!("`{e}` is neither [N] nor NULL")),
    }
}

/// `{events=EPOLLIN|EPOLLET, fd=4}` (or `u32=`, `u64=`, `ptr=`).
fn epoll_event(e: &Expr) -> Result<EpollEv, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!("epoll_event `{e}`"));
    };
    let mut ev = EpollEv { events: 0, data: 0 };
    for f in fields {
        let Some(Expr::Ident(k)) = &f.key else {
            return Err(format!("epoll_event field `{f}`"));
        };
        let v = int(&f.value)?;
        match k.as_str() {
            "events" => {
                ev.events = u32::try_from(v)
                    .or_else(|_| i32::try_from(v).map(|x| x as u32))
                    .map_err(|_| format!("epoll events {v} out of range"))?
            }
            "fd" | "u32" | "u64" | "ptr" | "data" => ev.data = v as u64,
            _ => return Err(format!("epoll_event field `{k}`")),
        }
    }
    Ok(ev)
}

/// A `setsockopt`/`getsockopt` value: `[1]`, `1`, `"cubic"`,
/// `{onoff=1, linger=0}`.
fn opt_value(e: &Expr) -> Result<OptValue, String> {
    match e {
        Expr::Str(s) => Ok(OptValue::Str(s.clone())),
        Expr::Struct(fields) => {
            let mut onoff = None;
            let mut linger = None;
            for f in fields {
                match &f.key {
                    Some(Expr::Ident(k)) if k == "onoff" || k == "l_onoff" => {
                        onoff = Some(int_i32(&f.value)?)
                    }
                    Some(Expr::Ident(k)) if k == "linger" || k == "l_linger" => {
                        linger = Some(int_i32(&f.value)?)
                    }
                    _ => return Err(format!("option value `{e}`")),
                }
            }
            match (onoff, linger) {
                (Some(onoff), Some(linger)) => Ok(OptValue::Linger { onoff, linger }),
                _ => Err(format!("option value `{e}`")),
            }
        }
        _ => Ok(OptValue::Int(int(e)?)),
    }
}

/// What `msghdr` gives a call: total iov length, destination, expected
/// flags and control messages, the iovec's element lengths.
type MsgHdr = (usize, Option<Addr>, RecvExpect, Vec<usize>);

/// `{msg_name(...)=..., msg_iov(N)=[{..., len}...], msg_flags=0,
/// msg_control=[...]}`: the total iov length, the destination and (for
/// `recvmsg`) the control messages expected back.
fn msghdr(e: &Expr, send: bool) -> Result<MsgHdr, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!("msghdr `{e}`"));
    };
    let mut len = 0usize;
    let mut to = None;
    let mut control = None;
    let mut flags = 0;
    let mut lens = Vec::new();
    for f in fields {
        let key = match &f.key {
            Some(Expr::Ident(k)) => k.as_str(),
            Some(Expr::Call(k, _)) => k.as_str(),
            _ => return Err(format!("msghdr field `{f}`")),
        };
        match key {
            "msg_name" => {
                if send {
                    // `msg_name(...)=...`: the obvious (remote) address.
                    to = Some(addr(&f.value)?);
                }
            }
            "msg_iov" => {
                let Expr::Array(iovs) = &f.value else {
                    return Err(format!("msg_iov `{}`", f.value));
                };
                for iov in iovs {
                    let n = match iov {
                        Expr::Struct(v) if v.len() == 2 => len_arg(&v[1].value)?,
                        _ => return Err(format!("iovec `{iov}`")),
                    };
                    len = len.saturating_add(n);
                    lens.push(n);
                }
            }
            "msg_flags" => {
                let v = int_i32(&f.value)?;
                if send && v != 0 {
                    return Err("msg_flags checks".into());
                }
                flags = v;
            }
            "msg_control" => match &f.value {
                Expr::Array(v) if v.is_empty() => control = Some(Vec::new()),
                Expr::Array(v) if !send => {
                    control = Some(v.iter().map(cmsg).collect::<Result<Vec<_>, _>>()?);
                }
                _ => return Err("control messages (msg_control)".into()),
            },
            _ => return Err(format!("msghdr field `{key}`")),
        }
    }
    Ok((len, to, RecvExpect { flags, control }, lens))
}

/// `{ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0, ee_code=...,
/// ee_info=0, ee_data=0}`.
fn sock_extended_err(e: &Expr) -> Result<SockExtendedErr, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!("sock_extended_err `{e}`"));
    };
    let mut ee = SockExtendedErr::default();
    for f in fields {
        let Some(Expr::Ident(k)) = &f.key else {
            return Err(format!("sock_extended_err field `{f}`"));
        };
        let v = int(&f.value)?;
        let small = || u8::try_from(v).map_err(|_| format!("{k} {v} out of range"));
        let word = || u32::try_from(v).map_err(|_| format!("{k} {v} out of range"));
        match k.as_str() {
            "ee_errno" => ee.errno = word()?,
            "ee_origin" => ee.origin = small()?,
            "ee_type" => ee.ty = small()?,
            "ee_code" => ee.code = small()?,
            "ee_info" => ee.info = word()?,
            "ee_data" => ee.data = word()?,
            _ => return Err(format!("sock_extended_err field `{k}`")),
        }
    }
    Ok(ee)
}

/// `{scm_sec=0, scm_nsec=20000000}`: `struct scm_timestamping`'s `ts[0]`.
fn scm_timestamping(e: &Expr) -> Result<CmsgData, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!("scm_timestamping `{e}`"));
    };
    let (mut sec, mut nsec) = (0, 0);
    for f in fields {
        match &f.key {
            Some(Expr::Ident(k)) if k == "scm_sec" => sec = int(&f.value)?,
            Some(Expr::Ident(k)) if k == "scm_nsec" => nsec = int(&f.value)?,
            _ => return Err(format!("scm_timestamping field `{f}`")),
        }
    }
    Ok(CmsgData::Timestamping { sec, nsec })
}

/// `{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=9000}`.
fn cmsg(e: &Expr) -> Result<Cmsg, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!("control message `{e}`"));
    };
    let (mut level, mut ty, mut data) = (None, None, None);
    for f in fields {
        let Some(Expr::Ident(k)) = &f.key else {
            return Err(format!("control message field `{f}`"));
        };
        match k.as_str() {
            "cmsg_level" => level = Some(int_i32(&f.value)?),
            "cmsg_type" => ty = Some(int_i32(&f.value)?),
            "cmsg_data" => {
                data = Some(match &f.value {
                    Expr::Struct(v)
                        if v.iter().any(
                            |x| matches!(&x.key, Some(Expr::Ident(k)) if k.starts_with("scm_")),
                        ) =>
                    {
                        scm_timestamping(&f.value)?
                    }
                    Expr::Struct(_) => CmsgData::ExtErr(sock_extended_err(&f.value)?),
                    v => CmsgData::Int(int(v)?),
                })
            }
            _ => return Err(format!("control message field `{k}`")),
        }
    }
    match (level, ty, data) {
        (Some(level), Some(ty), Some(data)) => Ok(Cmsg { level, ty, data }),
        _ => Err(format!("control message `{e}`")),
    }
}
