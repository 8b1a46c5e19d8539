//! Where netpath puts PSH, checked with small packetdrill scripts of our
//! own run against netpath: the forced push of a long write (every full
//! skb once more than half the peer's largest window was written since the
//! last push) and the PSH Linux forces on a retransmitted GSO packet of
//! two or more segments (lost segments of one original packet go out
//! together; a lost segment whose packet-mate was SACKed or already
//! retransmitted goes alone, without PSH).

use netpath_pkt::run::Outcome;
use netpath_pkt::suite;
use std::time::Duration;

fn pass(name: &str, text: &str) {
    let r = suite::run_text(name, text, Duration::from_secs(10));
    assert_eq!(r.outcome, Outcome::Pass, "{name}");
}

#[test]
fn forced_push_marks_each_full_skb_of_a_long_write() {
    pass("forced-push.pkt", FORCED);
}

#[test]
fn retransmitted_gso_packets_carry_psh() {
    pass("rtx-gso-psh.pkt", RTX);
}

const FORCED: &str = r#"// One write larger than half the peer's largest window: every full skb is
// marked PSH on the way (forced push), not only the last.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 1000 <mss 1000>
   +0 > S. 0:0(0) ack 1 <mss 1460>
 +.01 < . 1:1(0) ack 1 win 1000
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 3000) = 3000
   +0 > P. 1:1001(1000) ack 1
 +.01 < . 1:1(0) ack 1001 win 1000
   +0 > P. 1001:2001(1000) ack 1
 +.01 < . 1:1(0) ack 2001 win 1000
   +0 > P. 2001:3001(1000) ack 1
 +.01 < . 1:1(0) ack 3001 win 1000
"#;

const RTX: &str = r#"// Lost segments of one GSO packet are retransmitted as one (PSH on its
// last segment) when the window allows; a lost segment whose packet-mate
// was SACKed, or retransmitted already, goes alone, without PSH.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
 +.01 < . 1:1(0) ack 1 win 500
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 8000) = 8000
   +0 > P. 1:8001(8000) ack 1
 +.01 < . 1:1(0) ack 1 win 500 <sack 5001:8001,nop,nop>
   +0 > P. 1:2001(2000) ack 1
   +0 > . 2001:3001(1000) ack 1
// What is left of the second packet, and the third's lost half: alone.
 +.01 < . 1:1(0) ack 2001 win 500 <sack 5001:8001,nop,nop>
   +0 > . 3001:5001(2000) ack 1
 +.01 < . 1:1(0) ack 8001 win 500
"#;
