//! Packet taps: `ptype_all` and `ptype_base` (AF_PACKET sockets), seed
//! ingress step 8 "clone the skb to every tap (tcpdump uses it)".
//!
//! A tap bound to every protocol sees a clone of each packet that
//! `netif_receive_skb` receives (before tc ingress) and each packet
//! `dev_hard_start_xmit` sends (`dev_queue_xmit_nit`, pkt_type OUTGOING),
//! filtered by device and direction. A tap bound to one protocol is a
//! protocol handler like IPv4's: it is offered packets of that ethertype at
//! L3 dispatch, and takes the original when it is the last handler.
//! Frames a NIC dropped (bad FCS, filtered, ring full) never reach a tap.
//!
//! Sinks: a pcap [`Capture`] (tcpdump -w) or a bounded queue the
//! application reads (`recvfrom` on a packet socket); overflow is counted and
//! dropped with `SOCKET_RCVBUFF`.

use std::collections::VecDeque;

use super::IfIndex;
use crate::capture::Capture;
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;

/// Which way a packet goes past a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TapDirection {
    /// Received packets only (PACKET_IGNORE_OUTGOING).
    In,
    /// Sent packets only.
    Out,
    /// Both (tcpdump's default).
    #[default]
    Both,
}

/// Where a tap's packets go.
#[derive(Debug)]
pub enum TapSink {
    /// Written to a pcap as they pass (from the MAC header; a VLAN tag held
    /// in the skb is written back into the frame, as libpcap does).
    Capture(Capture),
    /// Queued for the application, at most `limit` packets.
    Queue { queue: VecDeque<Skb>, limit: usize },
}

impl TapSink {
    /// A queue sink holding at most `limit` packets.
    pub fn queue(limit: usize) -> TapSink {
        TapSink::Queue {
            queue: VecDeque::with_capacity(limit.min(4096)),
            limit,
        }
    }
}

/// What a tap has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapStats {
    pub packets: u64,
    pub drops: u64,
}

/// A packet tap (`struct packet_type` + its socket).
#[derive(Debug)]
pub struct Tap {
    /// Only packets on this device (`None`: every device).
    pub dev: Option<IfIndex>,
    /// Only this ethertype (`None`: ETH_P_ALL, every packet, at the tap
    /// stage; `Some`: a protocol handler at L3 dispatch).
    pub protocol: Option<u16>,
    pub direction: TapDirection,
    pub sink: TapSink,
    pub stats: TapStats,
}

impl Tap {
    /// A tap on every protocol (`tcpdump -i DEV` or `-i any`).
    pub fn all(dev: Option<IfIndex>, sink: TapSink) -> Tap {
        Tap {
            dev,
            protocol: None,
            direction: TapDirection::Both,
            sink,
            stats: TapStats::default(),
        }
    }

    /// A protocol handler bound to `protocol` (`socket(AF_PACKET, SOCK_RAW, htons(protocol))`).
    pub fn protocol(dev: Option<IfIndex>, protocol: u16, sink: TapSink) -> Tap {
        Tap {
            dev,
            protocol: Some(protocol),
            direction: TapDirection::In,
            sink,
            stats: TapStats::default(),
        }
    }

    fn wants(&self, skb: &Skb, dev: IfIndex, outgoing: bool) -> bool {
        let dir_ok = match self.direction {
            TapDirection::Both => true,
            TapDirection::In => !outgoing,
            TapDirection::Out => outgoing,
        };
        dir_ok
            && self.dev.is_none_or(|d| d == dev)
            && self.protocol.is_none_or(|p| p == skb.meta.protocol)
    }
}

/// Handle of a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TapId(usize);

/// The stack's taps.
#[derive(Debug, Default)]
pub struct Taps {
    list: Vec<Option<Tap>>,
    /// Bytes of a frame whose VLAN tag is written back for a capture.
    scratch: Vec<u8>,
    /// How many ETH_P_ALL taps exist (the fast "no taps" check).
    all_count: usize,
}

impl Stack {
    pub fn add_tap(&mut self, tap: Tap) -> TapId {
        if tap.protocol.is_none() {
            self.taps.all_count += 1;
        }
        self.taps.list.push(Some(tap));
        TapId(self.taps.list.len() - 1)
    }

    pub fn remove_tap(&mut self, id: TapId) -> Option<Tap> {
        let t = self.taps.list.get_mut(id.0)?.take()?;
        if t.protocol.is_none() {
            self.taps.all_count -= 1;
        }
        Some(t)
    }

    pub fn tap(&self, id: TapId) -> Option<&Tap> {
        self.taps.list.get(id.0)?.as_ref()
    }

    /// Reads the next queued packet of a queue tap.
    pub fn tap_recv(&mut self, id: TapId) -> Option<Skb> {
        match &mut self.taps.list.get_mut(id.0)?.as_mut()?.sink {
            TapSink::Queue { queue, .. } => queue.pop_front(),
            TapSink::Capture(_) => None,
        }
    }

    /// ptype_all: a clone to every matching tap (`deliver_skb` for each).
    pub(crate) fn deliver_taps_all(&mut self, skb: &Skb, dev: IfIndex, outgoing: bool) {
        if self.taps.all_count == 0 {
            return;
        }
        let now = self.now;
        let from_wire = !outgoing
            && matches!(
                skb.meta.ip_summed,
                crate::skb::ChecksumState::Partial { .. }
            )
            && self
                .dev(dev)
                .is_ok_and(|d| matches!(d.kind, super::DevKind::Nic(_)));
        for i in 0..self.taps.list.len() {
            let wants = self.taps.list[i]
                .as_ref()
                .is_some_and(|t| t.protocol.is_none() && t.wants(skb, dev, outgoing));
            if !wants {
                continue;
            }
            let mut clone = skb.clone();
            if outgoing {
                clone.meta.pkt_type = PacketType::Outgoing;
            } else if from_wire {
                // A NIC received these bytes finished: show them so (a
                // sender's pending checksum is only worked out on demand).
                clone.checksum_help();
            }
            self.tracer.skb(now, "deliver_skb", &clone);
            self.tap_deliver(i, clone);
        }
    }

    /// ptype_base for `skb.meta.protocol`: every matching protocol tap gets
    /// the packet (clones, the last one the original). Returns the packet
    /// when no tap took it.
    /// `exact`: only taps bound to this very device (RX_HANDLER_EXACT).
    pub(crate) fn deliver_ptype_base(
        &mut self,
        skb: Skb,
        dev: IfIndex,
        exact: bool,
    ) -> Option<Skb> {
        let Some(mut prev) = self.next_protocol_tap(0, &skb, dev, exact) else {
            return Some(skb);
        };
        // Each match but the last gets a clone, the last the original.
        while let Some(i) = self.next_protocol_tap(prev + 1, &skb, dev, exact) {
            let c = skb.clone();
            self.tap_deliver(prev, c);
            prev = i;
        }
        self.tap_deliver(prev, skb);
        None
    }

    /// A clone of `skb` to every protocol tap that wants it, keeping the
    /// original for a built-in handler (IPv4, ARP).
    pub(crate) fn deliver_ptype_base_clones(&mut self, skb: &Skb, dev: IfIndex) {
        let mut at = 0;
        while let Some(i) = self.next_protocol_tap(at, skb, dev, false) {
            self.tap_deliver(i, skb.clone());
            at = i + 1;
        }
    }

    /// The first protocol tap at or after `from` that wants `skb`.
    fn next_protocol_tap(
        &self,
        from: usize,
        skb: &Skb,
        dev: IfIndex,
        exact: bool,
    ) -> Option<usize> {
        (from..self.taps.list.len()).find(|&i| {
            self.taps.list[i].as_ref().is_some_and(|t| {
                t.protocol.is_some() && (!exact || t.dev == Some(dev)) && t.wants(skb, dev, false)
            })
        })
    }

    fn tap_deliver(&mut self, i: usize, skb: Skb) {
        let now = self.now;
        let Some(Some(tap)) = self.taps.list.get_mut(i) else {
            return;
        };
        match &mut tap.sink {
            TapSink::Capture(cap) => {
                tap.stats.packets += 1;
                let frame = skb.mac_header_bytes();
                match skb.meta.vlan {
                    Some(tag) if frame.len() >= 12 => {
                        let s = &mut self.taps.scratch;
                        s.clear();
                        s.extend_from_slice(&frame[..12]);
                        s.extend_from_slice(&tag.proto.to_be_bytes());
                        s.extend_from_slice(&tag.tci.to_be_bytes());
                        s.extend_from_slice(&frame[12..]);
                        cap.record(now, s);
                    }
                    _ => cap.record(now, frame),
                }
                self.consume_skb(skb);
            }
            TapSink::Queue { queue, limit } => {
                if queue.len() >= *limit {
                    tap.stats.drops += 1;
                    self.kfree_skb(skb, DropReason::SocketRcvbuff);
                } else {
                    tap.stats.packets += 1;
                    queue.push_back(skb);
                }
            }
        }
    }
}
