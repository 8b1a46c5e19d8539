//! IP-in-IP tunnels (`net/ipv4/ipip.c`, `ip_tunnel.c`): the "wrap it in a
//! tunnel" output of `dst_output` (seed egress step 4). A route through a
//! tunnel device sends the packet here; it gets an outer IPv4 header
//! (protocol 4, local → remote, DF as Linux's default pmtudisc) and
//! re-enters `ip_local_out`. Received protocol-4 packets from a tunnel's
//! remote to its local address are unwrapped and received again as the
//! tunnel device's.

use core::net::Ipv4Addr;

use netpath_wire::ethernet::EthernetAddress;
use netpath_wire::ipv4::Ipv4Packet;

use super::output::{IpSendOpts, PmtuDisc};
use crate::dev::{DevError, DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb};
use crate::stack::{devm, Stack};

/// A tunnel's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpipTunnel {
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    /// Outer TTL (`ttl N`); 0 inherits the inner packet's.
    pub ttl: u8,
}

impl Stack {
    /// `ip tunnel add NAME mode ipip local L remote R` (MTU 1480, down).
    pub fn add_ipip(
        &mut self,
        name: &str,
        local: Ipv4Addr,
        remote: Ipv4Addr,
    ) -> Result<IfIndex, DevError> {
        let i = self.register_netdevice(
            name,
            DevKind::Ipip(IpipTunnel {
                local,
                remote,
                ttl: 64,
            }),
            EthernetAddress::ZERO,
            1480,
        )?;
        Ok(i)
    }

    pub(crate) fn is_ipip_dev(&self, dev: IfIndex) -> bool {
        self.dev(dev)
            .is_ok_and(|d| matches!(d.kind, DevKind::Ipip(_)))
    }

    /// `ipip_tunnel_xmit()`: the inner packet (data at its IPv4 header) gets
    /// an outer header and is sent again.
    pub(crate) fn ipip_tunnel_xmit(&mut self, mut skb: Skb, tdev: IfIndex) {
        if skb.is_gso() {
            // Linux carries GSO through the tunnel (SKB_GSO_IPXIP4); here
            // the inner packet is segmented first and each segment
            // encapsulated.
            let mut segs = Vec::new();
            let pool = skb.pool().clone();
            if crate::skb::skb_gso_segment(&skb, &pool, &mut segs).is_err() {
                self.kfree_skb(skb, DropReason::SkbGsoSeg);
                return;
            }
            drop(skb);
            for s in segs {
                self.ipip_tunnel_xmit(s, tdev);
            }
            return;
        }
        let t = match self.dev(tdev).map(|d| (&d.kind, d.flags.up)) {
            Ok((DevKind::Ipip(t), true)) => *t,
            _ => {
                self.kfree_skb(skb, DropReason::DevReady);
                return;
            }
        };
        let (inner_ttl, inner_tos) = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => (p.ttl(), p.tos()),
            Err(_) => {
                self.kfree_skb(skb, DropReason::IpInhdr);
                return;
            }
        };
        let len = skb.len() as u64;
        if let Ok(d) = devm(&mut self.devs, tdev) {
            d.stats.tx_packets += 1;
            d.stats.tx_bytes += len;
        }
        self.tracer.skb(self.now, "ipip_tunnel_xmit", &skb);
        skb.meta.dst = None;
        skb.reset_transport_header();
        let ttl = if t.ttl == 0 { inner_ttl } else { t.ttl };
        let opts = IpSendOpts {
            saddr: Some(t.local),
            ttl: Some(ttl),
            tos: inner_tos,
            pmtudisc: PmtuDisc::Probe,
            ..IpSendOpts::default()
        };
        if self
            .ip_queue_xmit(skb, t.remote, super::input::IPPROTO_IPIP, opts, None)
            .is_err()
        {
            if let Ok(d) = devm(&mut self.devs, tdev) {
                d.stats.tx_errors += 1;
            }
        }
    }

    /// `ipip_rcv()`: data at the inner IPv4 header, network header at the outer.
    pub(crate) fn ipip_rcv(&mut self, mut skb: Skb) {
        let Ok(outer) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        };
        let (src, dst) = (outer.src_addr(), outer.dst_addr());
        let tunnel = self.devices().find_map(|d| match &d.kind {
            DevKind::Ipip(t) if t.remote == src && t.local == dst && d.flags.up => Some(d.ifindex),
            _ => None,
        });
        let Some(tdev) = tunnel else {
            self.icmp_send(&skb, 3, 3, 0);
            self.kfree_skb(skb, DropReason::NoSocket);
            return;
        };
        let len = skb.len() as u64;
        if let Ok(d) = devm(&mut self.devs, tdev) {
            d.stats.rx_packets += 1;
            d.stats.rx_bytes += len;
        }
        self.tracer.skb(self.now, "ipip_rcv", &skb);
        skb.reset_network_header();
        skb.reset_mac_header();
        skb.meta.dst = None;
        skb.meta.ingress_dev = Some(tdev);
        skb.meta.pkt_type = PacketType::Host;
        skb.meta.protocol = 0x0800;
        self.netif_rx(skb);
    }
}
