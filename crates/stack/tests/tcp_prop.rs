//! Property tests of the TCP socket layer on a two-host simulation.
//!
//! (a) `calls_never_panic_and_errnos_are_linux`: any sequence of socket
//!     calls, in any order with any arguments, never panics, and every
//!     error is one Linux can return for that call.
//! (b) `stream_is_exact_under_impairment`: over a link with loss (≤ 5 %),
//!     duplication, reordering and corruption, with random write and read
//!     sizes in both directions, each reader gets exactly the bytes its
//!     peer wrote, in order, never duplicated; with no loss the transfer
//!     must finish within the virtual-time bound.
//!
//! The reproducers of the bugs these found sit at the end, each with the
//! Linux behaviour it checks; all were fixed (commits after e840fe0) and
//! now guard against regressions.

mod topo;

use core::net::Ipv4Addr;

use netpath::sim::blocking::{with_stack, Blocking};
use netpath::sim::{LinkConfig, NodeId, Sim};
use netpath::sock::{Errno, SockId};
use netpath::tcp::{SendFlags, Shutdown, TcpOpt, TcpState};
use netpath::time::Duration;
use proptest::prelude::*;
use topo::{ip, Topo};

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

/// `PROPTEST_CASES` overrides a property's case count.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn two_hosts(seed: u64, cfg: LinkConfig) -> (Topo, NodeId, NodeId) {
    let mut t = Topo::new(seed);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, cfg);
    (t, a.node, b.node)
}

// ---------------------------------------------------------------------
// (a) random socket calls
// ---------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Call {
    Socket,
    Bind { addr: u8, port: u8 },
    Listen { backlog: u32 },
    Connect { addr: u8, port: u8 },
    Accept,
    Send { len: usize, more: bool },
    Recv { len: usize, peek: bool },
    Shutdown { how: u8 },
    Close,
    SetOpt(u8, u32),
    GetOpt(u8),
    Query,
    Advance { ms: u64 },
}

#[derive(Debug, Clone)]
struct Step {
    /// 0 = host A, 1 = host B.
    host: u8,
    /// Index (modulo) into the host's handles, closed ones included.
    sock: u8,
    call: Call,
}

fn call_strategy() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => Just(Call::Socket),
        3 => (0u8..6, 0u8..5).prop_map(|(addr, port)| Call::Bind { addr, port }),
        2 => prop_oneof![Just(0u32), Just(1), Just(16), Just(u32::MAX)]
            .prop_map(|backlog| Call::Listen { backlog }),
        3 => (0u8..6, 0u8..5).prop_map(|(addr, port)| Call::Connect { addr, port }),
        2 => Just(Call::Accept),
        3 => (prop_oneof![Just(0usize), 1..3000usize, Just(70_000)], any::<bool>())
            .prop_map(|(len, more)| Call::Send { len, more }),
        3 => (prop_oneof![Just(0usize), 1..3000usize, Just(70_000)], any::<bool>())
            .prop_map(|(len, peek)| Call::Recv { len, peek }),
        1 => (0u8..3).prop_map(|how| Call::Shutdown { how }),
        1 => Just(Call::Close),
        2 => (0u8..20, any::<u32>()).prop_map(|(o, v)| Call::SetOpt(o, v)),
        1 => (0u8..20).prop_map(Call::GetOpt),
        1 => Just(Call::Query),
        3 => prop_oneof![Just(0u64), 1..50u64, 50..5000u64, Just(70_000)]
            .prop_map(|ms| Call::Advance { ms }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    (0u8..2, any::<u8>(), call_strategy()).prop_map(|(host, sock, call)| Step { host, sock, call })
}

fn pick_addr(i: u8) -> Ipv4Addr {
    match i {
        0 => ip("0.0.0.0"),
        1 => ip(A),
        2 => ip(B),
        3 => ip("192.0.2.99"),      // on link, nobody answers ARP
        4 => ip("10.1.2.3"),        // no route
        _ => ip("255.255.255.255"), // broadcast
    }
}

fn pick_port(i: u8) -> u16 {
    [0, 80, 81, 5000, 65535][usize::from(i % 5)]
}

fn make_opt(o: u8, v: u32) -> TcpOpt {
    let b = v & 1 == 1;
    match o {
        0 => TcpOpt::NoDelay(b),
        1 => TcpOpt::Cork(b),
        2 => TcpOpt::MaxSeg((v % 70_000) as u16),
        3 => TcpOpt::KeepAlive(b),
        4 => TcpOpt::KeepIdle(v % 40_000),
        5 => TcpOpt::KeepIntvl(v % 40_000),
        6 => TcpOpt::KeepCnt(v % 200),
        7 => TcpOpt::UserTimeout(v % 100_000),
        8 => TcpOpt::Linger((!v.is_multiple_of(3)).then_some(v % 4)),
        9 => TcpOpt::RcvBuf(v as usize % 1_000_000),
        10 => TcpOpt::SndBuf(v as usize % 1_000_000),
        11 => TcpOpt::ReuseAddr(b),
        12 => TcpOpt::ReusePort(b),
        13 => TcpOpt::Congestion(["reno", "cubic", "bbr", ""][(v % 4) as usize].to_string()),
        14 => TcpOpt::NotSentLowat(v),
        15 => TcpOpt::Ttl(v as u8),
        16 => TcpOpt::Tos(v as u8),
        17 => TcpOpt::Mark(v),
        18 => TcpOpt::Priority(v),
        _ => TcpOpt::BindToDevice(None),
    }
}

/// The errors Linux's call can return for a TCP/IPv4 socket (man 2 …, and
/// the sk_err values a pending error can carry).
fn linux_allows(call: &Call, e: Errno) -> bool {
    use Errno::*;
    // Asynchronous errors that sock_error() reports on the next call.
    let async_err = matches!(
        e,
        ECONNRESET | ECONNREFUSED | ETIMEDOUT | EHOSTUNREACH | ENETUNREACH | EPIPE
    );
    match call {
        Call::Socket | Call::Advance { .. } | Call::Query => false,
        Call::Bind { .. } => matches!(e, EBADF | EINVAL | EADDRINUSE | EADDRNOTAVAIL | EACCES),
        Call::Listen { .. } => matches!(e, EBADF | EINVAL | EADDRINUSE | EOPNOTSUPP),
        Call::Connect { .. } => {
            async_err
                || matches!(
                    e,
                    EBADF
                        | EINVAL
                        | EINPROGRESS
                        | EALREADY
                        | EISCONN
                        | EADDRINUSE
                        | EADDRNOTAVAIL
                        | ECONNABORTED
                        | EACCES
                        | EPERM
                        | EAGAIN
                )
        }
        Call::Accept => matches!(e, EBADF | EINVAL | EAGAIN | ECONNABORTED | ENOBUFS | EPERM),
        Call::Send { .. } => {
            async_err || matches!(e, EBADF | EAGAIN | ENOTCONN | ENOBUFS | EMSGSIZE)
        }
        Call::Recv { .. } => async_err || matches!(e, EBADF | EAGAIN | ENOTCONN),
        Call::Shutdown { .. } => matches!(e, EBADF | EINVAL | ENOTCONN),
        Call::Close => e == EBADF,
        Call::SetOpt(..) => matches!(e, EBADF | EINVAL | ENOENT | EPERM | EISCONN),
        Call::GetOpt(_) => e == EBADF,
    }
}

/// What Linux returns exactly, when the socket's state before the call
/// decides it: `Some(Err(e))` must be `e`, `Some(Ok(()))` must succeed.
/// `closed`: our handle was closed; `bound`: the socket has a local port.
fn linux_exact(
    call: &Call,
    closed: bool,
    state: Option<TcpState>,
    bound: bool,
) -> Option<Result<(), Errno>> {
    use Errno::*;
    if closed {
        return match call {
            Call::Query | Call::Socket | Call::Advance { .. } => None,
            _ => Some(Err(EBADF)),
        };
    }
    let st = state?;
    let listen = st == TcpState::Listen;
    match call {
        // __inet_bind: address validity first, then "already bound".
        Call::Bind {
            addr: 0 | 2 | 5, ..
        } => (st != TcpState::Closed || bound).then_some(Err(EINVAL)),
        Call::Listen { .. } => {
            (!matches!(st, TcpState::Closed | TcpState::Listen)).then_some(Err(EINVAL))
        }
        Call::Accept if !listen => Some(Err(EINVAL)),
        Call::Connect { .. } if listen => Some(Err(EISCONN)),
        Call::Recv { len, .. } if listen && *len > 0 => Some(Err(ENOTCONN)),
        Call::Send { .. } if listen => Some(Err(EPIPE)),
        Call::Close => Some(Ok(())),
        _ => None,
    }
}

fn run_calls(seed: u64, preconnect: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let (mut t, na, nb) = two_hosts(seed, LinkConfig::default());
    let nodes = [na, nb];
    let mut handles: [Vec<SockId>; 2] = [Vec::new(), Vec::new()];
    let mut closed: [Vec<SockId>; 2] = [Vec::new(), Vec::new()];
    if preconnect {
        // Start from a listener on B:80 and an established A → B:80
        // connection, so that random calls reach the data path often.
        let (ba, bb) = (Blocking::new(na), Blocking::new(nb));
        let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
        let c = ba.socket(&mut t.sim);
        ba.connect(&mut t.sim, c, ip(B), 80).unwrap();
        let (s, _) = bb.accept(&mut t.sim, l).unwrap();
        handles = [vec![c], vec![l, s]];
    }
    let mut buf = vec![0u8; 70_000];
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    for (k, st) in steps.iter().enumerate() {
        let h = usize::from(st.host);
        let node = nodes[h];
        if let Call::Advance { ms } = st.call {
            let until = t.sim.now() + Duration::from_millis(ms);
            t.sim.run_until(until);
            continue;
        }
        if let Call::Socket = st.call {
            let id = with_stack(&mut t.sim, node, |s, _| s.tcp_socket());
            handles[h].push(id);
            continue;
        }
        if handles[h].is_empty() {
            continue;
        }
        let id = handles[h][usize::from(st.sock) % handles[h].len()];
        let was_closed = closed[h].contains(&id);
        let (state, bound) = with_stack(&mut t.sim, node, |s, _| {
            (
                s.tcp_state(id),
                s.tcp_local_addr(id).is_ok_and(|a| a.1 != 0),
            )
        });
        let r: Result<(), Errno> = with_stack(&mut t.sim, node, |s, now| match &st.call {
            Call::Bind { addr, port } => s.tcp_bind(id, pick_addr(*addr), pick_port(*port)),
            Call::Listen { backlog } => s.tcp_listen(id, *backlog),
            Call::Connect { addr, port } => {
                s.tcp_connect(now, id, pick_addr(*addr), pick_port(*port))
            }
            Call::Accept => s.tcp_accept(now, id).map(|(c, _)| {
                handles[h].push(c);
            }),
            Call::Send { len, more } => s
                .tcp_send(
                    now,
                    id,
                    &payload[..*len],
                    SendFlags {
                        more: *more,
                        ..SendFlags::default()
                    },
                )
                .map(|n| assert!(n <= *len)),
            Call::Recv { len, peek } => s
                .tcp_recv_flags(now, id, &mut buf[..*len], *peek)
                .map(|n| assert!(n <= *len)),
            Call::Shutdown { how } => {
                let how = [Shutdown::Read, Shutdown::Write, Shutdown::Both][usize::from(*how)];
                s.tcp_shutdown(now, id, how)
            }
            Call::Close => s.tcp_close(now, id),
            Call::SetOpt(o, v) => s.tcp_setsockopt(id, make_opt(*o, *v)),
            Call::GetOpt(o) => s.tcp_getsockopt(id, make_opt(*o, 0)).map(|_| ()),
            Call::Query => {
                let _ = s.tcp_poll(id);
                let _ = s.tcp_state(id);
                let _ = s.tcp_local_addr(id);
                let _ = s.tcp_peer_addr(id);
                let _ = s.tcp_take_error(id);
                let _ = s.tcp_inq(id);
                let _ = s.tcp_outq(id);
                let _ = s.tcp_outq_notsent(id);
                let _ = s.tcp_info(id);
                let _ = s.tcp_sockets();
                Ok(())
            }
            Call::Socket | Call::Advance { .. } => Ok(()),
        });
        if let Some(want) = linux_exact(&st.call, was_closed, state, bound) {
            prop_assert_eq!(
                r,
                want,
                "step {}: {:?} on host {} in state {:?} (bound {})",
                k,
                &st.call,
                h,
                state,
                bound
            );
        }
        if matches!(st.call, Call::Close) && r.is_ok() {
            closed[h].push(id);
        }
        if let Err(e) = r {
            prop_assert!(
                linux_allows(&st.call, e),
                "step {k}: {:?} on host {h} returned {e}, which Linux never returns for it",
                st.call
            );
        }
        // A little time passes between calls.
        let until = t.sim.now() + Duration::from_micros(200);
        t.sim.run_until(until);
    }
    // Close every handle; everything must drain away (TIME-WAIT, FIN
    // timeouts, orphan retries) within 30 virtual minutes.
    for h in 0..2 {
        for &id in &handles[h] {
            let _ = with_stack(&mut t.sim, nodes[h], |s, now| s.tcp_close(now, id));
        }
    }
    let until = t.sim.now() + Duration::from_secs(1800);
    t.sim.run_until(until);
    for (h, &node) in nodes.iter().enumerate() {
        let left = with_stack(&mut t.sim, node, |s, _| s.tcp_sockets());
        prop_assert!(
            left.is_empty(),
            "host {h}: sockets left 30 min after closing everything: {left:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn calls_never_panic_and_errnos_are_linux(
        seed in any::<u64>(),
        preconnect in any::<bool>(),
        steps in proptest::collection::vec(step_strategy(), 1..60),
    ) {
        run_calls(seed, preconnect, &steps)?;
    }
}

// ---------------------------------------------------------------------
// (b) byte streams under impairment
// ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Impair {
    seed: u64,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    reorder_ms: u64,
    corrupt: f64,
    latency_us: u64,
    rate: Option<u64>,
}

fn impair_strategy() -> impl Strategy<Value = Impair> {
    (
        any::<u64>(),
        prop_oneof![Just(0.0), 0.0..0.05f64],
        prop_oneof![Just(0.0), 0.0..0.1f64],
        prop_oneof![Just(0.0), 0.0..0.3f64],
        1u64..30,
        prop_oneof![3 => Just(0.0), 1 => 0.0..0.02f64],
        1u64..20_000,
        prop_oneof![
            Just(None),
            Just(Some(10_000_000u64)),
            Just(Some(1_000_000_000))
        ],
    )
        .prop_map(
            |(seed, loss, duplicate, reorder, reorder_ms, corrupt, latency_us, rate)| Impair {
                seed,
                loss,
                duplicate,
                reorder,
                reorder_ms,
                corrupt,
                latency_us,
                rate,
            },
        )
}

impl Impair {
    fn link(&self) -> LinkConfig {
        LinkConfig {
            latency: Duration::from_micros(self.latency_us),
            bandwidth_bps: self.rate,
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_delay: Duration::from_millis(self.reorder_ms),
            corrupt: self.corrupt,
            ..LinkConfig::default()
        }
    }
}

/// One direction of a transfer: the writer's data and progress, the
/// reader's buffer.
struct Flow {
    wr: SockId,
    wr_node: NodeId,
    rd: SockId,
    rd_node: NodeId,
    data: Vec<u8>,
    sent: usize,
    w_sizes: Vec<usize>,
    r_sizes: Vec<usize>,
    wi: usize,
    ri: usize,
    shut: bool,
    /// The writer may half-close once everything is written.
    may_shut: bool,
    got: Vec<u8>,
    eof: bool,
    err: Option<Errno>,
}

#[derive(Debug)]
enum Outcome {
    Done,
    /// The virtual-time bound passed.
    Timeout,
    /// The world went idle with a transfer unfinished.
    Stuck,
    Error(#[allow(dead_code)] Errno),
}

impl Flow {
    /// Does what can be done now without waiting; true if anything moved.
    fn pump(&mut self, sim: &mut Sim) -> Result<bool, TestCaseError> {
        let mut moved = false;
        if self.err.is_some() {
            return Ok(false);
        }
        if self.sent < self.data.len() {
            let n = self.w_sizes[self.wi % self.w_sizes.len()].min(self.data.len() - self.sent);
            let chunk = &self.data[self.sent..self.sent + n];
            let (wr, more) = (self.wr, self.wi % 3 == 1);
            match with_stack(sim, self.wr_node, |s, now| {
                s.tcp_send(
                    now,
                    wr,
                    chunk,
                    SendFlags {
                        more,
                        ..SendFlags::default()
                    },
                )
            }) {
                Ok(k) => {
                    prop_assert!(k > 0 && k <= n, "send returned {k} for {n} bytes");
                    self.sent += k;
                    self.wi += 1;
                    moved = true;
                }
                Err(Errno::EAGAIN) => {}
                Err(e) => self.err = Some(e),
            }
        } else if !self.shut && self.may_shut {
            let wr = self.wr;
            if let Err(e) = with_stack(sim, self.wr_node, |s, now| {
                s.tcp_shutdown(now, wr, Shutdown::Write)
            }) {
                self.err = Some(e);
            }
            self.shut = true;
            moved = true;
        }
        if !self.eof {
            let n = self.r_sizes[self.ri % self.r_sizes.len()];
            let mut buf = vec![0u8; n];
            let rd = self.rd;
            match with_stack(sim, self.rd_node, |s, now| s.tcp_recv(now, rd, &mut buf)) {
                Ok(0) => {
                    self.eof = true;
                    moved = true;
                }
                Ok(k) => {
                    let at = self.got.len();
                    prop_assert!(
                        at + k <= self.data.len(),
                        "reader got {} bytes, more than the {} written",
                        at + k,
                        self.data.len()
                    );
                    if buf[..k] != self.data[at..at + k] {
                        let i = (0..k).find(|&i| buf[i] != self.data[at + i]).unwrap_or(0);
                        return Err(TestCaseError::fail(format!(
                            "stream differs at byte {} (read of {k} at offset {at}): got {:02x?}, wrote {:02x?}",
                            at + i,
                            &buf[i..k.min(i + 16)],
                            &self.data[at + i..(at + k).min(at + i + 16)]
                        )));
                    }
                    self.got.extend_from_slice(&buf[..k]);
                    self.ri += 1;
                    moved = true;
                }
                Err(Errno::EAGAIN) => {}
                Err(e) => self.err = Some(e),
            }
        }
        Ok(moved)
    }

    fn done(&self) -> bool {
        self.eof || self.err.is_some()
    }
}

#[derive(Debug, Clone)]
struct Transfer {
    ab: usize,
    ba: usize,
    w_sizes: Vec<usize>,
    r_sizes: Vec<usize>,
    /// SO_RCVBUF / SO_SNDBUF on both ends after the handshake (small
    /// buffers: zero windows, window probes, silly-window avoidance).
    bufs: Option<(usize, usize)>,
    nodelay: bool,
    /// Through a router whose far link has this MTU.
    routed_mtu: Option<u32>,
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![1..64usize, 64..2000usize, 2000..70_000usize],
        1..6,
    )
}

fn transfer_strategy() -> impl Strategy<Value = Transfer> {
    (
        prop_oneof![Just(0usize), 1..5000usize, 5000..300_000usize],
        prop_oneof![Just(0usize), 1..5000usize, 5000..150_000usize],
        sizes(),
        sizes(),
        prop_oneof![
            Just(None),
            (1000..40_000usize, 1000..40_000usize).prop_map(Some)
        ],
        any::<bool>(),
        prop_oneof![2 => Just(None), 1 => (68u32..1500).prop_map(Some)],
    )
        .prop_map(
            |(ab, ba, w_sizes, r_sizes, bufs, nodelay, routed_mtu)| Transfer {
                ab,
                ba,
                w_sizes,
                r_sizes,
                bufs,
                nodelay,
                routed_mtu,
            },
        )
}

fn pattern(len: usize, salt: u32) -> Vec<u8> {
    // Position-dependent and not periodic at any small period, so a
    // duplicated or skipped segment shows.
    (0..len as u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761).wrapping_add(salt);
            (x ^ (x >> 13) ^ (x >> 24)) as u8
        })
        .collect()
}

/// `free_close`: each side half-closes as soon as it has written
/// everything. Otherwise A (the client) half-closes last, once it has read
/// B's whole stream and B has read all of A's, so that no FIN ever finds
/// unread data in FIN_WAIT2 (see
/// `repro_fin_in_fin_wait2_discards_unread_data`).
fn run_transfer(
    im: &Impair,
    tr: &Transfer,
    bound: Duration,
    free_close: bool,
) -> Result<Outcome, TestCaseError> {
    // Either A — B on one impaired link, or A — R — C with the far link
    // impaired and its MTU smaller (MSS, fragmentation-free PMTU).
    let (mut t, na, nb, dst) = match tr.routed_mtu {
        None => {
            let (t, na, nb) = two_hosts(im.seed, im.link());
            (t, na, nb, ip(B))
        }
        Some(mtu) => {
            let (mut t, a, _r, c) = Topo::routed(im.seed, mtu);
            let far = t.links[1];
            t.sim.set_link_config(far, im.link()).unwrap();
            (t, a.node, c.node, ip("198.51.100.1"))
        }
    };
    let ba = Blocking::with_limit(na, Duration::from_secs(60));
    let bb = Blocking::with_limit(nb, Duration::from_secs(60));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let c = ba.socket(&mut t.sim);
    if let Err(e) = ba.connect(&mut t.sim, c, dst, 80) {
        return Ok(Outcome::Error(e));
    }
    let s = match bb.accept(&mut t.sim, l) {
        Ok((s, _)) => s,
        Err(e) => return Ok(Outcome::Error(e)),
    };
    for (node, id) in [(na, c), (nb, s)] {
        with_stack(&mut t.sim, node, |st, _| {
            if let Some((r, w)) = tr.bufs {
                st.tcp_setsockopt(id, TcpOpt::RcvBuf(r)).unwrap();
                st.tcp_setsockopt(id, TcpOpt::SndBuf(w)).unwrap();
            }
            st.tcp_setsockopt(id, TcpOpt::NoDelay(tr.nodelay)).unwrap();
        });
    }
    let mut flows = [
        Flow {
            wr: c,
            wr_node: na,
            rd: s,
            rd_node: nb,
            data: pattern(tr.ab, 1),
            sent: 0,
            w_sizes: tr.w_sizes.clone(),
            r_sizes: tr.r_sizes.clone(),
            wi: 0,
            ri: 0,
            shut: false,
            may_shut: true,
            got: Vec::new(),
            eof: false,
            err: None,
        },
        Flow {
            wr: s,
            wr_node: nb,
            rd: c,
            rd_node: na,
            data: pattern(tr.ba, 7),
            sent: 0,
            w_sizes: tr.r_sizes.clone(),
            r_sizes: tr.w_sizes.clone(),
            wi: 0,
            ri: 0,
            shut: false,
            may_shut: true,
            got: Vec::new(),
            eof: false,
            err: None,
        },
    ];
    let deadline = t.sim.now() + bound;
    let outcome = loop {
        if !free_close {
            flows[0].may_shut = flows[1].eof && flows[0].got.len() == flows[0].data.len();
        }
        let mut moved = false;
        for f in flows.iter_mut() {
            moved |= f.pump(&mut t.sim)?;
        }
        if flows.iter().all(Flow::done) {
            break match flows.iter().find_map(|f| f.err) {
                Some(e) => Outcome::Error(e),
                None => Outcome::Done,
            };
        }
        if moved {
            continue;
        }
        // Nothing to do until the world moves: run what is due now (the
        // polls our calls queued included), then jump to the next event.
        let now = t.sim.now();
        t.sim.run_until(now);
        match t.sim.next_event_time() {
            None => break Outcome::Stuck,
            Some(at) if at > deadline => break Outcome::Timeout,
            Some(at) => t.sim.run_until(at),
        }
    };
    for f in &flows {
        // Whatever happened, what arrived is a prefix of what was written.
        prop_assert!(f.got.len() <= f.data.len());
        prop_assert!(f.got[..] == f.data[..f.got.len()]);
        if f.eof {
            prop_assert_eq!(
                f.got.len(),
                f.data.len(),
                "EOF after {} of {} bytes",
                f.got.len(),
                f.data.len()
            );
        }
    }
    Ok(outcome)
}

fn check_transfer(im: &Impair, tr: &Transfer, free_close: bool) -> Result<(), TestCaseError> {
    let t0 = std::time::Instant::now();
    let out = run_transfer(im, tr, Duration::from_secs(120), free_close)?;
    if std::env::var_os("TCP_PROP_VERBOSE").is_some() {
        eprintln!("{im:?} {tr:?} -> {out:?} in {:?}", t0.elapsed());
    }
    if im.loss == 0.0 && im.corrupt == 0.0 {
        prop_assert!(matches!(out, Outcome::Done), "no loss, yet {out:?}");
    }
    // TCP never goes idle with data outstanding, and ≤ 5 % loss does not
    // kill a connection (ETIMEDOUT takes ~15 minutes of retries); only ARP
    // failing three times in a row (EHOSTUNREACH, as Linux) may.
    prop_assert!(
        matches!(
            out,
            Outcome::Done | Outcome::Timeout | Outcome::Error(Errno::EHOSTUNREACH)
        ),
        "{out:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn stream_is_exact_under_impairment(im in impair_strategy(), tr in transfer_strategy()) {
        check_transfer(&im, &tr, false)?;
    }

    /// The same with both sides half-closing as soon as they are done
    /// writing (found the FIN_WAIT2 bug).
    #[test]
    fn stream_is_exact_with_early_half_close(im in impair_strategy(), tr in transfer_strategy()) {
        check_transfer(&im, &tr, true)?;
    }
}

/// Bug: when FIN arrives in FIN_WAIT2 on a socket the application still
/// holds, `tcp_fin` → `tcp_time_wait` (tcp/input.rs) purges the receive
/// queue, so data that arrived before the FIN and was not read yet is lost
/// and `recv` reports end of stream at once. Linux keeps the queue: the
/// user's socket goes to CLOSE (the TIME-WAIT state lives in a separate
/// timewait sock) and `recv` returns the data, then 0.
#[test]
fn repro_fin_in_fin_wait2_discards_unread_data() {
    let (mut t, na, nb) = two_hosts(0, LinkConfig::default());
    let ba = Blocking::new(na);
    let bb = Blocking::new(nb);
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip(B), 80).unwrap();
    let (s, _) = bb.accept(&mut t.sim, l).unwrap();
    // A half-closes; B's ACK takes A to FIN_WAIT2.
    ba.shutdown_write(&mut t.sim, c).unwrap();
    t.sim.run_for(Duration::from_millis(10));
    // B sends 3000 bytes and its FIN; A has not read yet.
    let data = pattern(3000, 7);
    bb.write_all(&mut t.sim, s, &data).unwrap();
    bb.shutdown_write(&mut t.sim, s).unwrap();
    t.sim.run_for(Duration::from_millis(10));
    let mut got = Vec::new();
    ba.read_to_end(&mut t.sim, c, &mut got).unwrap();
    assert_eq!(
        got.len(),
        data.len(),
        "A read {} of {} bytes before EOF",
        got.len(),
        data.len()
    );
    assert!(got == data);
}

/// Bug: `shutdown(SHUT_WR)` on a listening socket closes the listener
/// (`tcp_shutdown` calls `tcp_close_listener` for any `how`). Linux's
/// `inet_shutdown` does nothing for a listener unless `how` includes
/// SHUT_RD: the socket keeps listening and accepting.
#[test]
fn repro_shutdown_wr_on_listener_keeps_listening() {
    let (mut t, na, nb) = two_hosts(0, LinkConfig::default());
    let ba = Blocking::with_limit(na, Duration::from_secs(5));
    let bb = Blocking::with_limit(nb, Duration::from_secs(5));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    with_stack(&mut t.sim, nb, |s, now| {
        s.tcp_shutdown(now, l, Shutdown::Write)
    })
    .unwrap();
    let c = ba.socket(&mut t.sim);
    assert_eq!(ba.connect(&mut t.sim, c, ip(B), 80), Ok(()));
    assert!(bb.accept(&mut t.sim, l).is_ok());
}

/// Bug: `shutdown()` on a socket that never connected (TCP_CLOSE) returns
/// `Ok` for SHUT_RD; Linux's `inet_shutdown` returns ENOTCONN for every
/// `how` in TCP_CLOSE.
#[test]
fn repro_shutdown_rd_unconnected_is_enotconn() {
    let (mut t, na, _) = two_hosts(0, LinkConfig::default());
    let r = with_stack(&mut t.sim, na, |s, now| {
        let id = s.tcp_socket();
        s.tcp_shutdown(now, id, Shutdown::Read)
    });
    assert_eq!(r, Err(Errno::ENOTCONN));
}

/// Bug: `shutdown(SHUT_WR)` during the handshake (SYN_SENT) returns
/// ENOTCONN and leaves the connect running. Linux's `inet_shutdown` calls
/// `tcp_disconnect()` for SYN_SENT and returns 0: the socket is back in
/// CLOSE and the connection never completes.
#[test]
fn repro_shutdown_in_syn_sent_disconnects() {
    let (mut t, na, nb) = two_hosts(0, LinkConfig::default());
    let bb = Blocking::new(nb);
    let _l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let (c, r) = with_stack(&mut t.sim, na, |s, now| {
        let c = s.tcp_socket();
        assert_eq!(s.tcp_connect(now, c, ip(B), 80), Err(Errno::EINPROGRESS));
        (c, s.tcp_shutdown(now, c, Shutdown::Write))
    });
    assert_eq!(r, Ok(()));
    t.sim.run_for(Duration::from_secs(1));
    let st = netpath::sim::blocking::stack(&t.sim, na).tcp_state(c);
    assert_eq!(st, Some(netpath::tcp::TcpState::Closed));
}

/// Bug: after a non-blocking connect() is refused (RST), the socket is
/// CLOSED with `connecting` still set until connect() is called again.
/// netpath then lets listen() succeed, and a later connect() on that
/// listening socket returns `Ok(())` (the stale `connecting` flag takes the
/// "handshake finished" branch). Linux: `inet_listen` refuses with EINVAL
/// because `sock->state` is still SS_CONNECTING; and connect() on a
/// listener is EISCONN, never success.
#[test]
fn repro_listen_after_refused_connect() {
    let (mut t, na, _) = two_hosts(0, LinkConfig::default());
    let c = with_stack(&mut t.sim, na, |s, now| {
        let c = s.tcp_socket();
        assert_eq!(s.tcp_connect(now, c, ip(B), 81), Err(Errno::EINPROGRESS));
        c
    });
    t.sim.run_for(Duration::from_millis(100)); // RST from B: refused
    let (listen, connect) = with_stack(&mut t.sim, na, |s, now| {
        let l = s.tcp_listen(c, 16);
        (l, s.tcp_connect(now, c, ip(B), 81))
    });
    assert_ne!(connect, Ok(()), "connect() succeeded on a listening socket");
    assert_eq!(listen, Err(Errno::EINVAL));
}

/// The same bug reached without a pending connect: a connection reset by
/// the peer leaves the socket CLOSED, and netpath lets it listen(). Linux:
/// EINVAL (`sock->state` is still SS_CONNECTED).
#[test]
fn repro_listen_on_reset_connection() {
    let (mut t, na, nb) = two_hosts(0, LinkConfig::default());
    let (ba, bb) = (Blocking::new(na), Blocking::new(nb));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip(B), 80).unwrap();
    let (s, _) = bb.accept(&mut t.sim, l).unwrap();
    ba.write_all(&mut t.sim, c, b"x").unwrap();
    t.sim.run_for(Duration::from_millis(10));
    bb.close(&mut t.sim, s).unwrap(); // unread data: RST
    t.sim.run_for(Duration::from_millis(10));
    let r = with_stack(&mut t.sim, na, |st, _| st.tcp_listen(c, 16));
    assert_eq!(r, Err(Errno::EINVAL));
}

/// Bug: on a connection to the host's own address (loopback, MTU 65536)
/// the MSS is 65484 with timestamps, so a full segment would be an IPv4
/// packet of 20 + 32 + 65484 = 65536 bytes, one more than IPv4's 65535
/// maximum. The segment is never sent (`data_segs_out` stays 0,
/// `notsent_bytes` stays at what was written, only the probe timer backs
/// off), and the transfer stalls forever. Linux caps the MSS so the packet
/// fits (`ss -i` shows `mss:65483` on lo).
#[test]
fn repro_loopback_full_segment_stalls() {
    let (mut t, _, nb) = two_hosts(0, LinkConfig::default());
    let bb = Blocking::with_limit(nb, Duration::from_secs(30));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let c = bb.socket(&mut t.sim);
    bb.connect(&mut t.sim, c, ip(B), 80).unwrap();
    let (s, _) = bb.accept(&mut t.sim, l).unwrap();
    let data = pattern(70_000, 3);
    bb.write_all(&mut t.sim, c, &data).unwrap();
    bb.close(&mut t.sim, c).unwrap();
    let mut got = Vec::new();
    let r = bb.read_to_end(&mut t.sim, s, &mut got);
    assert_eq!(
        r,
        Ok(data.len()),
        "read {} of {} bytes",
        got.len(),
        data.len()
    );
    assert!(got == data);
}

/// Bug (found by `calls_never_panic_and_errnos_are_linux`, with the
/// loopback stall above): a self-connected socket (bind B:5000, connect to
/// B:5000: simultaneous open with itself, as Linux allows) is sent 70000
/// bytes, which stall, then closed. The orphan in FIN_WAIT1 is never
/// aborted: its timer backs off to 120 s and fires forever, and it is still
/// there after 30 minutes. Linux gives up on an orphan after
/// `tcp_orphan_retries` (0 → 8) retransmissions / probes. (With two
/// distinct sockets on the host the orphan does go away.)
#[test]
fn repro_stalled_orphan_never_dies() {
    let (mut t, _, nb) = two_hosts(0, LinkConfig::default());
    let id = with_stack(&mut t.sim, nb, |s, now| {
        let id = s.tcp_socket();
        s.tcp_bind(id, ip(B), 5000).unwrap();
        assert_eq!(s.tcp_connect(now, id, ip(B), 5000), Err(Errno::EINPROGRESS));
        id
    });
    t.sim.run_for(Duration::from_millis(1));
    let data = pattern(70_000, 3);
    with_stack(&mut t.sim, nb, |s, now| {
        assert_eq!(s.tcp_state(id), Some(TcpState::Established));
        s.tcp_send(now, id, &data, SendFlags::default()).unwrap();
        s.tcp_close(now, id).unwrap();
    });
    t.sim.run_for(Duration::from_secs(1800));
    let left = netpath::sim::blocking::stack(&t.sim, nb).tcp_sockets();
    assert!(left.is_empty(), "after 30 min: {left:?}");
}

/// Bug (found by the stream property with the far MTU below 552): A —
/// R — C with the R–C link's MTU 120. C advertises MSS 88, so A's segments
/// are 128-byte packets with DF; R answers "fragmentation needed, MTU
/// 120"; A clamps its PMTU to `min_pmtu` (552) but keeps sending with DF,
/// so every retransmission is refused again and nothing ever arrives
/// (`tcp_info`: pmtu 552, snd_mss 76, backoff growing; C reads 0 bytes).
/// Linux locks the route MTU at 552 when the reported MTU is below
/// `min_pmtu`, and `ip_dont_fragment()` is false for a locked MTU: the
/// segments go out without DF and R fragments them. (Also, Linux's
/// advertised MSS has a floor of `ip_rt_min_advmss` = 256, not 88.)
#[test]
fn repro_tiny_path_mtu_blackholes() {
    let (mut t, a, _r, c) = Topo::routed(0, 120);
    let ba = Blocking::with_limit(a.node, Duration::from_secs(30));
    let bc = Blocking::with_limit(c.node, Duration::from_secs(30));
    let l = bc.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let s = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, s, ip("198.51.100.1"), 80).unwrap();
    let (cs, _) = bc.accept(&mut t.sim, l).unwrap();
    let data = pattern(3000, 1);
    ba.write_all(&mut t.sim, s, &data).unwrap();
    ba.shutdown_write(&mut t.sim, s).unwrap();
    let mut got = Vec::new();
    let r = bc.read_to_end(&mut t.sim, cs, &mut got);
    assert_eq!(
        r,
        Ok(data.len()),
        "C read {} of {} bytes",
        got.len(),
        data.len()
    );
    assert!(got == data);
}
