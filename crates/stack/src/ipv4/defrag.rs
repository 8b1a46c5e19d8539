//! IPv4 reassembly (`net/ipv4/ip_fragment.c`: `ip_defrag`, `ip_frag_queue`,
//! `ip_frag_reasm`, `ip_expire`; `net/ipv4/inet_fragment.c`:
//! `inet_frag_find`, `inet_frag_queue_insert`, `inet_frag_kill`): the first
//! step of `ip_local_deliver` (seed ingress step 10, "reassemble fragmented
//! packets").
//!
//! Queues are keyed by (saddr, daddr, ident, protocol). Each holds its
//! fragments, unmodified (data at their IPv4 header), sorted by offset, with
//! Linux's `INET_FRAG_FIRST_IN` / `LAST_IN` flags, `len` (the datagram's
//! payload length as far as known) and `meat` (payload bytes held).
//!
//! Behaviour, as Linux ≥ 4.19 (RFC 5722 applied to IPv4 too):
//! - A fragment whose payload lies entirely within data already held is a
//!   duplicate: dropped alone (`DUP_FRAG`), the queue kept.
//! - Any other overlap discards the whole queue and the fragment
//!   (`ReasmFails`). So does a last fragment (MF clear) ending before data
//!   already held or disagreeing with an earlier last fragment, data past a
//!   known end, an empty fragment, or mixed ECN codepoints (RFC 3168 §5.3).
//!   Those drops say `IP_INHDR` (Linux frees the arriving fragment with
//!   `NOT_SPECIFIED` and the queued ones with `FRAG_REASM_TIMEOUT`; a
//!   reason of their own reads better in drop counts).
//! - A non-last fragment whose payload is not a multiple of 8 is trimmed
//!   down to one, as Linux does (`end &= ~7`), not dropped.
//! - A datagram that would exceed 65535 bytes discards its queue
//!   (`PKT_TOO_BIG`, `ReasmFails`): as soon as a fragment ends past
//!   65515 (no header could make it fit), else at completion with the first
//!   fragment's header length (Linux's "Oversized IP packet").
//! - Per-datagram bound: at most [`IPFRAG_MAX_FRAGS`] fragments in one
//!   queue; the fragment that would be one more discards the queue
//!   (`FRAG_TOO_FAR`, `ReasmFails`). This replaces Linux's
//!   `ipfrag_max_dist` reordering check, which needs per-source `inet_peer`
//!   state; 128 fragments cover a 64 KiB datagram down to a 576-byte MTU.
//! - Memory: every fragment held is charged the size of its buffer (its
//!   `truesize`), every queue [`IPQ_TRUESIZE`]. While the total is above
//!   `ipfrag_high_thresh`, every fragment is refused, even for queues that
//!   exist (`inet_frag_find` returning NULL): `ReasmFails`, `NOMEM`. Like
//!   Linux since 4.17 nothing is evicted; memory comes back as queues
//!   complete or time out.
//! - Timeout: `ipfrag_time` after the queue's first fragment, `ip_expire`
//!   counts `ReasmTimeout` and `ReasmFails`, sends ICMP time exceeded
//!   (fragment reassembly time exceeded) about the offset-0 fragment if it
//!   arrived, and frees every fragment with `FRAG_REASM_TIMEOUT`.
//! - Completion (`ip_frag_reasm`): one new skb from the pool with
//!   [`REASM_HEADROOM`] bytes of headroom (the first fragment's MAC header
//!   copied in front of it), the first fragment's IPv4 header with its
//!   options, total length set, MF and offset cleared (DF kept if the
//!   largest fragment had it, as Linux's `max_df_size`), CE merged into TOS,
//!   header checksum recomputed, payloads in offset order; metadata from the
//!   first fragment, with `ip_summed` reset (the transport checksum is still
//!   to be verified). `ReasmOKs`.
//!
//! `ReasmReqds` counts every fragment. Queue fragment lists are recycled, so
//! the steady state allocates only skbs.

use core::net::Ipv4Addr;

use netpath_wire::ipv4::{field, Ipv4Packet, HEADER_LEN, MAX_TOTAL_LEN};

use crate::drop::DropReason;
use crate::skb::{ChecksumState, Skb};
use crate::stack::Stack;
use crate::time::Instant;

/// Most fragments one queue holds (see the module doc).
pub const IPFRAG_MAX_FRAGS: usize = 128;

/// Memory charged per queue, as `sizeof(struct ipq)` is.
pub const IPQ_TRUESIZE: usize = 256;

/// Headroom of a reassembled datagram.
pub const REASM_HEADROOM: usize = 128;

/// Empty fragment lists kept for reuse.
const SPARE_LISTS: usize = 64;

/// ECN seen among the fragments (`IPFRAG_ECN_*`).
const ECN_NOT_ECT: u8 = 1;
const ECN_ECT_1: u8 = 2;
const ECN_ECT_0: u8 = 4;
const ECN_CE: u8 = 8;

fn frag_ecn(tos: u8) -> u8 {
    1 << (tos & 3)
}

/// `ip_frag_ecn_table`: the ECN to OR into the reassembled TOS, or `None`
/// for a mix of ECN-capable and not (RFC 3168 §5.3).
fn ecn_merge(seen: u8) -> Option<u8> {
    let ect = seen & (ECN_ECT_0 | ECN_ECT_1 | ECN_CE);
    if seen & ECN_NOT_ECT != 0 && ect != 0 {
        None
    } else if seen & ECN_CE != 0 {
        Some(3)
    } else {
        Some(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragKey {
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    id: u16,
    protocol: u8,
}

/// One fragment held: its payload is `skb.data()[ihl..ihl + end - offset]`.
#[derive(Debug)]
struct Frag {
    offset: usize,
    end: usize,
    ihl: usize,
    skb: Skb,
}

/// `struct ipq`.
#[derive(Debug)]
struct FragQueue {
    key: FragKey,
    expires: Instant,
    /// Sorted by offset, never overlapping.
    frags: Vec<Frag>,
    first_in: bool,
    last_in: bool,
    /// Payload length of the datagram, as far as known.
    len: usize,
    /// Payload bytes held.
    meat: usize,
    ecn: u8,
    max_size: usize,
    max_df_size: usize,
    truesize: usize,
}

/// Why a fragment is not queued.
enum Reject {
    /// Within data already held: drop it alone.
    Dup,
    /// The queue is invalid: drop it whole.
    Kill(DropReason),
}

impl FragQueue {
    /// The checks and placement of `ip_frag_queue` /
    /// `inet_frag_queue_insert`: the index to insert at and the (possibly
    /// trimmed) end of the payload.
    fn place(&mut self, offset: usize, plen: usize, mf: bool) -> Result<(usize, usize), Reject> {
        let mut end = offset + plen;
        if !mf {
            if end < self.len || (self.last_in && end != self.len) {
                return Err(Reject::Kill(DropReason::IpInhdr));
            }
            self.last_in = true;
            self.len = end;
        } else {
            end &= !7;
            if end > self.len {
                if self.last_in {
                    return Err(Reject::Kill(DropReason::IpInhdr));
                }
                self.len = end;
            }
        }
        if end <= offset {
            return Err(Reject::Kill(DropReason::IpInhdr));
        }
        if end + HEADER_LEN > MAX_TOTAL_LEN {
            return Err(Reject::Kill(DropReason::PktTooBig));
        }
        // The fragments touching [offset, end) form one contiguous range.
        let lo = self.frags.partition_point(|f| f.end <= offset);
        let hi = self.frags.partition_point(|f| f.offset < end);
        if lo < hi {
            let within = &self.frags[lo..hi];
            let covered = within[0].offset <= offset
                && within[within.len() - 1].end >= end
                && within.windows(2).all(|w| w[0].end == w[1].offset);
            return Err(if covered {
                Reject::Dup
            } else {
                Reject::Kill(DropReason::IpInhdr)
            });
        }
        if self.frags.len() >= IPFRAG_MAX_FRAGS {
            return Err(Reject::Kill(DropReason::FragTooFar));
        }
        Ok((lo, end))
    }
}

/// The host's fragment queues.
#[derive(Debug, Default)]
pub struct FragQueues {
    /// In creation order (so also expiry order while `ipfrag_time` holds).
    queues: Vec<FragQueue>,
    /// Bytes charged to all queues (`frag_mem_limit`).
    mem: usize,
    spare: Vec<Vec<Frag>>,
}

impl FragQueues {
    /// Bytes held by the queues, as charged against `ipfrag_high_thresh`.
    pub fn mem(&self) -> usize {
        self.mem
    }

    /// Datagrams being reassembled.
    pub fn queues(&self) -> usize {
        self.queues.len()
    }

    fn find(&self, key: &FragKey) -> Option<usize> {
        self.queues.iter().position(|q| q.key == *key)
    }

    /// Unlinks queue `i`, uncharging its memory.
    fn unlink(&mut self, i: usize) -> FragQueue {
        let q = self.queues.remove(i);
        self.mem = self.mem.saturating_sub(q.truesize);
        q
    }

    fn recycle(&mut self, mut frags: Vec<Frag>) {
        frags.clear();
        if self.spare.len() < SPARE_LISTS && frags.capacity() > 0 {
            self.spare.push(frags);
        }
    }
}

impl Stack {
    /// `ip_defrag()`: takes a fragment (data at its IPv4 header, header
    /// verified, trimmed to its total length); returns the whole datagram
    /// when this fragment completes it.
    pub(crate) fn ip_defrag(&mut self, skb: Skb) -> Option<Skb> {
        let Ok(p) = Ipv4Packet::new_checked(skb.data()) else {
            self.ip.mib.ip.reasm_reqds += 1;
            self.ip.mib.ip.reasm_fails += 1;
            self.kfree_skb(skb, DropReason::IpInhdr);
            return None;
        };
        if !p.is_fragment() {
            return Some(skb);
        }
        self.ip.mib.ip.reasm_reqds += 1;
        self.tracer.skb(self.now, "ip_defrag", &skb);
        let key = FragKey {
            saddr: p.src_addr(),
            daddr: p.dst_addr(),
            id: p.ident(),
            protocol: p.protocol().0,
        };
        let ihl = p.header_len();
        let offset = usize::from(p.frag_offset());
        let plen = usize::from(p.total_len()) - ihl;
        let (mf, df, tos) = (p.more_frags(), p.dont_frag(), p.tos());

        // inet_frag_find(): nothing is taken in above the ceiling.
        let high = self.ip.sysctl.ipfrag_high_thresh;
        if high == 0 || self.ip.frags.mem > high {
            self.ip.mib.ip.reasm_fails += 1;
            self.kfree_skb(skb, DropReason::Nomem);
            return None;
        }
        let qi = match self.ip.frags.find(&key) {
            Some(i) => i,
            None => {
                let frags = self.ip.frags.spare.pop().unwrap_or_default();
                self.ip.frags.queues.push(FragQueue {
                    key,
                    expires: self.now + self.ip.sysctl.ipfrag_time,
                    frags,
                    first_in: false,
                    last_in: false,
                    len: 0,
                    meat: 0,
                    ecn: 0,
                    max_size: 0,
                    max_df_size: 0,
                    truesize: IPQ_TRUESIZE,
                });
                self.ip.frags.mem += IPQ_TRUESIZE;
                self.ip.frags.queues.len() - 1
            }
        };

        let q = &mut self.ip.frags.queues[qi];
        let (pos, end) = match q.place(offset, plen, mf) {
            Ok(v) => v,
            Err(Reject::Dup) => {
                self.kfree_skb(skb, DropReason::DupFrag);
                return None;
            }
            Err(Reject::Kill(reason)) => {
                self.ipq_kill(qi, reason);
                self.ip.mib.ip.reasm_fails += 1;
                self.kfree_skb(skb, reason);
                return None;
            }
        };
        let truesize = skb.end();
        q.frags.insert(
            pos,
            Frag {
                offset,
                end,
                ihl,
                skb,
            },
        );
        q.truesize += truesize;
        q.meat += end - offset;
        q.ecn |= frag_ecn(tos);
        if offset == 0 {
            q.first_in = true;
        }
        let fragsize = ihl + end - offset;
        q.max_size = q.max_size.max(fragsize);
        if df {
            q.max_df_size = q.max_df_size.max(fragsize);
        }
        let complete = q.first_in && q.last_in && q.meat == q.len;
        self.ip.frags.mem += truesize;
        if complete {
            self.ip_frag_reasm(qi)
        } else {
            None
        }
    }

    /// `inet_frag_kill()` + purge: unlinks queue `qi` and frees every
    /// fragment in it with `reason`.
    fn ipq_kill(&mut self, qi: usize, reason: DropReason) {
        let mut q = self.ip.frags.unlink(qi);
        for f in q.frags.drain(..) {
            self.kfree_skb(f.skb, reason);
        }
        self.ip.frags.recycle(q.frags);
    }

    /// `ip_frag_reasm()`: builds the datagram of the complete queue `qi`.
    fn ip_frag_reasm(&mut self, qi: usize) -> Option<Skb> {
        let q = self.ip.frags.unlink(qi);
        match self.reasm_build(&q) {
            Ok(skb) => {
                self.ip.frags.recycle(q.frags);
                self.ip.mib.ip.reasm_oks += 1;
                self.tracer.skb(self.now, "ip_frag_reasm", &skb);
                Some(skb)
            }
            Err(reason) => {
                let mut frags = q.frags;
                for f in frags.drain(..) {
                    self.kfree_skb(f.skb, reason);
                }
                self.ip.frags.recycle(frags);
                self.ip.mib.ip.reasm_fails += 1;
                None
            }
        }
    }

    fn reasm_build(&self, q: &FragQueue) -> Result<Skb, DropReason> {
        let head = q
            .frags
            .first()
            .filter(|f| f.offset == 0)
            .ok_or(DropReason::NotSpecified)?;
        let ihl = head.ihl;
        let total = ihl + q.len;
        if total > MAX_TOTAL_LEN {
            return Err(DropReason::PktTooBig);
        }
        let ecn = ecn_merge(q.ecn).ok_or(DropReason::IpInhdr)?;
        let mac = head
            .skb
            .mac_len()
            .filter(|&l| l <= REASM_HEADROOM)
            .and_then(|l| head.skb.mac_header_bytes().get(..l));
        let mut skb = self
            .pool
            .alloc(REASM_HEADROOM + total)
            .map_err(|_| DropReason::Nomem)?;
        skb.reserve(REASM_HEADROOM).map_err(|_| DropReason::Nomem)?;
        let bytes = skb.put(total).map_err(|_| DropReason::Nomem)?;
        let hdr = head.skb.data().get(..ihl).ok_or(DropReason::IpInhdr)?;
        bytes[..ihl].copy_from_slice(hdr);
        for f in &q.frags {
            let n = f.end - f.offset;
            let src = f
                .skb
                .data()
                .get(f.ihl..f.ihl + n)
                .ok_or(DropReason::PktTooSmall)?;
            let dst = bytes
                .get_mut(ihl + f.offset..ihl + f.end)
                .ok_or(DropReason::IpInhdr)?;
            dst.copy_from_slice(src);
        }
        let df = q.max_df_size == q.max_size;
        bytes[field::FLG_OFF].copy_from_slice(&[if df { 0x40 } else { 0 }, 0]);
        let mut p = Ipv4Packet::new_unchecked(&mut bytes[..ihl]);
        p.set_total_len(total as u16);
        let tos = p.tos() | ecn;
        p.set_tos(tos);
        p.fill_checksum();
        skb.reset_network_header();
        let _ = skb.set_transport_header(ihl);
        if let Some(mac) = mac {
            if skb.push_slice(mac).is_ok() {
                skb.reset_mac_header();
                let _ = skb.pull(mac.len());
            }
        }
        skb.meta = head.skb.meta.clone();
        skb.meta.drop_reason = None;
        skb.meta.ip_summed = ChecksumState::None;
        Ok(skb)
    }

    /// Expires fragment queues whose time is up (`ip_expire`).
    pub(crate) fn ip_frag_timer(&mut self) -> bool {
        let mut any = false;
        let mut i = 0;
        while i < self.ip.frags.queues.len() {
            if self.ip.frags.queues[i].expires > self.now {
                i += 1;
                continue;
            }
            any = true;
            let mut q = self.ip.frags.unlink(i);
            self.ip.mib.ip.reasm_fails += 1;
            self.ip.mib.ip.reasm_timeout += 1;
            if let Some(first) = q.frags.first() {
                let head = q.first_in && first.offset == 0;
                // Detail 1: the offset-0 fragment is there, ICMP goes out.
                self.tracer
                    .skb_detail(self.now, "ip_expire", &first.skb, u64::from(head));
                if head {
                    // ICMP time exceeded, fragment reassembly time exceeded.
                    self.icmp_send(&first.skb, 11, 1, 0);
                }
            }
            for f in q.frags.drain(..) {
                self.kfree_skb(f.skb, DropReason::FragReasmTimeout);
            }
            self.ip.frags.recycle(q.frags);
        }
        any
    }

    /// When the oldest fragment queue expires.
    pub(crate) fn ip_frag_next_timer(&self) -> Option<Instant> {
        self.ip.frags.queues.iter().map(|q| q.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::IfIndex;
    use crate::ipv4::fragment::tests::{datagram, fragment, repr, Rng, OPTS};
    use crate::skb::SkbPool;
    use netpath_wire::ipv4::Ipv4Repr;
    use proptest::prelude::*;

    const ETH: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];

    /// An skb as `ip_rcv` hands a fragment over: Ethernet header pulled,
    /// network header at data, ingress device and timestamp set.
    fn in_skb(pool: &SkbPool, ip: &[u8], stamp: u64) -> Skb {
        let mut skb = pool.alloc(64 + ETH.len() + ip.len()).unwrap();
        skb.reserve(64).unwrap();
        skb.put_slice(&ETH).unwrap();
        skb.put_slice(ip).unwrap();
        skb.reset_mac_header();
        skb.pull(ETH.len()).unwrap();
        skb.reset_network_header();
        skb.meta.ingress_dev = Some(IfIndex(1));
        skb.meta.set_tstamp(Some(Instant::from_micros(stamp)));
        skb.meta.mark = stamp as u32;
        skb
    }

    /// One hand-made fragment: `payload_len` bytes at `offset`.
    fn frag_bytes(id: u16, offset: u16, mf: bool, payload_len: usize, opts: &[u8]) -> Vec<u8> {
        let r = Ipv4Repr {
            more_frags: mf,
            frag_offset: offset,
            ..repr(payload_len, id)
        };
        datagram(&r, opts, u64::from(offset) + 7)
    }

    fn feed(s: &mut Stack, ip: &[u8], stamp: u64) -> Option<Skb> {
        let skb = in_skb(&s.pool.clone(), ip, stamp);
        s.ip_defrag(skb)
    }

    /// Fragments of `orig` over `mtu`, as bytes.
    fn pieces(s: &mut Stack, orig: &[u8], mtu: u32) -> Vec<Vec<u8>> {
        fragment(s, orig, mtu)
            .iter()
            .map(|f| f.data().to_vec())
            .collect()
    }

    fn check_whole(s: &Stack, whole: &Skb, orig: &[u8]) {
        assert_eq!(whole.data(), orig);
        let p = Ipv4Packet::new_checked(whole.data()).unwrap();
        assert!(p.verify_checksum() && !p.is_fragment());
        assert_eq!(whole.network_header(), Some(whole.data_offset()));
        assert_eq!(
            whole.transport_header(),
            Some(whole.data_offset() + p.header_len())
        );
        assert_eq!(whole.mac_len(), Some(ETH.len()));
        assert_eq!(&whole.mac_header_bytes()[..ETH.len()], &ETH);
        assert_eq!(whole.meta.ingress_dev, Some(IfIndex(1)));
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.ip.frags.mem(), 0);
    }

    #[test]
    fn reassembles_in_any_order() {
        for opts in [&[][..], &OPTS[..]] {
            let mut s = Stack::new();
            let orig = datagram(&repr(8980, 0x4242), opts, 11);
            let frags = pieces(&mut s, &orig, 1500);
            let n = frags.len();
            assert_eq!(n, 7);
            let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(), (0..n).rev().collect()];
            for seed in [1, 2, 3, 99] {
                let mut o: Vec<usize> = (0..n).collect();
                Rng(seed).shuffle(&mut o);
                orders.push(o);
            }
            for (k, order) in orders.iter().enumerate() {
                for (j, &i) in order.iter().enumerate() {
                    let got = feed(&mut s, &frags[i], i as u64 + 1);
                    assert_eq!(got.is_some(), j == n - 1, "order {order:?}");
                    if let Some(whole) = got {
                        check_whole(&s, &whole, &orig);
                        // Metadata of the offset-0 fragment.
                        assert_eq!(whole.meta.tstamp(), Some(Instant::from_micros(1)));
                        assert_eq!(whole.meta.mark, 1);
                    }
                }
                let m = &s.snmp().ip;
                assert_eq!(m.reasm_oks, k as u64 + 1);
                assert_eq!(m.reasm_reqds, (k as u64 + 1) * n as u64);
                assert_eq!(m.reasm_fails, 0);
            }
            assert_eq!(s.drops().total(), 0);
            assert_eq!(s.pool().stats().in_use, 0);
        }
    }

    #[test]
    fn duplicates_are_dropped_alone() {
        let mut s = Stack::new();
        let orig = datagram(&repr(8980, 1), &[], 12);
        let frags = pieces(&mut s, &orig, 1500);
        let n = frags.len();
        let mut order: Vec<usize> = (0..n).collect();
        Rng(5).shuffle(&mut order);
        let last = order[n - 1];
        let mut seq: Vec<usize> = order[..n - 1].iter().flat_map(|&i| [i, i]).collect();
        Rng(6).shuffle(&mut seq);
        for &i in &seq {
            assert!(feed(&mut s, &frags[i], 0).is_none());
        }
        assert_eq!(s.drops().get(DropReason::DupFrag), n as u64 - 1);
        let whole = feed(&mut s, &frags[last], 0).unwrap();
        check_whole(&s, &whole, &orig);
        let m = &s.snmp().ip;
        assert_eq!(
            (m.reasm_reqds, m.reasm_oks, m.reasm_fails),
            (2 * n as u64 - 1, 1, 0)
        );
    }

    #[test]
    fn data_within_held_fragments_is_a_duplicate() {
        let mut s = Stack::new();
        assert!(feed(&mut s, &frag_bytes(3, 0, true, 16, &[]), 0).is_none());
        assert!(feed(&mut s, &frag_bytes(3, 16, true, 16, &[]), 0).is_none());
        // Spans both held fragments: covered, so a duplicate.
        assert!(feed(&mut s, &frag_bytes(3, 8, true, 16, &[]), 0).is_none());
        assert_eq!(s.drops().get(DropReason::DupFrag), 1);
        assert_eq!(s.ip.frags.queues(), 1);
        assert_eq!(s.snmp().ip.reasm_fails, 0);
    }

    #[test]
    fn overlap_discards_the_queue() {
        let mut s = Stack::new();
        assert!(feed(&mut s, &frag_bytes(3, 0, true, 16, &[]), 0).is_none());
        assert!(feed(&mut s, &frag_bytes(3, 32, true, 16, &[]), 0).is_none());
        // 8..32 overlaps the first and reaches into the hole.
        assert!(feed(&mut s, &frag_bytes(3, 8, true, 24, &[]), 0).is_none());
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.ip.frags.mem(), 0);
        assert_eq!(s.drops().get(DropReason::IpInhdr), 3);
        let m = &s.snmp().ip;
        assert_eq!((m.reasm_reqds, m.reasm_fails, m.reasm_oks), (3, 1, 0));
        // The rest of that datagram starts a new queue that cannot complete.
        assert!(feed(&mut s, &frag_bytes(3, 16, false, 16, &[]), 0).is_none());
        assert_eq!(s.ip.frags.queues(), 1);
        assert_eq!(s.pool().stats().in_use, 1);
    }

    #[test]
    fn inconsistent_ends_discard_the_queue() {
        // Two last fragments that disagree.
        let mut s = Stack::new();
        feed(&mut s, &frag_bytes(4, 16, false, 16, &[]), 0);
        feed(&mut s, &frag_bytes(4, 40, false, 16, &[]), 0);
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.snmp().ip.reasm_fails, 1);
        // A last fragment ending before data already held.
        feed(&mut s, &frag_bytes(5, 48, true, 16, &[]), 0);
        feed(&mut s, &frag_bytes(5, 8, false, 16, &[]), 0);
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.snmp().ip.reasm_fails, 2);
        // Data past the known end.
        feed(&mut s, &frag_bytes(6, 16, false, 16, &[]), 0);
        feed(&mut s, &frag_bytes(6, 32, true, 8, &[]), 0);
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.snmp().ip.reasm_fails, 3);
        // A non-last fragment of fewer than 8 bytes is empty once trimmed.
        feed(&mut s, &frag_bytes(7, 0, true, 5, &[]), 0);
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.snmp().ip.reasm_fails, 4);
        assert_eq!(s.drops().get(DropReason::IpInhdr), 7);
        assert_eq!(s.pool().stats().in_use, 0);
    }

    #[test]
    fn non_last_fragment_is_trimmed_to_8_bytes() {
        let mut s = Stack::new();
        let a = frag_bytes(8, 0, true, 13, &[]);
        let b = frag_bytes(8, 8, false, 12, &[]);
        assert!(feed(&mut s, &a, 0).is_none());
        let whole = feed(&mut s, &b, 0).unwrap();
        let p = Ipv4Packet::new_checked(whole.data()).unwrap();
        assert_eq!(p.total_len(), 40);
        assert_eq!(&p.payload()[..8], &a[20..28]);
        assert_eq!(&p.payload()[8..], &b[20..]);
    }

    #[test]
    fn oversized_datagrams_are_refused() {
        let mut s = Stack::new();
        // Ends at 65544: no header could make that fit.
        feed(&mut s, &frag_bytes(9, 65528, false, 16, &[]), 0);
        assert_eq!(s.drops().get(DropReason::PktTooBig), 1);
        assert_eq!(s.snmp().ip.reasm_fails, 1);
        assert_eq!(s.ip.frags.queues(), 0);
        // 65500 bytes of payload fit a 20-byte header, not the first
        // fragment's 60-byte one: found at completion.
        let opts = [1u8; 40];
        feed(&mut s, &frag_bytes(10, 0, true, 8, &opts), 0);
        assert!(feed(&mut s, &frag_bytes(10, 8, false, 65492, &[]), 0).is_none());
        assert_eq!(s.drops().get(DropReason::PktTooBig), 3);
        let m = &s.snmp().ip;
        assert_eq!((m.reasm_fails, m.reasm_oks), (2, 0));
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(s.pool().stats().in_use, 0);
    }

    #[test]
    fn timeout_after_ipfrag_time() {
        let mut s = Stack::new();
        s.tracer_mut().enable(256);
        let orig = datagram(&repr(4000, 20), &[], 13);
        let frags = pieces(&mut s, &orig, 1500);
        // Datagram 20 without its first fragment, from t = 0.
        feed(&mut s, &frags[1], 0);
        feed(&mut s, &frags[2], 0);
        // Datagram 21 with it, from t = 10 s.
        s.set_now(Instant::from_secs(10));
        let orig2 = datagram(&repr(4000, 21), &[], 14);
        let frags2 = pieces(&mut s, &orig2, 1500);
        feed(&mut s, &frags2[0], 0);
        assert_eq!(s.ip_frag_next_timer(), Some(Instant::from_secs(30)));
        assert_eq!(s.next_deadline(), Some(Instant::from_secs(30)));

        s.set_now(Instant::from_nanos(29_999_999_999));
        assert!(!s.ip_frag_timer());
        assert_eq!(s.ip.frags.queues(), 2);
        s.set_now(Instant::from_secs(30));
        assert!(s.ip_frag_timer());
        assert_eq!(s.ip.frags.queues(), 1);
        assert_eq!(s.drops().get(DropReason::FragReasmTimeout), 2);
        let m = &s.snmp().ip;
        assert_eq!((m.reasm_timeout, m.reasm_fails), (1, 1));
        // No first fragment: no ICMP (the trace's detail marks the send).
        let expired = |s: &Stack| -> Vec<(u64, u32)> {
            s.tracer()
                .events()
                .filter(|e| e.point == "ip_expire")
                .map(|e| (e.detail, e.len))
                .collect()
        };
        assert_eq!(expired(&s), vec![(0, 1500)]);
        assert_eq!(s.ip_frag_next_timer(), Some(Instant::from_secs(40)));

        s.set_now(Instant::from_secs(40));
        assert!(s.ip_frag_timer());
        assert_eq!(s.drops().get(DropReason::FragReasmTimeout), 3);
        let m = &s.snmp().ip;
        assert_eq!((m.reasm_timeout, m.reasm_fails), (2, 2));
        assert_eq!(expired(&s), vec![(0, 1500), (1, 1500)]);
        assert_eq!(s.ip_frag_next_timer(), None);
        assert_eq!((s.ip.frags.queues(), s.ip.frags.mem()), (0, 0));
    }

    #[test]
    fn poll_runs_the_expiry() {
        let mut s = Stack::new();
        feed(&mut s, &frag_bytes(30, 8, true, 8, &[]), 0);
        s.poll(Instant::from_secs(31));
        assert_eq!(s.snmp().ip.reasm_timeout, 1);
        assert_eq!(s.drops().get(DropReason::FragReasmTimeout), 1);
    }

    #[test]
    fn memory_ceiling_refuses_fragments() {
        let mut s = Stack::new();
        // One small buffer (2048) plus the queue: 2304 per queue.
        s.ipv4_sysctl_mut().ipfrag_high_thresh = 5000;
        for id in 0..3 {
            feed(&mut s, &frag_bytes(id, 0, true, 64, &[]), 0);
        }
        assert_eq!(s.ip.frags.mem(), 3 * (2048 + IPQ_TRUESIZE));
        assert_eq!(s.ip.frags.queues(), 3);
        // Over the ceiling: refused, even the fragment completing queue 0.
        feed(&mut s, &frag_bytes(3, 0, true, 64, &[]), 0);
        assert!(feed(&mut s, &frag_bytes(0, 64, false, 8, &[]), 0).is_none());
        assert_eq!(s.drops().get(DropReason::Nomem), 2);
        let m = &s.snmp().ip;
        assert_eq!((m.reasm_reqds, m.reasm_fails), (5, 2));
        assert_eq!(s.ip.frags.queues(), 3);
        // Expiry gives the memory back.
        s.set_now(Instant::from_secs(30));
        s.ip_frag_timer();
        assert_eq!(s.ip.frags.mem(), 0);
        feed(&mut s, &frag_bytes(0, 0, true, 64, &[]), 0);
        assert!(feed(&mut s, &frag_bytes(0, 64, false, 8, &[]), 0).is_some());
    }

    #[test]
    fn per_datagram_fragment_bound() {
        let mut s = Stack::new();
        for i in 0..IPFRAG_MAX_FRAGS {
            assert!(feed(&mut s, &frag_bytes(40, (8 * i) as u16, true, 8, &[]), 0).is_none());
        }
        assert_eq!(s.ip.frags.queues(), 1);
        let next = (8 * IPFRAG_MAX_FRAGS) as u16;
        feed(&mut s, &frag_bytes(40, next, false, 8, &[]), 0);
        assert_eq!(s.ip.frags.queues(), 0);
        assert_eq!(
            s.drops().get(DropReason::FragTooFar),
            IPFRAG_MAX_FRAGS as u64 + 1
        );
        assert_eq!(s.snmp().ip.reasm_fails, 1);
        assert_eq!(s.pool().stats().in_use, 0);
    }

    #[test]
    fn ecn_and_df_merge() {
        let mut s = Stack::new();
        let mut a = frag_bytes(50, 0, true, 16, &[]);
        let mut b = frag_bytes(50, 16, false, 16, &[]);
        let set = |v: &mut Vec<u8>, tos: u8, df: bool| {
            let mut p = Ipv4Packet::new_unchecked(&mut v[..]);
            p.set_tos(tos);
            p.set_dont_frag(df);
            p.fill_checksum();
        };
        // ECT(0) and CE: CE wins; DF on both: kept.
        set(&mut a, 0x12, true);
        set(&mut b, 0x13, true);
        feed(&mut s, &a, 0);
        let whole = feed(&mut s, &b, 0).unwrap();
        let p = Ipv4Packet::new_checked(whole.data()).unwrap();
        assert_eq!(
            (p.tos(), p.dont_frag(), p.more_frags()),
            (0x13, true, false)
        );
        assert!(p.verify_checksum());
        // Not-ECT mixed with ECT(0): invalid.
        set(&mut a, 0x10, false);
        set(&mut b, 0x12, false);
        feed(&mut s, &a, 0);
        assert!(feed(&mut s, &b, 0).is_none());
        assert_eq!(s.drops().get(DropReason::IpInhdr), 2);
        assert_eq!(s.snmp().ip.reasm_fails, 1);
    }

    #[test]
    fn not_a_fragment_passes_through() {
        let mut s = Stack::new();
        let orig = datagram(&repr(100, 1), &[], 1);
        let skb = feed(&mut s, &orig, 0).unwrap();
        assert_eq!(skb.data(), &orig[..]);
        assert_eq!(s.snmp().ip.reasm_reqds, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn fragment_then_reassemble_round_trip(
            mtu in 68u32..9000,
            frac in 0.0f64..=1.0,
            with_opts: bool,
            seed: u64,
        ) {
            let opts: &[u8] = if with_opts { &OPTS } else { &[] };
            // Stay under the per-datagram bound and the 65535 limit.
            let per = ((mtu as usize - 20 - opts.len()) & !7).max(8);
            let cap = (100 * per).min(65535 - 20 - opts.len());
            let len = (frac * cap as f64) as usize;
            let mut s = Stack::new();
            let orig = datagram(&repr(len, seed as u16), opts, seed);
            let mut frags = pieces(&mut s, &orig, mtu);
            prop_assert!(frags.iter().all(|f| f.len() <= mtu as usize));
            Rng(seed | 1).shuffle(&mut frags);
            let n = frags.len();
            let mut whole = None;
            for (j, f) in frags.iter().enumerate() {
                let got = feed(&mut s, f, 0);
                prop_assert_eq!(got.is_some(), j == n - 1);
                whole = whole.or(got);
            }
            let whole = whole.unwrap();
            prop_assert_eq!(whole.data(), &orig[..]);
            prop_assert_eq!(s.drops().total(), 0);
            prop_assert_eq!(s.ip.frags.queues(), 0);
        }
    }
}
