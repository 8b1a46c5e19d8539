//! IPv4 fragmentation (`ip_do_fragment` in `net/ipv4/ip_output.c`, with
//! `ip_options_fragment` from `net/ipv4/ip_options.c`): the "fragment if
//! needed (packet larger than the link's MTU)" bullet of seed egress step 5.
//!
//! Only Linux's slow path exists here (an skb is one linear buffer, there
//! is no frag list to reuse): each fragment is a new skb from the pool with
//! [`FRAG_HEADROOM`] bytes of headroom for the link header, holding a copy
//! of the IPv4 header and its share of the payload.
//!
//! - The first fragment carries every option of the original header; later
//!   ones carry only the options whose type has the "copied" bit (0x80:
//!   security, LSRR, SSRR, router alert…), packed and padded with
//!   End-of-List to a multiple of 4 bytes, as RFC 791 describes. (Linux
//!   instead overwrites the uncopied options with NOPs and keeps the header
//!   length; packing lets later fragments carry a little more payload.)
//! - Payload is cut at multiples of 8 bytes; offsets are added to the
//!   original's, so that fragmenting a fragment works, and MF is set on all
//!   but the last fragment, and on the last too if the original had MF.
//! - DF and the reserved bit are cleared (Linux rewrites `frag_off` whole);
//!   ident, TOS, TTL and addresses are kept; total length and checksum are
//!   per fragment.
//! - A pending transport checksum (`CHECKSUM_PARTIAL`) is resolved first,
//!   as `skb_checksum_help()` in `ip_do_fragment`.
//! - Metadata as `ip_copy_metadata()`: everything in [`SkbMeta`](crate::skb::SkbMeta)
//!   (egress device, dst, mark, priority, protocol, socket, hash…).
//!
//! MIB: `FragOKs` per datagram fragmented, `FragCreates` per fragment,
//! `FragFails` on failure. Unlike Linux, which transmits each fragment as it
//! is built, fragments are collected in `out` first: on failure those
//! already built are taken back out of `out` and freed (never sent), so an
//! `Err` leaves `out` as it was.

use netpath_wire::ipv4::{field, Ipv4Packet, HEADER_LEN, MAX_OPTIONS_LEN};

use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;

/// Headroom reserved in each fragment for the link-layer header
/// (`LL_RESERVED_SPACE`).
pub const FRAG_HEADROOM: usize = 128;

/// IPv4 option type bit: copy this option into every fragment
/// (`IPOPT_COPIED`).
const IPOPT_COPIED: u8 = 0x80;
const IPOPT_END: u8 = 0;
const IPOPT_NOOP: u8 = 1;

/// The options a non-first fragment carries: the copied ones of `opts`,
/// packed, padded with End-of-List to a multiple of 4. Returns the buffer
/// and its used length. A malformed option ends the walk (as
/// `ip_options_fragment` does); what was copied before it is kept.
fn copied_options(opts: &[u8]) -> ([u8; MAX_OPTIONS_LEN], usize) {
    let mut out = [IPOPT_END; MAX_OPTIONS_LEN];
    let mut n = 0;
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            IPOPT_END => break,
            IPOPT_NOOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else { break };
        let len = usize::from(len);
        let Some(opt) = opts.get(i..i + len).filter(|_| len >= 2) else {
            break;
        };
        if kind & IPOPT_COPIED != 0 {
            if let Some(dst) = out.get_mut(n..n + len) {
                dst.copy_from_slice(opt);
                n += len;
            }
        }
        i += len;
    }
    (out, (n + 3) & !3)
}

impl Stack {
    /// `ip_do_fragment()`: splits `skb` (data at its IPv4 header, header
    /// complete, DF clear) into fragments of at most `mtu` bytes each,
    /// appended to `out` in order. The original is consumed either way.
    pub(crate) fn ip_do_fragment(
        &mut self,
        mut skb: Skb,
        mtu: u32,
        out: &mut Vec<Skb>,
    ) -> Result<(), DropReason> {
        self.tracer.skb(self.now, "ip_do_fragment", &skb);
        let first = out.len();
        match self.ip_fragment_into(&mut skb, mtu as usize, out) {
            Ok(()) => {
                let n = (out.len() - first) as u64;
                self.ip.mib.ip.frag_oks += 1;
                self.ip.mib.ip.frag_creates += n;
                self.consume_skb(skb);
                Ok(())
            }
            Err(reason) => {
                // Built but never sent: just give the buffers back.
                out.truncate(first);
                self.ip.mib.ip.frag_fails += 1;
                self.kfree_skb(skb, reason);
                Err(reason)
            }
        }
    }

    fn ip_fragment_into(
        &mut self,
        skb: &mut Skb,
        mtu: usize,
        out: &mut Vec<Skb>,
    ) -> Result<(), DropReason> {
        // Fragments cannot be offloaded: a partial checksum is worked out.
        if !skb.checksum_help() {
            return Err(DropReason::SkbCsum);
        }
        let skb = &*skb;
        let p = Ipv4Packet::new_checked(skb.data()).map_err(|_| DropReason::IpInhdr)?;
        let hlen = p.header_len();
        let payload = p.payload();
        let left = payload.len();
        // Later fragments' headers are never longer than the first's.
        if mtu < hlen + 8 {
            return Err(DropReason::PktTooBig);
        }
        let (later_opts, later_optlen) = copied_options(p.options());
        let base_offset = usize::from(p.frag_offset());
        let orig_mf = p.more_frags();
        let mut off = 0;
        while off < left {
            let opts: &[u8] = if off == 0 {
                p.options()
            } else {
                &later_opts[..later_optlen]
            };
            let fhlen = HEADER_LEN + opts.len();
            let mut len = (mtu - fhlen).min(left - off);
            if off + len < left {
                len &= !7;
            }
            let frag_off = u16::try_from(base_offset + off).map_err(|_| DropReason::PktTooBig)?;
            let total = u16::try_from(fhlen + len).map_err(|_| DropReason::PktTooBig)?;
            let mut frag = self
                .pool
                .alloc(FRAG_HEADROOM + fhlen + len)
                .map_err(|_| DropReason::Nomem)?;
            frag.reserve(FRAG_HEADROOM).map_err(|_| DropReason::Nomem)?;
            let bytes = frag.put(fhlen + len).map_err(|_| DropReason::Nomem)?;
            bytes[..HEADER_LEN].copy_from_slice(&p.header()[..HEADER_LEN]);
            bytes[HEADER_LEN..fhlen].copy_from_slice(opts);
            bytes[fhlen..].copy_from_slice(&payload[off..off + len]);
            // frag_off rewritten whole: DF and the reserved bit go.
            bytes[field::FLG_OFF].fill(0);
            let mut h = Ipv4Packet::new_unchecked(&mut bytes[..fhlen]);
            h.set_header_len(fhlen);
            h.set_total_len(total);
            h.set_frag_offset(frag_off);
            h.set_more_frags(off + len < left || orig_mf);
            h.fill_checksum();
            frag.reset_network_header();
            frag.meta = skb.meta.clone();
            frag.meta.drop_reason = None;
            out.push(frag);
            off += len;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dev::IfIndex;
    use crate::skb::{ChecksumState, SkbPool};
    use core::net::Ipv4Addr;
    use netpath_wire::checksum;
    use netpath_wire::ipv4::{option_kind, Ipv4Option, Ipv4Repr, Protocol};

    /// A tiny deterministic generator (xorshift64*), for payloads and
    /// shuffles.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, self.below(i + 1));
            }
        }
    }

    pub(crate) fn repr(payload_len: usize, ident: u16) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(192, 0, 2, 2),
            protocol: Protocol::UDP,
            ttl: 64,
            tos: 0x10,
            ident,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            payload_len,
        }
    }

    /// The bytes of a datagram: `r`'s header with `opts`, then a payload
    /// drawn from `seed`.
    pub(crate) fn datagram(r: &Ipv4Repr, opts: &[u8], seed: u64) -> Vec<u8> {
        let hl = HEADER_LEN + opts.len();
        let mut v = vec![0u8; hl + r.payload_len];
        r.emit_with_options(&mut Ipv4Packet::new_unchecked(&mut v[..]), opts)
            .unwrap();
        let mut rng = Rng(seed | 1);
        for b in &mut v[hl..] {
            *b = rng.next() as u8;
        }
        v
    }

    /// An skb as the output path hands it over.
    pub(crate) fn out_skb(pool: &SkbPool, bytes: &[u8]) -> Skb {
        let mut skb = pool.alloc_from(64, bytes).unwrap();
        skb.reset_network_header();
        skb.meta.egress_dev = Some(IfIndex(1));
        skb.meta.mark = 0x42;
        skb.meta.priority = 6;
        skb.meta.protocol = 0x0800;
        skb
    }

    pub(crate) fn fragment(s: &mut Stack, bytes: &[u8], mtu: u32) -> Vec<Skb> {
        let skb = out_skb(&s.pool, bytes);
        let mut out = Vec::new();
        s.ip_do_fragment(skb, mtu, &mut out).unwrap();
        out
    }

    /// Router alert (copied) and a record route with two slots (not copied).
    pub(crate) const OPTS: [u8; 16] = [
        option_kind::ROUTER_ALERT,
        4,
        0,
        0,                //
        option_kind::NOP, //
        option_kind::RECORD_ROUTE,
        11,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];

    #[test]
    fn fragments_9000_bytes_over_1500() {
        let mut s = Stack::new();
        let r = repr(8980, 0x1234);
        let orig = datagram(&r, &[], 1);
        let frags = fragment(&mut s, &orig, 1500);
        assert_eq!(frags.len(), 7);
        let mut expect_off = 0;
        for (i, f) in frags.iter().enumerate() {
            let p = Ipv4Packet::new_checked(f.data()).unwrap();
            assert!(f.len() <= 1500);
            assert_eq!(f.len(), usize::from(p.total_len()));
            assert_eq!(usize::from(p.frag_offset()), expect_off);
            assert_eq!(p.more_frags(), i < 6);
            assert!(!p.dont_frag());
            assert_eq!(p.ident(), 0x1234);
            assert_eq!((p.ttl(), p.tos(), p.protocol()), (64, 0x10, Protocol::UDP));
            assert_eq!(p.header_len(), 20);
            assert!(p.verify_checksum());
            assert_eq!(
                p.payload(),
                &orig[20 + expect_off..20 + expect_off + p.payload().len()]
            );
            assert_eq!(f.network_header(), Some(f.data_offset()));
            assert_eq!(f.headroom(), FRAG_HEADROOM);
            assert_eq!(f.meta.egress_dev, Some(IfIndex(1)));
            assert_eq!((f.meta.mark, f.meta.priority), (0x42, 6));
            if i < 6 {
                assert_eq!(p.payload().len(), 1480);
            }
            expect_off += p.payload().len();
        }
        assert_eq!(expect_off, 8980);
        assert_eq!(
            Ipv4Packet::new_checked(frags[6].data())
                .unwrap()
                .payload()
                .len(),
            100
        );
        let m = &s.snmp().ip;
        assert_eq!((m.frag_oks, m.frag_creates, m.frag_fails), (1, 7, 0));
        drop(frags);
        assert_eq!(s.pool().stats().in_use, 0);
    }

    #[test]
    fn later_fragments_keep_only_copied_options() {
        let mut s = Stack::new();
        let r = repr(3000, 7);
        let orig = datagram(&r, &OPTS, 2);
        let frags = fragment(&mut s, &orig, 1000);
        let first = Ipv4Packet::new_checked(frags[0].data()).unwrap();
        assert_eq!(first.header_len(), 36);
        assert_eq!(first.options(), &OPTS);
        // (1000 - 36) & !7 = 960 bytes in the first.
        assert_eq!(first.payload().len(), 960);
        let mut off = 960;
        for f in &frags[1..] {
            let p = Ipv4Packet::new_checked(f.data()).unwrap();
            assert_eq!(p.header_len(), 24);
            assert_eq!(p.options(), &[option_kind::ROUTER_ALERT, 4, 0, 0]);
            let opts: Vec<_> = p.options_iter().map(Result::unwrap).collect();
            assert_eq!(opts, vec![Ipv4Option::RouterAlert(0)]);
            assert!(p.verify_checksum());
            assert_eq!(usize::from(p.frag_offset()), off);
            assert_eq!(p.payload(), &orig[36 + off..36 + off + p.payload().len()]);
            off += p.payload().len();
        }
        assert_eq!(off, 3000);
        // 960 + 976 + 976 + 88.
        assert_eq!(frags.len(), 4);
    }

    #[test]
    fn copied_options_walk() {
        // Security (copied, 11 bytes) and a timestamp (not): pad to 12.
        let opts = [
            130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 68, 8, 5, 0, 0, 0, 0, 0, 0,
        ];
        let (o, n) = copied_options(&opts);
        assert_eq!(n, 12);
        assert_eq!(&o[..12], &[130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
        // Malformed lengths stop the walk without panicking.
        assert_eq!(copied_options(&[148, 1, 0, 0]).1, 0);
        assert_eq!(copied_options(&[148, 9, 0, 0]).1, 0);
        assert_eq!(copied_options(&[148]).1, 0);
        assert_eq!(copied_options(&[1, 1, 148, 4, 0, 0, 7]).1, 4);
    }

    #[test]
    fn fragmenting_a_fragment_keeps_mf_and_offsets() {
        let mut s = Stack::new();
        let r = Ipv4Repr {
            more_frags: true,
            frag_offset: 2960,
            ..repr(2000, 9)
        };
        let orig = datagram(&r, &[], 3);
        let frags = fragment(&mut s, &orig, 1000);
        assert_eq!(frags.len(), 3);
        let got: Vec<_> = frags
            .iter()
            .map(|f| {
                let p = Ipv4Packet::new_checked(f.data()).unwrap();
                (p.frag_offset(), p.more_frags(), p.payload().len())
            })
            .collect();
        assert_eq!(
            got,
            vec![(2960, true, 976), (3936, true, 976), (4912, true, 48)]
        );
    }

    #[test]
    fn failures_count_and_leave_out_untouched() {
        let mut s = Stack::new();
        let orig = datagram(&repr(1000, 1), &OPTS, 4);
        let mut out = Vec::new();
        // 36-byte header + 8 does not fit in 43.
        let skb = out_skb(&s.pool, &orig);
        assert_eq!(
            s.ip_do_fragment(skb, 43, &mut out),
            Err(DropReason::PktTooBig)
        );
        assert!(out.is_empty());
        assert_eq!(s.drops().get(DropReason::PktTooBig), 1);
        // The pool refuses the third fragment: nothing is handed out.
        let pool = SkbPool::new(crate::skb::PoolConfig {
            max_in_use: 3,
            ..Default::default()
        });
        let mut s = Stack::with_pool(pool);
        let skb = out_skb(&s.pool, &orig);
        assert_eq!(s.ip_do_fragment(skb, 300, &mut out), Err(DropReason::Nomem));
        assert!(out.is_empty());
        let m = &s.snmp().ip;
        assert_eq!((m.frag_oks, m.frag_creates, m.frag_fails), (0, 0, 1));
        assert_eq!(s.drops().get(DropReason::Nomem), 1);
        assert_eq!(s.pool().stats().in_use, 0);
    }

    #[test]
    fn partial_checksum_is_resolved_before_splitting() {
        let mut s = Stack::new();
        let mut orig = datagram(&repr(3000, 5), &[], 5);
        // A UDP-like checksum field at payload offset 6, holding 0 as
        // the "pseudo-header sum".
        orig[26..28].fill(0);
        let want = checksum::checksum(&orig[20..]);
        let mut skb = out_skb(&s.pool, &orig);
        skb.meta.ip_summed = ChecksumState::Partial {
            start: (skb.data_offset() + 20) as u16,
            offset: 6,
        };
        let mut out = Vec::new();
        s.ip_do_fragment(skb, 1500, &mut out).unwrap();
        assert_eq!(&out[0].data()[26..28], &want.to_be_bytes());
        assert!(out.iter().all(|f| f.meta.ip_summed == ChecksumState::None));
    }
}
