//! The [`PktHost`] trait: what a stack under test implements so that the
//! runner can drive it (virtual clock, packets in and out, socket calls).
//!
//! Every socket call is *non-blocking* at this interface. When a call made on
//! a descriptor the script has left blocking cannot complete yet, the host
//! returns [`SysError::WouldBlock`]; the runner then advances the virtual
//! clock (to [`PktHost::next_event_ns`], bounded by the script's timing) and
//! calls again with the same arguments. The host must treat that repeat as
//! the continuation of the same call: e.g. a blocking `connect` returns
//! `WouldBlock` while the handshake runs, then `Ok(0)` (or the error) once it
//! has finished. On a descriptor the script made non-blocking the host
//! returns the errno Linux gives instead (`EAGAIN`, `EINPROGRESS`).

use std::fmt;
use std::net::SocketAddrV4;

/// A Linux errno by name (`Errno::EAGAIN`, or `Errno("EPIPE")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub &'static str);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(stringify!($name));
            )*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESPIPE,
    EBADF,
    EAGAIN,
    EFAULT,
    EINVAL,
    EPIPE,
    ENOMSG,
    EOPNOTSUPP,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETUNREACH,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ENOTSOCK,
    ETIMEDOUT,
    ECONNREFUSED,
    EHOSTUNREACH,
    EALREADY,
    EINPROGRESS,
    EMSGSIZE,
    ENOPROTOOPT,
    EDESTADDRREQ,
    EACCES,
);

impl Errno {
    /// The name, e.g. `"EAGAIN"`.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Why a socket call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysError {
    /// The call failed with this errno (the script sees `-1 ERRNO`).
    Errno(Errno),
    /// The descriptor is blocking and the call cannot complete yet: the
    /// runner advances time and calls again (see the module docs).
    WouldBlock,
    /// The host does not implement this (call, option, flag...): the script
    /// is reported as unsupported, not failed.
    Unsupported(String),
}

impl From<Errno> for SysError {
    fn from(e: Errno) -> Self {
        SysError::Errno(e)
    }
}

/// The result of a socket call: the return value (`>= 0`) or why not.
pub type SysResult<T = i64> = Result<T, SysError>;

/// The host cannot apply this sysctl (unknown name or value); the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// A socket option value for `setsockopt` / from `getsockopt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptValue {
    /// An integer option (`[1]` or `1` in scripts).
    Int(i64),
    /// `SO_LINGER`'s `{onoff=1, linger=0}`.
    Linger {
        /// `l_onoff`.
        onoff: i32,
        /// `l_linger` (seconds).
        linger: i32,
    },
    /// A string option (`TCP_CONGESTION`, `"cubic"`).
    Str(String),
}

/// Linux option levels and names used by scripts, as numbers
/// (`SOL_SOCKET` = 1, `SO_SNDBUF` = 7, `SOL_TCP` = 6, `TCP_MAXSEG` = 2...).
/// The runner passes the numbers; [`crate::run::consts::name`] gives a host
/// the name back for error messages.
pub type OptName = i32;

/// `struct pollfd` without the fd's revents: what to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollFd {
    /// Host descriptor.
    pub fd: i32,
    /// `POLLIN`/`POLLOUT`/... (Linux values).
    pub events: i16,
}

/// A control message (`recvmsg`'s `msg_control` entries, e.g.
/// `{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=9000}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmsg {
    /// `cmsg_level`.
    pub level: i32,
    /// `cmsg_type`.
    pub ty: i32,
    /// `cmsg_data`.
    pub data: CmsgData,
}

/// The payload of a control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsgData {
    /// An integer (`TCP_CM_INQ`).
    Int(i64),
    /// `struct sock_extended_err` (`IP_RECVERR` from the error queue).
    ExtErr(SockExtendedErr),
    /// `struct scm_timestamping`'s software time, `ts[0]`
    /// (`SCM_TIMESTAMPING`: `{scm_sec=0, scm_nsec=20000000}`). A host
    /// gives it on its own clock (that of [`PktHost::now_ns`]); a script's
    /// is relative to the script's start, and checked within the timing
    /// tolerance (not at all when 0, as packetdrill).
    Timestamping {
        /// `tv_sec`.
        sec: i64,
        /// `tv_nsec`.
        nsec: i64,
    },
}

/// `struct sock_extended_err` (`ee_origin`: `SO_EE_ORIGIN_TIMESTAMPING` 4,
/// `SO_EE_ORIGIN_ZEROCOPY` 5; `ee_info` of a timestamp: `SCM_TSTAMP_SND` 0,
/// `SCM_TSTAMP_SCHED` 1, `SCM_TSTAMP_ACK` 2): netpath's own.
pub use netpath::tcp::errqueue::SockExtendedErr;

/// What `recvmsg` returns beside errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecvMsg {
    /// The return value (bytes read).
    pub len: i64,
    /// `msg_flags` on return (`MSG_ERRQUEUE` for the error queue).
    pub flags: i32,
    /// `msg_control`.
    pub control: Vec<Cmsg>,
}

/// An `epoll_event`: event bits and the caller's data word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollEvent {
    /// `events`.
    pub events: u32,
    /// `data` (as given to `epoll_ctl`).
    pub data: u64,
}

macro_rules! tcp_info {
    ($($field:ident),* $(,)?) => {
        /// `struct tcp_info` (`getsockopt(TCP_INFO)`), with Linux's field
        /// names and units (times in microseconds). Fields a host does not
        /// track stay 0, or are listed in `untracked` so that a script
        /// reading them is reported unsupported rather than failed.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub struct TcpInfo {
            $(pub $field: u64,)*
            /// Fields the host does not have ([`TcpInfo::get`] gives `None`).
            pub untracked: Vec<&'static str>,
        }

        impl TcpInfo {
            /// Every field name, as Python blocks spell it.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// A field by name (`"tcpi_snd_cwnd"`).
            pub fn get(&self, name: &str) -> Option<u64> {
                if self.untracked.iter().any(|u| *u == name) {
                    return None;
                }
                match name {
                    $(stringify!($field) => Some(self.$field),)*
                    _ => None,
                }
            }

            /// Sets a field by name; `false` for an unknown name.
            pub fn set(&mut self, name: &str, value: u64) -> bool {
                match name {
                    $(stringify!($field) => self.$field = value,)*
                    _ => return false,
                }
                true
            }
        }
    };
}

tcp_info!(
    tcpi_state,
    tcpi_ca_state,
    tcpi_retransmits,
    tcpi_probes,
    tcpi_backoff,
    tcpi_options,
    tcpi_snd_wscale,
    tcpi_rcv_wscale,
    tcpi_delivery_rate_app_limited,
    tcpi_rto,
    tcpi_ato,
    tcpi_snd_mss,
    tcpi_rcv_mss,
    tcpi_unacked,
    tcpi_sacked,
    tcpi_lost,
    tcpi_retrans,
    tcpi_fackets,
    tcpi_last_data_sent,
    tcpi_last_ack_sent,
    tcpi_last_data_recv,
    tcpi_last_ack_recv,
    tcpi_pmtu,
    tcpi_rcv_ssthresh,
    tcpi_rtt,
    tcpi_rttvar,
    tcpi_snd_ssthresh,
    tcpi_snd_cwnd,
    tcpi_advmss,
    tcpi_reordering,
    tcpi_rcv_rtt,
    tcpi_rcv_space,
    tcpi_total_retrans,
    tcpi_pacing_rate,
    tcpi_max_pacing_rate,
    tcpi_bytes_acked,
    tcpi_bytes_received,
    tcpi_segs_out,
    tcpi_segs_in,
    tcpi_notsent_bytes,
    tcpi_min_rtt,
    tcpi_data_segs_in,
    tcpi_data_segs_out,
    tcpi_delivery_rate,
    tcpi_busy_time,
    tcpi_rwnd_limited,
    tcpi_sndbuf_limited,
    tcpi_delivered,
    tcpi_delivered_ce,
    tcpi_bytes_sent,
    tcpi_bytes_retrans,
    tcpi_dsack_dups,
    tcpi_reord_seen,
    tcpi_rcv_ooopack,
    tcpi_snd_wnd,
    tcpi_fastopen_client_fail,
);

/// A TCP/IPv4 stack under test, driven by the packetdrill runner.
///
/// The host is configured by its adapter with the addresses of
/// [`crate::run::RunOptions`] (`local_ip` is the stack's address, packets
/// to and from `remote_ip` go through [`PktHost::inject`] and
/// [`PktHost::take_sent`]). Descriptors are the host's own numbers; the
/// runner maps the script's numbers onto them. Flags and constants are
/// Linux's numeric values.
pub trait PktHost {
    // --- virtual time and packets ---

    /// The virtual clock, in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Runs the stack (timers, queued work) up to virtual time `ns`; never
    /// goes backwards.
    fn advance_to(&mut self, ns: u64);
    /// When the stack next has something to do on its own (its earliest
    /// timer), if it knows. The runner uses it to advance in small steps
    /// while waiting for a packet or a blocking call; `None` makes it step
    /// by a fixed 1 ms.
    fn next_event_ns(&self) -> Option<u64> {
        None
    }
    /// Delivers one packet from the remote end (IPv4 header + TCP or ICMP,
    /// checksums correct) at the current time.
    fn inject(&mut self, ipv4_packet: &[u8]);
    /// The IPv4 packets the stack sent since the last call, with their send
    /// times (ns), oldest first.
    fn take_sent(&mut self) -> Vec<(u64, Vec<u8>)>;
    /// Applies a sysctl (`net.ipv4.tcp_sack`, `"0"`).
    fn sysctl(&mut self, name: &str, value: &str) -> Result<(), Unsupported>;
    /// Replaces the test device's root qdisc with a packet FIFO of `limit`
    /// packets (`None`: the device's tx queue length).
    fn root_pfifo(&mut self, limit: Option<u32>) -> Result<(), Unsupported> {
        let _ = limit;
        Err(Unsupported("tc qdisc on this host".into()))
    }
    /// `ethtool -K DEV gso off`: TCP sends one skb per segment. A host that
    /// has no GSO has nothing to turn off.
    fn gso_off(&mut self) -> Result<(), Unsupported> {
        Ok(())
    }
    /// Sets the route to `r.dst` out of the test device, with its metrics.
    fn route(&mut self, r: &super::shell::RouteSpec) -> Result<(), Unsupported> {
        let _ = r;
        Err(Unsupported("ip route on this host".into()))
    }
    /// `write`/`send`/`sendto` of `len` bytes from a NULL buffer: what
    /// Linux does when copying from the user's memory faults.
    fn send_null_buf(
        &mut self,
        _fd: i32,
        _len: usize,
        _flags: i32,
        _to: Option<SocketAddrV4>,
    ) -> SysResult {
        Err(SysError::Unsupported(
            "a NULL buffer pointer (EFAULT)".into(),
        ))
    }
    /// `read`/`recv` into a NULL buffer, likewise.
    fn recv_null_buf(&mut self, _fd: i32, _len: usize, _flags: i32) -> SysResult {
        Err(SysError::Unsupported(
            "a NULL buffer pointer (EFAULT)".into(),
        ))
    }
    /// The SNMP counters as `nstat` names them (`TcpExtListenDrops`...),
    /// if the host has them.
    fn counters(&self) -> Option<Vec<(String, u64)>> {
        None
    }
    /// `ip tcp_metrics flush all`: forgets what the stack learned per
    /// destination (Fast Open cookies among it).
    fn flush_tcp_metrics(&mut self) -> Result<(), Unsupported> {
        Err(Unsupported("ip tcp_metrics flush".into()))
    }

    // --- socket calls (see the module docs for blocking) ---

    /// `socket(domain, type, protocol)`: the new descriptor. `ty` may carry
    /// `SOCK_NONBLOCK`.
    fn socket(&mut self, domain: i32, ty: i32, protocol: i32) -> SysResult;
    /// `bind(fd, addr)`.
    fn bind(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult;
    /// `listen(fd, backlog)`.
    fn listen(&mut self, fd: i32, backlog: i32) -> SysResult;
    /// `accept(fd)`: the new descriptor.
    fn accept(&mut self, fd: i32) -> SysResult;
    /// `connect(fd, addr)`.
    fn connect(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult;
    /// `recv(fd, len, flags)` (`read` has flags 0; `MSG_PEEK`,
    /// `MSG_DONTWAIT` as Linux values): the bytes read (contents are not
    /// checked by scripts).
    fn recv(&mut self, fd: i32, len: usize, flags: i32) -> SysResult;
    /// `send(fd, len, flags)` / `sendto` (with `to`) / `sendmsg` (the iov
    /// lengths summed): sends `len` bytes of any content; the count sent.
    fn send(&mut self, fd: i32, len: usize, flags: i32, to: Option<SocketAddrV4>) -> SysResult;
    /// `shutdown(fd, how)` (`SHUT_RD` 0, `SHUT_WR` 1, `SHUT_RDWR` 2).
    fn shutdown(&mut self, fd: i32, how: i32) -> SysResult;
    /// `close(fd)`.
    fn close(&mut self, fd: i32) -> SysResult;
    /// `setsockopt(fd, level, optname, value)`.
    fn setsockopt(&mut self, fd: i32, level: i32, optname: OptName, value: &OptValue) -> SysResult;
    /// `getsockopt(fd, level, optname)`: the value (not for `TCP_INFO`).
    fn getsockopt(&mut self, fd: i32, level: i32, optname: OptName) -> SysResult<OptValue>;
    /// `getsockopt(fd, SOL_TCP, TCP_INFO)`.
    fn tcp_info(&mut self, fd: i32) -> SysResult<TcpInfo>;
    /// `fcntl(fd, cmd, arg)`: `F_GETFL` (3) returns the flags, `F_SETFL`
    /// (4) sets them (`O_NONBLOCK` = 0x800).
    fn fcntl(&mut self, fd: i32, cmd: i32, arg: i64) -> SysResult;
    /// `poll` without waiting: the revents of each entry, in order (the
    /// runner does the waiting).
    fn poll(&mut self, fds: &[PollFd]) -> SysResult<Vec<i16>>;
    /// `ioctl(fd, request)` for the integer-valued requests (`SIOCINQ`
    /// 0x541B, `SIOCOUTQ` 0x5411): the value.
    fn ioctl(&mut self, fd: i32, request: u64) -> SysResult;

    /// `recvmsg(fd, len, flags)`: like [`PktHost::recv`], with the flags
    /// and control messages the call returns (by default none).
    fn recvmsg(&mut self, fd: i32, len: usize, flags: i32) -> SysResult<RecvMsg> {
        self.recv(fd, len, flags).map(|len| RecvMsg {
            len,
            ..RecvMsg::default()
        })
    }
    /// `sendmsg(fd, iov, flags, to)` with the iovec's element lengths: by
    /// default [`PktHost::send`] of their sum.
    fn sendmsg(
        &mut self,
        fd: i32,
        iov: &[usize],
        flags: i32,
        to: Option<SocketAddrV4>,
    ) -> SysResult {
        self.send(fd, iov.iter().sum(), flags, to)
    }
    /// `epoll_create(size)`: a new epoll descriptor.
    fn epoll_create(&mut self, _size: i32) -> SysResult {
        Err(SysError::Unsupported("epoll".into()))
    }
    /// `epoll_ctl(epfd, op, fd, event)` (`EPOLL_CTL_ADD` 1, `DEL` 2, `MOD`
    /// 3).
    fn epoll_ctl(&mut self, _epfd: i32, _op: i32, _fd: i32, _ev: Option<EpollEvent>) -> SysResult {
        Err(SysError::Unsupported("epoll".into()))
    }
    /// `epoll_wait` without waiting: up to `maxevents` events (the runner
    /// does the waiting).
    fn epoll_wait(&mut self, _epfd: i32, _maxevents: i32) -> SysResult<Vec<EpollEvent>> {
        Err(SysError::Unsupported("epoll".into()))
    }

    // --- files and pipes: the host's own, in memory (a runner never
    // touches the real filesystem) ---

    /// `rm -f PATH`.
    fn remove_file(&mut self, _path: &str) -> Result<(), Unsupported> {
        Err(Unsupported("files on this host".into()))
    }
    /// `dd bs=B count=N if=/dev/zero of=PATH`: PATH (created or truncated)
    /// holds `len` zero bytes.
    fn write_zeros(&mut self, _path: &str, _len: u64) -> Result<(), Unsupported> {
        Err(Unsupported("files on this host".into()))
    }
    /// `open(path, flags)`: the new descriptor (numbered with the sockets:
    /// the lowest free one, as Linux).
    fn open(&mut self, _path: &str, _flags: i32) -> SysResult {
        Err(SysError::Unsupported("open".into()))
    }
    /// `sendfile(out_fd, in_fd, offset, count)`: bytes sent; `offset` (the
    /// caller's `off_t`, `None` for NULL) is moved past them as Linux does.
    fn sendfile(
        &mut self,
        _out_fd: i32,
        _in_fd: i32,
        _offset: Option<&mut i64>,
        _count: usize,
    ) -> SysResult {
        Err(SysError::Unsupported("sendfile".into()))
    }
    /// `pipe()`: the read end and the write end.
    fn pipe(&mut self) -> SysResult<(i32, i32)> {
        Err(SysError::Unsupported("pipe".into()))
    }
    /// `splice(fd_in, off_in, fd_out, off_out, len, flags)`: bytes moved.
    fn splice(&mut self, _call: SpliceCall<'_>) -> SysResult {
        Err(SysError::Unsupported("splice".into()))
    }
}

/// The arguments of `splice` (host descriptors).
#[derive(Debug)]
pub struct SpliceCall<'a> {
    /// `fd_in`.
    pub fd_in: i32,
    /// `off_in` (`None` for NULL).
    pub off_in: Option<&'a mut i64>,
    /// `fd_out`.
    pub fd_out: i32,
    /// `off_out` (`None` for NULL).
    pub off_out: Option<&'a mut i64>,
    /// `len`.
    pub len: usize,
    /// `SPLICE_F_*`.
    pub flags: u32,
}
