//! Script-relative ↔ absolute numbers: connections (ports), the stack's ISN
//! learned from its first segment (normally its SYN or SYN-ACK), the
//! remote's ISN (the script's numbers plus a fixed offset), and the stack's
//! TS clock learned from its first timestamped segment.
//!
//! As packetdrill does, the numbers of a SYN (its sequence number, a
//! SYN-ACK's acknowledgment) are absolute, and those of any other segment
//! relative to the ISN of their side: a script may write
//! `< S 999000:999040(40)`, expect `> S. 1234:1234(0) ack 999001`, then
//! inject `< . 1:1(0) ack 1`.

use super::packet::Segment;
use crate::ast::{Ecn, TcpFlags, TcpOption, TcpOptions, TcpSegment};
use std::net::Ipv4Addr;

/// One TCP connection the script talks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// The stack's port (learned from its first segment for `connect`).
    pub local_port: Option<u16>,
    /// The remote's port.
    pub remote_port: u16,
    /// The stack's live ISN, once learned.
    pub local_isn: Option<u32>,
    /// The ISN the script wrote for the stack (its SYN's sequence number).
    pub local_script_isn: u32,
    /// The remote's ISN as the script wrote it (its SYN's sequence
    /// number): the base of its later sequence numbers.
    pub remote_script_isn: u32,
    /// Created by the stack's `connect` (not by an injected SYN).
    pub active: bool,
    /// Whether a packet was injected on it yet.
    pub got_inbound: bool,
}

/// All the numbering state of a run.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// Connections, oldest first.
    pub conns: Vec<Conn>,
    /// The one injected packets go to (the most recent).
    pub cur: Option<usize>,
    /// Added to the script's remote sequence numbers.
    pub remote_isn: u32,
    /// Stack TSval = script TSval + this, once learned.
    pub ts_offset: Option<u32>,
    /// The remote port for the next connection a SYN opens.
    pub next_remote_port: u16,
    /// Connections before this index belong to sockets that are no longer
    /// under test (a later `socket()` took over, as in packetdrill).
    pub stale_before: usize,
}

impl Mapper {
    /// A fresh mapper.
    pub fn new(remote_isn: u32, remote_port_base: u16) -> Self {
        Mapper {
            conns: Vec::new(),
            cur: None,
            remote_isn,
            ts_offset: None,
            next_remote_port: remote_port_base,
            stale_before: 0,
        }
    }

    /// Records a connection the stack opens (`connect`, fast-open `sendto`).
    pub fn add_active(&mut self, local_port: Option<u16>, remote_port: u16) {
        self.conns.push(Conn {
            local_port,
            remote_port,
            local_isn: None,
            local_script_isn: 0,
            remote_script_isn: 0,
            active: true,
            got_inbound: false,
        });
        self.cur = Some(self.conns.len() - 1);
    }

    /// The absolute segment to inject for a script `<` line.
    pub fn inbound(
        &mut self,
        seg: &TcpSegment,
        ecn: Option<Ecn>,
        listen_port: u16,
        local_ip: Ipv4Addr,
        remote_ip: Ipv4Addr,
    ) -> Result<Segment, String> {
        let syn_only = seg.flags.has(TcpFlags::SYN) && !seg.flags.has(TcpFlags::ACK);
        let reuse = match self.cur.and_then(|i| self.conns.get(i)) {
            Some(c) => !syn_only || (c.active && !c.got_inbound),
            None => false,
        };
        if !reuse {
            let port = self.next_remote_port;
            self.next_remote_port = self.next_remote_port.wrapping_add(1).max(1024);
            self.conns.push(Conn {
                local_port: Some(listen_port),
                remote_port: port,
                local_isn: None,
                local_script_isn: 0,
                remote_script_isn: 0,
                active: false,
                got_inbound: false,
            });
            self.cur = Some(self.conns.len() - 1);
        }
        let i = self.cur.unwrap_or(0);
        let ts_offset = self.ts_offset;
        let Some(c) = self.conns.get_mut(i) else {
            return Err("no connection".into());
        };
        c.got_inbound = true;
        let Some(local_port) = c.local_port else {
            return Err("the stack's port is not known yet (it has sent nothing)".into());
        };
        let syn = seg.flags.has(TcpFlags::SYN);
        if syn {
            c.remote_script_isn = seg.seq.start;
        }
        let c = c.clone();
        let ack_off = local_offset(&c, syn);
        let lisn = local_offset(&c, false);
        let seq_off = self
            .remote_isn
            .wrapping_add(if syn { 0 } else { c.remote_script_isn });
        let options = match &seg.options {
            None => Vec::new(),
            Some(TcpOptions::Any) => return Err("`<...>` options on an injected packet".into()),
            Some(TcpOptions::List(l)) => l
                .iter()
                .map(|o| match o {
                    TcpOption::Sack(b) => TcpOption::Sack(
                        b.iter()
                            .map(|(a, z)| (a.wrapping_add(lisn), z.wrapping_add(lisn)))
                            .collect(),
                    ),
                    TcpOption::Timestamp { val, ecr } => TcpOption::Timestamp {
                        val: *val,
                        ecr: if *ecr == 0 {
                            0
                        } else {
                            ecr.wrapping_add(ts_offset.unwrap_or(0))
                        },
                    },
                    o => o.clone(),
                })
                .collect(),
        };
        Ok(Segment {
            src: remote_ip,
            dst: local_ip,
            ecn: ecn_bits(ecn).unwrap_or(0),
            sport: c.remote_port,
            dport: local_port,
            seq: seg.seq.start.wrapping_add(seq_off),
            ack: seg.ack.map_or(0, |a| a.wrapping_add(ack_off)),
            flags: seg.flags.0,
            win: seg.win.unwrap_or(0).min(65535) as u16,
            urg: seg.urg.unwrap_or(0).min(65535) as u16,
            options,
            len: seg.seq.len,
        })
    }

    /// The connection a segment the stack sent belongs to (learning its
    /// port if a `connect` left it open).
    pub fn outbound_conn(&mut self, act: &Segment) -> Result<usize, String> {
        if let Some(i) = self
            .conns
            .iter()
            .rposition(|c| c.local_port == Some(act.sport) && c.remote_port == act.dport)
        {
            self.cur = Some(i);
            return Ok(i);
        }
        if let Some(i) = self
            .conns
            .iter()
            .rposition(|c| c.local_port.is_none() && c.remote_port == act.dport)
        {
            self.conns[i].local_port = Some(act.sport);
            self.cur = Some(i);
            return Ok(i);
        }
        Err(format!(
            "segment {}:{} > {} is on no connection of the script",
            act.sport, act.dport, act.seq
        ))
    }

    /// Whether a segment the stack sent is on a connection older than the
    /// newest one: packetdrill only watches the socket under test (the
    /// newest) and ignores the others' packets.
    pub fn is_stale(&self, act: &Segment) -> bool {
        let newest = self.conns.len().saturating_sub(1);
        self.conns
            .iter()
            .rposition(|c| c.local_port == Some(act.sport) && c.remote_port == act.dport)
            .is_some_and(|i| i < newest || i < self.stale_before)
    }

    /// Learns the stack's ISN (first segment of the connection, or any SYN)
    /// and TS offset from a segment matched against `exp`.
    pub fn learn(&mut self, conn: usize, exp: &TcpSegment, act: &Segment) {
        if let Some(c) = self.conns.get_mut(conn) {
            if act.flags & TcpFlags::SYN != 0 {
                c.local_isn = Some(act.seq);
                c.local_script_isn = exp.seq.start;
            } else if c.local_isn.is_none() {
                c.local_isn = Some(act.seq.wrapping_sub(exp.seq.start));
                c.local_script_isn = 0;
            }
        }
        // packetdrill maps TS values per socket: a new connection's SYN (or
        // SYN-ACK) sets the mapping afresh.
        if self.ts_offset.is_none() || act.flags & TcpFlags::SYN != 0 {
            if let (Some(ev), Some(av)) = (ts_of(exp), ts_of_list(&act.options)) {
                self.ts_offset = Some(av.0.wrapping_sub(ev.0));
            }
        }
    }

    /// Script → live offset of the stack's sequence numbers on a
    /// connection: for a SYN's own number, or (`syn` false) any other.
    pub fn local_isn(&self, conn: usize, syn: bool) -> u32 {
        self.conns.get(conn).map_or(0, |c| local_offset(c, syn))
    }

    /// Script → live offset of the remote's sequence numbers on a
    /// connection, likewise.
    pub fn remote_isn(&self, conn: usize, syn: bool) -> u32 {
        let base = match self.conns.get(conn) {
            Some(c) if !syn => c.remote_script_isn,
            _ => 0,
        };
        self.remote_isn.wrapping_add(base)
    }

    /// A sent segment rewritten with script-relative numbers, for messages.
    pub fn relative(&self, conn: Option<usize>, act: &Segment) -> TcpSegment {
        let syn = act.flags & TcpFlags::SYN != 0;
        let lisn = conn.map_or(0, |c| self.local_isn(c, syn));
        let risn = conn.map_or(self.remote_isn, |c| self.remote_isn(c, syn));
        let seq = act.seq.wrapping_sub(lisn);
        let options = act
            .options
            .iter()
            .map(|o| match o {
                TcpOption::Sack(b) => TcpOption::Sack(
                    b.iter()
                        .map(|(a, z)| (a.wrapping_sub(risn), z.wrapping_sub(risn)))
                        .collect(),
                ),
                TcpOption::Timestamp { val, ecr } => TcpOption::Timestamp {
                    val: val.wrapping_sub(self.ts_offset.unwrap_or(0)),
                    ecr: *ecr,
                },
                o => o.clone(),
            })
            .collect::<Vec<_>>();
        TcpSegment {
            flags: TcpFlags(act.flags),
            seq: crate::ast::SeqRange {
                start: seq,
                end: seq.wrapping_add(act.len),
                len: act.len,
            },
            ack: (act.flags & TcpFlags::ACK != 0).then(|| act.ack.wrapping_sub(risn)),
            win: Some(u32::from(act.win)),
            urg: (act.flags & TcpFlags::URG != 0).then_some(u32::from(act.urg)),
            options: (!options.is_empty()).then_some(TcpOptions::List(options)),
        }
    }
}

/// Script → live offset of the stack's numbers: a SYN's own number maps
/// the script's ISN to the live one, others are relative to the live ISN.
fn local_offset(c: &Conn, syn: bool) -> u32 {
    let live = c.local_isn.unwrap_or(0);
    if syn {
        live.wrapping_sub(c.local_script_isn)
    } else {
        live
    }
}

/// The ECN bits of a codepoint (`Ect01` has none: either is accepted).
pub fn ecn_bits(e: Option<Ecn>) -> Option<u8> {
    Some(match e? {
        Ecn::NoEcn => 0,
        Ecn::Ect1 => 1,
        Ecn::Ect0 => 2,
        Ecn::Ce => 3,
        Ecn::Ect01 => return None,
    })
}

fn ts_of(seg: &TcpSegment) -> Option<(u32, u32)> {
    match &seg.options {
        Some(TcpOptions::List(l)) => ts_of_list(l),
        _ => None,
    }
}

/// The (val, ecr) of a timestamp option in a list.
pub fn ts_of_list(l: &[TcpOption]) -> Option<(u32, u32)> {
    l.iter().find_map(|o| match o {
        TcpOption::Timestamp { val, ecr } => Some((*val, *ecr)),
        _ => None,
    })
}
