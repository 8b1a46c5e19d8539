//! `sk_wmem_queued` charges each of Linux's skbs its head besides the
//! payload: a short write stops where Linux's does (the memory check at
//! each new skb counts the heads already queued), and the heads are freed
//! with their data, whatever the acknowledgments, losses and
//! retransmissions in between.

mod tcpnet;

use netpath::sim::LinkConfig;
use netpath::sock::{Errno, SockId};
use netpath::tcp::TcpOpt;
use netpath::time::Duration;
use tcpnet::*;

/// A's socket, connected to a listener on B whose receive buffer (so its
/// window: about 2500 bytes) makes A's skbs one MSS each (`size_goal` is
/// half the peer's largest window, at least an MSS); A's send buffer is
/// Linux's minimum (4608).
fn small_windows(n: &mut Net, port: u16) -> (SockId, SockId) {
    let l = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), port, 8).unwrap();
    n.with_b(|st, _| st.tcp_setsockopt(l, TcpOpt::RcvBuf(2500)))
        .unwrap();
    let c = n.ba.socket(&mut n.t.sim);
    n.ba.connect(&mut n.t.sim, c, ip(B), port).unwrap();
    let (s, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::SndBuf(1)))
        .unwrap();
    (c, s)
}

/// What a non-blocking write of 10,000 bytes takes.
fn write_once(n: &mut Net, c: SockId) -> usize {
    n.with_a(|st, now| st.tcp_send(now, c, &[5; 10_000], Default::default()))
        .unwrap()
}

/// Runs until A has nothing unacknowledged, B reading all the while.
fn drain(n: &mut Net, c: SockId, s: SockId) {
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..20_000 {
        while let Ok(k) = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
            if k == 0 {
                break;
            }
        }
        if n.sa().tcp_outq(c) == Ok(0) {
            return;
        }
        n.run_ms(5);
    }
    panic!("not all acknowledged");
}

#[test]
fn a_short_write_stops_at_linuxs_count() {
    let mut n = Net::new(51, LinkConfig::default());
    let (c, _s) = small_windows(&mut n, 7101);
    let mss = n.sa().tcp_info(c).unwrap().snd_mss as usize;
    // Payload alone would take four MSS skbs into 4608 bytes; with a
    // head of 896 each, the third new skb finds the buffer full.
    assert_eq!(write_once(&mut n, c), 2 * mss);
    assert_eq!(
        n.with_a(|st, now| st.tcp_send(now, c, &[1; 100], Default::default())),
        Err(Errno::EAGAIN)
    );
}

fn heads_are_freed(link: LinkConfig, port: u16, small: bool) {
    let mut n = Net::new(52, link);
    let (c, s) = if small {
        small_windows(&mut n, port)
    } else {
        // Large windows: skbs of many segments, acknowledged a few
        // segments at a time (the head moves on with the rest).
        let (c, s, _) = n.connected(port);
        n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::SndBuf(1)))
            .unwrap();
        (c, s)
    };
    let first = write_once(&mut n, c);
    assert!(first > 0);
    for _ in 0..30 {
        drain(&mut n, c, s);
        let _ = write_once(&mut n, c);
    }
    drain(&mut n, c, s);
    // Nothing left charged: the same write as on the fresh socket.
    assert_eq!(write_once(&mut n, c), first);
}

#[test]
fn skb_heads_are_freed_with_their_data() {
    heads_are_freed(LinkConfig::default(), 7102, true);
}

#[test]
fn heads_of_skbs_of_many_segments_move_on_and_are_freed() {
    heads_are_freed(
        LinkConfig {
            latency: Duration::from_millis(2),
            ..LinkConfig::default()
        },
        7104,
        false,
    );
}

#[test]
fn skb_heads_are_freed_through_losses() {
    heads_are_freed(
        LinkConfig {
            latency: Duration::from_millis(2),
            loss: 0.1,
            ..LinkConfig::default()
        },
        7103,
        true,
    );
}
