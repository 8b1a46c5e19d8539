//! Bonding (`drivers/net/bonding`): a master whose `rx_handler`
//! (`bond_handle_frame`) takes its slaves' packets (seed ingress step 8).
//! (Being written: active-backup with link monitoring, balance-xor.)

use super::rx::RxHandlerResult;
use super::{DevError, IfIndex};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;
use crate::time::Instant;

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BondMode {
    /// mode 1: one slave carries traffic; another takes over when it fails.
    #[default]
    ActiveBackup,
    /// mode 2: a slave per flow by hash.
    BalanceXor,
}

/// A bond's state.
#[derive(Debug, Default)]
pub struct Bond {
    mode: BondMode,
    slaves: Vec<IfIndex>,
}

impl Bond {
    pub fn new(mode: BondMode) -> Bond {
        Bond {
            mode,
            slaves: Vec::new(),
        }
    }

    pub fn mode(&self) -> BondMode {
        self.mode
    }

    pub fn slaves(&self) -> &[IfIndex] {
        &self.slaves
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        None
    }
}

impl Stack {
    /// `ip link set SLAVE master BOND`.
    pub fn bond_enslave(&mut self, bond: IfIndex, slave: IfIndex) -> Result<(), DevError> {
        self.bond_mut(bond)?;
        self.enslave(bond, slave)?;
        self.bond_mut(bond)?.slaves.push(slave);
        Ok(())
    }

    fn bond_mut(&mut self, bond: IfIndex) -> Result<&mut Bond, DevError> {
        match &mut crate::stack::devm(&mut self.devs, bond)?.kind {
            super::DevKind::Bond(b) => Ok(b),
            _ => Err(DevError::WrongKind {
                dev: bond,
                expected: "bond",
            }),
        }
    }

    pub(crate) fn bond_handle_frame(&mut self, _bond: IfIndex, skb: Skb) -> RxHandlerResult {
        RxHandlerResult::Pass(skb)
    }

    pub(crate) fn bond_start_xmit(&mut self, _bond: IfIndex, skb: Skb) {
        self.kfree_skb(skb, DropReason::NotSpecified);
    }

    pub(crate) fn bond_timer(&mut self, _bond: IfIndex) {}
}
