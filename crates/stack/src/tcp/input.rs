//! `tcp_v4_rcv` (`net/ipv4/tcp_ipv4.c`) and the state machine of
//! `net/ipv4/tcp_input.c`, seed ingress step 11: the header is checked and
//! its checksum verified (a bad one counted in `InCsumErrors` and dropped
//! `TCP_CSUM`), the header pulled, the socket looked up (established
//! first, then listeners); with none, the segment is answered with a RST
//! as `tcp_v4_send_reset` does and dropped `NO_SOCKET`. Then
//! `tcp_rcv_state_process` runs the RFC 9293 state machine (with RFC 5961's
//! challenge ACKs and RFC 7323's PAWS), `tcp_ack` processes the ACK, and
//! `tcp_data_queue` puts the payload on the receive queue (or the
//! out-of-order queue) and wakes the reader.

use core::net::Ipv4Addr;

use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpSeqNumber};

use super::sock::{TcpSock, TcpState, XmitTimer, ACK_PUSHED, ACK_PUSHED2};
use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::ipv4::output::{IpSendOpts, PmtuDisc};
use crate::skb::{ChecksumState, Skb};
use crate::sock::table::Lookup;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Duration;

/// `TCP_TIMEWAIT_LEN`.
pub const TCP_TIMEWAIT_LEN: Duration = Duration::from_secs(60);
/// `TCP_PAWS_24DAYS`: a `ts_recent` older than this no longer counts.
const TCP_PAWS_24DAYS: Duration = Duration::from_secs(60 * 60 * 24 * 24);

/// The fields of an arriving segment (`tcp_skb_cb` + parsed options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: TcpSeqNumber,
    /// seq + payload + SYN + FIN.
    pub end_seq: TcpSeqNumber,
    pub ack: TcpSeqNumber,
    pub flags: TcpFlags,
    pub wnd: u16,
    pub opts: TcpOptions,
    /// Payload bytes.
    pub len: u32,
    /// TCP header length with options (`doff * 4`).
    pub hdr_len: u8,
    pub dev: IfIndex,
    /// The IP header's ECN field said CE (congestion experienced).
    pub ce: bool,
    /// Payload bytes per segment of a packet GRO merged (0: one segment).
    pub gso_size: u16,
    /// The urgent pointer field (meaningful with URG).
    pub urg_ptr: u16,
    /// Its MD5 / TCP-AO options (`tcp_parse_auth_options`).
    pub auth: super::md5::AuthOpt,
}

impl Seg {
    /// `max(1, gso_segs)`: the segments this packet was on the wire.
    pub fn segs(&self) -> u32 {
        match self.gso_size {
            0 => 1,
            g => self.len.div_ceil(u32::from(g)).max(1),
        }
    }
}

/// `tcp_fast_parse_options`: the aligned timestamp-only layout Linux sends
/// on every segment is read directly, anything else walks the options.
fn parse_options(raw: &[u8]) -> TcpOptions {
    if raw.len() == 12 && raw[..4] == [1, 1, 8, 10] {
        return TcpOptions {
            timestamps: Some(netpath_wire::tcp::TcpTimestamps {
                tsval: u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]),
                tsecr: u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]),
            }),
            ..TcpOptions::default()
        };
    }
    TcpOptions::parse(raw)
}

impl Stack {
    /// `Tcp:` counters.
    pub fn tcp_mib(&self) -> &super::TcpMib {
        &self.tcp.mib
    }

    /// `TcpExt:` counters.
    pub fn tcp_ext_mib(&self) -> &super::TcpExtMib {
        &self.tcp.ext
    }

    /// `tcp_v4_rcv()`: data at the TCP header, network header at IPv4.
    pub(crate) fn tcp_v4_rcv(&mut self, mut skb: Skb) {
        self.tracer.skb(self.now, "tcp_v4_rcv", &skb);
        let Ok(ip) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if skb.meta.pkt_type != crate::skb::PacketType::Host {
            self.kfree_skb(skb, DropReason::OtherHost);
            return;
        }
        let seg = match TcpPacket::new_checked(skb.data()) {
            Ok(t) => {
                // Linux counts it even if it is bad.
                self.tcp.mib.in_segs += 1;
                // skb_csum_unnecessary(): verified by the NIC, or left
                // partial by a local sender (loopback, veth) or by the
                // sending hardware of a simulated wire.
                let known_good = matches!(
                    skb.meta.ip_summed,
                    ChecksumState::Unnecessary | ChecksumState::Partial { .. }
                );
                if !known_good && !t.verify_checksum(src, dst) {
                    self.tcp.mib.in_csum_errors += 1;
                    self.tcp.mib.in_errs += 1;
                    self.kfree_skb(skb, DropReason::TcpCsum);
                    return;
                }
                let flags = t.flags();
                let len = t.payload().len() as u32;
                let seq = t.seq_number();
                Seg {
                    saddr: src,
                    daddr: dst,
                    sport: t.src_port(),
                    dport: t.dst_port(),
                    seq,
                    end_seq: seq + len + u32::from(flags.syn()) + u32::from(flags.fin()),
                    ack: t.ack_number(),
                    flags,
                    wnd: t.window_len(),
                    opts: parse_options(t.options()),
                    len,
                    hdr_len: t.header_len() as u8,
                    dev: skb.meta.ingress_dev.unwrap_or(IfIndex(1)),
                    ce: ip.ecn() == 3,
                    gso_size: skb.meta.gso_size,
                    urg_ptr: t.urgent_at(),
                    auth: super::md5::tcp_parse_auth_options(t.options()),
                }
            }
            Err(_) => {
                self.tcp.mib.in_errs += 1;
                self.kfree_skb(skb, DropReason::PktTooSmall);
                return;
            }
        };
        let hl = TcpPacket::new_unchecked(skb.data()).header_len();
        // Remove (pull) the TCP header: data() is the payload from here.
        if skb.pull(hl).is_err() {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        let flow = flow_hash(&seg);
        // The socket early demux found for this very skb, if it still is
        // the segment's connection (netfilter may have rewritten it since).
        let demuxed = match self.demuxed.take() {
            Some((skb_id, id)) if skb_id == skb.id() => self
                .tcp
                .get(id)
                .is_some_and(|sk| {
                    sk.local == (seg.daddr, seg.dport) && sk.remote == (seg.saddr, seg.sport)
                })
                .then_some(id),
            _ => None,
        };
        let found = match demuxed {
            Some(id) => Some(Lookup::Established(id)),
            None => self
                .tcp
                .hash
                .lookup(seg.saddr, seg.sport, seg.daddr, seg.dport, seg.dev, flow),
        };
        match found {
            None => self.tcp_no_socket(&seg, skb),
            Some(Lookup::Listener(id)) => {
                if let Some(r) = self.tcp_inbound_hash_at(id, &seg) {
                    self.kfree_skb(skb, r);
                    return;
                }
                self.tcp_listen_rcv(id, &seg, skb)
            }
            Some(Lookup::Established(id)) => {
                let Some(mut sk) = self.tcp.take(id) else {
                    self.tcp_no_socket(&seg, skb);
                    return;
                };
                // TIME-WAIT is handled before tcp_inbound_hash runs.
                if sk.state != TcpState::TimeWait {
                    if let Some(r) = self.tcp_inbound_hash(&sk, &seg) {
                        self.tcp_sock_done(sk);
                        self.kfree_skb(skb, r);
                        return;
                    }
                }
                // tcp_segs_in(): a GRO packet counts its segments.
                let segs = seg.segs();
                sk.segs_in += u64::from(segs);
                if seg.len > 0 {
                    sk.data_segs_in += u64::from(segs);
                }
                // inet_sk_rx_dst_set(): the route for early demux, kept
                // while it stays valid for this device.
                if sk.state == TcpState::Established {
                    let gen = self.ip.route_gen;
                    let valid = sk.rx_dst.is_some_and(|(_, g, i)| g == gen && i == seg.dev);
                    if !valid {
                        sk.rx_dst = skb.meta.dst.map(|d| (d, gen, seg.dev));
                    }
                }
                let redo = if sk.state == TcpState::TimeWait {
                    self.tcp_timewait_state_process(&mut sk, &seg, skb)
                } else {
                    self.tcp_rcv_state_process(&mut sk, &seg, skb);
                    None
                };
                self.tcp_sock_done(sk);
                // A SYN that may reopen a TIME-WAIT connection goes to the
                // listener (`TCP_TW_SYN`).
                if let Some(skb) = redo {
                    let l = self
                        .tcp
                        .hash
                        .lookup_listener(seg.daddr, seg.dport, seg.dev, flow);
                    match l {
                        Some(lid) => self.tcp_listen_rcv(lid, &seg, skb),
                        None => self.tcp_no_socket(&seg, skb),
                    }
                }
            }
        }
    }

    /// `tcp_v4_early_demux()`, from `ip_rcv_finish`: a segment of an
    /// established connection takes the input route its socket cached
    /// (`sk_rx_dst`) when it arrived on the same device and no route has
    /// changed since, instead of a routing lookup. True if it did.
    pub(crate) fn tcp_v4_early_demux(
        &mut self,
        skb: &mut Skb,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
    ) -> bool {
        if !self.ip.sysctl.ip_early_demux || !self.tcp.settings.early_demux {
            return false;
        }
        let Some(iif) = skb.meta.ingress_dev else {
            return false;
        };
        if skb.meta.pkt_type != crate::skb::PacketType::Host {
            return false;
        }
        let d = skb.data();
        // TCP, not a fragment, and the ports within the packet.
        if d.len() < 20 {
            return false;
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        if ihl < 20
            || d.len() < ihl + 4
            || d[9] != 6
            || u16::from_be_bytes([d[6], d[7]]) & 0x3fff != 0
        {
            return false;
        }
        let sport = u16::from_be_bytes([d[ihl], d[ihl + 1]]);
        let dport = u16::from_be_bytes([d[ihl + 2], d[ihl + 3]]);
        let tuple = crate::sock::table::FourTuple {
            laddr: daddr,
            lport: dport,
            raddr: saddr,
            rport: sport,
        };
        let gen = self.ip.route_gen;
        let Some(id) = self.tcp.hash.lookup_established(&tuple, iif) else {
            return false;
        };
        // skb->sk: tcp_v4_rcv takes the socket from here.
        self.demuxed = Some((skb.id(), id));
        match self.tcp.get(id).and_then(|sk| sk.rx_dst) {
            Some((dst, g, i)) if g == gen && i == iif => {
                skb.meta.dst = Some(dst);
                self.tracer.skb(self.now, "tcp_v4_early_demux", skb);
                true
            }
            _ => false,
        }
    }

    fn tcp_no_socket(&mut self, seg: &Seg, skb: Skb) {
        if !super::md5::reset_suppressed(seg) {
            self.tcp_v4_send_reset(&skb);
        }
        self.kfree_skb(skb, DropReason::NoSocket);
    }

    /// [`Stack::tcp_inbound_hash`] for the listener `id`.
    fn tcp_inbound_hash_at(&mut self, id: SockId, seg: &Seg) -> Option<DropReason> {
        if seg.auth == super::md5::AuthOpt::None {
            return None;
        }
        let sk = self.tcp.take(id)?;
        let r = self.tcp_inbound_hash(&sk, seg);
        self.tcp.put(sk);
        r
    }

    /// Puts a socket back after work on it: freed if dead, timers rearmed.
    pub(crate) fn tcp_sock_done(&mut self, mut sk: Box<TcpSock>) {
        // Timestamps reported while TCP had the socket join its queue.
        self.tcp_tstamp_flush(&mut sk);
        // A child in its listener's accept queue stays there, even reset,
        // until accepted (its data and error are still read) or the
        // listener closes.
        let queued = sk.parent.is_some_and(|p| {
            self.tcp
                .get(p)
                .and_then(|l| l.listen.as_ref())
                .is_some_and(|l| l.accept_queue.contains(&sk.id))
        });
        let dead = sk.state == TcpState::Closed && (sk.orphan || (sk.parent.is_some() && !queued));
        if dead {
            let id = sk.id;
            let parent = sk.parent;
            self.tcp.put(sk);
            self.tcp_unlink_child(id, parent);
            self.tcp.destroy(id);
            return;
        }
        self.tcp.rearm(&mut sk);
        self.tcp.put(sk);
    }

    /// A child leaving its listener's queues.
    pub(crate) fn tcp_unlink_child(&mut self, id: SockId, parent: Option<SockId>) {
        let Some(pid) = parent else { return };
        let was_synrecv = self
            .tcp
            .get(id)
            .is_some_and(|s| s.state == TcpState::SynRecv || s.state == TcpState::Closed);
        if let Some(l) = self.tcp.get_mut(pid).and_then(|p| p.listen.as_mut()) {
            if let Some(i) = l.children.iter().position(|&c| c == id) {
                l.children.swap_remove(i);
                if let Some(j) = l.accept_queue.iter().position(|&c| c == id) {
                    l.accept_queue.remove(j);
                } else if was_synrecv {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                }
            }
        }
    }

    /// `tcp_rcv_state_process()`: every state but LISTEN and TIME-WAIT.
    pub(crate) fn tcp_rcv_state_process(&mut self, sk: &mut TcpSock, seg: &Seg, skb: Skb) {
        self.tracer.skb(self.now, "tcp_rcv_state_process", &skb);
        match sk.state {
            TcpState::Closed => {
                self.tcp_v4_send_reset_seg(seg);
                self.kfree_skb(skb, DropReason::TcpClose);
                return;
            }
            TcpState::SynSent => {
                self.tcp_rcv_synsent_state_process(sk, seg, skb);
                return;
            }
            TcpState::Listen | TcpState::TimeWait => {
                self.kfree_skb(skb, DropReason::NotSpecified);
                return;
            }
            _ => {}
        }
        if sk.state == TcpState::Established {
            self.tracer.skb(self.now, "tcp_rcv_established", &skb);
            // Header prediction (counted only: the slow path below does the
            // same work): in order, ACK (+PSH) only, same window, no SACK,
            // no urgent data pending (tcp_fast_path_check).
            let pred = (seg.flags.bits() & 0x1ff & !0x08) == 0x10
                && !sk.urg_data.is_set()
                && seg.seq == sk.rcv_nxt
                && !seg.ack.after(sk.snd_nxt)
                && (u32::from(seg.wnd) << sk.snd_wscale) == sk.snd_wnd
                && seg.opts.sack.is_empty();
            if pred && seg.len == 0 {
                self.tcp.ext.tcp_hp_acks += 1;
            } else if pred && seg.ack == sk.snd_una {
                self.tcp.ext.tcp_hp_hits += 1;
            } else if seg.len == 0 && !seg.flags.syn() && !seg.flags.fin() {
                self.tcp.ext.tcp_pure_acks += 1;
            }
        }
        if let Err(r) = self.tcp_validate_incoming(sk, seg) {
            self.kfree_skb(skb, r);
            return;
        }
        if !seg.flags.ack() {
            self.kfree_skb(skb, DropReason::TcpFlags);
            return;
        }
        let prior_state = sk.state;
        if sk.state == TcpState::SynRecv && sk.fo.passive_child {
            // A Fast Open child may have sent data already: the ACK must
            // cover the SYN and nothing unsent (tcp_ack's check).
            if seg.ack.before(sk.snd_una) || seg.ack.after(sk.snd_nxt) || seg.flags.rst() {
                self.tcp_v4_send_reset_seg(seg);
                self.kfree_skb(skb, DropReason::TcpInvalidAckSequence);
                return;
            }
        } else if sk.state == TcpState::SynRecv {
            // The ACK must cover our SYN exactly (tcp_check_req).
            if seg.ack != sk.snd_nxt || seg.flags.rst() {
                self.tcp_v4_send_reset_seg(seg);
                self.kfree_skb(skb, DropReason::TcpInvalidAckSequence);
                return;
            }
            if let Some(pid) = sk.parent {
                let full = self
                    .tcp
                    .get(pid)
                    .and_then(|p| p.listen.as_ref())
                    .is_none_or(|l| l.accept_queue.len() as u32 > l.backlog);
                if full {
                    self.tcp.ext.listen_overflows += 1;
                    self.tcp.ext.listen_drops += 1;
                    if self.tcp.settings.abort_on_overflow {
                        self.tcp_v4_send_reset_seg(seg);
                        self.tcp_done(sk);
                    }
                    self.kfree_skb(skb, DropReason::SocketBacklog);
                    return;
                }
            }
        }
        // tcp_ecn_accept_cwr (RFC 3168 §6.1.3): the sender reduced.
        if sk.ecn_ok && seg.flags.cwr() && seg.len > 0 {
            sk.ecn_demand_cwr = false;
        }
        let res = match self.tcp_ack(sk, seg) {
            Ok(r) => r,
            Err(r) => {
                self.kfree_skb(skb, r);
                return;
            }
        };
        // PAWS passed, the segment is in the window and its ACK acceptable:
        // remember its TSval (`tcp_replace_ts_recent`, FLAG_UPDATE_TS_RECENT).
        if let Some(ts) = seg.opts.timestamps {
            if sk.tstamp_ok
                && !seg.seq.after(sk.rcv_wup)
                && ts.tsval.wrapping_sub(sk.ts_recent) as i32 >= 0
            {
                sk.ts_recent = ts.tsval;
                sk.ts_recent_stamp = self.now;
            }
        }

        match prior_state {
            TcpState::SynRecv if sk.fo.passive_child => {
                // The SYN-ACK's delivery and RTT (not tracked by tcp_ack:
                // it is not in the retransmit queue).
                sk.delivered += 1;
                if let Some(t) = sk.fo.synack_sent.take() {
                    if !sk.fo.synack_retransmitted && sk.rtt.srtt().is_none() {
                        let rtt = self.now.saturating_since(t);
                        sk.rtt.sample_seq(rtt, self.now, seg.ack, seg.ack);
                    }
                }
                // tcp_rcv_synrecv_state_fastopen: already in the accept
                // queue (or accepted) and set up; the request is released
                // and the RTO rearmed for data sent meanwhile.
                sk.snd_wnd = u32::from(seg.wnd) << sk.snd_wscale;
                sk.max_window = sk.max_window.max(sk.snd_wnd);
                sk.snd_wl1 = seg.seq;
                self.tcp_set_state(sk, TcpState::Established);
                self.tcp.mib.passive_opens += 1;
                self.tcp_fastopen_child_done(sk);
                sk.retransmits = 0;
                self.tcp_rearm_rto(sk);
            }
            TcpState::SynRecv => {
                sk.snd_wnd = u32::from(seg.wnd) << sk.snd_wscale;
                sk.max_window = sk.max_window.max(sk.snd_wnd);
                sk.snd_wl1 = seg.seq;
                self.tcp_set_state(sk, TcpState::Established);
                self.tcp_init_transfer(sk);
                self.tcp.mib.passive_opens += 1;
                if let Some(pid) = sk.parent {
                    if let Some(l) = self.tcp.get_mut(pid).and_then(|p| p.listen.as_mut()) {
                        l.syn_queue = l.syn_queue.saturating_sub(1);
                        l.accept_queue.push_back(sk.id);
                    }
                    // The listener's sk_data_ready: a connection to accept.
                    self.tcp.wake_seq += 1;
                    let stamp = self.tcp.wake_seq;
                    if let Some(p) = self.tcp.get_mut(pid) {
                        p.wake.record(crate::sock::wait::WakeKey::DataReady, stamp);
                    }
                    self.tracer.event_detail(
                        self.now,
                        "inet_csk_accept_queue_add",
                        None,
                        u64::from(sk.id.0),
                    );
                } else {
                    // Simultaneous open: connect() completes.
                    self.tcp.mib.active_opens += 0;
                }
                sk.xmit_timer = None;
            }
            TcpState::FinWait1 if res.fin_acked || sk.snd_una == sk.write_seq => {
                self.tcp_set_state(sk, TcpState::FinWait2);
                sk.shutdown.snd = true;
                if sk.orphan {
                    sk.keepalive_timer = Some(self.now + self.tcp.settings.fin_timeout);
                }
            }
            TcpState::Closing if res.fin_acked || sk.snd_una == sk.write_seq => {
                self.tcp_time_wait(sk);
                self.consume_skb(skb);
                return;
            }
            TcpState::LastAck if res.fin_acked || sk.snd_una == sk.write_seq => {
                self.tcp_done(sk);
                self.consume_skb(skb);
                return;
            }
            _ => {}
        }
        // Step 6: the URG bit (tcp_urg).
        if sk.state != TcpState::Closed {
            self.tcp_urg(sk, seg, &skb);
        }
        // Step 7: the segment text.
        match sk.state {
            TcpState::CloseWait | TcpState::Closing | TcpState::LastAck
                if !seg.seq.before(sk.rcv_nxt) =>
            {
                self.consume_skb(skb);
            }
            TcpState::Established
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::CloseWait
            | TcpState::Closing
            | TcpState::LastAck => {
                if sk.shutdown.rcv
                    && sk.orphan
                    && seg.len > 0
                    && (seg.end_seq - u32::from(seg.flags.fin())).after(sk.rcv_nxt)
                {
                    // RFC 1122: data for a closed socket resets it.
                    self.tcp.ext.tcp_abort_on_data += 1;
                    self.tcp_send_active_reset(sk);
                    self.tcp_reset_state(sk, Errno::ECONNRESET);
                    self.kfree_skb(skb, DropReason::TcpClose);
                    return;
                }
                self.tcp_data_queue(sk, seg, skb);
            }
            _ => self.consume_skb(skb),
        }
        // tcp_data_snd_check + tcp_ack_snd_check
        if sk.state.synchronized() && sk.state != TcpState::TimeWait {
            self.tcp_xmit_retransmit_queue(sk);
            self.tcp_write_xmit(sk, super::output::Nonagle::Normal);
            self.tcp_check_space(sk);
            self.tcp_ack_snd_check(sk, true);
        }
        if res.snd_una_advanced && sk.state == TcpState::Established && sk.keepalive {
            self.tcp_reset_keepalive(sk);
        }
    }

    /// `tcp_validate_incoming()`: PAWS, the sequence window, RST and SYN
    /// checks (RFC 7323, RFC 9293 §3.10.7.4, RFC 5961).
    fn tcp_validate_incoming(&mut self, sk: &mut TcpSock, seg: &Seg) -> Result<(), DropReason> {
        // PAWS (tcp_paws_discard)
        if sk.tstamp_ok && !seg.flags.rst() {
            if let Some(ts) = seg.opts.timestamps {
                let stale = self.now.saturating_since(sk.ts_recent_stamp) >= TCP_PAWS_24DAYS;
                let older = sk.ts_recent.wrapping_sub(ts.tsval) as i32 > 1;
                if sk.ts_recent != 0 && older && !stale && !Self::tcp_disordered_ack(sk, seg) {
                    self.tcp.ext.paws_estab += 1;
                    self.tcp_send_dupack(sk, seg);
                    return Err(DropReason::TcpRfc7323Paws);
                }
            }
        }
        // tcp_sequence
        let wnd_end = sk.rcv_nxt + sk.receive_window();
        let old = seg.end_seq.before(sk.rcv_wup);
        let beyond = seg.seq.after(wnd_end);
        if old || beyond {
            if !seg.flags.rst() {
                if seg.flags.syn() && sk.state != TcpState::SynRecv {
                    self.tcp.ext.tcp_syn_challenge += 1;
                    self.tcp_send_challenge_ack(sk);
                    return Err(DropReason::TcpInvalidSyn);
                }
                let pure = seg.end_seq == seg.seq || seg.flags.syn();
                if !self.tcp_oow_rate_limited_seg(sk, pure) {
                    self.tcp_send_dupack(sk, seg);
                } else {
                    self.tcp.ext.tcp_ack_skipped_seq += 1;
                }
            }
            return Err(if old {
                DropReason::TcpOldSequence
            } else {
                DropReason::TcpInvalidSequence
            });
        }
        // RST (RFC 5961 §3.2): exact match resets, in-window challenges.
        if seg.flags.rst() {
            if seg.seq == sk.rcv_nxt {
                let err = match sk.state {
                    TcpState::CloseWait => Errno::EPIPE,
                    _ => Errno::ECONNRESET,
                };
                self.tcp_reset_state(sk, err);
                return Err(DropReason::TcpReset);
            }
            self.tcp_send_challenge_ack(sk);
            return Err(DropReason::TcpReset);
        }
        // SYN in a synchronized state (RFC 5961 §4): challenge, except the
        // SYN-ACK of a simultaneous open.
        if seg.flags.syn() {
            let simopen = sk.state == TcpState::SynRecv
                && sk.parent.is_none()
                && seg.flags.ack()
                && seg.seq + 1 == sk.rcv_nxt
                && seg.ack == sk.snd_nxt;
            if !simopen {
                if sk.state == TcpState::SynRecv && sk.parent.is_some() && !seg.flags.ack() {
                    // A retransmitted SYN: send the SYN-ACK again.
                    if seg.seq + 1 == sk.rcv_nxt {
                        self.tcp_retransmit_skb(sk, 0);
                    }
                    return Err(DropReason::TcpInvalidSyn);
                }
                self.tcp.ext.tcp_syn_challenge += 1;
                self.tcp_send_challenge_ack(sk);
                return Err(DropReason::TcpInvalidSyn);
            }
        }
        Ok(())
    }

    /// `tcp_disordered_ack()`: a pure duplicate ACK whose old timestamp is
    /// explained by reordering is let through PAWS.
    fn tcp_disordered_ack(sk: &TcpSock, seg: &Seg) -> bool {
        seg.flags.ack()
            && seg.len == 0
            && seg.seq == sk.rcv_nxt
            && seg.ack == sk.snd_una
            && !seg.flags.syn()
            && !seg.flags.fin()
    }

    /// `tcp_send_dupack()`: answer a duplicate or out-of-window segment,
    /// with a DSACK for data already received.
    fn tcp_send_dupack(&mut self, sk: &mut TcpSock, seg: &Seg) {
        if seg.end_seq != seg.seq && !seg.seq.after(sk.rcv_nxt) && !seg.end_seq.after(sk.rcv_nxt) {
            self.tcp.ext.delayed_acks += 0;
            if sk.sack_ok && self.tcp.settings.dsack {
                sk.dsack = Some((seg.seq, seg.end_seq.min(sk.rcv_nxt)));
                self.tcp.ext.tcp_dsack_old_sent += 1;
            }
            self.tcp_enter_quickack_mode(sk);
        }
        self.tcp_send_ack(sk);
    }

    fn tcp_enter_quickack_mode(&mut self, sk: &mut TcpSock) {
        Self::tcp_incr_quickack(sk);
        sk.pingpong = false;
        sk.ato = super::output::TCP_ATO_MIN;
    }

    fn tcp_incr_quickack(sk: &mut TcpSock) {
        let mut q = sk.rcv_wnd / (2 * sk.rcv_mss.max(1));
        if q == 0 {
            q = 2;
        }
        q = q.min(super::output::TCP_MAX_QUICKACKS);
        if q > sk.quick {
            sk.quick = q;
        }
    }

    /// `tcp_rcv_synsent_state_process()`: the answer to our SYN.
    fn tcp_rcv_synsent_state_process(&mut self, sk: &mut TcpSock, seg: &Seg, skb: Skb) {
        if seg.flags.ack() {
            if !seg.ack.after(sk.iss) || seg.ack.after(sk.snd_nxt) {
                if !seg.flags.rst() {
                    self.tcp_v4_send_reset_seg(seg);
                }
                self.kfree_skb(skb, DropReason::TcpInvalidAckSequence);
                return;
            }
            if seg.flags.rst() {
                self.tcp_reset_state(sk, Errno::ECONNREFUSED);
                self.kfree_skb(skb, DropReason::TcpReset);
                return;
            }
            if !seg.flags.syn() {
                self.kfree_skb(skb, DropReason::TcpFlags);
                return;
            }
            // SYN-ACK. Its TSecr must echo a TSval we sent since the SYN
            // (PAWSActiveRejected): else a RST, and the SYN_SENT goes on.
            if let Some(ts) = seg.opts.timestamps {
                if sk.tstamp_ok && ts.tsecr != 0 {
                    let first = sk.rtx_queue.front().map_or(self.now, |s| s.first_sent);
                    let start = ((first.as_nanos() / 1_000_000) as u32).wrapping_add(sk.ts_offset);
                    let now_ts = self.tcp_tsval(sk);
                    if ts.tsecr.wrapping_sub(start) > now_ts.wrapping_sub(start) {
                        self.tcp.ext.paws_active_rejected += 1;
                        self.tcp_v4_send_reset_seg(seg);
                        self.kfree_skb(skb, DropReason::TcpRfc7323Paws);
                        return;
                    }
                }
            }
            // ECE without CWR answers our ECN request.
            sk.ecn_ok = sk.ecn_syn && seg.flags.ece() && !seg.flags.cwr();
            self.tcp_learn_syn_options(sk, seg);
            sk.init_from_syn(seg.seq, seg.wnd);
            // The SYN leaves the retransmit queue; RTT from it (Karn).
            let mut syn_retransmitted = false;
            if let Some(syn) = sk.rtx_queue.pop_front() {
                syn_retransmitted = syn.ever_retrans;
                sk.packets_out = sk.packets_out.saturating_sub(1);
                if syn.lost {
                    sk.lost_out = sk.lost_out.saturating_sub(1);
                }
                if syn.retrans {
                    sk.retrans_out = sk.retrans_out.saturating_sub(1);
                }
                // The SYN is delivered (tcp_ack counts it).
                sk.delivered += 1;
                if !syn.ever_retrans {
                    let rtt = self.now.saturating_since(syn.sent);
                    sk.rtt.sample_seq(rtt, self.now, seg.ack, seg.ack);
                } else if let Some(ts) = seg.opts.timestamps.filter(|_| sk.tstamp_ok) {
                    let d = self.tcp_tsval(sk).wrapping_sub(ts.tsecr);
                    if ts.tsecr != 0 && d < 1 << 30 {
                        sk.rtt.sample_seq(
                            Duration::from_millis(u64::from(d.max(1))),
                            self.now,
                            seg.ack,
                            seg.ack,
                        );
                    }
                }
                if syn.ever_retrans && sk.rtt.srtt().is_none() {
                    sk.rtt.fallback_after_syn_retransmit();
                }
            }
            if sk.fo.syn_data {
                // Fast Open: the data of the SYN the SYN-ACK covers.
                let mut res = super::ack::AckResult::default();
                self.tcp_clean_rtx_queue(sk, seg.ack, seg.ack, &mut res);
            }
            sk.snd_una = seg.ack;
            if sk.fo.syn_data {
                self.tcp_zerocopy_complete(sk, false);
            }
            sk.retrans_stamp = None;
            sk.retransmits = 0;
            sk.xmit_timer = None;
            self.tcp_set_state(sk, TcpState::Established);
            self.tcp_init_transfer(sk);
            sk.connecting = true;
            self.tracer
                .event_detail(self.now, "tcp_finish_connect", None, u64::from(sk.id.0));
            let fastopen_fail = (sk.fo.syn_fastopen || sk.fo.syn_data)
                && self.tcp_rcv_fastopen_synack(sk, seg, syn_retransmitted);
            // tcp_fastopen_add_skb: the data (and FIN) of a Fast Open
            // SYN-ACK is received at once; the ACK below covers it.
            let mut skb = Some(skb);
            if (sk.fo.syn_fastopen || sk.fo.syn_data) && !fastopen_fail && seg.len > 0 {
                if let Some(skb) = skb.take() {
                    let mut s2 = *seg;
                    s2.seq = seg.seq + 1;
                    s2.flags = TcpFlags::ACK;
                    s2.flags.set(TcpFlags::FIN, seg.flags.fin());
                    self.tcp_data_queue(sk, &s2, skb);
                }
            }
            let write_pending = core::mem::take(&mut sk.fo.write_pending);
            if fastopen_fail {
                // The retransmitted data carries the ACK.
            } else if write_pending {
                // A writer waits for the connection: its data will carry
                // the ACK (the delayed ACK is the fallback).
                // (tcp_enter_quickack_mode: ato restarts at its minimum.)
                sk.ack_pending = true;
                sk.quick = super::output::TCP_MAX_QUICKACKS;
                sk.pingpong = false;
                sk.ato = super::output::TCP_ATO_MIN;
                let at = self.now + super::output::TCP_DELACK_MAX;
                sk.delack_timer = Some(sk.delack_timer.map_or(at, |t| t.min(at)));
            } else {
                // ACK the SYN-ACK now (data waiting rides along instead).
                sk.ack_pending = true;
                if !self.tcp_write_xmit(sk, super::output::Nonagle::Normal) || sk.ack_pending {
                    self.tcp_send_ack(sk);
                }
            }
            let Some(skb) = skb else {
                return;
            };
            if seg.flags.fin() {
                // A FIN on the SYN-ACK: handled as data would be.
                let mut s2 = *seg;
                s2.seq = seg.seq + 1;
                s2.flags = TcpFlags::ACK | TcpFlags::FIN;
                self.tcp_data_queue(sk, &s2, skb);
                self.tcp_ack_snd_check(sk, true);
                return;
            }
            self.consume_skb(skb);
            return;
        }
        if seg.flags.rst() {
            self.kfree_skb(skb, DropReason::TcpReset);
            return;
        }
        if seg.flags.syn() {
            // Simultaneous open (RFC 9293 §3.5 figure 8).
            self.tcp_learn_syn_options(sk, seg);
            sk.init_from_syn(seg.seq, seg.wnd);
            self.tcp_set_state(sk, TcpState::SynRecv);
            let iss = sk.iss;
            self.tcp_transmit_skb(
                sk,
                super::output::OutSeg {
                    seq: iss,
                    flags: TcpFlags::SYN | TcpFlags::ACK,
                    payload: &[],
                    gso: &[],
                },
            );
            self.consume_skb(skb);
            return;
        }
        self.kfree_skb(skb, DropReason::TcpFlags);
    }

    /// The options of a SYN or SYN-ACK decide what the connection uses.
    pub(crate) fn tcp_learn_syn_options(&mut self, sk: &mut TcpSock, seg: &Seg) {
        let o = &seg.opts;
        sk.mss_clamp = o.mss.filter(|&m| m > 0).unwrap_or(536);
        match o.window_scale {
            Some(ws) if sk.wscale_ok => sk.snd_wscale = ws.min(14),
            _ => {
                sk.wscale_ok = false;
                sk.snd_wscale = 0;
                sk.rcv_wscale = 0;
            }
        }
        sk.sack_ok &= o.sack_permitted;
        match o.timestamps {
            Some(ts) if sk.tstamp_ok => {
                sk.ts_recent = ts.tsval;
                sk.ts_recent_stamp = self.now;
            }
            _ => sk.tstamp_ok = false,
        }
    }

    /// `tcp_init_transfer()`: MSS, buffers and congestion control once the
    /// connection is established.
    pub(crate) fn tcp_init_transfer(&mut self, sk: &mut TcpSock) {
        let route = self.tcp_route(sk);
        let pmtu = route.map_or(576, |(d, _)| d.mtu);
        let mss = self.tcp_sync_mss(sk, pmtu);
        // tcp_mtup_init(): after the MSS, as Linux syncs it when the socket
        // is created and starts probing when the connection is established.
        self.tcp_mtup_init(sk);
        sk.rcv_mss = u32::from(sk.advmss)
            .min(mss.max(536))
            .min(sk.rcv_wnd.max(1));
        if sk.rtt.backoffs() > 0 || sk.rtt.srtt().is_none() {
            sk.rtt.reset_backoff();
        }
        sk.cc.mss = mss;
        // tcp_init_cwnd(): the route's `initcwnd`, else TCP_INIT_CWND.
        sk.cc.cwnd = route
            .and_then(|(_, m)| m.initcwnd)
            .filter(|&w| w > 0)
            .unwrap_or(super::cong::TCP_INIT_CWND)
            .min(sk.cc.cwnd_clamp);
        sk.cc.tcp_mstamp = self.now;
        sk.cc.hystart_detect = self.tcp.settings.cubic_hystart_detect;
        sk.ca.init(&mut sk.cc);
        sk.cc.snd_una = sk.snd_una.0;
        sk.cc.snd_nxt = sk.snd_nxt.0;
        sk.snd_sml = sk.snd_una;
        sk.pushed_seq = sk.write_seq;
        self.tcp_sndbuf_expand(sk);
        sk.rcvq_space = sk.rcv_wnd.min(u32::from(sk.advmss) * 10);
        sk.rcvq_space_seq = sk.copied_seq;
        sk.rcvq_space_time = self.now;
        sk.last_data_recv = self.now;
        sk.lsndtime = self.now;
        if sk.keepalive {
            self.tcp_reset_keepalive(sk);
        }
    }

    /// `tcp_sndbuf_expand()`: room for twice the congestion window (at
    /// least `TCP_INIT_CWND` segments), unless SO_SNDBUF fixed it.
    pub(crate) fn tcp_sndbuf_expand(&mut self, sk: &mut TcpSock) {
        if sk.sndbuf_locked {
            return;
        }
        let segs = sk
            .cc
            .cwnd
            .max(super::cong::TCP_INIT_CWND)
            .max(sk.reordering + 1) as usize;
        let want = 2 * segs * sk.mss_cache as usize;
        sk.sndbuf = sk.sndbuf.max(want.min(self.tcp.settings.wmem[2]));
    }

    /// `tcp_new_space()`: ACKs freed the send buffer; grow it with the
    /// window.
    pub(crate) fn tcp_new_space(&mut self, sk: &mut TcpSock) {
        if sk.cc.is_cwnd_limited || sk.wmem_queued >= sk.sndbuf / 2 {
            self.tcp_sndbuf_expand(sk);
        }
    }

    /// `tcp_set_state()` with the `CurrEstab` gauge.
    pub(crate) fn tcp_set_state(&mut self, sk: &mut TcpSock, st: TcpState) {
        let was = sk.state;
        if was == st {
            return;
        }
        let estab = |s: TcpState| matches!(s, TcpState::Established | TcpState::CloseWait);
        if st == TcpState::Closed && estab(was) {
            // Straight from a synchronized state to CLOSED: a reset.
            self.tcp.mib.estab_resets += 1;
        }
        if estab(st) && !estab(was) {
            self.tcp.mib.curr_estab += 1;
        } else if estab(was) && !estab(st) {
            self.tcp.mib.curr_estab = self.tcp.mib.curr_estab.saturating_sub(1);
        }
        sk.state = st;
        self.tracer
            .event_detail(self.now, st.name(), None, u64::from(sk.id.0));
        // sk_state_change: connected, the peer's FIN, FIN acked, done. The
        // states the application itself enters (connect, listen, close,
        // shutdown) wake nobody here; shutdown wakes on its own.
        if !matches!(
            st,
            TcpState::SynSent | TcpState::Listen | TcpState::FinWait1 | TcpState::LastAck
        ) {
            self.sk_wake(sk, crate::sock::wait::WakeKey::StateChange);
        }
    }

    /// `tcp_reset()`: a RST was accepted (or the connection aborted).
    pub(crate) fn tcp_reset_state(&mut self, sk: &mut TcpSock, err: Errno) {
        if matches!(sk.state, TcpState::SynSent | TcpState::SynRecv) {
            self.tcp.mib.attempt_fails += 1;
        }
        sk.err = Some(err);
        self.tcp_done(sk);
    }

    /// `tcp_done()`: the connection is over.
    pub(crate) fn tcp_done(&mut self, sk: &mut TcpSock) {
        if matches!(sk.state, TcpState::SynSent | TcpState::SynRecv) && sk.err.is_none() {
            self.tcp.mib.attempt_fails += 1;
        }
        self.tcp_set_state(sk, TcpState::Closed);
        self.tcp_fastopen_child_done(sk);
        sk.shutdown.rcv = true;
        sk.shutdown.snd = true;
        sk.purge_queues();
        // Freed unacknowledged zerocopy data completes too.
        self.tcp_zerocopy_complete(sk, true);
        sk.xmit_timer = None;
        sk.delack_timer = None;
        sk.keepalive_timer = None;
        sk.timewait_timer = None;
        if sk.hashed {
            self.tcp.hash.ehash_remove(&sk.tuple());
            sk.hashed = false;
        }
    }

    /// `tcp_time_wait()`: keep the 4-tuple for 2MSL (Linux: 60 s).
    pub(crate) fn tcp_time_wait(&mut self, sk: &mut TcpSock) {
        self.tcp_set_state(sk, TcpState::TimeWait);
        sk.purge_queues();
        // Data not yet read stays readable while the application holds the
        // socket (Linux keeps it on the full socket; TIME-WAIT lives apart).
        if sk.orphan {
            sk.rcv_queue.clear();
            sk.rcv_queued = 0;
        }
        sk.xmit_timer = None;
        sk.delack_timer = None;
        sk.keepalive_timer = None;
        sk.timewait_timer = Some(self.now + TCP_TIMEWAIT_LEN);
    }

    /// `tcp_timewait_state_process()`. Returns the skb when it is a SYN
    /// that may open a new connection (the caller hands it to a listener).
    fn tcp_timewait_state_process(&mut self, sk: &mut TcpSock, seg: &Seg, skb: Skb) -> Option<Skb> {
        if seg.flags.rst() {
            if !self.tcp.settings.rfc1337 {
                // The RST kills TIME-WAIT (TW assassination, Linux default).
                self.tcp.ext.tw += 0;
                self.tcp_done(sk);
                sk.orphan = true;
            }
            self.kfree_skb(skb, DropReason::TcpReset);
            return None;
        }
        if seg.flags.syn() && !seg.flags.ack() {
            let newer_ts = match (seg.opts.timestamps, sk.tstamp_ok) {
                (Some(ts), true) => ts.tsval.wrapping_sub(sk.ts_recent) as i32 > 0,
                _ => true,
            };
            if seg.seq.after(sk.rcv_nxt) && newer_ts {
                self.tcp_done(sk);
                sk.orphan = true;
                return Some(skb);
            }
        }
        if seg.flags.fin() && seg.end_seq == sk.rcv_nxt {
            // A retransmitted FIN: our last ACK was lost. ACK it again and
            // restart the 2MSL wait.
            sk.timewait_timer = Some(self.now + TCP_TIMEWAIT_LEN);
            self.tcp_send_ack(sk);
        } else if !self.tcp_oow_rate_limited(sk) {
            self.tcp_send_ack(sk);
        } else {
            self.tcp.ext.tcp_ack_skipped_time_wait += 1;
        }
        self.consume_skb(skb);
        None
    }

    /// `tcp_data_queue()`: the payload goes on the receive queue (or the
    /// out-of-order queue), the reader is woken, an ACK is scheduled.
    pub(crate) fn tcp_data_queue(&mut self, sk: &mut TcpSock, seg: &Seg, mut skb: Skb) {
        if seg.flags.syn() && seg.len == 0 && !seg.end_seq.after(sk.rcv_nxt) {
            // The SYN again (the SYN-ACK of a simultaneous open): a
            // retransmission, DSACKed and acknowledged at once.
            if sk.sack_ok && self.tcp.settings.dsack {
                sk.dsack = Some((seg.seq, seg.end_seq));
                self.tcp.ext.tcp_dsack_old_sent += 1;
            }
            self.tcp_enter_quickack_mode(sk);
            sk.ack_pending = true;
            self.kfree_skb(skb, DropReason::TcpOldData);
            return;
        }
        if seg.len == 0 && !seg.flags.fin() {
            self.consume_skb(skb);
            return;
        }
        self.tracer.skb(self.now, "tcp_data_queue", &skb);
        let mut seq = seg.seq;
        if seq == sk.rcv_nxt || (seq.before(sk.rcv_nxt) && seg.end_seq.after(sk.rcv_nxt)) {
            if seq.before(sk.rcv_nxt) {
                // Partly old: DSACK the duplicate head, keep the rest.
                let dup = sk.rcv_nxt.0.wrapping_sub(seq.0);
                if sk.sack_ok && self.tcp.settings.dsack {
                    sk.dsack = Some((seq, sk.rcv_nxt));
                    self.tcp.ext.tcp_dsack_old_sent += 1;
                }
                let _ = skb.pull((dup as usize).min(skb.len()));
                seq = sk.rcv_nxt;
            }
            let len = skb.len() as u32;
            if sk.receive_window() == 0 && len > 0 {
                self.tcp.ext.tcp_zero_window_drop += 1;
                self.tcp_enter_quickack_mode(sk);
                sk.ack_pending = true;
                self.tcp_send_ack(sk);
                self.kfree_skb(skb, DropReason::TcpZerowindow);
                return;
            }
            if len > 0 && sk.rcv_queued + len as usize > sk.rcvbuf {
                self.tcp.ext.tcp_rcv_q_drop += 1;
                self.kfree_skb(skb, DropReason::SocketRcvbuff);
                return;
            }
            self.tcp_ecn_check_ce(sk, seg);
            self.tcp_event_data_recv(sk, seg, len);
            sk.rcv_nxt = seq + len;
            sk.bytes_received += u64::from(len);
            sk.last_data_recv = self.now;
            let fin = seg.flags.fin();
            if len > 0 {
                sk.rcv_queued += len as usize;
                sk.rcv_queue.push_back(skb);
            } else {
                self.consume_skb(skb);
            }
            if fin {
                self.tcp_fin(sk);
            }
            let had_ofo = !sk.ofo.is_empty();
            if had_ofo {
                self.tcp_ofo_queue(sk);
                if sk.ofo.is_empty() {
                    // The hole is filled: ACK at once.
                    sk.quick = sk.quick.max(1);
                    sk.pingpong = false;
                }
            }
            sk.ack_pending = true;
            self.tracer
                .event_detail(self.now, "sock_def_readable", None, u64::from(sk.id.0));
            self.tcp_data_ready(sk);
            return;
        }
        if !seg.end_seq.after(sk.rcv_nxt) {
            // All old: a retransmission we have (DSACK it, ACK at once).
            if sk.sack_ok && self.tcp.settings.dsack && seg.len > 0 {
                sk.dsack = Some((seg.seq, seg.end_seq));
                self.tcp.ext.tcp_dsack_old_sent += 1;
            }
            self.tcp_enter_quickack_mode(sk);
            sk.ack_pending = true;
            self.kfree_skb(skb, DropReason::TcpOldData);
            return;
        }
        if !seq.before(sk.rcv_nxt + sk.receive_window()) {
            self.tcp_enter_quickack_mode(sk);
            sk.ack_pending = true;
            self.kfree_skb(skb, DropReason::TcpOverwindow);
            return;
        }
        // Out of order (tcp_data_queue_ofo).
        self.tcp_ecn_check_ce(sk, seg);
        sk.rcv_ooopack += 1;
        self.tcp.ext.tcp_ofo_queue += 1;
        if (sk.rcv_queued + sk.ofo.bytes() + skb.len()) > sk.rcvbuf {
            self.tcp.ext.tcp_ofo_drop += 1;
            sk.ack_pending = true;
            self.kfree_skb(skb, DropReason::TcpOfoDrop);
            return;
        }
        if seg.flags.fin() {
            sk.ofo_fin = Some(seq + skb.len() as u32);
        }
        sk.ack_pending = true;
        sk.quick = sk.quick.max(1);
        if skb.is_empty() {
            self.consume_skb(skb);
            return;
        }
        match sk.ofo.insert(seq, skb) {
            super::ofo::OfoInsert::Duplicate { start, end }
            | super::ofo::OfoInsert::Partial { start, end } => {
                self.tcp.ext.tcp_ofo_merge += 1;
                if sk.sack_ok && self.tcp.settings.dsack {
                    sk.dsack = Some((start, end));
                    self.tcp.ext.tcp_dsack_ofo_sent += 1;
                }
            }
            super::ofo::OfoInsert::OutOfWindow => {
                self.tcp.ext.tcp_ofo_drop += 1;
            }
            _ => {}
        }
    }

    /// `tcp_ofo_queue()`: moves segments the hole no longer blocks to the
    /// receive queue.
    fn tcp_ofo_queue(&mut self, sk: &mut TcpSock) {
        while let Some((seq, skb)) = sk.ofo.pop_in_order(sk.rcv_nxt) {
            let len = skb.len() as u32;
            sk.rcv_nxt = seq + len;
            sk.bytes_received += u64::from(len);
            sk.rcv_queued += len as usize;
            sk.rcv_queue.push_back(skb);
        }
        if let Some(f) = sk.ofo_fin {
            if f == sk.rcv_nxt {
                sk.ofo_fin = None;
                self.tcp_fin(sk);
            }
        }
    }

    /// `tcp_measure_rcv_mss()`: the peer's segment size, from full-sized
    /// segments; a short segment that is not just the peer's MSS seen
    /// again marks the pending ACK as "pushed" (`ICSK_ACK_PUSHED`, and
    /// `ICSK_ACK_PUSHED2` the second time), so that the reader that drains
    /// it acknowledges at once (`tcp_cleanup_rbuf`).
    fn tcp_measure_rcv_mss(sk: &mut TcpSock, seg: &Seg, len: u32) {
        // A packet GRO merged: its segments' size.
        let len = match seg.gso_size {
            0 => len,
            g => u32::from(g),
        };
        let lss = sk.last_seg_size;
        sk.last_seg_size = 0;
        if len >= sk.rcv_mss {
            sk.rcv_mss = len.min(u32::from(sk.advmss).max(len.min(65535)));
            return;
        }
        // The segment with its header, less the header every segment of
        // this connection carries: the MSS free of SACK-block jitter.
        let full = len + u32::from(seg.hdr_len);
        // TCP_REMNANT: FIN, URG, SYN or PSH may end a short segment.
        let remnant = seg.flags.fin() || seg.flags.urg() || seg.flags.syn() || seg.flags.psh();
        if full >= 536 + 20 || (full >= 48 + 20 && !remnant) {
            let l = full.saturating_sub(sk.tcp_header_len());
            sk.last_seg_size = l;
            if l == lss {
                sk.rcv_mss = l;
                return;
            }
        }
        if sk.ack_pushed & ACK_PUSHED != 0 {
            sk.ack_pushed |= ACK_PUSHED2;
        }
        sk.ack_pushed |= ACK_PUSHED;
    }

    /// `tcp_event_data_recv()`: delayed-ACK estimator, receive MSS, window
    /// growth.
    fn tcp_event_data_recv(&mut self, sk: &mut TcpSock, seg: &Seg, len: u32) {
        Self::tcp_measure_rcv_mss(sk, seg, len);
        let now = self.now;
        if sk.ato == Duration::ZERO {
            Self::tcp_incr_quickack(sk);
            sk.ato = super::output::TCP_ATO_MIN;
        } else {
            let m = now.saturating_since(sk.lrcvtime);
            let half_min = super::output::TCP_ATO_MIN.as_nanos() / 2;
            if m.as_nanos() <= half_min {
                sk.ato = Duration::from_nanos(sk.ato.as_nanos() / 2 + half_min);
            } else if m < sk.ato {
                let v = sk.ato.as_nanos() / 2 + m.as_nanos();
                sk.ato = Duration::from_nanos(v.min(sk.rtt.rto().as_nanos()));
            } else if m > sk.rtt.rto() {
                Self::tcp_incr_quickack(sk);
            }
        }
        sk.lrcvtime = now;
        // tcp_grow_window
        if len > 0 && sk.rcv_ssthresh < sk.window_clamp && sk.rcv_ssthresh < Self::tcp_space(sk) {
            sk.rcv_ssthresh = (sk.rcv_ssthresh + 2 * u32::from(sk.advmss)).min(sk.window_clamp);
        }
        // Receiver RTT estimate (tcp_rcv_rtt_measure) for autotuning.
        if sk.rcv_rtt_seq.before_eq(sk.rcv_nxt) && sk.rcv_rtt_time != now {
            let sample = now.saturating_since(sk.rcv_rtt_time);
            if sk.rcv_rtt_seq != TcpSeqNumber(0) {
                sk.rcv_rtt = Some(match sk.rcv_rtt {
                    Some(r) if r < sample => r,
                    _ => sample,
                });
            }
            sk.rcv_rtt_seq = sk.rcv_nxt + sk.rcv_wnd;
            sk.rcv_rtt_time = now;
        }
    }

    /// `tcp_ecn_check_ce()`: data that met congestion (CE): echo ECE until
    /// the sender's CWR, and ACK at once.
    fn tcp_ecn_check_ce(&mut self, sk: &mut TcpSock, seg: &Seg) {
        if sk.ecn_ok && seg.ce {
            if !sk.ecn_demand_cwr {
                self.tcp_enter_quickack_mode(sk);
            }
            sk.ecn_demand_cwr = true;
        }
    }

    /// `tcp_fin()`: the peer finished sending.
    pub(crate) fn tcp_fin(&mut self, sk: &mut TcpSock) {
        // The FIN occupies one sequence number.
        sk.rcv_nxt += 1;
        sk.shutdown.rcv = true;
        sk.fin_received = true;
        sk.quick = sk.quick.max(1);
        sk.pingpong = false;
        sk.ack_pending = true;
        match sk.state {
            TcpState::SynRecv | TcpState::Established => {
                self.tcp_set_state(sk, TcpState::CloseWait);
            }
            TcpState::FinWait1 => {
                // Simultaneous close.
                self.tcp_send_ack(sk);
                self.tcp_set_state(sk, TcpState::Closing);
            }
            TcpState::FinWait2 => {
                self.tcp_send_ack(sk);
                self.tcp_time_wait(sk);
            }
            _ => {}
        }
        sk.ofo = super::ofo::OfoQueue::new();
        self.tracer
            .event_detail(self.now, "sock_def_readable", None, u64::from(sk.id.0));
    }

    /// A RST in answer to `seg` (no socket state involved).
    pub(crate) fn tcp_v4_send_reset_seg(&mut self, seg: &Seg) {
        if seg.flags.rst() || seg.daddr.is_broadcast() || seg.daddr.is_multicast() {
            return;
        }
        let (seq, ack, flags) = if seg.flags.ack() {
            (seg.ack, TcpSeqNumber(0), 0x04u8)
        } else {
            (TcpSeqNumber(0), seg.end_seq, 0x14u8)
        };
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&seg.dport.to_be_bytes());
        h[2..4].copy_from_slice(&seg.sport.to_be_bytes());
        h[4..8].copy_from_slice(&seq.0.to_be_bytes());
        h[8..12].copy_from_slice(&ack.0.to_be_bytes());
        h[12] = 5 << 4;
        h[13] = flags;
        let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(seg.daddr, seg.saddr, 6, 20);
        c.add_bytes(&h);
        h[16..18].copy_from_slice(&c.finish().to_be_bytes());
        let opts = IpSendOpts {
            saddr: Some(seg.daddr),
            pmtudisc: PmtuDisc::Do,
            ..IpSendOpts::default()
        };
        if self.ip_send(self.now, seg.saddr, 6, &h, opts).is_ok() {
            self.tcp.mib.out_rsts += 1;
            self.tcp.mib.out_segs += 1;
        }
    }

    /// `tcp_v4_send_reset()` (and netfilter's `nf_send_reset`, which builds
    /// the same segment): no answer to a RST or to a broadcast; otherwise
    /// RST with seq = the segment's ACK, or RST+ACK of its sequence space;
    /// window 0; IP id 0 and DF.
    pub(crate) fn tcp_v4_send_reset(&mut self, skb: &Skb) {
        let Ok(ip) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            return;
        };
        if ip.protocol().0 != 6 || ip.frag_offset() != 0 {
            return;
        }
        let Some(th) = skb.transport_header() else {
            return;
        };
        let Some(nh) = skb.network_header() else {
            return;
        };
        // The TCP header, wherever data() is now (pulled or not).
        let tcp_bytes = ip.payload();
        let _ = (th, nh);
        let Ok(tcp) = TcpPacket::new_checked(tcp_bytes) else {
            return;
        };
        let flags = tcp.flags();
        let len = tcp.payload().len() as u32;
        let seq = tcp.seq_number();
        let seg = Seg {
            saddr: ip.src_addr(),
            daddr: ip.dst_addr(),
            sport: tcp.src_port(),
            dport: tcp.dst_port(),
            seq,
            end_seq: seq + len + u32::from(flags.syn()) + u32::from(flags.fin()),
            ack: tcp.ack_number(),
            flags,
            wnd: 0,
            opts: TcpOptions::default(),
            len,
            hdr_len: tcp.header_len() as u8,
            dev: IfIndex(1),
            ce: false,
            gso_size: 0,
            urg_ptr: 0,
            auth: super::md5::AuthOpt::None,
        };
        self.tcp_v4_send_reset_seg(&seg);
        self.tracer.skb(self.now, "tcp_v4_send_reset", skb);
    }

    /// `tcp_v4_err()`: an ICMP error about a segment we sent. Fragmentation
    /// needed shrinks the MSS and retransmits; an unreachable during the
    /// handshake fails `connect()`; later it is a soft error.
    pub(crate) fn tcp_v4_err(&mut self, quoted: &[u8], icmp_type: u8, code: u8) {
        // The quote holds the IP header and 8 bytes of TCP only: read it
        // by hand (its total length describes the original datagram).
        let Some(&vihl) = quoted.first() else {
            return;
        };
        let hl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || hl < 20 {
            return;
        }
        let Some(th) = quoted.get(hl..hl + 8) else {
            return;
        };
        let addr = |o: usize| Ipv4Addr::new(quoted[o], quoted[o + 1], quoted[o + 2], quoted[o + 3]);
        let (qsrc, qdst) = (addr(12), addr(16));
        let sport = u16::from_be_bytes([th[0], th[1]]);
        let dport = u16::from_be_bytes([th[2], th[3]]);
        let seq = TcpSeqNumber(u32::from_be_bytes([th[4], th[5], th[6], th[7]]));
        let tuple = crate::sock::table::FourTuple {
            laddr: qsrc,
            lport: sport,
            raddr: qdst,
            rport: dport,
        };
        let Some(id) = self.tcp.hash.ehash_lookup(&tuple) else {
            return;
        };
        let Some(mut sk) = self.tcp.take(id) else {
            return;
        };
        // A request (a child in SYN_RECV not yet established, Linux's
        // request sock, tcp_req_err): an ICMP quoting its SYN-ACK that
        // says the network or host is unreachable, or a time exceeded or
        // parameter problem, drops it silently.
        if sk.state == TcpState::SynRecv && sk.parent.is_some() && !sk.fo.passive_child {
            if seq != sk.iss {
                self.tcp.ext.out_of_window_icmps += 1;
            } else if (icmp_type == 3 && code <= 1) || icmp_type == 11 || icmp_type == 12 {
                self.tcp.ext.listen_drops += 1;
                self.tcp_done(&mut sk);
            }
            self.tcp_sock_done(sk);
            return;
        }
        // The quoted sequence number must be in flight (RFC 5927); a Fast
        // Open child's SYN-ACK counts.
        let una = if sk.fo.passive_child {
            sk.iss
        } else {
            sk.snd_una
        };
        let in_flight = seq.between(una, sk.snd_nxt);
        if !in_flight && sk.state != TcpState::Listen {
            self.tcp.ext.out_of_window_icmps += 1;
        }
        if in_flight && sk.state != TcpState::TimeWait {
            if icmp_type == 3 && code == 4 {
                // tcp_v4_mtu_reduced → tcp_simple_retransmit.
                let pmtu = self.tcp_path_mtu(&sk);
                if pmtu < sk.pmtu && sk.state == TcpState::SynSent && sk.fo.syn_data {
                    // tcp_simple_retransmit of a Fast Open SYN with data:
                    // all of it is lost; a plain SYN goes again at once,
                    // offering the smaller MSS (tcp_advertise_mss), and
                    // the data waits for the SYN-ACK (no window yet).
                    self.tcp_sync_mss(&mut sk, pmtu);
                    sk.advmss = sk.advmss.min(pmtu.saturating_sub(40).max(256) as u16);
                    for q in sk.rtx_queue.iter_mut() {
                        q.lost = true;
                    }
                    sk.lost_out = sk.rtx_queue.len() as u32;
                    if sk.cc.ca_state != super::cong::CaState::Loss {
                        sk.high_seq = sk.snd_nxt;
                        self.tcp_set_ca_state(&mut sk, super::cong::CaState::Loss);
                    }
                    self.tcp_retransmit_skb(&mut sk, 0);
                } else if pmtu < sk.pmtu {
                    let mss = self.tcp_sync_mss(&mut sk, pmtu);
                    let mut marked = false;
                    for q in sk.rtx_queue.iter_mut() {
                        if q.skb.len() as u32 > mss && !q.sacked && !q.lost {
                            q.lost = true;
                            if q.retrans {
                                q.retrans = false;
                            }
                            marked = true;
                        }
                    }
                    if marked {
                        sk.lost_out = sk.rtx_queue.iter().filter(|q| q.lost).count() as u32;
                        sk.retrans_out = sk.rtx_queue.iter().filter(|q| q.retrans).count() as u32;
                        self.tcp_xmit_retransmit_queue(&mut sk);
                    }
                }
            } else if icmp_type == 3 || icmp_type == 11 {
                let err = match (icmp_type, code) {
                    (3, 0) => Errno::ENETUNREACH,
                    (3, 1) => Errno::EHOSTUNREACH,
                    (3, 2 | 3) => Errno::ECONNREFUSED,
                    (3, 9 | 10 | 13) => Errno::EACCES,
                    _ => Errno::EHOSTUNREACH,
                };
                if matches!(sk.state, TcpState::SynSent | TcpState::SynRecv)
                    && (sk.parent.is_none() || sk.fo.passive_child)
                {
                    sk.err = Some(err);
                    self.tcp_done(&mut sk);
                } else {
                    sk.err_soft = Some(err);
                }
            }
        }
        self.tcp_sock_done(sk);
    }
}

/// The flow hash used to pick a reuseport group member (`inet_ehashfn`).
fn flow_hash(seg: &Seg) -> u32 {
    let mut h = u64::from(u32::from(seg.saddr)) << 32 | u64::from(u32::from(seg.daddr));
    h ^= u64::from(seg.sport) << 16 | u64::from(seg.dport);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32
}

impl XmitTimer {
    /// For traces.
    pub(crate) fn name(self) -> &'static str {
        match self {
            XmitTimer::Retrans => "tcp_retransmit_timer",
            XmitTimer::LossProbe => "tcp_send_loss_probe",
            XmitTimer::ReoTimeout => "tcp_rack_reo_timeout",
            XmitTimer::Probe0 => "tcp_probe_timer",
        }
    }
}
