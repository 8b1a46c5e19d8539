//! The neighbour table and ARP on simulated hosts: resolution, the
//! unresolved queue, the hardware-header cache, the NUD state machine with
//! Linux's timings, static entries, garbage collection, answering requests,
//! gratuitous ARP, and bad ARP packets.

mod common;

use core::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapDirection, TapId, TapSink};
use netpath::dev::IfIndex;
use netpath::drop::DropReason;
use netpath::ipv4::output::IpSendOpts;
use netpath::neigh::{skb_truesize, NeighError, NudState};
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::skb::{Skb, SkbPool};
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::{fcs, EthernetAddress};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// On the subnet, but nobody has it.
const NOBODY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const PROTO_TEST: u8 = 253; // RFC 3692 experimental

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, n])
}

/// The IPv4 packet `seq` from `src` to `dst`: 20-byte header and 20 bytes of
/// payload, each `seq`, with headroom for the link layer.
fn ip_packet(pool: &SkbPool, src: Ipv4Addr, dst: Ipv4Addr, seq: u8) -> Skb {
    let mut v = vec![0u8; 40];
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol(PROTO_TEST),
        ttl: 64,
        tos: 0,
        ident: u16::from(seq),
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        payload_len: 20,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut v[..]))
    .unwrap();
    v[20..].fill(seq);
    let mut skb = pool.alloc_from(64, &v).unwrap();
    skb.reset_network_header();
    skb
}

/// A frame as it arrives from a wire: with its FCS.
fn wire(pool: &SkbPool, bytes: &[u8]) -> Skb {
    let mut v = bytes.to_vec();
    if v.len() < 60 {
        v.resize(60, 0);
    }
    let n = v.len();
    v.extend_from_slice(&[0; 4]);
    fcs::append(&mut v, n).unwrap();
    pool.alloc_from(0, &v).unwrap()
}

/// An Ethernet/IPv4 ARP frame.
#[allow(clippy::too_many_arguments)]
fn arp_frame(
    eth_dst: EthernetAddress,
    op: u16,
    sha: EthernetAddress,
    spa: Ipv4Addr,
    tha: EthernetAddress,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(eth_dst.as_bytes());
    f.extend_from_slice(sha.as_bytes());
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(sha.as_bytes());
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(tha.as_bytes());
    f.extend_from_slice(&tpa.octets());
    f
}

/// A frame seen on the wire, parsed just enough.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    at: Instant,
    bytes: Vec<u8>,
}

impl Seen {
    fn dst(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.bytes[0..6]).unwrap()
    }
    fn src(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.bytes[6..12]).unwrap()
    }
    fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.bytes[12], self.bytes[13]])
    }
    fn is_arp(&self) -> bool {
        self.ethertype() == 0x0806
    }
    fn arp_op(&self) -> u16 {
        u16::from_be_bytes([self.bytes[20], self.bytes[21]])
    }
    /// The `seq` of an [`ip_packet`].
    fn ip_seq(&self) -> u8 {
        self.bytes[14 + 20]
    }
}

/// Two hosts, "eth0" each: A 192.0.2.1/24 (02::01), B 192.0.2.2/24 (02::02),
/// on one link; each with a tap on what it receives and what it sends.
struct Net {
    sim: Sim,
    hosts: [NodeId; 2],
    nics: [IfIndex; 2],
    rx_taps: [TapId; 2],
    tx_taps: [TapId; 2],
}

fn pair() -> Net {
    let mut sim = Sim::new(11);
    let mut hosts = Vec::new();
    let mut nics = Vec::new();
    let mut rx_taps = Vec::new();
    let mut tx_taps = Vec::new();
    for (i, ip) in [A_IP, B_IP].into_iter().enumerate() {
        let mut stack = Stack::with_pool(sim.pool().clone());
        let nic = stack
            .add_nic("eth0", mac(i as u8 + 1), NicConfig::default())
            .unwrap();
        stack.set_up(nic, true).unwrap();
        stack.ip_addr_add(nic, ip, 24).unwrap();
        stack.tracer_mut().enable(4096);
        let mut rx = Tap::all(Some(nic), TapSink::queue(10_000));
        rx.direction = TapDirection::In;
        let mut tx = Tap::all(Some(nic), TapSink::queue(10_000));
        tx.direction = TapDirection::Out;
        rx_taps.push(stack.add_tap(rx));
        tx_taps.push(stack.add_tap(tx));
        let mut host = SimHost::new(stack);
        host.cable(PortId(0), nic);
        hosts.push(sim.add_node(Box::new(host)));
        nics.push(nic);
    }
    sim.add_link(
        LinkConfig::default(),
        &[(hosts[0], PortId(0)), (hosts[1], PortId(0))],
    )
    .unwrap();
    Net {
        sim,
        hosts: [hosts[0], hosts[1]],
        nics: [nics[0], nics[1]],
        rx_taps: [rx_taps[0], rx_taps[1]],
        tx_taps: [tx_taps[0], tx_taps[1]],
    }
}

impl Net {
    fn stack(&self, h: usize) -> &Stack {
        &self.sim.node::<SimHost>(self.hosts[h]).unwrap().stack
    }

    fn with<R>(&mut self, h: usize, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        self.sim
            .with_node(self.hosts[h], |host: &mut SimHost, now| {
                f(&mut host.stack, now)
            })
            .unwrap()
    }

    /// A sends IPv4 packet `seq` to `dst` through `neigh_xmit` towards
    /// next hop `dst`.
    fn a_sends(&mut self, dst: Ipv4Addr, seq: u8) {
        let dev = self.nics[0];
        self.with(0, |s, now| {
            let skb = ip_packet(s.pool(), A_IP, dst, seq);
            s.neigh_xmit(now, skb, dev, dst);
        });
    }

    fn drain(&mut self, h: usize, tap: TapId) -> Vec<Seen> {
        self.with(h, |s, _| {
            std::iter::from_fn(|| s.tap_recv(tap))
                .map(|k| Seen {
                    at: k.meta.tstamp().unwrap_or_default(),
                    bytes: k.mac_header_bytes().to_vec(),
                })
                .collect()
        })
    }

    /// What host `h` received since the last call.
    fn rx(&mut self, h: usize) -> Vec<Seen> {
        let t = self.rx_taps[h];
        self.drain(h, t)
    }

    /// What host `h` sent since the last call.
    fn tx(&mut self, h: usize) -> Vec<Seen> {
        let t = self.tx_taps[h];
        self.drain(h, t)
    }

    fn entry(&self, h: usize, ip: Ipv4Addr) -> Option<netpath::neigh::NeighInfo> {
        self.stack(h).neigh_lookup(self.nics[h], ip)
    }

    fn state(&self, h: usize, ip: Ipv4Addr) -> Option<NudState> {
        self.entry(h, ip).map(|e| e.state)
    }

    fn run_until(&mut self, t: Instant) {
        self.sim.run_until(t);
    }

    /// Resolves B from A (one packet, seq 0) and clears the taps.
    fn resolve_b(&mut self) {
        self.a_sends(B_IP, 0);
        self.run_until(self.sim.now() + Duration::from_millis(1));
        assert_eq!(self.state(0, B_IP), Some(NudState::Reachable));
        self.rx(0);
        self.rx(1);
        self.tx(0);
        self.tx(1);
    }

    /// When A last confirmed B.
    fn confirmed_at(&self, h: usize, ip: Ipv4Addr) -> Instant {
        let e = self.entry(h, ip).unwrap();
        let now = self.stack(h).now();
        Instant::from_nanos(now.as_nanos() - e.confirmed.as_nanos())
    }
}

fn at(base: Instant, d: Duration) -> Instant {
    base + d
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One nanosecond before `t`.
fn before(t: Instant) -> Instant {
    Instant::from_nanos(t.as_nanos() - 1)
}

#[test]
fn first_packet_sends_broadcast_request_and_waits_queued() {
    let mut net = pair();
    for seq in 1..=3 {
        net.a_sends(B_IP, seq);
    }
    // Before anything answers: one request, three packets waiting.
    let e = net.entry(0, B_IP).unwrap();
    assert_eq!(
        (e.state, e.queued, e.probes, e.mac),
        (NudState::Incomplete, 3, 4, None)
    );
    assert_eq!(e.to_string(), "192.0.2.2 dev eth0 INCOMPLETE");
    let sent = net.tx(0);
    assert_eq!(sent.len(), 1);
    let mut want = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(1),
        A_IP,
        EthernetAddress::ZERO,
        B_IP,
    );
    assert_eq!(sent[0].bytes, want);
    // On B's side the NIC padded it to the minimum frame.
    net.run_until(Instant::from_micros(1));
    let got = net.rx(1);
    assert_eq!(got.len(), 1);
    want.resize(60, 0);
    assert_eq!(got[0].bytes, want);
    let s = net.stack(0).neigh_stats();
    assert_eq!((s.allocs, s.lookups, s.hits), (1, 3, 2));
}

#[test]
fn reply_flushes_the_queue_in_order_with_the_learned_address() {
    let mut net = pair();
    for seq in 1..=3 {
        net.a_sends(B_IP, seq);
    }
    net.run_until(Instant::from_millis(1));
    // B answered with a unicast reply and learned A (STALE) from the request.
    // (B also answers each packet with protocol unreachable.)
    let b_sent: Vec<Seen> = net.tx(1).into_iter().filter(Seen::is_arp).collect();
    assert_eq!(b_sent.len(), 1);
    assert_eq!(
        b_sent[0].bytes,
        arp_frame(mac(1), 2, mac(2), B_IP, mac(1), A_IP)
    );
    // (Then B used it for its protocol unreachables: STALE → DELAY.)
    let a_on_b = net.entry(1, A_IP).unwrap();
    assert_eq!((a_on_b.state, a_on_b.mac), (NudState::Delay, Some(mac(1))));
    // A: REACHABLE, and the three waiting packets went out in order.
    let e = net.entry(0, B_IP).unwrap();
    assert_eq!(
        (e.state, e.mac, e.queued),
        (NudState::Reachable, Some(mac(2)), 0)
    );
    assert_eq!(
        e.to_string(),
        "192.0.2.2 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE"
    );
    let got: Vec<Seen> = net.rx(1).into_iter().filter(|f| !f.is_arp()).collect();
    assert_eq!(
        got.iter().map(Seen::ip_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for f in &got {
        assert_eq!((f.dst(), f.src(), f.ethertype()), (mac(2), mac(1), 0x0800));
    }
    assert_eq!(net.stack(0).drops().total(), 0);
}

#[test]
fn resolved_packets_use_the_cached_header_and_send_no_arp() {
    let mut net = pair();
    net.resolve_b();
    for seq in 10..20 {
        net.a_sends(B_IP, seq);
    }
    net.run_until(net.sim.now() + Duration::from_millis(1));
    let sent = net.tx(0);
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|f| !f.is_arp() && f.dst() == mac(2)));
    assert_eq!(
        sent.iter().map(Seen::ip_seq).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    let s = net.stack(0).neigh_stats();
    assert_eq!((s.allocs, s.lookups, s.hits), (1, 11, 10));
}

#[test]
fn resolved_path_allocates_nothing() {
    let mut net = pair();
    net.resolve_b();
    let dev = net.nics[0];
    net.with(0, |s, _| s.tracer_mut().disable());
    // Warm up, then count: the packets are built before counting.
    for round in 0..3 {
        let (_, allocs) = net.with(0, |s, now| {
            let pkts: Vec<Skb> = (0..20)
                .map(|i| ip_packet(s.pool(), A_IP, B_IP, i))
                .collect();
            common::counted(|| {
                for p in pkts {
                    s.neigh_xmit(now, p, dev, B_IP);
                }
            })
        });
        if round > 0 {
            assert_eq!(allocs, 0, "round {round}");
        }
        net.run_until(net.sim.now() + Duration::from_millis(1));
        net.tx(0);
        net.rx(1);
    }
}

#[test]
fn unresolved_queue_is_bounded_and_drops_the_oldest() {
    let mut net = pair();
    net.with(0, |s, _| {
        s.neigh_params_mut().unres_qlen_bytes = 3 * skb_truesize(40);
    });
    for seq in 1..=5 {
        net.a_sends(NOBODY, seq);
    }
    let e = net.entry(0, NOBODY).unwrap();
    assert_eq!((e.state, e.queued), (NudState::Incomplete, 3));
    let s = net.stack(0);
    assert_eq!(s.drops().get(DropReason::NeighQueuefull), 2);
    assert_eq!(s.neigh_stats().unresolved_discards, 2);
    // Only one request for all five packets.
    assert_eq!(net.tx(0).iter().filter(|f| f.is_arp()).count(), 1);
}

#[test]
fn incomplete_sends_mcast_probes_a_second_apart_then_fails_with_host_unreachable() {
    let mut net = pair();
    net.a_sends(NOBODY, 1);
    net.a_sends(NOBODY, 2);
    let t0 = net.sim.now();
    let sec = Duration::from_secs(1);
    let just_before = |n: u64| Instant::from_nanos(t0.as_nanos() + n * 1_000_000_000 - 1);
    let mut requests = Vec::new();
    for n in 1..=3 {
        net.run_until(just_before(n));
        requests.extend(net.tx(0));
        assert_eq!(requests.len() as u64, n, "requests before {n} s");
        assert_eq!(net.state(0, NOBODY), Some(NudState::Incomplete));
    }
    assert!(requests
        .iter()
        .all(|f| f.is_arp() && f.arp_op() == 1 && f.dst() == EthernetAddress::BROADCAST));
    // Sent exactly retrans_time apart.
    let times: Vec<Instant> = requests.iter().map(|f| f.at).collect();
    assert_eq!(times, vec![t0, at(t0, sec), at(t0, secs(2))]);
    assert_eq!(net.stack(0).drops().get(DropReason::NeighFailed), 0);
    net.run_until(at(t0, secs(3)));
    assert_eq!(net.state(0, NOBODY), Some(NudState::Failed));
    let s = net.stack(0);
    assert_eq!(s.drops().get(DropReason::NeighFailed), 2);
    assert_eq!(s.neigh_stats().res_failed, 1);
    // Each waiting packet was answered with host unreachable (to ourselves).
    let errs: Vec<_> = s
        .icmp_errors()
        .iter()
        .filter(|e| (e.icmp_type, e.code) == (3, 1) && e.orig_dst == NOBODY)
        .collect();
    assert_eq!(errs.len(), 2);
    assert_eq!(
        net.entry(0, NOBODY).unwrap().to_string(),
        "192.0.2.99 dev eth0 FAILED"
    );
    // No more requests once failed, and nothing left to do.
    net.run_until(at(t0, secs(10)));
    assert!(net.tx(0).is_empty());
}

#[test]
fn reachable_goes_stale_then_delay_probe_and_back_to_reachable() {
    let mut net = pair();
    net.resolve_b();
    let rt = net.stack(0).neigh_reachable_time();
    assert!(
        rt >= Duration::from_secs(15) && rt < Duration::from_secs(45),
        "{rt:?}"
    );
    let confirmed = net.confirmed_at(0, B_IP);
    net.run_until(Instant::from_nanos((confirmed + rt).as_nanos() - 1));
    assert_eq!(net.state(0, B_IP), Some(NudState::Reachable));
    net.run_until(confirmed + rt);
    assert_eq!(net.state(0, B_IP), Some(NudState::Stale));
    // Sending on a STALE entry: the packet goes at once, the entry waits.
    net.run_until(confirmed + rt + Duration::from_secs(2));
    // (Meanwhile A answered B's probes for A: B had used its entry.)
    let answered = net.tx(0);
    assert!(answered.iter().all(|f| f.is_arp() && f.arp_op() == 2));
    let t_send = net.sim.now();
    net.a_sends(B_IP, 42);
    assert_eq!(net.state(0, B_IP), Some(NudState::Delay));
    let sent = net.tx(0);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].ip_seq(), sent[0].dst()), (42, mac(2)));
    let delay = Duration::from_secs(5);
    net.run_until(Instant::from_nanos((t_send + delay).as_nanos() - 1));
    assert_eq!(net.state(0, B_IP), Some(NudState::Delay));
    assert!(net.tx(0).is_empty());
    // After delay_first_probe_time: PROBE, a unicast request to the old
    // address; B answers and the entry is REACHABLE again.
    net.run_until(t_send + delay);
    assert_eq!(net.state(0, B_IP), Some(NudState::Probe));
    let probe = net.tx(0);
    assert_eq!(probe.len(), 1);
    assert_eq!(
        probe[0].bytes,
        arp_frame(mac(2), 1, mac(1), A_IP, EthernetAddress::ZERO, B_IP)
    );
    net.run_until(t_send + delay + Duration::from_millis(1));
    assert_eq!(net.state(0, B_IP), Some(NudState::Reachable));
    // Confirmed when the reply arrived: one link latency there, one back.
    assert_eq!(
        net.confirmed_at(0, B_IP),
        t_send + delay + Duration::from_micros(2)
    );
}

#[test]
fn unanswered_probes_fail_then_new_packets_get_host_unreachable() {
    let mut net = pair();
    net.resolve_b();
    // B loses its address: it stops answering.
    let nic_b = net.nics[1];
    net.with(1, |s, _| s.ip_addr_del(nic_b, B_IP).unwrap());
    let rt = net.stack(0).neigh_reachable_time();
    let confirmed = net.confirmed_at(0, B_IP);
    net.run_until(confirmed + rt);
    assert_eq!(net.state(0, B_IP), Some(NudState::Stale));
    let t_send = net.sim.now();
    net.a_sends(B_IP, 1);
    net.tx(0);
    let sec = Duration::from_secs(1);
    let t_probe = t_send + secs(5);
    net.run_until(before(t_probe + secs(3)));
    assert_eq!(net.state(0, B_IP), Some(NudState::Probe));
    let probes = net.tx(0);
    assert_eq!(
        probes
            .iter()
            .map(|f| (f.at, f.dst(), f.arp_op()))
            .collect::<Vec<_>>(),
        vec![
            (t_probe, mac(2), 1),
            (t_probe + sec, mac(2), 1),
            (t_probe + secs(2), mac(2), 1)
        ]
    );
    net.run_until(t_probe + secs(3));
    assert_eq!(net.state(0, B_IP), Some(NudState::Failed));
    // Nothing waited while probing (PROBE sends with the old address).
    assert_eq!(net.stack(0).drops().get(DropReason::NeighFailed), 0);
    // A new packet restarts resolution: broadcasts, then host unreachable.
    let t_again = net.sim.now();
    net.a_sends(B_IP, 2);
    assert_eq!(net.state(0, B_IP), Some(NudState::Incomplete));
    net.run_until(t_again + secs(3));
    assert_eq!(net.state(0, B_IP), Some(NudState::Failed));
    let sent = net.tx(0);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|f| f.dst() == EthernetAddress::BROADCAST));
    let s = net.stack(0);
    assert_eq!(s.drops().get(DropReason::NeighFailed), 1);
    assert_eq!(s.neigh_stats().res_failed, 2);
    assert!(s
        .icmp_errors()
        .iter()
        .any(|e| (e.icmp_type, e.code, e.orig_dst) == (3, 1, B_IP)));
}

#[test]
fn static_entries_are_permanent_and_never_probed() {
    let mut net = pair();
    let dev = net.nics[0];
    let gw = Ipv4Addr::new(192, 0, 2, 50);
    net.with(0, |s, _| s.neigh_add_static(dev, gw, mac(0x32)).unwrap());
    assert_eq!(
        net.entry(0, gw).unwrap().to_string(),
        "192.0.2.50 dev eth0 lladdr 02:00:00:00:00:32 PERMANENT"
    );
    net.a_sends(gw, 7);
    let sent = net.tx(0);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].dst(), sent[0].ip_seq()), (mac(0x32), 7));
    // A reply claiming another address does not change it.
    let pool = net.sim.pool().clone();
    let bogus = arp_frame(mac(1), 2, mac(0x33), gw, mac(1), A_IP);
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &bogus));
    net.run_until(Instant::from_secs(3600));
    assert!(net.sim.is_idle());
    let e = net.entry(0, gw).unwrap();
    assert_eq!((e.state, e.mac), (NudState::Permanent, Some(mac(0x32))));
    assert!(net.tx(0).is_empty());
    // Errors, then delete.
    net.with(0, |s, _| {
        assert_eq!(
            s.neigh_add_static(dev, Ipv4Addr::BROADCAST, mac(3)),
            Err(NeighError::InvalidAddress(Ipv4Addr::BROADCAST))
        );
        assert_eq!(
            s.neigh_add_static(IfIndex(99), gw, mac(3)),
            Err(NeighError::NoSuchDevice(IfIndex(99)))
        );
        s.neigh_del(dev, gw).unwrap();
        assert_eq!(s.neigh_del(dev, gw), Err(NeighError::NoSuchEntry));
    });
    assert!(net.entry(0, gw).is_none());
}

#[test]
fn static_entry_sends_what_waited_for_resolution() {
    let mut net = pair();
    let dev = net.nics[0];
    net.a_sends(NOBODY, 1);
    net.a_sends(NOBODY, 2);
    net.tx(0);
    net.with(0, |s, _| {
        s.neigh_add_static(dev, NOBODY, mac(0x63)).unwrap()
    });
    let sent = net.tx(0);
    assert_eq!(
        sent.iter()
            .map(|f| (f.dst(), f.ip_seq()))
            .collect::<Vec<_>>(),
        vec![(mac(0x63), 1), (mac(0x63), 2)]
    );
}

#[test]
fn broadcast_multicast_and_loopback_need_no_arp() {
    let mut net = pair();
    let dev = net.nics[0];
    let group = Ipv4Addr::new(224, 0, 0, 251);
    let bcast = Ipv4Addr::new(192, 0, 2, 255);
    net.a_sends(group, 1);
    net.a_sends(bcast, 2);
    net.a_sends(Ipv4Addr::BROADCAST, 3);
    let sent = net.tx(0);
    assert_eq!(
        sent.iter()
            .map(|f| (f.dst(), f.ip_seq()))
            .collect::<Vec<_>>(),
        vec![
            (EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]), 1),
            (EthernetAddress::BROADCAST, 2),
            (EthernetAddress::BROADCAST, 3)
        ]
    );
    assert!(net.stack(0).neigh_show().is_empty());
    // The loopback device: a header of its own (zero) address, no entry.
    net.with(0, |s, now| {
        let lo = s.dev_by_name("lo").unwrap();
        let tap = s.add_tap(Tap::all(Some(lo), TapSink::queue(10)));
        let skb = ip_packet(s.pool(), A_IP, A_IP, 9);
        s.neigh_xmit(now, skb, lo, A_IP);
        let f = s.tap_recv(tap).unwrap();
        assert_eq!(
            &f.mac_header_bytes()[..14],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]
        );
        assert_eq!(s.neigh_show().len(), 0);
        let _ = dev;
    });
}

#[test]
fn requests_are_answered_for_local_addresses_only() {
    let mut net = pair();
    let pool = net.sim.pool().clone();
    let outsider = Ipv4Addr::new(192, 0, 2, 7);
    // For A's address: answered, the requester learned as STALE.
    let req = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(7),
        outsider,
        EthernetAddress::ZERO,
        A_IP,
    );
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &req));
    net.run_until(Instant::from_millis(1));
    let sent = net.tx(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].bytes,
        arp_frame(mac(7), 2, mac(1), A_IP, mac(7), outsider)
    );
    assert_eq!(net.state(0, outsider), Some(NudState::Stale));
    // For someone else's: ignored, nothing learned from a stranger.
    let req = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(8),
        Ipv4Addr::new(192, 0, 2, 8),
        EthernetAddress::ZERO,
        NOBODY,
    );
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &req));
    net.run_until(Instant::from_millis(2));
    assert!(net.tx(0).is_empty());
    assert_eq!(net.stack(0).neigh_show().len(), 1);
    // Duplicate address detection (sender 0.0.0.0): answered, not learned.
    let dad = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(9),
        Ipv4Addr::UNSPECIFIED,
        EthernetAddress::ZERO,
        A_IP,
    );
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &dad));
    net.run_until(Instant::from_millis(3));
    let sent = net.tx(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].bytes,
        arp_frame(mac(9), 2, mac(1), A_IP, mac(9), Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(net.stack(0).neigh_show().len(), 1);
}

#[test]
fn gratuitous_arp_updates_an_existing_entry_only() {
    let mut net = pair();
    net.resolve_b();
    let pool = net.sim.pool().clone();
    // B moves to a new MAC and announces it (within locktime: a gratuitous
    // ARP overrides anyway).
    let garp = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(0x22),
        B_IP,
        EthernetAddress::ZERO,
        B_IP,
    );
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &garp));
    net.run_until(net.sim.now() + Duration::from_millis(1));
    let e = net.entry(0, B_IP).unwrap();
    assert_eq!((e.state, e.mac), (NudState::Stale, Some(mac(0x22))));
    net.a_sends(B_IP, 5);
    let sent = net.tx(0);
    assert_eq!((sent[0].dst(), sent[0].ip_seq()), (mac(0x22), 5));
    // A gratuitous ARP from a host we do not know creates nothing...
    let other = Ipv4Addr::new(192, 0, 2, 77);
    let garp = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(77),
        other,
        EthernetAddress::ZERO,
        other,
    );
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &garp));
    net.run_until(net.sim.now() + Duration::from_millis(1));
    assert_eq!(net.state(0, other), None);
    // ...unless arp_accept is on.
    net.with(0, |s, _| s.neigh_params_mut().arp_accept = true);
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &garp));
    net.run_until(net.sim.now() + Duration::from_millis(1));
    let e = net.entry(0, other).unwrap();
    assert_eq!((e.state, e.mac), (NudState::Stale, Some(mac(77))));
    // And our own gratuitous ARP goes out as Linux sends it.
    let dev = net.nics[0];
    net.with(0, |s, now| s.arp_send_gratuitous(now, dev, A_IP).unwrap());
    let sent = net.tx(0);
    assert_eq!(
        sent[0].bytes,
        arp_frame(
            EthernetAddress::BROADCAST,
            1,
            mac(1),
            A_IP,
            EthernetAddress::ZERO,
            A_IP
        )
    );
    // B updates its (STALE, learned) entry for A from it.
    net.run_until(net.sim.now() + Duration::from_millis(1));
    assert_eq!(net.entry(1, A_IP).unwrap().mac, Some(mac(1)));
}

#[test]
fn a_different_reply_within_locktime_is_ignored() {
    let mut net = pair();
    net.resolve_b();
    let pool = net.sim.pool().clone();
    let rogue = arp_frame(mac(1), 2, mac(0x66), B_IP, mac(1), A_IP);
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &rogue));
    net.run_until(net.sim.now() + Duration::from_millis(1));
    assert_eq!(net.entry(0, B_IP).unwrap().mac, Some(mac(2)));
    // After locktime, a reply to us overrides (and confirms).
    net.run_until(net.sim.now() + Duration::from_secs(2));
    net.sim.inject(net.hosts[1], PortId(0), wire(&pool, &rogue));
    net.run_until(net.sim.now() + Duration::from_millis(1));
    let e = net.entry(0, B_IP).unwrap();
    assert_eq!((e.state, e.mac), (NudState::Reachable, Some(mac(0x66))));
}

#[test]
fn bad_arp_packets_are_dropped_with_a_reason() {
    let mut net = pair();
    let pool = net.sim.pool().clone();
    let mut long_hlen = arp_frame(
        EthernetAddress::BROADCAST,
        1,
        mac(7),
        B_IP,
        EthernetAddress::ZERO,
        A_IP,
    );
    long_hlen[18] = 200; // hlen: the addresses run past the frame
    let mut ipv6 = long_hlen.clone();
    ipv6[18] = 6;
    ipv6[16..18].copy_from_slice(&[0x86, 0xdd]);
    let mut op9 = ipv6.clone();
    op9[16..18].copy_from_slice(&[0x08, 0x00]);
    op9[21] = 9;
    for f in [&long_hlen, &ipv6, &op9] {
        net.sim.inject(net.hosts[1], PortId(0), wire(&pool, f));
    }
    net.run_until(Instant::from_millis(1));
    let s = net.stack(0);
    assert_eq!(s.drops().get(DropReason::PktTooSmall), 1);
    assert_eq!(s.drops().get(DropReason::NotSpecified), 2);
    assert!(s.neigh_show().is_empty());
    assert!(net.tx(0).is_empty());
}

#[test]
fn gc_thresh3_refuses_new_entries_and_gc_frees_failed_ones() {
    let mut net = pair();
    net.with(0, |s, _| {
        let p = s.neigh_params_mut();
        p.gc_thresh1 = 2;
        p.gc_thresh2 = 3;
        p.gc_thresh3 = 4;
    });
    let host = |n: u8| Ipv4Addr::new(192, 0, 2, 100 + n);
    for n in 0..4 {
        net.a_sends(host(n), n);
    }
    // All four resolving (their timers hold them): the fifth is refused.
    net.a_sends(host(4), 4);
    let s = net.stack(0);
    assert_eq!(s.neigh_show().len(), 4);
    assert_eq!(s.drops().get(DropReason::NeighCreatefail), 1);
    assert_eq!(s.neigh_stats().table_fulls, 1);
    assert!(s.neigh_stats().forced_gc_runs >= 1);
    // Three seconds on they have failed; a forced gc makes room (oldest
    // first, down to gc_thresh2).
    net.run_until(Instant::from_secs(3));
    assert!(net
        .stack(0)
        .neigh_show()
        .iter()
        .all(|e| e.state == NudState::Failed));
    net.a_sends(host(5), 5);
    let ips: Vec<Ipv4Addr> = net.stack(0).neigh_show().iter().map(|e| e.ip).collect();
    assert_eq!(ips, vec![host(1), host(2), host(3), host(5)]);
    // The periodic gc (every gc_interval, 30 s after the table reached
    // gc_thresh1) frees the failed entries.
    let runs = net.stack(0).neigh_stats().periodic_gc_runs;
    assert_eq!(runs, 0);
    net.run_until(Instant::from_secs(30));
    let s = net.stack(0);
    assert_eq!(s.neigh_stats().periodic_gc_runs, 1);
    let left: Vec<Ipv4Addr> = s.neigh_show().iter().map(|e| e.ip).collect();
    assert!(left.is_empty());
    let st = s.neigh_stats();
    assert_eq!(st.allocs, 5);
    assert_eq!(st.destroys, 5);
    // Below gc_thresh1 the gc stops: the host goes idle.
    net.run_until(Instant::from_secs(600));
    assert!(net.sim.is_idle());
}

#[test]
fn periodic_gc_frees_stale_entries_unused_for_gc_stale_time() {
    let mut net = pair();
    net.with(0, |s, _| s.neigh_params_mut().gc_thresh1 = 1);
    net.resolve_b();
    let rt = net.stack(0).neigh_reachable_time();
    // REACHABLE holds it; STALE after rt; collected at the first gc run at
    // least gc_stale_time (60 s) after its last use (t=0).
    net.run_until(Instant::from_secs(59));
    assert!(net.entry(0, B_IP).is_some());
    assert!(rt < Duration::from_secs(59));
    net.run_until(Instant::from_secs(90));
    assert!(net.entry(0, B_IP).is_none());
    assert_eq!(net.stack(0).neigh_stats().periodic_gc_runs, 3);
}

#[test]
fn flush_and_ifdown() {
    let mut net = pair();
    net.resolve_b();
    let dev = net.nics[0];
    net.a_sends(NOBODY, 1);
    net.with(0, |s, _| {
        s.neigh_add_static(dev, Ipv4Addr::new(192, 0, 2, 50), mac(0x32))
            .unwrap();
        // Flush spares PERMANENT; the waiting packet fails.
        assert_eq!(s.neigh_flush(Some(dev)), 2);
        assert_eq!(s.neigh_show().len(), 1);
        assert_eq!(s.drops().get(DropReason::NeighFailed), 1);
        assert_eq!(s.neigh_ifdown(dev), 1);
        assert!(s.neigh_show().is_empty());
    });
}

#[test]
fn ip_send_resolves_through_the_neighbour_layer() {
    let mut net = pair();
    net.with(0, |s, now| {
        s.ip_send(now, B_IP, PROTO_TEST, &[1, 2, 3, 4], IpSendOpts::default())
            .unwrap()
    });
    net.run_until(Instant::from_millis(1));
    let got: Vec<Seen> = net.rx(1).into_iter().filter(|f| !f.is_arp()).collect();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].dst(), got[0].src()), (mac(2), mac(1)));
    assert_eq!(net.state(0, B_IP), Some(NudState::Reachable));
    let shown: Vec<String> = net
        .stack(0)
        .neigh_show()
        .iter()
        .map(|e| format!("{e:#}"))
        .collect();
    assert_eq!(
        shown,
        vec!["192.0.2.2 dev eth0 lladdr 02:00:00:00:00:02 used 0/0/0 probes 4 REACHABLE"]
    );
}
