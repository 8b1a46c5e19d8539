//! The out-of-order queue: Linux's `tcp_data_queue_ofo()`, `tcp_ofo_queue()`,
//! `tcp_sack_new_ofo_skb()` and `tcp_prune_ofo_queue()`
//! (`net/ipv4/tcp_input.c`).
//!
//! Seed stage: ingress step 11, `tcp_v4_rcv()` → `tcp_rcv_established()` →
//! `tcp_data_queue()`, "put the packet on that socket's receive queue": a
//! segment that starts after `rcv_nxt` waits here until the hole before it
//! fills; the caller then moves it to the receive queue with
//! [`OfoQueue::pop_in_order`].
//!
//! Layout: a [`VecDeque`] of segments sorted by sequence number (Linux uses
//! an rb-tree). Searches are binary ([`TcpSeqNumber`] `before()`/`after()`
//! comparisons, so wrap-around across 2^32 works); an insertion shifts
//! entries, which is cheap for the few hundred segments of a window, and
//! allocates nothing beyond the deque's amortized growth. The ordering is
//! consistent as long as the queue spans less than 2^31 bytes; the queue
//! refuses segments that would make it span more than [`MAX_SPAN`] (2^30,
//! Linux's largest window), see [`OfoInsert::OutOfWindow`].
//!
//! Rules (as Linux, with one difference noted):
//! - skbs hold payload only (`data()` is the payload) and the FIN is not
//!   tracked: the caller remembers an out-of-order FIN itself.
//! - A segment whose bytes are all queued already is a duplicate: dropped,
//!   reported for a DSACK (RFC 2883).
//! - A segment that starts where a queued one starts and ends after it
//!   replaces it, and a segment that covers queued ones whole replaces
//!   them (the old skbs are dropped, `TCP_OFOMERGE`), as Linux does.
//! - Partial overlaps: Linux keeps the overlap and lets `tcp_ofo_queue()`
//!   trim it; here the new segment is trimmed at once (`pull` for its head,
//!   `trim` for its tail), so the queue always holds disjoint ranges.
//! - Adjacent segments stay separate skbs (no copy, no `tcp_try_coalesce`);
//!   [`OfoQueue::sack_blocks`] merges them into ranges.
//! - The duplicated part is reported as one DSACK range: the first
//!   duplicate run, extended by later runs only where they touch it
//!   (`tcp_dsack_set()` then `tcp_dsack_extend()`).

use std::collections::VecDeque;

use crate::skb::Skb;
use netpath_wire::tcp::TcpSeqNumber;

/// `TCP_NUM_SACKS`: the most SACK blocks a TCP header carries.
pub const TCP_NUM_SACKS: usize = 4;

/// The largest span, first queued byte to last, the queue accepts (2^30,
/// the largest window with window scale 14).
pub const MAX_SPAN: u32 = 1 << 30;

/// What [`OfoQueue::insert`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfoInsert {
    /// Queued; none of its bytes were queued before.
    Queued,
    /// All its bytes were queued already: dropped. DSACK `[start, end)`.
    Duplicate {
        start: TcpSeqNumber,
        end: TcpSeqNumber,
    },
    /// Queued, but `[start, end)` of it was queued already (the queue was
    /// trimmed or older skbs replaced to keep it disjoint). DSACK that.
    Partial {
        start: TcpSeqNumber,
        end: TcpSeqNumber,
    },
    /// No payload: nothing done.
    Empty,
    /// It would make the queue span more than [`MAX_SPAN`] bytes (the
    /// caller's window check should have dropped it): dropped.
    OutOfWindow,
}

/// One queued segment: `[seq, end)` is `skb.data()`.
#[derive(Debug)]
struct OfoSeg {
    seq: TcpSeqNumber,
    end: TcpSeqNumber,
    /// Insertion order, for SACK block recency.
    stamp: u64,
    skb: Skb,
}

/// The DSACK range being built (`tcp_dsack_set()`/`tcp_dsack_extend()`).
#[derive(Debug, Clone, Copy, Default)]
struct Dsack(Option<(TcpSeqNumber, TcpSeqNumber)>);

impl Dsack {
    fn extend(&mut self, start: TcpSeqNumber, end: TcpSeqNumber) {
        match self.0 {
            None => self.0 = Some((start, end)),
            // `tcp_sack_extend()`: only a range touching the first one.
            Some((s, e)) if !start.after(e) && !s.after(end) => {
                self.0 = Some((s.min(start), e.max(end)));
            }
            Some(_) => {}
        }
    }
}

/// `tp->out_of_order_queue`: segments past `rcv_nxt`, disjoint and sorted.
#[derive(Debug, Default)]
pub struct OfoQueue {
    segs: VecDeque<OfoSeg>,
    bytes: usize,
    next_stamp: u64,
}

/// `seq + len` for a length known to fit (`len <= MAX_SPAN`).
fn seq_add(seq: TcpSeqNumber, len: usize) -> TcpSeqNumber {
    seq + u32::try_from(len).unwrap_or(u32::MAX)
}

/// `a - b` for `a` at or after `b` (0 otherwise).
fn seq_len(a: TcpSeqNumber, b: TcpSeqNumber) -> usize {
    usize::try_from(a.distance(b).max(0)).unwrap_or(0)
}

impl OfoQueue {
    pub fn new() -> OfoQueue {
        OfoQueue::default()
    }

    /// Segments (skbs) queued.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The first queued sequence number.
    pub fn first_seq(&self) -> Option<TcpSeqNumber> {
        self.segs.front().map(|s| s.seq)
    }

    /// One past the last queued byte (Linux's `ooo_last_skb` end_seq).
    pub fn last_end_seq(&self) -> Option<TcpSeqNumber> {
        self.segs.back().map(|s| s.end)
    }

    /// Whether `[seq, end)` keeps the queue within [`MAX_SPAN`].
    fn fits(&self, seq: TcpSeqNumber, end: TcpSeqNumber) -> bool {
        let (Some(lo), Some(hi)) = (self.first_seq(), self.last_end_seq()) else {
            return true;
        };
        let half = MAX_SPAN as i32;
        let near = |x: TcpSeqNumber| x.distance(lo) > -half && x.distance(lo) < half;
        if !near(seq) || !near(end) {
            return false;
        }
        // All four points are within ±2^30 of `lo`: comparisons are sound.
        let span = hi.max(end).distance(lo.min(seq));
        (0..=half).contains(&span)
    }

    /// `tcp_data_queue_ofo()`: queues `skb` (payload only) holding
    /// `[seq, seq + skb.len())`. See the module docs for the rules.
    pub fn insert(&mut self, seq: TcpSeqNumber, mut skb: Skb) -> OfoInsert {
        let len = skb.len();
        if len == 0 {
            return OfoInsert::Empty;
        }
        if len > MAX_SPAN as usize {
            return OfoInsert::OutOfWindow;
        }
        let orig_seq = seq;
        let mut seq = seq;
        let mut end = seq_add(seq, len);
        if !self.fits(seq, end) {
            return OfoInsert::OutOfWindow;
        }
        let mut dsack = Dsack::default();

        // Phase 1, read only: decide what to cut and what to replace.
        // `idx`: the first segment starting after `seq`; `idx - 1` is the
        // one that starts at or before it.
        let mut idx = self.segs.partition_point(|s| s.seq.before_eq(seq));
        let mut replace_pred = false;
        let mut head_cut = 0usize;
        if let Some(p) = idx.checked_sub(1).and_then(|i| self.segs.get(i)) {
            if !p.end.before(end) {
                return OfoInsert::Duplicate { start: seq, end };
            }
            if p.end.after(seq) {
                if p.seq == seq {
                    // Covers `p` and more: replaces it.
                    dsack.extend(p.seq, p.end);
                    replace_pred = true;
                } else {
                    dsack.extend(seq, p.end);
                    head_cut = seq_len(p.end, seq);
                    seq = p.end;
                }
            }
        }
        let mut covered = 0usize;
        let mut tail_keep = None;
        for s in self.segs.iter().skip(idx) {
            if !end.after(s.seq) {
                break;
            }
            if end.before(s.end) {
                dsack.extend(s.seq, end);
                tail_keep = Some(seq_len(s.seq, seq));
                end = s.seq;
                break;
            }
            dsack.extend(s.seq, s.end);
            covered += 1;
        }
        if !end.after(seq) {
            // The head and the tail overlaps left nothing new.
            let (start, stop) = dsack.0.unwrap_or((orig_seq, end));
            return OfoInsert::Duplicate { start, end: stop };
        }

        // Phase 2: cut the new skb (nothing changed yet if this fails).
        if skb.pull(head_cut).is_err() {
            return OfoInsert::OutOfWindow;
        }
        if let Some(keep) = tail_keep {
            if skb.trim(keep).is_err() {
                return OfoInsert::OutOfWindow;
            }
        }

        // Phase 3: drop what it replaces (`TCP_OFOMERGE`) and queue it.
        if replace_pred {
            idx = idx.saturating_sub(1);
            covered += 1;
        }
        for _ in 0..covered {
            if let Some(old) = self.segs.remove(idx) {
                self.bytes = self.bytes.saturating_sub(old.skb.len());
            }
        }
        self.bytes += skb.len();
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.segs.insert(
            idx,
            OfoSeg {
                seq,
                end,
                stamp,
                skb,
            },
        );
        match dsack.0 {
            Some((start, end)) => OfoInsert::Partial { start, end },
            None => OfoInsert::Queued,
        }
    }

    /// `tcp_ofo_queue()`, one step: the first segment if it starts at or
    /// before `rcv_nxt`, with the bytes before `rcv_nxt` pulled off, and its
    /// (new) start, which is `rcv_nxt`. Segments wholly before `rcv_nxt`
    /// are dropped on the way ("ofo packet was already received"). Call
    /// until `None`, advancing `rcv_nxt` by each returned length.
    pub fn pop_in_order(&mut self, rcv_nxt: TcpSeqNumber) -> Option<(TcpSeqNumber, Skb)> {
        loop {
            if self.segs.front()?.seq.after(rcv_nxt) {
                return None;
            }
            let mut seg = self.segs.pop_front()?;
            self.bytes = self.bytes.saturating_sub(seg.skb.len());
            if !seg.end.after(rcv_nxt) {
                continue;
            }
            let cut = seq_len(rcv_nxt, seg.seq);
            if seg.skb.pull(cut).is_err() {
                continue;
            }
            return Some((seg.seq.max(rcv_nxt), seg.skb));
        }
    }

    /// The SACK blocks to send, at most `max.min(TCP_NUM_SACKS)`: adjacent
    /// segments merged into ranges, then ordered as `tcp_sack_new_ofo_skb()`
    /// leaves `selective_acks[]`: the range holding the most recently
    /// queued segment first (RFC 2018: the block of the segment that
    /// triggered the ACK), then the others by their newest segment, most
    /// recent first. Pure duplicates change no order.
    pub fn sack_blocks(&self, max: usize) -> impl Iterator<Item = (TcpSeqNumber, TcpSeqNumber)> {
        let max = max.min(TCP_NUM_SACKS);
        let zero = TcpSeqNumber(0);
        // Best `max` ranges by recency, newest first: (stamp, start, end).
        let mut top = [(0u64, zero, zero); TCP_NUM_SACKS];
        let mut n = 0usize;
        let mut offer = |cand: (u64, TcpSeqNumber, TcpSeqNumber)| {
            if max == 0 {
                return;
            }
            let mut pos = n;
            while pos > 0 && top.get(pos - 1).is_some_and(|t| t.0 < cand.0) {
                pos -= 1;
            }
            if pos >= max {
                return;
            }
            let last = n.min(max - 1);
            let mut i = last;
            while i > pos {
                if let Some(prev) = top.get(i - 1).copied() {
                    if let Some(slot) = top.get_mut(i) {
                        *slot = prev;
                    }
                }
                i -= 1;
            }
            if let Some(slot) = top.get_mut(pos) {
                *slot = cand;
            }
            n = (n + 1).min(max);
        };
        let mut cur: Option<(u64, TcpSeqNumber, TcpSeqNumber)> = None;
        for s in &self.segs {
            cur = match cur {
                Some((st, a, b)) if b == s.seq => Some((st.max(s.stamp), a, s.end)),
                Some(done) => {
                    offer(done);
                    Some((s.stamp, s.seq, s.end))
                }
                None => Some((s.stamp, s.seq, s.end)),
            };
        }
        if let Some(done) = cur {
            offer(done);
        }
        top.into_iter().take(n).map(|(_, a, b)| (a, b))
    }

    /// Drops everything (memory pressure; the caller counts the drops as
    /// `TCP_OFO_QUEUE_PRUNE`). Linux's `tcp_prune_ofo_queue()` drops from
    /// the highest sequence down until enough is freed; this drops all.
    /// Returns the number of skbs dropped.
    pub fn prune(&mut self) -> usize {
        let n = self.segs.len();
        self.segs.clear();
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;
    use proptest::prelude::*;

    fn sq(v: u32) -> TcpSeqNumber {
        TcpSeqNumber(v)
    }

    /// Payload bytes of stream offset `i` (stream starts at `base`).
    fn byte_at(seq: TcpSeqNumber) -> u8 {
        (seq.0.wrapping_mul(31) >> 3) as u8
    }

    fn seg(pool: &SkbPool, seq: u32, len: u32) -> Skb {
        let bytes: Vec<u8> = (0..len).map(|i| byte_at(sq(seq) + i)).collect();
        match pool.alloc_from(64, &bytes) {
            Ok(s) => s,
            Err(e) => panic!("alloc: {e}"),
        }
    }

    fn check_invariants(q: &OfoQueue) {
        let mut total = 0;
        let mut prev_end: Option<TcpSeqNumber> = None;
        for s in &q.segs {
            assert_eq!(seq_len(s.end, s.seq), s.skb.len());
            assert!(!s.skb.is_empty());
            if let Some(pe) = prev_end {
                assert!(!pe.after(s.seq), "overlap {pe:?} > {:?}", s.seq);
            }
            for (i, b) in s.skb.data().iter().enumerate() {
                assert_eq!(*b, byte_at(s.seq + i as u32));
            }
            prev_end = Some(s.end);
            total += s.skb.len();
        }
        assert_eq!(total, q.bytes());
    }

    fn drain(q: &mut OfoQueue, rcv_nxt: &mut TcpSeqNumber, out: &mut Vec<u8>) {
        while let Some((s, skb)) = q.pop_in_order(*rcv_nxt) {
            assert_eq!(s, *rcv_nxt);
            out.extend_from_slice(skb.data());
            *rcv_nxt += skb.len() as u32;
        }
    }

    fn blocks(q: &OfoQueue, max: usize) -> Vec<(u32, u32)> {
        q.sack_blocks(max).map(|(a, b)| (a.0, b.0)).collect()
    }

    #[test]
    fn in_order_pop_after_holes_fill() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        assert_eq!(q.insert(sq(1300), seg(&pool, 1300, 100)), OfoInsert::Queued);
        assert_eq!(q.insert(sq(1100), seg(&pool, 1100, 100)), OfoInsert::Queued);
        assert_eq!((q.len(), q.bytes()), (2, 200));
        let mut rcv_nxt = sq(1000);
        let mut out = Vec::new();
        assert!(q.pop_in_order(rcv_nxt).is_none());
        // The caller receives [1000, 1100) in order, then the queue drains
        // up to the next hole.
        rcv_nxt = sq(1100);
        drain(&mut q, &mut rcv_nxt, &mut out);
        assert_eq!(rcv_nxt, sq(1200));
        assert_eq!(out.len(), 100);
        assert_eq!(q.insert(sq(1200), seg(&pool, 1200, 100)), OfoInsert::Queued);
        drain(&mut q, &mut rcv_nxt, &mut out);
        assert_eq!(rcv_nxt, sq(1400));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        let want: Vec<u8> = (1100..1400).map(|i| byte_at(sq(i))).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn pop_trims_what_is_already_received() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        q.insert(sq(100), seg(&pool, 100, 50));
        q.insert(sq(200), seg(&pool, 200, 50));
        // rcv_nxt 130: the first is trimmed to [130, 150).
        let (s, skb) = q.pop_in_order(sq(130)).unwrap_or_else(|| panic!("pop"));
        assert_eq!((s, skb.len()), (sq(130), 20));
        assert_eq!(skb.data()[0], byte_at(sq(130)));
        // rcv_nxt 260: [200, 250) is stale and dropped.
        assert!(q.pop_in_order(sq(260)).is_none());
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn duplicates_are_reported() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        q.insert(sq(100), seg(&pool, 100, 100));
        let d = |a, b| OfoInsert::Duplicate {
            start: sq(a),
            end: sq(b),
        };
        assert_eq!(q.insert(sq(100), seg(&pool, 100, 100)), d(100, 200));
        assert_eq!(q.insert(sq(120), seg(&pool, 120, 30)), d(120, 150));
        assert_eq!(q.insert(sq(150), seg(&pool, 150, 50)), d(150, 200));
        // Covered by two adjacent segments together.
        q.insert(sq(200), seg(&pool, 200, 100));
        assert_eq!(q.insert(sq(180), seg(&pool, 180, 40)), d(180, 220));
        assert_eq!((q.len(), q.bytes()), (2, 200));
        assert_eq!(q.insert(sq(500), seg(&pool, 500, 0)), OfoInsert::Empty);
        check_invariants(&q);
    }

    #[test]
    fn partial_overlaps_both_sides() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        q.insert(sq(100), seg(&pool, 100, 100)); // [100, 200)
        q.insert(sq(300), seg(&pool, 300, 100)); // [300, 400)
        let p = |a, b| OfoInsert::Partial {
            start: sq(a),
            end: sq(b),
        };
        // Head overlap: [150, 250) keeps [200, 250).
        assert_eq!(q.insert(sq(150), seg(&pool, 150, 100)), p(150, 200));
        // Tail overlap: [270, 350) keeps [270, 300).
        assert_eq!(q.insert(sq(270), seg(&pool, 270, 80)), p(300, 350));
        check_invariants(&q);
        assert_eq!(blocks(&q, 4), [(270, 400), (100, 250)]);
        // Both sides: [240, 280) keeps [250, 270); the DSACK is the first
        // run only (the runs do not touch).
        assert_eq!(q.insert(sq(240), seg(&pool, 240, 40)), p(240, 250));
        check_invariants(&q);
        assert_eq!(blocks(&q, 4), [(100, 400)]);
        assert_eq!(q.bytes(), 300);
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn covering_segment_replaces_old_ones() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        q.insert(sq(100), seg(&pool, 100, 10));
        q.insert(sq(120), seg(&pool, 120, 10));
        q.insert(sq(140), seg(&pool, 140, 10));
        // Same start, longer: replaces [100, 110), covers [120, 130),
        // trims at 140. The DSACK is the first run, [100, 110).
        assert_eq!(
            q.insert(sq(100), seg(&pool, 100, 45)),
            OfoInsert::Partial {
                start: sq(100),
                end: sq(110)
            }
        );
        check_invariants(&q);
        assert_eq!(q.len(), 2);
        assert_eq!(q.bytes(), 50);
        // Starts before everything and covers all: one skb left.
        assert_eq!(
            q.insert(sq(90), seg(&pool, 90, 100)),
            OfoInsert::Partial {
                start: sq(100),
                end: sq(150)
            }
        );
        check_invariants(&q);
        assert_eq!((q.len(), q.bytes()), (1, 100));
    }

    #[test]
    fn wraps_around_2_32() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        let base = u32::MAX - 149; // stream starts 150 bytes before the wrap
        assert_eq!(
            q.insert(
                sq(base.wrapping_add(200)),
                seg(&pool, base.wrapping_add(200), 100)
            ),
            OfoInsert::Queued
        );
        assert_eq!(
            q.insert(
                sq(base.wrapping_add(100)),
                seg(&pool, base.wrapping_add(100), 100)
            ),
            OfoInsert::Queued
        );
        // [base+50, base+150) overlaps the one across the wrap at its head.
        assert_eq!(
            q.insert(
                sq(base.wrapping_add(50)),
                seg(&pool, base.wrapping_add(50), 100)
            ),
            OfoInsert::Partial {
                start: sq(base.wrapping_add(100)),
                end: sq(base.wrapping_add(150))
            }
        );
        check_invariants(&q);
        assert_eq!(
            blocks(&q, 4),
            [(base.wrapping_add(50), base.wrapping_add(300))]
        );
        let mut rcv_nxt = sq(base);
        let mut out = Vec::new();
        drain(&mut q, &mut rcv_nxt, &mut out);
        assert!(out.is_empty());
        rcv_nxt = sq(base.wrapping_add(50));
        drain(&mut q, &mut rcv_nxt, &mut out);
        assert_eq!(rcv_nxt, sq(base.wrapping_add(300)));
        let want: Vec<u8> = (50..300u32)
            .map(|i| byte_at(sq(base.wrapping_add(i))))
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn far_segments_are_refused() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        q.insert(sq(0), seg(&pool, 0, 10));
        assert_eq!(
            q.insert(sq(1 << 31), seg(&pool, 1 << 31, 10)),
            OfoInsert::OutOfWindow
        );
        assert_eq!(
            q.insert(sq(MAX_SPAN), seg(&pool, MAX_SPAN, 10)),
            OfoInsert::OutOfWindow
        );
        assert_eq!(
            q.insert(sq(MAX_SPAN - 20), seg(&pool, MAX_SPAN - 20, 10)),
            OfoInsert::Queued
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn sack_block_order_and_merging() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        for s in [1000u32, 3000, 5000, 7000, 9000] {
            q.insert(sq(s), seg(&pool, s, 100));
        }
        // Newest first; at most TCP_NUM_SACKS, or the caller's max.
        assert_eq!(
            blocks(&q, 10),
            [(9000, 9100), (7000, 7100), (5000, 5100), (3000, 3100)]
        );
        assert_eq!(blocks(&q, 3), [(9000, 9100), (7000, 7100), (5000, 5100)]);
        assert_eq!(blocks(&q, 0), []);
        // Extending an old block moves it to the front, merged with its
        // adjacent neighbour skb.
        q.insert(sq(1100), seg(&pool, 1100, 100));
        assert_eq!(
            blocks(&q, 4),
            [(1000, 1200), (9000, 9100), (7000, 7100), (5000, 5100)]
        );
        // Filling the hole between two blocks joins them, at the front.
        q.insert(sq(5100), seg(&pool, 5100, 1900));
        assert_eq!(
            blocks(&q, 4),
            [(5000, 7100), (1000, 1200), (9000, 9100), (3000, 3100)]
        );
        // A pure duplicate changes no order.
        q.insert(sq(9000), seg(&pool, 9000, 50));
        assert_eq!(blocks(&q, 1), [(5000, 7100)]);
        check_invariants(&q);
    }

    #[test]
    fn prune_drops_everything() {
        let pool = SkbPool::default();
        let mut q = OfoQueue::new();
        for s in [100u32, 300, 500] {
            q.insert(sq(s), seg(&pool, s, 50));
        }
        assert_eq!(q.prune(), 3);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(blocks(&q, 4), []);
        assert!(q.pop_in_order(sq(100)).is_none());
        assert_eq!(q.prune(), 0);
        // Usable again, anywhere in sequence space.
        assert_eq!(
            q.insert(sq(1 << 31), seg(&pool, 1 << 31, 5)),
            OfoInsert::Queued
        );
    }

    /// A deterministic xorshift for the shuffles.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random segmentations of a stream, delivered in random order with
        /// duplicates, reassemble exactly the stream.
        #[test]
        fn random_segments_reassemble_stream(
            stream_len in 1usize..3000,
            base in prop_oneof![any::<u32>(), (0u32..3000).prop_map(|d| u32::MAX - d)],
            cuts in proptest::collection::vec(1usize..300, 1..40),
            dups in proptest::collection::vec((0usize..3000, 1usize..400), 0..30),
            seed in any::<u64>(),
        ) {
            let pool = SkbPool::default();
            let base = sq(base);
            // The segmentation, then duplicates of random sub-ranges.
            let mut segs: Vec<(usize, usize)> = Vec::new();
            let mut off = 0;
            let mut ci = 0;
            while off < stream_len {
                let l = cuts[ci % cuts.len()].min(stream_len - off);
                segs.push((off, l));
                off += l;
                ci += 1;
            }
            for (s, l) in dups {
                let s = s % stream_len;
                segs.push((s, l.min(stream_len - s)));
            }
            let mut st = seed;
            for i in (1..segs.len()).rev() {
                let j = (xorshift(&mut st) % (i as u64 + 1)) as usize;
                segs.swap(i, j);
            }

            let mut q = OfoQueue::new();
            let mut rcv_nxt = base;
            let mut out = Vec::new();
            for (s, l) in segs {
                let seq = base + s as u32;
                let mut skb = seg(&pool, seq.0, l as u32);
                // The caller's part of tcp_data_queue(): old data is
                // dropped or trimmed, in-order data goes straight to the
                // receive queue, the rest to the ofo queue.
                let end = seq + l as u32;
                if !end.after(rcv_nxt) {
                    continue;
                }
                if !seq.after(rcv_nxt) {
                    let cut = seq_len(rcv_nxt, seq);
                    prop_assert!(skb.pull(cut).is_ok());
                    out.extend_from_slice(skb.data());
                    rcv_nxt = end;
                } else {
                    let r = q.insert(seq, skb);
                    prop_assert!(!matches!(r, OfoInsert::OutOfWindow | OfoInsert::Empty));
                }
                check_invariants(&q);
                drain(&mut q, &mut rcv_nxt, &mut out);
                check_invariants(&q);
                // SACK blocks are disjoint, non-adjacent queued ranges.
                let b: Vec<_> = q.sack_blocks(TCP_NUM_SACKS).collect();
                for (i, x) in b.iter().enumerate() {
                    prop_assert!(x.0.after(rcv_nxt) && x.1.after(x.0));
                    for y in b.iter().skip(i + 1) {
                        prop_assert!(y.1.before(x.0) || y.0.after(x.1));
                    }
                }
            }
            prop_assert!(q.is_empty());
            prop_assert_eq!(rcv_nxt, base + stream_len as u32);
            let want: Vec<u8> = (0..stream_len).map(|i| byte_at(base + i as u32)).collect();
            prop_assert_eq!(out, want);
        }

        /// Arbitrary inserts and pops never panic and keep the queue
        /// disjoint and its byte count right.
        #[test]
        fn arbitrary_ops_keep_invariants(
            ops in proptest::collection::vec((any::<u32>(), 0u32..500, any::<bool>()), 1..60),
            base in any::<u32>(),
        ) {
            let pool = SkbPool::default();
            let mut q = OfoQueue::new();
            for (off, len, pop) in ops {
                let seq = base.wrapping_add(off % 5000);
                if pop {
                    let _ = q.pop_in_order(sq(seq));
                } else {
                    let _ = q.insert(sq(seq), seg(&pool, seq, len));
                }
                check_invariants(&q);
                let _ = q.sack_blocks(usize::MAX).count();
            }
            // Far away inserts are refused, not misordered.
            let _ = q.insert(sq(off_far(base)), seg(&pool, off_far(base), 10));
            check_invariants(&q);
        }
    }

    fn off_far(base: u32) -> u32 {
        base.wrapping_add(1 << 31)
    }
}
