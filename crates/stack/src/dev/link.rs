//! Creating and configuring devices: what `ip link`, `ip maddr`, `tc qdisc`
//! and `tc filter` do through rtnetlink.

use netpath_wire::ethernet::EthernetAddress;

use super::bond::{Bond, BondMode};
use super::bridge::Bridge;
use super::nic::{Nic, NicConfig};
use super::veth::Veth;
use super::vlan::VlanDev;
use super::{DevError, DevFlags, DevKind, DevStats, Device, IfIndex};
use crate::sched::pfifo_fast::PfifoFast;
use crate::sched::tc::{TcChain, TcDirection, TcFilter};
use crate::sched::{Qdisc, QdiscCtx};
use crate::stack::{devm, Stack};

/// Linux's default `txqueuelen` for Ethernet devices.
pub const DEFAULT_TX_QUEUE_LEN: u32 = 1000;

fn check_name(name: &str) -> Result<(), DevError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(DevError::BadName(name.to_string()))
    }
}

impl Stack {
    pub(crate) fn register_netdevice(
        &mut self,
        name: &str,
        kind: DevKind,
        mac: EthernetAddress,
        mtu: u32,
    ) -> Result<IfIndex, DevError> {
        check_name(name)?;
        if self.dev_by_name(name).is_some() {
            return Err(DevError::NameInUse(name.to_string()));
        }
        let ifindex = IfIndex(self.devs.len() as u32);
        let is_nic = matches!(kind, DevKind::Nic(_));
        let mut flags = DevFlags {
            carrier: true,
            ..DevFlags::default()
        };
        if let DevKind::Nic(n) = &kind {
            flags.vlan_rx_offload = n.cfg.vlan_rx_offload;
            flags.vlan_tx_offload = n.cfg.vlan_tx_offload;
        }
        let qdisc: Option<Box<dyn Qdisc>> = if is_nic {
            PfifoFast::new(DEFAULT_TX_QUEUE_LEN)
                .ok()
                .map(|q| Box::new(q) as Box<dyn Qdisc>)
        } else {
            None
        };
        self.devs.push(Some(Device {
            name: name.to_string(),
            ifindex,
            kind,
            mac,
            mtu,
            flags,
            mc_list: Vec::new(),
            master: None,
            stats: DevStats::default(),
            qdisc,
            requeued: Default::default(),
            gso: true,
            queue_stopped: false,
            tx_queue_len: if is_nic { DEFAULT_TX_QUEUE_LEN } else { 0 },
            tc_ingress: None,
            tc_egress: None,
        }));
        self.tracer
            .event(self.now, "register_netdevice", Some(ifindex));
        Ok(ifindex)
    }

    /// `lo`, ifindex 1, up.
    pub(crate) fn add_loopback(&mut self) {
        if let Ok(i) =
            self.register_netdevice("lo", DevKind::Loopback, EthernetAddress::ZERO, 65536)
        {
            let _ = self.set_up(i, true);
        }
    }

    /// A simulated Ethernet NIC (down until [`Stack::set_up`]), MTU 1500,
    /// qdisc pfifo_fast.
    pub fn add_nic(
        &mut self,
        name: &str,
        mac: EthernetAddress,
        cfg: NicConfig,
    ) -> Result<IfIndex, DevError> {
        cfg.validate()?;
        if !mac.is_unicast() {
            return Err(DevError::BadParam("a NIC's MAC address must be unicast"));
        }
        self.register_netdevice(name, DevKind::Nic(Box::new(Nic::new(cfg))), mac, 1500)
    }

    /// `ip link add link REAL name NAME type vlan id VID` (802.1Q).
    pub fn add_vlan(&mut self, name: &str, real: IfIndex, vid: u16) -> Result<IfIndex, DevError> {
        self.add_vlan_proto(name, real, vid, 0x8100)
    }

    /// As [`Stack::add_vlan`] with the TPID: 0x8100 or 0x88a8 (802.1ad).
    pub fn add_vlan_proto(
        &mut self,
        name: &str,
        real: IfIndex,
        vid: u16,
        proto: u16,
    ) -> Result<IfIndex, DevError> {
        let r = self.dev(real)?;
        if !(1..=4094).contains(&vid) || (proto != 0x8100 && proto != 0x88a8) {
            return Err(DevError::BadVlan { vid });
        }
        if matches!(r.kind, DevKind::Loopback) {
            return Err(DevError::WrongKind {
                dev: real,
                expected: "Ethernet",
            });
        }
        let tag = crate::skb::VlanInfo { proto, tci: vid };
        if self.vlan_find_dev(real, tag).is_some() {
            return Err(DevError::BadVlan { vid });
        }
        let (mac, mtu) = (r.mac, r.mtu);
        self.register_netdevice(name, DevKind::Vlan(VlanDev { real, vid, proto }), mac, mtu)
    }

    /// `ip link add A type veth peer name B`.
    pub fn add_veth(
        &mut self,
        a: &str,
        mac_a: EthernetAddress,
        b: &str,
        mac_b: EthernetAddress,
    ) -> Result<(IfIndex, IfIndex), DevError> {
        check_name(b)?;
        if a == b || self.dev_by_name(b).is_some() {
            return Err(DevError::NameInUse(b.to_string()));
        }
        let ia = IfIndex(self.devs.len() as u32);
        let ib = IfIndex(ia.0 + 1);
        self.register_netdevice(a, DevKind::Veth(Veth { peer: ib }), mac_a, 1500)?;
        self.register_netdevice(b, DevKind::Veth(Veth { peer: ia }), mac_b, 1500)?;
        Ok((ia, ib))
    }

    /// `ip link add NAME type bridge`.
    pub fn add_bridge(&mut self, name: &str, mac: EthernetAddress) -> Result<IfIndex, DevError> {
        self.register_netdevice(name, DevKind::Bridge(Box::new(Bridge::new())), mac, 1500)
    }

    /// `ip link add NAME type bond mode MODE`.
    pub fn add_bond(
        &mut self,
        name: &str,
        mac: EthernetAddress,
        mode: BondMode,
    ) -> Result<IfIndex, DevError> {
        self.register_netdevice(name, DevKind::Bond(Box::new(Bond::new(mode))), mac, 1500)
    }

    /// Makes `port` a slave of `master` (`ip link set PORT master M`).
    pub(crate) fn enslave(&mut self, master: IfIndex, port: IfIndex) -> Result<(), DevError> {
        if master == port {
            return Err(DevError::Loop(port));
        }
        // A master cannot be enslaved under one of its own slaves.
        let mut m = Some(master);
        while let Some(x) = m {
            if x == port {
                return Err(DevError::Loop(port));
            }
            m = self.dev(x)?.master;
        }
        let p = self.dev(port)?;
        if let Some(existing) = p.master {
            return Err(DevError::AlreadyEnslaved {
                dev: port,
                master: existing,
            });
        }
        if matches!(p.kind, DevKind::Loopback) {
            return Err(DevError::WrongKind {
                dev: port,
                expected: "Ethernet",
            });
        }
        devm(&mut self.devs, port)?.master = Some(master);
        Ok(())
    }

    #[allow(dead_code)] // for bridge_del_port / bond_release
    pub(crate) fn release(&mut self, master: IfIndex, port: IfIndex) -> Result<(), DevError> {
        let p = devm(&mut self.devs, port)?;
        if p.master != Some(master) {
            return Err(DevError::BadParam("not a slave of that master"));
        }
        p.master = None;
        Ok(())
    }

    /// `ip link set DEV up|down`. Bringing a NIC up posts its rx buffers;
    /// bringing any device down drops what its qdisc holds.
    pub fn set_up(&mut self, dev: IfIndex, up: bool) -> Result<(), DevError> {
        self.ip.route_gen += 1;
        let d = devm(&mut self.devs, dev)?;
        if d.flags.up == up {
            return Ok(());
        }
        d.flags.up = up;
        let is_nic = d.nic().is_some();
        self.tracer.event(
            self.now,
            if up { "dev_open" } else { "dev_close" },
            Some(dev),
        );
        if up && is_nic {
            self.nic_open(dev);
        }
        if !up {
            self.qdisc_reset(dev);
            // arp_ifdown(): the device's neighbours go with it.
            let _ = self.neigh_ifdown(dev);
        }
        Ok(())
    }

    /// Plugs or unplugs a NIC's cable (`netif_carrier_on/off`).
    pub fn set_carrier(&mut self, dev: IfIndex, carrier: bool) -> Result<(), DevError> {
        self.ip.route_gen += 1;
        let d = devm(&mut self.devs, dev)?;
        d.flags.carrier = carrier;
        self.tracer.event(
            self.now,
            if carrier {
                "netif_carrier_on"
            } else {
                "netif_carrier_off"
            },
            Some(dev),
        );
        Ok(())
    }

    /// `ip link set DEV promisc on|off`.
    pub fn set_promisc(&mut self, dev: IfIndex, on: bool) -> Result<(), DevError> {
        devm(&mut self.devs, dev)?.flags.promisc = on;
        Ok(())
    }

    /// `ip link set DEV allmulticast on|off`.
    pub fn set_allmulti(&mut self, dev: IfIndex, on: bool) -> Result<(), DevError> {
        devm(&mut self.devs, dev)?.flags.allmulti = on;
        Ok(())
    }

    /// `ip maddr add MAC dev DEV`.
    pub fn add_multicast(&mut self, dev: IfIndex, mac: EthernetAddress) -> Result<(), DevError> {
        if !mac.is_multicast() || mac.is_broadcast() {
            return Err(DevError::BadParam("not a multicast address"));
        }
        let d = devm(&mut self.devs, dev)?;
        if !d.mc_list.contains(&mac) {
            d.mc_list.push(mac);
        }
        Ok(())
    }

    /// `ip maddr del MAC dev DEV`.
    pub fn del_multicast(&mut self, dev: IfIndex, mac: EthernetAddress) -> Result<(), DevError> {
        devm(&mut self.devs, dev)?.mc_list.retain(|m| *m != mac);
        Ok(())
    }

    /// `ip link set DEV mtu N` (68..=65535; loopback up to 65536).
    /// `ethtool -K DEV gso on|off`: whether TCP sends GSO skbs through
    /// `dev` (they are cut into MTU-sized segments just before its driver).
    pub fn set_gso(&mut self, dev: IfIndex, on: bool) -> Result<(), DevError> {
        devm(&mut self.devs, dev)?.gso = on;
        Ok(())
    }

    /// `ethtool -K DEV gro on|off` on a NIC: whether its NAPI poll merges
    /// consecutive TCP segments (`dev::gro`). What GRO holds goes up first.
    pub fn set_gro(&mut self, dev: IfIndex, on: bool) -> Result<(), DevError> {
        let nic = devm(&mut self.devs, dev)?
            .nic_mut()
            .ok_or(DevError::WrongKind {
                dev,
                expected: "nic",
            })?;
        nic.cfg.gro = on;
        self.napi_gro_flush();
        Ok(())
    }

    pub fn set_mtu(&mut self, dev: IfIndex, mtu: u32) -> Result<(), DevError> {
        self.ip.route_gen += 1;
        let d = devm(&mut self.devs, dev)?;
        let max = if matches!(d.kind, DevKind::Loopback) {
            65536
        } else {
            65535
        };
        if !(68..=max).contains(&mtu) {
            return Err(DevError::BadMtu(mtu));
        }
        d.mtu = mtu;
        Ok(())
    }

    /// `ip link set DEV address MAC`.
    pub fn set_mac(&mut self, dev: IfIndex, mac: EthernetAddress) -> Result<(), DevError> {
        if !mac.is_unicast() {
            return Err(DevError::BadParam("a device's MAC address must be unicast"));
        }
        devm(&mut self.devs, dev)?.mac = mac;
        Ok(())
    }

    /// `tc qdisc replace dev DEV root …`: what the old qdisc held is dropped.
    pub fn set_qdisc(&mut self, dev: IfIndex, qdisc: Box<dyn Qdisc>) -> Result<(), DevError> {
        self.qdisc_reset(dev);
        devm(&mut self.devs, dev)?.qdisc = Some(qdisc);
        Ok(())
    }

    /// `tc qdisc del dev DEV root` on a virtual device: back to noqueue.
    pub fn set_noqueue(&mut self, dev: IfIndex) -> Result<(), DevError> {
        self.qdisc_reset(dev);
        devm(&mut self.devs, dev)?.qdisc = None;
        Ok(())
    }

    fn qdisc_reset(&mut self, dev: IfIndex) {
        let mut ctx = QdiscCtx::new(self.now);
        if let Ok(d) = devm(&mut self.devs, dev) {
            if let Some(q) = d.qdisc.as_mut() {
                q.reset(&mut ctx);
            }
            for s in d.requeued.drain(..) {
                ctx.to_free.push((s, crate::drop::DropReason::QdiscDrop));
            }
        }
        for (s, r) in ctx.to_free {
            self.kfree_skb(s, r);
        }
    }

    /// `tc -s qdisc show dev DEV`.
    pub fn qdisc_show(&self, dev: IfIndex) -> Result<String, DevError> {
        let d = self.dev(dev)?;
        Ok(match d.qdisc() {
            Some(q) => crate::sched::describe(q, &d.name),
            None => format!("qdisc noqueue 0: dev {} root refcnt 2", d.name),
        })
    }

    /// `tc filter add dev DEV ingress|egress …` (creating clsact on first use).
    pub fn tc_add_filter(
        &mut self,
        dev: IfIndex,
        dir: TcDirection,
        filter: TcFilter,
    ) -> Result<(), DevError> {
        let d = devm(&mut self.devs, dev)?;
        let chain = match dir {
            TcDirection::Ingress => &mut d.tc_ingress,
            TcDirection::Egress => &mut d.tc_egress,
        };
        chain.get_or_insert_with(TcChain::new).add(filter);
        Ok(())
    }

    /// The device's tc chain for `dir`, if any filter was added.
    pub fn tc_chain(&self, dev: IfIndex, dir: TcDirection) -> Result<Option<&TcChain>, DevError> {
        let d = self.dev(dev)?;
        Ok(match dir {
            TcDirection::Ingress => d.tc_ingress.as_ref(),
            TcDirection::Egress => d.tc_egress.as_ref(),
        })
    }

    /// `ip -s -s link show DEV`.
    pub fn link_show(&self, dev: IfIndex) -> Result<String, DevError> {
        let d = self.dev(dev)?;
        Ok(format!("{}\n{}", d.render(), d.stats.render()))
    }

    /// Timers due at `now`: qdisc watchdogs, bridge FDB ageing, bond link
    /// monitoring. Returns whether any ran.
    pub(crate) fn run_timers(&mut self) -> bool {
        let mut any = self.qdisc_watchdogs();
        let now = self.now;
        let due: Vec<(IfIndex, bool)> = self
            .devices()
            .filter_map(|d| match &d.kind {
                DevKind::Bridge(b) if b.next_timer().is_some_and(|t| t <= now) => {
                    Some((d.ifindex, true))
                }
                DevKind::Bond(b) if b.next_timer().is_some_and(|t| t <= now) => {
                    Some((d.ifindex, false))
                }
                _ => None,
            })
            .collect();
        for (dev, is_bridge) in due {
            any = true;
            if is_bridge {
                self.br_timer(dev);
            } else {
                self.bond_timer(dev);
            }
        }
        any
    }

    /// The next timer of one device (bridge ageing, bond monitor).
    pub(crate) fn dev_timer_deadline(&self, d: &Device) -> Option<crate::time::Instant> {
        match &d.kind {
            DevKind::Bridge(b) => b.next_timer(),
            DevKind::Bond(b) => b.next_timer(),
            _ => None,
        }
    }
}
