//! tc filters: classifiers and actions at ingress (`sch_handle_ingress`,
//! seed ingress step 8 "call tc ingress (the packet can be redirected)") and
//! egress (`sch_handle_egress`, seed egress step 7 "call tc egress").
//!
//! A [`TcChain`] hangs on a device's ingress or egress (clsact). Filters run
//! in preference order; the first whose matches all hold runs its actions
//! (flower/u32 + gact/mirred/skbedit in Linux terms).

use crate::dev::IfIndex;

/// Where a redirected or mirrored packet goes (`mirred ... ingress|egress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcDirection {
    Ingress,
    Egress,
}

/// A classifier condition. All of a filter's matches must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcMatch {
    /// The device the packet is on (ingress: arrived on; egress: leaving by).
    Dev(IfIndex),
    /// `skb->protocol` (host order), e.g. 0x0800.
    EtherType(u16),
    /// The VLAN id in the skb's tag (after untagging) or, if still in the
    /// frame, in the frame.
    VlanId(u16),
    /// `(skb->mark & mask) == value`.
    Mark { value: u32, mask: u32 },
    /// IPv4 source within `addr/prefix_len`.
    Ipv4Src { addr: core::net::Ipv4Addr, prefix_len: u8 },
    /// IPv4 destination within `addr/prefix_len`.
    Ipv4Dst { addr: core::net::Ipv4Addr, prefix_len: u8 },
    /// IPv4 protocol number.
    IpProto(u8),
    /// TCP/UDP source port (first fragment only).
    SrcPort(u16),
    /// TCP/UDP destination port (first fragment only).
    DstPort(u16),
    /// u32 classifier: the big-endian 32-bit word at `offset` bytes from the
    /// network header, masked, equals `value`. Out of range: no match.
    U32 { offset: i32, value: u32, mask: u32 },
}

/// What a filter does (`gact`, `mirred`, `skbedit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcAction {
    /// `gact ok` / TC_ACT_OK: stop here, continue the packet's path.
    Pass,
    /// `gact drop` / TC_ACT_SHOT.
    Drop,
    /// `mirred redirect`: the packet goes to `dev` instead (TC_ACT_STOLEN here).
    Redirect { dev: IfIndex, dir: TcDirection },
    /// `mirred mirror`: a clone goes to `dev`; the packet continues (next action).
    Mirror { dev: IfIndex, dir: TcDirection },
    /// `skbedit mark`; continues with the next action.
    SetMark(u32),
    /// `skbedit priority`; continues with the next action.
    SetPriority(u32),
}

/// One filter: preference, matches, actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcFilter {
    /// Lower runs first (`tc filter add ... pref N`).
    pub pref: u32,
    pub matches: Vec<TcMatch>,
    /// Run in order until one ends the packet's classification (Pass, Drop,
    /// Redirect); running off the end is Pass.
    pub actions: Vec<TcAction>,
}

/// The result of running a chain on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcVerdict {
    /// Continue the normal path (no filter matched, or TC_ACT_OK).
    Pass,
    /// Drop (TC_INGRESS / TC_EGRESS drop reason).
    Drop,
    /// Taken: send it to `dev` in `dir`.
    Redirect(IfIndex, TcDirection),
}

/// Counters per chain, as `tc -s filter show` reports per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcStats {
    pub matched: u64,
    pub passed: u64,
    pub dropped: u64,
    pub redirected: u64,
    pub mirrored: u64,
}
