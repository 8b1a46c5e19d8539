//! The neighbour table and its state machine (`net/core/neighbour.c`):
//! `__neigh_create` with `neigh_alloc`'s gc thresholds, `neigh_update`,
//! `__neigh_event_send`, `neigh_timer_handler`, `neigh_invalidate`,
//! `neigh_forced_gc` and `neigh_periodic_work`.
//!
//! An entry "holds a reference" (and so escapes garbage collection) exactly
//! while its timer runs (INCOMPLETE, REACHABLE, DELAY, PROBE), as the timer's
//! `neigh_hold` does in Linux; nothing else here keeps a reference.

use core::net::Ipv4Addr;
use std::collections::{BTreeMap, VecDeque};

use netpath_wire::ethernet::EthernetAddress;

use super::{skb_truesize, NeighParams, NeighStats, NudState};
use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::{Duration, Instant};

/// (device, next hop): the table's key.
pub(crate) type NeighKey = (IfIndex, Ipv4Addr);

/// The shortest timer Linux arms (`HZ/100`).
const MIN_TIMER: Duration = Duration::from_millis(10);
/// Forced gc spares entries updated within this (`neigh_forced_gc`'s tref).
const FORCED_GC_SPARE: Duration = Duration::from_secs(5);
/// `reachable_time` is redrawn this often (`neigh_periodic_work`).
const REDRAW_EVERY: Duration = Duration::from_secs(300);
const DEFAULT_SEED: u64 = 0x6e65_6967_685f_7462; // "neigh_tb"

/// `struct neighbour`.
#[derive(Debug)]
pub(crate) struct Neighbour {
    pub(crate) state: NudState,
    /// `ha`: the link-layer address, once learned (kept when FAILED).
    pub(crate) ha: Option<EthernetAddress>,
    /// `hh_cache`: the Ethernet header to push (dst, src, ETH_P_IP).
    pub(crate) hh: Option<[u8; 14]>,
    pub(crate) probes: u32,
    pub(crate) timer: Option<Instant>,
    pub(crate) confirmed: Instant,
    pub(crate) updated: Instant,
    pub(crate) used: Instant,
    /// `arp_queue`: packets waiting for resolution, oldest first.
    pub(crate) queue: VecDeque<Skb>,
    pub(crate) queue_bytes: usize,
    /// Creation order (the gc list's order).
    seq: u64,
}

/// `NEIGH_UPDATE_F_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpdateFlags {
    pub(crate) override_: bool,
    pub(crate) admin: bool,
}

impl UpdateFlags {
    pub(crate) const NONE: UpdateFlags = UpdateFlags {
        override_: false,
        admin: false,
    };
    pub(crate) const OVERRIDE: UpdateFlags = UpdateFlags {
        override_: true,
        admin: false,
    };
    pub(crate) const ADMIN: UpdateFlags = UpdateFlags {
        override_: true,
        admin: true,
    };
}

/// `struct neigh_table` (`arp_tbl`).
#[derive(Debug)]
pub struct NeighTable {
    pub(crate) params: NeighParams,
    pub(crate) stats: NeighStats,
    entries: BTreeMap<NeighKey, Neighbour>,
    /// No entry timer is due before this (a lower bound: a cancelled
    /// timer only causes an empty run, after which it is recomputed).
    next_entry_timer: Option<Instant>,
    gc_timer: Option<Instant>,
    /// Last forced gc.
    last_flush: Option<Instant>,
    last_rand: Instant,
    rng: u64,
    /// The current random draw for `reachable_time`.
    rand: u64,
    seq: u64,
    scratch: Vec<NeighKey>,
}

/// One step of SplitMix64.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Default for NeighTable {
    fn default() -> Self {
        let mut t = NeighTable {
            params: NeighParams::default(),
            stats: NeighStats::default(),
            entries: BTreeMap::new(),
            next_entry_timer: None,
            gc_timer: None,
            last_flush: None,
            last_rand: Instant::ZERO,
            rng: 0,
            rand: 0,
            seq: 0,
            scratch: Vec::new(),
        };
        t.reseed(DEFAULT_SEED);
        t
    }
}

impl NeighTable {
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = seed;
        self.rand = splitmix64(&mut self.rng);
    }

    /// `neigh_rand_reach_time(base_reachable_time)`: in [½, 3/2)× base,
    /// at millisecond resolution.
    pub(crate) fn reachable_time(&self) -> Duration {
        let base = self.params.base_reachable_time.as_millis();
        if base == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(base / 2 + self.rand % base)
    }

    pub(crate) fn contains(&self, k: NeighKey) -> bool {
        self.entries.contains_key(&k)
    }

    pub(crate) fn get(&self, k: NeighKey) -> Option<&Neighbour> {
        self.entries.get(&k)
    }

    pub(crate) fn get_mut(&mut self, k: NeighKey) -> Option<&mut Neighbour> {
        self.entries.get_mut(&k)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (NeighKey, &Neighbour)> {
        self.entries.iter().map(|(k, n)| (*k, n))
    }

    pub(crate) fn keys_where(&self, f: impl Fn(NeighKey, &Neighbour) -> bool) -> Vec<NeighKey> {
        self.entries
            .iter()
            .filter(|(k, n)| f(**k, n))
            .map(|(k, _)| *k)
            .collect()
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        match (self.next_entry_timer, self.gc_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arms `k`'s timer at `at`.
    fn arm(&mut self, k: NeighKey, at: Instant) {
        if let Some(n) = self.entries.get_mut(&k) {
            n.timer = Some(at);
            self.next_entry_timer = Some(self.next_entry_timer.map_or(at, |t| t.min(at)));
        }
    }

    fn recompute_next_timer(&mut self) {
        self.next_entry_timer = self.entries.values().filter_map(|n| n.timer).min();
    }

    /// Entries subject to gc (`gc_entries`: all but PERMANENT).
    fn gc_entries(&self) -> usize {
        self.entries
            .values()
            .filter(|n| n.state != NudState::Permanent)
            .count()
    }

    /// `neigh_max_probes()`.
    fn max_probes(&self, state: NudState) -> u32 {
        let p = &self.params;
        p.ucast_probes
            .saturating_add(p.app_probes)
            .saturating_add(if state == NudState::Probe {
                p.mcast_reprobes
            } else {
                p.mcast_probes
            })
    }
}

/// The Ethernet header for IPv4 to `dst` from `src` (`eth_header_cache`).
pub(crate) fn eth_hh(dst: EthernetAddress, src: EthernetAddress) -> [u8; 14] {
    let mut h = [0u8; 14];
    h[..6].copy_from_slice(dst.as_bytes());
    h[6..12].copy_from_slice(src.as_bytes());
    h[12..].copy_from_slice(&super::output::ETH_P_IP.to_be_bytes());
    h
}

impl Stack {
    /// `__neigh_create()`: a new entry (NUD_NONE) for `ip` on `dev`, unless
    /// one exists. `exempt`: not subject to the gc thresholds (PERMANENT).
    /// Fails when the table is full (`neigh_alloc`).
    pub(crate) fn neigh_create(
        &mut self,
        dev: IfIndex,
        ip: Ipv4Addr,
        exempt: bool,
    ) -> Result<(), ()> {
        let k = (dev, ip);
        if self.neigh.contains(k) {
            return Ok(());
        }
        if !exempt {
            let entries = self.neigh.gc_entries();
            let p = self.neigh.params;
            let flush_due = self
                .neigh
                .last_flush
                .is_none_or(|t| self.now > t.checked_add(FORCED_GC_SPARE).unwrap_or(t));
            if entries >= p.gc_thresh3 || (entries >= p.gc_thresh2 && flush_due) {
                let shrunk = self.neigh_forced_gc();
                if shrunk == 0 && entries >= p.gc_thresh3 {
                    self.neigh.stats.table_fulls += 1;
                    self.tracer.event(self.now, "neigh_table_full", Some(dev));
                    return Err(());
                }
            }
        }
        let now = self.now;
        let t = &mut self.neigh;
        t.seq += 1;
        t.entries.insert(
            k,
            Neighbour {
                state: NudState::None,
                ha: None,
                hh: None,
                probes: 0,
                timer: None,
                confirmed: now,
                updated: now,
                used: now,
                queue: VecDeque::new(),
                queue_bytes: 0,
                seq: t.seq,
            },
        );
        t.stats.allocs += 1;
        if t.gc_timer.is_none() && t.entries.len() >= t.params.gc_thresh1 {
            t.gc_timer = now.checked_add(t.params.gc_interval);
        }
        self.tracer.event(now, "neigh_create", Some(dev));
        Ok(())
    }

    /// Removes an entry (`neigh_cleanup_and_release` → `neigh_destroy`):
    /// packets still waiting are dropped with `NEIGH_DEAD`.
    pub(crate) fn neigh_destroy(&mut self, k: NeighKey) {
        let Some(n) = self.neigh.entries.remove(&k) else {
            return;
        };
        self.neigh.stats.destroys += 1;
        self.tracer.event(self.now, "neigh_destroy", Some(k.0));
        for skb in n.queue {
            self.neigh_drop(skb, DropReason::NeighDead);
        }
    }

    /// `neigh_update()`: a new state and (maybe) address for an entry.
    pub(crate) fn neigh_update(
        &mut self,
        k: NeighKey,
        lladdr: Option<EthernetAddress>,
        new: NudState,
        flags: UpdateFlags,
    ) {
        let now = self.now;
        let dev_mac = self.dev(k.0).map(|d| d.mac()).ok();
        let reachable = self.neigh.reachable_time();
        let base = self.neigh.params.base_reachable_time;
        let Some(n) = self.neigh.entries.get_mut(&k) else {
            return;
        };
        let old = n.state;
        if !flags.admin && matches!(old, NudState::Noarp | NudState::Permanent) {
            return;
        }
        if !new.is_valid() {
            n.timer = None;
            n.state = new;
            if matches!(old, NudState::Incomplete | NudState::Probe) && new == NudState::Failed {
                self.neigh_invalidate(k);
            }
            return;
        }
        let mut new = new;
        let lladdr = match (lladdr, n.ha) {
            (Some(a), _) => a,
            (None, Some(a)) if old.is_valid() => a,
            _ => return,
        };
        if new.is_connected() {
            n.confirmed = now;
        }
        if old.is_valid() {
            if Some(lladdr) != n.ha && !flags.override_ {
                return;
            }
            if Some(lladdr) == n.ha && new == NudState::Stale && !flags.admin {
                new = old;
            }
        }
        let addr_changed = n.ha != Some(lladdr);
        if new != old || addr_changed {
            n.updated = now;
        }
        if addr_changed {
            n.ha = Some(lladdr);
            if !new.is_connected() {
                n.confirmed = Instant::from_nanos(
                    now.as_nanos()
                        .saturating_sub(base.as_nanos().saturating_mul(2)),
                );
            }
        }
        // neigh_update_hhs / neigh_hh_init.
        if addr_changed || n.hh.is_none() {
            n.hh = dev_mac.map(|src| eth_hh(lladdr, src));
        }
        if new == old {
            return;
        }
        n.timer = None;
        if new == NudState::Probe {
            n.probes = 0;
        }
        n.state = new;
        if new.in_timer() {
            let delay = if new == NudState::Reachable {
                reachable
            } else {
                Duration::ZERO
            };
            self.neigh.arm(k, now.checked_add(delay).unwrap_or(now));
        }
        self.tracer
            .event_detail(now, "neigh_update", Some(k.0), new as u64);
        if !old.is_valid() {
            // Send what waited, in order.
            let Some(n) = self.neigh.entries.get_mut(&k) else {
                return;
            };
            let q = core::mem::take(&mut n.queue);
            n.queue_bytes = 0;
            for skb in q {
                self.neigh_resolve_output(skb, k);
            }
        }
    }

    /// `__neigh_event_send()`: a packet is about to use the entry. Returns
    /// the packet if it can be sent now; otherwise it was queued (and
    /// resolution started) or dropped.
    pub(crate) fn neigh_event_send(&mut self, k: NeighKey, skb: Skb) -> Option<Skb> {
        let now = self.now;
        let p = self.neigh.params;
        let Some(n) = self.neigh.entries.get_mut(&k) else {
            self.neigh_drop(skb, DropReason::NeighDead);
            return None;
        };
        n.used = now;
        let mut immediate_probe = false;
        match n.state {
            NudState::Reachable
            | NudState::Permanent
            | NudState::Noarp
            | NudState::Delay
            | NudState::Probe => return Some(skb),
            NudState::Stale => {
                n.state = NudState::Delay;
                n.updated = now;
                let at = now.checked_add(p.delay_first_probe_time).unwrap_or(now);
                self.neigh.arm(k, at);
                self.tracer.event(now, "neigh_event_send_delay", Some(k.0));
                return Some(skb);
            }
            NudState::Incomplete => {}
            NudState::None | NudState::Failed => {
                if p.mcast_probes.saturating_add(p.app_probes) == 0 {
                    n.state = NudState::Failed;
                    n.updated = now;
                    self.neigh_drop(skb, DropReason::NeighFailed);
                    return None;
                }
                n.probes = p.ucast_probes;
                n.state = NudState::Incomplete;
                n.updated = now;
                let at = now
                    .checked_add(p.retrans_time.max(MIN_TIMER))
                    .unwrap_or(now);
                self.neigh.arm(k, at);
                immediate_probe = true;
            }
        }
        // Queue it, dropping the oldest while over the byte limit.
        let Some(n) = self.neigh.entries.get_mut(&k) else {
            self.neigh_drop(skb, DropReason::NeighDead);
            return None;
        };
        let size = skb_truesize(skb.len());
        while n.queue_bytes + size > p.unres_qlen_bytes {
            let Some(old) = n.queue.pop_front() else {
                break;
            };
            n.queue_bytes = n.queue_bytes.saturating_sub(skb_truesize(old.len()));
            self.neigh.stats.unresolved_discards += 1;
            self.tracer.kfree_skb(now, &old, DropReason::NeighQueuefull);
            self.drops.kfree_skb_reason(old, DropReason::NeighQueuefull);
        }
        self.tracer.skb(now, "neigh_queue", &skb);
        n.queue_bytes += size;
        n.queue.push_back(skb);
        if immediate_probe {
            self.neigh_probe(k);
        }
        None
    }

    /// `neigh_probe()`: one solicitation, then count it.
    fn neigh_probe(&mut self, k: NeighKey) {
        let Some(n) = self.neigh.entries.get(&k) else {
            return;
        };
        // arp_solicit picks the newest waiting packet's source if it is ours.
        let hint = n.queue.back().and_then(|s| {
            let d = s.data();
            d.get(12..16).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        });
        let (probes, ha) = (n.probes, n.ha);
        self.arp_solicit(k, probes, hint, ha);
        if let Some(n) = self.neigh.entries.get_mut(&k) {
            n.probes = n.probes.saturating_add(1);
        }
    }

    /// `neigh_invalidate()`: the entry failed; every waiting packet gets
    /// ICMP host unreachable (`arp_error_report`) and is dropped.
    fn neigh_invalidate(&mut self, k: NeighKey) {
        let now = self.now;
        self.neigh.stats.res_failed += 1;
        let Some(n) = self.neigh.entries.get_mut(&k) else {
            return;
        };
        n.updated = now;
        let q = core::mem::take(&mut n.queue);
        n.queue_bytes = 0;
        self.tracer.event(now, "neigh_invalidate", Some(k.0));
        for mut skb in q {
            if skb.network_header().is_none() {
                skb.reset_network_header();
            }
            self.icmp_send(&skb, 3, 1, 0);
            self.neigh_drop(skb, DropReason::NeighFailed);
        }
    }

    /// Entry timers and the periodic gc due at `now`.
    pub(crate) fn neigh_run_timers(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        if self.neigh.gc_timer.is_some_and(|t| t <= now) {
            self.neigh_periodic_work();
            any = true;
        }
        if self.neigh.next_entry_timer.is_some_and(|t| t <= now) {
            let mut due = core::mem::take(&mut self.neigh.scratch);
            due.clear();
            due.extend(
                self.neigh
                    .entries
                    .iter()
                    .filter(|(_, n)| n.timer.is_some_and(|t| t <= now))
                    .map(|(k, _)| *k),
            );
            for &k in &due {
                if let Some(n) = self.neigh.entries.get_mut(&k) {
                    n.timer = None;
                }
                self.neigh_timer_handler(k);
                any = true;
            }
            due.clear();
            self.neigh.scratch = due;
            self.neigh.recompute_next_timer();
        }
        any
    }

    /// `neigh_timer_handler()`.
    fn neigh_timer_handler(&mut self, k: NeighKey) {
        if self.dev(k.0).is_err() {
            self.neigh_destroy(k);
            return;
        }
        let now = self.now;
        let p = self.neigh.params;
        let reachable = self.neigh.reachable_time();
        let retrans = now
            .checked_add(p.retrans_time.max(MIN_TIMER))
            .unwrap_or(now);
        let after = |t: Instant, d: Duration| t.checked_add(d).unwrap_or(t);
        let Some(n) = self.neigh.entries.get_mut(&k) else {
            return;
        };
        let old = n.state;
        if !old.in_timer() {
            return;
        }
        let next = match old {
            NudState::Reachable => {
                if now < after(n.confirmed, reachable) {
                    after(n.confirmed, reachable)
                } else if now < after(n.used, p.delay_first_probe_time) {
                    n.state = NudState::Delay;
                    n.updated = now;
                    after(now, p.delay_first_probe_time)
                } else {
                    n.state = NudState::Stale;
                    n.updated = now;
                    now
                }
            }
            NudState::Delay => {
                if now < after(n.confirmed, p.delay_first_probe_time) {
                    n.state = NudState::Reachable;
                    n.updated = now;
                    after(n.confirmed, reachable)
                } else {
                    n.state = NudState::Probe;
                    n.updated = now;
                    n.probes = 0;
                    retrans
                }
            }
            _ => retrans,
        };
        let state = n.state;
        if state != old {
            self.tracer
                .event_detail(now, "neigh_timer_handler", Some(k.0), state as u64);
        }
        let probing = matches!(state, NudState::Incomplete | NudState::Probe);
        let n_probes = n.probes;
        if probing && n_probes >= self.neigh.max_probes(state) {
            if let Some(n) = self.neigh.entries.get_mut(&k) {
                n.state = NudState::Failed;
            }
            self.tracer.event_detail(
                now,
                "neigh_timer_handler",
                Some(k.0),
                NudState::Failed as u64,
            );
            self.neigh_invalidate(k);
            return;
        }
        if state.in_timer() {
            self.neigh.arm(k, next.max(after(now, MIN_TIMER)));
        }
        if probing {
            self.neigh_probe(k);
        }
    }

    /// `neigh_forced_gc()`: frees unreferenced entries that failed or were
    /// not updated for 5 s, oldest first, down to `gc_thresh2`. Returns how
    /// many went.
    fn neigh_forced_gc(&mut self) -> usize {
        let now = self.now;
        self.neigh.stats.forced_gc_runs += 1;
        let max_clean = self
            .neigh
            .gc_entries()
            .saturating_sub(self.neigh.params.gc_thresh2);
        let mut cands: Vec<(u64, NeighKey)> = self
            .neigh
            .entries
            .iter()
            .filter(|(_, n)| {
                !n.state.in_timer()
                    && n.state != NudState::Permanent
                    && (matches!(n.state, NudState::Failed | NudState::Noarp)
                        || now.saturating_since(n.updated) > FORCED_GC_SPARE)
            })
            .map(|(k, n)| (n.seq, *k))
            .collect();
        cands.sort_unstable();
        let mut shrunk = 0;
        for (_, k) in cands {
            self.neigh_destroy(k);
            shrunk += 1;
            if shrunk >= max_clean {
                break;
            }
        }
        self.neigh.last_flush = Some(now);
        self.tracer
            .event_detail(now, "neigh_forced_gc", None, shrunk as u64);
        shrunk
    }

    /// `neigh_periodic_work()`: redraws `reachable_time` every 300 s; with
    /// at least `gc_thresh1` entries, frees unreferenced FAILED entries and
    /// those unused for `gc_stale_time`.
    fn neigh_periodic_work(&mut self) {
        let now = self.now;
        let t = &mut self.neigh;
        t.stats.periodic_gc_runs += 1;
        if now >= t.last_rand.checked_add(REDRAW_EVERY).unwrap_or(now) {
            t.rand = splitmix64(&mut t.rng);
            t.last_rand = now;
        }
        if t.entries.len() >= t.params.gc_thresh1 {
            let stale = t.params.gc_stale_time;
            for n in t.entries.values_mut() {
                if n.used < n.confirmed && n.confirmed <= now {
                    n.used = n.confirmed;
                }
            }
            let dead = t.keys_where(|_, n| {
                !n.state.in_timer()
                    && n.state != NudState::Permanent
                    && (n.state == NudState::Failed || now.saturating_since(n.used) >= stale)
            });
            for k in dead {
                self.neigh_destroy(k);
            }
        }
        let t = &mut self.neigh;
        t.gc_timer = if t.entries.len() >= t.params.gc_thresh1 {
            now.checked_add(t.params.gc_interval)
        } else {
            None
        };
        self.tracer.event(now, "neigh_periodic_work", None);
    }
}
