//! Property tests for the L2/L3 formats, differential against `etherparse`
//! 0.16 in both directions (headers it builds parse the same in ours; headers
//! we emit parse the same in it), and "arbitrary bytes never panic".
//!
//! etherparse 0.16 has no ARP, so ARP is checked against an independent
//! byte-level encoding written here, and its framing against etherparse.

use std::net::Ipv4Addr;

use etherparse::{
    EtherType as EpEtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Dscp, Ipv4Ecn,
    Ipv4Header, Ipv4Options, SingleVlanHeader, SlicedPacket, VlanId, VlanPcp, VlanSlice,
};
use netpath_wire::arp::{ArpPacket, ArpRepr, Operation};
use netpath_wire::ethernet::{
    fcs, parse_tags, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanHeader, VlanTag,
    HEADER_LEN,
};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::pcap::PcapReader;
use proptest::collection::vec;
use proptest::prelude::*;

/// A type that is neither IPv4/IPv6 nor a VLAN TPID (so etherparse stops at
/// L2 and both sides agree where the tags end).
fn plain_ethertype() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("not IP or a TPID", |t| {
        ![0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100].contains(t)
    })
}

fn tpid() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0x8100u16), Just(0x88a8u16)]
}

/// (pcp, dei, vid, tpid)
fn tag() -> impl Strategy<Value = (u8, bool, u16, u16)> {
    (0u8..8, any::<bool>(), 0u16..4096, tpid())
}

/// An etherparse IPv4 header with options and its payload length.
fn ep_ipv4() -> impl Strategy<Value = (Ipv4Header, usize)> {
    (
        (0u8..64, 0u8..4, any::<u16>(), any::<bool>(), any::<bool>()),
        (0u16..8192, any::<u8>(), any::<u8>()),
        (any::<[u8; 4]>(), any::<[u8; 4]>()),
        (0usize..=10).prop_flat_map(|n| vec(any::<u8>(), n * 4)),
        0usize..64,
    )
        .prop_map(
            |((dscp, ecn, id, df, mf), (off, ttl, proto), (src, dst), opts, payload_len)| {
                let mut h = Ipv4Header {
                    dscp: Ipv4Dscp::try_new(dscp).unwrap(),
                    ecn: Ipv4Ecn::try_new(ecn).unwrap(),
                    identification: id,
                    dont_fragment: df,
                    more_fragments: mf,
                    fragment_offset: IpFragOffset::try_new(off).unwrap(),
                    time_to_live: ttl,
                    protocol: IpNumber(proto),
                    source: src,
                    destination: dst,
                    ..Default::default()
                };
                h.options = Ipv4Options::try_from(&opts[..]).unwrap();
                h.total_len = (h.header_len() + payload_len) as u16;
                h.header_checksum = h.calc_header_checksum();
                (h, payload_len)
            },
        )
}

/// One of our reprs plus options bytes.
fn our_ipv4() -> impl Strategy<Value = (Ipv4Repr, Vec<u8>)> {
    (
        (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>(), any::<u8>()),
        (any::<u8>(), any::<u16>(), any::<bool>(), any::<bool>()),
        (0u16..8192, 0usize..1500),
        (0usize..=10).prop_flat_map(|n| vec(any::<u8>(), n * 4)),
    )
        .prop_map(
            |((src, dst, proto, ttl), (tos, ident, df, mf), (off, payload_len), opts)| {
                let repr = Ipv4Repr {
                    src_addr: Ipv4Addr::from(src),
                    dst_addr: Ipv4Addr::from(dst),
                    protocol: Protocol(proto),
                    ttl,
                    tos,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off * 8,
                    payload_len,
                };
                (repr, opts)
            },
        )
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (
        any::<u16>(),
        any::<[u8; 6]>(),
        any::<[u8; 4]>(),
        any::<[u8; 6]>(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(op, sh, si, th, ti)| ArpRepr {
            operation: Operation::from(op),
            source_hw: EthernetAddress(sh),
            source_ip: Ipv4Addr::from(si),
            target_hw: EthernetAddress(th),
            target_ip: Ipv4Addr::from(ti),
        })
}

/// Exercises every accessor of every L2/L3 view on `data`; must not panic.
fn poke_everything(data: &[u8]) {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
        let r = EthernetRepr::parse(&f).unwrap();
        let _ = (r.dst_addr.to_string(), r.src_addr.is_multicast());
    }
    if let Ok(t) = parse_tags(data) {
        assert!(t.payload_offset <= data.len());
        assert_eq!(t.payload_offset, HEADER_LEN + 4 * t.tag_count());
        let _ = t.tags().count();
    }
    if let Ok(v) = VlanHeader::new_checked(data) {
        let _ = (v.pcp(), v.dei(), v.vid(), v.inner_ethertype(), v.payload());
    }
    let _ = fcs::check_fcs(data);
    if let Ok(p) = ArpPacket::new_checked(data) {
        let _ = (p.hardware_type(), p.protocol_type(), p.operation());
        let _ = (p.source_hardware_addr(), p.source_protocol_addr());
        let _ = (p.target_hardware_addr(), p.target_protocol_addr());
        let _ = ArpRepr::parse(&p);
    }
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (
            p.version(),
            p.ihl(),
            p.tos(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
        );
        let _ = (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset());
        let _ = (
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = (
            p.options(),
            p.payload(),
            p.verify_checksum(),
            p.is_fragment(),
        );
        let _ = p.options_iter().count();
        let _ = Ipv4Repr::parse(&p);
        let _ = Ipv4Repr::parse_unverified(&p);
    }
    if let Ok(r) = PcapReader::new(data) {
        let _ = r.count();
    }
}

proptest! {
    #[test]
    fn ethernet_from_etherparse(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(), ty in any::<u16>(), payload in vec(any::<u8>(), 0..32)) {
        let h = Ethernet2Header { destination: dst, source: src, ether_type: EpEtherType(ty) };
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        prop_assert_eq!(r.dst_addr.0, dst);
        prop_assert_eq!(r.src_addr.0, src);
        prop_assert_eq!(r.ethertype, EtherType(ty));
        prop_assert_eq!(f.payload(), &payload[..]);
    }

    #[test]
    fn ethernet_to_etherparse(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(), ty in any::<u16>()) {
        let r = EthernetRepr { dst_addr: EthernetAddress(dst), src_addr: EthernetAddress(src), ethertype: EtherType(ty) };
        let mut buf = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..])).unwrap();
        let (h, rest) = Ethernet2Header::from_slice(&buf).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!((h.destination, h.source, h.ether_type.0), (dst, src, ty));
        prop_assert_eq!(EthernetAddress(dst).is_multicast(), dst[0] & 1 == 1);
    }

    #[test]
    fn vlan_tags_from_etherparse(
        addrs in any::<([u8; 6], [u8; 6])>(),
        tags in vec(tag(), 0..=2),
        inner in plain_ethertype(),
        payload in vec(any::<u8>(), 0..16),
    ) {
        // Build: Ethernet(TPID of first tag | inner) + etherparse VLAN headers.
        let types: Vec<u16> = tags.iter().map(|t| t.3).chain([inner]).collect();
        let eth = Ethernet2Header { destination: addrs.0, source: addrs.1, ether_type: EpEtherType(types[0]) };
        let mut bytes = eth.to_bytes().to_vec();
        for (i, &(pcp, dei, vid, _)) in tags.iter().enumerate() {
            let v = SingleVlanHeader {
                pcp: VlanPcp::try_new(pcp).unwrap(),
                drop_eligible_indicator: dei,
                vlan_id: VlanId::try_new(vid).unwrap(),
                ether_type: EpEtherType(types[i + 1]),
            };
            bytes.extend_from_slice(&v.to_bytes());
        }
        bytes.extend_from_slice(&payload);

        let ours = parse_tags(&bytes).unwrap();
        let got: Vec<VlanTag> = ours.tags().collect();
        let want: Vec<VlanTag> = tags
            .iter()
            .map(|&(pcp, dei, vid, tpid)| VlanTag { tpid: EtherType(tpid), pcp, dei, vid })
            .collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(ours.ethertype, EtherType(inner));
        prop_assert_eq!(ours.payload_offset, 14 + 4 * tags.len());

        let theirs = SlicedPacket::from_ethernet(&bytes).unwrap();
        match (&theirs.vlan, tags.len()) {
            (None, 0) => {}
            (Some(VlanSlice::SingleVlan(s)), 1) => {
                prop_assert_eq!(s.vlan_identifier().value(), got[0].vid);
                prop_assert_eq!(s.priority_code_point().value(), got[0].pcp);
                prop_assert_eq!(s.drop_eligible_indicator(), got[0].dei);
                prop_assert_eq!(s.ether_type().0, inner);
            }
            (Some(VlanSlice::DoubleVlan(d)), 2) => {
                prop_assert_eq!(d.outer().vlan_identifier().value(), got[0].vid);
                prop_assert_eq!(d.inner().vlan_identifier().value(), got[1].vid);
                prop_assert_eq!(d.inner().priority_code_point().value(), got[1].pcp);
                prop_assert_eq!(d.outer().drop_eligible_indicator(), got[0].dei);
                prop_assert_eq!(d.inner().ether_type().0, inner);
            }
            (v, n) => prop_assert!(false, "etherparse saw {:?} for {} tags", v, n),
        }
        if let Some(v) = &theirs.vlan {
            prop_assert_eq!(v.payload().payload, &bytes[ours.payload_offset..]);
        }
    }

    #[test]
    fn vlan_tags_to_etherparse(t in tag()) {
        let (pcp, dei, vid, tpid) = t;
        let ours = VlanTag { tpid: EtherType(tpid), pcp, dei, vid };
        let mut buf = [0u8; 4];
        ours.emit(&mut buf).unwrap();
        prop_assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), tpid);
        // etherparse's single VLAN header is TCI + next type.
        let mut vh = [0u8; 4];
        vh[..2].copy_from_slice(&buf[2..]);
        let (h, _) = SingleVlanHeader::from_slice(&vh).unwrap();
        prop_assert_eq!((h.pcp.value(), h.drop_eligible_indicator, h.vlan_id.value()), (pcp, dei, vid));
    }

    #[test]
    fn arp_round_trip(repr in arp_repr(), src in any::<[u8; 6]>()) {
        let mut frame = [0u8; 42];
        EthernetRepr { dst_addr: EthernetAddress::BROADCAST, src_addr: EthernetAddress(src), ethertype: EtherType::ARP }
            .emit(&mut EthernetFrame::new_unchecked(&mut frame[..])).unwrap();
        repr.emit(&mut ArpPacket::new_unchecked(&mut frame[14..])).unwrap();

        // Independent encoding of RFC 826 for Ethernet/IPv4.
        let mut want = vec![0x00, 0x01, 0x08, 0x00, 6, 4];
        want.extend_from_slice(&u16::from(repr.operation).to_be_bytes());
        want.extend_from_slice(&repr.source_hw.0);
        want.extend_from_slice(&repr.source_ip.octets());
        want.extend_from_slice(&repr.target_hw.0);
        want.extend_from_slice(&repr.target_ip.octets());
        prop_assert_eq!(&frame[14..], &want[..]);

        let p = ArpPacket::new_checked(&frame[14..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&p).unwrap(), repr);
        let theirs = SlicedPacket::from_ethernet(&frame).unwrap();
        let payload = theirs.link.unwrap().ether_payload().unwrap();
        prop_assert_eq!(payload.ether_type, EpEtherType::ARP);
        prop_assert_eq!(payload.payload, &want[..]);
    }

    #[test]
    fn arp_other_types_unsupported(mut bytes in any::<[u8; 28]>()) {
        bytes[4] = 6;
        bytes[5] = 4;
        let p = ArpPacket::new_checked(&bytes[..]).unwrap();
        let eth_ipv4 = bytes[0..4] == [0, 1, 8, 0];
        prop_assert_eq!(ArpRepr::parse(&p).is_ok(), eth_ipv4);
    }

    #[test]
    fn ipv4_from_etherparse((h, payload_len) in ep_ipv4()) {
        let mut bytes = h.to_bytes().to_vec();
        bytes.resize(usize::from(h.total_len), 0xee);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(p.checksum(), h.header_checksum);
        prop_assert_eq!(p.header_len(), h.header_len());
        prop_assert_eq!(p.options(), h.options.as_slice());
        prop_assert_eq!((p.dscp(), p.ecn()), (h.dscp.value(), h.ecn.value()));
        let r = Ipv4Repr::parse(&p).unwrap();
        prop_assert_eq!(r.src_addr, Ipv4Addr::from(h.source));
        prop_assert_eq!(r.dst_addr, Ipv4Addr::from(h.destination));
        prop_assert_eq!(r.protocol, Protocol(h.protocol.0));
        prop_assert_eq!(r.ttl, h.time_to_live);
        prop_assert_eq!(r.ident, h.identification);
        prop_assert_eq!((r.dont_frag, r.more_frags), (h.dont_fragment, h.more_fragments));
        prop_assert_eq!(r.frag_offset, h.fragment_offset.byte_offset());
        prop_assert_eq!(r.payload_len, payload_len);
        prop_assert_eq!(r.is_fragment(), h.is_fragmenting_payload());
        // Re-emit: identical header bytes.
        let mut out = vec![0u8; p.header_len()];
        r.emit_with_options(&mut Ipv4Packet::new_unchecked(&mut out[..]), p.options()).unwrap();
        prop_assert_eq!(&out[..], p.header());
    }

    #[test]
    fn ipv4_to_etherparse((r, opts) in our_ipv4()) {
        let hl = 20 + opts.len();
        let mut buf = vec![0u8; hl];
        let res = r.emit_with_options(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &opts);
        prop_assert!(res.is_ok());
        let (h, rest) = Ipv4Header::from_slice(&buf).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
        prop_assert_eq!(Ipv4Addr::from(h.source), r.src_addr);
        prop_assert_eq!(Ipv4Addr::from(h.destination), r.dst_addr);
        prop_assert_eq!(h.protocol.0, r.protocol.0);
        prop_assert_eq!(h.time_to_live, r.ttl);
        prop_assert_eq!((h.dscp.value() << 2) | h.ecn.value(), r.tos);
        prop_assert_eq!(h.identification, r.ident);
        prop_assert_eq!((h.dont_fragment, h.more_fragments), (r.dont_frag, r.more_frags));
        prop_assert_eq!(h.fragment_offset.byte_offset(), r.frag_offset);
        prop_assert_eq!(usize::from(h.total_len), hl + r.payload_len);
        prop_assert_eq!(h.options.as_slice(), &opts[..]);
    }

    #[test]
    fn ipv4_acceptance_matches_etherparse(mut bytes in vec(any::<u8>(), 0..80), ihl in 0u8..16, fix_version in any::<bool>()) {
        if fix_version && !bytes.is_empty() {
            bytes[0] = 0x40 | ihl;
        }
        let ours = Ipv4Packet::new_checked(&bytes[..]);
        let theirs = Ipv4Header::from_slice(&bytes);
        match theirs {
            Ok((h, _)) => {
                let total = usize::from(h.total_len);
                let fits = h.header_len() <= total && total <= bytes.len();
                prop_assert_eq!(ours.is_ok(), fits);
            }
            Err(_) => prop_assert!(ours.is_err()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..160)) {
        poke_everything(&data);
    }

    #[test]
    fn ipv4_options_never_panic(opts in vec(any::<u8>(), 0..=40), rest in vec(any::<u8>(), 0..20)) {
        // A well-formed header around arbitrary option bytes.
        let n = opts.len() & !3;
        let mut bytes = vec![0x40 | (5 + n / 4) as u8, 0];
        bytes.extend_from_slice(&((20 + n + rest.len()) as u16).to_be_bytes());
        bytes.resize(20, 0);
        bytes.extend_from_slice(&opts[..n]);
        bytes.extend_from_slice(&rest);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(p.options(), &opts[..n]);
        let mut errors = 0;
        for o in p.options_iter() {
            if o.is_err() {
                errors += 1;
            }
        }
        prop_assert!(errors <= 1);
        poke_everything(&bytes);
    }

    #[test]
    fn fcs_detects_any_single_bit_flip(frame in vec(any::<u8>(), 14..80), bit in any::<usize>()) {
        let mut buf = frame.clone();
        buf.extend_from_slice(&[0; 4]);
        let len = fcs::append(&mut buf, frame.len()).unwrap();
        prop_assert_eq!(len, frame.len() + 4);
        prop_assert!(fcs::check_fcs(&buf).is_ok());
        let bit = bit % (buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(fcs::check_fcs(&buf).is_err());
    }
}
