//! Fuzz target: IPv4 header and options (`ip_rcv`, `ip_options_compile`).
//! Every accessor runs; what parses is re-emitted (with its options), must
//! reproduce the header bytes, and must re-parse to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.version(),
        packet.ihl(),
        packet.tos(),
        packet.dscp(),
        packet.ecn(),
    );
    let _ = (packet.total_len(), packet.ident(), packet.reserved_flag());
    let _ = (
        packet.dont_frag(),
        packet.more_frags(),
        packet.frag_offset(),
    );
    let _ = (packet.ttl(), packet.protocol(), packet.checksum());
    let _ = (packet.src_addr(), packet.dst_addr(), packet.payload().len());
    let _ = (packet.is_fragment(), packet.header().len());
    let mut errors = 0;
    for option in packet.options_iter() {
        errors += usize::from(option.is_err());
    }
    assert!(errors <= 1, "the option iterator stops after an error");

    let checksum_ok = packet.verify_checksum();
    assert_eq!(Ipv4Repr::parse(&packet).is_ok(), checksum_ok);
    let repr = Ipv4Repr::parse_unverified(&packet).expect("checked packet parses");
    assert_eq!(repr.is_fragment(), packet.is_fragment());

    let mut out = [0u8; MAX_HEADER_LEN];
    let hl = packet.header_len();
    repr.emit_with_options(
        &mut Ipv4Packet::new_unchecked(&mut out[..hl]),
        packet.options(),
    )
    .expect("a parsed header re-emits");
    let emitted = Ipv4Packet::new_unchecked(&out[..hl]);
    assert!(emitted.verify_checksum());
    // Byte-exact but for the reserved flag, and the checksum (0xffff and
    // 0x0000 both verify when the rest sums to 0xffff; we emit 0x0000).
    let header = packet.header();
    assert_eq!(out[0..6], header[0..6]);
    assert_eq!(out[6] | 0x80, header[6] | 0x80);
    assert_eq!(out[7..10], header[7..10]);
    assert_eq!(out[12..hl], header[12..hl]);
    if checksum_ok && !packet.reserved_flag() && packet.checksum() != 0xffff {
        assert_eq!(emitted.checksum(), packet.checksum());
    }
    // Re-parse the emitted header with a payload the length it declares.
    let mut whole = vec![0u8; usize::from(emitted.total_len())];
    whole[..hl].copy_from_slice(&out[..hl]);
    let again =
        Ipv4Repr::parse(&Ipv4Packet::new_checked(&whole[..]).expect("re-check")).expect("re-parse");
    assert_eq!(again, repr);
});
