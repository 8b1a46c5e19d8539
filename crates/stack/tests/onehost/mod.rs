//! One stack (192.0.2.2/24 on `eth0`) and a peer that is only a static
//! neighbour (192.0.2.1): tests put hand-built TCP segments (any options,
//! urgent pointer, payload) on its NIC and read back what it sends, as the
//! packetdrill runner does.
#![allow(dead_code)]

use core::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::dev::IfIndex;
use netpath::sock::SockId;
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::EthernetAddress;
use netpath_wire::tcp::{TcpFlags, TcpPacket};

pub const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

/// A segment from the peer.
#[derive(Debug, Clone, Default)]
pub struct Seg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flag bits (`0x10` ACK, `0x20` URG...).
    pub flags: u8,
    pub win: u16,
    pub urg_ptr: u16,
    /// Option bytes (padded to a multiple of 4 here).
    pub opts: Vec<u8>,
    pub payload: Vec<u8>,
}

/// A segment the stack sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub win: u16,
    pub len: usize,
    /// The whole TCP segment, header first.
    pub bytes: Vec<u8>,
}

pub struct Host {
    pub stack: Stack,
    pub nic: IfIndex,
    pub now: Instant,
}

impl Host {
    pub fn new() -> Host {
        let mut stack = Stack::new();
        let nic = stack
            .add_nic(
                "eth0",
                MAC,
                NicConfig {
                    gro: false,
                    ..NicConfig::default()
                },
            )
            .unwrap();
        stack.set_up(nic, true).unwrap();
        stack.ip_addr_add(nic, LOCAL, 24).unwrap();
        stack.neigh_add_static(nic, PEER, PEER_MAC).unwrap();
        let now = Instant::from_nanos(1_000_000_000);
        stack.poll(now);
        let mut h = Host { stack, nic, now };
        h.sent();
        h
    }

    /// A listener on `port`.
    pub fn listen(&mut self, port: u16) -> SockId {
        let l = self.stack.tcp_socket();
        self.stack.tcp_bind(l, Ipv4Addr::UNSPECIFIED, port).unwrap();
        self.stack.tcp_listen(l, 16).unwrap();
        l
    }

    /// Puts `s` (from the peer to this host) on the NIC and runs the stack.
    pub fn inject(&mut self, s: &Seg) {
        let mut opts = s.opts.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let tcp_len = 20 + opts.len() + s.payload.len();
        let mut t = vec![0u8; tcp_len];
        t[0..2].copy_from_slice(&s.sport.to_be_bytes());
        t[2..4].copy_from_slice(&s.dport.to_be_bytes());
        t[4..8].copy_from_slice(&s.seq.to_be_bytes());
        t[8..12].copy_from_slice(&s.ack.to_be_bytes());
        t[12] = (((20 + opts.len()) / 4) << 4) as u8;
        t[13] = s.flags;
        t[14..16].copy_from_slice(&s.win.to_be_bytes());
        t[18..20].copy_from_slice(&s.urg_ptr.to_be_bytes());
        t[20..20 + opts.len()].copy_from_slice(&opts);
        t[20 + opts.len()..].copy_from_slice(&s.payload);
        let mut c =
            netpath_wire::checksum::Checksum::pseudo_header_v4(PEER, LOCAL, 6, tcp_len as u16);
        c.add_bytes(&t);
        t[16..18].copy_from_slice(&c.finish().to_be_bytes());
        let mut f = Vec::with_capacity(14 + 20 + tcp_len + 4);
        f.extend_from_slice(&MAC.0);
        f.extend_from_slice(&PEER_MAC.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&PEER.octets());
        ip[16..20].copy_from_slice(&LOCAL.octets());
        let ipc = netpath_wire::checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&ipc.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&t);
        if f.len() < 60 {
            f.resize(60, 0);
        }
        let crc = netpath_wire::ethernet::fcs::fcs(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        self.stack
            .nic_receive_bytes(self.now, self.nic, &f)
            .unwrap();
        self.stack.poll(self.now);
    }

    /// Moves the clock on by `ms`, running the stack's timers.
    pub fn run_ms(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            let next = self.stack.poll(self.now);
            self.now = match next {
                Some(t) if t > self.now && t < end => t,
                _ => end,
            };
        }
        self.stack.poll(self.now);
    }

    /// The TCP segments the NIC sent since the last call.
    pub fn sent(&mut self) -> Vec<Sent> {
        self.stack.poll(self.now);
        let mut skbs = Vec::new();
        self.stack.nic_take_sent(self.nic, &mut skbs);
        skbs.iter()
            .filter_map(|skb| {
                let d = skb.data();
                if d.len() < 34 || d[12..14] != [8, 0] || d[14 + 9] != 6 {
                    return None;
                }
                let ihl = usize::from(d[14] & 0xf) * 4;
                let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
                let tcp = &d[14 + ihl..14 + total];
                let p = TcpPacket::new_checked(tcp).ok()?;
                Some(Sent {
                    seq: p.seq_number().0,
                    ack: p.ack_number().0,
                    flags: p.flags(),
                    win: p.window_len(),
                    len: p.payload().len(),
                    bytes: tcp.to_vec(),
                })
            })
            .collect()
    }

    /// The handshake from port `sport` to the listener on `dport`, up to
    /// the SYN-ACK: the stack's ISN. The peer's ISN is 0.
    pub fn syn(&mut self, sport: u16, dport: u16) -> u32 {
        self.inject(&Seg {
            sport,
            dport,
            seq: 0,
            flags: 0x02,
            win: 65535,
            // mss 1460
            opts: vec![2, 4, 5, 0xb4],
            ..Seg::default()
        });
        let out = self.sent();
        let synack = out
            .iter()
            .find(|s| s.flags.syn() && s.flags.ack())
            .expect("a SYN-ACK");
        synack.seq
    }

    /// A connection from the peer accepted on `dport`: (the accepted socket,
    /// the stack's ISN). The peer's next sequence number is 1.
    pub fn accepted(&mut self, sport: u16, dport: u16) -> (SockId, u32) {
        let l = self.listen(dport);
        let iss = self.syn(sport, dport);
        self.inject(&Seg {
            sport,
            dport,
            seq: 1,
            ack: iss.wrapping_add(1),
            flags: 0x10,
            win: 65535,
            ..Seg::default()
        });
        let (s, _) = self.stack.tcp_accept(self.now, l).expect("accepted");
        self.sent();
        (s, iss)
    }
}
