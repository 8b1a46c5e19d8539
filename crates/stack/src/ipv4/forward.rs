//! `ip_forward`: a packet for another host (`net/ipv4/ip_forward.c`), the
//! seed's note on step 10 "for another host: TTL decrement, netfilter
//! FORWARD, then the egress path from ip_output on".
//!
//! Forwarding is enabled per host and device (`ip_forward`, off by default
//! as in Linux). TTL 1 expires here (ICMP time exceeded); a DF packet over
//! the egress MTU is answered with "fragmentation needed" carrying the MTU;
//! a packet going back out of the interface it came in on towards an
//! on-link gateway also earns an ICMP redirect, as Linux sends.

use netpath_wire::checksum;
use netpath_wire::ipv4::Ipv4Packet;

use crate::drop::DropReason;
use crate::netfilter::NfHook;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;

impl Stack {
    /// `ip_forward()`: data at the IPv4 header, input route attached.
    pub(crate) fn ip_forward(&mut self, mut skb: Skb) {
        self.tracer.skb(self.now, "ip_forward", &skb);
        if skb.meta.pkt_type != PacketType::Host {
            self.kfree_skb(skb, DropReason::OtherHost);
            return;
        }
        let Some(dst) = skb.meta.dst else {
            self.kfree_skb(skb, DropReason::IpInnoroutes);
            return;
        };
        let (ttl, df, len, daddr, saddr) = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => (
                p.ttl(),
                p.dont_frag(),
                usize::from(p.total_len()),
                p.dst_addr(),
                p.src_addr(),
            ),
            Err(_) => {
                self.kfree_skb(skb, DropReason::IpInhdr);
                return;
            }
        };
        if ttl <= 1 {
            self.ip.mib.ip.in_hdr_errors += 1;
            self.icmp_send(&skb, 11, 0, 0);
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        }
        // ip_exceeds_mtu(): a GSO packet (merged by GRO) by its segments.
        let len = match skb.is_gso() {
            true => skb.gso_network_seglen().unwrap_or(len),
            false => len,
        };
        if df && len > dst.mtu as usize {
            self.ip.mib.ip.frag_fails += 1;
            self.icmp_send(&skb, 3, 4, dst.mtu);
            self.kfree_skb(skb, DropReason::PktTooBig);
            return;
        }
        // ICMP redirect: out the way it came, to a gateway on that link, from
        // a source on that link.
        if skb.meta.ingress_dev == Some(dst.dev) {
            let gw = dst.nexthop(daddr);
            let same_subnet = self.ip.addrs.iter().any(|a| {
                a.dev == dst.dev
                    && super::fib::mask(a.addr, a.prefix_len)
                        == super::fib::mask(saddr, a.prefix_len)
            });
            if same_subnet && gw != saddr {
                self.icmp_send(&skb, 5, 1, u32::from(gw));
            }
        }
        // ip_decrease_ttl(): TTL and checksum updated in place (RFC 1624).
        let d = skb.data_mut();
        let old = u16::from_be_bytes([d[8], d[9]]);
        d[8] = ttl - 1;
        let new = u16::from_be_bytes([d[8], d[9]]);
        let c = checksum::update16(u16::from_be_bytes([d[10], d[11]]), old, new);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        let Some(skb) = self.nf_hook(NfHook::Forward, skb, Some(dst.dev)) else {
            return;
        };
        self.ip.mib.ip.forw_datagrams += 1;
        self.tracer.skb(self.now, "ip_forward_finish", &skb);
        self.dst_output(skb);
    }
}
