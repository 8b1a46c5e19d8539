//! Two SmolHosts on a simulated link: handshake, 1 MB transfer, close.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

use netpath::sim::{LinkConfig, LinkId, NodeId, Sim};
use netpath::time::{Duration, Instant};
use smoltcp::socket::tcp::State;
use smoltcp::wire::Ipv4Address;

use super::*;

const A_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
const B_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);

fn pair(seed: u64, link: LinkConfig) -> (Sim, NodeId, NodeId, LinkId) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
        [2, 0, 0, 0, 0, 1],
        A_IP,
        24,
    ))));
    let b = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
        [2, 0, 0, 0, 0, 2],
        B_IP,
        24,
    ))));
    let l = sim.add_link(link, &[(a, PORT), (b, PORT)]).unwrap();
    (sim, a, b, l)
}

/// Deterministic pseudo-random bytes (xorshift64).
fn payload(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

fn run_until(sim: &mut Sim, limit: Duration, mut done: impl FnMut(&mut Sim) -> bool) {
    let end = sim.now() + limit;
    while !done(sim) {
        assert!(sim.now() < end, "gave up at {:?}", sim.now());
        sim.run_for(Duration::from_millis(1));
    }
}

/// Connects a → b:80, sends `data`, closes both ways; returns what b read.
fn transfer(sim: &mut Sim, a: NodeId, b: NodeId, data: &[u8]) -> Vec<u8> {
    let server = with_smol(sim, b, |h| h.tcp_listen(80)).unwrap();
    let client = with_smol(sim, a, |h| h.tcp_connect(B_IP, 80, 0)).unwrap();
    run_until(sim, Duration::from_secs(30), |sim| {
        with_smol(sim, a, |h| h.state(client)) == State::Established
    });
    run_until(sim, Duration::from_secs(30), |sim| {
        with_smol(sim, b, |h| h.state(server)) == State::Established
    });

    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0; 64 * 1024];
    run_until(sim, Duration::from_secs(600), |sim| {
        if sent < data.len() {
            sent += with_smol(sim, a, |h| h.send(client, &data[sent..]));
            if sent == data.len() {
                with_smol(sim, a, |h| h.close(client));
            }
        }
        loop {
            let n = with_smol(sim, b, |h| h.recv(server, &mut buf));
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        // The client's FIN has arrived after all the data.
        with_smol(sim, b, |h| h.state(server)) == State::CloseWait
    });
    with_smol(sim, b, |h| h.close(server));
    run_until(sim, Duration::from_secs(30), |sim| {
        with_smol(sim, b, |h| h.state(server)) == State::Closed
            && matches!(
                with_smol(sim, a, |h| h.state(client)),
                State::TimeWait | State::Closed
            )
    });
    got
}

#[test]
fn handshake_and_one_megabyte() {
    let (mut sim, a, b, l) = pair(1, LinkConfig::default());
    let data = payload(1 << 20, 0x5eed);
    let got = transfer(&mut sim, a, b, &data);
    assert_eq!(got.len(), data.len());
    assert_eq!(hash(&got), hash(&data));
    let stats = sim.link_stats(l).unwrap();
    assert_eq!(stats.lost, 0);
    for n in [a, b] {
        let s = sim.node::<SmolHost>(n).unwrap().stats();
        assert_eq!((s.rx_fcs_errors, s.rx_dropped, s.tx_dropped), (0, 0, 0));
    }
    // Full-sized segments: 1514-byte frames + FCS cross the link.
    let a_stats = sim.node::<SmolHost>(a).unwrap().stats();
    assert!(a_stats.tx_frames >= (1 << 20) / 1460, "{a_stats:?}");
}

#[test]
fn one_megabyte_through_one_percent_loss() {
    let link = LinkConfig {
        loss: 0.01,
        latency: Duration::from_micros(100),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, l) = pair(7, link);
    let data = payload(1 << 20, 0xfeed);
    let got = transfer(&mut sim, a, b, &data);
    assert_eq!(got.len(), data.len());
    assert_eq!(hash(&got), hash(&data));
    let stats = sim.link_stats(l).unwrap();
    assert!(stats.lost > 0, "{stats:?}");
}

#[test]
fn corrupted_frames_are_dropped_by_fcs_and_repaired_by_tcp() {
    let link = LinkConfig {
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, _) = pair(3, link);
    let data = payload(256 * 1024, 0xc0de);
    let got = transfer(&mut sim, a, b, &data);
    assert_eq!(hash(&got), hash(&data));
    let errors: u64 = [a, b]
        .iter()
        .map(|&n| sim.node::<SmolHost>(n).unwrap().stats().rx_fcs_errors)
        .sum();
    assert!(errors > 0);
}

#[test]
fn frames_are_padded_and_carry_a_valid_fcs() {
    use netpath::capture::Capture;
    use netpath_wire::pcap::PcapReader;
    let (mut sim, a, _, l) = pair(1, LinkConfig::default());
    let cap = sim
        .capture(l, (a, PORT), Capture::pcap(Vec::new()).unwrap())
        .unwrap();
    let _ = with_smol(&mut sim, a, |h| h.tcp_connect(B_IP, 9, 0)).unwrap();
    sim.run_for(Duration::from_millis(5));
    let pcap = sim
        .take_capture(cap)
        .unwrap()
        .into_writer::<Vec<u8>>()
        .unwrap()
        .into_inner();
    let frames: Vec<Vec<u8>> = PcapReader::new(&pcap)
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .collect();
    // ARP request, ARP reply, SYN, RST (nothing listens on port 9).
    assert!(frames.len() >= 4, "{}", frames.len());
    for f in &frames {
        assert!(f.len() >= MIN_FRAME + FCS_LEN, "{}", f.len());
        assert!(fcs::check_fcs(f).is_ok());
    }
}

#[test]
fn deadlines_round_up_to_the_next_microsecond() {
    let now = Instant::from_nanos(1_500);
    assert_eq!(smol_instant(now), SmolInstant::from_micros(1));
    assert_eq!(
        sim_deadline(SmolInstant::from_micros(1), now),
        Instant::from_micros(2)
    );
    assert_eq!(
        sim_deadline(SmolInstant::from_micros(10), now),
        Instant::from_micros(10)
    );
}

#[test]
fn connect_picks_ephemeral_ports_and_gateway_route_is_set() {
    let mut cfg = SmolConfig::new([2, 0, 0, 0, 0, 9], Ipv4Address::new(198, 51, 100, 2), 24);
    cfg.gateway = Some(Ipv4Address::new(198, 51, 100, 1));
    let mut h = SmolHost::new(cfg);
    let s1 = h
        .tcp_connect(Ipv4Address::new(203, 0, 113, 5), 80, 0)
        .unwrap();
    let s2 = h
        .tcp_connect(Ipv4Address::new(203, 0, 113, 5), 80, 0)
        .unwrap();
    let p1 = h.socket(s1).local_endpoint().unwrap().port;
    let p2 = h.socket(s2).local_endpoint().unwrap().port;
    assert_eq!((p1, p2), (49152, 49153));
    assert_eq!(h.state(s1), State::SynSent);
    assert!(h.is_active(s1));
    h.abort(s2);
    assert!(!h.is_active(s2));
    assert!(h.tcp_listen(0).is_err());
}
