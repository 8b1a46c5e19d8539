//! The Linux bridge (`net/bridge`) on simulated links: a switch host with a
//! bridge over three NICs, each cabled to an end host. Frames are Ethernet
//! (ethertype 0x88b5, the IEEE local experimental type) sent from the end
//! hosts' NICs; the end hosts are promiscuous so that their protocol taps
//! see every frame that reaches them, flooded or not.

use netpath::dev::bridge::BridgeVlan;
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapId, TapSink};
use netpath::dev::{DevError, IfIndex};
use netpath::drop::DropReason;
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::skb::PacketType;
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

const ETH_P_TEST: u16 = 0x88b5;
const BR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0xbb, 0x00]);

fn host_mac(i: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0x00, 0x10 + i as u8])
}

fn port_mac(i: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0xbb, 0x01 + i as u8])
}

/// An Ethernet frame of 60 bytes whose payload starts with `tag`.
fn frame(dst: EthernetAddress, src: EthernetAddress, ty: u16, tag: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 60];
    let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType(ty),
    }
    .emit(&mut f)
    .unwrap();
    f.payload_mut()[0] = tag;
    buf
}

/// A received packet as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    dst: EthernetAddress,
    src: EthernetAddress,
    tag: u8,
    pkt_type: PacketType,
    ingress: Option<IfIndex>,
}

struct Lan {
    sim: Sim,
    sw: NodeId,
    br: IfIndex,
    /// The switch's NICs, bridge ports 0..3.
    ports: [IfIndex; 3],
    hosts: [NodeId; 3],
    /// Each end host's NIC.
    nics: [IfIndex; 3],
    taps: [TapId; 3],
    /// A protocol tap on the bridge device (what goes up on the switch).
    br_tap: TapId,
}

const LAT: Duration = Duration::from_micros(1);

impl Lan {
    fn new() -> Lan {
        let mut sim = Sim::new(7);
        let mut st = Stack::with_pool(sim.pool().clone());
        let br = st.add_bridge("br0", BR_MAC).unwrap();
        let mut ports = [IfIndex(0); 3];
        for (i, p) in ports.iter_mut().enumerate() {
            *p = st
                .add_nic(&format!("sw{i}"), port_mac(i), NicConfig::default())
                .unwrap();
            st.bridge_add_port(br, *p).unwrap();
            st.set_up(*p, true).unwrap();
        }
        st.set_up(br, true).unwrap();
        let br_tap = st.add_tap(Tap::protocol(Some(br), ETH_P_TEST, TapSink::queue(100)));
        let mut sw_host = SimHost::new(st);
        for (i, &p) in ports.iter().enumerate() {
            sw_host.cable(PortId(i as u16), p);
        }
        let sw = sim.add_node(Box::new(sw_host));

        let mut hosts = Vec::new();
        let mut nics = [IfIndex(0); 3];
        let mut taps = Vec::new();
        for (i, nic_slot) in nics.iter_mut().enumerate() {
            let mut st = Stack::with_pool(sim.pool().clone());
            let nic = st
                .add_nic("eth0", host_mac(i), NicConfig::default())
                .unwrap();
            st.set_up(nic, true).unwrap();
            st.set_promisc(nic, true).unwrap();
            taps.push(st.add_tap(Tap::protocol(Some(nic), ETH_P_TEST, TapSink::queue(100))));
            let mut h = SimHost::new(st);
            h.cable(PortId(0), nic);
            *nic_slot = nic;
            let id = sim.add_node(Box::new(h));
            let cfg = LinkConfig {
                latency: LAT,
                ..LinkConfig::default()
            };
            sim.add_link(cfg, &[(sw, PortId(i as u16)), (id, PortId(0))])
                .unwrap();
            hosts.push(id);
        }
        Lan {
            sim,
            sw,
            br,
            ports,
            hosts: [hosts[0], hosts[1], hosts[2]],
            nics,
            taps: [taps[0], taps[1], taps[2]],
            br_tap,
        }
    }

    /// End host `i` sends `bytes` from its NIC now.
    fn send(&mut self, i: usize, bytes: Vec<u8>) {
        let nic = self.nics[i];
        self.sim
            .with_node(self.hosts[i], |h: &mut SimHost, now| {
                let mut skb = h.stack.pool().alloc_from(128, &bytes).unwrap();
                skb.meta.egress_dev = Some(nic);
                h.stack.dev_queue_xmit(now, skb).unwrap();
            })
            .unwrap();
    }

    /// Runs the world for 1 ms (every frame above has arrived by then).
    fn settle(&mut self) {
        self.sim.run_for(Duration::from_millis(1));
    }

    fn switch(&mut self) -> &mut Stack {
        &mut self.sim.node_mut::<SimHost>(self.sw).unwrap().stack
    }

    fn drain(stack: &mut Stack, tap: TapId) -> Vec<Got> {
        let mut out = Vec::new();
        while let Some(skb) = stack.tap_recv(tap) {
            let m = skb.mac_header_bytes();
            out.push(Got {
                dst: EthernetAddress::from_bytes(&m[0..6]).unwrap(),
                src: EthernetAddress::from_bytes(&m[6..12]).unwrap(),
                tag: skb.data()[0],
                pkt_type: skb.meta.pkt_type,
                ingress: skb.meta.ingress_dev,
            });
        }
        out
    }

    /// What end host `i`'s tap got since the last call.
    fn got(&mut self, i: usize) -> Vec<Got> {
        let tap = self.taps[i];
        let h = self.sim.node_mut::<SimHost>(self.hosts[i]).unwrap();
        Self::drain(&mut h.stack, tap)
    }

    /// How many frames each end host got since the last call.
    fn counts(&mut self) -> [usize; 3] {
        [self.got(0).len(), self.got(1).len(), self.got(2).len()]
    }

    fn got_up(&mut self) -> Vec<Got> {
        let tap = self.br_tap;
        Self::drain(self.switch(), tap)
    }

    fn fdb(&mut self) -> Vec<(EthernetAddress, u16, IfIndex, bool)> {
        let br = self.br;
        self.switch().bridge_fdb(br).unwrap()
    }

    fn fdb_port(&mut self, mac: EthernetAddress) -> Option<IfIndex> {
        let br = self.br;
        self.switch().bridge_fdb_lookup(br, mac, 0).unwrap()
    }
}

#[test]
fn fdb_starts_with_the_local_addresses() {
    let mut lan = Lan::new();
    let br = lan.br;
    let p = lan.ports;
    let mut want = vec![
        (port_mac(0), 0, p[0], true),
        (port_mac(1), 0, p[1], true),
        (port_mac(2), 0, p[2], true),
        (BR_MAC, 0, br, true),
    ];
    want.sort_by_key(|r| (r.2, r.0));
    assert_eq!(lan.fdb(), want);
    // Ports are promiscuous so that their NICs take every frame.
    for p in lan.ports {
        assert!(lan.switch().dev(p).unwrap().flags().promisc);
    }
    // Nothing learnt yet, so no ageing timer.
    assert_eq!(lan.switch().next_deadline(), None);
}

#[test]
fn learns_floods_unknown_unicast_then_forwards_known() {
    let mut lan = Lan::new();
    // h0 → h1, unknown: flooded to ports 1 and 2, exactly once each.
    lan.send(0, frame(host_mac(1), host_mac(0), ETH_P_TEST, 1));
    lan.settle();
    let g1 = lan.got(1);
    assert_eq!(g1.len(), 1);
    assert_eq!(
        (g1[0].dst, g1[0].src, g1[0].tag),
        (host_mac(1), host_mac(0), 1)
    );
    assert_eq!(g1[0].pkt_type, PacketType::Host);
    let g2 = lan.got(2);
    assert_eq!(g2.len(), 1);
    assert_eq!(g2[0].pkt_type, PacketType::OtherHost);
    assert!(lan.got(0).is_empty());
    // Unknown unicast does not go up on a bridge that is not promiscuous.
    assert!(lan.got_up().is_empty());
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[0]));
    assert_eq!(lan.fdb_port(host_mac(1)), None);

    // h1 → h0: known now, forwarded to port 0 only; h1 learnt on port 1.
    lan.send(1, frame(host_mac(0), host_mac(1), ETH_P_TEST, 2));
    lan.settle();
    assert_eq!(lan.counts(), [1, 0, 0]);
    assert_eq!(lan.fdb_port(host_mac(1)), Some(lan.ports[1]));

    // h0 → h1: known, port 1 only.
    lan.send(0, frame(host_mac(1), host_mac(0), ETH_P_TEST, 3));
    lan.settle();
    let (g0, g1, g2) = (lan.got(0), lan.got(1), lan.got(2));
    assert!(g0.is_empty() && g2.is_empty());
    assert_eq!(g1.len(), 1);
    assert_eq!(g1[0].tag, 3);

    let br = lan.br;
    let ports = lan.ports;
    let sw = lan.switch();
    let s = *sw.bridge(br).unwrap().stats();
    assert_eq!(
        (s.flooded, s.forwarded, s.learnt, s.passed_up),
        (1, 2, 2, 0)
    );
    // Forwarded frames are not the bridge device's.
    let bs = *sw.dev(br).unwrap().stats();
    assert_eq!((bs.rx_packets, bs.tx_packets), (0, 0));
    // Each port NIC: received what its host sent, sent what it forwarded.
    let tx: Vec<u64> = ports
        .iter()
        .map(|&p| sw.dev(p).unwrap().stats().tx_packets)
        .collect();
    let rx: Vec<u64> = ports
        .iter()
        .map(|&p| sw.dev(p).unwrap().stats().rx_packets)
        .collect();
    assert_eq!(tx, vec![1, 2, 1]);
    assert_eq!(rx, vec![2, 1, 0]);
    assert_eq!(sw.drops().total(), 0);
    // Full FDB: locals + two learnt entries on the right ports.
    let learnt: Vec<_> = lan.fdb().into_iter().filter(|r| !r.3).collect();
    assert_eq!(
        learnt,
        vec![
            (host_mac(0), 0, lan.ports[0], false),
            (host_mac(1), 0, lan.ports[1], false)
        ]
    );
}

#[test]
fn broadcast_floods_to_every_other_port_and_goes_up() {
    let mut lan = Lan::new();
    lan.send(
        2,
        frame(EthernetAddress::BROADCAST, host_mac(2), ETH_P_TEST, 9),
    );
    lan.settle();
    assert_eq!(lan.counts(), [1, 1, 0]);
    let up = lan.got_up();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].pkt_type, PacketType::Broadcast);
    assert_eq!(up[0].ingress, Some(lan.br));
    assert_eq!(up[0].tag, 9);
    let br = lan.br;
    let s = *lan.switch().dev(br).unwrap().stats();
    // rx_bytes as Linux's br_pass_frame_up counts them: from the network
    // header (60 - 14).
    assert_eq!((s.rx_packets, s.rx_bytes, s.multicast), (1, 46, 0));

    // Multicast: the same, and counted as multicast on the bridge.
    let mc = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    lan.send(0, frame(mc, host_mac(0), ETH_P_TEST, 10));
    lan.settle();
    assert_eq!(lan.counts(), [0, 1, 1]);
    assert_eq!(lan.got_up().len(), 1);
    let s = *lan.switch().dev(br).unwrap().stats();
    assert_eq!((s.rx_packets, s.multicast), (2, 1));
}

#[test]
fn entries_age_out_after_ageing_time() {
    let mut lan = Lan::new();
    let br = lan.br;
    assert_eq!(
        lan.switch().bridge(br).unwrap().ageing_time(),
        Duration::from_secs(300)
    );
    lan.send(0, frame(host_mac(1), host_mac(0), ETH_P_TEST, 1));
    lan.settle();
    lan.counts();
    // Learnt when the frame reached the switch: after the link's latency.
    let learnt_at = Instant::ZERO + LAT;
    let expiry = learnt_at + Duration::from_secs(300);
    assert_eq!(lan.switch().next_deadline(), Some(expiry));
    lan.send(1, frame(host_mac(0), host_mac(1), ETH_P_TEST, 2));
    lan.settle();
    assert_eq!(lan.counts(), [1, 0, 0]);

    lan.sim
        .run_until(Instant::from_nanos(expiry.as_nanos() - 1));
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[0]));
    lan.sim.run_until(expiry);
    assert_eq!(lan.fdb_port(host_mac(0)), None);
    // h1 was learnt 1 ms later: still there, and the timer is re-armed for it.
    let h1_expiry = Instant::from_millis(1) + LAT + Duration::from_secs(300);
    assert_eq!(lan.fdb_port(host_mac(1)), Some(lan.ports[1]));
    assert_eq!(lan.switch().next_deadline(), Some(h1_expiry));
    assert_eq!(lan.switch().bridge(br).unwrap().stats().aged, 1);

    // h0 is unknown again: a frame for it floods.
    lan.send(2, frame(host_mac(0), host_mac(2), ETH_P_TEST, 3));
    lan.settle();
    assert_eq!(lan.counts(), [1, 1, 0]);

    lan.sim.run_until(h1_expiry);
    assert_eq!(lan.fdb_port(host_mac(1)), None);
    assert_eq!(lan.fdb_port(host_mac(2)), Some(lan.ports[2]));
}

#[test]
fn traffic_refreshes_and_ageing_time_is_settable() {
    let mut lan = Lan::new();
    let br = lan.br;
    lan.switch()
        .bridge_set_ageing(br, Duration::from_secs(10))
        .unwrap();
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 1),
    );
    lan.sim.run_until(Instant::from_secs(8));
    // Refreshed at 8 s: lives until 18 s, though the first timer fires at 10.
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 2),
    );
    lan.sim.run_until(Instant::from_secs(17));
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[0]));
    lan.sim.run_until(Instant::from_secs(18) + LAT);
    assert_eq!(lan.fdb_port(host_mac(0)), None);
    assert_eq!(lan.switch().next_deadline(), None);

    // Ageing 0: nothing is learnt (Linux: "always flood").
    lan.switch().bridge_set_ageing(br, Duration::ZERO).unwrap();
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 3),
    );
    lan.settle();
    assert_eq!(lan.fdb_port(host_mac(0)), None);
}

#[test]
fn station_move_updates_the_port() {
    let mut lan = Lan::new();
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 1),
    );
    lan.settle();
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[0]));
    lan.counts();
    // h0's address now shows up behind port 2.
    lan.send(
        2,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 2),
    );
    lan.settle();
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[2]));
    assert_eq!(lan.counts(), [1, 1, 0]);
    let br = lan.br;
    assert_eq!(lan.switch().bridge(br).unwrap().stats().moved, 1);
    // Frames for it go to port 2 only.
    lan.send(1, frame(host_mac(0), host_mac(1), ETH_P_TEST, 3));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 1]);
}

#[test]
fn frames_for_local_addresses_go_up_on_the_bridge() {
    let mut lan = Lan::new();
    lan.send(1, frame(BR_MAC, host_mac(1), ETH_P_TEST, 5));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    let up = lan.got_up();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].pkt_type, PacketType::Host);
    assert_eq!(up[0].ingress, Some(lan.br));
    assert_eq!((up[0].dst, up[0].tag), (BR_MAC, 5));
    // A port's own address is local too.
    lan.send(2, frame(port_mac(0), host_mac(2), ETH_P_TEST, 6));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    assert_eq!(lan.got_up().len(), 1);
    let br = lan.br;
    let s = *lan.switch().dev(br).unwrap().stats();
    assert_eq!((s.rx_packets, s.rx_bytes), (2, 92));
    // Learning still happened.
    assert_eq!(lan.fdb_port(host_mac(1)), Some(lan.ports[1]));
    assert_eq!(lan.fdb_port(host_mac(2)), Some(lan.ports[2]));
}

#[test]
fn promiscuous_bridge_also_passes_up_unknown_and_forwarded_unicast() {
    let mut lan = Lan::new();
    let br = lan.br;
    lan.switch().set_promisc(br, true).unwrap();
    lan.send(0, frame(host_mac(1), host_mac(0), ETH_P_TEST, 1));
    lan.settle();
    assert_eq!(lan.counts(), [0, 1, 1]);
    let up = lan.got_up();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].pkt_type, PacketType::OtherHost);
    lan.send(1, frame(host_mac(0), host_mac(1), ETH_P_TEST, 2));
    lan.settle();
    assert_eq!(lan.counts(), [1, 0, 0]);
    assert_eq!(lan.got_up().len(), 1);
}

#[test]
fn known_unicast_back_to_its_ingress_port_is_dropped() {
    let mut lan = Lan::new();
    let x = EthernetAddress([0x02, 0, 0, 0, 0x00, 0x99]);
    // Station x sits behind port 0 too (h0 speaks for it).
    lan.send(0, frame(EthernetAddress::BROADCAST, x, ETH_P_TEST, 1));
    lan.settle();
    lan.counts();
    lan.send(0, frame(x, host_mac(0), ETH_P_TEST, 2));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    let br = lan.br;
    let sw = lan.switch();
    assert_eq!(sw.bridge(br).unwrap().stats().same_port, 1);
    assert_eq!(sw.drops().get(DropReason::NotSpecified), 1);
    assert_eq!(sw.drops().total(), 1);
}

#[test]
fn invalid_source_and_pause_frames_are_dropped() {
    let mut lan = Lan::new();
    let mc = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    lan.send(0, frame(EthernetAddress::BROADCAST, mc, ETH_P_TEST, 1));
    lan.send(1, frame(host_mac(2), EthernetAddress::ZERO, ETH_P_TEST, 2));
    let pause = EthernetAddress([0x01, 0x80, 0xc2, 0x00, 0x00, 0x01]);
    lan.send(2, frame(pause, host_mac(2), 0x8808, 3));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    assert!(lan.got_up().is_empty());
    let sw = lan.switch();
    assert_eq!(sw.drops().get(DropReason::MacInvalidSource), 2);
    assert_eq!(sw.drops().get(DropReason::NotSpecified), 1);
    // Nothing learnt from the invalid sources; the pause sender is not
    // learnt either (dropped before learning).
    assert_eq!(lan.fdb().iter().filter(|r| !r.3).count(), 0);
}

#[test]
fn link_local_frames_are_learnt_and_left_to_the_port() {
    let mut lan = Lan::new();
    let lldp = EthernetAddress([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
    let p1 = lan.ports[1];
    let tap = lan
        .switch()
        .add_tap(Tap::protocol(Some(p1), 0x88cc, TapSink::queue(10)));
    lan.send(1, frame(lldp, host_mac(1), 0x88cc, 1));
    lan.settle();
    // Not forwarded; delivered as the port's own packet.
    assert_eq!(lan.counts(), [0, 0, 0]);
    let got = Lan::drain(lan.switch(), tap);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ingress, Some(p1));
    assert_eq!(lan.fdb_port(host_mac(1)), Some(p1));
    let (p0, p2) = (lan.ports[0], lan.ports[2]);
    let sw = lan.switch();
    assert_eq!(sw.dev(p0).unwrap().stats().tx_packets, 0);
    assert_eq!(sw.dev(p2).unwrap().stats().tx_packets, 0);
}

#[test]
fn ports_that_are_not_forwarding_neither_receive_nor_send() {
    let mut lan = Lan::new();
    let (p1, br) = (lan.ports[1], lan.br);
    // Learn h1 on port 1, then unplug port 1.
    lan.send(
        1,
        frame(EthernetAddress::BROADCAST, host_mac(1), ETH_P_TEST, 1),
    );
    lan.settle();
    lan.counts();
    lan.got_up();
    lan.switch().set_carrier(p1, false).unwrap();
    // A frame arriving on it is dropped by the bridge.
    lan.send(
        1,
        frame(EthernetAddress::BROADCAST, host_mac(1), ETH_P_TEST, 2),
    );
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    assert!(lan.got_up().is_empty());
    assert_eq!(lan.switch().drops().get(DropReason::NotSpecified), 1);
    // Floods skip it; a frame for h1 floods (its entry went with the port).
    lan.send(0, frame(host_mac(1), host_mac(0), ETH_P_TEST, 3));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 1]);
    assert_eq!(lan.fdb_port(host_mac(1)), None);
    // The bridge down: nothing passes.
    lan.switch().set_carrier(p1, true).unwrap();
    lan.switch().set_up(br, false).unwrap();
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 4),
    );
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    assert_eq!(lan.switch().drops().get(DropReason::NotSpecified), 2);
}

#[test]
fn host_sends_out_of_the_bridge_device() {
    let mut lan = Lan::new();
    let br = lan.br;
    let sw = lan.sw;
    let send_from_switch = |lan: &mut Lan, bytes: Vec<u8>| {
        lan.sim
            .with_node(sw, |h: &mut SimHost, now| {
                let mut skb = h.stack.pool().alloc_from(128, &bytes).unwrap();
                skb.meta.egress_dev = Some(br);
                h.stack.dev_queue_xmit(now, skb).unwrap();
            })
            .unwrap();
    };
    send_from_switch(
        &mut lan,
        frame(EthernetAddress::BROADCAST, BR_MAC, ETH_P_TEST, 1),
    );
    lan.settle();
    assert_eq!(lan.counts(), [1, 1, 1]);
    // Unknown unicast floods to every port.
    send_from_switch(&mut lan, frame(host_mac(2), BR_MAC, ETH_P_TEST, 2));
    lan.settle();
    assert_eq!(lan.counts(), [1, 1, 1]);
    // Once h2 is known, only its port.
    lan.send(2, frame(BR_MAC, host_mac(2), ETH_P_TEST, 3));
    lan.settle();
    lan.got_up();
    send_from_switch(&mut lan, frame(host_mac(2), BR_MAC, ETH_P_TEST, 4));
    lan.settle();
    let g = lan.got(2);
    assert_eq!((g.len(), g[0].tag, g[0].src), (1, 4, BR_MAC));
    assert_eq!(lan.counts(), [0, 0, 0]);
    let s = *lan.switch().dev(br).unwrap().stats();
    assert_eq!((s.tx_packets, s.tx_bytes), (3, 180));
}

#[test]
fn static_entries_do_not_age_and_api_errors_are_typed() {
    let mut lan = Lan::new();
    let (br, p) = (lan.br, lan.ports);
    let x = EthernetAddress([0x02, 0, 0, 0, 0x00, 0x42]);
    let sw = lan.switch();
    sw.bridge_fdb_add_static(br, x, 0, p[2]).unwrap();
    assert_eq!(
        sw.bridge_fdb_add_static(br, EthernetAddress::BROADCAST, 0, p[2]),
        Err(DevError::BadParam("FDB entries need a unicast address"))
    );
    assert!(matches!(
        sw.bridge_fdb_add_static(br, x, 0, IfIndex(1)),
        Err(DevError::BadParam(_))
    ));
    assert!(matches!(
        sw.bridge_fdb_add_static(br, BR_MAC, 0, p[0]),
        Err(DevError::BadParam(_))
    ));
    assert!(matches!(
        sw.bridge_add_port(p[0], p[1]),
        Err(DevError::WrongKind { .. })
    ));
    assert!(matches!(
        sw.bridge_add_port(br, p[1]),
        Err(DevError::AlreadyEnslaved { .. })
    ));
    assert!(matches!(sw.bridge_add_port(br, br), Err(DevError::Loop(_))));
    assert!(matches!(
        sw.bridge_del_port(br, IfIndex(1)),
        Err(DevError::BadParam(_))
    ));
    assert!(matches!(
        sw.bridge_fdb(IfIndex(99)),
        Err(DevError::NoSuchDevice(_))
    ));
    assert!(sw.fdb_static_row(br, x));
    // Frames for x go to port 2 only, even after the ageing time.
    lan.sim.run_until(Instant::from_secs(1000));
    lan.send(0, frame(x, host_mac(0), ETH_P_TEST, 1));
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 1]);
}

/// Small helper trait so the test reads like `bridge fdb show`.
trait FdbStatic {
    fn fdb_static_row(&self, br: IfIndex, mac: EthernetAddress) -> bool;
}

impl FdbStatic for Stack {
    fn fdb_static_row(&self, br: IfIndex, mac: EthernetAddress) -> bool {
        self.bridge_fdb_show(br)
            .unwrap()
            .iter()
            .any(|r| r.mac == mac && r.is_static && !r.local)
    }
}

#[test]
fn deleting_a_port_flushes_its_entries() {
    let mut lan = Lan::new();
    let (br, p) = (lan.br, lan.ports);
    lan.send(
        1,
        frame(EthernetAddress::BROADCAST, host_mac(1), ETH_P_TEST, 1),
    );
    lan.settle();
    lan.counts();
    let sw = lan.switch();
    sw.bridge_del_port(br, p[1]).unwrap();
    assert_eq!(sw.dev(p[1]).unwrap().master(), None);
    assert!(!sw.dev(p[1]).unwrap().flags().promisc);
    assert_eq!(sw.bridge(br).unwrap().ports(), &[p[0], p[2]]);
    assert!(lan.fdb().iter().all(|r| r.2 != p[1]));
    // Floods no longer reach it.
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 2),
    );
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 1]);
}

#[test]
fn vlan_filtering_admits_by_pvid_tags_and_untags_on_egress() {
    let mut lan = Lan::new();
    let (br, p) = (lan.br, lan.ports);
    let sw = lan.switch();
    sw.bridge_set_vlan_filtering(br, true).unwrap();
    // Port 0: access port in VLAN 10. Port 1: trunk, VLAN 10 tagged.
    // Port 2: access port in VLAN 20.
    sw.bridge_vlan_del(br, p[0], 1).unwrap();
    sw.bridge_vlan_add(br, p[0], 10, true, true).unwrap();
    sw.bridge_vlan_del(br, p[1], 1).unwrap();
    sw.bridge_vlan_add(br, p[1], 10, false, false).unwrap();
    sw.bridge_vlan_del(br, p[2], 1).unwrap();
    sw.bridge_vlan_add(br, p[2], 20, true, true).unwrap();
    assert_eq!(
        sw.bridge_vlan_show(br, p[0]).unwrap(),
        vec![BridgeVlan {
            vid: 10,
            pvid: true,
            untagged: true
        }]
    );
    assert_eq!(
        sw.bridge_vlan_del(br, p[0], 77),
        Err(DevError::BadVlan { vid: 77 })
    );
    // End hosts see every frame with all-taps (the tag is in the skb).
    let mut all = Vec::new();
    for i in 0..3 {
        let nic = lan.nics[i];
        let h = lan.sim.node_mut::<SimHost>(lan.hosts[i]).unwrap();
        all.push(h.stack.add_tap(Tap::all(Some(nic), TapSink::queue(10))));
    }
    // h0 (untagged) broadcasts: VLAN 10 → tagged on port 1, not on port 2.
    lan.send(
        0,
        frame(EthernetAddress::BROADCAST, host_mac(0), ETH_P_TEST, 1),
    );
    lan.settle();
    let mut seen = Vec::new();
    for (&host, &tap) in lan.hosts.iter().zip(&all) {
        let h = lan.sim.node_mut::<SimHost>(host).unwrap();
        let mut v = Vec::new();
        while let Some(skb) = h.stack.tap_recv(tap) {
            if skb.meta.pkt_type != PacketType::Outgoing {
                v.push(skb.meta.vlan.map(|t| t.vid()));
            }
        }
        seen.push(v);
    }
    assert_eq!(seen, vec![vec![], vec![Some(10)], vec![]]);
    assert_eq!(lan.counts(), [0, 1, 0]);
    // Learnt in VLAN 10.
    let fdb = lan.fdb();
    assert!(fdb.contains(&(host_mac(0), 10, p[0], false)));
    // The bridge itself is in VLAN 1 only: the broadcast did not go up.
    assert!(lan.got_up().is_empty());

    // h1 sends tagged VLAN 10 to h0: delivered untagged on port 0.
    let mut tagged = frame(host_mac(0), host_mac(1), 0x8100, 0);
    tagged[14..16].copy_from_slice(&10u16.to_be_bytes());
    tagged[16..18].copy_from_slice(&ETH_P_TEST.to_be_bytes());
    tagged[18] = 2;
    lan.send(1, tagged.clone());
    lan.settle();
    let g0 = lan.got(0);
    assert_eq!(g0.len(), 1);
    assert_eq!(g0[0].tag, 2);
    assert_eq!(lan.counts(), [0, 0, 0]);
    // VLAN 30 is not allowed on port 1.
    tagged[14..16].copy_from_slice(&30u16.to_be_bytes());
    lan.send(1, tagged);
    lan.settle();
    assert_eq!(lan.counts(), [0, 0, 0]);
    // Two: the first broadcast, refused by the bridge itself (not in VLAN
    // 10) when passed up, and this one.
    assert_eq!(lan.switch().drops().get(DropReason::VlanFilter), 2);
}

#[test]
fn forwarding_without_vlan_filtering_keeps_the_tag() {
    let mut lan = Lan::new();
    let nic2 = lan.nics[2];
    let h2 = lan.hosts[2];
    let tap = lan
        .sim
        .node_mut::<SimHost>(h2)
        .unwrap()
        .stack
        .add_tap(Tap::all(Some(nic2), TapSink::queue(10)));
    let mut tagged = frame(EthernetAddress::BROADCAST, host_mac(0), 0x8100, 0);
    tagged[14..16].copy_from_slice(&0x2007u16.to_be_bytes());
    tagged[16..18].copy_from_slice(&ETH_P_TEST.to_be_bytes());
    lan.send(0, tagged);
    lan.settle();
    let h = lan.sim.node_mut::<SimHost>(h2).unwrap();
    let skb = h.stack.tap_recv(tap).unwrap();
    let tag = skb.meta.vlan.unwrap();
    assert_eq!((tag.proto, tag.tci), (0x8100, 0x2007));
    assert_eq!(skb.meta.protocol, ETH_P_TEST);
    // Learnt in VLAN 0: without filtering, VLANs share one table.
    assert_eq!(lan.fdb_port(host_mac(0)), Some(lan.ports[0]));
}

#[test]
fn flooding_returns_every_buffer_to_the_pool() {
    let mut lan = Lan::new();
    for k in 0..20u8 {
        lan.send(
            usize::from(k % 3),
            frame(
                EthernetAddress::BROADCAST,
                host_mac(usize::from(k % 3)),
                ETH_P_TEST,
                k,
            ),
        );
        lan.send(0, frame(host_mac(7), host_mac(0), ETH_P_TEST, k));
    }
    lan.settle();
    let c = lan.counts();
    assert_eq!(c, [13, 13 + 20, 14 + 20]);
    lan.got_up();
    // Every skb went back: only the NICs' posted rx buffers are in use.
    let posted: usize = 6 * 256;
    assert_eq!(lan.sim.pool().stats().in_use as usize, posted);
}
