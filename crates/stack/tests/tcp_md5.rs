//! TCP-MD5 (RFC 2385) and TCP-AO options reaching a stack without keys
//! (`tcp_inbound_hash`): dropped and counted as Linux does, the handshake
//! completed only by the unsigned ACK (packetdrill's
//! md5/md5-only-on-client-ack.pkt), no RST for a signed segment to a closed
//! port.

mod onehost;

use netpath::drop::DropReason;
use netpath::sock::Errno;
use onehost::{Host, Seg};

fn md5_opt() -> Vec<u8> {
    let mut o = vec![19, 18];
    o.extend(0u8..16);
    o.extend([1, 1]);
    o
}

fn ext(h: &Host, name: &str) -> u64 {
    h.stack
        .tcp_ext_mib()
        .fields()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn signed_ack_does_not_complete_the_handshake() {
    let mut h = Host::new();
    let l = h.listen(8080);
    let iss = h.syn(40000, 8080);
    let ack = Seg {
        sport: 40000,
        dport: 8080,
        seq: 1,
        ack: iss.wrapping_add(1),
        flags: 0x10,
        win: 65535,
        ..Seg::default()
    };
    for n in 1..=2 {
        h.run_ms(10);
        h.inject(&Seg {
            opts: md5_opt(),
            ..ack.clone()
        });
        assert_eq!(ext(&h, "TCPMD5Unexpected"), n);
        assert_eq!(h.stack.drops().get(DropReason::TcpMd5unexpected), n);
        assert!(h.sent().is_empty(), "a dropped segment is not answered");
        assert_eq!(h.stack.tcp_accept(h.now, l).err(), Some(Errno::EAGAIN));
    }
    h.run_ms(10);
    h.inject(&ack);
    let (s, _) = h
        .stack
        .tcp_accept(h.now, l)
        .expect("the unsigned ACK completes it");
    assert_eq!(
        h.stack.tcp_send(h.now, s, &[0; 1000], Default::default()),
        Ok(1000)
    );
    let out = h.sent();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].len), (iss.wrapping_add(1), 1000));
    assert_eq!(ext(&h, "TCPMD5Unexpected"), 2);
}

#[test]
fn signed_segments_dropped_on_established_connection() {
    let mut h = Host::new();
    let (s, iss) = h.accepted(40001, 8081);
    let data = Seg {
        sport: 40001,
        dport: 8081,
        seq: 1,
        ack: iss.wrapping_add(1),
        flags: 0x18,
        win: 514,
        payload: vec![7; 10],
        ..Seg::default()
    };
    h.inject(&Seg {
        opts: md5_opt(),
        ..data.clone()
    });
    let mut buf = [0u8; 100];
    assert_eq!(h.stack.tcp_recv(h.now, s, &mut buf), Err(Errno::EAGAIN));
    assert_eq!(h.stack.drops().get(DropReason::TcpMd5unexpected), 1);
    assert!(h.sent().is_empty());
    // The same data unsigned is taken.
    h.inject(&data);
    assert_eq!(h.stack.tcp_recv(h.now, s, &mut buf), Ok(10));
    // Two MD5 options, or one of the wrong length: a bad header, no counter.
    let mut twice = md5_opt();
    twice.truncate(18);
    twice.extend(md5_opt());
    for opts in [twice, vec![19, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]] {
        h.inject(&Seg {
            seq: 11,
            opts,
            ..data.clone()
        });
    }
    assert_eq!(h.stack.drops().get(DropReason::TcpAuthHdr), 2);
    assert_eq!(ext(&h, "TCPMD5Unexpected"), 1);
    assert_eq!(h.stack.tcp_recv(h.now, s, &mut buf), Err(Errno::EAGAIN));
    // TCP-AO (kind 29) with no TCP-AO keys.
    h.inject(&Seg {
        seq: 11,
        opts: vec![29, 6, 1, 1, 0xaa, 0xbb, 1, 1],
        ..data.clone()
    });
    assert_eq!(h.stack.drops().get(DropReason::TcpAounexpected), 1);
    assert_eq!(ext(&h, "TCPAOKeyNotFound"), 1);
}

#[test]
fn signed_segment_to_closed_port_gets_no_reset() {
    let mut h = Host::new();
    let syn = Seg {
        sport: 40002,
        dport: 9,
        seq: 100,
        flags: 0x02,
        win: 1000,
        ..Seg::default()
    };
    h.inject(&Seg {
        opts: md5_opt(),
        ..syn.clone()
    });
    assert!(h.sent().is_empty());
    assert_eq!(h.stack.drops().get(DropReason::NoSocket), 1);
    // Unsigned: RST+ACK of the SYN.
    h.inject(&syn);
    let out = h.sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst() && out[0].flags.ack());
    assert_eq!(out[0].ack, 101);
}
