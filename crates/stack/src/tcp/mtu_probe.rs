//! Packetization-layer path MTU discovery (RFC 4821) as Linux's TCP does it
//! (`net.ipv4.tcp_mtu_probing`): `tcp_mtup_init`, `tcp_mtu_probe`,
//! `tcp_mtup_probe_success`, `tcp_mtup_probe_failed` and
//! `tcp_mtu_check_reprobe`.
//!
//! With probing on (2: always; 1: only after a black hole is suspected,
//! which netpath does not detect yet), a connection keeps a search range of
//! MTUs `[search_low, search_high]`, sends at most the MSS of `search_low`,
//! and now and then sends one larger segment — the probe, built from the
//! head of the write queue, of the MSS half-way up the range. Its ACK raises
//! `search_low` to it (and the MSS with it); its loss lowers `search_high`
//! below it and its data goes again at the old MSS.

use super::cong::CaState;
use super::sock::{TcpSock, SEG_EOR, SEG_FIN, SEG_SYN};
use crate::stack::Stack;
use crate::time::Instant;
use netpath_wire::tcp::TcpSeqNumber;

/// `struct icsk_mtup` with `tp->mtu_probe`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MtuProbe {
    pub enabled: bool,
    /// MTUs, IPv4 header included.
    pub search_high: u32,
    pub search_low: u32,
    /// The MTU of the probe in flight (0: none).
    pub probe_size: u32,
    pub probe_timestamp: Instant,
    pub seq_start: TcpSeqNumber,
    pub seq_end: TcpSeqNumber,
}

impl Default for MtuProbe {
    fn default() -> Self {
        MtuProbe {
            enabled: false,
            search_high: 0,
            search_low: 0,
            probe_size: 0,
            probe_timestamp: Instant::ZERO,
            seq_start: TcpSeqNumber(0),
            seq_end: TcpSeqNumber(0),
        }
    }
}

/// `tcp_mtu_probe()`'s outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A probe went out.
    Sent,
    /// Wait (for the window, or for packets in flight to leave room).
    Wait,
    /// Not now: send as usual.
    No,
}

/// IPv4 header (no options) plus the TCP header without options.
const HDRS: u32 = 20 + 20;

impl TcpSock {
    /// `tcp_mtu_to_mss()`: the payload of a segment filling `mtu`, with
    /// the options every segment carries.
    pub(crate) fn mtu_to_mss(&self, mtu: u32, min_snd_mss: u32) -> u32 {
        let mut mss = mtu.saturating_sub(HDRS).min(u32::from(self.mss_clamp));
        mss = mss.max(min_snd_mss);
        mss.saturating_sub(self.tcp_header_len() - 20)
    }

    /// `tcp_mss_to_mtu()`.
    pub(crate) fn mss_to_mtu(&self, mss: u32) -> u32 {
        mss + self.tcp_header_len() + 20
    }
}

impl Stack {
    /// `tcp_mtup_init()`: when the connection is established.
    pub(crate) fn tcp_mtup_init(&mut self, sk: &mut TcpSock) {
        let st = &self.tcp.settings;
        sk.mtup.enabled = st.mtu_probing > 1;
        sk.mtup.search_high = u32::from(sk.mss_clamp) + HDRS;
        sk.mtup.search_low = sk.mss_to_mtu(st.base_mss);
        sk.mtup.probe_size = 0;
        if sk.mtup.enabled {
            sk.mtup.probe_timestamp = self.now;
        }
    }

    /// `tcp_mtu_probing()` (tcp_timer.c): black-hole detection from the
    /// retransmission timer, past `tcp_retries1`. With `tcp_mtu_probing`
    /// on, probing starts (the MSS drops to the search's low end, the base
    /// MSS), or, if it was on, the low end halves (not below the base MSS,
    /// `tcp_mtu_probe_floor` and `tcp_min_snd_mss`).
    pub(crate) fn tcp_mtu_probing_blackhole(&mut self, sk: &mut TcpSock) {
        let st = &self.tcp.settings;
        if st.mtu_probing == 0 {
            return;
        }
        if !sk.mtup.enabled {
            sk.mtup.enabled = true;
            sk.mtup.probe_timestamp = self.now;
        } else {
            let floor = st.min_snd_mss;
            let mut mss = sk.mtu_to_mss(sk.mtup.search_low, floor) >> 1;
            mss = mss
                .min(st.base_mss)
                .max(st.mtu_probe_floor)
                .max(st.min_snd_mss);
            sk.mtup.search_low = sk.mss_to_mtu(mss);
        }
        let pmtu = sk.pmtu;
        let mss = self.tcp_sync_mss(sk, pmtu);
        self.tracer
            .event_detail(self.now, "tcp_mtu_probing", None, u64::from(mss));
    }

    /// `tcp_mtu_check_reprobe()`: after `tcp_probe_interval` the search
    /// starts again from the current MSS up.
    fn tcp_mtu_check_reprobe(&mut self, sk: &mut TcpSock) {
        let interval = self.tcp.settings.probe_interval;
        if self.now.saturating_since(sk.mtup.probe_timestamp) >= interval {
            sk.mtup.probe_size = 0;
            sk.mtup.search_high = u32::from(sk.mss_clamp) + HDRS;
            sk.mtup.search_low = sk.mss_to_mtu(sk.mss_cache);
            sk.mtup.probe_timestamp = self.now;
        }
    }

    /// `tcp_mtu_probe()`: at the start of `tcp_write_xmit`, send the head of
    /// the write queue as one probe of the MSS half-way up the search range,
    /// if the conditions Linux sets hold.
    pub(crate) fn tcp_mtu_probe(&mut self, sk: &mut TcpSock) -> Probe {
        if !sk.mtup.enabled
            || sk.mtup.probe_size != 0
            || sk.cc.ca_state != CaState::Open
            || sk.cc.cwnd < 11
            || !sk.ofo.is_empty()
            || sk.dsack.is_some()
        {
            return Probe::No;
        }
        let floor = self.tcp.settings.min_snd_mss;
        let probe_size = sk.mtu_to_mss((sk.mtup.search_high + sk.mtup.search_low) >> 1, floor);
        let size_needed = probe_size + (sk.reordering + 1) * sk.mss_cache;
        let interval = sk.mtup.search_high.saturating_sub(sk.mtup.search_low);
        if probe_size > sk.mtu_to_mss(sk.mtup.search_high, floor)
            || interval < self.tcp.settings.probe_threshold
        {
            self.tcp_mtu_check_reprobe(sk);
            return Probe::No;
        }
        // Enough data queued, and all of it mergeable into one segment.
        let queued = sk.write_seq.0.wrapping_sub(sk.snd_nxt.0);
        if queued < size_needed {
            return Probe::No;
        }
        if sk.snd_wnd < size_needed {
            return Probe::No;
        }
        let wnd_end = sk.snd_una + sk.snd_wnd;
        if (sk.snd_nxt + size_needed).after(wnd_end) {
            return Probe::Wait;
        }
        if sk.in_flight() + 2 > sk.cc.cwnd {
            return if sk.in_flight() == 0 {
                Probe::No
            } else {
                Probe::Wait
            };
        }
        if !self.tcp_can_coalesce_send_queue_head(sk, probe_size) {
            return Probe::No;
        }
        // Build the probe: the first probe_size bytes of the write queue.
        let Ok(mut skb) = self.pool.alloc(probe_size as usize) else {
            return Probe::No;
        };
        let seq = sk.snd_nxt;
        let mut len = 0u32;
        while len < probe_size {
            let Some(mut seg) = sk.write_queue.pop_front() else {
                break;
            };
            let want = probe_size - len;
            if seg.skb.len() as u32 > want {
                // Split the segment: the tail stays at the head of the queue.
                match self.tcp_split_seg(&mut seg, want) {
                    // The rest stays Linux's skb (trimmed): its head too.
                    Some(mut tail) => {
                        tail.head = std::mem::take(&mut seg.head);
                        sk.write_queue.push_front(tail);
                    }
                    None => {
                        sk.write_queue.push_front(seg);
                        break;
                    }
                }
            }
            if skb.put_slice(seg.skb.data()).is_err() {
                sk.write_queue.push_front(seg);
                break;
            }
            len += seg.skb.len() as u32;
            if seg.head {
                // Its skb goes on in the next segment, or is freed.
                match sk.write_queue.front_mut() {
                    Some(next) if !next.head => next.head = true,
                    _ => {
                        sk.wmem_queued = sk
                            .wmem_queued
                            .saturating_sub(super::wmem::TCP_SKB_HEAD_TRUESIZE)
                    }
                }
            }
        }
        if len == 0 {
            return Probe::No;
        }
        // The probe carries no PSH (Linux clears it on the merged skb); it
        // is an skb of its own.
        let mut probe = super::output::fresh_seg(seq, skb, 0, self.now);
        sk.wmem_charge_head(&mut probe);
        let end = probe.end_seq;
        if !self.tcp_send_seg(sk, probe, false) {
            return Probe::No;
        }
        sk.wmem_split_unsent();
        // "Decrement cwnd here because we are sending effectively two
        // packets."
        sk.cc.cwnd = sk.cc.cwnd.saturating_sub(1).max(1);
        sk.mtup.probe_size = sk.mss_to_mtu(len);
        sk.mtup.seq_start = seq;
        sk.mtup.seq_end = end;
        self.tcp_repack_write_queue(sk);
        self.tracer.event_detail(
            self.now,
            "tcp_mtu_probe",
            None,
            u64::from(sk.mtup.probe_size),
        );
        Probe::Sent
    }

    /// After a probe took the head of the write queue (and split one
    /// segment), the rest is cut again at MSS boundaries from the probe's
    /// end, as Linux's large queued skbs are: one short piece would
    /// otherwise go out where Linux sends a full segment. A rare path (one
    /// probe per search step): the bytes are copied.
    fn tcp_repack_write_queue(&mut self, sk: &mut TcpSock) {
        let mss = sk.mss_cache.max(1);
        if sk
            .write_queue
            .front()
            .is_none_or(|f| f.skb.len() as u32 >= mss)
        {
            return;
        }
        // Built beside the queue, which is replaced only when all went well
        // (out of buffers: the queue stays as it was).
        let mut out = std::collections::VecDeque::with_capacity(sk.write_queue.len());
        let mut cur: Option<super::sock::TxSeg> = None;
        let mut rest_from = sk.write_queue.len();
        // Where Linux's skbs begin: the new segments holding those bytes
        // carry their heads.
        let mut heads = Vec::new();
        for (i, seg) in sk.write_queue.iter().enumerate() {
            if seg.flags & (SEG_SYN | SEG_FIN | SEG_EOR) != 0 || seg.skb.is_empty() {
                // A record or stream end stays where it is, and what follows.
                rest_from = i;
                break;
            }
            if seg.head {
                heads.push(seg.seq);
            }
            let data = seg.skb.data();
            let mut off = 0usize;
            while off < data.len() {
                if cur.is_none() {
                    let Ok(skb) = self.pool.alloc(mss as usize) else {
                        return;
                    };
                    cur = Some(super::output::fresh_seg(
                        seg.seq + off as u32,
                        skb,
                        0,
                        self.now,
                    ));
                }
                let Some(c) = cur.as_mut() else { break };
                let take = (mss as usize - c.skb.len()).min(data.len() - off);
                if c.skb.put_slice(&data[off..off + take]).is_err() {
                    return;
                }
                c.end_seq += take as u32;
                off += take;
                if c.skb.len() as u32 == mss {
                    out.extend(cur.take());
                }
            }
            // A push mark stays with the byte it followed.
            if seg.flags & super::sock::SEG_PSH != 0 {
                match cur.as_mut() {
                    Some(c) => c.flags |= super::sock::SEG_PSH,
                    None => {
                        if let Some(b) = out.back_mut() {
                            b.flags |= super::sock::SEG_PSH;
                        }
                    }
                }
            }
        }
        out.extend(cur.take());
        let mut kept = 0;
        for s in out.iter_mut() {
            s.head = heads
                .iter()
                .any(|h| !h.before(s.seq) && h.before(s.end_seq));
            kept += usize::from(s.head);
        }
        let lost = heads.len().saturating_sub(kept);
        sk.wmem_queued = sk
            .wmem_queued
            .saturating_sub(lost * super::wmem::TCP_SKB_HEAD_TRUESIZE);
        let rest = sk.write_queue.split_off(rest_from);
        out.extend(rest);
        sk.write_queue = out;
    }

    /// `tcp_can_coalesce_send_queue_head()`: the segments the probe would
    /// merge carry no FIN, SYN or end of record before its end, nor a
    /// transmit timestamp request (`tcp_has_tx_tstamp`) on a segment it
    /// would take whole and go past.
    fn tcp_can_coalesce_send_queue_head(&self, sk: &TcpSock, len: u32) -> bool {
        let mut left = len;
        for seg in &sk.write_queue {
            if left == 0 {
                break;
            }
            let l = seg.skb.len() as u32;
            if seg.flags & (SEG_SYN | SEG_FIN) != 0 || (seg.flags & SEG_EOR != 0 && l < left) {
                return false;
            }
            if l < left && self.tcp.tstamps.holds_key(sk.id, seg.seq, seg.end_seq) {
                return false;
            }
            left = left.saturating_sub(l);
        }
        left == 0
    }

    /// `tcp_mtup_probe_success()`: the probe was acknowledged: the search
    /// range starts at its size, the MSS grows to it, cwnd is rescaled to
    /// the same bytes in flight.
    pub(crate) fn tcp_mtup_probe_success(&mut self, sk: &mut TcpSock) {
        let mtu_now = u64::from(sk.mss_to_mtu(sk.mss_cache));
        let probe = u64::from(sk.mtup.probe_size.max(1));
        sk.prior_ssthresh_for_mtup();
        sk.cc.cwnd = ((u64::from(sk.cc.cwnd) * mtu_now / probe) as u32).max(1);
        sk.cc.cwnd_cnt = 0;
        sk.cc.ssthresh = sk.current_ssthresh();
        sk.mtup.search_low = sk.mtup.probe_size;
        sk.mtup.probe_size = 0;
        let pmtu = sk.pmtu;
        self.tcp_sync_mss(sk, pmtu);
        self.tcp.ext.tcp_mtup_success += 1;
        self.tracer.event_detail(
            self.now,
            "tcp_mtup_probe_success",
            None,
            u64::from(sk.mtup.search_low),
        );
    }

    /// `tcp_mtup_probe_failed()`: the probe was lost: the search range ends
    /// below it.
    pub(crate) fn tcp_mtup_probe_failed(&mut self, sk: &mut TcpSock) {
        sk.mtup.search_high = sk.mtup.probe_size.saturating_sub(1);
        sk.mtup.probe_size = 0;
        self.tcp.ext.tcp_mtup_fail += 1;
        self.tracer.event_detail(
            self.now,
            "tcp_mtup_probe_failed",
            None,
            u64::from(sk.mtup.search_high),
        );
    }
}

impl Stack {
    /// `tcp_simple_retransmit()`: after the MSS went down (a lost MTU
    /// probe), segments larger than it are lost; they go again, split to
    /// the MSS, in the Loss state but without a window reduction.
    pub(crate) fn tcp_simple_retransmit(&mut self, sk: &mut TcpSock) {
        let mss = sk.mss_cache;
        let mut newly = 0;
        for q in sk.rtx_queue.iter_mut() {
            if q.skb.len() as u32 > mss && !q.sacked && !q.lost {
                q.lost = true;
                newly += 1;
            }
        }
        sk.lost_out += newly;
        if sk.lost_out == 0 {
            return;
        }
        if sk.cc.ca_state != CaState::Loss {
            sk.high_seq = sk.snd_nxt;
            sk.cc.ssthresh = sk.current_ssthresh();
            sk.prior_ssthresh = 0;
            sk.undo_marker = None;
            self.tcp_set_ca_state(sk, CaState::Loss);
        }
        self.tcp_xmit_retransmit_queue(sk);
    }
}

impl TcpSock {
    /// `tp->prior_ssthresh = tcp_current_ssthresh(sk)` (kept for undo).
    fn prior_ssthresh_for_mtup(&mut self) {
        self.prior_ssthresh = self.current_ssthresh();
    }

    /// `tcp_current_ssthresh()`: ssthresh, or ¾ of cwnd if that is more,
    /// outside a window reduction.
    pub(crate) fn current_ssthresh(&self) -> u32 {
        if matches!(self.cc.ca_state, CaState::Cwr | CaState::Recovery) {
            self.cc.ssthresh
        } else {
            self.cc
                .ssthresh
                .max((self.cc.cwnd >> 1) + (self.cc.cwnd >> 2))
        }
    }
}
