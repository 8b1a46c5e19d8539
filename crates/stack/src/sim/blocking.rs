//! Blocking socket calls for code running in the simulator: the thin
//! handle over the sans-IO socket API (which returns `EAGAIN` /
//! `EINPROGRESS` rather than waiting) that lets tests and the demo write
//! ordinary client/server code. A call that would block runs the simulated
//! world event by event until it can complete, or until its time limit
//! passes in virtual time (`ETIMEDOUT`; a real blocking call would wait
//! forever) or the world goes idle with nothing left to wait for
//! (`EAGAIN`).

use core::net::Ipv4Addr;

use super::{NodeId, Sim, SimHost};
use crate::sock::{Errno, SockId};
use crate::stack::Stack;
use crate::tcp::{PollEvents, SendFlags};
use crate::time::{Duration, Instant};

/// Runs `f` on the stack of the host `node` at the world's time, then lets
/// the host send what `f` queued.
///
/// # Panics
/// If `node` is not a [`SimHost`] (a programming error in the test).
pub fn with_stack<R>(sim: &mut Sim, node: NodeId, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
    sim.with_node::<SimHost, R>(node, |h, now| f(&mut h.stack, now))
        .expect("with_stack: the node is not a SimHost")
}

/// The stack of `node`, read only.
///
/// # Panics
/// If `node` is not a [`SimHost`].
pub fn stack(sim: &Sim, node: NodeId) -> &Stack {
    &sim.node::<SimHost>(node)
        .expect("stack: the node is not a SimHost")
        .stack
}

/// Blocking TCP calls on the sockets of one simulated host.
#[derive(Debug, Clone, Copy)]
pub struct Blocking {
    pub node: NodeId,
    /// How long (virtual time) a call may wait.
    pub limit: Duration,
}

impl Blocking {
    pub fn new(node: NodeId) -> Blocking {
        Blocking {
            node,
            limit: Duration::from_secs(600),
        }
    }

    pub fn with_limit(node: NodeId, limit: Duration) -> Blocking {
        Blocking { node, limit }
    }

    /// Steps the world until `ready` holds for the socket's poll state.
    fn wait(
        &self,
        sim: &mut Sim,
        id: SockId,
        ready: impl Fn(PollEvents) -> bool,
    ) -> Result<(), Errno> {
        let deadline = sim.now() + self.limit;
        loop {
            if ready(stack(sim, self.node).tcp_poll(id)) {
                return Ok(());
            }
            match sim.next_event_time() {
                None => return Err(Errno::EAGAIN),
                Some(t) if t > deadline => {
                    sim.run_until(deadline);
                    return Err(Errno::ETIMEDOUT);
                }
                Some(_) => {
                    sim.step();
                }
            }
        }
    }

    /// A new socket.
    pub fn socket(&self, sim: &mut Sim) -> SockId {
        with_stack(sim, self.node, |s, _| s.tcp_socket())
    }

    /// `connect()` that returns once the handshake is done or failed.
    pub fn connect(
        &self,
        sim: &mut Sim,
        id: SockId,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), Errno> {
        match with_stack(sim, self.node, |s, now| s.tcp_connect(now, id, addr, port)) {
            Err(Errno::EINPROGRESS) | Err(Errno::EALREADY) => {}
            other => return other,
        }
        self.wait(sim, id, |e| e.writable || e.err || e.hup)?;
        with_stack(sim, self.node, |s, now| s.tcp_connect(now, id, addr, port))
    }

    /// A listening socket on `addr:port`.
    pub fn listen(
        &self,
        sim: &mut Sim,
        addr: Ipv4Addr,
        port: u16,
        backlog: u32,
    ) -> Result<SockId, Errno> {
        with_stack(sim, self.node, |s, _| {
            let id = s.tcp_socket();
            s.tcp_bind(id, addr, port)?;
            s.tcp_listen(id, backlog)?;
            Ok(id)
        })
    }

    /// `accept()` that waits for a connection.
    pub fn accept(&self, sim: &mut Sim, id: SockId) -> Result<(SockId, (Ipv4Addr, u16)), Errno> {
        loop {
            match with_stack(sim, self.node, |s, now| s.tcp_accept(now, id)) {
                Err(Errno::EAGAIN) => self.wait(sim, id, |e| e.readable || e.err)?,
                r => return r,
            }
        }
    }

    /// `write()` of all of `data`, waiting for send buffer room.
    pub fn write_all(&self, sim: &mut Sim, id: SockId, data: &[u8]) -> Result<(), Errno> {
        let mut off = 0;
        while off < data.len() {
            match with_stack(sim, self.node, |s, now| {
                s.tcp_send(now, id, &data[off..], SendFlags::default())
            }) {
                Ok(n) => off += n,
                Err(Errno::EAGAIN) => self.wait(sim, id, |e| e.writable || e.err || e.hup)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `read()`: at least one byte, or 0 at end of stream.
    pub fn read(&self, sim: &mut Sim, id: SockId, buf: &mut [u8]) -> Result<usize, Errno> {
        loop {
            match with_stack(sim, self.node, |s, now| s.tcp_recv(now, id, buf)) {
                Err(Errno::EAGAIN) => self.wait(sim, id, |e| e.readable || e.err || e.hup)?,
                r => return r,
            }
        }
    }

    /// Reads until end of stream, appending to `out`; returns the count.
    pub fn read_to_end(
        &self,
        sim: &mut Sim,
        id: SockId,
        out: &mut Vec<u8>,
    ) -> Result<usize, Errno> {
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = self.read(sim, id, &mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            out.extend_from_slice(&buf[..n]);
            total += n;
        }
    }

    /// `shutdown(SHUT_WR)`.
    pub fn shutdown_write(&self, sim: &mut Sim, id: SockId) -> Result<(), Errno> {
        with_stack(sim, self.node, |s, now| {
            s.tcp_shutdown(now, id, crate::tcp::Shutdown::Write)
        })
    }

    /// `close()`.
    pub fn close(&self, sim: &mut Sim, id: SockId) -> Result<(), Errno> {
        with_stack(sim, self.node, |s, now| s.tcp_close(now, id))
    }
}
