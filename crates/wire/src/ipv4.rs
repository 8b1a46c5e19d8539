//! IPv4 headers (RFC 791) and their options.
//!
//! Seed stages served: ingress step 9, `ip_rcv`'s header checks (version,
//! IHL, total length against the buffer, header checksum) and
//! `ip_options_compile`'s option walk; and egress step 5, `ip_queue_xmit` /
//! `ip_build_and_send_pkt` writing the header and `ip_send_check` filling its
//! checksum (also the fragment headers of `ip_do_fragment`).
//!
//! ```text
//! 0        1          2          4       6             8     9      10     12    16    20
//! | ver|ihl| dscp|ecn | total len| ident | flags|offset| ttl | proto| csum | src | dst | options
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::be16;
use crate::checksum;
use crate::error::{check_len, ErrorKind, Layer, Result, WireError};

/// The IP protocol number carried in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ICMP: Protocol = Protocol(1);
    pub const IGMP: Protocol = Protocol(2);
    /// IPv4-in-IPv4.
    pub const IPIP: Protocol = Protocol(4);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
    pub const IPV6: Protocol = Protocol(41);
    pub const GRE: Protocol = Protocol(47);
    pub const ESP: Protocol = Protocol(50);
    pub const AH: Protocol = Protocol(51);
    pub const SCTP: Protocol = Protocol(132);
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Byte offsets of the fixed header.
pub mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: IHL 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Longest options area.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Largest datagram.
pub const MAX_TOTAL_LEN: usize = 65535;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Accessors panic if the buffer is shorter than the header (or, for
    /// `payload`, the total length) says; use [`Ipv4Packet::new_checked`] for
    /// input. For emitters writing into a buffer they have sized.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after `ip_rcv`'s checks; see [`Ipv4Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the buffer is shorter than 20 bytes, the header length
    /// or the total length; `BadVersion` unless version 4; `BadLength` for an
    /// IHL below 5 or a total length below the header length. A buffer longer
    /// than the total length is fine (Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        check_len(Layer::Ipv4, len, HEADER_LEN)?;
        if self.version() != 4 {
            return Err(WireError::new(
                Layer::Ipv4,
                ErrorKind::BadVersion(self.version()),
            ));
        }
        if self.ihl() < 5 {
            return Err(WireError::bad_length(
                Layer::Ipv4,
                "ihl",
                usize::from(self.ihl()),
            ));
        }
        check_len(Layer::Ipv4, len, self.header_len())?;
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(WireError::bad_length(Layer::Ipv4, "total length", total));
        }
        check_len(Layer::Ipv4, len, total)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// The IHL field: header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        self.b()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The whole second byte (DSCP << 2 | ECN), the old TOS.
    pub fn tos(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }

    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    pub fn total_len(&self) -> u16 {
        be16(&self.b()[field::LENGTH])
    }

    pub fn ident(&self) -> u16 {
        be16(&self.b()[field::IDENT])
    }

    fn flags_offset(&self) -> u16 {
        be16(&self.b()[field::FLG_OFF])
    }

    /// The reserved ("evil") flag bit.
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// MF set or a non-zero offset, as Linux's `ip_is_fragment`.
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    pub fn protocol(&self) -> Protocol {
        Protocol(self.b()[field::PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.b()[field::CHECKSUM])
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        addr(&self.b()[field::SRC])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(&self.b()[field::DST])
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }

    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.header_len()]
    }

    /// The options, parsed one by one.
    pub fn options_iter(&self) -> Ipv4Options<'_> {
        Ipv4Options::new(self.options())
    }

    /// The bytes after the header up to the total length (padding trimmed).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn set_flags_offset(&mut self, v: u16) {
        self.bm()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.bm()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets IHL from a length in bytes (must be a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.bm()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    pub fn set_tos(&mut self, tos: u8) {
        self.bm()[field::DSCP_ECN] = tos;
    }

    pub fn set_dscp(&mut self, dscp: u8) {
        let ecn = self.ecn();
        self.set_tos(dscp << 2 | ecn);
    }

    pub fn set_ecn(&mut self, ecn: u8) {
        let tos = self.tos();
        self.set_tos((tos & !0x03) | (ecn & 0x03));
    }

    pub fn set_total_len(&mut self, len: u16) {
        self.bm()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_ident(&mut self, id: u16) {
        self.bm()[field::IDENT].copy_from_slice(&id.to_be_bytes());
    }

    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_DF;
        self.set_flags_offset(v | if on { FLAG_DF } else { 0 });
    }

    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_MF;
        self.set_flags_offset(v | if on { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset from bytes (the low 3 bits are dropped).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_offset() & !OFFSET_MASK;
        self.set_flags_offset(v | (bytes >> 3));
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, p: Protocol) {
        self.bm()[field::PROTOCOL] = p.0;
    }

    pub fn set_checksum(&mut self, c: u16) {
        self.bm()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::DST].copy_from_slice(&a.octets());
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.bm()[HEADER_LEN..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.bm()[start..end]
    }

    /// Zeroes the checksum field and writes the header checksum
    /// (`ip_send_check`).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }
}

/// Option kinds (the whole type byte: copied flag, class, number).
pub mod option_kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const RECORD_ROUTE: u8 = 7;
    pub const TIMESTAMP: u8 = 68;
    pub const SECURITY: u8 = 130;
    pub const LSRR: u8 = 131;
    pub const SSRR: u8 = 137;
    pub const ROUTER_ALERT: u8 = 148;
}

/// One IPv4 option. `data` is what follows the type and length bytes (and,
/// for the route and timestamp options, the pointer byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Option<'a> {
    EndOfList,
    Nop,
    RecordRoute {
        pointer: u8,
        data: &'a [u8],
    },
    /// `overflow` and `flags` share the byte after the pointer.
    Timestamp {
        pointer: u8,
        overflow: u8,
        flags: u8,
        data: &'a [u8],
    },
    Security(&'a [u8]),
    Lsrr {
        pointer: u8,
        data: &'a [u8],
    },
    Ssrr {
        pointer: u8,
        data: &'a [u8],
    },
    RouterAlert(u16),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterator over the options bytes of a header. Stops after End of List; a
/// malformed option yields one `Err` (layer `Ipv4Option`) and then the
/// iterator ends.
#[derive(Debug, Clone)]
pub struct Ipv4Options<'a> {
    rest: &'a [u8],
}

impl<'a> Ipv4Options<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        Ipv4Options { rest: options }
    }

    fn parse_one(&mut self) -> Result<Ipv4Option<'a>> {
        let bad = |field, value| WireError::bad_length(Layer::Ipv4Option, field, value);
        let rest = self.rest;
        let kind = rest.first().copied().unwrap_or(option_kind::END);
        match kind {
            option_kind::END => {
                self.rest = &[];
                return Ok(Ipv4Option::EndOfList);
            }
            option_kind::NOP => {
                self.rest = rest.get(1..).unwrap_or_default();
                return Ok(Ipv4Option::Nop);
            }
            _ => {}
        }
        let len = usize::from(*rest.get(1).ok_or(WireError::truncated(
            Layer::Ipv4Option,
            2,
            rest.len(),
        ))?);
        if len < 2 {
            return Err(bad("option length", len));
        }
        check_len(Layer::Ipv4Option, rest.len(), len)?;
        let (opt, after) = rest.split_at(len);
        let body = &opt[2..];
        let pointed = |min_len: usize, min_ptr: u8| -> Result<(u8, &'a [u8])> {
            if len < min_len {
                return Err(bad("option length", len));
            }
            let pointer = body[0];
            if pointer < min_ptr {
                return Err(WireError::invalid(Layer::Ipv4Option, "option pointer"));
            }
            Ok((pointer, &body[1..]))
        };
        let parsed = match kind {
            option_kind::RECORD_ROUTE => {
                let (pointer, data) = pointed(3, 4)?;
                Ipv4Option::RecordRoute { pointer, data }
            }
            option_kind::LSRR => {
                let (pointer, data) = pointed(3, 4)?;
                Ipv4Option::Lsrr { pointer, data }
            }
            option_kind::SSRR => {
                let (pointer, data) = pointed(3, 4)?;
                Ipv4Option::Ssrr { pointer, data }
            }
            option_kind::TIMESTAMP => {
                let (pointer, data) = pointed(4, 5)?;
                let of = data[0];
                Ipv4Option::Timestamp {
                    pointer,
                    overflow: of >> 4,
                    flags: of & 0x0f,
                    data: &data[1..],
                }
            }
            option_kind::ROUTER_ALERT => {
                // RFC 2113 says 4; `ip_options_compile` rejects only < 4.
                if len < 4 {
                    return Err(bad("option length", len));
                }
                Ipv4Option::RouterAlert(be16(body))
            }
            option_kind::SECURITY => Ipv4Option::Security(body),
            kind => Ipv4Option::Unknown { kind, data: body },
        };
        self.rest = after;
        Ok(parsed)
    }
}

impl<'a> Iterator for Ipv4Options<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.parse_one();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

/// The fields of an IPv4 header, options aside (they stay in the view's
/// bytes; see [`Ipv4Repr::emit_with_options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: Protocol,
    pub ttl: u8,
    /// DSCP << 2 | ECN.
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes; a multiple of 8.
    pub frag_offset: u16,
    /// Bytes after the header (options excluded): total length - header length.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parses after `ip_rcv`'s checks, including the header checksum
    /// (`Checksum` if it does not verify).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        Self::parse_checked(packet, true)
    }

    /// As [`Ipv4Repr::parse`] but trusting the checksum (a device that
    /// verified it already, `CHECKSUM_UNNECESSARY`).
    pub fn parse_unverified<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        Self::parse_checked(packet, false)
    }

    fn parse_checked<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, verify: bool) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if verify && !packet.verify_checksum() {
            return Err(WireError::checksum(Layer::Ipv4));
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
        })
    }

    /// Length of the header this repr emits without options.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// MF set or a non-zero offset.
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Writes a 20-byte header and its checksum; see
    /// [`Ipv4Repr::emit_with_options`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) -> Result<()> {
        self.emit_with_options(packet, &[])
    }

    /// Writes the header with `options` (a multiple of 4 bytes, at most 40)
    /// into the start of `packet`'s buffer and fills the checksum. The
    /// payload is not touched and need not be in the buffer. Errors:
    /// `BadLength` (layer `Ipv4Option`) for bad options, `BadLength` for a
    /// total length over 65535, `Invalid` for an offset that is not a
    /// multiple of 8, `Truncated` if the buffer cannot hold the header.
    pub fn emit_with_options<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        options: &[u8],
    ) -> Result<()> {
        if options.len() & 3 != 0 || options.len() > MAX_OPTIONS_LEN {
            return Err(WireError::bad_length(
                Layer::Ipv4Option,
                "options",
                options.len(),
            ));
        }
        let header_len = HEADER_LEN + options.len();
        let total = header_len.saturating_add(self.payload_len);
        let total = u16::try_from(total)
            .map_err(|_| WireError::bad_length(Layer::Ipv4, "total length", total))?;
        if self.frag_offset & 7 != 0 {
            return Err(WireError::invalid(Layer::Ipv4, "fragment offset"));
        }
        check_len(Layer::Ipv4, packet.buffer.as_ref().len(), header_len)?;
        packet.bm()[field::VER_IHL] = 0x40 | (header_len / 4) as u8;
        packet.set_tos(self.tos);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        let flags =
            if self.dont_frag { FLAG_DF } else { 0 } | if self.more_frags { FLAG_MF } else { 0 };
        packet.set_flags_offset(flags | (self.frag_offset >> 3));
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.options_mut().copy_from_slice(options);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first echo request of arp-ping.pcap: 192.0.2.1 -> 192.0.2.2,
    /// ttl 64, DF, 84 bytes.
    fn echo_header() -> [u8; 20] {
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0x8f, 0x2e, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 192, 0, 2, 1,
            192, 0, 2, 2,
        ];
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    fn packet_with_payload(extra: usize) -> Vec<u8> {
        let mut v = echo_header().to_vec();
        v.resize(84 + extra, 0xab);
        v
    }

    #[test]
    fn fields() {
        let buf = packet_with_payload(6); // 6 bytes of Ethernet padding
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!((p.version(), p.ihl(), p.header_len()), (4, 5, 20));
        assert_eq!(
            (p.dscp(), p.ecn(), p.total_len(), p.ident()),
            (0, 0, 84, 0x8f2e)
        );
        assert!(p.dont_frag() && !p.more_frags() && !p.reserved_flag());
        assert_eq!((p.frag_offset(), p.is_fragment()), (0, false));
        assert_eq!((p.ttl(), p.protocol()), (64, Protocol::ICMP));
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(p.payload().len(), 64);
        assert!(p.options().is_empty() && p.options_iter().next().is_none());
        assert!(p.verify_checksum());
    }

    #[test]
    fn ip_rcv_checks() {
        let good = packet_with_payload(0);
        let err = |b: &[u8]| Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&good[..19]), WireError::truncated(Layer::Ipv4, 20, 19));
        let mut b = good.clone();
        b[0] = 0x65;
        assert_eq!(err(&b).kind, ErrorKind::BadVersion(6));
        b[0] = 0x44;
        assert_eq!(err(&b), WireError::bad_length(Layer::Ipv4, "ihl", 4));
        b[0] = 0x4f; // 60-byte header: fits in 84
        assert!(Ipv4Packet::new_checked(&b[..]).is_ok());
        assert_eq!(err(&b[..40]), WireError::truncated(Layer::Ipv4, 60, 40));
        let mut b = good.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            err(&b),
            WireError::bad_length(Layer::Ipv4, "total length", 19)
        );
        assert_eq!(err(&good[..83]), WireError::truncated(Layer::Ipv4, 84, 83));
        // A corrupted header still parses as a view, but not as a repr.
        let mut b = good;
        b[8] = 1;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p), Err(WireError::checksum(Layer::Ipv4)));
        assert_eq!(Ipv4Repr::parse_unverified(&p).unwrap().ttl, 1);
    }

    #[test]
    fn repr_round_trip() {
        let buf = packet_with_payload(0);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 64);
        let mut out = [0u8; 20];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, echo_header());
        assert!(r
            .emit(&mut Ipv4Packet::new_unchecked(&mut [0u8; 19][..]))
            .is_err());
    }

    #[test]
    fn fragments_and_setters() {
        let mut buf = packet_with_payload(0);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_dont_frag(false);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        p.set_dscp(0x30);
        p.set_ecn(2);
        p.fill_checksum();
        assert_eq!(&p.header()[6..8], &[0x20, 0xb9]); // MF | 185
        assert_eq!(p.tos(), 0xc2);
        assert!(p.verify_checksum() && p.is_fragment());
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(
            (r.frag_offset, r.more_frags, r.dont_frag),
            (1480, true, false)
        );
        assert!(r.is_fragment());
        let bad = Ipv4Repr {
            frag_offset: 3,
            ..r
        };
        assert_eq!(
            bad.emit(&mut Ipv4Packet::new_unchecked(&mut [0u8; 20][..])),
            Err(WireError::invalid(Layer::Ipv4, "fragment offset"))
        );
        let big = Ipv4Repr {
            payload_len: 65516,
            ..r
        };
        assert!(big
            .emit(&mut Ipv4Packet::new_unchecked(&mut [0u8; 20][..]))
            .is_err());
    }

    #[test]
    fn options() {
        // Router alert, NOP, record route with one slot, timestamp, EOL pad.
        let opts: [u8; 24] = [
            148, 4, 0, 0, // router alert
            1, // nop
            7, 7, 4, 10, 0, 0, 1, // record route, pointer 4, one address
            68, 8, 5, 0x11, 0, 0, 0, 9, // timestamp: overflow 1, flags 1
            0, 0, 0, 0, // end of list + padding
        ];
        let r = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: Protocol::UDP,
            ttl: 1,
            tos: 0,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            payload_len: 8,
        };
        let mut buf = [0u8; 52];
        r.emit_with_options(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &opts)
            .unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!((p.header_len(), p.total_len()), (44, 52));
        assert_eq!(p.options(), &opts);
        assert!(p.verify_checksum());
        let got: Vec<_> = p.options_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            got,
            vec![
                Ipv4Option::RouterAlert(0),
                Ipv4Option::Nop,
                Ipv4Option::RecordRoute {
                    pointer: 4,
                    data: &[10, 0, 0, 1]
                },
                Ipv4Option::Timestamp {
                    pointer: 5,
                    overflow: 1,
                    flags: 1,
                    data: &[0, 0, 0, 9]
                },
                Ipv4Option::EndOfList,
            ]
        );
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
        assert!(r
            .emit_with_options(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &opts[..3])
            .is_err());
    }

    #[test]
    fn bad_options() {
        fn first(b: &[u8]) -> Result<Ipv4Option<'_>> {
            Ipv4Options::new(b).next().unwrap()
        }
        let bad = |n| Err(WireError::bad_length(Layer::Ipv4Option, "option length", n));
        assert_eq!(
            first(&[7]),
            Err(WireError::truncated(Layer::Ipv4Option, 2, 1))
        );
        assert_eq!(first(&[7, 1, 0, 0]), bad(1));
        assert_eq!(first(&[7, 2, 0, 0]), bad(2));
        assert_eq!(
            first(&[7, 9, 4, 0]),
            Err(WireError::truncated(Layer::Ipv4Option, 9, 4))
        );
        assert_eq!(
            first(&[7, 3, 3, 0]),
            Err(WireError::invalid(Layer::Ipv4Option, "option pointer"))
        );
        assert_eq!(first(&[68, 3, 5, 0]), bad(3));
        assert_eq!(first(&[148, 3, 0, 0]), bad(3));
        // Longer than RFC 2113's 4 is accepted, as ip_options_compile does.
        assert_eq!(first(&[148, 6, 0, 1, 9, 9]), Ok(Ipv4Option::RouterAlert(1)));
        assert_eq!(first(&[130, 3, 9, 0]), Ok(Ipv4Option::Security(&[9])));
        assert_eq!(
            first(&[25, 2, 0, 0]),
            Ok(Ipv4Option::Unknown {
                kind: 25,
                data: &[]
            })
        );
        // One error, then the iterator ends.
        let mut it = Ipv4Options::new(&[1, 7, 1, 1, 1, 1]);
        assert_eq!(it.next(), Some(Ok(Ipv4Option::Nop)));
        assert!(it.next().unwrap().is_err());
        assert_eq!(it.next(), None);
    }
}
