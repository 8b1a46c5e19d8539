//! TCP's timers and output rules on the wire: zero window and the persist
//! timer's probes, keepalive probes and their timeout, Nagle and
//! TCP_NODELAY, delayed ACK timing, path MTU discovery from ICMP
//! "fragmentation needed", and CUBIC's window growth after a loss.

mod tcpnet;

use netpath::sim::blocking::{stack, with_stack, Blocking};
use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::EthernetAddress;
use tcpnet::*;

fn link(ms: u64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(ms),
        ..LinkConfig::default()
    }
}

fn ms(t: Instant) -> u64 {
    t.as_nanos() / 1_000_000
}

#[test]
fn zero_window_persist_probes_then_the_transfer_resumes() {
    let mut n = Net::new(1, link(5));
    // A small receive buffer on B (SO_RCVBUF 16 KiB → 32 KiB).
    let l = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    n.with_b(|s, _| s.tcp_setsockopt(l, TcpOpt::RcvBuf(16384)))
        .unwrap();
    let c = n.ba.socket(&mut n.t.sim);
    n.ba.connect(&mut n.t.sim, c, ip(B), 80).unwrap();
    let (s, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let mut off = 0;
    while off < data.len() {
        match n.with_a(|st, now| st.tcp_send(now, c, &data[off..], SendFlags::default())) {
            Ok(k) => off += k,
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // B does not read: its window closes.
    n.run(Duration::from_secs(30));
    let segs = n.segments();
    let zero = segs
        .iter()
        .find(|w| !w.by_a() && w.win == 0)
        .expect("a zero window");
    // A probes with snd_una - 1 and no data; B answers each with its
    // (still zero) window. The probe interval backs off.
    let probes: Vec<u64> = segs
        .iter()
        .filter(|w| w.by_a() && w.len == 0 && w.seq == zero.ack.wrapping_sub(1))
        .map(|w| ms(w.t))
        .collect();
    assert!(probes.len() >= 5, "{probes:?}");
    let gaps: Vec<u64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    for w in gaps.windows(2) {
        assert!(w[1] >= w[0] * 2 - 2, "persist backoff {gaps:?}");
    }
    assert!(n.sa().tcp_ext_mib().tcp_win_probe >= probes.len() as u64);
    assert!(n.sb().tcp_ext_mib().tcp_to_zero_window_adv >= 1);
    // Answered probes do not count towards giving up (RFC 1122 4.2.2.17),
    // but the probe timer backs off.
    assert_eq!(n.sa().tcp_info(c).unwrap().probes, 0);
    assert!(n.sa().tcp_info(c).unwrap().backoff > 0);
    // B reads: a window update, and everything arrives.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    while got.len() < off {
        let k = n.bb.read(&mut n.t.sim, s, &mut buf).unwrap();
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(&got[..], &data[..off]);
    assert!(n.sb().tcp_ext_mib().tcp_from_zero_window_adv >= 1);
}

#[test]
fn keepalive_probes_and_their_timeout() {
    let mut n = Net::new(2, link(5));
    let (nic, mac) = (n.a.nics[0], EthernetAddress([2, 0, 0, 0, 2, 0]));
    n.with_a(|s, _| s.neigh_add_static(nic, ip(B), mac))
        .unwrap();
    let (c, _s, _) = n.connected(80);
    for o in [
        TcpOpt::KeepAlive(true),
        TcpOpt::KeepIdle(10),
        TcpOpt::KeepIntvl(2),
        TcpOpt::KeepCnt(3),
    ] {
        n.with_a(|st, _| st.tcp_setsockopt(c, o.clone())).unwrap();
    }
    let t0 = ms(n.now());
    // Idle: a probe 10 s after the last segment A received, answered; the
    // next one 10 s after that answer.
    let last_rx = n
        .segments()
        .iter()
        .filter(|w| !w.by_a())
        .map(|w| ms(w.t))
        .max()
        .unwrap();
    n.run(Duration::from_secs(25));
    let probes = |n: &Net| -> Vec<u64> {
        n.segments()
            .iter()
            .filter(|w| w.by_a() && w.len == 0 && w.is_ack() && !w.syn() && !w.rst())
            .filter(|w| ms(w.t) > t0)
            .map(|w| ms(w.t))
            .collect()
    };
    let p = probes(&n);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0] - last_rx, 10_000);
    // The answer arrives one RTT (10 ms) later; the idle time restarts.
    assert_eq!(p[1] - p[0], 10_010);
    let answers: Vec<_> = n
        .segments()
        .into_iter()
        .filter(|w| !w.by_a() && ms(w.t) > t0)
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].ack, answers[1].ack);
    // Cut the cable: probes every 2 s (TCP_KEEPINTVL), three unanswered
    // (TCP_KEEPCNT), then a RST and ETIMEDOUT.
    n.cut_cable();
    n.run(Duration::from_secs(20));
    let p = probes(&n);
    assert_eq!(p.len(), 5, "{p:?}");
    assert_eq!(p[2] - (p[1] + 10), 10_000);
    assert_eq!(p[3] - p[2], 2000);
    assert_eq!(p[4] - p[3], 2000);
    let rst = n.segments().into_iter().find(|w| w.rst()).unwrap();
    assert_eq!(ms(rst.t) - p[4], 2000);
    let mut buf = [0u8; 1];
    assert_eq!(
        n.with_a(|st, now| st.tcp_recv(now, c, &mut buf)),
        Err(Errno::ETIMEDOUT)
    );
    assert_eq!(n.sa().tcp_ext_mib().tcp_keep_alive, 5);
}

/// Data segments from A after the handshake: (time ms, length).
fn data_from_a(n: &Net) -> Vec<(u64, usize)> {
    n.segments()
        .iter()
        .filter(|w| w.by_a() && w.len > 0)
        .map(|w| (ms(w.t), w.len))
        .collect()
}

#[test]
fn nagle_holds_small_writes_until_the_ack_and_nodelay_does_not() {
    for nodelay in [false, true] {
        let mut n = Net::new(3, link(5));
        let (c, _s, _) = n.connected(80);
        if nodelay {
            n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::NoDelay(true)))
                .unwrap();
        }
        n.run_ms(50);
        for _ in 0..6 {
            n.with_a(|st, now| st.tcp_send(now, c, &[7u8; 100], SendFlags::default()))
                .unwrap();
        }
        n.run_ms(50);
        let segs = data_from_a(&n);
        if nodelay {
            assert_eq!(segs.len(), 6, "{segs:?}");
            assert!(segs.iter().all(|&(t, l)| l == 100 && t == segs[0].0));
        } else {
            // The first goes at once; the other five wait for its ACK (one
            // RTT, 10 ms) and leave together.
            assert_eq!(segs.len(), 2, "{segs:?}");
            assert_eq!(segs[0].1, 100);
            assert_eq!(segs[1].1, 500);
            assert_eq!(segs[1].0 - segs[0].0, 10);
        }
    }
}

#[test]
fn cork_and_msg_more_hold_partial_segments() {
    let mut n = Net::new(4, link(5));
    let (c, _s, _) = n.connected(80);
    n.run_ms(50);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::Cork(true)))
        .unwrap();
    for _ in 0..3 {
        n.with_a(|st, now| st.tcp_send(now, c, &[1u8; 200], SendFlags::default()))
            .unwrap();
    }
    n.run_ms(50);
    assert!(data_from_a(&n).is_empty());
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::Cork(false)))
        .unwrap();
    n.run_ms(50);
    assert_eq!(
        data_from_a(&n).iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![600]
    );
    n.with_a(|st, now| {
        st.tcp_send(
            now,
            c,
            &[1u8; 300],
            SendFlags {
                more: true,
                ..SendFlags::default()
            },
        )
    })
    .unwrap();
    n.run_ms(50);
    assert_eq!(data_from_a(&n).len(), 1, "MSG_MORE holds a partial segment");
    n.with_a(|st, now| st.tcp_send(now, c, &[1u8; 300], SendFlags::default()))
        .unwrap();
    n.run_ms(50);
    assert_eq!(data_from_a(&n).last().unwrap().1, 600);
}

#[test]
fn delayed_ack_after_quickack_mode_waits_40_ms() {
    let mut n = Net::new(5, link(5));
    let (c, _s, _) = n.connected(80);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::NoDelay(true)))
        .unwrap();
    // One byte every 100 ms: the first ACKs are immediate (quick-ack mode,
    // up to 16), then each waits for the delayed-ACK timer (ato 40 ms).
    for _ in 0..24 {
        n.with_a(|st, now| st.tcp_send(now, c, b"x", SendFlags::default()))
            .unwrap();
        n.run_ms(100);
    }
    let segs = n.segments();
    let mut delays = Vec::new();
    for d in segs.iter().filter(|w| w.by_a() && w.len == 1) {
        let ack = segs
            .iter()
            .find(|w| !w.by_a() && w.ack == d.seq.wrapping_add(1))
            .unwrap();
        // Delay at B: arrival to ACK = (seen at A) - 2 × 5 ms.
        delays.push(ms(ack.t) - ms(d.t) - 10);
    }
    let immediate = delays.iter().take_while(|&&d| d == 0).count();
    assert!((1..=16).contains(&immediate), "{delays:?}");
    assert!(delays[immediate..].iter().all(|&d| d == 40), "{delays:?}");
    assert_eq!(n.sb().tcp_ext_mib().delayed_acks, (24 - immediate) as u64);
}

#[test]
fn pmtu_discovery_from_icmp_fragmentation_needed() {
    // A — R — C; R's far NIC has MTU 1400, the hosts 1500: C announces
    // MSS 1460, and A's full segments do not fit through R.
    let (mut t, a, r, c) = topo::Topo::routed(9, 1500);
    let far = r.nics[1];
    t.with(&r, |s, _| s.set_mtu(far, 1400)).unwrap();
    let (ba, bc) = (Blocking::new(a.node), Blocking::new(c.node));
    let l = bc.listen(&mut t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    // Room for the whole transfer: the reader starts after the writer.
    with_stack(&mut t.sim, c.node, |st, _| {
        st.tcp_setsockopt(l, TcpOpt::RcvBuf(212_992))
    })
    .unwrap();
    let s = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, s, ip("198.51.100.1"), 80).unwrap();
    let (srv, _) = bc.accept(&mut t.sim, l).unwrap();
    assert_eq!(stack(&t.sim, a.node).tcp_info(s).unwrap().snd_mss, 1448);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ba.write_all(&mut t.sim, s, &data).unwrap();
    ba.shutdown_write(&mut t.sim, s).unwrap();
    let mut got = Vec::new();
    bc.read_to_end(&mut t.sim, srv, &mut got).unwrap();
    assert!(got == data);
    // The router's ICMP lowered the path MTU; TCP's MSS follows:
    // 1400 - 20 - 20 - 12 (timestamps).
    let info = stack(&t.sim, a.node).tcp_info(s).unwrap();
    assert_eq!(info.pmtu, 1400);
    assert_eq!(info.snd_mss, 1348);
    assert!(stack(&t.sim, a.node).tcp_mib().retrans_segs > 0);
}

#[test]
fn cubic_window_follows_its_function_after_a_loss() {
    // 100 ms RTT, 1 Gbit/s: slow start until cwnd reaches 200, then the
    // cable drops the next frame (a data segment), once.
    let clean = LinkConfig {
        latency: Duration::from_millis(50),
        bandwidth_bps: Some(1_000_000_000),
        queue_limit: 100_000,
        ..LinkConfig::default()
    };
    let mut n = Net::new(6, clean);
    let link = n.t.links[0];
    let (c, s, _) = n.connected(80);
    let data = vec![0u8; 256 << 20];
    let mut samples: Vec<(u64, u32, u8, u32)> = Vec::new();
    let mut off = 0;
    let mut buf = vec![0u8; 1 << 16];
    let end = n.now() + Duration::from_secs(6);
    let mut next_sample = n.now();
    let mut dropped = false;
    while n.now() < end {
        if n.sa().tcp_poll(c).writable && off < data.len() {
            off += n
                .with_a(|st, now| st.tcp_send(now, c, &data[off..], SendFlags::default()))
                .unwrap_or(0);
        }
        if n.sb().tcp_poll(s).readable {
            while let Ok(k) = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
                if k == 0 {
                    break;
                }
            }
        }
        let i = n.sa().tcp_info(c).unwrap();
        if !dropped && i.snd_cwnd >= 200 {
            dropped = true;
            let lossy = LinkConfig { loss: 1.0, ..clean };
            n.t.sim.set_link_config(link, lossy).unwrap();
            while n.t.sim.link_stats(link).unwrap().lost == 0 {
                n.t.sim.step();
            }
            n.t.sim.set_link_config(link, clean).unwrap();
        }
        if n.now() >= next_sample {
            samples.push((ms(n.now()), i.snd_cwnd, i.ca_state, i.snd_ssthresh));
            next_sample = n.now() + Duration::from_millis(2);
        }
        if n.t.sim.step().is_none() {
            break;
        }
    }
    let lost = n.t.sim.link_stats(link).unwrap().lost;
    assert!((1..=4).contains(&lost), "{lost} frames lost");
    // One recovery. CUBIC set ssthresh = 0.7 Wmax (717/1024), and from the
    // end of recovery cwnd follows W(t) = 0.4 (t - K)^3 + Wmax with
    // K = cbrt((Wmax - cwnd0) / 0.4).
    let first = samples.iter().position(|x| x.2 >= 3).expect("a loss");
    let after = first + samples[first..].iter().position(|x| x.2 == 0).unwrap();
    assert!(
        samples[after..].iter().all(|x| x.2 == 0),
        "a single recovery"
    );
    let (t_epoch, cwnd0, _, ssthresh) = samples[after];
    let wmax = f64::from(ssthresh) * 1024.0 / 717.0;
    assert!(
        (f64::from(cwnd0) - f64::from(ssthresh)).abs() <= 1.0,
        "cwnd {cwnd0} = ssthresh {ssthresh}"
    );
    assert!(wmax >= 200.0);
    let k = ((wmax - f64::from(cwnd0)) / 0.4).cbrt();
    let mut checked = 0;
    for &(t, cwnd, _, _) in &samples[after..] {
        let dt = (t - t_epoch) as f64 / 1000.0;
        let want = 0.4 * (dt - k).powi(3) + wmax;
        let tol = want * 0.05 + 3.0;
        assert!(
            (f64::from(cwnd) - want).abs() <= tol,
            "t={dt:.3}s cwnd {cwnd} vs cubic {want:.1} (Wmax {wmax:.1}, K {k:.3})"
        );
        checked += 1;
    }
    assert!(checked > 400, "{checked} samples in the cubic epoch");
}

/// `tcp_cleanup_rbuf`: when the reader is slow the receive window
/// shrinks, so the input path delays the ACK every second segment would
/// get; the read that drains the queue sends it at once, not the 40 ms
/// delayed-ACK timer.
#[test]
fn read_acknowledges_at_once_what_the_shrinking_window_held_back() {
    let mut n = Net::new(6, link(5));
    // Segments arrive one by one (a NIC without GRO, which would merge the
    // burst into packets of more than one MSS, each ACKed at once).
    let nb = n.b.nics[0];
    n.with_b(|st, _| st.set_gro(nb, false)).unwrap();
    let (c, s, _) = n.connected(80);
    // Out of quick-ack mode first: a transfer with a prompt reader.
    let warm: Vec<u8> = vec![7; 300_000];
    assert_eq!(
        n.transfer(c, s, &warm, Duration::from_secs(10)).len(),
        warm.len()
    );
    n.run_ms(200);
    // 20 full segments while B's application does not read.
    let burst = vec![9u8; 20 * 1448];
    let queued = n
        .with_a(|st, now| st.tcp_send(now, c, &burst, SendFlags::default()))
        .unwrap();
    assert_eq!(queued, burst.len());
    n.run_ms(20);
    let end = n.sb().tcp_info(s).unwrap().bytes_received as u32;
    let acked_before = n
        .segments()
        .iter()
        .filter(|w| !w.by_a())
        .map(|w| w.ack)
        .max()
        .unwrap();
    let read_at = n.now();
    let mut buf = vec![0u8; 1 << 16];
    let got = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)).unwrap();
    assert_eq!(got, burst.len());
    n.run_ms(20);
    let segs = n.segments();
    let isn = segs.iter().find(|w| w.syn() && w.by_a()).unwrap().seq;
    let rcv_nxt = isn.wrapping_add(1).wrapping_add(end);
    // The ACKs B sent while nobody read left data unacknowledged …
    assert!(
        (acked_before.wrapping_sub(rcv_nxt) as i32) < 0,
        "all acked before the read"
    );
    // … and the read sent the ACK for all of it: seen at A one link delay later.
    let ack = segs
        .iter()
        .find(|w| !w.by_a() && w.ack == rcv_nxt)
        .expect("an ACK of everything");
    assert_eq!(
        ms(ack.t),
        ms(read_at) + 5,
        "ACK at {:?}, read at {read_at:?}",
        ack.t
    );
    assert_eq!(n.sb().tcp_ext_mib().delayed_acks, 0);
}

/// `tcp_v4_early_demux`: once a connection is established, its segments
/// take the input route the socket cached instead of a routing lookup
/// (`ip_route_input_noref`); a routing change invalidates the cached one
/// once, after which early demux resumes.
#[test]
fn early_demux_skips_the_route_lookup_until_routing_changes() {
    use netpath::ipv4::route::{Route, RouteType};
    let mut n = Net::new(12, link(1));
    let (c, s, _) = n.connected(80);
    let data: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
    assert_eq!(
        n.transfer(c, s, &data, Duration::from_secs(10)).len(),
        data.len()
    );
    let count = |n: &Net, p: &str| n.t.points(&n.b).iter().filter(|&&x| x == p).count();
    let (demux, lookups) = (
        count(&n, "tcp_v4_early_demux"),
        count(&n, "ip_route_input_noref"),
    );
    let segs = n.sb().tcp_mib().in_segs as usize;
    // All but the first segments of the connection (the handshake, and the
    // one that caches the route) skip the lookup.
    assert!(lookups <= 3, "{lookups} lookups for {segs} segments");
    assert_eq!(demux + lookups, segs, "{demux} + {lookups} != {segs}");
    // A new route (unrelated to this flow) changes the routing generation.
    n.with_b(|st, _| st.route_add(Route::special(RouteType::Blackhole, ip("203.0.113.0"), 24)))
        .unwrap();
    assert_eq!(
        n.transfer(c, s, &data, Duration::from_secs(10)).len(),
        data.len()
    );
    let (demux2, lookups2) = (
        count(&n, "tcp_v4_early_demux"),
        count(&n, "ip_route_input_noref"),
    );
    let segs2 = n.sb().tcp_mib().in_segs as usize;
    assert_eq!(lookups2, lookups + 1, "one lookup after the change");
    assert_eq!(demux2 + lookups2, segs2);
    // Turned off (net.ipv4.tcp_early_demux = 0): every segment is looked up.
    n.with_b(|st, _| st.tcp_settings_mut().set("net.ipv4.tcp_early_demux", "0"))
        .unwrap();
    assert_eq!(
        n.transfer(c, s, &data, Duration::from_secs(10)).len(),
        data.len()
    );
    let segs3 = n.sb().tcp_mib().in_segs as usize;
    assert_eq!(count(&n, "tcp_v4_early_demux"), demux2);
    assert_eq!(
        count(&n, "ip_route_input_noref"),
        lookups2 + (segs3 - segs2)
    );
}

/// A's route to C through the router, with metrics.
fn route_to_c(mtu: u32) -> netpath::ipv4::route::Route {
    let mut r =
        netpath::ipv4::route::Route::unicast(ip("198.51.100.0"), 24, Some(ip("192.0.2.254")), None);
    // Not locked: A sets DF, so a router drops what does not fit.
    r.mtu = Some(mtu);
    r
}

/// Writer on `a` and reader on `c` interleaved, as two applications;
/// returns what the reader got. Panics past 60 s of virtual time.
fn interleaved(
    t: &mut topo::Topo,
    a: &topo::Host,
    c: &topo::Host,
    (s, srv): (netpath::sock::SockId, netpath::sock::SockId),
    data: &[u8],
) -> Vec<u8> {
    let (mut off, mut got) = (0usize, Vec::new());
    let mut buf = vec![0u8; 1 << 16];
    let deadline = t.sim.now() + Duration::from_secs(60);
    while got.len() < data.len() {
        if off < data.len() {
            if let Ok(k) = with_stack(&mut t.sim, a.node, |st, now| {
                st.tcp_send(now, s, &data[off..], SendFlags::default())
            }) {
                off += k;
            }
        }
        while let Ok(k) = with_stack(&mut t.sim, c.node, |st, now| {
            st.tcp_recv(now, srv, &mut buf)
        }) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        t.sim.run_for(Duration::from_micros(500));
        assert!(t.sim.now() < deadline, "stuck at {} bytes", got.len());
    }
    got
}

/// A — R — C with R's far side at `far_mtu` and C at 1500, no ICMP
/// reaching A (a black hole for "fragmentation needed"), `probing`
/// (`tcp_mtu_probing`) and base MSS 512 on A, and `route_mtu` (if any) on
/// A's route to C; then a connection A → C:80. Returns the world, A, C and
/// the (client, server) sockets.
type Blackholed = (
    topo::Topo,
    topo::Host,
    topo::Host,
    (netpath::sock::SockId, netpath::sock::SockId),
);

fn blackholed(seed: u64, far_mtu: u32, probing: &str, route_mtu: Option<u32>) -> Blackholed {
    use netpath::netfilter::{Proto, Rule, Table, Target};
    let (mut t, a, _r, c) = topo::Topo::routed(seed, far_mtu);
    let cn = c.nics[0];
    t.with(&c, |s, _| s.set_mtu(cn, 1500)).unwrap();
    t.with(&a, |s, _| {
        let st = s.tcp_settings_mut();
        st.set("net.ipv4.tcp_mtu_probing", probing).unwrap();
        st.set("net.ipv4.tcp_base_mss", "512").unwrap();
        if let Some(m) = route_mtu {
            s.route_replace(route_to_c(m)).unwrap();
        }
        s.netfilter_mut()
            .append(
                Table::Filter,
                "INPUT",
                Rule::new().proto(Proto::Icmp).target(Target::Drop),
            )
            .unwrap();
    });
    let (ba, bc) = (Blocking::new(a.node), Blocking::new(c.node));
    let l = bc.listen(&mut t.sim, ip("0.0.0.0"), 80, 8).unwrap();
    let s = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, s, ip("198.51.100.1"), 80).unwrap();
    let (srv, _) = bc.accept(&mut t.sim, l).unwrap();
    (t, a, c, (s, srv))
}

/// Runs a 2 MB transfer A → C (A — R — C, R's far side at `far_mtu`, C at
/// 1500, no ICMP reaching A) that starts with A's route MTU at 1000
/// and has it raised to 1500 once established, as the packetdrill script
/// `mtu_probe/basic-v4` does; returns A's data segment sizes, A's TcpExt
/// and its final MSS.
fn probe_run(far_mtu: u32) -> (Vec<usize>, netpath::tcp::TcpExtMib, u32, u64) {
    let (mut t, a, c, (s, srv)) = blackholed(15, far_mtu, "2", Some(1000));
    assert_eq!(stack(&t.sim, a.node).tcp_info(s).unwrap().snd_mss, 948);
    t.with(&a, |st, _| st.route_replace(route_to_c(1500)))
        .unwrap();
    let tap = t.with(&a, |st, _| {
        st.add_tap(netpath::dev::taps::Tap::all(
            Some(a.nics[0]),
            netpath::dev::taps::TapSink::queue(100_000),
        ))
    });
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    assert!(interleaved(&mut t, &a, &c, (s, srv), &data) == data);
    let out: Vec<usize> = t.with(&a, |st, _| {
        std::iter::from_fn(|| st.tap_recv(tap))
            .filter(|f| f.meta.pkt_type == netpath::skb::PacketType::Outgoing)
            .flat_map(|f| {
                let d = f.data();
                // Ethernet + IPv4 + TCP (with timestamps): payload bytes;
                // a GSO skb (the NIC does TSO: its tap sees them whole, as
                // tcpdump does) stands for segments of `gso_size`.
                let len = (d.len() > 14 + 20 + 32 && d[23] == 6).then(|| {
                    let tot = u16::from_be_bytes([d[16], d[17]]) as usize;
                    let thl = usize::from(d[14 + 20 + 12] >> 4) * 4;
                    tot - 20 - thl
                });
                let mss = usize::from(f.meta.gso_size);
                let mut segs = Vec::new();
                let mut left = len.unwrap_or(0);
                while left > 0 {
                    let l = if mss == 0 { left } else { left.min(mss) };
                    segs.push(l);
                    left -= l;
                }
                segs
            })
            .collect()
    });
    let st = stack(&t.sim, a.node);
    (
        out,
        *st.tcp_ext_mib(),
        st.tcp_info(s).unwrap().snd_mss,
        st.tcp_mib().retrans_segs,
    )
}

/// Packetization-layer PMTU discovery (`tcp_mtu_probing` = 2): the route's
/// MTU goes up from 1000 to 1500 during a connection; probes climb the
/// search range from the base MSS, each acknowledged one raising the MSS,
/// to within `tcp_probe_threshold` of the path's 1500.
#[test]
fn mtu_probes_climb_to_the_path_mtu() {
    let (sizes, ext, mss, retrans) = probe_run(1500);
    // At first the MSS of the 1000-byte route (the initial window: a probe
    // needs a cwnd of 11); then the first probe, half-way between the base
    // MSS's MTU (564) and 1500: 1032 - 52 = 980 bytes; then, the route
    // looked up again, the base MSS until the probe is acknowledged.
    assert!(sizes[..10].iter().all(|&l| l == 948), "{:?}", &sizes[..12]);
    assert_eq!(sizes[10], 980, "{:?}", &sizes[..12]);
    assert_eq!(sizes[11], 512, "{:?}", &sizes[..12]);
    assert!(ext.tcp_mtup_success >= 3, "{ext:?}");
    assert_eq!(ext.tcp_mtup_fail, 0);
    assert!((1440..=1448).contains(&mss), "mss {mss}");
    assert_eq!(retrans, 0);
}

/// The same with the path's MTU 1200 behind the router and no ICMP
/// reaching the sender: probes above it vanish, each loss lowers the top
/// of the search (`TCPMTUPFail`), the lost data goes again at the MSS that
/// works, and the MSS settles below 1200 - 52.
#[test]
fn silently_lost_mtu_probes_lower_the_search_and_the_data_gets_through() {
    let (sizes, ext, mss, _) = probe_run(1200);
    assert!(ext.tcp_mtup_fail >= 1, "{ext:?}");
    assert!(ext.tcp_mtup_success >= 1, "{ext:?}");
    assert!((1100..=1148).contains(&mss), "mss {mss}");
    // Only probes were ever larger than what the path carries.
    let too_big = sizes.iter().filter(|&&l| l > 1148).count() as u64;
    assert!(too_big <= ext.tcp_mtup_fail, "{too_big} oversized segments");
}

/// Black-hole detection (`tcp_mtu_probing` = 1): full-sized segments die
/// behind a smaller link and no ICMP says so; after `tcp_retries1` RTOs the
/// sender starts probing from the base MSS, and the transfer completes.
#[test]
fn a_path_mtu_black_hole_is_detected_by_the_retransmission_timer() {
    let (mut t, a, c, (s, srv)) = blackholed(16, 1200, "1", None);
    assert_eq!(stack(&t.sim, a.node).tcp_info(s).unwrap().snd_mss, 1448);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    assert!(interleaved(&mut t, &a, &c, (s, srv), &data) == data);
    let st = stack(&t.sim, a.node);
    assert!(st.tcp_ext_mib().tcp_timeouts >= 3, "{:?}", st.tcp_ext_mib());
    let mss = st.tcp_info(s).unwrap().snd_mss;
    assert!(mss <= 1148, "mss {mss}");
    assert!(t.points(&a).contains(&"tcp_mtu_probing"));
}
