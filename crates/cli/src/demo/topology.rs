//! The demo's network, built from netpath stacks on simulated links:
//!
//! ```text
//!  H1 192.0.2.1 ──────────┐ p1 (VLAN 1, untagged)
//!                       [SW: bridge br0, VLAN filtering]── p3 (1 untagged, 10 tagged) ── R eth0  192.0.2.254
//!  H2 203.0.113.2 ────────┘ p2 (VLAN 10, tagged)                                         R eth0.10 203.0.113.254
//!     (on eth0.10)                                                                       R eth1  198.51.100.254 ── H3 198.51.100.1
//! ```
//!
//! R forwards, with a firewall rule: UDP to 198.51.100.1 port 9 from
//! 192.0.2.0/24 is rejected with ICMP admin-prohibited.

use core::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::dev::IfIndex;
use netpath::ipv4::route::Route;
use netpath::netfilter::{Proto, RejectWith, Rule, Table, Target};
use netpath::sim::{LinkConfig, LinkId, NodeId, PortId, Sim, SimHost};
use netpath::stack::Stack;
use netpath_wire::ethernet::EthernetAddress;

pub const H1: &str = "H1";
pub const H2: &str = "H2";
pub const SW: &str = "SW";
pub const R: &str = "R";
pub const H3: &str = "H3";

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// The built network.
pub struct Net {
    pub sim: Sim,
    /// (name, node) in display order.
    pub hosts: Vec<(&'static str, NodeId)>,
    /// H1's link to the switch (captured).
    pub h1_link: LinkId,
    pub far_link: LinkId,
    pub bridge: IfIndex,
}

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn mac(host: u8, nic: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0x4e, 0x50, 0, host, nic])
}

fn stack(sim: &Sim) -> Stack {
    let mut s = Stack::with_pool(sim.pool().clone());
    s.tracer_mut().enable(50_000);
    s
}

fn nic(s: &mut Stack, name: &str, m: EthernetAddress) -> BuildResult<IfIndex> {
    let n = s.add_nic(name, m, NicConfig::default())?;
    s.set_up(n, true)?;
    Ok(n)
}

fn host(sim: &mut Sim, s: Stack, nics: &[IfIndex]) -> NodeId {
    let mut h = SimHost::new(s);
    for (i, n) in nics.iter().enumerate() {
        h.cable(PortId(i as u16), *n);
    }
    sim.add_node(Box::new(h))
}

/// Builds the network; `far` is the R–H3 link's behaviour.
pub fn build(seed: u64, far: LinkConfig) -> BuildResult<Net> {
    let mut sim = Sim::new(seed);

    let mut h1 = stack(&sim);
    let h1e = nic(&mut h1, "eth0", mac(1, 0))?;
    h1.ip_addr_add(h1e, ip("192.0.2.1"), 24)?;
    h1.route_add(Route::unicast(
        ip("0.0.0.0"),
        0,
        Some(ip("192.0.2.254")),
        Some(h1e),
    ))?;

    let mut h2 = stack(&sim);
    let h2e = nic(&mut h2, "eth0", mac(2, 0))?;
    let h2v = h2.add_vlan("eth0.10", h2e, 10)?;
    h2.set_up(h2v, true)?;
    h2.ip_addr_add(h2v, ip("203.0.113.2"), 24)?;
    h2.route_add(Route::unicast(
        ip("0.0.0.0"),
        0,
        Some(ip("203.0.113.254")),
        Some(h2v),
    ))?;

    let mut sw = stack(&sim);
    let br = sw.add_bridge("br0", mac(3, 9))?;
    let mut ports = Vec::new();
    for i in 0..3u8 {
        let p = nic(&mut sw, &format!("p{}", i + 1), mac(3, i))?;
        sw.bridge_add_port(br, p)?;
        ports.push(p);
    }
    sw.set_up(br, true)?;
    sw.bridge_set_vlan_filtering(br, true)?;
    sw.bridge_vlan_del(br, ports[1], 1)?;
    sw.bridge_vlan_add(br, ports[1], 10, false, false)?;
    sw.bridge_vlan_add(br, ports[2], 10, false, false)?;

    let mut r = stack(&sim);
    let r0 = nic(&mut r, "eth0", mac(4, 0))?;
    let r1 = nic(&mut r, "eth1", mac(4, 1))?;
    let r0v = r.add_vlan("eth0.10", r0, 10)?;
    r.set_up(r0v, true)?;
    r.ip_addr_add(r0, ip("192.0.2.254"), 24)?;
    r.ip_addr_add(r0v, ip("203.0.113.254"), 24)?;
    r.ip_addr_add(r1, ip("198.51.100.254"), 24)?;
    r.set_ip_forward(true);
    let rule = Rule::new()
        .src(ip("192.0.2.0"), 24)
        .dst(ip("198.51.100.1"), 32)
        .proto(Proto::Udp)
        .dport(9)
        .target(Target::Reject(RejectWith::IcmpAdminProhibited));
    r.netfilter_mut().append(Table::Filter, "FORWARD", rule)?;

    let mut h3 = stack(&sim);
    let h3e = nic(&mut h3, "eth0", mac(5, 0))?;
    h3.ip_addr_add(h3e, ip("198.51.100.1"), 24)?;
    h3.route_add(Route::unicast(
        ip("0.0.0.0"),
        0,
        Some(ip("198.51.100.254")),
        Some(h3e),
    ))?;

    let n_h1 = host(&mut sim, h1, &[h1e]);
    let n_h2 = host(&mut sim, h2, &[h2e]);
    let n_sw = host(&mut sim, sw, &ports);
    let n_r = host(&mut sim, r, &[r0, r1]);
    let n_h3 = host(&mut sim, h3, &[h3e]);
    let near = LinkConfig {
        latency: netpath::time::Duration::from_micros(50),
        bandwidth_bps: Some(1_000_000_000),
        ..LinkConfig::default()
    };
    let h1_link = sim.add_link(near, &[(n_h1, PortId(0)), (n_sw, PortId(0))])?;
    sim.add_link(near, &[(n_h2, PortId(0)), (n_sw, PortId(1))])?;
    sim.add_link(near, &[(n_sw, PortId(2)), (n_r, PortId(0))])?;
    let far_link = sim.add_link(far, &[(n_r, PortId(1)), (n_h3, PortId(0))])?;
    Ok(Net {
        sim,
        hosts: vec![(H1, n_h1), (H2, n_h2), (SW, n_sw), (R, n_r), (H3, n_h3)],
        h1_link,
        far_link,
        bridge: br,
    })
}

impl Net {
    pub fn node(&self, name: &str) -> NodeId {
        self.hosts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
            .unwrap_or(self.hosts[0].1)
    }

    pub fn stack(&self, name: &str) -> Option<&Stack> {
        self.sim.node::<SimHost>(self.node(name)).map(|h| &h.stack)
    }

    pub fn with<R>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Stack, netpath::time::Instant) -> R,
    ) -> Option<R> {
        let id = self.node(name);
        self.sim
            .with_node(id, |h: &mut SimHost, now| f(&mut h.stack, now))
    }
}
