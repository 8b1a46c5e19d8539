//! The LOG target's output: a kernel-log line per logged packet, in the
//! format of `nf_log_ip_packet` / `dump_ipv4_packet`
//! (`net/netfilter/nf_log_syslog.c`), kept in a ring per stack.
//!
//! Formatting allocates (a `String` per line, reused once the ring is
//! full), but only when a LOG rule fires.

use core::fmt::Write;
use std::collections::VecDeque;

use netpath_wire::icmpv4::{self, Icmpv4Packet};
use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::tcp::{self, TcpPacket};
use netpath_wire::udp::{self, UdpPacket};

use crate::dev::IfIndex;

/// Lines kept before the oldest is overwritten (the kernel's log buffer
/// would wrap the same way).
pub const LOG_RING_LEN: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct LogRing {
    lines: VecDeque<String>,
    /// Lines written so far (also the sequence number of the next).
    pub(crate) written: u64,
}

impl LogRing {
    /// Formats one line for the IPv4 packet in `bytes` and returns its
    /// sequence number.
    pub(crate) fn log(
        &mut self,
        prefix: &str,
        in_dev: Option<IfIndex>,
        out_dev: Option<IfIndex>,
        bytes: &[u8],
        mark: u32,
    ) -> u64 {
        let mut line = if self.lines.len() >= LOG_RING_LEN {
            let mut old = self.lines.pop_front().unwrap_or_default();
            old.clear();
            old
        } else {
            String::with_capacity(160)
        };
        // Writing into a String cannot fail.
        let _ = format_line(&mut line, prefix, in_dev, out_dev, bytes, mark);
        while line.ends_with(' ') {
            line.pop();
        }
        self.lines.push_back(line);
        let seq = self.written;
        self.written += 1;
        seq
    }

    pub(crate) fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    pub(crate) fn clear(&mut self) {
        self.lines.clear();
    }
}

struct Dev(Option<IfIndex>);

impl core::fmt::Display for Dev {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(d) => write!(f, "{d}"),
            None => Ok(()),
        }
    }
}

fn format_line(
    out: &mut String,
    prefix: &str,
    in_dev: Option<IfIndex>,
    out_dev: Option<IfIndex>,
    bytes: &[u8],
    mark: u32,
) -> core::fmt::Result {
    write!(out, "{prefix}IN={} OUT={} ", Dev(in_dev), Dev(out_dev))?;
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        write!(out, "TRUNCATED LEN={} ", bytes.len())?;
        return mark_suffix(out, mark);
    };
    write!(
        out,
        "SRC={} DST={} LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        ip.src_addr(),
        ip.dst_addr(),
        ip.total_len(),
        ip.tos() & 0x1e,
        ip.tos() & 0xe0,
        ip.ttl(),
        ip.ident(),
    )?;
    if ip.reserved_flag() {
        out.push_str("CE ");
    }
    if ip.dont_frag() {
        out.push_str("DF ");
    }
    if ip.more_frags() {
        out.push_str("MF ");
    }
    let frag = ip.frag_offset();
    if frag != 0 {
        write!(out, "FRAG:{} ", frag / 8)?;
    }
    let payload = ip.payload();
    match ip.protocol().0 {
        tcp::PROTOCOL => {
            out.push_str("PROTO=TCP ");
            if frag == 0 {
                match payload.get(..tcp::HEADER_LEN) {
                    Some(h) => tcp_fields(out, &TcpPacket::new_unchecked(h))?,
                    None => write!(out, "INCOMPLETE [{} bytes] ", payload.len())?,
                }
            }
        }
        udp::PROTOCOL => {
            out.push_str("PROTO=UDP ");
            if frag == 0 {
                match payload.get(..udp::HEADER_LEN) {
                    Some(h) => {
                        let u = UdpPacket::new_unchecked(h);
                        write!(
                            out,
                            "SPT={} DPT={} LEN={} ",
                            u.src_port(),
                            u.dst_port(),
                            u.len()
                        )?;
                    }
                    None => write!(out, "INCOMPLETE [{} bytes] ", payload.len())?,
                }
            }
        }
        icmpv4::PROTOCOL => {
            out.push_str("PROTO=ICMP ");
            if frag == 0 {
                match payload.get(..icmpv4::HEADER_LEN) {
                    Some(h) => {
                        let i = Icmpv4Packet::new_unchecked(h);
                        write!(out, "TYPE={} CODE={} ", i.msg_type(), i.msg_code())?;
                        if matches!(i.msg_type(), 0 | 8) {
                            write!(out, "ID={} SEQ={} ", i.echo_ident(), i.echo_seq_no())?;
                        }
                    }
                    None => write!(out, "INCOMPLETE [{} bytes] ", payload.len())?,
                }
            }
        }
        n => write!(out, "PROTO={n} ")?,
    }
    mark_suffix(out, mark)
}

fn tcp_fields(out: &mut String, t: &TcpPacket<&[u8]>) -> core::fmt::Result {
    let bits = t.flags().bits();
    write!(
        out,
        "SPT={} DPT={} WINDOW={} RES=0x{:02x} ",
        t.src_port(),
        t.dst_port(),
        t.window_len(),
        (bits >> 8) & 0x0f,
    )?;
    for (bit, name) in [
        (0x80, "CWR"),
        (0x40, "ECE"),
        (0x20, "URG"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x04, "RST"),
        (0x02, "SYN"),
        (0x01, "FIN"),
    ] {
        if bits & bit != 0 {
            out.push_str(name);
            out.push(' ');
        }
    }
    write!(out, "URGP={} ", t.urgent_at())
}

fn mark_suffix(out: &mut String, mark: u32) -> core::fmt::Result {
    if mark != 0 {
        write!(out, "MARK=0x{mark:x} ")?;
    }
    Ok(())
}
