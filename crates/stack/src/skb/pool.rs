//! The buffer pool behind every sk_buff (Linux's `page_pool` / skb caches).
//!
//! Two size classes: small buffers for one frame (2 KiB by default: headroom
//! plus a 1500-byte MTU frame and tags) and large ones for reassembled
//! datagrams and TSO-sized segments (64 KiB + headroom). A freed skb whose
//! buffer nobody else shares goes back on its class's free list, so the steady
//! state allocates nothing; only a cold pool or a burst beyond the free-list
//! size touches the heap, and [`PoolStats::heap_allocs`] says how often.
//!
//! The free lists sit behind a `Mutex` so that an `Skb` is `Send` (a stack is
//! single-threaded, but applications hand data to it from other threads); the
//! lock is uncontended in the steady state.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Skb, SkbError};

/// Pool sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes in a small buffer (headroom + frame).
    pub small_size: usize,
    /// Bytes in a large buffer; larger requests are refused with `TooLarge`.
    pub large_size: usize,
    /// Free small buffers kept for reuse; beyond this they go back to the heap.
    pub max_free_small: usize,
    /// Free large buffers kept for reuse.
    pub max_free_large: usize,
    /// Buffers in use at once before `alloc` fails with `NoMem`
    /// (0 = unlimited), as a memory ceiling.
    pub max_in_use: usize,
}

impl PoolConfig {
    /// The largest buffer a pool hands out: offsets into an skb are `u32`
    /// and `u32::MAX` means "header not set".
    pub const MAX_BUFFER: usize = (u32::MAX - 1) as usize;
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            small_size: 2048,
            large_size: 65536 + 512,
            max_free_small: 16384,
            max_free_large: 64,
            max_in_use: 0,
        }
    }
}

/// What the pool has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Buffers taken from the heap (a cold pool, or demand beyond the free list).
    pub heap_allocs: u64,
    /// Allocations served from a free list.
    pub recycled: u64,
    /// Buffers handed out and not yet returned or released.
    pub in_use: u64,
    /// Buffers waiting on the free lists.
    pub free: usize,
    /// Allocations refused (`NoMem` or `TooLarge`).
    pub failed: u64,
}

struct FreeLists {
    small: Vec<Arc<[u8]>>,
    large: Vec<Arc<[u8]>>,
    stats: PoolStats,
    next_id: u64,
}

pub(super) struct PoolInner {
    cfg: PoolConfig,
    lists: Mutex<FreeLists>,
}

/// A handle to a buffer pool; cheap to clone (all clones share the pool).
#[derive(Clone)]
pub struct SkbPool {
    inner: Arc<PoolInner>,
}

impl Default for SkbPool {
    fn default() -> Self {
        SkbPool::new(PoolConfig::default())
    }
}

impl core::fmt::Debug for SkbPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkbPool")
            .field("cfg", &self.inner.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SkbPool {
    /// A pool with `cfg`'s sizing. Buffer sizes are capped at
    /// [`PoolConfig::MAX_BUFFER`] (skb offsets are 32-bit, as in Linux).
    pub fn new(cfg: PoolConfig) -> Self {
        let cfg = PoolConfig {
            small_size: cfg.small_size.min(PoolConfig::MAX_BUFFER),
            large_size: cfg.large_size.min(PoolConfig::MAX_BUFFER),
            ..cfg
        };
        let lists = FreeLists {
            small: Vec::with_capacity(cfg.max_free_small.min(1024)),
            large: Vec::with_capacity(cfg.max_free_large),
            stats: PoolStats::default(),
            next_id: 1,
        };
        SkbPool {
            inner: Arc::new(PoolInner {
                cfg,
                lists: Mutex::new(lists),
            }),
        }
    }

    pub fn config(&self) -> PoolConfig {
        self.inner.cfg
    }

    /// Fills the small free list with `n` buffers now, so that the first `n`
    /// packets need no heap allocation either.
    pub fn prefill(&self, n: usize) {
        let n = n.min(self.inner.cfg.max_free_small);
        let mut l = self.inner.lock();
        while l.small.len() < n {
            l.small.push(new_buf(self.inner.cfg.small_size));
            l.stats.heap_allocs += 1;
        }
    }

    /// `alloc_skb(size)`: an empty skb (`data == tail == head`) whose buffer
    /// holds at least `size` bytes; `reserve` headroom before `put`.
    pub fn alloc(&self, size: usize) -> Result<Skb, SkbError> {
        let (buf, id) = self.inner.take(size)?;
        Ok(Skb::from_parts(buf, self.clone(), id))
    }

    /// An skb holding a copy of `bytes` after `headroom` reserved bytes.
    pub fn alloc_from(&self, headroom: usize, bytes: &[u8]) -> Result<Skb, SkbError> {
        let size = headroom
            .checked_add(bytes.len())
            .ok_or(SkbError::TooLarge {
                size: usize::MAX,
                max: self.inner.cfg.large_size,
            })?;
        let mut skb = self.alloc(size)?;
        skb.reserve(headroom)?;
        skb.put_slice(bytes)?;
        Ok(skb)
    }

    pub fn stats(&self) -> PoolStats {
        let l = self.inner.lock();
        let mut s = l.stats;
        s.free = l.small.len() + l.large.len();
        s
    }

    pub(super) fn inner(&self) -> &PoolInner {
        &self.inner
    }
}

fn new_buf(size: usize) -> Arc<[u8]> {
    Arc::from(vec![0u8; size].into_boxed_slice())
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, FreeLists> {
        // A poisoned lock only means another thread panicked mid-update of
        // counters; the lists themselves are always consistent.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of at least `size` bytes, and a fresh skb id.
    pub(super) fn take(&self, size: usize) -> Result<(Arc<[u8]>, u64), SkbError> {
        let cfg = self.cfg;
        let mut l = self.lock();
        if size > cfg.large_size {
            l.stats.failed += 1;
            return Err(SkbError::TooLarge {
                size,
                max: cfg.large_size,
            });
        }
        if cfg.max_in_use != 0 && l.stats.in_use >= cfg.max_in_use as u64 {
            l.stats.failed += 1;
            return Err(SkbError::NoMem);
        }
        Ok(l.hand_out(&cfg, size))
    }

    /// Like [`PoolInner::take`], but never refused: for copy on write past
    /// the memory ceiling, where the only other choice would be to write into
    /// bytes another skb reads. The buffer is counted in `in_use` all the
    /// same, so that giving it back balances.
    pub(super) fn take_forced(&self, size: usize) -> (Arc<[u8]>, u64) {
        let cfg = self.cfg;
        self.lock().hand_out(&cfg, size)
    }

    /// Lets go of one reference to a buffer; the last one returns the buffer
    /// to the pool. Done under the lock so that two clones dropped at once on
    /// two threads cannot both see the other still holding it (and the
    /// buffer slip away uncounted).
    pub(super) fn release(&self, mut buf: Arc<[u8]>) {
        let cfg = self.cfg;
        let mut l = self.lock();
        if Arc::get_mut(&mut buf).is_some() {
            l.give_back(&cfg, buf);
        } else {
            drop(buf);
        }
    }
}

impl FreeLists {
    /// A buffer of at least `size` bytes (a free one if any) and a fresh id.
    fn hand_out(&mut self, cfg: &PoolConfig, size: usize) -> (Arc<[u8]>, u64) {
        let small = size <= cfg.small_size;
        let large = size <= cfg.large_size;
        let reused = if small {
            self.small.pop()
        } else if large {
            self.large.pop()
        } else {
            None
        };
        let buf = match reused {
            Some(b) => {
                self.stats.recycled += 1;
                b
            }
            None => {
                self.stats.heap_allocs += 1;
                new_buf(if small {
                    cfg.small_size
                } else if large {
                    cfg.large_size
                } else {
                    size.min(PoolConfig::MAX_BUFFER)
                })
            }
        };
        self.stats.in_use += 1;
        let id = self.next_id;
        self.next_id += 1;
        (buf, id)
    }

    /// Takes back a buffer whose last user is done with it.
    fn give_back(&mut self, cfg: &PoolConfig, buf: Arc<[u8]>) {
        self.stats.in_use = self.stats.in_use.saturating_sub(1);
        if buf.len() == cfg.small_size && self.small.len() < cfg.max_free_small {
            self.small.push(buf);
        } else if buf.len() == cfg.large_size && self.large.len() < cfg.max_free_large {
            self.large.push(buf);
        }
    }
}
