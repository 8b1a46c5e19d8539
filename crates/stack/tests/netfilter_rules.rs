//! The netfilter engine on its own: packets built with the wire crate's
//! emitters, put in skbs, run through `Netfilter::run` at a hook. Every
//! match (and its `!`), every target, chains, policies, counters, the
//! configuration errors, `iptables -S` / `-L -v -x` output, no allocation
//! per packet, and random bytes never panicking.

mod common;

use core::net::Ipv4Addr;

use netpath::dev::IfIndex;
use netpath::netfilter::{
    Counters, Netfilter, NfError, NfHook, NfVerdict, Policy, PortRange, Proto, RejectWith, Rule,
    Table, Target,
};
use netpath::skb::{Skb, SkbPool};
use netpath::time::Instant;
use netpath::trace::Tracer;
use netpath_wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netpath_wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netpath_wire::tcp::{RawOptions, TcpFlags, TcpOptions, TcpPacket, TcpRepr, TcpSeqNumber};
use netpath_wire::udp::{UdpPacket, UdpRepr};
use proptest::prelude::*;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
const ETH0: IfIndex = IfIndex(2);
const ETH1: IfIndex = IfIndex(3);

// ---- packets ------------------------------------------------------------

/// An IPv4 packet around `l4` (`frag_offset` in bytes).
fn ip(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8], frag_offset: u16, mf: bool) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol(proto),
        ttl: 64,
        tos: 0,
        ident: 7,
        dont_frag: false,
        more_frags: mf,
        frag_offset,
        payload_len: l4.len(),
    };
    let mut buf = vec![0u8; 20 + l4.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))
        .expect("ip emit");
    buf[20..].copy_from_slice(l4);
    buf
}

fn tcp_seg(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: TcpFlags) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq_number: TcpSeqNumber(1000),
        ack_number: TcpSeqNumber(0),
        flags,
        window_len: 65535,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        raw_options: RawOptions::EMPTY,
        payload_len: 0,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst)
        .expect("tcp emit");
    buf
}

fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: TcpFlags) -> Vec<u8> {
    ip(
        src,
        dst,
        6,
        &tcp_seg(src, dst, sport, dport, flags),
        0,
        false,
    )
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len: 4,
    };
    let mut buf = vec![0u8; 12];
    repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst)
        .expect("udp emit");
    ip(src, dst, 17, &buf, 0, false)
}

fn icmp(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, code: u8) -> Vec<u8> {
    let repr = Icmpv4Repr::Other {
        msg_type: ty,
        code,
        rest: [0, 1, 0, 2],
        data_len: 0,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]))
        .expect("icmp emit");
    ip(src, dst, 1, &buf, 0, false)
}

fn skb(bytes: &[u8]) -> Skb {
    let mut s = SkbPool::default().alloc_from(64, bytes).expect("skb");
    s.reset_network_header();
    s
}

// ---- a stack's netfilter and tracer ----------------------------------------

struct Fx {
    nf: Netfilter,
    tracer: Tracer,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            nf: Netfilter::default(),
            tracer: Tracer::new(),
        }
    }

    fn run_skb(
        &mut self,
        hook: NfHook,
        s: &mut Skb,
        i: Option<IfIndex>,
        o: Option<IfIndex>,
    ) -> NfVerdict {
        self.nf
            .run(hook, s, i, o, Instant::from_nanos(5), &mut self.tracer)
    }

    fn run(
        &mut self,
        hook: NfHook,
        bytes: &[u8],
        i: Option<IfIndex>,
        o: Option<IfIndex>,
    ) -> NfVerdict {
        self.run_skb(hook, &mut skb(bytes), i, o)
    }

    /// FORWARD with both devices (the hook where `-i` and `-o` both apply).
    fn fwd(&mut self, bytes: &[u8]) -> NfVerdict {
        self.run(NfHook::Forward, bytes, Some(ETH0), Some(ETH1))
    }

    fn count(&self, t: Table, chain: &str, n: usize) -> u64 {
        self.nf.counters(t, chain, n).expect("counters").packets
    }
}

/// Runs each packet through FORWARD with `rule -j DROP` as the only rule
/// and returns which were dropped; checks the rule's counters agree.
fn drops(rule: Rule, pkts: &[Vec<u8>]) -> Vec<bool> {
    let mut fx = Fx::new();
    fx.nf
        .append(Table::Filter, "FORWARD", rule.target(Target::Drop))
        .expect("append");
    let out: Vec<bool> = pkts.iter().map(|p| fx.fwd(p) == NfVerdict::Drop).collect();
    let hits = out.iter().filter(|d| **d).count() as u64;
    assert_eq!(fx.count(Table::Filter, "FORWARD", 1), hits);
    let (_, pol) = fx.nf.policy(Table::Filter, "FORWARD").expect("policy");
    assert_eq!(pol.packets, pkts.len() as u64 - hits);
    out
}

// ---- matches ----------------------------------------------------------------

#[test]
fn source_and_destination_prefixes_and_their_negation() {
    let pkts = [
        tcp(A, B, 1, 2, TcpFlags::ACK),
        tcp(B, A, 1, 2, TcpFlags::ACK),
    ];
    let ten = Ipv4Addr::new(10, 9, 9, 9);
    assert_eq!(drops(Rule::new().src(ten, 8), &pkts), [true, false]);
    assert_eq!(drops(Rule::new().not().src(ten, 8), &pkts), [false, true]);
    assert_eq!(drops(Rule::new().src(ten, 32), &pkts), [false, false]);
    assert_eq!(drops(Rule::new().src(A, 32), &pkts), [true, false]);
    assert_eq!(drops(Rule::new().src(B, 0), &pkts), [true, true]);
    assert_eq!(drops(Rule::new().dst(B, 24), &pkts), [true, false]);
    assert_eq!(drops(Rule::new().not().dst(B, 24), &pkts), [false, true]);
    assert_eq!(
        drops(Rule::new().src(A, 32).dst(B, 32), &pkts),
        [true, false]
    );
}

#[test]
fn protocol_by_name_and_number_and_negated() {
    let pkts = [
        tcp(A, B, 1, 2, TcpFlags::ACK),
        udp(A, B, 1, 2),
        icmp(A, B, 8, 0),
        ip(A, B, 47, &[0; 8], 0, false),
    ];
    assert_eq!(
        drops(Rule::new().proto(Proto::Tcp), &pkts),
        [true, false, false, false]
    );
    assert_eq!(
        drops(Rule::new().proto(Proto::Udp), &pkts),
        [false, true, false, false]
    );
    assert_eq!(
        drops(Rule::new().proto(Proto::Icmp), &pkts),
        [false, false, true, false]
    );
    assert_eq!(
        drops(Rule::new().proto(Proto::Num(47)), &pkts),
        [false, false, false, true]
    );
    assert_eq!(
        drops(Rule::new().proto(Proto::Num(6)), &pkts),
        [true, false, false, false]
    );
    assert_eq!(drops(Rule::new().proto(Proto::Num(0)), &pkts), [true; 4]);
    assert_eq!(
        drops(Rule::new().not().proto(Proto::Tcp), &pkts),
        [false, true, true, true]
    );
}

#[test]
fn ports_single_and_ranges_tcp_and_udp_negated() {
    let pkts = [
        tcp(A, B, 40000, 80, TcpFlags::SYN),
        tcp(A, B, 40000, 443, TcpFlags::SYN),
        udp(A, B, 53, 80),
        udp(A, B, 1000, 5353),
    ];
    let t = || Rule::new().proto(Proto::Tcp);
    let u = || Rule::new().proto(Proto::Udp);
    assert_eq!(drops(t().dport(80), &pkts), [true, false, false, false]);
    assert_eq!(
        drops(t().not().dport(80), &pkts),
        [false, true, false, false]
    );
    assert_eq!(
        drops(t().dport(1..=1023), &pkts),
        [true, true, false, false]
    );
    assert_eq!(drops(t().sport(40000), &pkts), [true, true, false, false]);
    assert_eq!(drops(t().not().sport(40000), &pkts), [false; 4]);
    assert_eq!(drops(u().sport(53), &pkts), [false, false, true, false]);
    assert_eq!(
        drops(u().dport(5000..=6000), &pkts),
        [false, false, false, true]
    );
    assert_eq!(
        drops(u().not().dport(80), &pkts),
        [false, false, false, true]
    );
    assert_eq!(
        drops(u().sport(1..=100).dport(80), &pkts),
        [false, false, true, false]
    );
}

#[test]
fn ports_flags_and_icmp_type_only_match_first_fragments() {
    let seg = tcp_seg(A, B, 1234, 80, TcpFlags::SYN);
    let first = ip(A, B, 6, &seg, 0, true);
    let later = ip(A, B, 6, &seg, 64, false);
    let pkts = [first.clone(), later.clone()];
    let t = || Rule::new().proto(Proto::Tcp);
    assert_eq!(drops(t().dport(80), &pkts), [true, false]);
    // `!` does not make a missing header match.
    assert_eq!(drops(t().not().dport(81), &pkts), [true, false]);
    assert_eq!(drops(t().syn(), &pkts), [true, false]);
    assert_eq!(drops(t().not().syn(), &pkts), [false, false]);
    let ic = icmp(A, B, 8, 0);
    let ic_later = ip(A, B, 1, &ic[20..], 8, false);
    let i = || Rule::new().proto(Proto::Icmp);
    assert_eq!(
        drops(i().icmp_type(8), &[ic.clone(), ic_later.clone()]),
        [true, false]
    );
    assert_eq!(
        drops(i().not().icmp_type(0), &[ic, ic_later]),
        [true, false]
    );
}

#[test]
fn fragment_flag_matches_second_and_later_fragments() {
    let seg = tcp_seg(A, B, 1, 2, TcpFlags::ACK);
    let pkts = [
        ip(A, B, 6, &seg, 0, false),    // whole
        ip(A, B, 6, &seg, 0, true),     // first fragment
        ip(A, B, 6, &seg, 1480, true),  // middle
        ip(A, B, 6, &seg, 2960, false), // last
    ];
    assert_eq!(
        drops(Rule::new().fragment(), &pkts),
        [false, false, true, true]
    );
    assert_eq!(
        drops(Rule::new().not().fragment(), &pkts),
        [true, true, false, false]
    );
}

#[test]
fn interfaces_by_ifindex_negated_and_absent() {
    let p = tcp(A, B, 1, 2, TcpFlags::ACK);
    let mut fx = Fx::new();
    let nf = &mut fx.nf;
    nf.append(
        Table::Filter,
        "FORWARD",
        Rule::new().in_dev(ETH0).out_dev(ETH1),
    )
    .unwrap();
    nf.append(Table::Filter, "FORWARD", Rule::new().not().in_dev(ETH0))
        .unwrap();
    nf.append(Table::Filter, "FORWARD", Rule::new().not().out_dev(ETH0))
        .unwrap();
    nf.append(Table::Filter, "INPUT", Rule::new().in_dev(ETH1))
        .unwrap();
    nf.append(Table::Filter, "OUTPUT", Rule::new().out_dev(ETH1))
        .unwrap();
    // No device on a hook: `-i` and `-o` do not match there, `!` does.
    // (iptables refuses `-i` in OUTPUT itself, so through user chains.)
    nf.new_chain(Table::Mangle, "out_sub").unwrap();
    nf.new_chain(Table::Mangle, "in_sub").unwrap();
    nf.append(Table::Mangle, "out_sub", Rule::new().not().in_dev(ETH0))
        .unwrap();
    nf.append(Table::Mangle, "in_sub", Rule::new().out_dev(ETH0))
        .unwrap();
    nf.append(
        Table::Mangle,
        "OUTPUT",
        Rule::new().target(Target::jump("out_sub")),
    )
    .unwrap();
    nf.append(
        Table::Mangle,
        "INPUT",
        Rule::new().target(Target::jump("in_sub")),
    )
    .unwrap();
    fx.run(NfHook::Forward, &p, Some(ETH0), Some(ETH1));
    fx.run(NfHook::Forward, &p, Some(ETH1), Some(ETH0));
    fx.run(NfHook::LocalIn, &p, Some(ETH0), None);
    fx.run(NfHook::LocalIn, &p, Some(ETH1), None);
    fx.run(NfHook::LocalOut, &p, None, Some(ETH1));
    let c = |fx: &Fx, t, ch, n| fx.count(t, ch, n);
    assert_eq!(c(&fx, Table::Filter, "FORWARD", 1), 1);
    assert_eq!(c(&fx, Table::Filter, "FORWARD", 2), 1);
    assert_eq!(c(&fx, Table::Filter, "FORWARD", 3), 1);
    assert_eq!(c(&fx, Table::Filter, "INPUT", 1), 1);
    assert_eq!(c(&fx, Table::Filter, "OUTPUT", 1), 1);
    assert_eq!(c(&fx, Table::Mangle, "out_sub", 1), 1);
    assert_eq!(c(&fx, Table::Mangle, "INPUT", 1), 2);
    assert_eq!(c(&fx, Table::Mangle, "in_sub", 1), 0);
    // As verdicts too.
    let pkts = [p.clone()];
    assert_eq!(drops(Rule::new().in_dev(ETH0), &pkts), [true]);
    assert_eq!(drops(Rule::new().in_dev(ETH1), &pkts), [false]);
    assert_eq!(drops(Rule::new().not().out_dev(ETH1), &pkts), [false]);
}

#[test]
fn icmp_type_and_code() {
    let pkts = [
        icmp(A, B, 8, 0),
        icmp(A, B, 0, 0),
        icmp(A, B, 3, 3),
        icmp(A, B, 3, 1),
    ];
    let i = || Rule::new().proto(Proto::Icmp);
    assert_eq!(drops(i().icmp_type(8), &pkts), [true, false, false, false]);
    assert_eq!(drops(i().icmp_type(3), &pkts), [false, false, true, true]);
    assert_eq!(
        drops(i().icmp_type_code(3, 3), &pkts),
        [false, false, true, false]
    );
    assert_eq!(
        drops(i().not().icmp_type_code(3, 3), &pkts),
        [true, true, false, true]
    );
    assert_eq!(drops(i().icmp_type(255), &pkts), [true; 4]);
    assert_eq!(
        drops(i().not().icmp_type(8), &pkts),
        [false, true, true, true]
    );
}

#[test]
fn tcp_flags_mask_comp_and_syn() {
    let pkts = [
        tcp(A, B, 1, 80, TcpFlags::SYN),
        tcp(A, B, 1, 80, TcpFlags::SYN | TcpFlags::ACK),
        tcp(A, B, 1, 80, TcpFlags::ACK),
        tcp(A, B, 1, 80, TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG),
    ];
    let t = || Rule::new().proto(Proto::Tcp);
    assert_eq!(drops(t().syn(), &pkts), [true, false, false, false]);
    assert_eq!(drops(t().not().syn(), &pkts), [false, true, true, true]);
    let all = TcpFlags::from_bits(0x3f);
    let xmas = TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG;
    assert_eq!(
        drops(t().tcp_flags(all, xmas), &pkts),
        [false, false, false, true]
    );
    assert_eq!(
        drops(t().tcp_flags(TcpFlags::ACK, TcpFlags::ACK), &pkts),
        [false, true, true, false]
    );
    assert_eq!(
        drops(t().tcp_flags(all, TcpFlags::EMPTY), &pkts),
        [false, false, false, false]
    );
}

#[test]
fn mark_target_sets_mark_and_later_rules_match_it() {
    let p = tcp(A, B, 1, 22, TcpFlags::SYN);
    let mut fx = Fx::new();
    let nf = &mut fx.nf;
    // mangle INPUT marks; filter INPUT (same hook, later table) sees it.
    let ssh = Rule::new().proto(Proto::Tcp).dport(22);
    nf.append(
        Table::Mangle,
        "INPUT",
        ssh.target(Target::set_mark_masked(0x10, 0xff)),
    )
    .unwrap();
    nf.append(
        Table::Mangle,
        "INPUT",
        Rule::new().mark(0x10, 0xff).target(Target::or_mark(0x1)),
    )
    .unwrap();
    nf.append(Table::Mangle, "INPUT", Rule::new().not().mark(0x11, 0xff))
        .unwrap();
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().mark(0x11, u32::MAX).target(Target::Drop),
    )
    .unwrap();
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().mark(0x11, 0xff).target(Target::reject()),
    )
    .unwrap();
    let mut s = skb(&p);
    s.meta.mark = 0xabcd_0000;
    assert_eq!(
        fx.run_skb(NfHook::LocalIn, &mut s, Some(ETH0), None),
        NfVerdict::Reject(RejectWith::IcmpPortUnreachable)
    );
    assert_eq!(
        s.meta.mark, 0xabcd_0011,
        "--set-mark V/M kept the other bits"
    );
    assert_eq!(fx.count(Table::Mangle, "INPUT", 1), 1);
    assert_eq!(fx.count(Table::Mangle, "INPUT", 2), 1);
    assert_eq!(fx.count(Table::Mangle, "INPUT", 3), 0);
    assert_eq!(fx.count(Table::Filter, "INPUT", 1), 0);
    assert_eq!(fx.count(Table::Filter, "INPUT", 2), 1);

    // The other MARK forms, one after the other in PREROUTING.
    let nf = &mut fx.nf;
    for t in [
        Target::set_mark(0x5),       // 0x5
        Target::and_mark(0x4),       // 0x4
        Target::xor_mark(0x6),       // 0x2
        Target::set_xmark(0x1, 0x3), // (0x2 & !0x3) ^ 0x1 = 0x1
    ] {
        nf.append(Table::Mangle, "PREROUTING", Rule::new().target(t))
            .unwrap();
    }
    nf.append(Table::Mangle, "PREROUTING", Rule::new().mark(0x1, u32::MAX))
        .unwrap();
    let mut s = skb(&p);
    s.meta.mark = 0xffff_ffff;
    assert_eq!(
        fx.run_skb(NfHook::PreRouting, &mut s, Some(ETH0), None),
        NfVerdict::Accept
    );
    assert_eq!(s.meta.mark, 0x1);
    assert_eq!(fx.count(Table::Mangle, "PREROUTING", 5), 1);
}

// ---- targets ------------------------------------------------------------------

#[test]
fn reject_returns_each_reject_with_and_defaults_to_port_unreachable() {
    let p = tcp(A, B, 1, 80, TcpFlags::SYN);
    let all = [
        RejectWith::IcmpNetUnreachable,
        RejectWith::IcmpHostUnreachable,
        RejectWith::IcmpPortUnreachable,
        RejectWith::IcmpProtoUnreachable,
        RejectWith::IcmpNetProhibited,
        RejectWith::IcmpHostProhibited,
        RejectWith::IcmpAdminProhibited,
        RejectWith::TcpReset,
    ];
    for with in all {
        let mut fx = Fx::new();
        let rule = Rule::new().proto(Proto::Tcp).target(Target::Reject(with));
        for chain in ["INPUT", "FORWARD", "OUTPUT"] {
            fx.nf.append(Table::Filter, chain, rule.clone()).unwrap();
        }
        assert_eq!(
            fx.run(NfHook::LocalIn, &p, Some(ETH0), None),
            NfVerdict::Reject(with)
        );
        assert_eq!(fx.fwd(&p), NfVerdict::Reject(with));
        assert_eq!(
            fx.run(NfHook::LocalOut, &p, None, Some(ETH0)),
            NfVerdict::Reject(with)
        );
        assert_eq!(fx.count(Table::Filter, "FORWARD", 1), 1);
        assert_eq!(with.icmp_code().is_none(), with == RejectWith::TcpReset);
    }
    assert_eq!(
        Target::reject(),
        Target::Reject(RejectWith::IcmpPortUnreachable)
    );
    assert_eq!(RejectWith::IcmpAdminProhibited.icmp_code(), Some(13));
}

#[test]
fn reject_only_where_linux_allows_it() {
    let mut nf = Netfilter::default();
    let rej = Rule::new().target(Target::reject());
    for chain in ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] {
        assert!(
            matches!(
                nf.append(Table::Mangle, chain, rej.clone()),
                Err(NfError::BadTarget { .. })
            ),
            "REJECT in mangle {chain}"
        );
    }
    // The filter table has no PREROUTING at all.
    assert_eq!(
        nf.append(Table::Filter, "PREROUTING", rej.clone()),
        Err(NfError::NoSuchChain("PREROUTING".into()))
    );
    nf.append(Table::Filter, "INPUT", rej.clone()).unwrap();
    nf.new_chain(Table::Filter, "reject_me").unwrap();
    nf.append(Table::Filter, "reject_me", rej).unwrap();
    // tcp-reset needs `-p tcp`.
    let rst = Target::Reject(RejectWith::TcpReset);
    assert!(matches!(
        nf.append(Table::Filter, "INPUT", Rule::new().target(rst.clone())),
        Err(NfError::BadTarget { .. })
    ));
    assert!(matches!(
        nf.append(
            Table::Filter,
            "INPUT",
            Rule::new().not().proto(Proto::Tcp).target(rst.clone())
        ),
        Err(NfError::BadTarget { .. })
    ));
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().proto(Proto::Tcp).target(rst),
    )
    .unwrap();
    assert_eq!(nf.list(Table::Filter, "INPUT").unwrap().len(), 2);
}

#[test]
fn log_writes_a_kernel_style_line_traces_and_continues() {
    let mut fx = Fx::new();
    fx.tracer.enable(16);
    let nf = &mut fx.nf;
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new()
            .proto(Proto::Tcp)
            .target(Target::log("IN-TCP: ")),
    )
    .unwrap();
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().proto(Proto::Tcp).dport(23).target(Target::Drop),
    )
    .unwrap();
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().proto(Proto::Udp).target(Target::log("U ")),
    )
    .unwrap();
    nf.append(
        Table::Filter,
        "INPUT",
        Rule::new().proto(Proto::Icmp).target(Target::log("")),
    )
    .unwrap();
    let mut s = skb(&tcp(A, B, 40000, 23, TcpFlags::SYN));
    s.meta.mark = 0x2a;
    assert_eq!(
        fx.run_skb(NfHook::LocalIn, &mut s, Some(ETH0), None),
        NfVerdict::Drop,
        "LOG continues to the DROP"
    );
    assert_eq!(
        fx.run(NfHook::LocalIn, &udp(A, B, 53, 5353), Some(ETH0), None),
        NfVerdict::Accept
    );
    assert_eq!(
        fx.run(NfHook::LocalIn, &icmp(B, A, 8, 0), Some(ETH1), None),
        NfVerdict::Accept
    );
    let lines: Vec<&str> = fx.nf.log_lines().collect();
    assert_eq!(
        lines,
        [
            "IN-TCP: IN=if2 OUT= SRC=10.0.0.1 DST=192.168.1.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=TCP SPT=40000 DPT=23 WINDOW=65535 RES=0x00 SYN URGP=0 MARK=0x2a",
            "U IN=if2 OUT= SRC=10.0.0.1 DST=192.168.1.2 LEN=32 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=UDP SPT=53 DPT=5353 LEN=12",
            "IN=if3 OUT= SRC=192.168.1.2 DST=10.0.0.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=2",
        ]
    );
    assert_eq!(fx.nf.log_written(), 3);
    let ev: Vec<(&str, u64)> = fx.tracer.events().map(|e| (e.point, e.detail)).collect();
    assert_eq!(ev, [("nf_log", 0), ("nf_log", 1), ("nf_log", 2)]);
    assert_eq!(fx.tracer.events().next().map(|e| e.skb_id), Some(s.id()));
    assert_eq!(fx.count(Table::Filter, "INPUT", 1), 1);
    assert_eq!(fx.count(Table::Filter, "INPUT", 2), 1);
    // A fragment and garbage still log, without panicking.
    let nf = &mut fx.nf;
    nf.clear_log();
    nf.insert(
        Table::Filter,
        "INPUT",
        1,
        Rule::new().target(Target::log("ALL ")),
    )
    .unwrap();
    let seg = tcp_seg(A, B, 1, 2, TcpFlags::ACK);
    fx.run(
        NfHook::LocalIn,
        &ip(A, B, 6, &seg, 8, true),
        Some(ETH0),
        None,
    );
    fx.run(NfHook::LocalIn, &[0x45, 0, 0], Some(ETH0), None);
    let lines: Vec<&str> = fx.nf.log_lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("ALL IN=if2 OUT= SRC=10.0.0.1"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("MF FRAG:1 PROTO=TCP"), "{}", lines[0]);
    assert!(lines[1].starts_with("IN-TCP: "), "{}", lines[1]);
    assert_eq!(lines[2], "ALL IN=if2 OUT= TRUNCATED LEN=3");
    // The prefix is limited to 29 bytes, as in Linux.
    assert!(matches!(
        fx.nf.append(
            Table::Filter,
            "INPUT",
            Rule::new().target(Target::log("x".repeat(30)))
        ),
        Err(NfError::BadTarget { .. })
    ));
}

// ---- chains -------------------------------------------------------------------

#[test]
fn jumps_return_goto_and_policies() {
    let web = tcp(A, B, 1, 80, TcpFlags::SYN);
    let ssh = tcp(A, B, 1, 22, TcpFlags::SYN);
    let dns = udp(A, B, 1, 53);
    let other = udp(A, B, 1, 9);
    let mut fx = Fx::new();
    let nf = &mut fx.nf;
    let f = Table::Filter;
    nf.new_chain(f, "tcp_in").unwrap();
    nf.new_chain(f, "web").unwrap();
    nf.new_chain(f, "udp_in").unwrap();
    // INPUT: tcp -> tcp_in; udp -g udp_in; policy DROP.
    nf.append(
        f,
        "INPUT",
        Rule::new().proto(Proto::Tcp).target(Target::jump("tcp_in")),
    )
    .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new().proto(Proto::Udp).target(Target::goto("udp_in")),
    )
    .unwrap();
    nf.append(f, "INPUT", Rule::new().target(Target::Accept))
        .unwrap();
    // tcp_in: 80 -> web; ssh returns (then INPUT's rule 3 accepts).
    nf.append(
        f,
        "tcp_in",
        Rule::new()
            .proto(Proto::Tcp)
            .dport(80)
            .target(Target::jump("web")),
    )
    .unwrap();
    nf.append(
        f,
        "tcp_in",
        Rule::new()
            .proto(Proto::Tcp)
            .dport(22)
            .target(Target::Return),
    )
    .unwrap();
    nf.append(f, "tcp_in", Rule::new().target(Target::Drop))
        .unwrap();
    // web: falls off its end back to tcp_in rule 2.
    nf.append(f, "web", Rule::new()).unwrap();
    // udp_in: 53 accepted; the rest falls off: goto means no way back to
    // INPUT, so INPUT's policy applies.
    nf.append(
        f,
        "udp_in",
        Rule::new()
            .proto(Proto::Udp)
            .dport(53)
            .target(Target::Accept),
    )
    .unwrap();
    nf.set_policy(f, "INPUT", Policy::Drop).unwrap();
    let run = |fx: &mut Fx, p: &[u8]| fx.run(NfHook::LocalIn, p, Some(ETH0), None);
    assert_eq!(
        run(&mut fx, &web),
        NfVerdict::Drop,
        "web -> back in tcp_in -> rule 3 DROP"
    );
    assert_eq!(
        run(&mut fx, &ssh),
        NfVerdict::Accept,
        "RETURN -> INPUT rule 3"
    );
    assert_eq!(run(&mut fx, &dns), NfVerdict::Accept);
    assert_eq!(
        run(&mut fx, &other),
        NfVerdict::Drop,
        "goto'd chain ends -> INPUT policy"
    );
    let c = |fx: &Fx, ch, n| fx.count(f, ch, n);
    assert_eq!(
        (c(&fx, "INPUT", 1), c(&fx, "INPUT", 2), c(&fx, "INPUT", 3)),
        (2, 2, 1)
    );
    assert_eq!(
        (
            c(&fx, "tcp_in", 1),
            c(&fx, "tcp_in", 2),
            c(&fx, "tcp_in", 3)
        ),
        (1, 1, 1)
    );
    assert_eq!(c(&fx, "web", 1), 1);
    assert_eq!(c(&fx, "udp_in", 1), 1);
    assert_eq!(
        fx.nf.policy(f, "INPUT").unwrap(),
        (
            Policy::Drop,
            Counters {
                packets: 1,
                bytes: 32
            }
        )
    );
    // RETURN in a built-in chain goes to its policy.
    let nf = &mut fx.nf;
    nf.insert(
        f,
        "INPUT",
        1,
        Rule::new().proto(Proto::Icmp).target(Target::Return),
    )
    .unwrap();
    assert_eq!(run(&mut fx, &icmp(A, B, 8, 0)), NfVerdict::Drop);
    assert_eq!(fx.nf.policy(f, "INPUT").unwrap().1.packets, 2);
    assert_eq!(fx.nf.chain(f, "tcp_in").unwrap().references(), 1);
    assert_eq!(fx.nf.chain(f, "INPUT").unwrap().references(), 0);
}

#[test]
fn loops_are_refused_with_eloop() {
    let mut nf = Netfilter::default();
    let f = Table::Filter;
    for c in ["a", "b", "c"] {
        nf.new_chain(f, c).unwrap();
    }
    let loop_err = |from: &str, to: &str| NfError::Loop {
        from: from.into(),
        to: to.into(),
    };
    assert_eq!(
        nf.append(f, "a", Rule::new().target(Target::jump("a"))),
        Err(loop_err("a", "a"))
    );
    nf.append(f, "a", Rule::new().target(Target::jump("b")))
        .unwrap();
    nf.append(f, "b", Rule::new().target(Target::goto("c")))
        .unwrap();
    assert_eq!(
        nf.append(f, "c", Rule::new().target(Target::jump("a"))),
        Err(loop_err("c", "a"))
    );
    assert_eq!(
        nf.insert(f, "c", 1, Rule::new().target(Target::goto("b"))),
        Err(loop_err("c", "b"))
    );
    assert_eq!(
        nf.append(f, "b", Rule::new().target(Target::jump("a"))),
        Err(loop_err("b", "a"))
    );
    // Replacing the jump that would close the loop is fine.
    nf.append(f, "INPUT", Rule::new().target(Target::jump("a")))
        .unwrap();
    nf.append(f, "INPUT", Rule::new().target(Target::jump("c")))
        .unwrap();
    nf.replace(f, "b", 1, Rule::new().target(Target::Accept))
        .unwrap();
    nf.append(f, "c", Rule::new().target(Target::jump("b")))
        .unwrap();
    assert_eq!(nf.list(f, "c").unwrap().len(), 1);
    // And the packets still get through the diamond.
    let mut tr = Tracer::new();
    let mut s = skb(&udp(A, B, 1, 2));
    assert_eq!(
        nf.run(NfHook::LocalIn, &mut s, None, None, Instant::ZERO, &mut tr),
        NfVerdict::Accept
    );
    assert_eq!(nf.counters(f, "b", 1).unwrap().packets, 1);
    assert_eq!(nf.counters(f, "INPUT", 2).unwrap().packets, 0);
}

#[test]
fn configuration_errors_are_typed() {
    let mut nf = Netfilter::default();
    let (f, m) = (Table::Filter, Table::Mangle);
    assert_eq!(
        "raw".parse::<Table>(),
        Err(NfError::NoSuchTable("raw".into()))
    );
    assert_eq!("mangle".parse::<Table>(), Ok(m));
    nf.new_chain(f, "user").unwrap();
    assert_eq!(
        nf.new_chain(f, "user"),
        Err(NfError::ChainExists("user".into()))
    );
    assert_eq!(
        nf.new_chain(f, "INPUT"),
        Err(NfError::ChainExists("INPUT".into()))
    );
    for bad in ["", "ACCEPT", "PREROUTING", "-x", "a b", &"n".repeat(29)] {
        assert_eq!(
            nf.new_chain(f, bad),
            Err(NfError::BadChainName(bad.into())),
            "{bad:?}"
        );
    }
    nf.new_chain(m, "user").unwrap(); // tables have their own names
    assert_eq!(
        nf.append(f, "nope", Rule::new()),
        Err(NfError::NoSuchChain("nope".into()))
    );
    assert_eq!(
        nf.append(f, "INPUT", Rule::new().target(Target::jump("nope"))),
        Err(NfError::NoSuchChain("nope".into()))
    );
    assert!(matches!(
        nf.append(f, "INPUT", Rule::new().target(Target::jump("OUTPUT"))),
        Err(NfError::BadTarget { .. })
    ));
    assert_eq!(
        nf.delete_chain(f, "INPUT"),
        Err(NfError::BuiltinChain("INPUT".into()))
    );
    assert_eq!(
        nf.set_policy(f, "user", Policy::Drop),
        Err(NfError::NotBuiltin("user".into()))
    );
    assert_eq!(
        nf.policy(f, "user"),
        Err(NfError::NotBuiltin("user".into()))
    );
    nf.append(f, "INPUT", Rule::new().target(Target::jump("user")))
        .unwrap();
    nf.append(f, "user", Rule::new()).unwrap();
    assert_eq!(
        nf.delete_chain(f, "user"),
        Err(NfError::ChainInUse("user".into()))
    );
    nf.delete(f, "INPUT", 1).unwrap();
    assert_eq!(
        nf.delete_chain(f, "user"),
        Err(NfError::ChainNotEmpty("user".into()))
    );
    nf.flush(f, Some("user")).unwrap();
    nf.delete_chain(f, "user").unwrap();
    assert_eq!(
        nf.chain(f, "user").err(),
        Some(NfError::NoSuchChain("user".into()))
    );
    let no_rule = |n| NfError::NoSuchRule {
        chain: "INPUT".into(),
        rulenum: n,
    };
    assert_eq!(nf.delete(f, "INPUT", 1).err(), Some(no_rule(1)));
    assert_eq!(nf.insert(f, "INPUT", 0, Rule::new()), Err(no_rule(0)));
    assert_eq!(nf.insert(f, "INPUT", 2, Rule::new()), Err(no_rule(2)));
    assert_eq!(nf.counters(f, "INPUT", 1), Err(no_rule(1)));
    assert_eq!(
        nf.delete_rule(f, "INPUT", &Rule::new()),
        Err(NfError::NoMatchingRule("INPUT".into()))
    );
    let bad_match = |r: Rule, chain: &str| {
        let mut nf = Netfilter::default();
        matches!(nf.append(f, chain, r), Err(NfError::BadMatch { .. }))
    };
    assert!(
        bad_match(Rule::new().dport(80), "INPUT"),
        "--dport without -p"
    );
    assert!(bad_match(Rule::new().proto(Proto::Icmp).dport(80), "INPUT"));
    assert!(bad_match(
        Rule::new().not().proto(Proto::Tcp).sport(1),
        "INPUT"
    ));
    assert!(bad_match(
        // An empty range (min > max) on purpose.
        Rule::new()
            .proto(Proto::Tcp)
            .dport(PortRange { lo: 90, hi: 80 }),
        "INPUT"
    ));
    assert!(bad_match(Rule::new().proto(Proto::Udp).syn(), "INPUT"));
    assert!(bad_match(
        Rule::new().proto(Proto::Tcp).icmp_type(8),
        "INPUT"
    ));
    assert!(bad_match(Rule::new().src(A, 33), "INPUT"));
    assert!(bad_match(Rule::new().not(), "INPUT"), "dangling !");
    assert!(bad_match(Rule::new().not().proto(Proto::Num(0)), "INPUT"));
    assert!(bad_match(Rule::new().in_dev(ETH0), "OUTPUT"));
    assert!(bad_match(Rule::new().out_dev(ETH0), "INPUT"));
    assert!(!bad_match(
        Rule::new().in_dev(ETH0).out_dev(ETH1),
        "FORWARD"
    ));
    // Errors print like iptables.
    assert_eq!(
        NfError::Loop {
            from: "a".into(),
            to: "b".into()
        }
        .to_string(),
        "jump from `a' to `b': Too many levels of symbolic links"
    );
}

#[test]
fn insert_delete_replace_and_flush_by_position() {
    let mut nf = Netfilter::default();
    let f = Table::Filter;
    let r = |port: u16| {
        Rule::new()
            .proto(Proto::Tcp)
            .dport(port)
            .target(Target::Accept)
    };
    nf.append(f, "INPUT", r(2)).unwrap();
    nf.insert(f, "INPUT", 1, r(1)).unwrap();
    nf.insert(f, "INPUT", 3, r(4)).unwrap();
    nf.insert(f, "INPUT", 3, r(3)).unwrap();
    let ports = |nf: &Netfilter| -> Vec<String> {
        nf.list(f, "INPUT")
            .unwrap()
            .iter()
            .map(|e| e.rule().to_string())
            .collect()
    };
    assert_eq!(ports(&nf).len(), 4);
    assert!(ports(&nf)[2].contains("--dport 3"));
    assert_eq!(nf.delete(f, "INPUT", 2).unwrap(), r(2));
    nf.replace(f, "INPUT", 1, r(10)).unwrap();
    nf.delete_rule(f, "INPUT", &r(4)).unwrap();
    assert_eq!(
        nf.save(f),
        [
            "-P INPUT ACCEPT",
            "-P FORWARD ACCEPT",
            "-P OUTPUT ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 10 -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 3 -j ACCEPT",
        ]
    );
    nf.append(f, "OUTPUT", r(5)).unwrap();
    nf.flush(f, None).unwrap();
    assert!(nf.is_empty());
    assert_eq!(nf.save(f).len(), 3);
}

// ---- counters and listings --------------------------------------------------

#[test]
fn counters_count_packets_and_bytes_like_iptables_v_x() {
    let mut fx = Fx::new();
    let f = Table::Filter;
    let nf = &mut fx.nf;
    nf.new_chain(f, "LOGDROP").unwrap();
    nf.append(f, "LOGDROP", Rule::new().target(Target::log("drop ")))
        .unwrap();
    nf.append(f, "LOGDROP", Rule::new().target(Target::Drop))
        .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new()
            .proto(Proto::Tcp)
            .dport(80)
            .target(Target::Accept),
    )
    .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new().src(B, 24).target(Target::jump("LOGDROP")),
    )
    .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new()
            .not()
            .in_dev(ETH0)
            .proto(Proto::Icmp)
            .icmp_type(8),
    )
    .unwrap();
    let web = tcp(A, B, 1, 80, TcpFlags::SYN); // 40 bytes
    let from_b = udp(B, A, 1, 2); // 32 bytes
    let ping = icmp(A, B, 8, 0); // 28 bytes
    for _ in 0..3 {
        fx.run(NfHook::LocalIn, &web, Some(ETH0), None);
    }
    fx.run(NfHook::LocalIn, &from_b, Some(ETH0), None);
    fx.run(NfHook::LocalIn, &ping, Some(ETH1), None);
    fx.run(NfHook::LocalIn, &ping, Some(ETH0), None);
    let rules = fx.nf.list(f, "INPUT").unwrap();
    let got: Vec<Counters> = rules.iter().map(|e| e.counters()).collect();
    let c = |packets, bytes| Counters { packets, bytes };
    assert_eq!(got, [c(3, 120), c(1, 32), c(1, 28)]);
    assert_eq!(
        fx.nf.policy(f, "INPUT").unwrap(),
        (Policy::Accept, c(2, 56))
    );
    let listing = fx.nf.list_verbose(f, "INPUT").unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines[0], "Chain INPUT (policy ACCEPT 2 packets, 56 bytes)");
    assert_eq!(
        lines[1],
        "    pkts      bytes target     prot opt in     out    source               destination"
    );
    assert_eq!(
        lines[2],
        "       3        120 ACCEPT     tcp  --  *      *      0.0.0.0/0            0.0.0.0/0            tcp dpt:80"
    );
    assert_eq!(
        lines[3],
        "       1         32 LOGDROP    all  --  *      *      192.168.1.0/24       0.0.0.0/0"
    );
    assert_eq!(
        lines[4],
        "       1         28            icmp --  !if2   *      0.0.0.0/0            0.0.0.0/0            icmp type 8"
    );
    let user = fx.nf.list_verbose(f, "LOGDROP").unwrap();
    assert!(user.starts_with("Chain LOGDROP (1 references)\n"), "{user}");
    assert!(
        user.contains("LOG flags 0 level 4 prefix \"drop \""),
        "{user}"
    );
    // -Z on one chain, then on the table.
    fx.nf.zero_counters(f, Some("LOGDROP")).unwrap();
    assert_eq!(fx.count(f, "LOGDROP", 1), 0);
    assert_eq!(fx.count(f, "INPUT", 1), 3);
    fx.nf.zero_counters(f, None).unwrap();
    assert_eq!(fx.count(f, "INPUT", 1), 0);
    assert_eq!(fx.nf.policy(f, "INPUT").unwrap().1, Counters::default());
}

#[test]
fn rules_print_like_iptables_s() {
    let cases: Vec<(Rule, &str)> = vec![
        (
            Rule::new().proto(Proto::Tcp).dport(80).in_dev(ETH0).target(Target::Drop),
            "-A INPUT -i if2 -p tcp -m tcp --dport 80 -j DROP",
        ),
        (
            Rule::new().not().src(Ipv4Addr::new(10, 1, 2, 3), 8).dst(B, 32).target(Target::Accept),
            "-A INPUT ! -s 10.0.0.0/8 -d 192.168.1.2/32 -j ACCEPT",
        ),
        (
            Rule::new().proto(Proto::Udp).sport(1024..=65535).not().dport(53).target(Target::reject()),
            "-A INPUT -p udp -m udp --sport 1024:65535 ! --dport 53 -j REJECT --reject-with icmp-port-unreachable",
        ),
        (
            Rule::new().proto(Proto::Tcp).syn().target(Target::Reject(RejectWith::TcpReset)),
            "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with tcp-reset",
        ),
        (
            Rule::new().proto(Proto::Icmp).icmp_type_code(3, 4).target(Target::log("frag needed: ")),
            "-A INPUT -p icmp -m icmp --icmp-type 3/4 -j LOG --log-prefix \"frag needed: \"",
        ),
        (
            Rule::new().proto(Proto::Icmp).not().icmp_type(8),
            "-A INPUT -p icmp -m icmp ! --icmp-type 8",
        ),
        (
            Rule::new().not().mark(0x1, 0xff).target(Target::set_mark(0x2)),
            "-A INPUT -m mark ! --mark 0x1/0xff -j MARK --set-xmark 0x2/0xffffffff",
        ),
        (
            Rule::new().mark(0x7, u32::MAX).fragment().target(Target::goto("user")),
            "-A INPUT -f -m mark --mark 0x7 -g user",
        ),
        (
            Rule::new().not().fragment().proto(Proto::Num(47)).target(Target::jump("user")),
            "-A INPUT -p 47 ! -f -j user",
        ),
        (Rule::new().target(Target::Return), "-A INPUT -j RETURN"),
        (Rule::new(), "-A INPUT"),
    ];
    let mut nf = Netfilter::default();
    nf.new_chain(Table::Filter, "user").unwrap();
    for (rule, want) in cases {
        assert_eq!(rule.spec("INPUT").to_string(), want);
        nf.append(Table::Filter, "INPUT", rule).unwrap();
    }
    nf.set_policy(Table::Filter, "FORWARD", Policy::Drop)
        .unwrap();
    let saved = nf.save(Table::Filter);
    assert_eq!(
        saved[..4],
        [
            "-P INPUT ACCEPT",
            "-P FORWARD DROP",
            "-P OUTPUT ACCEPT",
            "-N user"
        ]
    );
    assert_eq!(saved[4], "-A INPUT -i if2 -p tcp -m tcp --dport 80 -j DROP");
    assert_eq!(
        Rule::new()
            .proto(Proto::Tcp)
            .dport(80)
            .target(Target::Drop)
            .to_string(),
        "-p tcp -m tcp --dport 80 -j DROP"
    );
}

// ---- hooks and tables ---------------------------------------------------------

#[test]
fn tables_run_in_priority_order_and_a_drop_stops_the_hook() {
    assert!(Table::Mangle.priority() < Table::Filter.priority());
    assert_eq!(Table::ALL, [Table::Mangle, Table::Filter]);
    assert_eq!(
        Table::Filter.hooks(),
        [NfHook::LocalIn, NfHook::Forward, NfHook::LocalOut]
    );
    assert_eq!(Table::Mangle.hooks(), NfHook::ALL);
    let p = udp(A, B, 1, 2);
    let mut fx = Fx::new();
    let nf = &mut fx.nf;
    let names: Vec<&str> = nf.chains(Table::Mangle).map(|c| c.name()).collect();
    assert_eq!(
        names,
        ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
    );
    nf.append(Table::Mangle, "INPUT", Rule::new().target(Target::Accept))
        .unwrap();
    nf.append(Table::Filter, "INPUT", Rule::new()).unwrap();
    nf.append(Table::Filter, "OUTPUT", Rule::new()).unwrap();
    nf.append(Table::Mangle, "OUTPUT", Rule::new().target(Target::Drop))
        .unwrap();
    nf.append(Table::Mangle, "POSTROUTING", Rule::new())
        .unwrap();
    // ACCEPT in mangle ends mangle only: filter still sees the packet.
    assert_eq!(
        fx.run(NfHook::LocalIn, &p, Some(ETH0), None),
        NfVerdict::Accept
    );
    assert_eq!(fx.count(Table::Filter, "INPUT", 1), 1);
    // DROP in mangle ends the hook: filter never sees it.
    assert_eq!(
        fx.run(NfHook::LocalOut, &p, None, Some(ETH0)),
        NfVerdict::Drop
    );
    assert_eq!(fx.count(Table::Filter, "OUTPUT", 1), 0);
    // Hooks where only mangle hangs.
    assert_eq!(
        fx.run(NfHook::PostRouting, &p, None, Some(ETH0)),
        NfVerdict::Accept
    );
    assert_eq!(fx.count(Table::Mangle, "POSTROUTING", 1), 1);
    let (_, pre) = fx.nf.policy(Table::Mangle, "PREROUTING").unwrap();
    assert_eq!(pre.packets, 0);
    assert_eq!(
        fx.run(NfHook::PreRouting, &p, Some(ETH0), None),
        NfVerdict::Accept
    );
    assert_eq!(
        fx.nf.policy(Table::Mangle, "PREROUTING").unwrap().1.packets,
        1
    );
}

#[test]
fn is_empty_until_a_rule_or_a_drop_policy() {
    let mut nf = Netfilter::default();
    assert!(nf.is_empty());
    nf.new_chain(Table::Filter, "u").unwrap();
    assert!(nf.is_empty(), "an empty user chain changes nothing");
    nf.set_policy(Table::Mangle, "FORWARD", Policy::Drop)
        .unwrap();
    assert!(!nf.is_empty());
    nf.set_policy(Table::Mangle, "FORWARD", Policy::Accept)
        .unwrap();
    assert!(nf.is_empty());
    nf.append(Table::Filter, "u", Rule::new()).unwrap();
    assert!(!nf.is_empty());
    nf.delete(Table::Filter, "u", 1).unwrap();
    assert!(nf.is_empty());
    let mut fx = Fx::new();
    assert_eq!(fx.fwd(&udp(A, B, 1, 2)), NfVerdict::Accept);
}

#[test]
fn malformed_packets_only_match_rules_that_need_no_header() {
    let good = tcp(A, B, 1, 80, TcpFlags::SYN);
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut v6 = good.clone();
    v6[0] = 0x65;
    let mut long_total = good.clone();
    long_total[2..4].copy_from_slice(&1500u16.to_be_bytes());
    let short_tcp = ip(A, B, 6, &good[20..30], 0, false);
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x45],
        bad_ihl,
        v6,
        long_total,
        good[..19].to_vec(),
    ];
    let header_rules = [
        Rule::new().src(A, 0),
        Rule::new().not().src(B, 32),
        Rule::new().not().dst(A, 32),
        Rule::new().proto(Proto::Num(0)),
        Rule::new().not().proto(Proto::Udp),
        Rule::new().fragment(),
        Rule::new().not().fragment(),
    ];
    for r in &header_rules {
        let d = drops(r.clone(), &junk);
        assert!(d.iter().all(|d| !d), "{r} matched junk: {d:?}");
    }
    // The L4 matches of a packet whose transport header is cut.
    let t = || Rule::new().proto(Proto::Tcp);
    for r in [
        t().dport(0..=65535),
        t().not().dport(1),
        t().syn(),
        t().not().syn(),
    ] {
        assert_eq!(drops(r, std::slice::from_ref(&short_tcp)), [false]);
    }
    assert_eq!(
        drops(t(), std::slice::from_ref(&short_tcp)),
        [true],
        "-p alone still matches"
    );
    // Rules that need no header match anything.
    assert!(drops(Rule::new(), &junk).iter().all(|d| *d));
    assert!(drops(Rule::new().in_dev(ETH0).mark(0, 0), &junk)
        .iter()
        .all(|d| *d));
    assert!(drops(Rule::new().not().in_dev(ETH0), &junk)
        .iter()
        .all(|d| !*d));
}

#[test]
fn the_hook_path_allocates_nothing() {
    let mut fx = Fx::new();
    let (f, m) = (Table::Filter, Table::Mangle);
    let nf = &mut fx.nf;
    nf.new_chain(f, "deep1").unwrap();
    nf.new_chain(f, "deep2").unwrap();
    nf.new_chain(f, "deep3").unwrap();
    nf.append(
        f,
        "deep3",
        Rule::new().proto(Proto::Tcp).syn().target(Target::Return),
    )
    .unwrap();
    nf.append(f, "deep2", Rule::new().target(Target::jump("deep3")))
        .unwrap();
    nf.append(f, "deep1", Rule::new().target(Target::jump("deep2")))
        .unwrap();
    nf.append(
        f,
        "deep1",
        Rule::new()
            .proto(Proto::Icmp)
            .icmp_type(8)
            .target(Target::Drop),
    )
    .unwrap();
    nf.append(f, "INPUT", Rule::new().src(B, 24).dst(A, 8).in_dev(ETH0))
        .unwrap();
    nf.append(f, "INPUT", Rule::new().target(Target::jump("deep1")))
        .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new()
            .proto(Proto::Udp)
            .dport(53)
            .target(Target::reject()),
    )
    .unwrap();
    nf.append(
        f,
        "INPUT",
        Rule::new()
            .not()
            .fragment()
            .mark(1, 1)
            .target(Target::Accept),
    )
    .unwrap();
    nf.append(
        m,
        "INPUT",
        Rule::new()
            .proto(Proto::Tcp)
            .dport(1..=1000)
            .target(Target::set_mark(1)),
    )
    .unwrap();
    nf.append(
        m,
        "INPUT",
        Rule::new()
            .proto(Proto::Num(0))
            .target(Target::and_mark(u32::MAX)),
    )
    .unwrap();
    let pkts = [
        tcp(A, B, 1, 80, TcpFlags::SYN),
        udp(A, B, 1, 53),
        icmp(B, A, 8, 0),
        ip(A, B, 6, &[0; 12], 16, false),
        vec![1, 2, 3],
    ];
    let mut skbs: Vec<Skb> = pkts.iter().map(|p| skb(p)).collect();
    let mut tracer = Tracer::new();
    tracer.enable(64);
    let mut run_all = |fx: &mut Fx| {
        let mut drops = 0u32;
        for s in &mut skbs {
            let v = fx.nf.run(
                NfHook::LocalIn,
                s,
                Some(ETH0),
                None,
                Instant::ZERO,
                &mut tracer,
            );
            drops += u32::from(v != NfVerdict::Accept);
        }
        drops
    };
    run_all(&mut fx);
    let (drops, allocs) = common::counted(|| (0..2000).map(|_| run_all(&mut fx)).sum::<u32>());
    assert_eq!(allocs, 0, "the hook path allocated");
    assert_eq!(drops, 2 * 2000, "udp/53 rejected, ping dropped");
}

// ---- robustness -----------------------------------------------------------------

/// A table with every match kind, negated and not, and every target.
fn everything() -> Netfilter {
    let mut nf = Netfilter::default();
    let (f, m) = (Table::Filter, Table::Mangle);
    nf.new_chain(f, "sub").unwrap();
    nf.new_chain(m, "msub").unwrap();
    let rules = |chain_dev_ok: bool| {
        let mut v = vec![
            Rule::new().src(A, 8).not().dst(B, 16),
            Rule::new()
                .not()
                .proto(Proto::Tcp)
                .target(Target::log("x ")),
            Rule::new()
                .proto(Proto::Tcp)
                .sport(1..=1024)
                .not()
                .dport(22)
                .syn(),
            Rule::new()
                .proto(Proto::Tcp)
                .not()
                .tcp_flags(TcpFlags::from_bits(0x3f), TcpFlags::ACK),
            Rule::new()
                .proto(Proto::Udp)
                .not()
                .sport(53)
                .dport(1..=9)
                .target(Target::Return),
            Rule::new().proto(Proto::Icmp).icmp_type_code(3, 4),
            Rule::new()
                .proto(Proto::Icmp)
                .not()
                .icmp_type(8)
                .target(Target::set_xmark(1, 3)),
            Rule::new().fragment().target(Target::or_mark(4)),
            Rule::new().not().fragment().mark(4, 4),
            Rule::new().not().mark(0, 1).proto(Proto::Num(47)),
        ];
        if chain_dev_ok {
            v.push(Rule::new().in_dev(ETH0).not().out_dev(ETH1));
        }
        v
    };
    for r in rules(false) {
        nf.append(f, "sub", r.clone()).unwrap();
        nf.append(m, "msub", r).unwrap();
    }
    for r in rules(true) {
        nf.append(f, "FORWARD", r.clone()).unwrap();
        nf.append(m, "FORWARD", r).unwrap();
    }
    for chain in ["INPUT", "FORWARD", "OUTPUT"] {
        nf.append(
            f,
            chain,
            Rule::new().proto(Proto::Udp).target(Target::jump("sub")),
        )
        .unwrap();
        nf.append(
            f,
            chain,
            Rule::new().proto(Proto::Icmp).target(Target::goto("sub")),
        )
        .unwrap();
        nf.append(
            f,
            chain,
            Rule::new()
                .proto(Proto::Tcp)
                .dport(7)
                .target(Target::Reject(RejectWith::TcpReset)),
        )
        .unwrap();
        nf.append(f, chain, Rule::new().mark(1, 1).target(Target::Drop))
            .unwrap();
    }
    for chain in ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] {
        nf.append(m, chain, Rule::new().target(Target::jump("msub")))
            .unwrap();
    }
    nf.set_policy(f, "FORWARD", Policy::Drop).unwrap();
    nf
}

fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        // Mostly-valid IPv4 headers with random fields and payload.
        (
            any::<[u8; 20]>(),
            0u8..=15,
            proptest::collection::vec(any::<u8>(), 0..60),
            prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
            any::<bool>(),
        )
            .prop_map(|(mut h, ihl, payload, proto, fix_len)| {
                h[0] = 0x40 | ihl;
                h[9] = proto;
                let mut v = h.to_vec();
                v.extend_from_slice(&payload);
                if fix_len {
                    let n = v.len() as u16;
                    v[2..4].copy_from_slice(&n.to_be_bytes());
                }
                v
            }),
    ]
}

proptest! {
    #[test]
    fn random_bytes_through_every_match_never_panic(
        pkt in arb_packet(),
        hook in 0usize..5,
        mark in any::<u32>(),
        devs in (proptest::option::of(1u32..4), proptest::option::of(1u32..4)),
    ) {
        let mut nf = everything();
        let mut tr = Tracer::new();
        tr.enable(8);
        let mut s = skb(&pkt);
        s.meta.mark = mark;
        let v = nf.run(
            NfHook::ALL[hook],
            &mut s,
            devs.0.map(IfIndex),
            devs.1.map(IfIndex),
            Instant::ZERO,
            &mut tr,
        );
        prop_assert!(matches!(v, NfVerdict::Accept | NfVerdict::Drop | NfVerdict::Reject(_)));
        // And the engine still lists and saves.
        prop_assert!(!nf.save(Table::Filter).is_empty());
        prop_assert!(nf.list_verbose(Table::Mangle, "msub").is_ok());
    }
}
