//! smoltcp as a node of netpath's simulator: an independent TCP/IPv4
//! implementation to test netpath's TCP against (interop) and to measure it
//! beside (benchmarks).
//!
//! [`SmolHost`] wraps a smoltcp [`Interface`] and [`SocketSet`] behind one
//! Ethernet port ([`PORT`], `PortId(0)`) and implements
//! [`netpath::sim::Node`], so it can be cabled to netpath hosts, switches or
//! other `SmolHost`s with `Sim::add_link`.
//!
//! Frames on netpath's simulated links carry their 4-byte FCS (as
//! `dev/nic.rs` sends and expects them). A `SmolHost` strips it on receive
//! (verifying it when the link altered the frame, or always if
//! [`SmolConfig::always_check_fcs`]), and on transmit pads to Ethernet's
//! 60-byte minimum and appends it, so netpath NICs accept its frames.
//!
//! Time: netpath's [`Instant`] (ns) becomes smoltcp's
//! `Instant::from_micros(ns / 1000)`; a deadline smoltcp asks for is
//! rounded up to a whole microsecond, so smoltcp's clock always moves on.
//!
//! # Driving it from a test
//!
//! Nodes only run inside the simulation loop. After the test changes a
//! `SmolHost` from outside (connect, send, recv — reading frees window space
//! and may owe the peer a window update — close), the node must be polled:
//! call `sim.wake(id)`, or make the change through [`with_smol`] (or
//! `Sim::with_node`), which wakes it for you.
//!
//! ```
//! use netpath::sim::{LinkConfig, Sim};
//! use netpath::time::Duration;
//! use netpath_smolnode::{with_smol, SmolConfig, SmolHost, PORT};
//! use smoltcp::socket::tcp::State;
//! use smoltcp::wire::Ipv4Address;
//!
//! let mut sim = Sim::new(1);
//! let a = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
//!     [2, 0, 0, 0, 0, 1], Ipv4Address::new(192, 0, 2, 1), 24))));
//! let b = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
//!     [2, 0, 0, 0, 0, 2], Ipv4Address::new(192, 0, 2, 2), 24))));
//! sim.add_link(LinkConfig::default(), &[(a, PORT), (b, PORT)]).unwrap();
//!
//! let server = with_smol(&mut sim, b, |h| h.tcp_listen(80)).unwrap();
//! let client = with_smol(&mut sim, a, |h| {
//!     h.tcp_connect(Ipv4Address::new(192, 0, 2, 2), 80, 0)
//! })
//! .unwrap();
//! sim.run_for(Duration::from_millis(10));
//! assert_eq!(with_smol(&mut sim, a, |h| h.state(client)), State::Established);
//!
//! assert_eq!(with_smol(&mut sim, a, |h| h.send(client, b"hello")), 5);
//! sim.run_for(Duration::from_millis(10));
//! let mut buf = [0; 16];
//! let n = with_smol(&mut sim, b, |h| h.recv(server, &mut buf));
//! assert_eq!(&buf[..n], b"hello");
//! ```

use std::collections::VecDeque;
use std::fmt;

use netpath::sim::{Node, NodeCtx, NodeId, PortId, Sim};
use netpath::skb::{Skb, SkbPool};
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, FCS_LEN, HEADER_LEN};
pub use smoltcp;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

/// The one port of a [`SmolHost`].
pub const PORT: PortId = PortId(0);

/// Default size of each TCP socket's receive and send buffer.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// Ethernet's minimum frame, without FCS.
const MIN_FRAME: usize = 60;

/// First local port [`SmolHost::tcp_connect`] picks when given port 0
/// (IANA's dynamic range, 49152–65535).
const EPHEMERAL_FIRST: u16 = 49152;

/// Upper bound on `Interface::poll` rounds per node call. smoltcp sends at
/// most one segment per socket per round; rounds stop as soon as one sends
/// nothing, so this only bounds a pathological case.
const MAX_ROUNDS: usize = 4096;

/// How a [`SmolHost`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmolConfig {
    pub mac: [u8; 6],
    pub addr: Ipv4Address,
    pub prefix_len: u8,
    /// Default route via this gateway (on the connected subnet).
    pub gateway: Option<Ipv4Address>,
    /// IP MTU (the Ethernet frame may be 14 bytes longer, plus FCS).
    pub mtu: usize,
    /// Receive buffer of each TCP socket created from now on.
    pub rx_buffer: usize,
    /// Send buffer of each TCP socket created from now on.
    pub tx_buffer: usize,
    /// smoltcp's random seed (initial sequence numbers, ...).
    pub random_seed: u64,
    /// Verify the FCS of every frame, not only of frames the link altered.
    pub always_check_fcs: bool,
}

impl SmolConfig {
    /// MTU 1500, no gateway, 256 KiB socket buffers, seed from the MAC.
    pub fn new(mac: [u8; 6], addr: Ipv4Address, prefix_len: u8) -> Self {
        let mut seed = [0u8; 8];
        seed[2..].copy_from_slice(&mac);
        SmolConfig {
            mac,
            addr,
            prefix_len,
            gateway: None,
            mtu: 1500,
            rx_buffer: DEFAULT_BUFFER,
            tx_buffer: DEFAULT_BUFFER,
            random_seed: u64::from_be_bytes(seed),
            always_check_fcs: false,
        }
    }
}

/// What a [`SmolHost`] did with frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmolStats {
    /// Frames that arrived on [`PORT`].
    pub rx_frames: u64,
    /// Dropped: bad FCS.
    pub rx_fcs_errors: u64,
    /// Dropped: shorter than an Ethernet header plus FCS, or on a port
    /// other than [`PORT`].
    pub rx_dropped: u64,
    /// Frames handed to the link.
    pub tx_frames: u64,
    /// Frames smoltcp built that were lost because no skb could be
    /// allocated (or no node call has provided the world's pool yet).
    pub tx_dropped: u64,
    /// Node calls (receive + poll).
    pub calls: u64,
}

/// The transmit half of the smoltcp device: finished frames wait here
/// until the node hands them to the link.
struct TxSide {
    queue: VecDeque<Skb>,
    pool: Option<SkbPool>,
    /// Where a frame is built when no skb can be had (then dropped).
    scratch: Vec<u8>,
    built: u64,
    dropped: u64,
}

/// The smoltcp `phy::Device` over netpath skbs.
struct SimDevice {
    rx: VecDeque<Skb>,
    tx: TxSide,
    /// Ethernet MTU: IP MTU + header.
    frame_mtu: usize,
}

struct RxToken(Skb);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0.data())
    }
}

struct TxToken<'a>(&'a mut TxSide);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let side = self.0;
        side.built += 1;
        let body = len.max(MIN_FRAME);
        let skb = side.pool.as_ref().and_then(|pool| {
            let mut skb = pool.alloc(body + FCS_LEN).ok()?;
            skb.put(body + FCS_LEN).ok()?;
            Some(skb)
        });
        let Some(mut skb) = skb else {
            side.dropped += 1;
            side.scratch.resize(len, 0);
            return f(&mut side.scratch[..len]);
        };
        let data = skb.data_mut();
        // Pool buffers are recycled: the padding must be zeroed.
        data[len..body].fill(0);
        let r = f(&mut data[..len]);
        // The FCS goes in `data[body..]`; as a netpath NIC does, leave it
        // to the world to work out when something reads it.
        skb.meta.fcs_pending = true;
        side.queue.push_back(skb);
        r
    }
}

impl phy::Device for SimDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: SmolInstant) -> Option<(RxToken, TxToken<'_>)> {
        let skb = self.rx.pop_front()?;
        Some((RxToken(skb), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: SmolInstant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.frame_mtu;
        caps
    }
}

/// netpath time to smoltcp time (microseconds, rounded down).
pub fn smol_instant(now: Instant) -> SmolInstant {
    SmolInstant::from_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX))
}

/// A smoltcp deadline as a netpath deadline after `now`: rounded so that it
/// is at least the next microsecond (smoltcp's clock tick).
fn sim_deadline(at: SmolInstant, now: Instant) -> Instant {
    let now_us = now.as_micros();
    let at_us = u64::try_from(at.total_micros()).unwrap_or(0);
    let us = at_us.max(now_us.saturating_add(1));
    Instant::from_nanos(us.saturating_mul(1000))
}

/// A smoltcp TCP/IPv4 host with one Ethernet port, as a simulation node.
/// See the [crate documentation](crate) for how to drive it.
pub struct SmolHost {
    iface: Interface,
    dev: SimDevice,
    sockets: SocketSet<'static>,
    cfg: SmolConfig,
    next_ephemeral: u16,
    stats: SmolStats,
}

impl fmt::Debug for SmolHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolHost")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SmolHost {
    /// # Panics
    /// If `cfg.prefix_len` is over 32 or `cfg.mtu` is below 576.
    pub fn new(cfg: SmolConfig) -> Self {
        assert!(cfg.prefix_len <= 32, "IPv4 prefix length over 32");
        assert!(cfg.mtu >= 576, "IPv4 MTU below 576");
        let mut dev = SimDevice {
            rx: VecDeque::new(),
            tx: TxSide {
                queue: VecDeque::new(),
                pool: None,
                scratch: Vec::new(),
                built: 0,
                dropped: 0,
            },
            frame_mtu: cfg.mtu + HEADER_LEN,
        };
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(cfg.mac)));
        config.random_seed = cfg.random_seed;
        let mut iface = Interface::new(config, &mut dev, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // One address into an empty list cannot overflow it.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(cfg.addr), cfg.prefix_len));
        });
        if let Some(gw) = cfg.gateway {
            // The route table starts empty.
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        SmolHost {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            cfg,
            next_ephemeral: EPHEMERAL_FIRST,
            stats: SmolStats::default(),
        }
    }

    pub fn config(&self) -> &SmolConfig {
        &self.cfg
    }

    pub fn stats(&self) -> SmolStats {
        SmolStats {
            tx_dropped: self.dev.tx.dropped,
            ..self.stats
        }
    }

    /// Buffer sizes of TCP sockets created from now on.
    pub fn set_buffer_sizes(&mut self, rx: usize, tx: usize) {
        self.cfg.rx_buffer = rx;
        self.cfg.tx_buffer = tx;
    }

    /// The smoltcp interface (addresses, routes, neighbour cache, ...).
    pub fn iface(&self) -> &Interface {
        &self.iface
    }

    pub fn iface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The smoltcp socket set, e.g. to add other kinds of socket.
    pub fn sockets_mut(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    fn new_tcp_socket(&self) -> tcp::Socket<'static> {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.cfg.rx_buffer]),
            tcp::SocketBuffer::new(vec![0; self.cfg.tx_buffer]),
        )
    }

    /// A TCP socket listening on `port` (any local address). It accepts one
    /// connection: smoltcp has no accept queue, the socket itself becomes
    /// the connection.
    pub fn tcp_listen(&mut self, port: u16) -> Result<SocketHandle, tcp::ListenError> {
        let mut s = self.new_tcp_socket();
        s.listen(port)?;
        Ok(self.sockets.add(s))
    }

    /// A TCP socket connecting to `remote:port` from `local_port` (0: the
    /// next port of 49152–65535). The SYN leaves at the next poll.
    pub fn tcp_connect(
        &mut self,
        remote: Ipv4Address,
        port: u16,
        local_port: u16,
    ) -> Result<SocketHandle, tcp::ConnectError> {
        let local_port = if local_port == 0 {
            let p = self.next_ephemeral;
            self.next_ephemeral = p.checked_add(1).unwrap_or(EPHEMERAL_FIRST);
            p
        } else {
            local_port
        };
        let mut s = self.new_tcp_socket();
        s.connect(
            self.iface.context(),
            (IpAddress::Ipv4(remote), port),
            local_port,
        )?;
        Ok(self.sockets.add(s))
    }

    /// The smoltcp socket behind `h`.
    ///
    /// # Panics
    /// If `h` is not a TCP socket of this host.
    pub fn socket(&self, h: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(h)
    }

    /// # Panics
    /// If `h` is not a TCP socket of this host.
    pub fn socket_mut(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Queues as much of `data` as fits in the send buffer; returns how much
    /// (0 if the socket cannot send).
    pub fn send(&mut self, h: SocketHandle, data: &[u8]) -> usize {
        self.socket_mut(h).send_slice(data).unwrap_or(0)
    }

    /// Reads what has arrived, up to `buf.len()`; 0 if nothing (see
    /// [`state`](Self::state) or `socket(h).may_recv()` for end of stream).
    pub fn recv(&mut self, h: SocketHandle, buf: &mut [u8]) -> usize {
        self.socket_mut(h).recv_slice(buf).unwrap_or(0)
    }

    pub fn state(&self, h: SocketHandle) -> tcp::State {
        self.socket(h).state()
    }

    /// Sends FIN once the queued data is out.
    pub fn close(&mut self, h: SocketHandle) {
        self.socket_mut(h).close();
    }

    /// Sends RST and closes at once.
    pub fn abort(&mut self, h: SocketHandle) {
        self.socket_mut(h).abort();
    }

    /// Connected or connecting (neither closed, listening nor time-wait).
    pub fn is_active(&self, h: SocketHandle) -> bool {
        self.socket(h).is_active()
    }

    /// Removes a socket (without sending anything).
    pub fn remove(&mut self, h: SocketHandle) {
        self.sockets.remove(h);
    }

    /// Runs smoltcp at `now`: ingress, then egress until nothing more goes
    /// out, handing every frame to the link. Returns the next deadline.
    fn process(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        self.stats.calls += 1;
        if self.dev.tx.pool.is_none() {
            self.dev.tx.pool = Some(ctx.pool().clone());
        }
        let t = smol_instant(now);
        for _ in 0..MAX_ROUNDS {
            let built = self.dev.tx.built;
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
            while let Some(skb) = self.dev.tx.queue.pop_front() {
                self.stats.tx_frames += 1;
                ctx.transmit(PORT, skb);
            }
            if self.dev.tx.built == built {
                break;
            }
        }
        let next = self.iface.poll_at(t, &self.sockets)?;
        Some(sim_deadline(next, now))
    }
}

impl Node for SmolHost {
    /// Frames with a pending FCS are good by construction (see `receive`).
    fn lazy_fcs(&self) -> bool {
        true
    }

    fn receive(
        &mut self,
        now: Instant,
        port: PortId,
        mut frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    ) {
        if port != PORT {
            self.stats.rx_dropped += 1;
            return;
        }
        self.stats.rx_frames += 1;
        let len = frame.len();
        if len < HEADER_LEN + FCS_LEN {
            self.stats.rx_dropped += 1;
            return;
        }
        // smoltcp reads every byte: a transport checksum a netpath NIC left
        // to its hardware is worked out (with the FCS it covers).
        if self.cfg.always_check_fcs
            || matches!(
                frame.meta.ip_summed,
                netpath::skb::ChecksumState::Partial { .. }
            )
        {
            frame.resolve_offloads();
        }
        if (touched || self.cfg.always_check_fcs) && fcs::check_fcs(frame.data()).is_err() {
            self.stats.rx_fcs_errors += 1;
            return;
        }
        if frame.trim(len - FCS_LEN).is_err() {
            self.stats.rx_dropped += 1;
            return;
        }
        self.dev.rx.push_back(frame);
        if let Some(next) = self.process(now, ctx) {
            ctx.poll_at(next);
        }
    }

    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        self.process(now, ctx)
    }
}

/// Runs `f` on the [`SmolHost`] `id`, then wakes it so that whatever `f`
/// queued (a SYN, data, a window update, a FIN) goes out at once.
///
/// # Panics
/// If `id` is not a `SmolHost`.
pub fn with_smol<R>(sim: &mut Sim, id: NodeId, f: impl FnOnce(&mut SmolHost) -> R) -> R {
    sim.with_node(id, |h: &mut SmolHost, _| f(h))
        .expect("node is not a SmolHost")
}

#[cfg(test)]
mod tests;
