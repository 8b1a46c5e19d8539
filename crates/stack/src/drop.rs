//! Drop reasons and their counters: Linux's `enum skb_drop_reason` and
//! `kfree_skb_reason()` (DESIGN.md §6).
//!
//! Every free of an skb that is not a successful consumption goes through
//! [`DropStats::kfree_skb_reason`], which records the reason on the skb's
//! metadata, counts it, and frees the buffer back to its pool. Names are
//! Linux's (`SKB_DROP_REASON_` prefix removed), so `netpath` output reads like
//! `perf script -e skb:kfree_skb` or `dropwatch` on Linux.

use crate::skb::Skb;

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Why a packet was dropped; each maps to a Linux `SKB_DROP_REASON_*`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order (index = `self as usize`).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The Linux name without its `SKB_DROP_REASON_` prefix.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    NotSpecified = "NOT_SPECIFIED",
    /// No socket matched (TCP answers with RST, UDP with port unreachable).
    NoSocket = "NO_SOCKET",
    /// Shorter than the header it claims to be.
    PktTooSmall = "PKT_TOO_SMALL",
    TcpCsum = "TCP_CSUM",
    SocketFilter = "SOCKET_FILTER",
    UdpCsum = "UDP_CSUM",
    NetfilterDrop = "NETFILTER_DROP",
    /// Frame for another host's MAC (promiscuous), dropped in `ip_rcv`.
    OtherHost = "OTHERHOST",
    IpCsum = "IP_CSUM",
    /// Bad IPv4 header (version, IHL, length).
    IpInhdr = "IP_INHDR",
    IpRpfilter = "IP_RPFILTER",
    UnicastInL2Multicast = "UNICAST_IN_L2_MULTICAST",
    IpNoproto = "IP_NOPROTO",
    SocketRcvbuff = "SOCKET_RCVBUFF",
    ProtoMem = "PROTO_MEM",
    SocketBacklog = "SOCKET_BACKLOG",
    TcpFlags = "TCP_FLAGS",
    TcpZerowindow = "TCP_ZEROWINDOW",
    TcpOldData = "TCP_OLD_DATA",
    TcpOverwindow = "TCP_OVERWINDOW",
    TcpOfomerge = "TCP_OFOMERGE",
    TcpRfc7323Paws = "TCP_RFC7323_PAWS",
    TcpOldSequence = "TCP_OLD_SEQUENCE",
    TcpInvalidSequence = "TCP_INVALID_SEQUENCE",
    TcpInvalidAckSequence = "TCP_INVALID_ACK_SEQUENCE",
    TcpReset = "TCP_RESET",
    TcpInvalidSyn = "TCP_INVALID_SYN",
    TcpClose = "TCP_CLOSE",
    TcpFastopen = "TCP_FASTOPEN",
    TcpOldAck = "TCP_OLD_ACK",
    TcpTooOldAck = "TCP_TOO_OLD_ACK",
    TcpAckUnsentData = "TCP_ACK_UNSENT_DATA",
    TcpOfoQueuePrune = "TCP_OFO_QUEUE_PRUNE",
    TcpOfoDrop = "TCP_OFO_DROP",
    TcpMinttl = "TCP_MINTTL",
    IpOutnoroutes = "IP_OUTNOROUTES",
    NeighCreatefail = "NEIGH_CREATEFAIL",
    NeighFailed = "NEIGH_FAILED",
    NeighQueuefull = "NEIGH_QUEUEFULL",
    NeighDead = "NEIGH_DEAD",
    TcEgress = "TC_EGRESS",
    TcIngress = "TC_INGRESS",
    QdiscDrop = "QDISC_DROP",
    /// A qdisc over its limit (fq_codel's overflow drop from the fattest flow).
    QdiscOverlimit = "QDISC_OVERLIMIT",
    /// An AQM dropped it for congestion (CoDel's drop at dequeue).
    QdiscCongested = "QDISC_CONGESTED",
    CpuBacklog = "CPU_BACKLOG",
    /// No handler for the ethertype.
    UnhandledProto = "UNHANDLED_PROTO",
    SkbCsum = "SKB_CSUM",
    SkbGsoSeg = "SKB_GSO_SEG",
    SkbUcopyFault = "SKB_UCOPY_FAULT",
    DevHdr = "DEV_HDR",
    /// Device down or carrier off.
    DevReady = "DEV_READY",
    FullRing = "FULL_RING",
    Nomem = "NOMEM",
    HdrTrunc = "HDR_TRUNC",
    TapFilter = "TAP_FILTER",
    TapTxfilter = "TAP_TXFILTER",
    IcmpCsum = "ICMP_CSUM",
    InvalidProto = "INVALID_PROTO",
    IpInaddrerrors = "IP_INADDRERRORS",
    IpInnoroutes = "IP_INNOROUTES",
    PktTooBig = "PKT_TOO_BIG",
    DupFrag = "DUP_FRAG",
    FragReasmTimeout = "FRAG_REASM_TIMEOUT",
    FragTooFar = "FRAG_TOO_FAR",
    TcpMd5notfound = "TCP_MD5NOTFOUND",
    /// An MD5 signature option (RFC 2385) and no key for the peer.
    TcpMd5unexpected = "TCP_MD5UNEXPECTED",
    /// An authentication option badly framed, of the wrong length, or twice.
    TcpAuthHdr = "TCP_AUTH_HDR",
    /// A TCP-AO option (RFC 5925) and no TCP-AO keys.
    TcpAounexpected = "TCP_AOUNEXPECTED",
    /// TCP-AO use not matching the request's, or a bad MAC.
    TcpAofailure = "TCP_AOFAILURE",
    VlanFilter = "VLAN_FILTER",
    MacInvalidSource = "MAC_INVALID_SOURCE",
    /// A simulated link lost the frame (netpath's own: a wire has no kernel).
    LinkLoss = "LINK_LOSS",
}

/// Drop counters by reason, with the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropStats {
    counts: [u64; DropReason::ALL.len()],
}

impl Default for DropStats {
    fn default() -> Self {
        DropStats {
            counts: [0; DropReason::ALL.len()],
        }
    }
}

impl DropStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// `kfree_skb_reason()`: record `reason` on the skb, count it, free it.
    pub fn kfree_skb_reason(&mut self, mut skb: Skb, reason: DropReason) {
        skb.meta.drop_reason = Some(reason);
        self.count(reason);
        drop(skb);
    }

    /// Counts a drop that had no skb (e.g. a frame the NIC refused).
    pub fn count(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The non-zero counters, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.counts[r as usize]))
            .filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb::SkbPool;

    #[test]
    fn names_are_linux_names_and_indices_line_up() {
        assert_eq!(DropReason::NoSocket.as_str(), "NO_SOCKET");
        assert_eq!(DropReason::NetfilterDrop.as_str(), "NETFILTER_DROP");
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn kfree_skb_reason_counts() {
        let pool = SkbPool::default();
        let mut stats = DropStats::new();
        stats.kfree_skb_reason(pool.alloc(100).unwrap(), DropReason::IpCsum);
        stats.kfree_skb_reason(pool.alloc(100).unwrap(), DropReason::IpCsum);
        stats.count(DropReason::FullRing);
        assert_eq!(stats.get(DropReason::IpCsum), 2);
        assert_eq!(stats.total(), 3);
        let v: Vec<_> = stats.iter().collect();
        assert_eq!(v, vec![(DropReason::IpCsum, 2), (DropReason::FullRing, 1)]);
        assert_eq!(pool.stats().in_use, 0);
    }
}
