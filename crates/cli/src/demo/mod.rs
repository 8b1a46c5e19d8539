//! `netpath demo`: a small network of netpath hosts doing what a network
//! does — ARP, ping through a bridge and a router, a VLAN, a fragmented
//! ping, a TTL-expired probe and a firewall rejection — with the
//! stage-by-stage trace of the first packet (under Linux's function names),
//! the counters, neighbour tables, the bridge's FDB, and a pcap. Then a TCP
//! client on H1 sends to a server on H3 across R: the first data segment's
//! walk through every seed stage (egress 1–7 on H1, ingress 1–12 on H3),
//! the transfer's figures and the `Tcp:` / `TcpExt:` counters.

pub mod tcp;
mod topology;

use std::fmt::Write as _;

use netpath::capture::{Capture, PcapWriter, DEFAULT_SNAPLEN};
use netpath::ipv4::output::IpSendOpts;
use netpath::netfilter::Table;
use netpath::sim::{LinkConfig, PortId};
use netpath::time::{Duration, Instant};

pub use topology::{ip, Net};
use topology::{H1, H2, H3, R, SW};

/// The knobs of a demo run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    /// The R–H3 link.
    pub far_link: LinkConfig,
    /// Bytes the TCP client on H1 sends to the server on H3.
    pub tcp_bytes: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            far_link: LinkConfig {
                latency: Duration::from_millis(2),
                bandwidth_bps: Some(100_000_000),
                ..LinkConfig::default()
            },
            tcp_bytes: 2 << 20,
        }
    }
}

/// What one step of the scenario did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub outcome: String,
}

/// One line of the first packet's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    pub time: Instant,
    pub host: &'static str,
    pub point: &'static str,
    pub len: u32,
    pub detail: String,
}

/// Everything a run produced.
pub struct DemoReport {
    pub steps: Vec<Step>,
    pub trace: Vec<TraceLine>,
    /// The TCP transfer: first segment's stages, figures, counters.
    pub tcp: tcp::TcpReport,
    pub counters: Vec<String>,
    pub pcap: Vec<u8>,
    pub pcap_frames: u64,
    pub virtual_time: Duration,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

const IDENT: u16 = 0x4e50;

/// Sends an echo request and reports what came back within a second.
fn ping(
    net: &mut Net,
    from: &str,
    to: &str,
    seq: u16,
    len: usize,
    ttl: Option<u8>,
) -> DemoResult<String> {
    let sock = net
        .with(from, |s, _| s.raw_open(1, 64))
        .ok_or("no such host")?;
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let opts = IpSendOpts {
        ttl,
        ..IpSendOpts::default()
    };
    let start = net.sim.now();
    net.with(from, |s, now| {
        s.icmp_echo_send(now, ip(to), IDENT, seq, &data, opts)
    })
    .ok_or("no such host")??;
    net.sim.run_until(start + Duration::from_secs(1));
    let got: Vec<_> = net
        .with(from, |s, _| {
            std::iter::from_fn(|| s.raw_recv(sock)).collect()
        })
        .unwrap_or_default();
    net.with(from, |s, _| s.raw_close(sock));
    Ok(describe_icmp(&got, start, seq))
}

fn describe_icmp(got: &[netpath::skb::Skb], start: Instant, seq: u16) -> String {
    for skb in got {
        let d = skb.data();
        let Ok(iph) = netpath_wire::ipv4::Ipv4Packet::new_checked(skb.network_header_bytes())
        else {
            continue;
        };
        let (t, code) = (
            d.first().copied().unwrap_or(0),
            d.get(1).copied().unwrap_or(0),
        );
        let at = skb.meta.tstamp().unwrap_or(start);
        let ms = (at - start).as_nanos() as f64 / 1e6;
        match t {
            0 if d.get(6..8) == Some(&seq.to_be_bytes()[..]) => {
                return format!(
                    "echo reply from {} (ttl {}, {} bytes) after {ms:.3} ms",
                    iph.src_addr(),
                    iph.ttl(),
                    iph.total_len()
                )
            }
            3 | 11 => {
                let what = match (t, code) {
                    (11, 0) => "time exceeded in transit",
                    (3, 13) => "destination unreachable: communication administratively prohibited",
                    (3, 3) => "destination unreachable: port unreachable",
                    (3, 1) => "destination unreachable: host unreachable",
                    (3, 4) => "destination unreachable: fragmentation needed",
                    _ => "ICMP error",
                };
                return format!(
                    "ICMP type {t} code {code} ({what}) from {} after {ms:.3} ms",
                    iph.src_addr()
                );
            }
            _ => {}
        }
    }
    "no answer".to_string()
}

/// A UDP datagram to H3 port 9, which R's firewall rejects.
fn udp_probe(net: &mut Net) -> DemoResult<String> {
    let sock = net
        .with(H1, |s, _| s.raw_open(1, 64))
        .ok_or("no such host")?;
    let mut udp = vec![0u8; 8 + 12];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&20u16.to_be_bytes());
    udp[8..].copy_from_slice(b"hello, world");
    let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(
        ip("192.0.2.1"),
        ip("198.51.100.1"),
        17,
        20,
    );
    c.add_bytes(&udp);
    udp[6..8].copy_from_slice(&c.finish().to_be_bytes());
    let start = net.sim.now();
    net.with(H1, |s, now| {
        s.ip_send(now, ip("198.51.100.1"), 17, &udp, IpSendOpts::default())
    })
    .ok_or("no such host")??;
    net.sim.run_until(start + Duration::from_secs(1));
    let got: Vec<_> = net
        .with(H1, |s, _| std::iter::from_fn(|| s.raw_recv(sock)).collect())
        .unwrap_or_default();
    Ok(describe_icmp(&got, start, 0))
}

/// Runs the scenario in virtual time. Deterministic: same config, same report.
pub fn run(config: &DemoConfig) -> DemoResult<DemoReport> {
    let mut net = topology::build(config.seed, config.far_link)?;
    let (h1_link, h1_node) = (net.h1_link, net.node(H1));
    let cap = net.sim.capture(
        h1_link,
        (h1_node, PortId(0)),
        Capture::new(PcapWriter::with_fcs(Vec::new(), DEFAULT_SNAPLEN)?),
    )?;

    let mut steps = Vec::new();
    let mut step = |what: &str, outcome: DemoResult<String>| {
        steps.push(Step {
            what: what.to_string(),
            outcome: outcome.unwrap_or_else(|e| format!("failed: {e}")),
        });
    };
    let o = ping(&mut net, H1, "198.51.100.1", 1, 56, None);
    step(
        "H1 pings H3 through the bridge and R (ARP first, on both links)",
        o,
    );
    let o = ping(&mut net, H1, "198.51.100.1", 2, 56, None);
    step("H1 pings H3 again (neighbours cached: no ARP)", o);
    let o = ping(&mut net, H2, "198.51.100.1", 1, 56, None);
    step("H2, on VLAN 10 (tagged through the bridge), pings H3", o);
    let o = ping(&mut net, H1, "198.51.100.1", 3, 4000, None);
    step(
        "H1 pings H3 with 4000 bytes (3 fragments each way, reassembled)",
        o,
    );
    let o = ping(&mut net, H1, "198.51.100.1", 4, 56, Some(1));
    step("H1 probes H3 with TTL 1", o);
    let o = udp_probe(&mut net);
    step("H1 sends UDP to H3 port 9 (R's firewall rejects it)", o);

    // The echo request's trace, before the TCP transfer fills the rings.
    let trace = first_packet_trace(&net);
    let tcp = tcp::run(&mut net, config.seed, config.tcp_bytes);
    step(
        &format!(
            "H1 opens TCP to H3:{} through R and sends {} KiB; H3 reads to end of stream",
            tcp::PORT,
            config.tcp_bytes / 1024
        ),
        Ok(tcp.outcome.clone()),
    );
    let counters = counters(&net);
    let capture = net.sim.take_capture(cap);
    let pcap_frames = capture.as_ref().map_or(0, |c| c.stats().packets);
    let pcap = capture
        .and_then(|c| c.into_writer::<Vec<u8>>())
        .map(|w| w.into_inner())
        .unwrap_or_default();
    Ok(DemoReport {
        steps,
        trace,
        tcp,
        counters,
        pcap,
        pcap_frames,
        virtual_time: net.sim.now() - Instant::ZERO,
    })
}

/// Every trace event, on every host, of H1's first echo request (one skb:
/// it crosses the links by page flip and H3 turns it into the reply).
fn first_packet_trace(net: &Net) -> Vec<TraceLine> {
    let Some(first) = net.stack(H1).and_then(|s| {
        s.tracer()
            .events()
            .find(|e| e.point == "ip_queue_xmit")
            .map(|e| e.skb_id)
    }) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for (name, _) in &net.hosts {
        let Some(s) = net.stack(name) else { continue };
        let devname = |i: Option<netpath::dev::IfIndex>| {
            i.and_then(|i| s.dev(i).ok())
                .map(|d| d.name().to_string())
                .unwrap_or_default()
        };
        for e in s.tracer().events().filter(|e| e.skb_id == first) {
            let mut detail = devname(e.dev);
            if let Some(r) = e.reason {
                let _ = write!(detail, " reason={}", r.as_str());
            }
            lines.push(TraceLine {
                time: e.time,
                host: name,
                point: e.point,
                len: e.len,
                detail,
            });
        }
    }
    lines.sort_by_key(|l| l.time);
    lines
}

fn counters(net: &Net) -> Vec<String> {
    let mut out = Vec::new();
    for (name, _) in &net.hosts {
        let Some(s) = net.stack(name) else { continue };
        let m = s.snmp();
        out.push(format!(
            "{name:<3} Ip: InReceives {} InDelivers {} OutRequests {} ForwDatagrams {} FragCreates {} ReasmOKs {}  Icmp: InMsgs {} OutMsgs {}",
            m.ip.in_receives,
            m.ip.in_delivers,
            m.ip.out_requests,
            m.ip.forw_datagrams,
            m.ip.frag_creates,
            m.ip.reasm_oks,
            m.icmp.in_msgs,
            m.icmp.out_msgs
        ));
        let drops: Vec<String> = s
            .drops()
            .iter()
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        if !drops.is_empty() {
            out.push(format!("    drops: {}", drops.join(", ")));
        }
        for n in s.neigh_show() {
            out.push(format!("    neigh: {n}"));
        }
    }
    if let Some(sw) = net.stack(SW) {
        if let Ok(rows) = sw.bridge_fdb_show(net.bridge) {
            for r in rows.iter().filter(|r| !r.local) {
                let port = sw
                    .dev(r.port)
                    .map(|d| d.name().to_string())
                    .unwrap_or_default();
                out.push(format!("SW  fdb: {} vlan {} port {port}", r.mac, r.vid));
            }
        }
    }
    if let Some(r) = net.stack(R) {
        if let Ok(text) = r.netfilter().list_verbose(Table::Filter, "FORWARD") {
            for l in text.lines() {
                out.push(format!("R   iptables: {l}"));
            }
        }
    }
    if let Some(l) = net.sim.link_stats(net.far_link) {
        out.push(format!(
            "link R-H3: sent {} frames, delivered {}, lost {}, duplicated {}, reordered {}, corrupted {}",
            l.tx_frames, l.delivered, l.lost, l.duplicated, l.reordered, l.corrupted
        ));
    }
    let _ = (H2, H3);
    out
}

/// The report as the demo prints it; `max_trace` bounds the trace lines.
pub fn render(r: &DemoReport, max_trace: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "netpath demo: five netpath hosts on simulated links\n");
    let _ = writeln!(o, "  H1 192.0.2.1 ──┐");
    let _ = writeln!(o, "                 SW (bridge, VLAN filtering) ── R 192.0.2.254 | 203.0.113.254 (VLAN 10) | 198.51.100.254 ── H3 198.51.100.1");
    let _ = writeln!(o, "  H2 203.0.113.2 ┘ (VLAN 10)                     firewall: UDP to H3:9 -> REJECT admin-prohibited\n");
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(o, "[{}] {}\n    -> {}", i + 1, s.what, s.outcome);
    }
    let _ = writeln!(
        o,
        "\nthe first echo request, stage by stage (one skb: H3 turns it into the reply)"
    );
    for l in r.trace.iter().take(max_trace) {
        let _ = writeln!(
            o,
            "  {:>12.6}  {:<3} {:<26} len={:<5} {}",
            l.time.as_nanos() as f64 / 1e9,
            l.host,
            l.point,
            l.len,
            l.detail
        );
    }
    if r.trace.len() > max_trace {
        let _ = writeln!(
            o,
            "  ... ({} more; --verbose prints them all)",
            r.trace.len() - max_trace
        );
    }
    tcp::render(&mut o, &r.tcp);
    let _ = writeln!(o, "\ncounters");
    for c in &r.counters {
        let _ = writeln!(o, "  {c}");
    }
    let _ = writeln!(o, "  virtual time: {}", r.virtual_time);
    o
}
