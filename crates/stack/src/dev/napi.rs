//! Interrupts and NAPI: seed ingress steps 5–7 (`net/core/dev.c`).
//!
//! The NIC raises an interrupt; the top half ([`Stack::nic_interrupt`])
//! acknowledges it, masks the device's interrupt ("tells the NIC to shut
//! up") and schedules the device's NAPI instance. The bottom half,
//! [`Stack::net_rx_action`] (the NET_RX softirq), polls the scheduled NAPI
//! instances round robin, each up to its weight (64), all together up to
//! `netdev_budget` (300). A poll that used less than its weight drained the
//! ring: it completes (`napi_complete_done`) and only then is the interrupt
//! unmasked. Packets handed over by software (`netif_rx`: loopback, veth, tc
//! redirect to ingress) wait on the per-CPU backlog, which is polled as one
//! more NAPI instance (`process_backlog`).

use std::collections::VecDeque;

use super::{IfIndex, SoftnetStats};
use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;

/// A NAPI instance on the poll list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NapiId {
    /// A NIC's NAPI (its rx ring and tx completions).
    Dev(IfIndex),
    /// The per-CPU backlog of `netif_rx`.
    Backlog,
}

/// `struct softnet_data`: the per-CPU receive state.
#[derive(Debug)]
pub struct Softnet {
    poll_list: VecDeque<NapiId>,
    backlog: VecDeque<Skb>,
    backlog_scheduled: bool,
    /// Devices whose qdisc must run (`__netif_schedule` → NET_TX softirq).
    output_queue: VecDeque<IfIndex>,
    /// `net.core.netdev_budget`: packets per `net_rx_action`.
    pub netdev_budget: usize,
    /// `net.core.dev_weight`: packets per NAPI poll (drivers' default 64).
    pub dev_weight: usize,
    /// `net.core.netdev_max_backlog`.
    pub netdev_max_backlog: usize,
    /// `net.core.dev_tx_weight`: packets a qdisc run sends before yielding.
    pub dev_tx_weight: usize,
    pub(crate) stats: SoftnetStats,
}

impl Default for Softnet {
    fn default() -> Self {
        Softnet {
            poll_list: VecDeque::with_capacity(16),
            backlog: VecDeque::with_capacity(1000),
            backlog_scheduled: false,
            output_queue: VecDeque::with_capacity(16),
            netdev_budget: 300,
            dev_weight: 64,
            netdev_max_backlog: 1000,
            dev_tx_weight: 64,
            stats: SoftnetStats::default(),
        }
    }
}

impl Softnet {
    pub(crate) fn rx_pending(&self) -> bool {
        !self.poll_list.is_empty()
    }

    pub(crate) fn tx_pending(&self) -> bool {
        !self.output_queue.is_empty()
    }

    pub fn stats(&self) -> SoftnetStats {
        self.stats
    }

    /// NAPI instances waiting to be polled, in order.
    pub fn poll_list(&self) -> impl Iterator<Item = &NapiId> {
        self.poll_list.iter()
    }

    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Queues `dev` for a qdisc run (once).
    pub(crate) fn schedule_output(&mut self, dev: IfIndex) {
        if !self.output_queue.contains(&dev) {
            self.output_queue.push_back(dev);
        }
    }

    pub(crate) fn output_len(&self) -> usize {
        self.output_queue.len()
    }

    pub(crate) fn next_output(&mut self) -> Option<IfIndex> {
        self.output_queue.pop_front()
    }
}

impl Stack {
    pub fn softnet(&self) -> &Softnet {
        &self.softnet
    }

    /// Sets `netdev_budget` and `dev_weight` (sysctls); both at least 1.
    pub fn set_napi_budget(&mut self, netdev_budget: usize, dev_weight: usize) {
        self.softnet.netdev_budget = netdev_budget.max(1);
        self.softnet.dev_weight = dev_weight.max(1);
    }

    /// The top half: the NIC's interrupt handler acknowledges the interrupt,
    /// masks the device's interrupt and schedules its NAPI (`napi_schedule`).
    pub(crate) fn nic_interrupt(&mut self, ifindex: IfIndex) {
        let now = self.now;
        let Ok(dev) = self.dev_mut(ifindex) else {
            return;
        };
        let Some(nic) = dev.nic_mut() else { return };
        if nic.irq_masked {
            return;
        }
        nic.irq_masked = true;
        nic.hw.interrupts += 1;
        self.tracer.event(now, "irq_handler_entry", Some(ifindex));
        self.napi_schedule(NapiId::Dev(ifindex));
    }

    /// `napi_schedule()`: puts the instance on the poll list (once) and
    /// raises NET_RX.
    pub(crate) fn napi_schedule(&mut self, id: NapiId) {
        let already = match id {
            NapiId::Dev(i) => match self.dev_mut(i).ok().and_then(|d| d.nic_mut()) {
                Some(nic) => std::mem::replace(&mut nic.napi_scheduled, true),
                None => true,
            },
            NapiId::Backlog => std::mem::replace(&mut self.softnet.backlog_scheduled, true),
        };
        if !already {
            self.tracer.event(self.now, "napi_schedule", napi_dev(id));
            self.softnet.poll_list.push_back(id);
        }
    }

    /// The NET_RX softirq: polls scheduled NAPI instances round robin until
    /// the poll list is empty or `netdev_budget` is spent. Returns true when
    /// it stopped for the budget with instances still scheduled
    /// (`time_squeeze`).
    pub(crate) fn net_rx_action(&mut self) -> bool {
        let weight = self.softnet.dev_weight;
        let mut budget = self.softnet.netdev_budget;
        while let Some(id) = self.softnet.poll_list.pop_front() {
            let quota = weight.min(budget);
            let work = self.napi_poll(id, quota);
            budget = budget.saturating_sub(work);
            if work < quota {
                self.napi_complete_done(id);
            } else {
                // Used its whole quota: more may be waiting; back of the line.
                self.softnet.poll_list.push_back(id);
            }
            if budget == 0 {
                if !self.softnet.poll_list.is_empty() {
                    self.softnet.stats.time_squeeze += 1;
                    self.tracer.event(self.now, "net_rx_action_squeeze", None);
                    return true;
                }
                break;
            }
        }
        false
    }

    /// One `napi->poll()` call: at most `budget` packets.
    fn napi_poll(&mut self, id: NapiId, budget: usize) -> usize {
        self.softnet.stats.polls += 1;
        let work = match id {
            NapiId::Dev(i) => self.nic_poll(i, budget),
            NapiId::Backlog => self.process_backlog(budget),
        };
        self.softnet.stats.processed += work as u64;
        self.tracer
            .event_detail(self.now, "napi_poll", napi_dev(id), work as u64);
        work
    }

    /// `napi_complete_done()`: off the poll list; for a NIC, unmask its
    /// interrupt, which fires again at once if frames arrived meanwhile.
    fn napi_complete_done(&mut self, id: NapiId) {
        match id {
            NapiId::Backlog => {
                self.softnet.backlog_scheduled = false;
                if !self.softnet.backlog.is_empty() {
                    self.napi_schedule(NapiId::Backlog);
                }
            }
            NapiId::Dev(i) => {
                let refire = match self.dev_mut(i).ok().and_then(|d| d.nic_mut()) {
                    Some(nic) => {
                        nic.napi_scheduled = false;
                        nic.irq_masked = false;
                        nic.has_pending_work()
                    }
                    None => false,
                };
                self.tracer.event(self.now, "napi_complete_done", Some(i));
                if refire {
                    self.nic_interrupt(i);
                }
            }
        }
    }

    /// `netif_rx()`: queues a packet handed over by software on the backlog
    /// (`enqueue_to_backlog`); over `netdev_max_backlog` it is dropped.
    pub(crate) fn netif_rx(&mut self, skb: Skb) {
        self.tracer.skb(self.now, "netif_rx", &skb);
        if self.softnet.backlog.len() >= self.softnet.netdev_max_backlog {
            self.softnet.stats.dropped += 1;
            if let Some(d) = skb.meta.ingress_dev.and_then(|i| self.dev_mut(i).ok()) {
                d.stats.rx_dropped += 1;
            }
            self.kfree_skb(skb, DropReason::CpuBacklog);
            return;
        }
        self.softnet.backlog.push_back(skb);
        self.napi_schedule(NapiId::Backlog);
    }

    /// `process_backlog()`: the backlog's NAPI poll.
    fn process_backlog(&mut self, quota: usize) -> usize {
        let mut work = 0;
        while work < quota {
            let Some(skb) = self.softnet.backlog.pop_front() else {
                break;
            };
            work += 1;
            self.netif_receive_skb(skb);
        }
        work
    }
}

fn napi_dev(id: NapiId) -> Option<IfIndex> {
    match id {
        NapiId::Dev(i) => Some(i),
        NapiId::Backlog => None,
    }
}
