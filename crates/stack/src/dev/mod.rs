//! Devices (seed ingress steps 1–8, egress step 7).
//!
//! This issue defines only the device identity that skbs carry; the NIC, NAPI,
//! `netif_receive_skb` and `dev_queue_xmit` arrive with the device layer.

use core::fmt;

/// A device's interface index, as `ip link` shows it (1 is loopback in Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfIndex(pub u32);

impl fmt::Display for IfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}", self.0)
    }
}
