//! 802.1Q VLAN devices (`net/8021q`): the VLAN branch of seed ingress step 8
//! ("if the skb is VLAN-tagged and a VLAN device exists for it, redirect the
//! packet to that device") and their transmit path.
//!
//! A VLAN device sits on a real device with a VLAN id. Received packets
//! whose tag (in the skb, after untagging) matches go round
//! `__netif_receive_skb_core` again as packets of the VLAN device
//! (`vlan_do_receive`). Sent packets get the tag — in the skb for a real
//! device that inserts tags itself, else written into the frame — and go
//! out through the real device's `dev_queue_xmit`
//! (`vlan_dev_hard_start_xmit`).

use super::{DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb, VlanInfo};
use crate::stack::{devm, Stack};

/// A VLAN device's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanDev {
    /// The device the tags travel on.
    pub real: IfIndex,
    /// 1..=4094.
    pub vid: u16,
    /// 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub proto: u16,
}

impl Stack {
    /// The VLAN device on `real` for `tag`, if one exists (`vlan_find_dev`).
    pub(crate) fn vlan_find_dev(&self, real: IfIndex, tag: VlanInfo) -> Option<IfIndex> {
        self.devices().find_map(|d| match &d.kind {
            DevKind::Vlan(v) if v.real == real && v.vid == tag.vid() && v.proto == tag.proto => {
                Some(d.ifindex)
            }
            _ => None,
        })
    }

    /// `vlan_do_receive()`: the packet becomes the VLAN device's, its tag is
    /// consumed, and a frame for the VLAN device's MAC is for this host.
    pub(crate) fn vlan_do_receive(&mut self, skb: &mut Skb, vdev: IfIndex) {
        self.tracer.skb(self.now, "vlan_do_receive", skb);
        let Ok(d) = devm(&mut self.devs, vdev) else {
            return;
        };
        let dst_is_ours = skb
            .mac_header_bytes()
            .get(..6)
            .is_some_and(|m| m == d.mac.as_bytes());
        if skb.meta.pkt_type == PacketType::OtherHost && dst_is_ours {
            skb.meta.pkt_type = PacketType::Host;
        }
        if !d.flags.up {
            // Linux frees it; the next round finds no device and drops it.
            skb.meta.ingress_dev = None;
            return;
        }
        d.stats.rx_packets += 1;
        d.stats.rx_bytes += (skb.len() + skb.mac_len().unwrap_or(14)) as u64;
        if skb.meta.pkt_type == PacketType::Multicast {
            d.stats.multicast += 1;
        }
        skb.meta.vlan = None;
        skb.meta.ingress_dev = Some(vdev);
    }

    /// `vlan_dev_hard_start_xmit()`: tag the packet and send it on the real
    /// device.
    pub(crate) fn vlan_dev_hard_start_xmit(&mut self, vdev: IfIndex, mut skb: Skb) {
        let (v, len) = match self.dev(vdev).map(|d| &d.kind) {
            Ok(DevKind::Vlan(v)) => (*v, skb.len()),
            _ => {
                self.kfree_skb(skb, DropReason::DevReady);
                return;
            }
        };
        let tci = v.vid | (((skb.meta.priority & 7) as u16) << 13);
        let tag = VlanInfo {
            proto: v.proto,
            tci,
        };
        let offload = self.dev(v.real).is_ok_and(|r| r.flags.vlan_tx_offload);
        if offload {
            skb.meta.vlan = Some(tag);
        } else if super::nic::vlan_insert_tag(&mut skb, tag).is_err() {
            self.kfree_skb(skb, DropReason::Nomem);
            return;
        }
        if let Ok(d) = devm(&mut self.devs, vdev) {
            d.stats.tx_packets += 1;
            d.stats.tx_bytes += len as u64;
        }
        let _ = self.dev_queue_xmit_on(skb, v.real);
    }
}
