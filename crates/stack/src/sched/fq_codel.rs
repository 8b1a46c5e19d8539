//! `fq_codel`: fair queueing with per-flow CoDel, as Linux's
//! `net/sched/sch_fq_codel.c` with the CoDel of `include/net/codel.h` and
//! `include/net/codel_impl.h`.
//!
//! Seed egress step 7 (the device's qdisc). Packets are hashed into one of
//! `flows` queues (by `skb.meta.hash`, computed from the IPv4 5-tuple when
//! zero). Flows with new traffic go on `new_flows`, which are served before
//! `old_flows`; each flow is served a deficit round robin `quantum` of bytes
//! per turn. Each flow runs CoDel at dequeue on the sojourn time of its head
//! packet: once it has stayed above `target` for `interval`, the flow drops
//! at a rate that grows with the square root of the drop count. When the
//! qdisc exceeds `limit` packets or `memory_limit` bytes, up to half of the
//! fattest flow's backlog (at most `drop_batch` packets) is dropped from its
//! head.
//!
//! Differences from Linux:
//! - ECN marking is not implemented; CoDel always drops (Linux's default is
//!   `ecn`). `ce_threshold` is not implemented either.
//! - All drops carry `QDISC_DROP`: recent Linux reports CoDel drops as
//!   `QDISC_CONGESTED` and overflow drops as `QDISC_OVERLIMIT`, which the
//!   project's drop table (`drop.rs`) does not have yet.
//! - CoDel time is kept in nanoseconds rather than Linux's 1024 ns units.
//! - No tc filters or `skb->priority` classification: the flow is the hash.
//! - The flow hash uses a fixed seed (Linux's is random per boot), so runs
//!   are reproducible; it is symmetric in the two endpoints as Linux's.
//! - Memory is charged as the buffer size plus [`SKB_OVERHEAD`] (Linux
//!   charges `skb->truesize`).

use std::collections::VecDeque;

use super::pfifo::tc_size;
use super::tbf::tc_time;
use super::{NetXmit, Qdisc, QdiscCtx, QdiscStats};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::time::{Duration, Instant};

/// What a queued skb costs besides its buffer: `struct sk_buff` and
/// `struct skb_shared_info` as Linux accounts them in `truesize` (x86-64).
pub const SKB_OVERHEAD: u32 = 576;

/// Linux's bounds on the parameters.
pub const MAX_FLOWS: u32 = 65536;
pub const MIN_QUANTUM: u32 = 256;
pub const MAX_QUANTUM: u32 = 1 << 20;
pub const MAX_MEMORY_LIMIT: u32 = 1 << 31;

const ETH_P_IP: u16 = 0x0800;

/// Bits of the fixed-point reciprocal square root CoDel caches.
const REC_INV_SQRT_BITS: u32 = 16;
const REC_INV_SQRT_SHIFT: u32 = 32 - REC_INV_SQRT_BITS;

/// Parameters, as `tc qdisc add … fq_codel limit … flows … quantum …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FqCodelConfig {
    /// Packets queued in all flows before overflow drops (10240).
    pub limit: u32,
    /// Number of flow queues (1024).
    pub flows: u32,
    /// Bytes a flow may send per round (device MTU + link header).
    pub quantum: u32,
    /// Acceptable standing sojourn time (5 ms).
    pub target: Duration,
    /// Window over which the sojourn must stay above target (100 ms).
    pub interval: Duration,
    /// Bytes of memory queued packets may use (32 MiB).
    pub memory_limit: u32,
    /// Most packets dropped at once on overflow (64).
    pub drop_batch: u32,
    /// CoDel's `mtu`: below this backlog CoDel never drops (MTU + link header).
    pub mtu: u32,
}

impl FqCodelConfig {
    /// Linux's defaults for a device whose `psched_mtu` (MTU + hard header
    /// length, e.g. 1500 + 14) is `psched_mtu`.
    pub fn new(psched_mtu: u32) -> Self {
        FqCodelConfig {
            limit: 10 * 1024,
            flows: 1024,
            quantum: psched_mtu,
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
            memory_limit: 32 << 20,
            drop_batch: 64,
            mtu: psched_mtu,
        }
    }
}

/// Why an `fq_codel` cannot be built (Linux answers `-EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FqCodelError {
    /// `flows` 0 or above 65536.
    BadFlows(u32),
    /// `quantum` above 2^20.
    QuantumTooLarge(u32),
}

impl core::fmt::Display for FqCodelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FqCodelError::BadFlows(n) => write!(f, "fq_codel flows {n} not in 1..=65536"),
            FqCodelError::QuantumTooLarge(n) => write!(f, "fq_codel quantum {n} above 1048576"),
        }
    }
}

impl std::error::Error for FqCodelError {}

/// fq_codel's own counters (`struct tc_fq_codel_qd_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FqCodelXstats {
    /// Largest packet CoDel has seen.
    pub maxpacket: u32,
    /// Packets dropped because the qdisc was over `limit` or `memory_limit`.
    pub drop_overlimit: u64,
    /// Packets CE-marked instead of dropped (always 0: no ECN here).
    pub ecn_mark: u64,
    /// Times a flow went on the new-flows list.
    pub new_flow_count: u64,
    /// Flows on the new-flows list now.
    pub new_flows_len: u32,
    /// Flows on the old-flows list now.
    pub old_flows_len: u32,
    /// Bytes charged for queued packets now.
    pub memory_usage: u64,
    /// Of `drop_overlimit`, those due to `memory_limit`.
    pub drop_overmemory: u64,
}

/// CoDel state of one flow (`struct codel_vars`).
#[derive(Debug, Clone, Copy, Default)]
struct CodelVars {
    /// Drops since entering the dropping state (plus overflow drops).
    count: u32,
    /// `count` when the last dropping state began.
    lastcount: u32,
    dropping: bool,
    /// 1/sqrt(count) in Q0.16, refined by one Newton step per change.
    rec_inv_sqrt: u16,
    /// When the sojourn time, if it stays above target, allows a drop.
    first_above_time: Option<Instant>,
    /// When the next drop is due while dropping.
    drop_next: Instant,
    /// Sojourn time of the last packet examined.
    ldelay: Duration,
}

impl CodelVars {
    /// One Newton–Raphson step towards 1/sqrt(count): y' = y (3 - count y²) / 2,
    /// in 32-bit fixed point with Linux's truncations and wrap-around.
    fn newton_step(&mut self) {
        let y = u64::from(self.rec_inv_sqrt) << REC_INV_SQRT_SHIFT;
        let y_sq = (y * y) >> 32;
        let three_minus = (3u64 << 32).wrapping_sub(u64::from(self.count).wrapping_mul(y_sq)) >> 2;
        let next = three_minus.wrapping_mul(y) >> (32 - 2 + 1);
        self.rec_inv_sqrt = (next >> REC_INV_SQRT_SHIFT) as u16;
    }

    /// `t + interval / sqrt(count)`, using the cached reciprocal.
    fn control_law(&self, t: Instant, interval: Duration) -> Instant {
        let scale = u128::from(self.rec_inv_sqrt) << REC_INV_SQRT_SHIFT;
        let step = (u128::from(interval.as_nanos()) * scale) >> 32;
        t + Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX))
    }
}

/// A queued packet with what the qdisc remembers about it (Linux keeps
/// these in the skb's control block).
#[derive(Debug)]
struct Entry {
    skb: Skb,
    enqueued: Instant,
    mem: u32,
}

/// One flow queue (`struct fq_codel_flow`).
#[derive(Debug, Default)]
struct Flow {
    q: VecDeque<Entry>,
    deficit: i64,
    cvars: CodelVars,
    /// On `new_flows` or `old_flows` (Linux: `flowchain` not empty).
    listed: bool,
}

/// Fair queueing controlled delay.
#[derive(Debug)]
pub struct FqCodel {
    cfg: FqCodelConfig,
    flows: Vec<Flow>,
    /// Bytes queued per flow (scanned to find the fattest flow).
    backlogs: Vec<u64>,
    new_flows: VecDeque<u32>,
    old_flows: VecDeque<u32>,
    memory_usage: u64,
    stats: QdiscStats,
    x: FqCodelXstats,
}

impl FqCodel {
    /// Linux's defaults for a device with `psched_mtu` = MTU + link header
    /// (1514 on Ethernet): quantum and CoDel mtu are that value.
    pub fn new(psched_mtu: u32) -> Self {
        let mut cfg = FqCodelConfig::new(psched_mtu);
        cfg.quantum = cfg.quantum.clamp(MIN_QUANTUM, MAX_QUANTUM);
        Self::build(cfg)
    }

    /// Explicit parameters. As Linux, a quantum below 256 is raised to 256,
    /// a zero drop batch to 1 and a memory limit above 2 GiB lowered to it.
    pub fn with_config(mut cfg: FqCodelConfig) -> Result<Self, FqCodelError> {
        if cfg.flows == 0 || cfg.flows > MAX_FLOWS {
            return Err(FqCodelError::BadFlows(cfg.flows));
        }
        if cfg.quantum > MAX_QUANTUM {
            return Err(FqCodelError::QuantumTooLarge(cfg.quantum));
        }
        cfg.quantum = cfg.quantum.max(MIN_QUANTUM);
        cfg.drop_batch = cfg.drop_batch.max(1);
        cfg.memory_limit = cfg.memory_limit.min(MAX_MEMORY_LIMIT);
        Ok(Self::build(cfg))
    }

    /// Allocates the flow table and lists once; nothing here grows per packet
    /// except each flow's ring up to its high-water mark.
    fn build(cfg: FqCodelConfig) -> Self {
        let n = cfg.flows as usize;
        FqCodel {
            flows: (0..n).map(|_| Flow::default()).collect(),
            backlogs: vec![0; n],
            new_flows: VecDeque::with_capacity(n),
            old_flows: VecDeque::with_capacity(n),
            memory_usage: 0,
            stats: QdiscStats::default(),
            x: FqCodelXstats::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &FqCodelConfig {
        &self.cfg
    }

    /// fq_codel's own counters, as `tc -s qdisc` prints after the common ones.
    pub fn xstats(&self) -> FqCodelXstats {
        FqCodelXstats {
            new_flows_len: self.new_flows.len() as u32,
            old_flows_len: self.old_flows.len() as u32,
            memory_usage: self.memory_usage,
            ..self.x
        }
    }

    /// The flow queue `skb` goes to (without storing a computed hash).
    pub fn flow_of(&self, skb: &Skb) -> usize {
        let hash = match skb.meta.hash {
            0 => flow_hash(skb),
            h => h,
        };
        self.scale(hash)
    }

    /// Packets and bytes queued in flow `idx`.
    pub fn flow_backlog(&self, idx: usize) -> (usize, u64) {
        match (self.flows.get(idx), self.backlogs.get(idx)) {
            (Some(f), Some(&b)) => (f.q.len(), b),
            _ => (0, 0),
        }
    }

    /// Maps a 32-bit hash onto the flow table (`reciprocal_scale`).
    fn scale(&self, hash: u32) -> usize {
        ((u64::from(hash) * u64::from(self.cfg.flows)) >> 32) as usize
    }

    /// `fq_codel_classify` via `skb_get_hash`: the hash is computed once and
    /// kept in the skb, as Linux does.
    fn classify(&self, skb: &mut Skb) -> usize {
        if skb.meta.hash == 0 {
            skb.meta.hash = flow_hash(skb);
        }
        self.scale(skb.meta.hash)
    }

    /// Takes the head of flow `idx` out of every count (`dequeue_func`).
    fn take_head(&mut self, idx: usize) -> Option<Entry> {
        let e = self.flows[idx].q.pop_front()?;
        let len = e.skb.len() as u64;
        self.backlogs[idx] -= len;
        self.memory_usage -= u64::from(e.mem);
        self.stats.qlen -= 1;
        self.stats.backlog_bytes -= len;
        Some(e)
    }

    /// CoDel's verdict on the packet just taken from flow `idx`
    /// (`codel_should_drop`): true once its sojourn has been above target
    /// for a whole interval while more than an MTU stays queued.
    fn should_drop(&mut self, idx: usize, e: Option<&Entry>, now: Instant) -> bool {
        let cfg = self.cfg;
        let backlog = self.stats.backlog_bytes;
        let v = &mut self.flows[idx].cvars;
        let Some(e) = e else {
            v.first_above_time = None;
            return false;
        };
        v.ldelay = now.saturating_since(e.enqueued);
        let len = u32::try_from(e.skb.len()).unwrap_or(u32::MAX);
        self.x.maxpacket = self.x.maxpacket.max(len);
        if v.ldelay < cfg.target || backlog <= u64::from(cfg.mtu) {
            v.first_above_time = None;
            return false;
        }
        match v.first_above_time {
            None => {
                v.first_above_time = Some(now + cfg.interval);
                false
            }
            Some(t) => now > t,
        }
    }

    fn codel_drop(&mut self, e: Entry, ctx: &mut QdiscCtx) {
        self.stats.drops += 1;
        ctx.drop_skb(e.skb, DropReason::QdiscCongested);
    }

    /// `codel_dequeue` on flow `idx`: the next packet to send from it, after
    /// any drops the control law calls for.
    fn codel_dequeue(&mut self, idx: usize, ctx: &mut QdiscCtx) -> Option<Skb> {
        let now = ctx.now;
        let interval = self.cfg.interval;
        let Some(first) = self.take_head(idx) else {
            self.flows[idx].cvars.dropping = false;
            return None;
        };
        let mut cur = Some(first);
        let drop = self.should_drop(idx, cur.as_ref(), now);
        if self.flows[idx].cvars.dropping {
            if !drop {
                // Sojourn went below target: stop dropping.
                self.flows[idx].cvars.dropping = false;
            } else {
                while self.flows[idx].cvars.dropping && now >= self.flows[idx].cvars.drop_next {
                    let v = &mut self.flows[idx].cvars;
                    v.count = v.count.wrapping_add(1);
                    v.newton_step();
                    if let Some(e) = cur.take() {
                        self.codel_drop(e, ctx);
                    }
                    cur = self.take_head(idx);
                    let again = self.should_drop(idx, cur.as_ref(), now);
                    let v = &mut self.flows[idx].cvars;
                    if again {
                        v.drop_next = v.control_law(v.drop_next, interval);
                    } else {
                        v.dropping = false;
                    }
                }
            }
        } else if drop {
            if let Some(e) = cur.take() {
                self.codel_drop(e, ctx);
            }
            cur = self.take_head(idx);
            // Updates first_above_time for the new head; the verdict itself
            // is not needed, as the flow enters the dropping state anyway.
            self.should_drop(idx, cur.as_ref(), now);
            let v = &mut self.flows[idx].cvars;
            v.dropping = true;
            // Coming back soon after the last dropping state: resume near the
            // drop rate that controlled the queue then.
            let delta = v.count.wrapping_sub(v.lastcount);
            let since = i128::from(now.as_nanos()) - i128::from(v.drop_next.as_nanos());
            if delta > 1 && since < 16 * i128::from(interval.as_nanos()) {
                v.count = delta;
                v.newton_step();
            } else {
                v.count = 1;
                v.rec_inv_sqrt = (u32::MAX >> REC_INV_SQRT_SHIFT) as u16;
            }
            v.lastcount = v.count;
            v.drop_next = v.control_law(now, interval);
        }
        cur.map(|e| e.skb)
    }

    fn list_mut(&mut self, new: bool) -> &mut VecDeque<u32> {
        if new {
            &mut self.new_flows
        } else {
            &mut self.old_flows
        }
    }

    /// `fq_codel_drop`: drops from the head of the flow with the most bytes
    /// queued until half of them are gone or `drop_batch` were dropped.
    /// Returns that flow.
    fn drop_fattest(&mut self, fallback: usize, ctx: &mut QdiscCtx) -> usize {
        let mut idx = 0;
        let mut max = 0;
        for (i, &b) in self.backlogs.iter().enumerate() {
            if b > max {
                max = b;
                idx = i;
            }
        }
        if self.flows[idx].q.is_empty() {
            // Only zero-length packets are queued: drop from the flow that
            // just grew.
            idx = fallback;
        }
        let threshold = max >> 1;
        let mut dropped = 0u32;
        let mut bytes = 0u64;
        let mut mem = 0u64;
        while let Some(e) = self.flows[idx].q.pop_front() {
            bytes += e.skb.len() as u64;
            mem += u64::from(e.mem);
            dropped += 1;
            ctx.drop_skb(e.skb, DropReason::QdiscOverlimit);
            if dropped >= self.cfg.drop_batch || bytes >= threshold {
                break;
            }
        }
        let flow = &mut self.flows[idx];
        flow.cvars.count = flow.cvars.count.wrapping_add(dropped);
        self.backlogs[idx] -= bytes;
        self.memory_usage -= mem;
        self.stats.drops += u64::from(dropped);
        self.stats.backlog_bytes -= bytes;
        self.stats.qlen -= u64::from(dropped);
        idx
    }
}

impl Default for FqCodel {
    /// Linux's defaults on an Ethernet device with a 1500-byte MTU.
    fn default() -> Self {
        FqCodel::new(1500 + 14)
    }
}

impl Qdisc for FqCodel {
    fn kind(&self) -> &'static str {
        "fq_codel"
    }

    fn enqueue(&mut self, mut skb: Skb, ctx: &mut QdiscCtx) -> NetXmit {
        let idx = self.classify(&mut skb);
        let len = skb.len() as u64;
        let mem = u32::try_from(skb.end())
            .unwrap_or(u32::MAX)
            .saturating_add(SKB_OVERHEAD);
        let quantum = i64::from(self.cfg.quantum);
        let flow = &mut self.flows[idx];
        flow.q.push_back(Entry {
            skb,
            enqueued: ctx.now,
            mem,
        });
        if !flow.listed {
            flow.listed = true;
            flow.deficit = quantum;
            self.new_flows.push_back(idx as u32);
            self.x.new_flow_count += 1;
        }
        self.backlogs[idx] += len;
        self.stats.backlog_bytes += len;
        self.stats.qlen += 1;
        self.memory_usage += u64::from(mem);
        let over_memory = self.memory_usage > u64::from(self.cfg.memory_limit);
        if self.stats.qlen <= u64::from(self.cfg.limit) && !over_memory {
            return NetXmit::Success;
        }
        let before = self.stats.qlen;
        let victim = self.drop_fattest(idx, ctx);
        let dropped = before - self.stats.qlen;
        self.x.drop_overlimit += dropped;
        if over_memory {
            self.x.drop_overmemory += dropped;
        }
        if victim == idx {
            NetXmit::Congested
        } else {
            NetXmit::Success
        }
    }

    fn dequeue(&mut self, ctx: &mut QdiscCtx) -> Option<Skb> {
        loop {
            let (from_new, idx) = match (self.new_flows.front(), self.old_flows.front()) {
                (Some(&i), _) => (true, i as usize),
                (None, Some(&i)) => (false, i as usize),
                (None, None) => return None,
            };
            if self.flows[idx].deficit <= 0 {
                // Turn used up: next round, at the back of the old flows.
                self.flows[idx].deficit += i64::from(self.cfg.quantum);
                self.list_mut(from_new).pop_front();
                self.old_flows.push_back(idx as u32);
                continue;
            }
            match self.codel_dequeue(idx, ctx) {
                Some(skb) => {
                    let len = skb.len() as u64;
                    self.flows[idx].deficit -= len as i64;
                    self.stats.packets += skb.gso_segs() as u64;
                    self.stats.bytes += len;
                    return Some(skb);
                }
                None => {
                    // Empty: a new flow still takes one pass through the old
                    // list (so old flows are not starved by flows that keep
                    // coming back as new); an old flow leaves the lists.
                    self.list_mut(from_new).pop_front();
                    if from_new && !self.old_flows.is_empty() {
                        self.old_flows.push_back(idx as u32);
                    } else {
                        self.flows[idx].listed = false;
                    }
                }
            }
        }
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn note_requeue(&mut self) {
        self.stats.requeues += 1;
    }

    /// Purges every flow and resets CoDel state; as Linux, the purged
    /// packets are not counted as drops.
    fn reset(&mut self, ctx: &mut QdiscCtx) {
        for flow in &mut self.flows {
            for e in flow.q.drain(..) {
                ctx.drop_skb(e.skb, DropReason::QdiscDrop);
            }
            flow.cvars = CodelVars::default();
            flow.listed = false;
        }
        self.backlogs.iter_mut().for_each(|b| *b = 0);
        self.new_flows.clear();
        self.old_flows.clear();
        self.memory_usage = 0;
        self.stats.qlen = 0;
        self.stats.backlog_bytes = 0;
    }

    fn params(&self) -> String {
        let c = &self.cfg;
        format!(
            "limit {}p flows {} quantum {} target {} interval {} memory_limit {} drop_batch {}",
            c.limit,
            c.flows,
            c.quantum,
            tc_time(c.target.as_nanos()),
            tc_time(c.interval.as_nanos()),
            tc_size(u64::from(c.memory_limit)),
            c.drop_batch
        )
    }
}

/// A flow hash when the skb has none (`skb_get_hash`): over the IPv4
/// addresses, protocol and (unless fragmented) TCP/UDP/SCTP/DCCP/UDP-Lite
/// ports, ordered so both directions hash alike; over the ethertype alone
/// for anything else. Never 0.
pub fn flow_hash(skb: &Skb) -> u32 {
    let nh = skb.network_header_bytes();
    let h = match ipv4_keys(skb.meta.protocol, nh) {
        Some((src, dst, sport, dport, proto)) => {
            let (a, b, pa, pb) = if (dst, dport) < (src, sport) {
                (dst, src, dport, sport)
            } else {
                (src, dst, sport, dport)
            };
            mix(&[
                a,
                b,
                (u32::from(pa) << 16) | u32::from(pb),
                u32::from(proto) | (u32::from(ETH_P_IP) << 16),
            ])
        }
        None => mix(&[u32::from(skb.meta.protocol)]),
    };
    h.max(1)
}

/// (saddr, daddr, sport, dport, protocol) of an IPv4 header; ports 0 when
/// absent, not a port protocol, or the packet is a fragment.
fn ipv4_keys(protocol: u16, nh: &[u8]) -> Option<(u32, u32, u16, u16, u8)> {
    if protocol != ETH_P_IP || nh.len() < 20 || nh[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(nh[0] & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([nh[i], nh[i + 1], nh[i + 2], nh[i + 3]]);
    let proto = nh[9];
    let frag = u16::from_be_bytes([nh[6], nh[7]]) & 0x3fff;
    // TCP, UDP, DCCP, SCTP, UDP-Lite.
    let has_ports = matches!(proto, 6 | 17 | 33 | 132 | 136);
    let (sport, dport) = match nh.get(ihl..ihl + 4) {
        Some(p) if has_ports && frag == 0 => (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ),
        _ => (0, 0),
    };
    Some((word(12), word(16), sport, dport, proto))
}

/// A seeded 32-bit mix of the key words (murmur3-style rounds and finish).
fn mix(words: &[u32]) -> u32 {
    const SEED: u32 = 0x6e65_7470; // "netp"
    let mut h = SEED;
    for &w in words {
        let k = w
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        h = (h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    h ^= (words.len() as u32) * 4;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::pfifo::Pfifo;
    use crate::skb::SkbPool;

    /// Hashes landing in distinct flows of a 1024-flow table.
    const BULK: u32 = 0x1000_0000;
    const SPARSE: u32 = 0x8000_0000;

    fn pkt(pool: &SkbPool, hash: u32, len: usize, now: Instant) -> Skb {
        let mut skb = pool.alloc_from(64, &vec![0x5a; len]).unwrap();
        skb.meta.hash = hash;
        skb.meta.set_tstamp(Some(now));
        skb
    }

    const LINK_BPS: u64 = 10_000_000;
    const PKT: usize = 1500;
    /// Transmission time of one bulk packet on the link: 1.2 ms.
    const TX_NS: u64 = PKT as u64 * 8 * 1_000_000_000 / LINK_BPS;

    /// One flow from a rate-based AIMD sender (TCP-like: halve on a drop at
    /// most once per RTT, add one packet per RTT per RTT) capped at twice
    /// the link rate, through `q` onto a 10 Mbit/s link, for `secs` virtual
    /// seconds. Measures the second half.
    fn standing_queue(q: &mut dyn Qdisc, secs: u64) -> Standing {
        const RTT_NS: u64 = 50_000_000;
        let pool = SkbPool::default();
        let link_pps = LINK_BPS as f64 / (PKT as f64 * 8.0);
        let cap = 2.0 * link_pps;
        let mut rate = cap;
        let end = secs * 1_000_000_000;
        let half = end / 2;
        let (mut t_send, mut t_link) = (0u64, 0u64);
        let (mut last_cut, mut last_inc) = (0u64, 0u64);
        let (mut sum, mut n, mut drops, mut max) = (0u128, 0u64, 0u64, 0u64);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        loop {
            let now = t_send.min(t_link);
            if now >= end {
                break;
            }
            ctx.now = Instant::from_nanos(now);
            if t_send <= t_link {
                q.enqueue(pkt(&pool, BULK, PKT, ctx.now), &mut ctx);
                if now - last_inc >= RTT_NS {
                    rate = (rate + 1e9 / RTT_NS as f64).min(cap);
                    last_inc = now;
                }
                t_send = now + (1e9 / rate) as u64;
            } else if let Some(skb) = q.dequeue(&mut ctx) {
                let sojourn = now - skb.meta.tstamp().unwrap().as_nanos();
                if now >= half {
                    sum += u128::from(sojourn);
                    n += 1;
                    max = max.max(sojourn);
                }
                t_link = now + TX_NS;
            } else {
                t_link = t_send;
            }
            if !ctx.to_free.is_empty() {
                drops += ctx.to_free.len() as u64;
                ctx.to_free.clear();
                if now - last_cut >= RTT_NS {
                    rate /= 2.0;
                    last_cut = now;
                }
            }
        }
        let mean = if n == 0 {
            0
        } else {
            (sum / u128::from(n)) as u64
        };
        Standing {
            mean: Duration::from_nanos(mean),
            max: Duration::from_nanos(max),
            sent: n,
            capacity: (end - half) / TX_NS,
            drops,
        }
    }

    struct Standing {
        /// Mean and largest sojourn of packets sent in the second half.
        mean: Duration,
        max: Duration,
        /// Packets sent in the second half, and what the link could send.
        sent: u64,
        capacity: u64,
        /// Packets dropped over the whole run.
        drops: u64,
    }

    #[test]
    fn standing_queue_kept_near_target() {
        let mut q = FqCodel::new(1514);
        let r = standing_queue(&mut q, 10);
        assert!(
            r.mean < Duration::from_millis(15),
            "mean sojourn {}",
            r.mean
        );
        assert!(r.max < Duration::from_millis(50), "max sojourn {}", r.max);
        // Not by starving the link: the sender still fills most of it.
        assert!(r.sent * 4 > r.capacity * 3, "{} of {}", r.sent, r.capacity);
        assert!(r.drops > 0);
        assert_eq!(q.stats().drops, r.drops);
        let x = q.xstats();
        assert_eq!(x.drop_overlimit, 0, "all drops are CoDel's");
        assert_eq!(x.maxpacket, PKT as u32);
        assert_eq!(x.ecn_mark, 0);

        // The same sender through a plain FIFO never sees a drop and keeps
        // sending at twice the link rate: the queue grows to seconds.
        let mut fifo = Pfifo::new(10 * 1024);
        let r = standing_queue(&mut fifo, 10);
        assert_eq!(r.drops, 0);
        assert!(
            r.mean > Duration::from_secs(1),
            "fifo mean sojourn {}",
            r.mean
        );
        assert!(r.sent >= r.capacity);
    }

    #[test]
    fn sparse_flow_gets_low_delay_next_to_bulk() {
        let pool = SkbPool::default();
        let mut q = FqCodel::new(1514);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        let end = 3_000_000_000u64;
        // Unresponsive bulk sender at twice the link rate; a sparse flow
        // sends 100 bytes every 50 ms.
        let bulk_gap = TX_NS / 2;
        let sparse_gap = 50_000_000;
        let (mut t_bulk, mut t_sparse, mut t_link) = (0u64, 1_000_000u64, 0u64);
        let (mut sparse_sent, mut sparse, mut bulk_sum, mut bulk_n) =
            (0u64, Vec::new(), 0u128, 0u64);
        loop {
            let now = t_bulk.min(t_sparse).min(t_link);
            if now >= end {
                break;
            }
            ctx.now = Instant::from_nanos(now);
            if t_sparse == now {
                q.enqueue(pkt(&pool, SPARSE, 100, ctx.now), &mut ctx);
                sparse_sent += 1;
                t_sparse += sparse_gap;
            } else if t_bulk == now {
                q.enqueue(pkt(&pool, BULK, PKT, ctx.now), &mut ctx);
                t_bulk += bulk_gap;
            } else if let Some(skb) = q.dequeue(&mut ctx) {
                let sojourn = now - skb.meta.tstamp().unwrap().as_nanos();
                if skb.meta.hash == SPARSE {
                    sparse.push(sojourn);
                } else {
                    bulk_sum += u128::from(sojourn);
                    bulk_n += 1;
                }
                t_link = now + skb.len() as u64 * 8 * 1_000_000_000 / LINK_BPS;
            } else {
                t_link = t_bulk.min(t_sparse);
            }
            ctx.to_free.clear();
        }
        assert_eq!(sparse_sent, 60);
        assert_eq!(sparse.len() as u64, sparse_sent);
        // The first sparse packet shares new_flows with the bulk flow, which
        // has just started and still has 14 bytes of quantum: it waits for
        // the packet on the wire (until 1.2 ms) and one more bulk packet.
        assert_eq!(sparse[0], 1_400_000);
        // Afterwards the bulk flow is an old flow and a sparse packet waits
        // at most for the bulk packet on the wire.
        let max = sparse[1..].iter().max().copied().unwrap_or(0);
        assert!(max <= TX_NS, "sparse max sojourn {max} ns");
        let bulk_mean = (bulk_sum / u128::from(bulk_n)) as u64;
        assert!(bulk_mean > 100_000_000, "bulk mean sojourn {bulk_mean} ns");
        // Every sparse packet found its flow idle and started a new flow;
        // the bulk flow did once, at the start.
        assert_eq!(q.xstats().new_flow_count, sparse_sent + 1);
        assert!(q.stats().drops > 0);
    }

    fn small_config(limit: u32) -> FqCodelConfig {
        FqCodelConfig {
            limit,
            ..FqCodelConfig::new(1514)
        }
    }

    #[test]
    fn overflow_drops_half_of_fattest_flow_from_its_head() {
        let pool = SkbPool::default();
        let mut q = FqCodel::with_config(small_config(20)).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        let fat = BULK;
        let thin = SPARSE;
        for i in 0..15u8 {
            let mut skb = pkt(&pool, fat, 1000, ctx.now);
            skb.data_mut()[0] = i;
            assert_eq!(q.enqueue(skb, &mut ctx), NetXmit::Success);
        }
        for _ in 0..5 {
            assert_eq!(
                q.enqueue(pkt(&pool, thin, 500, ctx.now), &mut ctx),
                NetXmit::Success
            );
        }
        assert!(ctx.to_free.is_empty());
        // The 21st packet, of the thin flow: the fat flow (15000 bytes) loses
        // packets from its head until at least 7500 bytes are gone.
        assert_eq!(
            q.enqueue(pkt(&pool, thin, 500, ctx.now), &mut ctx),
            NetXmit::Success
        );
        let tags: Vec<u8> = ctx.to_free.iter().map(|(s, _)| s.data()[0]).collect();
        assert_eq!(tags, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(ctx
            .to_free
            .iter()
            .all(|(_, r)| *r == DropReason::QdiscOverlimit));
        let fat_idx = q.flow_of(&pkt(&pool, fat, 1, ctx.now));
        let thin_idx = q.flow_of(&pkt(&pool, thin, 1, ctx.now));
        assert_eq!(q.flow_backlog(fat_idx), (7, 7000));
        assert_eq!(q.flow_backlog(thin_idx), (6, 3000));
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops), (13, 10_000, 8));
        let x = q.xstats();
        assert_eq!((x.drop_overlimit, x.drop_overmemory), (8, 0));
        assert_eq!(x.memory_usage, 13 * u64::from(2048 + SKB_OVERHEAD));

        // Overflowing through the fat flow itself reports congestion.
        ctx.to_free.clear();
        for _ in 0..7 {
            q.enqueue(pkt(&pool, fat, 1000, ctx.now), &mut ctx);
        }
        assert_eq!(q.stats().qlen, 20);
        assert_eq!(
            q.enqueue(pkt(&pool, fat, 1000, ctx.now), &mut ctx),
            NetXmit::Congested
        );
        // 15 packets, 15000 bytes: 8 dropped to reach half.
        assert_eq!(ctx.to_free.len(), 8);
        assert_eq!(q.stats().qlen, 13);
        assert_eq!(q.xstats().drop_overlimit, 16);
    }

    #[test]
    fn overflow_drop_batch_and_memory_limit() {
        let pool = SkbPool::default();
        let cfg = FqCodelConfig {
            drop_batch: 3,
            memory_limit: 10 * (2048 + SKB_OVERHEAD),
            ..FqCodelConfig::new(1514)
        };
        let mut q = FqCodel::with_config(cfg).unwrap();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for _ in 0..10 {
            q.enqueue(pkt(&pool, BULK, 100, ctx.now), &mut ctx);
        }
        assert!(ctx.to_free.is_empty());
        // 11 buffers exceed the memory limit: half the flow would be 6
        // packets, the batch stops at 3.
        assert_eq!(
            q.enqueue(pkt(&pool, BULK, 100, ctx.now), &mut ctx),
            NetXmit::Congested
        );
        assert_eq!(ctx.to_free.len(), 3);
        let x = q.xstats();
        assert_eq!((x.drop_overlimit, x.drop_overmemory), (3, 3));
        assert_eq!(q.stats().qlen, 8);
        assert_eq!(x.memory_usage, 8 * u64::from(2048 + SKB_OVERHEAD));
    }

    /// Drop times of one flow drained at one packet per 3 ms with 400
    /// packets queued at t=0 (sojourn = dequeue time): no drop until the
    /// sojourn has been above 5 ms for 100 ms, then drops spaced by
    /// interval / sqrt(count) from the previous due time, with Linux's
    /// one-Newton-step reciprocal square root.
    #[test]
    fn codel_drop_schedule() {
        let pool = SkbPool::default();
        let mut q = FqCodel::new(1514);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for _ in 0..400 {
            q.enqueue(pkt(&pool, BULK, 1000, ctx.now), &mut ctx);
        }
        let mut drop_times = Vec::new();
        for k in 1..=300u64 {
            ctx.now = Instant::from_millis(3 * k);
            assert!(q.dequeue(&mut ctx).is_some());
            for (_, reason) in ctx.to_free.drain(..) {
                assert_eq!(reason, DropReason::QdiscCongested);
                drop_times.push(3 * k);
            }
        }
        // First above at 6 ms (sojourn 6 >= 5): allowed after 106 ms, so the
        // first drop is at 108. Next due 108 + 99.998 ms -> 210. Then
        // count 2, 1/sqrt ~ 0x8001/65536: due 257.999999 -> 258. Then
        // count 3 (0x9001): +56.25 ms -> 314.25 -> 315.
        assert_eq!(&drop_times[..4], &[108, 210, 258, 315]);
        // The drop rate keeps rising while the sojourn stays above target:
        // late gaps are far shorter than the first one.
        let gaps: Vec<u64> = drop_times.windows(2).map(|w| w[1] - w[0]).collect();
        let late = &gaps[gaps.len() - 5..];
        assert!(late.iter().all(|&g| g <= 30), "gaps {gaps:?}");
        let s = q.stats();
        assert_eq!(s.drops, drop_times.len() as u64);
        assert_eq!(s.qlen, 400 - 300 - s.drops);
        assert_eq!(s.packets, 300);
    }

    #[test]
    fn newton_steps_track_inverse_sqrt() {
        let mut v = CodelVars {
            count: 1,
            rec_inv_sqrt: u16::MAX,
            ..CodelVars::default()
        };
        let interval = Duration::from_millis(100);
        for count in 2..=2000u32 {
            v.count = count;
            v.newton_step();
            if count >= 8 {
                let want = 100_000_000.0 / f64::from(count).sqrt();
                let got = v.control_law(Instant::ZERO, interval).as_nanos() as f64;
                assert!(
                    (got - want).abs() / want < 0.01,
                    "count {count}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn no_codel_drop_within_interval_or_below_mtu() {
        let pool = SkbPool::default();
        let mut q = FqCodel::new(1514);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        for _ in 0..5 {
            q.enqueue(pkt(&pool, BULK, 1000, ctx.now), &mut ctx);
        }
        // Backlog at or below one MTU never drops, however old.
        ctx.now = Instant::from_secs(5);
        let mut got = 0;
        while q.dequeue(&mut ctx).is_some() {
            got += 1;
        }
        // 5 packets 5 s old: the first sets first_above_time, the second is
        // not yet over it; nothing is dropped.
        assert_eq!((got, q.stats().drops), (5, 0));
        let x = q.xstats();
        assert_eq!((x.new_flows_len, x.old_flows_len), (0, 0));
    }

    #[test]
    fn computed_hash_is_per_5_tuple_and_symmetric() {
        let pool = SkbPool::default();
        let ip = |src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, frag: u16| {
            let mut b = vec![0x45, 0, 0, 28, 0, 1];
            b.extend_from_slice(&frag.to_be_bytes());
            b.extend_from_slice(&[64, 17, 0, 0]);
            b.extend_from_slice(&src);
            b.extend_from_slice(&dst);
            b.extend_from_slice(&sport.to_be_bytes());
            b.extend_from_slice(&dport.to_be_bytes());
            b.extend_from_slice(&[0, 8, 0, 0]);
            let mut skb = pool.alloc_from(64, &b).unwrap();
            skb.reset_network_header();
            skb.meta.protocol = ETH_P_IP;
            skb
        };
        let a = [10, 0, 0, 1];
        let b = [10, 0, 0, 2];
        let h1 = flow_hash(&ip(a, b, 1000, 53, 0));
        assert_ne!(h1, 0);
        assert_eq!(flow_hash(&ip(a, b, 1000, 53, 0)), h1);
        assert_eq!(flow_hash(&ip(b, a, 53, 1000, 0)), h1, "symmetric");
        assert_ne!(flow_hash(&ip(a, b, 1001, 53, 0)), h1);
        assert_ne!(flow_hash(&ip(a, [10, 0, 0, 3], 1000, 53, 0)), h1);
        // Fragments hash without ports, so all fragments stay together.
        let f1 = flow_hash(&ip(a, b, 1000, 53, 0x2000));
        assert_eq!(f1, flow_hash(&ip(a, b, 7, 9, 0x0010)));
        assert_ne!(f1, h1);

        // Non-IPv4: by ethertype only.
        let mut arp = pool.alloc_from(64, &[1; 28]).unwrap();
        arp.meta.protocol = 0x0806;
        let mut arp2 = pool.alloc_from(64, &[2; 28]).unwrap();
        arp2.meta.protocol = 0x0806;
        assert_eq!(flow_hash(&arp), flow_hash(&arp2));

        // Enqueue stores the computed hash, and flows spread over the table.
        let mut q = FqCodel::new(1514);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        let mut seen = std::collections::HashSet::new();
        for port in 0..64u16 {
            let skb = ip(a, b, 2000 + port, 80, 0);
            seen.insert(q.flow_of(&skb));
            q.enqueue(skb, &mut ctx);
        }
        assert!(seen.len() > 55, "{} distinct flows of 64", seen.len());
        let skb = q.dequeue(&mut ctx).unwrap();
        assert_eq!(skb.meta.hash, flow_hash(&skb));
        assert_eq!(q.xstats().new_flow_count, seen.len() as u64);
    }

    #[test]
    fn drr_shares_bytes_between_backlogged_flows() {
        let pool = SkbPool::default();
        let mut q = FqCodel::new(1514);
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        // Flow A sends 1500-byte packets, flow B 300-byte ones.
        for _ in 0..100 {
            q.enqueue(pkt(&pool, BULK, 1500, ctx.now), &mut ctx);
        }
        for _ in 0..500 {
            q.enqueue(pkt(&pool, SPARSE, 300, ctx.now), &mut ctx);
        }
        let (mut a, mut b) = (0u64, 0u64);
        for _ in 0..300 {
            let skb = q.dequeue(&mut ctx).unwrap();
            if skb.meta.hash == BULK {
                a += skb.len() as u64;
            } else {
                b += skb.len() as u64;
            }
        }
        // Byte fairness within one quantum.
        assert!(a.abs_diff(b) <= 1514 + 1500, "a {a} b {b}");
        assert!(ctx.to_free.is_empty());
    }

    #[test]
    fn params_errors_reset() {
        let mut q = FqCodel::default();
        assert_eq!(q.kind(), "fq_codel");
        assert_eq!(
            q.params(),
            "limit 10240p flows 1024 quantum 1514 target 5ms interval 100ms memory_limit 32Mb drop_batch 64"
        );
        let bad = FqCodelConfig {
            flows: 0,
            ..FqCodelConfig::new(1514)
        };
        assert_eq!(
            FqCodel::with_config(bad).unwrap_err(),
            FqCodelError::BadFlows(0)
        );
        let bad = FqCodelConfig {
            quantum: (1 << 20) + 1,
            ..FqCodelConfig::new(1514)
        };
        assert!(matches!(
            FqCodel::with_config(bad),
            Err(FqCodelError::QuantumTooLarge(_))
        ));
        let small = FqCodel::with_config(FqCodelConfig {
            quantum: 10,
            drop_batch: 0,
            ..FqCodelConfig::new(1514)
        })
        .unwrap();
        assert_eq!(
            (small.config().quantum, small.config().drop_batch),
            (256, 1)
        );

        let pool = SkbPool::default();
        let mut ctx = QdiscCtx::new(Instant::ZERO);
        q.enqueue(pkt(&pool, BULK, 100, ctx.now), &mut ctx);
        q.enqueue(pkt(&pool, SPARSE, 200, ctx.now), &mut ctx);
        q.note_requeue();
        q.reset(&mut ctx);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog_bytes, s.drops, s.requeues), (0, 0, 0, 1));
        assert_eq!(ctx.to_free.len(), 2);
        let x = q.xstats();
        assert_eq!(
            (x.memory_usage, x.new_flows_len, x.old_flows_len),
            (0, 0, 0)
        );
        assert!(q.dequeue(&mut ctx).is_none());
        // Usable again after a reset.
        q.enqueue(pkt(&pool, BULK, 100, ctx.now), &mut ctx);
        assert_eq!(q.dequeue(&mut ctx).map(|s| s.len()), Some(100));
    }
}
