//! ICMP (being written).

use crate::skb::Skb;
use crate::stack::Stack;

/// ICMP rate-limit state.
#[derive(Debug, Default)]
pub struct IcmpState {}

impl Stack {
    /// `icmp_send()`: an ICMP error about `skb_in` (its network header at the
    /// offending IPv4 header) to its source, unless the rules forbid it.
    pub(crate) fn icmp_send(&mut self, skb_in: &Skb, icmp_type: u8, code: u8, info: u32) {
        let _ = (skb_in, icmp_type, code, info);
    }
}
