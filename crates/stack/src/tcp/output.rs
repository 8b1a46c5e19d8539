//! `net/ipv4/tcp_output.c`, seed egress steps 2–3: `tcp_write_xmit` sends
//! what the congestion window, the peer's window and Nagle allow;
//! `tcp_transmit_skb` builds each segment's header from the socket's state
//! (options in Linux's layout: MSS, SACK-permitted, timestamps and window
//! scale on a SYN; timestamps and SACK blocks after) and hands it to
//! `ip_queue_xmit`. Also the control segments: ACK (`tcp_send_ack`,
//! delayed or not), SYN (`tcp_connect`), SYN-ACK, FIN (`tcp_send_fin`),
//! RST (`tcp_send_active_reset`), window probes (`tcp_write_wakeup`,
//! `tcp_send_probe0`), and `tcp_retransmit_skb`.
//!
//! The frame is a fresh skb: header written in place, then the payload
//! copied from the queued skb with the checksum folded into that copy.
//! (Linux clones the queued skb and lets the NIC gather its pages; see
//! docs/ARCHITECTURE.md for why netpath copies here.)

use netpath_wire::checksum::Checksum;
use netpath_wire::tcp::{
    SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr, TcpSeqNumber, TcpTimestamps,
};

use super::sock::{TcpSock, TcpState, TxSeg, XmitTimer, SEG_EOR, SEG_FIN, SEG_PSH, SEG_SYN};
use crate::ipv4::output::LL_RESERVED;
use crate::skb::{ChecksumState, Skb};
use crate::stack::Stack;
use crate::time::{Duration, Instant};

/// `MAX_TCP_HEADER`-like headroom: link layer, IPv4 with options, TCP.
pub(crate) const TCP_HEADROOM: usize = LL_RESERVED + 60 + 60;

/// `TCP_DELACK_MIN`, `TCP_DELACK_MAX`, `TCP_ATO_MIN`.
pub const TCP_DELACK_MIN: Duration = Duration::from_millis(40);
pub const TCP_DELACK_MAX: Duration = Duration::from_millis(200);
pub const TCP_ATO_MIN: Duration = Duration::from_millis(40);
/// `TCP_TIMEOUT_MIN` (2 jiffies) added to a TLP timeout.
pub const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(2);
/// `TCP_MAX_QUICKACKS`.
pub const TCP_MAX_QUICKACKS: u32 = 16;

/// `nonagle` of `tcp_write_xmit`: what to do with a partial last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nonagle {
    /// The socket's rules: TCP_CORK holds it; otherwise Nagle unless
    /// TCP_NODELAY.
    Normal,
    /// `TCP_NAGLE_PUSH`: send it now (uncork, TCP_NODELAY set, FIN).
    Push,
    /// `TCP_NAGLE_CORK`: hold it (MSG_MORE).
    Cork,
}

/// What a segment carries, for [`Stack::tcp_transmit_skb`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutSeg<'a> {
    pub seq: TcpSeqNumber,
    pub flags: TcpFlags,
    pub payload: &'a [u8],
    /// A run of consecutive segments sent as one GSO skb (`payload` is then
    /// empty): their payloads are copied in one after the other.
    pub gso: &'a [TxSeg],
}

impl Stack {
    /// `tcp_time_stamp` + `tsoffset`: the TSval clock, in ms.
    pub(crate) fn tcp_tsval(&self, sk: &TcpSock) -> u32 {
        ((self.now.as_nanos() / 1_000_000) as u32).wrapping_add(sk.ts_offset)
    }

    /// `tcp_transmit_skb()`: header from the socket's state, the payload
    /// copied in, the checksum left partial for the device
    /// (`CHECKSUM_PARTIAL`), then `ip_queue_xmit`. Returns false if the
    /// segment was not sent (no route, no buffer, dropped by the local
    /// qdisc).
    pub(crate) fn tcp_transmit_skb(&mut self, sk: &mut TcpSock, mut seg: OutSeg<'_>) -> bool {
        let syn = seg.flags.syn();
        // ECN (RFC 3168): the first SYN asks (ECE+CWR), a SYN-ACK agrees
        // (ECE); new data is ECT(0), carries CWR after a reduction, and
        // every segment echoes ECE while a CE mark is unanswered.
        let mut ect = false;
        if syn {
            if !seg.flags.ack() && sk.ecn_syn && sk.retransmits == 0 {
                seg.flags |= TcpFlags::ECE | TcpFlags::CWR;
            } else if seg.flags.ack() && sk.ecn_ok {
                seg.flags |= TcpFlags::ECE;
            }
        } else if sk.ecn_ok {
            if (!seg.payload.is_empty() || !seg.gso.is_empty()) && !seg.seq.before(sk.snd_nxt) {
                ect = true;
                if sk.ecn_queue_cwr {
                    sk.ecn_queue_cwr = false;
                    seg.flags |= TcpFlags::CWR;
                }
            }
            if sk.ecn_demand_cwr && !seg.flags.rst() {
                seg.flags |= TcpFlags::ECE;
            }
        }
        let mut opts = TcpOptions::default();
        let window;
        let mut ack = TcpSeqNumber(0);
        if syn {
            // `tcp_syn_options` / `tcp_synack_options`.
            opts.mss = Some(sk.advmss);
            if sk.tstamp_ok {
                opts.timestamps = Some(TcpTimestamps {
                    tsval: self.tcp_tsval(sk),
                    tsecr: sk.ts_recent,
                });
            }
            opts.sack_permitted = sk.sack_ok;
            if sk.wscale_ok {
                opts.window_scale = Some(sk.rcv_wscale);
            }
            // Fast Open: only the first transmission carries the option.
            opts.fastopen = sk.fo.syn_opt.take();
            // The window of a SYN is never scaled (RFC 7323 §2.2).
            window = sk.rcv_wnd.min(65535) as u16;
            if seg.flags.ack() {
                ack = sk.rcv_nxt;
            }
        } else {
            if sk.tstamp_ok {
                opts.timestamps = Some(TcpTimestamps {
                    tsval: self.tcp_tsval(sk),
                    tsecr: sk.ts_recent,
                });
            }
            if sk.sack_ok && !seg.flags.rst() {
                let max = if sk.tstamp_ok { 3 } else { 4 };
                let mut blocks = SackBlocks::default();
                if let Some((s, e)) = sk.dsack.take() {
                    blocks.push((s.0, e.0));
                }
                for (s, e) in sk.ofo.sack_blocks(max - blocks.len()) {
                    blocks.push((s.0, e.0));
                }
                opts.sack = blocks;
            }
            window = if seg.flags.rst() && !seg.flags.ack() {
                0
            } else {
                self.tcp_select_window(sk)
            };
            ack = sk.rcv_nxt;
        }
        let repr = TcpRepr {
            src_port: sk.local.1,
            dst_port: sk.remote.1,
            seq_number: seg.seq,
            ack_number: if seg.flags.ack() {
                ack
            } else {
                TcpSeqNumber(0)
            },
            flags: seg.flags,
            window_len: window,
            urgent_pointer: 0,
            options: opts,
            raw_options: Default::default(),
            payload_len: 0,
        };
        let gso_len: usize = seg.gso.iter().map(|g| g.skb.len()).sum();
        let payload_len = seg.payload.len() + gso_len;
        let repr = TcpRepr {
            payload_len,
            ..repr
        };
        let hl = repr.header_len();
        let total = hl + payload_len;
        let Ok(mut skb) = self.pool.alloc(TCP_HEADROOM + total) else {
            return false;
        };
        if skb.reserve(TCP_HEADROOM).is_err() {
            return false;
        }
        let (saddr, daddr) = (sk.local.0, sk.remote.0);
        {
            let Ok(buf) = skb.put(total) else {
                return false;
            };
            if repr
                .emit_header(&mut TcpPacket::new_unchecked(&mut *buf))
                .is_err()
            {
                return false;
            }
            // The one copy of the payload. The checksum is left to the
            // device (CHECKSUM_PARTIAL, as Linux's TCP always does): the
            // field holds the pseudo-header sum, and a device that cannot
            // finish it has it computed in software (`validate_xmit_skb`).
            let (hdr, body) = buf.split_at_mut(hl);
            if seg.gso.is_empty() {
                body.copy_from_slice(seg.payload);
            } else {
                let mut at = 0;
                for g in seg.gso {
                    let d = g.skb.data();
                    body[at..at + d.len()].copy_from_slice(d);
                    at += d.len();
                }
            }
            let pseudo = Checksum::pseudo_header_v4(saddr, daddr, 6, total as u16).sum();
            hdr[16..18].copy_from_slice(&pseudo.to_be_bytes());
        }
        skb.reset_transport_header();
        skb.meta.ip_summed = ChecksumState::Partial {
            start: skb.data_offset() as u16,
            offset: 16,
        };
        let segs = seg.gso.len().max(1) as u16;
        if segs > 1 {
            skb.meta.gso_size = seg.gso[0].skb.len() as u16;
        }
        self.tracer.skb(self.now, "tcp_transmit_skb", &skb);
        let id = sk.inet_id;
        // Each segment of a GSO skb takes its own IP ID (ip_select_ident_segs).
        sk.inet_id = sk.inet_id.wrapping_add(segs);
        let mut ip = sk.ip_opts;
        ip.saddr = Some(saddr);
        ip.tos = (ip.tos & !3) | if ect { 2 } else { 0 };
        // SYN-ACKs and RSTs of request socks go out with IP ID 0.
        let ident = if sk.state == TcpState::SynRecv && syn {
            0
        } else {
            id
        };
        sk.segs_out += u64::from(segs);
        self.tcp.mib.out_segs += u64::from(segs);
        if seg.flags.rst() {
            self.tcp.mib.out_rsts += 1;
        }
        if seg.flags.ack() {
            self.tcp_event_ack_sent(sk);
        }
        let mut cache = sk.dst_cache.take();
        let id = skb.id();
        let ok = self
            .ip_queue_xmit_cached(skb, daddr, ip, Some(ident), &mut cache)
            .is_ok();
        sk.dst_cache = cache;
        // What the qdisc said (NET_XMIT_*): congested or dropped here, on
        // this host, reduces the window (tcp_enter_cwr); dropped means not
        // sent, so the caller keeps the segment to send it again later.
        match self.xmit_refused.take() {
            Some((i, rc)) if i == id => {
                self.tcp_enter_cwr(sk);
                ok && rc != crate::sched::NetXmit::Drop
            }
            _ => ok,
        }
    }

    /// A segment without data (ACK, probe, RST) at `seq`.
    pub(crate) fn tcp_send_ctl(
        &mut self,
        sk: &mut TcpSock,
        seq: TcpSeqNumber,
        flags: TcpFlags,
    ) -> bool {
        self.tcp_transmit_skb(
            sk,
            OutSeg {
                seq,
                flags,
                payload: &[],
                gso: &[],
            },
        )
    }

    /// `tcp_event_ack_sent()`: an ACK went out, the delayed one is void.
    fn tcp_event_ack_sent(&mut self, sk: &mut TcpSock) {
        sk.quick = sk.quick.saturating_sub(1);
        sk.ack_pending = false;
        sk.ack_pushed = 0;
        sk.delack_timer = None;
    }

    /// `tcp_space()`: what the receive buffer can still take, in window
    /// bytes (half the buffer: `tcp_win_from_space` with an overhead ratio
    /// of 2, counted on payload bytes).
    pub(crate) fn tcp_space(sk: &TcpSock) -> u32 {
        let full = Self::tcp_full_space(sk);
        full.saturating_sub((sk.rcv_queued + sk.ofo.bytes()) as u32)
    }

    /// `tcp_full_space()`.
    pub(crate) fn tcp_full_space(sk: &TcpSock) -> u32 {
        (sk.rcvbuf / 2).min(u32::MAX as usize) as u32
    }

    /// `__tcp_select_window()`: the window to offer now, and whether the
    /// receive buffer is short enough to leave quick-ack mode.
    pub(crate) fn tcp_new_window(sk: &TcpSock) -> (u32, bool) {
        let full = Self::tcp_full_space(sk).min(sk.window_clamp);
        let mut mss = sk.rcv_mss.max(1);
        if mss > full {
            mss = full.max(1);
        }
        let mut free = Self::tcp_space(sk);
        let mut pressure = false;
        if free < full / 2 {
            pressure = true;
            if free < mss {
                return (0, true);
            }
        }
        if free > sk.rcv_ssthresh {
            free = sk.rcv_ssthresh;
        }
        let w = if sk.rcv_wscale > 0 {
            let g = 1u32 << sk.rcv_wscale;
            free.div_ceil(g).saturating_mul(g)
        } else {
            // Without scaling, keep the window a multiple of the MSS
            // unless that changes little (Linux's rule).
            let w = sk.rcv_wnd;
            if w <= free.saturating_sub(mss) || w > free {
                (free / mss) * mss
            } else {
                w
            }
        };
        (w, pressure)
    }

    /// `tcp_select_window()`: the window field of an outgoing segment; the
    /// right edge never moves left (RFC 9293 §3.8.6).
    pub(crate) fn tcp_select_window(&mut self, sk: &mut TcpSock) -> u16 {
        let old = sk.rcv_wnd;
        let cur = sk.receive_window();
        let (mut new, pressure) = Self::tcp_new_window(sk);
        if pressure {
            sk.quick = 0;
        }
        if new < cur {
            let g = 1u32 << sk.rcv_wscale;
            new = cur.div_ceil(g).saturating_mul(g);
        }
        let max = 65535u32 << sk.rcv_wscale;
        new = new.min(max);
        sk.rcv_wnd = new;
        sk.rcv_wup = sk.rcv_nxt;
        let wire = new >> sk.rcv_wscale;
        if wire == 0 {
            if old != 0 {
                self.tcp.ext.tcp_to_zero_window_adv += 1;
            }
            self.tcp.ext.tcp_want_zero_window_adv += 1;
        } else if old == 0 {
            self.tcp.ext.tcp_from_zero_window_adv += 1;
        }
        wire.min(65535) as u16
    }

    /// `tcp_acceptable_seq()`: the sequence number of a segment carrying
    /// no data.
    fn tcp_acceptable_seq(sk: &TcpSock) -> TcpSeqNumber {
        let wnd_end = sk.snd_una + sk.snd_wnd;
        if !sk.snd_nxt.after(wnd_end) {
            sk.snd_nxt
        } else {
            wnd_end
        }
    }

    /// `tcp_send_ack()`: a pure ACK now.
    pub(crate) fn tcp_send_ack(&mut self, sk: &mut TcpSock) {
        if sk.state == TcpState::Closed || sk.state == TcpState::Listen {
            return;
        }
        let seq = Self::tcp_acceptable_seq(sk);
        self.tracer
            .event_detail(self.now, "tcp_send_ack", None, u64::from(sk.rcv_nxt.0));
        self.tcp_send_ctl(sk, seq, TcpFlags::ACK);
    }

    /// `tcp_send_challenge_ack()` (RFC 5961): an ACK to an out-of-window
    /// segment, limited per socket (`tcp_invalid_ratelimit`) and per host
    /// (`tcp_challenge_ack_limit` a second).
    pub(crate) fn tcp_send_challenge_ack(&mut self, sk: &mut TcpSock) {
        if self.tcp_oow_rate_limited(sk) {
            self.tcp.ext.tcp_ack_skipped_challenge += 1;
            return;
        }
        let sec = self.now.as_nanos() / 1_000_000_000;
        if self.tcp.challenge_second != sec {
            self.tcp.challenge_second = sec;
            self.tcp.challenge_count = 0;
        }
        if self.tcp.challenge_count >= self.tcp.settings.challenge_ack_limit {
            return;
        }
        self.tcp.challenge_count += 1;
        self.tcp.ext.tcp_challenge_ack += 1;
        self.tcp_send_ack(sk);
    }

    /// `tcp_oow_rate_limited()`: true when an ACK for an invalid segment
    /// was sent less than `tcp_invalid_ratelimit` ago.
    pub(crate) fn tcp_oow_rate_limited(&mut self, sk: &mut TcpSock) -> bool {
        self.tcp_oow_rate_limited_seg(sk, true)
    }

    /// As [`Stack::tcp_oow_rate_limited`]; `pure`: the segment carries no
    /// data (data segments are never limited: not part of an ACK loop).
    pub(crate) fn tcp_oow_rate_limited_seg(&mut self, sk: &mut TcpSock, pure: bool) -> bool {
        if !pure {
            return false;
        }
        let lim = self.tcp.settings.invalid_ratelimit;
        if let Some(t) = sk.last_oow_ack {
            if self.now.saturating_since(t) < lim {
                return true;
            }
        }
        sk.last_oow_ack = Some(self.now);
        false
    }

    /// `tcp_send_delayed_ack()`: arm the delayed-ACK timer.
    pub(crate) fn tcp_send_delayed_ack(&mut self, sk: &mut TcpSock) {
        let mut ato = sk.ato.max(TCP_ATO_MIN);
        if ato > TCP_DELACK_MIN {
            let mut max_ato = Duration::from_millis(500);
            if sk.pingpong {
                max_ato = TCP_DELACK_MAX;
            }
            if let Some(srtt) = sk.rtt.srtt() {
                let rtt = srtt.max(TCP_DELACK_MIN);
                if rtt < max_ato {
                    max_ato = rtt;
                }
            }
            ato = ato.min(max_ato);
        }
        let at = self.now + ato;
        sk.ack_pending = true;
        // Never push an armed timer later (Linux: "if delack timer is about
        // to expire, send ACK now" is approximated by keeping the earlier).
        sk.delack_timer = Some(sk.delack_timer.map_or(at, |t| t.min(at)));
    }

    /// `__tcp_ack_snd_check()`: ACK now, or later.
    pub(crate) fn tcp_ack_snd_check(&mut self, sk: &mut TcpSock, ofo_possible: bool) {
        if !sk.ack_pending {
            return;
        }
        let more_than_one = sk.rcv_nxt.0.wrapping_sub(sk.rcv_wup.0) > sk.rcv_mss;
        let in_quickack = sk.quick > 0 && !sk.pingpong;
        if (more_than_one && Self::tcp_new_window(sk).0 >= sk.rcv_wnd)
            || in_quickack
            || (ofo_possible && !sk.ofo.is_empty())
        {
            self.tcp_send_ack(sk);
        } else {
            self.tcp_send_delayed_ack(sk);
        }
    }

    /// `tcp_current_mss()` / `tcp_sync_mss()`: payload per segment for the
    /// path MTU, the peer's MSS and the options in use.
    pub(crate) fn tcp_sync_mss(&mut self, sk: &mut TcpSock, pmtu: u32) -> u32 {
        sk.pmtu = pmtu;
        // A segment must fit IPv4's 65535-byte maximum (IPV4_MAX_PMTU).
        let mut mss = pmtu.min(65535).saturating_sub(40);
        mss = mss.min(u32::from(sk.mss_clamp));
        if sk.user_mss > 0 {
            mss = mss.min(u32::from(sk.user_mss));
        }
        if sk.tstamp_ok {
            mss = mss.saturating_sub(12);
        }
        mss = mss.max(self.tcp.settings.min_snd_mss.max(8));
        // MTU probing: never above what the search has confirmed.
        if sk.mtup.search_high > pmtu {
            sk.mtup.search_high = pmtu;
        }
        if sk.mtup.enabled {
            mss = mss.min(sk.mtu_to_mss(sk.mtup.search_low, self.tcp.settings.min_snd_mss));
        }
        sk.mss_cache = mss;
        sk.cc.mss = mss;
        mss
    }

    /// `tcp_current_mss()`: the MSS, resynced when the socket's cached route
    /// reports another MTU than the one it was computed for. The cached
    /// route is used as it is (`__sk_dst_get`, not revalidated): a routing
    /// change shows once a transmission has looked the route up again.
    pub(crate) fn tcp_current_mss(&mut self, sk: &mut TcpSock) -> u32 {
        if let Some((dst, _)) = sk.dst_cache {
            if dst.mtu != sk.pmtu && dst.mtu > 0 {
                return self.tcp_sync_mss(sk, dst.mtu);
            }
        }
        sk.mss_cache
    }

    /// The route towards the peer, looked up now, with its metrics.
    pub(crate) fn tcp_route(
        &self,
        sk: &TcpSock,
    ) -> Option<(crate::ipv4::route::Dst, crate::ipv4::route::RouteMetrics)> {
        self.ip_route_output_metrics(
            sk.remote.0,
            Some(sk.local.0),
            sk.ip_opts.oif,
            sk.ip_opts.mark,
        )
        .ok()
    }

    /// The path MTU towards the peer (route + PMTU exceptions).
    pub(crate) fn tcp_path_mtu(&self, sk: &TcpSock) -> u32 {
        self.tcp_route(sk).map_or(576, |(d, _)| d.mtu)
    }

    /// `tcp_push()` → `tcp_write_xmit()`: sends what the windows and Nagle
    /// allow; `nonagle` says what to do with a partial last segment.
    pub(crate) fn tcp_write_xmit(&mut self, sk: &mut TcpSock, nonagle: Nonagle) -> bool {
        // A Fast Open child sends before the handshake completes.
        let fastopen = sk.state == TcpState::SynRecv && sk.fo.passive_child;
        if !fastopen
            && !matches!(
                sk.state,
                TcpState::Established
                    | TcpState::CloseWait
                    | TcpState::FinWait1
                    | TcpState::Closing
                    | TcpState::LastAck
            )
        {
            return false;
        }
        let mss = self.tcp_current_mss(sk).max(1);
        if !sk.write_queue.is_empty() {
            // Also here: data queued while the peer's window was shut goes
            // out after an idle period when the window opens.
            self.tcp_slow_start_after_idle_check(sk);
        }
        self.tracer.event_detail(
            self.now,
            "tcp_write_xmit",
            None,
            sk.write_queue.len() as u64,
        );
        let mut sent_any = false;
        let mut cwnd_limited = false;
        let prior_packets = sk.packets_out;
        match self.tcp_mtu_probe(sk) {
            super::mtu_probe::Probe::Wait => return false,
            super::mtu_probe::Probe::Sent => sent_any = true,
            super::mtu_probe::Probe::No => {}
        }
        // Linux sends what one call allows as GSO packets of at most
        // min(cwnd / 2, cwnd - in_flight, tso_segs) segments and forces PSH
        // on each GSO packet: on the wire, the last segment of each group
        // of two or more carries PSH.
        let tso_segs = self.tcp_tso_segs(sk);
        let mut gso_left = 0u32;
        let mut gso_len = 0u32;
        // Full-sized segments of one GSO packet go down the stack as one
        // skb when the route's device does GSO (`sk_can_gso`): gathered here,
        // sent by `tcp_send_run`.
        let max_run = self.tcp_gso_max_segs(sk, mss);
        let mut run = std::mem::take(&mut self.tcp.gso_run);
        run.clear();
        while let Some(front) = sk.write_queue.front() {
            // Split a segment larger than the MSS (the path MTU shrank).
            if front.skb.len() as u32 > mss {
                if !self.tcp_fragment_front(sk, mss) {
                    break;
                }
                continue;
            }
            let pending = run.len() as u32;
            match Self::tcp_can_send_head(sk, pending, nonagle) {
                Ok(()) => {}
                Err(cwnd) => {
                    cwnd_limited = cwnd;
                    break;
                }
            }
            let Some(seg) = sk.write_queue.pop_front() else {
                break;
            };
            if gso_left == 0 {
                let cwnd = sk.cc.cwnd;
                let quota = (cwnd / 2).max(1).min(cwnd.saturating_sub(sk.in_flight()));
                gso_len = quota.min(tso_segs).max(1);
                gso_left = gso_len;
                sk.gso_seq = sk.gso_seq.wrapping_add(1);
            }
            gso_left -= 1;
            let last_of_packet =
                gso_left == 0 || Self::tcp_can_send_head(sk, pending + 1, nonagle).is_err();
            // The forced PSH is the GSO packet's, not the segment's: a
            // retransmission does not repeat it.
            let gso_psh = last_of_packet && gso_len - gso_left >= 2;
            if last_of_packet {
                gso_left = 0;
            }
            // A run ends with the GSO packet, at a segment that is short or
            // carries flags of its own, or at the device's limit.
            let ends_run = last_of_packet
                || seg.flags & (SEG_PSH | SEG_FIN | SEG_SYN) != 0
                || seg.skb.len() as u32 != mss
                || run.len() + 1 >= max_run;
            run.push(seg);
            if ends_run {
                if !self.tcp_send_run(sk, &mut run, gso_psh) {
                    break;
                }
                sent_any = true;
                if last_of_packet {
                    // tso_fragment: the rest of the skb is an skb of its own.
                    sk.wmem_split_unsent();
                }
            }
        }
        if !run.is_empty() && self.tcp_send_run(sk, &mut run, false) {
            sent_any = true;
        }
        if sent_any {
            sk.wmem_split_unsent();
        }
        self.tcp.gso_run = run;
        let is_cwnd_limited = cwnd_limited || sk.in_flight() >= sk.cc.cwnd;
        if sent_any || is_cwnd_limited {
            Self::tcp_cwnd_validate(sk, is_cwnd_limited);
        }
        // Stopped by the peer's window (not cwnd, not Nagle)?
        let rwnd_limited = !cwnd_limited
            && sk.write_queue.front().is_some_and(|f| {
                let len = (f.skb.len() as u32).min(mss);
                (f.seq + len).after(sk.snd_una + sk.snd_wnd)
            });
        if rwnd_limited {
            sk.chrono_start(super::sock::Chrono::RwndLimited, self.now);
        } else {
            sk.chrono_stop(super::sock::Chrono::RwndLimited, self.now);
        }
        if sent_any {
            if prior_packets == 0
                || matches!(
                    sk.xmit_timer,
                    Some((_, XmitTimer::LossProbe | XmitTimer::Probe0))
                )
            {
                self.tcp_rearm_rto(sk);
            }
            self.tcp_schedule_loss_probe(sk, false);
        }
        self.tcp_check_probe_timer(sk);
        sent_any
    }

    /// `tcp_slow_start_after_idle_check()` → `tcp_cwnd_restart()` (RFC 5681
    /// §4.1), when the application queues data: after an idle period
    /// longer than the RTO, cwnd halves per RTO idle, down to the initial
    /// window.
    pub(crate) fn tcp_slow_start_after_idle_check(&mut self, sk: &mut TcpSock) {
        if !self.tcp.settings.slow_start_after_idle || sk.packets_out > 0 {
            return;
        }
        let idle = self.now.saturating_since(sk.lsndtime);
        let rto = sk.rtt.rto();
        if idle <= rto {
            return;
        }
        let restart = super::cong::TCP_INIT_CWND.min(sk.cc.cwnd);
        sk.cc.ssthresh = sk.cc.ssthresh.max(sk.cc.cwnd / 2 + sk.cc.cwnd / 4);
        let mut cwnd = sk.cc.cwnd;
        let mut left = idle.as_nanos().saturating_sub(rto.as_nanos());
        while left > 0 && cwnd > restart {
            cwnd >>= 1;
            left = left.saturating_sub(rto.as_nanos());
        }
        sk.cc.cwnd = cwnd.max(restart);
    }

    /// `tcp_tso_segs()` / `tcp_tso_autosize()`: segments per GSO packet,
    /// about 1 ms at the pacing rate (plus more on short paths), at least
    /// `tcp_min_tso_segs`. The pacing rate is Linux's: cwnd × MSS / srtt,
    /// times 200 % in slow start or 120 % after it.
    pub(crate) fn tcp_tso_segs(&self, sk: &TcpSock) -> u32 {
        let mss = u64::from(sk.mss_cache.max(1));
        let st = &self.tcp.settings;
        let bytes;
        if let Some(srtt) = sk.rtt.srtt() {
            let ratio = if sk.cc.in_slow_start() {
                st.pacing_ss_ratio
            } else {
                st.pacing_ca_ratio
            };
            let cwnd = u64::from(sk.cc.cwnd.max(sk.packets_out));
            let rate = mss * 1_000_000 / srtt.as_micros().max(1) * cwnd * u64::from(ratio) / 100;
            let mut b = rate >> 10;
            let r = sk.rtt.min_rtt().map_or(u64::MAX, |m| m.as_micros() >> 9);
            if r < 32 {
                b += 65536 >> r;
            }
            bytes = b;
        } else {
            bytes = 65536;
        }
        ((bytes.min(65536) / mss) as u32).max(st.min_tso_segs)
    }

    /// Whether the head of the write queue may go now with `extra` more
    /// segments in flight: `tcp_cwnd_test`, `tcp_snd_wnd_test` and
    /// `tcp_nagle_test`. `Err(true)` when the congestion window is what
    /// stops it.
    fn tcp_can_send_head(sk: &TcpSock, extra: u32, nonagle: Nonagle) -> Result<(), bool> {
        let Some(front) = sk.write_queue.front() else {
            return Err(false);
        };
        if sk.in_flight() + extra >= sk.cc.cwnd {
            return Err(true);
        }
        let mss = sk.mss_cache.max(1);
        let len = (front.skb.len() as u32).min(mss);
        let wnd_end = sk.snd_una + sk.snd_wnd;
        if (front.seq + len).after(wnd_end) {
            return Err(false);
        }
        let partial = (front.skb.len() as u32) < mss && front.flags & SEG_FIN == 0;
        if partial && sk.write_queue.len() == 1 {
            // tcp_nagle_check (with Minshall's variant): hold while corked,
            // or while a small segment is unacknowledged.
            let minshall = sk.snd_sml.after(sk.snd_una) && !sk.snd_sml.after(sk.snd_nxt);
            let hold = match nonagle {
                Nonagle::Push => false,
                Nonagle::Cork => true,
                Nonagle::Normal => {
                    sk.cork || (!sk.nodelay && sk.packets_out + extra > 0 && minshall)
                }
            };
            if hold {
                return Err(false);
            }
        }
        Ok(())
    }

    /// Segments a GSO skb may carry on this socket's route: none (1) unless
    /// the device does GSO; else as many as fit 64 KiB of IPv4 and the
    /// pool's large buffers.
    fn tcp_gso_max_segs(&self, sk: &TcpSock, mss: u32) -> usize {
        let Some((dst, _)) = sk.dst_cache else {
            return 1;
        };
        if !self.dev(dst.dev).is_ok_and(|d| d.gso) {
            return 1;
        }
        let room = (self.pool.config().large_size)
            .saturating_sub(TCP_HEADROOM)
            .min(65535)
            .saturating_sub(20 + 60);
        (room / mss.max(1) as usize).max(1)
    }

    /// The header flags of new data `seg` (PSH also when it ends a GSO
    /// packet of two or more segments).
    fn new_data_flags(seg: &TxSeg, gso_psh: bool) -> TcpFlags {
        let mut flags = TcpFlags::ACK;
        if seg.flags & SEG_PSH != 0 || gso_psh {
            flags |= TcpFlags::PSH;
        }
        if seg.flags & SEG_FIN != 0 {
            flags |= TcpFlags::FIN;
        }
        if seg.flags & SEG_SYN != 0 {
            flags |= TcpFlags::SYN;
        }
        flags
    }

    /// CA_EVENT_TX_START when nothing is in flight (CUBIC rebases its
    /// epoch after idle).
    fn tcp_tx_start(&mut self, sk: &mut TcpSock) {
        if sk.packets_out == 0 {
            let ca = &mut sk.ca;
            sk.cc.tcp_mstamp = self.now;
            ca.cwnd_event(&mut sk.cc, super::cong::CaEvent::TxStart);
        }
    }

    /// Sends `run` (consecutive new segments, emptied on success): one
    /// segment as itself, several as one GSO skb. On failure the segments
    /// go back to the head of the write queue.
    fn tcp_send_run(&mut self, sk: &mut TcpSock, run: &mut Vec<TxSeg>, gso_psh: bool) -> bool {
        if run.len() <= 1 {
            return match run.pop() {
                Some(seg) => self.tcp_send_seg(sk, seg, gso_psh),
                None => false,
            };
        }
        // The flags are the last segment's (GSO puts PSH and FIN there).
        let (first, flags) = (
            run[0].seq,
            Self::new_data_flags(&run[run.len() - 1], gso_psh),
        );
        self.tcp_tx_start(sk);
        let ok = self.tcp_transmit_skb(
            sk,
            OutSeg {
                seq: first,
                flags,
                payload: &[],
                gso: run,
            },
        );
        if !ok {
            while let Some(seg) = run.pop() {
                sk.write_queue.push_front(seg);
            }
            return false;
        }
        for seg in run.drain(..) {
            self.tcp_event_new_data_sent(sk, seg);
        }
        true
    }

    /// Sends a new segment and moves it to the retransmit queue
    /// (`tcp_event_new_data_sent`).
    pub(crate) fn tcp_send_seg(&mut self, sk: &mut TcpSock, seg: TxSeg, gso_psh: bool) -> bool {
        let flags = Self::new_data_flags(&seg, gso_psh);
        self.tcp_tx_start(sk);
        // Hold the skb while its bytes are copied into the frame.
        let payload = seg.skb.data();
        let ok = {
            // Reborrow rules: copy the fields the transmit needs first.
            let out = OutSeg {
                seq: seg.seq,
                flags,
                payload,
                gso: &[],
            };
            // SAFETY-free: `payload` borrows `seg`, not `sk`.
            self.tcp_transmit_skb(sk, out)
        };
        if !ok {
            sk.write_queue.push_front(seg);
            return false;
        }
        self.tcp_event_new_data_sent(sk, seg);
        true
    }

    /// `tcp_event_new_data_sent()`: `seg` went out for the first time; it
    /// moves to the retransmit queue.
    fn tcp_event_new_data_sent(&mut self, sk: &mut TcpSock, mut seg: TxSeg) {
        seg.gso = sk.gso_seq;
        let len = seg.skb.len() as u32;
        seg.sent = self.now;
        seg.first_sent = self.now;
        seg.delivered = sk.delivered;
        if len > 0 {
            sk.data_segs_out += 1;
            sk.bytes_sent += u64::from(len);
            self.tcp.ext.tcp_orig_data_sent += 1;
            if len < sk.mss_cache {
                sk.snd_sml = seg.end_seq;
            }
        }
        sk.snd_nxt = seg.end_seq;
        sk.cc.snd_nxt = sk.snd_nxt.0;
        sk.packets_out += 1;
        sk.lsndtime = self.now;
        sk.cc.lsndtime = self.now;
        // tcp_event_data_sent: answering soon after receiving → interactive
        // (never before any data came in: ato is still 0 then).
        if self.now.saturating_since(sk.lrcvtime) < sk.ato && len > 0 {
            sk.pingpong = true;
        }
        sk.rtx_queue.push_back(seg);
    }

    /// `tcp_fragment()` of the head of the write queue at `mss` bytes (the
    /// tail is copied into a new skb: a rare path, after a PMTU drop).
    fn tcp_fragment_front(&mut self, sk: &mut TcpSock, mss: u32) -> bool {
        let Some(mut seg) = sk.write_queue.pop_front() else {
            return false;
        };
        let Some(tail) = self.tcp_split_seg(&mut seg, mss) else {
            sk.write_queue.push_front(seg);
            return false;
        };
        sk.write_queue.push_front(tail);
        sk.write_queue.push_front(seg);
        true
    }

    /// Splits `seg` after `at` payload bytes; returns the second half.
    pub(crate) fn tcp_split_seg(&mut self, seg: &mut TxSeg, at: u32) -> Option<TxSeg> {
        let len = seg.skb.len() as u32;
        if at == 0 || at >= len {
            return None;
        }
        let mut skb = self.pool.alloc((len - at) as usize).ok()?;
        skb.put_slice(&seg.skb.data()[at as usize..]).ok()?;
        seg.skb.trim(at as usize).ok()?;
        let tail = TxSeg {
            seq: seg.seq + at,
            end_seq: seg.end_seq,
            skb,
            flags: seg.flags,
            sent: seg.sent,
            first_sent: seg.first_sent,
            sacked: seg.sacked,
            lost: seg.lost,
            retrans: seg.retrans,
            ever_retrans: seg.ever_retrans,
            delivered: seg.delivered,
            gso: seg.gso,
            head: false,
        };
        seg.end_seq = seg.seq + at;
        seg.flags &= !(SEG_FIN | SEG_PSH | SEG_EOR);
        Some(tail)
    }

    /// `tcp_retransmit_skb()` of the `i`-th segment of the retransmit
    /// queue.
    pub(crate) fn tcp_retransmit_skb(&mut self, sk: &mut TcpSock, i: usize) -> bool {
        self.tcp_retransmit_seg(sk, i, false)
    }

    /// `tcp_retransmit_skb()` of the `i`-th segment, the last of a
    /// retransmitted GSO packet of two or more segments when `gso_psh`
    /// (`__tcp_transmit_skb` forces PSH on every GSO packet, new or
    /// retransmitted).
    pub(crate) fn tcp_retransmit_seg(&mut self, sk: &mut TcpSock, i: usize, gso_psh: bool) -> bool {
        let mss = sk.mss_cache.max(1);
        // Segments larger than the current MSS are split first.
        if let Some(seg) = sk.rtx_queue.get_mut(i) {
            if seg.skb.len() as u32 > mss {
                let mut s = match sk.rtx_queue.remove(i) {
                    Some(s) => s,
                    None => return false,
                };
                if let Some(tail) = self.tcp_split_seg(&mut s, mss) {
                    // tcp_fragment's tcp_adjust_pcount: the tail counts too.
                    sk.lost_out += u32::from(tail.lost);
                    sk.retrans_out += u32::from(tail.retrans);
                    sk.rtx_queue.insert(i, tail);
                    sk.packets_out += 1;
                }
                sk.rtx_queue.insert(i, s);
            }
        }
        let Some(seg) = sk.rtx_queue.get(i) else {
            return false;
        };
        let mut flags = TcpFlags::ACK;
        if seg.flags & SEG_SYN != 0 {
            flags = TcpFlags::SYN;
            if sk.state == TcpState::SynRecv {
                flags |= TcpFlags::ACK;
            }
        }
        if seg.flags & SEG_FIN != 0 {
            flags |= TcpFlags::FIN;
        }
        if seg.flags & SEG_PSH != 0 || gso_psh {
            flags |= TcpFlags::PSH;
        }
        let seq = seg.seq;
        // The skb is moved out for the copy (sk is borrowed mutably by the
        // transmit), and put back.
        let Some(mut seg) = sk.rtx_queue.remove(i) else {
            return false;
        };
        let ok = self.tcp_transmit_skb(
            sk,
            OutSeg {
                seq,
                flags,
                payload: seg.skb.data(),
                gso: &[],
            },
        );
        if ok {
            let len = seg.skb.len() as u64;
            if !seg.retrans {
                sk.retrans_out += 1;
            }
            seg.retrans = true;
            seg.ever_retrans = true;
            seg.sent = self.now;
            sk.total_retrans += 1;
            sk.bytes_retrans += len;
            self.tcp.mib.retrans_segs += 1;
            if sk.retrans_stamp.is_none() {
                sk.retrans_stamp = Some(seg.first_sent);
            }
            if flags.syn() {
                self.tcp.ext.tcp_syn_retrans += 1;
            }
        } else {
            // Not sent (e.g. the local qdisc dropped it): tried again later.
            self.tcp.ext.tcp_retrans_fail += 1;
        }
        sk.rtx_queue.insert(i, seg);
        ok
    }

    /// `tcp_cwnd_validate()`: how fully the window is used, per window of
    /// data: whether sending was limited by cwnd, else the most packets out
    /// (`tcp_is_cwnd_limited` lets cwnd grow only when it is the limit, or
    /// in slow start below twice that most).
    fn tcp_cwnd_validate(sk: &mut TcpSock, is_cwnd_limited: bool) {
        if !sk.snd_una.before(sk.cwnd_usage_seq)
            || is_cwnd_limited
            || (!sk.cc.is_cwnd_limited && sk.packets_out > sk.cc.max_packets_out)
        {
            sk.cc.is_cwnd_limited = is_cwnd_limited;
            sk.cc.max_packets_out = sk.packets_out;
            sk.cwnd_usage_seq = sk.snd_nxt;
        }
    }

    /// `tcp_rearm_rto()`: the retransmission timer from now (or cleared
    /// when nothing is outstanding).
    pub(crate) fn tcp_rearm_rto(&mut self, sk: &mut TcpSock) {
        // The timer retransmits a Fast Open child's SYN-ACK: it stays put.
        if sk.fo.passive_child && sk.state == TcpState::SynRecv {
            return;
        }
        if sk.rtx_queue.is_empty() {
            if matches!(
                sk.xmit_timer,
                Some((
                    _,
                    XmitTimer::Retrans | XmitTimer::LossProbe | XmitTimer::ReoTimeout
                ))
            ) {
                sk.xmit_timer = None;
            }
            return;
        }
        let mut rto = sk.rtt.timeout();
        // "Offset the time elapsed after installing regular RTO" when a
        // RACK/TLP timer was pending, as Linux does.
        if let Some((_, XmitTimer::ReoTimeout | XmitTimer::LossProbe)) = sk.xmit_timer {
            if let Some(head) = sk.rtx_queue.front() {
                let elapsed = self.now.saturating_since(head.sent);
                rto = Duration::from_nanos(rto.as_nanos().saturating_sub(elapsed.as_nanos()));
            }
        }
        sk.xmit_timer = Some((self.now + rto, XmitTimer::Retrans));
    }

    /// `tcp_set_xmit_timer()`: after an ACK that advanced `snd_una`, a
    /// loss probe if one may be sent, else the retransmission timer.
    pub(crate) fn tcp_set_xmit_timer(&mut self, sk: &mut TcpSock) {
        if !self.tcp_schedule_loss_probe(sk, true) {
            self.tcp_rearm_rto(sk);
        }
    }

    /// `tcp_schedule_loss_probe()` (RFC 8985 TLP): true if the probe timer
    /// was armed. `advancing_rto`: the RTO is about to be restarted from
    /// now (an ACK), rather than running from the head's transmission.
    pub(crate) fn tcp_schedule_loss_probe(
        &mut self,
        sk: &mut TcpSock,
        advancing_rto: bool,
    ) -> bool {
        if !self.tcp.settings.tlp || !sk.sack_ok || sk.state != TcpState::Established {
            return false;
        }
        if sk.cc.ca_state != super::cong::CaState::Open || sk.tlp_high_seq.is_some() {
            return false;
        }
        if sk.packets_out == 0 {
            return false;
        }
        let timeout = match sk.rtt.srtt() {
            Some(srtt) => {
                let base = Duration::from_nanos(srtt.as_nanos() * 2);
                if sk.packets_out == 1 {
                    base + super::rtt::TCP_RTO_MIN
                } else {
                    base + TCP_TIMEOUT_MIN
                }
            }
            None => super::rtt::TCP_TIMEOUT_INIT,
        };
        let mut at = self.now + timeout;
        // Never later than the RTO would fire.
        let rto_at = if advancing_rto {
            Some(self.now + sk.rtt.timeout())
        } else {
            sk.rtx_queue
                .front()
                .map(|head| head.sent + sk.rtt.timeout())
        };
        if let Some(rto_at) = rto_at {
            if rto_at < at {
                at = rto_at.max(self.now);
            }
        }
        sk.xmit_timer = Some((at, XmitTimer::LossProbe));
        true
    }

    /// `tcp_check_probe_timer()`: nothing in flight, data waiting for
    /// window: arm the persist timer.
    pub(crate) fn tcp_check_probe_timer(&mut self, sk: &mut TcpSock) {
        if sk.packets_out == 0 && !sk.write_queue.is_empty() && sk.xmit_timer.is_none() {
            let when = sk.rtt.timeout();
            sk.xmit_timer = Some((self.now + when, XmitTimer::Probe0));
        }
    }

    /// `tcp_xmit_probe_skb()`: a segment the peer must ACK, with a sequence
    /// number it has seen (snd_una - 1): zero-window and keepalive probes.
    pub(crate) fn tcp_xmit_probe_skb(&mut self, sk: &mut TcpSock) {
        let seq = sk.snd_una - 1;
        self.tcp_send_ctl(sk, seq, TcpFlags::ACK);
    }

    /// `tcp_write_wakeup()`: send what the window allows of the next
    /// segment (split to fit), or a probe.
    pub(crate) fn tcp_write_wakeup(&mut self, sk: &mut TcpSock) {
        let wnd_end = sk.snd_una + sk.snd_wnd;
        if let Some(front) = sk.write_queue.front() {
            if front.seq.before(wnd_end) {
                let room = wnd_end.0.wrapping_sub(front.seq.0);
                let mss = sk.mss_cache.max(1);
                let cut = room.min(mss);
                if (front.skb.len() as u32) > cut {
                    if let Some(mut seg) = sk.write_queue.pop_front() {
                        if let Some(tail) = self.tcp_split_seg(&mut seg, cut) {
                            sk.write_queue.push_front(tail);
                        }
                        sk.write_queue.push_front(seg);
                    }
                }
                if let Some(mut seg) = sk.write_queue.pop_front() {
                    // A data probe is pushed (and counts as a push).
                    if seg.end_seq.after(sk.pushed_seq) {
                        sk.pushed_seq = seg.end_seq;
                    }
                    seg.flags |= SEG_PSH;
                    if self.tcp_send_seg(sk, seg, false) {
                        sk.wmem_split_unsent();
                        self.tcp_rearm_rto(sk);
                        return;
                    }
                }
            }
        }
        self.tcp_xmit_probe_skb(sk);
    }

    /// Queues the SYN and sends it (`tcp_connect`).
    pub(crate) fn tcp_send_syn(&mut self, sk: &mut TcpSock, with_ack: bool) -> bool {
        let Ok(skb) = self.pool.alloc(0) else {
            return false;
        };
        let seg = fresh_seg(sk.iss, skb, SEG_SYN, self.now);
        let mut flags = TcpFlags::SYN;
        if with_ack {
            flags |= TcpFlags::ACK;
        }
        sk.snd_nxt = sk.iss + 1;
        sk.write_seq = sk.snd_nxt;
        sk.packets_out += 1;
        sk.rtx_queue.push_back(seg);
        let ok = self.tcp_transmit_skb(
            sk,
            OutSeg {
                seq: sk.iss,
                flags,
                payload: &[],
                gso: &[],
            },
        );
        sk.xmit_timer = Some((self.now + sk.rtt.timeout(), XmitTimer::Retrans));
        ok
    }

    /// `tcp_send_fin()`: the FIN rides on the last unsent segment, or goes
    /// alone.
    pub(crate) fn tcp_send_fin(&mut self, sk: &mut TcpSock) {
        if let Some(last) = sk.write_queue.back_mut() {
            last.flags |= SEG_FIN | SEG_PSH;
            last.end_seq += 1;
        } else {
            let Ok(skb) = self.pool.alloc(0) else {
                return;
            };
            let mut fin = fresh_seg(sk.write_seq, skb, SEG_FIN, self.now);
            sk.wmem_charge_head(&mut fin);
            sk.write_queue.push_back(fin);
        }
        sk.write_seq += 1;
        self.tcp_write_xmit(sk, Nonagle::Push);
    }

    /// `tcp_send_active_reset()`: RST+ACK at snd_nxt (close with unread
    /// data, SO_LINGER 0, abort).
    pub(crate) fn tcp_send_active_reset(&mut self, sk: &mut TcpSock) {
        let seq = Self::tcp_acceptable_seq(sk);
        self.tcp_send_ctl(sk, seq, TcpFlags::RST | TcpFlags::ACK);
    }
}

/// The first transmission time of a queued skb that has none yet.
pub(crate) fn fresh_seg(seq: TcpSeqNumber, skb: Skb, flags: u8, now: Instant) -> TxSeg {
    let len = skb.len() as u32 + u32::from(flags & SEG_SYN != 0) + u32::from(flags & SEG_FIN != 0);
    TxSeg {
        seq,
        end_seq: seq + len,
        skb,
        flags,
        sent: now,
        first_sent: now,
        sacked: false,
        lost: false,
        retrans: false,
        ever_retrans: false,
        delivered: 0,
        gso: 0,
        head: false,
    }
}
