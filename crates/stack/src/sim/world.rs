//! The simulated world: nodes (hosts, switches, test peers), the links
//! between their ports, a virtual clock and the event queue that drives them.
//!
//! The clock jumps from one event to the next, so a simulated minute of
//! traffic takes milliseconds and nothing ever sleeps. Events due at the same
//! instant run in the order they were scheduled, and every random choice
//! comes from the world's seed: the same seed gives the same run, bit for bit.
//!
//! A frame crossing a link is never copied (DESIGN.md §7): the sender's skb
//! itself moves into the event queue and on to the receiver. Only the wire's
//! own work copies bytes: a hub delivering to several ends, or a duplicate,
//! shares them (`clone`), and a bit flip unshares the copy it damages.

use core::any::Any;
use core::fmt;

use super::event::{Event, EventQueue};
use super::link::{Link, LinkConfig, LinkConfigError, LinkStats};
use super::rng::SimRng;
use crate::capture::Capture;
use crate::drop::{DropReason, DropStats};
use crate::skb::{ChecksumState, Skb, SkbMeta, SkbPool};
use crate::time::{Duration, Instant};

/// A node of the world, numbered in the order added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

/// A node-local port number (a NIC's port, a switch port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

/// A link of the world, numbered in the order added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub(crate) u32);

/// A capture attached with [`Sim::capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureId(usize);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl LinkId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Lets [`Sim::node`] hand a node back as its concrete type.
pub trait AsAny: Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Anything with ports that frames arrive on: a host's NICs, a switch, a
/// test peer.
pub trait Node: AsAny {
    /// A frame arrives on one of this node's ports. `touched` is true when
    /// the link altered the bytes (corruption): a NIC then has to verify its
    /// FCS in full.
    fn receive(
        &mut self,
        now: Instant,
        port: PortId,
        frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    );

    /// Called when the node is added and whenever a deadline it asked for is
    /// reached; returns the next deadline, or `None`.
    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant>;

    /// Whether `receive` takes frames with hardware work still pending: the
    /// FCS ([`crate::skb::SkbMeta::fcs_pending`]) and a transport checksum
    /// left partial (`CHECKSUM_PARTIAL`). If not (the default), the world
    /// works them out before delivery ([`Skb::resolve_offloads`]).
    fn lazy_fcs(&self) -> bool {
        false
    }

    /// Whether `receive` takes a TSO burst whole ([`Skb::is_gso`]: a NIC
    /// that builds its frames only if it needs them,
    /// [`crate::dev::nic::tso_frames`]). If not (the default), the world
    /// hands it the frames one by one.
    fn gso_bursts(&self) -> bool {
        false
    }
}

/// Why the world refused a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimError {
    UnknownNode(NodeId),
    UnknownLink(LinkId),
    UnknownCapture(CaptureId),
    /// The port is already attached to a link (or named twice).
    PortInUse {
        node: NodeId,
        port: PortId,
    },
    /// A link needs at least two ends.
    TooFewEnds {
        ends: usize,
    },
    /// The port is not an end of that link.
    NotAnEnd {
        link: LinkId,
        node: NodeId,
        port: PortId,
    },
    /// That link end already has a capture.
    AlreadyCaptured {
        link: LinkId,
        node: NodeId,
        port: PortId,
    },
    Config(LinkConfigError),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SimError::UnknownNode(n) => write!(f, "no node {}", n.0),
            SimError::UnknownLink(l) => write!(f, "no link {}", l.0),
            SimError::UnknownCapture(c) => write!(f, "no capture {}", c.0),
            SimError::PortInUse { node, port } => {
                write!(f, "port {} of node {} is already attached", port.0, node.0)
            }
            SimError::TooFewEnds { ends } => write!(f, "a link needs 2 or more ends, not {ends}"),
            SimError::NotAnEnd { link, node, port } => {
                write!(
                    f,
                    "port {} of node {} is not on link {}",
                    port.0, node.0, link.0
                )
            }
            SimError::AlreadyCaptured { link, node, port } => write!(
                f,
                "port {} of node {} on link {} is already captured",
                port.0, node.0, link.0
            ),
            SimError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SimError {}

impl From<LinkConfigError> for SimError {
    fn from(e: LinkConfigError) -> Self {
        SimError::Config(e)
    }
}

/// Everything but the nodes, so that a node can be called while it reaches
/// the links through its [`NodeCtx`].
struct Fabric {
    now: Instant,
    seed: u64,
    queue: EventQueue,
    links: Vec<Link>,
    /// `ports[node][port]`: the (link, end) the port is attached to.
    ports: Vec<Vec<Option<(usize, usize)>>>,
    /// Each node's pending deadline.
    deadlines: Vec<Option<Instant>>,
    /// Copies scheduled for delivery and not yet delivered.
    in_flight: u64,
    captures: Vec<Option<Capture>>,
    drops: DropStats,
    pool: SkbPool,
    events_run: u64,
}

/// What a node may do while it is called: send frames, ask to be polled,
/// allocate skbs.
pub struct NodeCtx<'a> {
    fabric: &'a mut Fabric,
    node: usize,
    in_poll: bool,
}

impl NodeCtx<'_> {
    pub fn now(&self) -> Instant {
        self.fabric.now
    }

    /// The node being called.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.node as u32)
    }

    /// The world's skb pool.
    pub fn pool(&self) -> &SkbPool {
        &self.fabric.pool
    }

    /// Puts `frame` on the link attached to `port` now. A port without a
    /// link drops it (counted as `DEV_READY`: no carrier).
    pub fn transmit(&mut self, port: PortId, frame: Skb) {
        self.fabric.transmit(self.node, port, frame);
    }

    /// Asks to be polled at `when` (or now, if it has passed); the earliest
    /// request wins. From inside `poll`, "now" means 1 ns later, so virtual
    /// time always moves on.
    pub fn poll_at(&mut self, when: Instant) {
        self.fabric.set_deadline(self.node, when, self.in_poll);
    }

    pub fn is_attached(&self, port: PortId) -> bool {
        self.fabric.port(self.node, port).is_some()
    }
}

impl Fabric {
    fn port(&self, node: usize, port: PortId) -> Option<(usize, usize)> {
        *self.ports.get(node)?.get(usize::from(port.0))?
    }

    fn set_deadline(&mut self, node: usize, when: Instant, from_poll: bool) {
        let floor = if from_poll {
            self.now + Duration::from_nanos(1)
        } else {
            self.now
        };
        let when = when.max(floor);
        let Some(slot) = self.deadlines.get_mut(node) else {
            return;
        };
        if slot.is_none_or(|d| when < d) {
            *slot = Some(when);
            self.queue.push(when, Event::Poll { node });
        }
    }

    /// The frames of a TSO burst, one after the other.
    fn transmit_frames(&mut self, node: usize, port: PortId, burst: Skb) {
        let mut frames = Vec::new();
        if crate::dev::nic::tso_frames(&burst, &self.pool, &mut frames).is_err() {
            self.drops.kfree_skb_reason(burst, DropReason::SkbGsoSeg);
            return;
        }
        drop(burst);
        for f in frames {
            self.transmit(node, port, f);
        }
    }

    /// The sending half of a link: serialise, capture, then fan the frame
    /// out to every other end through the impairments.
    fn transmit(&mut self, node: usize, port: PortId, mut skb: Skb) {
        let now = self.now;
        let Some((l, from)) = self.port(node, port) else {
            self.drops.kfree_skb_reason(skb, DropReason::DevReady);
            return;
        };
        let Fabric {
            links,
            queue,
            drops,
            captures,
            in_flight,
            ..
        } = self;
        let Some(link) = links.get_mut(l) else {
            drops.kfree_skb_reason(skb, DropReason::DevReady);
            return;
        };
        // A TSO burst crosses whole only where nothing would tell its
        // frames apart; elsewhere the NIC's segmentation is done now and
        // each frame goes on the wire by itself.
        let burst = skb.is_gso();
        if burst && !link.carries_bursts() {
            self.transmit_frames(node, port, skb);
            return;
        }
        // Counted as the frames it stands for (serialise counts one, of the
        // burst's own length).
        if burst {
            let (frames, bytes) = crate::dev::nic::tso_frame_counts(&skb);
            link.stats.tx_frames += frames as u64 - 1;
            let wire = bytes + frames * netpath_wire::ethernet::FCS_LEN;
            link.stats.tx_bytes += (wire as u64).saturating_sub(skb.len() as u64);
        }
        let Some(last_bit_out) = link.serialise(now, from, skb.len()) else {
            drops.kfree_skb_reason(skb, DropReason::FullRing);
            return;
        };
        // Only the bytes cross a wire (and what of them the sending
        // hardware has still to work out: FCS, transport checksum).
        let (fcs_pending, summed) = (skb.meta.fcs_pending, skb.meta.ip_summed);
        let hw_csum = fcs_pending && matches!(summed, ChecksumState::Partial { .. });
        if !hw_csum {
            // Not a NIC's frame (no pending FCS): its bytes are final.
            skb.checksum_help();
        }
        let gso_size = skb.meta.gso_size;
        skb.meta = SkbMeta::default();
        skb.meta.fcs_pending = fcs_pending;
        skb.meta.gso_size = gso_size;
        if hw_csum {
            skb.meta.ip_summed = summed;
        }
        if let Some(c) = link.ends[from].capture {
            if let Some(Some(cap)) = captures.get_mut(c) {
                skb.resolve_offloads();
                cap.record(now, skb.data());
            }
        }
        let at = last_bit_out + link.cfg.latency;
        let receivers = link.ends.len() - 1;
        let mut frame = Some(skb);
        let mut n = 0;
        for end in (0..link.ends.len()).filter(|&e| e != from) {
            n += 1;
            // The last receiver gets the skb itself; the others share it.
            let copy = if n == receivers {
                frame.take()
            } else {
                frame.clone()
            };
            let Some(copy) = copy else { continue };
            if let Some((first, second)) = link.impair(copy, at, drops) {
                for arrival in core::iter::once(first).chain(second) {
                    *in_flight += 1;
                    queue.push(
                        arrival.at,
                        Event::Deliver {
                            link: l,
                            end,
                            arrival,
                        },
                    );
                }
            }
        }
    }
}

/// The simulated world.
pub struct Sim {
    nodes: Vec<Box<dyn Node>>,
    fabric: Fabric,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.fabric.now)
            .field("seed", &self.fabric.seed)
            .field("nodes", &self.nodes.len())
            .field("links", &self.fabric.links.len())
            .field("events", &self.fabric.queue.len())
            .finish()
    }
}

impl Sim {
    /// An empty world at time zero whose randomness all comes from `seed`.
    pub fn new(seed: u64) -> Self {
        Sim::with_pool(seed, SkbPool::default())
    }

    /// Same, with nodes allocating from `pool`.
    pub fn with_pool(seed: u64, pool: SkbPool) -> Self {
        Sim {
            nodes: Vec::new(),
            fabric: Fabric {
                now: Instant::ZERO,
                seed,
                queue: EventQueue::default(),
                links: Vec::new(),
                ports: Vec::new(),
                deadlines: Vec::new(),
                in_flight: 0,
                captures: Vec::new(),
                drops: DropStats::new(),
                pool,
                events_run: 0,
            },
        }
    }

    pub fn now(&self) -> Instant {
        self.fabric.now
    }

    pub fn seed(&self) -> u64 {
        self.fabric.seed
    }

    pub fn pool(&self) -> &SkbPool {
        &self.fabric.pool
    }

    /// Frames the world itself dropped: lost on links (`LINK_LOSS`), refused
    /// by a full sending queue (`FULL_RING`), sent on a port without a link
    /// (`DEV_READY`).
    pub fn drops(&self) -> &DropStats {
        &self.fabric.drops
    }

    /// Events run so far.
    pub fn events_run(&self) -> u64 {
        self.fabric.events_run
    }

    /// Adds a node; it is polled first at the current time.
    pub fn add_node(&mut self, node: Box<dyn Node>) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.fabric.ports.push(Vec::new());
        self.fabric.deadlines.push(None);
        self.fabric.set_deadline(id, self.fabric.now, false);
        NodeId(id as u32)
    }

    /// The node `id`, if it is a `T`.
    pub fn node<T: Node>(&self, id: NodeId) -> Option<&T> {
        let n: &dyn Node = &**self.nodes.get(id.index())?;
        n.as_any().downcast_ref()
    }

    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> Option<&mut T> {
        let n: &mut dyn Node = &mut **self.nodes.get_mut(id.index())?;
        n.as_any_mut().downcast_mut()
    }

    /// Joins the given ports with a link (two ends: a cable; more: a hub).
    pub fn add_link(
        &mut self,
        cfg: LinkConfig,
        ends: &[(NodeId, PortId)],
    ) -> Result<LinkId, SimError> {
        cfg.validate()?;
        if ends.len() < 2 {
            return Err(SimError::TooFewEnds { ends: ends.len() });
        }
        for (i, &(node, port)) in ends.iter().enumerate() {
            if node.index() >= self.nodes.len() {
                return Err(SimError::UnknownNode(node));
            }
            if self.fabric.port(node.index(), port).is_some() || ends[..i].contains(&(node, port)) {
                return Err(SimError::PortInUse { node, port });
            }
        }
        let l = self.fabric.links.len();
        let rng = SimRng::derive(self.fabric.seed, l as u64);
        self.fabric.links.push(Link::new(cfg, rng, ends));
        for (end, &(node, port)) in ends.iter().enumerate() {
            let ports = &mut self.fabric.ports[node.index()];
            let p = usize::from(port.0);
            if ports.len() <= p {
                ports.resize(p + 1, None);
            }
            ports[p] = Some((l, end));
        }
        Ok(LinkId(l as u32))
    }

    fn link(&self, id: LinkId) -> Result<&Link, SimError> {
        self.fabric
            .links
            .get(id.index())
            .ok_or(SimError::UnknownLink(id))
    }

    pub fn link_stats(&self, id: LinkId) -> Option<LinkStats> {
        self.link(id).ok().map(|l| l.stats)
    }

    pub fn link_config(&self, id: LinkId) -> Option<LinkConfig> {
        self.link(id).ok().map(|l| l.cfg)
    }

    /// Changes a link's behaviour from now on (frames already on the way
    /// keep their fate).
    pub fn set_link_config(&mut self, id: LinkId, cfg: LinkConfig) -> Result<(), SimError> {
        cfg.validate()?;
        let link = self
            .fabric
            .links
            .get_mut(id.index())
            .ok_or(SimError::UnknownLink(id))?;
        link.cfg = cfg;
        Ok(())
    }

    /// Taps the end `at` of `link`: every frame it sends (stamped when sent;
    /// not frames its full queue refused) and every frame delivered to it
    /// (stamped on arrival), as bytes on the wire.
    pub fn capture(
        &mut self,
        link: LinkId,
        at: (NodeId, PortId),
        capture: Capture,
    ) -> Result<CaptureId, SimError> {
        let (node, port) = at;
        let end = self
            .link(link)?
            .ends
            .iter()
            .position(|e| (e.node, e.port) == at)
            .ok_or(SimError::NotAnEnd { link, node, port })?;
        let captures = &mut self.fabric.captures;
        let end = &mut self.fabric.links[link.index()].ends[end];
        if end
            .capture
            .is_some_and(|c| captures.get(c).is_some_and(Option::is_some))
        {
            return Err(SimError::AlreadyCaptured { link, node, port });
        }
        captures.push(Some(capture));
        end.capture = Some(captures.len() - 1);
        Ok(CaptureId(captures.len() - 1))
    }

    pub fn capture_ref(&self, id: CaptureId) -> Option<&Capture> {
        self.fabric.captures.get(id.0)?.as_ref()
    }

    /// Detaches a capture and hands it back (e.g. to read its `Vec<u8>`).
    pub fn take_capture(&mut self, id: CaptureId) -> Option<Capture> {
        self.fabric.captures.get_mut(id.0)?.take()
    }

    /// Sends `frame` from `port` of `node` now, as if the node had.
    pub fn inject(&mut self, node: NodeId, port: PortId, frame: Skb) {
        self.fabric.transmit(node.index(), port, frame);
    }

    /// Polls `node` now (after something outside the world changed it, e.g.
    /// a test queued a packet on its stack).
    pub fn wake(&mut self, node: NodeId) {
        let now = self.fabric.now;
        self.fabric.set_deadline(node.index(), now, false);
    }

    /// A node as its concrete type, then polled now: for changing a node
    /// from outside (`sim.with_node(id, |h: &mut SimHost| …)`).
    pub fn with_node<T: Node, R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut T, Instant) -> R,
    ) -> Option<R> {
        let now = self.fabric.now;
        let r = f(self.node_mut::<T>(id)?, now);
        self.wake(id);
        Some(r)
    }

    /// When the next event is due (a real-time driver sleeps until then).
    pub fn next_event_time(&self) -> Option<Instant> {
        self.fabric.queue.peek_time()
    }

    /// Runs the next event, if any; returns its time.
    pub fn step(&mut self) -> Option<Instant> {
        self.step_until(Instant::from_nanos(u64::MAX))
    }

    fn step_until(&mut self, limit: Instant) -> Option<Instant> {
        let (at, ev) = self.fabric.queue.pop_due(limit)?;
        self.fabric.now = at;
        self.fabric.events_run += 1;
        self.dispatch(ev);
        Some(at)
    }

    /// Runs every event due up to `limit`, then sets the clock to `limit`.
    pub fn run_until(&mut self, limit: Instant) {
        while self.step_until(limit).is_some() {}
        self.fabric.now = self.fabric.now.max(limit);
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.fabric.now + d);
    }

    /// Runs until no frame is on its way and no node has a deadline, or the
    /// next event would be after `limit`. Returns true if the world is idle;
    /// the clock stays at the last event run.
    pub fn run_until_idle(&mut self, limit: Instant) -> bool {
        while !self.is_idle() {
            if self.step_until(limit).is_none() {
                return false;
            }
        }
        true
    }

    /// No frame on its way and no deadline pending.
    pub fn is_idle(&self) -> bool {
        self.fabric.in_flight == 0 && self.fabric.deadlines.iter().all(Option::is_none)
    }

    fn dispatch(&mut self, ev: Event) {
        let now = self.fabric.now;
        match ev {
            Event::Deliver { link, end, arrival } => {
                self.fabric.in_flight -= 1;
                let Some(l) = self.fabric.links.get_mut(link) else {
                    return;
                };
                l.stats.in_flight -= 1;
                l.stats.delivered += if arrival.skb.is_gso() {
                    crate::dev::nic::tso_frame_counts(&arrival.skb).0 as u64
                } else {
                    1
                };
                let (node, port, capture) =
                    (l.ends[end].node, l.ends[end].port, l.ends[end].capture);
                let mut skb = arrival.skb;
                if let Some(Some(cap)) = capture.and_then(|c| self.fabric.captures.get_mut(c)) {
                    skb.resolve_offloads();
                    cap.record(now, skb.data());
                }
                let Some(n) = self.nodes.get_mut(node.index()) else {
                    return;
                };
                if skb.is_gso() && !n.gso_bursts() {
                    // A node that takes frames one by one gets them so.
                    let mut frames = Vec::new();
                    if crate::dev::nic::tso_frames(&skb, &self.fabric.pool, &mut frames).is_err() {
                        self.fabric
                            .drops
                            .kfree_skb_reason(skb, DropReason::SkbGsoSeg);
                        return;
                    }
                    drop(skb);
                    for mut f in frames {
                        if !n.lazy_fcs() {
                            f.resolve_offloads();
                        }
                        let mut ctx = NodeCtx {
                            fabric: &mut self.fabric,
                            node: node.index(),
                            in_poll: false,
                        };
                        n.receive(now, port, f, arrival.touched, &mut ctx);
                    }
                    return;
                }
                if !n.lazy_fcs() {
                    skb.resolve_offloads();
                }
                let mut ctx = NodeCtx {
                    fabric: &mut self.fabric,
                    node: node.index(),
                    in_poll: false,
                };
                n.receive(now, port, skb, arrival.touched, &mut ctx);
            }
            Event::Poll { node } => {
                // A deadline replaced by an earlier one leaves a stale event.
                if self.fabric.deadlines.get(node) != Some(&Some(now)) {
                    return;
                }
                self.fabric.deadlines[node] = None;
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                let mut ctx = NodeCtx {
                    fabric: &mut self.fabric,
                    node,
                    in_poll: true,
                };
                if let Some(next) = n.poll(now, &mut ctx) {
                    self.fabric.set_deadline(node, next, true);
                }
            }
        }
    }
}
