//! RTT estimation and the retransmission timeout: Linux's
//! `tcp_rtt_estimator()`, `tcp_set_rto()`/`__tcp_set_rto()`/`tcp_bound_rto()`
//! and `tcp_update_rtt_min()` (`net/ipv4/tcp_input.c`), the windowed minimum
//! of `lib/win_minmax.c`, and `inet_csk_rto_backoff()`
//! (`include/net/inet_connection_sock.h`), after RFC 6298.
//!
//! Seed stage: egress step 2, `tcp_write_xmit()`, which arms the
//! retransmission timer (`inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS,
//! inet_csk_rto_backoff(...))`) with [`RttEstimator::timeout`]; the ACK path
//! (`tcp_ack()` → `tcp_clean_rtx_queue()` → `tcp_ack_update_rtt()`) feeds
//! [`RttEstimator::sample`], and `tcp_retransmit_timer()` calls
//! [`RttEstimator::backoff`].
//!
//! Units: Linux keeps microseconds; this keeps nanoseconds with the same
//! fixed-point scaling (`srtt` ×8, `mdev` ×4), so the arithmetic is Linux's
//! with finer rounding.
//!
//! **Karn's rule is the caller's job**: feed no sample measured from a
//! segment that was retransmitted (Linux skips `TCPCB_RETRANS` skbs in
//! `tcp_clean_rtx_queue()` unless the ACK carries a usable timestamp echo,
//! RFC 7323 §4). A retransmission timeout keeps its backed-off value until
//! such a valid sample arrives; [`RttEstimator::sample`] then clears the
//! backoff as `tcp_ack_update_rtt()` does (`icsk_backoff = 0`).

use crate::time::{Duration, Instant};
use netpath_wire::tcp::TcpSeqNumber;

/// `TCP_TIMEOUT_INIT`: the RTO before any RTT sample (RFC 6298 §2.1), 1 s.
pub const TCP_TIMEOUT_INIT: Duration = Duration::from_secs(1);
/// `TCP_TIMEOUT_FALLBACK`: the RTO Linux falls back to once data flows if
/// the SYN (or SYN-ACK) had to be retransmitted and no RTT sample came
/// (RFC 6298 §5.7), 3 s.
pub const TCP_TIMEOUT_FALLBACK: Duration = Duration::from_secs(3);
/// `TCP_RTO_MIN`: the floor of the RTO (`HZ/5`), 200 ms.
pub const TCP_RTO_MIN: Duration = Duration::from_millis(200);
/// `TCP_RTO_MAX`: the ceiling of the RTO and of its backoff, 120 s.
pub const TCP_RTO_MAX: Duration = Duration::from_secs(120);
/// `sysctl_tcp_min_rtt_wlen` default: the min-RTT window, 300 s.
pub const TCP_MIN_RTT_WLEN: Duration = Duration::from_secs(300);
/// `sysctl_tcp_syn_retries` default (`TCP_SYN_RETRIES`).
pub const TCP_SYN_RETRIES: u32 = 6;

/// Backoff exponents past this change nothing: `1 s << 7 > 120 s` and even a
/// 200 ms RTO reaches the cap by `<< 10`. Bounds the shift.
const MAX_BACKOFF_SHIFT: u32 = 20;

/// One `struct minmax_sample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MinmaxSample {
    t: Instant,
    v: u64,
}

/// `struct minmax` (`lib/win_minmax.c`): Kathleen Nichols' windowed minimum,
/// the best, second-best and third-best samples of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Minmax {
    s: [MinmaxSample; 3],
}

impl Minmax {
    /// `minmax_reset(m, 0, ~0U)` as `tcp_init_sock()` starts it.
    const fn empty() -> Minmax {
        let s = MinmaxSample {
            t: Instant::ZERO,
            v: u64::MAX,
        };
        Minmax { s: [s; 3] }
    }

    fn get(&self) -> u64 {
        self.s[0].v
    }

    /// `minmax_reset()`.
    fn reset(&mut self, val: MinmaxSample) -> u64 {
        self.s = [val; 3];
        val.v
    }

    /// `minmax_running_min()`.
    fn running_min(&mut self, win: Duration, t: Instant, meas: u64) -> u64 {
        let val = MinmaxSample { t, v: meas };
        // A new minimum, or even the 3rd choice is out of the window.
        if val.v <= self.s[0].v || t.saturating_since(self.s[2].t) > win {
            return self.reset(val);
        }
        if val.v <= self.s[1].v {
            self.s[1] = val;
            self.s[2] = val;
        } else if val.v <= self.s[2].v {
            self.s[2] = val;
        }
        self.subwin_update(win, val)
    }

    /// `minmax_subwin_update()`.
    fn subwin_update(&mut self, win: Duration, val: MinmaxSample) -> u64 {
        let dt = val.t.saturating_since(self.s[0].t);
        if dt > win {
            // A whole window without a new minimum: promote the 2nd and 3rd
            // choices (twice if the 2nd is out of the window too).
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = val;
            if val.t.saturating_since(self.s[0].t) > win {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
                self.s[2] = val;
            }
        } else if self.s[1].t == self.s[0].t && dt.as_nanos() > win.as_nanos() / 4 {
            // A quarter window passed: take a 2nd choice from the 2nd quarter.
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].t == self.s[1].t && dt.as_nanos() > win.as_nanos() / 2 {
            // Half a window passed: take a 3rd choice from the last half.
            self.s[2] = val;
        }
        self.s[0].v
    }
}

/// How a measurement window ends (Linux's `rtt_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Time-based: ends once one smoothed RTT has passed since it began.
    Since(Instant),
    /// Linux's: ends when `snd_una` passes the `snd_nxt` recorded at its start.
    Seq(TcpSeqNumber),
}

/// The per-socket RTT state of `struct tcp_sock` (`srtt_us`, `mdev_us`,
/// `mdev_max_us`, `rttvar_us`, `rtt_min`) and `icsk_rto`/`icsk_backoff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttEstimator {
    /// `srtt_us`: smoothed RTT ×8 (ns); 0 until the first sample.
    srtt: u64,
    /// `mdev_us`: mean deviation ×4 (ns).
    mdev: u64,
    /// `mdev_max_us`: the largest `mdev` of the current window.
    mdev_max: u64,
    /// `rttvar_us`: the variance term of the RTO (already ×4, i.e. the
    /// RFC's `4 * RTTVAR`), at least `TCP_RTO_MIN`.
    rttvar: u64,
    /// `rtt_seq`: where the current `mdev_max` window ends.
    window: Window,
    /// `rtt_min`: windowed minimum over [`TCP_MIN_RTT_WLEN`].
    min_rtt: Minmax,
    /// `icsk_rto`: the RTO without backoff.
    rto: Duration,
    /// `icsk_backoff`: how many times the timer expired in a row.
    backoff: u32,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl RttEstimator {
    /// Before any sample: RTO = `TCP_TIMEOUT_INIT` (1 s), as `tcp_init_sock()`.
    pub const fn new() -> RttEstimator {
        RttEstimator {
            srtt: 0,
            mdev: TCP_TIMEOUT_INIT.as_nanos(),
            mdev_max: 0,
            rttvar: TCP_TIMEOUT_INIT.as_nanos(),
            window: Window::Since(Instant::ZERO),
            min_rtt: Minmax::empty(),
            rto: TCP_TIMEOUT_INIT,
            backoff: 0,
        }
    }

    /// One valid RTT measurement (see Karn's rule in the module docs), with
    /// Linux's `mdev_max`/`rttvar` window approximated in time: a window
    /// ends once one smoothed RTT has passed since it began. Updates the
    /// min-RTT filter, the estimator and the RTO, and clears the backoff
    /// (`tcp_ack_update_rtt()`).
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        let ended = match self.window {
            Window::Since(start) => now.saturating_since(start).as_nanos() >= self.srtt >> 3,
            // Switching from sequence-based windows: end the current one.
            Window::Seq(_) => true,
        };
        self.update(rtt, now, ended, Window::Since(now));
    }

    /// As [`sample`](Self::sample), with Linux's exact window: it ends when
    /// `snd_una` is after the `snd_nxt` recorded when it began
    /// (`after(tp->snd_una, tp->rtt_seq)`).
    pub fn sample_seq(
        &mut self,
        rtt: Duration,
        now: Instant,
        snd_una: TcpSeqNumber,
        snd_nxt: TcpSeqNumber,
    ) {
        let ended = match self.window {
            Window::Seq(rtt_seq) => snd_una.after(rtt_seq),
            Window::Since(_) => true,
        };
        self.update(rtt, now, ended, Window::Seq(snd_nxt));
    }

    fn update(&mut self, rtt: Duration, now: Instant, window_ended: bool, next: Window) {
        // `tcp_update_rtt_min()`: a zero sample counts as one tick.
        let meas = rtt.as_nanos().max(1);
        self.min_rtt.running_min(TCP_MIN_RTT_WLEN, now, meas);
        // Cap far beyond TCP_RTO_MAX so the ×8 scaling cannot overflow.
        let m = rtt.as_nanos().min(1 << 50);
        self.estimate(m, window_ended, next);
        self.set_rto();
        self.backoff = 0;
    }

    /// `tcp_rtt_estimator()`; `m` is the measured RTT in ns.
    fn estimate(&mut self, m: u64, window_ended: bool, next: Window) {
        let rto_min = TCP_RTO_MIN.as_nanos();
        let mut srtt = self.srtt;
        if srtt != 0 {
            // i128: every term is below 2^53, no overflow anywhere.
            let mut err = i128::from(m) - i128::from(srtt >> 3); // error in the estimate
            srtt = (i128::from(srtt) + err).max(0) as u64; // srtt = 7/8 srtt + 1/8 m
            if err < 0 {
                // RTT fell: a finer gain (1/32) for mdev, the Eifel-like rule
                // that keeps the RTO from growing when the RTT drops.
                err = -err - i128::from(self.mdev >> 2);
                if err > 0 {
                    err >>= 3;
                }
            } else {
                err -= i128::from(self.mdev >> 2);
            }
            self.mdev = (i128::from(self.mdev) + err).max(0) as u64; // mdev = 3/4 mdev + 1/4 |err|
            if self.mdev > self.mdev_max {
                self.mdev_max = self.mdev;
                if self.mdev_max > self.rttvar {
                    self.rttvar = self.mdev_max;
                }
            }
            if window_ended {
                // Once per window: decay rttvar a quarter of the way towards
                // the window's largest mdev, then start a new window.
                if self.mdev_max < self.rttvar {
                    self.rttvar -= (self.rttvar - self.mdev_max) >> 2;
                }
                self.window = next;
                self.mdev_max = rto_min;
            }
        } else {
            // First measurement: srtt = m, mdev = m/2 (so RTO = 3 m).
            srtt = m << 3;
            self.mdev = m << 1;
            self.rttvar = self.mdev.max(rto_min);
            self.mdev_max = self.rttvar;
            self.window = next;
        }
        self.srtt = srtt.max(1);
    }

    /// `tcp_set_rto()`: `srtt + rttvar` (RFC 6298's `SRTT + 4 * RTTVAR`),
    /// bounded to `[TCP_RTO_MIN, TCP_RTO_MAX]` (`tcp_bound_rto()`; the floor
    /// already holds through `rttvar >= TCP_RTO_MIN`).
    fn set_rto(&mut self) {
        let rto = (self.srtt >> 3).saturating_add(self.rttvar);
        self.rto = Duration::from_nanos(rto.clamp(TCP_RTO_MIN.as_nanos(), TCP_RTO_MAX.as_nanos()));
    }

    /// `icsk_rto`: the RTO without backoff.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// `inet_csk_rto_backoff(icsk, TCP_RTO_MAX)`: the timer to arm,
    /// `min(rto << icsk_backoff, TCP_RTO_MAX)`.
    pub fn timeout(&self) -> Duration {
        let shift = self.backoff.min(MAX_BACKOFF_SHIFT);
        let t = self.rto.as_nanos().saturating_mul(1u64 << shift);
        Duration::from_nanos(t.min(TCP_RTO_MAX.as_nanos()))
    }

    /// The retransmission timer fired (`tcp_retransmit_timer()`:
    /// `icsk_backoff++`): the next [`timeout`](Self::timeout) doubles, up
    /// to `TCP_RTO_MAX`.
    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// `icsk_backoff = 0` (a valid RTT sample, or an ACK of new data when
    /// the caller decides so).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// `icsk_backoff`.
    pub fn backoffs(&self) -> u32 {
        self.backoff
    }

    /// `tcp_timeout_init` fallback: with no RTT sample after a retransmitted
    /// SYN, Linux sets the RTO to `TCP_TIMEOUT_FALLBACK` (3 s) once the
    /// connection is established (`tcp_init_transfer()`).
    pub fn fallback_after_syn_retransmit(&mut self) {
        if self.srtt == 0 {
            self.rto = TCP_TIMEOUT_FALLBACK;
        }
    }

    /// The smoothed RTT (`srtt_us >> 3`), `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt != 0).then(|| Duration::from_nanos(self.srtt >> 3))
    }

    /// The mean deviation (`mdev_us >> 2`).
    pub fn mdev(&self) -> Duration {
        Duration::from_nanos(self.mdev >> 2)
    }

    /// `mdev_max_us` (scaled ×4, as `rttvar`).
    pub fn mdev_max(&self) -> Duration {
        Duration::from_nanos(self.mdev_max)
    }

    /// `rttvar_us`: the variance term added to `srtt` for the RTO (×4).
    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }

    /// `tcp_min_rtt()`: the smallest RTT of the last [`TCP_MIN_RTT_WLEN`],
    /// `None` before the first sample.
    pub fn min_rtt(&self) -> Option<Duration> {
        let v = self.min_rtt.get();
        (v != u64::MAX).then_some(Duration::from_nanos(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
    fn ns(v: u64) -> Duration {
        Duration::from_nanos(v)
    }
    fn at_ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn initial_rto_is_one_second() {
        let r = RttEstimator::new();
        assert_eq!(r.rto(), TCP_TIMEOUT_INIT);
        assert_eq!(r.timeout(), ms(1000));
        assert_eq!(r.srtt(), None);
        assert_eq!(r.min_rtt(), None);
        assert_eq!(RttEstimator::default(), r);
    }

    #[test]
    fn first_sample_sets_srtt_and_half_mdev() {
        let mut r = RttEstimator::new();
        r.sample(ms(100), at_ms(0));
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.mdev(), ms(50));
        // rttvar = max(4 * mdev, TCP_RTO_MIN) = 200 ms; RTO = 3 * RTT.
        assert_eq!(r.rttvar(), ms(200));
        assert_eq!(r.rto(), ms(300));
        assert_eq!(r.min_rtt(), Some(ms(100)));

        let mut big = RttEstimator::new();
        big.sample(ms(1000), at_ms(0));
        assert_eq!(big.rttvar(), ms(2000));
        assert_eq!(big.rto(), ms(3000));
    }

    #[test]
    fn scripted_sequence_exact_values() {
        // Worked by hand from tcp_rtt_estimator (values in ms, scaled
        // srtt8 = 8 srtt, mdev4 = 4 mdev):
        let mut r = RttEstimator::new();
        let s = TcpSeqNumber;
        // 1) 100: srtt8 = 800, mdev4 = 200, rttvar = max(200, 200) = 200,
        //    mdev_max = 200, rtt_seq = 1000. RTO = 100 + 200 = 300.
        r.sample_seq(ms(100), at_ms(0), s(0), s(1000));
        assert_eq!((r.srtt(), r.rto()), (Some(ms(100)), ms(300)));
        // 2) 140, snd_una 500 (window open): err = 40, srtt8 = 840 (105);
        //    err = 40 - 50 = -10, mdev4 = 190 (no new mdev_max).
        //    RTO = 105 + 200 = 305.
        r.sample_seq(ms(140), at_ms(10), s(500), s(2000));
        assert_eq!(r.srtt(), Some(ms(105)));
        assert_eq!(r.mdev(), ns(47_500_000));
        assert_eq!(r.rttvar(), ms(200));
        assert_eq!(r.rto(), ms(305));
        // 3) 60, snd_una 1500 (after rtt_seq 1000: window ends):
        //    err = -45, srtt8 = 795 (99.375); |err| - 47.5 = -2.5 (not > 0,
        //    no >> 3), mdev4 = 187.5; mdev_max 200 == rttvar: no decay;
        //    new window: rtt_seq = 3000, mdev_max = 200.
        //    RTO = 99.375 + 200 = 299.375.
        r.sample_seq(ms(60), at_ms(20), s(1500), s(3000));
        assert_eq!(r.srtt(), Some(ns(99_375_000)));
        assert_eq!(r.mdev(), ns(46_875_000));
        assert_eq!(r.mdev_max(), ms(200));
        assert_eq!(r.rto(), ns(299_375_000));
        // 4) 500, snd_una 2500 (window open): err = 400.625,
        //    srtt8 = 1195.625 (149.453125); err - 46.875 = 353.75,
        //    mdev4 = 541.25 > mdev_max: mdev_max = rttvar = 541.25.
        //    RTO = 149.453125 + 541.25 = 690.703125.
        r.sample_seq(ms(500), at_ms(30), s(2500), s(4000));
        assert_eq!(r.srtt(), Some(ns(149_453_125)));
        assert_eq!(r.rttvar(), ns(541_250_000));
        assert_eq!(r.mdev_max(), ns(541_250_000));
        assert_eq!(r.rto(), ns(690_703_125));
        // 5) 150, snd_una 3500 (after 3000: window ends):
        //    err = 0.546875 >= 0, srtt8 = 1196.171875 (149.521484375);
        //    err - 135.3125 = -134.765625, mdev4 = 406.484375;
        //    window end: rttvar -= (541.25 - 541.25) >> 2 = 0, mdev_max = 200.
        //    RTO = 149.521484375 + 541.25 = 690.771484375 (ns-rounded).
        r.sample_seq(ms(150), at_ms(40), s(3500), s(5000));
        assert_eq!(r.srtt(), Some(ns(149_521_484)));
        assert_eq!(r.rttvar(), ns(541_250_000));
        assert_eq!(r.mdev_max(), ms(200));
        assert_eq!(r.rto(), ns(149_521_484 + 541_250_000));
        // 6) 150, snd_una 5500 (window ends again), in ns:
        //    err = 150_000_000 - 149_521_484 = 478_516;
        //    err - (406_484_375 >> 2) = -101_142_577, mdev4 = 305_341_798
        //    > mdev_max 200 ms: mdev_max = 305_341_798 (< rttvar: kept);
        //    window end: rttvar decays a quarter of the way to mdev_max:
        //    541_250_000 - (235_908_202 >> 2) = 482_272_950.
        r.sample_seq(ms(150), at_ms(50), s(5500), s(6000));
        assert_eq!(r.rttvar(), ns(482_272_950));
        assert_eq!(r.mdev_max(), ms(200));
        assert_eq!(r.min_rtt(), Some(ms(60)));
    }

    #[test]
    fn converges_to_steady_rtt() {
        let mut r = RttEstimator::new();
        let mut now = at_ms(0);
        r.sample(ms(300), now);
        for _ in 0..200 {
            now += ms(50);
            r.sample(ms(50), now);
        }
        let srtt = r.srtt().unwrap_or(Duration::MAX);
        assert!(
            srtt.as_nanos().abs_diff(ms(50).as_nanos()) < 1_000_000,
            "{srtt}"
        );
        // Variance decayed to the floor: RTO = srtt + TCP_RTO_MIN.
        assert!(r.rttvar().as_nanos().abs_diff(ms(200).as_nanos()) < 1_000_000);
        assert!(r.rto().as_nanos().abs_diff(ms(250).as_nanos()) < 2_000_000);
        assert_eq!(r.min_rtt(), Some(ms(50)));
    }

    #[test]
    fn rto_floor_for_tiny_rtts() {
        let mut r = RttEstimator::new();
        let mut now = at_ms(0);
        for _ in 0..100 {
            r.sample(Duration::from_micros(10), now);
            now += Duration::from_micros(10);
        }
        assert!(r.rto() >= TCP_RTO_MIN);
        assert!(r.rto() < ms(201));
        // A zero sample neither panics nor drops below the floor.
        r.sample(Duration::ZERO, now);
        assert!(r.rto() >= TCP_RTO_MIN);
        assert_eq!(r.min_rtt(), Some(ns(1)));
    }

    #[test]
    fn rto_capped_at_120s() {
        let mut r = RttEstimator::new();
        r.sample(Duration::from_secs(100), at_ms(0));
        assert_eq!(r.rto(), TCP_RTO_MAX);
        r.sample(Duration::MAX, at_ms(1));
        assert_eq!(r.rto(), TCP_RTO_MAX);
        r.backoff();
        assert_eq!(r.timeout(), TCP_RTO_MAX);
    }

    #[test]
    fn backoff_doubles_up_to_120s() {
        let mut r = RttEstimator::new();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(r.timeout().as_millis() / 1000);
            r.backoff();
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
        for _ in 0..100 {
            r.backoff();
        }
        assert_eq!(r.timeout(), TCP_RTO_MAX);
        assert_eq!(r.rto(), TCP_TIMEOUT_INIT);
        r.reset_backoff();
        assert_eq!(r.backoffs(), 0);
        assert_eq!(r.timeout(), ms(1000));
    }

    #[test]
    fn syn_retries_total_127s() {
        // connect() to a black hole: SYN at 0 s, retries at 1, 3, 7, 15, 31,
        // 63 s, ETIMEDOUT at 127 s (tcp_syn_retries = 6).
        let mut r = RttEstimator::new();
        let mut now = Duration::ZERO;
        let mut sends = Vec::new();
        for _ in 0..=TCP_SYN_RETRIES {
            sends.push(now.as_millis() / 1000);
            now = now + r.timeout();
            r.backoff();
        }
        assert_eq!(sends, [0, 1, 3, 7, 15, 31, 63]);
        assert_eq!(now, Duration::from_secs(127));
    }

    #[test]
    fn sample_clears_backoff_and_fallback() {
        let mut r = RttEstimator::new();
        r.backoff();
        r.fallback_after_syn_retransmit();
        assert_eq!(r.rto(), TCP_TIMEOUT_FALLBACK);
        assert_eq!(r.timeout(), ms(6000));
        r.sample(ms(100), at_ms(0));
        assert_eq!(r.backoffs(), 0);
        assert_eq!(r.timeout(), ms(300));
        r.fallback_after_syn_retransmit();
        assert_eq!(r.rto(), ms(300));
    }

    #[test]
    fn variance_responds_to_rtt_jump() {
        let mut r = RttEstimator::new();
        let mut now = at_ms(0);
        for _ in 0..50 {
            r.sample(ms(100), now);
            now += ms(100);
        }
        let before = r.rto();
        // A jump up raises mdev at once (gain 1/4), and rttvar with it.
        r.sample(ms(400), now);
        let after = r.rto();
        assert!(r.mdev() > ms(60), "{}", r.mdev());
        // rttvar = 4 mdev = 300 ms: RTO = 137.5 + 300 ms.
        assert!(
            after.as_nanos().abs_diff(437_500_000) < 1_000,
            "{before} -> {after}"
        );
        assert!(after > before + ms(100));
        // A drop back changes mdev only with gain 1/32: the RTO does not
        // grow from a decreasing RTT.
        now += ms(100);
        r.sample(ms(100), now);
        assert!(r.rto() <= after);
        // And settles again.
        for _ in 0..200 {
            now += ms(100);
            r.sample(ms(100), now);
        }
        assert!(r.rto().as_nanos().abs_diff(ms(300).as_nanos()) < 5_000_000);
    }

    #[test]
    fn min_rtt_window_expires() {
        let mut r = RttEstimator::new();
        r.sample(ms(10), Instant::from_secs(0));
        r.sample(ms(50), Instant::from_secs(100));
        assert_eq!(r.min_rtt(), Some(ms(10)));
        r.sample(ms(40), Instant::from_secs(200));
        assert_eq!(r.min_rtt(), Some(ms(10)));
        // 301 s after the 10 ms sample it has left the window.
        r.sample(ms(60), Instant::from_secs(301));
        assert_eq!(r.min_rtt(), Some(ms(40)));
        r.sample(ms(70), Instant::from_secs(900));
        assert_eq!(r.min_rtt(), Some(ms(70)));
    }
}
