//! Comparing a segment the stack sent with a `>` line: flags, sequence
//! range, ack, window, urgent pointer, options (TS val loosely), ECN; and
//! packetdrill's rule that several smaller segments may together match one
//! larger expected segment (the stack did not use TSO).

use super::mapping::ecn_bits;
use super::packet::Segment;
use crate::ast::{Ecn, TcpFlags, TcpOption, TcpOptions, TcpSegment};

/// An expected segment with absolute numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// Flag bits.
    pub flags: u8,
    /// First sequence number.
    pub seq: u32,
    /// Payload length of the whole expected segment.
    pub len: u32,
    /// Ack number, if written.
    pub ack: Option<u32>,
    /// Window, if written.
    pub win: Option<u32>,
    /// Urgent pointer, if written.
    pub urg: Option<u32>,
    /// Options (`None`: `<...>`, not checked); SACK blocks absolute, TS val
    /// mapped to the stack's clock when known.
    pub options: Option<Vec<TcpOption>>,
    /// ECN codepoint to check.
    pub ecn: Option<Ecn>,
    /// Allowed TS val error in the stack's ticks (`None`: not checked).
    pub ts_val_slack: Option<u32>,
}

impl Want {
    /// Maps a script `>` line given the stack's ISN, the remote's ISN and
    /// the TS offset.
    pub fn new(
        seg: &TcpSegment,
        ecn: Option<Ecn>,
        local_isn: u32,
        remote_isn: u32,
        ts_offset: Option<u32>,
        ts_val_slack: Option<u32>,
    ) -> Want {
        let options = match &seg.options {
            Some(TcpOptions::Any) => None,
            None => Some(Vec::new()),
            Some(TcpOptions::List(l)) => Some(
                l.iter()
                    .filter(|o| **o != TcpOption::Eol)
                    .map(|o| match o {
                        TcpOption::Sack(b) => TcpOption::Sack(
                            b.iter()
                                .map(|(a, z)| {
                                    (a.wrapping_add(remote_isn), z.wrapping_add(remote_isn))
                                })
                                .collect(),
                        ),
                        TcpOption::Timestamp { val, ecr } => TcpOption::Timestamp {
                            val: val.wrapping_add(ts_offset.unwrap_or(0)),
                            ecr: *ecr,
                        },
                        o => o.clone(),
                    })
                    .collect(),
            ),
        };
        Want {
            flags: seg.flags.0,
            seq: seg.seq.start.wrapping_add(local_isn),
            len: seg.seq.len,
            ack: seg.ack.map(|a| a.wrapping_add(remote_isn)),
            win: seg.win,
            urg: seg.urg,
            options,
            ecn,
            ts_val_slack: if ts_offset.is_some() {
                ts_val_slack
            } else {
                None
            },
        }
    }
}

/// How far a sent segment got through an expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The expected segment is complete.
    Done,
    /// A prefix matched; the next piece must start at this sequence number.
    Partial(u32),
}

const TAIL: u8 = TcpFlags::PSH | TcpFlags::FIN;

/// Checks `act` against `want`, given that `done` bytes of it were already
/// matched by earlier pieces; `split_ok` allows a piece shorter than the
/// remainder (non-strict mode). `Err` says what differs.
pub fn check(want: &Want, done: u32, act: &Segment, split_ok: bool) -> Result<Progress, String> {
    let start = want.seq.wrapping_add(done);
    let remaining = want.len - done.min(want.len);
    if act.seq != start {
        return Err(format!("sequence number {} (expected {start})", act.seq));
    }
    let partial = act.len < remaining && act.len > 0 && split_ok;
    if act.len != remaining && !partial {
        return Err(format!("payload length {} (expected {remaining})", act.len));
    }
    // The pieces of a split segment: FIN only on the last, CWR only on the
    // first, as Linux's GSO segmentation does. PSH may be on any piece of a
    // pushed segment: the stack may have sent it as several GSO packets,
    // and Linux forces PSH on each (`__tcp_transmit_skb`).
    let mut wflags = want.flags;
    let mut aflags = act.flags;
    if partial {
        if wflags & TcpFlags::PSH != 0 {
            aflags &= !TcpFlags::PSH;
        }
        wflags &= !TAIL;
    }
    if done > 0 {
        wflags &= !TcpFlags::CWR;
    }
    if aflags != wflags {
        return Err(format!(
            "flags {} (expected {})",
            TcpFlags(aflags),
            TcpFlags(wflags)
        ));
    }
    if let Some(a) = want.ack {
        if act.ack != a {
            return Err(format!("ack {} (expected {a})", act.ack));
        }
    }
    if let Some(w) = want.win {
        if u32::from(act.win) != w {
            return Err(format!("window {} (expected {w})", act.win));
        }
    }
    if let Some(u) = want.urg {
        if u32::from(act.urg) != u {
            return Err(format!("urgent pointer {} (expected {u})", act.urg));
        }
    }
    if let Some(e) = want.ecn {
        let bits = act.ecn;
        let ok = match ecn_bits(Some(e)) {
            Some(b) => bits == b,
            None => bits == 1 || bits == 2,
        };
        if !ok {
            return Err(format!("ECN bits {bits} (expected {})", e.name()));
        }
    }
    if let Some(opts) = &want.options {
        check_options(opts, &act.options, want.ts_val_slack)?;
    }
    Ok(if partial {
        Progress::Partial(act.seq.wrapping_add(act.len))
    } else {
        Progress::Done
    })
}

fn check_options(want: &[TcpOption], act: &[TcpOption], slack: Option<u32>) -> Result<(), String> {
    let act: Vec<&TcpOption> = act.iter().filter(|o| **o != TcpOption::Eol).collect();
    let list = |l: &[&TcpOption]| {
        l.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mismatch = || {
        format!(
            "options <{}> (expected <{}>)",
            list(&act),
            list(&want.iter().collect::<Vec<_>>())
        )
    };
    if act.len() != want.len() {
        return Err(mismatch());
    }
    for (w, a) in want.iter().zip(&act) {
        match (w, a) {
            (
                TcpOption::Timestamp { val: wv, ecr: we },
                TcpOption::Timestamp { val: av, ecr: ae },
            ) => {
                if we != ae {
                    return Err(format!("TS ecr {ae} (expected {we})"));
                }
                if let Some(s) = slack {
                    let d = av.wrapping_sub(*wv) as i32;
                    if d.unsigned_abs() > s {
                        return Err(format!("TS val off by {d} ticks (allowed {s})"));
                    }
                }
            }
            (w, a) if w == *a => {}
            _ => return Err(mismatch()),
        }
    }
    Ok(())
}
