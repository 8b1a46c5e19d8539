//! epoll (`fs/eventpoll.c`) over the stack's TCP sockets.
//!
//! An [`Epoll`] is an interest list and a ready list. As in Linux, a socket
//! joins the ready list when it is added or modified while ready, or when
//! it is *woken* for an event it watches (new data, send space, a state
//! change: see [`crate::sock::wait`]); `epoll_wait` then polls each ready
//! socket and reports what it finds. A level-triggered socket that reported
//! something stays on the list; an edge-triggered one (`EPOLLET`) leaves it
//! until the next wakeup, whatever its level; `EPOLLONESHOT` disables the
//! item after one report until `EPOLL_CTL_MOD`.
//!
//! The callbacks Linux runs at wakeup time are replaced by stamps: each
//! item keeps the stamp of the last wakeup it has taken into account, and
//! every call first takes in the sockets woken since (ordered by their
//! latest wakeup). The epoll holds no reference into the stack; every call
//! takes the [`Stack`] it watches.

use std::collections::VecDeque;

use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::tcp::PollEvents;

/// `EPOLLIN`.
pub const EPOLLIN: u32 = 0x001;
/// `EPOLLPRI`.
pub const EPOLLPRI: u32 = 0x002;
/// `EPOLLOUT`.
pub const EPOLLOUT: u32 = 0x004;
/// `EPOLLERR` (always watched).
pub const EPOLLERR: u32 = 0x008;
/// `EPOLLHUP` (always watched).
pub const EPOLLHUP: u32 = 0x010;
/// `EPOLLRDNORM`.
pub const EPOLLRDNORM: u32 = 0x040;
/// `EPOLLWRNORM`.
pub const EPOLLWRNORM: u32 = 0x100;
/// `EPOLLRDHUP`.
pub const EPOLLRDHUP: u32 = 0x2000;
/// `EPOLLEXCLUSIVE`: one waiter per wakeup (only at `EPOLL_CTL_ADD`).
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `EPOLLWAKEUP`.
pub const EPOLLWAKEUP: u32 = 1 << 29;
/// `EPOLLONESHOT`.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLET`: edge-triggered.
pub const EPOLLET: u32 = 1 << 31;
/// Flags about the item, not events (`EP_PRIVATE_BITS`).
const PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

/// `struct epoll_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollEvent {
    /// Event bits (interest in `epoll_ctl`, what happened from
    /// `epoll_wait`).
    pub events: u32,
    /// The caller's data, returned as given.
    pub data: u64,
}

/// `epoll_ctl` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpollOp {
    /// `EPOLL_CTL_ADD`.
    Add,
    /// `EPOLL_CTL_DEL`.
    Del,
    /// `EPOLL_CTL_MOD`.
    Mod,
}

/// One watched socket (`struct epitem`).
#[derive(Debug, Clone)]
struct EpItem {
    sock: SockId,
    /// Interest, with `EPOLLERR | EPOLLHUP` and the private flags.
    events: u32,
    data: u64,
    /// On the ready list (`rdllink` linked).
    ready: bool,
    /// The latest wakeup stamp already taken into account.
    seen: u64,
}

/// An epoll instance (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Epoll {
    items: Vec<EpItem>,
    /// The ready list, in order (indices into `items` are unstable, so
    /// sockets).
    rdllist: VecDeque<SockId>,
}

/// The poll bits of [`PollEvents`] as epoll reports them.
pub fn poll_bits(ev: PollEvents) -> u32 {
    let mut m = 0;
    if ev.readable {
        m |= EPOLLIN | EPOLLRDNORM;
    }
    if ev.writable {
        m |= EPOLLOUT | EPOLLWRNORM;
    }
    if ev.rdhup {
        m |= EPOLLRDHUP;
    }
    if ev.hup {
        m |= EPOLLHUP;
    }
    if ev.err {
        m |= EPOLLERR;
    }
    m
}

impl Epoll {
    /// `epoll_create()`: an empty instance.
    pub fn new() -> Epoll {
        Epoll::default()
    }

    /// How many sockets are watched.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no socket is watched.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn find(&self, sock: SockId) -> Option<usize> {
        self.items.iter().position(|i| i.sock == sock)
    }

    /// `ep_item_poll()`: what the socket has of the item's interest (the
    /// poll registers a writer that finds no room, as `tcp_poll` does).
    fn item_poll(stack: &mut Stack, it: &EpItem) -> u32 {
        poll_bits(stack.tcp_poll_wait(it.sock)) & it.events
    }

    /// `ep_poll_callback()` for the wakeups since each item last looked:
    /// items woken for what they watch join the ready list, oldest
    /// wakeup first.
    fn take_wakeups(&mut self, stack: &Stack) {
        let now = stack.tcp_wake_stamp();
        let mut woken: Vec<(u64, usize)> = Vec::new();
        for (i, it) in self.items.iter_mut().enumerate() {
            let enabled = it.events & !PRIVATE_BITS != 0;
            if !it.ready && enabled {
                if let Some(w) = stack.tcp_wakeups(it.sock) {
                    if let Some(stamp) = w.woken_since(it.seen, it.events) {
                        woken.push((stamp, i));
                    }
                }
            }
            it.seen = now;
        }
        woken.sort_unstable();
        for (_, i) in woken {
            self.items[i].ready = true;
            self.rdllist.push_back(self.items[i].sock);
        }
    }

    /// `epoll_ctl()` on a socket of `stack`.
    pub fn ctl(
        &mut self,
        stack: &mut Stack,
        op: EpollOp,
        sock: SockId,
        ev: EpollEvent,
    ) -> Result<(), Errno> {
        if stack.tcp_wakeups(sock).is_none() {
            return Err(Errno::EBADF);
        }
        if ev.events & EPOLLEXCLUSIVE != 0
            && (op == EpollOp::Mod || ev.events & (EPOLLONESHOT | EPOLLWAKEUP) != 0)
        {
            return Err(Errno::EINVAL);
        }
        self.take_wakeups(stack);
        let pos = self.find(sock);
        match (op, pos) {
            (EpollOp::Add, Some(_)) => Err(Errno::EEXIST),
            (EpollOp::Del | EpollOp::Mod, None) => Err(Errno::ENOENT),
            (EpollOp::Del, Some(i)) => {
                self.items.remove(i);
                self.rdllist.retain(|s| *s != sock);
                Ok(())
            }
            (EpollOp::Add, None) => {
                let it = EpItem {
                    sock,
                    events: ev.events | EPOLLERR | EPOLLHUP,
                    data: ev.data,
                    ready: false,
                    seen: stack.tcp_wake_stamp(),
                };
                let ready = Self::item_poll(stack, &it) != 0;
                self.items.push(it);
                if ready {
                    self.mark_ready(self.items.len() - 1);
                }
                Ok(())
            }
            (EpollOp::Mod, Some(i)) => {
                if self.items[i].events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                self.items[i].events = ev.events | EPOLLERR | EPOLLHUP;
                self.items[i].data = ev.data;
                if Self::item_poll(stack, &self.items[i]) != 0 {
                    self.mark_ready(i);
                }
                Ok(())
            }
        }
    }

    fn mark_ready(&mut self, i: usize) {
        if !self.items[i].ready {
            self.items[i].ready = true;
            self.rdllist.push_back(self.items[i].sock);
        }
    }

    /// `epoll_wait()` without waiting: up to `maxevents` events (`EINVAL`
    /// for 0). The caller waits (in virtual time) while this is empty.
    pub fn wait(&mut self, stack: &mut Stack, maxevents: usize) -> Result<Vec<EpollEvent>, Errno> {
        if maxevents == 0 {
            return Err(Errno::EINVAL);
        }
        self.take_wakeups(stack);
        let mut out = Vec::new();
        let mut again = Vec::new();
        while out.len() < maxevents {
            let Some(sock) = self.rdllist.pop_front() else {
                break;
            };
            let Some(i) = self.find(sock) else { continue };
            self.items[i].ready = false;
            let revents = Self::item_poll(stack, &self.items[i]);
            if revents == 0 {
                continue;
            }
            let it = &mut self.items[i];
            out.push(EpollEvent {
                events: revents,
                data: it.data,
            });
            if it.events & EPOLLONESHOT != 0 {
                it.events &= PRIVATE_BITS;
            } else if it.events & EPOLLET == 0 {
                // Level-triggered: back on the list for the next call.
                it.ready = true;
                again.push(sock);
            }
        }
        self.rdllist.extend(again);
        Ok(out)
    }

    /// The socket is gone (its descriptor closed): stop watching it, as
    /// closing a file removes it from every epoll.
    pub fn forget(&mut self, sock: SockId) {
        self.items.retain(|i| i.sock != sock);
        self.rdllist.retain(|s| *s != sock);
    }
}
