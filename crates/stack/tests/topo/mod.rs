//! Building simulated topologies of netpath hosts for the IPv4 tests:
//! hosts with NICs and addresses, links between ports, routers.
#![allow(dead_code)]

use core::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::dev::IfIndex;
use netpath::ipv4::raw::RawId;
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::skb::Skb;
use netpath::stack::Stack;
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::EthernetAddress;
use std::sync::{Arc, Mutex};

/// A byte sink shared with the test (a pcap capture's output, read back).
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub struct Topo {
    pub sim: Sim,
    pub links: Vec<netpath::sim::LinkId>,
    next_mac: u8,
}

pub struct Host {
    pub node: NodeId,
    pub nics: Vec<IfIndex>,
}

impl Topo {
    pub fn new(seed: u64) -> Topo {
        Topo {
            sim: Sim::new(seed),
            links: Vec::new(),
            next_mac: 1,
        }
    }

    /// A host with one NIC per address (`"192.0.2.1/24"`), each up, cabled
    /// to ports 0, 1, …; tracing on.
    pub fn host(&mut self, addrs: &[&str]) -> Host {
        self.host_with(addrs, NicConfig::default())
    }

    pub fn host_with(&mut self, addrs: &[&str], cfg: NicConfig) -> Host {
        let mut stack = Stack::with_pool(self.sim.pool().clone());
        stack.tracer_mut().enable(20_000);
        let mut nics = Vec::new();
        let mut host = None;
        for (i, a) in addrs.iter().enumerate() {
            let mac = EthernetAddress([0x02, 0, 0, 0, self.next_mac, i as u8]);
            let nic = stack.add_nic(&format!("eth{i}"), mac, cfg).unwrap();
            stack.set_up(nic, true).unwrap();
            let (addr, len) = a.split_once('/').unwrap();
            stack
                .ip_addr_add(nic, ip(addr), len.parse().unwrap())
                .unwrap();
            nics.push(nic);
        }
        self.next_mac += 1;
        let mut h = SimHost::new(stack);
        for (i, n) in nics.iter().enumerate() {
            h.cable(PortId(i as u16), *n);
        }
        host.get_or_insert(());
        Host {
            node: self.sim.add_node(Box::new(h)),
            nics,
        }
    }

    /// A cable between NIC `a_nic` of host `a` and NIC `b_nic` of host `b`.
    pub fn link(&mut self, a: &Host, a_nic: usize, b: &Host, b_nic: usize, cfg: LinkConfig) {
        let ends = [
            (a.node, PortId(a_nic as u16)),
            (b.node, PortId(b_nic as u16)),
        ];
        let l = self.sim.add_link(cfg, &ends).unwrap();
        self.links.push(l);
    }

    /// `ip route add default via GW` on `h`'s first NIC.
    pub fn default_route(&mut self, h: &Host, gw: &str) {
        let dev = h.nics[0];
        let r = netpath::ipv4::route::Route::unicast(ip("0.0.0.0"), 0, Some(ip(gw)), Some(dev));
        self.with(h, |s, _| s.route_add(r)).unwrap();
    }

    /// A (192.0.2.1) — R (192.0.2.254 | 198.51.100.254, forwarding) — C
    /// (198.51.100.1), the far link's MTU `far_mtu` on both ends.
    pub fn routed(seed: u64, far_mtu: u32) -> (Topo, Host, Host, Host) {
        let mut t = Topo::new(seed);
        let a = t.host(&["192.0.2.1/24"]);
        let r = t.host(&["192.0.2.254/24", "198.51.100.254/24"]);
        let c = t.host(&["198.51.100.1/24"]);
        t.link(&a, 0, &r, 0, LinkConfig::default());
        t.link(&r, 1, &c, 0, LinkConfig::default());
        t.default_route(&a, "192.0.2.254");
        t.default_route(&c, "198.51.100.254");
        let (rn1, cn) = (r.nics[1], c.nics[0]);
        t.with(&r, |s, _| {
            s.set_ip_forward(true);
            s.set_mtu(rn1, far_mtu).unwrap();
        });
        t.with(&c, |s, _| s.set_mtu(cn, far_mtu).unwrap());
        (t, a, r, c)
    }

    pub fn stack(&self, h: &Host) -> &Stack {
        &self.sim.node::<SimHost>(h.node).unwrap().stack
    }

    pub fn with<R>(&mut self, h: &Host, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        self.sim
            .with_node(h.node, |x: &mut SimHost, now| f(&mut x.stack, now))
            .unwrap()
    }

    pub fn run_ms(&mut self, ms: u64) {
        let t = self.sim.now() + Duration::from_millis(ms);
        self.sim.run_until(t);
    }

    pub fn raw_drain(&mut self, h: &Host, id: RawId) -> Vec<Skb> {
        self.with(h, |s, _| std::iter::from_fn(|| s.raw_recv(id)).collect())
    }

    /// Trace point names of a host, in order.
    pub fn points(&self, h: &Host) -> Vec<&'static str> {
        self.stack(h).tracer().events().map(|e| e.point).collect()
    }
}

/// `needles` occur in `hay` in order.
pub fn in_order(hay: &[&str], needles: &[&str]) -> bool {
    let mut it = hay.iter();
    needles.iter().all(|n| it.any(|h| h == n))
}

/// (type, code, ident, seq) of an ICMP message at `skb.data()`.
pub fn icmp_of(skb: &Skb) -> (u8, u8, u16, u16) {
    let d = skb.data();
    (
        d[0],
        d[1],
        u16::from_be_bytes([d[4], d[5]]),
        u16::from_be_bytes([d[6], d[7]]),
    )
}

/// (src, dst, ttl, tos, df, id, total_len) of the IPv4 header at `skb.network_header_bytes()`.
pub fn ip_of(skb: &Skb) -> (Ipv4Addr, Ipv4Addr, u8, u8, bool, u16, u16) {
    let p = netpath_wire::ipv4::Ipv4Packet::new_checked(skb.network_header_bytes()).unwrap();
    (
        p.src_addr(),
        p.dst_addr(),
        p.ttl(),
        p.tos(),
        p.dont_frag(),
        p.ident(),
        p.total_len(),
    )
}
