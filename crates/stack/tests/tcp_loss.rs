//! Loss, reordering and duplication: a 100 MB transfer arrives intact over
//! an impaired link and SACK recovery retransmits little more than what
//! was lost (far less than without SACK); a black-holed path shows the RTO
//! backoff Linux uses and ends in ETIMEDOUT, for data, for the SYN and
//! under TCP_USER_TIMEOUT.

mod tcpnet;

use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::TcpOpt;
use netpath::time::Duration;
use tcpnet::*;

fn impaired() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(1),
        loss: 0.01,
        reorder: 0.01,
        reorder_delay: Duration::from_micros(300),
        duplicate: 0.005,
        // Long enough not to overflow: losses are the link's, not the queue's.
        queue_limit: 100_000,
        ..LinkConfig::default()
    }
}

/// FNV-1a, to compare streams by hash as well as byte for byte.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn hundred_megabytes_over_loss_reordering_and_duplication_arrive_intact() {
    let mut n = Net::new(100, impaired());
    let (c, s, _) = n.connected(80);
    let data = pattern(100 << 20);
    let got = n.transfer(c, s, &data, Duration::from_secs(300));
    assert_eq!(got.len(), data.len());
    assert_eq!(fnv(&got), fnv(&data));
    assert!(got == data);
    let link = n.t.sim.link_stats(n.t.links[0]).unwrap();
    let mib = *n.sa().tcp_mib();
    let ext = *n.sa().tcp_ext_mib();
    // Every loss was repaired; SACK retransmits about what was lost
    // (lost frames include B's ACKs, so this bound is generous).
    assert!(link.lost > 500, "{link:?}");
    assert!(mib.retrans_segs >= link.lost / 3, "{mib:?} {link:?}");
    assert!(mib.retrans_segs < link.lost * 2, "{mib:?} {link:?}");
    assert!(ext.tcp_sack_recovery > 100, "{ext:?}");
    // Reordering was recognised (RACK's window widens) and the receiver
    // reported duplicates with DSACK.
    assert!(ext.tcp_sack_reorder > 0);
    assert!(n.sb().tcp_ext_mib().tcp_dsack_old_sent > 0);
    assert!(n.sb().tcp_ext_mib().tcp_ofo_queue > 0);
}

#[test]
fn sack_recovery_retransmits_far_less_than_go_back_n_would() {
    let mut n = Net::new(
        7,
        LinkConfig {
            reorder: 0.0,
            duplicate: 0.0,
            loss: 0.02,
            ..impaired()
        },
    );
    let (c, s, _) = n.connected(80);
    let data = pattern(4 << 20);
    let got = n.transfer(c, s, &data, Duration::from_secs(600));
    assert!(got == data);
    let retrans = n.sa().tcp_mib().retrans_segs;
    // What go-back-N would have sent again: at each retransmission not
    // already covered, everything from the lost segment to the highest
    // sequence sent so far.
    let (mut highest, mut covered, mut gbn) = (0u32, 0u32, 0u64);
    let base = n.segments()[0].seq;
    for w in n.segments().iter().filter(|w| w.by_a() && w.len > 0) {
        let (rel, end) = (
            w.seq.wrapping_sub(base),
            w.seq.wrapping_sub(base) + w.len as u32,
        );
        if end <= highest {
            if rel >= covered {
                gbn += u64::from((highest - rel).div_ceil(1448));
                covered = highest;
            }
        } else {
            highest = end;
        }
    }
    assert!(retrans > 20, "{retrans}");
    assert!(
        retrans * 3 < gbn,
        "SACK resent {retrans} segments, go-back-N would {gbn}"
    );
}

/// The times A sent data segments with sequence number `seq`.
fn sends_of(n: &Net, seq: u32) -> Vec<u64> {
    n.segments()
        .iter()
        .filter(|w| w.by_a() && w.len > 0 && w.seq == seq)
        .map(|w| w.t.as_nanos() / 1_000_000)
        .collect()
}

#[test]
fn black_hole_rto_backoff_then_etimedout() {
    let mut n = Net::new(
        3,
        LinkConfig {
            latency: Duration::from_millis(5),
            ..LinkConfig::default()
        },
    );
    // Static neighbours: ARP would fail on the cut cable and stop the
    // retransmissions before TCP gives up.
    let (nic, mac) = (
        n.a.nics[0],
        netpath_wire::ethernet::EthernetAddress([2, 0, 0, 0, 2, 0]),
    );
    n.with_a(|s, _| s.neigh_add_static(nic, ip(B), mac))
        .unwrap();
    let (c, s, _) = n.connected(80);
    n.ba.write_all(&mut n.t.sim, c, b"first").unwrap();
    let mut buf = [0u8; 8];
    n.bb.read(&mut n.t.sim, s, &mut buf).unwrap();
    n.run_ms(50);
    let rto0 = u64::from(n.sa().tcp_info(c).unwrap().rto / 1000);
    // Cut the cable.
    n.cut_cable();
    let sent_at = n.now().as_nanos() / 1_000_000;
    n.ba.write_all(&mut n.t.sim, c, b"lost").unwrap();
    n.run_ms(1);
    let seq = n
        .segments()
        .iter()
        .rev()
        .find(|w| w.by_a() && w.len == 4)
        .unwrap()
        .seq;
    // Linux gives up after tcp_retries2 = 15: 924.6 s of backoff from
    // TCP_RTO_MIN, counted from the first transmission.
    n.run(Duration::from_secs(1000));
    let times = sends_of(&n, seq);
    assert_eq!(times[0], sent_at);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // First a tail loss probe, at the RTO (PTO = 2·srtt + 200 ms with one
    // segment out, capped by the RTO); then the RTO from there, doubling
    // each time up to TCP_RTO_MAX (120 s).
    assert!(rto0 >= 200, "rto {rto0} ms");
    assert!(gaps[0].abs_diff(rto0) <= 2, "{gaps:?} rto {rto0}");
    assert!(gaps[1].abs_diff(rto0) <= 2, "{gaps:?} rto {rto0}");
    for w in gaps[1..].windows(2) {
        let want = (w[0] * 2).min(120_000);
        assert!(w[1].abs_diff(want) <= 2, "backoff {gaps:?}");
    }
    assert_eq!(*gaps.last().unwrap(), 120_000);
    assert_eq!(n.sa().tcp_ext_mib().tcp_loss_probes, 1);
    // Aborted: ETIMEDOUT, and the connection is gone.
    let err = n.with_a(|st, now| st.tcp_recv(now, c, &mut buf));
    assert_eq!(err, Err(Errno::ETIMEDOUT));
    let ext = *n.sa().tcp_ext_mib();
    assert_eq!(ext.tcp_abort_on_timeout, 1);
    assert_eq!(ext.tcp_timeouts, gaps.len() as u64 - 1);
    let total = times.last().unwrap() - times[0];
    assert!(
        total < 924_600 && total + 120_000 > 924_600,
        "gave up after {total} ms"
    );
}

#[test]
fn syn_to_a_black_hole_retries_six_times_then_etimedout_at_127_s() {
    let mut n = Net::new(4, LinkConfig::default());
    n.cut_cable();
    // A static neighbour, so that the SYNs themselves reach the wire.
    let (nic, mac) = (
        n.a.nics[0],
        netpath_wire::ethernet::EthernetAddress([2, 0, 0, 0, 2, 0]),
    );
    n.with_a(|s, _| s.neigh_add_static(nic, ip(B), mac))
        .unwrap();
    let c = n.ba.socket(&mut n.t.sim);
    let t0 = n.now();
    let r = n.ba.connect(&mut n.t.sim, c, ip(B), 80);
    assert_eq!(r, Err(Errno::ETIMEDOUT));
    assert_eq!(n.now().saturating_since(t0).as_millis(), 127_000);
    let syns: Vec<u64> = n
        .segments()
        .iter()
        .filter(|w| w.syn())
        .map(|w| w.t.as_nanos() / 1_000_000)
        .collect();
    assert_eq!(syns, vec![0, 1000, 3000, 7000, 15_000, 31_000, 63_000]);
    assert_eq!(n.sa().tcp_mib().attempt_fails, 1);
}

#[test]
fn tcp_user_timeout_bounds_the_retransmissions() {
    let mut n = Net::new(5, LinkConfig::default());
    let (c, _s, _) = n.connected(80);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::UserTimeout(5000)))
        .unwrap();
    n.cut_cable();
    let t0 = n.now();
    n.ba.write_all(&mut n.t.sim, c, b"x").unwrap();
    let mut buf = [0u8; 1];
    let r = n.ba.read(&mut n.t.sim, c, &mut buf);
    assert_eq!(r, Err(Errno::ETIMEDOUT));
    let took = n.now().saturating_since(t0).as_millis();
    // The RTO that fires at or after 5 s notices the deadline.
    assert!((5000..9000).contains(&took), "{took} ms");
}

/// A tail loss is repaired by a loss probe (RFC 8985 TLP) two smoothed RTTs
/// after the last ACK, not by the RTO: the ACK for the segments that got
/// through re-arms the probe (`tcp_set_xmit_timer`), where re-arming only
/// the RTO would leave the tail to wait 200 ms and more.
#[test]
fn tail_loss_is_probed_after_the_last_ack_not_left_to_the_rto() {
    let link = LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let mut n = Net::new(4, link);
    let (c, s, _) = n.connected(80);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::NoDelay(true)))
        .unwrap();
    // Warm up: srtt ≈ 10 ms.
    let warm = pattern(200_000);
    assert_eq!(
        n.transfer(c, s, &warm, Duration::from_secs(10)).len(),
        warm.len()
    );
    n.run_ms(100);
    let srtt_ms = u64::from(n.sa().tcp_info(c).unwrap().rtt / 1000);
    assert!((9..=12).contains(&srtt_ms), "srtt {srtt_ms} ms");
    // Eight segments get through; the last two, sent at the same instant
    // on a cable cut for a moment, are lost.
    let t0 = n.now().as_nanos() / 1_000_000;
    let data = pattern(10 * 1448);
    // (The host runs, and puts frames on the cable, when the world runs.)
    n.with_a(|st, now| st.tcp_send(now, c, &data[..8 * 1448], Default::default()))
        .unwrap();
    n.run(Duration::ZERO);
    n.cut_cable();
    n.with_a(|st, now| st.tcp_send(now, c, &data[8 * 1448..], Default::default()))
        .unwrap();
    n.run(Duration::ZERO);
    n.t.sim.set_link_config(n.t.links[0], link).unwrap();
    let probes0 = n.sa().tcp_ext_mib().tcp_loss_probes;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    for _ in 0..400 {
        n.run_ms(1);
        while let Ok(k) = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
            if k == 0 {
                break;
            }
            got += k;
        }
    }
    assert_eq!(got, data.len());
    let burst: Vec<u32> = n
        .segments()
        .iter()
        .filter(|w| w.by_a() && w.len > 0 && w.t.as_nanos() / 1_000_000 == t0)
        .map(|w| w.seq)
        .collect();
    assert_eq!(burst.len(), 10, "the burst as sent");
    let last = burst[0].wrapping_add(9 * 1448);
    assert!(burst.contains(&last));
    let times = sends_of(&n, last);
    // Sent at t0; probed at t0 + 10 (the ACK) + 2·srtt + 2 ms.
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(times[0], t0);
    let want = t0 + 10 + 2 * srtt_ms + 2;
    assert!(
        times[1].abs_diff(want) <= 2,
        "probe at {} ms, want ≈{want}",
        times[1]
    );
    assert_eq!(n.sa().tcp_ext_mib().tcp_loss_probes, probes0 + 1);
    assert_eq!(n.sa().tcp_ext_mib().tcp_timeouts, 0);
}

/// A segment the sender's own qdisc drops was not sent: TCP is told
/// (`NET_XMIT_DROP` up through `ip_queue_xmit`), keeps it, reduces its
/// window (CWR) and sends it again later as new data, not as a
/// retransmission, where treating it as sent would make it a loss to
/// repair.
#[test]
fn local_qdisc_drops_are_not_losses() {
    use netpath::dev::nic::NicConfig;
    use netpath::drop::DropReason;
    use netpath::sched::pfifo::Pfifo;
    let mut t = Topo::new(8);
    let slow = NicConfig {
        speed_bps: Some(10_000_000),
        tx_ring: 4,
        ..NicConfig::default()
    };
    let a = t.host_with(&["192.0.2.1/24"], slow);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let nic = a.nics[0];
    t.with(&a, |s, _| s.set_qdisc(nic, Box::new(Pfifo::new(4))))
        .unwrap();
    let (ba, bb) = (
        netpath::sim::blocking::Blocking::new(a.node),
        netpath::sim::blocking::Blocking::new(b.node),
    );
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip(B), 80).unwrap();
    let (s, _) = bb.accept(&mut t.sim, l).unwrap();
    // Within B's receive buffer: the writer need not wait for the reader.
    let data = pattern(60_000);
    ba.write_all(&mut t.sim, c, &data).unwrap();
    ba.shutdown_write(&mut t.sim, c).unwrap();
    let mut got = Vec::new();
    bb.read_to_end(&mut t.sim, s, &mut got).unwrap();
    assert!(got == data);
    let st = t.stack(&a);
    assert!(
        st.drops().get(DropReason::QdiscDrop) > 0,
        "the qdisc never overflowed"
    );
    // Nothing was lost on the wire, so nothing needed retransmitting.
    assert_eq!(st.tcp_mib().retrans_segs, 0, "{:?}", st.tcp_ext_mib());
    assert_eq!(t.sim.link_stats(t.links[0]).unwrap().lost, 0);
}
