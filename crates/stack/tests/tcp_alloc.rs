//! Heap allocations per packet in the steady state of a TCP bulk transfer
//! between two netpath hosts (zero-latency sim link, MTU 1500, default
//! sysctls).
//!
//! The transfer is warmed up first (slow start done, pools, queues, heaps
//! and the receive window grown), then the counting allocator counts every
//! allocation of this thread over a window of `WINDOW` bytes: both stacks,
//! the simulated link and the application loop (which itself allocates
//! nothing: its buffers exist before the window). The figure is
//! allocations per TCP segment, segments = `InSegs + OutSegs` of both hosts
//! over the window (each segment is sent by one host and received by the
//! other, so it is counted twice: this is per packet *processed*).
//!
//! The receiver's `SO_RCVBUF` is set to 256 KiB (autotuning off), so the
//! window, and with it the number of skbs alive, stops growing: with the
//! default autotuning the window keeps growing for tens of megabytes (the
//! skb pool grows with it, two heap allocations per new buffer) and, once
//! the sender's flight outgrows the 1000-packet qdisc, the run hits the
//! retransmission storm `no_retransmission_storm_after_qdisc_drops`
//! documents, so there is no steady state to measure.

mod common;
mod topo;

use common::counted;
use netpath::sim::blocking::Blocking;
use netpath::sim::LinkConfig;
use netpath::sock::{Errno, SockId};
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::Duration;
use topo::*;

const WARMUP: usize = 32 << 20;
const WINDOW: usize = 4 << 20;
/// The receiver's `SO_RCVBUF` in the allocation test (Linux doubles it).
const RCVBUF: usize = 256 * 1024;
const APP_STEP: Duration = Duration::from_micros(20);

struct Bulk {
    t: Topo,
    a: Host,
    b: Host,
    tx: SockId,
    rx: SockId,
    chunk: Vec<u8>,
    buf: Vec<u8>,
}

impl Bulk {
    /// Moves `bytes` from `tx` to `rx`; returns how many the receiver read.
    fn run(&mut self, bytes: usize) -> usize {
        let (mut sent, mut got) = (0usize, 0usize);
        let (tx, rx) = (self.tx, self.rx);
        let deadline = self.t.sim.now() + Duration::from_secs(60);
        while got < bytes {
            while sent < bytes {
                let n = self.chunk.len().min(bytes - sent);
                let chunk = &self.chunk[..n];
                match self.t.with(&self.a, |s, now| {
                    s.tcp_send(now, tx, chunk, SendFlags::default())
                }) {
                    Ok(q) => sent += q,
                    Err(Errno::EAGAIN) => break,
                    Err(e) => panic!("send: {e:?}"),
                }
            }
            let step = self.t.sim.now() + APP_STEP;
            self.t.sim.run_until(step);
            loop {
                let buf = &mut self.buf;
                match self.t.with(&self.b, |s, now| s.tcp_recv(now, rx, buf)) {
                    Ok(0) => panic!("unexpected end of stream"),
                    Ok(n) => got += n,
                    Err(Errno::EAGAIN) => break,
                    Err(e) => panic!("recv: {e:?}"),
                }
            }
            assert!(self.t.sim.now() < deadline, "stuck at {got} bytes");
        }
        got
    }

    fn segments(&self) -> u64 {
        [&self.a, &self.b]
            .iter()
            .map(|h| {
                let m = self.t.stack(h).tcp_mib();
                m.in_segs + m.out_segs
            })
            .sum()
    }
}

/// Two hosts on a zero-latency link, one connection a → b; `rcvbuf`:
/// the listener's `SO_RCVBUF` (inherited by the accepted socket), `None` for
/// the default (autotuned).
fn setup(rcvbuf: Option<usize>) -> Bulk {
    let mut t = Topo::new(1);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    // Tracing costs time, not allocations, but the bulk path runs without it.
    t.with(&a, |s, _| s.tracer_mut().disable());
    t.with(&b, |s, _| s.tracer_mut().disable());
    t.link(
        &a,
        0,
        &b,
        0,
        LinkConfig {
            latency: Duration::ZERO,
            ..LinkConfig::default()
        },
    );
    let ba = Blocking::new(a.node);
    let bb = Blocking::new(b.node);
    let l = t.with(&b, |s, _| {
        let l = s.tcp_socket();
        if let Some(n) = rcvbuf {
            s.tcp_setsockopt(l, TcpOpt::RcvBuf(n)).unwrap();
        }
        s.tcp_bind(l, ip("0.0.0.0"), 80).unwrap();
        s.tcp_listen(l, 16).unwrap();
        l
    });
    let tx = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, tx, ip("192.0.2.2"), 80).unwrap();
    let (rx, _) = bb.accept(&mut t.sim, l).unwrap();
    Bulk {
        t,
        a,
        b,
        tx,
        rx,
        chunk: vec![0x5a; 64 * 1024],
        buf: vec![0; 64 * 1024],
    }
}

#[test]
fn bulk_steady_state_allocations_per_segment() {
    let mut bulk = setup(Some(RCVBUF));
    assert_eq!(bulk.run(WARMUP), WARMUP);
    // Each run ends with the pipe drained; the first restarts after that
    // send the whole congestion window at once and the pool grows to that
    // peak, in each of its size classes (frames, and the GSO and GRO
    // packets of a few or many segments): three runs reach it. Measure the
    // run after.
    for _ in 0..3 {
        assert_eq!(bulk.run(WINDOW), WINDOW);
    }
    let seg0 = bulk.segments();
    let pool0 = bulk.t.sim.pool().stats();
    let (got, allocs) = counted(|| bulk.run(WINDOW));
    assert_eq!(got, WINDOW);
    let segs = bulk.segments() - seg0;
    let pool1 = bulk.t.sim.pool().stats();
    println!(
        "skb pool over the window: {} buffers from the heap, {} recycled, in use {} -> {}, free {} -> {}",
        pool1.heap_allocs - pool0.heap_allocs,
        pool1.recycled - pool0.recycled,
        pool0.in_use,
        pool1.in_use,
        pool0.free,
        pool1.free
    );
    let per_seg = allocs as f64 / segs as f64;
    println!(
        "tcp bulk steady state: {allocs} heap allocations over {segs} segments \
         (InSegs + OutSegs, both hosts; {WINDOW} payload bytes): {per_seg:.3} per segment"
    );
    for (name, h) in [("sender", &bulk.a), ("receiver", &bulk.b)] {
        let st = bulk.t.stack(h);
        let ext: Vec<_> = st
            .tcp_ext_mib()
            .fields()
            .into_iter()
            .filter(|f| f.1 != 0)
            .collect();
        println!("{name}: {:?}\n{name}: {ext:?}", st.tcp_mib());
        let drops: Vec<_> = st.drops().iter().filter(|d| d.1 != 0).collect();
        println!("{name}: drops {drops:?}");
    }
    println!("sender {:?}", bulk.t.stack(&bulk.a).tcp_info(bulk.tx));
    assert!(
        segs > 2 * (WINDOW / 1460) as u64 / 2,
        "window too small: {segs}"
    );
    // What is true today (see the report printed above); tighten as the
    // per-packet path stops allocating. Goal: 0, as `skb_alloc.rs` and
    // `dev_alloc.rs` show for the layers below.
    assert!(
        per_seg <= TODAY_MAX_PER_SEGMENT,
        "{per_seg:.3} allocations per segment, more than today's {TODAY_MAX_PER_SEGMENT}"
    );
}

/// The ceiling asserted today: 0 measured (0 allocations over 5,910
/// segments, once the pool has grown to the peak of a full-window restart).
/// It was 0.010 while the pool kept at most 4096 free buffers: a flight of
/// thousands of segments overflowed the free list and the pool went back to
/// the heap; it now keeps 16,384.
const TODAY_MAX_PER_SEGMENT: f64 = 0.0005;

/// A perfect link must not need more retransmissions than the packets the
/// sender's own qdisc dropped. Today, once the autotuned flight outgrows
/// the 1000-packet `pfifo_fast` (here between 32 and 36 MiB into the transfer), the qdisc
/// drops ~950 segments, SACK recovery repairs them, and then the sender
/// keeps retransmitting segments the receiver already has: in the next 4 MiB,
/// ~450,000 retransmissions (`TCPLostRetransmit` ≈ all of them) for 26,000
/// original segments, the receiver dropping them as `TcpOldSequence`, and
/// `tcp_info.lost` (~85,000) far above `unacked` (~750), i.e. `lost_out`
/// exceeds `packets_out`.
///
/// Fixed: RACK counted a retransmission that was lost again into `lost_out`
/// a second time, so `in_flight` fell to 0 and cwnd stopped limiting. Kept
/// as a regression test (it runs in under a second now).
#[test]
fn no_retransmission_storm_after_qdisc_drops() {
    let mut bulk = setup(None);
    // (Deterministic: these two runs, as the allocation test does them,
    // reproduce it; one 32 MiB run happens not to overflow the qdisc.)
    assert_eq!(bulk.run(32 << 20), 32 << 20);
    assert_eq!(bulk.run(4 << 20), 4 << 20);
    let st = bulk.t.stack(&bulk.a);
    let qdisc_drops: u64 = st
        .drops()
        .iter()
        .filter(|(r, _)| format!("{r:?}") == "QdiscDrop")
        .map(|(_, n)| n)
        .sum();
    let mib = *st.tcp_mib();
    let info = st.tcp_info(bulk.tx).unwrap();
    println!(
        "qdisc drops {qdisc_drops}, {mib:?}, lost {} unacked {}",
        info.lost, info.unacked
    );
    assert!(
        info.lost <= info.unacked,
        "lost_out {} > packets_out {}",
        info.lost,
        info.unacked
    );
    assert!(
        mib.retrans_segs <= qdisc_drops + qdisc_drops / 10 + 10,
        "{} retransmissions for {qdisc_drops} packets lost",
        mib.retrans_segs
    );
}
