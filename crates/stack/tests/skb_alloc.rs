//! Steady state allocates nothing: 100,000 packets through
//! alloc → reserve → put → push → pull → clone → free, counted by a global
//! allocator that counts this thread's heap allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use netpath::skb::SkbPool;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the only
// addition is a thread-local counter bump, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn bump() {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(|a| a.get()))
}

#[test]
fn hundred_thousand_packets_allocate_nothing() {
    let pool = SkbPool::default();
    let payload = [0xabu8; 1200];
    let cycle = |i: u32| {
        let mut skb = pool.alloc(1600).expect("alloc");
        skb.reserve(128).expect("reserve");
        skb.put_slice(&payload).expect("put");
        skb.push(20).expect("push tcp")[0] = i as u8;
        skb.reset_transport_header();
        skb.push(20).expect("push ip")[0] = 0x45;
        skb.reset_network_header();
        skb.push(14).expect("push eth");
        skb.reset_mac_header();
        // A tap's clone, freed first; then the receiver's pulls.
        let tap = skb.clone();
        drop(tap);
        skb.pull(14).expect("pull eth");
        skb.pull(20).expect("pull ip");
        skb.pull(20).expect("pull tcp");
        assert_eq!(skb.len(), 1200);
        skb.data()[0]
    };
    // Warm-up: the pool's free list and lock are created here.
    for i in 0..16 {
        cycle(i);
    }
    let (sum, allocs) = counted(|| {
        let mut s = 0u64;
        for i in 0..100_000 {
            s += u64::from(cycle(i));
        }
        s
    });
    assert_eq!(sum, 0xab * 100_000);
    assert_eq!(allocs, 0, "steady state must not allocate");
    let st = pool.stats();
    assert_eq!(st.in_use, 0);
    assert!(
        st.heap_allocs <= 2,
        "pool took {} buffers from the heap",
        st.heap_allocs
    );
    assert!(st.recycled >= 100_000);

    // The counter works: a cold pool does allocate.
    let (_, cold) = counted(|| SkbPool::default().alloc(100).map(|s| s.len()));
    assert!(cold > 0);
}
