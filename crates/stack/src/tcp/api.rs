//! The TCP socket calls (`net/ipv4/af_inet.c`, `tcp.c`): socket, bind,
//! listen, accept, connect (non-blocking: `EINPROGRESS`, then `EALREADY`,
//! then the result), send (in [`super::sendmsg`]), recv (`tcp_recvmsg`,
//! seed ingress step 12: dequeue,
//! copy into the caller's buffer from as many skbs as it takes, free each
//! consumed skb), shutdown, close, poll, socket options and `TCP_INFO`.
//!
//! Every call takes `now` and never blocks: a call that would wait returns
//! `EAGAIN` (or `EINPROGRESS`); [`crate::sim::blocking`] turns that into
//! blocking calls for code running in the simulator.

use core::net::Ipv4Addr;

use super::output::Nonagle;
use super::sock::{ListenState, TcpState, SEG_FIN, SEG_PSH};
use crate::dev::IfIndex;
use crate::sock::table::BindOpts;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::{Duration, Instant};

/// `shutdown(how)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// `send()` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendFlags {
    /// `MSG_MORE`: more data follows, do not push a partial segment.
    pub more: bool,
    /// `MSG_EOR`: end of record; later writes never join this data's
    /// segment (`TCP_SKB_CB(skb)->eor`).
    pub eor: bool,
    /// `MSG_ZEROCOPY`: on a socket with `SO_ZEROCOPY`, the send gets a
    /// completion notification once its data is acknowledged (netpath
    /// always copies, so the notification says "copied").
    pub zerocopy: bool,
}

/// What `poll()` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollEvents {
    /// `POLLIN`: data, EOF or a connection to accept.
    pub readable: bool,
    /// `POLLOUT`: room in the send buffer.
    pub writable: bool,
    /// `POLLHUP`.
    pub hup: bool,
    /// `POLLRDHUP`: the peer sent FIN.
    pub rdhup: bool,
    /// `POLLERR`: a pending error.
    pub err: bool,
    /// `POLLPRI`: an urgent byte to read with `MSG_OOB`.
    pub pri: bool,
}

/// A socket option (`setsockopt` value, or `getsockopt` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOpt {
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `TCP_CORK`.
    Cork(bool),
    /// `TCP_MAXSEG` (0 = unset).
    MaxSeg(u16),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `TCP_KEEPIDLE`, seconds.
    KeepIdle(u32),
    /// `TCP_KEEPINTVL`, seconds.
    KeepIntvl(u32),
    /// `TCP_KEEPCNT`.
    KeepCnt(u32),
    /// `TCP_USER_TIMEOUT`, milliseconds (0 = system default).
    UserTimeout(u32),
    /// `SO_LINGER`: `Some(seconds)` on, `None` off.
    Linger(Option<u32>),
    /// `SO_RCVBUF` (set: the value is doubled, as Linux does).
    RcvBuf(usize),
    /// `SO_SNDBUF` (doubled likewise).
    SndBuf(usize),
    /// `SO_REUSEADDR`.
    ReuseAddr(bool),
    /// `SO_REUSEPORT`.
    ReusePort(bool),
    /// `SO_BINDTODEVICE`.
    BindToDevice(Option<IfIndex>),
    /// `TCP_CONGESTION`.
    Congestion(String),
    /// `TCP_NOTSENT_LOWAT`.
    NotSentLowat(u32),
    /// `TCP_INQ`: `recvmsg` returns a `TCP_CM_INQ` control message
    /// ([`Stack::tcp_cm_inq`]).
    Inq(bool),
    /// `SO_ZEROCOPY`: `MSG_ZEROCOPY` sends are honoured.
    ZeroCopy(bool),
    /// `SO_OOBINLINE`: the urgent byte stays in the stream.
    OobInline(bool),
    /// `IP_FREEBIND`: bind to an address the host does not (yet) have.
    FreeBind(bool),
    /// `TCP_SYNCNT`: SYN retransmissions before connect() gives up.
    SynCnt(u32),
    /// `TCP_FASTOPEN`: the listener's Fast Open queue length.
    FastOpen(u32),
    /// `TCP_FASTOPEN_CONNECT`: `connect()` defers the SYN to the first
    /// write, which sends data in it.
    FastOpenConnect(bool),
    /// `TCP_FASTOPEN_NO_COOKIE`: data in the SYN without a cookie.
    FastOpenNoCookie(bool),
    /// `TCP_FASTOPEN_KEY`: 16 bytes (primary) or 32 (primary, backup).
    FastOpenKey(Vec<u8>),
    /// `IP_TTL`.
    Ttl(u8),
    /// `IP_TOS`.
    Tos(u8),
    /// `IP_MTU_DISCOVER`.
    MtuDiscover(crate::ipv4::output::PmtuDisc),
    /// `SO_MARK`.
    Mark(u32),
    /// `SO_PRIORITY`.
    Priority(u32),
    /// `SO_TIMESTAMPING`: the `SOF_TIMESTAMPING_*` flags
    /// ([`super::timestamping`]).
    Timestamping(u32),
}

/// One line of `ss -t -a`: handle, state, local and remote address.
pub type SocketSummary = (SockId, TcpState, (Ipv4Addr, u16), (Ipv4Addr, u16));

/// `SOCK_MIN_SNDBUF`, `SOCK_MIN_RCVBUF`.
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;

impl Stack {
    /// The TCP settings (`sysctl net.ipv4.tcp_*`).
    pub fn tcp_settings(&self) -> &super::TcpSettings {
        &self.tcp.settings
    }

    pub fn tcp_settings_mut(&mut self) -> &mut super::TcpSettings {
        &mut self.tcp.settings
    }

    /// `sysctl -w name=value` for TCP's settings.
    pub fn sysctl_tcp(&mut self, name: &str, value: &str) -> Result<(), super::SysctlError> {
        self.tcp.settings.set(name, value)
    }

    /// `socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)`.
    pub fn tcp_socket(&mut self) -> SockId {
        self.tcp.alloc(self.now)
    }

    pub(crate) fn tcp_user(&self, id: SockId) -> Result<&super::sock::TcpSock, Errno> {
        match self.tcp.get(id) {
            Some(s) if !s.orphan && s.parent.is_none() => Ok(s),
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn tcp_user_mut(&mut self, id: SockId) -> Result<&mut super::sock::TcpSock, Errno> {
        match self.tcp.get_mut(id) {
            Some(s) if !s.orphan && s.parent.is_none() => Ok(s),
            _ => Err(Errno::EBADF),
        }
    }

    /// `bind()`: port 0 picks an ephemeral port.
    pub fn tcp_bind(&mut self, id: SockId, addr: Ipv4Addr, port: u16) -> Result<(), Errno> {
        let sk = self.tcp_user(id)?;
        if sk.bound || sk.state != TcpState::Closed {
            return Err(Errno::EINVAL);
        }
        // inet_addr_valid_or_nonlocal: IP_FREEBIND binds to any address.
        if !addr.is_unspecified()
            && !self.is_local_addr(addr)
            && !addr.is_broadcast()
            && !sk.freebind
        {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let opts = sk.bind_opts;
        let p = self.tcp.hash.bind(id, addr, port, opts)?;
        let sk = self.tcp_user_mut(id)?;
        sk.bound = true;
        sk.local = (addr, p);
        Ok(())
    }

    /// `listen(backlog)`: binds an ephemeral port if unbound; the backlog
    /// is capped at `somaxconn`.
    pub fn tcp_listen(&mut self, id: SockId, backlog: u32) -> Result<(), Errno> {
        let sk = self.tcp_user(id)?;
        let st = sk.state;
        // inet_listen: only a socket that never connected (SS_UNCONNECTED).
        if !matches!(st, TcpState::Closed | TcpState::Listen) || sk.connecting || sk.connected_once
        {
            return Err(Errno::EINVAL);
        }
        if !self.tcp_user(id)?.bound {
            self.tcp_bind(id, Ipv4Addr::UNSPECIFIED, 0)?;
        }
        let somax = self.tcp.settings.somaxconn;
        if st == TcpState::Listen {
            if let Some(l) = self.tcp_user_mut(id)?.listen.as_mut() {
                l.backlog = backlog.min(somax);
            }
            return Ok(());
        }
        self.tcp.hash.listen(id)?;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        sk.listen = Some(ListenState {
            backlog: backlog.min(somax),
            ..ListenState::default()
        });
        // inet_listen: with TFO_SERVER_WO_SOCKOPT1, every listener gets a
        // Fast Open queue as long as its backlog (fastopen_queue_tune).
        let tfo = self.tcp.settings.fastopen;
        if tfo & super::fastopen::TFO_SERVER_WO_SOCKOPT1 != 0
            && tfo & super::fastopen::TFO_SERVER_ENABLE != 0
            && sk.fo.max_qlen == 0
        {
            sk.fo.max_qlen = backlog.min(somax);
        }
        self.tcp_set_state(&mut sk, TcpState::Listen);
        self.tcp.put(sk);
        Ok(())
    }

    /// `accept()`: the next established connection and its peer;
    /// `EAGAIN` when none is waiting.
    pub fn tcp_accept(
        &mut self,
        now: Instant,
        id: SockId,
    ) -> Result<(SockId, (Ipv4Addr, u16)), Errno> {
        self.set_now(now);
        let sk = self.tcp_user_mut(id)?;
        let Some(l) = sk.listen.as_mut() else {
            return Err(Errno::EINVAL);
        };
        let child = l.accept_queue.pop_front().ok_or(Errno::EAGAIN)?;
        if let Some(i) = l.children.iter().position(|&c| c == child) {
            l.children.swap_remove(i);
        }
        let c = self.tcp.get_mut(child).ok_or(Errno::ECONNABORTED)?;
        c.parent = None;
        c.connected_once = true;
        let peer = c.remote;
        self.tracer
            .event_detail(self.now, "inet_csk_accept", None, u64::from(child.0));
        Ok((child, peer))
    }

    /// `connect()`. Non-blocking, as with `O_NONBLOCK`: the first call
    /// sends the SYN and returns `EINPROGRESS`; while the handshake runs,
    /// `EALREADY`; then `Ok` once (or the error, e.g. `ECONNREFUSED`,
    /// `ETIMEDOUT`), and `EISCONN` after that.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        id: SockId,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), Errno> {
        self.set_now(now);
        let sk = self.tcp_user_mut(id)?;
        if sk.connecting {
            return match sk.state {
                // A deferred Fast Open connect counts as connected.
                TcpState::SynSent if sk.fo.defer_connect => Err(Errno::EISCONN),
                TcpState::SynSent | TcpState::SynRecv => Err(Errno::EALREADY),
                TcpState::Closed => {
                    sk.connecting = false;
                    Err(sk.err.take().unwrap_or(Errno::ECONNABORTED))
                }
                _ => {
                    sk.connecting = false;
                    sk.connected_once = true;
                    Ok(())
                }
            };
        }
        if sk.state != TcpState::Closed || sk.connected_once {
            return Err(Errno::EISCONN);
        }
        if port == 0 {
            return Err(Errno::ECONNREFUSED);
        }
        let mut sk = self.tcp_v4_connect_prepare(id, addr, port)?;
        if sk.fo.connect {
            // TCP_FASTOPEN_CONNECT (tcp_fastopen_defer_connect): with a
            // cookie cached, connect() returns at once and the first write
            // sends the SYN with data; else the SYN requests a cookie.
            if self.tcp_fastopen_defer_connect(&mut sk) {
                sk.fo.defer_connect = true;
                self.tcp_sock_done(sk);
                return Ok(());
            }
            self.tcp_send_syn_data(&mut sk, &[], false, false);
        } else {
            self.tcp_send_syn(&mut sk, false);
        }
        self.tcp_sock_done(sk);
        Err(Errno::EINPROGRESS)
    }

    /// `tcp_v4_connect` up to the SYN: route, source address and port,
    /// ISN, the options to offer; the socket (taken out of the table) is
    /// in SYN_SENT.
    pub(crate) fn tcp_v4_connect_prepare(
        &mut self,
        id: SockId,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<Box<super::sock::TcpSock>, Errno> {
        let sk = self.tcp_user(id)?;
        let (laddr, bound) = (sk.local.0, sk.bound);
        let (oif, mark) = (sk.ip_opts.oif.or(sk.bind_opts.bound_dev), sk.ip_opts.mark);
        let saddr_opt = (!laddr.is_unspecified()).then_some(laddr);
        let dst = self
            .ip_route_output(addr, saddr_opt, oif, mark)
            .map_err(|e| Errno::from(crate::ipv4::output::SendError::Route(e)))?;
        if matches!(
            dst.rtype,
            crate::ipv4::route::RouteType::Broadcast | crate::ipv4::route::RouteType::Multicast
        ) {
            return Err(Errno::ENETUNREACH);
        }
        let saddr = saddr_opt.or(dst.prefsrc).ok_or(Errno::EADDRNOTAVAIL)?;
        let _ = bound;
        let lport = self.tcp.hash.hash_connect(id, saddr, addr, port)?;
        let iss = self.secure_tcp_seq(saddr, lport, addr, port);
        let ts_off = self.secure_tcp_ts_off(saddr, addr);
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        sk.local = (saddr, lport);
        sk.remote = (addr, port);
        sk.bound = true;
        sk.hashed = true;
        sk.iss = iss;
        sk.snd_una = iss;
        sk.snd_nxt = iss;
        sk.write_seq = iss;
        sk.highest_sack = iss;
        sk.ts_offset = ts_off;
        sk.inet_id = (iss.0 ^ (iss.0 >> 16)) as u16;
        sk.offer_syn_options(&self.tcp.settings);
        sk.ecn_syn = self.tcp.settings.ecn == 1;
        sk.ecn_ok = false;
        sk.mss_clamp = if sk.user_mss > 0 { sk.user_mss } else { 536 };
        sk.advmss = self.tcp_advmss(&sk);
        sk.rcv_mss = u32::from(sk.advmss);
        sk.pmtu = dst.mtu;
        let wmss = u32::from(sk.advmss);
        self.tcp_select_initial_window(&mut sk, wmss);
        sk.err = None;
        sk.err_soft = None;
        sk.shutdown = Default::default();
        sk.fin_received = false;
        sk.retransmits = 0;
        sk.rtt = super::rtt::RttEstimator::new();
        sk.connecting = true;
        self.tcp_set_state(&mut sk, TcpState::SynSent);
        self.tcp.mib.active_opens += 1;
        self.tracer
            .event_detail(self.now, "tcp_v4_connect", None, u64::from(id.0));
        Ok(sk)
    }

    /// `recv()` / `read()` (`tcp_recvmsg`): copies queued bytes into `buf`
    /// (from as many skbs as needed) and frees each consumed skb. `Ok(0)`
    /// at end of stream; `EAGAIN` when nothing is queued yet.
    pub fn tcp_recv(&mut self, now: Instant, id: SockId, buf: &mut [u8]) -> Result<usize, Errno> {
        self.tcp_recv_flags(now, id, buf, false)
    }

    /// `recv(MSG_PEEK)` when `peek`.
    pub fn tcp_recv_flags(
        &mut self,
        now: Instant,
        id: SockId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<usize, Errno> {
        self.set_now(now);
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let r = self.tcp_recvmsg(&mut sk, buf, peek);
        self.tcp_sock_done(sk);
        r
    }

    fn tcp_recvmsg(
        &mut self,
        sk: &mut super::sock::TcpSock,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<usize, Errno> {
        if sk.orphan || sk.parent.is_some() {
            return Err(Errno::EBADF);
        }
        if sk.state == TcpState::Listen {
            return Err(Errno::ENOTCONN);
        }
        let mut copied = 0usize;
        // Where the read is (`*seq`: copied_seq, or the peek position).
        let mut seq = sk.copied_seq;
        let mut skip = 0usize;
        let mut i = 0usize;
        let mut consumed = false;
        while copied < buf.len() {
            // At the urgent mark: stop if something was read.
            if copied > 0 && sk.urg_data.is_set() && sk.urg_seq == seq {
                break;
            }
            let Some(skb) = sk.rcv_queue.get(i) else {
                break;
            };
            let avail = &skb.data()[skip.min(skb.len())..];
            // The urgent byte out of band is stepped over; the read stops
            // before a mark further on.
            let (hole, n) = super::urg::urg_cut(sk, seq, avail.len().min(buf.len() - copied));
            // Copy into the application's buffer.
            buf[copied..copied + n].copy_from_slice(&avail[hole..hole + n]);
            copied += n;
            let took = hole + n;
            seq += took as u32;
            if peek {
                if took == avail.len() {
                    i += 1;
                    skip = 0;
                } else {
                    skip += took;
                }
                continue;
            }
            if took == avail.len() {
                // Dequeue and free the skb.
                if let Some(skb) = sk.rcv_queue.pop_front() {
                    self.tracer.skb(self.now, "tcp_recvmsg", &skb);
                    self.consume_skb(skb);
                }
            } else if let Some(front) = sk.rcv_queue.front_mut() {
                let _ = front.pull(took);
            }
            sk.rcv_queued = sk.rcv_queued.saturating_sub(took);
            sk.copied_seq = seq;
            consumed = true;
            // Past the mark: the urgent data is behind us.
            if sk.urg_data.is_set() && sk.copied_seq.after(sk.urg_seq) {
                sk.urg_data = super::urg::UrgData::None;
            }
        }
        if consumed {
            self.tcp_rcv_space_adjust(sk);
        }
        if copied > 0 {
            if !peek {
                self.tcp_cleanup_rbuf(sk, copied);
            }
            return Ok(copied);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(e) = sk.err.take() {
            return Err(e);
        }
        if sk.shutdown.rcv || sk.fin_received {
            return Ok(0);
        }
        match sk.state {
            TcpState::Closed => {
                if sk.hashed || sk.local.1 != 0 && sk.remote.1 != 0 {
                    Ok(0)
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
            _ => Err(Errno::EAGAIN),
        }
    }

    /// `tcp_cleanup_rbuf()`: after a read, send the ACK the input path
    /// delayed when it is owed: more than one full segment is unacknowledged
    /// (the window had shrunk, so `__tcp_ack_snd_check` held it back), or
    /// the read drained a short pushed segment; else announce a window
    /// that grew a lot (at least doubled) at once.
    pub(crate) fn tcp_cleanup_rbuf(&mut self, sk: &mut super::sock::TcpSock, copied: usize) {
        if !sk.state.synchronized() || sk.state == TcpState::TimeWait {
            return;
        }
        use super::sock::{ACK_PUSHED, ACK_PUSHED2};
        let mut time_to_ack = false;
        if sk.ack_pending {
            let pushed = sk.ack_pushed & ACK_PUSHED2 != 0
                || (sk.ack_pushed & ACK_PUSHED != 0 && !sk.pingpong);
            time_to_ack = sk.rcv_nxt.0.wrapping_sub(sk.rcv_wup.0) > sk.rcv_mss
                || (copied > 0 && pushed && sk.rcv_queue.is_empty());
        }
        // A window-open ACK is useless once the peer has finished.
        if copied > 0 && !time_to_ack && !sk.shutdown.rcv {
            let now_win = sk.receive_window();
            if 2 * now_win <= sk.window_clamp {
                let (new, _) = Self::tcp_new_window(sk);
                time_to_ack = new > 0 && new >= 2 * now_win;
            }
        }
        if time_to_ack {
            self.tcp_send_ack(sk);
        }
    }

    /// `tcp_rcv_space_adjust()`: receive buffer autotuning — once per
    /// receiver RTT, make the buffer hold twice what the application read
    /// in that RTT (up to `tcp_rmem[2]`).
    pub(crate) fn tcp_rcv_space_adjust(&mut self, sk: &mut super::sock::TcpSock) {
        let rtt = sk
            .rcv_rtt
            .or(sk.rtt.srtt())
            .unwrap_or(Duration::from_millis(1));
        if self.now.saturating_since(sk.rcvq_space_time) < rtt {
            return;
        }
        let copied = sk.copied_seq.0.wrapping_sub(sk.rcvq_space_seq.0);
        if copied > sk.rcvq_space {
            if self.tcp.settings.moderate_rcvbuf && !sk.rcvbuf_locked {
                let rcvwin = 2 * copied as usize + 16 * usize::from(sk.advmss);
                let want = (2 * rcvwin).min(self.tcp.settings.rmem[2]);
                if want > sk.rcvbuf {
                    sk.rcvbuf = want;
                    let clamp = (want / 2) as u32;
                    sk.window_clamp = sk.window_clamp.max(clamp.min(65535u32 << sk.rcv_wscale));
                }
            }
            sk.rcvq_space = copied;
        }
        sk.rcvq_space_seq = sk.copied_seq;
        sk.rcvq_space_time = self.now;
    }

    /// `shutdown()`.
    pub fn tcp_shutdown(&mut self, now: Instant, id: SockId, how: Shutdown) -> Result<(), Errno> {
        self.set_now(now);
        let st = self.tcp_user(id)?.state;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let rd = matches!(how, Shutdown::Read | Shutdown::Both);
        let wr = matches!(how, Shutdown::Write | Shutdown::Both);
        // inet_shutdown()
        let r = match st {
            TcpState::Closed => {
                sk.shutdown.rcv |= rd;
                sk.shutdown.snd |= wr;
                Err(Errno::ENOTCONN)
            }
            // A listener only stops for SHUT_RD; SYN_SENT disconnects.
            TcpState::Listen => {
                if rd {
                    self.tcp_close_listener(&mut sk);
                }
                Ok(())
            }
            TcpState::SynSent => {
                self.tcp_done(&mut sk);
                sk.connecting = false;
                Ok(())
            }
            _ => {
                sk.shutdown.rcv |= rd;
                if wr && !sk.shutdown.snd {
                    self.tcp_close_state_send_fin(&mut sk);
                }
                Ok(())
            }
        };
        // inet_shutdown() ends with sk_state_change.
        self.sk_wake(&mut sk, crate::sock::wait::WakeKey::StateChange);
        self.tcp_sock_done(sk);
        r
    }

    /// `tcp_close_state()` + `tcp_send_fin()`.
    fn tcp_close_state_send_fin(&mut self, sk: &mut super::sock::TcpSock) {
        let next = match sk.state {
            TcpState::Established | TcpState::SynRecv => TcpState::FinWait1,
            TcpState::CloseWait => TcpState::LastAck,
            _ => return,
        };
        sk.shutdown.snd = true;
        self.tcp_set_state(sk, next);
        self.tcp_send_fin(sk);
    }

    /// Closes a listener: unaccepted established children are reset,
    /// requests dropped.
    fn tcp_close_listener(&mut self, sk: &mut super::sock::TcpSock) {
        let Some(l) = sk.listen.take() else { return };
        self.tcp.hash.unlisten(sk.id);
        for child in l.children {
            if let Some(mut c) = self.tcp.take(child) {
                if c.state != TcpState::SynRecv || c.fo.passive_child {
                    self.tcp_send_active_reset(&mut c);
                    self.tcp.ext.tcp_abort_on_close += 1;
                }
                c.parent = None;
                c.orphan = true;
                self.tcp_done(&mut c);
                self.tcp_sock_done(c);
            }
        }
        self.tcp_set_state(sk, TcpState::Closed);
    }

    /// `close()`: the handle is gone; the connection finishes on its own
    /// (FIN, FIN_WAIT, TIME-WAIT) or is reset when unread data is left or
    /// `SO_LINGER` is 0.
    pub fn tcp_close(&mut self, now: Instant, id: SockId) -> Result<(), Errno> {
        self.set_now(now);
        self.tcp_user(id)?;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        sk.orphan = true;
        sk.shutdown.rcv = true;
        self.tracer
            .event_detail(self.now, "tcp_close", None, u64::from(id.0));
        match sk.state {
            TcpState::Listen => {
                self.tcp_close_listener(&mut sk);
            }
            TcpState::Closed | TcpState::SynSent => {
                self.tcp_done(&mut sk);
            }
            _ => {
                let unread = sk.rcv_queued > 0;
                let linger0 = sk.linger == Some(Duration::ZERO);
                if unread || linger0 {
                    if unread {
                        self.tcp.ext.tcp_abort_on_close += 1;
                    } else {
                        self.tcp.ext.tcp_abort_on_data += 1;
                    }
                    if sk.state != TcpState::TimeWait {
                        self.tcp_send_active_reset(&mut sk);
                    }
                    self.tcp_done(&mut sk);
                } else {
                    self.tcp_close_state_send_fin(&mut sk);
                    if sk.state == TcpState::FinWait2 {
                        sk.keepalive_timer = Some(self.now + self.tcp.settings.fin_timeout);
                    }
                }
            }
        }
        self.tcp_sock_done(sk);
        Ok(())
    }

    /// `poll()`.
    pub fn tcp_poll(&self, id: SockId) -> PollEvents {
        let Some(sk) = self.tcp.get(id) else {
            return PollEvents {
                err: true,
                hup: true,
                ..PollEvents::default()
            };
        };
        let mut ev = PollEvents::default();
        if let Some(l) = &sk.listen {
            ev.readable = !l.accept_queue.is_empty();
            return ev;
        }
        let closed = sk.state == TcpState::Closed;
        // A pending error, or something on the error queue.
        ev.err = sk.err.is_some() || !sk.errq.is_empty();
        ev.rdhup = sk.fin_received || sk.shutdown.rcv;
        ev.hup = closed && (sk.hashed || sk.connecting || sk.err.is_some() || sk.fin_received)
            || (sk.shutdown.rcv && sk.shutdown.snd);
        // The urgent byte at the read head, out of band, does not make the
        // socket readable on its own.
        let target = 1 + usize::from(super::urg::at_oob_mark(sk));
        ev.readable = sk.rcv_queued >= target || ev.rdhup || ev.hup || sk.err.is_some();
        ev.pri = matches!(sk.urg_data, super::urg::UrgData::Valid(_));
        ev.writable = sk.state.can_send() && !sk.shutdown.snd && self.sk_stream_is_writeable(sk, 1);
        if closed && sk.connecting {
            ev.writable = true;
        }
        // A deferred Fast Open connect is writable: the write sends the SYN.
        if sk.state == TcpState::SynSent && sk.fo.defer_connect {
            ev.writable = true;
        }
        ev
    }

    /// The socket's state (`ss`), `None` for an unknown handle.
    pub fn tcp_state(&self, id: SockId) -> Option<TcpState> {
        self.tcp.get(id).map(|s| s.state)
    }

    /// `getsockname()`.
    pub fn tcp_local_addr(&self, id: SockId) -> Result<(Ipv4Addr, u16), Errno> {
        Ok(self.tcp_user(id)?.local)
    }

    /// `getpeername()`: `ENOTCONN` unless connected.
    pub fn tcp_peer_addr(&self, id: SockId) -> Result<(Ipv4Addr, u16), Errno> {
        let sk = self.tcp_user(id)?;
        if !sk.state.synchronized() || sk.state == TcpState::Closed {
            return Err(Errno::ENOTCONN);
        }
        Ok(sk.remote)
    }

    /// `getsockopt(SO_ERROR)`: the pending error, cleared.
    pub fn tcp_take_error(&mut self, id: SockId) -> Result<Option<Errno>, Errno> {
        let sk = self.tcp_user_mut(id)?;
        Ok(sk.err.take().or_else(|| sk.err_soft.take()))
    }

    /// `ioctl(SIOCINQ)`: bytes readable.
    pub fn tcp_inq(&self, id: SockId) -> Result<usize, Errno> {
        let sk = self.tcp_user(id)?;
        if sk.state == TcpState::Listen {
            return Err(Errno::EINVAL);
        }
        Ok(sk.rcv_queued)
    }

    /// `ioctl(SIOCOUTQ)`: bytes not yet acknowledged.
    pub fn tcp_outq(&self, id: SockId) -> Result<usize, Errno> {
        let sk = self.tcp_user(id)?;
        if sk.state == TcpState::Listen {
            return Err(Errno::EINVAL);
        }
        Ok(sk.write_seq.0.wrapping_sub(sk.snd_una.0) as usize)
    }

    /// `ioctl(SIOCOUTQNSD)`: bytes not yet sent.
    pub fn tcp_outq_notsent(&self, id: SockId) -> Result<usize, Errno> {
        Ok(self.tcp_user(id)?.notsent_bytes() as usize)
    }

    /// `setsockopt()`.
    pub fn tcp_setsockopt(&mut self, id: SockId, opt: TcpOpt) -> Result<(), Errno> {
        let wmem_max = self.tcp.settings.wmem_max;
        let rmem_max = self.tcp.settings.rmem_max;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let r = (|| {
            if sk.orphan || sk.parent.is_some() {
                return Err(Errno::EBADF);
            }
            match opt {
                TcpOpt::NoDelay(on) => {
                    sk.nodelay = on;
                    if on {
                        self.tcp_write_xmit(&mut sk, Nonagle::Push);
                    }
                }
                TcpOpt::Cork(on) => {
                    sk.cork = on;
                    if !on {
                        self.tcp_write_xmit(&mut sk, Nonagle::Push);
                    }
                }
                TcpOpt::MaxSeg(m) => {
                    if m != 0 && !(88..=32767).contains(&m) {
                        return Err(Errno::EINVAL);
                    }
                    sk.user_mss = m;
                }
                TcpOpt::KeepAlive(on) => {
                    sk.keepalive = on;
                    if on {
                        self.tcp_reset_keepalive(&mut sk);
                    } else {
                        sk.keepalive_timer = None;
                    }
                }
                TcpOpt::KeepIdle(s) => {
                    if !(1..=32767).contains(&s) {
                        return Err(Errno::EINVAL);
                    }
                    sk.keepidle = Some(Duration::from_secs(u64::from(s)));
                    if sk.keepalive {
                        self.tcp_reset_keepalive(&mut sk);
                    }
                }
                TcpOpt::KeepIntvl(s) => {
                    if !(1..=32767).contains(&s) {
                        return Err(Errno::EINVAL);
                    }
                    sk.keepintvl = Some(Duration::from_secs(u64::from(s)));
                }
                TcpOpt::KeepCnt(n) => {
                    if !(1..=127).contains(&n) {
                        return Err(Errno::EINVAL);
                    }
                    sk.keepcnt = Some(n);
                }
                TcpOpt::UserTimeout(ms) => {
                    sk.user_timeout = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
                }
                TcpOpt::Linger(l) => sk.linger = l.map(|s| Duration::from_secs(u64::from(s))),
                TcpOpt::RcvBuf(n) => {
                    sk.rcvbuf = n.min(rmem_max).saturating_mul(2).max(MIN_RCVBUF);
                    sk.rcvbuf_locked = true;
                }
                TcpOpt::SndBuf(n) => {
                    sk.sndbuf = n.min(wmem_max).saturating_mul(2).max(MIN_SNDBUF);
                    sk.sndbuf_locked = true;
                    self.sk_stream_write_space(&mut sk);
                }
                TcpOpt::ReuseAddr(on) => sk.bind_opts.reuseaddr = on,
                TcpOpt::ReusePort(on) => sk.bind_opts.reuseport = on,
                TcpOpt::BindToDevice(d) => {
                    sk.bind_opts.bound_dev = d;
                    sk.ip_opts.oif = d;
                }
                TcpOpt::Congestion(name) => {
                    let mut ca = super::cong::by_name(&name).ok_or(Errno::ENOENT)?;
                    if sk.state.synchronized() {
                        ca.init(&mut sk.cc);
                    }
                    sk.ca = ca;
                }
                TcpOpt::Inq(on) => sk.recvmsg_inq = on,
                TcpOpt::ZeroCopy(on) => sk.zerocopy = on,
                TcpOpt::OobInline(on) => sk.urg_inline = on,
                TcpOpt::FreeBind(on) => sk.freebind = on,
                TcpOpt::SynCnt(n) => {
                    if !(1..=127).contains(&n) {
                        return Err(Errno::EINVAL);
                    }
                    sk.syn_retries = Some(n);
                }
                TcpOpt::FastOpen(qlen) => {
                    if !matches!(sk.state, TcpState::Closed | TcpState::Listen) {
                        return Err(Errno::EINVAL);
                    }
                    sk.fo.max_qlen = qlen.min(self.tcp.settings.somaxconn);
                }
                TcpOpt::FastOpenConnect(on) => {
                    if self.tcp.settings.fastopen & super::fastopen::TFO_CLIENT_ENABLE == 0 {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if sk.state != TcpState::Closed {
                        return Err(Errno::EINVAL);
                    }
                    sk.fo.connect = on;
                }
                TcpOpt::FastOpenNoCookie(on) => {
                    if !matches!(sk.state, TcpState::Closed | TcpState::Listen) {
                        return Err(Errno::EINVAL);
                    }
                    sk.fo.no_cookie = on;
                }
                TcpOpt::FastOpenKey(bytes) => {
                    let keys = super::fastopen::FastOpenKeys::from_bytes(&bytes)
                        .map_err(|_| Errno::EINVAL)?;
                    sk.fo.keys = Some(keys);
                }
                TcpOpt::NotSentLowat(v) => {
                    sk.notsent_lowat = (v != 0).then_some(v);
                    self.sk_stream_write_space(&mut sk);
                }
                TcpOpt::Ttl(t) => {
                    if t == 0 {
                        return Err(Errno::EINVAL);
                    }
                    sk.ip_opts.ttl = Some(t);
                }
                TcpOpt::Tos(t) => sk.ip_opts.tos = t,
                TcpOpt::MtuDiscover(m) => sk.ip_opts.pmtudisc = m,
                TcpOpt::Mark(m) => sk.ip_opts.mark = m,
                TcpOpt::Priority(p) => sk.ip_opts.priority = p,
                TcpOpt::Timestamping(v) => Self::sock_set_timestamping(&mut sk, v)?,
            }
            Ok(())
        })();
        self.tcp_sock_done(sk);
        r
    }

    /// `getsockopt()`: pass the option with any value; it comes back with
    /// the socket's.
    pub fn tcp_getsockopt(&self, id: SockId, opt: TcpOpt) -> Result<TcpOpt, Errno> {
        let sk = self.tcp_user(id)?;
        let st = &self.tcp.settings;
        Ok(match opt {
            TcpOpt::NoDelay(_) => TcpOpt::NoDelay(sk.nodelay),
            TcpOpt::Cork(_) => TcpOpt::Cork(sk.cork),
            TcpOpt::MaxSeg(_) => TcpOpt::MaxSeg(if sk.state.synchronized() {
                sk.mss_cache as u16
            } else if sk.user_mss > 0 {
                sk.user_mss
            } else {
                536
            }),
            TcpOpt::KeepAlive(_) => TcpOpt::KeepAlive(sk.keepalive),
            TcpOpt::KeepIdle(_) => {
                TcpOpt::KeepIdle((sk.keepalive_time(st).as_millis() / 1000) as u32)
            }
            TcpOpt::KeepIntvl(_) => {
                TcpOpt::KeepIntvl((sk.keepalive_intvl(st).as_millis() / 1000) as u32)
            }
            TcpOpt::KeepCnt(_) => TcpOpt::KeepCnt(sk.keepalive_probes(st)),
            TcpOpt::UserTimeout(_) => {
                TcpOpt::UserTimeout(sk.user_timeout.map_or(0, |d| d.as_millis() as u32))
            }
            TcpOpt::Linger(_) => TcpOpt::Linger(sk.linger.map(|d| (d.as_millis() / 1000) as u32)),
            TcpOpt::RcvBuf(_) => TcpOpt::RcvBuf(sk.rcvbuf),
            TcpOpt::SndBuf(_) => TcpOpt::SndBuf(sk.sndbuf),
            TcpOpt::ReuseAddr(_) => TcpOpt::ReuseAddr(sk.bind_opts.reuseaddr),
            TcpOpt::ReusePort(_) => TcpOpt::ReusePort(sk.bind_opts.reuseport),
            TcpOpt::BindToDevice(_) => TcpOpt::BindToDevice(sk.bind_opts.bound_dev),
            TcpOpt::Congestion(_) => TcpOpt::Congestion(sk.ca.name().to_string()),
            TcpOpt::NotSentLowat(_) => TcpOpt::NotSentLowat(sk.notsent_lowat.unwrap_or(0)),
            TcpOpt::Inq(_) => TcpOpt::Inq(sk.recvmsg_inq),
            TcpOpt::ZeroCopy(_) => TcpOpt::ZeroCopy(sk.zerocopy),
            TcpOpt::OobInline(_) => TcpOpt::OobInline(sk.urg_inline),
            TcpOpt::FreeBind(_) => TcpOpt::FreeBind(sk.freebind),
            TcpOpt::SynCnt(_) => TcpOpt::SynCnt(sk.syn_retries.unwrap_or(st.syn_retries)),
            TcpOpt::FastOpen(_) => TcpOpt::FastOpen(sk.fo.max_qlen),
            TcpOpt::FastOpenConnect(_) => TcpOpt::FastOpenConnect(sk.fo.connect),
            TcpOpt::FastOpenNoCookie(_) => TcpOpt::FastOpenNoCookie(sk.fo.no_cookie),
            TcpOpt::FastOpenKey(_) => {
                let k = sk
                    .fo
                    .keys
                    .unwrap_or_else(|| self.tcp_fastopen_keys_default());
                TcpOpt::FastOpenKey(k.keys().concat())
            }
            TcpOpt::Ttl(_) => TcpOpt::Ttl(sk.ip_opts.ttl.unwrap_or(self.ip.sysctl.ip_default_ttl)),
            TcpOpt::Tos(_) => TcpOpt::Tos(sk.ip_opts.tos),
            TcpOpt::MtuDiscover(_) => TcpOpt::MtuDiscover(sk.ip_opts.pmtudisc),
            TcpOpt::Mark(_) => TcpOpt::Mark(sk.ip_opts.mark),
            TcpOpt::Priority(_) => TcpOpt::Priority(sk.ip_opts.priority),
            TcpOpt::Timestamping(_) => TcpOpt::Timestamping(sk.tsflags),
        })
    }

    /// Live TCP sockets (`ss -t -a`): (id, state, local, remote).
    pub fn tcp_sockets(&self) -> Vec<SocketSummary> {
        self.tcp
            .iter()
            .map(|s| (s.id, s.state, s.local, s.remote))
            .collect()
    }

    /// How many sockets the table holds (TIME-WAIT and orphans included).
    pub fn tcp_socket_count(&self) -> usize {
        self.tcp.live
    }

    /// Sets the bind options (SO_REUSEADDR / SO_REUSEPORT / device) before
    /// `bind()` (convenience for [`Stack::tcp_setsockopt`]).
    pub fn tcp_set_bind_opts(&mut self, id: SockId, opts: BindOpts) -> Result<(), Errno> {
        self.tcp_user_mut(id)?.bind_opts = opts;
        Ok(())
    }
}

/// `fresh_seg` marks the FIN/PSH flags of write-queue segments.
#[allow(dead_code)]
const _FLAGS: (u8, u8) = (SEG_FIN, SEG_PSH);
