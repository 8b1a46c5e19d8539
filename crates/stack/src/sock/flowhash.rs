//! The socket tables' hash function: the role of Linux's `inet_ehashfn()`
//! (`jhash` of the 4-tuple with a secret chosen at boot), for the small
//! keys of `inet_hashtables` (4-tuples, ports, socket ids).
//!
//! A keyed multiply-fold mix, much cheaper per packet than the standard
//! library's SipHash, with the key drawn from the stack's secret seed (as
//! TCP's ISN and SYN-cookie secrets are), so that an attacker who does not
//! know the seed cannot aim many flows at one bucket; like `jhash`, it is
//! not a cryptographic MAC.

use core::hash::{BuildHasher, Hasher};

/// Builds [`FlowHasher`]s with one table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowHashBuilder {
    k0: u64,
    k1: u64,
}

impl FlowHashBuilder {
    /// A key derived from `seed` (`splitmix64`, twice).
    pub fn new(seed: u64) -> Self {
        FlowHashBuilder {
            k0: splitmix(seed ^ 0x6a09_e667_f3bc_c908),
            k1: splitmix(seed ^ 0xbb67_ae85_84ca_a73b),
        }
    }
}

impl BuildHasher for FlowHashBuilder {
    type Hasher = FlowHasher;

    fn build_hasher(&self) -> FlowHasher {
        FlowHasher {
            h: self.k0,
            k1: self.k1,
        }
    }
}

/// The state while one key is hashed.
#[derive(Debug, Clone, Copy)]
pub struct FlowHasher {
    h: u64,
    k1: u64,
}

/// An odd constant with well-spread bits (the golden ratio, 2^64 / φ).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl FlowHasher {
    /// Folded multiply: the 128-bit product's halves XORed, so every input
    /// bit reaches every output bit within a few words.
    #[inline]
    fn mix(&mut self, v: u64) {
        let p = u128::from(self.h ^ v) * u128::from(MUL ^ self.k1);
        self.h = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for FlowHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }

    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.mix(u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }

    /// A final avalanche (`fmix64` of MurmurHash3): the table uses both the
    /// low bits (bucket) and the top 7 (control byte).
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.h ^ self.k1;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        z ^ (z >> 33)
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use std::collections::HashSet;

    fn h<T: core::hash::Hash>(b: &FlowHashBuilder, v: &T) -> u64 {
        b.hash_one(v)
    }

    #[test]
    fn keyed_deterministic_and_spread() {
        let a = FlowHashBuilder::new(1);
        let b = FlowHashBuilder::new(2);
        let t = (
            Ipv4Addr::new(192, 0, 2, 1),
            80u16,
            Ipv4Addr::new(192, 0, 2, 2),
            40000u16,
        );
        assert_eq!(h(&a, &t), h(&a, &t));
        assert_ne!(h(&a, &t), h(&b, &t), "the key changes the hash");
        // 65,536 source ports of one peer: the bucket bits (low 12) and the
        // control bits (top 7) are both well used.
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        let mut all = HashSet::new();
        for p in 0..=u16::MAX {
            let v = h(&a, &(t.0, 80u16, t.2, p));
            low.insert(v & 0xfff);
            top.insert(v >> 57);
            all.insert(v);
        }
        assert_eq!(all.len(), 65_536);
        assert!(low.len() > 4000, "{} of 4096 buckets", low.len());
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn byte_strings_of_different_lengths_differ() {
        let a = FlowHashBuilder::new(9);
        let mut x = a.build_hasher();
        x.write(b"ab");
        let mut y = a.build_hasher();
        y.write(b"ab\0");
        assert_ne!(x.finish(), y.finish());
    }
}
