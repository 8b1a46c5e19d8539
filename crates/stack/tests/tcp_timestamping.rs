//! `SO_TIMESTAMPING` on TCP: the option's checks, the last byte of each
//! write reported at the qdisc (SCHED), the driver (SND) and the peer's
//! cumulative ACK, in order and at the right times; `OPT_ID` keys counted
//! from the moment the option is set; reports again for a retransmission;
//! one report per GSO packet whether the NIC or software segments it;
//! `OPT_TSONLY` and `SOF_TIMESTAMPING_SOFTWARE`; `POLLERR`; the receive
//! buffer bounding the error queue.

mod tcpnet;

use netpath::drop::DropReason;
use netpath::sched::tbf::Tbf;
use netpath::sim::blocking::Blocking;
use netpath::sim::LinkConfig;
use netpath::sock::{Errno, SockId};
use netpath::stack::Stack;
use netpath::tcp::errqueue::{ErrQueueMsg, ENOMSG, SO_EE_ORIGIN_TIMESTAMPING};
use netpath::tcp::timestamping::*;
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::{Duration, Instant};
use tcpnet::*;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// What the scripts ask for: SCHED, SND and ACK, software reports, keys.
const ALL: u32 = SOF_TIMESTAMPING_TX_SCHED
    | SOF_TIMESTAMPING_TX_SOFTWARE
    | SOF_TIMESTAMPING_TX_ACK
    | SOF_TIMESTAMPING_SOFTWARE
    | SOF_TIMESTAMPING_OPT_ID;

const MORE: SendFlags = SendFlags {
    more: true,
    eor: false,
    zerocopy: false,
};

/// Every entry of the error queue, oldest first (`max` bytes of each
/// packet); the queue is empty after.
fn drain(st: &mut Stack, c: SockId, max: usize) -> Vec<ErrQueueMsg> {
    let mut out = Vec::new();
    loop {
        match st.tcp_recv_errqueue(c, max) {
            Ok(m) => out.push(m),
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                return out;
            }
        }
    }
}

/// (`ee_info`, `ee_data`) of each entry.
fn kinds(ms: &[ErrQueueMsg]) -> Vec<(u32, u32)> {
    ms.iter().map(|m| (m.ee.info, m.ee.data)).collect()
}

fn time(m: &ErrQueueMsg) -> Instant {
    m.tstamp.expect("an SCM_TIMESTAMPING time")
}

/// A connected pair with the client's timestamping flags set (and
/// TCP_NODELAY, so that every write goes at once).
fn setup(n: &mut Net, port: u16, flags: u32) -> (SockId, SockId) {
    let (c, s, _) = n.connected(port);
    n.with_a(|st, _| {
        st.tcp_setsockopt(c, TcpOpt::NoDelay(true)).unwrap();
        st.tcp_setsockopt(c, TcpOpt::Timestamping(flags)).unwrap();
    });
    (c, s)
}

fn send(n: &mut Net, c: SockId, len: usize) -> Instant {
    n.with_a(|st, now| {
        assert_eq!(
            st.tcp_send(now, c, &vec![7; len], Default::default()),
            Ok(len)
        );
        now
    })
}

#[test]
fn setsockopt_refuses_what_linux_refuses() {
    let mut n = Net::new(31, link());
    let fresh = n.with_a(|st, _| st.tcp_socket());
    let set = |n: &mut Net, id, v| n.with_a(|st, _| st.tcp_setsockopt(id, TcpOpt::Timestamping(v)));
    // OPT_ID on a socket that is not connected (CLOSE).
    assert_eq!(set(&mut n, fresh, ALL), Err(Errno::EINVAL));
    assert_eq!(
        set(
            &mut n,
            fresh,
            SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_SOFTWARE
        ),
        Ok(())
    );
    let (c, _s, l) = n.connected(7001);
    // A listener: OPT_ID refused, the rest taken (and inherited below).
    let lflags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    n.with_b(|st, _| {
        assert_eq!(
            st.tcp_setsockopt(l, TcpOpt::Timestamping(ALL)),
            Err(Errno::EINVAL)
        );
        assert_eq!(st.tcp_setsockopt(l, TcpOpt::Timestamping(lflags)), Ok(()));
    });
    for bad in [
        1 << 19,
        SOF_TIMESTAMPING_OPT_ID_TCP | SOF_TIMESTAMPING_TX_SCHED,
        SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_OPT_RX_FILTER,
        SOF_TIMESTAMPING_OPT_STATS | SOF_TIMESTAMPING_SOFTWARE,
    ] {
        assert_eq!(set(&mut n, c, bad), Err(Errno::EINVAL), "{bad:#x}");
    }
    // No device with PTP clocks: BIND_PHC on an unbound socket.
    assert_eq!(
        set(&mut n, c, SOF_TIMESTAMPING_BIND_PHC),
        Err(Errno::EOPNOTSUPP)
    );
    // A refused value leaves the flags as they were.
    assert_eq!(set(&mut n, c, ALL), Ok(()));
    assert_eq!(set(&mut n, c, 1 << 20), Err(Errno::EINVAL));
    let got = n.with_a(|st, _| st.tcp_getsockopt(c, TcpOpt::Timestamping(0)));
    assert_eq!(got, Ok(TcpOpt::Timestamping(ALL)));
    let ok = SOF_TIMESTAMPING_OPT_STATS
        | SOF_TIMESTAMPING_OPT_TSONLY
        | SOF_TIMESTAMPING_OPT_ID
        | SOF_TIMESTAMPING_OPT_ID_TCP;
    assert_eq!(set(&mut n, c, ok), Ok(()));
    // A child inherits the listener's flags (sk_clone_lock).
    let l2 = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), 7002, 8).unwrap();
    n.with_b(|st, _| st.tcp_setsockopt(l2, TcpOpt::Timestamping(lflags)))
        .unwrap();
    let c2 = n.ba.socket(&mut n.t.sim);
    n.ba.connect(&mut n.t.sim, c2, ip(B), 7002).unwrap();
    let (s2, _) = n.bb.accept(&mut n.t.sim, l2).unwrap();
    let got = n.with_b(|st, _| st.tcp_getsockopt(s2, TcpOpt::Timestamping(0)));
    assert_eq!(got, Ok(TcpOpt::Timestamping(lflags)));
}

/// The last byte of each write: SCHED and SND when it leaves, ACK when the
/// peer's cumulative ACK covers it; `POLLERR` until all is read.
#[test]
fn each_write_reports_its_last_byte_sched_snd_then_ack() {
    let mut n = Net::new(32, link());
    let (c, _s) = setup(&mut n, 7010, ALL);
    let t0 = send(&mut n, c, 3000);
    send(&mut n, c, 2000);
    n.with_a(|st, _| {
        let ev = st.tcp_poll(c);
        assert!(ev.err, "reports wait: POLLERR");
        assert!(!ev.readable);
    });
    n.run_ms(100);
    let ms = n.with_a(|st, _| drain(st, c, 0));
    assert_eq!(
        kinds(&ms),
        [
            (SCM_TSTAMP_SCHED, 2999),
            (SCM_TSTAMP_SND, 2999),
            (SCM_TSTAMP_SCHED, 4999),
            (SCM_TSTAMP_SND, 4999),
            (SCM_TSTAMP_ACK, 2999),
            (SCM_TSTAMP_ACK, 4999),
        ]
    );
    for m in &ms {
        assert_eq!(m.ee.errno, ENOMSG);
        assert_eq!(m.ee.origin, SO_EE_ORIGIN_TIMESTAMPING);
        assert_eq!((m.ee.ty, m.ee.code), (0, 0));
    }
    for m in &ms[..4] {
        assert_eq!(time(m), t0, "sent at once");
    }
    // ACK: when the ACK covering the byte reached A.
    let isn = n
        .segments()
        .iter()
        .find(|w| w.by_a() && w.syn())
        .unwrap()
        .seq;
    for (m, key) in ms[4..].iter().zip([2999u32, 4999]) {
        let acked = n
            .segments()
            .iter()
            .find(|w| !w.by_a() && w.ack.wrapping_sub(isn) > key + 1)
            .map(|w| w.t)
            .unwrap();
        assert_eq!(time(m), acked);
        assert!(time(m) >= t0 + Duration::from_millis(10));
    }
    n.with_a(|st, _| {
        assert!(!st.tcp_poll(c).err);
        assert_eq!(st.tcp_recv_errqueue(c, 0), Err(Errno::EAGAIN));
    });
}

/// `OPT_ID`: keys count bytes from `snd_una` when the option is switched
/// on (`write_seq` with `OPT_ID_TCP`), again from there after it was off;
/// without it `ee_data` is 0.
#[test]
fn opt_id_keys_count_from_when_the_option_is_set() {
    let mut n = Net::new(33, link());
    let sched = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_SOFTWARE;
    let (c, _s) = setup(&mut n, 7020, sched);
    let set = |n: &mut Net, v| {
        n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::Timestamping(v)))
            .unwrap()
    };
    let last = |n: &mut Net| {
        let ms = n.with_a(|st, _| drain(st, c, 0));
        assert_eq!(ms.len(), 1, "{ms:?}");
        ms[0].ee.data
    };
    send(&mut n, c, 1000);
    assert_eq!(last(&mut n), 0, "no OPT_ID: no key");
    n.run_ms(50);
    set(&mut n, sched | SOF_TIMESTAMPING_OPT_ID);
    send(&mut n, c, 500);
    assert_eq!(last(&mut n), 499);
    // Setting it again (still on) keeps the count.
    set(&mut n, sched | SOF_TIMESTAMPING_OPT_ID);
    send(&mut n, c, 100);
    assert_eq!(last(&mut n), 599);
    n.run_ms(50);
    // Off, more bytes, on again: counted from there.
    set(&mut n, sched);
    send(&mut n, c, 100);
    assert_eq!(last(&mut n), 0);
    n.run_ms(50);
    set(&mut n, sched | SOF_TIMESTAMPING_OPT_ID);
    send(&mut n, c, 10);
    assert_eq!(last(&mut n), 9);
    // With bytes unacknowledged: from snd_una, or from write_seq.
    n.run_ms(50);
    n.cut_cable();
    send(&mut n, c, 300);
    set(&mut n, sched);
    set(&mut n, sched | SOF_TIMESTAMPING_OPT_ID);
    let _ = n.with_a(|st, _| drain(st, c, 0));
    send(&mut n, c, 50);
    assert_eq!(last(&mut n), 349);
    set(&mut n, sched);
    set(
        &mut n,
        sched | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_ID_TCP,
    );
    send(&mut n, c, 50);
    assert_eq!(last(&mut n), 49);
}

/// A lost segment: its retransmission is reported again (SCHED and SND, as
/// Linux's clones share the request), the ACK once.
#[test]
fn a_retransmission_reports_again_and_ack_comes_once() {
    let mut n = Net::new(34, link());
    let (c, _s) = setup(&mut n, 7030, ALL);
    n.run_ms(20);
    n.cut_cable();
    let t0 = send(&mut n, c, 1000);
    // Lost on its way (the link decides when the frame arrives).
    n.run_ms(6);
    let l = n.t.links[0];
    n.t.sim.set_link_config(l, link()).unwrap();
    n.run_ms(2000);
    let ms = n.with_a(|st, _| drain(st, c, 0));
    assert_eq!(
        kinds(&ms),
        [
            (SCM_TSTAMP_SCHED, 999),
            (SCM_TSTAMP_SND, 999),
            (SCM_TSTAMP_SCHED, 999),
            (SCM_TSTAMP_SND, 999),
            (SCM_TSTAMP_ACK, 999),
        ]
    );
    let (t1, t2) = (time(&ms[2]), time(&ms[4]));
    assert_eq!(time(&ms[0]), t0);
    assert!(t1 > t0, "retransmitted later");
    assert_eq!(time(&ms[3]), t1);
    assert!(
        t2 >= t1 + Duration::from_millis(10),
        "acked a round trip later"
    );
    // The wire agrees: two transmissions of the byte.
    let copies = n
        .segments()
        .iter()
        .filter(|w| w.by_a() && w.len == 1000)
        .count();
    assert_eq!(copies, 2);
}

/// Several segments sent as one GSO skb report once, for the segment
/// holding the byte, whether a TSO NIC takes the skb whole or it is cut in
/// software before the driver.
fn gso_once(tso: bool, port: u16) {
    let mut t = Topo::new(35);
    let cfg = netpath::dev::nic::NicConfig {
        tso,
        ..Default::default()
    };
    let a = t.host_with(&["192.0.2.1/24"], cfg);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, link());
    let (ba, bb) = (Blocking::new(a.node), Blocking::new(b.node));
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), port, 8).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip("192.0.2.2"), port).unwrap();
    bb.accept(&mut t.sim, l).unwrap();
    let t0 = t.with(&a, |st, now| {
        st.tcp_setsockopt(c, TcpOpt::Timestamping(ALL)).unwrap();
        st.tcp_send(now, c, &[1; 8000], Default::default()).unwrap();
        now
    });
    t.run_ms(100);
    let ms = t.with(&a, |st, _| drain(st, c, 0));
    assert_eq!(
        kinds(&ms),
        [
            (SCM_TSTAMP_SCHED, 7999),
            (SCM_TSTAMP_SND, 7999),
            (SCM_TSTAMP_ACK, 7999),
        ],
        "tso {tso}"
    );
    assert_eq!(time(&ms[1]), t0);
    // SCHED carries the GSO skb (segments of the run), SND the frame the
    // driver took: the skb whole with TSO, the last segment without.
    assert!(ms[0].len > 66 + 1448, "{}", ms[0].len);
    if tso {
        assert_eq!(ms[1].len, ms[0].len);
    } else {
        assert!(ms[1].len < 1600, "{}", ms[1].len);
    }
}

#[test]
fn a_gso_packet_reports_once_with_tso() {
    gso_once(true, 7040);
}

#[test]
fn a_gso_packet_reports_once_when_segmented_in_software() {
    gso_once(false, 7041);
}

/// A shaping qdisc holds the packet: SND comes when the driver gets it,
/// after SCHED (tbf cuts the GSO skb into segments, the last holds the
/// byte).
#[test]
fn a_qdisc_delay_separates_sched_from_snd() {
    let mut n = Net::new(36, link());
    let (c, _s) = setup(&mut n, 7050, ALL);
    let nic = n.a.nics[0];
    // 1 Mbit/s, a 3000-byte bucket.
    n.with_a(|st, _| st.set_qdisc(nic, Box::new(Tbf::new(125_000, 3_000, 100_000).unwrap())))
        .unwrap();
    let t0 = send(&mut n, c, 10 * 1448);
    n.run_ms(1000);
    let ms = n.with_a(|st, _| drain(st, c, 0));
    assert_eq!(
        kinds(&ms),
        [
            (SCM_TSTAMP_SCHED, 14479),
            (SCM_TSTAMP_SND, 14479),
            (SCM_TSTAMP_ACK, 14479),
        ]
    );
    assert_eq!(time(&ms[0]), t0);
    let waited = time(&ms[1]).saturating_since(t0);
    assert!(waited >= Duration::from_millis(80), "{waited:?}");
    assert!(time(&ms[2]) > time(&ms[1]));
}

/// Two writes into one skb (MSG_MORE): one request, for the later byte
/// (tskey overwritten); an end of record keeps them apart.
#[test]
fn a_write_into_the_same_skb_takes_the_request_over() {
    let mut n = Net::new(37, link());
    let (c, _s) = setup(&mut n, 7060, ALL);
    n.with_a(|st, now| {
        st.tcp_send(now, c, &[1; 100], MORE).unwrap();
        st.tcp_send(now, c, &[2; 100], Default::default()).unwrap();
    });
    n.run_ms(100);
    let ms = n.with_a(|st, _| drain(st, c, 0));
    assert_eq!(
        kinds(&ms),
        [
            (SCM_TSTAMP_SCHED, 199),
            (SCM_TSTAMP_SND, 199),
            (SCM_TSTAMP_ACK, 199)
        ]
    );
    let eor = SendFlags { eor: true, ..MORE };
    n.with_a(|st, now| {
        st.tcp_send(now, c, &[1; 100], eor).unwrap();
        st.tcp_send(now, c, &[2; 100], Default::default()).unwrap();
    });
    n.run_ms(100);
    let ms = n.with_a(|st, _| drain(st, c, 0));
    let mut k = kinds(&ms);
    k.sort();
    assert_eq!(
        k,
        [
            (SCM_TSTAMP_SND, 299),
            (SCM_TSTAMP_SND, 399),
            (SCM_TSTAMP_SCHED, 299),
            (SCM_TSTAMP_SCHED, 399),
            (SCM_TSTAMP_ACK, 299),
            (SCM_TSTAMP_ACK, 399),
        ]
    );
}

/// Without OPT_TSONLY an entry loops the packet back (MSG_TRUNC when the
/// buffer is shorter); with it, none. The time is only reported with
/// SOF_TIMESTAMPING_SOFTWARE set when reading.
#[test]
fn tsonly_and_the_software_flag() {
    let mut n = Net::new(38, link());
    let sched = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE;
    let (c, _s) = setup(&mut n, 7070, sched | SOF_TIMESTAMPING_SOFTWARE);
    send(&mut n, c, 1000);
    let ms = n.with_a(|st, _| drain(st, c, 64));
    assert_eq!(ms.len(), 2);
    let frame = 14 + 20 + 32 + 1000;
    assert_eq!(ms[0].len, frame, "the frame at dev_queue_xmit");
    assert_eq!(ms[0].data.len(), 64);
    assert!(ms[0].trunc());
    assert_eq!(ms[0].data[12..14], [0x08, 0x00]);
    assert_eq!(ms[0].ee.data, 0);
    n.with_a(|st, _| {
        st.tcp_setsockopt(c, TcpOpt::Timestamping(sched | SOF_TIMESTAMPING_OPT_TSONLY))
            .unwrap()
    });
    send(&mut n, c, 1000);
    let ms = n.with_a(|st, _| drain(st, c, 64));
    assert_eq!(ms.len(), 2);
    for m in &ms {
        assert_eq!((m.len, m.data.len(), m.trunc()), (0, 0, false));
        assert_eq!(m.tstamp, None, "no SOF_TIMESTAMPING_SOFTWARE: no time");
    }
}

/// The error queue shares the receive buffer: a report that does not fit
/// is freed and counted.
#[test]
fn a_full_receive_buffer_drops_reports() {
    let mut n = Net::new(39, link());
    let sched = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE;
    let (c, _s) = setup(&mut n, 7080, sched | SOF_TIMESTAMPING_SOFTWARE);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::RcvBuf(1)).unwrap());
    let before = n.sa().drops().get(DropReason::NotSpecified);
    send(&mut n, c, 1000);
    let dropped = n.sa().drops().get(DropReason::NotSpecified) - before;
    assert_eq!(dropped, 1, "SND found SCHED's frame in the buffer");
    let ms = n.with_a(|st, _| drain(st, c, 0));
    assert_eq!(kinds(&ms), [(SCM_TSTAMP_SCHED, 0)]);
}

/// Timestamping off: nothing reported, no POLLERR.
#[test]
fn nothing_without_the_option() {
    let mut n = Net::new(40, link());
    let (c, _s) = setup(&mut n, 7090, SOF_TIMESTAMPING_SOFTWARE);
    send(&mut n, c, 5000);
    n.run_ms(100);
    n.with_a(|st, _| {
        assert!(!st.tcp_poll(c).err);
        assert_eq!(st.tcp_recv_errqueue(c, 0), Err(Errno::EAGAIN));
    });
}
