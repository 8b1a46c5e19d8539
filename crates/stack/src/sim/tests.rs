//! The world's bookkeeping: fan-out, errors, deadlines, captures.

use super::*;
use crate::capture::Capture;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::time::{Duration, Instant};

/// Records what arrives and when it is polled; asks for the deadlines in
/// `plan`, one per poll, in order.
#[derive(Default)]
struct Recorder {
    got: Vec<(Instant, PortId, Vec<u8>, u32)>,
    polls: Vec<Instant>,
    plan: Vec<Instant>,
    /// On receive, ask to be polled at once.
    poll_on_receive: bool,
}

impl Node for Recorder {
    fn receive(&mut self, now: Instant, port: PortId, frame: Skb, _: bool, ctx: &mut NodeCtx<'_>) {
        self.got
            .push((now, port, frame.data().to_vec(), frame.meta.mark));
        if self.poll_on_receive {
            ctx.poll_at(now);
        }
    }
    fn poll(&mut self, now: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
        self.polls.push(now);
        (!self.plan.is_empty()).then(|| self.plan.remove(0))
    }
}

struct Ticker;
impl Node for Ticker {
    fn receive(&mut self, _: Instant, _: PortId, _: Skb, _: bool, _: &mut NodeCtx<'_>) {}
    fn poll(&mut self, now: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
        Some(now + Duration::from_millis(1))
    }
}

fn frame(sim: &Sim, bytes: &[u8]) -> Skb {
    sim.pool().alloc_from(64, bytes).unwrap()
}

const P0: PortId = PortId(0);

#[test]
fn hub_delivers_to_every_other_end_after_the_latency() {
    let mut sim = Sim::new(1);
    let n: Vec<NodeId> = (0..3)
        .map(|_| sim.add_node(Box::<Recorder>::default()))
        .collect();
    let cfg = LinkConfig {
        latency: Duration::from_micros(7),
        ..LinkConfig::default()
    };
    let hub = sim
        .add_link(cfg, &[(n[0], P0), (n[1], P0), (n[2], PortId(3))])
        .unwrap();
    sim.run_until(Instant::from_micros(10));
    let mut skb = frame(&sim, &[1, 2, 3, 4]);
    skb.meta.mark = 7;
    sim.inject(n[0], P0, skb);
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let at = Instant::from_micros(17);
    assert_eq!(sim.now(), at);
    assert!(sim.node::<Recorder>(n[0]).unwrap().got.is_empty());
    let r1 = &sim.node::<Recorder>(n[1]).unwrap().got;
    // The mark did not cross the wire: only bytes do.
    assert_eq!(r1, &vec![(at, P0, vec![1, 2, 3, 4], 0)]);
    let r2 = &sim.node::<Recorder>(n[2]).unwrap().got;
    assert_eq!(r2, &vec![(at, PortId(3), vec![1, 2, 3, 4], 0)]);
    let s = sim.link_stats(hub).unwrap();
    assert_eq!(
        (s.tx_frames, s.tx_bytes, s.delivered, s.in_flight),
        (1, 4, 2, 0)
    );
    assert_eq!(sim.pool().stats().in_use, 0);
}

#[test]
fn unattached_port_drops_are_counted() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::<Recorder>::default());
    let skb = frame(&sim, &[9; 60]);
    sim.inject(a, PortId(5), skb);
    assert_eq!(sim.drops().get(DropReason::DevReady), 1);
    assert_eq!(sim.drops().total(), 1);
    assert_eq!(sim.pool().stats().in_use, 0);
}

#[test]
fn add_link_refuses_bad_topologies_and_leaves_no_trace() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::<Recorder>::default());
    let b = sim.add_node(Box::<Recorder>::default());
    let ok = LinkConfig::default();
    assert_eq!(
        sim.add_link(ok, &[(a, P0)]),
        Err(SimError::TooFewEnds { ends: 1 })
    );
    assert_eq!(
        sim.add_link(ok, &[(a, P0), (NodeId(9), P0)]),
        Err(SimError::UnknownNode(NodeId(9)))
    );
    assert_eq!(
        sim.add_link(ok, &[(a, P0), (b, P0), (a, P0)]),
        Err(SimError::PortInUse { node: a, port: P0 })
    );
    let bad = LinkConfig { loss: 2.0, ..ok };
    assert!(matches!(
        sim.add_link(bad, &[(a, P0), (b, P0)]),
        Err(SimError::Config(LinkConfigError::Probability {
            field: "loss",
            ..
        }))
    ));
    let l = sim.add_link(ok, &[(a, P0), (b, P0)]).unwrap();
    assert_eq!(l.index(), 0);
    assert_eq!(
        sim.add_link(ok, &[(b, PortId(1)), (b, P0)]),
        Err(SimError::PortInUse { node: b, port: P0 })
    );
    // A node may have two ports on one link (a loop).
    assert!(sim.add_link(ok, &[(b, PortId(1)), (b, PortId(2))]).is_ok());
    assert!(sim.set_link_config(l, bad).is_err());
    assert_eq!(sim.link_config(l), Some(ok));
    assert_eq!(sim.link_stats(LinkId(7)), None);
}

#[test]
fn deadlines_run_in_order_and_time_moves_on() {
    let mut sim = Sim::new(1);
    let rec = Recorder {
        // 10 ns, then a past deadline (run 1 ns later), then none.
        plan: vec![Instant::from_nanos(10), Instant::from_nanos(3)],
        ..Recorder::default()
    };
    let a = sim.add_node(Box::new(rec));
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let polls = &sim.node::<Recorder>(a).unwrap().polls;
    let ns: Vec<u64> = polls.iter().map(|t| t.as_nanos()).collect();
    assert_eq!(ns, vec![0, 10, 11]);
    assert_eq!(sim.now(), Instant::from_nanos(11));

    // run_until moves the clock even with nothing to do.
    sim.run_until(Instant::from_millis(3));
    assert_eq!(sim.now(), Instant::from_millis(3));
    sim.run_for(Duration::from_millis(2));
    assert_eq!(sim.now(), Instant::from_millis(5));
}

#[test]
fn an_earlier_request_replaces_a_deadline_and_the_old_one_goes_stale() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::new(Recorder {
        plan: vec![Instant::from_millis(100)],
        poll_on_receive: true,
        ..Recorder::default()
    }));
    let b = sim.add_node(Box::<Recorder>::default());
    let cfg = LinkConfig {
        latency: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    sim.add_link(cfg, &[(a, P0), (b, P0)]).unwrap();
    sim.run_until(Instant::ZERO);
    let skb = frame(&sim, &[1]);
    sim.inject(b, P0, skb);
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let polls = &sim.node::<Recorder>(a).unwrap().polls;
    // Polled at start, on the frame's arrival; never at 100 ms.
    assert_eq!(polls, &vec![Instant::ZERO, Instant::from_millis(1)]);
    assert_eq!(sim.now(), Instant::from_millis(1));
}

#[test]
fn run_until_idle_is_bounded_and_steps_are_fifo() {
    let mut sim = Sim::new(1);
    sim.add_node(Box::new(Ticker));
    assert!(!sim.run_until_idle(Instant::from_millis(5)));
    assert_eq!(sim.now(), Instant::from_millis(5));
    assert_eq!(sim.events_run(), 6, "polls at 0, 1, …, 5 ms");
    assert_eq!(sim.next_event_time(), Some(Instant::from_millis(6)));
    assert_eq!(sim.step(), Some(Instant::from_millis(6)));
    assert!(!sim.is_idle());
}

#[test]
fn nodes_come_back_as_their_type() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::<Recorder>::default());
    let t = sim.add_node(Box::new(Ticker));
    assert!(sim.node::<Recorder>(a).is_some());
    assert!(sim.node::<Ticker>(a).is_none());
    assert!(sim.node::<Ticker>(t).is_some());
    assert!(sim.node::<Recorder>(NodeId(5)).is_none());
    sim.node_mut::<Recorder>(a)
        .unwrap()
        .polls
        .push(Instant::from_secs(9));
    assert_eq!(sim.node::<Recorder>(a).unwrap().polls.len(), 1);
}

#[test]
fn captures_attach_to_link_ends_only() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::<Recorder>::default());
    let b = sim.add_node(Box::<Recorder>::default());
    let l = sim
        .add_link(LinkConfig::default(), &[(a, P0), (b, P0)])
        .unwrap();
    let cap = || Capture::pcap(Vec::new()).unwrap();
    assert_eq!(
        sim.capture(l, (a, PortId(1)), cap()).unwrap_err(),
        SimError::NotAnEnd {
            link: l,
            node: a,
            port: PortId(1)
        }
    );
    assert_eq!(
        sim.capture(LinkId(3), (a, P0), cap()).unwrap_err(),
        SimError::UnknownLink(LinkId(3))
    );
    let id = sim.capture(l, (a, P0), cap()).unwrap();
    assert!(matches!(
        sim.capture(l, (a, P0), cap()),
        Err(SimError::AlreadyCaptured { .. })
    ));
    let (tx, rx) = (frame(&sim, &[1; 20]), frame(&sim, &[2; 30]));
    sim.inject(a, P0, tx);
    sim.inject(b, P0, rx);
    sim.run_until(Instant::from_millis(1));
    assert_eq!(sim.capture_ref(id).unwrap().stats().packets, 2);
    assert_eq!(sim.capture_ref(id).unwrap().stats().bytes, 50);
    let taken = sim.take_capture(id).unwrap();
    assert!(sim.take_capture(id).is_none());
    // Detached: the end may be captured again, and the old one sees no more.
    let id2 = sim.capture(l, (a, P0), cap()).unwrap();
    let tx = frame(&sim, &[3; 10]);
    sim.inject(a, P0, tx);
    assert_eq!(taken.stats().packets, 2);
    assert_eq!(sim.capture_ref(id2).unwrap().stats().packets, 1);
}

#[test]
fn extreme_link_configs_saturate_instead_of_overflowing() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::<Recorder>::default());
    let b = sim.add_node(Box::<Recorder>::default());
    let cfg = LinkConfig {
        latency: Duration::MAX,
        bandwidth_bps: Some(1),
        reorder: 1.0,
        reorder_delay: Duration::MAX,
        queue_limit: usize::MAX,
        ..LinkConfig::default()
    };
    let l = sim.add_link(cfg, &[(a, P0), (b, P0)]).unwrap();
    // 1 bit/s: a 64-byte frame takes 512 s to send, the next queues behind.
    assert_eq!(cfg.serialisation_delay(64), Duration::from_secs(512));
    assert_eq!(
        cfg.serialisation_delay(usize::MAX).as_nanos(),
        u64::MAX,
        "saturates"
    );
    let cap = sim
        .capture(l, (b, P0), Capture::pcap(Vec::new()).unwrap())
        .unwrap();
    sim.run_until(Instant::ZERO);
    for _ in 0..3 {
        let skb = frame(&sim, &[7; 64]);
        sim.inject(a, P0, skb);
    }
    assert_eq!(sim.next_event_time(), Some(Instant::from_nanos(u64::MAX)));
    assert!(sim.run_until_idle(Instant::from_nanos(u64::MAX)));
    assert_eq!(sim.now(), Instant::from_nanos(u64::MAX));
    let got = &sim.node::<Recorder>(b).unwrap().got;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.0 == Instant::from_nanos(u64::MAX)));
    let s = sim.link_stats(l).unwrap();
    assert_eq!(
        (s.tx_frames, s.delivered, s.reordered, s.in_flight),
        (3, 3, 3, 0)
    );
    // Past pcap's 32-bit seconds: counted as capture errors, not a panic.
    let c = sim.capture_ref(cap).unwrap().stats();
    assert_eq!((c.packets, c.errors), (0, 3));
    assert_eq!(sim.pool().stats().in_use, 0);
    // A node asking to be polled at the end of time from there.
    sim.run_for(Duration::MAX);
    assert_eq!(sim.now(), Instant::from_nanos(u64::MAX));
}

/// Lazy FCS: a frame sent with its FCS pending reaches a node that wants
/// the bytes with the FCS worked out, and a capture records it worked out;
/// a node that takes pending frames gets it still pending, untouched.
#[test]
fn pending_fcs_is_worked_out_for_readers_only() {
    struct Lazy(Vec<(bool, Vec<u8>)>);
    impl Node for Lazy {
        fn receive(&mut self, _: Instant, _: PortId, f: Skb, _: bool, _: &mut NodeCtx<'_>) {
            self.0.push((f.meta.fcs_pending, f.data().to_vec()));
        }
        fn poll(&mut self, _: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
            None
        }
        fn lazy_fcs(&self) -> bool {
            true
        }
    }
    let mut sim = Sim::new(1);
    let tx = sim.add_node(Box::<Recorder>::default());
    let eager = sim.add_node(Box::<Recorder>::default());
    let lazy = sim.add_node(Box::new(Lazy(Vec::new())));
    let hub = sim
        .add_link(LinkConfig::default(), &[(tx, P0), (eager, P0), (lazy, P0)])
        .unwrap();
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct W(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    sim.capture(hub, (tx, P0), Capture::pcap(W(buf.clone())).unwrap())
        .unwrap();
    let body: Vec<u8> = (0..60u8).collect();
    let mut bytes = body.clone();
    bytes.extend_from_slice(&[0; 4]);
    let mut skb = frame(&sim, &bytes);
    skb.meta.fcs_pending = true;
    sim.inject(tx, P0, skb);
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let mut want = body.clone();
    want.extend_from_slice(&[0; 4]);
    netpath_wire::ethernet::fcs::append(&mut want, body.len()).unwrap();
    // The capture at the sender's end needed the bytes: worked out there,
    // in the shared buffer, so every receiver sees them.
    let got = &sim.node::<Recorder>(eager).unwrap().got;
    assert_eq!(got[0].2, want);
    let pcap = buf.lock().unwrap().clone();
    assert_eq!(&pcap[pcap.len() - want.len()..], &want[..]);
    let l = &sim.node::<Lazy>(lazy).unwrap().0;
    assert_eq!(l.len(), 1);
    // Without a capture, the lazy node gets the frame as sent.
    let mut skb = frame(&sim, &bytes);
    skb.meta.fcs_pending = true;
    let hub2 = sim
        .add_link(LinkConfig::default(), &[(tx, PortId(1)), (lazy, PortId(1))])
        .unwrap();
    let _ = hub2;
    sim.inject(tx, PortId(1), skb);
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let l = &sim.node::<Lazy>(lazy).unwrap().0;
    assert_eq!(l[1], (true, bytes.clone()));
    // And a node that reads bytes gets them worked out.
    let eager2 = sim.add_node(Box::<Recorder>::default());
    sim.add_link(LinkConfig::default(), &[(tx, PortId(2)), (eager2, P0)])
        .unwrap();
    let mut skb = frame(&sim, &bytes);
    skb.meta.fcs_pending = true;
    sim.inject(tx, PortId(2), skb);
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    assert_eq!(sim.node::<Recorder>(eager2).unwrap().got[0].2, want);
}
