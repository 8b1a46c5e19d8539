//! Tests of the engine against a tiny scripted fake stack ([`Fake`]): it
//! answers a SYN with a SYN-ACK, completes connects, ACKs data, sends
//! writes (optionally split into pieces), and reports TCP_INFO; knobs make
//! it late, split, or chatty so that each runner rule can be exercised.

use super::host::*;
use super::packet::{self, Segment, Sent};
use super::report::{self, ScriptResult};
use super::*;
use crate::ast::{TcpFlags, TcpOption};
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

const ACK: u8 = TcpFlags::ACK;
const SYN: u8 = TcpFlags::SYN;
const PSH: u8 = TcpFlags::PSH;
const FIN: u8 = TcpFlags::FIN;

#[derive(Debug, Default, Clone)]
struct Sock {
    listening: Option<u16>,
    /// (remote port, local port) once it has a peer.
    peer: Option<(u16, u16)>,
    established: bool,
    accepted: bool,
    snd_nxt: u32,
    rcv_nxt: u32,
    rx_bytes: usize,
    ts_peer: Option<u32>,
}

/// The fake stack.
struct Fake {
    now: u64,
    sent: Vec<(u64, Vec<u8>)>,
    timers: Vec<(u64, Segment)>,
    socks: HashMap<i32, Sock>,
    next_fd: i32,
    nonblock: Vec<i32>,
    sysctls: Vec<(String, String)>,
    isn: u32,
    ts_base: u32,
    synack_delay_ns: u64,
    split: Option<u32>,
    /// The ecr of every injected timestamped segment.
    seen_ecr: Vec<u32>,
    /// The ack of every injected segment.
    seen_ack: Vec<u32>,
    cwnd: u64,
    local: Ipv4Addr,
    /// What `recvmsg(MSG_ERRQUEUE)` returns, oldest first.
    errq: VecDeque<RecvMsg>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            now: 5_000_000_000,
            sent: Vec::new(),
            timers: Vec::new(),
            socks: HashMap::new(),
            next_fd: 3,
            nonblock: Vec::new(),
            sysctls: Vec::new(),
            isn: 0x1234_5678,
            ts_base: 0xfff0_0000,
            synack_delay_ns: 0,
            split: None,
            seen_ecr: Vec::new(),
            seen_ack: Vec::new(),
            cwnd: 10,
            local: Ipv4Addr::new(192, 168, 0, 1),
            errq: VecDeque::new(),
        }
    }

    fn ts(&self) -> u32 {
        self.ts_base.wrapping_add((self.now / 1_000_000) as u32)
    }

    fn seg(&self, s: &Sock, flags: u8, seq: u32, len: u32, options: Vec<TcpOption>) -> Segment {
        let (rport, lport) = s.peer.unwrap_or((0, 0));
        Segment {
            src: self.local,
            dst: Ipv4Addr::new(192, 0, 2, 1),
            ecn: 0,
            sport: lport,
            dport: rport,
            seq,
            ack: if flags & ACK != 0 { s.rcv_nxt } else { 0 },
            flags,
            win: 1000,
            urg: 0,
            options,
            len,
        }
    }

    fn ts_opts(&self, s: &Sock) -> Vec<TcpOption> {
        match s.ts_peer {
            Some(ecr) => vec![
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::Timestamp {
                    val: self.ts(),
                    ecr,
                },
            ],
            None => Vec::new(),
        }
    }

    fn send(&mut self, seg: Segment) {
        let b = packet::build_tcp(&seg, 0).unwrap();
        self.sent.push((self.now, b));
    }

    fn blocking(&self, fd: i32) -> bool {
        !self.nonblock.contains(&fd)
    }

    fn would_block(&self, fd: i32) -> SysError {
        if self.blocking(fd) {
            SysError::WouldBlock
        } else {
            Errno::EAGAIN.into()
        }
    }
}

impl PktHost for Fake {
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn advance_to(&mut self, ns: u64) {
        self.now = self.now.max(ns);
        let (due, later): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(t, _)| *t <= ns);
        self.timers = later;
        for (t, seg) in due {
            let b = packet::build_tcp(&seg, 0).unwrap();
            self.sent.push((t, b));
        }
    }
    fn next_event_ns(&self) -> Option<u64> {
        self.timers.iter().map(|(t, _)| *t).min()
    }
    fn inject(&mut self, p: &[u8]) {
        assert!(packet::tcp_checksum_ok(p), "bad checksum");
        let Ok(Sent::Tcp(s)) = packet::parse(p) else {
            return;
        };
        assert_eq!(s.dst, self.local);
        self.seen_ack.push(s.ack);
        let ts = super::mapping::ts_of_list(&s.options);
        if let Some((_, ecr)) = ts {
            self.seen_ecr.push(ecr);
        }
        if s.flags == SYN {
            let Some((&_lfd, l)) = self
                .socks
                .iter()
                .find(|(_, k)| k.listening == Some(s.dport))
            else {
                return;
            };
            let _ = l;
            let mut child = Sock {
                peer: Some((s.sport, s.dport)),
                snd_nxt: self.isn.wrapping_add(1),
                rcv_nxt: s.seq.wrapping_add(1),
                ts_peer: ts.map(|t| t.0),
                ..Sock::default()
            };
            let mut opts = vec![TcpOption::Mss(1460)];
            if let Some(e) = child.ts_peer {
                opts.extend([
                    TcpOption::SackPermitted,
                    TcpOption::Timestamp {
                        val: self.ts(),
                        ecr: e,
                    },
                ]);
            }
            opts.extend([TcpOption::Nop, TcpOption::WindowScale(8)]);
            let synack = self.seg(&child, SYN | ACK, self.isn, 0, opts);
            self.timers.push((self.now + self.synack_delay_ns, synack));
            child.established = false;
            let fd = self.next_fd;
            self.next_fd += 1;
            self.socks.insert(1000 + fd, child);
            return;
        }
        let Some((_, k)) = self
            .socks
            .iter_mut()
            .find(|(_, k)| k.peer == Some((s.sport, s.dport)))
        else {
            return;
        };
        if s.flags & SYN != 0 {
            // SYN-ACK for our connect.
            if s.ack == k.snd_nxt {
                k.rcv_nxt = s.seq.wrapping_add(1);
                k.established = true;
                k.ts_peer = ts.map(|t| t.0);
                let k = k.clone();
                let opts = self.ts_opts(&k);
                let a = self.seg(&k, ACK, k.snd_nxt, 0, opts);
                self.send(a);
            }
            return;
        }
        if !k.established && s.flags & ACK != 0 && s.ack == k.snd_nxt {
            k.established = true;
        }
        if s.len > 0 && s.seq == k.rcv_nxt {
            k.rcv_nxt = k.rcv_nxt.wrapping_add(s.len);
            k.rx_bytes += s.len as usize;
            let k = k.clone();
            let opts = self.ts_opts(&k);
            let a = self.seg(&k, ACK, k.snd_nxt, 0, opts);
            self.send(a);
        }
    }
    fn take_sent(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.sent)
    }
    fn sysctl(&mut self, name: &str, value: &str) -> Result<(), Unsupported> {
        if name.contains("unknown") {
            return Err(Unsupported(format!("no sysctl {name}")));
        }
        self.sysctls.push((name.into(), value.into()));
        Ok(())
    }
    fn socket(&mut self, _d: i32, ty: i32, _p: i32) -> SysResult {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.socks.insert(fd, Sock::default());
        if ty & 0x800 != 0 {
            self.nonblock.push(fd);
        }
        Ok(fd.into())
    }
    fn bind(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult {
        let s = self.socks.get_mut(&fd).ok_or(Errno::EBADF)?;
        s.peer = Some((0, addr.port()));
        Ok(0)
    }
    fn listen(&mut self, fd: i32, _b: i32) -> SysResult {
        let s = self.socks.get_mut(&fd).ok_or(Errno::EBADF)?;
        s.listening = Some(s.peer.map_or(8080, |p| p.1));
        Ok(0)
    }
    fn accept(&mut self, fd: i32) -> SysResult {
        self.socks.get(&fd).ok_or(Errno::EBADF)?;
        let key = self
            .socks
            .iter()
            .filter(|(k, s)| **k >= 1000 && s.established && !s.accepted)
            .map(|(k, _)| *k)
            .min();
        match key {
            Some(k) => {
                let mut s = self.socks.remove(&k).unwrap_or_default();
                s.accepted = true;
                let nfd = k - 1000;
                self.socks.insert(nfd, s);
                Ok(nfd.into())
            }
            None => Err(self.would_block(fd)),
        }
    }
    fn connect(&mut self, fd: i32, addr: SocketAddrV4) -> SysResult {
        let isn = self.isn;
        let ts = self.ts();
        let blocking = self.blocking(fd);
        let s = self.socks.get_mut(&fd).ok_or(Errno::EBADF)?;
        if s.established {
            return Ok(0);
        }
        if s.peer.is_some_and(|p| p.0 != 0) {
            return Err(if blocking {
                SysError::WouldBlock
            } else {
                Errno::EALREADY.into()
            });
        }
        s.peer = Some((addr.port(), 33333));
        s.snd_nxt = isn.wrapping_add(1);
        let s = s.clone();
        let opts = vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { val: ts, ecr: 0 },
            TcpOption::Nop,
            TcpOption::WindowScale(8),
        ];
        let syn = self.seg(&s, SYN, isn, 0, opts);
        self.send(syn);
        Err(if blocking {
            SysError::WouldBlock
        } else {
            Errno::EINPROGRESS.into()
        })
    }
    fn recv(&mut self, fd: i32, len: usize, _flags: i32) -> SysResult {
        let wb = self.would_block(fd);
        let s = self.socks.get_mut(&fd).ok_or(Errno::EBADF)?;
        if s.rx_bytes == 0 {
            return Err(wb);
        }
        let n = len.min(s.rx_bytes);
        s.rx_bytes -= n;
        Ok(n as i64)
    }
    fn send(&mut self, fd: i32, len: usize, _flags: i32, _to: Option<SocketAddrV4>) -> SysResult {
        let s = self.socks.get(&fd).ok_or(Errno::EBADF)?.clone();
        if !s.established {
            return Err(Errno::EPIPE.into());
        }
        let piece = self.split.unwrap_or(u32::MAX).max(1);
        let mut left = len as u32;
        let mut seq = s.snd_nxt;
        while left > 0 {
            let n = left.min(piece);
            let flags = if n == left { PSH | ACK } else { ACK };
            let opts = self.ts_opts(&s);
            let seg = self.seg(&s, flags, seq, n, opts);
            self.send(seg);
            seq = seq.wrapping_add(n);
            left -= n;
        }
        if let Some(k) = self.socks.get_mut(&fd) {
            k.snd_nxt = seq;
        }
        Ok(len as i64)
    }
    fn shutdown(&mut self, _fd: i32, _how: i32) -> SysResult {
        Err(SysError::Unsupported("shutdown".into()))
    }
    fn close(&mut self, fd: i32) -> SysResult {
        let s = self.socks.remove(&fd).ok_or(Errno::EBADF)?;
        if s.established {
            let opts = self.ts_opts(&s);
            let f = self.seg(&s, FIN | ACK, s.snd_nxt, 0, opts);
            self.send(f);
        }
        Ok(0)
    }
    fn setsockopt(&mut self, fd: i32, _l: i32, _o: OptName, _v: &OptValue) -> SysResult {
        self.socks.get(&fd).ok_or(Errno::EBADF)?;
        Ok(0)
    }
    fn getsockopt(&mut self, _fd: i32, _l: i32, o: OptName) -> SysResult<OptValue> {
        match o {
            4 => Ok(OptValue::Int(0)),
            _ => Err(SysError::Unsupported(format!("getsockopt {o}"))),
        }
    }
    fn tcp_info(&mut self, fd: i32) -> SysResult<TcpInfo> {
        self.socks.get(&fd).ok_or(Errno::EBADF)?;
        Ok(TcpInfo {
            tcpi_snd_cwnd: self.cwnd,
            tcpi_ca_state: 0,
            tcpi_state: 1,
            tcpi_rto: 300_000,
            ..TcpInfo::default()
        })
    }
    fn fcntl(&mut self, fd: i32, cmd: i32, arg: i64) -> SysResult {
        self.socks.get(&fd).ok_or(Errno::EBADF)?;
        match cmd {
            3 => Ok(if self.nonblock.contains(&fd) {
                0x802
            } else {
                2
            }),
            4 => {
                self.nonblock.retain(|f| *f != fd);
                if arg & 0x800 != 0 {
                    self.nonblock.push(fd);
                }
                Ok(0)
            }
            _ => Err(Errno::EINVAL.into()),
        }
    }
    fn poll(&mut self, fds: &[PollFd]) -> SysResult<Vec<i16>> {
        Ok(fds
            .iter()
            .map(|p| {
                let s = self.socks.get(&p.fd);
                let mut r = 0;
                if s.is_some_and(|s| s.rx_bytes > 0) {
                    r |= 1;
                }
                if s.is_some_and(|s| s.established) {
                    r |= 4;
                }
                r & p.events
            })
            .collect())
    }
    fn recvmsg(&mut self, fd: i32, len: usize, flags: i32) -> SysResult<RecvMsg> {
        if flags & 0x2000 != 0 {
            return self.errq.pop_front().ok_or(Errno::EAGAIN.into());
        }
        self.recv(fd, len, flags).map(|len| RecvMsg {
            len,
            ..RecvMsg::default()
        })
    }
    fn ioctl(&mut self, fd: i32, request: u64) -> SysResult {
        let s = self.socks.get(&fd).ok_or(Errno::EBADF)?;
        match request {
            0x541B => Ok(s.rx_bytes as i64),
            _ => Err(SysError::Unsupported("ioctl".into())),
        }
    }
}

fn run(text: &str, fake: &mut Fake) -> Outcome {
    let script = crate::parse(text).expect("test script parses");
    run_script(&script, fake, &RunOptions::default())
}

const SERVER: &str = "\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
";

fn assert_fail_line(o: &Outcome, want_line: u32) {
    match o {
        Outcome::Fail { line, .. } => assert_eq!(*line, want_line, "{o}"),
        other => panic!("expected a failure at line {want_line}, got {other}"),
    }
}

#[test]
fn server_handshake_and_write_pass_with_seq_mapping() {
    let mut f = Fake::new();
    let text = format!("{SERVER}+0 write(4, ..., 2000) = 2000\n+0 > P. 1:2001(2000) ack 1\n");
    assert_eq!(run(&text, &mut f), Outcome::Pass);
    // The injected ACK acknowledged the fake's real ISN + 1.
    assert_eq!(f.seen_ack.last(), Some(&0x1234_5679));
    // defaults.sh was applied through the sysctl path.
    assert!(f
        .sysctls
        .contains(&("net.ipv4.tcp_sack".to_string(), "1".to_string())));
}

#[test]
fn wrong_sequence_numbers_fail() {
    let mut f = Fake::new();
    let text = format!("{SERVER}+0 write(4, ..., 2000) = 2000\n+0 > P. 2:2002(2000) ack 1\n");
    let o = run(&text, &mut f);
    assert_fail_line(&o, 10);
    assert!(o.to_string().contains("sequence number"), "{o}");
}

#[test]
fn time_tolerance() {
    // 3 ms late: within the default 4 ms.
    let mut f = Fake::new();
    f.synack_delay_ns = 3_000_000;
    assert_eq!(run(SERVER, &mut f), Outcome::Pass);
    // 6 ms late: a failure at the SYN-ACK line.
    let mut f = Fake::new();
    f.synack_delay_ns = 6_000_000;
    assert_fail_line(&run(SERVER, &mut f), 6);
    // The script's own tolerance wins.
    let mut f = Fake::new();
    f.synack_delay_ns = 6_000_000;
    let text = format!("--tolerance_usecs=10000\n{SERVER}");
    assert_eq!(run(&text, &mut f), Outcome::Pass);
    // A range accepts the late SYN-ACK, `*` accepts any time.
    let mut f = Fake::new();
    f.synack_delay_ns = 50_000_000;
    let text = SERVER.replace("+0 > S.", "+.04~+.06 > S.");
    assert_eq!(run(&text, &mut f), Outcome::Pass);
    let mut f = Fake::new();
    f.synack_delay_ns = 50_000_000;
    let text = SERVER.replace("+0 > S.", "* > S.");
    assert_eq!(run(&text, &mut f), Outcome::Pass);
}

#[test]
fn several_segments_match_one_expected_segment() {
    let text = format!("{SERVER}+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n");
    let mut f = Fake::new();
    f.split = Some(1000);
    assert_eq!(run(&text, &mut f), Outcome::Pass);
    let mut f = Fake::new();
    f.split = Some(1000);
    let strict = format!("--strict_segments\n{text}");
    assert_fail_line(&run(&strict, &mut f), 11);
}

#[test]
fn unexpected_packet_fails() {
    // The fake ACKs the data; the script does not expect that ACK.
    let text = format!(
        "{SERVER}+.1 < P. 1:101(100) ack 1 win 257\n+.1 read(4, ..., 100) = 100\n\
         +0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 101\n"
    );
    let o = run(&text, &mut Fake::new());
    assert_fail_line(&o, 10);
    assert!(o.to_string().contains("ack 101"), "{o}");
    let ok = format!(
        "{SERVER}+.1 < P. 1:101(100) ack 1 win 257\n+0 > . 1:1(0) ack 101\n+.1 read(4, ..., 100) = 100\n\
         +0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 101\n"
    );
    assert_eq!(run(&ok, &mut Fake::new()), Outcome::Pass);
}

#[test]
fn errno_checks() {
    let nb = format!("{SERVER}+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n");
    let ok = format!("{nb}+0 read(4, ..., 100) = -1 EAGAIN (Resource temporarily unavailable)\n");
    assert_eq!(run(&ok, &mut Fake::new()), Outcome::Pass);
    let bad = format!("{nb}+0 read(4, ..., 100) = -1 EINVAL\n");
    let o = run(&bad, &mut Fake::new());
    match &o {
        Outcome::Fail { line, actual, .. } => {
            assert_eq!(*line, 10);
            assert_eq!(actual, "-1 EAGAIN");
        }
        o => panic!("{o}"),
    }
    let value = format!("{nb}+0 fcntl(4, F_GETFL) = 0x2\n");
    assert_fail_line(&run(&value, &mut Fake::new()), 10);
    let ebadf = "0 close(9) = -1 EBADF (Bad file descriptor)\n";
    assert_eq!(run(ebadf, &mut Fake::new()), Outcome::Pass);
}

#[test]
fn blocking_accept_waits_in_virtual_time() {
    let text = "\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0...0.200 accept(3, ..., ...) = 4
+.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+.1 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 1
";
    assert_eq!(run(text, &mut Fake::new()), Outcome::Pass);
    let early = text.replace("...0.200", "...0.100");
    assert_fail_line(&run(&early, &mut Fake::new()), 4);
}

#[test]
fn client_connect_maps_timestamps() {
    let text = "\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.010 connect(3, ..., ...) = 0
+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
+.01 < S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
+0 > . 1:1(0) ack 1 <nop,nop,TS val 110 ecr 700>
+0 write(3, ..., 100) = 100
+0 > P. 1:101(100) ack 1 <nop,nop,TS val 110 ecr 700>
";
    let mut f = Fake::new();
    assert_eq!(run(text, &mut f), Outcome::Pass);
    // ecr 100 in the script is the fake's first TS val.
    let first_val = f.ts_base.wrapping_add(5000);
    assert_eq!(f.seen_ecr, vec![first_val]);
    // A wrong ecr expectation fails.
    let bad = text.replace("ecr 700>\n+0 write", "ecr 701>\n+0 write");
    assert_fail_line(&run(&bad, &mut Fake::new()), 5);
}

#[test]
fn nonblocking_connect_and_poll() {
    let text = "\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
+0...0.050 poll([{fd=3, events=POLLOUT, revents=POLLOUT}], 1, 1000) = 1
+.05 < S. 0:0(0) ack 1 win 5792 <mss 1460,nop,wscale 7>
+0 > . 1:1(0) ack 1
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
";
    assert_eq!(run(text, &mut Fake::new()), Outcome::Pass);
}

#[test]
fn python_blocks() {
    let ok = format!("{SERVER}+0 %{{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }}%\n+0 %{{\nx = tcpi_rto // 1000\nassert x == 300 and tcpi_ca_state == TCP_CA_Open\nassert (x + 2) * 3 % 7 == 906 % 7\n}}%\n");
    assert_eq!(run(&ok, &mut Fake::new()), Outcome::Pass);
    let bad = format!("{SERVER}+0 %{{ assert tcpi_snd_cwnd == 11, 'cwnd=%d' % tcpi_snd_cwnd }}%\n");
    let o = run(&bad, &mut Fake::new());
    assert_fail_line(&o, 9);
    assert!(o.to_string().contains("cwnd=10"), "{o}");
    let unknown = format!("{SERVER}+0 %{{ assert tcpi_nonsense == 1 }}%\n");
    assert!(matches!(
        run(&unknown, &mut Fake::new()),
        Outcome::Unsupported { line: 9, .. }
    ));
}

#[test]
fn shell_commands() {
    let mut f = Fake::new();
    let text = "`../common/defaults.sh\n ../common/set_sysctls.py /proc/sys/net/ipv4/tcp_min_tso_segs=10\n`\n0 `sysctl -q net.ipv4.tcp_sack=0`\n+0 `/tmp/sysctl_restore_${PPID}.sh`\n";
    assert_eq!(run(text, &mut f), Outcome::Pass);
    let has = |n: &str, v: &str| f.sysctls.contains(&(n.to_string(), v.to_string()));
    assert!(has("net.ipv4.tcp_min_tso_segs", "10"));
    assert!(has("net.ipv4.tcp_sack", "0"));
    let o = run("0 `tc qdisc show`\n", &mut Fake::new());
    assert_eq!(
        o,
        Outcome::Unsupported {
            line: 1,
            reason: "shell command `tc qdisc show`".into()
        }
    );
    // nstat needs the host's counters.
    let o = run("0 `nstat > /dev/null`\n", &mut Fake::new());
    assert!(
        matches!(&o, Outcome::Unsupported { line: 1, reason } if reason.contains("nstat")),
        "{o}"
    );
    let o = run("0 `sysctl -q net.ipv4.unknown_knob=1`\n", &mut Fake::new());
    assert!(matches!(o, Outcome::Unsupported { line: 1, .. }), "{o}");
    let o = run("0 epoll_create(1) = 4\n", &mut Fake::new());
    assert!(matches!(o, Outcome::Unsupported { line: 1, .. }), "{o}");
    let o = run(
        "--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        &mut Fake::new(),
    );
    assert!(matches!(o, Outcome::Unsupported { line: 0, .. }), "{o}");
}

#[test]
fn missing_packet_and_late_blocking_call_fail() {
    let text = format!("{SERVER}+0 > P. 1:11(10) ack 1\n");
    let o = run(&text, &mut Fake::new());
    assert_fail_line(&o, 9);
    assert!(o.to_string().contains("no packet"), "{o}");
    let text = format!("{SERVER}+0 read(4, ..., 10) = 10\n");
    assert_fail_line(&run(&text, &mut Fake::new()), 9);
}

#[test]
fn packets_have_correct_checksums_and_parse_back() {
    let s = Segment {
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst: Ipv4Addr::new(192, 168, 0, 1),
        ecn: 2,
        sport: 40000,
        dport: 8080,
        seq: 7,
        ack: 9,
        flags: SYN | ACK,
        win: 100,
        urg: 0,
        options: vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { val: 1, ecr: 2 },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
            TcpOption::Sack(vec![(1, 2)]),
        ],
        len: 33,
    };
    let b = packet::build_tcp(&s, 5).unwrap();
    assert!(packet::tcp_checksum_ok(&b));
    assert_eq!(packet::checksum(&b[..20]), 0);
    assert_eq!(packet::parse(&b).unwrap(), Sent::Tcp(s.clone()));
    let icmp = packet::build_icmp(s.src, s.dst, 3, 4, 1200, &s).unwrap();
    assert_eq!(packet::checksum(&icmp[20..]), 0);
    assert!(packet::parse(&[0x45, 0, 0]).is_err());
}

#[test]
fn reports_and_exit_status() {
    let r = |name: &str, outcome: Outcome| ScriptResult {
        name: name.into(),
        outcome,
    };
    let mut results = vec![
        r("blocking/a.pkt", Outcome::Pass),
        r(
            "blocking/b.pkt",
            Outcome::Unsupported {
                line: 3,
                reason: "epoll".into(),
            },
        ),
    ];
    assert_eq!(report::exit_status(&results), 0);
    results.push(r(
        "sack/c.pkt",
        Outcome::Fail {
            line: 7,
            expected: "> . 1:1(0) ack \"1\"".into(),
            actual: "no packet".into(),
        },
    ));
    assert_eq!(report::exit_status(&results), 1);
    let by = Summary::by_folder(&results);
    assert_eq!(
        by["blocking"].line("blocking"),
        "blocking: 2 scripts, 1 pass, 0 fail, 1 unsupported, 0 error"
    );
    assert!(results[2]
        .line()
        .starts_with("FAIL        sack/c.pkt: fail at line 7"));
    let j = report::to_json(&results);
    assert!(j.contains(r#""expected":"> . 1:1(0) ack \"1\"""#), "{j}");
    assert!(j.contains(r#""total":{"scripts":3,"pass":1,"fail":1,"unsupported":1,"error":0}"#));
    assert!(j.ends_with(r#""exit_status":1}"#));
    results.push(r(
        "x.pkt",
        Outcome::Error {
            line: 0,
            reason: "parse".into(),
        },
    ));
    assert_eq!(report::exit_status(&results), 2);
    assert_eq!(results[3].folder(), ".");
}

#[test]
fn fd_queue_types_are_usable() {
    // The trait is object safe and the fake can be boxed.
    let mut b: Box<dyn PktHost> = Box::new(Fake::new());
    let _ = VecDeque::<u8>::new();
    assert_eq!(b.socket(2, 1, 6), Ok(3));
}

#[test]
fn ts_val_checked_only_with_a_tick() {
    let text = "\
--tcp_ts_tick_usecs=1000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.010 connect(3, ..., ...) = 0
+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
+.01 < S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
+0 > . 1:1(0) ack 1 <nop,nop,TS val 110 ecr 700>
";
    assert_eq!(run(text, &mut Fake::new()), Outcome::Pass);
    // 10 ticks of 1 ms off: beyond the 4 ms tolerance.
    let bad = text.replace("TS val 110", "TS val 120");
    let o = run(&bad, &mut Fake::new());
    assert_fail_line(&o, 6);
    assert!(o.to_string().contains("TS val"), "{o}");
    // Without a tick the value is not checked.
    let loose = bad.replace("--tcp_ts_tick_usecs=1000\n", "");
    assert_eq!(run(&loose, &mut Fake::new()), Outcome::Pass);
}

#[test]
fn relative_times_count_from_when_a_packet_was_seen() {
    // The SYN-ACK comes 3 ms late; the ACK's `+.1` counts from then, so a
    // later absolute-looking chain still lines up.
    let mut f = Fake::new();
    f.synack_delay_ns = 3_000_000;
    let text = format!("{SERVER}+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n");
    assert_eq!(run(&text, &mut f), Outcome::Pass);
    // The injected ACK went in 100 ms after the SYN-ACK was sent.
    assert_eq!(f.now, 5_000_000_000 + 203_000_000);
}

#[test]
fn planning_decodes_calls() {
    use super::plan::{plan, Action, CallKind};
    let s = crate::parse(
        "0 socket(..., SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 3\n\
         +0 sendmsg(3, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {..., 20}], msg_flags=0}, MSG_MORE) = 30\n\
         +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
         +0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=1, tcpi_rto=...}, ...) = 0\n\
         +0 ioctl(3, SIOCINQ, [0]) = 0\n",
    )
    .unwrap();
    let p = plan(&s).unwrap();
    let kinds: Vec<&CallKind> = p
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Call(c) => &c.kind,
            a => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(
        kinds[0],
        &CallKind::Socket {
            domain: 2,
            ty: 0x801,
            protocol: 6
        }
    );
    assert!(matches!(
        kinds[1],
        CallKind::Send {
            len: 30,
            flags: 0x8000,
            to: Some(super::plan::Addr::Default),
            ..
        }
    ));
    assert!(matches!(
        kinds[2],
        CallKind::SetSockOpt {
            value: OptValue::Linger {
                onoff: 1,
                linger: 0
            },
            ..
        }
    ));
    assert!(
        matches!(kinds[3], CallKind::GetSockOpt { expect: super::plan::GetExpect::TcpInfo(f), .. } if f == &vec![("tcpi_state".to_string(), 1)])
    );
    assert!(matches!(
        kinds[4],
        CallKind::Ioctl {
            request: 0x541B,
            expect: Some(0),
            ..
        }
    ));
}

#[test]
fn planning_decodes_epoll_and_control_messages() {
    use super::plan::{plan, Action, CallKind, Cmsg, CmsgData, EpollEv, RecvExpect};
    let s = crate::parse(
        "0 epoll_create(1) = 5\n\
         +0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT|EPOLLIN|EPOLLET, fd=4}) = 0\n\
         +0 epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1\n\
         +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n\
         +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 1000}], msg_flags=0, msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=9000}]}, 0) = 1000\n",
    )
    .unwrap();
    let p = plan(&s).unwrap();
    let kinds: Vec<&CallKind> = p
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Call(c) => &c.kind,
            a => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(kinds[0], &CallKind::EpollCreate { size: 1 });
    assert_eq!(
        kinds[1],
        &CallKind::EpollCtl {
            epfd: 5,
            op: 1,
            fd: 4,
            event: Some(EpollEv {
                events: 0x8000_0005,
                data: 4
            })
        }
    );
    assert_eq!(
        kinds[2],
        &CallKind::EpollWait {
            epfd: 5,
            expect: vec![EpollEv { events: 5, data: 4 }],
            maxevents: 1,
            timeout_ms: 0
        }
    );
    assert!(
        matches!(kinds[3], CallKind::EpollWait { expect, .. } if expect == &vec![EpollEv { events: 0, data: 0 }])
    );
    assert_eq!(
        kinds[4],
        &CallKind::Recv {
            fd: 4,
            len: 1000,
            flags: 0,
            msg: Some(RecvExpect {
                flags: 0,
                control: Some(vec![Cmsg {
                    level: 6,
                    ty: 36,
                    data: CmsgData::Int(9000)
                }])
            })
        }
    );
}

/// An error-queue entry with a timestamp, as a host returns it: the
/// software time on the host's clock.
fn tstamp_entry(host_ns: u64, info: u32, data: u32) -> RecvMsg {
    RecvMsg {
        len: 0,
        flags: 0x2000 | 0x20,
        control: vec![
            Cmsg {
                level: 1,
                ty: 37,
                data: CmsgData::Timestamping {
                    sec: (host_ns / 1_000_000_000) as i64,
                    nsec: (host_ns % 1_000_000_000) as i64,
                },
            },
            Cmsg {
                level: 0,
                ty: 11,
                data: CmsgData::ExtErr(SockExtendedErr {
                    errno: 42,
                    origin: 4,
                    ty: 0,
                    code: 0,
                    info,
                    data,
                }),
            },
        ],
    }
}

const RECV_TSTAMP: &str = "+0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], \
    msg_flags=MSG_ERRQUEUE|MSG_TRUNC, msg_control=[ \
    {cmsg_level=SOL_SOCKET, cmsg_type=SCM_TIMESTAMPING, cmsg_data={scm_sec=0,scm_nsec=NS}}, \
    {cmsg_level=CMSG_LEVEL_IP, cmsg_type=CMSG_TYPE_RECVERR, cmsg_data={ee_errno=ENOMSG, \
    ee_origin=SO_EE_ORIGIN_TIMESTAMPING, ee_type=0, ee_code=0, ee_info=SCM_TSTAMP_SCHED, \
    ee_data=1999}}]}, MSG_ERRQUEUE) = 0\n";

/// `SCM_TIMESTAMPING` times are script-relative, checked within the
/// tolerance (not at all when 0); the extended error exactly.
#[test]
fn error_queue_timestamps_are_checked_on_the_script_clock() {
    let script = |ns: &str| format!("{SERVER}{}", RECV_TSTAMP.replace("NS", ns));
    // The script's 0 is the host's 5 s; the call is at 0.2 s.
    let at = |host_ms: u64| 5_000_000_000 + host_ms * 1_000_000;
    for (ns, host_ms, info, pass) in [
        ("200000000", 202, 1, true),
        ("200000000", 210, 1, false),
        ("0", 777, 1, true),
        ("200000000", 200, 0, false),
    ] {
        let mut f = Fake::new();
        f.errq.push_back(tstamp_entry(at(host_ms), info, 1999));
        let o = run(&script(ns), &mut f);
        if pass {
            assert_eq!(o, Outcome::Pass, "{ns} at {host_ms} ms");
        } else {
            assert_fail_line(&o, 9);
            assert!(o.to_string().contains("scm_sec"), "{o}");
        }
    }
    // Nothing queued: EAGAIN, not what the script says.
    let mut f = Fake::new();
    assert_fail_line(&run(&script("200000000"), &mut f), 9);
}

#[test]
fn trailing_packets_are_ignored_unless_asked() {
    // The fake ACKs the data and the script ends without a `>` line for
    // it: packetdrill ignores that (blocking-write.pkt relies on it).
    let text = format!("{SERVER}+.1 < P. 1:101(100) ack 1 win 257\n+.1 read(4, ..., 100) = 100\n");
    assert_eq!(run(&text, &mut Fake::new()), Outcome::Pass);
    let script = crate::parse(&text).unwrap();
    let opts = RunOptions {
        trailing_packets_fail: true,
        ..RunOptions::default()
    };
    let o = run_script(&script, &mut Fake::new(), &opts);
    assert_fail_line(&o, 10);
}

#[test]
fn python_arithmetic_is_pythons() {
    let mut vars = HashMap::new();
    let mut none = |_: &str| None;
    for (src, want) in [
        ("assert -7 // 2 == -4", true),
        ("assert -7 % 3 == 2", true),
        ("assert 7 % -3 == -2", true),
        ("assert 7 / 2 == 3.5", true),
        ("assert not (1 < 2 and 3 > 4) or 0", true),
        ("assert 2 + 3 * 4 == 20", false),
        ("assert 1 <= 5 <= 10", true),
        ("assert 1 <= 50 <= 10", false),
        ("assert 10 < 5 < 100", false),
        ("assert 1 < 2 < 3 < 4", true),
    ] {
        let stmts = crate::python::parse_block(src);
        let r = pyeval::run_block(&stmts, &mut vars, &mut none);
        assert_eq!(r.is_ok(), want, "{src}: {r:?}");
    }
    let stmts = crate::python::parse_block("assert 1 // 0 == 0");
    assert!(pyeval::run_block(&stmts, &mut vars, &mut none).is_err());
}

/// An assertion whose message this evaluator cannot read is still checked
/// (Python only evaluates the message when the assertion fails).
#[test]
fn assertion_messages_beyond_the_evaluator_do_not_stop_the_check() {
    let mut vars = HashMap::new();
    let mut look = |n: &str| (n == "tcpi_ca_state").then_some(3);
    let src = "assert tcpi_ca_state == 3, 'state: %d rtt: %d' % (tcpi_ca_state, 5)";
    let stmts = crate::python::parse_block(src);
    assert!(pyeval::run_block(&stmts, &mut vars, &mut look).is_ok());
    let src = "assert tcpi_ca_state == 4, 'state: %d rtt: %d' % (tcpi_ca_state, 5)";
    let stmts = crate::python::parse_block(src);
    let r = pyeval::run_block(&stmts, &mut vars, &mut look);
    assert!(matches!(r, Err(pyeval::PyError::Failed(_))), "{r:?}");
}

/// `tc qdisc replace dev tun0 root pfifo limit N` is a root FIFO; other tc
/// commands stay unsupported.
#[test]
fn tc_root_pfifo_is_understood() {
    use super::shell::{parse, ShellCmd};
    assert_eq!(
        parse("tc qdisc replace dev tun0 root pfifo limit 0"),
        Ok(vec![ShellCmd::RootPfifo { limit: Some(0) }])
    );
    assert_eq!(
        parse("tc qdisc add dev tun0 root pfifo"),
        Ok(vec![ShellCmd::RootPfifo { limit: None }])
    );
    assert!(parse("tc qdisc replace dev tun0 root fq").is_err());
    assert_eq!(
        parse("echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect"),
        Ok(vec![ShellCmd::Sysctl {
            name: "tcp_cubic.hystart_detect".into(),
            value: "3".into()
        }])
    );
    assert!(parse("echo 3 > /proc/whatever").is_err());
    use super::shell::RouteSpec;
    assert_eq!(
        parse("ip route change 192.0.2.1 via 192.168.0.2 dev tun0 advmss 600 mtu lock 640 initcwnd 11"),
        Ok(vec![ShellCmd::Route(RouteSpec {
            dst: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 32,
            advmss: Some(600),
            mtu: Some(640),
            mtu_lock: true,
            initcwnd: Some(11),
        })])
    );
    assert!(parse("ip route change 192.0.2.1 dev tun0 rtt 5").is_err());
    assert!(matches!(
        parse("ethtool -K tun0 gso off tso off").as_deref(),
        Ok([ShellCmd::OffloadsOff { gso: true }])
    ));
    assert!(matches!(
        parse("ethtool -K tun0 gro off").as_deref(),
        Ok([ShellCmd::OffloadsOff { gso: false }])
    ));
    assert!(parse("ethtool -K tun0 gso on").is_err());
    assert!(parse("tc qdisc replace dev tun0 root pfifo limit x").is_err());
}

/// Every corpus script run against the fake: nothing panics (the fake
/// asserts that every injected packet has correct checksums and addresses)
/// and every run ends. Most scripts fail against a fake, of course.
#[test]
fn corpus_runs_against_the_fake_without_panicking() {
    let shared = match std::env::var_os("NETPATH_SHARED") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = shared.join("packetdrill/tcp");
    if !dir.is_dir() {
        let why = format!(
            "corpus_runs_against_the_fake: skipped: {} not found",
            dir.display()
        );
        assert!(
            std::env::var("NETPATH_REQUIRE_SHARED").as_deref() != Ok("1"),
            "{why}, and NETPATH_REQUIRE_SHARED=1"
        );
        eprintln!("{why}");
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pkt") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut results = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let script = crate::parse(&text).unwrap();
        let outcome = run_script(&script, &mut Fake::new(), &RunOptions::default());
        let name = p.strip_prefix(&dir).unwrap_or(p).display().to_string();
        results.push(ScriptResult { name, outcome });
    }
    for r in &results {
        if std::env::var_os("PKT_FAKE_VERBOSE").is_some() {
            eprintln!("{}", r.line());
        }
    }
    for (f, s) in Summary::by_folder(&results) {
        eprintln!("{}", s.line(&f));
    }
    let total = Summary::of(&results);
    eprintln!("{}", total.line("total (against the fake)"));
    assert_eq!(total.scripts, files.len());
    assert_eq!(total.error, 0);
}

#[test]
fn run_source_reports_parse_errors() {
    let r = run_source(
        "x/bad.pkt",
        "0 socket(\n",
        &mut Fake::new(),
        &RunOptions::default(),
    );
    assert!(
        matches!(r.outcome, Outcome::Error { line: 2, .. }),
        "{:?}",
        r.outcome
    );
    assert_eq!(report::exit_status(&[r]), 2);
    let ok = run_source("x/ok.pkt", SERVER, &mut Fake::new(), &RunOptions::default());
    assert_eq!(ok.outcome, Outcome::Pass);
    assert_eq!(ok.line(), "PASS        x/ok.pkt");
}

#[test]
fn defines_replace_whole_words() {
    let d = vec![("TFO_COOKIE".to_string(), "00aa".to_string())];
    assert_eq!(
        super::apply_defines("<FO TFO_COOKIE,nop> TFO_COOKIEX", &d),
        "<FO 00aa,nop> TFO_COOKIEX"
    );
}

#[test]
fn shell_alternatives_and_metrics() {
    use super::shell::{parse, ShellCmd};
    // tcp_fastopen_cookies is not a Linux sysctl: the `||` branch runs.
    let cmds = parse(
        "sysctl -q net.ipv4.tcp_fastopen_cookies=0 &> /dev/null || ip tcp_metrics flush all &> /dev/null",
    )
    .unwrap();
    assert_eq!(cmds, vec![ShellCmd::FlushTcpMetrics]);
    assert_eq!(
        parse("nstat > /dev/null").unwrap(),
        vec![ShellCmd::NstatReset]
    );
    assert_eq!(
        parse("nstat | grep TcpExtOutOfWindowIcmps > /dev/null").unwrap(),
        vec![ShellCmd::NstatHas("TcpExtOutOfWindowIcmps".into())]
    );
}
