//! Ethernet II frames, 802.1Q / 802.1ad VLAN tags, and the frame check
//! sequence.
//!
//! Seed stages served: ingress step 3 (the NIC's FCS check, [`fcs`]), steps
//! 7–8 (`eth_type_trans` reading the destination and ethertype, and the
//! VLAN tag walk of `__netif_receive_skb_core` / `vlan_do_receive`), and
//! egress step 7 (`dev_hard_header` pushing the Ethernet header, the driver
//! padding to the 60-byte minimum and the NIC appending the FCS).
//!
//! ```text
//! 0      6      12        14 (or 18, 22 with tags)
//! | dst  | src  | type/TPID | [TCI | type]... | payload
//! ```

use core::fmt;

use crate::be16;
use crate::error::{check_len, ErrorKind, Layer, Result, WireError};

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// The address in the first six bytes of `bytes`, if there are six.
    pub fn from_bytes(bytes: &[u8]) -> Option<EthernetAddress> {
        let a: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(EthernetAddress(a))
    }

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit is set (broadcast is a multicast address too).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The I/G bit is clear. Like Linux's `is_unicast_ether_addr`, this
    /// includes the all-zero address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit is set: a locally administered address.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The 16-bit type field (or a tag's TPID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    /// 802.1Q customer tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// 802.1ad service tag (Q-in-Q).
    pub const QINQ: EtherType = EtherType(0x88a8);
    pub const LLDP: EtherType = EtherType(0x88cc);
    /// Values below this are 802.3 length fields, not types (`ETH_P_802_3_MIN`).
    pub const MIN_TYPE: u16 = 0x0600;

    /// A TPID that starts a VLAN tag (802.1Q or 802.1ad), as
    /// `eth_type_vlan()` in Linux.
    pub const fn is_vlan(self) -> bool {
        self.0 == Self::VLAN.0 || self.0 == Self::QINQ.0
    }

    /// An 802.3 length rather than an Ethernet II type.
    pub const fn is_length(self) -> bool {
        self.0 < Self::MIN_TYPE
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Byte ranges of the Ethernet II header.
pub mod field {
    use core::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of the untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Smallest frame on the wire, FCS excluded (`ETH_ZLEN`).
pub const MIN_FRAME_LEN: usize = 60;
/// Length of the frame check sequence.
pub const FCS_LEN: usize = 4;
/// Length of one VLAN tag (TCI + inner type).
pub const VLAN_TAG_LEN: usize = 4;
/// Most tags [`parse_tags`] walks: 802.1ad outer + 802.1Q inner.
pub const MAX_VLAN_TAGS: usize = 2;

/// A read/write view of an Ethernet II frame (without FCS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checks: the accessors panic if it is shorter
    /// than [`HEADER_LEN`]. For emitters that have sized the buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer`, failing with `Truncated` if it cannot hold the header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    pub fn check_len(&self) -> Result<()> {
        check_len(Layer::Ethernet, self.buffer.as_ref().len(), HEADER_LEN)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DST]).unwrap_or_default()
    }

    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SRC]).unwrap_or_default()
    }

    /// The type field right after the addresses (a TPID if the frame is
    /// tagged; see [`parse_tags`] for the L3 type).
    pub fn ethertype(&self) -> EtherType {
        EtherType(be16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Everything after the 14-byte header (tags included, if any).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    pub fn set_ethertype(&mut self, ty: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ty.0.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 14 bytes of `frame`'s buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) -> Result<()> {
        frame.check_len()?;
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

/// A read/write view of one VLAN tag as it follows a TPID: TCI, then the
/// next type (another TPID, or the L3 ethertype).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Accessors panic if `buffer` is shorter than [`VLAN_TAG_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanHeader { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        check_len(Layer::Vlan, buffer.as_ref().len(), VLAN_TAG_LEN)?;
        Ok(Self::new_unchecked(buffer))
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    pub fn tci(&self) -> u16 {
        be16(self.buffer.as_ref())
    }

    /// Priority code point.
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier.
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The type field after the TCI.
    pub fn inner_ethertype(&self) -> EtherType {
        EtherType(be16(&self.buffer.as_ref()[2..4]))
    }

    /// Everything after the 4-byte tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[VLAN_TAG_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    pub fn set_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[0..2].copy_from_slice(&tci.to_be_bytes());
    }

    pub fn set_inner_ethertype(&mut self, ty: EtherType) {
        self.buffer.as_mut()[2..4].copy_from_slice(&ty.0.to_be_bytes());
    }
}

/// One VLAN tag: its TPID and TCI fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// [`EtherType::VLAN`] or [`EtherType::QINQ`].
    pub tpid: EtherType,
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
}

impl VlanTag {
    pub fn from_tci(tpid: EtherType, tci: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// The TCI; `Invalid` if PCP > 7 or VID > 4095.
    pub fn tci(&self) -> Result<u16> {
        if self.pcp > 7 {
            return Err(WireError::invalid(Layer::Vlan, "pcp"));
        }
        if self.vid > 0x0fff {
            return Err(WireError::invalid(Layer::Vlan, "vid"));
        }
        Ok(u16::from(self.pcp) << 13 | u16::from(self.dei) << 12 | self.vid)
    }

    /// Writes the TPID at `buf[0..2]` and the TCI at `buf[2..4]`: the tag as
    /// it sits between the source address and the next type.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let tci = self.tci()?;
        check_len(Layer::Vlan, buf.len(), VLAN_TAG_LEN)?;
        buf[0..2].copy_from_slice(&self.tpid.0.to_be_bytes());
        buf[2..4].copy_from_slice(&tci.to_be_bytes());
        Ok(())
    }
}

/// A frame's VLAN tags (outermost first), its L3 type and where L3 starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaggedFrame {
    tags: [Option<VlanTag>; MAX_VLAN_TAGS],
    /// The type after the last tag (the L3 protocol).
    pub ethertype: EtherType,
    /// Offset of the L3 header from the start of the frame.
    pub payload_offset: usize,
}

impl TaggedFrame {
    /// The tags, outermost first (empty for an untagged frame).
    pub fn tags(&self) -> impl Iterator<Item = VlanTag> + '_ {
        self.tags.iter().flatten().copied()
    }

    pub fn tag_count(&self) -> usize {
        self.tags.iter().flatten().count()
    }

    /// The outermost tag, if any.
    pub fn outer(&self) -> Option<VlanTag> {
        self.tags[0]
    }

    /// The second tag (Q-in-Q inner), if any.
    pub fn inner(&self) -> Option<VlanTag> {
        self.tags[1]
    }
}

/// Walks up to [`MAX_VLAN_TAGS`] VLAN tags after the addresses of `frame`
/// (any mix of 0x8100 and 0x88a8, as Linux's `__vlan_get_protocol` accepts).
/// `Truncated` (layer `Ethernet` or `Vlan`) if a tag is cut short,
/// `Unsupported` for a third tag.
pub fn parse_tags(frame: &[u8]) -> Result<TaggedFrame> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut out = TaggedFrame {
        tags: [None; MAX_VLAN_TAGS],
        ethertype: eth.ethertype(),
        payload_offset: HEADER_LEN,
    };
    for slot in out.tags.iter_mut() {
        if !out.ethertype.is_vlan() {
            return Ok(out);
        }
        let rest = frame.get(out.payload_offset..).unwrap_or_default();
        let tag = VlanHeader::new_checked(rest).map_err(|e| match e.kind {
            ErrorKind::Truncated { .. } => {
                WireError::truncated(Layer::Vlan, out.payload_offset + VLAN_TAG_LEN, frame.len())
            }
            _ => e,
        })?;
        *slot = Some(VlanTag::from_tci(out.ethertype, tag.tci()));
        out.ethertype = tag.inner_ethertype();
        out.payload_offset += VLAN_TAG_LEN;
    }
    if out.ethertype.is_vlan() {
        return Err(WireError::unsupported(Layer::Vlan, "tag depth"));
    }
    Ok(out)
}

/// Zero-pads `buf[len..MIN_FRAME_LEN]` as a driver does for short frames
/// (`eth_skb_pad`) and returns the padded length, `max(len, 60)`.
/// `Truncated` if `buf` cannot hold it.
pub fn pad_to_min(buf: &mut [u8], len: usize) -> Result<usize> {
    let padded = len.max(MIN_FRAME_LEN);
    check_len(Layer::Ethernet, buf.len(), padded)?;
    buf[len..padded].fill(0);
    Ok(padded)
}

/// The Ethernet frame check sequence: IEEE CRC-32 over the whole frame
/// (addresses to padding), sent least significant byte first.
pub mod fcs {
    use super::FCS_LEN;
    use crate::error::{check_len, ErrorKind, Layer, Result, WireError};

    /// The CRC-32 of `frame_without_fcs`, as a number. On the wire it is
    /// `fcs(..).to_le_bytes()`.
    pub fn fcs(frame_without_fcs: &[u8]) -> u32 {
        crc32fast::hash(frame_without_fcs)
    }

    /// Writes the FCS of `buf[..len]` into `buf[len..len + 4]` and returns the
    /// new length. `Truncated` if `buf` is too short.
    pub fn append(buf: &mut [u8], len: usize) -> Result<usize> {
        let total = len.saturating_add(FCS_LEN);
        check_len(Layer::Ethernet, buf.len(), total)?;
        let crc = fcs(&buf[..len]);
        buf[len..total].copy_from_slice(&crc.to_le_bytes());
        Ok(total)
    }

    /// Checks the trailing 4 bytes of `frame_with_fcs` against the CRC of the
    /// rest: `Fcs` if they differ, `Truncated` if there are not 4 bytes.
    pub fn check_fcs(frame_with_fcs: &[u8]) -> Result<()> {
        check_len(Layer::Ethernet, frame_with_fcs.len(), FCS_LEN)?;
        let (frame, trailer) = frame_with_fcs.split_at(frame_with_fcs.len() - FCS_LEN);
        if trailer == fcs(frame).to_le_bytes() {
            Ok(())
        } else {
            Err(WireError::new(Layer::Ethernet, ErrorKind::Fcs))
        }
    }

    /// The frame without its FCS, if the FCS verifies.
    pub fn strip(frame_with_fcs: &[u8]) -> Result<&[u8]> {
        check_fcs(frame_with_fcs)?;
        Ok(&frame_with_fcs[..frame_with_fcs.len() - FCS_LEN])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first frame of arp-ping.pcap: a broadcast ARP request.
    const ARP_REQUEST: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xba, 0x09, 0x4d, 0x2c, 0x5e, 0x08, 0x06,
    ];

    #[test]
    fn address_classes_and_display() {
        let b = EthernetAddress::BROADCAST;
        assert!(b.is_broadcast() && b.is_multicast() && !b.is_unicast());
        let m = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(!m.is_broadcast() && m.is_multicast() && !m.is_unicast());
        let u = EthernetAddress([0x02, 0xab, 0xcd, 0xef, 0x01, 0x9a]);
        assert!(u.is_unicast() && u.is_local() && !u.is_multicast());
        assert_eq!(u.to_string(), "02:ab:cd:ef:01:9a");
        assert_eq!(EthernetAddress::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(EtherType::ARP.to_string(), "0x0806");
        assert!(EtherType(0x05dc).is_length() && !EtherType::IPV4.is_length());
    }

    #[test]
    fn parse_and_emit() {
        let f = EthernetFrame::new_checked(&ARP_REQUEST[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.dst_addr, EthernetAddress::BROADCAST);
        assert_eq!(
            r.src_addr,
            EthernetAddress([0x02, 0xba, 0x09, 0x4d, 0x2c, 0x5e])
        );
        assert_eq!(r.ethertype, EtherType::ARP);
        assert!(f.payload().is_empty());
        let mut out = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, ARP_REQUEST);
        assert_eq!(
            r.emit(&mut EthernetFrame::new_unchecked(&mut [0u8; 13][..])),
            Err(WireError::truncated(Layer::Ethernet, 14, 13))
        );
        assert_eq!(
            EthernetFrame::new_checked(&ARP_REQUEST[..13]).unwrap_err(),
            WireError::truncated(Layer::Ethernet, 14, 13)
        );
    }

    #[test]
    fn vlan_tags() {
        // 802.1ad (PCP 5, DEI 1, VID 100) then 802.1Q (VID 10), then IPv4.
        let mut f = [0u8; 26];
        f[12..14].copy_from_slice(&[0x88, 0xa8]);
        f[14..18].copy_from_slice(&[0xb0, 0x64, 0x81, 0x00]);
        f[18..22].copy_from_slice(&[0x00, 0x0a, 0x08, 0x00]);
        let t = parse_tags(&f).unwrap();
        assert_eq!(t.tag_count(), 2);
        assert_eq!(
            t.outer(),
            Some(VlanTag {
                tpid: EtherType::QINQ,
                pcp: 5,
                dei: true,
                vid: 100
            })
        );
        assert_eq!(
            t.inner(),
            Some(VlanTag {
                tpid: EtherType::VLAN,
                pcp: 0,
                dei: false,
                vid: 10
            })
        );
        assert_eq!((t.ethertype, t.payload_offset), (EtherType::IPV4, 22));

        // Re-emit the tags and compare bytes.
        let mut again = [0u8; 8];
        t.outer().unwrap().emit(&mut again[..4]).unwrap();
        t.inner().unwrap().emit(&mut again[4..]).unwrap();
        assert_eq!(again, [0x88, 0xa8, 0xb0, 0x64, 0x81, 0x00, 0x00, 0x0a]);

        let v = VlanHeader::new_checked(&f[14..18]).unwrap();
        assert_eq!((v.pcp(), v.dei(), v.vid()), (5, true, 100));
        assert_eq!(v.inner_ethertype(), EtherType::VLAN);

        // Cut inside the second tag.
        assert_eq!(
            parse_tags(&f[..20]).unwrap_err(),
            WireError::truncated(Layer::Vlan, 22, 20)
        );
        // A third tag.
        f[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            parse_tags(&f).unwrap_err(),
            WireError::unsupported(Layer::Vlan, "tag depth")
        );
        // Untagged.
        let t = parse_tags(&ARP_REQUEST).unwrap();
        assert_eq!(
            (t.tag_count(), t.ethertype, t.payload_offset),
            (0, EtherType::ARP, 14)
        );
        assert!(VlanTag {
            tpid: EtherType::VLAN,
            pcp: 8,
            dei: false,
            vid: 0
        }
        .tci()
        .is_err());
    }

    #[test]
    fn fcs_known_values() {
        // The CRC-32 check value.
        assert_eq!(fcs::fcs(b"123456789"), 0xcbf4_3926);
        let mut buf = [0u8; 64];
        buf[..14].copy_from_slice(&ARP_REQUEST);
        let len = pad_to_min(&mut buf, 14).unwrap();
        assert_eq!(len, 60);
        let total = fcs::append(&mut buf, len).unwrap();
        assert_eq!(total, 64);
        fcs::check_fcs(&buf).unwrap();
        // CRC over frame + FCS leaves the fixed CRC-32 residue.
        assert_eq!(!crc32fast::hash(&buf), 0xdebb_20e3);
        assert_eq!(fcs::strip(&buf).unwrap().len(), 60);
        buf[20] ^= 1;
        assert_eq!(
            fcs::check_fcs(&buf),
            Err(WireError::new(Layer::Ethernet, ErrorKind::Fcs))
        );
        assert!(fcs::check_fcs(&buf[..3]).is_err());
        assert!(fcs::append(&mut buf, 61).is_err());
    }

    #[test]
    fn padding() {
        let mut buf = [0xaau8; 70];
        assert_eq!(pad_to_min(&mut buf, 42).unwrap(), 60);
        assert!(buf[42..60].iter().all(|&b| b == 0));
        assert_eq!(buf[60], 0xaa);
        assert_eq!(pad_to_min(&mut buf, 65).unwrap(), 65);
        assert!(pad_to_min(&mut buf[..59], 20).is_err());
    }
}
