//! TCP Fast Open (RFC 7413) between two netpath stacks, checked on the wire:
//! the cookie request and the cookie (SipHash of the addresses under the
//! server's key), a SYN carrying data and the cookie, a SYN-ACK that
//! acknowledges the data, the data readable on the server before the
//! handshake completes, and a client retransmitting the data a SYN-ACK left
//! unacknowledged; with the TCPFastOpen* counters and TCPI_OPT_SYN_DATA.

mod tcpnet;

use netpath::sim::LinkConfig;
use netpath::tcp::fastopen::{cookie_v4, FastOpenKeys};
use netpath::tcp::fastopen_client::FastOpenSend;
use netpath::tcp::info::TCPI_OPT_SYN_DATA;
use netpath::tcp::{SendFlags, TcpOpt, TcpState};
use netpath::time::Duration;
use tcpnet::*;

const PORT: u16 = 7070;
const KEY: &str = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4";

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// A = client (TFO client on), B = server (TFO server on, a fixed key),
/// a listener on B with a Fast Open queue of 16.
fn setup(seed: u64) -> (Net, netpath::sock::SockId) {
    let mut n = Net::new(seed, link());
    n.with_a(|st, _| st.sysctl_tcp("net.ipv4.tcp_fastopen", "0x1").unwrap());
    n.with_b(|st, _| {
        st.sysctl_tcp("net.ipv4.tcp_fastopen", "0x2").unwrap();
        st.sysctl_tcp("net.ipv4.tcp_fastopen_key", KEY).unwrap();
    });
    let l = n.bb.listen(&mut n.t.sim, ip("0.0.0.0"), PORT, 8).unwrap();
    n.with_b(|st, _| st.tcp_setsockopt(l, TcpOpt::FastOpen(16)).unwrap());
    (n, l)
}

fn cookie() -> [u8; 8] {
    let k = FastOpenKeys::parse(KEY).unwrap();
    cookie_v4(&k.keys()[0], ip(A), ip(B))
}

/// A Fast Open `sendto` from A to B.
/// A first connection that asks for and caches B's cookie, then both ends
/// close it.
fn warm_cookie_cache(n: &mut Net, l: netpath::sock::SockId) {
    let (c1, _) = sendto(n, &[]);
    n.run_ms(50);
    let (s1, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    n.with_a(|st, now| st.tcp_close(now, c1).unwrap());
    n.with_b(|st, now| st.tcp_close(now, s1).unwrap());
    n.run_ms(100);
}

fn sendto(n: &mut Net, data: &[u8]) -> (netpath::sock::SockId, FastOpenSend) {
    let c = n.ba.socket(&mut n.t.sim);
    let r = n.with_a(|st, now| {
        st.tcp_send_fastopen(
            now,
            c,
            Some((ip(B), PORT)),
            data,
            &[data.len()],
            SendFlags::default(),
            false,
        )
    });
    (c, r.unwrap())
}

#[test]
fn cookie_request_then_data_in_the_syn() {
    let (mut n, l) = setup(71);
    // 1. No cookie yet: the SYN asks for one and carries no data.
    let (c1, r) = sendto(&mut n, &[1; 100]);
    assert_eq!(r, FastOpenSend::Connecting { copied: 0 });
    n.run_ms(50);
    let segs = n.segments();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    assert_eq!(syn.len, 0);
    let req = syn.opts.fastopen.expect("a cookie request");
    assert!(req.cookie().is_empty() && !req.exp);
    // kind 34, length 2, then two NOPs.
    assert!(syn.raw_opts.windows(4).any(|w| w == [34, 2, 1, 1]));
    let synack = segs.iter().find(|s| !s.by_a() && s.syn()).unwrap();
    let got = synack.opts.fastopen.expect("a cookie");
    assert_eq!(got.cookie(), cookie());
    let mut wire = vec![34, 10];
    wire.extend_from_slice(&cookie());
    assert!(synack.raw_opts.windows(10).any(|w| w == &wire[..]));
    let (s1, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_cookie_reqd, 1);
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_passive, 0);
    n.with_a(|st, now| st.tcp_close(now, c1).unwrap());
    n.with_b(|st, now| st.tcp_close(now, s1).unwrap());
    n.run_ms(100);

    // 2. The cached cookie lets the next SYN carry the data.
    let before = n.segments().len();
    let (c2, r) = sendto(&mut n, &[7; 300]);
    assert_eq!(r, FastOpenSend::Connecting { copied: 300 });
    // The SYN reached B (5 ms) but B's SYN-ACK has not reached A.
    n.run_ms(7);
    let (s2, _) = n.with_b(|st, now| st.tcp_accept(now, l)).unwrap();
    assert_eq!(n.sb().tcp_state(s2), Some(TcpState::SynRecv));
    let mut buf = [0u8; 1000];
    assert_eq!(n.with_b(|st, now| st.tcp_recv(now, s2, &mut buf)), Ok(300));
    assert!(buf[..300].iter().all(|&b| b == 7));
    n.run_ms(50);
    let segs = n.segments()[before..].to_vec();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    assert_eq!(syn.len, 300, "the data rides on the SYN");
    assert_eq!(
        syn.opts.fastopen.map(|f| f.cookie().to_vec()),
        Some(cookie().to_vec())
    );
    let synack = segs.iter().find(|s| !s.by_a() && s.syn()).unwrap();
    assert_eq!(
        synack.ack,
        syn.seq.wrapping_add(301),
        "the SYN-ACK acks the data"
    );
    assert_eq!(synack.opts.fastopen, None, "a valid cookie is not echoed");
    // One SYN only: the data was not sent again.
    assert_eq!(segs.iter().filter(|s| s.by_a() && s.len > 0).count(), 1);
    assert_eq!(n.sb().tcp_state(s2), Some(TcpState::Established));
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_passive, 1);
    assert_eq!(n.sa().tcp_ext_mib().tcp_fastopen_active, 1);
    let opt = |st: &netpath::stack::Stack, id| st.tcp_info(id).unwrap().options;
    assert_ne!(opt(n.sa(), c2) & TCPI_OPT_SYN_DATA, 0);
    assert_ne!(opt(n.sb(), s2) & TCPI_OPT_SYN_DATA, 0);
}

#[test]
fn data_the_synack_does_not_ack_is_sent_again() {
    let (mut n, l) = setup(72);
    warm_cookie_cache(&mut n, l);
    // B stops doing Fast Open: the SYN's data is not accepted.
    n.with_b(|st, _| st.sysctl_tcp("net.ipv4.tcp_fastopen", "0").unwrap());
    let before = n.segments().len();
    let (c2, r) = sendto(&mut n, &[9; 500]);
    assert_eq!(r, FastOpenSend::Connecting { copied: 500 });
    n.run_ms(50);
    let segs = n.segments()[before..].to_vec();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    let synack = segs.iter().find(|s| !s.by_a() && s.syn()).unwrap();
    assert_eq!(synack.ack, syn.seq.wrapping_add(1), "only the SYN is acked");
    // The data goes again right after the SYN-ACK, with no pure ACK first.
    let after: Vec<_> = segs
        .iter()
        .filter(|s| s.by_a() && s.t >= synack.t)
        .collect();
    assert_eq!(after[0].len, 500);
    assert_eq!(after[0].seq, syn.seq.wrapping_add(1));
    assert_eq!(after[0].t, synack.t);
    assert_eq!(n.sa().tcp_ext_mib().tcp_fastopen_active_fail, 1);
    assert_eq!(n.sa().tcp_info(c2).unwrap().options & TCPI_OPT_SYN_DATA, 0);
    assert_eq!(
        n.sa().tcp_info(c2).unwrap().fastopen_client_fail,
        netpath::tcp::fastopen::TFO_DATA_NOT_ACKED
    );
    let (s2, _) = n.bb.accept(&mut n.t.sim, l).unwrap();
    let mut buf = [0u8; 1000];
    assert_eq!(n.with_b(|st, now| st.tcp_recv(now, s2, &mut buf)), Ok(500));
}

#[test]
fn a_bad_cookie_is_refused_and_a_good_one_sent_back() {
    let (mut n, l) = setup(73);
    warm_cookie_cache(&mut n, l);
    // B changes its key: A's cookie no longer validates.
    n.with_b(|st, _| {
        st.sysctl_tcp("net.ipv4.tcp_fastopen_key", "1-2-3-4")
            .unwrap()
    });
    let before = n.segments().len();
    let (_c2, r) = sendto(&mut n, &[3; 200]);
    assert_eq!(r, FastOpenSend::Connecting { copied: 200 });
    n.run_ms(50);
    let segs = n.segments()[before..].to_vec();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    let synack = segs.iter().find(|s| !s.by_a() && s.syn()).unwrap();
    assert_eq!(synack.ack, syn.seq.wrapping_add(1));
    let fresh = cookie_v4(
        &FastOpenKeys::parse("1-2-3-4").unwrap().keys()[0],
        ip(A),
        ip(B),
    );
    assert_eq!(
        synack.opts.fastopen.map(|f| f.cookie().to_vec()),
        Some(fresh.to_vec())
    );
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_passive_fail, 1);
}

#[test]
fn fastopen_connect_defers_the_syn_to_the_first_write() {
    let (mut n, l) = setup(74);
    // Warm the cache.
    warm_cookie_cache(&mut n, l);
    let before = n.segments().len();
    let c = n.ba.socket(&mut n.t.sim);
    n.with_a(|st, _| st.tcp_setsockopt(c, TcpOpt::FastOpenConnect(true)).unwrap());
    // connect() returns at once; no SYN yet, and the socket is writable.
    assert_eq!(
        n.with_a(|st, now| st.tcp_connect(now, c, ip(B), PORT)),
        Ok(())
    );
    n.run_ms(20);
    assert_eq!(n.segments().len(), before, "no SYN before the write");
    assert!(n.sa().tcp_fastopen_deferred(c));
    assert!(n.sa().tcp_poll(c).writable);
    // The first write sends the SYN with its data and the cookie.
    let r = n.with_a(|st, now| {
        st.tcp_send_fastopen(now, c, None, &[4; 50], &[50], SendFlags::default(), false)
    });
    assert_eq!(r, Ok(FastOpenSend::Connecting { copied: 50 }));
    n.run_ms(50);
    let segs = n.segments()[before..].to_vec();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    assert_eq!(syn.len, 50);
    assert_eq!(
        syn.opts.fastopen.map(|f| f.cookie().to_vec()),
        Some(cookie().to_vec())
    );
    assert_eq!(n.sa().tcp_state(c), Some(TcpState::Established));
}

#[test]
fn a_backup_key_still_validates_and_the_primary_cookie_is_sent() {
    let (mut n, l) = setup(75);
    warm_cookie_cache(&mut n, l);
    // The listener rotates: a new primary, the old key as backup.
    let old = FastOpenKeys::parse(KEY).unwrap().keys()[0];
    let new = [0x5a; 16];
    let mut both = new.to_vec();
    both.extend_from_slice(&old);
    n.with_b(|st, _| st.tcp_setsockopt(l, TcpOpt::FastOpenKey(both)).unwrap());
    assert_eq!(
        n.with_b(|st, _| st.tcp_setsockopt(l, TcpOpt::FastOpenKey(vec![1; 3]))),
        Err(netpath::sock::Errno::EINVAL)
    );
    let before = n.segments().len();
    let (_c2, r) = sendto(&mut n, &[8; 64]);
    assert_eq!(r, FastOpenSend::Connecting { copied: 64 });
    n.run_ms(50);
    let segs = n.segments()[before..].to_vec();
    let syn = segs.iter().find(|s| s.by_a() && s.syn()).unwrap();
    let synack = segs.iter().find(|s| !s.by_a() && s.syn()).unwrap();
    assert_eq!(
        synack.ack,
        syn.seq.wrapping_add(65),
        "the backup key accepts the data"
    );
    let fresh = cookie_v4(&new, ip(A), ip(B));
    assert_eq!(
        synack.opts.fastopen.map(|f| f.cookie().to_vec()),
        Some(fresh.to_vec()),
        "the cookie of the primary key comes back"
    );
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_passive_alt_key, 1);
    assert_eq!(n.sb().tcp_ext_mib().tcp_fastopen_passive, 1);
}
