//! The Linux bridge (`net/bridge`: `br_input.c`, `br_forward.c`,
//! `br_fdb.c`, `br_device.c`, `br_vlan.c`): a master whose `rx_handler`
//! (`br_handle_frame`) steals its ports' packets — seed ingress step 8,
//! "does this device have a master? let it steal the packet".
//!
//! Ingress (`br_handle_frame` → `br_handle_frame_finish`): a frame with an
//! invalid source is dropped (`MAC_INVALID_SOURCE`); link-local
//! 01:80:c2:00:00:0X frames other than the bridge group address go to the
//! port's own protocol handlers (pause frames are dropped); a frame on a
//! port that is not forwarding (port down or without carrier, bridge down)
//! is dropped. Otherwise the source is learnt (`br_fdb_update`), and by
//! destination: a local address (the bridge's or a port's) goes up as the
//! bridge device's packet (`br_pass_frame_up`, counted in the bridge's rx
//! stats); broadcast and multicast are flooded to every other forwarding
//! port and a copy goes up; a known unicast is forwarded to its port (or
//! dropped when that is the port it came from); an unknown unicast is
//! flooded (and goes up only when the bridge is promiscuous). Forwarded
//! frames are not the bridge device's: its counters do not see them.
//!
//! Egress (`br_dev_xmit`): what the host sends out of the bridge device goes
//! to the port the FDB names, or is flooded.
//!
//! Forwarding (`br_forward` → `__br_forward` → `br_dev_queue_push_xmit`):
//! the MAC header is pushed back, a VLAN tag held in the skb is written back
//! into the frame (unless VLAN filtering strips it on an untagged egress
//! port), the length is checked against the port's MTU, and the frame goes
//! out with `dev_queue_xmit` on the port.
//!
//! The FDB maps (MAC, VLAN id) to a port; entries learnt age out after
//! `ageing_time` (300 s), removed by the cleanup timer (`br_fdb_cleanup`),
//! which is armed for the earliest expiry. Linux also flushes a port's
//! entries when it stops forwarding (`br_fdb_delete_by_port` from the
//! carrier notifier); netpath has no notifier, so an entry pointing at a
//! port that is not forwarding is removed when a lookup finds it, which
//! makes the frame flood as Linux would.
//!
//! VLAN filtering (`br_vlan.c`, off by default): each port and the bridge
//! itself ("self") have a set of VLANs, a PVID and untagged VLANs (VLAN 1
//! pvid untagged by default); frames are admitted on ingress by tag or PVID
//! (`br_allowed_ingress`, else `VLAN_FILTER`), delivered only to members
//! (`br_allowed_egress`), and untagged on egress where configured
//! (`br_handle_vlan`). Without filtering every FDB entry has VLAN 0.
//!
//! Not modelled: STP (ports forward as soon as they are operational; the
//! bridge group address is forwarded as with `stp_state 0`), multicast
//! snooping (multicast floods), hairpin mode, port isolation, the bridge
//! picking its MAC from its ports.

use std::collections::HashMap;

use netpath_wire::ethernet::EthernetAddress;

use super::rx::RxHandlerResult;
use super::{DevError, DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb, VlanInfo};
use crate::stack::{devm, Stack};
use crate::time::{Duration, Instant};

/// `BR_DEFAULT_AGEING_TIME`.
pub const DEFAULT_AGEING_TIME: Duration = Duration::from_secs(300);

/// `ETH_P_8021Q`: the bridge's `vlan_protocol`.
const ETH_P_8021Q: u16 = 0x8100;

/// Ethernet header and one VLAN tag (`ETH_HLEN`, `VLAN_HLEN`).
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;

/// VLAN membership of a port or of the bridge itself (`net_bridge_vlan_group`).
#[derive(Debug, Clone)]
struct VlanGroup {
    member: [u64; 64],
    untagged: [u64; 64],
    pvid: Option<u16>,
}

impl VlanGroup {
    /// VLAN 1, pvid, untagged (`default_pvid`).
    fn with_default_pvid() -> VlanGroup {
        let mut g = VlanGroup {
            member: [0; 64],
            untagged: [0; 64],
            pvid: None,
        };
        g.add(1, true, true);
        g
    }

    fn bit(vid: u16) -> (usize, u64) {
        (usize::from(vid >> 6) & 63, 1u64 << (vid & 63))
    }

    fn has(&self, vid: u16) -> bool {
        let (i, b) = Self::bit(vid);
        self.member[i] & b != 0
    }

    fn is_untagged(&self, vid: u16) -> bool {
        let (i, b) = Self::bit(vid);
        self.untagged[i] & b != 0
    }

    fn add(&mut self, vid: u16, pvid: bool, untagged: bool) {
        let (i, b) = Self::bit(vid);
        self.member[i] |= b;
        if untagged {
            self.untagged[i] |= b;
        } else {
            self.untagged[i] &= !b;
        }
        if pvid {
            self.pvid = Some(vid);
        } else if self.pvid == Some(vid) {
            self.pvid = None;
        }
    }

    fn del(&mut self, vid: u16) -> bool {
        let (i, b) = Self::bit(vid);
        let had = self.member[i] & b != 0;
        self.member[i] &= !b;
        self.untagged[i] &= !b;
        if self.pvid == Some(vid) {
            self.pvid = None;
        }
        had
    }

    fn list(&self) -> Vec<BridgeVlan> {
        (1..=4094)
            .filter(|&v| self.has(v))
            .map(|vid| BridgeVlan {
                vid,
                pvid: self.pvid == Some(vid),
                untagged: self.is_untagged(vid),
            })
            .collect()
    }
}

/// One VLAN of a port, as `bridge vlan show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeVlan {
    pub vid: u16,
    pub pvid: bool,
    pub untagged: bool,
}

/// A port (`struct net_bridge_port`).
#[derive(Debug, Clone)]
struct BrPort {
    dev: IfIndex,
    /// The port's promiscuity before it joined (restored when it leaves).
    was_promisc: bool,
    vlans: VlanGroup,
}

/// An FDB entry (`struct net_bridge_fdb_entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FdbEntry {
    /// `None`: the bridge device's own address (no port).
    port: Option<IfIndex>,
    updated: Instant,
    /// BR_FDB_LOCAL: one of this host's addresses; frames go up.
    is_local: bool,
    /// BR_FDB_STATIC: added by the user; never ages.
    is_static: bool,
}

/// One row of `bridge fdb show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdbRow {
    pub mac: EthernetAddress,
    pub vid: u16,
    /// The port (the bridge itself for its own address).
    pub port: IfIndex,
    /// `permanent`: a local address.
    pub local: bool,
    /// `static`.
    pub is_static: bool,
}

/// Counters of a bridge beyond its device's (netpath's own, for tests and
/// `bridge -s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgeStats {
    /// Frames forwarded to one known port.
    pub forwarded: u64,
    /// Frames flooded (each flood once, whatever the number of ports).
    pub flooded: u64,
    /// Frames passed up to the bridge device.
    pub passed_up: u64,
    /// Known unicast whose port is the one it came in on (dropped).
    pub same_port: u64,
    /// Entries learnt (created).
    pub learnt: u64,
    /// Entries that moved to another port.
    pub moved: u64,
    /// Entries removed by ageing.
    pub aged: u64,
}

/// What a frame is to the bridge (`enum br_pkt_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrPkt {
    Unicast,
    Multicast,
    Broadcast,
}

/// A bridge's state.
#[derive(Debug)]
pub struct Bridge {
    ports: Vec<IfIndex>,
    port_info: Vec<BrPort>,
    fdb: HashMap<(EthernetAddress, u16), FdbEntry>,
    ageing_time: Duration,
    /// When `br_fdb_cleanup` is due (a lower bound of the earliest expiry).
    next_cleanup: Option<Instant>,
    /// The bridge device's address as its local FDB entry holds it.
    own_mac: Option<EthernetAddress>,
    vlan_filtering: bool,
    /// The bridge device's own VLANs ("self").
    self_vlans: VlanGroup,
    stats: BridgeStats,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge {
            ports: Vec::new(),
            port_info: Vec::new(),
            fdb: HashMap::new(),
            ageing_time: DEFAULT_AGEING_TIME,
            next_cleanup: None,
            own_mac: None,
            vlan_filtering: false,
            self_vlans: VlanGroup::with_default_pvid(),
            stats: BridgeStats::default(),
        }
    }
}

impl Bridge {
    pub fn new() -> Bridge {
        Bridge::default()
    }

    pub fn ports(&self) -> &[IfIndex] {
        &self.ports
    }

    pub fn ageing_time(&self) -> Duration {
        self.ageing_time
    }

    pub fn vlan_filtering(&self) -> bool {
        self.vlan_filtering
    }

    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// Entries in the FDB (local ones included).
    pub fn fdb_len(&self) -> usize {
        self.fdb.len()
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.next_cleanup
    }

    fn port(&self, dev: IfIndex) -> Option<&BrPort> {
        self.port_info.iter().find(|p| p.dev == dev)
    }

    fn port_mut(&mut self, dev: IfIndex) -> Option<&mut BrPort> {
        self.port_info.iter_mut().find(|p| p.dev == dev)
    }

    /// `br_allowed_ingress()`: the VLAN a frame belongs to on `vg`, giving
    /// an untagged or priority-tagged frame the PVID. `None`: not admitted.
    fn allowed_ingress(&self, vg: &VlanGroup, skb: &mut Skb) -> Option<u16> {
        if !self.vlan_filtering {
            return Some(0);
        }
        let tag = skb.meta.vlan.filter(|t| t.proto == ETH_P_8021Q);
        let vid = match tag {
            Some(t) if t.vid() != 0 => t.vid(),
            _ => {
                let pvid = vg.pvid?;
                let pcp_dei = tag.map_or(0, |t| t.tci & 0xf000);
                skb.meta.vlan = Some(VlanInfo {
                    proto: ETH_P_8021Q,
                    tci: pcp_dei | pvid,
                });
                pvid
            }
        };
        vg.has(vid).then_some(vid)
    }

    /// `br_allowed_egress()`.
    fn allowed_egress(&self, vg: &VlanGroup, vid: u16) -> bool {
        !self.vlan_filtering || vg.has(vid)
    }

    /// `br_handle_vlan()`: strips the tag where `vid` leaves untagged.
    fn handle_vlan(&self, vg: &VlanGroup, vid: u16, skb: &mut Skb) {
        if self.vlan_filtering && vg.is_untagged(vid) {
            skb.meta.vlan = None;
        }
    }

    /// The FDB entry for a destination: exact VLAN first; local addresses
    /// also match from VLAN 0.
    fn fdb_find(&self, mac: EthernetAddress, vid: u16) -> Option<FdbEntry> {
        match self.fdb.get(&(mac, vid)) {
            Some(e) => Some(*e),
            None if vid != 0 => self.fdb.get(&(mac, 0)).filter(|e| e.is_local).copied(),
            None => None,
        }
    }
}

/// `is_valid_ether_addr()`: neither multicast nor all-zero.
fn is_valid_ether_addr(a: EthernetAddress) -> bool {
    !a.is_multicast() && a != EthernetAddress::ZERO
}

/// `is_link_local_ether_addr()`: 01:80:c2:00:00:0X.
fn is_link_local(a: EthernetAddress) -> bool {
    a.0[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && a.0[5] & 0xf0 == 0
}

impl Stack {
    fn bridge_mut(&mut self, br: IfIndex) -> Result<&mut Bridge, DevError> {
        match &mut devm(&mut self.devs, br)?.kind {
            DevKind::Bridge(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: br,
                expected: "bridge",
            }),
        }
    }

    fn bridge_ref(&self, br: IfIndex) -> Result<&Bridge, DevError> {
        match &self.dev(br)?.kind {
            DevKind::Bridge(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: br,
                expected: "bridge",
            }),
        }
    }

    /// The bridge `br` (`ip -d link show BR`).
    pub fn bridge(&self, br: IfIndex) -> Result<&Bridge, DevError> {
        self.bridge_ref(br)
    }

    /// Keeps the local entry of the bridge's own address in step with the
    /// device's MAC (Linux updates it from the NETDEV_CHANGEADDR notifier).
    fn br_sync_own_mac(&mut self, br: IfIndex) -> Result<EthernetAddress, DevError> {
        let mac = self.dev(br)?.mac;
        let now = self.now;
        let b = self.bridge_mut(br)?;
        if b.own_mac != Some(mac) {
            if let Some(old) = b.own_mac.take() {
                if b.fdb.get(&(old, 0)).is_some_and(|e| e.port.is_none()) {
                    b.fdb.remove(&(old, 0));
                }
            }
            if is_valid_ether_addr(mac) {
                b.fdb.insert(
                    (mac, 0),
                    FdbEntry {
                        port: None,
                        updated: now,
                        is_local: true,
                        is_static: true,
                    },
                );
            }
            b.own_mac = Some(mac);
        }
        Ok(mac)
    }

    /// `ip link set PORT master BR` (`br_add_if`): the port becomes
    /// promiscuous, and its address a local FDB entry.
    pub fn bridge_add_port(&mut self, br: IfIndex, port: IfIndex) -> Result<(), DevError> {
        self.bridge_mut(br)?;
        if matches!(self.dev(port)?.kind, DevKind::Bridge(_)) {
            // Linux: a bridge cannot be a port of another bridge (ELOOP).
            return Err(DevError::Loop(port));
        }
        self.enslave(br, port)?;
        self.br_sync_own_mac(br)?;
        let (was_promisc, mac) = {
            let d = self.dev(port)?;
            (d.flags.promisc, d.mac)
        };
        self.set_promisc(port, true)?;
        let now = self.now;
        let b = self.bridge_mut(br)?;
        b.ports.push(port);
        b.port_info.push(BrPort {
            dev: port,
            was_promisc,
            vlans: VlanGroup::with_default_pvid(),
        });
        if is_valid_ether_addr(mac) {
            b.fdb.entry((mac, 0)).or_insert(FdbEntry {
                port: Some(port),
                updated: now,
                is_local: true,
                is_static: true,
            });
        }
        self.tracer.event(now, "br_add_if", Some(port));
        Ok(())
    }

    /// `ip link set PORT nomaster` (`br_del_if`): every FDB entry of the
    /// port goes, and its promiscuity is restored.
    pub fn bridge_del_port(&mut self, br: IfIndex, port: IfIndex) -> Result<(), DevError> {
        let b = self.bridge_ref(br)?;
        let Some(was_promisc) = b.port(port).map(|p| p.was_promisc) else {
            return Err(DevError::BadParam("not a port of that bridge"));
        };
        self.release(br, port)?;
        let b = self.bridge_mut(br)?;
        b.ports.retain(|&p| p != port);
        b.port_info.retain(|p| p.dev != port);
        b.fdb.retain(|_, e| e.port != Some(port));
        self.set_promisc(port, was_promisc)?;
        self.tracer.event(self.now, "br_del_if", Some(port));
        Ok(())
    }

    /// `ip link set BR type bridge ageing_time T`. Zero: nothing is learnt
    /// (every unicast floods), as Linux.
    pub fn bridge_set_ageing(&mut self, br: IfIndex, ageing: Duration) -> Result<(), DevError> {
        let now = self.now;
        let b = self.bridge_mut(br)?;
        b.ageing_time = ageing;
        b.next_cleanup = b
            .fdb
            .values()
            .filter(|e| !e.is_local && !e.is_static)
            .map(|e| e.updated.checked_add(ageing).unwrap_or(now).max(now))
            .min();
        Ok(())
    }

    /// `bridge fdb show br BR`: (MAC, VLAN, port, local) for every entry,
    /// sorted by port, MAC and VLAN; the bridge's own address shows the
    /// bridge as its port.
    pub fn bridge_fdb(
        &self,
        br: IfIndex,
    ) -> Result<Vec<(EthernetAddress, u16, IfIndex, bool)>, DevError> {
        Ok(self
            .bridge_fdb_show(br)?
            .into_iter()
            .map(|r| (r.mac, r.vid, r.port, r.local))
            .collect())
    }

    /// As [`Stack::bridge_fdb`], with the `static` flag.
    pub fn bridge_fdb_show(&self, br: IfIndex) -> Result<Vec<FdbRow>, DevError> {
        let b = self.bridge_ref(br)?;
        let mut rows: Vec<FdbRow> = b
            .fdb
            .iter()
            .map(|(&(mac, vid), e)| FdbRow {
                mac,
                vid,
                port: e.port.unwrap_or(br),
                local: e.is_local,
                is_static: e.is_static,
            })
            .collect();
        rows.sort_by_key(|r| (r.port, r.mac, r.vid));
        Ok(rows)
    }

    /// The port the FDB sends `mac` (in VLAN `vid`) to, if it has an entry
    /// (the bridge itself for its own address).
    pub fn bridge_fdb_lookup(
        &self,
        br: IfIndex,
        mac: EthernetAddress,
        vid: u16,
    ) -> Result<Option<IfIndex>, DevError> {
        let b = self.bridge_ref(br)?;
        Ok(b.fdb.get(&(mac, vid)).map(|e| e.port.unwrap_or(br)))
    }

    /// `bridge fdb add MAC dev PORT master static [vlan VID]`. Like Linux's,
    /// a static entry never ages but follows the station if it shows up on
    /// another port (it is not `sticky`).
    pub fn bridge_fdb_add_static(
        &mut self,
        br: IfIndex,
        mac: EthernetAddress,
        vid: u16,
        port: IfIndex,
    ) -> Result<(), DevError> {
        if !is_valid_ether_addr(mac) {
            return Err(DevError::BadParam("FDB entries need a unicast address"));
        }
        if vid > 4094 {
            return Err(DevError::BadVlan { vid });
        }
        let now = self.now;
        let b = self.bridge_mut(br)?;
        if b.port(port).is_none() {
            return Err(DevError::BadParam("not a port of that bridge"));
        }
        if b.fdb.get(&(mac, vid)).is_some_and(|e| e.is_local) {
            return Err(DevError::BadParam(
                "a local FDB entry exists for that address",
            ));
        }
        b.fdb.insert(
            (mac, vid),
            FdbEntry {
                port: Some(port),
                updated: now,
                is_local: false,
                is_static: true,
            },
        );
        Ok(())
    }

    /// `bridge fdb del MAC [vlan VID] br BR`. Returns whether an entry went.
    pub fn bridge_fdb_del(
        &mut self,
        br: IfIndex,
        mac: EthernetAddress,
        vid: u16,
    ) -> Result<bool, DevError> {
        let b = self.bridge_mut(br)?;
        Ok(b.fdb.remove(&(mac, vid)).is_some())
    }

    /// `bridge fdb flush br BR`: every dynamic entry goes.
    pub fn bridge_fdb_flush(&mut self, br: IfIndex) -> Result<(), DevError> {
        let b = self.bridge_mut(br)?;
        b.fdb.retain(|_, e| e.is_local || e.is_static);
        b.next_cleanup = None;
        Ok(())
    }

    /// `ip link set BR type bridge vlan_filtering 0|1`.
    pub fn bridge_set_vlan_filtering(&mut self, br: IfIndex, on: bool) -> Result<(), DevError> {
        self.bridge_mut(br)?.vlan_filtering = on;
        Ok(())
    }

    /// `bridge vlan add dev DEV vid VID [pvid] [untagged] [self]`: `dev` is a
    /// port, or the bridge itself for its own membership.
    pub fn bridge_vlan_add(
        &mut self,
        br: IfIndex,
        dev: IfIndex,
        vid: u16,
        pvid: bool,
        untagged: bool,
    ) -> Result<(), DevError> {
        if !(1..=4094).contains(&vid) {
            return Err(DevError::BadVlan { vid });
        }
        let b = self.bridge_mut(br)?;
        let vg = if dev == br {
            &mut b.self_vlans
        } else {
            &mut b
                .port_mut(dev)
                .ok_or(DevError::BadParam("not a port of that bridge"))?
                .vlans
        };
        vg.add(vid, pvid, untagged);
        Ok(())
    }

    /// `bridge vlan del dev DEV vid VID`.
    pub fn bridge_vlan_del(&mut self, br: IfIndex, dev: IfIndex, vid: u16) -> Result<(), DevError> {
        let b = self.bridge_mut(br)?;
        let vg = if dev == br {
            &mut b.self_vlans
        } else {
            &mut b
                .port_mut(dev)
                .ok_or(DevError::BadParam("not a port of that bridge"))?
                .vlans
        };
        if vg.del(vid) {
            Ok(())
        } else {
            Err(DevError::BadVlan { vid })
        }
    }

    /// `bridge vlan show dev DEV`.
    pub fn bridge_vlan_show(&self, br: IfIndex, dev: IfIndex) -> Result<Vec<BridgeVlan>, DevError> {
        let b = self.bridge_ref(br)?;
        let vg = if dev == br {
            &b.self_vlans
        } else {
            &b.port(dev)
                .ok_or(DevError::BadParam("not a port of that bridge"))?
                .vlans
        };
        Ok(vg.list())
    }

    // ---- ingress -----------------------------------------------------------

    /// `br_handle_frame()`: the rx_handler of every port of `br`. `skb.data`
    /// is at the network header, the MAC header set, `ingress_dev` the port.
    pub(crate) fn br_handle_frame(&mut self, br: IfIndex, mut skb: Skb) -> RxHandlerResult {
        let now = self.now;
        self.tracer.skb(now, "br_handle_frame", &skb);
        if skb.meta.pkt_type == PacketType::Loopback {
            return RxHandlerResult::Pass(skb);
        }
        let Some(port) = skb.meta.ingress_dev else {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return RxHandlerResult::Consumed;
        };
        let hdr = skb.mac_header_bytes();
        let (Some(dst), Some(src)) = (
            hdr.get(..6).and_then(EthernetAddress::from_bytes),
            hdr.get(6..12).and_then(EthernetAddress::from_bytes),
        ) else {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return RxHandlerResult::Consumed;
        };
        if !is_valid_ether_addr(src) {
            self.kfree_skb(skb, DropReason::MacInvalidSource);
            return RxHandlerResult::Consumed;
        }
        let Ok(br_mac) = self.br_sync_own_mac(br) else {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return RxHandlerResult::Consumed;
        };
        // The port forwards when it is up with carrier and the bridge is up
        // (Linux: STP state FORWARDING; a disabled port drops).
        let br_dev = self.dev(br).map(|d| (d.flags.up, d.flags.promisc));
        let port_ok = self.dev(port).is_ok_and(|d| d.is_operational());
        let (br_up, br_promisc) = br_dev.unwrap_or((false, false));

        if is_link_local(dst) {
            match dst.0[5] {
                // Bridge group address: forwarded like any frame without STP.
                0x00 => {}
                // IEEE MAC control (pause): never forwarded nor passed
                // (Linux: MAC_IEEE_MAC_CONTROL).
                0x01 => {
                    self.kfree_skb(skb, DropReason::NotSpecified);
                    return RxHandlerResult::Consumed;
                }
                // LLDP, LACP, …: learnt, then the port's own handlers.
                _ => {
                    if port_ok && br_up {
                        self.br_fdb_update(br, port, src, 0);
                    }
                    return RxHandlerResult::Pass(skb);
                }
            }
        }
        if !port_ok || !br_up {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return RxHandlerResult::Consumed;
        }
        if dst == br_mac {
            skb.meta.pkt_type = PacketType::Host;
        }
        self.br_handle_frame_finish(br, port, skb, dst, src, br_promisc)
    }

    /// `br_handle_frame_finish()`: learn, then deliver by destination.
    fn br_handle_frame_finish(
        &mut self,
        br: IfIndex,
        port: IfIndex,
        mut skb: Skb,
        dst: EthernetAddress,
        src: EthernetAddress,
        br_promisc: bool,
    ) -> RxHandlerResult {
        let vid = {
            let Ok(b) = self.bridge_ref(br) else {
                self.kfree_skb(skb, DropReason::NotSpecified);
                return RxHandlerResult::Consumed;
            };
            let admitted = match b.port(port) {
                Some(p) => b.allowed_ingress(&p.vlans, &mut skb),
                None => None,
            };
            match admitted {
                Some(v) => v,
                None => {
                    self.kfree_skb(skb, DropReason::VlanFilter);
                    return RxHandlerResult::Consumed;
                }
            }
        };
        self.br_fdb_update(br, port, src, vid);

        let mut local_rcv = br_promisc;
        let pkt = if dst.is_broadcast() {
            BrPkt::Broadcast
        } else if dst.is_multicast() {
            BrPkt::Multicast
        } else {
            BrPkt::Unicast
        };
        match pkt {
            BrPkt::Broadcast => local_rcv = true,
            BrPkt::Multicast => {
                // No snooping: every multicast floods and goes up.
                local_rcv = true;
                if let Ok(d) = devm(&mut self.devs, br) {
                    d.stats.multicast += 1;
                }
            }
            BrPkt::Unicast => match self.br_fdb_find(br, dst, vid) {
                Some(e) if e.is_local => return self.br_pass_frame_up(br, skb, vid, br_promisc),
                Some(e) => {
                    let to = e.port.unwrap_or(br);
                    if to == port {
                        // Linux: should_deliver() refuses the ingress port.
                        if let Ok(b) = self.bridge_mut(br) {
                            b.stats.same_port += 1;
                        }
                        self.tracer.skb(self.now, "br_forward_same_port", &skb);
                        if local_rcv {
                            return self.br_pass_frame_up(br, skb, vid, br_promisc);
                        }
                        self.kfree_skb(skb, DropReason::NotSpecified);
                        return RxHandlerResult::Consumed;
                    }
                    return self.br_forward(br, to, skb, Some(port), vid, local_rcv, br_promisc);
                }
                None => {}
            },
        }
        // br_flood: every other forwarding port gets a clone.
        let sent = self.br_flood(br, &skb, Some(port), vid);
        if local_rcv {
            return self.br_pass_frame_up(br, skb, vid, br_promisc);
        }
        if sent > 0 {
            self.consume_skb(skb);
        } else {
            self.kfree_skb(skb, DropReason::NotSpecified);
        }
        RxHandlerResult::Consumed
    }

    /// `br_fdb_find_rcu()`, dropping an entry whose port no longer forwards
    /// (what Linux's `br_fdb_delete_by_port` on carrier loss leaves).
    fn br_fdb_find(&mut self, br: IfIndex, mac: EthernetAddress, vid: u16) -> Option<FdbEntry> {
        let e = self.bridge_ref(br).ok()?.fdb_find(mac, vid)?;
        if e.is_local || e.is_static {
            return Some(e);
        }
        let port = e.port?;
        if self.dev(port).is_ok_and(|d| d.is_operational()) {
            return Some(e);
        }
        if let Ok(b) = self.bridge_mut(br) {
            b.fdb.remove(&(mac, vid));
        }
        None
    }

    /// `br_fdb_update()`: learn `src` on `port` (a new entry, a refresh, or
    /// a station that moved).
    fn br_fdb_update(&mut self, br: IfIndex, port: IfIndex, src: EthernetAddress, vid: u16) {
        let now = self.now;
        let Ok(b) = self.bridge_mut(br) else { return };
        if b.ageing_time == Duration::ZERO || !is_valid_ether_addr(src) {
            return;
        }
        let ageing = b.ageing_time;
        let mut event = None;
        match b.fdb.get_mut(&(src, vid)) {
            // Linux: "received packet on PORT with own address as source".
            Some(e) if e.is_local => event = Some("br_fdb_own_address"),
            Some(e) => {
                e.updated = now;
                if e.port != Some(port) {
                    e.port = Some(port);
                    b.stats.moved += 1;
                    event = Some("br_fdb_moved");
                }
            }
            None => {
                b.fdb.insert(
                    (src, vid),
                    FdbEntry {
                        port: Some(port),
                        updated: now,
                        is_local: false,
                        is_static: false,
                    },
                );
                b.stats.learnt += 1;
                let expiry = now.checked_add(ageing).unwrap_or(now);
                b.next_cleanup = Some(b.next_cleanup.map_or(expiry, |t| t.min(expiry)));
                event = Some("br_fdb_learn");
            }
        }
        if let Some(ev) = event {
            self.tracer.event(now, ev, Some(port));
        }
    }

    /// `br_pass_frame_up()`: the frame becomes the bridge device's packet
    /// (RX_HANDLER_ANOTHER round as `br`).
    fn br_pass_frame_up(
        &mut self,
        br: IfIndex,
        mut skb: Skb,
        vid: u16,
        br_promisc: bool,
    ) -> RxHandlerResult {
        let allowed = match self.bridge_ref(br) {
            Ok(b) => {
                let ok = br_promisc || b.allowed_egress(&b.self_vlans, vid);
                if ok {
                    b.handle_vlan(&b.self_vlans, vid, &mut skb);
                }
                ok
            }
            Err(_) => false,
        };
        if !allowed {
            self.kfree_skb(skb, DropReason::VlanFilter);
            return RxHandlerResult::Consumed;
        }
        let len = skb.len() as u64;
        if let Ok(d) = devm(&mut self.devs, br) {
            d.stats.rx_packets += 1;
            d.stats.rx_bytes += len;
        }
        if let Ok(b) = self.bridge_mut(br) {
            b.stats.passed_up += 1;
        }
        skb.meta.ingress_dev = Some(br);
        self.tracer.skb(self.now, "br_pass_frame_up", &skb);
        RxHandlerResult::Another(skb)
    }

    // ---- forwarding --------------------------------------------------------

    /// `should_deliver()`: not back out of the port it came in on, only to a
    /// forwarding port that is a member of the VLAN.
    fn br_should_deliver(
        &self,
        br: IfIndex,
        to: IfIndex,
        ingress: Option<IfIndex>,
        vid: u16,
    ) -> bool {
        if Some(to) == ingress || !self.dev(to).is_ok_and(|d| d.is_operational()) {
            return false;
        }
        match self.bridge_ref(br) {
            Ok(b) => b.port(to).is_some_and(|p| b.allowed_egress(&p.vlans, vid)),
            Err(_) => false,
        }
    }

    /// `br_forward()`: to one port (a clone when the frame also goes up).
    #[allow(clippy::too_many_arguments)]
    fn br_forward(
        &mut self,
        br: IfIndex,
        to: IfIndex,
        skb: Skb,
        ingress: Option<IfIndex>,
        vid: u16,
        local_rcv: bool,
        br_promisc: bool,
    ) -> RxHandlerResult {
        if to != br && self.br_should_deliver(br, to, ingress, vid) {
            if let Ok(b) = self.bridge_mut(br) {
                b.stats.forwarded += 1;
            }
            if local_rcv {
                self.br_forward_one(br, to, skb.clone(), vid);
                return self.br_pass_frame_up(br, skb, vid, br_promisc);
            }
            self.br_forward_one(br, to, skb, vid);
            return RxHandlerResult::Consumed;
        }
        if local_rcv {
            return self.br_pass_frame_up(br, skb, vid, br_promisc);
        }
        self.kfree_skb(skb, DropReason::NotSpecified);
        RxHandlerResult::Consumed
    }

    /// `br_flood()`: a clone to every port that should get it. Returns how
    /// many did.
    fn br_flood(&mut self, br: IfIndex, skb: &Skb, ingress: Option<IfIndex>, vid: u16) -> usize {
        let mut sent = 0;
        let mut i = 0;
        // By index: forwarding may re-enter the stack (veth loops), so no
        // borrow of the port list is held across it.
        while let Some(to) = self
            .bridge_ref(br)
            .ok()
            .and_then(|b| b.ports.get(i).copied())
        {
            i += 1;
            if self.br_should_deliver(br, to, ingress, vid) {
                self.br_forward_one(br, to, skb.clone(), vid);
                sent += 1;
            }
        }
        self.tracer
            .event_detail(self.now, "br_flood", Some(br), sent as u64);
        if let Ok(b) = self.bridge_mut(br) {
            b.stats.flooded += 1;
        }
        sent
    }

    /// `__br_forward()` + `br_dev_queue_push_xmit()`: egress VLAN handling,
    /// the MAC header pushed back (and a tag held in the skb written into
    /// the frame), the MTU check, `dev_queue_xmit` on the port.
    fn br_forward_one(&mut self, br: IfIndex, to: IfIndex, mut skb: Skb, vid: u16) {
        if let Ok(b) = self.bridge_ref(br) {
            if let Some(p) = b.port(to) {
                b.handle_vlan(&p.vlans, vid, &mut skb);
            }
        }
        let Some(mac) = skb.mac_header() else {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        };
        let mac_len = skb.data_offset().saturating_sub(mac);
        if skb.push(mac_len).is_err() {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        }
        // is_skb_forwardable(): the frame must fit the port's MTU.
        let max = self
            .dev(to)
            .map_or(0, |d| d.mtu as usize + ETH_HLEN + VLAN_HLEN);
        if skb.len() > max && !skb.is_gso() {
            self.tracer.skb(self.now, "br_not_forwardable", &skb);
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        }
        if let Some(tag) = skb.meta.vlan.take() {
            if super::nic::vlan_insert_tag(&mut skb, tag).is_err() {
                self.kfree_skb(skb, DropReason::Nomem);
                return;
            }
        }
        self.tracer.skb(self.now, "br_forward", &skb);
        let _ = self.dev_queue_xmit_on(skb, to);
    }

    // ---- the bridge device's own transmit -------------------------------------

    /// `br_dev_xmit()`: a packet the host sends out of the bridge device
    /// (data at the MAC header) goes to the port the FDB names, else floods.
    pub(crate) fn br_dev_xmit(&mut self, br: IfIndex, mut skb: Skb) {
        let len = skb.len() as u64;
        if let Ok(d) = devm(&mut self.devs, br) {
            d.stats.tx_packets += 1;
            d.stats.tx_bytes += len;
        }
        skb.reset_mac_header();
        let Some(dst) = skb.data().get(..6).and_then(EthernetAddress::from_bytes) else {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        };
        if skb.pull(ETH_HLEN).is_err() {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        skb.reset_network_header();
        let vid = {
            let Ok(b) = self.bridge_ref(br) else {
                self.kfree_skb(skb, DropReason::NotSpecified);
                return;
            };
            match b.allowed_ingress(&b.self_vlans, &mut skb) {
                Some(v) => v,
                None => {
                    self.kfree_skb(skb, DropReason::VlanFilter);
                    return;
                }
            }
        };
        if !dst.is_multicast() {
            if let Some(e) = self.br_fdb_find(br, dst, vid) {
                // The bridge's own address has no port: nothing to do.
                let to = e.port.unwrap_or(br);
                let _ = self.br_forward(br, to, skb, None, vid, false, false);
                return;
            }
        }
        if self.br_flood(br, &skb, None, vid) > 0 {
            self.consume_skb(skb);
        } else {
            self.kfree_skb(skb, DropReason::NotSpecified);
        }
    }

    // ---- ageing ------------------------------------------------------------

    /// `br_fdb_cleanup()`: removes the dynamic entries not refreshed for
    /// `ageing_time`, and re-arms for the next expiry.
    pub(crate) fn br_timer(&mut self, br: IfIndex) {
        let now = self.now;
        let Ok(b) = self.bridge_mut(br) else { return };
        let ageing = b.ageing_time;
        let mut next: Option<Instant> = None;
        let before = b.fdb.len();
        b.fdb.retain(|_, e| {
            if e.is_local || e.is_static {
                return true;
            }
            let expiry = e.updated.checked_add(ageing).unwrap_or(now);
            if expiry <= now {
                return false;
            }
            next = Some(next.map_or(expiry, |t| t.min(expiry)));
            true
        });
        let aged = (before - b.fdb.len()) as u64;
        b.stats.aged += aged;
        b.next_cleanup = next;
        self.tracer
            .event_detail(now, "br_fdb_cleanup", Some(br), aged);
    }
}
