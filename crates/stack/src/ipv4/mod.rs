//! IPv4: seed ingress steps 9–10 and egress steps 4–6, plus forwarding
//! (`net/ipv4`).
//!
//! | file | Linux | stage |
//! |---|---|---|
//! | `input.rs` | `ip_input.c` | `ip_rcv`, `ip_rcv_finish`, `ip_local_deliver` |
//! | `forward.rs` | `ip_forward.c` | `ip_forward` |
//! | `output.rs` | `ip_output.c` | `ip_queue_xmit`, `ip_send_skb`, `ip_local_out`, `dst_output`, `ip_output`, `ip_finish_output2` |
//! | `fragment.rs`, `defrag.rs` | `ip_output.c`, `ip_fragment.c` | fragmentation, reassembly |
//! | `route.rs`, `fib.rs` | `route.c`, `fib_frontend.c`, `fib_rules.c`, `fib_trie.c` | routing tables, rules, lookups, `dst_input` / `dst_output` |
//! | `addr.rs` | `devinet.c` | interface addresses, connected and local routes |
//! | `icmp.rs` | `icmp.c` | echo, errors, rate limits |
//! | `ipip.rs` | `ipip.c`, `ip_tunnel.c` | IP-in-IP tunnel device |

pub mod addr;
pub mod defrag;
pub mod fib;
pub mod forward;
pub mod fragment;
pub mod icmp;
pub mod input;
pub mod ipip;
pub mod output;
pub mod raw;
pub mod reject;
pub mod route;

use crate::dev::IfIndex;
use crate::mib::Ipv4Mibs;
use crate::time::Duration;

/// `net.ipv4.*` settings, with Linux's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Sysctl {
    /// `net.ipv4.ip_forward` (0: a host, not a router).
    pub ip_forward: bool,
    /// `net.ipv4.ip_default_ttl`.
    pub ip_default_ttl: u8,
    /// `net.ipv4.ip_no_pmtu_disc` (0: set DF and do PMTU discovery).
    pub ip_no_pmtu_disc: bool,
    /// `net.ipv4.ip_early_demux` (with `net.ipv4.tcp_early_demux`): a
    /// segment of an established TCP connection takes the route its socket
    /// cached instead of a routing lookup.
    pub ip_early_demux: bool,
    /// `net.ipv4.icmp_ratelimit` (per destination, ms between errors).
    pub icmp_ratelimit_ms: u64,
    /// `net.ipv4.icmp_ratemask`: types rate limited (dest unreach, source
    /// quench, time exceeded, parameter problem).
    pub icmp_ratemask: u32,
    /// `net.ipv4.icmp_msgs_per_sec` / `icmp_msgs_burst`: the global limit.
    pub icmp_msgs_per_sec: u32,
    pub icmp_msgs_burst: u32,
    /// `net.ipv4.icmp_echo_ignore_broadcasts`.
    pub icmp_echo_ignore_broadcasts: bool,
    /// `net.ipv4.icmp_echo_ignore_all`.
    pub icmp_echo_ignore_all: bool,
    /// `net.ipv4.ipfrag_time`.
    pub ipfrag_time: Duration,
    /// `net.ipv4.ipfrag_high_thresh` (bytes of fragments held, per host).
    pub ipfrag_high_thresh: usize,
    /// `net.ipv4.ipfrag_max_dist`.
    pub ipfrag_max_dist: u32,
    /// `net.ipv4.route.min_pmtu`.
    pub min_pmtu: u32,
    /// `net.ipv4.route.mtu_expires`.
    pub mtu_expires: Duration,
}

impl Default for Ipv4Sysctl {
    fn default() -> Self {
        Ipv4Sysctl {
            ip_forward: false,
            ip_default_ttl: 64,
            ip_no_pmtu_disc: false,
            ip_early_demux: true,
            icmp_ratelimit_ms: 1000,
            icmp_ratemask: 0x1818,
            icmp_msgs_per_sec: 1000,
            icmp_msgs_burst: 50,
            icmp_echo_ignore_broadcasts: true,
            icmp_echo_ignore_all: false,
            ipfrag_time: Duration::from_secs(30),
            ipfrag_high_thresh: 4 * 1024 * 1024,
            ipfrag_max_dist: 64,
            min_pmtu: 552,
            mtu_expires: Duration::from_secs(600),
        }
    }
}

/// The IPv4 state of one stack.
#[derive(Debug, Default)]
pub struct Ipv4State {
    pub sysctl: Ipv4Sysctl,
    pub(crate) addrs: Vec<addr::InetAddr>,
    /// `net.ipv4.conf.DEV.forwarding` where it differs from `ip_forward`.
    pub(crate) dev_forwarding: Vec<(IfIndex, bool)>,
    pub(crate) mib: Ipv4Mibs,
    pub(crate) routes: route::RouteTables,
    pub(crate) frags: defrag::FragQueues,
    pub(crate) icmp: icmp::IcmpState,
    /// `ip_idents`: per-destination-hash IP ID counters.
    pub(crate) idents: Vec<u16>,
    pub(crate) raw: Vec<Option<raw::RawSocket>>,
    /// Bumped by every change that can alter a route lookup's answer
    /// (routes, rules, addresses, devices, PMTU): sockets' cached routes
    /// (`sk_dst_cache`) are valid while it stays the same.
    pub(crate) route_gen: u64,
}

impl Ipv4State {
    /// `IN_DEV_FORWARD(dev)`.
    pub fn forwarding(&self, dev: IfIndex) -> bool {
        self.dev_forwarding
            .iter()
            .find(|(d, _)| *d == dev)
            .map_or(self.sysctl.ip_forward, |(_, f)| *f)
    }
}

impl crate::stack::Stack {
    pub fn ipv4(&self) -> &Ipv4State {
        &self.ip
    }

    /// The IPv4 MIBs (`/proc/net/snmp`).
    pub fn snmp(&self) -> &Ipv4Mibs {
        &self.ip.mib
    }

    /// `sysctl -w net.ipv4.ip_forward=…`: sets every device's forwarding.
    pub fn set_ip_forward(&mut self, on: bool) {
        self.ip.sysctl.ip_forward = on;
        self.ip.dev_forwarding.clear();
    }

    /// `sysctl -w net.ipv4.conf.DEV.forwarding=…`.
    pub fn set_dev_forwarding(&mut self, dev: IfIndex, on: bool) {
        self.ip.dev_forwarding.retain(|(d, _)| *d != dev);
        self.ip.dev_forwarding.push((dev, on));
    }

    pub fn ipv4_sysctl_mut(&mut self) -> &mut Ipv4Sysctl {
        &mut self.ip.sysctl
    }
}
