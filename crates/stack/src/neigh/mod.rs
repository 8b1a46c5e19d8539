//! Neighbours: ARP and the neighbour table (`net/core/neighbour.c`,
//! `net/ipv4/arp.c`), seed egress step 6 (`neigh_resolve_output`).
//! (Being written.)

use core::net::Ipv4Addr;

use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// The neighbour table of one stack.
#[derive(Debug, Default)]
pub struct NeighTable {}

impl Stack {
    /// The L2 step of `ip_finish_output2`: send `skb` (data at its IPv4
    /// header) to `nexthop` on `dev`: through the cached hardware header if
    /// the neighbour is valid, else `neigh_resolve_output`.
    pub(crate) fn neigh_output(&mut self, skb: Skb, dev: IfIndex, nexthop: Ipv4Addr) {
        let _ = (dev, nexthop);
        self.kfree_skb(skb, DropReason::NeighFailed);
    }

    /// `arp_rcv()`: the L3 handler for ETH_P_ARP (data at the ARP header).
    pub(crate) fn arp_rcv(&mut self, skb: Skb) {
        self.kfree_skb(skb, DropReason::UnhandledProto);
    }

    /// Neighbour timers due at `now`.
    pub(crate) fn neigh_timer(&mut self) -> bool {
        false
    }

    pub(crate) fn neigh_next_timer(&self) -> Option<Instant> {
        None
    }
}
