//! The NIC and its driver: seed ingress steps 1–5 and the end of egress
//! step 7.
//!
//! Hardware side: a frame arrives from the wire ([`Stack::nic_receive`]);
//! the NIC checks its length and FCS (a bad frame is dropped here and only
//! counted: the operating system never sees it), filters by destination MAC
//! (own unicast, broadcast, the multicast list; everything when
//! promiscuous), writes the frame into the next free rx descriptor's buffer
//! ("DMA" into memory the driver posted beforehand) — or drops it when the
//! ring is full (`rx_missed_errors`) — and raises an interrupt.
//!
//! Driver side: the NAPI poll ([`Stack::nic_poll`]) cleans completed tx
//! descriptors (tx completion), then takes up to `budget` received frames
//! off the ring, builds each skb (`eth_type_trans`: protocol, device,
//! pkt_type, MAC header set and pulled), refills the descriptor with a fresh
//! buffer and hands the skb to `netif_receive_skb`.
//!
//! Transmit: `ndo_start_xmit` ([`Stack::nic_start_xmit`]) places the skb on
//! the tx ring; the NIC pads it to 60 bytes, inserts the VLAN tag if it
//! offloads that, appends the FCS and sends it at line rate; when it has
//! left, the descriptor completes and the interrupt is raised.
//!
//! Page flipping (DESIGN.md §7): a frame from a simulated link arrives as an
//! skb; "DMA" swaps it into the descriptor in place of the posted buffer,
//! which goes back to the pool, so no byte is copied. A frame from outside
//! (TAP, pcap replay) is copied into the posted buffer ([`Stack::nic_receive_bytes`]).

use std::collections::VecDeque;

use netpath_wire::ethernet::{self, fcs, EtherType, EthernetAddress};

use super::{DevError, DevKind, IfIndex};
use crate::drop::DropReason;
use crate::skb::{ChecksumState, PacketType, Skb, VlanInfo};
use crate::stack::{devm, Stack};
use crate::time::{Duration, Instant};

/// When the NIC computes the FCS of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FcsCheck {
    /// Always (the honest, slow path; real frames from outside).
    Always,
    /// Only when the link says it altered the frame; an untouched frame has
    /// its "FCS good" bit set for free, as in hardware (DESIGN.md §7).
    #[default]
    WhenTouched,
}

/// A NIC's fixed properties (`ethtool -g`, `-k`, speed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicConfig {
    /// Rx descriptors (`ethtool -G rx`).
    pub rx_ring: usize,
    /// Tx descriptors (`ethtool -G tx`).
    pub tx_ring: usize,
    /// Line rate in bit/s; `None` sends instantly.
    pub speed_bps: Option<u64>,
    pub fcs_check: FcsCheck,
    /// NETIF_F_HW_VLAN_CTAG_RX.
    pub vlan_rx_offload: bool,
    /// NETIF_F_HW_VLAN_CTAG_TX.
    pub vlan_tx_offload: bool,
    /// Size of each rx buffer the driver posts.
    pub rx_buf_size: usize,
    /// NETIF_F_HW_CSUM (`ethtool -K tx`): the NIC fills in transport
    /// checksums left partial (`CHECKSUM_PARTIAL`); without it the stack
    /// computes them in software before the driver (`skb_checksum_help`).
    pub tx_csum_offload: bool,
    /// NETIF_F_RXCSUM (`ethtool -K rx`): the NIC verifies transport
    /// checksums it receives, so the stack need not.
    pub rx_csum_offload: bool,
    /// NETIF_F_GRO (`ethtool -K gro`): consecutive TCP segments of a flow
    /// received in one NAPI poll are merged before the stack (`dev::gro`).
    pub gro: bool,
    /// NETIF_F_TSO (`ethtool -K tso`): the NIC takes a GSO skb in one
    /// descriptor and cuts it into frames itself (with checksum offload,
    /// at no line rate). It puts a "TSO burst" on the wire: the frames,
    /// built one by one only when something needs them ([`tso_frames`]).
    pub tso: bool,
}

impl Default for NicConfig {
    fn default() -> Self {
        NicConfig {
            rx_ring: 256,
            tx_ring: 256,
            speed_bps: None,
            fcs_check: FcsCheck::WhenTouched,
            vlan_rx_offload: false,
            vlan_tx_offload: false,
            rx_buf_size: 2048,
            // On, as on the NICs Linux drives.
            tx_csum_offload: true,
            rx_csum_offload: true,
            gro: true,
            tso: true,
        }
    }
}

impl NicConfig {
    pub(crate) fn validate(&self) -> Result<(), DevError> {
        if self.rx_ring == 0 || self.rx_ring > 32768 {
            return Err(DevError::BadParam("rx ring size must be 1..=32768"));
        }
        if self.tx_ring == 0 || self.tx_ring > 32768 {
            return Err(DevError::BadParam("tx ring size must be 1..=32768"));
        }
        if self.speed_bps == Some(0) {
            return Err(DevError::BadParam("speed must be positive"));
        }
        if self.rx_buf_size < 64 {
            return Err(DevError::BadParam("rx buffer size must be at least 64"));
        }
        Ok(())
    }
}

/// Counters of the NIC itself (`ethtool -S`), beyond `ip -s link`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NicHwStats {
    /// Frames the MAC address filter refused.
    pub rx_filtered: u64,
    /// Frames whose FCS was computed and checked.
    pub rx_fcs_computed: u64,
    /// Frames that arrived while the device was down.
    pub rx_while_down: u64,
    /// Interrupts raised (and taken by the top half).
    pub interrupts: u64,
    /// Descriptors left without a buffer because the pool refused one.
    pub rx_alloc_failed: u64,
    /// Frames whose buffer had to grow for the FCS or padding.
    pub tx_expanded: u64,
}

#[derive(Debug)]
struct RxDesc {
    /// The buffer the driver posted; after DMA, the frame.
    buf: Option<Skb>,
    /// The hardware wrote a frame here (descriptor done bit).
    done: bool,
}

#[derive(Debug)]
struct TxDesc {
    /// `None` once the frame has left.
    skb: Option<Skb>,
    len: usize,
    /// Frames it stands for (a TSO burst: its segments).
    frames: u16,
    done_at: Instant,
}

/// A simulated Ethernet NIC and its driver's rings.
#[derive(Debug)]
pub struct Nic {
    pub(crate) cfg: NicConfig,
    rx_ring: Vec<RxDesc>,
    /// Next descriptor the hardware fills.
    rx_hw: usize,
    /// Next descriptor the driver cleans.
    rx_clean: usize,
    tx_ring: VecDeque<TxDesc>,
    tx_busy_until: Instant,
    /// Frames that have left the NIC, for whatever carries them (a
    /// simulated link, a TAP fd).
    wire_out: VecDeque<Skb>,
    pub(crate) irq_masked: bool,
    pub(crate) napi_scheduled: bool,
    pub(crate) hw: NicHwStats,
}

impl Nic {
    pub(crate) fn new(cfg: NicConfig) -> Nic {
        let mut rx_ring = Vec::with_capacity(cfg.rx_ring);
        rx_ring.resize_with(cfg.rx_ring, || RxDesc {
            buf: None,
            done: false,
        });
        Nic {
            cfg,
            rx_ring,
            rx_hw: 0,
            rx_clean: 0,
            tx_ring: VecDeque::with_capacity(cfg.tx_ring),
            tx_busy_until: Instant::ZERO,
            wire_out: VecDeque::with_capacity(cfg.tx_ring),
            irq_masked: false,
            napi_scheduled: false,
            hw: NicHwStats::default(),
        }
    }

    pub fn config(&self) -> &NicConfig {
        &self.cfg
    }

    pub fn hw_stats(&self) -> &NicHwStats {
        &self.hw
    }

    /// Is the device's interrupt masked (NAPI in charge)?
    pub fn irq_masked(&self) -> bool {
        self.irq_masked
    }

    pub fn napi_scheduled(&self) -> bool {
        self.napi_scheduled
    }

    /// Received frames waiting on the ring, counted from the ring's
    /// indices (no walk): those between the driver's and the hardware's.
    fn rx_ready(&self) -> usize {
        let n = self.rx_ring.len();
        match self.rx_ring.get(self.rx_clean) {
            Some(d) if d.done => match (self.rx_hw + n - self.rx_clean) % n.max(1) {
                0 => n,
                k => k,
            },
            _ => 0,
        }
    }

    /// Received frames waiting on the ring for the driver.
    pub fn rx_pending(&self) -> usize {
        self.rx_ring.iter().filter(|d| d.done).count()
    }

    /// Descriptors in use on the tx ring (queued, sending, or completed but
    /// not yet cleaned).
    pub fn tx_in_use(&self) -> usize {
        self.tx_ring.len()
    }

    pub fn tx_ring_full(&self) -> bool {
        self.tx_ring.len() >= self.cfg.tx_ring
    }

    /// Frames sent and not yet taken by the link.
    pub fn wire_pending(&self) -> usize {
        self.wire_out.len()
    }

    /// Takes the next thing the NIC has put on the wire, as the hardware
    /// left it: a frame whose FCS may still be pending, or a TSO burst
    /// ([`Skb::is_gso`]). [`Stack::nic_take_sent`] gives finished frames.
    pub fn take_sent(&mut self) -> Option<Skb> {
        self.wire_out.pop_front()
    }

    /// When the frame being sent finishes, if one is.
    pub(crate) fn next_tx_done(&self) -> Option<Instant> {
        self.tx_ring
            .iter()
            .find(|d| d.skb.is_some())
            .map(|d| d.done_at)
    }

    /// Received frames or tx completions are waiting for NAPI.
    pub(crate) fn has_pending_work(&self) -> bool {
        self.rx_ring.get(self.rx_clean).is_some_and(|d| d.done)
            || self.tx_ring.front().is_some_and(|d| d.skb.is_none())
    }

    /// Posts a buffer on every descriptor that lacks one (driver open and
    /// refill). Returns how many could not get one.
    fn refill(&mut self, pool: &crate::skb::SkbPool) -> u64 {
        let mut failed = 0;
        let size = self.cfg.rx_buf_size;
        for d in self
            .rx_ring
            .iter_mut()
            .filter(|d| d.buf.is_none() && !d.done)
        {
            match pool.alloc(size) {
                Ok(b) => d.buf = Some(b),
                Err(_) => failed += 1,
            }
        }
        failed
    }

    /// Wire time of a frame of `len` bytes (with FCS), counting the 8-byte
    /// preamble and 12-byte inter-frame gap.
    fn wire_time(&self, len: usize) -> Duration {
        match self.cfg.speed_bps {
            None => Duration::ZERO,
            Some(bps) => {
                let bits = (len as u128 + 20) * 8;
                let ns = (bits * 1_000_000_000).div_ceil(u128::from(bps));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Ethernet's minimum frame without FCS.
const MIN_FRAME: usize = ethernet::MIN_FRAME_LEN;

impl Stack {
    /// Posts rx buffers on a NIC's ring (`ndo_open`); called when it is set up.
    pub(crate) fn nic_open(&mut self, ifindex: IfIndex) {
        let pool = self.pool.clone();
        if let Ok(nic) = self
            .dev_mut(ifindex)
            .and_then(|d| d.nic_mut().ok_or(DevError::NoSuchDevice(ifindex)))
        {
            let failed = nic.refill(&pool);
            nic.hw.rx_alloc_failed += failed;
        }
    }

    /// A frame (with its FCS) arrives at the NIC `ifindex` from the wire at
    /// `now`. `touched`: the link altered it, so the FCS must be computed.
    /// Seed ingress steps 1–5.
    pub fn nic_receive(
        &mut self,
        now: Instant,
        ifindex: IfIndex,
        frame: Skb,
        touched: bool,
    ) -> Result<(), DevError> {
        self.set_now(now);
        self.nic_dma(ifindex, frame, touched)
    }

    /// A frame arriving as bytes (TAP, pcap replay): the NIC copies it into
    /// the posted buffer, and always checks the FCS.
    pub fn nic_receive_bytes(
        &mut self,
        now: Instant,
        ifindex: IfIndex,
        frame: &[u8],
    ) -> Result<(), DevError> {
        self.set_now(now);
        let skb = match self.pool.alloc_from(0, frame) {
            Ok(s) => s,
            Err(_) => {
                let dev = self.dev_mut(ifindex)?;
                dev.stats.rx_missed_errors += 1;
                return Ok(());
            }
        };
        self.nic_dma(ifindex, skb, true)
    }

    fn nic_dma(&mut self, ifindex: IfIndex, mut frame: Skb, touched: bool) -> Result<(), DevError> {
        if frame.is_gso() && !self.nic_takes_burst(ifindex, &frame, touched) {
            // The frames, one by one, as the wire would have brought them.
            let mut frames = Vec::new();
            if tso_frames(&frame, &self.pool, &mut frames).is_err() {
                self.kfree_skb(frame, DropReason::SkbGsoSeg);
                return Ok(());
            }
            drop(frame);
            for f in frames {
                self.nic_dma(ifindex, f, touched)?;
            }
            return Ok(());
        }
        let burst = frame.is_gso();
        let now = self.now;
        let dev = devm(&mut self.devs, ifindex)?;
        let accepts_dst = frame
            .data()
            .get(..6)
            .and_then(EthernetAddress::from_bytes)
            .map(|dst| dev.mac_filter_accepts(dst));
        let (up, mtu) = (dev.flags.up, dev.mtu as usize);
        let super::Device { kind, stats, .. } = dev;
        let DevKind::Nic(nic) = kind else {
            return Err(DevError::WrongKind {
                dev: ifindex,
                expected: "NIC",
            });
        };
        frame.meta.ingress_dev = Some(ifindex);
        self.tracer.skb(now, "nic_rx", &frame);
        // Step 1: a NIC that is down does not receive.
        if !up {
            nic.hw.rx_while_down += 1;
            return Ok(());
        }
        // Length: a runt, or longer than MTU + header + two tags + FCS.
        let len = frame.len();
        if !burst
            && (len < MIN_FRAME + ethernet::FCS_LEN
                || len > mtu + ethernet::HEADER_LEN + 8 + ethernet::FCS_LEN)
        {
            stats.rx_length_errors += 1;
            stats.rx_errors += 1;
            return Ok(());
        }
        // Step 3: FCS (computed only when it may be wrong, unless told to).
        // A pending FCS is the sender's hardware's, over these very bytes
        // (a link that alters a frame works it out first): good by
        // construction, but worked out if the check is to run in full.
        if nic.cfg.fcs_check == FcsCheck::Always {
            frame.resolve_offloads();
        }
        if touched || nic.cfg.fcs_check == FcsCheck::Always {
            nic.hw.rx_fcs_computed += 1;
            if fcs::check_fcs(frame.data()).is_err() {
                stats.rx_crc_errors += 1;
                stats.rx_errors += 1;
                self.tracer.event(now, "nic_rx_crc_error", Some(ifindex));
                return Ok(());
            }
        }
        // detail 1: computed and good; 0: passed as good, unaltered.
        self.tracer.skb_detail(
            now,
            "nic_rx_fcs_ok",
            &frame,
            u64::from(touched || nic.cfg.fcs_check == FcsCheck::Always),
        );
        frame.meta.fcs_pending = false;
        if !burst && frame.trim(len - ethernet::FCS_LEN).is_err() {
            stats.rx_length_errors += 1;
            stats.rx_errors += 1;
            return Ok(());
        }
        // Step 2: destination MAC filter.
        if accepts_dst != Some(true) {
            nic.hw.rx_filtered += 1;
            return Ok(());
        }
        self.tracer.skb(now, "nic_rx_mac_filter", &frame);
        // Step 4: DMA into the next descriptor, if the driver has one ready.
        let slot = nic.rx_hw;
        let Some(desc) = nic.rx_ring.get_mut(slot) else {
            return Ok(());
        };
        if desc.done || desc.buf.is_none() {
            stats.rx_missed_errors += 1;
            self.tracer.event(now, "nic_rx_missed", Some(ifindex));
            return Ok(());
        }
        // A transport checksum the sender's hardware had still to work out
        // is good by construction: a NIC that verifies checksums hands the
        // packet up as such (its bytes are worked out if something reads
        // them: `Skb::checksum_help`); one that does not gets the bytes.
        let hw_csum = frame.meta.ip_summed;
        if !nic.cfg.rx_csum_offload {
            frame.checksum_help();
        }
        let gso_size = frame.meta.gso_size;
        frame.meta = Default::default();
        frame.meta.ingress_dev = Some(ifindex);
        frame.meta.gso_size = gso_size;
        if nic.cfg.rx_csum_offload && matches!(hw_csum, ChecksumState::Partial { .. }) {
            frame.meta.ip_summed = hw_csum;
        }
        self.tracer
            .skb_detail(now, "nic_rx_dma", &frame, slot as u64);
        desc.buf = Some(frame); // page flip: the posted buffer goes back to the pool
        desc.done = true;
        nic.rx_hw = (slot + 1) % nic.rx_ring.len();
        // Step 5: raise the interrupt (unless masked: NAPI will find it).
        if !nic.irq_masked {
            self.nic_interrupt(ifindex);
        }
        Ok(())
    }

    /// The NIC's NAPI poll (the driver's `poll` method): tx completions,
    /// then up to `budget` received frames. Returns the rx work done.
    pub(crate) fn nic_poll(&mut self, ifindex: IfIndex, budget: usize) -> usize {
        self.nic_clean_tx(ifindex);
        let gro = self
            .dev(ifindex)
            .ok()
            .and_then(|d| d.nic())
            .is_some_and(|n| n.cfg.gro);
        let mut work = 0;
        while work < budget {
            let Some(skb) = self.nic_clean_rx_one(ifindex) else {
                break;
            };
            if skb.is_gso() {
                // A TSO burst taken whole: what GRO makes of its frames.
                let (frames, _) = tso_frame_counts(&skb);
                work += frames;
                // After what GRO holds of its flow, as its frames would be.
                self.napi_gro_flush_for(ifindex, &skb);
                self.tracer
                    .skb_detail(self.now, "napi_gro_complete", &skb, frames as u64);
                self.netif_receive_skb(skb);
                continue;
            }
            work += 1;
            if gro {
                // What else this poll will bring: how big a packet GRO may
                // build (its buffer is sized for it).
                let more = self
                    .dev(ifindex)
                    .ok()
                    .and_then(|d| d.nic())
                    .map_or(0, |n| n.rx_ready())
                    .min(budget - work);
                self.napi_gro_receive(ifindex, skb, more);
            } else {
                self.netif_receive_skb(skb);
            }
        }
        // napi_complete_done(): what GRO holds goes up with the poll.
        self.napi_gro_flush();
        work
    }

    /// Takes one received frame off the ring, refills the descriptor and
    /// builds the skb (seed step 7).
    fn nic_clean_rx_one(&mut self, ifindex: IfIndex) -> Option<Skb> {
        let now = self.now;
        let pool = &self.pool;
        let dev = devm(&mut self.devs, ifindex).ok()?;
        let (mac, flags_offload) = (dev.mac, dev.flags.vlan_rx_offload);
        let super::Device { kind, stats, .. } = dev;
        let DevKind::Nic(nic) = kind else { return None };
        let slot = nic.rx_clean;
        let desc = nic.rx_ring.get_mut(slot)?;
        if !desc.done {
            return None;
        }
        let mut skb = desc.buf.take()?;
        desc.done = false;
        match pool.alloc(nic.cfg.rx_buf_size) {
            Ok(b) => desc.buf = Some(b),
            Err(_) => nic.hw.rx_alloc_failed += 1,
        }
        nic.rx_clean = (slot + 1) % nic.rx_ring.len();
        // A burst taken whole counts as the frames it stands for.
        let (frames, frame_bytes) = if skb.is_gso() {
            tso_frame_counts(&skb)
        } else {
            (1, skb.len())
        };
        stats.rx_packets += frames as u64;
        stats.rx_bytes += frame_bytes as u64;
        skb.meta.ingress_dev = Some(ifindex);
        skb.meta.set_tstamp(Some(now));
        // Hardware VLAN stripping (NETIF_F_HW_VLAN_CTAG_RX).
        if flags_offload && nic.cfg.vlan_rx_offload {
            vlan_hw_strip(&mut skb);
        }
        if eth_type_trans(&mut skb, mac).is_err() {
            stats.rx_length_errors += 1;
            stats.rx_errors += 1;
            return None;
        }
        if skb.meta.pkt_type == PacketType::Multicast {
            stats.multicast += 1;
        }
        Some(skb)
    }

    /// Tx completion: frees the descriptors of frames that have left, counts
    /// them, and wakes the queue if it was stopped.
    fn nic_clean_tx(&mut self, ifindex: IfIndex) {
        let now = self.now;
        let Ok(dev) = devm(&mut self.devs, ifindex) else {
            return;
        };
        let super::Device {
            kind,
            stats,
            queue_stopped,
            ..
        } = dev;
        let DevKind::Nic(nic) = kind else { return };
        let mut cleaned = 0;
        while nic.tx_ring.front().is_some_and(|d| d.skb.is_none()) {
            if let Some(d) = nic.tx_ring.pop_front() {
                stats.tx_packets += u64::from(d.frames);
                stats.tx_bytes += d.len as u64;
                cleaned += 1;
            }
        }
        // Wake once a quarter of the ring is free (drivers' wake threshold).
        let threshold = (nic.cfg.tx_ring / 4).max(1);
        let free = nic.cfg.tx_ring - nic.tx_ring.len().min(nic.cfg.tx_ring);
        let wake = *queue_stopped && free >= threshold;
        if cleaned > 0 {
            self.tracer
                .event_detail(now, "napi_consume_skb", Some(ifindex), cleaned);
        }
        if wake {
            self.netif_wake_queue(ifindex);
        }
    }

    /// `ndo_start_xmit` of the NIC driver: the frame (from its MAC header) goes
    /// on the tx ring. Returns it if the ring is full (NETDEV_TX_BUSY).
    // The busy packet comes back by value: boxing it would allocate per packet.
    #[allow(clippy::result_large_err)]
    pub(crate) fn nic_start_xmit(&mut self, ifindex: IfIndex, mut skb: Skb) -> Result<(), Skb> {
        if skb.is_gso() {
            return self.nic_start_xmit_tso(ifindex, skb);
        }
        let now = self.now;
        let Ok(dev) = devm(&mut self.devs, ifindex) else {
            self.kfree_skb(skb, DropReason::DevReady);
            return Ok(());
        };
        let super::Device { kind, stats, .. } = dev;
        let DevKind::Nic(nic) = kind else {
            return Err(skb);
        };
        if nic.tx_ring.len() >= nic.cfg.tx_ring {
            return Err(skb);
        }
        // A tag held in the skb goes into the frame: by the NIC when it
        // offloads that, else in software first (validate_xmit_vlan); the
        // bytes on the wire are the same.
        if let Some(tag) = skb.meta.vlan.take() {
            if vlan_insert_tag(&mut skb, tag).is_err() {
                stats.tx_errors += 1;
                stats.tx_dropped += 1;
                self.kfree_skb(skb, DropReason::Nomem);
                return Ok(());
            }
        }
        // Pad to the Ethernet minimum, then append the FCS.
        let len = skb.len();
        let pad = MIN_FRAME.saturating_sub(len);
        if skb.tailroom() < pad + ethernet::FCS_LEN {
            nic.hw.tx_expanded += 1;
        }
        let appended = skb.ensure_tailroom(pad + ethernet::FCS_LEN).and_then(|()| {
            skb.put(pad)?.fill(0);
            let l = skb.len();
            skb.put(ethernet::FCS_LEN)?;
            Ok(l)
        });
        let Ok(body_len) = appended else {
            stats.tx_errors += 1;
            stats.tx_dropped += 1;
            self.kfree_skb(skb, DropReason::Nomem);
            return Ok(());
        };
        // The FCS is the hardware's: worked out when something reads the
        // frame's bytes (`Skb::resolve_offloads`), not on every transmission.
        skb.meta.fcs_pending = true;
        let wire_len = skb.len();
        let start = nic.tx_busy_until.max(now);
        let done_at = start + nic.wire_time(wire_len);
        nic.tx_busy_until = done_at;
        self.tracer.skb(now, "nic_tx", &skb);
        nic.tx_ring.push_back(TxDesc {
            skb: Some(skb),
            len: body_len,
            frames: 1,
            done_at,
        });
        Ok(())
    }

    /// Whether NIC `ifindex` takes a TSO burst from the wire whole: its GRO
    /// would merge all of the burst's frames into one packet, which is
    /// built from the burst directly (`napi_gro_complete`) instead of frame
    /// by frame. That holds when the frames would all arrive in one poll
    /// (ring room for each, an unaltered burst, no FCS to check in full)
    /// and GRO's rules take each one: IPv4 without options, TCP with only
    /// ACK (and PSH or FIN on the last, which GRO merges and flushes on),
    /// a MAC the filter accepts.
    fn nic_takes_burst(&self, ifindex: IfIndex, burst: &Skb, touched: bool) -> bool {
        let Ok(dev) = self.dev(ifindex) else {
            return false;
        };
        let Some(nic) = dev.nic() else { return false };
        let d = burst.data();
        let h = ethernet::HEADER_LEN;
        let (n, _) = tso_frame_counts(burst);
        let ready = nic.rx_ready();
        let clean = d.len() > h + 40
            && d[12..14] == [0x08, 0x00]
            && d[h] == 0x45
            && d[h + 9] == 6
            && d[h + 6] & 0x20 == 0
            && d[h + 20 + 13] & !0x09 == 0x10;
        let dst_ok =
            EthernetAddress::from_bytes(&d[..6]).is_some_and(|m| dev.mac_filter_accepts(m));
        nic.cfg.gro
            && !touched
            && nic.cfg.fcs_check != FcsCheck::Always
            && dev.flags.up
            && nic.rx_ring.len().saturating_sub(ready) >= n
            && n <= usize::from(u16::MAX)
            && clean
            && dst_ok
    }

    /// Whether NIC `ifindex` takes GSO skbs whole (TSO): it has TSO and
    /// checksum offload, and no line rate to space the frames by.
    pub(crate) fn nic_can_tso(&self, ifindex: IfIndex) -> bool {
        self.dev(ifindex)
            .ok()
            .and_then(|d| d.nic())
            .is_some_and(|n| n.cfg.tso && n.cfg.tx_csum_offload && n.cfg.speed_bps.is_none())
    }

    /// `ndo_start_xmit` of a GSO skb on a TSO NIC: one descriptor, a TSO
    /// burst on the wire (the frames' FCS and checksums pending).
    #[allow(clippy::result_large_err)]
    fn nic_start_xmit_tso(&mut self, ifindex: IfIndex, mut skb: Skb) -> Result<(), Skb> {
        let now = self.now;
        let Ok(dev) = devm(&mut self.devs, ifindex) else {
            self.kfree_skb(skb, DropReason::DevReady);
            return Ok(());
        };
        let DevKind::Nic(nic) = &mut dev.kind else {
            return Err(skb);
        };
        if nic.tx_ring.len() >= nic.cfg.tx_ring {
            return Err(skb);
        }
        let (frames, bytes) = tso_frame_counts(&skb);
        skb.meta.fcs_pending = true;
        self.tracer
            .skb_detail(now, "nic_tx_tso", &skb, frames as u64);
        nic.tx_ring.push_back(TxDesc {
            skb: Some(skb),
            len: bytes,
            frames: frames as u16,
            done_at: now,
        });
        Ok(())
    }

    /// Hardware progress on every NIC at `now`: frames whose last bit has
    /// left go to the wire; their descriptors complete and raise the
    /// interrupt. Returns whether anything happened.
    pub(crate) fn nic_hw_progress(&mut self) -> bool {
        let now = self.now;
        let mut irqs = std::mem::take(&mut self.scratch_devs);
        irqs.clear();
        for dev in self.devs.iter_mut().flatten() {
            let ifindex = dev.ifindex;
            let Some(nic) = dev.nic_mut() else { continue };
            let mut completed = false;
            for d in nic.tx_ring.iter_mut() {
                if d.skb.is_some() && d.done_at <= now {
                    if let Some(s) = d.skb.take() {
                        nic.wire_out.push_back(s);
                    }
                    completed = true;
                } else if d.skb.is_some() {
                    break;
                }
            }
            if completed && !nic.irq_masked {
                irqs.push(ifindex);
            }
        }
        let any = !irqs.is_empty();
        for &i in &irqs {
            self.nic_interrupt(i);
        }
        self.scratch_devs = irqs;
        any
    }

    /// Takes the frames NIC `ifindex` has put on the wire, oldest first.
    pub fn nic_take_sent(&mut self, ifindex: IfIndex, out: &mut Vec<Skb>) {
        let from = out.len();
        self.nic_take_sent_lazy(ifindex, out);
        if out[from..].iter().any(Skb::is_gso) {
            let bursts: Vec<Skb> = out.drain(from..).collect();
            for b in bursts {
                if b.is_gso() {
                    let _ = tso_frames(&b, &self.pool, out);
                } else {
                    out.push(b);
                }
            }
        }
        for skb in &mut out[from..] {
            skb.resolve_offloads();
        }
    }

    /// Like [`Stack::nic_take_sent`], but each frame's FCS may still be
    /// pending ([`crate::skb::SkbMeta::fcs_pending`]) and a TSO NIC's
    /// bursts come whole ([`Skb::is_gso`]; [`tso_frames`] cuts them): for a
    /// simulated wire that works these out only if something reads them.
    pub fn nic_take_sent_lazy(&mut self, ifindex: IfIndex, out: &mut Vec<Skb>) {
        if let Ok(nic) = self
            .dev_mut(ifindex)
            .and_then(|d| d.nic_mut().ok_or(DevError::NoSuchDevice(ifindex)))
        {
            out.extend(nic.wire_out.drain(..));
        }
    }
}

/// What a TSO burst (an Ethernet frame holding a GSO packet) is on the
/// wire: its number of frames and their bytes as the NIC counts them
/// (headers repeated, padding included, FCS not).
pub(crate) fn tso_frame_counts(burst: &Skb) -> (usize, usize) {
    let d = burst.data();
    let mss = usize::from(burst.meta.gso_size).max(1);
    let ihl = d
        .get(ethernet::HEADER_LEN)
        .map_or(20, |b| usize::from(b & 0x0f) * 4);
    let thl = d
        .get(ethernet::HEADER_LEN + ihl + 12)
        .map_or(20, |b| usize::from(b >> 4) * 4);
    let hdr = ethernet::HEADER_LEN + ihl + thl;
    let payload = d.len().saturating_sub(hdr);
    let n = payload.div_ceil(mss).max(1);
    let last = payload - (n - 1) * mss;
    let bytes = (n - 1) * (hdr + mss) + (hdr + last).max(MIN_FRAME);
    (n, bytes)
}

/// The TSO hardware's work, done when the frames of a burst are needed
/// (a capture, an impaired link, a receiver that takes frames one by one):
/// `skb_gso_segment`, then each frame padded and its FCS left pending, as
/// the NIC would have sent it. Appends the frames to `out`.
pub fn tso_frames(
    burst: &Skb,
    pool: &crate::skb::SkbPool,
    out: &mut Vec<Skb>,
) -> Result<(), crate::skb::GsoError> {
    let mut b = burst.clone();
    // Ethernet, then IPv4 (no VLAN tag: a tagged GSO skb is segmented
    // in software before the driver).
    let ihl = b
        .data()
        .get(ethernet::HEADER_LEN)
        .map_or(20, |v| usize::from(v & 0x0f) * 4);
    b.reset_mac_header();
    b.set_network_header(ethernet::HEADER_LEN)?;
    b.set_transport_header(ethernet::HEADER_LEN + ihl)?;
    let from = out.len();
    crate::skb::skb_gso_segment(&b, pool, out)?;
    for f in &mut out[from..] {
        let len = f.len();
        let pad = MIN_FRAME.saturating_sub(len);
        f.ensure_tailroom(pad + ethernet::FCS_LEN)?;
        f.put(pad)?.fill(0);
        f.put(ethernet::FCS_LEN)?;
        f.meta.fcs_pending = true;
    }
    Ok(())
}

/// `eth_type_trans()`: sets `pkt_type` from the destination MAC, the
/// protocol from the ethertype (802.3 length frames get ETH_P_802_3), the
/// MAC header, and pulls the Ethernet header.
pub(crate) fn eth_type_trans(
    skb: &mut Skb,
    dev_mac: EthernetAddress,
) -> Result<(), crate::skb::SkbError> {
    skb.reset_mac_header();
    let data = skb.data();
    let (dst, ty) = match (
        data.get(..6).and_then(EthernetAddress::from_bytes),
        data.get(12..14),
    ) {
        (Some(d), Some(t)) => (d, u16::from_be_bytes([t[0], t[1]])),
        _ => {
            return Err(crate::skb::SkbError::PullPastTail {
                want: 14,
                len: data.len(),
            })
        }
    };
    skb.meta.pkt_type = if dst.is_broadcast() {
        PacketType::Broadcast
    } else if dst.is_multicast() {
        PacketType::Multicast
    } else if dst != dev_mac {
        PacketType::OtherHost
    } else {
        PacketType::Host
    };
    skb.meta.protocol = if EtherType(ty).is_length() {
        ETH_P_802_3
    } else {
        ty
    };
    skb.pull(ethernet::HEADER_LEN)?;
    skb.reset_network_header();
    Ok(())
}

/// ETH_P_802_3: protocol of frames whose type field is a length.
pub const ETH_P_802_3: u16 = 0x0001;

/// Moves an 802.1Q/802.1ad tag from the frame (MAC header at data) into the
/// skb, as a NIC with VLAN stripping does.
fn vlan_hw_strip(skb: &mut Skb) {
    let d = skb.data();
    let Some(tpid) = d.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]])) else {
        return;
    };
    if tpid != EtherType::VLAN.0 {
        return;
    }
    let Some(tci) = d.get(14..16).map(|t| u16::from_be_bytes([t[0], t[1]])) else {
        return;
    };
    if d.len() < 18 {
        return;
    }
    let bytes = skb.data_mut();
    bytes.copy_within(0..12, 4);
    if skb.pull(4).is_ok() {
        skb.meta.vlan = Some(VlanInfo { proto: tpid, tci });
    }
}

/// Inserts `tag` after the MAC addresses of the frame at data
/// (`__vlan_insert_tag`), growing the headroom if needed.
pub(crate) fn vlan_insert_tag(skb: &mut Skb, tag: VlanInfo) -> Result<(), crate::skb::SkbError> {
    skb.cow_head(4)?;
    skb.push(4)?;
    let d = skb.data_mut();
    if d.len() < 16 {
        return Err(crate::skb::SkbError::PullPastTail {
            want: 16,
            len: d.len(),
        });
    }
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&tag.proto.to_be_bytes());
    d[14..16].copy_from_slice(&tag.tci.to_be_bytes());
    skb.reset_mac_header();
    Ok(())
}
