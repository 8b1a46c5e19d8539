//! The socket layer (`net/socket.c`, `inet_hashtables.c`): errno-named
//! errors and socket handles. Seed ingress step 12 (the application reads)
//! and egress step 1 (the application writes) run through here. UDP lives in
//! [`crate::udp`]; TCP joins it.

pub mod flowhash;
pub mod table;
pub mod wait;
use core::fmt;

/// Errors as the application sees them, named like Linux's errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    EACCES,
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAGAIN,
    EALREADY,
    EBADF,
    ECONNABORTED,
    ECONNREFUSED,
    ECONNRESET,
    EDESTADDRREQ,
    EEXIST,
    EHOSTUNREACH,
    EINPROGRESS,
    EINVAL,
    EISCONN,
    EMSGSIZE,
    ENETUNREACH,
    ENOBUFS,
    ENOENT,
    ENOTCONN,
    EOPNOTSUPP,
    EPERM,
    EPIPE,
    ETIMEDOUT,
}

impl Errno {
    pub fn name(self) -> &'static str {
        match self {
            Errno::EACCES => "EACCES",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Errno::EAGAIN => "EAGAIN",
            Errno::EALREADY => "EALREADY",
            Errno::EBADF => "EBADF",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::EDESTADDRREQ => "EDESTADDRREQ",
            Errno::EEXIST => "EEXIST",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::EINPROGRESS => "EINPROGRESS",
            Errno::EINVAL => "EINVAL",
            Errno::EISCONN => "EISCONN",
            Errno::EMSGSIZE => "EMSGSIZE",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::ENOBUFS => "ENOBUFS",
            Errno::ENOENT => "ENOENT",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EPERM => "EPERM",
            Errno::EPIPE => "EPIPE",
            Errno::ETIMEDOUT => "ETIMEDOUT",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for Errno {}

impl From<crate::ipv4::output::SendError> for Errno {
    fn from(e: crate::ipv4::output::SendError) -> Errno {
        use crate::ipv4::output::SendError;
        use crate::ipv4::route::RouteError;
        match e {
            SendError::Route(RouteError::NetUnreachable) => Errno::ENETUNREACH,
            SendError::Route(RouteError::HostUnreachable) => Errno::EHOSTUNREACH,
            SendError::Route(RouteError::Prohibited) => Errno::EACCES,
            SendError::Route(RouteError::Blackhole | RouteError::Invalid) | SendError::Invalid => {
                Errno::EINVAL
            }
            SendError::MsgSize { .. } => Errno::EMSGSIZE,
            SendError::NoBufs => Errno::ENOBUFS,
            SendError::NotPermitted => Errno::EPERM,
        }
    }
}

/// A socket handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockId(pub(crate) u32);

/// `net.ipv4.ip_local_port_range`.
pub const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 32768..=60999;

/// `net.core.rmem_default`: a socket's receive buffer.
pub const RMEM_DEFAULT: usize = 212_992;
