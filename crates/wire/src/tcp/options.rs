//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 2385's MD5
//! signature): a non-allocating
//! iterator over the option bytes of a header, the summary the stack keeps
//! of them, and an emitter that lays them out exactly as Linux's
//! `tcp_options_write` does.
//!
//! Seed stages served: ingress step 11 (`tcp_v4_rcv` → `tcp_parse_options`
//! reading MSS, window scale, SACK and timestamps off a received header) and
//! egress step 3 (`tcp_transmit_skb` → `tcp_options_write`).
//!
//! Malformed options are handled as `tcp_parse_options` does: an option
//! whose length byte is missing, below 2 or past the end stops the walk
//! (Linux `return`s, keeping what it had), and a known kind with the wrong
//! length for its kind is skipped by its length. Neither drops the segment.

use crate::error::{Layer, Result, WireError};

/// Option kind numbers.
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    /// TCP MD5 signature (RFC 2385, Linux `TCPOPT_MD5SIG`).
    pub const MD5SIG: u8 = 19;
    /// TCP Fast Open (RFC 7413).
    pub const FASTOPEN: u8 = 34;
    /// Experimental options (RFC 6994); Fast Open used it with magic 0xF989.
    pub const EXPERIMENTAL: u8 = 254;
}

/// The magic after kind 254 that marks the experimental Fast Open option.
pub const FASTOPEN_EXP_MAGIC: u16 = 0xf989;
/// The longest Fast Open cookie (RFC 7413 §4.1.1).
pub const FASTOPEN_COOKIE_MAX: usize = 16;
/// The shortest non-empty Fast Open cookie.
pub const FASTOPEN_COOKIE_MIN: usize = 4;

/// A Fast Open option (RFC 7413): kind 34, or kind 254 with magic 0xF989
/// (`exp`). An empty cookie is a cookie request. `valid` is false for a
/// cookie of a length Linux rejects (odd, or outside 4..=16 bytes); such an
/// option still says the peer speaks Fast Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastOpenOption {
    cookie: [u8; FASTOPEN_COOKIE_MAX],
    len: u8,
    /// The experimental encoding (kind 254, magic 0xF989).
    pub exp: bool,
    /// The cookie's length is one Linux accepts (empty, or even in 4..=16).
    pub valid: bool,
}

impl FastOpenOption {
    /// A cookie request (empty cookie).
    pub const fn request(exp: bool) -> Self {
        FastOpenOption {
            cookie: [0; FASTOPEN_COOKIE_MAX],
            len: 0,
            exp,
            valid: true,
        }
    }

    /// An option carrying `cookie`; `None` when it is longer than 16 bytes.
    pub fn with_cookie(cookie: &[u8], exp: bool) -> Option<Self> {
        let mut o = FastOpenOption::request(exp);
        o.cookie.get_mut(..cookie.len())?.copy_from_slice(cookie);
        o.len = u8::try_from(cookie.len()).ok()?;
        o.valid = cookie.is_empty()
            || (cookie.len().is_multiple_of(2)
                && (FASTOPEN_COOKIE_MIN..=FASTOPEN_COOKIE_MAX).contains(&cookie.len()));
        Some(o)
    }

    /// The cookie bytes (empty for a request).
    pub fn cookie(&self) -> &[u8] {
        &self.cookie[..usize::from(self.len).min(FASTOPEN_COOKIE_MAX)]
    }

    /// Bytes on the wire, padding included (Linux pads a cookie whose
    /// length is 2 mod 4 with two NOPs: kind 34 only, as kind 254's 4-byte
    /// header keeps the alignment).
    pub fn emitted_len(&self) -> usize {
        let n = self.cookie().len();
        if self.exp {
            (4 + n + 3) & !3
        } else {
            (2 + n + 3) & !3
        }
    }

    fn emit(&self, out: &mut [u8]) {
        let c = self.cookie();
        let (hdr, body): (&[u8], usize) = if self.exp {
            let [m0, m1] = FASTOPEN_EXP_MAGIC.to_be_bytes();
            (&[kind::EXPERIMENTAL, (4 + c.len()) as u8, m0, m1], 4)
        } else {
            (&[kind::FASTOPEN, (2 + c.len()) as u8], 2)
        };
        for (i, b) in out.iter_mut().enumerate() {
            *b = if i < body {
                hdr[i]
            } else if i < body + c.len() {
                c[i - body]
            } else {
                kind::NOP
            };
        }
    }
}

/// The most option bytes a header can carry (data offset 15 → 60 − 20).
pub const MAX_OPTIONS_LEN: usize = 40;
/// The most SACK blocks one option can carry (2 + 4·8 = 34 bytes).
pub const MAX_SACK_BLOCKS: usize = 4;

const LEN_MSS: usize = 4;
const LEN_WINDOW_SCALE: usize = 3;
const LEN_SACK_PERMITTED: usize = 2;
const LEN_TIMESTAMPS: usize = 10;
/// `TCPOLEN_MD5SIG`: kind, length and the 16-byte digest.
pub const LEN_MD5SIG: usize = 18;
/// The digest of an MD5 signature option.
pub type Md5Digest = [u8; 16];

/// Up to four SACK blocks `(left edge, right edge)`, stored inline.
/// Unused slots are always `(0, 0)`, so the derived equality is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    blocks: [(u32, u32); MAX_SACK_BLOCKS],
    len: u8,
}

impl SackBlocks {
    pub const EMPTY: SackBlocks = SackBlocks {
        blocks: [(0, 0); MAX_SACK_BLOCKS],
        len: 0,
    };

    /// `None` when `blocks` holds more than four.
    pub fn from_slice(blocks: &[(u32, u32)]) -> Option<Self> {
        let mut s = SackBlocks::EMPTY;
        for &b in blocks {
            if !s.push(b) {
                return None;
            }
        }
        Some(s)
    }

    /// Appends a block; false when all four slots are used.
    pub fn push(&mut self, block: (u32, u32)) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = block;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn as_slice(&self) -> &[(u32, u32)] {
        let n = usize::from(self.len).min(MAX_SACK_BLOCKS);
        &self.blocks[..n]
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the SACK option carrying these blocks (kind, len, blocks).
    pub fn option_len(&self) -> usize {
        2 + 8 * self.len()
    }
}

/// The timestamps option (RFC 7323).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpTimestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// Kind 0: the end of the list; what follows is padding.
    EndOfList,
    /// Kind 1.
    NoOperation,
    /// Kind 2, length 4.
    MaxSegmentSize(u16),
    /// Kind 3, length 3 (the shift count as sent; Linux clamps above 14).
    WindowScale(u8),
    /// Kind 4, length 2.
    SackPermitted,
    /// Kind 5, length 2 + 8·n, n in 1..=4.
    Sack(SackBlocks),
    /// Kind 8, length 10.
    Timestamps { tsval: u32, tsecr: u32 },
    /// Kind 19, length 18: the RFC 2385 MD5 signature (the digest).
    Md5Sig(Md5Digest),
    /// Any other kind; `data` is the bytes after kind and length.
    Unknown { kind: u8, data: &'a [u8] },
}

impl TcpOption<'_> {
    pub fn kind(&self) -> u8 {
        match self {
            TcpOption::EndOfList => kind::EOL,
            TcpOption::NoOperation => kind::NOP,
            TcpOption::MaxSegmentSize(_) => kind::MSS,
            TcpOption::WindowScale(_) => kind::WINDOW_SCALE,
            TcpOption::SackPermitted => kind::SACK_PERMITTED,
            TcpOption::Sack(_) => kind::SACK,
            TcpOption::Timestamps { .. } => kind::TIMESTAMPS,
            TcpOption::Md5Sig(_) => kind::MD5SIG,
            TcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Bytes this option occupies on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => LEN_MSS,
            TcpOption::WindowScale(_) => LEN_WINDOW_SCALE,
            TcpOption::SackPermitted => LEN_SACK_PERMITTED,
            TcpOption::Sack(b) => b.option_len(),
            TcpOption::Timestamps { .. } => LEN_TIMESTAMPS,
            TcpOption::Md5Sig(_) => LEN_MD5SIG,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes this option at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.wire_len();
        let len_u8 =
            u8::try_from(n).map_err(|_| WireError::bad_length(Layer::TcpOption, "length", n))?;
        let avail = buf.len();
        let out = buf
            .get_mut(..n)
            .ok_or(WireError::truncated(Layer::TcpOption, n, avail))?;
        out[0] = self.kind();
        if n == 1 {
            return Ok(1);
        }
        out[1] = len_u8;
        let body = &mut out[2..];
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::SackPermitted => {}
            TcpOption::MaxSegmentSize(mss) => body.copy_from_slice(&mss.to_be_bytes()),
            TcpOption::WindowScale(ws) => body[0] = *ws,
            TcpOption::Sack(blocks) => {
                for (chunk, (l, r)) in body.chunks_exact_mut(8).zip(blocks.as_slice()) {
                    chunk[..4].copy_from_slice(&l.to_be_bytes());
                    chunk[4..].copy_from_slice(&r.to_be_bytes());
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                body[..4].copy_from_slice(&tsval.to_be_bytes());
                body[4..].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Md5Sig(d) => body.copy_from_slice(d),
            TcpOption::Unknown { data, .. } => body.copy_from_slice(data),
        }
        Ok(n)
    }
}

/// Iterator over the options in a header's option bytes; stops after
/// [`TcpOption::EndOfList`]. A malformed option yields `Err` (with
/// [`Layer::TcpOption`]): when its length byte cannot be trusted (missing,
/// below 2, past the end) the walk then ends, as `tcp_parse_options`
/// returns there; a known kind with a wrong but well-framed length (e.g. an
/// MSS of length 3) is stepped over and the walk goes on, as Linux skips it.
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> TcpOptionIter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptionIter {
            data,
            pos: 0,
            done: false,
        }
    }

    /// The offset of the next option in the option bytes.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_option(&mut self) -> Result<TcpOption<'a>> {
        let data = self.data;
        let at = self.pos;
        let kind = data.get(at).copied().unwrap_or(kind::EOL);
        match kind {
            kind::EOL => {
                self.done = true;
                self.pos = data.len();
                return Ok(TcpOption::EndOfList);
            }
            kind::NOP => {
                self.pos += 1;
                return Ok(TcpOption::NoOperation);
            }
            _ => {}
        }
        let len = match data.get(at + 1) {
            Some(&l) => usize::from(l),
            None => return Err(WireError::truncated(Layer::TcpOption, at + 2, data.len())),
        };
        if len < 2 {
            return Err(WireError::bad_length(Layer::TcpOption, "length", len));
        }
        let opt = data.get(at..at + len).ok_or(WireError::truncated(
            Layer::TcpOption,
            at + len,
            data.len(),
        ))?;
        let body = &opt[2..];
        // Well framed from here on: whatever the contents, the next option
        // starts after this one (Linux `ptr += opsize - 2`).
        self.pos = at + len;
        let fixed = |want: usize, field: &'static str| {
            if len == want {
                Ok(())
            } else {
                Err(WireError::bad_length(Layer::TcpOption, field, len))
            }
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let option = match kind {
            kind::MSS => {
                fixed(LEN_MSS, "mss length")?;
                TcpOption::MaxSegmentSize(u16::from_be_bytes([body[0], body[1]]))
            }
            kind::WINDOW_SCALE => {
                fixed(LEN_WINDOW_SCALE, "window scale length")?;
                TcpOption::WindowScale(body[0])
            }
            kind::SACK_PERMITTED => {
                fixed(LEN_SACK_PERMITTED, "sack permitted length")?;
                TcpOption::SackPermitted
            }
            kind::TIMESTAMPS => {
                fixed(LEN_TIMESTAMPS, "timestamps length")?;
                TcpOption::Timestamps {
                    tsval: be32(&body[..4]),
                    tsecr: be32(&body[4..]),
                }
            }
            kind::MD5SIG => {
                fixed(LEN_MD5SIG, "md5sig length")?;
                let mut d = [0u8; 16];
                d.copy_from_slice(body);
                TcpOption::Md5Sig(d)
            }
            kind::SACK => {
                let n = (len - 2) / 8;
                if (len - 2) % 8 != 0 || n == 0 || n > MAX_SACK_BLOCKS {
                    return Err(WireError::bad_length(Layer::TcpOption, "sack length", len));
                }
                let mut blocks = SackBlocks::EMPTY;
                for c in body.chunks_exact(8) {
                    blocks.push((be32(&c[..4]), be32(&c[4..])));
                }
                TcpOption::Sack(blocks)
            }
            kind => TcpOption::Unknown { kind, data: body },
        };
        Ok(option)
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos;
        let r = self.next_option();
        // An error that left the position alone has no length to step by.
        if r.is_err() && self.pos == at {
            self.done = true;
        }
        Some(r)
    }
}

/// What the stack needs from a header's options (`tcp_parse_options`'s
/// `tcp_options_received`), and what `tcp_transmit_skb` puts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<TcpTimestamps>,
    pub sack: SackBlocks,
    /// Fast Open (RFC 7413), kind 34 or experimental kind 254.
    pub fastopen: Option<FastOpenOption>,
    /// The RFC 2385 MD5 signature (kind 19), when present.
    pub md5sig: Option<Md5Digest>,
}

impl TcpOptions {
    /// Walks `bytes` (a header's option bytes) as `tcp_parse_options`
    /// does: a malformed option never fails the segment; a badly framed one
    /// ends the walk and one of the wrong length for its kind is ignored
    /// (see [`TcpOptionIter`]). A repeated option overrides the earlier one.
    pub fn parse(bytes: &[u8]) -> Self {
        let mut o = TcpOptions::default();
        for opt in TcpOptionIter::new(bytes) {
            let Ok(opt) = opt else { continue };
            match opt {
                TcpOption::MaxSegmentSize(m) => o.mss = Some(m),
                TcpOption::WindowScale(w) => o.window_scale = Some(w),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => {
                    o.timestamps = Some(TcpTimestamps { tsval, tsecr })
                }
                TcpOption::Sack(b) => o.sack = b,
                TcpOption::Md5Sig(d) => o.md5sig = Some(d),
                TcpOption::Unknown {
                    kind: kind::FASTOPEN,
                    data,
                } => o.fastopen = fastopen_parse(data, false),
                TcpOption::Unknown {
                    kind: kind::EXPERIMENTAL,
                    data,
                } if data.len() >= 2
                    && u16::from_be_bytes([data[0], data[1]]) == FASTOPEN_EXP_MAGIC =>
                {
                    o.fastopen = fastopen_parse(&data[2..], true)
                }
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        o
    }

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == TcpOptions::default()
    }

    /// Bytes [`emit`](Self::emit) writes (a multiple of 4).
    pub fn emitted_len(&self) -> usize {
        let mut n = 0;
        if self.md5sig.is_some() {
            n += 20; // nop,nop,md5
        }
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12; // sackOK+TS or nop,nop,TS
        } else if self.sack_permitted {
            n += 4; // nop,nop,sackOK
        }
        if self.window_scale.is_some() {
            n += 4; // nop,wscale
        }
        if !self.sack.is_empty() {
            n += 2 + self.sack.option_len();
        }
        if let Some(f) = &self.fastopen {
            n += f.emitted_len();
        }
        n
    }

    /// Writes the options in the order and padding of Linux's
    /// `tcp_options_write`, and returns the length written:
    ///
    /// - `nop, nop, md5` (20)
    /// - `mss` (4)
    /// - timestamps as `sackOK, TS` when SACK is permitted, else `nop, nop, TS` (12)
    /// - `nop, nop, sackOK` when SACK is permitted without timestamps (4)
    /// - `nop, wscale` (4)
    /// - `nop, nop, sack blocks` (4 + 8·n)
    /// - Fast Open: `34, len, cookie` or `254, len, f9 89, cookie`, then two
    ///   NOPs when the length is 2 mod 4
    ///
    /// So a Linux SYN is `02 04 05 b4 04 02 08 0a <tsval> <tsecr> 01 03 03 ww`
    /// and a data segment `01 01 08 0a <tsval> <tsecr>`. Fails when `buf`
    /// is too short or the result exceeds the 40 bytes a header can hold.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.emitted_len();
        if total > MAX_OPTIONS_LEN {
            return Err(WireError::bad_length(
                Layer::TcpOption,
                "options length",
                total,
            ));
        }
        let avail = buf.len();
        let out =
            buf.get_mut(..total)
                .ok_or(WireError::truncated(Layer::TcpOption, total, avail))?;
        let mut at = 0;
        let mut put = |opt: TcpOption<'_>| -> Result<()> {
            at += opt.emit(out.get_mut(at..).unwrap_or(&mut []))?;
            Ok(())
        };
        if let Some(d) = self.md5sig {
            put(TcpOption::NoOperation)?;
            put(TcpOption::NoOperation)?;
            put(TcpOption::Md5Sig(d))?;
        }
        if let Some(mss) = self.mss {
            put(TcpOption::MaxSegmentSize(mss))?;
        }
        if let Some(ts) = self.timestamps {
            if self.sack_permitted {
                put(TcpOption::SackPermitted)?;
            } else {
                put(TcpOption::NoOperation)?;
                put(TcpOption::NoOperation)?;
            }
            put(TcpOption::Timestamps {
                tsval: ts.tsval,
                tsecr: ts.tsecr,
            })?;
        } else if self.sack_permitted {
            put(TcpOption::NoOperation)?;
            put(TcpOption::NoOperation)?;
            put(TcpOption::SackPermitted)?;
        }
        if let Some(ws) = self.window_scale {
            put(TcpOption::NoOperation)?;
            put(TcpOption::WindowScale(ws))?;
        }
        if !self.sack.is_empty() {
            put(TcpOption::NoOperation)?;
            put(TcpOption::NoOperation)?;
            put(TcpOption::Sack(self.sack))?;
        }
        if let Some(f) = &self.fastopen {
            let n = f.emitted_len();
            f.emit(out.get_mut(at..at + n).unwrap_or(&mut []));
        }
        Ok(total)
    }
}

/// `tcp_parse_fastopen_option`: the cookie of a Fast Open option; one of
/// a length Linux rejects is kept as invalid.
fn fastopen_parse(cookie: &[u8], exp: bool) -> Option<FastOpenOption> {
    match FastOpenOption::with_cookie(cookie, exp) {
        Some(o) => Some(o),
        None => Some(FastOpenOption {
            valid: false,
            ..FastOpenOption::request(exp)
        }),
    }
}

/// A verbatim copy of a header's option bytes (at most 40), kept so that a
/// parsed header re-emits byte for byte whatever order the sender used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawOptions {
    bytes: [u8; MAX_OPTIONS_LEN],
    len: u8,
}

impl Default for RawOptions {
    fn default() -> Self {
        RawOptions::EMPTY
    }
}

impl RawOptions {
    pub const EMPTY: RawOptions = RawOptions {
        bytes: [0; MAX_OPTIONS_LEN],
        len: 0,
    };

    /// `None` when `bytes` is longer than 40.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut r = RawOptions::EMPTY;
        r.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        r.len = u8::try_from(bytes.len()).ok()?;
        Some(r)
    }

    pub fn as_slice(&self) -> &[u8] {
        let n = usize::from(self.len).min(MAX_OPTIONS_LEN);
        &self.bytes[..n]
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// The options of the SYN in tcp-handshake-transfer-close.pcap.
    const LINUX_SYN: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    #[test]
    fn iterate_linux_syn() {
        let opts: Vec<_> = TcpOptionIter::new(&LINUX_SYN)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 0x1122_3344,
                    tsecr: 0
                },
                TcpOption::NoOperation,
                TcpOption::WindowScale(10),
            ]
        );
    }

    #[test]
    fn emit_linux_syn_layout() {
        let o = TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some(TcpTimestamps {
                tsval: 0x1122_3344,
                tsecr: 0,
            }),
            sack: SackBlocks::EMPTY,
            fastopen: None,
            md5sig: None,
        };
        let mut buf = [0xee; 40];
        assert_eq!(o.emitted_len(), 20);
        assert_eq!(o.emit(&mut buf), Ok(20));
        assert_eq!(buf[..20], LINUX_SYN);
        assert_eq!(TcpOptions::parse(&buf[..20]), o);
    }

    #[test]
    fn fastopen_layouts() {
        let mut buf = [0xee; 40];
        // A cookie request: 34, 2, nop, nop.
        let req = TcpOptions {
            fastopen: Some(FastOpenOption::request(false)),
            ..Default::default()
        };
        assert_eq!(req.emit(&mut buf), Ok(4));
        assert_eq!(buf[..4], [34, 2, 1, 1]);
        assert_eq!(TcpOptions::parse(&buf[..4]), req);
        // An 8-byte cookie: 34, 10, cookie, nop, nop.
        let c = [1, 2, 3, 4, 5, 6, 7, 8];
        let fo = TcpOptions {
            fastopen: FastOpenOption::with_cookie(&c, false),
            ..Default::default()
        };
        assert_eq!(fo.emit(&mut buf), Ok(12));
        assert_eq!(buf[..12], [34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1]);
        assert_eq!(TcpOptions::parse(&buf[..12]), fo);
        // The experimental form: 254, 12, f9 89, cookie.
        let exp = TcpOptions {
            fastopen: FastOpenOption::with_cookie(&c, true),
            ..Default::default()
        };
        assert_eq!(exp.emit(&mut buf), Ok(12));
        assert_eq!(buf[..12], [254, 12, 0xf9, 0x89, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(TcpOptions::parse(&buf[..12]), exp);
        // An odd cookie length is parsed as invalid.
        let odd = TcpOptions::parse(&[34, 5, 1, 2, 3, 0]);
        assert_eq!(odd.fastopen.map(|f| f.valid), Some(false));
        // Kind 254 with another magic is not Fast Open.
        assert_eq!(TcpOptions::parse(&[254, 4, 0x12, 0x34]).fastopen, None);
    }

    #[test]
    fn emit_data_and_sack_layouts() {
        let ts = Some(TcpTimestamps { tsval: 1, tsecr: 2 });
        let data = TcpOptions {
            timestamps: ts,
            ..Default::default()
        };
        let mut buf = [0u8; 40];
        assert_eq!(data.emit(&mut buf), Ok(12));
        assert_eq!(buf[..12], [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);

        let sack = TcpOptions {
            timestamps: ts,
            sack: SackBlocks::from_slice(&[(10, 20), (30, 40)]).unwrap(),
            ..Default::default()
        };
        assert_eq!(sack.emit(&mut buf), Ok(32));
        assert_eq!(buf[12..16], [1, 1, 5, 18]);
        assert_eq!(buf[16..24], [0, 0, 0, 10, 0, 0, 0, 20]);
        assert_eq!(TcpOptions::parse(&buf[..32]), sack);

        // SACK permitted without timestamps: nop, nop, sackOK.
        let sp = TcpOptions {
            sack_permitted: true,
            ..Default::default()
        };
        assert_eq!(sp.emit(&mut buf), Ok(4));
        assert_eq!(buf[..4], [1, 1, 4, 2]);

        // Too long for a header: TS + 4 SACK blocks = 12 + 36.
        let big = TcpOptions {
            timestamps: ts,
            sack: SackBlocks::from_slice(&[(1, 2); 4]).unwrap(),
            ..Default::default()
        };
        assert_eq!(
            big.emit(&mut buf),
            Err(WireError::bad_length(
                Layer::TcpOption,
                "options length",
                48
            ))
        );
        assert_eq!(
            data.emit(&mut buf[..11]),
            Err(WireError::truncated(Layer::TcpOption, 12, 11))
        );
    }

    #[test]
    fn md5sig_round_trips() {
        let digest: Md5Digest = core::array::from_fn(|i| i as u8);
        // As a packetdrill script writes it: `<md5 0001…0f,nop,nop>`.
        let mut bytes = vec![19, 18];
        bytes.extend_from_slice(&digest);
        bytes.extend_from_slice(&[1, 1]);
        let opts: Vec<_> = TcpOptionIter::new(&bytes).collect::<Result<_>>().unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::Md5Sig(digest),
                TcpOption::NoOperation,
                TcpOption::NoOperation
            ]
        );
        let mut out = [0u8; 18];
        assert_eq!(TcpOption::Md5Sig(digest).emit(&mut out), Ok(18));
        assert_eq!(out[..], bytes[..18]);
        let o = TcpOptions::parse(&bytes);
        assert_eq!(o.md5sig, Some(digest));
        // Emitted as Linux's tcp_options_write does: nop, nop, md5 first.
        let with_ts = TcpOptions {
            md5sig: Some(digest),
            timestamps: Some(TcpTimestamps { tsval: 7, tsecr: 9 }),
            ..Default::default()
        };
        let mut buf = [0u8; 40];
        assert_eq!(with_ts.emit(&mut buf), Ok(32));
        assert_eq!(buf[..4], [1, 1, 19, 18]);
        assert_eq!(buf[4..20], digest);
        assert_eq!(buf[20..24], [1, 1, 8, 10]);
        assert_eq!(TcpOptions::parse(&buf[..32]), with_ts);
        // A wrong length is skipped (well framed) and not a signature.
        let short = [19, 4, 0, 0, 2, 4, 0x05, 0xb4];
        let o = TcpOptions::parse(&short);
        assert_eq!((o.md5sig, o.mss), (None, Some(1460)));
        assert_eq!(
            TcpOptionIter::new(&short).next().unwrap().unwrap_err().kind,
            ErrorKind::BadLength {
                field: "md5sig length",
                value: 4
            }
        );
    }

    #[test]
    fn unknown_skipped_by_length_and_eol_stops() {
        let bytes = [0xfe, 4, 0xaa, 0xbb, 1, 0, 0x02, 0x01];
        let opts: Vec<_> = TcpOptionIter::new(&bytes).collect();
        assert_eq!(
            opts,
            vec![
                Ok(TcpOption::Unknown {
                    kind: 0xfe,
                    data: &[0xaa, 0xbb]
                }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::EndOfList),
            ]
        );
    }

    #[test]
    fn bad_lengths_are_typed() {
        let first_err = |b: &[u8]| TcpOptionIter::new(b).find_map(|r| r.err()).unwrap();
        assert_eq!(
            first_err(&[1, 0x22, 1]),
            WireError::bad_length(Layer::TcpOption, "length", 1)
        );
        assert_eq!(
            first_err(&[0x22]),
            WireError::truncated(Layer::TcpOption, 2, 1)
        );
        assert_eq!(
            first_err(&[1, 8, 10, 0, 0]),
            WireError::truncated(Layer::TcpOption, 11, 5)
        );
        assert_eq!(
            first_err(&[2, 3, 5]).kind,
            ErrorKind::BadLength {
                field: "mss length",
                value: 3
            }
        );
        assert_eq!(
            first_err(&[3, 4, 5, 0]).kind,
            ErrorKind::BadLength {
                field: "window scale length",
                value: 4
            }
        );
        assert_eq!(
            first_err(&[4, 3, 0]).kind,
            ErrorKind::BadLength {
                field: "sack permitted length",
                value: 3
            }
        );
        assert_eq!(
            first_err(&[8, 6, 0, 0, 0, 0]).kind,
            ErrorKind::BadLength {
                field: "timestamps length",
                value: 6
            }
        );
        assert_eq!(
            first_err(&[5, 2]).kind,
            ErrorKind::BadLength {
                field: "sack length",
                value: 2
            }
        );
        assert_eq!(
            first_err(&[5, 9, 0, 0, 0, 0, 0, 0, 0]).kind,
            ErrorKind::BadLength {
                field: "sack length",
                value: 9
            }
        );
        // A badly framed option: error once, then the iterator stops.
        let mut it = TcpOptionIter::new(&[1, 0x22, 0, 1, 1]);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert!(matches!(it.next(), Some(Err(_))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn like_tcp_parse_options() {
        // Wrong length for the kind, but well framed: Linux skips it by its
        // length and reads on (here: MSS of length 3, window scale of length
        // 4, SACK of length 3, then a good MSS).
        let bytes = [2, 3, 9, 3, 4, 7, 7, 5, 3, 0, 2, 4, 0x05, 0xb4];
        let mut it = TcpOptionIter::new(&bytes);
        assert!(it.next().unwrap().is_err());
        assert_eq!(it.position(), 3);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().unwrap().is_err());
        assert_eq!(it.next(), Some(Ok(TcpOption::MaxSegmentSize(1460))));
        assert_eq!(it.next(), None);
        let o = TcpOptions::parse(&bytes);
        assert_eq!(
            (o.mss, o.window_scale, o.sack),
            (Some(1460), None, SackBlocks::EMPTY)
        );

        // Badly framed (length past the end, or below 2): Linux returns,
        // keeping what it had; nothing after counts.
        let o = TcpOptions::parse(&[3, 3, 7, 2, 4, 0x05, 0xb4, 8, 10, 0]);
        assert_eq!(
            (o.window_scale, o.mss, o.timestamps),
            (Some(7), Some(1460), None)
        );
        let o = TcpOptions::parse(&[4, 2, 0x22, 1, 2, 4, 0x05, 0xb4]);
        assert_eq!((o.sack_permitted, o.mss), (true, None));
        let o = TcpOptions::parse(&[4, 2, 0x22]);
        assert!(o.sack_permitted);
    }

    #[test]
    fn sack_blocks_capacity() {
        let mut s = SackBlocks::EMPTY;
        for i in 0..4 {
            assert!(s.push((i, i + 1)));
        }
        assert!(!s.push((9, 9)));
        assert_eq!(s.len(), 4);
        assert_eq!(s.as_slice()[3], (3, 4));
        assert_eq!(SackBlocks::from_slice(&[(0, 0); 5]), None);
        assert_eq!(RawOptions::from_slice(&[0; 41]), None);
        assert_eq!(
            RawOptions::from_slice(&LINUX_SYN).unwrap().as_slice(),
            &LINUX_SYN
        );
    }
}
