//! The buffer pool behind every sk_buff (Linux's `page_pool` / skb caches).
//!
//! Three size classes: small buffers for one frame (2 KiB by default: headroom
//! plus a 1500-byte MTU frame and tags), medium ones (16 KiB) for GSO and GRO
//! packets of a few segments, and large ones for reassembled
//! datagrams and TSO-sized segments (64 KiB + headroom). A freed skb whose
//! buffer nobody else shares goes back on its class's free list, so the steady
//! state allocates nothing; only a cold pool or a burst beyond the free-list
//! size touches the heap, and [`PoolStats::heap_allocs`] says how often.
//!
//! The free lists sit behind a `Mutex` so that an `Skb` is `Send` (a stack is
//! single-threaded, but applications hand data to it from other threads).
//! In front of them, the thread that first allocates from the pool (the
//! stack's) keeps free lists of its own that it reaches without a lock or
//! any atomic read-modify-write: a buffer it frees while nobody else holds
//! it goes there, and its allocations come from there first. Measured with
//! `perf record -e cpu-clock` on the TCP bulk bench, the lock and `Arc`'s
//! uniqueness check (three locked instructions per free, two per
//! allocation) were 19 % of the run.

use std::cell::UnsafeCell;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Skb, SkbError};

/// Pool sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes in a small buffer (headroom + frame).
    pub small_size: usize,
    /// Bytes in a medium buffer (kept between the small and large sizes).
    pub medium_size: usize,
    /// Bytes in a large buffer; larger requests are refused with `TooLarge`.
    pub large_size: usize,
    /// Free small buffers kept for reuse; beyond this they go back to the heap.
    pub max_free_small: usize,
    /// Free medium buffers kept for reuse.
    pub max_free_medium: usize,
    /// Free large buffers kept for reuse.
    pub max_free_large: usize,
    /// Buffers in use at once before `alloc` fails with `NoMem`
    /// (0 = unlimited), as a memory ceiling.
    pub max_in_use: usize,
}

impl PoolConfig {
    /// Buffer size of each class, smallest first.
    fn sizes(&self) -> [usize; 3] {
        [self.small_size, self.medium_size, self.large_size]
    }

    /// Free buffers kept per class.
    fn max_free(&self) -> [usize; 3] {
        [
            self.max_free_small,
            self.max_free_medium,
            self.max_free_large,
        ]
    }

    /// The class that serves `size` bytes, if any.
    fn class_of(&self, size: usize) -> Option<usize> {
        self.sizes().iter().position(|&c| size <= c)
    }

    /// The class whose buffers are exactly `len` bytes.
    fn class_exact(&self, len: usize) -> Option<usize> {
        self.sizes().iter().position(|&c| len == c)
    }

    /// The largest buffer a pool hands out: offsets into an skb are `u32`
    /// and `u32::MAX` means "header not set".
    pub const MAX_BUFFER: usize = (u32::MAX - 1) as usize;
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            small_size: 2048,
            medium_size: 16384 + 512,
            large_size: 65536 + 512,
            max_free_small: 16384,
            max_free_medium: 256,
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
    /// Per class: small, medium, large.
    free: [Vec<Arc<[u8]>>; 3],
    stats: PoolStats,
    next_id: u64,
}

/// The owner thread's free lists: touched by that thread only.
#[derive(Default)]
struct Local {
    /// Per class, as in [`FreeLists`].
    free: [Vec<Arc<[u8]>>; 3],
    next_id: u64,
}

/// The owner's counters: written by the owner alone (a load and a store,
/// no read-modify-write), read by anyone.
#[derive(Default)]
struct LocalStats {
    recycled: AtomicU64,
    taken: AtomicU64,
    returned: AtomicU64,
    free: AtomicUsize,
}

fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Skb ids handed out by the shared lists start here, those of the owner
/// thread at 1: an id only correlates trace events.
const SHARED_IDS: u64 = 1 << 31;

/// This thread's token (its identity, without `thread::current()`'s `Arc`).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

pub(super) struct PoolInner {
    cfg: PoolConfig,
    /// Token of the thread that owns `local` (0: not claimed yet).
    owner: AtomicU64,
    local: UnsafeCell<Local>,
    lstats: LocalStats,
    lists: Mutex<FreeLists>,
}

// SAFETY: `local` is only ever reached through `PoolInner::local`, which
// hands it out only on the thread whose token is `owner` (set once, never
// changed), so it is never accessed from two threads; everything else is
// `Sync` on its own.
unsafe impl Sync for PoolInner {}

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
            medium_size: cfg
                .medium_size
                .clamp(cfg.small_size, cfg.large_size.max(cfg.small_size))
                .min(PoolConfig::MAX_BUFFER),
            large_size: cfg.large_size.min(PoolConfig::MAX_BUFFER),
            ..cfg
        };
        let lists = FreeLists {
            free: [
                Vec::with_capacity(cfg.max_free_small.min(1024)),
                Vec::with_capacity(cfg.max_free_medium.min(1024)),
                Vec::with_capacity(cfg.max_free_large.min(1024)),
            ],
            stats: PoolStats::default(),
            next_id: SHARED_IDS,
        };
        SkbPool {
            inner: Arc::new(PoolInner {
                cfg,
                owner: AtomicU64::new(0),
                local: UnsafeCell::new(Local {
                    next_id: 1,
                    ..Local::default()
                }),
                lstats: LocalStats::default(),
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
        while l.free[0].len() < n {
            l.free[0].push(new_buf(self.inner.cfg.small_size));
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
        let ls = &self.inner.lstats;
        let taken = ls.taken.load(Ordering::Relaxed);
        let returned = ls.returned.load(Ordering::Relaxed);
        // Every buffer was first handed out by the shared lists (the
        // owner's only ever hold buffers given back), so their count covers
        // it; the owner's lists only move it around.
        s.in_use = (s.in_use as i64 + taken as i64 - returned as i64).max(0) as u64;
        s.recycled += ls.recycled.load(Ordering::Relaxed);
        s.free = l.free.iter().map(Vec::len).sum::<usize>() + ls.free.load(Ordering::Relaxed);
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

    /// The owner thread's lists, if this is the owner thread (the first
    /// to ask claims them) and the pool has no memory ceiling (whose count
    /// must be exact, so every operation then takes the lock).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    fn local(&self) -> Option<&mut Local> {
        if self.cfg.max_in_use != 0 {
            return None;
        }
        let me = thread_token();
        let owner = self.owner.load(Ordering::Relaxed);
        let mine = owner == me
            || (owner == 0
                && self
                    .owner
                    .compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok());
        // SAFETY: only the owner thread gets here (see `unsafe impl Sync`),
        // and it holds no other reference to `local`: each caller uses the
        // one it gets and lets go before returning.
        mine.then(|| unsafe { &mut *self.local.get() })
    }

    /// A buffer of at least `size` bytes, and a fresh skb id.
    pub(super) fn take(&self, size: usize) -> Result<(Arc<[u8]>, u64), SkbError> {
        let cfg = self.cfg;
        if let Some(class) = cfg.class_of(size) {
            if let Some(local) = self.local() {
                if let Some(buf) = local.free[class].pop() {
                    let ls = &self.lstats;
                    ls.free
                        .store(ls.free.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
                    bump(&ls.recycled);
                    bump(&ls.taken);
                    let id = local.next_id;
                    local.next_id += 1;
                    return Ok((buf, id));
                }
            }
        }
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
        // Ours alone (no `Weak` to a pool buffer is ever made): the owner
        // thread keeps it without the lock.
        if Arc::strong_count(&buf) == 1 {
            if let Some(local) = self.local() {
                // Whoever dropped their reference before us did so with
                // Release ordering: their writes are done.
                fence(Ordering::Acquire);
                let ls = &self.lstats;
                bump(&ls.returned);
                let Some(class) = cfg.class_exact(buf.len()) else {
                    return;
                };
                let list = &mut local.free[class];
                if list.len() < cfg.max_free()[class] {
                    list.push(buf);
                    ls.free
                        .store(ls.free.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                }
                return;
            }
        }
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
        let class = cfg.class_of(size);
        let reused = class.and_then(|c| self.free[c].pop());
        let buf = match reused {
            Some(b) => {
                self.stats.recycled += 1;
                b
            }
            None => {
                self.stats.heap_allocs += 1;
                new_buf(match class {
                    Some(c) => cfg.sizes()[c],
                    None => size.min(PoolConfig::MAX_BUFFER),
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
        if let Some(c) = cfg.class_exact(buf.len()) {
            if self.free[c].len() < cfg.max_free()[c] {
                self.free[c].push(buf);
            }
        }
    }
}
