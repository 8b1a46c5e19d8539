//! TCP's socket tables: Linux's `inet_hashtables.c` (ehash, the listening
//! hash, bhash, `__inet_lookup`, `__inet_hash_connect`) and the port choice of
//! `inet_connection_sock.c` (`inet_csk_get_port`, `inet_csk_find_open_port`,
//! `inet_csk_bind_conflict`), as a pure data structure over a socket handle
//! `S`.
//!
//! Seed ingress stage: `tcp_v4_rcv` — "find the application (the TCP socket)
//! this packet belongs to" — is [`InetHashTables::lookup`]: the established
//! hash first (an exact 4-tuple, O(1)), then the listeners of the port scored
//! by Linux's `compute_score`.
//!
//! Determinism: Linux draws its port offsets from `get_random_u32_below` and
//! its connect offset from `secure_ipv4_port_ephemeral` (siphash with a boot
//! secret) plus `table_perturb[]`. Here both come from a seed passed at
//! construction: a splitmix64 generator for the "random" draws and a keyed
//! splitmix64 mix for the per-destination hash (not cryptographic; same shape).
//! The perturbation table has [`PERTURB_SIZE`] entries (Linux: 2^16).
//!
//! Not modelled: network namespaces, VRF (`sdif`, `l3mdev`), IPv6,
//! `ip_local_reserved_ports`, privileged ports, `tcp_tw_reuse`,
//! `ip_autobind_reuse`, BPF `sk_lookup`/reuseport programs, owner uids (one
//! user is assumed, so SO_REUSEPORT's uid check always passes).

use core::hash::Hash;
use core::net::Ipv4Addr;
use core::ops::RangeInclusive;
use std::collections::HashMap;

use super::flowhash::FlowHashBuilder;

use super::{Errno, EPHEMERAL_PORTS};
use crate::dev::IfIndex;

/// Entries of the connect perturbation table (`INET_TABLE_PERTURB_SIZE` is
/// 2^16 in Linux; smaller here, same role).
pub const PERTURB_SIZE: usize = 256;

/// An established (or TIME_WAIT) connection's key, from the socket's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub laddr: Ipv4Addr,
    pub lport: u16,
    pub raddr: Ipv4Addr,
    pub rport: u16,
}

/// Socket options that take part in binding: `SO_REUSEADDR`,
/// `SO_REUSEPORT`, `SO_BINDTODEVICE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindOpts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub bound_dev: Option<IfIndex>,
}

/// What [`InetHashTables::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<S> {
    Established(S),
    Listener(S),
}

/// A bhash owner, for listing (`ss -a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundInfo<S> {
    pub sk: S,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub opts: BindOpts,
    pub listening: bool,
}

/// A listening socket, for listing (`ss -l`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerInfo<S> {
    pub sk: S,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub bound_dev: Option<IfIndex>,
    pub reuseport: bool,
}

/// One owner of a bind bucket (`tb->owners`).
#[derive(Debug, Clone, Copy)]
struct Owner<S> {
    sk: S,
    addr: Ipv4Addr,
    opts: BindOpts,
    listening: bool,
}

/// One entry of a port's listening list: a lone listener, or a reuseport
/// group (`struct sock_reuseport`) whose members share address and device.
#[derive(Debug, Clone)]
struct ListenSlot<S> {
    addr: Ipv4Addr,
    dev: Option<IfIndex>,
    reuseport: bool,
    members: Vec<S>,
}

/// Whether the bucket a port belongs to was made by `bind()` (Linux's
/// `fastreuse >= 0`) or only by `__inet_hash_connect` (`fastreuse == -1`).
#[derive(Debug, Clone)]
struct Bucket<S> {
    owners: Vec<Owner<S>>,
    by_connect: bool,
}

/// The TCP socket tables (`struct inet_hashinfo`).
#[derive(Debug, Clone)]
pub struct InetHashTables<S: Copy + Eq + Hash> {
    ehash: HashMap<FourTuple, (S, Option<IfIndex>), FlowHashBuilder>,
    lhash: HashMap<u16, Vec<ListenSlot<S>>, FlowHashBuilder>,
    bhash: HashMap<u16, Bucket<S>, FlowHashBuilder>,
    /// Which port each bound socket owns (`icsk_bind_hash`).
    bound: HashMap<S, u16, FlowHashBuilder>,
    range: (u16, u16),
    rng: u64,
    key: (u64, u64),
    perturb: [u32; PERTURB_SIZE],
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `reciprocal_scale`: map a 32-bit hash onto `0..n`.
fn reciprocal_scale(hash: u32, n: usize) -> usize {
    ((u64::from(hash) * n as u64) >> 32) as usize
}

/// `inet_bind_conflict` + `inet_rcv_saddr_equal(.., match_wildcard)`:
/// does a socket binding `addr` with `opts` (listening or not) clash with `o`?
/// `relax` is true for an explicit port (`inet_csk_get_port`), false for the
/// ephemeral search (`inet_csk_find_open_port`), where any overlap clashes.
fn bind_conflict<S>(addr: Ipv4Addr, opts: BindOpts, o: &Owner<S>, relax: bool) -> bool {
    let dev_overlap = opts.bound_dev.is_none()
        || o.opts.bound_dev.is_none()
        || opts.bound_dev == o.opts.bound_dev;
    let addr_overlap = addr == o.addr || addr.is_unspecified() || o.addr.is_unspecified();
    if !dev_overlap || !addr_overlap {
        return false;
    }
    if !relax {
        return true;
    }
    if opts.reuseaddr && o.opts.reuseaddr && !o.listening {
        return false;
    }
    !(opts.reuseport && o.opts.reuseport)
}

impl<S: Copy + Eq + Hash> InetHashTables<S> {
    /// Tables with `net.ipv4.ip_local_port_range` = [`EPHEMERAL_PORTS`].
    pub fn new(seed: u64) -> Self {
        let hasher = FlowHashBuilder::new(seed);
        InetHashTables {
            ehash: HashMap::with_hasher(hasher),
            lhash: HashMap::with_hasher(hasher),
            bhash: HashMap::with_hasher(hasher),
            bound: HashMap::with_hasher(hasher),
            range: (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end()),
            rng: seed,
            key: (splitmix(seed ^ 0x5eed), splitmix(seed ^ 0xc0ffee)),
            perturb: [0; PERTURB_SIZE],
        }
    }

    /// Tables with a custom local port range; `EINVAL` for an empty range or
    /// one including port 0.
    pub fn with_port_range(seed: u64, range: RangeInclusive<u16>) -> Result<Self, Errno> {
        let mut t = Self::new(seed);
        t.set_port_range(range)?;
        Ok(t)
    }

    /// Write `ip_local_port_range`.
    pub fn set_port_range(&mut self, range: RangeInclusive<u16>) -> Result<(), Errno> {
        let (lo, hi) = (*range.start(), *range.end());
        if lo == 0 || lo > hi {
            return Err(Errno::EINVAL);
        }
        self.range = (lo, hi);
        Ok(())
    }

    pub fn port_range(&self) -> RangeInclusive<u16> {
        self.range.0..=self.range.1
    }

    /// `get_random_u32_below(n)`, deterministic.
    fn random_below(&mut self, n: u32) -> u32 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let r = splitmix(self.rng) as u32;
        ((u64::from(r) * u64::from(n)) >> 32) as u32
    }

    /// `secure_ipv4_port_ephemeral`: a keyed hash of the destination.
    fn port_offset(&self, laddr: Ipv4Addr, raddr: Ipv4Addr, rport: u16) -> u64 {
        let a = (u64::from(u32::from(laddr)) << 32) | u64::from(u32::from(raddr));
        splitmix(splitmix(a ^ self.key.0) ^ u64::from(rport) ^ self.key.1)
    }

    // ---- ehash -------------------------------------------------------

    /// `inet_ehash_insert`: `EADDRNOTAVAIL` if the 4-tuple is taken.
    /// `bound_dev` is the socket's `SO_BINDTODEVICE`, matched on lookup.
    pub fn ehash_insert(
        &mut self,
        tuple: FourTuple,
        sk: S,
        bound_dev: Option<IfIndex>,
    ) -> Result<(), Errno> {
        if self.ehash.contains_key(&tuple) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        self.ehash.insert(tuple, (sk, bound_dev));
        Ok(())
    }

    /// `inet_unhash` for an established socket.
    pub fn ehash_remove(&mut self, tuple: &FourTuple) -> Option<S> {
        self.ehash.remove(tuple).map(|(s, _)| s)
    }

    /// The socket owning an exact 4-tuple, ignoring device binding.
    pub fn ehash_lookup(&self, tuple: &FourTuple) -> Option<S> {
        self.ehash.get(tuple).map(|&(s, _)| s)
    }

    // ---- bhash -------------------------------------------------------

    /// `inet_bind` → `inet_csk_get_port`: bind `sk` to `addr:port`; port 0
    /// picks an ephemeral port. Returns the port. `EINVAL` if `sk` is already
    /// bound, `EADDRINUSE` on a conflict or when no port is free.
    pub fn bind(&mut self, sk: S, addr: Ipv4Addr, port: u16, opts: BindOpts) -> Result<u16, Errno> {
        if self.bound.contains_key(&sk) {
            return Err(Errno::EINVAL);
        }
        let port = if port == 0 {
            self.find_open_port(addr, opts).ok_or(Errno::EADDRINUSE)?
        } else {
            if self.port_conflict(port, addr, opts, true) {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        let b = self.bhash.entry(port).or_insert_with(|| Bucket {
            owners: Vec::new(),
            by_connect: false,
        });
        b.by_connect = false;
        b.owners.push(Owner {
            sk,
            addr,
            opts,
            listening: false,
        });
        self.bound.insert(sk, port);
        Ok(port)
    }

    fn port_conflict(&self, port: u16, addr: Ipv4Addr, opts: BindOpts, relax: bool) -> bool {
        self.bhash
            .get(&port)
            .is_some_and(|b| b.owners.iter().any(|o| bind_conflict(addr, opts, o, relax)))
    }

    /// `inet_csk_find_open_port`: scan from a random odd offset in steps of
    /// 2 (connect() favours even offsets), then the other parity; a
    /// `SO_REUSEADDR` socket tries the lower half of the range first.
    fn find_open_port(&mut self, addr: Ipv4Addr, opts: BindOpts) -> Option<u16> {
        let (lo0, hi0) = (u32::from(self.range.0), u32::from(self.range.1) + 1);
        let mut attempt_half = if opts.reuseaddr && hi0 - lo0 >= 4 {
            1
        } else {
            0
        };
        loop {
            let (mut low, mut high) = (lo0, hi0);
            if attempt_half != 0 {
                let half = low + (((high - low) >> 2) << 1);
                if attempt_half == 1 {
                    high = half;
                } else {
                    low = half;
                }
            }
            let mut remaining = high - low;
            if remaining > 1 {
                remaining &= !1;
            }
            let mut offset = self.random_below(remaining) | 1;
            loop {
                let mut port = low + offset;
                let mut i = 0;
                while i < remaining {
                    if port >= high {
                        port -= remaining;
                    }
                    let p = port as u16;
                    if !self.port_conflict(p, addr, opts, false) {
                        return Some(p);
                    }
                    i += 2;
                    port += 2;
                }
                if offset & 1 == 0 {
                    break;
                }
                offset -= 1;
            }
            if attempt_half == 1 {
                attempt_half = 2;
            } else {
                return None;
            }
        }
    }

    /// `inet_put_port`: drop `sk` from its bind bucket (close, or a failed
    /// connect). Also removes it from the listening hash.
    pub fn unbind(&mut self, sk: S) -> Option<u16> {
        self.unlisten(sk);
        let port = self.bound.remove(&sk)?;
        if let Some(b) = self.bhash.get_mut(&port) {
            b.owners.retain(|o| o.sk != sk);
            if b.owners.is_empty() {
                self.bhash.remove(&port);
            }
        }
        Some(port)
    }

    /// `__inet_inherit_port`: an accepted child joins its listener's bind
    /// bucket (so it keeps the port busy after the listener closes).
    /// `EINVAL` if the parent is unbound or the child already bound.
    pub fn inherit_port(&mut self, child: S, parent: S) -> Result<(), Errno> {
        if self.bound.contains_key(&child) {
            return Err(Errno::EINVAL);
        }
        let port = *self.bound.get(&parent).ok_or(Errno::EINVAL)?;
        let b = self.bhash.get_mut(&port).ok_or(Errno::EINVAL)?;
        let p = *b
            .owners
            .iter()
            .find(|o| o.sk == parent)
            .ok_or(Errno::EINVAL)?;
        b.owners.push(Owner {
            sk: child,
            listening: false,
            ..p
        });
        self.bound.insert(child, port);
        Ok(())
    }

    /// The address and port `sk` is bound to.
    pub fn local(&self, sk: S) -> Option<(Ipv4Addr, u16)> {
        let port = *self.bound.get(&sk)?;
        let b = self.bhash.get(&port)?;
        b.owners.iter().find(|o| o.sk == sk).map(|o| (o.addr, port))
    }

    // ---- listening hash ----------------------------------------------

    /// `inet_csk_listen_start`: re-check the port as a listener
    /// (`EADDRINUSE`: another socket sharing it by SO_REUSEADDR is already
    /// listening) and enter the listening hash, joining a reuseport group of
    /// the same address and device (`inet_reuseport_add_sock`). `EINVAL` if
    /// unbound (bind port 0 first to autobind). Listening twice is a no-op.
    pub fn listen(&mut self, sk: S) -> Result<(), Errno> {
        let port = *self.bound.get(&sk).ok_or(Errno::EINVAL)?;
        let b = self.bhash.get(&port).ok_or(Errno::EINVAL)?;
        let me = *b.owners.iter().find(|o| o.sk == sk).ok_or(Errno::EINVAL)?;
        if me.listening {
            return Ok(());
        }
        if b.owners
            .iter()
            .any(|o| o.sk != sk && bind_conflict(me.addr, me.opts, o, true))
        {
            return Err(Errno::EADDRINUSE);
        }
        if let Some(b) = self.bhash.get_mut(&port) {
            for o in b.owners.iter_mut().filter(|o| o.sk == sk) {
                o.listening = true;
            }
        }
        let slots = self.lhash.entry(port).or_default();
        if me.opts.reuseport {
            if let Some(g) = slots
                .iter_mut()
                .find(|g| g.reuseport && g.addr == me.addr && g.dev == me.opts.bound_dev)
            {
                g.members.push(sk);
                return Ok(());
            }
        }
        // IPv4 listeners go to the head of the chain (`__sk_nulls_add_node_rcu`).
        slots.insert(
            0,
            ListenSlot {
                addr: me.addr,
                dev: me.opts.bound_dev,
                reuseport: me.opts.reuseport,
                members: vec![sk],
            },
        );
        Ok(())
    }

    /// `inet_unhash` for a listener (`reuseport_detach_sock` moves the last
    /// member into the gap). Returns whether `sk` was listening.
    pub fn unlisten(&mut self, sk: S) -> bool {
        let Some(&port) = self.bound.get(&sk) else {
            return false;
        };
        let mut found = false;
        if let Some(slots) = self.lhash.get_mut(&port) {
            for g in slots.iter_mut() {
                if let Some(i) = g.members.iter().position(|&m| m == sk) {
                    g.members.swap_remove(i);
                    found = true;
                }
            }
            slots.retain(|g| !g.members.is_empty());
            if slots.is_empty() {
                self.lhash.remove(&port);
            }
        }
        if let Some(b) = self.bhash.get_mut(&port) {
            for o in b.owners.iter_mut().filter(|o| o.sk == sk) {
                o.listening = false;
            }
        }
        found
    }

    /// `inet_lhash2_lookup` over one address key: the first best
    /// `compute_score`, resolved through its reuseport group.
    fn lhash2_lookup(
        slots: &[ListenSlot<S>],
        addr: Ipv4Addr,
        dev: IfIndex,
        flow_hash: u32,
    ) -> Option<S> {
        let mut best: Option<(u8, &ListenSlot<S>)> = None;
        for g in slots.iter().filter(|g| g.addr == addr) {
            let score = match g.dev {
                None => 1,
                Some(d) if d == dev => 2,
                Some(_) => continue,
            } + 1; // PF_INET
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, g));
            }
        }
        let (_, g) = best?;
        let i = if g.reuseport {
            reciprocal_scale(flow_hash, g.members.len())
        } else {
            0
        };
        g.members.get(i).copied()
    }

    /// `__inet_lookup_listener`: listeners on the exact destination address
    /// first, then on 0.0.0.0; `flow_hash` (`inet_ehashfn` of the packet)
    /// picks a reuseport group member.
    pub fn lookup_listener(
        &self,
        daddr: Ipv4Addr,
        dport: u16,
        dev: IfIndex,
        flow_hash: u32,
    ) -> Option<S> {
        let slots = self.lhash.get(&dport)?;
        Self::lhash2_lookup(slots, daddr, dev, flow_hash)
            .or_else(|| Self::lhash2_lookup(slots, Ipv4Addr::UNSPECIFIED, dev, flow_hash))
    }

    /// `__inet_lookup`: the socket a segment `saddr:sport → daddr:dport`
    /// arriving on `dev` belongs to — established first, then a listener.
    pub fn lookup(
        &self,
        saddr: Ipv4Addr,
        sport: u16,
        daddr: Ipv4Addr,
        dport: u16,
        dev: IfIndex,
        flow_hash: u32,
    ) -> Option<Lookup<S>> {
        let t = FourTuple {
            laddr: daddr,
            lport: dport,
            raddr: saddr,
            rport: sport,
        };
        if let Some(sk) = self.lookup_established(&t, dev) {
            return Some(Lookup::Established(sk));
        }
        self.lookup_listener(daddr, dport, dev, flow_hash)
            .map(Lookup::Listener)
    }

    /// `__inet_lookup_established`: the connection `tuple` (local, remote)
    /// arriving on `dev` belongs to, if any.
    pub fn lookup_established(&self, tuple: &FourTuple, dev: IfIndex) -> Option<S> {
        match self.ehash.get(tuple) {
            Some(&(sk, bdev)) if bdev.is_none_or(|d| d == dev) => Some(sk),
            _ => None,
        }
    }

    // ---- connect -----------------------------------------------------

    /// `__inet_hash_connect`: give a connecting socket its local port and
    /// enter it into ehash. A bound socket keeps its port (`EADDRNOTAVAIL` if
    /// the 4-tuple is taken; a wildcard bind takes `laddr`). An unbound one
    /// gets a port from the range: offset = keyed hash of the destination +
    /// `table_perturb[hash]`, even offsets first then odd, skipping ports that
    /// `bind()` holds and 4-tuples already in ehash; `EADDRNOTAVAIL` when the
    /// range is exhausted for this destination. Returns the local port.
    pub fn hash_connect(
        &mut self,
        sk: S,
        laddr: Ipv4Addr,
        raddr: Ipv4Addr,
        rport: u16,
    ) -> Result<u16, Errno> {
        if let Some(&port) = self.bound.get(&sk) {
            let mut dev = None;
            let mut wildcard = false;
            if let Some(o) = self
                .bhash
                .get(&port)
                .and_then(|b| b.owners.iter().find(|o| o.sk == sk))
            {
                dev = o.opts.bound_dev;
                wildcard = o.addr.is_unspecified();
            }
            let t = FourTuple {
                laddr,
                lport: port,
                raddr,
                rport,
            };
            self.ehash_insert(t, sk, dev)?;
            if wildcard {
                if let Some(b) = self.bhash.get_mut(&port) {
                    for o in b.owners.iter_mut().filter(|o| o.sk == sk) {
                        o.addr = laddr;
                    }
                }
            }
            return Ok(port);
        }
        let (low, high) = (u32::from(self.range.0), u32::from(self.range.1) + 1);
        let mut remaining = high - low;
        if remaining > 1 {
            remaining &= !1;
        }
        let port_offset = self.port_offset(laddr, raddr, rport);
        let index = (port_offset as usize) & (PERTURB_SIZE - 1);
        let mut offset = self.perturb[index].wrapping_add((port_offset >> 32) as u32) % remaining;
        offset &= !1;
        loop {
            let mut port = low + offset;
            let mut i = 0;
            while i < remaining {
                if port >= high {
                    port -= remaining;
                }
                let p = port as u16;
                let t = FourTuple {
                    laddr,
                    lport: p,
                    raddr,
                    rport,
                };
                let usable = match self.bhash.get(&p) {
                    None => true,
                    Some(b) => b.by_connect && !self.ehash.contains_key(&t),
                };
                if usable {
                    let step = i.max(self.random_below(8) * 2);
                    self.perturb[index] = self.perturb[index].wrapping_add(step + 2);
                    let b = self.bhash.entry(p).or_insert_with(|| Bucket {
                        owners: Vec::new(),
                        by_connect: true,
                    });
                    b.owners.push(Owner {
                        sk,
                        addr: laddr,
                        opts: BindOpts::default(),
                        listening: false,
                    });
                    self.bound.insert(sk, p);
                    self.ehash.insert(t, (sk, None));
                    return Ok(p);
                }
                i += 2;
                port += 2;
            }
            offset += 1;
            if offset & 1 == 0 || remaining <= 1 {
                return Err(Errno::EADDRNOTAVAIL);
            }
        }
    }

    // ---- listing -----------------------------------------------------

    pub fn established_len(&self) -> usize {
        self.ehash.len()
    }

    pub fn listening_len(&self) -> usize {
        self.lhash.values().flatten().map(|g| g.members.len()).sum()
    }

    pub fn bound_len(&self) -> usize {
        self.bound.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ehash.is_empty() && self.lhash.is_empty() && self.bhash.is_empty()
    }

    /// The established hash (unordered), as `ss -t`.
    pub fn established(&self) -> impl Iterator<Item = (FourTuple, S)> + '_ {
        self.ehash.iter().map(|(t, &(s, _))| (*t, s))
    }

    /// Listening sockets (unordered), as `ss -lt`.
    pub fn listeners(&self) -> impl Iterator<Item = ListenerInfo<S>> + '_ {
        self.lhash.iter().flat_map(|(&port, slots)| {
            slots.iter().flat_map(move |g| {
                g.members.iter().map(move |&sk| ListenerInfo {
                    sk,
                    addr: g.addr,
                    port,
                    bound_dev: g.dev,
                    reuseport: g.reuseport,
                })
            })
        })
    }

    /// The bind buckets' owners (unordered).
    pub fn bound(&self) -> impl Iterator<Item = BoundInfo<S>> + '_ {
        self.bhash.iter().flat_map(|(&port, b)| {
            b.owners.iter().map(move |o| BoundInfo {
                sk: o.sk,
                addr: o.addr,
                port,
                opts: o.opts,
                listening: o.listening,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
    const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const ETH0: IfIndex = IfIndex(2);
    const ETH1: IfIndex = IfIndex(3);

    fn t() -> InetHashTables<u32> {
        InetHashTables::new(7)
    }

    fn opts(reuseaddr: bool, reuseport: bool) -> BindOpts {
        BindOpts {
            reuseaddr,
            reuseport,
            bound_dev: None,
        }
    }

    fn listen_on(t: &mut InetHashTables<u32>, sk: u32, addr: Ipv4Addr, port: u16, o: BindOpts) {
        assert_eq!(t.bind(sk, addr, port, o), Ok(port));
        assert_eq!(t.listen(sk), Ok(()));
    }

    #[test]
    fn established_beats_listener() {
        let mut t = t();
        listen_on(&mut t, 1, ANY, 80, BindOpts::default());
        let tuple = FourTuple {
            laddr: A,
            lport: 80,
            raddr: R,
            rport: 5000,
        };
        t.ehash_insert(tuple, 2, None).unwrap();
        assert_eq!(
            t.lookup(R, 5000, A, 80, ETH0, 0),
            Some(Lookup::Established(2))
        );
        assert_eq!(t.lookup(R, 5001, A, 80, ETH0, 0), Some(Lookup::Listener(1)));
        assert_eq!(t.lookup(R, 5000, A, 81, ETH0, 0), None);
        assert_eq!(t.ehash_insert(tuple, 3, None), Err(Errno::EADDRNOTAVAIL));
    }

    #[test]
    fn established_bound_device_must_match() {
        let mut t = t();
        let tuple = FourTuple {
            laddr: A,
            lport: 80,
            raddr: R,
            rport: 5000,
        };
        t.ehash_insert(tuple, 2, Some(ETH1)).unwrap();
        assert_eq!(t.lookup(R, 5000, A, 80, ETH0, 0), None);
        assert_eq!(
            t.lookup(R, 5000, A, 80, ETH1, 0),
            Some(Lookup::Established(2))
        );
    }

    #[test]
    fn specific_listener_beats_wildcard() {
        let mut t = t();
        // Linux needs SO_REUSEPORT for overlapping listeners on one port.
        listen_on(&mut t, 1, ANY, 80, opts(false, true));
        listen_on(&mut t, 2, A, 80, opts(false, true));
        assert_eq!(t.lookup(R, 1, A, 80, ETH0, 0), Some(Lookup::Listener(2)));
        assert_eq!(t.lookup(R, 1, B, 80, ETH0, 0), Some(Lookup::Listener(1)));
        // Even a device-bound wildcard does not beat the exact address.
        let mut t2 = super::InetHashTables::<u32>::new(1);
        listen_on(&mut t2, 2, A, 80, opts(false, true));
        let dev = BindOpts {
            bound_dev: Some(ETH0),
            ..opts(false, true)
        };
        listen_on(&mut t2, 1, ANY, 80, dev);
        assert_eq!(t2.lookup(R, 1, A, 80, ETH0, 0), Some(Lookup::Listener(2)));
    }

    #[test]
    fn bindtodevice_scoring() {
        let mut t = t();
        listen_on(&mut t, 1, ANY, 80, opts(false, true));
        let d1 = BindOpts {
            bound_dev: Some(ETH1),
            ..opts(false, true)
        };
        // A wildcard bound to ETH1 scores 3 against the unbound's 2.
        listen_on(&mut t, 2, ANY, 80, d1);
        assert_eq!(t.lookup(R, 1, A, 80, ETH1, 0), Some(Lookup::Listener(2)));
        assert_eq!(t.lookup(R, 1, A, 80, ETH0, 0), Some(Lookup::Listener(1)));
        t.unbind(1);
        // Bound to another device: no match at all.
        assert_eq!(t.lookup(R, 1, A, 80, ETH0, 0), None);
        assert_eq!(t.listening_len(), 1);
    }

    #[test]
    fn reuseport_group_spreads_by_flow_hash() {
        let mut t = t();
        for sk in 1..=4 {
            listen_on(&mut t, sk, ANY, 443, opts(false, true));
        }
        assert_eq!(t.listening_len(), 4);
        let pick = |t: &InetHashTables<u32>, h: u32| match t.lookup(R, 1, A, 443, ETH0, h) {
            Some(Lookup::Listener(s)) => s,
            other => panic!("{other:?}"),
        };
        // reciprocal_scale: quarter of the hash space each.
        assert_eq!(pick(&t, 0), 1);
        assert_eq!(pick(&t, 0x4000_0000), 2);
        assert_eq!(pick(&t, 0x8000_0000), 3);
        assert_eq!(pick(&t, 0xffff_ffff), 4);
        let mut seen = [0u32; 5];
        for h in 0..1000u32 {
            let s = pick(&t, h.wrapping_mul(0x9e37_79b9));
            assert_eq!(s, pick(&t, h.wrapping_mul(0x9e37_79b9)));
            seen[s as usize] += 1;
        }
        assert!(seen[1..].iter().all(|&n| n > 150), "{seen:?}");
        // reuseport_detach_sock: the last member fills the gap.
        assert!(t.unlisten(1));
        assert_eq!(pick(&t, 0), 4);
        assert_eq!(t.listening_len(), 3);
    }

    /// The `bind()` conflict matrix of `inet_csk_bind_conflict` (relax),
    /// for a first socket (optionally listening) and a second binding the
    /// same port.
    #[test]
    fn bind_conflict_matrix() {
        let bools = [false, true];
        let addrs = [
            (A, A, true),
            (A, ANY, true),
            (ANY, A, true),
            (ANY, ANY, true),
            (A, B, false),
        ];
        for (a1, a2, overlap) in addrs {
            for ra1 in bools {
                for rp1 in bools {
                    for ra2 in bools {
                        for rp2 in bools {
                            for listening in bools {
                                let mut t = t();
                                t.bind(1, a1, 80, opts(ra1, rp1)).unwrap();
                                if listening {
                                    t.listen(1).unwrap();
                                }
                                let shared = (ra1 && ra2 && !listening) || (rp1 && rp2);
                                let want = if !overlap || shared {
                                    Ok(80)
                                } else {
                                    Err(Errno::EADDRINUSE)
                                };
                                assert_eq!(
                                    t.bind(2, a2, 80, opts(ra2, rp2)),
                                    want,
                                    "{a1} {a2} ra {ra1}/{ra2} rp {rp1}/{rp2} listen {listening}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bind_conflict_devices_and_listen() {
        let mut t = t();
        let d0 = BindOpts {
            bound_dev: Some(ETH0),
            ..opts(false, false)
        };
        let d1 = BindOpts {
            bound_dev: Some(ETH1),
            ..opts(false, false)
        };
        t.bind(1, ANY, 80, d0).unwrap();
        assert_eq!(t.bind(2, ANY, 80, d1), Ok(80));
        assert_eq!(
            t.bind(3, ANY, 80, opts(false, false)),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(t.bind(1, ANY, 81, d0), Err(Errno::EINVAL));
        // Two SO_REUSEADDR sockets: both bind, the first listens, the
        // second's listen() fails (the other is now TCP_LISTEN).
        let mut t = super::InetHashTables::<u32>::new(3);
        t.bind(1, A, 8080, opts(true, false)).unwrap();
        t.bind(2, A, 8080, opts(true, false)).unwrap();
        assert_eq!(t.listen(1), Ok(()));
        assert_eq!(t.listen(2), Err(Errno::EADDRINUSE));
        assert_eq!(t.listen(9), Err(Errno::EINVAL));
        // An accepted child keeps the port busy after the listener closes.
        t.inherit_port(10, 1).unwrap();
        t.unbind(1);
        t.unbind(2);
        assert_eq!(
            t.bind(3, A, 8080, opts(false, false)),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(t.bind(3, A, 8080, opts(true, false)), Ok(8080));
    }

    #[test]
    fn ephemeral_bind_in_range_and_skips_used() {
        let mut t = InetHashTables::<u32>::with_port_range(11, 40000..=40009).unwrap();
        let mut got = Vec::new();
        for sk in 0..10 {
            let p = t.bind(sk, ANY, 0, BindOpts::default()).unwrap();
            assert!((40000..=40009).contains(&p));
            assert!(!got.contains(&p));
            got.push(p);
        }
        // The first pick is odd (the opposite parity to connect()).
        assert_eq!(got[0] % 2, 1);
        assert_eq!(
            t.bind(10, A, 0, BindOpts::default()),
            Err(Errno::EADDRINUSE)
        );
        t.unbind(3);
        assert_eq!(t.bind(10, A, 0, BindOpts::default()), Ok(got[3]));
        // Deterministic for a seed.
        let mut u = InetHashTables::<u32>::with_port_range(11, 40000..=40009).unwrap();
        assert_eq!(u.bind(0, ANY, 0, BindOpts::default()), Ok(got[0]));
        let (lo, hi) = (5u16, 4u16);
        assert_eq!(
            InetHashTables::<u32>::with_port_range(1, lo..=hi).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            InetHashTables::<u32>::with_port_range(1, 0..=4).err(),
            Some(Errno::EINVAL)
        );
    }

    #[test]
    fn connect_port_choice() {
        let mut t = InetHashTables::<u32>::with_port_range(5, 50000..=50007).unwrap();
        // A bind()-held port is never taken by connect.
        t.bind(100, B, 50002, BindOpts::default()).unwrap();
        let mut ports = Vec::new();
        for sk in 0..7 {
            let p = t.hash_connect(sk, A, R, 80).unwrap();
            assert!((50000..=50007).contains(&p) && p != 50002);
            assert!(!ports.contains(&p), "same destination, distinct ports");
            assert_eq!(
                t.ehash_lookup(&FourTuple {
                    laddr: A,
                    lport: p,
                    raddr: R,
                    rport: 80
                }),
                Some(sk)
            );
            ports.push(p);
        }
        // The first choice is even (step 2 over the low parity first).
        assert_eq!(ports[0] % 2, 0);
        assert_eq!(t.hash_connect(7, A, R, 80), Err(Errno::EADDRNOTAVAIL));
        // Another destination reuses the connect-made ports.
        let p = t.hash_connect(8, A, R, 443).unwrap();
        assert!(ports.contains(&p));
        // Remove one and re-insert: the freed 4-tuple is found again.
        let freed = FourTuple {
            laddr: A,
            lport: ports[2],
            raddr: R,
            rport: 80,
        };
        assert_eq!(t.ehash_remove(&freed), Some(2));
        t.unbind(2);
        assert_eq!(t.hash_connect(7, A, R, 80), Ok(ports[2]));
        assert_eq!(
            t.lookup(R, 80, A, ports[2], ETH0, 0),
            Some(Lookup::Established(7))
        );
    }

    #[test]
    fn connect_bound_socket_keeps_port() {
        let mut t = t();
        t.bind(1, ANY, 7000, opts(true, false)).unwrap();
        t.bind(2, ANY, 7000, opts(true, false)).unwrap();
        assert_eq!(t.hash_connect(1, A, R, 80), Ok(7000));
        assert_eq!(t.local(1), Some((A, 7000)));
        assert_eq!(t.hash_connect(2, A, R, 80), Err(Errno::EADDRNOTAVAIL));
        assert_eq!(t.hash_connect(2, A, R, 81), Ok(7000));
        assert_eq!(t.established_len(), 2);
        assert_eq!(t.bound_len(), 2);
        assert_eq!(t.bound().count(), 2);
        assert_eq!(t.established().count(), 2);
        assert_eq!(t.listeners().count(), 0);
        assert!(!t.is_empty());
    }

    #[test]
    fn remove_and_reinsert() {
        let mut t = t();
        listen_on(&mut t, 1, A, 22, BindOpts::default());
        assert_eq!(t.listeners().next().map(|l| (l.sk, l.port)), Some((1, 22)));
        assert!(t.unlisten(1));
        assert!(!t.unlisten(1));
        assert_eq!(t.lookup(R, 1, A, 22, ETH0, 0), None);
        assert_eq!(t.listen(1), Ok(()));
        assert_eq!(t.lookup(R, 1, A, 22, ETH0, 0), Some(Lookup::Listener(1)));
        assert_eq!(t.unbind(1), Some(22));
        assert_eq!(t.unbind(1), None);
        assert!(t.is_empty());
        assert_eq!(t.bind(1, A, 22, BindOpts::default()), Ok(22));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Lookup(u8),
    }

    fn tuple(k: u8) -> FourTuple {
        FourTuple {
            laddr: A,
            lport: 80 + u16::from(k % 2),
            raddr: Ipv4Addr::new(192, 0, 2, k % 4),
            rport: 1000 + u16::from(k / 8),
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..32, 0u32..100).prop_map(|(k, s)| Op::Insert(k, s)),
            (0u8..32).prop_map(Op::Remove),
            (0u8..32).prop_map(Op::Lookup),
        ]
    }

    proptest! {
        #[test]
        fn ehash_matches_naive_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut t = InetHashTables::<u32>::new(0);
            // A wildcard listener on port 80 catches what ehash misses.
            t.bind(1000, ANY, 80, BindOpts::default()).unwrap();
            t.listen(1000).unwrap();
            let mut model: Vec<(FourTuple, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, s) => {
                        let tu = tuple(k);
                        let dup = model.iter().any(|(x, _)| *x == tu);
                        let r = t.ehash_insert(tu, s, None);
                        prop_assert_eq!(r.is_err(), dup);
                        if !dup {
                            model.push((tu, s));
                        }
                    }
                    Op::Remove(k) => {
                        let tu = tuple(k);
                        let want = model.iter().position(|(x, _)| *x == tu).map(|i| model.remove(i).1);
                        prop_assert_eq!(t.ehash_remove(&tu), want);
                    }
                    Op::Lookup(k) => {
                        let tu = tuple(k);
                        let want = match model.iter().find(|(x, _)| *x == tu) {
                            Some(&(_, s)) => Some(Lookup::Established(s)),
                            None if tu.lport == 80 => Some(Lookup::Listener(1000)),
                            None => None,
                        };
                        prop_assert_eq!(t.lookup(tu.raddr, tu.rport, tu.laddr, tu.lport, ETH0, k.into()), want);
                    }
                }
                prop_assert_eq!(t.established_len(), model.len());
            }
        }
    }
}
