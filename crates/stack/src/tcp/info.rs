//! `struct tcp_info` (`getsockopt(TCP_INFO)`, what `ss -ti` prints;
//! `tcp_get_info()` in `net/ipv4/tcp.c`). Times are in microseconds and
//! windows in segments or bytes as Linux reports them.

use super::sock::TcpState;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;

/// `TCPI_OPT_*`.
pub const TCPI_OPT_TIMESTAMPS: u8 = 1;
pub const TCPI_OPT_SACK: u8 = 2;
pub const TCPI_OPT_WSCALE: u8 = 4;
/// Data in the SYN was acknowledged (client) or accepted (server).
pub const TCPI_OPT_SYN_DATA: u8 = 32;

/// The fields of `struct tcp_info`, named without the `tcpi_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto: u32,
    pub ato: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub last_data_sent: u32,
    pub last_data_recv: u32,
    pub last_ack_recv: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt: u32,
    pub rttvar: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub min_rtt: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivered: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    pub rcv_ooopack: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    /// Microseconds busy sending, limited by the peer's window, limited by
    /// the send buffer (`tcp_chrono`).
    pub busy_time: u64,
    pub rwnd_limited: u64,
    pub sndbuf_limited: u64,
    /// Why the last Fast Open attempt sent no data in the SYN or had it
    /// unacknowledged (`TFO_*` of [`super::fastopen`]).
    pub fastopen_client_fail: u8,
}

impl TcpInfo {
    /// `(name, value)` with the `tcpi_` names, for the packetdrill runner's
    /// `%{ }%` blocks and `ss`-style output.
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("tcpi_state", u64::from(self.state)),
            ("tcpi_ca_state", u64::from(self.ca_state)),
            ("tcpi_retransmits", u64::from(self.retransmits)),
            ("tcpi_probes", u64::from(self.probes)),
            ("tcpi_backoff", u64::from(self.backoff)),
            ("tcpi_options", u64::from(self.options)),
            ("tcpi_snd_wscale", u64::from(self.snd_wscale)),
            ("tcpi_rcv_wscale", u64::from(self.rcv_wscale)),
            ("tcpi_rto", u64::from(self.rto)),
            ("tcpi_ato", u64::from(self.ato)),
            ("tcpi_snd_mss", u64::from(self.snd_mss)),
            ("tcpi_rcv_mss", u64::from(self.rcv_mss)),
            ("tcpi_unacked", u64::from(self.unacked)),
            ("tcpi_sacked", u64::from(self.sacked)),
            ("tcpi_lost", u64::from(self.lost)),
            ("tcpi_retrans", u64::from(self.retrans)),
            ("tcpi_last_data_sent", u64::from(self.last_data_sent)),
            ("tcpi_last_data_recv", u64::from(self.last_data_recv)),
            ("tcpi_last_ack_recv", u64::from(self.last_ack_recv)),
            ("tcpi_pmtu", u64::from(self.pmtu)),
            ("tcpi_rcv_ssthresh", u64::from(self.rcv_ssthresh)),
            ("tcpi_rtt", u64::from(self.rtt)),
            ("tcpi_rttvar", u64::from(self.rttvar)),
            ("tcpi_snd_ssthresh", u64::from(self.snd_ssthresh)),
            ("tcpi_snd_cwnd", u64::from(self.snd_cwnd)),
            ("tcpi_advmss", u64::from(self.advmss)),
            ("tcpi_reordering", u64::from(self.reordering)),
            ("tcpi_rcv_rtt", u64::from(self.rcv_rtt)),
            ("tcpi_rcv_space", u64::from(self.rcv_space)),
            ("tcpi_total_retrans", u64::from(self.total_retrans)),
            ("tcpi_bytes_acked", self.bytes_acked),
            ("tcpi_bytes_received", self.bytes_received),
            ("tcpi_segs_out", u64::from(self.segs_out)),
            ("tcpi_segs_in", u64::from(self.segs_in)),
            ("tcpi_notsent_bytes", u64::from(self.notsent_bytes)),
            ("tcpi_min_rtt", u64::from(self.min_rtt)),
            ("tcpi_data_segs_in", u64::from(self.data_segs_in)),
            ("tcpi_data_segs_out", u64::from(self.data_segs_out)),
            ("tcpi_delivered", u64::from(self.delivered)),
            ("tcpi_bytes_sent", self.bytes_sent),
            ("tcpi_bytes_retrans", self.bytes_retrans),
            ("tcpi_dsack_dups", u64::from(self.dsack_dups)),
            ("tcpi_reord_seen", u64::from(self.reord_seen)),
            ("tcpi_rcv_ooopack", u64::from(self.rcv_ooopack)),
            ("tcpi_snd_wnd", u64::from(self.snd_wnd)),
            ("tcpi_rcv_wnd", u64::from(self.rcv_wnd)),
            ("tcpi_busy_time", self.busy_time),
            ("tcpi_rwnd_limited", self.rwnd_limited),
            ("tcpi_sndbuf_limited", self.sndbuf_limited),
            (
                "tcpi_fastopen_client_fail",
                u64::from(self.fastopen_client_fail),
            ),
        ]
    }
}

impl Stack {
    /// `getsockopt(TCP_INFO)`.
    pub fn tcp_info(&self, id: SockId) -> Result<TcpInfo, Errno> {
        let sk = self.tcp.get(id).ok_or(Errno::EBADF)?;
        let now = self.now;
        let ago = |t: crate::time::Instant| now.saturating_since(t).as_millis() as u32;
        let us = |d: crate::time::Duration| d.as_micros() as u32;
        let mut options = 0;
        if sk.tstamp_ok {
            options |= TCPI_OPT_TIMESTAMPS;
        }
        if sk.sack_ok {
            options |= TCPI_OPT_SACK;
        }
        if sk.wscale_ok {
            options |= TCPI_OPT_WSCALE;
        }
        if sk.fo.syn_data_acked {
            options |= TCPI_OPT_SYN_DATA;
        }
        let ca_state = match sk.cc.ca_state {
            super::cong::CaState::Open => 0,
            super::cong::CaState::Disorder => 1,
            super::cong::CaState::Cwr => 2,
            super::cong::CaState::Recovery => 3,
            super::cong::CaState::Loss => 4,
        };
        let listen = sk.state == TcpState::Listen;
        Ok(TcpInfo {
            state: sk.state.linux_number(),
            ca_state,
            retransmits: sk.retransmits.min(255) as u8,
            probes: sk.probes_out.min(255) as u8,
            backoff: sk.rtt.backoffs().min(255) as u8,
            options,
            snd_wscale: sk.snd_wscale,
            rcv_wscale: sk.rcv_wscale,
            rto: us(sk.rtt.timeout()),
            ato: us(sk.ato),
            snd_mss: sk.mss_cache,
            rcv_mss: sk.rcv_mss,
            // For a listener Linux reports the accept queue here.
            unacked: if listen {
                sk.listen
                    .as_ref()
                    .map_or(0, |l| l.accept_queue.len() as u32)
            } else {
                sk.packets_out
            },
            sacked: if listen {
                sk.listen.as_ref().map_or(0, |l| l.backlog)
            } else {
                sk.sacked_out
            },
            lost: sk.lost_out,
            retrans: sk.retrans_out,
            last_data_sent: ago(sk.lsndtime),
            last_data_recv: ago(sk.last_data_recv),
            last_ack_recv: ago(sk.last_ack_recv),
            pmtu: sk.pmtu,
            rcv_ssthresh: sk.rcv_ssthresh,
            rtt: sk.rtt.srtt().map_or(0, us),
            rttvar: us(sk.rtt.mdev()),
            snd_ssthresh: sk.cc.ssthresh,
            snd_cwnd: sk.cc.cwnd,
            advmss: u32::from(sk.advmss),
            reordering: sk.reordering,
            rcv_rtt: sk.rcv_rtt.map_or(0, us),
            rcv_space: sk.rcvq_space,
            total_retrans: sk.total_retrans,
            bytes_acked: sk.bytes_acked,
            bytes_received: sk.bytes_received,
            segs_out: sk.segs_out as u32,
            segs_in: sk.segs_in as u32,
            notsent_bytes: sk.notsent_bytes(),
            min_rtt: sk.rtt.min_rtt().map_or(u32::MAX, us),
            data_segs_in: sk.data_segs_in as u32,
            data_segs_out: sk.data_segs_out as u32,
            delivered: sk.delivered as u32,
            bytes_sent: sk.bytes_sent,
            bytes_retrans: sk.bytes_retrans,
            dsack_dups: sk.dsack_dups,
            reord_seen: sk.reord_seen,
            rcv_ooopack: sk.rcv_ooopack,
            snd_wnd: sk.snd_wnd,
            rcv_wnd: sk.rcv_wnd,
            busy_time: sk.chrono(super::sock::Chrono::Busy, now).as_micros()
                + sk.chrono(super::sock::Chrono::RwndLimited, now).as_micros()
                + sk.chrono(super::sock::Chrono::SndbufLimited, now)
                    .as_micros(),
            rwnd_limited: sk.chrono(super::sock::Chrono::RwndLimited, now).as_micros(),
            sndbuf_limited: sk
                .chrono(super::sock::Chrono::SndbufLimited, now)
                .as_micros(),
            fastopen_client_fail: sk.fo.client_fail,
        })
    }
}
