//! IPv4 receive: seed ingress steps 9–10 (`net/ipv4/ip_input.c`).
//!
//! `ip_rcv`: drop frames that were for another host's MAC (only here,
//! because bridges and taps wanted to see them); check the header (version,
//! IHL, total length against the skb, which is trimmed to it); verify the
//! header checksum; set the transport header; netfilter PRE_ROUTING; then
//! `ip_rcv_finish` looks up the route and calls `dst_input`: local delivery,
//! forwarding, or `ip_error`. `ip_local_deliver` reassembles fragments,
//! runs netfilter LOCAL_IN, pulls the IP header and hands the packet to the
//! L4 protocol (ICMP now; UDP and TCP register later; raw sockets get a
//! clone), answering an unknown protocol with ICMP protocol unreachable.
//!
//! Linux pulls the IP header in `ip_local_deliver_finish` rather than in
//! `ip_rcv` (forwarded packets keep it at data); netpath does the same.

use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::ErrorKind;

use super::route::{DstInput, RouteError};
use crate::drop::DropReason;
use crate::netfilter::NfHook;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;

pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_IPIP: u8 = 4;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;

impl Stack {
    /// `ip_rcv()`: data at the IPv4 header, network header set.
    pub(crate) fn ip_rcv(&mut self, mut skb: Skb) {
        self.tracer.skb(self.now, "ip_rcv", &skb);
        if skb.meta.pkt_type == PacketType::OtherHost {
            self.kfree_skb(skb, DropReason::OtherHost);
            return;
        }
        self.ip.mib.ip.in_receives += 1;
        let (hl, total, csum_ok) = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => (
                p.header_len(),
                usize::from(p.total_len()),
                p.verify_checksum(),
            ),
            Err(e) => {
                self.ip.mib.ip.in_hdr_errors += 1;
                let reason = match e.kind {
                    ErrorKind::Truncated { .. } => DropReason::PktTooSmall,
                    _ => DropReason::IpInhdr,
                };
                self.kfree_skb(skb, reason);
                return;
            }
        };
        if !csum_ok {
            self.ip.mib.ip.in_hdr_errors += 1;
            self.kfree_skb(skb, DropReason::IpCsum);
            return;
        }
        // Ethernet padding goes (pskb_trim_rcsum).
        if skb.trim(total).is_err() || skb.set_transport_header(hl).is_err() {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        let Some(skb) = self.nf_hook(NfHook::PreRouting, skb, None) else {
            return;
        };
        self.ip_rcv_finish(skb);
    }

    /// `ip_rcv_finish()`: route input, then `dst_input`.
    fn ip_rcv_finish(&mut self, mut skb: Skb) {
        let (daddr, saddr) = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => (p.dst_addr(), p.src_addr()),
            Err(_) => {
                self.kfree_skb(skb, DropReason::IpInhdr);
                return;
            }
        };
        if skb
            .network_header_bytes()
            .first()
            .is_some_and(|b| b & 0x0f > 5)
        {
            if let Err(hdr_error) = self.ip_rcv_options(&skb) {
                let reason = if hdr_error {
                    self.ip.mib.ip.in_hdr_errors += 1;
                    DropReason::IpInhdr
                } else {
                    DropReason::NotSpecified
                };
                self.kfree_skb(skb, reason);
                return;
            }
        }
        if self.tcp_v4_early_demux(&mut skb, daddr, saddr) {
            self.dst_input(skb);
            return;
        }
        if let Err(reason) = self.ip_route_input(&mut skb, daddr, saddr) {
            if reason == DropReason::IpInaddrerrors {
                self.ip.mib.ip.in_addr_errors += 1;
            }
            self.kfree_skb(skb, reason);
            return;
        }
        self.dst_input(skb);
    }

    /// `ip_rcv_options()` / `ip_options_compile()`: a malformed option is
    /// answered with ICMP parameter problem pointing at it; source-routed
    /// packets are refused (`accept_source_route` is 0, as Linux's default).
    /// `Err(true)`: a header error (counted `InHdrErrors`); `Err(false)`:
    /// refused by policy.
    fn ip_rcv_options(&mut self, skb: &Skb) -> Result<(), bool> {
        let Ok(p) = Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            return Err(true);
        };
        let opts = p.options();
        let mut i = 0;
        let mut bad: Option<usize> = None;
        let mut source_route = false;
        while i < opts.len() {
            let kind = opts[i];
            if kind == 0 {
                break;
            }
            if kind == 1 {
                i += 1;
                continue;
            }
            let Some(&len) = opts.get(i + 1) else {
                bad = Some(i + 1);
                break;
            };
            let len = usize::from(len);
            if len < 2 || i + len > opts.len() {
                bad = Some(i + 1);
                break;
            }
            // The option alone through the wire crate's checks (pointers,
            // fixed lengths).
            if let Some(Err(_)) = netpath_wire::ipv4::Ipv4Options::new(&opts[i..i + len]).next() {
                bad = Some(i + 2);
                break;
            }
            source_route |= kind == 0x83 || kind == 0x89;
            i += len;
        }
        if let Some(at) = bad {
            let pointer = 20 + at as u32;
            self.icmp_send(skb, 12, 0, pointer);
            return Err(true);
        }
        if source_route {
            self.tracer.skb(self.now, "ip_rcv_options_srr", skb);
            return Err(false);
        }
        Ok(())
    }

    /// `dst_input()`: the route's input action.
    pub(crate) fn dst_input(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "dst_input", &skb);
        match skb.meta.dst.map(|d| d.input) {
            Some(DstInput::Local) => self.ip_local_deliver(skb),
            Some(DstInput::Forward) => self.ip_forward(skb),
            Some(DstInput::Error(e)) => self.ip_error(skb, e),
            None => self.kfree_skb(skb, DropReason::IpInnoroutes),
        }
    }

    /// `ip_error()`: a packet routing refused. A router answers with ICMP
    /// destination unreachable (blackhole: silence); a host just counts.
    fn ip_error(&mut self, skb: Skb, e: RouteError) {
        let forwarding = skb.meta.ingress_dev.is_some_and(|d| self.ip.forwarding(d));
        let (reason, code) = match e {
            RouteError::HostUnreachable => (DropReason::IpInaddrerrors, Some(1)),
            RouteError::NetUnreachable => (DropReason::IpInnoroutes, Some(0)),
            RouteError::Prohibited => (DropReason::IpInaddrerrors, Some(13)),
            RouteError::Blackhole | RouteError::Invalid => (DropReason::NotSpecified, None),
        };
        if !forwarding {
            if matches!(e, RouteError::HostUnreachable) {
                self.ip.mib.ip.in_addr_errors += 1;
            }
            self.kfree_skb(skb, reason);
            return;
        }
        if let Some(code) = code {
            self.icmp_send(&skb, 3, code, 0);
        }
        self.kfree_skb(skb, reason);
    }

    /// `ip_local_deliver()`: reassembly, then netfilter LOCAL_IN.
    pub(crate) fn ip_local_deliver(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "ip_local_deliver", &skb);
        let is_frag = Ipv4Packet::new_checked(skb.data()).is_ok_and(|p| p.is_fragment());
        let skb = if is_frag {
            match self.ip_defrag(skb) {
                Some(whole) => whole,
                None => return,
            }
        } else {
            skb
        };
        let Some(skb) = self.nf_hook(NfHook::LocalIn, skb, None) else {
            return;
        };
        self.ip_local_deliver_finish(skb);
    }

    /// `ip_local_deliver_finish()`: pull the IP header and hand the packet
    /// to its protocol.
    fn ip_local_deliver_finish(&mut self, mut skb: Skb) {
        let (hl, proto) = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => (p.header_len(), p.protocol().0),
            Err(_) => {
                self.kfree_skb(skb, DropReason::IpInhdr);
                return;
            }
        };
        if skb.pull(hl).is_err() {
            self.kfree_skb(skb, DropReason::PktTooSmall);
            return;
        }
        skb.reset_transport_header();
        let raw = self.raw_local_deliver(&skb, proto);
        match proto {
            IPPROTO_ICMP => {
                self.ip.mib.ip.in_delivers += 1;
                self.icmp_rcv(skb);
            }
            IPPROTO_IPIP => {
                self.ip.mib.ip.in_delivers += 1;
                self.ipip_rcv(skb);
            }
            IPPROTO_TCP => {
                self.ip.mib.ip.in_delivers += 1;
                self.tcp_v4_rcv(skb);
            }
            IPPROTO_UDP => {
                self.ip.mib.ip.in_delivers += 1;
                self.udp_rcv(skb);
            }
            _ if raw => {
                self.ip.mib.ip.in_delivers += 1;
                self.consume_skb(skb);
            }
            _ => {
                self.ip.mib.ip.in_unknown_protos += 1;
                self.icmp_send(&skb, 3, 2, 0);
                self.kfree_skb(skb, DropReason::IpNoproto);
            }
        }
    }

    /// `NF_HOOK()`: runs netfilter at `hook`; `None` when the packet was
    /// dropped (counted `NETFILTER_DROP`) or rejected (answered first).
    pub(crate) fn nf_hook(
        &mut self,
        hook: NfHook,
        mut skb: Skb,
        out_dev: Option<crate::dev::IfIndex>,
    ) -> Option<Skb> {
        if self.nf.is_empty() {
            return Some(skb);
        }
        let in_dev = match hook {
            NfHook::PreRouting | NfHook::LocalIn | NfHook::Forward => skb.meta.ingress_dev,
            _ => None,
        };
        let out = out_dev.or(match hook {
            NfHook::Forward | NfHook::LocalOut | NfHook::PostRouting => skb.meta.dst.map(|d| d.dev),
            _ => None,
        });
        let now = self.now;
        let verdict = self
            .nf
            .run(hook, &mut skb, in_dev, out, now, &mut self.tracer);
        match verdict {
            crate::netfilter::NfVerdict::Accept => Some(skb),
            crate::netfilter::NfVerdict::Drop => {
                self.kfree_skb(skb, DropReason::NetfilterDrop);
                None
            }
            crate::netfilter::NfVerdict::Reject(with) => {
                self.nf_reject(&skb, with);
                self.kfree_skb(skb, DropReason::NetfilterDrop);
                None
            }
        }
    }
}
