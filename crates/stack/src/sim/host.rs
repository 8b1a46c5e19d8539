//! A simulated host: a [`Stack`] as a node of the simulated world, its NICs
//! cabled to the world's ports.
//!
//! A frame arriving on a port is handed to that port's NIC
//! (`nic_receive`: seed ingress steps 1–5), after which the host runs its
//! softirq work (`Stack::poll`) at once, as the interrupt's bottom half would;
//! frames the NICs have finished sending go onto the links.

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
}

impl SimHost {
    pub fn new(stack: Stack) -> SimHost {
        SimHost {
            stack,
            ports: Vec::new(),
            out: Vec::with_capacity(64),
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

    fn receive(
        &mut self,
        now: Instant,
        port: PortId,
        frame: Skb,
        touched: bool,
        ctx: &mut NodeCtx<'_>,
    ) {
        match self.ports.get(usize::from(port.0)).copied().flatten() {
            Some(nic) => {
                let _ = self.stack.nic_receive(now, nic, frame, touched);
            }
            None => drop(frame),
        }
        if let Some(next) = self.run(now, ctx) {
            ctx.poll_at(next);
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
