//! The simulator's event queue: a min-heap of `(time, sequence)` keys, so
//! that events due at the same instant run in the order they were scheduled
//! and a run is bit-for-bit repeatable.
//!
//! The heap holds small keys; the events themselves (which may own an skb)
//! sit in a slab whose slots are reused, so the steady state allocates
//! nothing.
//!
//! Most events are scheduled in time order (a zero-latency link delivers
//! "now", a fixed-latency link in sending order), so keys that are not
//! earlier than the last one queued go to a FIFO instead of the heap; `pop`
//! takes the smaller of the two heads. The order is the same (time, then
//! scheduling order) at O(1) per event on that path.

use core::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use super::link::Arrival;
use crate::time::Instant;

/// Something due at a point in virtual time.
// Boxing the skb would allocate per frame; the slots holding events are
// reused instead, so their size costs nothing per frame.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Event {
    /// A copy arrives at end `end` of link `link`.
    Deliver {
        link: usize,
        end: usize,
        arrival: Arrival,
    },
    /// A node's deadline.
    Poll { node: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl Ord for Key {
    fn cmp(&self, o: &Key) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Key) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Reverse<Key>>,
    /// Keys in increasing order, each scheduled after the one before.
    fifo: VecDeque<Key>,
    slots: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at: Instant, ev: Event) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                self.slots.push(Some(ev));
                (self.slots.len() - 1) as u32
            }
        };
        self.seq += 1;
        let key = Key {
            at,
            seq: self.seq,
            slot,
        };
        // seq grows with every push, so `at` alone decides whether the
        // FIFO stays sorted.
        if self.fifo.back().is_none_or(|b| b.at <= at) {
            self.fifo.push_back(key);
        } else {
            self.heap.push(Reverse(key));
        }
    }

    /// The earliest key of the two queues.
    fn peek_key(&self) -> Option<Key> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(&f), Some(&Reverse(h))) => Some(f.min(h)),
            (Some(&f), None) => Some(f),
            (None, Some(&Reverse(h))) => Some(h),
            (None, None) => None,
        }
    }

    /// When the next event is due.
    pub fn peek_time(&self) -> Option<Instant> {
        self.peek_key().map(|k| k.at)
    }

    /// The next event, if it is due at or before `limit`.
    pub fn pop_due(&mut self, limit: Instant) -> Option<(Instant, Event)> {
        loop {
            let key = self.peek_key()?;
            if key.at > limit {
                return None;
            }
            if self.fifo.front() == Some(&key) {
                self.fifo.pop_front();
            } else {
                self.heap.pop();
            }
            self.free.push(key.slot);
            if let Some(ev) = self.slots.get_mut(key.slot as usize).and_then(Option::take) {
                return Some((key.at, ev));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len() + self.fifo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ev: Event) -> usize {
        match ev {
            Event::Poll { node } => node,
            Event::Deliver { .. } => usize::MAX,
        }
    }

    #[test]
    fn earliest_first_ties_fifo_slots_reused() {
        let mut q = EventQueue::default();
        let t = Instant::from_nanos;
        q.push(t(5), Event::Poll { node: 0 });
        q.push(t(3), Event::Poll { node: 1 });
        q.push(t(5), Event::Poll { node: 2 });
        q.push(t(3), Event::Poll { node: 3 });
        assert_eq!(q.peek_time(), Some(t(3)));
        assert!(q.pop_due(t(2)).is_none());
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(t(10)))
            .map(|(at, e)| (at.as_nanos(), node(e)))
            .collect();
        assert_eq!(order, vec![(3, 1), (3, 3), (5, 0), (5, 2)]);
        assert_eq!(q.len(), 0);
        q.push(t(1), Event::Poll { node: 9 });
        assert_eq!(q.slots.len(), 4, "a freed slot is reused");
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn fifo_and_heap_merge_in_time_then_scheduling_order() {
        let mut q = EventQueue::default();
        let t = Instant::from_nanos;
        // In order (FIFO), then earlier ones (heap), then equal times.
        for (at, n) in [
            (2, 0),
            (4, 1),
            (4, 2),
            (1, 3),
            (4, 4),
            (3, 5),
            (2, 6),
            (9, 7),
        ] {
            q.push(t(at), Event::Poll { node: n });
        }
        assert!(!q.heap.is_empty() && !q.fifo.is_empty());
        assert_eq!(q.peek_time(), Some(t(1)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(t(8)))
            .map(|(at, e)| (at.as_nanos(), node(e)))
            .collect();
        assert_eq!(
            order,
            vec![(1, 3), (2, 0), (2, 6), (3, 5), (4, 1), (4, 2), (4, 4)]
        );
        assert_eq!(q.len(), 1, "the event at 9 waits");
    }
}
