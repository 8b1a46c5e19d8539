//! epoll over TCP sockets and the wakeups that drive it: edge-triggered
//! EPOLLIN on each arrival of data (drained or not), EPOLLOUT only when
//! freed space passes Linux's thresholds after a writer found the buffer
//! full (SOCK_NOSPACE), level-triggered and one-shot items, and
//! `epoll_ctl`'s errors.

mod tcpnet;

use netpath::epoll::{Epoll, EpollEvent, EpollOp, EPOLLET, EPOLLIN, EPOLLONESHOT, EPOLLOUT};
use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::Duration;
use tcpnet::*;

/// What is reported is masked by the interest: `EPOLLIN`, not
/// `EPOLLRDNORM` too.
const IN: u32 = EPOLLIN;
const OUT: u32 = EPOLLOUT;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

fn ev(events: u32, data: u64) -> EpollEvent {
    EpollEvent { events, data }
}

#[test]
fn edge_triggered_epollin_fires_per_arrival_not_per_level() {
    let mut n = Net::new(1, link());
    let (c, s, _) = n.connected(5001);
    let mut ep = Epoll::new();
    n.with_b(|st, _| {
        ep.ctl(st, EpollOp::Add, s, ev(EPOLLIN | EPOLLOUT | EPOLLET, 7))
            .unwrap();
        // Ready when added: writable.
        assert_eq!(ep.wait(st, 8).unwrap(), vec![ev(OUT, 7)]);
        assert_eq!(ep.wait(st, 8).unwrap(), vec![], "edge: reported once");
    });
    n.with_a(|st, now| st.tcp_send(now, c, &[1; 3000], SendFlags::default()))
        .unwrap();
    n.run_ms(50);
    n.with_b(|st, now| {
        assert_eq!(ep.wait(st, 8).unwrap(), vec![ev(IN | OUT, 7)]);
        assert_eq!(ep.wait(st, 8).unwrap(), vec![]);
        // A partial read is no new event.
        let mut buf = [0u8; 1000];
        assert_eq!(st.tcp_recv(now, s, &mut buf), Ok(1000));
        assert_eq!(ep.wait(st, 8).unwrap(), vec![]);
    });
    // More data wakes it again although data was waiting all along.
    n.with_a(|st, now| st.tcp_send(now, c, &[2; 500], SendFlags::default()))
        .unwrap();
    n.run_ms(50);
    n.with_b(|st, _| {
        assert_eq!(st.tcp_inq(s), Ok(2500));
        assert_eq!(ep.wait(st, 8).unwrap(), vec![ev(IN | OUT, 7)]);
        assert_eq!(ep.wait(st, 8).unwrap(), vec![]);
    });
}

#[test]
fn level_triggered_reports_until_drained_and_oneshot_until_mod() {
    let mut n = Net::new(2, link());
    let (c, s, _) = n.connected(5002);
    let mut lt = Epoll::new();
    let mut one = Epoll::new();
    n.with_b(|st, _| {
        lt.ctl(st, EpollOp::Add, s, ev(EPOLLIN, 1)).unwrap();
        one.ctl(st, EpollOp::Add, s, ev(EPOLLIN | EPOLLONESHOT, 2))
            .unwrap();
        assert_eq!(lt.wait(st, 8).unwrap(), vec![]);
        assert_eq!(one.wait(st, 8).unwrap(), vec![]);
    });
    n.with_a(|st, now| st.tcp_send(now, c, &[1; 100], SendFlags::default()))
        .unwrap();
    n.run_ms(50);
    n.with_b(|st, now| {
        for _ in 0..3 {
            assert_eq!(lt.wait(st, 8).unwrap(), vec![ev(IN, 1)]);
        }
        assert_eq!(one.wait(st, 8).unwrap(), vec![ev(IN, 2)]);
        assert_eq!(one.wait(st, 8).unwrap(), vec![], "disabled after one");
        let mut buf = [0u8; 100];
        assert_eq!(st.tcp_recv(now, s, &mut buf), Ok(100));
        assert_eq!(lt.wait(st, 8).unwrap(), vec![], "drained");
    });
    n.with_a(|st, now| st.tcp_send(now, c, &[1; 10], SendFlags::default()))
        .unwrap();
    n.run_ms(50);
    n.with_b(|st, _| {
        assert_eq!(one.wait(st, 8).unwrap(), vec![], "still disabled");
        // EPOLL_CTL_MOD re-arms it and, data being there, makes it ready.
        one.ctl(st, EpollOp::Mod, s, ev(EPOLLIN | EPOLLONESHOT, 3))
            .unwrap();
        assert_eq!(one.wait(st, 8).unwrap(), vec![ev(IN, 3)]);
    });
}

#[test]
fn epoll_ctl_errors() {
    let mut n = Net::new(3, link());
    let (_, s, _) = n.connected(5003);
    let mut ep = Epoll::new();
    n.with_b(|st, now| {
        let e = ev(EPOLLIN, 0);
        assert_eq!(ep.ctl(st, EpollOp::Mod, s, e), Err(Errno::ENOENT));
        assert_eq!(ep.ctl(st, EpollOp::Del, s, e), Err(Errno::ENOENT));
        ep.ctl(st, EpollOp::Add, s, e).unwrap();
        assert_eq!(ep.ctl(st, EpollOp::Add, s, e), Err(Errno::EEXIST));
        assert_eq!(ep.wait(st, 0), Err(Errno::EINVAL));
        ep.ctl(st, EpollOp::Del, s, e).unwrap();
        assert!(ep.is_empty());
        st.tcp_close(now, s).unwrap();
        assert_eq!(ep.ctl(st, EpollOp::Add, s, e), Err(Errno::EBADF));
    });
}

/// Fills the client's send buffer with non-blocking writes: the bytes
/// queued.
fn fill(n: &mut Net, c: netpath::sock::SockId) -> usize {
    let mut total = 0;
    loop {
        match n.with_a(|st, now| st.tcp_send(now, c, &[7; 10_000], SendFlags::default())) {
            Ok(k) => total += k,
            Err(Errno::EAGAIN) => return total,
            Err(e) => panic!("send: {e}"),
        }
    }
}

#[test]
fn epollout_waits_for_twice_the_notsent_margin() {
    let mut n = Net::new(4, link());
    let (c, _s, _) = n.connected(5004);
    let lowat = 20_000u32;
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::NotSentLowat(lowat)))
        .unwrap();
    let mut ep = Epoll::new();
    n.with_a(|st, _| {
        ep.ctl(st, EpollOp::Add, c, ev(EPOLLOUT | EPOLLET, 9))
            .unwrap();
        assert_eq!(ep.wait(st, 1).unwrap(), vec![ev(OUT, 9)]);
    });
    let queued = fill(&mut n, c);
    assert!(queued >= lowat as usize, "queued {queued}");
    assert!(!n.sa().tcp_stream_memory_free(c), "a write would block");
    // No write-space wakeup until the unsent bytes, doubled, are under
    // the mark; then exactly one.
    let mut reports = 0;
    for _ in 0..400 {
        n.run(Duration::from_micros(250));
        let (got, notsent) = n.with_a(|st, _| {
            let got = ep.wait(st, 1).unwrap();
            (got, st.tcp_outq_notsent(c).unwrap() as u32)
        });
        if !got.is_empty() {
            assert_eq!(got, vec![ev(OUT, 9)]);
            assert!(2 * notsent < lowat, "woken with {notsent} unsent");
            reports += 1;
        }
    }
    assert_eq!(reports, 1, "edge-triggered: one EPOLLOUT per wakeup");
    assert!(n.sa().tcp_stream_memory_free(c));
    let w = n.sa().tcp_wakeups(c).unwrap();
    assert!(w.write_space > 0);
}

#[test]
fn no_write_space_wakeup_without_a_writer_that_found_no_room() {
    let mut n = Net::new(5, link());
    let (c, _s, _) = n.connected(5005);
    // Writes that fit never set SOCK_NOSPACE: their ACKs wake nobody.
    for _ in 0..5 {
        n.with_a(|st, now| st.tcp_send(now, c, &[1; 2000], SendFlags::default()))
            .unwrap();
        n.run_ms(30);
    }
    assert_eq!(n.sa().tcp_wakeups(c).unwrap().write_space, 0);
    // A write that does not fit does: once the ACKs free enough, the
    // writer is woken.
    fill(&mut n, c);
    n.run_ms(500);
    assert!(n.sa().tcp_wakeups(c).unwrap().write_space > 0);
}
