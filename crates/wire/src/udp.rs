//! UDP (RFC 768): the datagram path.
//!
//! Seed stage: the L4 handler called by `ip_local_deliver` for protocol 17
//! (Linux `udp_rcv`: length checks, then the pseudo-header checksum) and the
//! header pushed by the datagram send path before `ip_queue_xmit`.
//!
//! A [`UdpPacket`] is a view over one whole datagram (the IP payload). The
//! UDP length field governs: bytes after it (e.g. Ethernet padding) are not
//! part of the payload, and a length shorter than the header or longer than
//! the buffer is a [`ErrorKind::BadLength`](crate::ErrorKind::BadLength)
//! (Linux's `short_packet` drop).

use core::net::Ipv4Addr;

use crate::checksum::Checksum;
use crate::error::{check_len, Layer, Result, WireError};

/// IP protocol number of UDP.
pub const PROTOCOL: u8 = 17;
/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checks. Accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds; prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = UdpPacket { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// The buffer holds a header, and the length field is in
    /// `HEADER_LEN..=buffer.len()`.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len(Layer::Udp, buf.len(), HEADER_LEN)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > buf.len() {
            return Err(WireError::bad_length(Layer::Udp, "length", len));
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn get16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }

    pub fn src_port(&self) -> u16 {
        self.get16(field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        self.get16(field::DST_PORT)
    }

    /// The length field: header plus payload.
    pub fn len(&self) -> u16 {
        self.get16(field::LENGTH)
    }

    /// True when the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        self.get16(field::CHECKSUM)
    }

    /// The datagram as the length field bounds it (header and payload).
    pub fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.len()).min(b.len())]
    }

    /// The payload, as bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        let d = self.datagram();
        d.get(HEADER_LEN..).unwrap_or(&[])
    }

    /// True when the checksum verifies against the IPv4 pseudo-header, or
    /// when it is zero (the sender computed none, RFC 768).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        let mut c = Checksum::pseudo_header_v4(src, dst, PROTOCOL, self.len());
        c.add_bytes(d);
        c.sum() == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.set16(field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.set16(field::DST_PORT, v)
    }

    pub fn set_len(&mut self, v: u16) {
        self.set16(field::LENGTH, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    /// The payload, as bounded by the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        let b = self.buffer.as_mut();
        let end = len.min(b.len());
        b.get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }

    /// Computes and writes the checksum over the pseudo-header, header and
    /// payload (as bounded by the length field). A computed 0 is sent as
    /// 0xffff, since 0 means "no checksum" (RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = datagram_checksum(src, dst, self.datagram());
        self.set_checksum(c);
    }
}

/// The checksum field value for `datagram` (checksum field zeroed), with the
/// RFC 768 0 → 0xffff substitution. The length is taken as `datagram.len()`.
fn datagram_checksum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    let len = u16::try_from(datagram.len()).unwrap_or(u16::MAX);
    let mut c = Checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
    c.add_bytes(datagram);
    match c.finish() {
        0 => 0xffff,
        v => v,
    }
}

/// The fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses `packet`, verifying its checksum against the pseudo-header of
    /// `src` → `dst` (a zero checksum is accepted, RFC 768).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Self> {
        let repr = Self::parse_unverified(packet)?;
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::checksum(Layer::Udp));
        }
        Ok(repr)
    }

    /// Parses `packet` without looking at the checksum (e.g. when hardware
    /// validated it, or the datagram is quoted in an ICMP error).
    pub fn parse_unverified<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Header length (always 8).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload (saturating, so that an impossible `payload_len`
    /// makes the emitters fail rather than overflow).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the header with a zero checksum into the first 8 bytes of
    /// `packet`. `BadLength` if header and payload do not fit the 16-bit
    /// length field, `Truncated` if the buffer cannot hold them.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
    ) -> Result<()> {
        let total = self.buffer_len();
        let len =
            u16::try_from(total).map_err(|_| WireError::bad_length(Layer::Udp, "length", total))?;
        check_len(Layer::Udp, packet.buffer.as_ref().len(), total)?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }

    /// Writes the header and then the checksum over the header and the
    /// payload already in place after it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        self.emit_header(packet)?;
        packet.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// A datagram shaped like the one in udp-port-unreachable.pcap:
    /// 192.0.2.1:40000 → 192.0.2.2:33434 with 19 bytes of payload.
    fn sample() -> Vec<u8> {
        let payload = b"hello from netpath\n";
        let mut buf = vec![0u8; HEADER_LEN + payload.len()];
        buf[HEADER_LEN..].copy_from_slice(payload);
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 33434,
            payload_len: payload.len(),
        };
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, SRC, DST).unwrap();
        buf
    }

    #[test]
    fn emit_then_parse() {
        let buf = sample();
        assert_eq!(&buf[..6], &[0x9c, 0x40, 0x82, 0x9a, 0x00, 27]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 0, 2, 3)));
        let r = UdpRepr::parse(&p, SRC, DST).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 40000,
                dst_port: 33434,
                payload_len: 19
            }
        );
        assert_eq!(p.payload(), b"hello from netpath\n");
    }

    #[test]
    fn checksum_error_is_typed() {
        let mut buf = sample();
        buf[10] ^= 1;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, SRC, DST),
            Err(WireError::checksum(Layer::Udp))
        );
        assert!(UdpRepr::parse_unverified(&p).is_ok());
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut buf = sample();
        buf[6] = 0;
        buf[7] = 0;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(UdpRepr::parse(&p, SRC, DST).unwrap().payload_len, 19);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the payload word so the sum is 0xffff, i.e. checksum 0.
        let mut buf = [0u8; 10];
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 2,
        };
        UdpRepr::emit_header(&repr, &mut UdpPacket::new_unchecked(&mut buf[..])).unwrap();
        let mut c = Checksum::pseudo_header_v4(SRC, DST, PROTOCOL, 10);
        c.add_bytes(&buf);
        let fix = !c.sum(); // adding this word makes the sum 0xffff
        buf[8..10].copy_from_slice(&fix.to_be_bytes());
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn length_field_checks() {
        let mut buf = sample();
        // Padding after the datagram is not payload.
        buf.extend_from_slice(&[0; 5]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 19);
        assert!(p.verify_checksum(SRC, DST));

        let mut short = sample();
        short[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&short[..]).unwrap_err().kind,
            ErrorKind::BadLength {
                field: "length",
                value: 7
            }
        );
        let mut long = sample();
        long[4..6].copy_from_slice(&28u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&long[..]).unwrap_err(),
            WireError::bad_length(Layer::Udp, "length", 28)
        );
        assert_eq!(
            UdpPacket::new_checked(&[0u8; 7][..]).unwrap_err(),
            WireError::truncated(Layer::Udp, 8, 7)
        );
    }

    #[test]
    fn emit_checks_room() {
        let mut buf = [0u8; 10];
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 3,
        };
        assert_eq!(
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST),
            Err(WireError::truncated(Layer::Udp, 11, 10))
        );
        // Too long for the length field: an error, not an overflow panic.
        for payload_len in [usize::MAX, 65528] {
            let repr = UdpRepr {
                payload_len,
                ..repr
            };
            assert_eq!(
                repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST),
                Err(WireError::bad_length(
                    Layer::Udp,
                    "length",
                    payload_len.saturating_add(8)
                ))
            );
        }
    }
}
