//! SYN cookies (`net/ipv4/syncookies.c`): when a listener's SYN queue is
//! full (or `tcp_syncookies=2`), the SYN-ACK's ISN encodes what the
//! connection needs and no state is kept; a valid final ACK recreates it.
//! Part of seed ingress step 11 (the listener's state machine).
//!
//! The shape is Linux's:
//! `cookie = H1(4-tuple) + ISN_peer + (minute << 24) + ((H2(4-tuple, minute) + mss_index) mod 2^24)`,
//! valid for two minutes,
//! with the MSS from a four-entry table; with timestamps, the low six bits
//! of TSval carry the window scale (0xf: none), SACK-permitted and ECN
//! (`cookie_init_timestamp`). The hash is a keyed mix of the stack's
//! secret (not SipHash: deterministic and fast, same role).

use core::net::Ipv4Addr;

use netpath_wire::tcp::TcpSeqNumber;

use crate::time::Instant;

/// `msstab[]`: the MSS values a cookie can carry.
pub const MSSTAB: [u16; 4] = [536, 1300, 1440, 1460];
/// `MAX_SYNCOOKIE_AGE`: minutes a cookie stays valid.
const MAX_AGE: u32 = 2;
const COOKIEBITS: u32 = 24;
const COOKIEMASK: u32 = (1 << COOKIEBITS) - 1;
/// `TSBITS`, `TS_OPT_WSCALE_MASK`, `TS_OPT_SACK`, `TS_OPT_ECN`.
pub const TSBITS: u32 = 6;
const TS_OPT_WSCALE_MASK: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;

/// What a valid cookie gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOpts {
    pub mss: u16,
    /// The peer's window scale, if it sent one (and timestamps carried it).
    pub snd_wscale: Option<u8>,
    pub sack: bool,
    pub tstamp: bool,
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The connection a cookie is for: the SYN's source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieFlow {
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

fn cookie_hash(secret: u64, f: &CookieFlow, count: u32, c: u64) -> u32 {
    let a = u64::from(u32::from(f.saddr)) << 32 | u64::from(u32::from(f.daddr));
    let b = u64::from(f.sport) << 48 | u64::from(f.dport) << 32 | u64::from(count);
    (mix(mix(a ^ secret ^ c) ^ b) >> 32) as u32
}

/// `tcp_cookie_time()`: minutes since the start of the clock.
pub fn cookie_time(now: Instant) -> u32 {
    (now.as_nanos() / 60_000_000_000) as u32
}

/// `__cookie_v4_init_sequence()`: the ISN for a SYN from `saddr:sport` to
/// `daddr:dport` with sequence `sseq` and MSS `mss`. Returns the ISN and
/// the MSS the cookie encodes.
pub fn cookie_v4_init_sequence(
    secret: u64,
    flow: &CookieFlow,
    sseq: TcpSeqNumber,
    mss: u16,
    now: Instant,
) -> (TcpSeqNumber, u16) {
    let idx = MSSTAB.iter().rposition(|&m| m <= mss).unwrap_or(0);
    let count = cookie_time(now);
    let h1 = cookie_hash(secret, flow, 0, 1);
    let h2 = cookie_hash(secret, flow, count, 2);
    let cookie = h1
        .wrapping_add(sseq.0)
        .wrapping_add(count << COOKIEBITS)
        .wrapping_add(h2.wrapping_add(idx as u32) & COOKIEMASK);
    (TcpSeqNumber(cookie), MSSTAB[idx])
}

/// `__cookie_v4_check()`: the MSS if `cookie` (the ACK number minus one)
/// was made for this 4-tuple and peer ISN `sseq` (the ACK's sequence
/// number minus one) within the last two minutes.
pub fn cookie_v4_check(
    secret: u64,
    flow: &CookieFlow,
    sseq: TcpSeqNumber,
    cookie: TcpSeqNumber,
    now: Instant,
) -> Option<u16> {
    let count = cookie_time(now);
    let h1 = cookie_hash(secret, flow, 0, 1);
    let c = cookie.0.wrapping_sub(h1).wrapping_sub(sseq.0);
    let diff = count.wrapping_sub(c >> COOKIEBITS) & (u32::MAX >> COOKIEBITS);
    if diff >= MAX_AGE {
        return None;
    }
    let h2 = cookie_hash(secret, flow, count.wrapping_sub(diff), 2);
    let idx = (c.wrapping_sub(h2) & COOKIEMASK) as usize;
    MSSTAB.get(idx).copied()
}

/// `cookie_init_timestamp()`: TSval with the options in its low bits,
/// never after `ts_now`.
pub fn cookie_init_timestamp(ts_now: u32, wscale: Option<u8>, sack: bool) -> u32 {
    let mut opts = wscale.map_or(TS_OPT_WSCALE_MASK, |w| u32::from(w) & TS_OPT_WSCALE_MASK);
    if sack {
        opts |= TS_OPT_SACK;
    }
    let mut ts = (ts_now >> TSBITS) << TSBITS | opts;
    if (ts.wrapping_sub(ts_now) as i32) > 0 {
        ts = ts.wrapping_sub(1 << TSBITS);
    }
    ts
}

/// `cookie_timestamp_decode()`: the options back from the echoed TSval;
/// `None` if they are impossible (a window scale above 14).
pub fn cookie_timestamp_decode(tsecr: Option<u32>, mss: u16) -> Option<CookieOpts> {
    let Some(tsecr) = tsecr.filter(|&t| t != 0) else {
        return Some(CookieOpts {
            mss,
            snd_wscale: None,
            sack: false,
            tstamp: false,
        });
    };
    let opts = tsecr & ((1 << TSBITS) - 1);
    let ws = opts & TS_OPT_WSCALE_MASK;
    let snd_wscale = if ws == TS_OPT_WSCALE_MASK {
        None
    } else if ws > 14 {
        return None;
    } else {
        Some(ws as u8)
    };
    Some(CookieOpts {
        mss,
        snd_wscale,
        sack: opts & TS_OPT_SACK != 0,
        tstamp: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn flow(sport: u16) -> CookieFlow {
        CookieFlow {
            saddr: A,
            daddr: B,
            sport,
            dport: 80,
        }
    }

    #[test]
    fn cookie_round_trip_and_expiry() {
        let t0 = Instant::from_secs(1000);
        let (isn, mss) = cookie_v4_init_sequence(7, &flow(40000), TcpSeqNumber(5), 1460, t0);
        assert_eq!(mss, 1460);
        assert_eq!(
            cookie_v4_check(7, &flow(40000), TcpSeqNumber(5), isn, t0),
            Some(1460)
        );
        // Still valid a minute later, not after two.
        let t1 = Instant::from_secs(1000 + 60);
        assert_eq!(
            cookie_v4_check(7, &flow(40000), TcpSeqNumber(5), isn, t1),
            Some(1460)
        );
        let t2 = Instant::from_secs(1000 + 180);
        assert_eq!(
            cookie_v4_check(7, &flow(40000), TcpSeqNumber(5), isn, t2),
            None
        );
        // Another port, another peer ISN, another secret: refused.
        assert_eq!(
            cookie_v4_check(7, &flow(40001), TcpSeqNumber(5), isn, t0),
            None
        );
        assert_eq!(
            cookie_v4_check(7, &flow(40000), TcpSeqNumber(5 + 1000), isn, t0),
            None
        );
        assert_eq!(
            cookie_v4_check(8, &flow(40000), TcpSeqNumber(5), isn, t0),
            None
        );
    }

    #[test]
    fn mss_table_rounds_down() {
        let t = Instant::from_secs(5);
        assert_eq!(
            cookie_v4_init_sequence(
                1,
                &CookieFlow {
                    saddr: A,
                    daddr: B,
                    sport: 1,
                    dport: 2
                },
                TcpSeqNumber(0),
                1400,
                t
            )
            .1,
            1300
        );
        assert_eq!(
            cookie_v4_init_sequence(
                1,
                &CookieFlow {
                    saddr: A,
                    daddr: B,
                    sport: 1,
                    dport: 2
                },
                TcpSeqNumber(0),
                100,
                t
            )
            .1,
            536
        );
    }

    #[test]
    fn timestamp_options() {
        let ts = cookie_init_timestamp(1_000_000, Some(7), true);
        assert!(ts <= 1_000_000);
        let o = cookie_timestamp_decode(Some(ts), 1460).unwrap();
        assert_eq!(o.snd_wscale, Some(7));
        assert!(o.sack && o.tstamp);
        let o =
            cookie_timestamp_decode(Some(cookie_init_timestamp(99_999, None, false)), 536).unwrap();
        assert_eq!(o.snd_wscale, None);
        assert!(!o.sack);
        assert!(!cookie_timestamp_decode(None, 536).unwrap().tstamp);
    }
}
