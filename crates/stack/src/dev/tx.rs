//! `dev_queue_xmit`: seed egress step 7 (`net/core/dev.c`), and what Linux
//! does after it: the qdisc is run, the driver places the skb on its tx ring
//! (`dev_hard_start_xmit` → `ndo_start_xmit`), the NIC sends it, and tx
//! completion frees the descriptor.
//!
//! Order: the MAC header pointer is set (`skb_reset_mac_header`); tc egress
//! runs (and may drop, redirect or mirror); then the packet is enqueued on
//! the device's qdisc and `__qdisc_run` dequeues into the driver until the
//! qdisc is empty, the driver stops the queue (tx ring full: the packet is
//! kept for later, `dev_requeue_skb`, and the queue is woken on completion),
//! or `dev_tx_weight` packets have gone (then the run is rescheduled).
//! Virtual devices (VLAN, bridge, bond, veth, loopback) have no qdisc
//! (`noqueue`) and transmit directly.

use super::{DevKind, IfIndex};
use crate::drop::DropReason;
use crate::sched::tc::{TcDirection, TcVerdict};
use crate::sched::{NetXmit, QdiscCtx};
use crate::skb::Skb;
use crate::stack::{devm, Stack, RECURSION_LIMIT};

/// Why `dev_queue_xmit` did not take a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmitError {
    /// The device does not exist.
    NoDevice,
    /// Dropped (by tc, the qdisc, a down device, …): counted with its reason.
    Dropped(DropReason),
    /// Queued, but the qdisc is congested (NET_XMIT_CN).
    Congested,
}

/// Bytes from data to the network header on a leaving packet (its MAC header
/// length), or 14 if the network header is unset.
pub(crate) fn mac_len_at_data(skb: &Skb) -> usize {
    skb.network_header()
        .map_or(14, |n| n.saturating_sub(skb.data_offset()))
}

impl Stack {
    /// `dev_queue_xmit()`: sends `skb` (data at its MAC header) out of
    /// `skb.meta.egress_dev` at `now`.
    pub fn dev_queue_xmit(&mut self, now: crate::time::Instant, skb: Skb) -> Result<(), XmitError> {
        self.set_now(now);
        let Some(dev) = skb.meta.egress_dev else {
            self.kfree_skb(skb, DropReason::DevReady);
            return Err(XmitError::NoDevice);
        };
        self.dev_queue_xmit_on(skb, dev)
    }

    /// `dev_queue_xmit()` on `dev` (sets `egress_dev`).
    pub(crate) fn dev_queue_xmit_on(
        &mut self,
        mut skb: Skb,
        dev: IfIndex,
    ) -> Result<(), XmitError> {
        let now = self.now;
        skb.meta.egress_dev = Some(dev);
        skb.reset_mac_header();
        self.tracer.skb(now, "dev_queue_xmit", &skb);
        // SCM_TSTAMP_SCHED, before anything may drop the packet.
        self.skb_tstamp_sched(&skb);
        if self.recursion >= RECURSION_LIMIT {
            self.kfree_skb(skb, DropReason::NotSpecified);
            return Err(XmitError::Dropped(DropReason::NotSpecified));
        }
        let up = match self.dev(dev) {
            Ok(d) => d.flags.up,
            Err(_) => {
                self.kfree_skb(skb, DropReason::DevReady);
                return Err(XmitError::NoDevice);
            }
        };
        if !up {
            if let Ok(d) = devm(&mut self.devs, dev) {
                d.stats.tx_dropped += 1;
            }
            self.kfree_skb(skb, DropReason::DevReady);
            return Err(XmitError::Dropped(DropReason::DevReady));
        }
        self.recursion += 1;
        let r = self.dev_queue_xmit_inner(skb, dev);
        self.recursion -= 1;
        r
    }

    fn dev_queue_xmit_inner(&mut self, skb: Skb, dev: IfIndex) -> Result<(), XmitError> {
        let Some(mut skb) = self.sch_handle_egress(skb, dev)? else {
            return Ok(());
        };
        let now = self.now;
        let has_qdisc = self.dev(dev).is_ok_and(|d| d.qdisc.is_some());
        if !has_qdisc {
            // noqueue: straight to the driver.
            let id = skb.id();
            return match self.dev_hard_start_xmit(skb, dev) {
                Ok(()) => Ok(()),
                Err(s) => {
                    self.xmit_refused = Some((id, NetXmit::Drop));
                    // Segments of a GSO skb left behind go with it.
                    let rest = match devm(&mut self.devs, dev) {
                        Ok(d) => {
                            d.stats.tx_dropped += 1 + d.requeued.len() as u64;
                            std::mem::take(&mut d.requeued)
                        }
                        Err(_) => Default::default(),
                    };
                    for r in rest {
                        self.kfree_skb(r, DropReason::DevReady);
                    }
                    self.kfree_skb(s, DropReason::DevReady);
                    Err(XmitError::Dropped(DropReason::DevReady))
                }
            };
        }
        skb.meta.set_tstamp(Some(now));
        self.tracer.skb(now, "qdisc_enqueue", &skb);
        let mut ctx = QdiscCtx {
            now,
            to_free: std::mem::take(&mut self.scratch_to_free),
        };
        let id = skb.id();
        let rc = match devm(&mut self.devs, dev)
            .ok()
            .and_then(|d| d.qdisc.as_mut())
        {
            Some(q) => q.enqueue(skb, &mut ctx),
            None => NetXmit::Drop,
        };
        if rc != NetXmit::Success {
            self.xmit_refused = Some((id, rc));
        }
        self.free_qdisc_drops(&mut ctx, dev);
        self.scratch_to_free = ctx.to_free;
        self.qdisc_run(dev);
        match rc {
            NetXmit::Success => Ok(()),
            NetXmit::Congested => Err(XmitError::Congested),
            NetXmit::Drop => Err(XmitError::Dropped(DropReason::QdiscDrop)),
        }
    }

    /// Frees what a qdisc dropped, counting each on the device and by reason.
    fn free_qdisc_drops(&mut self, ctx: &mut QdiscCtx, dev: IfIndex) {
        let n = ctx.to_free.len() as u64;
        if n == 0 {
            return;
        }
        if let Ok(d) = devm(&mut self.devs, dev) {
            d.stats.tx_dropped += n;
        }
        for (s, reason) in ctx.to_free.drain(..) {
            self.tracer.kfree_skb(self.now, &s, reason);
            self.drops.kfree_skb_reason(s, reason);
        }
    }

    /// `sch_handle_egress()`: tc egress. `Ok(None)`: the packet was taken.
    fn sch_handle_egress(&mut self, mut skb: Skb, dev: IfIndex) -> Result<Option<Skb>, XmitError> {
        match self.tc_classify(&mut skb, dev, TcDirection::Egress) {
            None | Some(TcVerdict::Pass) => Ok(Some(skb)),
            Some(TcVerdict::Drop) => {
                self.kfree_skb(skb, DropReason::TcEgress);
                Err(XmitError::Dropped(DropReason::TcEgress))
            }
            Some(TcVerdict::Redirect(to, dir)) => {
                self.tc_send(skb, to, dir, false);
                Ok(None)
            }
        }
    }

    /// `__qdisc_run()`: dequeue into the driver while it takes packets, up to
    /// `dev_tx_weight`; with more left, the run is rescheduled (NET_TX).
    pub(crate) fn qdisc_run(&mut self, dev: IfIndex) {
        let now = self.now;
        let mut quota = self.softnet.dev_tx_weight;
        loop {
            let Ok(d) = devm(&mut self.devs, dev) else {
                return;
            };
            if d.queue_stopped || !d.flags.up {
                return;
            }
            if quota == 0 {
                self.netif_schedule(dev);
                return;
            }
            let mut ctx = QdiscCtx {
                now,
                to_free: std::mem::take(&mut self.scratch_to_free),
            };
            let next = match d.requeued.pop_front() {
                Some(s) => Some(s),
                None => d.qdisc.as_mut().and_then(|q| q.dequeue(&mut ctx)),
            };
            self.free_qdisc_drops(&mut ctx, dev);
            self.scratch_to_free = ctx.to_free;
            let Some(skb) = next else { return };
            quota -= 1;
            if let Err(back) = self.dev_hard_start_xmit(skb, dev) {
                // NETDEV_TX_BUSY: keep it, stop until a completion wakes us.
                if let Ok(d) = devm(&mut self.devs, dev) {
                    d.requeued.push_front(back);
                    if let Some(q) = d.qdisc.as_mut() {
                        q.note_requeue();
                    }
                }
                self.netif_stop_queue(dev);
                return;
            }
            // A driver stops its queue as soon as its ring is full.
            if self
                .dev(dev)
                .ok()
                .and_then(|d| d.nic())
                .is_some_and(|n| n.tx_ring_full())
            {
                self.netif_stop_queue(dev);
                return;
            }
        }
    }

    /// `netif_stop_queue()`.
    pub(crate) fn netif_stop_queue(&mut self, dev: IfIndex) {
        if let Ok(d) = devm(&mut self.devs, dev) {
            if !d.queue_stopped {
                d.queue_stopped = true;
                self.tracer.event(self.now, "netif_stop_queue", Some(dev));
            }
        }
    }

    /// `netif_wake_queue()`: restart and schedule the qdisc.
    pub(crate) fn netif_wake_queue(&mut self, dev: IfIndex) {
        if let Ok(d) = devm(&mut self.devs, dev) {
            if d.queue_stopped {
                d.queue_stopped = false;
                self.tracer.event(self.now, "netif_wake_queue", Some(dev));
                self.netif_schedule(dev);
            }
        }
    }

    /// `__netif_schedule()`: the qdisc of `dev` runs in NET_TX.
    pub(crate) fn netif_schedule(&mut self, dev: IfIndex) {
        self.softnet.schedule_output(dev);
    }

    /// The NET_TX softirq: runs the qdiscs that were scheduled.
    pub(crate) fn net_tx_action(&mut self) {
        let n = self.softnet.output_len();
        for _ in 0..n {
            let Some(dev) = self.softnet.next_output() else {
                break;
            };
            self.qdisc_run(dev);
        }
    }

    /// `dev_hard_start_xmit()`: taps see the packet leave, then the device's
    /// driver takes it. Returns the packet if the driver is busy.
    // The busy packet comes back by value: boxing it would allocate per packet.
    #[allow(clippy::result_large_err)]
    pub(crate) fn dev_hard_start_xmit(&mut self, skb: Skb, dev: IfIndex) -> Result<(), Skb> {
        // netif_skb_features(): a TSO NIC takes an IPv4 GSO skb whole; for
        // any other device (or a VLAN tag, to insert or in the frame) it is
        // segmented here.
        if skb.is_gso()
            && (skb.meta.vlan.is_some()
                || skb.data().get(12..14) != Some(&[0x08, 0x00][..])
                || !self.nic_can_tso(dev))
        {
            return self.dev_xmit_gso(skb, dev);
        }
        self.xmit_one(skb, dev)
    }

    /// `validate_xmit_skb()` → `skb_gso_segment()` for a GSO skb, then
    /// `xmit_one` per segment. If the driver turns one away (ring full),
    /// it comes back to the caller and the segments after it wait in the
    /// device's requeue list, in order, as Linux requeues the rest of the
    /// list.
    #[allow(clippy::result_large_err)]
    fn dev_xmit_gso(&mut self, skb: Skb, dev: IfIndex) -> Result<(), Skb> {
        let mut segs = std::mem::take(&mut self.scratch_gso);
        segs.clear();
        self.tracer.skb(self.now, "skb_gso_segment", &skb);
        if crate::skb::skb_gso_segment(&skb, &self.pool, &mut segs).is_err() {
            segs.clear();
            self.scratch_gso = segs;
            if let Ok(d) = devm(&mut self.devs, dev) {
                d.stats.tx_dropped += 1;
            }
            self.kfree_skb(skb, DropReason::SkbGsoSeg);
            return Ok(());
        }
        drop(skb);
        let mut busy = None;
        {
            let mut it = segs.drain(..);
            for seg in it.by_ref() {
                if let Err(back) = self.xmit_one(seg, dev) {
                    busy = Some(back);
                    break;
                }
            }
            if busy.is_some() {
                if let Ok(d) = devm(&mut self.devs, dev) {
                    for (k, s) in it.enumerate() {
                        d.requeued.insert(k, s);
                    }
                }
            }
        }
        self.scratch_gso = segs;
        match busy {
            Some(b) => Err(b),
            None => Ok(()),
        }
    }

    /// `xmit_one()`: taps see the packet leave, then the device's driver
    /// takes it. Returns the packet if the driver is busy.
    #[allow(clippy::result_large_err)]
    fn xmit_one(&mut self, mut skb: Skb, dev: IfIndex) -> Result<(), Skb> {
        self.tracer.skb(self.now, "dev_hard_start_xmit", &skb);
        let (kind, sw_csum) = match self.dev(dev) {
            Ok(d) => match &d.kind {
                DevKind::Nic(n) => (0, !n.cfg.tx_csum_offload),
                DevKind::Loopback => (1, false),
                DevKind::Vlan(_) => (2, false),
                DevKind::Bridge(_) => (3, false),
                DevKind::Bond(_) => (4, false),
                DevKind::Veth(_) => (5, false),
                DevKind::Ipip(_) => (6, false),
            },
            Err(_) => return Err(skb),
        };
        // validate_xmit_skb(): a partial checksum the device cannot fill in
        // is computed in software (loopback, veth and tunnels pass it on;
        // VLAN, bridge and bond hand it to a lower device that decides).
        if sw_csum && !skb.checksum_help() {
            self.kfree_skb(skb, DropReason::SkbCsum);
            return Ok(());
        }
        self.deliver_taps_all(&skb, dev, true);
        match kind {
            0 => self.nic_start_xmit_tstamp(dev, skb),
            1 => {
                self.loopback_xmit(dev, skb);
                Ok(())
            }
            2 => {
                self.vlan_dev_hard_start_xmit(dev, skb);
                Ok(())
            }
            3 => {
                self.br_dev_xmit(dev, skb);
                Ok(())
            }
            4 => {
                self.bond_start_xmit(dev, skb);
                Ok(())
            }
            5 => {
                self.veth_xmit(dev, skb);
                Ok(())
            }
            _ => {
                // A tunnel takes IPv4 from the routing layer (dst_output);
                // a frame handed to it by dev_queue_xmit is unwrapped first.
                let mut skb = skb;
                let _ = skb.pull(mac_len_at_data(&skb));
                self.ipip_tunnel_xmit(skb, dev);
                Ok(())
            }
        }
    }

    /// Every qdisc's next watchdog at or before `now` schedules its run.
    pub(crate) fn qdisc_watchdogs(&mut self) -> bool {
        let now = self.now;
        let mut due = std::mem::take(&mut self.scratch_devs);
        due.clear();
        for d in self.devs.iter().flatten() {
            if let Some(q) = &d.qdisc {
                if !d.queue_stopped
                    && q.stats().qlen > 0
                    && q.next_wakeup().is_some_and(|t| t <= now)
                {
                    due.push(d.ifindex);
                }
            }
        }
        let any = !due.is_empty();
        for &d in &due {
            self.netif_schedule(d);
        }
        self.scratch_devs = due;
        any
    }
}
