//! Match evaluation: `ip_packet_match` (`net/ipv4/netfilter/ip_tables.c`)
//! for the fixed part, `tcp_mt` / `udp_mt` / `icmp_match`
//! (`net/netfilter/xt_tcpudp.c`) and `mark_mt` (`xt_mark.c`).
//!
//! The headers are read once per hook into a [`PacketInfo`] (a few words on
//! the stack; nothing is allocated). A match whose header cannot be read
//! (not IPv4, bad IHL, truncated, ports of a non-first fragment) is false
//! whether or not it is negated, as the match functions return false
//! before looking at their invert flag; nothing here panics, whatever the
//! bytes.

use netpath_wire::icmpv4::{self, Icmpv4Packet};
use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::{self, TcpPacket};
use netpath_wire::udp::{self, UdpPacket};

use super::conntrack::CtState;
use super::rule::{Cond, Rule};
use crate::dev::IfIndex;

/// What the transport header of an unfragmented packet or first fragment
/// gave (as much as each Linux match reads: 20 bytes of TCP, 8 of UDP, 8
/// of ICMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4 {
    None,
    Tcp { sport: u16, dport: u16, flags: u8 },
    Udp { sport: u16, dport: u16 },
    Icmp { ty: u8, code: u8 },
}

/// The IPv4 fields the matches read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpFields {
    pub(crate) src: u32,
    pub(crate) dst: u32,
    pub(crate) proto: u8,
    /// Fragment offset in bytes (0: unfragmented or first fragment).
    pub(crate) frag_off: u16,
    pub(crate) l4: L4,
}

/// The packet as the matches see it: `None` when the bytes at the network
/// header are not a well-formed IPv4 header (version, IHL, total length
/// within the bytes, as `ip_rcv` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketInfo {
    pub(crate) ip: Option<IpFields>,
}

impl PacketInfo {
    pub(crate) fn parse(bytes: &[u8]) -> PacketInfo {
        let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
            return PacketInfo { ip: None };
        };
        let frag_off = ip.frag_offset();
        let proto = ip.protocol().0;
        let l4 = if frag_off != 0 {
            L4::None
        } else {
            transport(proto, ip.payload())
        };
        PacketInfo {
            ip: Some(IpFields {
                src: u32::from(ip.src_addr()),
                dst: u32::from(ip.dst_addr()),
                proto,
                frag_off,
                l4,
            }),
        }
    }
}

/// The transport fields of a first fragment, read through the wire views
/// over slices exactly as long as the fixed header (so their accessors
/// stay in bounds).
fn transport(proto: u8, payload: &[u8]) -> L4 {
    match proto {
        tcp::PROTOCOL => match payload.get(..tcp::HEADER_LEN) {
            Some(h) => {
                let t = TcpPacket::new_unchecked(h);
                L4::Tcp {
                    sport: t.src_port(),
                    dport: t.dst_port(),
                    flags: (t.flags().bits() & 0xff) as u8,
                }
            }
            None => L4::None,
        },
        udp::PROTOCOL => match payload.get(..udp::HEADER_LEN) {
            Some(h) => {
                let u = UdpPacket::new_unchecked(h);
                L4::Udp {
                    sport: u.src_port(),
                    dport: u.dst_port(),
                }
            }
            None => L4::None,
        },
        icmpv4::PROTOCOL => match payload.get(..icmpv4::HEADER_LEN) {
            Some(h) => {
                let i = Icmpv4Packet::new_unchecked(h);
                L4::Icmp {
                    ty: i.msg_type(),
                    code: i.msg_code(),
                }
            }
            None => L4::None,
        },
        _ => L4::None,
    }
}

/// One condition: absent holds; otherwise `test` gives `None` (header not
/// there: false) or whether the value matched, which `!` inverts.
#[inline]
fn check<T>(c: &Option<Cond<T>>, test: impl FnOnce(&T) -> Option<bool>) -> bool {
    match c {
        None => true,
        Some(c) => test(&c.value).is_some_and(|hit| hit != c.negated),
    }
}

impl L4 {
    fn ports(self) -> Option<(u16, u16)> {
        match self {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => Some((sport, dport)),
            _ => None,
        }
    }
}

impl Rule {
    /// Whether every match of the rule holds for the packet with this mark
    /// on a hook with these devices.
    pub(crate) fn matches(
        &self,
        pkt: &PacketInfo,
        mark: u32,
        in_dev: Option<IfIndex>,
        out_dev: Option<IfIndex>,
        ct: CtState,
    ) -> bool {
        let ip = pkt.ip.as_ref();
        let l4 = ip.map_or(L4::None, |ip| ip.l4);
        check(&self.in_dev, |d| Some(in_dev == Some(*d)))
            && check(&self.out_dev, |d| Some(out_dev == Some(*d)))
            && check(&self.mark, |m| Some(mark & m.mask == m.value))
            && check(&self.ctstate, |(s, _)| Some(s.0 & ct.0 != 0))
            && check(&self.src, |n| ip.map(|ip| n.contains(ip.src)))
            && check(&self.dst, |n| ip.map(|ip| n.contains(ip.dst)))
            && check(&self.proto, |p| {
                ip.map(|ip| p.number() == 0 || p.number() == ip.proto)
            })
            && check(&self.fragment, |_| ip.map(|ip| ip.frag_off != 0))
            && check(&self.sport, |r| l4.ports().map(|(s, _)| r.contains(s)))
            && check(&self.dport, |r| l4.ports().map(|(_, d)| r.contains(d)))
            && check(&self.tcp_flags, |m| match l4 {
                L4::Tcp { flags, .. } => Some(flags & m.mask == m.comp),
                _ => None,
            })
            && check(&self.icmp, |m| match l4 {
                L4::Icmp { ty, code } => Some(
                    m.ty == u8::MAX || (ty == m.ty && m.code_min <= code && code <= m.code_max),
                ),
                _ => None,
            })
    }
}
