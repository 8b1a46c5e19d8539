//! `tcp_sendmsg` (`net/ipv4/tcp.c`), seed egress steps 1–2: the user's
//! bytes copied once into pooled skbs on the write queue, in MSS pieces
//! grouped as Linux's skbs of `size_goal` bytes, with Linux's memory checks
//! (send buffer, `TCP_NOTSENT_LOWAT`), PSH marks (`tcp_push`,
//! `forced_push`), the `MAX_SKB_FRAGS` limit of zerocopy skbs, and the push
//! of what may go.

use netpath_wire::tcp::TcpSeqNumber;

use super::api::SendFlags;
use super::output::{fresh_seg, Nonagle};
use super::sock::{TcpState, SEG_EOR, SEG_FIN, SEG_PSH};
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Instant;

/// `MAX_SKB_FRAGS`: page fragments per skb (`sysctl_max_skb_frags`).
const MAX_SKB_FRAGS: usize = 17;

impl Stack {
    /// `send()` / `write()` (`tcp_sendmsg`): copies what the send buffer
    /// takes, returns how much; `EAGAIN` when full, `EPIPE` after
    /// shutdown or on a connection that is not (or no longer) there.
    pub fn tcp_send(
        &mut self,
        now: Instant,
        id: SockId,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<usize, Errno> {
        self.set_now(now);
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let r = self.tcp_sendmsg(&mut sk, data, &[], flags);
        self.tcp_sock_done(sk);
        r
    }

    /// `sendmsg()` with its iovec: `iov` holds the elements' lengths
    /// (summing to `data.len()`). It matters for `MSG_ZEROCOPY` on an
    /// `SO_ZEROCOPY` socket, where each element is pinned as its own page
    /// fragment and an skb holds at most `MAX_SKB_FRAGS` of them: a full
    /// skb is marked PSH and the next element starts a new one. Otherwise
    /// as [`Stack::tcp_send`].
    pub fn tcp_send_iov(
        &mut self,
        now: Instant,
        id: SockId,
        data: &[u8],
        iov: &[usize],
        flags: SendFlags,
    ) -> Result<usize, Errno> {
        if iov.iter().sum::<usize>() != data.len() {
            return Err(Errno::EINVAL);
        }
        self.set_now(now);
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let r = self.tcp_sendmsg(&mut sk, data, iov, flags);
        self.tcp_sock_done(sk);
        r
    }

    fn tcp_sendmsg(
        &mut self,
        sk: &mut super::sock::TcpSock,
        data: &[u8],
        iov: &[usize],
        flags: SendFlags,
    ) -> Result<usize, Errno> {
        if sk.orphan || sk.parent.is_some() {
            return Err(Errno::EBADF);
        }
        if let Some(e) = sk.err.take() {
            return Err(e);
        }
        if sk.shutdown.snd {
            return Err(Errno::EPIPE);
        }
        match sk.state {
            TcpState::Established | TcpState::CloseWait => {}
            // tcp_passive_fast_open: a Fast Open child may send at once.
            TcpState::SynRecv if sk.fo.passive_child => {}
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::EAGAIN),
            _ => return Err(Errno::EPIPE),
        }
        self.tracer
            .event_detail(self.now, "tcp_sendmsg", None, data.len() as u64);
        if data.is_empty() {
            // Nothing to copy: 0, and nothing pushed.
            return Ok(0);
        }
        self.tcp_slow_start_after_idle_check(sk);
        let goal = sk.mss_cache.max(1) as usize;
        let size_goal = Self::tcp_xmit_size_goal(sk);
        let mut copied = 0usize;
        let lowat = sk.notsent_lowat.unwrap_or(self.tcp.settings.notsent_lowat);
        // Where each pinned fragment ends (zerocopy only: copied bytes
        // coalesce into the socket's page fragment).
        // A new skb began and its first segment is not made yet: it will
        // carry the skb's head (super::wmem).
        let mut head_pending = false;
        let frag_ends: Vec<usize> = if flags.zerocopy && sk.zerocopy {
            iov.iter()
                .scan(0usize, |end, l| {
                    *end += l;
                    Some(*end)
                })
                .filter(|e| *e > 0)
                .collect()
        } else {
            Vec::new()
        };
        while copied < data.len() {
            // Linux fills an skb of `size_goal` bytes (a GSO packet to be)
            // before it checks for memory again: the unsent tail, from
            // where it starts (or from snd_nxt once part of it is sent),
            // may grow to size_goal without a check.
            let tail_room = |sk: &super::sock::TcpSock| {
                let eor = sk
                    .write_queue
                    .back()
                    .is_some_and(|t| t.flags & SEG_EOR != 0);
                if sk.write_seq == sk.snd_nxt || eor {
                    return 0;
                }
                // The tail skb's unsent part starts at vskb_start if that
                // lies within [snd_nxt, write_seq), else at snd_nxt.
                let start = if sk.vskb_start.after(sk.snd_nxt) && !sk.vskb_start.after(sk.write_seq)
                {
                    sk.vskb_start
                } else {
                    sk.snd_nxt
                };
                (start + size_goal).0.wrapping_sub(sk.write_seq.0) as i32
            };
            if tail_room(sk) <= 0 && copied > 0 {
                // A full skb: push it (tcp_push_one), marked PSH first when
                // more than half the peer's largest window was written
                // since the last push (forced_push); the push may free
                // room in the tail again.
                if Self::forced_push(sk) {
                    Self::tcp_mark_push(sk);
                    self.tcp_write_xmit(sk, Nonagle::Push);
                } else {
                    self.tcp_write_xmit(sk, Nonagle::Normal);
                }
            }
            // A new pinned fragment in an skb that has MAX_SKB_FRAGS: the
            // skb is marked PSH and the fragment starts a new one.
            let new_frag =
                !frag_ends.is_empty() && (copied == 0 || frag_ends.binary_search(&copied).is_ok());
            let frags_full =
                new_frag && tail_room(sk) > 0 && usize::from(sk.vskb_frags) >= MAX_SKB_FRAGS;
            if frags_full {
                Self::tcp_mark_push(sk);
            }
            // Linux's PSH mark belongs to the skb, whose end is the end of
            // its last segment here: when this copy extends the tail skb,
            // the mark moves to the new end, or is dropped by the first
            // copy of a call (the call pushes again when it is done).
            let psh_at = (tail_room(sk) > 0 && !frags_full)
                .then(|| sk.write_queue.back())
                .flatten()
                .filter(|t| t.flags & SEG_PSH != 0)
                .map(|t| t.seq);
            let copied_before = copied;
            if tail_room(sk) <= 0 || frags_full {
                // new_segment: sk_stream_memory_free (the send buffer, and
                // TCP_NOTSENT_LOWAT).
                if sk.wmem_queued >= sk.sndbuf || sk.notsent_bytes() >= lowat {
                    break;
                }
                sk.vskb_start = sk.write_seq;
                sk.vskb_frags = 0;
                head_pending = true;
            }
            if new_frag {
                sk.vskb_frags = sk.vskb_frags.saturating_add(1);
            }
            // A copy stays within its fragment.
            let piece_end = frag_ends
                .iter()
                .copied()
                .find(|e| *e > copied)
                .unwrap_or(data.len());
            let rest = &data[copied..piece_end];
            // Fill the tail segment first (it is unsent: on the write
            // queue), unless a new skb starts here.
            if let Some(tail) = sk.write_queue.back_mut().filter(|_| !frags_full) {
                let room = goal.saturating_sub(tail.skb.len()).min(tail.skb.tailroom());
                if room > 0 && tail.flags & (SEG_FIN | SEG_EOR) == 0 {
                    let n = room.min(rest.len());
                    if tail.skb.put_slice(&rest[..n]).is_ok() {
                        tail.end_seq += n as u32;
                        sk.write_seq += n as u32;
                        sk.wmem_queued += n;
                        copied += n;
                        Self::move_psh_mark(sk, psh_at, copied_before > 0);
                        continue;
                    }
                }
            }
            let n = goal.min(rest.len());
            // Allocate an sk_buff; the one copy of the payload.
            let Ok(mut skb) = self.pool.alloc(goal) else {
                break;
            };
            if skb.put_slice(&rest[..n]).is_err() {
                break;
            }
            self.tracer.skb(self.now, "tcp_sendmsg", &skb);
            let mut seg = fresh_seg(sk.write_seq, skb, 0, self.now);
            if std::mem::take(&mut head_pending) {
                sk.wmem_charge_head(&mut seg);
            }
            sk.write_seq += n as u32;
            sk.wmem_queued += n;
            copied += n;
            // Add the skb to the socket's write queue.
            sk.write_queue.push_back(seg);
            Self::move_psh_mark(sk, psh_at, copied_before > 0);
        }
        if copied > 0 {
            sk.chrono_start(super::sock::Chrono::Busy, self.now);
            if flags.zerocopy && sk.zerocopy {
                Self::tcp_zerocopy_sent(sk);
            }
            // tcp_tx_timestamp, before the push.
            if sk.tsflags != 0 {
                self.tcp_tx_timestamp(sk);
            }
        }
        if copied < data.len() {
            // Waiting for send buffer room (sk_stream_wait_memory): freed
            // space must wake the writer (SOCK_NOSPACE).
            sk.nospace = true;
            sk.chrono_start(super::sock::Chrono::SndbufLimited, self.now);
        }
        if copied == 0 {
            return Err(Errno::EAGAIN);
        }
        // tcp_push: PSH on the tail unless more follows (or a push is
        // forced anyway).
        if !flags.more || Self::forced_push(sk) {
            Self::tcp_mark_push(sk);
        }
        if let Some(tail) = sk.write_queue.back_mut() {
            if flags.eor {
                tail.flags |= SEG_EOR;
            }
        }
        // Process the write queue (tcp_push).
        let mode = if flags.more {
            Nonagle::Cork
        } else {
            Nonagle::Normal
        };
        self.tcp_write_xmit(sk, mode);
        Ok(copied)
    }

    /// `forced_push()`: more than half the peer's largest window was
    /// written since the last PSH mark.
    fn forced_push(sk: &super::sock::TcpSock) -> bool {
        sk.write_seq.after(sk.pushed_seq + (sk.max_window >> 1))
    }

    /// `tcp_mark_push()`: PSH on the tail skb (its last segment), and the
    /// push point moves to `write_seq`.
    fn tcp_mark_push(sk: &mut super::sock::TcpSock) {
        if let Some(tail) = sk.write_queue.back_mut() {
            tail.flags |= SEG_PSH;
            sk.pushed_seq = sk.write_seq;
        }
    }

    /// After a copy that extended the tail skb: the PSH mark the segment
    /// at `from` had moves to the last segment (`keep`), or is dropped.
    fn move_psh_mark(sk: &mut super::sock::TcpSock, from: Option<TcpSeqNumber>, keep: bool) {
        let Some(seq) = from else { return };
        if let Some(old) = sk.write_queue.iter_mut().rev().find(|t| t.seq == seq) {
            old.flags &= !SEG_PSH;
        }
        if keep {
            if let Some(tail) = sk.write_queue.back_mut() {
                tail.flags |= SEG_PSH;
            }
        }
    }

    /// `tcp_xmit_size_goal()`: the bytes one skb (a GSO packet to be) takes
    /// before the next memory check: half the peer's largest window
    /// (`tcp_bound_to_half_wnd`), at most 64 KiB, in whole MSS.
    fn tcp_xmit_size_goal(sk: &super::sock::TcpSock) -> u32 {
        let mss = sk.mss_cache.max(1);
        let mut goal = 65536 - 1 - 320;
        let cutoff = if sk.max_window > 536 {
            sk.max_window >> 1
        } else {
            sk.max_window
        };
        if cutoff > 0 && goal > cutoff {
            goal = cutoff.max(68 - 32);
        }
        (goal / mss * mss).max(mss)
    }
}
