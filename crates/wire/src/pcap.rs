//! A zero-copy reader for classic pcap files (the libpcap format tcpdump
//! writes with `-w`).
//!
//! Seed stage served: none of the kernel path itself; this is the test and
//! replay harness that feeds real Linux captures into ingress step 1 (frames
//! arriving at the driver) and lets the tests compare our egress output with
//! what Linux put on the wire.
//!
//! Layout (all fields in the byte order the magic number reveals):
//!
//! ```text
//! global header (24 bytes): magic u32 | version_major u16 | version_minor u16
//!                           | thiszone i32 | sigfigs u32 | snaplen u32
//!                           | link type u32
//! record header (16 bytes): ts_sec u32 | ts_frac u32 | incl_len u32
//!                           | orig_len u32, then incl_len bytes of frame
//! ```
//!
//! `ts_frac` is microseconds for magic `0xa1b2c3d4` and nanoseconds for
//! `0xa1b23c4d`.

use crate::error::{check_len, Layer, Result, WireError};

/// Link type of Ethernet (`DLT_EN10MB`).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Magic number of a file with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic number of a file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Length of the global (file) header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Byte ranges of the global header's fields.
pub mod global {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION_MAJOR: Range<usize> = 4..6;
    pub const VERSION_MINOR: Range<usize> = 6..8;
    pub const THISZONE: Range<usize> = 8..12;
    pub const SIGFIGS: Range<usize> = 12..16;
    pub const SNAPLEN: Range<usize> = 16..20;
    pub const LINKTYPE: Range<usize> = 20..24;
}

/// Length of each record (packet) header.
pub const RECORD_HEADER_LEN: usize = 16;
/// Byte ranges of a record header's fields.
pub mod record {
    use core::ops::Range;
    pub const TS_SEC: Range<usize> = 0..4;
    pub const TS_FRAC: Range<usize> = 4..8;
    pub const INCL_LEN: Range<usize> = 8..12;
    pub const ORIG_LEN: Range<usize> = 12..16;
}

/// The only major version of the classic format.
pub const VERSION_MAJOR: u16 = 2;

/// One captured packet: its timestamp, its length on the wire and the bytes
/// that were kept (at most the snapshot length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapRecord<'a> {
    pub ts_sec: u32,
    /// Microseconds or nanoseconds, see [`PcapReader::is_nanosecond`].
    pub ts_frac: u32,
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// Iterates over the records of a pcap file held in memory.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    big_endian: bool,
    nanos: bool,
    version_minor: u16,
    snaplen: u32,
    link_type: u32,
    /// The bytes after the last record read; `None` once a truncated record
    /// has been reported (the iterator is then finished).
    rest: Option<&'a [u8]>,
}

fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn read_u16(bytes: &[u8], big_endian: bool) -> u16 {
    let a = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

impl<'a> PcapReader<'a> {
    /// Reads the global header: `Truncated` if it is short, `Invalid` for an
    /// unknown magic number, `Unsupported` for a major version other than 2.
    pub fn new(data: &'a [u8]) -> Result<PcapReader<'a>> {
        check_len(Layer::Pcap, data.len(), GLOBAL_HEADER_LEN)?;
        let (header, rest) = data.split_at(GLOBAL_HEADER_LEN);
        let magic_be = read_u32(&header[global::MAGIC], true);
        let magic_le = read_u32(&header[global::MAGIC], false);
        let (big_endian, nanos) = match (magic_be, magic_le) {
            (MAGIC_MICROS, _) => (true, false),
            (MAGIC_NANOS, _) => (true, true),
            (_, MAGIC_MICROS) => (false, false),
            (_, MAGIC_NANOS) => (false, true),
            _ => return Err(WireError::invalid(Layer::Pcap, "magic")),
        };
        if read_u16(&header[global::VERSION_MAJOR], big_endian) != VERSION_MAJOR {
            return Err(WireError::unsupported(Layer::Pcap, "version"));
        }
        Ok(PcapReader {
            big_endian,
            nanos,
            version_minor: read_u16(&header[global::VERSION_MINOR], big_endian),
            snaplen: read_u32(&header[global::SNAPLEN], big_endian),
            link_type: read_u32(&header[global::LINKTYPE], big_endian),
            rest: Some(rest),
        })
    }

    /// The link-type field as stored (for Ethernet, [`LINKTYPE_ETHERNET`]).
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// The snapshot length: the most bytes kept of any packet.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// True when `ts_frac` counts nanoseconds rather than microseconds.
    pub fn is_nanosecond(&self) -> bool {
        self.nanos
    }

    /// True when the file was written big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The minor version (4 for every modern writer).
    pub fn version_minor(&self) -> u16 {
        self.version_minor
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<PcapRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.take()?;
        if rest.is_empty() {
            self.rest = Some(rest);
            return None;
        }
        if rest.len() < RECORD_HEADER_LEN {
            return Some(Err(WireError::truncated(
                Layer::Pcap,
                RECORD_HEADER_LEN,
                rest.len(),
            )));
        }
        let (header, body) = rest.split_at(RECORD_HEADER_LEN);
        let be = self.big_endian;
        let incl_len = read_u32(&header[record::INCL_LEN], be);
        // A length that does not fit in usize cannot fit in the buffer either.
        let incl = usize::try_from(incl_len).unwrap_or(usize::MAX);
        if body.len() < incl {
            return Some(Err(WireError::truncated(
                Layer::Pcap,
                RECORD_HEADER_LEN.saturating_add(incl),
                rest.len(),
            )));
        }
        let (data, after) = body.split_at(incl);
        self.rest = Some(after);
        Some(Ok(PcapRecord {
            ts_sec: read_u32(&header[record::TS_SEC], be),
            ts_frac: read_u32(&header[record::TS_FRAC], be),
            orig_len: read_u32(&header[record::ORIG_LEN], be),
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Builds a file in memory with the given byte order and magic.
    fn file(big_endian: bool, magic: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&u32b(magic));
        f.extend_from_slice(&u16b(2));
        f.extend_from_slice(&u16b(4));
        f.extend_from_slice(&u32b(0));
        f.extend_from_slice(&u32b(0));
        f.extend_from_slice(&u32b(262_144));
        f.extend_from_slice(&u32b(LINKTYPE_ETHERNET));
        for &(sec, frac, data, orig) in records {
            f.extend_from_slice(&u32b(sec));
            f.extend_from_slice(&u32b(frac));
            f.extend_from_slice(&u32b(data.len() as u32));
            f.extend_from_slice(&u32b(orig));
            f.extend_from_slice(data);
        }
        f
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for (magic, nanos) in [(MAGIC_MICROS, false), (MAGIC_NANOS, true)] {
                let f = file(
                    big_endian,
                    magic,
                    &[(10, 999_999, b"abc", 60), (11, 5, b"", 0)],
                );
                let r = PcapReader::new(&f).unwrap();
                assert_eq!(r.link_type(), 1);
                assert_eq!(r.snaplen(), 262_144);
                assert_eq!(r.is_nanosecond(), nanos);
                assert_eq!(r.is_big_endian(), big_endian);
                assert_eq!(r.version_minor(), 4);
                let recs: Vec<_> = r.map(|x| x.unwrap()).collect();
                assert_eq!(
                    recs,
                    vec![
                        PcapRecord {
                            ts_sec: 10,
                            ts_frac: 999_999,
                            orig_len: 60,
                            data: b"abc"
                        },
                        PcapRecord {
                            ts_sec: 11,
                            ts_frac: 5,
                            orig_len: 0,
                            data: b""
                        },
                    ]
                );
            }
        }
    }

    #[test]
    fn little_endian_header_bytes() {
        let f = file(false, MAGIC_MICROS, &[]);
        assert_eq!(&f[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(f.len(), GLOBAL_HEADER_LEN);
        assert_eq!(PcapReader::new(&f).unwrap().count(), 0);
    }

    #[test]
    fn bad_global_header() {
        let f = file(false, MAGIC_MICROS, &[]);
        assert_eq!(
            PcapReader::new(&f[..23]).unwrap_err(),
            WireError::truncated(Layer::Pcap, 24, 23)
        );
        let mut g = f.clone();
        g[0] = 0;
        assert_eq!(
            PcapReader::new(&g).unwrap_err().kind,
            ErrorKind::Invalid { field: "magic" }
        );
        let mut h = f;
        h[4] = 1; // version 1.4
        assert_eq!(
            PcapReader::new(&h).unwrap_err(),
            WireError::unsupported(Layer::Pcap, "version")
        );
    }

    #[test]
    fn truncated_record_yields_one_error_then_ends() {
        let f = file(
            true,
            MAGIC_MICROS,
            &[(1, 2, b"hello", 5), (3, 4, b"world", 5)],
        );
        // Cut the second record's data short by one byte.
        let cut = &f[..f.len() - 1];
        let mut r = PcapReader::new(cut).unwrap();
        assert_eq!(r.next().unwrap().unwrap().data, b"hello");
        assert_eq!(
            r.next().unwrap().unwrap_err(),
            WireError::truncated(Layer::Pcap, 21, 20)
        );
        assert!(r.next().is_none());
        assert!(r.next().is_none());

        // A partial record header.
        let cut = &f[..GLOBAL_HEADER_LEN + 16 + 5 + 7];
        let mut r = PcapReader::new(cut).unwrap();
        assert!(r.next().unwrap().is_ok());
        assert_eq!(
            r.next().unwrap().unwrap_err(),
            WireError::truncated(Layer::Pcap, 16, 7)
        );
        assert!(r.next().is_none());
    }

    #[test]
    fn huge_incl_len_is_truncation() {
        let mut f = file(false, MAGIC_NANOS, &[(1, 2, b"x", 1)]);
        let at = GLOBAL_HEADER_LEN + record::INCL_LEN.start;
        f[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = PcapReader::new(&f).unwrap();
        assert!(matches!(
            r.next(),
            Some(Err(WireError {
                layer: Layer::Pcap,
                kind: ErrorKind::Truncated { .. }
            }))
        ));
        assert!(r.next().is_none());
    }
}
