//! TCP timers (`net/ipv4/tcp_timer.c`): retransmission (with SYN and
//! SYN-ACK retries and the give-up deadline of `tcp_retries2` /
//! `TCP_USER_TIMEOUT`), tail loss probe, RACK reordering timeout, delayed
//! ACK, persist (zero-window probes), keepalive, FIN_WAIT2 and TIME-WAIT.
//!
//! Sans-IO: each socket keeps its deadlines; the table keeps a heap of
//! (deadline, socket) that `Stack::poll` drains when due and reports as the
//! next deadline otherwise. Stale heap entries are skipped.

use super::cong::CaState;
use super::rtt::{TCP_RTO_MAX, TCP_RTO_MIN};
use super::sock::{TcpSock, TcpState, XmitTimer};
use crate::sock::Errno;
use crate::stack::Stack;
use crate::time::{Duration, Instant};

/// `tcp_model_timeout()`: how long `boundary` exponential backoffs from
/// `rto_base` take, with the RTO capped at `TCP_RTO_MAX`.
pub fn tcp_model_timeout(boundary: u32, rto_base: Duration) -> Duration {
    let base = rto_base.as_nanos().max(1);
    let thresh = 63 - (TCP_RTO_MAX.as_nanos() / base).max(1).leading_zeros();
    let ns = if boundary <= thresh {
        ((2u64 << boundary) - 1) * base
    } else {
        ((2u64 << thresh) - 1) * base + u64::from(boundary - thresh) * TCP_RTO_MAX.as_nanos()
    };
    Duration::from_nanos(ns)
}

impl Stack {
    /// Runs every TCP timer due at `self.now`; true if any ran.
    pub(crate) fn tcp_run_timers(&mut self) -> bool {
        let mut any = false;
        while let Some(id) = self.tcp.pop_due(self.now) {
            any = true;
            let Some(mut sk) = self.tcp.take(id) else {
                continue;
            };
            self.tcp_handle_timers(&mut sk);
            self.tcp_sock_done(sk);
        }
        any
    }

    /// The earliest TCP deadline.
    pub(crate) fn tcp_next_timer(&self) -> Option<Instant> {
        self.tcp.next_deadline()
    }

    fn tcp_handle_timers(&mut self, sk: &mut TcpSock) {
        let now = self.now;
        if sk.timewait_timer.is_some_and(|t| t <= now) {
            sk.timewait_timer = None;
            self.tcp.ext.tw += 1;
            self.tcp_done(sk);
            return;
        }
        if sk.delack_timer.is_some_and(|t| t <= now) {
            sk.delack_timer = None;
            if sk.ack_pending {
                if sk.pingpong {
                    sk.pingpong = false;
                    sk.ato = super::output::TCP_ATO_MIN;
                } else {
                    sk.ato =
                        Duration::from_nanos((sk.ato.as_nanos() * 2).min(sk.rtt.rto().as_nanos()));
                }
                self.tcp.ext.delayed_acks += 1;
                self.tracer
                    .event_detail(now, "tcp_delack_timer", None, u64::from(sk.id.0));
                self.tcp_send_ack(sk);
            }
        }
        if let Some((t, kind)) = sk.xmit_timer {
            if t <= now {
                sk.xmit_timer = None;
                self.tracer
                    .event_detail(now, kind.name(), None, u64::from(sk.id.0));
                match kind {
                    XmitTimer::Retrans => self.tcp_retransmit_timer(sk),
                    XmitTimer::LossProbe => self.tcp_send_loss_probe(sk),
                    XmitTimer::ReoTimeout => self.tcp_rack_reo_timeout(sk),
                    XmitTimer::Probe0 => self.tcp_probe_timer(sk),
                }
                if sk.state == TcpState::Closed {
                    return;
                }
            }
        }
        if sk.keepalive_timer.is_some_and(|t| t <= now) {
            sk.keepalive_timer = None;
            self.tcp_keepalive_timer(sk);
        }
    }

    /// `tcp_write_err()`: give up with the pending soft error or ETIMEDOUT.
    fn tcp_write_err(&mut self, sk: &mut TcpSock) {
        let err = sk.err_soft.take().unwrap_or(Errno::ETIMEDOUT);
        sk.err = Some(err);
        if matches!(sk.state, TcpState::SynSent | TcpState::SynRecv) {
            self.tcp.mib.attempt_fails += 1;
        }
        self.tcp_done(sk);
    }

    /// `retransmits_timed_out()`.
    fn retransmits_timed_out(&self, sk: &TcpSock, boundary: u32) -> bool {
        let Some(start) = sk.retrans_stamp else {
            return false;
        };
        let timeout = match sk.user_timeout {
            Some(t) => t,
            None => tcp_model_timeout(boundary, TCP_RTO_MIN),
        };
        self.now.saturating_since(start) >= timeout
    }

    /// `tcp_retransmit_timer()`.
    fn tcp_retransmit_timer(&mut self, sk: &mut TcpSock) {
        if sk.fo.passive_child && sk.state == TcpState::SynRecv {
            if !self.tcp_fastopen_synack_timer(sk) {
                self.tcp_write_err(sk);
            }
            return;
        }
        if sk.rtx_queue.is_empty() {
            return;
        }
        if matches!(sk.state, TcpState::SynSent | TcpState::SynRecv) {
            let max = if sk.state == TcpState::SynSent {
                sk.syn_retries.unwrap_or(self.tcp.settings.syn_retries)
            } else {
                self.tcp.settings.synack_retries
            };
            let user_expired = sk.user_timeout.is_some_and(|u| {
                sk.rtx_queue
                    .front()
                    .is_some_and(|s| self.now.saturating_since(s.first_sent) >= u)
            });
            if sk.retransmits >= max || user_expired {
                if sk.parent.is_some() {
                    // A request that never completed: dropped silently.
                    self.tcp_done(sk);
                } else {
                    self.tcp_write_err(sk);
                }
                return;
            }
            self.tcp.ext.tcp_timeouts += 1;
            self.tcp_retransmit_skb(sk, 0);
            sk.retransmits += 1;
            sk.rtt.backoff();
            sk.xmit_timer = Some((self.now + sk.rtt.timeout(), XmitTimer::Retrans));
            return;
        }
        let boundary = if sk.orphan {
            match self.tcp.settings.orphan_retries {
                0 => 8,
                n => n,
            }
        } else {
            self.tcp.settings.retries2
        };
        // tcp_write_timeout(): past tcp_retries1, suspect a path MTU black
        // hole (and, in Linux, the route: netpath looks it up on every
        // transmission once it changed).
        if self.retransmits_timed_out(sk, self.tcp.settings.retries1) {
            self.tcp_mtu_probing_blackhole(sk);
        }
        if self.retransmits_timed_out(sk, boundary) {
            self.tcp.ext.tcp_abort_on_timeout += 1;
            self.tcp_write_err(sk);
            return;
        }
        self.tcp.ext.tcp_timeouts += 1;
        self.tcp_enter_loss(sk);
        self.tcp_retransmit_skb(sk, 0);
        sk.retransmits += 1;
        sk.rtt.backoff();
        let rto = sk.rtt.timeout();
        sk.xmit_timer = Some((self.now + rto, XmitTimer::Retrans));
        self.tracer
            .event_detail(self.now, "tcp_retransmit_timer_rto", None, rto.as_millis());
    }

    /// `tcp_send_loss_probe()` (RFC 8985 §7.3): new data if the window
    /// allows, else the last segment again.
    fn tcp_send_loss_probe(&mut self, sk: &mut TcpSock) {
        let mut sent = false;
        if let Some(front) = sk.write_queue.front() {
            let wnd_end = sk.snd_una + sk.snd_wnd;
            if !(front.seq + front.skb.len() as u32).after(wnd_end) {
                let cwnd = sk.cc.cwnd;
                sk.cc.cwnd = sk.cc.cwnd.max(sk.in_flight() + 1);
                sent = self.tcp_write_xmit(sk, super::output::Nonagle::Push);
                sk.cc.cwnd = cwnd;
            }
        }
        if !sent {
            if let Some(i) = sk.rtx_queue.len().checked_sub(1) {
                if !sk.rtx_queue[i].sacked {
                    sent = self.tcp_retransmit_skb(sk, i);
                }
            }
        }
        if sent {
            sk.tlp_high_seq = Some(sk.snd_nxt);
            self.tcp.ext.tcp_loss_probes += 1;
        }
        self.tcp_rearm_rto(sk);
    }

    /// `tcp_rack_reo_timeout()`.
    fn tcp_rack_reo_timeout(&mut self, sk: &mut TcpSock) {
        let prior_inflight = sk.in_flight();
        self.tcp_rack_mark_lost(sk);
        if prior_inflight != sk.in_flight() {
            if sk.cc.ca_state != CaState::Recovery {
                self.tcp_enter_recovery(sk);
                self.tcp_cwnd_reduction(sk, 1, false);
            }
            self.tcp_xmit_retransmit_queue(sk);
        }
        if sk.xmit_timer.is_none() {
            self.tcp_rearm_rto(sk);
        }
    }

    /// `tcp_probe_timer()`: the persist timer.
    fn tcp_probe_timer(&mut self, sk: &mut TcpSock) {
        if sk.packets_out > 0 || sk.write_queue.is_empty() {
            sk.probes_out = 0;
            return;
        }
        let max = if sk.orphan {
            match self.tcp.settings.orphan_retries {
                0 => 8,
                n => n,
            }
        } else {
            self.tcp.settings.retries2
        };
        let user_expired = sk
            .user_timeout
            .is_some_and(|u| sk.probes_out > 0 && self.now.saturating_since(sk.last_ack_recv) >= u);
        // An orphan gives up by backoff, which answered probes do not
        // reset (tcp_orphan_retries: none left once the RTO is at its cap).
        let orphan_done = sk.orphan && {
            let alive = sk.rtt.timeout() < TCP_RTO_MAX;
            let retries = match (self.tcp.settings.orphan_retries, alive) {
                (0, true) => 8,
                (_, false) => 0,
                (n, true) => n,
            };
            !alive && sk.rtt.backoffs() >= retries
        };
        if orphan_done {
            self.tcp_send_active_reset(sk);
            self.tcp_write_err(sk);
            return;
        }
        if sk.probes_out >= max || user_expired {
            self.tcp_write_err(sk);
            return;
        }
        self.tcp_write_wakeup(sk);
        self.tcp.ext.tcp_win_probe += 1;
        sk.probes_out += 1;
        if sk.packets_out == 0 {
            sk.rtt.backoff();
            let when = sk.rtt.timeout().min(TCP_RTO_MAX);
            sk.xmit_timer = Some((self.now + when, XmitTimer::Probe0));
        }
    }

    /// Arms the keepalive timer from now (SO_KEEPALIVE on an established
    /// connection).
    pub(crate) fn tcp_reset_keepalive(&mut self, sk: &mut TcpSock) {
        if sk.keepalive && sk.state.synchronized() {
            sk.keepalive_timer = Some(self.now + sk.keepalive_time(&self.tcp.settings));
        }
    }

    /// `tcp_keepalive_timer()`: also the FIN_WAIT2 timeout of an orphan.
    fn tcp_keepalive_timer(&mut self, sk: &mut TcpSock) {
        if sk.state == TcpState::FinWait2 && sk.orphan {
            self.tcp_done(sk);
            return;
        }
        if !sk.keepalive
            || !matches!(
                sk.state,
                TcpState::Established
                    | TcpState::CloseWait
                    | TcpState::FinWait1
                    | TcpState::FinWait2
            )
        {
            return;
        }
        let st = self.tcp.settings.clone();
        let idle = sk.keepalive_time(&st);
        if sk.packets_out > 0 || !sk.write_queue.is_empty() {
            sk.keepalive_timer = Some(self.now + idle);
            return;
        }
        let last = sk.lrcvtime.max(sk.last_ack_recv);
        let elapsed = self.now.saturating_since(last);
        let next = if elapsed >= idle {
            let expired = match sk.user_timeout {
                Some(u) => elapsed >= u && sk.probes_out > 0,
                None => sk.probes_out >= sk.keepalive_probes(&st),
            };
            if expired {
                self.tcp_send_active_reset(sk);
                self.tcp_write_err(sk);
                return;
            }
            self.tcp_write_wakeup(sk);
            self.tcp.ext.tcp_keep_alive += 1;
            sk.probes_out += 1;
            sk.keepalive_intvl(&st)
        } else {
            Duration::from_nanos(idle.as_nanos() - elapsed.as_nanos())
        };
        sk.keepalive_timer = Some(self.now + next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::rtt::TCP_TIMEOUT_INIT;

    #[test]
    fn model_timeout_matches_linux_figures() {
        // tcp_retries2 = 15 with TCP_RTO_MIN: 924.6 s (the figure in
        // Documentation/networking/ip-sysctl.rst).
        assert_eq!(tcp_model_timeout(15, TCP_RTO_MIN).as_millis(), 924_600);
        // SYN retries 6 from 1 s: 127 s.
        assert_eq!(tcp_model_timeout(6, TCP_TIMEOUT_INIT).as_millis(), 127_000);
    }
}
