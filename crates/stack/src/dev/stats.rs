//! Per-device counters under the names of Linux's `struct rtnl_link_stats64`,
//! as `ip -s -s link` prints them, plus the softnet counters of
//! `/proc/net/softnet_stat`.

/// `struct rtnl_link_stats64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bad frames of any kind (sum of the rx_*_errors below).
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Dropped by the stack for lack of resources or by policy.
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub multicast: u64,
    pub collisions: u64,
    /// Runts and frames longer than the device accepts.
    pub rx_length_errors: u64,
    /// Receiver ring buffer overflow.
    pub rx_over_errors: u64,
    /// Frames with a bad FCS.
    pub rx_crc_errors: u64,
    pub rx_frame_errors: u64,
    pub rx_fifo_errors: u64,
    /// Frames the NIC had no free rx descriptor for.
    pub rx_missed_errors: u64,
    pub tx_aborted_errors: u64,
    pub tx_carrier_errors: u64,
    pub tx_fifo_errors: u64,
    pub tx_heartbeat_errors: u64,
    pub tx_window_errors: u64,
    /// Frames dropped because no protocol handler wanted them.
    pub rx_nohandler: u64,
}

impl DevStats {
    /// The block `ip -s -s link show` prints under a device.
    pub fn render(&self) -> String {
        format!(
            "    RX:  bytes packets errors dropped  missed   mcast\n    {:>10} {:>7} {:>6} {:>7} {:>7} {:>7}\n    RX errors:  length    crc   frame    fifo overrun\n    {:>15} {:>6} {:>7} {:>7} {:>7}\n    TX:  bytes packets errors dropped carrier collsns\n    {:>10} {:>7} {:>6} {:>7} {:>7} {:>7}\n    RX nohandler: {}",
            self.rx_bytes,
            self.rx_packets,
            self.rx_errors,
            self.rx_dropped,
            self.rx_missed_errors,
            self.multicast,
            self.rx_length_errors,
            self.rx_crc_errors,
            self.rx_frame_errors,
            self.rx_fifo_errors,
            self.rx_over_errors,
            self.tx_bytes,
            self.tx_packets,
            self.tx_errors,
            self.tx_dropped,
            self.tx_carrier_errors,
            self.collisions,
            self.rx_nohandler,
        )
    }
}

/// One row of `/proc/net/softnet_stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftnetStats {
    /// Packets taken off rings and the backlog by NAPI polls.
    pub processed: u64,
    /// Packets dropped because the backlog (`netdev_max_backlog`) was full.
    pub dropped: u64,
    /// Times `net_rx_action` ran out of budget with work left.
    pub time_squeeze: u64,
    /// NAPI poll calls made (netpath's own, for visibility).
    pub polls: u64,
}
