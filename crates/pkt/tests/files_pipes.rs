//! The runner's in-memory files and pipes with netpath's sockets, in
//! packetdrill scripts of our own: `sendfile` from offsets and from the
//! file position (the segments Linux sends for it, errnos), `splice` of a
//! TCP socket into a pipe stopping at the urgent mark, `MSG_OOB`,
//! `SIOCATMARK`, `POLLPRI`, `SO_OOBINLINE` and `IP_FREEBIND`.

use netpath_pkt::run::Outcome;
use netpath_pkt::suite;
use std::time::Duration;

fn pass(name: &str, text: &str) {
    let r = suite::run_text(name, text, Duration::from_secs(10));
    assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", r.line());
}

fn fails_at(name: &str, text: &str, line: u32) {
    let r = suite::run_text(name, text, Duration::from_secs(10));
    assert!(
        matches!(r.outcome, Outcome::Fail { line: l, .. } if l == line),
        "{name}: {}",
        r.line()
    );
}

const SERVER: &str = "\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 10>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
   +0 < . 1:1(0) ack 1 win 514
   +0 accept(3, ..., ...) = 4
";

#[test]
fn sendfile_offsets_position_and_errors() {
    let text = format!(
        "`/bin/rm -f /tmp/np-file
/bin/dd bs=2 count=5 if=/dev/zero of=/tmp/np-file status=none`
{SERVER}   +0 open(\"/tmp/np-file\", O_RDONLY) = 5
// From an offset: the file position stays.
   +0 sendfile(4, 5, [2], 5) = 5
   +0 > P. 1:6(5) ack 1
   +0 < . 1:1(0) ack 6 win 514
// From the position (0), which moves.
   +0 sendfile(4, 5, NULL, 3) = 3
   +0 > P. 6:9(3) ack 1
   +0 < . 1:1(0) ack 9 win 514
// Fewer bytes left than asked: what there is, pushed.
   +0 sendfile(4, 5, NULL, 100) = 7
   +0 > P. 9:16(7) ack 1
   +0 sendfile(4, 5, NULL, 10) = 0
   +0 sendfile(4, 5, [10], 10) = 0
   +0 sendfile(4, 5, [-1], 10) = -1 EINVAL
   +0 sendfile(4, 99, NULL, 1) = -1 EBADF
   +0 sendfile(4, 3, NULL, 1) = -1 EINVAL
   +0 sendfile(4, 3, [0], 1) = -1 ESPIPE
   +0 open(\"/tmp/np-none\", O_RDONLY) = -1 ENOENT
   +0 setsockopt(5, SOL_SOCKET, SO_REUSEADDR, [1], 4) = -1 ENOTSOCK
   +0 close(5) = 0
   +0 sendfile(4, 5, NULL, 1) = -1 EBADF
"
    );
    pass("sendfile-offsets.pkt", &text);
    // The segment a sendfile sends is checked: a wrong length fails.
    let wrong = format!(
        "`dd bs=1 count=5 if=/dev/zero of=/tmp/np-file`
{SERVER}   +0 open(\"/tmp/np-file\", O_RDONLY) = 5
   +0 sendfile(4, 5, [0], 5) = 5
   +0 > P. 1:5(4) ack 1
"
    );
    fails_at("sendfile-wrong.pkt", &wrong, 12);
}

#[test]
fn files_are_the_hosts_own() {
    // No such file on the host: the runner never looks at the real /tmp.
    let text = format!("{SERVER}   +0 open(\"/tmp\", O_RDONLY) = -1 ENOENT\n");
    pass("no-real-files.pkt", &text);
    // Other shell commands stay unsupported.
    let r = suite::run_text(
        "cp.pkt",
        "`cp /etc/passwd /tmp/x`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        Duration::from_secs(10),
    );
    assert!(
        matches!(r.outcome, Outcome::Unsupported { line: 1, .. }),
        "{}",
        r.line()
    );
}

const URGENT: &str = "\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 setsockopt(3, SOL_IP, IP_FREEBIND, [1], 4) = 0
   +0 getsockopt(3, SOL_IP, IP_FREEBIND, [1], [4]) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32972 <mss 1460,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
   +0 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
";

#[test]
fn splice_into_a_pipe_stops_at_the_urgent_mark() {
    let text = format!(
        "{URGENT}   +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 pipe([5, 6]) = 0
   +0 < U. 1:101(100) ack 1 win 257 urg 100
   +0 ioctl(4, SIOCATMARK, [0]) = 0
   +0 splice(4, NULL, 6, NULL, 200, 0) = 99
   +0 ioctl(4, SIOCATMARK, [1]) = 0
// Only the urgent byte is left: POLLPRI, not POLLIN.
   +0 poll([{{fd=4, events=POLLIN|POLLPRI, revents=POLLPRI}}], 1, 0) = 1
// At the mark a non-blocking splice has nothing to give.
   +0 splice(4, NULL, 6, NULL, 1, 0) = -1 EAGAIN
   +0 read(5, ..., 200) = 99
   +0 recv(4, ..., 1, MSG_OOB|MSG_PEEK) = 1
   +0 recv(4, ..., 1, MSG_OOB) = 1
   +0 recv(4, ..., 1, MSG_OOB) = -1 EINVAL
   +0 poll([{{fd=4, events=POLLIN|POLLPRI, revents=0}}], 1, 0) = 0
   +0 < P. 101:111(10) ack 1 win 257
// splice never steps over the byte; a read does.
   +0 splice(4, NULL, 6, NULL, 100, 0) = -1 EAGAIN
   +0 read(4, ..., 100) = 10
   +0 ioctl(4, SIOCATMARK, [0]) = 0
   +0 splice(4, NULL, 6, NULL, 100, SPLICE_F_NONBLOCK) = -1 EAGAIN
   +0 < P. 111:121(10) ack 1 win 257
   +0 splice(4, NULL, 6, NULL, 100, SPLICE_F_NONBLOCK) = 10
   +0 splice(4, [0], 6, NULL, 100, 0) = -1 EINVAL
   +0 splice(4, NULL, 6, [0], 100, 0) = -1 ESPIPE
   +0 splice(4, NULL, 5, NULL, 100, 0) = -1 EBADF
   +0 splice(4, NULL, 3, NULL, 100, 0) = -1 EINVAL
   +0 splice(4, NULL, 6, NULL, 0, 0) = 0
   +0 close(5) = 0
   +0 splice(4, NULL, 6, NULL, 100, 0) = -1 EPIPE
"
    );
    pass("splice-urgent.pkt", &text);
}

#[test]
fn blocking_reads_around_the_mark() {
    let text = format!(
        "{URGENT}   +0 < U. 1:11(10) ack 1 win 257 urg 6
   +0 recv(4, ..., 100, MSG_PEEK) = 5
   +0 read(4, ..., 100) = 5
// At the mark nothing read yet: the byte is stepped over.
   +0 recv(4, ..., 100, MSG_PEEK) = 4
   +0 recv(4, ..., 1, MSG_OOB) = 1
   +0 read(4, ..., 100) = 4
"
    );
    pass("urgent-reads.pkt", &text);
    // A blocking splice at the mark returns 0 at once (the loop test).
    let text = format!(
        "{URGENT}   +0 pipe([5, 6]) = 0
   +0 < U. 1:11(10) ack 1 win 257 urg 10
   +0 splice(4, NULL, 6, NULL, 100, 0) = 9
   +0 splice(4, NULL, 6, NULL, 100, 0) = 0
   +0 read(4, ..., 100) = 0
"
    );
    // read() blocks (it skips the byte and waits): the script fails there.
    fails_at("urgent-read-blocks.pkt", &text, 15);
}

#[test]
fn oob_inline() {
    let text = format!(
        "{URGENT}   +0 setsockopt(4, SOL_SOCKET, SO_OOBINLINE, [1], 4) = 0
   +0 getsockopt(4, SOL_SOCKET, SO_OOBINLINE, [1], [4]) = 0
   +0 < U. 1:11(10) ack 1 win 257 urg 6
   +0 recv(4, ..., 1, MSG_OOB) = -1 EINVAL
   +0 read(4, ..., 100) = 5
   +0 read(4, ..., 100) = 5
"
    );
    pass("oob-inline.pkt", &text);
}
