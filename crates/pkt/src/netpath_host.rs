//! [`NetpathHost`]: the packetdrill runner's [`PktHost`] over one netpath
//! [`Stack`] with one Ethernet NIC.
//!
//! The stack owns `local_ip/24` on `eth0` (a shorter prefix when the
//! script's own addresses are not in one /24); the remote end
//! (`remote_ip`) is a static ARP entry, so no ARP is exchanged. Injected IPv4 packets are
//! wrapped in Ethernet (padded, FCS appended) and handed to the NIC at the
//! current virtual time; what the NIC puts on the wire comes back without
//! its Ethernet header, padding and FCS (ARP and other ethertypes are
//! dropped). The virtual clock moves from one stack deadline
//! ([`Stack::poll`]) to the next, so every sent packet carries the instant
//! it left.
//!
//! netpath's socket calls never block; on a descriptor the script left
//! blocking, `EAGAIN`/`EINPROGRESS`/`EALREADY` become
//! [`SysError::WouldBlock`] and the runner retries: `connect` until the
//! handshake ends, `send` until every byte is queued (as Linux's
//! `tcp_sendmsg` waits for memory), `recv`/`accept` until something
//! arrives. A blocking Fast Open `sendto` (or first write after a
//! deferred `TCP_FASTOPEN_CONNECT`) waits for the handshake: the bytes its
//! SYN carried count only if it completes, else the call fails with the
//! connection's error. A NULL buffer is `EFAULT` where Linux's copy would
//! fault.
//!
//! Descriptors number sockets, epoll instances, and the in-memory files and
//! pipes of [`files`] (`open`, `pipe`, `sendfile`, `splice`) from one
//! counter, from 3. Unlike Linux's lowest free descriptor, a number is
//! never given out twice: the runner maps the script's descriptors onto
//! the host's and keys what it remembers of a socket (non-blocking, bound
//! port, the socket under test) by the host's number, which must therefore
//! name one file for the whole run.

mod files;

use crate::run::consts;
use crate::run::host::{
    Cmsg, CmsgData, EpollEvent, Errno, OptName, OptValue, PktHost, PollFd, RecvMsg, SysError,
    SysResult, TcpInfo, Unsupported,
};
use netpath::dev::nic::NicConfig;
use netpath::dev::IfIndex;
use netpath::epoll::{Epoll, EpollOp};
use netpath::ipv4::output::PmtuDisc;
use netpath::skb::{PacketType, Skb};
use netpath::sock::SockId;
use netpath::stack::Stack;
use netpath::tcp::{SendFlags, Shutdown, TcpOpt};
use netpath::time::Instant;
use netpath_wire::ethernet::EthernetAddress;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

const SOL_IP: i32 = 0;
const SOL_SOCKET: i32 = 1;
const SOL_TCP: i32 = 6;

const O_RDWR: i64 = 2;
const O_NONBLOCK: i64 = 0x800;

const MSG_OOB: i32 = 0x1;
const MSG_PEEK: i32 = 0x2;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_EOR: i32 = 0x80;
const MSG_WAITALL: i32 = 0x100;
const MSG_ERRQUEUE: i32 = 0x2000;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_MORE: i32 = 0x8000;
const MSG_ZEROCOPY: i32 = 0x400_0000;
const MSG_FASTOPEN: i32 = 0x2000_0000;

const POLLIN: i16 = 0x1;
const POLLPRI: i16 = 0x2;
const POLLOUT: i16 = 0x4;
const POLLERR: i16 = 0x8;
const POLLHUP: i16 = 0x10;
const POLLNVAL: i16 = 0x20;
const POLLRDNORM: i16 = 0x40;
const POLLWRNORM: i16 = 0x100;
const POLLRDHUP: i16 = 0x2000;

/// `TCP_CM_INQ` (the same number as the `TCP_INQ` option).
const TCP_CM_INQ: i32 = 36;
/// `IP_RECVERR`: the error-queue control message.
const IP_RECVERR: i32 = 11;
/// `SCM_TIMESTAMPING` (`SO_TIMESTAMPING_OLD`): the timestamp control
/// message of an error-queue entry.
const SCM_TIMESTAMPING: i32 = 37;

const SIOCOUTQ: u64 = 0x5411;
const SIOCINQ: u64 = 0x541B;
const SIOCOUTQNSD: u64 = 0x894B;
const SIOCATMARK: u64 = 0x8905;

/// Linux's number for an errno (`SO_ERROR`'s value).
fn errno_number(name: &str) -> i64 {
    match name {
        "EPERM" => 1,
        "ENOENT" => 2,
        "EBADF" => 9,
        "EAGAIN" => 11,
        "EACCES" => 13,
        "EINVAL" => 22,
        "EPIPE" => 32,
        "EDESTADDRREQ" => 89,
        "EMSGSIZE" => 90,
        "ENOPROTOOPT" => 92,
        "EOPNOTSUPP" => 95,
        "EADDRINUSE" => 98,
        "EADDRNOTAVAIL" => 99,
        "ENETUNREACH" => 101,
        "ECONNABORTED" => 103,
        "ECONNRESET" => 104,
        "ENOBUFS" => 105,
        "EISCONN" => 106,
        "ENOTCONN" => 107,
        "ETIMEDOUT" => 110,
        "ECONNREFUSED" => 111,
        "EHOSTUNREACH" => 113,
        "EALREADY" => 114,
        "EINPROGRESS" => 115,
        _ => 0,
    }
}

fn errno(e: netpath::sock::Errno) -> SysError {
    SysError::Errno(Errno(e.name()))
}

fn unsupported(what: impl Into<String>) -> SysError {
    SysError::Unsupported(what.into())
}

/// An option's Linux name for messages (`TCP_QUICKACK`), or its numbers.
fn opt_name(level: i32, opt: OptName) -> String {
    let prefix = match level {
        SOL_SOCKET => "SO_",
        SOL_TCP => "TCP_",
        SOL_IP => "IP_",
        _ => "",
    };
    consts::name(prefix, opt.into())
        .filter(|_| !prefix.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("option {opt} at level {level}"))
}

/// One descriptor.
#[derive(Debug, Clone)]
struct Fd {
    id: SockId,
    nonblock: bool,
    /// A blocking `send` in progress: (length asked, bytes queued so far,
    /// the socket's wakeup stamp when it went to sleep).
    sending: Option<(usize, usize, u64)>,
    /// The bytes of `sending` went in a Fast Open SYN whose handshake is
    /// not complete: they count only if it completes.
    fastopen_wait: bool,
}

/// A netpath [`Stack`] as a packetdrill host (see the module docs).
pub struct NetpathHost {
    stack: Stack,
    nic: IfIndex,
    mac: EthernetAddress,
    peer_mac: EthernetAddress,
    now: u64,
    sent: Vec<(u64, Vec<u8>)>,
    fds: HashMap<i32, Fd>,
    /// Epoll descriptors (numbered with the sockets).
    epolls: HashMap<i32, Epoll>,
    /// The host's files and pipes (see [`files`]).
    vfs: files::Files,
    next_fd: i32,
    scratch: Vec<Skb>,
    zeros: Vec<u8>,
    wall_deadline: Option<std::time::Instant>,
    timed_out: bool,
}

/// The NIC's MTU (Linux's tun0 in packetdrill).
const MTU: usize = 1500;

/// Where the virtual clock starts (1 s, so that no timestamp is 0).
const START_NS: u64 = 1_000_000_000;

impl NetpathHost {
    /// A fresh stack owning `local/prefix_len` on `eth0`, with `remote` as a
    /// permanent neighbour.
    pub fn new(local: Ipv4Addr, prefix_len: u8, remote: Ipv4Addr) -> Result<NetpathHost, String> {
        let mut stack = Stack::new();
        let mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
        let peer_mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
        let nic = stack
            .add_nic(
                "eth0",
                mac,
                // packetdrill's tun device hands each packet up alone: no GRO.
                NicConfig {
                    gro: false,
                    ..NicConfig::default()
                },
            )
            .map_err(|e| format!("add_nic: {e:?}"))?;
        stack
            .set_up(nic, true)
            .map_err(|e| format!("set_up: {e:?}"))?;
        stack
            .ip_addr_add(nic, local, prefix_len)
            .map_err(|e| format!("ip_addr_add: {e:?}"))?;
        stack
            .neigh_add_static(nic, remote, peer_mac)
            .map_err(|e| format!("neigh_add_static: {e:?}"))?;
        let mut h = NetpathHost {
            stack,
            nic,
            mac,
            peer_mac,
            now: START_NS,
            sent: Vec::new(),
            fds: HashMap::new(),
            epolls: HashMap::new(),
            vfs: files::Files::default(),
            next_fd: 3,
            scratch: Vec::new(),
            zeros: Vec::new(),
            wall_deadline: None,
            timed_out: false,
        };
        h.poll_now();
        h.sent.clear();
        Ok(h)
    }

    /// The host for [`crate::run::RunOptions`]' addresses: a /24, or the
    /// longest prefix the two share when they are not in one /24 (so that
    /// the remote end is always on the link).
    pub fn for_options(opts: &crate::run::RunOptions) -> Result<NetpathHost, String> {
        let common = (u32::from(opts.local_ip) ^ u32::from(opts.remote_ip)).leading_zeros();
        let prefix = common.min(24) as u8;
        NetpathHost::new(opts.local_ip, prefix, opts.remote_ip)
    }

    /// Stops the virtual clock once this much wall-clock time has passed:
    /// the runner then ends the script ("the host's clock does not
    /// advance") and [`NetpathHost::timed_out`] says why.
    pub fn set_wall_limit(&mut self, limit: std::time::Duration) {
        self.wall_deadline = Some(std::time::Instant::now() + limit);
    }

    /// Whether the wall-clock limit stopped the run.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The stack, e.g. for its counters.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    fn instant(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// Runs what is due now and collects what the NIC sent; the next
    /// deadline.
    fn poll_now(&mut self) -> Option<u64> {
        let next = self.stack.poll(self.instant());
        self.drain();
        next.map(Instant::as_nanos)
    }

    fn drain(&mut self) {
        self.stack.nic_take_sent(self.nic, &mut self.scratch);
        for skb in self.scratch.drain(..) {
            if let Some(p) = ipv4_of_frame(skb.data()) {
                self.sent.push((self.now, p.to_vec()));
            }
        }
    }

    fn fd(&self, fd: i32) -> Result<&Fd, SysError> {
        self.fds
            .get(&fd)
            .ok_or(SysError::Errno(if self.vfs.has(fd) {
                Errno::ENOTSOCK
            } else {
                Errno::EBADF
            }))
    }

    /// A new descriptor (see the module docs: never one given out before).
    fn alloc_fd(&mut self) -> i32 {
        let fd = self.next_fd;
        self.next_fd += 1;
        fd
    }

    fn id(&self, fd: i32) -> Result<SockId, SysError> {
        self.fd(fd).map(|f| f.id)
    }

    fn blocking(&self, fd: i32) -> bool {
        self.fds.get(&fd).is_some_and(|f| !f.nonblock)
    }

    /// After a socket call: let the stack run what the call made due now.
    fn after_call(&mut self) {
        self.poll_now();
    }

    fn zeros(&mut self, len: usize) -> &[u8] {
        if self.zeros.len() < len {
            self.zeros.resize(len, 0);
        }
        &self.zeros[..len]
    }

    /// `send`/`sendmsg` of `len` bytes in iovec elements of `iov` bytes
    /// (see the module docs for blocking): zeros, or `data` (`len` bytes)
    /// when given (`sendfile`, `splice` to a socket).
    fn send_iov(
        &mut self,
        fd: i32,
        len: usize,
        iov: &[usize],
        flags: i32,
        to: Option<SocketAddrV4>,
        data: Option<&[u8]>,
    ) -> SysResult {
        if self.vfs.is_pipe(fd) {
            return self.pipe_write(fd, len, flags);
        }
        let id = self.id(fd)?;
        if flags & MSG_OOB != 0 {
            return Err(unsupported("send with MSG_OOB (urgent data)"));
        }
        let known = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_EOR | MSG_ZEROCOPY | MSG_FASTOPEN;
        if flags & !known != 0 {
            return Err(unsupported(format!("send flags {flags:#x}")));
        }
        let blocking = self.blocking(fd) && flags & MSG_DONTWAIT == 0;
        let retry = match self.fd(fd)?.sending {
            Some((l, d, stamp)) if l == len && blocking => Some((d, stamp)),
            _ => None,
        };
        if retry.is_some() && self.fd(fd)?.fastopen_wait {
            // A blocking Fast Open send waits for its handshake
            // (inet_wait_for_connect): a failed one returns its error, the
            // data of the SYN uncounted.
            match self.stack.tcp_state(id) {
                Some(netpath::tcp::TcpState::SynSent | netpath::tcp::TcpState::SynRecv) => {
                    return Err(SysError::WouldBlock)
                }
                Some(netpath::tcp::TcpState::Closed) | None => {
                    if let Some(f) = self.fds.get_mut(&fd) {
                        f.sending = None;
                        f.fastopen_wait = false;
                    }
                    let e = self.stack.tcp_take_error(id).ok().flatten();
                    return Err(errno(e.unwrap_or(netpath::sock::Errno::ECONNRESET)));
                }
                _ => {
                    if let Some(f) = self.fds.get_mut(&fd) {
                        f.fastopen_wait = false;
                    }
                }
            }
        }
        let fastopen = flags & MSG_FASTOPEN != 0 || self.stack.tcp_fastopen_deferred(id);
        if fastopen && retry.is_none() {
            return self.send_fastopen(fd, id, len, iov, flags, to, blocking);
        }
        let done = retry.map_or(0, |(d, _)| d);
        if let Some((_, stamp)) = retry {
            // A writer blocked for memory (sk_stream_wait_memory) sleeps
            // until a wakeup of its socket (send space, a state change,
            // data...), then goes on if memory is free, the socket failed
            // or was shut down, else sleeps again.
            let woken = self
                .stack
                .tcp_wakeups(id)
                .is_none_or(|w| w.woken_since(stamp, u32::MAX).is_some());
            if !woken {
                return Err(SysError::WouldBlock);
            }
            let ev = self.stack.tcp_poll(id);
            if !(self.stack.tcp_stream_memory_free(id) || ev.err || ev.hup) {
                let now_stamp = self.stack.tcp_wake_stamp();
                if let Some(f) = self.fds.get_mut(&fd) {
                    f.sending = Some((len, done, now_stamp));
                }
                return Err(SysError::WouldBlock);
            }
        }
        let sf = SendFlags {
            more: flags & MSG_MORE != 0,
            eor: flags & MSG_EOR != 0,
            zerocopy: flags & MSG_ZEROCOPY != 0,
        };
        let now = self.instant();
        if data.is_none() {
            self.zeros(len);
        }
        // What is left of the iovec after the bytes already queued.
        let mut skip = done;
        let rest: Vec<usize> = iov
            .iter()
            .map(|l| {
                let cut = skip.min(*l);
                skip -= cut;
                l - cut
            })
            .collect();
        let payload = match data {
            Some(d) => &d[done.min(d.len())..],
            None => &self.zeros[..len - done],
        };
        let r = self.stack.tcp_send_iov(now, id, payload, &rest, sf);
        self.after_call();
        let (total, result) = match r {
            Ok(n) => (done + n, None),
            Err(e) => (done, Some(e)),
        };
        let stamp = self.stack.tcp_wake_stamp();
        let set = |h: &mut Self, v: Option<(usize, usize, u64)>| {
            if let Some(f) = h.fds.get_mut(&fd) {
                f.sending = v;
            }
        };
        if len == 0 && result.is_none() {
            set(self, None);
            return Ok(0);
        }
        match result {
            None if total >= len || !blocking => {
                set(self, None);
                Ok(total as i64)
            }
            None | Some(netpath::sock::Errno::EAGAIN) if blocking => {
                set(self, Some((len, total, stamp)));
                Err(SysError::WouldBlock)
            }
            Some(e) => {
                set(self, None);
                if total > 0 {
                    Ok(total as i64)
                } else {
                    Err(errno(e))
                }
            }
            // (Blocking with bytes left is the arm above.)
            None => {
                set(self, None);
                Ok(total as i64)
            }
        }
    }

    /// `sendto(MSG_FASTOPEN)`, or the first write of a deferred Fast Open
    /// connect (`tcp_sendmsg_fastopen`).
    #[allow(clippy::too_many_arguments)]
    fn send_fastopen(
        &mut self,
        fd: i32,
        id: SockId,
        len: usize,
        iov: &[usize],
        flags: i32,
        to: Option<SocketAddrV4>,
        blocking: bool,
    ) -> SysResult {
        use netpath::tcp::fastopen_client::FastOpenSend;
        // AF_UNSPEC (the unspecified address, port 0) cannot be connected.
        if flags & MSG_FASTOPEN != 0 && to.is_some_and(|a| a.ip().is_unspecified() && a.port() == 0)
        {
            return Err(SysError::Errno(Errno("EOPNOTSUPP")));
        }
        let sf = SendFlags {
            more: flags & MSG_MORE != 0,
            eor: flags & MSG_EOR != 0,
            zerocopy: flags & MSG_ZEROCOPY != 0,
        };
        let now = self.instant();
        self.zeros(len);
        let dst = to.map(|a| (*a.ip(), a.port()));
        let r = self
            .stack
            .tcp_send_fastopen(now, id, dst, &self.zeros[..len], iov, sf, blocking);
        self.after_call();
        match r.map_err(errno)? {
            FastOpenSend::Sent(n) => Ok(n as i64),
            FastOpenSend::Connecting { copied } if !blocking => {
                if copied > 0 {
                    Ok(copied as i64)
                } else {
                    Err(SysError::Errno(Errno("EINPROGRESS")))
                }
            }
            FastOpenSend::Connecting { copied } => {
                let stamp = self.stack.tcp_wake_stamp();
                if let Some(f) = self.fds.get_mut(&fd) {
                    f.sending = Some((len, copied, stamp));
                    f.fastopen_wait = true;
                }
                Err(SysError::WouldBlock)
            }
        }
    }

    /// `recv(MSG_OOB)` (`tcp_recv_urg`): the urgent byte, `MSG_OOB` in the
    /// flags; a zero-length buffer gets `MSG_TRUNC` and 0, `MSG_TRUNC`
    /// asks for the length without the byte. It never waits.
    fn recv_oob(&mut self, fd: i32, len: usize, flags: i32) -> SysResult<RecvMsg> {
        use netpath::tcp::urg::OobRecv;
        let id = self.id(fd)?;
        let r = self.stack.tcp_recv_oob(id, flags & MSG_PEEK != 0);
        self.after_call();
        match r.map_err(errno)? {
            OobRecv::Byte(_) if len > 0 => Ok(RecvMsg {
                len: 1,
                flags: MSG_OOB,
                control: Vec::new(),
            }),
            OobRecv::Byte(_) => Ok(RecvMsg {
                len: 0,
                flags: MSG_OOB | MSG_TRUNC,
                control: Vec::new(),
            }),
            OobRecv::Eof => Ok(RecvMsg::default()),
        }
    }

    fn tcp_opt(level: i32, opt: OptName, v: &OptValue) -> Result<TcpOpt, SysError> {
        let int = || match v {
            OptValue::Int(i) => Ok(*i),
            OptValue::Linger { onoff, .. } => Ok(i64::from(*onoff)),
            OptValue::Str(_) => Err(SysError::Errno(Errno::EINVAL)),
        };
        let nonneg =
            || int().and_then(|i| u32::try_from(i).map_err(|_| SysError::Errno(Errno::EINVAL)));
        let buf = || int().map(|i| usize::try_from(i.max(0)).unwrap_or(usize::MAX));
        Ok(match (level, opt) {
            (SOL_TCP, 1) => TcpOpt::NoDelay(int()? != 0),
            (SOL_TCP, 2) => {
                TcpOpt::MaxSeg(u16::try_from(int()?).map_err(|_| SysError::Errno(Errno::EINVAL))?)
            }
            (SOL_TCP, 3) => TcpOpt::Cork(int()? != 0),
            (SOL_TCP, 4) => TcpOpt::KeepIdle(nonneg()?),
            (SOL_TCP, 5) => TcpOpt::KeepIntvl(nonneg()?),
            (SOL_TCP, 6) => TcpOpt::KeepCnt(nonneg()?),
            (SOL_TCP, 13) => match v {
                OptValue::Str(s) => TcpOpt::Congestion(s.trim_matches('"').to_string()),
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            },
            (SOL_TCP, 18) => TcpOpt::UserTimeout(nonneg()?),
            (SOL_TCP, 7) => TcpOpt::SynCnt(nonneg()?),
            (SOL_TCP, 23) => TcpOpt::FastOpen(nonneg()?),
            (SOL_TCP, 30) => TcpOpt::FastOpenConnect(match int()? {
                0 => false,
                1 => true,
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            }),
            (SOL_TCP, 33) => match v {
                OptValue::Str(s) => TcpOpt::FastOpenKey(c_string_bytes(s)),
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            },
            (SOL_TCP, 34) => TcpOpt::FastOpenNoCookie(match int()? {
                0 => false,
                1 => true,
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            }),
            (SOL_TCP, 36) => TcpOpt::Inq(match int()? {
                0 => false,
                1 => true,
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            }),
            (SOL_TCP, 25) => TcpOpt::NotSentLowat(
                u32::try_from(int()?.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX),
            ),
            (SOL_SOCKET, 2) => TcpOpt::ReuseAddr(int()? != 0),
            (SOL_SOCKET, 7) => TcpOpt::SndBuf(buf()?),
            (SOL_SOCKET, 8) => TcpOpt::RcvBuf(buf()?),
            (SOL_SOCKET, 9) => TcpOpt::KeepAlive(int()? != 0),
            (SOL_SOCKET, 10) => TcpOpt::OobInline(int()? != 0),
            (SOL_SOCKET, 12) => TcpOpt::Priority(nonneg()?),
            (SOL_SOCKET, 13) => match v {
                OptValue::Linger { onoff, linger } => {
                    TcpOpt::Linger((*onoff != 0).then(|| (*linger).max(0) as u32))
                }
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            },
            (SOL_SOCKET, 15) => TcpOpt::ReusePort(int()? != 0),
            (SOL_SOCKET, 36) => TcpOpt::Mark(nonneg()?),
            // SO_TIMESTAMPING: an int (the flags' bits as C passes them).
            (SOL_SOCKET, 37) => TcpOpt::Timestamping(int()? as u32),
            (SOL_SOCKET, 60) => TcpOpt::ZeroCopy(match int()? {
                0 => false,
                1 => true,
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            }),
            (SOL_IP, 1) => TcpOpt::Tos((int()? & 0xff) as u8),
            (SOL_IP, 15) => TcpOpt::FreeBind(int()? != 0),
            (SOL_IP, 2) => TcpOpt::Ttl(
                u8::try_from(int()?.max(0)).map_err(|_| SysError::Errno(Errno::EINVAL))?,
            ),
            (SOL_IP, 10) => TcpOpt::MtuDiscover(match int()? {
                0 => PmtuDisc::Dont,
                1 => PmtuDisc::Want,
                2 => PmtuDisc::Do,
                3 => PmtuDisc::Probe,
                _ => return Err(SysError::Errno(Errno::EINVAL)),
            }),
            _ => return Err(unsupported(opt_name(level, opt))),
        })
    }
}

/// The bytes of a C string literal's text (`\xf7\x63…`, `\\`, `\"`,
/// `\n`, `\0`; other characters as UTF-8).
fn c_string_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match it.next() {
            Some('x') => {
                let mut v = 0u32;
                let mut n = 0;
                while let Some(d) = it.peek().and_then(|c| c.to_digit(16)) {
                    if n == 2 {
                        break;
                    }
                    v = v * 16 + d;
                    n += 1;
                    it.next();
                }
                out.push(v as u8);
            }
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some(c) => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

/// The IPv4 packet inside an Ethernet frame as the NIC sent it (header,
/// padding and FCS removed); `None` for anything but IPv4.
fn ipv4_of_frame(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    ip.get(..total)
}

impl PktHost for NetpathHost {
    fn now_ns(&self) -> u64 {
        self.now
    }

    fn advance_to(&mut self, ns: u64) {
        if let Some(d) = self.wall_deadline {
            if self.timed_out || std::time::Instant::now() > d {
                self.timed_out = true;
                return;
            }
        }
        let mut guard = 0u32;
        while self.now < ns {
            let next = self.poll_now();
            match next {
                Some(t) if t <= self.now => {
                    // More work due now (softirq budget): run it again, but
                    // never forever.
                    guard += 1;
                    if guard > 10_000 {
                        self.now = ns;
                    }
                }
                Some(t) if t < ns => self.now = t,
                _ => self.now = ns,
            }
        }
        self.poll_now();
    }

    fn next_event_ns(&self) -> Option<u64> {
        self.stack.next_deadline().map(Instant::as_nanos)
    }

    fn inject(&mut self, ipv4_packet: &[u8]) {
        let mut frame = Vec::with_capacity(ipv4_packet.len() + 18 + 46);
        frame.extend_from_slice(&self.mac.0);
        frame.extend_from_slice(&self.peer_mac.0);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(ipv4_packet);
        if frame.len() < 60 {
            frame.resize(60, 0);
        }
        let now = self.instant();
        if ipv4_packet.len() <= MTU {
            let crc = netpath_wire::ethernet::fcs::fcs(&frame);
            frame.extend_from_slice(&crc.to_le_bytes());
            let _ = self.stack.nic_receive_bytes(now, self.nic, &frame);
        } else {
            // Larger than the NIC's MTU: packetdrill's tun device (and GRO)
            // hand such packets to the stack whole; do the same after the
            // driver's part (`eth_type_trans`).
            self.stack.poll(now);
            self.drain();
            let pool = self.stack.pool().clone();
            if let Ok(mut skb) = pool.alloc_from(64, &frame) {
                skb.reset_mac_header();
                if skb.pull(14).is_ok() {
                    skb.reset_network_header();
                    skb.meta.protocol = 0x0800;
                    skb.meta.pkt_type = PacketType::Host;
                    skb.meta.ingress_dev = Some(self.nic);
                    self.stack.netif_receive_skb(skb);
                }
            }
        }
        self.poll_now();
    }

    fn take_sent(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.drain();
        std::mem::take(&mut self.sent)
    }

    fn route(&mut self, r: &crate::run::shell::RouteSpec) -> Result<(), Unsupported> {
        let mut route =
            netpath::ipv4::route::Route::unicast(r.dst, r.prefix_len, None, Some(self.nic));
        route.mtu = r.mtu;
        route.mtu_lock = r.mtu_lock;
        route.advmss = r.advmss;
        route.initcwnd = r.initcwnd;
        self.stack
            .route_replace(route)
            .map_err(|e| Unsupported(format!("{e:?}")))
    }

    fn gso_off(&mut self) -> Result<(), Unsupported> {
        self.stack
            .set_gso(self.nic, false)
            .map_err(|e| Unsupported(format!("{e:?}")))
    }

    fn root_pfifo(&mut self, limit: Option<u32>) -> Result<(), Unsupported> {
        // tc's default limit is the device's txqueuelen (1000).
        let q = netpath::sched::pfifo::Pfifo::new(limit.unwrap_or(1000));
        self.stack
            .set_qdisc(self.nic, Box::new(q))
            .map_err(|e| Unsupported(format!("{e:?}")))
    }

    fn sysctl(&mut self, name: &str, value: &str) -> Result<(), Unsupported> {
        self.stack
            .sysctl_tcp(name, value)
            .map_err(|e| Unsupported(e.to_string()))
    }

    fn send_null_buf(
        &mut self,
        fd: i32,
        len: usize,
        flags: i32,
        to: Option<SocketAddrV4>,
    ) -> SysResult {
        use netpath::tcp::fastopen_client::FastOpenSend;
        let id = self.id(fd)?;
        let now = self.instant();
        if flags & MSG_FASTOPEN != 0 || self.stack.tcp_fastopen_deferred(id) {
            if flags & MSG_FASTOPEN != 0
                && to.is_some_and(|a| a.ip().is_unspecified() && a.port() == 0)
            {
                return Err(SysError::Errno(Errno("EOPNOTSUPP")));
            }
            let dst = to.map(|a| (*a.ip(), a.port()));
            let r = self.stack.tcp_send_fastopen_fault(now, id, dst);
            self.after_call();
            match r.map_err(errno)? {
                // The connect goes on; nothing was copied (Linux: the
                // connect's EINPROGRESS, or EFAULT once connected).
                FastOpenSend::Connecting { .. } if !self.blocking(fd) => {
                    return Err(SysError::Errno(Errno("EINPROGRESS")))
                }
                FastOpenSend::Connecting { .. } => return Err(SysError::Errno(Errno::EFAULT)),
                FastOpenSend::Sent(_) => {}
            }
        }
        // tcp_sendmsg's checks, then the copy faults.
        let r = self.stack.tcp_send(now, id, &[], SendFlags::default());
        self.after_call();
        match r {
            Ok(_) if len > 0 => Err(SysError::Errno(Errno::EFAULT)),
            Ok(n) => Ok(n as i64),
            Err(e) => Err(errno(e)),
        }
    }

    fn recv_null_buf(&mut self, fd: i32, len: usize, flags: i32) -> SysResult {
        let id = self.id(fd)?;
        // Queued data would be copied: the copy faults.
        if len > 0 && self.stack.tcp_inq(id).map_err(errno)? > 0 {
            return Err(SysError::Errno(Errno::EFAULT));
        }
        self.recv(fd, len, flags)
    }

    fn counters(&self) -> Option<Vec<(String, u64)>> {
        let tcp = self.stack.tcp_mib().fields();
        let ext = self.stack.tcp_ext_mib().fields();
        let mut out: Vec<(String, u64)> =
            tcp.iter().map(|(n, v)| (format!("Tcp{n}"), *v)).collect();
        out.extend(ext.iter().map(|(n, v)| (format!("TcpExt{n}"), *v)));
        Some(out)
    }

    fn flush_tcp_metrics(&mut self) -> Result<(), Unsupported> {
        self.stack.tcp_fastopen_cache_flush();
        Ok(())
    }

    fn socket(&mut self, domain: i32, ty: i32, protocol: i32) -> SysResult {
        if domain != 2 {
            let d = consts::name("AF_", domain.into()).unwrap_or("this address family");
            return Err(unsupported(format!("{d} sockets (IPv4 only)")));
        }
        if ty & 0xf != 1 {
            return Err(unsupported("sockets other than SOCK_STREAM"));
        }
        if protocol != 0 && protocol != 6 {
            return Err(SysError::Errno(Errno("EPROTONOSUPPORT")));
        }
        let id = self.stack.tcp_socket();
        let fd = self.alloc_fd();
        self.fds.insert(
            fd,
            Fd {
                id,
                nonblock: ty & 0x800 != 0,
                sending: None,
                fastopen_wait: false,
            },
        );
        Ok(fd.into())
    }

    fn bind(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult {
        let id = self.id(fd)?;
        self.stack
            .tcp_bind(id, *addr.ip(), addr.port())
            .map_err(errno)?;
        Ok(0)
    }

    fn listen(&mut self, fd: i32, backlog: i32) -> SysResult {
        let id = self.id(fd)?;
        let r = self.stack.tcp_listen(id, backlog.max(0) as u32);
        self.after_call();
        r.map_err(errno)?;
        Ok(0)
    }

    fn accept(&mut self, fd: i32) -> SysResult {
        let id = self.id(fd)?;
        let r = self.stack.tcp_accept(self.instant(), id);
        self.after_call();
        match r {
            Ok((child, _peer)) => {
                let nfd = self.alloc_fd();
                self.fds.insert(
                    nfd,
                    Fd {
                        id: child,
                        nonblock: false,
                        sending: None,
                        fastopen_wait: false,
                    },
                );
                Ok(nfd.into())
            }
            Err(netpath::sock::Errno::EAGAIN) if self.blocking(fd) => Err(SysError::WouldBlock),
            Err(e) => Err(errno(e)),
        }
    }

    fn connect(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult {
        let id = self.id(fd)?;
        let r = self
            .stack
            .tcp_connect(self.instant(), id, *addr.ip(), addr.port());
        self.after_call();
        use netpath::sock::Errno as E;
        match r {
            Ok(()) => Ok(0),
            Err(E::EINPROGRESS | E::EALREADY) if self.blocking(fd) => Err(SysError::WouldBlock),
            Err(e) => Err(errno(e)),
        }
    }

    fn recv(&mut self, fd: i32, len: usize, flags: i32) -> SysResult {
        if self.vfs.has(fd) {
            return self.file_read(fd, len, flags);
        }
        let id = self.id(fd)?;
        if flags & MSG_ERRQUEUE != 0 {
            // The oldest entry's packet bytes (none for a zerocopy
            // completion), or EAGAIN.
            let m = self.stack.tcp_recv_errqueue(id, len).map_err(errno)?;
            self.after_call();
            return Ok(m.data.len() as i64);
        }
        if flags & MSG_OOB != 0 {
            return self.recv_oob(fd, len, flags).map(|m| m.len);
        }
        for (f, what) in [(MSG_TRUNC, "MSG_TRUNC"), (MSG_WAITALL, "MSG_WAITALL")] {
            if flags & f != 0 {
                return Err(unsupported(format!("recv with {what}")));
            }
        }
        let peek = flags & MSG_PEEK != 0;
        let mut buf = vec![0u8; len];
        let r = self
            .stack
            .tcp_recv_flags(self.instant(), id, &mut buf, peek);
        self.after_call();
        match r {
            Ok(n) => Ok(n as i64),
            Err(netpath::sock::Errno::EAGAIN) if self.blocking(fd) && flags & MSG_DONTWAIT == 0 => {
                Err(SysError::WouldBlock)
            }
            Err(e) => Err(errno(e)),
        }
    }

    fn send(&mut self, fd: i32, len: usize, flags: i32, to: Option<SocketAddrV4>) -> SysResult {
        self.send_iov(fd, len, &[len], flags, to, None)
    }

    fn sendmsg(
        &mut self,
        fd: i32,
        iov: &[usize],
        flags: i32,
        to: Option<SocketAddrV4>,
    ) -> SysResult {
        self.send_iov(fd, iov.iter().sum(), iov, flags, to, None)
    }

    fn shutdown(&mut self, fd: i32, how: i32) -> SysResult {
        let id = self.id(fd)?;
        let how = match how {
            0 => Shutdown::Read,
            1 => Shutdown::Write,
            2 => Shutdown::Both,
            _ => return Err(SysError::Errno(Errno::EINVAL)),
        };
        let r = self.stack.tcp_shutdown(self.instant(), id, how);
        self.after_call();
        r.map_err(errno)?;
        Ok(0)
    }

    fn close(&mut self, fd: i32) -> SysResult {
        if self.epolls.remove(&fd).is_some() || self.vfs.close(fd) {
            return Ok(0);
        }
        let id = self.id(fd)?;
        self.fds.remove(&fd);
        // Closing the file takes it off every epoll.
        for ep in self.epolls.values_mut() {
            ep.forget(id);
        }
        let r = self.stack.tcp_close(self.instant(), id);
        self.after_call();
        r.map_err(errno)?;
        Ok(0)
    }

    fn setsockopt(&mut self, fd: i32, level: i32, optname: OptName, value: &OptValue) -> SysResult {
        let id = self.id(fd)?;
        let opt = Self::tcp_opt(level, optname, value)?;
        let r = self.stack.tcp_setsockopt(id, opt);
        self.after_call();
        r.map_err(errno)?;
        Ok(0)
    }

    fn getsockopt(&mut self, fd: i32, level: i32, optname: OptName) -> SysResult<OptValue> {
        let id = self.id(fd)?;
        match (level, optname) {
            (SOL_SOCKET, 4) => {
                let e = self.stack.tcp_take_error(id).map_err(errno)?;
                return Ok(OptValue::Int(e.map_or(0, |e| errno_number(e.name()))));
            }
            (SOL_SOCKET, 3) => return Ok(OptValue::Int(1)),
            _ => {}
        }
        let probe = match Self::tcp_opt(level, optname, &OptValue::Int(0)) {
            Ok(o) => o,
            Err(SysError::Errno(_)) => match (level, optname) {
                (SOL_TCP, 13) => TcpOpt::Congestion(String::new()),
                (SOL_SOCKET, 13) => TcpOpt::Linger(None),
                _ => return Err(unsupported(opt_name(level, optname))),
            },
            Err(e) => return Err(e),
        };
        let v = self.stack.tcp_getsockopt(id, probe).map_err(errno)?;
        let b = |x: bool| OptValue::Int(i64::from(x));
        let n = |x: u64| OptValue::Int(i64::try_from(x).unwrap_or(i64::MAX));
        Ok(match v {
            TcpOpt::NoDelay(x)
            | TcpOpt::Cork(x)
            | TcpOpt::KeepAlive(x)
            | TcpOpt::ReuseAddr(x)
            | TcpOpt::ReusePort(x)
            | TcpOpt::Inq(x)
            | TcpOpt::ZeroCopy(x)
            | TcpOpt::FastOpenConnect(x)
            | TcpOpt::FastOpenNoCookie(x)
            | TcpOpt::OobInline(x)
            | TcpOpt::FreeBind(x) => b(x),
            TcpOpt::FastOpen(x) => n(x.into()),
            TcpOpt::FastOpenKey(k) => {
                OptValue::Str(k.iter().map(|b| format!("\\x{b:02x}")).collect())
            }
            TcpOpt::MaxSeg(x) => n(x.into()),
            TcpOpt::KeepIdle(x)
            | TcpOpt::KeepIntvl(x)
            | TcpOpt::KeepCnt(x)
            | TcpOpt::UserTimeout(x)
            | TcpOpt::NotSentLowat(x)
            | TcpOpt::Mark(x)
            | TcpOpt::SynCnt(x)
            | TcpOpt::Timestamping(x)
            | TcpOpt::Priority(x) => n(x.into()),
            TcpOpt::RcvBuf(x) | TcpOpt::SndBuf(x) => n(x as u64),
            TcpOpt::Linger(l) => OptValue::Linger {
                onoff: i32::from(l.is_some()),
                linger: l.map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX)),
            },
            TcpOpt::Congestion(s) => OptValue::Str(s),
            TcpOpt::Ttl(x) | TcpOpt::Tos(x) => n(x.into()),
            TcpOpt::MtuDiscover(m) => n(match m {
                PmtuDisc::Dont => 0,
                PmtuDisc::Want => 1,
                PmtuDisc::Do => 2,
                PmtuDisc::Probe => 3,
            }),
            TcpOpt::BindToDevice(d) => n(d.map_or(0, |i| u64::from(i.0))),
        })
    }

    fn tcp_info(&mut self, fd: i32) -> SysResult<TcpInfo> {
        let id = self.id(fd)?;
        let ni = self.stack.tcp_info(id).map_err(errno)?;
        let mut info = TcpInfo::default();
        let mut have = Vec::new();
        for (name, v) in ni.fields() {
            if info.set(name, v) {
                have.push(name);
            }
        }
        info.untracked = TcpInfo::FIELDS
            .iter()
            .copied()
            .filter(|f| !have.contains(f))
            .collect();
        Ok(info)
    }

    fn fcntl(&mut self, fd: i32, cmd: i32, arg: i64) -> SysResult {
        if self.vfs.has(fd) {
            return self.vfs.fcntl(fd, cmd, arg);
        }
        if self.epolls.contains_key(&fd) {
            // An epoll descriptor never blocks anything the runner does.
            return match cmd {
                1..=4 => Ok(if cmd == 3 { O_RDWR } else { 0 }),
                _ => Err(unsupported(format!("fcntl command {cmd}"))),
            };
        }
        self.fd(fd)?;
        match cmd {
            // F_GETFD / F_SETFD: no close-on-exec to speak of.
            1 | 2 => Ok(0),
            3 => Ok(O_RDWR | if self.fd(fd)?.nonblock { O_NONBLOCK } else { 0 }),
            4 => {
                if let Some(f) = self.fds.get_mut(&fd) {
                    f.nonblock = arg & O_NONBLOCK != 0;
                }
                Ok(0)
            }
            _ => Err(unsupported(format!("fcntl command {cmd}"))),
        }
    }

    fn poll(&mut self, fds: &[PollFd]) -> SysResult<Vec<i16>> {
        Ok(fds
            .iter()
            .map(|p| {
                let Some(f) = self.fds.get(&p.fd) else {
                    return if self.epolls.contains_key(&p.fd) {
                        0
                    } else if let Some(m) = self.vfs.poll(p.fd) {
                        m & (p.events | POLLERR | POLLHUP)
                    } else {
                        POLLNVAL
                    };
                };
                let ev = self.stack.tcp_poll_wait(f.id);
                let mut m = 0i16;
                if ev.readable {
                    m |= POLLIN | POLLRDNORM;
                }
                if ev.writable {
                    m |= POLLOUT | POLLWRNORM;
                }
                if ev.rdhup {
                    m |= POLLRDHUP;
                }
                if ev.hup {
                    m |= POLLHUP;
                }
                if ev.err {
                    m |= POLLERR;
                }
                if ev.pri {
                    m |= POLLPRI;
                }
                m & (p.events | POLLERR | POLLHUP)
            })
            .collect())
    }

    fn ioctl(&mut self, fd: i32, request: u64) -> SysResult {
        let id = self.id(fd)?;
        let v = match request {
            SIOCINQ => self.stack.tcp_inq(id),
            SIOCOUTQ => self.stack.tcp_outq(id),
            SIOCOUTQNSD => self.stack.tcp_outq_notsent(id),
            SIOCATMARK => self.stack.tcp_sockatmark(id).map(usize::from),
            r => return Err(unsupported(format!("ioctl {r:#x}"))),
        };
        Ok(v.map_err(errno)? as i64)
    }

    fn recvmsg(&mut self, fd: i32, len: usize, flags: i32) -> SysResult<RecvMsg> {
        let id = self.id(fd)?;
        if flags & MSG_ERRQUEUE != 0 {
            // ip_recv_error: the oldest entry, never waiting: the
            // timestamp (if any, and reported), then the extended error.
            let m = self.stack.tcp_recv_errqueue(id, len).map_err(errno)?;
            self.after_call();
            let mut control = Vec::new();
            if let Some(t) = m.tstamp {
                let ns = i64::try_from(t.as_nanos()).unwrap_or(i64::MAX);
                control.push(Cmsg {
                    level: SOL_SOCKET,
                    ty: SCM_TIMESTAMPING,
                    data: CmsgData::Timestamping {
                        sec: ns / 1_000_000_000,
                        nsec: ns % 1_000_000_000,
                    },
                });
            }
            control.push(Cmsg {
                level: SOL_IP,
                ty: IP_RECVERR,
                data: CmsgData::ExtErr(m.ee),
            });
            return Ok(RecvMsg {
                len: m.data.len() as i64,
                flags: MSG_ERRQUEUE | if m.trunc() { MSG_TRUNC } else { 0 },
                control,
            });
        }
        if flags & MSG_OOB != 0 {
            return self.recv_oob(fd, len, flags);
        }
        let n = self.recv(fd, len, flags)?;
        let control = match self.stack.tcp_cm_inq(id).map_err(errno)? {
            Some(inq) => vec![Cmsg {
                level: SOL_TCP,
                ty: TCP_CM_INQ,
                data: CmsgData::Int(inq.into()),
            }],
            None => Vec::new(),
        };
        Ok(RecvMsg {
            len: n,
            flags: 0,
            control,
        })
    }

    fn epoll_create(&mut self, size: i32) -> SysResult {
        if size <= 0 {
            return Err(SysError::Errno(Errno::EINVAL));
        }
        let fd = self.alloc_fd();
        self.epolls.insert(fd, Epoll::new());
        Ok(fd.into())
    }

    fn epoll_ctl(&mut self, epfd: i32, op: i32, fd: i32, ev: Option<EpollEvent>) -> SysResult {
        if !self.epolls.contains_key(&epfd) {
            return Err(SysError::Errno(if self.fds.contains_key(&epfd) {
                Errno::EINVAL
            } else {
                Errno::EBADF
            }));
        }
        if fd == epfd {
            return Err(SysError::Errno(Errno::EINVAL));
        }
        if self.epolls.contains_key(&fd) {
            return Err(unsupported("epoll watching an epoll descriptor"));
        }
        let id = self.id(fd)?;
        let op = match op {
            1 => EpollOp::Add,
            2 => EpollOp::Del,
            3 => EpollOp::Mod,
            _ => return Err(SysError::Errno(Errno::EINVAL)),
        };
        let ev = match (op, ev) {
            (_, Some(e)) => netpath::epoll::EpollEvent {
                events: e.events,
                data: e.data,
            },
            (EpollOp::Del, None) => netpath::epoll::EpollEvent { events: 0, data: 0 },
            (_, None) => return Err(SysError::Errno(Errno::EFAULT)),
        };
        let Some(ep) = self.epolls.get_mut(&epfd) else {
            return Err(SysError::Errno(Errno::EBADF));
        };
        let r = ep.ctl(&mut self.stack, op, id, ev);
        self.after_call();
        r.map_err(errno)?;
        Ok(0)
    }

    fn epoll_wait(&mut self, epfd: i32, maxevents: i32) -> SysResult<Vec<EpollEvent>> {
        let Some(ep) = self.epolls.get_mut(&epfd) else {
            return Err(SysError::Errno(if self.fds.contains_key(&epfd) {
                Errno::EINVAL
            } else {
                Errno::EBADF
            }));
        };
        let max = usize::try_from(maxevents).unwrap_or(0);
        let r = ep.wait(&mut self.stack, max);
        self.after_call();
        Ok(r.map_err(errno)?
            .into_iter()
            .map(|e| EpollEvent {
                events: e.events,
                data: e.data,
            })
            .collect())
    }

    fn remove_file(&mut self, path: &str) -> Result<(), Unsupported> {
        self.vfs.fs.remove(path);
        Ok(())
    }

    fn write_zeros(&mut self, path: &str, len: u64) -> Result<(), Unsupported> {
        self.vfs
            .fs
            .write_zeros(path, len)
            .map_err(|e| Unsupported(format!("a file of {len} bytes ({e})")))
    }

    fn open(&mut self, path: &str, flags: i32) -> SysResult {
        self.open_file(path, flags)
    }

    fn sendfile(
        &mut self,
        out_fd: i32,
        in_fd: i32,
        offset: Option<&mut i64>,
        count: usize,
    ) -> SysResult {
        self.sendfile_to(out_fd, in_fd, offset, count)
    }

    fn pipe(&mut self) -> SysResult<(i32, i32)> {
        Ok(self.pipe_pair())
    }

    fn splice(&mut self, call: crate::run::SpliceCall<'_>) -> SysResult {
        self.splice_fds(call)
    }
}
