//! `splice()` from a TCP socket: `tcp_splice_read` and `tcp_read_sock`
//! (`net/ipv4/tcp.c`). The bytes are taken off the receive queue as a
//! read takes them (netpath copies where Linux hands over page
//! references); unlike `recv`, the read stops at the urgent mark whether or
//! not the urgent byte is in line, and never steps over it, so a splice at
//! the mark returns 0 — without waiting, as the queue is not empty (the
//! `tcp_splice_read` loop fix this models).

use super::sock::{TcpSock, TcpState};
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::time::Instant;

impl Stack {
    /// `splice(socket → pipe)` of up to `buf.len()` bytes (the room the
    /// pipe has): the bytes read. At the urgent mark with data queued, 0;
    /// at end of stream, 0; with nothing to read, `EAGAIN` (for a blocking
    /// socket: the call would wait, `tcp_splice_read`'s `sk_wait_data`).
    pub fn tcp_splice_read(
        &mut self,
        now: Instant,
        id: SockId,
        buf: &mut [u8],
        nonblock: bool,
    ) -> Result<usize, Errno> {
        self.set_now(now);
        self.tcp_user(id)?;
        let Some(mut sk) = self.tcp.take(id) else {
            return Err(Errno::EBADF);
        };
        let r = self.tcp_splice_read_sk(&mut sk, buf, nonblock);
        self.tcp_sock_done(sk);
        r
    }

    fn tcp_splice_read_sk(
        &mut self,
        sk: &mut TcpSock,
        buf: &mut [u8],
        nonblock: bool,
    ) -> Result<usize, Errno> {
        if sk.state == TcpState::Listen {
            return Err(Errno::ENOTCONN);
        }
        let n = self.tcp_read_sock(sk, buf);
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        // SOCK_DONE: a FIN, or the end (tcp_done) of a connection.
        let connected_once = sk.hashed || (sk.local.1 != 0 && sk.remote.1 != 0);
        if sk.fin_received || (sk.state == TcpState::Closed && connected_once) {
            return Ok(0);
        }
        if let Some(e) = sk.err.take() {
            return Err(e);
        }
        if sk.shutdown.rcv {
            return Ok(0);
        }
        if sk.state == TcpState::Closed {
            return Err(Errno::ENOTCONN);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        // Nothing read while the queue holds data: the urgent mark. Do not
        // loop waiting for data that is there.
        if !sk.rcv_queue.is_empty() {
            return Ok(0);
        }
        Err(Errno::EAGAIN)
    }

    /// `tcp_read_sock()` with a copying actor: in-order bytes from
    /// `copied_seq`, each consumed skb freed, stopping at the urgent mark.
    pub(crate) fn tcp_read_sock(&mut self, sk: &mut TcpSock, buf: &mut [u8]) -> usize {
        let mut copied = 0usize;
        while copied < buf.len() {
            let Some(front) = sk.rcv_queue.front_mut() else {
                break;
            };
            let mut len = front.len().min(buf.len() - copied);
            // Stop reading at a patch of urgent data.
            if sk.urg_data.is_set() {
                let off = sk.urg_seq.0.wrapping_sub(sk.copied_seq.0) as usize;
                len = len.min(off);
                if len == 0 {
                    break;
                }
            }
            buf[copied..copied + len].copy_from_slice(&front.data()[..len]);
            if len == front.len() {
                if let Some(skb) = sk.rcv_queue.pop_front() {
                    self.tracer.skb(self.now, "tcp_read_sock", &skb);
                    self.consume_skb(skb);
                }
            } else {
                let _ = front.pull(len);
            }
            copied += len;
            sk.copied_seq += len as u32;
            sk.rcv_queued = sk.rcv_queued.saturating_sub(len);
        }
        self.tcp_rcv_space_adjust(sk);
        if copied > 0 {
            self.tcp_cleanup_rbuf(sk, copied);
        }
        copied
    }
}
