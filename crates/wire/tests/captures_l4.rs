//! ICMP, UDP and TCP against every frame of the real Linux captures in
//! `../shared/captures/`: headers parse, checksums verify, `Repr::parse` →
//! `emit` reproduces the bytes, and the facts the captures' README states
//! hold.
//!
//! L2/L3 are walked here with plain offset arithmetic (Ethernet 14 bytes, +4
//! per 802.1Q/802.1ad tag, IHL, total length), with IP-in-IP unwrapped and
//! fragments reassembled, so this test depends only on the L4 modules.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use netpath_wire::icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
use netpath_wire::pcap::PcapReader;
use netpath_wire::tcp::{TcpFlags, TcpOption, TcpPacket, TcpRepr, TcpSeqNumber};
use netpath_wire::udp::{UdpPacket, UdpRepr};

/// One transport-layer datagram found in a capture.
#[derive(Debug, Clone)]
struct L4 {
    frame: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    /// The captured transport bytes (may be cut by the snaplen).
    bytes: Vec<u8>,
    /// Transport length according to the IP header.
    wire_len: usize,
}

impl L4 {
    fn truncated(&self) -> bool {
        self.bytes.len() < self.wire_len
    }
}

type FragKey = (Ipv4Addr, Ipv4Addr, u16, u8);

#[derive(Default)]
struct Walker {
    frags: HashMap<FragKey, Vec<(usize, bool, Vec<u8>)>>,
    out: Vec<L4>,
}

impl Walker {
    fn ip(&mut self, frame: usize, ip: &[u8]) {
        assert!(ip.len() >= 20, "frame {frame}: short IP header");
        assert_eq!(ip[0] >> 4, 4, "frame {frame}: IP version");
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        assert!(
            ihl >= 20 && total >= ihl,
            "frame {frame}: ihl {ihl} total {total}"
        );
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        let more = frag & 0x2000 != 0;
        let offset = usize::from(frag & 0x1fff) * 8;
        let id = u16::from_be_bytes([ip[4], ip[5]]);
        let proto = ip[9];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let end = total.min(ip.len());
        let payload = &ip[ihl..end];
        let wire_len = total - ihl;
        if more || offset != 0 {
            assert_eq!(
                payload.len(),
                wire_len,
                "frame {frame}: fragment cut by snaplen"
            );
            let key = (src, dst, id, proto);
            let list = self.frags.entry(key).or_default();
            list.push((offset, more, payload.to_vec()));
            list.sort_by_key(|f| f.0);
            // Complete when contiguous from 0 up to a last fragment.
            let mut next = 0;
            let mut done = false;
            for (off, mf, data) in list.iter() {
                if *off != next {
                    break;
                }
                next += data.len();
                if !mf {
                    done = true;
                }
            }
            if done {
                let list = self.frags.remove(&key).unwrap_or_default();
                let whole: Vec<u8> = list.into_iter().flat_map(|f| f.2).collect();
                let wire_len = whole.len();
                self.l4(frame, src, dst, proto, whole, wire_len);
            }
            return;
        }
        self.l4(frame, src, dst, proto, payload.to_vec(), wire_len);
    }

    fn l4(
        &mut self,
        frame: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        bytes: Vec<u8>,
        wire_len: usize,
    ) {
        if proto == 4 {
            // IP-in-IP: the inner datagram is the payload.
            self.ip(frame, &bytes);
            return;
        }
        self.out.push(L4 {
            frame,
            src,
            dst,
            proto,
            bytes,
            wire_len,
        });
    }
}

struct Capture {
    frames: usize,
    /// Frames whose captured length is below the original length.
    cut_frames: usize,
    l4: Vec<L4>,
}

fn read_capture(path: &Path) -> Capture {
    let data = std::fs::read(path).expect("read capture");
    let reader = PcapReader::new(&data).expect("pcap header");
    let mut w = Walker::default();
    let mut frames = 0;
    let mut cut_frames = 0;
    for (i, rec) in reader.enumerate() {
        let rec = rec.expect("pcap record");
        frames += 1;
        assert!(rec.orig_len as usize >= rec.data.len());
        if (rec.orig_len as usize) > rec.data.len() {
            cut_frames += 1;
        }
        let f = rec.data;
        let mut off = 12;
        let mut ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            off += 4;
            ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
        }
        if ethertype == 0x0800 {
            w.ip(i + 1, &f[off + 2..]);
        }
    }
    assert!(
        w.frags.is_empty(),
        "{}: incomplete fragments left",
        path.display()
    );
    Capture {
        frames,
        cut_frames,
        l4: w.out,
    }
}

/// Parsed facts about one ICMP message.
#[derive(Debug, Clone)]
struct IcmpSeen {
    repr: Icmpv4Repr,
    quoted: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct TcpSeen {
    src: Ipv4Addr,
    repr: TcpRepr,
    options: Vec<TcpOption<'static>>,
    /// Payload length by the IP length (the capture may cut the payload).
    payload_len: usize,
}

#[derive(Default)]
struct Seen {
    icmp: Vec<IcmpSeen>,
    udp: Vec<(Ipv4Addr, UdpRepr)>,
    tcp: Vec<TcpSeen>,
    checksums_verified: usize,
}

/// Copies an option into an owned form. Linux sends only known kinds, so
/// an unknown one fails the test.
fn owned(o: TcpOption<'_>) -> TcpOption<'static> {
    match o {
        TcpOption::EndOfList => TcpOption::EndOfList,
        TcpOption::NoOperation => TcpOption::NoOperation,
        TcpOption::MaxSegmentSize(v) => TcpOption::MaxSegmentSize(v),
        TcpOption::WindowScale(v) => TcpOption::WindowScale(v),
        TcpOption::SackPermitted => TcpOption::SackPermitted,
        TcpOption::Sack(b) => TcpOption::Sack(b),
        TcpOption::Timestamps { tsval, tsecr } => TcpOption::Timestamps { tsval, tsecr },
        TcpOption::Md5Sig(d) => TcpOption::Md5Sig(d),
        TcpOption::Unknown { kind, .. } => {
            panic!("unexpected option kind {kind} in a Linux capture")
        }
    }
}

fn check_icmp(name: &str, l: &L4, seen: &mut Seen) {
    let p = Icmpv4Packet::new_checked(&l.bytes[..])
        .unwrap_or_else(|e| panic!("{name} frame {}: {e}", l.frame));
    let repr = if l.truncated() {
        Icmpv4Repr::parse_unverified(&p).unwrap()
    } else {
        assert!(
            p.verify_checksum(),
            "{name} frame {}: ICMP checksum",
            l.frame
        );
        seen.checksums_verified += 1;
        Icmpv4Repr::parse(&p).unwrap()
    };
    assert_eq!(repr.buffer_len(), l.bytes.len());
    // Re-emit the whole message over the same data.
    let mut out = l.bytes.clone();
    out[..8].fill(0);
    repr.emit(&mut Icmpv4Packet::new_checked(&mut out[..]).unwrap())
        .unwrap();
    if !l.truncated() {
        assert_eq!(out, l.bytes, "{name} frame {}: ICMP re-emit", l.frame);
    } else {
        assert_eq!(out[4..8], l.bytes[4..8]);
    }
    seen.icmp.push(IcmpSeen {
        repr,
        quoted: p.quoted_datagram().map(<[u8]>::to_vec),
    });
}

fn check_udp(name: &str, l: &L4, seen: &mut Seen) {
    let p = UdpPacket::new_checked(&l.bytes[..])
        .unwrap_or_else(|e| panic!("{name} frame {}: {e}", l.frame));
    assert_ne!(p.checksum(), 0, "Linux always sends a UDP checksum");
    assert!(
        p.verify_checksum(l.src, l.dst),
        "{name} frame {}: UDP checksum",
        l.frame
    );
    seen.checksums_verified += 1;
    let repr = UdpRepr::parse(&p, l.src, l.dst).unwrap();
    assert_eq!(repr.buffer_len(), usize::from(p.len()));
    let mut out = l.bytes.clone();
    out[..8].fill(0);
    repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), l.src, l.dst)
        .unwrap();
    assert_eq!(out, l.bytes, "{name} frame {}: UDP re-emit", l.frame);
    seen.udp.push((l.src, repr));
}

fn check_tcp(name: &str, l: &L4, seen: &mut Seen) {
    let p = TcpPacket::new_checked(&l.bytes[..])
        .unwrap_or_else(|e| panic!("{name} frame {}: {e}", l.frame));
    let options: Vec<_> = p
        .options_iter()
        .map(|o| owned(o.unwrap_or_else(|e| panic!("{name} frame {}: option {e}", l.frame))))
        .collect();
    let hl = p.header_len();
    let mut out = l.bytes.clone();
    out[..hl].fill(0);
    let repr = if l.truncated() {
        let repr = TcpRepr::parse_unverified(&p).unwrap();
        repr.emit_header(&mut TcpPacket::new_unchecked(&mut out[..]))
            .unwrap();
        out[16..18].copy_from_slice(&p.checksum().to_be_bytes());
        assert_eq!(
            out[..hl],
            l.bytes[..hl],
            "{name} frame {}: TCP header re-emit",
            l.frame
        );
        repr
    } else {
        assert!(
            p.verify_checksum(l.src, l.dst),
            "{name} frame {}: TCP checksum",
            l.frame
        );
        seen.checksums_verified += 1;
        let repr = TcpRepr::parse(&p, l.src, l.dst).unwrap();
        repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), l.src, l.dst)
            .unwrap();
        assert_eq!(out, l.bytes, "{name} frame {}: TCP re-emit", l.frame);
        repr
    };
    assert_eq!(repr.header_len(), hl);
    seen.tcp.push(TcpSeen {
        src: l.src,
        repr,
        options,
        payload_len: l.wire_len - hl,
    });
}

fn walk(name: &str, cap: &Capture) -> Seen {
    let mut seen = Seen::default();
    for l in &cap.l4 {
        match l.proto {
            1 => check_icmp(name, l, &mut seen),
            17 => check_udp(name, l, &mut seen),
            6 => check_tcp(name, l, &mut seen),
            p => panic!("{name} frame {}: unexpected protocol {p}", l.frame),
        }
    }
    seen
}

const H1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn payload_from(seen: &Seen, src: Ipv4Addr) -> usize {
    seen.tcp
        .iter()
        .filter(|t| t.src == src)
        .map(|t| t.payload_len)
        .sum()
}

fn count_flags(seen: &Seen, flags: TcpFlags) -> usize {
    seen.tcp
        .iter()
        .filter(|t| t.repr.flags.contains(flags))
        .count()
}

fn echo_seqs(seen: &Seen, request: bool) -> Vec<(u16, usize)> {
    seen.icmp
        .iter()
        .filter_map(|i| match i.repr {
            Icmpv4Repr::EchoRequest {
                seq_no, data_len, ..
            } if request => Some((seq_no, data_len)),
            Icmpv4Repr::EchoReply {
                seq_no, data_len, ..
            } if !request => Some((seq_no, data_len)),
            _ => None,
        })
        .collect()
}

/// The quoted datagram's IP header length and total length.
fn quoted_ip(q: &[u8]) -> (usize, usize, u8) {
    (
        usize::from(q[0] & 0x0f) * 4,
        usize::from(u16::from_be_bytes([q[2], q[3]])),
        q[9],
    )
}

#[test]
fn every_capture_l4() {
    let Some(dir) = common::captures_dir("every_capture_l4") else {
        return;
    };
    let files = common::capture_files(&dir);
    assert_eq!(files.len(), 12, "the README lists 12 captures");
    let mut total_verified = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let cap = read_capture(path);
        let seen = walk(&name, &cap);
        total_verified += seen.checksums_verified;
        if name != "tcp-loss-recovery.pcap" {
            assert_eq!(cap.cut_frames, 0, "{name}: captured with -s 0");
            assert_eq!(
                seen.checksums_verified,
                cap.l4.len(),
                "{name}: every checksum verified"
            );
        }
        check_facts(&name, &cap, &seen);
    }
    assert_eq!(
        total_verified, 605,
        "L4 checksums verified across all captures"
    );
}

fn check_facts(name: &str, cap: &Capture, seen: &Seen) {
    match name {
        "arp-ping.pcap" => {
            assert_eq!(cap.frames, 8);
            assert_eq!(echo_seqs(seen, true), vec![(1, 56), (2, 56), (3, 56)]);
            assert_eq!(echo_seqs(seen, false), vec![(1, 56), (2, 56), (3, 56)]);
        }
        "ping-fragmented.pcap" => {
            assert_eq!(cap.frames, 12);
            // Reassembled: 2 requests and 2 replies of 4000 data bytes.
            assert_eq!(echo_seqs(seen, true).len(), 2);
            assert_eq!(echo_seqs(seen, false).len(), 2);
            assert!(seen.icmp.iter().all(|i| i.repr.data_len() == 4000));
        }
        "ping-df-frag-needed.pcap" => {
            assert_eq!(cap.frames, 4);
            let errs: Vec<_> = seen
                .icmp
                .iter()
                .filter(|i| matches!(i.repr, Icmpv4Repr::DstUnreachable { .. }))
                .collect();
            assert_eq!(errs.len(), 1);
            let e = errs[0];
            assert_eq!(
                e.repr,
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::FragNeeded { next_hop_mtu: 1280 },
                    data_len: 576 - 20 - 8,
                }
            );
            // The quote is cut: its IP header says 1428 bytes.
            let q = e.quoted.as_deref().unwrap();
            assert_eq!(quoted_ip(q), (20, 1428, 1));
            assert_eq!(
                echo_seqs(seen, true)
                    .iter()
                    .map(|e| e.1)
                    .collect::<Vec<_>>(),
                vec![1400, 1252]
            );
            assert_eq!(
                echo_seqs(seen, false)
                    .iter()
                    .map(|e| e.1)
                    .collect::<Vec<_>>(),
                vec![1252]
            );
        }
        "ttl-exceeded.pcap" => {
            assert_eq!(cap.frames, 4);
            let errs: Vec<_> = seen
                .icmp
                .iter()
                .filter(|i| matches!(i.repr, Icmpv4Repr::TimeExceeded { .. }))
                .collect();
            assert_eq!(errs.len(), 2);
            for e in errs {
                assert_eq!(
                    e.repr,
                    Icmpv4Repr::TimeExceeded {
                        reason: TimeExceeded::TtlExpired,
                        data_len: 84
                    }
                );
                // The whole 84-byte datagram is quoted, so its echo request
                // verifies and parses.
                let q = e.quoted.as_deref().unwrap();
                assert_eq!(quoted_ip(q), (20, 84, 1));
                let inner = Icmpv4Packet::new_checked(&q[20..]).unwrap();
                assert!(matches!(
                    Icmpv4Repr::parse(&inner).unwrap(),
                    Icmpv4Repr::EchoRequest { data_len: 56, .. }
                ));
            }
        }
        "udp-port-unreachable.pcap" => {
            assert_eq!(cap.frames, 2);
            let want = UdpRepr {
                src_port: 40000,
                dst_port: 33434,
                payload_len: 19,
            };
            assert_eq!(seen.udp, vec![(H1, want)]);
            assert_eq!(seen.icmp.len(), 1);
            let e = &seen.icmp[0];
            assert!(matches!(
                e.repr,
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::PortUnreachable,
                    data_len: 47
                }
            ));
            let q = e.quoted.as_deref().unwrap();
            assert_eq!(quoted_ip(q), (20, 47, 17));
            let qsrc = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
            let qdst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
            let udp = UdpPacket::new_checked(&q[20..]).unwrap();
            assert_eq!(UdpRepr::parse(&udp, qsrc, qdst), Ok(want));
        }
        "tcp-handshake-transfer-close.pcap" => {
            assert_eq!(cap.frames, 103);
            let syn = &seen.tcp[0];
            assert_eq!(syn.repr.flags, TcpFlags::SYN);
            assert_eq!(syn.repr.window_len, 64240);
            assert_eq!(syn.options.len(), 5);
            assert_eq!(syn.options[0], TcpOption::MaxSegmentSize(1460));
            assert_eq!(syn.options[1], TcpOption::SackPermitted);
            assert!(
                matches!(syn.options[2], TcpOption::Timestamps { tsecr: 0, tsval } if tsval != 0)
            );
            assert_eq!(syn.options[3], TcpOption::NoOperation);
            assert_eq!(syn.options[4], TcpOption::WindowScale(10));
            let syn_ack = &seen.tcp[1];
            assert_eq!(syn_ack.repr.flags, TcpFlags::SYN | TcpFlags::ACK);
            assert_eq!(syn_ack.repr.window_len, 65160);
            assert_eq!(syn_ack.repr.ack_number, syn.repr.seq_number + 1);
            assert_eq!(payload_from(seen, H1), 102400);
            assert_eq!(payload_from(seen, Ipv4Addr::new(192, 0, 2, 2)), 22);
            // Data segments are 1448 bytes, with nop,nop,TS.
            let data: Vec<_> = seen
                .tcp
                .iter()
                .filter(|t| t.src == H1 && t.payload_len > 0)
                .collect();
            assert!(data[..data.len() - 1].iter().all(|t| t.payload_len == 1448));
            assert_eq!(
                data.last().map(|t| (t.payload_len, t.repr.flags.psh())),
                Some((1040, true))
            );
            assert!(data.iter().all(|t| matches!(
                t.options[..],
                [
                    TcpOption::NoOperation,
                    TcpOption::NoOperation,
                    TcpOption::Timestamps { .. }
                ]
            )));
            assert_eq!(count_flags(seen, TcpFlags::FIN), 2);
            assert_eq!(count_flags(seen, TcpFlags::RST), 0);
        }
        "tcp-loss-recovery.pcap" => {
            assert_eq!(cap.frames, 1191);
            // -s 128: data segments are cut, pure ACKs (66 bytes) are not.
            assert!(cap.cut_frames > 700, "cut frames: {}", cap.cut_frames);
            assert!(cap
                .l4
                .iter()
                .filter(|l| l.truncated())
                .all(|l| l.bytes.len() == 128 - 14 - 20));
            let sack = seen
                .tcp
                .iter()
                .filter(|t| !t.repr.options.sack.is_empty())
                .count();
            // The README's 372 is `tcpdump | grep -c sack`: 370 segments
            // with SACK blocks plus the SYN and SYN-ACK with sackOK.
            assert_eq!(sack, 370);
            let sack_any = seen
                .tcp
                .iter()
                .filter(|t| !t.repr.options.sack.is_empty() || t.repr.options.sack_permitted)
                .count();
            assert_eq!(sack_any, 372);
            assert!(seen
                .tcp
                .iter()
                .flat_map(|t| &t.options)
                .any(|o| matches!(o, TcpOption::Sack(b) if b.len() >= 2)));
            // The sender's data covers exactly 1 MiB of sequence space, and
            // 18 segments resend earlier data.
            let isn = seen.tcp[0].repr.seq_number;
            let mut high = isn + 1;
            let mut resent = 0;
            for t in seen.tcp.iter().filter(|t| t.src == H1 && t.payload_len > 0) {
                let end = t.repr.seq_number + t.payload_len as u32;
                if end.after(high) {
                    high = end;
                } else {
                    resent += 1;
                }
            }
            assert_eq!(high - (isn + 1), 1_048_576);
            assert_eq!(resent, 18);
        }
        "tcp-rst-closed-port.pcap" | "reject-tcp-reset.pcap" => {
            assert_eq!(cap.frames, 2);
            let (syn, rst) = (&seen.tcp[0].repr, &seen.tcp[1].repr);
            assert_eq!(syn.flags, TcpFlags::SYN);
            assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
            assert_eq!(rst.window_len, 0);
            assert_eq!(rst.seq_number, TcpSeqNumber(0));
            assert_eq!(rst.ack_number, syn.seq_number + 1);
            assert_eq!(rst.header_len(), 20);
        }
        "reject-admin-prohibited.pcap" => {
            assert_eq!(cap.frames, 4);
            let codes: Vec<_> = seen
                .icmp
                .iter()
                .map(|i| {
                    (
                        i.repr.header_fields().0,
                        i.repr.header_fields().1,
                        quoted_ip(i.quoted.as_deref().unwrap()).2,
                    )
                })
                .collect();
            assert_eq!(codes, vec![(3, 13, 6), (3, 13, 17)]);
            assert!(seen.icmp.iter().all(|i| matches!(
                i.repr,
                Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::CommProhibited,
                    ..
                }
            )));
            assert_eq!(seen.tcp[0].repr.dst_port, 5003);
            assert_eq!(seen.udp[0].1.dst_port, 5003);
        }
        "vlan.pcap" => {
            assert_eq!(cap.frames, 22);
            assert_eq!(echo_seqs(seen, true).len(), 3);
            assert_eq!(echo_seqs(seen, false).len(), 3);
            assert_eq!(payload_from(seen, Ipv4Addr::new(203, 0, 113, 1)), 4096);
            assert_eq!(payload_from(seen, Ipv4Addr::new(203, 0, 113, 2)), 20);
        }
        "ipip.pcap" => {
            assert_eq!(cap.frames, 6);
            assert_eq!(echo_seqs(seen, true).len(), 3);
            assert_eq!(echo_seqs(seen, false).len(), 3);
            assert!(cap.l4.iter().all(|l| l.src.octets()[..3] == [198, 51, 100]));
        }
        other => panic!("capture {other} is not in the README"),
    }
}
