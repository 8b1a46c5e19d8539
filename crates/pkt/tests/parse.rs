//! Unit tests of every construct: parse, inspect the AST, round-trip.

use netpath_pkt::*;

/// Parses `text`, checks print → parse gives the same AST, returns it.
fn rt(text: &str) -> Script {
    let s = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let printed = s.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("reparse {printed:?}: {e}"));
    assert!(
        again.eq_ignoring_lines(&s),
        "{text:?} printed as {printed:?}"
    );
    s
}

fn one(text: &str) -> Event {
    let mut s = rt(text);
    assert_eq!(s.events.len(), 1, "{text:?}");
    s.events.remove(0)
}

fn syscall(text: &str) -> Syscall {
    match one(text).kind {
        EventKind::Syscall(s) => s,
        k => panic!("not a syscall: {k:?}"),
    }
}

fn tcp(text: &str) -> (Packet, TcpSegment) {
    match one(text).kind {
        EventKind::Packet(p) => match &p.body {
            PacketBody::Tcp(t) => {
                let t = t.clone();
                (p, t)
            }
            b => panic!("not tcp: {b:?}"),
        },
        k => panic!("not a packet: {k:?}"),
    }
}

fn tp(relative: bool, micros: u64) -> TimePoint {
    TimePoint { relative, micros }
}

#[test]
fn times() {
    assert_eq!(one("0 close(3) = 0").time, Some(Time::At(tp(false, 0))));
    assert_eq!(
        one("1.5 close(3) = 0").time,
        Some(Time::At(tp(false, 1_500_000)))
    );
    assert_eq!(
        one("+.1 close(3) = 0").time,
        Some(Time::At(tp(true, 100_000)))
    );
    assert_eq!(
        one("+.1~+.105 close(3) = 0").time,
        Some(Time::Range(tp(true, 100_000), tp(true, 105_000)))
    );
    assert_eq!(
        one("0.1~0.2 close(3) = 0").time,
        Some(Time::Range(tp(false, 100_000), tp(false, 200_000)))
    );
    assert_eq!(
        one("+0...0.010 close(3) = 0").time,
        Some(Time::Blocking {
            start: tp(true, 0),
            end: tp(false, 10_000)
        })
    );
    assert_eq!(one("* close(3) = 0").time, Some(Time::Any));
    assert!(parse("1.1234567 close(3) = 0").is_err());
}

#[test]
fn syscall_args_and_results() {
    let s = syscall("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3");
    assert_eq!(s.name, "socket");
    assert_eq!(
        s.args,
        vec![
            Expr::Ellipsis,
            Expr::Ident("SOCK_STREAM".into()),
            Expr::Ident("IPPROTO_TCP".into())
        ]
    );
    assert_eq!(s.result.value, Expr::Int(3));

    let s = syscall("+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0");
    assert_eq!(
        s.args[2],
        Expr::Or(vec![
            Expr::Ident("O_RDWR".into()),
            Expr::Ident("O_NONBLOCK".into())
        ])
    );

    let s = syscall("+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)");
    assert_eq!(s.result.value, Expr::Int(-1));
    assert_eq!(s.result.errno.as_deref(), Some("EINPROGRESS"));
    assert_eq!(s.result.note.as_deref(), Some("Operation now in progress"));

    let s = syscall("+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR)");
    assert_eq!(s.result.value, Expr::Int(0x802));
    assert_eq!(s.result.errno, None);
    assert_eq!(s.result.note.as_deref(), Some("flags O_RDWR"));

    let s = syscall("+0 close(9) = -1 (Bad (nested) fd)");
    assert_eq!(s.result.note.as_deref(), Some("Bad (nested) fd"));
    let s = syscall("+0 read(9, ..., 10) = -1 ECONNRESET(Connection reset)");
    assert_eq!(s.result.errno.as_deref(), Some("ECONNRESET"));
}

#[test]
fn struct_array_call_addr_string() {
    let s = syscall(
        "0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), \
         sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0",
    );
    let Expr::Struct(fields) = &s.args[1] else {
        panic!("{:?}", s.args[1]);
    };
    assert_eq!(fields[0].key, Some(Expr::Ident("sa_family".into())));
    assert_eq!(
        fields[1].value,
        Expr::Call("htons".into(), vec![Expr::Int(8080)])
    );
    assert_eq!(
        fields[2].value,
        Expr::Call("inet_addr".into(), vec![Expr::Str("192.0.2.1".into())])
    );

    let s = syscall("0 setsockopt(3, SOL_SOCKET, SO_SNDBUF, [1000], 4) = 0");
    assert_eq!(s.args[3], Expr::Array(vec![Expr::Int(1000)]));

    let s = syscall("0 x(&y, [], {}, \"a\\\"b\", NULL) = 0");
    assert_eq!(s.args[0], Expr::AddrOf(Box::new(Expr::Ident("y".into()))));
    assert_eq!(s.args[1], Expr::Array(vec![]));
    assert_eq!(s.args[2], Expr::Struct(vec![]));
    assert_eq!(s.args[3], Expr::Str("a\\\"b".into()));

    // Multi-line struct with call-shaped keys and positional members.
    let s = syscall(
        "+1 recvmsg(3, {msg_name(...)=...,\n   msg_iov(1)=[{...,0}],\n  msg_flags=0}, 0) = 0",
    );
    let Expr::Struct(fields) = &s.args[1] else {
        panic!()
    };
    assert_eq!(
        fields[0].key,
        Some(Expr::Call("msg_name".into(), vec![Expr::Ellipsis]))
    );
    assert_eq!(
        fields[1].value,
        Expr::Array(vec![Expr::Struct(vec![
            Field {
                key: None,
                value: Expr::Ellipsis
            },
            Field {
                key: None,
                value: Expr::Int(0)
            },
        ])])
    );
}

#[test]
fn poll_epoll_ioctl_getsockopt() {
    rt("+0...0.010 poll([{fd=3, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 10) = 1");
    rt("+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLET, fd=4}) = 0");
    rt("+0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1");
    rt("+0 ioctl(4, SIOCINQ, [0]) = 0");
    let s = syscall("+0 getsockopt(3, SOL_TCP, TCP_MAXSEG, [0xffffffff], [4]) = 0");
    assert_eq!(s.args[3], Expr::Array(vec![Expr::Int(0xffff_ffff)]));
    rt("+0 pipe([5, 6]) = 0");
}

#[test]
fn tcp_packets() {
    let (p, t) = tcp("+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>");
    assert_eq!(p.direction, Direction::Outbound);
    assert_eq!(t.flags, TcpFlags(TcpFlags::SYN));
    assert_eq!(
        t.seq,
        SeqRange {
            start: 0,
            end: 0,
            len: 0
        }
    );
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { val: 100, ecr: 0 },
            TcpOption::Nop,
            TcpOption::WindowScale(8),
        ]))
    );

    let (p, t) = tcp("+.1 < S. 0:0(0) ack 1 win 5792 <...>");
    assert_eq!(p.direction, Direction::Inbound);
    assert!(t.flags.has(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!((t.ack, t.win), (Some(1), Some(5792)));
    assert_eq!(t.options, Some(TcpOptions::Any));

    for (text, bits) in [
        (".", TcpFlags::ACK),
        ("F.", TcpFlags::FIN | TcpFlags::ACK),
        ("P.", TcpFlags::PSH | TcpFlags::ACK),
        ("R", TcpFlags::RST),
        ("SEW", TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR),
        ("FP.", TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK),
        ("U.", TcpFlags::URG | TcpFlags::ACK),
        ("-", 0),
    ] {
        let (_, t) = tcp(&format!("0 < {text} 1:1(0) win 100"));
        assert_eq!(t.flags, TcpFlags(bits), "{text}");
    }
    let (_, t) = tcp("0 < U. 1:101(100) ack 1 win 257 urg 100");
    assert_eq!(t.urg, Some(100));
    assert!(parse("0 < X 1:1(0)").is_err());

    let (p, _) = tcp("+0 > [ect0] P. 1:1001(1000) ack 1");
    assert_eq!(p.ecn, Some(Ecn::Ect0));
    let (p, _) = tcp("+0 < [noecn] E. 1:1(0) ack 1 win 9");
    assert_eq!(p.ecn, Some(Ecn::NoEcn));
    assert!(parse("0 < [bogus] . 1:1(0)").is_err());
}

#[test]
fn tcp_options_exotic() {
    let (_, t) = tcp(
        "0 < . 1:1(0) ack 1 win 9 <sack 1001:2001 3001:4001,eol,md5 00ff,FO,FO abcd1234,FOEXP,FOEXP TFO_COOKIE>",
    );
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::Sack(vec![(1001, 2001), (3001, 4001)]),
            TcpOption::Eol,
            TcpOption::Md5(Some("00ff".into())),
            TcpOption::FastOpen(None),
            TcpOption::FastOpen(Some("abcd1234".into())),
            TcpOption::FastOpenExp(None),
            TcpOption::FastOpenExp(Some("TFO_COOKIE".into())),
        ]))
    );
    let (_, t) = tcp("0 < . 1:1(0) <>");
    assert_eq!(t.options, Some(TcpOptions::List(vec![])));
    assert!(parse("0 < . 1:1(0) <bogus 1>").is_err());
    assert!(parse("0 < . 1:1(0) <mss 70000>").is_err());
}

#[test]
fn icmp_packets() {
    let e = one("+.01 < icmp unreachable frag_needed mtu 1200 [0:10(10)]");
    let EventKind::Packet(Packet {
        body: PacketBody::Icmp(i),
        ..
    }) = e.kind
    else {
        panic!()
    };
    assert_eq!(i.icmp_type, "unreachable");
    assert_eq!(i.code.as_deref(), Some("frag_needed"));
    assert_eq!(i.mtu, Some(1200));
    assert_eq!(
        i.quoted,
        Some(SeqRange {
            start: 0,
            end: 10,
            len: 10
        })
    );

    let s = rt("0 < icmp packet_too_big mtu 1400\n+0 < icmp unreachable\n1 close(3) = 0");
    assert_eq!(s.events.len(), 3);
}

#[test]
fn shell_commands() {
    let s = rt("`../common/defaults.sh`\n0 `sysctl -q net.ipv4.tcp_sack=0`\n+0 `tc qdisc add \\\n  dev x root fq`");
    assert_eq!(s.events[0].time, None);
    assert_eq!(
        s.events[0].kind,
        EventKind::Shell("../common/defaults.sh".into())
    );
    assert_eq!(
        s.events[2].kind,
        EventKind::Shell("tc qdisc add \\\n  dev x root fq".into())
    );
    assert_eq!(s.events[2].line, 3);
    assert!(parse("0 `unterminated").is_err());
}

#[test]
fn python_blocks() {
    let e = one("+0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%");
    let EventKind::Python(b) = e.kind else {
        panic!()
    };
    assert_eq!(b.raw, " assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd ");
    assert_eq!(
        b.stmts,
        vec![PyStmt::Assert {
            cond: PyExpr::Binary(
                PyBinOp::Eq,
                Box::new(PyExpr::Name("tcpi_snd_cwnd".into())),
                Box::new(PyExpr::Int(10))
            ),
            msg: Some(PyExpr::Name("tcpi_snd_cwnd".into())),
        }]
    );

    let e = one(
        "+0 %{\nassert a >= 1 and not b < 2 or c == x * 3 + 1 # note\n\
         assert d == 5, 'd=%d' % d\nx += 10\nprint(x)\nfor i in y: pass\n}%",
    );
    let EventKind::Python(b) = e.kind else {
        panic!()
    };
    let printed: Vec<String> = b.stmts.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        printed,
        vec![
            "assert (((a >= 1) and (not (b < 2))) or (c == ((x * 3) + 1)))",
            "assert (d == 5), ('d=%d' % d)",
            "x += 10",
            "print(x)",
            "for i in y: pass",
        ]
    );
    assert!(matches!(b.stmts[4], PyStmt::Other(_)));
    assert!(parse("0 %{ unterminated").is_err());
}

#[test]
fn comments_and_options() {
    let s = rt(
        "// header\n/* block\ncomment */\n--tolerance_usecs=10000\n--strict_segments\n\
                --local_ip=192.168.0.1 // trailing\n0 close(3) = 0 // trailing\n",
    );
    assert_eq!(
        s.options,
        vec![
            ScriptOption {
                name: "tolerance_usecs".into(),
                value: Some("10000".into())
            },
            ScriptOption {
                name: "strict_segments".into(),
                value: None
            },
            ScriptOption {
                name: "local_ip".into(),
                value: Some("192.168.0.1".into())
            },
        ]
    );
    assert_eq!(s.events.len(), 1);
    assert_eq!(s.events[0].line, 7);
    assert!(parse("/* never closed").is_err());
}

#[test]
fn errors_have_positions() {
    let e = parse("0 close(3) = 0\n+0 > Q 1:1(0)").unwrap_err();
    assert_eq!((e.line, e.col), (2, 6));
    let e = parse("0 close(3 = 0").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.to_string().starts_with("1:"));
    let e = parse("\n\n  ? x").unwrap_err();
    assert_eq!((e.line, e.col), (3, 3));
    assert!(parse("0 close(99999999999999999999) = 0").is_err());
    assert!(parse("0 < . 4294967296:1(0)").is_err());
    assert!(parse("close(3) = 0").is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("0 f({}) = 0", "[".repeat(100_000));
    assert!(parse(&deep).is_err());
    let py = format!("0 %{{ assert {}1 }}%", "(".repeat(100_000));
    assert!(parse(&py).is_ok());
}

#[test]
fn empty_script() {
    assert_eq!(rt(""), Script::default());
    assert_eq!(rt("// only a comment\n"), Script::default());
}
