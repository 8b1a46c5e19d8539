//! The Internet checksum (RFC 1071) with a fast path, and incremental update
//! (RFC 1624).
//!
//! Seed stages served: ingress step 9 (`ip_rcv` verifying the header
//! checksum) and step 11 (`tcp_v4_rcv` verifying the TCP checksum), and
//! egress steps 3–4 (`tcp_transmit_skb` / `ip_send_check` filling them in);
//! also ICMP and the UDP pseudo-header checksum. The fast path sums the buffer as native-endian 64-bit words,
//! splitting each into two 32-bit halves added into a 64-bit accumulator, which
//! needs no carry handling and lets the compiler vectorise; byte order is
//! fixed once at the end (the one's-complement sum is byte-order independent,
//! RFC 1071 §2(B)).
//!
//! All `u16` values in this API are the numeric value of a big-endian field as
//! it is read with `u16::from_be_bytes` (what you write into the header with
//! `to_be_bytes`).

use core::net::Ipv4Addr;

/// One's-complement sum of `data` folded to 16 bits (not complemented).
/// An odd final byte is padded with zero, as RFC 1071 says.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(sum_native(data)).swap_if_le()
}

/// The checksum to write into a header whose checksum field is zero in `data`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// True when `data`, checksum field included, sums to 0xffff.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit field of the covered
/// data changed from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!check) + u32::from(!old) + u32::from(new);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// RFC 1624 update for a 32-bit field (e.g. an IPv4 address under NAT).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update16(check, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// An accumulator for checksums over several pieces (pseudo-header, header,
/// payload). Every piece passed to [`Checksum::add_bytes`] except the last
/// must have even length, as the pieces of one packet do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    acc: u32,
}

impl Checksum {
    pub const fn new() -> Self {
        Checksum { acc: 0 }
    }

    /// The TCP/UDP pseudo-header for IPv4 (RFC 793 §3.1, RFC 768):
    /// source, destination, zero, protocol, transport length.
    pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> Self {
        let mut c = Checksum::new();
        c.add_u32(u32::from(src));
        c.add_u32(u32::from(dst));
        c.add_u16(u16::from(protocol));
        c.add_u16(len);
        c
    }

    #[inline]
    pub fn add_u16(&mut self, v: u16) {
        self.acc += u32::from(v);
        self.fold_acc();
    }

    #[inline]
    pub fn add_u32(&mut self, v: u32) {
        self.add_u16((v >> 16) as u16);
        self.add_u16(v as u16);
    }

    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.add_u16(sum(data));
    }

    /// Copies as much of `src` as fits into `dst`, adds the copied bytes to
    /// the sum, and returns how many were copied: the "checksum folded into
    /// the user copy" of DESIGN.md §7.
    #[inline]
    pub fn add_copy(&mut self, dst: &mut [u8], src: &[u8]) -> usize {
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.add_bytes(&dst[..n]);
        n
    }

    /// Adds a partial sum computed elsewhere (e.g. an skb's `csum`).
    #[inline]
    pub fn add_sum(&mut self, partial: u16) {
        self.add_u16(partial);
    }

    /// The folded sum, not complemented.
    #[inline]
    pub fn sum(&self) -> u16 {
        self.acc as u16
    }

    /// The checksum field value: the complement of the sum.
    #[inline]
    pub fn finish(&self) -> u16 {
        !self.sum()
    }

    #[inline]
    fn fold_acc(&mut self) {
        self.acc = (self.acc & 0xffff) + (self.acc >> 16);
    }
}

/// Sum of `data` as native-endian 16-bit words, in a u64 (unfolded).
#[inline]
fn sum_native(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        // Four independent lanes keep the adds in parallel.
        let mut lanes = [0u64; 4];
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_ne_bytes(c[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            *lane = (w & 0xffff_ffff) + (w >> 32);
        }
        acc += lanes[0] + lanes[1] + lanes[2] + lanes[3];
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        acc += (w & 0xffff_ffff) + (w >> 32);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut buf = [0u8; 8];
        buf[..tail.len()].copy_from_slice(tail);
        let w = u64::from_ne_bytes(buf);
        acc += (w & 0xffff_ffff) + (w >> 32);
    }
    acc
}

#[inline]
fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

trait SwapIfLe {
    fn swap_if_le(self) -> Self;
}

impl SwapIfLe for u16 {
    #[inline]
    fn swap_if_le(self) -> u16 {
        u16::from_be(self)
    }
}

/// The plain RFC 1071 algorithm, byte pair by byte pair: the reference the
/// fast path is tested against.
pub fn sum_reference(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        acc += hi | lo;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_from_wire() {
        // The header of arp-ping.pcap's first echo request, checksum zeroed.
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0x8f, 0x2e, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc0, 0x00,
            0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&h));
        h[8] = 0x3f; // change TTL: must no longer verify
        assert!(!verify(&h));
    }

    #[test]
    fn add_copy_copies_what_fits_and_sums_it() {
        let src = [1u8, 2, 3, 4, 5, 6];
        let mut dst = [0u8; 4];
        let mut c = Checksum::new();
        assert_eq!(c.add_copy(&mut dst, &src), 4);
        assert_eq!(dst, [1, 2, 3, 4]);
        assert_eq!(c.sum(), sum(&[1, 2, 3, 4]));
        let mut big = [0u8; 8];
        let mut c = Checksum::new();
        assert_eq!(c.add_copy(&mut big, &src), 6);
        assert_eq!(c.sum(), 0x0102 + 0x0304 + 0x0506);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(
            u32::from(sum(&[0xab, 0xcd, 0xef])),
            0xabcd + 0xef00 - 0xffff
        );
    }

    proptest! {
        #[test]
        fn fast_path_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(sum(&data), sum_reference(&data));
        }

        #[test]
        fn pieces_sum_like_whole(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..300) {
            let cut = (cut * 2).min(data.len() & !1);
            let mut c = Checksum::new();
            c.add_bytes(&data[..cut]);
            c.add_bytes(&data[cut..]);
            prop_assert_eq!(c.sum(), sum_reference(&data));
        }

        #[test]
        fn incremental_matches_recompute(mut data in proptest::collection::vec(any::<u8>(), 2..200), idx in 0usize..100, new in any::<u16>()) {
            let len = data.len() & !1;
            data.truncate(len);
            let i = (idx * 2) % len;
            let old_check = checksum(&data);
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let recomputed = checksum(&data);
            let incremental = update16(old_check, old, new);
            // 0x0000 and 0xffff are the same number in one's complement.
            prop_assert!(incremental == recomputed || (incremental ^ recomputed) == 0xffff && (incremental == 0 || incremental == 0xffff));
        }
    }
}
