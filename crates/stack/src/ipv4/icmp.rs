//! ICMP (`net/ipv4/icmp.c`): echo replies, errors wherever Linux sends them,
//! rate limits, and received errors passed up (PMTU updates, errors for
//! transports).
//!
//! `icmp_send` never answers an ICMP error, a fragment other than the
//! first, a packet to a broadcast or multicast address, or one that arrived
//! as link-layer broadcast; errors of the types in `icmp_ratemask` are
//! limited per destination (a token bucket refilled every `icmp_ratelimit`,
//! burst 6, as `inet_peer_xrlim_allow`) and globally (`icmp_msgs_per_sec`,
//! `icmp_msgs_burst`); "fragmentation needed" is never limited. Errors carry
//! TOS 0xc0 (internetwork control) and quote as much of the offending
//! datagram as fits in 576 bytes.

use core::net::Ipv4Addr;

use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netpath_wire::ipv4::Ipv4Packet;

use super::output::{IpSendOpts, PmtuDisc};
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;
use crate::time::Instant;

/// Largest ICMP error datagram (RFC 1812 4.3.2.3).
const ICMP_ERR_MAX: usize = 576;
/// `XRLIM_BURST_FACTOR`.
const XRLIM_BURST: u64 = 6;

/// A received ICMP error, as handed to the transport's `err_handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub time: Instant,
    pub icmp_type: u8,
    pub code: u8,
    /// Next-hop MTU (frag needed), gateway (redirect) or pointer.
    pub info: u32,
    /// From the quoted header: the original packet's endpoints and protocol.
    pub orig_src: Ipv4Addr,
    pub orig_dst: Ipv4Addr,
    pub orig_proto: u8,
    /// Who sent the error.
    pub from: Ipv4Addr,
}

/// ICMP state: rate-limit buckets and the errors received.
#[derive(Debug, Default)]
pub struct IcmpState {
    /// Per destination: tokens (in ns of credit) and last refill.
    peers: Vec<(Ipv4Addr, u64, Instant)>,
    global_tokens: u64,
    global_stamp: Option<Instant>,
    /// Errors received (newest last, bounded), for transports and tests.
    pub(crate) errors: Vec<IcmpError>,
}

fn is_error_type(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

impl Stack {
    /// ICMP errors this host received (newest last; at most 256 kept).
    pub fn icmp_errors(&self) -> &[IcmpError] {
        &self.ip.icmp.errors
    }

    /// `icmp_rcv()`: data at the ICMP header, network header at the IPv4
    /// header.
    pub(crate) fn icmp_rcv(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "icmp_rcv", &skb);
        self.ip.mib.icmp.in_msgs += 1;
        let pkt = match Icmpv4Packet::new_checked(skb.data()) {
            Ok(p) if p.verify_checksum() => p,
            Ok(_) => {
                self.ip.mib.icmp.in_csum_errors += 1;
                self.ip.mib.icmp.in_errors += 1;
                self.kfree_skb(skb, DropReason::IcmpCsum);
                return;
            }
            Err(_) => {
                self.ip.mib.icmp.in_errors += 1;
                self.kfree_skb(skb, DropReason::PktTooSmall);
                return;
            }
        };
        let (t, code) = (pkt.msg_type(), pkt.msg_code());
        self.ip.mib.icmp_msg.in_type[usize::from(t)] += 1;
        self.ip.mib.icmp.count_in(t);
        match t {
            8 => self.icmp_echo(skb),
            t if is_error_type(t) => {
                let info = match (t, code) {
                    (3, 4) => u32::from(pkt.next_hop_mtu()),
                    (5, _) => u32::from(pkt.gateway()),
                    (12, _) => u32::from(pkt.pointer()),
                    _ => 0,
                };
                self.icmp_error_rcv(&skb, t, code, info);
                self.consume_skb(skb);
            }
            // Echo replies and the rest go to raw/ping sockets (already
            // cloned by raw_local_deliver).
            _ => self.consume_skb(skb),
        }
    }

    /// `icmp_unreach()` and friends: a received error. Frag needed updates
    /// the path MTU of the quoted destination; every error is recorded for
    /// the transport of the quoted packet.
    fn icmp_error_rcv(&mut self, skb: &Skb, t: u8, code: u8, info: u32) {
        let from = Ipv4Packet::new_checked(skb.network_header_bytes())
            .map(|p| p.src_addr())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let quoted = skb.data().get(8..).unwrap_or(&[]);
        let Some((osrc, odst, oproto)) = quoted_header(quoted) else {
            self.ip.mib.icmp.in_errors += 1;
            return;
        };
        if t == 3 && code == 4 {
            // RFC 1191; a zero MTU (old routers) is ignored here.
            if info >= 68 {
                self.update_pmtu(odst, info);
            }
        }
        if oproto == 17 {
            self.udp_err(quoted, t, code);
        }
        if oproto == 6 {
            self.tcp_v4_err(quoted, t, code);
        }
        let e = IcmpError {
            time: self.now,
            icmp_type: t,
            code,
            info,
            orig_src: osrc,
            orig_dst: odst,
            orig_proto: oproto,
            from,
        };
        let errs = &mut self.ip.icmp.errors;
        if errs.len() >= 256 {
            errs.remove(0);
        }
        errs.push(e);
        self.tracer.skb_detail(
            self.now,
            "icmp_err",
            skb,
            u64::from(t) << 8 | u64::from(code),
        );
    }

    /// `icmp_echo()`: answers an echo request with the same identifier,
    /// sequence number and data.
    fn icmp_echo(&mut self, skb: Skb) {
        let ignore = self.ip.sysctl.icmp_echo_ignore_all
            || (self.ip.sysctl.icmp_echo_ignore_broadcasts
                && matches!(
                    skb.meta.dst.map(|d| d.rtype),
                    Some(super::route::RouteType::Broadcast | super::route::RouteType::Multicast)
                ));
        let Ok(ip) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        };
        let (src, dst, tos) = (ip.src_addr(), ip.dst_addr(), ip.tos());
        if ignore {
            self.consume_skb(skb);
            return;
        }
        // The reply is the request itself, turned round: type 0, checksum
        // updated in place (RFC 1624), same identifier, sequence and data.
        let mut skb = skb;
        let d = skb.data_mut();
        if d.len() < 8 {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        let old = u16::from_be_bytes([d[0], d[1]]);
        d[0] = 0;
        let new = u16::from_be_bytes([d[0], d[1]]);
        let c = netpath_wire::checksum::update16(u16::from_be_bytes([d[2], d[3]]), old, new);
        d[2..4].copy_from_slice(&c.to_be_bytes());
        skb.meta = Default::default();
        skb.reset_transport_header();
        let saddr = if self.is_local_addr(dst) {
            Some(dst)
        } else {
            None
        };
        let opts = IpSendOpts {
            saddr,
            tos,
            pmtudisc: PmtuDisc::Dont,
            ..IpSendOpts::default()
        };
        if self.ip_queue_xmit(skb, src, 1, opts, None).is_ok() {
            self.icmp_out(0);
        }
    }

    fn icmp_out(&mut self, t: u8) {
        self.ip.mib.icmp.count_out(t);
        self.ip.mib.icmp_msg.out_type[usize::from(t)] += 1;
    }

    /// `icmp_send()`: an ICMP error about `skb_in` (its network header at
    /// the offending IPv4 header) to that packet's source, unless the rules
    /// forbid one.
    pub(crate) fn icmp_send(&mut self, skb_in: &Skb, icmp_type: u8, code: u8, info: u32) {
        let Ok(ip) = Ipv4Packet::new_checked(skb_in.network_header_bytes()) else {
            return;
        };
        let (src, dst, hl, proto) = (
            ip.src_addr(),
            ip.dst_addr(),
            ip.header_len(),
            ip.protocol().0,
        );
        // Not to a broadcast/multicast packet, nor a link-layer broadcast.
        if matches!(
            skb_in.meta.pkt_type,
            PacketType::Broadcast | PacketType::Multicast
        ) || dst.is_broadcast()
            || dst.is_multicast()
            || matches!(
                skb_in.meta.dst.map(|d| d.rtype),
                Some(super::route::RouteType::Broadcast | super::route::RouteType::Multicast)
            )
        {
            return;
        }
        // Only about the first fragment.
        if ip.frag_offset() != 0 {
            return;
        }
        // Never about an ICMP error.
        if proto == 1 {
            let inner = ip.payload().first().copied().unwrap_or(0);
            if is_error_type(inner) || inner > 18 {
                return;
            }
        }
        // The source must be a unicast someone.
        if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback() {
            return;
        }
        if !self.icmp_rate_allow(icmp_type, code, src) {
            return;
        }
        // Quote as much as fits in 576 bytes.
        let quoted_len = (hl + ip.payload().len()).min(ICMP_ERR_MAX - 20 - 8);
        let mut body = [0u8; ICMP_ERR_MAX - 20];
        let rest: [u8; 4] = match (icmp_type, code) {
            (3, 4) => {
                let mtu = (info as u16).to_be_bytes();
                [0, 0, mtu[0], mtu[1]]
            }
            (5, _) | (12, _) => {
                if icmp_type == 12 {
                    [info as u8, 0, 0, 0]
                } else {
                    info.to_be_bytes()
                }
            }
            _ => [0; 4],
        };
        body[0] = icmp_type;
        body[1] = code;
        body[4..8].copy_from_slice(&rest);
        let whole = skb_in.network_header_bytes();
        let Some(q) = whole.get(..quoted_len) else {
            return;
        };
        body[8..8 + quoted_len].copy_from_slice(q);
        let msg = &mut body[..8 + quoted_len];
        let c = netpath_wire::checksum::checksum(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        // From the address the packet was sent to when it was ours; else
        // routing picks one facing the source.
        let saddr = if self.is_local_addr(dst) {
            Some(dst)
        } else {
            None
        };
        let opts = IpSendOpts {
            saddr,
            tos: (ip.tos() & 0x1e) | 0xc0,
            pmtudisc: PmtuDisc::Dont,
            ..IpSendOpts::default()
        };
        self.tracer.skb_detail(
            self.now,
            "icmp_send",
            skb_in,
            u64::from(icmp_type) << 8 | u64::from(code),
        );
        let len = msg.len();
        let msg_copy = body;
        if self
            .ip_send(self.now, src, 1, &msg_copy[..len], opts)
            .is_ok()
        {
            self.icmp_out(icmp_type);
        } else {
            self.ip.mib.icmp.out_errors += 1;
        }
    }

    /// `icmpv4_xrlim_allow()` + `icmp_global_allow()`.
    fn icmp_rate_allow(&mut self, t: u8, code: u8, dst: Ipv4Addr) -> bool {
        // Not limited: types outside the mask, and frag needed (PMTU).
        if t > 31 || self.ip.sysctl.icmp_ratemask & (1 << t) == 0 || (t == 3 && code == 4) {
            return true;
        }
        let now = self.now;
        // Global: icmp_msgs_per_sec, burst icmp_msgs_burst.
        let per_sec = u64::from(self.ip.sysctl.icmp_msgs_per_sec);
        if per_sec > 0 {
            let burst = u64::from(self.ip.sysctl.icmp_msgs_burst);
            let st = &mut self.ip.icmp;
            let elapsed = st.global_stamp.map_or(u64::MAX, |s| (now - s).as_nanos());
            let refill = elapsed.saturating_mul(per_sec) / 1_000_000_000;
            if st.global_stamp.is_none() || refill > 0 {
                st.global_tokens = st.global_tokens.saturating_add(refill).min(burst);
                st.global_stamp = Some(now);
            }
            if st.global_tokens == 0 {
                self.ip.mib.icmp.out_rate_limit_global += 1;
                return false;
            }
            st.global_tokens -= 1;
        }
        // Per destination: one error per icmp_ratelimit, burst 6.
        let interval = self.ip.sysctl.icmp_ratelimit_ms.saturating_mul(1_000_000);
        if interval == 0 {
            return true;
        }
        let cap = interval.saturating_mul(XRLIM_BURST);
        let st = &mut self.ip.icmp;
        let i = match st.peers.iter().position(|(a, _, _)| *a == dst) {
            Some(i) => i,
            None => {
                if st.peers.len() >= 4096 {
                    st.peers.remove(0);
                }
                st.peers.push((dst, cap, now));
                st.peers.len() - 1
            }
        };
        let (_, tokens, stamp) = &mut st.peers[i];
        *tokens = tokens.saturating_add((now - *stamp).as_nanos()).min(cap);
        *stamp = now;
        if *tokens >= interval {
            *tokens -= interval;
            true
        } else {
            self.ip.mib.icmp.out_rate_limit_host += 1;
            false
        }
    }

    /// `ping`: sends an ICMP echo request (as a ping socket would); replies
    /// reach raw ICMP sockets (`raw_open(1)`).
    pub fn icmp_echo_send(
        &mut self,
        now: Instant,
        daddr: Ipv4Addr,
        ident: u16,
        seq: u16,
        data: &[u8],
        opts: IpSendOpts,
    ) -> Result<(), super::output::SendError> {
        let mut msg = vec![0u8; 8 + data.len()];
        let repr = Icmpv4Repr::EchoRequest {
            ident,
            seq_no: seq,
            data_len: data.len(),
        };
        msg[8..].copy_from_slice(data);
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut msg[..]))
            .map_err(|_| super::output::SendError::Invalid)?;
        self.ip_send(now, daddr, 1, &msg, opts)?;
        self.icmp_out(8);
        Ok(())
    }
}

/// (src, dst, protocol) of the IPv4 header quoted in an ICMP error.
fn quoted_header(q: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8)> {
    let b = q.get(..20)?;
    if b[0] >> 4 != 4 {
        return None;
    }
    Some((
        Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        b[9],
    ))
}
