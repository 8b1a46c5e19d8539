//! Routing: tables, policy rules, lookups and the route a packet carries
//! (`net/ipv4/route.c`, `fib_frontend.c`, `fib_rules.c`). Seed ingress step
//! 9 "look up the route: is it for me or for another host?" and egress step
//! 4 "look up the route to decide which NIC sends it (or return host
//! unreachable)"; `dst_input` / `dst_output` act on the result.
//!
//! Tables are numbered as Linux's (local 255, main 254, default 253), each a
//! longest-prefix-match [`Fib`]. Policy rules pick the tables to search in
//! priority order (defaults: 0 local, 32766 main, 32767 default). Route
//! types are Linux's `RTN_*`; blackhole, unreachable and prohibit give
//! Linux's errors. PMTU exceptions (from ICMP "fragmentation needed") lower
//! a destination's MTU until they expire (`mtu_expires`).

use core::fmt;
use core::net::Ipv4Addr;
use std::collections::BTreeMap;

use super::fib::{mask, Fib};
use crate::dev::IfIndex;
use crate::drop::DropReason;
use crate::skb::{PacketType, Skb};
use crate::stack::Stack;
use crate::time::Instant;

pub const RT_TABLE_DEFAULT: u32 = 253;
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

/// `RTN_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Multicast,
    /// Silently discard.
    Blackhole,
    /// Discard; ICMP host unreachable; `EHOSTUNREACH` to local senders.
    Unreachable,
    /// Discard; ICMP administratively prohibited; `EACCES` to local senders.
    Prohibit,
}

/// `RT_SCOPE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Universe,
    Link,
    Host,
}

/// Who made a route (`proto kernel|static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteProto {
    Kernel,
    Static,
}

/// One route (`struct fib_info` + `fib_alias`, simplified to one nexthop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rtype: RouteType,
    pub dst: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<IfIndex>,
    /// Lower wins among routes to the same prefix.
    pub metric: u32,
    pub scope: Scope,
    pub prefsrc: Option<Ipv4Addr>,
    /// `mtu N` route metric.
    pub mtu: Option<u32>,
    /// `mtu lock N`: no path MTU discovery on this route (senders leave DF
    /// clear unless they insist).
    pub mtu_lock: bool,
    /// `advmss N`: the MSS TCP announces for connections on this route.
    pub advmss: Option<u32>,
    /// `initcwnd N`: TCP's initial congestion window, segments.
    pub initcwnd: Option<u32>,
    pub table: u32,
    pub proto: RouteProto,
}

impl Route {
    /// A static unicast route `DST/LEN [via GW] dev DEV` in table main.
    pub fn unicast(
        dst: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        dev: Option<IfIndex>,
    ) -> Route {
        Route {
            rtype: RouteType::Unicast,
            dst,
            prefix_len,
            gateway,
            dev,
            metric: 0,
            scope: if gateway.is_some() {
                Scope::Universe
            } else {
                Scope::Link
            },
            prefsrc: None,
            mtu: None,
            mtu_lock: false,
            advmss: None,
            initcwnd: None,
            table: RT_TABLE_MAIN,
            proto: RouteProto::Static,
        }
    }

    /// A route of a special type (`blackhole|unreachable|prohibit DST/LEN`).
    pub fn special(rtype: RouteType, dst: Ipv4Addr, prefix_len: u8) -> Route {
        Route {
            rtype,
            scope: Scope::Universe,
            ..Route::unicast(dst, prefix_len, None, None)
        }
    }
}

impl fmt::Display for Route {
    /// Like one line of `ip route show table all`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.rtype {
            RouteType::Unicast => "",
            RouteType::Local => "local ",
            RouteType::Broadcast => "broadcast ",
            RouteType::Multicast => "multicast ",
            RouteType::Blackhole => "blackhole ",
            RouteType::Unreachable => "unreachable ",
            RouteType::Prohibit => "prohibit ",
        };
        if self.prefix_len == 0 {
            write!(f, "{t}default")?;
        } else if self.prefix_len == 32 {
            write!(f, "{t}{}", self.dst)?;
        } else {
            write!(f, "{t}{}/{}", self.dst, self.prefix_len)?;
        }
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = self.dev {
            write!(f, " dev {d}")?;
        }
        match self.table {
            RT_TABLE_MAIN => {}
            RT_TABLE_LOCAL => write!(f, " table local")?,
            t => write!(f, " table {t}")?,
        }
        if self.proto == RouteProto::Kernel {
            write!(f, " proto kernel")?;
        }
        match self.scope {
            Scope::Link => write!(f, " scope link")?,
            Scope::Host => write!(f, " scope host")?,
            Scope::Universe => {}
        }
        if let Some(s) = self.prefsrc {
            write!(f, " src {s}")?;
        }
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        if let Some(m) = self.mtu {
            let lock = if self.mtu_lock { "lock " } else { "" };
            write!(f, " mtu {lock}{m}")?;
        }
        if let Some(m) = self.advmss {
            write!(f, " advmss {m}")?;
        }
        if let Some(w) = self.initcwnd {
            write!(f, " initcwnd {w}")?;
        }
        Ok(())
    }
}

/// What a policy rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// `lookup TABLE`.
    Table(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// `ip rule`: selectors and an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibRule {
    pub priority: u32,
    pub from: Option<(Ipv4Addr, u8)>,
    pub to: Option<(Ipv4Addr, u8)>,
    pub iif: Option<IfIndex>,
    pub oif: Option<IfIndex>,
    /// `fwmark VALUE/MASK`.
    pub fwmark: Option<(u32, u32)>,
    pub action: RuleAction,
}

impl FibRule {
    pub fn lookup(priority: u32, table: u32) -> FibRule {
        FibRule {
            priority,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            action: RuleAction::Table(table),
        }
    }

    fn matches(&self, k: &FlowKey) -> bool {
        let pfx = |p: Option<(Ipv4Addr, u8)>, a: Ipv4Addr| {
            p.is_none_or(|(n, l)| mask(a, l) == mask(n, l))
        };
        pfx(self.from, k.saddr.unwrap_or(Ipv4Addr::UNSPECIFIED))
            && pfx(self.to, k.daddr)
            && self.iif.is_none_or(|i| k.iif == Some(i))
            && self.oif.is_none_or(|o| k.oif == Some(o))
            && self.fwmark.is_none_or(|(v, m)| k.mark & m == v)
    }
}

/// The lookup key (`struct flowi4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub daddr: Ipv4Addr,
    pub saddr: Option<Ipv4Addr>,
    pub iif: Option<IfIndex>,
    pub oif: Option<IfIndex>,
    pub mark: u32,
}

/// Why a route lookup failed, with the errno Linux returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// ENETUNREACH: no route.
    NetUnreachable,
    /// EHOSTUNREACH: an unreachable route (or not forwarding).
    HostUnreachable,
    /// EACCES: a prohibit route.
    Prohibited,
    /// EINVAL: a blackhole route (local senders); forwarded packets vanish.
    Blackhole,
    /// EINVAL: bad source address or parameters.
    Invalid,
}

impl RouteError {
    /// The errno Linux gives the application.
    pub fn errno(self) -> &'static str {
        match self {
            RouteError::NetUnreachable => "ENETUNREACH",
            RouteError::HostUnreachable => "EHOSTUNREACH",
            RouteError::Prohibited => "EACCES",
            RouteError::Blackhole | RouteError::Invalid => "EINVAL",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            RouteError::NetUnreachable => "network is unreachable",
            RouteError::HostUnreachable => "no route to host",
            RouteError::Prohibited => "permission denied (prohibit route)",
            RouteError::Blackhole => "invalid argument (blackhole route)",
            RouteError::Invalid => "invalid argument",
        };
        write!(f, "{what} ({})", self.errno())
    }
}

impl std::error::Error for RouteError {}

/// What a received packet's route says to do with it (`dst->input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstInput {
    /// `ip_local_deliver`.
    Local,
    /// `ip_forward`.
    Forward,
    /// `ip_error`: drop, with an ICMP unreachable of this code if forwarding.
    Error(RouteError),
}

/// The route a packet follows (`struct rtable`), carried by value in the skb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dst {
    pub rtype: RouteType,
    /// Output device (for local delivery: the device it arrived on).
    pub dev: IfIndex,
    /// Next hop if not on-link.
    pub gateway: Option<Ipv4Addr>,
    /// Path MTU.
    pub mtu: u32,
    /// The MTU is locked (`RTAX_MTU` lock): senders that only *want* PMTU
    /// discovery clear DF (`ip_dont_fragment`).
    pub mtu_locked: bool,
    /// Source address to use.
    pub prefsrc: Option<Ipv4Addr>,
    pub input: DstInput,
}

/// The route metrics TCP reads when a connection starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteMetrics {
    /// `advmss`.
    pub advmss: Option<u32>,
    /// `initcwnd`.
    pub initcwnd: Option<u32>,
}

impl Dst {
    /// The address to resolve with ARP for `daddr` (`rt_nexthop`).
    pub fn nexthop(&self, daddr: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(daddr)
    }
}

/// The routing tables, rules and PMTU exceptions of one stack.
#[derive(Debug)]
pub struct RouteTables {
    tables: BTreeMap<u32, Fib<Vec<Route>>>,
    rules: Vec<FibRule>,
    /// Learned path MTUs: destination → (mtu, expires).
    /// PMTU exceptions: destination, MTU, expiry, locked (the reported MTU
    /// was below `min_pmtu`: DF is then cleared, as Linux's locked MTU).
    pmtu: Vec<(Ipv4Addr, u32, Instant, bool)>,
}

impl Default for RouteTables {
    fn default() -> Self {
        RouteTables {
            tables: BTreeMap::new(),
            rules: vec![
                FibRule::lookup(0, RT_TABLE_LOCAL),
                FibRule::lookup(32766, RT_TABLE_MAIN),
                FibRule::lookup(32767, RT_TABLE_DEFAULT),
            ],
            pmtu: Vec::new(),
        }
    }
}

impl RouteTables {
    /// Adds (or replaces the same prefix/metric/type in its table).
    pub(crate) fn add(&mut self, r: Route) {
        let t = self.tables.entry(r.table).or_default();
        let dst = mask(r.dst, r.prefix_len);
        let r = Route { dst, ..r };
        match t.get_mut(dst, r.prefix_len) {
            Some(list) => {
                list.retain(|x| {
                    !(x.metric == r.metric
                        && x.dev == r.dev
                        && x.rtype == r.rtype
                        && x.gateway == r.gateway)
                });
                list.push(r);
                list.sort_by_key(|x| x.metric);
            }
            None => {
                t.insert(dst, r.prefix_len, vec![r]);
            }
        }
    }

    pub(crate) fn remove_matching(&mut self, f: impl Fn(&Route) -> bool) -> usize {
        let mut n = 0;
        for t in self.tables.values_mut() {
            let keys: Vec<(Ipv4Addr, u8)> = t.iter().map(|(p, l, _)| (p, l)).collect();
            for (p, l) in keys {
                let mut empty = false;
                if let Some(list) = t.get_mut(p, l) {
                    let before = list.len();
                    list.retain(|r| !f(r));
                    n += before - list.len();
                    empty = list.is_empty();
                }
                if empty {
                    t.remove(p, l);
                }
            }
        }
        n
    }

    /// Every route of every table.
    pub fn all(&self) -> Vec<Route> {
        let mut v: Vec<Route> = self
            .tables
            .values()
            .flat_map(|t| t.iter().flat_map(|(_, _, l)| l.iter().cloned()))
            .collect();
        v.sort_by(|a, b| {
            (b.table, u32::from(a.dst), a.prefix_len, a.metric).cmp(&(
                a.table,
                u32::from(b.dst),
                b.prefix_len,
                b.metric,
            ))
        });
        v
    }

    pub fn rules(&self) -> &[FibRule] {
        &self.rules
    }

    /// `fib_lookup()`: rules in priority order; the first table with a
    /// matching prefix decides (its lowest-metric route whose device is
    /// usable).
    fn lookup(&self, k: &FlowKey, dev_ok: &dyn Fn(IfIndex) -> bool) -> Result<&Route, RouteError> {
        for rule in &self.rules {
            if !rule.matches(k) {
                continue;
            }
            let table = match rule.action {
                RuleAction::Table(t) => t,
                RuleAction::Blackhole => return Err(RouteError::Blackhole),
                RuleAction::Unreachable => return Err(RouteError::HostUnreachable),
                RuleAction::Prohibit => return Err(RouteError::Prohibited),
            };
            let Some(fib) = self.tables.get(&table) else {
                continue;
            };
            let Some((_, _, list)) = fib.lookup(k.daddr) else {
                continue;
            };
            let usable = list.iter().find(|r| {
                r.dev.is_none_or(dev_ok)
                    && k.oif.is_none_or(|o| r.dev.is_none() || r.dev == Some(o))
            });
            if let Some(r) = usable {
                return Ok(r);
            }
        }
        Err(RouteError::NetUnreachable)
    }

    /// Whether any PMTU exception exists (they expire with time, so a
    /// cached route is not trusted while there are some).
    pub(crate) fn has_pmtu_exceptions(&self) -> bool {
        !self.pmtu.is_empty()
    }

    fn pmtu_of(&self, daddr: Ipv4Addr, now: Instant) -> Option<(u32, bool)> {
        self.pmtu
            .iter()
            .find(|(d, _, exp, _)| *d == daddr && *exp > now)
            .map(|(_, m, _, l)| (*m, *l))
    }
}

impl Stack {
    /// `ip route add` (into `r.table`). The device must exist.
    pub fn route_add(&mut self, r: Route) -> Result<(), RouteError> {
        self.ip.route_gen += 1;
        if r.prefix_len > 32 {
            return Err(RouteError::Invalid);
        }
        if let Some(d) = r.dev {
            self.dev(d).map_err(|_| RouteError::Invalid)?;
        }
        if r.rtype == RouteType::Unicast && r.dev.is_none() && r.gateway.is_none() {
            return Err(RouteError::Invalid);
        }
        self.ip.routes.add(r);
        Ok(())
    }

    /// `ip route replace`: the route to `r`'s prefix with `r`'s metric in
    /// `r.table` becomes `r` (added if there was none).
    pub fn route_replace(&mut self, r: Route) -> Result<(), RouteError> {
        let d = mask(r.dst, r.prefix_len);
        self.ip.routes.remove_matching(|x| {
            x.table == r.table && x.dst == d && x.prefix_len == r.prefix_len && x.metric == r.metric
        });
        self.route_add(r)
    }

    /// `ip route change`: like [`Stack::route_replace`], but the route must
    /// exist (`Invalid` otherwise, as Linux's ENOENT).
    pub fn route_change(&mut self, r: Route) -> Result<(), RouteError> {
        let d = mask(r.dst, r.prefix_len);
        let exists = self.routes().iter().any(|x| {
            x.table == r.table && x.dst == d && x.prefix_len == r.prefix_len && x.metric == r.metric
        });
        if !exists {
            return Err(RouteError::Invalid);
        }
        self.route_replace(r)
    }

    /// `ip route del DST/LEN [table T]`: removes the routes to that prefix.
    pub fn route_del(
        &mut self,
        dst: Ipv4Addr,
        prefix_len: u8,
        table: u32,
    ) -> Result<(), RouteError> {
        self.ip.route_gen += 1;
        let d = mask(dst, prefix_len);
        let n = self
            .ip
            .routes
            .remove_matching(|r| r.table == table && r.dst == d && r.prefix_len == prefix_len);
        if n == 0 {
            Err(RouteError::Invalid)
        } else {
            Ok(())
        }
    }

    /// `ip route show table all`.
    pub fn routes(&self) -> Vec<Route> {
        self.ip.routes.all()
    }

    /// `ip rule add`.
    pub fn rule_add(&mut self, rule: FibRule) {
        self.ip.route_gen += 1;
        let rules = &mut self.ip.routes.rules;
        let at = rules
            .iter()
            .position(|r| r.priority > rule.priority)
            .unwrap_or(rules.len());
        rules.insert(at, rule);
    }

    /// `ip rule show`.
    pub fn rules(&self) -> &[FibRule] {
        self.ip.routes.rules()
    }

    /// Records a path MTU learned from ICMP "fragmentation needed".
    pub(crate) fn update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) {
        let now = self.now;
        // __ip_rt_update_pmtu: below min_pmtu, the MTU is locked at it.
        let locked = mtu < self.ip.sysctl.min_pmtu;
        let mtu = mtu.max(self.ip.sysctl.min_pmtu);
        let exp = now + self.ip.sysctl.mtu_expires;
        let t = &mut self.ip.routes.pmtu;
        t.retain(|(d, _, e, _)| *d != daddr && *e > now);
        t.push((daddr, mtu, exp, locked));
        self.ip.route_gen += 1;
        self.tracer
            .event_detail(now, "ip_rt_update_pmtu", None, u64::from(mtu));
    }

    fn dev_usable(&self, d: IfIndex) -> bool {
        self.dev(d).is_ok_and(|x| x.flags.up)
    }

    /// `ip_route_output_key()`: the route for a packet this host sends.
    pub fn ip_route_output(
        &self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
        oif: Option<IfIndex>,
        mark: u32,
    ) -> Result<Dst, RouteError> {
        self.ip_route_output_metrics(daddr, saddr, oif, mark)
            .map(|(d, _)| d)
    }

    /// [`Stack::ip_route_output`], with the route's `advmss` and `initcwnd`
    /// metrics (TCP reads them when a connection starts; they stay out of
    /// [`Dst`], which rides in every skb).
    pub(crate) fn ip_route_output_metrics(
        &self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
        oif: Option<IfIndex>,
        mark: u32,
    ) -> Result<(Dst, RouteMetrics), RouteError> {
        if let Some(s) = saddr {
            if !s.is_unspecified() && !self.is_local_addr(s) {
                return Err(RouteError::Invalid);
            }
        }
        let key = FlowKey {
            daddr,
            saddr,
            iif: None,
            oif,
            mark,
        };
        let dev_ok = |d: IfIndex| self.dev_usable(d);
        // Limited broadcast out of a given device needs no route.
        if daddr.is_broadcast() {
            let dev = oif.ok_or(RouteError::NetUnreachable)?;
            let dst = self.dst_for(
                RouteType::Broadcast,
                dev,
                None,
                None,
                daddr,
                DstInput::Local,
            );
            return Ok((dst, RouteMetrics::default()));
        }
        let r = self.ip.routes.lookup(&key, &dev_ok)?;
        match r.rtype {
            RouteType::Blackhole => return Err(RouteError::Blackhole),
            RouteType::Unreachable => return Err(RouteError::HostUnreachable),
            RouteType::Prohibit => return Err(RouteError::Prohibited),
            _ => {}
        }
        let (dev, gw) = match r.rtype {
            // Local destinations go out of the loopback device.
            RouteType::Local => (IfIndex(1), None),
            _ => match r.dev {
                Some(d) => (d, r.gateway),
                None => {
                    // `via GW` without a device: the device that reaches GW.
                    let gw = r.gateway.ok_or(RouteError::NetUnreachable)?;
                    let k2 = FlowKey { daddr: gw, ..key };
                    let via = self.ip.routes.lookup(&k2, &dev_ok)?;
                    (via.dev.ok_or(RouteError::NetUnreachable)?, Some(gw))
                }
            },
        };
        let mut dst = self.dst_for(r.rtype, dev, gw, Some(r), daddr, DstInput::Local);
        dst.prefsrc = r.prefsrc.or_else(|| self.inet_select_addr(dev, daddr));
        let metrics = RouteMetrics {
            advmss: r.advmss,
            initcwnd: r.initcwnd,
        };
        Ok((dst, metrics))
    }

    fn dst_for(
        &self,
        rtype: RouteType,
        dev: IfIndex,
        gateway: Option<Ipv4Addr>,
        route: Option<&Route>,
        daddr: Ipv4Addr,
        input: DstInput,
    ) -> Dst {
        let dev_mtu = self.dev(dev).map_or(1500, |d| d.mtu);
        let route_mtu = route.and_then(|r| r.mtu);
        let mut mtu = route_mtu.unwrap_or(dev_mtu).min(dev_mtu);
        let mut mtu_locked = route_mtu.is_some() && route.is_some_and(|r| r.mtu_lock);
        // A locked route MTU takes no PMTU exception (ip_rt_update_pmtu
        // ignores locked routes).
        if !mtu_locked {
            if let Some((p, locked)) = self.ip.routes.pmtu_of(daddr, self.now) {
                mtu = mtu.min(p);
                mtu_locked = locked;
            }
        }
        Dst {
            rtype,
            dev,
            gateway,
            mtu,
            mtu_locked,
            prefsrc: None,
            input,
        }
    }

    /// `ip route get DST [from SRC] [iif DEV] [oif DEV] [mark M]`: an input
    /// lookup when `iif` is given, else an output lookup.
    pub fn route_get(
        &self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
        iif: Option<IfIndex>,
        oif: Option<IfIndex>,
        mark: u32,
    ) -> Result<Dst, RouteError> {
        match iif {
            Some(i) => {
                self.route_input_lookup(daddr, saddr.unwrap_or(Ipv4Addr::UNSPECIFIED), i, mark)
            }
            None => self.ip_route_output(daddr, saddr, oif, mark),
        }
    }

    /// The input route for a packet `saddr` → `daddr` that arrived on `iif`.
    fn route_input_lookup(
        &self,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        iif: IfIndex,
        mark: u32,
    ) -> Result<Dst, RouteError> {
        // Martians: a source that cannot be (multicast, limited broadcast,
        // loopback from outside).
        if saddr.is_multicast()
            || saddr.is_broadcast()
            || (saddr.is_loopback() && iif != IfIndex(1))
        {
            return Err(RouteError::Invalid);
        }
        if daddr.is_broadcast() || daddr.is_multicast() {
            let t = if daddr.is_broadcast() {
                RouteType::Broadcast
            } else {
                RouteType::Multicast
            };
            return Ok(self.dst_for(t, iif, None, None, daddr, DstInput::Local));
        }
        let key = FlowKey {
            daddr,
            saddr: Some(saddr),
            iif: Some(iif),
            oif: None,
            mark,
        };
        let dev_ok = |d: IfIndex| self.dev_usable(d);
        let r = match self.ip.routes.lookup(&key, &dev_ok) {
            Ok(r) => r,
            Err(RouteError::NetUnreachable) if !self.ip.forwarding(iif) => {
                return Err(RouteError::HostUnreachable)
            }
            Err(e) => return Err(e),
        };
        match r.rtype {
            RouteType::Local | RouteType::Broadcast => {
                Ok(self.dst_for(r.rtype, iif, None, None, daddr, DstInput::Local))
            }
            RouteType::Multicast => {
                Ok(self.dst_for(r.rtype, iif, None, None, daddr, DstInput::Local))
            }
            RouteType::Blackhole => Err(RouteError::Blackhole),
            RouteType::Unreachable => Err(RouteError::HostUnreachable),
            RouteType::Prohibit => Err(RouteError::Prohibited),
            RouteType::Unicast => {
                if !self.ip.forwarding(iif) {
                    return Err(RouteError::HostUnreachable);
                }
                let (dev, gw) = match r.dev {
                    Some(d) => (d, r.gateway),
                    None => {
                        let gw = r.gateway.ok_or(RouteError::NetUnreachable)?;
                        let via = self
                            .ip
                            .routes
                            .lookup(&FlowKey { daddr: gw, ..key }, &dev_ok)?;
                        (via.dev.ok_or(RouteError::NetUnreachable)?, Some(gw))
                    }
                };
                Ok(self.dst_for(
                    RouteType::Unicast,
                    dev,
                    gw,
                    Some(r),
                    daddr,
                    DstInput::Forward,
                ))
            }
        }
    }

    /// `ip_route_input_noref()`: attaches the input route to a received
    /// packet (`skb->_skb_refdst`); errors become `DstInput::Error`, which
    /// `dst_input` turns into `ip_error`.
    pub(crate) fn ip_route_input(
        &mut self,
        skb: &mut Skb,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
    ) -> Result<(), DropReason> {
        let Some(iif) = skb.meta.ingress_dev else {
            return Err(DropReason::NotSpecified);
        };
        self.tracer.skb(self.now, "ip_route_input_noref", skb);
        let dst = match self.route_input_lookup(daddr, saddr, iif, skb.meta.mark) {
            Ok(d) => d,
            Err(RouteError::Invalid) => return Err(DropReason::IpInaddrerrors),
            Err(e) => Dst {
                rtype: RouteType::Unreachable,
                dev: iif,
                gateway: None,
                mtu: 0,
                mtu_locked: false,
                prefsrc: None,
                input: DstInput::Error(e),
            },
        };
        // A frame for another host's MAC that routing would deliver here
        // (promiscuous capture) is still not ours.
        if skb.meta.pkt_type == PacketType::OtherHost {
            return Err(DropReason::OtherHost);
        }
        skb.meta.dst = Some(dst);
        Ok(())
    }
}
