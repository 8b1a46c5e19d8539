//! GSO, TSO and GRO end to end, as Linux does them: TCP sends a run of
//! full-sized segments down the stack as one skb; it is cut into frames by
//! `skb_gso_segment` before the driver, or by a TSO NIC; the receiving NIC's
//! GRO merges what arrives together before IP sees it. None of it may show
//! on the wire or to the application: the frames are the ones the stack
//! would have sent one by one, and the bytes arrive intact. And the
//! simulator's shortcut — a TSO burst crossing a link that nothing
//! watches whole, taken whole by a receiving NIC whose GRO would merge it
//! — must count every frame as if it had been built.

#[path = "topo/mod.rs"]
mod topo;

use netpath::capture::Capture;
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapSink};
use netpath::ipv4::route::Route;
use netpath::sched::tbf::Tbf;
use netpath::sim::blocking::Blocking;
use netpath::sim::{LinkConfig, LinkStats, PortId};
use netpath::skb::Skb;
use netpath::sock::SockId;
use netpath::tcp::{SendFlags, TcpExtMib, TcpMib};
use netpath::time::Duration;
use netpath_wire::pcap::PcapReader;
use topo::{ip, Host, Shared, Topo};

/// How one transfer is set up.
#[derive(Clone, Copy)]
struct Setup {
    a: NicConfig,
    b: NicConfig,
    /// GSO on A's NIC (`ethtool -K gso`).
    gso: bool,
    /// A pcap capture on A's end of the link (the frames must then exist).
    capture: bool,
}

/// What one transfer left behind.
struct Outcome {
    /// Frames on the wire (A's end), when captured: (time stamp, bytes).
    wire: Vec<(u64, Vec<u8>)>,
    got: Vec<u8>,
    mib: [TcpMib; 2],
    ext: [TcpExtMib; 2],
    /// (segs_in, data_segs_in) of B's socket.
    b_segs_in: (u64, u64),
    /// (A's NIC tx_packets, B's NIC rx_packets, B's NIC tx_packets).
    nic: (u64, u64, u64),
    /// (A's NIC tx_bytes, B's NIC rx_bytes).
    nic_bytes: (u64, u64),
    link: LinkStats,
    events: u64,
    /// What B's NIC tap saw coming in.
    b_in: Vec<Skb>,
}

const BYTES: usize = 400_000;

fn data() -> Vec<u8> {
    (0..BYTES as u32).map(|i| (i * 13 + 5) as u8).collect()
}

fn run(s: Setup) -> Outcome {
    let mut t = Topo::new(11);
    let a = t.host_with(&["192.0.2.1/24"], s.a);
    let b = t.host_with(&["192.0.2.2/24"], s.b);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let link = *t.links.last().unwrap();
    let pcap = Shared::default();
    if s.capture {
        t.sim
            .capture(
                link,
                (a.node, PortId(0)),
                Capture::pcap(pcap.clone()).unwrap(),
            )
            .unwrap();
    }
    let (na, nb) = (a.nics[0], b.nics[0]);
    t.with(&a, |st, _| st.set_gso(na, s.gso)).unwrap();
    let tap = t.with(&b, |st, _| {
        st.add_tap(Tap::all(Some(nb), TapSink::queue(100_000)))
    });
    let (c, srv) = connect(&mut t, &a, &b);
    let got = transfer(&mut t, (&a, c), (&b, srv));
    let info = t.stack(&b).tcp_info(srv).unwrap();
    let b_in = t.with(&b, |st, _| {
        std::iter::from_fn(|| st.tap_recv(tap)).collect()
    });
    let bytes = pcap.0.lock().unwrap().clone();
    let wire = if s.capture {
        PcapReader::new(&bytes[..])
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (
                    u64::from(r.ts_sec) << 32 | u64::from(r.ts_frac),
                    r.data.to_vec(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let (sa, sb) = (t.stack(&a), t.stack(&b));
    Outcome {
        wire,
        got,
        mib: [*sa.tcp_mib(), *sb.tcp_mib()],
        ext: [*sa.tcp_ext_mib(), *sb.tcp_ext_mib()],
        b_segs_in: (u64::from(info.segs_in), u64::from(info.data_segs_in)),
        nic: (
            sa.dev(na).unwrap().stats().tx_packets,
            sb.dev(nb).unwrap().stats().rx_packets,
            sb.dev(nb).unwrap().stats().tx_packets,
        ),
        nic_bytes: (
            sa.dev(na).unwrap().stats().tx_bytes,
            sb.dev(nb).unwrap().stats().rx_bytes,
        ),
        link: t.sim.link_stats(link).unwrap(),
        events: t.sim.events_run(),
        b_in,
    }
}

/// The application on A writes `data()` as the socket takes it and B's
/// reads what came, every 50 µs of virtual time, for at most 10 s.
fn transfer(t: &mut Topo, (a, c): (&Host, SockId), (b, srv): (&Host, SockId)) -> Vec<u8> {
    let d = data();
    let (mut sent, mut got, mut buf) = (0, Vec::new(), vec![0u8; 1 << 16]);
    for _ in 0..200_000 {
        while sent < d.len() {
            match t.with(a, |st, now| {
                st.tcp_send(now, c, &d[sent..], SendFlags::default())
            }) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
        t.sim.run_for(Duration::from_micros(50));
        while let Ok(n) = t.with(b, |st, now| st.tcp_recv(now, srv, &mut buf)) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == d.len() {
            break;
        }
    }
    got
}

/// A connection from A to B's port 80 (B at 192.0.2.2): (A's socket,
/// B's accepted socket).
fn connect(t: &mut Topo, a: &Host, b: &Host) -> (SockId, SockId) {
    let (ba, bb) = (Blocking::new(a.node), Blocking::new(b.node));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip("192.0.2.2"), 80).unwrap();
    let (srv, _) = bb.accept(&mut t.sim, l).unwrap();
    (c, srv)
}

/// `transfer`, which must deliver the data intact with nothing dropped
/// and nothing retransmitted on A.
fn transfer_cleanly(t: &mut Topo, a: (&Host, SockId), b: (&Host, SockId)) {
    let got = transfer(t, a, b);
    assert_eq!(got.len(), BYTES);
    assert_eq!(got, data());
    let sa = t.stack(a.0);
    let drops: Vec<_> = sa.drops().iter().filter(|d| d.1 != 0).collect();
    assert!(drops.is_empty(), "{drops:?}");
    assert_eq!(sa.tcp_mib().retrans_segs, 0);
}

fn no_gro() -> NicConfig {
    NicConfig {
        gro: false,
        ..NicConfig::default()
    }
}

fn no_tso() -> NicConfig {
    NicConfig {
        tso: false,
        ..NicConfig::default()
    }
}

/// Payload bytes of a TCP/IPv4 packet (0 for anything else), seen from
/// its network header (received) or its MAC header (sent).
fn tcp_payload_len(skb: &Skb) -> usize {
    let d = skb.data();
    let d = match skb.meta.protocol {
        0x0800 if d.first().is_some_and(|b| b >> 4 == 4) => d,
        0x0800 => &d[14..],
        _ => return 0,
    };
    if d.len() < 40 || d[9] != 6 {
        return 0;
    }
    let tot = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let ihl = usize::from(d[0] & 0x0f) * 4;
    tot - ihl - usize::from(d[ihl + 12] >> 4) * 4
}

/// The sender's frames are the same bytes at the same times whether TCP
/// hands the layers below one skb per segment or one per run of segments
/// (cut up before the driver, or by the TSO NIC, here made to build its
/// frames by the capture on the link).
#[test]
fn gso_and_tso_put_the_same_frames_on_the_wire_as_segment_by_segment() {
    let per_segment = run(Setup {
        a: no_tso(),
        b: no_gro(),
        gso: false,
        capture: true,
    });
    let gso = run(Setup {
        a: no_tso(),
        b: no_gro(),
        gso: true,
        capture: true,
    });
    let tso = run(Setup {
        a: NicConfig::default(),
        b: no_gro(),
        gso: true,
        capture: true,
    });
    for o in [&per_segment, &gso, &tso] {
        assert_eq!(o.got, data());
    }
    assert!(
        per_segment.wire.len() > BYTES / 1448,
        "{}",
        per_segment.wire.len()
    );
    assert_eq!(gso.wire.len(), per_segment.wire.len());
    for (i, (x, y)) in per_segment.wire.iter().zip(&gso.wire).enumerate() {
        assert_eq!(x, y, "frame {i} differs with GSO");
    }
    assert_eq!(tso.wire, per_segment.wire, "TSO frames differ");
    // TCP counts segments, not skbs: OutSegs is the same.
    assert_eq!(gso.mib[0].out_segs, per_segment.mib[0].out_segs);
    assert_eq!(tso.mib[0].out_segs, per_segment.mib[0].out_segs);
    // The NIC counts the frames it sent.
    assert_eq!(tso.nic.0, per_segment.nic.0);
    assert_eq!(tso.link.tx_frames, per_segment.link.tx_frames);
}

/// GRO: frames that arrive together reach IP as fewer, larger packets
/// (`gso_size` set, more than one MSS), TCP counts one InSegs per packet
/// and every segment in `segs_in`, and acknowledges per packet.
#[test]
fn gro_merges_what_arrives_together_and_tcp_counts_the_segments() {
    let frames = run(Setup {
        a: no_tso(),
        b: no_gro(),
        gso: true,
        capture: false,
    });
    let gro = run(Setup {
        a: no_tso(),
        b: NicConfig::default(),
        gso: true,
        capture: false,
    });
    assert_eq!(gro.got, data());
    let data_in = |o: &Outcome| -> Vec<(usize, u16)> {
        o.b_in
            .iter()
            .map(|s| (tcp_payload_len(s), s.meta.gso_size))
            .filter(|&(l, _)| l > 0)
            .collect()
    };
    let (per_frame, merged) = (data_in(&frames), data_in(&gro));
    assert!(
        per_frame.iter().all(|&(l, g)| l <= 1448 && g == 0),
        "{:?}",
        per_frame
            .iter()
            .filter(|p| p.0 > 1448 || p.1 != 0)
            .take(5)
            .collect::<Vec<_>>()
    );
    let big: Vec<_> = merged.iter().filter(|&&(l, _)| l > 1448).collect();
    assert!(!big.is_empty(), "nothing merged");
    assert!(
        big.iter().all(|&&(l, g)| g == 1448 && l <= 65535),
        "{big:?}"
    );
    assert!(
        merged.len() < per_frame.len() / 2,
        "{} vs {}",
        merged.len(),
        per_frame.len()
    );
    assert_eq!(
        merged.iter().map(|p| p.0).sum::<usize>(),
        per_frame.iter().map(|p| p.0).sum::<usize>()
    );
    // The NIC still counts frames; TCP counts packets in InSegs and
    // segments in segs_in (tcp_segs_in).
    assert_eq!(gro.nic.1, frames.nic.1);
    assert!(gro.mib[1].in_segs < frames.mib[1].in_segs);
    assert_eq!(gro.b_segs_in.1, frames.b_segs_in.1);
    assert!(gro.b_segs_in.0 > gro.mib[1].in_segs);
    // More than one MSS per packet: each gets its ACK at once, so fewer.
    assert!(gro.mib[1].out_segs < frames.mib[1].out_segs);
}

/// A TSO burst crossing a link nothing watches is carried whole, and the
/// receiving NIC, whose GRO would merge its frames, takes it whole. The
/// outcome is the one the frames would have had: the same data, every
/// frame counted by both NICs and the link; only the work is less.
#[test]
fn a_tso_burst_crosses_a_quiet_link_whole_and_every_frame_is_counted() {
    let whole = run(Setup {
        a: NicConfig::default(),
        b: NicConfig::default(),
        gso: true,
        capture: false,
    });
    let built = run(Setup {
        a: NicConfig::default(),
        b: NicConfig::default(),
        gso: true,
        capture: true,
    });
    assert_eq!(whole.got, data());
    assert_eq!(built.got, data());
    // Frames: sent (A's data, B's ACKs), carried, received.
    for o in [&whole, &built] {
        assert_eq!(o.link.tx_frames, o.nic.0 + o.nic.2);
        assert_eq!(o.link.delivered, o.link.tx_frames);
        assert_eq!(o.nic.1, o.nic.0);
    }
    // Frame bytes too: A's NIC counts the frames it would have built.
    assert_eq!(whole.nic_bytes.0, built.nic_bytes.0);
    assert_eq!(whole.nic_bytes.1, built.nic_bytes.1);
    assert_eq!(whole.nic_bytes.1, whole.nic_bytes.0);
    // The data frames are the same in number either way (both built from
    // the same segments), and TCP saw the same segments.
    assert_eq!(whole.mib[0].out_segs, built.mib[0].out_segs);
    assert_eq!(whole.b_segs_in.1, built.b_segs_in.1);
    assert_eq!(
        whole.ext[0].tcp_orig_data_sent,
        built.ext[0].tcp_orig_data_sent
    );
    assert_eq!(whole.mib[0].retrans_segs, 0);
    // Bursts were carried whole: far fewer simulator events.
    assert!(
        whole.events * 3 < built.events,
        "{} vs {} events",
        whole.events,
        built.events
    );
    // B's NIC handed up merged packets (napi_gro_complete).
    assert!(whole
        .b_in
        .iter()
        .any(|s| s.meta.gso_size == 1448 && tcp_payload_len(s) > 1448));
}

/// A token bucket smaller than a GSO packet: each GSO packet whose
/// segments fit the bucket is segmented and its segments queued
/// (`tbf_segment`), so TCP goes on at the shaped rate instead of having
/// every GSO packet refused.
#[test]
fn a_tbf_smaller_than_a_gso_packet_takes_its_segments() {
    let mut t = Topo::new(12);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let na = a.nics[0];
    // 10 Mbit/s, a 10,000-byte bucket, 100 kB of queue.
    let rate = 1_250_000;
    t.with(&a, |st, _| {
        st.set_qdisc(na, Box::new(Tbf::new(rate, 10_000, 100_000).unwrap()))
    })
    .unwrap();
    let (c, srv) = connect(&mut t, &a, &b);
    let start = t.sim.now();
    let got = transfer(&mut t, (&a, c), (&b, srv));
    assert_eq!(got, data());
    let took = t.sim.now().saturating_since(start).as_secs_f64();
    // The rate holds: no faster than the bucket allows (less its burst),
    // and not stalled either.
    let floor = (BYTES - 10_000) as f64 / rate as f64;
    assert!(took >= floor, "{took:.3} s for {BYTES} bytes at {rate} B/s");
    assert!(took < 2.0 * floor + 0.5, "{took:.3} s: stalled");
    let tx = t.stack(&a).dev(na).unwrap().stats().tx_packets;
    assert!(tx as usize > BYTES / 1448, "{tx} frames");
    // No GSO packet was refused whole (the queue had room for the rest).
    let drops: Vec<_> = t.stack(&a).drops().iter().filter(|d| d.1 != 0).collect();
    assert!(drops.is_empty(), "{drops:?}");
    // tc counts segments, not GSO packets (`qdisc_bstats_update`).
    let show = t.stack(&a).qdisc_show(na).unwrap();
    let pkts: usize = show
        .split(" pkt")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(pkts >= BYTES / 1448, "{show}");
}

/// TCP through an IP-in-IP tunnel: GSO packets routed into the tunnel are
/// segmented before they are encapsulated, and the data gets through.
#[test]
fn gso_packets_into_an_ipip_tunnel_are_segmented_first() {
    let mut t = Topo::new(13);
    let a = t.host(&["203.0.113.1/24"]);
    let b = t.host(&["203.0.113.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    for (h, local, remote, mine, peer) in [
        (&a, "203.0.113.1", "203.0.113.2", "192.0.2.1", "192.0.2.2"),
        (&b, "203.0.113.2", "203.0.113.1", "192.0.2.2", "192.0.2.1"),
    ] {
        t.with(h, |s, _| {
            let tun = s.add_ipip("tunl1", ip(local), ip(remote)).unwrap();
            s.set_up(tun, true).unwrap();
            s.ip_addr_add(tun, ip(mine), 32).unwrap();
            s.route_add(Route::unicast(ip(peer), 32, None, Some(tun)))
                .unwrap();
        });
    }
    let (c, srv) = connect(&mut t, &a, &b);
    transfer_cleanly(&mut t, (&a, c), (&b, srv));
}

/// TCP over a VLAN device (the tag written into the frame by the VLAN
/// device, as without tx VLAN offload): the GSO packets reach the NIC with
/// the tag in front of IPv4 and are still cut into correct frames.
#[test]
fn gso_packets_over_a_vlan_device_get_through() {
    let mut t = Topo::new(14);
    let a = t.host(&["198.51.100.1/24"]);
    let b = t.host(&["198.51.100.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    for (h, addr) in [(&a, "192.0.2.1"), (&b, "192.0.2.2")] {
        t.with(h, |s, _| {
            let v = s.add_vlan("eth0.7", h.nics[0], 7).unwrap();
            s.set_up(v, true).unwrap();
            s.ip_addr_add(v, ip(addr), 24).unwrap();
        });
    }
    let (c, srv) = connect(&mut t, &a, &b);
    transfer_cleanly(&mut t, (&a, c), (&b, srv));
}
