//! Fuzz target: arbitrary TCP segments into a netpath stack that holds a
//! listening socket (port 80) and an established connection (accepted from
//! a fake peer after a real three-way handshake, driven by injecting
//! frames), interleaved with socket calls and time advances. Nothing may
//! panic.
//!
//! The stack is 192.0.2.2 on eth0; the fake peer is 192.0.2.1 (static
//! neighbour). The peer follows what the stack sends (its next sequence
//! number, the highest ack), so fuzzed seq/ack values are offsets from
//! the connection's real ones and mostly land in or near the window.
//!
//! Input: a sequence of operations, each starting with an opcode byte:
//! - segment to the connection: flags, seq offset (i16), ack offset (i16),
//!   window (u16), options length + bytes, payload length + bytes, and a
//!   byte choosing a bad checksum / another port;
//! - segment to the listener from a fuzzed source port;
//! - a socket call (send, recv, peek, shutdown, close, accept, setsockopt,
//!   connect, poll/info);
//! - time advances (small, or timer-sized jumps).
#![no_main]

use core::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netpath::dev::nic::NicConfig;
use netpath::dev::IfIndex;
use netpath::skb::Skb;
use netpath::sock::SockId;
use netpath::stack::Stack;
use netpath::tcp::{SendFlags, Shutdown, TcpOpt};
use netpath::time::{Duration, Instant};
use netpath_wire::checksum::{checksum, Checksum};
use netpath_wire::ethernet::{fcs, EthernetAddress};

const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const US_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const PEER_PORT: u16 = 40000;

/// A TCP segment from the peer.
struct Seg<'a> {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &'a [u8],
    payload: &'a [u8],
    bad_csum: bool,
}

/// Ethernet + IPv4 + TCP, with valid checksums (unless asked) and FCS.
fn frame(s: &Seg) -> Vec<u8> {
    let mut opts = s.options[..s.options.len().min(40)].to_vec();
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let tcp_len = 20 + opts.len() + s.payload.len();
    let mut tcp = Vec::with_capacity(tcp_len);
    tcp.extend_from_slice(&s.sport.to_be_bytes());
    tcp.extend_from_slice(&s.dport.to_be_bytes());
    tcp.extend_from_slice(&s.seq.to_be_bytes());
    tcp.extend_from_slice(&s.ack.to_be_bytes());
    tcp.push((((20 + opts.len()) / 4) as u8) << 4);
    tcp.push(s.flags);
    tcp.extend_from_slice(&s.window.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(&opts);
    tcp.extend_from_slice(s.payload);
    let mut c = Checksum::pseudo_header_v4(PEER, US, 6, tcp_len as u16);
    c.add_bytes(&tcp);
    let mut csum = c.finish();
    if s.bad_csum {
        csum ^= 0x5a5a;
    }
    tcp[16..18].copy_from_slice(&csum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 20 + tcp_len + 4);
    f.extend_from_slice(&US_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&PEER.octets());
    ip[16..20].copy_from_slice(&US.octets());
    let ic = checksum(&ip);
    ip[10..12].copy_from_slice(&ic.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    // Pad to Ethernet's 60-byte minimum (the NIC drops runts).
    f.resize(f.len().max(60), 0);
    let n = f.len();
    f.extend_from_slice(&[0; 4]);
    let _ = fcs::append(&mut f, n);
    f
}

/// What the peer knows of one connection from the frames it saw.
#[derive(Default, Clone, Copy)]
struct Conn {
    /// Our (the stack's) local port for this connection.
    port: u16,
    /// The peer's port.
    peer_port: u16,
    /// Next sequence number the stack will send (highest seen).
    their_nxt: u32,
    /// The peer's next sequence number.
    our_nxt: u32,
    seen: bool,
}

/// A (sport, dport, seq, ack, flags, payload len) view of an IPv4/TCP frame.
fn parse(skb: &Skb) -> Option<(u16, u16, u32, u32, u8, usize)> {
    let d = skb.data();
    if d.len() < 34 || d[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &d[14..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[9] != 6 || total > ip.len() || total < ihl + 20 {
        return None;
    }
    let t = &ip[ihl..total];
    let doff = usize::from(t[12] >> 4) * 4;
    Some((
        u16::from_be_bytes([t[0], t[1]]),
        u16::from_be_bytes([t[2], t[3]]),
        u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        t[13],
        t.len().saturating_sub(doff),
    ))
}

struct World {
    s: Stack,
    nic: IfIndex,
    now: Instant,
    conns: Vec<Conn>,
    out: Vec<Skb>,
}

impl World {
    fn settle(&mut self) {
        // Run what is due now, then look at what went out.
        for _ in 0..8 {
            match self.s.poll(self.now) {
                Some(t) if t <= self.now => continue,
                _ => break,
            }
        }
        self.out.clear();
        self.s.nic_take_sent(self.nic, &mut self.out);
        for skb in &self.out {
            let Some((sport, dport, seq, _ack, flags, len)) = parse(skb) else {
                continue;
            };
            if trace() {
                eprintln!("  out :{sport} -> :{dport} flags {flags:#04x} seq {seq} len {len}");
            }
            let Some(c) = self
                .conns
                .iter_mut()
                .find(|c| c.port == sport && c.peer_port == dport)
            else {
                continue;
            };
            let end = seq
                .wrapping_add(len as u32)
                .wrapping_add(u32::from(flags & 0x02 != 0))
                .wrapping_add(u32::from(flags & 0x01 != 0));
            if !c.seen || end.wrapping_sub(c.their_nxt) as i32 > 0 {
                c.their_nxt = end;
                c.seen = true;
            }
        }
        self.out.clear();
    }

    fn inject(&mut self, seg: &Seg) {
        let f = frame(seg);
        let _ = self.s.nic_receive_bytes(self.now, self.nic, &f);
        self.settle();
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        // Step through the timers that fall due, a bounded number of times.
        for _ in 0..64 {
            match self.s.poll(self.now) {
                Some(t) if t <= until => self.now = t.max(self.now + Duration::from_nanos(1)),
                _ => break,
            }
            self.settle();
        }
        self.now = until;
        self.settle();
    }
}

/// A little reader over the fuzz input.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn setup() -> Option<(World, SockId, SockId)> {
    let mut s = Stack::new();
    let nic = s.add_nic("eth0", US_MAC, NicConfig::default()).ok()?;
    s.set_up(nic, true).ok()?;
    s.ip_addr_add(nic, US, 24).ok()?;
    s.neigh_add_static(nic, PEER, PEER_MAC).ok()?;
    let l = s.tcp_socket();
    s.tcp_bind(l, Ipv4Addr::UNSPECIFIED, 80).ok()?;
    s.tcp_listen(l, 8).ok()?;
    let mut w = World {
        s,
        nic,
        now: Instant::from_nanos(1_000_000),
        conns: vec![Conn {
            port: 80,
            peer_port: PEER_PORT,
            our_nxt: 1000,
            ..Conn::default()
        }],
        out: Vec::new(),
    };
    // SYN with MSS, SACK-permitted, timestamps, window scale.
    let syn_opts = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    w.inject(&Seg {
        sport: PEER_PORT,
        dport: 80,
        seq: 999,
        ack: 0,
        flags: 0x02,
        window: 64240,
        options: &syn_opts,
        payload: &[],
        bad_csum: false,
    });
    let c = w.conns[0];
    if !c.seen {
        return None;
    }
    let ts = [1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 0];
    w.inject(&Seg {
        sport: PEER_PORT,
        dport: 80,
        seq: 1000,
        ack: c.their_nxt,
        flags: 0x10,
        window: 502,
        options: &ts,
        payload: &[],
        bad_csum: false,
    });
    let (a, _) = w.s.tcp_accept(w.now, l).ok()?;
    Some((w, l, a))
}

/// `NETPATH_FUZZ_TRACE=1`: print what the calls return (for reproducers).
fn trace() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("NETPATH_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((mut w, listener, conn)) = setup() else {
        panic!("handshake against the fake peer failed");
    };
    let mut socks = vec![listener, conn];
    let payload = [0x61u8; 70_000];
    let mut buf = vec![0u8; 70_000];
    let mut input = In(data);
    let mut tsval = 3u32;
    while let Some(op) = input.u8() {
        match op % 8 {
            // A segment on the established connection (or near it).
            0..=2 => {
                let Some(flags) = input.u8() else { break };
                let seq_off = input.u16().unwrap_or(0) as i16;
                let ack_off = input.u16().unwrap_or(0) as i16;
                let window = input.u16().unwrap_or(0);
                let ol = usize::from(input.u8().unwrap_or(0) % 41);
                let options = input.bytes(ol);
                let pl = input.u16().unwrap_or(0) as usize % 3000;
                let pbytes = input.bytes(pl);
                let misc = input.u8().unwrap_or(0);
                // Payload: the fuzz bytes, or filler when the input is short.
                let payload_slice = if pbytes.len() == pl {
                    pbytes
                } else {
                    &payload[..pl]
                };
                let ci = usize::from(misc >> 4) % w.conns.len();
                let c = w.conns[ci];
                // A valid timestamp option unless the fuzz gave options.
                tsval = tsval.wrapping_add(u32::from(misc & 3));
                let mut tsopt = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
                tsopt[4..8].copy_from_slice(&tsval.to_be_bytes());
                let opts: &[u8] = if ol == 0 && misc & 4 == 0 {
                    &tsopt
                } else {
                    options
                };
                let seq = c.our_nxt.wrapping_add(seq_off as i32 as u32);
                let seg = Seg {
                    sport: if misc & 8 != 0 {
                        c.peer_port ^ u16::from(misc)
                    } else {
                        c.peer_port
                    },
                    dport: c.port,
                    seq,
                    ack: c.their_nxt.wrapping_add(ack_off as i32 as u32),
                    flags,
                    window,
                    options: opts,
                    payload: payload_slice,
                    bad_csum: misc == 0xff,
                };
                w.inject(&seg);
                if trace() {
                    eprintln!(
                        "seg to :{} flags {flags:#04x} seq {seq} len {} -> stack nxt {}",
                        c.port,
                        payload_slice.len(),
                        w.conns[ci].their_nxt
                    );
                }
                // The peer moves on if this was in order.
                if seq_off == 0 && misc != 0xff && misc & 8 == 0 {
                    let c = &mut w.conns[ci];
                    c.our_nxt = seq
                        .wrapping_add(payload_slice.len() as u32)
                        .wrapping_add(u32::from(flags & 0x03 != 0));
                }
            }
            // A segment to the listener from some port (SYNs, stray ACKs);
            // with the top bit of the flags byte, a whole handshake from
            // that port (SYN with the fuzzed options, then the ACK of the
            // SYN-ACK), so new connections queue up for accept().
            3 if input.0.first().is_some_and(|f| f & 0x80 != 0) => {
                let _ = input.u8();
                let sport = input.u16().unwrap_or(1) | 0x400;
                let ol = usize::from(input.u8().unwrap_or(0) % 41);
                let options = input.bytes(ol);
                if w.conns.iter().any(|c| c.port == 80 && c.peer_port == sport) {
                    continue;
                }
                w.conns.push(Conn {
                    port: 80,
                    peer_port: sport,
                    our_nxt: 7001,
                    ..Conn::default()
                });
                let ci = w.conns.len() - 1;
                w.inject(&Seg {
                    sport,
                    dport: 80,
                    seq: 7000,
                    ack: 0,
                    flags: 0x02,
                    window: 65535,
                    options,
                    payload: &[],
                    bad_csum: false,
                });
                let c = w.conns[ci];
                if trace() {
                    eprintln!(
                        "handshake from :{sport}: syn-ack seen {} nxt {}",
                        c.seen, c.their_nxt
                    );
                }
                if c.seen {
                    w.inject(&Seg {
                        sport,
                        dport: 80,
                        seq: 7001,
                        ack: c.their_nxt,
                        flags: 0x10,
                        window: 65535,
                        options: &[],
                        payload: &[],
                        bad_csum: false,
                    });
                }
            }
            3 => {
                let Some(flags) = input.u8() else { break };
                let sport = input.u16().unwrap_or(1);
                let seq = u32::from(input.u16().unwrap_or(0)) << 8;
                let ack = u32::from(input.u16().unwrap_or(0)) << 12;
                let ol = usize::from(input.u8().unwrap_or(0) % 41);
                let options = input.bytes(ol);
                w.inject(&Seg {
                    sport,
                    dport: 80,
                    seq,
                    ack,
                    flags,
                    window: 65535,
                    options,
                    payload: &[],
                    bad_csum: false,
                });
            }
            // Socket calls.
            4 | 5 => {
                let Some(k) = input.u8() else { break };
                let arg = input.u16().unwrap_or(0);
                let id = socks[usize::from(k >> 4) % socks.len()];
                let now = w.now;
                let s = &mut w.s;
                match k % 12 {
                    0 => {
                        let _ = s.tcp_send(
                            now,
                            id,
                            &payload[..usize::from(arg)],
                            SendFlags { more: arg & 1 == 1, ..SendFlags::default() },
                        );
                    }
                    1 => {
                        let r = s.tcp_recv(now, id, &mut buf[..usize::from(arg)]);
                        if trace() {
                            eprintln!("recv({id:?}, {arg}) = {r:?} state {:?}", s.tcp_state(id));
                        }
                    }
                    2 => {
                        let _ = s.tcp_recv_flags(now, id, &mut buf[..usize::from(arg)], true);
                    }
                    3 => {
                        let how =
                            [Shutdown::Read, Shutdown::Write, Shutdown::Both][usize::from(arg % 3)];
                        let _ = s.tcp_shutdown(now, id, how);
                    }
                    4 => {
                        let _ = s.tcp_close(now, id);
                    }
                    5 => {
                        let r = s.tcp_accept(now, id);
                        if trace() {
                            eprintln!("accept({id:?}) = {r:?}");
                        }
                        if let Ok((c, _)) = r {
                            socks.push(c);
                        }
                    }
                    6 => {
                        let opt = match arg % 10 {
                            0 => TcpOpt::NoDelay(arg & 16 != 0),
                            1 => TcpOpt::Cork(arg & 16 != 0),
                            2 => TcpOpt::RcvBuf(usize::from(arg)),
                            3 => TcpOpt::SndBuf(usize::from(arg)),
                            4 => TcpOpt::Linger(Some(u32::from(arg >> 8) % 3)),
                            5 => TcpOpt::KeepAlive(true),
                            6 => TcpOpt::KeepIdle(u32::from(arg >> 4).max(1)),
                            7 => TcpOpt::UserTimeout(u32::from(arg)),
                            8 => TcpOpt::MaxSeg(arg),
                            _ => TcpOpt::Congestion(
                                if arg & 16 != 0 { "reno" } else { "cubic" }.to_string(),
                            ),
                        };
                        let _ = s.tcp_setsockopt(id, opt);
                    }
                    7 => {
                        // An active open towards the peer; the peer learns
                        // of it from the SYN.
                        let c = s.tcp_socket();
                        let _ = s.tcp_connect(now, c, PEER, PEER_PORT);
                        socks.push(c);
                        if let Ok((_, lp)) = s.tcp_local_addr(c) {
                            w.conns.push(Conn {
                                port: lp,
                                peer_port: PEER_PORT,
                                our_nxt: 5000,
                                ..Conn::default()
                            });
                        }
                    }
                    _ => {
                        let _ = s.tcp_poll(id);
                        let _ = s.tcp_info(id);
                        let _ = s.tcp_inq(id);
                        let _ = s.tcp_outq(id);
                        let _ = s.tcp_take_error(id);
                        let _ = s.tcp_peer_addr(id);
                    }
                }
                w.settle();
            }
            // Time.
            6 => {
                let ms = u64::from(input.u8().unwrap_or(0));
                w.advance(Duration::from_millis(ms));
            }
            _ => {
                let s = u64::from(input.u8().unwrap_or(0));
                w.advance(Duration::from_secs(s * 4));
            }
        }
    }
    // Let every timer run out.
    w.advance(Duration::from_secs(3600));
});
