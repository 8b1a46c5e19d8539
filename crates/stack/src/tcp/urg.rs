//! TCP urgent data as Linux keeps it (RFC 9293 §3.8.5, RFC 6093): one
//! urgent byte per connection, taken out of band. Mirrors `tcp_check_urg`
//! and `tcp_urg` (`tcp_input.c`: the urgent pointer of an arriving
//! segment, the byte copied when its segment arrives), `tcp_recv_urg`
//! (`tcp.c`: `recv(MSG_OOB)`), `SIOCATMARK` (`tcp_ioctl`), and the mark's
//! effect on reads: `tcp_recvmsg` stops before the mark when it has read
//! something and steps over the urgent byte unless `SO_OOBINLINE`; `poll`
//! wants one byte more than the urgent byte at the read head
//! (`tcp_poll`), and reports `POLLPRI` while the byte waits to be read.
//! `tcp_read_sock` (splice) stops at the mark: [`super::splice`].
//!
//! The urgent pointer points just past the urgent byte (BSD's reading,
//! which RFC 6093 made the rule) unless `tcp_stdurg` is set. SIGURG is not
//! raised (there are no processes); the trace shows `sk_send_sigurg`.

use netpath_wire::tcp::TcpSeqNumber;

use super::input::Seg;
use super::sock::{TcpSock, TcpState};
use crate::skb::Skb;
use crate::sock::wait::WakeKey;
use crate::sock::{Errno, SockId};
use crate::stack::Stack;

/// `tp->urg_data`: Linux's `TCP_URG_NOTYET`, `TCP_URG_VALID | byte`,
/// `TCP_URG_READ`, or 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UrgData {
    /// No urgent data (0).
    #[default]
    None,
    /// The pointer arrived; the segment with the byte has not
    /// (`TCP_URG_NOTYET`).
    NotYet,
    /// The urgent byte, not read yet (`TCP_URG_VALID`).
    Valid(u8),
    /// Read with `MSG_OOB` (`TCP_URG_READ`); the mark stays until the
    /// stream passes it.
    Read,
}

impl UrgData {
    /// `tp->urg_data != 0`: a mark is set.
    pub(crate) fn is_set(self) -> bool {
        self != UrgData::None
    }
}

/// What `recv(MSG_OOB)` returns (`tcp_recv_urg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OobRecv {
    /// The urgent byte (`MSG_OOB` in `msg_flags`).
    Byte(u8),
    /// End of stream: the connection is closed or shut down for reading.
    Eof,
}

/// How far a read from `seq` may go in `avail` bytes (`tcp_recvmsg`'s
/// "Do we have urgent data here?"): `(skip, take)`, the urgent byte to
/// step over (0 or 1) and the bytes to copy after it.
pub(crate) fn urg_cut(sk: &TcpSock, seq: TcpSeqNumber, avail: usize) -> (usize, usize) {
    if !sk.urg_data.is_set() {
        return (0, avail);
    }
    let off = sk.urg_seq.0.wrapping_sub(seq.0) as usize;
    if off >= avail {
        (0, avail)
    } else if off > 0 {
        (0, off)
    } else if sk.urg_inline {
        (0, avail)
    } else {
        (1, avail - 1)
    }
}

/// The read head sits on the urgent byte, kept out of band: `tcp_poll`
/// then wants one byte more before it says readable.
pub(crate) fn at_oob_mark(sk: &TcpSock) -> bool {
    sk.urg_data.is_set() && sk.urg_seq == sk.copied_seq && !sk.urg_inline
}

impl Stack {
    /// `tcp_check_urg()`: a segment with URG set; its pointer, if new,
    /// becomes the mark (`TCP_URG_NOTYET` until the byte arrives).
    fn tcp_check_urg(&mut self, sk: &mut TcpSock, seg: &Seg) {
        let mut ptr = u32::from(seg.urg_ptr);
        if ptr > 0 && !self.tcp.settings.stdurg {
            ptr -= 1;
        }
        let ptr = seg.seq + ptr;
        // Urgent data already seen and read; a pointer into data already
        // received (not replayed); not newer than the mark we have.
        if sk.copied_seq.after(ptr) || ptr.before(sk.rcv_nxt) {
            return;
        }
        if sk.urg_data.is_set() && !ptr.after(sk.urg_seq) {
            return;
        }
        self.tracer
            .event_detail(self.now, "sk_send_sigurg", None, u64::from(sk.id.0));
        // The previous urgent byte, out of band, is at the read head and
        // more follows it: step over it now, as no read will (the mark
        // moves on).
        if sk.urg_seq == sk.copied_seq
            && sk.urg_data.is_set()
            && !sk.urg_inline
            && sk.copied_seq != sk.rcv_nxt
        {
            sk.copied_seq += 1;
            sk.rcv_queued = sk.rcv_queued.saturating_sub(1);
            if let Some(front) = sk.rcv_queue.front_mut() {
                let _ = front.pull(1);
                if front.is_empty() {
                    if let Some(skb) = sk.rcv_queue.pop_front() {
                        self.consume_skb(skb);
                    }
                }
            }
        }
        sk.urg_data = UrgData::NotYet;
        sk.urg_seq = ptr;
    }

    /// `tcp_urg()`, before the segment's text is queued: a new urgent
    /// pointer, and the urgent byte copied if this segment carries it
    /// (`skb` holds the payload).
    pub(crate) fn tcp_urg(&mut self, sk: &mut TcpSock, seg: &Seg, skb: &Skb) {
        if seg.flags.urg() {
            self.tcp_check_urg(sk, seg);
        }
        if sk.urg_data != UrgData::NotYet {
            return;
        }
        let off = sk
            .urg_seq
            .0
            .wrapping_sub(seg.seq.0)
            .wrapping_sub(u32::from(seg.flags.syn())) as usize;
        if let Some(&b) = skb.data().get(off) {
            sk.urg_data = UrgData::Valid(b);
            if !sk.orphan {
                self.sk_wake(sk, WakeKey::DataReady);
            }
        }
    }

    /// `recv(MSG_OOB)` (`tcp_recv_urg`): the urgent byte, once (`peek`
    /// leaves it). `EINVAL` with none to read (none arrived, already read,
    /// or `SO_OOBINLINE`), `ENOTCONN` before a connection, `EAGAIN` while
    /// the byte has not arrived (this never waits, blocking socket or not).
    pub fn tcp_recv_oob(&mut self, id: SockId, peek: bool) -> Result<OobRecv, Errno> {
        let sk = self.tcp_user_mut(id)?;
        if sk.state == TcpState::Listen {
            return Err(Errno::ENOTCONN);
        }
        if sk.urg_inline || matches!(sk.urg_data, UrgData::None | UrgData::Read) {
            return Err(Errno::EINVAL);
        }
        // SOCK_DONE: the connection got to its end (a FIN, or tcp_done
        // of a connection that was there), as tcp_recvmsg reads it.
        let done = sk.fin_received || sk.hashed || (sk.local.1 != 0 && sk.remote.1 != 0);
        if sk.state == TcpState::Closed && !done {
            return Err(Errno::ENOTCONN);
        }
        if let UrgData::Valid(b) = sk.urg_data {
            if !peek {
                sk.urg_data = UrgData::Read;
            }
            return Ok(OobRecv::Byte(b));
        }
        if sk.state == TcpState::Closed || sk.shutdown.rcv {
            return Ok(OobRecv::Eof);
        }
        Err(Errno::EAGAIN)
    }

    /// `ioctl(SIOCATMARK)`: the next byte to read is the urgent mark.
    pub fn tcp_sockatmark(&self, id: SockId) -> Result<bool, Errno> {
        let sk = self.tcp_user(id)?;
        Ok(sk.urg_data.is_set() && sk.urg_seq == sk.copied_seq)
    }
}
