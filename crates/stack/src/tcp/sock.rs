//! `struct tcp_sock` (`include/linux/tcp.h`) and the stack's TCP socket
//! table: the sockets (a slab of boxes, ids never reused), the
//! `inet_hashtables` lookup ([`crate::sock::table`]) and the timer heap
//! that `Stack::poll` reads.
//!
//! Seed stages: ingress step 11 ("find the application (the TCP socket)
//! this packet belongs to … put the packet on that socket's receive queue")
//! and egress step 1 (the write queue `tcp_sendmsg` fills).
//!
//! Queues, as Linux's since 4.15: `write_queue` holds segments not yet sent,
//! `rtx_queue` those sent and not yet acknowledged; each holds an skb of
//! payload only (at most one MSS, or a SYN/FIN with none). The receive side
//! has `rcv_queue` (in order, payload only) and the out-of-order queue.

use core::net::Ipv4Addr;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use netpath_wire::tcp::TcpSeqNumber;

use super::cong::{CcState, CongestionControl};
use super::ofo::OfoQueue;
use super::rtt::RttEstimator;
use super::{TcpExtMib, TcpMib, TcpSettings};
use crate::ipv4::output::IpSendOpts;
use crate::skb::Skb;
use crate::sock::table::{BindOpts, FourTuple, InetHashTables};
use crate::sock::{Errno, SockId};
use crate::time::{Duration, Instant};

/// The TCP states of RFC 9293 (Linux's `TCP_ESTABLISHED` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    /// The name `ss` prints (`ESTAB`, `SYN-SENT`, …) is derived from this
    /// Linux name.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSE",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// Linux's numbering (`tcpi_state`).
    pub fn linux_number(self) -> u8 {
        match self {
            TcpState::Established => 1,
            TcpState::SynSent => 2,
            TcpState::SynRecv => 3,
            TcpState::FinWait1 => 4,
            TcpState::FinWait2 => 5,
            TcpState::TimeWait => 6,
            TcpState::Closed => 7,
            TcpState::CloseWait => 8,
            TcpState::LastAck => 9,
            TcpState::Listen => 10,
            TcpState::Closing => 11,
        }
    }

    /// Data may be sent (`TCPF_ESTABLISHED | TCPF_CLOSE_WAIT`).
    pub fn can_send(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }

    /// A state with both sequence spaces known.
    pub fn synchronized(self) -> bool {
        !matches!(
            self,
            TcpState::Closed | TcpState::Listen | TcpState::SynSent
        )
    }
}

/// `TCPCB_*` flags of a queued segment.
pub(crate) const SEG_SYN: u8 = 1;
pub(crate) const SEG_FIN: u8 = 2;
pub(crate) const SEG_PSH: u8 = 4;
/// `TCP_SKB_CB(skb)->eor`: MSG_EOR ended a record here.
pub(crate) const SEG_EOR: u8 = 8;

/// One segment of the write or retransmit queue (`skb` + `tcp_skb_cb`).
#[derive(Debug)]
pub(crate) struct TxSeg {
    pub seq: TcpSeqNumber,
    /// `end_seq`: seq + payload + SYN + FIN.
    pub end_seq: TcpSeqNumber,
    /// Payload only.
    pub skb: Skb,
    pub flags: u8,
    /// Last transmission (`skb_mstamp`).
    pub sent: Instant,
    /// First transmission, for the retransmission deadline.
    pub first_sent: Instant,
    /// `TCPCB_SACKED_ACKED`.
    pub sacked: bool,
    /// `TCPCB_LOST`.
    pub lost: bool,
    /// `TCPCB_SACKED_RETRANS`: retransmitted and not yet known lost again.
    pub retrans: bool,
    /// `TCPCB_EVER_RETRANS`.
    pub ever_retrans: bool,
    /// `tx.delivered` at the time of sending (delivery-rate samples).
    pub delivered: u64,
    /// The GSO packet it was first sent in (`tcp_write_xmit` numbers
    /// them): consecutive lost segments of one packet are retransmitted
    /// as one skb, as Linux's are.
    pub gso: u32,
    /// It begins one of Linux's skbs, whose head `sk_wmem_queued` counts
    /// ([`super::wmem`]).
    pub head: bool,
}

/// `enum tcp_chrono`: what limits sending, timed for `tcp_info`
/// (`tcpi_busy_time`, `tcpi_rwnd_limited`, `tcpi_sndbuf_limited`). Higher
/// values take precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Chrono {
    Unspec = 0,
    Busy = 1,
    RwndLimited = 2,
    SndbufLimited = 3,
}

/// Shutdown bits (`sk_shutdown`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShutdownBits {
    pub rcv: bool,
    pub snd: bool,
}

/// What the socket's `icsk_timeout` timer is armed for (`icsk_pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XmitTimer {
    /// `ICSK_TIME_RETRANS` (also SYN and SYN-ACK retransmission).
    Retrans,
    /// `ICSK_TIME_LOSS_PROBE` (TLP).
    LossProbe,
    /// `ICSK_TIME_REO_TIMEOUT` (RACK reordering timer).
    ReoTimeout,
    /// `ICSK_TIME_PROBE0` (persist / zero window probe).
    Probe0,
}

/// A listener's queues (`struct request_sock_queue`).
#[derive(Debug, Default)]
pub(crate) struct ListenState {
    pub backlog: u32,
    /// Children in SYN_RECV (`qlen`).
    pub syn_queue: u32,
    /// Established children waiting for `accept()`.
    pub accept_queue: VecDeque<SockId>,
    /// Every child not yet accepted, for `close()` of the listener.
    pub children: Vec<SockId>,
}

/// `ICSK_ACK_PUSHED`: a short segment is waiting to be acknowledged.
pub(crate) const ACK_PUSHED: u8 = 1;
/// `ICSK_ACK_PUSHED2`: a second one.
pub(crate) const ACK_PUSHED2: u8 = 2;

/// `struct tcp_sock`, with `inet_connection_sock` and `sock` folded in.
#[derive(Debug)]
pub struct TcpSock {
    pub(crate) id: SockId,
    pub(crate) state: TcpState,
    pub(crate) local: (Ipv4Addr, u16),
    pub(crate) remote: (Ipv4Addr, u16),
    pub(crate) bind_opts: BindOpts,
    /// `IP_FREEBIND` (`INET_FLAGS_FREEBIND`).
    pub(crate) freebind: bool,
    pub(crate) bound: bool,
    pub(crate) hashed: bool,
    pub(crate) ip_opts: IpSendOpts,
    /// `sk_dst_cache`: the route, with the routing generation it is from.
    pub(crate) dst_cache: Option<(crate::ipv4::route::Dst, u64)>,
    /// `sk_rx_dst` and `sk_rx_dst_ifindex`: the input route of this
    /// connection's segments, with the routing generation it is from, for
    /// early demux.
    pub(crate) rx_dst: Option<(crate::ipv4::route::Dst, u64, crate::dev::IfIndex)>,
    /// `inet_id`: the IP ID counter of a connected socket.
    pub(crate) inet_id: u16,
    /// The application closed it: no handle refers to it any more.
    pub(crate) orphan: bool,
    /// The listener of a child not yet accepted.
    pub(crate) parent: Option<SockId>,
    pub(crate) listen: Option<ListenState>,

    // ---- send sequence space ----
    pub(crate) iss: TcpSeqNumber,
    pub(crate) snd_una: TcpSeqNumber,
    pub(crate) snd_nxt: TcpSeqNumber,
    /// `write_seq`: one past the last byte queued by the application.
    pub(crate) write_seq: TcpSeqNumber,
    /// Where the skb `tcp_sendmsg` is filling began (Linux's write-queue
    /// tail, a GSO packet to be): the next memory check is at its end.
    pub(crate) vskb_start: TcpSeqNumber,
    /// `pushed_seq`: `write_seq` at the last PSH mark (`tcp_mark_push`).
    pub(crate) pushed_seq: TcpSeqNumber,
    /// Zerocopy fragments pinned in the skb that starts at `vskb_start`.
    pub(crate) vskb_frags: u8,
    /// Numbers the GSO packets `tcp_write_xmit` builds.
    pub(crate) gso_seq: u32,
    /// `snd_wnd`, bytes (already scaled).
    pub(crate) snd_wnd: u32,
    pub(crate) max_window: u32,
    pub(crate) snd_wl1: TcpSeqNumber,
    /// `snd_up`-less; `high_seq`: snd_nxt when recovery started.
    pub(crate) high_seq: TcpSeqNumber,
    /// `snd_sml`: end of the last small segment (Nagle, Minshall).
    pub(crate) snd_sml: TcpSeqNumber,

    // ---- receive sequence space ----
    pub(crate) irs: TcpSeqNumber,
    pub(crate) rcv_nxt: TcpSeqNumber,
    /// `rcv_wup`: rcv_nxt when the window was last advertised.
    pub(crate) rcv_wup: TcpSeqNumber,
    /// `rcv_wnd`: the window last advertised, bytes.
    pub(crate) rcv_wnd: u32,
    pub(crate) rcv_ssthresh: u32,
    pub(crate) window_clamp: u32,
    /// `copied_seq`: next byte the application reads.
    pub(crate) copied_seq: TcpSeqNumber,
    /// `urg_data`: the urgent byte and what is known of it.
    pub(crate) urg_data: super::urg::UrgData,
    /// `urg_seq`: the sequence number of the urgent byte (the mark).
    pub(crate) urg_seq: TcpSeqNumber,
    /// `SO_OOBINLINE` (`SOCK_URGINLINE`): the urgent byte stays in the
    /// stream.
    pub(crate) urg_inline: bool,

    // ---- options ----
    pub(crate) snd_wscale: u8,
    pub(crate) rcv_wscale: u8,
    pub(crate) wscale_ok: bool,
    pub(crate) sack_ok: bool,
    pub(crate) tstamp_ok: bool,
    pub(crate) ts_recent: u32,
    pub(crate) ts_recent_stamp: Instant,
    /// `tsoffset`: added to the ms clock for TSval.
    pub(crate) ts_offset: u32,
    /// `rx_opt.mss_clamp`: the peer's MSS (or the user's TCP_MAXSEG).
    pub(crate) mss_clamp: u16,
    pub(crate) user_mss: u16,
    /// `advmss`: the MSS we announce.
    pub(crate) advmss: u16,
    /// `mss_cache`: payload bytes per segment now (options deducted).
    pub(crate) mss_cache: u32,
    /// `pmtu_cookie`.
    pub(crate) pmtu: u32,
    /// `icsk_ack.rcv_mss`: estimate of the peer's segment size.
    pub(crate) rcv_mss: u32,
    /// The DSACK block to send with the next ACK.
    pub(crate) dsack: Option<(TcpSeqNumber, TcpSeqNumber)>,
    /// `TCP_ECN_OK`: both ends agreed on ECN (RFC 3168).
    pub(crate) ecn_ok: bool,
    /// Our SYN asked for ECN (ECE+CWR).
    pub(crate) ecn_syn: bool,
    /// `TCP_ECN_DEMAND_CWR`: a CE mark arrived; echo ECE until CWR.
    pub(crate) ecn_demand_cwr: bool,
    /// `TCP_ECN_QUEUE_CWR`: set CWR on the next new data segment.
    pub(crate) ecn_queue_cwr: bool,

    // ---- queues ----
    pub(crate) write_queue: VecDeque<TxSeg>,
    pub(crate) rtx_queue: VecDeque<TxSeg>,
    /// `sk_wmem_queued`: payload bytes in both queues, and the head of each
    /// of Linux's skbs they make ([`super::wmem`]).
    pub(crate) wmem_queued: usize,
    pub(crate) sndbuf: usize,
    pub(crate) sndbuf_locked: bool,
    pub(crate) rcv_queue: VecDeque<Skb>,
    /// Payload bytes in the receive queue.
    pub(crate) rcv_queued: usize,
    pub(crate) rcvbuf: usize,
    pub(crate) rcvbuf_locked: bool,
    pub(crate) ofo: OfoQueue,
    /// A FIN that arrived out of order (its sequence number).
    pub(crate) ofo_fin: Option<TcpSeqNumber>,
    pub(crate) fin_received: bool,
    pub(crate) shutdown: ShutdownBits,

    // ---- congestion, loss recovery ----
    pub(crate) rtt: RttEstimator,
    pub(crate) cc: CcState,
    pub(crate) ca: Box<dyn CongestionControl>,
    pub(crate) packets_out: u32,
    pub(crate) sacked_out: u32,
    pub(crate) lost_out: u32,
    pub(crate) retrans_out: u32,
    pub(crate) dupacks: u32,
    pub(crate) reordering: u32,
    pub(crate) reord_seen: u32,
    pub(crate) prior_ssthresh: u32,
    pub(crate) undo_marker: Option<TcpSeqNumber>,
    pub(crate) prr_delivered: u32,
    pub(crate) prr_out: u32,
    pub(crate) prior_cwnd: u32,
    /// RACK: send time and end of the most recently sent segment known
    /// delivered.
    pub(crate) rack_mstamp: Instant,
    pub(crate) rack_end_seq: TcpSeqNumber,
    pub(crate) rack_rtt: Duration,
    /// `tcp_highest_sack_seq`: the end of the highest SACKed segment.
    pub(crate) highest_sack: TcpSeqNumber,
    /// `rack.reo_wnd_steps`: the reordering window in min_rtt/4 units.
    pub(crate) reo_wnd_steps: u32,
    /// Lowest sequence found reordered by the ACK being processed.
    pub(crate) reord_low: Option<TcpSeqNumber>,
    /// A DSACK arrived (RACK's reordering window adapts).
    pub(crate) rack_dsack_seen: bool,
    /// The last ACK marked segments lost.
    pub(crate) newly_lost: bool,
    /// This ACK's loss detection armed RACK's reordering timer: the ACK
    /// then leaves the retransmission timer alone (Linux clears
    /// `FLAG_SET_XMIT_TIMER`), or the RTO would replace it.
    pub(crate) rack_reo_armed: bool,
    /// `cwnd_usage_seq`: the end of the window `is_cwnd_limited` and
    /// `max_packets_out` describe (`tcp_cwnd_validate`).
    pub(crate) cwnd_usage_seq: TcpSeqNumber,
    /// Path MTU probing (`icsk_mtup`, `mtu_probe`).
    pub(crate) mtup: super::mtu_probe::MtuProbe,
    /// TLP: the probe sent, awaiting its ACK (`tlp_high_seq`).
    pub(crate) tlp_high_seq: Option<TcpSeqNumber>,
    pub(crate) delivered: u64,
    /// `retrans_stamp`: first transmission of the oldest unacked segment
    /// retransmitted (0: none), for the give-up deadline.
    pub(crate) retrans_stamp: Option<Instant>,
    /// `icsk_retransmits`.
    pub(crate) retransmits: u32,
    pub(crate) total_retrans: u32,
    /// `icsk_probes_out`.
    pub(crate) probes_out: u32,

    // ---- timers (deadlines) ----
    pub(crate) xmit_timer: Option<(Instant, XmitTimer)>,
    pub(crate) delack_timer: Option<Instant>,
    /// `sk_timer`: keepalive, FIN_WAIT2, SYN-ACK (for children).
    pub(crate) keepalive_timer: Option<Instant>,
    pub(crate) timewait_timer: Option<Instant>,
    /// The deadline last pushed on the table's heap.
    pub(crate) armed: Option<Instant>,

    // ---- delayed ACK (`icsk_ack`) ----
    pub(crate) ack_pending: bool,
    /// `icsk_ack.pending`'s `ICSK_ACK_PUSHED` / `ICSK_ACK_PUSHED2` bits
    /// ([`ACK_PUSHED`], [`ACK_PUSHED2`]): short segments arrived since the
    /// last ACK.
    pub(crate) ack_pushed: u8,
    /// `icsk_ack.last_seg_size`.
    pub(crate) last_seg_size: u32,
    pub(crate) quick: u32,
    pub(crate) pingpong: bool,
    pub(crate) ato: Duration,
    pub(crate) lrcvtime: Instant,
    pub(crate) lsndtime: Instant,
    /// Last time a challenge ACK / dupACK for an invalid segment was sent.
    pub(crate) last_oow_ack: Option<Instant>,

    // ---- socket options ----
    pub(crate) nodelay: bool,
    pub(crate) cork: bool,
    pub(crate) keepalive: bool,
    pub(crate) keepidle: Option<Duration>,
    pub(crate) keepintvl: Option<Duration>,
    pub(crate) keepcnt: Option<u32>,
    pub(crate) user_timeout: Option<Duration>,
    pub(crate) linger: Option<Duration>,
    pub(crate) notsent_lowat: Option<u32>,

    /// `sk_err`: the pending error, reported once.
    pub(crate) err: Option<Errno>,
    /// `sk_err_soft`: the last ICMP error, reported on timeout.
    pub(crate) err_soft: Option<Errno>,
    /// connect() has been called and its outcome not yet reported.
    pub(crate) connecting: bool,
    /// `sock->state == SS_CONNECTED`: connect() reported success, or the
    /// socket came from accept(); it can neither listen nor connect again.
    pub(crate) connected_once: bool,

    // ---- statistics (`tcp_info`) ----
    pub(crate) segs_in: u64,
    pub(crate) segs_out: u64,
    pub(crate) data_segs_in: u64,
    pub(crate) data_segs_out: u64,
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_retrans: u64,
    pub(crate) dsack_dups: u32,
    pub(crate) rcv_ooopack: u32,
    pub(crate) last_data_recv: Instant,
    pub(crate) last_ack_recv: Instant,
    /// Receive buffer autotuning (`rcvq_space`).
    pub(crate) rcvq_space_seq: TcpSeqNumber,
    pub(crate) rcvq_space_time: Instant,
    pub(crate) rcvq_space: u32,
    /// Receiver's RTT estimate (`rcv_rtt_est`), for autotuning.
    pub(crate) rcv_rtt: Option<Duration>,
    pub(crate) rcv_rtt_seq: TcpSeqNumber,
    pub(crate) rcv_rtt_time: Instant,
    pub(crate) chrono_type: Chrono,
    pub(crate) chrono_start: Instant,
    /// Time spent busy, receive-window limited, send-buffer limited.
    pub(crate) chrono_stat: [Duration; 3],

    // ---- wakeups ----
    /// The latest wakeup of each kind (for epoll).
    pub(crate) wake: crate::sock::wait::Wakeups,
    /// `SOCK_NOSPACE`: a writer found the send buffer full (a failed
    /// write or a poll), so freed space must wake it.
    pub(crate) nospace: bool,
    /// `TCP_INQ`: `recvmsg` reports the bytes left (`TCP_CM_INQ`).
    pub(crate) recvmsg_inq: bool,
    /// `SO_ZEROCOPY` and the `MSG_ZEROCOPY` sends waiting for their
    /// completion notification.
    pub(crate) zerocopy: bool,
    pub(crate) zc: super::zerocopy::ZcState,
    /// `sk_tsflags`: the `SO_TIMESTAMPING` flags.
    pub(crate) tsflags: u32,
    /// `sk_tskey`: what `OPT_ID` keys count from.
    pub(crate) tskey: u32,
    /// `sk_error_queue`.
    pub(crate) errq: super::errqueue::ErrQueue,
    /// TCP Fast Open.
    pub(crate) fo: super::fastopen::FoState,
    /// `TCP_SYNCNT` (`icsk_syn_retries`), else `tcp_syn_retries`.
    pub(crate) syn_retries: Option<u32>,
}

impl TcpSock {
    pub(crate) fn new(id: SockId, st: &TcpSettings, now: Instant) -> TcpSock {
        let ca = super::cong::by_name(&st.congestion_control)
            .unwrap_or_else(|| Box::new(super::cong::Cubic::new()));
        let z = TcpSeqNumber(0);
        TcpSock {
            id,
            state: TcpState::Closed,
            local: (Ipv4Addr::UNSPECIFIED, 0),
            remote: (Ipv4Addr::UNSPECIFIED, 0),
            bind_opts: BindOpts::default(),
            freebind: false,
            bound: false,
            hashed: false,
            ip_opts: IpSendOpts::default(),
            dst_cache: None,
            rx_dst: None,
            inet_id: 0,
            orphan: false,
            parent: None,
            listen: None,
            iss: z,
            snd_una: z,
            snd_nxt: z,
            write_seq: z,
            vskb_start: z,
            pushed_seq: z,
            vskb_frags: 0,
            gso_seq: 0,
            snd_wnd: 0,
            max_window: 0,
            snd_wl1: z,
            high_seq: z,
            snd_sml: z,
            irs: z,
            rcv_nxt: z,
            rcv_wup: z,
            rcv_wnd: 0,
            rcv_ssthresh: 0,
            window_clamp: 0,
            copied_seq: z,
            urg_data: super::urg::UrgData::None,
            urg_seq: z,
            urg_inline: false,
            snd_wscale: 0,
            rcv_wscale: 0,
            wscale_ok: false,
            sack_ok: false,
            tstamp_ok: false,
            ts_recent: 0,
            ts_recent_stamp: Instant::ZERO,
            ts_offset: 0,
            mss_clamp: 536,
            user_mss: 0,
            advmss: 536,
            mss_cache: 536,
            pmtu: 576,
            rcv_mss: 536,
            dsack: None,
            ecn_ok: false,
            ecn_syn: false,
            ecn_demand_cwr: false,
            ecn_queue_cwr: false,
            write_queue: VecDeque::new(),
            rtx_queue: VecDeque::new(),
            wmem_queued: 0,
            sndbuf: st.wmem[1],
            sndbuf_locked: false,
            rcv_queue: VecDeque::new(),
            rcv_queued: 0,
            rcvbuf: st.rmem[1],
            rcvbuf_locked: false,
            ofo: OfoQueue::new(),
            ofo_fin: None,
            fin_received: false,
            shutdown: ShutdownBits::default(),
            rtt: RttEstimator::new(),
            cc: CcState::new(536),
            ca,
            packets_out: 0,
            sacked_out: 0,
            lost_out: 0,
            retrans_out: 0,
            dupacks: 0,
            reordering: st.reordering,
            reord_seen: 0,
            prior_ssthresh: 0,
            undo_marker: None,
            prr_delivered: 0,
            prr_out: 0,
            prior_cwnd: 0,
            rack_mstamp: Instant::ZERO,
            rack_end_seq: z,
            rack_rtt: Duration::ZERO,
            highest_sack: z,
            reo_wnd_steps: 1,
            reord_low: None,
            rack_dsack_seen: false,
            newly_lost: false,
            rack_reo_armed: false,
            cwnd_usage_seq: TcpSeqNumber(0),
            mtup: Default::default(),
            tlp_high_seq: None,
            delivered: 0,
            retrans_stamp: None,
            retransmits: 0,
            total_retrans: 0,
            probes_out: 0,
            xmit_timer: None,
            delack_timer: None,
            keepalive_timer: None,
            timewait_timer: None,
            armed: None,
            ack_pending: false,
            ack_pushed: 0,
            last_seg_size: 0,
            quick: 0,
            pingpong: false,
            ato: Duration::ZERO,
            lrcvtime: now,
            lsndtime: now,
            last_oow_ack: None,
            nodelay: false,
            cork: false,
            keepalive: false,
            keepidle: None,
            keepintvl: None,
            keepcnt: None,
            user_timeout: None,
            linger: None,
            notsent_lowat: None,
            err: None,
            err_soft: None,
            connecting: false,
            connected_once: false,
            segs_in: 0,
            segs_out: 0,
            data_segs_in: 0,
            data_segs_out: 0,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            dsack_dups: 0,
            rcv_ooopack: 0,
            last_data_recv: now,
            last_ack_recv: now,
            rcvq_space_seq: z,
            rcvq_space_time: now,
            rcvq_space: 0,
            rcv_rtt: None,
            rcv_rtt_seq: z,
            rcv_rtt_time: now,
            chrono_type: Chrono::Unspec,
            chrono_start: now,
            chrono_stat: [Duration::ZERO; 3],
            wake: crate::sock::wait::Wakeups::default(),
            nospace: false,
            recvmsg_inq: false,
            zerocopy: false,
            zc: super::zerocopy::ZcState::default(),
            tsflags: 0,
            tskey: 0,
            errq: Default::default(),
            fo: super::fastopen::FoState::default(),
            syn_retries: None,
        }
    }

    pub(crate) fn tuple(&self) -> FourTuple {
        FourTuple {
            laddr: self.local.0,
            lport: self.local.1,
            raddr: self.remote.0,
            rport: self.remote.1,
        }
    }

    /// `tcp_packets_in_flight`: sent, not SACKed, not marked lost, plus
    /// retransmissions in flight.
    pub(crate) fn in_flight(&self) -> u32 {
        (self.packets_out + self.retrans_out).saturating_sub(self.sacked_out + self.lost_out)
    }

    /// Bytes the application queued and TCP has not sent yet.
    pub(crate) fn notsent_bytes(&self) -> u32 {
        self.write_seq.0.wrapping_sub(self.snd_nxt.0)
    }

    /// `tp->tcp_header_len`: the TCP header every segment of this
    /// connection carries (20 bytes, 32 with timestamps).
    pub(crate) fn tcp_header_len(&self) -> u32 {
        if self.tstamp_ok {
            32
        } else {
            20
        }
    }

    /// `tcp_receive_window`: what is left of the last advertised window.
    pub(crate) fn receive_window(&self) -> u32 {
        let w = (self.rcv_wup.0.wrapping_add(self.rcv_wnd)).wrapping_sub(self.rcv_nxt.0) as i32;
        w.max(0) as u32
    }

    /// The keepalive idle time in force.
    pub(crate) fn keepalive_time(&self, st: &TcpSettings) -> Duration {
        self.keepidle.unwrap_or(st.keepalive_time)
    }

    pub(crate) fn keepalive_intvl(&self, st: &TcpSettings) -> Duration {
        self.keepintvl.unwrap_or(st.keepalive_intvl)
    }

    pub(crate) fn keepalive_probes(&self, st: &TcpSettings) -> u32 {
        self.keepcnt.unwrap_or(st.keepalive_probes)
    }

    /// The earliest of the socket's timers.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        [
            self.xmit_timer.map(|(t, _)| t),
            self.delack_timer,
            self.keepalive_timer,
            self.timewait_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn chrono_set(&mut self, new: Chrono, now: Instant) {
        let old = self.chrono_type as usize;
        if old > 0 {
            let d = now.saturating_since(self.chrono_start);
            self.chrono_stat[old - 1] = self.chrono_stat[old - 1] + d;
        }
        self.chrono_start = now;
        self.chrono_type = new;
    }

    /// `tcp_chrono_start()`: the more interesting condition wins.
    pub(crate) fn chrono_start(&mut self, t: Chrono, now: Instant) {
        if t > self.chrono_type {
            self.chrono_set(t, now);
        }
    }

    /// `tcp_chrono_stop()`: back to busy while data is queued, else idle.
    pub(crate) fn chrono_stop(&mut self, t: Chrono, now: Instant) {
        if self.rtx_queue.is_empty() && self.write_queue.is_empty() {
            self.chrono_set(Chrono::Unspec, now);
        } else if t == self.chrono_type {
            self.chrono_set(Chrono::Busy, now);
        }
    }

    /// A chronograph's total so far (the running one included).
    pub(crate) fn chrono(&self, t: Chrono, now: Instant) -> Duration {
        let mut d = self.chrono_stat[t as usize - 1];
        if self.chrono_type == t {
            d = d + now.saturating_since(self.chrono_start);
        }
        d
    }

    /// The receive side from the peer's SYN (or SYN-ACK) with sequence
    /// number `seq` and window `wnd` (a SYN's window is never scaled).
    pub(crate) fn init_from_syn(&mut self, seq: TcpSeqNumber, wnd: u16) {
        self.irs = seq;
        self.rcv_nxt = seq + 1;
        self.rcv_wup = self.rcv_nxt;
        self.copied_seq = self.rcv_nxt;
        self.snd_wnd = u32::from(wnd);
        self.max_window = self.snd_wnd;
        self.snd_wl1 = seq;
    }

    /// The options our SYN or SYN-ACK offers, from the settings.
    pub(crate) fn offer_syn_options(&mut self, st: &TcpSettings) {
        self.tstamp_ok = st.timestamps;
        self.sack_ok = st.sack;
        self.wscale_ok = st.window_scaling;
    }

    /// Notes that the segment starting at `seq` was delivered out of order.
    pub(crate) fn note_reordering(&mut self, seq: TcpSeqNumber) {
        if self.reord_low.is_none_or(|l| seq.before(l)) {
            self.reord_low = Some(seq);
        }
    }

    /// Free both queues and the receive side (on close / reset).
    pub(crate) fn purge_queues(&mut self) {
        self.write_queue.clear();
        self.rtx_queue.clear();
        self.wmem_queued = 0;
        self.packets_out = 0;
        self.sacked_out = 0;
        self.lost_out = 0;
        self.retrans_out = 0;
        self.ofo = OfoQueue::new();
    }
}

/// The TCP sockets of one stack.
#[derive(Debug)]
pub struct TcpTable {
    pub(crate) socks: Vec<Option<Box<TcpSock>>>,
    pub(crate) hash: InetHashTables<SockId>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, u32)>>,
    pub(crate) mib: TcpMib,
    pub(crate) ext: TcpExtMib,
    pub(crate) settings: TcpSettings,
    /// Secret of ISNs, timestamps offsets and SYN cookies (a seed: runs
    /// are deterministic).
    pub(crate) secret: u64,
    /// The Fast Open client's cookie cache, per destination (Linux keeps
    /// it in the TCP metrics).
    pub(crate) fo_cache: std::collections::BTreeMap<Ipv4Addr, super::fastopen::FoCacheEntry>,
    /// Challenge ACKs sent in the current second (`tcp_challenge_ack_limit`).
    pub(crate) challenge_count: u32,
    pub(crate) challenge_second: u64,
    /// Live sockets (not yet freed).
    pub(crate) live: usize,
    /// The stamp of the latest socket wakeup (see [`crate::sock::wait`]).
    pub(crate) wake_seq: u64,
    /// Segments gathered by `tcp_write_xmit` for one GSO skb (kept for its
    /// capacity: no allocation per packet).
    pub(crate) gso_run: Vec<TxSeg>,
    /// `SO_TIMESTAMPING` requests of every socket, and reports waiting for
    /// their socket ([`super::timestamping`]).
    pub(crate) tstamps: super::timestamping::TxTstamps,
}

impl Default for TcpTable {
    fn default() -> Self {
        TcpTable::new(0x6e65_7470_6174_6821)
    }
}

impl TcpTable {
    pub fn new(seed: u64) -> TcpTable {
        TcpTable {
            socks: Vec::new(),
            hash: InetHashTables::new(seed),
            timers: BinaryHeap::new(),
            mib: TcpMib::default(),
            ext: TcpExtMib::default(),
            settings: TcpSettings::default(),
            secret: seed ^ 0x9e37_79b9_7f4a_7c15,
            fo_cache: Default::default(),
            challenge_count: 0,
            challenge_second: u64::MAX,
            live: 0,
            wake_seq: 0,
            gso_run: Vec::new(),
            tstamps: Default::default(),
        }
    }

    /// A new socket in CLOSED.
    pub(crate) fn alloc(&mut self, now: Instant) -> SockId {
        let id = SockId(self.socks.len() as u32);
        self.socks
            .push(Some(Box::new(TcpSock::new(id, &self.settings, now))));
        self.live += 1;
        id
    }

    pub(crate) fn get(&self, id: SockId) -> Option<&TcpSock> {
        self.socks.get(id.0 as usize)?.as_deref()
    }

    pub(crate) fn get_mut(&mut self, id: SockId) -> Option<&mut TcpSock> {
        self.socks.get_mut(id.0 as usize)?.as_deref_mut()
    }

    /// Takes the socket out of its slot while it is worked on (so that the
    /// rest of the stack can be borrowed); [`TcpTable::put`] returns it.
    pub(crate) fn take(&mut self, id: SockId) -> Option<Box<TcpSock>> {
        self.socks.get_mut(id.0 as usize)?.take()
    }

    pub(crate) fn put(&mut self, sk: Box<TcpSock>) {
        let i = sk.id.0 as usize;
        if let Some(slot) = self.socks.get_mut(i) {
            *slot = Some(sk);
        }
    }

    /// Pushes the socket's next deadline on the heap if it is earlier than
    /// what is already there for it.
    pub(crate) fn rearm(&mut self, sk: &mut TcpSock) {
        if let Some(t) = sk.next_timer() {
            if sk.armed.is_none_or(|a| t < a) {
                sk.armed = Some(t);
                self.timers.push(Reverse((t, sk.id.0)));
            }
        }
    }

    /// The earliest deadline on the heap (may be stale: early is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Pops a socket whose deadline is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<SockId> {
        loop {
            let Reverse((t, id)) = *self.timers.peek()?;
            if t > now {
                return None;
            }
            self.timers.pop();
            if let Some(sk) = self.get_mut(SockId(id)) {
                if sk.armed == Some(t) {
                    sk.armed = None;
                    return Some(SockId(id));
                }
            }
        }
    }

    /// Frees the socket (`inet_csk_destroy_sock`): out of every table.
    pub(crate) fn destroy(&mut self, id: SockId) {
        if let Some(slot) = self.socks.get_mut(id.0 as usize) {
            if let Some(sk) = slot.take() {
                if sk.hashed {
                    self.hash.ehash_remove(&sk.tuple());
                }
                if sk.listen.is_some() {
                    self.hash.unlisten(id);
                }
                self.hash.unbind(id);
                self.tstamps.forget(id);
                self.live = self.live.saturating_sub(1);
            }
        }
    }

    /// Live sockets, for `ss`.
    pub fn iter(&self) -> impl Iterator<Item = &TcpSock> {
        self.socks.iter().filter_map(|s| s.as_deref())
    }
}

impl TcpSock {
    pub fn state(&self) -> TcpState {
        self.state
    }
    pub fn local(&self) -> (Ipv4Addr, u16) {
        self.local
    }
    pub fn remote(&self) -> (Ipv4Addr, u16) {
        self.remote
    }
    pub fn id(&self) -> SockId {
        self.id
    }
}
