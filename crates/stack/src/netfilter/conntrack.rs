//! Connection tracking (`net/netfilter/nf_conntrack_core.c`, the protocol
//! trackers `nf_conntrack_proto_tcp.c`, `_udp.c`, `_icmp.c`,
//! `nf_conntrack_proto_generic.c`) and the packet rewriting of NAT
//! (`nf_nat_core.c`, `nf_nat_proto.c`, `nf_nat_masquerade.c`).
//!
//! Seed stages: entered at PRE_ROUTING (`ip_rcv`) and LOCAL_OUT
//! (`ip_local_out`) at priority -200 (`nf_conntrack_in`, before mangle),
//! confirmed at POST_ROUTING (`ip_output`) and LOCAL_IN
//! (`ip_local_deliver`) (`nf_conntrack_confirm`).
//!
//! A connection is kept once, in a slot, and indexed by both its original
//! and its reply tuple (`nf_conntrack_hash`), so either direction finds it
//! with one hash lookup. A tuple is (src, dst, protocol, sport, dport);
//! for ICMP echo both "ports" are the echo identifier (Linux keeps the id
//! in `src.u.icmp.id` and type/code in `dst`; here the id alone suffices
//! because request and reply are told apart by type), for other
//! protocols the ports are 0.
//!
//! Linux carries the conntrack entry in `skb->_nfct` from one hook to the
//! next. The skb's metadata belongs to the stack, not to netfilter, so the
//! engine remembers the last few (skb id → entry, direction, state) it
//! resolved in a small ring and finds them again by the skb's id at the
//! later hooks of the same packet; on a miss (a reassembled datagram has a
//! new id) it looks the packet's tuple up again.
//!
//! Expiry is lazy: an entry past its timeout is removed when a lookup
//! meets it, when the table is full, or by [`Conntrack::gc`]. Unconfirmed
//! entries (the first packet was dropped between PRE_ROUTING and
//! POST_ROUTING) are removed when the hook that dropped the packet
//! returns, as Linux frees an unconfirmed conntrack with its skb.
//!
//! Limitations (documented, deliberate): no defragmentation before
//! tracking (`nf_defrag_ipv4`): non-first fragments are UNTRACKED and are
//! not NATed; TCP tracking follows flags only (no window checks of
//! `tcp_in_window`), with `nf_conntrack_tcp_loose=1` pickup of mid-stream
//! ACKs as ESTABLISHED; no helpers or expectations.

use std::collections::HashMap;

use core::fmt;
use core::net::Ipv4Addr;

use netpath_wire::checksum::{checksum as inet_checksum, update16, update32};
use netpath_wire::ipv4::Ipv4Packet;

use crate::time::{Duration, Instant};

/// `nf_conntrack_max`'s default here (Linux derives it from memory).
pub const NF_CONNTRACK_MAX: usize = 65536;

/// The state bits of `-m conntrack --ctstate` / `-m state --state`
/// (`XT_STATE_BIT`): INVALID 1, ESTABLISHED 2, RELATED 4, NEW 8, and
/// UNTRACKED 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtState(pub u8);

impl CtState {
    pub const INVALID: CtState = CtState(1);
    pub const ESTABLISHED: CtState = CtState(2);
    pub const RELATED: CtState = CtState(4);
    pub const NEW: CtState = CtState(8);
    pub const UNTRACKED: CtState = CtState(16);

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: CtState) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for CtState {
    type Output = CtState;
    fn bitor(self, o: CtState) -> CtState {
        CtState(self.0 | o.0)
    }
}

impl fmt::Display for CtState {
    /// `NEW,ESTABLISHED`, iptables' order: INVALID, NEW, RELATED,
    /// ESTABLISHED, UNTRACKED.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (b, n) in [
            (CtState::INVALID, "INVALID"),
            (CtState::NEW, "NEW"),
            (CtState::RELATED, "RELATED"),
            (CtState::ESTABLISHED, "ESTABLISHED"),
            (CtState::UNTRACKED, "UNTRACKED"),
        ] {
            if self.contains(b) {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

/// `struct nf_conntrack_tuple`, flattened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    /// `nf_ct_invert_tuple`.
    pub const fn invert(self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            6 | 17 => write!(
                f,
                "src={} dst={} sport={} dport={}",
                self.src, self.dst, self.sport, self.dport
            ),
            1 => write!(f, "src={} dst={} id={}", self.src, self.dst, self.sport),
            _ => write!(f, "src={} dst={}", self.src, self.dst),
        }
    }
}

/// `enum tcp_conntrack` (the states this tracker uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    SynSent,
    SynRecv,
    Established,
    FinWait,
    LastAck,
    TimeWait,
    Close,
}

impl TcpState {
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }

    /// `tcp_timeouts[]`, Linux's defaults.
    pub const fn timeout(self) -> Duration {
        Duration::from_secs(match self {
            TcpState::SynSent => 120,
            TcpState::SynRecv => 60,
            TcpState::Established => 5 * 24 * 3600,
            TcpState::FinWait => 120,
            TcpState::LastAck => 30,
            TcpState::TimeWait => 120,
            TcpState::Close => 10,
        })
    }
}

/// UDP unreplied (`nf_conntrack_udp_timeout`).
pub const UDP_TIMEOUT: Duration = Duration::from_secs(30);
/// UDP once a reply was seen (`nf_conntrack_udp_timeout_stream`).
pub const UDP_TIMEOUT_STREAM: Duration = Duration::from_secs(120);
/// `nf_conntrack_icmp_timeout`.
pub const ICMP_TIMEOUT: Duration = Duration::from_secs(30);
/// `nf_conntrack_generic_timeout`.
pub const GENERIC_TIMEOUT: Duration = Duration::from_secs(600);

/// The connection's direction a packet travels (`IP_CT_DIR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Original,
    Reply,
}

impl Dir {
    const fn idx(self) -> usize {
        match self {
            Dir::Original => 0,
            Dir::Reply => 1,
        }
    }
    const fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// One connection (`struct nf_conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// `tuplehash[IP_CT_DIR_ORIGINAL]`, `[IP_CT_DIR_REPLY]`: the reply
    /// tuple is what the answer looks like after NAT.
    pub tuple: [Tuple; 2],
    pub tcp: Option<TcpState>,
    /// `IPS_SEEN_REPLY`.
    pub seen_reply: bool,
    /// `IPS_ASSURED`: spared by early drop.
    pub assured: bool,
    /// `IPS_CONFIRMED`.
    pub confirmed: bool,
    /// `IPS_SRC_NAT_DONE` / `IPS_DST_NAT_DONE`: the binding of that manip
    /// type is decided (possibly as a null binding).
    pub(crate) nat_done: [bool; 2],
    /// Expires at.
    pub timeout: Instant,
    /// TCP: direction of the first FIN.
    fin_dir: Option<Dir>,
}

impl Conn {
    /// Whether a source (SNAT) or destination (DNAT) rewrite is bound.
    pub fn snat(&self) -> bool {
        self.tuple[0].src != self.tuple[1].dst || self.tuple[0].sport != self.tuple[1].dport
    }
    pub fn dnat(&self) -> bool {
        self.tuple[0].dst != self.tuple[1].src || self.tuple[0].dport != self.tuple[1].sport
    }
}

/// `conntrack -S`'s counters (`struct ip_conntrack_stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtStats {
    pub found: u64,
    pub invalid: u64,
    pub insert: u64,
    pub insert_failed: u64,
    pub drop: u64,
    pub early_drop: u64,
    /// Entries removed because their timeout passed.
    pub expired: u64,
}

/// The result of tracking one packet (`ctinfo` with its entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CtRef {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
    pub(crate) dir: Dir,
    pub(crate) state: CtState,
}

/// What `nf_conntrack_in` made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracked {
    Conn(CtRef),
    Invalid,
    Untracked,
    /// Table full and nothing to evict: drop.
    Full,
}

/// The fields conntrack reads from a packet.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    tuple: Tuple,
    /// TCP flags, ICMP type.
    flags: u8,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    /// Echo request (true) or reply (false).
    Echo(bool),
    /// An ICMP error quoting the inner tuple (as sent).
    IcmpError(Tuple),
    /// Other ICMP, or another protocol.
    Generic,
}

const RING: usize = 16;

/// The connection table.
#[derive(Debug)]
pub struct Conntrack {
    slots: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    index: HashMap<Tuple, (u32, Dir)>,
    count: usize,
    /// `nf_conntrack_max`.
    pub max: usize,
    pub stats: CtStats,
    ring: [(u64, Tracked); RING],
    ring_pos: usize,
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack {
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            count: 0,
            max: NF_CONNTRACK_MAX,
            stats: CtStats::default(),
            ring: [(u64::MAX, Tracked::Untracked); RING],
            ring_pos: 0,
        }
    }
}

fn parse_l4(proto: u8, l4: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Option<Parsed> {
    let be = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*l4.get(i)?, *l4.get(i + 1)?])) };
    let t = |sport, dport| Tuple {
        src,
        dst,
        proto,
        sport,
        dport,
    };
    match proto {
        6 => Some(Parsed {
            tuple: t(be(0)?, be(2)?),
            flags: *l4.get(13)?,
            kind: Kind::Tcp,
        }),
        17 => Some(Parsed {
            tuple: t(be(0)?, be(2)?),
            flags: 0,
            kind: Kind::Udp,
        }),
        1 => {
            let ty = *l4.first()?;
            be(2)?;
            match ty {
                8 | 0 => {
                    let id = be(4)?;
                    Some(Parsed {
                        tuple: t(id, id),
                        flags: ty,
                        kind: Kind::Echo(ty == 8),
                    })
                }
                3 | 4 | 5 | 11 | 12 => {
                    // The quoted datagram may be cut short: read its
                    // header fields without insisting on its total length.
                    let ib = l4.get(8..)?;
                    let ihl = usize::from(ib.first()? & 0x0f) * 4;
                    if ib.first()? >> 4 != 4 || ihl < 20 {
                        return None;
                    }
                    let isrc = Ipv4Addr::new(ib[12], ib[13], ib[14], ib[15]);
                    let idst = Ipv4Addr::new(*ib.get(16)?, ib[17], ib[18], *ib.get(19)?);
                    let ip_proto = ib[9];
                    let il4 = ib.get(ihl..)?;
                    let inner = match ip_proto {
                        6 | 17 => {
                            let p = |i: usize| u16::from_be_bytes([il4[i], il4[i + 1]]);
                            if il4.len() < 4 {
                                return None;
                            }
                            Tuple {
                                src: isrc,
                                dst: idst,
                                proto: ip_proto,
                                sport: p(0),
                                dport: p(2),
                            }
                        }
                        1 => {
                            let id = u16::from_be_bytes([*il4.get(4)?, *il4.get(5)?]);
                            Tuple {
                                src: isrc,
                                dst: idst,
                                proto: 1,
                                sport: id,
                                dport: id,
                            }
                        }
                        _ => Tuple {
                            src: isrc,
                            dst: idst,
                            proto: ip_proto,
                            sport: 0,
                            dport: 0,
                        },
                    };
                    Some(Parsed {
                        tuple: t(0, 0),
                        flags: ty,
                        kind: Kind::IcmpError(inner),
                    })
                }
                _ => Some(Parsed {
                    tuple: t(0, 0),
                    flags: ty,
                    kind: Kind::Generic,
                }),
            }
        }
        _ => Some(Parsed {
            tuple: t(0, 0),
            flags: 0,
            kind: Kind::Generic,
        }),
    }
}

/// The packet's tuple; `None` for non-IPv4, non-first fragments and
/// transport headers too short to read.
fn parse(bytes: &[u8]) -> Option<Parsed> {
    let ip = Ipv4Packet::new_checked(bytes).ok()?;
    if ip.frag_offset() != 0 {
        return None;
    }
    parse_l4(ip.protocol().0, ip.payload(), ip.src_addr(), ip.dst_addr())
}

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

impl Conntrack {
    /// Live connections.
    pub fn count(&self) -> usize {
        self.count
    }

    /// `conntrack -L`: every live connection (expired ones are skipped).
    pub fn entries(&self, now: Instant) -> impl Iterator<Item = &Conn> {
        self.slots
            .iter()
            .flatten()
            .filter(move |c| c.confirmed && c.timeout > now)
    }

    /// The connection a tuple (of either direction) belongs to.
    pub fn find(&self, t: &Tuple) -> Option<(&Conn, Dir)> {
        let &(slot, dir) = self.index.get(t)?;
        Some((self.slots.get(slot as usize)?.as_ref()?, dir))
    }

    /// `conntrack -L` lines, `conntrack`'s format.
    pub fn list(&self, now: Instant) -> Vec<String> {
        self.entries(now)
            .map(|c| {
                let proto = match c.tuple[0].proto {
                    6 => "tcp",
                    17 => "udp",
                    1 => "icmp",
                    _ => "unknown",
                };
                let secs = c.timeout.saturating_since(now).as_millis() / 1000;
                let state = c.tcp.map_or(String::new(), |s| format!("{} ", s.name()));
                let unrep = if c.seen_reply { "" } else { "[UNREPLIED] " };
                let assured = if c.assured { " [ASSURED]" } else { "" };
                format!(
                    "{proto:<8}{} {secs} {state}{} {unrep}{}{assured}",
                    c.tuple[0].proto, c.tuple[0], c.tuple[1]
                )
            })
            .collect()
    }

    /// Removes every expired entry.
    pub fn gc(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|c| c.timeout <= now) {
                self.stats.expired += 1;
                self.remove(slot as u32);
            }
        }
    }

    /// Forgets every connection (`conntrack -F`).
    pub fn flush(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.remove(slot as u32);
            }
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(c) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            for t in c.tuple {
                if self.index.get(&t).is_some_and(|&(s, _)| s == slot) {
                    self.index.remove(&t);
                }
            }
            self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1);
            self.free.push(slot);
            self.count -= 1;
        }
    }

    /// A live, unexpired entry for `t`.
    fn lookup(&mut self, t: &Tuple, now: Instant) -> Option<(u32, Dir)> {
        let &(slot, dir) = self.index.get(t)?;
        let expired = self.slots[slot as usize]
            .as_ref()
            .is_none_or(|c| c.timeout <= now);
        if expired {
            self.stats.expired += 1;
            self.remove(slot);
            return None;
        }
        Some((slot, dir))
    }

    pub(crate) fn conn(&self, r: CtRef) -> Option<&Conn> {
        if self.gens.get(r.slot as usize) != Some(&r.gen) {
            return None;
        }
        self.slots.get(r.slot as usize)?.as_ref()
    }

    fn conn_mut(&mut self, r: CtRef) -> Option<&mut Conn> {
        if self.gens.get(r.slot as usize) != Some(&r.gen) {
            return None;
        }
        self.slots.get_mut(r.slot as usize)?.as_mut()
    }

    fn remember(&mut self, skb_id: u64, t: Tracked) {
        // Skb ids come back when the pool reuses a buffer: one entry per id.
        if let Some(e) = self.ring.iter_mut().find(|(id, _)| *id == skb_id) {
            e.1 = t;
            return;
        }
        self.ring[self.ring_pos] = (skb_id, t);
        self.ring_pos = (self.ring_pos + 1) % RING;
    }

    /// Whether `p` can be a packet of `r` at some point of its way (before,
    /// between or after the manips), so that a remembered skb id is not
    /// trusted for a different packet that happens to carry it.
    fn plausible(&self, r: CtRef, p: &Parsed) -> bool {
        let Some(c) = self.conn(r) else {
            return false;
        };
        match p.kind {
            Kind::IcmpError(_) => r.state == CtState::RELATED,
            _ if r.state == CtState::RELATED => false,
            _ => {
                let (me, inv) = (c.tuple[r.dir.idx()], c.tuple[r.dir.other().idx()].invert());
                let t = p.tuple;
                t.proto == me.proto
                    && (t.src == me.src || t.src == inv.src)
                    && (t.dst == me.dst || t.dst == inv.dst)
                    && (t.sport == me.sport || t.sport == inv.sport)
                    && (t.dport == me.dport || t.dport == inv.dport)
            }
        }
    }

    /// What an earlier hook made of this skb, or a fresh lookup.
    pub(crate) fn recall(&mut self, skb_id: u64, bytes: &[u8], now: Instant) -> Tracked {
        let p = parse(bytes);
        if let Some(&(_, t)) = self.ring.iter().find(|(id, _)| *id == skb_id) {
            match (t, p) {
                (Tracked::Conn(r), Some(p)) if self.plausible(r, &p) => return t,
                (Tracked::Invalid | Tracked::Untracked, _) => return t,
                _ => {}
            }
        }
        let Some(p) = p else {
            return Tracked::Untracked;
        };
        let key = match p.kind {
            Kind::IcmpError(inner) => inner.invert(),
            _ => p.tuple,
        };
        match self.lookup(&key, now) {
            Some((slot, dir)) => {
                let c = self.slots[slot as usize].as_ref();
                let state = match (p.kind, c) {
                    (Kind::IcmpError(_), _) => CtState::RELATED,
                    (_, Some(c)) if dir == Dir::Reply || c.seen_reply => CtState::ESTABLISHED,
                    _ => CtState::NEW,
                };
                Tracked::Conn(CtRef {
                    slot,
                    gen: self.gens[slot as usize],
                    dir,
                    state,
                })
            }
            None => Tracked::Untracked,
        }
    }

    /// `nf_conntrack_in`: finds or creates the packet's connection,
    /// updates its protocol state and timeout, remembers the result for
    /// the packet's later hooks.
    pub(crate) fn track(&mut self, skb_id: u64, bytes: &[u8], now: Instant) -> Tracked {
        let t = self.track_inner(bytes, now);
        self.remember(skb_id, t);
        t
    }

    fn track_inner(&mut self, bytes: &[u8], now: Instant) -> Tracked {
        let Some(p) = parse(bytes) else {
            // Non-first fragments and unreadable headers.
            return match Ipv4Packet::new_checked(bytes) {
                Ok(ip) if ip.frag_offset() != 0 => Tracked::Untracked,
                _ => {
                    self.stats.invalid += 1;
                    Tracked::Invalid
                }
            };
        };
        if let Kind::IcmpError(inner) = p.kind {
            // `icmp_error_message`: the quoted packet went the other way,
            // so the error travels the direction its inverse is found in.
            return match self.lookup(&inner.invert(), now) {
                Some((slot, dir)) => {
                    self.stats.found += 1;
                    Tracked::Conn(CtRef {
                        slot,
                        gen: self.gens[slot as usize],
                        dir,
                        state: CtState::RELATED,
                    })
                }
                None => {
                    self.stats.invalid += 1;
                    Tracked::Invalid
                }
            };
        }
        let found = self.lookup(&p.tuple, now);
        let (slot, dir) = match found {
            Some(x) => {
                self.stats.found += 1;
                x
            }
            None => {
                // `init_conntrack`: only what may open a connection.
                let tcp = match p.kind {
                    Kind::Tcp if p.flags & RST != 0 => None,
                    Kind::Tcp if p.flags & (SYN | ACK) == SYN => Some(Some(TcpState::SynSent)),
                    // nf_conntrack_tcp_loose=1: pick up a flow mid-stream.
                    Kind::Tcp if p.flags & (SYN | ACK) == ACK => Some(Some(TcpState::Established)),
                    Kind::Tcp => None,
                    Kind::Echo(false) => None,
                    _ => Some(None),
                };
                let Some(tcp) = tcp else {
                    self.stats.invalid += 1;
                    return Tracked::Invalid;
                };
                if self.count >= self.max && !self.make_room(now) {
                    self.stats.drop += 1;
                    return Tracked::Full;
                }
                let conn = Conn {
                    tuple: [p.tuple, p.tuple.invert()],
                    tcp,
                    seen_reply: false,
                    assured: false,
                    confirmed: false,
                    nat_done: [false; 2],
                    timeout: now,
                    fin_dir: None,
                };
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.slots[s as usize] = Some(conn);
                        s
                    }
                    None => {
                        self.slots.push(Some(conn));
                        self.gens.push(0);
                        (self.slots.len() - 1) as u32
                    }
                };
                self.count += 1;
                self.index.insert(p.tuple, (slot, Dir::Original));
                self.index.insert(p.tuple.invert(), (slot, Dir::Reply));
                (slot, Dir::Original)
            }
        };
        let gen = self.gens[slot as usize];
        let Some(c) = self.slots[slot as usize].as_mut() else {
            return Tracked::Invalid;
        };
        if dir == Dir::Reply {
            c.seen_reply = true;
        }
        let timeout = match p.kind {
            Kind::Tcp => {
                let Some(s) = c.tcp else {
                    return Tracked::Invalid;
                };
                let f = p.flags;
                let next = if f & RST != 0 {
                    TcpState::Close
                } else if f & SYN != 0 && f & ACK != 0 {
                    if dir == Dir::Reply && matches!(s, TcpState::SynSent | TcpState::SynRecv) {
                        TcpState::SynRecv
                    } else {
                        s
                    }
                } else if f & SYN != 0 {
                    s
                } else if f & FIN != 0 {
                    match (s, c.fin_dir) {
                        (TcpState::Established | TcpState::SynRecv, _) => {
                            c.fin_dir = Some(dir);
                            TcpState::FinWait
                        }
                        (TcpState::FinWait, Some(d)) if d != dir => TcpState::LastAck,
                        (s, _) => s,
                    }
                } else if f & ACK != 0 {
                    match s {
                        TcpState::SynRecv if dir == Dir::Original => {
                            c.assured = true;
                            TcpState::Established
                        }
                        TcpState::LastAck => TcpState::TimeWait,
                        s => s,
                    }
                } else {
                    s
                };
                c.tcp = Some(next);
                next.timeout()
            }
            Kind::Udp => {
                if c.seen_reply {
                    c.assured = true;
                    UDP_TIMEOUT_STREAM
                } else {
                    UDP_TIMEOUT
                }
            }
            Kind::Echo(_) => ICMP_TIMEOUT,
            _ => GENERIC_TIMEOUT,
        };
        c.timeout = now + timeout;
        let state = if dir == Dir::Reply || c.seen_reply {
            CtState::ESTABLISHED
        } else {
            CtState::NEW
        };
        Tracked::Conn(CtRef {
            slot,
            gen,
            dir,
            state,
        })
    }

    /// Table full: expired entries go first, then one not ASSURED
    /// (`early_drop`). False when nothing could go.
    fn make_room(&mut self, now: Instant) -> bool {
        let before = self.count;
        self.gc(now);
        if self.count < before {
            return true;
        }
        let victim = self
            .slots
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.confirmed && !c.assured));
        match victim {
            Some(v) => {
                self.remove(v as u32);
                self.stats.early_drop += 1;
                true
            }
            None => false,
        }
    }

    /// `__nf_conntrack_confirm`.
    pub(crate) fn confirm(&mut self, r: CtRef) {
        if let Some(c) = self.conn_mut(r) {
            if !c.confirmed {
                c.confirmed = true;
                self.stats.insert += 1;
            }
        }
    }

    /// The packet was dropped: an unconfirmed connection goes with it.
    pub(crate) fn dropped(&mut self, r: CtRef) {
        if self.conn(r).is_some_and(|c| !c.confirmed) {
            self.remove(r.slot);
        }
    }

    pub(crate) fn nat_done(&self, r: CtRef, m: Manip) -> bool {
        self.conn(r).is_none_or(|c| c.nat_done[m as usize])
    }

    /// Whether `reply` (the reply tuple a binding would produce) is taken
    /// by another connection (`nf_nat_used_tuple`).
    pub(crate) fn used(&self, reply: &Tuple, me: u32) -> bool {
        self.index.get(reply).is_some_and(|&(s, _)| s != me)
            || self
                .index
                .get(&reply.invert())
                .is_some_and(|&(s, _)| s != me)
    }

    /// Sets the binding of manip type `m` (`nf_nat_setup_info`): the new
    /// reply tuple (re-indexed). `None` is a null binding.
    pub(crate) fn bind(&mut self, r: CtRef, m: Manip, new: Option<(Ipv4Addr, u16)>) {
        let Some(c) = self.conn_mut(r) else {
            return;
        };
        c.nat_done[m as usize] = true;
        let Some((addr, port)) = new else {
            return;
        };
        let old = c.tuple[1];
        let mut reply = old;
        match m {
            // The reply goes back to the new source.
            Manip::Src => {
                reply.dst = addr;
                reply.dport = port;
            }
            Manip::Dst => {
                reply.src = addr;
                reply.sport = port;
            }
        }
        c.tuple[1] = reply;
        if self.index.get(&old).is_some_and(|&(s, _)| s == r.slot) {
            self.index.remove(&old);
        }
        self.index.insert(reply, (r.slot, Dir::Reply));
    }

    /// What the packet's `m` side must become (`nf_nat_manip_pkt`'s
    /// target): the inverse of the other direction's tuple.
    pub(crate) fn target(&self, r: CtRef, m: Manip) -> Option<(Ipv4Addr, u16)> {
        let c = self.conn(r)?;
        let other = c.tuple[r.dir.other().idx()];
        Some(match m {
            Manip::Src => (other.dst, other.dport),
            Manip::Dst => (other.src, other.sport),
        })
    }

    pub(crate) fn tuple(&self, r: CtRef, d: Dir) -> Option<Tuple> {
        Some(self.conn(r)?.tuple[d.idx()])
    }
}

/// `enum nf_nat_manip_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manip {
    Src = 0,
    Dst = 1,
}

fn rd16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn wr16(b: &mut [u8], i: usize, v: u16) {
    if let Some(s) = b.get_mut(i..i + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

fn rd32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Rewrites an IPv4 header's source (`Src`) or destination address and
/// the transport port (or echo id) at `ip` (the IPv4 header and what
/// follows), fixing the header checksum and the transport checksum
/// incrementally (a checksum cut off a quoted header is left alone, a
/// zero UDP checksum stays zero). Returns whether anything changed. Never panics: fields out of bounds are left alone.
fn manip_ip(ip: &mut [u8], m: Manip, addr: Ipv4Addr, port: u16) -> bool {
    let Some(&b0) = ip.first() else {
        return false;
    };
    let ihl = usize::from(b0 & 0x0f) * 4;
    if ip.len() < 20 || ihl < 20 {
        return false;
    }
    let aoff = match m {
        Manip::Src => 12,
        Manip::Dst => 16,
    };
    let (Some(old_a), Some(hcsum)) = (rd32(ip, aoff), rd16(ip, 10)) else {
        return false;
    };
    let new_a = u32::from(addr);
    let frag = rd16(ip, 6).unwrap_or(0) & 0x1fff != 0;
    let proto = ip[9];
    let mut changed = false;
    if old_a != new_a {
        ip[aoff..aoff + 4].copy_from_slice(&new_a.to_be_bytes());
        wr16(ip, 10, update32(hcsum, old_a, new_a));
        changed = true;
    }
    if frag {
        return changed;
    }
    let Some(l4) = ip.get_mut(ihl..) else {
        return changed;
    };
    // Port offset, checksum offset, whether the pseudo-header counts.
    let (poff, coff, pseudo) = match (proto, m) {
        (6, Manip::Src) => (0, 16, true),
        (6, Manip::Dst) => (2, 16, true),
        (17, Manip::Src) => (0, 6, true),
        (17, Manip::Dst) => (2, 6, true),
        (1, _) if matches!(l4.first(), Some(0 | 8)) => (4, 2, false),
        _ => return changed,
    };
    let Some(old_p) = rd16(l4, poff) else {
        return changed;
    };
    let csum = rd16(l4, coff);
    let udp_zero = proto == 17 && csum == Some(0);
    let mut c = csum.unwrap_or(0);
    if pseudo && old_a != new_a {
        c = update32(c, old_a, new_a);
    }
    if old_p != port {
        wr16(l4, poff, port);
        c = update16(c, old_p, port);
        changed = true;
    }
    if csum.is_some() && !udp_zero {
        if proto == 17 && c == 0 {
            c = 0xffff;
        }
        wr16(l4, coff, c);
    }
    changed
}

/// `nf_nat_manip_pkt` on a whole packet, and for an ICMP error
/// (`nf_nat_icmp_reply_translation`) the quoted header too: the quoted
/// packet went the other way, so its other side gets the same rewrite.
/// The ICMP checksum of an error is computed anew.
pub(crate) fn manip_pkt(ip: &mut [u8], m: Manip, addr: Ipv4Addr, port: u16, related: bool) {
    if related {
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        if ip.len() >= ihl + 8 + 20 && ip.get(9) == Some(&1) {
            let inner_m = match m {
                Manip::Src => Manip::Dst,
                Manip::Dst => Manip::Src,
            };
            let total = rd16(ip, 2).map_or(ip.len(), usize::from).min(ip.len());
            if total > ihl + 8 {
                if let Some(inner) = ip.get_mut(ihl + 8..total) {
                    manip_ip(inner, inner_m, addr, port);
                }
                if let Some(icmp) = ip.get_mut(ihl..total) {
                    wr16(icmp, 2, 0);
                    let c = inet_checksum(icmp);
                    wr16(icmp, 2, c);
                }
            }
        }
        // The outer header: addresses only (an error has no port).
        let aoff = if m == Manip::Src { 12 } else { 16 };
        if let (Some(old), Some(h)) = (rd32(ip, aoff), rd16(ip, 10)) {
            let new = u32::from(addr);
            if old != new {
                ip[aoff..aoff + 4].copy_from_slice(&new.to_be_bytes());
                wr16(ip, 10, update32(h, old, new));
            }
        }
        return;
    }
    manip_ip(ip, m, addr, port);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manip_keeps_checksums_valid() {
        // IPv4 + UDP with a valid checksum.
        let mut p = vec![
            0x45, 0, 0, 30, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ];
        let mut udp = vec![0x30, 0x39, 0, 53, 0, 10, 0, 0, b'h', b'i'];
        let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 1),
            17,
            10,
        );
        c.add_bytes(&udp);
        udp[6..8].copy_from_slice(&c.finish().to_be_bytes());
        let h = inet_checksum(&p);
        p[10..12].copy_from_slice(&h.to_be_bytes());
        p.extend_from_slice(&udp);
        let nat = Ipv4Addr::new(203, 0, 113, 5);
        manip_pkt(&mut p, Manip::Src, nat, 40000, false);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), nat);
        let u = netpath_wire::udp::UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(u.src_port(), 40000);
        assert!(u.verify_checksum(nat, Ipv4Addr::new(198, 51, 100, 1)));
    }

    #[test]
    fn table_tracks_udp_both_ways_and_expires() {
        let mut ct = Conntrack::default();
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let pkt = |s: Ipv4Addr, d: Ipv4Addr, sp: u16, dp: u16| {
            let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&sp.to_be_bytes());
            p.extend_from_slice(&dp.to_be_bytes());
            p.extend_from_slice(&[0, 8, 0, 0]);
            p
        };
        let t0 = Instant::ZERO;
        let Tracked::Conn(r) = ct.track(1, &pkt(a, b, 1000, 53), t0) else {
            panic!()
        };
        assert_eq!((r.dir, r.state), (Dir::Original, CtState::NEW));
        ct.confirm(r);
        let Tracked::Conn(r2) = ct.track(2, &pkt(b, a, 53, 1000), t0) else {
            panic!()
        };
        assert_eq!((r2.dir, r2.state), (Dir::Reply, CtState::ESTABLISHED));
        assert_eq!(ct.stats.insert, 1);
        assert_eq!(ct.stats.found, 1);
        // Stream timeout now: alive at 119 s, gone at 121 s.
        assert_eq!(ct.list(t0 + Duration::from_secs(119)).len(), 1);
        ct.gc(t0 + Duration::from_secs(121));
        assert_eq!(ct.count(), 0);
    }

    #[test]
    fn table_full_drops_or_early_drops() {
        let mut ct = Conntrack {
            max: 2,
            ..Conntrack::default()
        };
        let t0 = Instant::ZERO;
        let syn = |sp: u16| {
            let mut p = vec![
                0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            p.extend_from_slice(&sp.to_be_bytes());
            p.extend_from_slice(&80u16.to_be_bytes());
            p.extend_from_slice(&[0; 9]);
            p.push(SYN);
            p.extend_from_slice(&[0; 6]);
            p
        };
        for sp in 1..=2 {
            let Tracked::Conn(r) = ct.track(sp.into(), &syn(sp), t0) else {
                panic!()
            };
            ct.confirm(r);
        }
        // Unassured entries are early-dropped.
        assert!(matches!(ct.track(3, &syn(3), t0), Tracked::Conn(_)));
        assert_eq!(ct.stats.early_drop, 1);
        assert_eq!(ct.count(), 2);
    }

    fn tcp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, flags: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sp.to_be_bytes());
        p.extend_from_slice(&dp.to_be_bytes());
        p.extend_from_slice(&[0; 9]);
        p.push(flags);
        p.extend_from_slice(&[0; 6]);
        p
    }

    #[test]
    fn tcp_states_and_timeouts_follow_the_handshake_and_close() {
        let mut ct = Conntrack::default();
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let t0 = Instant::ZERO;
        let state = |ct: &Conntrack| {
            let c = ct.entries(t0).next().unwrap();
            (
                c.tcp.unwrap(),
                c.timeout.saturating_since(t0).as_millis() / 1000,
            )
        };
        // A bare ACK of an unknown flow is picked up (tcp_loose=1); a RST
        // or SYN/ACK of an unknown flow is INVALID.
        assert_eq!(ct.track(1, &tcp(a, b, 1, 2, RST), t0), Tracked::Invalid);
        assert_eq!(
            ct.track(1, &tcp(a, b, 1, 2, SYN | ACK), t0),
            Tracked::Invalid
        );
        let Tracked::Conn(r) = ct.track(1, &tcp(a, b, 1000, 80, SYN), t0) else {
            panic!()
        };
        ct.confirm(r);
        assert_eq!(state(&ct), (TcpState::SynSent, 120));
        ct.track(2, &tcp(b, a, 80, 1000, SYN | ACK), t0);
        assert_eq!(state(&ct), (TcpState::SynRecv, 60));
        ct.track(3, &tcp(a, b, 1000, 80, ACK), t0);
        assert_eq!(state(&ct), (TcpState::Established, 5 * 24 * 3600));
        assert!(ct.entries(t0).next().unwrap().assured);
        ct.track(4, &tcp(a, b, 1000, 80, FIN | ACK), t0);
        assert_eq!(state(&ct), (TcpState::FinWait, 120));
        ct.track(5, &tcp(b, a, 80, 1000, FIN | ACK), t0);
        assert_eq!(state(&ct), (TcpState::LastAck, 30));
        ct.track(6, &tcp(a, b, 1000, 80, ACK), t0);
        assert_eq!(state(&ct), (TcpState::TimeWait, 120));
        ct.track(7, &tcp(b, a, 80, 1000, RST), t0);
        assert_eq!(state(&ct), (TcpState::Close, 10));
        ct.gc(t0 + Duration::from_secs(11));
        assert_eq!(ct.count(), 0);
    }

    #[test]
    fn table_full_of_assured_entries_drops() {
        let mut ct = Conntrack {
            max: 1,
            ..Conntrack::default()
        };
        let t0 = Instant::ZERO;
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let Tracked::Conn(r) = ct.track(1, &tcp(a, b, 1000, 80, SYN), t0) else {
            panic!()
        };
        ct.confirm(r);
        ct.track(2, &tcp(b, a, 80, 1000, SYN | ACK), t0);
        ct.track(3, &tcp(a, b, 1000, 80, ACK), t0);
        assert_eq!(ct.track(4, &tcp(a, b, 1001, 80, SYN), t0), Tracked::Full);
        assert_eq!((ct.stats.drop, ct.stats.early_drop), (1, 0));
        // Unconfirmed entries leave with their dropped packet.
        ct.flush();
        let Tracked::Conn(r) = ct.track(5, &tcp(a, b, 1002, 80, SYN), t0) else {
            panic!()
        };
        ct.dropped(r);
        assert_eq!(ct.count(), 0);
    }
}
