//! sk_buff costs: alloc + free from a warm pool, the egress header pushes and
//! ingress pulls, and a clone (tap) + free.
//!
//! `cargo bench --bench skb`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use netpath::skb::SkbPool;

fn bench(c: &mut Criterion) {
    let pool = SkbPool::default();
    pool.prefill(64);
    c.bench_function("skb/alloc_free", |b| {
        b.iter(|| {
            let skb = pool.alloc(black_box(1600)).unwrap();
            black_box(&skb);
        })
    });
    let payload = [0x5au8; 1448];
    c.bench_function("skb/alloc_put1448_push3_pull3_free", |b| {
        b.iter(|| {
            let mut skb = pool.alloc(2048).unwrap();
            skb.reserve(128).unwrap();
            skb.put_slice(black_box(&payload)).unwrap();
            skb.push(32).unwrap();
            skb.reset_transport_header();
            skb.push(20).unwrap();
            skb.reset_network_header();
            skb.push(14).unwrap();
            skb.reset_mac_header();
            skb.pull(14).unwrap();
            skb.pull(20).unwrap();
            skb.pull(32).unwrap();
            black_box(skb.len())
        })
    });
    let skb = pool.alloc_from(128, &payload).unwrap();
    c.bench_function("skb/clone_free", |b| {
        b.iter(|| {
            let c = black_box(&skb).clone();
            black_box(c.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
