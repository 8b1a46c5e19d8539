//! Checksum offload, as Linux does it: TCP leaves every segment's checksum
//! partial (`CHECKSUM_PARTIAL`, the field holding the pseudo-header sum); a
//! NIC with `tx_csum_offload` fills it in (on a simulated wire, only when
//! something reads the bytes), one without has it computed in software
//! before the driver (`validate_xmit_skb`). A NIC with `rx_csum_offload`
//! hands a good checksum up as known good; without it TCP verifies.
//! What must hold either way: the bytes on the wire are right, the
//! receiver accepts them, taps show what Linux's tcpdump shows.

#[path = "topo/mod.rs"]
mod topo;

use netpath::capture::Capture;
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapSink};
use netpath::sim::blocking::Blocking;
use netpath::sim::{LinkConfig, PortId};
use netpath::skb::Skb;
use netpath_wire::checksum::Checksum;
use netpath_wire::ethernet::EthernetFrame;
use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::pcap::PcapReader;
use netpath_wire::tcp::TcpPacket;
use topo::{ip, Shared, Topo};

/// (is TCP with payload, checksum field, the right checksum) of a frame.
fn tcp_csum(frame: &[u8]) -> Option<(bool, u16, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ipp = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ipp.protocol().0 != 6 {
        return None;
    }
    let len = usize::from(ipp.total_len()) - ipp.header_len();
    let seg = &ipp.payload()[..len];
    let t = TcpPacket::new_checked(seg).ok()?;
    let mut c = Checksum::pseudo_header_v4(ipp.src_addr(), ipp.dst_addr(), 6, len as u16);
    let mut copy = seg.to_vec();
    copy[16..18].fill(0);
    c.add_bytes(&copy);
    Some((!t.payload().is_empty(), t.checksum(), c.finish()))
}

/// A transfer A → B with the NICs configured as given; returns (frames on
/// the wire as captured, A's outgoing tap, B's incoming tap, B's TCP
/// InCsumErrors, the bytes B read).
fn no_gro() -> NicConfig {
    NicConfig {
        gro: false,
        ..NicConfig::default()
    }
}

/// What one transfer left to look at.
type Outcome = (Vec<Vec<u8>>, Vec<Skb>, Vec<Skb>, u64, Vec<u8>);

fn run(tx: NicConfig, rx: NicConfig) -> Outcome {
    let mut t = Topo::new(3);
    let a = t.host_with(&["192.0.2.1/24"], tx);
    let b = t.host_with(&["192.0.2.2/24"], rx);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let pcap = Shared::default();
    let link = *t.links.last().unwrap();
    t.sim
        .capture(
            link,
            (a.node, PortId(0)),
            Capture::pcap(pcap.clone()).unwrap(),
        )
        .unwrap();
    let (na, nb) = (a.nics[0], b.nics[0]);
    let tap_a = t.with(&a, |s, _| {
        s.add_tap(Tap::all(Some(na), TapSink::queue(10_000)))
    });
    let tap_b = t.with(&b, |s, _| {
        s.add_tap(Tap::all(Some(nb), TapSink::queue(10_000)))
    });
    let (ba, bb) = (Blocking::new(a.node), Blocking::new(b.node));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip("192.0.2.2"), 80).unwrap();
    let (s, _) = bb.accept(&mut t.sim, l).unwrap();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 + 3) as u8).collect();
    ba.write_all(&mut t.sim, c, &data).unwrap();
    ba.shutdown_write(&mut t.sim, c).unwrap();
    let mut got = Vec::new();
    bb.read_to_end(&mut t.sim, s, &mut got).unwrap();
    let out: Vec<Skb> = t.with(&a, |s, _| {
        std::iter::from_fn(|| s.tap_recv(tap_a)).collect()
    });
    let inc: Vec<Skb> = t.with(&b, |s, _| {
        std::iter::from_fn(|| s.tap_recv(tap_b)).collect()
    });
    let bytes = pcap.0.lock().unwrap().clone();
    let wire: Vec<Vec<u8>> = PcapReader::new(&bytes[..])
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect();
    let errs = t.stack(&b).tcp_mib().in_csum_errors;
    (wire, out, inc, errs, got)
}

/// Only frames sent by A (the tap on A's NIC also sees B's ACKs come in),
/// as Ethernet frames: a packet received is seen from its network header
/// (its MAC header was pulled), so one is put back in front.
fn from_a(skbs: &[Skb]) -> Vec<Vec<u8>> {
    skbs.iter()
        .map(|s| {
            let d = s.data();
            if d.first().is_some_and(|b| b >> 4 == 4) {
                let mut f = vec![0u8; 12];
                f.extend_from_slice(&[0x08, 0x00]);
                f.extend_from_slice(d);
                f
            } else {
                d.to_vec()
            }
        })
        .filter(|f| f.len() > 29 && f[26..30] == [192, 0, 2, 1])
        .collect()
}

#[test]
fn offloaded_checksums_are_right_on_the_wire_and_partial_in_the_senders_tap() {
    // B's tap sees each frame: no GRO (which merges them, as Linux's
    // tcpdump shows; `tcp_gro.rs`).
    let (wire, out, inc, errs, got) = run(NicConfig::default(), no_gro());
    assert_eq!(got.len(), 50_000);
    assert_eq!(errs, 0);
    // Every TCP segment on the wire, both ways, has the right checksum.
    let segs: Vec<_> = wire.iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(
        segs.iter().filter(|s| s.0).count() >= 35,
        "{} segments",
        segs.len()
    );
    assert!(segs.iter().all(|&(_, have, want)| have == want));
    // A's outgoing tap shows what Linux's tcpdump shows with offload: the
    // pseudo-header sum, not the checksum.
    let a_out = from_a(&out);
    let data_out: Vec<_> = a_out
        .iter()
        .filter_map(|f| tcp_csum(f))
        .filter(|s| s.0)
        .collect();
    assert!(!data_out.is_empty());
    assert!(data_out.iter().all(|&(_, have, want)| have != want));
    // B's tap on its NIC shows the bytes the NIC received: finished.
    let b_in: Vec<_> = from_a(&inc).iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(b_in.iter().filter(|s| s.0).count() >= 35);
    assert!(b_in.iter().all(|&(_, have, want)| have == want));
}

#[test]
fn without_offload_the_stack_computes_and_verifies_in_software() {
    let no = NicConfig {
        tx_csum_offload: false,
        rx_csum_offload: false,
        ..NicConfig::default()
    };
    let (wire, out, inc, errs, got) = run(no, no);
    assert_eq!(got.len(), 50_000);
    assert_eq!(errs, 0);
    let segs: Vec<_> = wire.iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(segs.iter().filter(|s| s.0).count() >= 35);
    assert!(segs.iter().all(|&(_, have, want)| have == want));
    // validate_xmit_skb computed it before the taps.
    let a_out: Vec<_> = from_a(&out).iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(a_out.iter().filter(|s| s.0).count() >= 35);
    assert!(a_out.iter().all(|&(_, have, want)| have == want));
    let b_in: Vec<_> = from_a(&inc).iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(b_in.iter().all(|&(_, have, want)| have == want));
}

#[test]
fn a_sender_with_offload_and_a_receiver_without_interoperate() {
    let no_rx = NicConfig {
        rx_csum_offload: false,
        ..no_gro()
    };
    let (wire, _, inc, errs, got) = run(NicConfig::default(), no_rx);
    assert_eq!(got.len(), 50_000);
    assert_eq!(errs, 0);
    assert!(wire
        .iter()
        .filter_map(|f| tcp_csum(f))
        .all(|(_, have, want)| have == want));
    let b_in: Vec<_> = from_a(&inc).iter().filter_map(|f| tcp_csum(f)).collect();
    assert!(b_in.iter().filter(|s| s.0).count() >= 35);
    assert!(b_in.iter().all(|&(_, have, want)| have == want));
}
