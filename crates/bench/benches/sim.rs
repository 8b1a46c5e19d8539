//! The simulated wire: cost per frame of moving 1514-byte frames between two
//! nodes over a link (skb handed over, never copied), on a perfect link and
//! on one with every impairment. Includes building each frame (alloc + put)
//! and freeing it at the sink.
//!
//! `cargo bench --bench sim`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpath::sim::{LinkConfig, Node, NodeCtx, PortId, Sim};
use netpath::skb::Skb;
use netpath::time::{Duration, Instant};

const FRAMES: u64 = 10_000;

struct Source {
    left: u64,
}

impl Node for Source {
    fn receive(&mut self, _: Instant, _: PortId, _: Skb, _: bool, _: &mut NodeCtx<'_>) {}
    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        // A burst of 32 frames per poll, as a NAPI-sized batch.
        for _ in 0..32 {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            let Ok(mut skb) = ctx.pool().alloc(2048) else {
                return None;
            };
            if skb.reserve(64).is_err() || skb.put(1514).is_err() {
                return None;
            }
            ctx.transmit(PortId(0), skb);
        }
        Some(now + Duration::from_micros(10))
    }
}

#[derive(Default)]
struct Sink {
    frames: u64,
}

impl Node for Sink {
    fn receive(&mut self, _: Instant, _: PortId, frame: Skb, _: bool, _: &mut NodeCtx<'_>) {
        self.frames += 1;
        drop(frame);
    }
    fn poll(&mut self, _: Instant, _: &mut NodeCtx<'_>) -> Option<Instant> {
        None
    }
}

fn run(cfg: LinkConfig) -> u64 {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::new(Source { left: FRAMES }));
    let b = sim.add_node(Box::new(Sink::default()));
    sim.add_link(cfg, &[(a, PortId(0)), (b, PortId(0))])
        .unwrap();
    sim.run_until_idle(Instant::from_secs(3600));
    sim.node::<Sink>(b).map_or(0, |s| s.frames)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_link");
    g.throughput(Throughput::Elements(FRAMES));
    g.bench_function("perfect_10k_frames", |b| {
        b.iter(|| assert_eq!(run(LinkConfig::default()), FRAMES))
    });
    let lossy = LinkConfig {
        latency: Duration::from_millis(1),
        bandwidth_bps: Some(10_000_000_000),
        loss: 0.01,
        duplicate: 0.01,
        reorder: 0.01,
        reorder_delay: Duration::from_micros(50),
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    g.bench_function("impaired_10k_frames", |b| b.iter(|| run(lossy)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
