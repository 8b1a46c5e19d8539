//! TCP urgent data as Linux delivers it (`tcp_urg`, `tcp_recvmsg`,
//! `tcp_recv_urg`, `tcp_read_sock`): one urgent byte, out of band unless
//! `SO_OOBINLINE`, reads stopping at the mark, `MSG_OOB` reading it once,
//! `SIOCATMARK`, `POLLPRI`, and splice stopping at the mark.

mod onehost;

use netpath::sock::{Errno, SockId};
use netpath::tcp::urg::OobRecv;
use netpath::tcp::TcpOpt;
use onehost::{Host, Seg};

const SPORT: u16 = 40100;
const DPORT: u16 = 8090;

/// A segment of `payload` at `seq` (the peer's ISN is 0), urgent pointer
/// `urg` when given.
fn data(iss: u32, seq: u32, payload: &[u8], urg: Option<u16>) -> Seg {
    Seg {
        sport: SPORT,
        dport: DPORT,
        seq,
        ack: iss.wrapping_add(1),
        flags: 0x18 | if urg.is_some() { 0x20 } else { 0 },
        win: 65535,
        urg_ptr: urg.unwrap_or(0),
        payload: payload.to_vec(),
        ..Seg::default()
    }
}

fn read(h: &mut Host, s: SockId, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let n = h.stack.tcp_recv(h.now, s, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn peek(h: &mut Host, s: SockId, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let n = h.stack.tcp_recv_flags(h.now, s, &mut buf, true)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn urgent_byte_is_out_of_band_and_reads_stop_at_the_mark() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    // "hello!" with the urgent pointer past '!' (BSD style): '!' is urgent.
    h.inject(&data(iss, 1, b"hello!", Some(6)));
    let acks = h.sent();
    assert_eq!(
        acks.last().map(|a| a.ack),
        Some(7),
        "the urgent byte is acknowledged"
    );
    assert!(!h.stack.tcp_sockatmark(s).unwrap());
    assert!(h.stack.tcp_poll(s).pri);
    // A read stops before the mark.
    assert_eq!(read(&mut h, s, 100).unwrap(), b"hello");
    assert!(h.stack.tcp_sockatmark(s).unwrap());
    // Only the out-of-band byte is left: not readable, but POLLPRI.
    let ev = h.stack.tcp_poll(s);
    assert!(!ev.readable && ev.pri);
    assert_eq!(h.stack.tcp_inq(s), Ok(1));
    // MSG_OOB|MSG_PEEK leaves it, MSG_OOB takes it once.
    assert_eq!(h.stack.tcp_recv_oob(s, true), Ok(OobRecv::Byte(b'!')));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Ok(OobRecv::Byte(b'!')));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Err(Errno::EINVAL));
    assert!(!h.stack.tcp_poll(s).pri);
    // The stream goes on past the byte, which it never shows.
    h.inject(&data(iss, 7, b"world", None));
    assert!(h.stack.tcp_poll(s).readable);
    assert_eq!(read(&mut h, s, 100).unwrap(), b"world");
    assert!(!h.stack.tcp_sockatmark(s).unwrap());
    assert_eq!(read(&mut h, s, 100), Err(Errno::EAGAIN));
}

#[test]
fn a_read_at_the_mark_steps_over_the_urgent_byte() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    h.inject(&data(iss, 1, b"hello!", Some(6)));
    h.inject(&data(iss, 7, b"world", None));
    assert_eq!(peek(&mut h, s, 100).unwrap(), b"hello");
    assert_eq!(read(&mut h, s, 100).unwrap(), b"hello");
    // At the mark, nothing read yet: the byte is skipped and the read goes
    // on (a peek too, without consuming).
    assert_eq!(peek(&mut h, s, 100).unwrap(), b"world");
    assert_eq!(read(&mut h, s, 3).unwrap(), b"wor");
    // Past the mark the urgent data is forgotten, unread: MSG_OOB has none.
    assert_eq!(h.stack.tcp_recv_oob(s, false), Err(Errno::EINVAL));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"ld");
}

#[test]
fn oob_before_the_urgent_byte_arrives_is_eagain() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    // The pointer reaches past this segment: urgent byte at seq 10.
    h.inject(&data(iss, 1, b"abc", Some(10)));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Err(Errno::EAGAIN));
    assert!(!h.stack.tcp_poll(s).pri);
    assert_eq!(read(&mut h, s, 100).unwrap(), b"abc");
    // seq 4..11: the urgent byte is 'j' (seq 10); reads stop before it.
    h.inject(&data(iss, 4, b"defghijk", None));
    assert!(h.stack.tcp_poll(s).pri);
    assert_eq!(read(&mut h, s, 100).unwrap(), b"defghi");
    assert_eq!(h.stack.tcp_recv_oob(s, false), Ok(OobRecv::Byte(b'j')));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"k");
}

#[test]
fn oob_inline_keeps_the_byte_in_the_stream() {
    let mut h = Host::new();
    let l = h.listen(DPORT);
    h.stack.tcp_setsockopt(l, TcpOpt::OobInline(true)).unwrap();
    let iss = h.syn(SPORT, DPORT);
    h.inject(&Seg {
        sport: SPORT,
        dport: DPORT,
        seq: 1,
        ack: iss.wrapping_add(1),
        flags: 0x10,
        win: 65535,
        ..Seg::default()
    });
    let (s, _) = h.stack.tcp_accept(h.now, l).unwrap();
    assert_eq!(
        h.stack.tcp_getsockopt(s, TcpOpt::OobInline(false)),
        Ok(TcpOpt::OobInline(true)),
        "inherited from the listener"
    );
    h.inject(&data(iss, 1, b"hello!world", Some(6)));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Err(Errno::EINVAL));
    // The read still stops at the mark, then reads the byte in line.
    assert_eq!(read(&mut h, s, 100).unwrap(), b"hello");
    assert!(h.stack.tcp_sockatmark(s).unwrap());
    assert!(h.stack.tcp_poll(s).readable);
    assert_eq!(read(&mut h, s, 100).unwrap(), b"!world");
}

#[test]
fn splice_stops_at_the_mark_without_skipping() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    // packetdrill's tcp_splice_loop_test: 100 bytes, urgent pointer 100.
    let payload: Vec<u8> = (0..100).collect();
    h.inject(&data(iss, 1, &payload, Some(100)));
    let mut buf = [0u8; 200];
    assert_eq!(h.stack.tcp_splice_read(h.now, s, &mut buf, false), Ok(99));
    assert_eq!(&buf[..99], &payload[..99]);
    // At the mark: 0 at once for a blocking socket (data is queued), EAGAIN
    // for a non-blocking one; a splice never steps over the byte.
    assert_eq!(
        h.stack.tcp_splice_read(h.now, s, &mut buf[..1], false),
        Ok(0)
    );
    assert_eq!(
        h.stack.tcp_splice_read(h.now, s, &mut buf, true),
        Err(Errno::EAGAIN)
    );
    assert_eq!(h.stack.tcp_inq(s), Ok(1));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Ok(OobRecv::Byte(99)));
    assert_eq!(h.stack.tcp_splice_read(h.now, s, &mut buf, false), Ok(0));
    // A read steps over it; then splice has nothing (a blocking one would
    // wait: EAGAIN here).
    h.inject(&data(iss, 101, b"xyz", None));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"xyz");
    assert_eq!(
        h.stack.tcp_splice_read(h.now, s, &mut buf, false),
        Err(Errno::EAGAIN)
    );
    h.inject(&data(iss, 104, b"more", None));
    assert_eq!(h.stack.tcp_splice_read(h.now, s, &mut buf, false), Ok(4));
    assert_eq!(&buf[..4], b"more");
}

#[test]
fn a_new_urgent_pointer_steps_over_the_unread_old_byte() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    h.inject(&data(iss, 1, b"ab!", Some(3)));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"ab");
    // A second urgent byte ('?') while the first waits at the read head
    // with more data behind it: the first leaves the stream, unread.
    h.inject(&data(iss, 4, b"cd?", Some(3)));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Ok(OobRecv::Byte(b'?')));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"cd");
}

#[test]
fn stdurg_points_at_the_urgent_byte() {
    let mut h = Host::new();
    h.stack.sysctl_tcp("net.ipv4.tcp_stdurg", "1").unwrap();
    let (s, iss) = h.accepted(SPORT, DPORT);
    // RFC 1122's reading: pointer 5 from seq 1 is the byte at seq 6.
    h.inject(&data(iss, 1, b"hello!", Some(5)));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"hello");
    assert_eq!(h.stack.tcp_recv_oob(s, false), Ok(OobRecv::Byte(b'!')));
}

#[test]
fn urgent_pointer_of_old_data_is_ignored() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(SPORT, DPORT);
    h.inject(&data(iss, 1, b"hello", None));
    assert_eq!(read(&mut h, s, 100).unwrap(), b"hello");
    // A retransmission of read data with URG: no mark.
    h.inject(&data(iss, 1, b"hello", Some(5)));
    assert_eq!(h.stack.tcp_recv_oob(s, false), Err(Errno::EINVAL));
    assert!(!h.stack.tcp_sockatmark(s).unwrap());
}
