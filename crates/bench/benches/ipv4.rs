//! IPv4 forwarding: 64-byte packets through a netpath router on simulated
//! NICs, one core — NIC, NAPI, `netif_receive_skb`, `ip_rcv`, route lookup,
//! `ip_forward` (TTL, checksum update), `ip_output`, neighbour (cached
//! header), `dev_queue_xmit`, pfifo_fast, tx ring. The FIB holds the
//! connected routes plus 10,000 /24s, so the lookup is not trivially small.
//!
//! `cargo bench --bench ipv4`

use core::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpath::dev::nic::NicConfig;
use netpath::ipv4::route::Route;
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, EthernetAddress};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};

const BATCH: usize = 64;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 0, n])
}

/// A 64-byte frame (60 + FCS): Ethernet, IPv4 (UDP protocol), 26 bytes of payload.
fn frame(dst_mac: EthernetAddress, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(dst_mac.as_bytes());
    f[6..12].copy_from_slice(mac(99).as_bytes());
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::UDP,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        payload_len: 26,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    f.extend_from_slice(&[0; 4]);
    fcs::append(&mut f, 60).unwrap();
    f
}

fn bench(c: &mut Criterion) {
    let mut s = Stack::new();
    let e0 = s.add_nic("eth0", mac(1), NicConfig::default()).unwrap();
    let e1 = s.add_nic("eth1", mac(2), NicConfig::default()).unwrap();
    for e in [e0, e1] {
        s.set_up(e, true).unwrap();
    }
    s.ip_addr_add(e0, Ipv4Addr::new(192, 0, 2, 254), 24)
        .unwrap();
    s.ip_addr_add(e1, Ipv4Addr::new(198, 51, 100, 254), 24)
        .unwrap();
    s.set_ip_forward(true);
    let gw = Ipv4Addr::new(198, 51, 100, 1);
    s.neigh_add_static(e1, gw, mac(50)).unwrap();
    for i in 0..10_000u32 {
        let net = Ipv4Addr::from(0x0a00_0000 | (i << 8));
        s.route_add(Route::unicast(net, 24, Some(gw), Some(e1)))
            .unwrap();
    }
    let bytes = frame(
        mac(1),
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(10, 0, 77, 9),
    );
    let pool = s.pool().clone();
    pool.prefill(1024);
    let mut batch = Vec::with_capacity(BATCH);
    let mut sent = Vec::with_capacity(BATCH);
    let mut t = 0u64;
    let mut g = c.benchmark_group("ipv4");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("forward_64B", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                batch.push(pool.alloc_from(0, &bytes).unwrap());
            }
            t += 1000;
            let now = Instant::from_nanos(t);
            for skb in batch.drain(..) {
                s.nic_receive(now, e0, skb, false).unwrap();
            }
            s.poll(now);
            s.nic_take_sent(e1, &mut sent);
            assert_eq!(sent.len(), BATCH);
            sent.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
