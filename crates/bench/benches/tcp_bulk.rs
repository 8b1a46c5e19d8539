//! TCP bulk transfer over the simulator: one connection moves `BYTES` one
//! way over a zero-latency, unlimited-rate link with MTU 1500, and we time
//! the whole run (world set-up, ARP, handshake, transfer, FIN) in wall-clock
//! time. Throughput is payload bytes per second of CPU, both stacks and the
//! simulated wire on one thread.
//!
//! Cases:
//! - `smoltcp`: smoltcp 0.12 ↔ smoltcp 0.12 (`netpath-smolnode`), the
//!   reference an independent implementation reaches on this harness.
//!
//! Each case is a function `bulk_<case>(bytes) -> Bulk` that does one full
//! transfer; `bench` times them side by side under the group `tcp_bulk`.
//!
//! `cargo bench --bench tcp_bulk -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpath::sim::{LinkConfig, Sim};
use netpath::time::Duration;
use netpath_smolnode::smoltcp::socket::tcp::State;
use netpath_smolnode::smoltcp::wire::Ipv4Address;
use netpath_smolnode::{with_smol, SmolConfig, SmolHost, PORT};

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
fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::ZERO,
        ..LinkConfig::default()
    }
}

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

// netpath ↔ netpath: added when TCP sockets land — a `bulk_netpath(bytes)
// -> Bulk` over the same `link()`, with two `netpath::sim::SimHost`s, and a
// `group.bench_function("netpath", …)` line in `bench` below.

fn bench(c: &mut Criterion) {
    // Once outside the timing: the case works, and what it costs in
    // simulated time and events.
    let once = bulk_smoltcp(BYTES);
    let sim_rate = once.bytes as f64 / once.sim_time.as_secs_f64().max(1e-9) / 1e6;
    eprintln!(
        "tcp_bulk/smoltcp: {} bytes in {} µs simulated ({sim_rate:.0} MB/s simulated), {} events",
        once.bytes,
        once.sim_time.as_micros(),
        once.events,
    );

    let mut group = c.benchmark_group("tcp_bulk");
    group.throughput(Throughput::Bytes(BYTES as u64));
    group.sample_size(10);
    group.bench_function("smoltcp", |b| b.iter(|| black_box(bulk_smoltcp(BYTES))));
    // netpath ↔ netpath: added when TCP sockets land
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
