//! The device layer's receive path: frames per second through the NIC
//! ("DMA" into the ring, interrupt), NAPI (bottom half, skb built, ring
//! refilled) and `netif_receive_skb` to an L3 drop (no IPv4 handler yet:
//! `UNHANDLED_PROTO`), on one core, 64 frames per softirq run; and bridge
//! forwarding of 64-byte frames (port to port through the FDB, the egress
//! qdisc and the tx ring).
//!
//! `cargo bench --bench dev`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpath::dev::nic::NicConfig;
use netpath::skb::{Skb, SkbPool};
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, EthernetAddress};

const BATCH: usize = 64;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 0, n])
}

/// A 64-byte frame (60 + FCS) from `src` to `dst`, IPv4 ethertype.
fn wire_frame(dst: EthernetAddress, src: EthernetAddress) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.resize(60, 0x45);
    f.extend_from_slice(&[0; 4]);
    fcs::append(&mut f, 60).unwrap();
    f
}

fn frames(pool: &SkbPool, bytes: &[u8], out: &mut Vec<Skb>) {
    for _ in 0..BATCH {
        out.push(pool.alloc_from(0, bytes).unwrap());
    }
}

fn bench_rx(c: &mut Criterion) {
    let mut s = Stack::new();
    let nic = s.add_nic("eth0", mac(1), NicConfig::default()).unwrap();
    s.set_up(nic, true).unwrap();
    let bytes = wire_frame(mac(1), mac(2));
    let pool = s.pool().clone();
    pool.prefill(1024);
    let mut batch = Vec::with_capacity(BATCH);
    let mut t = 0u64;
    let mut g = c.benchmark_group("dev");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("rx_nic_napi_netif_receive_skb_to_l3_drop_64B", |b| {
        b.iter(|| {
            frames(&pool, &bytes, &mut batch);
            t += 1000;
            let now = Instant::from_nanos(t);
            for skb in batch.drain(..) {
                s.nic_receive(now, nic, skb, false).unwrap();
            }
            s.poll(now);
        })
    });
    g.finish();
}

fn bench_bridge(c: &mut Criterion) {
    let mut s = Stack::new();
    let br = s.add_bridge("br0", mac(10)).unwrap();
    let mut ports = Vec::new();
    for i in 0..2u8 {
        let n = s
            .add_nic(&format!("eth{i}"), mac(20 + i), NicConfig::default())
            .unwrap();
        s.set_up(n, true).unwrap();
        s.set_promisc(n, true).unwrap();
        s.bridge_add_port(br, n).unwrap();
        ports.push(n);
    }
    s.set_up(br, true).unwrap();
    let pool = s.pool().clone();
    pool.prefill(1024);
    // Teach the bridge where mac(2) is: one frame from it on eth1.
    let learn = wire_frame(mac(1), mac(2));
    let mut t = 1u64;
    s.nic_receive(
        Instant::from_nanos(t),
        ports[1],
        pool.alloc_from(0, &learn).unwrap(),
        false,
    )
    .unwrap();
    s.poll(Instant::from_nanos(t));
    let bytes = wire_frame(mac(2), mac(1));
    let mut batch = Vec::with_capacity(BATCH);
    let mut sent = Vec::with_capacity(BATCH * 2);
    let mut g = c.benchmark_group("dev");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("bridge_forward_64B", |b| {
        b.iter(|| {
            frames(&pool, &bytes, &mut batch);
            t += 1000;
            let now = Instant::from_nanos(t);
            for skb in batch.drain(..) {
                s.nic_receive(now, ports[0], skb, false).unwrap();
            }
            s.poll(now);
            s.nic_take_sent(ports[1], &mut sent);
            s.nic_take_sent(ports[0], &mut sent);
            assert!(sent.len() >= BATCH);
            sent.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, bench_rx, bench_bridge);
criterion_main!(benches);
