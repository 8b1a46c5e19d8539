//! `Stack`: one host, like one Linux network namespace (DESIGN.md §3).
//!
//! It owns the devices, the softnet state (NAPI poll list, backlog), the
//! packet taps, the drop counters and the trace ring; later issues add the
//! FIB, neighbours, netfilter and sockets. Its state is single-threaded, like
//! one CPU's softirq context. Every entry point takes `now`; [`Stack::poll`]
//! runs what softirq would (hardware progress, NAPI polls up to their budget,
//! qdisc runs, timers) and returns the next deadline.

use crate::dev::napi::Softnet;
use crate::dev::taps::Taps;
use crate::dev::{DevError, Device, IfIndex};
use crate::drop::{DropReason, DropStats};
use crate::skb::{Skb, SkbPool};
use crate::time::Instant;
use crate::trace::Tracer;

/// Loops through virtual devices (tc redirects, bridge → port → …) are cut
/// here, as Linux's `XMIT_RECURSION_LIMIT`.
pub(crate) const RECURSION_LIMIT: u8 = 8;

/// One host.
#[derive(Debug)]
pub struct Stack {
    pub(crate) pool: SkbPool,
    /// Devices by ifindex (slot 0 unused).
    pub(crate) devs: Vec<Option<Device>>,
    pub(crate) softnet: Softnet,
    pub(crate) ip: crate::ipv4::Ipv4State,
    pub(crate) neigh: crate::neigh::NeighTable,
    pub(crate) nf: crate::netfilter::Netfilter,
    pub(crate) udp: crate::udp::UdpTable,
    pub(crate) tcp: crate::tcp::sock::TcpTable,
    pub(crate) taps: Taps,
    pub(crate) tracer: Tracer,
    pub(crate) drops: DropStats,
    pub(crate) now: Instant,
    /// Depth of nested xmit / receive through virtual devices.
    pub(crate) recursion: u8,
    /// Reused buffers, so that the packet path allocates nothing.
    pub(crate) scratch_mirrors: Vec<(IfIndex, crate::sched::tc::TcDirection)>,
    pub(crate) scratch_to_free: Vec<(Skb, DropReason)>,
    /// The segments of the GSO skb being sent (`dev_xmit_gso`).
    pub(crate) scratch_gso: Vec<Skb>,
    /// The flows GRO is merging, oldest first (`napi_gro_receive`; at most
    /// `MAX_GRO_FLOWS`, capacity kept).
    pub(crate) gro: Vec<crate::dev::gro::GroHeld>,
    pub(crate) scratch_devs: Vec<IfIndex>,
    /// The last packet a qdisc refused or called congested on enqueue, by
    /// skb id, and what it said: the `NET_XMIT_*` that Linux returns up
    /// through `dev_queue_xmit` to `ip_queue_xmit` and TCP, which reads it
    /// here (`tcp_transmit_skb`).
    pub(crate) xmit_refused: Option<(u64, crate::sched::NetXmit)>,
    /// The socket early demux found for an skb (by id): Linux's `skb->sk`,
    /// so that `tcp_v4_rcv` does not look it up again.
    pub(crate) demuxed: Option<(u64, crate::sock::SockId)>,
}

impl Stack {
    /// A host with only the loopback device (`lo`, ifindex 1), with its own
    /// buffer pool.
    pub fn new() -> Stack {
        Stack::with_pool(SkbPool::default())
    }

    /// A host drawing its buffers from `pool` (several hosts of a simulation
    /// may share one).
    pub fn with_pool(pool: SkbPool) -> Stack {
        let mut s = Stack {
            pool,
            devs: vec![None],
            softnet: Softnet::default(),
            ip: crate::ipv4::Ipv4State::default(),
            neigh: crate::neigh::NeighTable::default(),
            nf: crate::netfilter::Netfilter::default(),
            udp: crate::udp::UdpTable::default(),
            tcp: crate::tcp::sock::TcpTable::default(),
            taps: Taps::default(),
            tracer: Tracer::new(),
            drops: DropStats::new(),
            now: Instant::ZERO,
            recursion: 0,
            scratch_mirrors: Vec::with_capacity(8),
            scratch_to_free: Vec::with_capacity(64),
            scratch_gso: Vec::new(),
            gro: Vec::with_capacity(crate::dev::gro::MAX_GRO_FLOWS),
            xmit_refused: None,
            demuxed: None,
            scratch_devs: Vec::with_capacity(16),
        };
        s.add_loopback();
        s
    }

    pub fn pool(&self) -> &SkbPool {
        &self.pool
    }

    /// The time of the latest call into the stack.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the stack's clock forward (never back).
    pub(crate) fn set_now(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub fn drops(&self) -> &DropStats {
        &self.drops
    }

    /// The netfilter tables (`iptables -L`).
    pub fn netfilter(&self) -> &crate::netfilter::Netfilter {
        &self.nf
    }

    /// The netfilter tables, for changing rules (`iptables -A …`).
    pub fn netfilter_mut(&mut self) -> &mut crate::netfilter::Netfilter {
        &mut self.nf
    }

    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    pub fn tracer_mut(&mut self) -> &mut Tracer {
        &mut self.tracer
    }

    /// `kfree_skb_reason()`: trace, count and free a dropped packet.
    pub(crate) fn kfree_skb(&mut self, skb: Skb, reason: DropReason) {
        self.tracer.kfree_skb(self.now, &skb, reason);
        self.drops.kfree_skb_reason(skb, reason);
    }

    /// `consume_skb()`: free a packet that was used as intended.
    pub(crate) fn consume_skb(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "consume_skb", &skb);
        drop(skb);
    }

    // ---- devices by index ------------------------------------------------

    pub fn dev(&self, ifindex: IfIndex) -> Result<&Device, DevError> {
        self.devs
            .get(ifindex.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(DevError::NoSuchDevice(ifindex))
    }

    pub(crate) fn dev_mut(&mut self, ifindex: IfIndex) -> Result<&mut Device, DevError> {
        self.devs
            .get_mut(ifindex.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(DevError::NoSuchDevice(ifindex))
    }

    /// The device called `name` (`if_nametoindex`).
    pub fn dev_by_name(&self, name: &str) -> Option<IfIndex> {
        self.devices().find(|d| d.name == name).map(|d| d.ifindex)
    }

    /// Every device, by ifindex.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devs.iter().filter_map(Option::as_ref)
    }

    /// Runs everything due at `now`: NIC hardware progress (frames finishing
    /// transmission, tx completions), timers, `net_rx_action` (NAPI polls up
    /// to the budget) and `net_tx_action` (qdisc runs). Returns the next
    /// instant something is due, or `None` when the host is idle.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.set_now(now);
        // Each round may make more work due now (a completion wakes a queue,
        // which transmits, which completes at once on an unlimited NIC).
        for _ in 0..64 {
            let mut busy = self.nic_hw_progress();
            busy |= self.run_timers();
            busy |= self.neigh_timer();
            busy |= self.ip_frag_timer();
            busy |= self.tcp_run_timers();
            if self.softnet.rx_pending() {
                busy = true;
                if self.net_rx_action() {
                    // Out of budget with work left: yield, as softirq does to
                    // ksoftirqd; the deadline says "now" and we come back.
                    break;
                }
            }
            if self.softnet.tx_pending() {
                self.net_tx_action();
                busy = true;
            }
            if !busy {
                break;
            }
        }
        self.next_deadline()
    }

    /// The earliest instant at which [`Stack::poll`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.softnet.rx_pending() || self.softnet.tx_pending() {
            return Some(self.now);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for d in self.devices() {
            if let Some(nic) = d.nic() {
                consider(nic.next_tx_done());
            }
            if let Some(q) = d.qdisc() {
                if !d.queue_stopped {
                    consider(q.next_wakeup());
                }
            }
            consider(self.dev_timer_deadline(d));
        }
        consider(self.neigh_next_timer());
        consider(self.ip_frag_next_timer());
        consider(self.tcp_next_timer());
        next.map(|t| t.max(self.now))
    }
}

/// A device slot by index, borrowing only the device table, so that the
/// caller can still use the stack's other fields (tracer, drops, pool).
pub(crate) fn devm(devs: &mut [Option<Device>], ifindex: IfIndex) -> Result<&mut Device, DevError> {
    devs.get_mut(ifindex.0 as usize)
        .and_then(Option::as_mut)
        .ok_or(DevError::NoSuchDevice(ifindex))
}

impl Default for Stack {
    fn default() -> Self {
        Stack::new()
    }
}
