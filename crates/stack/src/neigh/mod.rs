//! Neighbours: the IPv4 neighbour table (`arp_tbl`) and ARP
//! (`net/core/neighbour.c`, `net/ipv4/arp.c`, `include/net/neighbour.h`).
//! Seed egress step 6 (`ip_finish_output2` → `neigh_output` /
//! `neigh_resolve_output`) and the ARP half of ingress step 8 (`arp_rcv`).
//!
//! | file | Linux | what |
//! |---|---|---|
//! | `mod.rs` | `ip neigh`, `ip ntable` | the API: static entries, delete, flush, show, parameters, statistics |
//! | `table.rs` | `neighbour.c` | entries, NUD state machine (`neigh_update`, `__neigh_event_send`, `neigh_timer_handler`), garbage collection |
//! | `output.rs` | `neigh_output`, `neigh_resolve_output`, `neigh_hh_output` | pushing the hardware header, the unresolved queue |
//! | `arp.rs` | `arp.c` | `arp_rcv`/`arp_process`, `arp_solicit`, `arp_send`, `arp_mc_map` |
//!
//! Entries are keyed by (device, IPv4 address) and walk Linux's NUD states:
//! a first packet creates an entry and starts resolution (INCOMPLETE:
//! `mcast_probes` broadcast requests `retrans_time` apart, packets held on
//! the entry's queue, bounded by `unres_qlen_bytes`); the reply makes it
//! REACHABLE and the queue is sent in order; after `reachable_time` it
//! becomes STALE; the next packet moves it to DELAY, and if nothing confirms
//! it within `delay_first_probe_time`, PROBE sends `ucast_probes` unicast
//! requests; without an answer the entry is FAILED and every packet that
//! waited on it is answered with ICMP host unreachable and dropped with
//! `NEIGH_FAILED`.
//!
//! Differences from Linux, on purpose:
//! - Time comes from `Stack::now` (virtual); `reachable_time` is drawn from a
//!   seeded generator (`neigh_set_seed`), so runs repeat. It is redrawn every
//!   300 s by the periodic gc (which runs only while the table holds at least
//!   `gc_thresh1` entries, when Linux's would do anything at all, so that an
//!   idle host has no timer).
//! - Timer comparisons are strict: a REACHABLE entry confirmed at `t` goes
//!   STALE at exactly `t + reachable_time` (Linux's `time_before_eq` makes it
//!   one tick later).
//! - The periodic gc runs every `gc_interval` (Linux: `base_reachable_time / 2`).
//! - Parameters are per table, not per device.
//! - The hardware header cache (`hh`) is filled as soon as the address is
//!   known (Linux fills it on the first `neigh_resolve_output` that sends).
//! - Broadcast, multicast and loopback/NOARP next hops get their header
//!   without an entry (Linux creates NOARP entries, which `ip neigh` hides).
//! - The unresolved queue is bounded in bytes (`unres_qlen_bytes`, Linux's
//!   default 212992), an skb counting its length plus
//!   [`SKB_TRUESIZE_OVERHEAD`]; [`NeighParams::set_unres_qlen`] converts
//!   packets as Linux's `unres_qlen` sysctl does.
//! - No proxy ARP, no `arp_filter`/`arp_announce` beyond the defaults,
//!   `arp_ignore` 0 (default) and 1, no application probes (`app_probes`
//!   counts but sends nothing).

mod arp;
mod output;
mod table;

use core::fmt;
use core::net::Ipv4Addr;

use netpath_wire::ethernet::EthernetAddress;

use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::{Duration, Instant};

pub use table::NeighTable;

/// Bytes an skb costs beyond its length when counted against
/// `unres_qlen_bytes` (`SKB_TRUESIZE`: the `sk_buff` and its shared info).
pub const SKB_TRUESIZE_OVERHEAD: usize = 576;
/// `ETH_FRAME_LEN`.
const ETH_FRAME_LEN: usize = 1514;

/// `SKB_TRUESIZE(len)` as this stack counts it.
pub const fn skb_truesize(len: usize) -> usize {
    len + SKB_TRUESIZE_OVERHEAD
}

/// `NUD_*`: a neighbour's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NudState {
    /// NUD_NONE: just created.
    None,
    /// Resolution in progress (broadcast requests).
    Incomplete,
    /// Confirmed within `reachable_time`.
    Reachable,
    /// Address known but not recently confirmed.
    Stale,
    /// Used while STALE: waiting `delay_first_probe_time` for a confirmation.
    Delay,
    /// Unicast probes in progress.
    Probe,
    /// Resolution failed.
    Failed,
    /// No resolution needed.
    Noarp,
    /// Static (`nud permanent`).
    Permanent,
}

impl NudState {
    /// `NUD_VALID`: the address is usable.
    pub const fn is_valid(self) -> bool {
        matches!(
            self,
            NudState::Permanent
                | NudState::Noarp
                | NudState::Reachable
                | NudState::Probe
                | NudState::Stale
                | NudState::Delay
        )
    }

    /// `NUD_CONNECTED`: usable without any check.
    pub const fn is_connected(self) -> bool {
        matches!(
            self,
            NudState::Permanent | NudState::Noarp | NudState::Reachable
        )
    }

    /// `NUD_IN_TIMER`: states that run the entry's timer.
    pub const fn in_timer(self) -> bool {
        matches!(
            self,
            NudState::Incomplete | NudState::Reachable | NudState::Delay | NudState::Probe
        )
    }

    /// The name `ip neigh` prints.
    pub const fn as_str(self) -> &'static str {
        match self {
            NudState::None => "NONE",
            NudState::Incomplete => "INCOMPLETE",
            NudState::Reachable => "REACHABLE",
            NudState::Stale => "STALE",
            NudState::Delay => "DELAY",
            NudState::Probe => "PROBE",
            NudState::Failed => "FAILED",
            NudState::Noarp => "NOARP",
            NudState::Permanent => "PERMANENT",
        }
    }
}

impl fmt::Display for NudState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table's parameters (`ip ntable show name arp_cache`,
/// `net.ipv4.neigh.default.*`), with Linux's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighParams {
    /// `base_reachable_time`: `reachable_time` is drawn in [½, 3/2)× this.
    pub base_reachable_time: Duration,
    /// `retrans_time`: between probes.
    pub retrans_time: Duration,
    /// `delay_first_probe_time`: DELAY before PROBE.
    pub delay_first_probe_time: Duration,
    /// `ucast_probes`: unicast probes in PROBE.
    pub ucast_probes: u32,
    /// `mcast_probes`: broadcast probes in INCOMPLETE.
    pub mcast_probes: u32,
    /// `mcast_resolicit`: broadcast probes added in PROBE.
    pub mcast_reprobes: u32,
    /// `app_probes`: probes left to a user-space daemon (none here).
    pub app_probes: u32,
    /// `unres_qlen_bytes`: bytes of packets held per unresolved entry.
    pub unres_qlen_bytes: usize,
    /// `gc_stale_time`: unused entries older than this are collected.
    pub gc_stale_time: Duration,
    /// `locktime`: a second, different answer within this is ignored.
    pub locktime: Duration,
    /// `gc_thresh1`: below this many entries the periodic gc does nothing.
    pub gc_thresh1: usize,
    /// `gc_thresh2`: above this, forced gc when creating (at most every 5 s).
    pub gc_thresh2: usize,
    /// `gc_thresh3`: hard limit (forced gc, else creation fails).
    pub gc_thresh3: usize,
    /// `gc_interval`: the periodic gc's period.
    pub gc_interval: Duration,
    /// `net.ipv4.conf.all.arp_accept`: create entries from gratuitous ARP
    /// and unsolicited replies.
    pub arp_accept: bool,
    /// `net.ipv4.conf.all.arp_ignore`: 0 answers for any local address, 1
    /// (or more) only for the receiving device's addresses.
    pub arp_ignore: u8,
}

impl Default for NeighParams {
    fn default() -> Self {
        NeighParams {
            base_reachable_time: Duration::from_secs(30),
            retrans_time: Duration::from_secs(1),
            delay_first_probe_time: Duration::from_secs(5),
            ucast_probes: 3,
            mcast_probes: 3,
            mcast_reprobes: 0,
            app_probes: 0,
            unres_qlen_bytes: 212_992,
            gc_stale_time: Duration::from_secs(60),
            locktime: Duration::from_secs(1),
            gc_thresh1: 128,
            gc_thresh2: 512,
            gc_thresh3: 1024,
            gc_interval: Duration::from_secs(30),
            arp_accept: false,
            arp_ignore: 0,
        }
    }
}

impl NeighParams {
    /// Writing the `unres_qlen` sysctl: `packets` full-size frames.
    pub fn set_unres_qlen(&mut self, packets: usize) {
        self.unres_qlen_bytes = packets.saturating_mul(skb_truesize(ETH_FRAME_LEN));
    }

    /// Reading the `unres_qlen` sysctl.
    pub fn unres_qlen(&self) -> usize {
        self.unres_qlen_bytes / skb_truesize(ETH_FRAME_LEN)
    }
}

/// The table's counters (`/proc/net/stat/arp_cache`, `ip -s ntable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NeighStats {
    /// Entries created.
    pub allocs: u64,
    /// Entries removed.
    pub destroys: u64,
    /// Lookups on the output path.
    pub lookups: u64,
    /// Lookups that found an entry.
    pub hits: u64,
    /// Resolutions that failed (entry to FAILED).
    pub res_failed: u64,
    /// Packets dropped from a full unresolved queue (`unres_discards`).
    pub unresolved_discards: u64,
    pub periodic_gc_runs: u64,
    pub forced_gc_runs: u64,
    /// Creations refused at `gc_thresh3` (`table_fulls`).
    pub table_fulls: u64,
}

/// One entry as `ip -s neigh` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighInfo {
    pub dev: IfIndex,
    pub dev_name: String,
    pub ip: Ipv4Addr,
    /// The link-layer address, when the state is valid.
    pub mac: Option<EthernetAddress>,
    pub state: NudState,
    /// Probes sent in the current INCOMPLETE/PROBE round.
    pub probes: u32,
    /// Packets waiting for resolution.
    pub queued: usize,
    /// Time since last used, confirmed and updated.
    pub used: Duration,
    pub confirmed: Duration,
    pub updated: Duration,
}

impl fmt::Display for NeighInfo {
    /// `192.0.2.2 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE`; with `{:#}`,
    /// `ip -s neigh`'s `used A/B/C probes N` too (seconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.ip, self.dev_name)?;
        if let Some(m) = self.mac {
            write!(f, " lladdr {m}")?;
        }
        if f.alternate() {
            write!(
                f,
                " used {}/{}/{} probes {}",
                self.used.as_millis() / 1000,
                self.confirmed.as_millis() / 1000,
                self.updated.as_millis() / 1000,
                self.probes
            )?;
        }
        write!(f, " {}", self.state)
    }
}

/// Why a neighbour operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighError {
    /// `ENODEV`.
    NoSuchDevice(IfIndex),
    /// `ENOENT`.
    NoSuchEntry,
    /// `EINVAL`: multicast, broadcast or unspecified address.
    InvalidAddress(Ipv4Addr),
    /// `ENOBUFS`: the table is at `gc_thresh3` and nothing could be freed.
    TableFull,
    /// `ENOBUFS`: no buffer for a packet.
    NoBufs,
}

impl fmt::Display for NeighError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighError::NoSuchDevice(d) => write!(f, "no such device {d} (ENODEV)"),
            NeighError::NoSuchEntry => write!(f, "no such neighbour entry (ENOENT)"),
            NeighError::InvalidAddress(a) => write!(f, "invalid neighbour address {a} (EINVAL)"),
            NeighError::TableFull => write!(f, "neighbour table overflow (ENOBUFS)"),
            NeighError::NoBufs => write!(f, "no buffer space available (ENOBUFS)"),
        }
    }
}

impl std::error::Error for NeighError {}

/// An address an entry may be made for (unicast).
fn valid_neigh_addr(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast())
}

impl Stack {
    /// `neigh_xmit()`: sends `skb` (data at its IPv4 header) to `nexthop` on
    /// `dev` through the neighbour layer at `now`, as `ip_finish_output2`
    /// does.
    pub fn neigh_xmit(&mut self, now: Instant, mut skb: Skb, dev: IfIndex, nexthop: Ipv4Addr) {
        self.set_now(now);
        skb.meta.egress_dev = Some(dev);
        self.neigh_output(skb, dev, nexthop);
    }

    /// `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn neigh_add_static(
        &mut self,
        dev: IfIndex,
        ip: Ipv4Addr,
        mac: EthernetAddress,
    ) -> Result<(), NeighError> {
        self.dev(dev).map_err(|_| NeighError::NoSuchDevice(dev))?;
        if !valid_neigh_addr(ip) {
            return Err(NeighError::InvalidAddress(ip));
        }
        self.neigh_create(dev, ip, true)
            .map_err(|_| NeighError::TableFull)?;
        self.neigh_update(
            (dev, ip),
            Some(mac),
            NudState::Permanent,
            table::UpdateFlags::ADMIN,
        );
        Ok(())
    }

    /// `ip neigh del IP dev DEV`: the entry fails (packets waiting on it get
    /// host unreachable) and is removed.
    pub fn neigh_del(&mut self, dev: IfIndex, ip: Ipv4Addr) -> Result<(), NeighError> {
        if !self.neigh.contains((dev, ip)) {
            return Err(NeighError::NoSuchEntry);
        }
        self.neigh_update((dev, ip), None, NudState::Failed, table::UpdateFlags::ADMIN);
        self.neigh_destroy((dev, ip));
        Ok(())
    }

    /// `ip neigh flush dev DEV`: deletes every entry of `dev` (all devices
    /// with `None`) except PERMANENT and NOARP ones. Returns how many.
    pub fn neigh_flush(&mut self, dev: Option<IfIndex>) -> usize {
        let keys = self.neigh.keys_where(|k, n| {
            dev.is_none_or(|d| d == k.0)
                && !matches!(n.state, NudState::Permanent | NudState::Noarp)
        });
        for &k in &keys {
            self.neigh_update(k, None, NudState::Failed, table::UpdateFlags::ADMIN);
            self.neigh_destroy(k);
        }
        keys.len()
    }

    /// `neigh_ifdown()`: the device went down or away: every entry of it
    /// goes, PERMANENT ones too; waiting packets are dropped (`NEIGH_DEAD`).
    pub fn neigh_ifdown(&mut self, dev: IfIndex) -> usize {
        let keys = self.neigh.keys_where(|k, _| k.0 == dev);
        for &k in &keys {
            self.neigh_destroy(k);
        }
        keys.len()
    }

    /// `ip neigh show`: every entry, by device then address.
    pub fn neigh_show(&self) -> Vec<NeighInfo> {
        self.neigh
            .iter()
            .map(|(k, n)| self.neigh_info(k, n))
            .collect()
    }

    /// The entry for `ip` on `dev`, if any.
    pub fn neigh_lookup(&self, dev: IfIndex, ip: Ipv4Addr) -> Option<NeighInfo> {
        self.neigh
            .get((dev, ip))
            .map(|n| self.neigh_info((dev, ip), n))
    }

    fn neigh_info(&self, k: (IfIndex, Ipv4Addr), n: &table::Neighbour) -> NeighInfo {
        let now = self.now;
        NeighInfo {
            dev: k.0,
            dev_name: self
                .dev(k.0)
                .map_or_else(|_| k.0.to_string(), |d| d.name().to_string()),
            ip: k.1,
            mac: if n.state.is_valid() { n.ha } else { None },
            state: n.state,
            probes: n.probes,
            queued: n.queue.len(),
            used: now.saturating_since(n.used),
            confirmed: now.saturating_since(n.confirmed),
            updated: now.saturating_since(n.updated),
        }
    }

    pub fn neigh_params(&self) -> &NeighParams {
        &self.neigh.params
    }

    /// The table's parameters (`ip ntable change name arp_cache …`).
    pub fn neigh_params_mut(&mut self) -> &mut NeighParams {
        &mut self.neigh.params
    }

    /// `/proc/net/stat/arp_cache`.
    pub fn neigh_stats(&self) -> &NeighStats {
        &self.neigh.stats
    }

    /// The current `reachable_time` (random in [½, 3/2)× base).
    pub fn neigh_reachable_time(&self) -> Duration {
        self.neigh.reachable_time()
    }

    /// Reseeds the generator `reachable_time` is drawn from, and redraws it.
    pub fn neigh_set_seed(&mut self, seed: u64) {
        self.neigh.reseed(seed);
    }

    /// Sends a gratuitous ARP request for `ip` (`arping -U`, what Linux
    /// sends when an address comes up): sender and target `ip`, broadcast.
    pub fn arp_send_gratuitous(
        &mut self,
        now: Instant,
        dev: IfIndex,
        ip: Ipv4Addr,
    ) -> Result<(), NeighError> {
        self.set_now(now);
        self.dev(dev).map_err(|_| NeighError::NoSuchDevice(dev))?;
        if !valid_neigh_addr(ip) {
            return Err(NeighError::InvalidAddress(ip));
        }
        self.arp_send(arp::ArpSend {
            op: netpath_wire::arp::Operation::Request,
            dev,
            dest_ip: ip,
            src_ip: ip,
            eth_dst: None,
            target_hw: None,
        })
    }

    /// The L2 step of `ip_finish_output2`: send `skb` (data at its IPv4
    /// header) to `nexthop` on `dev`: through the cached hardware header if
    /// the neighbour is valid, else `neigh_resolve_output`.
    pub(crate) fn neigh_output(&mut self, skb: Skb, dev: IfIndex, nexthop: Ipv4Addr) {
        self.neigh_output_inner(skb, dev, nexthop);
    }

    /// Neighbour timers due at `now` (entry timers and the periodic gc).
    pub(crate) fn neigh_timer(&mut self) -> bool {
        self.neigh_run_timers()
    }

    pub(crate) fn neigh_next_timer(&self) -> Option<Instant> {
        self.neigh.next_timer()
    }

    /// `kfree_skb` borrowing only the tracer and drop counters.
    fn neigh_drop(&mut self, skb: Skb, reason: DropReason) {
        self.kfree_skb(skb, reason);
    }
}
