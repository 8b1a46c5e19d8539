//! netpath: a userspace TCP/IPv4 stack that implements, stage by stage, the
//! Linux kernel's receive and transmit paths (see `../shared/SEED.md`).
//!
//! The core is sans-IO: it never reads a clock, sleeps or makes a syscall.
//! Time comes in as [`time::Instant`]; frames come and go through simulated
//! devices ([`sim`]) or, in `netpath-sys`, real ones.
//!
//! Module map (docs/ARCHITECTURE.md has the full table):
//! - [`skb`]: the sk_buff, one pooled buffer per packet.
//! - [`time`]: virtual time.
//! - [`sim`]: simulated links and the event scheduler.
//! - [`capture`]: pcap writer for taps.
//! - [`drop`], [`trace`]: drop reasons and trace points.

pub mod capture;
pub mod dev;
pub mod drop;
pub mod epoll;
pub mod ipv4;
pub mod mib;
pub mod neigh;
pub mod netfilter;
pub mod sched;
pub mod sim;
pub mod skb;
pub mod sock;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod trace;
pub mod udp;
