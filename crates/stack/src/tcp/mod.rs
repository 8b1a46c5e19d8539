//! TCP (`net/ipv4/tcp*.c`): seed ingress step 11 (`tcp_v4_rcv`) and egress
//! steps 1–3 (`tcp_sendmsg`, `tcp_write_xmit`, `tcp_transmit_skb`).
//!
//! So far: `tcp_v4_rcv`'s checksum check and, with no socket to deliver to
//! (sockets come next), the RST `tcp_v4_send_reset` sends, with the `Tcp:`
//! counters.

pub mod cong;
pub mod input;
pub mod ofo;
pub mod rtt;

/// `Tcp:` of `/proc/net/snmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpMib {
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
    pub estab_resets: u64,
    pub curr_estab: u64,
    pub in_segs: u64,
    pub out_segs: u64,
    pub retrans_segs: u64,
    pub in_errs: u64,
    pub out_rsts: u64,
    pub in_csum_errors: u64,
}
