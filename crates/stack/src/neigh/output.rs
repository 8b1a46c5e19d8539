//! Seed egress step 6: the link-layer header of an IPv4 packet
//! (`include/net/neighbour.h` `neigh_output`, `neigh_hh_output`;
//! `net/core/neighbour.c` `neigh_resolve_output`; `arp_constructor`'s
//! NOARP cases).
//!
//! The resolved path (a CONNECTED entry with its cached header) is one
//! table lookup, a 14-byte copy into headroom and `dev_queue_xmit`: no
//! allocation.

use core::net::Ipv4Addr;

use netpath_wire::ethernet::EthernetAddress;

use super::table::{eth_hh, NeighKey};
use crate::dev::{DevKind, IfIndex};
use crate::drop::DropReason;
use crate::ipv4::route::RouteType;
use crate::skb::Skb;
use crate::stack::Stack;

/// `ETH_P_IP`.
pub(crate) const ETH_P_IP: u16 = 0x0800;
/// `ETH_HLEN`.
const ETH_HLEN: usize = 14;

/// `ip_eth_mc_map()`: 01:00:5e and the group's low 23 bits.
pub(crate) fn ip_eth_mc_map(group: Ipv4Addr) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

impl Stack {
    /// `neigh_output()` and what comes before it in `ip_finish_output2`.
    pub(crate) fn neigh_output_inner(&mut self, mut skb: Skb, dev: IfIndex, nexthop: Ipv4Addr) {
        skb.reset_network_header();
        skb.meta.protocol = ETH_P_IP;
        let (dev_mac, noarp) = match self.dev(dev) {
            Ok(d) => (d.mac(), matches!(d.kind(), DevKind::Loopback)),
            Err(_) => {
                self.neigh_drop(skb, DropReason::NeighCreatefail);
                return;
            }
        };
        // IFF_LOOPBACK / IFF_NOARP: the device's own address, no resolution.
        if noarp {
            self.neigh_hh_output(skb, dev, &eth_hh(dev_mac, dev_mac));
            return;
        }
        // Broadcast and multicast next hops map without ARP (arp_mc_map).
        if let Some(mac) = self.arp_mc_map(nexthop, &skb) {
            self.neigh_hh_output(skb, dev, &eth_hh(mac, dev_mac));
            return;
        }
        let k = (dev, nexthop);
        self.neigh.stats.lookups += 1;
        match self.neigh.get(k) {
            Some(n) => {
                let hh = if n.state.is_connected() { n.hh } else { None };
                self.neigh.stats.hits += 1;
                if let Some(hh) = hh {
                    self.neigh_hh_output(skb, dev, &hh);
                    return;
                }
            }
            None => {
                if self.neigh_create(dev, nexthop, false).is_err() {
                    self.neigh_drop(skb, DropReason::NeighCreatefail);
                    return;
                }
            }
        }
        self.neigh_resolve_output(skb, k);
    }

    /// `arp_mc_map()` for IPv4 next hops that need no ARP: the limited and
    /// subnet broadcasts and 0.0.0.0/8 (`inet_addr_type` RTN_BROADCAST) get
    /// the broadcast address, multicast groups their mapped address.
    fn arp_mc_map(&self, nexthop: Ipv4Addr, skb: &Skb) -> Option<EthernetAddress> {
        if nexthop.is_multicast() {
            return Some(ip_eth_mc_map(nexthop));
        }
        let broadcast = nexthop.is_broadcast()
            || nexthop.octets()[0] == 0
            || skb
                .meta
                .dst
                .is_some_and(|d| d.rtype == RouteType::Broadcast)
            || self.is_subnet_broadcast(nexthop);
        broadcast.then_some(EthernetAddress::BROADCAST)
    }

    /// Is `ip` the broadcast address of one of this host's subnets?
    pub(crate) fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.ip_addrs()
            .iter()
            .any(|a| a.prefix_len < 31 && a.broadcast == ip)
    }

    /// `neigh_resolve_output()`: the entry must be usable (`neigh_event_send`
    /// may queue the packet and start resolution); then the header from its
    /// address.
    pub(crate) fn neigh_resolve_output(&mut self, skb: Skb, k: NeighKey) {
        self.tracer.skb(self.now, "neigh_resolve_output", &skb);
        let Some(skb) = self.neigh_event_send(k, skb) else {
            return;
        };
        let dev_mac = self.dev(k.0).map(|d| d.mac()).ok();
        let hh = self.neigh.get_mut(k).and_then(|n| {
            if n.hh.is_none() {
                // neigh_hh_init().
                n.hh = n.ha.zip(dev_mac).map(|(dst, src)| eth_hh(dst, src));
            }
            n.hh
        });
        match hh {
            Some(hh) => self.neigh_hh_output(skb, k.0, &hh),
            None => self.neigh_drop(skb, DropReason::NeighFailed),
        }
    }

    /// `neigh_hh_output()`: push the cached header and `dev_queue_xmit`.
    fn neigh_hh_output(&mut self, mut skb: Skb, dev: IfIndex, hh: &[u8; ETH_HLEN]) {
        if skb.cow_head(ETH_HLEN).is_err() {
            self.neigh_drop(skb, DropReason::Nomem);
            return;
        }
        match skb.push(ETH_HLEN) {
            Ok(h) => h.copy_from_slice(hh),
            Err(_) => {
                self.neigh_drop(skb, DropReason::Nomem);
                return;
            }
        }
        let _ = self.dev_queue_xmit_on(skb, dev);
    }
}
