//! `pfifo_fast`: the default root qdisc of a device with a transmit queue,
//! as Linux's `pfifo_fast` in `net/sched/sch_generic.c`.
//!
//! Seed egress step 7 (the device's qdisc). Three FIFO bands; the band of a
//! packet is `PRIO2BAND[skb.priority & TC_PRIO_MAX]`, and band 0 is always
//! emptied before band 1, band 1 before band 2.
//!
//! Limit as Linux since 4.16 (bands are `skb_array` rings): each band holds at
//! most `tx_queue_len` packets, and a packet arriving at a full band is dropped
//! (`QDISC_DROP`). A `tx_queue_len` of 0 is refused, as `pfifo_fast_init`
//! refuses it with `-EINVAL`.

use std::collections::VecDeque;

use super::{NetXmit, Qdisc, QdiscCtx, QdiscStats};
use crate::drop::DropReason;
use crate::skb::Skb;

/// Number of bands (`PFIFO_FAST_BANDS`).
pub const BANDS: usize = 3;

/// `TC_PRIO_MAX`: the mask applied to `skb.priority` before the table lookup.
pub const TC_PRIO_MAX: u32 = 15;

/// Linux's `prio2band`: TC_PRIO_* (0 best effort, 1 filler, 2 bulk,
/// 4 interactive bulk, 6 interactive, 7 control, …) to band.
pub const PRIO2BAND: [u8; TC_PRIO_MAX as usize + 1] =
    [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];

/// The default `tx_queue_len` of an Ethernet device.
pub const DEFAULT_TX_QUEUE_LEN: u32 = 1000;

/// Slots each band reserves up front; it grows once to its working size.
const INITIAL_SLOTS: usize = 64;

/// Why a `pfifo_fast` cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfifoFastError {
    /// `tx_queue_len` 0: Linux refuses zero-length rings (`-EINVAL`).
    ZeroQueueLen,
}

impl core::fmt::Display for PfifoFastError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PfifoFastError::ZeroQueueLen => f.write_str("pfifo_fast needs tx_queue_len > 0"),
        }
    }
}

impl std::error::Error for PfifoFastError {}

/// Linux's default qdisc: three priority bands of at most `tx_queue_len`
/// packets each.
#[derive(Debug)]
pub struct PfifoFast {
    bands: [VecDeque<Skb>; BANDS],
    tx_queue_len: u32,
    stats: QdiscStats,
}

impl PfifoFast {
    /// The qdisc a device with `tx_queue_len` gets by default.
    pub fn new(tx_queue_len: u32) -> Result<Self, PfifoFastError> {
        if tx_queue_len == 0 {
            return Err(PfifoFastError::ZeroQueueLen);
        }
        let reserve = (tx_queue_len as usize).min(INITIAL_SLOTS);
        Ok(PfifoFast {
            bands: core::array::from_fn(|_| VecDeque::with_capacity(reserve)),
            tx_queue_len,
            stats: QdiscStats::default(),
        })
    }

    /// The band `priority` maps to.
    pub fn band_of(priority: u32) -> usize {
        usize::from(PRIO2BAND[(priority & TC_PRIO_MAX) as usize])
    }

    /// Packets queued in `band` (0..3; other bands are empty).
    pub fn band_len(&self, band: usize) -> usize {
        self.bands.get(band).map_or(0, VecDeque::len)
    }

    pub fn tx_queue_len(&self) -> u32 {
        self.tx_queue_len
    }
}

impl Default for PfifoFast {
    fn default() -> Self {
        PfifoFast {
            bands: core::array::from_fn(|_| VecDeque::with_capacity(INITIAL_SLOTS)),
            tx_queue_len: DEFAULT_TX_QUEUE_LEN,
            stats: QdiscStats::default(),
        }
    }
}

impl Qdisc for PfifoFast {
    fn kind(&self) -> &'static str {
        "pfifo_fast"
    }

    fn enqueue(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        let band = &mut self.bands[Self::band_of(skb.meta.priority)];
        if band.len() >= self.tx_queue_len as usize {
            self.stats.drops += 1;
            ctx.drop_skb(skb, DropReason::QdiscDrop);
            return NetXmit::Drop;
        }
        self.stats.qlen += 1;
        self.stats.backlog_bytes += skb.len() as u64;
        band.push_back(skb);
        NetXmit::Success
    }

    fn dequeue(&mut self, _ctx: &mut QdiscCtx) -> Option<Skb> {
        let skb = self.bands.iter_mut().find_map(VecDeque::pop_front)?;
        let len = skb.len() as u64;
        self.stats.qlen -= 1;
        self.stats.backlog_bytes -= len;
        self.stats.packets += skb.gso_segs() as u64;
        self.stats.bytes += len;
        Some(skb)
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn note_requeue(&mut self) {
        self.stats.requeues += 1;
    }

    /// Purges every band; as Linux, the purged packets are not counted as
    /// drops.
    fn reset(&mut self, ctx: &mut QdiscCtx) {
        for band in &mut self.bands {
            for skb in band.drain(..) {
                ctx.drop_skb(skb, DropReason::QdiscDrop);
            }
        }
        self.stats.qlen = 0;
        self.stats.backlog_bytes = 0;
    }

    fn params(&self) -> String {
        let mut s = format!("bands {BANDS} priomap");
        for b in PRIO2BAND {
            s.push(' ');
            s.push(char::from(b'0' + b));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;
    use crate::time::Instant;

    /// TC_PRIO_BESTEFFORT, TC_PRIO_FILLER, TC_PRIO_INTERACTIVE.
    const BESTEFFORT: u32 = 0;
    const FILLER: u32 = 1;
    const INTERACTIVE: u32 = 6;

    fn pkt(pool: &SkbPool, prio: u32, tag: u8, len: usize) -> Skb {
        let mut skb = pool.alloc_from(64, &vec![tag; len]).unwrap();
        skb.meta.priority = prio;
        skb
    }

    #[test]
    fn band_order_and_fifo_within_band() {
        let pool = SkbPool::default();
        let mut q = PfifoFast::default();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        // Interleave: tag encodes band*10 + sequence within that band.
        let prios = [BESTEFFORT, INTERACTIVE, FILLER];
        let mut seq = [0u8; 3];
        let mut total_len = 0u64;
        for i in 0..12usize {
            let prio = prios[i % 3];
            let band = PfifoFast::band_of(prio);
            let tag = band as u8 * 10 + seq[band];
            seq[band] += 1;
            let len = 100 + i;
            total_len += len as u64;
            assert_eq!(
                q.enqueue(pkt(&pool, prio, tag, len), &mut ctx),
                NetXmit::Success
            );
        }
        assert_eq!((q.band_len(0), q.band_len(1), q.band_len(2)), (4, 4, 4));
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes), (12, total_len));

        let order: Vec<u8> = std::iter::from_fn(|| q.dequeue(&mut ctx))
            .map(|s| s.data()[0])
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes), (0, 0));
        assert_eq!((s.packets, s.bytes, s.drops), (12, total_len, 0));
        assert!(ctx.to_free.is_empty());
    }

    #[test]
    fn priomap_matches_linux() {
        let bands: Vec<usize> = (0..16).map(PfifoFast::band_of).collect();
        assert_eq!(bands, [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
        // Only the low four bits select (TC_PRIO_MAX mask).
        assert_eq!(PfifoFast::band_of(16 + 6), 0);
        assert_eq!(PfifoFast::band_of(0x0001_0007), 0);
        let q = PfifoFast::default();
        assert_eq!(q.kind(), "pfifo_fast");
        assert_eq!(
            q.params(),
            "bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"
        );
        assert_eq!(q.tx_queue_len(), 1000);
    }

    #[test]
    fn limit_drops_and_counts() {
        let pool = SkbPool::default();
        let mut q = PfifoFast::new(2).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        assert_eq!(
            q.enqueue(pkt(&pool, BESTEFFORT, 1, 100), &mut ctx),
            NetXmit::Success
        );
        assert_eq!(
            q.enqueue(pkt(&pool, BESTEFFORT, 2, 200), &mut ctx),
            NetXmit::Success
        );
        assert_eq!(
            q.enqueue(pkt(&pool, BESTEFFORT, 3, 300), &mut ctx),
            NetXmit::Drop
        );
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (2, 300, 1));
        assert_eq!(ctx.to_free.len(), 1);
        let (dropped, reason) = &ctx.to_free[0];
        assert_eq!((dropped.data()[0], dropped.len()), (3, 300));
        assert_eq!(*reason, DropReason::QdiscDrop);
        // Each band has its own ring of tx_queue_len packets.
        assert_eq!(
            q.enqueue(pkt(&pool, INTERACTIVE, 4, 50), &mut ctx),
            NetXmit::Success
        );
        assert_eq!(
            q.enqueue(pkt(&pool, INTERACTIVE, 5, 50), &mut ctx),
            NetXmit::Success
        );
        assert_eq!(
            q.enqueue(pkt(&pool, INTERACTIVE, 6, 50), &mut ctx),
            NetXmit::Drop
        );
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (4, 400, 2));
        // Room again once a packet left.
        assert_eq!(q.dequeue(&mut ctx).unwrap().data()[0], 4);
        assert_eq!(
            q.enqueue(pkt(&pool, INTERACTIVE, 7, 70), &mut ctx),
            NetXmit::Success
        );
        let s = q.stats();
        assert_eq!(
            (s.qlen, s.backlog_bytes, s.packets, s.bytes),
            (4, 420, 1, 50)
        );
    }

    #[test]
    fn zero_queue_len_refused_and_reset_purges() {
        assert_eq!(PfifoFast::new(0).unwrap_err(), PfifoFastError::ZeroQueueLen);
        let pool = SkbPool::default();
        let mut q = PfifoFast::new(10).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for prio in [0, 1, 6] {
            q.enqueue(pkt(&pool, prio, 0, 10), &mut ctx);
        }
        q.note_requeue();
        q.reset(&mut ctx);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops, s.requeues), (0, 0, 0, 1));
        assert_eq!(ctx.to_free.len(), 3);
        assert!(q.dequeue(&mut ctx).is_none());
    }
}
