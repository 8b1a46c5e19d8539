//! Packet capture: the packet taps of `netif_receive_skb` and
//! `dev_queue_xmit` (Linux's `ptype_all`), as tcpdump uses them.
//!
//! [`PcapWriter`] writes classic pcap with nanosecond timestamps (magic
//! `0xa1b23c4d`, link type Ethernet), readable by tcpdump, tshark and
//! `netpath_wire::pcap::PcapReader`. [`Capture`] wraps any writer so that one
//! type can hang on a simulated link end ([`crate::sim::Sim::capture`]) or on
//! a device's tap: it writes straight from `skb.data()` (the skb is never
//! copied) and, like a tap, never fails the datapath: write errors are counted
//! in [`CaptureStats`] instead.

use std::any::Any;
use std::io::{self, Write};

use crate::time::Instant;

/// Magic number of a nanosecond-resolution pcap file.
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_ETHERNET` with the FCS-present flag (0x0400_0000) and an FCS of
/// two 16-bit words in bits 28–31: frames end in their 4-byte FCS.
pub const LINKTYPE_ETHERNET_WITH_FCS: u32 = LINKTYPE_ETHERNET | 0x0400_0000 | (2 << 28);
/// The snapshot length tcpdump uses by default.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Writes a classic pcap file (little-endian, nanosecond timestamps).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header, with the default snapshot length.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_snaplen(out, DEFAULT_SNAPLEN)
    }

    /// Writes the global header; packets longer than `snaplen` are cut to it
    /// (their original length is still recorded). `snaplen` must not be 0.
    pub fn with_snaplen(out: W, snaplen: u32) -> io::Result<Self> {
        Self::with_link_type(out, snaplen, LINKTYPE_ETHERNET)
    }

    /// For frames as they are on the wire, with their 4-byte FCS: the link
    /// type field says so (libpcap's "FCS length present" bit, FCS length 2
    /// 16-bit words), so tshark and tcpdump show the FCS rather than guessing.
    pub fn with_fcs(out: W, snaplen: u32) -> io::Result<Self> {
        Self::with_link_type(out, snaplen, LINKTYPE_ETHERNET_WITH_FCS)
    }

    fn with_link_type(mut out: W, snaplen: u32, link_type: u32) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pcap snaplen must be at least 1",
            ));
        }
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_NANOS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Appends one packet seen at `ts` (nanoseconds since the Unix epoch as
    /// far as readers are concerned). Fails with `InvalidInput`, writing
    /// nothing, if `ts` is past what a 32-bit seconds field holds (2106) or
    /// the frame is longer than 4 GiB.
    pub fn write_packet(&mut self, ts: Instant, frame: &[u8]) -> io::Result<()> {
        let ns = ts.as_nanos();
        let sec = u32::try_from(ns / NANOS_PER_SEC).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "timestamp beyond pcap's range")
        })?;
        let orig_len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long for pcap"))?;
        let incl_len = orig_len.min(self.snaplen);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&((ns % NANOS_PER_SEC) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&incl_len.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..incl_len as usize])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer (not flushed: call [`PcapWriter::flush`] first if
    /// it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// What a [`Capture`] has recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaptureStats {
    /// Packets written.
    pub packets: u64,
    /// Bytes of frames written (before snaplen truncation).
    pub bytes: u64,
    /// Packets that could not be written (the writer failed).
    pub errors: u64,
}

/// The object-safe face of a `PcapWriter<W>` for any `W`.
trait Sink: Send {
    fn write_packet(&mut self, ts: Instant, frame: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<W: Write + Send + 'static> Sink for PcapWriter<W> {
    fn write_packet(&mut self, ts: Instant, frame: &[u8]) -> io::Result<()> {
        PcapWriter::write_packet(self, ts, frame)
    }
    fn flush(&mut self) -> io::Result<()> {
        PcapWriter::flush(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A packet tap writing to a pcap file, whatever the writer's type.
pub struct Capture {
    sink: Box<dyn Sink>,
    stats: CaptureStats,
    last_error: Option<io::ErrorKind>,
}

impl core::fmt::Debug for Capture {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Capture")
            .field("stats", &self.stats)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl Capture {
    /// A tap writing into `writer`.
    pub fn new<W: Write + Send + 'static>(writer: PcapWriter<W>) -> Self {
        Capture {
            sink: Box::new(writer),
            stats: CaptureStats::default(),
            last_error: None,
        }
    }

    /// A tap writing a new pcap file (default snaplen) into `out`.
    pub fn pcap<W: Write + Send + 'static>(out: W) -> io::Result<Self> {
        Ok(Capture::new(PcapWriter::new(out)?))
    }

    /// Records one frame; a failed write is counted, never returned.
    pub fn record(&mut self, ts: Instant, frame: &[u8]) {
        match self.sink.write_packet(ts, frame) {
            Ok(()) => {
                self.stats.packets += 1;
                self.stats.bytes += frame.len() as u64;
            }
            Err(e) => {
                self.stats.errors += 1;
                self.last_error = Some(e.kind());
            }
        }
    }

    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// The kind of the most recent write error, if any.
    pub fn last_error(&self) -> Option<io::ErrorKind> {
        self.last_error
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }

    /// The writer, if it is a `PcapWriter<W>` (e.g. to read a `Vec<u8>`).
    pub fn writer<W: Write + Send + 'static>(&self) -> Option<&PcapWriter<W>> {
        self.sink.as_any().downcast_ref()
    }

    /// The writer back, if it is a `PcapWriter<W>`; `None` (and the capture
    /// is gone) if `W` is not its type.
    pub fn into_writer<W: Write + Send + 'static>(self) -> Option<PcapWriter<W>> {
        self.sink.into_any().downcast().ok().map(|w| *w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::with_snaplen(Vec::new(), 4).unwrap();
        w.write_packet(Instant::from_nanos(3_000_000_007), &[1, 2, 3, 4, 5, 6])
            .unwrap();
        w.write_packet(Instant::from_nanos(5), &[9]).unwrap();
        let b = w.into_inner();
        assert_eq!(le32(&b, 0), 0xa1b2_3c4d);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(le32(&b, 16), 4);
        assert_eq!(le32(&b, 20), 1);
        // First record: 3 s + 7 ns, cut to 4 of 6 bytes.
        assert_eq!(
            [le32(&b, 24), le32(&b, 28), le32(&b, 32), le32(&b, 36)],
            [3, 7, 4, 6]
        );
        assert_eq!(&b[40..44], &[1, 2, 3, 4]);
        assert_eq!(
            [le32(&b, 44), le32(&b, 48), le32(&b, 52), le32(&b, 56)],
            [0, 5, 1, 1]
        );
        assert_eq!(b[60], 9);
        assert_eq!(b.len(), 61);
    }

    #[test]
    fn fcs_link_type_is_flagged_and_read_back() {
        let w = PcapWriter::with_fcs(Vec::new(), 128).unwrap();
        let b = w.into_inner();
        assert_eq!(le32(&b, 20), 0x2400_0001);
        let r = netpath_wire::pcap::PcapReader::new(&b).unwrap();
        assert_eq!(r.link_type() & 0xffff, LINKTYPE_ETHERNET);
        assert_eq!(r.snaplen(), 128);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(
            PcapWriter::with_snaplen(Vec::new(), 0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let late = Instant::from_secs(u64::from(u32::MAX) + 1);
        assert!(w.write_packet(late, &[1]).is_err());
        assert_eq!(w.into_inner().len(), 24, "nothing written for a bad record");
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn capture_counts_and_gives_the_writer_back() {
        let mut c = Capture::pcap(Vec::new()).unwrap();
        c.record(Instant::from_nanos(1), &[0xaa; 60]);
        c.record(Instant::from_nanos(2), &[0xbb; 70]);
        let s = c.stats();
        assert_eq!((s.packets, s.bytes, s.errors), (2, 130, 0));
        assert_eq!(
            c.writer::<Vec<u8>>().map(|w| w.get_ref().len()),
            Some(24 + 16 * 2 + 130)
        );
        assert!(c.writer::<std::fs::File>().is_none());
        let bytes = c.into_writer::<Vec<u8>>().unwrap().into_inner();
        assert_eq!(bytes.len(), 24 + 32 + 130);

        let mut bad = Capture::new(PcapWriter {
            out: Failing,
            snaplen: DEFAULT_SNAPLEN,
        });
        bad.record(Instant::ZERO, &[1, 2, 3]);
        assert_eq!(bad.stats().errors, 1);
        assert_eq!(bad.stats().packets, 0);
        assert_eq!(bad.last_error(), Some(io::ErrorKind::BrokenPipe));
    }
}
