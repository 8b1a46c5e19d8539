//! Real IPv4 packets: building the TCP segments and ICMP errors the runner
//! injects, and parsing the packets the stack sends, with the Internet
//! checksum. All numbers here are absolute (already mapped from the script).

use crate::ast::TcpOption;
use std::net::Ipv4Addr;

/// A TCP segment with absolute numbers, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// The IP header's ECN bits (0..=3).
    pub ecn: u8,
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: u32,
    /// Flag bits ([`crate::ast::TcpFlags`] values).
    pub flags: u8,
    /// Raw window field.
    pub win: u16,
    /// Urgent pointer.
    pub urg: u16,
    /// Options in order (SACK blocks absolute), without EOL padding.
    pub options: Vec<TcpOption>,
    /// Payload length.
    pub len: u32,
}

/// What the stack sent, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A TCP segment.
    Tcp(Segment),
    /// Another IPv4 protocol (number), e.g. ICMP.
    Other(u8),
}

/// RFC 1071 one's complement sum, folded, not inverted.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    !(sum16(data, 0) as u16)
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = proto;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum16(&p, 0)
}

/// Hex text (`"a0bf63f7"`, optionally with `-` or `:`) to bytes.
pub fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| *b != b'-' && *b != b':')
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(digits.chunks(2).map(|c| c[0] << 4 | c[1]).collect())
}

/// The wire bytes of a TCP option list, padded with EOL to 4 bytes; `Err`
/// names what cannot be encoded.
pub fn encode_options(opts: &[TcpOption]) -> Result<Vec<u8>, String> {
    let mut o = Vec::new();
    for opt in opts {
        match opt {
            TcpOption::Nop => o.push(1),
            TcpOption::Eol => o.push(0),
            TcpOption::Mss(m) => {
                o.extend([2, 4]);
                o.extend(m.to_be_bytes());
            }
            TcpOption::WindowScale(w) => o.extend([3, 3, *w]),
            TcpOption::SackPermitted => o.extend([4, 2]),
            TcpOption::Sack(blocks) => {
                o.extend([5, (2 + 8 * blocks.len()) as u8]);
                for (a, b) in blocks {
                    o.extend(a.to_be_bytes());
                    o.extend(b.to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr } => {
                o.extend([8, 10]);
                o.extend(val.to_be_bytes());
                o.extend(ecr.to_be_bytes());
            }
            TcpOption::Md5(d) => {
                let d = match d {
                    Some(h) => hex_bytes(h).ok_or_else(|| format!("bad md5 digest `{h}`"))?,
                    None => vec![0; 16],
                };
                o.extend([19, (2 + d.len()) as u8]);
                o.extend(d);
            }
            TcpOption::FastOpen(c) | TcpOption::FastOpenExp(c) => {
                let c = match c {
                    Some(h) => hex_bytes(h).ok_or_else(|| format!("bad cookie `{h}`"))?,
                    None => Vec::new(),
                };
                if matches!(opt, TcpOption::FastOpen(_)) {
                    o.extend([34, (2 + c.len()) as u8]);
                } else {
                    o.extend([254, (4 + c.len()) as u8, 0xf9, 0x89]);
                }
                o.extend(c);
            }
        }
    }
    while o.len() % 4 != 0 {
        o.push(0);
    }
    if o.len() > 40 {
        return Err(format!("{} bytes of TCP options (at most 40)", o.len()));
    }
    Ok(o)
}

fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    tos: u8,
    payload: usize,
    id: u16,
) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// The TCP header + payload (zeros) with a correct checksum.
fn tcp_bytes(s: &Segment) -> Result<Vec<u8>, String> {
    let opts = encode_options(&s.options)?;
    let hlen = 20 + opts.len();
    let mut t = Vec::with_capacity(hlen + s.len as usize);
    t.extend(s.sport.to_be_bytes());
    t.extend(s.dport.to_be_bytes());
    t.extend(s.seq.to_be_bytes());
    t.extend(s.ack.to_be_bytes());
    t.push(((hlen / 4) as u8) << 4);
    t.push(s.flags);
    t.extend(s.win.to_be_bytes());
    t.extend([0, 0]);
    t.extend(s.urg.to_be_bytes());
    t.extend(opts);
    t.resize(hlen + s.len as usize, 0);
    Ok(t)
}

/// A complete IPv4 + TCP packet; `Err` if the options cannot be encoded or
/// the packet would exceed 65535 bytes.
pub fn build_tcp(s: &Segment, ip_id: u16) -> Result<Vec<u8>, String> {
    if s.len > 65_000 {
        return Err(format!("payload of {} bytes is too large", s.len));
    }
    let mut t = tcp_bytes(s)?;
    let c = !(sum16(&t, pseudo_sum(s.src, s.dst, 6, t.len())) as u16);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv4_header(s.src, s.dst, 6, s.ecn & 3, t.len(), ip_id).to_vec();
    p.extend(t);
    Ok(p)
}

/// An ICMP error from `src` to `dst` quoting the IPv4 header and first 8
/// bytes of `quoted` (a segment the stack sent); `mtu` fills the
/// next-hop MTU of "fragmentation needed".
pub fn build_icmp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: u8,
    code: u8,
    mtu: u16,
    quoted: &Segment,
) -> Result<Vec<u8>, String> {
    let q = build_tcp(quoted, 0)?;
    let mut m = vec![icmp_type, code, 0, 0, 0, 0];
    m.extend(mtu.to_be_bytes());
    m.extend(&q[..q.len().min(28)]);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv4_header(src, dst, 1, 0, m.len(), 0).to_vec();
    p.extend(m);
    Ok(p)
}

/// Parses TCP options; `Err` on a malformed list.
pub fn parse_options(mut b: &[u8]) -> Result<Vec<TcpOption>, String> {
    let mut out = Vec::new();
    while let Some(&kind) = b.first() {
        match kind {
            0 => break,
            1 => {
                out.push(TcpOption::Nop);
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = *b.get(1).ok_or("truncated option")? as usize;
        if len < 2 || len > b.len() {
            return Err(format!("bad length {len} of option {kind}"));
        }
        let d = &b[2..len];
        let be32 = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        let hex = |d: &[u8]| d.iter().map(|x| format!("{x:02x}")).collect::<String>();
        out.push(match (kind, d.len()) {
            (2, 2) => TcpOption::Mss(u16::from_be_bytes([d[0], d[1]])),
            (3, 1) => TcpOption::WindowScale(d[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 => {
                TcpOption::Sack((0..n / 8).map(|i| (be32(8 * i), be32(8 * i + 4))).collect())
            }
            (8, 8) => TcpOption::Timestamp {
                val: be32(0),
                ecr: be32(4),
            },
            (19, _) => TcpOption::Md5(Some(hex(d))),
            (34, 0) => TcpOption::FastOpen(None),
            (34, _) => TcpOption::FastOpen(Some(hex(d))),
            (254, n) if n >= 2 && d[..2] == [0xf9, 0x89] => {
                TcpOption::FastOpenExp((n > 2).then(|| hex(&d[2..])))
            }
            _ => return Err(format!("unknown option kind {kind} length {len}")),
        });
        b = &b[len..];
    }
    Ok(out)
}

/// Parses a packet the stack sent (IPv4 header first).
pub fn parse(p: &[u8]) -> Result<Sent, String> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Err("not an IPv4 packet".into());
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || total < ihl || total > p.len() {
        return Err("bad IPv4 header lengths".into());
    }
    let proto = p[9];
    if proto != 6 {
        return Ok(Sent::Other(proto));
    }
    let ip4 = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    let t = &p[ihl..total];
    if t.len() < 20 {
        return Err("truncated TCP header".into());
    }
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 || doff > t.len() {
        return Err("bad TCP data offset".into());
    }
    let be16 = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    Ok(Sent::Tcp(Segment {
        src: ip4(12),
        dst: ip4(16),
        ecn: p[1] & 3,
        sport: be16(0),
        dport: be16(2),
        seq: be32(4),
        ack: be32(8),
        flags: t[13],
        win: be16(14),
        urg: be16(18),
        options: parse_options(&t[20..doff])?,
        len: (t.len() - doff) as u32,
    }))
}

/// Whether the TCP checksum of an IPv4 packet is correct (for tests).
pub fn tcp_checksum_ok(p: &[u8]) -> bool {
    if p.len() < 20 {
        return false;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let Some(t) = p.get(ihl..) else {
        return false;
    };
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    checksum(&p[..ihl]) == 0 && sum16(t, pseudo_sum(src, dst, 6, t.len())) == 0xffff
}
