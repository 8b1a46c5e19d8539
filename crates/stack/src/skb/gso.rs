//! Generic segmentation offload: `skb_gso_segment()` → `tcp_gso_segment()`
//! (Linux `net/core/gso.c`, `net/ipv4/tcp_offload.c`).
//!
//! Seed stage: egress step 7, between the qdisc and the driver
//! (`validate_xmit_skb`). TCP hands the layers below one skb for a run of
//! up to ~64 KiB of consecutive full-sized segments (`gso_size` payload bytes
//! each, `gso_segs` of them); routing, netfilter, the neighbour layer and the
//! qdisc see it once. Here it is cut into the MTU-sized packets the wire
//! carries: each gets a copy of the headers (link, IPv4, TCP with its
//! options) and its slice of the payload, with the fields that differ per
//! segment fixed up as Linux's `tcp_gso_segment`/`inet_gso_segment` do:
//! IPv4 total length, ID (consecutive) and header checksum; TCP sequence
//! number; FIN and PSH only on the last segment, CWR only on the first; the
//! TCP checksum left partial (`CHECKSUM_PARTIAL`) with the pseudo-header sum
//! of the segment's own length, for the device or `skb_checksum_help`.

use super::{ChecksumState, Skb, SkbError, SkbPool};
use netpath_wire::checksum::{self, Checksum};
use std::net::Ipv4Addr;

/// Why a GSO skb could not be segmented (the caller drops it as
/// `SKB_GSO_SEG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// Network or transport header offset unset or not after data.
    NoHeaders,
    /// Not IPv4/TCP, or headers that do not parse.
    Malformed,
    /// No buffer for a segment.
    Skb(SkbError),
}

impl From<SkbError> for GsoError {
    fn from(e: SkbError) -> Self {
        GsoError::Skb(e)
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Bytes of tailroom each segment gets beyond its data (the FCS a NIC
/// appends).
const SEG_TAILROOM: usize = 4;

/// Cuts `skb` (a GSO skb: `meta.gso_size > 0`, data at the link or network
/// header, network and transport headers set) into segments appended to
/// `out`, each a linear skb of at most `gso_size` payload bytes (the first
/// under `skb`'s id). `skb` itself is left as it was.
pub fn skb_gso_segment(skb: &Skb, pool: &SkbPool, out: &mut Vec<Skb>) -> Result<(), GsoError> {
    let data_off = skb.data_offset();
    let (Some(nh), Some(th)) = (skb.network_header(), skb.transport_header()) else {
        return Err(GsoError::NoHeaders);
    };
    let (Some(nh), Some(th)) = (nh.checked_sub(data_off), th.checked_sub(data_off)) else {
        return Err(GsoError::NoHeaders);
    };
    let bytes = skb.data();
    let ip = bytes.get(nh..th).ok_or(GsoError::Malformed)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 || usize::from(ip[0] & 0x0f) * 4 != ip.len() || ip[9] != 6 {
        return Err(GsoError::Malformed);
    }
    let thl = usize::from(bytes.get(th + 12).ok_or(GsoError::Malformed)? >> 4) * 4;
    let hdr_len = th + thl;
    if thl < 20 || hdr_len > bytes.len() {
        return Err(GsoError::Malformed);
    }
    let payload = &bytes[hdr_len..];
    let mss = usize::from(skb.meta.gso_size).max(1);
    let saddr = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let daddr = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let id0 = u16::from_be_bytes([ip[4], ip[5]]);
    let seq0 = u32::from_be_bytes([bytes[th + 4], bytes[th + 5], bytes[th + 6], bytes[th + 7]]);
    let flags = bytes[th + 13];
    let headroom = skb.headroom().min(128);
    let n = payload.len().div_ceil(mss).max(1);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let mut seg = pool.alloc(headroom + hdr_len + chunk.len() + SEG_TAILROOM)?;
        seg.reserve(headroom)?;
        {
            let buf = seg.put(hdr_len + chunk.len())?;
            let (hdr, body) = buf.split_at_mut(hdr_len);
            hdr.copy_from_slice(&bytes[..hdr_len]);
            body.copy_from_slice(chunk);
            // IPv4: total length, consecutive IDs, header checksum.
            let tot = (hdr_len - nh + chunk.len()) as u16;
            let iph = &mut hdr[nh..th];
            iph[2..4].copy_from_slice(&tot.to_be_bytes());
            iph[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            iph[10..12].fill(0);
            let c = checksum::checksum(iph);
            iph[10..12].copy_from_slice(&c.to_be_bytes());
            // TCP: sequence number, flags, partial checksum.
            let tcph = &mut hdr[th..];
            let seq = seq0.wrapping_add((i * mss) as u32);
            tcph[4..8].copy_from_slice(&seq.to_be_bytes());
            let mut f = flags;
            if i + 1 < n {
                f &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                f &= !TCP_CWR;
            }
            tcph[13] = f;
            let tcp_len = (thl + chunk.len()) as u16;
            let pseudo = Checksum::pseudo_header_v4(saddr, daddr, 6, tcp_len).sum();
            tcph[16..18].copy_from_slice(&pseudo.to_be_bytes());
        }
        if let Some(m) = skb.mac_header().and_then(|m| m.checked_sub(data_off)) {
            seg.set_mac_header(m)?;
        }
        seg.set_network_header(nh)?;
        seg.set_transport_header(th)?;
        seg.meta = skb.meta.clone();
        seg.meta.gso_size = 0;
        if i == 0 {
            // The first segment goes on under the GSO skb's id, so that
            // trace events follow one packet from the socket to the wire.
            seg.id = skb.id;
        }
        seg.meta.ip_summed = ChecksumState::Partial {
            start: (seg.data_offset() + th) as u16,
            offset: 16,
        };
        out.push(seg);
    }
    Ok(())
}
