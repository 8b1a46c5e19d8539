//! TCP's socket wakeups and writeability (`tcp_data_ready`,
//! `tcp_check_space` → `tcp_new_space` → `sk_stream_write_space`,
//! `sk_state_change`, `__sk_stream_is_writeable`).
//!
//! A wakeup is recorded on the socket with a stamp of the stack's wakeup
//! counter (see [`crate::sock::wait`]); epoll compares stamps. As in Linux,
//! send space wakes a writer only when it is worth it: after a writer found
//! the buffer full (`SOCK_NOSPACE`, set by a write that could not queue
//! everything or by a poll that found the socket not writeable), and only
//! once the socket is writeable again by the wakeup's own test: free space
//! at least half of what is queued, and the unsent bytes, *doubled*, under
//! `TCP_NOTSENT_LOWAT`.

use super::sock::{Chrono, TcpSock};
use crate::sock::wait::WakeKey;
use crate::stack::Stack;

impl Stack {
    /// Wakes `sk`'s waiters for `key` (records the wakeup).
    pub(crate) fn sk_wake(&mut self, sk: &mut TcpSock, key: WakeKey) {
        self.tcp.wake_seq += 1;
        sk.wake.record(key, self.tcp.wake_seq);
    }

    /// `tcp_data_ready()`: in-order data (or the FIN) reached the receive
    /// queue.
    pub(crate) fn tcp_data_ready(&mut self, sk: &mut TcpSock) {
        if sk.rcv_queued > 0 || sk.fin_received {
            self.sk_wake(sk, WakeKey::DataReady);
        }
    }

    /// `tcp_notsent_lowat()`: the socket's `TCP_NOTSENT_LOWAT`, else the
    /// sysctl.
    pub(crate) fn tcp_notsent_lowat(&self, sk: &TcpSock) -> u32 {
        sk.notsent_lowat.unwrap_or(self.tcp.settings.notsent_lowat)
    }

    /// `__sk_stream_memory_free(sk, wake)`: the send buffer is not full and
    /// the unsent bytes, shifted left by `wake`, stay under the low-water
    /// mark (a wakeup or a poll asks for twice the margin a write needs).
    pub(crate) fn sk_stream_memory_free(&self, sk: &TcpSock, wake: u32) -> bool {
        if sk.wmem_queued >= sk.sndbuf {
            return false;
        }
        (u64::from(sk.notsent_bytes()) << wake) < u64::from(self.tcp_notsent_lowat(sk))
    }

    /// `__sk_stream_is_writeable(sk, wake)`: free space at least half of
    /// what is queued (`sk_stream_wspace >= sk_stream_min_wspace`) and
    /// [`Stack::sk_stream_memory_free`].
    pub(crate) fn sk_stream_is_writeable(&self, sk: &TcpSock, wake: u32) -> bool {
        sk.sndbuf.saturating_sub(sk.wmem_queued) >= sk.wmem_queued / 2
            && self.sk_stream_memory_free(sk, wake)
    }

    /// `sk_stream_write_space()`: wakes writers (`EPOLLOUT`) if the socket
    /// is writeable, and clears `SOCK_NOSPACE`.
    pub(crate) fn sk_stream_write_space(&mut self, sk: &mut TcpSock) {
        if sk.orphan || sk.parent.is_some() || !self.sk_stream_is_writeable(sk, 1) {
            return;
        }
        sk.nospace = false;
        self.sk_wake(sk, WakeKey::WriteSpace);
    }

    /// `tcp_check_space()`: after ACKs freed space or data went out, a
    /// writer that found the buffer full gets the send buffer grown with
    /// the window (`tcp_new_space`) and is woken if it can write again.
    pub(crate) fn tcp_check_space(&mut self, sk: &mut TcpSock) {
        if !sk.nospace {
            return;
        }
        self.tcp_new_space(sk);
        self.sk_stream_write_space(sk);
        if !sk.nospace {
            sk.chrono_stop(Chrono::SndbufLimited, self.now);
        }
    }
}

impl Stack {
    /// `poll()` as a waiter does it (`tcp_poll` with a poll table): like
    /// [`Stack::tcp_poll`], and a socket found not writeable is marked
    /// `SOCK_NOSPACE` so that freed space wakes the waiter.
    pub fn tcp_poll_wait(&mut self, id: crate::sock::SockId) -> super::PollEvents {
        let ev = self.tcp_poll(id);
        let writeable_test = !ev.writable
            && self
                .tcp
                .get(id)
                .is_some_and(|sk| sk.state.can_send() && !sk.shutdown.snd && sk.listen.is_none());
        if writeable_test {
            if let Some(sk) = self.tcp.get_mut(id) {
                sk.nospace = true;
            }
        }
        ev
    }

    /// `sk_stream_memory_free(sk)`: whether a write would queue more now
    /// (what a writer blocked for memory checks each time it is woken);
    /// `false` for an unknown handle.
    pub fn tcp_stream_memory_free(&self, id: crate::sock::SockId) -> bool {
        self.tcp
            .get(id)
            .is_some_and(|sk| self.sk_stream_memory_free(sk, 0))
    }

    /// The stamp of the latest socket wakeup in this stack (0: none yet).
    pub fn tcp_wake_stamp(&self) -> u64 {
        self.tcp.wake_seq
    }

    /// The latest wakeups of a socket the application holds; `None` for
    /// an unknown (or closed) handle.
    pub fn tcp_wakeups(&self, id: crate::sock::SockId) -> Option<crate::sock::wait::Wakeups> {
        self.tcp
            .get(id)
            .filter(|s| !s.orphan && s.parent.is_none())
            .map(|s| s.wake)
    }
}
