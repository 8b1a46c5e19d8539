//! The sk_buff: one buffer per packet, with headroom and tailroom (DESIGN.md §4;
//! Linux `include/linux/skbuff.h`).
//!
//! Seed stages: ingress step 7 (the driver allocates an skb, sets the MAC
//! header and *pulls* the Ethernet header), step 8 (network header), steps
//! 9–11 (pull IP and TCP headers, transport header); egress steps 2–7 (alloc,
//! *push* each header into headroom, set h / nh / mac).
//!
//! Layout, as offsets into one buffer: `0 (head) <= data <= tail <= end`.
//! `push`/`pull` move `data`, `put`/`trim` move `tail`; nothing is copied.
//! Every operation is checked and returns an [`SkbError`] instead of
//! panicking. `clone` shares the bytes (taps, TCP's retransmit queue); any
//! write through a shared skb first copies the bytes (copy on write), as
//! `skb_unshare` does. Buffers come from an [`SkbPool`] and go back to it when
//! the last skb using them is dropped.

mod gso;
mod meta;
mod pool;

pub use gso::{skb_gso_segment, GsoError};
pub use meta::{ChecksumState, PacketType, SkbMeta, VlanInfo};
pub use pool::{PoolConfig, PoolStats, SkbPool};

use core::fmt;
use std::sync::Arc;

/// A checked sk_buff operation that could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkbError {
    /// `pull` of more bytes than the skb holds.
    PullPastTail { want: usize, len: usize },
    /// `push` of more bytes than the headroom.
    NoHeadroom { want: usize, headroom: usize },
    /// `put` (or `reserve`) past the end of the buffer.
    NoTailroom { want: usize, tailroom: usize },
    /// `trim` to a length larger than the skb.
    TrimGrows { want: usize, len: usize },
    /// `reserve` on an skb that already holds data.
    ReserveNotEmpty { len: usize },
    /// A header offset outside the buffer.
    HeaderOutOfRange { offset: usize, end: usize },
    /// The pool's memory ceiling is reached.
    NoMem,
    /// A buffer larger than the pool's largest class.
    TooLarge { size: usize, max: usize },
}

impl fmt::Display for SkbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SkbError::PullPastTail { want, len } => {
                write!(f, "pull of {want} bytes from an skb of {len}")
            }
            SkbError::NoHeadroom { want, headroom } => {
                write!(f, "push of {want} bytes with {headroom} bytes of headroom")
            }
            SkbError::NoTailroom { want, tailroom } => {
                write!(f, "put of {want} bytes with {tailroom} bytes of tailroom")
            }
            SkbError::TrimGrows { want, len } => {
                write!(f, "trim to {want} bytes of an skb of {len}")
            }
            SkbError::ReserveNotEmpty { len } => write!(f, "reserve on an skb holding {len} bytes"),
            SkbError::HeaderOutOfRange { offset, end } => {
                write!(f, "header offset {offset} outside a buffer of {end}")
            }
            SkbError::NoMem => write!(f, "skb pool memory limit reached"),
            SkbError::TooLarge { size, max } => {
                write!(f, "skb of {size} bytes exceeds the pool's {max}")
            }
        }
    }
}

impl std::error::Error for SkbError {}

/// Headroom `expand_head` keeps at most from the old buffer (beyond what
/// the caller asks for).
const EXPAND_KEEP_HEADROOM: usize = 128;

/// Offset not set (Linux's `(typeof(skb->mac_header))~0U`).
const UNSET: u32 = u32::MAX;

/// A packet: data offsets, header offsets and metadata over a pooled buffer.
pub struct Skb {
    /// Always `Some` until `Drop` takes it.
    buf: Option<Arc<[u8]>>,
    pool: SkbPool,
    /// Low 32 bits of the pool's counter (wraps after 4 G allocations; it
    /// only correlates trace events), so that `Skb` fits in 128 bytes.
    id: u32,
    data: u32,
    tail: u32,
    mac_header: u32,
    network_header: u32,
    transport_header: u32,
    /// Everything else Linux keeps in `struct sk_buff`.
    pub meta: SkbMeta,
}

impl Skb {
    pub(crate) fn from_parts(buf: Arc<[u8]>, pool: SkbPool, id: u64) -> Skb {
        Skb {
            buf: Some(buf),
            pool,
            id: id as u32,
            data: 0,
            tail: 0,
            mac_header: UNSET,
            network_header: UNSET,
            transport_header: UNSET,
            meta: SkbMeta::default(),
        }
    }

    #[inline]
    fn buf(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or(&[])
    }

    /// The whole buffer, writable: copies it first if it is shared.
    #[inline]
    fn buf_mut(&mut self) -> &mut [u8] {
        self.unshare_bytes();
        match self.buf.as_mut() {
            // No `Weak` to a pool buffer is ever made, so one strong
            // reference means this skb's is the only one: `Arc::get_mut`
            // without its locked compare-and-swap (a measured hot path:
            // every header written goes through here).
            Some(b) if Arc::strong_count(b) == 1 => {
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                let p = Arc::as_ptr(b) as *mut [u8];
                // SAFETY: the buffer is uniquely ours (strong count 1, no
                // weak references exist, and `&mut self` keeps this `Arc`
                // from being cloned while the slice lives); `Arc::as_ptr`
                // points into the live allocation, whose bytes are not
                // behind a shared reference anywhere else.
                unsafe { &mut *p }
            }
            _ => &mut [],
        }
    }

    /// The pool this skb's buffer comes from (and new skbs made from it,
    /// e.g. its GSO segments, should).
    pub(crate) fn pool(&self) -> &SkbPool {
        &self.pool
    }

    /// An id unique within the pool, carried by trace events (as the skb
    /// address is in Linux's tracepoints).
    pub fn id(&self) -> u64 {
        u64::from(self.id)
    }

    /// `skb_is_gso()`: a run of segments the layers below cut up.
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.meta.gso_size != 0
    }

    /// The length of each segment of a GSO skb from its network header on
    /// (`skb_gso_network_seglen`): IP and TCP headers plus `gso_size`.
    pub fn gso_network_seglen(&self) -> Option<usize> {
        let (n, t) = (self.network_header()?, self.transport_header()?);
        let thl = usize::from(self.transport_header_bytes().get(12)? >> 4) * 4;
        Some(t.checked_sub(n)? + thl + usize::from(self.meta.gso_size))
    }

    /// `max(1, skb_shinfo(skb)->gso_segs)`: the packets this skb is on the
    /// wire (a GSO skb's segments).
    pub fn gso_segs(&self) -> usize {
        if !self.is_gso() {
            return 1;
        }
        let Some(t) = self.transport_header() else {
            return 1;
        };
        let thl = self
            .transport_header_bytes()
            .get(12)
            .map_or(20, |b| usize::from(b >> 4) * 4);
        let payload = (self.tail as usize).saturating_sub(t + thl);
        payload.div_ceil(usize::from(self.meta.gso_size)).max(1)
    }

    /// `skb->len`: bytes between data and tail.
    #[inline]
    pub fn len(&self) -> usize {
        (self.tail - self.data) as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tail == self.data
    }

    /// `skb_headroom()`: bytes before data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.data as usize
    }

    /// `skb_tailroom()`: bytes after tail.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.end() - self.tail as usize
    }

    /// `skb_end_offset()`: the buffer's size.
    #[inline]
    pub fn end(&self) -> usize {
        self.buf().len()
    }

    /// `skb->data - skb->head`.
    #[inline]
    pub fn data_offset(&self) -> usize {
        self.data as usize
    }

    /// The packet bytes, data to tail.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf()[self.data as usize..self.tail as usize]
    }

    /// The packet bytes, writable (unshared first if cloned).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (d, t) = (self.data as usize, self.tail as usize);
        &mut self.buf_mut()[d..t]
    }

    /// `skb_checksum_help()`: computes in software a transport checksum left
    /// to "hardware" (`CHECKSUM_PARTIAL`): the one's-complement sum from
    /// `start` to the end of the data (trailing zero padding does not change
    /// it), whose field holds the pseudo-header sum, as Linux leaves it.
    /// Nothing to do unless the checksum is partial; false if its offsets
    /// do not fit the data.
    pub fn checksum_help(&mut self) -> bool {
        let ChecksumState::Partial { start, offset } = self.meta.ip_summed else {
            return true;
        };
        let Some(start) = usize::from(start).checked_sub(self.data_offset()) else {
            return false;
        };
        let at = start + usize::from(offset);
        if at + 2 > self.len() {
            return false;
        }
        let data = self.data_mut();
        let c = match netpath_wire::checksum::checksum(&data[start..]) {
            // One's-complement zero either way; 0 means "no checksum" to UDP.
            0 => 0xffff,
            c => c,
        };
        data[at..at + 2].copy_from_slice(&c.to_be_bytes());
        self.meta.ip_summed = ChecksumState::None;
        true
    }

    /// Works out what a NIC's hardware leaves pending on a frame: the
    /// transport checksum (`CHECKSUM_PARTIAL`), then the FCS
    /// ([`SkbMeta::fcs_pending`]) into its last four bytes. For a simulated
    /// wire, where these bytes are only worked out when something reads
    /// them.
    pub fn resolve_offloads(&mut self) {
        let fcs = self.meta.fcs_pending;
        let body = self.len().saturating_sub(netpath_wire::ethernet::FCS_LEN);
        if fcs {
            // The FCS's place must not count in the transport checksum.
            if let Some(f) = self.data_mut().get_mut(body..) {
                f.fill(0);
            }
        }
        self.checksum_help();
        if fcs {
            self.meta.fcs_pending = false;
            let _ = netpath_wire::ethernet::fcs::append(self.data_mut(), body);
        }
    }

    /// `skb_reserve()`: moves data and tail forward on an empty skb, to make
    /// headroom for headers pushed later.
    pub fn reserve(&mut self, n: usize) -> Result<(), SkbError> {
        if !self.is_empty() {
            return Err(SkbError::ReserveNotEmpty { len: self.len() });
        }
        if n > self.tailroom() {
            return Err(SkbError::NoTailroom {
                want: n,
                tailroom: self.tailroom(),
            });
        }
        self.data += n as u32;
        self.tail = self.data;
        Ok(())
    }

    /// `skb_put()`: extends the data at the tail by `n` bytes and returns them.
    /// Their content is whatever the buffer held: the caller writes them.
    pub fn put(&mut self, n: usize) -> Result<&mut [u8], SkbError> {
        if n > self.tailroom() {
            return Err(SkbError::NoTailroom {
                want: n,
                tailroom: self.tailroom(),
            });
        }
        let old = self.tail as usize;
        self.tail += n as u32;
        Ok(&mut self.buf_mut()[old..old + n])
    }

    /// `skb_put_data()`: appends a copy of `bytes`.
    pub fn put_slice(&mut self, bytes: &[u8]) -> Result<(), SkbError> {
        self.put(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// `skb_push()`: extends the data at the front by `n` bytes of headroom
    /// and returns them, for the caller to write a header into.
    pub fn push(&mut self, n: usize) -> Result<&mut [u8], SkbError> {
        if n > self.headroom() {
            return Err(SkbError::NoHeadroom {
                want: n,
                headroom: self.headroom(),
            });
        }
        self.data -= n as u32;
        let d = self.data as usize;
        Ok(&mut self.buf_mut()[d..d + n])
    }

    /// Pushes a copy of `bytes` in front of the data.
    pub fn push_slice(&mut self, bytes: &[u8]) -> Result<(), SkbError> {
        self.push(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// `skb_pull()`: removes `n` bytes from the front (they stay in the
    /// buffer, where the header offsets still find them).
    pub fn pull(&mut self, n: usize) -> Result<(), SkbError> {
        if n > self.len() {
            return Err(SkbError::PullPastTail {
                want: n,
                len: self.len(),
            });
        }
        self.data += n as u32;
        Ok(())
    }

    /// `skb_trim()`: cuts the data to `len` bytes (e.g. IP total length
    /// shorter than the frame because of Ethernet padding).
    pub fn trim(&mut self, len: usize) -> Result<(), SkbError> {
        if len > self.len() {
            return Err(SkbError::TrimGrows {
                want: len,
                len: self.len(),
            });
        }
        self.tail = self.data + len as u32;
        Ok(())
    }

    // ---- header offsets -------------------------------------------------

    fn offset_at(&self, from_data: usize) -> Result<u32, SkbError> {
        match (self.data as usize).checked_add(from_data) {
            Some(off) if off <= self.end() => Ok(off as u32),
            off => Err(SkbError::HeaderOutOfRange {
                offset: off.unwrap_or(usize::MAX),
                end: self.end(),
            }),
        }
    }

    fn header(&self, off: u32) -> Option<usize> {
        (off != UNSET).then_some(off as usize)
    }

    fn header_bytes(&self, off: u32) -> &[u8] {
        match self.header(off) {
            Some(o) if o <= self.tail as usize => &self.buf()[o..self.tail as usize],
            _ => &[],
        }
    }

    /// `skb_reset_mac_header()`: the MAC header starts at data.
    pub fn reset_mac_header(&mut self) {
        self.mac_header = self.data;
    }
    /// `skb_set_mac_header()`: the MAC header starts `offset` bytes after data.
    pub fn set_mac_header(&mut self, offset: usize) -> Result<(), SkbError> {
        self.mac_header = self.offset_at(offset)?;
        Ok(())
    }
    /// Offset of the MAC header from head, if set.
    pub fn mac_header(&self) -> Option<usize> {
        self.header(self.mac_header)
    }
    /// `skb_mac_header()`: bytes from the MAC header to tail (empty if unset).
    pub fn mac_header_bytes(&self) -> &[u8] {
        self.header_bytes(self.mac_header)
    }

    /// `skb_reset_network_header()`.
    pub fn reset_network_header(&mut self) {
        self.network_header = self.data;
    }
    /// `skb_set_network_header()`.
    pub fn set_network_header(&mut self, offset: usize) -> Result<(), SkbError> {
        self.network_header = self.offset_at(offset)?;
        Ok(())
    }
    pub fn network_header(&self) -> Option<usize> {
        self.header(self.network_header)
    }
    /// `skb_network_header()`: bytes from nh to tail.
    pub fn network_header_bytes(&self) -> &[u8] {
        self.header_bytes(self.network_header)
    }

    /// `skb_reset_transport_header()`.
    pub fn reset_transport_header(&mut self) {
        self.transport_header = self.data;
    }
    /// `skb_set_transport_header()`.
    pub fn set_transport_header(&mut self, offset: usize) -> Result<(), SkbError> {
        self.transport_header = self.offset_at(offset)?;
        Ok(())
    }
    pub fn transport_header(&self) -> Option<usize> {
        self.header(self.transport_header)
    }
    /// `skb_transport_header()`: bytes from h to tail.
    pub fn transport_header_bytes(&self) -> &[u8] {
        self.header_bytes(self.transport_header)
    }

    /// `skb_mac_header_len()`: network header minus MAC header.
    pub fn mac_len(&self) -> Option<usize> {
        match (self.mac_header(), self.network_header()) {
            (Some(m), Some(n)) if n >= m => Some(n - m),
            _ => None,
        }
    }

    // ---- sharing -------------------------------------------------------

    /// `skb_cloned()`: the bytes are shared with another skb.
    pub fn is_cloned(&self) -> bool {
        self.buf.as_ref().is_some_and(|b| Arc::strong_count(b) > 1)
    }

    /// True when both skbs read the same bytes (a clone and its original).
    pub fn shares_data_with(&self, other: &Skb) -> bool {
        match (&self.buf, &other.buf) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// `skb_unshare()`: gives this skb its own copy of the bytes if shared.
    /// Only fails when the pool is out of memory.
    pub fn unshare(&mut self) -> Result<(), SkbError> {
        if !self.is_cloned() {
            return Ok(());
        }
        let fresh = self.copy_bytes()?;
        self.replace_buf(fresh);
        Ok(())
    }

    /// A fresh buffer from the pool holding this skb's bytes up to tail.
    fn copy_bytes(&self) -> Result<(Arc<[u8]>, u64), SkbError> {
        let (fresh, id) = self.pool.inner().take(self.end())?;
        Ok((self.fill(fresh), id))
    }

    /// Copies this skb's bytes up to tail into the unshared buffer `fresh`.
    fn fill(&self, mut fresh: Arc<[u8]>) -> Arc<[u8]> {
        let t = self.tail as usize;
        if let Some(dst) = Arc::get_mut(&mut fresh).and_then(|d| d.get_mut(..t)) {
            dst.copy_from_slice(&self.buf()[..t]);
        }
        fresh
    }

    /// Swaps in a buffer of our own, letting go of the shared one through the
    /// pool (which takes it back if its other users let go meanwhile).
    fn replace_buf(&mut self, (fresh, _id): (Arc<[u8]>, u64)) {
        if let Some(old) = self.buf.replace(fresh) {
            self.pool.inner().release(old);
        }
    }

    fn unshare_bytes(&mut self) {
        if self.is_cloned() {
            // Past the pool's memory ceiling the copy is still made (and
            // counted in `in_use`) rather than writing into bytes another
            // skb reads.
            let fresh = match self.copy_bytes() {
                Ok(f) => f,
                Err(_) => {
                    let (b, id) = self.pool.inner().take_forced(self.end());
                    (self.fill(b), id)
                }
            };
            self.replace_buf(fresh);
        }
    }

    /// `pskb_expand_head()`: moves the packet into a buffer of its own with at
    /// least `headroom` bytes before data and `tailroom` after tail (more if
    /// it already had more). Header offsets move with the data.
    pub fn expand_head(&mut self, headroom: usize, tailroom: usize) -> Result<(), SkbError> {
        // A partial checksum's place would move: work it out first (a rare
        // path: a packet that outgrew its buffer).
        self.checksum_help();
        let (d, t) = (self.data as usize, self.tail as usize);
        // Headers already pulled (e.g. the MAC header) move along too.
        let start = [self.mac_header, self.network_header, self.transport_header]
            .into_iter()
            .filter(|&o| o != UNSET && (o as usize) < d)
            .map(|o| o as usize)
            .min()
            .unwrap_or(d);
        // Keep some of the old headroom for headers pushed later, but not a
        // huge one; the pool rounds the size up to its class, so the
        // tailroom usually comes out larger than asked.
        let head = headroom
            .max(self.headroom().min(EXPAND_KEEP_HEADROOM))
            .max(d - start);
        let size = head
            .checked_add(t - d)
            .and_then(|v| v.checked_add(tailroom))
            .ok_or(SkbError::TooLarge {
                size: usize::MAX,
                max: PoolConfig::MAX_BUFFER,
            })?;
        let (mut fresh, _id) = self.pool.inner().take(size)?;
        let dst_start = head - (d - start);
        if let Some(dst) =
            Arc::get_mut(&mut fresh).and_then(|b| b.get_mut(dst_start..head + (t - d)))
        {
            dst.copy_from_slice(&self.buf()[start..t]);
        }
        // Offsets are relative to head; shift them by how far data moved.
        let shift = |off: u32| -> u32 {
            if off == UNSET {
                UNSET
            } else {
                (i64::from(off) + head as i64 - i64::from(self.data))
                    .clamp(0, i64::from(u32::MAX - 1)) as u32
            }
        };
        self.mac_header = shift(self.mac_header);
        self.network_header = shift(self.network_header);
        self.transport_header = shift(self.transport_header);
        self.tail = (head + (t - d)) as u32;
        self.data = head as u32;
        if let Some(old) = self.buf.replace(fresh) {
            self.pool.inner().release(old);
        }
        Ok(())
    }

    /// `skb_cow_head()`: makes sure `headroom` bytes can be pushed and the
    /// bytes are ours to write, expanding only when needed.
    pub fn cow_head(&mut self, headroom: usize) -> Result<(), SkbError> {
        if self.headroom() < headroom {
            self.expand_head(headroom, 0)
        } else {
            self.unshare()
        }
    }

    /// Makes sure `tailroom` bytes can be put (e.g. the FCS a NIC appends).
    pub fn ensure_tailroom(&mut self, tailroom: usize) -> Result<(), SkbError> {
        if self.tailroom() < tailroom {
            self.expand_head(0, tailroom)
        } else {
            self.unshare()
        }
    }

    /// `skb_copy()`: a new skb with its own copy of the bytes, the same
    /// offsets and metadata, and a new id.
    pub fn copy(&self) -> Result<Skb, SkbError> {
        let (fresh, id) = self.copy_bytes()?;
        Ok(Skb {
            buf: Some(fresh),
            pool: self.pool.clone(),
            id: id as u32,
            data: self.data,
            tail: self.tail,
            mac_header: self.mac_header,
            network_header: self.network_header,
            transport_header: self.transport_header,
            meta: self.meta.clone(),
        })
    }
}

impl Clone for Skb {
    /// `skb_clone()`: a new skb head over the same bytes. Writing through
    /// either one copies the bytes first.
    fn clone(&self) -> Skb {
        Skb {
            buf: self.buf.clone(),
            pool: self.pool.clone(),
            id: self.id,
            data: self.data,
            tail: self.tail,
            mac_header: self.mac_header,
            network_header: self.network_header,
            transport_header: self.transport_header,
            meta: self.meta.clone(),
        }
    }
}

impl Drop for Skb {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.inner().release(buf);
        }
    }
}

impl fmt::Debug for Skb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Skb")
            .field("id", &self.id)
            .field("data", &self.data)
            .field("tail", &self.tail)
            .field("end", &self.end())
            .field("mac_header", &self.mac_header())
            .field("network_header", &self.network_header())
            .field("transport_header", &self.transport_header())
            .field("cloned", &self.is_cloned())
            .field("meta", &self.meta)
            .finish()
    }
}

#[cfg(test)]
mod tests;
