//! `netif_receive_skb`: seed ingress step 8 (`net/core/dev.c`,
//! `__netif_receive_skb_core`).
//!
//! In the seed's order: the VLAN tag is taken out of the frame into the skb
//! (unless the NIC did it); the network header is set; every tap gets a
//! clone; tc ingress runs (and may drop or redirect); a tagged packet goes
//! to its VLAN device if there is one (processing starts again as that
//! device's packet); a device enslaved to a bridge or bond hands the packet
//! to its master's `rx_handler`; then the L3 protocol handler by ethertype.
//! A packet nothing wants is dropped with `UNHANDLED_PROTO`.

use super::IfIndex;
use crate::drop::DropReason;
use crate::sched::tc::{TcDirection, TcVerdict};
use crate::skb::{PacketType, Skb, VlanInfo};
use crate::stack::{devm, Stack, RECURSION_LIMIT};

/// What a master's `rx_handler` did with a packet (`rx_handler_result_t`).
#[derive(Debug)]
pub enum RxHandlerResult {
    /// RX_HANDLER_CONSUMED: taken (forwarded, dropped, queued).
    Consumed,
    /// RX_HANDLER_ANOTHER: process again as a packet of `skb.meta.ingress_dev`
    /// (e.g. the bridge or bond device).
    Another(Skb),
    /// RX_HANDLER_EXACT: deliver only to handlers bound to this exact device.
    Exact(Skb),
    /// RX_HANDLER_PASS: carry on as if there were no master.
    Pass(Skb),
}

impl Stack {
    /// `netif_receive_skb()`: the driver (or the backlog) hands a packet to
    /// the stack. `skb.data` is past the Ethernet header, the MAC header is
    /// set, and `skb.meta.ingress_dev` is the receiving device.
    pub fn netif_receive_skb(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "netif_receive_skb", &skb);
        if self.recursion >= RECURSION_LIMIT {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        }
        self.recursion += 1;
        self.netif_receive_skb_core(skb);
        self.recursion -= 1;
    }

    /// `__netif_receive_skb_core()`.
    fn netif_receive_skb_core(&mut self, mut skb: Skb) {
        let now = self.now;
        let mut deliver_exact = false;
        // "another_round": each pass handles the packet as a packet of its
        // current device; VLAN devices and masters send it round again.
        for _round in 0..RECURSION_LIMIT {
            let Some(dev) = skb.meta.ingress_dev else {
                self.kfree_skb(skb, DropReason::DevReady);
                return;
            };
            skb.reset_network_header();
            skb.reset_transport_header();

            // VLAN untag in software (skipped when the NIC did it).
            if is_vlan_proto(skb.meta.protocol) && skb.meta.vlan.is_none() {
                match skb_vlan_untag(&mut skb) {
                    Ok(()) => self.tracer.skb(now, "skb_vlan_untag", &skb),
                    Err(()) => {
                        self.kfree_skb(skb, DropReason::PktTooSmall);
                        return;
                    }
                }
            }

            // Taps (ptype_all): a clone each.
            self.deliver_taps_all(&skb, dev, false);

            // tc ingress.
            match self.sch_handle_ingress(skb, dev) {
                Some(s) => skb = s,
                None => return,
            }

            // A tagged packet goes to its VLAN device, if one exists.
            if let Some(tag) = skb.meta.vlan {
                if let Some(vdev) = self.vlan_find_dev(dev, tag) {
                    self.vlan_do_receive(&mut skb, vdev);
                    continue;
                }
            }

            // The master's rx_handler.
            let master = self.dev(dev).ok().and_then(|d| d.master);
            if let Some(m) = master {
                match self.rx_handler(m, skb) {
                    RxHandlerResult::Consumed => return,
                    RxHandlerResult::Another(s) => {
                        skb = s;
                        continue;
                    }
                    RxHandlerResult::Exact(s) => {
                        skb = s;
                        deliver_exact = true;
                    }
                    RxHandlerResult::Pass(s) => skb = s,
                }
            }

            // A tag with no VLAN device: not for this host (a priority tag,
            // VLAN 0, is just removed).
            if let Some(tag) = skb.meta.vlan.take() {
                if tag.vid() != 0 {
                    skb.meta.pkt_type = PacketType::OtherHost;
                }
            }

            self.deliver_l3(skb, dev, deliver_exact);
            return;
        }
        self.kfree_skb(skb, DropReason::NotSpecified);
    }

    /// L3 dispatch by `skb.meta.protocol` (`deliver_ptype_list_skb` over
    /// `ptype_base`): protocol handlers registered on the stack (IPv4 and
    /// ARP come with the IPv4 layer) and protocol taps.
    fn deliver_l3(&mut self, skb: Skb, dev: IfIndex, exact: bool) {
        // The stack's own handlers (not bound to a device: not for exact
        // delivery); protocol taps of the same type get clones first.
        if !exact {
            let handler = match skb.meta.protocol {
                ETH_P_IP => Some(true),
                ETH_P_ARP => Some(false),
                _ => None,
            };
            if let Some(is_ip) = handler {
                self.deliver_ptype_base_clones(&skb, dev);
                if is_ip {
                    self.ip_rcv(skb);
                } else {
                    self.arp_rcv(skb);
                }
                return;
            }
        }
        let Some(skb) = self.deliver_ptype_base(skb, dev, exact) else {
            return;
        };
        // As Linux: a packet for a device not designated to receive (an
        // inactive bond slave) counts as rx_nohandler, any other as rx_dropped.
        if let Ok(d) = devm(&mut self.devs, dev) {
            if exact {
                d.stats.rx_nohandler += 1;
            } else {
                d.stats.rx_dropped += 1;
            }
        }
        self.kfree_skb(skb, DropReason::UnhandledProto);
    }

    /// `sch_handle_ingress()`: tc ingress on `dev`. Returns the packet if it
    /// continues up this device's path.
    fn sch_handle_ingress(&mut self, mut skb: Skb, dev: IfIndex) -> Option<Skb> {
        match self.tc_classify(&mut skb, dev, TcDirection::Ingress) {
            None | Some(TcVerdict::Pass) => Some(skb),
            Some(TcVerdict::Drop) => {
                self.kfree_skb(skb, DropReason::TcIngress);
                None
            }
            Some(TcVerdict::Redirect(to, dir)) => {
                self.tc_send(skb, to, dir, true);
                None
            }
        }
    }

    /// Runs `dev`'s tc chain for `hook` on the packet and sends the clones
    /// its mirror actions ask for. `None`: no chain on that hook.
    pub(crate) fn tc_classify(
        &mut self,
        skb: &mut Skb,
        dev: IfIndex,
        hook: TcDirection,
    ) -> Option<TcVerdict> {
        let mut mirrors = std::mem::take(&mut self.scratch_mirrors);
        mirrors.clear();
        let chain = devm(&mut self.devs, dev).ok().and_then(|d| match hook {
            TcDirection::Ingress => d.tc_ingress.as_mut(),
            TcDirection::Egress => d.tc_egress.as_mut(),
        });
        let verdict = chain.map(|c| c.run(skb, dev, &mut mirrors));
        if verdict.is_some() {
            let point = match hook {
                TcDirection::Ingress => "sch_handle_ingress",
                TcDirection::Egress => "sch_handle_egress",
            };
            self.tracer.skb(self.now, point, skb);
        }
        for &(to, dir) in &mirrors {
            let clone = skb.clone();
            self.tc_send(clone, to, dir, hook == TcDirection::Ingress);
        }
        mirrors.clear();
        self.scratch_mirrors = mirrors;
        verdict
    }

    /// Sends a packet tc redirected or mirrored: to `to`'s ingress (as if it
    /// arrived there, through the backlog) or egress (`dev_queue_xmit`).
    /// `from_ingress`: the packet's data is at the network header, so the
    /// MAC header is pushed back first when it goes out.
    pub(crate) fn tc_send(
        &mut self,
        mut skb: Skb,
        to: IfIndex,
        dir: TcDirection,
        from_ingress: bool,
    ) {
        if self.dev(to).is_err() {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        }
        match dir {
            TcDirection::Ingress => {
                if !from_ingress {
                    // Leaving packets hold the MAC header at data: pull it.
                    let _ = skb.pull(super::tx::mac_len_at_data(&skb));
                }
                skb.meta.ingress_dev = Some(to);
                self.netif_rx(skb);
            }
            TcDirection::Egress => {
                if from_ingress {
                    if let Some(ml) = skb.mac_len() {
                        if skb.push(ml).is_err() {
                            self.kfree_skb(skb, DropReason::NotSpecified);
                            return;
                        }
                    }
                    // A tag held in the skb stays there: the sending
                    // device writes it into the frame.
                }
                let _ = self.dev_queue_xmit_on(skb, to);
            }
        }
    }

    /// The master's `rx_handler` (`br_handle_frame`, `bond_handle_frame`).
    fn rx_handler(&mut self, master: IfIndex, skb: Skb) -> RxHandlerResult {
        let kind = self.dev(master).map(|d| d.kind.name());
        match kind {
            Ok("bridge") => self.br_handle_frame(master, skb),
            Ok("bond") => self.bond_handle_frame(master, skb),
            _ => RxHandlerResult::Pass(skb),
        }
    }
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;

fn is_vlan_proto(p: u16) -> bool {
    p == 0x8100 || p == 0x88a8
}

/// `skb_vlan_untag()`: the tag at `data` (right after the MAC addresses'
/// ethertype) moves into the skb; the protocol becomes the inner type and
/// the MAC header is rebuilt right before the new network header.
fn skb_vlan_untag(skb: &mut Skb) -> Result<(), ()> {
    let d = skb.data();
    let (Some(tci), Some(inner)) = (d.get(0..2), d.get(2..4)) else {
        return Err(());
    };
    let tci = u16::from_be_bytes([tci[0], tci[1]]);
    let inner = u16::from_be_bytes([inner[0], inner[1]]);
    let proto = skb.meta.protocol;
    // Move the 12 address bytes up over the tag so the MAC header stays
    // contiguous (skb_reorder_vlan_header).
    let mac = skb.mac_header().ok_or(())?;
    let data_off = skb.data_offset();
    if data_off < mac + 12 + 2 {
        return Err(());
    }
    skb.pull(4).map_err(|_| ())?;
    let new_mac_off = skb.data_offset() - 14;
    // Rebuild [dst src type] right before data using the bytes at `mac`.
    let mut hdr = [0u8; 14];
    let whole = skb.mac_header_bytes();
    hdr[..12].copy_from_slice(whole.get(..12).ok_or(())?);
    hdr[12..14].copy_from_slice(&inner.to_be_bytes());
    skb.push(14).map_err(|_| ())?.copy_from_slice(&hdr);
    skb.reset_mac_header();
    skb.pull(14).map_err(|_| ())?;
    debug_assert_eq!(skb.mac_header(), Some(new_mac_off));
    skb.meta.vlan = Some(VlanInfo { proto, tci });
    skb.meta.protocol = inner;
    Ok(())
}
