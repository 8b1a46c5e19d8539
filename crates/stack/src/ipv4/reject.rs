//! REJECT's answers (`net/ipv4/netfilter/nf_reject_ipv4.c`): an ICMP error
//! of the chosen kind, or a TCP RST built from the offending segment
//! (`nf_send_reset`: seq from its ACK, or ACK of its sequence space; window
//! 0; IP id 0 and DF).

use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::TcpPacket;

use super::output::{IpSendOpts, PmtuDisc};
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
                self.nf_send_reset(skb);
                return;
            }
        };
        self.icmp_send(skb, 3, code, 0);
    }

    /// `nf_send_reset()`.
    fn nf_send_reset(&mut self, skb: &Skb) {
        let Ok(ip) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            return;
        };
        if ip.protocol().0 != 6
            || ip.frag_offset() != 0
            || ip.dst_addr().is_broadcast()
            || ip.dst_addr().is_multicast()
        {
            return;
        }
        let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
            return;
        };
        if tcp.rst() {
            return;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&tcp.dst_port().to_be_bytes());
        h[2..4].copy_from_slice(&tcp.src_port().to_be_bytes());
        let flags: u8 = if tcp.ack() {
            h[4..8].copy_from_slice(&tcp.ack_number().0.to_be_bytes());
            0x04
        } else {
            let seg = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
            h[8..12].copy_from_slice(&tcp.seq_number().0.wrapping_add(seg).to_be_bytes());
            0x14
        };
        h[12] = 5 << 4;
        h[13] = flags;
        let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(dst, src, 6, 20);
        c.add_bytes(&h);
        h[16..18].copy_from_slice(&c.finish().to_be_bytes());
        let opts = IpSendOpts {
            saddr: Some(dst),
            pmtudisc: PmtuDisc::Do,
            ..IpSendOpts::default()
        };
        let _ = self.ip_send(self.now, src, 6, &h, opts);
        self.tracer.skb(self.now, "nf_send_reset", skb);
    }
}
