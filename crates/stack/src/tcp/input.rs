//! `tcp_v4_rcv` (`net/ipv4/tcp_ipv4.c`), seed ingress step 11: the header
//! is checked and its checksum verified (a bad one counted in
//! `InCsumErrors` and dropped `TCP_CSUM`), the socket looked up; with none,
//! the segment is answered with a RST as `tcp_v4_send_reset` does and
//! dropped `NO_SOCKET`.

use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::TcpPacket;

use crate::drop::DropReason;
use crate::ipv4::output::{IpSendOpts, PmtuDisc};
use crate::skb::Skb;
use crate::stack::Stack;

impl Stack {
    /// `Tcp:` counters.
    pub fn tcp_mib(&self) -> &super::TcpMib {
        &self.tcp_mib
    }

    /// `tcp_v4_rcv()`: data at the TCP header, network header at IPv4.
    pub(crate) fn tcp_v4_rcv(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "tcp_v4_rcv", &skb);
        let Ok(ip) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if skb.meta.pkt_type != crate::skb::PacketType::Host {
            self.kfree_skb(skb, DropReason::OtherHost);
            return;
        }
        let ok = match TcpPacket::new_checked(skb.data()) {
            Ok(t) => t.verify_checksum(src, dst),
            Err(_) => {
                self.tcp_mib.in_errs += 1;
                self.kfree_skb(skb, DropReason::PktTooSmall);
                return;
            }
        };
        // Linux counts it even if it is bad.
        self.tcp_mib.in_segs += 1;
        if !ok {
            self.tcp_mib.in_csum_errors += 1;
            self.tcp_mib.in_errs += 1;
            self.kfree_skb(skb, DropReason::TcpCsum);
            return;
        }
        // No socket yet: tcp_v4_send_reset.
        self.tcp_v4_send_reset(&skb);
        self.kfree_skb(skb, DropReason::NoSocket);
    }

    /// `tcp_v4_send_reset()` (and netfilter's `nf_send_reset`, which builds
    /// the same segment): no answer to a RST or to a broadcast; otherwise
    /// RST with seq = the segment's ACK, or RST+ACK of its sequence space;
    /// window 0; IP id 0 and DF.
    pub(crate) fn tcp_v4_send_reset(&mut self, skb: &Skb) {
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
        if self.ip_send(self.now, src, 6, &h, opts).is_ok() {
            self.tcp_mib.out_rsts += 1;
            self.tcp_mib.out_segs += 1;
        }
        self.tracer.skb(self.now, "tcp_v4_send_reset", skb);
    }
}
