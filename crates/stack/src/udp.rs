//! UDP (`net/ipv4/udp.c`): the datagram transport of seed ingress steps
//! 11–12 and egress steps 1–3.
//!
//! `udp_rcv` checks the length and checksum (zero means none), finds the
//! socket (connected 4-tuple first, then the bound address, then the
//! wildcard), and queues the datagram within the socket's receive buffer
//! (`RcvbufErrors` beyond it, dropped `SOCKET_RCVBUFF`); with no socket it
//! answers ICMP port unreachable (not for broadcasts) and drops `NO_SOCKET`.
//! `udp_sendmsg` builds the header and checksum and hands the datagram to
//! the IP layer. ICMP errors reach connected sockets as a pending error
//! (`udp_err`), returned by the next call, as Linux does.

use core::net::Ipv4Addr;
use std::collections::VecDeque;

use netpath_wire::checksum::Checksum;
use netpath_wire::udp::UdpPacket;

use crate::drop::DropReason;
use crate::ipv4::output::IpSendOpts;
use crate::skb::{PacketType, Skb};
use crate::sock::{Errno, SockId, EPHEMERAL_PORTS, RMEM_DEFAULT};
use crate::stack::Stack;

/// `Udp:` of `/proc/net/snmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpMib {
    pub in_datagrams: u64,
    pub no_ports: u64,
    pub in_errors: u64,
    pub out_datagrams: u64,
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
    pub in_csum_errors: u64,
    pub ignored_multi: u64,
}

/// What a buffer costs against a receive buffer (`skb->truesize`): the
/// buffer and the struct around it.
fn truesize(skb: &Skb) -> usize {
    skb.end() + 256
}

/// `SOCK_MIN_RCVBUF`.
const MIN_RCVBUF: usize = 2304;

#[derive(Debug)]
struct UdpSock {
    local: Option<(Ipv4Addr, u16)>,
    remote: Option<(Ipv4Addr, u16)>,
    rcvq: VecDeque<Skb>,
    rcv_bytes: usize,
    rcvbuf: usize,
    broadcast: bool,
    /// `sk->sk_err`, reported once by the next call.
    err: Option<Errno>,
    opts: IpSendOpts,
    drops: u64,
}

/// The UDP sockets of a stack.
#[derive(Debug, Default)]
pub struct UdpTable {
    socks: Vec<Option<UdpSock>>,
    pub mib: UdpMib,
    next_port: u32,
}

impl UdpTable {
    fn get(&mut self, id: SockId) -> Result<&mut UdpSock, Errno> {
        self.socks
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)
    }

    fn port_used(&self, addr: Ipv4Addr, port: u16) -> bool {
        self.socks.iter().flatten().any(|s| {
            s.local.is_some_and(|(a, p)| {
                p == port && (a == addr || a.is_unspecified() || addr.is_unspecified())
            })
        })
    }

    /// An ephemeral port: the range scanned from a moving start, as
    /// `udp_lib_get_port` does (the start advances deterministically here).
    fn ephemeral(&mut self, addr: Ipv4Addr) -> Option<u16> {
        let (lo, hi) = (
            u32::from(*EPHEMERAL_PORTS.start()),
            u32::from(*EPHEMERAL_PORTS.end()),
        );
        let n = hi - lo + 1;
        self.next_port = self
            .next_port
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345);
        let start = self.next_port % n;
        (0..n)
            .map(|i| (lo + (start + i) % n) as u16)
            .find(|&p| !self.port_used(addr, p))
    }

    /// `__udp4_lib_lookup`: connected match first, then bound address,
    /// then wildcard.
    fn lookup(&self, saddr: Ipv4Addr, sport: u16, daddr: Ipv4Addr, dport: u16) -> Option<usize> {
        let mut best: Option<(u8, usize)> = None;
        for (i, s) in self.socks.iter().enumerate() {
            let Some(s) = s else { continue };
            let Some((la, lp)) = s.local else { continue };
            if lp != dport || !(la == daddr || la.is_unspecified()) {
                continue;
            }
            let score = match s.remote {
                Some(r) if r == (saddr, sport) => 4,
                Some(_) => continue,
                None => 1,
            } + u8::from(la == daddr) * 2;
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

impl Stack {
    /// `Udp:` counters.
    pub fn udp_mib(&self) -> &UdpMib {
        &self.udp.mib
    }

    /// `socket(AF_INET, SOCK_DGRAM, 0)`.
    pub fn udp_socket(&mut self) -> SockId {
        self.udp.socks.push(Some(UdpSock {
            local: None,
            remote: None,
            rcvq: VecDeque::new(),
            rcv_bytes: 0,
            rcvbuf: RMEM_DEFAULT,
            broadcast: false,
            err: None,
            opts: IpSendOpts::default(),
            drops: 0,
        }));
        SockId(self.udp.socks.len() as u32 - 1)
    }

    /// `bind()`: port 0 picks an ephemeral port. The address must be one of
    /// ours (or 0.0.0.0).
    pub fn udp_bind(&mut self, id: SockId, addr: Ipv4Addr, port: u16) -> Result<(), Errno> {
        if !addr.is_unspecified() && !self.is_local_addr(addr) && !addr.is_broadcast() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        if self.udp.get(id)?.local.is_some() {
            return Err(Errno::EINVAL);
        }
        let port = if port == 0 {
            self.udp.ephemeral(addr).ok_or(Errno::EADDRINUSE)?
        } else if self.udp.port_used(addr, port) {
            return Err(Errno::EADDRINUSE);
        } else {
            port
        };
        self.udp.get(id)?.local = Some((addr, port));
        Ok(())
    }

    /// The bound address and port (`getsockname`).
    pub fn udp_local(&self, id: SockId) -> Option<(Ipv4Addr, u16)> {
        self.udp.socks.get(id.0 as usize)?.as_ref()?.local
    }

    /// `connect()`: fixes the peer (route checked now, as
    /// `ip4_datagram_connect`), binds if needed.
    pub fn udp_connect(&mut self, id: SockId, addr: Ipv4Addr, port: u16) -> Result<(), Errno> {
        let opts = self.udp.get(id)?.opts;
        let dst = self
            .ip_route_output(addr, None, opts.oif, opts.mark)
            .map_err(|e| Errno::from(crate::ipv4::output::SendError::Route(e)))?;
        if self.udp.get(id)?.local.is_none() {
            self.udp_bind(id, Ipv4Addr::UNSPECIFIED, 0)?;
        }
        let s = self.udp.get(id)?;
        if let Some((a, p)) = s.local {
            if a.is_unspecified() {
                s.local = Some((dst.prefsrc.unwrap_or(a), p));
            }
        }
        s.remote = Some((addr, port));
        Ok(())
    }

    /// `setsockopt(SO_BROADCAST)`.
    pub fn udp_set_broadcast(&mut self, id: SockId, on: bool) -> Result<(), Errno> {
        self.udp.get(id)?.broadcast = on;
        Ok(())
    }

    /// `setsockopt(SO_RCVBUF)`: doubled, as Linux keeps room for overhead,
    /// within [SOCK_MIN_RCVBUF, 2 × rmem_max].
    pub fn udp_set_rcvbuf(&mut self, id: SockId, bytes: usize) -> Result<(), Errno> {
        self.udp.get(id)?.rcvbuf = bytes.min(RMEM_DEFAULT).saturating_mul(2).max(MIN_RCVBUF);
        Ok(())
    }

    /// `getsockopt(SO_RCVBUF)`.
    pub fn udp_rcvbuf(&mut self, id: SockId) -> Result<usize, Errno> {
        Ok(self.udp.get(id)?.rcvbuf)
    }

    /// IP options of the socket (TTL, TOS, PMTU discovery, mark, device).
    pub fn udp_set_ip_opts(&mut self, id: SockId, opts: IpSendOpts) -> Result<(), Errno> {
        self.udp.get(id)?.opts = opts;
        Ok(())
    }

    pub fn udp_close(&mut self, id: SockId) {
        if let Some(s) = self.udp.socks.get_mut(id.0 as usize) {
            *s = None;
        }
    }

    /// `sendto()` / `send()`: `dst` may be omitted on a connected socket.
    pub fn udp_sendto(
        &mut self,
        now: crate::time::Instant,
        id: SockId,
        data: &[u8],
        dst: Option<(Ipv4Addr, u16)>,
    ) -> Result<usize, Errno> {
        self.set_now(now);
        let s = self.udp.get(id)?;
        if let Some(e) = s.err.take() {
            return Err(e);
        }
        let (daddr, dport) = match (dst, s.remote) {
            (Some(d), _) => d,
            (None, Some(r)) => r,
            (None, None) => return Err(Errno::EDESTADDRREQ),
        };
        if data.len() > 65535 - 20 - 8 {
            return Err(Errno::EMSGSIZE);
        }
        let is_bcast = daddr.is_broadcast()
            || self
                .ip
                .addrs
                .iter()
                .any(|a| a.broadcast == daddr && a.prefix_len < 31);
        if is_bcast && !self.udp.get(id)?.broadcast {
            return Err(Errno::EACCES);
        }
        if self.udp.get(id)?.local.is_none() {
            self.udp_bind(id, Ipv4Addr::UNSPECIFIED, 0)?;
        }
        let s = self.udp.get(id)?;
        let (laddr, lport) = s.local.unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
        let mut opts = s.opts;
        if !laddr.is_unspecified() && !laddr.is_broadcast() {
            opts.saddr = Some(laddr);
        }
        // The source address must be known for the pseudo-header.
        let saddr = match opts.saddr {
            Some(a) => a,
            None => self
                .ip_route_output(daddr, None, opts.oif, opts.mark)
                .map_err(|e| Errno::from(crate::ipv4::output::SendError::Route(e)))?
                .prefsrc
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        opts.saddr = Some(saddr);
        let len = 8 + data.len();
        let mut skb = self.pool.alloc(128 + len).map_err(|_| {
            self.udp.mib.sndbuf_errors += 1;
            Errno::ENOBUFS
        })?;
        if skb.reserve(128).is_err() {
            return Err(Errno::ENOBUFS);
        }
        let Ok(buf) = skb.put(len) else {
            return Err(Errno::ENOBUFS);
        };
        buf[0..2].copy_from_slice(&lport.to_be_bytes());
        buf[2..4].copy_from_slice(&dport.to_be_bytes());
        buf[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        buf[6..8].fill(0);
        // The one copy of the payload, checksummed as it is copied.
        let mut c = Checksum::pseudo_header_v4(saddr, daddr, 17, len as u16);
        c.add_bytes(&buf[..8]);
        c.add_copy(&mut buf[8..], data);
        let sum = match c.finish() {
            0 => 0xffff,
            v => v,
        };
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
        skb.reset_transport_header();
        self.tracer.skb(self.now, "udp_sendmsg", &skb);
        let broadcast_oif = if is_bcast && opts.oif.is_none() {
            self.ip
                .addrs
                .iter()
                .find(|a| a.broadcast == daddr || (daddr.is_broadcast() && a.addr == saddr))
                .map(|a| a.dev)
        } else {
            None
        };
        if broadcast_oif.is_some() {
            opts.oif = broadcast_oif;
        }
        self.ip_queue_xmit(skb, daddr, 17, opts, None)?;
        self.udp.mib.out_datagrams += 1;
        Ok(data.len())
    }

    /// `recvfrom()`: one datagram copied into `buf` (truncated if longer),
    /// its length and sender; `EAGAIN` when none is queued.
    pub fn udp_recvfrom(
        &mut self,
        id: SockId,
        buf: &mut [u8],
    ) -> Result<(usize, (Ipv4Addr, u16)), Errno> {
        let s = self.udp.get(id)?;
        if let Some(e) = s.err.take() {
            return Err(e);
        }
        let skb = s.rcvq.pop_front().ok_or(Errno::EAGAIN)?;
        s.rcv_bytes = s.rcv_bytes.saturating_sub(truesize(&skb));
        let payload = skb.data().get(8..).unwrap_or(&[]);
        let n = payload.len().min(buf.len());
        buf[..n].copy_from_slice(&payload[..n]);
        let h = skb.data();
        let sport = u16::from_be_bytes([h[0], h[1]]);
        let src = netpath_wire::ipv4::Ipv4Packet::new_checked(skb.network_header_bytes())
            .map(|p| p.src_addr())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.tracer.skb(self.now, "udp_recvmsg", &skb);
        self.consume_skb(skb);
        Ok((n, (src, sport)))
    }

    /// Datagrams waiting, and drops of this socket (`ss -u -m` style).
    pub fn udp_queued(&self, id: SockId) -> Option<(usize, u64)> {
        let s = self.udp.socks.get(id.0 as usize)?.as_ref()?;
        Some((s.rcvq.len(), s.drops))
    }

    /// `udp_rcv()`: data at the UDP header, network header at IPv4.
    pub(crate) fn udp_rcv(&mut self, mut skb: Skb) {
        self.tracer.skb(self.now, "udp_rcv", &skb);
        let Ok(ip) = netpath_wire::ipv4::Ipv4Packet::new_checked(skb.network_header_bytes()) else {
            self.kfree_skb(skb, DropReason::IpInhdr);
            return;
        };
        let (saddr, daddr) = (ip.src_addr(), ip.dst_addr());
        let (sport, dport, len, csum_ok) = match UdpPacket::new_checked(skb.data()) {
            Ok(u) => {
                let ok = u.checksum() == 0 || u.verify_checksum(saddr, daddr);
                (u.src_port(), u.dst_port(), usize::from(u.len()), ok)
            }
            Err(_) => {
                self.udp.mib.in_errors += 1;
                self.kfree_skb(skb, DropReason::PktTooSmall);
                return;
            }
        };
        if !csum_ok {
            self.udp.mib.in_csum_errors += 1;
            self.udp.mib.in_errors += 1;
            self.kfree_skb(skb, DropReason::UdpCsum);
            return;
        }
        let _ = skb.trim(len);
        let bcast = matches!(
            skb.meta.pkt_type,
            PacketType::Broadcast | PacketType::Multicast
        ) || daddr.is_broadcast()
            || self.ip.addrs.iter().any(|a| a.broadcast == daddr);
        let Some(i) = self.udp.lookup(saddr, sport, daddr, dport) else {
            self.udp.mib.no_ports += 1;
            if !bcast {
                self.icmp_send(&skb, 3, 3, 0);
            }
            self.kfree_skb(skb, DropReason::NoSocket);
            return;
        };
        let Some(Some(s)) = self.udp.socks.get_mut(i) else {
            return;
        };
        let cost = truesize(&skb);
        if s.rcv_bytes + cost > s.rcvbuf {
            s.drops += 1;
            self.udp.mib.rcvbuf_errors += 1;
            self.udp.mib.in_errors += 1;
            self.kfree_skb(skb, DropReason::SocketRcvbuff);
            return;
        }
        s.rcv_bytes += cost;
        s.rcvq.push_back(skb);
        self.udp.mib.in_datagrams += 1;
    }

    /// `udp_err()`: an ICMP error about a datagram we sent (quoted header
    /// `src:sport → dst:dport`) becomes the connected socket's pending error.
    pub(crate) fn udp_err(&mut self, quoted: &[u8], icmp_type: u8, code: u8) {
        let Some(b) = quoted.get(..28) else { return };
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let Some(ports) = quoted.get(ihl..ihl + 4) else {
            return;
        };
        let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
        let dst = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
        let (sport, dport) = (
            u16::from_be_bytes([ports[0], ports[1]]),
            u16::from_be_bytes([ports[2], ports[3]]),
        );
        let err = match (icmp_type, code) {
            (3, 3) => Errno::ECONNREFUSED,
            (3, 4) => return, // PMTU: handled by the route; not an error for UDP
            (3, 9 | 10 | 13) => Errno::EACCES,
            (3, 0) => Errno::ENETUNREACH,
            (3, _) | (11, _) => Errno::EHOSTUNREACH,
            _ => return,
        };
        // Only connected sockets hear about it (no IP_RECVERR yet).
        if let Some(i) = self.udp.lookup(dst, dport, src, sport) {
            if let Some(Some(s)) = self.udp.socks.get_mut(i) {
                if s.remote == Some((dst, dport)) {
                    s.err = Some(err);
                }
            }
        }
    }
}
