//! IPv4 transmit: seed egress steps 4–5 (`net/ipv4/ip_output.c`).
//!
//! `ip_queue_xmit` (connected transports, the header pushed in front of the
//! transport header) and `ip_send` (datagrams: raw and ICMP now, UDP later)
//! look up the route (or fail with Linux's errno), build the IPv4 header from
//! the socket's state and the route (TTL, TOS, DF per PMTU discovery, IP ID
//! as Linux generates it), push it and set the network header, then
//! `ip_local_out` runs netfilter LOCAL_OUT and `dst_output` the route's
//! output action. `ip_output` sets the device and protocol, runs
//! POST_ROUTING; `ip_finish_output` fragments to the path MTU (DF
//! respected: ICMP "fragmentation needed"); `ip_finish_output2` hands the
//! packet to the neighbour layer, which pushes the link-layer header and
//! calls `dev_queue_xmit`.

use core::net::Ipv4Addr;

use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};

use super::route::{Dst, RouteError, RouteType};
use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::netfilter::NfHook;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// Headroom reserved for link-layer headers in front of the IPv4 header.
pub(crate) const LL_RESERVED: usize = 64;

/// `IP_MTU_DISCOVER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PmtuDisc {
    /// IP_PMTUDISC_DONT: never DF.
    Dont,
    /// IP_PMTUDISC_WANT (default): DF when the datagram fits the path MTU,
    /// else fragment.
    #[default]
    Want,
    /// IP_PMTUDISC_DO: always DF; larger than the path MTU is EMSGSIZE.
    Do,
    /// IP_PMTUDISC_PROBE: DF, ignoring the path MTU.
    Probe,
}

/// What a sender sets (`struct ipcm_cookie` + socket options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpSendOpts {
    /// Source address (`bind`); `None`: chosen by routing.
    pub saddr: Option<Ipv4Addr>,
    /// `IP_TTL`; `None`: `ip_default_ttl`.
    pub ttl: Option<u8>,
    /// `IP_TOS`.
    pub tos: u8,
    pub pmtudisc: PmtuDisc,
    /// `SO_BINDTODEVICE` / `IP_PKTINFO` ifindex.
    pub oif: Option<IfIndex>,
    /// `SO_MARK`.
    pub mark: u32,
    /// `SO_PRIORITY`.
    pub priority: u32,
}

/// Why a send failed, with the errno the application sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    Route(RouteError),
    /// EMSGSIZE: DF and larger than the path MTU.
    MsgSize {
        mtu: u32,
    },
    /// ENOBUFS: no buffer.
    NoBufs,
    /// EPERM: netfilter dropped it at LOCAL_OUT.
    NotPermitted,
    /// EINVAL.
    Invalid,
}

impl SendError {
    pub fn errno(self) -> &'static str {
        match self {
            SendError::Route(e) => e.errno(),
            SendError::MsgSize { .. } => "EMSGSIZE",
            SendError::NoBufs => "ENOBUFS",
            SendError::NotPermitted => "EPERM",
            SendError::Invalid => "EINVAL",
        }
    }
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::Route(e) => write!(f, "{e}"),
            SendError::MsgSize { mtu } => write!(f, "message too long, mtu={mtu} (EMSGSIZE)"),
            SendError::NoBufs => write!(f, "no buffer space available (ENOBUFS)"),
            SendError::NotPermitted => write!(f, "operation not permitted (EPERM)"),
            SendError::Invalid => write!(f, "invalid argument (EINVAL)"),
        }
    }
}

impl std::error::Error for SendError {}

/// `rt_tos2priority()`: TOS bits to skb priority (pfifo_fast bands).
fn rt_tos2priority(tos: u8) -> u32 {
    const MAP: [u32; 16] = [0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4];
    MAP[usize::from((tos >> 1) & 0x0f)]
}

impl Stack {
    /// `ip_select_ident()`: the IP ID of a datagram not on a connected
    /// socket. DF packets get 0; others a per-destination counter (Linux's
    /// `ip_idents`, hashed by destination, source and protocol).
    fn ip_select_ident(&mut self, daddr: Ipv4Addr, saddr: Ipv4Addr, proto: u8, df: bool) -> u16 {
        if df {
            return 0;
        }
        const BUCKETS: usize = 2048;
        if self.ip.idents.is_empty() {
            self.ip.idents = vec![0; BUCKETS];
        }
        let mut h = u64::from(u32::from(daddr)) << 32 | u64::from(u32::from(saddr));
        h ^= u64::from(proto) << 17;
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = (h >> 53) as usize % BUCKETS;
        let id = self.ip.idents[i];
        self.ip.idents[i] = id.wrapping_add(1);
        id
    }

    /// Sends a datagram of `protocol` carrying `payload` to `daddr` (the
    /// path of a raw socket without IP_HDRINCL, and of ICMP).
    pub fn ip_send(
        &mut self,
        now: Instant,
        daddr: Ipv4Addr,
        protocol: u8,
        payload: &[u8],
        opts: IpSendOpts,
    ) -> Result<(), SendError> {
        self.set_now(now);
        let mut skb = self
            .pool
            .alloc(LL_RESERVED + 60 + payload.len())
            .map_err(|_| SendError::NoBufs)?;
        skb.reserve(LL_RESERVED + 60)
            .map_err(|_| SendError::NoBufs)?;
        skb.put_slice(payload).map_err(|_| SendError::NoBufs)?;
        skb.reset_transport_header();
        self.ip_build_and_send(skb, daddr, protocol, opts, None)
    }

    /// `ip_queue_xmit()`: `skb` holds the transport header and payload
    /// (data at the transport header); `ident` is the connected socket's
    /// `inet_id` counter.
    pub fn ip_queue_xmit(
        &mut self,
        skb: Skb,
        daddr: Ipv4Addr,
        protocol: u8,
        opts: IpSendOpts,
        ident: Option<u16>,
    ) -> Result<(), SendError> {
        self.ip_build_and_send(skb, daddr, protocol, opts, ident)
    }

    /// `ip_queue_xmit()` with the socket's cached route (`sk_dst_cache`),
    /// looked up again only when it is stale.
    pub(crate) fn ip_queue_xmit_cached(
        &mut self,
        skb: Skb,
        daddr: Ipv4Addr,
        opts: IpSendOpts,
        ident: Option<u16>,
        cache: &mut Option<(super::route::Dst, u64)>,
    ) -> Result<(), SendError> {
        let gen = self.ip.route_gen;
        let dst = match *cache {
            Some((d, g)) if g == gen && !self.ip.routes.has_pmtu_exceptions() => Some(d),
            _ => {
                let d = self
                    .ip_route_output(daddr, opts.saddr, opts.oif, opts.mark)
                    .ok();
                *cache = d.map(|d| (d, gen));
                d
            }
        };
        self.ip_build_and_send_dst(skb, daddr, 6, opts, ident, dst)
    }

    fn ip_build_and_send(
        &mut self,
        skb: Skb,
        daddr: Ipv4Addr,
        protocol: u8,
        opts: IpSendOpts,
        ident: Option<u16>,
    ) -> Result<(), SendError> {
        self.ip_build_and_send_dst(skb, daddr, protocol, opts, ident, None)
    }

    fn ip_build_and_send_dst(
        &mut self,
        mut skb: Skb,
        daddr: Ipv4Addr,
        protocol: u8,
        opts: IpSendOpts,
        ident: Option<u16>,
        cached: Option<super::route::Dst>,
    ) -> Result<(), SendError> {
        self.tracer.skb(self.now, "ip_queue_xmit", &skb);
        let routed = match cached {
            Some(d) => Ok(d),
            None => self.ip_route_output(daddr, opts.saddr, opts.oif, opts.mark),
        };
        let dst = match routed {
            Ok(d) => d,
            Err(e) => {
                // As udp_sendmsg / ip_queue_xmit: only "no route" counts.
                if e == RouteError::NetUnreachable {
                    self.ip.mib.ip.out_no_routes += 1;
                }
                self.kfree_skb(skb, DropReason::IpOutnoroutes);
                return Err(SendError::Route(e));
            }
        };
        let saddr = opts
            .saddr
            .filter(|s| !s.is_unspecified())
            .or(dst.prefsrc)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let total = skb.len() + 20;
        // A GSO skb goes out as its segments: those are what must fit.
        let seg_total = if skb.is_gso() {
            let thl = skb.data().get(12).map_or(20, |b| usize::from(b >> 4) * 4);
            20 + thl + usize::from(skb.meta.gso_size)
        } else {
            total
        };
        let df = match opts.pmtudisc {
            PmtuDisc::Dont => false,
            PmtuDisc::Want => !dst.mtu_locked && seg_total <= dst.mtu as usize,
            PmtuDisc::Do | PmtuDisc::Probe => true,
        };
        if opts.pmtudisc == PmtuDisc::Do && seg_total > dst.mtu as usize {
            self.kfree_skb(skb, DropReason::PktTooBig);
            return Err(SendError::MsgSize { mtu: dst.mtu });
        }
        if total > 65535 {
            self.kfree_skb(skb, DropReason::PktTooBig);
            return Err(SendError::MsgSize { mtu: dst.mtu });
        }
        let id = match ident {
            Some(i) => i,
            None => self.ip_select_ident(daddr, saddr, protocol, df),
        };
        let repr = Ipv4Repr {
            src_addr: saddr,
            dst_addr: daddr,
            protocol: Protocol(protocol),
            ttl: opts.ttl.unwrap_or(self.ip.sysctl.ip_default_ttl),
            tos: opts.tos,
            ident: id,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            payload_len: skb.len(),
        };
        if skb.cow_head(20 + 16).is_err() || skb.push(20).is_err() {
            self.kfree_skb(skb, DropReason::Nomem);
            return Err(SendError::NoBufs);
        }
        skb.reset_network_header();
        if repr
            .emit(&mut Ipv4Packet::new_unchecked(skb.data_mut()))
            .is_err()
        {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return Err(SendError::Invalid);
        }
        skb.meta.dst = Some(dst);
        skb.meta.protocol = 0x0800;
        skb.meta.mark = opts.mark;
        skb.meta.priority = if opts.priority != 0 {
            opts.priority
        } else {
            rt_tos2priority(opts.tos)
        };
        self.ip.mib.ip.out_requests += 1;
        if self.ip_local_out(skb) {
            Ok(())
        } else {
            Err(SendError::NotPermitted)
        }
    }

    /// `ip_local_out()`: netfilter LOCAL_OUT, then `dst_output`. False when
    /// netfilter dropped the packet.
    pub(crate) fn ip_local_out(&mut self, skb: Skb) -> bool {
        self.tracer.skb(self.now, "ip_local_out", &skb);
        let Some(skb) = self.nf_hook(NfHook::LocalOut, skb, None) else {
            return false;
        };
        self.dst_output(skb);
        true
    }

    /// `dst_output()`: the route's output action: send (`ip_output`), wrap
    /// in a tunnel (the route's device is an IPIP tunnel), or drop.
    pub(crate) fn dst_output(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "dst_output", &skb);
        let Some(dst) = skb.meta.dst else {
            self.kfree_skb(skb, DropReason::IpOutnoroutes);
            return;
        };
        match dst.rtype {
            RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit => {
                self.ip.mib.ip.out_discards += 1;
                self.kfree_skb(skb, DropReason::IpOutnoroutes);
            }
            _ if self.is_ipip_dev(dst.dev) => self.ipip_tunnel_xmit(skb, dst.dev),
            _ => self.ip_output(skb),
        }
    }

    /// `ip_output()`: device and protocol set, netfilter POST_ROUTING, then
    /// `ip_finish_output`.
    pub(crate) fn ip_output(&mut self, mut skb: Skb) {
        self.tracer.skb(self.now, "ip_output", &skb);
        let Some(dst) = skb.meta.dst else {
            self.kfree_skb(skb, DropReason::IpOutnoroutes);
            return;
        };
        skb.meta.egress_dev = Some(dst.dev);
        skb.meta.protocol = 0x0800;
        let Some(skb) = self.nf_hook(NfHook::PostRouting, skb, Some(dst.dev)) else {
            return;
        };
        self.ip_finish_output(skb, dst);
    }

    /// `ip_finish_output()`: fragment to the path MTU if needed.
    fn ip_finish_output(&mut self, skb: Skb, dst: Dst) {
        let mtu = dst.mtu.max(68);
        if skb.is_gso() {
            self.ip_finish_output_gso(skb, dst, mtu);
            return;
        }
        if skb.len() <= mtu as usize {
            self.ip_finish_output2(skb, dst);
            return;
        }
        let df = Ipv4Packet::new_checked(skb.data()).is_ok_and(|p| p.dont_frag());
        if df {
            // ip_fragment(): DF and too big.
            self.ip.mib.ip.frag_fails += 1;
            self.icmp_send(&skb, 3, 4, mtu);
            self.kfree_skb(skb, DropReason::PktTooBig);
            return;
        }
        let mut frags = Vec::new();
        if self.ip_do_fragment(skb, mtu, &mut frags).is_ok() {
            for f in frags {
                self.ip_finish_output2(f, dst);
            }
        }
    }

    /// `ip_finish_output_gso()`: a GSO skb whose segments fit the MTU goes
    /// on whole; otherwise (the path MTU dropped after TCP built it) it is
    /// segmented here and each segment takes the fragmentation path.
    fn ip_finish_output_gso(&mut self, skb: Skb, dst: Dst, mtu: u32) {
        if skb.gso_network_seglen().is_some_and(|l| l <= mtu as usize) {
            self.ip_finish_output2(skb, dst);
            return;
        }
        let mut segs = Vec::new();
        if crate::skb::skb_gso_segment(&skb, &self.pool, &mut segs).is_err() {
            self.kfree_skb(skb, DropReason::SkbGsoSeg);
            return;
        }
        drop(skb);
        for s in segs {
            self.ip_finish_output(s, dst);
        }
    }

    /// `ip_finish_output2()`: the neighbour layer pushes the link-layer
    /// header and calls `dev_queue_xmit`.
    fn ip_finish_output2(&mut self, mut skb: Skb, dst: Dst) {
        self.tracer.skb(self.now, "ip_finish_output2", &skb);
        let daddr = match Ipv4Packet::new_checked(skb.data()) {
            Ok(p) => p.dst_addr(),
            Err(_) => {
                self.kfree_skb(skb, DropReason::IpInhdr);
                return;
            }
        };
        skb.meta.egress_dev = Some(dst.dev);
        skb.reset_network_header();
        self.ip.mib.ip.out_transmits += 1;
        self.neigh_output(skb, dst.dev, dst.nexthop(daddr));
    }
}
