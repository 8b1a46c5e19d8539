//! UDP on simulated hosts: echo, port unreachable and ECONNREFUSED, the
//! receive buffer bound, broadcast and SO_BROADCAST, bind errors.

mod topo;

use netpath::drop::DropReason;
use netpath::sim::LinkConfig;
use netpath::sock::{Errno, EPHEMERAL_PORTS};
use topo::{icmp_of, ip, ip_of, Host, Topo};

fn two_hosts() -> (Topo, Host, Host) {
    let mut t = Topo::new(21);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    (t, a, b)
}

#[test]
fn udp_echo_between_two_hosts() {
    let (mut t, a, b) = two_hosts();
    let srv = t.with(&b, |s, _| {
        let id = s.udp_socket();
        s.udp_bind(id, ip("0.0.0.0"), 7).unwrap();
        id
    });
    let cli = t.with(&a, |s, _| s.udp_socket());
    let sent = t
        .with(&a, |s, now| {
            s.udp_sendto(now, cli, b"hello, echo", Some((ip("192.0.2.2"), 7)))
        })
        .unwrap();
    assert_eq!(sent, 11);
    let (port, _) = {
        let l = t.stack(&a).udp_local(cli).unwrap();
        (l.1, l.0)
    };
    assert!(EPHEMERAL_PORTS.contains(&port), "ephemeral port {port}");
    t.run_ms(50);
    // The server echoes what it got back to the sender.
    let mut buf = [0u8; 64];
    let (n, from) = t.with(&b, |s, _| s.udp_recvfrom(srv, &mut buf)).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"hello, echo"[..], (ip("192.0.2.1"), port))
    );
    t.with(&b, |s, now| s.udp_sendto(now, srv, &buf[..n], Some(from)))
        .unwrap();
    t.run_ms(50);
    let mut back = [0u8; 64];
    let (m, from) = t.with(&a, |s, _| s.udp_recvfrom(cli, &mut back)).unwrap();
    assert_eq!(
        (&back[..m], from),
        (&b"hello, echo"[..], (ip("192.0.2.2"), 7))
    );
    assert_eq!(
        t.with(&a, |s, _| s.udp_recvfrom(cli, &mut back)),
        Err(Errno::EAGAIN)
    );
    let (ma, mb) = (*t.stack(&a).udp_mib(), *t.stack(&b).udp_mib());
    assert_eq!(
        (
            ma.out_datagrams,
            ma.in_datagrams,
            mb.in_datagrams,
            mb.out_datagrams
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn a_closed_port_answers_port_unreachable_and_a_connected_socket_sees_econnrefused() {
    let (mut t, a, b) = two_hosts();
    let sock = t.with(&a, |s, _| s.raw_open(1, 10));
    let cli = t.with(&a, |s, _| {
        let id = s.udp_socket();
        s.udp_bind(id, ip("192.0.2.1"), 40000).unwrap();
        s.udp_connect(id, ip("192.0.2.2"), 33434).unwrap();
        id
    });
    // 11 bytes of payload: a 19-byte datagram, as udp-port-unreachable.pcap.
    t.with(&a, |s, now| s.udp_sendto(now, cli, b"hello world", None))
        .unwrap();
    t.run_ms(50);
    let errs = t.raw_drain(&a, sock);
    assert_eq!(errs.len(), 1);
    assert_eq!((icmp_of(&errs[0]).0, icmp_of(&errs[0]).1), (3, 3));
    let (src, _, _, tos, _, _, len) = ip_of(&errs[0]);
    // TOS 0xc0 and the whole original datagram (20 + 19) quoted: 20 + 8 + 39.
    assert_eq!((src, tos, len), (ip("192.0.2.2"), 0xc0, 67));
    assert_eq!(
        &errs[0].data()[8 + 20..8 + 24],
        &[0x9c, 0x40, 0x82, 0x9a],
        "quoted ports 40000 -> 33434"
    );
    // The next call on the connected socket reports it, once.
    let mut buf = [0u8; 8];
    assert_eq!(
        t.with(&a, |s, _| s.udp_recvfrom(cli, &mut buf)),
        Err(Errno::ECONNREFUSED)
    );
    assert_eq!(
        t.with(&a, |s, _| s.udp_recvfrom(cli, &mut buf)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(t.stack(&b).udp_mib().no_ports, 1);
    assert_eq!(t.stack(&b).drops().get(DropReason::NoSocket), 1);
}

#[test]
fn a_full_receive_buffer_counts_rcvbuf_errors() {
    let (mut t, a, b) = two_hosts();
    let srv = t.with(&b, |s, _| {
        let id = s.udp_socket();
        s.udp_bind(id, ip("192.0.2.2"), 9000).unwrap();
        s.udp_set_rcvbuf(id, 10_000).unwrap();
        id
    });
    assert_eq!(
        t.with(&b, |s, _| s.udp_rcvbuf(srv)),
        Ok(20_000),
        "doubled as Linux"
    );
    let cli = t.with(&a, |s, _| s.udp_socket());
    for i in 0..20u8 {
        t.with(&a, |s, now| {
            s.udp_sendto(now, cli, &[i; 100], Some((ip("192.0.2.2"), 9000)))
        })
        .unwrap();
    }
    t.run_ms(50);
    // Each datagram costs its 2048-byte buffer + 256: 8 fit in 20,000 bytes.
    let (queued, drops) = t.stack(&b).udp_queued(srv).unwrap();
    assert_eq!((queued, drops), (8, 12));
    let m = *t.stack(&b).udp_mib();
    assert_eq!((m.in_datagrams, m.rcvbuf_errors, m.in_errors), (8, 12, 12));
    assert_eq!(t.stack(&b).drops().get(DropReason::SocketRcvbuff), 12);
    let mut buf = [0u8; 200];
    let mut firsts = Vec::new();
    for _ in 0..8 {
        let (n, _) = t.with(&b, |s, _| s.udp_recvfrom(srv, &mut buf)).unwrap();
        assert_eq!(n, 100);
        firsts.push(buf[0]);
    }
    assert_eq!(
        firsts,
        (0..8).collect::<Vec<u8>>(),
        "the first eight, in order"
    );
}

#[test]
fn broadcast_needs_so_broadcast_and_reaches_every_host() {
    let mut t = Topo::new(22);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    let c = t.host(&["192.0.2.3/24"]);
    let ends = [
        (a.node, netpath::sim::PortId(0)),
        (b.node, netpath::sim::PortId(0)),
        (c.node, netpath::sim::PortId(0)),
    ];
    t.sim.add_link(LinkConfig::default(), &ends).unwrap();
    let socks: Vec<_> = [&b, &c]
        .iter()
        .map(|h| {
            t.with(h, |s, _| {
                let id = s.udp_socket();
                s.udp_bind(id, ip("0.0.0.0"), 5353).unwrap();
                id
            })
        })
        .collect();
    let cli = t.with(&a, |s, _| s.udp_socket());
    let r = t.with(&a, |s, now| {
        s.udp_sendto(now, cli, b"anyone?", Some((ip("192.0.2.255"), 5353)))
    });
    assert_eq!(r, Err(Errno::EACCES), "no SO_BROADCAST");
    t.with(&a, |s, _| s.udp_set_broadcast(cli, true)).unwrap();
    t.with(&a, |s, now| {
        s.udp_sendto(now, cli, b"anyone?", Some((ip("192.0.2.255"), 5353)))
    })
    .unwrap();
    t.run_ms(50);
    for (h, id) in [&b, &c].iter().zip(&socks) {
        let mut buf = [0u8; 16];
        let (n, from) = t.with(h, |s, _| s.udp_recvfrom(*id, &mut buf)).unwrap();
        assert_eq!((&buf[..n], from.0), (&b"anyone?"[..], ip("192.0.2.1")));
    }
    // A broadcast to a port nobody has gets no ICMP error.
    let raw = t.with(&a, |s, _| s.raw_open(1, 10));
    t.with(&a, |s, now| {
        s.udp_sendto(now, cli, b"x", Some((ip("192.0.2.255"), 9)))
    })
    .unwrap();
    t.run_ms(50);
    assert!(t.raw_drain(&a, raw).is_empty());
}

#[test]
fn bind_and_send_errors() {
    let (mut t, a, _b) = two_hosts();
    t.with(&a, |s, now| {
        let x = s.udp_socket();
        s.udp_bind(x, ip("0.0.0.0"), 5000).unwrap();
        let y = s.udp_socket();
        assert_eq!(s.udp_bind(y, ip("192.0.2.1"), 5000), Err(Errno::EADDRINUSE));
        assert_eq!(
            s.udp_bind(y, ip("198.51.100.7"), 5001),
            Err(Errno::EADDRNOTAVAIL)
        );
        assert_eq!(s.udp_sendto(now, y, b"x", None), Err(Errno::EDESTADDRREQ));
        assert_eq!(
            s.udp_sendto(now, y, &vec![0; 70_000], Some((ip("192.0.2.2"), 1))),
            Err(Errno::EMSGSIZE)
        );
        assert_eq!(
            s.udp_sendto(now, y, b"x", Some((ip("203.0.113.1"), 1))),
            Err(Errno::ENETUNREACH)
        );
        assert_eq!(
            s.udp_connect(y, ip("203.0.113.1"), 1),
            Err(Errno::ENETUNREACH)
        );
        s.udp_close(x);
        assert_eq!(s.udp_recvfrom(x, &mut [0; 4]), Err(Errno::EBADF));
    });
}
