//! The sk_buff's metadata: what Linux keeps beside the data pointers.

use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::time::Instant;

/// `skb->pkt_type`: who the frame was addressed to (set by the driver from the
/// destination MAC, `eth_type_trans`), or which way it is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PacketType {
    /// PACKET_HOST: addressed to this host.
    #[default]
    Host,
    /// PACKET_BROADCAST.
    Broadcast,
    /// PACKET_MULTICAST.
    Multicast,
    /// PACKET_OTHERHOST: seen only because of promiscuous mode; `ip_rcv` drops it.
    OtherHost,
    /// PACKET_OUTGOING: a packet this host sends (as taps see it).
    Outgoing,
    /// PACKET_LOOPBACK.
    Loopback,
}

/// `skb->ip_summed`: what is known about the transport checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumState {
    /// CHECKSUM_NONE: nothing known; software must verify or compute it.
    #[default]
    None,
    /// CHECKSUM_UNNECESSARY: already verified (by "hardware" or loopback).
    Unnecessary,
    /// CHECKSUM_COMPLETE: `csum` is the one's-complement sum of the packet
    /// from the network header on.
    Complete { csum: u16 },
    /// CHECKSUM_PARTIAL: still to be filled in: sum from `start` (offset from
    /// head), result written at `start + offset`.
    Partial { start: u16, offset: u16 },
}

/// Everything an skb carries besides its data and header offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkbMeta {
    /// `skb->protocol`: the Ethernet type of the L3 payload (host order).
    pub protocol: u16,
    /// `skb->skb_iif`: the device the packet came in on.
    pub ingress_dev: Option<IfIndex>,
    /// `skb->dev` on egress: the device it goes out of.
    pub egress_dev: Option<IfIndex>,
    pub pkt_type: PacketType,
    /// `skb->vlan_proto`/`vlan_tci` once the tag is removed from the frame
    /// (`None`: untagged, or tag still in the data).
    pub vlan: Option<VlanInfo>,
    /// `skb->mark` (netfilter MARK, tc skbedit).
    pub mark: u32,
    /// `skb->priority` (pfifo_fast band selection, SO_PRIORITY).
    pub priority: u32,
    /// `skb->hash`: flow hash (RSS/bond/fq); 0 = not computed.
    pub hash: u32,
    /// `skb->tstamp`: when the packet arrived or is due to leave, in ns
    /// (`u64::MAX`: none). Read and set with [`SkbMeta::tstamp`] and
    /// [`SkbMeta::set_tstamp`]; kept as a plain `u64` so that `Skb` stays
    /// within 128 bytes (moves of it are then inline copies).
    tstamp_ns: u64,
    /// `skb_dst()`: the route the packet follows, as routing decided it.
    pub dst: Option<crate::ipv4::route::Dst>,
    pub ip_summed: ChecksumState,
    /// Set when the skb is freed as a drop (`kfree_skb_reason`).
    pub drop_reason: Option<DropReason>,
    /// A frame on a simulated wire whose last four bytes are the place of
    /// its FCS, not yet computed: hardware would have, and the bytes are
    /// only worked out when something reads them (a capture, a link that
    /// alters the frame, a node that checks it): [`super::Skb::resolve_offloads`].
    pub fcs_pending: bool,
    /// `skb_shinfo(skb)->gso_size`: payload bytes per segment of a GSO skb
    /// (0: not GSO). Set by TCP on a run of two or more full-sized segments
    /// sent as one skb; cut into packets by [`super::skb_gso_segment`]
    /// before the driver. (Linux's `gso_segs` follows from the length; it
    /// is not kept, so that `Skb` stays within 128 bytes.)
    pub gso_size: u16,
    // No `skb->cb`: TCP keeps its per-segment state (`tcp_skb_cb`) beside
    // the skb in its queues, so the 48 bytes would only be moved around.
}

/// An 802.1Q / 802.1ad tag held in the skb rather than the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanInfo {
    /// TPID: 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub proto: u16,
    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    pub tci: u16,
}

impl VlanInfo {
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
    pub const fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }
}

impl SkbMeta {
    /// `skb->tstamp`.
    pub fn tstamp(&self) -> Option<Instant> {
        (self.tstamp_ns != u64::MAX).then_some(Instant::from_nanos(self.tstamp_ns))
    }

    pub fn set_tstamp(&mut self, t: Option<Instant>) {
        self.tstamp_ns = t.map_or(u64::MAX, |t| t.as_nanos().min(u64::MAX - 1));
    }
}

impl Default for SkbMeta {
    fn default() -> Self {
        SkbMeta {
            protocol: 0,
            ingress_dev: None,
            egress_dev: None,
            pkt_type: PacketType::Host,
            vlan: None,
            mark: 0,
            priority: 0,
            hash: 0,
            tstamp_ns: u64::MAX,
            dst: None,
            ip_summed: ChecksumState::None,
            drop_reason: None,
            fcs_pending: false,
            gso_size: 0,
        }
    }
}
