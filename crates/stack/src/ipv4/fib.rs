//! The FIB's longest-prefix-match structure (`net/ipv4/fib_trie.c`): one per
//! routing table, mapping prefixes to route lists.
//!
//! (A plain implementation with the final API; the fast trie replaces it.)

use core::net::Ipv4Addr;

/// `addr` with all but the first `len` bits cleared.
pub fn mask(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
    let a = u32::from(addr);
    let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
    Ipv4Addr::from(a & m)
}

/// Prefix → value, with longest-prefix-match lookup.
#[derive(Debug, Clone)]
pub struct Fib<V> {
    entries: Vec<(u32, u8, V)>,
}

impl<V> Default for Fib<V> {
    fn default() -> Self {
        Fib { entries: Vec::new() }
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
        let p = u32::from(mask(prefix, len));
        match self.entries.iter_mut().find(|(q, l, _)| *q == p && *l == len) {
            Some(e) => Some(core::mem::replace(&mut e.2, value)),
            None => {
                self.entries.push((p, len, value));
                None
            }
        }
    }

    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        let len = len.min(32);
        let p = u32::from(mask(prefix, len));
        let i = self.entries.iter().position(|(q, l, _)| *q == p && *l == len)?;
        Some(self.entries.swap_remove(i).2)
    }

    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<&V> {
        let len = len.min(32);
        let p = u32::from(mask(prefix, len));
        self.entries.iter().find(|(q, l, _)| *q == p && *l == len).map(|e| &e.2)
    }

    pub fn get_mut(&mut self, prefix: Ipv4Addr, len: u8) -> Option<&mut V> {
        let len = len.min(32);
        let p = u32::from(mask(prefix, len));
        self.entries.iter_mut().find(|(q, l, _)| *q == p && *l == len).map(|e| &mut e.2)
    }

    /// The longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<(Ipv4Addr, u8, &V)> {
        let a = u32::from(addr);
        self.entries
            .iter()
            .filter(|(p, l, _)| u32::from(mask(Ipv4Addr::from(a), *l)) == *p)
            .max_by_key(|(_, l, _)| *l)
            .map(|(p, l, v)| (Ipv4Addr::from(*p), *l, v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every prefix, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, &V)> {
        self.entries.iter().map(|(p, l, v)| (Ipv4Addr::from(*p), *l, v))
    }

    /// Heap bytes used by the structure (values' own heap not counted).
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<(u32, u8, V)>()
    }
}
