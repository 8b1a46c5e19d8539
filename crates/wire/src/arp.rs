//! ARP (RFC 826) packets, and the Ethernet/IPv4 form the stack speaks.
//!
//! Seed stages served: ingress step 8's dispatch of ethertype 0x0806 to
//! `arp_rcv` / `arp_process`, and egress step 6 (`neigh_resolve_output`
//! sending a request, `arp_send` building requests and replies).
//!
//! ```text
//! 0      2      4    5    6      8                                 8+2(hlen+plen)
//! | htype| ptype|hlen|plen| oper | sha (hlen) | spa (plen) | tha | tpa |
//! ```

use core::net::Ipv4Addr;

use crate::be16;
use crate::error::{check_len, Layer, Result, WireError};
use crate::ethernet::{EtherType, EthernetAddress};

/// Byte offsets of the fixed part.
pub mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    /// Start of the addresses.
    pub const ADDRS: usize = 8;
}

/// Length of the fixed part (before the addresses).
pub const FIXED_LEN: usize = 8;
/// Length of an Ethernet/IPv4 ARP packet.
pub const ETH_IPV4_LEN: usize = 28;
/// Hardware type of Ethernet (`ARPHRD_ETHER`).
pub const HTYPE_ETHERNET: u16 = 1;

/// The `oper` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
    /// Any other value (RARP, InARP, ...), kept as is.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            v => Operation::Unknown(v),
        }
    }
}

impl From<Operation> for u16 {
    fn from(op: Operation) -> u16 {
        match op {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A read/write view of an ARP packet of any hardware/protocol type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Accessors panic if the buffer is shorter than the lengths its
    /// `hlen`/`plen` declare; use [`ArpPacket::new_checked`] for input.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// `Truncated` unless the buffer holds the fixed part and all four
    /// addresses of the declared lengths.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        check_len(Layer::Arp, len, FIXED_LEN)?;
        check_len(Layer::Arp, len, self.packet_len())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }

    pub fn protocol_type(&self) -> EtherType {
        EtherType(be16(&self.buffer.as_ref()[field::PTYPE]))
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> Operation {
        Operation::from(be16(&self.buffer.as_ref()[field::OPER]))
    }

    /// Fixed part plus the four addresses: what the packet occupies.
    pub fn packet_len(&self) -> usize {
        FIXED_LEN + 2 * (usize::from(self.hardware_len()) + usize::from(self.protocol_len()))
    }

    fn addr(&self, index: usize, hw: bool) -> &[u8] {
        let h = usize::from(self.hardware_len());
        let p = usize::from(self.protocol_len());
        let start = field::ADDRS + index * (h + p) + if hw { 0 } else { h };
        let len = if hw { h } else { p };
        &self.buffer.as_ref()[start..start + len]
    }

    /// Sender hardware address (`hlen` bytes).
    pub fn source_hardware_addr(&self) -> &[u8] {
        self.addr(0, true)
    }

    /// Sender protocol address (`plen` bytes).
    pub fn source_protocol_addr(&self) -> &[u8] {
        self.addr(0, false)
    }

    /// Target hardware address (`hlen` bytes).
    pub fn target_hardware_addr(&self) -> &[u8] {
        self.addr(1, true)
    }

    /// Target protocol address (`plen` bytes).
    pub fn target_protocol_addr(&self) -> &[u8] {
        self.addr(1, false)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    pub fn set_hardware_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_protocol_type(&mut self, v: EtherType) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&v.0.to_be_bytes());
    }

    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, op: Operation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(op).to_be_bytes());
    }
}

/// An Ethernet/IPv4 ARP packet's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub operation: Operation,
    pub source_hw: EthernetAddress,
    pub source_ip: Ipv4Addr,
    pub target_hw: EthernetAddress,
    pub target_ip: Ipv4Addr,
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
    Ipv4Addr::from(a)
}

impl ArpRepr {
    /// `Unsupported` unless htype 1, ptype 0x0800, hlen 6, plen 4 (as
    /// `arp_process` drops other combinations on an Ethernet device).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET {
            return Err(WireError::unsupported(Layer::Arp, "hardware type"));
        }
        if packet.protocol_type() != EtherType::IPV4 {
            return Err(WireError::unsupported(Layer::Arp, "protocol type"));
        }
        if packet.hardware_len() != 6 {
            return Err(WireError::unsupported(Layer::Arp, "hardware length"));
        }
        if packet.protocol_len() != 4 {
            return Err(WireError::unsupported(Layer::Arp, "protocol length"));
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hw: EthernetAddress::from_bytes(packet.source_hardware_addr())
                .unwrap_or_default(),
            source_ip: ipv4(packet.source_protocol_addr()),
            target_hw: EthernetAddress::from_bytes(packet.target_hardware_addr())
                .unwrap_or_default(),
            target_ip: ipv4(packet.target_protocol_addr()),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        ETH_IPV4_LEN
    }

    /// Writes the 28-byte packet at the start of `packet`'s buffer;
    /// `Truncated` if it is shorter.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) -> Result<()> {
        let buf = packet.buffer.as_mut();
        check_len(Layer::Arp, buf.len(), ETH_IPV4_LEN)?;
        let buf = &mut buf[..ETH_IPV4_LEN];
        buf[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        buf[field::PTYPE].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        buf[field::OPER].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        buf[8..14].copy_from_slice(&self.source_hw.0);
        buf[14..18].copy_from_slice(&self.source_ip.octets());
        buf[18..24].copy_from_slice(&self.target_hw.0);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// The ARP payload of arp-ping.pcap's first frame: who-has 192.0.2.2
    /// tell 192.0.2.1, from 02:ba:09:4d:2c:5e.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xba, 0x09, 0x4d, 0x2c, 0x5e, 192, 0,
        2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), EtherType::IPV4);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.packet_len(), 28);
        assert_eq!(p.target_protocol_addr(), &[192, 0, 2, 2]);
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            ArpRepr {
                operation: Operation::Request,
                source_hw: EthernetAddress([0x02, 0xba, 0x09, 0x4d, 0x2c, 0x5e]),
                source_ip: Ipv4Addr::new(192, 0, 2, 1),
                target_hw: EthernetAddress::ZERO,
                target_ip: Ipv4Addr::new(192, 0, 2, 2),
            }
        );
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn operation_values() {
        assert_eq!(Operation::from(2), Operation::Reply);
        assert_eq!(Operation::from(3), Operation::Unknown(3));
        assert_eq!(u16::from(Operation::Unknown(9)), 9);
        let mut b = REQUEST;
        ArpPacket::new_unchecked(&mut b[..]).set_operation(Operation::Reply);
        assert_eq!(&b[6..8], &[0, 2]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            WireError::truncated(Layer::Arp, 28, 27)
        );
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..7]).unwrap_err(),
            WireError::truncated(Layer::Arp, 8, 7)
        );
        let mut b = REQUEST;
        b[1] = 32; // InfiniBand
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            ArpRepr::parse(&p).unwrap_err().kind,
            ErrorKind::Unsupported {
                field: "hardware type"
            }
        );
        // A different hlen changes where the addresses are, and is unsupported.
        let mut b = REQUEST;
        b[4] = 2;
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.packet_len(), 20);
        assert_eq!(p.source_protocol_addr(), &[0x09, 0x4d, 0x2c, 0x5e]);
        assert!(ArpRepr::parse(&p).is_err());
        let mut small = [0u8; 27];
        let r = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        assert!(r
            .emit(&mut ArpPacket::new_unchecked(&mut small[..]))
            .is_err());
    }
}
