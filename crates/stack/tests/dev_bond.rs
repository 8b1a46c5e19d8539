//! Bonding (`drivers/net/bonding`) on simulated links: host A has a bond
//! over two NICs, each cabled to one of peer B's two NICs. B's NICs are
//! promiscuous and have a protocol tap each, so the tests see which slave a
//! frame left by; A has a protocol tap on the bond.

use netpath::dev::bond::{bond_xmit_hash_l34, BondMode};
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapId, TapSink};
use netpath::dev::{DevError, IfIndex};
use netpath::drop::DropReason;
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::udp::{UdpPacket, UdpRepr};

use core::net::Ipv4Addr;

const ETH_P_TEST: u16 = 0x88b5;
const BOND_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0xb0, 0x00]);

fn a_mac(i: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0xa0, i as u8])
}

fn b_mac(i: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0xbe, i as u8])
}

fn frame(dst: EthernetAddress, src: EthernetAddress, tag: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 60];
    let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType(ETH_P_TEST),
    }
    .emit(&mut f)
    .unwrap();
    f.payload_mut()[0] = tag;
    buf
}

/// An IPv4/UDP frame 10.0.0.1:sport → 10.0.0.2:dport with 18 bytes of data.
fn udp_frame(dst: EthernetAddress, src: EthernetAddress, sport: u16, dport: u16) -> Vec<u8> {
    let (sip, dip) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let data = 18;
    let mut buf = vec![0u8; 14 + 20 + 8 + data];
    let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType(0x0800),
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr {
        src_addr: sip,
        dst_addr: dip,
        protocol: Protocol::UDP,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        payload_len: 8 + data,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]))
    .unwrap();
    UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len: data,
    }
    .emit(&mut UdpPacket::new_unchecked(&mut buf[34..]), sip, dip)
    .unwrap();
    buf
}

struct Pair {
    sim: Sim,
    a: NodeId,
    b: NodeId,
    bond: IfIndex,
    /// A's slaves.
    slaves: [IfIndex; 2],
    /// B's NICs, cabled to slaves 0 and 1.
    peers: [IfIndex; 2],
    /// B's protocol taps (by `proto`), one per NIC.
    peer_taps: [TapId; 2],
    /// A's protocol tap on the bond.
    bond_tap: TapId,
}

impl Pair {
    fn new(mode: BondMode, proto: u16) -> Pair {
        let mut sim = Sim::new(3);
        let mut st = Stack::with_pool(sim.pool().clone());
        st.tracer_mut().enable(4096);
        let bond = st.add_bond("bond0", BOND_MAC, mode).unwrap();
        let mut slaves = [IfIndex(0); 2];
        for (i, s) in slaves.iter_mut().enumerate() {
            *s = st
                .add_nic(&format!("eth{i}"), a_mac(i), NicConfig::default())
                .unwrap();
            st.bond_enslave(bond, *s).unwrap();
        }
        st.set_up(bond, true).unwrap();
        let bond_tap = st.add_tap(Tap::protocol(Some(bond), proto, TapSink::queue(100)));
        let mut ha = SimHost::new(st);
        ha.cable(PortId(0), slaves[0]);
        ha.cable(PortId(1), slaves[1]);
        let a = sim.add_node(Box::new(ha));

        let mut st = Stack::with_pool(sim.pool().clone());
        let mut peers = [IfIndex(0); 2];
        let mut peer_taps = Vec::new();
        for (i, p) in peers.iter_mut().enumerate() {
            *p = st
                .add_nic(&format!("eth{i}"), b_mac(i), NicConfig::default())
                .unwrap();
            st.set_up(*p, true).unwrap();
            st.set_promisc(*p, true).unwrap();
            peer_taps.push(st.add_tap(Tap::protocol(Some(*p), proto, TapSink::queue(100))));
        }
        let mut hb = SimHost::new(st);
        hb.cable(PortId(0), peers[0]);
        hb.cable(PortId(1), peers[1]);
        let b = sim.add_node(Box::new(hb));
        for i in 0..2u16 {
            sim.add_link(LinkConfig::default(), &[(a, PortId(i)), (b, PortId(i))])
                .unwrap();
        }
        Pair {
            sim,
            a,
            b,
            bond,
            slaves,
            peers,
            peer_taps: [peer_taps[0], peer_taps[1]],
            bond_tap,
        }
    }

    fn a(&mut self) -> &mut Stack {
        &mut self.sim.node_mut::<SimHost>(self.a).unwrap().stack
    }

    fn b(&mut self) -> &mut Stack {
        &mut self.sim.node_mut::<SimHost>(self.b).unwrap().stack
    }

    /// A sends `bytes` out of the bond now.
    fn send_a(&mut self, bytes: &[u8]) {
        let bond = self.bond;
        self.sim
            .with_node(self.a, |h: &mut SimHost, now| {
                let mut skb = h.stack.pool().alloc_from(128, bytes).unwrap();
                skb.meta.egress_dev = Some(bond);
                let _ = h.stack.dev_queue_xmit(now, skb);
            })
            .unwrap();
    }

    /// B sends `bytes` from its NIC `i` now.
    fn send_b(&mut self, i: usize, bytes: &[u8]) {
        let nic = self.peers[i];
        self.sim
            .with_node(self.b, |h: &mut SimHost, now| {
                let mut skb = h.stack.pool().alloc_from(128, bytes).unwrap();
                skb.meta.egress_dev = Some(nic);
                h.stack.dev_queue_xmit(now, skb).unwrap();
            })
            .unwrap();
    }

    fn settle(&mut self) {
        self.sim.run_for(Duration::from_micros(50));
    }

    fn drain(stack: &mut Stack, tap: TapId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(skb) = stack.tap_recv(tap) {
            out.push(skb.mac_header_bytes().to_vec());
        }
        out
    }

    /// Frames B got on each NIC since the last call.
    fn peer_got(&mut self) -> [Vec<Vec<u8>>; 2] {
        let [t0, t1] = self.peer_taps;
        let b = self.b();
        [Self::drain(b, t0), Self::drain(b, t1)]
    }

    fn peer_counts(&mut self) -> [usize; 2] {
        let [g0, g1] = self.peer_got();
        [g0.len(), g1.len()]
    }

    fn bond_got(&mut self) -> Vec<Vec<u8>> {
        let tap = self.bond_tap;
        Self::drain(self.a(), tap)
    }

    fn active(&mut self) -> Option<IfIndex> {
        let bond = self.bond;
        self.a().bond_active_slave(bond).unwrap()
    }

    fn set_carrier(&mut self, slave: usize, on: bool) {
        let s = self.slaves[slave];
        self.sim
            .with_node(self.a, |h: &mut SimHost, _| {
                h.stack.set_carrier(s, on).unwrap();
            })
            .unwrap();
    }
}

#[test]
fn enslaving_gives_slaves_the_bond_mac_and_picks_the_first_active() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let (bond, s) = (p.bond, p.slaves);
    let a = p.a();
    for &x in &s {
        let d = a.dev(x).unwrap();
        assert_eq!(d.mac(), BOND_MAC);
        assert_eq!(d.master(), Some(bond));
        assert!(d.flags().up, "enslaving opens the slave");
    }
    assert_eq!(a.bond(bond).unwrap().slaves(), &s);
    assert_eq!(a.bond_active_slave(bond).unwrap(), Some(s[0]));
    assert_eq!(a.bond(bond).unwrap().miimon(), Duration::from_millis(100));
    // The first MII tick is one interval after the first enslave.
    assert_eq!(a.next_deadline(), Some(Instant::from_millis(100)));
}

#[test]
fn active_backup_sends_by_the_active_slave_only() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    for k in 0..5 {
        p.send_a(&frame(b_mac(0), BOND_MAC, k));
    }
    p.settle();
    let [g0, g1] = p.peer_got();
    assert_eq!(g0.len(), 5);
    assert!(g1.is_empty());
    assert_eq!(g0[3][14], 3);
    let (bond, s) = (p.bond, p.slaves);
    let a = p.a();
    let bs = *a.dev(bond).unwrap().stats();
    assert_eq!((bs.tx_packets, bs.tx_bytes, bs.tx_dropped), (5, 300, 0));
    assert_eq!(a.dev(s[0]).unwrap().stats().tx_packets, 5);
    assert_eq!(a.dev(s[1]).unwrap().stats().tx_packets, 0);
}

#[test]
fn active_backup_fails_over_within_one_miimon_interval() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let (bond, s) = (p.bond, p.slaves);
    p.sim.run_until(Instant::from_millis(250));
    p.set_carrier(0, false);
    // Still active until the monitor's next tick at 300 ms.
    p.sim.run_until(Instant::from_nanos(300_000_000 - 1));
    assert_eq!(p.active(), Some(s[0]));
    p.sim.run_until(Instant::from_millis(300));
    assert_eq!(p.active(), Some(s[1]));
    assert_eq!(p.a().bond_failovers(bond).unwrap(), 1);
    let ev: Vec<(Instant, u64)> = p
        .a()
        .tracer()
        .events()
        .filter(|e| e.point == "bond_change_active_slave")
        .map(|e| (e.time, e.detail))
        .collect();
    assert_eq!(
        ev,
        vec![
            (Instant::ZERO, u64::from(s[0].0)),
            (Instant::from_millis(300), u64::from(s[1].0))
        ]
    );
    let info = p.a().bond(bond).unwrap().slave_info();
    assert!(!info[0].link_up && !info[0].active && info[0].link_failures == 1);
    assert!(info[1].link_up && info[1].active);

    // Traffic now leaves by slave 1.
    for k in 0..3 {
        p.send_a(&frame(b_mac(1), BOND_MAC, k));
    }
    p.settle();
    assert_eq!(p.peer_counts(), [0, 3]);

    // Slave 0 comes back: no primary, so slave 1 stays active.
    p.set_carrier(0, true);
    p.sim.run_until(Instant::from_millis(400));
    assert_eq!(p.active(), Some(s[1]));
    assert!(p.a().bond(bond).unwrap().slave_info()[0].link_up);
    // Slave 1 fails: back to slave 0 at the next tick.
    p.sim.run_until(Instant::from_millis(450));
    p.set_carrier(1, false);
    p.sim.run_until(Instant::from_millis(500));
    assert_eq!(p.active(), Some(s[0]));
    assert_eq!(p.a().bond_failovers(bond).unwrap(), 2);
    p.send_a(&frame(b_mac(0), BOND_MAC, 9));
    p.settle();
    assert_eq!(p.peer_counts(), [1, 0]);
}

#[test]
fn frames_on_the_inactive_slave_are_not_delivered_up() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let (bond, s) = (p.bond, p.slaves);
    // Three frames for the bond on the inactive slave, two on the active.
    for k in 0..3 {
        p.send_b(1, &frame(BOND_MAC, b_mac(1), k));
    }
    for k in 10..12 {
        p.send_b(0, &frame(BOND_MAC, b_mac(0), k));
    }
    p.settle();
    let got = p.bond_got();
    assert_eq!(got.iter().map(|f| f[14]).collect::<Vec<_>>(), vec![10, 11]);
    let a = p.a();
    let bs = *a.dev(bond).unwrap().stats();
    assert_eq!((bs.rx_packets, bs.rx_bytes), (2, 120));
    // The inactive slave's frames were received by its NIC, then dropped:
    // no protocol handler is bound to that exact slave.
    let ss = *a.dev(s[1]).unwrap().stats();
    assert_eq!(ss.rx_packets, 3);
    // Linux counts these in rx_nohandler ("not designated to receive").
    assert_eq!((ss.rx_nohandler, ss.rx_dropped), (3, 0));
    assert_eq!(a.drops().get(DropReason::UnhandledProto), 3);

    // A handler bound to that exact slave does get them (RX_HANDLER_EXACT).
    let exact = a.add_tap(Tap::protocol(Some(s[1]), ETH_P_TEST, TapSink::queue(10)));
    p.send_b(1, &frame(BOND_MAC, b_mac(1), 20));
    p.settle();
    let a = p.a();
    let got = Pair::drain(a, exact);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][14], 20);
    assert!(p.bond_got().is_empty());
}

#[test]
fn inactive_slave_passes_link_local_frames_as_its_own() {
    let mut p = Pair::new(BondMode::ActiveBackup, 0x88cc);
    let s1 = p.slaves[1];
    let a = p.a();
    // The NIC filter must let the group address in.
    a.set_allmulti(s1, true).unwrap();
    let tap = a.add_tap(Tap::protocol(Some(s1), 0x88cc, TapSink::queue(10)));
    let lldp = EthernetAddress([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
    let mut f = frame(lldp, b_mac(1), 1);
    f[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    p.send_b(1, &f);
    p.settle();
    assert_eq!(Pair::drain(p.a(), tap).len(), 1);
    assert!(p.bond_got().is_empty());
}

#[test]
fn without_an_usable_slave_transmit_drops() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let bond = p.bond;
    p.set_carrier(0, false);
    p.set_carrier(1, false);
    p.sim.run_until(Instant::from_millis(100));
    assert_eq!(p.active(), None);
    p.send_a(&frame(b_mac(0), BOND_MAC, 1));
    p.settle();
    assert_eq!(p.peer_counts(), [0, 0]);
    let a = p.a();
    assert_eq!(a.dev(bond).unwrap().stats().tx_dropped, 1);
    assert_eq!(a.drops().get(DropReason::NotSpecified), 1);
    // A slave coming back becomes active at the next tick.
    p.set_carrier(1, true);
    p.sim.run_until(Instant::from_millis(200));
    assert_eq!(p.active(), Some(p.slaves[1]));
}

#[test]
fn miimon_zero_turns_monitoring_off() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let (bond, s) = (p.bond, p.slaves);
    p.sim
        .with_node(p.a, |h: &mut SimHost, _| {
            h.stack.bond_set_miimon(bond, Duration::ZERO).unwrap();
        })
        .unwrap();
    assert_eq!(p.a().next_deadline(), None);
    p.set_carrier(0, false);
    p.sim.run_until(Instant::from_secs(5));
    assert_eq!(p.active(), Some(s[0]));
    // A longer interval: the next tick one interval from now.
    p.sim
        .with_node(p.a, |h: &mut SimHost, now| {
            // The stack was idle: bring its clock to now first (timers
            // start from the stack's time).
            h.stack.poll(now);
            h.stack
                .bond_set_miimon(bond, Duration::from_millis(250))
                .unwrap();
        })
        .unwrap();
    assert_eq!(
        p.a().next_deadline(),
        Some(Instant::from_secs(5) + Duration::from_millis(250))
    );
    p.sim.run_until(Instant::from_millis(5250));
    assert_eq!(p.active(), Some(s[1]));
}

#[test]
fn release_restores_the_mac_and_hands_over() {
    let mut p = Pair::new(BondMode::ActiveBackup, ETH_P_TEST);
    let (bond, s) = (p.bond, p.slaves);
    let a = p.a();
    a.bond_release(bond, s[0]).unwrap();
    assert_eq!(a.dev(s[0]).unwrap().mac(), a_mac(0));
    assert_eq!(a.dev(s[0]).unwrap().master(), None);
    assert_eq!(a.bond(bond).unwrap().slaves(), &[s[1]]);
    assert_eq!(a.bond_active_slave(bond).unwrap(), Some(s[1]));
    // A release is not a failover.
    assert_eq!(a.bond_failovers(bond).unwrap(), 0);
    assert_eq!(
        a.bond_release(bond, s[0]),
        Err(DevError::BadParam("not a slave of that bond"))
    );
    a.bond_release(bond, s[1]).unwrap();
    assert_eq!(a.bond_active_slave(bond).unwrap(), None);
    // No slaves, no monitor.
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn enslave_errors_are_typed() {
    let mut st = Stack::new();
    let bond = st
        .add_bond("bond0", BOND_MAC, BondMode::ActiveBackup)
        .unwrap();
    let br = st.add_bridge("br0", a_mac(9)).unwrap();
    let e0 = st.add_nic("eth0", a_mac(0), NicConfig::default()).unwrap();
    assert!(matches!(
        st.bond_enslave(bond, IfIndex(1)),
        Err(DevError::WrongKind { .. })
    ));
    assert!(matches!(
        st.bond_enslave(br, e0),
        Err(DevError::WrongKind { .. })
    ));
    assert!(matches!(
        st.bond_enslave(bond, br),
        Err(DevError::WrongKind { .. })
    ));
    assert!(matches!(
        st.bond_enslave(bond, bond),
        Err(DevError::WrongKind { .. })
    ));
    st.bond_enslave(bond, e0).unwrap();
    assert_eq!(
        st.bond_enslave(bond, e0),
        Err(DevError::AlreadyEnslaved {
            dev: e0,
            master: bond
        })
    );
    assert!(matches!(
        st.bond_active_slave(br),
        Err(DevError::WrongKind { .. })
    ));
    assert!(matches!(
        st.bond_enslave(IfIndex(42), e0),
        Err(DevError::NoSuchDevice(_))
    ));
}

#[test]
fn bond_without_an_address_takes_its_first_slaves() {
    let mut st = Stack::new();
    let bond = st
        .add_bond("bond0", EthernetAddress::ZERO, BondMode::ActiveBackup)
        .unwrap();
    let e0 = st.add_nic("eth0", a_mac(0), NicConfig::default()).unwrap();
    let e1 = st.add_nic("eth1", a_mac(1), NicConfig::default()).unwrap();
    st.bond_enslave(bond, e0).unwrap();
    st.bond_enslave(bond, e1).unwrap();
    assert_eq!(st.dev(bond).unwrap().mac(), a_mac(0));
    assert_eq!(st.dev(e1).unwrap().mac(), a_mac(0));
}

#[test]
fn layer34_hash_matches_linux() {
    // 10.0.0.1:1000 → 10.0.0.2:2000 on a little-endian host:
    // ports 0xd007e803 ^ daddr 0x0200000a ^ saddr 0x0100000a = 0xd307e803;
    // ^= >>16 → 0xd3073b04; ^= >>8 → 0xd3d43c3f; >>1 → 0x69ea1e1f.
    let f = udp_frame(b_mac(0), BOND_MAC, 1000, 2000);
    assert_eq!(bond_xmit_hash_l34(&f), 0x69ea_1e1f);
    // Not IPv4: layer2, dst[5] ^ src[5] ^ type.
    let f = frame(b_mac(1), a_mac(3), 0);
    assert_eq!(bond_xmit_hash_l34(&f), 1 ^ 3 ^ u32::from(ETH_P_TEST));
    // A fragment hashes without ports.
    let mut f = udp_frame(b_mac(0), BOND_MAC, 1000, 2000);
    f[14 + 6] |= 0x20; // MF
    let h = 0x0300_0000u32;
    let h = h ^ (h >> 16);
    let h = h ^ (h >> 8);
    assert_eq!(bond_xmit_hash_l34(&f), h >> 1);
}

#[test]
fn balance_xor_spreads_flows_deterministically() {
    let mut p = Pair::new(BondMode::BalanceXor, 0x0800);
    let bond = p.bond;
    assert_eq!(p.active(), None);
    let mut per_slave = [0usize; 2];
    for round in 0..2 {
        for sport in 1000..1016u16 {
            let f = udp_frame(b_mac(0), BOND_MAC, sport, 2000);
            let want = bond_xmit_hash_l34(&f) as usize % 2;
            p.send_a(&f);
            p.settle();
            let got = p.peer_counts();
            let mut expect = [0, 0];
            expect[want] = 1;
            assert_eq!(got, expect, "flow {sport} (round {round})");
            if round == 0 {
                per_slave[want] += 1;
            }
        }
    }
    // Both slaves carry flows.
    assert!(per_slave[0] > 0 && per_slave[1] > 0, "{per_slave:?}");
    assert_eq!(per_slave[0] + per_slave[1], 16);
    assert_eq!(p.a().dev(bond).unwrap().stats().tx_packets, 32);

    // Packets from either slave are the bond's.
    let f = udp_frame(BOND_MAC, b_mac(0), 7, 7);
    p.send_b(0, &f);
    p.send_b(1, &f);
    p.settle();
    assert_eq!(p.bond_got().len(), 2);

    // Slave 1 fails: every flow on slave 0 after the next tick.
    p.set_carrier(1, false);
    p.sim.run_until(Instant::from_millis(100));
    for sport in 1000..1008u16 {
        p.send_a(&udp_frame(b_mac(0), BOND_MAC, sport, 2000));
    }
    p.settle();
    assert_eq!(p.peer_counts(), [8, 0]);
}
