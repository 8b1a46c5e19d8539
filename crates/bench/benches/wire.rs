//! Parse and emit cost per header, on real Linux frames: a SYN (Ethernet,
//! IPv4, TCP with `mss, sackOK, TS, nop, wscale`) and a full-size data
//! segment (1448 bytes + TS option), both from `tcp-handshake-transfer-close.pcap`;
//! plus UDP, ICMP and ARP built with our emitters, and the FCS of a
//! 1514-byte frame.
//!
//! `cargo bench --bench wire`

use std::net::Ipv4Addr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use netpath_wire::arp::{ArpPacket, ArpRepr, Operation};
use netpath_wire::ethernet::{fcs, EthernetAddress, EthernetFrame, EthernetRepr};
use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr};
use netpath_wire::tcp::{TcpPacket, TcpRepr};
use netpath_wire::udp::{UdpPacket, UdpRepr};

/// Linux 6.18's SYN, 192.0.2.1:55842 → 192.0.2.2:5001.
const SYN_HEX: &str = "b2b6bd7824257a05cc93819d08004500003cad094000400609afc0000201c0000202da221389ec2b137300000000a002faf0cfbe0000020405b40402080a5497b767000000000103030a";
/// Headers of the first full-size data segment of the same connection
/// (payload follows; the bench fills it with a pattern and fixes the checksum).
const DATA_HDR_HEX: &str = "b2b6bd7824257a05cc93819d0800450005dcad0b40004006040dc0000201c0000202da221389ec2b1374ffe1a30f8010003fa0f900000101080a5497b77105195b5c";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn data_frame() -> Vec<u8> {
    let mut f = unhex(DATA_HDR_HEX);
    f.extend((0..1448u32).map(|i| (i * 13) as u8));
    let repr = {
        let p = TcpPacket::new_checked(&f[34..]).unwrap();
        TcpRepr::parse_unverified(&p).unwrap()
    };
    repr.emit(&mut TcpPacket::new_unchecked(&mut f[34..]), SRC, DST)
        .unwrap();
    f
}

fn bench_parse(c: &mut Criterion) {
    let syn = unhex(SYN_HEX);
    let data = data_frame();
    let mut g = c.benchmark_group("parse");
    g.bench_function("ethernet", |b| {
        b.iter(|| {
            EthernetRepr::parse(&EthernetFrame::new_checked(black_box(&syn[..])).unwrap()).unwrap()
        })
    });
    g.bench_function("ipv4+csum", |b| {
        b.iter(|| {
            Ipv4Repr::parse(&Ipv4Packet::new_checked(black_box(&syn[14..])).unwrap()).unwrap()
        })
    });
    g.bench_function("tcp_syn_options+csum", |b| {
        b.iter(|| {
            TcpRepr::parse(
                &TcpPacket::new_checked(black_box(&syn[34..])).unwrap(),
                SRC,
                DST,
            )
            .unwrap()
        })
    });
    g.bench_function("tcp_header_no_csum", |b| {
        b.iter(|| {
            TcpRepr::parse_unverified(&TcpPacket::new_checked(black_box(&data[34..])).unwrap())
                .unwrap()
        })
    });
    g.throughput(Throughput::Bytes((data.len() - 34) as u64));
    g.bench_function("tcp_1448B+csum", |b| {
        b.iter(|| {
            TcpRepr::parse(
                &TcpPacket::new_checked(black_box(&data[34..])).unwrap(),
                SRC,
                DST,
            )
            .unwrap()
        })
    });
    g.finish();
}

fn bench_emit(c: &mut Criterion) {
    let syn = unhex(SYN_HEX);
    let eth = EthernetRepr::parse(&EthernetFrame::new_checked(&syn[..]).unwrap()).unwrap();
    let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(&syn[14..]).unwrap()).unwrap();
    let tcp = TcpRepr::parse(&TcpPacket::new_checked(&syn[34..]).unwrap(), SRC, DST).unwrap();
    let mut buf = syn.clone();
    let mut g = c.benchmark_group("emit");
    g.bench_function("ethernet", |b| {
        b.iter(|| {
            black_box(&eth)
                .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
                .unwrap()
        })
    });
    g.bench_function("ipv4+csum", |b| {
        b.iter(|| {
            black_box(&ip)
                .emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]))
                .unwrap()
        })
    });
    g.bench_function("tcp_syn_options+csum", |b| {
        b.iter(|| {
            black_box(&tcp)
                .emit(&mut TcpPacket::new_unchecked(&mut buf[34..]), SRC, DST)
                .unwrap()
        })
    });

    let udp = UdpRepr {
        src_port: 40000,
        dst_port: 33434,
        payload_len: 11,
    };
    let mut ubuf = [0u8; 19];
    g.bench_function("udp_11B+csum", |b| {
        b.iter(|| {
            black_box(&udp)
                .emit(&mut UdpPacket::new_unchecked(&mut ubuf[..]), SRC, DST)
                .unwrap()
        })
    });
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data_len: 56,
    };
    let mut ibuf = [0x5au8; 64];
    g.bench_function("icmp_echo_64B+csum", |b| {
        b.iter(|| {
            black_box(&icmp)
                .emit(&mut Icmpv4Packet::new_unchecked(&mut ibuf[..]))
                .unwrap()
        })
    });
    let arp = ArpRepr {
        operation: Operation::Request,
        source_hw: EthernetAddress([2, 0, 0, 0, 0, 1]),
        source_ip: SRC,
        target_hw: EthernetAddress::ZERO,
        target_ip: DST,
    };
    let mut abuf = [0u8; 28];
    g.bench_function("arp", |b| {
        b.iter(|| {
            black_box(&arp)
                .emit(&mut ArpPacket::new_unchecked(&mut abuf[..]))
                .unwrap()
        })
    });
    g.finish();
}

fn bench_fcs(c: &mut Criterion) {
    let frame = data_frame();
    let mut g = c.benchmark_group("fcs");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("crc32_1514B", |b| b.iter(|| fcs::fcs(black_box(&frame))));
    g.finish();
}

criterion_group!(benches, bench_parse, bench_emit, bench_fcs);
criterion_main!(benches);
