//! `SO_ZEROCOPY` / `MSG_ZEROCOPY`: ids per send, one merged completion
//! notification once the data is acknowledged, `POLLERR` while it waits,
//! nothing without the socket option, and zero-length sends.

mod tcpnet;

use netpath::sim::LinkConfig;
use netpath::sock::Errno;
use netpath::tcp::zerocopy::ZcNotification;
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::Duration;
use tcpnet::*;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// `recvmsg(MSG_ERRQUEUE)` of a zerocopy completion.
fn zc_notification(
    st: &mut netpath::stack::Stack,
    c: netpath::sock::SockId,
) -> Result<ZcNotification, Errno> {
    st.tcp_recv_errqueue(c, 0)
        .map(|m| m.zerocopy().expect("a zerocopy completion"))
}

const ZC: SendFlags = SendFlags {
    more: false,
    eor: false,
    zerocopy: true,
};

#[test]
fn completions_merge_and_raise_pollerr_until_read() {
    let mut n = Net::new(21, link());
    let (c, _s, _) = n.connected(6101);
    n.with_a(|st, now| {
        st.tcp_setsockopt(c, TcpOpt::ZeroCopy(true)).unwrap();
        assert_eq!(
            st.tcp_getsockopt(c, TcpOpt::ZeroCopy(false)),
            Ok(TcpOpt::ZeroCopy(true))
        );
        // A zero-length send takes no id.
        assert_eq!(st.tcp_send(now, c, &[], ZC), Ok(0));
        for _ in 0..3 {
            assert_eq!(st.tcp_send(now, c, &[1; 500], ZC), Ok(500));
        }
        assert!(!st.tcp_poll(c).err, "nothing acknowledged yet");
    });
    n.run_ms(100);
    n.with_a(|st, _| {
        assert!(st.tcp_poll(c).err);
        assert!(!st.tcp_poll(c).readable, "POLLERR alone");
        assert_eq!(
            zc_notification(st, c),
            Ok(ZcNotification {
                lo: 0,
                hi: 2,
                copied: true
            })
        );
        assert_eq!(zc_notification(st, c), Err(Errno::EAGAIN));
        assert!(!st.tcp_poll(c).err);
    });
    // The next send continues the ids.
    n.with_a(|st, now| st.tcp_send(now, c, &[2; 100], ZC))
        .unwrap();
    n.run_ms(100);
    assert_eq!(
        n.with_a(|st, _| zc_notification(st, c)),
        Ok(ZcNotification {
            lo: 3,
            hi: 3,
            copied: true
        })
    );
}

#[test]
fn msg_zerocopy_without_so_zerocopy_is_an_ordinary_send() {
    let mut n = Net::new(22, link());
    let (c, _s, _) = n.connected(6102);
    n.with_a(|st, now| st.tcp_send(now, c, &[1; 500], ZC))
        .unwrap();
    n.run_ms(100);
    n.with_a(|st, _| {
        assert!(!st.tcp_poll(c).err);
        assert_eq!(zc_notification(st, c), Err(Errno::EAGAIN));
    });
}

#[test]
fn a_zerocopy_skb_holds_at_most_17_fragments() {
    let mut n = Net::new(23, link());
    let (c, _s, _) = n.connected(6103);
    n.with_a(|st, now| {
        st.tcp_setsockopt(c, TcpOpt::ZeroCopy(true)).unwrap();
        assert_eq!(
            st.tcp_send_iov(now, c, &[1; 18], &[1; 17], ZC),
            Err(Errno::EINVAL),
            "the iovec must cover the data"
        );
        assert_eq!(st.tcp_send_iov(now, c, &[1; 18], &[1; 18], ZC), Ok(18));
    });
    n.run_ms(100);
    let data: Vec<(usize, bool)> = n
        .segments()
        .iter()
        .filter(|w| w.by_a() && w.len > 0)
        .map(|w| (w.len, w.flags.psh()))
        .collect();
    // 17 one-byte fragments fill the first skb (pushed), the 18th starts
    // the next; Nagle holds it until the first is acknowledged.
    assert_eq!(data, vec![(17, true), (1, true)]);
    assert_eq!(
        n.with_a(|st, _| zc_notification(st, c)),
        Ok(ZcNotification {
            lo: 0,
            hi: 0,
            copied: true
        }),
        "one send, one id"
    );
}
