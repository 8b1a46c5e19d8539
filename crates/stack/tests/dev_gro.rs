//! GRO on a NIC's NAPI poll, as Linux's `napi_gro_receive` →
//! `inet_gro_receive` → `tcp4_gro_receive`/`tcp_gro_receive` and
//! `napi_gro_flush` → `tcp_gro_complete` do it: consecutive in-order TCP
//! segments of one flow that arrive in one poll reach `netif_receive_skb`
//! as one packet (IPv4 total length of the whole, fresh header checksum,
//! `gso_size` of the first segment, PSH OR'd in, TCP checksum partial);
//! anything that breaks the rules (another ACK, a gap, other options, TTL,
//! TOS or DF, IDs out of step without DF, SYN/RST/URG, a bad checksum)
//! is handed up after what was held of its flow, in order; up to eight
//! flows are held at once (a ninth sends the oldest up) and a packet of no
//! held flow goes up at once; PSH, FIN or a short segment ends a packet;
//! the poll's end flushes.
//!
//! Frames are built by hand and injected with `nic_receive_bytes`; a tap
//! on the NIC (incoming only) shows what `netif_receive_skb` got, from the
//! IPv4 header on.

use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapDirection, TapId, TapSink};
use netpath::dev::IfIndex;
use netpath::drop::DropReason;
use netpath::skb::{PoolConfig, Skb, SkbPool};
use netpath::stack::Stack;
use netpath::time::Duration;
use netpath_wire::checksum::{self, Checksum};
use netpath_wire::ethernet::{fcs, EthernetAddress};
use std::net::Ipv4Addr;

const NIC_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 9]);
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Payload of a full segment.
const MSS: usize = 1000;
/// Sequence number of the first byte; the stream wraps 2 KiB in.
const ISS: u32 = 0xffff_f800;
const ACK_NO: u32 = 0x1234_5678;
/// Length of a TCP header with the timestamp option.
const THL: usize = 32;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// NOP, NOP, timestamps (`val`, a fixed echo reply).
fn ts(val: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    o
}

/// Byte `k` of the peer's stream (counted from `ISS`).
fn stream(k: usize) -> u8 {
    (k * 7 + 3) as u8
}

/// Sequence number of full segment `i`.
fn seq(i: usize) -> u32 {
    ISS.wrapping_add((i * MSS) as u32)
}

/// One TCP/IPv4 segment from the peer to the NIC's address.
#[derive(Debug, Clone)]
struct Seg {
    sport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    id: u16,
    ttl: u8,
    tos: u8,
    df: bool,
    len: usize,
    opts: Vec<u8>,
    bad_tcp_csum: bool,
}

impl Seg {
    /// Full segment `i` of the flow: ACK only, DF, IP id 100 + i, a
    /// timestamp option.
    fn nth(i: usize) -> Seg {
        Seg {
            sport: 40000,
            seq: seq(i),
            ack: ACK_NO,
            flags: ACK,
            id: 100 + i as u16,
            ttl: 64,
            tos: 0,
            df: true,
            len: MSS,
            opts: ts(7777),
            bad_tcp_csum: false,
        }
    }

    /// The frame on the wire: Ethernet, IPv4 and TCP with right
    /// checksums (unless told otherwise), payload from the stream, FCS.
    fn frame(&self) -> Vec<u8> {
        let thl = 20 + self.opts.len();
        assert_eq!(thl % 4, 0);
        let mut f = Vec::new();
        f.extend_from_slice(NIC_MAC.as_bytes());
        f.extend_from_slice(PEER_MAC.as_bytes());
        f.extend_from_slice(&[0x08, 0x00]);
        let tot = (20 + thl + self.len) as u16;
        f.extend_from_slice(&[0x45, self.tos]);
        f.extend_from_slice(&tot.to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.extend_from_slice(&[if self.df { 0x40 } else { 0 }, 0, self.ttl, 6, 0, 0]);
        f.extend_from_slice(&PEER.octets());
        f.extend_from_slice(&LOCAL.octets());
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&self.sport.to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.extend_from_slice(&self.seq.to_be_bytes());
        f.extend_from_slice(&self.ack.to_be_bytes());
        f.extend_from_slice(&[((thl / 4) as u8) << 4, self.flags, 0x10, 0x00, 0, 0, 0, 0]);
        f.extend_from_slice(&self.opts);
        let off = self.seq.wrapping_sub(ISS) as usize;
        f.extend((off..off + self.len).map(stream));
        let mut c = Checksum::pseudo_header_v4(PEER, LOCAL, 6, (thl + self.len) as u16);
        c.add_bytes(&f[34..]);
        let mut csum = c.finish();
        if self.bad_tcp_csum {
            csum ^= 0x0101;
        }
        f[34 + 16..34 + 18].copy_from_slice(&csum.to_be_bytes());
        // Ethernet padding to the 60-byte minimum.
        f.resize(f.len().max(60), 0);
        let n = f.len();
        f.extend_from_slice(&[0; 4]);
        fcs::append(&mut f, n).unwrap();
        f
    }
}

/// A host with one NIC (up, 192.0.2.2/24) and a tap on what it receives.
fn host(cfg: NicConfig) -> (Stack, IfIndex, TapId) {
    host_with_pool(cfg, SkbPool::default())
}

fn host_with_pool(cfg: NicConfig, pool: SkbPool) -> (Stack, IfIndex, TapId) {
    let mut s = Stack::with_pool(pool);
    let nic = s.add_nic("eth0", NIC_MAC, cfg).unwrap();
    s.set_up(nic, true).unwrap();
    s.ip_addr_add(nic, LOCAL, 24).unwrap();
    let mut tap = Tap::all(Some(nic), TapSink::queue(1000));
    tap.direction = TapDirection::In;
    let tap = s.add_tap(tap);
    (s, nic, tap)
}

/// `segs` arrive at the same instant, then one poll: the packets
/// `netif_receive_skb` got.
fn receive(s: &mut Stack, nic: IfIndex, tap: TapId, segs: &[Seg]) -> Vec<Skb> {
    let now = s.now() + Duration::from_millis(1);
    for seg in segs {
        s.nic_receive_bytes(now, nic, &seg.frame()).unwrap();
    }
    s.poll(now);
    std::iter::from_fn(|| s.tap_recv(tap)).collect()
}

/// What a received packet was: sequence number, payload length, TCP
/// flags, `gso_size`, TCP checksum right.
type Got = (u32, usize, u8, u16, bool);

/// What `p` is, after checking it: data at the IPv4 header, as long as its
/// total length (or the Ethernet minimum, padding included), IPv4 header
/// checksum right, the payload the stream's bytes at its place.
fn summary(p: &Skb) -> Got {
    let d = p.data();
    assert_eq!(d[0], 0x45, "data at the IPv4 header");
    let tot = usize::from(u16::from_be_bytes([d[2], d[3]]));
    assert_eq!(d.len(), tot.max(60 - 14), "total length");
    assert!(checksum::verify(&d[..20]), "IPv4 header checksum");
    let t = &d[20..tot];
    let thl = usize::from(t[12] >> 4) * 4;
    let mut c = Checksum::pseudo_header_v4(PEER, LOCAL, 6, t.len() as u16);
    c.add_bytes(t);
    let s = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let off = s.wrapping_sub(ISS) as usize;
    let want: Vec<u8> = (off..off + t.len() - thl).map(stream).collect();
    assert_eq!(t[thl..], want[..], "payload at seq {s:#x}");
    (s, t.len() - thl, t[13], p.meta.gso_size, c.finish() == 0)
}

/// Segment `i` of the flow from source port 40000 + `f`.
fn of_flow(f: u16, i: usize) -> Seg {
    Seg {
        sport: 40000 + f,
        ..Seg::nth(i)
    }
}

/// The TCP source port of a packet seen from its IPv4 header.
fn sport(p: &Skb) -> u16 {
    u16::from_be_bytes([p.data()[20], p.data()[21]])
}

fn summaries(pkts: &[Skb]) -> Vec<Got> {
    pkts.iter().map(summary).collect()
}

/// A packet of `n` full segments from segment `i` on, as GRO builds it.
fn merged(i: usize, n: usize, flags: u8) -> Got {
    (
        seq(i),
        n * MSS,
        flags,
        if n > 1 { MSS as u16 } else { 0 },
        true,
    )
}

fn run(segs: &[Seg]) -> Vec<Got> {
    let (mut s, nic, tap) = host(NicConfig::default());
    summaries(&receive(&mut s, nic, tap, segs))
}

#[test]
fn four_in_order_segments_become_one_packet() {
    let (mut s, nic, tap) = host(NicConfig::default());
    s.tracer_mut().enable(4096);
    let segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    let first = segs[0].frame();
    let pkts = receive(&mut s, nic, tap, &segs);
    assert_eq!(pkts.len(), 1);
    // Three segments merged into the first; one packet of four completed.
    let events = |point: &str| -> Vec<(u32, u64)> {
        s.tracer()
            .events()
            .filter(|e| e.point == point)
            .map(|e| (e.len, e.detail))
            .collect()
    };
    assert_eq!(events("napi_gro_receive").len(), 3);
    assert_eq!(
        events("napi_gro_complete"),
        [((20 + THL + 4 * MSS) as u32, 4)]
    );
    let p = &pkts[0];
    let d = p.data();
    assert_eq!(d.len(), 20 + THL + 4 * MSS);
    assert_eq!(
        usize::from(u16::from_be_bytes([d[2], d[3]])),
        20 + THL + 4 * MSS
    );
    assert!(checksum::verify(&d[..20]));
    // The first segment's headers, but for the total length and checksum.
    assert_eq!(d[4..10], first[18..24], "id, DF, TTL, protocol");
    assert_eq!(d[12..20], first[26..34], "addresses");
    assert_eq!(d[20..20 + 16], first[34..34 + 16], "ports .. window");
    assert_eq!(d[20 + 20..20 + THL], ts(7777)[..], "options");
    assert_eq!(p.meta.gso_size, MSS as u16);
    // The first frame's Ethernet header in front, for captures.
    assert_eq!(p.mac_header_bytes()[..14], first[..14]);
    // The concatenated payload, and a TCP checksum over the whole (the tap
    // shows the partial one finished).
    let want: Vec<u8> = (0..4 * MSS).map(stream).collect();
    assert_eq!(d[20 + THL..], want[..]);
    assert_eq!(summary(p), merged(0, 4, ACK));
    // The NIC counted four frames; IP and TCP ran once, and accepted it.
    assert_eq!(s.dev(nic).unwrap().stats().rx_packets, 4);
    assert_eq!(s.tcp_mib().in_segs, 1);
    assert_eq!(s.tcp_mib().in_csum_errors, 0);
}

#[test]
fn without_gro_every_frame_goes_up_alone() {
    let segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    let each: Vec<_> = (0..4).map(|i| merged(i, 1, ACK)).collect();
    let off = NicConfig {
        gro: false,
        ..NicConfig::default()
    };
    let (mut s, nic, tap) = host(off);
    assert_eq!(summaries(&receive(&mut s, nic, tap, &segs)), each);
    assert_eq!(s.tcp_mib().in_segs, 4);
    // Switched off and on again at run time (ethtool -K gro).
    let (mut s, nic, tap) = host(NicConfig::default());
    s.set_gro(nic, false).unwrap();
    assert_eq!(summaries(&receive(&mut s, nic, tap, &segs)), each);
    s.set_gro(nic, true).unwrap();
    assert_eq!(
        summaries(&receive(&mut s, nic, tap, &segs)),
        [merged(0, 4, ACK)]
    );
}

#[test]
fn another_ack_number_starts_a_new_packet() {
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].ack = ACK_NO + 1;
    segs[3].ack = ACK_NO + 1;
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(2, 2, ACK)]);
}

#[test]
fn a_gap_in_sequence_numbers_starts_a_new_packet() {
    let segs: Vec<Seg> = [0, 1, 3, 4].into_iter().map(Seg::nth).collect();
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(3, 2, ACK)]);
    // Nor is a retransmission merged.
    let segs: Vec<Seg> = [0, 1, 1, 2].into_iter().map(Seg::nth).collect();
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(1, 2, ACK)]);
}

#[test]
fn options_must_be_the_same_byte_for_byte() {
    // Another timestamp value.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].opts = ts(7778);
    segs[3].opts = ts(7778);
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(2, 2, ACK)]);
    // Another echo reply.
    let mut segs: Vec<Seg> = (0..3).map(Seg::nth).collect();
    segs[1].opts[11] ^= 1;
    assert_eq!(
        run(&segs),
        [merged(0, 1, ACK), merged(1, 1, ACK), merged(2, 1, ACK)]
    );
    // No options at all (another header length).
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].opts.clear();
    segs[3].opts.clear();
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(2, 2, ACK)]);
}

#[test]
fn syn_rst_and_urg_segments_flush_and_go_up_alone() {
    for flag in [SYN, RST, URG] {
        let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
        segs[2].flags = ACK | flag;
        assert_eq!(
            run(&segs),
            [
                merged(0, 2, ACK),
                merged(2, 1, ACK | flag),
                merged(3, 1, ACK)
            ],
            "flag {flag:#x}"
        );
    }
    // A segment without ACK is not merged either.
    let mut segs: Vec<Seg> = (0..3).map(Seg::nth).collect();
    segs[1].flags = 0;
    assert_eq!(
        run(&segs),
        [merged(0, 1, ACK), merged(1, 1, 0), merged(2, 1, ACK)]
    );
}

/// FIN, as PSH, is merged and ends the packet (`tcp_gro_receive` lets FIN
/// differ, then flushes on it); the merged header carries it.
#[test]
fn fin_is_merged_and_ends_the_packet() {
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].flags = ACK | FIN;
    assert_eq!(run(&segs), [merged(0, 3, ACK | FIN), merged(3, 1, ACK)]);
}

#[test]
fn ttl_tos_and_df_must_match() {
    type Change = fn(&mut Seg);
    let changes: [(&str, Change); 3] = [
        ("ttl", |s| s.ttl = 63),
        ("tos", |s| s.tos = 0x10),
        ("df", |s| s.df = false),
    ];
    for (what, change) in changes {
        let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
        change(&mut segs[2]);
        change(&mut segs[3]);
        assert_eq!(run(&segs), [merged(0, 2, ACK), merged(2, 2, ACK)], "{what}");
    }
}

#[test]
fn ip_ids_must_be_consecutive_unless_df() {
    // Without DF: consecutive ids merge, a jump splits.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    for s in &mut segs {
        s.df = false;
    }
    assert_eq!(run(&segs), [merged(0, 4, ACK)]);
    segs[2].id = 200;
    segs[3].id = 201;
    assert_eq!(run(&segs), [merged(0, 2, ACK), merged(2, 2, ACK)]);
    // With DF the id does not matter (Linux sends 0 on connected sockets).
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    for (s, id) in segs.iter_mut().zip([0, 0, 9, 3]) {
        s.id = id;
    }
    assert_eq!(run(&segs), [merged(0, 4, ACK)]);
    // Ids that wrap are consecutive.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    for (s, id) in segs.iter_mut().zip([0xfffe, 0xffff, 0, 1]) {
        s.id = id;
        s.df = false;
    }
    assert_eq!(run(&segs), [merged(0, 4, ACK)]);
}

#[test]
fn psh_ends_a_merged_packet() {
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[1].flags = ACK | PSH;
    assert_eq!(run(&segs), [merged(0, 2, ACK | PSH), merged(2, 2, ACK)]);
    // On the last of four: one packet, PSH set.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[3].flags = ACK | PSH;
    assert_eq!(run(&segs), [merged(0, 4, ACK | PSH)]);
    // On the first: it goes up alone.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[0].flags = ACK | PSH;
    assert_eq!(run(&segs), [merged(0, 1, ACK | PSH), merged(1, 3, ACK)]);
}

#[test]
fn a_short_segment_ends_a_merged_packet() {
    // 1000, 1000, 400 | 1000, 1000.
    let mut segs: Vec<Seg> = (0..3).map(Seg::nth).collect();
    segs[2].len = 400;
    let mut next = Seg::nth(3);
    for i in 0..2 {
        next.seq = seq(2).wrapping_add(400 + (i * MSS) as u32);
        next.id = 103 + i as u16;
        segs.push(next.clone());
    }
    assert_eq!(
        run(&segs),
        [
            (seq(0), 2 * MSS + 400, ACK, MSS as u16, true),
            (segs[3].seq, 2 * MSS, ACK, MSS as u16, true),
        ]
    );
    // A segment longer than the first is not merged: 400 | 1000, 1000.
    let mut segs: Vec<Seg> = (0..3).map(Seg::nth).collect();
    segs[0].len = 400;
    segs[1].seq = seq(0).wrapping_add(400);
    segs[2].seq = seq(1).wrapping_add(400);
    assert_eq!(
        run(&segs),
        [
            (seq(0), 400, ACK, 0, true),
            (segs[1].seq, 2 * MSS, ACK, MSS as u16, true),
        ]
    );
}

#[test]
fn a_bad_tcp_checksum_is_not_merged_and_tcp_drops_it() {
    let cfg = NicConfig {
        rx_csum_offload: false,
        ..NicConfig::default()
    };
    let (mut s, nic, tap) = host(cfg);
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].bad_tcp_csum = true;
    let pkts = receive(&mut s, nic, tap, &segs);
    assert_eq!(
        summaries(&pkts),
        [
            merged(0, 2, ACK),
            (seq(2), MSS, ACK, 0, false),
            merged(3, 1, ACK)
        ]
    );
    assert_eq!(s.tcp_mib().in_segs, 3);
    assert_eq!(s.tcp_mib().in_csum_errors, 1);
    assert_eq!(s.drops().get(DropReason::TcpCsum), 1);
}

#[test]
fn frames_of_different_polls_are_not_merged() {
    let (mut s, nic, tap) = host(NicConfig::default());
    let segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    assert_eq!(
        summaries(&receive(&mut s, nic, tap, &segs[..2])),
        [merged(0, 2, ACK)]
    );
    assert_eq!(
        summaries(&receive(&mut s, nic, tap, &segs[2..])),
        [merged(2, 2, ACK)]
    );
    // One frame a poll: nothing to merge.
    let (mut s, nic, tap) = host(NicConfig::default());
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(
            summaries(&receive(&mut s, nic, tap, std::slice::from_ref(seg))),
            [merged(i, 1, ACK)]
        );
    }
}

#[test]
fn flows_are_merged_apart_and_kept_in_order() {
    let a: Vec<Seg> = (0..2).map(Seg::nth).collect();
    let b: Vec<Seg> = (0..3).map(|i| of_flow(1, i)).collect();
    let segs: Vec<Seg> = a.iter().chain(&b).cloned().collect();
    let (mut s, nic, tap) = host(NicConfig::default());
    let pkts = receive(&mut s, nic, tap, &segs);
    let ports: Vec<u16> = pkts.iter().map(sport).collect();
    assert_eq!(ports, [40000, 40001]);
    assert_eq!(summaries(&pkts), [merged(0, 2, ACK), merged(0, 3, ACK)]);
}

#[test]
fn a_merged_packet_stays_within_64k() {
    // 46 segments of 1448 bytes: 45 fit in 65535 bytes of IPv4 packet
    // (20 + 32 + 45 * 1448 = 65212), 46 would not.
    let segs: Vec<Seg> = (0..46)
        .map(|i| Seg {
            seq: ISS.wrapping_add(i * 1448),
            len: 1448,
            ..Seg::nth(i as usize)
        })
        .collect();
    let want = [
        (ISS, 45 * 1448, ACK, 1448, true),
        (ISS.wrapping_add(45 * 1448), 1448, ACK, 0, true),
    ];
    assert_eq!(run(&segs), want);
    // Also when the pool's buffers would have room for more.
    let big = SkbPool::new(PoolConfig {
        large_size: 256 * 1024,
        ..PoolConfig::default()
    });
    let (mut s, nic, tap) = host_with_pool(NicConfig::default(), big);
    assert_eq!(summaries(&receive(&mut s, nic, tap, &segs)), want);
}

#[test]
fn tiny_padded_segments_merge_without_their_padding() {
    // 4 bytes of payload, no options: 58-byte frames padded to 60.
    let segs: Vec<Seg> = (0..4)
        .map(|i| Seg {
            seq: ISS.wrapping_add(4 * i),
            len: 4,
            opts: Vec::new(),
            ..Seg::nth(i as usize)
        })
        .collect();
    let (mut s, nic, tap) = host(NicConfig::default());
    let pkts = receive(&mut s, nic, tap, &segs);
    assert_eq!(summaries(&pkts), [(ISS, 16, ACK, 4, true)]);
    assert_eq!(pkts[0].len(), 20 + 20 + 16);
    // Alone, a padded one goes up as it came (IP trims it).
    let pkts = receive(&mut s, nic, tap, &segs[..1]);
    assert_eq!(summaries(&pkts), [(ISS, 4, ACK, 0, true)]);
    assert_eq!(pkts[0].len(), 60 - 14);
}

#[test]
fn what_gro_does_not_take_goes_up_after_what_it_holds() {
    // A pure ACK (no payload) between data segments.
    let mut segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    segs[2].len = 0;
    assert_eq!(
        run(&segs),
        [
            merged(0, 2, ACK),
            (seq(2), 0, ACK, 0, true),
            merged(3, 1, ACK)
        ]
    );
    // A frame of another protocol between them.
    let (mut s, nic, tap) = host(NicConfig::default());
    let segs: Vec<Seg> = (0..4).map(Seg::nth).collect();
    let now = s.now() + Duration::from_millis(1);
    let mut other = Vec::new();
    other.extend_from_slice(NIC_MAC.as_bytes());
    other.extend_from_slice(PEER_MAC.as_bytes());
    other.extend_from_slice(&0x88b5u16.to_be_bytes());
    other.extend_from_slice(&[0x5a; 50]);
    other.extend_from_slice(&[0; 4]);
    fcs::append(&mut other, 64).unwrap();
    for (i, seg) in segs.iter().enumerate() {
        if i == 2 {
            s.nic_receive_bytes(now, nic, &other).unwrap();
        }
        s.nic_receive_bytes(now, nic, &seg.frame()).unwrap();
    }
    s.poll(now);
    let pkts: Vec<Skb> = std::iter::from_fn(|| s.tap_recv(tap)).collect();
    let protos: Vec<u16> = pkts.iter().map(|p| p.meta.protocol).collect();
    // It is no flow GRO holds: it goes up at once, and the TCP flow goes
    // on merging (Linux's GRO_NORMAL).
    assert_eq!(protos, [0x88b5, 0x0800]);
    assert_eq!(pkts[0].data(), &[0x5a; 50]);
    assert_eq!(summary(&pkts[1]), merged(0, 4, ACK));
}

/// Two flows whose segments alternate are merged apart (GRO holds up to
/// eight flows), each in its own order.
#[test]
fn interleaved_flows_are_each_merged() {
    let a: Vec<Seg> = (0..3).map(Seg::nth).collect();
    let b: Vec<Seg> = (0..3).map(|i| of_flow(1, i)).collect();
    let segs: Vec<Seg> = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| [x.clone(), y.clone()])
        .collect();
    let (mut s, nic, tap) = host(NicConfig::default());
    let pkts = receive(&mut s, nic, tap, &segs);
    let ports: Vec<u16> = pkts.iter().map(sport).collect();
    assert_eq!(ports, [40000, 40001]);
    assert_eq!(summaries(&pkts), [merged(0, 3, ACK), merged(0, 3, ACK)]);
}

/// A ninth flow sends the oldest held one up first (`MAX_GRO_SKBS`).
#[test]
fn a_ninth_flow_flushes_the_oldest() {
    // Two segments of each of nine flows, the ninth's after the first
    // round; the first flow's second segment comes last.
    let mut segs: Vec<Seg> = (0..9).map(|f| of_flow(f, 0)).collect();
    segs.extend((1..9).map(|f| of_flow(f, 1)));
    segs.push(of_flow(0, 1));
    let (mut s, nic, tap) = host(NicConfig::default());
    let pkts = receive(&mut s, nic, tap, &segs);
    let got: Vec<(u16, usize)> = pkts.iter().map(|p| (sport(p), summary(p).1)).collect();
    // Flow 0 went up alone when flow 8 arrived; its second segment came
    // too late to join it. The others merged two each.
    assert_eq!(got[0], (40000, 1000), "{got:?}");
    assert_eq!(got.len(), 10, "{got:?}");
    assert!(got[1..9].iter().all(|&(_, l)| l == 2000), "{got:?}");
    assert_eq!(got[9], (40000, 1000), "{got:?}");
}
