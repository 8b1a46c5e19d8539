//! The listener (`tcp_v4_conn_request` → `tcp_conn_request`,
//! `tcp_v4_syn_recv_sock`, `cookie_v4_check`), part of seed ingress step
//! 11: a SYN to a listening socket creates a child in SYN_RECV (Linux's
//! request sock, here a full socket) and answers SYN-ACK; when the SYN queue
//! is full, a SYN cookie answers instead and no state is kept. Also the
//! sequence numbers Linux derives from a secret (`secure_tcp_seq`,
//! `secure_tcp_ts_off`) and `tcp_select_initial_window`.

use core::net::Ipv4Addr;

use netpath_wire::tcp::{TcpFlags, TcpSeqNumber};

use super::input::Seg;
use super::sock::{TcpSock, TcpState};
use super::syncookies;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::sock::SockId;
use crate::stack::Stack;

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn syn_wants_ecn(seg: &Seg) -> bool {
    seg.flags.ece() && seg.flags.cwr()
}

fn cookie_flow(seg: &Seg) -> syncookies::CookieFlow {
    syncookies::CookieFlow {
        saddr: seg.saddr,
        daddr: seg.daddr,
        sport: seg.sport,
        dport: seg.dport,
    }
}

impl Stack {
    /// `secure_tcp_seq()`: a keyed hash of the 4-tuple plus a 64 ns clock
    /// (RFC 6528).
    pub(crate) fn secure_tcp_seq(
        &self,
        laddr: Ipv4Addr,
        lport: u16,
        raddr: Ipv4Addr,
        rport: u16,
    ) -> TcpSeqNumber {
        let a = u64::from(u32::from(laddr)) << 32 | u64::from(u32::from(raddr));
        let b = u64::from(lport) << 16 | u64::from(rport);
        let h = mix(mix(a ^ self.tcp.secret) ^ b) as u32;
        TcpSeqNumber(h.wrapping_add((self.now.as_nanos() >> 6) as u32))
    }

    /// `secure_tcp_ts_off()`: the TSval offset of an address pair.
    pub(crate) fn secure_tcp_ts_off(&self, laddr: Ipv4Addr, raddr: Ipv4Addr) -> u32 {
        let a = u64::from(u32::from(laddr)) << 32 | u64::from(u32::from(raddr));
        (mix(a ^ self.tcp.secret.rotate_left(17)) >> 32) as u32
    }

    /// `tcp_select_initial_window()`: the window of the SYN / SYN-ACK, the
    /// window scale to offer and the window clamp, for a segment size of
    /// `mss`.
    pub(crate) fn tcp_select_initial_window(&self, sk: &mut TcpSock, mss: u32) {
        let st = &self.tcp.settings;
        let mut clamp = if sk.window_clamp == 0 {
            65535u32 << 14
        } else {
            sk.window_clamp
        };
        let mut space = Self::tcp_full_space(sk).min(clamp);
        if space > mss {
            space = (space / mss) * mss;
        }
        sk.rcv_wnd = space;
        sk.rcv_wscale = 0;
        if sk.wscale_ok {
            let s = (space as usize).max(st.rmem[2]).max(st.rmem_max);
            let s = (s.min(clamp as usize)).max(1) as u64;
            let ilog2 = 63 - s.leading_zeros() as i32;
            sk.rcv_wscale = (ilog2 - 15).clamp(0, 14) as u8;
        }
        clamp = clamp.min(65535u32 << sk.rcv_wscale);
        sk.window_clamp = clamp;
        sk.rcv_ssthresh = sk.rcv_wnd.min(clamp);
    }

    /// `dst_metric_advmss`: the MSS to announce on this route.
    pub(crate) fn tcp_advmss(&self, sk: &TcpSock) -> u16 {
        let route = self.tcp_route(sk);
        let mtu = route.map_or(576, |(d, _)| d.mtu);
        // dst_metric_advmss: the route's `advmss` if set, else
        // ipv4_default_advmss: never more than IPV4_MAX_PMTU - 40 ...
        // ... and not less than ip_rt_min_advmss (256).
        let mut m = match route.and_then(|(_, m)| m.advmss) {
            Some(a) => a.clamp(1, 65535 - 40) as u16,
            None => mtu.min(65535).saturating_sub(40).max(256) as u16,
        };
        if sk.user_mss > 0 {
            m = m.min(sk.user_mss);
        }
        m
    }

    /// What a listener's answer to `seg` (a SYN) uses: our offer, the
    /// peer's options, the TSval offset of the address pair.
    fn tcp_passive_syn_options(&mut self, sk: &mut TcpSock, seg: &Seg) {
        sk.offer_syn_options(&self.tcp.settings);
        sk.ts_offset = self.secure_tcp_ts_off(seg.daddr, seg.saddr);
        self.tcp_learn_syn_options(sk, seg);
    }

    /// A segment for a listening socket.
    pub(crate) fn tcp_listen_rcv(&mut self, lid: SockId, seg: &Seg, skb: Skb) {
        if seg.flags.rst() {
            self.kfree_skb(skb, DropReason::TcpReset);
            return;
        }
        if seg.flags.ack() && !seg.flags.syn() {
            if self.tcp.settings.syncookies > 0 {
                let checked = self.tcp_cookie_check(lid, seg);
                if checked == Some(None) {
                    // A valid cookie, but the accept queue is full: the
                    // ACK is dropped (ListenOverflows), no RST.
                    self.kfree_skb(skb, DropReason::SocketBacklog);
                    return;
                }
                if let Some(Some(child)) = checked {
                    // The child processes the ACK (and any data) itself.
                    if let Some(mut sk) = self.tcp.take(child) {
                        sk.segs_in += 1;
                        self.tcp_rcv_state_process(&mut sk, seg, skb);
                        self.tcp_sock_done(sk);
                    } else {
                        self.consume_skb(skb);
                    }
                    return;
                }
            }
            self.tcp_v4_send_reset_seg(seg);
            self.kfree_skb(skb, DropReason::TcpFlags);
            return;
        }
        if !seg.flags.syn() || seg.flags.fin() {
            self.kfree_skb(skb, DropReason::TcpFlags);
            return;
        }
        self.tcp_conn_request(lid, seg, skb);
    }

    /// `tcp_conn_request()`: a SYN to a listener.
    fn tcp_conn_request(&mut self, lid: SockId, seg: &Seg, skb: Skb) {
        let Some(l) = self.tcp.get(lid).and_then(|s| s.listen.as_ref()) else {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        };
        let (syn_q, acc_q, backlog) = (l.syn_queue, l.accept_queue.len() as u32, l.backlog);
        let mut want_cookie = self.tcp.settings.syncookies == 2;
        if syn_q >= backlog {
            if self.tcp.settings.syncookies > 0 {
                want_cookie = true;
                self.tcp.ext.tcp_req_q_full_do_cookies += 1;
            } else {
                self.tcp.ext.tcp_req_q_full_drop += 1;
                self.tcp.ext.listen_drops += 1;
                self.kfree_skb(skb, DropReason::SocketBacklog);
                return;
            }
        }
        if acc_q > backlog {
            self.tcp.ext.listen_overflows += 1;
            self.tcp.ext.listen_drops += 1;
            self.kfree_skb(skb, DropReason::SocketBacklog);
            return;
        }
        if want_cookie {
            self.tcp_send_cookie_synack(lid, seg);
            self.consume_skb(skb);
            return;
        }
        // Fast Open (tcp_try_fastopen): data in the SYN may be accepted
        // at once, and the SYN-ACK may carry a cookie.
        let fo = self.tcp_fastopen_decide(lid, seg);
        let iss = self.secure_tcp_seq(seg.daddr, seg.dport, seg.saddr, seg.sport);
        let Some(child) = self.tcp_create_child(lid, seg, iss) else {
            self.tcp.ext.listen_drops += 1;
            self.kfree_skb(skb, DropReason::Nomem);
            return;
        };
        if let Some(l) = self.tcp.get_mut(lid).and_then(|s| s.listen.as_mut()) {
            if fo.child {
                // Straight to the accept queue (inet_csk_reqsk_queue_add).
                l.accept_queue.push_back(child);
            } else {
                l.syn_queue += 1;
            }
            l.children.push(child);
        }
        let Some(mut sk) = self.tcp.take(child) else {
            self.consume_skb(skb);
            return;
        };
        let skb = if fo.child {
            self.tcp_fastopen_init_child(lid, &mut sk, seg, skb);
            None
        } else {
            Some(skb)
        };
        sk.fo.syn_opt = fo.synack_opt;
        self.tcp_send_syn(&mut sk, true);
        if fo.child {
            self.tcp_fastopen_synack_sent(&mut sk);
        }
        self.tcp_sock_done(sk);
        if fo.child {
            // The listener's sk_data_ready: a connection to accept.
            self.tcp_listener_data_ready(lid, child);
        }
        if let Some(skb) = skb {
            self.consume_skb(skb);
        }
    }

    /// The listener's `sk_data_ready`: a child joined its accept queue.
    pub(crate) fn tcp_listener_data_ready(&mut self, lid: SockId, child: SockId) {
        self.tcp.wake_seq += 1;
        let stamp = self.tcp.wake_seq;
        if let Some(p) = self.tcp.get_mut(lid) {
            p.wake.record(crate::sock::wait::WakeKey::DataReady, stamp);
        }
        self.tracer.event_detail(
            self.now,
            "inet_csk_accept_queue_add",
            None,
            u64::from(child.0),
        );
    }

    /// A child socket in SYN_RECV for `seg` (`tcp_create_openreq_child`),
    /// hashed under its 4-tuple and sharing the listener's port.
    fn tcp_create_child(&mut self, lid: SockId, seg: &Seg, iss: TcpSeqNumber) -> Option<SockId> {
        let id = self.tcp.alloc(self.now);
        let mut sk = self.tcp.take(id)?;
        {
            let parent = self.tcp.get(lid)?;
            sk.bind_opts = parent.bind_opts;
            sk.ip_opts = parent.ip_opts;
            sk.nodelay = parent.nodelay;
            sk.keepalive = parent.keepalive;
            sk.keepidle = parent.keepidle;
            sk.keepintvl = parent.keepintvl;
            sk.keepcnt = parent.keepcnt;
            sk.user_timeout = parent.user_timeout;
            sk.linger = parent.linger;
            sk.sndbuf = parent.sndbuf;
            sk.sndbuf_locked = parent.sndbuf_locked;
            sk.rcvbuf = parent.rcvbuf;
            sk.rcvbuf_locked = parent.rcvbuf_locked;
            sk.user_mss = parent.user_mss;
            sk.notsent_lowat = parent.notsent_lowat;
            // sk_clone_lock copies the socket: its flags and TCP_INQ too.
            sk.recvmsg_inq = parent.recvmsg_inq;
            sk.zerocopy = parent.zerocopy;
            sk.urg_inline = parent.urg_inline;
            sk.freebind = parent.freebind;
            sk.tsflags = parent.tsflags;
            sk.tskey = parent.tskey;
            if let Some(ca) = super::cong::by_name(parent.ca.name()) {
                sk.ca = ca;
            }
        }
        sk.parent = Some(lid);
        sk.local = (seg.daddr, seg.dport);
        sk.remote = (seg.saddr, seg.sport);
        sk.inet_id = (mix(u64::from(iss.0) ^ self.tcp.secret) >> 48) as u16;
        sk.iss = iss;
        sk.snd_una = iss;
        sk.snd_nxt = iss;
        sk.write_seq = iss;
        sk.highest_sack = iss;
        sk.init_from_syn(seg.seq, seg.wnd);
        self.tcp_passive_syn_options(&mut sk, seg);
        // A SYN with ECE and CWR asks for ECN (tcp_ecn_create_request).
        sk.ecn_ok = self.tcp.settings.ecn > 0 && syn_wants_ecn(seg);
        sk.advmss = self.tcp_advmss(&sk);
        let mss = u32::from(sk.advmss) - if sk.tstamp_ok { 12 } else { 0 };
        self.tcp_select_initial_window(&mut sk, mss);
        self.tcp_set_state(&mut sk, TcpState::SynRecv);
        let tuple = sk.tuple();
        if self
            .tcp
            .hash
            .ehash_insert(tuple, id, sk.bind_opts.bound_dev)
            .is_err()
        {
            self.tcp.put(sk);
            self.tcp.destroy(id);
            return None;
        }
        sk.hashed = true;
        let _ = self.tcp.hash.inherit_port(id, lid);
        sk.bound = true;
        self.tcp.put(sk);
        Some(id)
    }

    /// A SYN-ACK whose ISN is a cookie; no state is kept.
    fn tcp_send_cookie_synack(&mut self, lid: SockId, seg: &Seg) {
        let secret = self.tcp.secret;
        let peer_mss = seg.opts.mss.unwrap_or(536);
        let (isn, mss) = syncookies::cookie_v4_init_sequence(
            secret,
            &cookie_flow(seg),
            seg.seq,
            peer_mss,
            self.now,
        );
        let mut tmp = Box::new(TcpSock::new(SockId(u32::MAX), &self.tcp.settings, self.now));
        if let Some(p) = self.tcp.get(lid) {
            tmp.ip_opts = p.ip_opts;
            tmp.rcvbuf = p.rcvbuf;
            tmp.user_mss = p.user_mss;
        }
        tmp.local = (seg.daddr, seg.dport);
        tmp.remote = (seg.saddr, seg.sport);
        tmp.iss = isn;
        tmp.init_from_syn(seg.seq, seg.wnd);
        self.tcp_passive_syn_options(&mut tmp, seg);
        // Without timestamps the cookie cannot carry SACK or wscale.
        if !tmp.tstamp_ok {
            tmp.sack_ok = false;
            tmp.wscale_ok = false;
            tmp.snd_wscale = 0;
        }
        tmp.advmss = self.tcp_advmss(&tmp);
        let wmss = u32::from(tmp.advmss) - if tmp.tstamp_ok { 12 } else { 0 };
        self.tcp_select_initial_window(&mut tmp, wmss);
        tmp.state = TcpState::SynRecv;
        if tmp.tstamp_ok {
            // The TSval carries the options: shift the offset so that
            // tcp_tsval() yields the encoded value.
            let now_ts = self.tcp_tsval(&tmp);
            let ws = tmp.wscale_ok.then_some(tmp.snd_wscale);
            let enc = syncookies::cookie_init_timestamp(now_ts, ws, tmp.sack_ok);
            tmp.ts_offset = tmp.ts_offset.wrapping_add(enc.wrapping_sub(now_ts));
        }
        let _ = mss;
        self.tcp.ext.syncookies_sent += 1;
        self.tcp_transmit_skb(
            &mut tmp,
            super::output::OutSeg {
                seq: isn,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                payload: &[],
                gso: &[],
            },
        );
    }

    /// `cookie_v4_check()`: an ACK to a listener that may complete a
    /// cookie handshake: `None` for no valid cookie, `Some(None)` for a
    /// valid one the full accept queue cannot take, else the child (in
    /// SYN_RECV).
    fn tcp_cookie_check(&mut self, lid: SockId, seg: &Seg) -> Option<Option<SockId>> {
        let secret = self.tcp.secret;
        let cookie = seg.ack - 1;
        let sseq = seg.seq - 1;
        let Some(mss) =
            syncookies::cookie_v4_check(secret, &cookie_flow(seg), sseq, cookie, self.now)
        else {
            if self.tcp.ext.syncookies_sent > 0 {
                self.tcp.ext.syncookies_failed += 1;
            }
            return None;
        };
        let tsecr = seg.opts.timestamps.map(|t| t.tsecr);
        let opts = syncookies::cookie_timestamp_decode(tsecr, mss)?;
        let l = self.tcp.get(lid)?.listen.as_ref()?;
        if l.accept_queue.len() as u32 > l.backlog {
            self.tcp.ext.listen_overflows += 1;
            self.tcp.ext.listen_drops += 1;
            return Some(None);
        }
        self.tcp.ext.syncookies_recv += 1;
        // Rebuild the SYN the cookie stands for.
        let mut syn = *seg;
        syn.seq = sseq;
        syn.flags = TcpFlags::SYN;
        syn.opts = Default::default();
        syn.opts.mss = Some(opts.mss);
        syn.opts.sack_permitted = opts.sack;
        syn.opts.window_scale = opts.snd_wscale;
        if opts.tstamp {
            syn.opts.timestamps = seg.opts.timestamps;
        }
        let Some(child) = self.tcp_create_child(lid, &syn, cookie) else {
            return Some(None);
        };
        if let Some(mut sk) = self.tcp.take(child) {
            if !opts.tstamp {
                sk.tstamp_ok = false;
            }
            // The SYN-ACK is sent (in the past): snd_nxt past it.
            sk.snd_nxt = cookie + 1;
            sk.write_seq = sk.snd_nxt;
            sk.snd_una = cookie;
            if let Some(ts) = seg.opts.timestamps {
                sk.ts_recent = ts.tsval;
            }
            self.tcp.put(sk);
        }
        if let Some(l) = self.tcp.get_mut(lid).and_then(|s| s.listen.as_mut()) {
            l.syn_queue += 1;
            l.children.push(child);
        }
        Some(Some(child))
    }
}
