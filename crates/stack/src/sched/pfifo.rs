//! `pfifo`, `pfifo_head_drop` and `bfifo`: single FIFO queues with a limit in
//! packets or in bytes, as Linux's `net/sched/sch_fifo.c`.
//!
//! Seed egress step 7 (the device's qdisc). `pfifo` and `bfifo` drop the
//! arriving packet when the queue is full (tail drop); `pfifo_head_drop`
//! drops the oldest queued packet instead and takes the new one. `bfifo` is
//! also the inner queue of [`super::tbf::Tbf`].
//!
//! Limits as Linux: `pfifo` admits a packet while `qlen < limit`; `bfifo`
//! while `backlog + len <= limit`. A limit of 0 is accepted (everything is
//! dropped), as the kernel accepts it.

use std::collections::VecDeque;

use super::{NetXmit, Qdisc, QdiscCtx, QdiscStats};
use crate::drop::DropReason;
use crate::skb::Skb;

/// Slots reserved up front; the ring then grows to its working size once and
/// keeps that capacity (no allocation per packet in the steady state).
const INITIAL_SLOTS: usize = 64;

/// The queue shared by the three FIFO flavours: packets plus exact counters.
#[derive(Debug)]
struct FifoQueue {
    q: VecDeque<Skb>,
    stats: QdiscStats,
}

impl FifoQueue {
    fn new(reserve: usize) -> Self {
        FifoQueue {
            q: VecDeque::with_capacity(reserve.min(INITIAL_SLOTS)),
            stats: QdiscStats::default(),
        }
    }

    fn push(&mut self, skb: Skb) {
        self.stats.backlog_bytes += skb.len() as u64;
        self.stats.qlen += 1;
        self.q.push_back(skb);
    }

    fn pop(&mut self) -> Option<Skb> {
        let skb = self.q.pop_front()?;
        self.stats.backlog_bytes -= skb.len() as u64;
        self.stats.qlen -= 1;
        Some(skb)
    }

    /// Takes the head packet as sent (`qdisc_bstats_update`).
    fn dequeue(&mut self) -> Option<Skb> {
        let skb = self.pop()?;
        self.stats.bytes += skb.len() as u64;
        self.stats.packets += skb.gso_segs() as u64;
        Some(skb)
    }

    fn drop_skb(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        self.stats.drops += 1;
        ctx.drop_skb(skb, DropReason::QdiscDrop);
        NetXmit::Drop
    }

    /// `qdisc_reset`: hands everything back to be freed. As in Linux the
    /// purged packets are not counted as drops; qlen and backlog go to 0.
    fn reset(&mut self, ctx: &mut QdiscCtx) {
        while let Some(skb) = self.pop() {
            ctx.drop_skb(skb, DropReason::QdiscDrop);
        }
    }
}

/// `pfifo` (tail drop) or `pfifo_head_drop`: a FIFO of at most `limit` packets.
#[derive(Debug)]
pub struct Pfifo {
    fifo: FifoQueue,
    limit: u32,
    head_drop: bool,
}

impl Pfifo {
    /// `tc qdisc add … pfifo limit N`.
    pub fn new(limit: u32) -> Self {
        Pfifo {
            fifo: FifoQueue::new(limit as usize),
            limit,
            head_drop: false,
        }
    }

    /// `pfifo_head_drop limit N`: when full, the oldest packet is dropped
    /// and the new one queued (`NET_XMIT_CN`). With `limit` 0 the new packet
    /// itself is dropped.
    pub fn head_drop(limit: u32) -> Self {
        Pfifo {
            head_drop: true,
            ..Pfifo::new(limit)
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The packet `dequeue` would return next.
    pub fn peek(&self) -> Option<&Skb> {
        self.fifo.q.front()
    }
}

impl Qdisc for Pfifo {
    fn kind(&self) -> &'static str {
        if self.head_drop {
            "pfifo_head_drop"
        } else {
            "pfifo"
        }
    }

    fn enqueue(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        if self.fifo.stats.qlen < u64::from(self.limit) {
            self.fifo.push(skb);
            return NetXmit::Success;
        }
        if !self.head_drop || self.limit == 0 {
            return self.fifo.drop_skb(skb, ctx);
        }
        if let Some(old) = self.fifo.pop() {
            self.fifo.drop_skb(old, ctx);
        }
        self.fifo.push(skb);
        NetXmit::Congested
    }

    fn dequeue(&mut self, _ctx: &mut QdiscCtx) -> Option<Skb> {
        self.fifo.dequeue()
    }

    fn stats(&self) -> QdiscStats {
        self.fifo.stats
    }

    fn note_requeue(&mut self) {
        self.fifo.stats.requeues += 1;
    }

    fn reset(&mut self, ctx: &mut QdiscCtx) {
        self.fifo.reset(ctx);
    }

    fn params(&self) -> String {
        format!("limit {}p", self.limit)
    }
}

/// `bfifo`: a FIFO of at most `limit` bytes (sum of `skb.len()`), tail drop.
#[derive(Debug)]
pub struct Bfifo {
    fifo: FifoQueue,
    limit: u64,
}

impl Bfifo {
    /// `tc qdisc add … bfifo limit BYTES`.
    pub fn new(limit_bytes: u64) -> Self {
        Bfifo {
            fifo: FifoQueue::new(INITIAL_SLOTS),
            limit: limit_bytes,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The packet `dequeue` would return next (the `peek` op Linux's tbf
    /// uses on its child).
    pub fn peek(&self) -> Option<&Skb> {
        self.fifo.q.front()
    }
}

impl Qdisc for Bfifo {
    fn kind(&self) -> &'static str {
        "bfifo"
    }

    fn enqueue(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        let after = self
            .fifo
            .stats
            .backlog_bytes
            .saturating_add(skb.len() as u64);
        if after <= self.limit {
            self.fifo.push(skb);
            NetXmit::Success
        } else {
            self.fifo.drop_skb(skb, ctx)
        }
    }

    fn dequeue(&mut self, _ctx: &mut QdiscCtx) -> Option<Skb> {
        self.fifo.dequeue()
    }

    fn stats(&self) -> QdiscStats {
        self.fifo.stats
    }

    fn note_requeue(&mut self) {
        self.fifo.stats.requeues += 1;
    }

    fn reset(&mut self, ctx: &mut QdiscCtx) {
        self.fifo.reset(ctx);
    }

    fn params(&self) -> String {
        format!("limit {}", tc_size(self.limit))
    }
}

/// A byte count as `tc` prints it (iproute2's `sprint_size`): whole MiB as
/// `"32Mb"`, near-whole KiB as `"10Kb"`, else `"1500b"`.
pub(crate) fn tc_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    // Nearest multiple of `unit` (half rounds up) and whether `bytes` is
    // within `slack` of it.
    let near = |unit: u64, slack: u64| {
        let n = bytes / unit + u64::from(bytes % unit >= unit / 2);
        let diff = (n * unit).abs_diff(bytes);
        (n, diff < slack)
    };
    if bytes >= MB {
        let (n, ok) = near(MB, KB);
        if ok {
            return format!("{n}Mb");
        }
    }
    if bytes >= KB {
        let (n, ok) = near(KB, 16);
        if ok {
            return format!("{n}Kb");
        }
    }
    format!("{bytes}b")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;
    use crate::time::Instant;

    fn pkt(pool: &SkbPool, len: usize, tag: u8) -> Skb {
        pool.alloc_from(64, &vec![tag; len]).unwrap()
    }

    #[test]
    fn pfifo_tail_drops_over_limit() {
        let pool = SkbPool::default();
        let mut q = Pfifo::new(3);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for tag in 0..3 {
            assert_eq!(q.enqueue(pkt(&pool, 100, tag), &mut ctx), NetXmit::Success);
        }
        assert_eq!(q.enqueue(pkt(&pool, 100, 9), &mut ctx), NetXmit::Drop);
        assert_eq!(ctx.to_free.len(), 1);
        assert_eq!(ctx.to_free[0].0.data()[0], 9);
        assert_eq!(ctx.to_free[0].1, DropReason::QdiscDrop);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (3, 300, 1));
        assert_eq!(q.peek().map(|s| s.data()[0]), Some(0));
        let order: Vec<u8> = std::iter::from_fn(|| q.dequeue(&mut ctx))
            .map(|s| s.data()[0])
            .collect();
        assert_eq!(order, [0, 1, 2]);
        let s = q.stats();
        assert_eq!(
            (s.qlen, s.backlog_bytes, s.packets, s.bytes),
            (0, 0, 3, 300)
        );
        assert_eq!(q.kind(), "pfifo");
        assert_eq!(q.params(), "limit 3p");
    }

    #[test]
    fn pfifo_limit_zero_drops_everything() {
        let pool = SkbPool::default();
        let mut q = Pfifo::new(0);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        assert_eq!(q.enqueue(pkt(&pool, 10, 1), &mut ctx), NetXmit::Drop);
        let mut h = Pfifo::head_drop(0);
        assert_eq!(h.enqueue(pkt(&pool, 10, 1), &mut ctx), NetXmit::Drop);
        assert_eq!(ctx.to_free.len(), 2);
        assert_eq!((q.stats().drops, h.stats().drops), (1, 1));
        assert_eq!(h.stats().qlen, 0);
    }

    #[test]
    fn pfifo_head_drop_keeps_newest() {
        let pool = SkbPool::default();
        let mut q = Pfifo::head_drop(2);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        q.enqueue(pkt(&pool, 10, 1), &mut ctx);
        q.enqueue(pkt(&pool, 20, 2), &mut ctx);
        assert_eq!(q.enqueue(pkt(&pool, 30, 3), &mut ctx), NetXmit::Congested);
        assert_eq!(ctx.to_free.len(), 1);
        assert_eq!(ctx.to_free[0].0.data()[0], 1);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (2, 50, 1));
        assert_eq!(q.dequeue(&mut ctx).unwrap().data()[0], 2);
        assert_eq!(q.dequeue(&mut ctx).unwrap().data()[0], 3);
        assert_eq!(q.kind(), "pfifo_head_drop");
    }

    #[test]
    fn bfifo_limits_bytes_exactly() {
        let pool = SkbPool::default();
        let mut q = Bfifo::new(3000);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        assert_eq!(q.enqueue(pkt(&pool, 1500, 1), &mut ctx), NetXmit::Success);
        assert_eq!(q.enqueue(pkt(&pool, 1501, 2), &mut ctx), NetXmit::Drop);
        // Exactly filling the limit is allowed.
        assert_eq!(q.enqueue(pkt(&pool, 1500, 3), &mut ctx), NetXmit::Success);
        assert_eq!(q.enqueue(pkt(&pool, 1, 4), &mut ctx), NetXmit::Drop);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (2, 3000, 2));
        assert_eq!(ctx.to_free.len(), 2);
        assert_eq!(q.params(), "limit 3000b");
        q.note_requeue();
        q.reset(&mut ctx);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops, s.requeues), (0, 0, 2, 1));
        assert_eq!(ctx.to_free.len(), 4);
    }

    #[test]
    fn tc_size_matches_iproute2() {
        assert_eq!(tc_size(1500), "1500b");
        assert_eq!(tc_size(10240), "10Kb");
        assert_eq!(tc_size(10000), "10000b");
        assert_eq!(tc_size(1_000_000), "1000000b");
        assert_eq!(tc_size(32 << 20), "32Mb");
        assert_eq!(tc_size(1_500_000), "1500000b");
        assert_eq!(tc_size(1536 * 1024), "1536Kb");
        assert_eq!(tc_size(0), "0b");
    }
}
