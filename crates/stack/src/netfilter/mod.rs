//! Netfilter: the five hooks and an iptables-like rule engine
//! (`net/netfilter/core.c`, `net/netfilter/x_tables.c`,
//! `net/ipv4/netfilter/ip_tables.c`, the tables `iptable_mangle.c` and
//! `iptable_filter.c`, and the match and target extensions named in
//! `rule.rs`).
//!
//! Seed stages: PRE_ROUTING in `ip_rcv`, LOCAL_IN in `ip_local_deliver`,
//! FORWARD in `ip_forward`, LOCAL_OUT in `ip_local_out`, POST_ROUTING in
//! `ip_output`. Each calls [`Netfilter::run`] (Linux's `NF_HOOK` →
//! `nf_hook_slow`), which runs the tables registered on that hook in
//! priority order, mangle (-150) before filter (0), until one drops or
//! rejects the packet.
//!
//! Inside a table the traversal is `ipt_do_table`'s: rules in order, the
//! first matching rule with a terminal target (ACCEPT, DROP, REJECT) ends
//! the table; LOG and MARK continue; `-j CHAIN` / `-g CHAIN` / RETURN move
//! between chains; running off a built-in chain applies its policy. Every
//! rule that matches counts the packet and its bytes; so does a policy.
//!
//! Configuration is `iptables`' verbs on [`Netfilter`] (`new_chain` is
//! `-N`, `append` `-A`, `insert` `-I`, `delete` `-D`, `set_policy` `-P`,
//! `flush` `-F`, `zero_counters` `-Z`, `save` `-S`, `list_verbose`
//! `-L -v -x -n`), checked as `x_tables` checks a table before it replaces
//! one: targets valid for the table and hook, no jump loops (ELOOP), …
//! and reported as [`NfError`]. Rule positions are 1-based, as iptables'.
//!
//! Connection tracking and NAT (`conntrack.rs`; `nf_conntrack_core.c`,
//! `iptable_nat.c`, `nf_nat_core.c`) load on demand: only while a rule
//! has a state match (`-m conntrack --ctstate`, `-m state --state`) or
//! the nat table has a rule. Then each hook first tracks the packet
//! (PRE_ROUTING / LOCAL_OUT, priority -200) or recalls its connection,
//! runs mangle, nat's destination manip (-100, PRE_ROUTING / LOCAL_OUT),
//! filter, nat's source manip (100, LOCAL_IN / POST_ROUTING), and confirms
//! the connection at POST_ROUTING / LOCAL_IN. The nat chains see only the
//! first packet of a connection; SNAT / DNAT / MASQUERADE bind it, and
//! every later packet, both ways, and the RELATED ICMP errors are
//! rewritten with incremental checksum updates. MASQUERADE's address per
//! device is registered with [`Netfilter::set_masquerade_addr`] (the
//! engine sees no device addresses). DNAT at PRE_ROUTING runs before the
//! route lookup, so routing follows the new destination; DNAT at
//! LOCAL_OUT rewrites the packet but the route was already chosen by
//! `ip_local_out`'s caller (no re-route as Linux's `ip_route_me_harder`):
//! use it only for destinations reachable the same way.
//!
//! The packet path allocates nothing: headers are read once per hook into
//! a small struct, jumps use a stack sized on the configuration path, and
//! only a LOG rule that fires formats a line (into [`Netfilter::log_lines`]).

pub mod conntrack;
mod list;
mod log;
mod matches;
mod rule;
mod table;

use core::fmt;
use core::net::Ipv4Addr;
use std::collections::HashMap;

pub use conntrack::{Conntrack, CtState, CtStats, Tuple};
pub use log::LOG_RING_LEN;
pub use rule::{PortRange, Proto, Rule, Target, LOG_PREFIX_MAX};
pub use table::{ChainView, Counters, Policy, RuleEntry, Table};

use crate::dev::IfIndex;
use crate::skb::Skb;
use crate::time::Instant;
use crate::trace::Tracer;
use conntrack::{Manip, Tracked};
use log::LogRing;
use matches::PacketInfo;
use table::{TableState, Walk};

/// `NF_INET_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NfHook {
    PreRouting,
    LocalIn,
    Forward,
    LocalOut,
    PostRouting,
}

impl NfHook {
    /// The five hooks in `NF_INET_*` order.
    pub const ALL: [NfHook; 5] = [
        NfHook::PreRouting,
        NfHook::LocalIn,
        NfHook::Forward,
        NfHook::LocalOut,
        NfHook::PostRouting,
    ];

    /// The built-in chain iptables hangs on the hook.
    pub const fn chain_name(self) -> &'static str {
        match self {
            NfHook::PreRouting => "PREROUTING",
            NfHook::LocalIn => "INPUT",
            NfHook::Forward => "FORWARD",
            NfHook::LocalOut => "OUTPUT",
            NfHook::PostRouting => "POSTROUTING",
        }
    }

    /// `NF_INET_PRE_ROUTING` = 0 … `NF_INET_POST_ROUTING` = 4.
    pub const fn index(self) -> usize {
        match self {
            NfHook::PreRouting => 0,
            NfHook::LocalIn => 1,
            NfHook::Forward => 2,
            NfHook::LocalOut => 3,
            NfHook::PostRouting => 4,
        }
    }
}

impl fmt::Display for NfHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.chain_name())
    }
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

impl RejectWith {
    /// The `--reject-with` name.
    pub const fn name(self) -> &'static str {
        match self {
            RejectWith::IcmpNetUnreachable => "icmp-net-unreachable",
            RejectWith::IcmpHostUnreachable => "icmp-host-unreachable",
            RejectWith::IcmpPortUnreachable => "icmp-port-unreachable",
            RejectWith::IcmpProtoUnreachable => "icmp-proto-unreachable",
            RejectWith::IcmpNetProhibited => "icmp-net-prohibited",
            RejectWith::IcmpHostProhibited => "icmp-host-prohibited",
            RejectWith::IcmpAdminProhibited => "icmp-admin-prohibited",
            RejectWith::TcpReset => "tcp-reset",
        }
    }

    /// The destination-unreachable code to send (`nf_send_unreach`), or
    /// `None` for a TCP reset (`nf_send_reset`).
    pub const fn icmp_code(self) -> Option<u8> {
        match self {
            RejectWith::IcmpNetUnreachable => Some(0),
            RejectWith::IcmpHostUnreachable => Some(1),
            RejectWith::IcmpProtoUnreachable => Some(2),
            RejectWith::IcmpPortUnreachable => Some(3),
            RejectWith::IcmpNetProhibited => Some(9),
            RejectWith::IcmpHostProhibited => Some(10),
            RejectWith::IcmpAdminProhibited => Some(13),
            RejectWith::TcpReset => None,
        }
    }
}

/// The outcome of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfVerdict {
    Accept,
    Drop,
    /// Drop and answer as `RejectWith` says.
    Reject(RejectWith),
}

/// Why a configuration change was refused (iptables' messages in
/// `Display`, with the errno Linux would give).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NfError {
    /// `-t NAME` of a table that does not exist here.
    NoSuchTable(String),
    /// ENOENT: no chain of that name in the table.
    NoSuchChain(String),
    /// EEXIST: `-N` of a chain that exists.
    ChainExists(String),
    /// A name iptables does not accept for a chain (empty, longer than 28
    /// bytes, with whitespace, starting with `-` or `!`, or the name of a
    /// target or built-in chain).
    BadChainName(String),
    /// EPERM: a built-in chain cannot be deleted.
    BuiltinChain(String),
    /// EBUSY: `-X` of a chain other rules still jump to.
    ChainInUse(String),
    /// ENOTEMPTY: `-X` of a chain that still has rules.
    ChainNotEmpty(String),
    /// `-P` on a user chain (which has no policy).
    NotBuiltin(String),
    /// E2BIG: no rule with that (1-based) number in the chain.
    NoSuchRule { chain: String, rulenum: usize },
    /// ENOENT: `-D` with a rule the chain does not hold.
    NoMatchingRule(String),
    /// EINVAL: a match option that cannot be used this way.
    BadMatch {
        option: &'static str,
        why: &'static str,
    },
    /// EINVAL: a target not valid here (REJECT outside the filter table's
    /// INPUT/FORWARD/OUTPUT, a jump to a built-in chain, …).
    BadTarget {
        target: String,
        chain: String,
        why: &'static str,
    },
    /// ELOOP: the jump would let a chain reach itself.
    Loop { from: String, to: String },
}

impl fmt::Display for NfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NfError::NoSuchTable(t) => {
                write!(f, "can't initialize table `{t}': Table does not exist")
            }
            NfError::NoSuchChain(c) => write!(f, "chain `{c}': No chain/target/match by that name"),
            NfError::ChainExists(c) => write!(f, "chain `{c}' already exists"),
            NfError::BadChainName(c) => write!(f, "invalid chain name `{c}'"),
            NfError::BuiltinChain(c) => write!(f, "can't delete built-in chain `{c}'"),
            NfError::ChainInUse(c) => write!(f, "chain `{c}': Too many links"),
            NfError::ChainNotEmpty(c) => write!(f, "chain `{c}': Directory not empty"),
            NfError::NotBuiltin(c) => write!(f, "chain `{c}': Bad built-in chain name"),
            NfError::NoSuchRule { chain, rulenum } => {
                write!(f, "chain `{chain}': Index of rule {rulenum} too big")
            }
            NfError::NoMatchingRule(c) => {
                write!(
                    f,
                    "chain `{c}': Bad rule (does a matching rule exist in that chain?)"
                )
            }
            NfError::BadMatch { option, why } => write!(f, "{option}: {why}"),
            NfError::BadTarget { target, chain, why } => {
                write!(f, "{target} in chain `{chain}': {why}")
            }
            NfError::Loop { from, to } => {
                write!(
                    f,
                    "jump from `{from}' to `{to}': Too many levels of symbolic links"
                )
            }
        }
    }
}

impl std::error::Error for NfError {}

/// Names a user chain may not take.
const RESERVED: [&str; 13] = [
    "ACCEPT",
    "DROP",
    "REJECT",
    "RETURN",
    "QUEUE",
    "LOG",
    "MARK",
    "CONTINUE",
    "PREROUTING",
    "INPUT",
    "FORWARD",
    "OUTPUT",
    "POSTROUTING",
];

/// Longest chain name (`XT_EXTENSION_MAXNAMELEN` - 1 … iptables' 28).
pub const CHAIN_NAME_MAX: usize = 28;

/// All tables and chains of one stack.
#[derive(Debug)]
pub struct Netfilter {
    /// Indexed by [`Table::index`]: mangle, filter, nat.
    tables: [TableState; 3],
    /// `-j` return addresses; capacity kept above the number of chains.
    stack: Vec<(u32, u32)>,
    log: LogRing,
    empty: bool,
    /// Connection tracking, on while a rule needs it (a state match or a
    /// nat rule), as Linux loads `nf_conntrack` on demand.
    ct: Conntrack,
    ct_on: bool,
    /// The address MASQUERADE gives each out device.
    masq: HashMap<IfIndex, Ipv4Addr>,
}

impl Default for Netfilter {
    /// The tables as after boot: built-in chains, no rules, ACCEPT policies.
    fn default() -> Self {
        let mut nf = Netfilter {
            tables: [
                TableState::new(Table::Mangle),
                TableState::new(Table::Filter),
                TableState::new(Table::Nat),
            ],
            stack: Vec::new(),
            log: LogRing::default(),
            empty: true,
            ct: Conntrack::default(),
            ct_on: false,
            masq: HashMap::new(),
        };
        nf.changed();
        nf
    }
}

impl Netfilter {
    pub fn new() -> Netfilter {
        Netfilter::default()
    }

    /// Runs the hook's chains (mangle before filter, as Linux's priorities)
    /// on `skb` (data at its IPv4 header, network header set). `in_dev` is
    /// the device the packet came in by (none on LOCAL_OUT/POST_ROUTING),
    /// `out_dev` the one it leaves by (none on PRE_ROUTING/LOCAL_IN).
    ///
    /// MARK writes `skb.meta.mark`; LOG adds a line to
    /// [`Netfilter::log_lines`] and a trace event `nf_log` (with the skb,
    /// the line's sequence number as its figure). Any bytes are fine: the
    /// matches that need a header the packet does not have are false.
    pub fn run(
        &mut self,
        hook: NfHook,
        skb: &mut Skb,
        in_dev: Option<IfIndex>,
        out_dev: Option<IfIndex>,
        now: Instant,
        tracer: &mut Tracer,
    ) -> NfVerdict {
        let tracked = if !self.ct_on {
            Tracked::Untracked
        } else if matches!(hook, NfHook::PreRouting | NfHook::LocalOut) {
            self.ct.track(skb.id(), skb.network_header_bytes(), now)
        } else {
            self.ct.recall(skb.id(), skb.network_header_bytes(), now)
        };
        let ct = match tracked {
            Tracked::Conn(r) => r.state,
            Tracked::Invalid => CtState::INVALID,
            Tracked::Untracked => CtState::UNTRACKED,
            Tracked::Full => {
                // "nf_conntrack: table full, dropping packet".
                tracer.skb_detail(now, "nf_conntrack_full", skb, self.ct.count() as u64);
                return NfVerdict::Drop;
            }
        };
        // Priority order per hook: nat's destination manip (-100) before
        // filter, its source manip (100) after.
        let order: &[usize] = match hook {
            NfHook::PreRouting | NfHook::LocalOut => &[0, 2, 1],
            NfHook::LocalIn | NfHook::PostRouting => &[0, 1, 2],
            NfHook::Forward => &[0, 1],
        };
        let mut pkt = PacketInfo::parse(skb.network_header_bytes());
        let mut verdict = NfVerdict::Accept;
        for &ti in order {
            let v = if ti == Table::Nat.index() {
                let Tracked::Conn(r) = tracked else {
                    continue;
                };
                let v = self.nat(hook, r, &pkt, skb, in_dev, out_dev, now, tracer);
                pkt = PacketInfo::parse(skb.network_header_bytes());
                v
            } else {
                let walk = Walk {
                    hook,
                    pkt: &pkt,
                    in_dev,
                    out_dev,
                    now,
                    len: skb.len() as u64,
                    ct,
                };
                self.tables[ti].run(&walk, &mut self.stack, skb, tracer, &mut self.log)
            };
            if v != NfVerdict::Accept {
                verdict = v;
                break;
            }
        }
        if let Tracked::Conn(r) = tracked {
            if verdict != NfVerdict::Accept {
                self.ct.dropped(r);
            } else if matches!(hook, NfHook::PostRouting | NfHook::LocalIn) {
                self.ct.confirm(r);
            }
        }
        verdict
    }

    /// `nf_nat_inet_fn`: for the first packet of a connection, the nat
    /// chain of the hook decides the binding of this manip type (no
    /// matching rule: a null binding); then every packet of the
    /// connection, in either direction, and the ICMP errors RELATED to it,
    /// are rewritten to the binding (`nf_nat_packet`).
    #[allow(clippy::too_many_arguments)]
    fn nat(
        &mut self,
        hook: NfHook,
        r: conntrack::CtRef,
        pkt: &PacketInfo,
        skb: &mut Skb,
        in_dev: Option<IfIndex>,
        out_dev: Option<IfIndex>,
        now: Instant,
        tracer: &mut Tracer,
    ) -> NfVerdict {
        let m = match hook {
            NfHook::PreRouting | NfHook::LocalOut => Manip::Dst,
            NfHook::LocalIn | NfHook::PostRouting => Manip::Src,
            NfHook::Forward => return NfVerdict::Accept,
        };
        if r.dir == conntrack::Dir::Original && r.state == CtState::NEW && !self.ct.nat_done(r, m) {
            let walk = Walk {
                hook,
                pkt,
                in_dev,
                out_dev,
                now,
                len: skb.len() as u64,
                ct: r.state,
            };
            let nat = &mut self.tables[Table::Nat.index()];
            let v = nat.run(&walk, &mut self.stack, skb, tracer, &mut self.log);
            if v != NfVerdict::Accept {
                return v;
            }
            let spec = nat
                .nat_hit
                .and_then(|(c, p)| nat.chains.get(c as usize)?.rules.get(p as usize))
                .and_then(|e| match e.rule.target.as_ref()? {
                    Target::Snat { addr, ports } => Some((Some(*addr), *ports)),
                    Target::Dnat { addr, port } => Some((Some(*addr), port.map(PortRange::from))),
                    Target::Masquerade { ports } => {
                        Some((out_dev.and_then(|d| self.masq.get(&d).copied()), *ports))
                    }
                    _ => None,
                });
            let binding = match spec {
                None => None,
                // MASQUERADE on a device with no address: dropped.
                Some((None, _)) => return NfVerdict::Drop,
                Some((Some(addr), ports)) => match self.pick(r, m, addr, ports) {
                    Some(b) => Some(b),
                    None => return NfVerdict::Drop,
                },
            };
            self.ct.bind(r, m, binding);
        }
        let (Some((addr, port)), Some(nh), d) = (
            self.ct.target(r, m),
            skb.network_header(),
            skb.data_offset(),
        ) else {
            return NfVerdict::Accept;
        };
        // The manipulation updates checksums incrementally: a partial one
        // is worked out first (Linux adjusts its pseudo-header sum instead;
        // the bytes on the wire are the same).
        skb.checksum_help();
        if let Some(ip) = nh.checked_sub(d).and_then(|o| skb.data_mut().get_mut(o..)) {
            conntrack::manip_pkt(ip, m, addr, port, r.state == CtState::RELATED);
        }
        NfVerdict::Accept
    }

    /// `get_unique_tuple`: the address and port for a new binding; the
    /// original port when free (or in the range), else the first free one
    /// of the range (`nf_nat_l4proto_unique_tuple`; without a range, of
    /// the original port's class: below 512, 512–1023, 1024 and up). ICMP
    /// echo ids take the place of ports. `None`: every candidate is in use.
    fn pick(
        &self,
        r: conntrack::CtRef,
        m: Manip,
        addr: Ipv4Addr,
        ports: Option<PortRange>,
    ) -> Option<(Ipv4Addr, u16)> {
        let (Some(orig), Some(reply)) = (
            self.ct.tuple(r, conntrack::Dir::Original),
            self.ct.tuple(r, conntrack::Dir::Reply),
        ) else {
            return None;
        };
        let port0 = match m {
            Manip::Src => orig.sport,
            Manip::Dst => orig.dport,
        };
        let candidate = |p: u16| {
            let mut t = reply;
            match m {
                Manip::Src => (t.dst, t.dport) = (addr, p),
                Manip::Dst => (t.src, t.sport) = (addr, p),
            }
            t
        };
        let has_ports = matches!(orig.proto, 6 | 17) || (orig.proto == 1 && m == Manip::Src);
        if !has_ports || m == Manip::Dst {
            // DNAT and port-less protocols: no search.
            let p = match (m, ports) {
                (Manip::Dst, Some(p)) if matches!(orig.proto, 6 | 17) => p.lo,
                _ => port0,
            };
            return Some((addr, p));
        }
        let range = match ports {
            Some(p) => p,
            None if orig.proto == 1 => PortRange { lo: 0, hi: 65535 },
            None if port0 < 512 => PortRange { lo: 1, hi: 511 },
            None if port0 < 1024 => PortRange { lo: 600, hi: 1023 },
            None => PortRange {
                lo: 1024,
                hi: 65535,
            },
        };
        if range.contains(port0) && !self.ct.used(&candidate(port0), r.slot) {
            return Some((addr, port0));
        }
        let size = u32::from(range.hi - range.lo) + 1;
        let start = u32::from(port0.wrapping_sub(range.lo)) % size;
        (0..size)
            .map(|i| (range.lo as u32 + (start + i) % size) as u16)
            .find(|&p| !self.ct.used(&candidate(p), r.slot))
            .map(|p| (addr, p))
    }

    /// True when no rule or policy could change any packet (the fast path).
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    // ---- configuration ---------------------------------------------------

    fn table(&self, t: Table) -> &TableState {
        &self.tables[t.index()]
    }

    fn table_mut(&mut self, t: Table) -> &mut TableState {
        &mut self.tables[t.index()]
    }

    fn chain_idx(&self, t: Table, chain: &str) -> Result<usize, NfError> {
        self.table(t)
            .find(chain)
            .ok_or_else(|| NfError::NoSuchChain(chain.to_string()))
    }

    /// After any change: the fast-path flag, whether conntrack is needed,
    /// and the jump stack's room.
    fn changed(&mut self) {
        self.ct_on = !self.tables[Table::Nat.index()].is_empty()
            || self
                .tables
                .iter()
                .flat_map(|t| &t.chains)
                .flat_map(|c| &c.rules)
                .any(|e| e.rule.ctstate.is_some());
        self.empty = self.tables.iter().all(TableState::is_empty) && !self.ct_on;
        let most = self
            .tables
            .iter()
            .map(|t| t.chains.len())
            .max()
            .unwrap_or(0);
        if self.stack.capacity() < most {
            self.stack.reserve(most);
        }
    }

    /// `-N name`: a user chain.
    pub fn new_chain(&mut self, t: Table, name: &str) -> Result<(), NfError> {
        let bad = name.is_empty()
            || name.len() > CHAIN_NAME_MAX
            || name.starts_with(['-', '!'])
            || name.chars().any(char::is_whitespace)
            || RESERVED.contains(&name);
        if self.table(t).find(name).is_some() {
            return Err(NfError::ChainExists(name.to_string()));
        }
        if bad {
            return Err(NfError::BadChainName(name.to_string()));
        }
        self.table_mut(t).chains.push(table::Chain {
            name: name.to_string(),
            hook: None,
            policy: Policy::Accept,
            policy_counters: Counters::default(),
            rules: Vec::new(),
        });
        self.changed();
        Ok(())
    }

    /// `-X name`: deletes an empty, unreferenced user chain.
    pub fn delete_chain(&mut self, t: Table, name: &str) -> Result<(), NfError> {
        let idx = self.chain_idx(t, name)?;
        let ts = self.table_mut(t);
        if ts.chains[idx].hook.is_some() {
            return Err(NfError::BuiltinChain(name.to_string()));
        }
        if ts.references(idx) > 0 {
            return Err(NfError::ChainInUse(name.to_string()));
        }
        if !ts.chains[idx].rules.is_empty() {
            return Err(NfError::ChainNotEmpty(name.to_string()));
        }
        ts.chains.remove(idx);
        // Jumps past the removed chain move down by one.
        for e in ts.chains.iter_mut().flat_map(|c| &mut c.rules) {
            if e.rule.target.as_ref().and_then(Target::chain).is_some() && e.jump as usize > idx {
                e.jump -= 1;
            }
        }
        self.changed();
        Ok(())
    }

    /// Checks `rule` for chain `chain_idx` of `t`, as the table would be
    /// checked before Linux takes it; returns the jump index.
    ///
    /// REJECT is refused outside the filter table and in built-in chains
    /// of other hooks; every user chain of the filter table is reachable
    /// only from INPUT/FORWARD/OUTPUT, so it needs no reachability walk
    /// (tables on PRE/POST_ROUTING, raw and nat, will need one).
    fn check_rule(&self, t: Table, chain_idx: usize, rule: &Rule) -> Result<u32, NfError> {
        let ts = self.table(t);
        let chain = &ts.chains[chain_idx];
        let bad = |option, why| Err(NfError::BadMatch { option, why });
        if rule.dangling_not() {
            return bad("!", "not followed by a match");
        }
        if rule.bad_prefix {
            return bad("-s/-d", "prefix length over 32");
        }
        let proto = rule.proto.filter(|p| !p.negated).map(|p| p.value.number());
        if rule
            .proto
            .is_some_and(|p| p.negated && p.value.number() == 0)
        {
            return bad("-p", "rule would never match protocol");
        }
        for (port, option) in [(rule.sport, "--sport"), (rule.dport, "--dport")] {
            if let Some(p) = port {
                if !matches!(proto, Some(6 | 17)) {
                    return bad(option, "needs -p tcp or -p udp");
                }
                if p.value.lo > p.value.hi {
                    return bad(option, "invalid portrange (min > max)");
                }
            }
        }
        if rule.tcp_flags.is_some() && proto != Some(6) {
            return bad("--tcp-flags", "needs -p tcp");
        }
        if rule.icmp.is_some() && proto != Some(1) {
            return bad("--icmp-type", "needs -p icmp");
        }
        match chain.hook {
            Some(NfHook::LocalOut | NfHook::PostRouting) if rule.in_dev.is_some() => {
                return bad("-i", "can't be used with OUTPUT or POSTROUTING");
            }
            Some(NfHook::PreRouting | NfHook::LocalIn) if rule.out_dev.is_some() => {
                return bad("-o", "can't be used with PREROUTING or INPUT");
            }
            _ => {}
        }
        let bad_target = |why| {
            Err(NfError::BadTarget {
                target: rule.target.as_ref().map_or("", |t| t.name()).to_string(),
                chain: chain.name.clone(),
                why,
            })
        };
        if let Some(target) = rule.target.as_ref().filter(|t| t.is_nat()) {
            if t != Table::Nat {
                return bad_target("only valid in the nat table");
            }
            let ok_hooks: &[NfHook] = match target {
                Target::Dnat { .. } => &[NfHook::PreRouting, NfHook::LocalOut],
                Target::Snat { .. } => &[NfHook::PostRouting, NfHook::LocalIn],
                _ => &[NfHook::PostRouting],
            };
            if chain.hook.is_some_and(|h| !ok_hooks.contains(&h)) {
                return bad_target("not valid on this hook");
            }
            let ports = matches!(
                target,
                Target::Snat { ports: Some(_), .. }
                    | Target::Dnat { port: Some(_), .. }
                    | Target::Masquerade { ports: Some(_) }
            );
            if ports && !matches!(proto, Some(6 | 17)) {
                return bad_target("need -p tcp or -p udp with port specification");
            }
            if let Target::Snat { ports: Some(p), .. } | Target::Masquerade { ports: Some(p) } =
                target
            {
                if p.lo > p.hi {
                    return bad_target("invalid port range");
                }
            }
            return Ok(0);
        }
        match &rule.target {
            Some(Target::Reject(with)) => {
                if t != Table::Filter {
                    return bad_target("REJECT is only valid in the filter table");
                }
                if matches!(chain.hook, Some(NfHook::PreRouting | NfHook::PostRouting)) {
                    return bad_target("REJECT is only valid in INPUT, FORWARD and OUTPUT");
                }
                if *with == RejectWith::TcpReset && proto != Some(6) {
                    return bad_target("tcp-reset is only valid with -p tcp");
                }
                Ok(0)
            }
            Some(Target::Log { prefix }) if prefix.len() > LOG_PREFIX_MAX => {
                bad_target("log prefix longer than 29 bytes")
            }
            Some(Target::Jump(to) | Target::Goto(to)) => {
                let Some(to_idx) = ts.find(to) else {
                    return Err(NfError::NoSuchChain(to.clone()));
                };
                if ts.chains[to_idx].hook.is_some() {
                    return bad_target("can't jump to a built-in chain");
                }
                if ts.reaches(to_idx, chain_idx) {
                    return Err(NfError::Loop {
                        from: chain.name.clone(),
                        to: to.clone(),
                    });
                }
                Ok(to_idx as u32)
            }
            _ => Ok(0),
        }
    }

    fn entry(&self, t: Table, chain_idx: usize, rule: Rule) -> Result<RuleEntry, NfError> {
        let jump = self.check_rule(t, chain_idx, &rule)?;
        Ok(RuleEntry {
            rule,
            counters: Counters::default(),
            jump,
        })
    }

    fn no_rule(chain: &str, rulenum: usize) -> NfError {
        NfError::NoSuchRule {
            chain: chain.to_string(),
            rulenum,
        }
    }

    /// `-A chain rule`.
    pub fn append(&mut self, t: Table, chain: &str, rule: Rule) -> Result<(), NfError> {
        let idx = self.chain_idx(t, chain)?;
        let e = self.entry(t, idx, rule)?;
        self.table_mut(t).chains[idx].rules.push(e);
        self.changed();
        Ok(())
    }

    /// `-I chain rulenum rule`: before rule `rulenum` (1-based; one past
    /// the last appends).
    pub fn insert(
        &mut self,
        t: Table,
        chain: &str,
        rulenum: usize,
        rule: Rule,
    ) -> Result<(), NfError> {
        let idx = self.chain_idx(t, chain)?;
        let len = self.table(t).chains[idx].rules.len();
        if rulenum == 0 || rulenum > len + 1 {
            return Err(Self::no_rule(chain, rulenum));
        }
        let e = self.entry(t, idx, rule)?;
        self.table_mut(t).chains[idx].rules.insert(rulenum - 1, e);
        self.changed();
        Ok(())
    }

    /// `-R chain rulenum rule`: replaces a rule (its counters restart).
    pub fn replace(
        &mut self,
        t: Table,
        chain: &str,
        rulenum: usize,
        rule: Rule,
    ) -> Result<(), NfError> {
        let idx = self.chain_idx(t, chain)?;
        let len = self.table(t).chains[idx].rules.len();
        if rulenum == 0 || rulenum > len {
            return Err(Self::no_rule(chain, rulenum));
        }
        // Checked as if the old rule were gone (it may be the jump that a
        // loop check would otherwise trip over).
        let old = self.table_mut(t).chains[idx].rules.remove(rulenum - 1);
        match self.entry(t, idx, rule) {
            Ok(e) => {
                self.table_mut(t).chains[idx].rules.insert(rulenum - 1, e);
                self.changed();
                Ok(())
            }
            Err(err) => {
                self.table_mut(t).chains[idx].rules.insert(rulenum - 1, old);
                Err(err)
            }
        }
    }

    /// `-D chain rulenum`: deletes rule `rulenum` (1-based) and returns it.
    pub fn delete(&mut self, t: Table, chain: &str, rulenum: usize) -> Result<Rule, NfError> {
        let idx = self.chain_idx(t, chain)?;
        let rules = &mut self.table_mut(t).chains[idx].rules;
        if rulenum == 0 || rulenum > rules.len() {
            return Err(Self::no_rule(chain, rulenum));
        }
        let e = rules.remove(rulenum - 1);
        self.changed();
        Ok(e.rule)
    }

    /// `-D chain rule-spec`: deletes the first rule equal to `rule`.
    pub fn delete_rule(&mut self, t: Table, chain: &str, rule: &Rule) -> Result<(), NfError> {
        let idx = self.chain_idx(t, chain)?;
        let rules = &mut self.table_mut(t).chains[idx].rules;
        let pos = rules
            .iter()
            .position(|e| e.rule == *rule)
            .ok_or_else(|| NfError::NoMatchingRule(chain.to_string()))?;
        rules.remove(pos);
        self.changed();
        Ok(())
    }

    /// `-P chain policy`: built-in chains only.
    pub fn set_policy(&mut self, t: Table, chain: &str, policy: Policy) -> Result<(), NfError> {
        let idx = self.chain_idx(t, chain)?;
        let c = &mut self.table_mut(t).chains[idx];
        if c.hook.is_none() {
            return Err(NfError::NotBuiltin(chain.to_string()));
        }
        c.policy = policy;
        self.changed();
        Ok(())
    }

    /// `-F [chain]`: removes the rules of one chain, or of every chain of
    /// the table. Policies stay.
    pub fn flush(&mut self, t: Table, chain: Option<&str>) -> Result<(), NfError> {
        match chain {
            Some(name) => {
                let idx = self.chain_idx(t, name)?;
                self.table_mut(t).chains[idx].rules.clear();
            }
            None => {
                for c in &mut self.table_mut(t).chains {
                    c.rules.clear();
                }
            }
        }
        self.changed();
        Ok(())
    }

    /// `-Z [chain]`: zeroes rule (and policy) counters of one chain or of
    /// the whole table.
    pub fn zero_counters(&mut self, t: Table, chain: Option<&str>) -> Result<(), NfError> {
        let range = match chain {
            Some(name) => {
                let i = self.chain_idx(t, name)?;
                i..i + 1
            }
            None => 0..self.table(t).chains.len(),
        };
        for c in &mut self.table_mut(t).chains[range] {
            c.policy_counters = Counters::default();
            for e in &mut c.rules {
                e.counters = Counters::default();
            }
        }
        Ok(())
    }

    // ---- inspection ---------------------------------------------------

    /// `-L chain`: the rules in order, each with its counters.
    pub fn list(&self, t: Table, chain: &str) -> Result<&[RuleEntry], NfError> {
        let idx = self.chain_idx(t, chain)?;
        Ok(&self.table(t).chains[idx].rules)
    }

    /// One chain: policy and its counters, rules, references.
    pub fn chain(&self, t: Table, chain: &str) -> Result<ChainView<'_>, NfError> {
        let idx = self.chain_idx(t, chain)?;
        let ts = self.table(t);
        Ok(ChainView {
            chain: &ts.chains[idx],
            references: ts.references(idx),
        })
    }

    /// Every chain of the table: built-in chains in hook order, then user
    /// chains in the order they were made.
    pub fn chains(&self, t: Table) -> impl Iterator<Item = ChainView<'_>> {
        let ts = self.table(t);
        ts.chains.iter().enumerate().map(move |(i, c)| ChainView {
            chain: c,
            references: ts.references(i),
        })
    }

    /// The counters of rule `rulenum` (1-based).
    pub fn counters(&self, t: Table, chain: &str, rulenum: usize) -> Result<Counters, NfError> {
        let rules = self.list(t, chain)?;
        rulenum
            .checked_sub(1)
            .and_then(|i| rules.get(i))
            .map(RuleEntry::counters)
            .ok_or_else(|| Self::no_rule(chain, rulenum))
    }

    /// A built-in chain's policy and the packets/bytes it took.
    pub fn policy(&self, t: Table, chain: &str) -> Result<(Policy, Counters), NfError> {
        let c = self.chain(t, chain)?;
        match (c.policy(), c.policy_counters()) {
            (Some(p), Some(n)) => Ok((p, n)),
            _ => Err(NfError::NotBuiltin(chain.to_string())),
        }
    }

    /// `iptables -t T -S`: `-P` lines for built-in chains, `-N` for user
    /// chains, then every rule as `-A CHAIN …`.
    pub fn save(&self, t: Table) -> Vec<String> {
        let ts = self.table(t);
        let mut out = Vec::new();
        for c in &ts.chains {
            match c.hook {
                Some(_) => out.push(format!("-P {} {}", c.name, c.policy)),
                None => out.push(format!("-N {}", c.name)),
            }
        }
        for c in &ts.chains {
            for e in &c.rules {
                out.push(e.rule.spec(&c.name).to_string());
            }
        }
        out
    }

    /// `iptables -t T -L chain -v -x -n`: the chain header with policy or
    /// references, a column header, and one line per rule.
    pub fn list_verbose(&self, t: Table, chain: &str) -> Result<String, NfError> {
        Ok(list::verbose(&self.chain(t, chain)?))
    }

    /// The LOG lines still in the ring, oldest first (at most
    /// [`LOG_RING_LEN`]), like `dmesg`.
    pub fn log_lines(&self) -> impl Iterator<Item = &str> {
        self.log.lines()
    }

    /// LOG lines written since the stack started (including overwritten).
    pub fn log_written(&self) -> u64 {
        self.log.written
    }

    // ---- connection tracking and NAT ---------------------------------

    /// Whether connection tracking runs (a rule with a state match, or a
    /// nat rule, exists).
    pub fn conntrack_enabled(&self) -> bool {
        self.ct_on
    }

    /// The connection table (`conntrack -L` via [`Conntrack::list`],
    /// `conntrack -S` via [`Conntrack::stats`]).
    pub fn conntrack(&self) -> &Conntrack {
        &self.ct
    }

    /// The connection table, to flush it, collect expired entries or set
    /// `nf_conntrack_max` ([`Conntrack::max`]).
    pub fn conntrack_mut(&mut self) -> &mut Conntrack {
        &mut self.ct
    }

    /// Registers (or with `None` forgets) the address MASQUERADE uses for
    /// packets leaving by `dev`: the device's primary address, which the
    /// engine cannot see itself. Whoever configures addresses (the test,
    /// the CLI) calls it after `ip addr add`; a MASQUERADE rule meeting a
    /// device with no registered address drops the packet, as Linux does
    /// on a device without an address.
    pub fn set_masquerade_addr(&mut self, dev: IfIndex, addr: Option<Ipv4Addr>) {
        match addr {
            Some(a) => self.masq.insert(dev, a),
            None => self.masq.remove(&dev),
        };
    }

    /// Empties the LOG ring (`dmesg -c`).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }
}
