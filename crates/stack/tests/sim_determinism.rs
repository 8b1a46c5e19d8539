//! The simulator is exact and repeatable: same seed, same bytes on the wire;
//! serialisation and latency to the nanosecond; every frame accounted for;
//! each impairment does what it says.

use netpath::capture::Capture;
use netpath::drop::DropReason;
use netpath::sim::{LinkConfig, LinkId, LinkStats, Node, NodeCtx, NodeId, PortId, Sim};
use netpath::skb::Skb;
use netpath::time::{Duration, Instant};
use netpath_wire::pcap::PcapReader;

const P0: PortId = PortId(0);

/// What a test node saw arrive.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    at: Instant,
    seq: u32,
    bytes: Vec<u8>,
    touched: bool,
}

/// The bytes of frame `seq`: its number three times (so that one flipped bit
/// cannot hide which frame it was), then a pattern.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (seq as usize * 31 + i) as u8).collect();
    for copy in 0..3 {
        v[copy * 4..copy * 4 + 4].copy_from_slice(&seq.to_be_bytes());
    }
    v
}

/// The sequence number, by majority of its three copies.
fn seq_of(b: &[u8]) -> u32 {
    let mut s = [0u8; 4];
    for (i, byte) in s.iter_mut().enumerate() {
        let (x, y, z) = (b[i], b[4 + i], b[8 + i]);
        *byte = if x == y || x == z { x } else { y };
    }
    u32::from_be_bytes(s)
}

fn record(now: Instant, frame: &Skb, touched: bool) -> Got {
    Got {
        at: now,
        seq: seq_of(frame.data()),
        bytes: frame.data().to_vec(),
        touched,
    }
}

/// Sends `count` frames of `len` bytes, `burst` at a time every `interval`.
struct Sender {
    count: u32,
    burst: u32,
    interval: Duration,
    len: usize,
    next: Instant,
    sent: u32,
    got: Vec<Got>,
}

impl Sender {
    fn new(count: u32, burst: u32, interval: Duration, len: usize) -> Self {
        Sender {
            count,
            burst,
            interval,
            len,
            next: Instant::ZERO,
            sent: 0,
            got: Vec::new(),
        }
    }
    fn sent_at(&self, seq: u32) -> Instant {
        Instant::ZERO + Duration::from_nanos(self.interval.as_nanos() * u64::from(seq / self.burst))
    }
}

impl Node for Sender {
    fn receive(&mut self, now: Instant, _: PortId, frame: Skb, touched: bool, _: &mut NodeCtx<'_>) {
        self.got.push(record(now, &frame, touched));
    }
    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        if now >= self.next {
            for _ in 0..self.burst.min(self.count - self.sent) {
                let skb = ctx
                    .pool()
                    .alloc_from(64, &payload(self.sent, self.len))
                    .unwrap();
                ctx.transmit(P0, skb);
                self.sent += 1;
            }
            self.next += self.interval;
        }
        (self.sent < self.count).then_some(self.next)
    }
}

/// Records each frame and, if `reply`, sends it back with its last byte
/// inverted: the skb itself goes back, no copy.
struct Echo {
    reply: bool,
    got: Vec<Got>,
}

impl Echo {
    fn new(reply: bool) -> Self {
        Echo {
            reply,
            got: Vec::new(),
        }
    }
}

impl Node for Echo {
    fn receive(
        &mut self,
        now: Instant,
        port: PortId,
        mut frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    ) {
        self.got.push(record(now, &frame, touched));
        if self.reply {
            if let Some(last) = frame.data_mut().last_mut() {
                *last ^= 0xff;
            }
            ctx.transmit(port, frame);
        }
    }
    fn poll(&mut self, _: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
        None
    }
}

struct World {
    sim: Sim,
    a: NodeId,
    b: NodeId,
    link: LinkId,
}

fn world(seed: u64, cfg: LinkConfig, sender: Sender, echo: Echo) -> World {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(Box::new(sender));
    let b = sim.add_node(Box::new(echo));
    let link = sim.add_link(cfg, &[(a, P0), (b, P0)]).unwrap();
    World { sim, a, b, link }
}

impl World {
    fn sender(&self) -> &Sender {
        self.sim.node(self.a).unwrap()
    }
    fn echo(&self) -> &Echo {
        self.sim.node(self.b).unwrap()
    }
    fn stats(&self) -> LinkStats {
        self.sim.link_stats(self.link).unwrap()
    }
}

/// Everything at once, with a short sending queue so that it overflows.
fn rough_link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_micros(300),
        bandwidth_bps: Some(10_000_000),
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.1,
        reorder_delay: Duration::from_millis(2),
        corrupt: 0.05,
        queue_limit: 2,
        ce_mark: 0.0,
    }
}

/// Runs the rough link to the end: the two pcaps and the world.
fn rough_run(seed: u64) -> (Vec<u8>, Vec<u8>, World) {
    // 4 frames of 500 bytes every 2 ms: 400 µs each at 10 Mbit/s, so the
    // fourth of each burst finds the queue full.
    let sender = Sender::new(2000, 4, Duration::from_millis(2), 500);
    let mut w = world(seed, rough_link(), sender, Echo::new(true));
    let ca = w
        .sim
        .capture(w.link, (w.a, P0), Capture::pcap(Vec::new()).unwrap())
        .unwrap();
    let cb = w
        .sim
        .capture(w.link, (w.b, P0), Capture::pcap(Vec::new()).unwrap())
        .unwrap();
    assert!(w.sim.run_until_idle(Instant::from_secs(60)));
    let mut take = |c| {
        let cap = w.sim.take_capture(c).unwrap();
        assert_eq!(cap.stats().errors, 0);
        cap.into_writer::<Vec<u8>>().unwrap().into_inner()
    };
    let (pa, pb) = (take(ca), take(cb));
    (pa, pb, w)
}

fn records(pcap: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let r = PcapReader::new(pcap).unwrap();
    assert!(r.is_nanosecond());
    r.map(|rec| {
        let rec = rec.unwrap();
        assert_eq!(rec.orig_len as usize, rec.data.len());
        (
            u64::from(rec.ts_sec) * 1_000_000_000 + u64::from(rec.ts_frac),
            rec.data.to_vec(),
        )
    })
    .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let (a1, b1, w1) = rough_run(42);
    let (a2, b2, w2) = rough_run(42);
    let (a3, b3, _) = rough_run(43);
    assert!(a1.len() > 100_000, "{} bytes", a1.len());
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
    assert_eq!(w1.stats(), w2.stats());
    assert_eq!(w1.sim.now(), w2.sim.now());
    assert_eq!(w1.sender().got, w2.sender().got);
    assert_ne!(a1, a3);
    assert_ne!(b1, b3);

    // The taps saw every frame put on the wire and every delivery.
    let s = w1.stats();
    let (ra, rb) = (records(&a1), records(&b1));
    assert_eq!(
        (ra.len() + rb.len()) as u64,
        s.tx_frames - s.queue_dropped + s.delivered
    );
    assert!(
        ra.windows(2).all(|p| p[0].0 <= p[1].0),
        "timestamps in order"
    );
    // What the echo's tap recorded arriving is what the echo got, bytes and time.
    let echo_rx: Vec<(u64, Vec<u8>)> = w1
        .echo()
        .got
        .iter()
        .map(|g| (g.at.as_nanos(), g.bytes.clone()))
        .collect();
    assert!(echo_rx.iter().all(|r| rb.contains(r)));
}

#[test]
fn every_frame_is_accounted_for() {
    let (_, _, w) = rough_run(7);
    let s = w.stats();
    assert_eq!(s.in_flight, 0);
    assert_eq!(
        s.tx_frames,
        s.queue_dropped + s.lost + s.delivered - s.duplicated
    );
    assert_eq!(
        s.tx_frames,
        u64::from(w.sender().sent) + w.echo().got.len() as u64
    );
    assert_eq!(
        s.delivered,
        (w.sender().got.len() + w.echo().got.len()) as u64
    );
    assert_eq!(s.tx_bytes, 500 * s.tx_frames);
    let d = w.sim.drops();
    assert_eq!(d.get(DropReason::LinkLoss), s.lost);
    assert_eq!(d.get(DropReason::FullRing), s.queue_dropped);
    assert_eq!(d.total(), s.lost + s.queue_dropped);
    // Each burst's fourth frame overflows the queue of two.
    assert!(s.queue_dropped >= 500, "{s:?}");
    for (name, n) in [
        ("lost", s.lost),
        ("duplicated", s.duplicated),
        ("reordered", s.reordered),
        ("corrupted", s.corrupted),
    ] {
        assert!(n > 20, "{name}: {s:?}");
    }
    let touched = w
        .sender()
        .got
        .iter()
        .chain(&w.echo().got)
        .filter(|g| g.touched)
        .count();
    assert_eq!(touched as u64, s.corrupted);
    assert_eq!(w.sim.pool().stats().in_use, 0, "no skb leaked");
}

#[test]
fn loss_rate_matches_the_configuration() {
    let cfg = LinkConfig {
        loss: 0.2,
        ..LinkConfig::default()
    };
    let w = {
        let mut w = world(
            3,
            cfg,
            Sender::new(10_000, 1, Duration::from_micros(10), 64),
            Echo::new(false),
        );
        assert!(w.sim.run_until_idle(Instant::from_secs(10)));
        w
    };
    let s = w.stats();
    // 2000 expected, standard deviation 40.
    assert!((1800..=2200).contains(&s.lost), "{s:?}");
    assert_eq!(s.delivered + s.lost, 10_000);
    let seqs: Vec<u32> = w.echo().got.iter().map(|g| g.seq).collect();
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "no reordering, no duplicates"
    );
}

#[test]
fn serialisation_and_latency_are_exact() {
    // 1500 bytes at 12 Mbit/s is 1 ms; latency 250 µs. Bursts of three at
    // 0 and 10 ms queue behind each other.
    let cfg = LinkConfig {
        latency: Duration::from_micros(250),
        bandwidth_bps: Some(12_000_000),
        ..LinkConfig::default()
    };
    let mut w = world(
        1,
        cfg,
        Sender::new(6, 3, Duration::from_millis(10), 1500),
        Echo::new(true),
    );
    assert!(w.sim.run_until_idle(Instant::from_secs(1)));
    let at = |g: &Vec<Got>| g.iter().map(|g| g.at.as_micros()).collect::<Vec<_>>();
    assert_eq!(
        at(&w.echo().got),
        vec![1250, 2250, 3250, 11250, 12250, 13250]
    );
    // Each echo leaves at once on the other end's idle wire.
    assert_eq!(
        at(&w.sender().got),
        vec![2500, 3500, 4500, 12500, 13500, 14500]
    );
    assert_eq!(w.echo().got[0].at.as_nanos(), 1_250_000);
    assert_eq!(w.sim.now().as_nanos(), 14_500_000);

    // Latency alone, to the nanosecond, with no rate.
    let cfg = LinkConfig {
        latency: Duration::from_nanos(3_333),
        ..LinkConfig::default()
    };
    w = world(
        1,
        cfg,
        Sender::new(3, 1, Duration::from_millis(1), 100),
        Echo::new(false),
    );
    assert!(w.sim.run_until_idle(Instant::from_secs(1)));
    let ns: Vec<u64> = w.echo().got.iter().map(|g| g.at.as_nanos()).collect();
    assert_eq!(ns, vec![3_333, 1_003_333, 2_003_333]);
}

#[test]
fn reordering_delays_some_frames_and_others_overtake() {
    let cfg = LinkConfig {
        latency: Duration::from_micros(100),
        reorder: 0.3,
        reorder_delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let mut w = world(
        5,
        cfg,
        Sender::new(200, 1, Duration::from_millis(1), 64),
        Echo::new(false),
    );
    assert!(w.sim.run_until_idle(Instant::from_secs(1)));
    let got = &w.echo().got;
    assert_eq!(got.len(), 200);
    let mut delayed = 0;
    for g in got {
        let extra = g.at - (w.sender().sent_at(g.seq) + Duration::from_micros(100));
        match extra.as_nanos() {
            0 => {}
            5_000_000 => delayed += 1,
            other => panic!("frame {} arrived {other} ns late", g.seq),
        }
    }
    assert_eq!(delayed, w.stats().reordered);
    assert!(delayed > 20, "{delayed}");
    let inversions = got.windows(2).filter(|p| p[0].seq > p[1].seq).count();
    assert!(inversions > 10, "{inversions}");
    let mut seqs: Vec<u32> = got.iter().map(|g| g.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
}

#[test]
fn corruption_flips_exactly_one_bit_of_its_own_copy() {
    // Every frame duplicated: the two copies share bytes until one is
    // damaged, which must leave the other intact.
    let cfg = LinkConfig {
        duplicate: 1.0,
        corrupt: 0.3,
        ..LinkConfig::default()
    };
    let mut w = world(
        11,
        cfg,
        Sender::new(1000, 1, Duration::from_micros(50), 300),
        Echo::new(false),
    );
    assert!(w.sim.run_until_idle(Instant::from_secs(1)));
    let got = &w.echo().got;
    assert_eq!(got.len(), 2000);
    let mut touched = 0;
    let mut per_seq = vec![0u32; 1000];
    for g in got {
        per_seq[g.seq as usize] += 1;
        let flipped: u32 = payload(g.seq, 300)
            .iter()
            .zip(&g.bytes)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert_eq!(flipped, u32::from(g.touched), "frame {}", g.seq);
        touched += u64::from(g.touched);
    }
    assert!(per_seq.iter().all(|&n| n == 2));
    assert_eq!(touched, w.stats().corrupted);
    assert!((450..750).contains(&touched), "{touched}");
}

#[test]
fn a_simulated_minute_completes() {
    let cfg = LinkConfig {
        latency: Duration::from_millis(2),
        bandwidth_bps: Some(100_000_000),
        loss: 0.01,
        ..LinkConfig::default()
    };
    let mut w = world(
        9,
        cfg,
        Sender::new(60_000, 1, Duration::from_millis(1), 1000),
        Echo::new(true),
    );
    w.sim.run_for(Duration::from_secs(60));
    assert_eq!(w.sim.now(), Instant::from_secs(60));
    assert_eq!(w.sender().sent, 60_000);
    let back = w.sender().got.len();
    // About 98 % make the round trip; the last 4 ms are still on the way.
    assert!((57_000..59_900).contains(&back), "{back}");
    // Frames of the last round trip (4 ms plus serialisation) are still on
    // the way; once they land, everything adds up.
    let s = w.stats();
    assert!((1..=10).contains(&s.in_flight), "{s:?}");
    assert!(w.sim.run_until_idle(Instant::from_secs(61)));
    let s = w.stats();
    assert_eq!(s.tx_frames, s.lost + s.delivered);
    assert_eq!(s.tx_frames, 60_000 + w.echo().got.len() as u64);
}

// ---- steady state allocates nothing on the link path -----------------------

mod common;

/// Sends a 1000-byte frame every 10 µs and frees what comes back; the other
/// end bounces each frame (the skb itself) back. Records nothing.
struct Pinger {
    returned: u64,
}

impl Node for Pinger {
    fn receive(&mut self, _: Instant, _: PortId, _: Skb, _: bool, _: &mut NodeCtx<'_>) {
        self.returned += 1;
    }
    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        let mut skb = ctx.pool().alloc(1100).unwrap();
        skb.reserve(64).unwrap();
        skb.put(1000).unwrap().fill(0x5a);
        ctx.transmit(P0, skb);
        Some(now + Duration::from_micros(10))
    }
}

struct Bouncer;

impl Node for Bouncer {
    fn receive(&mut self, _: Instant, port: PortId, frame: Skb, _: bool, ctx: &mut NodeCtx<'_>) {
        ctx.transmit(port, frame);
    }
    fn poll(&mut self, _: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
        None
    }
}

#[test]
fn steady_state_link_path_allocates_nothing() {
    let mut sim = Sim::new(21);
    let a = sim.add_node(Box::new(Pinger { returned: 0 }));
    let b = sim.add_node(Box::new(Bouncer));
    let cfg = LinkConfig {
        bandwidth_bps: Some(1_000_000_000),
        queue_limit: 16,
        ..rough_link()
    };
    let link = sim.add_link(cfg, &[(a, P0), (b, P0)]).unwrap();
    // Warm-up: pool free lists, event slab and heap, queues reach their
    // peak size (the run is seeded, so the peak is the same every time).
    sim.run_for(Duration::from_millis(500));
    let before = sim.link_stats(link).unwrap();
    let heap_before = sim.pool().stats().heap_allocs;
    let ((), allocs) = common::counted(|| sim.run_for(Duration::from_millis(200)));
    let after = sim.link_stats(link).unwrap();
    let frames = after.tx_frames - before.tx_frames;
    assert!(frames > 20_000, "{frames}");
    for (was, is) in [
        (before.corrupted, after.corrupted),
        (before.duplicated, after.duplicated),
        (before.reordered, after.reordered),
        (before.lost, after.lost),
    ] {
        assert!(is > was + 100, "{after:?}");
    }
    assert!(sim.node::<Pinger>(a).unwrap().returned > 5_000);
    assert_eq!(sim.pool().stats().heap_allocs, heap_before);
    assert_eq!(allocs, 0, "{allocs} allocations for {frames} frames");
}
