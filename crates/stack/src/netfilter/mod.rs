//! Netfilter: the five hooks and an iptables-like rule engine
//! (`net/netfilter`, `net/ipv4/netfilter`). Seed steps: PRE_ROUTING in
//! `ip_rcv`, LOCAL_IN in `ip_local_deliver`, FORWARD in `ip_forward`,
//! LOCAL_OUT in `ip_local_out`, POST_ROUTING in `ip_output`.
//! (Being written.)

use crate::dev::IfIndex;
use crate::skb::Skb;
use crate::time::Instant;
use crate::trace::Tracer;

/// `NF_INET_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NfHook {
    PreRouting,
    LocalIn,
    Forward,
    LocalOut,
    PostRouting,
}

/// How REJECT answers (`--reject-with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectWith {
    IcmpNetUnreachable,
    IcmpHostUnreachable,
    /// The default.
    IcmpPortUnreachable,
    IcmpProtoUnreachable,
    IcmpNetProhibited,
    IcmpHostProhibited,
    IcmpAdminProhibited,
    TcpReset,
}

/// The outcome of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfVerdict {
    Accept,
    Drop,
    /// Drop and answer as `RejectWith` says.
    Reject(RejectWith),
}

/// All tables and chains of one stack.
#[derive(Debug, Default)]
pub struct Netfilter {}

impl Netfilter {
    /// Runs the hook's chains (mangle before filter, as Linux's priorities)
    /// on `skb` (data at its IPv4 header, network header set).
    pub fn run(&mut self, hook: NfHook, skb: &mut Skb, in_dev: Option<IfIndex>, out_dev: Option<IfIndex>, now: Instant, tracer: &mut Tracer) -> NfVerdict {
        let _ = (hook, skb, in_dev, out_dev, now, tracer);
        NfVerdict::Accept
    }

    /// True when no rule or policy could change any packet (the fast path).
    pub fn is_empty(&self) -> bool {
        true
    }
}
