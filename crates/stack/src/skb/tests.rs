use super::*;
use proptest::prelude::*;

fn pool() -> SkbPool {
    SkbPool::default()
}

#[test]
fn egress_walk_push_headers_into_headroom() {
    let p = pool();
    let mut skb = p.alloc(1500).unwrap();
    skb.reserve(128).unwrap();
    skb.put_slice(b"payload").unwrap();
    skb.push_slice(&[0x45; 20]).unwrap(); // "TCP"
    skb.reset_transport_header();
    skb.push_slice(&[0x46; 20]).unwrap(); // "IP"
    skb.reset_network_header();
    skb.push_slice(&[0x47; 14]).unwrap(); // "Ethernet"
    skb.reset_mac_header();
    assert_eq!(skb.len(), 7 + 20 + 20 + 14);
    assert_eq!(skb.headroom(), 128 - 54);
    assert_eq!(skb.mac_header(), Some(74));
    assert_eq!(skb.network_header(), Some(88));
    assert_eq!(skb.transport_header(), Some(108));
    assert_eq!(skb.mac_len(), Some(14));
    assert_eq!(&skb.transport_header_bytes()[20..], b"payload");
    assert_eq!(skb.data()[0], 0x47);
}

#[test]
fn ingress_walk_pull_keeps_headers_reachable() {
    let p = pool();
    let frame: Vec<u8> = (0..100u8).collect();
    let mut skb = p.alloc_from(64, &frame).unwrap();
    skb.reset_mac_header();
    skb.pull(14).unwrap();
    skb.reset_network_header();
    assert_eq!(skb.data()[0], 14);
    assert_eq!(skb.mac_header_bytes()[0], 0);
    assert_eq!(skb.mac_len(), Some(14));
    skb.trim(40).unwrap(); // IP total length shorter than the frame
    assert_eq!(skb.len(), 40);
    assert_eq!(skb.network_header_bytes().len(), 40);
}

#[test]
fn checked_operations_return_errors() {
    let p = pool();
    let mut skb = p.alloc(100).unwrap();
    assert_eq!(
        skb.push(1).unwrap_err(),
        SkbError::NoHeadroom {
            want: 1,
            headroom: 0
        }
    );
    skb.reserve(10).unwrap();
    skb.put_slice(&[1, 2, 3]).unwrap();
    assert_eq!(
        skb.pull(4).unwrap_err(),
        SkbError::PullPastTail { want: 4, len: 3 }
    );
    assert_eq!(
        skb.trim(5).unwrap_err(),
        SkbError::TrimGrows { want: 5, len: 3 }
    );
    assert_eq!(
        skb.reserve(1).unwrap_err(),
        SkbError::ReserveNotEmpty { len: 3 }
    );
    let room = skb.tailroom();
    assert_eq!(
        skb.put(room + 1).unwrap_err(),
        SkbError::NoTailroom {
            want: room + 1,
            tailroom: room
        }
    );
    assert!(matches!(
        skb.set_network_header(room + 100),
        Err(SkbError::HeaderOutOfRange { .. })
    ));
    // Nothing moved after the failures.
    assert_eq!(skb.data(), &[1, 2, 3]);
    assert_eq!(skb.headroom(), 10);
}

#[test]
fn clone_shares_and_write_unshares() {
    let p = pool();
    let mut a = p.alloc_from(32, b"hello world").unwrap();
    a.meta.mark = 7;
    let mut b = a.clone();
    assert!(a.shares_data_with(&b));
    assert!(a.is_cloned() && b.is_cloned());
    assert_eq!(b.meta.mark, 7);
    // Pulling is not a write: still shared.
    b.pull(6).unwrap();
    assert!(a.shares_data_with(&b));
    assert_eq!(b.data(), b"world");
    // Writing through b copies first; a still reads the old bytes.
    b.data_mut()[0] = b'W';
    assert!(!a.shares_data_with(&b));
    assert_eq!(a.data(), b"hello world");
    assert_eq!(b.data(), b"World");
    assert!(!a.is_cloned());
    // Pushing a header over shared data must not write into the original.
    let c = a.clone();
    a.push_slice(b">>").unwrap();
    assert_eq!(c.data(), b"hello world");
    assert_eq!(a.data(), b">>hello world");
}

#[test]
fn skb_copy_is_independent() {
    let p = pool();
    let mut a = p.alloc_from(16, b"abc").unwrap();
    a.reset_network_header();
    let mut b = a.copy().unwrap();
    assert!(!a.shares_data_with(&b));
    b.data_mut()[0] = b'X';
    assert_eq!(a.data(), b"abc");
    assert_eq!(b.network_header(), a.network_header());
}

#[test]
fn buffers_return_to_the_pool() {
    let p = pool();
    let a = p.alloc(100).unwrap();
    let b = a.clone();
    assert_eq!(p.stats().in_use, 1);
    drop(a);
    assert_eq!(p.stats().in_use, 1, "clone still holds the buffer");
    drop(b);
    let s = p.stats();
    assert_eq!((s.in_use, s.free, s.heap_allocs), (0, 1, 1));
    let _c = p.alloc(100).unwrap();
    let s = p.stats();
    assert_eq!((s.recycled, s.heap_allocs), (1, 1));
}

#[test]
fn pool_limits_are_typed_errors() {
    let p = SkbPool::new(PoolConfig {
        max_in_use: 2,
        ..PoolConfig::default()
    });
    let _a = p.alloc(10).unwrap();
    let _b = p.alloc(10).unwrap();
    assert_eq!(p.alloc(10).unwrap_err(), SkbError::NoMem);
    let max = p.config().large_size;
    assert_eq!(
        p.alloc(max + 1).unwrap_err(),
        SkbError::TooLarge { size: max + 1, max }
    );
    assert_eq!(p.stats().failed, 2);
    // Large class.
    drop(_a);
    let big = p.alloc(60_000).unwrap();
    assert_eq!(big.end(), p.config().large_size);
    assert_eq!(p.stats().in_use, 2);
}

/// One step of a random skb program.
#[derive(Debug, Clone)]
enum Op {
    Reserve(usize),
    Put(Vec<u8>),
    Push(Vec<u8>),
    Pull(usize),
    Trim(usize),
    CloneAndWrite(u8),
    SetNh(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..300).prop_map(Op::Reserve),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(Op::Put),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Op::Push),
        (0usize..200).prop_map(Op::Pull),
        (0usize..600).prop_map(Op::Trim),
        any::<u8>().prop_map(Op::CloneAndWrite),
        (0usize..3000).prop_map(Op::SetNh),
    ]
}

proptest! {
    /// The skb behaves like a model (`Vec` of the data, headroom count), keeps
    /// `head <= data <= tail <= end`, and a failed operation changes nothing.
    #[test]
    fn offsets_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let p = pool();
        let mut skb = p.alloc(1000).unwrap();
        let end = skb.end();
        let mut model: Vec<u8> = Vec::new();
        let mut headroom = 0usize;
        for op in ops {
            let before = (skb.headroom(), skb.len());
            let ok = match &op {
                Op::Reserve(n) => {
                    let ok = model.is_empty() && headroom + n <= end;
                    if ok { headroom += n; }
                    skb.reserve(*n).is_ok() == ok
                }
                Op::Put(b) => {
                    let ok = headroom + model.len() + b.len() <= end;
                    if ok { model.extend_from_slice(b); }
                    skb.put_slice(b).is_ok() == ok
                }
                Op::Push(b) => {
                    let ok = b.len() <= headroom;
                    if ok { headroom -= b.len(); model.splice(0..0, b.iter().copied()); }
                    skb.push_slice(b).is_ok() == ok
                }
                Op::Pull(n) => {
                    let ok = *n <= model.len();
                    if ok { headroom += n; model.drain(..*n); }
                    skb.pull(*n).is_ok() == ok
                }
                Op::Trim(n) => {
                    let ok = *n <= model.len();
                    if ok { model.truncate(*n); }
                    skb.trim(*n).is_ok() == ok
                }
                Op::CloneAndWrite(v) => {
                    let snapshot = skb.clone();
                    if !model.is_empty() {
                        skb.data_mut()[0] = *v;
                        prop_assert_eq!(snapshot.data()[0], model[0]);
                        model[0] = *v;
                    }
                    true
                }
                Op::SetNh(off) => {
                    let ok = headroom + off <= end;
                    let r = skb.set_network_header(*off);
                    if ok { prop_assert_eq!(skb.network_header(), Some(headroom + off)); }
                    r.is_ok() == ok
                }
            };
            prop_assert!(ok, "result mismatch for {:?} at {:?}", op, before);
            prop_assert_eq!(skb.data(), &model[..]);
            prop_assert_eq!(skb.headroom(), headroom);
            prop_assert_eq!(skb.headroom() + skb.len() + skb.tailroom(), end);
        }
        drop(skb);
        prop_assert_eq!(p.stats().in_use, 0);
    }
}

#[test]
fn header_offsets_far_past_the_buffer_are_errors_not_overflows() {
    let p = pool();
    let mut skb = p.alloc_from(16, b"abc").unwrap();
    // `data + offset` overflowed usize (a debug-build panic) before.
    for off in [usize::MAX, usize::MAX - 15, usize::MAX / 2] {
        assert_eq!(
            skb.set_mac_header(off),
            Err(SkbError::HeaderOutOfRange {
                offset: 16usize.saturating_add(off),
                end: skb.end()
            })
        );
        assert!(skb.set_network_header(off).is_err());
        assert!(skb.set_transport_header(off).is_err());
    }
    assert_eq!(
        (
            skb.mac_header(),
            skb.network_header(),
            skb.transport_header()
        ),
        (None, None, None)
    );
    // The last valid offset is the end of the buffer.
    let last = skb.end() - 16;
    skb.set_transport_header(last).unwrap();
    assert_eq!(skb.transport_header(), Some(skb.end()));
    assert!(skb.transport_header_bytes().is_empty());
}

#[test]
fn alloc_from_with_absurd_headroom_is_too_large() {
    let p = pool();
    let max = p.config().large_size;
    assert_eq!(
        p.alloc_from(usize::MAX, b"xy").unwrap_err(),
        SkbError::TooLarge {
            size: usize::MAX,
            max
        }
    );
    assert_eq!(p.stats().in_use, 0);
}

#[test]
fn pool_buffer_sizes_are_capped_to_32_bit_offsets() {
    let p = SkbPool::new(PoolConfig {
        small_size: usize::MAX,
        large_size: usize::MAX,
        ..PoolConfig::default()
    });
    assert_eq!(p.config().small_size, PoolConfig::MAX_BUFFER);
    assert_eq!(p.config().large_size, PoolConfig::MAX_BUFFER);
    assert_eq!(PoolConfig::MAX_BUFFER, u32::MAX as usize - 1);
}

#[test]
fn copy_on_write_past_the_ceiling_is_counted_and_gives_back_evenly() {
    let p = SkbPool::new(PoolConfig {
        max_in_use: 2,
        ..PoolConfig::default()
    });
    let a = p.alloc_from(8, b"shared").unwrap();
    let mut b = a.clone();
    let c = p.alloc(10).unwrap();
    assert_eq!(p.stats().in_use, 2);
    // The pool refuses, but the write must not reach a's bytes: b gets a
    // buffer past the ceiling, which is counted like any other.
    b.data_mut()[0] = b'S';
    assert_eq!(a.data(), b"shared");
    assert_eq!(b.data(), b"Shared");
    assert!(!a.shares_data_with(&b));
    let s = p.stats();
    // Before: in_use stayed 2 with 3 buffers out, and dropping b made it 1,
    // so the ceiling let a third buffer through while a and c were held.
    assert_eq!((s.in_use, s.heap_allocs, s.failed), (3, 3, 1));
    drop(b);
    assert_eq!(p.stats().in_use, 2);
    assert_eq!(p.alloc(10).unwrap_err(), SkbError::NoMem);
    drop((a, c));
    let s = p.stats();
    assert_eq!((s.in_use, s.free), (0, 3));
    // And the ceiling holds again: two, not more.
    let _x = p.alloc(10).unwrap();
    let _y = p.alloc(10).unwrap();
    assert_eq!(p.alloc(10).unwrap_err(), SkbError::NoMem);
}

#[test]
fn unshare_and_copy_account_their_buffers() {
    let p = pool();
    let a = p.alloc_from(8, b"abc").unwrap();
    let mut b = a.clone();
    b.unshare().unwrap();
    assert!(!a.shares_data_with(&b));
    assert_eq!(p.stats().in_use, 2);
    let c = a.copy().unwrap();
    assert_ne!(c.id(), a.id(), "skb_copy makes a new skb");
    assert_eq!(b.id(), a.id(), "unshare keeps the skb's identity");
    assert_eq!(p.stats().in_use, 3);
    drop((a, b, c));
    let s = p.stats();
    assert_eq!((s.in_use, s.free), (0, 3));
}

#[test]
fn clones_dropped_on_two_threads_at_once_return_the_buffer() {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    // Each round, two threads drop the two clones of one buffer at the same
    // moment (both spin on a shared round counter). Both used to be able to
    // see the other clone still alive, so that neither gave the buffer back
    // and `in_use` never came down.
    let p = pool();
    let rounds: u64 = 20_000;
    let ready = AtomicU64::new(0);
    let go = AtomicU64::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Skb>(1);
    std::thread::scope(|s| {
        let (ready, go) = (&ready, &go);
        s.spawn(move || {
            for (round, skb) in (1..).zip(rx.iter()) {
                ready.store(round, SeqCst);
                while go.load(SeqCst) < round {
                    std::hint::spin_loop();
                }
                drop(skb);
            }
        });
        for round in 1..=rounds {
            let a = p.alloc_from(0, &[1; 64]).unwrap();
            tx.send(a.clone()).unwrap();
            while ready.load(SeqCst) < round {
                std::hint::spin_loop();
            }
            go.store(round, SeqCst);
            drop(a);
        }
        drop(tx);
    });
    let s = p.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.heap_allocs, u64::try_from(s.free).unwrap());
    assert_eq!(s.recycled + s.heap_allocs, rounds);
}

#[test]
fn expand_head_moves_data_and_headers() {
    let p = pool();
    let mut skb = p.alloc(100).unwrap();
    skb.reserve(4).unwrap();
    skb.put_slice(b"0123456789abcdef").unwrap();
    skb.reset_mac_header();
    skb.pull(6).unwrap();
    skb.reset_network_header();
    let clone = skb.clone();
    assert_eq!(
        skb.push(20).unwrap_err(),
        SkbError::NoHeadroom {
            want: 20,
            headroom: 10
        }
    );
    skb.cow_head(32).unwrap();
    assert!(skb.headroom() >= 32);
    assert!(!skb.shares_data_with(&clone));
    assert_eq!(skb.data(), b"6789abcdef");
    assert_eq!(skb.mac_header_bytes(), b"0123456789abcdef");
    assert_eq!(skb.mac_len(), Some(6));
    skb.push_slice(&[0xee; 20]).unwrap();
    assert_eq!(clone.data(), b"6789abcdef");
    let room = skb.tailroom();
    skb.ensure_tailroom(room + 10).unwrap();
    assert!(skb.tailroom() >= room + 10);
    assert_eq!(&skb.data()[20..], b"6789abcdef");
    drop((skb, clone));
    assert_eq!(p.stats().in_use, 0);
}

#[test]
fn skb_fits_in_128_bytes() {
    // Skbs move by value through every stage; at 128 bytes or less a move
    // is a few inline vector copies instead of a call to memcpy.
    assert!(
        core::mem::size_of::<Skb>() <= 128,
        "{}",
        core::mem::size_of::<Skb>()
    );
}
