//! FIB longest-prefix match (`net/ipv4/fib_trie.c`): a `Fib<u32>` of
//! 1,000,000 random prefixes (random addresses, lengths 8..=32, seeded),
//! random-address lookups per second over a batch of 1024 (the same batch
//! each iteration, so cache-warm; and "cold", a fresh batch from 4M
//! addresses each iteration), and the cost of
//! removing and re-inserting a prefix in the full table. The build time,
//! distinct prefix count and `memory_bytes` are printed once.
//!
//! `cargo bench --bench fib`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use netpath::ipv4::fib::Fib;
use std::net::Ipv4Addr;
use std::time::Instant;

const PREFIXES: usize = 1_000_000;
const BATCH: usize = 1024;
const COLD: usize = 1 << 22;

/// xorshift64*: seeded, no `rand` crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn addr(&mut self) -> Ipv4Addr {
        Ipv4Addr::from((self.next() >> 32) as u32)
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_f1b0_0000_0001);
    let prefixes: Vec<(Ipv4Addr, u8)> = (0..PREFIXES)
        .map(|_| (rng.addr(), 8 + (rng.next() % 25) as u8))
        .collect();
    let t = Instant::now();
    let mut fib = Fib::new();
    for (k, &(a, l)) in prefixes.iter().enumerate() {
        fib.insert(a, l, k as u32);
    }
    let build = t.elapsed();
    eprintln!(
        "fib: {} inserts ({} distinct prefixes) in {:.3} s ({:.0} ns/insert), memory_bytes {} ({:.1} MiB)",
        PREFIXES,
        fib.len(),
        build.as_secs_f64(),
        build.as_nanos() as f64 / PREFIXES as f64,
        fib.memory_bytes(),
        fib.memory_bytes() as f64 / (1024.0 * 1024.0)
    );

    let addrs: Vec<Ipv4Addr> = (0..BATCH).map(|_| rng.addr()).collect();
    let hits = addrs.iter().filter(|a| fib.lookup(**a).is_some()).count();
    eprintln!("fib: {hits}/{BATCH} random addresses match a prefix");

    let mut g = c.benchmark_group("fib");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("lookup_random_1m", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in black_box(&addrs) {
                if let Some((_, l, v)) = fib.lookup(a) {
                    sum = sum.wrapping_add(*v).wrapping_add(u32::from(l));
                }
            }
            sum
        })
    });
    // Cold: each batch is the next 1024 of 4M addresses, so the lines a
    // batch touches are not left in cache by the previous iterations.
    let cold: Vec<Ipv4Addr> = (0..COLD).map(|_| rng.addr()).collect();
    let mut off = 0;
    g.bench_function("lookup_random_1m_cold", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in black_box(&cold[off..off + BATCH]) {
                if let Some((_, l, v)) = fib.lookup(a) {
                    sum = sum.wrapping_add(*v).wrapping_add(u32::from(l));
                }
            }
            off = (off + BATCH) % COLD;
            sum
        })
    });
    g.throughput(Throughput::Elements(1));
    let mut k = 0;
    g.bench_function("remove_insert_1m", |b| {
        b.iter(|| {
            let (a, l) = prefixes[k % PREFIXES];
            k += 7919;
            if let Some(v) = fib.remove(a, l) {
                fib.insert(a, l, v);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
