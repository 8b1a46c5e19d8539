//! Fuzz target: ICMPv4 (the errors of `ip_rcv` / `ip_forward`, and echo).
//! Every accessor runs; what parses is re-emitted byte for byte over the
//! same data and re-parsed to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        assert!(data.len() < 8);
        return;
    };
    let _ = (packet.msg_type(), packet.msg_code(), packet.checksum());
    let _ = (
        packet.rest_of_header(),
        packet.echo_ident(),
        packet.echo_seq_no(),
    );
    let _ = (packet.next_hop_mtu(), packet.gateway(), packet.pointer());
    let _ = (packet.data(), packet.quoted_datagram());
    let verified = packet.verify_checksum();
    let checked = Icmpv4Repr::parse(&packet);
    assert_eq!(checked.is_ok(), verified);
    let Ok(repr) = Icmpv4Repr::parse_unverified(&packet) else {
        return;
    };
    assert_eq!(repr.buffer_len(), data.len());
    let mut out = data.to_vec();
    let mut view = Icmpv4Packet::new_checked(&mut out[..]).expect("same length");
    repr.emit(&mut view).expect("emit into the parsed length");
    // Everything but the checksum is as parsed. The checksum matches too
    // when it verified, except that 0x0000 and 0xffff are the same number in
    // one's complement (both verify when the rest sums to 0xffff).
    assert_eq!(&out[..2], &data[..2]);
    assert_eq!(&out[4..], &data[4..]);
    if verified && !matches!(packet.checksum(), 0 | 0xffff) {
        assert_eq!(&out[..], data);
    }
    let again = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).expect("re-check"))
        .expect("re-parse");
    assert_eq!(again, repr);
});
