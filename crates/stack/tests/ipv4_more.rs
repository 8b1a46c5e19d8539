//! IPv4 end to end, continued: fragmentation on the wire and reassembly
//! under a reordering, duplicating link; netfilter rules proven by what
//! crosses the wire and by their counters; an IPIP tunnel between two
//! routers.

mod topo;

use netpath::ipv4::output::IpSendOpts;
use netpath::ipv4::route::Route;
use netpath::netfilter::{Proto, RejectWith, Rule, Table, Target};
use netpath::sim::LinkConfig;
use netpath::time::Duration;
use topo::{icmp_of, ip, ip_of, Host, Topo};

fn two_hosts(link: LinkConfig) -> (Topo, Host, Host) {
    let mut t = Topo::new(5);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, link);
    (t, a, b)
}

#[test]
fn a_9000_byte_ping_is_fragmented_and_reassembled_under_reordering_and_duplication() {
    let link = LinkConfig {
        latency: Duration::from_micros(100),
        reorder: 0.3,
        reorder_delay: Duration::from_micros(300),
        duplicate: 0.2,
        ..LinkConfig::default()
    };
    let (mut t, a, b) = two_hosts(link);
    let sock = t.with(&a, |s, _| s.raw_open(1, 10));
    let data: Vec<u8> = (0..8972u32).map(|i| (i * 7) as u8).collect();
    t.with(&a, |s, now| {
        s.icmp_echo_send(now, ip("192.0.2.2"), 7, 1, &data, IpSendOpts::default())
    })
    .unwrap();
    t.run_ms(200);
    let got = t.raw_drain(&a, sock);
    assert_eq!(got.len(), 1, "one reassembled reply");
    assert_eq!(icmp_of(&got[0]), (0, 0, 7, 1));
    assert!(
        got[0].data()[8..] == data[..],
        "reply data differs: {} bytes",
        got[0].len() - 8
    );
    assert_eq!(ip_of(&got[0]).6, 9000);
    let sa = t.stack(&a).snmp().ip;
    let sb = t.stack(&b).snmp().ip;
    // 9000 bytes over MTU 1500: 7 fragments each way.
    assert_eq!((sa.frag_oks, sa.frag_creates), (1, 7));
    assert_eq!((sb.frag_oks, sb.frag_creates), (1, 7));
    assert_eq!((sb.reasm_oks, sa.reasm_oks), (1, 1));
    assert!(
        sb.reasm_reqds >= 7,
        "duplicates count too: {}",
        sb.reasm_reqds
    );
    let dups = t.stack(&b).drops().get(netpath::drop::DropReason::DupFrag)
        + t.stack(&a).drops().get(netpath::drop::DropReason::DupFrag);
    let st = t.sim.link_stats(t.links[0]).unwrap();
    assert!(
        st.duplicated > 0 && st.reordered > 0,
        "the link did its worst: {st:?}"
    );
    // A duplicate arriving while its datagram is still being reassembled is
    // dropped as DUP_FRAG; one arriving later (or an ARP duplicate) is not.
    assert!(
        dups >= 1 && dups <= st.duplicated,
        "{dups} DUP_FRAG drops for {} duplicates",
        st.duplicated
    );
}

/// A (192.0.2.1) — R (192.0.2.254 | 198.51.100.254) — C (198.51.100.1).
fn routed() -> (Topo, Host, Host, Host) {
    Topo::routed(6, 1500)
}

/// A TCP SYN from `sport` to `dport` with sequence `isn`.
fn syn(src: &str, dst: &str, sport: u16, dport: u16, isn: u32) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..8].copy_from_slice(&isn.to_be_bytes());
    h[12] = 5 << 4;
    h[13] = 0x02;
    h[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut c = netpath_wire::checksum::Checksum::pseudo_header_v4(ip(src), ip(dst), 6, 20);
    c.add_bytes(&h);
    h[16..18].copy_from_slice(&c.finish().to_be_bytes());
    h
}

#[test]
fn netfilter_rules_decide_what_crosses_the_wire() {
    let (mut t, a, r, c) = routed();
    let (r_in, r_out) = (r.nics[0], r.nics[1]);
    t.with(&c, |s, _| {
        let nf = s.netfilter_mut();
        // INPUT: drop pings, log and mark-then-match proto 253, reset TCP 5004,
        // admin-prohibit TCP 5003.
        nf.append(
            Table::Filter,
            "INPUT",
            Rule::new()
                .proto(Proto::Icmp)
                .icmp_type(8)
                .target(Target::Drop),
        )
        .unwrap();
        nf.append(
            Table::Filter,
            "INPUT",
            Rule::new()
                .proto(Proto::Tcp)
                .dport(5004)
                .target(Target::Reject(RejectWith::TcpReset)),
        )
        .unwrap();
        nf.append(
            Table::Filter,
            "INPUT",
            Rule::new()
                .proto(Proto::Tcp)
                .dport(5003)
                .target(Target::Reject(RejectWith::IcmpAdminProhibited)),
        )
        .unwrap();
        nf.append(
            Table::Mangle,
            "PREROUTING",
            Rule::new()
                .proto(Proto::Num(253))
                .target(Target::set_mark(42)),
        )
        .unwrap();
        nf.append(
            Table::Filter,
            "INPUT",
            Rule::new().mark(42, u32::MAX).target(Target::log("np253 ")),
        )
        .unwrap();
    });
    t.with(&r, |s, _| {
        // FORWARD on the router: from A's side out to C's side, refuse
        // protocol 254 with host-prohibited.
        let rule = Rule::new()
            .in_dev(r_in)
            .out_dev(r_out)
            .proto(Proto::Num(254))
            .target(Target::Reject(RejectWith::IcmpHostProhibited));
        s.netfilter_mut()
            .append(Table::Filter, "FORWARD", rule)
            .unwrap();
    });
    let icmp = t.with(&a, |s, _| s.raw_open(1, 100));
    let tcp = t.with(&a, |s, _| s.raw_open(6, 100));
    let send = |t: &mut Topo, proto: u8, payload: &[u8]| {
        t.with(&a, |s, now| {
            s.ip_send(
                now,
                ip("198.51.100.1"),
                proto,
                payload,
                IpSendOpts::default(),
            )
        })
        .unwrap();
        t.run_ms(200);
    };
    // Ping: dropped at C's INPUT, nothing comes back.
    t.with(&a, |s, now| {
        s.icmp_echo_send(
            now,
            ip("198.51.100.1"),
            1,
            1,
            &[0; 56],
            IpSendOpts::default(),
        )
    })
    .unwrap();
    t.run_ms(200);
    assert!(t.raw_drain(&a, icmp).is_empty());
    // TCP to 5004: RST+ACK, seq 0, ack ISN+1, window 0, IP id 0 and DF (as the capture).
    send(
        &mut t,
        6,
        &syn("192.0.2.1", "198.51.100.1", 40000, 5004, 1000),
    );
    let rst = t.raw_drain(&a, tcp);
    assert_eq!(rst.len(), 1);
    let d = rst[0].data();
    assert_eq!(d[13], 0x14, "RST+ACK");
    assert_eq!(u32::from_be_bytes([d[4], d[5], d[6], d[7]]), 0);
    assert_eq!(u32::from_be_bytes([d[8], d[9], d[10], d[11]]), 1001);
    assert_eq!(u16::from_be_bytes([d[14], d[15]]), 0);
    let (src, _, _, _, df, id, _) = ip_of(&rst[0]);
    assert_eq!((src, df, id), (ip("198.51.100.1"), true, 0));
    // TCP to 5003: ICMP admin prohibited (type 3 code 13) quoting the SYN.
    send(&mut t, 6, &syn("192.0.2.1", "198.51.100.1", 40001, 5003, 7));
    let e = t.raw_drain(&a, icmp);
    assert_eq!(
        e.iter()
            .map(|e| (icmp_of(e).0, icmp_of(e).1))
            .collect::<Vec<_>>(),
        vec![(3, 13)]
    );
    // Protocol 253: marked in mangle, logged in filter, then (no handler) protocol unreachable.
    send(&mut t, 253, b"marked");
    let e = t.raw_drain(&a, icmp);
    assert_eq!(
        e.iter()
            .map(|e| (icmp_of(e).0, icmp_of(e).1))
            .collect::<Vec<_>>(),
        vec![(3, 2)]
    );
    let line = t
        .stack(&c)
        .netfilter()
        .log_lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("np253 ") && line.contains("SRC=192.0.2.1") && line.contains("MARK=0x2a"),
        "{line}"
    );
    // Protocol 254: refused by the router's FORWARD chain.
    send(&mut t, 254, b"x");
    let e = t.raw_drain(&a, icmp);
    assert_eq!(e.len(), 1);
    assert_eq!((icmp_of(&e[0]).0, icmp_of(&e[0]).1), (3, 10));
    assert_eq!(ip_of(&e[0]).0, ip("192.0.2.254"), "from the router");
    // Rule counters and drop reasons.
    let nf = t.stack(&c).netfilter();
    let counts: Vec<u64> = (1..=4)
        .map(|n| nf.counters(Table::Filter, "INPUT", n).unwrap().packets)
        .collect();
    assert_eq!(counts, vec![1, 1, 1, 1]);
    assert_eq!(
        nf.counters(Table::Mangle, "PREROUTING", 1).unwrap().packets,
        1
    );
    assert_eq!(
        t.stack(&r)
            .netfilter()
            .counters(Table::Filter, "FORWARD", 1)
            .unwrap()
            .packets,
        1
    );
    assert_eq!(
        t.stack(&c)
            .drops()
            .get(netpath::drop::DropReason::NetfilterDrop),
        3
    );
    assert_eq!(
        t.stack(&r)
            .drops()
            .get(netpath::drop::DropReason::NetfilterDrop),
        1
    );
}

#[test]
fn an_ipip_tunnel_between_two_routers() {
    // H1 (10/8 side: 198.51.100.1) - R1 ==tunnel over 203.0.113.0/24== R2 - H2 (192.0.2.2)
    let mut t = Topo::new(9);
    let h1 = t.host(&["198.51.100.1/24"]);
    let r1 = t.host(&["198.51.100.254/24", "203.0.113.1/24"]);
    let r2 = t.host(&["203.0.113.2/24", "192.0.2.254/24"]);
    let h2 = t.host(&["192.0.2.2/24"]);
    t.link(&h1, 0, &r1, 0, LinkConfig::default());
    t.link(&r1, 1, &r2, 0, LinkConfig::default());
    t.link(&r2, 1, &h2, 0, LinkConfig::default());
    t.default_route(&h1, "198.51.100.254");
    t.default_route(&h2, "192.0.2.254");
    for (r, local, remote, far) in [
        (&r1, "203.0.113.1", "203.0.113.2", "192.0.2.0"),
        (&r2, "203.0.113.2", "203.0.113.1", "198.51.100.0"),
    ] {
        t.with(r, |s, _| {
            s.set_ip_forward(true);
            let tun = s.add_ipip("tunl1", ip(local), ip(remote)).unwrap();
            s.set_up(tun, true).unwrap();
            s.route_add(Route::unicast(ip(far), 24, None, Some(tun)))
                .unwrap();
        });
    }
    let tap = t.with(&r2, |s, _| {
        let n = s.dev_by_name("eth0").unwrap();
        s.add_tap(netpath::dev::taps::Tap::protocol(
            Some(n),
            0x0800,
            netpath::dev::taps::TapSink::queue(100),
        ))
    });
    let sock = t.with(&h1, |s, _| s.raw_open(1, 10));
    t.with(&h1, |s, now| {
        s.icmp_echo_send(
            now,
            ip("192.0.2.2"),
            9,
            1,
            &[0xab; 56],
            IpSendOpts::default(),
        )
    })
    .unwrap();
    t.run_ms(300);
    let got = t.raw_drain(&h1, sock);
    assert_eq!(
        got.iter().map(icmp_of).collect::<Vec<_>>(),
        vec![(0, 0, 9, 1)]
    );
    // On the underlay: outer 203.0.113.1 -> .2, protocol 4, DF, 104 bytes.
    let seen: Vec<_> = t.with(&r2, |s, _| std::iter::from_fn(|| s.tap_recv(tap)).collect());
    let outer = netpath_wire::ipv4::Ipv4Packet::new_checked(seen[0].data()).unwrap();
    assert_eq!(
        (
            outer.src_addr(),
            outer.dst_addr(),
            outer.protocol().0,
            outer.total_len(),
            outer.dont_frag()
        ),
        (ip("203.0.113.1"), ip("203.0.113.2"), 4, 104, true)
    );
    let inner = netpath_wire::ipv4::Ipv4Packet::new_checked(outer.payload()).unwrap();
    assert_eq!(
        (inner.src_addr(), inner.dst_addr(), inner.total_len()),
        (ip("198.51.100.1"), ip("192.0.2.2"), 84)
    );
    let tun = t.stack(&r2).dev_by_name("tunl1").unwrap();
    assert_eq!(t.stack(&r2).dev(tun).unwrap().stats().rx_packets, 1);
}

#[test]
fn policy_routing_by_fwmark_and_ip_route_get() {
    use netpath::ipv4::route::{FibRule, RuleAction};
    // A has two routers on its link; marked traffic goes by the second.
    let mut t = Topo::new(11);
    let a = t.host(&["192.0.2.1/24"]);
    let an = a.nics[0];
    t.with(&a, |s, _| {
        s.route_add(Route::unicast(
            ip("0.0.0.0"),
            0,
            Some(ip("192.0.2.254")),
            Some(an),
        ))
        .unwrap();
        let mut r = Route::unicast(ip("0.0.0.0"), 0, Some(ip("192.0.2.253")), Some(an));
        r.table = 100;
        s.route_add(r).unwrap();
        s.rule_add(FibRule {
            fwmark: Some((7, 0xff)),
            ..FibRule::lookup(100, 100)
        });
        s.rule_add(FibRule {
            to: Some((ip("203.0.113.0"), 24)),
            action: RuleAction::Prohibit,
            ..FibRule::lookup(90, 0)
        });
    });
    let s = t.stack(&a);
    let plain = s
        .route_get(ip("198.51.100.9"), None, None, None, 0)
        .unwrap();
    let marked = s
        .route_get(ip("198.51.100.9"), None, None, None, 7)
        .unwrap();
    assert_eq!(
        (plain.gateway, plain.dev, plain.prefsrc),
        (Some(ip("192.0.2.254")), an, Some(ip("192.0.2.1")))
    );
    assert_eq!(marked.gateway, Some(ip("192.0.2.253")));
    assert_eq!(
        s.route_get(ip("203.0.113.5"), None, None, None, 0)
            .unwrap_err()
            .errno(),
        "EACCES"
    );
    assert_eq!(
        s.route_get(ip("192.0.2.1"), None, None, None, 0)
            .unwrap()
            .rtype,
        netpath::ipv4::route::RouteType::Local
    );
    let table: Vec<String> = s.routes().iter().map(|r| r.to_string()).collect();
    assert!(
        table.contains(&format!("default via 192.0.2.253 dev {an} table 100")),
        "{table:?}"
    );
    assert!(
        table.contains(&format!(
            "192.0.2.0/24 dev {an} proto kernel scope link src 192.0.2.1"
        )),
        "{table:?}"
    );
    assert!(
        table.contains(&format!(
            "local 192.0.2.1 dev {an} table local proto kernel scope host src 192.0.2.1"
        )),
        "{table:?}"
    );
}

#[test]
fn a_router_sends_a_redirect_to_a_better_gateway_on_the_same_link() {
    // A and two routers on one link (a hub); A's default is R, R's route to
    // 203.0.113.0/24 is via G on the same link: R forwards and tells A.
    let mut t = Topo::new(12);
    let a = t.host(&["192.0.2.1/24"]);
    let r = t.host(&["192.0.2.254/24"]);
    let g = t.host(&["192.0.2.253/24"]);
    let ends = [
        (a.node, netpath::sim::PortId(0)),
        (r.node, netpath::sim::PortId(0)),
        (g.node, netpath::sim::PortId(0)),
    ];
    t.sim.add_link(LinkConfig::default(), &ends).unwrap();
    let rn = r.nics[0];
    t.default_route(&a, "192.0.2.254");
    t.with(&r, |s, _| {
        s.set_ip_forward(true);
        s.route_add(Route::unicast(
            ip("203.0.113.0"),
            24,
            Some(ip("192.0.2.253")),
            Some(rn),
        ))
        .unwrap();
    });
    let sock = t.with(&a, |s, _| s.raw_open(1, 10));
    t.with(&a, |s, now| {
        s.ip_send(now, ip("203.0.113.7"), 253, b"x", IpSendOpts::default())
    })
    .unwrap();
    t.run_ms(200);
    let got = t.raw_drain(&a, sock);
    let redirect = got
        .iter()
        .find(|e| icmp_of(e).0 == 5)
        .expect("an ICMP redirect");
    assert_eq!(icmp_of(redirect).1, 1, "redirect for host");
    assert_eq!(
        &redirect.data()[4..8],
        &[192, 0, 2, 253],
        "the better gateway"
    );
    assert_eq!(t.stack(&r).snmp().icmp.out_redirects, 1);
    assert_eq!(
        t.stack(&g).snmp().ip.in_receives,
        1,
        "and the packet was forwarded to G"
    );
}

#[test]
fn missing_fragments_time_out_with_icmp_reassembly_time_exceeded() {
    use netpath::sched::tc::{TcAction, TcDirection, TcFilter, TcMatch};

    let (mut t, a, b) = two_hosts(LinkConfig::default());
    let bn = b.nics[0];
    // B's tc ingress loses every non-first fragment (offset != 0).
    t.with(&b, |s, _| {
        // The fragment-offset bits of the IPv4 header (u32 at nh+4, low 13 bits).
        let m = TcMatch::U32 {
            offset: 4,
            value: 0,
            mask: 0x0000_1fff,
        };
        // Protocol 253 with offset 0 passes; its other fragments are lost.
        s.tc_add_filter(
            bn,
            TcDirection::Ingress,
            TcFilter {
                pref: 1,
                matches: vec![TcMatch::IpProto(253), m],
                actions: vec![TcAction::Pass],
            },
        )
        .unwrap();
        s.tc_add_filter(
            bn,
            TcDirection::Ingress,
            TcFilter {
                pref: 2,
                matches: vec![TcMatch::IpProto(253)],
                actions: vec![TcAction::Drop],
            },
        )
        .unwrap();
    });
    let sock = t.with(&a, |s, _| s.raw_open(1, 10));
    t.with(&a, |s, now| {
        s.ip_send(
            now,
            ip("192.0.2.2"),
            253,
            &[0x5a; 4000],
            IpSendOpts::default(),
        )
    })
    .unwrap();
    t.run_ms(29_000);
    assert!(t.raw_drain(&a, sock).is_empty(), "nothing before 30 s");
    t.run_ms(2_000);
    let got = t.raw_drain(&a, sock);
    assert_eq!(
        got.iter()
            .map(|e| (icmp_of(e).0, icmp_of(e).1))
            .collect::<Vec<_>>(),
        vec![(11, 1)]
    );
    let sb = t.stack(&b).snmp().ip;
    assert_eq!((sb.reasm_timeout, sb.reasm_fails, sb.reasm_oks), (1, 1, 0));
    assert_eq!(
        t.stack(&b)
            .drops()
            .get(netpath::drop::DropReason::FragReasmTimeout),
        1
    );
}
