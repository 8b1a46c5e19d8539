//! A simulated host: a [`Stack`] as a node of the simulated world, its NICs
//! cabled to the world's ports.
//!
//! A frame arriving on a port is handed to that port's NIC
//! (`nic_receive`: seed ingress steps 1–5), and the host runs its softirq
//! work (`Stack::poll`) at that same instant once every frame due then has
//! arrived, as the interrupt's bottom half would; frames the NICs have
//! finished sending go onto the links.

use super::world::{Node, NodeCtx, PortId};
use crate::dev::IfIndex;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// A host in the simulation.
#[derive(Debug)]
pub struct SimHost {
    pub stack: Stack,
    /// Which NIC each port is cabled to (index = port number).
    ports: Vec<Option<IfIndex>>,
    out: Vec<Skb>,
    /// Frames received since the stack last ran.
    unpolled: usize,
}

/// Frames that may wait in the rings for the softirq at one instant: the
/// NAPI weight.
const UNPOLLED_MAX: usize = 64;

impl SimHost {
    pub fn new(stack: Stack) -> SimHost {
        SimHost {
            stack,
            ports: Vec::new(),
            out: Vec::with_capacity(64),
            unpolled: 0,
        }
    }

    /// Cables `port` to the NIC `nic`.
    pub fn cable(&mut self, port: PortId, nic: IfIndex) {
        let i = usize::from(port.0);
        if self.ports.len() <= i {
            self.ports.resize(i + 1, None);
        }
        self.ports[i] = Some(nic);
    }

    fn port_of(&self, nic: IfIndex) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| *p == Some(nic))
            .map(|i| PortId(i as u16))
    }

    /// Runs the stack and puts what its NICs sent on the wire; returns the
    /// stack's next deadline.
    fn run(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        self.unpolled = 0;
        let next = self.stack.poll(now);
        for i in 0..self.ports.len() {
            let Some(nic) = self.ports[i] else { continue };
            self.stack.nic_take_sent_lazy(nic, &mut self.out);
            for skb in self.out.drain(..) {
                ctx.transmit(PortId(i as u16), skb);
            }
        }
        next
    }
}

impl Node for SimHost {
    /// Its NICs take frames whose FCS is still pending.
    fn lazy_fcs(&self) -> bool {
        true
    }

    /// Its NICs take TSO bursts whole (building the frames if they must).
    fn gso_bursts(&self) -> bool {
        true
    }

    fn receive(
        &mut self,
        now: Instant,
        port: PortId,
        frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    ) {
        let frames = if frame.is_gso() {
            crate::dev::nic::tso_frame_counts(&frame).0
        } else {
            1
        };
        match self.ports.get(usize::from(port.0)).copied().flatten() {
            Some(nic) => {
                let _ = self.stack.nic_receive(now, nic, frame, touched);
            }
            None => drop(frame),
        }
        // The softirq runs at this instant, after the frames arriving at
        // this same instant are in the rings: one NAPI poll takes them, as
        // frames landing while the interrupt is masked are. At most a NAPI
        // weight of them wait, so that a burst cannot overrun a ring that a
        // real softirq would have been draining while it arrived.
        self.unpolled += frames;
        if self.unpolled >= UNPOLLED_MAX {
            if let Some(next) = self.run(now, ctx) {
                ctx.poll_at(next);
            }
        } else {
            ctx.poll_at(now);
        }
    }

    fn poll(&mut self, now: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        self.run(now, ctx)
    }
}

impl SimHost {
    /// The port a NIC is cabled to.
    pub fn port(&self, nic: IfIndex) -> Option<PortId> {
        self.port_of(nic)
    }
}
