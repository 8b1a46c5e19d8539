//! TCP Fast Open, the client (RFC 7413 §4.1), as Linux does it:
//! `sendto(MSG_FASTOPEN)` and `TCP_FASTOPEN_CONNECT` (`tcp_sendmsg_fastopen`,
//! `tcp_fastopen_defer_connect`), the SYN with data or a cookie request
//! (`tcp_send_syn_data`, `tcp_fastopen_cookie_check`), the answer to it
//! (`tcp_rcv_fastopen_synack`: data the SYN-ACK does not acknowledge is
//! retransmitted at once) and the per-destination cookie cache
//! (`tcp_fastopen_cache_get` / `_set`, kept by Linux in the TCP metrics).

use core::net::Ipv4Addr;

use netpath_wire::tcp::{FastOpenOption, TcpFlags};

use super::api::SendFlags;
use super::fastopen::{
    FoCacheEntry, TFO_CLIENT_ENABLE, TFO_CLIENT_NO_COOKIE, TFO_COOKIE_UNAVAILABLE,
    TFO_DATA_NOT_ACKED, TFO_SYN_RETRANSMITTED,
};
use super::input::Seg;
use super::output::{fresh_seg, OutSeg};
use super::sock::{TcpSock, TcpState, XmitTimer, SEG_PSH, SEG_SYN};
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Instant;

/// `MAX_TCP_OPTION_SPACE`: what a SYN with data leaves for options that
/// middleboxes may add.
const MAX_TCP_OPTION_SPACE: u32 = 40;

/// What a Fast Open send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastOpenSend {
    /// The SYN went out carrying `copied` bytes of the data (0: a cookie
    /// request or a plain SYN); the handshake is under way.
    Connecting {
        /// Bytes carried by the SYN.
        copied: usize,
    },
    /// The socket was already connected: `MSG_FASTOPEN` is ignored and
    /// this many bytes were sent as by `send()`.
    Sent(usize),
}

impl Stack {
    /// `ip tcp_metrics flush`: forgets every cached cookie.
    pub fn tcp_fastopen_cache_flush(&mut self) {
        self.tcp.fo_cache.clear();
    }

    /// Whether `id` waits for its first write to send its SYN
    /// (`TCP_FASTOPEN_CONNECT` with a cookie cached).
    pub fn tcp_fastopen_deferred(&self, id: SockId) -> bool {
        self.tcp
            .get(id)
            .is_some_and(|s| s.fo.defer_connect && s.state == TcpState::SynSent)
    }

    /// `sendto(MSG_FASTOPEN)`, or a write on a socket whose
    /// `TCP_FASTOPEN_CONNECT` deferred its SYN: connects to `dst` with as
    /// much of `data` in the SYN as a cached cookie allows. `blocking`
    /// says the caller will wait for the handshake (its ACK is then
    /// delayed, as the data that follows carries it).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_send_fastopen(
        &mut self,
        now: Instant,
        id: SockId,
        dst: Option<(Ipv4Addr, u16)>,
        data: &[u8],
        iov: &[usize],
        flags: SendFlags,
        blocking: bool,
    ) -> Result<FastOpenSend, Errno> {
        self.tcp_sendmsg_fastopen(now, id, dst, data, iov, flags, blocking, false)
    }

    /// [`Stack::tcp_send_fastopen`] from a buffer that cannot be read (a
    /// NULL pointer: copying faults): the connect goes ahead with a plain
    /// SYN asking for a cookie (`tcp_send_syn_data`'s fallback), no data.
    pub fn tcp_send_fastopen_fault(
        &mut self,
        now: Instant,
        id: SockId,
        dst: Option<(Ipv4Addr, u16)>,
    ) -> Result<FastOpenSend, Errno> {
        let flags = SendFlags::default();
        self.tcp_sendmsg_fastopen(now, id, dst, &[], &[], flags, false, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_sendmsg_fastopen(
        &mut self,
        now: Instant,
        id: SockId,
        dst: Option<(Ipv4Addr, u16)>,
        data: &[u8],
        iov: &[usize],
        flags: SendFlags,
        blocking: bool,
        fault: bool,
    ) -> Result<FastOpenSend, Errno> {
        self.set_now(now);
        let sk = self.tcp_user(id)?;
        if self.tcp.settings.fastopen & TFO_CLIENT_ENABLE == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        match sk.state {
            TcpState::SynSent if sk.fo.defer_connect => {
                let Some(mut sk) = self.tcp.take(id) else {
                    return Err(Errno::EBADF);
                };
                sk.fo.defer_connect = false;
                let copied = self.tcp_send_syn_data(&mut sk, data, flags.zerocopy, fault);
                // inet_wait_for_connect's write bias: data is left to send.
                sk.fo.write_pending = blocking && copied < data.len();
                self.tcp_sock_done(sk);
                Ok(FastOpenSend::Connecting { copied })
            }
            TcpState::SynSent | TcpState::SynRecv => Err(Errno::EALREADY),
            TcpState::Closed if !sk.connected_once && !sk.connecting => {
                let (addr, port) = dst.ok_or(Errno::EDESTADDRREQ)?;
                let mut sk = self.tcp_v4_connect_prepare(id, addr, port)?;
                let copied = self.tcp_send_syn_data(&mut sk, data, flags.zerocopy, fault);
                sk.fo.write_pending = blocking && copied < data.len();
                self.tcp_sock_done(sk);
                Ok(FastOpenSend::Connecting { copied })
            }
            _ => self
                .tcp_send_iov(now, id, data, iov, flags)
                .map(FastOpenSend::Sent),
        }
    }

    /// `tcp_fastopen_cache_get`: the cached MSS and cookie of `daddr`; a
    /// request goes in the experimental encoding when the cache says so.
    fn tcp_fastopen_cache_get(&self, daddr: Ipv4Addr) -> (Option<u16>, Option<FastOpenOption>) {
        let Some(e) = self.tcp.fo_cache.get(&daddr) else {
            return (None, Some(FastOpenOption::request(false)));
        };
        let mss = (e.mss > 0).then_some(e.mss);
        match e.cookie {
            Some(c) if !c.cookie().is_empty() => (mss, Some(c)),
            _ => (mss, Some(FastOpenOption::request(e.try_exp == 1))),
        }
    }

    /// `tcp_fastopen_cache_set`.
    fn tcp_fastopen_cache_set(
        &mut self,
        daddr: Ipv4Addr,
        mss: u16,
        cookie: Option<FastOpenOption>,
        syn_lost: bool,
        try_exp: u8,
    ) {
        let now = self.now;
        let e: &mut FoCacheEntry = self.tcp.fo_cache.entry(daddr).or_default();
        if mss > 0 {
            e.mss = mss;
        }
        let have = e.cookie.is_some_and(|c| !c.cookie().is_empty());
        match cookie {
            Some(c) if !c.cookie().is_empty() => e.cookie = Some(c),
            _ if try_exp > e.try_exp && !have => e.try_exp = try_exp,
            _ => {}
        }
        if syn_lost {
            e.syn_loss = e.syn_loss.saturating_add(1);
            e.last_syn_loss = Some(now);
        } else {
            e.syn_loss = 0;
        }
    }

    /// `tcp_fastopen_cookie_check`: whether the SYN may carry data, the
    /// option it carries (`None`: none at all) and the cached MSS.
    fn tcp_fastopen_cookie_check(
        &mut self,
        sk: &mut TcpSock,
    ) -> (bool, Option<FastOpenOption>, Option<u16>) {
        let (mss, cookie) = self.tcp_fastopen_cache_get(sk.remote.0);
        if self.tcp.settings.fastopen & TFO_CLIENT_NO_COOKIE != 0 || sk.fo.no_cookie {
            return (true, None, mss);
        }
        if cookie.is_some_and(|c| !c.cookie().is_empty()) {
            return (true, cookie, mss);
        }
        sk.fo.client_fail = TFO_COOKIE_UNAVAILABLE;
        (false, cookie, mss)
    }

    /// `tcp_send_syn_data` (the SYN of `tcp_connect`): with a cookie (or
    /// none needed), as much data as fits in the cached MSS less 40 bytes
    /// of option room; else (or when the data cannot be copied, `fault`) a
    /// plain SYN with a cookie request. Returns the bytes the SYN carries.
    pub(crate) fn tcp_send_syn_data(
        &mut self,
        sk: &mut TcpSock,
        data: &[u8],
        zerocopy: bool,
        fault: bool,
    ) -> usize {
        let (ok, cookie, cached_mss) = self.tcp_fastopen_cookie_check(sk);
        // The data cannot be copied (fault): the fallback SYN.
        let ok = ok && !fault;
        let mut copied = 0usize;
        let mut opt = cookie;
        if ok {
            let mut clamp = cached_mss.unwrap_or(sk.advmss);
            if sk.user_mss > 0 && sk.user_mss < clamp {
                clamp = sk.user_mss;
            }
            sk.mss_clamp = clamp;
            let pmtu = self.tcp_path_mtu(sk);
            let mtu_mss = pmtu.saturating_sub(40).min(u32::from(clamp));
            let space = mtu_mss.saturating_sub(MAX_TCP_OPTION_SPACE) as usize;
            copied = space.min(data.len());
        } else if let Some(c) = opt.as_mut() {
            // Fall back to a cookie request.
            *c = FastOpenOption::request(c.exp);
        }
        let used =
            4 + if sk.tstamp_ok {
                12
            } else if sk.sack_ok {
                4
            } else {
                0
            } + if sk.wscale_ok { 4 } else { 0 };
        let opt = opt.filter(|o| used + o.emitted_len() <= MAX_TCP_OPTION_SPACE as usize);
        sk.fo.syn_fastopen = opt.is_some();
        sk.fo.syn_fastopen_exp = opt.is_some_and(|o| o.exp);
        sk.fo.syn_opt = opt;
        // The SYN (kept for retransmission, without data or option) and
        // the data after it, sent as one segment.
        let Ok(syn_skb) = self.pool.alloc(0) else {
            return 0;
        };
        let mut data_skb = None;
        if copied > 0 {
            match self.pool.alloc(copied) {
                Ok(mut skb) => {
                    if skb.put_slice(&data[..copied]).is_ok() {
                        data_skb = Some(skb);
                    } else {
                        copied = 0;
                    }
                }
                Err(_) => copied = 0,
            }
        }
        let iss = sk.iss;
        sk.rtx_queue
            .push_back(fresh_seg(iss, syn_skb, SEG_SYN, self.now));
        sk.packets_out += 1;
        sk.snd_nxt = iss + 1;
        if let Some(skb) = data_skb {
            sk.rtx_queue
                .push_back(fresh_seg(iss + 1, skb, SEG_PSH, self.now));
            sk.packets_out += 1;
            sk.wmem_queued += copied;
            sk.snd_nxt += copied as u32;
            self.tcp.ext.tcp_orig_data_sent += 1;
        }
        sk.write_seq = sk.snd_nxt;
        sk.pushed_seq = sk.write_seq;
        sk.fo.syn_data = copied > 0;
        if copied > 0 && zerocopy && sk.zerocopy {
            // MSG_ZEROCOPY: completed once the SYN's data is acknowledged.
            Self::tcp_zerocopy_sent(sk);
        }
        self.tcp_transmit_skb(
            sk,
            OutSeg {
                seq: iss,
                flags: TcpFlags::SYN,
                payload: &data[..copied],
                gso: &[],
            },
        );
        // SYN retransmissions carry neither data nor the option.
        sk.fo.syn_opt = None;
        sk.xmit_timer = Some((self.now + sk.rtt.timeout(), XmitTimer::Retrans));
        copied
    }

    /// `tcp_rcv_fastopen_synack`, after the SYN-ACK was taken: updates the
    /// cookie cache; data the SYN-ACK left unacknowledged is retransmitted
    /// at once (true: the caller sends no ACK of its own).
    pub(crate) fn tcp_rcv_fastopen_synack(
        &mut self,
        sk: &mut TcpSock,
        seg: &Seg,
        syn_retransmitted: bool,
    ) -> bool {
        let data_left = sk.fo.syn_data && !sk.rtx_queue.is_empty();
        let mss = seg.opts.mss.unwrap_or(0);
        let mut cookie = seg
            .opts
            .fastopen
            .filter(|c| c.valid && !c.cookie().is_empty());
        let mut try_exp = 0;
        let mut syn_drop = false;
        if !sk.fo.syn_fastopen {
            // An unsolicited cookie is ignored.
            cookie = None;
        } else if syn_retransmitted {
            // Only the retransmitted (plain) SYN got through, presumably.
            syn_drop = cookie.is_none() && data_left;
        } else if cookie.is_none() && !sk.fo.syn_data {
            // No cookie for our request: try the other encoding next.
            try_exp = if sk.fo.syn_fastopen_exp { 2 } else { 1 };
        }
        self.tcp_fastopen_cache_set(sk.remote.0, mss, cookie, syn_drop, try_exp);
        if data_left {
            sk.fo.client_fail = if syn_retransmitted {
                TFO_SYN_RETRANSMITTED
            } else {
                TFO_DATA_NOT_ACKED
            };
            // tcp_mark_skb_lost on each + tcp_non_congestion_loss_retransmit.
            for q in sk.rtx_queue.iter_mut() {
                if !q.lost {
                    q.lost = true;
                    sk.lost_out += 1;
                }
            }
            if sk.cc.ca_state != super::cong::CaState::Loss {
                sk.high_seq = sk.snd_nxt;
                self.tcp_set_ca_state(sk, super::cong::CaState::Loss);
            }
            self.tcp_xmit_retransmit_queue(sk);
            self.tcp.ext.tcp_fastopen_active_fail += 1;
            return true;
        }
        // tcp_fastopen_add_skb: data on the SYN-ACK is the caller's to
        // queue (the caller does it when this returns false).
        sk.fo.syn_data_acked = sk.fo.syn_data;
        if sk.fo.syn_data_acked {
            self.tcp.ext.tcp_fastopen_active += 1;
            // The SYN and its data were counted as two deliveries.
            if sk.delivered > 1 {
                sk.delivered -= 1;
            }
        }
        false
    }
}

impl Stack {
    /// `tcp_fastopen_defer_connect`: whether connect() may return at once
    /// (a cookie is cached, or none is needed).
    pub(crate) fn tcp_fastopen_defer_connect(&mut self, sk: &mut TcpSock) -> bool {
        self.tcp_fastopen_cookie_check(sk).0
    }
}
