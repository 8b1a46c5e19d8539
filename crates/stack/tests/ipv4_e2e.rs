//! IPv4 end to end on simulated topologies: ARP, ping between hosts and
//! across a router, TTL expiry, PMTU discovery, route types, ICMP rules and
//! rate limits — asserting what reaches the wire and the application.

mod topo;

use netpath::ipv4::output::{IpSendOpts, PmtuDisc, SendError};
use netpath::ipv4::route::{Route, RouteError, RouteType};
use netpath::sim::LinkConfig;
use netpath::time::Instant;
use topo::{icmp_of, in_order, ip, ip_of, Host, Topo};

fn two_hosts() -> (Topo, Host, Host) {
    let mut t = Topo::new(1);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    (t, a, b)
}

/// A (192.0.2.1) — R (192.0.2.254 | 198.51.100.254) — C (198.51.100.1).
fn routed(far_mtu: u32) -> (Topo, Host, Host, Host) {
    Topo::routed(2, far_mtu)
}

fn ping(
    t: &mut Topo,
    h: &Host,
    dst: &str,
    seq: u16,
    len: usize,
    opts: IpSendOpts,
) -> Result<(), SendError> {
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    t.with(h, |s, now| {
        s.icmp_echo_send(now, ip(dst), 0x1234, seq, &data, opts)
    })
}

#[test]
fn ping_between_two_hosts_with_arp_first() {
    let (mut t, a, b) = two_hosts();
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    for seq in 1..=3 {
        ping(&mut t, &a, "192.0.2.2", seq, 56, IpSendOpts::default()).unwrap();
        t.run_ms(500);
    }
    let replies = t.raw_drain(&a, sock);
    let got: Vec<_> = replies.iter().map(icmp_of).collect();
    assert_eq!(
        got,
        vec![(0, 0, 0x1234, 1), (0, 0, 0x1234, 2), (0, 0, 0x1234, 3)]
    );
    for r in &replies {
        let (src, dst, ttl, tos, df, _, len) = ip_of(r);
        assert_eq!(
            (src, dst, ttl, tos, df, len),
            (ip("192.0.2.2"), ip("192.0.2.1"), 64, 0, false, 84)
        );
        assert_eq!(
            &r.data()[8..],
            &(0..56).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
    }
    let sb = t.stack(&b).snmp().clone();
    assert_eq!(
        (
            sb.icmp.in_echos,
            sb.icmp.out_echo_reps,
            sb.icmp_msg.in_type[8],
            sb.icmp_msg.out_type[0]
        ),
        (3, 3, 3, 3)
    );
    assert_eq!(sb.ip.in_delivers, 3);
    let sa = t.stack(&a).snmp().clone();
    assert_eq!(
        (sa.ip.out_requests, sa.icmp.out_echos, sa.icmp.in_echo_reps),
        (3, 3, 3)
    );
    // ARP ran once: the first packet waited for it, later ones did not.
    let pa = t.points(&a);
    assert!(
        in_order(
            &pa,
            &[
                "ip_queue_xmit",
                "ip_local_out",
                "dst_output",
                "ip_output",
                "ip_finish_output2",
                "dev_queue_xmit"
            ]
        ),
        "{pa:?}"
    );
    let pb = t.points(&b);
    assert!(
        in_order(
            &pb,
            &[
                "netif_receive_skb",
                "ip_rcv",
                "dst_input",
                "ip_local_deliver",
                "icmp_rcv",
                "ip_queue_xmit"
            ]
        ),
        "{pb:?}"
    );
}

#[test]
fn ping_across_a_router() {
    let (mut t, a, r, _c) = routed(1500);
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    for seq in 1..=2 {
        ping(&mut t, &a, "198.51.100.1", seq, 56, IpSendOpts::default()).unwrap();
        t.run_ms(500);
    }
    let replies = t.raw_drain(&a, sock);
    assert_eq!(replies.len(), 2);
    let (src, _, ttl, ..) = ip_of(&replies[0]);
    assert_eq!(
        (src, ttl),
        (ip("198.51.100.1"), 63),
        "one hop: TTL 63 as in the capture"
    );
    assert_eq!(t.stack(&r).snmp().ip.forw_datagrams, 4);
    assert!(t.points(&r).contains(&"ip_forward_finish"));
}

#[test]
fn ttl_expiry_draws_time_exceeded_from_the_router() {
    let (mut t, a, r, c) = routed(1500);
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    ping(
        &mut t,
        &a,
        "198.51.100.1",
        1,
        56,
        IpSendOpts {
            ttl: Some(1),
            ..IpSendOpts::default()
        },
    )
    .unwrap();
    t.run_ms(500);
    let got = t.raw_drain(&a, sock);
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!((icmp_of(e).0, icmp_of(e).1), (11, 0));
    let (src, dst, _, tos, _, _, len) = ip_of(e);
    // As Linux: from the router's near address, TOS 0xc0, the whole 84-byte
    // datagram quoted (112 bytes in all).
    assert_eq!(
        (src, dst, tos, len),
        (ip("192.0.2.254"), ip("192.0.2.1"), 0xc0, 112)
    );
    assert_eq!(&e.data()[8 + 12..8 + 20], &[192, 0, 2, 1, 198, 51, 100, 1]);
    assert_eq!(t.stack(&r).snmp().icmp.out_time_excds, 1);
    assert_eq!(t.stack(&c).snmp().ip.in_receives, 0);
    assert_eq!(
        t.stack(&a)
            .icmp_errors()
            .last()
            .map(|e| (e.icmp_type, e.orig_dst)),
        Some((11, ip("198.51.100.1")))
    );
}

#[test]
fn df_over_a_small_mtu_gets_frag_needed_then_emsgsize() {
    let (mut t, a, _r, _c) = routed(1280);
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    let do_ = IpSendOpts {
        pmtudisc: PmtuDisc::Do,
        ..IpSendOpts::default()
    };
    ping(&mut t, &a, "198.51.100.1", 1, 1400, do_).unwrap();
    t.run_ms(500);
    let got = t.raw_drain(&a, sock);
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!(icmp_of(e).0, 3);
    assert_eq!(icmp_of(e).1, 4);
    assert_eq!(
        u16::from_be_bytes([e.data()[6], e.data()[7]]),
        1280,
        "next-hop MTU"
    );
    let (src, _, _, tos, _, _, len) = ip_of(e);
    assert_eq!(
        (src, tos, len),
        (ip("192.0.2.254"), 0xc0, 576),
        "cut to 576 bytes as Linux"
    );
    // The PMTU is now known: the same send fails locally.
    assert_eq!(
        ping(&mut t, &a, "198.51.100.1", 2, 1400, do_),
        Err(SendError::MsgSize { mtu: 1280 })
    );
    // A 1280-byte packet goes through.
    ping(&mut t, &a, "198.51.100.1", 3, 1252, do_).unwrap();
    t.run_ms(500);
    let got = t.raw_drain(&a, sock);
    assert_eq!(
        got.iter().map(icmp_of).collect::<Vec<_>>(),
        vec![(0, 0, 0x1234, 3)]
    );
    assert_eq!(ip_of(&got[0]).6, 1280);
}

#[test]
fn route_types_give_linux_errors_locally_and_icmp_when_forwarded() {
    let (mut t, a, r, _c) = routed(1500);
    let rn = r.nics[0];
    t.with(&a, |s, _| {
        s.route_add(Route::special(RouteType::Blackhole, ip("203.0.113.0"), 26))
            .unwrap();
        s.route_add(Route::special(
            RouteType::Unreachable,
            ip("203.0.113.64"),
            26,
        ))
        .unwrap();
        s.route_add(Route::special(RouteType::Prohibit, ip("203.0.113.128"), 26))
            .unwrap();
    });
    let send = |t: &mut Topo, dst: &str| {
        t.with(&a, |s, now| {
            s.ip_send(now, ip(dst), 253, b"x", IpSendOpts::default())
        })
    };
    assert_eq!(send(&mut t, "203.0.113.1").unwrap_err().errno(), "EINVAL");
    assert_eq!(
        send(&mut t, "203.0.113.65").unwrap_err(),
        SendError::Route(RouteError::HostUnreachable)
    );
    assert_eq!(send(&mut t, "203.0.113.129").unwrap_err().errno(), "EACCES");
    t.with(&a, |s, _| s.route_del(ip("0.0.0.0"), 0, 254))
        .unwrap();
    assert_eq!(
        send(&mut t, "198.51.100.1").unwrap_err().errno(),
        "ENETUNREACH"
    );
    assert_eq!(t.stack(&a).snmp().ip.out_no_routes, 1);

    // The same types on the router, for forwarded packets.
    let (mut t, a, r, _c) = routed(1500);
    t.with(&r, |s, _| {
        s.route_add(Route::special(RouteType::Blackhole, ip("203.0.113.0"), 26))
            .unwrap();
        s.route_add(Route::special(
            RouteType::Unreachable,
            ip("203.0.113.64"),
            26,
        ))
        .unwrap();
        s.route_add(Route::special(RouteType::Prohibit, ip("203.0.113.128"), 26))
            .unwrap();
    });
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    for dst in ["203.0.113.1", "203.0.113.65", "203.0.113.129"] {
        t.with(&a, |s, now| {
            s.ip_send(now, ip(dst), 253, b"x", IpSendOpts::default())
        })
        .unwrap();
        t.run_ms(200);
    }
    let codes: Vec<(u8, u8)> = t
        .raw_drain(&a, sock)
        .iter()
        .map(|e| (icmp_of(e).0, icmp_of(e).1))
        .collect();
    assert_eq!(codes, vec![(3, 1), (3, 13)], "blackhole is silent");
    let _ = rn;
}

#[test]
fn unknown_protocol_answered_and_icmp_errors_rate_limited() {
    let (mut t, a, b) = two_hosts();
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    for _ in 0..10 {
        t.with(&a, |s, now| {
            s.ip_send(now, ip("192.0.2.2"), 253, b"hello", IpSendOpts::default())
        })
        .unwrap();
        t.run_ms(10);
    }
    let errs = t.raw_drain(&a, sock);
    // Burst of 6 per destination, then one per second.
    assert_eq!(errs.len(), 6);
    assert!(errs.iter().all(|e| (icmp_of(e).0, icmp_of(e).1) == (3, 2)));
    let sb = t.stack(&b).snmp().clone();
    assert_eq!(
        (
            sb.ip.in_unknown_protos,
            sb.icmp.out_dest_unreachs,
            sb.icmp.out_rate_limit_host
        ),
        (10, 6, 4)
    );
    assert_eq!(
        t.stack(&b)
            .drops()
            .get(netpath::drop::DropReason::IpNoproto),
        10
    );
    // A second later one more is allowed.
    t.sim.run_until(t.sim.now().max(Instant::from_secs(2)));
    t.with(&a, |s, now| {
        s.ip_send(now, ip("192.0.2.2"), 253, b"again", IpSendOpts::default())
    })
    .unwrap();
    t.run_ms(10);
    assert_eq!(t.raw_drain(&a, sock).len(), 1);
}

#[test]
fn no_icmp_error_about_an_icmp_error_or_a_broadcast() {
    let (mut t, a, b) = two_hosts();
    let sock = t.with(&a, |s, _| s.raw_open(1, 100));
    // An ICMP destination-unreachable to B about nothing B knows: B must
    // not answer it. And a datagram to the subnet broadcast of an unknown
    // protocol: no error either.
    let mut err = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    err.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
    ]);
    err.extend_from_slice(&[0; 8]);
    let c = netpath_wire::checksum::checksum(&err);
    err[2..4].copy_from_slice(&c.to_be_bytes());
    t.with(&a, |s, now| {
        s.ip_send(now, ip("192.0.2.2"), 1, &err, IpSendOpts::default())
    })
    .unwrap();
    let an = a.nics[0];
    t.with(&a, |s, now| {
        s.ip_send(
            now,
            ip("192.0.2.255"),
            253,
            b"x",
            IpSendOpts {
                oif: Some(an),
                ..IpSendOpts::default()
            },
        )
    })
    .unwrap();
    t.run_ms(100);
    assert!(t.raw_drain(&a, sock).is_empty());
    let sb = t.stack(&b).snmp().clone();
    assert_eq!(sb.icmp.in_dest_unreachs, 1);
    assert_eq!(sb.icmp.out_msgs, 0);
}

#[test]
fn bad_ip_options_draw_parameter_problem_and_source_routes_are_refused() {
    let (mut t, a, b) = two_hosts();
    let (an, bn) = (a.nics[0], b.nics[0]);
    let sock = t.with(&a, |s, _| s.raw_open(1, 10));
    // Resolve ARP first with a normal ping.
    ping(&mut t, &a, "192.0.2.2", 1, 8, IpSendOpts::default()).unwrap();
    t.run_ms(100);
    assert_eq!(t.raw_drain(&a, sock).len(), 1);
    let peer_mac = t.stack(&b).dev(bn).unwrap().mac();
    let my_mac = t.stack(&a).dev(an).unwrap().mac();
    let send_with_options = |t: &mut Topo, opts: &[u8]| {
        let hl = 20 + opts.len();
        let mut ipb = vec![0u8; hl + 8];
        ipb[0] = 0x40 | (hl / 4) as u8;
        ipb[2..4].copy_from_slice(&((hl + 8) as u16).to_be_bytes());
        ipb[8] = 64;
        ipb[9] = 253;
        ipb[12..16].copy_from_slice(&[192, 0, 2, 1]);
        ipb[16..20].copy_from_slice(&[192, 0, 2, 2]);
        ipb[20..hl].copy_from_slice(opts);
        let c = netpath_wire::checksum::checksum(&ipb[..hl]);
        ipb[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = Vec::new();
        frame.extend_from_slice(peer_mac.as_bytes());
        frame.extend_from_slice(my_mac.as_bytes());
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ipb);
        t.with(&a, |s, now| {
            let mut skb = s.pool().alloc_from(64, &frame).unwrap();
            skb.meta.egress_dev = Some(an);
            s.dev_queue_xmit(now, skb).unwrap();
        });
        t.run_ms(100);
    };
    // A record-route option whose length runs past the header.
    send_with_options(&mut t, &[7, 12, 4, 0]);
    let got = t.raw_drain(&a, sock);
    assert_eq!(got.len(), 1);
    assert_eq!((icmp_of(&got[0]).0, icmp_of(&got[0]).1), (12, 0));
    assert_eq!(got[0].data()[4], 21, "pointer at the bad length byte");
    // A loose source route: dropped quietly (accept_source_route = 0).
    send_with_options(&mut t, &[0x83, 7, 4, 198, 51, 100, 1, 0]);
    assert!(t.raw_drain(&a, sock).is_empty());
    let sb = t.stack(&b).snmp().clone();
    assert_eq!((sb.ip.in_hdr_errors, sb.icmp.out_parm_probs), (1, 1));
}

/// `ip route change` needs the route to exist; `ip route replace` adds or
/// replaces; the metrics show as `ip route` prints them and the route's MTU
/// reaches the lookup's answer, locked.
#[test]
fn route_change_and_replace_with_metrics() {
    use netpath::ipv4::route::Route;
    let (mut t, a, _b) = two_hosts();
    let nic = a.nics[0];
    let mut r = Route::unicast(ip("203.0.113.0"), 24, None, Some(nic));
    r.mtu = Some(1280);
    r.mtu_lock = true;
    r.advmss = Some(1000);
    r.initcwnd = Some(20);
    t.with(&a, |s, _| {
        assert!(
            s.route_change(r.clone()).is_err(),
            "change of a missing route"
        );
        s.route_replace(r.clone()).unwrap();
        let shown: Vec<String> = s.routes().iter().map(|x| x.to_string()).collect();
        assert!(
            shown.iter().any(|l| l.contains("203.0.113.0/24")
                && l.contains("mtu lock 1280 advmss 1000 initcwnd 20")),
            "{shown:?}"
        );
        let d = s.route_get(ip("203.0.113.9"), None, None, None, 0).unwrap();
        assert_eq!((d.mtu, d.mtu_locked), (1280, true));
        let mut r2 = r.clone();
        r2.mtu = Some(1400);
        r2.mtu_lock = false;
        s.route_change(r2).unwrap();
        let d = s.route_get(ip("203.0.113.9"), None, None, None, 0).unwrap();
        assert_eq!((d.mtu, d.mtu_locked), (1400, false));
        let n = s
            .routes()
            .iter()
            .filter(|x| x.dst == ip("203.0.113.0"))
            .count();
        assert_eq!(n, 1, "replaced, not added");
    });
}
