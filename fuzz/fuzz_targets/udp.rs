//! Fuzz target: UDP (the datagram path). The first 8 bytes pick the
//! pseudo-header addresses; every accessor runs, and what parses is
//! re-emitted and re-parsed.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netpath_wire::udp::{UdpPacket, UdpRepr, HEADER_LEN};

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (addrs, data) = input.split_at(8);
    let src = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
    let dst = Ipv4Addr::new(addrs[4], addrs[5], addrs[6], addrs[7]);
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.len(),
        packet.checksum(),
    );
    let _ = (packet.payload(), packet.is_empty());
    let verified = packet.verify_checksum(src, dst);
    assert_eq!(UdpRepr::parse(&packet, src, dst).is_ok(), verified);
    let Ok(repr) = UdpRepr::parse_unverified(&packet) else {
        return;
    };
    let len = repr.buffer_len();
    assert!(len <= data.len());
    let mut out = data[..len].to_vec();
    repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), src, dst)
        .expect("emit into the parsed length");
    assert_eq!(&out[..6], &data[..6]);
    assert_eq!(&out[HEADER_LEN..], &data[HEADER_LEN..len]);
    if verified && packet.checksum() != 0 {
        assert_eq!(&out[..], &data[..len]);
    }
    let again = UdpRepr::parse(
        &UdpPacket::new_checked(&out[..]).expect("re-check"),
        src,
        dst,
    )
    .expect("re-parse");
    assert_eq!(again, repr);
});
