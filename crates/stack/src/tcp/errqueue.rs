//! The socket error queue (`sk_error_queue`): `sock_queue_err_skb` (with its
//! receive-buffer check), `sock_dequeue_err_skb` (more waiting reports the
//! error again) and `ip_recv_error` (`recvmsg(MSG_ERRQUEUE)`: the oldest
//! entry, its `IP_RECVERR` control message, an `SCM_TIMESTAMPING` one for a
//! timestamp when the socket reports software timestamps, and the bytes of
//! the packet it carries, truncated to the caller's buffer).
//!
//! Two kinds of entries share the one queue, in order: `MSG_ZEROCOPY`
//! completions ([`super::zerocopy`]; consecutive ones merge into the tail,
//! as `__msg_zerocopy_callback` extends the tail skb) and transmit
//! timestamps ([`super::timestamping`]).

use std::collections::VecDeque;

use super::sock::TcpSock;
use super::zerocopy::ZcNotification;
use crate::skb::Skb;
use crate::sock::wait::WakeKey;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Instant;

/// `ENOMSG`: the `ee_errno` of a timestamp report.
pub const ENOMSG: u32 = 42;
/// `SO_EE_ORIGIN_TIMESTAMPING`.
pub const SO_EE_ORIGIN_TIMESTAMPING: u8 = 4;
/// `SO_EE_ORIGIN_ZEROCOPY`.
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// What Linux's `truesize` adds to an error-queue skb beyond its bytes
/// (the `sk_buff` and its shared info), charged to the receive buffer with
/// each timestamp entry.
const ERR_SKB_OVERHEAD: usize = crate::neigh::SKB_TRUESIZE_OVERHEAD;

/// `struct sock_extended_err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockExtendedErr {
    /// `ee_errno`.
    pub errno: u32,
    /// `ee_origin`.
    pub origin: u8,
    /// `ee_type`.
    pub ty: u8,
    /// `ee_code`.
    pub code: u8,
    /// `ee_info`.
    pub info: u32,
    /// `ee_data`.
    pub data: u32,
}

/// What one `recvmsg(MSG_ERRQUEUE)` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrQueueMsg {
    /// The `IP_RECVERR` control message.
    pub ee: SockExtendedErr,
    /// The software time of the `SCM_TIMESTAMPING` control message
    /// (`ts[0]`): for a timestamp entry, when the socket has
    /// `SOF_TIMESTAMPING_SOFTWARE` at the time of the call; `None` means no
    /// such control message.
    pub tstamp: Option<Instant>,
    /// `skb->len`: the bytes of the packet the entry carries (0 for a
    /// zerocopy completion or an `SOF_TIMESTAMPING_OPT_TSONLY` timestamp).
    pub len: usize,
    /// Its first bytes, as many as the caller asked for.
    pub data: Vec<u8>,
}

impl ErrQueueMsg {
    /// `MSG_TRUNC`: the packet was longer than the caller's buffer.
    pub fn trunc(&self) -> bool {
        self.len > self.data.len()
    }

    /// The zerocopy completion this entry is, if it is one.
    pub fn zerocopy(&self) -> Option<ZcNotification> {
        (self.ee.origin == SO_EE_ORIGIN_ZEROCOPY).then_some(ZcNotification {
            lo: self.ee.info,
            hi: self.ee.data,
            copied: self.ee.code == SO_EE_CODE_ZEROCOPY_COPIED,
        })
    }
}

/// One entry: a zerocopy completion, or a timestamp with the packet it
/// loops back (none with `SOF_TIMESTAMPING_OPT_TSONLY`).
#[derive(Debug)]
enum ErrEntry {
    Zerocopy(ZcNotification),
    Tstamp {
        ee: SockExtendedErr,
        time: Instant,
        skb: Option<Skb>,
        charge: usize,
    },
}

/// `sk_error_queue`.
#[derive(Debug, Default)]
pub(crate) struct ErrQueue {
    q: VecDeque<ErrEntry>,
    /// The queue's share of `sk_rmem_alloc` (timestamp entries).
    charged: usize,
}

impl ErrQueue {
    /// Something waits to be read (`POLLERR`).
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Bytes charged to the receive buffer.
    pub(crate) fn charged(&self) -> usize {
        self.charged
    }

    /// A zerocopy completion for `id`: merged into the tail when that is a
    /// copied completion ending just before it.
    pub(crate) fn push_zerocopy(&mut self, id: u32) {
        if let Some(ErrEntry::Zerocopy(last)) = self.q.back_mut() {
            if last.copied && last.hi.wrapping_add(1) == id {
                last.hi = id;
                return;
            }
        }
        self.q.push_back(ErrEntry::Zerocopy(ZcNotification {
            lo: id,
            hi: id,
            copied: true,
        }));
    }

    /// A timestamp entry (already admitted by the caller's memory check).
    pub(crate) fn push_tstamp(&mut self, ee: SockExtendedErr, time: Instant, skb: Option<Skb>) {
        let charge = skb.as_ref().map_or(0, Skb::len) + ERR_SKB_OVERHEAD;
        self.charged += charge;
        self.q.push_back(ErrEntry::Tstamp {
            ee,
            time,
            skb,
            charge,
        });
    }

    /// `ip_recv_error` on the oldest entry: the message, with up to `max`
    /// bytes of the packet; `software` says whether the socket reports
    /// software timestamps now.
    fn pop(&mut self, max: usize, software: bool) -> Option<ErrQueueMsg> {
        Some(match self.q.pop_front()? {
            ErrEntry::Zerocopy(n) => ErrQueueMsg {
                ee: SockExtendedErr {
                    errno: 0,
                    origin: SO_EE_ORIGIN_ZEROCOPY,
                    ty: 0,
                    code: if n.copied {
                        SO_EE_CODE_ZEROCOPY_COPIED
                    } else {
                        0
                    },
                    info: n.lo,
                    data: n.hi,
                },
                tstamp: None,
                len: 0,
                data: Vec::new(),
            },
            ErrEntry::Tstamp {
                ee,
                time,
                skb,
                charge,
            } => {
                self.charged = self.charged.saturating_sub(charge);
                let bytes = skb.as_ref().map_or(&[][..], Skb::data);
                ErrQueueMsg {
                    ee,
                    tstamp: software.then_some(time),
                    len: bytes.len(),
                    data: bytes[..bytes.len().min(max)].to_vec(),
                }
            }
        })
    }
}

impl Stack {
    /// `recvmsg(MSG_ERRQUEUE)` (`ip_recv_error`): the oldest entry of the
    /// error queue, with at most `max` bytes of its packet; `EAGAIN` when
    /// the queue is empty (the call never waits).
    pub fn tcp_recv_errqueue(&mut self, id: SockId, max: usize) -> Result<ErrQueueMsg, Errno> {
        self.tcp_user(id)?;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let software = sk.tsflags & super::timestamping::SOF_TIMESTAMPING_SOFTWARE != 0;
        let m = sk.errq.pop(max, software).ok_or(Errno::EAGAIN);
        // sock_dequeue_err_skb: more waiting reports the error again.
        if m.is_ok() && !sk.errq.is_empty() {
            self.sk_wake(&mut sk, WakeKey::ErrorReport);
        }
        self.tcp_sock_done(sk);
        m
    }

    /// `sock_queue_err_skb()` for a timestamp: refused (and the skb freed,
    /// as `__skb_complete_tx_timestamp` does) when the receive buffer is
    /// full; else queued, and the socket told (`sk_error_report`).
    pub(crate) fn sock_queue_err_tstamp(
        &mut self,
        sk: &mut TcpSock,
        ee: SockExtendedErr,
        time: Instant,
        skb: Option<Skb>,
    ) {
        let charge = skb.as_ref().map_or(0, Skb::len) + ERR_SKB_OVERHEAD;
        if sk.rcv_queued + sk.errq.charged() + charge >= sk.rcvbuf {
            // kfree_skb(): no reason of its own.
            match skb {
                Some(s) => self.kfree_skb(s, crate::drop::DropReason::NotSpecified),
                None => self.drops.count(crate::drop::DropReason::NotSpecified),
            }
            return;
        }
        sk.errq.push_tstamp(ee, time, skb);
        self.sk_wake(sk, WakeKey::ErrorReport);
    }
}
