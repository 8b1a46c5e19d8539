//! REJECT's answers (`net/ipv4/netfilter/nf_reject_ipv4.c`): an ICMP error
//! of the chosen kind, or a TCP RST built from the offending segment
//! (`nf_send_reset`: seq from its ACK, or ACK of its sequence space; window
//! 0; IP id 0 and DF).

use crate::netfilter::RejectWith;
use crate::skb::Skb;
use crate::stack::Stack;

impl Stack {
    /// Answers a rejected packet (network header at its IPv4 header).
    pub(crate) fn nf_reject(&mut self, skb: &Skb, with: RejectWith) {
        let code = match with {
            RejectWith::IcmpNetUnreachable => 0,
            RejectWith::IcmpHostUnreachable => 1,
            RejectWith::IcmpProtoUnreachable => 2,
            RejectWith::IcmpPortUnreachable => 3,
            RejectWith::IcmpNetProhibited => 9,
            RejectWith::IcmpHostProhibited => 10,
            RejectWith::IcmpAdminProhibited => 13,
            RejectWith::TcpReset => {
                // nf_send_reset builds what tcp_v4_send_reset does.
                self.tcp_v4_send_reset(skb);
                return;
            }
        };
        self.icmp_send(skb, 3, code, 0);
    }
}
