//! TCP connection establishment and teardown on a simulated cable, checked
//! on the wire field by field and through the socket API: the three-way
//! handshake with Linux's options, RST for a closed port and
//! ECONNREFUSED, every state of RFC 9293 including simultaneous open and
//! close, half close, TIME-WAIT expiry, and the listen backlog counters.

mod tcpnet;

use netpath::drop::DropReason;
use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::{SendFlags, Shutdown, TcpState};
use netpath::time::Duration;
use tcpnet::*;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

#[test]
fn handshake_on_the_wire_field_by_field() {
    let mut n = Net::new(1, link());
    let (c, s, _) = n.connected(5001);
    let segs = n.segments();
    let (syn, synack, ack) = (&segs[0], &segs[1], &segs[2]);
    // SYN: as Linux's (../shared/captures/tcp-handshake-transfer-close.pcap
    // frame 1), wscale from tcp_rmem[2] = 6 MiB: 7.
    assert!(syn.by_a() && syn.flags.syn() && !syn.flags.ack());
    assert_eq!(syn.dport, 5001);
    assert!(
        (32768..=60999).contains(&syn.sport),
        "ephemeral port {}",
        syn.sport
    );
    assert_eq!(syn.win, 64240);
    let ts = syn.opts.timestamps.unwrap();
    assert_eq!(ts.tsecr, 0);
    let mut want = vec![2, 4, 5, 0xb4, 4, 2, 8, 10];
    want.extend_from_slice(&ts.tsval.to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 7]);
    assert_eq!(
        syn.raw_opts, want,
        "mss,sackOK,TS,nop,wscale in Linux's layout"
    );
    assert!(syn.df);
    assert_eq!(syn.ttl, 64);
    // SYN-ACK: window 65160 (45 × 1448), TS echo, IP ID 0.
    assert!(synack.flags.syn() && synack.flags.ack() && !synack.by_a());
    assert_eq!(synack.ack, syn.seq.wrapping_add(1));
    assert_eq!(synack.win, 65160);
    assert_eq!(synack.opts.mss, Some(1460));
    assert!(synack.opts.sack_permitted);
    assert_eq!(synack.opts.window_scale, Some(7));
    assert_eq!(synack.opts.timestamps.unwrap().tsecr, ts.tsval);
    assert_eq!(synack.ip_id, 0);
    // The third ACK: window 64240 rounded up to the scale, 502 << 7.
    assert!(ack.by_a() && ack.flags.ack() && !ack.flags.syn());
    assert_eq!(ack.seq, syn.seq.wrapping_add(1));
    assert_eq!(ack.ack, synack.seq.wrapping_add(1));
    assert_eq!(ack.win, 502);
    assert_eq!(&ack.raw_opts[..4], &[1, 1, 8, 10]);
    assert_eq!(
        ack.opts.timestamps.unwrap().tsecr,
        synack.opts.timestamps.unwrap().tsval
    );
    // Both ends agree on what was negotiated.
    let (ia, ib) = (n.sa().tcp_info(c).unwrap(), n.sb().tcp_info(s).unwrap());
    for i in [ia, ib] {
        assert_eq!(i.state, 1, "ESTABLISHED");
        assert_eq!(i.options, 7, "TS, SACK, wscale");
        assert_eq!((i.snd_wscale, i.rcv_wscale), (7, 7));
        assert_eq!(i.snd_mss, 1448);
        assert_eq!(i.snd_cwnd, 10, "RFC 6928");
    }
    // The SYN's RTT sample runs from tcp_transmit_skb, so it includes the
    // ARP resolution the SYN waited for (one 10 ms round trip), as on Linux.
    assert!(ia.rtt >= 20_000 && ia.rtt < 21_000, "rtt {}", ia.rtt);
    assert_eq!(n.sa().tcp_mib().active_opens, 1);
    assert_eq!(n.sb().tcp_mib().passive_opens, 1);
    assert_eq!(n.sa().tcp_mib().curr_estab, 1);
}

#[test]
fn closed_port_answers_rst_and_connect_gets_econnrefused() {
    let mut n = Net::new(2, link());
    let c = n.ba.socket(&mut n.t.sim);
    let r = n.ba.connect(&mut n.t.sim, c, ip(B), 81);
    assert_eq!(r, Err(Errno::ECONNREFUSED));
    let segs = n.segments();
    assert_eq!(segs.len(), 2);
    let rst = &segs[1];
    assert!(rst.flags.rst() && rst.flags.ack());
    assert_eq!(rst.seq, 0);
    assert_eq!(rst.ack, segs[0].seq.wrapping_add(1));
    assert_eq!(rst.win, 0);
    assert_eq!(n.sb().tcp_mib().out_rsts, 1);
    assert_eq!(n.sb().drops().get(DropReason::NoSocket), 1);
    assert_eq!(n.sa().tcp_mib().attempt_fails, 1);
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::Closed));
    // The error is reported once; the socket can connect again.
    let again = n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 81));
    assert_eq!(again, Err(Errno::EINPROGRESS));
}

#[test]
fn active_close_walks_fin_wait_and_time_wait_for_60_s() {
    let mut n = Net::new(3, link());
    let (c, s, _) = n.connected(80);
    n.ba.write_all(&mut n.t.sim, c, b"hello").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(n.bb.read(&mut n.t.sim, s, &mut buf), Ok(5));
    // Client closes: FIN_WAIT1 at once.
    n.with_a(|st, now| st.tcp_shutdown(now, c, Shutdown::Write))
        .unwrap();
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::FinWait1));
    n.run_ms(20);
    // FIN acked: FIN_WAIT2; the server sees EOF, is in CLOSE_WAIT.
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::FinWait2));
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::CloseWait));
    assert_eq!(n.bb.read(&mut n.t.sim, s, &mut buf), Ok(0));
    assert!(n.sb().tcp_poll(s).rdhup);
    // Half close: the server may still send.
    n.bb.write_all(&mut n.t.sim, s, b"bye").unwrap();
    assert_eq!(n.ba.read(&mut n.t.sim, c, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"bye");
    n.bb.close(&mut n.t.sim, s).unwrap();
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::LastAck));
    n.run_ms(20);
    assert_eq!(n.sb().tcp_state(s), None, "LAST_ACK → CLOSED → freed");
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::TimeWait));
    let entered = n.now();
    n.ba.close(&mut n.t.sim, c).unwrap();
    // TIME-WAIT holds for 60 s (TCP_TIMEWAIT_LEN), then the socket goes.
    let spent = n.now().saturating_since(entered).as_nanos();
    n.run(Duration::from_nanos(59_900_000_000 - spent));
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::TimeWait));
    n.run_ms(200);
    assert_eq!(n.sa().tcp_state(c), None);
    assert_eq!(n.sa().tcp_ext_mib().tw, 1);
    assert_eq!(n.sa().tcp_socket_count(), 0);
    // Segments: FIN from A, ACK, data, FIN from B, last ACK.
    let fins: Vec<_> = n.segments().into_iter().filter(|w| w.fin()).collect();
    assert_eq!(fins.len(), 2);
}

#[test]
fn simultaneous_open() {
    let mut n = Net::new(4, link());
    let (ca, cb) = (n.ba.socket(&mut n.t.sim), n.bb.socket(&mut n.t.sim));
    n.with_a(|s, _| s.tcp_bind(ca, ip(A), 7000)).unwrap();
    n.with_b(|s, _| s.tcp_bind(cb, ip(B), 7001)).unwrap();
    // Both SYNs leave before either arrives.
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, ca, ip(B), 7001)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        n.with_b(|s, now| s.tcp_connect(now, cb, ip(A), 7000)),
        Err(Errno::EINPROGRESS)
    );
    n.run_ms(12);
    // Each saw the other's SYN: SYN_RECV (RFC 9293 figure 8).
    assert_eq!(n.sa().tcp_state(ca), Some(TcpState::SynRecv));
    assert_eq!(n.sb().tcp_state(cb), Some(TcpState::SynRecv));
    n.run_ms(30);
    assert_eq!(n.sa().tcp_state(ca), Some(TcpState::Established));
    assert_eq!(n.sb().tcp_state(cb), Some(TcpState::Established));
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, ca, ip(B), 7001)),
        Ok(())
    );
    let segs = n.segments();
    assert!(segs[0].syn() && !segs[0].is_ack() && segs[1].syn() && !segs[1].is_ack());
    assert!(segs[2].syn() && segs[2].is_ack() && segs[3].syn() && segs[3].is_ack());
    // Data flows both ways.
    n.ba.write_all(&mut n.t.sim, ca, b"ping").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(n.bb.read(&mut n.t.sim, cb, &mut buf), Ok(4));
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut n = Net::new(5, link());
    let (c, s, _) = n.connected(80);
    n.with_a(|st, now| st.tcp_shutdown(now, c, Shutdown::Write))
        .unwrap();
    n.with_b(|st, now| st.tcp_shutdown(now, s, Shutdown::Write))
        .unwrap();
    n.run_ms(7);
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::Closing));
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::Closing));
    n.run_ms(20);
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::TimeWait));
    assert_eq!(n.sb().tcp_state(s), Some(TcpState::TimeWait));
}

#[test]
fn close_with_unread_data_resets_and_peer_gets_econnreset() {
    let mut n = Net::new(6, link());
    let (c, s, _) = n.connected(80);
    n.ba.write_all(&mut n.t.sim, c, b"unread").unwrap();
    n.run_ms(20);
    n.bb.close(&mut n.t.sim, s).unwrap();
    n.run_ms(20);
    assert_eq!(n.sb().tcp_ext_mib().tcp_abort_on_close, 1);
    let rst = n.segments().into_iter().find(|w| w.rst()).unwrap();
    assert!(!rst.by_a() && rst.is_ack());
    let mut buf = [0u8; 4];
    assert_eq!(
        n.with_a(|st, now| st.tcp_recv(now, c, &mut buf)),
        Err(Errno::ECONNRESET)
    );
    assert_eq!(
        n.with_a(|st, now| st.tcp_send(now, c, b"x", SendFlags::default())),
        Err(Errno::EPIPE)
    );
    assert_eq!(n.sa().tcp_mib().estab_resets, 1);
}

#[test]
fn syn_and_accept_queue_overflow_are_counted_as_linux_counts_them() {
    let mut n = Net::new(7, link());
    let l = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), 80, 1).unwrap();
    // Backlog 1: one request fits the SYN queue, the other SYNs get
    // cookies; the accept queue takes backlog + 1 connections.
    let cs: Vec<_> = (0..4).map(|_| n.ba.socket(&mut n.t.sim)).collect();
    for &c in &cs {
        let _ = n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80));
    }
    n.run_ms(50);
    let ext = *n.sb().tcp_ext_mib();
    assert_eq!(ext.syncookies_sent, 3, "{ext:?}");
    assert_eq!(ext.tcp_req_q_full_do_cookies, 3);
    assert_eq!(ext.listen_overflows, 2);
    assert_eq!(ext.listen_drops, 2);
    assert_eq!(
        n.sb().tcp_mib().out_rsts,
        0,
        "a full accept queue drops, no RST"
    );
    let mut accepted = 0;
    while n.with_b(|s, now| s.tcp_accept(now, l)).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 2);
    // The clients think they are connected; their first data segment
    // carries the cookie's ACK again and completes the handshake.
    for &c in &cs {
        n.with_a(|s, now| s.tcp_send(now, c, b"x", SendFlags::default()))
            .unwrap();
    }
    n.run_ms(50);
    while n.with_b(|s, now| s.tcp_accept(now, l)).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 4);
    assert_eq!(n.sb().tcp_ext_mib().syncookies_recv, 3);
}

#[test]
fn full_syn_queue_without_cookies_drops_and_the_syn_is_retransmitted() {
    let mut n = Net::new(9, link());
    n.with_b(|s, _| s.sysctl_tcp("net.ipv4.tcp_syncookies", "0"))
        .unwrap();
    let l = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), 80, 1).unwrap();
    let cs: Vec<_> = (0..3).map(|_| n.ba.socket(&mut n.t.sim)).collect();
    for &c in &cs {
        let _ = n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80));
    }
    n.run_ms(50);
    let ext = *n.sb().tcp_ext_mib();
    assert_eq!(ext.tcp_req_q_full_drop, 2, "{ext:?}");
    assert_eq!(ext.listen_drops, 2);
    assert_eq!(ext.syncookies_sent, 0);
    // SYN retransmission after 1 s (TCP_TIMEOUT_INIT) gets them in.
    let mut accepted = 0;
    for _ in 0..40 {
        n.run_ms(500);
        while n.with_b(|s, now| s.tcp_accept(now, l)).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 3);
    assert!(n.sa().tcp_ext_mib().tcp_syn_retrans >= 2);
}

#[test]
fn connect_errors_are_linux_errno() {
    let mut n = Net::new(8, link());
    let c = n.ba.socket(&mut n.t.sim);
    // No route.
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, c, ip("203.0.113.9"), 80)),
        Err(Errno::ENETUNREACH)
    );
    // Not connected.
    let mut buf = [0u8; 4];
    assert_eq!(
        n.with_a(|s, now| s.tcp_recv(now, c, &mut buf)),
        Err(Errno::ENOTCONN)
    );
    assert_eq!(
        n.with_a(|s, now| s.tcp_send(now, c, b"x", SendFlags::default())),
        Err(Errno::EPIPE)
    );
    assert_eq!(n.with_a(|s, _| s.tcp_peer_addr(c)), Err(Errno::ENOTCONN));
    // Two binds to one port.
    let (x, y) = (n.ba.socket(&mut n.t.sim), n.ba.socket(&mut n.t.sim));
    n.with_a(|s, _| s.tcp_bind(x, ip(A), 9000)).unwrap();
    assert_eq!(
        n.with_a(|s, _| s.tcp_bind(y, ip(A), 9000)),
        Err(Errno::EADDRINUSE)
    );
    // connect twice: EALREADY while in progress, EISCONN once connected.
    let l = n.bb.listen(&mut n.t.sim, ip(B), 80, 8).unwrap();
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80)),
        Err(Errno::EALREADY)
    );
    n.run_ms(50);
    assert_eq!(n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80)), Ok(()));
    assert_eq!(
        n.with_a(|s, now| s.tcp_connect(now, c, ip(B), 80)),
        Err(Errno::EISCONN)
    );
    assert!(n.with_b(|s, now| s.tcp_accept(now, l)).is_ok());
    assert_eq!(n.with_b(|s, now| s.tcp_accept(now, l)), Err(Errno::EAGAIN));
}

#[test]
fn self_connect_opens_and_closes() {
    let mut n = Net::new(10, link());
    let c = n.bb.socket(&mut n.t.sim);
    n.with_b(|s, _| s.tcp_bind(c, ip(B), 5000)).unwrap();
    // Linux's self-connect: the SYN meets its own socket (simultaneous open).
    n.bb.connect(&mut n.t.sim, c, ip(B), 5000).unwrap();
    assert_eq!(n.sb().tcp_state(c), Some(TcpState::Established));
    n.bb.write_all(&mut n.t.sim, c, b"echo").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(n.bb.read(&mut n.t.sim, c, &mut buf), Ok(4));
    n.bb.close(&mut n.t.sim, c).unwrap();
    n.run(Duration::from_secs(61));
    assert_eq!(n.sb().tcp_socket_count(), 0, "{:?}", n.sb().tcp_sockets());
}

#[test]
fn ecn_negotiation_ect0_ce_echo_and_cwr() {
    // A link that marks 2 % of ECN-capable packets CE (an AQM router).
    let mut n = Net::new(
        11,
        LinkConfig {
            latency: Duration::from_millis(2),
            ce_mark: 0.02,
            ..LinkConfig::default()
        },
    );
    n.with_a(|s, _| s.sysctl_tcp("net.ipv4.tcp_ecn", "1"))
        .unwrap();
    let (c, s, _) = n.connected(80);
    let data: Vec<u8> = (0..400_000u32).map(|i| i as u8).collect();
    let got = n.transfer(c, s, &data, Duration::from_secs(60));
    assert!(got == data);
    let segs = n.segments();
    // RFC 3168 §6.1.1: SYN with ECE+CWR, SYN-ACK with ECE.
    let syn = &segs[0];
    assert!(syn.syn() && syn.flags.ece() && syn.flags.cwr());
    let synack = &segs[1];
    assert!(synack.syn() && synack.flags.ece() && !synack.flags.cwr());
    // New data is ECT(0) (or CE once marked); pure ACKs are not ECT.
    let data_a: Vec<_> = segs.iter().filter(|w| w.by_a() && w.len > 0).collect();
    assert!(
        data_a.iter().all(|w| w.ecn == 2),
        "ECT(0) as sent at A's end"
    );
    assert!(segs
        .iter()
        .filter(|w| !w.by_a() && w.len == 0)
        .all(|w| w.ecn == 0));
    // CE marks made B echo ECE; A answered with CWR and reduced.
    let marked = n.t.sim.link_stats(n.t.links[0]).unwrap().ce_marked;
    assert!(marked > 0);
    let ece = segs
        .iter()
        .filter(|w| !w.by_a() && w.flags.ece() && !w.syn())
        .count();
    let cwr = data_a.iter().filter(|w| w.flags.cwr()).count();
    assert!(ece > 0 && cwr > 0, "ECE {ece} CWR {cwr}");
    assert!(cwr <= marked as usize);
    let info = n.sa().tcp_info(c).unwrap();
    assert!(info.snd_ssthresh < 0x7fff_ffff, "cwnd was reduced");
    // No loss, so no retransmission: ECN signalled congestion instead.
    assert_eq!(n.sa().tcp_mib().retrans_segs, 0);
}
