//! The Linux bridge (`net/bridge`): a master whose `rx_handler`
//! (`br_handle_frame`) steals its ports' packets (seed ingress step 8,
//! "does this device have a master? let it steal the packet").
//! (Being written: learning, FDB ageing, flooding, forwarding.)

use super::rx::RxHandlerResult;
use super::{DevError, IfIndex};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// A bridge's state.
#[derive(Debug, Default)]
pub struct Bridge {
    ports: Vec<IfIndex>,
}

impl Bridge {
    pub fn new() -> Bridge {
        Bridge::default()
    }

    pub fn ports(&self) -> &[IfIndex] {
        &self.ports
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        None
    }
}

impl Stack {
    /// `ip link set PORT master BR`.
    pub fn bridge_add_port(&mut self, br: IfIndex, port: IfIndex) -> Result<(), DevError> {
        self.bridge_mut(br)?;
        self.enslave(br, port)?;
        self.bridge_mut(br)?.ports.push(port);
        Ok(())
    }

    fn bridge_mut(&mut self, br: IfIndex) -> Result<&mut Bridge, DevError> {
        match &mut crate::stack::devm(&mut self.devs, br)?.kind {
            super::DevKind::Bridge(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: br,
                expected: "bridge",
            }),
        }
    }

    pub(crate) fn br_handle_frame(&mut self, _br: IfIndex, skb: Skb) -> RxHandlerResult {
        RxHandlerResult::Pass(skb)
    }

    pub(crate) fn br_dev_xmit(&mut self, _br: IfIndex, skb: Skb) {
        self.kfree_skb(skb, DropReason::NotSpecified);
    }

    pub(crate) fn br_timer(&mut self, _br: IfIndex) {}
}
