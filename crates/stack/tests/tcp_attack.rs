//! Attacks from the wire: a SYN flood with spoofed sources does not stop an
//! established flow nor a new legitimate connection (SYN cookies), with
//! bounded memory; blind RST, SYN, ACK and data injection with wrong
//! sequence numbers is ignored or challenged as RFC 5961 says.

mod tcpnet;

use core::net::Ipv4Addr;

use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::TcpState;
use netpath::time::Duration;
use tcpnet::*;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(1),
        ..LinkConfig::default()
    }
}

/// A spoofed source in 198.51.100.0/24 (documentation range).
fn spoofed(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, (i % 250 + 1) as u8)
}

#[test]
fn syn_flood_with_spoofed_sources_does_not_stop_service() {
    let mut n = Net::new(1, link());
    // B answers the spoofed sources through A (which drops them).
    let r = netpath::ipv4::route::Route::unicast(ip("0.0.0.0"), 0, Some(ip(A)), Some(n.b.nics[0]));
    n.with_b(|s, _| s.route_add(r)).unwrap();
    let (c, s, l) = n.connected(80);
    // 20 000 SYNs in 2 s from 250 spoofed addresses and random ports.
    let base = n.now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    for i in 0..20_000u32 {
        let f = tcp_frame(
            (spoofed(i), 1024 + (i.wrapping_mul(7919) % 60000) as u16),
            (ip(B), 80),
            i.wrapping_mul(2_654_435_761),
            None,
            0x02,
            64240,
            &[],
        );
        n.inject(&f);
        if i % 100 == 0 {
            // The established flow keeps going during the flood.
            let _ = n.with_a(|st, now| st.tcp_send(now, c, &[i as u8; 1000], Default::default()));
            n.run(Duration::from_millis(10));
            while let Ok(k) = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
        }
    }
    let flood_time = n.now().saturating_since(base);
    n.run(Duration::from_millis(50));
    while let Ok(k) = n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)) {
        if k == 0 {
            break;
        }
        got.extend_from_slice(&buf[..k]);
    }
    assert!(flood_time.as_millis() <= 2010);
    assert_eq!(
        got.len(),
        200 * 1000,
        "the established flow delivered everything"
    );
    let ext = *n.sb().tcp_ext_mib();
    // The SYN queue (backlog 128) filled, then cookies took over.
    assert!(ext.syncookies_sent > 19_000, "{ext:?}");
    assert!(ext.tcp_req_q_full_do_cookies > 19_000);
    // Memory stays bounded: at most the backlog's worth of half-open
    // sockets, however many SYNs came.
    let socks = n.sb().tcp_socket_count();
    assert!(socks <= 2 + 129, "{socks} sockets");
    // A new legitimate connection completes during the flood (by cookie).
    let c2 = n.ba.socket(&mut n.t.sim);
    n.ba.connect(&mut n.t.sim, c2, ip(B), 80).unwrap();
    n.ba.write_all(&mut n.t.sim, c2, b"hello").unwrap();
    let (s2, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    let mut b5 = [0u8; 5];
    assert_eq!(n.bb.read(&mut n.t.sim, s2, &mut b5), Ok(5));
    assert_eq!(&b5, b"hello");
    assert!(n.sb().tcp_ext_mib().syncookies_recv >= 1);
    // The half-open requests expire after their SYN-ACK retries
    // (1+2+4+8+16+32 s) and memory returns.
    n.run(Duration::from_secs(70));
    assert!(
        n.sb().tcp_socket_count() <= 4,
        "{}",
        n.sb().tcp_socket_count()
    );
}

/// The current (seq B expects next from A, seq A expects next from B).
fn seqs(n: &Net) -> (u32, u32) {
    let segs = n.segments();
    let last_a = segs.iter().rev().find(|w| w.by_a() && w.is_ack()).unwrap();
    (last_a.seq.wrapping_add(last_a.len as u32), last_a.ack)
}

#[test]
fn blind_rst_and_syn_injection_are_challenged_not_obeyed() {
    let mut n = Net::new(2, link());
    let (c, s, _) = n.connected(80);
    n.ba.write_all(&mut n.t.sim, c, b"x").unwrap();
    n.run_ms(10);
    let (seq, ack) = seqs(&n);
    let (pa, pb) = ((ip(A), n.segments()[0].sport), (ip(B), 80));
    let outs = n.sb().tcp_mib().out_segs;
    // RST in the window but not at rcv_nxt: a challenge ACK (RFC 5961 §3.2).
    n.inject(&tcp_frame(
        pa,
        pb,
        seq.wrapping_add(1000),
        None,
        0x04,
        0,
        &[],
    ));
    n.run_ms(10);
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::Established));
    assert_eq!(n.sb().tcp_ext_mib().tcp_challenge_ack, 1);
    assert_eq!(n.sb().tcp_mib().out_segs, outs + 1);
    let challenge = n.segments().into_iter().rev().find(|w| !w.by_a()).unwrap();
    assert_eq!(challenge.ack, seq, "the challenge ACK carries rcv_nxt");
    // RST outside the window: dropped silently.
    n.inject(&tcp_frame(
        pa,
        pb,
        seq.wrapping_add(10_000_000),
        None,
        0x04,
        0,
        &[],
    ));
    n.run_ms(10);
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::Established));
    assert_eq!(n.sb().tcp_mib().out_segs, outs + 1);
    // SYN on an established connection: challenge ACK, still connected
    // (RFC 5961 §4). Sent more than 500 ms later (tcp_invalid_ratelimit).
    n.run_ms(600);
    n.inject(&tcp_frame(
        pa,
        pb,
        seq.wrapping_add(5),
        None,
        0x02,
        64240,
        &[],
    ));
    n.run_ms(10);
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::Established));
    assert_eq!(n.sb().tcp_ext_mib().tcp_syn_challenge, 1);
    assert_eq!(n.sb().tcp_ext_mib().tcp_challenge_ack, 2);
    // The connection still works both ways.
    n.ba.write_all(&mut n.t.sim, c, b"y").unwrap();
    n.run_ms(20);
    let mut buf = [0u8; 4];
    assert_eq!(n.bb.read(&mut n.t.sim, s, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"xy");
    // A RST exactly at rcv_nxt resets.
    let (seq, _) = seqs(&n);
    n.inject(&tcp_frame(pa, pb, seq, None, 0x04, 0, &[]));
    n.run_ms(10);
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::Closed));
    assert_eq!(
        n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)),
        Err(Errno::ECONNRESET)
    );
    let _ = ack;
}

/// Injects `frame`, lets it arrive, and checks that B delivered nothing
/// and counted one drop for `reason`.
fn inject_dropped(
    n: &mut Net,
    s: netpath::sock::SockId,
    frame: &[u8],
    reason: netpath::drop::DropReason,
) {
    n.inject(frame);
    n.run_ms(10);
    let mut buf = [0u8; 16];
    assert_eq!(
        n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(n.sb().drops().get(reason), 1, "{reason:?}");
}

#[test]
fn blind_ack_and_data_injection_is_dropped() {
    let mut n = Net::new(3, link());
    let (c, s, _) = n.connected(80);
    n.ba.write_all(&mut n.t.sim, c, b"hello").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(n.bb.read(&mut n.t.sim, s, &mut buf), Ok(5));
    n.run_ms(10);
    let (seq, ack) = seqs(&n);
    let (pa, pb) = ((ip(A), n.segments()[0].sport), (ip(B), 80));
    // Data with an ACK far older than the window (RFC 5961 §5.2): dropped,
    // challenged, never delivered.
    n.inject(&tcp_frame(
        pa,
        pb,
        seq,
        Some(ack.wrapping_sub(1 << 30)),
        0x08,
        1000,
        b"EVIL",
    ));
    n.run_ms(10);
    assert_eq!(
        n.with_b(|st, now| st.tcp_recv(now, s, &mut buf)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(
        n.sb().drops().get(netpath::drop::DropReason::TcpTooOldAck),
        1
    );
    assert_eq!(n.sb().tcp_ext_mib().tcp_challenge_ack, 1);
    // An ACK of data B never sent: dropped.
    let f = tcp_frame(
        pa,
        pb,
        seq,
        Some(ack.wrapping_add(100_000)),
        0x08,
        1000,
        b"EVIL",
    );
    inject_dropped(&mut n, s, &f, netpath::drop::DropReason::TcpAckUnsentData);
    // Data outside the receive window: dropped, answered with a dup ACK.
    let f = tcp_frame(
        pa,
        pb,
        seq.wrapping_add(1 << 24),
        Some(ack),
        0x08,
        1000,
        b"EVIL",
    );
    inject_dropped(&mut n, s, &f, netpath::drop::DropReason::TcpInvalidSequence);
    // A bad checksum: counted, dropped.
    let mut bad = tcp_frame(pa, pb, seq, Some(ack), 0x08, 1000, b"EVIL");
    bad[50] ^= 0xff;
    let body = bad.len() - 4;
    netpath_wire::ethernet::fcs::append(&mut bad, body).unwrap();
    n.inject(&bad);
    n.run_ms(10);
    assert_eq!(n.sb().tcp_mib().in_csum_errors, 1);
    // The real stream is untouched.
    n.ba.write_all(&mut n.t.sim, c, b"world").unwrap();
    assert_eq!(n.bb.read(&mut n.t.sim, s, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"world");
}
