//! Fuzz target: ARP (`arp_rcv` / `arp_process`). Every accessor runs; what
//! parses as Ethernet/IPv4 ARP is re-emitted byte for byte and re-parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_wire::arp::{ArpPacket, ArpRepr, ETH_IPV4_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.hardware_type(),
        packet.protocol_type(),
        packet.operation(),
    );
    let _ = (
        packet.hardware_len(),
        packet.protocol_len(),
        packet.packet_len(),
    );
    let _ = (packet.source_hardware_addr(), packet.source_protocol_addr());
    let _ = (packet.target_hardware_addr(), packet.target_protocol_addr());
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut out = [0u8; ETH_IPV4_LEN];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
        .expect("emit into 28 bytes");
    assert_eq!(&out[..], &data[..ETH_IPV4_LEN]);
    let again =
        ArpRepr::parse(&ArpPacket::new_checked(&out[..]).expect("re-check")).expect("re-parse");
    assert_eq!(again, repr);
});
