//! Devices: seed ingress steps 1–8 and egress step 7 (`net/core/dev.c` and
//! the drivers beneath it).
//!
//! | file | Linux | stage |
//! |---|---|---|
//! | `nic.rs` | a NIC and its driver | MAC filter, FCS, rx/tx descriptor rings ("DMA"), interrupt |
//! | `napi.rs` | NAPI, `net_rx_action` | top half, bottom half, budget |
//! | `rx.rs` | `netif_receive_skb`, `__netif_receive_skb_core` | VLAN untag, taps, tc ingress, VLAN devices, rx_handler, L3 dispatch |
//! | `tx.rs` | `dev_queue_xmit`, `__qdisc_run`, `dev_hard_start_xmit` | tc egress, qdisc, driver xmit, tx completion |
//! | `taps.rs` | `ptype_all` / `ptype_base` packet sockets | taps (capture, queues) |
//! | `vlan.rs`, `veth.rs`, `loopback.rs` | `net/8021q`, `drivers/net/veth.c`, `loopback.c` | virtual devices |
//! | `bridge.rs`, `bond.rs` | `net/bridge`, `drivers/net/bonding` | masters' `rx_handler` and xmit |
//! | `link.rs` | rtnetlink (`ip link`) | creating and configuring devices |

pub mod bond;
pub mod bridge;
pub(crate) mod gro;
pub mod link;
pub mod loopback;
pub mod napi;
pub mod nic;
pub mod rx;
pub mod stats;
pub mod taps;
pub mod tx;
pub mod veth;
pub mod vlan;

use core::fmt;

use netpath_wire::ethernet::EthernetAddress;

use crate::sched::tc::TcChain;
use crate::sched::Qdisc;
use crate::skb::Skb;

pub use stats::{DevStats, SoftnetStats};

/// A device's interface index, as `ip link` shows it (1 is loopback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfIndex(pub u32);

impl fmt::Display for IfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}", self.0)
    }
}

/// `IFF_*` flags and feature bits that matter on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevFlags {
    /// IFF_UP (administratively up).
    pub up: bool,
    /// Carrier (`IFF_LOWER_UP`): the link is connected.
    pub carrier: bool,
    /// IFF_PROMISC.
    pub promisc: bool,
    /// IFF_ALLMULTI.
    pub allmulti: bool,
    /// NETIF_F_HW_VLAN_CTAG_RX: the NIC strips the tag into the skb.
    pub vlan_rx_offload: bool,
    /// NETIF_F_HW_VLAN_CTAG_TX: the NIC inserts the tag from the skb.
    pub vlan_tx_offload: bool,
}

/// What a device is.
#[derive(Debug)]
pub enum DevKind {
    /// A (simulated) Ethernet NIC with its driver.
    Nic(Box<nic::Nic>),
    Loopback,
    Vlan(vlan::VlanDev),
    Bridge(Box<bridge::Bridge>),
    Bond(Box<bond::Bond>),
    Veth(veth::Veth),
    /// An IP-in-IP tunnel (`ipip.c`).
    Ipip(crate::ipv4::ipip::IpipTunnel),
}

impl DevKind {
    /// The name `ip -d link` gives the kind.
    pub fn name(&self) -> &'static str {
        match self {
            DevKind::Nic(_) => "ether",
            DevKind::Loopback => "loopback",
            DevKind::Vlan(_) => "vlan",
            DevKind::Bridge(_) => "bridge",
            DevKind::Bond(_) => "bond",
            DevKind::Veth(_) => "veth",
            DevKind::Ipip(_) => "ipip",
        }
    }
}

/// `struct net_device`.
#[derive(Debug)]
pub struct Device {
    pub(crate) name: String,
    pub(crate) ifindex: IfIndex,
    pub(crate) kind: DevKind,
    pub(crate) mac: EthernetAddress,
    pub(crate) mtu: u32,
    pub(crate) flags: DevFlags,
    /// Multicast addresses the NIC filter lets in (`ip maddr`).
    pub(crate) mc_list: Vec<EthernetAddress>,
    /// The bridge or bond this device is enslaved to.
    pub(crate) master: Option<IfIndex>,
    pub(crate) stats: DevStats,
    /// The root qdisc; `None` is `noqueue` (virtual devices).
    pub(crate) qdisc: Option<Box<dyn Qdisc>>,
    /// Packets the driver handed back, sent before the qdisc is dequeued
    /// again (`dev_requeue_skb`): one, or the rest of a segmented GSO skb.
    pub(crate) requeued: std::collections::VecDeque<Skb>,
    /// `__QUEUE_STATE_DRV_XOFF`: the driver stopped the queue (tx ring full).
    pub(crate) queue_stopped: bool,
    /// NETIF_F_GSO (`ethtool -K DEV gso`): TCP may hand this device GSO
    /// skbs, segmented just before its driver. On by default, as in Linux.
    pub(crate) gso: bool,
    pub(crate) tx_queue_len: u32,
    pub(crate) tc_ingress: Option<TcChain>,
    pub(crate) tc_egress: Option<TcChain>,
}

impl Device {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ifindex(&self) -> IfIndex {
        self.ifindex
    }
    pub fn kind(&self) -> &DevKind {
        &self.kind
    }
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }
    pub fn mtu(&self) -> u32 {
        self.mtu
    }
    /// Whether TCP may send GSO skbs through this device.
    pub fn gso(&self) -> bool {
        self.gso
    }
    pub fn flags(&self) -> DevFlags {
        self.flags
    }
    pub fn master(&self) -> Option<IfIndex> {
        self.master
    }
    pub fn stats(&self) -> &DevStats {
        &self.stats
    }
    pub fn qdisc(&self) -> Option<&dyn Qdisc> {
        self.qdisc.as_deref()
    }
    pub fn is_queue_stopped(&self) -> bool {
        self.queue_stopped
    }
    pub fn multicast_list(&self) -> &[EthernetAddress] {
        &self.mc_list
    }
    /// Up and with carrier: `netif_running() && netif_carrier_ok()`.
    pub fn is_operational(&self) -> bool {
        self.flags.up && self.flags.carrier
    }
    pub fn nic(&self) -> Option<&nic::Nic> {
        match &self.kind {
            DevKind::Nic(n) => Some(n),
            _ => None,
        }
    }
    pub(crate) fn nic_mut(&mut self) -> Option<&mut nic::Nic> {
        match &mut self.kind {
            DevKind::Nic(n) => Some(n),
            _ => None,
        }
    }

    /// Would the NIC's address filter accept a frame for `dst`?
    pub(crate) fn mac_filter_accepts(&self, dst: EthernetAddress) -> bool {
        self.flags.promisc
            || dst == self.mac
            || dst.is_broadcast()
            || (dst.is_multicast() && (self.flags.allmulti || self.mc_list.contains(&dst)))
    }

    /// One `ip link show` line.
    pub fn render(&self) -> String {
        let mut fl = Vec::new();
        if self.flags.up {
            fl.push("UP");
        }
        if self.flags.promisc {
            fl.push("PROMISC");
        }
        if self.flags.up && self.flags.carrier {
            fl.push("LOWER_UP");
        }
        let state = match (self.flags.up, self.flags.carrier) {
            (true, true) => "UP",
            (true, false) => "DOWN",
            _ => "DOWN",
        };
        let master = self
            .master
            .map(|m| format!(" master {m}"))
            .unwrap_or_default();
        let q = self.qdisc.as_ref().map_or("noqueue", |q| q.kind());
        format!(
            "{}: {}: <{}> mtu {} qdisc {q}{master} state {state} qlen {}\n    link/{} {}",
            self.ifindex.0,
            self.name,
            fl.join(","),
            self.mtu,
            self.tx_queue_len,
            self.kind.name(),
            self.mac
        )
    }
}

/// Why a device operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevError {
    NoSuchDevice(IfIndex),
    /// A device with that name exists (`EEXIST`).
    NameInUse(String),
    /// Names are 1–15 bytes without '/', ':' or whitespace (`IFNAMSIZ`).
    BadName(String),
    /// The operation needs another kind of device.
    WrongKind {
        dev: IfIndex,
        expected: &'static str,
    },
    /// Already enslaved to a master (`EBUSY`).
    AlreadyEnslaved {
        dev: IfIndex,
        master: IfIndex,
    },
    /// Enslaving would make a loop (`ELOOP`).
    Loop(IfIndex),
    /// MTU outside 68..=65535 (or the device's limits) (`EINVAL`).
    BadMtu(u32),
    /// VLAN id outside 1..=4094, or that VLAN exists already.
    BadVlan {
        vid: u16,
    },
    /// Ring sizes and similar parameters out of range.
    BadParam(&'static str),
}

impl fmt::Display for DevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevError::NoSuchDevice(i) => write!(f, "no such device {i}"),
            DevError::NameInUse(n) => write!(f, "device name {n:?} is in use"),
            DevError::BadName(n) => write!(f, "invalid device name {n:?}"),
            DevError::WrongKind { dev, expected } => write!(f, "{dev} is not a {expected} device"),
            DevError::AlreadyEnslaved { dev, master } => {
                write!(f, "{dev} is already enslaved to {master}")
            }
            DevError::Loop(d) => write!(f, "enslaving {d} would make a loop"),
            DevError::BadMtu(m) => write!(f, "invalid MTU {m}"),
            DevError::BadVlan { vid } => write!(f, "invalid or duplicate VLAN id {vid}"),
            DevError::BadParam(p) => write!(f, "invalid parameter: {p}"),
        }
    }
}

impl std::error::Error for DevError {}
