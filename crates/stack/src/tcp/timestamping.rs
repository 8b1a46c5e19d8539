//! `SO_TIMESTAMPING` transmit timestamps for TCP
//! (`Documentation/networking/timestamping.rst` §1.3, §1.4 "Bytestream
//! Timestamps"). Mirrors:
//! - `sock_set_timestamping()` (`net/core/sock.c`): the flags, the
//!   combinations refused with `EINVAL`, and the base of the `OPT_ID` keys
//!   (`sk_tskey`: `snd_una`, or `write_seq` with `OPT_ID_TCP`, taken when
//!   `OPT_ID` is switched on);
//! - `tcp_tx_timestamp()` (`net/ipv4/tcp.c`): a write asks for timestamps of
//!   its last byte (`tskey`); a later write that fills the same skb takes
//!   the request over (the key moves to its last byte, the flags add up);
//! - `SCM_TSTAMP_SCHED` in `__dev_queue_xmit()` and `SCM_TSTAMP_SND` in the
//!   drivers' `skb_tx_timestamp()`, with `tcp_gso_tstamp()` (the segment of
//!   a GSO skb holding the key reports): see [`super::tstamp_dev`];
//! - `tcp_ack_tstamp()` (`net/ipv4/tcp_input.c`): `SCM_TSTAMP_ACK` when the
//!   segment holding the key is cumulatively acknowledged, if the key was
//!   not yet acknowledged before that ACK (SACK is ignored);
//! - `__skb_tstamp_tx()` / `__skb_complete_tx_timestamp()`
//!   (`net/core/skbuff.c`): the report — `ee_errno` `ENOMSG`, origin
//!   `SO_EE_ORIGIN_TIMESTAMPING`, `ee_info` the type, `ee_data` the key
//!   minus `sk_tskey` with `OPT_ID` (else 0) — with a clone of the packet
//!   unless `OPT_TSONLY`, stamped with the stack's time (`self.now`), into
//!   the error queue ([`super::errqueue`]).
//!
//! Design. Linux keeps a request in the skb holding the byte
//! (`skb_shinfo(skb)->tx_flags`, `tskey`, `TCP_SKB_CB(skb)->txstamp_ack`)
//! and moves it along whenever TCP splits, merges or segments that skb. In
//! netpath the queues hold one `TxSeg` per MSS, GSO runs are built from
//! several, and below TCP the skb is cut again in places (software GSO in
//! `validate_xmit_skb`, tbf, `ip_finish_output_gso`, IPIP), where segments
//! take fresh ids; an [`crate::skb::Skb`] has no room left for the request
//! (128 bytes). So a request is kept per socket by sequence number, in a
//! list per stack ([`TsMark`]: the connection's four-tuple, the key, the
//! flags), and the device hooks recognise the marked byte in an outgoing
//! packet by its headers: the IPv4 TCP packet of that flow whose payload
//! covers the key reports it, whether it is one segment, a whole GSO skb
//! (as Linux's `__dev_queue_xmit` sees it, and a TSO driver) or the
//! segment of one cut below TCP (as `tcp_gso_tstamp` leaves the flags).
//! Splitting and merging `TxSeg`s then cannot lose a request. SCHED is
//! reported when the packet enters `dev_queue_xmit`, SND when a driver
//! takes it, so a qdisc's delay shows between the two as on Linux (both
//! from TCP at transmit time would hide it, and would report a packet that
//! waits for ARP too early). The lists are empty unless a socket asked,
//! and then cost one check per packet.
//!
//! Retransmissions: Linux's transmit clones share the shared info where the
//! flags live, and nothing clears them after a report, so every
//! transmission of the skb holding the key (RTO, fast retransmit, loss
//! probe) reports SCHED and SND again; so does netpath. ACK is reported
//! once, and the request ends there (or when the socket goes).
//!
//! Reports made while their socket is out of the table (the device hooks
//! run inside its own transmit) wait in [`TxTstamps`] and join its error
//! queue, in order, before anything else is queued there and when TCP puts
//! the socket back ([`Stack::tcp_tstamp_flush`]).
//!
//! Not modelled: hardware timestamps (no PHC: `TX_HARDWARE` asks and
//! nothing reports, `BIND_PHC` fails as on a device without PTP clocks),
//! `TX_COMPLETION`, the `OPT_STATS` and `OPT_CMSG` control messages,
//! `SO_TIMESTAMPING` control messages on `sendmsg`, and
//! `net.core.tstamp_allow_data` (1). Fast Open SYN data is not timestamped
//! (nor is it by Linux). A write whose last byte was already sent before
//! the call ends is still marked, on the retransmit queue, as the upstream
//! fix after Linux 6.18 does ("tcp: tcp_tx_timestamp() must look at the
//! rtx queue"; 6.18 dropped that request).

use netpath_wire::tcp::TcpSeqNumber;

use super::errqueue::{SockExtendedErr, ENOMSG, SO_EE_ORIGIN_TIMESTAMPING};
use super::sock::{TcpSock, TcpState};
use crate::skb::Skb;
use crate::sock::table::FourTuple;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Instant;

/// `SOF_TIMESTAMPING_*` (`include/uapi/linux/net_tstamp.h`).
pub const SOF_TIMESTAMPING_TX_HARDWARE: u32 = 1 << 0;
pub const SOF_TIMESTAMPING_TX_SOFTWARE: u32 = 1 << 1;
pub const SOF_TIMESTAMPING_RX_HARDWARE: u32 = 1 << 2;
pub const SOF_TIMESTAMPING_RX_SOFTWARE: u32 = 1 << 3;
pub const SOF_TIMESTAMPING_SOFTWARE: u32 = 1 << 4;
pub const SOF_TIMESTAMPING_SYS_HARDWARE: u32 = 1 << 5;
pub const SOF_TIMESTAMPING_RAW_HARDWARE: u32 = 1 << 6;
pub const SOF_TIMESTAMPING_OPT_ID: u32 = 1 << 7;
pub const SOF_TIMESTAMPING_TX_SCHED: u32 = 1 << 8;
pub const SOF_TIMESTAMPING_TX_ACK: u32 = 1 << 9;
pub const SOF_TIMESTAMPING_OPT_CMSG: u32 = 1 << 10;
pub const SOF_TIMESTAMPING_OPT_TSONLY: u32 = 1 << 11;
pub const SOF_TIMESTAMPING_OPT_STATS: u32 = 1 << 12;
pub const SOF_TIMESTAMPING_OPT_PKTINFO: u32 = 1 << 13;
pub const SOF_TIMESTAMPING_OPT_TX_SWHW: u32 = 1 << 14;
pub const SOF_TIMESTAMPING_BIND_PHC: u32 = 1 << 15;
pub const SOF_TIMESTAMPING_OPT_ID_TCP: u32 = 1 << 16;
pub const SOF_TIMESTAMPING_OPT_RX_FILTER: u32 = 1 << 17;
pub const SOF_TIMESTAMPING_TX_COMPLETION: u32 = 1 << 18;
/// Every defined flag (`SOF_TIMESTAMPING_MASK`).
pub const SOF_TIMESTAMPING_MASK: u32 = (SOF_TIMESTAMPING_TX_COMPLETION << 1) - 1;
/// The flags that ask for transmit timestamps (`..._TX_RECORD_MASK`).
pub const SOF_TIMESTAMPING_TX_RECORD_MASK: u32 = SOF_TIMESTAMPING_TX_HARDWARE
    | SOF_TIMESTAMPING_TX_SOFTWARE
    | SOF_TIMESTAMPING_TX_SCHED
    | SOF_TIMESTAMPING_TX_ACK
    | SOF_TIMESTAMPING_TX_COMPLETION;

/// `ee_info` of a report (`SCM_TSTAMP_*`, `include/uapi/linux/errqueue.h`):
/// the driver took the packet.
pub const SCM_TSTAMP_SND: u32 = 0;
/// The packet entered the packet scheduler (`dev_queue_xmit`).
pub const SCM_TSTAMP_SCHED: u32 = 1;
/// The peer acknowledged the byte.
pub const SCM_TSTAMP_ACK: u32 = 2;

/// A timestamp request: the last byte of a write and what was asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TsMark {
    pub sock: SockId,
    /// The connection, as its packets carry it (source = local).
    pub tuple: FourTuple,
    /// `tskey`: the byte's sequence number.
    pub key: TcpSeqNumber,
    /// `SKBTX_SCHED_TSTAMP`.
    pub sched: bool,
    /// `SKBTX_SW_TSTAMP`.
    pub sw: bool,
    /// `txstamp_ack`.
    pub ack: bool,
}

impl TsMark {
    /// Whether the mark asks for reports of this type.
    pub(crate) fn wants(&self, tstype: u32) -> bool {
        match tstype {
            SCM_TSTAMP_SCHED => self.sched,
            SCM_TSTAMP_SND => self.sw,
            SCM_TSTAMP_ACK => self.ack,
            _ => false,
        }
    }
}

/// A report waiting for its socket to come back to the table.
#[derive(Debug)]
struct Undelivered {
    sock: SockId,
    tstype: u32,
    key: TcpSeqNumber,
    time: Instant,
    skb: Skb,
}

/// The stack's timestamp requests and undelivered reports.
#[derive(Debug, Default)]
pub(crate) struct TxTstamps {
    /// Requests not yet acknowledged, every socket's, oldest first.
    pub(crate) marks: Vec<TsMark>,
    undelivered: Vec<Undelivered>,
}

impl TxTstamps {
    /// Whether the socket has a request on a byte in `[seq, end)`.
    pub(crate) fn holds_key(&self, sock: SockId, seq: TcpSeqNumber, end: TcpSeqNumber) -> bool {
        self.marks
            .iter()
            .any(|m| m.sock == sock && !m.key.before(seq) && m.key.before(end))
    }

    /// The socket is gone: its requests and reports with it.
    pub(crate) fn forget(&mut self, sock: SockId) {
        self.marks.retain(|m| m.sock != sock);
        self.undelivered.retain(|u| u.sock != sock);
    }
}

impl Stack {
    /// `setsockopt(SO_TIMESTAMPING)` (`sock_set_timestamping`).
    pub(crate) fn sock_set_timestamping(sk: &mut TcpSock, val: u32) -> Result<(), Errno> {
        if val & !SOF_TIMESTAMPING_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        if val & SOF_TIMESTAMPING_OPT_ID_TCP != 0 && val & SOF_TIMESTAMPING_OPT_ID == 0 {
            return Err(Errno::EINVAL);
        }
        if val & SOF_TIMESTAMPING_RX_SOFTWARE != 0 && val & SOF_TIMESTAMPING_OPT_RX_FILTER != 0 {
            return Err(Errno::EINVAL);
        }
        if val & SOF_TIMESTAMPING_OPT_ID != 0 && sk.tsflags & SOF_TIMESTAMPING_OPT_ID == 0 {
            if matches!(sk.state, TcpState::Closed | TcpState::Listen) {
                return Err(Errno::EINVAL);
            }
            // As Linux, the base is set here, even if a check below fails.
            sk.tskey = if val & SOF_TIMESTAMPING_OPT_ID_TCP != 0 {
                sk.write_seq.0
            } else {
                sk.snd_una.0
            };
        }
        if val & SOF_TIMESTAMPING_OPT_STATS != 0 && val & SOF_TIMESTAMPING_OPT_TSONLY == 0 {
            return Err(Errno::EINVAL);
        }
        if val & SOF_TIMESTAMPING_BIND_PHC != 0 {
            // sock_timestamping_bind_phc: a device is needed, and no
            // device here has PTP virtual clocks.
            return Err(if sk.bind_opts.bound_dev.is_none() {
                Errno::EOPNOTSUPP
            } else {
                Errno::EINVAL
            });
        }
        sk.tsflags = val;
        Ok(())
    }

    /// `tcp_tx_timestamp()`, at the end of a write that queued data, before
    /// it is pushed: the write's last byte gets the socket's requests.
    pub(crate) fn tcp_tx_timestamp(&mut self, sk: &mut TcpSock) {
        let f = sk.tsflags;
        let mut mark = TsMark {
            sock: sk.id,
            tuple: sk.tuple(),
            key: sk.write_seq - 1,
            sched: f & SOF_TIMESTAMPING_TX_SCHED != 0,
            sw: f & SOF_TIMESTAMPING_TX_SOFTWARE != 0,
            ack: f & SOF_TIMESTAMPING_TX_ACK != 0,
        };
        if !(mark.sched || mark.sw || mark.ack) {
            return;
        }
        if sk.write_queue.is_empty() && sk.rtx_queue.is_empty() {
            return;
        }
        if !sk.write_queue.is_empty() {
            // The tail skb (unsent) holds one request: an earlier write's
            // in it is taken over (tskey overwritten, flags or-ed).
            let start = if sk.vskb_start.after(sk.snd_nxt) && !sk.vskb_start.after(sk.write_seq) {
                sk.vskb_start
            } else {
                sk.snd_nxt
            };
            self.tcp.tstamps.marks.retain(|m| {
                let same = m.sock == mark.sock && !m.key.before(start);
                if same {
                    mark.sched |= m.sched;
                    mark.sw |= m.sw;
                    mark.ack |= m.ack;
                }
                !same
            });
        }
        self.tcp.tstamps.marks.push(mark);
    }

    /// `__skb_tstamp_tx()` for the socket `sock` (by id: it may be out of
    /// the table, then the report waits).
    pub(crate) fn tstamp_report(&mut self, sock: SockId, tstype: u32, key: TcpSeqNumber, skb: Skb) {
        let time = self.now;
        match self.tcp.take(sock) {
            Some(mut sk) => {
                self.tcp_tstamp_complete(&mut sk, tstype, key, time, skb);
                self.tcp.put(sk);
            }
            None => self.tcp.tstamps.undelivered.push(Undelivered {
                sock,
                tstype,
                key,
                time,
                skb,
            }),
        }
    }

    /// The reports that waited for `sk` join its error queue.
    pub(crate) fn tcp_tstamp_flush(&mut self, sk: &mut TcpSock) {
        if !self.tcp.tstamps.undelivered.iter().any(|u| u.sock == sk.id) {
            return;
        }
        let all = std::mem::take(&mut self.tcp.tstamps.undelivered);
        let (mine, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|u| u.sock == sk.id);
        self.tcp.tstamps.undelivered = rest;
        for u in mine {
            self.tcp_tstamp_queue(sk, u.tstype, u.key, u.time, u.skb);
        }
    }

    /// `__skb_complete_tx_timestamp()`, after what waited for the socket.
    fn tcp_tstamp_complete(
        &mut self,
        sk: &mut TcpSock,
        tstype: u32,
        key: TcpSeqNumber,
        time: Instant,
        skb: Skb,
    ) {
        self.tcp_tstamp_flush(sk);
        self.tcp_tstamp_queue(sk, tstype, key, time, skb);
    }

    fn tcp_tstamp_queue(
        &mut self,
        sk: &mut TcpSock,
        tstype: u32,
        key: TcpSeqNumber,
        time: Instant,
        skb: Skb,
    ) {
        let ee = SockExtendedErr {
            errno: ENOMSG,
            origin: SO_EE_ORIGIN_TIMESTAMPING,
            ty: 0,
            code: 0,
            info: tstype,
            data: if sk.tsflags & SOF_TIMESTAMPING_OPT_ID != 0 {
                key.0.wrapping_sub(sk.tskey)
            } else {
                0
            },
        };
        // OPT_TSONLY: an empty skb instead of the packet.
        let skb = (sk.tsflags & SOF_TIMESTAMPING_OPT_TSONLY == 0).then_some(skb);
        self.sock_queue_err_tstamp(sk, ee, time, skb);
    }

    /// `tcp_ack_tstamp()` for a segment the ACK up to `ack` freed
    /// (`sk.snd_una` is still the ACK's `prior_snd_una`): the requests on
    /// its bytes end, and those asking for it whose key this ACK
    /// acknowledged report `SCM_TSTAMP_ACK`.
    pub(crate) fn tcp_ack_tstamp(
        &mut self,
        sk: &mut TcpSock,
        seg_end: TcpSeqNumber,
        skb: &Skb,
        ack: TcpSeqNumber,
    ) {
        if self.tcp.tstamps.marks.is_empty() {
            return;
        }
        let prior = sk.snd_una;
        let mut done = Vec::new();
        self.tcp.tstamps.marks.retain(|m| {
            let acked = m.sock == sk.id && m.key.before(seg_end);
            if acked && m.ack && !m.key.before(prior) && m.key.before(ack) {
                done.push(m.key);
            }
            !acked
        });
        for key in done {
            self.tcp_tstamp_complete(sk, SCM_TSTAMP_ACK, key, self.now, skb.clone());
        }
    }
}
