//! Tables and chains, and the traversal `ipt_do_table` does
//! (`net/ipv4/netfilter/ip_tables.c`; tables in `iptable_filter.c`,
//! `iptable_mangle.c`).
//!
//! A table holds its built-in chains (one per hook it hangs on, with a
//! policy) and user chains. Jumps are resolved to chain indices when rules
//! are added, so the traversal compares no names; the return addresses of
//! `-j` live in a jump stack allocated on the configuration path with room
//! for the deepest possible nesting (chains cannot form a loop, so depth
//! is below the number of chains), as Linux sizes its `jumpstack` from
//! the table. Nothing is allocated per packet unless a LOG rule fires.

use core::fmt;
use core::str::FromStr;

use super::conntrack::CtState;
use super::log::LogRing;
use super::matches::PacketInfo;
use super::rule::{Rule, Target};
use super::{NfError, NfHook, NfVerdict};
use crate::dev::IfIndex;
use crate::skb::Skb;
use crate::time::Instant;
use crate::trace::Tracer;

/// An iptables table (`-t`). Raw is not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `NF_IP_PRI_MANGLE` (-150): all five hooks.
    Mangle,
    /// `NF_IP_PRI_FILTER` (0): LOCAL_IN, FORWARD, LOCAL_OUT.
    Filter,
    /// `iptable_nat.c`: `NF_IP_PRI_NAT_DST` (-100) on PRE_ROUTING and
    /// LOCAL_OUT, `NF_IP_PRI_NAT_SRC` (100) on LOCAL_IN and POST_ROUTING.
    /// Only the first packet of a connection traverses it (see
    /// `conntrack.rs`).
    Nat,
}

impl Table {
    /// The tables that are always there, in priority order. The nat
    /// table, like Linux's `iptable_nat` module, is loaded on demand and
    /// listed in [`Table::WITH_NAT`].
    pub const ALL: [Table; 2] = [Table::Mangle, Table::Filter];

    /// Every table, nat included.
    pub const WITH_NAT: [Table; 3] = [Table::Mangle, Table::Nat, Table::Filter];

    pub const fn name(self) -> &'static str {
        match self {
            Table::Mangle => "mangle",
            Table::Filter => "filter",
            Table::Nat => "nat",
        }
    }

    /// The hook priority (`NF_IP_PRI_*`): lower runs first. For nat, the
    /// destination-NAT priority; see [`Table::hook_priority`].
    pub const fn priority(self) -> i32 {
        match self {
            Table::Mangle => -150,
            Table::Filter => 0,
            Table::Nat => -100,
        }
    }

    /// The priority on one hook (nat: -100 on PRE_ROUTING/LOCAL_OUT, 100
    /// on LOCAL_IN/POST_ROUTING).
    pub const fn hook_priority(self, hook: NfHook) -> i32 {
        match (self, hook) {
            (Table::Nat, NfHook::LocalIn | NfHook::PostRouting) => 100,
            (t, _) => t.priority(),
        }
    }

    /// The hooks the table has a built-in chain on.
    pub const fn hooks(self) -> &'static [NfHook] {
        match self {
            Table::Mangle => &NfHook::ALL,
            Table::Filter => &[NfHook::LocalIn, NfHook::Forward, NfHook::LocalOut],
            Table::Nat => &[
                NfHook::PreRouting,
                NfHook::LocalIn,
                NfHook::LocalOut,
                NfHook::PostRouting,
            ],
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Table::Mangle => 0,
            Table::Filter => 1,
            Table::Nat => 2,
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = NfError;
    /// `-t NAME`; `NoSuchTable` for raw, security or anything else.
    fn from_str(s: &str) -> Result<Table, NfError> {
        match s {
            "mangle" => Ok(Table::Mangle),
            "nat" => Ok(Table::Nat),
            "filter" => Ok(Table::Filter),
            _ => Err(NfError::NoSuchTable(s.to_string())),
        }
    }
}

/// A built-in chain's policy (`-P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    #[default]
    Accept,
    Drop,
}

impl Policy {
    pub(crate) const fn verdict(self) -> NfVerdict {
        match self {
            Policy::Accept => NfVerdict::Accept,
            Policy::Drop => NfVerdict::Drop,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        })
    }
}

/// Packets and bytes (IP total length as in the skb) a rule or a policy
/// took, as `iptables -L -v -x` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

impl Counters {
    #[inline]
    fn add(&mut self, len: u64) {
        self.packets += 1;
        self.bytes += len;
    }
}

/// A rule in a chain, with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEntry {
    pub(crate) rule: Rule,
    pub(crate) counters: Counters,
    /// For a jump or goto: the index of the chain it enters.
    pub(crate) jump: u32,
}

impl RuleEntry {
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) name: String,
    /// The hook of a built-in chain.
    pub(crate) hook: Option<NfHook>,
    pub(crate) policy: Policy,
    pub(crate) policy_counters: Counters,
    pub(crate) rules: Vec<RuleEntry>,
}

/// A read-only view of one chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainView<'a> {
    pub(crate) chain: &'a Chain,
    pub(crate) references: usize,
}

impl<'a> ChainView<'a> {
    pub fn name(&self) -> &'a str {
        &self.chain.name
    }
    /// The hook of a built-in chain; `None` for a user chain.
    pub fn hook(&self) -> Option<NfHook> {
        self.chain.hook
    }
    pub fn is_builtin(&self) -> bool {
        self.chain.hook.is_some()
    }
    /// A built-in chain's policy.
    pub fn policy(&self) -> Option<Policy> {
        self.chain.hook.map(|_| self.chain.policy)
    }
    /// Packets that met a built-in chain's policy.
    pub fn policy_counters(&self) -> Option<Counters> {
        self.chain.hook.map(|_| self.chain.policy_counters)
    }
    pub fn rules(&self) -> &'a [RuleEntry] {
        &self.chain.rules
    }
    /// Rules (of this table) that jump or go to this chain.
    pub fn references(&self) -> usize {
        self.references
    }
}

/// One table's chains. Built-in chains come first and never move, so
/// `hook_chain` stays valid; user chains follow.
#[derive(Debug, Clone)]
pub(crate) struct TableState {
    pub(crate) chains: Vec<Chain>,
    pub(crate) hook_chain: [Option<u32>; 5],
    /// (chain, rule) of the NAT target that ended the last traversal.
    pub(crate) nat_hit: Option<(u32, u32)>,
}

/// Per-hook-call context of a traversal.
pub(crate) struct Walk<'a> {
    pub(crate) hook: NfHook,
    pub(crate) pkt: &'a PacketInfo,
    pub(crate) in_dev: Option<IfIndex>,
    pub(crate) out_dev: Option<IfIndex>,
    pub(crate) now: Instant,
    pub(crate) len: u64,
    /// The packet's conntrack state (UNTRACKED when conntrack is off).
    pub(crate) ct: CtState,
}

impl TableState {
    pub(crate) fn new(table: Table) -> TableState {
        let mut t = TableState {
            chains: Vec::new(),
            hook_chain: [None; 5],
            nat_hit: None,
        };
        for &hook in table.hooks() {
            t.hook_chain[hook.index()] = Some(t.chains.len() as u32);
            t.chains.push(Chain {
                name: hook.chain_name().to_string(),
                hook: Some(hook),
                policy: Policy::Accept,
                policy_counters: Counters::default(),
                rules: Vec::new(),
            });
        }
        t
    }

    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.chains.iter().position(|c| c.name == name)
    }

    /// Rules jumping or going to chain `idx`.
    pub(crate) fn references(&self, idx: usize) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|e| {
                e.rule.target.as_ref().and_then(Target::chain).is_some() && e.jump as usize == idx
            })
            .count()
    }

    /// True when the chain `to` can reach chain `from` by jumps and gotos
    /// (so a jump `from -> to` would close a loop).
    pub(crate) fn reaches(&self, to: usize, from: usize) -> bool {
        let mut seen = vec![false; self.chains.len()];
        let mut todo = vec![to];
        while let Some(c) = todo.pop() {
            if c == from {
                return true;
            }
            let (Some(seen), Some(chain)) = (seen.get_mut(c), self.chains.get(c)) else {
                continue;
            };
            if core::mem::replace(seen, true) {
                continue;
            }
            for e in &chain.rules {
                if e.rule.target.as_ref().and_then(Target::chain).is_some() {
                    todo.push(e.jump as usize);
                }
            }
        }
        false
    }

    /// Whether any rule or policy could change a packet.
    pub(crate) fn is_empty(&self) -> bool {
        self.chains
            .iter()
            .all(|c| c.rules.is_empty() && c.policy == Policy::Accept)
    }

    /// `ipt_do_table`: runs the hook's built-in chain on the packet.
    /// Returns Accept when the table has no chain on the hook.
    pub(crate) fn run(
        &mut self,
        w: &Walk<'_>,
        stack: &mut Vec<(u32, u32)>,
        skb: &mut Skb,
        tracer: &mut Tracer,
        log: &mut LogRing,
    ) -> NfVerdict {
        let Some(start) = self.hook_chain[w.hook.index()] else {
            return NfVerdict::Accept;
        };
        stack.clear();
        self.nat_hit = None;
        let (mut chain, mut pos) = (start as usize, 0usize);
        while let Some(c) = self.chains.get_mut(chain) {
            let Some(entry) = c.rules.get_mut(pos) else {
                // Off the end: back to the caller (`-j`), or, in the
                // built-in chain (or a chain it went to), the policy.
                match stack.pop() {
                    Some((rc, rp)) => {
                        (chain, pos) = (rc as usize, rp as usize);
                        continue;
                    }
                    None => break,
                }
            };
            if !entry
                .rule
                .matches(w.pkt, skb.meta.mark, w.in_dev, w.out_dev, w.ct)
            {
                pos += 1;
                continue;
            }
            entry.counters.add(w.len);
            match &entry.rule.target {
                None => pos += 1,
                Some(Target::Accept) => return NfVerdict::Accept,
                Some(Target::Drop) => return NfVerdict::Drop,
                Some(Target::Reject(with)) => return NfVerdict::Reject(*with),
                Some(Target::Return) => match stack.pop() {
                    Some((rc, rp)) => (chain, pos) = (rc as usize, rp as usize),
                    None => break,
                },
                Some(Target::Jump(_)) => {
                    stack.push((chain as u32, pos as u32 + 1));
                    (chain, pos) = (entry.jump as usize, 0);
                }
                Some(Target::Goto(_)) => (chain, pos) = (entry.jump as usize, 0),
                Some(Target::Snat { .. } | Target::Dnat { .. } | Target::Masquerade { .. }) => {
                    self.nat_hit = Some((chain as u32, pos as u32));
                    return NfVerdict::Accept;
                }
                Some(Target::Mark { value, mask }) => {
                    skb.meta.mark = (skb.meta.mark & !mask) ^ value;
                    pos += 1;
                }
                Some(Target::Log { prefix }) => {
                    let seq = log.log(
                        prefix,
                        w.in_dev,
                        w.out_dev,
                        skb.network_header_bytes(),
                        skb.meta.mark,
                    );
                    tracer.skb_detail(w.now, "nf_log", skb, seq);
                    pos += 1;
                }
            }
        }
        match self.chains.get_mut(start as usize) {
            Some(c) => {
                c.policy_counters.add(w.len);
                c.policy.verdict()
            }
            None => NfVerdict::Accept,
        }
    }
}
