//! Every frame of every real Linux capture through the L2/L3 parsers:
//! pcap, Ethernet (+ VLAN), ARP and IPv4 (outer, IPIP inner, and the header
//! quoted in ICMP errors), with exact re-emission and the facts the
//! captures' README states.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use netpath_wire::arp::{ArpPacket, ArpRepr, Operation};
use netpath_wire::ethernet::{
    parse_tags, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, TaggedFrame, HEADER_LEN,
};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::pcap::{PcapReader, LINKTYPE_ETHERNET};
use netpath_wire::{ErrorKind, Layer};

/// One frame, decoded as far as L3.
struct Frame {
    data: Vec<u8>,
    orig_len: u32,
    tags: TaggedFrame,
    eth: EthernetRepr,
    arp: Option<ArpRepr>,
    ip: Option<Ipv4Repr>,
    /// IPIP inner header, or the header quoted by an ICMP error.
    inner_ip: Option<Ipv4Repr>,
}

impl Frame {
    fn l3(&self) -> &[u8] {
        &self.data[self.tags.payload_offset..]
    }
}

fn read_file(path: &Path) -> (u32, Vec<(Vec<u8>, u32)>) {
    let bytes = std::fs::read(path).expect("read capture");
    let reader = PcapReader::new(&bytes).expect("pcap header");
    assert_eq!(reader.link_type(), LINKTYPE_ETHERNET, "{}", path.display());
    let snaplen = reader.snaplen();
    let records = reader
        .map(|r| {
            let r = r.expect("pcap record");
            assert!(r.data.len() as u32 <= r.orig_len);
            assert!(r.data.len() as u32 <= snaplen);
            (r.data.to_vec(), r.orig_len)
        })
        .collect();
    (snaplen, records)
}

/// Parses an IPv4 header, checks it, and re-emits it byte for byte.
/// `snapped` says the bytes may end before the total length (snaplen, or an
/// ICMP quote): the view must then refuse it with `Truncated`, and the check
/// runs on a copy padded out to the total length.
fn check_ipv4(bytes: &[u8], snapped: bool, what: &str) -> Ipv4Repr {
    let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let mut owned = bytes.to_vec();
    if total > bytes.len() {
        assert!(snapped, "{what}: total length {total} > {}", bytes.len());
        let err = Ipv4Packet::new_checked(bytes).unwrap_err();
        assert_eq!(err.layer, Layer::Ipv4, "{what}");
        assert_eq!(
            err.kind,
            ErrorKind::Truncated {
                needed: total,
                available: bytes.len()
            },
            "{what}"
        );
        owned.resize(total, 0);
    }
    let p = Ipv4Packet::new_checked(&owned[..]).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(p.version(), 4);
    assert!(p.verify_checksum(), "{what}: header checksum");
    assert_eq!(p.payload().len(), total - p.header_len(), "{what}");
    for opt in p.options_iter() {
        opt.unwrap_or_else(|e| panic!("{what}: option {e}"));
    }
    let repr = Ipv4Repr::parse(&p).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(repr.is_fragment(), p.is_fragment());
    let mut out = vec![0u8; p.header_len()];
    repr.emit_with_options(&mut Ipv4Packet::new_unchecked(&mut out[..]), p.options())
        .unwrap();
    assert_eq!(&out[..], p.header(), "{what}: re-emitted header");
    repr
}

fn decode(data: Vec<u8>, orig_len: u32, what: &str) -> Frame {
    let snapped = (data.len() as u32) < orig_len;
    let f = EthernetFrame::new_checked(&data[..]).unwrap();
    let eth = EthernetRepr::parse(&f).unwrap();
    let mut out = [0u8; HEADER_LEN];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(&out[..], &data[..HEADER_LEN], "{what}: ethernet header");
    let tags = parse_tags(&data).unwrap_or_else(|e| panic!("{what}: {e}"));

    let (mut arp, mut ipr, mut inner_ip) = (None, None, None);
    let l3 = &data[tags.payload_offset..];
    match tags.ethertype {
        EtherType::ARP => {
            let p = ArpPacket::new_checked(l3).unwrap();
            let repr = ArpRepr::parse(&p).unwrap();
            let mut out = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
                .unwrap();
            assert_eq!(&out[..], &l3[..28], "{what}: ARP re-emit");
            arp = Some(repr);
        }
        EtherType::IPV4 => {
            let ip = check_ipv4(l3, snapped, what);
            let hl = usize::from(l3[0] & 0x0f) * 4;
            let payload = &l3[hl..];
            if ip.protocol == Protocol::IPIP {
                inner_ip = Some(check_ipv4(payload, snapped, &format!("{what} inner")));
            }
            let icmp_error = ip.protocol == Protocol::ICMP
                && ip.frag_offset == 0
                && matches!(payload.first(), Some(3 | 4 | 5 | 11 | 12));
            if icmp_error {
                inner_ip = Some(check_ipv4(&payload[8..], true, &format!("{what} quote")));
            }
            ipr = Some(ip);
        }
        other => panic!("{what}: unexpected ethertype {other}"),
    }
    Frame {
        data,
        orig_len,
        tags,
        eth,
        arp,
        ip: ipr,
        inner_ip,
    }
}

fn load(dir: &Path, name: &str) -> Vec<Frame> {
    let (_, records) = read_file(&dir.join(name));
    records
        .into_iter()
        .enumerate()
        .map(|(i, (d, o))| decode(d, o, &format!("{name}#{i}")))
        .collect()
}

fn ip(f: &Frame) -> Ipv4Repr {
    f.ip.expect("an IPv4 frame")
}

const V4_1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V4_2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

#[test]
fn every_frame_of_every_capture() {
    let Some(dir) = common::captures_dir("every_frame_of_every_capture") else {
        return;
    };
    let expected: BTreeMap<&str, usize> = [
        ("arp-ping.pcap", 8),
        ("ping-fragmented.pcap", 12),
        ("ping-df-frag-needed.pcap", 4),
        ("ttl-exceeded.pcap", 4),
        ("udp-port-unreachable.pcap", 2),
        ("tcp-handshake-transfer-close.pcap", 103),
        ("tcp-rst-closed-port.pcap", 2),
        ("reject-admin-prohibited.pcap", 4),
        ("reject-tcp-reset.pcap", 2),
        ("vlan.pcap", 22),
        ("ipip.pcap", 6),
        ("tcp-loss-recovery.pcap", 1191),
    ]
    .into_iter()
    .collect();
    let files = common::capture_files(&dir);
    let mut seen = BTreeMap::new();
    let mut ipv4_headers = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(path).unwrap();
        let frames = load(&dir, &name);
        // Bytes: 24-byte file header + 16 per record + captured data.
        let data: usize = frames.iter().map(|f| f.data.len()).sum();
        assert_eq!(bytes.len(), 24 + 16 * frames.len() + data, "{name}");
        ipv4_headers += frames.iter().filter(|f| f.ip.is_some()).count();
        ipv4_headers += frames.iter().filter(|f| f.inner_ip.is_some()).count();
        seen.insert(name, frames.len());
    }
    let seen: BTreeMap<&str, usize> = seen.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(seen, expected);
    // 1360 frames, 4 of them ARP; plus 6 IPIP inner headers and 6 quoted
    // by ICMP errors (1 frag-needed, 2 ttl-exceeded, 1 port unreachable,
    // 2 admin-prohibited).
    assert_eq!(ipv4_headers, 1356 + 6 + 6);
}

#[test]
fn snaplen_and_truncation() {
    let Some(dir) = common::captures_dir("snaplen_and_truncation") else {
        return;
    };
    let (snaplen, records) = read_file(&dir.join("tcp-loss-recovery.pcap"));
    assert_eq!(snaplen, 128);
    let snapped = records
        .iter()
        .filter(|(d, o)| (d.len() as u32) < *o)
        .count();
    assert!(snapped > 500, "only {snapped} snapped records");
    assert!(records.iter().all(|(d, _)| d.len() <= 128));
    let (snaplen, records) = read_file(&dir.join("arp-ping.pcap"));
    assert_eq!(snaplen, 262_144);
    assert!(records.iter().all(|(d, o)| d.len() as u32 == *o));
    // A file cut mid-record yields one error, then ends.
    let bytes = std::fs::read(dir.join("arp-ping.pcap")).unwrap();
    let cut = &bytes[..24 + 16 + 42 + 16 + 10];
    let got: Vec<_> = PcapReader::new(cut).unwrap().collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap().data.len(), 42);
    assert_eq!(got[1].as_ref().unwrap_err().layer, Layer::Pcap);
}

#[test]
fn arp_ping_facts() {
    let Some(dir) = common::captures_dir("arp_ping_facts") else {
        return;
    };
    let f = load(&dir, "arp-ping.pcap");
    let req = f[0].arp.unwrap();
    assert_eq!(f[0].data.len(), 42);
    assert!(f[0].eth.dst_addr.is_broadcast());
    assert_eq!(f[0].eth.ethertype, EtherType::ARP);
    assert_eq!(req.operation, Operation::Request);
    assert_eq!((req.source_ip, req.target_ip), (V4_1, V4_2));
    assert_eq!(req.source_hw, f[0].eth.src_addr);
    assert_eq!(req.target_hw, EthernetAddress::ZERO);
    let rep = f[1].arp.unwrap();
    assert_eq!(f[1].data.len(), 42);
    assert_eq!(rep.operation, Operation::Reply);
    assert_eq!((rep.source_ip, rep.target_ip), (V4_2, V4_1));
    assert_eq!(rep.target_hw, req.source_hw);
    assert!(f[1].eth.dst_addr.is_unicast());
    assert_eq!(f[1].eth.dst_addr, req.source_hw);
    assert_eq!(f[1].eth.src_addr, rep.source_hw);
    for (i, fr) in f[2..].iter().enumerate() {
        let ip = ip(fr);
        let request = i % 2 == 0;
        assert_eq!(ip.protocol, Protocol::ICMP);
        assert_eq!(ip.payload_len, 64);
        assert_eq!(ip.dont_frag, request, "requests DF, replies none");
        assert!(!ip.more_frags);
        let (s, d) = if request { (V4_1, V4_2) } else { (V4_2, V4_1) };
        assert_eq!((ip.src_addr, ip.dst_addr), (s, d));
        assert_eq!(fr.l3()[20], if request { 8 } else { 0 });
    }
}

#[test]
fn ping_fragmented_facts() {
    let Some(dir) = common::captures_dir("ping_fragmented_facts") else {
        return;
    };
    let f = load(&dir, "ping-fragmented.pcap");
    for (d, group) in f.chunks(3).enumerate() {
        let ips: Vec<Ipv4Repr> = group.iter().map(ip).collect();
        let offsets: Vec<u16> = ips.iter().map(|r| r.frag_offset).collect();
        let mf: Vec<bool> = ips.iter().map(|r| r.more_frags).collect();
        let lens: Vec<usize> = ips.iter().map(|r| r.payload_len + 20).collect();
        assert_eq!(offsets, [0, 1480, 2960]);
        assert_eq!(mf, [true, true, false]);
        assert_eq!(lens, [1500, 1500, 1068]);
        assert!(ips
            .iter()
            .all(|r| r.is_fragment() && r.ident == ips[0].ident));
        assert_eq!(ips.iter().map(|r| r.payload_len).sum::<usize>(), 4008);
        let src = if d % 2 == 0 { V4_1 } else { V4_2 };
        assert!(ips.iter().all(|r| r.src_addr == src));
    }
    assert_ne!(ip(&f[0]).ident, ip(&f[3]).ident);
}

#[test]
fn icmp_error_quotes() {
    let Some(dir) = common::captures_dir("icmp_error_quotes") else {
        return;
    };
    let router = Ipv4Addr::new(192, 0, 2, 254);
    let far = Ipv4Addr::new(198, 51, 100, 1);

    let f = load(&dir, "ping-df-frag-needed.pcap");
    let req = ip(&f[0]);
    assert_eq!((req.payload_len + 20, req.dont_frag), (1428, true));
    let err = ip(&f[1]);
    assert_eq!(
        (err.src_addr, err.tos, err.payload_len + 20),
        (router, 0xc0, 576)
    );
    assert_eq!(&f[1].l3()[20..22], &[3, 4]);
    assert_eq!(&f[1].l3()[26..28], &1280u16.to_be_bytes());
    let q = f[1].inner_ip.unwrap();
    assert_eq!(
        (q.src_addr, q.dst_addr, q.payload_len + 20),
        (V4_1, far, 1428)
    );
    assert_eq!((q.ident, q.dont_frag), (req.ident, true));
    assert_eq!(ip(&f[3]).ttl, 63);
    assert_eq!(ip(&f[2]).payload_len + 20, 1280);

    let f = load(&dir, "ttl-exceeded.pcap");
    for pair in f.chunks(2) {
        let (req, err) = (ip(&pair[0]), ip(&pair[1]));
        assert_eq!((req.ttl, req.dst_addr), (1, far));
        assert_eq!((err.src_addr, err.payload_len + 20), (router, 112));
        assert_eq!(&pair[1].l3()[20..22], &[11, 0]);
        // The quote is the whole original datagram, header included.
        assert_eq!(pair[1].inner_ip.unwrap(), req);
        assert_eq!(&pair[1].l3()[28..], &pair[0].l3()[..84]);
    }

    let f = load(&dir, "udp-port-unreachable.pcap");
    let udp = ip(&f[0]);
    assert_eq!(
        (udp.protocol, udp.payload_len, udp.dont_frag),
        (Protocol::UDP, 27, true)
    );
    assert_eq!((ip(&f[1]).tos, &f[1].l3()[20..22]), (0xc0, &[3u8, 3][..]));
    assert_eq!(f[1].inner_ip.unwrap(), udp);

    let f = load(&dir, "reject-admin-prohibited.pcap");
    let protos: Vec<Protocol> = f.iter().map(|fr| ip(fr).protocol).collect();
    assert_eq!(
        protos,
        [Protocol::TCP, Protocol::ICMP, Protocol::UDP, Protocol::ICMP]
    );
    for pair in f.chunks(2) {
        assert_eq!(&pair[1].l3()[20..22], &[3, 13]);
        assert_eq!(pair[1].inner_ip.unwrap(), ip(&pair[0]));
    }
}

#[test]
fn vlan_facts() {
    let Some(dir) = common::captures_dir("vlan_facts") else {
        return;
    };
    let f = load(&dir, "vlan.pcap");
    assert_eq!(f.len(), 22);
    for fr in &f {
        assert_eq!(fr.eth.ethertype, EtherType::VLAN);
        assert_eq!(fr.tags.tag_count(), 1);
        let tag = fr.tags.outer().unwrap();
        assert_eq!(
            (tag.tpid, tag.vid, tag.pcp, tag.dei),
            (EtherType::VLAN, 10, 0, false)
        );
        assert_eq!(fr.tags.payload_offset, 18);
        assert_eq!(&fr.data[12..16], &[0x81, 0x00, 0x00, 0x0a]);
    }
    let arp = f[0].arp.unwrap();
    assert_eq!(arp.operation, Operation::Request);
    assert_eq!(arp.source_ip, Ipv4Addr::new(203, 0, 113, 1));
    assert_eq!(arp.target_ip, Ipv4Addr::new(203, 0, 113, 2));
    assert!(f[0].eth.dst_addr.is_broadcast());
    assert_eq!(f[1].arp.unwrap().operation, Operation::Reply);
    let ipv4 = f
        .iter()
        .filter(|fr| fr.tags.ethertype == EtherType::IPV4)
        .count();
    assert_eq!(ipv4, 20);
}

#[test]
fn ipip_facts() {
    let Some(dir) = common::captures_dir("ipip_facts") else {
        return;
    };
    let f = load(&dir, "ipip.pcap");
    let (u1, u2) = (Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2));
    let (i1, i2) = (
        Ipv4Addr::new(198, 51, 100, 1),
        Ipv4Addr::new(198, 51, 100, 2),
    );
    for (n, fr) in f.iter().enumerate() {
        let outer = ip(fr);
        let inner = fr.inner_ip.unwrap();
        assert_eq!(outer.protocol, Protocol::IPIP);
        assert_eq!(
            (outer.ttl, outer.dont_frag, outer.payload_len + 20),
            (64, true, 104)
        );
        assert_eq!(
            (inner.protocol, inner.payload_len + 20),
            (Protocol::ICMP, 84)
        );
        let fwd = n % 2 == 0;
        let (os, od, is, id) = if fwd {
            (u1, u2, i1, i2)
        } else {
            (u2, u1, i2, i1)
        };
        assert_eq!((outer.src_addr, outer.dst_addr), (os, od));
        assert_eq!((inner.src_addr, inner.dst_addr), (is, id));
    }
}

#[test]
fn tcp_rst_headers() {
    let Some(dir) = common::captures_dir("tcp_rst_headers") else {
        return;
    };
    for name in ["tcp-rst-closed-port.pcap", "reject-tcp-reset.pcap"] {
        let f = load(&dir, name);
        let rst = ip(&f[1]);
        assert_eq!(
            (rst.protocol, rst.payload_len),
            (Protocol::TCP, 20),
            "{name}"
        );
        assert_eq!((rst.src_addr, rst.dst_addr), (V4_2, V4_1), "{name}");
        assert!(rst.dont_frag, "{name}");
        assert_eq!(f[1].orig_len, 54);
    }
    let f = load(&dir, "tcp-rst-closed-port.pcap");
    assert_eq!(ip(&f[1]).ident, 0);
}
