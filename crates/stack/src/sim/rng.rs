//! The simulator's random numbers: a small, hand-written, seeded PRNG so that
//! a run is the same bit for bit on every machine and every build.
//!
//! xoshiro256** (Blackman and Vigna) for the stream, seeded through SplitMix64
//! as its authors recommend. Each link derives its own stream from the world
//! seed and its link number ([`SimRng::derive`]), so adding a link leaves the
//! other links' losses, duplicates and bit flips exactly where they were.

/// One step of SplitMix64: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic pseudo-random stream (xoshiro256**).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A stream seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut sm);
        }
        // SplitMix64 outputs are a bijection of distinct states, so four of
        // them are never all zero (the one state xoshiro cannot leave).
        SimRng { s }
    }

    /// The stream number `stream` of the world seeded with `seed`: independent
    /// of every other stream number under the same seed.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03);
        SimRng::new(splitmix64(&mut sm) ^ stream)
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `range` (Lemire's multiply-and-reject, unbiased). An empty
    /// range yields its start.
    pub fn gen_range(&mut self, range: core::ops::Range<u64>) -> u64 {
        let span = range.end.saturating_sub(range.start);
        if span == 0 {
            return range.start;
        }
        let threshold = span.wrapping_neg() % span;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(span);
            if (m as u64) >= threshold {
                return range.start + (m >> 64) as u64;
            }
        }
    }

    /// True with probability `p`. `p <= 0` (or NaN) is never, `p >= 1`
    /// always; neither draws from the stream.
    pub fn chance(&mut self, p: f64) -> bool {
        if p >= 1.0 {
            true
        } else if p > 0.0 {
            self.next_f64() < p
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_vector() {
        // First outputs of SplitMix64 seeded with 1234567 (from the reference
        // implementation, prng.di.unimi.it/splitmix64.c).
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        assert_eq!(splitmix64(&mut s), 3203168211198807973);
    }

    #[test]
    fn same_seed_same_stream_streams_differ() {
        let a: Vec<u64> = (0..8)
            .scan(SimRng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .scan(SimRng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .scan(SimRng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut l0 = SimRng::derive(7, 0);
        let mut l1 = SimRng::derive(7, 1);
        assert_ne!(l0.next_u64(), l1.next_u64());
        assert_eq!(SimRng::derive(7, 1), SimRng::derive(7, 1));
    }

    #[test]
    fn gen_range_stays_in_range_and_covers_it() {
        let mut r = SimRng::new(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.gen_range(10..20);
            assert!((10..20).contains(&v));
            seen[(v - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(r.gen_range(5..5), 5);
        let (hi, lo) = (9, 3);
        assert_eq!(r.gen_range(hi..lo), 9);
    }

    #[test]
    fn chance_edges_and_rate() {
        let mut r = SimRng::new(3);
        let before = r.clone();
        assert!(!r.chance(0.0));
        assert!(!r.chance(f64::NAN));
        assert!(r.chance(1.0));
        assert_eq!(r, before, "certain outcomes draw nothing");
        let hits = (0..100_000).filter(|_| r.chance(0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
        let f = r.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
