//! The FIB's longest-prefix-match structure (`net/ipv4/fib_trie.c`), seed
//! ingress step 9 / egress step 4 route lookup: one per routing table,
//! mapping prefixes to route lists.
//!
//! # Layout
//!
//! Linux walks an LC-trie (`fib_trie.c`); this is a fixed-stride multibit
//! trie with a direct-pointing root and popcount-compressed nodes, after the
//! ideas of Poptrie (Asai & Ohara, 2015) and DIR-24-8, sized so that a
//! lookup touches at most three levels:
//!
//! * **root**: 2¹⁶ words indexed by the top 16 address bits (allocated on the
//!   first insert). A word is either a prefix (the best of length ≤ 16
//!   covering that /16, expanded) or a pointer to a *mid* node.
//! * **mid** node (bits 16..24): prefixes of length 17..=24, expanded over
//!   256 slots and stored run-length compressed: `leaf_bits` marks the slots
//!   where a run starts, the runs' values sit contiguously in the leaf pool
//!   from `leaf_base`, and a slot's value is the run counted by
//!   `popcount(leaf_bits[..=slot])`. `child_bits` marks slots that have a *tail* node; the tails sit
//!   contiguously in the tail pool from `child_base`, so a child is found
//!   with one more popcount and no pointer per slot.
//! * **tail** node (bits 24..32): prefixes of length 25..=32, same run
//!   compression, no children.
//!
//! Every node carries `default`, the best shorter prefix covering its whole
//! range (pushed down from its parent), so a lookup never backtracks: it
//! reads the root word, at most one mid, at most one tail and one leaf
//! word, then the matched entry. Because only a node's `default` (not its
//! slots) is pushed down, inserting or removing a short prefix updates the
//! root words / node defaults it covers and never rewrites deeper slots.
//!
//! Slots and defaults hold `u32` indices into an arena of entries (prefix,
//! length, value), with a free list; an open-addressing hash over the arena
//! indices (keyed by prefix and length) gives exact-match `get`, `insert`
//! and `remove`, and finds the next-shorter covering prefix when one is
//! removed. Leaf runs and tail blocks live in pools of power-of-two blocks
//! (one free list per size), so a node update rewrites at most 256 words.
//!
//! With a million random prefixes (lengths 8..=32) this is a few tens of
//! MB; see `crates/bench/benches/fib.rs`.

use core::fmt;
use core::net::Ipv4Addr;

/// `addr` with all but the first `len` bits cleared.
pub fn mask(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
    Ipv4Addr::from(mask32(u32::from(addr), len))
}

fn mask32(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

/// "No prefix" in a slot, root word or default.
const NONE: u32 = 0x7FFF_FFFF;
/// Root word flag: the rest is a mid node index.
const NODE: u32 = 0x8000_0000;
/// Empty hash bucket.
const EMPTY: u32 = u32::MAX;
const ROOT_SIZE: usize = 1 << 16;

type Bits = [u64; 4];

#[inline]
fn bit(b: &Bits, s: usize) -> bool {
    (b[s >> 6] >> (s & 63)) & 1 != 0
}

#[inline]
fn set_bit(b: &mut Bits, s: usize) {
    b[s >> 6] |= 1 << (s & 63);
}

#[inline]
fn clear_bit(b: &mut Bits, s: usize) {
    b[s >> 6] &= !(1 << (s & 63));
}

/// Set bits strictly below `s`.
#[inline]
fn rank(b: &Bits, s: usize) -> usize {
    let w = s >> 6;
    let mut n = 0;
    for x in &b[..w] {
        n += x.count_ones();
    }
    (n + (b[w] & ((1u64 << (s & 63)) - 1)).count_ones()) as usize
}

/// Set bits at or below `s`.
#[inline]
fn rank_incl(b: &Bits, s: usize) -> usize {
    let w = s >> 6;
    let mut n = 0;
    for x in &b[..w] {
        n += x.count_ones();
    }
    (n + (b[w] & (u64::MAX >> (63 - (s & 63)))).count_ones()) as usize
}

fn popcount(b: &Bits) -> usize {
    b.iter().map(|x| x.count_ones() as usize).sum()
}

/// Block size class for `n` (≥ 1) elements: blocks hold `1 << class`.
fn class(n: usize) -> u32 {
    n.next_power_of_two().trailing_zeros()
}

/// A node for address bits 16..24.
#[derive(Debug, Clone, Copy)]
struct Mid {
    child_bits: Bits,
    leaf_bits: Bits,
    child_base: u32,
    leaf_base: u32,
    default: u32,
}

/// A node for address bits 24..32.
#[derive(Debug, Clone, Copy)]
struct Tail {
    leaf_bits: Bits,
    leaf_base: u32,
    default: u32,
}

/// Power-of-two blocks (1..=256 elements) carved from one `Vec`, with a free
/// list per size.
#[derive(Debug, Clone)]
struct Pool<T> {
    data: Vec<T>,
    free: [Vec<u32>; 9],
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            data: Vec::new(),
            free: Default::default(),
        }
    }
}

impl<T: Copy> Pool<T> {
    fn alloc(&mut self, class: u32, fill: T) -> usize {
        if let Some(b) = self.free[class as usize].pop() {
            return b as usize;
        }
        let b = self.data.len();
        self.data.resize(b + (1 << class), fill);
        b
    }

    fn release(&mut self, base: usize, class: u32) {
        self.free[class as usize].push(base as u32);
    }

    fn bytes(&self) -> usize {
        self.data.capacity() * core::mem::size_of::<T>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
    }
}

#[derive(Debug, Clone)]
struct Entry<V> {
    addr: u32,
    len: u8,
    /// `None` while on the free list.
    value: Option<V>,
}

/// Prefix → value, with longest-prefix-match lookup.
#[derive(Clone)]
pub struct Fib<V> {
    /// 2¹⁶ root words, or empty before the first insert.
    root: Vec<u32>,
    mids: Vec<Mid>,
    free_mids: Vec<u32>,
    tails: Pool<Tail>,
    leaves: Pool<u32>,
    entries: Vec<Entry<V>>,
    free_entries: Vec<u32>,
    /// Open addressing, linear probing, ≤ 1/2 full: arena indices.
    index: Vec<u32>,
    count: usize,
}

impl<V> Default for Fib<V> {
    fn default() -> Self {
        Fib {
            root: Vec::new(),
            mids: Vec::new(),
            free_mids: Vec::new(),
            tails: Pool::default(),
            leaves: Pool::default(),
            entries: Vec::new(),
            free_entries: Vec::new(),
            index: Vec::new(),
            count: 0,
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for Fib<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<V> Fib<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) the value for `prefix/len`; the prefix is masked.
    /// Returns the old value. `len` above 32 is treated as 32.
    pub fn insert(&mut self, prefix: Ipv4Addr, len: u8, value: V) -> Option<V> {
        let len = len.min(32);
        let p = mask32(u32::from(prefix), len);
        if let Some(pos) = self.find(p, len) {
            let i = self.index[pos] as usize;
            return self.entries[i].value.replace(value);
        }
        let entry = Entry {
            addr: p,
            len,
            value: Some(value),
        };
        let i = match self.free_entries.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.index_insert(i);
        self.count += 1;
        self.place(p, len, i);
        None
    }

    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        let len = len.min(32);
        let p = mask32(u32::from(prefix), len);
        let pos = self.find(p, len)?;
        let i = self.index[pos];
        self.index_remove(pos);
        self.unplace(p, len, i);
        self.count -= 1;
        self.free_entries.push(i);
        self.entries[i as usize].value.take()
    }

    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<&V> {
        let len = len.min(32);
        let pos = self.find(mask32(u32::from(prefix), len), len)?;
        self.entries[self.index[pos] as usize].value.as_ref()
    }

    pub fn get_mut(&mut self, prefix: Ipv4Addr, len: u8) -> Option<&mut V> {
        let len = len.min(32);
        let pos = self.find(mask32(u32::from(prefix), len), len)?;
        self.entries[self.index[pos] as usize].value.as_mut()
    }

    /// The longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<(Ipv4Addr, u8, &V)> {
        let a = u32::from(addr);
        let w = *self.root.get((a >> 16) as usize)?;
        let i = if w & NODE == 0 {
            w
        } else {
            let m = &self.mids[(w & !NODE) as usize];
            let s = ((a >> 8) & 0xff) as usize;
            if bit(&m.child_bits, s) {
                let t = &self.tails.data[m.child_base as usize + rank(&m.child_bits, s)];
                let v = self.leaf(&t.leaf_bits, t.leaf_base, (a & 0xff) as usize);
                if v == NONE {
                    t.default
                } else {
                    v
                }
            } else {
                let v = self.leaf(&m.leaf_bits, m.leaf_base, s);
                if v == NONE {
                    m.default
                } else {
                    v
                }
            }
        };
        let e = self.entries.get(i as usize)?;
        Some((Ipv4Addr::from(e.addr), e.len, e.value.as_ref()?))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every prefix, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, &V)> {
        self.entries
            .iter()
            .filter_map(|e| Some((Ipv4Addr::from(e.addr), e.len, e.value.as_ref()?)))
    }

    /// Heap bytes used by the structure (values' own heap not counted).
    pub fn memory_bytes(&self) -> usize {
        self.root.capacity() * 4
            + self.mids.capacity() * core::mem::size_of::<Mid>()
            + self.free_mids.capacity() * 4
            + self.tails.bytes()
            + self.leaves.bytes()
            + self.entries.capacity() * core::mem::size_of::<Entry<V>>()
            + self.free_entries.capacity() * 4
            + self.index.capacity() * 4
    }

    // --- exact-match hash over arena indices ---

    fn home(&self, p: u32, len: u8) -> usize {
        let k = ((u64::from(p) << 8) | u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (k >> (64 - self.index.len().trailing_zeros())) as usize
    }

    /// The bucket holding `p/len`.
    fn find(&self, p: u32, len: u8) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let m = self.index.len() - 1;
        let mut s = self.home(p, len);
        loop {
            let i = self.index[s];
            if i == EMPTY {
                return None;
            }
            let e = &self.entries[i as usize];
            if e.addr == p && e.len == len {
                return Some(s);
            }
            s = (s + 1) & m;
        }
    }

    fn index_put(&mut self, i: u32) {
        let e = &self.entries[i as usize];
        let m = self.index.len() - 1;
        let mut s = self.home(e.addr, e.len);
        while self.index[s] != EMPTY {
            s = (s + 1) & m;
        }
        self.index[s] = i;
    }

    fn index_insert(&mut self, i: u32) {
        if (self.count + 1) * 2 > self.index.len() {
            let size = (self.index.len() * 2).max(16);
            let old = core::mem::replace(&mut self.index, vec![EMPTY; size]);
            for j in old.into_iter().filter(|&j| j != EMPTY) {
                self.index_put(j);
            }
        }
        self.index_put(i);
    }

    /// Empties bucket `hole`, shifting later members of its cluster back.
    fn index_remove(&mut self, mut hole: usize) {
        let m = self.index.len() - 1;
        let mut j = (hole + 1) & m;
        loop {
            let i = self.index[j];
            if i == EMPTY {
                break;
            }
            let e = &self.entries[i as usize];
            let h = self.home(e.addr, e.len);
            if (j.wrapping_sub(h) & m) >= (j.wrapping_sub(hole) & m) {
                self.index[hole] = i;
                hole = j;
            }
            j = (j + 1) & m;
        }
        self.index[hole] = EMPTY;
    }

    /// The longest prefix of `p` with length in `min..len`, or `NONE`.
    fn covering(&self, p: u32, len: u8, min: u8) -> u32 {
        for l in (min..len).rev() {
            if let Some(pos) = self.find(mask32(p, l), l) {
                return self.index[pos];
            }
        }
        NONE
    }

    // --- trie ---

    #[inline]
    fn leaf(&self, bits: &Bits, base: u32, s: usize) -> u32 {
        self.leaves.data[base as usize + rank_incl(bits, s).saturating_sub(1)]
    }

    /// `cur` loses to a prefix of length `len` over the same slot.
    fn beaten(&self, cur: u32, len: u8) -> bool {
        cur == NONE || self.entries[cur as usize].len < len
    }

    fn expand(&self, bits: &Bits, base: u32, out: &mut [u32; 256]) {
        let mut k = base as usize;
        let mut v = NONE;
        for (s, o) in out.iter_mut().enumerate() {
            if bit(bits, s) {
                v = self.leaves.data[k];
                k += 1;
            }
            *o = v;
        }
    }

    /// Stores `slots` run-compressed in place of the runs at `old`; returns
    /// the new `(leaf_bits, leaf_base)`.
    fn store(&mut self, old: (&Bits, u32), slots: &[u32; 256]) -> (Bits, u32) {
        let mut bits = [0; 4];
        let mut runs = [NONE; 256];
        let mut n = 0;
        for s in 0..256 {
            if s == 0 || slots[s] != slots[s - 1] {
                set_bit(&mut bits, s);
                runs[n] = slots[s];
                n += 1;
            }
        }
        let old_n = popcount(old.0);
        let base = if old_n > 0 && class(old_n) == class(n) {
            old.1 as usize
        } else {
            if old_n > 0 {
                self.leaves.release(old.1 as usize, class(old_n));
            }
            self.leaves.alloc(class(n), NONE)
        };
        self.leaves.data[base..base + n].copy_from_slice(&runs[..n]);
        (bits, base as u32)
    }

    /// A single run of `NONE`.
    fn empty_leaves(&mut self) -> (Bits, u32) {
        let b = self.leaves.alloc(0, NONE);
        self.leaves.data[b] = NONE;
        ([1, 0, 0, 0], b as u32)
    }

    fn leaves_empty(&self, bits: &Bits, base: u32) -> bool {
        popcount(bits) == 1 && self.leaves.data[base as usize] == NONE
    }

    /// The mid node under root word `r`, made if absent.
    fn ensure_mid(&mut self, r: usize) -> usize {
        let w = self.root[r];
        if w & NODE != 0 {
            return (w & !NODE) as usize;
        }
        let (leaf_bits, leaf_base) = self.empty_leaves();
        let m = Mid {
            child_bits: [0; 4],
            leaf_bits,
            child_base: 0,
            leaf_base,
            default: w,
        };
        let mi = match self.free_mids.pop() {
            Some(mi) => {
                self.mids[mi as usize] = m;
                mi as usize
            }
            None => {
                self.mids.push(m);
                self.mids.len() - 1
            }
        };
        self.root[r] = NODE | mi as u32;
        mi
    }

    /// The tail node under slot `s` of mid `mi` (its index in the tail
    /// pool), made if absent.
    fn ensure_tail(&mut self, mi: usize, s: usize) -> usize {
        let m = self.mids[mi];
        let k = rank(&m.child_bits, s);
        let b = m.child_base as usize;
        if bit(&m.child_bits, s) {
            return b + k;
        }
        let v = self.leaf(&m.leaf_bits, m.leaf_base, s);
        let default = if v == NONE { m.default } else { v };
        let (leaf_bits, leaf_base) = self.empty_leaves();
        let t = Tail {
            leaf_bits,
            leaf_base,
            default,
        };
        let n = popcount(&m.child_bits);
        let base = if n > 0 && class(n) == class(n + 1) {
            self.tails.data.copy_within(b + k..b + n, b + k + 1);
            b
        } else {
            let nb = self.tails.alloc(class(n + 1), t);
            if n > 0 {
                self.tails.data.copy_within(b..b + k, nb);
                self.tails.data.copy_within(b + k..b + n, nb + k + 1);
                self.tails.release(b, class(n));
            }
            nb
        };
        self.tails.data[base + k] = t;
        let m = &mut self.mids[mi];
        set_bit(&mut m.child_bits, s);
        m.child_base = base as u32;
        base + k
    }

    /// Drops the tail under slot `s` of mid `mi`.
    fn remove_tail(&mut self, mi: usize, s: usize) {
        let m = self.mids[mi];
        if !bit(&m.child_bits, s) {
            return;
        }
        let k = rank(&m.child_bits, s);
        let n = popcount(&m.child_bits);
        let b = m.child_base as usize;
        let t = self.tails.data[b + k];
        self.leaves
            .release(t.leaf_base as usize, class(popcount(&t.leaf_bits)));
        let base = if n == 1 {
            self.tails.release(b, 0);
            0
        } else if class(n - 1) == class(n) {
            self.tails.data.copy_within(b + k + 1..b + n, b + k);
            b
        } else {
            let nb = self.tails.alloc(class(n - 1), t);
            self.tails.data.copy_within(b..b + k, nb);
            self.tails.data.copy_within(b + k + 1..b + n, nb + k);
            self.tails.release(b, class(n));
            nb
        };
        let m = &mut self.mids[mi];
        clear_bit(&mut m.child_bits, s);
        m.child_base = base as u32;
    }

    /// Sets mid `mi`'s default, pushing it to tails under empty slots.
    fn set_mid_default(&mut self, mi: usize, v: u32) {
        self.mids[mi].default = v;
        let m = self.mids[mi];
        let mut k = m.child_base as usize;
        for (w, &word) in m.child_bits.iter().enumerate() {
            let mut x = word;
            while x != 0 {
                let s = w * 64 + x.trailing_zeros() as usize;
                x &= x - 1;
                if self.leaf(&m.leaf_bits, m.leaf_base, s) == NONE {
                    self.tails.data[k].default = v;
                }
                k += 1;
            }
        }
    }

    /// Frees mid `mi` under root word `r` if it holds nothing.
    fn prune_mid(&mut self, r: usize, mi: usize) {
        let m = self.mids[mi];
        if m.child_bits == [0; 4] && self.leaves_empty(&m.leaf_bits, m.leaf_base) {
            self.leaves.release(m.leaf_base as usize, 0);
            self.root[r] = m.default;
            self.free_mids.push(mi as u32);
        }
    }

    /// Links entry `i` (`p/len`, masked) into the trie.
    fn place(&mut self, p: u32, len: u8, i: u32) {
        if self.root.is_empty() {
            self.root = vec![NONE; ROOT_SIZE];
        }
        let r = (p >> 16) as usize;
        if len <= 16 {
            for r in r..r + (1 << (16 - len)) {
                let w = self.root[r];
                if w & NODE == 0 {
                    if self.beaten(w, len) {
                        self.root[r] = i;
                    }
                } else {
                    let mi = (w & !NODE) as usize;
                    if self.beaten(self.mids[mi].default, len) {
                        self.set_mid_default(mi, i);
                    }
                }
            }
            return;
        }
        let mi = self.ensure_mid(r);
        let s = ((p >> 8) & 0xff) as usize;
        let mut slots = [NONE; 256];
        if len <= 24 {
            let m = self.mids[mi];
            self.expand(&m.leaf_bits, m.leaf_base, &mut slots);
            for (s, v) in slots.iter_mut().enumerate().skip(s).take(1 << (24 - len)) {
                if self.beaten(*v, len) {
                    *v = i;
                    if bit(&m.child_bits, s) {
                        self.tails.data[m.child_base as usize + rank(&m.child_bits, s)].default = i;
                    }
                }
            }
            let (bits, base) = self.store((&m.leaf_bits, m.leaf_base), &slots);
            let m = &mut self.mids[mi];
            m.leaf_bits = bits;
            m.leaf_base = base;
        } else {
            let ti = self.ensure_tail(mi, s);
            let t = self.tails.data[ti];
            self.expand(&t.leaf_bits, t.leaf_base, &mut slots);
            let lo = (p & 0xff) as usize;
            for v in &mut slots[lo..lo + (1 << (32 - len))] {
                if self.beaten(*v, len) {
                    *v = i;
                }
            }
            let (bits, base) = self.store((&t.leaf_bits, t.leaf_base), &slots);
            let t = &mut self.tails.data[ti];
            t.leaf_bits = bits;
            t.leaf_base = base;
        }
    }

    /// Unlinks entry `i` (`p/len`, already out of the hash) from the trie.
    fn unplace(&mut self, p: u32, len: u8, i: u32) {
        if self.root.is_empty() {
            return;
        }
        let r = (p >> 16) as usize;
        if len <= 16 {
            let rep = self.covering(p, len, 0);
            for r in r..r + (1 << (16 - len)) {
                let w = self.root[r];
                if w & NODE == 0 {
                    if w == i {
                        self.root[r] = rep;
                    }
                } else {
                    let mi = (w & !NODE) as usize;
                    if self.mids[mi].default == i {
                        self.set_mid_default(mi, rep);
                    }
                }
            }
            return;
        }
        let w = self.root[r];
        if w & NODE == 0 {
            return;
        }
        let mi = (w & !NODE) as usize;
        let s = ((p >> 8) & 0xff) as usize;
        let mut slots = [NONE; 256];
        if len <= 24 {
            let rep = self.covering(p, len, 17);
            let m = self.mids[mi];
            let pushed = if rep == NONE { m.default } else { rep };
            self.expand(&m.leaf_bits, m.leaf_base, &mut slots);
            for (s, v) in slots.iter_mut().enumerate().skip(s).take(1 << (24 - len)) {
                if *v == i {
                    *v = rep;
                    if bit(&m.child_bits, s) {
                        self.tails.data[m.child_base as usize + rank(&m.child_bits, s)].default =
                            pushed;
                    }
                }
            }
            let (bits, base) = self.store((&m.leaf_bits, m.leaf_base), &slots);
            let m = &mut self.mids[mi];
            m.leaf_bits = bits;
            m.leaf_base = base;
        } else {
            let m = self.mids[mi];
            if !bit(&m.child_bits, s) {
                return;
            }
            let ti = m.child_base as usize + rank(&m.child_bits, s);
            let rep = self.covering(p, len, 25);
            let t = self.tails.data[ti];
            self.expand(&t.leaf_bits, t.leaf_base, &mut slots);
            let lo = (p & 0xff) as usize;
            for v in &mut slots[lo..lo + (1 << (32 - len))] {
                if *v == i {
                    *v = rep;
                }
            }
            let (bits, base) = self.store((&t.leaf_bits, t.leaf_base), &slots);
            let t = &mut self.tails.data[ti];
            t.leaf_bits = bits;
            t.leaf_base = base;
            if self.leaves_empty(&bits, base) {
                self.remove_tail(mi, s);
            }
        }
        self.prune_mid(r, mi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn hit(f: &Fib<u32>, a: &str) -> Option<(String, u8, u32)> {
        f.lookup(ip(a)).map(|(p, l, v)| (p.to_string(), l, *v))
    }

    fn r(p: &str, l: u8, v: u32) -> Option<(String, u8, u32)> {
        Some((p.to_string(), l, v))
    }

    /// Naive reference: exact map, LPM by probing every length.
    #[derive(Default)]
    struct Model(BTreeMap<(u32, u8), u32>);

    impl Model {
        fn lookup(&self, a: u32) -> Option<(Ipv4Addr, u8, u32)> {
            (0..=32u8).rev().find_map(|l| {
                let p = mask32(a, l);
                self.0.get(&(p, l)).map(|v| (Ipv4Addr::from(p), l, *v))
            })
        }
    }

    /// Structural invariants: live node counts match the root and no empty
    /// node is kept.
    fn check_structure(f: &Fib<u32>) {
        let live_mids = f.root.iter().filter(|&&w| w & NODE != 0).count();
        assert_eq!(live_mids, f.mids.len() - f.free_mids.len());
        for &w in f.root.iter().filter(|&&w| w & NODE != 0) {
            let m = f.mids[(w & !NODE) as usize];
            assert!(m.child_bits != [0; 4] || !f.leaves_empty(&m.leaf_bits, m.leaf_base));
            assert!(bit(&m.leaf_bits, 0));
            for k in 0..popcount(&m.child_bits) {
                let t = f.tails.data[m.child_base as usize + k];
                assert!(!f.leaves_empty(&t.leaf_bits, t.leaf_base));
            }
        }
    }

    #[test]
    fn empty_table() {
        let mut f: Fib<u32> = Fib::new();
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
        assert_eq!(f.lookup(ip("1.2.3.4")), None);
        assert_eq!(f.get(ip("0.0.0.0"), 0), None);
        assert_eq!(f.remove(ip("0.0.0.0"), 0), None);
        assert_eq!(f.remove(ip("10.0.0.0"), 200), None);
        assert_eq!(f.iter().count(), 0);
        assert_eq!(f.memory_bytes(), 0);
    }

    #[test]
    fn default_route() {
        let mut f = Fib::new();
        assert_eq!(f.insert(ip("9.9.9.9"), 0, 7), None);
        assert_eq!(hit(&f, "0.0.0.0"), r("0.0.0.0", 0, 7));
        assert_eq!(hit(&f, "255.255.255.255"), r("0.0.0.0", 0, 7));
        assert_eq!(hit(&f, "10.1.2.3"), r("0.0.0.0", 0, 7));
        assert_eq!(f.get(ip("0.0.0.0"), 0), Some(&7));
        assert_eq!(f.remove(ip("1.1.1.1"), 0), Some(7));
        assert_eq!(hit(&f, "10.1.2.3"), None);
        assert!(f.is_empty());
    }

    #[test]
    fn host_routes_32() {
        let mut f = Fib::new();
        f.insert(ip("10.0.0.1"), 32, 1);
        f.insert(ip("10.0.0.255"), 32, 2);
        f.insert(ip("255.255.255.255"), 32, 3);
        f.insert(ip("0.0.0.0"), 32, 4);
        assert_eq!(hit(&f, "10.0.0.1"), r("10.0.0.1", 32, 1));
        assert_eq!(hit(&f, "10.0.0.255"), r("10.0.0.255", 32, 2));
        assert_eq!(hit(&f, "255.255.255.255"), r("255.255.255.255", 32, 3));
        assert_eq!(hit(&f, "0.0.0.0"), r("0.0.0.0", 32, 4));
        assert_eq!(hit(&f, "10.0.0.2"), None);
        assert_eq!(hit(&f, "10.0.0.0"), None);
        f.insert(ip("0.0.0.0"), 0, 9);
        assert_eq!(hit(&f, "10.0.0.2"), r("0.0.0.0", 0, 9));
        assert_eq!(hit(&f, "10.0.0.1"), r("10.0.0.1", 32, 1));
    }

    #[test]
    fn nested_prefixes() {
        let mut f = Fib::new();
        // Inserted out of order, so short prefixes land over existing nodes.
        f.insert(ip("10.1.2.128"), 25, 25);
        f.insert(ip("10.1.2.3"), 32, 32);
        f.insert(ip("10.0.0.0"), 8, 8);
        f.insert(ip("10.1.2.0"), 24, 24);
        f.insert(ip("10.1.0.0"), 16, 16);
        f.insert(ip("10.1.0.0"), 20, 20);
        f.insert(ip("10.1.2.0"), 28, 28);
        f.insert(ip("0.0.0.0"), 0, 0);
        assert_eq!(hit(&f, "10.1.2.3"), r("10.1.2.3", 32, 32));
        assert_eq!(hit(&f, "10.1.2.4"), r("10.1.2.0", 28, 28));
        assert_eq!(hit(&f, "10.1.2.16"), r("10.1.2.0", 24, 24));
        assert_eq!(hit(&f, "10.1.2.200"), r("10.1.2.128", 25, 25));
        assert_eq!(hit(&f, "10.1.3.1"), r("10.1.0.0", 20, 20));
        assert_eq!(hit(&f, "10.1.16.1"), r("10.1.0.0", 16, 16));
        assert_eq!(hit(&f, "10.2.0.1"), r("10.0.0.0", 8, 8));
        assert_eq!(hit(&f, "11.0.0.0"), r("0.0.0.0", 0, 0));
        assert_eq!(f.len(), 8);
        let mut all: Vec<_> = f.iter().map(|(p, l, v)| (u32::from(p), l, *v)).collect();
        all.sort();
        assert_eq!(all.len(), 8);
        assert_eq!(all[0], (0, 0, 0));
        check_structure(&f);
    }

    #[test]
    fn replace_returns_old_and_masks() {
        let mut f = Fib::new();
        assert_eq!(f.insert(ip("10.1.2.3"), 8, 1), None);
        assert_eq!(f.insert(ip("10.200.0.0"), 8, 2), Some(1));
        assert_eq!(f.len(), 1);
        assert_eq!(f.get(ip("10.0.0.0"), 8), Some(&2));
        assert_eq!(f.get(ip("10.9.9.9"), 8), Some(&2));
        assert_eq!(hit(&f, "10.3.3.3"), r("10.0.0.0", 8, 2));
        *f.get_mut(ip("10.0.0.0"), 8).unwrap() = 5;
        assert_eq!(hit(&f, "10.3.3.3"), r("10.0.0.0", 8, 5));
        assert_eq!(f.insert(ip("10.1.2.77"), 30, 6), None);
        assert_eq!(f.insert(ip("10.1.2.76"), 30, 7), Some(6));
        assert_eq!(hit(&f, "10.1.2.79"), r("10.1.2.76", 30, 7));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn remove_falls_back_to_shorter() {
        let mut f = Fib::new();
        f.insert(ip("10.0.0.0"), 8, 8);
        f.insert(ip("10.1.0.0"), 16, 16);
        f.insert(ip("10.1.2.0"), 24, 24);
        f.insert(ip("10.1.2.0"), 26, 26);
        f.insert(ip("10.1.2.1"), 32, 32);
        assert_eq!(hit(&f, "10.1.2.1"), r("10.1.2.1", 32, 32));
        assert_eq!(f.remove(ip("10.1.2.1"), 32), Some(32));
        assert_eq!(hit(&f, "10.1.2.1"), r("10.1.2.0", 26, 26));
        assert_eq!(f.remove(ip("10.1.2.0"), 24), Some(24));
        assert_eq!(hit(&f, "10.1.2.1"), r("10.1.2.0", 26, 26));
        assert_eq!(hit(&f, "10.1.2.100"), r("10.1.0.0", 16, 16));
        assert_eq!(f.remove(ip("10.1.2.0"), 26), Some(26));
        assert_eq!(hit(&f, "10.1.2.1"), r("10.1.0.0", 16, 16));
        assert_eq!(f.remove(ip("10.1.0.0"), 16), Some(16));
        assert_eq!(hit(&f, "10.1.2.1"), r("10.0.0.0", 8, 8));
        assert_eq!(f.remove(ip("10.1.0.0"), 16), None);
        assert_eq!(f.remove(ip("10.0.0.0"), 8), Some(8));
        assert_eq!(hit(&f, "10.1.2.1"), None);
        assert!(f.is_empty());
        check_structure(&f);
        assert_eq!(f.mids.len(), f.free_mids.len());
    }

    #[test]
    fn len_above_32_is_32() {
        let mut f = Fib::new();
        assert_eq!(f.insert(ip("10.0.0.1"), 33, 1), None);
        assert_eq!(f.insert(ip("10.0.0.1"), 255, 2), Some(1));
        assert_eq!(f.get(ip("10.0.0.1"), 32), Some(&2));
        assert_eq!(f.get(ip("10.0.0.1"), 200), Some(&2));
        assert_eq!(hit(&f, "10.0.0.1"), r("10.0.0.1", 32, 2));
        assert_eq!(f.remove(ip("10.0.0.1"), 40), Some(2));
        assert!(f.is_empty());
    }

    #[test]
    fn mask_edge_cases() {
        let a = ip("255.255.255.255");
        assert_eq!(mask(a, 0), ip("0.0.0.0"));
        assert_eq!(mask(a, 1), ip("128.0.0.0"));
        assert_eq!(mask(a, 8), ip("255.0.0.0"));
        assert_eq!(mask(a, 31), ip("255.255.255.254"));
        assert_eq!(mask(a, 32), a);
        assert_eq!(mask(a, 33), a);
        assert_eq!(mask(a, 255), a);
        assert_eq!(mask(ip("10.1.2.3"), 20), ip("10.1.0.0"));
        assert_eq!(mask(ip("0.0.0.0"), 17), ip("0.0.0.0"));
    }

    #[test]
    fn memory_is_counted_and_removal_prunes() {
        let mut f = Fib::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut ps = Vec::new();
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = (x >> 32) as u32 & 0x0f0f_ffff;
            let l = (x % 33) as u8;
            f.insert(Ipv4Addr::from(a), l, l as u32);
            ps.push((a, l));
        }
        assert!(f.memory_bytes() >= ROOT_SIZE * 4 + f.len() * 4);
        check_structure(&f);
        for (a, l) in ps {
            f.remove(Ipv4Addr::from(a), l);
        }
        assert!(f.is_empty());
        check_structure(&f);
        assert_eq!(f.mids.len(), f.free_mids.len());
        assert!(f.root.iter().all(|&w| w == NONE));
    }

    #[test]
    fn large_random_against_reference() {
        let mut f = Fib::new();
        let mut m = Model::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ps = Vec::new();
        for k in 0..30_000u32 {
            let v = next();
            let l = 8 + (v % 25) as u8;
            let a = mask32((v >> 32) as u32, l);
            assert_eq!(f.insert(Ipv4Addr::from(a), l, k), m.0.insert((a, l), k));
            ps.push((a, l));
        }
        assert_eq!(f.len(), m.0.len());
        for _ in 0..50_000 {
            let a = (next() >> 32) as u32;
            let got = f.lookup(Ipv4Addr::from(a)).map(|(p, l, v)| (p, l, *v));
            assert_eq!(got, m.lookup(a));
        }
        for (a, l) in ps.iter().step_by(2) {
            assert_eq!(f.remove(Ipv4Addr::from(*a), *l), m.0.remove(&(*a, *l)));
        }
        check_structure(&f);
        for _ in 0..50_000 {
            let a = (next() >> 32) as u32;
            let got = f.lookup(Ipv4Addr::from(a)).map(|(p, l, v)| (p, l, *v));
            assert_eq!(got, m.lookup(a));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u8, u32),
        Remove(u32, u8),
        Lookup(u32),
    }

    /// Addresses clustered in a few /8s, /16s and /24s so prefixes nest and
    /// collide at every level, plus some fully random ones.
    fn addr() -> impl Strategy<Value = u32> {
        prop_oneof![
            3 => (0u32..3, 0u32..3, 0u32..3, any::<u8>())
                .prop_map(|(a, b, c, d)| (a << 24) | (b << 16) | (c << 8) | u32::from(d)),
            1 => any::<u32>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (addr(), 0u8..=34, any::<u32>()).prop_map(|(a, l, v)| Op::Insert(a, l, v)),
            2 => (addr(), 0u8..=34).prop_map(|(a, l)| Op::Remove(a, l)),
            3 => addr().prop_map(Op::Lookup),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_naive_model(ops in prop::collection::vec(op(), 1..150)) {
            let mut f = Fib::new();
            let mut m = Model::default();
            for op in ops {
                match op {
                    Op::Insert(a, l, v) => {
                        let l2 = l.min(32);
                        let p = mask32(a, l2);
                        prop_assert_eq!(f.insert(Ipv4Addr::from(a), l, v), m.0.insert((p, l2), v));
                    }
                    Op::Remove(a, l) => {
                        let l2 = l.min(32);
                        let p = mask32(a, l2);
                        prop_assert_eq!(f.remove(Ipv4Addr::from(a), l), m.0.remove(&(p, l2)));
                    }
                    Op::Lookup(a) => {
                        let got = f.lookup(Ipv4Addr::from(a)).map(|(p, l, v)| (p, l, *v));
                        prop_assert_eq!(got, m.lookup(a));
                    }
                }
                prop_assert_eq!(f.len(), m.0.len());
            }
            check_structure(&f);
            let mut all: Vec<_> = f.iter().map(|(p, l, v)| ((u32::from(p), l), *v)).collect();
            all.sort();
            let want: Vec<_> = m.0.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(all, want);
            for ((p, l), v) in &m.0 {
                prop_assert_eq!(f.get(Ipv4Addr::from(*p), *l), Some(v));
            }
            // Every slot boundary of the clustered region agrees.
            for a in 0u32..3 {
                for b in 0u32..3 {
                    for c in 0u32..3 {
                        for d in [0u32, 1, 63, 64, 127, 128, 200, 255] {
                            let x = (a << 24) | (b << 16) | (c << 8) | d;
                            let got = f.lookup(Ipv4Addr::from(x)).map(|(p, l, v)| (p, l, *v));
                            prop_assert_eq!(got, m.lookup(x));
                        }
                    }
                }
            }
        }
    }
}
