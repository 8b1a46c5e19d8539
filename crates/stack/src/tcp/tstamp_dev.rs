//! The device side of TCP transmit timestamps ([`super::timestamping`]):
//! `SCM_TSTAMP_SCHED` where `__dev_queue_xmit()` reports it (every
//! `dev_queue_xmit`, so once per layer of stacked devices, before tc and
//! the qdisc) and `SCM_TSTAMP_SND` where the drivers call
//! `skb_tx_timestamp()` (the NIC once its tx ring took the packet,
//! loopback, veth; VLAN, bridge, bond and tunnels hand the packet to a lower
//! device that does).
//!
//! A packet reports for a request when it is an IPv4 TCP packet of the
//! request's connection (inside one IPIP header at most) and its payload
//! covers the requested byte: a GSO skb as a whole, as Linux's skb carries
//! the flags through `dev_queue_xmit` and to a TSO driver, or the one
//! segment holding the byte once it is cut (`tcp_gso_tstamp`).

use netpath_wire::tcp::TcpSeqNumber;

use super::timestamping::{SCM_TSTAMP_SCHED, SCM_TSTAMP_SND};
use crate::dev::IfIndex;
use crate::skb::Skb;
use crate::sock::SockId;
use crate::stack::Stack;

/// An outgoing TCP packet's flow (source first) and the sequence space its
/// payload covers.
struct TcpPayload {
    saddr: [u8; 4],
    sport: u16,
    daddr: [u8; 4],
    dport: u16,
    /// The first payload byte (after a SYN's sequence number).
    start: TcpSeqNumber,
    len: u32,
}

/// The TCP payload of an IPv4 packet (`outer`: an IPIP packet is looked
/// into once). Fragments after the first have no TCP header: none.
fn ipv4_tcp_payload(ip: &[u8], outer: bool) -> Option<TcpPayload> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ihl < 20 || tot < ihl || ip.len() < ihl {
        return None;
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        return None;
    }
    let body = &ip[ihl..tot.min(ip.len())];
    match ip[9] {
        6 => {}
        4 if outer => return ipv4_tcp_payload(body, false),
        _ => return None,
    }
    if body.len() < 20 {
        return None;
    }
    let doff = usize::from(body[12] >> 4) * 4;
    if doff < 20 || doff > body.len() {
        return None;
    }
    let seq = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let syn = u32::from(body[13] & 0x02 != 0);
    Some(TcpPayload {
        saddr: [ip[12], ip[13], ip[14], ip[15]],
        sport: u16::from_be_bytes([body[0], body[1]]),
        daddr: [ip[16], ip[17], ip[18], ip[19]],
        dport: u16::from_be_bytes([body[2], body[3]]),
        start: TcpSeqNumber(seq.wrapping_add(syn)),
        len: (body.len() - doff) as u32,
    })
}

/// The TCP payload of a leaving packet: from its network header, or after
/// an Ethernet header when that is unset.
fn skb_tcp_payload(skb: &Skb) -> Option<TcpPayload> {
    if skb.network_header().is_some() {
        return ipv4_tcp_payload(skb.network_header_bytes(), true);
    }
    let d = skb.data();
    if d.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    ipv4_tcp_payload(&d[14..], true)
}

impl Stack {
    /// The requests `skb` reports for `tstype`: (socket, key).
    fn skb_tstamp_hits(&self, skb: &Skb, tstype: u32) -> Vec<(SockId, TcpSeqNumber)> {
        let marks = &self.tcp.tstamps.marks;
        if !marks.iter().any(|m| m.wants(tstype)) {
            return Vec::new();
        }
        let Some(p) = skb_tcp_payload(skb) else {
            return Vec::new();
        };
        marks
            .iter()
            .filter(|m| {
                m.wants(tstype)
                    && m.tuple.laddr.octets() == p.saddr
                    && m.tuple.lport == p.sport
                    && m.tuple.raddr.octets() == p.daddr
                    && m.tuple.rport == p.dport
                    && m.key.0.wrapping_sub(p.start.0) < p.len
            })
            .map(|m| (m.sock, m.key))
            .collect()
    }

    fn skb_tstamp_tx(&mut self, skb: &Skb, tstype: u32) {
        for (sock, key) in self.skb_tstamp_hits(skb, tstype) {
            self.tstamp_report(sock, tstype, key, skb.clone());
        }
    }

    /// `SCM_TSTAMP_SCHED` (`__dev_queue_xmit`).
    #[inline]
    pub(crate) fn skb_tstamp_sched(&mut self, skb: &Skb) {
        if !self.tcp.tstamps.marks.is_empty() {
            self.skb_tstamp_tx(skb, SCM_TSTAMP_SCHED);
        }
    }

    /// `skb_tx_timestamp()`: a driver's software `SCM_TSTAMP_SND`.
    #[inline]
    pub(crate) fn skb_tx_timestamp(&mut self, skb: &Skb) {
        if !self.tcp.tstamps.marks.is_empty() {
            self.skb_tstamp_tx(skb, SCM_TSTAMP_SND);
        }
    }

    /// The NIC driver's `ndo_start_xmit` with its `skb_tx_timestamp()`:
    /// reported once the tx ring took the packet (a busy driver reports
    /// when the packet is tried again and taken).
    // The busy packet comes back by value, as from `nic_start_xmit`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn nic_start_xmit_tstamp(&mut self, dev: IfIndex, skb: Skb) -> Result<(), Skb> {
        if self.tcp.tstamps.marks.is_empty() {
            return self.nic_start_xmit(dev, skb);
        }
        let hits = self.skb_tstamp_hits(&skb, SCM_TSTAMP_SND);
        let copy = (!hits.is_empty()).then(|| skb.clone());
        self.nic_start_xmit(dev, skb)?;
        if let Some(c) = copy {
            for (sock, key) in hits {
                self.tstamp_report(sock, SCM_TSTAMP_SND, key, c.clone());
            }
        }
        Ok(())
    }
}
