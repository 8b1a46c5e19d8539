//! What the TCP benches share: a netpath host on a simulated link.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::sim::{LinkConfig, NodeId, PortId, Sim, SimHost};
use netpath::stack::Stack;
use netpath::time::Duration;
use netpath_wire::ethernet::EthernetAddress;

/// A cable with no latency and no rate limit.
pub fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::ZERO,
        ..LinkConfig::default()
    }
}

/// A netpath host with one NIC (`eth0`, MAC 02:00:00:00:00:`mac_last`) at
/// `addr`/24, cabled to port 0.
pub fn netpath_host(sim: &mut Sim, mac_last: u8, addr: Ipv4Addr) -> NodeId {
    netpath_host_with(sim, mac_last, addr, NicConfig::default())
}

/// [`netpath_host`] with a NIC configured as `cfg`.
pub fn netpath_host_with(sim: &mut Sim, mac_last: u8, addr: Ipv4Addr, cfg: NicConfig) -> NodeId {
    let mut st = Stack::with_pool(sim.pool().clone());
    let nic = st
        .add_nic("eth0", EthernetAddress([2, 0, 0, 0, 0, mac_last]), cfg)
        .expect("nic");
    st.set_up(nic, true).expect("up");
    st.ip_addr_add(nic, addr, 24).expect("addr");
    let mut h = SimHost::new(st);
    h.cable(PortId(0), nic);
    sim.add_node(Box::new(h))
}
