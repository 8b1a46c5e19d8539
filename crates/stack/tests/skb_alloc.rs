//! Steady state allocates nothing: 100,000 packets through
//! alloc → reserve → put → push → pull → clone → free, counted by a global
//! allocator that counts this thread's heap allocations.

mod common;

use common::counted;
use netpath::skb::SkbPool;

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
