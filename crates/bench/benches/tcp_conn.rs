//! TCP connection costs between two netpath hosts on a zero-latency sim
//! link (MTU 1500, default sysctls, tracing off).
//!
//! - `tcp_conn/handshake_close`: one connection's life: `connect()`
//!   (SYN, SYN-ACK, ACK), `accept()`, `shutdown(SHUT_WR)` by the client
//!   (FIN), the server reads end of stream and `close()`s (FIN), the client
//!   reads end of stream and `close()`s. Connections run one after another
//!   in a world of `BATCH` connections (world set-up and ARP amortised over
//!   the batch); the time reported is per connection, so connections per
//!   second = 1 / time.
//! - Memory per idle established connection (printed before the timing):
//!   `IDLE` connections are opened and left idle; the figure is the growth
//!   of the process's resident set (`/proc/self/statm`, so every heap byte
//!   touched: socket structs, table entries, timer heap, skb buffers) over
//!   both ends divided by `2 × IDLE` (per socket) and by `IDLE` (per
//!   connection, both ends), beside `size_of::<TcpSock>()` and the skb pool's
//!   buffers in use.
//!
//! `cargo bench -p netpath-bench --bench tcp_conn -- --warm-up-time 1 --measurement-time 5`

mod common;
use common::{link, netpath_host};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration as WallDuration, Instant as WallInstant};

use criterion::{criterion_group, criterion_main, Criterion};
use netpath::sim::blocking::{stack, with_stack, Blocking};
use netpath::sim::{PortId, Sim};
use netpath::sock::{Errno, SockId};
use netpath::tcp::sock::TcpSock;
use netpath::time::Duration;

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SERVER_PORT: u16 = 80;
/// Connections per world in the handshake benchmark.
const BATCH: u64 = 200;
/// Idle connections for the memory figure.
const IDLE: usize = 5000;

struct Pair {
    sim: Sim,
    client: Blocking,
    server: Blocking,
    listener: SockId,
}

fn pair(backlog: u32) -> Pair {
    let mut sim = Sim::new(1);
    let c = netpath_host(&mut sim, 1, CLIENT_IP);
    let s = netpath_host(&mut sim, 2, SERVER_IP);
    sim.add_link(link(), &[(c, PortId(0)), (s, PortId(0))])
        .expect("link");
    let server = Blocking::new(s);
    let listener = server
        .listen(&mut sim, Ipv4Addr::UNSPECIFIED, SERVER_PORT, backlog)
        .expect("listen");
    Pair {
        sim,
        client: Blocking::new(c),
        server,
        listener,
    }
}

/// Reads until end of stream (the peer's FIN), discarding data.
fn drain_to_eof(b: &Blocking, sim: &mut Sim, id: SockId) {
    let mut buf = [0u8; 512];
    while b.read(sim, id, &mut buf).expect("read") != 0 {}
}

/// One connection: handshake, FIN each way, both closed by the application.
fn one_connection(p: &mut Pair) {
    let c = p.client.socket(&mut p.sim);
    p.client
        .connect(&mut p.sim, c, SERVER_IP, SERVER_PORT)
        .expect("connect");
    let (s, _) = p.server.accept(&mut p.sim, p.listener).expect("accept");
    p.client.shutdown_write(&mut p.sim, c).expect("shutdown");
    drain_to_eof(&p.server, &mut p.sim, s);
    p.server.close(&mut p.sim, s).expect("server close");
    drain_to_eof(&p.client, &mut p.sim, c);
    p.client.close(&mut p.sim, c).expect("client close");
}

/// Resident set size of this process, bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Opens `IDLE` connections, leaves them idle, reports memory.
fn idle_memory() {
    let mut p = pair(4096);
    // Warm the world (ARP, first socket, pool) before the baseline.
    one_connection(&mut p);
    p.sim.run_for(Duration::from_millis(10));
    let pool0 = p.sim.pool().stats();
    let rss0 = rss_bytes();
    let mut socks = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let c = p.client.socket(&mut p.sim);
        p.client
            .connect(&mut p.sim, c, SERVER_IP, SERVER_PORT)
            .expect("connect");
        let (s, _) = p.server.accept(&mut p.sim, p.listener).expect("accept");
        socks.push((c, s));
    }
    // Let delayed ACKs and the like settle: idle means no timer pending but
    // keepalive (off by default).
    p.sim.run_for(Duration::from_secs(1));
    let rss1 = rss_bytes();
    let pool1 = p.sim.pool().stats();
    let est = stack(&p.sim, p.server.node).tcp_mib().curr_estab
        + stack(&p.sim, p.client.node).tcp_mib().curr_estab;
    eprintln!(
        "tcp_conn/idle_memory: {IDLE} idle established connections ({est} ESTABLISHED sockets over both hosts)"
    );
    eprintln!(
        "tcp_conn/idle_memory: size_of::<TcpSock>() = {} B (boxed, one per socket)",
        std::mem::size_of::<TcpSock>()
    );
    eprintln!(
        "tcp_conn/idle_memory: skb pool buffers in use {} -> {} ({:+}), heap buffers {} -> {}",
        pool0.in_use,
        pool1.in_use,
        pool1.in_use as i64 - pool0.in_use as i64,
        pool0.heap_allocs,
        pool1.heap_allocs
    );
    if let (Some(a), Some(b)) = (rss0, rss1) {
        let grow = b.saturating_sub(a);
        eprintln!(
            "tcp_conn/idle_memory: RSS {} KiB -> {} KiB: {:.0} B per socket, {:.0} B per connection (both ends)",
            a / 1024,
            b / 1024,
            grow as f64 / (2 * IDLE) as f64,
            grow as f64 / IDLE as f64
        );
    }
    // Keep the sockets (and world) alive until measured.
    black_box((&socks, &p.sim));
    // Sanity: a socket still answers (nothing torn down under us).
    let (c, _) = socks[0];
    let _ = with_stack(&mut p.sim, p.client.node, |st, now| {
        st.tcp_recv(now, c, &mut [0u8; 1])
    })
    .map_err(|e| assert_eq!(e, Errno::EAGAIN));
}

fn bench(c: &mut Criterion) {
    idle_memory();

    let mut group = c.benchmark_group("tcp_conn");
    group.sample_size(10);
    group.bench_function("handshake_close", |b| {
        b.iter_custom(|iters| {
            let mut total = WallDuration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let mut p = pair(128);
                // ARP and the first connection outside the timing.
                one_connection(&mut p);
                let t = WallInstant::now();
                for _ in 0..n {
                    one_connection(&mut p);
                }
                total += t.elapsed();
                black_box(&p.sim);
                left -= n;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
