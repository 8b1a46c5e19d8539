//! Interface addresses (`net/ipv4/devinet.c`, `ip addr`): adding an address
//! creates its local route (table local), the subnet's broadcast route and
//! the connected route (table main), as `fib_add_ifaddr` does.

use core::net::Ipv4Addr;

use super::fib::mask;
use super::route::{Route, RouteProto, RouteType, Scope, RT_TABLE_LOCAL, RT_TABLE_MAIN};
use crate::dev::{DevError, IfIndex};
use crate::stack::Stack;

/// One address on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetAddr {
    pub dev: IfIndex,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub broadcast: Ipv4Addr,
}

impl Stack {
    /// `ip addr add ADDR/LEN dev DEV`.
    pub fn ip_addr_add(
        &mut self,
        dev: IfIndex,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), DevError> {
        self.ip.route_gen += 1;
        self.dev(dev)?;
        if prefix_len > 32 || addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
            return Err(DevError::BadParam("invalid IPv4 address or prefix length"));
        }
        if self.ip.addrs.iter().any(|a| a.dev == dev && a.addr == addr) {
            return Err(DevError::BadParam("address already assigned (EEXIST)"));
        }
        let net = mask(addr, prefix_len);
        let host_bits = if prefix_len == 32 {
            0
        } else {
            u32::MAX >> prefix_len
        };
        let broadcast = Ipv4Addr::from(u32::from(net) | host_bits);
        self.ip.addrs.push(InetAddr {
            dev,
            addr,
            prefix_len,
            broadcast,
        });
        let base = Route {
            rtype: RouteType::Local,
            dst: addr,
            prefix_len: 32,
            gateway: None,
            dev: Some(dev),
            metric: 0,
            scope: Scope::Host,
            prefsrc: Some(addr),
            mtu: None,
            mtu_lock: false,
            advmss: None,
            initcwnd: None,
            table: RT_TABLE_LOCAL,
            proto: RouteProto::Kernel,
        };
        self.ip.routes.add(base.clone());
        if prefix_len < 31 {
            self.ip.routes.add(Route {
                rtype: RouteType::Broadcast,
                dst: broadcast,
                scope: Scope::Link,
                ..base.clone()
            });
        }
        if prefix_len < 32 {
            self.ip.routes.add(Route {
                rtype: RouteType::Unicast,
                dst: net,
                prefix_len,
                scope: Scope::Link,
                table: RT_TABLE_MAIN,
                ..base
            });
        }
        self.masquerade_addr_update(dev);
        self.tracer.event(self.now, "inet_rtm_newaddr", Some(dev));
        Ok(())
    }

    /// `ip addr del ADDR/LEN dev DEV`, and the routes it created.
    pub fn ip_addr_del(&mut self, dev: IfIndex, addr: Ipv4Addr) -> Result<(), DevError> {
        self.ip.route_gen += 1;
        let i = self
            .ip
            .addrs
            .iter()
            .position(|a| a.dev == dev && a.addr == addr)
            .ok_or(DevError::BadParam("no such address (EADDRNOTAVAIL)"))?;
        let a = self.ip.addrs.remove(i);
        self.ip.routes.remove_matching(|r| {
            r.proto == RouteProto::Kernel && r.prefsrc == Some(a.addr) && r.dev == Some(dev)
        });
        self.masquerade_addr_update(dev);
        Ok(())
    }

    /// MASQUERADE uses the device's primary (first) address, as
    /// `inet_select_addr` picks it; netfilter learns it when addresses change.
    fn masquerade_addr_update(&mut self, dev: IfIndex) {
        let primary = self.ip.addrs.iter().find(|a| a.dev == dev).map(|a| a.addr);
        self.nf.set_masquerade_addr(dev, primary);
    }

    /// Every address (`ip addr show`).
    pub fn ip_addrs(&self) -> &[InetAddr] {
        &self.ip.addrs
    }

    /// Is `addr` one of this host's addresses (on any device)?
    pub fn is_local_addr(&self, addr: Ipv4Addr) -> bool {
        self.ip.addrs.iter().any(|a| a.addr == addr)
    }

    /// Is `addr` one of `dev`'s addresses?
    pub(crate) fn is_dev_addr(&self, dev: IfIndex, addr: Ipv4Addr) -> bool {
        self.ip.addrs.iter().any(|a| a.dev == dev && a.addr == addr)
    }

    /// `inet_select_addr()`: the source address for sending out of `dev`
    /// towards `dst`: an address of `dev` in the same subnet, else the first
    /// of `dev`, else the first of the host (not loopback).
    pub(crate) fn inet_select_addr(&self, dev: IfIndex, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let on_dev = || self.ip.addrs.iter().filter(|a| a.dev == dev);
        on_dev()
            .find(|a| mask(a.addr, a.prefix_len) == mask(dst, a.prefix_len))
            .or_else(|| on_dev().next())
            .or_else(|| self.ip.addrs.iter().find(|a| !a.addr.is_loopback()))
            .map(|a| a.addr)
    }
}
