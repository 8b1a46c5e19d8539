//! veth pairs (`drivers/net/veth.c`): what one end sends, the other
//! receives, through the backlog (`veth_xmit` → `__dev_forward_skb` →
//! `netif_rx`).

use super::{DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::{devm, Stack};

/// One end of a veth pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Veth {
    pub peer: IfIndex,
}

impl Stack {
    /// `veth_xmit()`.
    pub(crate) fn veth_xmit(&mut self, dev: IfIndex, skb: Skb) {
        let peer = match self.dev(dev).map(|d| &d.kind) {
            Ok(DevKind::Veth(v)) => v.peer,
            _ => {
                self.kfree_skb(skb, DropReason::DevReady);
                return;
            }
        };
        let len = skb.len();
        let peer_ok = self
            .dev(peer)
            .map(|p| (p.flags.up, p.mtu as usize + 14 + 4, p.mac));
        match peer_ok {
            Ok((true, max, mac)) if len <= max => {
                self.skb_tx_timestamp(&skb);
                if let Ok(d) = devm(&mut self.devs, dev) {
                    d.stats.tx_packets += 1;
                    d.stats.tx_bytes += len as u64;
                }
                self.dev_forward_skb(skb, peer, mac);
            }
            _ => {
                if let Ok(d) = devm(&mut self.devs, dev) {
                    d.stats.tx_dropped += 1;
                }
                self.kfree_skb(skb, DropReason::DevReady);
            }
        }
    }

    /// `__dev_forward_skb()` + `netif_rx()`: the packet is scrubbed of
    /// this host's metadata and received on `to` as from a wire.
    pub(crate) fn dev_forward_skb(
        &mut self,
        mut skb: Skb,
        to: IfIndex,
        to_mac: netpath_wire::ethernet::EthernetAddress,
    ) {
        let vlan = skb.meta.vlan;
        let priority = skb.meta.priority;
        // A partial checksum stays partial: the receiver knows it good
        // (`skb_scrub_packet` keeps `ip_summed`).
        let summed = skb.meta.ip_summed;
        skb.meta = Default::default();
        skb.meta.vlan = vlan;
        skb.meta.priority = priority;
        skb.meta.ip_summed = summed;
        skb.meta.set_tstamp(Some(self.now));
        let len = skb.len();
        if super::nic::eth_type_trans(&mut skb, to_mac).is_err() {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        skb.meta.ingress_dev = Some(to);
        if let Ok(d) = devm(&mut self.devs, to) {
            d.stats.rx_packets += 1;
            d.stats.rx_bytes += len as u64;
        }
        self.netif_rx(skb);
    }
}
