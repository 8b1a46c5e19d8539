//! The simulator: "the wire" between NICs (DESIGN.md §3, §7).
//!
//! Not a stage of the Linux path but what sits beneath ingress step 1 and
//! after egress's last: cables and hubs ([`link`]) with latency, bit rate,
//! loss, duplication, reordering and corruption, and a world ([`world`]) of
//! nodes driven by a virtual clock that jumps from event to event. All
//! randomness comes from one seed ([`rng`]): same seed, same run, bit for bit.

pub mod blocking;
mod event;
pub mod host;
pub mod link;
pub mod rng;
pub mod world;

pub use host::SimHost;
pub use link::{LinkConfig, LinkConfigError, LinkStats};
pub use rng::SimRng;
pub use world::{AsAny, CaptureId, LinkId, Node, NodeCtx, NodeId, PortId, Sim, SimError};

#[cfg(test)]
mod tests;
