//! Fuzz target: TCP (`tcp_v4_rcv`'s header and checksum, `tcp_transmit_skb`'s
//! header build). The first 8 bytes pick the pseudo-header addresses; every
//! accessor and option runs, and what parses is re-emitted and re-parsed.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netpath_wire::tcp::{RawOptions, TcpOptionIter, TcpOptions, TcpPacket, TcpRepr};

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (addrs, data) = input.split_at(8);
    let src = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
    let dst = Ipv4Addr::new(addrs[4], addrs[5], addrs[6], addrs[7]);

    // The option walker on its own, over arbitrary bytes.
    for opt in TcpOptionIter::new(data) {
        if let Ok(o) = opt {
            let mut buf = [0u8; 64];
            if let Ok(n) = o.emit(&mut buf) {
                assert_eq!(n, o.wire_len());
            }
        }
    }
    let _ = TcpOptions::parse(data);

    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.seq_number(),
        packet.ack_number(),
    );
    let _ = (packet.data_offset(), packet.header_len(), packet.flags());
    let _ = (
        packet.fin(),
        packet.syn(),
        packet.rst(),
        packet.psh(),
        packet.ack(),
    );
    let _ = (packet.urg(), packet.ece(), packet.cwr(), packet.ns());
    let _ = (packet.window_len(), packet.checksum(), packet.urgent_at());
    let _ = (
        packet.header(),
        packet.options(),
        packet.payload(),
        packet.segment_len(),
    );
    for opt in packet.options_iter() {
        let _ = opt.map(|o| (o.kind(), o.wire_len()));
    }
    let verified = packet.verify_checksum(src, dst);
    let Ok(repr) = TcpRepr::parse_unverified(&packet) else {
        return;
    };
    assert_eq!(TcpRepr::parse(&packet, src, dst).is_ok(), verified);
    assert_eq!(repr.buffer_len(), data.len());

    // Verbatim options: the header re-emits byte for byte.
    let mut out = data.to_vec();
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst)
        .expect("emit into the parsed length");
    // Everything but the checksum is as parsed; the checksum too when it
    // verified (0x0000 and 0xffff are the same one's-complement number).
    assert_eq!(&out[..16], &data[..16]);
    assert_eq!(&out[18..], &data[18..]);
    if verified && !matches!(packet.checksum(), 0 | 0xffff) {
        assert_eq!(&out[..], data);
    }
    let again = TcpRepr::parse(
        &TcpPacket::new_checked(&out[..]).expect("re-check"),
        src,
        dst,
    )
    .expect("re-parse");
    assert_eq!(again, repr);

    // Linux-layout options from the summary re-parse to the same summary.
    let linux = TcpRepr {
        raw_options: RawOptions::EMPTY,
        ..repr
    };
    if linux.header_len() <= 60 {
        let mut out = vec![0u8; linux.buffer_len()];
        linux
            .emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst)
            .expect("emit");
        let back = TcpRepr::parse(
            &TcpPacket::new_checked(&out[..]).expect("re-check"),
            src,
            dst,
        )
        .expect("re-parse");
        assert_eq!(back.options, linux.options);
        assert_eq!(
            (back.seq_number, back.flags, back.payload_len),
            (linux.seq_number, linux.flags, linux.payload_len)
        );
    }
});
