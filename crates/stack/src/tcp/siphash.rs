//! SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
//! 2012): the keyed hash Linux's `siphash()` computes, which
//! `tcp_fastopen_cookie_gen_cipher` uses for Fast Open cookies. Written
//! from the paper's description: 64-bit state of four words, two
//! compression rounds per 8-byte little-endian word, four finalisation
//! rounds.

/// The 128-bit key as two little-endian 64-bit words (`siphash_key_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SipKey(pub u64, pub u64);

impl SipKey {
    /// The key from 16 bytes, each half read little-endian.
    pub fn from_bytes(b: &[u8; 16]) -> SipKey {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&b[..8]);
        k1.copy_from_slice(&b[8..]);
        SipKey(u64::from_le_bytes(k0), u64::from_le_bytes(k1))
    }
}

struct State([u64; 4]);

impl State {
    fn round(&mut self) {
        let v = &mut self.0;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    fn absorb(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.round();
        self.0[0] ^= m;
    }
}

/// SipHash-2-4 of `data` under `key`.
pub fn siphash24(key: SipKey, data: &[u8]) -> u64 {
    let mut s = State([
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ]);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        s.absorb(u64::from_le_bytes(b));
    }
    // The last word: the remaining bytes, the length's low byte on top.
    let rest = words.remainder();
    let mut b = [0u8; 8];
    b[..rest.len()].copy_from_slice(rest);
    b[7] = data.len() as u8;
    s.absorb(u64::from_le_bytes(b));
    s.0[2] ^= 0xff;
    for _ in 0..4 {
        s.round();
    }
    s.0[0] ^ s.0[1] ^ s.0[2] ^ s.0[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's test vector (appendix A): key 00..0f, message 00..0e.
    #[test]
    fn paper_vector() {
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        let m: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(SipKey::from_bytes(&k), &m), 0xa129_ca61_49be_45e5);
    }
}
