//! `tcp_v4_rcv` with no socket: the RST Linux sends, compared byte for byte
//! with Linux's own answer in `../shared/captures/tcp-rst-closed-port.pcap`.

mod topo;

use netpath::dev::nic::NicConfig;
use netpath::drop::DropReason;
use netpath::ipv4::output::IpSendOpts;
use netpath::sim::LinkConfig;
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, EthernetAddress};
use netpath_wire::pcap::PcapReader;
use topo::{ip, ip_of, Topo};

fn segment(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[8..12].copy_from_slice(&ack.unwrap_or(0).to_be_bytes());
    h[12] = 5 << 4;
    h[13] = flags | if ack.is_some() { 0x10 } else { 0 };
    h[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(ip(src), ip(dst), 6, 20);
    c.add_bytes(&h);
    h[16..18].copy_from_slice(&c.finish().to_be_bytes());
    h
}

#[test]
fn closed_port_answers_rst_and_counts() {
    let mut t = Topo::new(31);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let raw = t.with(&a, |s, _| s.raw_open(6, 10));
    let send = |t: &mut Topo, seg: Vec<u8>| {
        t.with(&a, |s, now| {
            s.ip_send(now, ip("192.0.2.2"), 6, &seg, IpSendOpts::default())
        })
        .unwrap();
        t.run_ms(20);
    };
    // A SYN: RST+ACK, seq 0, ack ISN+1, window 0.
    send(
        &mut t,
        segment("192.0.2.1", "192.0.2.2", 40000, 5002, 1000, None, 0x02),
    );
    // An ACK: RST with seq = its ack, no ACK flag.
    send(
        &mut t,
        segment("192.0.2.1", "192.0.2.2", 40000, 5002, 7, Some(5555), 0),
    );
    // A RST: no answer.
    send(
        &mut t,
        segment("192.0.2.1", "192.0.2.2", 40000, 5002, 7, None, 0x04),
    );
    // A bad checksum: counted, no answer.
    let mut bad = segment("192.0.2.1", "192.0.2.2", 40000, 5002, 1, None, 0x02);
    bad[16] ^= 0xff;
    send(&mut t, bad);
    let got = t.raw_drain(&a, raw);
    let hdr: Vec<(u8, u32, u32, u16)> = got
        .iter()
        .map(|s| {
            let d = s.data();
            (
                d[13],
                u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
                u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
                u16::from_be_bytes([d[14], d[15]]),
            )
        })
        .collect();
    assert_eq!(hdr, vec![(0x14, 0, 1001, 0), (0x04, 5555, 0, 0)]);
    let (_, _, ttl, _, df, id, len) = ip_of(&got[0]);
    assert_eq!((ttl, df, id, len), (64, true, 0, 40));
    let m = *t.stack(&b).tcp_mib();
    assert_eq!(
        (m.in_segs, m.out_rsts, m.in_csum_errors, m.in_errs),
        (4, 2, 1, 1),
        "InSegs counts bad ones too, as Linux"
    );
    assert_eq!(t.stack(&b).drops().get(DropReason::NoSocket), 3);
    assert_eq!(t.stack(&b).drops().get(DropReason::TcpCsum), 1);
}

fn captures() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("NETPATH_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        })
        .join("captures");
    if dir.join("tcp-rst-closed-port.pcap").is_file() {
        return Some(dir);
    }
    let why = format!(
        "rst_matches_linux_byte_for_byte: skipped: {} not found",
        dir.display()
    );
    assert!(
        std::env::var("NETPATH_REQUIRE_SHARED").as_deref() != Ok("1"),
        "{why}, and NETPATH_REQUIRE_SHARED=1"
    );
    eprintln!("{why}");
    None
}

#[test]
fn rst_matches_linux_byte_for_byte() {
    let Some(dir) = captures() else { return };
    let bytes = std::fs::read(dir.join("tcp-rst-closed-port.pcap")).unwrap();
    let frames: Vec<Vec<u8>> = PcapReader::new(&bytes)
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect();
    let (syn, linux_rst) = (&frames[0], &frames[1]);
    // A host with the capture's server MAC and address receives Linux's SYN.
    let mut s = Stack::new();
    let mac = EthernetAddress::from_bytes(&syn[0..6]).unwrap();
    let nic = s.add_nic("eth0", mac, NicConfig::default()).unwrap();
    s.set_up(nic, true).unwrap();
    s.ip_addr_add(nic, ip("192.0.2.2"), 24).unwrap();
    let client_mac = EthernetAddress::from_bytes(&syn[6..12]).unwrap();
    s.neigh_add_static(nic, ip("192.0.2.1"), client_mac)
        .unwrap();
    let mut f = syn.clone();
    let n = f.len();
    f.extend_from_slice(&[0; 4]);
    fcs::append(&mut f, n).unwrap();
    s.nic_receive_bytes(Instant::ZERO, nic, &f).unwrap();
    s.poll(Instant::ZERO);
    let mut sent = Vec::new();
    s.nic_take_sent(nic, &mut sent);
    assert_eq!(sent.len(), 1);
    let ours = sent[0].data();
    // Ethernet + IPv4 + TCP as Linux sent them (ours has padding and FCS).
    assert_eq!(&ours[..14], &linux_rst[..14], "Ethernet header");
    let (li, oi) = (&linux_rst[14..34], &ours[14..34]);
    assert_eq!(
        (oi[0], oi[1], &oi[2..4], &oi[4..8], oi[8], oi[9]),
        (li[0], li[1], &li[2..4], &li[4..8], li[8], li[9]),
        "IPv4 header"
    );
    assert_eq!(&oi[12..20], &li[12..20], "addresses");
    assert_eq!(&oi[10..12], &li[10..12], "IPv4 checksum");
    assert_eq!(
        &ours[34..54],
        &linux_rst[34..54],
        "TCP header, checksum included"
    );
}
