//! The loopback device (`drivers/net/loopback.c`): what it sends it
//! receives, through the backlog (`loopback_xmit` → `netif_rx`).

use super::IfIndex;
use crate::skb::Skb;
use crate::stack::Stack;

impl Stack {
    /// `loopback_xmit()`.
    pub(crate) fn loopback_xmit(&mut self, dev: IfIndex, skb: Skb) {
        self.skb_tx_timestamp(&skb);
        let len = skb.len() as u64;
        let mac = match self.dev(dev) {
            Ok(d) => d.mac,
            Err(_) => return,
        };
        if let Ok(d) = crate::stack::devm(&mut self.devs, dev) {
            d.stats.tx_packets += 1;
            d.stats.tx_bytes += len;
        }
        // Loopback counts its receive side itself (dev_forward_skb does too).
        self.dev_forward_skb(skb, dev, mac);
    }
}
