//! TCP bulk transfer over the simulator: one connection moves `BYTES` one
//! way over a zero-latency, unlimited-rate link with MTU 1500, and we time
//! the whole run (world set-up, ARP, handshake, transfer, FIN) in wall-clock
//! time. Throughput is payload bytes per second of CPU, both stacks and the
//! simulated wire on one thread.
//!
//! Cases:
//! - `smoltcp`: smoltcp 0.12 ↔ smoltcp 0.12 (`netpath-smolnode`), the
//!   reference an independent implementation reaches on this harness.
//! - `netpath`: netpath ↔ netpath, two `SimHost`s (one NIC each, default
//!   sysctls, tracing off) on the same `link()`, driven through the
//!   sans-IO socket calls the same way (fill the send buffer, run the world
//!   `APP_STEP`, drain the receive queue). The NICs have Linux's default
//!   offloads: checksums (TCP leaves them to the NIC, and the simulated
//!   wire works them out only if something reads the bytes), TSO (TCP's
//!   GSO packets leave as TSO bursts, which this quiet link carries whole)
//!   and GRO (the receiving NIC takes a burst whole where GRO would merge
//!   its frames).
//! - `netpath_no_tso`: the same with TSO off: GSO packets are cut into
//!   frames before the driver, every frame crosses the link and the NIC by
//!   itself, and GRO merges them again.
//! - `netpath_sw_csum`: checksum offload off (and so TSO too, which needs
//!   it), so TCP checksums are computed and verified in software, as
//!   smoltcp does, and every frame is built.
//!
//! Each case is a function `bulk_<case>(…) -> Bulk` that does one full
//! transfer; `bench` times them side by side under the group `tcp_bulk`.
//!
//! `cargo bench --bench tcp_bulk -- --warm-up-time 1 --measurement-time 5`

mod common;
use common::{link, netpath_host_with};
use netpath::dev::nic::NicConfig;
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpath::sim::blocking::{with_stack, Blocking};
use netpath::sim::{PortId, Sim};
use netpath::skb::{PoolConfig, SkbPool};
use netpath::sock::Errno;
use netpath::tcp::SendFlags;
use netpath::time::Duration;
use netpath_smolnode::smoltcp::socket::tcp::State;
use netpath_smolnode::smoltcp::wire::Ipv4Address;
use netpath_smolnode::{with_smol, SmolConfig, SmolHost, PORT};

/// NICs without TSO (the `netpath_no_tso` case).
fn no_tso() -> NicConfig {
    NicConfig {
        tso: false,
        ..NicConfig::default()
    }
}

/// NICs without checksum offload: TCP checksums computed and verified in
/// software, as smoltcp does them (the `netpath_sw_csum` case).
fn sw_csum() -> NicConfig {
    NicConfig {
        tx_csum_offload: false,
        rx_csum_offload: false,
        ..NicConfig::default()
    }
}

/// Payload per iteration.
const BYTES: usize = 8 << 20;

/// Addresses from TEST-NET-1 (RFC 5737).
const CLIENT_IP: [u8; 4] = [192, 0, 2, 1];
const SERVER_IP: [u8; 4] = [192, 0, 2, 2];
const SERVER_PORT: u16 = 5001;

/// How the application side of the loop advances the world between reads
/// and writes.
const APP_STEP: Duration = Duration::from_micros(20);

/// Simulated time allowed for one transfer before the case is declared
/// stuck.
const SIM_LIMIT: Duration = Duration::from_secs(60);

/// The link every case uses: no latency, no rate limit, no impairment.
/// What one transfer did (returned so the work cannot be optimised away and
/// so cases can be compared beyond wall-clock time).
#[derive(Debug, Clone, Copy)]
struct Bulk {
    bytes: usize,
    sim_time: Duration,
    events: u64,
}

/// smoltcp ↔ smoltcp: `bytes` from client to server, then both close.
fn bulk_smoltcp(bytes: usize) -> Bulk {
    let mut sim = Sim::new(1);
    let [a, b, c, d] = CLIENT_IP;
    let client = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
        [2, 0, 0, 0, 0, 1],
        Ipv4Address::new(a, b, c, d),
        24,
    ))));
    let [a, b, c, d] = SERVER_IP;
    let server_ip = Ipv4Address::new(a, b, c, d);
    let server = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
        [2, 0, 0, 0, 0, 2],
        server_ip,
        24,
    ))));
    sim.add_link(link(), &[(client, PORT), (server, PORT)])
        .expect("link");
    let start = sim.now();
    let limit = start + SIM_LIMIT;

    let rx = with_smol(&mut sim, server, |h| h.tcp_listen(SERVER_PORT)).expect("listen");
    let tx = with_smol(&mut sim, client, |h| {
        h.tcp_connect(server_ip, SERVER_PORT, 0)
    })
    .expect("connect");

    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut buf = vec![0_u8; 64 * 1024];
    let (mut sent, mut got) = (0, 0);
    let mut closed = false;
    while got < bytes {
        // Fill the send buffer: the sender is never the application's
        // fault.
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            let queued = with_smol(&mut sim, client, |h| h.send(tx, &chunk[..n]));
            sent += queued;
            if queued < n {
                break;
            }
        }
        if sent == bytes && !closed {
            with_smol(&mut sim, client, |h| h.close(tx));
            closed = true;
        }
        sim.run_for(APP_STEP);
        loop {
            let n = with_smol(&mut sim, server, |h| h.recv(rx, &mut buf));
            if n == 0 {
                break;
            }
            got += n;
        }
        assert!(sim.now() < limit, "smoltcp transfer stuck at {got} bytes");
    }
    assert_eq!(got, bytes);
    // Let the FIN arrive; the transfer is complete when the server sees it.
    while with_smol(&mut sim, server, |h| h.state(rx)) != State::CloseWait {
        if !closed {
            with_smol(&mut sim, client, |h| h.close(tx));
            closed = true;
        }
        sim.run_for(APP_STEP);
        assert!(sim.now() < limit, "smoltcp FIN never arrived");
    }
    Bulk {
        bytes: got,
        sim_time: sim.now().saturating_since(start),
        events: sim.events_run(),
    }
}

/// A netpath host with one NIC (`eth0`, up) with `addr/24`, cabled to
/// port 0.
/// netpath ↔ netpath: `bytes` from client to server; the client closes
/// after the last byte and the transfer is complete when the server reads
/// end of stream. The world's skb pool is `pool`, shared by the iterations
/// as it would be by a long-running stack: buffers come warm from its free
/// list instead of fresh (zeroed) from the heap each time.
fn bulk_netpath(bytes: usize, pool: &SkbPool, nic: NicConfig) -> Bulk {
    let mut sim = Sim::with_pool(1, pool.clone());
    let client_ip = Ipv4Addr::from(CLIENT_IP);
    let server_ip = Ipv4Addr::from(SERVER_IP);
    let client = netpath_host_with(&mut sim, 1, client_ip, nic);
    let server = netpath_host_with(&mut sim, 2, server_ip, nic);
    sim.add_link(link(), &[(client, PortId(0)), (server, PortId(0))])
        .expect("link");
    let start = sim.now();
    let limit = start + SIM_LIMIT;

    let bs = Blocking::new(server);
    let bc = Blocking::new(client);
    let l = bs
        .listen(&mut sim, Ipv4Addr::UNSPECIFIED, SERVER_PORT, 16)
        .expect("listen");
    let tx = bc.socket(&mut sim);
    bc.connect(&mut sim, tx, server_ip, SERVER_PORT)
        .expect("connect");
    let (rx, _) = bs.accept(&mut sim, l).expect("accept");

    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut buf = vec![0_u8; 64 * 1024];
    let (mut sent, mut got) = (0, 0);
    let mut closed = false;
    let mut eof = false;
    while !eof {
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            match with_stack(&mut sim, client, |s, now| {
                s.tcp_send(now, tx, &chunk[..n], SendFlags::default())
            }) {
                Ok(q) => sent += q,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("netpath send: {e:?}"),
            }
        }
        if sent == bytes && !closed {
            with_stack(&mut sim, client, |s, now| s.tcp_close(now, tx)).expect("close");
            closed = true;
        }
        sim.run_for(APP_STEP);
        loop {
            match with_stack(&mut sim, server, |s, now| s.tcp_recv(now, rx, &mut buf)) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("netpath recv: {e:?}"),
            }
        }
        assert!(sim.now() < limit, "netpath transfer stuck at {got} bytes");
    }
    assert_eq!(got, bytes);
    Bulk {
        bytes: got,
        sim_time: sim.now().saturating_since(start),
        events: sim.events_run(),
    }
}

fn report(name: &str, once: Bulk) {
    let sim_rate = once.bytes as f64 / once.sim_time.as_secs_f64().max(1e-9) / 1e6;
    eprintln!(
        "tcp_bulk/{name}: {} bytes in {} µs simulated ({sim_rate:.0} MB/s simulated), {} events",
        once.bytes,
        once.sim_time.as_micros(),
        once.events,
    );
}

fn bench(c: &mut Criterion) {
    // Once outside the timing: the case works, and what it costs in
    // simulated time and events.
    report("smoltcp", bulk_smoltcp(BYTES));
    let pool = SkbPool::new(PoolConfig::default());
    report("netpath", bulk_netpath(BYTES, &pool, NicConfig::default()));
    report("netpath_no_tso", bulk_netpath(BYTES, &pool, no_tso()));
    report("netpath_sw_csum", bulk_netpath(BYTES, &pool, sw_csum()));

    let mut group = c.benchmark_group("tcp_bulk");
    group.throughput(Throughput::Bytes(BYTES as u64));
    group.sample_size(10);
    group.bench_function("smoltcp", |b| b.iter(|| black_box(bulk_smoltcp(BYTES))));
    group.bench_function("netpath", |b| {
        b.iter(|| black_box(bulk_netpath(BYTES, &pool, NicConfig::default())))
    });
    group.bench_function("netpath_no_tso", |b| {
        b.iter(|| black_box(bulk_netpath(BYTES, &pool, no_tso())))
    });
    group.bench_function("netpath_sw_csum", |b| {
        b.iter(|| black_box(bulk_netpath(BYTES, &pool, sw_csum())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
