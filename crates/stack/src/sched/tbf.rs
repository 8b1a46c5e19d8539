//! `tbf`: the token bucket filter shaper, as Linux's `net/sched/sch_tbf.c`.
//!
//! Seed egress step 7 (the device's qdisc). Tokens are kept as time (ns of
//! transmission at `rate`), refilled by elapsed time and capped at the bucket
//! depth `buffer` (the transmission time of `burst` bytes). A packet leaves
//! when the tokens cover its transmission time; otherwise the qdisc counts an
//! overlimit and arms its watchdog for the exact instant they will
//! ([`Qdisc::next_wakeup`]). A packet longer than `burst` can never conform
//! and is dropped on enqueue. Packets wait in an inner [`Bfifo`] of `limit`
//! bytes, as Linux's default child.
//!
//! A GSO packet larger than the bucket whose segments fit is segmented and
//! each segment queued (`tbf_segment`). Not modelled: peakrate/mtu (the
//! second bucket), link-layer overhead tables, and
//! Linux's mult/shift rate approximation (time per byte is computed exactly).

use super::pfifo::{tc_size, Bfifo};
use super::{NetXmit, Qdisc, QdiscCtx, QdiscStats};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::time::{Duration, Instant};

const NSEC_PER_SEC: u128 = 1_000_000_000;

/// Why a `tbf` cannot be built (Linux answers `-EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TbfError {
    /// `rate` 0 bytes/s.
    ZeroRate,
    /// `burst` 0 bytes: no packet could ever be sent.
    ZeroBurst,
    /// The bucket depth (time to send `burst` at `rate`) does not fit in
    /// 2^63 ns.
    BurstTooLarge,
    /// `rate * latency + burst` overflows.
    LimitTooLarge,
}

impl core::fmt::Display for TbfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TbfError::ZeroRate => "tbf rate must be > 0",
            TbfError::ZeroBurst => "tbf burst must be > 0",
            TbfError::BurstTooLarge => "tbf burst too large for rate",
            TbfError::LimitTooLarge => "tbf limit too large",
        })
    }
}

impl std::error::Error for TbfError {}

/// Token bucket filter: `tc qdisc add … tbf rate R burst B limit L|latency T`.
#[derive(Debug)]
pub struct Tbf {
    /// Bytes per second.
    rate: u64,
    /// Largest packet that can ever conform (`max_size`), bytes.
    burst: u64,
    /// Bucket depth: time to send `burst` bytes at `rate`, ns.
    buffer: i64,
    /// Inner queue limit, bytes.
    limit: u64,
    /// Tokens (ns) at `t_c`; may be read as negative only transiently.
    tokens: i64,
    /// Last checkpoint: when tokens were last spent.
    t_c: Instant,
    inner: Bfifo,
    /// Own counters; qlen and backlog come from `inner`.
    stats: QdiscStats,
    /// Armed by a dequeue that found too few tokens (`qdisc_watchdog`).
    watchdog: Option<Instant>,
}

impl Tbf {
    /// A shaper of `rate` bytes/s with a bucket of `burst` bytes (also the
    /// largest admissible packet) queueing at most `limit` bytes. The bucket
    /// starts full.
    pub fn new(rate: u64, burst: u64, limit: u64) -> Result<Self, TbfError> {
        if rate == 0 {
            return Err(TbfError::ZeroRate);
        }
        if burst == 0 {
            return Err(TbfError::ZeroBurst);
        }
        let buffer = i64::try_from(u128::from(burst) * NSEC_PER_SEC / u128::from(rate))
            .map_err(|_| TbfError::BurstTooLarge)?;
        Ok(Tbf {
            rate,
            burst,
            buffer,
            limit,
            tokens: buffer,
            t_c: Instant::ZERO,
            inner: Bfifo::new(limit),
            stats: QdiscStats::default(),
            watchdog: None,
        })
    }

    /// As `tc … tbf rate R burst B latency T`: the limit is what `rate`
    /// drains in `latency` plus the bucket, `rate * latency + burst`.
    pub fn with_latency(rate: u64, burst: u64, latency: Duration) -> Result<Self, TbfError> {
        if rate == 0 {
            return Err(TbfError::ZeroRate);
        }
        let drained = u128::from(rate) * u128::from(latency.as_nanos()) / NSEC_PER_SEC;
        let limit =
            u64::try_from(drained + u128::from(burst)).map_err(|_| TbfError::LimitTooLarge)?;
        Tbf::new(rate, burst, limit)
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Transmission time of `len` bytes at `rate`, ns (`psched_l2t_ns`).
    fn l2t(&self, len: usize) -> i64 {
        let ns = (len as u128) * NSEC_PER_SEC / u128::from(self.rate);
        i64::try_from(ns).unwrap_or(i64::MAX)
    }

    /// The latency `tc` prints: time to drain `limit` minus the bucket depth.
    fn latency_ns(&self) -> i128 {
        let drain = i128::from(self.limit) * NSEC_PER_SEC as i128 / i128::from(self.rate);
        drain - i128::from(self.buffer)
    }
}

impl Tbf {
    /// `tbf_segment()`: each segment of a GSO packet queued alone; success
    /// if any was.
    fn tbf_segment(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        let mut segs = Vec::new();
        let pool = skb.pool().clone();
        if crate::skb::skb_gso_segment(&skb, &pool, &mut segs).is_err() {
            self.stats.drops += 1;
            ctx.drop_skb(skb, DropReason::SkbGsoSeg);
            return NetXmit::Drop;
        }
        drop(skb);
        let mut queued = 0;
        for s in segs {
            if self.inner.enqueue(s, ctx) == NetXmit::Drop {
                self.stats.drops += 1;
            } else {
                queued += 1;
            }
        }
        if queued > 0 {
            NetXmit::Success
        } else {
            NetXmit::Drop
        }
    }
}

impl Qdisc for Tbf {
    fn kind(&self) -> &'static str {
        "tbf"
    }

    fn enqueue(&mut self, skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        if skb.len() as u64 > self.burst {
            let mac = skb
                .network_header()
                .and_then(|n| n.checked_sub(skb.data_offset()))
                .unwrap_or(0);
            let seg = skb.gso_network_seglen().map(|l| (l + mac) as u64);
            if skb.is_gso() && seg.is_some_and(|l| l <= self.burst) {
                return self.tbf_segment(skb, ctx);
            }
            self.stats.drops += 1;
            ctx.drop_skb(skb, DropReason::QdiscDrop);
            return NetXmit::Drop;
        }
        let ret = self.inner.enqueue(skb, ctx);
        if ret == NetXmit::Drop {
            self.stats.drops += 1;
        }
        ret
    }

    fn dequeue(&mut self, ctx: &mut QdiscCtx) -> Option<Skb> {
        let len = self.inner.peek()?.len();
        let now = ctx.now;
        let elapsed = i64::try_from(now.saturating_since(self.t_c).as_nanos()).unwrap_or(i64::MAX);
        let toks = elapsed
            .min(self.buffer)
            .saturating_add(self.tokens)
            .min(self.buffer)
            - self.l2t(len);
        if toks >= 0 {
            let skb = self.inner.dequeue(ctx)?;
            self.t_c = now;
            self.tokens = toks;
            self.watchdog = None;
            self.stats.packets += skb.gso_segs() as u64;
            self.stats.bytes += skb.len() as u64;
            return Some(skb);
        }
        self.watchdog = Some(now + Duration::from_nanos(toks.unsigned_abs()));
        self.stats.overlimits += 1;
        None
    }

    fn next_wakeup(&self) -> Option<Instant> {
        if self.inner.stats().qlen == 0 {
            return None;
        }
        self.watchdog
    }

    fn stats(&self) -> QdiscStats {
        let inner = self.inner.stats();
        QdiscStats {
            qlen: inner.qlen,
            backlog_bytes: inner.backlog_bytes,
            ..self.stats
        }
    }

    fn note_requeue(&mut self) {
        self.stats.requeues += 1;
    }

    /// Purges the queue (not counted as drops, as Linux), refills the bucket
    /// and cancels the watchdog.
    fn reset(&mut self, ctx: &mut QdiscCtx) {
        self.inner.reset(ctx);
        self.t_c = ctx.now;
        self.tokens = self.buffer;
        self.watchdog = None;
    }

    fn params(&self) -> String {
        let mut s = format!(
            "rate {} burst {}",
            tc_rate(self.rate.saturating_mul(8)),
            tc_size(self.burst)
        );
        let lat = self.latency_ns();
        if lat >= 0 {
            s.push_str(&format!(
                " lat {}",
                tc_time(u64::try_from(lat).unwrap_or(u64::MAX))
            ));
        } else {
            s.push_str(&format!(" limit {}", tc_size(self.limit)));
        }
        s
    }
}

/// A rate in bits/s as `tc` prints it: the largest of bit, Kbit, Mbit,
/// Gbit, Tbit (powers of 1000) that keeps it whole or at least 1000 units.
pub(crate) fn tc_rate(bits_per_sec: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut rate = bits_per_sec as f64;
    let mut i = 0;
    while i < UNITS.len() - 1 {
        let whole = rate as u64;
        let fractional_thousands = whole / 1000 * 1000 != whole;
        if rate < 1000.0 || (fractional_thousands && rate < 1_000_000.0) {
            break;
        }
        rate /= 1000.0;
        i += 1;
    }
    format!("{:.0}{}bit", rate, UNITS[i])
}

/// A duration as `tc` prints it: `"5ms"`, `"1.5s"`, `"500us"`.
pub(crate) fn tc_time(ns: u64) -> String {
    let (v, unit) = if ns >= 1_000_000_000 {
        (ns as f64 / 1e9, "s")
    } else if ns >= 1_000_000 {
        (ns as f64 / 1e6, "ms")
    } else {
        (ns as f64 / 1e3, "us")
    };
    format!("{}{unit}", (v * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;

    const MBIT: u64 = 1_000_000 / 8;

    fn pkt(pool: &SkbPool, len: usize) -> Skb {
        pool.alloc_from(64, &vec![0xab; len]).unwrap()
    }

    /// A sender that keeps the queue full for `secs` seconds while the
    /// device dequeues whenever the watchdog fires. Returns bytes sent
    /// before the end, and the stats.
    fn saturate(rate: u64, burst: u64, len: usize, secs: u64) -> (u64, QdiscStats) {
        let pool = SkbPool::default();
        let mut q = Tbf::with_latency(rate, burst, Duration::from_millis(50)).unwrap();
        let end = Instant::from_secs(secs);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        let mut sent = 0u64;
        loop {
            loop {
                while q.stats().qlen < 8 {
                    assert_eq!(q.enqueue(pkt(&pool, len), &mut ctx), NetXmit::Success);
                }
                match q.dequeue(&mut ctx) {
                    Some(skb) => sent += skb.len() as u64,
                    None => break,
                }
            }
            let next = q.next_wakeup().expect("backlogged tbf arms its watchdog");
            assert!(next > ctx.now);
            if next >= end {
                break;
            }
            ctx.now = next;
        }
        assert!(ctx.to_free.is_empty());
        (sent, q.stats())
    }

    fn check_rate(rate: u64, burst: u64) {
        let secs = 10;
        let (sent, stats) = saturate(rate, burst, 1500, secs);
        let achieved = sent as f64 / secs as f64;
        let err = (achieved - rate as f64).abs() / rate as f64;
        assert!(err < 0.02, "rate {rate}: achieved {achieved} B/s");
        // Tighter: the bucket's burst plus what the rate earns in 10 s,
        // rounded down to whole packets.
        let ideal = burst + rate * secs;
        assert!(
            sent <= ideal && sent + 1500 >= ideal,
            "sent {sent}, ideal {ideal}"
        );
        assert_eq!(stats.bytes, sent);
        assert_eq!(stats.packets, sent / 1500);
        assert!(stats.overlimits >= stats.packets - burst / 1500);
        assert_eq!(stats.drops, 0);
    }

    #[test]
    fn holds_1mbit_over_10s() {
        check_rate(MBIT, 10_000);
    }

    #[test]
    fn holds_100mbit_over_10s() {
        check_rate(100 * MBIT, 64 * 1024);
    }

    #[test]
    fn initial_burst_is_exactly_burst_bytes() {
        let pool = SkbPool::default();
        let mut q = Tbf::new(MBIT, 10_000, 100_000).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for _ in 0..20 {
            q.enqueue(pkt(&pool, 1000), &mut ctx);
        }
        let mut sent = 0;
        while let Some(skb) = q.dequeue(&mut ctx) {
            sent += skb.len();
        }
        assert_eq!(sent, 10_000);
        let s = q.stats();
        assert_eq!(
            (s.packets, s.overlimits, s.qlen, s.backlog_bytes),
            (10, 1, 10, 10_000)
        );
        // 1000 bytes at 125000 B/s: 8 ms, exactly.
        assert_eq!(q.next_wakeup(), Some(Instant::from_millis(8)));
        ctx.now = Instant::from_nanos(7_999_999);
        assert!(q.dequeue(&mut ctx).is_none());
        assert_eq!(q.stats().overlimits, 2);
        assert_eq!(q.next_wakeup(), Some(Instant::from_millis(8)));
        ctx.now = Instant::from_millis(8);
        assert_eq!(q.dequeue(&mut ctx).map(|s| s.len()), Some(1000));
        assert!(q.dequeue(&mut ctx).is_none());
        assert_eq!(q.next_wakeup(), Some(Instant::from_millis(16)));
        // An idle second refills the bucket to exactly burst, no more.
        ctx.now = Instant::from_secs(2);
        let mut sent = 0;
        while let Some(skb) = q.dequeue(&mut ctx) {
            sent += skb.len();
        }
        assert_eq!(sent, 9_000); // only 9 packets were left
        for _ in 0..20 {
            q.enqueue(pkt(&pool, 1000), &mut ctx);
        }
        let mut more = 0;
        while let Some(skb) = q.dequeue(&mut ctx) {
            more += skb.len();
        }
        assert_eq!(more, 1_000);
    }

    #[test]
    fn oversize_packet_dropped_on_enqueue() {
        let pool = SkbPool::default();
        let mut q = Tbf::new(MBIT, 1500, 10_000).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        assert_eq!(q.enqueue(pkt(&pool, 1501), &mut ctx), NetXmit::Drop);
        assert_eq!(ctx.to_free.len(), 1);
        assert_eq!(ctx.to_free[0].0.len(), 1501);
        assert_eq!(ctx.to_free[0].1, DropReason::QdiscDrop);
        assert_eq!(q.enqueue(pkt(&pool, 1500), &mut ctx), NetXmit::Success);
        let s = q.stats();
        assert_eq!((s.drops, s.qlen, s.backlog_bytes), (1, 1, 1500));
        assert_eq!(q.dequeue(&mut ctx).map(|s| s.len()), Some(1500));
        assert_eq!(q.next_wakeup(), None);
    }

    #[test]
    fn limit_drops_counted() {
        let pool = SkbPool::default();
        let mut q = Tbf::new(MBIT, 1500, 3000).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        assert_eq!(q.enqueue(pkt(&pool, 1500), &mut ctx), NetXmit::Success);
        assert_eq!(q.enqueue(pkt(&pool, 1500), &mut ctx), NetXmit::Success);
        assert_eq!(q.enqueue(pkt(&pool, 100), &mut ctx), NetXmit::Drop);
        let s = q.stats();
        assert_eq!((s.drops, s.qlen, s.backlog_bytes), (1, 2, 3000));
        q.reset(&mut ctx);
        let s = q.stats();
        assert_eq!((s.drops, s.qlen, s.backlog_bytes), (1, 0, 0));
        assert_eq!(ctx.to_free.len(), 3);
        assert_eq!(q.next_wakeup(), None);
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert_eq!(Tbf::new(0, 1500, 1500).unwrap_err(), TbfError::ZeroRate);
        assert_eq!(Tbf::new(MBIT, 0, 1500).unwrap_err(), TbfError::ZeroBurst);
        assert_eq!(
            Tbf::with_latency(0, 1500, Duration::from_millis(1)).unwrap_err(),
            TbfError::ZeroRate
        );
        assert_eq!(
            Tbf::new(1, u64::MAX, 1500).unwrap_err(),
            TbfError::BurstTooLarge
        );
        assert_eq!(
            Tbf::with_latency(u64::MAX, u64::MAX, Duration::from_secs(10)).unwrap_err(),
            TbfError::LimitTooLarge
        );
    }

    #[test]
    fn params_like_tc() {
        let q = Tbf::with_latency(MBIT, 10 * 1024, Duration::from_millis(50)).unwrap();
        assert_eq!(q.limit(), 6250 + 10240);
        assert_eq!(q.params(), "rate 1Mbit burst 10Kb lat 50ms");
        let q = Tbf::new(1_500_000 / 8, 1600, 1000).unwrap();
        assert_eq!(q.params(), "rate 1500Kbit burst 1600b limit 1000b");
        assert_eq!(q.kind(), "tbf");
        assert_eq!(tc_rate(8), "8bit");
        assert_eq!(tc_rate(10_000_000_000), "10Gbit");
        assert_eq!(tc_rate(1_234_567_000), "1235Mbit");
        assert_eq!(tc_time(5_000_000), "5ms");
        assert_eq!(tc_time(1_500_000_000), "1.5s");
        assert_eq!(tc_time(250_000), "250us");
    }
}
