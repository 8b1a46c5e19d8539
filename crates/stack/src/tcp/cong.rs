//! TCP congestion control: Linux's `struct tcp_congestion_ops`
//! (`include/net/tcp.h`, `net/ipv4/tcp_cong.c`) with Reno (`tcp_cong.c`:
//! `tcp_reno_cong_avoid`, `tcp_reno_ssthresh`, `tcp_slow_start`,
//! `tcp_cong_avoid_ai`) and CUBIC with HyStart (`net/ipv4/tcp_cubic.c`, the
//! default since Linux 2.6.19).
//!
//! This module decides the congestion window that `tcp_write_xmit` honours
//! (seed egress step 3: `tcp_cwnd_test`). The socket owns a [`CcState`] (the
//! congestion fields of `struct tcp_sock`) and a `Box<dyn CongestionControl>`
//! (the `icsk_ca_ops` plus its private `icsk_ca_priv` area) and calls the ops
//! where Linux does:
//!
//! - [`CongestionControl::init`] when the connection is established
//!   (`tcp_init_congestion_control`);
//! - [`CongestionControl::pkts_acked`] from `tcp_clean_rtx_queue`, after
//!   `snd_una` has advanced, with the ACK's RTT sample;
//! - [`CongestionControl::cong_avoid`] from `tcp_cong_avoid` when the ACK
//!   may grow the window (CA state Open);
//! - [`CongestionControl::ssthresh`] on entering Recovery / Loss / CWR;
//! - [`CongestionControl::set_state`] from `tcp_set_ca_state`;
//! - [`CongestionControl::cwnd_event`] from `tcp_ca_event`;
//! - [`CongestionControl::undo_cwnd`] from `tcp_undo_cwnd_reduction`.
//!
//! Windows are in segments, as `snd_cwnd` is. Sans-IO: every time comes in as
//! an [`Instant`]; the ops that Linux calls without a time read
//! [`CcState::tcp_mstamp`], the socket's clock for the current event
//! (`tp->tcp_mstamp`, refreshed by `tcp_mstamp_refresh`). Linux's jiffies
//! (used by CUBIC's epoch bookkeeping) are taken as `HZ = 1000`.
//!
//! Nothing here allocates after construction; all arithmetic saturates.

use crate::time::{Duration, Instant};

/// Initial congestion window, segments (`TCP_INIT_CWND`, RFC 6928).
pub const TCP_INIT_CWND: u32 = 10;
/// `TCP_INFINITE_SSTHRESH`: the initial `snd_ssthresh`.
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;
/// `net.ipv4.tcp_congestion_control` default.
pub const DEFAULT_CC: &str = "cubic";

/// Names [`by_name`] knows (`net.ipv4.tcp_available_congestion_control`).
pub const AVAILABLE_CC: &[&str] = &["reno", "cubic"];

/// A new instance of the congestion control called `name`
/// (`tcp_ca_find` + allocation of `icsk_ca_priv`). Call
/// [`CongestionControl::init`] before use.
pub fn by_name(name: &str) -> Option<Box<dyn CongestionControl>> {
    match name {
        "cubic" => Some(Box::new(Cubic::new())),
        "reno" => Some(Box::new(Reno)),
        _ => None,
    }
}

/// `enum tcp_ca_state` (`icsk_ca_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaState {
    /// `TCP_CA_Open`: nothing bad seen.
    #[default]
    Open,
    /// `TCP_CA_Disorder`: dupACKs / SACK holes, no loss decided yet.
    Disorder,
    /// `TCP_CA_CWR`: window reduced for ECN / local congestion.
    Cwr,
    /// `TCP_CA_Recovery`: fast retransmit.
    Recovery,
    /// `TCP_CA_Loss`: RTO.
    Loss,
}

/// `enum tcp_ca_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaEvent {
    /// `CA_EVENT_TX_START`: first transmit when no packets in flight.
    /// [`CcState::lsndtime`] must still hold the previous send time.
    TxStart,
    /// `CA_EVENT_CWND_RESTART`: congestion window restart after idle.
    CwndRestart,
    /// `CA_EVENT_COMPLETE_CWR`: end of congestion window reduction.
    CompleteCwr,
    /// `CA_EVENT_LOSS`: loss timeout.
    Loss,
    /// `CA_EVENT_ECN_NO_CE`: ECT set, but not CE marked.
    EcnNoCe,
    /// `CA_EVENT_ECN_IS_CE`: received CE marked IP packet.
    EcnIsCe,
}

/// The congestion-control fields of `struct tcp_sock` the ops read and
/// write. Owned by the socket, passed to every op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcState {
    /// `snd_cwnd`, segments.
    pub cwnd: u32,
    /// `snd_ssthresh`, segments.
    pub ssthresh: u32,
    /// `snd_cwnd_cnt`: ACKed segments counted towards the next +1 in
    /// congestion avoidance.
    pub cwnd_cnt: u32,
    /// `snd_cwnd_clamp`: upper bound of `cwnd`.
    pub cwnd_clamp: u32,
    /// `prior_cwnd`: cwnd when the last reduction started (for undo).
    pub prior_cwnd: u32,
    /// `mss_cache`, bytes.
    pub mss: u32,
    /// Smoothed RTT, if measured (informational for Reno/CUBIC).
    pub srtt: Option<Duration>,
    /// Windowed minimum RTT (`tcp_min_rtt`), if measured.
    pub min_rtt: Option<Duration>,
    /// `tcp_packets_in_flight`, segments.
    pub in_flight: u32,
    /// `delivered`: segments delivered so far.
    pub delivered: u64,
    /// `is_cwnd_limited`: the last send was limited by cwnd, not by the
    /// application or the receive window.
    pub is_cwnd_limited: bool,
    /// `max_packets_out`: most segments in flight in the last window.
    pub max_packets_out: u32,
    /// `snd_una` (sequence number; HyStart rounds).
    pub snd_una: u32,
    /// `snd_nxt` (sequence number; HyStart rounds).
    pub snd_nxt: u32,
    /// `tcp_mstamp`: time of the event being processed.
    pub tcp_mstamp: Instant,
    /// `lsndtime`: time of the last data transmission.
    pub lsndtime: Instant,
    /// `sk_pacing_rate`, bytes per second (0: unknown).
    pub pacing_rate: u64,
    /// `sk_pacing_status != SK_PACING_NONE`: the stack paces (fq or
    /// internal pacing).
    pub pacing: bool,
    /// `icsk_ca_state`; maintained by the socket.
    pub ca_state: CaState,
    /// CUBIC's `hystart_detect` module parameter: which HyStart detectors
    /// run ([`HYSTART_ACK_TRAIN`] | [`HYSTART_DELAY`]); set from the
    /// stack's settings when congestion control starts.
    pub hystart_detect: u8,
}

/// `HYSTART_ACK_TRAIN`.
pub const HYSTART_ACK_TRAIN: u8 = 1;
/// `HYSTART_DELAY`.
pub const HYSTART_DELAY: u8 = 2;

impl CcState {
    /// Fresh state as `tcp_init_sock` leaves it: cwnd [`TCP_INIT_CWND`],
    /// ssthresh [`TCP_INFINITE_SSTHRESH`], no clamp.
    pub fn new(mss: u32) -> Self {
        CcState {
            cwnd: TCP_INIT_CWND,
            ssthresh: TCP_INFINITE_SSTHRESH,
            cwnd_cnt: 0,
            cwnd_clamp: u32::MAX,
            prior_cwnd: 0,
            mss,
            srtt: None,
            min_rtt: None,
            in_flight: 0,
            delivered: 0,
            is_cwnd_limited: false,
            max_packets_out: 0,
            snd_una: 0,
            snd_nxt: 0,
            tcp_mstamp: Instant::ZERO,
            lsndtime: Instant::ZERO,
            pacing_rate: 0,
            pacing: false,
            ca_state: CaState::Open,
            hystart_detect: HYSTART_ACK_TRAIN | HYSTART_DELAY,
        }
    }

    /// `tcp_in_slow_start`.
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// `tcp_is_cwnd_limited`: only then may the window grow.
    pub fn cwnd_limited(&self) -> bool {
        if self.is_cwnd_limited {
            return true;
        }
        // In slow start, let cwnd grow to twice what was in flight.
        self.in_slow_start() && (self.cwnd as u64) < 2 * self.max_packets_out as u64
    }

    /// `tcp_slow_start`: grow cwnd by `acked` up to ssthresh; returns the
    /// ACKed segments left over for congestion avoidance.
    pub fn slow_start(&mut self, acked: u32) -> u32 {
        let cwnd = self.cwnd.saturating_add(acked).min(self.ssthresh);
        let used = cwnd.saturating_sub(self.cwnd);
        self.cwnd = cwnd.max(self.cwnd).min(self.cwnd_clamp);
        acked.saturating_sub(used)
    }

    /// The common start of every `cong_avoid`: nothing unless cwnd is the
    /// limit (`tcp_is_cwnd_limited`), then slow start; the ACKed segments
    /// left for congestion avoidance, or `None` if none are.
    pub fn cong_avoid_start(&mut self, acked: u32) -> Option<u32> {
        if !self.cwnd_limited() {
            return None;
        }
        let acked = if self.in_slow_start() {
            self.slow_start(acked)
        } else {
            acked
        };
        (acked > 0).then_some(acked)
    }

    /// `tcp_cong_avoid_ai`: cwnd += 1 for every `w` segments ACKed.
    pub fn cong_avoid_ai(&mut self, w: u32, acked: u32) {
        let w = w.max(1);
        // Credits accumulated at a higher w are applied gently.
        if self.cwnd_cnt >= w {
            self.cwnd_cnt = 0;
            self.cwnd = self.cwnd.saturating_add(1);
        }
        self.cwnd_cnt = self.cwnd_cnt.saturating_add(acked);
        if self.cwnd_cnt >= w {
            let delta = self.cwnd_cnt / w;
            self.cwnd_cnt -= delta * w;
            self.cwnd = self.cwnd.saturating_add(delta);
        }
        self.cwnd = self.cwnd.min(self.cwnd_clamp);
    }
}

impl Default for CcState {
    fn default() -> Self {
        CcState::new(536)
    }
}

/// `struct tcp_congestion_ops`.
pub trait CongestionControl: Send + core::fmt::Debug {
    /// `name`, as in `net.ipv4.tcp_congestion_control`.
    fn name(&self) -> &'static str;
    /// `init`: (re)initialise private state for a new connection.
    fn init(&mut self, _st: &mut CcState) {}
    /// `ssthresh`: the slow start threshold after a loss / reduction.
    fn ssthresh(&mut self, st: &CcState) -> u32;
    /// `cong_avoid`: grow `st.cwnd` for `acked` newly ACKed segments.
    fn cong_avoid(&mut self, st: &mut CcState, now: Instant, acked: u32);
    /// `set_state`: called before `icsk_ca_state` changes to `new`.
    fn set_state(&mut self, _st: &mut CcState, _new: CaState) {}
    /// `cwnd_event`: a congestion event (time: `st.tcp_mstamp`).
    fn cwnd_event(&mut self, _st: &mut CcState, _ev: CaEvent) {}
    /// `pkts_acked`: `acked` segments left the retransmit queue, with an RTT
    /// sample if one was taken (`struct ack_sample`).
    fn pkts_acked(
        &mut self,
        _st: &mut CcState,
        _now: Instant,
        _acked: u32,
        _rtt: Option<Duration>,
    ) {
    }
    /// `undo_cwnd`: the cwnd to restore when a reduction proves spurious.
    fn undo_cwnd(&mut self, st: &CcState) -> u32 {
        reno_undo_cwnd(st)
    }
}

/// `tcp_reno_undo_cwnd`.
pub fn reno_undo_cwnd(st: &CcState) -> u32 {
    st.cwnd.max(st.prior_cwnd)
}

/// `tcp_reno`: slow start, then +1 segment per RTT; halve on loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reno;

impl CongestionControl for Reno {
    fn name(&self) -> &'static str {
        "reno"
    }

    /// `tcp_reno_ssthresh`.
    fn ssthresh(&mut self, st: &CcState) -> u32 {
        (st.cwnd >> 1).max(2)
    }

    /// `tcp_reno_cong_avoid`.
    fn cong_avoid(&mut self, st: &mut CcState, _now: Instant, acked: u32) {
        let Some(acked) = st.cong_avoid_start(acked) else {
            return;
        };
        let w = st.cwnd;
        st.cong_avoid_ai(w, acked);
    }
}

// ---- CUBIC ---------------------------------------------------------------

/// `BICTCP_BETA_SCALE`.
const BETA_SCALE: u64 = 1024;
/// `beta`: multiplicative decrease 717/1024 ≈ 0.7.
const BETA: u64 = 717;
/// `bic_scale`: C = bic_scale * 10 / 1024 ≈ 0.4.
const BIC_SCALE: u64 = 41;
/// `BICTCP_HZ`: CUBIC time is kept in units of 2^-10 s.
const BICTCP_HZ: u32 = 10;
/// `cube_rtt_scale` = 1024 * C.
const CUBE_RTT_SCALE: u64 = BIC_SCALE * 10;
/// `cube_factor` = 2^(10 + 3 * BICTCP_HZ) / (bic_scale * 10): turns a window
/// distance into K^3 in 2^-30 s^3 units.
const CUBE_FACTOR: u64 = (1u64 << (10 + 3 * BICTCP_HZ)) / CUBE_RTT_SCALE;
/// `beta_scale` = 8 * (1024 + beta) / 3 / (1024 - beta): ACKs (x cwnd / 8)
/// per +1 of the Reno-friendly estimate.
const FRIENDLY_SCALE: u64 = 8 * (BETA_SCALE + BETA) / 3 / (BETA_SCALE - BETA);
/// `fast_convergence`.
const FAST_CONVERGENCE: bool = true;
/// `tcp_friendliness`.
const TCP_FRIENDLINESS: bool = true;
/// `hystart`.
const HYSTART: bool = true;
/// `hystart_low_window`.
const HYSTART_LOW_WINDOW: u32 = 16;
/// `hystart_ack_delta_us`.
const HYSTART_ACK_DELTA: Duration = Duration::from_micros(2000);
/// `HYSTART_MIN_SAMPLES`.
const HYSTART_MIN_SAMPLES: u8 = 8;
/// `HYSTART_DELAY_MIN` / `HYSTART_DELAY_MAX`.
const HYSTART_DELAY_MIN: Duration = Duration::from_millis(4);
const HYSTART_DELAY_MAX: Duration = Duration::from_millis(16);
/// `GSO_LEGACY_MAX_SIZE` (for `hystart_ack_delay`).
const GSO_MAX_SIZE: u64 = 65536;
/// Jiffy length (HZ = 1000).
const JIFFY_NS: u64 = 1_000_000;

/// Which HyStart detector ended slow start
/// (`TCPHystartTrainDetect` / `TCPHystartDelayDetect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HystartExit {
    AckTrain,
    Delay,
}

/// `struct bictcp` + the `cubictcp` ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cubic {
    /// ACKs per +1 cwnd (`cnt`).
    cnt: u32,
    /// W_max: cwnd before the last reduction.
    last_max_cwnd: u32,
    /// cwnd and jiffy of the last `cnt` computation.
    last_cwnd: u32,
    last_time: u64,
    /// Origin point of the cubic curve (W_max of this epoch).
    origin_point: u32,
    /// K, in 2^-10 s.
    k: u64,
    /// Minimum delay seen (`delay_min`); ZERO: none yet.
    delay_min: Duration,
    /// Start of the current congestion-avoidance epoch.
    epoch_start: Option<Instant>,
    /// ACKs counted for the Reno-friendly estimate.
    ack_cnt: u64,
    /// Reno-friendly window estimate (`tcp_cwnd`).
    tcp_cwnd: u32,
    // HyStart.
    sample_cnt: u8,
    found: Option<HystartExit>,
    round_start: Instant,
    end_seq: u32,
    last_ack: Instant,
    curr_rtt: Duration,
}

impl Default for Cubic {
    fn default() -> Self {
        Cubic::new()
    }
}

/// Floor of the cube root of `x` (bitwise, exact).
fn cube_root(x: u64) -> u64 {
    let mut rem = x;
    let mut y: u64 = 0;
    let mut shift: i32 = 63;
    while shift >= 0 {
        y <<= 1;
        // (y+1)^3 - y^3 for the candidate bit; y < 2^22 so no overflow.
        let b = 3 * y * (y + 1) + 1;
        if (rem >> shift) >= b {
            rem -= b << shift;
            y += 1;
        }
        shift -= 3;
    }
    y
}

/// `(s32)(a - b) > 0` on sequence numbers.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn jiffies(t: Instant) -> u64 {
    t.as_nanos() / JIFFY_NS
}

impl Cubic {
    pub fn new() -> Self {
        Cubic {
            cnt: 0,
            last_max_cwnd: 0,
            last_cwnd: 0,
            last_time: 0,
            origin_point: 0,
            k: 0,
            delay_min: Duration::ZERO,
            epoch_start: None,
            ack_cnt: 0,
            tcp_cwnd: 0,
            sample_cnt: 0,
            found: None,
            round_start: Instant::ZERO,
            end_seq: 0,
            last_ack: Instant::ZERO,
            curr_rtt: Duration::MAX,
        }
    }

    /// W_max (`last_max_cwnd`), segments.
    pub fn last_max_cwnd(&self) -> u32 {
        self.last_max_cwnd
    }

    /// K of the current epoch (time to regain W_max).
    pub fn k(&self) -> Duration {
        Duration::from_nanos(((self.k as u128 * 1_000_000_000) >> BICTCP_HZ) as u64)
    }

    /// `delay_min`, the smallest RTT sample seen.
    pub fn delay_min(&self) -> Option<Duration> {
        (self.delay_min != Duration::ZERO).then_some(self.delay_min)
    }

    /// Whether (and how) HyStart ended slow start.
    pub fn hystart_found(&self) -> Option<HystartExit> {
        self.found
    }

    /// `bictcp_reset`.
    fn reset(&mut self) {
        *self = Cubic::new();
    }

    /// `bictcp_hystart_reset`: start a new HyStart round.
    fn hystart_reset(&mut self, st: &CcState, now: Instant) {
        self.round_start = now;
        self.last_ack = now;
        self.end_seq = st.snd_nxt;
        self.curr_rtt = Duration::MAX;
        self.sample_cnt = 0;
    }

    /// `bictcp_update`: recompute `cnt` for the current cwnd.
    fn update(&mut self, cwnd: u32, acked: u32, now: Instant) {
        self.ack_cnt = self.ack_cnt.saturating_add(acked as u64);
        let tick = jiffies(now);

        if self.last_cwnd == cwnd && tick.saturating_sub(self.last_time) <= 1000 / 32 {
            return;
        }

        // cnt is recomputed at most once per jiffy; every reduction clears
        // epoch_start, which forces a recomputation.
        if self.epoch_start.is_none() || tick != self.last_time {
            self.last_cwnd = cwnd;
            self.last_time = tick;
            let epoch = match self.epoch_start {
                Some(e) => e,
                None => {
                    self.epoch_start = Some(now);
                    self.ack_cnt = acked as u64;
                    self.tcp_cwnd = cwnd;
                    if self.last_max_cwnd <= cwnd {
                        self.k = 0;
                        self.origin_point = cwnd;
                    } else {
                        let dist = (self.last_max_cwnd - cwnd) as u64;
                        self.k = cube_root(CUBE_FACTOR.saturating_mul(dist));
                        self.origin_point = self.last_max_cwnd;
                    }
                    now
                }
            };

            // t: time since the epoch began plus one minimum RTT (the target
            // is where the curve will be an RTT from now), in 2^-10 s.
            let t = (now - epoch) + self.delay_min;
            let t = ((t.as_nanos() as u128) << BICTCP_HZ) / 1_000_000_000;
            let t = t as u64;
            let offs = t.abs_diff(self.k).min(1 << 32);
            // C * offs^3, back to segments: >> (10 + 3 * BICTCP_HZ).
            let delta = (CUBE_RTT_SCALE as u128 * (offs as u128).pow(3)) >> (10 + 3 * BICTCP_HZ);
            let origin = self.origin_point as u128;
            let target = if t < self.k {
                origin.saturating_sub(delta)
            } else {
                origin.saturating_add(delta)
            };
            let target = target.min(u32::MAX as u128) as u32;

            self.cnt = if target > cwnd {
                cwnd / (target - cwnd)
            } else {
                // Below or at the target: grow very slowly.
                cwnd.saturating_mul(100)
            };
            // No W_max yet: do not be more timid than +5% per RTT.
            if self.last_max_cwnd == 0 && self.cnt > 20 {
                self.cnt = 20;
            }
        }

        if TCP_FRIENDLINESS {
            // Reno with CUBIC's beta would add 3(1-b)/(1+b) per RTT, i.e.
            // +1 per cwnd * FRIENDLY_SCALE / 8 ACKs.
            let per = ((cwnd as u64 * FRIENDLY_SCALE) >> 3).max(1);
            if self.ack_cnt > per {
                let n = (self.ack_cnt - 1) / per;
                self.ack_cnt -= n * per;
                self.tcp_cwnd = self.tcp_cwnd.saturating_add(n.min(u32::MAX as u64) as u32);
            }
            if self.tcp_cwnd > cwnd {
                let max_cnt = cwnd / (self.tcp_cwnd - cwnd);
                self.cnt = self.cnt.min(max_cnt);
            }
        }

        // At most +1 per 2 ACKs (1.5x per RTT).
        self.cnt = self.cnt.max(2);
    }

    /// `hystart_ack_delay`: ACKs may be compressed by up to ~4 GSO packets
    /// at the pacing rate, at most 1 ms.
    fn hystart_ack_delay(st: &CcState) -> Duration {
        if st.pacing_rate == 0 {
            return Duration::ZERO;
        }
        let us = (GSO_MAX_SIZE * 4 * 1_000_000) / st.pacing_rate;
        Duration::from_micros(us.min(1000))
    }

    /// `hystart_update`.
    fn hystart_update(&mut self, st: &mut CcState, now: Instant, delay: Duration) {
        if seq_after(st.snd_una, self.end_seq) {
            self.hystart_reset(st, now);
        }
        if st.cwnd < HYSTART_LOW_WINDOW {
            return;
        }

        // ACK train: closely spaced ACKs spanning half the minimum RTT mean
        // the pipe is full.
        if st.hystart_detect & HYSTART_ACK_TRAIN != 0 && now - self.last_ack <= HYSTART_ACK_DELTA {
            self.last_ack = now;
            let mut threshold = self.delay_min + Self::hystart_ack_delay(st);
            if !st.pacing {
                threshold = Duration::from_nanos(threshold.as_nanos() / 2);
            }
            if now - self.round_start > threshold {
                self.found.get_or_insert(HystartExit::AckTrain);
                st.ssthresh = st.cwnd;
            }
        }

        // Delay increase: the round's minimum RTT rose by an eighth of the
        // base RTT (clamped to 4..16 ms) after enough samples.
        if st.hystart_detect & HYSTART_DELAY == 0 {
            return;
        }
        if self.curr_rtt > delay {
            self.curr_rtt = delay;
        }
        if self.sample_cnt < HYSTART_MIN_SAMPLES {
            self.sample_cnt += 1;
        } else {
            let thresh = Duration::from_nanos(self.delay_min.as_nanos() >> 3);
            let thresh = thresh.clamp(HYSTART_DELAY_MIN, HYSTART_DELAY_MAX);
            if self.curr_rtt > self.delay_min + thresh {
                self.found.get_or_insert(HystartExit::Delay);
                st.ssthresh = st.cwnd;
            }
        }
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    /// `cubictcp_init`.
    fn init(&mut self, st: &mut CcState) {
        self.reset();
        if HYSTART {
            self.hystart_reset(st, st.tcp_mstamp);
        }
    }

    /// `cubictcp_recalc_ssthresh`: remember W_max (lowered further by fast
    /// convergence when we lost below the previous W_max) and back off to
    /// beta * cwnd.
    fn ssthresh(&mut self, st: &CcState) -> u32 {
        self.epoch_start = None;
        let cwnd = st.cwnd as u64;
        self.last_max_cwnd = if FAST_CONVERGENCE && st.cwnd < self.last_max_cwnd {
            (cwnd * (BETA_SCALE + BETA) / (2 * BETA_SCALE)) as u32
        } else {
            st.cwnd
        };
        ((cwnd * BETA / BETA_SCALE) as u32).max(2)
    }

    /// `cubictcp_cong_avoid`.
    fn cong_avoid(&mut self, st: &mut CcState, now: Instant, acked: u32) {
        let Some(acked) = st.cong_avoid_start(acked) else {
            return;
        };
        self.update(st.cwnd, acked, now);
        let w = self.cnt;
        st.cong_avoid_ai(w, acked);
    }

    /// `cubictcp_state`: an RTO forgets everything.
    fn set_state(&mut self, st: &mut CcState, new: CaState) {
        if new == CaState::Loss {
            self.reset();
            self.hystart_reset(st, st.tcp_mstamp);
        }
    }

    /// `cubictcp_cwnd_event`: after an application-limited idle period,
    /// shift the epoch so the curve resumes where it left off.
    fn cwnd_event(&mut self, st: &mut CcState, ev: CaEvent) {
        if ev != CaEvent::TxStart {
            return;
        }
        let now = st.tcp_mstamp;
        if let Some(epoch) = self.epoch_start {
            let idle = now - st.lsndtime;
            if idle > Duration::ZERO {
                self.epoch_start = Some((epoch + idle).min(now));
            }
        }
    }

    /// `cubictcp_acked`: track the minimum delay and run HyStart.
    fn pkts_acked(&mut self, st: &mut CcState, now: Instant, _acked: u32, rtt: Option<Duration>) {
        let Some(rtt) = rtt else { return };
        // Samples right after a reduction are distorted by the recovery.
        if let Some(epoch) = self.epoch_start {
            if now - epoch < Duration::from_secs(1) {
                return;
            }
        }
        let delay = rtt.max(Duration::from_micros(1));
        if self.delay_min == Duration::ZERO || self.delay_min > delay {
            self.delay_min = delay;
        }
        if HYSTART && self.found.is_none() && st.in_slow_start() {
            self.hystart_update(st, now, delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: f64 = (CUBE_RTT_SCALE as f64) / 1024.0;
    const B: f64 = BETA as f64 / 1024.0;

    /// ACK-clock model: each round, the segments in flight at its start are
    /// ACKed one by one, `gap` apart, the first one at `now`; the next round
    /// starts max(rtt, n * gap) later. After each ACK the sender fills cwnd.
    struct Sim {
        cc: Box<dyn CongestionControl>,
        st: CcState,
        now: Instant,
    }

    impl Sim {
        fn new(name: &str) -> Self {
            let mut st = CcState::new(1448);
            st.is_cwnd_limited = true;
            st.snd_nxt = st.cwnd;
            let mut cc = by_name(name).unwrap();
            cc.init(&mut st);
            Sim {
                cc,
                st,
                now: Instant::from_secs(1),
            }
        }

        fn round_with(&mut self, gap: Duration, rtt_of: impl Fn(u32) -> Duration) {
            let n = self.st.cwnd;
            let rtt = rtt_of(n);
            let start = self.now;
            for i in 0..n {
                let t = start + Duration::from_nanos(gap.as_nanos() * i as u64);
                self.st.tcp_mstamp = t;
                self.st.snd_una = self.st.snd_una.wrapping_add(1);
                self.cc.pkts_acked(&mut self.st, t, 1, Some(rtt));
                self.cc.cong_avoid(&mut self.st, t, 1);
                self.st.snd_nxt = self.st.snd_una.wrapping_add(self.st.cwnd);
            }
            let span = Duration::from_nanos(gap.as_nanos() * n as u64);
            self.now = start + rtt.max(span);
        }

        fn round(&mut self, rtt: Duration) {
            self.round_with(Duration::ZERO, |_| rtt);
        }

        /// Fast-retransmit style loss: cwnd drops to the new ssthresh.
        fn loss(&mut self) {
            self.st.tcp_mstamp = self.now;
            self.cc.set_state(&mut self.st, CaState::Recovery);
            let ss = self.cc.ssthresh(&self.st);
            self.st.prior_cwnd = self.st.cwnd;
            self.st.ssthresh = ss;
            self.st.cwnd = ss;
            self.st.cwnd_cnt = 0;
            self.cc.set_state(&mut self.st, CaState::Open);
        }
    }

    #[test]
    fn registry() {
        assert_eq!(by_name(DEFAULT_CC).unwrap().name(), "cubic");
        assert_eq!(by_name("reno").unwrap().name(), "reno");
        assert!(by_name("bbr").is_none());
        for n in AVAILABLE_CC {
            assert_eq!(by_name(n).unwrap().name(), *n);
        }
        let st = CcState::default();
        assert_eq!(st.cwnd, TCP_INIT_CWND);
        assert!(st.in_slow_start());
    }

    #[test]
    fn constants_match_linux() {
        assert_eq!(FRIENDLY_SCALE, 15);
        assert_eq!(CUBE_RTT_SCALE, 410);
        assert_eq!(CUBE_FACTOR, (1u64 << 40) / 410);
    }

    #[test]
    fn cube_root_exact() {
        for x in [0u64, 1, 7, 8, 26, 27, 28, 1000, 999_999, 1 << 40, u64::MAX] {
            let r = cube_root(x) as u128;
            assert!(r * r * r <= x as u128, "{x}");
            assert!((r + 1).pow(3) > x as u128, "{x}");
        }
        assert_eq!(cube_root(u64::MAX), 2_642_245);
    }

    #[test]
    fn reno_slow_start_then_linear() {
        let mut s = Sim::new("reno");
        s.st.ssthresh = 80;
        let rtt = Duration::from_millis(50);
        let mut seen = vec![s.st.cwnd];
        for _ in 0..6 {
            s.round(rtt);
            seen.push(s.st.cwnd);
        }
        assert_eq!(seen, vec![10, 20, 40, 80, 81, 82, 83]);
        // Loss halves.
        assert_eq!(s.cc.ssthresh(&s.st), 41);
        s.loss();
        assert_eq!(s.st.cwnd, 41);
        s.round(rtt);
        assert_eq!(s.st.cwnd, 42);
        // Floor of 2; undo restores the prior window.
        s.st.cwnd = 3;
        assert_eq!(s.cc.ssthresh(&s.st), 2);
        s.st.prior_cwnd = 83;
        assert_eq!(s.cc.undo_cwnd(&s.st), 83);
    }

    #[test]
    fn reno_not_cwnd_limited_does_not_grow() {
        let mut s = Sim::new("reno");
        s.st.is_cwnd_limited = false;
        s.st.max_packets_out = 3;
        s.round(Duration::from_millis(10));
        assert_eq!(s.st.cwnd, 10);
        // In slow start it may grow to twice what was in flight.
        s.st.max_packets_out = 8;
        s.round(Duration::from_millis(10));
        assert_eq!(s.st.cwnd, 16);
    }

    /// W(t) = C (t - K)^3 + W_max.
    fn w_cubic(t: f64, w_max: f64) -> f64 {
        let k = (w_max * (1.0 - B) / C).cbrt();
        C * (t - k).powi(3) + w_max
    }

    /// Runs CUBIC after a loss at `w_max` with `rtt`; samples (t, cwnd)
    /// per round, t from the epoch start.
    fn cubic_after_loss(w_max: u32, rtt: Duration, secs: f64) -> (Sim, Vec<(f64, f64)>) {
        let mut s = Sim::new("cubic");
        s.st.cwnd = w_max;
        s.st.ssthresh = w_max;
        // One round in congestion avoidance teaches delay_min.
        s.round(rtt);
        s.st.cwnd = w_max;
        s.loss();
        let t0 = s.now;
        let mut out = Vec::new();
        while (s.now - t0).as_secs_f64() < secs {
            s.round(rtt);
            out.push(((s.now - t0).as_secs_f64(), s.st.cwnd as f64));
        }
        (s, out)
    }

    fn max_rel_err(samples: &[(f64, f64)], w_max: f64) -> f64 {
        samples
            .iter()
            .map(|&(t, w)| ((w - w_cubic(t, w_max)) / w_cubic(t, w_max)).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn cubic_k_matches_formula() {
        let mut cc = Cubic::new();
        let mut st = CcState::new(1448);
        cc.init(&mut st);
        st.cwnd = 1000;
        let ss = cc.ssthresh(&st);
        cc.update(ss, 1, Instant::from_secs(5));
        let k = cc.k().as_secs_f64();
        let want = (1000.0 * (1.0 - 0.7) / 0.4f64).cbrt();
        assert!((k - want).abs() / want < 0.01, "K {k} vs {want}");
    }

    #[test]
    fn cubic_follows_its_function() {
        for (w_max, rtt_ms) in [(1000u32, 100u64), (2000, 50), (400, 200)] {
            let w = w_max as f64;
            let k = (w * (1.0 - B) / C).cbrt();
            let rtt = Duration::from_millis(rtt_ms);
            let (_, samples) = cubic_after_loss(w_max, rtt, 2.0 * k);
            assert!(samples.last().unwrap().0 >= 2.0 * k);
            let err = max_rel_err(&samples, w);
            eprintln!("CUBIC fit W_max {w_max} rtt {rtt_ms}ms K {k:.2}s: max err {err:.4}");
            assert!(err < 0.02, "W_max {w_max} rtt {rtt_ms}ms: max err {err}");
        }
    }

    #[test]
    fn cubic_concave_then_convex() {
        let w_max = 1000.0;
        let k = (w_max * (1.0 - B) / C).cbrt();
        let (_, samples) = cubic_after_loss(1000, Duration::from_millis(100), 2.0 * k);
        let at = |t: f64| {
            samples
                .iter()
                .find(|&&(ts, _)| ts >= t)
                .map(|&(_, w)| w)
                .unwrap()
        };
        let q = k / 4.0;
        let g: Vec<f64> = (0..8)
            .map(|i| at((i + 1) as f64 * q) - at(i as f64 * q))
            .collect();
        // Concave before K: growth slows; convex after: growth speeds up.
        assert!(g[0] > g[1] && g[1] > g[2] && g[2] > g[3], "{g:?}");
        assert!(g[4] < g[5] && g[5] < g[6] && g[6] < g[7], "{g:?}");
        // Plateau around W_max.
        assert!((at(k) - w_max).abs() / w_max < 0.02);
    }

    #[test]
    fn cubic_fast_convergence() {
        let mut cc = Cubic::new();
        let mut st = CcState::new(1448);
        cc.init(&mut st);
        st.cwnd = 1000;
        assert_eq!(cc.ssthresh(&st), 700);
        assert_eq!(cc.last_max_cwnd(), 1000);
        // Loss below the previous W_max: release bandwidth, W_max lowered.
        st.cwnd = 800;
        assert_eq!(cc.ssthresh(&st), 560);
        assert_eq!(cc.last_max_cwnd(), 800 * 1741 / 2048);
        assert!(cc.last_max_cwnd() < 800);
        // Loss above it: W_max is the cwnd.
        st.cwnd = 900;
        cc.ssthresh(&st);
        assert_eq!(cc.last_max_cwnd(), 900);
    }

    #[test]
    fn cubic_reno_friendly_on_short_rtt() {
        let w_max = 100u32;
        let rtt = Duration::from_millis(1);
        let (s, samples) = cubic_after_loss(w_max, rtt, 0.3);
        let (t, w) = *samples.last().unwrap();
        let rounds = samples.len() as f64;
        let cubic = w_cubic(t, w_max as f64);
        // Reno with CUBIC's beta: +3(1-b)/(1+b) per RTT from beta * W_max.
        let reno = (w_max as f64 * B).floor() + rounds * 3.0 * (1.0 - B) / (1.0 + B);
        assert!(w > 1.5 * cubic, "cwnd {w} vs cubic {cubic}");
        assert!((w - reno).abs() / reno < 0.1, "cwnd {w} vs reno {reno}");
        assert!(s.st.cwnd > w_max);
    }

    #[test]
    fn cubic_initial_growth_without_wmax_is_5pct() {
        let mut s = Sim::new("cubic");
        s.st.cwnd = 100;
        s.st.ssthresh = 100;
        s.round(Duration::from_millis(100));
        assert_eq!(s.st.cwnd, 105);
    }

    #[test]
    fn hystart_delay_exits_before_loss() {
        let mut s = Sim::new("cubic");
        let base = Duration::from_millis(50);
        // Bottleneck: 40 segments fill the pipe, each extra one queues 1 ms;
        // 160 more overflow the buffer.
        let bdp = 40;
        let loss_at = 200;
        let rtt_of = |n: u32| base + Duration::from_millis(n.saturating_sub(bdp) as u64);
        while s.st.in_slow_start() {
            assert!(s.st.cwnd < loss_at, "no HyStart exit before loss");
            s.round_with(Duration::from_micros(1), rtt_of);
        }
        let cubic = format!("{:?}", s.cc);
        assert!(cubic.contains("found: Some(Delay)"), "{cubic}");
        assert!(s.st.ssthresh < loss_at && s.st.ssthresh > bdp);
        let ss = s.st.ssthresh;
        // Afterwards: congestion avoidance, no doubling.
        s.round_with(Duration::from_micros(1), rtt_of);
        assert!(s.st.cwnd < ss + ss / 2);
    }

    /// `hystart_detect` = 1 (ACK train only): the same rising delay no
    /// longer ends slow start; the loss does.
    #[test]
    fn hystart_delay_detector_can_be_turned_off() {
        let mut s = Sim::new("cubic");
        s.st.hystart_detect = HYSTART_ACK_TRAIN;
        let base = Duration::from_millis(50);
        let rtt_of = |n: u32| base + Duration::from_millis(n.saturating_sub(40) as u64);
        while s.st.in_slow_start() && s.st.cwnd < 200 {
            s.round_with(Duration::from_micros(1), rtt_of);
        }
        let cubic = format!("{:?}", s.cc);
        assert!(cubic.contains("found: None"), "{cubic}");
        assert!(s.st.cwnd >= 200);
    }

    #[test]
    fn hystart_ack_train_exit() {
        let mut s = Sim::new("cubic");
        // ACKs 1 ms apart (1000 pkt/s bottleneck), 40 ms RTT: once a round
        // of closely spaced ACKs spans more than 20 ms, the pipe is full.
        let rtt = Duration::from_millis(40);
        while s.st.in_slow_start() {
            assert!(s.st.cwnd < 200);
            s.round_with(Duration::from_millis(1), |_| rtt);
        }
        let cubic = format!("{:?}", s.cc);
        assert!(cubic.contains("found: Some(AckTrain)"), "{cubic}");
        assert!(
            s.st.ssthresh >= 32 && s.st.ssthresh < 80,
            "{}",
            s.st.ssthresh
        );
    }

    #[test]
    fn hystart_quiet_below_low_window() {
        let mut s = Sim::new("cubic");
        s.st.ssthresh = 15;
        let rtt_of = |n: u32| Duration::from_millis(10 + 10 * n as u64);
        s.round_with(Duration::from_micros(1), rtt_of);
        assert!(format!("{:?}", s.cc).contains("found: None"));
        assert_eq!(s.st.ssthresh, 15);
    }

    #[test]
    fn cubic_idle_shifts_epoch() {
        let mut cc = Cubic::new();
        let mut st = CcState::new(1448);
        cc.init(&mut st);
        st.cwnd = 1000;
        cc.ssthresh(&st);
        st.cwnd = 700;
        cc.update(700, 1, Instant::from_secs(10));
        st.lsndtime = Instant::from_secs(11);
        st.tcp_mstamp = Instant::from_secs(15);
        cc.cwnd_event(&mut st, CaEvent::TxStart);
        assert_eq!(cc.epoch_start, Some(Instant::from_secs(14)));
        // An RTO forgets W_max.
        cc.set_state(&mut st, CaState::Loss);
        assert_eq!(cc.last_max_cwnd(), 0);
        assert!(cc.epoch_start.is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Ack(u32, Option<u64>, u64),
        Loss,
        State(u8),
        Event(u8),
        Undo,
        SetCwnd(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u32>(), proptest::option::of(any::<u64>()), any::<u64>())
                .prop_map(|(a, r, dt)| Op::Ack(a, r, dt)),
            4 => (0u32..1000, proptest::option::of(0u64..1_000_000_000), 0u64..1_000_000_000)
                .prop_map(|(a, r, dt)| Op::Ack(a, r, dt)),
            1 => Just(Op::Loss),
            1 => (0u8..5).prop_map(Op::State),
            1 => (0u8..6).prop_map(Op::Event),
            1 => Just(Op::Undo),
            1 => (any::<u32>(), any::<u32>()).prop_map(|(c, s)| Op::SetCwnd(c, s)),
            1 => (u32::MAX - 100..=u32::MAX).prop_map(|c| Op::SetCwnd(c, u32::MAX)),
        ]
    }

    proptest! {
        #[test]
        fn no_panics_on_extremes(
            name in prop_oneof![Just("reno"), Just("cubic")],
            limited in any::<bool>(),
            ops in proptest::collection::vec(op(), 1..64),
        ) {
            let mut cc = by_name(name).unwrap();
            let mut st = CcState::new(1448);
            st.is_cwnd_limited = limited;
            st.max_packets_out = u32::MAX;
            cc.init(&mut st);
            let mut now = Instant::ZERO;
            for o in ops {
                match o {
                    Op::Ack(acked, rtt, dt) => {
                        now += Duration::from_nanos(dt);
                        st.tcp_mstamp = now;
                        st.snd_una = st.snd_una.wrapping_add(acked);
                        cc.pkts_acked(&mut st, now, acked, rtt.map(Duration::from_nanos));
                        cc.cong_avoid(&mut st, now, acked);
                        st.snd_nxt = st.snd_una.wrapping_add(st.cwnd);
                    }
                    Op::Loss => {
                        let ss = cc.ssthresh(&st);
                        prop_assert!(ss >= 2);
                        st.prior_cwnd = st.cwnd;
                        st.ssthresh = ss;
                        st.cwnd = ss;
                    }
                    Op::State(s) => {
                        let s = [CaState::Open, CaState::Disorder, CaState::Cwr,
                                 CaState::Recovery, CaState::Loss][s as usize];
                        cc.set_state(&mut st, s);
                        st.ca_state = s;
                    }
                    Op::Event(e) => {
                        let e = [CaEvent::TxStart, CaEvent::CwndRestart, CaEvent::CompleteCwr,
                                 CaEvent::Loss, CaEvent::EcnNoCe, CaEvent::EcnIsCe][e as usize];
                        cc.cwnd_event(&mut st, e);
                        st.lsndtime = now;
                    }
                    Op::Undo => {
                        let u = cc.undo_cwnd(&st);
                        prop_assert!(u >= st.cwnd);
                    }
                    Op::SetCwnd(c, s) => {
                        st.cwnd = c;
                        st.ssthresh = s;
                    }
                }
                prop_assert!(st.cwnd <= st.cwnd_clamp);
            }
        }

        #[test]
        fn growth_is_bounded(acked in 1u32..10_000, cwnd in 2u32..1_000_000) {
            // In congestion avoidance CUBIC grows at most 1 per 2 ACKs.
            let mut cc = Cubic::new();
            let mut st = CcState::new(1448);
            st.is_cwnd_limited = true;
            cc.init(&mut st);
            st.cwnd = cwnd;
            st.ssthresh = cwnd;
            cc.cong_avoid(&mut st, Instant::from_secs(3), acked);
            prop_assert!(st.cwnd - cwnd <= acked / 2 + 1);
        }
    }
}
