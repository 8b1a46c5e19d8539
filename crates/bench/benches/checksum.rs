//! Internet checksum throughput for 64 B, 1500 B and 64 KiB buffers:
//! the fast path against the byte-pair reference.
//!
//! `cargo bench --bench checksum`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netpath_wire::checksum;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [64usize, 1500, 65536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("fast", size), &data, |b, d| {
            b.iter(|| checksum::checksum(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("reference", size), &data, |b, d| {
            b.iter(|| checksum::sum_reference(black_box(d)))
        });
    }
    g.finish();
    c.bench_function("checksum/update16", |b| {
        b.iter(|| checksum::update16(black_box(0x1234), black_box(0x4000), black_box(0x3f00)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
