//! ICMPv4 (RFC 792, RFC 1191, RFC 1812).
//!
//! Seed stage: the ICMP errors of `ip_rcv` / `ip_forward` (time exceeded when
//! the TTL runs out, fragmentation needed when DF meets a smaller MTU,
//! destination/port unreachable and admin-prohibited from local delivery and
//! netfilter rejects, parameter problem for bad IP headers) and the echo
//! request/reply that `ping` uses.
//!
//! An [`Icmpv4Packet`] is a view over one whole ICMP message (the IP payload):
//! ICMP has no length field, and the checksum covers every byte of the
//! buffer. [`Icmpv4Repr`] decodes the types the stack generates; anything it
//! does not model (source quench, timestamps, router discovery, unknown codes,
//! or non-zero "unused" bytes) parses as [`Icmpv4Repr::Other`], which keeps
//! the raw header so that emitting it reproduces the original bytes.

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{check_len, Layer, Result, WireError};

/// IP protocol number of ICMP.
pub const PROTOCOL: u8 = 1;
/// Length of the fixed ICMP header: type, code, checksum, rest-of-header.
pub const HEADER_LEN: usize = 8;

/// ICMP message type numbers.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const ROUTER_ADVERT: u8 = 9;
    pub const ROUTER_SOLICIT: u8 = 10;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;

    /// True for the error types, whose data is the quoted offending datagram.
    pub const fn is_error(t: u8) -> bool {
        matches!(
            t,
            DST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter
    /// than 8 bytes. Prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Icmpv4Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        check_len(Layer::Icmpv4, self.buffer.as_ref().len(), HEADER_LEN)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Bytes 4..8, whose meaning depends on the type.
    pub fn rest_of_header(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[4], b[5], b[6], b[7]]
    }

    /// Echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    /// Next-hop MTU of "fragmentation needed" (RFC 1191: bytes 6..8).
    pub fn next_hop_mtu(&self) -> u16 {
        self.echo_seq_no()
    }

    /// Gateway address of a redirect (bytes 4..8).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.rest_of_header())
    }

    /// Pointer of a parameter problem (byte 4).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// Everything after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// For error messages, the quoted offending datagram (its IP header and
    /// the start of its payload); `None` for other types.
    pub fn quoted_datagram(&self) -> Option<&[u8]> {
        msg_type::is_error(self.msg_type()).then(|| self.data())
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_rest_of_header(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v);
    }

    pub fn set_echo_ident(&mut self, v: u16) {
        self.buffer.as_mut()[4..6].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.buffer.as_mut()[6..8].copy_from_slice(&v.to_be_bytes());
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// Destination unreachable codes (RFC 792, RFC 1122, RFC 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0
    NetUnreachable,
    /// 1
    HostUnreachable,
    /// 2
    ProtoUnreachable,
    /// 3
    PortUnreachable,
    /// 4: DF set but the next hop's MTU is smaller (RFC 1191 carries it).
    FragNeeded { next_hop_mtu: u16 },
    /// 5
    SrcRouteFailed,
    /// 6
    NetUnknown,
    /// 7
    HostUnknown,
    /// 8
    SrcHostIsolated,
    /// 9
    NetProhibited,
    /// 10
    HostProhibited,
    /// 11
    NetUnreachableTos,
    /// 12
    HostUnreachableTos,
    /// 13: administratively prohibited (nft `reject with icmp admin-prohibited`).
    CommProhibited,
    /// 14
    HostPrecedenceViolation,
    /// 15
    PrecedenceCutoff,
}

impl DstUnreachable {
    /// Decodes `code`; `next_hop_mtu` is used only for code 4.
    pub const fn from_code(code: u8, next_hop_mtu: u16) -> Option<Self> {
        use DstUnreachable::*;
        Some(match code {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragNeeded { next_hop_mtu },
            5 => SrcRouteFailed,
            6 => NetUnknown,
            7 => HostUnknown,
            8 => SrcHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachableTos,
            12 => HostUnreachableTos,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            _ => return None,
        })
    }

    pub const fn code(&self) -> u8 {
        use DstUnreachable::*;
        match self {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragNeeded { .. } => 4,
            SrcRouteFailed => 5,
            NetUnknown => 6,
            HostUnknown => 7,
            SrcHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachableTos => 11,
            HostUnreachableTos => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
        }
    }
}

/// Time exceeded codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: TTL reached zero in transit (`ip_forward`).
    TtlExpired,
    /// 1: fragment reassembly timed out.
    FragReassembly,
}

/// Redirect codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Redirect {
    /// 0
    Net,
    /// 1
    Host,
    /// 2
    TosNet,
    /// 3
    TosHost,
}

impl Redirect {
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Redirect::Net,
            1 => Redirect::Host,
            2 => Redirect::TosNet,
            3 => Redirect::TosHost,
            _ => return None,
        })
    }

    pub const fn code(&self) -> u8 {
        match self {
            Redirect::Net => 0,
            Redirect::Host => 1,
            Redirect::TosNet => 2,
            Redirect::TosHost => 3,
        }
    }
}

/// A decoded ICMPv4 message. `data_len` is the length of everything after
/// the 8-byte header (echo data, or the quoted datagram of an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data_len: usize,
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data_len: usize,
    },
    DstUnreachable {
        reason: DstUnreachable,
        data_len: usize,
    },
    TimeExceeded {
        reason: TimeExceeded,
        data_len: usize,
    },
    Redirect {
        code: Redirect,
        gateway: Ipv4Addr,
        data_len: usize,
    },
    /// Parameter problem: code 0 (pointer), 1 (missing option), 2 (bad length).
    ParamProblem {
        code: u8,
        pointer: u8,
        data_len: usize,
    },
    /// Any other type/code (source quench, timestamp, router discovery, …),
    /// or a known type whose unused bytes are not zero: the raw header.
    Other {
        msg_type: u8,
        code: u8,
        rest: [u8; 4],
        data_len: usize,
    },
}

impl Icmpv4Repr {
    /// Parses `packet`, verifying its checksum.
    pub fn parse<T: AsRef<[u8]>>(packet: &Icmpv4Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(WireError::checksum(Layer::Icmpv4));
        }
        Self::parse_unverified(packet)
    }

    /// Parses `packet` without checking its checksum (e.g. a message whose
    /// tail was cut by the capture snaplen, or already verified).
    pub fn parse_unverified<T: AsRef<[u8]>>(packet: &Icmpv4Packet<T>) -> Result<Self> {
        use msg_type::*;
        packet.check_len()?;
        let data_len = packet.data().len();
        let t = packet.msg_type();
        let code = packet.msg_code();
        let rest = packet.rest_of_header();
        let known = match (t, code) {
            (ECHO_REQUEST, 0) => Some(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data_len,
            }),
            (ECHO_REPLY, 0) => Some(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data_len,
            }),
            (DST_UNREACHABLE, 4) if rest[..2] == [0, 0] => {
                DstUnreachable::from_code(code, packet.next_hop_mtu())
                    .map(|reason| Icmpv4Repr::DstUnreachable { reason, data_len })
            }
            (DST_UNREACHABLE, _) if rest == [0; 4] => DstUnreachable::from_code(code, 0)
                .map(|reason| Icmpv4Repr::DstUnreachable { reason, data_len }),
            (TIME_EXCEEDED, 0) if rest == [0; 4] => Some(Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::TtlExpired,
                data_len,
            }),
            (TIME_EXCEEDED, 1) if rest == [0; 4] => Some(Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::FragReassembly,
                data_len,
            }),
            (REDIRECT, _) => Redirect::from_code(code).map(|code| Icmpv4Repr::Redirect {
                code,
                gateway: packet.gateway(),
                data_len,
            }),
            (PARAM_PROBLEM, 0..=2) if rest[1..] == [0, 0, 0] => Some(Icmpv4Repr::ParamProblem {
                code,
                pointer: packet.pointer(),
                data_len,
            }),
            _ => None,
        };
        Ok(known.unwrap_or(Icmpv4Repr::Other {
            msg_type: t,
            code,
            rest,
            data_len,
        }))
    }

    /// Length of the data after the 8-byte header.
    pub const fn data_len(&self) -> usize {
        match *self {
            Icmpv4Repr::EchoRequest { data_len, .. }
            | Icmpv4Repr::EchoReply { data_len, .. }
            | Icmpv4Repr::DstUnreachable { data_len, .. }
            | Icmpv4Repr::TimeExceeded { data_len, .. }
            | Icmpv4Repr::Redirect { data_len, .. }
            | Icmpv4Repr::ParamProblem { data_len, .. }
            | Icmpv4Repr::Other { data_len, .. } => data_len,
        }
    }

    /// Header plus data (saturating: a `data_len` no buffer can hold makes
    /// the emitters fail with `Truncated`, not overflow).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.data_len())
    }

    /// (type, code, rest-of-header) as they go on the wire.
    pub fn header_fields(&self) -> (u8, u8, [u8; 4]) {
        use msg_type::*;
        fn pair(a: u16, b: u16) -> [u8; 4] {
            let [a0, a1] = a.to_be_bytes();
            let [b0, b1] = b.to_be_bytes();
            [a0, a1, b0, b1]
        }
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => (ECHO_REQUEST, 0, pair(ident, seq_no)),
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => (ECHO_REPLY, 0, pair(ident, seq_no)),
            Icmpv4Repr::DstUnreachable { reason, .. } => {
                let mtu = match reason {
                    DstUnreachable::FragNeeded { next_hop_mtu } => next_hop_mtu,
                    _ => 0,
                };
                (DST_UNREACHABLE, reason.code(), pair(0, mtu))
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                let code = match reason {
                    TimeExceeded::TtlExpired => 0,
                    TimeExceeded::FragReassembly => 1,
                };
                (TIME_EXCEEDED, code, [0; 4])
            }
            Icmpv4Repr::Redirect { code, gateway, .. } => (REDIRECT, code.code(), gateway.octets()),
            Icmpv4Repr::ParamProblem { code, pointer, .. } => {
                (PARAM_PROBLEM, code, [pointer, 0, 0, 0])
            }
            Icmpv4Repr::Other {
                msg_type,
                code,
                rest,
                ..
            } => (msg_type, code, rest),
        }
    }

    /// Writes the 8-byte header with a zero checksum. The buffer must hold
    /// at least [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv4Packet<T>,
    ) -> Result<()> {
        check_len(
            Layer::Icmpv4,
            packet.buffer.as_ref().len(),
            self.buffer_len(),
        )?;
        let (t, code, rest) = self.header_fields();
        packet.set_msg_type(t);
        packet.set_msg_code(code);
        packet.set_checksum(0);
        packet.set_rest_of_header(rest);
        Ok(())
    }

    /// Writes the header, then the checksum over the header and the first
    /// `data_len` bytes of data, which the caller has put in place.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) -> Result<()> {
        self.emit_header(packet)?;
        let len = self.buffer_len();
        let c = packet
            .buffer
            .as_ref()
            .get(..len)
            .map_or(0, checksum::checksum);
        packet.set_checksum(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ttl-exceeded.pcap, frame 2 (first 8 bytes of ICMP plus the start of
    /// the quoted IP header): type 11 code 0 from the router.
    fn time_exceeded(quoted: &[u8]) -> Vec<u8> {
        let mut v = vec![11, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(quoted);
        let c = checksum::checksum(&v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn echo_roundtrip() {
        let mut buf = [0u8; 8 + 56];
        for (i, b) in buf[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let repr = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 3,
            data_len: 56,
        };
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        repr.emit(&mut p).unwrap();
        assert_eq!(&buf[..2], &[8, 0]);
        assert_eq!(&buf[4..8], &[0x12, 0x34, 0, 3]);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), repr);
        assert_eq!(p.quoted_datagram(), None);
        assert_eq!(p.data().len(), 56);
    }

    #[test]
    fn bad_checksum_and_skip() {
        let mut v = time_exceeded(&[0x45, 0, 0, 84]);
        v[9] ^= 0xff;
        let p = Icmpv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Err(WireError::checksum(Layer::Icmpv4))
        );
        assert_eq!(
            Icmpv4Repr::parse_unverified(&p).unwrap(),
            Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::TtlExpired,
                data_len: 4
            }
        );
        assert_eq!(p.quoted_datagram(), Some(&[0x45, 0xff, 0, 84][..]));
    }

    #[test]
    fn frag_needed_carries_mtu() {
        let mut buf = [0u8; 8 + 28];
        buf[8] = 0x45;
        let repr = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragNeeded { next_hop_mtu: 1280 },
            data_len: 28,
        };
        repr.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0, 0, 0x05, 0x00]);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1280);
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), repr);
        assert_eq!(p.quoted_datagram().map(|q| q[0]), Some(0x45));
    }

    #[test]
    fn all_unreachable_codes_roundtrip() {
        for code in 0..=15u8 {
            let reason = DstUnreachable::from_code(code, 576).unwrap();
            assert_eq!(reason.code(), code);
            let repr = Icmpv4Repr::DstUnreachable {
                reason,
                data_len: 0,
            };
            let mut buf = [0u8; 8];
            repr.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap())
                .unwrap();
            assert_eq!(buf[1], code);
            let back = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap();
            assert_eq!(back, repr);
        }
        assert_eq!(DstUnreachable::from_code(16, 0), None);
    }

    #[test]
    fn redirect_and_param_problem() {
        let mut buf = [0u8; 8];
        let r = Icmpv4Repr::Redirect {
            code: Redirect::Host,
            gateway: Ipv4Addr::new(192, 0, 2, 254),
            data_len: 0,
        };
        r.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(&buf[..2], &[5, 1]);
        assert_eq!(&buf[4..], &[192, 0, 2, 254]);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            r
        );

        let pp = Icmpv4Repr::ParamProblem {
            code: 0,
            pointer: 9,
            data_len: 0,
        };
        pp.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        // Checksum of words 0x0c00 and 0x0900: !(0x1500) = 0xeaff.
        assert_eq!(buf, [12, 0, 0xea, 0xff, 9, 0, 0, 0]);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            pp
        );
    }

    #[test]
    fn raw_fallback_keeps_bytes() {
        // Source quench, timestamp, and a time-exceeded with junk in the
        // unused field all come back as `Other` and re-emit byte for byte.
        for hdr in [
            [4u8, 0, 0, 0, 0, 0, 0, 0],
            [13, 0, 0, 0, 0xab, 0xcd, 0, 1],
            [11, 0, 0, 0, 0, 0, 0, 1],
            [3, 3, 0, 0, 0, 1, 0, 0],
            [3, 16, 0, 0, 0, 0, 0, 0],
            [8, 1, 0, 0, 0, 0, 0, 0],
        ] {
            let mut buf = hdr;
            Icmpv4Packet::new_checked(&mut buf[..])
                .unwrap()
                .fill_checksum();
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            let repr = Icmpv4Repr::parse(&p).unwrap();
            assert!(matches!(repr, Icmpv4Repr::Other { msg_type, .. } if msg_type == hdr[0]));
            let mut out = [0u8; 8];
            repr.emit(&mut Icmpv4Packet::new_checked(&mut out[..]).unwrap())
                .unwrap();
            assert_eq!(out, buf);
        }
    }

    #[test]
    fn short_buffers() {
        assert_eq!(
            Icmpv4Packet::new_checked(&[0u8; 7][..]).unwrap_err(),
            WireError::truncated(Layer::Icmpv4, 8, 7)
        );
        let repr = Icmpv4Repr::EchoReply {
            ident: 1,
            seq_no: 1,
            data_len: 4,
        };
        let mut buf = [0u8; 10];
        assert_eq!(
            repr.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap()),
            Err(WireError::truncated(Layer::Icmpv4, 12, 10))
        );
        // A data_len no buffer can hold is an error, not an overflow panic.
        let huge = Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::TtlExpired,
            data_len: usize::MAX,
        };
        assert_eq!(huge.buffer_len(), usize::MAX);
        assert_eq!(
            huge.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap()),
            Err(WireError::truncated(Layer::Icmpv4, usize::MAX, 10))
        );
    }
}
