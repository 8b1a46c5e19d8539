//! `TCP_INQ`: the `TCP_CM_INQ` value `recvmsg` returns, i.e. the bytes still
//! queued after the read, one for a received FIN, and at least one once the
//! peer has closed.

mod tcpnet;

use netpath::sim::LinkConfig;
use netpath::tcp::{SendFlags, TcpOpt};
use netpath::time::Duration;
use tcpnet::*;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

#[test]
fn cm_inq_counts_what_is_left_and_the_fin() {
    let mut n = Net::new(11, link());
    let (c, s, _) = n.connected(6001);
    n.with_b(|st, _| {
        assert_eq!(st.tcp_cm_inq(s), Ok(None), "off by default");
        assert_eq!(
            st.tcp_getsockopt(s, TcpOpt::Inq(true)),
            Ok(TcpOpt::Inq(false))
        );
        st.tcp_setsockopt(s, TcpOpt::Inq(true)).unwrap();
        assert_eq!(
            st.tcp_getsockopt(s, TcpOpt::Inq(false)),
            Ok(TcpOpt::Inq(true))
        );
    });
    n.with_a(|st, now| st.tcp_send(now, c, &[5; 10_000], SendFlags::default()))
        .unwrap();
    n.run_ms(100);
    n.with_b(|st, now| {
        let mut buf = vec![0u8; 10_000];
        assert_eq!(st.tcp_recv(now, s, &mut buf[..1000]), Ok(1000));
        assert_eq!(st.tcp_cm_inq(s), Ok(Some(9000)));
        assert_eq!(st.tcp_recv(now, s, &mut buf[..9000]), Ok(9000));
        assert_eq!(st.tcp_cm_inq(s), Ok(Some(0)));
    });
    n.with_a(|st, now| {
        st.tcp_send(now, c, &[6; 4000], SendFlags::default())
            .unwrap();
        st.tcp_close(now, c).unwrap();
    });
    n.run_ms(100);
    n.with_b(|st, now| {
        // 4000 bytes and the FIN's sequence number.
        assert_eq!(st.tcp_inq_hint(s), Ok(4001));
        let mut buf = vec![0u8; 4000];
        assert_eq!(st.tcp_recv(now, s, &mut buf), Ok(4000));
        assert_eq!(st.tcp_cm_inq(s), Ok(Some(1)), "go on reading: EOF");
        assert_eq!(st.tcp_recv(now, s, &mut buf), Ok(0));
        assert_eq!(st.tcp_cm_inq(s), Ok(Some(1)));
        // SIOCINQ counts bytes only.
        assert_eq!(st.tcp_inq(s), Ok(0));
    });
}
