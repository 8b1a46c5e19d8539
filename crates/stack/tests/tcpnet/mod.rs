//! Two hosts and a cable for the TCP tests: A = 192.0.2.1, B = 192.0.2.2,
//! a capture of every frame at A's end of the link, and the TCP segments
//! decoded from it (time, direction, header fields, options).
#![allow(dead_code)]

use core::net::Ipv4Addr;

use netpath::capture::Capture;
use netpath::sim::blocking::{stack, with_stack, Blocking};
use netpath::sim::{CaptureId, LinkConfig, PortId};
use netpath::sock::SockId;
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::{EtherType, EthernetFrame};
use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::{TcpFlags, TcpOptions, TcpPacket};

#[path = "../topo/mod.rs"]
pub mod topo;
pub use topo::{ip, Host, Topo};

pub const A: &str = "192.0.2.1";
pub const B: &str = "192.0.2.2";

/// One TCP segment seen on the wire.
#[derive(Debug, Clone)]
pub struct Wire {
    pub t: Instant,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub win: u16,
    pub opts: TcpOptions,
    pub raw_opts: Vec<u8>,
    pub len: usize,
    pub ip_id: u16,
    pub df: bool,
    pub ttl: u8,
    /// The IP header's ECN field.
    pub ecn: u8,
}

impl Wire {
    pub fn by_a(&self) -> bool {
        self.src == ip(A)
    }
    pub fn syn(&self) -> bool {
        self.flags.syn()
    }
    pub fn fin(&self) -> bool {
        self.flags.fin()
    }
    pub fn rst(&self) -> bool {
        self.flags.rst()
    }
    pub fn is_ack(&self) -> bool {
        self.flags.ack()
    }
}

pub struct Net {
    pub t: Topo,
    pub a: Host,
    pub b: Host,
    pub ba: Blocking,
    pub bb: Blocking,
    cap: CaptureId,
}

impl Net {
    pub fn new(seed: u64, cfg: LinkConfig) -> Net {
        let mut t = Topo::new(seed);
        let a = t.host(&["192.0.2.1/24"]);
        let b = t.host(&["192.0.2.2/24"]);
        t.link(&a, 0, &b, 0, cfg);
        let link = *t.links.last().unwrap();
        let cap = t
            .sim
            .capture(
                link,
                (a.node, PortId(0)),
                Capture::pcap(Vec::new()).unwrap(),
            )
            .unwrap();
        let (ba, bb) = (Blocking::new(a.node), Blocking::new(b.node));
        Net {
            t,
            a,
            b,
            ba,
            bb,
            cap,
        }
    }

    pub fn sa(&self) -> &Stack {
        stack(&self.t.sim, self.a.node)
    }
    pub fn sb(&self) -> &Stack {
        stack(&self.t.sim, self.b.node)
    }
    pub fn with_a<R>(&mut self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        with_stack(&mut self.t.sim, self.a.node, f)
    }
    pub fn with_b<R>(&mut self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        with_stack(&mut self.t.sim, self.b.node, f)
    }
    pub fn now(&self) -> Instant {
        self.t.sim.now()
    }
    pub fn run(&mut self, d: Duration) {
        self.t.sim.run_for(d);
    }
    pub fn run_ms(&mut self, ms: u64) {
        self.run(Duration::from_millis(ms));
    }

    /// Listener on B:port, client on A connected to it, the accepted
    /// socket: (client, server, listener).
    pub fn connected(&mut self, port: u16) -> (SockId, SockId, SockId) {
        let l = self
            .bb
            .listen(&mut self.t.sim, ip("0.0.0.0"), port, 128)
            .unwrap();
        let c = self.ba.socket(&mut self.t.sim);
        self.ba.connect(&mut self.t.sim, c, ip(B), port).unwrap();
        let (s, _) = self.bb.accept(&mut self.t.sim, l).unwrap();
        (c, s, l)
    }

    /// Every TCP segment captured so far at A's end (both directions:
    /// frames A sent, stamped when sent, and frames delivered to A).
    pub fn segments(&self) -> Vec<Wire> {
        let cap = self.t.sim.capture_ref(self.cap).unwrap();
        let bytes = cap.writer::<Vec<u8>>().unwrap().get_ref().clone();
        let mut out = Vec::new();
        for rec in netpath_wire::pcap::PcapReader::new(&bytes).unwrap() {
            let rec = rec.unwrap();
            let t =
                Instant::from_nanos(u64::from(rec.ts_sec) * 1_000_000_000 + u64::from(rec.ts_frac));
            let Ok(eth) = EthernetFrame::new_checked(rec.data) else {
                continue;
            };
            if eth.ethertype() != EtherType::IPV4 {
                continue;
            }
            let Ok(ipp) = Ipv4Packet::new_checked(eth.payload()) else {
                continue;
            };
            if ipp.protocol().0 != 6 {
                continue;
            }
            let Ok(tcp) = TcpPacket::new_checked(ipp.payload()) else {
                continue;
            };
            out.push(Wire {
                t,
                src: ipp.src_addr(),
                dst: ipp.dst_addr(),
                sport: tcp.src_port(),
                dport: tcp.dst_port(),
                seq: tcp.seq_number().0,
                ack: tcp.ack_number().0,
                flags: tcp.flags(),
                win: tcp.window_len(),
                opts: TcpOptions::parse(tcp.options()),
                raw_opts: tcp.options().to_vec(),
                len: tcp.payload().len(),
                ip_id: ipp.ident(),
                df: ipp.dont_frag(),
                ttl: ipp.ttl(),
                ecn: ipp.ecn(),
            });
        }
        out
    }
}

impl Net {
    /// Sends `data` from A's `c` to B's `s` while B reads, as two
    /// applications would; returns what B read. Panics past `limit` of
    /// virtual time or when the world goes idle before the end.
    pub fn transfer(&mut self, c: SockId, s: SockId, data: &[u8], limit: Duration) -> Vec<u8> {
        let deadline = self.now() + limit;
        let mut got = Vec::with_capacity(data.len());
        let mut off = 0;
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < data.len() {
            let (pa, pb) = (self.sa().tcp_poll(c), self.sb().tcp_poll(s));
            let mut acted = false;
            if off < data.len() && pa.writable {
                let end = (off + (1 << 20)).min(data.len());
                if let Ok(k) =
                    self.with_a(|st, now| st.tcp_send(now, c, &data[off..end], Default::default()))
                {
                    off += k;
                }
                acted = true;
            }
            if pb.readable {
                loop {
                    match self.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
                        Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
                        _ => break,
                    }
                }
                if pb.hup || pb.err {
                    break;
                }
                acted = true;
            }
            if !acted && self.t.sim.step().is_none() {
                panic!("idle after {} of {} bytes", got.len(), data.len());
            }
            assert!(
                self.now() <= deadline,
                "{} of {} bytes by the deadline",
                got.len(),
                data.len()
            );
        }
        got
    }
}

/// MACs the topology gives A's and B's NICs.
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 1, 0];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 2, 0];

/// A full Ethernet frame (with FCS) carrying a TCP segment, as a third
/// party on A's cable would put it on the wire.
#[allow(clippy::too_many_arguments)]
pub fn tcp_frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    win: u16,
    payload: &[u8],
) -> Vec<u8> {
    let tcp_len = 20 + payload.len();
    // Padded to Ethernet's 60-byte minimum, then the FCS.
    let mut f = vec![0u8; (14 + 20 + tcp_len).max(60) + 4];
    f[0..6].copy_from_slice(&MAC_B);
    f[6..12].copy_from_slice(&MAC_A);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let c = netpath_wire::checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..34 + tcp_len];
    t[0..2].copy_from_slice(&src.1.to_be_bytes());
    t[2..4].copy_from_slice(&dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.unwrap_or(0).to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags | if ack.is_some() { 0x10 } else { 0 };
    t[14..16].copy_from_slice(&win.to_be_bytes());
    t[20..].copy_from_slice(payload);
    let mut cs =
        netpath_wire::checksum::Checksum::pseudo_header_v4(src.0, dst.0, 6, tcp_len as u16);
    cs.add_bytes(t);
    t[16..18].copy_from_slice(&cs.finish().to_be_bytes());
    let body = f.len() - 4;
    netpath_wire::ethernet::fcs::append(&mut f, body).unwrap();
    f
}

impl Net {
    /// Cuts the cable: from now on every frame is lost.
    pub fn cut_cable(&mut self) {
        let link = self.t.links[0];
        let dead = LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        };
        self.t.sim.set_link_config(link, dead).unwrap();
    }

    /// Puts `frame` on the wire from A's end (a third party on A's cable).
    pub fn inject(&mut self, frame: &[u8]) {
        let skb = self.t.sim.pool().alloc_from(64, frame).unwrap();
        self.t.sim.inject(self.a.node, netpath::sim::PortId(0), skb);
    }
}
