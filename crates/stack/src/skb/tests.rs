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

// ---- GSO: skb_gso_segment ----------------------------------------------

const GSO_SRC: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 1);
const GSO_DST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 2);
/// TCP header with NOP, NOP, timestamps (12 option bytes).
const GSO_THL: usize = 32;
const TH_FIN: u8 = 0x01;
const TH_PSH: u8 = 0x08;
const TH_ACK: u8 = 0x10;
const TH_CWR: u8 = 0x80;

/// IPv4 (DF, TOS 0x10, TTL 64) + TCP (with a timestamp option) carrying
/// `payload`, as TCP hands a GSO skb down. The TCP checksum field holds junk:
/// segmentation must overwrite it.
fn gso_l3(ip_proto: u8, id: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let tot = (20 + GSO_THL + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0x10]);
    f.extend_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x40, 0x00, 64, ip_proto, 0, 0]);
    f.extend_from_slice(&GSO_SRC.octets());
    f.extend_from_slice(&GSO_DST.octets());
    let c = netpath_wire::checksum::checksum(&f[..20]);
    f[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    f.extend_from_slice(&[
        ((GSO_THL / 4) as u8) << 4,
        flags,
        0xff,
        0xff,
        0xde,
        0xad,
        0,
        0,
    ]);
    f.extend_from_slice(&[1, 1, 8, 10, 0xa1, 0xa2, 0xa3, 0xa4, 0xb1, 0xb2, 0xb3, 0xb4]);
    f.extend_from_slice(payload);
    f
}

/// The same behind an Ethernet header.
fn gso_frame(id: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&gso_l3(6, id, seq, flags, payload));
    f
}

fn gso_payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// A GSO skb over `bytes` after 64 bytes of headroom, headers at
/// `mac` (if any), `nh` and `th` bytes after data.
fn gso_skb(p: &SkbPool, bytes: &[u8], mac: Option<usize>, nh: usize, th: usize) -> Skb {
    let mut skb = p.alloc_from(64, bytes).unwrap();
    if let Some(m) = mac {
        skb.set_mac_header(m).unwrap();
    }
    skb.set_network_header(nh).unwrap();
    skb.set_transport_header(th).unwrap();
    skb.meta.gso_size = 100;
    skb
}

/// The TCP checksum of `tcp` (header and payload, checksum field
/// included) against the pseudo-header: 0 when right.
fn tcp_check(tcp: &[u8]) -> u16 {
    let mut c =
        netpath_wire::checksum::Checksum::pseudo_header_v4(GSO_SRC, GSO_DST, 6, tcp.len() as u16);
    c.add_bytes(tcp);
    c.finish()
}

#[test]
fn gso_segment_fixes_up_every_segment_of_a_tcp_skb() {
    let p = pool();
    let payload = gso_payload(350);
    let (id0, seq0) = (0xfffe_u16, 0xffff_ff00_u32); // both wrap
    let frame = gso_frame(id0, seq0, TH_ACK | TH_PSH | TH_FIN | TH_CWR, &payload);
    let mut skb = gso_skb(&p, &frame, Some(0), 14, 34);
    skb.meta.mark = 7;
    let hdr = 14 + 20 + GSO_THL;
    let mut out = Vec::new();
    skb_gso_segment(&skb, &p, &mut out).unwrap();
    assert_eq!(out.len(), 4);
    // The GSO skb itself is left as it was.
    assert_eq!(skb.data(), &frame[..]);
    assert_eq!(skb.meta.gso_size, 100);
    assert_eq!(out[0].id(), skb.id(), "the first segment keeps the skb id");
    for (i, seg) in out.iter_mut().enumerate() {
        let len = [100, 100, 100, 50][i];
        let d = seg.data().to_vec();
        assert_eq!(d.len(), hdr + len, "segment {i}");
        assert_eq!(d[..14], frame[..14], "Ethernet header, segment {i}");
        // IPv4: total length, consecutive id, fresh header checksum; the
        // rest as it was.
        let ip = &d[14..34];
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            20 + GSO_THL + len
        );
        assert_eq!(
            u16::from_be_bytes([ip[4], ip[5]]),
            id0.wrapping_add(i as u16)
        );
        assert!(netpath_wire::checksum::verify(ip), "IP checksum, seg {i}");
        assert_eq!(ip[..2], frame[14..16]);
        assert_eq!(ip[6..10], frame[20..24]);
        assert_eq!(ip[12..20], frame[26..34]);
        // TCP: sequence number, flags, options, payload slice.
        let tcp = &d[34..];
        assert_eq!(tcp[..4], frame[34..38], "ports");
        assert_eq!(
            u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            seq0.wrapping_add(100 * i as u32)
        );
        assert_eq!(tcp[8..13], frame[42..47], "ack, data offset");
        let want_flags = match i {
            0 => TH_ACK | TH_CWR,
            3 => TH_ACK | TH_PSH | TH_FIN,
            _ => TH_ACK,
        };
        assert_eq!(tcp[13], want_flags, "flags of segment {i}");
        assert_eq!(tcp[14..16], frame[48..50], "window");
        assert_eq!(tcp[20..GSO_THL], frame[54..66], "options");
        assert_eq!(d[hdr..], payload[100 * i..100 * i + len], "payload {i}");
        // Header offsets and metadata.
        let off = seg.data_offset();
        assert_eq!(seg.mac_header(), Some(off));
        assert_eq!(seg.network_header(), Some(off + 14));
        assert_eq!(seg.transport_header(), Some(off + 34));
        assert!(seg.tailroom() >= 4, "room for the FCS");
        assert_eq!(seg.meta.gso_size, 0);
        assert_eq!(seg.meta.mark, 7);
        assert!(!seg.is_gso());
        // The TCP checksum is left partial: the field holds the
        // pseudo-header sum of this segment's length.
        assert_eq!(
            seg.meta.ip_summed,
            ChecksumState::Partial {
                start: (off + 34) as u16,
                offset: 16
            }
        );
        let pseudo = netpath_wire::checksum::Checksum::pseudo_header_v4(
            GSO_SRC,
            GSO_DST,
            6,
            (GSO_THL + len) as u16,
        );
        assert_eq!(u16::from_be_bytes([tcp[16], tcp[17]]), pseudo.sum());
        assert_ne!(tcp_check(tcp), 0, "not finished yet");
        assert!(seg.checksum_help());
        assert_eq!(seg.meta.ip_summed, ChecksumState::None);
        assert_eq!(tcp_check(&seg.data()[34..]), 0, "TCP checksum, seg {i}");
        // Nothing else moved.
        assert_eq!(seg.data()[..34], d[..34]);
        assert_eq!(seg.data()[34 + 18..], d[34 + 18..]);
    }
    let ids: std::collections::HashSet<u64> = out.iter().map(Skb::id).collect();
    assert_eq!(
        ids.len(),
        4,
        "segments after the first get ids of their own"
    );
    drop(out);
    drop(skb);
    assert_eq!(p.stats().in_use, 0);
}

#[test]
fn gso_segment_from_the_network_header_and_exact_multiples() {
    let p = pool();
    // Data at the IPv4 header (the MAC header already pulled away), 300
    // bytes in three full segments.
    let payload = gso_payload(300);
    let frame = gso_frame(7, 1000, TH_ACK | TH_PSH, &payload);
    let mut skb = gso_skb(&p, &frame, Some(0), 14, 34);
    skb.pull(14).unwrap();
    let mut out = Vec::new();
    skb_gso_segment(&skb, &p, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    for (i, seg) in out.iter_mut().enumerate() {
        let d = seg.data();
        assert_eq!(d.len(), 20 + GSO_THL + 100);
        assert_eq!(d[..2], frame[14..16], "starts at the IPv4 header");
        assert_eq!(u16::from_be_bytes([d[4], d[5]]), 7 + i as u16);
        assert!(netpath_wire::checksum::verify(&d[..20]));
        assert_eq!(
            u32::from_be_bytes([d[24], d[25], d[26], d[27]]),
            1000 + 100 * i as u32
        );
        let want = if i == 2 { TH_ACK | TH_PSH } else { TH_ACK };
        assert_eq!(d[33], want);
        assert_eq!(d[20 + GSO_THL..], payload[100 * i..100 * (i + 1)]);
        let off = seg.data_offset();
        assert_eq!(seg.mac_header(), None, "the MAC header was before data");
        assert_eq!(seg.network_header(), Some(off));
        assert_eq!(seg.transport_header(), Some(off + 20));
        assert_eq!(
            seg.meta.ip_summed,
            ChecksumState::Partial {
                start: (off + 20) as u16,
                offset: 16
            }
        );
        assert!(seg.checksum_help());
        assert_eq!(tcp_check(&seg.data()[20..]), 0);
    }
    // One segment's worth: one segment, every flag kept on it.
    let flags = TH_ACK | TH_PSH | TH_FIN | TH_CWR;
    let frame = gso_frame(9, 5, flags, &payload[..80]);
    let skb = gso_skb(&p, &frame, Some(0), 14, 34);
    let mut out = Vec::new();
    skb_gso_segment(&skb, &p, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let d = out[0].data();
    assert_eq!(d.len(), frame.len());
    assert_eq!(d[14 + 20 + 13], flags);
    assert_eq!(d[14 + 2..14 + 6], frame[14 + 2..14 + 6], "length and id");
    assert_eq!(out[0].id(), skb.id());
}

#[test]
fn gso_segment_refuses_what_it_cannot_cut() {
    let p = pool();
    let payload = gso_payload(250);
    let frame = gso_frame(1, 1, TH_ACK, &payload);
    // Segments `skb` (then drops it): nothing may be appended on failure.
    let cut = |skb: Skb| {
        let mut out = Vec::new();
        let r = skb_gso_segment(&skb, &p, &mut out);
        assert!(out.is_empty() || r.is_ok(), "{r:?}: {out:?}");
        r
    };
    // No network header.
    let mut skb = p.alloc_from(64, &frame).unwrap();
    skb.meta.gso_size = 100;
    skb.set_transport_header(34).unwrap();
    assert_eq!(cut(skb), Err(GsoError::NoHeaders));
    // No transport header.
    let mut skb = p.alloc_from(64, &frame).unwrap();
    skb.meta.gso_size = 100;
    skb.set_network_header(14).unwrap();
    assert_eq!(cut(skb), Err(GsoError::NoHeaders));
    // Headers behind data (already pulled).
    let mut skb = gso_skb(&p, &frame, Some(0), 14, 34);
    skb.pull(40).unwrap();
    assert_eq!(cut(skb), Err(GsoError::NoHeaders));
    // UDP is not TCP.
    let udp = gso_l3(17, 1, 1, TH_ACK, &payload);
    assert_eq!(
        cut(gso_skb(&p, &udp, None, 0, 20)),
        Err(GsoError::Malformed)
    );
    // Not IPv4.
    let mut v6 = gso_l3(6, 1, 1, TH_ACK, &payload);
    v6[0] = 0x65;
    assert_eq!(cut(gso_skb(&p, &v6, None, 0, 20)), Err(GsoError::Malformed));
    // A transport header that is not where the IPv4 header length says.
    let l3 = gso_l3(6, 1, 1, TH_ACK, &payload);
    assert_eq!(cut(gso_skb(&p, &l3, None, 0, 24)), Err(GsoError::Malformed));
    // A TCP data offset beyond the data.
    let mut short = gso_l3(6, 1, 1, TH_ACK, &[]);
    short.truncate(20 + 24);
    assert_eq!(
        cut(gso_skb(&p, &short, None, 0, 20)),
        Err(GsoError::Malformed)
    );
    // The well-formed one does segment (the cases above differ from it
    // only in what they say is wrong).
    assert_eq!(cut(gso_skb(&p, &frame, Some(0), 14, 34)), Ok(()));
    assert_eq!(cut(gso_skb(&p, &l3, None, 0, 20)), Ok(()));
    assert_eq!(p.stats().in_use, 0);
}

#[test]
fn gso_segment_reports_a_pool_that_refuses() {
    let p = SkbPool::new(PoolConfig {
        max_in_use: 2,
        ..PoolConfig::default()
    });
    let frame = gso_frame(1, 1, TH_ACK, &gso_payload(300));
    let skb = gso_skb(&p, &frame, Some(0), 14, 34);
    let mut out = Vec::new();
    // The GSO skb holds one buffer, the first segment the second.
    assert_eq!(
        skb_gso_segment(&skb, &p, &mut out),
        Err(GsoError::Skb(SkbError::NoMem))
    );
    assert_eq!(out.len(), 1);
    drop(out);
    drop(skb);
    assert_eq!(p.stats().in_use, 0);
}

// ---- pool: size classes and the owner thread's free lists --------------

#[test]
fn pool_in_use_balances_across_threads() {
    let p = pool();
    // The first allocation makes this thread the pool's owner.
    let keep = p.alloc(100).unwrap();
    assert_eq!(p.stats().in_use, 1);
    // Allocated here, dropped on another thread.
    let a = p.alloc(100).unwrap();
    assert_eq!(p.stats().in_use, 2);
    std::thread::spawn(move || drop(a)).join().unwrap();
    let s = p.stats();
    assert_eq!((s.in_use, s.free, s.heap_allocs), (1, 1, 2), "{s:?}");
    // Allocated on another thread (reusing that buffer), dropped here.
    let p2 = p.clone();
    let b = std::thread::spawn(move || p2.alloc(100).unwrap())
        .join()
        .unwrap();
    let s = p.stats();
    assert_eq!((s.in_use, s.free, s.recycled), (2, 0, 1), "{s:?}");
    drop(b);
    assert_eq!(p.stats().in_use, 1);
    drop(keep);
    let s = p.stats();
    assert_eq!((s.in_use, s.free, s.heap_allocs), (0, 2, 2), "{s:?}");
    // Many rounds of each way, with buffers from the owner's own list:
    // the count stays exact at every step.
    let mut held = Vec::new();
    for round in 0..50u64 {
        let mine = p.alloc(100).unwrap();
        held.push(p.alloc(100).unwrap());
        assert_eq!(p.stats().in_use, round + 2);
        std::thread::spawn(move || drop(mine)).join().unwrap();
        assert_eq!(p.stats().in_use, round + 1, "round {round}");
        let p2 = p.clone();
        let theirs = std::thread::spawn(move || p2.alloc(100).unwrap())
            .join()
            .unwrap();
        assert_eq!(p.stats().in_use, round + 2);
        drop(theirs);
        assert_eq!(p.stats().in_use, round + 1, "round {round}");
    }
    // Half of what is held dropped on another thread, half here.
    let other: Vec<Skb> = held.drain(25..).collect();
    std::thread::spawn(move || drop(other)).join().unwrap();
    assert_eq!(p.stats().in_use, 25);
    drop(held);
    let s = p.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(u64::try_from(s.free).unwrap(), s.heap_allocs, "{s:?}");
    assert_eq!(s.failed, 0);
}

#[test]
fn pool_reuses_a_freed_buffer_of_the_same_class() {
    let p = pool();
    let cfg = p.config();
    // Small: the buffer freed on the owner thread is the next one handed
    // out (its old bytes are still there).
    let mut a = p.alloc(100).unwrap();
    assert_eq!(a.end(), cfg.small_size);
    a.put_slice(&[0xab, 0xcd]).unwrap();
    drop(a);
    let s0 = p.stats();
    assert_eq!((s0.heap_allocs, s0.recycled, s0.free), (1, 0, 1));
    let mut b = p.alloc(cfg.small_size).unwrap();
    assert_eq!(b.end(), cfg.small_size);
    assert_eq!(b.put(2).unwrap(), &[0xab, 0xcd], "the same buffer");
    let s1 = p.stats();
    assert_eq!((s1.heap_allocs, s1.recycled, s1.free), (1, 1, 0));
    // Medium: a free small buffer does not serve it.
    drop(b);
    let mut m = p.alloc(10_000).unwrap();
    assert_eq!(m.end(), cfg.medium_size);
    assert_eq!((p.stats().heap_allocs, p.stats().free), (2, 1));
    m.put_slice(&[0x5a]).unwrap();
    drop(m);
    let mut m2 = p.alloc(cfg.small_size + 1).unwrap();
    assert_eq!(m2.end(), cfg.medium_size);
    assert_eq!(m2.put(1).unwrap(), &[0x5a]);
    assert_eq!((p.stats().heap_allocs, p.stats().recycled), (2, 2));
    // Large.
    let mut l = p.alloc(60_000).unwrap();
    assert_eq!(l.end(), cfg.large_size);
    assert_eq!(p.stats().heap_allocs, 3);
    l.put_slice(&[0x77]).unwrap();
    drop(l);
    let mut l2 = p.alloc(cfg.medium_size + 1).unwrap();
    assert_eq!(l2.end(), cfg.large_size);
    assert_eq!(l2.put(1).unwrap(), &[0x77]);
    let mut l3 = p.alloc(cfg.large_size).unwrap();
    assert_eq!(l3.end(), cfg.large_size);
    assert_ne!(l3.put(1).unwrap(), &[0x77], "a second large buffer");
    let s = p.stats();
    assert_eq!((s.heap_allocs, s.recycled, s.in_use), (4, 3, 3), "{s:?}");
    drop((m2, l2, l3));
    let s = p.stats();
    assert_eq!((s.in_use, s.free), (0, 4), "{s:?}");
    // A buffer freed on another thread is reused by the owner too.
    let x = p.alloc(10_000).unwrap();
    let heap = p.stats().heap_allocs;
    std::thread::spawn(move || drop(x)).join().unwrap();
    let recycled = p.stats().recycled;
    let y = p.alloc(10_000).unwrap();
    assert_eq!(y.end(), cfg.medium_size);
    let s = p.stats();
    assert_eq!((s.heap_allocs, s.recycled), (heap, recycled + 1), "{s:?}");
}

#[test]
fn pool_medium_class_follows_its_config() {
    let p = SkbPool::new(PoolConfig {
        small_size: 1000,
        medium_size: 5000,
        large_size: 20_000,
        ..PoolConfig::default()
    });
    let sizes: Vec<usize> = [1, 1000, 1001, 5000, 5001, 20_000]
        .iter()
        .map(|&n| p.alloc(n).unwrap().end())
        .collect();
    assert_eq!(sizes, [1000, 1000, 5000, 5000, 20_000, 20_000]);
    assert_eq!(
        p.alloc(20_001).unwrap_err(),
        SkbError::TooLarge {
            size: 20_001,
            max: 20_000
        }
    );
    // A medium size outside small..=large is kept within them.
    let q = SkbPool::new(PoolConfig {
        small_size: 1000,
        medium_size: 100,
        large_size: 20_000,
        ..PoolConfig::default()
    });
    assert_eq!(q.config().medium_size, 1000);
    let r = SkbPool::new(PoolConfig {
        small_size: 1000,
        medium_size: 50_000,
        large_size: 20_000,
        ..PoolConfig::default()
    });
    assert_eq!(r.config().medium_size, 20_000);
}

#[test]
fn pool_ceiling_holds_across_classes_and_threads() {
    let p = SkbPool::new(PoolConfig {
        max_in_use: 3,
        ..PoolConfig::default()
    });
    let a = p.alloc(100).unwrap();
    let b = p.alloc(10_000).unwrap();
    let c = p.alloc(60_000).unwrap();
    for size in [100, 10_000, 60_000] {
        assert_eq!(p.alloc(size).unwrap_err(), SkbError::NoMem, "{size}");
    }
    // Another thread is held to the same ceiling.
    let p2 = p.clone();
    let r = std::thread::spawn(move || p2.alloc(100).map(drop))
        .join()
        .unwrap();
    assert_eq!(r, Err(SkbError::NoMem));
    let s = p.stats();
    assert_eq!((s.in_use, s.failed), (3, 4), "{s:?}");
    // Freed on another thread: room for one more, and only one.
    std::thread::spawn(move || drop(b)).join().unwrap();
    assert_eq!(p.stats().in_use, 2);
    let d = p.alloc(10_000).unwrap();
    assert_eq!(p.stats().recycled, 1, "b's buffer");
    assert_eq!(p.alloc(100).unwrap_err(), SkbError::NoMem);
    // Allocated on another thread, freed here.
    drop(a);
    let p2 = p.clone();
    let e = std::thread::spawn(move || p2.alloc(100).unwrap())
        .join()
        .unwrap();
    assert_eq!(p.alloc(100).unwrap_err(), SkbError::NoMem);
    drop(e);
    let f = p.alloc(100).unwrap();
    assert_eq!(p.stats().in_use, 3);
    drop((c, d, f));
    let s = p.stats();
    assert_eq!((s.in_use, s.failed), (0, 6), "{s:?}");
}
