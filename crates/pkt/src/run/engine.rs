//! The run loop: resolves each step's time (absolute, relative, range, `*`,
//! blocking `start...end`), advances the host's virtual clock, queues what
//! the stack sends, matches `>` lines, flags packets no line expects, keeps
//! at most one blocking call pending while later steps run, and evaluates
//! shell and Python steps.
//!
//! Times follow packetdrill's `adjust_relative_event_times`: a relative
//! time counts from when the previous event actually happened — for a `>`
//! line, when its (last) segment was sent; for a blocking call, when it
//! started — and the end of a `start...end` call counts from the same
//! base as its start. `*` events and `Python` blocks are not timed.
//! Python blocks are evaluated on the spot over a TCP_INFO snapshot
//! (packetdrill snapshots then evaluates at the end; the verdict is the
//! same).

use super::host::{PktHost, SysError};
use super::mapping::Mapper;
use super::matcher::{self, Progress, Want};
use super::packet::{self, Segment, Sent};
use super::plan::{Action, Call, ScriptSettings, Step};
use super::pyeval::{self, PyError, Val};
use super::shell::{ShellCmd, DEFAULT_SYSCTLS};
use super::{consts, Outcome, RunOptions};
use crate::ast::{Ecn, PythonBlock, TcpSegment, Time, TimePoint};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;

/// Why a run stopped early.
pub(super) type Stop = Outcome;

pub(super) fn fail(line: u32, expected: impl Into<String>, actual: impl Into<String>) -> Stop {
    Outcome::Fail {
        line,
        expected: expected.into(),
        actual: actual.into(),
    }
}

pub(super) fn unsupported(line: u32, reason: impl Into<String>) -> Stop {
    Outcome::Unsupported {
        line,
        reason: reason.into(),
    }
}

/// Fine step while waiting when the host gives no next event.
const STEP_NS: u64 = 1_000_000;

/// A blocking call that has not returned yet.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub line: u32,
    pub call: Call,
    /// When the call started (ns, host clock).
    pub start_ns: u64,
    /// When the script says it returns (ns, host clock).
    pub end_ns: u64,
}

pub(super) struct Engine<'h> {
    pub host: &'h mut dyn PktHost,
    pub opts: RunOptions,
    pub tol_ns: u64,
    pub strict_segments: bool,
    pub ts_tick_usecs: Option<u64>,
    /// The script's own idea of the two addresses (mapped to `opts`).
    pub script_local: Ipv4Addr,
    pub script_remote: Ipv4Addr,
    /// Host time of script time 0.
    pub t0: u64,
    /// Script time (µs) relative times count from.
    pub prev_us: u64,
    /// Sent packets not matched yet.
    pub queue: VecDeque<(u64, Sent)>,
    /// Script fd → host fd.
    pub fds: HashMap<i64, i32>,
    /// Host fds the script made non-blocking.
    pub nonblock: HashSet<i32>,
    /// Host fd → bound port.
    pub bound: HashMap<i32, u16>,
    /// The port of the latest listening socket.
    pub listen_port: Option<u16>,
    /// The socket Python blocks read TCP_INFO from.
    pub last_sock: Option<i32>,
    pub mapper: Mapper,
    pub pending: Option<Pending>,
    pub py_vars: HashMap<String, Val>,
    pub ip_id: u16,
    /// Whether a stale sent packet fails the current step.
    pub check_stale: bool,
    /// The counters at the last `nstat`.
    pub nstat: std::collections::HashMap<String, u64>,
}

impl<'h> Engine<'h> {
    pub fn new(host: &'h mut dyn PktHost, opts: &RunOptions, s: &ScriptSettings) -> Self {
        let tol_us = s.tolerance_usecs.unwrap_or(opts.tolerance_usecs);
        let t0 = host.now_ns();
        Engine {
            host,
            opts: opts.clone(),
            tol_ns: tol_us.saturating_mul(1000),
            strict_segments: s.strict_segments,
            ts_tick_usecs: s.ts_tick_usecs.filter(|t| *t > 0),
            script_local: s.local_ip.unwrap_or(Ipv4Addr::new(192, 168, 0, 1)),
            script_remote: s.remote_ip.unwrap_or(Ipv4Addr::new(192, 0, 2, 1)),
            t0,
            prev_us: 0,
            queue: VecDeque::new(),
            fds: HashMap::new(),
            nonblock: HashSet::new(),
            bound: HashMap::new(),
            listen_port: None,
            last_sock: None,
            mapper: Mapper::new(opts.remote_isn, opts.remote_port_base),
            pending: None,
            py_vars: HashMap::new(),
            ip_id: 1,
            check_stale: true,
            nstat: Default::default(),
        }
    }

    pub fn run(mut self, steps: &[Step]) -> Outcome {
        match self.run_inner(steps) {
            Ok(()) => Outcome::Pass,
            Err(o) => o,
        }
    }

    fn run_inner(&mut self, steps: &[Step]) -> Result<(), Stop> {
        if self.opts.apply_defaults {
            self.apply_defaults(0)?;
        }
        // A packet nobody took is a failure when a later `>` line with an
        // exact time would have had to match it (packetdrill compares it
        // with that line); after the last `>` line packetdrill ignores
        // what the stack sends, unless `trailing_packets_fail`.
        let mut stale_fails = vec![false; steps.len()];
        let mut acc = self.opts.trailing_packets_fail;
        for (i, s) in steps.iter().enumerate().rev() {
            stale_fails[i] = acc;
            match &s.action {
                Action::Expect { .. } => {
                    acc = !matches!(s.time, Some(Time::Any) | Some(Time::Range(..)));
                }
                // A socket() before the next `>` line puts a new socket
                // under test: packetdrill ignores the older ones' packets.
                Action::Call(c) if matches!(c.kind, super::plan::CallKind::Socket { .. }) => {
                    acc = false;
                }
                _ => {}
            }
        }
        let mut last_line = 0;
        for (step, stale) in steps.iter().zip(stale_fails) {
            last_line = step.line;
            self.check_stale = stale;
            self.step(step)?;
        }
        // A call still blocked must return by its deadline.
        if let Some(p) = &self.pending {
            let deadline = p.end_ns.saturating_add(self.tol_ns);
            self.advance_to(deadline, true)?;
            if let Some(p) = &self.pending {
                return Err(fail(
                    p.line,
                    format!("{} to return", p.call.name),
                    "still blocked at the end of the script",
                ));
            }
        }
        if self.opts.trailing_packets_fail {
            let end = self.now();
            self.check_unexpected(last_line, end)?;
        }
        Ok(())
    }

    pub fn now(&self) -> u64 {
        self.host.now_ns()
    }

    fn ns(&self, us: u64) -> u64 {
        self.t0.saturating_add(us.saturating_mul(1000))
    }

    fn us_of(&self, ns: u64) -> u64 {
        ns.saturating_sub(self.t0) / 1000
    }

    fn resolve(&self, tp: TimePoint) -> u64 {
        if tp.relative {
            self.prev_us.saturating_add(tp.micros)
        } else {
            tp.micros
        }
    }

    fn apply_defaults(&mut self, line: u32) -> Result<(), Stop> {
        for (n, v) in DEFAULT_SYSCTLS {
            if let Err(e) = self.host.sysctl(n, v) {
                if self.opts.strict_defaults {
                    return Err(unsupported(
                        line,
                        format!("default sysctl {n}={v}: {}", e.0),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Moves sent packets from the host into the queue.
    pub fn collect(&mut self) {
        for (t, bytes) in self.host.take_sent() {
            let sent = packet::parse(&bytes).unwrap_or(Sent::Other(255));
            self.queue.push_back((t, sent));
        }
        self.drop_stale();
    }

    /// Forgets queued packets of connections older than the newest one
    /// (packetdrill ignores packets not of the socket under test).
    fn drop_stale(&mut self) {
        let mapper = &self.mapper;
        self.queue
            .retain(|(_, sent)| !matches!(sent, Sent::Tcp(s) if mapper.is_stale(s)));
    }

    /// Advances the clock to `target` (ns), retrying a pending blocking call
    /// at each step; `fine` steps at the host's events even without one.
    pub fn advance_to(&mut self, target: u64, fine: bool) -> Result<(), Stop> {
        let mut guard = 0u32;
        loop {
            self.collect();
            self.retry_pending()?;
            let now = self.now();
            if now >= target {
                return Ok(());
            }
            let mut step = target;
            if fine || self.pending.is_some() {
                let next = self
                    .host
                    .next_event_ns()
                    .filter(|n| *n > now)
                    .unwrap_or(now.saturating_add(STEP_NS));
                step = step.min(next);
                if let Some(p) = &self.pending {
                    let dl = p.end_ns.saturating_add(self.tol_ns).saturating_add(1);
                    if dl > now {
                        step = step.min(dl);
                    }
                }
            }
            self.host.advance_to(step.max(now.saturating_add(1)));
            if self.now() <= now {
                guard += 1;
                if guard > 3 {
                    return Err(unsupported(0, "the host's clock does not advance"));
                }
            }
        }
    }

    /// A packet sent before `at - tolerance` that no `>` line took.
    fn check_unexpected(&mut self, line: u32, at_ns: u64) -> Result<(), Stop> {
        self.drop_stale();
        if let Some((t, sent)) = self.queue.front().cloned() {
            if t.saturating_add(self.tol_ns) < at_ns {
                let what = self.describe(&sent);
                return Err(fail(
                    line,
                    "no packet from the stack before this event",
                    format!("{what} at {:.6}", self.us_of(t) as f64 / 1e6),
                ));
            }
        }
        Ok(())
    }

    fn describe(&mut self, sent: &Sent) -> String {
        match sent {
            Sent::Other(p) => format!("an IPv4 packet of protocol {p}"),
            Sent::Tcp(s) => {
                let conn = self.mapper.outbound_conn(s).ok();
                format!("> {}", self.mapper.relative(conn, s))
            }
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), Stop> {
        let line = step.line;
        if let Action::Unsupported(r) = &step.action {
            return Err(unsupported(line, r.clone()));
        }
        if let Action::Expect { ecn, seg } = &step.action {
            return self.expect(line, step.time, *ecn, seg);
        }
        // When it happens (script µs), and for blocking calls when it ends.
        let (at_us, end_us) = match step.time {
            None => (self.prev_us, None),
            Some(Time::At(tp)) => (self.resolve(tp), None),
            Some(Time::Range(a, _)) => (self.resolve(a), None),
            Some(Time::Any) => (self.us_of(self.now()).max(self.prev_us), None),
            Some(Time::Blocking { start, end }) => {
                let s = self.resolve(start);
                let e = if end.relative {
                    s.saturating_add(end.micros)
                } else if start.relative {
                    self.prev_us.saturating_add(end.micros)
                } else {
                    end.micros
                };
                (s, Some(e))
            }
        };
        let at_ns = self.ns(at_us);
        self.advance_to(at_ns, false)?;
        if let Action::Call(c) = &step.action {
            if matches!(c.kind, super::plan::CallKind::Socket { .. }) {
                // A new socket goes under test: packetdrill no longer
                // looks at the older ones' packets.
                self.mapper.stale_before = self.mapper.conns.len();
            }
        }
        if self.check_stale {
            self.check_unexpected(line, at_ns)?;
        }
        if step.time.is_some() {
            self.prev_us = at_us;
        }
        match &step.action {
            Action::Call(c) => {
                if let Some(p) = &self.pending {
                    return Err(fail(
                        line,
                        format!(
                            "the blocking {} of line {} to have returned",
                            p.call.name, p.line
                        ),
                        "it is still blocked",
                    ));
                }
                let end_ns = end_us.map_or(at_ns, |e| self.ns(e));
                let start = self.now();
                match self.exec_call(line, c, start, true)? {
                    Some(()) => self.check_return_time(line, c, end_ns)?,
                    None => {
                        self.pending = Some(Pending {
                            line,
                            call: c.clone(),
                            start_ns: start,
                            end_ns,
                        })
                    }
                }
            }
            Action::Inject { ecn, seg } => self.inject(line, *ecn, seg)?,
            Action::InjectIcmp {
                icmp_type,
                code,
                mtu,
                quoted,
            } => {
                let conn = self.mapper.cur.ok_or_else(|| {
                    unsupported(line, "an ICMP error before any connection exists")
                })?;
                let c = &self.mapper.conns[conn];
                let lisn = self.mapper.local_isn(conn, false);
                let q = Segment {
                    src: self.opts.local_ip,
                    dst: self.opts.remote_ip,
                    ecn: 0,
                    sport: c.local_port.unwrap_or(self.opts.bind_port),
                    dport: c.remote_port,
                    seq: quoted.start.wrapping_add(lisn),
                    ack: 0,
                    flags: crate::ast::TcpFlags::ACK,
                    win: 0,
                    urg: 0,
                    options: Vec::new(),
                    len: quoted.len.min(1500),
                };
                let bytes = packet::build_icmp(
                    self.opts.remote_ip,
                    self.opts.local_ip,
                    *icmp_type,
                    *code,
                    *mtu,
                    &q,
                )
                .map_err(|e| unsupported(line, e))?;
                self.host.inject(&bytes);
                self.collect();
                self.retry_pending()?;
            }
            Action::Shell(cmds) => {
                for c in cmds {
                    match c {
                        ShellCmd::Defaults => self.apply_defaults(line)?,
                        ShellCmd::Noop(_) => {}
                        ShellCmd::Route(r) => self
                            .host
                            .route(r)
                            .map_err(|e| unsupported(line, format!("ip route: {}", e.0)))?,
                        ShellCmd::OffloadsOff { gso } => {
                            if *gso {
                                self.host.gso_off().map_err(|e| {
                                    unsupported(line, format!("ethtool -K: {}", e.0))
                                })?;
                            }
                        }
                        ShellCmd::RootPfifo { limit } => self
                            .host
                            .root_pfifo(*limit)
                            .map_err(|e| unsupported(line, format!("tc qdisc: {}", e.0)))?,
                        ShellCmd::NstatReset => {
                            let c = self.host.counters().ok_or_else(|| {
                                unsupported(line, "nstat (the host has no counters)")
                            })?;
                            self.nstat = c.into_iter().collect();
                        }
                        ShellCmd::NstatHas(name) => {
                            let c = self.host.counters().ok_or_else(|| {
                                unsupported(line, "nstat (the host has no counters)")
                            })?;
                            let now = c.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
                            let before = self.nstat.get(name).copied().unwrap_or(0);
                            if now == before {
                                return Err(fail(
                                    line,
                                    format!("nstat to show {name}"),
                                    "it did not change".to_string(),
                                ));
                            }
                            self.nstat = c.into_iter().collect();
                        }
                        ShellCmd::RemoveFile(path) => self
                            .host
                            .remove_file(path)
                            .map_err(|e| unsupported(line, format!("rm -f: {}", e.0)))?,
                        ShellCmd::WriteZeros { path, len } => self
                            .host
                            .write_zeros(path, *len)
                            .map_err(|e| unsupported(line, format!("dd: {}", e.0)))?,
                        ShellCmd::FlushTcpMetrics => self
                            .host
                            .flush_tcp_metrics()
                            .map_err(|e| unsupported(line, e.0))?,
                        ShellCmd::Sysctl { name, value } => {
                            self.host.sysctl(name, value).map_err(|e| {
                                unsupported(line, format!("sysctl {name}={value}: {}", e.0))
                            })?
                        }
                    }
                }
                self.collect();
            }
            Action::Python(b) => self.python(line, b)?,
            Action::Expect { .. } | Action::Unsupported(_) => {}
        }
        Ok(())
    }

    fn inject(&mut self, line: u32, ecn: Option<Ecn>, seg: &TcpSegment) -> Result<(), Stop> {
        let port = self.listen_port.unwrap_or(self.opts.bind_port);
        let abs = self
            .mapper
            .inbound(seg, ecn, port, self.opts.local_ip, self.opts.remote_ip)
            .map_err(|e| unsupported(line, e))?;
        let bytes = packet::build_tcp(&abs, self.ip_id).map_err(|e| unsupported(line, e))?;
        self.ip_id = self.ip_id.wrapping_add(1);
        self.host.inject(&bytes);
        self.collect();
        self.retry_pending()
    }

    /// Waits (up to `hi` ns) for the next sent packet, stepping finely
    /// after `target`.
    fn next_sent(&mut self, target: u64, hi: u64) -> Result<Option<(u64, Sent)>, Stop> {
        if self.queue.is_empty() {
            self.advance_to(target.min(hi), false)?;
        }
        loop {
            self.collect();
            if let Some(p) = self.queue.pop_front() {
                return Ok(Some(p));
            }
            let now = self.now();
            if now >= hi {
                return Ok(None);
            }
            let next = self
                .host
                .next_event_ns()
                .filter(|n| *n > now)
                .unwrap_or(now.saturating_add(STEP_NS))
                .min(hi);
            self.advance_to(next, true)?;
        }
    }

    fn expect(
        &mut self,
        line: u32,
        time: Option<Time>,
        ecn: Option<Ecn>,
        seg: &TcpSegment,
    ) -> Result<(), Stop> {
        let tol = self.tol_ns;
        let (lo, target, hi) = match time {
            None | Some(Time::Blocking { .. }) => {
                let t = self.ns(self.prev_us);
                (t.saturating_sub(tol), t, t.saturating_add(tol))
            }
            Some(Time::At(tp)) => {
                let t = self.ns(self.resolve(tp));
                (t.saturating_sub(tol), t, t.saturating_add(tol))
            }
            Some(Time::Range(a, b)) => {
                let (a, b) = (self.ns(self.resolve(a)), self.ns(self.resolve(b)));
                (a.saturating_sub(tol), a, b.saturating_add(tol))
            }
            Some(Time::Any) => {
                let now = self.now();
                let limit = self.opts.any_time_limit_usecs.saturating_mul(1000);
                (0, now, now.saturating_add(limit))
            }
        };
        let want_text = format!("> {seg} at {}", fmt_window(self, lo, hi));
        let mut done = 0u32;
        let mut want: Option<Want> = None;
        let mut conn_idx = None;
        let last_t = loop {
            let Some((t, sent)) = self.next_sent(target, hi)? else {
                let actual = if done > 0 {
                    format!("only {done} of its {} bytes by then", seg.seq.len)
                } else {
                    "no packet".to_string()
                };
                return Err(fail(line, want_text, actual));
            };
            let Sent::Tcp(act) = sent else {
                let what = self.describe(&sent);
                return Err(fail(line, want_text, what));
            };
            let rel = |e: &mut Self, c: Option<usize>| {
                format!(
                    "> {} at {:.6}",
                    e.mapper.relative(c, &act),
                    e.us_of(t) as f64 / 1e6
                )
            };
            if act.src != self.opts.local_ip || act.dst != self.opts.remote_ip {
                let actual = format!("{} ({} > {})", rel(self, None), act.src, act.dst);
                return Err(fail(line, want_text, actual));
            }
            if t < lo || t > hi {
                let c = self.mapper.outbound_conn(&act).ok();
                return Err(fail(line, want_text, rel(self, c)));
            }
            let ci = match conn_idx {
                Some(c) => c,
                None => {
                    let c = self
                        .mapper
                        .outbound_conn(&act)
                        .map_err(|e| fail(line, want_text.clone(), e))?;
                    self.mapper.learn(c, seg, &act);
                    conn_idx = Some(c);
                    c
                }
            };
            let w = want.get_or_insert_with(|| {
                // packetdrill: |actual - script| * tick <= tolerance.
                let slack = self
                    .ts_tick_usecs
                    .map(|tick| (self.tol_ns / 1000 / tick).min(u32::MAX.into()) as u32);
                Want::new(
                    seg,
                    ecn,
                    self.mapper
                        .local_isn(ci, seg.flags.has(crate::ast::TcpFlags::SYN)),
                    self.mapper
                        .remote_isn(ci, seg.flags.has(crate::ast::TcpFlags::SYN)),
                    self.mapper.ts_offset,
                    slack,
                )
            });
            match matcher::check(w, done, &act, !self.strict_segments) {
                Ok(Progress::Done) => break t,
                Ok(Progress::Partial(next)) => done = next.wrapping_sub(w.seq),
                Err(why) => {
                    let actual = format!("{} ({why})", rel(self, Some(ci)));
                    return Err(fail(line, want_text, actual));
                }
            }
        };
        // As packetdrill: the next relative time counts from when the
        // packet was seen.
        self.prev_us = self.us_of(last_t);
        Ok(())
    }

    fn python(&mut self, line: u32, b: &PythonBlock) -> Result<(), Stop> {
        let info = if b.raw.contains("tcpi_") {
            let fd = self
                .last_sock
                .ok_or_else(|| unsupported(line, "a TCP_INFO block before any socket"))?;
            match self.host.tcp_info(fd) {
                Ok(i) => Some(i),
                Err(SysError::Unsupported(r)) => return Err(unsupported(line, r)),
                Err(SysError::Errno(e)) => {
                    return Err(fail(line, "getsockopt(TCP_INFO) to succeed", e.name()))
                }
                Err(SysError::WouldBlock) => {
                    return Err(fail(line, "getsockopt(TCP_INFO) to succeed", "would block"))
                }
            }
        } else {
            None
        };
        let mut lookup = |n: &str| -> Option<i64> {
            if n.starts_with("tcpi_") {
                info.as_ref()?.get(n).map(|v| v as i64)
            } else {
                consts::py_value(n)
            }
        };
        match pyeval::run_block(&b.stmts, &mut self.py_vars, &mut lookup) {
            Ok(()) => Ok(()),
            Err(PyError::Failed(m)) => Err(fail(line, "the Python assertions to hold", m)),
            Err(PyError::Unsupported(m)) => Err(unsupported(line, m)),
        }
    }

    /// Retries the pending blocking call, if any.
    pub fn retry_pending(&mut self) -> Result<(), Stop> {
        let Some(p) = self.pending.clone() else {
            return Ok(());
        };
        let now = self.now();
        match self.exec_call(p.line, &p.call, p.start_ns, false)? {
            Some(()) => {
                self.pending = None;
                self.check_return_time(p.line, &p.call, p.end_ns)
            }
            None if now > p.end_ns.saturating_add(self.tol_ns) => Err(fail(
                p.line,
                format!(
                    "{} to return at {}",
                    p.call.name,
                    fmt_window(
                        self,
                        p.end_ns.saturating_sub(self.tol_ns),
                        p.end_ns.saturating_add(self.tol_ns)
                    )
                ),
                format!("still blocked at {:.6}", self.us_of(now) as f64 / 1e6),
            )),
            None => Ok(()),
        }
    }

    fn check_return_time(&mut self, line: u32, c: &Call, end_ns: u64) -> Result<(), Stop> {
        let now = self.now();
        let (lo, hi) = (
            end_ns.saturating_sub(self.tol_ns),
            end_ns.saturating_add(self.tol_ns),
        );
        if now < lo || now > hi {
            return Err(fail(
                line,
                format!("{} to return at {}", c.name, fmt_window(self, lo, hi)),
                format!("returned at {:.6}", self.us_of(now) as f64 / 1e6),
            ));
        }
        Ok(())
    }
}

fn fmt_window(e: &Engine<'_>, lo: u64, hi: u64) -> String {
    format!(
        "{:.6}..{:.6}",
        e.us_of(lo) as f64 / 1e6,
        e.us_of(hi) as f64 / 1e6
    )
}
