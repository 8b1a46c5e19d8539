//! ACK processing (`net/ipv4/tcp_input.c` `tcp_ack`, `tcp_sacktag_write_queue`,
//! `tcp_clean_rtx_queue`, `tcp_fastretrans_alert`, `tcp_cwnd_reduction`;
//! `net/ipv4/tcp_recovery.c` RACK), part of seed ingress step 11: what an
//! arriving ACK does to the sender — the window update, the SACK
//! scoreboard, freeing acknowledged segments, the RTT sample, loss
//! detection (RACK, RFC 8985, or three duplicate ACKs without SACK), fast
//! recovery with PRR (RFC 6937) and congestion window growth.

use netpath_wire::tcp::TcpSeqNumber;

use super::cong::{CaEvent, CaState};
use super::input::Seg;
use super::sock::{TcpSock, TcpState, XmitTimer, SEG_FIN, SEG_SYN};
use crate::drop::DropReason;
use crate::stack::Stack;
use crate::time::Duration;

/// What an ACK did (`FLAG_*`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AckResult {
    /// snd_una advanced.
    pub snd_una_advanced: bool,
    /// Segments cumulatively acknowledged.
    pub acked: u32,
    /// Segments newly SACKed.
    pub sacked: u32,
    /// A duplicate ACK (RFC 5681 definition).
    pub dupack: bool,
    /// The ACK carried a window update.
    pub win_update: bool,
    /// Our FIN is acknowledged.
    pub fin_acked: bool,
}

impl Stack {
    /// `tcp_ack()`. `Err` when the segment must be dropped (an ACK of data
    /// never sent, or one so old RFC 5961 challenges it).
    pub(crate) fn tcp_ack(&mut self, sk: &mut TcpSock, seg: &Seg) -> Result<AckResult, DropReason> {
        let mut res = AckResult::default();
        let prior_snd_una = sk.snd_una;
        let ack = seg.ack;
        sk.cc.tcp_mstamp = self.now;
        if ack.before(prior_snd_una) {
            // RFC 5961 §5.2: an ACK older than the window is an attack.
            if ack.before(prior_snd_una - sk.max_window) {
                self.tcp_send_challenge_ack(sk);
                return Err(DropReason::TcpTooOldAck);
            }
            // An old ACK: SACK information only.
            if !seg.opts.sack.is_empty() {
                self.tcp_sacktag(sk, seg, &mut res);
            }
            return Ok(res);
        }
        if ack.after(sk.snd_nxt) {
            return Err(DropReason::TcpAckUnsentData);
        }
        sk.last_ack_recv = self.now;
        // RFC 1122 4.2.2.17: probes stay unanswered only while no ACK comes.
        sk.probes_out = 0;
        // tcp_ack_update_window
        let nwin = u32::from(seg.wnd) << sk.snd_wscale;
        if ack.after(prior_snd_una)
            || seg.seq.after(sk.snd_wl1)
            || (seg.seq == sk.snd_wl1 && nwin > sk.snd_wnd)
        {
            if sk.snd_wnd != nwin {
                res.win_update = true;
                sk.snd_wnd = nwin;
                if nwin > sk.max_window {
                    sk.max_window = nwin;
                }
            }
            sk.snd_wl1 = seg.seq;
        }
        let prior_fack = if sk.highest_sack.after(prior_snd_una) {
            sk.highest_sack
        } else {
            prior_snd_una
        };
        if !seg.opts.sack.is_empty() && sk.sack_ok {
            self.tcp_sacktag(sk, seg, &mut res);
        }
        let mut rtt_sample = None;
        if ack.after(prior_snd_una) {
            res.snd_una_advanced = true;
            sk.bytes_acked += u64::from(ack.0.wrapping_sub(prior_snd_una.0));
            rtt_sample = self.tcp_clean_rtx_queue(sk, ack, prior_fack, &mut res);
            sk.snd_una = ack;
            sk.cc.snd_una = ack.0;
            self.tcp_zerocopy_complete(sk, false);
            sk.dupacks = 0;
            sk.retransmits = 0;
            sk.probes_out = 0;
            if sk.rtx_queue.is_empty() {
                sk.retrans_stamp = None;
            } else if let Some(rs) = sk.retrans_stamp {
                // The stamp follows the oldest outstanding segment.
                if sk.rtx_queue.iter().all(|s| !s.ever_retrans) {
                    sk.retrans_stamp = None;
                } else {
                    sk.retrans_stamp = Some(rs.max(sk.rtx_queue[0].first_sent.min(rs)));
                }
            }
            if let Some(tlp) = sk.tlp_high_seq {
                if !ack.before(tlp) {
                    sk.tlp_high_seq = None;
                }
            }
        } else if seg.len == 0
            && !res.win_update
            && sk.packets_out > 0
            && !seg.flags.syn()
            && !seg.flags.fin()
        {
            res.dupack = true;
            sk.dupacks += 1;
        }
        // RTT: from the segment's send time (Karn), else from the echoed
        // timestamp.
        if rtt_sample.is_none() && res.acked > 0 && sk.tstamp_ok {
            if let Some(ts) = seg.opts.timestamps {
                if ts.tsecr != 0 {
                    let now_ts = self.tcp_tsval(sk);
                    let d = now_ts.wrapping_sub(ts.tsecr);
                    if d < 1 << 30 {
                        rtt_sample = Some(Duration::from_millis(u64::from(d.max(1))));
                    }
                }
            }
        }
        if let Some(rtt) = rtt_sample {
            sk.rtt.sample_seq(rtt, self.now, sk.snd_una, sk.snd_nxt);
            sk.cc.srtt = sk.rtt.srtt();
            sk.cc.min_rtt = sk.rtt.min_rtt();
        }
        sk.cc.in_flight = sk.in_flight();
        sk.cc.delivered = sk.delivered;
        if res.acked > 0 {
            sk.ca
                .pkts_acked(&mut sk.cc, self.now, res.acked, rtt_sample);
        }
        if sk.state == TcpState::SynSent || sk.state == TcpState::SynRecv {
            return Ok(res);
        }
        if let Some(low) = sk.reord_low.take() {
            // tcp_check_sack_reordering: the reordering degree, in
            // segments, grows tp->reordering.
            let fack = if sk.highest_sack.after(prior_fack) {
                sk.highest_sack
            } else {
                prior_fack
            };
            if low.before(fack) {
                sk.reord_seen += 1;
                self.tcp.ext.tcp_sack_reorder += 1;
                let mss = sk.mss_cache.max(1);
                let metric = fack.0.wrapping_sub(low.0);
                if metric > sk.reordering * mss {
                    sk.reordering = metric.div_ceil(mss).min(self.tcp.settings.max_reordering);
                }
            }
        }
        if !sk.highest_sack.after(sk.snd_una) {
            sk.highest_sack = sk.snd_una;
        }
        // tcp_clean_rtx_queue(): an acknowledged MTU probe.
        if sk.mtup.probe_size > 0 && !sk.mtup.seq_end.after(sk.snd_una) {
            self.tcp_mtup_probe_success(sk);
        }
        self.tcp_fastretrans_alert(sk, &res, seg.flags.ece() && !seg.flags.syn());
        // tcp_cong_control
        let newly = res.acked + res.sacked;
        match sk.cc.ca_state {
            CaState::Recovery | CaState::Cwr => {
                let una_advanced_no_loss = res.snd_una_advanced && !sk.newly_lost;
                self.tcp_cwnd_reduction(sk, newly, una_advanced_no_loss)
            }
            _ => {
                // tcp_may_raise_cwnd: grow on in-order delivery (RFC 5681),
                // or on any delivery once reordering is known to be high.
                let may_raise = if sk.reordering > self.tcp.settings.reordering {
                    newly > 0
                } else {
                    res.acked > 0
                };
                if may_raise && sk.cc.cwnd_limited() {
                    sk.ca.cong_avoid(&mut sk.cc, self.now, newly);
                }
            }
        }
        if res.snd_una_advanced {
            // tcp_set_xmit_timer(), unless RACK just armed its own timer.
            if !sk.rack_reo_armed {
                self.tcp_set_xmit_timer(sk);
            }
            // tcp_check_space: room again in the send buffer.
            if sk.chrono_type == super::sock::Chrono::SndbufLimited && sk.wmem_queued < sk.sndbuf {
                sk.chrono_stop(super::sock::Chrono::SndbufLimited, self.now);
            }
            if sk.rtx_queue.is_empty() && sk.write_queue.is_empty() {
                sk.chrono_stop(super::sock::Chrono::Busy, self.now);
            }
        }
        if sk.rtx_queue.is_empty()
            && sk.write_queue.is_empty()
            && matches!(sk.xmit_timer, Some((_, XmitTimer::Probe0)))
        {
            sk.xmit_timer = None;
        }
        Ok(res)
    }

    /// `tcp_clean_rtx_queue()`: frees what `ack` covers; returns the RTT
    /// sample of the newest segment acked that was never retransmitted.
    pub(crate) fn tcp_clean_rtx_queue(
        &mut self,
        sk: &mut TcpSock,
        ack: TcpSeqNumber,
        prior_fack: TcpSeqNumber,
        res: &mut AckResult,
    ) -> Option<Duration> {
        let mut first_ackt = None;
        while let Some(front) = sk.rtx_queue.front_mut() {
            if front.end_seq.after(ack) {
                // Partly acknowledged: trim the acked bytes (tcp_trim_head).
                let cut = ack.0.wrapping_sub(front.seq.0);
                let payload = front.skb.len() as u32;
                let syn = u32::from(front.flags & super::sock::SEG_SYN != 0);
                if cut > syn && cut - syn <= payload && front.skb.pull((cut - syn) as usize).is_ok()
                {
                    front.seq = ack;
                    front.flags &= !super::sock::SEG_SYN;
                    sk.wmem_queued = sk.wmem_queued.saturating_sub((cut - syn) as usize);
                }
                break;
            }
            let Some(seg) = sk.rtx_queue.pop_front() else {
                break;
            };
            sk.packets_out = sk.packets_out.saturating_sub(1);
            if seg.sacked {
                sk.sacked_out = sk.sacked_out.saturating_sub(1);
            } else {
                sk.delivered += 1;
                self.tcp.ext.tcp_delivered += 1;
                res.acked += 1;
            }
            if seg.lost {
                sk.lost_out = sk.lost_out.saturating_sub(1);
            }
            if seg.retrans {
                sk.retrans_out = sk.retrans_out.saturating_sub(1);
            }
            if seg.flags & super::sock::SEG_FIN != 0 {
                res.fin_acked = true;
            }
            if !seg.ever_retrans {
                first_ackt = Some(seg.sent);
            }
            if !seg.sacked && !seg.ever_retrans && seg.end_seq.before(prior_fack) {
                // Cumulatively acked below what was SACKed: reordering.
                sk.note_reordering(seg.seq);
            }
            self.tcp_rack_advance(sk, seg.sent, seg.end_seq, seg.ever_retrans);
            self.tcp_ack_tstamp(sk, seg.end_seq, &seg.skb, ack);
            sk.wmem_free_acked(&seg);
            drop(seg);
        }
        first_ackt.map(|t| self.now.saturating_since(t))
    }

    /// `tcp_sacktag_write_queue()`: marks SACKed segments, detects DSACK.
    fn tcp_sacktag(&mut self, sk: &mut TcpSock, seg: &Seg, res: &mut AckResult) {
        let blocks = seg.opts.sack;
        let list = blocks.as_slice();
        for (i, &(s, e)) in list.iter().enumerate() {
            let (start, end) = (TcpSeqNumber(s), TcpSeqNumber(e));
            if !end.after(start) {
                self.tcp.ext.tcp_sack_discard += 1;
                continue;
            }
            // tcp_check_dsack: the first block below the cumulative ACK, or
            // inside the second block, reports a duplicate.
            if i == 0 {
                let below = !end.after(seg.ack);
                let inside = list.get(1).is_some_and(|&(s2, e2)| {
                    !start.before(TcpSeqNumber(s2)) && !end.after(TcpSeqNumber(e2))
                });
                if below || inside {
                    self.tcp.ext.tcp_dsack_recv += 1;
                    sk.dsack_dups += 1;
                    // tcp_rack_update_reo_wnd: a spurious retransmission
                    // widens the reordering window.
                    sk.reo_wnd_steps = (sk.reo_wnd_steps + 1).min(255);
                    sk.rack_dsack_seen = true;
                    continue;
                }
            }
            if end.after(sk.snd_nxt) || start.before(sk.snd_una - sk.max_window) {
                self.tcp.ext.tcp_sack_discard += 1;
                continue;
            }
            let prior_fack = sk.highest_sack;
            let mut i = 0;
            while i < sk.rtx_queue.len() {
                let (qseq, qend, sacked) = {
                    let q = &sk.rtx_queue[i];
                    (q.seq, q.end_seq, q.sacked)
                };
                i += 1;
                if !qend.after(start) || sacked {
                    continue;
                }
                if qseq.before(start) || qend.after(end) {
                    if qseq.after_eq(end) {
                        break;
                    }
                    continue;
                }
                let q = &mut sk.rtx_queue[i - 1];
                q.sacked = true;
                let (sent, ever, lost, retrans) = (q.sent, q.ever_retrans, q.lost, q.retrans);
                q.lost = false;
                q.retrans = false;
                sk.sacked_out += 1;
                sk.delivered += 1;
                self.tcp.ext.tcp_delivered += 1;
                res.sacked += 1;
                if lost {
                    sk.lost_out = sk.lost_out.saturating_sub(1);
                }
                if retrans {
                    sk.retrans_out = sk.retrans_out.saturating_sub(1);
                }
                // A never-retransmitted hole below the highest SACK now
                // arrives: reordering (tcp_check_sack_reordering).
                if !ever && prior_fack.after(sk.snd_una) && qend.before(prior_fack) {
                    sk.note_reordering(qseq);
                }
                if qend.after(sk.highest_sack) {
                    sk.highest_sack = qend;
                }
                self.tcp_rack_advance(sk, sent, qend, ever);
            }
        }
    }

    /// `tcp_rack_advance()`: a delivered transmission; its RTT becomes
    /// RACK's unless it is ambiguous (a retransmission acked faster than
    /// the minimum RTT), and the newest send time is remembered.
    fn tcp_rack_advance(
        &mut self,
        sk: &mut TcpSock,
        sent: crate::time::Instant,
        end_seq: TcpSeqNumber,
        retransmitted: bool,
    ) {
        let rtt = self.now.saturating_since(sent);
        if retransmitted && sk.rtt.min_rtt().is_some_and(|m| rtt < m) {
            return;
        }
        sk.rack_rtt = rtt;
        if sent > sk.rack_mstamp || (sent == sk.rack_mstamp && end_seq.after(sk.rack_end_seq)) {
            sk.rack_mstamp = sent;
            sk.rack_end_seq = end_seq;
        }
    }

    /// `tcp_rack_reo_wnd()`.
    fn tcp_rack_reo_wnd(sk: &TcpSock) -> Duration {
        if sk.reord_seen == 0
            && (matches!(sk.cc.ca_state, CaState::Recovery | CaState::Loss)
                || sk.sacked_out >= sk.reordering)
        {
            return Duration::ZERO;
        }
        let min_rtt = sk.rtt.min_rtt().unwrap_or(Duration::ZERO);
        let srtt = sk.rtt.srtt().unwrap_or(min_rtt);
        let steps = u64::from(sk.reo_wnd_steps.max(1));
        Duration::from_nanos((min_rtt.as_nanos() / 4 * steps).min(srtt.as_nanos()))
    }

    /// `tcp_rack_detect_loss()` + `tcp_rack_mark_lost()`: marks lost the
    /// segments sent before the newest delivered one, longer ago than an
    /// RTT plus the reordering window; arms the reordering timer for the
    /// others. Returns whether any was newly marked.
    pub(crate) fn tcp_rack_mark_lost(&mut self, sk: &mut TcpSock) -> bool {
        if sk.rack_mstamp == crate::time::Instant::ZERO {
            return false;
        }
        let reo = Self::tcp_rack_reo_wnd(sk);
        let limit = sk.rack_rtt + reo;
        let mut newly = false;
        let mut wait = Duration::ZERO;
        for q in sk.rtx_queue.iter_mut() {
            if q.sacked || (q.lost && !q.retrans) {
                continue;
            }
            // Only segments sent before the newest delivered one.
            let before = q.sent < sk.rack_mstamp
                || (q.sent == sk.rack_mstamp && sk.rack_end_seq.after(q.end_seq));
            if !before {
                continue;
            }
            let elapsed = self.now.saturating_since(q.sent);
            if elapsed >= limit {
                if q.retrans {
                    q.retrans = false;
                    sk.retrans_out = sk.retrans_out.saturating_sub(1);
                    self.tcp.ext.tcp_lost_retransmit += 1;
                }
                if !q.lost {
                    q.lost = true;
                    sk.lost_out += 1;
                }
                newly = true;
            } else {
                let rem = Duration::from_nanos(limit.as_nanos() - elapsed.as_nanos());
                wait = wait.max(rem);
            }
        }
        sk.rack_reo_armed = wait > Duration::ZERO;
        if sk.rack_reo_armed {
            let at = self.now + wait + super::output::TCP_TIMEOUT_MIN;
            sk.xmit_timer = Some((at, XmitTimer::ReoTimeout));
        }
        newly
    }

    /// Without SACK or RACK: `tcp_time_to_recover` by duplicate ACKs marks
    /// the head lost (NewReno).
    fn tcp_dupack_mark_lost(&mut self, sk: &mut TcpSock) -> bool {
        if sk.dupacks < sk.reordering {
            return false;
        }
        if let Some(q) = sk.rtx_queue.front_mut() {
            if !q.lost && !q.sacked && !q.retrans {
                q.lost = true;
                sk.lost_out += 1;
                return true;
            }
        }
        false
    }

    /// `tcp_fastretrans_alert()`: loss detection and the CA state machine.
    fn tcp_fastretrans_alert(
        &mut self,
        sk: &mut TcpSock,
        res: &super::ack::AckResult,
        seg_ece: bool,
    ) {
        // Leave recovery once everything sent before it is acknowledged.
        match sk.cc.ca_state {
            CaState::Recovery | CaState::Loss | CaState::Cwr if !sk.snd_una.before(sk.high_seq) => {
                if matches!(sk.cc.ca_state, CaState::Recovery | CaState::Cwr) {
                    // tcp_end_cwnd_reduction
                    if sk.cc.ssthresh < super::cong::TCP_INFINITE_SSTHRESH {
                        sk.cc.cwnd = sk.cc.ssthresh.max(1);
                    }
                    sk.ca.cwnd_event(&mut sk.cc, CaEvent::CompleteCwr);
                }
                self.tcp_set_ca_state(sk, CaState::Open);
            }
            _ => {}
        }
        // An ECN echo: reduce once per window (tcp_enter_cwr).
        if sk.ecn_ok && seg_ece && matches!(sk.cc.ca_state, CaState::Open | CaState::Disorder) {
            self.tcp_enter_cwr(sk);
            sk.ecn_queue_cwr = true;
        }
        let use_rack = sk.sack_ok && self.tcp.settings.rack;
        sk.rack_reo_armed = false;
        let newly_lost: bool = if use_rack {
            self.tcp_rack_mark_lost(sk)
        } else if res.dupack || sk.dupacks >= sk.reordering {
            self.tcp_dupack_mark_lost(sk)
        } else {
            false
        };
        sk.newly_lost = newly_lost;
        if matches!(sk.cc.ca_state, CaState::Open | CaState::Disorder) {
            if sk.lost_out > 0 && newly_lost {
                // An MTU probe lost: no window reduction, the search range
                // ends below it and its data goes again at the MSS.
                if sk.mtup.probe_size > 0 && sk.snd_una == sk.mtup.seq_start {
                    self.tcp_mtup_probe_failed(sk);
                    sk.cc.cwnd += 1;
                    self.tcp_simple_retransmit(sk);
                    return;
                }
                self.tcp_enter_recovery(sk);
            } else if sk.sacked_out > 0 || sk.dupacks > 0 {
                self.tcp_set_ca_state(sk, CaState::Disorder);
            } else if sk.cc.ca_state == CaState::Disorder {
                self.tcp_set_ca_state(sk, CaState::Open);
            }
        }
    }

    pub(crate) fn tcp_set_ca_state(&mut self, sk: &mut TcpSock, st: CaState) {
        if sk.cc.ca_state != st {
            sk.ca.set_state(&mut sk.cc, st);
            sk.cc.ca_state = st;
        }
    }

    /// `tcp_enter_recovery()` + `tcp_init_cwnd_reduction()`.
    pub(crate) fn tcp_enter_recovery(&mut self, sk: &mut TcpSock) {
        if sk.sack_ok {
            self.tcp.ext.tcp_sack_recovery += 1;
        } else {
            self.tcp.ext.tcp_reno_recovery += 1;
        }
        sk.prior_ssthresh = sk.cc.ssthresh;
        sk.undo_marker = Some(sk.snd_una);
        self.tcp_init_cwnd_reduction(sk);
        self.tcp_set_ca_state(sk, CaState::Recovery);
        self.tracer.event_detail(
            self.now,
            "tcp_enter_recovery",
            None,
            u64::from(sk.cc.ssthresh),
        );
    }

    /// `tcp_enter_cwr()`: a reduction of the window without loss (ECN echo,
    /// a local qdisc drop), once per window.
    pub(crate) fn tcp_enter_cwr(&mut self, sk: &mut TcpSock) {
        if matches!(sk.cc.ca_state, CaState::Open | CaState::Disorder) {
            self.tcp_init_cwnd_reduction(sk);
            self.tcp_set_ca_state(sk, CaState::Cwr);
        }
    }

    /// `tcp_init_cwnd_reduction()`: the window to reduce from and to.
    pub(crate) fn tcp_init_cwnd_reduction(&mut self, sk: &mut TcpSock) {
        sk.high_seq = sk.snd_nxt;
        sk.cc.in_flight = sk.in_flight();
        sk.prior_cwnd = sk.cc.cwnd;
        sk.cc.prior_cwnd = sk.cc.cwnd;
        sk.cc.ssthresh = sk.ca.ssthresh(&sk.cc);
        sk.prr_delivered = 0;
        sk.prr_out = 0;
    }

    /// `tcp_cwnd_reduction()`: PRR (RFC 6937).
    pub(crate) fn tcp_cwnd_reduction(
        &mut self,
        sk: &mut TcpSock,
        newly_acked_sacked: u32,
        una_advanced_no_loss: bool,
    ) {
        if newly_acked_sacked == 0 && sk.lost_out == 0 {
            return;
        }
        sk.prr_delivered += newly_acked_sacked;
        let in_flight = sk.in_flight() as i64;
        let ssthresh = i64::from(sk.cc.ssthresh);
        let delta = ssthresh - in_flight;
        let prr_delivered = i64::from(sk.prr_delivered);
        let prr_out = i64::from(sk.prr_out);
        let mut sndcnt = if delta < 0 {
            let prior = i64::from(sk.prior_cwnd.max(1));
            (ssthresh * prr_delivered + prior - 1) / prior - prr_out
        } else {
            let s = (prr_delivered - prr_out).max(i64::from(newly_acked_sacked))
                + i64::from(una_advanced_no_loss);
            s.min(delta)
        };
        sndcnt = sndcnt.max(if prr_out > 0 { 0 } else { 1 });
        sk.cc.cwnd = (in_flight + sndcnt).max(1) as u32;
    }

    /// `tcp_xmit_retransmit_queue()`: retransmits segments marked lost,
    /// within the congestion window.
    pub(crate) fn tcp_xmit_retransmit_queue(&mut self, sk: &mut TcpSock) {
        if sk.lost_out == 0 {
            return;
        }
        let mut i = 0;
        // The lost segments left of the GSO packet being retransmitted
        // (Linux retransmits what is left of each skb at once, up to
        // min(cwnd - in flight, tso_segs) segments, PSH on its last).
        let mut run_left = 0usize;
        let mut run_len = 0usize;
        while i < sk.rtx_queue.len() {
            let q = &sk.rtx_queue[i];
            if q.lost && !q.retrans && !q.sacked {
                if sk.in_flight() >= sk.cc.cwnd {
                    break;
                }
                if run_left == 0 {
                    let quota = sk.cc.cwnd.saturating_sub(sk.in_flight());
                    let max = quota.min(self.tcp_tso_segs(sk)).max(1) as usize;
                    run_len = Self::lost_run(sk, i, max);
                    run_left = run_len;
                }
                run_left -= 1;
                let gso_psh = run_left == 0 && run_len >= 2;
                if !self.tcp_retransmit_seg(sk, i, gso_psh) {
                    break;
                }
                if sk.cc.ca_state == CaState::Loss {
                    self.tcp.ext.tcp_slow_start_retrans += 1;
                } else {
                    self.tcp.ext.tcp_fast_retrans += 1;
                }
                if sk.cc.ca_state == CaState::Recovery {
                    sk.prr_out += 1;
                }
                if i == 0 {
                    self.tcp_rearm_rto(sk);
                }
            }
            i += 1;
        }
    }

    /// How many segments from `i` on (at most `max`) Linux would
    /// retransmit as one skb: consecutive segments to retransmit that were
    /// sent in the same GSO packet (SACKed or acknowledged neighbours
    /// split Linux's skbs).
    fn lost_run(sk: &TcpSock, i: usize, max: usize) -> usize {
        let Some(first) = sk.rtx_queue.get(i) else {
            return 0;
        };
        let mut n = 1;
        let mut end = first.end_seq;
        for q in sk.rtx_queue.iter().skip(i + 1) {
            if n >= max
                || q.gso != first.gso
                || q.seq != end
                || !q.lost
                || q.retrans
                || q.sacked
                || q.flags & (SEG_SYN | SEG_FIN) != 0
            {
                break;
            }
            n += 1;
            end = q.end_seq;
        }
        n
    }

    /// `tcp_enter_loss()`: the RTO fired. Everything not SACKed is lost;
    /// cwnd falls to 1 (RFC 5681 §3.1).
    pub(crate) fn tcp_enter_loss(&mut self, sk: &mut TcpSock) {
        if sk.cc.ca_state != CaState::Loss || sk.retransmits == 0 {
            sk.prior_ssthresh = sk.cc.ssthresh;
            sk.cc.in_flight = sk.in_flight();
            sk.cc.ssthresh = sk.ca.ssthresh(&sk.cc);
            sk.ca.cwnd_event(&mut sk.cc, CaEvent::Loss);
        }
        sk.cc.cwnd = 1;
        sk.cc.cwnd_cnt = 0;
        sk.retrans_out = 0;
        sk.lost_out = 0;
        for q in sk.rtx_queue.iter_mut() {
            q.retrans = false;
            if !q.sacked {
                q.lost = true;
                sk.lost_out += 1;
            }
        }
        sk.high_seq = sk.snd_nxt;
        sk.tlp_high_seq = None;
        sk.dupacks = 0;
        self.tcp_set_ca_state(sk, CaState::Loss);
    }
}
