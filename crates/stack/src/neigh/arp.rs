//! ARP (`net/ipv4/arp.c`): `arp_rcv` / `arp_process` (ingress step 8's
//! ETH_P_ARP handler), `arp_solicit` (the neighbour table's probes) and
//! `arp_send_dst` / `arp_create` (building requests and replies).
//!
//! Received: requests for a local address (any device's with `arp_ignore`
//! 0, the receiving device's with 1) are answered with a unicast reply and
//! the requester is learned (STALE, `neigh_event_ns`); otherwise an
//! existing entry for the sender is updated: REACHABLE from a reply sent
//! to us, STALE from anything else; a second, different address within
//! `locktime` is ignored unless the packet is gratuitous. New entries from
//! unsolicited ARP need `arp_accept`.

use core::net::Ipv4Addr;

use netpath_wire::arp::{ArpPacket, ArpRepr, Operation, ETH_IPV4_LEN};
use netpath_wire::ethernet::{self, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

use super::table::{NeighKey, UpdateFlags};
use super::{NeighError, NudState};
use crate::dev::{DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;

/// `ETH_P_ARP`.
pub(crate) const ETH_P_ARP: u16 = 0x0806;

/// What `arp_send_dst` is asked to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArpSend {
    pub(crate) op: Operation,
    pub(crate) dev: IfIndex,
    /// Target protocol address.
    pub(crate) dest_ip: Ipv4Addr,
    /// Sender protocol address.
    pub(crate) src_ip: Ipv4Addr,
    /// Ethernet destination (`None`: broadcast).
    pub(crate) eth_dst: Option<EthernetAddress>,
    /// Target hardware address (`None`: zeros).
    pub(crate) target_hw: Option<EthernetAddress>,
}

impl Stack {
    /// `arp_rcv()` + `arp_process()`: the L3 handler for ETH_P_ARP (data at
    /// the ARP header).
    pub(crate) fn arp_rcv(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "arp_rcv", &skb);
        let Some(dev) = skb.meta.ingress_dev else {
            self.neigh_drop(skb, DropReason::DevReady);
            return;
        };
        let noarp = match self.dev(dev) {
            Ok(d) => matches!(d.kind(), DevKind::Loopback),
            Err(_) => {
                self.neigh_drop(skb, DropReason::DevReady);
                return;
            }
        };
        // Not ours to look at: consumed quietly, as Linux does.
        if noarp
            || matches!(
                skb.meta.pkt_type,
                PacketType::OtherHost | PacketType::Loopback
            )
        {
            self.consume_skb(skb);
            return;
        }
        let pkt = match ArpPacket::new_checked(skb.data()) {
            Ok(p) => p,
            Err(_) => {
                self.neigh_drop(skb, DropReason::PktTooSmall);
                return;
            }
        };
        let repr = ArpRepr::parse(&pkt).ok();
        let Some(arp) = repr else {
            // Wrong hardware/protocol type or address lengths.
            self.neigh_drop(skb, DropReason::NotSpecified);
            return;
        };
        if !matches!(arp.operation, Operation::Request | Operation::Reply)
            || arp.target_ip.is_multicast()
            || arp.target_ip.is_loopback()
        {
            self.neigh_drop(skb, DropReason::NotSpecified);
            return;
        }
        self.arp_process(dev, &arp, skb.meta.pkt_type);
        self.consume_skb(skb);
    }

    /// `arp_process()` on a valid Ethernet/IPv4 ARP packet.
    fn arp_process(&mut self, dev: IfIndex, arp: &ArpRepr, pkt_type: PacketType) {
        let (sip, tip, sha) = (arp.source_ip, arp.target_ip, arp.source_hw);
        let request = arp.operation == Operation::Request;
        let for_us = request && self.arp_target_is_ours(dev, tip);
        // RFC 2131 duplicate address detection: answer, learn nothing.
        if sip.is_unspecified() {
            if for_us {
                let _ = self.arp_send(ArpSend {
                    op: Operation::Reply,
                    dev,
                    dest_ip: sip,
                    src_ip: tip,
                    eth_dst: Some(sha),
                    target_hw: Some(sha),
                });
            }
            return;
        }
        if !self.arp_learnable(sip) || !sha.is_unicast() {
            return;
        }
        let k: NeighKey = (dev, sip);
        if for_us {
            // neigh_event_ns(): learn the requester (STALE), then answer;
            // no answer if it cannot be learned.
            if self.neigh_create(dev, sip, false).is_err() {
                return;
            }
            self.neigh_update(k, Some(sha), NudState::Stale, UpdateFlags::OVERRIDE);
            let _ = self.arp_send(ArpSend {
                op: Operation::Reply,
                dev,
                dest_ip: sip,
                src_ip: tip,
                eth_dst: Some(sha),
                target_hw: Some(sha),
            });
            return;
        }
        let mut exists = self.neigh.contains(k);
        let accept = self.neigh.params.arp_accept;
        let is_garp = (exists || accept)
            && sip == tip
            && (arp.operation != Operation::Reply || arp.target_hw == sha);
        if accept && !exists && (is_garp || arp.operation == Operation::Reply) {
            exists = self.neigh_create(dev, sip, false).is_ok();
        }
        if !exists {
            return;
        }
        let now = self.now;
        let override_ = is_garp
            || self.neigh.get(k).is_some_and(|n| {
                now > n
                    .updated
                    .checked_add(self.neigh.params.locktime)
                    .unwrap_or(n.updated)
            });
        // Broadcast replies and requests do not prove reachability.
        let state = if arp.operation == Operation::Reply && pkt_type == PacketType::Host {
            NudState::Reachable
        } else {
            NudState::Stale
        };
        let flags = if override_ {
            UpdateFlags::OVERRIDE
        } else {
            UpdateFlags::NONE
        };
        self.neigh_update(k, Some(sha), state, flags);
    }

    /// Would `arp_process` answer a request for `tip` on `dev`?
    fn arp_target_is_ours(&self, dev: IfIndex, tip: Ipv4Addr) -> bool {
        if self.neigh.params.arp_ignore == 0 {
            self.is_local_addr(tip)
        } else {
            self.is_dev_addr(dev, tip)
        }
    }

    /// A sender address an entry may be made for (`inet_addr_type` is
    /// RTN_UNICAST: not ours, not a broadcast, multicast or 0/8 address).
    fn arp_learnable(&self, sip: Ipv4Addr) -> bool {
        !(sip.is_multicast()
            || sip.is_broadcast()
            || sip.octets()[0] == 0
            || sip.is_loopback()
            || self.is_local_addr(sip)
            || self.is_subnet_broadcast(sip))
    }

    /// `arp_solicit()`: probe number `probes` for entry `k`. The first
    /// `ucast_probes` of a round go to the known address, then
    /// `app_probes` are left to user space (none here), the rest are
    /// broadcast. The sender address is the waiting packet's source if it
    /// is ours (`arp_announce` 0), else `inet_select_addr`.
    pub(crate) fn arp_solicit(
        &mut self,
        k: NeighKey,
        probes: u32,
        hint: Option<Ipv4Addr>,
        ha: Option<EthernetAddress>,
    ) {
        let (dev, target) = k;
        let saddr = hint
            .filter(|&s| self.is_local_addr(s))
            .or_else(|| self.inet_select_addr(dev, target))
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let p = self.neigh.params;
        let eth_dst = if probes < p.ucast_probes {
            ha
        } else if probes - p.ucast_probes < p.app_probes {
            self.tracer.event(self.now, "neigh_app_ns", Some(dev));
            return;
        } else {
            None
        };
        self.tracer
            .event_detail(self.now, "arp_solicit", Some(dev), u64::from(probes));
        let _ = self.arp_send(ArpSend {
            op: Operation::Request,
            dev,
            dest_ip: target,
            src_ip: saddr,
            eth_dst,
            target_hw: None,
        });
    }

    /// `arp_create()` + `arp_xmit()`: an Ethernet/IPv4 ARP packet from the
    /// device's address, handed to `dev_queue_xmit` (the NIC pads it).
    pub(crate) fn arp_send(&mut self, a: ArpSend) -> Result<(), NeighError> {
        let src_hw = self
            .dev(a.dev)
            .map_err(|_| NeighError::NoSuchDevice(a.dev))?
            .mac();
        let len = ethernet::HEADER_LEN + ETH_IPV4_LEN;
        let mut skb = self.pool.alloc(len + 24).map_err(|_| NeighError::NoBufs)?;
        let eth = EthernetRepr {
            src_addr: src_hw,
            dst_addr: a.eth_dst.unwrap_or(EthernetAddress::BROADCAST),
            ethertype: EtherType::ARP,
        };
        let arp = ArpRepr {
            operation: a.op,
            source_hw: src_hw,
            source_ip: a.src_ip,
            target_hw: a.target_hw.unwrap_or(EthernetAddress::ZERO),
            target_ip: a.dest_ip,
        };
        let built = skb.put(len).map_err(|_| ()).and_then(|buf| {
            let (h, body) = buf.split_at_mut(ethernet::HEADER_LEN);
            eth.emit(&mut EthernetFrame::new_unchecked(h))
                .map_err(|_| ())?;
            arp.emit(&mut ArpPacket::new_unchecked(body))
                .map_err(|_| ())
        });
        if built.is_err() || skb.set_network_header(ethernet::HEADER_LEN).is_err() {
            self.neigh_drop(skb, DropReason::NotSpecified);
            return Err(NeighError::NoBufs);
        }
        skb.meta.protocol = ETH_P_ARP;
        skb.meta.egress_dev = Some(a.dev);
        self.tracer.skb(self.now, "arp_xmit", &skb);
        let _ = self.dev_queue_xmit_on(skb, a.dev);
        Ok(())
    }
}
