//! Generic receive offload: `napi_gro_receive()` → `inet_gro_receive()` →
//! `tcp4_gro_receive()`, and `napi_gro_flush()` → `tcp_gro_complete()`
//! (Linux `net/core/gro.c`, `net/ipv4/af_inet.c`, `net/ipv4/tcp_offload.c`).
//!
//! Seed stage: ingress step 7, between the driver building the skb and
//! `netif_receive_skb`. Consecutive in-order TCP segments of one flow that
//! arrive in one NAPI poll are merged into one skb before the stack sees
//! them, so IP, netfilter, routing and TCP run once per merged packet (up to
//! 64 KiB) instead of once per frame, and TCP acknowledges once per merged
//! packet as it does for a segment of more than one MSS.
//!
//! Linux's rules for merging (`tcp_gro_receive`): same addresses and ports,
//! the next sequence number, the same ACK number, TCP options byte for byte
//! the same, the same IP TTL, TOS and DF, consecutive IP IDs unless DF is
//! set, no flag beyond ACK, PSH and FIN, no IP options or fragments, a
//! checksum known good (verified by the NIC, or here in software), and no
//! segment longer than the first. A short segment or one with PSH or FIN is
//! merged and ends the packet. The merged packet gets its total length, a fresh IP
//! header checksum, `gso_size` (the first segment's payload) and, as
//! `tcp_gro_complete` leaves it, a partial TCP checksum (known good).
//!
//! Up to eight flows are held at once (Linux's `MAX_GRO_SKBS`; one more
//! sends the oldest up). A packet GRO does not merge goes up at once, after
//! what is held of its own flow, so a flow's packets keep their order while
//! other flows' held packets may be overtaken, as on Linux; the poll's end
//! flushes everything (`napi_complete_done`). Merging copies each payload
//! once into a buffer sized for what the poll has left.

use super::IfIndex;
use crate::skb::{ChecksumState, PacketType, Skb};
use crate::stack::Stack;
use netpath_wire::checksum::{self, Checksum};
use std::net::Ipv4Addr;

const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const TCP_FIN: u8 = 0x01;
/// Flags a merged segment may carry; PSH and FIN end the packet.
const TCP_END: u8 = TCP_PSH | TCP_FIN;
/// Link-layer header bytes kept in front of a merged packet.
const ETH_HLEN: usize = 14;

/// The flow being merged (`napi->gro_hash`, one entry).
#[derive(Debug)]
pub(crate) struct GroHeld {
    /// The first frame, or the merged packet once a second one joined.
    skb: Skb,
    merged: bool,
    dev: IfIndex,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    ports: u32,
    next_seq: u32,
    ack: u32,
    next_id: u16,
    /// Payload bytes of the first segment (`gso_size`).
    mss: usize,
    /// TCP header length of every segment (options included).
    thl: usize,
    segs: u16,
    /// PSH and FIN of the segments merged (the last one's: either ends
    /// the packet).
    end_flags: u8,
    payload: usize,
}

/// What `tcp4_gro_receive` reads of a candidate segment.
struct GroKey {
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    ports: u32,
    seq: u32,
    ack: u32,
    id: u16,
    df: bool,
    thl: usize,
    flags: u8,
    payload: usize,
}

/// A frame GRO may merge: IPv4 without options or fragments, TCP with data
/// and only ACK/PSH. Data at the IP header.
fn gro_key(skb: &Skb) -> Option<GroKey> {
    if skb.meta.protocol != 0x0800
        || skb.meta.pkt_type != PacketType::Host
        || skb.meta.vlan.is_some()
    {
        return None;
    }
    let d = skb.data();
    if d.len() < 40 || d[0] != 0x45 || d[9] != 6 {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let frag = u16::from_be_bytes([d[6], d[7]]);
    if frag & 0x3fff != 0 || tot > d.len() || tot < 40 {
        return None;
    }
    let t = &d[20..tot];
    let thl = usize::from(t[12] >> 4) * 4;
    let flags = t[13];
    if thl < 20 || thl >= t.len() || flags & !(TCP_ACK | TCP_END) != 0 || flags & TCP_ACK == 0 {
        return None;
    }
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(GroKey {
        saddr: Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        daddr: Ipv4Addr::new(d[16], d[17], d[18], d[19]),
        ports: be32(&t[0..4]),
        seq: be32(&t[4..8]),
        ack: be32(&t[8..12]),
        id: u16::from_be_bytes([d[4], d[5]]),
        df: frag & 0x4000 != 0,
        thl,
        flags,
        payload: t.len() - thl,
    })
}

/// The checksums GRO relies on: the IP header's, and the TCP one known good
/// by the NIC (or a partial one from a sender on the simulated wire) or
/// verified here (`skb_gro_checksum_validate`), after which it is known good.
fn checksums_good(skb: &mut Skb, k: &GroKey) -> bool {
    let d = skb.data();
    if !checksum::verify(&d[..20]) {
        return false;
    }
    match skb.meta.ip_summed {
        ChecksumState::Unnecessary | ChecksumState::Partial { .. } => true,
        _ => {
            let tcp_len = k.thl + k.payload;
            let mut c = Checksum::pseudo_header_v4(k.saddr, k.daddr, 6, tcp_len as u16);
            c.add_bytes(&d[20..20 + tcp_len]);
            let ok = c.finish() == 0;
            if ok {
                skb.meta.ip_summed = ChecksumState::Unnecessary;
            }
            ok
        }
    }
}

/// Flows GRO holds at once (`MAX_GRO_SKBS`); one more flushes the oldest.
pub(crate) const MAX_GRO_FLOWS: usize = 8;

/// The flow of an IPv4/TCP packet (data at the IP header), for a packet GRO
/// does not merge: what it holds of that flow must go up first.
fn tcp_flow(skb: &Skb) -> Option<(Ipv4Addr, Ipv4Addr, u32)> {
    let d = skb.data();
    if skb.meta.protocol != 0x0800 || d.len() < 24 || d[0] >> 4 != 4 || d[9] != 6 {
        return None;
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    let p = d.get(ihl..ihl + 4)?;
    Some((
        Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        Ipv4Addr::new(d[16], d[17], d[18], d[19]),
        u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
    ))
}

impl GroHeld {
    fn is_flow(&self, dev: IfIndex, (saddr, daddr, ports): (Ipv4Addr, Ipv4Addr, u32)) -> bool {
        self.dev == dev && self.saddr == saddr && self.daddr == daddr && self.ports == ports
    }
}

impl Stack {
    /// `napi_gro_receive()`: merge `skb` into the packet held for its flow,
    /// or hold it, or hand it to `netif_receive_skb` (after what is held of
    /// its flow, if anything: a flow's packets keep their order; other
    /// flows' held packets stay, as Linux's GRO lists do). `more`: frames
    /// the poll has yet to hand over (at most), which sizes the buffer of a
    /// packet being built.
    pub(crate) fn napi_gro_receive(&mut self, dev: IfIndex, mut skb: Skb, more: usize) {
        let key = gro_key(&skb);
        let Some(k) = key.filter(|k| checksums_good(&mut skb, k)) else {
            if let Some(flow) = tcp_flow(&skb) {
                self.napi_gro_flush_flow(dev, flow);
            }
            self.netif_receive_skb(skb);
            return;
        };
        let flow = (k.saddr, k.daddr, k.ports);
        if let Some(i) = self.gro.iter().position(|h| h.is_flow(dev, flow)) {
            let h = &mut self.gro[i];
            if gro_can_merge(h, &skb, &k) && gro_append(h, &skb, &k, &self.pool, more) {
                self.tracer.skb(self.now, "napi_gro_receive", &skb);
                drop(skb);
                let h = &self.gro[i];
                if h.end_flags != 0 || k.payload < h.mss {
                    self.napi_gro_complete(i);
                }
                return;
            }
            self.napi_gro_complete(i);
        }
        if k.flags & TCP_END != 0 {
            // Nothing to wait for: PSH or FIN ends a packet (and a lone
            // one is handed up as it is).
            self.netif_receive_skb(skb);
            return;
        }
        if self.gro.len() >= MAX_GRO_FLOWS {
            // The oldest flow goes up to make room (`gro_flush_oldest`).
            self.napi_gro_complete(0);
        }
        self.gro.push(GroHeld {
            skb,
            merged: false,
            dev,
            saddr: k.saddr,
            daddr: k.daddr,
            ports: k.ports,
            next_seq: k.seq.wrapping_add(k.payload as u32),
            ack: k.ack,
            next_id: k.id.wrapping_add(1),
            mss: k.payload,
            thl: k.thl,
            segs: 1,
            end_flags: 0,
            payload: k.payload,
        });
    }

    /// `napi_gro_flush()`: every held packet goes up, oldest first (the end
    /// of a NAPI poll).
    pub(crate) fn napi_gro_flush(&mut self) {
        while !self.gro.is_empty() {
            self.napi_gro_complete(0);
        }
    }

    /// What GRO holds of one flow goes up (before a packet of that flow it
    /// does not merge).
    pub(crate) fn napi_gro_flush_flow(&mut self, dev: IfIndex, flow: (Ipv4Addr, Ipv4Addr, u32)) {
        if let Some(i) = self.gro.iter().position(|h| h.is_flow(dev, flow)) {
            self.napi_gro_complete(i);
        }
    }

    /// The flow of a TSO burst about to go up whole, as `tcp_flow` reads
    /// it from its IPv4 header on (the burst's data is at its IP header).
    pub(crate) fn napi_gro_flush_for(&mut self, dev: IfIndex, skb: &Skb) {
        if let Some(flow) = tcp_flow(skb) {
            self.napi_gro_flush_flow(dev, flow);
        }
    }

    /// `napi_gro_complete()` → `tcp_gro_complete()`: the `i`-th held
    /// packet goes up.
    fn napi_gro_complete(&mut self, i: usize) {
        let h = self.gro.remove(i);
        let mut skb = h.skb;
        if h.merged {
            let total = 20 + h.thl + h.payload;
            let end_flags = h.end_flags;
            let (saddr, daddr) = (h.saddr, h.daddr);
            let d = skb.data_mut();
            d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            d[10..12].fill(0);
            let c = checksum::checksum(&d[..20]);
            d[10..12].copy_from_slice(&c.to_be_bytes());
            d[20 + 13] |= end_flags;
            let pseudo = Checksum::pseudo_header_v4(saddr, daddr, 6, (h.thl + h.payload) as u16);
            d[20 + 16..20 + 18].copy_from_slice(&pseudo.sum().to_be_bytes());
            skb.meta.gso_size = h.mss as u16;
            skb.meta.ip_summed = ChecksumState::Partial {
                start: (skb.data_offset() + 20) as u16,
                offset: 16,
            };
            self.tracer
                .skb_detail(self.now, "napi_gro_complete", &skb, u64::from(h.segs));
        }
        self.netif_receive_skb(skb);
    }
}

/// `tcp_gro_receive`'s checks of a segment against the held flow.
fn gro_can_merge(h: &GroHeld, skb: &Skb, k: &GroKey) -> bool {
    if k.seq != h.next_seq
        || k.ack != h.ack
        || k.thl != h.thl
        || k.payload > h.mss
        || h.end_flags != 0
    {
        return false;
    }
    if 20 + h.thl + h.payload + k.payload > 65535 {
        return false;
    }
    let (a, b) = (skb.data(), h.skb.data());
    // TTL, TOS and DF alike; IDs consecutive unless DF.
    if a[1] != b[1] || a[8] != b[8] || (a[6] ^ b[6]) & 0x40 != 0 {
        return false;
    }
    if !k.df && k.id != h.next_id {
        return false;
    }
    // Options byte for byte.
    a[40..20 + k.thl] == b[40..20 + h.thl]
}

/// `skb_gro_receive()`: appends the payload (moving the first frame into a
/// 64 KiB buffer when the second arrives). False if no buffer could be had.
fn gro_append(
    h: &mut GroHeld,
    skb: &Skb,
    k: &GroKey,
    pool: &crate::skb::SkbPool,
    more: usize,
) -> bool {
    if !h.merged {
        let first = h.skb.data();
        let hdr = 20 + h.thl;
        let keep = &first[..hdr + h.payload];
        // Room for this segment and every other the poll may still bring,
        // so that a short burst does not sit in a 64 KiB buffer.
        let want = (hdr + h.mss * (2 + more)).min(65535);
        let Ok(mut big) = pool.alloc(ETH_HLEN + want) else {
            return false;
        };
        // The Ethernet header the first frame came with, for taps.
        let mac = h.skb.mac_header_bytes();
        let mac_len = h
            .skb
            .network_header()
            .zip(h.skb.mac_header())
            .map_or(0, |(n, m)| n.saturating_sub(m))
            .min(ETH_HLEN);
        let ok = big
            .put_slice(&mac[..mac_len])
            .and_then(|()| big.put_slice(keep))
            .map(|()| big.reset_mac_header())
            .and_then(|()| big.pull(mac_len))
            .map(|()| big.reset_network_header())
            .and_then(|()| big.set_transport_header(20));
        if ok.is_err() {
            return false;
        }
        big.meta = h.skb.meta.clone();
        h.skb = big;
        h.merged = true;
    }
    let tot = 20 + k.thl + k.payload;
    let body = &skb.data()[20 + k.thl..tot];
    if h.skb.tailroom() < body.len() || h.skb.put_slice(body).is_err() {
        return false;
    }
    h.payload += k.payload;
    h.next_seq = h.next_seq.wrapping_add(k.payload as u32);
    h.next_id = k.id.wrapping_add(1);
    h.segs += 1;
    h.end_flags = k.flags & TCP_END;
    true
}
