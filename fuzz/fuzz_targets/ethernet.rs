//! Fuzz target: Ethernet II header, VLAN tag walk and FCS check (ingress
//! steps 3 and 7-8). Every accessor runs; what parses is re-emitted and
//! must re-parse to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_wire::ethernet::{
    fcs, pad_to_min, parse_tags, EthernetFrame, EthernetRepr, VlanHeader, HEADER_LEN,
    MIN_FRAME_LEN, VLAN_TAG_LEN,
};

fuzz_target!(|data: &[u8]| {
    let _ = fcs::check_fcs(data);
    let _ = fcs::strip(data);

    if let Ok(v) = VlanHeader::new_checked(data) {
        let _ = (
            v.tci(),
            v.pcp(),
            v.dei(),
            v.vid(),
            v.inner_ethertype(),
            v.payload(),
        );
    }

    let Ok(frame) = EthernetFrame::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    let _ = (
        frame.dst_addr().is_broadcast(),
        frame.src_addr().is_unicast(),
    );
    let _ = (frame.ethertype().is_vlan(), frame.payload().len());
    let repr = EthernetRepr::parse(&frame).expect("checked frame parses");
    let mut header = [0u8; HEADER_LEN];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut header[..]))
        .expect("emit into 14 bytes");
    assert_eq!(&header[..], &data[..HEADER_LEN]);

    if let Ok(tagged) = parse_tags(data) {
        assert!(tagged.payload_offset <= data.len());
        assert_eq!(
            tagged.payload_offset,
            HEADER_LEN + VLAN_TAG_LEN * tagged.tag_count()
        );
        // Rebuild the tag stack and compare bytes.
        let mut rebuilt = [0u8; 2 * VLAN_TAG_LEN];
        for (i, tag) in tagged.tags().enumerate() {
            let at = i * VLAN_TAG_LEN;
            tag.emit(&mut rebuilt[at..at + VLAN_TAG_LEN])
                .expect("valid tag");
        }
        let n = VLAN_TAG_LEN * tagged.tag_count();
        assert_eq!(&rebuilt[..n], &data[12..12 + n]);
    }

    // Pad and append an FCS to a copy; it must verify.
    let mut buf = [0u8; 2048];
    let len = data.len().min(buf.len() - 4 - MIN_FRAME_LEN);
    buf[..len].copy_from_slice(&data[..len]);
    let padded = pad_to_min(&mut buf, len).expect("room to pad");
    let total = fcs::append(&mut buf, padded).expect("room for FCS");
    fcs::check_fcs(&buf[..total]).expect("fresh FCS verifies");
});
