//! The demo's two endpoints: a pinger and a responder, as simulator nodes.
//! Each keeps counters as `ip -s link` and `netstat -s` would show them.

use netpath::sim::{Node, NodeCtx, PortId};
use netpath::skb::Skb;
use netpath::time::{Duration, Instant};

use super::frames::{build_echo, receive_echo, Addrs, Echo, RxError};

/// What a host did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    /// Frames whose FCS did not verify (dropped by the "NIC").
    pub rx_crc_errors: u64,
    /// Frames whose headers or checksums did not verify, or not for us.
    pub rx_errors: u64,
    pub echo_requests_rx: u64,
    pub echo_replies_tx: u64,
    pub echo_requests_tx: u64,
    pub echo_replies_rx: u64,
    /// Replies for a sequence number already answered (link duplication).
    pub duplicate_replies: u64,
    /// Frames the host could not build (pool exhausted).
    pub tx_errors: u64,
}

/// One line of the demo's story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Instant,
    pub host: &'static str,
    pub text: String,
}

enum Role {
    Pinger {
        count: u16,
        interval: Duration,
        next_seq: u16,
        replied: Vec<bool>,
    },
    Responder,
}

/// A host with one port.
pub struct DemoHost {
    name: &'static str,
    me: Addrs,
    peer: Addrs,
    role: Role,
    ident: u16,
    ip_id: u16,
    pub stats: HostStats,
    /// Round-trip times of answered requests, in virtual nanoseconds.
    pub rtts: Vec<u64>,
    pub log: Vec<LogLine>,
}

impl DemoHost {
    pub fn pinger(
        name: &'static str,
        me: Addrs,
        peer: Addrs,
        count: u16,
        interval: Duration,
    ) -> Self {
        let role = Role::Pinger {
            count,
            interval,
            next_seq: 1,
            replied: vec![false; usize::from(count) + 1],
        };
        Self::new(name, me, peer, role)
    }

    pub fn responder(name: &'static str, me: Addrs, peer: Addrs) -> Self {
        Self::new(name, me, peer, Role::Responder)
    }

    fn new(name: &'static str, me: Addrs, peer: Addrs, role: Role) -> Self {
        DemoHost {
            name,
            me,
            peer,
            role,
            ident: 0x4e50, // "NP"
            ip_id: 1,
            stats: HostStats::default(),
            rtts: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The one port of a demo host.
    pub const PORT: PortId = PortId(0);

    fn say(&mut self, time: Instant, text: String) {
        self.log.push(LogLine {
            time,
            host: self.name,
            text,
        });
    }

    fn send(&mut self, now: Instant, echo: Echo, ctx: &mut NodeCtx<'_>) {
        let id = self.ip_id;
        self.ip_id = self.ip_id.wrapping_add(1);
        match build_echo(ctx.pool(), self.me, self.peer, echo, id) {
            Ok(skb) => {
                self.stats.tx_frames += 1;
                let kind = if echo.reply {
                    "echo reply"
                } else {
                    "echo request"
                };
                self.say(
                    now,
                    format!(
                        "send {kind} seq={} ({} bytes on the wire)",
                        echo.seq,
                        skb.len()
                    ),
                );
                ctx.transmit(Self::PORT, skb);
            }
            Err(e) => {
                self.stats.tx_errors += 1;
                self.say(now, format!("could not build a frame: {e:?}"));
            }
        }
    }
}

impl Node for DemoHost {
    fn receive(
        &mut self,
        now: Instant,
        _port: PortId,
        mut frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    ) {
        self.stats.rx_frames += 1;
        match receive_echo(&mut frame, self.me) {
            Err(RxError::Fcs) => {
                self.stats.rx_crc_errors += 1;
                let why = if touched {
                    " (the link flipped a bit)"
                } else {
                    ""
                };
                self.say(now, format!("drop frame: bad FCS{why}: rx_crc_errors"));
            }
            Err(e) => {
                self.stats.rx_errors += 1;
                self.say(now, format!("drop frame: {e:?}"));
            }
            Ok(echo) if !echo.reply => {
                self.stats.echo_requests_rx += 1;
                self.say(
                    now,
                    format!("recv echo request seq={} from {}", echo.seq, echo.src),
                );
                self.stats.echo_replies_tx += 1;
                self.send(
                    now,
                    Echo {
                        reply: true,
                        src: self.me.ip,
                        ..echo
                    },
                    ctx,
                );
            }
            Ok(echo) => {
                let rtt = now.as_nanos().saturating_sub(echo.sent_ns);
                let first = match &mut self.role {
                    Role::Pinger { replied, .. } if echo.ident == self.ident => {
                        match replied.get_mut(usize::from(echo.seq)) {
                            Some(seen) if !*seen => {
                                *seen = true;
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if first {
                    self.stats.echo_replies_rx += 1;
                    self.rtts.push(rtt);
                    let ms = rtt as f64 / 1e6;
                    self.say(
                        now,
                        format!(
                            "recv echo reply seq={} from {}: rtt {ms:.3} ms",
                            echo.seq, echo.src
                        ),
                    );
                } else {
                    self.stats.duplicate_replies += 1;
                    self.say(
                        now,
                        format!("recv echo reply seq={} again (DUP!)", echo.seq),
                    );
                }
            }
        }
    }

    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        let Role::Pinger {
            count,
            interval,
            next_seq,
            ..
        } = &mut self.role
        else {
            return None;
        };
        if *next_seq > *count {
            return None;
        }
        let seq = *next_seq;
        *next_seq += 1;
        let next = (*next_seq <= *count).then(|| now + *interval);
        self.stats.echo_requests_tx += 1;
        let echo = Echo {
            reply: false,
            ident: self.ident,
            seq,
            src: self.me.ip,
            sent_ns: now.as_nanos(),
        };
        self.send(now, echo, ctx);
        next
    }
}
