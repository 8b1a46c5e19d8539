//! What the send queues charge to `sk_wmem_queued`: the payload bytes, and
//! for each of Linux's skbs the `truesize` of its head (`tcp_skb_entail`,
//! `tcp_stream_alloc_skb`: `SKB_TRUESIZE` of a `MAX_TCP_HEADER` head — the
//! `sk_buff`, the header room and the shared info — whose payload sits in
//! page fragments).
//!
//! netpath's queues hold one `TxSeg` per MSS; Linux's skbs group them. The
//! segment that begins one of Linux's skbs carries its head
//! ([`TxSeg::head`]):
//! - `tcp_sendmsg` starts an skb for each `size_goal` of data (a new skb,
//!   not the tail's room), and `tcp_send_fin` one for a FIN alone;
//! - sending part of an skb cuts the rest into an skb of its own
//!   (`tso_fragment`), so what is left at the head of the write queue
//!   after a transmission begins an skb;
//! - when the segment with the head is acknowledged and the rest of its
//!   skb is not, the head moves on to the rest (`tcp_trim_head` keeps the
//!   skb); the last segment of an skb frees it (`tcp_wmem_free_skb`).
//!
//! The SYN and Fast Open's SYN data are not charged (sent, and freed, before
//! data is written). A new skb whose first bytes fill the room left in a
//! segment (after an MSS change) goes uncharged.

use super::sock::{TcpSock, TxSeg};

/// `SKB_TRUESIZE(skb_end_offset)` of an skb from `tcp_stream_alloc_skb` on
/// x86-64 (a `MAX_TCP_HEADER` of 320 bytes from the small-head cache: 320
/// of head room, 256 of `sk_buff`, 320 of shared info).
pub(crate) const TCP_SKB_HEAD_TRUESIZE: usize = 896;

impl TcpSock {
    /// `seg` begins a new skb: its head is charged.
    pub(crate) fn wmem_charge_head(&mut self, seg: &mut TxSeg) {
        if !seg.head {
            seg.head = true;
            self.wmem_queued += TCP_SKB_HEAD_TRUESIZE;
        }
    }

    /// After a transmission (`tso_fragment`): the unsent rest of a partly
    /// sent skb is an skb of its own.
    pub(crate) fn wmem_split_unsent(&mut self) {
        if let Some(f) = self.write_queue.front_mut() {
            if !f.head {
                f.head = true;
                self.wmem_queued += TCP_SKB_HEAD_TRUESIZE;
            }
        }
    }

    /// `seg` left the retransmit queue, acknowledged: its bytes are freed,
    /// and its skb's head with the skb's last segment.
    pub(crate) fn wmem_free_acked(&mut self, seg: &TxSeg) {
        let mut freed = seg.skb.len();
        if seg.head {
            match self.rtx_queue.front_mut() {
                // The rest of its skb is still queued.
                Some(next) if !next.head => next.head = true,
                _ => freed += TCP_SKB_HEAD_TRUESIZE,
            }
        }
        self.wmem_queued = self.wmem_queued.saturating_sub(freed);
    }
}
