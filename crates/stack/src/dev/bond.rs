//! Bonding (`drivers/net/bonding`: `bond_main.c`, `bond_options.c`): a
//! master whose `rx_handler` (`bond_handle_frame`) takes its slaves'
//! packets — seed ingress step 8, "does this device have a master? let it
//! steal the packet" — and whose `ndo_start_xmit` (`bond_start_xmit`)
//! picks the slave a packet leaves by.
//!
//! Modes:
//! - active-backup (mode 1): one slave, the active one, carries all
//!   traffic. Packets that arrive on it are the bond's (RX_HANDLER_ANOTHER);
//!   packets on an inactive slave go only to handlers bound to that exact
//!   slave (RX_HANDLER_EXACT), so normal protocols drop them (link-local
//!   01:80:c2:00:00:0X frames pass as the slave's). The MII monitor
//!   (`bond_mii_monitor`, every `miimon`, 100 ms by default) reads each
//!   slave's link (up with carrier); when the active slave's link is down
//!   the first slave (in enslaving order) whose link is up becomes active
//!   (`bond_change_active_slave`, counted as a failover). Without a primary,
//!   a slave that comes back does not take over. updelay/downdelay are 0.
//! - balance-xor (mode 2): every slave whose link is up carries traffic; a
//!   packet's slave is `hash % n` over those (`bond_xmit_xor`), the hash by
//!   `xmit_hash_policy layer3+4` (IPv4 addresses and TCP/UDP ports, or the
//!   layer2 hash for non-IPv4 frames; fragments hash without ports).
//!   Packets from any slave are the bond's.
//!
//! As with `fail_over_mac none`, enslaving sets the slave's MAC to the
//! bond's (a bond without an address takes its first slave's), so that
//! frames for the bond pass every slave's NIC filter; release restores the
//! slave's own. Enslaving brings the slave up (`dev_open`).
//!
//! Counters: Linux reports a bond's counters as the sum of its slaves'
//! (`bond_get_stats`); netpath counts on the bond device what passes
//! through it: rx for packets taken as the bond's (frame length), tx for
//! packets handed to a slave, tx_dropped when no slave can send.
//!
//! Not modelled: the ARP monitor, gratuitous ARPs on failover, primary and
//! `fail_over_mac` options, the other modes (round-robin, broadcast,
//! 802.3ad, tlb/alb).

use netpath_wire::ethernet::EthernetAddress;

use super::rx::RxHandlerResult;
use super::{DevError, DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::{devm, Stack};
use crate::time::{Duration, Instant};

/// The default `miimon` netpath uses (Linux's module default is 0, but
/// iproute2 setups and distributions use 100 ms).
pub const DEFAULT_MIIMON: Duration = Duration::from_millis(100);

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BondMode {
    /// mode 1: one slave carries traffic; another takes over when it fails.
    #[default]
    ActiveBackup,
    /// mode 2: a slave per flow by hash.
    BalanceXor,
}

/// One slave (`struct slave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slave {
    dev: IfIndex,
    /// `slave->link == BOND_LINK_UP` as the monitor last saw it.
    link_up: bool,
    /// The slave's own address (`perm_hwaddr`), restored on release.
    perm_mac: EthernetAddress,
    /// Times the monitor saw its link go down ("Link Failure Count").
    link_failures: u64,
}

/// A slave's state, as `/proc/net/bonding/BOND` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaveInfo {
    pub dev: IfIndex,
    /// "MII Status: up".
    pub link_up: bool,
    /// The active slave (active-backup), or any slave with link (xor).
    pub active: bool,
    /// "Link Failure Count".
    pub link_failures: u64,
}

/// A bond's state.
#[derive(Debug, Default)]
pub struct Bond {
    mode: BondMode,
    slaves: Vec<IfIndex>,
    info: Vec<Slave>,
    /// `curr_active_slave` (active-backup).
    active: Option<IfIndex>,
    miimon: Duration,
    next_mii: Option<Instant>,
    failovers: u64,
}

impl Bond {
    pub fn new(mode: BondMode) -> Bond {
        Bond {
            mode,
            slaves: Vec::new(),
            info: Vec::new(),
            active: None,
            miimon: DEFAULT_MIIMON,
            next_mii: None,
            failovers: 0,
        }
    }

    pub fn mode(&self) -> BondMode {
        self.mode
    }

    pub fn slaves(&self) -> &[IfIndex] {
        &self.slaves
    }

    /// `curr_active_slave` (always `None` in balance-xor).
    pub fn active_slave(&self) -> Option<IfIndex> {
        self.active
    }

    pub fn miimon(&self) -> Duration {
        self.miimon
    }

    /// Times the active slave changed away from one that was active.
    pub fn failovers(&self) -> u64 {
        self.failovers
    }

    /// Every slave's state, in enslaving order.
    pub fn slave_info(&self) -> Vec<SlaveInfo> {
        self.info
            .iter()
            .map(|s| SlaveInfo {
                dev: s.dev,
                link_up: s.link_up,
                active: match self.mode {
                    BondMode::ActiveBackup => self.active == Some(s.dev),
                    BondMode::BalanceXor => s.link_up,
                },
                link_failures: s.link_failures,
            })
            .collect()
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.next_mii
    }

    /// `bond_find_best_slave()` without a primary: the current active slave
    /// if its link is up, else the first slave whose link is up.
    fn find_best_slave(&self) -> Option<IfIndex> {
        if let Some(a) = self.active {
            if self.info.iter().any(|s| s.dev == a && s.link_up) {
                return Some(a);
            }
        }
        self.info.iter().find(|s| s.link_up).map(|s| s.dev)
    }

    /// Is a packet arriving on `slave` the bond's (an active slave)?
    fn is_active(&self, slave: IfIndex) -> bool {
        match self.mode {
            BondMode::ActiveBackup => self.active == Some(slave),
            BondMode::BalanceXor => true,
        }
    }
}

/// `is_link_local_ether_addr()`: 01:80:c2:00:00:0X.
fn is_link_local(a: &[u8]) -> bool {
    a.len() >= 6 && a[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && a[5] & 0xf0 == 0
}

/// `bond_xmit_hash()` for `xmit_hash_policy layer3+4`, on a frame from its
/// MAC header (as `__bond_xmit_hash` computes it on a little-endian host).
pub fn bond_xmit_hash_l34(frame: &[u8]) -> u32 {
    let l2 = || -> u32 {
        // bond_eth_hash(): h_dest[5] ^ h_source[5] ^ h_proto.
        match (frame.get(5), frame.get(11), frame.get(12..14)) {
            (Some(&d), Some(&s), Some(p)) => {
                u32::from(d) ^ u32::from(s) ^ u32::from(u16::from_be_bytes([p[0], p[1]]))
            }
            _ => 0,
        }
    };
    let Some(ty) = frame.get(12..14) else {
        return 0;
    };
    if u16::from_be_bytes([ty[0], ty[1]]) != 0x0800 {
        return l2();
    }
    let Some(ip) = frame.get(14..) else {
        return l2();
    };
    let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    if ip.len() < 20 || ihl < 20 || ip[0] >> 4 != 4 || ip.len() < ihl {
        return l2();
    }
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let is_fragment = frag & 0x3fff != 0;
    let proto = ip[9];
    let mut hash = 0u32;
    if !is_fragment && (proto == 6 || proto == 17) {
        if let Some(ports) = ip.get(ihl..ihl + 4) {
            hash = le(ports);
        }
    }
    // bond_ip_hash().
    hash ^= le(&ip[16..20]) ^ le(&ip[12..16]);
    hash ^= hash >> 16;
    hash ^= hash >> 8;
    // layer3+4 drops the lowest bit (even ports are common).
    hash >> 1
}

impl Stack {
    fn bond_mut(&mut self, bond: IfIndex) -> Result<&mut Bond, DevError> {
        match &mut devm(&mut self.devs, bond)?.kind {
            DevKind::Bond(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: bond,
                expected: "bond",
            }),
        }
    }

    fn bond_ref(&self, bond: IfIndex) -> Result<&Bond, DevError> {
        match &self.dev(bond)?.kind {
            DevKind::Bond(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: bond,
                expected: "bond",
            }),
        }
    }

    /// The bond `bond` (`cat /proc/net/bonding/BOND`).
    pub fn bond(&self, bond: IfIndex) -> Result<&Bond, DevError> {
        self.bond_ref(bond)
    }

    /// `ip link set SLAVE master BOND` (`bond_enslave`): the slave takes the
    /// bond's MAC, is brought up, and its link state is read; the first
    /// slave with link becomes active if none is.
    pub fn bond_enslave(&mut self, bond: IfIndex, slave: IfIndex) -> Result<(), DevError> {
        self.bond_mut(bond)?;
        match self.dev(slave)?.kind {
            DevKind::Nic(_) | DevKind::Veth(_) | DevKind::Vlan(_) => {}
            _ => {
                return Err(DevError::WrongKind {
                    dev: slave,
                    expected: "Ethernet",
                })
            }
        }
        self.enslave(bond, slave)?;
        let bond_mac = self.dev(bond)?.mac;
        let perm_mac = self.dev(slave)?.mac;
        if bond_mac == EthernetAddress::ZERO {
            // A bond without an address takes its first slave's.
            devm(&mut self.devs, bond)?.mac = perm_mac;
        } else if perm_mac != bond_mac {
            devm(&mut self.devs, slave)?.mac = bond_mac;
        }
        self.set_up(slave, true)?;
        let link_up = self.dev(slave)?.is_operational();
        let now = self.now;
        let b = self.bond_mut(bond)?;
        b.slaves.push(slave);
        b.info.push(Slave {
            dev: slave,
            link_up,
            perm_mac,
            link_failures: 0,
        });
        if b.next_mii.is_none() && b.miimon > Duration::ZERO {
            b.next_mii = now.checked_add(b.miimon);
        }
        self.tracer.event(now, "bond_enslave", Some(slave));
        if self.bond_ref(bond)?.mode == BondMode::ActiveBackup {
            self.bond_select_active_slave(bond);
        }
        Ok(())
    }

    /// `ip link set SLAVE nomaster` (`bond_release`): the slave gets its own
    /// MAC back; if it was active, another slave takes over.
    pub fn bond_release(&mut self, bond: IfIndex, slave: IfIndex) -> Result<(), DevError> {
        let b = self.bond_ref(bond)?;
        let Some(info) = b.info.iter().find(|s| s.dev == slave).copied() else {
            return Err(DevError::BadParam("not a slave of that bond"));
        };
        self.release(bond, slave)?;
        devm(&mut self.devs, slave)?.mac = info.perm_mac;
        let b = self.bond_mut(bond)?;
        b.slaves.retain(|&s| s != slave);
        b.info.retain(|s| s.dev != slave);
        if b.slaves.is_empty() {
            b.next_mii = None;
        }
        let was_active = b.active == Some(slave);
        if was_active {
            b.active = None;
        }
        self.tracer.event(self.now, "bond_release", Some(slave));
        if was_active {
            self.bond_select_active_slave(bond);
        }
        Ok(())
    }

    /// `bond_set_miimon` (`ip link set BOND type bond miimon MS`); zero
    /// turns link monitoring off.
    pub fn bond_set_miimon(&mut self, bond: IfIndex, interval: Duration) -> Result<(), DevError> {
        let now = self.now;
        let b = self.bond_mut(bond)?;
        b.miimon = interval;
        b.next_mii = if interval > Duration::ZERO && !b.slaves.is_empty() {
            now.checked_add(interval)
        } else {
            None
        };
        Ok(())
    }

    /// `curr_active_slave` of an active-backup bond.
    pub fn bond_active_slave(&self, bond: IfIndex) -> Result<Option<IfIndex>, DevError> {
        Ok(self.bond_ref(bond)?.active)
    }

    /// How many times the active slave changed away from a former one.
    pub fn bond_failovers(&self, bond: IfIndex) -> Result<u64, DevError> {
        Ok(self.bond_ref(bond)?.failovers)
    }

    /// `bond_select_active_slave()` + `bond_change_active_slave()`.
    fn bond_select_active_slave(&mut self, bond: IfIndex) {
        let now = self.now;
        let Ok(b) = self.bond_mut(bond) else { return };
        if b.mode != BondMode::ActiveBackup {
            return;
        }
        let best = b.find_best_slave();
        if best == b.active {
            return;
        }
        let old = b.active;
        b.active = best;
        if old.is_some() {
            b.failovers += 1;
        }
        self.tracer.event_detail(
            now,
            "bond_change_active_slave",
            Some(bond),
            u64::from(best.map_or(0, |s| s.0)),
        );
    }

    // ---- receive -------------------------------------------------------------

    /// `bond_handle_frame()`: the rx_handler of every slave.
    pub(crate) fn bond_handle_frame(&mut self, bond: IfIndex, mut skb: Skb) -> RxHandlerResult {
        let Some(slave) = skb.meta.ingress_dev else {
            return RxHandlerResult::Pass(skb);
        };
        let active = match self.bond_ref(bond) {
            Ok(b) => b.is_active(slave),
            Err(_) => return RxHandlerResult::Pass(skb),
        };
        if !active {
            // bond_should_deliver_exact_match(): an inactive slave's packet.
            self.tracer.skb(self.now, "bond_inactive_slave", &skb);
            if is_link_local(skb.mac_header_bytes()) {
                return RxHandlerResult::Pass(skb);
            }
            return RxHandlerResult::Exact(skb);
        }
        let len = (skb.len() + skb.mac_len().unwrap_or(14)) as u64;
        if let Ok(d) = devm(&mut self.devs, bond) {
            d.stats.rx_packets += 1;
            d.stats.rx_bytes += len;
        }
        skb.meta.ingress_dev = Some(bond);
        self.tracer.skb(self.now, "bond_handle_frame", &skb);
        RxHandlerResult::Another(skb)
    }

    // ---- transmit ------------------------------------------------------------

    /// `bond_start_xmit()`: the packet (data at its MAC header) leaves by
    /// the active slave, or by the slave its hash picks; with none, it is
    /// dropped (`bond_tx_drop`).
    pub(crate) fn bond_start_xmit(&mut self, bond: IfIndex, skb: Skb) {
        let slave = match self.bond_ref(bond) {
            Ok(b) => match b.mode {
                BondMode::ActiveBackup => b.active,
                BondMode::BalanceXor => {
                    let n = b.info.iter().filter(|s| s.link_up).count();
                    if n == 0 {
                        None
                    } else {
                        let h = bond_xmit_hash_l34(skb.data()) as usize % n;
                        b.info.iter().filter(|s| s.link_up).nth(h).map(|s| s.dev)
                    }
                }
            },
            Err(_) => None,
        };
        let Some(slave) = slave else {
            if let Ok(d) = devm(&mut self.devs, bond) {
                d.stats.tx_dropped += 1;
            }
            self.kfree_skb(skb, DropReason::NotSpecified);
            return;
        };
        let len = skb.len() as u64;
        if let Ok(d) = devm(&mut self.devs, bond) {
            d.stats.tx_packets += 1;
            d.stats.tx_bytes += len;
        }
        self.tracer
            .skb_detail(self.now, "bond_dev_queue_xmit", &skb, u64::from(slave.0));
        let _ = self.dev_queue_xmit_on(skb, slave);
    }

    // ---- link monitoring -----------------------------------------------------

    /// `bond_mii_monitor()`: reads every slave's link; a slave whose link
    /// went down loses its place (failover when it was active), one that
    /// came back is usable again. Re-arms `miimon` later.
    pub(crate) fn bond_timer(&mut self, bond: IfIndex) {
        let now = self.now;
        let n = match self.bond_ref(bond) {
            Ok(b) => b.info.len(),
            Err(_) => return,
        };
        let mut changed = false;
        for i in 0..n {
            let Some(dev) = self
                .bond_ref(bond)
                .ok()
                .and_then(|b| b.info.get(i))
                .map(|s| s.dev)
            else {
                break;
            };
            let up = self.dev(dev).is_ok_and(|d| d.is_operational());
            let Ok(b) = self.bond_mut(bond) else { return };
            let Some(s) = b.info.get_mut(i) else { break };
            if s.link_up != up {
                s.link_up = up;
                if !up {
                    s.link_failures += 1;
                }
                changed = true;
                self.tracer.event(
                    now,
                    if up { "bond_link_up" } else { "bond_link_down" },
                    Some(dev),
                );
            }
        }
        if let Ok(b) = self.bond_mut(bond) {
            b.next_mii = if b.miimon > Duration::ZERO && !b.slaves.is_empty() {
                now.checked_add(b.miimon)
            } else {
                None
            };
        }
        if changed {
            self.bond_select_active_slave(bond);
        }
    }
}
