//! tc filters: classifiers and actions at ingress (`sch_handle_ingress`,
//! seed ingress step 8 "call tc ingress (the packet can be redirected)") and
//! egress (`sch_handle_egress`, seed egress step 7 "call tc egress").
//!
//! A [`TcChain`] hangs on a device's ingress or egress (clsact). Filters run
//! in preference order; the first whose matches all hold runs its actions
//! (flower/u32 + gact/mirred/skbedit in Linux terms).

use core::fmt;
use core::net::Ipv4Addr;

use netpath_wire::ethernet::{EtherType, VlanHeader};
use netpath_wire::ipv4::{Ipv4Packet, Protocol};
use netpath_wire::tcp::TcpPacket;
use netpath_wire::udp::UdpPacket;

use crate::dev::IfIndex;
use crate::skb::Skb;

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
    Ipv4Src {
        addr: core::net::Ipv4Addr,
        prefix_len: u8,
    },
    /// IPv4 destination within `addr/prefix_len`.
    Ipv4Dst {
        addr: core::net::Ipv4Addr,
        prefix_len: u8,
    },
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

/// A clsact hook's filter list (`struct tcf_chain` of chain 0 with its
/// `tcf_proto`s): filters kept in `pref` order, and the chain's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcChain {
    filters: Vec<TcFilter>,
    stats: TcStats,
}

impl TcChain {
    pub fn new() -> TcChain {
        TcChain::default()
    }

    /// `tc filter add ... pref N`: inserts `filter` after every filter whose
    /// pref is lower or equal, so equal prefs run in the order added.
    pub fn add(&mut self, filter: TcFilter) {
        let at = self.filters.partition_point(|f| f.pref <= filter.pref);
        self.filters.insert(at, filter);
    }

    /// `tc filter del ... pref N`: removes every filter with that pref and
    /// returns how many there were.
    pub fn remove(&mut self, pref: u32) -> usize {
        let before = self.filters.len();
        self.filters.retain(|f| f.pref != pref);
        before - self.filters.len()
    }

    /// The filters in the order they run.
    pub fn filters(&self) -> &[TcFilter] {
        &self.filters
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Counters since the chain was created: `matched` packets some filter
    /// took, split by how they ended into `passed` (TC_ACT_OK, explicit or by
    /// running off the actions), `dropped` and `redirected` (so `matched` is
    /// their sum); `mirrored` counts clones requested. Packets no filter
    /// matched are not counted (no action saw them).
    pub fn stats(&self) -> TcStats {
        self.stats
    }

    /// `tcf_classify` and the action run, as `sch_handle_ingress` /
    /// `sch_handle_egress` do it. `dev` is the device the hook hangs on
    /// (what [`TcMatch::Dev`] compares with).
    ///
    /// Filters are tried in pref order; one whose matches do not all hold
    /// gives TC_ACT_UNSPEC and the next is tried. The first that matches
    /// runs its actions in order: `SetMark`/`SetPriority` edit `skb.meta`
    /// and `Mirror` appends `(dev, dir)` to `mirrors` (TC_ACT_PIPE: the
    /// caller clones the packet and sends each copy), then the next action
    /// runs; `Pass`, `Drop` and `Redirect` end the run with that verdict.
    /// Running off the end of the actions is Pass (TC_ACT_PIPE falls to the
    /// hook's default, which continues), as is matching no filter.
    ///
    /// `mirrors` is appended to, never cleared: the caller owns it and
    /// reuses its capacity, so this allocates nothing in steady state.
    pub fn run(
        &mut self,
        skb: &mut Skb,
        dev: IfIndex,
        mirrors: &mut Vec<(IfIndex, TcDirection)>,
    ) -> TcVerdict {
        let found = self
            .filters
            .iter()
            .find(|f| f.matches.iter().all(|m| matches(m, skb, dev)));
        let Some(filter) = found else {
            return TcVerdict::Pass;
        };
        self.stats.matched += 1;
        let mut verdict = TcVerdict::Pass;
        for action in &filter.actions {
            match *action {
                TcAction::SetMark(mark) => skb.meta.mark = mark,
                TcAction::SetPriority(prio) => skb.meta.priority = prio,
                TcAction::Mirror { dev, dir } => {
                    mirrors.push((dev, dir));
                    self.stats.mirrored += 1;
                }
                TcAction::Pass => break,
                TcAction::Drop => {
                    verdict = TcVerdict::Drop;
                    break;
                }
                TcAction::Redirect { dev, dir } => {
                    verdict = TcVerdict::Redirect(dev, dir);
                    break;
                }
            }
        }
        match verdict {
            TcVerdict::Pass => self.stats.passed += 1,
            TcVerdict::Drop => self.stats.dropped += 1,
            TcVerdict::Redirect(..) => self.stats.redirected += 1,
        }
        verdict
    }
}

/// Whether one condition holds for `skb` on the hook of device `dev`.
///
/// Packet keys are read where Linux's classifiers find them when tc runs:
/// the network header is set, the MAC header has been pulled (ingress) or
/// pushed (egress), and `skb.meta.protocol` names what is at the network
/// header. A packet too short or malformed for a key does not match it;
/// nothing here panics, whatever the bytes.
fn matches(m: &TcMatch, skb: &Skb, dev: IfIndex) -> bool {
    match *m {
        TcMatch::Dev(want) => want == dev,
        TcMatch::EtherType(ty) => skb.meta.protocol == ty,
        TcMatch::VlanId(vid) => vlan_id(skb) == Some(vid),
        TcMatch::Mark { value, mask } => skb.meta.mark & mask == value,
        TcMatch::Ipv4Src { addr, prefix_len } => {
            ipv4(skb).is_some_and(|ip| in_prefix(ip.src_addr(), addr, prefix_len))
        }
        TcMatch::Ipv4Dst { addr, prefix_len } => {
            ipv4(skb).is_some_and(|ip| in_prefix(ip.dst_addr(), addr, prefix_len))
        }
        TcMatch::IpProto(proto) => ipv4(skb).is_some_and(|ip| ip.protocol() == Protocol(proto)),
        TcMatch::SrcPort(port) => l4_ports(skb).is_some_and(|(src, _)| src == port),
        TcMatch::DstPort(port) => l4_ports(skb).is_some_and(|(_, dst)| dst == port),
        TcMatch::U32 {
            offset,
            value,
            mask,
        } => u32_at(skb, offset).is_some_and(|word| word & mask == value),
    }
}

/// The outer VLAN id: the tag the skb holds (`skb_vlan_tag_present`, put
/// there by hardware acceleration or `skb_vlan_untag`) or, failing that, a
/// tag still in the frame.
///
/// Assumption for the in-frame case (as `eth_type_trans` leaves a tagged
/// frame that nothing has untagged yet): `skb.meta.protocol` is the TPID
/// (0x8100 or 0x88a8) and the network header points just past the
/// Ethernet header's type field, i.e. at the TCI, followed by the next
/// type. Flower reads the same bytes through the flow dissector.
fn vlan_id(skb: &Skb) -> Option<u16> {
    if let Some(tag) = skb.meta.vlan {
        return Some(tag.vid());
    }
    if !EtherType(skb.meta.protocol).is_vlan() {
        return None;
    }
    VlanHeader::new_checked(skb.network_header_bytes())
        .ok()
        .map(|tag| tag.vid())
}

/// The IPv4 header at the network header, when `skb->protocol` is IPv4 and
/// the header passes the wire crate's length checks (version 4, IHL >= 5,
/// header and total length within the bytes).
fn ipv4(skb: &Skb) -> Option<Ipv4Packet<&[u8]>> {
    if skb.meta.protocol != EtherType::IPV4.0 {
        return None;
    }
    Ipv4Packet::new_checked(skb.network_header_bytes()).ok()
}

/// `addr` within `net/prefix_len`: /0 takes every address, /33 and longer
/// none.
fn in_prefix(addr: Ipv4Addr, net: Ipv4Addr, prefix_len: u8) -> bool {
    let mask = match prefix_len {
        0 => 0,
        1..=32 => u32::MAX << (32 - u32::from(prefix_len)),
        _ => return false,
    };
    (u32::from(addr) ^ u32::from(net)) & mask == 0
}

/// TCP or UDP (source, destination) ports, read from the transport header
/// where the IHL puts it. Only for fragment offset 0 (unfragmented, or the
/// first fragment, which carries the ports); later fragments have none.
/// Only the 4 port bytes are needed (as the flow dissector's
/// `__skb_flow_get_ports`), so a first fragment that cuts the rest of the
/// transport header still matches.
fn l4_ports(skb: &Skb) -> Option<(u16, u16)> {
    let ip = ipv4(skb)?;
    if ip.frag_offset() != 0 {
        return None;
    }
    // The two views read only bytes 0..4, which `ports` is.
    let ports = ip.payload().get(..4)?;
    match ip.protocol() {
        Protocol::TCP => {
            let tcp = TcpPacket::new_unchecked(ports);
            Some((tcp.src_port(), tcp.dst_port()))
        }
        Protocol::UDP => {
            let udp = UdpPacket::new_unchecked(ports);
            Some((udp.src_port(), udp.dst_port()))
        }
        _ => None,
    }
}

/// The big-endian word `offset` bytes from the network header, as u32's
/// `match u32 VAL MASK at OFF`. Negative offsets read back into the bytes
/// before it (the MAC header: `at -14` is the destination address). The
/// readable bytes run from the earliest of the MAC header, data and network
/// header to the tail; anything outside (headroom, beyond the tail), or an
/// unset network header, is no match.
fn u32_at(skb: &Skb, offset: i32) -> Option<u32> {
    let nh = skb.network_header()?;
    let (start, bytes) = [
        skb.mac_header().map(|m| (m, skb.mac_header_bytes())),
        Some((skb.data_offset(), skb.data())),
        Some((nh, skb.network_header_bytes())),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|&(start, _)| start)?;
    let at = i64::try_from(nh).ok()? + i64::from(offset) - i64::try_from(start).ok()?;
    let at = usize::try_from(at).ok()?;
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

impl fmt::Display for TcDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcDirection::Ingress => "ingress",
            TcDirection::Egress => "egress",
        })
    }
}

/// In the words of `tc filter add ... flower` / `u32` / `fw`.
impl fmt::Display for TcMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcMatch::Dev(dev) => write!(f, "dev {dev}"),
            TcMatch::EtherType(ty) => write!(f, "eth_type {}", EtherType(ty)),
            TcMatch::VlanId(vid) => write!(f, "vlan_id {vid}"),
            TcMatch::Mark { value, mask } => write!(f, "mark {value:#x}/{mask:#x}"),
            TcMatch::Ipv4Src { addr, prefix_len } => write!(f, "ip src {addr}/{prefix_len}"),
            TcMatch::Ipv4Dst { addr, prefix_len } => write!(f, "ip dst {addr}/{prefix_len}"),
            TcMatch::IpProto(proto) => write!(f, "ip_proto {proto}"),
            TcMatch::SrcPort(port) => write!(f, "src_port {port}"),
            TcMatch::DstPort(port) => write!(f, "dst_port {port}"),
            TcMatch::U32 {
                offset,
                value,
                mask,
            } => write!(f, "u32 0x{value:08x} 0x{mask:08x} at {offset}"),
        }
    }
}

/// In the words of `tc actions` (gact, mirred, skbedit).
impl fmt::Display for TcAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcAction::Pass => f.write_str("gact pass"),
            TcAction::Drop => f.write_str("gact drop"),
            TcAction::Redirect { dev, dir } => write!(f, "mirred {dir} redirect dev {dev}"),
            TcAction::Mirror { dev, dir } => write!(f, "mirred {dir} mirror dev {dev}"),
            TcAction::SetMark(mark) => write!(f, "skbedit mark {mark}"),
            TcAction::SetPriority(prio) => write!(f, "skbedit priority {prio}"),
        }
    }
}

/// One line like `tc filter show`: `pref 10 match ip dst 192.0.2.0/24
/// ip_proto 6 dst_port 80 action mirred egress redirect dev if3`
/// (`match all` for a filter without conditions; one `action` per action).
impl fmt::Display for TcFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pref {} match", self.pref)?;
        if self.matches.is_empty() {
            f.write_str(" all")?;
        }
        for m in &self.matches {
            write!(f, " {m}")?;
        }
        for a in &self.actions {
            write!(f, " action {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::{SkbPool, VlanInfo};
    use netpath_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
    use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
    use netpath_wire::ipv4::Ipv4Repr;
    use netpath_wire::tcp::{RawOptions, TcpFlags, TcpOptions, TcpRepr, TcpSeqNumber};
    use netpath_wire::udp::UdpRepr;
    use proptest::prelude::*;

    const MAC_DST: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const MAC_SRC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
    const SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const IF1: IfIndex = IfIndex(1);
    const IF2: IfIndex = IfIndex(2);
    const IF3: IfIndex = IfIndex(3);

    #[derive(Debug, Clone, Copy)]
    enum L4 {
        Tcp(u16, u16),
        Udp(u16, u16),
        Icmp,
    }

    /// What goes into a test frame.
    #[derive(Debug, Clone, Copy)]
    struct Spec {
        l4: L4,
        more_frags: bool,
        /// Bytes, a multiple of 8.
        frag_offset: u16,
        /// A tag left in the frame: (TPID, TCI).
        tag: Option<(EtherType, u16)>,
    }

    impl Spec {
        fn new(l4: L4) -> Spec {
            Spec {
                l4,
                more_frags: false,
                frag_offset: 0,
                tag: None,
            }
        }
    }

    /// Ethernet [+ one VLAN tag] + IPv4 + TCP/UDP/ICMP, built by the wire
    /// crate's emitters. A fragment with a non-zero offset still gets a
    /// transport header, so that reading ports from it would be caught.
    fn frame(spec: Spec) -> Vec<u8> {
        let (protocol, l4_len) = match spec.l4 {
            L4::Tcp(..) => (Protocol::TCP, 20),
            L4::Udp(..) => (Protocol::UDP, 8 + 4),
            L4::Icmp => (Protocol::ICMP, 8 + 4),
        };
        let ip_at = ethernet::HEADER_LEN + spec.tag.map_or(0, |_| ethernet::VLAN_TAG_LEN);
        let mut buf = vec![0u8; ip_at + 20 + l4_len];
        EthernetRepr {
            src_addr: MAC_SRC,
            dst_addr: MAC_DST,
            ethertype: spec.tag.map_or(EtherType::IPV4, |(tpid, _)| tpid),
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
        .unwrap();
        if let Some((_, tci)) = spec.tag {
            let mut tag = VlanHeader::new_checked(&mut buf[ethernet::HEADER_LEN..]).unwrap();
            tag.set_tci(tci);
            tag.set_inner_ethertype(EtherType::IPV4);
        }
        Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            protocol,
            ttl: 64,
            tos: 0,
            ident: 0x1234,
            dont_frag: false,
            more_frags: spec.more_frags,
            frag_offset: spec.frag_offset,
            payload_len: l4_len,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[ip_at..]))
        .unwrap();
        let l4 = &mut buf[ip_at + 20..];
        match spec.l4 {
            L4::Tcp(src_port, dst_port) => TcpRepr {
                src_port,
                dst_port,
                seq_number: TcpSeqNumber(1000),
                ack_number: TcpSeqNumber(0),
                flags: TcpFlags::SYN,
                window_len: 64240,
                urgent_pointer: 0,
                options: TcpOptions::default(),
                raw_options: RawOptions::default(),
                payload_len: 0,
            }
            .emit(&mut TcpPacket::new_unchecked(l4), SRC, DST)
            .unwrap(),
            L4::Udp(src_port, dst_port) => UdpRepr {
                src_port,
                dst_port,
                payload_len: 4,
            }
            .emit(&mut UdpPacket::new_unchecked(l4), SRC, DST)
            .unwrap(),
            L4::Icmp => Icmpv4Repr::EchoRequest {
                ident: 7,
                seq_no: 1,
                data_len: 4,
            }
            .emit(&mut Icmpv4Packet::new_unchecked(l4))
            .unwrap(),
        }
        buf
    }

    /// The skb as the driver and `eth_type_trans` hand it to tc ingress:
    /// MAC header at the frame start, 14 bytes pulled, network header at
    /// data, protocol from the Ethernet type (the TPID if a tag is still
    /// in the frame).
    fn skb_from(bytes: &[u8]) -> Skb {
        let mut skb = SkbPool::default().alloc_from(64, bytes).unwrap();
        skb.reset_mac_header();
        skb.pull(ethernet::HEADER_LEN).unwrap();
        skb.reset_network_header();
        skb.meta.protocol = EthernetFrame::new_checked(bytes).unwrap().ethertype().0;
        skb
    }

    fn skb(spec: Spec) -> Skb {
        skb_from(&frame(spec))
    }

    fn tcp_skb() -> Skb {
        skb(Spec::new(L4::Tcp(40000, 80)))
    }

    fn filter(pref: u32, matches: &[TcMatch], actions: &[TcAction]) -> TcFilter {
        TcFilter {
            pref,
            matches: matches.to_vec(),
            actions: actions.to_vec(),
        }
    }

    fn src(a: [u8; 4], prefix_len: u8) -> TcMatch {
        TcMatch::Ipv4Src {
            addr: Ipv4Addr::from(a),
            prefix_len,
        }
    }

    fn dst(a: [u8; 4], prefix_len: u8) -> TcMatch {
        TcMatch::Ipv4Dst {
            addr: Ipv4Addr::from(a),
            prefix_len,
        }
    }

    fn u32m(offset: i32, value: u32, mask: u32) -> TcMatch {
        TcMatch::U32 {
            offset,
            value,
            mask,
        }
    }

    #[test]
    fn match_dev_compares_the_hook_device() {
        let s = tcp_skb();
        assert!(matches(&TcMatch::Dev(IF1), &s, IF1));
        assert!(!matches(&TcMatch::Dev(IF2), &s, IF1));
    }

    #[test]
    fn match_ethertype_reads_skb_protocol() {
        let mut s = tcp_skb();
        assert!(matches(&TcMatch::EtherType(0x0800), &s, IF1));
        assert!(!matches(&TcMatch::EtherType(0x0806), &s, IF1));
        s.meta.protocol = 0x0806;
        assert!(matches(&TcMatch::EtherType(0x0806), &s, IF1));
    }

    #[test]
    fn match_vlan_id_from_skb_tag() {
        let mut s = tcp_skb();
        assert!(!matches(&TcMatch::VlanId(0), &s, IF1), "untagged");
        // PCP 5, DEI set, VID 100: only the VID counts.
        s.meta.vlan = Some(VlanInfo {
            proto: 0x8100,
            tci: 5 << 13 | 0x1000 | 100,
        });
        assert!(matches(&TcMatch::VlanId(100), &s, IF1));
        assert!(!matches(&TcMatch::VlanId(101), &s, IF1));
        assert!(!matches(&TcMatch::VlanId(100 | 0x1000), &s, IF1));
    }

    #[test]
    fn match_vlan_id_from_tag_in_frame() {
        for tpid in [EtherType::VLAN, EtherType::QINQ] {
            let mut spec = Spec::new(L4::Tcp(1, 2));
            spec.tag = Some((tpid, 3 << 13 | 42));
            let mut s = skb(spec);
            assert_eq!(s.meta.protocol, tpid.0);
            assert!(matches(&TcMatch::VlanId(42), &s, IF1), "{tpid}");
            assert!(!matches(&TcMatch::VlanId(43), &s, IF1), "{tpid}");
            // The skb's own tag, once set, is the one that counts.
            s.meta.vlan = Some(VlanInfo {
                proto: tpid.0,
                tci: 7,
            });
            assert!(matches(&TcMatch::VlanId(7), &s, IF1));
            assert!(!matches(&TcMatch::VlanId(42), &s, IF1));
        }
        // A protocol that is not a TPID: the bytes at nh are not a tag.
        let mut spec = Spec::new(L4::Tcp(1, 2));
        spec.tag = Some((EtherType::VLAN, 42));
        let mut s = skb(spec);
        s.meta.protocol = 0x0800;
        assert!(!matches(&TcMatch::VlanId(42), &s, IF1));
        // A tag cut short.
        let f = frame(spec);
        let s = skb_from(&f[..ethernet::HEADER_LEN + 3]);
        assert!(!matches(&TcMatch::VlanId(42), &s, IF1));
    }

    #[test]
    fn match_mark_with_mask() {
        let mut s = tcp_skb();
        s.meta.mark = 0xabcd_0012;
        let m = |value, mask| TcMatch::Mark { value, mask };
        assert!(matches(&m(0x12, 0xff), &s, IF1));
        assert!(matches(&m(0xabcd_0000, 0xffff_0000), &s, IF1));
        assert!(matches(&m(0xabcd_0012, u32::MAX), &s, IF1));
        assert!(matches(&m(0, 0), &s, IF1));
        assert!(!matches(&m(0x13, 0xff), &s, IF1));
        // A value with bits outside the mask can never match.
        assert!(!matches(&m(0x112, 0xff), &s, IF1));
    }

    #[test]
    fn match_ipv4_prefixes() {
        let s = tcp_skb(); // 198.51.100.7 -> 192.0.2.10
        assert!(matches(&src([198, 51, 100, 0], 24), &s, IF1));
        assert!(!matches(&src([198, 51, 101, 0], 24), &s, IF1));
        assert!(matches(&dst([192, 0, 2, 0], 24), &s, IF1));
        assert!(!matches(&dst([198, 51, 100, 0], 24), &s, IF1));
        // Host bits in the filter's address are ignored.
        assert!(matches(&dst([192, 0, 2, 255], 24), &s, IF1));
        assert!(matches(&dst([192, 0, 2, 11], 31), &s, IF1));
        assert!(!matches(&dst([192, 0, 2, 12], 31), &s, IF1));
        // /0 takes everything, /32 one address, /33 and up nothing.
        assert!(matches(&src([0, 0, 0, 0], 0), &s, IF1));
        assert!(matches(&dst([10, 9, 8, 7], 0), &s, IF1));
        assert!(matches(&src([198, 51, 100, 7], 32), &s, IF1));
        assert!(!matches(&src([198, 51, 100, 6], 32), &s, IF1));
        assert!(matches(&dst([192, 0, 2, 10], 32), &s, IF1));
        assert!(!matches(&dst([192, 0, 2, 10], 33), &s, IF1));
        assert!(!matches(&src([198, 51, 100, 7], 33), &s, IF1));
        assert!(!matches(&src([0, 0, 0, 0], 255), &s, IF1));
    }

    #[test]
    fn ipv4_keys_need_ipv4_protocol_and_a_good_header() {
        let mut s = tcp_skb();
        s.meta.protocol = 0x86dd;
        assert!(!matches(&src([0, 0, 0, 0], 0), &s, IF1));
        assert!(!matches(&TcMatch::IpProto(6), &s, IF1));
        assert!(!matches(&TcMatch::DstPort(80), &s, IF1));

        // Cut inside the header, or shorter than the total length.
        let f = frame(Spec::new(L4::Tcp(40000, 80)));
        for len in [ethernet::HEADER_LEN, ethernet::HEADER_LEN + 19, f.len() - 1] {
            let s = skb_from(&f[..len]);
            assert!(!matches(&src([0, 0, 0, 0], 0), &s, IF1), "len {len}");
            assert!(!matches(&TcMatch::IpProto(6), &s, IF1), "len {len}");
        }
        // Not version 4.
        let mut bad = f.clone();
        bad[ethernet::HEADER_LEN] = 0x65;
        assert!(!matches(&dst([192, 0, 2, 10], 32), &skb_from(&bad), IF1));
        // A VLAN tag still in the frame: protocol is the TPID, no IPv4 keys.
        let mut spec = Spec::new(L4::Tcp(40000, 80));
        spec.tag = Some((EtherType::VLAN, 5));
        assert!(!matches(&dst([192, 0, 2, 10], 32), &skb(spec), IF1));
    }

    #[test]
    fn match_ip_proto() {
        assert!(matches(&TcMatch::IpProto(6), &tcp_skb(), IF1));
        assert!(!matches(&TcMatch::IpProto(17), &tcp_skb(), IF1));
        let udp = skb(Spec::new(L4::Udp(5353, 53)));
        assert!(matches(&TcMatch::IpProto(17), &udp, IF1));
        let icmp = skb(Spec::new(L4::Icmp));
        assert!(matches(&TcMatch::IpProto(1), &icmp, IF1));
        assert!(!matches(&TcMatch::IpProto(6), &icmp, IF1));
    }

    #[test]
    fn match_ports_tcp_and_udp() {
        let tcp = tcp_skb();
        assert!(matches(&TcMatch::SrcPort(40000), &tcp, IF1));
        assert!(matches(&TcMatch::DstPort(80), &tcp, IF1));
        assert!(!matches(&TcMatch::SrcPort(80), &tcp, IF1));
        assert!(!matches(&TcMatch::DstPort(40000), &tcp, IF1));
        let udp = skb(Spec::new(L4::Udp(5353, 53)));
        assert!(matches(&TcMatch::SrcPort(5353), &udp, IF1));
        assert!(matches(&TcMatch::DstPort(53), &udp, IF1));
        assert!(!matches(&TcMatch::DstPort(5353), &udp, IF1));
        // ICMP has no ports, whatever its first bytes hold (type 8, code 0
        // would read as "port 2048").
        let icmp = skb(Spec::new(L4::Icmp));
        assert!(!matches(&TcMatch::SrcPort(0x0800), &icmp, IF1));
        // Ports come from IHL * 4, not a fixed 20: add 4 bytes of options.
        let f = frame(Spec::new(L4::Tcp(40000, 80)));
        let ip_at = ethernet::HEADER_LEN;
        let mut opt = f[..ip_at].to_vec();
        let mut ip = f[ip_at..ip_at + 20].to_vec();
        ip.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        opt.extend_from_slice(&ip);
        opt.extend_from_slice(&f[ip_at + 20..]);
        {
            let mut p = Ipv4Packet::new_unchecked(&mut opt[ip_at..]);
            p.set_header_len(24);
            p.set_total_len(p.total_len() + 4);
            p.fill_checksum();
        }
        let s = skb_from(&opt);
        assert!(matches(&TcMatch::SrcPort(40000), &s, IF1));
        assert!(matches(&TcMatch::DstPort(80), &s, IF1));
    }

    #[test]
    fn ports_ignored_on_later_fragments() {
        let mut spec = Spec::new(L4::Tcp(40000, 80));
        spec.frag_offset = 8;
        let later = skb(spec);
        assert!(!matches(&TcMatch::SrcPort(40000), &later, IF1));
        assert!(!matches(&TcMatch::DstPort(80), &later, IF1));
        // The rest of the header still matches.
        assert!(matches(&TcMatch::IpProto(6), &later, IF1));
        assert!(matches(&dst([192, 0, 2, 10], 32), &later, IF1));
        // The same, last fragment with MF clear... and with MF set.
        spec.more_frags = true;
        assert!(!matches(&TcMatch::DstPort(80), &skb(spec), IF1));
        // A first fragment (MF, offset 0) carries the ports.
        spec.frag_offset = 0;
        let first = skb(spec);
        assert!(matches(&TcMatch::DstPort(80), &first, IF1));
        assert!(matches(&TcMatch::SrcPort(40000), &first, IF1));
    }

    #[test]
    fn u32_reads_at_network_header_offsets() {
        let s = tcp_skb();
        // Version/IHL, TOS, total length 40.
        assert!(matches(&u32m(0, 0x4500_0028, u32::MAX), &s, IF1));
        // `match u8 6 0xff at 9`: the protocol byte.
        assert!(matches(&u32m(8, 0x0006_0000, 0x00ff_0000), &s, IF1));
        // Destination address at 16.
        assert!(matches(&u32m(16, u32::from(DST), u32::MAX), &s, IF1));
        assert!(!matches(&u32m(16, u32::from(SRC), u32::MAX), &s, IF1));
        // `match u16 80 0xffff at 22` (nexthdr+2 with a 20-byte header).
        assert!(matches(&u32m(20, 80, 0xffff), &s, IF1));
    }

    #[test]
    fn u32_negative_offsets_reach_the_mac_header() {
        let s = tcp_skb();
        // At -2: the ethertype, then version/IHL and TOS.
        assert!(matches(&u32m(-2, 0x0800_0000, 0xffff_0000), &s, IF1));
        assert!(matches(&u32m(-2, 0x0800_4500, u32::MAX), &s, IF1));
        assert!(!matches(&u32m(-2, 0x0806_0000, 0xffff_0000), &s, IF1));
        // At -14: the first four bytes of the destination MAC.
        assert!(matches(&u32m(-14, 0x0200_0000, u32::MAX), &s, IF1));
        // At -6: the last four of the source MAC.
        assert!(matches(&u32m(-6, 0x0000_0002, u32::MAX), &s, IF1));
        // Before the MAC header (headroom) is out of range.
        assert!(!matches(&u32m(-15, 0, 0), &s, IF1));
    }

    #[test]
    fn u32_out_of_range_never_matches() {
        let s = tcp_skb();
        let len = s.network_header_bytes().len() as i32;
        // The last whole word matches; one byte further does not, even with
        // a zero mask.
        assert!(matches(&u32m(len - 4, 0, 0), &s, IF1));
        for offset in [len - 3, len, len + 1000, i32::MAX, i32::MIN, -1000] {
            assert!(!matches(&u32m(offset, 0, 0), &s, IF1), "at {offset}");
        }
        // No network header: nothing to be relative to.
        let f = frame(Spec::new(L4::Tcp(1, 2)));
        let raw = SkbPool::default().alloc_from(64, &f).unwrap();
        assert!(!matches(&u32m(0, 0, 0), &raw, IF1));
        // No MAC header: back to data only.
        let mut nomac = SkbPool::default().alloc_from(64, &f).unwrap();
        nomac.pull(ethernet::HEADER_LEN).unwrap();
        nomac.reset_network_header();
        assert!(!matches(&u32m(-2, 0, 0), &nomac, IF1));
        assert!(matches(&u32m(0, 0x4500_0000, 0xffff_0000), &nomac, IF1));
        // At egress, data at the MAC header: negative offsets work too.
        let mut egress = SkbPool::default().alloc_from(64, &f).unwrap();
        egress
            .set_network_header(ethernet::HEADER_LEN)
            .expect("in range");
        assert!(matches(&u32m(-2, 0x0800_0000, 0xffff_0000), &egress, IF1));
    }

    #[test]
    fn filter_needs_all_matches() {
        let mut chain = TcChain::new();
        chain.add(filter(
            1,
            &[TcMatch::IpProto(6), TcMatch::DstPort(81)],
            &[TcAction::Drop],
        ));
        let mut s = tcp_skb();
        let mut mirrors = Vec::new();
        assert_eq!(chain.run(&mut s, IF1, &mut mirrors), TcVerdict::Pass);
        assert_eq!(chain.stats(), TcStats::default(), "nothing matched");
        chain.add(filter(
            2,
            &[TcMatch::IpProto(6), TcMatch::DstPort(80)],
            &[TcAction::Drop],
        ));
        assert_eq!(chain.run(&mut s, IF1, &mut mirrors), TcVerdict::Drop);
    }

    #[test]
    fn lower_pref_runs_first() {
        let mut chain = TcChain::new();
        chain.add(filter(20, &[], &[TcAction::Pass]));
        chain.add(filter(10, &[TcMatch::IpProto(6)], &[TcAction::Drop]));
        chain.add(filter(30, &[], &[TcAction::SetMark(9)]));
        let prefs: Vec<u32> = chain.filters().iter().map(|f| f.pref).collect();
        assert_eq!(prefs, [10, 20, 30]);
        let mut mirrors = Vec::new();
        let mut s = tcp_skb();
        assert_eq!(chain.run(&mut s, IF1, &mut mirrors), TcVerdict::Drop);
        // UDP falls past pref 10 to the Pass at 20; the mark at 30 never runs.
        let mut u = skb(Spec::new(L4::Udp(1, 2)));
        assert_eq!(chain.run(&mut u, IF1, &mut mirrors), TcVerdict::Pass);
        assert_eq!(u.meta.mark, 0);
    }

    #[test]
    fn equal_prefs_keep_insertion_order_and_remove_takes_all() {
        let mut chain = TcChain::new();
        assert!(chain.is_empty());
        chain.add(filter(5, &[], &[TcAction::SetMark(1)]));
        chain.add(filter(5, &[], &[TcAction::SetMark(2)]));
        chain.add(filter(1, &[TcMatch::Dev(IF2)], &[TcAction::Drop]));
        chain.add(filter(5, &[], &[TcAction::SetMark(3)]));
        let marks: Vec<TcAction> = chain.filters().iter().map(|f| f.actions[0]).collect();
        assert_eq!(
            marks,
            [
                TcAction::Drop,
                TcAction::SetMark(1),
                TcAction::SetMark(2),
                TcAction::SetMark(3)
            ]
        );
        let mut s = tcp_skb();
        assert_eq!(chain.run(&mut s, IF1, &mut Vec::new()), TcVerdict::Pass);
        assert_eq!(s.meta.mark, 1, "first added of equal prefs wins");
        assert_eq!(chain.run(&mut s, IF2, &mut Vec::new()), TcVerdict::Drop);

        assert_eq!(chain.len(), 4);
        assert_eq!(chain.remove(7), 0);
        assert_eq!(chain.remove(5), 3);
        assert_eq!(chain.len(), 1);
        assert_eq!(chain.remove(1), 1);
        assert!(chain.is_empty());
        assert_eq!(chain.run(&mut s, IF2, &mut Vec::new()), TcVerdict::Pass);
    }

    #[test]
    fn actions_run_in_sequence() {
        let mut chain = TcChain::new();
        chain.add(filter(
            1,
            &[dst([192, 0, 2, 0], 24)],
            &[
                TcAction::SetMark(0x77),
                TcAction::Mirror {
                    dev: IF2,
                    dir: TcDirection::Egress,
                },
                TcAction::SetPriority(6),
                TcAction::Redirect {
                    dev: IF3,
                    dir: TcDirection::Ingress,
                },
                // Never reached: redirect ends the run.
                TcAction::SetMark(0xdead),
                TcAction::Drop,
            ],
        ));
        let mut mirrors = Vec::with_capacity(4);
        let mut s = tcp_skb();
        let v = chain.run(&mut s, IF1, &mut mirrors);
        assert_eq!(v, TcVerdict::Redirect(IF3, TcDirection::Ingress));
        assert_eq!(s.meta.mark, 0x77);
        assert_eq!(s.meta.priority, 6);
        assert_eq!(mirrors, [(IF2, TcDirection::Egress)]);
        // Appended, not cleared.
        chain.run(&mut s, IF1, &mut mirrors);
        assert_eq!(mirrors.len(), 2);
    }

    #[test]
    fn pass_stops_and_running_off_the_end_passes() {
        let mut chain = TcChain::new();
        chain.add(filter(
            1,
            &[TcMatch::Dev(IF1)],
            &[TcAction::Pass, TcAction::Drop],
        ));
        chain.add(filter(2, &[], &[TcAction::SetMark(4)]));
        let mut s = tcp_skb();
        let mut mirrors = Vec::new();
        assert_eq!(chain.run(&mut s, IF1, &mut mirrors), TcVerdict::Pass);
        assert_eq!(s.meta.mark, 0, "Pass ends classification");
        assert_eq!(chain.run(&mut s, IF2, &mut mirrors), TcVerdict::Pass);
        assert_eq!(s.meta.mark, 4);
        // A filter with no actions at all passes too.
        let mut empty = TcChain::new();
        empty.add(filter(1, &[], &[]));
        assert_eq!(empty.run(&mut s, IF1, &mut mirrors), TcVerdict::Pass);
        assert_eq!(empty.stats().passed, 1);
    }

    #[test]
    fn stats_count_verdicts_and_mirrors() {
        let mut chain = TcChain::new();
        let mirror = TcAction::Mirror {
            dev: IF3,
            dir: TcDirection::Egress,
        };
        chain.add(filter(
            1,
            &[TcMatch::Mark {
                value: 1,
                mask: 0xff,
            }],
            &[TcAction::Drop],
        ));
        chain.add(filter(
            2,
            &[TcMatch::Mark {
                value: 2,
                mask: 0xff,
            }],
            &[
                mirror,
                mirror,
                TcAction::Redirect {
                    dev: IF2,
                    dir: TcDirection::Egress,
                },
            ],
        ));
        chain.add(filter(
            3,
            &[TcMatch::Mark {
                value: 3,
                mask: 0xff,
            }],
            &[mirror],
        ));
        let mut mirrors = Vec::new();
        for mark in [1, 1, 2, 3, 3, 3, 4] {
            let mut s = tcp_skb();
            s.meta.mark = mark;
            chain.run(&mut s, IF1, &mut mirrors);
        }
        let st = chain.stats();
        assert_eq!(
            st,
            TcStats {
                matched: 6,
                passed: 3,
                dropped: 2,
                redirected: 1,
                mirrored: 5,
            }
        );
        assert_eq!(mirrors.len(), 5);
    }

    #[test]
    fn display_like_tc_filter_show() {
        let f = filter(
            10,
            &[
                dst([192, 0, 2, 0], 24),
                TcMatch::IpProto(6),
                TcMatch::DstPort(80),
            ],
            &[TcAction::Redirect {
                dev: IF3,
                dir: TcDirection::Egress,
            }],
        );
        assert_eq!(
            f.to_string(),
            "pref 10 match ip dst 192.0.2.0/24 ip_proto 6 dst_port 80 \
             action mirred egress redirect dev if3"
        );
        let all = filter(
            1,
            &[
                TcMatch::Dev(IF1),
                TcMatch::EtherType(0x0800),
                TcMatch::VlanId(100),
                TcMatch::Mark {
                    value: 0x10,
                    mask: 0xf0,
                },
                src([10, 0, 0, 0], 8),
                TcMatch::SrcPort(53),
                u32m(-2, 0x0800_0000, 0xffff_0000),
            ],
            &[
                TcAction::SetMark(5),
                TcAction::SetPriority(3),
                TcAction::Mirror {
                    dev: IF2,
                    dir: TcDirection::Ingress,
                },
                TcAction::Pass,
                TcAction::Drop,
            ],
        );
        assert_eq!(
            all.to_string(),
            "pref 1 match dev if1 eth_type 0x0800 vlan_id 100 mark 0x10/0xf0 \
             ip src 10.0.0.0/8 src_port 53 u32 0x08000000 0xffff0000 at -2 \
             action skbedit mark 5 action skbedit priority 3 \
             action mirred ingress mirror dev if2 action gact pass action gact drop"
        );
        assert_eq!(filter(7, &[], &[]).to_string(), "pref 7 match all");
    }

    fn any_match() -> impl Strategy<Value = TcMatch> {
        let addr = any::<[u8; 4]>().prop_map(Ipv4Addr::from);
        prop_oneof![
            (0u32..4).prop_map(|i| TcMatch::Dev(IfIndex(i))),
            prop_oneof![Just(0x0800u16), Just(0x8100), Just(0x88a8), any::<u16>()]
                .prop_map(TcMatch::EtherType),
            any::<u16>().prop_map(TcMatch::VlanId),
            (any::<u32>(), any::<u32>()).prop_map(|(value, mask)| TcMatch::Mark { value, mask }),
            (addr.clone(), any::<u8>())
                .prop_map(|(addr, prefix_len)| TcMatch::Ipv4Src { addr, prefix_len }),
            (addr, any::<u8>())
                .prop_map(|(addr, prefix_len)| TcMatch::Ipv4Dst { addr, prefix_len }),
            any::<u8>().prop_map(TcMatch::IpProto),
            any::<u16>().prop_map(TcMatch::SrcPort),
            any::<u16>().prop_map(TcMatch::DstPort),
            (
                prop_oneof![-80i32..80, any::<i32>()],
                any::<u32>(),
                any::<u32>()
            )
                .prop_map(|(offset, value, mask)| TcMatch::U32 {
                    offset,
                    value,
                    mask
                }),
        ]
    }

    fn any_action() -> impl Strategy<Value = TcAction> {
        let dir = prop_oneof![Just(TcDirection::Ingress), Just(TcDirection::Egress)];
        prop_oneof![
            Just(TcAction::Pass),
            Just(TcAction::Drop),
            (0u32..4, dir.clone()).prop_map(|(i, dir)| TcAction::Redirect {
                dev: IfIndex(i),
                dir
            }),
            (0u32..4, dir).prop_map(|(i, dir)| TcAction::Mirror {
                dev: IfIndex(i),
                dir
            }),
            any::<u32>().prop_map(TcAction::SetMark),
            any::<u32>().prop_map(TcAction::SetPriority),
        ]
    }

    fn any_chain() -> impl Strategy<Value = TcChain> {
        proptest::collection::vec(
            (
                0u32..8,
                proptest::collection::vec(any_match(), 0..4),
                proptest::collection::vec(any_action(), 0..4),
            ),
            0..6,
        )
        .prop_map(|filters| {
            let mut chain = TcChain::new();
            for (pref, matches, actions) in filters {
                chain.add(TcFilter {
                    pref,
                    matches,
                    actions,
                });
            }
            chain
        })
    }

    /// Runs `chain` over `skb`, checking the invariants that hold whatever
    /// the bytes: prefs in order, stats add up, one mirror entry per count.
    fn run_checked(chain: &mut TcChain, skb: &mut Skb, dev: IfIndex) {
        let mut mirrors = Vec::new();
        let _ = chain.run(skb, dev, &mut mirrors);
        assert!(chain.filters().windows(2).all(|w| w[0].pref <= w[1].pref));
        let st = chain.stats();
        assert_eq!(st.matched, st.passed + st.dropped + st.redirected);
        assert_eq!(st.mirrored, mirrors.len() as u64);
        for m in chain.filters().iter().flat_map(|f| &f.matches) {
            let _ = m.to_string();
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
            pull in 0usize..40,
            set_mac in any::<bool>(),
            protocol in prop_oneof![Just(0x0800u16), Just(0x8100), Just(0x88a8), any::<u16>()],
            vlan in proptest::option::of(any::<u16>()),
            ipv4_start in any::<bool>(),
            mut chain in any_chain(),
            dev in 0u32..4,
        ) {
            let mut bytes = bytes;
            let pull = pull.min(bytes.len());
            // Often make the network header look like IPv4 so that the
            // deeper keys get exercised.
            if ipv4_start && bytes.len() > pull + 4 {
                bytes[pull] = 0x45;
                let total = (bytes.len() - pull) as u16;
                bytes[pull + 2..pull + 4].copy_from_slice(&total.to_be_bytes());
            }
            let mut s = SkbPool::default().alloc_from(64, &bytes).unwrap();
            if set_mac {
                s.reset_mac_header();
            }
            s.pull(pull).unwrap();
            s.reset_network_header();
            s.meta.protocol = protocol;
            s.meta.vlan = vlan.map(|tci| VlanInfo { proto: 0x8100, tci });
            run_checked(&mut chain, &mut s, IfIndex(dev));
        }

        #[test]
        fn corrupted_frames_never_panic(
            l4 in prop_oneof![
                (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4::Tcp(a, b)),
                (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4::Udp(a, b)),
                Just(L4::Icmp),
            ],
            tagged in any::<bool>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
            mut chain in any_chain(),
        ) {
            let mut spec = Spec::new(l4);
            if tagged {
                spec.tag = Some((EtherType::VLAN, 10));
            }
            let mut f = frame(spec);
            for (at, b) in edits {
                let n = f.len();
                f[at % n] = b;
            }
            f.truncate(ethernet::HEADER_LEN + cut % (f.len() - ethernet::HEADER_LEN + 1));
            let mut s = SkbPool::default().alloc_from(64, &f).unwrap();
            s.reset_mac_header();
            s.pull(ethernet::HEADER_LEN).unwrap();
            s.reset_network_header();
            s.meta.protocol = u16::from_be_bytes([f[12], f[13]]);
            run_checked(&mut chain, &mut s, IF1);
        }
    }
}
