//! IPv4 reassembly (`net/ipv4/ip_fragment.c`, `inet_fragment.c`): the first
//! step of `ip_local_deliver` (seed ingress step 10, "reassemble fragmented
//! packets"). (Being written.)

use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// The host's fragment queues.
#[derive(Debug, Default)]
pub struct FragQueues {}

impl Stack {
    /// `ip_defrag()`: takes a fragment (data at its IPv4 header, header
    /// verified, trimmed to its total length); returns the whole datagram
    /// when this fragment completes it.
    pub(crate) fn ip_defrag(&mut self, skb: Skb) -> Option<Skb> {
        self.kfree_skb(skb, DropReason::NotSpecified);
        None
    }

    /// Expires fragment queues whose time is up (`ip_expire`).
    pub(crate) fn ip_frag_timer(&mut self) -> bool {
        false
    }

    /// When the oldest fragment queue expires.
    pub(crate) fn ip_frag_next_timer(&self) -> Option<Instant> {
        None
    }
}
