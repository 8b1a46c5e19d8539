//! Traffic control (`net/sched`): queueing disciplines and tc filters.
//!
//! Seed egress step 7 ("enqueue the packet on the device's qdisc") and the
//! `tc ingress` / `tc egress` hooks of ingress step 8 and egress step 7.
//! A qdisc is a trait object owned by its device; `dev_queue_xmit`
//! (`dev/tx.rs`) enqueues into it and `qdisc_run` dequeues into the driver.
//! tc filters ([`tc`]) are chains of classifiers and actions run by
//! `sch_handle_ingress` / `sch_handle_egress`.

pub mod fq_codel;
pub mod pfifo;
pub mod pfifo_fast;
pub mod tbf;
pub mod tc;

use crate::drop::DropReason;
use crate::skb::Skb;
use crate::time::Instant;

/// `struct gnet_stats_basic` + `gnet_stats_queue`: what `tc -s qdisc` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QdiscStats {
    /// "Sent N bytes": counted when a packet leaves the qdisc (dequeue).
    pub bytes: u64,
    /// "Sent … M pkt".
    pub packets: u64,
    /// "dropped": packets the qdisc dropped (limit, AQM, …).
    pub drops: u64,
    /// "overlimits": times the qdisc held back a packet (e.g. tbf out of tokens).
    pub overlimits: u64,
    /// "requeues": packets the driver handed back (tx ring full).
    pub requeues: u64,
    /// "backlog …b": bytes queued now.
    pub backlog_bytes: u64,
    /// "backlog … Np": packets queued now (`qlen`).
    pub qlen: u64,
}

/// What a qdisc gets besides the packet: the time, and a list where it puts
/// every packet it drops (with the reason), which the caller frees and
/// counts (`__qdisc_drop` into `to_free`, then `kfree_skb_list_reason`).
#[derive(Debug)]
pub struct QdiscCtx {
    pub now: Instant,
    pub to_free: Vec<(Skb, DropReason)>,
}

impl QdiscCtx {
    pub fn new(now: Instant) -> Self {
        QdiscCtx {
            now,
            to_free: Vec::new(),
        }
    }

    /// Hands a packet to the caller to be freed as a drop.
    pub fn drop_skb(&mut self, skb: Skb, reason: DropReason) {
        self.to_free.push((skb, reason));
    }
}

/// Outcome of [`Qdisc::enqueue`], as Linux's `NET_XMIT_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetXmit {
    /// NET_XMIT_SUCCESS.
    Success,
    /// NET_XMIT_DROP: this packet was dropped (it is in `to_free`).
    Drop,
    /// NET_XMIT_CN: queued (or another packet dropped instead), but the
    /// qdisc is congested.
    Congested,
}

/// A queueing discipline (`struct Qdisc_ops`).
///
/// Invariants every implementation keeps: `stats().qlen` and
/// `stats().backlog_bytes` describe exactly what is queued; every packet
/// taken in is either dequeued or put in `ctx.to_free` (and counted in
/// `drops`); `sent` counters grow on dequeue.
pub trait Qdisc: Send + core::fmt::Debug {
    /// The kind as `tc` names it: `"pfifo_fast"`, `"pfifo"`, `"tbf"`, `"fq_codel"`.
    fn kind(&self) -> &'static str;

    fn enqueue(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit;

    /// The next packet to send, or `None` if empty or (shaping) not yet.
    fn dequeue(&mut self, ctx: &mut QdiscCtx) -> Option<Skb>;

    /// When a shaping qdisc that returned `None` with packets queued can send
    /// again (the `qdisc_watchdog`), else `None`.
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }

    fn stats(&self) -> QdiscStats;

    /// Counts a packet the driver handed back; the device keeps it and
    /// sends it before dequeuing again (Linux's `dev_requeue_skb`).
    fn note_requeue(&mut self);

    /// Drops everything queued into `ctx.to_free` (`qdisc_reset`).
    fn reset(&mut self, ctx: &mut QdiscCtx);

    /// Parameters as `tc qdisc show` prints them after the kind, e.g.
    /// `"limit 1000p"` or `"bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"`.
    fn params(&self) -> String;
}

/// One line of `tc -s qdisc show dev DEV` for `q`.
pub fn describe(q: &dyn Qdisc, dev: &str) -> String {
    let s = q.stats();
    format!(
        "qdisc {} 0: dev {dev} root {}\n Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {})\n backlog {}b {}p requeues {}",
        q.kind(),
        q.params(),
        s.bytes,
        s.packets,
        s.drops,
        s.overlimits,
        s.requeues,
        s.backlog_bytes,
        s.qlen,
        s.requeues
    )
}
