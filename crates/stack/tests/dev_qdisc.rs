//! Qdiscs at work on a device of a simulated host: what reaches the wire,
//! in which order and at which rate.

use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapSink};
use netpath::dev::IfIndex;
use netpath::sched::fq_codel::FqCodel;
use netpath::sched::tbf::Tbf;
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::skb::Skb;
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::EthernetAddress;

const ETH_P_TEST: u16 = 0x88b5;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, n])
}

fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + len);
    f.extend_from_slice(mac(2).as_bytes());
    f.extend_from_slice(mac(1).as_bytes());
    f.extend_from_slice(&ETH_P_TEST.to_be_bytes());
    f.push(tag);
    f.resize(14 + len, 0xab);
    f
}

struct Two {
    sim: Sim,
    a: NodeId,
    b: NodeId,
    nic_a: IfIndex,
    tap: netpath::dev::taps::TapId,
}

fn two(cfg_a: NicConfig) -> Two {
    let mut sim = Sim::new(3);
    let mut sa = Stack::with_pool(sim.pool().clone());
    let nic_a = sa.add_nic("eth0", mac(1), cfg_a).unwrap();
    sa.set_up(nic_a, true).unwrap();
    let mut sb = Stack::with_pool(sim.pool().clone());
    let nic_b = sb.add_nic("eth0", mac(2), NicConfig::default()).unwrap();
    sb.set_up(nic_b, true).unwrap();
    let tap = sb.add_tap(Tap::protocol(None, ETH_P_TEST, TapSink::queue(100_000)));
    let mut ha = SimHost::new(sa);
    ha.cable(PortId(0), nic_a);
    let mut hb = SimHost::new(sb);
    hb.cable(PortId(0), nic_b);
    let a = sim.add_node(Box::new(ha));
    let b = sim.add_node(Box::new(hb));
    sim.add_link(LinkConfig::default(), &[(a, PortId(0)), (b, PortId(0))])
        .unwrap();
    Two {
        sim,
        a,
        b,
        nic_a,
        tap,
    }
}

impl Two {
    fn send(&mut self, len: usize, tag: u8, priority: u32, hash: u32) {
        let nic = self.nic_a;
        self.sim
            .with_node(self.a, |h: &mut SimHost, now| {
                let mut skb = h.stack.pool().alloc_from(128, &frame(len, tag)).unwrap();
                skb.meta.egress_dev = Some(nic);
                skb.meta.priority = priority;
                skb.meta.hash = hash;
                let _ = h.stack.dev_queue_xmit(now, skb);
            })
            .unwrap();
    }

    fn received(&mut self) -> Vec<Skb> {
        let tap = self.tap;
        self.sim
            .with_node(self.b, |h: &mut SimHost, _| {
                std::iter::from_fn(|| h.stack.tap_recv(tap)).collect()
            })
            .unwrap()
    }

    fn set_qdisc(&mut self, q: Box<dyn netpath::sched::Qdisc>) {
        let nic = self.nic_a;
        self.sim
            .with_node(self.a, |h: &mut SimHost, _| {
                h.stack.set_qdisc(nic, q).unwrap()
            })
            .unwrap();
    }
}

#[test]
fn pfifo_fast_sends_band_0_then_1_then_2() {
    // One tx descriptor on a slow NIC: everything after the first frame
    // waits in the qdisc and leaves in band order.
    let cfg = NicConfig {
        tx_ring: 1,
        speed_bps: Some(100_000_000),
        ..NicConfig::default()
    };
    let mut t = two(cfg);
    t.send(100, 0, 0, 0); // on the wire first
                          // TC_PRIO_BESTEFFORT 0 -> band 1, TC_PRIO_FILLER 1 -> band 2,
                          // TC_PRIO_INTERACTIVE 6 -> band 0, TC_PRIO_BULK 2 -> band 2.
    let order = [(11, 0), (21, 1), (1, 6), (12, 0), (22, 2), (2, 6)];
    for (tag, prio) in order {
        t.send(100, tag, prio, 0);
    }
    t.sim.run_until(Instant::from_millis(10));
    let tags: Vec<u8> = t.received().iter().map(|s| s.data()[0]).collect();
    assert_eq!(tags, vec![0, 1, 2, 11, 12, 21, 22]);
    let out = t
        .sim
        .node::<SimHost>(t.a)
        .unwrap()
        .stack
        .qdisc_show(t.nic_a)
        .unwrap();
    assert!(out.contains("Sent 798 bytes 7 pkt (dropped 0"), "{out}");
}

#[test]
fn tbf_holds_its_rate_on_a_device_over_ten_seconds() {
    let mut t = two(NicConfig::default());
    // 1 Mbit/s, 10 kB burst, room for everything we queue.
    t.set_qdisc(Box::new(Tbf::new(125_000, 10_000, 3_000_000).unwrap()));
    for i in 0..1500u32 {
        t.send(1000, i as u8, 0, 0);
    }
    let horizon = Instant::from_secs(10);
    t.sim.run_until(horizon);
    let got = t.received();
    let bytes: u64 = got
        .iter()
        .filter(|s| s.meta.tstamp().is_some_and(|ts| ts <= horizon))
        .map(|s| (s.len() + 14) as u64)
        .sum();
    // burst + rate x 10 s, to within 2 %.
    let expected = 10_000.0 + 125_000.0 * 10.0;
    let err = (bytes as f64 - expected).abs() / expected;
    assert!(err < 0.02, "{bytes} bytes in 10 s, expected {expected}");
    let q = t
        .sim
        .node::<SimHost>(t.a)
        .unwrap()
        .stack
        .dev(t.nic_a)
        .unwrap()
        .qdisc()
        .unwrap()
        .stats();
    assert!(q.overlimits > 0);
    assert_eq!(q.drops, 0);
    assert_eq!(q.packets as usize + q.qlen as usize, 1500);
}

#[test]
fn fq_codel_keeps_a_sparse_flow_fast_beside_a_bulk_one() {
    // A 10 Mbit/s NIC with a tx ring of 2: the queue builds in the qdisc.
    let cfg = NicConfig {
        tx_ring: 2,
        speed_bps: Some(10_000_000),
        ..NicConfig::default()
    };
    let mut t = two(cfg);
    t.set_qdisc(Box::new(FqCodel::new(1514)));
    // Flow hashes as skb_get_hash gives them (fq_codel scales the 32-bit
    // hash to a queue, so they must differ in the high bits).
    // A bulk flow dumps 400 full frames (~0.5 s of the link) at once...
    for i in 0..400u32 {
        t.send(1500, (i % 100) as u8, 0, 0xb01c_0000);
    }
    // ...and a sparse flow sends one small frame every 50 ms.
    let mut sent_at = Vec::new();
    for k in 0..8u64 {
        let at = Instant::from_millis(5 + 50 * k);
        t.sim.run_until(at);
        t.send(100, 200 + k as u8, 0, 0x5a5e_0000);
        sent_at.push(at);
    }
    t.sim.run_until(Instant::from_secs(2));
    let got = t.received();
    let sparse: Vec<u64> = got
        .iter()
        .filter(|s| s.data()[0] >= 200)
        .map(|s| s.meta.tstamp().unwrap().as_nanos())
        .collect();
    assert_eq!(sparse.len(), 8);
    for (arr, sent) in sparse.iter().zip(&sent_at) {
        let delay = arr - sent.as_nanos();
        // At most the frame in flight plus the one on the ring: ~2.5 ms.
        assert!(delay < 3_000_000, "sparse delay {delay} ns");
    }
    let last_bulk = got
        .iter()
        .filter(|s| s.data()[0] < 200)
        .map(|s| s.meta.tstamp().unwrap().as_nanos())
        .max()
        .unwrap();
    assert!(last_bulk > 300_000_000, "the bulk flow waited: {last_bulk}");
    let x = t.sim.node::<SimHost>(t.a).unwrap();
    let q = x.stack.dev(t.nic_a).unwrap().qdisc().unwrap().stats();
    assert_eq!(q.qlen, 0);
    assert_eq!(
        q.packets + q.drops,
        408,
        "every packet sent or dropped (CoDel)"
    );
}
