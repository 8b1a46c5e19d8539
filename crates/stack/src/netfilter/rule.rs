//! Rules: their matches, their target, a builder that reads like an
//! `iptables` command line, and `iptables -S` rendering.
//!
//! Linux keeps a rule as a `struct ipt_entry`: the fixed IPv4 part
//! (`struct ipt_ip`: `-s -d -i -o -p -f` with their `IPT_INV_*` bits,
//! `include/uapi/linux/netfilter_ipv4/ip_tables.h`), then match extensions
//! (`xt_tcpudp.c` for `-m tcp|udp` and `-m icmp`, `xt_mark.c`), then one
//! target (`ipt_REJECT.c`, `xt_LOG.c` / `nf_log_syslog.c`, `xt_mark.c`'s
//! MARK, or a standard verdict / jump). Here a [`Rule`] holds the same
//! fields, each optional, each with its own `!`.

use core::fmt;
use core::net::Ipv4Addr;
use core::ops::RangeInclusive;

use netpath_wire::tcp::TcpFlags;

use super::conntrack::CtState;
use super::RejectWith;
use crate::dev::IfIndex;

/// A condition and whether `!` inverts it (`IPT_INV_*`, `XT_*_INV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Cond<T> {
    pub(crate) value: T,
    pub(crate) negated: bool,
}

/// `-p`: the IPv4 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    /// Any protocol number; 0 is iptables' `all`.
    Num(u8),
}

impl Proto {
    /// The protocol number in the IPv4 header.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
            Proto::Num(n) => n,
        }
    }

    /// The named variant for 1, 6 and 17, `Num` otherwise.
    pub const fn from_number(n: u8) -> Proto {
        match n {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            1 => Proto::Icmp,
            n => Proto::Num(n),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            0 => f.write_str("all"),
            1 => f.write_str("icmp"),
            6 => f.write_str("tcp"),
            17 => f.write_str("udp"),
            n => write!(f, "{n}"),
        }
    }
}

/// `--sport` / `--dport`: one port or an inclusive range `lo:hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl From<u16> for PortRange {
    fn from(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }
}

impl From<RangeInclusive<u16>> for PortRange {
    fn from(r: RangeInclusive<u16>) -> Self {
        PortRange {
            lo: *r.start(),
            hi: *r.end(),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}:{}", self.lo, self.hi)
        }
    }
}

/// `-s` / `-d`: an address with a prefix length, kept masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Net {
    pub(crate) addr: u32,
    pub(crate) len: u8,
}

impl Net {
    fn new(addr: Ipv4Addr, len: u8) -> Net {
        Net {
            addr: u32::from(addr) & Self::mask_of(len),
            len,
        }
    }

    fn mask_of(len: u8) -> u32 {
        match len {
            0 => 0,
            1..=31 => u32::MAX << (32 - u32::from(len)),
            _ => u32::MAX,
        }
    }

    pub(crate) fn contains(self, a: u32) -> bool {
        (a ^ self.addr) & Self::mask_of(self.len) == 0
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

/// `--tcp-flags MASK COMP`: `(flags & mask) == comp` over the low 8 flag
/// bits (FIN … CWR), as `xt_tcpudp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlagMatch {
    pub(crate) mask: u8,
    pub(crate) comp: u8,
}

/// `--icmp-type TYPE[/CODE]`: type 255 is `any` (as `ipt_icmp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IcmpMatch {
    pub(crate) ty: u8,
    pub(crate) code_min: u8,
    pub(crate) code_max: u8,
}

/// `-m mark --mark VALUE/MASK`: `(skb->mark & mask) == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MarkMatch {
    pub(crate) value: u32,
    pub(crate) mask: u32,
}

/// What a rule does when it matches (`-j` / `-g`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// NF_ACCEPT: leaves this table; later tables on the hook still run.
    Accept,
    /// NF_DROP: the packet is gone (`NETFILTER_DROP`).
    Drop,
    /// REJECT: dropped and answered (filter table, INPUT/FORWARD/OUTPUT).
    Reject(RejectWith),
    /// XT_RETURN: back to the calling chain, or a built-in chain's policy.
    Return,
    /// `-j CHAIN`: into a user chain, coming back after it.
    Jump(String),
    /// `-g CHAIN`: into a user chain without coming back here.
    Goto(String),
    /// LOG: a kernel-log line with this prefix; the traversal continues.
    Log { prefix: String },
    /// MARK: `mark = (mark & !mask) ^ value` (`--set-xmark`); continues.
    Mark { value: u32, mask: u32 },
    /// SNAT `--to-source ADDR[:LO-HI]` (nat table, POSTROUTING and
    /// INPUT; `xt_nat.c`): the connection's source becomes `addr`, its
    /// port one of `ports` (the original when free, if no range is given).
    Snat {
        addr: Ipv4Addr,
        ports: Option<PortRange>,
    },
    /// DNAT `--to-destination ADDR[:PORT]` (nat table, PREROUTING and
    /// OUTPUT).
    Dnat { addr: Ipv4Addr, port: Option<u16> },
    /// MASQUERADE `[--to-ports LO-HI]` (nat POSTROUTING): SNAT to the
    /// out device's address, as registered with
    /// [`super::Netfilter::set_masquerade_addr`].
    Masquerade { ports: Option<PortRange> },
}

/// Longest `--log-prefix` (`sizeof(ipt_log_info.prefix) - 1`).
pub const LOG_PREFIX_MAX: usize = 29;

impl Target {
    /// REJECT with the default `icmp-port-unreachable`.
    pub const fn reject() -> Target {
        Target::Reject(RejectWith::IcmpPortUnreachable)
    }

    pub fn jump(chain: impl Into<String>) -> Target {
        Target::Jump(chain.into())
    }

    pub fn goto(chain: impl Into<String>) -> Target {
        Target::Goto(chain.into())
    }

    pub fn log(prefix: impl Into<String>) -> Target {
        Target::Log {
            prefix: prefix.into(),
        }
    }

    /// `--set-mark V`: the whole mark becomes `V`.
    pub const fn set_mark(value: u32) -> Target {
        Target::Mark {
            value,
            mask: u32::MAX,
        }
    }

    /// `--set-mark V/M`: the bits of `M` become those of `V`.
    pub const fn set_mark_masked(value: u32, mask: u32) -> Target {
        Target::Mark {
            value,
            mask: mask | value,
        }
    }

    /// `--set-xmark V/M`: clear the bits of `M`, then xor `V`.
    pub const fn set_xmark(value: u32, mask: u32) -> Target {
        Target::Mark { value, mask }
    }

    /// `--and-mark B`.
    pub const fn and_mark(bits: u32) -> Target {
        Target::Mark {
            value: 0,
            mask: !bits,
        }
    }

    /// `--or-mark B`.
    pub const fn or_mark(bits: u32) -> Target {
        Target::Mark {
            value: bits,
            mask: bits,
        }
    }

    /// `--xor-mark B`.
    pub const fn xor_mark(bits: u32) -> Target {
        Target::Mark {
            value: bits,
            mask: 0,
        }
    }

    /// The name `iptables -L` shows in its target column.
    pub fn name(&self) -> &str {
        match self {
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Reject(_) => "REJECT",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => c,
            Target::Log { .. } => "LOG",
            Target::Mark { .. } => "MARK",
            Target::Snat { .. } => "SNAT",
            Target::Dnat { .. } => "DNAT",
            Target::Masquerade { .. } => "MASQUERADE",
        }
    }

    /// SNAT, DNAT or MASQUERADE.
    pub(crate) fn is_nat(&self) -> bool {
        matches!(
            self,
            Target::Snat { .. } | Target::Dnat { .. } | Target::Masquerade { .. }
        )
    }

    /// The chain a jump or goto enters.
    pub(crate) fn chain(&self) -> Option<&str> {
        match self {
            Target::Jump(c) | Target::Goto(c) => Some(c),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    /// The `-j …` / `-g …` part of `iptables -S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Reject(w) => write!(f, "-j REJECT --reject-with {}", w.name()),
            Target::Goto(c) => write!(f, "-g {c}"),
            Target::Log { prefix } if prefix.is_empty() => f.write_str("-j LOG"),
            Target::Log { prefix } => write!(f, "-j LOG --log-prefix \"{prefix}\""),
            Target::Mark { value, mask } => {
                write!(f, "-j MARK --set-xmark {value:#x}/{mask:#x}")
            }
            Target::Snat { addr, ports } => {
                write!(f, "-j SNAT --to-source {addr}")?;
                match ports {
                    Some(p) => write!(f, ":{}-{}", p.lo, p.hi),
                    None => Ok(()),
                }
            }
            Target::Dnat { addr, port } => {
                write!(f, "-j DNAT --to-destination {addr}")?;
                match port {
                    Some(p) => write!(f, ":{p}"),
                    None => Ok(()),
                }
            }
            Target::Masquerade { ports: Some(p) } => {
                write!(f, "-j MASQUERADE --to-ports {}-{}", p.lo, p.hi)
            }
            t => write!(f, "-j {}", t.name()),
        }
    }
}

/// One rule: optional matches (all must hold) and an optional target (a
/// rule without one only counts, as `iptables -A INPUT -p tcp`).
///
/// Built like the command line: `Rule::new().proto(Proto::Tcp).dport(80)
/// .target(Target::Drop)` is `-p tcp --dport 80 -j DROP`; [`Rule::not`]
/// is the `!` before the next match: `Rule::new().not().src(a, 8)` is
/// `! -s a/8`. Setting a match twice keeps the last. Whether the rule
/// makes sense (ports need `-p tcp|udp`, …) is checked when it is added
/// to a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Rule {
    pending_not: bool,
    pub(crate) src: Option<Cond<Net>>,
    pub(crate) dst: Option<Cond<Net>>,
    pub(crate) in_dev: Option<Cond<IfIndex>>,
    pub(crate) out_dev: Option<Cond<IfIndex>>,
    pub(crate) proto: Option<Cond<Proto>>,
    pub(crate) fragment: Option<Cond<()>>,
    pub(crate) sport: Option<Cond<PortRange>>,
    pub(crate) dport: Option<Cond<PortRange>>,
    pub(crate) tcp_flags: Option<Cond<FlagMatch>>,
    pub(crate) icmp: Option<Cond<IcmpMatch>>,
    pub(crate) mark: Option<Cond<MarkMatch>>,
    /// `-m conntrack --ctstate` (or `-m state --state` when `.1`).
    pub(crate) ctstate: Option<Cond<(CtState, bool)>>,
    pub(crate) target: Option<Target>,
    /// `-s`/`-d` prefix lengths asked for, kept to refuse /33 and longer.
    pub(crate) bad_prefix: bool,
}

impl Rule {
    /// A rule that matches every packet and has no target.
    pub fn new() -> Rule {
        Rule::default()
    }

    fn cond<T>(&mut self, value: T) -> Option<Cond<T>> {
        let negated = core::mem::take(&mut self.pending_not);
        Some(Cond { value, negated })
    }

    /// `!`: inverts the next match. (Not `std::ops::Not`: it marks the
    /// next match, it does not invert the rule.)
    #[allow(clippy::should_implement_trait)]
    pub fn not(mut self) -> Rule {
        self.pending_not = true;
        self
    }

    /// `-s addr/len`.
    pub fn src(mut self, addr: Ipv4Addr, prefix_len: u8) -> Rule {
        self.bad_prefix |= prefix_len > 32;
        self.src = self.cond(Net::new(addr, prefix_len));
        self
    }

    /// `-d addr/len`.
    pub fn dst(mut self, addr: Ipv4Addr, prefix_len: u8) -> Rule {
        self.bad_prefix |= prefix_len > 32;
        self.dst = self.cond(Net::new(addr, prefix_len));
        self
    }

    /// `-i`: the device the packet came in on (none on LOCAL_OUT and
    /// POST_ROUTING, where `-i` never matches and `! -i` always does).
    pub fn in_dev(mut self, dev: IfIndex) -> Rule {
        self.in_dev = self.cond(dev);
        self
    }

    /// `-o`: the device the packet leaves by.
    pub fn out_dev(mut self, dev: IfIndex) -> Rule {
        self.out_dev = self.cond(dev);
        self
    }

    /// `-p`.
    pub fn proto(mut self, p: Proto) -> Rule {
        self.proto = self.cond(p);
        self
    }

    /// `-f`: second and later fragments only (`! -f`: unfragmented
    /// packets and first fragments).
    pub fn fragment(mut self) -> Rule {
        self.fragment = self.cond(());
        self
    }

    /// `--sport P` or `--sport LO:HI` (`.sport(1024..=65535)`); needs
    /// `-p tcp` or `-p udp`. Never matches a non-first fragment.
    pub fn sport(mut self, ports: impl Into<PortRange>) -> Rule {
        self.sport = self.cond(ports.into());
        self
    }

    /// `--dport`, as [`Rule::sport`].
    pub fn dport(mut self, ports: impl Into<PortRange>) -> Rule {
        self.dport = self.cond(ports.into());
        self
    }

    /// `--tcp-flags MASK COMP` (needs `-p tcp`): of the flags in `mask`,
    /// exactly those in `comp` are set. Only FIN … CWR count.
    pub fn tcp_flags(mut self, mask: TcpFlags, comp: TcpFlags) -> Rule {
        self.tcp_flags = self.cond(FlagMatch {
            mask: (mask.bits() & 0xff) as u8,
            comp: (comp.bits() & 0xff) as u8,
        });
        self
    }

    /// `--syn`: `--tcp-flags FIN,SYN,RST,ACK SYN`.
    pub fn syn(self) -> Rule {
        self.tcp_flags(
            TcpFlags::FIN | TcpFlags::SYN | TcpFlags::RST | TcpFlags::ACK,
            TcpFlags::SYN,
        )
    }

    /// `--icmp-type T` (needs `-p icmp`), any code; 255 is `any`.
    pub fn icmp_type(mut self, ty: u8) -> Rule {
        self.icmp = self.cond(IcmpMatch {
            ty,
            code_min: 0,
            code_max: u8::MAX,
        });
        self
    }

    /// `--icmp-type T/C`.
    pub fn icmp_type_code(mut self, ty: u8, code: u8) -> Rule {
        self.icmp = self.cond(IcmpMatch {
            ty,
            code_min: code,
            code_max: code,
        });
        self
    }

    /// `-m mark --mark VALUE/MASK`: `(skb->mark & mask) == value`.
    pub fn mark(mut self, value: u32, mask: u32) -> Rule {
        self.mark = self.cond(MarkMatch { value, mask });
        self
    }

    /// `-m conntrack --ctstate S[,S…]`: the packet's conntrack state is
    /// one of `states`. Loads connection tracking.
    pub fn ctstate(mut self, states: CtState) -> Rule {
        self.ctstate = self.cond((states, false));
        self
    }

    /// `-m state --state S[,S…]`: the older spelling of
    /// [`Rule::ctstate`] (`xt_state.c`).
    pub fn state(mut self, states: CtState) -> Rule {
        self.ctstate = self.cond((states, true));
        self
    }

    /// `-j` / `-g`.
    pub fn target(mut self, t: Target) -> Rule {
        self.target = Some(t);
        self
    }

    /// The target, if any.
    pub fn get_target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// `!` given with no match after it.
    pub(crate) fn dangling_not(&self) -> bool {
        self.pending_not
    }

    /// The rule as `iptables -S` prints it in `chain`:
    /// `-A INPUT -p tcp -m tcp --dport 80 -j DROP`.
    pub fn spec<'a>(&'a self, chain: &'a str) -> impl fmt::Display + 'a {
        Spec { chain, rule: self }
    }
}

struct Spec<'a> {
    chain: &'a str,
    rule: &'a Rule,
}

impl fmt::Display for Spec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-A {}", self.chain)?;
        let body = self.rule.is_unconditional() && self.rule.target.is_none();
        if body {
            Ok(())
        } else {
            write!(f, " {}", self.rule)
        }
    }
}

/// Writes words separated by single spaces.
struct Words<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Words<'_, '_> {
    fn word(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        if !self.first {
            self.f.write_str(" ")?;
        }
        self.first = false;
        self.f.write_fmt(args)
    }

    fn cond<T>(
        &mut self,
        c: &Option<Cond<T>>,
        opt: &str,
        show: impl Fn(&T) -> String,
    ) -> fmt::Result {
        match c {
            Some(c) => {
                let bang = if c.negated { "! " } else { "" };
                self.word(format_args!("{bang}{opt} {}", show(&c.value)))
            }
            None => Ok(()),
        }
    }
}

/// `FIN,SYN,…` as `iptables -S` names flag sets (`NONE` for none).
pub(crate) fn flag_names(bits: u8, out: &mut String) {
    const NAMES: [(u8, &str); 8] = [
        (0x01, "FIN"),
        (0x02, "SYN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    if bits == 0 {
        out.push_str("NONE");
        return;
    }
    let mut first = true;
    for (bit, name) in NAMES {
        if bits & bit != 0 {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(name);
        }
    }
}

impl Rule {
    /// No match at all (a rule every packet takes).
    pub(crate) fn is_unconditional(&self) -> bool {
        self.src.is_none()
            && self.dst.is_none()
            && self.in_dev.is_none()
            && self.out_dev.is_none()
            && self.proto.is_none()
            && self.fragment.is_none()
            && self.sport.is_none()
            && self.dport.is_none()
            && self.tcp_flags.is_none()
            && self.icmp.is_none()
            && self.mark.is_none()
            && self.ctstate.is_none()
    }

    /// The module `-m tcp|udp` the port and flag matches belong to.
    fn l4_module(&self) -> Proto {
        self.proto.map_or(Proto::Tcp, |p| p.value)
    }
}

impl fmt::Display for Rule {
    /// The rule as `iptables -S` prints it, after `-A CHAIN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Words { f, first: true };
        w.cond(&self.src, "-s", |n| n.to_string())?;
        w.cond(&self.dst, "-d", |n| n.to_string())?;
        w.cond(&self.in_dev, "-i", |d| d.to_string())?;
        w.cond(&self.out_dev, "-o", |d| d.to_string())?;
        match self.proto {
            Some(p) if p.value.number() == 0 && !p.negated => {}
            _ => w.cond(&self.proto, "-p", |p| p.to_string())?,
        }
        if let Some(c) = self.fragment {
            w.word(format_args!("{}-f", if c.negated { "! " } else { "" }))?;
        }
        if self.sport.is_some() || self.dport.is_some() || self.tcp_flags.is_some() {
            w.word(format_args!("-m {}", self.l4_module()))?;
            w.cond(&self.sport, "--sport", |p| p.to_string())?;
            w.cond(&self.dport, "--dport", |p| p.to_string())?;
            w.cond(&self.tcp_flags, "--tcp-flags", |m| {
                let mut s = String::new();
                flag_names(m.mask, &mut s);
                s.push(' ');
                flag_names(m.comp, &mut s);
                s
            })?;
        }
        if self.icmp.is_some() {
            w.word(format_args!("-m icmp"))?;
            w.cond(&self.icmp, "--icmp-type", |m| {
                if m.ty == u8::MAX {
                    "any".to_string()
                } else if m.code_min == 0 && m.code_max == u8::MAX {
                    m.ty.to_string()
                } else {
                    format!("{}/{}", m.ty, m.code_min)
                }
            })?;
        }
        if self.mark.is_some() {
            w.word(format_args!("-m mark"))?;
            w.cond(&self.mark, "--mark", |m| {
                if m.mask == u32::MAX {
                    format!("{:#x}", m.value)
                } else {
                    format!("{:#x}/{:#x}", m.value, m.mask)
                }
            })?;
        }
        if let Some(c) = self.ctstate {
            let (states, legacy) = c.value;
            let bang = if c.negated { "! " } else { "" };
            if legacy {
                w.word(format_args!("-m state {bang}--state {states}"))?;
            } else {
                w.word(format_args!("-m conntrack {bang}--ctstate {states}"))?;
            }
        }
        if let Some(t) = &self.target {
            w.word(format_args!("{t}"))?;
        }
        Ok(())
    }
}
