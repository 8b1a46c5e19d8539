//! Trace points: one per seed stage, named after the Linux function
//! (DESIGN.md §6), like the kernel's tracepoints and `perf trace`.
//!
//! Off by default, when a trace point costs one predictable branch. On, each
//! event goes into a fixed-size ring (oldest overwritten, overwrites counted),
//! allocated once when tracing is switched on, so tracing allocates nothing
//! per packet either.

use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::time::Instant;

/// One trace event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    pub time: Instant,
    /// The Linux function name of the stage (`"netif_receive_skb"`, …).
    pub point: &'static str,
    /// The skb's id (0 when the event has no skb).
    pub skb_id: u64,
    pub len: u32,
    pub dev: Option<IfIndex>,
    /// Header offsets from head at that point (mac, network, transport).
    pub headers: [Option<u32>; 3],
    /// A stage-specific figure: work done by a NAPI poll, a queue length, …
    pub detail: u64,
    /// For `kfree_skb`: why.
    pub reason: Option<DropReason>,
}

impl core::fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {:<24} skb={} len={}",
            self.time, self.point, self.skb_id, self.len
        )?;
        if let Some(d) = self.dev {
            write!(f, " dev={d}")?;
        }
        if self.detail != 0 {
            write!(f, " n={}", self.detail)?;
        }
        if let Some(r) = self.reason {
            write!(f, " reason={}", r.as_str())?;
        }
        Ok(())
    }
}

/// The trace ring of one stack (or one simulator).
#[derive(Debug, Default)]
pub struct Tracer {
    enabled: bool,
    ring: Vec<TraceEvent>,
    capacity: usize,
    next: usize,
    overwritten: u64,
}

impl Tracer {
    /// A disabled tracer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Switches tracing on with room for `capacity` events. A capacity of 0,
    /// or one too large to allocate, leaves tracing off.
    pub fn enable(&mut self, capacity: usize) {
        self.ring = Vec::new();
        let ok = capacity > 0 && self.ring.try_reserve_exact(capacity).is_ok();
        self.enabled = ok;
        self.capacity = if ok { capacity } else { 0 };
        self.next = 0;
        self.overwritten = 0;
    }

    pub fn disable(&mut self) {
        self.enabled = false;
    }

    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records that `skb` passed the stage `point` at `now`.
    #[inline]
    pub fn skb(&mut self, now: Instant, point: &'static str, skb: &Skb) {
        if self.enabled {
            self.record_skb(now, point, skb, 0, None);
        }
    }

    /// As [`Tracer::skb`], with a stage-specific figure.
    #[inline]
    pub fn skb_detail(&mut self, now: Instant, point: &'static str, skb: &Skb, detail: u64) {
        if self.enabled {
            self.record_skb(now, point, skb, detail, None);
        }
    }

    /// Records `kfree_skb` of `skb` with `reason`.
    #[inline]
    pub fn kfree_skb(&mut self, now: Instant, skb: &Skb, reason: DropReason) {
        if self.enabled {
            self.record_skb(now, "kfree_skb", skb, 0, Some(reason));
        }
    }

    /// Records an event without an skb.
    #[inline]
    pub fn event(&mut self, now: Instant, point: &'static str, dev: Option<IfIndex>) {
        self.event_detail(now, point, dev, 0);
    }

    /// Records an event without an skb, with a stage-specific figure.
    #[inline]
    pub fn event_detail(
        &mut self,
        now: Instant,
        point: &'static str,
        dev: Option<IfIndex>,
        detail: u64,
    ) {
        if self.enabled {
            self.record_event(now, point, dev, detail);
        }
    }

    // The recording itself is out of line and marked cold: with tracing
    // off (the fast path) each trace point is a flag test, and the code
    // that builds events stays out of the packet path's instruction cache.

    #[cold]
    #[inline(never)]
    fn record_skb(
        &mut self,
        now: Instant,
        point: &'static str,
        skb: &Skb,
        detail: u64,
        reason: Option<DropReason>,
    ) {
        self.record(Self::skb_event(now, point, skb, detail, reason));
    }

    #[cold]
    #[inline(never)]
    fn record_event(
        &mut self,
        now: Instant,
        point: &'static str,
        dev: Option<IfIndex>,
        detail: u64,
    ) {
        self.record(TraceEvent {
            time: now,
            point,
            skb_id: 0,
            len: 0,
            dev,
            headers: [None; 3],
            detail,
            reason: None,
        });
    }

    fn skb_event(
        now: Instant,
        point: &'static str,
        skb: &Skb,
        detail: u64,
        reason: Option<DropReason>,
    ) -> TraceEvent {
        let h = |o: Option<usize>| o.map(|v| v as u32);
        TraceEvent {
            time: now,
            point,
            skb_id: skb.id(),
            len: skb.len() as u32,
            dev: skb.meta.ingress_dev.or(skb.meta.egress_dev),
            headers: [
                h(skb.mac_header()),
                h(skb.network_header()),
                h(skb.transport_header()),
            ],
            detail,
            reason,
        }
    }

    fn record(&mut self, ev: TraceEvent) {
        if self.ring.len() < self.capacity {
            self.ring.push(ev);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = ev;
            self.overwritten += 1;
        } else {
            return;
        }
        self.next += 1;
        if self.next >= self.capacity {
            self.next = 0;
        }
    }

    /// Events oldest first.
    pub fn events(&self) -> impl Iterator<Item = &TraceEvent> {
        let split = if self.ring.len() < self.capacity {
            0
        } else {
            self.next.min(self.ring.len())
        };
        self.ring[split..].iter().chain(self.ring[..split].iter())
    }

    /// Events lost to the ring wrapping.
    pub fn overwritten(&self) -> u64 {
        self.overwritten
    }

    /// Forgets the events recorded so far (and the count of overwritten ones).
    pub fn clear(&mut self) {
        self.ring.clear();
        self.next = 0;
        self.overwritten = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;

    #[test]
    fn off_records_nothing_on_records_in_order_and_wraps() {
        let pool = SkbPool::default();
        let skb = pool.alloc_from(0, &[1, 2, 3]).unwrap();
        let mut t = Tracer::new();
        t.skb(Instant::ZERO, "netif_receive_skb", &skb);
        assert_eq!(t.events().count(), 0);
        t.enable(2);
        t.skb(Instant::from_nanos(1), "netif_receive_skb", &skb);
        t.skb(Instant::from_nanos(2), "ip_rcv", &skb);
        t.event(Instant::from_nanos(3), "napi_poll", None);
        let pts: Vec<_> = t.events().map(|e| (e.point, e.time.as_nanos())).collect();
        assert_eq!(pts, vec![("ip_rcv", 2), ("napi_poll", 3)]);
        assert_eq!(t.overwritten(), 1);
        let first = t.events().next().unwrap();
        assert_eq!((first.skb_id, first.len), (skb.id(), 3));
        t.clear();
        assert_eq!((t.events().count(), t.overwritten()), (0, 0));
    }

    #[test]
    fn impossible_capacities_leave_tracing_off_instead_of_panicking() {
        let pool = SkbPool::default();
        let skb = pool.alloc_from(0, &[1]).unwrap();
        let mut t = Tracer::new();
        t.enable(0);
        assert!(!t.is_enabled());
        t.skb(Instant::ZERO, "ip_rcv", &skb);
        t.event(Instant::ZERO, "napi_poll", None);
        assert_eq!(t.events().count(), 0);
        // Was a "capacity overflow" panic inside `Vec::with_capacity`.
        t.enable(usize::MAX);
        assert!(!t.is_enabled());
        t.skb(Instant::ZERO, "ip_rcv", &skb);
        assert_eq!(t.events().count(), 0);
        t.enable(1);
        t.skb(Instant::from_nanos(4), "ip_rcv", &skb);
        t.skb(Instant::from_nanos(5), "ip_rcv", &skb);
        let times: Vec<u64> = t.events().map(|e| e.time.as_nanos()).collect();
        assert_eq!((times, t.overwritten()), (vec![5], 1));
    }
}
