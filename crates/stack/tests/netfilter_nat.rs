//! Connection tracking and NAT end to end on A (192.0.2.1) — R
//! (192.0.2.254 | 198.51.100.254, forwarding) — C (198.51.100.1):
//! MASQUERADE, SNAT with port ranges and clashes, DNAT, state matches on
//! FORWARD, RELATED ICMP errors translated back, the table bound, expiry
//! in virtual time. Every rewritten packet is checked on the wire:
//! addresses, ports / ids and checksums (IPv4 header, ICMP, UDP).

mod topo;

use core::net::Ipv4Addr;

use netpath::ipv4::output::IpSendOpts;
use netpath::netfilter::{CtState, Policy, PortRange, Proto, Rule, Table, Target};
use netpath::skb::Skb;
use netpath_wire::checksum::Checksum;
use netpath_wire::icmpv4::Icmpv4Packet;
use netpath_wire::ipv4::Ipv4Packet;
use netpath_wire::udp::UdpPacket;
use topo::{icmp_of, ip, ip_of, Host, Topo};

fn routed() -> (Topo, Host, Host, Host) {
    Topo::routed(11, 1500)
}

/// A UDP datagram (header and payload) with a valid checksum.
fn udp(src: &str, dst: &str, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = (8 + data.len()) as u16;
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(data);
    let mut c = Checksum::pseudo_header_v4(ip(src), ip(dst), 17, len);
    c.add_bytes(&h);
    h[6..8].copy_from_slice(&c.finish().to_be_bytes());
    h
}

/// The IPv4 header checksum holds and the ICMP message's checksum holds.
fn assert_icmp_ok(skb: &Skb) {
    let p = Ipv4Packet::new_checked(skb.network_header_bytes()).unwrap();
    assert!(p.verify_checksum(), "IPv4 header checksum");
    assert!(
        Icmpv4Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum(),
        "ICMP checksum"
    );
}

/// (src, dst, sport, dport) of a UDP datagram, its checksums verified.
fn udp_ok(skb: &Skb) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let p = Ipv4Packet::new_checked(skb.network_header_bytes()).unwrap();
    assert!(p.verify_checksum(), "IPv4 header checksum");
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert!(
        u.verify_checksum(p.src_addr(), p.dst_addr()),
        "UDP checksum"
    );
    (p.src_addr(), p.dst_addr(), u.src_port(), u.dst_port())
}

fn ping(t: &mut Topo, from: &Host, to: &str, id: u16, seq: u16) {
    t.with(from, |s, now| {
        s.icmp_echo_send(now, ip(to), id, seq, b"natping", IpSendOpts::default())
    })
    .unwrap();
}

fn send_udp(t: &mut Topo, from: &Host, src: &str, dst: &str, sport: u16, dport: u16) {
    let d = udp(src, dst, sport, dport, b"payload");
    t.with(from, |s, now| {
        s.ip_send(now, ip(dst), 17, &d, IpSendOpts::default())
    })
    .unwrap();
}

fn masquerade(t: &mut Topo, r: &Host) {
    let out = r.nics[1];
    t.with(r, |s, _| {
        let nf = s.netfilter_mut();
        // The address MASQUERADE uses comes from `ip addr add` on R.
        nf.append(
            Table::Nat,
            "POSTROUTING",
            Rule::new()
                .out_dev(out)
                .target(Target::Masquerade { ports: None }),
        )
        .unwrap();
    });
}

#[test]
fn masquerade_rewrites_pings_and_replies_come_back_to_a() {
    let (mut t, a, r, c) = routed();
    masquerade(&mut t, &r);
    let at_c = t.with(&c, |s, _| s.raw_open(1, 10));
    let at_a = t.with(&a, |s, _| s.raw_open(1, 10));
    ping(&mut t, &a, "198.51.100.1", 7, 1);
    t.run_ms(100);
    let seen = t.raw_drain(&c, at_c);
    let req = seen
        .iter()
        .find(|s| icmp_of(s).0 == 8)
        .expect("C saw the ping");
    assert_eq!(ip_of(req).0, ip("198.51.100.254"), "source masqueraded");
    assert_eq!(icmp_of(req), (8, 0, 7, 1));
    assert_icmp_ok(req);
    let got = t.raw_drain(&a, at_a);
    assert_eq!(got.len(), 1, "A got the reply");
    let (src, dst, ..) = ip_of(&got[0]);
    assert_eq!((src, dst), (ip("198.51.100.1"), ip("192.0.2.1")));
    assert_eq!(icmp_of(&got[0]), (0, 0, 7, 1), "its own id back");
    assert_icmp_ok(&got[0]);
    // One connection, original and reply tuples as conntrack -L shows.
    let now = t.sim.now();
    let ct = t.stack(&r).netfilter().conntrack();
    let list = ct.list(now);
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        list[0].contains("src=192.0.2.1 dst=198.51.100.1 id=7")
            && list[0].contains("src=198.51.100.1 dst=198.51.100.254 id=7"),
        "{}",
        list[0]
    );
    assert_eq!(ct.stats.insert, 1);
    assert!(ct.stats.found >= 1);
    // Only the first packet traversed the nat chain.
    let n = t
        .stack(&r)
        .netfilter()
        .counters(Table::Nat, "POSTROUTING", 1)
        .unwrap();
    assert_eq!(n.packets, 1);
    // A second ping of the same id reuses the binding.
    ping(&mut t, &a, "198.51.100.1", 7, 2);
    t.run_ms(100);
    assert_eq!(icmp_of(&t.raw_drain(&a, at_a)[0]), (0, 0, 7, 2));
    let n = t
        .stack(&r)
        .netfilter()
        .counters(Table::Nat, "POSTROUTING", 1)
        .unwrap();
    assert_eq!(n.packets, 1);
}

#[test]
fn snat_port_range_resolves_clashes_and_drops_when_exhausted() {
    let (mut t, a, r, c) = routed();
    let out = r.nics[1];
    t.with(&r, |s, _| {
        s.netfilter_mut()
            .append(
                Table::Nat,
                "POSTROUTING",
                Rule::new()
                    .out_dev(out)
                    .proto(Proto::Udp)
                    .target(Target::Snat {
                        addr: ip("198.51.100.254"),
                        ports: Some(PortRange::from(40000..=40001)),
                    }),
            )
            .unwrap();
    });
    let at_c = t.with(&c, |s, _| s.raw_open(17, 10));
    for sport in [5000, 5001, 5002] {
        send_udp(&mut t, &a, "192.0.2.1", "198.51.100.1", sport, 9);
    }
    t.run_ms(100);
    let got: Vec<_> = t.raw_drain(&c, at_c).iter().map(udp_ok).collect();
    assert_eq!(got.len(), 2, "the third flow finds no free port: {got:?}");
    let mut ports: Vec<u16> = got.iter().map(|g| g.2).collect();
    ports.sort_unstable();
    assert_eq!(ports, [40000, 40001]);
    assert!(got
        .iter()
        .all(|g| (g.0, g.1, g.3) == (ip("198.51.100.254"), ip("198.51.100.1"), 9)));
    assert_eq!(t.stack(&r).netfilter().conntrack().count(), 2);
}

#[test]
fn dnat_sends_a_to_c_and_replies_come_back_from_r() {
    let (mut t, a, r, c) = routed();
    let r_in = r.nics[0];
    t.with(&r, |s, _| {
        let nf = s.netfilter_mut();
        nf.append(
            Table::Nat,
            "PREROUTING",
            Rule::new()
                .in_dev(r_in)
                .proto(Proto::Udp)
                .dport(8080)
                .target(Target::Dnat {
                    addr: ip("198.51.100.1"),
                    port: Some(9),
                }),
        )
        .unwrap();
        nf.append(
            Table::Nat,
            "PREROUTING",
            Rule::new()
                .in_dev(r_in)
                .proto(Proto::Icmp)
                .target(Target::Dnat {
                    addr: ip("198.51.100.1"),
                    port: None,
                }),
        )
        .unwrap();
    });
    // A pings R's address: C answers, A sees the answer from R.
    let at_c = t.with(&c, |s, _| s.raw_open(1, 10));
    let at_a = t.with(&a, |s, _| s.raw_open(1, 10));
    ping(&mut t, &a, "192.0.2.254", 21, 1);
    t.run_ms(100);
    let seen = t.raw_drain(&c, at_c);
    let req = seen.iter().find(|s| icmp_of(s).0 == 8).expect("C got it");
    assert_eq!(
        (ip_of(req).0, ip_of(req).1),
        (ip("192.0.2.1"), ip("198.51.100.1"))
    );
    assert_icmp_ok(req);
    let got = t.raw_drain(&a, at_a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (ip_of(&got[0]).0, ip_of(&got[0]).1),
        (ip("192.0.2.254"), ip("192.0.2.1"))
    );
    assert_eq!(icmp_of(&got[0]), (0, 0, 21, 1));
    assert_icmp_ok(&got[0]);

    // UDP to R:8080 reaches C:9; no socket listens there, C answers port
    // unreachable, which is RELATED and reaches A from R, the quoted
    // header translated back to what A sent.
    send_udp(&mut t, &a, "192.0.2.1", "192.0.2.254", 5353, 8080);
    t.run_ms(100);
    let got = t.raw_drain(&a, at_a);
    assert_eq!(got.len(), 1, "the ICMP error reached A");
    let e = &got[0];
    assert_icmp_ok(e);
    assert_eq!(
        (icmp_of(e).0, icmp_of(e).1),
        (3, 3),
        "port unreachable from C"
    );
    assert_eq!(
        (ip_of(e).0, ip_of(e).1),
        (ip("192.0.2.254"), ip("192.0.2.1"))
    );
    let inner = Ipv4Packet::new_unchecked(&e.data()[8..]);
    assert!(inner.verify_checksum(), "quoted header checksum");
    assert_eq!(
        (inner.src_addr(), inner.dst_addr()),
        (ip("192.0.2.1"), ip("192.0.2.254"))
    );
    let l4 = &e.data()[8 + inner.header_len()..];
    assert_eq!(u16::from_be_bytes([l4[0], l4[1]]), 5353);
    assert_eq!(u16::from_be_bytes([l4[2], l4[3]]), 8080);
    assert_eq!(t.stack(&r).netfilter().conntrack().count(), 2);
}

#[test]
fn related_error_about_a_masqueraded_datagram_is_translated_back() {
    let (mut t, a, r, _c) = routed();
    masquerade(&mut t, &r);
    let at_a = t.with(&a, |s, _| s.raw_open(1, 10));
    send_udp(&mut t, &a, "192.0.2.1", "198.51.100.1", 6000, 7);
    t.run_ms(100);
    let got = t.raw_drain(&a, at_a);
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_icmp_ok(e);
    assert_eq!(
        (icmp_of(e).0, icmp_of(e).1),
        (3, 3),
        "port unreachable from C"
    );
    assert_eq!(
        (ip_of(e).0, ip_of(e).1),
        (ip("198.51.100.1"), ip("192.0.2.1"))
    );
    let inner = Ipv4Packet::new_unchecked(&e.data()[8..]);
    assert!(inner.verify_checksum());
    assert_eq!(
        (inner.src_addr(), inner.dst_addr()),
        (ip("192.0.2.1"), ip("198.51.100.1"))
    );
    let l4 = &e.data()[8 + inner.header_len()..];
    assert_eq!(u16::from_be_bytes([l4[0], l4[1]]), 6000);
    // The quoted UDP checksum still matches the translated header.
    let total = usize::from(inner.total_len()) - inner.header_len();
    if l4.len() >= total {
        let u = UdpPacket::new_checked(&l4[..total]).unwrap();
        assert!(u.verify_checksum(inner.src_addr(), inner.dst_addr()));
    }
}

#[test]
fn ctstate_lets_replies_through_but_not_new_connections_from_c() {
    let (mut t, a, r, c) = routed();
    let r_in = r.nics[0];
    t.with(&r, |s, _| {
        let nf = s.netfilter_mut();
        nf.append(
            Table::Filter,
            "FORWARD",
            Rule::new()
                .ctstate(CtState::ESTABLISHED | CtState::RELATED)
                .target(Target::Accept),
        )
        .unwrap();
        nf.append(
            Table::Filter,
            "FORWARD",
            Rule::new()
                .in_dev(r_in)
                .state(CtState::NEW)
                .target(Target::Accept),
        )
        .unwrap();
        nf.append(
            Table::Filter,
            "FORWARD",
            Rule::new().ctstate(CtState::INVALID).target(Target::Drop),
        )
        .unwrap();
        nf.set_policy(Table::Filter, "FORWARD", Policy::Drop)
            .unwrap();
        assert!(nf.conntrack_enabled() && !nf.is_empty());
        assert_eq!(
            nf.save(Table::Filter)[3..],
            [
                "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
                format!("-A FORWARD -i {r_in} -m state --state NEW -j ACCEPT"),
                "-A FORWARD -m conntrack --ctstate INVALID -j DROP".to_string(),
            ]
        );
    });
    let at_a = t.with(&a, |s, _| s.raw_open(1, 10));
    let at_c = t.with(&c, |s, _| s.raw_open(1, 10));
    ping(&mut t, &a, "198.51.100.1", 3, 1);
    t.run_ms(100);
    assert_eq!(t.raw_drain(&a, at_a).len(), 1, "reply let in");
    ping(&mut t, &c, "192.0.2.1", 4, 1);
    t.run_ms(100);
    assert!(
        t.raw_drain(&c, at_c).iter().all(|s| icmp_of(s).0 != 0),
        "C's new connection stopped"
    );
    let nf = t.stack(&r).netfilter();
    assert_eq!(nf.counters(Table::Filter, "FORWARD", 1).unwrap().packets, 1);
    assert_eq!(nf.counters(Table::Filter, "FORWARD", 2).unwrap().packets, 1);
    assert_eq!(nf.policy(Table::Filter, "FORWARD").unwrap().1.packets, 1);
    // The refused connection was never confirmed, so it is not listed.
    assert_eq!(nf.conntrack().list(t.sim.now()).len(), 1);
    // An echo reply C makes up for no request is INVALID.
    t.with(&c, |s, now| {
        let mut m = vec![0u8, 0, 0, 0, 0, 9, 0, 1];
        let ck = netpath_wire::checksum::checksum(&m);
        m[2..4].copy_from_slice(&ck.to_be_bytes());
        s.ip_send(now, ip("192.0.2.1"), 1, &m, IpSendOpts::default())
    })
    .unwrap();
    t.run_ms(100);
    let nf = t.stack(&r).netfilter();
    assert_eq!(nf.counters(Table::Filter, "FORWARD", 3).unwrap().packets, 1);
    assert!(nf.conntrack().stats.invalid >= 1);
}

#[test]
fn conntrack_table_bound_early_drops_and_entries_expire() {
    let (mut t, a, r, c) = routed();
    masquerade(&mut t, &r);
    t.with(&r, |s, _| s.netfilter_mut().conntrack_mut().max = 1);
    let at_a = t.with(&a, |s, _| s.raw_open(1, 10));
    ping(&mut t, &a, "198.51.100.1", 1, 1);
    t.run_ms(100);
    ping(&mut t, &a, "198.51.100.1", 2, 1);
    t.run_ms(100);
    assert_eq!(t.raw_drain(&a, at_a).len(), 2);
    let st = t.stack(&r).netfilter().conntrack().stats;
    assert_eq!((st.early_drop, st.insert), (1, 2));
    assert_eq!(t.stack(&r).netfilter().conntrack().count(), 1);
    // ICMP entries live 30 s.
    t.run_ms(29_000);
    assert_eq!(
        t.stack(&r).netfilter().conntrack().list(t.sim.now()).len(),
        1
    );
    t.run_ms(2_000);
    assert!(t
        .stack(&r)
        .netfilter()
        .conntrack()
        .list(t.sim.now())
        .is_empty());
    // The same id again is a new connection; the old entry expired.
    ping(&mut t, &a, "198.51.100.1", 2, 2);
    t.run_ms(100);
    assert_eq!(icmp_of(&t.raw_drain(&a, at_a)[0]), (0, 0, 2, 2));
    let st = t.stack(&r).netfilter().conntrack().stats;
    assert_eq!((st.expired, st.insert), (1, 3));
    let _ = c;
}

#[test]
fn conntrack_stays_off_without_users_and_nat_rules_are_checked() {
    let (mut t, _a, r, _c) = routed();
    let out = r.nics[1];
    t.with(&r, |s, _| {
        let nf = s.netfilter_mut();
        assert!(nf.is_empty() && !nf.conntrack_enabled());
        let snat = Target::Snat {
            addr: ip("198.51.100.254"),
            ports: None,
        };
        assert!(nf
            .append(Table::Filter, "FORWARD", Rule::new().target(snat.clone()))
            .is_err());
        assert!(nf
            .append(Table::Nat, "PREROUTING", Rule::new().target(snat.clone()))
            .is_err());
        assert!(nf
            .append(
                Table::Nat,
                "POSTROUTING",
                Rule::new().target(Target::Masquerade {
                    ports: Some(PortRange::from(1..=2))
                })
            )
            .is_err());
        nf.append(
            Table::Nat,
            "POSTROUTING",
            Rule::new().out_dev(out).target(snat),
        )
        .unwrap();
        assert!(nf.conntrack_enabled() && !nf.is_empty());
        assert_eq!(
            nf.save(Table::Nat).last().unwrap(),
            &format!("-A POSTROUTING -o {out} -j SNAT --to-source 198.51.100.254")
        );
        assert!(nf
            .list_verbose(Table::Nat, "POSTROUTING")
            .unwrap()
            .contains("to:198.51.100.254"));
        nf.flush(Table::Nat, None).unwrap();
        assert!(nf.is_empty() && !nf.conntrack_enabled());
        assert_eq!("nat".parse::<Table>(), Ok(Table::Nat));
    });
}
