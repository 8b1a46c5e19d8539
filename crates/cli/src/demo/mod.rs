//! `netpath demo`: two simulated hosts exchange ICMP echo over a lossy,
//! corrupting, reordering link; the demo tells what happened to each frame,
//! prints the counters and writes a pcap. Later issues grow it into the full
//! topology (NICs, NAPI, IPv4, TCP).

mod frames;
mod host;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use netpath::capture::{Capture, PcapWriter, DEFAULT_SNAPLEN};
use netpath::sim::{LinkConfig, LinkStats, Sim, SimError};
use netpath::time::{Duration, Instant};
use netpath_wire::ethernet::EthernetAddress;

pub use frames::Addrs;
pub use host::{DemoHost, HostStats, LogLine};

/// The knobs of a demo run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    pub count: u16,
    pub interval: Duration,
    pub link: LinkConfig,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            count: 20,
            interval: Duration::from_millis(100),
            link: LinkConfig {
                latency: Duration::from_millis(5),
                bandwidth_bps: Some(10_000_000),
                loss: 0.10,
                duplicate: 0.03,
                reorder: 0.05,
                reorder_delay: Duration::from_millis(120),
                corrupt: 0.05,
                ..LinkConfig::default()
            },
        }
    }
}

/// Why a demo run could not complete.
#[derive(Debug)]
pub enum DemoError {
    Sim(SimError),
    Pcap(std::io::Error),
}

impl From<SimError> for DemoError {
    fn from(e: SimError) -> Self {
        DemoError::Sim(e)
    }
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Sim(e) => write!(f, "simulation: {e}"),
            DemoError::Pcap(e) => write!(f, "capture: {e}"),
        }
    }
}

/// Everything a run produced.
pub struct DemoReport {
    pub config: DemoConfig,
    pub a: (Addrs, HostStats, Vec<u64>),
    pub b: (Addrs, HostStats),
    pub link: LinkStats,
    pub log: Vec<LogLine>,
    pub drops: Vec<(&'static str, u64)>,
    pub pcap: Vec<u8>,
    pub pcap_frames: u64,
    pub virtual_time: Duration,
}

/// Host A (the pinger) and host B (the responder), on 192.0.2.0/24.
pub fn addrs() -> (Addrs, Addrs) {
    let a = Addrs {
        mac: EthernetAddress([0x02, 0x4e, 0x50, 0, 0, 1]),
        ip: Ipv4Addr::new(192, 0, 2, 1),
    };
    let b = Addrs {
        mac: EthernetAddress([0x02, 0x4e, 0x50, 0, 0, 2]),
        ip: Ipv4Addr::new(192, 0, 2, 2),
    };
    (a, b)
}

/// Runs the demo in virtual time. Deterministic: same config, same report.
pub fn run(config: &DemoConfig) -> Result<DemoReport, DemoError> {
    let (a_addr, b_addr) = addrs();
    let mut sim = Sim::new(config.seed);
    let a = sim.add_node(Box::new(DemoHost::pinger(
        "A",
        a_addr,
        b_addr,
        config.count,
        config.interval,
    )));
    let b = sim.add_node(Box::new(DemoHost::responder("B", b_addr, a_addr)));
    let (pa, pb) = (DemoHost::PORT, DemoHost::PORT);
    let link = sim.add_link(config.link, &[(a, pa), (b, pb)])?;
    // Frames on the wire carry their FCS; the pcap header says so.
    let writer = PcapWriter::with_fcs(Vec::new(), DEFAULT_SNAPLEN).map_err(DemoError::Pcap)?;
    let cap = sim.capture(link, (a, pa), Capture::new(writer))?;

    // Every request is answered or lost within a few seconds of the last.
    let limit = Instant::ZERO + Duration::from_secs(u64::from(config.count) + 60);
    sim.run_until_idle(limit);

    let capture = sim.take_capture(cap);
    let pcap_frames = capture.as_ref().map_or(0, |c| c.stats().packets);
    let pcap = capture
        .and_then(|c| c.into_writer::<Vec<u8>>())
        .map(|w| w.into_inner())
        .unwrap_or_default();
    let link_stats = sim.link_stats(link).unwrap_or_default();
    let drops = sim.drops().iter().map(|(r, n)| (r.as_str(), n)).collect();
    let virtual_time = sim.now() - Instant::ZERO;

    let mut log = Vec::new();
    let (a_stats, rtts) = {
        let h = sim
            .node_mut::<DemoHost>(a)
            .ok_or(SimError::UnknownNode(a))?;
        log.append(&mut h.log);
        (h.stats.clone(), std::mem::take(&mut h.rtts))
    };
    let b_stats = {
        let h = sim
            .node_mut::<DemoHost>(b)
            .ok_or(SimError::UnknownNode(b))?;
        log.append(&mut h.log);
        h.stats.clone()
    };
    log.sort_by_key(|l| l.time); // stable: A's lines before B's at the same instant
    Ok(DemoReport {
        config: config.clone(),
        a: (a_addr, a_stats, rtts),
        b: (b_addr, b_stats),
        link: link_stats,
        log,
        drops,
        pcap,
        pcap_frames,
        virtual_time,
    })
}

fn pct(p: f64) -> String {
    format!("{:.0}%", p * 100.0)
}

/// The report as the demo prints it; `max_lines` bounds the event log.
pub fn render(r: &DemoReport, max_lines: usize) -> String {
    let mut o = String::new();
    let c = &r.config;
    let l = &c.link;
    let (a, sa, rtts) = &r.a;
    let (b, sb) = &r.b;
    let rate = l.bandwidth_bps.map_or("unlimited".to_string(), |bps| {
        format!("{} Mbit/s", bps as f64 / 1e6)
    });
    let _ = writeln!(
        o,
        "netpath demo: host A {} ({}) <-> host B {} ({})",
        a.ip, a.mac, b.ip, b.mac
    );
    let _ = writeln!(
        o,
        "link: latency {}, {rate}, loss {}, duplicate {}, reorder {} (+{}), corrupt {}; seed {}",
        l.latency,
        pct(l.loss),
        pct(l.duplicate),
        pct(l.reorder),
        l.reorder_delay,
        pct(l.corrupt),
        c.seed
    );
    let _ = writeln!(o, "\n{:>14}  host  event", "virtual time");
    for line in r.log.iter().take(max_lines) {
        let _ = writeln!(
            o,
            "{:>14.6}  {:<4}  {}",
            line.time.as_nanos() as f64 / 1e9,
            line.host,
            line.text
        );
    }
    if r.log.len() > max_lines {
        let _ = writeln!(
            o,
            "{:>14}  ({} more events; --verbose prints them all)",
            "...",
            r.log.len() - max_lines
        );
    }

    let _ = writeln!(o, "\nsummary");
    let lost = sa.echo_requests_tx.saturating_sub(sa.echo_replies_rx);
    let _ = writeln!(
        o,
        "  A: {} echo requests sent, {} answered, {} unanswered ({:.0}% loss), {} duplicate replies",
        sa.echo_requests_tx,
        sa.echo_replies_rx,
        lost,
        if sa.echo_requests_tx == 0 { 0.0 } else { 100.0 * lost as f64 / sa.echo_requests_tx as f64 },
        sa.duplicate_replies
    );
    if !rtts.is_empty() {
        let min = rtts.iter().min().copied().unwrap_or(0) as f64 / 1e6;
        let max = rtts.iter().max().copied().unwrap_or(0) as f64 / 1e6;
        let avg = rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 1e6;
        let _ = writeln!(
            o,
            "  A: rtt min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms (virtual)"
        );
    }
    for (name, s) in [("A", sa), ("B", sb)] {
        let _ = writeln!(
            o,
            "  {name}: tx {} frames, rx {} frames, rx_crc_errors {}, rx_errors {}",
            s.tx_frames, s.rx_frames, s.rx_crc_errors, s.rx_errors
        );
    }
    let k = &r.link;
    let _ = writeln!(
        o,
        "  link: sent {} frames ({} bytes), delivered {}, lost {}, duplicated {}, reordered {}, corrupted {}, queue drops {}",
        k.tx_frames, k.tx_bytes, k.delivered, k.lost, k.duplicated, k.reordered, k.corrupted, k.queue_dropped
    );
    let drops: Vec<String> = r.drops.iter().map(|(n, c)| format!("{n} {c}")).collect();
    let _ = writeln!(
        o,
        "  drops by reason: {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        }
    );
    let _ = writeln!(o, "  virtual time: {}", r.virtual_time);
    o
}
