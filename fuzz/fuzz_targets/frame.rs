//! Fuzz target: a whole frame through the foundation's ingress walk — into an
//! skb from the pool, FCS checked, VLAN tags walked, then the Ethernet, IPv4
//! and transport headers parsed and pulled as `netif_receive_skb`, `ip_rcv`
//! and the L4 handlers will. No input may panic, and the skb offsets must
//! stay consistent. (Grows into `netif_receive_skb` when the device layer
//! lands.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath::skb::SkbPool;
use netpath_wire::arp::{ArpPacket, ArpRepr};
use netpath_wire::ethernet::{self, fcs, EtherType};
use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::tcp::{TcpPacket, TcpRepr};
use netpath_wire::udp::{UdpPacket, UdpRepr};

fuzz_target!(|data: &[u8]| {
    let pool = SkbPool::default();
    let Ok(mut skb) = pool.alloc_from(64, data) else {
        return;
    };
    let _ = fcs::check_fcs(skb.data());
    skb.reset_mac_header();
    let Ok(tags) = ethernet::parse_tags(skb.data()) else {
        return;
    };
    let Ok(()) = skb.pull(tags.payload_offset) else {
        panic!("parse_tags gave an offset past the frame");
    };
    skb.reset_network_header();
    assert_eq!(skb.mac_len(), Some(tags.payload_offset));

    if tags.ethertype == EtherType::ARP {
        if let Ok(p) = ArpPacket::new_checked(skb.data()) {
            let _ = ArpRepr::parse(&p);
        }
        return;
    }
    if tags.ethertype != EtherType::IPV4 {
        return;
    }
    let Ok(ip) = Ipv4Packet::new_checked(skb.data()) else {
        return;
    };
    let Ok(repr) = Ipv4Repr::parse_unverified(&ip) else {
        return;
    };
    let hl = ip.header_len();
    let total = hl + repr.payload_len;
    skb.trim(total)
        .expect("total length was checked against the buffer");
    skb.pull(hl).expect("header length was checked");
    skb.reset_transport_header();
    if repr.is_fragment() {
        return;
    }
    let (src, dst) = (repr.src_addr, repr.dst_addr);
    let l4 = skb.data();
    match repr.protocol {
        Protocol::TCP => {
            if let Ok(p) = TcpPacket::new_checked(l4) {
                let _ = p.verify_checksum(src, dst);
                let _ = TcpRepr::parse_unverified(&p);
            }
        }
        Protocol::UDP => {
            if let Ok(p) = UdpPacket::new_checked(l4) {
                let _ = UdpRepr::parse(&p, src, dst);
                let _ = UdpRepr::parse_unverified(&p);
            }
        }
        Protocol::ICMP => {
            if let Ok(p) = Icmpv4Packet::new_checked(l4) {
                let _ = Icmpv4Repr::parse_unverified(&p);
            }
        }
        _ => {}
    }
    let mut copy = skb.clone();
    copy.data_mut().fill(0);
    assert!(!copy.shares_data_with(&skb));
});
