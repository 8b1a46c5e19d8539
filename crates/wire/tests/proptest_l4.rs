//! Property tests for ICMPv4, UDP and TCP against `etherparse` as an
//! independent implementation: what etherparse builds parses identically
//! here (checksums included), what we emit parses identically there, and
//! arbitrary bytes never panic any view, parser or option iterator.

use std::net::Ipv4Addr;

use etherparse::icmpv4::{
    DestUnreachableHeader, ParameterProblemHeader, RedirectCode, RedirectHeader, TimeExceededCode,
};
use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, TcpHeader, TcpOptionElement, UdpHeader,
};
use netpath_wire::icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, Redirect, TimeExceeded};
use netpath_wire::tcp::{
    RawOptions, SackBlocks, TcpFlags, TcpOption, TcpOptionIter, TcpOptions, TcpPacket, TcpRepr,
    TcpSeqNumber, TcpTimestamps,
};
use netpath_wire::udp::{UdpPacket, UdpRepr};
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

// ---------------------------------------------------------------- ICMPv4

/// Types etherparse decodes as `Unknown` whatever the code.
fn unknown_icmp_type() -> impl Strategy<Value = u8> {
    prop_oneof![Just(4u8), Just(6), Just(9), Just(10), 15u8..=255]
}

fn icmp_repr_header() -> impl Strategy<Value = Icmpv4Repr> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(ident, seq_no)| Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data_len: 0
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(ident, seq_no)| Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data_len: 0
        }),
        (0u8..=15, any::<u16>()).prop_map(|(code, mtu)| Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::from_code(code, mtu).unwrap(),
            data_len: 0
        }),
        prop_oneof![
            Just(TimeExceeded::TtlExpired),
            Just(TimeExceeded::FragReassembly)
        ]
        .prop_map(|reason| Icmpv4Repr::TimeExceeded {
            reason,
            data_len: 0
        }),
        (0u8..=3, any::<[u8; 4]>()).prop_map(|(code, gw)| Icmpv4Repr::Redirect {
            code: Redirect::from_code(code).unwrap(),
            gateway: Ipv4Addr::from(gw),
            data_len: 0
        }),
        (0u8..=2, any::<u8>()).prop_map(|(code, pointer)| Icmpv4Repr::ParamProblem {
            code,
            pointer: if code == 0 { pointer } else { 0 },
            data_len: 0
        }),
        (unknown_icmp_type(), any::<u8>(), any::<[u8; 4]>()).prop_map(|(msg_type, code, rest)| {
            Icmpv4Repr::Other {
                msg_type,
                code,
                rest,
                data_len: 0,
            }
        }),
    ]
}

fn with_data_len(r: Icmpv4Repr, n: usize) -> Icmpv4Repr {
    match r {
        Icmpv4Repr::EchoRequest { ident, seq_no, .. } => Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data_len: n,
        },
        Icmpv4Repr::EchoReply { ident, seq_no, .. } => Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data_len: n,
        },
        Icmpv4Repr::DstUnreachable { reason, .. } => Icmpv4Repr::DstUnreachable {
            reason,
            data_len: n,
        },
        Icmpv4Repr::TimeExceeded { reason, .. } => Icmpv4Repr::TimeExceeded {
            reason,
            data_len: n,
        },
        Icmpv4Repr::Redirect { code, gateway, .. } => Icmpv4Repr::Redirect {
            code,
            gateway,
            data_len: n,
        },
        Icmpv4Repr::ParamProblem { code, pointer, .. } => Icmpv4Repr::ParamProblem {
            code,
            pointer,
            data_len: n,
        },
        Icmpv4Repr::Other {
            msg_type,
            code,
            rest,
            ..
        } => Icmpv4Repr::Other {
            msg_type,
            code,
            rest,
            data_len: n,
        },
    }
}

/// The etherparse type for one of our reprs.
fn to_etherparse(r: &Icmpv4Repr) -> Icmpv4Type {
    match *r {
        Icmpv4Repr::EchoRequest { ident, seq_no, .. } => Icmpv4Type::EchoRequest(IcmpEchoHeader {
            id: ident,
            seq: seq_no,
        }),
        Icmpv4Repr::EchoReply { ident, seq_no, .. } => Icmpv4Type::EchoReply(IcmpEchoHeader {
            id: ident,
            seq: seq_no,
        }),
        Icmpv4Repr::DstUnreachable { reason, .. } => {
            let mtu = match reason {
                DstUnreachable::FragNeeded { next_hop_mtu } => next_hop_mtu,
                _ => 0,
            };
            Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::from_values(reason.code(), mtu).unwrap(),
            )
        }
        Icmpv4Repr::TimeExceeded { reason, .. } => Icmpv4Type::TimeExceeded(match reason {
            TimeExceeded::TtlExpired => TimeExceededCode::TtlExceededInTransit,
            TimeExceeded::FragReassembly => TimeExceededCode::FragmentReassemblyTimeExceeded,
        }),
        Icmpv4Repr::Redirect { code, gateway, .. } => Icmpv4Type::Redirect(RedirectHeader {
            code: RedirectCode::from_u8(code.code()).unwrap(),
            gateway_internet_address: gateway.octets(),
        }),
        Icmpv4Repr::ParamProblem { code, pointer, .. } => Icmpv4Type::ParameterProblem(
            ParameterProblemHeader::from_values(code, pointer).unwrap(),
        ),
        Icmpv4Repr::Other {
            msg_type,
            code,
            rest,
            ..
        } => Icmpv4Type::Unknown {
            type_u8: msg_type,
            code_u8: code,
            bytes5to8: rest,
        },
    }
}

// ---------------------------------------------------------------- TCP

fn tcp_option_elements() -> impl Strategy<Value = Vec<TcpOptionElement>> {
    let elem = prop_oneof![
        Just(TcpOptionElement::Noop),
        any::<u16>().prop_map(TcpOptionElement::MaximumSegmentSize),
        any::<u8>().prop_map(TcpOptionElement::WindowScale),
        Just(TcpOptionElement::SelectiveAcknowledgementPermitted),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| TcpOptionElement::Timestamp(a, b)),
        (
            any::<(u32, u32)>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=3)
        )
            .prop_map(|(first, rest)| {
                let mut more = [None; 3];
                for (slot, b) in more.iter_mut().zip(rest) {
                    *slot = Some(b);
                }
                TcpOptionElement::SelectiveAcknowledgement(first, more)
            }),
    ];
    proptest::collection::vec(elem, 0..6).prop_filter("fits in 40 bytes", |v| {
        v.iter().map(element_len).sum::<usize>() <= 40
    })
}

fn element_len(e: &TcpOptionElement) -> usize {
    match e {
        TcpOptionElement::Noop => 1,
        TcpOptionElement::MaximumSegmentSize(_) => 4,
        TcpOptionElement::WindowScale(_) => 3,
        TcpOptionElement::SelectiveAcknowledgementPermitted => 2,
        TcpOptionElement::SelectiveAcknowledgement(_, more) => {
            10 + 8 * more.iter().flatten().count()
        }
        TcpOptionElement::Timestamp(..) => 10,
    }
}

/// Our option for an etherparse element.
fn from_element(e: &TcpOptionElement) -> TcpOption<'static> {
    match *e {
        TcpOptionElement::Noop => TcpOption::NoOperation,
        TcpOptionElement::MaximumSegmentSize(m) => TcpOption::MaxSegmentSize(m),
        TcpOptionElement::WindowScale(w) => TcpOption::WindowScale(w),
        TcpOptionElement::SelectiveAcknowledgementPermitted => TcpOption::SackPermitted,
        TcpOptionElement::Timestamp(tsval, tsecr) => TcpOption::Timestamps { tsval, tsecr },
        TcpOptionElement::SelectiveAcknowledgement(first, more) => {
            let mut b = SackBlocks::EMPTY;
            b.push(first);
            for m in more.iter().flatten() {
                b.push(*m);
            }
            TcpOption::Sack(b)
        }
    }
}

fn tcp_options_summary() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(|(mss, window_scale, sack_permitted, ts, sack)| TcpOptions {
            mss,
            window_scale,
            sack_permitted,
            timestamps: ts.map(|(tsval, tsecr)| TcpTimestamps { tsval, tsecr }),
            sack: SackBlocks::from_slice(&sack).unwrap(),
            fastopen: None,
            md5sig: None,
        })
        .prop_filter("fits in 40 bytes", |o| o.emitted_len() <= 40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn icmp_from_etherparse(hdr in icmp_repr_header(), data in payload(64)) {
        let ty = to_etherparse(&hdr);
        let ep = Icmpv4Header::with_checksum(ty, &data);
        let mut bytes = ep.to_bytes().to_vec();
        bytes.extend_from_slice(&data);
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(p.checksum(), ep.checksum);
        let want = with_data_len(hdr, data.len());
        prop_assert_eq!(Icmpv4Repr::parse(&p).unwrap(), want);
        prop_assert_eq!(p.data(), &data[..]);
        // And our emit reproduces etherparse's bytes.
        let mut out = vec![0u8; bytes.len()];
        out[8..].copy_from_slice(&data);
        want.emit(&mut Icmpv4Packet::new_checked(&mut out[..]).unwrap()).unwrap();
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn icmp_to_etherparse(hdr in icmp_repr_header(), data in payload(64)) {
        let repr = with_data_len(hdr, data.len());
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(&data);
        repr.emit(&mut Icmpv4Packet::new_checked(&mut buf[..]).unwrap()).unwrap();
        let s = Icmpv4Slice::from_slice(&buf).unwrap();
        prop_assert_eq!(s.icmp_type(), to_etherparse(&repr));
        prop_assert_eq!(s.payload(), &data[..]);
        prop_assert_eq!(s.checksum(), Icmpv4Header::with_checksum(s.icmp_type(), &data).checksum);
    }

    #[test]
    fn udp_from_etherparse(src in addr(), dst in addr(), sp in any::<u16>(), dp in any::<u16>(), data in payload(200)) {
        let mut h = UdpHeader { source_port: sp, destination_port: dp, length: (8 + data.len()) as u16, checksum: 0 };
        h.checksum = h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &data).unwrap();
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&data);
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert!(p.verify_checksum(src, dst));
        let repr = UdpRepr::parse(&p, src, dst).unwrap();
        prop_assert_eq!(repr, UdpRepr { src_port: sp, dst_port: dp, payload_len: data.len() });
        let mut out = vec![0u8; bytes.len()];
        out[8..].copy_from_slice(&data);
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), src, dst).unwrap();
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn udp_to_etherparse(src in addr(), dst in addr(), sp in any::<u16>(), dp in any::<u16>(), data in payload(200)) {
        let repr = UdpRepr { src_port: sp, dst_port: dp, payload_len: data.len() };
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(&data);
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst).unwrap();
        let (h, rest) = UdpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!((h.source_port, h.destination_port, usize::from(h.length)), (sp, dp, buf.len()));
        prop_assert_eq!(rest, &data[..]);
        prop_assert_eq!(h.checksum, h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &data).unwrap());
        prop_assert_ne!(h.checksum, 0);
    }

    #[test]
    fn tcp_from_etherparse(
        src in addr(), dst in addr(),
        ports in any::<(u16, u16)>(), seq in any::<u32>(), ack in any::<u32>(),
        flags in 0u16..0x200, win in any::<u16>(), urg in any::<u16>(),
        elems in tcp_option_elements(), data in payload(100),
    ) {
        let mut h = TcpHeader::new(ports.0, ports.1, seq, win);
        h.acknowledgment_number = ack;
        h.urgent_pointer = urg;
        let f = TcpFlags::from_bits(flags);
        (h.fin, h.syn, h.rst, h.psh, h.ack, h.urg, h.ece, h.cwr, h.ns) =
            (f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.urg(), f.ece(), f.cwr(), f.ns());
        h.set_options(&elems).unwrap();
        h.checksum = h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &data).unwrap();
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&data);

        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert!(p.verify_checksum(src, dst));
        prop_assert_eq!(p.checksum(), h.checksum);
        prop_assert_eq!(p.header_len(), h.header_len());
        prop_assert_eq!(p.payload(), &data[..]);
        let ours: Vec<TcpOption<'_>> = p
            .options_iter()
            .map(|o| o.unwrap())
            .filter(|o| *o != TcpOption::EndOfList)
            .collect();
        let theirs: Vec<TcpOption<'_>> = elems.iter().map(from_element).collect();
        prop_assert_eq!(ours, theirs);

        let r = TcpRepr::parse(&p, src, dst).unwrap();
        prop_assert_eq!((r.src_port, r.dst_port), ports);
        prop_assert_eq!((r.seq_number, r.ack_number), (TcpSeqNumber(seq), TcpSeqNumber(ack)));
        prop_assert_eq!(r.flags, f);
        prop_assert_eq!((r.window_len, r.urgent_pointer, r.payload_len), (win, urg, data.len()));
        prop_assert_eq!(r.raw_options.as_slice(), h.options.as_slice());
        // Parse → emit reproduces the bytes.
        let mut out = vec![0u8; bytes.len()];
        out[r.header_len()..].copy_from_slice(&data);
        r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst).unwrap();
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn tcp_to_etherparse(
        src in addr(), dst in addr(),
        ports in any::<(u16, u16)>(), seq in any::<u32>(), ack in any::<u32>(),
        flags in 0u16..0x200, win in any::<u16>(), urg in any::<u16>(),
        options in tcp_options_summary(), data in payload(100),
    ) {
        let repr = TcpRepr {
            src_port: ports.0,
            dst_port: ports.1,
            seq_number: TcpSeqNumber(seq),
            ack_number: TcpSeqNumber(ack),
            flags: TcpFlags::from_bits(flags),
            window_len: win,
            urgent_pointer: urg,
            options,
            raw_options: RawOptions::EMPTY,
            payload_len: data.len(),
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[repr.header_len()..].copy_from_slice(&data);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst).unwrap();

        let (h, rest) = TcpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!(rest, &data[..]);
        prop_assert_eq!((h.source_port, h.destination_port), ports);
        prop_assert_eq!((h.sequence_number, h.acknowledgment_number), (seq, ack));
        prop_assert_eq!((h.window_size, h.urgent_pointer), (win, urg));
        let f = repr.flags;
        prop_assert_eq!(
            (h.fin, h.syn, h.rst, h.psh, h.ack, h.urg, h.ece, h.cwr, h.ns),
            (f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.urg(), f.ece(), f.cwr(), f.ns())
        );
        prop_assert_eq!(h.checksum, h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &data).unwrap());
        // etherparse sees the same options, in Linux's order.
        let theirs: Vec<TcpOption<'_>> =
            h.options_iterator().map(|e| from_element(&e.unwrap())).collect();
        let ours: Vec<TcpOption<'_>> = TcpOptionIter::new(h.options.as_slice())
            .map(|o| o.unwrap())
            .filter(|o| *o != TcpOption::EndOfList)
            .collect();
        prop_assert_eq!(&theirs, &ours);
        let mut summary = TcpOptions::default();
        for o in &theirs {
            match *o {
                TcpOption::MaxSegmentSize(m) => summary.mss = Some(m),
                TcpOption::WindowScale(w) => summary.window_scale = Some(w),
                TcpOption::SackPermitted => summary.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => summary.timestamps = Some(TcpTimestamps { tsval, tsecr }),
                TcpOption::Sack(b) => summary.sack = b,
                _ => {}
            }
        }
        prop_assert_eq!(summary, options);
    }

    // ------------------------------------------------------ never panic

    #[test]
    fn arbitrary_bytes_never_panic(data in payload(120), src in addr(), dst in addr()) {
        if let Ok(p) = Icmpv4Packet::new_checked(&data[..]) {
            let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header(), p.echo_ident());
            let _ = (p.echo_seq_no(), p.next_hop_mtu(), p.gateway(), p.pointer(), p.quoted_datagram());
            let _ = p.verify_checksum();
            let _ = Icmpv4Repr::parse(&p);
            if let Ok(r) = Icmpv4Repr::parse_unverified(&p) {
                let mut out = data.clone();
                r.emit(&mut Icmpv4Packet::new_checked(&mut out[..]).unwrap()).unwrap();
                prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap()), Ok(r));
            }
        } else {
            prop_assert!(data.len() < 8);
        }
        if let Ok(p) = UdpPacket::new_checked(&data[..]) {
            let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload(), p.verify_checksum(src, dst));
            let _ = UdpRepr::parse(&p, src, dst);
            prop_assert!(usize::from(p.len()) <= data.len());
        }
        if let Ok(p) = TcpPacket::new_checked(&data[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
            let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.payload(), p.segment_len());
            let _ = p.verify_checksum(src, dst);
            let n = p.options_iter().count();
            prop_assert!(n <= 40);
            let _ = TcpRepr::parse(&p, src, dst);
            if let Ok(r) = TcpRepr::parse_unverified(&p) {
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst).unwrap();
                prop_assert_eq!(&out[..r.header_len()], &data[..r.header_len()].iter().enumerate()
                    .map(|(i, &b)| if i == 16 || i == 17 { out[i] } else { b }).collect::<Vec<_>>()[..]);
                let again = TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap(), src, dst).unwrap();
                prop_assert_eq!(again, r);
            }
        }
        let _ = TcpOptions::parse(&data);
        for o in TcpOptionIter::new(&data) {
            let _ = o.map(|o| (o.kind(), o.wire_len()));
        }
    }

    #[test]
    fn option_iter_round_trips(data in payload(40)) {
        // Whatever parses re-emits to the same bytes, option by option.
        let mut out = Vec::new();
        let mut it = TcpOptionIter::new(&data);
        let mut ok = true;
        for o in it.by_ref() {
            match o {
                Ok(TcpOption::EndOfList) => { out.push(0); break; }
                Ok(o) => {
                    let mut b = [0u8; 40];
                    let n = o.emit(&mut b).unwrap();
                    prop_assert_eq!(n, o.wire_len());
                    out.extend_from_slice(&b[..n]);
                }
                Err(_) => { ok = false; break; }
            }
        }
        if ok {
            prop_assert_eq!(&out[..], &data[..out.len()]);
        }
    }
}
