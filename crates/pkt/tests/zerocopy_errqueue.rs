//! MSG_ZEROCOPY completions through the runner: `recvmsg(MSG_ERRQUEUE)`
//! with its `sock_extended_err` control message (merged ids, "copied"),
//! `EAGAIN` on an empty queue, and `EPOLLERR` for an edge-triggered epoll
//! watcher, with a packetdrill script of our own run against netpath.

use netpath_pkt::run::Outcome;
use netpath_pkt::suite;
use std::time::Duration;

#[test]
fn zerocopy_notification_on_the_error_queue() {
    let r = suite::run_text("zerocopy-errqueue.pkt", SCRIPT, Duration::from_secs(10));
    assert_eq!(r.outcome, Outcome::Pass);
}

const SCRIPT: &str = r#"// MSG_ZEROCOPY on an SO_ZEROCOPY socket: once the data is acknowledged,
// one notification (ids 0..1 merged) waits on the error queue, raising
// EPOLLERR once for an edge-triggered watcher; then the queue is empty.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 setsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0
   +0 getsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], [4]) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 20000 <mss 1000,nop,wscale 0>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
 +.01 < . 1:1(0) ack 1 win 20000
   +0 accept(3, ..., ...) = 4
   +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 epoll_create(1) = 5
   +0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLET, fd=4}) = 0
   +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0
   +0 send(4, ..., 500, MSG_ZEROCOPY) = 500
   +0 > P. 1:501(500) ack 1
   +0 send(4, ..., 500, MSG_ZEROCOPY) = 500
   +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=0, msg_control=[]}, MSG_ERRQUEUE) = -1 EAGAIN (Resource temporarily unavailable)
 +.01 < . 1:1(0) ack 501 win 20000
   +0 > P. 501:1001(500) ack 1
 +.01 < . 1:1(0) ack 1001 win 20000
   +0 epoll_wait(5, {events=EPOLLERR, fd=4}, 1, 0) = 1
   +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0
   +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=MSG_ERRQUEUE,
                  msg_control=[{cmsg_level=CMSG_LEVEL_IP, cmsg_type=CMSG_TYPE_RECVERR,
                                cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0,
                                           ee_code=SO_EE_CODE_ZEROCOPY_COPIED, ee_info=0, ee_data=1}}]},
                MSG_ERRQUEUE) = 0
   +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=0, msg_control=[]}, MSG_ERRQUEUE) = -1 EAGAIN (Resource temporarily unavailable)
"#;
