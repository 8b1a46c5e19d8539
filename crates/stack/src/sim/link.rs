//! A simulated link: the cable (or hub) between NIC ports.
//!
//! Each sending end serialises frames one after another at the link's bit
//! rate (a busy-until time, and a bounded count of frames waiting behind the
//! one on the wire); every frame then takes the link's latency to arrive. On
//! the way, each copy a receiving end gets may be lost, duplicated, delayed
//! (reordered) or have one bit flipped, each with its configured probability,
//! drawn from the link's own seeded stream.
//!
//! The link only decides; [`super::world`] moves the skbs. Nothing here
//! allocates per frame: the waiting count lives in a ring whose capacity is
//! the queue limit.

use core::fmt;
use std::collections::VecDeque;

use super::rng::SimRng;
use super::world::{NodeId, PortId};
use crate::drop::{DropReason, DropStats};
use crate::skb::Skb;
use crate::time::{Duration, Instant};

/// How a link behaves. `Default` is a perfect 1 µs link without a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay, from the last bit sent to the last bit received.
    pub latency: Duration,
    /// Bit rate of each sending end (`None`: frames take no time to send).
    /// Serialisation takes `ceil(8 * len * 1e9 / rate)` ns for the frame's
    /// bytes as the skb holds them (no preamble or inter-frame gap).
    pub bandwidth_bps: Option<u64>,
    /// Probability that a receiving end does not get a frame.
    pub loss: f64,
    /// Probability that a receiving end gets a frame twice.
    pub duplicate: f64,
    /// Probability that a copy is held back by `reorder_delay`, letting later
    /// frames overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability that one random bit of a copy is flipped.
    pub corrupt: f64,
    /// Frames that may wait behind the one being serialised, per sending end
    /// (only meaningful with a bit rate); more are dropped and counted.
    pub queue_limit: usize,
    /// Probability that an ECN-capable IPv4 packet (ECT(0) or ECT(1)) is
    /// marked CE on its way, as an AQM router marks instead of dropping
    /// (RFC 3168). The router rewrites the checksum and the FCS.
    pub ce_mark: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_micros(1),
            bandwidth_bps: None,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            corrupt: 0.0,
            // Linux's default txqueuelen.
            queue_limit: 1000,
            ce_mark: 0.0,
        }
    }
}

/// A [`LinkConfig`] that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkConfigError {
    /// A probability outside `[0, 1]` (or NaN).
    Probability { field: &'static str, value: f64 },
    /// A bit rate of zero would never send anything.
    ZeroBandwidth,
}

impl fmt::Display for LinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LinkConfigError::Probability { field, value } => {
                write!(f, "link {field} probability {value} is not in [0, 1]")
            }
            LinkConfigError::ZeroBandwidth => write!(f, "link bandwidth of 0 bit/s"),
        }
    }
}

impl std::error::Error for LinkConfigError {}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        for (field, value) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
            ("ce_mark", self.ce_mark),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LinkConfigError::Probability { field, value });
            }
        }
        if self.bandwidth_bps == Some(0) {
            return Err(LinkConfigError::ZeroBandwidth);
        }
        Ok(())
    }

    /// Time to put `len` bytes on the wire at the configured rate.
    pub fn serialisation_delay(&self, len: usize) -> Duration {
        match self.bandwidth_bps {
            Some(bps) if bps > 0 => {
                let bits = len as u128 * 8;
                let ns = (bits * 1_000_000_000).div_ceil(u128::from(bps));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        }
    }
}

/// A link's counters. Every frame offered is accounted for: with one
/// receiving end (point to point), once no frame is in flight,
/// `tx_frames == queue_dropped + lost + delivered - duplicated`
/// (with `n` receivers, each admitted frame counts `n` times on the right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Frames offered by the sending ends (including those the queue dropped).
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Copies handed to a receiving end.
    pub delivered: u64,
    /// Copies lost on the way (freed as `LINK_LOSS`).
    pub lost: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Copies held back by the reorder delay.
    pub reordered: u64,
    /// Copies with a bit flipped.
    pub corrupted: u64,
    /// ECN-capable packets marked CE.
    pub ce_marked: u64,
    /// Frames refused by a full sending queue.
    pub queue_dropped: u64,
    /// Copies on the way now (scheduled, not yet delivered).
    pub in_flight: u64,
}

/// One attachment of a link to a node's port.
#[derive(Debug)]
pub(crate) struct LinkEnd {
    pub node: NodeId,
    pub port: PortId,
    /// When the last frame this end sends finishes serialising.
    busy_until: Instant,
    /// Start times of frames waiting to be serialised, oldest first.
    waiting: VecDeque<Instant>,
    /// Index of the capture on this end, if any.
    pub capture: Option<usize>,
}

/// A copy on its way to a receiving end.
pub(crate) struct Arrival {
    pub at: Instant,
    pub skb: Skb,
    /// The link altered the bytes.
    pub touched: bool,
}

#[derive(Debug)]
pub(crate) struct Link {
    pub cfg: LinkConfig,
    pub ends: Vec<LinkEnd>,
    pub stats: LinkStats,
    rng: SimRng,
}

impl Link {
    pub fn new(cfg: LinkConfig, rng: SimRng, ends: &[(NodeId, PortId)]) -> Link {
        let queue = if cfg.bandwidth_bps.is_some() {
            cfg.queue_limit.min(4096)
        } else {
            0
        };
        Link {
            cfg,
            ends: ends
                .iter()
                .map(|&(node, port)| LinkEnd {
                    node,
                    port,
                    busy_until: Instant::ZERO,
                    waiting: VecDeque::with_capacity(queue),
                    capture: None,
                })
                .collect(),
            stats: LinkStats::default(),
            rng,
        }
    }

    /// Whether a TSO burst may cross whole: nothing on this link would
    /// treat its frames one by one (no line rate, no impairment, no
    /// capture, two ends).
    pub fn carries_bursts(&self) -> bool {
        let c = &self.cfg;
        c.bandwidth_bps.is_none()
            && c.loss == 0.0
            && c.duplicate == 0.0
            && c.reorder == 0.0
            && c.corrupt == 0.0
            && c.ce_mark == 0.0
            && self.ends.len() == 2
            && self.ends.iter().all(|e| e.capture.is_none())
    }

    /// Queues a frame of `len` bytes at end `from`: the time its last bit
    /// leaves, or `None` if the end's queue is full. Counts it either way.
    pub fn serialise(&mut self, now: Instant, from: usize, len: usize) -> Option<Instant> {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len as u64;
        let delay = self.cfg.serialisation_delay(len);
        let limit = self.cfg.queue_limit;
        let end = self.ends.get_mut(from)?;
        if self.cfg.bandwidth_bps.is_none() {
            return Some(now);
        }
        while end.waiting.front().is_some_and(|&start| start <= now) {
            end.waiting.pop_front();
        }
        let start = end.busy_until.max(now);
        if start > now {
            if end.waiting.len() >= limit {
                self.stats.queue_dropped += 1;
                return None;
            }
            end.waiting.push_back(start);
        }
        end.busy_until = start + delay;
        Some(end.busy_until)
    }

    /// Applies loss, duplication, reordering and corruption to the copy for
    /// one receiving end, whose last bit would arrive at `at`: the copy and
    /// its duplicate, if any, or `None` if it is lost (and freed as
    /// `LINK_LOSS` into `drops`).
    pub fn impair(
        &mut self,
        skb: Skb,
        at: Instant,
        drops: &mut DropStats,
    ) -> Option<(Arrival, Option<Arrival>)> {
        if self.rng.chance(self.cfg.loss) {
            self.stats.lost += 1;
            drops.kfree_skb_reason(skb, DropReason::LinkLoss);
            return None;
        }
        let dup = if self.rng.chance(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            // Shares the bytes; corrupting either copy unshares it first.
            Some(skb.clone())
        } else {
            None
        };
        let first = self.disturb(skb, at);
        let second = dup.map(|d| self.disturb(d, at));
        self.stats.in_flight += 1 + u64::from(second.is_some());
        Some((first, second))
    }

    fn disturb(&mut self, mut skb: Skb, mut at: Instant) -> Arrival {
        if self.rng.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.reorder_delay;
        }
        // No draw unless marking is on: existing seeds keep their runs.
        if self.cfg.ce_mark > 0.0 && self.rng.chance(self.cfg.ce_mark) && {
            skb.resolve_offloads();
            mark_ce(&mut skb)
        } {
            self.stats.ce_marked += 1;
        }
        let mut touched = false;
        if self.rng.chance(self.cfg.corrupt) && !skb.is_empty() {
            // The FCS the sender computed, over the bytes before the flip.
            skb.resolve_offloads();
            let bit = self.rng.gen_range(0..skb.len() as u64 * 8);
            if let Some(b) = skb.data_mut().get_mut((bit / 8) as usize) {
                *b ^= 1 << (bit % 8);
                touched = true;
                self.stats.corrupted += 1;
            }
        }
        Arrival { at, skb, touched }
    }
}

/// Sets CE in an untagged Ethernet frame's IPv4 header if it is ECT,
/// updating the header checksum (RFC 1624) and the FCS. False if the frame
/// is not an ECN-capable IPv4 packet.
fn mark_ce(skb: &mut Skb) -> bool {
    let d = skb.data();
    if d.len() < 14 + 20 + 4 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 {
        return false;
    }
    let tos = d[15];
    if tos & 3 == 0 || tos & 3 == 3 {
        return false;
    }
    let data = skb.data_mut();
    let old = u16::from_be_bytes([data[14], data[15]]);
    data[15] = tos | 3;
    let new = u16::from_be_bytes([data[14], data[15]]);
    let check = u16::from_be_bytes([data[24], data[25]]);
    let check = netpath_wire::checksum::update16(check, old, new);
    data[24..26].copy_from_slice(&check.to_be_bytes());
    let body = data.len() - netpath_wire::ethernet::FCS_LEN;
    netpath_wire::ethernet::fcs::append(data, body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_probabilities_and_zero_rate() {
        assert_eq!(LinkConfig::default().validate(), Ok(()));
        let bad = LinkConfig {
            duplicate: 1.5,
            ..LinkConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(LinkConfigError::Probability {
                field: "duplicate",
                value: 1.5
            })
        );
        let nan = LinkConfig {
            corrupt: f64::NAN,
            ..LinkConfig::default()
        };
        assert!(matches!(
            nan.validate(),
            Err(LinkConfigError::Probability {
                field: "corrupt",
                ..
            })
        ));
        let neg = LinkConfig {
            loss: -0.1,
            ..LinkConfig::default()
        };
        assert!(neg.validate().is_err());
        let zero = LinkConfig {
            bandwidth_bps: Some(0),
            ..LinkConfig::default()
        };
        assert_eq!(zero.validate(), Err(LinkConfigError::ZeroBandwidth));
    }

    #[test]
    fn serialisation_delay_formula() {
        let cfg = LinkConfig {
            bandwidth_bps: Some(12_000_000),
            ..LinkConfig::default()
        };
        assert_eq!(cfg.serialisation_delay(1500), Duration::from_millis(1));
        // 1 byte at 3 bit/s: 8/3 s, rounded up to the nanosecond.
        let slow = LinkConfig {
            bandwidth_bps: Some(3),
            ..LinkConfig::default()
        };
        assert_eq!(slow.serialisation_delay(1).as_nanos(), 2_666_666_667);
        assert_eq!(
            LinkConfig::default().serialisation_delay(1500),
            Duration::ZERO
        );
    }

    #[test]
    fn frames_queue_behind_each_other_up_to_the_limit() {
        let cfg = LinkConfig {
            bandwidth_bps: Some(8_000_000), // 1 byte per µs
            queue_limit: 2,
            ..LinkConfig::default()
        };
        let ends = [(NodeId(0), PortId(0)), (NodeId(1), PortId(0))];
        let mut l = Link::new(cfg, SimRng::new(1), &ends);
        let t0 = Instant::from_micros(10);
        let us = Instant::from_micros;
        assert_eq!(l.serialise(t0, 0, 100), Some(us(110)));
        assert_eq!(l.serialise(t0, 0, 100), Some(us(210)));
        assert_eq!(l.serialise(t0, 0, 100), Some(us(310)));
        assert_eq!(l.serialise(t0, 0, 100), None, "two already waiting");
        // The other end has its own wire.
        assert_eq!(l.serialise(t0, 1, 50), Some(us(60)));
        // At 110 µs the second frame is on the wire, one waits: room again.
        assert_eq!(l.serialise(us(110), 0, 10), Some(us(320)));
        assert_eq!(l.serialise(us(110), 0, 10), None);
        // Idle again later: no queueing delay.
        assert_eq!(l.serialise(us(1000), 0, 10), Some(us(1010)));
        assert_eq!(l.stats.tx_frames, 8);
        assert_eq!(l.stats.queue_dropped, 2);
        assert_eq!(l.stats.tx_bytes, 100 * 4 + 50 + 10 * 3);
    }
}
