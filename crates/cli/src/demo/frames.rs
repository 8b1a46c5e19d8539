//! Building and checking the demo's frames with the stack's own pieces: an
//! skb from the pool, headers pushed into its headroom by the wire emitters,
//! the FCS appended as a NIC would; on receive, the FCS checked, then each
//! header verified and pulled. (The full `netif_receive_skb` → `ip_rcv` walk
//! arrives with the device and IPv4 layers; this is the foundation's version.)

use std::net::Ipv4Addr;

use netpath::skb::{Skb, SkbError, SkbPool};
use netpath_wire::ethernet::{self, fcs, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netpath_wire::ipv4::{self, Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::WireError;

/// Room for Ethernet + VLAN + IPv4 with options + ICMP.
const HEADROOM: usize = 128;
/// ping's default payload.
pub const PING_DATA_LEN: usize = 56;

/// One end's addresses.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub mac: EthernetAddress,
    pub ip: Ipv4Addr,
}

/// Why a received frame was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// The FCS did not verify (a NIC counts `rx_crc_errors` and drops it).
    Fcs,
    /// A header did not parse or a checksum did not verify.
    Wire(WireError),
    /// Parsed fine but is not ICMP echo for us.
    NotForUs,
    Skb(SkbError),
}

impl From<WireError> for RxError {
    fn from(e: WireError) -> Self {
        RxError::Wire(e)
    }
}

impl From<SkbError> for RxError {
    fn from(e: SkbError) -> Self {
        RxError::Skb(e)
    }
}

/// An ICMP echo message as the demo sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub reply: bool,
    pub ident: u16,
    pub seq: u16,
    pub src: Ipv4Addr,
    /// The sender's virtual send time, carried in the payload as ping does.
    pub sent_ns: u64,
}

/// Builds an echo request or reply frame, FCS included, egress-style: put the
/// payload, then push ICMP, IPv4 and Ethernet headers in front of it.
pub fn build_echo(
    pool: &SkbPool,
    from: Addrs,
    to: Addrs,
    echo: Echo,
    ip_id: u16,
) -> Result<Skb, RxError> {
    let mut skb = pool.alloc(HEADROOM + 14 + 20 + 8 + PING_DATA_LEN + ethernet::FCS_LEN)?;
    skb.reserve(HEADROOM)?;
    let data = skb.put(PING_DATA_LEN)?;
    data[..8].copy_from_slice(&echo.sent_ns.to_be_bytes());
    for (i, b) in data[8..].iter_mut().enumerate() {
        *b = 0x10 + i as u8; // ping's pattern
    }

    let icmp = if echo.reply {
        Icmpv4Repr::EchoReply {
            ident: echo.ident,
            seq_no: echo.seq,
            data_len: PING_DATA_LEN,
        }
    } else {
        Icmpv4Repr::EchoRequest {
            ident: echo.ident,
            seq_no: echo.seq,
            data_len: PING_DATA_LEN,
        }
    };
    skb.push(8)?;
    skb.reset_transport_header();
    icmp.emit(&mut Icmpv4Packet::new_unchecked(skb.data_mut()))?;

    let ip = Ipv4Repr {
        src_addr: from.ip,
        dst_addr: to.ip,
        protocol: Protocol::ICMP,
        ttl: 64,
        tos: 0,
        ident: ip_id,
        dont_frag: !echo.reply,
        more_frags: false,
        frag_offset: 0,
        payload_len: 8 + PING_DATA_LEN,
    };
    skb.push(ipv4::HEADER_LEN)?;
    skb.reset_network_header();
    ip.emit(&mut Ipv4Packet::new_unchecked(skb.data_mut()))?;

    let eth = EthernetRepr {
        src_addr: from.mac,
        dst_addr: to.mac,
        ethertype: EtherType::IPV4,
    };
    skb.push(ethernet::HEADER_LEN)?;
    skb.reset_mac_header();
    eth.emit(&mut EthernetFrame::new_unchecked(skb.data_mut()))?;

    // The NIC appends the FCS.
    let len = skb.len();
    skb.put(ethernet::FCS_LEN)?;
    fcs::append(skb.data_mut(), len)?;
    Ok(skb)
}

/// Checks and takes apart a received frame, ingress-style: FCS, Ethernet
/// (pulled), IPv4 header checksum (pulled), ICMP checksum.
pub fn receive_echo(skb: &mut Skb, me: Addrs) -> Result<Echo, RxError> {
    if fcs::check_fcs(skb.data()).is_err() {
        return Err(RxError::Fcs);
    }
    let without_fcs = skb.len() - ethernet::FCS_LEN;
    skb.trim(without_fcs)?;

    skb.reset_mac_header();
    let eth = EthernetRepr::parse(&EthernetFrame::new_checked(skb.data())?)?;
    if eth.dst_addr != me.mac || eth.ethertype != EtherType::IPV4 {
        return Err(RxError::NotForUs);
    }
    skb.pull(ethernet::HEADER_LEN)?;
    skb.reset_network_header();

    let pkt = Ipv4Packet::new_checked(skb.data())?;
    let ip = Ipv4Repr::parse(&pkt)?;
    let hl = pkt.header_len();
    if ip.dst_addr != me.ip || ip.protocol != Protocol::ICMP || ip.is_fragment() {
        return Err(RxError::NotForUs);
    }
    skb.trim(hl + ip.payload_len)?;
    skb.pull(hl)?;
    skb.reset_transport_header();

    let icmp_pkt = Icmpv4Packet::new_checked(skb.data())?;
    let (reply, ident, seq) = match Icmpv4Repr::parse(&icmp_pkt)? {
        Icmpv4Repr::EchoRequest { ident, seq_no, .. } => (false, ident, seq_no),
        Icmpv4Repr::EchoReply { ident, seq_no, .. } => (true, ident, seq_no),
        _ => return Err(RxError::NotForUs),
    };
    let data = icmp_pkt.data();
    let sent_ns = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    Ok(Echo {
        reply,
        ident,
        seq,
        src: ip.src_addr,
        sent_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u8) -> Addrs {
        Addrs {
            mac: EthernetAddress([0x02, 0, 0, 0, 0, n]),
            ip: Ipv4Addr::new(192, 0, 2, n),
        }
    }

    #[test]
    fn echo_round_trips_and_is_a_real_frame() {
        let pool = SkbPool::default();
        let echo = Echo {
            reply: false,
            ident: 7,
            seq: 3,
            src: addrs(1).ip,
            sent_ns: 42,
        };
        let mut skb = build_echo(&pool, addrs(1), addrs(2), echo, 0x1234).unwrap();
        assert_eq!(skb.len(), 14 + 20 + 8 + 56 + 4);
        let bytes = skb.data().to_vec();
        assert_eq!(&bytes[12..14], &[0x08, 0x00]);
        assert_eq!(bytes[14], 0x45);
        assert_eq!(&bytes[18..20], &[0x12, 0x34]);
        assert_eq!(bytes[14 + 20], 8, "ICMP type echo request");
        assert_eq!(receive_echo(&mut skb, addrs(2)).unwrap(), echo);
        assert_eq!(skb.len(), 8 + 56);
        assert_eq!(skb.mac_len(), Some(14));
    }

    #[test]
    fn a_flipped_bit_fails_the_fcs() {
        let pool = SkbPool::default();
        let echo = Echo {
            reply: true,
            ident: 1,
            seq: 1,
            src: addrs(2).ip,
            sent_ns: 0,
        };
        let mut skb = build_echo(&pool, addrs(2), addrs(1), echo, 1).unwrap();
        skb.data_mut()[40] ^= 0x08;
        assert_eq!(receive_echo(&mut skb, addrs(1)), Err(RxError::Fcs));
        let mut other = build_echo(&pool, addrs(2), addrs(1), echo, 1).unwrap();
        assert_eq!(receive_echo(&mut other, addrs(3)), Err(RxError::NotForUs));
    }
}
