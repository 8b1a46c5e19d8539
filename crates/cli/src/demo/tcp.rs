//! The demo's TCP part: a client on H1 sends a few MiB to a server on H3
//! across the bridge and R; the first data segment is followed through
//! every seed stage (egress 1–7 on H1, ingress 1–12 on H3) under Linux's
//! function names, then the transfer's figures and the `Tcp:` / `TcpExt:`
//! counters of both ends.

use std::fmt::Write as _;

use netpath::sim::blocking::{stack, with_stack, Blocking};
use netpath::sock::Errno;
use netpath::tcp::{SendFlags, Shutdown, TcpInfo, TcpState};
use netpath::time::{Duration, Instant};
use netpath::trace::TraceEvent;

use super::topology::{ip, Net, H1, H3};

/// The server's port.
pub const PORT: u16 = 5001;

/// Which half of the seed a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Egress,
    Ingress,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Egress => "egress",
            Path::Ingress => "ingress",
        }
    }
}

/// One line of the first data segment's walk: a seed step and the trace
/// point that shows it (`None`: the stack emits no trace point there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLine {
    pub path: Path,
    pub step: u8,
    pub host: &'static str,
    pub point: Option<&'static str>,
    /// Since the application's `write()` (egress step 1).
    pub offset: Duration,
    /// The skb's length at that point (None for events without an skb).
    pub len: Option<u32>,
    pub note: String,
}

/// Non-zero counters under Linux's names.
pub type Counters = Vec<(&'static str, u64)>;

/// `(host, Tcp:, TcpExt:)`, the non-zero ones.
pub type HostMibs = (&'static str, Counters, Counters);

/// The figures of the transfer.
#[derive(Debug, Clone, Default)]
pub struct TcpReport {
    pub outcome: String,
    pub sent: usize,
    pub received: usize,
    pub intact: bool,
    pub sent_hash: u64,
    pub received_hash: u64,
    /// From the first `write()` to the server's end of stream.
    pub elapsed: Duration,
    pub stages: Vec<StageLine>,
    /// Hosts between the two ends, with the points the segment passed there.
    pub transit: Vec<(&'static str, Vec<&'static str>)>,
    pub client_info: Option<TcpInfo>,
    pub server_info: Option<TcpInfo>,
    /// `(host, Tcp: non-zero, TcpExt: non-zero)`.
    pub mibs: Vec<HostMibs>,
}

impl TcpReport {
    pub fn goodput_mbps(&self) -> f64 {
        let s = self.elapsed.as_nanos() as f64 / 1e9;
        if s > 0.0 {
            self.received as f64 * 8.0 / s / 1e6
        } else {
            0.0
        }
    }
}

/// FNV-1a, 64 bits: enough to tell the bytes arrived as sent.
pub fn fnv1a(h: u64, data: &[u8]) -> u64 {
    data.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Deterministic payload: xorshift64* from the seed.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The seed step of a trace point on the sending host.
fn egress_step(point: &str) -> Option<u8> {
    Some(match point {
        "tcp_sendmsg" => 2,
        "tcp_write_xmit" | "tcp_transmit_skb" => 3,
        "ip_queue_xmit" | "ip_local_out" | "dst_output" => 4,
        "ip_output" | "ip_finish_output" | "ip_finish_output2" | "ip_do_fragment" => 5,
        "neigh_resolve_output" | "neigh_queue" | "neigh_hh_output" => 6,
        "dev_queue_xmit"
        | "sch_handle_egress"
        | "qdisc_enqueue"
        | "skb_gso_segment"
        | "dev_hard_start_xmit"
        | "deliver_skb"
        | "nic_tx"
        | "nic_tx_tso" => 7,
        _ => return None,
    })
}

/// The seed step of a trace point on the receiving host.
fn ingress_step(point: &str) -> Option<u8> {
    Some(match point {
        "nic_rx" => 1,
        "nic_rx_mac_filter" => 2,
        "nic_rx_fcs_ok" => 3,
        "nic_rx_dma" => 4,
        "irq_handler_entry" => 5,
        "napi_schedule" => 6,
        "napi_poll" | "netif_rx" => 7,
        "netif_receive_skb" | "skb_vlan_untag" | "sch_handle_ingress" | "deliver_skb" => 8,
        "ip_rcv" | "dst_input" => 9,
        "ip_local_deliver" | "ip_defrag" => 10,
        "tcp_v4_rcv"
        | "tcp_rcv_state_process"
        | "tcp_rcv_established"
        | "tcp_data_queue"
        | "sock_def_readable" => 11,
        "tcp_recvmsg" | "consume_skb" => 12,
        _ => return None,
    })
}

/// What the stack does at a seed step it emits no trace point for.
fn untraced(path: Path, step: u8) -> &'static str {
    match (path, step) {
        (Path::Egress, 6) => {
            "neighbour already valid: ip_finish_output2 pushed the cached header \
             (neigh_hh_output, no trace point); neigh_resolve_output runs only while resolving"
        }
        (Path::Ingress, 2) => {
            "destination MAC filter runs inside nic_rx; only a refusal is counted (rx_filtered)"
        }
        (Path::Ingress, 3) => {
            "FCS check inside nic_rx (in full only for altered frames); only a failure is traced (nic_rx_crc_error)"
        }
        (Path::Ingress, 4) => {
            "DMA into the rx ring inside nic_rx; only a full ring is traced (nic_rx_missed)"
        }
        (Path::Ingress, 5) => "no interrupt: the NIC's interrupt was masked (NAPI already polling)",
        (Path::Ingress, 6) => "no napi_schedule: the device was already on the poll list",
        _ => "no trace point for this step",
    }
}

/// Every event of one host's ring, oldest first, with its position.
fn events(net: &Net, host: &str) -> Vec<TraceEvent> {
    net.stack(host)
        .map(|s| s.tracer().events().copied().collect())
        .unwrap_or_default()
}

/// Follows the first data segment sent at or after `t0`.
fn first_segment(
    net: &Net,
    t0: Instant,
) -> (Vec<StageLine>, Vec<(&'static str, Vec<&'static str>)>) {
    let mut lines = Vec::new();
    let tx = events(net, H1);
    // Egress 1: the application's write() (tcp_sendmsg entered, no skb yet).
    let Some(call) = tx
        .iter()
        .position(|e| e.time >= t0 && e.point == "tcp_sendmsg" && e.skb_id == 0)
    else {
        return (lines, Vec::new());
    };
    let start = tx[call].time;
    let off = |t: Instant| t.saturating_since(start);
    lines.push(StageLine {
        path: Path::Egress,
        step: 1,
        host: H1,
        point: Some("tcp_sendmsg"),
        offset: Duration::ZERO,
        len: None,
        note: format!("write() of {} bytes enters tcp_sendmsg", tx[call].detail),
    });
    // Egress 2: the first write-queue skb tcp_sendmsg allocated.
    if let Some(e) = tx[call..]
        .iter()
        .find(|e| e.point == "tcp_sendmsg" && e.skb_id != 0)
    {
        lines.push(StageLine {
            path: Path::Egress,
            step: 2,
            host: H1,
            point: Some(e.point),
            offset: off(e.time),
            len: Some(e.len),
            note: "skb allocated, payload copied, added to the write queue".into(),
        });
    }
    // Egress 3 on: tcp_transmit_skb builds the segment in a new skb, which
    // then travels every link by page flip, keeping its id.
    // A GSO skb (several segments sent down the stack as one) is cut up by
    // the NIC or just before the driver (`skb_gso_segment`); its first
    // segment keeps its id, so the walk goes on with it.
    let Some(seg) = tx[call..]
        .iter()
        .find(|e| e.point == "tcp_transmit_skb")
        .map(|e| e.skb_id)
    else {
        return (lines, Vec::new());
    };
    for e in tx.iter().filter(|e| e.skb_id == seg) {
        let step = egress_step(e.point).unwrap_or_else(|| lines.last().map_or(3, |l| l.step));
        lines.push(StageLine {
            path: Path::Egress,
            step,
            host: H1,
            point: Some(e.point),
            offset: off(e.time),
            len: Some(e.len),
            note: dev_name(net, H1, e),
        });
    }

    // Between the ends: every other host the segment crossed.
    let mut transit = Vec::new();
    for (name, _) in &net.hosts {
        if *name == H1 || *name == H3 {
            continue;
        }
        let pts: Vec<&'static str> = events(net, name)
            .iter()
            .filter(|e| e.skb_id == seg)
            .map(|e| e.point)
            .collect();
        if !pts.is_empty() {
            transit.push((*name, pts));
        }
    }

    // Ingress on H3.
    let ing = ingress(net, seg, &off);
    (finish(lines, ing), transit)
}

/// The receiving host's events of the segment `seg`, with their ring
/// positions: its own skb events, plus the events without an skb that
/// belong to it (interrupt, NAPI poll, wakeup), matched by device and time.
fn ingress(net: &Net, seg: u64, off: &dyn Fn(Instant) -> Duration) -> Vec<(usize, StageLine)> {
    let rx = events(net, H3);
    let mut ing: Vec<(usize, StageLine)> = Vec::new();
    let Some(first) = rx.iter().position(|e| e.skb_id == seg) else {
        return ing;
    };
    let arrived = &rx[first];
    let mut prev = 1;
    let mut push = |i: usize, e: &TraceEvent, note: String| {
        let step = ingress_step(e.point).unwrap_or(prev);
        prev = step;
        ing.push((
            i,
            StageLine {
                path: Path::Ingress,
                step,
                host: H3,
                point: Some(e.point),
                offset: off(e.time),
                len: (e.skb_id != 0).then_some(e.len),
                note,
            },
        ));
    };
    let dev_of = |e: &TraceEvent| e.dev;
    let near = |p: &str| {
        rx[first..]
            .iter()
            .enumerate()
            .find(|(_, e)| e.point == p && e.skb_id == 0 && e.dev == dev_of(arrived))
            .map(|(i, e)| (first + i, e))
    };
    for p in ["irq_handler_entry", "napi_schedule"] {
        if let Some((i, e)) = near(p) {
            if e.time == arrived.time {
                push(i, e, dev_name(net, H3, e));
            }
        }
    }
    if let Some((i, e)) = near("napi_poll") {
        push(
            i,
            e,
            format!(
                "{} bottom half: driver builds the skb (eth_type_trans), {} frame(s) this poll",
                dev_name(net, H3, e),
                e.detail
            ),
        );
    }
    let mut last_queue = None;
    for (i, e) in rx.iter().enumerate().filter(|(_, e)| e.skb_id == seg) {
        if e.point == "tcp_data_queue" {
            last_queue = Some(i);
        }
        let note = match e.point {
            "nic_rx" => format!("{} frame arrives on the wire", dev_name(net, H3, e)),
            "nic_rx_mac_filter" => "destination MAC accepted".into(),
            "nic_rx_fcs_ok" if e.detail == 0 => {
                "FCS good (frame unaltered by the link: not recomputed, as hardware reports it)"
                    .into()
            }
            "nic_rx_fcs_ok" => "FCS computed and good".into(),
            "nic_rx_dma" => format!("DMA into rx descriptor {}", e.detail),
            "tcp_recvmsg" => "read(): dequeued, copied to the application".into(),
            "consume_skb" => "skb freed".into(),
            "kfree_skb" => format!("dropped: {}", e.reason.map_or("?", |r| r.as_str())),
            _ => dev_name(net, H3, e),
        };
        push(i, e, note);
    }
    if let Some(q) = last_queue {
        if let Some((i, e)) = rx[q..]
            .iter()
            .enumerate()
            .find(|(_, e)| e.point == "sock_def_readable")
        {
            push(q + i, e, "reader woken (poll: POLLIN)".into());
        }
    }
    ing
}

/// Both halves in seed order, each seed step with no trace point marked.
fn finish(lines: Vec<StageLine>, mut ing: Vec<(usize, StageLine)>) -> Vec<StageLine> {
    // Seed order; within a step, the order the stack recorded them.
    ing.sort_by_key(|(i, l)| (l.step, *i));

    // Mark the seed steps with no trace point.
    let mut out = Vec::new();
    for path in [Path::Egress, Path::Ingress] {
        let (max, have): (u8, Vec<StageLine>) = match path {
            Path::Egress => (7, lines.clone()),
            Path::Ingress if ing.is_empty() => {
                out.push(StageLine {
                    path,
                    step: 1,
                    host: H3,
                    point: None,
                    offset: Duration::ZERO,
                    len: None,
                    note: "this skb never reached H3 (lost on a link); its retransmission is a new skb"
                        .into(),
                });
                break;
            }
            Path::Ingress => (12, ing.iter().map(|(_, l)| l.clone()).collect()),
        };
        let host = if path == Path::Egress { H1 } else { H3 };
        let mut it = have.into_iter().peekable();
        for step in 1..=max {
            let mut any = false;
            while let Some(l) = it.next_if(|l| l.step == step) {
                out.push(l);
                any = true;
            }
            if !any {
                let at = out
                    .last()
                    .filter(|l: &&StageLine| l.path == path)
                    .map_or(Duration::ZERO, |l| l.offset);
                out.push(StageLine {
                    path,
                    step,
                    host,
                    point: None,
                    offset: at,
                    len: None,
                    note: untraced(path, step).into(),
                });
            }
        }
        out.extend(it);
    }
    out
}

fn dev_name(net: &Net, host: &str, e: &TraceEvent) -> String {
    net.stack(host)
        .and_then(|s| {
            e.dev
                .and_then(|i| s.dev(i).ok())
                .map(|d| d.name().to_string())
        })
        .unwrap_or_default()
}

fn nonzero(v: impl IntoIterator<Item = (&'static str, u64)>) -> Vec<(&'static str, u64)> {
    v.into_iter().filter(|(_, n)| *n != 0).collect()
}

/// Runs the transfer of `bytes` bytes from H1 to H3:`PORT`.
pub fn run(net: &mut Net, seed: u64, bytes: usize) -> TcpReport {
    let mut r = TcpReport::default();
    match transfer(net, seed, bytes, &mut r) {
        Ok(o) => r.outcome = o,
        Err(e) => r.outcome = format!("failed: {e}"),
    }
    for host in [H1, H3] {
        if let Some(s) = net.stack(host) {
            r.mibs.push((
                host,
                nonzero(s.tcp_mib().fields()),
                nonzero(s.tcp_ext_mib().fields()),
            ));
        }
    }
    r
}

fn transfer(net: &mut Net, seed: u64, bytes: usize, r: &mut TcpReport) -> Result<String, String> {
    let (cn, sn) = (net.node(H1), net.node(H3));
    let (client, server) = (
        Blocking::with_limit(cn, Duration::from_secs(10)),
        Blocking::with_limit(sn, Duration::from_secs(10)),
    );
    let errno = |what: &'static str| move |e: Errno| format!("{what}: {e}");
    let lsock = server
        .listen(&mut net.sim, ip("0.0.0.0"), PORT, 16)
        .map_err(errno("listen"))?;
    let csock = client.socket(&mut net.sim);
    client
        .connect(&mut net.sim, csock, ip("198.51.100.1"), PORT)
        .map_err(errno("connect"))?;
    let (ssock, _peer) = server
        .accept(&mut net.sim, lsock)
        .map_err(errno("accept"))?;

    let data = payload(seed, bytes);
    r.sent_hash = fnv1a(FNV_OFFSET, &data);
    r.received_hash = FNV_OFFSET;
    let t0 = net.sim.now();
    let deadline = t0 + Duration::from_secs(120);
    let mut buf = vec![0u8; 65536];
    let (mut sent, mut shut, mut eof) = (0usize, false, false);
    let mut traced = false;
    while !eof {
        let cpoll = stack(&net.sim, cn).tcp_poll(csock);
        if sent < data.len() && (cpoll.writable || sent == 0) {
            let chunk = &data[sent..(sent + 65536).min(data.len())];
            match with_stack(&mut net.sim, cn, |s, now| {
                s.tcp_send(now, csock, chunk, SendFlags::default())
            }) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => {}
                Err(e) => return Err(format!("send: {e} after {sent} bytes")),
            }
        }
        if sent == data.len() && !shut {
            with_stack(&mut net.sim, cn, |s, now| {
                s.tcp_shutdown(now, csock, Shutdown::Write)
            })
            .map_err(errno("shutdown"))?;
            shut = true;
        }
        let spoll = stack(&net.sim, sn).tcp_poll(ssock);
        let mut readable = spoll.readable || spoll.hup || spoll.err;
        while readable {
            match with_stack(&mut net.sim, sn, |s, now| s.tcp_recv(now, ssock, &mut buf)) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    r.received_hash = fnv1a(r.received_hash, &buf[..n]);
                    r.received += n;
                    if !traced {
                        // The first segment has been read: its walk is
                        // complete, take it before the rings wrap.
                        traced = true;
                        (r.stages, r.transit) = first_segment(net, t0);
                    }
                }
                Err(Errno::EAGAIN) => readable = false,
                Err(e) => return Err(format!("recv: {e} after {} bytes", r.received)),
            }
        }
        if eof {
            break;
        }
        match net.sim.next_event_time() {
            Some(t) if t <= deadline => {
                net.sim.step();
            }
            next => {
                r.sent = sent;
                r.elapsed = net.sim.now() - t0;
                r.client_info = stack(&net.sim, cn).tcp_info(csock).ok();
                r.server_info = stack(&net.sim, sn).tcp_info(ssock).ok();
                let why = if next.is_some() {
                    "gave up at the 120 s limit"
                } else {
                    "stalled, nothing left to happen"
                };
                return Err(format!(
                    "{why}: {} of {} bytes received after {} ms",
                    r.received,
                    data.len(),
                    fmt_ms(r.elapsed)
                ));
            }
        }
    }
    r.sent = sent;
    r.elapsed = net.sim.now() - t0;
    r.intact = r.received == data.len() && r.received_hash == r.sent_hash;
    // Let the client see the ACK of its FIN, then read both ends' tcp_info.
    let until = net.sim.now() + Duration::from_secs(2);
    while stack(&net.sim, cn).tcp_state(csock) == Some(TcpState::FinWait1) {
        match net.sim.next_event_time() {
            Some(t) if t <= until => {
                net.sim.step();
            }
            _ => break,
        }
    }
    r.client_info = stack(&net.sim, cn).tcp_info(csock).ok();
    r.server_info = stack(&net.sim, sn).tcp_info(ssock).ok();
    let _ = server.close(&mut net.sim, ssock);
    let _ = server.close(&mut net.sim, lsock);
    let _ = client.close(&mut net.sim, csock);
    net.sim.run_for(Duration::from_millis(100));
    Ok(format!(
        "{} of {} bytes {} (fnv1a {:016x}) in {} ms, {:.1} Mbit/s",
        r.received,
        data.len(),
        if r.intact {
            "delivered intact"
        } else {
            "delivered CORRUPTED"
        },
        r.received_hash,
        fmt_ms(r.elapsed),
        r.goodput_mbps()
    ))
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.3}", d.as_nanos() as f64 / 1e6)
}

/// `name value` pairs, `per` to a line, each line prefixed.
fn columns(o: &mut String, prefix: &str, v: &[(&'static str, u64)], per: usize) {
    for chunk in v.chunks(per) {
        let cells: Vec<String> = chunk.iter().map(|(n, v)| format!("{n} {v}")).collect();
        let _ = writeln!(o, "{prefix}{}", cells.join("  "));
    }
}

/// The TCP part of the report.
pub fn render(o: &mut String, r: &TcpReport) {
    let _ = writeln!(
        o,
        "\nTCP: the first data segment, H1 -> H3:{PORT}, stage by stage under the seed's steps"
    );
    if r.stages.is_empty() {
        let _ = writeln!(o, "  (no data segment was traced: {})", r.outcome);
    }
    for l in &r.stages {
        let len = l.len.map(|n| format!("len {n:<5}")).unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<7} {:>2}  {:<22} {:<3} +{:>7} ms  {:<9} {}",
            l.path.as_str(),
            l.step,
            l.point.unwrap_or("(not traced)"),
            l.host,
            fmt_ms(l.offset),
            len,
            l.note
        );
        if l.path == Path::Egress && l.step == 7 && matches!(l.point, Some("nic_tx" | "nic_tx_tso"))
        {
            for (h, pts) in &r.transit {
                let _ = writeln!(o, "          via {h}: {}", pts.join(" > "));
            }
        }
    }
    let _ = writeln!(o, "\nTCP transfer H1 -> H3:{PORT}: {}", r.outcome);
    let _ = writeln!(
        o,
        "  bytes {} sent, {} received, {}; virtual time {} ms; goodput {:.2} Mbit/s",
        r.sent,
        r.received,
        if r.intact {
            "hashes match"
        } else {
            "HASHES DIFFER"
        },
        fmt_ms(r.elapsed),
        r.goodput_mbps()
    );
    if let Some(c) = &r.client_info {
        let _ = writeln!(
            o,
            "  client tcp_info: rtt {:.3} ms rttvar {:.3} ms min_rtt {:.3} ms rto {:.0} ms  snd_cwnd {} snd_ssthresh {}  snd_mss {}  retransmits {} backoff {} total_retrans {} bytes_retrans {}  segs_out {} data_segs_out {} bytes_acked {}",
            f64::from(c.rtt) / 1e3,
            f64::from(c.rttvar) / 1e3,
            f64::from(c.min_rtt) / 1e3,
            f64::from(c.rto) / 1e3,
            c.snd_cwnd,
            if c.snd_ssthresh >= 0x7fff_ffff { "infinite".to_string() } else { c.snd_ssthresh.to_string() },
            c.snd_mss,
            c.retransmits,
            c.backoff,
            c.total_retrans,
            c.bytes_retrans,
            c.segs_out,
            c.data_segs_out,
            c.bytes_acked
        );
    }
    if let Some(s) = &r.server_info {
        let _ = writeln!(
            o,
            "  server tcp_info: rcv_rtt {:.3} ms  rcv_space {}  rcv_wnd {}  segs_in {} data_segs_in {} bytes_received {} rcv_ooopack {}",
            f64::from(s.rcv_rtt) / 1e3,
            s.rcv_space,
            s.rcv_wnd,
            s.segs_in,
            s.data_segs_in,
            s.bytes_received,
            s.rcv_ooopack
        );
    }
    let _ = writeln!(o, "\nnetstat -s (non-zero TCP counters)");
    for (host, tcp, ext) in &r.mibs {
        let role = if *host == H1 { "client" } else { "server" };
        let _ = writeln!(o, "  {host} ({role})");
        for (name, v) in [("Tcp:", tcp), ("TcpExt:", ext)] {
            let _ = writeln!(o, "    {name}");
            if v.is_empty() {
                let _ = writeln!(o, "        (all zero)");
            }
            columns(o, "        ", v, 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{run as demo_run, DemoConfig};

    #[test]
    fn every_trace_point_maps_to_its_seed_step() {
        assert_eq!(egress_step("tcp_sendmsg"), Some(2));
        assert_eq!(egress_step("tcp_transmit_skb"), Some(3));
        assert_eq!(egress_step("ip_queue_xmit"), Some(4));
        assert_eq!(egress_step("ip_output"), Some(5));
        assert_eq!(egress_step("neigh_resolve_output"), Some(6));
        assert_eq!(egress_step("dev_queue_xmit"), Some(7));
        assert_eq!(ingress_step("nic_rx"), Some(1));
        assert_eq!(ingress_step("irq_handler_entry"), Some(5));
        assert_eq!(ingress_step("napi_poll"), Some(7));
        assert_eq!(ingress_step("netif_receive_skb"), Some(8));
        assert_eq!(ingress_step("ip_rcv"), Some(9));
        assert_eq!(ingress_step("ip_local_deliver"), Some(10));
        assert_eq!(ingress_step("tcp_v4_rcv"), Some(11));
        assert_eq!(ingress_step("tcp_recvmsg"), Some(12));
        assert_eq!(ingress_step("br_handle_frame"), None);
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"),
            fnv1a(FNV_OFFSET, b"foobar")
        );
    }

    #[test]
    fn the_transfer_arrives_intact_and_its_first_segment_walks_every_stage() {
        let cfg = DemoConfig {
            tcp_bytes: 1 << 20,
            ..DemoConfig::default()
        };
        let r = demo_run(&cfg).unwrap();
        let t = &r.tcp;
        assert!(t.intact, "{}", t.outcome);
        assert_eq!((t.sent, t.received), (1 << 20, 1 << 20));
        assert_eq!(t.sent_hash, t.received_hash);
        assert!(t.elapsed > Duration::ZERO && t.goodput_mbps() > 1.0);

        // Every seed step appears, egress 1–7 on H1 then ingress 1–12 on
        // H3, in seed order, and time never goes back.
        let steps: Vec<(Path, u8)> = t.stages.iter().map(|l| (l.path, l.step)).collect();
        let mut want: Vec<(Path, u8)> = (1..=7).map(|s| (Path::Egress, s)).collect();
        want.extend((1..=12).map(|s| (Path::Ingress, s)));
        let mut dedup = steps.clone();
        dedup.dedup();
        assert_eq!(dedup, want, "{:#?}", t.stages);
        for w in t.stages.windows(2) {
            assert!(w[0].offset <= w[1].offset, "{:#?}", t.stages);
        }
        let traced = |path: Path, step: u8| -> Vec<&'static str> {
            t.stages
                .iter()
                .filter(|l| l.path == path && l.step == step)
                .filter_map(|l| l.point)
                .collect()
        };
        // The stages the brief requires traced: egress 1–5 and 7, ingress
        // 1 and 8–12, under the seed's Linux names.
        for (path, step, point) in [
            (Path::Egress, 1, "tcp_sendmsg"),
            (Path::Egress, 2, "tcp_sendmsg"),
            (Path::Egress, 3, "tcp_transmit_skb"),
            (Path::Egress, 4, "ip_queue_xmit"),
            (Path::Egress, 5, "ip_output"),
            (Path::Egress, 7, "dev_queue_xmit"),
            (Path::Ingress, 1, "nic_rx"),
            (Path::Ingress, 7, "napi_poll"),
            (Path::Ingress, 8, "netif_receive_skb"),
            (Path::Ingress, 9, "ip_rcv"),
            (Path::Ingress, 10, "ip_local_deliver"),
            (Path::Ingress, 11, "tcp_v4_rcv"),
            (Path::Ingress, 11, "tcp_data_queue"),
            (Path::Ingress, 11, "sock_def_readable"),
            (Path::Ingress, 12, "tcp_recvmsg"),
            (Path::Ingress, 12, "consume_skb"),
        ] {
            assert!(
                traced(path, step).contains(&point),
                "{point} at {path:?} {step}: {:#?}",
                t.stages
            );
        }
        // One segment: MSS-sized payload at the TCP layer on both ends.
        let len = |path: Path, p: &str| {
            t.stages
                .iter()
                .filter(|l| l.path == path && l.point == Some(p))
                .find_map(|l| l.len)
        };
        assert_eq!(len(Path::Egress, "tcp_sendmsg"), Some(1448));
        assert_eq!(len(Path::Ingress, "tcp_recvmsg"), Some(1448));
        assert!(t
            .transit
            .iter()
            .any(|(h, p)| *h == "R" && p.contains(&"ip_forward")));

        // The figures and counters.
        let ci = t.client_info.expect("client tcp_info");
        assert!(ci.rtt > 0 && ci.snd_cwnd >= 10 && ci.bytes_acked >= 1 << 20);
        let si = t.server_info.expect("server tcp_info");
        assert_eq!(si.bytes_received, 1 << 20);
        let mib = |h: &str, name: &str| {
            t.mibs
                .iter()
                .find(|(host, _, _)| *host == h)
                .and_then(|(_, tcp, ext)| tcp.iter().chain(ext).find(|(n, _)| *n == name))
                .map_or(0, |(_, v)| *v)
        };
        assert_eq!(mib(H1, "ActiveOpens"), 1);
        assert_eq!(mib(H3, "PassiveOpens"), 1);
        assert!(mib(H1, "OutSegs") > 700 && mib(H3, "InSegs") > 700);
        assert!(mib(H1, "TCPOrigDataSent") >= 725);
        assert!(r.pcap_frames > 700, "TCP frames in the capture");

        let text = crate::demo::render(&r, 10);
        assert!(text.contains("egress   3  tcp_transmit_skb"), "{text}");
        assert!(text.contains("ingress 11  tcp_v4_rcv"), "{text}");
        assert!(text.contains("netstat -s"), "{text}");
    }
}
