//! TCP segments (RFC 9293, RFC 3168 flags, RFC 3540 NS).
//!
//! Seed stages: ingress step 11, `tcp_v4_rcv`'s header pull and checksum
//! check (a [`TcpPacket`] view over the IP payload, [`TcpPacket::verify_checksum`]
//! with the IPv4 pseudo-header), and egress step 3, `tcp_transmit_skb`'s
//! header build ([`TcpRepr::emit`], with options laid out as Linux's
//! `tcp_options_write` does, see [`TcpOptions::emit`]). [`TcpSeqNumber`]
//! gives the modular comparisons of Linux's `before()`/`after()`.

pub mod options;

pub use options::{
    FastOpenOption, RawOptions, SackBlocks, TcpOption, TcpOptionIter, TcpOptions, TcpTimestamps,
    MAX_OPTIONS_LEN, MAX_SACK_BLOCKS,
};

use core::fmt;
use core::net::Ipv4Addr;
use core::ops;

use crate::checksum::Checksum;
use crate::error::{check_len, Layer, Result, WireError};

/// IP protocol number of TCP.
pub const PROTOCOL: u8 = 6;
/// Length of the header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// A TCP sequence number: arithmetic wraps mod 2³², and ordering is RFC 793
/// modular (Linux `before(a, b)` is `(s32)(a - b) < 0`). This is not a total
/// order, so only `PartialOrd` is provided; numbers 2³¹ apart are each
/// "before" the other, as in Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpSeqNumber(pub u32);

impl TcpSeqNumber {
    /// Linux `before(self, other)`.
    pub const fn before(self, other: TcpSeqNumber) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    /// Linux `after(self, other)` = `before(other, self)`.
    pub const fn after(self, other: TcpSeqNumber) -> bool {
        other.before(self)
    }

    /// `!after(self, other)`.
    pub const fn before_eq(self, other: TcpSeqNumber) -> bool {
        !self.after(other)
    }

    /// `!before(self, other)`.
    pub const fn after_eq(self, other: TcpSeqNumber) -> bool {
        !self.before(other)
    }

    /// Linux `between(self, lo, hi)`: `lo <= self <= hi` in modular terms
    /// (`hi - lo >= self - lo`).
    pub const fn between(self, lo: TcpSeqNumber, hi: TcpSeqNumber) -> bool {
        hi.0.wrapping_sub(lo.0) >= self.0.wrapping_sub(lo.0)
    }

    /// The signed distance `self - other`.
    pub const fn distance(self, other: TcpSeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The later of the two (modular).
    pub fn max(self, other: TcpSeqNumber) -> TcpSeqNumber {
        if self.after(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of the two (modular).
    pub fn min(self, other: TcpSeqNumber) -> TcpSeqNumber {
        if self.before(other) {
            self
        } else {
            other
        }
    }
}

impl ops::Add<u32> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    fn add(self, rhs: u32) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_add(rhs))
    }
}

impl ops::AddAssign<u32> for TcpSeqNumber {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl ops::Sub<u32> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    fn sub(self, rhs: u32) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_sub(rhs))
    }
}

impl ops::SubAssign<u32> for TcpSeqNumber {
    fn sub_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_sub(rhs);
    }
}

/// `a - b` is the signed modular distance (see [`TcpSeqNumber::distance`]).
impl ops::Sub<TcpSeqNumber> for TcpSeqNumber {
    type Output = i32;
    fn sub(self, rhs: TcpSeqNumber) -> i32 {
        self.distance(rhs)
    }
}

impl PartialOrd for TcpSeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        use core::cmp::Ordering;
        Some(if self.0 == other.0 {
            Ordering::Equal
        } else if self.before(*other) {
            Ordering::Less
        } else {
            Ordering::Greater
        })
    }
}

impl fmt::Display for TcpSeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 12 bits after the data offset: 3 reserved bits, NS, CWR, ECE, URG,
/// ACK, PSH, RST, SYN, FIN. Reserved bits are kept as received so that a
/// header re-emits unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    pub const NS: TcpFlags = TcpFlags(0x100);
    pub const EMPTY: TcpFlags = TcpFlags(0);
    /// Mask of all 12 bits (reserved included).
    pub const MASK: u16 = 0x0fff;

    /// From the low 12 bits of `bits` (the rest is ignored).
    pub const fn from_bits(bits: u16) -> TcpFlags {
        TcpFlags(bits & Self::MASK)
    }

    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn set(&mut self, other: TcpFlags, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }

    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
    pub const fn ns(self) -> bool {
        self.contains(Self::NS)
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TcpFlags, &str); 9] = [
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::NS, "NS"),
        ];
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let reserved = self.0 & 0x0e00;
        if reserved != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "res({reserved:#x})")?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// A read/write view of a TCP segment (header and payload: the IP payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checks; accessors may panic unless
    /// [`check_len`](Self::check_len) succeeds. Prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = TcpPacket { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// The buffer holds the fixed header, the data offset is at least 5, and
    /// the buffer holds the header the data offset declares.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        check_len(Layer::Tcp, len, HEADER_LEN)?;
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::bad_length(Layer::Tcp, "data offset", hl / 4));
        }
        check_len(Layer::Tcp, len, hl)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole segment.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn get16(&self, r: ops::Range<usize>) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }

    fn get32(&self, r: ops::Range<usize>) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
    }

    pub fn src_port(&self) -> u16 {
        self.get16(field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        self.get16(field::DST_PORT)
    }

    pub fn seq_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(self.get32(field::SEQ_NUM))
    }

    pub fn ack_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(self.get32(field::ACK_NUM))
    }

    /// Data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS.start] >> 4
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits(self.get16(field::FLAGS))
    }

    pub fn fin(&self) -> bool {
        self.flags().fin()
    }
    pub fn syn(&self) -> bool {
        self.flags().syn()
    }
    pub fn rst(&self) -> bool {
        self.flags().rst()
    }
    pub fn psh(&self) -> bool {
        self.flags().psh()
    }
    pub fn ack(&self) -> bool {
        self.flags().ack()
    }
    pub fn urg(&self) -> bool {
        self.flags().urg()
    }
    pub fn ece(&self) -> bool {
        self.flags().ece()
    }
    pub fn cwr(&self) -> bool {
        self.flags().cwr()
    }
    pub fn ns(&self) -> bool {
        self.flags().ns()
    }

    pub fn window_len(&self) -> u16 {
        self.get16(field::WIN_SIZE)
    }

    pub fn checksum(&self) -> u16 {
        self.get16(field::CHECKSUM)
    }

    pub fn urgent_at(&self) -> u16 {
        self.get16(field::URGENT)
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(..self.header_len()).unwrap_or(b)
    }

    /// The option bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.header_len())
            .unwrap_or(&[])
    }

    /// Iterator over the options.
    pub fn options_iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter::new(self.options())
    }

    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }

    /// Sequence space the segment occupies: payload plus one each for SYN
    /// and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// True when the checksum over the pseudo-header of `src` → `dst` and
    /// the whole buffer verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let seg = self.buffer.as_ref();
        let Ok(len) = u16::try_from(seg.len()) else {
            return false;
        };
        let mut c = Checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
        c.add_bytes(seg);
        c.sum() == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set16(&mut self, r: ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set32(&mut self, r: ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.set16(field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.set16(field::DST_PORT, v)
    }

    pub fn set_seq_number(&mut self, v: TcpSeqNumber) {
        self.set32(field::SEQ_NUM, v.0)
    }

    pub fn set_ack_number(&mut self, v: TcpSeqNumber) {
        self.set32(field::ACK_NUM, v.0)
    }

    /// Sets the data offset from a header length in bytes (rounded down to
    /// a multiple of 4, capped at 60).
    pub fn set_header_len(&mut self, len: usize) {
        let words = (len.min(MAX_HEADER_LEN) / 4) as u8;
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (words << 4);
    }

    /// Sets the 12 flag bits, keeping the data offset.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let off = self.buffer.as_ref()[field::FLAGS.start] & 0xf0;
        let v = (u16::from(off) << 8) | flags.bits();
        self.set16(field::FLAGS, v)
    }

    pub fn set_window_len(&mut self, v: u16) {
        self.set16(field::WIN_SIZE, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        self.set16(field::URGENT, v)
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..hl)
            .unwrap_or(&mut [])
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }

    /// Computes and writes the checksum over the pseudo-header and the whole
    /// buffer (which must be at most 65535 bytes, as any IPv4 payload is).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = segment_checksum(src, dst, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The checksum field value for `segment` (whose checksum field is zero).
fn segment_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    let mut c = Checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
    c.add_bytes(segment);
    c.finish()
}

/// The fields of a TCP header.
///
/// Options are described by [`TcpOptions`]; `raw_options`, when not empty,
/// is emitted verbatim instead (parse fills it so that a received header
/// re-emits byte for byte; leave it empty to get Linux's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: TcpSeqNumber,
    pub ack_number: TcpSeqNumber,
    pub flags: TcpFlags,
    pub window_len: u16,
    pub urgent_pointer: u16,
    pub options: TcpOptions,
    pub raw_options: RawOptions,
    pub payload_len: usize,
}

impl TcpRepr {
    /// Parses `packet`, verifying its checksum against the pseudo-header of
    /// `src` → `dst`.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Self> {
        let repr = Self::parse_unverified(packet)?;
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::checksum(Layer::Tcp));
        }
        Ok(repr)
    }

    /// Parses `packet` without the checksum (offloaded, or a capture cut
    /// by its snaplen). `payload_len` is what the buffer holds. Malformed
    /// options do not fail the parse (Linux's `tcp_parse_options` never
    /// drops a segment for them): `options` holds what Linux would have
    /// taken from them, and `raw_options` the bytes as received.
    pub fn parse_unverified<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        let raw = packet.options();
        let options = TcpOptions::parse(raw);
        let raw_options = RawOptions::from_slice(raw).ok_or(WireError::bad_length(
            Layer::Tcp,
            "data offset",
            packet.header_len() / 4,
        ))?;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_at(),
            options,
            raw_options,
            payload_len: packet.payload().len(),
        })
    }

    /// Option bytes emitted, padding included (a multiple of 4).
    pub fn options_len(&self) -> usize {
        let n = if self.raw_options.is_empty() {
            self.options.emitted_len()
        } else {
            self.raw_options.len()
        };
        n.div_ceil(4) * 4
    }

    /// Header length, options included.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// Header plus payload (saturating: a `payload_len` no buffer can hold
    /// makes the emitters fail, not overflow).
    pub fn buffer_len(&self) -> usize {
        self.header_len().saturating_add(self.payload_len)
    }

    /// Sequence space used: payload plus SYN and FIN (saturating).
    pub fn segment_len(&self) -> usize {
        self.payload_len
            .saturating_add(usize::from(self.flags.syn()) + usize::from(self.flags.fin()))
    }

    /// Writes the header (options padded with EOL to a multiple of 4) with
    /// a zero checksum. The buffer must hold header and payload.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
    ) -> Result<()> {
        let hl = self.header_len();
        if hl > MAX_HEADER_LEN {
            return Err(WireError::bad_length(
                Layer::TcpOption,
                "options length",
                hl - HEADER_LEN,
            ));
        }
        check_len(Layer::Tcp, packet.buffer.as_ref().len(), self.buffer_len())?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_pointer);
        let opts = packet.options_mut();
        let written = if self.raw_options.is_empty() {
            self.options.emit(opts)?
        } else {
            let raw = self.raw_options.as_slice();
            if let Some(dst) = opts.get_mut(..raw.len()) {
                dst.copy_from_slice(raw);
            }
            raw.len()
        };
        if let Some(pad) = opts.get_mut(written..) {
            pad.fill(options::kind::EOL);
        }
        Ok(())
    }

    /// Writes the header, then the checksum over it and the
    /// `payload_len` bytes of payload already in place after it. `BadLength`
    /// when header and payload exceed the 65535 bytes the pseudo-header's
    /// length can describe (the checksum would be wrong).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        if u16::try_from(len).is_err() {
            return Err(WireError::bad_length(Layer::Tcp, "segment length", len));
        }
        self.emit_header(packet)?;
        let c = packet
            .buffer
            .as_ref()
            .get(..len)
            .map_or(0, |seg| segment_checksum(src, dst, seg));
        packet.set_checksum(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames 1–3 of tcp-handshake-transfer-close.pcap (TCP bytes).
    const SYN: &str =
        "da221389ec2b137300000000a002faf0cfbe0000020405b40402080a5497b767000000000103030a";
    const SYN_ACK: &str =
        "1389da22ffe1a30eec2b1374a012fe88c8af0000020405b40402080a05195b5c5497b7670103030a";
    const ACK: &str = "da221389ec2b1374ffe1a30f8010003ff5c800000101080a5497b76705195b5c";

    #[test]
    fn linux_syn_fields() {
        let b = hex(SYN);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (55842, 5001));
        assert_eq!(p.seq_number(), TcpSeqNumber(0xec2b_1373));
        assert_eq!(p.ack_number(), TcpSeqNumber(0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.ece() && !p.cwr() && !p.ns());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xcfbe);
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert!(!p.verify_checksum(SERVER, Ipv4Addr::new(192, 0, 2, 3)));
        let r = TcpRepr::parse(&p, CLIENT, SERVER).unwrap();
        assert_eq!(r.options.mss, Some(1460));
        assert_eq!(r.options.window_scale, Some(10));
        assert!(r.options.sack_permitted);
        assert_eq!(
            r.options.timestamps,
            Some(TcpTimestamps {
                tsval: 0x5497_b767,
                tsecr: 0
            })
        );
        assert_eq!(r.payload_len, 0);
    }

    #[test]
    fn parsed_headers_reemit_exactly() {
        for (h, src, dst) in [
            (SYN, CLIENT, SERVER),
            (SYN_ACK, SERVER, CLIENT),
            (ACK, CLIENT, SERVER),
        ] {
            let b = hex(h);
            let r = TcpRepr::parse(&TcpPacket::new_checked(&b[..]).unwrap(), src, dst).unwrap();
            let mut out = vec![0u8; b.len()];
            r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst)
                .unwrap();
            assert_eq!(out, b);
            // Without the raw copy, the Linux layout gives the same bytes.
            let r2 = TcpRepr {
                raw_options: RawOptions::EMPTY,
                ..r
            };
            let mut out2 = vec![0u8; b.len()];
            r2.emit(&mut TcpPacket::new_unchecked(&mut out2[..]), src, dst)
                .unwrap();
            assert_eq!(out2, b);
        }
    }

    #[test]
    fn checksum_mismatch_and_payload() {
        let mut b = hex(ACK);
        b.extend_from_slice(b"payload");
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert!(!p.verify_checksum(CLIENT, SERVER));
        assert_eq!(
            TcpRepr::parse(&p, CLIENT, SERVER),
            Err(WireError::checksum(Layer::Tcp))
        );
        p.fill_checksum(CLIENT, SERVER);
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert_eq!(p.payload(), b"payload");
        let r = TcpRepr::parse(&p, CLIENT, SERVER).unwrap();
        assert_eq!(r.payload_len, 7);
        assert_eq!(r.header_len(), 32);
    }

    #[test]
    fn bad_data_offset() {
        let mut b = hex(ACK);
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::bad_length(Layer::Tcp, "data offset", 4)
        );
        b[12] = 0xf0;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::truncated(Layer::Tcp, 60, 32)
        );
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err().kind,
            ErrorKind::Truncated {
                needed: 20,
                available: 19
            }
        );
    }

    #[test]
    fn malformed_options_do_not_drop_the_segment() {
        // Linux's tcp_parse_options returns at a "silly" option length and
        // keeps the segment: the options seen so far stand, the rest is
        // ignored, and the raw bytes still re-emit verbatim.
        let mut b = hex(ACK);
        b[21] = 0x22; // NOP → kind 0x22 with length 1
        b[22] = 1;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            p.options_iter().nth(1),
            Some(Err(WireError::bad_length(Layer::TcpOption, "length", 1)))
        );
        let r = TcpRepr::parse_unverified(&p).unwrap();
        assert!(r.options.is_empty());
        assert_eq!(r.raw_options.as_slice(), &b[20..32]);
        let mut out = vec![0u8; b.len()];
        r.emit_header(&mut TcpPacket::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out[20..32], b[20..32]);

        // A known kind with the wrong length is skipped by its length, and
        // the options after it still count: MSS of length 2, then TS.
        let mut b = hex(ACK);
        b[20..22].copy_from_slice(&[2, 2]);
        let r = TcpRepr::parse_unverified(&TcpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.options.mss, None);
        assert_eq!(
            r.options.timestamps,
            Some(TcpTimestamps {
                tsval: 0x5497_b767,
                tsecr: 0x0519_5b5c
            })
        );
    }

    #[test]
    fn emit_rejects_impossible_payload_len_without_panicking() {
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: TcpSeqNumber(0),
            ack_number: TcpSeqNumber(0),
            flags: TcpFlags::SYN | TcpFlags::FIN,
            window_len: 0,
            urgent_pointer: 0,
            options: TcpOptions::default(),
            raw_options: RawOptions::EMPTY,
            payload_len: usize::MAX,
        };
        assert_eq!(r.buffer_len(), usize::MAX);
        assert_eq!(r.segment_len(), usize::MAX);
        let mut b = [0u8; 20];
        assert_eq!(
            r.emit_header(&mut TcpPacket::new_unchecked(&mut b[..])),
            Err(WireError::truncated(Layer::Tcp, usize::MAX, 20))
        );
        assert!(r
            .emit(&mut TcpPacket::new_unchecked(&mut b[..]), CLIENT, SERVER)
            .is_err());
        // Larger than the pseudo-header's 16-bit length: no silent bad checksum.
        let r = TcpRepr {
            payload_len: 65516,
            ..r
        };
        let mut big = vec![0u8; 65536];
        assert_eq!(
            r.emit(&mut TcpPacket::new_unchecked(&mut big[..]), CLIENT, SERVER),
            Err(WireError::bad_length(Layer::Tcp, "segment length", 65536))
        );
        let r = TcpRepr {
            payload_len: 65515,
            ..r
        };
        r.emit(&mut TcpPacket::new_unchecked(&mut big[..]), CLIENT, SERVER)
            .unwrap();
        assert!(TcpPacket::new_checked(&big[..65535])
            .unwrap()
            .verify_checksum(CLIENT, SERVER));
    }

    #[test]
    fn all_flags_and_reserved_roundtrip() {
        let mut b = [0u8; 20];
        let flags = TcpFlags::from_bits(0x0fff);
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: TcpSeqNumber(3),
            ack_number: TcpSeqNumber(4),
            flags,
            window_len: 5,
            urgent_pointer: 6,
            options: TcpOptions::default(),
            raw_options: RawOptions::EMPTY,
            payload_len: 0,
        };
        r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), CLIENT, SERVER)
            .unwrap();
        assert_eq!(b[12..14], [0x5f, 0xff]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert!(
            p.ns()
                && p.cwr()
                && p.ece()
                && p.urg()
                && p.ack()
                && p.psh()
                && p.rst()
                && p.syn()
                && p.fin()
        );
        assert_eq!(TcpRepr::parse(&p, CLIENT, SERVER).unwrap(), r);
        assert_eq!(format!("{:?}", TcpFlags::SYN | TcpFlags::ACK), "SYN|ACK");
        assert_eq!(format!("{:?}", TcpFlags::EMPTY), "none");
    }

    #[test]
    fn emit_checks_room() {
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: TcpSeqNumber(0),
            ack_number: TcpSeqNumber(0),
            flags: TcpFlags::ACK,
            window_len: 0,
            urgent_pointer: 0,
            options: TcpOptions {
                mss: Some(536),
                ..Default::default()
            },
            raw_options: RawOptions::EMPTY,
            payload_len: 10,
        };
        let mut b = [0u8; 33];
        assert_eq!(
            r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), CLIENT, SERVER),
            Err(WireError::truncated(Layer::Tcp, 34, 33))
        );
        // Odd raw options are padded with EOL.
        let r = TcpRepr {
            raw_options: RawOptions::from_slice(&[3, 3, 7]).unwrap(),
            payload_len: 0,
            ..r
        };
        let mut b = [0xffu8; 24];
        r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), CLIENT, SERVER)
            .unwrap();
        assert_eq!(b[12] >> 4, 6);
        assert_eq!(b[20..], [3, 3, 7, 0]);
    }

    #[test]
    fn seq_number_modular() {
        let a = TcpSeqNumber(0xffff_fff0);
        let b = a + 0x20;
        assert_eq!(b, TcpSeqNumber(0x10));
        assert!(a.before(b) && b.after(a));
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b - a, 0x20);
        assert_eq!(a - b, -0x20);
        assert_eq!(b - 0x20u32, a);
        assert!(a.before_eq(a) && a.after_eq(a) && !a.before(a));
        assert!(TcpSeqNumber(5).between(a, b));
        assert!(!TcpSeqNumber(0x11).between(a, b));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        // 2^31 apart: each is before the other, as with Linux before().
        let c = TcpSeqNumber(0);
        let d = TcpSeqNumber(0x8000_0000);
        assert!(c.before(d) && d.before(c));
        let mut e = a;
        e += 0x10;
        assert_eq!(e, TcpSeqNumber(0));
        e -= 1;
        assert_eq!(e, TcpSeqNumber(u32::MAX));
    }
}
